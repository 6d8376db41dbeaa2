//! What a client is told when the memory it asks the server to hold is
//! not there (`mem_budget`), and that the memory comes back: the reply
//! pool of stream connections, the in-flight pool of values being read,
//! and the idle timeout of a value that stalls.
use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const BIG: usize = 1_000_000;

fn store_big(server: &common::Server) {
    let mut s = server.tcp();
    let mut req = format!("set big 0 0 {BIG}\r\n").into_bytes();
    req.resize(req.len() + BIG, b'v');
    req.extend_from_slice(b"\r\n");
    assert_eq!(common::request(&mut s, &req, b"\r\n"), b"STORED\r\n");
}

/// The first line of the reply to `get big` on a new connection.
fn get_big_first_line(server: &common::Server) -> Vec<u8> {
    let mut s = server.tcp();
    s.write_all(b"get big\r\n").unwrap();
    let mut reply = common::read_until(&mut s, b"\r\n");
    let end = reply
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(reply.len());
    reply.truncate(end + 2);
    reply
}

/// Clients that never read hold the reply pool (16 MiB) with 1 MB
/// replies; a new client's `get big` then gets memcached's out-of-memory
/// reply instead of more memory, while small replies are still served.
/// Once those clients leave, the pool is whole again.
#[test]
fn a_spent_reply_pool_refuses_large_replies_and_comes_back() {
    let server = common::start_server(&["-t", "2"]);
    store_big(&server);
    let mut s = server.tcp();
    assert_eq!(
        common::request(&mut s, b"set small 0 0 2\r\nhi\r\n", b"\r\n"),
        b"STORED\r\n"
    );
    let hogs: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut c = server.tcp();
            c.write_all(&b"mg big v\r\n".repeat(40)).unwrap();
            c
        })
        .collect();
    // Wait until the hogs have run the pool out.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut refused = false;
    while Instant::now() < deadline && !refused {
        refused =
            get_big_first_line(&server) == b"SERVER_ERROR out of memory writing get response\r\n";
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(refused, "1 MB replies were never refused");
    assert_eq!(
        common::request(&mut s, b"get small\r\n", b"END\r\n"),
        b"VALUE small 0 2\r\nhi\r\nEND\r\n"
    );
    drop(hogs);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let line = get_big_first_line(&server);
        if line == format!("VALUE big 0 {BIG}\r\n").as_bytes() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pool was not given back: {}",
            common::show(&line)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Values being read are charged to the in-flight pool (16 MiB at `-m
/// 32`) before their first byte: the 17th stalled 1 MB `set` is refused
/// at once with memcached's reply for a failed allocation, and its value
/// is swallowed. The charges come back when the stalled clients leave.
#[test]
fn a_spent_inflight_pool_refuses_values_and_comes_back() {
    let server = common::start_server(&["-m", "32"]);
    let start = |i: usize| {
        let mut c = server.tcp();
        let mut req = format!("set k{i} 0 0 {BIG}\r\n").into_bytes();
        req.resize(req.len() + 1000, b'v');
        c.write_all(&req).unwrap();
        c
    };
    let stalled: Vec<TcpStream> = (0..16).map(start).collect();
    // Every stalled value is charged before the next connection starts.
    std::thread::sleep(Duration::from_millis(300));
    let mut refused = start(16);
    let mut rest = vec![b'v'; BIG - 1000];
    rest.extend_from_slice(b"\r\nget k16\r\n");
    refused.write_all(&rest).unwrap();
    assert_eq!(
        common::read_until(&mut refused, b"END\r\n"),
        b"SERVER_ERROR out of memory storing object\r\nEND\r\n"
    );
    drop(stalled);
    std::thread::sleep(Duration::from_millis(300));
    let mut s = server.tcp();
    let mut req = format!("set again 0 0 {BIG}\r\n").into_bytes();
    req.resize(req.len() + BIG, b'v');
    req.extend_from_slice(b"\r\n");
    assert_eq!(common::request(&mut s, &req, b"\r\n"), b"STORED\r\n");
}

/// A value that stops arriving holds in-flight memory, so `-o
/// idle_timeout` closes its connection like an idle one (memcached leaves
/// a connection in `conn_nread` alone). A value still arriving is spared.
#[test]
fn idle_timeout_closes_a_stalled_value_not_a_slow_one() {
    let server = common::start_server(&["-o", "idle_timeout=1"]);
    let mut stalled = server.tcp();
    stalled.write_all(b"set k 0 0 100000\r\nsome").unwrap();
    let mut slow = server.tcp();
    slow.write_all(b"set s 0 0 40\r\n").unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let started = Instant::now();
    let mut closed_after = None;
    // The slow client sends a byte every 250 ms for 10 s in all.
    for _ in 0..40 {
        slow.write_all(b"x").unwrap();
        let mut buf = [0u8; 64];
        match stalled.read(&mut buf) {
            Ok(0) => {
                closed_after.get_or_insert(started.elapsed());
            }
            Ok(n) => panic!("unexpected reply {}", common::show(&buf[..n])),
            Err(_) => std::thread::sleep(Duration::from_millis(0)),
        }
        if closed_after.is_none() {
            continue;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let after = closed_after.expect("the stalled value's connection was never closed");
    assert!(
        after >= Duration::from_secs(1),
        "closed too early: {after:?}"
    );
    slow.write_all(b"\r\n").unwrap();
    assert_eq!(common::read_until(&mut slow, b"\r\n"), b"STORED\r\n");
}

/// Poll `stats` until `ok` holds for `name` (10 s at most).
fn wait_for_stat(server: &common::Server, name: &str, ok: impl Fn(u64) -> bool) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = common::stat(server, name);
        if ok(v) || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A multi-get line grows the read buffer (up to 4 MiB); past two reads'
/// worth it is charged to the in-flight pool, and a connection whose line
/// finds the pool spent is closed, as memcached closes one whose buffer it
/// cannot grow. The charge comes back with the connection.
#[test]
fn long_lines_are_charged_and_the_charge_comes_back() {
    // `-m 32`: a 16 MiB in-flight pool.
    let server = common::start_server(&["-m", "32"]);
    let mut line = b"get".to_vec();
    while line.len() < 3 << 20 {
        line.extend_from_slice(b" key");
    }
    // Eight lines of 3 MiB: five fit the 16 MiB pool.
    let hogs: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut c = server.tcp();
            let _ = c.write_all(&line);
            c
        })
        .collect();
    let refused = wait_for_stat(&server, "inflight_pool_oom", |v| v >= 3);
    assert_eq!(refused, 3, "lines refused for want of memory");
    let held = common::stat(&server, "inflight_pool_bytes");
    assert!(held <= 16 << 20, "{held} bytes charged past the pool");
    let closed = hogs
        .into_iter()
        .filter(|mut c| {
            c.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            match c.read(&mut [0u8; 16]) {
                Ok(0) => true,
                Ok(n) => panic!("{n} bytes of reply to a line with no end"),
                Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            }
        })
        .count();
    assert_eq!(closed, 3, "connections closed for want of memory");
    // The hogs are gone: nothing stays charged, and a whole 3 MiB line is
    // served again.
    assert_eq!(wait_for_stat(&server, "inflight_pool_bytes", |v| v == 0), 0);
    let mut s = server.tcp();
    s.write_all(&line).unwrap();
    s.write_all(b"\r\n").unwrap();
    assert_eq!(common::read_until(&mut s, b"\r\n"), b"END\r\n");
}
