//! Slab page ownership: mirrors the page bookkeeping of memcached's
//! `slabs.c` (`slabclass[id].slabs`, the global page pool in
//! `slabclass[0]`, `mem_malloced` against `mem_limit`, `do_slabs_newslab`,
//! `memory_release`), kept as a ledger beside the real memory.
//!
//! memcached carves memory into slab pages of `slab_page_size` bytes (1
//! MiB), each owned by one class; a class evicts from its own LRU once it
//! can get no page, and only the slab mover hands pages from class to
//! class. Memory here is laid out differently (every shard has its own
//! pages of [`super::slabs::page_size_for`] bytes, large items are single
//! allocations), so pages of that size are not real allocations: the
//! ledger counts, per class, how many `slab_page_size` pages the class
//! owns, and the real bytes the class holds (its shard pages and large
//! items over all shards) are charged against them:
//!
//! - a class whose real bytes would pass `owned * slab_page_size` takes a
//!   page from the global pool, else a new one while `total_malloced`
//!   stays within the limit, or always when it owns none (memcached's
//!   `do_slabs_newslab`); failing that it must evict from its own LRU
//!   (`evict.rs`);
//! - pages are granted lazily, only as real bytes grow, so a single class
//!   reaches exactly the memory it would without the ledger;
//! - `total_malloced` counts granted pages (owned plus pool), as
//!   memcached's does, and is what `stats slabs` reports; the real bytes
//!   stay bounded by the cache's own budget (`-m`, hash tables included).
//!
//! The ledger is a handful of atomics: a store reads two of them when it
//! allocates a new shard page or large item, and takes the grant lock
//! only when its class needs one more page (once per `slab_page_size`
//! bytes of growth).

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::sync::lock;

/// The global page pool's class id (memcached's `SLAB_GLOBAL_PAGE_POOL`).
pub const POOL: usize = 0;

/// Pages owned per class, the pool, and `total_malloced`.
#[derive(Debug)]
pub struct Ledger {
    /// Bytes of one page (memcached's `slab_page_size`).
    page: usize,
    /// Pages owned by each class; index [`POOL`] is the global pool.
    /// Changed under `grant`; read by anyone.
    owned: Box<[AtomicU32]>,
    /// Real bytes each class holds now (shard pages and large items, over
    /// all shards); index 0 unused. Changed by whoever allocates or frees
    /// them, with the shard locked.
    bytes: Box<[AtomicUsize]>,
    /// Bytes of pages ever granted and not released (memcached's
    /// `mem_malloced`). Changed under `grant`.
    malloced: AtomicUsize,
    /// Serialises grants and page moves.
    grant: Mutex<()>,
}

impl Ledger {
    /// A ledger for class ids `0..nclasses` with pages of `page` bytes.
    pub fn new(page: usize, nclasses: usize) -> Ledger {
        Ledger {
            page,
            owned: (0..nclasses).map(|_| AtomicU32::new(0)).collect(),
            bytes: (0..nclasses).map(|_| AtomicUsize::new(0)).collect(),
            malloced: AtomicUsize::new(0),
            grant: Mutex::new(()),
        }
    }

    /// Bytes of one page.
    pub fn page(&self) -> usize {
        self.page
    }

    /// Pages `class` owns ([`POOL`]: pages in the global pool).
    pub fn owned(&self, class: usize) -> usize {
        self.owned[class].load(Ordering::Relaxed) as usize
    }

    /// Pages in the global pool (`slab_global_page_pool`).
    pub fn pool(&self) -> usize {
        self.owned(POOL)
    }

    /// Real bytes `class` holds.
    pub fn bytes(&self, class: usize) -> usize {
        self.bytes[class].load(Ordering::Relaxed)
    }

    /// `total_malloced`: bytes of the pages granted.
    pub fn malloced(&self) -> usize {
        self.malloced.load(Ordering::Relaxed)
    }

    /// Record `n` more real bytes held by `class`.
    pub fn add(&self, class: usize, n: usize) {
        self.bytes[class].fetch_add(n, Ordering::Relaxed);
    }

    /// Record `n` real bytes given back by `class`.
    pub fn sub(&self, class: usize, n: usize) {
        self.bytes[class].fetch_sub(n, Ordering::Relaxed);
    }

    fn fits(&self, class: usize, n: usize) -> bool {
        self.bytes(class) + n <= self.owned(class) * self.page
    }

    /// Whether `class` may hold `n` more real bytes, granting it pages
    /// as needed (memcached's `do_slabs_newslab`): from the global pool
    /// first, else new ones while `total_malloced` stays within `limit`,
    /// or one whenever the class owns none. False: the class must make
    /// room in what it owns.
    pub fn make_room(&self, class: usize, n: usize, limit: usize) -> bool {
        if self.fits(class, n) {
            return true;
        }
        let _g = lock(&self.grant);
        while !self.fits(class, n) {
            if self.owned(POOL) > 0 {
                self.owned[POOL].fetch_sub(1, Ordering::Relaxed);
            } else if self.malloced() + self.page <= limit || self.owned(class) == 0 {
                self.malloced.fetch_add(self.page, Ordering::Relaxed);
            } else {
                return false;
            }
            self.owned[class].fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// Hand one page of `src` to `dst` (the slab mover's
    /// `slab_rebalance_finish`), once `src`'s real bytes fit the pages it
    /// keeps. A page given to the pool is freed while `total_malloced` is
    /// over `limit` (memcached's `memory_release`). False if `src` has
    /// no page left.
    pub fn move_page(&self, src: usize, dst: usize, limit: usize) -> bool {
        let _g = lock(&self.grant);
        if self.owned(src) == 0 {
            return false;
        }
        self.owned[src].fetch_sub(1, Ordering::Relaxed);
        self.owned[dst].fetch_add(1, Ordering::Relaxed);
        self.release_pool(limit);
        true
    }

    /// `cache_memlimit`: free pool pages while `total_malloced` is over
    /// the new limit.
    pub fn set_limit(&self, limit: usize) {
        let _g = lock(&self.grant);
        self.release_pool(limit);
    }

    fn release_pool(&self, limit: usize) {
        while self.malloced() > limit && self.owned(POOL) > 0 {
            self.owned[POOL].fetch_sub(1, Ordering::Relaxed);
            self.malloced.fetch_sub(self.page, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_granted_lazily_up_to_the_limit() {
        let l = Ledger::new(100, 4);
        assert!(l.make_room(1, 50, 300));
        l.add(1, 50);
        assert_eq!((l.owned(1), l.malloced()), (1, 100));
        assert!(l.make_room(1, 50, 300));
        l.add(1, 50);
        assert_eq!(l.owned(1), 1, "fits the page it owns");
        assert!(l.make_room(1, 150, 300));
        l.add(1, 150);
        assert_eq!((l.owned(1), l.malloced()), (3, 300));
        assert!(!l.make_room(1, 51, 300), "at the limit: evict its own");
        // A class with no page always gets one, past the limit.
        assert!(l.make_room(2, 10, 300));
        l.add(2, 10);
        assert_eq!((l.owned(2), l.malloced()), (1, 400));
        assert!(!l.make_room(2, 100, 300));
    }

    #[test]
    fn moved_pages_go_through_the_pool() {
        let l = Ledger::new(100, 4);
        assert!(l.make_room(1, 300, 300));
        l.add(1, 300);
        l.sub(1, 200);
        assert!(l.move_page(1, POOL, 300));
        assert_eq!((l.owned(1), l.pool(), l.malloced()), (2, 1, 300));
        // The pool's page goes to the next class that needs one.
        assert!(l.make_room(2, 80, 300));
        assert_eq!((l.owned(2), l.pool(), l.malloced()), (1, 0, 300));
        // A lower limit frees pool pages only.
        assert!(l.move_page(1, POOL, 300));
        l.set_limit(100);
        assert_eq!((l.owned(1), l.pool(), l.malloced()), (1, 0, 200));
        assert!(l.move_page(1, 3, 100));
        assert_eq!((l.owned(1), l.owned(3)), (0, 1));
        assert!(!l.move_page(1, 3, 100));
    }
}
