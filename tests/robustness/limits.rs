//! Limits that protect the server: `-c` (max connections, refused with
//! memcached's message), `-R` (requests per event: a pipelined burst is
//! still served, in order, without starving other clients) and the
//! 2048-byte rule for lines without a newline. Another client's data
//! survives all of it.
use crate::common;
use crate::common::show;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// What a connection does next: bytes until it closes or goes quiet.
#[derive(Debug, PartialEq)]
enum End {
    Closed,
    Open,
}

/// Read until EOF/reset (`Closed`) or `quiet` without data (`Open`).
fn drain(s: &mut TcpStream, quiet: Duration) -> (Vec<u8>, End) {
    s.set_read_timeout(Some(quiet)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, End::Closed),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (out, End::Open)
            }
            Err(_) => return (out, End::Closed),
        }
    }
}

/// A client whose data must survive the abuse of the other tests.
struct Witness {
    conn: TcpStream,
}

impl Witness {
    fn new(server: &common::Server) -> Witness {
        let mut conn = server.tcp();
        let r = common::request(
            &mut conn,
            b"set witness 7 0 9\r\nsurvivor!\r\nset wcount 0 0 1\r\n5\r\n",
            b"STORED\r\nSTORED\r\n",
        );
        assert_eq!(show(&r), show(b"STORED\r\nSTORED\r\n"));
        Witness { conn }
    }

    /// The data is intact, seen from the witness's own connection and from
    /// a new one.
    fn check(&mut self, server: &common::Server) {
        let want = b"VALUE witness 7 9\r\nsurvivor!\r\nVALUE wcount 0 1\r\n5\r\nEND\r\n";
        let r = common::request(&mut self.conn, b"get witness wcount\r\n", b"END\r\n");
        assert_eq!(show(&r), show(want), "witness connection");
        let mut fresh = server.tcp();
        let r = common::request(&mut fresh, b"get witness wcount\r\n", b"END\r\n");
        assert_eq!(show(&r), show(want), "new connection");
    }
}

const TOO_MANY: &[u8] = b"ERROR Too many open connections\r\n";

#[test]
fn maxconns_refuses_with_error_and_closes() {
    let server = common::start_server(&["-c", "10"]);
    let mut witness = Witness::new(&server);
    let mut open = Vec::new();
    let mut refused = None;
    for i in 0..40 {
        let mut c = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        // A refused connection is told at once, before it sends anything.
        let (got, end) = drain(&mut c, Duration::from_millis(200));
        if !got.is_empty() || end == End::Closed {
            refused = Some((i, got, end, c));
            break;
        }
        let r = common::request(&mut c, b"version\r\n", b"\r\n");
        assert_eq!(show(&r), show(b"VERSION 1.6.18\r\n"), "connection #{i}");
        open.push(c);
    }
    let (i, mut got, end, mut c) = refused.expect("40 connections accepted with -c 10");
    assert!(i >= 3, "refused after only {i} connections (witness + {i})");
    assert!(
        i < 10,
        "{i} connections accepted besides the witness with -c 10"
    );
    if end == End::Open {
        let (more, end) = drain(&mut c, Duration::from_secs(3));
        got.extend_from_slice(&more);
        assert_eq!(end, End::Closed, "refused connection left open");
    }
    assert_eq!(show(&got), show(TOO_MANY));
    // The accepted connections still work.
    for (n, c) in open.iter_mut().enumerate() {
        let r = common::request(c, b"get witness\r\n", b"END\r\n");
        assert_eq!(
            show(&r),
            show(b"VALUE witness 7 9\r\nsurvivor!\r\nEND\r\n"),
            "open #{n}"
        );
    }
    // Still full: refused again.
    let mut c = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let (got, _) = drain(&mut c, Duration::from_secs(2));
    assert_eq!(show(&got), show(TOO_MANY), "while still full");
    // Closing two makes room again.
    open.pop();
    open.pop();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut c = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        c.write_all(b"version\r\n").unwrap();
        let (got, _) = drain(&mut c, Duration::from_millis(500));
        if got == b"VERSION 1.6.18\r\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no room after closing two connections: {}",
            show(&got)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(open);
    witness.check(&server);
}

#[test]
fn pipelined_burst_with_r1() {
    let server = common::start_server(&["-R", "1"]);
    let mut witness = Witness::new(&server);
    let mut c = server.tcp();
    let mut set = Vec::new();
    for i in 0..100 {
        set.extend_from_slice(
            format!("set k{i} {i} 0 {}\r\nv{i}\r\n", format!("v{i}").len()).as_bytes(),
        );
    }
    let r = common::request(&mut c, &set, &b"STORED\r\n".repeat(100));
    assert_eq!(r, b"STORED\r\n".repeat(100));
    // 100 gets in one write; the replies come in order, none lost.
    let mut req = Vec::new();
    let mut want = Vec::new();
    for i in 0..100 {
        req.extend_from_slice(format!("get k{i}\r\n").as_bytes());
        want.extend_from_slice(
            format!(
                "VALUE k{i} {i} {}\r\nv{i}\r\nEND\r\n",
                format!("v{i}").len()
            )
            .as_bytes(),
        );
    }
    c.write_all(&req).unwrap();
    let got = common::read_exact(&mut c, want.len());
    assert_eq!(show(&got), show(&want));
    // Mixed commands, also in one write.
    let r = common::request(
        &mut c,
        b"incr wcount 0\r\nget k1\r\ndelete k2\r\nget k2\r\nversion\r\n",
        b"VERSION 1.6.18\r\n",
    );
    assert_eq!(
        show(&r),
        show(b"5\r\nVALUE k1 1 2\r\nv1\r\nEND\r\nDELETED\r\nEND\r\nVERSION 1.6.18\r\n")
    );
    witness.check(&server);
}

#[test]
fn long_burst_does_not_starve_others_with_r1() {
    let server = common::start_server(&["-R", "1", "-t", "1"]);
    let mut witness = Witness::new(&server);
    const N: usize = 20_000;
    let mut a = server.tcp();
    let mut writer = a.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let want = b"VALUE witness 7 9\r\nsurvivor!\r\nEND\r\n";
        let got = common::read_exact(&mut a, want.len() * N);
        got.chunks(want.len()).filter(|c| *c == want).count()
    });
    let burst = b"get witness\r\n".repeat(N);
    let w = std::thread::spawn(move || writer.write_all(&burst).unwrap());
    // Meanwhile another client, on the same worker thread, is answered.
    let mut b = server.tcp();
    for i in 0..20 {
        let start = Instant::now();
        let r = common::request(&mut b, b"get wcount\r\n", b"END\r\n");
        assert_eq!(show(&r), show(b"VALUE wcount 0 1\r\n5\r\nEND\r\n"), "#{i}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "reply #{i} took {:?}",
            start.elapsed()
        );
    }
    w.join().unwrap();
    assert_eq!(reader.join().unwrap(), N, "replies to the burst");
    witness.check(&server);
}

/// (what is sent, sent after 100 ms, reply, whether the server closes).
type LineCase = (Vec<u8>, &'static [u8], &'static [u8], End);

fn line_cases() -> Vec<LineCase> {
    let x = |n: usize| vec![b'x'; n];
    let cat = |a: &[u8], b: &[u8]| [a, b].concat();
    vec![
        // Over 2048 bytes without a newline, not a get: closed.
        (x(3000), b"", b"", End::Closed),
        (
            cat(b"set k 0 0 1", &vec![b' '; 3000]),
            b"",
            b"",
            End::Closed,
        ),
        // Up to 2048 the server waits for the rest of the line.
        (x(2047), b"\r\n", b"ERROR\r\n", End::Open),
        // A long line with its newline is an ordinary bad command.
        (cat(&x(3000), b"\r\n"), b"", b"ERROR\r\n", End::Open),
        // A long get is read to its end.
        (
            cat(b"get ", &vec![b'a'; 3000]),
            b"\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
            End::Open,
        ),
        (
            cat(b"gets ", &vec![b'a'; 3000]),
            b"\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
            End::Open,
        ),
        (
            cat(b"get ", &b"a ".repeat(1500)),
            b"\r\n",
            b"END\r\n",
            End::Open,
        ),
    ]
}

/// Run every long-line case against `server`; with `witness`, also check
/// that a connection left open is still usable.
fn run_line_cases(server: &common::Server, witness: bool) {
    for (i, (first, then, reply, end)) in line_cases().into_iter().enumerate() {
        let mut c = server.tcp();
        c.write_all(&first).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        if !then.is_empty() {
            c.write_all(then).unwrap();
        }
        let (got, e) = drain(&mut c, Duration::from_millis(400));
        assert_eq!(
            (show(&got), &e),
            (show(reply), &end),
            "case {i}: {}",
            show(&first)
        );
        if witness && end == End::Open {
            let r = common::request(&mut c, b"get witness\r\n", b"END\r\n");
            assert_eq!(
                show(&r),
                show(b"VALUE witness 7 9\r\nsurvivor!\r\nEND\r\n"),
                "case {i}: connection usable after"
            );
        }
    }
}

#[test]
fn long_lines_without_newline() {
    let server = common::start_server(&[]);
    let mut witness = Witness::new(&server);
    run_line_cases(&server, true);
    witness.check(&server);
}

#[test]
fn long_lines_without_newline_memcached() {
    assert!(
        std::path::Path::new("/usr/bin/memcached").exists(),
        "/usr/bin/memcached is missing: install memcached 1.6.18"
    );
    let server = common::start_with("/usr/bin/memcached", &[]);
    run_line_cases(&server, false);
}
