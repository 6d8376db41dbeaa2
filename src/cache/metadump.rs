//! `lru_crawler metadump`: mirrors the metadump module of memcached's
//! `crawler.c` (`crawler_metadump_eval`, `item_crawl_hash`), as a cursor
//! that the connection pulls from.
//!
//! memcached hands the client's socket to its crawler thread, which walks
//! the LRUs (or, for `hash`, the hash table) and writes into a 128 KiB
//! buffer, blocking in `poll()` while the client does not read: one slow
//! client stalls every crawl. Here the dump is a [`DumpCursor`], a few
//! words kept by the connection. Each [`Cache::metadump_batch`] locks one
//! shard at a time, formats the next lines into the connection's output
//! up to a limit, and returns; the connection asks for more only once the
//! client has read what it has. So a dump holds no lock between batches,
//! its memory is the connection's output buffer whatever the cache's
//! size, and it goes at the pace the client reads.
//!
//! The walk is over each shard's slab pages in order, then its large
//! items ([`Shard::walk`](super::shard::Shard::walk)): items never move,
//! so an item present for the whole dump is listed exactly once, however
//! the cache changes between batches, and the walk always ends. memcached
//! walks the LRUs (`all`, class ids), where an item bumped to the head
//! while the crawler passes may be missed or met twice; its `hash` walk
//! gives the guarantee this one gives. The two modes list the same items
//! here and differ only in what they count: like memcached's, an LRU-mode
//! dump counts the items it looks at in `crawler_items_checked`.
//! Expired and flushed items are left out, as memcached leaves them out.

use super::crawler::ClassSet;
use super::items::ItemView;
use super::{lock, Cache, SHARDS};

/// Chunks looked at per call, at most: bounds a call's time (and how long
/// it holds a shard's lock) when few of the chunks hold items wanted.
const LOOK_BUDGET: usize = 8192;

/// Where a metadump stands: a few words, kept by the connection between
/// batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpCursor {
    /// The classes listed.
    classes: ClassSet,
    /// Count the items looked at in `crawler_items_checked`, as an LRU
    /// walk does (not for `hash`).
    by_lru: bool,
    /// The shard being walked; `SHARDS` once done.
    shard: usize,
    /// Where the walk of that shard goes on (see `Shard::walk`).
    pos: u64,
}

impl DumpCursor {
    /// Whether every item has been listed.
    pub fn done(&self) -> bool {
        self.shard >= SHARDS
    }
}

impl Cache {
    /// Start a metadump of `classes` (counted in `lru_crawler_starts`);
    /// `by_lru` for the class-list and `all` forms, not `hash`.
    pub fn metadump(&self, classes: ClassSet, by_lru: bool) -> DumpCursor {
        self.crawler().count_start();
        DumpCursor {
            classes,
            by_lru,
            shard: 0,
            pos: 0,
        }
    }

    /// Append the next items' lines to `out`, each as `line` writes it
    /// (given the item and its class), while `out` stays within `limit`
    /// bytes: a line that would pass it is taken back and written by the
    /// next call. Returns true once every item has been listed. Each shard
    /// is locked while its items are looked at, at most `LOOK_BUDGET` (8192)
    /// chunks per call in all.
    pub fn metadump_batch(
        &self,
        cur: &mut DumpCursor,
        limit: usize,
        mut line: impl FnMut(ItemView<'_>, usize, &mut Vec<u8>),
        out: &mut Vec<u8>,
    ) -> bool {
        let now = self.clock.now();
        let mut budget = LOOK_BUDGET;
        while !cur.done() && budget > 0 {
            let mut sh = lock(&self.shards[cur.shard]);
            let mut checked = [0u64; 64];
            let mut full = false;
            let classes = cur.classes;
            let next = sh.walk(
                cur.pos,
                &mut budget,
                |c| classes.contains(c),
                |h, class| {
                    checked[class] += 1;
                    let v = sh.view(h);
                    if self.is_dead(v, now).is_some() {
                        return true;
                    }
                    let mark = out.len();
                    line(v, class, out);
                    if out.len() > limit {
                        out.truncate(mark);
                        checked[class] -= 1;
                        full = true;
                        return false;
                    }
                    true
                },
            );
            if cur.by_lru {
                for (class, &n) in checked.iter().enumerate().filter(|(_, &n)| n > 0) {
                    sh.classes[class].stats.crawler_items_checked += n;
                }
            }
            match next {
                Some(pos) => cur.pos = pos,
                None => (cur.shard, cur.pos) = (cur.shard + 1, 0),
            }
            if full {
                break;
            }
        }
        cur.done()
    }
}

#[cfg(test)]
mod tests;
