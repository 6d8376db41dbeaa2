//! The cache's figures for the `stats` reports: per class (memcached's
//! `do_item_stats`, `do_slabs_stats`), the hash tables (`hash_power_level`,
//! `hash_bytes`) and the crawler's totals.

use super::lru::{COLD, HOT, WARM};
use super::shard::ClassStats;
use super::{Cache, ClassReport};
use crate::sync::lock;

impl Cache {
    /// Per-class figures, summed over shards, indexed by class id.
    pub fn class_reports(&self) -> Vec<ClassReport> {
        let now = self.clock.now();
        let mut out = vec![ClassReport::default(); self.classes.largest() + 1];
        for m in self.shards.iter() {
            let sh = lock(m);
            for (class, r) in out.iter_mut().enumerate() {
                let c = &sh.classes[class];
                r.stats.add(&c.stats);
                for (n, s) in r.seg_number.iter_mut().zip(&c.segs) {
                    *n += s.items;
                }
                let age = |seg| {
                    sh.seg_tail(class, seg)
                        .map_or(0, |t| now.saturating_sub(sh.view(t).time()))
                };
                r.age = r.age.max(age(COLD));
                r.age_hot = r.age_hot.max(age(HOT));
                r.age_warm = r.age_warm.max(age(WARM));
            }
        }
        out
    }

    /// `hash_power_level` and `hash_bytes`: log2 of the buckets of all
    /// shards' tables together, and the bytes those tables take.
    pub fn hash_stats(&self) -> (u32, usize) {
        let (mut buckets, mut bytes) = (0, 0);
        for m in self.shards.iter() {
            let (b, n) = lock(m).table_size();
            buckets += b;
            bytes += n;
        }
        (buckets.max(1).ilog2(), bytes)
    }

    /// The per-class counters summed over every class and shard (the
    /// crawler's and the LRU's figures of the general `stats`).
    pub fn class_totals(&self) -> ClassStats {
        let mut t = ClassStats::default();
        for m in self.shards.iter() {
            for c in lock(m).classes.iter() {
                t.add(&c.stats);
            }
        }
        t
    }

    /// `stats reset`: zero the counters, global and per class.
    pub fn reset_stats(&self) {
        self.stats.reset();
        self.crawler.reset();
        self.lru
            .juggles
            .store(0, std::sync::atomic::Ordering::Relaxed);
        for m in self.shards.iter() {
            for c in lock(m).classes.iter_mut() {
                c.stats.reset();
            }
        }
    }
}
