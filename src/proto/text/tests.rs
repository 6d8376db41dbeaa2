//! Request/reply tables for the ASCII protocol, run without sockets.

use super::*;
use crate::proto::complete::complete_nread;
use crate::proto::tokens::MAX_TOKENS;
use crate::server::Server;
use crate::settings::Settings;

fn server() -> Server {
    Server::new(Settings::default())
}

/// Feed a whole byte stream through the protocol the way a stream
/// connection would, returning everything written back.
fn run(server: &Server, input: &[u8]) -> Vec<u8> {
    let mut sess = Session::default();
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(nl) = input[pos..].iter().position(|&b| b == b'\n') {
        let mut end = nl;
        if end > 1 && input[pos + end - 1] == b'\r' {
            end -= 1;
        }
        let line = &input[pos..pos + end];
        pos += nl + 1;
        match process_command(&server.ctx(), &mut sess, line, &mut out) {
            Action::Continue | Action::Flush => {}
            Action::Nread(p) => {
                let data = &input[pos..(pos + p.vlen).min(input.len())];
                pos += data.len();
                complete_nread(&server.ctx(), &mut sess, p, data, &mut out);
            }
            Action::Swallow(n) => pos = (pos + n).min(input.len()),
            other => {
                out.extend_from_slice(format!("<{other:?}>").as_bytes());
                break;
            }
        }
    }
    out
}

fn check(table: &[(&str, &str)]) {
    let s = server();
    for (req, want) in table {
        let got = run(&s, req.as_bytes());
        assert_eq!(String::from_utf8_lossy(&got), *want, "request {req:?}");
    }
}

#[test]
fn tokenizer_matches_memcached() {
    let t = Tokens::new(b"get  a b");
    assert_eq!(t.as_slice(), &[&b"get"[..], b"a", b"b"]);
    assert_eq!(t.ntokens(), 4);
    assert!(t.rest.is_none());
    let long: Vec<u8> = (0..30)
        .map(|i| format!("k{i} "))
        .collect::<String>()
        .into_bytes();
    let t = Tokens::new(&long);
    assert_eq!(t.ntokens(), MAX_TOKENS);
    assert_eq!(t.rest, Some(&b"k23 k24 k25 k26 k27 k28 k29 "[..]));
}

#[test]
fn storage_and_retrieval() {
    check(&[
        ("set a 5 0 3\r\nabc\r\n", "STORED\r\n"),
        ("get a\r\n", "VALUE a 5 3\r\nabc\r\nEND\r\n"),
        (
            "get a b a\r\n",
            "VALUE a 5 3\r\nabc\r\nVALUE a 5 3\r\nabc\r\nEND\r\n",
        ),
        ("add a 0 0 1\r\nx\r\n", "NOT_STORED\r\n"),
        ("add b 0 0 1\r\nx\r\n", "STORED\r\n"),
        ("replace c 0 0 1\r\nx\r\n", "NOT_STORED\r\n"),
        ("append a 9 0 2\r\nde\r\n", "STORED\r\n"),
        ("prepend a 9 0 2\r\nzz\r\n", "STORED\r\n"),
        ("get a\r\n", "VALUE a 5 7\r\nzzabcde\r\nEND\r\n"),
        ("append nope 0 0 1\r\nx\r\n", "NOT_STORED\r\n"),
        ("cas nope 0 0 1 1\r\nx\r\n", "NOT_FOUND\r\n"),
        ("cas a 0 0 1 0\r\nx\r\n", "EXISTS\r\n"),
        ("delete a\r\n", "DELETED\r\n"),
        ("delete a\r\n", "NOT_FOUND\r\n"),
        ("get a\r\n", "END\r\n"),
    ]);
}

#[test]
fn cas_round_trip() {
    let s = server();
    let out = run(&s, b"set k 0 0 1\r\nv\r\ngets k\r\n");
    let text = String::from_utf8(out).unwrap();
    let cas: u64 = text
        .lines()
        .nth(1)
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let req = format!("cas k 0 0 1 {cas}\r\nw\r\ncas k 0 0 1 {cas}\r\nx\r\n");
    assert_eq!(run(&s, req.as_bytes()), b"STORED\r\nEXISTS\r\n");
}

#[test]
fn arithmetic() {
    check(&[
        ("set n 0 0 2\r\n10\r\n", "STORED\r\n"),
        ("incr n 5\r\n", "15\r\n"),
        ("decr n 100\r\n", "0\r\n"),
        ("get n\r\n", "VALUE n 0 2\r\n0 \r\nEND\r\n"),
        ("set n 0 0 20\r\n18446744073709551615\r\n", "STORED\r\n"),
        ("incr n 2\r\n", "1\r\n"),
        (
            "incr n -1\r\n",
            "CLIENT_ERROR invalid numeric delta argument\r\n",
        ),
        ("incr nope 1\r\n", "NOT_FOUND\r\n"),
        ("set s 0 0 3\r\nabc\r\n", "STORED\r\n"),
        (
            "incr s 1\r\n",
            "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
    ]);
}

#[test]
fn errors_and_noreply() {
    check(&[
        ("bogus\r\n", "ERROR\r\n"),
        ("x\r\n", "ERROR\r\n"),
        ("\r\n", "ERROR\r\n"),
        ("get\r\n", "ERROR\r\n"),
        ("set a 0 0\r\n", "ERROR\r\n"),
        (
            "set a b 0 1\r\n",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        (
            "set a 0 0 -1\r\n",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        ("set a 0 0 1 noreply\r\nx\r\n", ""),
        (
            "set a 0 0 1\r\nxy\r\n",
            "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
        (
            "delete a 5\r\n",
            "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
        ),
        ("delete a 0\r\n", "DELETED\r\n"),
        ("touch a x\r\n", "CLIENT_ERROR invalid exptime argument\r\n"),
        ("gat x a\r\n", "CLIENT_ERROR invalid exptime argument\r\n"),
        ("verbosity 1\r\n", "OK\r\n"),
        (
            "verbosity x\r\n",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        (
            "flush_all x\r\n",
            "CLIENT_ERROR invalid exptime argument\r\n",
        ),
        ("flush_all noreply\r\n", ""),
        ("version\r\n", "VERSION 1.6.18\r\n"),
        ("shutdown\r\n", "ERROR: shutdown not enabled\r\n"),
        ("GET / HTTP/1.1\r\n", "<Close>"),
        ("quit\r\n", "<Quit>"),
    ]);
}

#[test]
fn key_length_limit() {
    let k250 = "k".repeat(250);
    let k251 = "k".repeat(251);
    let s = server();
    let req = format!("set {k250} 0 0 1\r\nx\r\nget {k250}\r\n");
    let want = format!("STORED\r\nVALUE {k250} 0 1\r\nx\r\nEND\r\n");
    assert_eq!(String::from_utf8(run(&s, req.as_bytes())).unwrap(), want);
    let req = format!("get {k250} {k251}\r\n");
    assert_eq!(
        run(&s, req.as_bytes()),
        b"CLIENT_ERROR bad command line format\r\n"
    );
}

#[test]
fn too_large_is_swallowed() {
    let s = server();
    let big = "x".repeat(1024 * 1024);
    let req = format!("set big 0 0 {}\r\n{big}\r\nget big\r\n", big.len());
    assert_eq!(
        run(&s, req.as_bytes()),
        b"SERVER_ERROR object too large for cache\r\nEND\r\n"
    );
}

#[test]
fn expiry_rules() {
    check(&[
        ("set e 0 -1 1\r\nx\r\n", "STORED\r\n"),
        ("get e\r\n", "END\r\n"),
        ("set e 0 1000 1\r\nx\r\n", "STORED\r\n"),
        ("touch e -1\r\n", "TOUCHED\r\n"),
        ("get e\r\n", "END\r\n"),
    ]);
}
