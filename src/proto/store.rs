//! The checks a store meets before its value is read, and its CAS
//! counters: memcached's `item_alloc` failing in `process_update_command`,
//! shared by the three protocols.

use std::sync::atomic::Ordering;

use crate::cache::{StoreMode, StoreResult};

use super::ctx::Ctx;

/// Why a store is refused before its value is read (memcached's
/// `item_alloc` failing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Larger than `-I` allows.
    TooLarge,
    /// No memory to be had (`-M`).
    NoMemory,
}

impl Refusal {
    /// The text protocol's reply.
    pub(crate) fn text(self) -> &'static [u8] {
        match self {
            Refusal::TooLarge => b"SERVER_ERROR object too large for cache",
            Refusal::NoMemory => b"SERVER_ERROR out of memory storing object",
        }
    }
}

/// Whether a store of this key and value size may go on to read its value;
/// records the set for `stats detail` and counts a refusal. On a refusal
/// with `unlink_old` (a set; any `ms`), the old value is removed, as
/// memcached does so that stale data does not outlive a failed store.
pub(crate) fn admit(
    ctx: &Ctx<'_>,
    key: &[u8],
    flags: u32,
    nbytes: usize,
    unlink_old: bool,
) -> Option<Refusal> {
    ctx.prefix.record_set(key);
    let refusal = if !ctx.cache.size_ok(key.len(), flags, nbytes) {
        ctx.stats.store_too_large.fetch_add(1, Ordering::Relaxed);
        Refusal::TooLarge
    } else if !ctx.cache.can_alloc(key.len(), flags, nbytes) {
        ctx.stats.store_no_memory.fetch_add(1, Ordering::Relaxed);
        Refusal::NoMemory
    } else {
        return None;
    };
    if unlink_old {
        ctx.cache.delete(key);
    }
    Some(refusal)
}

/// Count a `cas` store's outcome (`cas_hits`, `cas_badval`, `cas_misses`);
/// other modes count nothing here.
pub(crate) fn count_cas(ctx: &Ctx<'_>, mode: StoreMode, res: StoreResult) {
    if mode != StoreMode::Cas {
        return;
    }
    let s = &ctx.stats;
    let c = match res {
        StoreResult::Stored => &s.cas_hits,
        StoreResult::Exists => &s.cas_badval,
        _ => &s.cas_misses,
    };
    c.fetch_add(1, Ordering::Relaxed);
}
