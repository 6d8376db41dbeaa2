//! A real client, the `memcache` crate (0.17) in its ASCII mode, against
//! rmemcached over TCP, a unix socket and UDP.
//!
//! Over UDP the crate only sends its buffered request on `flush()`, which
//! its ASCII `get`, `gets`, `increment`, `decrement` and `flush` never call
//! (they would wait for a reply to a request never sent): the UDP test uses
//! the commands that do flush (`version`, the store commands, `cas`,
//! `delete`, `touch`, `flush_with_delay`) and checks the results with raw
//! UDP requests. The crate's default mode, the binary protocol, is tested in
//! `tests/protocol/clients_binary.rs`.
use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use memcache::{Client, MemcacheError};

fn connect(url: &str) -> Client {
    let client = Client::connect(url).unwrap_or_else(|e| panic!("connect {url}: {e}"));
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client
}

/// The whole ASCII API of the crate on a stream transport.
fn exercise(client: &Client) {
    let v = client.version().unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].1, "1.6.18");

    // set / get, with strings, bytes and numbers.
    client.set("foo", "bar", 0).unwrap();
    assert_eq!(client.get::<String>("foo").unwrap().as_deref(), Some("bar"));
    assert_eq!(client.get::<String>("missing").unwrap(), None);
    client.set("bytes", &b"\x00\x01\r\n\xff"[..], 0).unwrap();
    assert_eq!(
        client.get::<Vec<u8>>("bytes").unwrap().as_deref(),
        Some(&b"\x00\x01\r\n\xff"[..])
    );
    client.set("num", 42u64, 0).unwrap();
    assert_eq!(client.get::<u64>("num").unwrap(), Some(42));
    let (value, flags): (Vec<u8>, u32) = client.get("num").unwrap().unwrap();
    assert_eq!(value, b"42");
    assert_eq!(flags, 0);
    // A large value, many TCP segments both ways.
    let big = "z".repeat(300_000);
    client.set("big", big.as_str(), 0).unwrap();
    assert_eq!(
        client.get::<String>("big").unwrap().as_deref(),
        Some(big.as_str())
    );

    // add / replace (NOT_STORED is not an error in the crate's ASCII mode:
    // check the value instead).
    client.add("foo", "other", 0).unwrap();
    assert_eq!(client.get::<String>("foo").unwrap().as_deref(), Some("bar"));
    client.add("added", "a", 0).unwrap();
    assert_eq!(client.get::<String>("added").unwrap().as_deref(), Some("a"));
    client.replace("nothere", "x", 0).unwrap();
    assert_eq!(client.get::<String>("nothere").unwrap(), None);
    client.replace("foo", "baz", 0).unwrap();
    assert_eq!(client.get::<String>("foo").unwrap().as_deref(), Some("baz"));

    // append / prepend.
    client.append("foo", "_end").unwrap();
    client.prepend("foo", "start_").unwrap();
    assert_eq!(
        client.get::<String>("foo").unwrap().as_deref(),
        Some("start_baz_end")
    );
    client.append("nothere", "x").unwrap();
    assert_eq!(client.get::<String>("nothere").unwrap(), None);

    // delete.
    assert!(client.delete("added").unwrap());
    assert!(!client.delete("added").unwrap());
    assert_eq!(client.get::<String>("added").unwrap(), None);

    // increment / decrement.
    client.set("counter", 10u64, 0).unwrap();
    assert_eq!(client.increment("counter", 5).unwrap(), 15);
    assert_eq!(client.increment("counter", 1000).unwrap(), 1015);
    assert_eq!(client.decrement("counter", 15).unwrap(), 1000);
    assert_eq!(client.decrement("counter", 5000).unwrap(), 0);
    match client.increment("nocounter", 1) {
        Err(MemcacheError::CommandError(_)) => {}
        other => panic!("increment of a missing key: {other:?}"),
    }
    client.set("text", "abc", 0).unwrap();
    match client.increment("text", 1) {
        Err(MemcacheError::ClientError(e)) => assert!(
            format!("{e:?}").contains("cannot increment or decrement non-numeric value"),
            "{e:?}"
        ),
        other => panic!("increment of a non-number: {other:?}"),
    }

    // touch.
    assert!(client.touch("foo", 1000).unwrap());
    assert!(!client.touch("nothere", 1000).unwrap());

    // gets (multi-get with cas) and cas.
    let m: HashMap<String, (Vec<u8>, u32, Option<u64>)> =
        client.gets(&["foo", "counter", "nothere", "num"]).unwrap();
    assert_eq!(m.len(), 3, "{m:?}");
    assert_eq!(m["foo"].0, b"start_baz_end");
    assert_eq!(m["num"].0, b"42");
    let cas = m["foo"].2.expect("gets gives a cas");
    assert!(!client.cas("foo", "stale", 0, cas + 1).unwrap());
    assert!(client.cas("foo", "swapped", 0, cas).unwrap());
    assert!(!client.cas("foo", "again", 0, cas).unwrap());
    assert!(!client.cas("nothere", "x", 0, cas).unwrap());
    assert_eq!(
        client.get::<String>("foo").unwrap().as_deref(),
        Some("swapped")
    );
    let m: HashMap<String, String> = client.gets(&["foo", "text"]).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m["foo"], "swapped");
    assert_eq!(m["text"], "abc");
    // A multi-get of many keys.
    let keys: Vec<String> = (0..100).map(|i| format!("multi{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        client.set(k, format!("value{i}"), 0).unwrap();
    }
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let m: HashMap<String, String> = client.gets(&refs).unwrap();
    assert_eq!(m.len(), 100);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(m[k], format!("value{i}"));
    }

    // A value over the item size limit is refused, and the connection
    // still works.
    let huge = vec![b'h'; 2 * 1024 * 1024];
    match client.set("huge", &huge[..], 0) {
        Err(MemcacheError::ServerError(e)) => assert!(
            format!("{e:?}").contains("object too large for cache"),
            "{e:?}"
        ),
        other => panic!("set of 2 MB: {other:?}"),
    }
    assert_eq!(
        client.get::<String>("foo").unwrap().as_deref(),
        Some("swapped")
    );

    // Expiry through the client.
    client.set("shortlived", "x", 1).unwrap();
    assert!(client.get::<String>("shortlived").unwrap().is_some());

    // flush.
    client.flush().unwrap();
    assert_eq!(client.get::<String>("foo").unwrap(), None);
    client.set("after", "flush", 0).unwrap();
    client.flush_with_delay(0).unwrap();
    assert_eq!(client.get::<String>("after").unwrap(), None);
}

#[test]
fn memcache_crate_ascii_over_tcp() {
    let server = common::start_server(&[]);
    let client = connect(&format!(
        "memcache://127.0.0.1:{}?protocol=ascii",
        server.port
    ));
    exercise(&client);
}

#[test]
fn memcache_crate_ascii_over_unix_socket() {
    let server = common::start_unix_server(&[]);
    let path = server
        .socket
        .as_ref()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let client = connect(&format!("memcache+unix://{path}?protocol=ascii"));
    exercise(&client);
}

#[test]
fn memcache_crate_two_clients_see_each_other() {
    let server = common::start_server(&[]);
    let url = format!("memcache://127.0.0.1:{}?protocol=ascii", server.port);
    let a = connect(&url);
    let b = connect(&url);
    a.set("shared", "from a", 0).unwrap();
    assert_eq!(
        b.get::<String>("shared").unwrap().as_deref(),
        Some("from a")
    );
    b.set("hits", 0u64, 0).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let c = connect(&url);
                for _ in 0..250 {
                    c.increment("hits", 1).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(a.get::<u64>("hits").unwrap(), Some(1000));
}

/// Raw UDP `get`, for checking what the crate stored over UDP.
fn udp_get(s: &std::net::UdpSocket, id: u16, key: &str) -> String {
    let r = common::udp_request(s, id, format!("get {key}\r\n").as_bytes());
    String::from_utf8_lossy(&r).to_string()
}

#[test]
fn memcache_crate_ascii_over_udp() {
    let server = common::start_server(&[]);
    let client = connect(&format!(
        "memcache+udp://127.0.0.1:{}?protocol=ascii",
        server.udp_port
    ));
    let raw = server.udp();
    let v = client.version().unwrap();
    assert_eq!(v[0].1, "1.6.18");

    client.set("foo", "bar", 0).unwrap();
    assert_eq!(udp_get(&raw, 1, "foo"), "VALUE foo 0 3\r\nbar\r\nEND\r\n");
    client.add("foo", "other", 0).unwrap();
    client.add("added", "a", 0).unwrap();
    assert_eq!(udp_get(&raw, 2, "foo"), "VALUE foo 0 3\r\nbar\r\nEND\r\n");
    assert_eq!(udp_get(&raw, 3, "added"), "VALUE added 0 1\r\na\r\nEND\r\n");
    client.replace("foo", "baz", 0).unwrap();
    client.replace("nothere", "x", 0).unwrap();
    client.append("foo", "_end").unwrap();
    client.prepend("foo", "start_").unwrap();
    assert_eq!(
        udp_get(&raw, 4, "foo nothere"),
        "VALUE foo 0 13\r\nstart_baz_end\r\nEND\r\n"
    );
    assert!(client.delete("added").unwrap());
    assert!(!client.delete("added").unwrap());
    assert!(client.touch("foo", 1000).unwrap());
    assert!(!client.touch("added", 1000).unwrap());

    // cas, with the unique read over raw UDP.
    let r = udp_get(&raw, 5, "foo").replace("VALUE", "");
    assert!(r.contains("start_baz_end"));
    let gets = common::udp_request(&raw, 6, b"gets foo\r\n");
    let line = String::from_utf8_lossy(&gets)
        .lines()
        .next()
        .unwrap()
        .to_string();
    let cas: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(!client.cas("foo", "stale", 0, cas + 1).unwrap());
    assert!(client.cas("foo", "swapped", 0, cas).unwrap());
    assert_eq!(
        udp_get(&raw, 7, "foo"),
        "VALUE foo 0 7\r\nswapped\r\nEND\r\n"
    );

    // A value whose request fills most of a datagram.
    let v = "v".repeat(1300);
    client.set("long", v.as_str(), 0).unwrap();
    assert_eq!(
        udp_get(&raw, 8, "long"),
        format!("VALUE long 0 1300\r\n{v}\r\nEND\r\n")
    );

    // Many requests in a row, each with its own request id.
    for i in 0..300 {
        client.set(&format!("k{i}"), format!("v{i}"), 0).unwrap();
    }
    for i in (0..300).step_by(37) {
        assert_eq!(
            udp_get(&raw, 100 + i as u16, &format!("k{i}")),
            format!("VALUE k{i} 0 {}\r\nv{i}\r\nEND\r\n", format!("v{i}").len())
        );
    }

    client.flush_with_delay(0).unwrap();
    assert_eq!(udp_get(&raw, 9, "foo"), "END\r\n");
}
