//! `-Y FILE`, ASCII authentication: the same exchanges against memcached
//! 1.6.18 and rmemcached give the same bytes, `stats` counts the attempts,
//! a file or flag memcached refuses stops rmemcached the same way, and
//! SIGHUP reloads the file.
use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{request, start_server, start_with, unique_name};

const MEMCACHED: &str = "/usr/bin/memcached";

/// An auth file holding `text`.
fn auth_file(text: &str) -> PathBuf {
    let path = unique_name("rmc-auth");
    std::fs::write(&path, text).unwrap();
    path
}

/// Send each piece in turn, reading the reply to each before the next
/// (memcached keeps only the last reply of several unauthenticated
/// commands read at once; see docs/ARCHITECTURE.md), and return all the
/// bytes received, with `<closed>` if the server hung up.
fn exchange(port: u16, pieces: &[&[u8]]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut got = Vec::new();
    for piece in pieces {
        s.write_all(piece).unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => {
                    got.extend_from_slice(b"<closed>");
                    return got;
                }
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
    }
    got
}

/// The exchanges compared, each on a fresh connection.
const CASES: &[&[&[u8]]] = &[
    &[b"get foo\r\n"],
    &[b"version\r\n", b"stats\r\n"],
    &[b"set foo 0 0 3\r\nbar\r\n"],
    &[
        b"set x 0 0 9\r\nuser pass\r\n",
        b"set foo 0 0 3\r\nbar\r\n",
        b"get foo\r\n",
    ],
    &[b"set x 0 0 9\r\nuser pasx\r\n", b"get foo\r\n"],
    &[b"set x 0 0 9\r\nother pw2\r\n", b"get foo\r\n"],
    &[b"set x 0 0 4\r\nuser\r\n"],
    &[b"set x 0 0 9\r\nuser passXY"],
    &[b"set x 0 0 9\r\n", b"user pass\r\n", b"version\r\n"],
    &[b"set x 0 0 bad\r\n", b"user pass\r\n"],
    &[b"set x 0 0\r\n"],
    &[b"SET x 0 0 9\r\n", b"user pass\r\n"],
    &[b"set x 0 0 10\r\nuser pass \r\n", b"get foo\r\n"],
    &[b"set x 0 0 9 noreply\r\nuser pass\r\n", b"get foo\r\n"],
    &[b"set x 0 0 15\r\nuser pass extra\r\n", b"get foo\r\n"],
];

#[test]
fn exchanges_match_memcached() {
    let file = auth_file("user:pass\nother:pw2\n");
    let args = ["-U", "0", "-Y", file.to_str().unwrap()];
    let mc = start_with(MEMCACHED, &args);
    let rmc = start_server(&args);
    for case in CASES {
        let want = exchange(mc.port, case);
        let got = exchange(rmc.port, case);
        assert_eq!(
            common::show(&got),
            common::show(&want),
            "case {:?}",
            case.iter().map(|p| common::show(p)).collect::<Vec<_>>()
        );
    }
    // A line of 3000 bytes with no newline closes the connection.
    let long = [b'x'; 3000];
    assert_eq!(exchange(rmc.port, &[&long]), exchange(mc.port, &[&long]));

    // Both counted the same attempts.
    let counts = |port| {
        let reply = exchange(port, &[b"set x 0 0 9\r\nuser pass\r\n", b"stats\r\n"]);
        String::from_utf8(reply)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("STAT auth_"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let (want, got) = (counts(mc.port), counts(rmc.port));
    assert_eq!(got, want);
    assert!(got.contains(&"STAT auth_errors 1".to_string()), "{got:?}");

    // `stats settings` names the file.
    let mut c = rmc.tcp();
    c.write_all(b"set x 0 0 9\r\nuser pass\r\n").unwrap();
    let settings = String::from_utf8(request(&mut c, b"stats settings\r\n", b"END\r\n")).unwrap();
    let line = format!("STAT auth_enabled_ascii {}", file.display());
    assert!(settings.contains(&line), "{settings}");
    let _ = std::fs::remove_file(file);
}

/// Start `bin` with `args` and wait for it to exit by itself.
fn exit_of(bin: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(bin)
        .args(["-l", "127.0.0.1", "-p", "0", "-u", "root"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn refused_at_start_as_memcached_refuses() {
    let rmc = env!("CARGO_BIN_EXE_rmemcached");
    let good = auth_file("user:pass\n");
    let bad = auth_file("user:pass\nnocolon\n");
    let missing = unique_name("rmc-auth-missing");
    let cases: [&[&str]; 3] = [
        &["-U", "11311", "-Y", good.to_str().unwrap()],
        &["-U", "0", "-Y", bad.to_str().unwrap()],
        &["-U", "0", "-Y", missing.to_str().unwrap()],
    ];
    for args in cases {
        let (code, err) = exit_of(rmc, args);
        let (want_code, want_err) = exit_of(MEMCACHED, args);
        assert_eq!(code, want_code, "{args:?}: {err}");
        assert_ne!(code, Some(0), "{args:?}");
        // memcached's message, less what follows the path (its error text).
        let first = want_err.lines().next().unwrap_or_default();
        let head = first.split(", error").next().unwrap();
        assert!(err.contains(head), "{args:?}: {err:?} lacks {head:?}");
    }
    for f in [good, bad] {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn sighup_reloads_the_file() {
    let file = auth_file("old:one\n");
    let server = start_server(&["-U", "0", "-Y", file.to_str().unwrap()]);
    let login = |creds: &[u8]| {
        let mut line = format!("set x 0 0 {}\r\n", creds.len()).into_bytes();
        line.extend_from_slice(creds);
        line.extend_from_slice(b"\r\n");
        exchange(server.port, &[&line])
    };
    assert_eq!(login(b"old one"), b"STORED\r\n");
    assert_eq!(
        login(b"new two"),
        b"CLIENT_ERROR authentication failure\r\n"
    );

    let hup = || {
        // SAFETY: kill(2) on our own child process; no memory is involved.
        unsafe {
            libc::kill(server.child.id() as i32, libc::SIGHUP);
        }
    };
    std::fs::write(&file, "new:two\n").unwrap();
    hup();
    let deadline = Instant::now() + Duration::from_secs(5);
    while login(b"new two") != b"STORED\r\n" {
        assert!(Instant::now() < deadline, "the new entry was never taken");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        login(b"old one"),
        b"CLIENT_ERROR authentication failure\r\n"
    );

    // A file that no longer loads leaves the entries in force.
    std::fs::write(&file, "broken\n").unwrap();
    hup();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(login(b"new two"), b"STORED\r\n");
    let _ = std::fs::remove_file(file);
}
