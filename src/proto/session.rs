//! Protocol state that outlives one command: memcached's per-connection
//! `noreply`, the reply budget, the items a queued reply holds, and the
//! SASL exchange.
//!
//! The budget is one mechanism for every protocol and transport: a UDP
//! datagram's replies share a fixed limit, a stream's replies are charged
//! to the memory the connection lends through [`ReplyMemory`]. Either way
//! [`Session::room`] is asked before a value is copied, so that a refused
//! reply costs nothing.

use super::tokens::Tokens;
use crate::sasl::SaslSession;

/// The memory a connection accounts for its replies, lent to the
/// protocols (the connection owns the bookkeeping: see `conn::mem`).
pub trait ReplyMemory: std::fmt::Debug + Send {
    /// Whether the output may grow to `end` bytes; what that takes is
    /// charged before it is spent.
    fn reserve(&mut self, end: usize) -> bool;
    /// The output holds `held` bytes (0 once all is written): give back
    /// what no longer needs to be covered.
    fn settle(&mut self, held: usize);
    /// A response object for one more reply (memcached's `resp_start`,
    /// under `-o read_buf_mem_limit`); false when none is to be had.
    fn resp_start(&mut self) -> bool;
    /// Give back the response object the last `resp_start` took (it was
    /// taken for a request that turned out to be incomplete).
    fn resp_undo(&mut self);
    /// Give back every response object held (the replies were written or
    /// dropped).
    fn release_resps(&mut self);
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
    /// A buffer for the key of the next store (see [`Session::key_copy`]).
    pub key_buf: Vec<u8>,
    /// The most bytes the output may hold: a UDP datagram's reply budget;
    /// unlimited on a stream, whose replies are charged to `memory` instead.
    /// Checked by [`Session::room`] before a value is copied.
    pub reply_limit: usize,
    /// A reply was refused for want of memory: the rest of the UDP
    /// datagram is not run.
    pub reply_spent: bool,
    /// The memory the connection charges its replies to (stream
    /// connections; `None` charges nothing). Lent by [`Session::lend`].
    memory: Option<Box<dyn ReplyMemory>>,
    /// Output bytes `memory` covers without a charge: a reply that stays
    /// within them asks nothing of it.
    free: usize,
    /// `memory` has been charged since it last settled to nothing.
    charging: bool,
    /// `memory` counts response objects (`-o read_buf_mem_limit`).
    counts_resps: bool,
    /// The connection's SASL exchange and whether it has authenticated
    /// (`-S`; see `proto::binary::sasl`). Its library state is disposed
    /// of when the session, and so the connection, goes.
    pub sasl: SaslSession,
}

/// Keys a session tracks as held before it takes every key as held.
const MAX_HELD: usize = 64;

impl Session {
    /// Take a response object for one more reply (memcached's
    /// `resp_start`); false when the pool is spent.
    pub fn resp_start(&mut self) -> bool {
        !self.counts_resps || self.memory.as_mut().is_none_or(|m| m.resp_start())
    }

    /// Charge this session's replies to `memory`, which covers the first
    /// `free` bytes of output without a charge and, with `counts_resps`,
    /// counts memcached's response objects.
    pub fn lend(&mut self, memory: Box<dyn ReplyMemory>, free: usize, counts_resps: bool) {
        self.memory = Some(memory);
        self.free = free;
        self.charging = false;
        self.counts_resps = counts_resps;
    }

    /// Whether memory has been lent.
    pub fn has_memory(&self) -> bool {
        self.memory.is_some()
    }

    /// Give back the response object the last [`Session::resp_start`]
    /// took (it was taken for a request that turned out to be incomplete).
    pub fn resp_undo(&mut self) {
        if let (true, Some(m)) = (self.counts_resps, &mut self.memory) {
            m.resp_undo();
        }
    }

    /// A store's key, copied into the buffer the last store gave back
    /// (see [`super::complete::complete_nread`]), so that a store allocates nothing once
    /// the connection has warmed up.
    pub fn key_copy(&mut self, key: &[u8]) -> Vec<u8> {
        let mut k = std::mem::take(&mut self.key_buf);
        k.clear();
        k.extend_from_slice(key);
        k
    }

    /// Whether `n` more reply bytes may be added to an output of `len`
    /// bytes: within the reply limit, and charged to the connection's
    /// memory. Called before a value is copied, so that a refused reply
    /// costs nothing.
    pub fn room(&mut self, len: usize, n: usize) -> bool {
        let end = len.saturating_add(n);
        if end > self.reply_limit {
            return false;
        }
        match &mut self.memory {
            Some(m) if end > self.free => {
                self.charging = true;
                m.reserve(end)
            }
            _ => true,
        }
    }

    /// The output buffer holds `held` bytes (0 once all is written): give
    /// back what the connection's memory no longer needs to cover.
    pub fn settle(&mut self, held: usize) {
        if let (true, Some(m)) = (self.charging, &mut self.memory) {
            m.settle(held);
            self.charging = held > self.free;
        }
    }

    /// Start over for the next UDP datagram, keeping the buffers: every
    /// reply of the datagram shares `budget`.
    pub fn restart(&mut self, budget: usize) {
        self.noreply = false;
        self.unsent = 0;
        self.get_budget = usize::MAX;
        self.held.clear();
        self.reply_limit = budget;
        self.reply_spent = false;
    }

    /// Give back every response object held (the replies were written or
    /// dropped).
    pub fn release_resps(&mut self) {
        if let (true, Some(m)) = (self.counts_resps, &mut self.memory) {
            m.release_resps();
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
            key_buf: Vec::new(),
            reply_limit: usize::MAX,
            reply_spent: false,
            memory: None,
            free: 0,
            charging: false,
            counts_resps: false,
            sasl: SaslSession::default(),
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

/// memcached's `set_noreply_maybe`: a last token of `noreply` sets the flag.
pub(crate) fn set_noreply_maybe(sess: &mut Session, t: &Tokens<'_>) -> bool {
    if t.ntokens() > 1 && t.get(t.ntokens() - 2) == b"noreply" {
        sess.noreply = true;
    }
    sess.noreply
}
