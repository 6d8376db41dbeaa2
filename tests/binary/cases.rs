//! The request streams of the binary differential test: [`CASES`] over
//! TCP, [`STAT_CASES`] on servers of their own, [`UDP_CASES`] as
//! datagrams. Each entry is a name and its steps, built from the case's
//! keys (`k.a` is the prefix `bNNN_` followed by `a`, and so on) with the
//! request builders of `packet.rs`.
//!
//! Steps: `send(requests)` sends the requests in one write, plus the
//! sentinel NOOP, and reads until the NOOP's reply; `count(requests, n)`
//! reads `n` reply packets instead; `close(requests)` reads until the
//! server closes the connection; `Step::Write` sends without reading,
//! `Step::Sleep` sleeps once for both servers, `Step::Reconnect` opens a
//! new connection to each. A request's CAS may be `cas_ref(i)`, the i-th
//! distinct CAS this server returned in the case.

use crate::common::lockstep::{Case, Step};
use crate::packet::op::*;
use crate::packet::*;

/// An absolute exptime (more than 30 days) in 1970: expired at once.
const PAST: u32 = 30 * 24 * 3600 + 1;

/// A CAS no server hands out during the test.
const NEVER_CAS: u64 = 0x0123_4567_89ab_cdef;

/// memcached's item size limit (`-I`, default 1m).
const ITEM_SIZE_MAX: usize = 1024 * 1024;

/// The keys of a case: its prefix and a few keys under it.
pub struct Keys {
    /// The prefix.
    pub k: String,
    pub a: String,
    pub b: String,
    pub d: String,
    pub x: String,
    /// A key that is never stored.
    pub missing: String,
}

impl Keys {
    fn new(k: String) -> Keys {
        let key = |s: &str| format!("{k}{s}");
        Keys {
            a: key("a"),
            b: key("b"),
            d: key("d"),
            x: key("x"),
            missing: key("missing"),
            k,
        }
    }

    /// The prefix followed by `suffix`.
    pub fn key(&self, suffix: impl std::fmt::Display) -> String {
        format!("{}{suffix}", self.k)
    }

    /// A key of exactly `len` bytes that starts with the prefix.
    pub fn long(&self, len: usize) -> String {
        let mut s = self.k.clone();
        while s.len() < len {
            s.push('x');
        }
        s
    }
}

/// One case as written in the tables.
pub struct Row {
    name: &'static str,
    steps: fn(&Keys) -> Vec<Step>,
    stat_names: bool,
}

const fn case(name: &'static str, steps: fn(&Keys) -> Vec<Step>) -> Row {
    Row {
        name,
        steps,
        stat_names: false,
    }
}

/// A case whose `STAT` values vary between processes (pid, uptime,
/// memory): only names, statuses and order are compared.
const fn stat_names(name: &'static str, steps: fn(&Keys) -> Vec<Step>) -> Row {
    Row {
        name,
        steps,
        stat_names: true,
    }
}

/// Send `requests` in one write; read until the sentinel's reply.
fn send(requests: impl IntoIterator<Item = Vec<u8>>) -> Step {
    Step::Send(cat(requests))
}

/// Send `requests`; read `n` reply packets.
fn count(requests: impl IntoIterator<Item = Vec<u8>>, n: usize) -> Step {
    Step::Count(cat(requests), n)
}

/// Send `requests`; memcached closes the connection: read to EOF.
fn close(requests: impl IntoIterator<Item = Vec<u8>>) -> Step {
    Step::Close(cat(requests))
}

/// A `STAT settings` request, compared by `settings_match`.
fn settings(group: &str) -> Step {
    Step::Settings(keyed(STAT, group))
}

/// Largest value memcached stores for a key of `nkey` bytes and zero
/// flags: the item (48-byte header, 8-byte CAS, key + NUL, value + CRLF)
/// must fit in `ITEM_SIZE_MAX`.
fn max_value(nkey: usize) -> usize {
    ITEM_SIZE_MAX - 48 - 8 - (nkey + 1) - 2
}

/// The cases run over TCP, in order (the delayed flush last).
#[rustfmt::skip]
pub const CASES: &[Row] = &[
    // --- get family -------------------------------------------------------
    case("get/getk/getq/getkq hit", |k| vec![
        send([store(SET, &k.a, 0xdead_beef, 0, b"hello", 0), keyed(GET, &k.a), keyed(GETK, &k.a), keyed(GETQ, &k.a), keyed(GETKQ, &k.a)]),
        send([keyed(GET, &k.a)]),
    ]),
    case("get/getk miss; getq/getkq miss are silent", |k| vec![
        send([keyed(GET, &k.missing), keyed(GETK, &k.missing), keyed(GETQ, &k.missing), keyed(GETKQ, &k.missing)]),
        send([keyed(GETQ, &k.missing)]),
    ]),
    case("quiet gets in a pipeline", |k| vec![
        send([set(&k.a, b"A"), keyed(GETKQ, &k.b), keyed(GETKQ, &k.a), keyed(GETQ, &k.b), keyed(GETQ, &k.a), keyed(GETKQ, &k.b)]),
    ]),
    case("empty and binary values", |k| vec![
        send([set(&k.a, b""), keyed(GETK, &k.a), store(SET, &k.b, 1, 0, b"\0\r\n\xff\x80END\r\n", 0), keyed(GET, &k.b)]),
    ]),
    case("key of 250 bytes", |k| {
        let k250 = k.long(250);
        vec![send([
            set(&k250, b"v"), keyed(GETK, &k250), append(APPEND, &k250, b"w", 0),
            touch(GATK, &k250, 100), delta(INCREMENT, &k250, 1, 0, 0, 0), keyed(DELETE, &k250),
        ])]
    }),

    // --- set / add / replace ----------------------------------------------
    case("set, add, replace succeed", |k| vec![
        send([
            store(ADD, &k.a, 1, 0, b"added", 0), keyed(GETK, &k.a),
            store(REPLACE, &k.a, 2, 0, b"replaced", 0), keyed(GETK, &k.a),
            store(SET, &k.a, 3, 0, b"set", 0), keyed(GETK, &k.a),
        ]),
    ]),
    case("add on existing key: exists", |k| vec![
        send([set(&k.a, b"old"), store(ADD, &k.a, 5, 0, b"new", 0), keyed(GET, &k.a)]),
    ]),
    case("replace on missing key: not found", |k| vec![
        send([store(REPLACE, &k.a, 5, 0, b"new", 0), keyed(GET, &k.a)]),
    ]),
    case("quiet stores: silent on success, errors sent", |k| vec![
        send([
            store(SETQ, &k.a, 1, 0, b"a", 0), store(ADDQ, &k.a, 2, 0, b"a2", 0), store(ADDQ, &k.b, 3, 0, b"b", 0),
            store(REPLACEQ, &k.x, 4, 0, b"x", 0), store(REPLACEQ, &k.b, 5, 0, b"b2", 0),
            store(SETQ, &k.a, 6, 0, b"a3", cas_ref(7)),
            keyed(GETK, &k.a), keyed(GETK, &k.b), keyed(GETK, &k.x),
        ]),
    ]),
    case("set with matching and stale CAS", |k| vec![
        send([set(&k.a, b"one")]),
        send([store(SET, &k.a, 0, 0, b"two", cas_ref(1))]),
        send([store(SET, &k.a, 0, 0, b"stale", cas_ref(1))]),
        send([store(SET, &k.a, 0, 0, b"never", NEVER_CAS)]),
        send([keyed(GET, &k.a)]),
        send([store(SET, &k.x, 0, 0, b"missing", cas_ref(2))]),
        send([keyed(GET, &k.x)]),
    ]),
    case("add and replace with CAS", |k| vec![
        send([set(&k.a, b"one")]),
        send([store(ADD, &k.a, 0, 0, b"add-cas", cas_ref(1))]),
        send([store(REPLACE, &k.a, 0, 0, b"replace-stale", cas_ref(1))]),
        send([store(REPLACE, &k.a, 0, 0, b"replace-cas", cas_ref(2))]),
        send([store(SETQ, &k.a, 0, 0, b"setq-stale", cas_ref(1))]),
        send([keyed(GETK, &k.a)]),
    ]),
    case("set with an exptime in the past", |k| vec![
        send([store(SET, &k.a, 0, PAST, b"gone", 0), keyed(GET, &k.a), store(SET, &k.a, 0, 1000, b"kept", 0), keyed(GET, &k.a)]),
    ]),
    case("set with flags 0xffffffff", |k| vec![
        send([store(SET, &k.a, u32::MAX, 0, b"x", 0), keyed(GETK, &k.a)]),
    ]),
    // The header, then the extras and part of the key, then the rest.
    case("set split across writes", |k| {
        let req = store(SET, &k.a, 9, 0, b"0123456789", 0);
        vec![
            Step::Write(req[..10].to_vec()),
            Step::Sleep(30),
            Step::Write(req[10..HEADER + 8 + 3].to_vec()),
            Step::Sleep(30),
            send([req[HEADER + 8 + 3..].to_vec(), keyed(GETK, &k.a)]),
        ]
    }),
    case("largest value, and one byte too large", |k| {
        let max = max_value(k.a.len());
        vec![
            send([set(&k.a, &vec![b'm'; max])]),
            send([keyed(GET, &k.a)]),
            send([set(&k.a, &vec![b'M'; max + 1])]),
            send([keyed(GET, &k.a)]),
            send([set(&k.a, b"small"), keyed(GET, &k.a)]),
        ]
    }),

    // --- delete -----------------------------------------------------------
    case("delete and deleteq, hit and miss", |k| vec![
        send([
            set(&k.a, b"a"), set(&k.b, b"b"), keyed(DELETE, &k.a), keyed(DELETE, &k.a),
            keyed(DELETEQ, &k.b), keyed(DELETEQ, &k.b), keyed(GET, &k.a), keyed(GET, &k.b),
        ]),
    ]),
    case("delete with CAS", |k| vec![
        send([set(&k.a, b"one")]),
        send([set(&k.a, b"two")]),
        send([pkt(DELETE, &[], k.a.as_bytes(), b"", cas_ref(1))]),
        send([pkt(DELETEQ, &[], k.a.as_bytes(), b"", NEVER_CAS)]),
        send([keyed(GET, &k.a)]),
        send([pkt(DELETE, &[], k.a.as_bytes(), b"", cas_ref(2))]),
        send([keyed(GET, &k.a)]),
        send([pkt(DELETE, &[], k.a.as_bytes(), b"", cas_ref(2))]),
    ]),

    // --- incr / decr ------------------------------------------------------
    case("incr with initial value and exptime", |k| vec![
        send([delta(INCREMENT, &k.a, 1, 5, 1000, 0)]),
        send([delta(INCREMENT, &k.a, 10, 5, 1000, 0)]),
        send([keyed(GETK, &k.a)]),
        send([delta(DECREMENT, &k.a, 3, 99, 0xffff_ffff, 0)]),
        send([keyed(GET, &k.a)]),
    ]),
    case("decr creates with its initial value", |k| vec![
        send([delta(DECREMENT, &k.a, 1, 42, 0, 0), keyed(GET, &k.a)]),
    ]),
    case("incr with an exptime in the past", |k| vec![
        send([delta(INCREMENT, &k.a, 1, 7, PAST, 0), keyed(GET, &k.a)]),
    ]),
    case("incr/decr with exptime 0xffffffff on a missing key", |k| vec![
        send([
            delta(INCREMENT, &k.a, 1, 7, 0xffff_ffff, 0), delta(DECREMENT, &k.a, 1, 7, 0xffff_ffff, 0),
            delta(INCREMENTQ, &k.a, 1, 7, 0xffff_ffff, 0), delta(DECREMENTQ, &k.a, 1, 7, 0xffff_ffff, 0),
            keyed(GET, &k.a),
        ]),
    ]),
    case("incr/decr on a non-numeric value", |k| vec![
        send([
            set(&k.a, b"abc"), delta(INCREMENT, &k.a, 1, 0, 0, 0), delta(DECREMENT, &k.a, 1, 0, 0, 0),
            delta(INCREMENTQ, &k.a, 1, 0, 0, 0),
            set(&k.b, b"12abc"), delta(INCREMENT, &k.b, 1, 0, 0, 0),
            set(&k.d, b"123456789012345678901234567890"), delta(INCREMENT, &k.d, 1, 0, 0, 0),
            keyed(GET, &k.a),
        ]),
    ]),
    case("decr below zero, incr wraps at 2^64", |k| vec![
        send([
            set(&k.a, b"5"), delta(DECREMENT, &k.a, 100, 0, 0, 0), keyed(GET, &k.a),
            set(&k.b, b"18446744073709551615"), delta(INCREMENT, &k.b, 1, 0, 0, 0), keyed(GET, &k.b),
            delta(INCREMENT, &k.b, u64::MAX, 0, 0, 0), keyed(GET, &k.b),
        ]),
    ]),
    case("incr grows and decr shrinks the value, pipelined after a get; flags kept", |k| vec![
        send([
            store(SET, &k.a, 77, 0, b"99", 0),
            delta(INCREMENT, &k.a, 1, 0, 0, 0), keyed(GETK, &k.a),
            delta(DECREMENT, &k.a, 1, 0, 0, 0), keyed(GETK, &k.a),
            delta(DECREMENT, &k.a, 90, 0, 0, 0), keyed(GETK, &k.a),
        ]),
    ]),
    // memcached rewrites a counter in place (padded with spaces) only when
    // nothing else holds the item; see the pipelined case above, where the
    // unsent GETK reply still holds it.
    case("decr shrinks the value in place, one request at a time", |k| vec![
        send([store(SET, &k.a, 77, 0, b"100", 0)]),
        send([delta(DECREMENT, &k.a, 1, 0, 0, 0)]),
        send([keyed(GETK, &k.a)]),
        send([delta(DECREMENT, &k.a, 90, 0, 0, 0)]),
        send([keyed(GETK, &k.a)]),
        send([delta(INCREMENT, &k.a, 1, 0, 0, 0)]),
        send([keyed(GETK, &k.a)]),
    ]),
    case("incrq/decrq are silent on success", |k| vec![
        send([
            delta(INCREMENTQ, &k.a, 1, 10, 0, 0), delta(INCREMENTQ, &k.a, 5, 10, 0, 0),
            delta(DECREMENTQ, &k.a, 2, 10, 0, 0), keyed(GET, &k.a),
        ]),
    ]),
    case("incr with CAS", |k| vec![
        send([set(&k.a, b"10")]),
        send([delta(INCREMENT, &k.a, 1, 0, 0, cas_ref(1))]),
        send([delta(INCREMENT, &k.a, 1, 0, 0, cas_ref(1))]),
        send([delta(DECREMENT, &k.a, 1, 0, 0, NEVER_CAS)]),
        send([delta(DECREMENT, &k.a, 1, 0, 0, cas_ref(2))]),
        send([keyed(GET, &k.a)]),
        send([delta(INCREMENT, &k.x, 1, 3, 0, cas_ref(1))]),
    ]),

    // --- quit -------------------------------------------------------------
    case("quit", |k| vec![
        send([set(&k.a, b"a")]),
        close([bare(QUIT)]),
        Step::Reconnect,
        send([keyed(GET, &k.a)]),
    ]),
    case("quitq after a quiet set", |k| vec![
        close([store(SETQ, &k.a, 0, 0, b"q", 0), bare(QUITQ)]),
        Step::Reconnect,
        send([keyed(GET, &k.a)]),
    ]),
    case("quit after a get in the same write", |k| vec![close([keyed(GETK, &k.a), bare(QUIT)])]),

    // --- flush ------------------------------------------------------------
    case("flush without extras", |k| vec![
        send([set(&k.a, b"a"), bare(FLUSH), keyed(GET, &k.a), set(&k.a, b"b"), keyed(GET, &k.a)]),
    ]),
    case("flush with a zero exptime extra", |k| vec![
        send([set(&k.a, b"a"), pkt(FLUSH, &0u32.to_be_bytes(), b"", b"", 0), keyed(GET, &k.a)]),
    ]),
    case("flushq with and without extras", |k| vec![
        send([
            set(&k.a, b"a"), bare(FLUSHQ), keyed(GET, &k.a),
            set(&k.a, b"b"), pkt(FLUSHQ, &0u32.to_be_bytes(), b"", b"", 0), keyed(GET, &k.a),
        ]),
    ]),

    // --- noop, version ----------------------------------------------------
    case("noop and version", |_| vec![
        send([bare(NOOP), bare(VERSION), bare(NOOP)]),
        count([bare(VERSION)], 1),
        count([bare(NOOP)], 1),
    ]),

    // --- append / prepend -------------------------------------------------
    case("append and prepend", |k| vec![
        send([store(SET, &k.a, 12, 0, b"mid", 0), append(APPEND, &k.a, b"_end", 0), append(PREPEND, &k.a, b"start_", 0), keyed(GETK, &k.a)]),
    ]),
    case("append and prepend on a missing key", |k| vec![
        send([
            append(APPEND, &k.a, b"x", 0), append(PREPEND, &k.a, b"x", 0),
            append(APPENDQ, &k.a, b"x", 0), append(PREPENDQ, &k.a, b"x", 0), keyed(GET, &k.a),
        ]),
    ]),
    case("appendq and prependq are silent on success", |k| vec![
        send([
            set(&k.a, b"1"), append(APPENDQ, &k.a, b"2", 0), append(PREPENDQ, &k.a, b"0", 0),
            append(APPEND, &k.a, b"", 0), keyed(GET, &k.a),
        ]),
    ]),
    case("append and prepend with CAS", |k| vec![
        send([set(&k.a, b"x")]),
        send([append(APPEND, &k.a, b"y", cas_ref(1))]),
        send([append(APPEND, &k.a, b"z", cas_ref(1))]),
        send([append(PREPEND, &k.a, b"w", NEVER_CAS)]),
        send([append(PREPENDQ, &k.a, b"v", cas_ref(2))]),
        send([keyed(GET, &k.a)]),
    ]),

    // --- touch / gat ------------------------------------------------------
    case("touch, hit and miss", |k| vec![
        send([store(SET, &k.a, 3, 0, b"value", 0), touch(TOUCH, &k.a, 1000), touch(TOUCH, &k.missing, 1000), keyed(GET, &k.a)]),
    ]),
    case("gat, gatk, gatq, gatkq: hit and miss", |k| vec![
        send([
            store(SET, &k.a, 4, 0, b"value", 0),
            touch(GAT, &k.a, 1000), touch(GATK, &k.a, 1000), touch(GATQ, &k.a, 1000), touch(GATKQ, &k.a, 1000),
            touch(GAT, &k.missing, 1000), touch(GATK, &k.missing, 1000), touch(GATQ, &k.missing, 1000), touch(GATKQ, &k.missing, 1000),
        ]),
    ]),
    case("touch and gat with an exptime in the past", |k| vec![
        send([
            set(&k.a, b"a"), set(&k.b, b"b"),
            touch(TOUCH, &k.a, PAST), keyed(GET, &k.a), touch(GAT, &k.b, PAST), keyed(GET, &k.b),
        ]),
    ]),

    // --- opcodes memcached 1.6.18 does not serve --------------------------
    // An unknown command swallows the body length after the extras and key
    // it has already read: the padding keeps the next request aligned.
    case("verbosity is an unknown command", |_| vec![
        send([pkt(VERBOSITY, &1u32.to_be_bytes(), b"", b"", 0), vec![0; 4]]),
        send([bare(VERBOSITY)]),
    ]),
    case("unknown opcodes", |_| vec![
        send([bare(0x55)]),
        send([pkt(0x55, &[], b"abc", b"xyz", 0), b"PAD".to_vec()]),
        send([bare(0x1f)]),
        send([bare(0x25)]),
        send([bare(0xff)]),
    ]),
    case("SASL without SASL", |_| vec![
        send([bare(SASL_LIST_MECHS)]),
        send([pkt(SASL_AUTH, &[], b"PLAIN", b"\0user\0pass", 0)]),
        send([pkt(SASL_STEP, &[], b"PLAIN", b"more", 0)]),
        send([pkt(SASL_AUTH, &[], b"PLAIN", b"", 0)]),
    ]),
    case("SASL list mechs with a key", |_| vec![close([pkt(SASL_LIST_MECHS, &[], b"k", b"", 0)])]),
    case("SASL auth without a mechanism", |_| vec![close([pkt(SASL_AUTH, &[], b"", b"data", 0)])]),

    // --- malformed requests: memcached answers and closes -----------------
    case("get with extras", |k| vec![close([pkt(GET, &[0, 0, 0, 0], k.a.as_bytes(), b"", 0)])]),
    case("get with a value", |k| vec![close([pkt(GET, &[], k.a.as_bytes(), b"v", 0)])]),
    case("get without a key", |_| vec![close([bare(GET)])]),
    case("key length over body length", |k| {
        let key = k.key("abc");
        let mut r = raw_header(0x80, GET, key.len() as u16, 0, 2, 0);
        r.extend_from_slice(key.as_bytes());
        vec![close([r])]
    }),
    case("key and extras lengths over body length", |k| {
        let key = k.key("abc");
        let mut r = raw_header(0x80, SET, key.len() as u16, 8, key.len() as u32 + 4, 0);
        r.extend_from_slice(&set_ext(0, 0));
        r.extend_from_slice(key.as_bytes());
        vec![close([r])]
    }),
    case("key of 251 bytes", |k| vec![close([keyed(GET, &k.long(251))])]),
    case("set of a key of 251 bytes", |k| vec![close([set(&k.long(251), b"v")])]),
    case("set with 4 bytes of extras", |k| vec![close([pkt(SET, &[0, 0, 0, 0], k.a.as_bytes(), b"v", 0)])]),
    case("incr with 8 bytes of extras", |k| vec![close([pkt(INCREMENT, &[0; 8], k.a.as_bytes(), b"", 0)])]),
    case("delete with a value", |k| vec![close([pkt(DELETE, &[], k.a.as_bytes(), b"v", 0)])]),
    case("touch without extras", |k| vec![close([keyed(TOUCH, &k.a)])]),
    case("append with extras", |k| vec![close([pkt(APPEND, &set_ext(0, 0), k.a.as_bytes(), b"v", 0)])]),
    case("flush with a key", |k| vec![close([pkt(FLUSH, &[], k.a.as_bytes(), b"", 0)])]),
    case("flush with 2 bytes of extras", |_| vec![close([pkt(FLUSH, &[0, 0], b"", b"", 0)])]),
    case("stat with extras", |_| vec![close([pkt(STAT, &[0, 0, 0, 0], b"", b"", 0)])]),
    case("noop with a body", |_| vec![close([pkt(NOOP, &[], b"", b"x", 0)])]),
    case("version with a key", |_| vec![close([pkt(VERSION, &[], b"k", b"", 0)])]),
    case("quit with extras", |_| vec![close([pkt(QUIT, &[0, 0, 0, 0], b"", b"", 0)])]),
    case("bad magic after a request", |k| {
        let mut r = keyed(GET, &k.a);
        r[0] = 0x81;
        vec![send([keyed(GET, &k.a)]), close([r])]
    }),
    // The text line is longer than a header, so that it is read as one
    // (magic 'g').
    case("text command on a binary connection", |k| vec![
        send([keyed(GET, &k.a)]),
        close([format!("get {0}a {0}b {0}c\r\n", k.k).into_bytes()]),
    ]),
    case("quiet set then a malformed request", |k| vec![
        close([store(SETQ, &k.a, 0, 0, b"kept", 0), pkt(GET, &[0, 0, 0, 0], k.a.as_bytes(), b"", 0)]),
        Step::Reconnect,
        send([keyed(GET, &k.a)]),
    ]),
    // Last: a delayed flush leaves items readable until it is due.
    case("flush with a delay", |k| vec![
        send([set(&k.a, b"a"), pkt(FLUSH, &100u32.to_be_bytes(), b"", b"", 0), keyed(GET, &k.a)]),
    ]),
];

/// The `STAT` cases, on servers of their own (fresh statistics). The
/// first is the traffic whose counters `tcp_stat_replies_match_memcached`
/// compares.
#[rustfmt::skip]
pub const STAT_CASES: &[Row] = &[
    // Value sizes whose items are in the same slab class on both servers
    // (rmemcached's items are smaller than memcached's, and an item goes to
    // the smallest class that holds it, see docs/ARCHITECTURE.md).
    case("traffic for the statistics", |k| {
        let sizes = [10usize, 300, 1000, 10_000, 100_000];
        let fills = sizes.iter().enumerate().flat_map(|(i, &size)| {
            [set(&k.key(i), &vec![b'v'; size]), keyed(GET, &k.key(i))]
        });
        vec![send(fills.chain([
            keyed(GET, &k.missing),
            touch(TOUCH, &k.key(0), 1000),
            touch(GAT, &k.missing, 1000),
            keyed(DELETE, &k.key(1)),
            keyed(DELETE, &k.key(1)),
            delta(INCREMENT, &k.key("n"), 1, 1, 0, 0),
            delta(INCREMENT, &k.key("n"), 1, 1, 0, 0),
            delta(DECREMENT, &k.key("n"), 1, 1, 0xffff_ffff, 0),
            delta(DECREMENT, &k.key("m"), 1, 1, 0xffff_ffff, 0),
            store(SET, &k.key(0), 0, 0, b"x", NEVER_CAS),
        ]))]
    }),
    stat_names("stat, stat settings, stat items, stat slabs, stat sizes", |_| vec![
        send([keyed(STAT, "")]),
        settings("settings"),
        send([keyed(STAT, "items")]),
        send([keyed(STAT, "slabs")]),
        send([keyed(STAT, "sizes")]),
        settings("settingsXYZ"),
    ]),
    case("stat: unknown groups", |_| vec![
        send([keyed(STAT, "nosuchgroup")]),
        send([keyed(STAT, "conns")]),
        send([keyed(STAT, "item")]),
        send([keyed(STAT, "detail bogus")]),
    ]),
    // One prefix only: with several, memcached lists them in the order of
    // its prefix hash table, rmemcached sorted (docs/ARCHITECTURE.md).
    case("stat detail", |_| vec![
        send([keyed(STAT, "detail dump")]),
        send([keyed(STAT, "detail on")]),
        send([set("pfx:a", b"1"), keyed(GET, "pfx:a"), keyed(GET, "pfx:b"), keyed(DELETE, "pfx:a"), set("pfx:c", b"1")]),
        send([keyed(STAT, "detail dump")]),
        send([keyed(STAT, "detail off")]),
        send([keyed(STAT, "detail dump")]),
    ]),
    case("stat reset", |_| vec![
        send([keyed(STAT, "reset")]),
        send([keyed(STAT, "resetXYZ")]),
    ]),
    stat_names("stat after reset", |_| vec![
        send([keyed(STAT, "")]),
        send([keyed(STAT, "items")]),
    ]),
];

/// A datagram: its name and its request, built from the keys.
type UdpRow = (&'static str, fn(&Keys) -> Vec<u8>);

/// One datagram per entry, in order, sharing one CAS numbering and the key
/// prefix `u_` (`cas_ref(1)` is the first set's CAS).
#[rustfmt::skip]
pub const UDP_CASES: &[UdpRow] = &[
    ("set", |k| store(SET, &k.a, 5, 0, b"hello", 0)),
    ("get hit", |k| keyed(GET, &k.a)),
    ("getk hit", |k| keyed(GETK, &k.a)),
    ("get miss", |k| keyed(GET, &k.missing)),
    ("getk miss", |k| keyed(GETK, &k.missing)),
    ("getq miss alone", |k| keyed(GETQ, &k.missing)),
    ("add existing", |k| store(ADD, &k.a, 0, 0, b"x", 0)),
    ("set with CAS", |k| store(SET, &k.a, 6, 0, b"swapped", cas_ref(1))),
    ("incr with initial value", |k| delta(INCREMENT, &k.key("n"), 1, 7, 0, 0)),
    ("incr", |k| delta(INCREMENT, &k.key("n"), 3, 0, 0, 0)),
    ("decr", |k| delta(DECREMENT, &k.key("n"), 100, 0, 0, 0)),
    ("incr exptime 0xffffffff miss", |k| delta(INCREMENT, &k.missing, 1, 0, 0xffff_ffff, 0)),
    ("noop", |_| bare(NOOP)),
    ("version", |_| bare(VERSION)),
    ("multi-request datagram", |k| cat([
        store(SETQ, &k.b, 1, 0, b"bee", 0), keyed(GETK, &k.b), keyed(GETQ, &k.missing), keyed(GETKQ, &k.a),
        append(APPEND, &k.b, b"!", 0), keyed(GET, &k.b), keyed(DELETE, &k.b), keyed(GET, &k.b), bare(NOOP),
    ])),
    ("set 5000 bytes", |k| set(&k.key("big"), &(0..5000u32).map(|i| b'a' + (i % 26) as u8).collect::<Vec<u8>>())),
    ("get 5000 bytes", |k| keyed(GET, &k.key("big"))),
    ("touch", |k| touch(TOUCH, &k.a, 1000)),
    ("gatk", |k| touch(GATK, &k.a, 1000)),
    ("unknown opcode", |_| bare(0x55)),
    ("unknown stat", |_| keyed(STAT, "nosuchgroup")),
    ("flush then get", |k| cat([bare(FLUSH), keyed(GET, &k.a)])),
];

/// `rows` built, with the key prefix `bNNN_` (`NNN` counting from 0).
pub fn build(rows: &[Row]) -> Vec<Case> {
    rows.iter()
        .enumerate()
        .map(|(i, row)| Case {
            stat_names: row.stat_names,
            ..Case::new(row.name, (row.steps)(&Keys::new(format!("b{i:03}_"))))
        })
        .collect()
}

/// [`UDP_CASES`] built, one single-step case per datagram.
pub fn udp_cases() -> Vec<Case> {
    let k = Keys::new("u_".to_string());
    UDP_CASES
        .iter()
        .map(|(name, req)| Case::new(*name, vec![Step::Send(req(&k))]))
        .collect()
}
