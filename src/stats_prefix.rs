//! Per-prefix counters for `stats detail`: mirrors memcached's
//! `stats_prefix.c`.
//!
//! With `stats detail on`, every get, set and delete of a key that contains
//! the delimiter (`-D`, default `:`) is counted under the part of the key
//! before it. `stats detail dump` lists the prefixes; `stats reset` clears
//! them. memcached guards its table with the global stats lock; here it is a
//! mutex of its own, taken only while collection is on.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::sync::lock;

/// Counts for one prefix.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    /// Retrievals of keys with this prefix.
    gets: u64,
    /// Of those, hits.
    hits: u64,
    /// Storage commands.
    sets: u64,
    /// Deletes.
    deletes: u64,
}

/// The prefix table.
#[derive(Debug)]
pub struct PrefixStats {
    /// Whether collection is on (`stats detail on|off`, `-o` … `detail_enabled`).
    enabled: AtomicBool,
    /// The delimiter that ends a prefix (`-D`).
    delimiter: u8,
    /// Prefix -> counts; ordered, so the dump is stable.
    table: Mutex<BTreeMap<Vec<u8>, Counts>>,
}

impl PrefixStats {
    /// An empty table.
    pub fn new(delimiter: u8, enabled: bool) -> PrefixStats {
        PrefixStats {
            enabled: AtomicBool::new(enabled),
            delimiter,
            table: Mutex::new(BTreeMap::new()),
        }
    }

    /// Turn collection on or off.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Whether collection is on.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Count something for `key`'s prefix, if collection is on and the key
    /// has one (memcached's `stats_prefix_find`: a NUL also ends the search).
    fn record(&self, key: &[u8], f: impl FnOnce(&mut Counts)) {
        if !self.enabled() {
            return;
        }
        let end = key.iter().position(|&b| b == self.delimiter || b == 0);
        let Some(len) = end.filter(|&i| key[i] == self.delimiter) else {
            return;
        };
        let mut table = lock(&self.table);
        f(table.entry(key[..len].to_vec()).or_default());
    }

    /// A retrieval of `key`.
    pub fn record_get(&self, key: &[u8], hit: bool) {
        self.record(key, |c| {
            c.gets += 1;
            c.hits += u64::from(hit);
        });
    }

    /// A storage command on `key`.
    pub fn record_set(&self, key: &[u8]) {
        self.record(key, |c| c.sets += 1);
    }

    /// A delete of `key`.
    pub fn record_delete(&self, key: &[u8]) {
        self.record(key, |c| c.deletes += 1);
    }

    /// `stats reset`: forget every prefix.
    pub fn clear(&self) {
        lock(&self.table).clear();
    }

    /// `stats detail dump`: one `PREFIX` line per prefix, then `END`.
    pub fn dump(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        let table = lock(&self.table);
        for (prefix, c) in table.iter() {
            out.extend_from_slice(b"PREFIX ");
            out.extend_from_slice(prefix);
            let _ = write!(
                out,
                " get {} hit {} set {} del {}\r\n",
                c.gets, c.hits, c.sets, c.deletes
            );
        }
        out.extend_from_slice(b"END\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_prefix_only_when_enabled() {
        let p = PrefixStats::new(b':', false);
        p.record_set(b"foo:1");
        let mut out = Vec::new();
        p.dump(&mut out);
        assert_eq!(out, b"END\r\n");
        p.set_enabled(true);
        p.record_set(b"foo:1");
        p.record_get(b"foo:2", false);
        p.record_get(b"foo:1", true);
        p.record_delete(b"bar:1");
        p.record_get(b"nodelimiter", true);
        let mut out = Vec::new();
        p.dump(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "PREFIX bar get 0 hit 0 set 0 del 1\r\nPREFIX foo get 2 hit 1 set 1 del 0\r\nEND\r\n"
        );
        p.clear();
        let mut out = Vec::new();
        p.dump(&mut out);
        assert_eq!(out, b"END\r\n");
    }
}
