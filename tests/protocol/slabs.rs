//! The slab mover: `slabs reassign` and `slabs automove` replies
//! (compared with the real memcached), a page really moving between
//! classes, automove 1 returning pages to the global pool, and a refill
//! into another class after `flush_all`.
use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common;

fn stats(s: &mut TcpStream, group: &str) -> BTreeMap<String, u64> {
    let cmd = if group.is_empty() {
        "stats\r\n".to_string()
    } else {
        format!("stats {group}\r\n")
    };
    let reply = common::request(s, cmd.as_bytes(), b"END\r\n");
    String::from_utf8(reply)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut it = l.strip_prefix("STAT ")?.split(' ');
            let (k, v) = (it.next()?, it.next()?);
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn get(m: &BTreeMap<String, u64>, k: &str) -> u64 {
    m.get(k).copied().unwrap_or(0)
}

/// Pipelined `set ... noreply` of keys `{prefix}{i}` for `range`, then a
/// `version` round trip so that every set has been processed.
fn fill(s: &mut TcpStream, prefix: &str, range: std::ops::Range<usize>, len: usize) {
    let value = "v".repeat(len);
    let mut batch = Vec::new();
    for i in range {
        batch.extend_from_slice(
            format!("set {prefix}{i} 0 0 {len} noreply\r\n{value}\r\n").as_bytes(),
        );
        if batch.len() > 1 << 20 {
            s.write_all(&batch).unwrap();
            batch.clear();
        }
    }
    batch.extend_from_slice(b"version\r\n");
    s.write_all(&batch).unwrap();
    common::read_until(s, b"\r\n");
}

fn hit(s: &mut TcpStream, key: &str) -> bool {
    let r = common::request(s, format!("get {key}\r\n").as_bytes(), b"END\r\n");
    r.starts_with(b"VALUE")
}

/// Poll `stats group` until `ok` holds (at most `secs` seconds); returns
/// the last reply.
fn wait_for(
    s: &mut TcpStream,
    group: &str,
    secs: u64,
    ok: impl Fn(&BTreeMap<String, u64>) -> bool,
) -> BTreeMap<String, u64> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let m = stats(s, group);
        if ok(&m) || Instant::now() > deadline {
            return m;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The classes `stats slabs` lists (those owning pages).
fn class_of(m: &BTreeMap<String, u64>) -> Vec<u64> {
    m.keys()
        .filter_map(|k| k.strip_suffix(":total_pages")?.parse().ok())
        .collect()
}

/// Every reply to the slab commands that does not depend on timing is
/// memcached's, byte for byte: on an empty cache, after a class holds
/// pages (a move asked of an idle mover is `OK`), and with the mover off.
#[test]
fn reassign_and_automove_replies_match_memcached() {
    let flags = ["-m", "8", "-o", "slab_automove=0"];
    let ours = common::start_server(&flags);
    let theirs = common::start_with("/usr/bin/memcached", &flags);
    let cmds = [
        "slabs reassign 1 2\r\n",
        "slabs reassign 1 1\r\n",
        "slabs reassign 0 0\r\n",
        "slabs reassign 0 1\r\n",
        "slabs reassign 99 1\r\n",
        "slabs reassign 1 99\r\n",
        "slabs reassign -2 1\r\n",
        "slabs reassign 1 -1\r\n",
        "slabs reassign -1 1\r\n",
        "slabs reassign x 1\r\n",
        "slabs reassign 1\r\n",
        "slabs reassign 1 2 3\r\n",
        "slabs\r\n",
        "slabs automove\r\n",
        "slabs automove 3\r\n",
        "slabs automove x\r\n",
        "slabs automove ratio\r\n",
        "slabs automove ratio x\r\n",
        "slabs automove ratio 0.5\r\n",
        "slabs automove 2\r\n",
        "slabs automove 1\r\n",
        "slabs automove 0\r\n",
        "slabs automove 1 noreply\r\nversion\r\n",
    ];
    let mut replies = Vec::new();
    for server in [&ours, &theirs] {
        let mut s = server.tcp();
        let mut out = Vec::new();
        for cmd in cmds {
            let mut r = common::request(&mut s, cmd.as_bytes(), b"\r\n");
            if r.starts_with(b"VERSION") {
                r = b"VERSION\r\n".to_vec();
            }
            out.push((cmd, String::from_utf8(r).unwrap()));
        }
        // 60 items of 100 kB: several pages in either server.
        fill(&mut s, "big", 0..60, 100_000);
        let classes = class_of(&stats(&mut s, "slabs"));
        assert_eq!(classes.len(), 1, "{classes:?}");
        let class = classes[0];
        for cmd in [
            format!("slabs reassign {class} {class}\r\n"),
            format!("slabs reassign {class} 0\r\n"),
        ] {
            let r = common::request(&mut s, cmd.as_bytes(), b"\r\n");
            out.push(("reassign", String::from_utf8(r).unwrap()));
        }
        let m = wait_for(&mut s, "", 10, |m| get(m, "slabs_moved") == 1);
        assert_eq!(get(&m, "slabs_moved"), 1);
        assert_eq!(get(&m, "slab_global_page_pool"), 1);
        replies.push(out);
    }
    assert_eq!(replies[0], replies[1]);

    let flags = ["-o", "no_slab_reassign"];
    let ours = common::start_server(&flags);
    let theirs = common::start_with("/usr/bin/memcached", &flags);
    let r: Vec<_> = [&ours, &theirs]
        .iter()
        .map(|server| common::request(&mut server.tcp(), b"slabs reassign 1 2\r\n", b"\r\n"))
        .collect();
    assert_eq!(r[0], b"CLIENT_ERROR slab reassignment disabled\r\n");
    assert_eq!(r[0], r[1]);
}

/// `slabs reassign src dst` empties a page's worth of a full class and
/// gives the page to another: the page counts change, the destination
/// then keeps more items before it evicts its own, and the process does
/// not grow.
#[test]
fn a_page_really_moves() {
    let server = common::start_server(&["-m", "8", "-o", "slab_automove=0"]);
    let mut s = server.tcp();
    // Small values fill the cache: their class owns every page.
    fill(&mut s, "small", 0..200_000, 100);
    let slabs = stats(&mut s, "slabs");
    let small = class_of(&slabs)[0];
    // 5000-byte values get their class's first page, past the limit, and
    // then evict their own items, as memcached's classes do.
    fill(&mut s, "large", 0..1000, 5000);
    let before = stats(&mut s, "slabs");
    let items = stats(&mut s, "items");
    let large = *class_of(&before).iter().find(|&&c| c != small).unwrap();
    let pages = |m: &BTreeMap<String, u64>, c: u64| get(m, &format!("{c}:total_pages"));
    assert_eq!(pages(&before, large), 1);
    assert!(get(&items, &format!("items:{large}:evicted")) > 0);
    let kept_before = get(&items, &format!("items:{large}:number"));
    let rss_before = common::rss_kb(server.child.id());

    let r = common::request(
        &mut s,
        format!("slabs reassign {small} {large}\r\n").as_bytes(),
        b"\r\n",
    );
    assert_eq!(r, b"OK\r\n");
    let general = wait_for(&mut s, "", 10, |m| get(m, "slabs_moved") == 1);
    assert_eq!(get(&general, "slabs_moved"), 1);
    assert_eq!(get(&general, "slab_reassign_running"), 0);
    let after = stats(&mut s, "slabs");
    assert_eq!(pages(&after, small), pages(&before, small) - 1);
    assert_eq!(pages(&after, large), 2);
    assert_eq!(
        get(&after, "total_malloced"),
        get(&before, "total_malloced")
    );

    fill(&mut s, "large", 1000..2000, 5000);
    let items = stats(&mut s, "items");
    let kept_after = get(&items, &format!("items:{large}:number"));
    assert!(
        kept_after >= kept_before * 3 / 2,
        "kept {kept_before} then {kept_after}"
    );
    for i in 1900..2000 {
        assert!(hit(&mut s, &format!("large{i}")), "newest large{i}");
    }
    let own = stats(&mut s, "rmemcached");
    assert!(get(&own, "item_malloced") <= 8 << 20);
    let rss_after = common::rss_kb(server.child.id());
    assert!(
        rss_after <= rss_before + 1024,
        "RSS {rss_before} kB, then {rss_after} kB"
    );
}

/// automove 1: a class that lost most of its items and stays quiet for a
/// window gives its pages back to the global pool, and the pool's pages
/// go to the next class that needs memory, without evictions.
#[test]
fn automove_returns_pages_to_the_pool_after_deletes() {
    let server =
        common::start_server(&["-m", "16", "-o", "slab_automove=1,slab_automove_window=3"]);
    let mut s = server.tcp();
    fill(&mut s, "a", 0..1400, 10_000);
    let before = stats(&mut s, "slabs");
    let class = class_of(&before)[0];
    let owned = get(&before, &format!("{class}:total_pages"));
    assert!(owned >= 12, "{owned} pages");
    let mut batch = Vec::new();
    for i in 0..1400 {
        batch.extend_from_slice(format!("delete a{i} noreply\r\n").as_bytes());
    }
    s.write_all(&batch).unwrap();
    let m = wait_for(&mut s, "", 20, |m| {
        get(m, "slab_global_page_pool") + 3 >= owned
    });
    let pool = get(&m, "slab_global_page_pool");
    assert!(pool + 3 >= owned, "{pool} of {owned} pages in the pool");
    let slabs = stats(&mut s, "slabs");
    assert_eq!(
        get(&slabs, "total_malloced"),
        get(&before, "total_malloced")
    );

    // Another class takes them.
    fill(&mut s, "b", 0..5000, 1000);
    let general = stats(&mut s, "");
    assert_eq!(get(&general, "evictions"), 0);
    assert!(get(&general, "slab_global_page_pool") < pool);
    for i in (0..5000).step_by(50) {
        assert!(hit(&mut s, &format!("b{i}")), "b{i}");
    }
}

/// After `flush_all`, automove 1 returns the flushed class's pages to the
/// pool once the crawler has taken the items back, and a refill with
/// values of another class keeps as many as the memory holds.
#[test]
fn flush_all_then_refill_into_another_class() {
    let server =
        common::start_server(&["-m", "16", "-o", "slab_automove=1,slab_automove_window=3"]);
    let mut s = server.tcp();
    fill(&mut s, "a", 0..3000, 10_000);
    let full = stats(&mut s, "slabs");
    assert_eq!(get(&full, "total_malloced"), 16 << 20);
    assert_eq!(
        common::request(&mut s, b"flush_all\r\n", b"\r\n"),
        b"OK\r\n"
    );
    let m = wait_for(&mut s, "", 25, |m| get(m, "slab_global_page_pool") >= 12);
    assert!(get(&m, "slab_global_page_pool") >= 12, "{m:?}");
    fill(&mut s, "b", 0..16_000, 1000);
    let general = stats(&mut s, "");
    assert_eq!(get(&general, "slab_global_page_pool"), 0, "drained");
    assert!(get(&general, "curr_items") >= 10_000);
    for i in 15_000..16_000 {
        assert!(hit(&mut s, &format!("b{i}")), "newest b{i}");
    }
    let slabs = stats(&mut s, "slabs");
    assert_eq!(get(&slabs, "total_malloced"), 16 << 20);
}
