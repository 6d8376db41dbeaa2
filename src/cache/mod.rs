//! The cache: mirrors memcached's storage API of `items.c` / `memcached.c`
//! (`item_get`, `store_item`, `add_delta`, `item_touch`, `item_unlink`) over
//! sharded slab storage.
//!
//! This is the small API the protocol code calls; the engine behind it can
//! change without touching the protocols. The cache is split into shards
//! ([`shard::Shard`]), each a hash table, slab pages and a segmented LRU
//! (HOT, WARM, COLD, TEMP; see [`lru`]) per slab class behind one mutex; a key's shard is chosen by its hash, so two keys
//! in different shards never contend, and a get takes exactly one lock.
//! Nothing ever waits for a second shard's lock while holding one: work on
//! other shards (eviction to free memory) only *tries* their locks.
//!
//! Memory is bounded by `-m`, counted the way it is really spent: every
//! slab page, every large item's allocation and every shard's hash table
//! are charged to one budget ([`Cache::used`]). A store that finds
//! the budget spent takes the tail of its class's LRU in its shard, as
//! memcached's `lru_pull_tail` does, and failing that frees a page (see
//! `evict.rs`).
//!
//! Beside that budget, a ledger ([`ledger`]) keeps memcached's slab page
//! ownership: how many `slab_page_size` pages each class owns, the global
//! page pool and `total_malloced`. A class that can get no more pages
//! evicts from its own LRU, and pages change class only through the slab
//! mover ([`mover`]: `slabs reassign`, `slabs automove`).
//!
//! | file | holds | memcached |
//! | --- | --- | --- |
//! | `mod.rs` | `Cache`: lookups, deletes, touch, the memory budget | `item_get`, `item_unlink`, `item_touch` |
//! | `store.rs` | stores and arithmetic | `do_store_item`, `do_add_delta` |
//! | [`meta`] | what the meta commands need | `process_mget_command`'s item checks |
//! | [`shard`] | one shard: table, slab pages, LRUs | `assoc.c`, `slabs.c`, the LRU of `items.c` |
//! | [`items`] | an item's bytes and size rules | `item`, `item_make_header` |
//! | [`slabs`] | slab classes | `slabs_init`, `slabs_clsid` |
//! | `evict.rs` | making room | `lru_pull_tail` |
//! | [`lru`] | the LRU segments, a fetch's bump, the `lru` settings | `do_item_bump`, `do_item_update`, `settings.*_lru_*` |
//! | `maintain.rs` | the LRU maintainer thread's juggles | `lru_maintainer_thread`, `lru_maintainer_juggle` |
//! | [`ledger`] | slab pages owned per class, the global pool, `total_malloced` | `slabclass[].slabs`, `mem_malloced`, `do_slabs_newslab` |
//! | [`mover`] | the slab mover's settings, mailbox and counters | `slab_rebal`, `stats.slab_reassign_*` |
//! | `rebalance.rs` | the mover thread's loop and moves | `slab_rebalance_thread`, `slab_rebalance_move` |
//! | `automove.rs` | automove 1's decision | `slab_automove.c` |
//! | [`crawler`] | the LRU crawler's settings, counters and thread mailbox | `crawler.c` |
//! | `crawl.rs` | the crawler thread's walks: crawls on demand, the background pass | `item_crawler_thread` |
//! | [`metadump`] | `lru_crawler metadump` as a cursor | `crawler.c`'s metadump |
//! | `flush.rs` | the `flush_all` horizon | `settings.oldest_live` |
//! | `dump.rs` | `stats cachedump`'s walk | `item_cachedump` |
//! | `report.rs` | figures for `stats items`, `stats slabs` | `do_item_stats`, `do_slabs_stats` |
//! | [`sizes`] | `stats sizes`' histogram | `item_stats_sizes*` |

mod automove;
mod crawl;
pub mod crawler;
mod dump;
mod evict;
mod flush;
pub mod items;
pub mod ledger;
pub mod lru;
mod maintain;
pub mod meta;
pub mod metadump;
pub mod mover;
mod rebalance;
mod report;
pub mod shard;
pub mod sizes;
pub mod slabs;
mod store;

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::clock::{Clock, ITEM_UPDATE_INTERVAL};
use crate::logger;
use crate::sync::{lock, try_lock};
use crawler::Crawler;
use flush::{FlushPair, Horizon};
use items::{mc_ntotal, Item, ItemView};
use ledger::Ledger;
use lru::{Lru, LruTuning};
use mover::{Mover, MoverConfig};
use shard::{ClassStats, Handle, Shard};
use slabs::{ClassParams, Classes};

/// Number of shards (a power of two).
pub const SHARDS: usize = 16;

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
    /// The item's CAS is not the one asked for (binary protocol).
    Exists,
}

/// Outcome of a delete with a CAS (binary protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteResult {
    /// Deleted.
    Deleted,
    /// No such key.
    NotFound,
    /// The item's CAS is not the one asked for.
    Exists,
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

/// How a cache is sized and behaves (from the settings).
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// `-m` in bytes.
    pub limit: usize,
    /// `-I` in bytes.
    pub item_size_max: usize,
    /// Evict when full (`-M` clears it).
    pub evict_to_free: bool,
    /// Give items CAS uniques (`-C` clears it).
    pub use_cas: bool,
    /// `-n`.
    pub chunk_size: usize,
    /// `-f`.
    pub factor: f64,
    /// `-o slab_chunk_max`.
    pub slab_chunk_max: usize,
    /// `-o slab_sizes`.
    pub slab_sizes: Vec<u32>,
    /// The LRU crawler is on (`-o lru_crawler`, `no_lru_crawler`).
    pub lru_crawler: bool,
    /// `-o lru_crawler_sleep`, in microseconds.
    pub lru_crawler_sleep: u32,
    /// `-o lru_crawler_tocrawl`.
    pub lru_crawler_tocrawl: u32,
    /// `-o track_sizes`: `stats sizes` from the start.
    pub track_sizes: bool,
    /// The LRU maintainer thread runs (`-o no_lru_maintainer` clears it).
    pub lru_maintainer: bool,
    /// The LRU's settings at start (`lru_segmented`, `temporary_ttl`,
    /// `hot_lru_pct`, ...).
    pub lru: LruTuning,
    /// memcached's `slab_page_size`: the ledger's page.
    pub slab_page_size: usize,
    /// The slab mover's settings.
    pub mover: MoverConfig,
}

impl CacheConfig {
    /// The configuration `settings` asks for.
    pub fn from_settings(s: &crate::settings::Settings) -> CacheConfig {
        CacheConfig {
            limit: s.maxbytes,
            item_size_max: s.item_size_max,
            evict_to_free: s.evict_to_free,
            use_cas: s.use_cas,
            chunk_size: s.chunk_size,
            factor: s.factor,
            slab_chunk_max: s.slab_chunk_size_max,
            slab_sizes: s.slab_sizes.clone(),
            lru_crawler: s.lru_crawler,
            lru_crawler_sleep: s.lru_crawler_sleep,
            lru_crawler_tocrawl: s.lru_crawler_tocrawl,
            track_sizes: s.track_sizes,
            lru_maintainer: s.lru_maintainer_thread,
            lru: LruTuning {
                segmented: s.lru_segmented,
                temp_lru: s.temp_lru,
                temporary_ttl: s.temporary_ttl,
                hot_pct: s.hot_lru_pct,
                warm_pct: s.warm_lru_pct,
                hot_factor: s.hot_max_factor,
                warm_factor: s.warm_max_factor,
            },
            slab_page_size: s.slab_page_size,
            mover: MoverConfig {
                enabled: s.slab_reassign,
                maintainer: s.lru_maintainer_thread,
                automove: s.slab_automove,
                ratio: s.slab_automove_ratio,
                window: s.slab_automove_window,
            },
        }
    }

    /// memcached's defaults with this limit.
    pub fn with_limit(limit: usize) -> CacheConfig {
        CacheConfig {
            limit,
            ..CacheConfig::from_settings(&crate::settings::Settings::default())
        }
    }
}

/// Options of a store that only the meta protocol uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreOpts {
    /// Meta flags the new item starts with (`items::KEY_BINARY`).
    pub meta: u8,
    /// `ms ... I`: a CAS older than the item's still stores, marking the
    /// value stale (memcached's `set_stale`).
    pub set_stale: bool,
}

/// Per-class figures for `stats items` and `stats slabs`.
#[derive(Debug, Clone, Default)]
pub struct ClassReport {
    /// Counters summed over shards.
    pub stats: ClassStats,
    /// Seconds since the oldest COLD tail item of the class was bumped.
    pub age: u32,
    /// The same for HOT.
    pub age_hot: u32,
    /// The same for WARM.
    pub age_warm: u32,
    /// Items in each segment (`lru::HOT` .. `lru::TEMP`).
    pub seg_number: [u64; lru::SEGS],
}

/// The shared cache. One per process, used by every worker.
#[derive(Debug)]
pub struct Cache {
    /// The shards; a key lives in `shards[(hash >> 32) % SHARDS]`.
    shards: Box<[Mutex<Shard>]>,
    /// Hasher for keys (shard choice and tables).
    hasher: hashbrown::DefaultHashBuilder,
    /// The slab classes.
    classes: Classes,
    /// The server clock.
    clock: Arc<Clock>,
    /// `-m` in bytes; changed at run time only by `cache_memlimit`.
    limit: AtomicUsize,
    /// Bytes allocated now: pages, large items and hash tables.
    malloced: AtomicUsize,
    /// Of those, the hash tables'.
    table_bytes: AtomicUsize,
    /// `-I` in bytes.
    item_size_max: usize,
    /// Whether to evict when full (`-M` clears it).
    evict_to_free: bool,
    /// Whether items get CAS uniques (`-C` clears it).
    use_cas: bool,
    /// Last CAS unique handed out (memcached's global `cas_id`).
    cas_id: AtomicU64,
    /// `flush_all` horizon: items last stored or bumped at or before its
    /// relative time, or with a CAS below its CAS, are dead once the clock
    /// reaches that time. Written by `flush_all`, read by every lookup.
    flush: Horizon,
    /// Where the next search of other shards starts.
    evict_cursor: AtomicUsize,
    /// The shard the background pass visits next.
    crawl_cursor: AtomicUsize,
    /// The LRU crawler's settings and state; its thread runs
    /// [`Cache::run_crawler`].
    crawler: Crawler,
    /// The LRU's settings and the maintainer's state; its thread runs
    /// [`Cache::run_lru_maintainer`].
    lru: Lru,
    /// Slab pages owned per class, the global pool, `total_malloced`.
    ledger: Ledger,
    /// The slab mover's settings, mailbox and counters; its thread runs
    /// [`Cache::run_mover`].
    mover: Mover,
    /// Debug builds only: a key whose `get` makes the worker serving it
    /// panic (`RMEMCACHED_DEBUG_PANIC_KEY`, read once here at start-up),
    /// so that a test can watch the worker death policy at work.
    #[cfg(debug_assertions)]
    panic_key: Option<Box<[u8]>>,
    /// Counters.
    pub stats: CacheStats,
    /// `stats sizes`' histogram, when on.
    pub sizes: sizes::Sizes,
}

impl Cache {
    /// A cache as `config` describes.
    pub fn new(clock: Arc<Clock>, config: &CacheConfig) -> Cache {
        let classes = Classes::new(ClassParams {
            chunk_size: config.chunk_size,
            factor: config.factor,
            slab_chunk_max: config.slab_chunk_max,
            slab_sizes: &config.slab_sizes,
            page_size: slabs::page_size_for(config.limit, SHARDS),
        });
        let hasher = hashbrown::DefaultHashBuilder::default();
        let ledger = Ledger::new(config.slab_page_size, classes.largest() + 1);
        Cache {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(Shard::new(hasher, classes.largest() + 1)))
                .collect(),
            hasher,
            classes,
            clock,
            limit: AtomicUsize::new(config.limit),
            malloced: AtomicUsize::new(0),
            table_bytes: AtomicUsize::new(0),
            item_size_max: config.item_size_max,
            evict_to_free: config.evict_to_free,
            use_cas: config.use_cas,
            cas_id: AtomicU64::new(0),
            flush: Horizon::default(),
            evict_cursor: AtomicUsize::new(0),
            crawl_cursor: AtomicUsize::new(0),
            crawler: Crawler::new(
                config.lru_crawler,
                config.lru_crawler_sleep,
                config.lru_crawler_tocrawl,
            ),
            lru: Lru::new(config.lru_maintainer, config.lru),
            ledger,
            mover: Mover::new(config.mover),
            #[cfg(debug_assertions)]
            panic_key: std::env::var_os("RMEMCACHED_DEBUG_PANIC_KEY")
                .map(|k| k.into_encoded_bytes().into_boxed_slice()),
            stats: CacheStats::default(),
            sizes: sizes::Sizes::new(config.track_sizes, config.item_size_max),
        }
    }

    /// `stats sizes_enable`: count the items stored from now on.
    pub fn sizes_enable(&self) -> sizes::EnableResult {
        let next = self.cas_id.load(Ordering::Relaxed) + 1;
        self.sizes.enable(self.use_cas, next)
    }

    /// Count a linked (`add`) or unlinked item in `stats sizes`.
    #[inline]
    fn count_size(&self, v: ItemView<'_>, add: bool) {
        if self.sizes.enabled() {
            let n = mc_ntotal(v.key().len(), v.flags(), v.data().len(), self.use_cas);
            self.sizes.count(n, v.cas(), add);
        }
    }

    /// The clock this cache reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The slab classes.
    pub fn classes(&self) -> &Classes {
        &self.classes
    }

    /// The memory limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// memcached's `total_malloced`: bytes of the slab pages the ledger
    /// granted (owned by classes or in the global pool).
    pub fn total_malloced(&self) -> usize {
        self.ledger.malloced()
    }

    /// The slab page ledger: pages per class, the global pool.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Bytes really allocated for items now: shard pages and large items.
    pub fn item_malloced(&self) -> usize {
        self.used()
            .saturating_sub(self.table_bytes.load(Ordering::Relaxed))
    }

    /// Bytes charged to the `-m` budget: items plus hash tables.
    pub fn used(&self) -> usize {
        self.malloced.load(Ordering::Relaxed)
    }

    /// `cache_memlimit`: a new limit in bytes. Lowering it frees nothing at
    /// once; later stores evict down to it and emptied pages are released.
    pub fn set_limit(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Relaxed);
        self.ledger.set_limit(bytes);
    }

    /// Whether an item of this key and value length could ever be stored
    /// (memcached's `item_size_ok`, with memcached's own item size, so
    /// that the largest value accepted is the same).
    pub fn size_ok(&self, nkey: usize, flags: u32, nbytes: usize) -> bool {
        mc_ntotal(nkey, flags, nbytes, self.use_cas) <= self.item_size_max
    }

    /// Whether memory for an item of this size can be had now. Used
    /// before reading a value so that a doomed store is swallowed, as
    /// memcached's `item_alloc` failing does. With eviction on, anything
    /// no larger than the limit can be had; with `-M`, only what fits the
    /// budget, a free chunk, or a dead item's room.
    pub fn can_alloc(&self, nkey: usize, flags: u32, nbytes: usize) -> bool {
        let size = items::item_size(nkey, flags, nbytes, self.use_cas);
        if size > self.limit() {
            return false;
        }
        if self.evict_to_free {
            return true;
        }
        let class = self.classes.class_for(size);
        let chunk = self.classes.chunk_for(class, size);
        let need = self.alloc_bytes(class, size);
        if self.fits(need) {
            return true;
        }
        let large = self.classes.is_large_item(class, size);
        let now = self.clock.now();
        for m in self.shards.iter() {
            let Some(mut sh) = try_lock(m) else { continue };
            if !large && !sh.classes[class].free_is_empty(chunk) {
                return true;
            }
            self.reclaim_tails(&mut sh, None, now);
            if self.fits(need) || (!large && !sh.classes[class].free_is_empty(chunk)) {
                return true;
            }
        }
        false
    }

    fn fits(&self, need: usize) -> bool {
        self.used() + need <= self.limit()
    }

    /// Take `n` bytes from the budget, if they fit.
    fn take(&self, n: usize) -> bool {
        let limit = self.limit();
        self.malloced
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                (used + n <= limit).then_some(used + n)
            })
            .is_ok()
    }

    fn give(&self, n: usize) {
        self.malloced.fetch_sub(n, Ordering::Relaxed);
    }

    /// Bytes an allocation for a new item of this class takes: a page, or
    /// the item itself for a large class.
    fn alloc_bytes(&self, class: usize, size: usize) -> usize {
        let chunk = self.classes.chunk_for(class, size);
        if self.classes.is_large_item(class, size) {
            chunk
        } else {
            Shard::page_bytes(self.classes.page_size(), chunk)
        }
    }

    /// The next CAS unique: 1, 2, ... up to `CAS_MASK`, then 1 again.
    fn next_cas(&self) -> u64 {
        if !self.use_cas {
            return 0;
        }
        let next = |c: u64| if c >= items::CAS_MASK { 1 } else { c + 1 };
        let prev = self
            .cas_id
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| Some(next(c)))
            .unwrap_or_else(|c| c);
        next(prev)
    }

    fn shard_of(&self, hash: u64) -> usize {
        // Middle bits: hashbrown uses the top 7 bits as its control tag,
        // which must stay varied within a shard.
        (hash >> 32) as usize % SHARDS
    }

    fn locate(&self, key: &[u8]) -> (u64, MutexGuard<'_, Shard>) {
        let hash = self.hasher.hash_one(key);
        (hash, lock(&self.shards[self.shard_of(hash)]))
    }

    /// Whether a linked item is dead: expired, or hidden by `flush_all`
    /// (memcached's `item_is_flushed` plus the exptime check).
    fn is_dead(&self, v: ItemView<'_>, now: u32) -> Option<Death> {
        if self.is_flushed(v, now) {
            return Some(Death::Flushed);
        }
        let exptime = v.exptime();
        (exptime != 0 && exptime <= now).then_some(Death::Expired)
    }

    /// Whether `flush_all` has hidden a linked item (memcached's
    /// `item_is_flushed`).
    fn is_flushed(&self, v: ItemView<'_>, now: u32) -> bool {
        let FlushPair {
            oldest_live,
            oldest_cas,
        } = self.flush.read();
        let flushed =
            v.time() <= oldest_live || (oldest_cas != 0 && v.cas() != 0 && v.cas() < oldest_cas);
        oldest_live != 0 && oldest_live <= now && flushed
    }

    /// Unlink an item and give back its memory, keeping the gauges right.
    fn remove(&self, sh: &mut Shard, h: Handle) {
        self.count_size(sh.view(h), false);
        let size = sh.view(h).size();
        let class = sh.class_of(h);
        sh.unlink(h);
        self.stats.bytes.fetch_sub(size, Ordering::Relaxed);
        self.stats.curr_items.fetch_sub(1, Ordering::Relaxed);
        let (bytes, empty) = sh.free(h);
        self.give(bytes);
        self.ledger.sub(class, bytes);
        if let Some(page) = empty {
            // An emptied page stays with its class unless the cache is over
            // its limit (after `cache_memlimit` lowered it).
            if self.used() > self.limit() {
                self.release(sh, page);
            }
        }
    }

    /// Charge the change of a shard's table allocation.
    fn sync_table(&self, sh: &mut Shard) {
        let (grown, shrunk) = sh.table_delta();
        self.malloced.fetch_add(grown, Ordering::Relaxed);
        self.table_bytes.fetch_add(grown, Ordering::Relaxed);
        self.give(shrunk);
        self.table_bytes.fetch_sub(shrunk, Ordering::Relaxed);
    }

    /// Look up a live item, unlinking it lazily if it is dead, and say why
    /// a found item was dead.
    fn lookup(
        &self,
        sh: &mut Shard,
        hash: u64,
        key: &[u8],
        now: u32,
    ) -> Result<Handle, Option<Death>> {
        let found = self.lookup_quietly(sh, hash, key, now);
        if logger::wants(logger::kind::FETCHERS) {
            log_lookup(sh, key, found);
        }
        found
    }

    fn lookup_quietly(
        &self,
        sh: &mut Shard,
        hash: u64,
        key: &[u8],
        now: u32,
    ) -> Result<Handle, Option<Death>> {
        let h = sh.find(hash, key).ok_or(None)?;
        if let Some(death) = self.is_dead(sh.view(h), now) {
            self.remove(sh, h);
            return Err(Some(death));
        }
        Ok(h)
    }

    fn find_live(&self, sh: &mut Shard, hash: u64, key: &[u8], now: u32) -> Option<Handle> {
        self.lookup(sh, hash, key, now).ok()
    }

    /// `get` / `gat`: hand the live item for `key` to `f` while its shard is
    /// locked, marking the fetch in the LRU (see `lru.rs`: segmented, a
    /// flag and at most one move; flat, a bump at most once per
    /// `ITEM_UPDATE_INTERVAL`). With `touch`, also sets a new relative
    /// exptime.
    pub fn get_with<R>(
        &self,
        key: &[u8],
        touch: Option<u32>,
        f: impl FnOnce(ItemView<'_>) -> R,
    ) -> Option<R> {
        let now = self.clock.now();
        let (hash, mut sh) = self.locate(key);
        #[cfg(debug_assertions)]
        if self.panic_key.as_deref() == Some(key) {
            // With the shard locked: the worst place a worker can die.
            panic!("RMEMCACHED_DEBUG_PANIC_KEY: get {}", key.escape_ascii());
        }
        let h = match self.lookup(&mut sh, hash, key, now) {
            Ok(h) => h,
            Err(death) => {
                match death {
                    Some(Death::Expired) => self.stats.get_expired.fetch_add(1, Ordering::Relaxed),
                    Some(Death::Flushed) => self.stats.get_flushed.fetch_add(1, Ordering::Relaxed),
                    None => 0,
                };
                return None;
            }
        };
        // The item's bytes are reached once for the flags, the exptime and
        // the segment: this is the hot path of every get.
        let segmented = self.lru.segmented();
        let mem = sh.mem_mut(h);
        if let Some(exptime) = touch {
            items::set_exptime(mem, exptime);
        }
        let seg = ItemView::new(mem).seg();
        let relink = items::mark_fetch(mem, segmented, lru::COLD, now, ITEM_UPDATE_INTERVAL);
        let class = sh.class_of(h);
        let s = &mut sh.classes[class].stats;
        if touch.is_some() {
            s.touch_hits += 1;
        } else {
            // Counted in the segment the fetch found it in.
            s.hits[seg] += 1;
        }
        if relink {
            self.fetch_relink(&mut sh, h, class, now);
        }
        Some(f(sh.view(h)))
    }

    /// `get`, returning a copy of the item.
    pub fn get(&self, key: &[u8], touch: Option<u32>) -> Option<Item> {
        self.get_with(key, touch, |v| Item::from(v))
    }

    /// `touch`: set a new relative exptime. Returns whether the key was live.
    pub fn touch(&self, key: &[u8], exptime: u32) -> bool {
        self.get_with(key, Some(exptime), |_| ()).is_some()
    }

    /// `delete`. Returns whether a live item was removed.
    pub fn delete(&self, key: &[u8]) -> bool {
        self.delete_cas(key, 0) == DeleteResult::Deleted
    }

    /// `delete`, only if the item's CAS is `req_cas` (0: any).
    pub fn delete_cas(&self, key: &[u8], req_cas: u64) -> DeleteResult {
        let now = self.clock.now();
        let (hash, mut sh) = self.locate(key);
        match self.find_live(&mut sh, hash, key, now) {
            Some(h) if req_cas != 0 && sh.view(h).cas() != req_cas => DeleteResult::Exists,
            Some(h) => {
                let class = sh.class_of(h);
                sh.classes[class].stats.delete_hits += 1;
                self.remove(&mut sh, h);
                DeleteResult::Deleted
            }
            None => DeleteResult::NotFound,
        }
    }

    /// `flush_all [delay]`: everything stored up to now (or up to `now +
    /// delay`) becomes invisible, as memcached's `settings.oldest_live`.
    /// `delay` is the client's exptime argument, already made relative.
    pub fn flush_all(&self, realtime_delay: u32) {
        self.publish_flush(realtime_delay);
    }

    /// [`Cache::flush_all`], returning the pair it published. The clock
    /// and the CAS are read under the horizon's writer lock, so of two
    /// racing flushes the one that publishes last took the larger CAS.
    fn publish_flush(&self, realtime_delay: u32) -> FlushPair {
        self.flush.update(|current| {
            let now = self.clock.now();
            let new_oldest = if realtime_delay > 0 {
                realtime_delay
            } else {
                now
            };
            if !self.use_cas {
                return FlushPair {
                    oldest_live: new_oldest,
                    ..current
                };
            }
            let oldest_live = new_oldest.saturating_sub(1);
            // A delayed flush keeps the CAS bound of the last one, as
            // memcached's does.
            let oldest_cas = if oldest_live <= now {
                self.next_cas()
            } else {
                current.oldest_cas
            };
            FlushPair {
                oldest_live,
                oldest_cas,
            }
        })
    }
}

/// The `item_get` line of a lookup (memcached's `do_item_get` logs every
/// lookup, a store's included): a dead item is gone by now, and is
/// logged with no class and no size, as memcached logs it.
#[cold]
#[inline(never)]
fn log_lookup(sh: &Shard, key: &[u8], found: Result<Handle, Option<Death>>) {
    use logger::Found;
    match found {
        Ok(h) => {
            let len = sh.view(h).data().len();
            logger::item_get(Found::Found, key, len, sh.class_of(h));
        }
        Err(None) => logger::item_get(Found::NotFound, key, 0, 0),
        Err(Some(Death::Expired)) => logger::item_get(Found::Expired, key, 0, 0),
        Err(Some(Death::Flushed)) => logger::item_get(Found::Flushed, key, 0, 0),
    }
}

#[cfg(test)]
mod tests;
