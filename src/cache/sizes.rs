//! `stats sizes`: memcached's histogram of item sizes (`items.c`'s
//! `item_stats_sizes*`), in 32-byte buckets of memcached's own item size
//! (`ITEM_ntotal`, [`super::items::mc_ntotal`]), so that the same items
//! give the same figures as memcached.
//!
//! Off unless `-o track_sizes` or `stats sizes_enable`; while off, linking
//! and unlinking an item costs one relaxed load. As in memcached, only
//! items with a CAS at least the one current when tracking started are
//! counted (older items were never added, so they are not taken away).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The histogram, when on.
#[derive(Debug)]
struct Hist {
    /// Items per bucket; bucket `i` holds sizes in `(32(i-1), 32i]`.
    buckets: Vec<u32>,
    /// Items with a lower CAS predate the histogram.
    cas_min: u64,
}

/// Whether `stats sizes_enable` worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnableResult {
    /// Tracking (already, or from now).
    Enabled,
    /// `-C`: memcached needs CAS to tell old items from new.
    NoCas,
}

/// The histogram and whether it is on.
#[derive(Debug)]
pub struct Sizes {
    /// Whether `hist` is `Some`: the one load of the hot path.
    on: AtomicBool,
    /// The histogram.
    hist: Mutex<Option<Hist>>,
    /// memcached's buckets reach `-I`.
    item_size_max: usize,
}

impl Sizes {
    /// Off, or on from the start with `track`.
    pub fn new(track: bool, item_size_max: usize) -> Sizes {
        let s = Sizes {
            on: AtomicBool::new(false),
            hist: Mutex::new(None),
            item_size_max,
        };
        if track {
            s.start(0);
        }
        s
    }

    fn start(&self, cas_min: u64) {
        let mut h = crate::sync::lock(&self.hist);
        if h.is_none() {
            *h = Some(Hist {
                buckets: vec![0; self.item_size_max / 32 + 1],
                cas_min,
            });
            self.on.store(true, Ordering::Relaxed);
        }
    }

    /// `stats sizes_enable`: count items stored from now on (with a CAS of
    /// `cas_now` or more).
    pub fn enable(&self, use_cas: bool, cas_now: u64) -> EnableResult {
        if !use_cas {
            return EnableResult::NoCas;
        }
        self.start(cas_now);
        EnableResult::Enabled
    }

    /// `stats sizes_disable`: forget the histogram.
    pub fn disable(&self) {
        let mut h = crate::sync::lock(&self.hist);
        *h = None;
        self.on.store(false, Ordering::Relaxed);
    }

    /// Whether the histogram is on (`stats settings`' `track_sizes`).
    pub fn enabled(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// The non-empty buckets as (size, items), or `None` when off.
    pub fn report(&self) -> Option<Vec<(usize, u32)>> {
        let h = crate::sync::lock(&self.hist);
        let h = h.as_ref()?;
        Some(
            h.buckets
                .iter()
                .enumerate()
                .filter(|(_, &n)| n != 0)
                .map(|(i, &n)| (i * 32, n))
                .collect(),
        )
    }

    /// An item of memcached size `ntotal` and this CAS was linked (`add`)
    /// or unlinked.
    #[inline]
    pub fn count(&self, ntotal: usize, cas: u64, add: bool) {
        if self.on.load(Ordering::Relaxed) {
            self.count_slow(ntotal, cas, add);
        }
    }

    #[cold]
    #[inline(never)]
    fn count_slow(&self, ntotal: usize, cas: u64, add: bool) {
        let mut h = crate::sync::lock(&self.hist);
        let Some(h) = h.as_mut() else { return };
        if cas < h.cas_min {
            return;
        }
        let bucket = ntotal.div_ceil(32);
        if let Some(b) = h.buckets.get_mut(bucket) {
            *b = if add {
                b.wrapping_add(1)
            } else {
                b.wrapping_sub(1)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_of_32_bytes_rounded_up_from_the_cas_of_the_start() {
        let s = Sizes::new(false, 1024 * 1024);
        assert_eq!(s.report(), None);
        s.count(65, 1, true);
        assert_eq!(s.enable(true, 5), EnableResult::Enabled);
        s.count(65, 4, true); // older than the histogram
        s.count(65, 5, true);
        s.count(64, 6, true);
        s.count(160, 7, true);
        assert_eq!(s.report(), Some(vec![(64, 1), (96, 1), (160, 1)]));
        s.count(65, 4, false);
        s.count(160, 7, false);
        assert_eq!(s.report(), Some(vec![(64, 1), (96, 1)]));
        s.disable();
        assert_eq!(s.report(), None);
        assert_eq!(s.enable(false, 9), EnableResult::NoCas);
        assert!(!s.enabled());
    }
}
