//! What a command asks of its connection once parsed: the [`Action`], and
//! for a store the [`PendingStore`] whose value is read next, with the
//! [`Completion`] that says which protocol answers it. Shared by the text,
//! meta and binary protocols; the connection carries the actions out.

use crate::cache::metadump::DumpCursor;
use crate::cache::StoreMode;
use crate::server::Stop;

/// A store command waiting for its value (memcached's `conn_nread` with
/// `c->item` allocated), or SASL data ([`Completion::Sasl`]).
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
    /// Which protocol answers it.
    pub done: Completion,
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
    /// `lru_crawler metadump`: write the dump's lines batch by batch, each
    /// once the client has read the last (memcached hands the connection
    /// to its crawler thread), then `END`; no other command is read
    /// meanwhile.
    MetaDump(DumpCursor),
    /// `watch`: the connection becomes a watcher of these event kinds
    /// (`logger::kind` bits) and writes log lines from then on; it reads
    /// no more commands (memcached hands it to its logger thread).
    Watch(u32),
    /// Read `vlen` bytes of value, then call [`super::complete::complete_nread`].
    Nread(PendingStore),
    /// Discard this many bytes (a value that cannot be stored).
    Swallow(usize),
    /// The client passed `-Y` authentication (the reply is in `out`).
    Authenticated,
    /// Close at once, without a reply.
    Close,
    /// Send what is queued, then close (`quit`).
    Quit,
    /// Stop the server (`shutdown` with `-A`).
    Shutdown(Stop),
}

/// What [`crate::proto::binary::process`] and [`crate::proto::auth::process`]
/// found at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request is not there yet.
    NeedMore,
    /// A request of this many bytes (a value to store or swallow is read
    /// by the action) was handled.
    Done(usize, Action),
}

/// Which protocol answers a store once its value has arrived (memcached's
/// `complete_nread_ascii` and `complete_nread_binary`, and `ms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// A text `set`, `add`, `replace`, `append`, `prepend` or `cas`.
    Text,
    /// A binary store: what its reply needs from the request header.
    Binary(BinReq),
    /// An `ms`: what its reply needs from the flags.
    Meta(MetaStore),
    /// Not a store: the data of a binary `SASL_AUTH` or `SASL_STEP`, read
    /// as memcached reads it, into an item whose key is the mechanism
    /// (the pending store's key; its other fields are unused).
    Sasl(BinReq),
}

/// What a binary request's reply needs from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinReq {
    /// The opcode as sent (a quiet one stays quiet in the reply).
    pub opcode: u8,
    /// Echoed back.
    pub opaque: u32,
    /// A quiet opcode: no reply on success.
    pub quiet: bool,
}

/// What `ms` replies with once its value has arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaStore {
    /// The `O`, `k` and `c` flag tokens, in the order given.
    pub ret: Vec<Vec<u8>>,
    /// `q`.
    pub quiet: bool,
    /// `I` with a CAS.
    pub set_stale: bool,
    /// `b`.
    pub key_binary: bool,
}

/// How to answer each key of a retrieval (see `proto::get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetCmd {
    /// Include the CAS unique (`gets`, `gats`).
    pub cas: bool,
    /// The new relative exptime for `gat`/`gats`; `None` for plain gets.
    pub touch: Option<u32>,
}
