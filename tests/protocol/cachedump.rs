//! `stats cachedump` against the real memcached, byte for byte: newest
//! first, and cut at memcached's 2 MB where a class holds more.
use crate::common;

use std::io::Write;
use std::net::TcpStream;

/// Pipelined `set ... noreply` of `count` keys of `key_len` bytes, oldest
/// first, then a `version` round trip so that every set has been handled.
fn fill(s: &mut TcpStream, count: usize, key_len: usize) {
    let mut batch = Vec::new();
    for i in 0..count {
        let _ = write!(batch, "set {i:0>key_len$} 0 0 1 noreply\r\nv\r\n");
        if batch.len() > 256 * 1024 {
            s.write_all(&batch).unwrap();
            batch.clear();
        }
    }
    s.write_all(&batch).unwrap();
    common::request(s, b"version\r\n", b"\r\n");
}

/// The one class `stats items` shows items in. Items are smaller here
/// than in memcached, so the same item may be in a lower class.
fn only_class(s: &mut TcpStream) -> u32 {
    let reply = common::request(s, b"stats items\r\n", b"END\r\n");
    let reply = String::from_utf8(reply).unwrap();
    let mut classes: Vec<u32> = reply
        .lines()
        .filter_map(|l| l.strip_prefix("STAT items:"))
        .filter_map(|l| l.split_once(":number ").map(|(id, _)| id.parse().unwrap()))
        .collect();
    classes.dedup();
    assert_eq!(classes.len(), 1, "{reply}");
    classes[0]
}

/// memcached's segmented LRU lists only items that reached its cold
/// segment; `-o no_modern` gives it one LRU per class, as here.
#[test]
fn cachedump_is_newest_first_and_capped_like_memcached() {
    let ours = common::start_server(&["-o", "no_modern"]);
    let theirs = common::start_with("/usr/bin/memcached", &["-o", "no_modern"]);
    let mut replies = Vec::new();
    for server in [&ours, &theirs] {
        let mut s = server.tcp();
        // 12,000 lines of 218 bytes: 2.6 MB uncut.
        fill(&mut s, 12_000, 200);
        let class = only_class(&mut s);
        let mut out = Vec::new();
        for limit in [0, 3, 9_000, 9_700] {
            let cmd = format!("stats cachedump {class} {limit}\r\n");
            out.push(common::request(&mut s, cmd.as_bytes(), b"END\r\n"));
        }
        replies.push(out);
    }
    let (ours, theirs) = (&replies[0], &replies[1]);
    let full = &theirs[0];
    assert!(full.len() < 2 * 1024 * 1024 && full.len() > 2 * 1024 * 1024 - 300);
    assert!(full.starts_with(format!("ITEM {:0>200} [1 b; 0 s]\r\n", 11_999).as_bytes()));
    for (a, b) in ours.iter().zip(theirs) {
        assert!(
            a == b,
            "ours {} theirs {}",
            common::show(a),
            common::show(b)
        );
    }
}
