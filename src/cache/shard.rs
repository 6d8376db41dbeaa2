//! One shard of the cache: a hash table, slab pages and the LRU segments
//! (HOT, WARM, COLD, TEMP) of each slab class, behind one lock. Mirrors memcached's `assoc.c` (the table),
//! `slabs.c` (pages carved into chunks, free lists) and the LRU of
//! `items.c`, folded into one structure so that one mutex covers them.
//!
//! Items are addressed by a `u32` handle:
//! - for a chunk in a page: `page << 16 | chunk` (bit 31 clear);
//! - for an item of a large class: `1 << 31 | index` into `large`.
//!
//! The table stores only handles (4 bytes a slot); the key is read from
//! the item when probing. LRU links are handles inside the item header.
//! Each class has four LRU lists, memcached's segments (HOT, WARM, COLD,
//! TEMP; see `lru.rs`); an item's segment is in its header.
//! Memory is read and written through safe slices of the pages.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use slab::Slab;

use super::items::{self, ItemView, NewItem, NEXT, PREV, TIME};
use super::lru::{COLD, EVICT_ORDER, SEGS};

/// An item's address in its shard.
pub type Handle = u32;

/// "No item" in LRU links.
pub const NIL: Handle = u32::MAX;

const LARGE: u32 = 1 << 31;
const CHUNK_BITS: u32 = 16;
const MAX_PAGES: usize = 1 << (31 - CHUNK_BITS);

/// A slab page: `mem` carved into chunks of one class.
#[derive(Debug)]
struct Page {
    mem: Box<[u8]>,
    class: u8,
    chunk: u32,
    used: u32,
}

/// Per-class counters of one shard (memcached's `itemstats` and
/// `slab_stats`), summed over shards by `stats items` / `stats slabs`.
#[derive(Debug, Default, Clone)]
pub struct ClassStats {
    /// Items linked.
    pub number: u64,
    /// Bytes those items take.
    pub requested: u64,
    /// Pages (large class: items) allocated.
    pub pages: u64,
    /// Chunks in those pages.
    pub chunks: u64,
    /// Items evicted.
    pub evicted: u64,
    /// Evicted items that had an exptime.
    pub evicted_nonzero: u64,
    /// Seconds since the last access of the last evicted item.
    pub evicted_time: u32,
    /// Allocations that failed.
    pub outofmemory: u64,
    /// Dead items whose memory was taken back.
    pub reclaimed: u64,
    /// Of those, never read.
    pub expired_unfetched: u64,
    /// Evicted items never read.
    pub evicted_unfetched: u64,
    /// Dead items taken back by the background pass.
    pub crawler_reclaimed: u64,
    /// Items the background pass looked at.
    pub crawler_items_checked: u64,
    /// Retrieval hits, by the segment the item was in (memcached's
    /// `lru_hits`; their sum is `get_hits`).
    pub hits: [u64; SEGS],
    /// Items the LRU maintainer moved to COLD.
    pub moves_to_cold: u64,
    /// Items moved to WARM (by the maintainer, or a fetch in COLD).
    pub moves_to_warm: u64,
    /// Active WARM items the maintainer put back at WARM's head.
    pub moves_within_lru: u64,
    /// Items evicted by a store to make room (memcached's
    /// `direct_reclaims`).
    pub direct_reclaims: u64,
    /// Evicted items that were active.
    pub evicted_active: u64,
    /// Stores.
    pub cmd_set: u64,
    /// Deletes that found the item.
    pub delete_hits: u64,
    /// `incr` hits.
    pub incr_hits: u64,
    /// `decr` hits.
    pub decr_hits: u64,
    /// `cas` that stored.
    pub cas_hits: u64,
    /// `cas` with a stale unique.
    pub cas_badval: u64,
    /// `touch` hits.
    pub touch_hits: u64,
}

impl ClassStats {
    /// Add another shard's counters (for the totals).
    pub fn add(&mut self, o: &ClassStats) {
        self.number += o.number;
        self.requested += o.requested;
        self.pages += o.pages;
        self.chunks += o.chunks;
        self.evicted += o.evicted;
        self.evicted_nonzero += o.evicted_nonzero;
        self.evicted_time = self.evicted_time.max(o.evicted_time);
        self.outofmemory += o.outofmemory;
        self.reclaimed += o.reclaimed;
        self.expired_unfetched += o.expired_unfetched;
        self.evicted_unfetched += o.evicted_unfetched;
        self.crawler_reclaimed += o.crawler_reclaimed;
        self.crawler_items_checked += o.crawler_items_checked;
        for (h, o) in self.hits.iter_mut().zip(o.hits) {
            *h += o;
        }
        self.moves_to_cold += o.moves_to_cold;
        self.moves_to_warm += o.moves_to_warm;
        self.moves_within_lru += o.moves_within_lru;
        self.direct_reclaims += o.direct_reclaims;
        self.evicted_active += o.evicted_active;
        self.cmd_set += o.cmd_set;
        self.delete_hits += o.delete_hits;
        self.incr_hits += o.incr_hits;
        self.decr_hits += o.decr_hits;
        self.cas_hits += o.cas_hits;
        self.cas_badval += o.cas_badval;
        self.touch_hits += o.touch_hits;
    }

    /// Retrieval hits over all segments.
    pub fn get_hits(&self) -> u64 {
        self.hits.iter().sum()
    }

    /// `stats reset`: zero the counters, keep the gauges.
    pub fn reset(&mut self) {
        *self = ClassStats {
            number: self.number,
            requested: self.requested,
            pages: self.pages,
            chunks: self.chunks,
            ..ClassStats::default()
        };
    }
}

/// One segment's list in one class of one shard (memcached's `heads`,
/// `tails`, `sizes` and `sizes_bytes` for one LRU id). Changed under the
/// shard's lock only.
#[derive(Debug, Clone, Copy)]
pub struct SegList {
    /// Most recently linked item, or `NIL`.
    pub head: Handle,
    /// Least recently linked item, or `NIL`.
    pub tail: Handle,
    /// Items in the list.
    pub items: u64,
    /// Bytes those items take.
    pub bytes: u64,
}

impl Default for SegList {
    fn default() -> Self {
        SegList {
            head: NIL,
            tail: NIL,
            items: 0,
            bytes: 0,
        }
    }
}

/// One class's LRU segments and free chunks in a shard.
#[derive(Debug)]
pub struct ClassLru {
    /// The segments' lists, indexed by `lru::HOT` .. `lru::TEMP`.
    pub(super) segs: [SegList; SEGS],
    /// Free chunks, by chunk size.
    free: Vec<(u32, Vec<Handle>)>,
    /// Counters.
    pub stats: ClassStats,
}

impl ClassLru {
    /// Whether the class has no free chunk of this size in this shard.
    pub fn free_is_empty(&self, chunk: usize) -> bool {
        self.free
            .iter()
            .all(|(c, f)| *c as usize != chunk || f.is_empty())
    }

    fn free_list(&mut self, chunk: u32) -> &mut Vec<Handle> {
        let i = match self.free.iter().position(|(c, _)| *c == chunk) {
            Some(i) => i,
            None => {
                self.free.push((chunk, Vec::new()));
                self.free.len() - 1
            }
        };
        &mut self.free[i].1
    }
}

impl Default for ClassLru {
    fn default() -> Self {
        ClassLru {
            segs: [SegList::default(); SEGS],
            free: Vec::new(),
            stats: ClassStats::default(),
        }
    }
}

/// A shard.
#[derive(Debug)]
pub struct Shard {
    hasher: hashbrown::DefaultHashBuilder,
    table: HashTable<Handle>,
    pages: Slab<Page>,
    /// Large items: their allocation and class.
    large: Slab<(Box<[u8]>, u8)>,
    /// Per class, indexed by class id.
    pub classes: Vec<ClassLru>,
    /// Bytes of the table's allocation already charged to the budget.
    table_bytes: usize,
}

impl Shard {
    /// An empty shard for `nclasses` classes (ids `0..nclasses`).
    pub fn new(hasher: hashbrown::DefaultHashBuilder, nclasses: usize) -> Shard {
        Shard {
            hasher,
            table: HashTable::new(),
            pages: Slab::new(),
            large: Slab::new(),
            classes: (0..nclasses).map(|_| ClassLru::default()).collect(),
            table_bytes: 0,
        }
    }

    /// The bytes of the chunk (or large allocation) at `h`.
    pub fn mem(&self, h: Handle) -> &[u8] {
        mem_of(&self.pages, &self.large, h)
    }

    /// The bytes at `h`, mutably.
    pub fn mem_mut(&mut self, h: Handle) -> &mut [u8] {
        if h & LARGE != 0 {
            return &mut self.large[(h & !LARGE) as usize].0;
        }
        let p = &mut self.pages[(h >> CHUNK_BITS) as usize];
        let off = (h & ((1 << CHUNK_BITS) - 1)) as usize * p.chunk as usize;
        &mut p.mem[off..off + p.chunk as usize]
    }

    /// The item at `h`.
    pub fn view(&self, h: Handle) -> ItemView<'_> {
        ItemView::new(self.mem(h))
    }

    /// The linked item for `key`.
    pub fn find(&self, hash: u64, key: &[u8]) -> Option<Handle> {
        self.table
            .find(hash, |&h| ItemView::new(self.mem(h)).key() == key)
            .copied()
    }

    /// The slab class of the item at `h`.
    pub fn class_of(&self, h: Handle) -> usize {
        if h & LARGE != 0 {
            self.large[(h & !LARGE) as usize].1 as usize
        } else {
            self.pages[(h >> CHUNK_BITS) as usize].class as usize
        }
    }

    /// The chunk size of the item at `h` (its allocation for a large one).
    pub fn chunk_of(&self, h: Handle) -> usize {
        self.mem(h).len()
    }

    /// A free chunk of this size in a small class, if the shard has one.
    pub fn pop_free(&mut self, class: usize, chunk: usize) -> Option<Handle> {
        let h = self.classes[class].free_list(chunk as u32).pop()?;
        self.pages[(h >> CHUNK_BITS) as usize].used += 1;
        Some(h)
    }

    /// Bytes a page of chunks of this size really takes (whole chunks).
    pub fn page_bytes(page_size: usize, chunk: usize) -> usize {
        page_size / chunk * chunk
    }

    /// Add a page of `page_size` bytes carved into chunks of `chunk` bytes
    /// to a small class and put its chunks on the free list. False if the
    /// shard has no page number left.
    pub fn add_page(&mut self, class: usize, page_size: usize, chunk: usize) -> bool {
        if self.pages.vacant_key() >= MAX_PAGES {
            return false;
        }
        let per_page = page_size / chunk;
        let idx = self.pages.insert(Page {
            mem: vec![0; per_page * chunk].into_boxed_slice(),
            class: class as u8,
            chunk: chunk as u32,
            used: 0,
        }) as u32;
        let lru = &mut self.classes[class];
        lru.free_list(chunk as u32)
            .extend((0..per_page as u32).rev().map(|c| idx << CHUNK_BITS | c));
        lru.stats.pages += 1;
        lru.stats.chunks += per_page as u64;
        true
    }

    /// A new allocation of `size` bytes for an item of a large class.
    pub fn alloc_large(&mut self, class: usize, size: usize) -> Option<Handle> {
        if self.large.vacant_key() >= LARGE as usize {
            return None;
        }
        let idx = self
            .large
            .insert((vec![0; size].into_boxed_slice(), class as u8)) as u32;
        let s = &mut self.classes[class].stats;
        s.pages += 1;
        s.chunks += 1;
        Some(LARGE | idx)
    }

    /// Write `item` into the allocated `h` and link it: into the table and
    /// at the head of segment `seg` of its class's LRU.
    pub fn link(
        &mut self,
        h: Handle,
        hash: u64,
        class: usize,
        seg: usize,
        item: &NewItem<'_>,
        now: u32,
    ) {
        let mem = self.mem_mut(h);
        item.write(mem, now);
        items::set_linked(mem, true);
        items::set_seg(mem, seg);
        let size = item.size() as u64;
        let (table, pages, large, hasher) =
            (&mut self.table, &self.pages, &self.large, &self.hasher);
        table.insert_unique(hash, h, |&o| {
            hasher.hash_one(ItemView::new(mem_of(pages, large, o)).key())
        });
        self.push_head(class, h);
        let s = &mut self.classes[class].stats;
        s.number += 1;
        s.requested += size;
    }

    /// Take the item at `h` out of the table and its LRU. Its memory stays
    /// allocated; [`Shard::free`] gives it back.
    pub fn unlink(&mut self, h: Handle) {
        let class = self.class_of(h);
        let v = self.view(h);
        let size = v.size() as u64;
        let hash = self.hasher.hash_one(v.key());
        if let Ok(slot) = self.table.find_entry(hash, |&o| o == h) {
            slot.remove();
        }
        self.lru_remove(class, h);
        items::set_linked(self.mem_mut(h), false);
        let s = &mut self.classes[class].stats;
        s.number -= 1;
        s.requested -= size;
    }

    /// Give back the memory of an unlinked item. Returns the bytes handed
    /// back to the budget (a large item's allocation; a chunk goes to its
    /// class's free list instead) and, for a chunk, its page if that page
    /// is now empty.
    pub fn free(&mut self, h: Handle) -> (usize, Option<usize>) {
        let class = self.class_of(h);
        if h & LARGE != 0 {
            let (mem, _) = self.large.remove((h & !LARGE) as usize);
            let s = &mut self.classes[class].stats;
            s.pages -= 1;
            s.chunks -= 1;
            return (mem.len(), None);
        }
        let pidx = (h >> CHUNK_BITS) as usize;
        let p = &mut self.pages[pidx];
        p.used -= 1;
        let empty = p.used == 0;
        let chunk = p.chunk;
        self.classes[class].free_list(chunk).push(h);
        (0, empty.then_some(pidx))
    }

    /// Release an empty page. Returns its bytes.
    pub fn release_page(&mut self, pidx: usize) -> usize {
        debug_assert_eq!(self.pages[pidx].used, 0);
        let p = self.pages.remove(pidx);
        let class = p.class as usize;
        let lru = &mut self.classes[class];
        lru.free_list(p.chunk)
            .retain(|&h| (h >> CHUNK_BITS) as usize != pidx);
        lru.stats.pages -= 1;
        lru.stats.chunks -= (p.mem.len() / p.chunk as usize) as u64;
        p.mem.len()
    }

    /// Whether page `pidx` exists.
    pub fn has_page(&self, pidx: usize) -> bool {
        self.pages.contains(pidx)
    }

    /// An empty page of `class`, if there is one.
    pub fn empty_page_of(&self, class: usize) -> Option<usize> {
        self.pages
            .iter()
            .find(|(_, p)| p.used == 0 && p.class as usize == class)
            .map(|(i, _)| i)
    }

    /// An empty page of any class, if there is one.
    pub fn empty_page(&self) -> Option<usize> {
        self.pages.iter().find(|(_, p)| p.used == 0).map(|(i, _)| i)
    }

    /// The page of a chunk handle (None for a large item).
    pub fn page_of(h: Handle) -> Option<usize> {
        (h & LARGE == 0).then_some((h >> CHUNK_BITS) as usize)
    }

    /// The linked items of a page.
    pub fn page_items(&self, pidx: usize) -> Vec<Handle> {
        let p = &self.pages[pidx];
        let n = p.mem.len() / p.chunk as usize;
        (0..n as u32)
            .map(|c| (pidx as u32) << CHUNK_BITS | c)
            .filter(|&h| self.view(h).linked())
            .collect()
    }

    /// The class of page `pidx`.
    pub fn page_class(&self, pidx: usize) -> usize {
        self.pages[pidx].class as usize
    }

    /// Add the bytes of each class's empty pages to `out[class]`.
    pub fn empty_page_bytes(&self, out: &mut [u64]) {
        for (_, p) in self.pages.iter().filter(|(_, p)| p.used == 0) {
            out[p.class as usize] += p.mem.len() as u64;
        }
    }

    /// The page of `class` with the fewest items, for the slab mover.
    pub fn sparsest_page(&self, class: usize) -> Option<usize> {
        self.pages
            .iter()
            .filter(|(_, p)| p.class as usize == class)
            .min_by_key(|(_, p)| p.used)
            .map(|(i, _)| i)
    }

    /// Whether every item of page `pidx` fits a free chunk of its size in
    /// another page of the shard (the slab mover can empty it losing
    /// nothing).
    pub fn rescuable(&self, pidx: usize) -> bool {
        let p = &self.pages[pidx];
        let free = self.classes[p.class as usize]
            .free
            .iter()
            .find(|(c, _)| *c == p.chunk)
            .map_or(0, |(_, f)| {
                f.iter()
                    .filter(|&&h| (h >> CHUNK_BITS) as usize != pidx)
                    .count()
            });
        free >= p.used as usize
    }

    /// A free chunk for the item at `h` (of its class and chunk size) in
    /// a page other than `pidx`, taken off the free list.
    pub fn pop_free_outside(&mut self, h: Handle, pidx: usize) -> Option<Handle> {
        let (class, chunk) = (self.class_of(h), self.chunk_of(h) as u32);
        let list = self.classes[class].free_list(chunk);
        let i = list
            .iter()
            .rposition(|&f| (f >> CHUNK_BITS) as usize != pidx)?;
        let to = list.swap_remove(i);
        self.pages[(to >> CHUNK_BITS) as usize].used += 1;
        Some(to)
    }

    /// Move the linked item at `h` into the free chunk `to` (taken with
    /// [`Shard::pop_free_outside`]): the table points at the copy, which
    /// goes to the head of its LRU (as memcached's `do_item_replace`
    /// links a rescued item), and `h`'s chunk is freed.
    pub fn relocate(&mut self, h: Handle, to: Handle) {
        let class = self.class_of(h);
        let bytes = self.mem(h).to_vec();
        self.mem_mut(to).copy_from_slice(&bytes);
        let hash = self.hasher.hash_one(self.view(h).key());
        if let Some(slot) = self.table.find_mut(hash, |&o| o == h) {
            *slot = to;
        }
        self.lru_remove(class, h);
        self.push_head(class, to);
        items::set_linked(self.mem_mut(h), false);
        self.free(h);
    }

    /// Charge or refund the change in the table's allocation since the last
    /// call: returns (grown, shrunk) bytes.
    pub fn table_delta(&mut self) -> (usize, usize) {
        // hashbrown leaves a tombstone for a removed entry in a full group,
        // and once tombstones use up the free slots it doubles the table,
        // even when it holds no more items than before. Under steady
        // eviction that leaves it twice as large as needed; rehash it to
        // the size its items need instead.
        let cap = self.table.capacity();
        if self.table.len() < cap / 2 && self.table.allocation_size() > self.table_bytes {
            let (pages, large, hasher) = (&self.pages, &self.large, &self.hasher);
            self.table.shrink_to(self.table.len(), |&o| {
                hasher.hash_one(ItemView::new(mem_of(pages, large, o)).key())
            });
        }
        let now = self.table.allocation_size();
        let old = std::mem::replace(&mut self.table_bytes, now);
        (now.saturating_sub(old), old.saturating_sub(now))
    }

    /// Rehash the table to its items' size if it is less than a quarter
    /// full. Returns whether it did.
    pub fn shrink_table(&mut self) -> bool {
        if self.table.len() >= self.table.capacity() / 4 {
            return false;
        }
        let (pages, large, hasher) = (&self.pages, &self.large, &self.hasher);
        self.table.shrink_to(self.table.len(), |&o| {
            hasher.hash_one(ItemView::new(mem_of(pages, large, o)).key())
        });
        true
    }

    /// Buckets of the hash table and the bytes of its allocation.
    pub fn table_size(&self) -> (usize, usize) {
        let cap = self.table.capacity();
        let buckets = if cap == 0 {
            0
        } else {
            (cap * 8 / 7).next_power_of_two()
        };
        (buckets, self.table.allocation_size())
    }

    /// Move an item to the head of its segment and record the access time
    /// (the flat LRU's bump).
    pub fn bump(&mut self, h: Handle, now: u32) {
        let class = self.class_of(h);
        items::set_u32(self.mem_mut(h), TIME, now);
        if self.classes[class].segs[self.view(h).seg()].head != h {
            self.lru_remove(class, h);
            self.push_head(class, h);
        }
    }

    /// The next item to evict from a class: the tail of the first
    /// non-empty segment in eviction order (COLD, HOT, WARM, TEMP).
    pub fn tail(&self, class: usize) -> Option<Handle> {
        let segs = &self.classes[class].segs;
        EVICT_ORDER
            .iter()
            .map(|&s| segs[s].tail)
            .find(|&t| t != NIL)
    }

    /// The item evicted after `h`: its neighbour towards the head, or past
    /// its segment's head the tail of the next segment in eviction order.
    /// With [`Shard::tail`] this walks every item of a class once.
    pub fn prev(&self, h: Handle) -> Option<Handle> {
        let p = items::get_u32(self.mem(h), PREV);
        if p != NIL {
            return Some(p);
        }
        let segs = &self.classes[self.class_of(h)].segs;
        let seg = self.view(h).seg();
        EVICT_ORDER
            .iter()
            .skip_while(|&&s| s != seg)
            .skip(1)
            .map(|&s| segs[s].tail)
            .find(|&t| t != NIL)
    }

    /// The neighbour of `h` towards the tail of its segment.
    pub fn next(&self, h: Handle) -> Option<Handle> {
        let n = items::get_u32(self.mem(h), NEXT);
        (n != NIL).then_some(n)
    }

    /// The most recently used item of a class's COLD segment (in flat
    /// mode, of its only LRU): where memcached's `item_cachedump` starts.
    pub fn head(&self, class: usize) -> Option<Handle> {
        let h = self.classes[class].segs[COLD].head;
        (h != NIL).then_some(h)
    }

    /// Number of linked items.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no item is linked.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Whether `h`, a handle kept while the shard was unlocked, still
    /// addresses a linked item (its page or allocation may be gone).
    pub fn linked_at(&self, h: Handle) -> bool {
        let mem = if h & LARGE != 0 {
            self.large.get((h & !LARGE) as usize).map(|(m, _)| &m[..])
        } else {
            self.pages.get((h >> CHUNK_BITS) as usize).and_then(|p| {
                let off = (h & ((1 << CHUNK_BITS) - 1)) as usize * p.chunk as usize;
                p.mem.get(off..off + p.chunk as usize)
            })
        };
        mem.is_some_and(|m| ItemView::new(m).linked())
    }

    /// Walk the linked items in handle order, from position `from` (0 to
    /// start), for a walk that unlocks the shard between calls: chunks page
    /// by page, then large items. Items never move, so an item linked for
    /// the whole walk is met exactly once, whatever is stored or removed
    /// between calls, and the walk ends, since positions only grow.
    ///
    /// Pages and large items of classes `wanted` refuses are skipped
    /// whole. `f` gets each item with its class, and returns false to stop
    /// before it (it is met again by the next call). Each chunk looked at
    /// (a page skipped counts as one) takes one from `budget`, and the
    /// walk stops when it is spent. Returns where to go on, or `None` at
    /// the end.
    pub fn walk(
        &self,
        from: u64,
        budget: &mut usize,
        wanted: impl Fn(usize) -> bool,
        mut f: impl FnMut(Handle, usize) -> bool,
    ) -> Option<u64> {
        let mut pos = from;
        while pos < u64::from(LARGE) {
            if *budget == 0 {
                return Some(pos);
            }
            let want = (pos >> CHUNK_BITS) as usize;
            let Some((key, p)) =
                (want..self.pages.capacity()).find_map(|k| self.pages.get(k).map(|p| (k, p)))
            else {
                pos = u64::from(LARGE);
                break;
            };
            let (first, next_page) = ((key as u64) << CHUNK_BITS, (key as u64 + 1) << CHUNK_BITS);
            pos = pos.max(first);
            let chunks = (p.mem.len() / p.chunk as usize) as u64;
            if !wanted(p.class as usize) || pos - first >= chunks {
                pos = next_page;
            } else {
                let h = pos as Handle;
                if self.view(h).linked() && !f(h, p.class as usize) {
                    return Some(pos);
                }
                pos += 1;
            }
            *budget -= 1;
        }
        let start = (pos - u64::from(LARGE)) as usize;
        for idx in start..self.large.capacity() {
            let h = LARGE | idx as Handle;
            if *budget == 0 {
                return Some(u64::from(h));
            }
            let Some((_, class)) = self.large.get(idx) else {
                continue;
            };
            let class = *class as usize;
            if wanted(class) && self.view(h).linked() && !f(h, class) {
                return Some(u64::from(h));
            }
            *budget -= 1;
        }
        None
    }

    /// Every linked item.
    pub fn handles(&self) -> Vec<Handle> {
        self.table.iter().copied().collect()
    }

    /// The tail of one segment of a class.
    pub fn seg_tail(&self, class: usize, seg: usize) -> Option<Handle> {
        let t = self.classes[class].segs[seg].tail;
        (t != NIL).then_some(t)
    }

    /// The neighbour of `h` towards the head of its own segment.
    pub fn seg_prev(&self, h: Handle) -> Option<Handle> {
        let p = items::get_u32(self.mem(h), PREV);
        (p != NIL).then_some(p)
    }

    /// Relink `h` at the head of segment `seg` of its class.
    pub fn move_to(&mut self, class: usize, h: Handle, seg: usize) {
        self.lru_remove(class, h);
        items::set_seg(self.mem_mut(h), seg);
        self.push_head(class, h);
    }

    /// Link `h` at the head of the segment its header names.
    pub(super) fn push_head(&mut self, class: usize, h: Handle) {
        let v = self.view(h);
        let (seg, size) = (v.seg(), v.size() as u64);
        let old = self.classes[class].segs[seg].head;
        let mem = self.mem_mut(h);
        items::set_u32(mem, PREV, NIL);
        items::set_u32(mem, NEXT, old);
        if old != NIL {
            items::set_u32(self.mem_mut(old), PREV, h);
        }
        let list = &mut self.classes[class].segs[seg];
        if old == NIL {
            list.tail = h;
        }
        list.head = h;
        list.items += 1;
        list.bytes += size;
    }

    /// Take `h` out of its segment's list.
    pub(super) fn lru_remove(&mut self, class: usize, h: Handle) {
        let v = self.view(h);
        let (seg, size) = (v.seg(), v.size() as u64);
        let mem = self.mem(h);
        let (prev, next) = (items::get_u32(mem, PREV), items::get_u32(mem, NEXT));
        if prev != NIL {
            items::set_u32(self.mem_mut(prev), NEXT, next);
        } else {
            self.classes[class].segs[seg].head = next;
        }
        if next != NIL {
            items::set_u32(self.mem_mut(next), PREV, prev);
        } else {
            self.classes[class].segs[seg].tail = prev;
        }
        let list = &mut self.classes[class].segs[seg];
        list.items -= 1;
        list.bytes -= size;
        let mem = self.mem_mut(h);
        items::set_u32(mem, PREV, NIL);
        items::set_u32(mem, NEXT, NIL);
    }
}

#[cfg(test)]
impl Shard {
    /// Check the shard's structures agree; returns the bytes it holds
    /// (pages, large items, table) for the budget check.
    pub fn audit(&self) -> usize {
        let mut linked = 0;
        for class in 1..self.classes.len() {
            let mut n = 0;
            for (seg, list) in self.classes[class].segs.iter().enumerate() {
                let (mut items, mut bytes) = (0, 0);
                let mut prev = NIL;
                let mut cur = list.head;
                while cur != NIL {
                    let v = self.view(cur);
                    assert_eq!(items::get_u32(self.mem(cur), PREV), prev, "prev link");
                    assert!(v.linked());
                    assert_eq!(v.seg(), seg, "segment");
                    assert_eq!(self.class_of(cur), class);
                    items += 1;
                    bytes += v.size() as u64;
                    prev = cur;
                    cur = items::get_u32(self.mem(cur), NEXT);
                }
                assert_eq!(list.tail, prev, "tail");
                assert_eq!((list.items, list.bytes), (items, bytes), "segment size");
                n += items;
            }
            // The eviction walk meets every item of the class once.
            let mut walked = 0;
            let mut cur = self.tail(class);
            while let Some(h) = cur {
                walked += 1;
                cur = self.prev(h);
            }
            assert_eq!(walked, n, "eviction walk");
            assert_eq!(self.classes[class].stats.number, n, "number");
            linked += n;
            for (_, free) in &self.classes[class].free {
                for &h in free {
                    assert!(!self.view(h).linked(), "a free chunk is linked");
                }
            }
        }
        assert_eq!(linked as usize, self.table.len(), "table");
        let mut bytes = self.table_bytes;
        for (i, p) in self.pages.iter() {
            let n = p.mem.len() / p.chunk as usize;
            let used = (0..n as u32)
                .filter(|&c| self.view((i as u32) << CHUNK_BITS | c).linked())
                .count();
            assert_eq!(used, p.used as usize, "page use");
            bytes += p.mem.len();
        }
        bytes + self.large.iter().map(|(_, (m, _))| m.len()).sum::<usize>()
    }
}

fn mem_of<'a>(pages: &'a Slab<Page>, large: &'a Slab<(Box<[u8]>, u8)>, h: Handle) -> &'a [u8] {
    if h & LARGE != 0 {
        return &large[(h & !LARGE) as usize].0;
    }
    let p = &pages[(h >> CHUNK_BITS) as usize];
    let off = (h & ((1 << CHUNK_BITS) - 1)) as usize * p.chunk as usize;
    &p.mem[off..off + p.chunk as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_item(key: &[u8]) -> NewItem<'_> {
        NewItem {
            key,
            data: [b"v", b""],
            flags: 0,
            exptime: 0,
            cas: Some(1),
            meta: 0,
        }
    }

    #[test]
    fn lru_order_table_and_free_chunks() {
        let hasher = hashbrown::DefaultHashBuilder::default();
        let mut s = Shard::new(hasher, 3);
        assert!(s.add_page(1, 1024, 64));
        let mut hs = vec![];
        for k in [&b"a"[..], b"b", b"c"] {
            let h = s.pop_free(1, 64).unwrap();
            s.link(h, hasher.hash_one(k), 1, COLD, &new_item(k), 0);
            hs.push(h);
        }
        assert_eq!(s.find(hasher.hash_one(b"b"), b"b"), Some(hs[1]));
        assert_eq!(s.tail(1), Some(hs[0]));
        s.bump(hs[0], 5);
        assert_eq!(s.tail(1), Some(hs[1]));
        assert_eq!(s.head(1), Some(hs[0]));
        s.unlink(hs[1]);
        assert_eq!(s.free(hs[1]), (0, None));
        assert!(s.find(hasher.hash_one(b"b"), b"b").is_none());
        assert_eq!(s.tail(1), Some(hs[2]));
        assert_eq!(s.len(), 2);
        assert_eq!(s.classes[1].stats.number, 2);
        for h in [hs[0], hs[2]] {
            s.unlink(h);
            let (_, empty) = s.free(h);
            if h == hs[2] {
                assert_eq!(empty, Some(0));
            }
        }
        assert_eq!(s.release_page(0), 1024);
        assert!(s.classes[1].free_is_empty(64));
        assert_eq!(s.classes[1].stats.pages, 0);
    }

    #[test]
    fn large_items_are_single_allocations() {
        let hasher = hashbrown::DefaultHashBuilder::default();
        let mut s = Shard::new(hasher, 3);
        let h = s.alloc_large(2, 5000).unwrap();
        s.link(h, hasher.hash_one(b"k"), 2, COLD, &new_item(b"k"), 0);
        assert_eq!(s.mem(h).len(), 5000);
        assert_eq!(s.view(h).key(), b"k");
        s.unlink(h);
        assert_eq!(s.class_of(h), 2);
        assert_eq!(s.free(h), (5000, None));
    }
}
