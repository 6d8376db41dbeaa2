//! The segmented LRU: mirrors memcached's HOT, WARM, COLD and TEMP LRUs
//! of `items.c` (`do_item_alloc`'s choice of LRU, `do_item_bump`,
//! `do_item_update`) and the `lru` command's tunables of `settings`.
//!
//! Each class of each shard has four lists (`shard::SegList`); an item's
//! segment is kept in its header (two spare bits of `nbytes`, see
//! `items.rs`), and its "fetched twice" mark in the `ACTIVE` flag.
//!
//! | segment | what enters it | where it leaves to |
//! | --- | --- | --- |
//! | HOT | new items | COLD when HOT is over `hot_lru_pct` of the class or older than `hot_max_factor` × COLD's tail age; WARM if active |
//! | WARM | items fetched twice (active) | COLD when over `warm_lru_pct` or older than `warm_max_factor` × COLD's tail age; its head if active again |
//! | COLD | items HOT and WARM let go; every item in flat mode | evicted from the tail; WARM when fetched twice |
//! | TEMP | new items whose TTL is at most `temporary_ttl` (with `temp_lru`) | nowhere: they expire |
//!
//! The moves between HOT, WARM and COLD are the LRU maintainer thread's
//! (`maintain.rs`, which also holds a fetch's bump), except one: an item fetched twice while in COLD.
//! memcached hands that move to the maintainer through a per-worker bump
//! buffer, because its LRU lock is not the item lock the fetch holds. Here
//! the fetch already holds the shard's lock, which covers the class's
//! lists, and the move is two unlinks and a link: it is done at once, and
//! there is no buffer to bound and nothing to drop (`lru_bumps_dropped`
//! stays 0).
//!
//! A fetch in segmented mode only sets flags, or updates the time of an
//! item becoming active in HOT or WARM: an item is relinked by a fetch at
//! most once (COLD to WARM) until the maintainer moves it again, and
//! fetching an active item writes nothing. In flat mode (`lru mode flat`,
//! `-o no_lru_maintainer`) every item is in COLD and a fetch relinks it at
//! most once per `ITEM_UPDATE_INTERVAL` (60 s), as before.
//!
//! Evictions take COLD's tail first. Where memcached would give up (COLD
//! and HOT empty: an out-of-memory error) the tail of HOT, then WARM, then
//! TEMP is taken instead ([`EVICT_ORDER`]), so that a store still finds
//! room; across classes and shards an item of an earlier segment in that
//! order goes before any item of a later one.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// New items (memcached's `HOT_LRU`).
pub const HOT: usize = 0;
/// Items fetched twice (`WARM_LRU`).
pub const WARM: usize = 1;
/// Items on their way out (`COLD_LRU`); every item in flat mode.
pub const COLD: usize = 2;
/// Items with a short TTL (`TEMP_LRU`), with `temporary_ttl`.
pub const TEMP: usize = 3;
/// Number of segments.
pub const SEGS: usize = 4;

/// The order segments give up items to evictions: a class's eviction
/// walk (`Shard::tail`, `Shard::prev`) goes through them in turn.
pub const EVICT_ORDER: [usize; SEGS] = [COLD, HOT, WARM, TEMP];

/// Where a segment comes in [`EVICT_ORDER`] (0 first).
pub fn evict_rank(seg: usize) -> u8 {
    [1, 2, 0, 3][seg]
}

/// The LRU's settings, changed at run time by the `lru` command, and the
/// maintainer thread's state. Read by every store (the new item's
/// segment) and fetch (segmented or flat), written by the `lru` command.
#[derive(Debug)]
pub struct Lru {
    /// The maintainer thread runs (`-o no_lru_maintainer` clears it); then
    /// `lru mode` and `lru temp_ttl` are refused, as in memcached.
    maintainer: bool,
    /// HOT/WARM/COLD, or one LRU (COLD) when false (`lru mode`).
    segmented: AtomicBool,
    /// Short-TTL items go to TEMP (`temporary_ttl`, `lru temp_ttl`).
    temp_lru: AtomicBool,
    /// The TTL at or under which an item goes to TEMP.
    temporary_ttl: AtomicU32,
    /// Percent of a class's bytes HOT may hold.
    hot_pct: AtomicU32,
    /// Percent of a class's bytes WARM may hold.
    warm_pct: AtomicU32,
    /// HOT's tail may be this times COLD's tail age (an `f64`'s bits).
    hot_factor: AtomicU64,
    /// WARM's tail may be this times COLD's tail age (an `f64`'s bits).
    warm_factor: AtomicU64,
    /// Wake-ups of the maintainer thread (`lru_maintainer_juggles`).
    pub juggles: AtomicU64,
    /// Bit `c` (ids above 63 share bit 63): class `c` has held an item,
    /// so the maintainer has something to juggle there. Set by stores.
    used: AtomicU64,
    /// Set to stop the maintainer thread.
    stop: Mutex<bool>,
    /// Wakes the maintainer thread from its sleep to stop.
    wake: Condvar,
}

/// A snapshot of the [`Lru`] settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LruTuning {
    /// Segmented (true) or flat.
    pub segmented: bool,
    /// TEMP is in use.
    pub temp_lru: bool,
    /// Its TTL bound.
    pub temporary_ttl: u32,
    /// `hot_lru_pct`.
    pub hot_pct: u32,
    /// `warm_lru_pct`.
    pub warm_pct: u32,
    /// `hot_max_factor`.
    pub hot_factor: f64,
    /// `warm_max_factor`.
    pub warm_factor: f64,
}

impl Lru {
    /// The LRU with the maintainer on or off and these settings.
    pub fn new(maintainer: bool, t: LruTuning) -> Lru {
        Lru {
            maintainer,
            segmented: AtomicBool::new(t.segmented),
            temp_lru: AtomicBool::new(t.temp_lru),
            temporary_ttl: AtomicU32::new(t.temporary_ttl),
            hot_pct: AtomicU32::new(t.hot_pct),
            warm_pct: AtomicU32::new(t.warm_pct),
            hot_factor: AtomicU64::new(t.hot_factor.to_bits()),
            warm_factor: AtomicU64::new(t.warm_factor.to_bits()),
            juggles: AtomicU64::new(0),
            used: AtomicU64::new(0),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        }
    }

    /// Whether the maintainer thread runs.
    pub fn maintainer(&self) -> bool {
        self.maintainer
    }

    /// Whether the LRU is segmented now.
    pub fn segmented(&self) -> bool {
        self.segmented.load(Ordering::Relaxed)
    }

    /// The settings now.
    pub fn tuning(&self) -> LruTuning {
        let r = Ordering::Relaxed;
        LruTuning {
            segmented: self.segmented.load(r),
            temp_lru: self.temp_lru.load(r),
            temporary_ttl: self.temporary_ttl.load(r),
            hot_pct: self.hot_pct.load(r),
            warm_pct: self.warm_pct.load(r),
            hot_factor: f64::from_bits(self.hot_factor.load(r)),
            warm_factor: f64::from_bits(self.warm_factor.load(r)),
        }
    }

    /// `lru mode flat|segmented`.
    pub fn set_segmented(&self, on: bool) {
        self.segmented.store(on, Ordering::Relaxed);
    }

    /// `lru temp_ttl N`: a negative TTL turns TEMP off.
    pub fn set_temp_ttl(&self, ttl: i32) {
        if ttl < 0 {
            self.temp_lru.store(false, Ordering::Relaxed);
        } else {
            self.temporary_ttl.store(ttl as u32, Ordering::Relaxed);
            self.temp_lru.store(true, Ordering::Relaxed);
        }
    }

    /// `lru tune`: the limits, already checked.
    pub fn tune(&self, hot_pct: u32, warm_pct: u32, hot_factor: f64, warm_factor: f64) {
        let r = Ordering::Relaxed;
        self.hot_pct.store(hot_pct, r);
        self.warm_pct.store(warm_pct, r);
        self.hot_factor.store(hot_factor.to_bits(), r);
        self.warm_factor.store(warm_factor.to_bits(), r);
    }

    /// The segment a new item with this relative exptime starts in
    /// (memcached's `do_item_alloc`): TEMP if its TTL is short, else HOT,
    /// or COLD in flat mode. The TTL is memcached's unsigned difference,
    /// so an item that never expires or is already expired is not TEMP.
    pub fn new_seg(&self, exptime: u32, now: u32) -> usize {
        let r = Ordering::Relaxed;
        if self.temp_lru.load(r)
            && exptime != 0
            && exptime.wrapping_sub(now) <= self.temporary_ttl.load(r)
        {
            TEMP
        } else if self.segmented.load(r) {
            HOT
        } else {
            COLD
        }
    }

    /// Note that `class` holds an item (a load, and a write only the first
    /// time).
    #[inline]
    pub fn note_class(&self, class: usize) {
        let bit = 1u64 << class.min(63);
        if self.used.load(Ordering::Relaxed) & bit == 0 {
            self.used.fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// Whether `class` may hold items (see [`Lru::note_class`]).
    pub fn class_used(&self, class: usize) -> bool {
        self.used.load(Ordering::Relaxed) & 1u64 << class.min(63) != 0
    }

    /// Sleep for `us` microseconds, or until told to stop. Returns whether
    /// to stop.
    pub(super) fn sleep(&self, us: u64) -> bool {
        let stop = crate::sync::lock(&self.stop);
        if *stop {
            return true;
        }
        let (stop, _) = self
            .wake
            .wait_timeout_while(stop, Duration::from_micros(us), |s| !*s)
            .unwrap_or_else(|e| e.into_inner());
        *stop
    }

    /// Tell the maintainer thread to stop.
    pub fn stop(&self) {
        *crate::sync::lock(&self.stop) = true;
        self.wake.notify_all();
    }
}
