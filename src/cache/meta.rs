//! What the meta commands (`mg`, `md`, `ma`, `me`) need from the cache
//! beyond the classic commands: memcached's `process_mget_command`
//! reading an item's state before it bumps it, autovivification, win
//! tokens and stale items, invalidation, and a look without side effects.

use std::sync::atomic::Ordering;

use super::items::{self, ItemView, NewItem, KEY_BINARY, STALE, TOKEN_SENT};
use super::{lru, Cache, Death, DeleteResult};
use crate::clock::ITEM_UPDATE_INTERVAL;

/// How `mg` fetches.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetaGetOpts {
    /// `T`: a new exptime.
    pub touch: Option<u32>,
    /// `N`: create an empty item with this exptime on a miss.
    pub vivify: Option<u32>,
    /// `R`: hand out the win token if the item expires before this time.
    pub recache: Option<u32>,
    /// `u`: neither bump the item nor mark it fetched.
    pub no_update: bool,
}

/// An item found (or made) by `mg`, with its state from before the fetch.
#[derive(Debug, Clone, Copy)]
pub struct MetaHit<'a> {
    /// The item, after the fetch (new exptime, flags).
    pub item: ItemView<'a>,
    /// Its exptime before `T` or `N` changed it.
    pub old_exptime: u32,
    /// Whether it had been fetched before (`h`).
    pub fetched: bool,
    /// Seconds since it was last bumped (`l`).
    pub last_access: u32,
    /// Whether `N` created it.
    pub created: bool,
    /// Whether a win token had been handed out already (`Z`).
    pub token_sent: bool,
    /// Whether it is stale (`X`).
    pub stale: bool,
    /// Whether this fetch wins the token (`W`).
    pub won: bool,
    /// Whether the key was stored base64-encoded.
    pub key_binary: bool,
}

impl Cache {
    /// `mg`: find `key` (or create it with `N`), apply `T`, decide the win
    /// token, bump unless `u`, and hand the result to `f` while the shard
    /// is locked.
    pub fn meta_get<R>(
        &self,
        key: &[u8],
        o: &MetaGetOpts,
        f: impl FnOnce(&MetaHit<'_>) -> R,
    ) -> Option<R> {
        let now = self.clock.now();
        let (hash, mut sh) = self.locate(key);
        let found = match self.lookup(&mut sh, hash, key, now) {
            Ok(h) => Some(h),
            Err(death) => {
                match death {
                    Some(Death::Expired) => self.stats.get_expired.fetch_add(1, Ordering::Relaxed),
                    Some(Death::Flushed) => self.stats.get_flushed.fetch_add(1, Ordering::Relaxed),
                    None => 0,
                };
                None
            }
        };
        let (h, created) = match (found, o.vivify) {
            (Some(h), _) => (h, false),
            (None, Some(exptime)) => {
                let item = NewItem {
                    key,
                    data: [b"", b""],
                    flags: 0,
                    exptime,
                    cas: self.use_cas.then_some(0),
                    meta: 0,
                };
                let size = item.size();
                let class = self.classes.class_for(size);
                let h = self.alloc(&mut sh, class, size, None, now)?;
                let item = NewItem {
                    cas: self.use_cas.then_some(self.next_cas()),
                    ..item
                };
                self.link(&mut sh, h, hash, class, &item, now);
                (h, true)
            }
            (None, None) => return None,
        };
        let v = sh.view(h);
        let (old_exptime, fetched, time, meta) = (v.exptime(), v.fetched(), v.time(), v.meta());
        let token_sent = meta & TOKEN_SENT != 0;
        let stale = meta & STALE != 0;
        let mut exptime = old_exptime;
        if let Some(t) = o.touch {
            exptime = t;
        }
        let mut won = created;
        if let Some(r) = o.recache {
            won |= !token_sent && !created && exptime != 0 && exptime < r;
        }
        won |= stale && !token_sent;
        let mem = sh.mem_mut(h);
        items::set_exptime(mem, exptime);
        if won {
            items::set_meta(mem, TOKEN_SENT, 0);
        }
        let seg = ItemView::new(mem).seg();
        let segmented = self.lru.segmented();
        let relink =
            !o.no_update && items::mark_fetch(mem, segmented, lru::COLD, now, ITEM_UPDATE_INTERVAL);
        let class = sh.class_of(h);
        let s = &mut sh.classes[class].stats;
        if o.touch.is_some() {
            s.touch_hits += 1;
        } else {
            s.hits[seg] += 1;
        }
        if relink {
            self.fetch_relink(&mut sh, h, class, now);
        }
        let hit = MetaHit {
            item: sh.view(h),
            old_exptime,
            fetched,
            last_access: now.saturating_sub(time),
            created,
            token_sent,
            stale,
            won,
            key_binary: meta & KEY_BINARY != 0,
        };
        Some(f(&hit))
    }

    /// `md ... I`: mark the item stale instead of deleting it, give it a
    /// new CAS, clear its win token, and set a new exptime if given.
    pub fn invalidate(&self, key: &[u8], req_cas: u64, exptime: Option<u32>) -> DeleteResult {
        let now = self.clock.now();
        let (hash, mut sh) = self.locate(key);
        let Some(h) = self.find_live(&mut sh, hash, key, now) else {
            return DeleteResult::NotFound;
        };
        if req_cas != 0 && sh.view(h).cas() != req_cas {
            return DeleteResult::Exists;
        }
        let cas = self.next_cas();
        let mem = sh.mem_mut(h);
        if let Some(e) = exptime {
            items::set_exptime(mem, e);
        }
        items::set_meta(mem, STALE, TOKEN_SENT);
        items::set_cas(mem, cas);
        DeleteResult::Deleted
    }

    /// Look at a live item without bumping it or marking it fetched
    /// (`me`, and what `ma` reports).
    pub fn peek<R>(&self, key: &[u8], f: impl FnOnce(ItemView<'_>) -> R) -> Option<R> {
        let now = self.clock.now();
        let (hash, mut sh) = self.locate(key);
        let h = self.find_live(&mut sh, hash, key, now)?;
        Some(f(sh.view(h)))
    }

    /// The slab class of a live item (for `me`).
    pub fn class_of_key(&self, key: &[u8]) -> Option<usize> {
        let now = self.clock.now();
        let (hash, mut sh) = self.locate(key);
        let h = self.find_live(&mut sh, hash, key, now)?;
        Some(sh.class_of(h))
    }

    /// Set a live item's exptime, nothing else. Returns whether it was live.
    pub fn set_exptime(&self, key: &[u8], exptime: u32) -> bool {
        let now = self.clock.now();
        let (hash, mut sh) = self.locate(key);
        match self.find_live(&mut sh, hash, key, now) {
            Some(h) => {
                items::set_exptime(sh.mem_mut(h), exptime);
                true
            }
            None => false,
        }
    }
}
