//! The ASCII protocol: mirrors memcached's `proto_text.c`
//! (`tokenize_command`, `process_command_ascii`, `process_*_command`,
//! `complete_nread_ascii`).
//!
//! Everything here is pure: a command line goes in, reply bytes come out in
//! `out`, and an [`Action`] tells the connection what to do next (read a
//! value, swallow one, close). No sockets are touched, so every reply can be
//! unit-tested. Replies are memcached 1.6.18's byte for byte, quirks
//! included (see `number.rs` for the number parsing ones).

use std::sync::atomic::Ordering;

use super::get::GetCmd;
use super::number::{strtol, strtoul, strtoull};
use crate::cache::items::KEY_MAX_LENGTH;
use crate::cache::{DeltaResult, StoreMode, StoreResult};
use crate::server::Stop;
use crate::{stats, Server};

/// memcached's `MAX_TOKENS`: a line is cut into at most 23 tokens plus the
/// terminal one; `get` re-tokenizes the rest to take any number of keys.
pub const MAX_TOKENS: usize = 24;

/// Lines longer than this without a `\n` close the connection unless they
/// are a `get`/`gets` (memcached's 2048-byte rule in `try_read_command_ascii`).
pub const MAX_LINE_NO_GET: usize = 2048;

/// Longest line accepted at all, even for a multi-get. memcached grows its
/// buffer without bound here; a bound keeps one client from taking all
/// memory.
pub const MAX_LINE: usize = 4 * 1024 * 1024;

/// A store command waiting for its value (memcached's `conn_nread` with
/// `c->item` allocated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingStore {
    /// How to store.
    pub mode: StoreMode,
    /// The key.
    pub key: Vec<u8>,
    /// Client flags.
    pub flags: u32,
    /// Relative exptime.
    pub exptime: u32,
    /// The client's CAS unique (`cas` only).
    pub cas: u64,
    /// Bytes to read: the value plus its `\r\n` (binary: the value).
    pub vlen: usize,
    /// For a binary request, what its reply needs.
    pub bin: Option<super::binary::BinReq>,
    /// For `ms`, what its reply needs.
    pub meta: Option<super::meta::MetaStore>,
}

/// What the connection does after a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The reply (if any) is in `out`; parse the next command.
    Continue,
    /// Write out everything queued before the next command (memcached's
    /// `conn_mwrite` after a retrieval).
    Flush,
    /// A retrieval spent its reply budget: write out what is queued, then
    /// serve the keys that start at this offset of the command line.
    GetMore(GetCmd, usize),
    /// Read `vlen` bytes of value, then call [`complete_nread`].
    Nread(PendingStore),
    /// Discard this many bytes (a value that cannot be stored).
    Swallow(usize),
    /// Close at once, without a reply.
    Close,
    /// Send what is queued, then close (`quit`).
    Quit,
    /// Stop the server (`shutdown` with `-A`).
    Shutdown(crate::server::Stop),
}

/// Reply bytes a retrieval may queue on a stream connection before it
/// pauses to write them out: what a connection holds without charge (see
/// `mem_budget`).
pub const STREAM_GET_BUDGET: usize = crate::mem_budget::STREAM_FREE;

/// Per-connection protocol state that outlives one command.
#[derive(Debug)]
pub struct Session {
    /// memcached's `c->noreply`: set by a trailing `noreply`, consumed by
    /// the next reply line, which is then not sent.
    pub noreply: bool,
    /// Where in the output the replies not yet handed to the socket begin.
    /// memcached drops those when a `get` meets a too-long key or the
    /// connection is closed; they are the replies since the last flush.
    pub unsent: usize,
    /// Reply bytes one retrieval may queue before it pauses (see
    /// `proto::get`).
    pub get_budget: usize,
    /// Keys that binary and meta gets answered since the replies were last
    /// written out. memcached's reply holds a reference to such an item
    /// until it is sent, and `incr`/`decr` then make a new item instead of
    /// rewriting the held one in place; the value's length shows it.
    pub held: HeldKeys,
    /// The worker's pool under `-o read_buf_mem_limit` (stream
    /// connections only; `None` counts nothing).
    pub mem: Option<std::sync::Arc<crate::conn_mem::ThreadMem>>,
    /// Response objects this connection holds from the pool.
    pub resps: usize,
    /// A buffer for the key of the next store (see [`Session::key_copy`]).
    pub key_buf: Vec<u8>,
    /// The most bytes the output may hold: a UDP datagram's reply budget;
    /// unlimited on a stream, whose replies are charged to `pool` instead.
    /// Checked by [`Session::room`] before a value is copied.
    pub reply_limit: usize,
    /// A reply was refused for want of memory: the rest of the UDP
    /// datagram is not run.
    pub reply_spent: bool,
    /// The server's reply pool (stream connections): output bytes past
    /// `mem_budget::STREAM_FREE` are charged to it before they are copied,
    /// until the output is all written.
    pub pool: Option<std::sync::Arc<crate::mem_budget::Pool>>,
    /// Bytes this connection has charged to `pool`.
    pub charged: usize,
}

/// Keys a session tracks as held before it takes every key as held.
const MAX_HELD: usize = 64;

impl Session {
    /// Take a response object for one more reply (memcached's
    /// `resp_start`); false when the pool is spent.
    pub fn resp_start(&mut self) -> bool {
        match &self.mem {
            None => true,
            Some(m) if m.take_resp() => {
                self.resps += 1;
                true
            }
            Some(_) => false,
        }
    }

    /// Give back the response object the last [`Session::resp_start`]
    /// took (it was taken for a request that turned out to be incomplete).
    pub fn resp_undo(&mut self) {
        if let Some(m) = &self.mem {
            m.put_resps(1);
            self.resps -= 1;
        }
    }

    /// A store's key, copied into the buffer the last store gave back
    /// (see [`complete_nread`]), so that a store allocates nothing once
    /// the connection has warmed up.
    pub fn key_copy(&mut self, key: &[u8]) -> Vec<u8> {
        let mut k = std::mem::take(&mut self.key_buf);
        k.clear();
        k.extend_from_slice(key);
        k
    }

    /// Whether `n` more reply bytes may be added to an output of `len`
    /// bytes: within the reply limit, and charged to the pool if past what
    /// the connection holds without charge. Called before a value is
    /// copied, so that a refused reply costs nothing.
    pub fn room(&mut self, len: usize, n: usize) -> bool {
        let end = len.saturating_add(n);
        if end > self.reply_limit {
            return false;
        }
        if let Some(pool) = &self.pool {
            // The whole output buffer is held until it is all written,
            // its sent part included.
            let need = end.saturating_sub(crate::mem_budget::STREAM_FREE);
            if need > self.charged {
                if !pool.take(need - self.charged) {
                    return false;
                }
                self.charged = need;
            }
        }
        true
    }

    /// The output buffer holds `held` bytes (0 once all is written): give
    /// back what the pool no longer needs to cover.
    pub fn settle(&mut self, held: usize) {
        let need = held.saturating_sub(crate::mem_budget::STREAM_FREE);
        if need < self.charged {
            if let Some(pool) = &self.pool {
                pool.give(self.charged - need);
            }
            self.charged = need;
        }
    }

    /// Start over for the next UDP datagram, keeping the buffers: every
    /// reply of the datagram shares `budget`.
    pub fn restart(&mut self, budget: usize) {
        let mut held = std::mem::take(&mut self.held);
        held.clear();
        *self = Session {
            get_budget: usize::MAX,
            reply_limit: budget,
            held,
            key_buf: std::mem::take(&mut self.key_buf),
            ..Session::default()
        };
    }

    /// Give back every response object held (the replies were written or
    /// dropped).
    pub fn release_resps(&mut self) {
        if let Some(m) = &self.mem {
            m.put_resps(std::mem::take(&mut self.resps));
        }
    }
}

/// The keys of [`Session::held`]. The first `len` buffers hold the keys;
/// the rest are kept for later replies, so holding a key allocates nothing
/// once the connection has warmed up.
#[derive(Debug, Default)]
pub struct HeldKeys {
    keys: Vec<Vec<u8>>,
    len: usize,
}

impl HeldKeys {
    /// Remember that an unsent reply holds the item of `key`.
    pub fn hold(&mut self, key: &[u8]) {
        if self.len < MAX_HELD && !self.holds(key) {
            if self.len == self.keys.len() {
                self.keys.push(Vec::new());
            }
            let slot = &mut self.keys[self.len];
            slot.clear();
            slot.extend_from_slice(key);
            self.len += 1;
        }
    }

    /// Whether an unsent reply holds the item of `key` (after
    /// `MAX_HELD` (64) held keys, any key is taken as held).
    pub fn holds(&self, key: &[u8]) -> bool {
        self.len >= MAX_HELD || self.keys[..self.len].iter().any(|k| k == key)
    }

    /// The replies were written out: no item is held any more.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl Default for Session {
    fn default() -> Self {
        Session {
            noreply: false,
            unsent: 0,
            get_budget: STREAM_GET_BUDGET,
            held: HeldKeys::default(),
            mem: None,
            resps: 0,
            key_buf: Vec::new(),
            reply_limit: usize::MAX,
            reply_spent: false,
            pool: None,
            charged: 0,
        }
    }
}

/// Append a one-line reply with `\r\n`, unless `noreply` swallows it
/// (memcached's `out_string`).
pub(crate) fn out_string(sess: &mut Session, out: &mut Vec<u8>, s: &[u8]) {
    if sess.noreply {
        sess.noreply = false;
        return;
    }
    out.extend_from_slice(s);
    out.extend_from_slice(b"\r\n");
}

/// The tokens of one line, as memcached's `tokenize_command` cuts them:
/// split on single spaces only, at most `MAX_TOKENS - 1` tokens, and the
/// unread `rest` when the limit was hit.
#[derive(Debug)]
pub struct Tokens<'a> {
    toks: [&'a [u8]; MAX_TOKENS],
    len: usize,
    /// Text after the last token when the line held more tokens than fit.
    pub rest: Option<&'a [u8]>,
}

impl<'a> Tokens<'a> {
    /// Tokenize `line` (already stripped of `\r\n`).
    pub fn new(line: &'a [u8]) -> Tokens<'a> {
        let mut t = Tokens {
            toks: [&[]; MAX_TOKENS],
            len: 0,
            rest: None,
        };
        let mut s = 0;
        let mut e = 0;
        while e < line.len() {
            if line[e] == b' ' {
                if s != e {
                    t.toks[t.len] = &line[s..e];
                    t.len += 1;
                    if t.len == MAX_TOKENS - 1 {
                        e += 1;
                        s = e;
                        break;
                    }
                }
                s = e + 1;
            }
            e += 1;
        }
        if s != e {
            t.toks[t.len] = &line[s..e];
            t.len += 1;
        }
        if e < line.len() {
            t.rest = Some(&line[e..]);
        }
        t
    }

    /// memcached's `ntokens`: the real tokens plus the terminal one.
    pub fn ntokens(&self) -> usize {
        self.len + 1
    }

    /// Token `i`, or an empty slice past the end (memcached's terminal
    /// token has length 0).
    pub fn get(&self, i: usize) -> &'a [u8] {
        if i < self.len {
            self.toks[i]
        } else {
            &[]
        }
    }

    /// The real tokens.
    pub fn as_slice(&self) -> &[&'a [u8]] {
        &self.toks[..self.len]
    }
}

/// memcached's `set_noreply_maybe`: a last token of `noreply` sets the flag.
pub(crate) fn set_noreply_maybe(sess: &mut Session, t: &Tokens<'_>) -> bool {
    if t.len > 0 && t.get(t.len - 1) == b"noreply" {
        sess.noreply = true;
    }
    sess.noreply
}

/// The opening shared by the commands that take `<key> ... [noreply]`:
/// note a trailing `noreply`, then refuse a key over 250 bytes with
/// memcached's reply.
fn key_arg<'a>(sess: &mut Session, t: &Tokens<'a>, out: &mut Vec<u8>) -> Option<&'a [u8]> {
    set_noreply_maybe(sess, t);
    let key = t.get(1);
    if key.len() > KEY_MAX_LENGTH {
        out_string(sess, out, b"CLIENT_ERROR bad command line format");
        return None;
    }
    Some(key)
}

/// Process one command line (memcached's `process_command_ascii`). `line`
/// has had its `\n` and one `\r` removed.
pub fn process_command(
    server: &Server,
    sess: &mut Session,
    line: &[u8],
    out: &mut Vec<u8>,
) -> Action {
    // The C code works on a NUL-terminated string: a NUL ends the line.
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    log::debug!("<{}", String::from_utf8_lossy(line));
    let t = Tokens::new(line);
    let n = t.ntokens();
    let cmd = t.get(0);
    if n < 2 || cmd.len() < 2 {
        out_string(sess, out, b"ERROR");
        return Action::Continue;
    }
    // WANT_TOKENS_*: a wrong token count is a plain ERROR.
    let want = |ok: bool, sess: &mut Session, out: &mut Vec<u8>| {
        if !ok {
            out_string(sess, out, b"ERROR");
        }
        ok
    };
    let store = |mode, sess: &mut Session, out: &mut Vec<u8>| {
        let ok = if mode == StoreMode::Cas {
            n == 7 || n == 8
        } else {
            n == 6 || n == 7
        };
        if !ok {
            out_string(sess, out, b"ERROR");
            return Action::Continue;
        }
        process_update(server, sess, &t, mode, out)
    };
    // Meta commands are all two letters, starting with `m`.
    if cmd.len() == 2 && cmd[0] == b'm' {
        return super::meta::process(server, sess, &t, out);
    }
    match cmd {
        b"get" | b"gets" | b"gat" | b"gats" | b"bget" => {
            if want(n >= 3, sess, out) {
                let cas = cmd == b"gets" || cmd == b"gats";
                let touch = cmd == b"gat" || cmd == b"gats";
                return super::get::process_get(server, sess, line, &t, cas, touch, out);
            }
        }
        b"set" => return store(StoreMode::Set, sess, out),
        b"add" => return store(StoreMode::Add, sess, out),
        b"replace" => return store(StoreMode::Replace, sess, out),
        b"append" => return store(StoreMode::Append, sess, out),
        b"prepend" => return store(StoreMode::Prepend, sess, out),
        b"cas" => return store(StoreMode::Cas, sess, out),
        b"incr" | b"decr" => {
            if want(n == 4 || n == 5, sess, out) {
                process_arithmetic(server, sess, &t, cmd == b"incr", out);
            }
        }
        b"delete" => {
            if want((3..=5).contains(&n), sess, out) {
                process_delete(server, sess, &t, out);
            }
        }
        b"touch" => {
            if want(n == 4 || n == 5, sess, out) {
                process_touch(server, sess, &t, out);
            }
        }
        b"stats" => {
            // A statistics reply is bounded by the server's own state (a
            // few kB; `stats cachedump` is capped below); it is built,
            // then checked against a UDP datagram's budget.
            let mark = out.len();
            process_stat(server, sess, &t, out);
            if out.len() > sess.reply_limit {
                out.truncate(mark);
                out_string(sess, out, b"SERVER_ERROR out of memory writing stats");
                sess.reply_spent = true;
            }
        }
        b"slabs" => super::admin::process_slabs(server, sess, &t, out),
        b"cache_memlimit" => {
            if want(n == 3 || n == 4, sess, out) {
                super::admin::process_memlimit(server, sess, &t, out);
            }
        }
        b"flush_all" => {
            if want((2..=4).contains(&n), sess, out) {
                process_flush_all(server, sess, &t, out);
            }
        }
        b"version" => {
            out_string(sess, out, format!("VERSION {}", crate::VERSION).as_bytes());
        }
        b"quit" => return Action::Quit,
        b"shutdown" => return process_shutdown(server, sess, &t, out),
        b"verbosity" => {
            if want(n == 3 || n == 4, sess, out) {
                set_noreply_maybe(sess, &t);
                match strtoul(t.get(1)) {
                    Some(level) => {
                        server.set_verbosity(level);
                        out_string(sess, out, b"OK");
                    }
                    None => out_string(sess, out, b"CLIENT_ERROR bad command line format"),
                }
            }
        }
        _ => {
            // memcached picks a command by its first letter; only names
            // outside those letters are checked for HTTP, and a browser or
            // proxy speaking HTTP to us is hung up on.
            let known_letter = matches!(cmd[0], b'g' | b's' | b'a' | b'c' | b'i' | b'd' | b't')
                || (cmd[0] == b'm' && cmd.len() == 2);
            if !known_letter && t.get(n - 2).starts_with(b"HTTP/") {
                return Action::Close;
            }
            out_string(sess, out, b"ERROR");
        }
    }
    Action::Continue
}

/// `set`, `add`, `replace`, `append`, `prepend`, `cas` up to the value
/// (memcached's `process_update_command`).
fn process_update(
    server: &Server,
    sess: &mut Session,
    t: &Tokens<'_>,
    mode: StoreMode,
    out: &mut Vec<u8>,
) -> Action {
    let Some(key) = key_arg(sess, t, out) else {
        return Action::Continue;
    };
    let (Some(flags), Some(exptime), Some(vlen)) =
        (strtoul(t.get(2)), strtol(t.get(3)), strtol(t.get(4)))
    else {
        out_string(sess, out, b"CLIENT_ERROR bad command line format");
        return Action::Continue;
    };
    let exptime = server.cache.clock().realtime(exptime);
    let mut cas = 0;
    if mode == StoreMode::Cas {
        match strtoull(t.get(5)) {
            Some(c) => cas = c,
            None => {
                out_string(sess, out, b"CLIENT_ERROR bad command line format");
                return Action::Continue;
            }
        }
    }
    if !(0..=i32::MAX - 2).contains(&vlen) {
        out_string(sess, out, b"CLIENT_ERROR bad command line format");
        return Action::Continue;
    }
    let nbytes = vlen as usize;
    let vlen = nbytes + 2;
    if let Some(r) = admit(server, key, flags, nbytes, mode == StoreMode::Set) {
        out_string(sess, out, r.text());
        return Action::Swallow(vlen);
    }
    Action::Nread(PendingStore {
        mode,
        key: sess.key_copy(key),
        flags,
        exptime,
        cas,
        vlen,
        bin: None,
        meta: None,
    })
}

/// The value of a store has arrived: `data` is `vlen` bytes, which must end
/// in `\r\n` (memcached's `complete_nread_ascii`).
pub fn complete_nread(
    server: &Server,
    sess: &mut Session,
    p: PendingStore,
    data: &[u8],
    out: &mut Vec<u8>,
) {
    store_value(server, sess, &p, data, out);
    sess.key_buf = p.key;
}

fn store_value(
    server: &Server,
    sess: &mut Session,
    p: &PendingStore,
    data: &[u8],
    out: &mut Vec<u8>,
) {
    if let Some(req) = p.bin {
        return super::binary::complete_store(server, req, p, data, out);
    }
    if let Some(m) = &p.meta {
        return super::meta::complete_mset(server, m, p, data, out);
    }
    let s = &server.stats;
    s.cmd_set.fetch_add(1, Ordering::Relaxed);
    if !data.ends_with(b"\r\n") {
        out_string(sess, out, b"CLIENT_ERROR bad data chunk");
        return;
    }
    let value = &data[..data.len() - 2];
    let (res, _) = server
        .cache
        .store(p.mode, &p.key, p.flags, p.exptime, value, p.cas);
    count_cas(server, p.mode, res);
    let reply: &[u8] = match res {
        StoreResult::Stored => b"STORED",
        StoreResult::Exists => b"EXISTS",
        StoreResult::NotFound => b"NOT_FOUND",
        StoreResult::NotStored => b"NOT_STORED",
        StoreResult::TooLarge => b"SERVER_ERROR object too large for cache",
        StoreResult::NoMemory => b"SERVER_ERROR out of memory storing object",
    };
    out_string(sess, out, reply);
}

/// A store whose value found the in-flight pool spent before its first
/// byte was read (`mem_budget`): the reply memcached gives when it cannot
/// allocate the item, in the request's protocol, and a set removes the
/// old value, as there. The value is then swallowed.
pub fn refuse_store(server: &Server, sess: &mut Session, p: PendingStore, out: &mut Vec<u8>) {
    server.stats.store_no_memory.fetch_add(1, Ordering::Relaxed);
    if p.mode == StoreMode::Set || p.meta.is_some() {
        server.cache.delete(&p.key);
    }
    if let Some(req) = p.bin {
        super::binary::refuse_store(req, out);
    } else if p.meta.is_some() {
        // An error is sent even in quiet mode.
        out.extend_from_slice(Refusal::NoMemory.text());
        out.extend_from_slice(b"\r\n");
    } else {
        out_string(sess, out, Refusal::NoMemory.text());
    }
    sess.key_buf = p.key;
}

/// Why a store is refused before its value is read (memcached's
/// `item_alloc` failing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Larger than `-I` allows.
    TooLarge,
    /// No memory to be had (`-M`).
    NoMemory,
}

impl Refusal {
    /// The text protocol's reply.
    pub(crate) fn text(self) -> &'static [u8] {
        match self {
            Refusal::TooLarge => b"SERVER_ERROR object too large for cache",
            Refusal::NoMemory => b"SERVER_ERROR out of memory storing object",
        }
    }
}

/// Whether a store of this key and value size may go on to read its value;
/// records the set for `stats detail` and counts a refusal. On a refusal
/// with `unlink_old` (a set; any `ms`), the old value is removed, as
/// memcached does so that stale data does not outlive a failed store.
pub(crate) fn admit(
    server: &Server,
    key: &[u8],
    flags: u32,
    nbytes: usize,
    unlink_old: bool,
) -> Option<Refusal> {
    server.prefix.record_set(key);
    let refusal = if !server.cache.size_ok(key.len(), flags, nbytes) {
        server.stats.store_too_large.fetch_add(1, Ordering::Relaxed);
        Refusal::TooLarge
    } else if !server.cache.can_alloc(key.len(), flags, nbytes) {
        server.stats.store_no_memory.fetch_add(1, Ordering::Relaxed);
        Refusal::NoMemory
    } else {
        return None;
    };
    if unlink_old {
        server.cache.delete(key);
    }
    Some(refusal)
}

/// Count a `cas` store's outcome (`cas_hits`, `cas_badval`, `cas_misses`);
/// other modes count nothing here.
pub(crate) fn count_cas(server: &Server, mode: StoreMode, res: StoreResult) {
    if mode != StoreMode::Cas {
        return;
    }
    let s = &server.stats;
    let c = match res {
        StoreResult::Stored => &s.cas_hits,
        StoreResult::Exists => &s.cas_badval,
        _ => &s.cas_misses,
    };
    c.fetch_add(1, Ordering::Relaxed);
}

/// `incr` / `decr` (memcached's `process_arithmetic_command`).
fn process_arithmetic(
    server: &Server,
    sess: &mut Session,
    t: &Tokens<'_>,
    incr: bool,
    out: &mut Vec<u8>,
) {
    let Some(key) = key_arg(sess, t, out) else {
        return;
    };
    let Some(delta) = strtoull(t.get(2)) else {
        out_string(sess, out, b"CLIENT_ERROR invalid numeric delta argument");
        return;
    };
    let s = &server.stats;
    let (hits, misses) = if incr {
        (&s.incr_hits, &s.incr_misses)
    } else {
        (&s.decr_hits, &s.decr_misses)
    };
    match server.cache.delta(key, incr, delta, 0, true).0 {
        DeltaResult::Ok(v) => {
            hits.fetch_add(1, Ordering::Relaxed);
            out_string(sess, out, v.to_string().as_bytes());
        }
        DeltaResult::NonNumeric => out_string(
            sess,
            out,
            b"CLIENT_ERROR cannot increment or decrement non-numeric value",
        ),
        DeltaResult::NoMemory => out_string(sess, out, b"SERVER_ERROR out of memory"),
        DeltaResult::NotFound | DeltaResult::Exists => {
            misses.fetch_add(1, Ordering::Relaxed);
            out_string(sess, out, b"NOT_FOUND");
        }
    }
}

/// `delete <key> [0] [noreply]` (memcached's `process_delete_command`).
fn process_delete(server: &Server, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let n = t.ntokens();
    if n > 3 {
        let hold_is_zero = t.get(2) == b"0";
        let noreply = set_noreply_maybe(sess, t);
        let valid = (n == 4 && (hold_is_zero || noreply)) || (n == 5 && hold_is_zero && noreply);
        if !valid {
            out_string(
                sess,
                out,
                b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]",
            );
            return;
        }
    }
    let key = t.get(1);
    if key.len() > KEY_MAX_LENGTH {
        out_string(sess, out, b"CLIENT_ERROR bad command line format");
        return;
    }
    server.prefix.record_delete(key);
    let s = &server.stats;
    if server.cache.delete(key) {
        s.delete_hits.fetch_add(1, Ordering::Relaxed);
        out_string(sess, out, b"DELETED");
    } else {
        s.delete_misses.fetch_add(1, Ordering::Relaxed);
        out_string(sess, out, b"NOT_FOUND");
    }
}

/// `touch <key> <exptime> [noreply]` (memcached's `process_touch_command`).
fn process_touch(server: &Server, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let Some(key) = key_arg(sess, t, out) else {
        return;
    };
    let Some(exptime) = strtol(t.get(2)) else {
        out_string(sess, out, b"CLIENT_ERROR invalid exptime argument");
        return;
    };
    let s = &server.stats;
    s.cmd_touch.fetch_add(1, Ordering::Relaxed);
    if server
        .cache
        .touch(key, server.cache.clock().realtime(exptime))
    {
        s.touch_hits.fetch_add(1, Ordering::Relaxed);
        out_string(sess, out, b"TOUCHED");
    } else {
        s.touch_misses.fetch_add(1, Ordering::Relaxed);
        out_string(sess, out, b"NOT_FOUND");
    }
}

/// `flush_all [delay] [noreply]` (memcached's `process_flush_all_command`).
fn process_flush_all(server: &Server, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) {
    set_noreply_maybe(sess, t);
    server.stats.cmd_flush.fetch_add(1, Ordering::Relaxed);
    if !server.settings.flush_enabled {
        out_string(sess, out, b"CLIENT_ERROR flush_all not allowed");
        return;
    }
    let mut delay = 0;
    if t.ntokens() != if sess.noreply { 3 } else { 2 } {
        match strtol(t.get(1)) {
            Some(d) => delay = d,
            None => {
                out_string(sess, out, b"CLIENT_ERROR invalid exptime argument");
                return;
            }
        }
    }
    let when = if delay > 0 {
        server.cache.clock().realtime(delay)
    } else {
        0
    };
    server.cache.flush_all(when);
    out_string(sess, out, b"OK");
}

/// `shutdown [graceful]`, only with `-A`.
fn process_shutdown(
    server: &Server,
    sess: &mut Session,
    t: &Tokens<'_>,
    out: &mut Vec<u8>,
) -> Action {
    if !server.settings.shutdown_command {
        out_string(sess, out, b"ERROR: shutdown not enabled");
        return Action::Continue;
    }
    // memcached raises SIGINT for `shutdown`, SIGUSR1 for `graceful`.
    match (t.ntokens(), t.get(1)) {
        (2, _) => return Action::Shutdown(Stop::Signal),
        (3, b"graceful") => return Action::Shutdown(Stop::Graceful),
        _ => {}
    }
    out_string(sess, out, b"CLIENT_ERROR invalid shutdown mode");
    Action::Continue
}

/// `stats [group]` (memcached's `process_stat`).
fn process_stat(server: &Server, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let n = t.ntokens();
    if n == 2 {
        stats::general(server, out);
        return;
    }
    match t.get(1) {
        b"reset" => {
            server.stats.reset();
            server.cache.reset_stats();
            server.prefix.clear();
            out_string(sess, out, b"RESET");
        }
        b"settings" => stats::settings(
            &server.settings,
            server.verbosity(),
            server.cache.limit(),
            server.prefix.enabled(),
            out,
        ),
        b"detail" => match t.get(2) {
            b"on" | b"off" if n >= 4 => {
                server.prefix.set_enabled(t.get(2) == b"on");
                out_string(sess, out, b"OK");
            }
            b"dump" if n >= 4 => server.prefix.dump(out),
            _ => out_string(sess, out, b"CLIENT_ERROR usage: stats detail on|off|dump"),
        },
        b"cachedump" => {
            if !server.settings.dump_enabled {
                out_string(sess, out, b"CLIENT_ERROR stats cachedump not allowed");
            } else if n < 5 {
                out_string(sess, out, b"CLIENT_ERROR bad command line");
            } else {
                match (strtoul(t.get(2)), strtoul(t.get(3))) {
                    (Some(id), Some(limit)) if id as usize > crate::cache::slabs::MAX_CLASSES => {
                        let _ = limit;
                        out_string(sess, out, b"CLIENT_ERROR Illegal slab id");
                    }
                    (Some(id), Some(limit)) => {
                        let id = id as usize;
                        if id <= server.cache.classes().largest() {
                            // Over UDP, cut to what the datagram's budget
                            // has left.
                            let room = sess.reply_limit.saturating_sub(out.len());
                            let cap = stats::CACHEDUMP_MAX.min(room);
                            stats::cachedump(server, id, limit as usize, cap, out);
                        } else {
                            out.extend_from_slice(b"END\r\n");
                        }
                    }
                    _ => out_string(sess, out, b"CLIENT_ERROR bad command line format"),
                }
            }
        }
        b"items" | b"sizes" | b"slabs" | b"conns" => stats::group(server, t.get(1), out),
        // memcached built with extstore, but running without it, prints an
        // empty block (whatever follows); there is no extstore here.
        b"extstore" => out.extend_from_slice(b"END\r\n"),
        _ => out_string(sess, out, b"ERROR"),
    }
}

#[cfg(test)]
mod tests;
