//! The storage engine seen from a client: per-class `stats slabs`,
//! `stats items` and `stats cachedump` against the real memcached, memory
//! that stays within `-m`, eviction order, and memory moving between slab
//! classes when the value sizes change.
use crate::common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;

fn stats(s: &mut TcpStream, group: &str) -> Vec<(String, String)> {
    let cmd = if group.is_empty() {
        "stats\r\n".to_string()
    } else {
        format!("stats {group}\r\n")
    };
    let reply = common::request(s, cmd.as_bytes(), b"END\r\n");
    String::from_utf8_lossy(&reply)
        .lines()
        .filter_map(|l| l.strip_prefix("STAT "))
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn stat_map(s: &mut TcpStream, group: &str) -> BTreeMap<String, String> {
    stats(s, group).into_iter().collect()
}

fn num(m: &BTreeMap<String, String>, k: &str) -> u64 {
    m.get(k)
        .unwrap_or_else(|| panic!("no {k}"))
        .parse()
        .unwrap()
}

/// Pipelined `set ... noreply` of `count` keys, then a `version` round
/// trip, so that every set has been processed.
fn fill(s: &mut TcpStream, prefix: &str, count: usize, value_len: usize) {
    let value = vec![b'v'; value_len];
    let mut batch = Vec::new();
    for i in 0..count {
        let _ = write!(batch, "set {prefix}{i:08} 0 0 {value_len} noreply\r\n");
        batch.extend_from_slice(&value);
        batch.extend_from_slice(b"\r\n");
        if batch.len() > 256 * 1024 {
            s.write_all(&batch).unwrap();
            batch.clear();
        }
    }
    s.write_all(&batch).unwrap();
    common::request(s, b"version\r\n", b"\r\n");
}

fn get_hit(s: &mut TcpStream, key: &str) -> bool {
    let reply = common::request(s, format!("get {key}\r\n").as_bytes(), b"END\r\n");
    reply.starts_with(b"VALUE ")
}

/// The same requests to both servers: a few items in four classes, some
/// read, one deleted, one incremented, one touched.
fn exercise(s: &mut TcpStream) {
    let big = "b".repeat(100_000);
    let reqs = [
        "set small1 0 0 10\r\n0123456789\r\n".to_string(),
        "set small2 5 100 2\r\n42\r\n".to_string(),
        format!("set mid 0 0 500\r\n{}\r\n", "m".repeat(500)),
        format!("set five 0 0 5000\r\n{}\r\n", "f".repeat(5000)),
        format!("set big 0 0 100000\r\n{big}\r\n"),
        "get small1 small2 mid\r\n".to_string(),
        "incr small2 1\r\n".to_string(),
        "touch five 100\r\n".to_string(),
        "delete mid\r\n".to_string(),
        "gets big\r\n".to_string(),
    ];
    for r in &reqs {
        s.write_all(r.as_bytes()).unwrap();
    }
    common::request(s, b"version\r\n", b"VERSION 1.6.18\r\n");
}

/// Names of a group's lines with the class number taken out, and the
/// values of the fields both servers must agree on.
fn comparable(lines: &[(String, String)], same: &[&str]) -> Vec<(String, Option<String>)> {
    lines
        .iter()
        .map(|(k, v)| {
            let field = k.rsplit(':').next().unwrap();
            let value = same.contains(&field).then(|| v.clone());
            (k.clone(), value)
        })
        .collect()
}

/// Equal lists, or a failure naming the entries that differ.
fn assert_same(ours: &[(String, Option<String>)], theirs: &[(String, Option<String>)], what: &str) {
    let diff: Vec<_> = ours.iter().zip(theirs).filter(|(a, b)| a != b).collect();
    assert!(
        diff.is_empty() && ours.len() == theirs.len(),
        "{what}: {} vs {} lines, differing: {diff:?}",
        ours.len(),
        theirs.len()
    );
}

#[test]
fn per_class_stats_match_memcached() {
    for args in [&[][..], &["-o", "no_modern"]] {
        let ours = common::start_server(args);
        let theirs = common::start_with("/usr/bin/memcached", args);
        let (mut a, mut b) = (ours.tcp(), theirs.tcp());
        exercise(&mut a);
        exercise(&mut b);

        // Same classes, same chunk sizes, same per-class counters; page
        // counts and sizes differ by design.
        let slab_same = [
            "chunk_size",
            "used_chunks",
            "get_hits",
            "cmd_set",
            "delete_hits",
            "incr_hits",
            "decr_hits",
            "cas_hits",
            "cas_badval",
            "touch_hits",
            "active_slabs",
        ];
        assert_same(
            &comparable(&stats(&mut a, "slabs"), &slab_same),
            &comparable(&stats(&mut b, "slabs"), &slab_same),
            &format!("stats slabs with {args:?}"),
        );
        // (memcached's hot/warm/cold counts and `lrutail_reflocked` depend
        // on its maintainer thread's timing, so only their names are
        // compared.)
        let item_same = [
            "number",
            "evicted",
            "evicted_nonzero",
            "outofmemory",
            "tailrepairs",
            "reclaimed",
            "expired_unfetched",
            "evicted_unfetched",
        ];
        assert_same(
            &comparable(&stats(&mut a, "items"), &item_same),
            &comparable(&stats(&mut b, "items"), &item_same),
            &format!("stats items with {args:?}"),
        );
    }
}

/// Compared with `-o no_modern`: memcached's segmented LRU dumps only the
/// items that reached its cold segment, which says more about its LRU
/// maintainer's timing than about the items.
#[test]
fn cachedump_matches_memcached() {
    let ours = common::start_server(&["-o", "no_modern"]);
    let theirs = common::start_with("/usr/bin/memcached", &["-o", "no_modern"]);
    let mut replies = Vec::new();
    for server in [&ours, &theirs] {
        let mut s = server.tcp();
        exercise(&mut s);
        let mut out = Vec::new();
        for cmd in [
            "stats cachedump 1 0\r\n",
            "stats cachedump 1 1\r\n",
            "stats cachedump 32 10\r\n",
            "stats cachedump 2 10\r\n",
        ] {
            let mut reply =
                String::from_utf8(common::request(&mut s, cmd.as_bytes(), b"END\r\n")).unwrap();
            // Absolute exptimes may be a second apart between the servers.
            if let Some(i) = reply.find("b; 1") {
                let end = i + reply[i..].find(" s]").unwrap();
                reply.replace_range(i + 3..end, "T");
            }
            let mut lines: Vec<_> = reply.lines().map(str::to_string).collect();
            // Within a class the order is the LRU's: per shard here.
            if cmd != "stats cachedump 1 1\r\n" {
                lines.sort();
            }
            out.push((cmd, lines.len(), lines));
        }
        for cmd in [
            "stats cachedump 99 10\r\n",
            "stats cachedump 1\r\n",
            "stats cachedump x 1\r\n",
        ] {
            let reply = common::request(&mut s, cmd.as_bytes(), b"\r\n");
            out.push((cmd, 1, vec![String::from_utf8(reply).unwrap()]));
        }
        replies.push(out);
    }
    // `stats cachedump 1 1` lists one item, whichever is first.
    let (ours, theirs) = (&mut replies[0].clone(), &mut replies[1].clone());
    assert_eq!(ours[1].1, theirs[1].1);
    ours.remove(1);
    theirs.remove(1);
    assert_eq!(ours, theirs);
}

/// Filling an 8 MiB cache three times over with small items: the cache's
/// own count of the bytes items take (`item_malloced` of `stats
/// rmemcached`, plus `hash_bytes`) stays under the limit, so do the slab
/// pages granted (`total_malloced`),
/// the process grows by no more than the limit plus 10% and 1 MiB of fixed
/// cost (connection buffers, the allocator's per-thread arenas), and the
/// newest items are the ones kept.
#[test]
fn memory_stays_within_the_limit() {
    let server = common::start_server(&["-m", "8"]);
    let mut s = server.tcp();
    let before = common::rss_kb(server.child.id());
    let count = 3 * 8 * 1024 * 1024 / (12 + 32 + 28);
    fill(&mut s, "key", count, 32);
    let slabs = stat_map(&mut s, "slabs");
    let general = stat_map(&mut s, "");
    let limit = num(&general, "limit_maxbytes");
    let hash = num(&general, "hash_bytes");
    assert_eq!(limit, 8 << 20);
    let own = stat_map(&mut s, "rmemcached");
    assert!(num(&own, "item_malloced") + hash <= limit);
    assert!(num(&slabs, "total_malloced") <= limit);
    assert!(num(&general, "evictions") > 0);
    let kept = num(&general, "curr_items");
    // memcached 1.6.18 keeps 70k such items in 8 MiB (eight pages of
    // 120-byte chunks).
    assert!(kept > 90_000, "kept {kept}");
    let grown = common::rss_kb(server.child.id()).saturating_sub(before);
    assert!(grown <= 8 * 1024 * 11 / 10 + 1024, "RSS grew by {grown} kB");
    for i in count - 100..count {
        assert!(get_hit(&mut s, &format!("key{i:08}")), "newest key {i}");
    }
}

/// Large items leave in LRU order across shards: after 40 one-megabyte
/// items in 16 MiB, exactly the oldest are gone.
#[test]
fn large_items_are_evicted_oldest_first() {
    let server = common::start_server(&["-m", "16"]);
    let mut s = server.tcp();
    let value = "x".repeat(1000 * 1000);
    for i in 0..40 {
        let r = common::request(
            &mut s,
            format!("set item{i} 0 0 {}\r\n{value}\r\n", value.len()).as_bytes(),
            b"\r\n",
        );
        assert_eq!(r, b"STORED\r\n");
    }
    let general = stat_map(&mut s, "");
    let evicted = num(&general, "evictions") as usize;
    let kept = num(&general, "curr_items") as usize;
    assert_eq!(evicted + kept, 40);
    assert!((14..=16).contains(&kept), "kept {kept}");
    for i in 0..40 {
        assert_eq!(
            get_hit(&mut s, &format!("item{i}")),
            i >= evicted,
            "item{i}"
        );
    }
}

/// When the value size changes, memory moves to the new class: after a
/// cache full of 32-byte values, 2000-byte values are stored and kept, and
/// the old class gives up pages. As in memcached, a class that owns its
/// share of slab pages evicts its own items; with `slab_automove=2` each
/// such eviction asks the slab mover for a page of another class.
#[test]
fn memory_moves_between_classes() {
    let server = common::start_server(&["-m", "8", "-o", "slab_automove=2"]);
    let mut s = server.tcp();
    fill(&mut s, "small", 200_000, 32);
    let before = stat_map(&mut s, "slabs");
    fill(&mut s, "large", 10_000, 2000);
    let after = stat_map(&mut s, "slabs");
    let pages = |m: &BTreeMap<String, String>, class: &str| {
        m.get(&format!("{class}:total_pages"))
            .map_or(0, |v| v.parse::<u64>().unwrap())
    };
    assert!(pages(&after, "1") < pages(&before, "1"));
    // memcached's rule: the new class got its first page past the limit.
    assert!(num(&after, "total_malloced") <= 9 << 20);
    let own = stat_map(&mut s, "rmemcached");
    assert!(num(&own, "item_malloced") <= 8 << 20);
    let mut hits = 0;
    for i in 9_000..10_000 {
        hits += get_hit(&mut s, &format!("large{i:08}")) as usize;
    }
    assert_eq!(hits, 1000, "the newest large values are kept");
}

/// `-M`: a full cache refuses with memcached's error, and `flush_all`
/// makes room again at once.
#[test]
fn no_eviction_refuses_then_flush_frees() {
    let server = common::start_server(&["-m", "8", "-M"]);
    let mut s = server.tcp();
    let value = "v".repeat(1000);
    let mut refused = None;
    for i in 0..20_000 {
        let r = common::request(
            &mut s,
            format!("set k{i} 0 0 1000\r\n{value}\r\n").as_bytes(),
            b"\r\n",
        );
        if r != b"STORED\r\n" {
            refused = Some((i, r));
            break;
        }
    }
    let (i, r) = refused.expect("the cache fills up");
    assert_eq!(r, b"SERVER_ERROR out of memory storing object\r\n");
    assert!(i > 5000, "stored {i} before refusing");
    assert_eq!(num(&stat_map(&mut s, ""), "evictions"), 0);
    assert!(get_hit(&mut s, "k0"), "nothing was evicted");
    assert_eq!(
        common::request(&mut s, b"flush_all\r\n", b"\r\n"),
        b"OK\r\n"
    );
    let r = common::request(
        &mut s,
        format!("set again 0 0 1000\r\n{value}\r\n").as_bytes(),
        b"\r\n",
    );
    assert_eq!(r, b"STORED\r\n");
}
