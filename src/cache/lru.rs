//! One shard of the cache: a hash table plus an LRU list. Mirrors memcached's
//! `assoc.c` (the table) and the LRU of `items.c`, folded into one structure
//! behind one lock.
//!
//! The entries live in a `slab::Slab` (the crate, not memcached's slabs)
//! and are linked into a doubly linked list by index. The hash table
//! (`hashbrown::HashTable`) stores only those indices; the key lives once,
//! in the item.

use std::sync::Arc;

use hashbrown::HashTable;
use slab::Slab;

use super::items::Item;

/// "No entry" in the LRU links.
const NIL: usize = usize::MAX;

/// A linked item and the state that changes without replacing it.
#[derive(Debug)]
pub struct Entry {
    /// The item itself, shared with replies in flight.
    pub item: Arc<Item>,
    /// The key's hash, kept so the table can rehash without re-hashing keys.
    pub hash: u64,
    /// Relative expiry time, 0 = never (memcached's `it->exptime`).
    pub exptime: u32,
    /// Relative time of the last LRU bump (memcached's `it->time`).
    pub time: u32,
    /// Whether the item was read since it was stored (for the `*_unfetched`
    /// counters).
    pub fetched: bool,
    /// Bytes charged for this entry.
    pub size: usize,
    /// Neighbour towards the LRU head (more recently used).
    prev: usize,
    /// Neighbour towards the LRU tail (less recently used).
    next: usize,
}

/// A shard: table, LRU list and the bytes its items are charged.
#[derive(Debug)]
pub struct Shard {
    /// Key hash -> index into `entries`.
    table: HashTable<usize>,
    /// The entries, indexed by the table and the LRU links.
    entries: Slab<Entry>,
    /// Most recently used entry, or `NIL`.
    head: usize,
    /// Least recently used entry, or `NIL`.
    tail: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            table: HashTable::new(),
            entries: Slab::new(),
            head: NIL,
            tail: NIL,
        }
    }
}

impl Shard {
    /// Index of the entry for `key`, if linked.
    pub fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        let entries = &self.entries;
        self.table
            .find(hash, |&i| &*entries[i].item.key == key)
            .copied()
    }

    /// The entry at `idx`.
    pub fn entry(&self, idx: usize) -> &Entry {
        &self.entries[idx]
    }

    /// The entry at `idx`, mutably.
    pub fn entry_mut(&mut self, idx: usize) -> &mut Entry {
        &mut self.entries[idx]
    }

    /// Number of linked items.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the shard holds no item.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Link a new entry at the LRU head. The caller has checked that the key
    /// is not linked yet.
    pub fn insert(&mut self, item: Arc<Item>, hash: u64, exptime: u32, now: u32, size: usize) {
        let idx = self.entries.insert(Entry {
            item,
            hash,
            exptime,
            time: now,
            fetched: false,
            size,
            prev: NIL,
            next: NIL,
        });
        let entries = &self.entries;
        self.table.insert_unique(hash, idx, |&i| entries[i].hash);
        self.push_head(idx);
    }

    /// Swap the item of a linked entry (set over an existing key), moving it
    /// to the head. Returns the bytes the old item was charged.
    pub fn replace(
        &mut self,
        idx: usize,
        item: Arc<Item>,
        exptime: u32,
        now: u32,
        size: usize,
    ) -> usize {
        let e = &mut self.entries[idx];
        let old = e.size;
        e.item = item;
        e.exptime = exptime;
        e.time = now;
        e.fetched = false;
        e.size = size;
        self.bump(idx, now);
        old
    }

    /// Unlink and drop the entry at `idx`, returning it.
    pub fn remove(&mut self, idx: usize) -> Entry {
        self.unlink(idx);
        let hash = self.entries[idx].hash;
        if let Ok(slot) = self.table.find_entry(hash, |&i| i == idx) {
            slot.remove();
        }
        self.entries.remove(idx)
    }

    /// Move the entry to the LRU head and record the access time.
    pub fn bump(&mut self, idx: usize, now: u32) {
        self.entries[idx].time = now;
        if self.head != idx {
            self.unlink(idx);
            self.push_head(idx);
        }
    }

    /// The least recently used entry, if any.
    pub fn tail(&self) -> Option<usize> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// Up to `n` entries from the tail towards the head.
    pub fn tail_entries(&self, n: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(n);
        let mut cur = self.tail;
        while cur != NIL && out.len() < n {
            out.push(cur);
            cur = self.entries[cur].prev;
        }
        out
    }

    /// Every linked index (for flush and tests).
    pub fn indices(&self) -> Vec<usize> {
        self.entries.iter().map(|(i, _)| i).collect()
    }

    fn push_head(&mut self, idx: usize) {
        let old_head = self.head;
        {
            let e = &mut self.entries[idx];
            e.prev = NIL;
            e.next = old_head;
        }
        if old_head != NIL {
            self.entries[old_head].prev = idx;
        } else {
            self.tail = idx;
        }
        self.head = idx;
    }

    fn unlink(&mut self, idx: usize) {
        let (prev, next) = {
            let e = &self.entries[idx];
            (e.prev, e.next)
        };
        if prev != NIL {
            self.entries[prev].next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.entries[next].prev = prev;
        } else {
            self.tail = prev;
        }
        let e = &mut self.entries[idx];
        e.prev = NIL;
        e.next = NIL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str) -> Arc<Item> {
        Arc::new(Item {
            key: key.as_bytes().into(),
            data: Box::new([]),
            flags: 0,
            cas: 0,
        })
    }

    #[test]
    fn lru_order_and_removal() {
        let mut s = Shard::default();
        for (h, k) in [(1u64, "a"), (2, "b"), (3, "c")] {
            s.insert(item(k), h, 0, 0, 10);
        }
        let order: Vec<_> = s
            .tail_entries(10)
            .into_iter()
            .map(|i| s.entry(i).item.key.to_vec())
            .collect();
        assert_eq!(order, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        let a = s.find(1, b"a").unwrap();
        s.bump(a, 5);
        assert_eq!(&*s.entry(s.tail().unwrap()).item.key, b"b");
        let b = s.find(2, b"b").unwrap();
        s.remove(b);
        assert!(s.find(2, b"b").is_none());
        assert_eq!(s.len(), 2);
        assert_eq!(&*s.entry(s.tail().unwrap()).item.key, b"c");
    }
}
