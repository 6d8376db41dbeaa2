//! The storage, retrieval and arithmetic commands of the ASCII protocol,
//! with their error replies and `noreply`, byte for byte as memcached
//! 1.6.18 answers them. Every table runs over TCP and over a unix socket,
//! and once more against the real memcached (when installed) so that the
//! expectations themselves are memcached's.
use crate::common;
use crate::common::show;

use std::io::{Read, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const REAL_MEMCACHED: &str = "/usr/bin/memcached";

/// Start the real memcached with `flags`, as `common` starts rmemcached.
fn start_memcached(flags: &[&str]) -> common::Server {
    assert!(
        std::path::Path::new(REAL_MEMCACHED).exists(),
        "{REAL_MEMCACHED} is missing: install memcached 1.6.18"
    );
    common::start_with(REAL_MEMCACHED, flags)
}

/// One step of a table: bytes sent, and the whole reply expected for them.
type Step = (Vec<u8>, Vec<u8>);

fn s(req: impl AsRef<[u8]>, want: impl AsRef<[u8]>) -> Step {
    (req.as_ref().to_vec(), want.as_ref().to_vec())
}

/// Read until `n` bytes came, the peer closed, or the read timed out.
fn read_n<S: Read>(st: &mut S, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    while got.len() < n {
        match st.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => got.extend_from_slice(&buf[..k]),
        }
    }
    got
}

/// Send each step's request on one connection and compare the reply.
fn run_table<S: Read + Write>(st: &mut S, table: &[Step], what: &str) {
    for (i, (req, want)) in table.iter().enumerate() {
        st.write_all(req).unwrap();
        let got = read_n(st, want.len());
        assert!(
            got == *want,
            "{what}: step {i}: request {}\n  expected {}\n  observed {}",
            show(req),
            show(want),
            show(&got)
        );
    }
    // Nothing left over: the next command is answered on its own.
    st.write_all(b"version\r\n").unwrap();
    let got = read_n(st, b"VERSION 1.6.18\r\n".len());
    assert_eq!(
        show(&got),
        show(b"VERSION 1.6.18\r\n"),
        "{what}: trailing bytes"
    );
}

/// Declare the `tcp`, `unix` (rmemcached) and `memcached` (the real one,
/// checking the table itself) tests of one table.
macro_rules! table_tests {
    ($name:ident, $table:expr, $flags:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn tcp() {
                let server = common::start_server($flags);
                run_table(&mut server.tcp(), &$table, "rmemcached tcp");
            }
            #[test]
            fn unix() {
                let server = common::start_unix_server($flags);
                run_table(&mut server.unix(), &$table, "rmemcached unix");
            }
            #[test]
            fn memcached() {
                let server = start_memcached($flags);
                run_table(&mut server.tcp(), &$table, "real memcached");
            }
        }
    };
}

fn storage() -> Vec<Step> {
    let k250 = "k".repeat(250);
    vec![
        s("set a 5 0 3\r\nabc\r\n", "STORED\r\n"),
        s("get a\r\n", "VALUE a 5 3\r\nabc\r\nEND\r\n"),
        s("get nope\r\n", "END\r\n"),
        s("add a 0 0 1\r\nv\r\n", "NOT_STORED\r\n"),
        s("add b 7 0 2\r\nbb\r\n", "STORED\r\n"),
        s("replace c 0 0 1\r\nv\r\n", "NOT_STORED\r\n"),
        s("replace b 8 0 3\r\nbbb\r\n", "STORED\r\n"),
        s(
            "get a c b\r\n",
            "VALUE a 5 3\r\nabc\r\nVALUE b 8 3\r\nbbb\r\nEND\r\n",
        ),
        // append/prepend ignore the new flags and exptime.
        s("append a 9 0 2\r\nde\r\n", "STORED\r\n"),
        s("prepend a 9 0 2\r\nxy\r\n", "STORED\r\n"),
        s("get a\r\n", "VALUE a 5 7\r\nxyabcde\r\nEND\r\n"),
        s("append zz 0 0 1\r\nv\r\n", "NOT_STORED\r\n"),
        s("prepend zz 0 0 1\r\nv\r\n", "NOT_STORED\r\n"),
        s("get zz\r\n", "END\r\n"),
        // set overwrites flags and value.
        s(
            "set a 0 0 1\r\nz\r\nget a\r\n",
            "STORED\r\nVALUE a 0 1\r\nz\r\nEND\r\n",
        ),
        s("delete a\r\n", "DELETED\r\n"),
        s("delete a\r\n", "NOT_FOUND\r\n"),
        s("get a\r\n", "END\r\n"),
        s("delete b 0\r\n", "DELETED\r\n"),
        // Values are binary-safe and may be empty.
        s(
            "set bin 0 0 6\r\n\r\nx\r\n \r\nget bin\r\n",
            "STORED\r\nVALUE bin 0 6\r\n\r\nx\r\n \r\nEND\r\n",
        ),
        s(
            "set empty 0 0 0\r\n\r\nget empty\r\n",
            "STORED\r\nVALUE empty 0 0\r\n\r\nEND\r\n",
        ),
        s(
            "set f 4294967295 0 1\r\nv\r\nget f\r\n",
            "STORED\r\nVALUE f 4294967295 1\r\nv\r\nEND\r\n",
        ),
        // The longest key allowed.
        s(format!("set {k250} 1 0 1\r\nv\r\n"), "STORED\r\n"),
        s(
            format!("get {k250}\r\n"),
            format!("VALUE {k250} 1 1\r\nv\r\nEND\r\n"),
        ),
        // Extra spaces between tokens are fine.
        s(
            "set  sp  0 0 1\r\nv\r\nget  sp \r\n",
            "STORED\r\nVALUE sp 0 1\r\nv\r\nEND\r\n",
        ),
        // touch and gat.
        s("touch nope 10\r\n", "NOT_FOUND\r\n"),
        s("set t 3 0 1\r\nv\r\n", "STORED\r\n"),
        s("touch t 100\r\n", "TOUCHED\r\n"),
        s("gat 100 t nope\r\n", "VALUE t 3 1\r\nv\r\nEND\r\n"),
        s("gat 0 nope\r\n", "END\r\n"),
        // version, verbosity.
        s("version\r\n", "VERSION 1.6.18\r\n"),
        s("verbosity 1\r\n", "OK\r\n"),
        s("verbosity 0\r\n", "OK\r\n"),
        s("verbosity\r\n", "ERROR\r\n"),
        // flush_all empties the cache; later sets work again.
        s("flush_all\r\n", "OK\r\n"),
        s("get t bin f\r\n", "END\r\n"),
        s(
            "set after 0 0 1\r\nv\r\nflush_all 0\r\nget after\r\n",
            "STORED\r\nOK\r\nEND\r\n",
        ),
        s(
            "set after 0 0 1\r\nv\r\nget after\r\n",
            "STORED\r\nVALUE after 0 1\r\nv\r\nEND\r\n",
        ),
    ]
}

fn arith() -> Vec<Step> {
    vec![
        s("incr nokey 1\r\n", "NOT_FOUND\r\n"),
        s("decr nokey 1\r\n", "NOT_FOUND\r\n"),
        s("set n 0 0 2\r\n10\r\n", "STORED\r\n"),
        s("incr n 5\r\n", "15\r\n"),
        s("decr n 3\r\n", "12\r\n"),
        s("get n\r\n", "VALUE n 0 2\r\n12\r\nEND\r\n"),
        // A shorter result is written in place, padded with spaces.
        s("decr n 11\r\n", "1\r\n"),
        s("get n\r\n", "VALUE n 0 2\r\n1 \r\nEND\r\n"),
        // decr stops at 0.
        s("decr n 100\r\n", "0\r\n"),
        s("incr n 123\r\n", "123\r\n"),
        s("get n\r\n", "VALUE n 0 3\r\n123\r\nEND\r\n"),
        // incr wraps at 2^64.
        s(
            "set m 7 0 20\r\n18446744073709551615\r\nincr m 2\r\n",
            "STORED\r\n1\r\n",
        ),
        s(
            "get m\r\n",
            format!("VALUE m 7 20\r\n1{}\r\nEND\r\n", " ".repeat(19)),
        ),
        s("incr m 18446744073709551615\r\n", "0\r\n"),
        // Leading spaces in the stored value are accepted.
        s("set sp 0 0 4\r\n  12\r\nincr sp 1\r\n", "STORED\r\n13\r\n"),
        s(
            "set t 0 0 2\r\nab\r\nincr t 1\r\n",
            "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        s(
            "set t 0 0 3\r\n12a\r\ndecr t 1\r\n",
            "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        s(
            "incr n x\r\n",
            "CLIENT_ERROR invalid numeric delta argument\r\n",
        ),
        s(
            "incr n -1\r\n",
            "CLIENT_ERROR invalid numeric delta argument\r\n",
        ),
        s(
            "decr n 18446744073709551616\r\n",
            "CLIENT_ERROR invalid numeric delta argument\r\n",
        ),
        s("incr n\r\n", "ERROR\r\n"),
        s("get n\r\n", "VALUE n 0 3\r\n123\r\nEND\r\n"),
    ]
}

fn errors() -> Vec<Step> {
    let k251 = "k".repeat(251);
    vec![
        s("foo\r\n", "ERROR\r\n"),
        s("GET a\r\n", "ERROR\r\n"),
        s("\r\n", "ERROR\r\n"),
        s("get\r\n", "ERROR\r\n"),
        s("gets\r\n", "ERROR\r\n"),
        s("gat\r\n", "ERROR\r\n"),
        s("set k 0 0\r\n", "ERROR\r\n"),
        s("cas\r\n", "ERROR\r\n"),
        s("incr\r\n", "ERROR\r\n"),
        s("touch k\r\n", "ERROR\r\n"),
        s("delete\r\n", "ERROR\r\n"),
        // A bad line is not followed by a swallowed value: the value line
        // is then a command of its own.
        s(
            "set k 0 abc 1\r\nv\r\n",
            "CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        s(
            "set k abc 0 1\r\nv\r\n",
            "CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        s(
            "set k 0 0 -1\r\n",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        s(
            "set k 0 0 x\r\n",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        s(
            "cas k 0 0 1 abc\r\nv\r\n",
            "CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        s("cas k 0 0 1\r\nv\r\n", "ERROR\r\nERROR\r\n"),
        // The value is one byte longer than announced.
        s(
            "set k 0 0 1\r\nvv\r\n",
            "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
        s("get k\r\n", "END\r\n"),
        // Keys of 251 bytes.
        s(
            format!("set {k251} 0 0 1\r\nv\r\n"),
            "CLIENT_ERROR bad command line format\r\nERROR\r\n",
        ),
        s(
            format!("get a {k251}\r\n"),
            "CLIENT_ERROR bad command line format\r\n",
        ),
        s(
            format!("incr {k251} 1\r\n"),
            "CLIENT_ERROR bad command line format\r\n",
        ),
        s(
            format!("delete {k251}\r\n"),
            "CLIENT_ERROR bad command line format\r\n",
        ),
        s(
            format!("touch {k251} 1\r\n"),
            "CLIENT_ERROR bad command line format\r\n",
        ),
        // Exptime arguments.
        s("set e 0 0 1\r\nv\r\n", "STORED\r\n"),
        s(
            "touch e abc\r\n",
            "CLIENT_ERROR invalid exptime argument\r\n",
        ),
        s("gat abc e\r\n", "CLIENT_ERROR invalid exptime argument\r\n"),
        s("gats x e\r\n", "CLIENT_ERROR invalid exptime argument\r\n"),
        s(
            "flush_all abc\r\n",
            "CLIENT_ERROR invalid exptime argument\r\n",
        ),
        s("get e\r\n", "VALUE e 0 1\r\nv\r\nEND\r\n"),
        s(
            "delete e 5\r\n",
            "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
        ),
        s(
            "verbosity abc\r\n",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        s("shutdown\r\n", "ERROR: shutdown not enabled\r\n"),
        // The connection is still fine after all of that.
        s(
            "set ok 0 0 2\r\nok\r\nget ok e\r\n",
            "STORED\r\nVALUE ok 0 2\r\nok\r\nVALUE e 0 1\r\nv\r\nEND\r\n",
        ),
    ]
}

fn noreply() -> Vec<Step> {
    vec![
        s(
            "set d 0 0 1 noreply\r\nv\r\nget d\r\n",
            "VALUE d 0 1\r\nv\r\nEND\r\n",
        ),
        // add fails silently.
        s(
            "add d 0 0 1 noreply\r\nx\r\nget d\r\n",
            "VALUE d 0 1\r\nv\r\nEND\r\n",
        ),
        s(
            "add d2 0 0 1 noreply\r\nx\r\nget d2\r\n",
            "VALUE d2 0 1\r\nx\r\nEND\r\n",
        ),
        s(
            "replace d 0 0 1 noreply\r\nw\r\nget d\r\n",
            "VALUE d 0 1\r\nw\r\nEND\r\n",
        ),
        s("replace nope 0 0 1 noreply\r\nw\r\nget nope\r\n", "END\r\n"),
        s(
            "append d 0 0 1 noreply\r\nx\r\nget d\r\n",
            "VALUE d 0 2\r\nwx\r\nEND\r\n",
        ),
        s(
            "prepend d 0 0 1 noreply\r\ny\r\nget d\r\n",
            "VALUE d 0 3\r\nywx\r\nEND\r\n",
        ),
        // A cas with a wrong unique fails silently.
        s(
            "cas d 0 0 1 1 noreply\r\nz\r\nget d\r\n",
            "VALUE d 0 3\r\nywx\r\nEND\r\n",
        ),
        s("cas nope 0 0 1 1 noreply\r\nz\r\nget nope\r\n", "END\r\n"),
        s(
            "set n 0 0 2 noreply\r\n10\r\nincr n 5 noreply\r\ndecr n 3 noreply\r\nget n\r\n",
            "VALUE n 0 2\r\n12\r\nEND\r\n",
        ),
        s(
            "incr nope 1 noreply\r\ndecr nope 1 noreply\r\nversion\r\n",
            "VERSION 1.6.18\r\n",
        ),
        s(
            "touch n 100 noreply\r\ntouch nope 1 noreply\r\nversion\r\n",
            "VERSION 1.6.18\r\n",
        ),
        s(
            "delete n noreply\r\ndelete n noreply\r\nget n\r\n",
            "END\r\n",
        ),
        s("verbosity 1 noreply\r\nversion\r\n", "VERSION 1.6.18\r\n"),
        // Errors are silenced too.
        s(
            "set t 0 0 2\r\nab\r\nincr t 1 noreply\r\nversion\r\n",
            "STORED\r\nVERSION 1.6.18\r\n",
        ),
        s("incr t x noreply\r\nversion\r\n", "VERSION 1.6.18\r\n"),
        s("touch t abc noreply\r\nversion\r\n", "VERSION 1.6.18\r\n"),
        s("set k 0 abc 1 noreply\r\nversion\r\n", "VERSION 1.6.18\r\n"),
        s("delete t 1 noreply\r\nversion\r\n", "VERSION 1.6.18\r\n"),
        s(
            "set big 0 0 1048577 noreply\r\n".to_string()
                + &"x".repeat(1048577)
                + "\r\nversion\r\n",
            "VERSION 1.6.18\r\n",
        ),
        // gat has no noreply: the last token is taken as a key.
        s("gat 100 t noreply\r\n", "VALUE t 0 2\r\nab\r\nEND\r\n"),
        s("flush_all noreply\r\nget d d2 t\r\n", "END\r\n"),
        s("flush_all 0 noreply\r\nversion\r\n", "VERSION 1.6.18\r\n"),
    ]
}

fn too_large() -> Vec<Step> {
    let big = "x".repeat(1024 * 1024 + 1);
    let max = "y".repeat(1024 * 1024 - 100);
    vec![
        s("set big 0 0 1\r\nv\r\n", "STORED\r\n"),
        // The value is read and thrown away; the old one is gone too.
        s(
            format!("set big 0 0 {}\r\n{big}\r\nget big\r\n", big.len()),
            "SERVER_ERROR object too large for cache\r\nEND\r\n",
        ),
        s(
            format!("add new 0 0 {}\r\n{big}\r\nget new\r\n", big.len()),
            "SERVER_ERROR object too large for cache\r\nEND\r\n",
        ),
        s(
            "set k 0 0 1\r\nv\r\nget k\r\n",
            "STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n",
        ),
        // Just under the limit with the item header is fine.
        s(
            format!("set max 0 0 {}\r\n{max}\r\n", max.len()),
            "STORED\r\n",
        ),
        s(
            "get max\r\n",
            format!("VALUE max 0 {}\r\n{max}\r\nEND\r\n", max.len()),
        ),
    ]
}

fn item_size_2m() -> Vec<Step> {
    let v = "v".repeat(2_000_000);
    let big = "x".repeat(2 * 1024 * 1024 + 1);
    vec![
        s(format!("set v 0 0 {}\r\n{v}\r\n", v.len()), "STORED\r\n"),
        s(
            "get v\r\n",
            format!("VALUE v 0 {}\r\n{v}\r\nEND\r\n", v.len()),
        ),
        s(
            format!("set big 0 0 {}\r\n{big}\r\nget k\r\n", big.len()),
            "SERVER_ERROR object too large for cache\r\nEND\r\n",
        ),
    ]
}

fn no_cas() -> Vec<Step> {
    vec![
        s(
            "set a 0 0 1\r\nv\r\ngets a\r\n",
            "STORED\r\nVALUE a 0 1 0\r\nv\r\nEND\r\n",
        ),
        s("gats 100 a\r\n", "VALUE a 0 1 0\r\nv\r\nEND\r\n"),
        // Without CAS no cas command can succeed.
        s("cas a 0 0 1 0\r\nw\r\n", "EXISTS\r\n"),
        s("cas a 0 0 1 5\r\nw\r\n", "EXISTS\r\n"),
        s("cas nope 0 0 1 0\r\nw\r\n", "NOT_FOUND\r\n"),
        s(
            "set a 0 0 1\r\nx\r\ngets a\r\n",
            "STORED\r\nVALUE a 0 1 0\r\nx\r\nEND\r\n",
        ),
    ]
}

fn no_flush() -> Vec<Step> {
    vec![
        s("set a 0 0 1\r\nv\r\n", "STORED\r\n"),
        s("flush_all\r\n", "CLIENT_ERROR flush_all not allowed\r\n"),
        s("flush_all 0\r\n", "CLIENT_ERROR flush_all not allowed\r\n"),
        s("flush_all noreply\r\nversion\r\n", "VERSION 1.6.18\r\n"),
        s("get a\r\n", "VALUE a 0 1\r\nv\r\nEND\r\n"),
    ]
}

table_tests!(storage_commands, storage(), &[]);
table_tests!(arithmetic_commands, arith(), &[]);
table_tests!(error_replies, errors(), &[]);
table_tests!(noreply_everywhere, noreply(), &[]);
table_tests!(value_over_1m_is_swallowed, too_large(), &[]);
table_tests!(item_size_raised_with_i, item_size_2m(), &["-I", "2m"]);
table_tests!(cas_disabled_with_c, no_cas(), &["-C"]);
table_tests!(flush_disabled_with_f, no_flush(), &["-F"]);

/// The cas unique of `key` from a `gets`/`gats` reply.
fn cas_of(reply: &[u8], key: &str) -> u64 {
    let text = String::from_utf8_lossy(reply);
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("VALUE {key} ")))
        .unwrap_or_else(|| panic!("no VALUE line for {key} in {text:?}"));
    let f: Vec<&str> = line.split(' ').collect();
    assert_eq!(f.len(), 5, "gets line {line:?}");
    f[4].parse().unwrap()
}

fn gets_and_cas<S: Read + Write>(st: &mut S) {
    let r = common::request(st, b"set a 1 0 2\r\nv1\r\ngets a\r\n", b"END\r\n");
    assert!(r.starts_with(b"STORED\r\nVALUE a 1 2 "), "{}", show(&r));
    assert!(r.ends_with(b"\r\nv1\r\nEND\r\n"), "{}", show(&r));
    let c1 = cas_of(&r, "a");
    assert_ne!(c1, 0);
    // gats gives the same unique; touch does not change it.
    let r = common::request(st, b"touch a 1000\r\ngats 1000 a\r\n", b"END\r\n");
    assert!(r.starts_with(b"TOUCHED\r\n"), "{}", show(&r));
    assert_eq!(cas_of(&r, "a"), c1);
    // A wrong unique: EXISTS, value unchanged.
    let req = format!("cas a 0 0 2 {}\r\nv2\r\nget a\r\n", c1 + 1000);
    let r = common::request(st, req.as_bytes(), b"END\r\n");
    assert_eq!(show(&r), show(b"EXISTS\r\nVALUE a 1 2\r\nv1\r\nEND\r\n"));
    // The right one: STORED, and the unique changes.
    let req = format!("cas a 2 0 2 {c1}\r\nv2\r\ngets a\r\n");
    let r = common::request(st, req.as_bytes(), b"END\r\n");
    assert!(r.starts_with(b"STORED\r\nVALUE a 2 2 "), "{}", show(&r));
    let c2 = cas_of(&r, "a");
    assert_ne!(c2, c1);
    // The old unique no longer works.
    let req = format!("cas a 0 0 2 {c1}\r\nv3\r\n");
    assert_eq!(
        show(&common::request(st, req.as_bytes(), b"\r\n")),
        show(b"EXISTS\r\n")
    );
    // Every store and incr gives a new unique.
    let mut uniques = Vec::new();
    for req in [
        &b"set n 0 0 1\r\n1\r\ngets n\r\n"[..],
        b"incr n 1\r\ngets n\r\n",
        b"append n 0 0 1\r\n0\r\ngets n\r\n",
    ] {
        uniques.push(cas_of(&common::request(st, req, b"END\r\n"), "n"));
    }
    assert!(
        uniques[0] != uniques[1] && uniques[1] != uniques[2],
        "{uniques:?}"
    );
    // cas on a missing key.
    let r = common::request(st, b"cas gone 0 0 1 1\r\nv\r\n", b"\r\n");
    assert_eq!(show(&r), show(b"NOT_FOUND\r\n"));
    // A deleted key's unique does not resurrect it.
    let r = common::request(st, b"gets a\r\n", b"END\r\n");
    let c = cas_of(&r, "a");
    let req = format!("delete a\r\ncas a 0 0 1 {c}\r\nv\r\nget a\r\n");
    let r = common::request(st, req.as_bytes(), b"END\r\n");
    assert_eq!(show(&r), show(b"DELETED\r\nNOT_FOUND\r\nEND\r\n"));
    // Multi-key gets: one line per key found.
    let r = common::request(
        st,
        b"set x 0 0 1\r\n1\r\nset y 0 0 1\r\n2\r\ngets x nope y\r\n",
        b"END\r\n",
    );
    let cx = cas_of(&r, "x");
    let cy = cas_of(&r, "y");
    assert!(cy > cx, "{}", show(&r));
    let want =
        format!("STORED\r\nSTORED\r\nVALUE x 0 1 {cx}\r\n1\r\nVALUE y 0 1 {cy}\r\n2\r\nEND\r\n");
    assert_eq!(show(&r), show(want.as_bytes()));
}

#[test]
fn gets_and_cas_tcp() {
    let server = common::start_server(&[]);
    gets_and_cas(&mut server.tcp());
}

#[test]
fn gets_and_cas_unix() {
    let server = common::start_unix_server(&[]);
    gets_and_cas(&mut server.unix());
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn expiry<S: Read + Write>(st: &mut S) {
    let now = unix_now();
    let table = vec![
        // Negative: expired at once.
        s("set neg 0 -1 1\r\nv\r\nget neg\r\n", "STORED\r\nEND\r\n"),
        s(
            "set t 0 0 1\r\nv\r\ntouch t -1\r\nget t\r\n",
            "STORED\r\nTOUCHED\r\nEND\r\n",
        ),
        // gat with -1 still returns the item this once.
        s(
            "set g 0 0 1\r\nv\r\ngat -1 g\r\nget g\r\n",
            "STORED\r\nVALUE g 0 1\r\nv\r\nEND\r\nEND\r\n",
        ),
        // Over 30 days: an absolute unix time.
        s(
            format!("set past 0 {} 1\r\nv\r\nget past\r\n", now - 100),
            "STORED\r\nEND\r\n",
        ),
        s(
            format!("set future 0 {} 1\r\nv\r\nget future\r\n", now + 100),
            "STORED\r\nVALUE future 0 1\r\nv\r\nEND\r\n",
        ),
        s(
            format!("set tp 0 0 1\r\nv\r\ntouch tp {}\r\nget tp\r\n", now - 100),
            "STORED\r\nTOUCHED\r\nEND\r\n",
        ),
        // Short relative times: alive now.
        s(
            "set one 0 1 1\r\nv\r\nget one\r\n",
            "STORED\r\nVALUE one 0 1\r\nv\r\nEND\r\n",
        ),
        s(
            "set tt 0 0 1\r\nv\r\ntouch tt 1\r\n",
            "STORED\r\nTOUCHED\r\n",
        ),
        s(
            "set ga 0 0 1\r\nv\r\ngat 1 ga\r\n",
            "STORED\r\nVALUE ga 0 1\r\nv\r\nEND\r\n",
        ),
        s("set keep 0 100 1\r\nv\r\n", "STORED\r\n"),
        // A delayed flush_all: items stay until then.
        s(
            "set fl 0 0 1\r\nv\r\nflush_all 2\r\nget fl\r\n",
            "STORED\r\nOK\r\nVALUE fl 0 1\r\nv\r\nEND\r\n",
        ),
    ];
    run_table(st, &table, "expiry before");
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(2600));
    let table = vec![
        s("get one\r\n", "END\r\n"),
        s("get tt\r\n", "END\r\n"),
        s("get ga\r\n", "END\r\n"),
        s("get fl keep\r\n", "END\r\n"),
        s(
            "set new 0 0 1\r\nv\r\nget new\r\n",
            "STORED\r\nVALUE new 0 1\r\nv\r\nEND\r\n",
        ),
        s(
            format!("set future 0 {} 1\r\nv\r\nget future\r\n", now + 100),
            "STORED\r\nVALUE future 0 1\r\nv\r\nEND\r\n",
        ),
    ];
    assert!(start.elapsed() < Duration::from_secs(10));
    run_table(st, &table, "expiry after");
}

#[test]
fn expiry_tcp() {
    let server = common::start_server(&[]);
    expiry(&mut server.tcp());
}

#[test]
fn expiry_unix() {
    let server = common::start_unix_server(&[]);
    expiry(&mut server.unix());
}

#[test]
fn expiry_memcached() {
    let server = start_memcached(&[]);
    expiry(&mut server.tcp());
}

/// The child has exited within `secs`.
fn exited(server: &mut common::Server, secs: u64) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(st) = server.child.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn shutdown_needs_a() {
    let mut server = common::start_server(&[]);
    let mut c = server.tcp();
    let r = common::request(&mut c, b"shutdown\r\n", b"\r\n");
    assert_eq!(show(&r), show(b"ERROR: shutdown not enabled\r\n"));
    assert!(exited(&mut server, 1).is_none(), "server exited");
    let r = common::request(&mut c, b"version\r\n", b"\r\n");
    assert_eq!(show(&r), show(b"VERSION 1.6.18\r\n"));
}

#[test]
fn shutdown_with_a_exits() {
    for unix in [false, true] {
        let mut server = if unix {
            common::start_unix_server(&["-A"])
        } else {
            common::start_server(&["-A"])
        };
        let mut c: Box<dyn ReadWrite> = if unix {
            Box::new(server.unix())
        } else {
            Box::new(server.tcp())
        };
        let r = common::request(&mut c, b"version\r\n", b"\r\n");
        assert_eq!(show(&r), show(b"VERSION 1.6.18\r\n"));
        c.write_all(b"shutdown\r\n").unwrap();
        // The connection is closed and the process goes away.
        let rest = read_n(&mut c, 1 << 20);
        assert!(rest.is_empty(), "reply to shutdown {}", show(&rest));
        let status = exited(&mut server, 5).expect("server still running after shutdown");
        assert!(status.success(), "exit status {status:?}");
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// `-M`: a full cache refuses new items instead of evicting old ones.
fn out_of_memory(mut st: std::net::TcpStream) {
    let value = "x".repeat(1000);
    let mut failed_at = None;
    for i in 0..5000 {
        let req = format!("set key{i} 0 0 1000\r\n{value}\r\n");
        let r = common::request(&mut st, req.as_bytes(), b"\r\n");
        if r != b"STORED\r\n" {
            assert_eq!(
                show(&r),
                show(b"SERVER_ERROR out of memory storing object\r\n"),
                "set #{i}"
            );
            failed_at = Some(i);
            break;
        }
    }
    let n = failed_at.expect("5 MB stored in a 1 MB cache with -M");
    assert!(n > 100, "only {n} items of 1000 bytes fit in 1 MB");
    // Nothing was evicted.
    let r = common::request(&mut st, b"get key0\r\n", b"END\r\n");
    assert_eq!(
        show(&r),
        show(format!("VALUE key0 0 1000\r\n{value}\r\nEND\r\n").as_bytes())
    );
    let last = format!("get key{}\r\n", n - 1);
    let r = common::request(&mut st, last.as_bytes(), b"END\r\n");
    assert!(r.starts_with(b"VALUE "), "{}", show(&r));
    // Still full; a failed set of an existing key drops the stale value.
    let req = format!("set key1 0 0 1000\r\n{value}\r\nget key1\r\n");
    let r = common::request(&mut st, req.as_bytes(), b"END\r\n");
    assert_eq!(
        show(&r),
        show(b"SERVER_ERROR out of memory storing object\r\nEND\r\n")
    );
    // Deleting frees room for an item of the same size.
    let req = format!("delete key2\r\nset again 0 0 1000\r\n{value}\r\n");
    let r = common::request(&mut st, req.as_bytes(), b"STORED\r\n");
    assert_eq!(show(&r), show(b"DELETED\r\nSTORED\r\n"));
}

#[test]
fn out_of_memory_with_m() {
    let server = common::start_server(&["-M", "-m", "1", "-I", "512k"]);
    out_of_memory(server.tcp());
}

#[test]
fn out_of_memory_with_m_memcached() {
    let server = start_memcached(&["-M", "-m", "1", "-I", "512k"]);
    out_of_memory(server.tcp());
}
