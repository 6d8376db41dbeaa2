//! Storing and arithmetic: memcached's `do_store_item` (set, add,
//! replace, append, prepend, cas) and `do_add_delta` (incr, decr), with
//! the linking of a new item into its shard.

use std::sync::atomic::Ordering;

use super::items::{self, NewItem};
use super::shard::{Handle, Shard};
use super::{Cache, DeltaResult, StoreMode, StoreOpts, StoreResult};

impl Cache {
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
        let opts = StoreOpts::default();
        self.store_ext(mode, key, flags, exptime, data, req_cas, opts)
    }

    /// [`Cache::store`] with the meta protocol's options.
    #[allow(clippy::too_many_arguments)]
    pub fn store_ext(
        &self,
        mode: StoreMode,
        key: &[u8],
        flags: u32,
        exptime: u32,
        data: &[u8],
        req_cas: u64,
        opts: StoreOpts,
    ) -> (StoreResult, u64) {
        let (res, cas, nbytes, exp) =
            self.store_item(mode, key, flags, exptime, data, req_cas, opts);
        if crate::logger::wants(crate::logger::kind::MUTATIONS) {
            self.log_store(mode, key, flags, res, nbytes, exp);
        }
        (res, cas)
    }

    /// The `item_store` line (memcached's `do_store_item` logs every
    /// store, whatever its outcome): the item as it was (or would have
    /// been) stored, its TTL in seconds left.
    #[cold]
    #[inline(never)]
    fn log_store(
        &self,
        mode: StoreMode,
        key: &[u8],
        flags: u32,
        res: StoreResult,
        nbytes: usize,
        exptime: u32,
    ) {
        let status = match res {
            StoreResult::NotStored => "not_stored",
            StoreResult::Stored => "stored",
            StoreResult::Exists => "exists",
            StoreResult::NotFound => "not_found",
            StoreResult::TooLarge => "too_large",
            StoreResult::NoMemory => "no_memory",
        };
        let cmd = match mode {
            StoreMode::Add => "add",
            StoreMode::Set => "set",
            StoreMode::Replace => "replace",
            StoreMode::Append => "append",
            StoreMode::Prepend => "prepend",
            StoreMode::Cas => "cas",
        };
        let ttl = if exptime != 0 {
            exptime.wrapping_sub(self.clock.now())
        } else {
            0
        };
        let size = items::item_size(key.len(), flags, nbytes, self.use_cas);
        let class = self.classes.class_for(size);
        crate::logger::item_store(status, cmd, key, ttl, class, nbytes);
    }

    /// [`Cache::store_ext`]; also returns the stored (or refused) item's
    /// value length and exptime, for the log.
    #[allow(clippy::too_many_arguments)]
    fn store_item(
        &self,
        mode: StoreMode,
        key: &[u8],
        flags: u32,
        exptime: u32,
        data: &[u8],
        req_cas: u64,
        opts: StoreOpts,
    ) -> (StoreResult, u64, usize, u32) {
        let mut meta = opts.meta;
        let now = self.clock.now();
        let (hash, mut sh) = self.locate(key);
        if !matches!(mode, StoreMode::Append | StoreMode::Prepend) {
            // memcached's item_alloc first takes back dead items at the
            // tail of the new item's class.
            let size = items::item_size(key.len(), flags, data.len(), self.use_cas);
            self.reclaim_tail(&mut sh, self.classes.class_for(size), None, now);
        }
        let old = self.find_live(&mut sh, hash, key, now);

        // Decide, and for append/prepend copy the old value.
        let mut joined: Option<Vec<u8>> = None;
        let (flags, exptime) = match (mode, old) {
            (StoreMode::Add, Some(h)) => {
                // add only adds, but promotes the existing item
                // (memcached's `do_item_update`).
                let class = sh.class_of(h);
                self.update(&mut sh, h, class, now);
                return (StoreResult::NotStored, 0, data.len(), exptime);
            }
            (StoreMode::Cas, None) => return (StoreResult::NotFound, 0, data.len(), exptime),
            (StoreMode::Replace | StoreMode::Append | StoreMode::Prepend, None) => {
                return (StoreResult::NotStored, 0, data.len(), exptime);
            }
            (StoreMode::Cas, Some(h)) => {
                let class = sh.class_of(h);
                let v = sh.view(h);
                if req_cas != 0 && v.cas() == req_cas {
                    sh.classes[class].stats.cas_hits += 1;
                    (flags, exptime)
                } else if opts.set_stale && req_cas != 0 && req_cas < v.cas() {
                    // An older CAS may still store, as a stale value: the
                    // old item's exptime and win token carry over.
                    meta |= items::STALE | (v.meta() & items::TOKEN_SENT);
                    let exp = v.exptime();
                    sh.classes[class].stats.cas_hits += 1;
                    (flags, exp)
                } else {
                    sh.classes[class].stats.cas_badval += 1;
                    return (StoreResult::Exists, 0, data.len(), exptime);
                }
            }
            (StoreMode::Append | StoreMode::Prepend, Some(h)) => {
                let v = sh.view(h);
                if req_cas != 0 && v.cas() != req_cas {
                    return (StoreResult::Exists, 0, data.len(), exptime);
                }
                if !self.size_ok(key.len(), v.flags(), v.data().len() + data.len()) {
                    return (StoreResult::NotStored, 0, data.len(), exptime);
                }
                joined = Some(v.data().to_vec());
                (v.flags(), v.exptime())
            }
            (StoreMode::Set | StoreMode::Replace | StoreMode::Add, _) => (flags, exptime),
        };

        let mut item = NewItem {
            key,
            data: [data, b""],
            flags,
            exptime,
            cas: self.use_cas.then_some(0),
            meta,
        };
        if let Some(old_data) = &joined {
            item.data = if mode == StoreMode::Append {
                [old_data, data]
            } else {
                [data, old_data]
            };
        }
        let (nbytes, exptime) = (item.nbytes(), item.exptime);
        if !self.size_ok(key.len(), flags, nbytes) {
            return (StoreResult::TooLarge, 0, nbytes, exptime);
        }
        let size = item.size();
        let class = self.classes.class_for(size);
        let Some(h) = self.alloc(&mut sh, class, size, old, now) else {
            if matches!(mode, StoreMode::Append | StoreMode::Prepend) {
                return (StoreResult::NotStored, 0, nbytes, exptime);
            }
            // A failed set must not leave the old value readable.
            if let (StoreMode::Set, Some(o)) = (mode, old) {
                self.remove(&mut sh, o);
            }
            return (StoreResult::NoMemory, 0, nbytes, exptime);
        };
        let cas = self.next_cas();
        item.cas = self.use_cas.then_some(cas);
        if let Some(o) = old {
            self.remove(&mut sh, o);
        }
        self.link(&mut sh, h, hash, class, &item, now);
        (StoreResult::Stored, cas, nbytes, exptime)
    }

    pub(super) fn link(
        &self,
        sh: &mut Shard,
        h: Handle,
        hash: u64,
        class: usize,
        item: &NewItem<'_>,
        now: u32,
    ) {
        let seg = self.lru.new_seg(item.exptime, now);
        self.lru.note_class(class);
        sh.link(h, hash, class, seg, item, now);
        self.count_size(sh.view(h), true);
        sh.classes[class].stats.cmd_set += 1;
        self.stats.curr_items.fetch_add(1, Ordering::Relaxed);
        self.stats.total_items.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes.fetch_add(item.size(), Ordering::Relaxed);
        self.sync_table(sh);
        // A table that just grew may have taken the cache over its limit:
        // give back pages until it is under again.
        while self.evict_to_free && self.used() > self.limit() {
            if !self.free_bytes(sh, Some(h), now) && !self.free_bytes_elsewhere(now) {
                break;
            }
        }
    }

    /// `incr` / `decr` (memcached's `do_add_delta`): the value must be a
    /// decimal number; `incr` wraps at 2^64, `decr` stops at 0. A result no
    /// longer than the old value is padded with spaces to the old length
    /// and written in place, as memcached does; a longer one is a new item.
    /// With `req_cas` not 0, the item's CAS must match. Without `in_place`
    /// (an unsent reply still holds the item, in memcached's terms) the
    /// result is always a new item of exactly its length. On success, also
    /// returns the item's new CAS.
    pub fn delta(
        &self,
        key: &[u8],
        incr: bool,
        delta: u64,
        req_cas: u64,
        in_place: bool,
    ) -> (DeltaResult, u64) {
        let now = self.clock.now();
        let (hash, mut sh) = self.locate(key);
        let Some(h) = self.find_live(&mut sh, hash, key, now) else {
            return (DeltaResult::NotFound, 0);
        };
        let v = sh.view(h);
        if req_cas != 0 && v.cas() != req_cas {
            return (DeltaResult::Exists, 0);
        }
        let Some(value) = parse_counter(v.data()) else {
            return (DeltaResult::NonNumeric, 0);
        };
        let value = if incr {
            value.wrapping_add(delta)
        } else {
            value.saturating_sub(delta)
        };
        let class = sh.class_of(h);
        let s = &mut sh.classes[class].stats;
        if incr {
            s.incr_hits += 1;
        } else {
            s.decr_hits += 1;
        }
        let mut data = value.to_string().into_bytes();
        let old_len = sh.view(h).data().len();
        if in_place && data.len() <= old_len {
            data.resize(old_len, b' ');
            let cas = self.next_cas();
            // memcached unlinks and links the item again in the histogram,
            // with its new CAS.
            self.count_size(sh.view(h), false);
            items::rewrite_value(sh.mem_mut(h), &data, cas);
            self.count_size(sh.view(h), true);
            return (DeltaResult::Ok(value), cas);
        }
        let v = sh.view(h);
        let mut item = NewItem {
            key,
            data: [&data, b""],
            flags: v.flags(),
            exptime: v.exptime(),
            cas: self.use_cas.then_some(0),
            meta: 0,
        };
        let size = item.size();
        let new_class = self.classes.class_for(size);
        let Some(nh) = self.alloc(&mut sh, new_class, size, Some(h), now) else {
            return (DeltaResult::NoMemory, 0);
        };
        let cas = self.next_cas();
        item.cas = self.use_cas.then_some(cas);
        self.remove(&mut sh, h);
        self.link(&mut sh, nh, hash, new_class, &item, now);
        (DeltaResult::Ok(value), cas)
    }
}

/// memcached's `safe_strtoull` applied to a stored value: optional leading
/// white space, an optional `+`, decimal digits, then the end or white space.
fn parse_counter(data: &[u8]) -> Option<u64> {
    crate::cnum::safe_strtoull(data)
}
