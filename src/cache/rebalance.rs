//! The slab mover's work (memcached's `slab_rebalance_thread`,
//! `slab_rebalance_start` / `_move` / `_finish`, `slabs_reassign`, and the
//! automove runs): the thread's loop and the moves themselves. The rules
//! are in [`super::mover`]'s doc.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::automove::{Automove, ClassSample};
use super::ledger::POOL;
use super::mover::{Mover, Reassign};
use super::shard::Shard;
use super::{lock, try_lock, Cache, SHARDS};

/// What one move did, added to the counters when it ends.
#[derive(Debug, Default)]
struct Tally {
    rescues: u64,
    chunk_rescues: u64,
    evictions_nomem: u64,
}

impl Cache {
    /// The slab mover's settings and counters.
    pub fn mover(&self) -> &Mover {
        &self.mover
    }

    /// `slabs reassign <src> <dst>` (memcached's `slabs_reassign`): ask
    /// the mover thread to move one page; `src` -1 picks any class with a
    /// page to spare.
    pub fn reassign(&self, src: i64, dst: i64) -> Reassign {
        let Some(mut sig) = try_lock(&self.mover.signal) else {
            return Reassign::Running;
        };
        if sig.request.is_some() || sig.busy {
            return Reassign::Running;
        }
        if src == dst {
            return Reassign::Same;
        }
        let largest = self.classes.largest() as i64;
        let src = if src == -1 {
            self.pick_any(dst).map_or(-1, |c| c as i64)
        } else {
            src
        };
        if !(0..=largest).contains(&src) || !(0..=largest).contains(&dst) {
            return Reassign::BadClass;
        }
        if self.ledger.owned(src as usize) < 2 {
            return Reassign::NoSpare;
        }
        sig.request = Some((src as usize, dst as usize));
        self.mover.wake.notify_one();
        Reassign::Ok
    }

    /// The next class after the last one picked, other than `dst`, with
    /// more than one page (memcached's `slabs_reassign_pick_any`).
    fn pick_any(&self, dst: i64) -> Option<usize> {
        let largest = self.classes.largest();
        for _ in 0..largest {
            let cur = self.mover.pick.fetch_add(1, Ordering::Relaxed) % largest + 1;
            if cur as i64 != dst && self.ledger.owned(cur) > 1 {
                return Some(cur);
            }
        }
        None
    }

    /// automove 2: a store of `class` just evicted one of its own items;
    /// ask for a page from any class with one to spare (memcached's
    /// `slabs_reassign(-1, id)` in `lru_pull_tail`).
    pub(super) fn evicted_for(&self, class: usize) {
        if self.mover.enabled && self.mover.automove() == 2 {
            let _ = self.reassign(-1, class as i64);
        }
    }

    /// The mover thread's body (memcached's `slab_rebalance_thread`, with
    /// automove 1's once-a-second run of its LRU maintainer): moves pages
    /// as asked, until [`Cache::stop_mover`].
    pub fn run_mover(&self) {
        let mut automove: Option<Automove> = None;
        let mut next_check = Instant::now() + Duration::from_secs(1);
        loop {
            let job = {
                let mut sig = lock(&self.mover.signal);
                loop {
                    if sig.stop {
                        return;
                    }
                    if let Some(r) = sig.request.take() {
                        sig.busy = true;
                        break Some(r);
                    }
                    let now = Instant::now();
                    let checking = self.mover.maintainer && self.mover.automove() == 1;
                    if checking && now >= next_check {
                        break None;
                    }
                    let wait = if checking {
                        next_check - now
                    } else {
                        Duration::from_secs(1)
                    };
                    sig = match self.mover.wake.wait_timeout(sig, wait) {
                        Ok((g, _)) => g,
                        Err(p) => p.into_inner().0,
                    };
                }
            };
            match job {
                Some((src, dst)) => {
                    self.mover.stats.running.store(true, Ordering::Relaxed);
                    self.move_page(src, dst);
                    self.mover.stats.running.store(false, Ordering::Relaxed);
                    lock(&self.mover.signal).busy = false;
                }
                None if (1..=self.classes.largest()).all(|c| self.ledger.owned(c) <= 2) => {
                    // No class has a page to give (automove needs more
                    // than two): nothing to decide, and no need to lock
                    // every shard. The history starts again when one has.
                    automove = None;
                    next_check = Instant::now() + Duration::from_secs(1);
                }
                None => {
                    let ratio = self.mover.ratio();
                    let a = match &mut automove {
                        Some(a) if a.ratio() == ratio => a,
                        _ => automove.insert(Automove::new(
                            self.mover.window,
                            ratio,
                            self.automove_samples(),
                        )),
                    };
                    let decision = a.run(self.automove_samples());
                    if let Some((src, dst)) = decision {
                        log::debug!("slab automove: {src} -> {dst}");
                        let _ = self.reassign(src as i64, dst as i64);
                    }
                    // A page for the pool: look again at once, as memcached
                    // does, to drain quiet classes quickly.
                    let pause = match decision {
                        Some((_, 0)) => Duration::from_millis(1),
                        _ => Duration::from_secs(1),
                    };
                    next_check = Instant::now() + pause;
                }
            }
        }
    }

    /// End the mover thread (after the move under way, if any).
    pub fn stop_mover(&self) {
        lock(&self.mover.signal).stop = true;
        self.mover.wake.notify_all();
    }

    /// Every class's figures for automove 1.
    fn automove_samples(&self) -> Vec<ClassSample> {
        let n = self.classes.largest() + 1;
        let mut out = vec![ClassSample::default(); n];
        let mut empty = vec![0u64; n];
        let now = self.clock.now();
        // Only the figures automove reads, so that each shard's lock is
        // held briefly.
        for m in self.shards.iter() {
            let sh = lock(m);
            sh.empty_page_bytes(&mut empty);
            for (class, o) in out.iter_mut().enumerate().skip(1) {
                let st = &sh.classes[class].stats;
                o.evicted += st.evicted;
                o.outofmemory += st.outofmemory;
                if let Some(t) = sh.tail(class) {
                    o.age = o.age.max(u64::from(now.saturating_sub(sh.view(t).time())));
                }
            }
        }
        let page = self.ledger.page();
        for (class, o) in out.iter_mut().enumerate().skip(1) {
            let pages = self.ledger.owned(class) as u64;
            let size = self.classes.size(class).max(1);
            // Free room in the pages it owns, in chunks of the class's
            // size: the pages' bytes less the real memory it holds, its
            // empty shard pages left out (the mover frees those at no
            // cost). Items here are smaller than memcached's chunks, so
            // counting items would understate the room; counting free
            // chunks inside used shard pages would overstate it, since
            // freeing those costs the items beside them.
            let held = (self.ledger.bytes(class) as u64).saturating_sub(empty[class]);
            let room = (pages * page as u64).saturating_sub(held) as usize;
            o.total_pages = pages;
            o.free_chunks = (room / size) as u64;
            o.chunks_per_page = (page / size).max(1) as u64;
        }
        out
    }

    /// One move (memcached's `slab_rebalance_start` to `_finish`).
    fn move_page(&self, src: usize, dst: usize) {
        let largest = self.classes.largest();
        if src > largest || dst > largest || src == dst || self.ledger.owned(src) < 2 {
            return;
        }
        let mut tally = Tally::default();
        if src != POOL {
            self.vacate(src, &mut tally);
        }
        if self.ledger.move_page(src, dst, self.limit()) {
            let s = &self.mover.stats;
            s.slabs_moved.fetch_add(1, Ordering::Relaxed);
            s.rescues.fetch_add(tally.rescues, Ordering::Relaxed);
            s.chunk_rescues
                .fetch_add(tally.chunk_rescues, Ordering::Relaxed);
            s.evictions_nomem
                .fetch_add(tally.evictions_nomem, Ordering::Relaxed);
        }
    }

    /// Make `src`'s real memory fit one page less than it owns, rescuing
    /// what fits and evicting the rest (see the module doc).
    fn vacate(&self, src: usize, tally: &mut Tally) {
        let page = self.ledger.page();
        let target = (self.ledger.owned(src) - 1) * page;
        let first = self.mover.cursor.fetch_add(1, Ordering::Relaxed);
        let mut visit = page;
        // 1. Shard pages whose items all fit free chunks elsewhere.
        for i in 0..SHARDS {
            let shard = &self.shards[(first + i) % SHARDS];
            while visit > 0 {
                let mut sh = lock(shard);
                let now = self.clock.now();
                match sh.sparsest_page(src) {
                    Some(p) if sh.rescuable(p) => {
                        visit = visit.saturating_sub(self.empty_page(&mut sh, p, now, tally));
                    }
                    _ => break,
                }
            }
        }
        // 2. Evict until the class fits its remaining pages.
        let mut next = first;
        let mut idle = 0;
        while self.ledger.bytes(src) > target && idle < SHARDS {
            if self.evict_oldest_large(src, tally) {
                continue;
            }
            let mut sh = lock(&self.shards[next % SHARDS]);
            next += 1;
            let now = self.clock.now();
            match sh.sparsest_page(src) {
                Some(p) => {
                    visit = visit.saturating_sub(self.empty_page(&mut sh, p, now, tally));
                    idle = 0;
                }
                None => idle += 1,
            }
        }
        // 3. Large items at the tails stay: the remaining pages hold them.
        let share = visit / SHARDS + 1;
        for i in 0..SHARDS {
            if visit == 0 {
                break;
            }
            let sh = lock(&self.shards[(first + i) % SHARDS]);
            let mut seen = 0;
            let mut cur = sh.tail(src);
            while let Some(h) = cur {
                if seen >= share || visit == 0 {
                    break;
                }
                cur = sh.prev(h);
                if Shard::page_of(h).is_some() {
                    continue;
                }
                let len = sh.chunk_of(h);
                seen += len;
                visit = visit.saturating_sub(len);
                if sh.view(h).size() > self.classes.size(src) {
                    tally.chunk_rescues += 1;
                } else {
                    tally.rescues += 1;
                }
            }
        }
    }

    /// Empty page `p` of the locked shard: dead items are dropped, live
    /// ones copied into free chunks of their size in other pages, or
    /// evicted when there are none; then the page is freed. Returns its
    /// bytes.
    fn empty_page(&self, sh: &mut Shard, p: usize, now: u32, tally: &mut Tally) -> usize {
        for h in sh.page_items(p) {
            if self.is_dead(sh.view(h), now).is_some() {
                self.remove(sh, h);
            } else if let Some(to) = sh.pop_free_outside(h, p) {
                sh.relocate(h, to);
                tally.rescues += 1;
            } else {
                self.remove(sh, h);
                tally.evictions_nomem += 1;
            }
        }
        // Removing the last item may have released it already.
        if sh.has_page(p) {
            self.release(sh, p)
        } else {
            0
        }
    }

    /// Evict the least recently used large item of `class` over all
    /// shards, if it has any. One shard lock at a time.
    fn evict_oldest_large(&self, class: usize, tally: &mut Tally) -> bool {
        let mut best: Option<((u32, u64), usize)> = None;
        for (i, m) in self.shards.iter().enumerate() {
            let sh = lock(m);
            let mut cur = sh.tail(class);
            // The tail's nearest large item (a class mixing chunks and
            // large items keeps both on one LRU).
            for _ in 0..8 {
                let Some(h) = cur else { break };
                if Shard::page_of(h).is_none() {
                    let v = sh.view(h);
                    let age = (v.time(), v.cas());
                    if best.is_none_or(|(b, _)| age < b) {
                        best = Some((age, i));
                    }
                    break;
                }
                cur = sh.prev(h);
            }
        }
        let Some((_, i)) = best else { return false };
        let mut sh = lock(&self.shards[i]);
        let now = self.clock.now();
        let mut cur = sh.tail(class);
        while let Some(h) = cur {
            if Shard::page_of(h).is_none() {
                if self.is_dead(sh.view(h), now).is_none() {
                    tally.evictions_nomem += 1;
                }
                self.remove(&mut sh, h);
                return true;
            }
            cur = sh.prev(h);
        }
        // It went away meanwhile: the caller looks again.
        true
    }

    /// Free empty page `p` of the locked shard: its bytes go back to the
    /// budget and to its class's ledger. Returns them.
    pub(super) fn release(&self, sh: &mut Shard, p: usize) -> usize {
        let class = sh.page_class(p);
        let bytes = sh.release_page(p);
        self.give(bytes);
        self.ledger.sub(class, bytes);
        bytes
    }
}
