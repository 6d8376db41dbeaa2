//! The LRU maintainer thread: mirrors memcached's `lru_maintainer_thread`,
//! `lru_maintainer_juggle` and the moving part of `lru_pull_tail`
//! (`items.c`); and a fetch's mark in the LRU (`do_item_bump`,
//! `do_item_update`). The segments it keeps in shape are described in `lru.rs`.
//!
//! memcached has one LRU per class; here each shard has its own, and the
//! limits are the class's: a juggle first adds up the segments' bytes of
//! the class over all shards (memcached's `total_bytes`) and the oldest
//! COLD tail (its `cold_age`), then visits the shards in turn, taking
//! items off HOT and WARM while the class's HOT or WARM is over its share
//! or their tail is too old. A shard's lock is held for at most
//! [`STEPS_PER_LOCK`] pulls of each segment, then given up for the next
//! shard, so that a juggle never keeps a worker waiting long.

use super::items;
use super::lru::{Lru, COLD, HOT, SEGS, TEMP, WARM};
use super::shard::{Handle, Shard};
use super::{lock, Cache, SHARDS};
use crate::clock::ITEM_UPDATE_INTERVAL;

/// Shortest sleep between wake-ups, in microseconds
/// (`MIN_LRU_MAINTAINER_SLEEP`).
const MIN_SLEEP: u64 = 1_000;

/// Longest sleep between wake-ups (`MAX_LRU_MAINTAINER_SLEEP`).
const MAX_SLEEP: u64 = 1_000_000;

/// Pulls of a class's segments per juggle and shard, as memcached's 500
/// per class.
const PULLS: usize = 500;

/// Pulls done on one shard before its lock is given up.
const STEPS_PER_LOCK: usize = 16;

/// Items looked at from a segment's tail per pull (memcached's `tries`).
const TRIES: usize = 5;

impl Cache {
    /// The maintainer thread's body (memcached's `lru_maintainer_thread`):
    /// juggle each class, each with its own backoff, and sleep as long as
    /// the class wanting a visit soonest allows, until
    /// [`Cache::stop_lru_maintainer`].
    pub fn run_lru_maintainer(&self) {
        let n = self.classes.largest() + 1;
        let mut next = vec![0u64; n];
        let mut backoff = vec![0u64; n];
        let mut to_sleep = MIN_SLEEP;
        loop {
            // memcached does not sleep at all while a juggle keeps finding
            // work, and a key fetched again and again keeps it finding
            // some (its WARM item turns active after every rescue): it
            // spins as fast as the fetches come. Here a juggle visits every
            // shard, so the thread sleeps at least a millisecond between
            // wake-ups; a juggle's bounded moves (`PULLS` per shard) are
            // still far more than a class needs in that time.
            let last_sleep = to_sleep.max(MIN_SLEEP);
            if self.lru.sleep(last_sleep) {
                return;
            }
            to_sleep = MAX_SLEEP;
            self.lru
                .juggles
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            for class in 1..n {
                next[class] = next[class].saturating_sub(last_sleep);
                if next[class] > 0 {
                    to_sleep = to_sleep.min(next[class]);
                    continue;
                }
                let b = &mut backoff[class];
                if !self.lru.class_used(class) {
                    // Never held an item: look again in a second.
                    *b = MAX_SLEEP;
                } else if self.juggle(class) == 0 {
                    *b = if *b != 0 { *b + *b / 8 } else { MIN_SLEEP };
                    *b = (*b).min(MAX_SLEEP);
                } else if *b > 0 {
                    *b /= 2;
                    if *b < MIN_SLEEP {
                        *b = 0;
                    }
                }
                next[class] = *b;
                to_sleep = to_sleep.min(*b);
            }
        }
    }

    /// End the maintainer thread.
    pub fn stop_lru_maintainer(&self) {
        self.lru.stop();
    }

    /// One juggle of a class over all shards (memcached's
    /// `lru_maintainer_juggle`). Returns how many pulls did something.
    pub fn juggle(&self, class: usize) -> usize {
        let t = self.lru.tuning();
        let mut did = 0;
        // Figures of the class over all shards, each shard locked briefly.
        let mut bytes = [0u64; SEGS];
        let mut cold_age = 0;
        let mut any = false;
        for m in self.shards.iter() {
            let sh = lock(m);
            let now = self.clock.now();
            let segs = &sh.classes[class].segs;
            any |= segs.iter().any(|s| s.items > 0);
            for (b, s) in bytes.iter_mut().zip(segs) {
                *b += s.bytes;
            }
            if let Some(h) = sh.seg_tail(class, COLD) {
                cold_age = cold_age.max(now.saturating_sub(sh.view(h).time()));
            }
        }
        if !any {
            return 0;
        }
        // In flat mode HOT and WARM drain into COLD: no room, no age.
        let (total, hot_age, warm_age) = if t.segmented {
            (
                bytes[HOT] + bytes[WARM] + bytes[COLD],
                (f64::from(cold_age) * t.hot_factor) as u32,
                (f64::from(cold_age) * t.warm_factor) as u32,
            )
        } else {
            (0, 0, 0)
        };
        let hot_limit = total * u64::from(t.hot_pct) / 100;
        let warm_limit = total * u64::from(t.warm_pct) / 100;
        let start = self.lru.juggles.load(std::sync::atomic::Ordering::Relaxed) as usize;
        let mut left = [PULLS; SHARDS];
        let mut temp_left = [true; SHARDS];
        loop {
            let mut round = 0;
            for k in 0..SHARDS {
                let i = (start + k) % SHARDS;
                if left[i] == 0 {
                    continue;
                }
                let mut sh = lock(&self.shards[i]);
                let now = self.clock.now();
                for _ in 0..STEPS_PER_LOCK {
                    if left[i] == 0 {
                        break;
                    }
                    left[i] -= 1;
                    let before = [HOT, WARM].map(|s| sh.classes[class].segs[s].bytes);
                    // Only dead items leave TEMP.
                    let temp = t.temp_lru
                        && temp_left[i]
                        && self.pull_tail(&mut sh, class, TEMP, false, 0, now) > 0;
                    temp_left[i] &= temp;
                    let hot_warm =
                        self.pull_tail(&mut sh, class, HOT, bytes[HOT] > hot_limit, hot_age, now)
                            > 0
                            || self.pull_tail(
                                &mut sh,
                                class,
                                WARM,
                                bytes[WARM] > warm_limit,
                                warm_age,
                                now,
                            ) > 0;
                    let cold =
                        t.segmented && self.pull_tail(&mut sh, class, COLD, false, 0, now) > 0;
                    let more = temp || hot_warm || cold;
                    // Keep the class's figures current for the next pulls.
                    for (j, s) in [HOT, WARM].into_iter().enumerate() {
                        let after = sh.classes[class].segs[s].bytes;
                        bytes[s] = (bytes[s] + after).saturating_sub(before[j]);
                    }
                    if !more {
                        left[i] = 0;
                        break;
                    }
                    did += 1;
                    round += 1;
                }
            }
            if round == 0 {
                return did;
            }
        }
    }

    /// Look at up to [`TRIES`] items at the tail of one segment of a class
    /// (memcached's `lru_pull_tail` without eviction): dead items are
    /// taken back; in HOT and WARM an active item is rescued (HOT: to
    /// WARM; WARM: to its head) and an item is sent to COLD when the
    /// segment is `over` its limit or the item is older than `max_age`;
    /// in COLD an active item goes to WARM. Stops at the first item
    /// moved or kept. Returns how many items were taken back or moved.
    pub(super) fn pull_tail(
        &self,
        sh: &mut Shard,
        class: usize,
        seg: usize,
        over: bool,
        max_age: u32,
        now: u32,
    ) -> usize {
        let mut removed = 0;
        let mut cur = sh.seg_tail(class, seg);
        for _ in 0..TRIES {
            let Some(h) = cur else { break };
            cur = sh.seg_prev(h);
            let v = sh.view(h);
            if self.is_dead(v, now).is_some() {
                self.reclaim(sh, h, false);
                removed += 1;
                continue;
            }
            let (active, age) = (v.active(), now.saturating_sub(v.time()));
            match seg {
                HOT | WARM if active => {
                    items::set_active(sh.mem_mut(h), false);
                    removed += 1;
                    sh.move_to(class, h, WARM);
                    if seg == WARM {
                        sh.classes[class].stats.moves_within_lru += 1;
                        continue;
                    }
                    sh.classes[class].stats.moves_to_warm += 1;
                }
                HOT | WARM if over || age > max_age => {
                    sh.move_to(class, h, COLD);
                    sh.classes[class].stats.moves_to_cold += 1;
                    removed += 1;
                }
                COLD if active && self.lru.segmented() => {
                    items::set_active(sh.mem_mut(h), false);
                    sh.move_to(class, h, WARM);
                    sh.classes[class].stats.moves_to_warm += 1;
                    removed += 1;
                }
                _ => {}
            }
            break;
        }
        removed
    }
}

impl Cache {
    /// The LRU's settings and the maintainer's state.
    pub fn lru(&self) -> &Lru {
        &self.lru
    }

    /// Relink an item whose fetch [`items::mark_fetch`] found needs it:
    /// segmented, an item turned active in COLD goes to WARM now (where
    /// memcached queues it for the maintainer); flat, a bump to the head.
    pub(super) fn fetch_relink(&self, sh: &mut Shard, h: Handle, class: usize, now: u32) {
        if self.lru.segmented() {
            self.update(sh, h, class, now);
        } else {
            sh.bump(h, now);
        }
    }

    /// A use of the linked item `h` that keeps it (memcached's
    /// `do_item_update`): segmented, an active item in COLD goes to
    /// WARM's head, and any other gets its time updated; flat, the bump
    /// of at most once per `ITEM_UPDATE_INTERVAL`.
    pub(super) fn update(&self, sh: &mut Shard, h: Handle, class: usize, now: u32) {
        if !self.lru.segmented() {
            if sh.view(h).time() + ITEM_UPDATE_INTERVAL < now {
                sh.bump(h, now);
            }
            return;
        }
        let v = sh.view(h);
        let (seg, active) = (v.seg(), v.active());
        let mem = sh.mem_mut(h);
        items::set_u32(mem, items::TIME, now);
        if seg == COLD && active {
            items::set_active(mem, false);
            sh.move_to(class, h, WARM);
            sh.classes[class].stats.moves_to_warm += 1;
        }
    }
}
