//! The cache's figures for the `stats` reports: per class (memcached's
//! `do_item_stats`, `do_slabs_stats`), the hash tables (`hash_power_level`,
//! `hash_bytes`) and the crawler's totals.

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
                r.stats.add(&sh.classes[class].stats);
                if let Some(t) = sh.tail(class) {
                    r.age = r.age.max(now.saturating_sub(sh.view(t).time()));
                }
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

    /// Items the background pass took back, and items it looked at.
    pub fn crawler_totals(&self) -> (u64, u64) {
        let mut t = ClassStats::default();
        for m in self.shards.iter() {
            for c in lock(m).classes.iter() {
                t.add(&c.stats);
            }
        }
        (t.crawler_reclaimed, t.crawler_items_checked)
    }

    /// `stats reset`: zero the counters, global and per class.
    pub fn reset_stats(&self) {
        self.stats.reset();
        self.crawler.reset();
        for m in self.shards.iter() {
            for c in lock(m).classes.iter_mut() {
                c.stats.reset();
            }
        }
    }
}
