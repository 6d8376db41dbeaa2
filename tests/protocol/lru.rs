//! The segmented LRU and its maintainer thread, over real sockets: items
//! move from HOT to COLD, an item fetched twice is rescued to WARM and
//! outlives a flood, TEMP keeps short-TTL items; and the `lru` command and
//! the figures it changes, compared with the real memcached.
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common;

/// The `stats items` (or other group) reply as (name, value) pairs.
fn group(s: &mut TcpStream, cmd: &[u8]) -> Vec<(String, String)> {
    let reply = common::request(s, cmd, b"END\r\n");
    String::from_utf8(reply)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("STAT "))
        .map(|l| {
            let (n, v) = l.split_once(' ').unwrap();
            (n.to_string(), v.to_string())
        })
        .collect()
}

/// One figure of `stats items` (0 when the class shows none).
fn item_stat(s: &mut TcpStream, name: &str) -> u64 {
    group(s, b"stats items\r\n")
        .into_iter()
        .find(|(n, _)| n.ends_with(&format!(":{name}")))
        .map_or(0, |(_, v)| v.parse().unwrap())
}

/// Poll `stats items` until `name` passes `ok`, for at most 10 seconds.
fn wait_for(s: &mut TcpStream, name: &str, ok: impl Fn(u64) -> bool) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = item_stat(s, name);
        if ok(v) || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn set(s: &mut TcpStream, key: &str, ttl: u32, value: &[u8]) {
    let mut req = format!("set {key} 0 {ttl} {}\r\n", value.len()).into_bytes();
    req.extend_from_slice(value);
    req.extend_from_slice(b"\r\n");
    assert_eq!(common::request(s, &req, b"\r\n"), b"STORED\r\n", "{key}");
}

fn present(s: &mut TcpStream, key: &str) -> bool {
    let reply = common::request(s, format!("get {key}\r\n").as_bytes(), b"END\r\n");
    reply.starts_with(b"VALUE ")
}

#[test]
fn items_move_to_cold_and_a_twice_fetched_item_outlives_a_flood() {
    let server = common::start_server(&["-m", "8"]);
    let mut s = server.tcp();
    let value = vec![b'B'; 60_000];
    set(&mut s, "canary", 0, &value);
    for i in 0..30 {
        set(&mut s, &format!("key{i}"), 0, &value);
    }
    let moved = wait_for(&mut s, "moves_to_cold", |v| v > 0);
    assert!(moved > 0, "nothing moved to COLD");
    // Two fetches make it active: it is rescued to WARM.
    assert!(present(&mut s, "canary"));
    assert!(present(&mut s, "canary"));
    let warm = wait_for(&mut s, "moves_to_warm", |v| v > 0);
    assert!(warm > 0, "the canary did not move to WARM");
    for i in 30..300 {
        set(&mut s, &format!("key{i}"), 0, &value);
    }
    assert!(common::stat(&server, "evictions") > 100);
    assert!(present(&mut s, "canary"), "the canary was evicted");
    assert!(!present(&mut s, "key0"), "an unfetched old item survived");
    assert!(common::stat(&server, "lru_maintainer_juggles") > 0);
}

#[test]
fn the_temp_lru_keeps_short_ttl_items_through_a_flood() {
    let server = common::start_server(&["-m", "4", "-o", "temporary_ttl=61"]);
    let mut s = server.tcp();
    let value = vec![b'B'; 60_000];
    set(&mut s, "canary", 30, &value);
    assert_eq!(item_stat(&mut s, "number_temp"), 1);
    assert_eq!(item_stat(&mut s, "number_hot"), 0);
    for i in 0..150 {
        set(&mut s, &format!("key{i}"), 3600, &value);
    }
    assert!(common::stat(&server, "evictions") > 50);
    assert_eq!(item_stat(&mut s, "number_temp"), 1);
    assert!(present(&mut s, "canary"), "the TEMP item was evicted");
}

/// Send `req` (which ends with `version`) and return the reply before the
/// `VERSION` line.
fn until_version(s: &mut TcpStream, req: &[u8]) -> Vec<u8> {
    let mut out = common::request(s, req, b"\r\n");
    loop {
        let last = out[..out.len() - 2]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        if out[last..].starts_with(b"VERSION ") {
            out.truncate(last);
            return out;
        }
        out.extend(common::read_until(s, b"\r\n"));
    }
}

/// The same requests, one at a time, to both servers; every reply equal.
fn same_replies(args: &[&str], script: &[&[u8]]) {
    let ours = common::start_server(args);
    let theirs = common::start_with("/usr/bin/memcached", args);
    let (mut a, mut b) = (ours.tcp(), theirs.tcp());
    for req in script {
        // A `noreply` request is followed by a `version` to have a reply.
        let mut r = req.to_vec();
        r.extend_from_slice(b"version\r\n");
        let got = until_version(&mut a, &r);
        let want = until_version(&mut b, &r);
        assert_eq!(
            common::show(&got),
            common::show(&want),
            "{} with {args:?}",
            common::show(req)
        );
    }
    let lru_settings = |s: &mut TcpStream| {
        group(s, b"stats settings\r\n")
            .into_iter()
            .filter(|(n, _)| n.contains("lru") || n.contains("factor") || n.contains("ttl"))
            .collect::<Vec<_>>()
    };
    assert_eq!(lru_settings(&mut a), lru_settings(&mut b), "with {args:?}");
}

const LRU_SCRIPT: &[&[u8]] = &[
    b"lru\r\n",
    b"lru tune\r\n",
    b"lru tune 10 30 0.1 2.5\r\n",
    b"lru tune 50 40 0.1 2\r\n",
    b"lru tune 10 10 0 2\r\n",
    b"lru tune 10 10 1 -1\r\n",
    b"lru tune 10 10 1\r\n",
    b"lru tune x 10 1 1\r\n",
    b"lru tune 10 10 1 1x\r\n",
    b"lru tune 4294967295 2 0.5 3\r\n",
    b"lru mode\r\n",
    b"lru mode bogus\r\n",
    b"lru mode flat\r\n",
    b"lru mode segmented noreply\r\n",
    b"lru mode flat\r\n",
    b"lru temp_ttl abc\r\n",
    b"lru temp_ttl 30\r\n",
    b"lru temp_ttl -1\r\n",
    b"lru temp_ttl 45 noreply\r\n",
    b"lru bogus 1\r\n",
    b"lru tune 15 25 0.3 1.5 noreply\r\n",
];

#[test]
fn lru_command_replies_and_settings_match_memcached() {
    same_replies(&[], LRU_SCRIPT);
    // Without the maintainer, `mode` and `temp_ttl` are refused.
    same_replies(&["-o", "no_lru_maintainer"], LRU_SCRIPT);
}

/// `stats items` names, in order, for one item, and the segment counts
/// where they are certain: in flat mode a new item is in COLD.
#[test]
fn stats_items_names_and_flat_mode_counts_match_memcached() {
    for args in [
        &[][..],
        &["-o", "temporary_ttl=100"],
        &["-o", "no_lru_maintainer"],
        &["-o", "no_modern"],
    ] {
        let ours = common::start_server(args);
        let theirs = common::start_with("/usr/bin/memcached", args);
        let items = |server: &common::Server| {
            let mut s = server.tcp();
            let flat = common::request(&mut s, b"lru mode flat\r\n", b"\r\n");
            set(&mut s, "a", 0, b"1");
            let st = group(&mut s, b"stats items\r\n");
            let names: Vec<String> = st.iter().map(|(n, _)| n.clone()).collect();
            let counts: Vec<(String, String)> = st
                .into_iter()
                .filter(|(n, _)| n.contains(":number"))
                .collect();
            (flat, names, counts)
        };
        assert_eq!(items(&ours), items(&theirs), "with {args:?}");
    }
}
