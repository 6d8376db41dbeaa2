//! Stopping: SIGHUP is taken without dying (as in memcached); SIGUSR1 and
//! `shutdown` stop the server after the replies in flight are written, and
//! the process exits 0.
use crate::common;

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{read_until, request, start_server};

fn signal(pid: u32, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name}");
}

/// Wait at most `limit` for the child to exit; its status code.
fn wait_exit(server: &mut common::Server, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(st) = server.child.try_wait().unwrap() {
            return st.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn sighup_is_survived_and_sigusr1_stops_with_exit_0() {
    let mut server = start_server(&[]);
    let mut c = server.tcp();
    assert_eq!(
        request(&mut c, b"set k 0 0 2\r\nhi\r\n", b"\r\n"),
        b"STORED\r\n"
    );
    signal(server.child.id(), "HUP");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "SIGHUP killed it"
    );
    assert_eq!(
        request(&mut c, b"get k\r\n", b"END\r\n"),
        b"VALUE k 0 2\r\nhi\r\nEND\r\n"
    );
    signal(server.child.id(), "USR1");
    assert_eq!(wait_exit(&mut server, Duration::from_secs(5)), Some(0));
}

/// A client whose large reply is still being written when `shutdown`
/// arrives on another connection gets all of it before the server exits.
#[test]
fn shutdown_finishes_replies_in_flight() {
    let mut server = start_server(&["-A", "-m", "256"]);
    let mut c = server.tcp();
    let value = vec![b'v'; 500_000];
    for i in 0..8 {
        let mut req = format!("set big{i} 0 0 {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(&value);
        req.extend_from_slice(b"\r\n");
        assert_eq!(request(&mut c, &req, b"\r\n"), b"STORED\r\n");
    }
    // 40 MB of reply: far more than the socket buffers hold, so most of it
    // is still queued in the server when the stop comes.
    let keys: Vec<String> = (0..80).map(|i| format!("big{}", i % 8)).collect();
    let mut reader = server.tcp();
    reader
        .write_all(format!("get {}\r\n", keys.join(" ")).as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let mut admin = server.tcp();
    admin.write_all(b"shutdown\r\n").unwrap();
    // memcached closes the asking connection at once, with no reply.
    let mut rest = Vec::new();
    let _ = admin.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));

    reader
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let reply = read_until(&mut reader, b"END\r\n");
    let header = format!("VALUE big0 0 {}\r\n", value.len());
    let expected = keys.len() * (header.len() + value.len() + 2) + 5;
    assert_eq!(reply.len(), expected);
    assert!(reply.ends_with(b"END\r\n"));
    // Then the connection closes and the process exits 0.
    let mut tail = Vec::new();
    assert_eq!(reader.read_to_end(&mut tail).unwrap(), 0);
    assert_eq!(wait_exit(&mut server, Duration::from_secs(5)), Some(0));
}

/// Once stopping, the server takes no new connections, and idle
/// connections are closed rather than waited on.
#[test]
fn stop_closes_idle_connections_and_listeners() {
    let mut server = start_server(&[]);
    let port = server.port;
    let mut idle = server.tcp();
    assert!(request(&mut idle, b"version\r\n", b"\r\n").starts_with(b"VERSION "));
    signal(server.child.id(), "TERM");
    assert_eq!(wait_exit(&mut server, Duration::from_secs(5)), Some(0));
    let mut buf = [0u8; 16];
    assert_eq!(idle.read(&mut buf).unwrap_or(0), 0);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// The crawler thread stops with the workers: a crawl that would take a
/// minute (a second's sleep every 1,000 items) does not hold up SIGTERM.
#[test]
fn sigterm_stops_a_crawl_in_progress() {
    let mut server = start_server(&["-o", "lru_crawler_sleep=1000000"]);
    let mut c = server.tcp();
    let mut batch = Vec::new();
    for i in 0..60_000 {
        let _ = write!(batch, "set crawl{i} 0 0 1 noreply\r\nx\r\n");
    }
    c.write_all(&batch).unwrap();
    assert_eq!(
        request(&mut c, b"lru_crawler crawl all\r\n", b"\r\n"),
        b"OK\r\n"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(common::stat(&server, "lru_crawler_running"), 1);
    let asked = Instant::now();
    signal(server.child.id(), "TERM");
    assert_eq!(wait_exit(&mut server, Duration::from_secs(5)), Some(0));
    assert!(asked.elapsed() < Duration::from_secs(3));
}
