//! A real client, the `memcache` crate (0.17) in its default mode, the
//! binary protocol, against rmemcached over TCP, a unix socket and UDP.
//!
//! Over UDP (`memcache+udp://host:port`) the crate sends its buffered
//! request on `flush()`, which every binary command calls except `gets`
//! (a run of GETKQ and a NOOP, never flushed, so it would wait for a reply
//! to a request never sent): the UDP test uses everything else and checks
//! what the crate stored with raw binary requests of its own.
use crate::common;

use std::collections::HashMap;
use std::net::UdpSocket;
use std::time::Duration;

use memcache::{Client, CommandError, MemcacheError};

fn connect(url: &str) -> Client {
    let client = Client::connect(url).unwrap_or_else(|e| panic!("connect {url}: {e}"));
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client
}

/// The error a command failed with, as the crate's binary status.
fn command_error<T: std::fmt::Debug>(r: Result<T, MemcacheError>) -> CommandError {
    match r {
        Err(MemcacheError::CommandError(e)) => e,
        other => panic!("expected a command error, got {other:?}"),
    }
}

/// Everything the crate's binary protocol does, on a stream transport.
fn exercise(client: &Client) {
    let v = client.version().unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].1, "1.6.18");

    // set / get, with strings, bytes and numbers.
    client.set("foo", "bar", 0).unwrap();
    assert_eq!(client.get::<String>("foo").unwrap().as_deref(), Some("bar"));
    assert_eq!(client.get::<String>("missing").unwrap(), None);
    client
        .set("bytes", &b"\x00\x01\r\n\xff\x80"[..], 0)
        .unwrap();
    assert_eq!(
        client.get::<Vec<u8>>("bytes").unwrap().as_deref(),
        Some(&b"\x00\x01\r\n\xff\x80"[..])
    );
    client.set("num", 42u64, 0).unwrap();
    assert_eq!(client.get::<u64>("num").unwrap(), Some(42));
    let (value, flags): (Vec<u8>, u32) = client.get("num").unwrap().unwrap();
    assert_eq!(value, b"42");
    assert_eq!(flags, 0);
    client.set("empty", "", 0).unwrap();
    assert_eq!(client.get::<String>("empty").unwrap().as_deref(), Some(""));
    // A large value, many TCP segments both ways.
    let big = "z".repeat(300_000);
    client.set("big", big.as_str(), 0).unwrap();
    assert_eq!(
        client.get::<String>("big").unwrap().as_deref(),
        Some(big.as_str())
    );

    // add / replace: the binary protocol reports the failures.
    assert_eq!(
        command_error(client.add("foo", "other", 0)),
        CommandError::KeyExists
    );
    assert_eq!(client.get::<String>("foo").unwrap().as_deref(), Some("bar"));
    client.add("added", "a", 0).unwrap();
    assert_eq!(client.get::<String>("added").unwrap().as_deref(), Some("a"));
    assert_eq!(
        command_error(client.replace("nothere", "x", 0)),
        CommandError::KeyNotFound
    );
    assert_eq!(client.get::<String>("nothere").unwrap(), None);
    client.replace("foo", "baz", 0).unwrap();
    assert_eq!(client.get::<String>("foo").unwrap().as_deref(), Some("baz"));

    // append / prepend. On a missing key the server says NOT_STORED (status
    // 5), which the crate reports for append and ignores for prepend.
    client.append("foo", "_end").unwrap();
    client.prepend("foo", "start_").unwrap();
    assert_eq!(
        client.get::<String>("foo").unwrap().as_deref(),
        Some("start_baz_end")
    );
    assert_eq!(
        command_error(client.append("nothere", "x")),
        CommandError::Unknown(5)
    );
    client.prepend("nothere", "x").unwrap();
    assert_eq!(client.get::<String>("nothere").unwrap(), None);

    // delete.
    assert!(client.delete("added").unwrap());
    assert!(!client.delete("added").unwrap());
    assert_eq!(client.get::<String>("added").unwrap(), None);

    // increment / decrement. The crate sends an initial value of 0 and an
    // exptime of 0, so a missing counter is created at 0.
    client.set("counter", 10u64, 0).unwrap();
    assert_eq!(client.increment("counter", 5).unwrap(), 15);
    assert_eq!(client.increment("counter", 1000).unwrap(), 1015);
    assert_eq!(client.decrement("counter", 15).unwrap(), 1000);
    assert_eq!(client.decrement("counter", 5000).unwrap(), 0);
    assert_eq!(client.increment("newcounter", 7).unwrap(), 0);
    assert_eq!(client.increment("newcounter", 7).unwrap(), 7);
    assert_eq!(client.get::<u64>("newcounter").unwrap(), Some(7));
    client.set("max", u64::MAX, 0).unwrap();
    assert_eq!(client.increment("max", 2).unwrap(), 1);
    client.set("text", "abc", 0).unwrap();
    assert_eq!(
        command_error(client.increment("text", 1)),
        CommandError::Unknown(6)
    );
    assert_eq!(
        command_error(client.decrement("text", 1)),
        CommandError::Unknown(6)
    );
    assert_eq!(
        client.get::<String>("text").unwrap().as_deref(),
        Some("abc")
    );

    // touch.
    assert!(client.touch("foo", 1000).unwrap());
    assert!(!client.touch("nothere", 1000).unwrap());

    // gets (GETKQ per key, then NOOP) with CAS, and cas.
    let m: HashMap<String, (Vec<u8>, u32, Option<u64>)> =
        client.gets(&["foo", "counter", "nothere", "num"]).unwrap();
    assert_eq!(m.len(), 3, "{m:?}");
    assert_eq!(m["foo"].0, b"start_baz_end");
    // memcached rewrites a shrinking counter in place, padded with spaces.
    assert_eq!(m["counter"].0, b"0   ");
    assert_eq!(m["num"].0, b"42");
    let cas = m["foo"].2.expect("gets gives a cas");
    assert!(cas != 0);
    assert!(m["num"].2.unwrap() != cas, "distinct items, distinct CAS");
    assert!(!client.cas("foo", "stale", 0, cas + 1000).unwrap());
    assert!(client.cas("foo", "swapped", 0, cas).unwrap());
    assert!(!client.cas("foo", "again", 0, cas).unwrap());
    assert!(!client.cas("nothere", "x", 0, cas).unwrap());
    assert_eq!(
        client.get::<String>("foo").unwrap().as_deref(),
        Some("swapped")
    );
    // A multi-get of many keys, some missing.
    let keys: Vec<String> = (0..100).map(|i| format!("multi{i}")).collect();
    for (i, k) in keys.iter().enumerate().filter(|(i, _)| i % 3 != 0) {
        client.set(k, format!("value{i}"), 0).unwrap();
    }
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let m: HashMap<String, String> = client.gets(&refs).unwrap();
    assert_eq!(m.len(), 66);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(m.get(k), (i % 3 != 0).then(|| format!("value{i}")).as_ref());
    }

    // A value over the item size limit is refused (the server swallows
    // its bytes), and the connection still works.
    let huge = vec![b'h'; 2 * 1024 * 1024];
    assert_eq!(
        command_error(client.set("huge", &huge[..], 0)),
        CommandError::ValueTooLarge
    );
    assert_eq!(client.get::<Vec<u8>>("huge").unwrap(), None);
    assert_eq!(
        client.get::<String>("foo").unwrap().as_deref(),
        Some("swapped")
    );

    // stats: one server, memcached's names, counters that counted.
    let stats = client.stats().unwrap();
    assert_eq!(stats.len(), 1);
    let s = &stats[0].1;
    assert_eq!(s["version"], "1.6.18");
    let num = |name: &str| -> u64 {
        s.get(name)
            .unwrap_or_else(|| panic!("no {name} in {s:?}"))
            .parse()
            .unwrap()
    };
    assert!(num("cmd_set") >= 80, "{s:?}");
    assert!(num("get_hits") >= 20 && num("get_misses") >= 5, "{s:?}");
    assert!(num("curr_items") >= 70, "{s:?}");
    assert!(num("incr_hits") >= 3 && num("decr_hits") >= 2, "{s:?}");
    assert!(num("cas_hits") == 1 && num("cas_badval") == 2 && num("cas_misses") == 1);
    assert!(num("pid") > 0);

    // flush, with and without a delay.
    client.flush().unwrap();
    assert_eq!(client.get::<String>("foo").unwrap(), None);
    client.set("after", "flush", 0).unwrap();
    client.flush_with_delay(0).unwrap();
    assert_eq!(client.get::<String>("after").unwrap(), None);
    client.set("later", "x", 0).unwrap();
    client.flush_with_delay(100).unwrap();
    assert_eq!(client.get::<String>("later").unwrap().as_deref(), Some("x"));
}

#[test]
fn memcache_crate_binary_over_tcp() {
    let server = common::start_server(&[]);
    let client = connect(&format!("memcache://127.0.0.1:{}", server.port));
    exercise(&client);
}

/// The same expectations hold for the real memcached 1.6.18: they are
/// memcached's behaviour, not rmemcached's.
#[test]
fn memcache_crate_binary_expectations_hold_for_memcached() {
    let server = common::start_with("/usr/bin/memcached", &[]);
    let client = connect(&format!("memcache://127.0.0.1:{}", server.port));
    exercise(&client);
}

#[test]
fn memcache_crate_binary_over_unix_socket() {
    let server = common::start_unix_server(&[]);
    let path = server.socket.as_ref().unwrap().to_str().unwrap();
    let client = connect(&format!("memcache+unix://{path}"));
    exercise(&client);
}

/// A server started with `-B binary` refuses text but serves the crate.
#[test]
fn memcache_crate_with_binary_only_server() {
    let server = common::start_server(&["-B", "binary"]);
    let client = connect(&format!("memcache://127.0.0.1:{}", server.port));
    client.set("k", "v", 0).unwrap();
    assert_eq!(client.get::<String>("k").unwrap().as_deref(), Some("v"));
    assert_eq!(client.version().unwrap()[0].1, "1.6.18");
}

/// A raw binary GETK over UDP: (status, flags, value).
fn udp_getk(s: &UdpSocket, id: u16, key: &str) -> (u16, u32, Vec<u8>) {
    let mut req = vec![0x80, 0x0c];
    req.extend_from_slice(&(key.len() as u16).to_be_bytes());
    req.extend_from_slice(&[0, 0, 0, 0]);
    req.extend_from_slice(&(key.len() as u32).to_be_bytes());
    req.extend_from_slice(&u32::from(id).to_be_bytes());
    req.extend_from_slice(&[0; 8]);
    req.extend_from_slice(key.as_bytes());
    let r = common::udp_request(s, id, &req);
    assert!(r.len() >= 24, "short reply {r:?}");
    assert_eq!((r[0], r[1]), (0x81, 0x0c));
    let status = u16::from_be_bytes([r[6], r[7]]);
    let bodylen = u32::from_be_bytes(r[8..12].try_into().unwrap()) as usize;
    assert_eq!(r.len(), 24 + bodylen, "one packet");
    let (extlen, keylen) = (r[4] as usize, u16::from_be_bytes([r[2], r[3]]) as usize);
    assert_eq!(&r[24 + extlen..24 + extlen + keylen], key.as_bytes());
    let flags = if extlen == 4 {
        u32::from_be_bytes(r[24..28].try_into().unwrap())
    } else {
        0
    };
    (status, flags, r[24 + extlen + keylen..].to_vec())
}

#[test]
fn memcache_crate_binary_over_udp() {
    exercise_udp(&common::start_server(&[]));
}

/// The UDP expectations are memcached's too.
#[test]
fn memcache_crate_binary_over_udp_expectations_hold_for_memcached() {
    exercise_udp(&common::start_with("/usr/bin/memcached", &[]));
}

fn exercise_udp(server: &common::Server) {
    let client = connect(&format!("memcache+udp://127.0.0.1:{}", server.udp_port));
    let raw = server.udp();
    let hit = |id: u16, key: &str, value: &[u8]| {
        let (status, _, v) = udp_getk(&raw, id, key);
        assert_eq!((status, &v[..]), (0, value), "{key}");
    };
    let miss = |id: u16, key: &str| assert_eq!(udp_getk(&raw, id, key).0, 1, "{key}");

    assert_eq!(client.version().unwrap()[0].1, "1.6.18");

    // set / get.
    client.set("foo", "bar", 0).unwrap();
    assert_eq!(client.get::<String>("foo").unwrap().as_deref(), Some("bar"));
    assert_eq!(client.get::<String>("missing").unwrap(), None);
    client.set("num", 42u64, 0).unwrap();
    assert_eq!(udp_getk(&raw, 1, "num"), (0, 0, b"42".to_vec()));
    // A reply over several datagrams, reassembled by the crate, and a
    // request datagram of 5 KB.
    let long: String = (0..5000u32)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    client.set("long", long.as_str(), 0).unwrap();
    assert_eq!(
        client.get::<String>("long").unwrap().as_deref(),
        Some(long.as_str())
    );

    // add / replace.
    assert_eq!(
        command_error(client.add("foo", "other", 0)),
        CommandError::KeyExists
    );
    client.add("added", "a", 0).unwrap();
    hit(2, "foo", b"bar");
    hit(3, "added", b"a");
    assert_eq!(
        command_error(client.replace("nothere", "x", 0)),
        CommandError::KeyNotFound
    );
    client.replace("foo", "baz", 0).unwrap();
    miss(4, "nothere");

    // append / prepend.
    client.append("foo", "_end").unwrap();
    client.prepend("foo", "start_").unwrap();
    hit(5, "foo", b"start_baz_end");
    assert_eq!(
        command_error(client.append("nothere", "x")),
        CommandError::Unknown(5)
    );
    miss(6, "nothere");

    // delete.
    assert!(client.delete("added").unwrap());
    assert!(!client.delete("added").unwrap());
    miss(7, "added");

    // increment / decrement.
    client.set("counter", 10u64, 0).unwrap();
    assert_eq!(client.increment("counter", 5).unwrap(), 15);
    assert_eq!(client.decrement("counter", 20).unwrap(), 0);
    assert_eq!(client.increment("fresh", 3).unwrap(), 0);
    assert_eq!(client.increment("fresh", 3).unwrap(), 3);
    hit(8, "fresh", b"3");
    assert_eq!(
        command_error(client.increment("foo", 1)),
        CommandError::Unknown(6)
    );

    // touch, and cas with the CAS read by a get.
    assert!(client.touch("foo", 1000).unwrap());
    assert!(!client.touch("added", 1000).unwrap());
    let (value, _, cas): (Vec<u8>, u32, Option<u64>) = client.get("foo").unwrap().unwrap();
    assert_eq!(value, b"start_baz_end");
    let cas = cas.expect("a binary get returns the CAS");
    assert!(!client.cas("foo", "stale", 0, cas + 1000).unwrap());
    assert!(client.cas("foo", "swapped", 0, cas).unwrap());
    hit(9, "foo", b"swapped");

    // Many requests in a row, each with its own request id.
    for i in 0..200 {
        client.set(&format!("k{i}"), format!("v{i}"), 0).unwrap();
    }
    for i in (0..200).step_by(23) {
        assert_eq!(
            client.get::<String>(&format!("k{i}")).unwrap(),
            Some(format!("v{i}"))
        );
    }

    // stats: a reply of several datagrams.
    let stats = client.stats().unwrap();
    let s = &stats[0].1;
    assert_eq!(s["version"], "1.6.18");
    assert!(s["cmd_set"].parse::<u64>().unwrap() >= 200, "{s:?}");
    assert!(s["curr_items"].parse::<u64>().unwrap() >= 200, "{s:?}");

    // flush.
    client.flush().unwrap();
    assert_eq!(client.get::<String>("foo").unwrap(), None);
    client.set("after", "flush", 0).unwrap();
    client.flush_with_delay(0).unwrap();
    miss(10, "after");
}
