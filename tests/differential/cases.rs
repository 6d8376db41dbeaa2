//! The request streams of the ASCII and meta differential test, one entry
//! of [`CASES`] per case: a name and its steps, sent in lock step to
//! memcached and rmemcached (see `main.rs`).
//!
//! Steps: `Send(request)` sends and reads the whole reply, `Close(request)`
//! sends and reads until the server closes the connection, `Write(part)`
//! sends without reading (a request split across writes), `Sleep(ms)`
//! sleeps once for both servers. `SendBuilt`/`WriteBuilt` take a function
//! of the key prefix, for the few requests too regular to spell out.
//!
//! A request is the bytes on the wire, with these placeholders:
//! * `{k}`: the case's key prefix (`cNNN_`), so that cases are independent;
//! * `{key:N}`: a key of exactly N bytes that starts with the prefix;
//! * `{TEXT*N}`: TEXT N times (`{x*3000}`, `{k *1500}`);
//! * `{now+S}`, `{now-S}`: the unix time S seconds from now;
//! * `{CAS}`, `{CAS+1}`: the last CAS this server returned in the case,
//!   and a wrong one (filled in as the step is sent).
//!
//! A case also runs over UDP, one datagram per step, unless it is made
//! with `tcp_only`, writes a request in parts, or has a request too large
//! for a datagram.

use crate::common::lockstep::{Case, Step};
use std::time::{SystemTime, UNIX_EPOCH};

/// One step as written in [`CASES`].
pub enum S {
    Send(&'static [u8]),
    Close(&'static [u8]),
    Write(&'static [u8]),
    Sleep(u64),
    SendBuilt(fn(&str) -> String),
    WriteBuilt(fn(&str) -> String),
}

use S::*;

/// One case as written in [`CASES`].
pub struct Row {
    name: &'static str,
    steps: &'static [S],
    tcp_only: bool,
}

const fn case(name: &'static str, steps: &'static [S]) -> Row {
    Row {
        name,
        steps,
        tcp_only: false,
    }
}

/// A case that does not run over UDP (memcached waits for another
/// datagram, or the case needs stream semantics).
const fn tcp_only(name: &'static str, steps: &'static [S]) -> Row {
    Row {
        name,
        steps,
        tcp_only: true,
    }
}

/// The cases, in order. The flush cases put the flush horizon back in the
/// past before the next case; the time case (the only long sleeps) is last.
#[rustfmt::skip]
pub const CASES: &[Row] = &[
    // --- storage commands -------------------------------------------------
    case("set then get", &[
        Send(b"set {k}a 0 0 5\r\nhello\r\nget {k}a\r\n"),
        Send(b"get {k}a\r\n"),
    ]),
    case("set with max flags", &[Send(b"set {k}a 4294967295 0 1\r\nx\r\nget {k}a\r\n")]),
    case("flags 4294967296 (64-bit strtoul truncation)", &[
        Send(b"set {k}a 4294967296 0 1\r\nx\r\nget {k}a\r\n"),
        Send(b"set {k}b 4294967297 0 1\r\ny\r\nget {k}b\r\n"),
    ]),
    case("zero-length value", &[Send(b"set {k}a 3 0 0\r\n\r\nget {k}a\r\n")]),
    case("overwrite changes flags and length", &[
        Send(b"set {k}a 1 0 1\r\nx\r\nset {k}a 2 0 2\r\nyy\r\nget {k}a\r\n"),
    ]),
    case("binary-safe value", &[Send(b"set {k}a 0 0 9\r\na\r\nb\0c\xff\r\n\r\nget {k}a\r\n")]),
    case("add", &[Send(b"add {k}a 1 0 1\r\nx\r\nadd {k}a 2 0 1\r\ny\r\nget {k}a\r\n")]),
    case("replace", &[
        Send(b"replace {k}a 0 0 1\r\nx\r\nget {k}a\r\nset {k}a 1 0 1\r\nx\r\n\
               replace {k}a 2 0 2\r\nyy\r\nget {k}a\r\n"),
    ]),
    case("append/prepend", &[
        Send(b"append {k}a 0 0 1\r\nx\r\nprepend {k}a 0 0 1\r\nx\r\nget {k}a\r\n\
               set {k}a 5 0 3\r\nmid\r\nappend {k}a 9 0 4\r\n_end\r\n\
               prepend {k}a 7 0 6\r\nstart_\r\nget {k}a\r\n"),
    ]),
    case("append/prepend empty values", &[
        Send(b"set {k}a 0 0 0\r\n\r\nappend {k}a 0 0 0\r\n\r\nprepend {k}a 0 0 2\r\nab\r\n\
               append {k}a 0 0 0\r\n\r\nget {k}a\r\n"),
    ]),
    case("store on expired/deleted key", &[
        Send(b"set {k}a 0 -1 1\r\nx\r\nadd {k}a 0 0 1\r\ny\r\nget {k}a\r\n\
               set {k}b 0 -1 1\r\nx\r\nreplace {k}b 0 0 1\r\ny\r\nappend {k}b 0 0 1\r\ny\r\nget {k}b\r\n\
               set {k}c 0 0 1\r\nx\r\ndelete {k}c\r\nappend {k}c 0 0 1\r\nz\r\nadd {k}c 0 0 1\r\nw\r\nget {k}c\r\n"),
    ]),
    case("pipelined sets in one write", &[SendBuilt(|k| {
        let sets: String = (0..50)
            .map(|i| format!("set {k}{i} {i} 0 {}\r\n{i}\r\n", i.to_string().len()))
            .collect();
        format!("{sets}get {k}0 {k}17 {k}49 {k}50\r\n")
    })]),
    case("value of 3000 bytes (multi-datagram UDP reply)", &[
        Send(b"set {k}a 0 0 3000\r\n{0123456789*300}\r\nget {k}a\r\n"),
    ]),
    case("multi-get of large values", &[
        Send(b"set {k}a 1 0 1000\r\n{abcdefghij*100}\r\nset {k}b 2 0 1000\r\n{abcdefghij*100}\r\n\
               set {k}c 3 0 1000\r\n{abcdefghij*100}\r\n"),
        Send(b"get {k}a {k}b {k}c {k}missing {k}a\r\n"),
        Send(b"gets {k}c {k}b\r\n"),
    ]),

    // --- get / gets / bget ------------------------------------------------
    case("multi-get with misses and duplicates", &[
        Send(b"set {k}a 1 0 1\r\nA\r\nset {k}b 2 0 2\r\nBB\r\nget {k}a {k}x {k}b {k}a\r\n\
               gets {k}a {k}b {k}y\r\n"),
    ]),
    case("get of 30 keys (more than MAX_TOKENS)", &[
        Send(b"set {k}1 0 0 1\r\n1\r\nset {k}22 0 0 2\r\n22\r\nset {k}23 0 0 2\r\n23\r\n\
               set {k}24 0 0 2\r\n24\r\nset {k}30 0 0 2\r\n30\r\n"),
        SendBuilt(|k| format!("get {}\r\n", keys(1..=30, |i| format!("{k}{i}")))),
        SendBuilt(|k| format!("gets {}\r\n", keys(1..=30, |i| format!("{k}{i}")))),
        SendBuilt(|k| format!("get {} \r\n", keys(1..=22, |i| format!("{k}{i}")))),
        SendBuilt(|k| format!("get {}\r\n", keys(1..=23, |i| format!("{k}{i}")))),
        SendBuilt(|k| format!("get {} \r\n", keys(1..=23, |i| format!("{k}{i}")))),
    ]),
    case("get line longer than 2048 bytes", &[
        Send(b"set {k}a 0 0 1\r\na\r\n"),
        SendBuilt(|k| format!("get {} {k}a\r\n", keys(0..150, |i| format!("{k}k{i:04}_pad")))),
    ]),
    case("get with extra spaces", &[
        Send(b"set {k}a 0 0 1\r\na\r\nget  {k}a   {k}a  \r\n   get {k}a\r\nget {k}a \r\n"),
    ]),
    case("bget", &[Send(b"set {k}a 0 0 1\r\na\r\nbget {k}a {k}b\r\nbget\r\n")]),
    case("get without keys", &[Send(b"get\r\ngets\r\nget \r\ngets  \r\nbget\r\n{k}\r\n")]),

    // --- cas --------------------------------------------------------------
    case("gets then cas", &[
        Send(b"set {k}a 0 0 1\r\nx\r\ngets {k}a\r\n"),
        Send(b"cas {k}a 5 0 1 {CAS}\r\ny\r\nget {k}a\r\n"),
        Send(b"cas {k}a 0 0 1 {CAS}\r\nz\r\ngets {k}a\r\n"),
        Send(b"cas {k}a 0 0 1 {CAS+1}\r\nz\r\ngets {k}a\r\n"),
        Send(b"cas {k}a 0 0 2 {CAS} noreply\r\nzz\r\ngets {k}a\r\n"),
        Send(b"cas {k}a 0 0 2 {CAS+1} noreply\r\nqq\r\ngets {k}a\r\n"),
    ]),
    case("cas on missing key", &[
        Send(b"cas {k}a 0 0 1 1\r\nx\r\ncas {k}a 0 0 1 0\r\nx\r\nget {k}a\r\n"),
    ]),
    case("cas with unique 0", &[Send(b"set {k}a 0 0 1\r\nx\r\ncas {k}a 0 0 1 0\r\ny\r\nget {k}a\r\n")]),
    case("cas bad unique", &[
        Send(b"set {k}a 0 0 1\r\nx\r\ncas {k}a 0 0 1 abc\r\ny\r\ncas {k}a 0 0 1 -1\r\ny\r\n\
               cas {k}a 0 0 1 18446744073709551616\r\ny\r\ncas {k}a 0 0 1 1x\r\ny\r\nget {k}a\r\n"),
    ]),
    case("cas wrong token counts", &[
        Send(b"cas {k}a 0 0 1\r\nx\r\ncas {k}a 0 0 1 1 noreply extra\r\nx\r\ncas {k}a\r\n"),
    ]),
    case("cas after delete", &[
        Send(b"set {k}a 0 0 1\r\nx\r\ngets {k}a\r\n"),
        Send(b"delete {k}a\r\ncas {k}a 0 0 1 {CAS}\r\ny\r\nget {k}a\r\n"),
    ]),
    case("cas unique across touch/append/incr", &[
        Send(b"set {k}a 0 0 1\r\n1\r\ngets {k}a\r\n"),
        Send(b"touch {k}a 1000\r\ngets {k}a\r\n"),
        Send(b"cas {k}a 0 0 1 {CAS}\r\n2\r\ngets {k}a\r\n"),
        Send(b"append {k}a 0 0 1\r\n0\r\ngets {k}a\r\n"),
        Send(b"incr {k}a 1\r\ngets {k}a\r\n"),
        Send(b"decr {k}a 1\r\ngets {k}a\r\n"),
        Send(b"gat 1000 {k}a\r\ngets {k}a\r\n"),
        Send(b"cas {k}a 0 0 1 {CAS}\r\n3\r\ngets {k}a\r\n"),
    ]),

    // --- gat / gats / touch -----------------------------------------------
    case("gat and gats", &[
        Send(b"set {k}a 1 0 1\r\na\r\nset {k}b 2 0 1\r\nb\r\ngat 100 {k}a\r\ngats 100 {k}a {k}x {k}b\r\n\
               gat 0 {k}b\r\nget {k}a {k}b\r\n"),
    ]),
    case("gat errors", &[
        Send(b"set {k}a 0 0 1\r\na\r\ngat abc {k}a\r\ngat 1x {k}a\r\ngat 100\r\ngat\r\ngats\r\n\
               gat  100  {k}a\r\n"),
    ]),
    case("gat with negative exptime expires", &[
        Send(b"set {k}a 0 0 1\r\na\r\ngats -1 {k}a\r\nget {k}a\r\n"),
    ]),
    case("touch", &[
        Send(b"touch {k}a 100\r\nset {k}a 0 0 1\r\na\r\ntouch {k}a 100\r\ntouch {k}a abc\r\n\
               touch {k}a\r\ntouch {k}a 1 noreply x\r\ntouch\r\nget {k}a\r\n"),
    ]),
    case("touch with negative exptime expires", &[
        Send(b"set {k}a 0 0 1\r\na\r\ntouch {k}a -1\r\nget {k}a\r\n"),
    ]),
    case("touch with absolute times", &[
        Send(b"set {k}a 0 0 1\r\na\r\nset {k}b 0 0 1\r\nb\r\ntouch {k}a {now+3600}\r\ntouch {k}b {now-3600}\r\n\
               get {k}a {k}b\r\n"),
    ]),

    // --- delete -----------------------------------------------------------
    case("delete", &[Send(b"set {k}a 0 0 1\r\na\r\ndelete {k}a\r\ndelete {k}a\r\nget {k}a\r\n")]),
    case("delete k 0", &[
        Send(b"set {k}a 0 0 1\r\na\r\ndelete {k}a 0\r\ndelete {k}a 0\r\nget {k}a\r\n"),
    ]),
    case("delete k 0 noreply", &[
        Send(b"set {k}a 0 0 1\r\na\r\ndelete {k}a 0 noreply\r\nget {k}a\r\ndelete {k}a 0 noreply\r\n"),
    ]),
    case("delete k noreply", &[
        Send(b"set {k}a 0 0 1\r\na\r\ndelete {k}a noreply\r\nget {k}a\r\ndelete {k}a noreply\r\n"),
    ]),
    case("delete k 5 is an error", &[
        Send(b"set {k}a 0 0 1\r\na\r\ndelete {k}a 5\r\nget {k}a\r\ndelete {k}a 5 noreply\r\nget {k}a\r\n"),
    ]),
    case("delete bad forms", &[
        Send(b"set {k}a 0 0 1\r\na\r\ndelete {k}a 0 0\r\ndelete {k}a x noreply\r\ndelete {k}a noreply 0\r\n\
               delete\r\ndelete {k}a 0 noreply x\r\ndelete {k}a 00\r\nget {k}a\r\n"),
    ]),

    // --- incr / decr ------------------------------------------------------
    case("incr/decr basics", &[
        Send(b"set {k}a 0 0 1\r\n1\r\nincr {k}a 1\r\nincr {k}a 10\r\ndecr {k}a 5\r\ndecr {k}a 100\r\n\
               get {k}a\r\nincr {k}x 1\r\ndecr {k}x 1\r\n"),
    ]),
    case("incr wraps at 2^64", &[
        Send(b"set {k}a 0 0 20\r\n18446744073709551615\r\nincr {k}a 1\r\nget {k}a\r\n\
               set {k}b 0 0 20\r\n18446744073709551615\r\nincr {k}b 2\r\nget {k}b\r\n\
               set {k}c 0 0 1\r\n5\r\nincr {k}c 18446744073709551615\r\nget {k}c\r\n"),
    ]),
    case("decr floors at 0", &[
        Send(b"set {k}a 0 0 1\r\n5\r\ndecr {k}a 6\r\nget {k}a\r\ndecr {k}a 1\r\n\
               set {k}b 0 0 20\r\n18446744073709551615\r\ndecr {k}b 18446744073709551615\r\nget {k}b\r\n"),
    ]),
    case("decr shrinking pads with spaces", &[
        Send(b"set {k}a 0 0 3\r\n100\r\ndecr {k}a 95\r\nget {k}a\r\nincr {k}a 1\r\nget {k}a\r\n\
               incr {k}a 1000\r\nget {k}a\r\ndecr {k}a 1006\r\nget {k}a\r\n"),
    ]),
    case("incr growing the value", &[
        Send(b"set {k}a 7 0 2\r\n99\r\nincr {k}a 1\r\nget {k}a\r\nincr {k}a 18446744073709551000\r\nget {k}a\r\n"),
    ]),
    case("incr on non-numeric values", &[
        Send(b"set {k}0 0 0 3\r\nabc\r\nincr {k}0 1\r\nget {k}0\r\ndecr {k}0 1\r\nget {k}0\r\n"),
        Send(b"set {k}1 0 0 5\r\n12abc\r\nincr {k}1 1\r\nget {k}1\r\ndecr {k}1 1\r\nget {k}1\r\n"),
        Send(b"set {k}2 0 0 6\r\n12 abc\r\nincr {k}2 1\r\nget {k}2\r\ndecr {k}2 1\r\nget {k}2\r\n"),
        Send(b"set {k}3 0 0 0\r\n\r\nincr {k}3 1\r\nget {k}3\r\ndecr {k}3 1\r\nget {k}3\r\n"),
        Send(b"set {k}4 0 0 2\r\n-5\r\nincr {k}4 1\r\nget {k}4\r\ndecr {k}4 1\r\nget {k}4\r\n"),
        Send(b"set {k}5 0 0 2\r\n+5\r\nincr {k}5 1\r\nget {k}5\r\ndecr {k}5 1\r\nget {k}5\r\n"),
        Send(b"set {k}6 0 0 2\r\n 5\r\nincr {k}6 1\r\nget {k}6\r\ndecr {k}6 1\r\nget {k}6\r\n"),
        Send(b"set {k}7 0 0 24\r\n123456789012345678901234\r\nincr {k}7 1\r\nget {k}7\r\ndecr {k}7 1\r\nget {k}7\r\n"),
        Send(b"set {k}8 0 0 4\r\n0x10\r\nincr {k}8 1\r\nget {k}8\r\ndecr {k}8 1\r\nget {k}8\r\n"),
        Send(b"set {k}9 0 0 4\r\n5\r\n6\r\nincr {k}9 1\r\nget {k}9\r\ndecr {k}9 1\r\nget {k}9\r\n"),
        Send(b"set {k}10 0 0 3\r\n1.5\r\nincr {k}10 1\r\nget {k}10\r\ndecr {k}10 1\r\nget {k}10\r\n"),
        Send(b"set {k}11 0 0 20\r\n18446744073709551616\r\nincr {k}11 1\r\nget {k}11\r\ndecr {k}11 1\r\nget {k}11\r\n"),
    ]),
    case("incr bad delta", &[
        Send(b"set {k}a 0 0 1\r\n5\r\nincr {k}a abc\r\nincr {k}a -1\r\nincr {k}a 18446744073709551616\r\n\
               incr {k}a 1.5\r\ndecr {k}a -0\r\nincr {k}a +3\r\ndecr {k}a 1x\r\nincr {k}x abc\r\nget {k}a\r\n"),
    ]),
    case("incr keeps flags", &[
        Send(b"set {k}a 42 0 1\r\n5\r\nincr {k}a 1\r\nget {k}a\r\nincr {k}a 100\r\nget {k}a\r\n"),
    ]),
    case("incr/decr token counts", &[
        Send(b"set {k}a 0 0 1\r\n5\r\nincr {k}a\r\ndecr {k}a\r\nincr {k}a 1 noreply x\r\nincr\r\nget {k}a\r\n"),
    ]),

    // --- noreply on every command -----------------------------------------
    case("noreply storage commands", &[
        Send(b"set {k}a 1 0 1 noreply\r\na\r\nadd {k}a 0 0 1 noreply\r\nb\r\nadd {k}b 2 0 1 noreply\r\nb\r\n\
               replace {k}c 0 0 1 noreply\r\nc\r\nreplace {k}b 3 0 1 noreply\r\nB\r\n\
               append {k}a 0 0 1 noreply\r\n+\r\nprepend {k}a 0 0 1 noreply\r\n-\r\n\
               append {k}z 0 0 1 noreply\r\n+\r\nget {k}a {k}b {k}c {k}z\r\n"),
    ]),
    case("noreply arithmetic, touch, delete", &[
        Send(b"set {k}a 0 0 1\r\n5\r\nincr {k}a 10 noreply\r\ndecr {k}a 3 noreply\r\nget {k}a\r\n\
               incr {k}x 1 noreply\r\ndecr {k}x 1 noreply\r\ntouch {k}a 100 noreply\r\n\
               touch {k}x 100 noreply\r\ndelete {k}a noreply\r\ndelete {k}a noreply\r\nget {k}a\r\n"),
    ]),
    case("noreply swallows errors", &[
        Send(b"set {k}a abc 0 1 noreply\r\nx\r\nset {k}b 0 0 1 noreply\r\n5\r\nincr {k}b abc noreply\r\n\
               set {k}c 0 0 1 noreply\r\nc\r\nincr {k}c 1 noreply\r\ntouch {k}b abc noreply\r\n\
               verbosity abc noreply\r\nflush_all abc noreply\r\nget {k}a {k}b {k}c\r\n"),
    ]),
    case("noreply in the wrong place", &[
        Send(b"set {k}a 0 0 1 NOREPLY\r\na\r\nset {k}b 0 0 1 noreply extra\r\nb\r\n\
               set {k}c noreply 0 0 1\r\nc\r\nget {k}a noreply\r\nget {k}a {k}b {k}c\r\n"),
    ]),
    case("noreply then plain command", &[
        Send(b"set {k}a 0 0 1 noreply\r\na\r\nget {k}a\r\nversion\r\n"),
    ]),

    // --- expiry -----------------------------------------------------------
    case("negative exptime is expired at once", &[
        Send(b"set {k}a 0 -1 1\r\na\r\nget {k}a\r\nset {k}b 0 -1000000 1\r\nb\r\nget {k}b\r\n\
               set {k}c 0 -2147483648 1\r\nc\r\nget {k}c\r\n"),
    ]),
    case("absolute exptime in the past", &[
        Send(b"set {k}a 0 1000000000 1\r\na\r\nset {k}b 0 {now-10} 1\r\nb\r\nset {k}c 0 2592001 1\r\nc\r\n\
               get {k}a {k}b {k}c\r\n"),
    ]),
    case("absolute exptime in the future, 30-day delta", &[
        Send(b"set {k}a 0 {now+3600} 1\r\na\r\nset {k}b 0 2592000 1\r\nb\r\nset {k}c 0 100 1\r\nc\r\n\
               get {k}a {k}b {k}c\r\n"),
    ]),
    case("exptime parsing", &[
        Send(b"set {k}a 0 abc 1\r\na\r\nset {k}b 0 1.5 1\r\nb\r\nset {k}c 0 99999999999 1\r\nc\r\n\
               set {k}d 0 +100 1\r\nd\r\nset {k}e 0 4294967396 1\r\ne\r\nget {k}a {k}b {k}c {k}d {k}e\r\n"),
    ]),

    // --- key length -------------------------------------------------------
    case("key of 250 bytes", &[
        Send(b"set {key:250} 0 0 1\r\na\r\nget {key:250}\r\ngets {key:250}\r\nappend {key:250} 0 0 1\r\n1\r\n\
               touch {key:250} 100\r\ngat 100 {key:250}\r\nincr {key:250} 1\r\ndelete {key:250}\r\n"),
    ]),
    // One command per step: memcached culls every reply not yet written
    // when a get meets a too-long key (see the next cases).
    case("key of 251 bytes", &[
        Send(b"set {key:251} 0 0 1\r\na\r\n"),
        Send(b"get {key:251}\r\n"),
        Send(b"gets {key:251}\r\n"),
        Send(b"add {key:251} 0 0 1\r\na\r\n"),
        Send(b"cas {key:251} 0 0 1 1\r\na\r\n"),
        Send(b"touch {key:251} 100\r\n"),
        Send(b"gat 100 {key:251}\r\n"),
        Send(b"incr {key:251} 1\r\n"),
        Send(b"decr {key:251} 1\r\n"),
        Send(b"delete {key:251}\r\n"),
        Send(b"delete {key:251} noreply\r\n"),
    ]),
    case("key of 251 bytes in a multi-get", &[
        Send(b"set {k}a 0 0 1\r\na\r\n"),
        Send(b"get {k}a {key:251} {k}a\r\n"),
        Send(b"get {key:251} {k}a\r\n"),
        Send(b"gets {k}a {k}a {key:251}\r\n"),
        Send(b"get {k}a\r\nget {key:251}\r\n"),
    ]),
    // memcached quirk: a get with a too-long key drops (conn_release_items)
    // every reply queued since the last write, i.e. the replies of earlier
    // pipelined commands too (a get flushes, other commands do not).
    case("key of 251 bytes in a get drops earlier queued replies", &[
        Send(b"set {k}a 0 0 1\r\na\r\ntouch {k}a 100\r\nget {key:251}\r\nget {k}a\r\n"),
    ]),
    case("key of 251 bytes with noreply", &[
        Send(b"set {key:251} 0 0 1 noreply\r\na\r\nincr {key:251} 1 noreply\r\ntouch {key:251} 1 noreply\r\nversion\r\n"),
    ]),

    // --- flush_all --------------------------------------------------------
    case("flush_all", &[
        Send(b"set {k}a 0 0 1\r\na\r\nflush_all\r\nget {k}a\r\nset {k}b 0 0 1\r\nb\r\nget {k}b\r\n"),
    ]),
    case("flush_all 0", &[
        Send(b"set {k}a 0 0 1\r\na\r\nflush_all 0\r\nget {k}a\r\nadd {k}a 0 0 1\r\nA\r\nget {k}a\r\n"),
    ]),
    case("flush_all noreply", &[
        Send(b"set {k}a 0 0 1\r\na\r\nflush_all noreply\r\nget {k}a\r\nset {k}b 0 0 1\r\nb\r\n\
               flush_all 0 noreply\r\nget {k}b\r\n"),
    ]),
    case("flush_all negative delay", &[Send(b"set {k}a 0 0 1\r\na\r\nflush_all -1\r\nget {k}a\r\n")]),
    case("flush_all bad arguments", &[
        Send(b"set {k}a 0 0 1\r\na\r\nflush_all abc\r\nflush_all 1x\r\nflush_all noreply 0\r\n\
               flush_all 0 noreply x\r\nflush_all 1 2 3\r\nget {k}a\r\n"),
    ]),
    case("flush_all with a future delay", &[
        Send(b"set {k}a 0 0 1\r\na\r\nflush_all 100\r\nget {k}a\r\nflush_all 100 noreply\r\nget {k}a\r\n"),
        // Cancel the pending flush so later cases are not affected.
        Send(b"flush_all\r\n"),
        Send(b"get {k}a\r\nset {k}b 0 0 1\r\nb\r\nget {k}b\r\n"),
    ]),
    case("flush_all 1 (takes effect at once)", &[
        Send(b"set {k}a 0 0 1\r\na\r\nflush_all 1\r\nget {k}a\r\n"),
        Send(b"flush_all\r\n"),
    ]),

    // --- other commands ---------------------------------------------------
    case("version", &[
        Send(b"version\r\n"),
        Send(b"version extra args\r\nVERSION\r\nversion noreply\r\n"),
    ]),
    case("verbosity", &[
        Send(b"verbosity 1\r\nverbosity\r\nverbosity abc\r\nverbosity -1\r\nverbosity 1 noreply\r\n\
               verbosity 1 2 3\r\nverbosity 4294967296\r\nverbosity 0\r\n"),
    ]),
    case("stats detail errors", &[
        Send(b"stats detail x\r\nstats detail\r\nstats detail on\r\nstats detail off\r\n"),
        Send(b"stats nonsense\r\nstats cachedump\r\nstats cachedump 1\r\nstats reset\r\n"),
    ]),
    case("shutdown not enabled", &[Send(b"shutdown\r\nshutdown graceful\r\nshutdown now\r\n")]),

    // --- bad input --------------------------------------------------------
    case("unknown commands", &[
        Send(b"foo\r\nbogus a b c\r\nGETS {k}a\r\nx\r\nSET {k}a 0 0 1\r\nsetx {k}a 0 0 1\r\n\
               gx {k}a\r\ngetx {k}a\r\ndeletex {k}a\r\nincrx {k}a 1\r\ntouchx {k}a 1\r\n\
               casx {k}a\r\nappendx {k}a\r\nreplacex {k}a 0 0 1\r\nz\r\nflush\r\n"),
    ]),
    case("too few tokens", &[
        Send(b"set {k}a 0 0\r\nset {k}a 0\r\nset {k}a\r\nset\r\nadd {k}a 0 0\r\nreplace {k}a 0\r\n\
               append {k}a\r\nprepend {k}a 0 0\r\ncas {k}a 0 0 1\r\nincr {k}a\r\ndecr {k}a\r\n\
               touch {k}a\r\ngat\r\nget {k}a\r\n"),
    ]),
    case("too many tokens", &[
        Send(b"set {k}a 0 0 1 noreply x\r\na\r\nadd {k}a 0 0 1 x y\r\na\r\nincr {k}a 1 noreply x\r\n\
               touch {k}a 1 noreply x\r\nverbosity 1 noreply x\r\nget {k}a\r\n"),
    ]),
    case("more than 24 tokens", &[
        Send(b"set {k}a 0 0 1 {x *29}x\r\na\r\nincr {k}a 1 {x *29}x\r\nfoo {x *29}x\r\nget {k}a\r\n"),
    ]),
    case("non-numeric flags/exptime/length", &[
        Send(b"set {k}a abc 0 1\r\na\r\nset {k}a 0 abc 1\r\na\r\nset {k}a 0 0 abc\r\na\r\n\
               set {k}a 0 0 1x\r\na\r\nset {k}a 1.0 0 1\r\na\r\nset {k}a -1 0 1\r\na\r\n\
               set {k}a 0 0 -1\r\na\r\nset {k}a 0 0 +1\r\na\r\nget {k}a\r\n"),
    ]),
    case("number forms: signs, zeros, wrap-around, C whitespace", &[
        Send(b"set {k}a +5 0 1\r\na\r\nset {k}b -0 -0 1\r\nb\r\nset {k}c 007 0 001\r\nc\r\n\
               set {k}d -4294967295 0 1\r\nd\r\nset {k}e 0 0 1\x0b\r\ne\r\nset {k}f 0 0 1\x0c\r\nf\r\n\
               get {k}a {k}b {k}c {k}d {k}e {k}f\r\n"),
        Send(b"set {k}n 0 0 1\r\n5\r\nincr {k}n -18446744073709551615\r\nincr {k}n 007\r\n\
               decr {k}n -9223372036854775808\r\nincr {k}n 9223372036854775808\r\nget {k}n\r\n"),
    ]),
    // Keys with bytes 01 7f, U+00E9 U+4E2D in UTF-8, and ff fe.
    case("keys with control and non-ASCII bytes", &[
        Send(b"set {k}\x01\x7f 1 0 1\r\na\r\nset {k}\xc3\xa9\xe4\xb8\xad 2 0 1\r\nb\r\n\
               set {k}\xff\xfe 3 0 1\r\nc\r\nget {k}\x01\x7f {k}\xc3\xa9\xe4\xb8\xad {k}\xff\xfe\r\n"),
    ]),
    case("huge length 4294967297 (truncates to 1)", &[Send(b"set {k}a 0 0 4294967297\r\nx\r\nget {k}a\r\n")]),
    case("length out of range", &[
        Send(b"set {k}a 0 0 2147483647\r\nset {k}a 0 0 2147483648\r\nset {k}a 0 0 99999999999999999999\r\n\
               set {k}a 0 0 -2147483648\r\nget {k}a\r\n"),
    ]),
    case("bad data chunk", &[
        Send(b"set {k}a 0 0 3\r\nabcde\r\nget {k}a\r\n"),
        Send(b"set {k}a 0 0 1\r\nok\r\nget {k}a\r\n"),
    ]),
    case("bad data chunk keeps the old value", &[
        Send(b"set {k}a 0 0 3\r\nold\r\nset {k}a 0 0 3\r\nnew!!\r\nget {k}a\r\n\
               append {k}a 0 0 1\r\nxyz\r\nget {k}a\r\n"),
    ]),
    case("bad data chunk with noreply", &[Send(b"set {k}a 0 0 3 noreply\r\nabcde\r\nget {k}a\r\n")]),
    case("value terminated by a bare newline", &[
        Send(b"set {k}a 0 0 1\nx\nget {k}a\n"),
        Send(b"get {k}a\r\n"),
    ]),
    case("empty and blank lines", &[Send(b"\r\n\n\r\r\n   \r\n \t \r\nget {k}a\r\n")]),
    case("trailing spaces", &[
        Send(b"set {k}a 0 0 1 \r\na\r\nget {k}a \r\nincr {k}a 1  \r\ndelete {k}a  \r\n\
               set {k}b 0 0 1 noreply \r\nb\r\nget {k}b   \r\n"),
    ]),
    case("tabs", &[
        Send(b"get\t{k}a\r\nset\t{k}a 0 0 1\r\na\r\nset {k}a 0 0 1\t\r\nb\r\nget {k}a\t\r\n\
               set {k}a\t0 0 1\r\nc\r\nincr {k}a\t1\r\nget {k}a\r\n"),
    ]),
    case("newline without carriage return", &[
        Send(b"set {k}a 0 0 1\na\r\nget {k}a\nincr {k}b 1\ndelete {k}a\nget {k}a\r\n"),
    ]),
    case("stray carriage returns", &[
        Send(b"set {k}a 0 0 1\r\na\r\nget {k}a\r\r\nget {k}a\r{k}a\r\nget \r{k}a\r\n"),
    ]),
    case("NUL byte ends the line", &[
        Send(b"set {k}a 0 0 1\0junk here\r\na\r\nget {k}a\0{k}b\r\n\0\r\n"),
    ]),
    case("very long line with newline", &[Send(b"foo {x*3000}\r\nget {k}a\r\n")]),

    // --- connection closing -----------------------------------------------
    case("GET / HTTP/1.1 closes", &[Close(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")]),
    case("POST HTTP/1.0 closes", &[Close(b"POST /x HTTP/1.0\r\n")]),
    case("HEAD HTTP/1.1 closes", &[Close(b"HEAD / HTTP/1.1\r\n")]),
    case("bare HTTP/1.1 token closes", &[Close(b"HTTP/1.1\r\n")]),
    case("replies before HTTP close (after a get)", &[
        Close(b"set {k}a 0 0 1\r\na\r\nget {k}a\r\nfoo / HTTP/2\r\nget {k}a\r\n"),
    ]),
    // memcached writes queued replies only at a get (or when it needs more
    // input), so replies queued since then are lost when it hangs up.
    case("replies queued before HTTP close (no get)", &[
        Close(b"set {k}a 0 0 1\r\na\r\ntouch {k}a 100\r\nGET / HTTP/1.1\r\n"),
    ]),
    case("HTTP/ token on a memcached command", &[
        Send(b"get / HTTP/1.1\r\ndelete HTTP/1.1\r\nfoo bar http/1.1\r\nget {k}a\r\n"),
    ]),
    case("HTTP/ token after a command starting like a known one", &[
        Send(b"gx HTTP/1.1\r\nsx HTTP/1.1\r\nax HTTP/1.1\r\ncx HTTP/1.1\r\n"),
        Send(b"ix HTTP/1.1\r\ndx HTTP/1.1\r\ntx HTTP/1.1\r\nmz HTTP/1.1\r\n"),
    ]),
    // `quit` is TCP only: over UDP memcached 1.6.18 leaves close_after_write
    // set on the (shared) UDP connection, so that every later datagram is
    // cut short after its first get, for every client.
    tcp_only("quit", &[Close(b"quit\r\n")]),
    tcp_only("quit after a command, with commands after it", &[
        Close(b"set {k}a 0 0 1\r\na\r\nquit\r\nget {k}a\r\n"),
    ]),
    tcp_only("quit with arguments", &[Close(b"quit now\r\n")]),
    tcp_only("line over 2048 bytes without newline closes", &[Close(b"foo {x*3000}")]),
    tcp_only("get line over 2048 bytes with 101 leading spaces closes", &[
        Close(b"{ *101}get {k *1500}"),
    ]),
    case("get line over 2048 bytes split across writes", &[
        Send(b"set {k}a 0 0 1\r\na\r\n"),
        WriteBuilt(|k| format!("get {} {k}a", keys(0..200, |i| format!("{k}k{i:04}")))),
        Sleep(50),
        Send(b" {k}a\r\n"),
    ]),

    // --- split requests (TCP stream semantics) ----------------------------
    case("value split across writes", &[
        Write(b"set {k}a 0 0 10\r\nabc"),
        Sleep(20),
        Send(b"defghij\r\nget {k}a\r\n"),
    ]),
    case("command line split across writes", &[
        Write(b"se"),
        Sleep(20),
        Write(b"t {k}a 0 0 1\r"),
        Sleep(20),
        Send(b"\na\r\nget {k}a\r\n"),
    ]),
    case("value CRLF split across writes", &[
        Write(b"set {k}a 0 0 1\r\na\r"),
        Sleep(20),
        Send(b"\nget {k}a\r\n"),
    ]),

    // --- too-large values -------------------------------------------------
    case("value over 1MB is refused and swallowed", &[
        Send(b"set {k}a 0 0 2000000\r\n{v*2000000}\r\nget {k}a\r\n"),
    ]),
    case("too-large set removes the old value", &[
        Send(b"set {k}a 0 0 3\r\nold\r\nset {k}a 0 0 2000000\r\n{v*2000000}\r\nget {k}a\r\n"),
    ]),
    case("too-large add/append keep the old value", &[
        Send(b"set {k}a 0 0 3\r\nold\r\nadd {k}a 0 0 2000000\r\n{v*2000000}\r\n\
               append {k}a 0 0 2000000\r\n{v*2000000}\r\nget {k}a\r\n"),
    ]),
    case("too-large set with noreply", &[
        Send(b"set {k}a 0 0 2000000 noreply\r\n{v*2000000}\r\nget {k}a\r\n"),
    ]),
    // Values of `max_value` bytes and one more, stored under
    // `{k}a<flags><0|1>`, with flags 0 and 1.
    case("item size limit boundary", &[
        SendBuilt(|k| item_size_step(k, 0, 0)),
        SendBuilt(|k| item_size_step(k, 0, 1)),
        SendBuilt(|k| item_size_step(k, 1, 0)),
        SendBuilt(|k| item_size_step(k, 1, 1)),
    ]),

    // --- meta commands ----------------------------------------------------
    case("meta set and get with return flags", &[
        Send(b"ms {k}a 5 F7 T0\r\nhello\r\nmg {k}a v s f t c k Oab\r\nmg {k}a\r\nmg {k}a k\r\n\
               mg {k}a s v\r\nmg {k}a h l\r\nmg {k}a h\r\nmg {k}x v\r\nmg {k}x k O123 v\r\n\
               ms {k}b 0\r\n\r\nmg {k}b v s\r\nms {k}c 2 T100 c k\r\nhi\r\nmg {k}c t v\r\n"),
    ]),
    case("meta quiet mode", &[
        Send(b"ms {k}a 1 q\r\na\r\nmg {k}a v q\r\nmg {k}x v q\r\nmg {k}x q k\r\nmd {k}a q\r\n\
               md {k}a q\r\nma {k}n q\r\nma {k}n q N0 J3\r\nma {k}n q\r\nmg {k}n v\r\n\
               ms {k}b 1 q ME\r\nb\r\nms {k}b 1 q ME\r\nb\r\nmn\r\n"),
    ]),
    case("meta set modes", &[
        Send(b"ms {k}a 1 ME\r\na\r\nms {k}a 1 ME\r\nb\r\nms {k}a 1 MA\r\nc\r\nms {k}a 1 MP\r\nd\r\n\
               mg {k}a v\r\nms {k}x 1 MR\r\nx\r\nms {k}a 1 MR\r\nr\r\nms {k}a 1 MS\r\ns\r\n\
               ms {k}y 1 MA\r\ny\r\nms {k}a 1 MZ\r\nz\r\nms {k}a 1 M\r\nz\r\nmg {k}a v\r\n"),
    ]),
    case("meta CAS", &[
        Send(b"ms {k}a 1 c\r\na\r\nmg {k}a c v\r\n"),
        Send(b"ms {k}a 1 C{CAS+1}\r\nb\r\nms {k}a 1 C{CAS} c\r\nc\r\nmg {k}a v c\r\n"),
        Send(b"md {k}a C{CAS+1}\r\nma {k}a C{CAS+1}\r\nms {k}x 1 C1\r\nx\r\nmd {k}a C{CAS}\r\nmg {k}a\r\n"),
    ]),
    case("meta arithmetic", &[
        Send(b"ma {k}n\r\nma {k}n N0 J10 v\r\nma {k}n v\r\nma {k}n D5 v t c\r\nma {k}n MD D100 v\r\n\
               ma {k}n M- v\r\nma {k}n M+ D18446744073709551615 v\r\nma {k}n MX\r\nset {k}s 0 0 1\r\nx\r\n\
               ma {k}s\r\nma {k}n T100 t v\r\nma {k}n Oq k\r\nma {k}m N100 J7 t v\r\nma {k}z Oz k\r\n\
               ma {k}n Dx\r\nma {k}n Jx N0\r\n"),
    ]),
    case("meta invalidation and win tokens", &[
        Send(b"ms {k}a 1 T100\r\na\r\nmd {k}a I T30\r\nmg {k}a v c t\r\nmg {k}a v\r\nmd {k}x I\r\n\
               mg {k}v N30 v t\r\nmg {k}v N30 v t\r\nmg {k}v v\r\nms {k}r 1 T5\r\nr\r\n\
               mg {k}r R30 v\r\nmg {k}r R30 v\r\nmg {k}r v\r\n"),
        Send(b"mg {k}a c\r\n"),
        Send(b"ms {k}a 1 I C{CAS+1}\r\nb\r\nms {k}a 1 I C1\r\nc\r\nmg {k}a v\r\n"),
    ]),
    case("meta base64 keys", &[
        Send(b"ms {k}YQ== 1 b k\r\na\r\nmg {k}YQ== b k v\r\nmg {k}YQ== b\r\nms YWJj 2 b k c\r\nxy\r\n\
               mg YWJj b v k\r\nget abc\r\nmd YWJj b k q\r\nmg YWJj b v\r\nmg !!!! b\r\nmd !!!! b\r\n"),
    ]),
    case("meta errors", &[
        Send(b"mg\r\nmg {k}a s s\r\nmg {k}a !\r\nmg {k}a xyz\r\nmg {k}a Oabcdefghijklmnopqrstuvwxyz0123456789\r\n\
               md {k}a s s\r\nma {k}a q q\r\nmx {k}a\r\nms {k}a\r\nms {k}a x\r\nms {k}a -1\r\n\
               mg {k}a a b c d e f g h i j k l m n o p q r s t u v w\r\nmg {key:251} v\r\nme {k}nope\r\n\
               ms {k}a 2 Tx\r\nab\r\nms {k}a 2 Fx\r\nab\r\nmg {k}a Tx\r\nmn\r\n"),
    ]),
    case("meta bad data chunk", &[Send(b"ms {k}a 2\r\nabc\r\nmg {k}a v\r\n")]),
    case("meta and classic commands share items", &[
        Send(b"set {k}a 3 0 2\r\nhi\r\nmg {k}a v f\r\nms {k}b 2 F9\r\nyo\r\ngets {k}b\r\n\
               mg {k}b c\r\nincr {k}c 1\r\nma {k}c N0 J1\r\nincr {k}c 1\r\nmg {k}c v\r\n"),
    ]),

    // --- time (keep last: the only sleeps) --------------------------------
    case("expiry, touch and gat over time", &[
        Send(b"set {k}a 0 1 1\r\na\r\nset {k}b 0 100 1\r\nb\r\nset {k}c 0 0 1\r\nc\r\ntouch {k}c 1\r\n\
               set {k}d 0 0 1\r\nd\r\ngat 1 {k}d\r\nset {k}e 0 1 1\r\ne\r\ntouch {k}e 100\r\n\
               set {k}f 0 1 1\r\nf\r\ngats 100 {k}f\r\nset {k}g 0 0 1\r\ng\r\n"),
        Sleep(1200),
        Send(b"get {k}a {k}b {k}c {k}d {k}e {k}f {k}g\r\n"),
        // No read right after: the flush may land at the very next clock tick.
        Send(b"flush_all 2\r\n"),
        Sleep(1200),
        Send(b"get {k}b {k}e {k}f {k}g\r\n"),
        // Put the flush horizon back in the past for any later case.
        Send(b"flush_all\r\n"),
    ]),
];

/// Largest UDP request we send (IPv4 UDP payload limit).
const MAX_DATAGRAM: usize = 65507;

/// memcached's item size limit (`-I`, default 1m).
const ITEM_SIZE_MAX: usize = 1024 * 1024;

/// Largest value memcached stores for a key of `nkey` bytes: the item
/// (48-byte header, 8-byte CAS, key + NUL, 4 bytes of flags when non-zero,
/// value + CRLF) must fit in `ITEM_SIZE_MAX`.
fn max_value(nkey: usize, flags: u32) -> usize {
    ITEM_SIZE_MAX - 48 - 8 - (nkey + 1) - if flags != 0 { 4 } else { 0 } - 2
}

/// A set and get of `max_value` bytes (plus `over`, 0 or 1) under the key
/// `{k}a<flags><over>`, reckoned for that key's length, so that `over` 0
/// is the largest value stored and `over` 1 the first refused.
fn item_size_step(k: &str, flags: u32, over: usize) -> String {
    let n = max_value(k.len() + 3, flags) + over;
    let key = format!("{k}a{flags}{over}");
    let v = "b".repeat(n);
    format!("set {key} {flags} 0 {n}\r\n{v}\r\nget {key}\r\n")
}

/// `f(i)` for each `i`, joined by spaces.
fn keys(range: impl Iterator<Item = usize>, f: impl Fn(usize) -> String) -> String {
    range.map(f).collect::<Vec<_>>().join(" ")
}

/// The cases with their placeholders filled in (all but `{CAS}`).
pub fn corpus() -> Vec<Case> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    CASES
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let k = format!("c{i:03}_");
            let fill = |t: &[u8]| expand(t, &k, now);
            let steps: Vec<Step> = row
                .steps
                .iter()
                .map(|s| match s {
                    Send(t) => Step::Send(fill(t)),
                    Close(t) => Step::Close(fill(t)),
                    Write(t) => Step::Write(fill(t)),
                    Sleep(ms) => Step::Sleep(*ms),
                    SendBuilt(f) => Step::Send(f(&k).into_bytes()),
                    WriteBuilt(f) => Step::Write(f(&k).into_bytes()),
                })
                .collect();
            let udp = !row.tcp_only
                && steps.iter().all(|s| match s {
                    Step::Write(_) => false,
                    s => s.request().is_none_or(|r| r.len() + 8 <= MAX_DATAGRAM),
                });
            Case {
                udp,
                ..Case::new(row.name, steps)
            }
        })
        .collect()
}

/// `template` with its placeholders filled in for key prefix `k`.
fn expand(template: &[u8], k: &str, now: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.iter().position(|&b| b == b'{') {
        out.extend_from_slice(&rest[..open]);
        let len = rest[open..]
            .iter()
            .position(|&b| b == b'}')
            .expect("unclosed placeholder");
        let inner = std::str::from_utf8(&rest[open + 1..open + len]).expect("placeholder");
        let arg = |s: &str| -> u64 { s.parse().unwrap_or_else(|_| panic!("bad {{{inner}}}")) };
        match inner {
            "k" => out.extend_from_slice(k.as_bytes()),
            "CAS" | "CAS+1" => out.extend_from_slice(&rest[open..=open + len]),
            _ if inner.starts_with("now+") => {
                out.extend_from_slice((now + arg(&inner[4..])).to_string().as_bytes())
            }
            _ if inner.starts_with("now-") => {
                out.extend_from_slice((now - arg(&inner[4..])).to_string().as_bytes())
            }
            _ if inner.starts_with("key:") => {
                let n = arg(&inner[4..]) as usize;
                out.extend_from_slice(k.as_bytes());
                out.resize(out.len() + n.saturating_sub(k.len()), b'x');
            }
            _ => {
                let (text, n) = inner
                    .rsplit_once('*')
                    .unwrap_or_else(|| panic!("unknown placeholder {{{inner}}}"));
                out.extend_from_slice(text.repeat(arg(n) as usize).as_bytes());
            }
        }
        rest = &rest[open + len + 1..];
    }
    out.extend_from_slice(rest);
    out
}
