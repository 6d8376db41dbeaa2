//! Making room: mirrors memcached's `do_item_alloc_pull` and
//! `lru_pull_tail` (reclaiming dead items and evicting from the LRU tail)
//! and the page moves of its slab rebalancer. The LRU crawler, which
//! takes back dead items nobody asks for, is in `crawler.rs`.
//!
//! An allocation for class `c` in shard `S` tries, in order:
//! 1. a free chunk of `c` in `S`;
//! 2. if `c` can get no more slab pages from the ledger (`ledger.rs`),
//!    room in its own memory, as memcached's classes evict from their own
//!    LRU (`evict_own`); then a new page (or, for a large class, the
//!    item's own allocation) from the budget;
//! 3. an empty page of another class in `S`, given back to the budget;
//! 4. with `-M`: dead items anywhere, else out of memory;
//! 5. whichever goes first (COLD before HOT before WARM before TEMP,
//!    then the one used longer ago) of two victims: `c`'s own (in `S` the
//!    item nearest the tail whose chunk has the new item's size; for a
//!    large class the oldest tail over all shards, so that large items
//!    leave in LRU order), or the oldest tail of another class of `S`,
//!    whose whole page is evicted and given back (a large item: itself).
//!    This moves real memory towards the classes in use while they stay
//!    within their slab pages; pages themselves move only through the
//!    slab mover (`rebalance.rs`);
//! 6. failing both, a page (or large item) of another shard whose lock is
//!    free.

use std::sync::atomic::Ordering;

use super::items::ItemView;
use super::lru::evict_rank;
use super::shard::{Handle, Shard};
use super::{try_lock, Cache, SHARDS};

/// How soon an item goes, for comparing LRU tails: its segment's place in
/// the eviction order (COLD first, see `lru.rs`), then the time of its
/// last bump, then its CAS (the order of stores within a second).
type Age = (u8, u32, u64);

fn age(sh: &Shard, h: Handle) -> Age {
    let v = sh.view(h);
    (evict_rank(v.seg()), v.time(), v.cas())
}

/// How many items at a class's tail are checked for a dead one before an
/// allocation (memcached's `lru_pull_tail` search depth).
const TAIL_SEARCH: usize = 5;

/// How many items from a class's tail are searched for one of the chunk
/// size wanted before a whole page is freed instead.
const CHUNK_SEARCH: usize = 50;

/// Upper bound on the steps of one allocation. Every step frees an item
/// or a page (or takes memory and returns), so this only guards against
/// other threads refilling what one frees, forever.
const MAX_STEPS: usize = 1 << 20;

impl Cache {
    /// A chunk (or large allocation) for an item of `size` bytes of
    /// `class` in the locked shard `sh`, never evicting `keep`.
    pub(super) fn alloc(
        &self,
        sh: &mut Shard,
        class: usize,
        size: usize,
        keep: Option<Handle>,
        now: u32,
    ) -> Option<Handle> {
        let large = self.classes.is_large_item(class, size);
        let chunk = self.classes.chunk_for(class, size);
        if large {
            self.reclaim_large_elsewhere(class, now);
        }
        let mut pages_left = true;
        for _ in 0..MAX_STEPS {
            if !large {
                if let Some(h) = sh.pop_free(class, chunk) {
                    return Some(h);
                }
            }
            let bytes = if large {
                chunk
            } else {
                Shard::page_bytes(self.classes.page_size(), chunk)
            };
            // memcached's per-class rule: a class that can get no more
            // slab pages (see `ledger.rs`) makes room in its own.
            if pages_left && !self.ledger.make_room(class, bytes, self.limit()) {
                if !self.evict_to_free {
                    if self.reclaim_tails(sh, keep, now) || self.reclaim_elsewhere(now) {
                        continue;
                    }
                    break;
                }
                if self.evict_own(sh, class, chunk, large, keep, now) {
                    continue;
                }
                // Nothing of its own to give (its memory is in pages of
                // other chunk sizes in other shards, all locked now): go
                // past its pages rather than fail; the budget still holds.
            }
            if large {
                // Large items are rounded like chunks, so that items of
                // nearly the same size take the same memory.
                if self.take(chunk) {
                    let h = sh.alloc_large(class, chunk);
                    match h {
                        Some(_) => self.ledger.add(class, chunk),
                        None => self.give(chunk),
                    }
                    return h;
                }
            } else if pages_left && self.take(bytes) {
                if sh.add_page(class, self.classes.page_size(), chunk) {
                    self.ledger.add(class, bytes);
                    continue;
                }
                // The shard has no page number left: make room in it.
                self.give(bytes);
                pages_left = false;
            }
            if let Some(p) = sh.empty_page() {
                self.release(sh, p);
                continue;
            }
            if !self.evict_to_free {
                if self.reclaim_tails(sh, keep, now) || self.reclaim_elsewhere(now) {
                    continue;
                }
                break;
            }
            // The class's own victim, or another class's oldest tail (its
            // page, or itself if large, goes back to the budget): whichever
            // was used longer ago, so that memory drifts to the classes in
            // use.
            let own = if large {
                self.oldest_large(sh, class, keep)
            } else {
                self.tail_of_chunk(sh, class, chunk, keep)
                    .map(|h| (age(sh, h), None))
            };
            let other = self.oldest_tail(sh, Some(class), keep);
            let freed = match (own, other) {
                (Some((o, _)), Some((x, h))) if x < o => self.free_victim(sh, h, now),
                (Some((_, None)), _) => {
                    let victim = if large {
                        self.tail_except(sh, class, keep)
                    } else {
                        self.tail_of_chunk(sh, class, chunk, keep)
                    };
                    victim.map(|h| self.evict(sh, h, now)).is_some()
                }
                (Some((_, Some(i))), _) => self.evict_tail_of(i, class, now),
                (None, Some((_, h))) => self.free_victim(sh, h, now),
                (None, None) => false,
            };
            // Failing both (the class has no item of this chunk size here,
            // no other class has any): a page of any class of this shard,
            // then memory of another shard.
            if freed || self.free_bytes(sh, keep, now) || self.free_bytes_elsewhere(now) {
                continue;
            }
            break;
        }
        sh.classes[class].stats.outofmemory += 1;
        None
    }

    /// The item nearest the tail of a class's LRU whose chunk has this
    /// size, among the last few: evicting it frees a chunk the new item
    /// fits. In a class whose items are all of one chunk size (the common
    /// case) that is the tail itself.
    fn tail_of_chunk(
        &self,
        sh: &Shard,
        class: usize,
        chunk: usize,
        keep: Option<Handle>,
    ) -> Option<Handle> {
        let mut cur = sh.tail(class);
        for _ in 0..CHUNK_SEARCH {
            let h = cur?;
            if Some(h) != keep && sh.chunk_of(h) == chunk {
                return Some(h);
            }
            cur = sh.prev(h);
        }
        None
    }

    fn tail_except(&self, sh: &Shard, class: usize, keep: Option<Handle>) -> Option<Handle> {
        let t = sh.tail(class)?;
        if Some(t) == keep {
            sh.prev(t)
        } else {
            Some(t)
        }
    }

    /// Take back dead items among the last few of a class's LRU, as
    /// memcached's `lru_pull_tail` does before each allocation.
    pub(super) fn reclaim_tail(
        &self,
        sh: &mut Shard,
        class: usize,
        keep: Option<Handle>,
        now: u32,
    ) -> bool {
        let mut found = false;
        let mut cur = sh.tail(class);
        for _ in 0..TAIL_SEARCH {
            let Some(h) = cur else { break };
            cur = sh.prev(h);
            if Some(h) != keep && self.is_dead(sh.view(h), now).is_some() {
                self.reclaim(sh, h, false);
                found = true;
            }
        }
        found
    }

    /// For a large class: dead items at its tail in the other shards too,
    /// since one of them gives back as much as the new item needs.
    fn reclaim_large_elsewhere(&self, class: usize, now: u32) {
        for m in self.shards.iter() {
            if let Some(mut s) = try_lock(m) {
                self.reclaim_tail(&mut s, class, None, now);
            }
        }
    }

    /// Take back dead items among the last few of every class of a shard,
    /// never `keep`, and give back the shard's empty pages. Returns whether
    /// anything was freed. (The background pass finds dead items anywhere
    /// else.)
    pub(super) fn reclaim_tails(&self, sh: &mut Shard, keep: Option<Handle>, now: u32) -> bool {
        let mut found = false;
        for class in 1..sh.classes.len() {
            found |= self.reclaim_tail(sh, class, keep, now);
        }
        while let Some(p) = sh.empty_page() {
            self.release(sh, p);
            found = true;
        }
        found
    }

    /// [`Cache::reclaim_tails`] in the first other shard, whose lock is
    /// free, that has something to give.
    pub(super) fn reclaim_elsewhere(&self, now: u32) -> bool {
        let start = self.evict_cursor.fetch_add(1, Ordering::Relaxed);
        (0..SHARDS).any(|i| match try_lock(&self.shards[(start + i) % SHARDS]) {
            Some(mut s) => self.reclaim_tails(&mut s, None, now),
            None => false,
        })
    }

    /// Unlink a dead item, counting it as memcached counts a reclaim.
    pub(super) fn reclaim(&self, sh: &mut Shard, h: Handle, by_crawler: bool) {
        let (class, fetched) = (sh.class_of(h), sh.view(h).fetched());
        let s = &mut sh.classes[class].stats;
        s.reclaimed += 1;
        if by_crawler {
            s.crawler_reclaimed += 1;
        }
        self.stats.reclaimed.fetch_add(1, Ordering::Relaxed);
        if !fetched {
            s.expired_unfetched += 1;
            self.stats.expired_unfetched.fetch_add(1, Ordering::Relaxed);
        }
        self.remove(sh, h);
    }

    /// Evict a live item, counting it.
    fn evict(&self, sh: &mut Shard, h: Handle, now: u32) {
        let class = sh.class_of(h);
        let v: ItemView<'_> = sh.view(h);
        let (fetched, exptime, time, active) = (v.fetched(), v.exptime(), v.time(), v.active());
        if self.is_dead(v, now).is_some() {
            return self.reclaim(sh, h, false);
        }
        let s = &mut sh.classes[class].stats;
        s.evicted += 1;
        // Every eviction is a store's, made for its room.
        s.direct_reclaims += 1;
        if active {
            s.evicted_active += 1;
        }
        s.evicted_time = now.saturating_sub(time);
        if exptime != 0 {
            s.evicted_nonzero += 1;
        }
        self.stats.evictions.fetch_add(1, Ordering::Relaxed);
        if crate::logger::wants(crate::logger::kind::EVICTIONS) {
            let v = sh.view(h);
            // Seconds left to live (-1: none), seconds since last access.
            let ttl = if exptime > 0 {
                i64::from(exptime) - i64::from(now)
            } else {
                -1
            };
            let la = now.wrapping_sub(time);
            crate::logger::eviction(v.key(), fetched, ttl, la, class, v.data().len());
        }
        let s = &mut sh.classes[class].stats;
        if !fetched {
            s.evicted_unfetched += 1;
            self.stats.evicted_unfetched.fetch_add(1, Ordering::Relaxed);
        }
        self.remove(sh, h);
    }

    /// The least recently used item of a large class over all shards (ties
    /// in time go to the lower CAS, the older store): its age, and its
    /// shard if not `sh` (other shards are only tried).
    fn oldest_large(
        &self,
        sh: &Shard,
        class: usize,
        keep: Option<Handle>,
    ) -> Option<(Age, Option<usize>)> {
        let mut best = self
            .tail_except(sh, class, keep)
            .map(|h| (age(sh, h), None));
        for (i, m) in self.shards.iter().enumerate() {
            let Some(s) = try_lock(m) else { continue };
            if let Some(t) = s.tail(class) {
                let a = age(&s, t);
                if best.is_none_or(|(b, _)| a < b) {
                    best = Some((a, Some(i)));
                }
            }
        }
        best
    }

    /// Evict the tail of a class in shard `i`, if its lock is free.
    fn evict_tail_of(&self, i: usize, class: usize, now: u32) -> bool {
        let Some(mut s) = try_lock(&self.shards[i]) else {
            return false;
        };
        match s.tail(class) {
            Some(t) => {
                self.evict(&mut s, t, now);
                true
            }
            None => false,
        }
    }

    /// The oldest tail over the classes of a shard other than `except`,
    /// skipping `keep` and the items sharing its page.
    fn oldest_tail(
        &self,
        sh: &Shard,
        except: Option<usize>,
        keep: Option<Handle>,
    ) -> Option<(Age, Handle)> {
        let keep_page = keep.and_then(Shard::page_of);
        let mut best: Option<(Age, Handle)> = None;
        for class in (1..sh.classes.len()).filter(|&c| Some(c) != except) {
            let mut cur = sh.tail(class);
            while let Some(h) = cur {
                if Some(h) == keep || (keep_page.is_some() && Shard::page_of(h) == keep_page) {
                    cur = sh.prev(h);
                } else {
                    break;
                }
            }
            if let Some(h) = cur {
                let a = age(sh, h);
                if best.is_none_or(|(b, _)| a < b) {
                    best = Some((a, h));
                }
            }
        }
        best
    }

    /// Give back the memory of `h` to the budget: evict it if it is a
    /// large item, or every item of its page, and release the page.
    fn free_victim(&self, sh: &mut Shard, h: Handle, now: u32) -> bool {
        match Shard::page_of(h) {
            None => self.evict(sh, h, now),
            Some(page) => {
                for item in sh.page_items(page) {
                    self.evict(sh, item, now);
                }
                // Evicting the last item may have released it already
                // (when over the limit).
                if sh.has_page(page) {
                    self.release(sh, page);
                }
            }
        }
        true
    }

    /// Give memory of the shard back to the budget: of all classes, take the
    /// one whose tail is oldest; evict that tail if it is a large item, or
    /// every item of the tail's page if it is a chunk, and release the page.
    /// Never touches `keep` or its page.
    pub(super) fn free_bytes(&self, sh: &mut Shard, keep: Option<Handle>, now: u32) -> bool {
        match self.oldest_tail(sh, None, keep) {
            Some((_, h)) => self.free_victim(sh, h, now),
            None => false,
        }
    }

    /// [`Cache::free_bytes`] in the first other shard whose lock is free.
    pub(super) fn free_bytes_elsewhere(&self, now: u32) -> bool {
        let start = self.evict_cursor.fetch_add(1, Ordering::Relaxed);
        (0..SHARDS).any(|i| match try_lock(&self.shards[(start + i) % SHARDS]) {
            Some(mut s) => match s.empty_page() {
                Some(p) => {
                    self.release(&mut s, p);
                    true
                }
                None if s.shrink_table() => {
                    self.sync_table(&mut s);
                    true
                }
                None => self.free_bytes(&mut s, None, now),
            },
            None => false,
        })
    }

    /// Make room for a store of `class` that can get no more slab pages,
    /// in the class's own memory (memcached evicts from the class's own
    /// LRU): the tail item whose chunk the new item fits, else the oldest
    /// large item of the class, else a page of the class (empty, or its
    /// tail's, whose items are evicted), here or in another shard whose
    /// lock is free. Asks automove 2 for a page when it evicted. Returns
    /// whether it freed anything.
    fn evict_own(
        &self,
        sh: &mut Shard,
        class: usize,
        chunk: usize,
        large: bool,
        keep: Option<Handle>,
        now: u32,
    ) -> bool {
        let evicted = if large {
            match self.oldest_large(sh, class, keep) {
                Some((_, None)) => match self.tail_except(sh, class, keep) {
                    Some(h) => {
                        self.evict(sh, h, now);
                        true
                    }
                    None => false,
                },
                Some((_, Some(i))) => self.evict_tail_of(i, class, now),
                None => false,
            }
        } else {
            match self.tail_of_chunk(sh, class, chunk, keep) {
                Some(h) => {
                    self.evict(sh, h, now);
                    true
                }
                None => false,
            }
        };
        if evicted {
            self.evicted_for(class);
            return true;
        }
        if let Some(p) = sh.empty_page_of(class) {
            self.release(sh, p);
            return true;
        }
        if let Some(h) = self.own_tail(sh, class, keep) {
            self.free_victim(sh, h, now);
            self.evicted_for(class);
            return true;
        }
        let start = self.evict_cursor.fetch_add(1, Ordering::Relaxed);
        (0..SHARDS).any(|i| {
            let Some(mut s) = try_lock(&self.shards[(start + i) % SHARDS]) else {
                return false;
            };
            if let Some(p) = s.empty_page_of(class) {
                self.release(&mut s, p);
                return true;
            }
            match s.tail(class) {
                Some(h) => self.free_victim(&mut s, h, now),
                None => false,
            }
        })
    }

    /// The tail of `class` in the shard, skipping `keep` and the items
    /// sharing its page.
    fn own_tail(&self, sh: &Shard, class: usize, keep: Option<Handle>) -> Option<Handle> {
        let keep_page = keep.and_then(Shard::page_of);
        let mut cur = sh.tail(class);
        while let Some(h) = cur {
            if Some(h) != keep && (keep_page.is_none() || Shard::page_of(h) != keep_page) {
                return Some(h);
            }
            cur = sh.prev(h);
        }
        None
    }
}
