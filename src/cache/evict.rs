//! Making room: mirrors memcached's `lru_pull_tail` (reclaiming dead items
//! and evicting from the LRU tail) and, in `crawl_step`, the LRU crawler.

use std::sync::atomic::Ordering;

use super::lru::{self, Shard};
use super::{Cache, SHARDS};

impl Cache {
    /// Free memory until `need` more bytes fit under the limit: dead
    /// entries at the tail of the locked shard first, then (unless `-M`)
    /// live ones, never the entry `keep`. When this shard has nothing left
    /// to give, the other shards are asked ([`Cache::free_elsewhere`]).
    pub(super) fn make_room(&self, shard: &mut Shard, need: usize, keep: Option<usize>) -> bool {
        let now = self.clock.now();
        loop {
            if self.fits(need) {
                return true;
            }
            let tail = shard.tail_entries(5);
            if let Some(&idx) = tail
                .iter()
                .find(|&&i| Some(i) != keep && self.is_dead(shard, i, now).is_some())
            {
                self.reclaim(shard, idx);
                continue;
            }
            match tail.into_iter().find(|&i| Some(i) != keep) {
                Some(idx) if self.evict_to_free => {
                    let e = self.unlink(shard, idx);
                    self.count_eviction(&e);
                }
                _ => return self.free_elsewhere(need),
            }
        }
    }

    pub(super) fn fits(&self, need: usize) -> bool {
        self.used() + need <= self.limit()
    }

    /// Unlink a dead entry, counting it as memcached counts a reclaim.
    pub(super) fn reclaim(&self, shard: &mut Shard, idx: usize) {
        let e = self.unlink(shard, idx);
        self.stats.reclaimed.fetch_add(1, Ordering::Relaxed);
        if !e.fetched {
            self.stats.expired_unfetched.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn count_eviction(&self, e: &lru::Entry) {
        self.stats.evictions.fetch_add(1, Ordering::Relaxed);
        if !e.fetched {
            self.stats.evicted_unfetched.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Free memory in the other shards: first reclaim dead entries at their
    /// tails (also with `-M`), then, if eviction is on, evict their tails.
    /// Shards are visited from a rotating start so that no shard is always
    /// the victim, and only *tried*: a busy shard (the caller's own among
    /// them) is skipped, so this never waits for a second lock.
    pub(super) fn free_elsewhere(&self, need: usize) -> bool {
        let now = self.clock.now();
        let start = self.evict_cursor.fetch_add(1, Ordering::Relaxed);
        for evict in [false, true] {
            if evict && !self.evict_to_free {
                break;
            }
            for i in 0..SHARDS {
                let Ok(mut s) = self.shards[(start + i) % SHARDS].try_lock() else {
                    continue;
                };
                while !self.fits(need) {
                    let victim = if evict {
                        s.tail()
                    } else {
                        s.tail_entries(5)
                            .into_iter()
                            .find(|&i| self.is_dead(&s, i, now).is_some())
                    };
                    let Some(idx) = victim else { break };
                    if evict {
                        let e = self.unlink(&mut s, idx);
                        self.count_eviction(&e);
                    } else {
                        self.reclaim(&mut s, idx);
                    }
                }
                if self.fits(need) {
                    return true;
                }
            }
        }
        self.fits(need)
    }

    /// One step of the background pass (memcached's LRU crawler): reclaim
    /// every dead entry of the next shard. The main thread calls this once
    /// a second, so a cache full of expired or flushed items frees itself
    /// within `SHARDS` seconds even when nothing touches those keys.
    pub fn crawl_step(&self) {
        let now = self.clock.now();
        let i = self.crawl_cursor.fetch_add(1, Ordering::Relaxed) % SHARDS;
        let mut s = self.shards[i].lock().unwrap_or_else(|e| e.into_inner());
        for idx in s.indices() {
            if self.is_dead(&s, idx, now).is_some() {
                self.reclaim(&mut s, idx);
            }
        }
    }
}
