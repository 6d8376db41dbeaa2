//! Differential test: the same request corpus goes to the real memcached
//! 1.6.18 (`/usr/bin/memcached`) and to rmemcached, over TCP and over UDP,
//! and the replies must be byte-equal.
//!
//! Each case is a list of steps run in lock step on both servers (so one
//! `sleep` serves both). Every case uses its own key prefix (`cNNN_`), so
//! cases are independent; a TCP case runs on a fresh connection.
//!
//! How a reply is known to be complete: after the case bytes a sentinel
//! `version\r\n` is sent and the reply is read until it ends with the
//! server's `VERSION ...\r\n` line, which is then stripped. Cases that must
//! close the connection are read to EOF instead. Over UDP the sentinel is a
//! separate datagram with its own request id (both servers run with `-t 1`
//! so that datagrams are handled in order).
//!
//! CAS uniques differ between servers, so every `VALUE k f n CAS` line has
//! its CAS replaced by `C<i>`, `i` numbering the distinct CAS values of the
//! case in order of first appearance (equal/unequal CAS stay visible). A
//! request may say `{CAS}` (the last CAS this server returned in this case)
//! or `{CAS+1}` (a wrong one).
//!
//! UDP notes (deliberate differences, see `src/udp.rs`):
//! * memcached 1.6 sends every key of a multi-get, and every command of a
//!   datagram, as its own UDP message (each numbered from sequence 0);
//!   rmemcached sends one message per request datagram. The payloads of all
//!   messages answering one datagram are concatenated in arrival order
//!   before comparing, and rmemcached's single-message rule is checked.
//! * memcached drops multi-packet requests and, on a `set` whose value is
//!   cut short by the end of the datagram, waits for the next datagram:
//!   such cases (and anything needing several writes or more than one
//!   datagram) are TCP only.
//! * `quit` is TCP only: memcached leaves `close_after_write` set on its
//!   shared UDP connection, which then cuts every later datagram short
//!   after its first get.
//!
//! memcached 1.6.18 reads `-p 0` as "no TCP", so both servers get an
//! explicit free `-p` on top of the flags `common::start_with` passes.
//!
//! Every difference is printed (case, request, both replies, escaped) and
//! the test fails at the end if there was any. `DIFF_VERBOSE=1` also prints
//! every step with memcached's reply.

mod common;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MEMCACHED: &str = "/usr/bin/memcached";

/// How long to wait for a reply before calling it a timeout.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Largest request datagram we send (IPv4 UDP payload limit).
const MAX_DATAGRAM: usize = 65507;

/// memcached's item size limit (`-I`, default 1m).
const ITEM_SIZE_MAX: usize = 1024 * 1024;

// ---------------------------------------------------------------------------
// The corpus.

#[derive(Debug, Clone)]
enum Step {
    /// Send, then read the whole reply (sentinel-framed).
    Send(Vec<u8>),
    /// Send; the server must close the connection: read to EOF.
    Close(Vec<u8>),
    /// Send without reading (part of a request split across writes).
    Write(Vec<u8>),
    /// Sleep this many milliseconds (once, for both servers).
    Sleep(u64),
}

#[derive(Debug)]
struct Case {
    name: String,
    steps: Vec<Step>,
    /// Whether the case also runs over UDP (one datagram per step).
    udp: bool,
}

#[derive(Default)]
struct Corpus {
    cases: Vec<Case>,
}

impl Corpus {
    /// Start a new case; returns its key prefix.
    fn case(&mut self, name: &str) -> String {
        let k = format!("c{:03}_", self.cases.len());
        self.cases.push(Case {
            name: name.to_string(),
            steps: Vec::new(),
            udp: true,
        });
        k
    }

    fn cur(&mut self) -> &mut Case {
        self.cases.last_mut().expect("no case started")
    }

    fn send(&mut self, req: impl AsRef<[u8]>) {
        let req = req.as_ref().to_vec();
        if req.len() + 8 > MAX_DATAGRAM {
            self.cur().udp = false;
        }
        self.cur().steps.push(Step::Send(req));
    }

    fn close(&mut self, req: impl AsRef<[u8]>) {
        let req = req.as_ref().to_vec();
        if req.len() + 8 > MAX_DATAGRAM {
            self.cur().udp = false;
        }
        self.cur().steps.push(Step::Close(req));
    }

    fn write(&mut self, req: impl AsRef<[u8]>) {
        self.cur().udp = false;
        self.cur().steps.push(Step::Write(req.as_ref().to_vec()));
    }

    fn sleep(&mut self, ms: u64) {
        self.cur().steps.push(Step::Sleep(ms));
    }

    /// Not over UDP (memcached waits for another datagram, or the case
    /// needs stream semantics).
    fn tcp_only(&mut self) {
        self.cur().udp = false;
    }
}

/// A key of exactly `len` bytes starting with the case prefix.
fn long_key(k: &str, len: usize) -> String {
    let mut s = k.to_string();
    while s.len() < len {
        s.push('x');
    }
    s
}

/// Largest value memcached stores for a key of `nkey` bytes: the item
/// (48-byte header, 8-byte CAS, key + NUL, 4 bytes of flags when non-zero,
/// value + CRLF) must fit in `ITEM_SIZE_MAX`.
fn max_value(nkey: usize, flags: u32) -> usize {
    ITEM_SIZE_MAX - 48 - 8 - (nkey + 1) - if flags != 0 { 4 } else { 0 } - 2
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn corpus() -> Vec<Case> {
    let mut c = Corpus::default();
    let now = unix_now();

    // --- storage commands -------------------------------------------------
    let k = c.case("set then get");
    c.send(format!("set {k}a 0 0 5\r\nhello\r\nget {k}a\r\n"));
    c.send(format!("get {k}a\r\n"));

    let k = c.case("set with max flags");
    c.send(format!("set {k}a 4294967295 0 1\r\nx\r\nget {k}a\r\n"));

    let k = c.case("flags 4294967296 (64-bit strtoul truncation)");
    c.send(format!("set {k}a 4294967296 0 1\r\nx\r\nget {k}a\r\n"));
    c.send(format!("set {k}b 4294967297 0 1\r\ny\r\nget {k}b\r\n"));

    let k = c.case("zero-length value");
    c.send(format!("set {k}a 3 0 0\r\n\r\nget {k}a\r\n"));

    let k = c.case("overwrite changes flags and length");
    c.send(format!(
        "set {k}a 1 0 1\r\nx\r\nset {k}a 2 0 2\r\nyy\r\nget {k}a\r\n"
    ));

    let k = c.case("binary-safe value");
    c.send(
        [
            format!("set {k}a 0 0 9\r\n").as_bytes(),
            b"a\r\nb\0c\xff\r\n\r\n",
            format!("get {k}a\r\n").as_bytes(),
        ]
        .concat(),
    );

    let k = c.case("add");
    c.send(format!(
        "add {k}a 1 0 1\r\nx\r\nadd {k}a 2 0 1\r\ny\r\nget {k}a\r\n"
    ));

    let k = c.case("replace");
    c.send(format!(
        "replace {k}a 0 0 1\r\nx\r\nget {k}a\r\nset {k}a 1 0 1\r\nx\r\n\
         replace {k}a 2 0 2\r\nyy\r\nget {k}a\r\n"
    ));

    let k = c.case("append/prepend");
    c.send(format!(
        "append {k}a 0 0 1\r\nx\r\nprepend {k}a 0 0 1\r\nx\r\nget {k}a\r\n\
         set {k}a 5 0 3\r\nmid\r\nappend {k}a 9 0 4\r\n_end\r\n\
         prepend {k}a 7 0 6\r\nstart_\r\nget {k}a\r\n"
    ));

    let k = c.case("append/prepend empty values");
    c.send(format!(
        "set {k}a 0 0 0\r\n\r\nappend {k}a 0 0 0\r\n\r\nprepend {k}a 0 0 2\r\nab\r\n\
         append {k}a 0 0 0\r\n\r\nget {k}a\r\n"
    ));

    let k = c.case("store on expired/deleted key");
    c.send(format!(
        "set {k}a 0 -1 1\r\nx\r\nadd {k}a 0 0 1\r\ny\r\nget {k}a\r\n\
         set {k}b 0 -1 1\r\nx\r\nreplace {k}b 0 0 1\r\ny\r\nappend {k}b 0 0 1\r\ny\r\nget {k}b\r\n\
         set {k}c 0 0 1\r\nx\r\ndelete {k}c\r\nappend {k}c 0 0 1\r\nz\r\nadd {k}c 0 0 1\r\nw\r\nget {k}c\r\n"
    ));

    let k = c.case("pipelined sets in one write");
    let mut req = String::new();
    for i in 0..50 {
        req.push_str(&format!(
            "set {k}{i} {i} 0 {}\r\n{i}\r\n",
            i.to_string().len()
        ));
    }
    req.push_str(&format!("get {k}0 {k}17 {k}49 {k}50\r\n"));
    c.send(req);

    let k = c.case("value of 3000 bytes (multi-datagram UDP reply)");
    let v = "0123456789".repeat(300);
    c.send(format!("set {k}a 0 0 3000\r\n{v}\r\nget {k}a\r\n"));

    let k = c.case("multi-get of large values");
    let v = "abcdefghij".repeat(100);
    c.send(format!(
        "set {k}a 1 0 1000\r\n{v}\r\nset {k}b 2 0 1000\r\n{v}\r\nset {k}c 3 0 1000\r\n{v}\r\n"
    ));
    c.send(format!("get {k}a {k}b {k}c {k}missing {k}a\r\n"));
    c.send(format!("gets {k}c {k}b\r\n"));

    // --- get / gets / bget ------------------------------------------------
    let k = c.case("multi-get with misses and duplicates");
    c.send(format!(
        "set {k}a 1 0 1\r\nA\r\nset {k}b 2 0 2\r\nBB\r\nget {k}a {k}x {k}b {k}a\r\n\
         gets {k}a {k}b {k}y\r\n"
    ));

    let k = c.case("get of 30 keys (more than MAX_TOKENS)");
    c.send(format!(
        "set {k}1 0 0 1\r\n1\r\nset {k}22 0 0 2\r\n22\r\nset {k}23 0 0 2\r\n23\r\n\
         set {k}24 0 0 2\r\n24\r\nset {k}30 0 0 2\r\n30\r\n"
    ));
    let keys: Vec<String> = (1..=30).map(|i| format!("{k}{i}")).collect();
    c.send(format!("get {}\r\n", keys.join(" ")));
    c.send(format!("gets {}\r\n", keys.join(" ")));
    c.send(format!("get {} \r\n", keys[..22].join(" ")));
    c.send(format!("get {}\r\n", keys[..23].join(" ")));
    c.send(format!("get {} \r\n", keys[..23].join(" ")));

    let k = c.case("get line longer than 2048 bytes");
    c.send(format!("set {k}a 0 0 1\r\na\r\n"));
    let keys: Vec<String> = (0..150).map(|i| format!("{k}k{i:04}_pad")).collect();
    c.send(format!("get {} {k}a\r\n", keys.join(" ")));

    let k = c.case("get with extra spaces");
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\nget  {k}a   {k}a  \r\n   get {k}a\r\nget {k}a \r\n"
    ));

    let k = c.case("bget");
    c.send(format!("set {k}a 0 0 1\r\na\r\nbget {k}a {k}b\r\nbget\r\n"));

    let k = c.case("get without keys");
    c.send(format!("get\r\ngets\r\nget \r\ngets  \r\nbget\r\n{k}\r\n"));

    // --- cas ----------------------------------------------------------------
    let k = c.case("gets then cas");
    c.send(format!("set {k}a 0 0 1\r\nx\r\ngets {k}a\r\n"));
    c.send(format!("cas {k}a 5 0 1 {{CAS}}\r\ny\r\nget {k}a\r\n"));
    c.send(format!("cas {k}a 0 0 1 {{CAS}}\r\nz\r\ngets {k}a\r\n"));
    c.send(format!("cas {k}a 0 0 1 {{CAS+1}}\r\nz\r\ngets {k}a\r\n"));
    c.send(format!(
        "cas {k}a 0 0 2 {{CAS}} noreply\r\nzz\r\ngets {k}a\r\n"
    ));
    c.send(format!(
        "cas {k}a 0 0 2 {{CAS+1}} noreply\r\nqq\r\ngets {k}a\r\n"
    ));

    let k = c.case("cas on missing key");
    c.send(format!(
        "cas {k}a 0 0 1 1\r\nx\r\ncas {k}a 0 0 1 0\r\nx\r\nget {k}a\r\n"
    ));

    let k = c.case("cas with unique 0");
    c.send(format!(
        "set {k}a 0 0 1\r\nx\r\ncas {k}a 0 0 1 0\r\ny\r\nget {k}a\r\n"
    ));

    let k = c.case("cas bad unique");
    c.send(format!(
        "set {k}a 0 0 1\r\nx\r\ncas {k}a 0 0 1 abc\r\ny\r\ncas {k}a 0 0 1 -1\r\ny\r\n\
         cas {k}a 0 0 1 18446744073709551616\r\ny\r\ncas {k}a 0 0 1 1x\r\ny\r\nget {k}a\r\n"
    ));

    let k = c.case("cas wrong token counts");
    c.send(format!(
        "cas {k}a 0 0 1\r\nx\r\ncas {k}a 0 0 1 1 noreply extra\r\nx\r\ncas {k}a\r\n"
    ));

    let k = c.case("cas after delete");
    c.send(format!("set {k}a 0 0 1\r\nx\r\ngets {k}a\r\n"));
    c.send(format!(
        "delete {k}a\r\ncas {k}a 0 0 1 {{CAS}}\r\ny\r\nget {k}a\r\n"
    ));

    let k = c.case("cas unique across touch/append/incr");
    c.send(format!("set {k}a 0 0 1\r\n1\r\ngets {k}a\r\n"));
    c.send(format!("touch {k}a 1000\r\ngets {k}a\r\n"));
    c.send(format!("cas {k}a 0 0 1 {{CAS}}\r\n2\r\ngets {k}a\r\n"));
    c.send(format!("append {k}a 0 0 1\r\n0\r\ngets {k}a\r\n"));
    c.send(format!("incr {k}a 1\r\ngets {k}a\r\n"));
    c.send(format!("decr {k}a 1\r\ngets {k}a\r\n"));
    c.send(format!("gat 1000 {k}a\r\ngets {k}a\r\n"));
    c.send(format!("cas {k}a 0 0 1 {{CAS}}\r\n3\r\ngets {k}a\r\n"));

    // --- gat / gats / touch ---------------------------------------------------
    let k = c.case("gat and gats");
    c.send(format!(
        "set {k}a 1 0 1\r\na\r\nset {k}b 2 0 1\r\nb\r\ngat 100 {k}a\r\ngats 100 {k}a {k}x {k}b\r\n\
         gat 0 {k}b\r\nget {k}a {k}b\r\n"
    ));

    let k = c.case("gat errors");
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\ngat abc {k}a\r\ngat 1x {k}a\r\ngat 100\r\ngat\r\ngats\r\n\
         gat  100  {k}a\r\n"
    ));

    let k = c.case("gat with negative exptime expires");
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\ngats -1 {k}a\r\nget {k}a\r\n"
    ));

    let k = c.case("touch");
    c.send(format!(
        "touch {k}a 100\r\nset {k}a 0 0 1\r\na\r\ntouch {k}a 100\r\ntouch {k}a abc\r\n\
         touch {k}a\r\ntouch {k}a 1 noreply x\r\ntouch\r\nget {k}a\r\n"
    ));

    let k = c.case("touch with negative exptime expires");
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\ntouch {k}a -1\r\nget {k}a\r\n"
    ));

    let k = c.case("touch with absolute times");
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\nset {k}b 0 0 1\r\nb\r\ntouch {k}a {}\r\ntouch {k}b {}\r\n\
         get {k}a {k}b\r\n",
        now + 3600,
        now - 3600
    ));

    // --- delete -----------------------------------------------------------------
    let k = c.case("delete");
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\ndelete {k}a\r\ndelete {k}a\r\nget {k}a\r\n"
    ));

    let k = c.case("delete k 0");
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\ndelete {k}a 0\r\ndelete {k}a 0\r\nget {k}a\r\n"
    ));

    let k = c.case("delete k 0 noreply");
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\ndelete {k}a 0 noreply\r\nget {k}a\r\ndelete {k}a 0 noreply\r\n"
    ));

    let k = c.case("delete k noreply");
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\ndelete {k}a noreply\r\nget {k}a\r\ndelete {k}a noreply\r\n"
    ));

    let k = c.case("delete k 5 is an error");
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\ndelete {k}a 5\r\nget {k}a\r\ndelete {k}a 5 noreply\r\nget {k}a\r\n"
    ));

    let k = c.case("delete bad forms");
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\ndelete {k}a 0 0\r\ndelete {k}a x noreply\r\ndelete {k}a noreply 0\r\n\
         delete\r\ndelete {k}a 0 noreply x\r\ndelete {k}a 00\r\nget {k}a\r\n"
    ));

    // --- incr / decr ------------------------------------------------------------
    let k = c.case("incr/decr basics");
    c.send(format!(
        "set {k}a 0 0 1\r\n1\r\nincr {k}a 1\r\nincr {k}a 10\r\ndecr {k}a 5\r\ndecr {k}a 100\r\n\
         get {k}a\r\nincr {k}x 1\r\ndecr {k}x 1\r\n"
    ));

    let k = c.case("incr wraps at 2^64");
    c.send(format!(
        "set {k}a 0 0 20\r\n18446744073709551615\r\nincr {k}a 1\r\nget {k}a\r\n\
         set {k}b 0 0 20\r\n18446744073709551615\r\nincr {k}b 2\r\nget {k}b\r\n\
         set {k}c 0 0 1\r\n5\r\nincr {k}c 18446744073709551615\r\nget {k}c\r\n"
    ));

    let k = c.case("decr floors at 0");
    c.send(format!(
        "set {k}a 0 0 1\r\n5\r\ndecr {k}a 6\r\nget {k}a\r\ndecr {k}a 1\r\n\
         set {k}b 0 0 20\r\n18446744073709551615\r\ndecr {k}b 18446744073709551615\r\nget {k}b\r\n"
    ));

    let k = c.case("decr shrinking pads with spaces");
    c.send(format!(
        "set {k}a 0 0 3\r\n100\r\ndecr {k}a 95\r\nget {k}a\r\nincr {k}a 1\r\nget {k}a\r\n\
         incr {k}a 1000\r\nget {k}a\r\ndecr {k}a 1006\r\nget {k}a\r\n"
    ));

    let k = c.case("incr growing the value");
    c.send(format!(
        "set {k}a 7 0 2\r\n99\r\nincr {k}a 1\r\nget {k}a\r\nincr {k}a 18446744073709551000\r\nget {k}a\r\n"
    ));

    let k = c.case("incr on non-numeric values");
    for (i, v) in [
        "abc",
        "12abc",
        "12 abc",
        "",
        "-5",
        "+5",
        " 5",
        "123456789012345678901234",
        "0x10",
        "5\r\n6",
        "1.5",
        "18446744073709551616",
    ]
    .iter()
    .enumerate()
    {
        c.send(format!(
            "set {k}{i} 0 0 {}\r\n{v}\r\nincr {k}{i} 1\r\nget {k}{i}\r\ndecr {k}{i} 1\r\nget {k}{i}\r\n",
            v.len()
        ));
    }

    let k = c.case("incr bad delta");
    c.send(format!(
        "set {k}a 0 0 1\r\n5\r\nincr {k}a abc\r\nincr {k}a -1\r\nincr {k}a 18446744073709551616\r\n\
         incr {k}a 1.5\r\ndecr {k}a -0\r\nincr {k}a +3\r\ndecr {k}a 1x\r\nincr {k}x abc\r\nget {k}a\r\n"
    ));

    let k = c.case("incr keeps flags");
    c.send(format!(
        "set {k}a 42 0 1\r\n5\r\nincr {k}a 1\r\nget {k}a\r\nincr {k}a 100\r\nget {k}a\r\n"
    ));

    let k = c.case("incr/decr token counts");
    c.send(format!(
        "set {k}a 0 0 1\r\n5\r\nincr {k}a\r\ndecr {k}a\r\nincr {k}a 1 noreply x\r\nincr\r\nget {k}a\r\n"
    ));

    // --- noreply on every command ---------------------------------------------
    let k = c.case("noreply storage commands");
    c.send(format!(
        "set {k}a 1 0 1 noreply\r\na\r\nadd {k}a 0 0 1 noreply\r\nb\r\nadd {k}b 2 0 1 noreply\r\nb\r\n\
         replace {k}c 0 0 1 noreply\r\nc\r\nreplace {k}b 3 0 1 noreply\r\nB\r\n\
         append {k}a 0 0 1 noreply\r\n+\r\nprepend {k}a 0 0 1 noreply\r\n-\r\n\
         append {k}z 0 0 1 noreply\r\n+\r\nget {k}a {k}b {k}c {k}z\r\n"
    ));

    let k = c.case("noreply arithmetic, touch, delete");
    c.send(format!(
        "set {k}a 0 0 1\r\n5\r\nincr {k}a 10 noreply\r\ndecr {k}a 3 noreply\r\nget {k}a\r\n\
         incr {k}x 1 noreply\r\ndecr {k}x 1 noreply\r\ntouch {k}a 100 noreply\r\n\
         touch {k}x 100 noreply\r\ndelete {k}a noreply\r\ndelete {k}a noreply\r\nget {k}a\r\n"
    ));

    let k = c.case("noreply swallows errors");
    c.send(format!(
        "set {k}a abc 0 1 noreply\r\nx\r\nset {k}b 0 0 1 noreply\r\n5\r\nincr {k}b abc noreply\r\n\
         set {k}c 0 0 1 noreply\r\nc\r\nincr {k}c 1 noreply\r\ntouch {k}b abc noreply\r\n\
         verbosity abc noreply\r\nflush_all abc noreply\r\nget {k}a {k}b {k}c\r\n"
    ));

    let k = c.case("noreply in the wrong place");
    c.send(format!(
        "set {k}a 0 0 1 NOREPLY\r\na\r\nset {k}b 0 0 1 noreply extra\r\nb\r\n\
         set {k}c noreply 0 0 1\r\nc\r\nget {k}a noreply\r\nget {k}a {k}b {k}c\r\n"
    ));

    let k = c.case("noreply then plain command");
    c.send(format!(
        "set {k}a 0 0 1 noreply\r\na\r\nget {k}a\r\nversion\r\n"
    ));

    // --- expiry -------------------------------------------------------------------
    let k = c.case("negative exptime is expired at once");
    c.send(format!(
        "set {k}a 0 -1 1\r\na\r\nget {k}a\r\nset {k}b 0 -1000000 1\r\nb\r\nget {k}b\r\n\
         set {k}c 0 -2147483648 1\r\nc\r\nget {k}c\r\n"
    ));

    let k = c.case("absolute exptime in the past");
    c.send(format!(
        "set {k}a 0 1000000000 1\r\na\r\nset {k}b 0 {} 1\r\nb\r\nset {k}c 0 2592001 1\r\nc\r\n\
         get {k}a {k}b {k}c\r\n",
        now - 10
    ));

    let k = c.case("absolute exptime in the future, 30-day delta");
    c.send(format!(
        "set {k}a 0 {} 1\r\na\r\nset {k}b 0 2592000 1\r\nb\r\nset {k}c 0 100 1\r\nc\r\n\
         get {k}a {k}b {k}c\r\n",
        now + 3600
    ));

    let k = c.case("exptime parsing");
    c.send(format!(
        "set {k}a 0 abc 1\r\na\r\nset {k}b 0 1.5 1\r\nb\r\nset {k}c 0 99999999999 1\r\nc\r\n\
         set {k}d 0 +100 1\r\nd\r\nset {k}e 0 4294967396 1\r\ne\r\nget {k}a {k}b {k}c {k}d {k}e\r\n"
    ));

    // --- key length ------------------------------------------------------------------
    let k = c.case("key of 250 bytes");
    let k250 = long_key(&k, 250);
    c.send(format!(
        "set {k250} 0 0 1\r\na\r\nget {k250}\r\ngets {k250}\r\nappend {k250} 0 0 1\r\n1\r\n\
         touch {k250} 100\r\ngat 100 {k250}\r\nincr {k250} 1\r\ndelete {k250}\r\n"
    ));

    // One command per step: memcached culls every reply not yet written
    // when a get meets a too-long key (see the next cases).
    let k = c.case("key of 251 bytes");
    let k251 = long_key(&k, 251);
    for cmd in [
        format!("set {k251} 0 0 1\r\na\r\n"),
        format!("get {k251}\r\n"),
        format!("gets {k251}\r\n"),
        format!("add {k251} 0 0 1\r\na\r\n"),
        format!("cas {k251} 0 0 1 1\r\na\r\n"),
        format!("touch {k251} 100\r\n"),
        format!("gat 100 {k251}\r\n"),
        format!("incr {k251} 1\r\n"),
        format!("decr {k251} 1\r\n"),
        format!("delete {k251}\r\n"),
        format!("delete {k251} noreply\r\n"),
    ] {
        c.send(cmd);
    }

    let k = c.case("key of 251 bytes in a multi-get");
    let k251 = long_key(&k, 251);
    c.send(format!("set {k}a 0 0 1\r\na\r\n"));
    c.send(format!("get {k}a {k251} {k}a\r\n"));
    c.send(format!("get {k251} {k}a\r\n"));
    c.send(format!("gets {k}a {k}a {k251}\r\n"));
    c.send(format!("get {k}a\r\nget {k251}\r\n"));

    // memcached quirk: a get with a too-long key drops (conn_release_items)
    // every reply queued since the last write, i.e. the replies of earlier
    // pipelined commands too (a get flushes, other commands do not).
    let k = c.case("key of 251 bytes in a get drops earlier queued replies");
    let k251 = long_key(&k, 251);
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\ntouch {k}a 100\r\nget {k251}\r\nget {k}a\r\n"
    ));

    let k = c.case("key of 251 bytes with noreply");
    let k251 = long_key(&k, 251);
    c.send(format!(
        "set {k251} 0 0 1 noreply\r\na\r\nincr {k251} 1 noreply\r\ntouch {k251} 1 noreply\r\nversion\r\n"
    ));

    // --- flush_all -----------------------------------------------------------------
    let k = c.case("flush_all");
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\nflush_all\r\nget {k}a\r\nset {k}b 0 0 1\r\nb\r\nget {k}b\r\n"
    ));

    let k = c.case("flush_all 0");
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\nflush_all 0\r\nget {k}a\r\nadd {k}a 0 0 1\r\nA\r\nget {k}a\r\n"
    ));

    let k = c.case("flush_all noreply");
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\nflush_all noreply\r\nget {k}a\r\nset {k}b 0 0 1\r\nb\r\n\
         flush_all 0 noreply\r\nget {k}b\r\n"
    ));

    let k = c.case("flush_all negative delay");
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\nflush_all -1\r\nget {k}a\r\n"
    ));

    let k = c.case("flush_all bad arguments");
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\nflush_all abc\r\nflush_all 1x\r\nflush_all noreply 0\r\n\
         flush_all 0 noreply x\r\nflush_all 1 2 3\r\nget {k}a\r\n"
    ));

    let k = c.case("flush_all with a future delay");
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\nflush_all 100\r\nget {k}a\r\nflush_all 100 noreply\r\nget {k}a\r\n"
    ));
    // Cancel the pending flush so later cases are not affected.
    c.send("flush_all\r\n");
    c.send(format!("get {k}a\r\nset {k}b 0 0 1\r\nb\r\nget {k}b\r\n"));

    let k = c.case("flush_all 1 (takes effect at once)");
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\nflush_all 1\r\nget {k}a\r\n"
    ));
    c.send("flush_all\r\n");

    // --- other commands ---------------------------------------------------------------
    c.case("version");
    c.send("version\r\n");
    c.send("version extra args\r\nVERSION\r\nversion noreply\r\n");

    c.case("verbosity");
    c.send(
        "verbosity 1\r\nverbosity\r\nverbosity abc\r\nverbosity -1\r\nverbosity 1 noreply\r\n\
         verbosity 1 2 3\r\nverbosity 4294967296\r\nverbosity 0\r\n",
    );

    c.case("stats detail errors");
    c.send("stats detail x\r\nstats detail\r\nstats detail on\r\nstats detail off\r\n");
    c.send("stats nonsense\r\nstats cachedump\r\nstats cachedump 1\r\nstats reset\r\n");

    c.case("shutdown not enabled");
    c.send("shutdown\r\nshutdown graceful\r\nshutdown now\r\n");

    // --- bad input -------------------------------------------------------------------
    let k = c.case("unknown commands");
    c.send(format!(
        "foo\r\nbogus a b c\r\nGETS {k}a\r\nx\r\nSET {k}a 0 0 1\r\nsetx {k}a 0 0 1\r\n\
         gx {k}a\r\ngetx {k}a\r\ndeletex {k}a\r\nincrx {k}a 1\r\ntouchx {k}a 1\r\n\
         casx {k}a\r\nappendx {k}a\r\nreplacex {k}a 0 0 1\r\nz\r\nflush\r\n"
    ));

    let k = c.case("too few tokens");
    c.send(format!(
        "set {k}a 0 0\r\nset {k}a 0\r\nset {k}a\r\nset\r\nadd {k}a 0 0\r\nreplace {k}a 0\r\n\
         append {k}a\r\nprepend {k}a 0 0\r\ncas {k}a 0 0 1\r\nincr {k}a\r\ndecr {k}a\r\n\
         touch {k}a\r\ngat\r\nget {k}a\r\n"
    ));

    let k = c.case("too many tokens");
    c.send(format!(
        "set {k}a 0 0 1 noreply x\r\na\r\nadd {k}a 0 0 1 x y\r\na\r\nincr {k}a 1 noreply x\r\n\
         touch {k}a 1 noreply x\r\nverbosity 1 noreply x\r\nget {k}a\r\n"
    ));

    let k = c.case("more than 24 tokens");
    let many = vec!["x"; 30].join(" ");
    c.send(format!(
        "set {k}a 0 0 1 {many}\r\na\r\nincr {k}a 1 {many}\r\nfoo {many}\r\nget {k}a\r\n"
    ));

    let k = c.case("non-numeric flags/exptime/length");
    c.send(format!(
        "set {k}a abc 0 1\r\na\r\nset {k}a 0 abc 1\r\na\r\nset {k}a 0 0 abc\r\na\r\n\
         set {k}a 0 0 1x\r\na\r\nset {k}a 1.0 0 1\r\na\r\nset {k}a -1 0 1\r\na\r\n\
         set {k}a 0 0 -1\r\na\r\nset {k}a 0 0 +1\r\na\r\nget {k}a\r\n"
    ));

    let k = c.case("number forms: signs, zeros, wrap-around, C whitespace");
    c.send(format!(
        "set {k}a +5 0 1\r\na\r\nset {k}b -0 -0 1\r\nb\r\nset {k}c 007 0 001\r\nc\r\n\
         set {k}d -4294967295 0 1\r\nd\r\nset {k}e 0 0 1\x0b\r\ne\r\nset {k}f 0 0 1\x0c\r\nf\r\n\
         get {k}a {k}b {k}c {k}d {k}e {k}f\r\n"
    ));
    c.send(format!(
        "set {k}n 0 0 1\r\n5\r\nincr {k}n -18446744073709551615\r\nincr {k}n 007\r\n\
         decr {k}n -9223372036854775808\r\nincr {k}n 9223372036854775808\r\nget {k}n\r\n"
    ));

    let k = c.case("keys with control and non-ASCII bytes");
    let kb = k.as_bytes();
    c.send(
        [
            b"set ",
            kb,
            b"\x01\x7f 1 0 1\r\na\r\nset ",
            kb,
            "\u{e9}\u{4e2d} 2 0 1\r\nb\r\nset ".as_bytes(),
            kb,
            b"\xff\xfe 3 0 1\r\nc\r\nget ",
            kb,
            b"\x01\x7f ",
            kb,
            "\u{e9}\u{4e2d} ".as_bytes(),
            kb,
            b"\xff\xfe\r\n",
        ]
        .concat(),
    );

    let k = c.case("huge length 4294967297 (truncates to 1)");
    c.send(format!("set {k}a 0 0 4294967297\r\nx\r\nget {k}a\r\n"));

    let k = c.case("length out of range");
    c.send(format!(
        "set {k}a 0 0 2147483647\r\nset {k}a 0 0 2147483648\r\nset {k}a 0 0 99999999999999999999\r\n\
         set {k}a 0 0 -2147483648\r\nget {k}a\r\n"
    ));

    let k = c.case("bad data chunk");
    c.send(format!("set {k}a 0 0 3\r\nabcde\r\nget {k}a\r\n"));
    c.send(format!("set {k}a 0 0 1\r\nok\r\nget {k}a\r\n"));

    let k = c.case("bad data chunk keeps the old value");
    c.send(format!(
        "set {k}a 0 0 3\r\nold\r\nset {k}a 0 0 3\r\nnew!!\r\nget {k}a\r\n\
         append {k}a 0 0 1\r\nxyz\r\nget {k}a\r\n"
    ));

    let k = c.case("bad data chunk with noreply");
    c.send(format!("set {k}a 0 0 3 noreply\r\nabcde\r\nget {k}a\r\n"));

    let k = c.case("value terminated by a bare newline");
    c.send(format!("set {k}a 0 0 1\nx\nget {k}a\n"));
    c.send(format!("get {k}a\r\n"));

    let k = c.case("empty and blank lines");
    c.send(format!("\r\n\n\r\r\n   \r\n \t \r\nget {k}a\r\n"));

    let k = c.case("trailing spaces");
    c.send(format!(
        "set {k}a 0 0 1 \r\na\r\nget {k}a \r\nincr {k}a 1  \r\ndelete {k}a  \r\n\
         set {k}b 0 0 1 noreply \r\nb\r\nget {k}b   \r\n"
    ));

    let k = c.case("tabs");
    c.send(format!(
        "get\t{k}a\r\nset\t{k}a 0 0 1\r\na\r\nset {k}a 0 0 1\t\r\nb\r\nget {k}a\t\r\n\
         set {k}a\t0 0 1\r\nc\r\nincr {k}a\t1\r\nget {k}a\r\n"
    ));

    let k = c.case("newline without carriage return");
    c.send(format!(
        "set {k}a 0 0 1\na\r\nget {k}a\nincr {k}b 1\ndelete {k}a\nget {k}a\r\n"
    ));

    let k = c.case("stray carriage returns");
    c.send(format!(
        "set {k}a 0 0 1\r\na\r\nget {k}a\r\r\nget {k}a\r{k}a\r\nget \r{k}a\r\n"
    ));

    let k = c.case("NUL byte ends the line");
    c.send(
        [
            format!("set {k}a 0 0 1\0junk here\r\na\r\n").as_bytes(),
            format!("get {k}a\0{k}b\r\n").as_bytes(),
            b"\0\r\n",
        ]
        .concat(),
    );

    let k = c.case("very long line with newline");
    c.send(format!("foo {}\r\nget {k}a\r\n", "x".repeat(3000)));

    // --- connection closing --------------------------------------------------------
    c.case("GET / HTTP/1.1 closes");
    c.close("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");

    c.case("POST HTTP/1.0 closes");
    c.close("POST /x HTTP/1.0\r\n");

    c.case("HEAD HTTP/1.1 closes");
    c.close("HEAD / HTTP/1.1\r\n");

    c.case("bare HTTP/1.1 token closes");
    c.close("HTTP/1.1\r\n");

    let k = c.case("replies before HTTP close (after a get)");
    c.close(format!(
        "set {k}a 0 0 1\r\na\r\nget {k}a\r\nfoo / HTTP/2\r\nget {k}a\r\n"
    ));

    // memcached writes queued replies only at a get (or when it needs more
    // input), so replies queued since then are lost when it hangs up.
    let k = c.case("replies queued before HTTP close (no get)");
    c.close(format!(
        "set {k}a 0 0 1\r\na\r\ntouch {k}a 100\r\nGET / HTTP/1.1\r\n"
    ));

    let k = c.case("HTTP/ token on a memcached command");
    c.send(format!(
        "get / HTTP/1.1\r\ndelete HTTP/1.1\r\nfoo bar http/1.1\r\nget {k}a\r\n"
    ));

    c.case("HTTP/ token after a command starting like a known one");
    c.send("gx HTTP/1.1\r\nsx HTTP/1.1\r\nax HTTP/1.1\r\ncx HTTP/1.1\r\n");
    c.send("ix HTTP/1.1\r\ndx HTTP/1.1\r\ntx HTTP/1.1\r\nmz HTTP/1.1\r\n");

    // `quit` is TCP only: over UDP memcached 1.6.18 leaves close_after_write
    // set on the (shared) UDP connection, so that every later datagram is
    // cut short after its first get, for every client.
    c.case("quit");
    c.tcp_only();
    c.close("quit\r\n");

    let k = c.case("quit after a command, with commands after it");
    c.tcp_only();
    c.close(format!("set {k}a 0 0 1\r\na\r\nquit\r\nget {k}a\r\n"));

    c.case("quit with arguments");
    c.tcp_only();
    c.close("quit now\r\n");

    c.case("line over 2048 bytes without newline closes");
    c.tcp_only();
    c.close(format!("foo {}", "x".repeat(3000)));

    c.case("get line over 2048 bytes with 101 leading spaces closes");
    c.tcp_only();
    c.close(format!("{}get {}", " ".repeat(101), "k ".repeat(1500)));

    let k = c.case("get line over 2048 bytes split across writes");
    c.send(format!("set {k}a 0 0 1\r\na\r\n"));
    let keys: Vec<String> = (0..200).map(|i| format!("{k}k{i:04}")).collect();
    c.write(format!("get {} {k}a", keys.join(" ")));
    c.sleep(50);
    c.send(format!(" {k}a\r\n"));

    // --- split requests (TCP stream semantics) ---------------------------------------
    let k = c.case("value split across writes");
    c.write(format!("set {k}a 0 0 10\r\nabc"));
    c.sleep(20);
    c.send(format!("defghij\r\nget {k}a\r\n"));

    let k = c.case("command line split across writes");
    c.write("se");
    c.sleep(20);
    c.write(format!("t {k}a 0 0 1\r"));
    c.sleep(20);
    c.send(format!("\na\r\nget {k}a\r\n"));

    let k = c.case("value CRLF split across writes");
    c.write(format!("set {k}a 0 0 1\r\na\r"));
    c.sleep(20);
    c.send(format!("\nget {k}a\r\n"));

    // --- too-large values -------------------------------------------------------------
    let k = c.case("value over 1MB is refused and swallowed");
    let big = "v".repeat(2_000_000);
    c.send(format!("set {k}a 0 0 2000000\r\n{big}\r\nget {k}a\r\n"));

    let k = c.case("too-large set removes the old value");
    c.send(format!(
        "set {k}a 0 0 3\r\nold\r\nset {k}a 0 0 2000000\r\n{big}\r\nget {k}a\r\n"
    ));

    let k = c.case("too-large add/append keep the old value");
    c.send(format!(
        "set {k}a 0 0 3\r\nold\r\nadd {k}a 0 0 2000000\r\n{big}\r\n\
         append {k}a 0 0 2000000\r\n{big}\r\nget {k}a\r\n"
    ));

    let k = c.case("too-large set with noreply");
    c.send(format!(
        "set {k}a 0 0 2000000 noreply\r\n{big}\r\nget {k}a\r\n"
    ));

    let k = c.case("item size limit boundary");
    let key = format!("{k}a");
    for flags in [0u32, 1] {
        let max = max_value(key.len(), flags);
        for (i, n) in [max, max + 1].into_iter().enumerate() {
            let key = format!("{key}{flags}{i}");
            let v = "b".repeat(n);
            c.send(format!("set {key} {flags} 0 {n}\r\n{v}\r\nget {key}\r\n"));
        }
    }

    // --- meta commands --------------------------------------------------------------
    let k = c.case("meta set and get with return flags");
    c.send(format!(
        "ms {k}a 5 F7 T0\r\nhello\r\nmg {k}a v s f t c k Oab\r\nmg {k}a\r\nmg {k}a k\r\n\
         mg {k}a s v\r\nmg {k}a h l\r\nmg {k}a h\r\nmg {k}x v\r\nmg {k}x k O123 v\r\n\
         ms {k}b 0\r\n\r\nmg {k}b v s\r\nms {k}c 2 T100 c k\r\nhi\r\nmg {k}c t v\r\n"
    ));

    let k = c.case("meta quiet mode");
    c.send(format!(
        "ms {k}a 1 q\r\na\r\nmg {k}a v q\r\nmg {k}x v q\r\nmg {k}x q k\r\nmd {k}a q\r\n\
         md {k}a q\r\nma {k}n q\r\nma {k}n q N0 J3\r\nma {k}n q\r\nmg {k}n v\r\n\
         ms {k}b 1 q ME\r\nb\r\nms {k}b 1 q ME\r\nb\r\nmn\r\n"
    ));

    let k = c.case("meta set modes");
    c.send(format!(
        "ms {k}a 1 ME\r\na\r\nms {k}a 1 ME\r\nb\r\nms {k}a 1 MA\r\nc\r\nms {k}a 1 MP\r\nd\r\n\
         mg {k}a v\r\nms {k}x 1 MR\r\nx\r\nms {k}a 1 MR\r\nr\r\nms {k}a 1 MS\r\ns\r\n\
         ms {k}y 1 MA\r\ny\r\nms {k}a 1 MZ\r\nz\r\nms {k}a 1 M\r\nz\r\nmg {k}a v\r\n"
    ));

    let k = c.case("meta CAS");
    c.send(format!("ms {k}a 1 c\r\na\r\nmg {k}a c v\r\n"));
    c.send(format!(
        "ms {k}a 1 C{{CAS+1}}\r\nb\r\nms {k}a 1 C{{CAS}} c\r\nc\r\nmg {k}a v c\r\n"
    ));
    c.send(format!(
        "md {k}a C{{CAS+1}}\r\nma {k}a C{{CAS+1}}\r\nms {k}x 1 C1\r\nx\r\nmd {k}a C{{CAS}}\r\nmg {k}a\r\n"
    ));

    let k = c.case("meta arithmetic");
    c.send(format!(
        "ma {k}n\r\nma {k}n N0 J10 v\r\nma {k}n v\r\nma {k}n D5 v t c\r\nma {k}n MD D100 v\r\n\
         ma {k}n M- v\r\nma {k}n M+ D18446744073709551615 v\r\nma {k}n MX\r\nset {k}s 0 0 1\r\nx\r\n\
         ma {k}s\r\nma {k}n T100 t v\r\nma {k}n Oq k\r\nma {k}m N100 J7 t v\r\nma {k}z Oz k\r\n\
         ma {k}n Dx\r\nma {k}n Jx N0\r\n"
    ));

    let k = c.case("meta invalidation and win tokens");
    c.send(format!(
        "ms {k}a 1 T100\r\na\r\nmd {k}a I T30\r\nmg {k}a v c t\r\nmg {k}a v\r\nmd {k}x I\r\n\
         mg {k}v N30 v t\r\nmg {k}v N30 v t\r\nmg {k}v v\r\nms {k}r 1 T5\r\nr\r\n\
         mg {k}r R30 v\r\nmg {k}r R30 v\r\nmg {k}r v\r\n"
    ));
    c.send(format!("mg {k}a c\r\n"));
    c.send(format!(
        "ms {k}a 1 I C{{CAS+1}}\r\nb\r\nms {k}a 1 I C1\r\nc\r\nmg {k}a v\r\n"
    ));

    let k = c.case("meta base64 keys");
    c.send(format!(
        "ms {k}YQ== 1 b k\r\na\r\nmg {k}YQ== b k v\r\nmg {k}YQ== b\r\nms YWJj 2 b k c\r\nxy\r\n\
         mg YWJj b v k\r\nget abc\r\nmd YWJj b k q\r\nmg YWJj b v\r\nmg !!!! b\r\nmd !!!! b\r\n"
    ));

    let k = c.case("meta errors");
    c.send(format!(
        "mg\r\nmg {k}a s s\r\nmg {k}a !\r\nmg {k}a xyz\r\nmg {k}a Oabcdefghijklmnopqrstuvwxyz0123456789\r\n\
         md {k}a s s\r\nma {k}a q q\r\nmx {k}a\r\nms {k}a\r\nms {k}a x\r\nms {k}a -1\r\n\
         mg {k}a a b c d e f g h i j k l m n o p q r s t u v w\r\nmg {} v\r\nme {k}nope\r\n\
         ms {k}a 2 Tx\r\nab\r\nms {k}a 2 Fx\r\nab\r\nmg {k}a Tx\r\nmn\r\n",
        long_key(&k, 251)
    ));

    let k = c.case("meta bad data chunk");
    c.send(format!("ms {k}a 2\r\nabc\r\nmg {k}a v\r\n"));

    let k = c.case("meta and classic commands share items");
    c.send(format!(
        "set {k}a 3 0 2\r\nhi\r\nmg {k}a v f\r\nms {k}b 2 F9\r\nyo\r\ngets {k}b\r\n\
         mg {k}b c\r\nincr {k}c 1\r\nma {k}c N0 J1\r\nincr {k}c 1\r\nmg {k}c v\r\n"
    ));

    // --- time (keep last: the only sleeps) --------------------------------------------
    let k = c.case("expiry, touch and gat over time");
    c.send(format!(
        "set {k}a 0 1 1\r\na\r\nset {k}b 0 100 1\r\nb\r\nset {k}c 0 0 1\r\nc\r\ntouch {k}c 1\r\n\
         set {k}d 0 0 1\r\nd\r\ngat 1 {k}d\r\nset {k}e 0 1 1\r\ne\r\ntouch {k}e 100\r\n\
         set {k}f 0 1 1\r\nf\r\ngats 100 {k}f\r\nset {k}g 0 0 1\r\ng\r\n"
    ));
    c.sleep(1200);
    c.send(format!("get {k}a {k}b {k}c {k}d {k}e {k}f {k}g\r\n"));
    // No read right after: the flush may land at the very next clock tick.
    c.send("flush_all 2\r\n");
    c.sleep(1200);
    c.send(format!("get {k}b {k}e {k}f {k}g\r\n"));
    // Put the flush horizon back in the past for any later case.
    c.send("flush_all\r\n");

    c.cases
}

// ---------------------------------------------------------------------------
// Reply normalisation.

/// Per-server state of one case: the CAS values seen.
#[derive(Default)]
struct CasState {
    ids: HashMap<u64, usize>,
    last: Option<u64>,
}

/// Replace `{CAS}` / `{CAS+1}` in a request with this server's last CAS.
fn substitute_cas(req: &[u8], st: &CasState) -> Vec<u8> {
    let mut out = Vec::with_capacity(req.len());
    let mut i = 0;
    while i < req.len() {
        if req[i..].starts_with(b"{CAS}") {
            let v = st.last.map_or("NO_CAS_SEEN".to_string(), |c| c.to_string());
            out.extend_from_slice(v.as_bytes());
            i += 5;
        } else if req[i..].starts_with(b"{CAS+1}") {
            let v = st
                .last
                .map_or("NO_CAS_SEEN".to_string(), |c| (c + 1).to_string());
            out.extend_from_slice(v.as_bytes());
            i += 7;
        } else {
            out.push(req[i]);
            i += 1;
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// The two-letter codes of meta replies.
const META_CODES: &[&[u8]] = &[b"HD", b"VA", b"EN", b"NF", b"NS", b"EX", b"MN", b"ME"];

/// Replace the CAS of every `VALUE` line by `C<i>` (see the module doc),
/// remembering the raw value for `{CAS}`.
fn normalise(reply: &[u8], st: &mut CasState) -> Vec<u8> {
    let mut out = Vec::with_capacity(reply.len());
    let mut pos = 0;
    while pos < reply.len() {
        let rest = &reply[pos..];
        let Some(eol) = find(rest, b"\r\n") else {
            out.extend_from_slice(rest);
            break;
        };
        let line = &rest[..eol];
        pos += eol + 2;
        let toks: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let nbytes = toks
            .get(3)
            .and_then(|t| std::str::from_utf8(t).ok())
            .and_then(|t| t.parse::<usize>().ok());
        if let Some(code) = toks.first().filter(|t| META_CODES.contains(t)) {
            // Meta reply: its `c<cas>` flag (or `cas=` for `me`) is a CAS;
            // `VA <n>` is followed by n bytes of value; `me`'s `cls=` and
            // `size=` describe memcached's slabs, not the item.
            for (i, t) in toks.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                let cas = t
                    .strip_prefix(b"cas=")
                    .map(|c| (&b"cas="[..], c))
                    .or_else(|| t.strip_prefix(b"c").map(|c| (&b"c"[..], c)))
                    .filter(|_| i > 0)
                    .and_then(|(p, c)| {
                        Some((p, std::str::from_utf8(c).ok()?.parse::<u64>().ok()?))
                    });
                if let Some((prefix, cas)) = cas {
                    let next = st.ids.len();
                    let id = *st.ids.entry(cas).or_insert(next);
                    st.last = Some(cas);
                    out.extend_from_slice(prefix);
                    out.extend_from_slice(format!("C{id}").as_bytes());
                } else if *code == b"ME" && (t.starts_with(b"cls=") || t.starts_with(b"size=")) {
                    out.extend_from_slice(&t[..t.iter().position(|&b| b == b'=').unwrap() + 1]);
                    out.push(b'*');
                } else {
                    out.extend_from_slice(t);
                }
            }
            out.extend_from_slice(b"\r\n");
            let va = std::str::from_utf8(toks.get(1).copied().unwrap_or_default())
                .ok()
                .and_then(|t| t.parse::<usize>().ok());
            if let (b"VA", Some(n)) = (*code, va) {
                let end = (pos + n + 2).min(reply.len());
                out.extend_from_slice(&reply[pos..end]);
                pos = end;
            }
            continue;
        }
        match (toks.first(), nbytes) {
            (Some(&b"VALUE"), Some(n)) if toks.len() == 4 || toks.len() == 5 => {
                if toks.len() == 5 {
                    out.extend_from_slice(&line[..line.len() - toks[4].len()]);
                    match std::str::from_utf8(toks[4])
                        .ok()
                        .and_then(|t| t.parse::<u64>().ok())
                    {
                        Some(cas) => {
                            let next = st.ids.len();
                            let id = *st.ids.entry(cas).or_insert(next);
                            st.last = Some(cas);
                            out.extend_from_slice(format!("C{id}").as_bytes());
                        }
                        None => out.extend_from_slice(toks[4]),
                    }
                } else {
                    out.extend_from_slice(line);
                }
                out.extend_from_slice(b"\r\n");
                let end = (pos + n + 2).min(reply.len());
                out.extend_from_slice(&reply[pos..end]);
                pos = end;
            }
            _ => {
                out.extend_from_slice(line);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out
}

/// Printable form of bytes, cut in the middle when long.
fn escape(b: &[u8]) -> String {
    const MAX: usize = 600;
    let show = |s: &[u8]| -> String {
        let mut o = String::new();
        for &c in s {
            match c {
                b'\r' => o.push_str("\\r"),
                b'\n' => o.push_str("\\n"),
                b'\t' => o.push_str("\\t"),
                b'\\' => o.push_str("\\\\"),
                0x20..=0x7e => o.push(c as char),
                _ => o.push_str(&format!("\\x{c:02x}")),
            }
        }
        o
    };
    if b.len() <= MAX {
        format!("\"{}\"", show(b))
    } else {
        format!(
            "\"{}\" ...({} bytes)... \"{}\"",
            show(&b[..MAX / 2]),
            b.len(),
            show(&b[b.len() - MAX / 2..])
        )
    }
}

// ---------------------------------------------------------------------------
// Running the corpus.

struct Mismatch {
    transport: &'static str,
    case: usize,
    name: String,
    step: usize,
    request: Vec<u8>,
    memcached: Vec<u8>,
    rmemcached: Vec<u8>,
}

fn report(mismatches: &[Mismatch], framing: &[String], transport: &str, cases: usize) {
    for m in mismatches {
        println!(
            "\n=== {} MISMATCH case {} \"{}\" step {}\n  request:    {}\n  memcached:  {}\n  rmemcached: {}",
            m.transport,
            m.case,
            m.name,
            m.step,
            escape(&m.request),
            escape(&m.memcached),
            escape(&m.rmemcached)
        );
    }
    for f in framing {
        println!("\n=== {transport} FRAMING {f}");
    }
    let names: Vec<String> = mismatches
        .iter()
        .map(|m| format!("#{} {} (step {})", m.case, m.name, m.step))
        .collect();
    println!(
        "\n{transport}: {cases} cases, {} mismatching steps, {} framing problems",
        mismatches.len(),
        framing.len()
    );
    assert!(
        mismatches.is_empty() && framing.is_empty(),
        "{transport}: rmemcached differs from memcached in {} steps: {names:#?}\nframing: {framing:#?}",
        mismatches.len()
    );
}

/// A free TCP port on 127.0.0.1. memcached 1.6.18 takes `-p 0` to mean
/// "no TCP" rather than "any port", so both servers get an explicit `-p`
/// (a later `-p` overrides the `-p 0` that `common::start_with` passes).
fn free_tcp_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Start memcached and rmemcached with the same `flags` (plus a TCP port
/// each).
fn start_pair(flags: &[&str]) -> (common::Server, common::Server) {
    let start = |bin: Option<&str>| {
        let port = free_tcp_port().to_string();
        let mut args = flags.to_vec();
        args.extend(["-p", port.as_str()]);
        match bin {
            Some(b) => common::start_with(b, &args),
            None => common::start_server(&args),
        }
    };
    (start(Some(MEMCACHED)), start(None))
}

/// `DIFF_VERBOSE=1` prints every step with memcached's reply.
fn verbose() -> bool {
    std::env::var_os("DIFF_VERBOSE").is_some()
}

fn require_memcached() {
    assert!(
        std::path::Path::new(MEMCACHED).exists(),
        "{MEMCACHED} is missing: the differential test needs the real memcached 1.6.18 \
         (apt-get install memcached); it is not skipped"
    );
}

/// Lines of `req` that are a `version` command (each adds a VERSION line
/// to the reply, like the sentinel).
fn version_commands(req: &[u8]) -> usize {
    req.split(|&b| b == b'\n')
        .filter(|l| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            l.split(|&b| b == b' ').find(|t| !t.is_empty()) == Some(b"version")
        })
        .count()
}

// --- TCP -----------------------------------------------------------------------

struct TcpSide {
    port: u16,
    /// The server's reply to `version\r\n`.
    sentinel: Vec<u8>,
}

impl TcpSide {
    fn new(server: &common::Server) -> TcpSide {
        let mut s = server.tcp();
        let sentinel = common::request(&mut s, b"version\r\n", b"\r\n");
        assert!(sentinel.starts_with(b"VERSION "), "bad version reply");
        TcpSide {
            port: server.port,
            sentinel,
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }
}

enum ReadEnd {
    Done,
    Closed,
    Timeout,
}

/// Read until `done(bytes)`, EOF or timeout.
fn read_tcp(s: &mut TcpStream, done: impl Fn(&[u8]) -> bool) -> (Vec<u8>, ReadEnd) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        if done(&out) {
            return (out, ReadEnd::Done);
        }
        match s.read(&mut buf) {
            Ok(0) => return (out, ReadEnd::Closed),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (out, ReadEnd::Timeout)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                return (out, ReadEnd::Closed)
            }
            Err(e) => {
                out.extend_from_slice(format!("<read error: {e}>").as_bytes());
                return (out, ReadEnd::Closed);
            }
        }
    }
}

/// Run one step on one server; returns the (raw) reply for the step.
fn tcp_step(side: &TcpSide, conn: &mut Option<TcpStream>, step: &Step, req: &[u8]) -> Vec<u8> {
    let Some(s) = conn.as_mut() else {
        return b"<connection already closed>".to_vec();
    };
    match step {
        Step::Sleep(_) => Vec::new(),
        Step::Write(_) => {
            if let Err(e) = s.write_all(req) {
                *conn = None;
                return format!("<write error: {e}>").into_bytes();
            }
            Vec::new()
        }
        Step::Send(_) => {
            let mut bytes = req.to_vec();
            bytes.extend_from_slice(b"version\r\n");
            if let Err(e) = s.write_all(&bytes) {
                *conn = None;
                return format!("<write error: {e}>").into_bytes();
            }
            let want = version_commands(req) + 1;
            let sentinel = side.sentinel.clone();
            let (mut out, end) =
                read_tcp(s, |b| b.ends_with(&sentinel) && count(b, &sentinel) >= want);
            match end {
                ReadEnd::Done => out.truncate(out.len() - sentinel.len()),
                ReadEnd::Closed => {
                    out.extend_from_slice(b"<closed>");
                    *conn = None;
                }
                ReadEnd::Timeout => out.extend_from_slice(b"<timeout: no sentinel reply>"),
            }
            out
        }
        Step::Close(_) => {
            // The server may close before reading everything: a failed
            // write is not a difference in itself.
            let _ = s.write_all(req);
            let (mut out, end) = read_tcp(s, |_| false);
            match end {
                ReadEnd::Closed => out.extend_from_slice(b"<closed>"),
                _ => out.extend_from_slice(b"<timeout: connection still open>"),
            }
            *conn = None;
            out
        }
    }
}

#[test]
fn tcp_replies_match_memcached() {
    require_memcached();
    let flags: &[&str] = &[];
    let (mc, rm) = start_pair(flags);
    let (mc_side, rm_side) = (TcpSide::new(&mc), TcpSide::new(&rm));
    let cases = corpus();
    let mut mismatches = Vec::new();
    for (ci, case) in cases.iter().enumerate() {
        let mut mc_conn = Some(mc_side.connect());
        let mut rm_conn = Some(rm_side.connect());
        let (mut mc_cas, mut rm_cas) = (CasState::default(), CasState::default());
        for (si, step) in case.steps.iter().enumerate() {
            let raw = match step {
                Step::Sleep(ms) => {
                    std::thread::sleep(Duration::from_millis(*ms));
                    continue;
                }
                Step::Send(r) | Step::Close(r) | Step::Write(r) => r,
            };
            let mc_req = substitute_cas(raw, &mc_cas);
            let rm_req = substitute_cas(raw, &rm_cas);
            let a = tcp_step(&mc_side, &mut mc_conn, step, &mc_req);
            let b = tcp_step(&rm_side, &mut rm_conn, step, &rm_req);
            let a = normalise(&a, &mut mc_cas);
            let b = normalise(&b, &mut rm_cas);
            if verbose() {
                println!(
                    "{ci} {} step {si}\n  > {}\n  < {}",
                    case.name,
                    escape(raw),
                    escape(&a)
                );
            }
            if a != b {
                mismatches.push(Mismatch {
                    transport: "TCP",
                    case: ci,
                    name: case.name.clone(),
                    step: si,
                    request: raw.clone(),
                    memcached: a,
                    rmemcached: b,
                });
            }
        }
    }
    report(&mismatches, &[], "TCP", cases.len());
}

// --- UDP ---------------------------------------------------------------------

struct UdpSide {
    sock: UdpSocket,
    sentinel: Vec<u8>,
    next_id: u16,
}

impl UdpSide {
    fn new(server: &common::Server) -> UdpSide {
        assert!(server.udp_port != 0, "server has no UDP port");
        let sock = server.udp();
        sock.set_read_timeout(Some(REPLY_TIMEOUT)).unwrap();
        let sentinel = common::udp_request(&sock, 1, b"version\r\n");
        assert!(sentinel.starts_with(b"VERSION "), "bad UDP version reply");
        UdpSide {
            sock,
            sentinel,
            next_id: 100,
        }
    }

    fn id(&mut self) -> u16 {
        self.next_id = self.next_id.wrapping_add(1).max(100);
        self.next_id
    }

    /// Send `req` as one datagram, then a sentinel datagram; collect every
    /// datagram answering `req` until the sentinel's answer. Returns the
    /// payloads concatenated in arrival order and the number of messages
    /// (runs starting at sequence 0), or a framing complaint.
    fn exchange(&mut self, req: &[u8]) -> (Vec<u8>, usize, Option<String>) {
        let id = self.id();
        let sid = self.id();
        let mut d = common::udp_header(id, 0, 1).to_vec();
        d.extend_from_slice(req);
        self.sock.send(&d).unwrap();
        let mut s = common::udp_header(sid, 0, 1).to_vec();
        s.extend_from_slice(b"version\r\n");
        self.sock.send(&s).unwrap();
        let mut out = Vec::new();
        let mut messages = 0;
        let mut problem = None;
        let mut expect: Option<(u16, u16)> = None; // (next seq, total)
        loop {
            let Some(g) = common::udp_recv(&self.sock) else {
                out.extend_from_slice(b"<timeout: no sentinel reply>");
                break;
            };
            if g.id == sid {
                if g.payload != self.sentinel {
                    out.extend_from_slice(b"<sentinel reply: ");
                    out.extend_from_slice(&g.payload);
                    out.push(b'>');
                }
                break;
            }
            if g.id != id {
                continue; // late datagram of an earlier (timed-out) step
            }
            if g.seq == 0 && g.total == 0 && g.payload.is_empty() {
                // memcached sends an empty "0 datagrams" message for a
                // get miss that is not the last key, and for quit.
                messages += 1;
                continue;
            }
            if g.seq == 0 {
                if let Some((next, total)) = expect {
                    if next != total {
                        problem = Some(format!("message cut at {next} of {total} datagrams"));
                    }
                }
                messages += 1;
                expect = Some((1, g.total));
            } else {
                match expect {
                    Some((next, total)) if g.seq == next && g.total == total => {
                        expect = Some((next + 1, total));
                    }
                    _ => {
                        problem = Some(format!(
                            "datagram seq {} total {} out of order (expected {expect:?})",
                            g.seq, g.total
                        ))
                    }
                }
            }
            if g.payload.len() > 1392 {
                problem = Some(format!("datagram of {} payload bytes", g.payload.len()));
            }
            out.extend_from_slice(&g.payload);
        }
        if let Some((next, total)) = expect {
            if next != total {
                problem = Some(format!("message cut at {next} of {total} datagrams"));
            }
        }
        (out, messages, problem)
    }
}

#[test]
fn udp_replies_match_memcached() {
    require_memcached();
    // One worker thread each, so that datagrams are answered in order.
    let flags: &[&str] = &["-t", "1"];
    let (mc, rm) = start_pair(flags);
    let mut mc_side = UdpSide::new(&mc);
    let mut rm_side = UdpSide::new(&rm);
    let cases = corpus();
    let mut mismatches = Vec::new();
    let mut framing = Vec::new();
    let mut run = 0;
    for (ci, case) in cases.iter().enumerate() {
        if !case.udp {
            continue;
        }
        run += 1;
        let (mut mc_cas, mut rm_cas) = (CasState::default(), CasState::default());
        for (si, step) in case.steps.iter().enumerate() {
            let raw = match step {
                Step::Sleep(ms) => {
                    std::thread::sleep(Duration::from_millis(*ms));
                    continue;
                }
                Step::Send(r) | Step::Close(r) => r,
                Step::Write(_) => unreachable!("write steps are TCP only"),
            };
            let (a, _, a_problem) = mc_side.exchange(&substitute_cas(raw, &mc_cas));
            let (b, b_messages, b_problem) = rm_side.exchange(&substitute_cas(raw, &rm_cas));
            if let Some(p) = a_problem {
                println!("note: memcached UDP framing, case {ci} step {si}: {p}");
            }
            if let Some(p) = b_problem {
                framing.push(format!("case {ci} \"{}\" step {si}: {p}", case.name));
            }
            if b_messages > 1 {
                framing.push(format!(
                    "case {ci} \"{}\" step {si}: {b_messages} messages for one request datagram",
                    case.name
                ));
            }
            let a = normalise(&a, &mut mc_cas);
            let b = normalise(&b, &mut rm_cas);
            if verbose() {
                println!(
                    "{ci} {} step {si}\n  > {}\n  < {}",
                    case.name,
                    escape(raw),
                    escape(&a)
                );
            }
            if a != b {
                mismatches.push(Mismatch {
                    transport: "UDP",
                    case: ci,
                    name: case.name.clone(),
                    step: si,
                    request: raw.clone(),
                    memcached: a,
                    rmemcached: b,
                });
            }
        }
    }
    report(&mismatches, &framing, "UDP", run);
}
