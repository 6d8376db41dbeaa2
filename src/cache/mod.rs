//! The cache: mirrors memcached's storage API of `items.c` / `memcached.c`
//! (`item_get`, `store_item`, `add_delta`, `item_touch`, `item_unlink`) over
//! a sharded table.
//!
//! This is the small API the protocol code calls; the engine behind it
//! can change without touching the protocols. Each shard is a hash table
//! plus an LRU list behind its own mutex ([`lru::Shard`]); a key's shard is
//! chosen by its hash, so two keys in different shards never contend. No
//! operation holds two shard locks at once.
//!
//! Memory is bounded by `-m`: every item is charged `item_ntotal` bytes (as
//! memcached charges `ITEM_ntotal`), and a store that would pass the limit
//! first evicts from the LRU tail of its shard, then of the others.

mod evict;
pub mod items;
pub mod lru;

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::clock::{Clock, ITEM_UPDATE_INTERVAL};
use items::{item_ntotal, Item};
use lru::Shard;

/// Number of shards (a power of two).
const SHARDS: usize = 64;

/// How a store command treats an existing item (memcached's `NREAD_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// Store unconditionally.
    Set,
    /// Store only if absent.
    Add,
    /// Store only if present.
    Replace,
    /// Add bytes after the present value.
    Append,
    /// Add bytes before the present value.
    Prepend,
    /// Store only if the CAS unique matches.
    Cas,
}

/// Outcome of a store (memcached's `enum store_item_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreResult {
    /// `STORED`
    Stored,
    /// `NOT_STORED`
    NotStored,
    /// `EXISTS`: the CAS did not match.
    Exists,
    /// `NOT_FOUND`: cas on a missing key.
    NotFound,
    /// The item can never fit (`SERVER_ERROR object too large for cache`).
    TooLarge,
    /// No room and eviction is off (`SERVER_ERROR out of memory storing object`).
    NoMemory,
}

/// Outcome of `incr` / `decr` (memcached's `enum delta_result_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaResult {
    /// The new value.
    Ok(u64),
    /// The value is not a decimal number.
    NonNumeric,
    /// No such key.
    NotFound,
    /// No memory for the new value.
    NoMemory,
}

/// Counters the cache keeps (memcached's `stats_state` and `itemstats`).
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Items linked now.
    pub curr_items: AtomicU64,
    /// Items ever linked.
    pub total_items: AtomicU64,
    /// Bytes charged for the linked items.
    pub bytes: AtomicUsize,
    /// Items evicted to make room.
    pub evictions: AtomicU64,
    /// Evicted items that were never read.
    pub evicted_unfetched: AtomicU64,
    /// Expired items whose memory was reused.
    pub reclaimed: AtomicU64,
    /// Expired items reclaimed that were never read.
    pub expired_unfetched: AtomicU64,
    /// Retrievals that found an expired item.
    pub get_expired: AtomicU64,
    /// Retrievals that found an item hidden by `flush_all`.
    pub get_flushed: AtomicU64,
}

impl CacheStats {
    /// `stats reset`: zero the counters (not the gauges `curr_items`, `bytes`).
    pub fn reset(&self) {
        for c in [
            &self.total_items,
            &self.evictions,
            &self.evicted_unfetched,
            &self.reclaimed,
            &self.expired_unfetched,
            &self.get_expired,
            &self.get_flushed,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// Why a linked entry is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Death {
    /// Its exptime has passed.
    Expired,
    /// `flush_all` hid it.
    Flushed,
}

/// The shared cache. One per process, used by every worker.
#[derive(Debug)]
pub struct Cache {
    /// The shards; a key lives in `shards[hash % SHARDS]`.
    shards: Box<[Mutex<Shard>]>,
    /// Hasher for keys (shard choice and table).
    hasher: hashbrown::DefaultHashBuilder,
    /// The server clock.
    clock: Arc<Clock>,
    /// `-m` in bytes; changed at run time only by `cache_memlimit`.
    limit: AtomicUsize,
    /// `-I` in bytes.
    item_size_max: usize,
    /// Whether to evict when full (`-M` clears it).
    evict_to_free: bool,
    /// Whether items get CAS uniques (`-C` clears it).
    use_cas: bool,
    /// Last CAS unique handed out (memcached's global `cas_id`).
    cas_id: AtomicU64,
    /// `flush_all` horizon: items last stored or bumped at or before this
    /// relative time are dead once the clock reaches it (0 = none).
    oldest_live: AtomicU32,
    /// Items with a CAS below this are dead too (the flush's own second).
    oldest_cas: AtomicU64,
    /// Where the next cross-shard eviction starts.
    evict_cursor: AtomicUsize,
    /// The shard the background pass visits next.
    crawl_cursor: AtomicUsize,
    /// Counters.
    pub stats: CacheStats,
}

/// A view of a live item handed to the protocol code.
pub type ItemRef = Arc<Item>;

impl Cache {
    /// A cache bounded to `limit` bytes.
    pub fn new(
        clock: Arc<Clock>,
        limit: usize,
        item_size_max: usize,
        evict_to_free: bool,
        use_cas: bool,
    ) -> Cache {
        Cache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: hashbrown::DefaultHashBuilder::default(),
            clock,
            limit: AtomicUsize::new(limit),
            item_size_max,
            evict_to_free,
            use_cas,
            cas_id: AtomicU64::new(0),
            oldest_live: AtomicU32::new(0),
            oldest_cas: AtomicU64::new(0),
            evict_cursor: AtomicUsize::new(0),
            crawl_cursor: AtomicUsize::new(0),
            stats: CacheStats::default(),
        }
    }

    /// The clock this cache reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The memory limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// `cache_memlimit`: a new limit in bytes. Lowering it frees nothing at
    /// once; later stores evict down to it.
    pub fn set_limit(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Relaxed);
    }

    /// Whether an item of this key and value length could ever be stored
    /// (memcached's `item_size_ok`).
    pub fn size_ok(&self, nkey: usize, flags: u32, nbytes: usize) -> bool {
        item_ntotal(nkey, flags, nbytes, self.use_cas) <= self.item_size_max
    }

    /// Whether memory for an item of this size can be had now, evicting if
    /// allowed. Used before reading a value so that a doomed store is
    /// swallowed, as memcached's `item_alloc` failing does.
    pub fn can_alloc(&self, nkey: usize, flags: u32, nbytes: usize) -> bool {
        let size = item_ntotal(nkey, flags, nbytes, self.use_cas);
        size <= self.limit() && (self.evict_to_free || self.fits(size) || self.free_elsewhere(size))
    }

    fn used(&self) -> usize {
        self.stats.bytes.load(Ordering::Relaxed)
    }

    fn next_cas(&self) -> u64 {
        if self.use_cas {
            self.cas_id.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            0
        }
    }

    fn locate(&self, key: &[u8]) -> (u64, MutexGuard<'_, Shard>) {
        let hash = self.hasher.hash_one(key);
        // Middle bits: hashbrown uses the top 7 bits as its control tag,
        // which must stay varied within a shard.
        let shard = (hash >> 32) as usize % SHARDS;
        let guard = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
        (hash, guard)
    }

    /// Whether a linked entry is dead: expired, or hidden by `flush_all`
    /// (memcached's `item_is_flushed` plus the exptime check).
    fn is_dead(&self, shard: &Shard, idx: usize, now: u32) -> Option<Death> {
        let e = shard.entry(idx);
        let oldest_live = self.oldest_live.load(Ordering::Relaxed);
        if oldest_live != 0 && oldest_live <= now {
            let oldest_cas = self.oldest_cas.load(Ordering::Relaxed);
            if e.time <= oldest_live
                || (oldest_cas != 0 && e.item.cas != 0 && e.item.cas < oldest_cas)
            {
                return Some(Death::Flushed);
            }
        }
        (e.exptime != 0 && e.exptime <= now).then_some(Death::Expired)
    }

    /// Reclaim dead entries among the last few of the LRU, as memcached's
    /// `lru_pull_tail` does before each allocation, counting `reclaimed`.
    fn reclaim_tail(&self, shard: &mut Shard, now: u32) {
        for idx in shard.tail_entries(5) {
            if self.is_dead(shard, idx, now).is_some() {
                self.reclaim(shard, idx);
            }
        }
    }

    fn unlink(&self, shard: &mut Shard, idx: usize) -> lru::Entry {
        let e = shard.remove(idx);
        self.stats.bytes.fetch_sub(e.size, Ordering::Relaxed);
        self.stats.curr_items.fetch_sub(1, Ordering::Relaxed);
        e
    }

    /// Look up a live entry, unlinking it lazily if it is dead.
    fn find_live(&self, shard: &mut Shard, hash: u64, key: &[u8], now: u32) -> Option<usize> {
        self.lookup(shard, hash, key, now).ok()
    }

    /// Like `find_live`, but says why a found entry was dead.
    fn lookup(
        &self,
        shard: &mut Shard,
        hash: u64,
        key: &[u8],
        now: u32,
    ) -> Result<usize, Option<Death>> {
        let idx = shard.find(hash, key).ok_or(None)?;
        if let Some(death) = self.is_dead(shard, idx, now) {
            self.unlink(shard, idx);
            return Err(Some(death));
        }
        Ok(idx)
    }

    /// `get` / `gat`: the live item for `key`, bumped in the LRU at most once
    /// per `ITEM_UPDATE_INTERVAL`. With `touch`, also sets a new relative
    /// exptime.
    pub fn get(&self, key: &[u8], touch: Option<u32>) -> Option<ItemRef> {
        let now = self.clock.now();
        let (hash, mut shard) = self.locate(key);
        let idx = match self.lookup(&mut shard, hash, key, now) {
            Ok(idx) => idx,
            Err(death) => {
                match death {
                    Some(Death::Expired) => self.stats.get_expired.fetch_add(1, Ordering::Relaxed),
                    Some(Death::Flushed) => self.stats.get_flushed.fetch_add(1, Ordering::Relaxed),
                    None => 0,
                };
                return None;
            }
        };
        let e = shard.entry_mut(idx);
        e.fetched = true;
        if let Some(exptime) = touch {
            e.exptime = exptime;
        }
        let item = e.item.clone();
        if e.time + ITEM_UPDATE_INTERVAL < now {
            shard.bump(idx, now);
        }
        Some(item)
    }

    /// `touch`: set a new relative exptime. Returns whether the key was live.
    pub fn touch(&self, key: &[u8], exptime: u32) -> bool {
        self.get(key, Some(exptime)).is_some()
    }

    /// `delete`. Returns whether a live item was removed.
    pub fn delete(&self, key: &[u8]) -> bool {
        let now = self.clock.now();
        let (hash, mut shard) = self.locate(key);
        match self.find_live(&mut shard, hash, key, now) {
            Some(idx) => {
                self.unlink(&mut shard, idx);
                true
            }
            None => false,
        }
    }

    /// Store `data` under `key` by the rules of `mode` (memcached's
    /// `do_store_item`). `exptime` is relative; `req_cas` is the client's
    /// CAS for `cas`, 0 otherwise. On `Stored`, returns the new CAS too.
    pub fn store(
        &self,
        mode: StoreMode,
        key: &[u8],
        flags: u32,
        exptime: u32,
        data: &[u8],
        req_cas: u64,
    ) -> (StoreResult, u64) {
        let now = self.clock.now();
        let (hash, mut shard) = self.locate(key);
        self.reclaim_tail(&mut shard, now);
        let old = self.find_live(&mut shard, hash, key, now);

        // Decide, and for append/prepend build the combined value.
        let (flags, exptime, value): (u32, u32, std::borrow::Cow<'_, [u8]>) = match (mode, old) {
            (StoreMode::Add, Some(idx)) => {
                // add only adds, but promotes the existing item.
                shard.bump(idx, now);
                return (StoreResult::NotStored, 0);
            }
            (StoreMode::Cas, None) => return (StoreResult::NotFound, 0),
            (StoreMode::Replace | StoreMode::Append | StoreMode::Prepend, None) => {
                return (StoreResult::NotStored, 0)
            }
            (StoreMode::Cas, Some(idx)) => {
                if req_cas == 0 || shard.entry(idx).item.cas != req_cas {
                    return (StoreResult::Exists, 0);
                }
                (flags, exptime, data.into())
            }
            (StoreMode::Append | StoreMode::Prepend, Some(idx)) => {
                let e = shard.entry(idx);
                if req_cas != 0 && e.item.cas != req_cas {
                    return (StoreResult::Exists, 0);
                }
                let mut v = Vec::with_capacity(e.item.data.len() + data.len());
                if mode == StoreMode::Append {
                    v.extend_from_slice(&e.item.data);
                    v.extend_from_slice(data);
                } else {
                    v.extend_from_slice(data);
                    v.extend_from_slice(&e.item.data);
                }
                if !self.size_ok(key.len(), e.item.flags, v.len()) {
                    return (StoreResult::NotStored, 0);
                }
                (e.item.flags, e.exptime, v.into())
            }
            (StoreMode::Set | StoreMode::Replace | StoreMode::Add, _) => {
                (flags, exptime, data.into())
            }
        };

        if !self.size_ok(key.len(), flags, value.len()) {
            return (StoreResult::TooLarge, 0);
        }
        let size = item_ntotal(key.len(), flags, value.len(), self.use_cas);
        let old_size = old.map(|i| shard.entry(i).size).unwrap_or(0);
        if !self.make_room(&mut shard, size.saturating_sub(old_size), old) {
            if matches!(mode, StoreMode::Append | StoreMode::Prepend) {
                return (StoreResult::NotStored, 0);
            }
            return (StoreResult::NoMemory, 0);
        }
        let cas = self.next_cas();
        let item = Arc::new(Item {
            key: key.into(),
            data: value.into_owned().into_boxed_slice(),
            flags,
            cas,
        });
        self.link(&mut shard, hash, old, item, exptime, now, size);
        (StoreResult::Stored, cas)
    }

    #[allow(clippy::too_many_arguments)]
    fn link(
        &self,
        shard: &mut Shard,
        hash: u64,
        old: Option<usize>,
        item: Arc<Item>,
        exptime: u32,
        now: u32,
        size: usize,
    ) {
        match old {
            Some(idx) => {
                let old_size = shard.replace(idx, item, exptime, now, size);
                self.stats.bytes.fetch_sub(old_size, Ordering::Relaxed);
            }
            None => {
                shard.insert(item, hash, exptime, now, size);
                self.stats.curr_items.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.stats.bytes.fetch_add(size, Ordering::Relaxed);
        self.stats.total_items.fetch_add(1, Ordering::Relaxed);
    }

    /// `incr` / `decr` (memcached's `do_add_delta`): the value must be a
    /// decimal number; `incr` wraps at 2^64, `decr` stops at 0. A result no
    /// longer than the old value is padded with spaces to the old length,
    /// as memcached rewrites such a value in place.
    pub fn delta(&self, key: &[u8], incr: bool, delta: u64) -> DeltaResult {
        let now = self.clock.now();
        let (hash, mut shard) = self.locate(key);
        let Some(idx) = self.find_live(&mut shard, hash, key, now) else {
            return DeltaResult::NotFound;
        };
        let e = shard.entry(idx);
        let Some(value) = parse_counter(&e.item.data) else {
            return DeltaResult::NonNumeric;
        };
        let value = if incr {
            value.wrapping_add(delta)
        } else {
            value.saturating_sub(delta)
        };
        let mut data = value.to_string().into_bytes();
        if data.len() <= e.item.data.len() {
            data.resize(e.item.data.len(), b' ');
        }
        let (flags, exptime) = (e.item.flags, e.exptime);
        let size = item_ntotal(key.len(), flags, data.len(), self.use_cas);
        let old_size = e.size;
        if !self.make_room(&mut shard, size.saturating_sub(old_size), Some(idx)) {
            return DeltaResult::NoMemory;
        }
        let item = Arc::new(Item {
            key: key.into(),
            data: data.into_boxed_slice(),
            flags,
            cas: self.next_cas(),
        });
        let in_place = size <= old_size;
        self.link(&mut shard, hash, Some(idx), item, exptime, now, size);
        // memcached rewrites a value that still fits in place: an update,
        // not a new item; a longer one is a new item.
        if in_place {
            self.stats.total_items.fetch_sub(1, Ordering::Relaxed);
        }
        DeltaResult::Ok(value)
    }

    /// `flush_all [delay]`: everything stored up to now (or up to `now +
    /// delay`) becomes invisible, as memcached's `settings.oldest_live`.
    /// `delay` is the client's exptime argument, already made relative.
    pub fn flush_all(&self, realtime_delay: u32) {
        let now = self.clock.now();
        let new_oldest = if realtime_delay > 0 {
            realtime_delay
        } else {
            now
        };
        if self.use_cas {
            let oldest = new_oldest.saturating_sub(1);
            self.oldest_live.store(oldest, Ordering::Relaxed);
            if oldest <= now {
                self.oldest_cas.store(self.next_cas(), Ordering::Relaxed);
            }
        } else {
            self.oldest_live.store(new_oldest, Ordering::Relaxed);
        }
    }
}

/// memcached's `safe_strtoull` applied to a stored value: optional leading
/// white space, an optional `+`, decimal digits, then the end or white space.
fn parse_counter(data: &[u8]) -> Option<u64> {
    crate::proto::number::strtoull(data)
}

#[cfg(test)]
mod tests;
