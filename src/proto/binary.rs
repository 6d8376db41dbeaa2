//! The binary protocol: mirrors memcached's `proto_bin.c`
//! (`try_read_command_binary`, `dispatch_bin_command`, `process_bin_*`,
//! `write_bin_error`).
//!
//! A request is a 24-byte header (magic 0x80, opcode, key length, extras
//! length, data type, vbucket, body length, opaque, CAS; big-endian), then
//! extras, key and value. A reply has magic 0x81, the request's opcode and
//! opaque, a status, and the same layout. The quiet opcodes (`GETQ`,
//! `SETQ`, ...) send nothing on success (a quiet get sends nothing on a
//! miss); errors are always sent.
//!
//! [`process`] handles one request at the front of a buffer, as
//! [`super::text::process_command`] handles one line: it writes the reply
//! into `out` and says what the connection does next. A value to store is
//! read by the connection (`Action::Nread`) and handed to
//! [`complete_store`].

use std::sync::atomic::Ordering;

use super::text::{Action, PendingStore, Session};
use crate::cache::items::KEY_MAX_LENGTH;
use crate::cache::{DeleteResult, DeltaResult, StoreMode, StoreResult};
use crate::{stats, Server};

/// First byte of a request.
pub const REQ_MAGIC: u8 = 0x80;
/// First byte of a reply.
const RES_MAGIC: u8 = 0x81;
/// Bytes of a header.
pub const HEADER_LEN: usize = 24;

/// Opcodes (`protocol_binary.h`).
mod op {
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const INCREMENT: u8 = 0x05;
    pub const DECREMENT: u8 = 0x06;
    pub const QUIT: u8 = 0x07;
    pub const FLUSH: u8 = 0x08;
    pub const GETQ: u8 = 0x09;
    pub const NOOP: u8 = 0x0a;
    pub const VERSION: u8 = 0x0b;
    pub const GETK: u8 = 0x0c;
    pub const GETKQ: u8 = 0x0d;
    pub const APPEND: u8 = 0x0e;
    pub const PREPEND: u8 = 0x0f;
    pub const STAT: u8 = 0x10;
    pub const SETQ: u8 = 0x11;
    pub const ADDQ: u8 = 0x12;
    pub const REPLACEQ: u8 = 0x13;
    pub const DELETEQ: u8 = 0x14;
    pub const INCREMENTQ: u8 = 0x15;
    pub const DECREMENTQ: u8 = 0x16;
    pub const QUITQ: u8 = 0x17;
    pub const FLUSHQ: u8 = 0x18;
    pub const APPENDQ: u8 = 0x19;
    pub const PREPENDQ: u8 = 0x1a;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
    pub const SASL_LIST_MECHS: u8 = 0x20;
    pub const SASL_AUTH: u8 = 0x21;
    pub const SASL_STEP: u8 = 0x22;
    pub const GATK: u8 = 0x23;
    pub const GATKQ: u8 = 0x24;
}

/// Reply statuses (`protocol_binary_response_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Status {
    /// Success.
    Ok = 0x0000,
    /// Key not found.
    KeyEnoent = 0x0001,
    /// Key exists (or CAS mismatch).
    KeyEexists = 0x0002,
    /// Value too large.
    E2big = 0x0003,
    /// Invalid arguments.
    Einval = 0x0004,
    /// Item not stored.
    NotStored = 0x0005,
    /// Incr/decr on a non-numeric value.
    DeltaBadval = 0x0006,
    /// Authentication error.
    AuthError = 0x0020,
    /// Unknown command.
    UnknownCommand = 0x0081,
    /// Out of memory.
    Enomem = 0x0082,
}

impl Status {
    /// memcached's text for an error status (`write_bin_error`).
    fn text(self) -> &'static [u8] {
        match self {
            Status::Ok => b"",
            Status::Enomem => b"Out of memory",
            Status::UnknownCommand => b"Unknown command",
            Status::KeyEnoent => b"Not found",
            Status::Einval => b"Invalid arguments",
            Status::KeyEexists => b"Data exists for key.",
            Status::E2big => b"Too large.",
            Status::DeltaBadval => b"Non-numeric server-side value for incr or decr",
            Status::NotStored => b"Not stored.",
            Status::AuthError => b"Auth failure.",
        }
    }
}

/// What a request's reply needs from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinReq {
    /// The opcode as sent (a quiet one stays quiet in the reply).
    pub opcode: u8,
    /// Echoed back.
    pub opaque: u32,
    /// A quiet opcode: no reply on success.
    pub quiet: bool,
}

/// A parsed request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Must be [`REQ_MAGIC`].
    pub magic: u8,
    /// What to do.
    pub opcode: u8,
    /// Key length.
    pub keylen: u16,
    /// Extras length.
    pub extlen: u8,
    /// Body length: extras, key and value.
    pub bodylen: u32,
    /// Echoed back.
    pub opaque: u32,
    /// CAS for conditional operations.
    pub cas: u64,
}

impl Header {
    /// Parse the first 24 bytes of `b`.
    pub fn parse(b: &[u8]) -> Header {
        let be16 = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let be32 = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        Header {
            magic: b[0],
            opcode: b[1],
            keylen: be16(2),
            extlen: b[4],
            bodylen: be32(8),
            opaque: be32(12),
            cas: u64::from_be_bytes(b[16..24].try_into().expect("8 bytes")),
        }
    }
}

/// What [`process`] found at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The header, extras and key are not all there yet.
    NeedMore,
    /// A request of this many bytes (header, extras, key; a value to store
    /// or swallow is read by the action) was handled.
    Done(usize, Action),
}

/// Write a reply header.
#[allow(clippy::too_many_arguments)]
fn header(
    out: &mut Vec<u8>,
    req: BinReq,
    status: Status,
    extlen: u8,
    keylen: usize,
    bodylen: usize,
    cas: u64,
) {
    out.push(RES_MAGIC);
    out.push(req.opcode);
    out.extend_from_slice(&(keylen as u16).to_be_bytes());
    out.push(extlen);
    out.push(0);
    out.extend_from_slice(&(status as u16).to_be_bytes());
    out.extend_from_slice(&(bodylen as u32).to_be_bytes());
    out.extend_from_slice(&req.opaque.to_be_bytes());
    out.extend_from_slice(&cas.to_be_bytes());
}

/// `write_bin_error`: sent whether the opcode is quiet or not.
fn error(out: &mut Vec<u8>, req: BinReq, status: Status) {
    let text = status.text();
    header(out, req, status, 0, 0, text.len(), 0);
    out.extend_from_slice(text);
}

/// `write_bin_response`: a success reply, unless quiet.
fn respond(out: &mut Vec<u8>, req: BinReq, cas: u64, body: &[u8]) {
    if !req.quiet {
        header(out, req, Status::Ok, 0, 0, body.len(), cas);
        out.extend_from_slice(body);
    }
}

/// A quiet opcode's loud twin, and whether it was quiet.
fn unquiet(opcode: u8) -> (u8, bool) {
    let loud = match opcode {
        op::SETQ => op::SET,
        op::ADDQ => op::ADD,
        op::REPLACEQ => op::REPLACE,
        op::DELETEQ => op::DELETE,
        op::INCREMENTQ => op::INCREMENT,
        op::DECREMENTQ => op::DECREMENT,
        op::QUITQ => op::QUIT,
        op::FLUSHQ => op::FLUSH,
        op::APPENDQ => op::APPEND,
        op::PREPENDQ => op::PREPEND,
        op::GETQ => op::GET,
        op::GETKQ => op::GETK,
        op::GATQ => op::GAT,
        op::GATKQ => op::GATK,
        other => return (other, false),
    };
    (loud, true)
}

/// Read a big-endian `u32` of the extras.
fn ext32(ext: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(ext[at..at + 4].try_into().expect("4 bytes"))
}

/// An exptime of the binary protocol (unsigned) as the text protocol's.
fn exptime(server: &Server, e: u32) -> u32 {
    server
        .cache
        .clock()
        .realtime(i32::try_from(e).unwrap_or(i32::MAX))
}

/// Handle the request at the front of `buf` (memcached's
/// `try_read_command_binary` and `dispatch_bin_command`).
pub fn process(server: &Server, sess: &mut Session, buf: &[u8], out: &mut Vec<u8>) -> Parsed {
    if buf.len() < HEADER_LEN {
        return Parsed::NeedMore;
    }
    let h = Header::parse(buf);
    if h.magic != REQ_MAGIC {
        log::info!("invalid binary magic {:#x}", h.magic);
        return Parsed::Done(0, Action::Close);
    }
    let (extlen, keylen, bodylen) = (h.extlen as usize, h.keylen as usize, h.bodylen as usize);
    let head = HEADER_LEN + extlen + keylen;
    if buf.len() < head {
        return Parsed::NeedMore;
    }
    let ext = &buf[HEADER_LEN..HEADER_LEN + extlen];
    let key = &buf[HEADER_LEN + extlen..head];
    let (cmd, quiet) = unquiet(h.opcode);
    let req = BinReq {
        opcode: h.opcode,
        opaque: h.opaque,
        quiet,
    };
    sess.unsent = out.len();
    if keylen > bodylen || keylen + extlen > bodylen {
        error(out, req, Status::UnknownCommand);
        return Parsed::Done(head, Action::Quit);
    }
    // The binary protocol allows 16-bit keys; memcached does not.
    if keylen > KEY_MAX_LENGTH {
        error(out, req, Status::Einval);
        return Parsed::Done(head, Action::Quit);
    }
    let vlen = bodylen - keylen - extlen;
    let action = match cmd {
        op::VERSION if extlen == 0 && keylen == 0 && bodylen == 0 => {
            respond(out, req, 0, crate::VERSION.as_bytes());
            Action::Continue
        }
        op::FLUSH if keylen == 0 && vlen == 0 && (extlen == 0 || extlen == 4) => {
            flush(server, req, ext, out);
            Action::Continue
        }
        op::NOOP if extlen == 0 && keylen == 0 && bodylen == 0 => {
            respond(out, req, 0, b"");
            Action::Flush
        }
        op::SET | op::ADD | op::REPLACE if extlen == 8 && keylen != 0 => {
            let mode = match (h.cas != 0, cmd) {
                (true, _) => StoreMode::Cas,
                (false, op::ADD) => StoreMode::Add,
                (false, op::REPLACE) => StoreMode::Replace,
                _ => StoreMode::Set,
            };
            let flags = ext32(ext, 0);
            let exp = exptime(server, ext32(ext, 4));
            update(
                server, sess, req, cmd, mode, key, flags, exp, h.cas, vlen, out,
            )
        }
        op::APPEND | op::PREPEND if keylen > 0 && extlen == 0 => {
            let mode = if cmd == op::APPEND {
                StoreMode::Append
            } else {
                StoreMode::Prepend
            };
            update(server, sess, req, cmd, mode, key, 0, 0, h.cas, vlen, out)
        }
        op::GET | op::GETK if extlen == 0 && vlen == 0 && keylen > 0 => {
            if get_or_touch(server, sess, req, cmd, key, None, out) {
                sess.held.hold(key);
            }
            Action::Continue
        }
        op::TOUCH | op::GAT | op::GATK if extlen == 4 && keylen != 0 => {
            let exp = exptime(server, ext32(ext, 0));
            if get_or_touch(server, sess, req, cmd, key, Some(exp), out) {
                sess.held.hold(key);
            }
            Action::Continue
        }
        op::DELETE if keylen > 0 && extlen == 0 && vlen == 0 => {
            delete(server, req, key, h.cas, out);
            Action::Continue
        }
        op::INCREMENT | op::DECREMENT if keylen > 0 && extlen == 20 && vlen == 0 => {
            let in_place = !sess.held.holds(key);
            arithmetic(
                server,
                req,
                cmd == op::INCREMENT,
                key,
                ext,
                h.cas,
                in_place,
                out,
            );
            Action::Continue
        }
        op::STAT if extlen == 0 => {
            // A statistics reply is bounded by the server's own state (a
            // few kB, `stats detail dump` aside); it is built, then
            // checked against a UDP datagram's budget.
            let mark = out.len();
            stat(server, req, key, out);
            if out.len() > sess.reply_limit {
                out.truncate(mark);
                error(out, req, Status::Enomem);
                sess.reply_spent = true;
            }
            Action::Continue
        }
        op::QUIT if keylen == 0 && extlen == 0 && bodylen == 0 => {
            respond(out, req, 0, b"");
            Action::Quit
        }
        // memcached without SASL: the SASL opcodes are unknown commands.
        op::SASL_LIST_MECHS if extlen == 0 && keylen == 0 && bodylen == 0 => {
            error(out, req, Status::UnknownCommand);
            Action::Continue
        }
        op::SASL_AUTH | op::SASL_STEP if extlen == 0 && keylen != 0 => {
            error(out, req, Status::UnknownCommand);
            Action::Swallow(vlen)
        }
        op::VERSION
        | op::FLUSH
        | op::NOOP
        | op::SET
        | op::ADD
        | op::REPLACE
        | op::APPEND
        | op::PREPEND
        | op::GET
        | op::GETK
        | op::TOUCH
        | op::GAT
        | op::GATK
        | op::DELETE
        | op::INCREMENT
        | op::DECREMENT
        | op::STAT
        | op::QUIT
        | op::SASL_LIST_MECHS
        | op::SASL_AUTH
        | op::SASL_STEP => {
            // A known command with the wrong lengths: memcached's
            // `handle_binary_protocol_error`.
            error(out, req, Status::Einval);
            Action::Quit
        }
        _ => {
            // memcached swallows the whole body length here, after the
            // extras and key it has already consumed.
            error(out, req, Status::UnknownCommand);
            Action::Swallow(bodylen)
        }
    };
    Parsed::Done(head, action)
}

/// `process_bin_update` and `process_bin_append_prepend`: check that the
/// item can be had, then read its value.
#[allow(clippy::too_many_arguments)]
fn update(
    server: &Server,
    sess: &mut Session,
    req: BinReq,
    cmd: u8,
    mode: StoreMode,
    key: &[u8],
    flags: u32,
    exptime: u32,
    cas: u64,
    vlen: usize,
    out: &mut Vec<u8>,
) -> Action {
    if let Some(r) = super::text::admit(server, key, flags, vlen, cmd == op::SET) {
        let status = match r {
            super::text::Refusal::TooLarge => Status::E2big,
            super::text::Refusal::NoMemory => Status::Enomem,
        };
        error(out, req, status);
        return Action::Swallow(vlen);
    }
    Action::Nread(PendingStore {
        mode,
        key: sess.key_copy(key),
        flags,
        exptime,
        cas,
        vlen,
        bin: Some(req),
        meta: None,
    })
}

/// `complete_update_bin`: the value has arrived.
pub fn complete_store(
    server: &Server,
    req: BinReq,
    p: &PendingStore,
    data: &[u8],
    out: &mut Vec<u8>,
) {
    let s = &server.stats;
    s.cmd_set.fetch_add(1, Ordering::Relaxed);
    let (res, cas) = server
        .cache
        .store(p.mode, &p.key, p.flags, p.exptime, data, p.cas);
    super::text::count_cas(server, p.mode, res);
    let (cmd, _) = unquiet(req.opcode);
    let status = match res {
        StoreResult::Stored => return respond(out, req, cas, b""),
        StoreResult::Exists => Status::KeyEexists,
        StoreResult::NotFound => Status::KeyEnoent,
        _ if cmd == op::ADD => Status::KeyEexists,
        _ if cmd == op::REPLACE => Status::KeyEnoent,
        _ => Status::NotStored,
    };
    error(out, req, status);
}

/// A store refused for want of memory after its header was parsed
/// (`text::refuse_store`): memcached's `write_bin_error` with `ENOMEM`.
pub fn refuse_store(req: BinReq, out: &mut Vec<u8>) {
    error(out, req, Status::Enomem);
}

/// `process_bin_get_or_touch`. Returns whether it was a hit.
fn get_or_touch(
    server: &Server,
    sess: &mut Session,
    req: BinReq,
    cmd: u8,
    key: &[u8],
    touch: Option<u32>,
    out: &mut Vec<u8>,
) -> bool {
    let with_key = cmd == op::GETK || cmd == op::GATK;
    let with_value = cmd != op::TOUCH;
    let hit = server.cache.get_with(key, touch, |it| {
        let data = it.data();
        let keylen = if with_key { key.len() } else { 0 };
        let vlen = if with_value { data.len() } else { 0 };
        // The budget is checked before the value is copied.
        if !sess.room(out.len(), HEADER_LEN + 4 + keylen + vlen) {
            return false;
        }
        header(out, req, Status::Ok, 4, keylen, 4 + keylen + vlen, it.cas());
        out.extend_from_slice(&it.flags().to_be_bytes());
        if with_key {
            out.extend_from_slice(key);
        }
        if with_value {
            out.extend_from_slice(data);
        }
        true
    });
    if hit == Some(false) {
        // No memory for the reply: memcached's binary out-of-memory
        // error, and over UDP the datagram ends here.
        error(out, req, Status::Enomem);
        sess.reply_spent = true;
        return false;
    }
    server.prefix.record_get(key, hit.is_some());
    let s = &server.stats;
    let (count, hits, misses) = if touch.is_some() {
        (&s.cmd_touch, &s.touch_hits, &s.touch_misses)
    } else {
        (&s.cmd_get, &s.get_hits, &s.get_misses)
    };
    count.fetch_add(1, Ordering::Relaxed);
    if hit.is_some() {
        hits.fetch_add(1, Ordering::Relaxed);
        return true;
    }
    misses.fetch_add(1, Ordering::Relaxed);
    if req.quiet {
        return false;
    }
    if with_key {
        header(out, req, Status::KeyEnoent, 0, key.len(), key.len(), 0);
        out.extend_from_slice(key);
    } else {
        error(out, req, Status::KeyEnoent);
    }
    false
}

/// `process_bin_delete`.
fn delete(server: &Server, req: BinReq, key: &[u8], cas: u64, out: &mut Vec<u8>) {
    server.prefix.record_delete(key);
    match server.cache.delete_cas(key, cas) {
        DeleteResult::Deleted => {
            server.stats.delete_hits.fetch_add(1, Ordering::Relaxed);
            respond(out, req, 0, b"");
        }
        DeleteResult::Exists => error(out, req, Status::KeyEexists),
        DeleteResult::NotFound => {
            server.stats.delete_misses.fetch_add(1, Ordering::Relaxed);
            error(out, req, Status::KeyEnoent);
        }
    }
}

/// `complete_incr_bin`: extras are delta (8), initial (8), exptime (4);
/// a miss creates the item with `initial` unless exptime is all ones.
#[allow(clippy::too_many_arguments)]
fn arithmetic(
    server: &Server,
    req: BinReq,
    incr: bool,
    key: &[u8],
    ext: &[u8],
    cas: u64,
    in_place: bool,
    out: &mut Vec<u8>,
) {
    let delta = u64::from_be_bytes(ext[0..8].try_into().expect("8 bytes"));
    let initial = u64::from_be_bytes(ext[8..16].try_into().expect("8 bytes"));
    let expiration = ext32(ext, 16);
    let s = &server.stats;
    let (hits, misses) = if incr {
        (&s.incr_hits, &s.incr_misses)
    } else {
        (&s.decr_hits, &s.decr_misses)
    };
    match server.cache.delta(key, incr, delta, cas, in_place) {
        (DeltaResult::Ok(v), cas) => {
            hits.fetch_add(1, Ordering::Relaxed);
            respond(out, req, cas, &v.to_be_bytes());
        }
        (DeltaResult::NonNumeric, _) => error(out, req, Status::DeltaBadval),
        (DeltaResult::NoMemory, _) => error(out, req, Status::Enomem),
        (DeltaResult::Exists, _) => error(out, req, Status::KeyEexists),
        (DeltaResult::NotFound, _) if expiration != u32::MAX => {
            let value = initial.to_string();
            let exp = exptime(server, expiration);
            match server
                .cache
                .store(StoreMode::Add, key, 0, exp, value.as_bytes(), 0)
            {
                (StoreResult::Stored, cas) => respond(out, req, cas, &initial.to_be_bytes()),
                (StoreResult::NoMemory, _) => error(out, req, Status::Enomem),
                _ => error(out, req, Status::NotStored),
            }
        }
        (DeltaResult::NotFound, _) => {
            misses.fetch_add(1, Ordering::Relaxed);
            error(out, req, Status::KeyEnoent);
        }
    }
}

/// `process_bin_flush`: extras are an optional exptime.
fn flush(server: &Server, req: BinReq, ext: &[u8], out: &mut Vec<u8>) {
    if !server.settings.flush_enabled {
        return error(out, req, Status::AuthError);
    }
    let delay = if ext.len() == 4 { ext32(ext, 0) } else { 0 };
    let when = if delay > 0 { exptime(server, delay) } else { 0 };
    server.cache.flush_all(when);
    server.stats.cmd_flush.fetch_add(1, Ordering::Relaxed);
    respond(out, req, 0, b"");
}

/// `process_bin_stat`: one reply per statistic (key = name, value =
/// value), then an empty one.
fn stat(server: &Server, req: BinReq, sub: &[u8], out: &mut Vec<u8>) {
    let mut text = Vec::new();
    if sub.is_empty() {
        stats::general(server, &mut text);
    } else if sub.starts_with(b"reset") {
        server.stats.reset();
        server.cache.reset_stats();
        server.prefix.clear();
    } else if sub.starts_with(b"settings") {
        stats::settings(
            &server.settings,
            server.verbosity(),
            server.cache.limit(),
            server.prefix.enabled(),
            &mut text,
        );
    } else if let Some(rest) = sub.strip_prefix(b"detail") {
        if rest.starts_with(b" dump") {
            let mut dump = Vec::new();
            server.prefix.dump(&mut dump);
            stat_packet(out, req, b"detailed", &dump);
        } else if rest.starts_with(b" on") || rest.starts_with(b" off") {
            server.prefix.set_enabled(rest.starts_with(b" on"));
        } else {
            return error(out, req, Status::KeyEnoent);
        }
    } else if matches!(sub, b"items" | b"slabs" | b"sizes") {
        stats::group(server, sub, &mut text);
    } else {
        return error(out, req, Status::KeyEnoent);
    }
    for line in text.split(|&b| b == b'\n') {
        let Some(l) = line.strip_prefix(b"STAT ") else {
            continue;
        };
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        let sp = l.iter().position(|&b| b == b' ').unwrap_or(l.len());
        let value = l.get(sp + 1..).unwrap_or(b"");
        stat_packet(out, req, &l[..sp], value);
    }
    stat_packet(out, req, b"", b"");
}

fn stat_packet(out: &mut Vec<u8>, req: BinReq, key: &[u8], value: &[u8]) {
    header(
        out,
        req,
        Status::Ok,
        0,
        key.len(),
        key.len() + value.len(),
        0,
    );
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(opcode: u8, ext: &[u8], key: &[u8], value: &[u8], cas: u64) -> Vec<u8> {
        let mut b = vec![REQ_MAGIC, opcode];
        b.extend_from_slice(&(key.len() as u16).to_be_bytes());
        b.push(ext.len() as u8);
        b.extend_from_slice(&[0, 0, 0]);
        b.extend_from_slice(&((ext.len() + key.len() + value.len()) as u32).to_be_bytes());
        b.extend_from_slice(&0xdead_beef_u32.to_be_bytes());
        b.extend_from_slice(&cas.to_be_bytes());
        b.extend_from_slice(ext);
        b.extend_from_slice(key);
        b.extend_from_slice(value);
        b
    }

    /// Run requests as a connection would, collecting the replies.
    fn run(server: &Server, mut input: &[u8]) -> Vec<u8> {
        let mut sess = Session::default();
        let mut out = Vec::new();
        loop {
            match process(server, &mut sess, input, &mut out) {
                Parsed::NeedMore => return out,
                Parsed::Done(n, action) => {
                    input = &input[n..];
                    match action {
                        Action::Nread(p) => {
                            let req = p.bin.expect("binary store");
                            complete_store(server, req, &p, &input[..p.vlen], &mut out);
                            input = &input[p.vlen..];
                        }
                        Action::Swallow(n) => input = &input[n.min(input.len())..],
                        Action::Close | Action::Quit => return out,
                        _ => {}
                    }
                }
            }
        }
    }

    /// opcode, status, key, value, CAS of each reply.
    type Reply = (u8, u16, Vec<u8>, Vec<u8>, u64);

    fn replies(mut out: &[u8]) -> Vec<Reply> {
        let mut v = Vec::new();
        while out.len() >= HEADER_LEN {
            assert_eq!(out[0], RES_MAGIC);
            let h = Header::parse(out);
            let status = u16::from_be_bytes([out[6], out[7]]);
            assert_eq!(h.opaque, 0xdead_beef);
            let body = &out[HEADER_LEN..HEADER_LEN + h.bodylen as usize];
            let key = body[h.extlen as usize..h.extlen as usize + h.keylen as usize].to_vec();
            let value = body[h.extlen as usize + h.keylen as usize..].to_vec();
            v.push((h.opcode, status, key, value, h.cas));
            out = &out[HEADER_LEN + h.bodylen as usize..];
        }
        assert!(out.is_empty());
        v
    }

    fn set_ext(flags: u32, exp: u32) -> Vec<u8> {
        [flags.to_be_bytes(), exp.to_be_bytes()].concat()
    }

    #[test]
    fn set_get_and_quiet_opcodes() {
        let server = Server::new(crate::settings::Settings::default());
        let mut input = request(op::SET, &set_ext(7, 0), b"k", b"hello", 0);
        input.extend(request(op::GETK, &[], b"k", b"", 0));
        input.extend(request(op::GETQ, &[], b"missing", b"", 0));
        input.extend(request(op::SETQ, &set_ext(0, 0), b"q", b"v", 0));
        input.extend(request(op::ADD, &set_ext(0, 0), b"k", b"x", 0));
        input.extend(request(op::NOOP, &[], b"", b"", 0));
        let r = replies(&run(&server, &input));
        assert_eq!(r.len(), 4, "{r:?}");
        assert_eq!((r[0].0, r[0].1), (op::SET, 0));
        let cas = r[0].4;
        assert!(cas != 0);
        assert_eq!(r[1], (op::GETK, 0, b"k".to_vec(), b"hello".to_vec(), cas));
        assert_eq!(
            (r[2].0, r[2].1, &r[2].3[..]),
            (op::ADD, 2, &b"Data exists for key."[..])
        );
        assert_eq!((r[3].0, r[3].1), (op::NOOP, 0));
    }

    #[test]
    fn incr_with_initial_and_errors() {
        let server = Server::new(crate::settings::Settings::default());
        let ext = |d: u64, i: u64, e: u32| -> Vec<u8> {
            [&d.to_be_bytes()[..], &i.to_be_bytes(), &e.to_be_bytes()].concat()
        };
        let mut input = request(op::INCREMENT, &ext(1, 10, 0), b"n", b"", 0);
        input.extend(request(op::INCREMENT, &ext(5, 10, 0), b"n", b"", 0));
        input.extend(request(op::DECREMENT, &ext(100, 0, 0), b"n", b"", 0));
        input.extend(request(
            op::INCREMENT,
            &ext(1, 0, u32::MAX),
            b"none",
            b"",
            0,
        ));
        input.extend(request(0x55, &[], b"", b"", 0));
        let r = replies(&run(&server, &input));
        assert_eq!(r[0].3, 10u64.to_be_bytes());
        assert_eq!(r[1].3, 15u64.to_be_bytes());
        assert_eq!(r[2].3, 0u64.to_be_bytes());
        assert_eq!((r[3].1, &r[3].3[..]), (1, &b"Not found"[..]));
        assert_eq!(
            (r[4].0, r[4].1, &r[4].3[..]),
            (0x55, 0x81, &b"Unknown command"[..])
        );
    }

    #[test]
    fn partial_requests_need_more() {
        let server = Server::new(crate::settings::Settings::default());
        let mut sess = Session::default();
        let req = request(op::GET, &[], b"key", b"", 0);
        for cut in [0, 10, 24, 26] {
            assert_eq!(
                process(&server, &mut sess, &req[..cut], &mut Vec::new()),
                Parsed::NeedMore
            );
        }
    }

    #[test]
    fn bad_lengths_are_refused_and_close() {
        let server = Server::new(crate::settings::Settings::default());
        let mut sess = Session::default();
        let mut out = Vec::new();
        // A get with extras.
        let req = request(op::GET, &[1, 2, 3, 4], b"key", b"", 0);
        assert_eq!(
            process(&server, &mut sess, &req, &mut out),
            Parsed::Done(req.len(), Action::Quit)
        );
        assert_eq!(replies(&out)[0].1, Status::Einval as u16);
        // A key longer than the body.
        let mut req = request(op::GET, &[], b"key", b"", 0);
        req[8..12].copy_from_slice(&1u32.to_be_bytes());
        out.clear();
        assert!(matches!(
            process(&server, &mut sess, &req, &mut out),
            Parsed::Done(_, Action::Quit)
        ));
        assert_eq!(replies(&out)[0].1, Status::UnknownCommand as u16);
        // Not a request at all.
        let mut req = request(op::GET, &[], b"key", b"", 0);
        req[0] = 0x81;
        assert_eq!(
            process(&server, &mut sess, &req, &mut Vec::new()),
            Parsed::Done(0, Action::Close)
        );
    }
}
