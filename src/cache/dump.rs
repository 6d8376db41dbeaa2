//! `stats cachedump`: mirrors memcached's `item_cachedump` (`items.c`).
//!
//! memcached walks one LRU, newest first, into a buffer of at most 2 MB:
//! the class's COLD segment (every item in flat mode; in segmented mode
//! the items HOT and WARM let go). Here a class has one COLD list per
//! shard, so the shards' walks are merged,
//! newest first by (last-bump time, CAS), keeping only the newest lines
//! that fit the reply: memory follows the reply's size, not the class's.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::items::{ItemView, KEY_BINARY};
use super::{lock, Cache};

/// Where an item falls in the merged order: its last bump, its CAS, and
/// then the order the walks met it in (for items alike in both, as with
/// CAS off), later meetings older.
type Rank = (u32, u64, Reverse<u64>);

/// One line kept for the reply.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Kept {
    /// Its place in the merged order (compared first).
    rank: Rank,
    /// The formatted line.
    line: Box<[u8]>,
}

/// The newest lines met so far, as many as fit: the oldest on top, ready
/// to be dropped when newer lines crowd it out.
struct Newest {
    /// The kept lines.
    heap: BinaryHeap<Reverse<Kept>>,
    /// Their bytes together.
    bytes: usize,
    /// The newest rank known to be out of the reply (`None`: none yet).
    /// What is out stays out (lines met later only add to what comes
    /// before it), and so does anything older.
    floor: Option<Rank>,
    /// Bytes the lines may take.
    room: usize,
    /// Lines wanted at most (0 = no limit).
    limit: usize,
}

impl Newest {
    /// Keep a line if it may be in the reply, dropping the oldest kept
    /// lines that no longer fit. Returns false when this line is out,
    /// and with it everything older.
    fn offer(&mut self, rank: Rank, line: &[u8]) -> bool {
        if self.floor.is_some_and(|f| rank <= f) {
            return false;
        }
        let oldest = self.heap.peek().is_none_or(|Reverse(k)| rank < k.rank);
        let full = self.bytes + line.len() > self.room
            || (self.limit != 0 && self.heap.len() >= self.limit);
        if oldest && full {
            // Every line kept comes before it, and they fill the reply.
            self.floor = Some(rank);
            return false;
        }
        self.bytes += line.len();
        self.heap.push(Reverse(Kept {
            rank,
            line: line.into(),
        }));
        while self.bytes > self.room || (self.limit != 0 && self.heap.len() > self.limit) {
            let Some(Reverse(out)) = self.heap.pop() else {
                break;
            };
            self.bytes -= out.line.len();
            // Popped in rising order, so each is newer than the last.
            self.floor = Some(out.rank);
        }
        true
    }
}

impl Cache {
    /// `stats cachedump <class> <limit>`: append one line per item of
    /// `class`, newest first across shards, as `line` formats it, stopping
    /// at `limit` lines (0 = no limit) or before the first line that would
    /// take the appended bytes past `room`, as memcached's buffer does.
    /// Items with binary keys are left out, as memcached leaves them out
    /// (their keys would print raw).
    ///
    /// Memory beyond `out` is the lines kept, at most `room` bytes, plus a
    /// few words for each, however large the class (memcached: one 2 MB
    /// buffer). One shard is locked at a time, so the dump is not one
    /// instant's picture, as memcached's (one LRU under one lock) is.
    pub fn dump(
        &self,
        class: usize,
        limit: usize,
        room: usize,
        mut line: impl FnMut(ItemView<'_>, &mut Vec<u8>),
        out: &mut Vec<u8>,
    ) {
        let mut newest = Newest {
            heap: BinaryHeap::new(),
            bytes: 0,
            floor: None,
            room,
            limit,
        };
        let mut met = 0u64;
        let mut scratch = Vec::new();
        for m in self.shards.iter() {
            let sh = lock(m);
            // A shard's LRU is newest first by last bump; within one second
            // a bump may put a lower CAS ahead of a higher one. The LRU's
            // order wins: a rank is never above the one before it, so that
            // each walk is ordered and can stop early.
            let mut ceiling = (u32::MAX, u64::MAX);
            let mut cur = sh.head(class);
            while let Some(h) = cur {
                cur = sh.next(h);
                let v = sh.view(h);
                if v.meta() & KEY_BINARY != 0 {
                    continue;
                }
                ceiling = ceiling.min((v.time(), v.cas()));
                met += 1;
                let rank = (ceiling.0, ceiling.1, Reverse(met));
                scratch.clear();
                line(v, &mut scratch);
                if !newest.offer(rank, &scratch) {
                    // The rest of this walk is older still.
                    break;
                }
            }
        }
        for Reverse(k) in newest.heap.into_sorted_vec() {
            out.extend_from_slice(&k.line);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cache::StoreMode;
    use crate::proto::admin::{cachedump, CACHEDUMP_MAX};
    use crate::server::Server;
    use crate::settings::Settings;

    /// A server with a flat LRU: every item is in COLD, the segment a
    /// dump walks.
    fn server(mb: usize) -> Server {
        Server::new(Settings {
            maxbytes: mb * 1024 * 1024,
            lru_segmented: false,
            ..Settings::default()
        })
    }

    fn set(s: &Server, key: &str) {
        let r = s.cache.store(StoreMode::Set, key.as_bytes(), 0, 0, b"v", 0);
        assert_eq!(r.0, crate::cache::StoreResult::Stored, "{key}");
    }

    /// The class `key` with a one-byte value lands in.
    fn class_of(s: &Server, key: &str) -> usize {
        let size = crate::cache::items::item_size(key.len(), 0, 1, true);
        s.cache.classes().class_for(size)
    }

    fn dump(s: &Server, class: usize, limit: usize, cap: usize) -> String {
        let mut out = Vec::new();
        cachedump(&s.ctx(), class, limit, cap, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// What memcached's `item_cachedump` gives for these lines, newest
    /// first: each while it leaves room for `END\r\n\0`.
    fn expected(lines: &[String], limit: usize, cap: usize) -> String {
        let mut out = String::new();
        for l in lines
            .iter()
            .take(if limit == 0 { usize::MAX } else { limit })
        {
            if out.len() + l.len() + 6 > cap {
                break;
            }
            out.push_str(l);
        }
        out.push_str("END\r\n");
        out
    }

    /// 200,000 items of 200-byte keys would make a 43 MB reply; like
    /// memcached's, it stops at 2 MB, with the newest items, in order.
    #[test]
    fn a_large_class_dumps_its_newest_two_megabytes() {
        let s = server(256);
        let keys: Vec<String> = (0..200_000).map(|i| format!("{i:0>200}")).collect();
        for k in &keys {
            set(&s, k);
        }
        let class = class_of(&s, &keys[0]);
        let out = dump(&s, class, 0, CACHEDUMP_MAX);
        let line_len = "ITEM ".len() + 200 + " [1 b; 0 s]\r\n".len();
        let lines = (CACHEDUMP_MAX - 6) / line_len;
        assert_eq!(out.len(), lines * line_len + 5);
        assert!(out.len() < CACHEDUMP_MAX && out.ends_with("\r\nEND\r\n"));
        let newest: Vec<String> = keys
            .iter()
            .rev()
            .map(|k| format!("ITEM {k} [1 b; 0 s]\r\n"))
            .collect();
        assert_eq!(out, expected(&newest, 0, CACHEDUMP_MAX));
    }

    /// Keys stored one after another come back newest first, whatever
    /// shards they are in, cut by the limit and the cap as memcached cuts
    /// them, with lines of every length.
    #[test]
    fn items_come_newest_first_across_shards() {
        let s = server(64);
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut stored = Vec::new();
        for i in 0..3000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            // Keys of 1 to 9 bytes, all in one class.
            let key = format!("{i}{}", "k".repeat((rng % 6) as usize));
            set(&s, &key);
            stored.push(key);
        }
        let class = class_of(&s, "k");
        assert!(stored.iter().all(|k| class_of(&s, k) == class));
        let newest: Vec<String> = stored
            .iter()
            .rev()
            .map(|k| format!("ITEM {k} [1 b; 0 s]\r\n"))
            .collect();
        for (limit, cap) in [
            (0, CACHEDUMP_MAX),
            (0, 1000),
            (0, 6),
            (0, 40),
            (7, 1000),
            (1, 26),
            (5000, 4321),
        ] {
            assert_eq!(
                dump(&s, class, limit, cap),
                expected(&newest, limit, cap),
                "limit {limit}, cap {cap}"
            );
        }
    }

    /// memcached leaves out items with binary keys (`ms ... b`), whose
    /// keys would print raw.
    #[test]
    fn binary_keys_are_left_out() {
        let s = server(64);
        set(&s, "a");
        let opts = crate::cache::StoreOpts {
            meta: super::KEY_BINARY,
            ..Default::default()
        };
        let r = s
            .cache
            .store_ext(StoreMode::Set, b"\0b", 0, 0, b"v", 0, opts);
        assert_eq!(r.0, crate::cache::StoreResult::Stored);
        set(&s, "c");
        let class = class_of(&s, "a");
        assert_eq!(class_of(&s, "\0b"), class);
        let want = "ITEM c [1 b; 0 s]\r\nITEM a [1 b; 0 s]\r\nEND\r\n";
        assert_eq!(dump(&s, class, 0, CACHEDUMP_MAX), want);
    }
}
