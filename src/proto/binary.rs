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
//! [`complete_store`]. Under `-S` the SASL commands (`sasl.rs`) gate every
//! other command until the connection has authenticated.

use std::sync::atomic::Ordering;

mod packet;
mod sasl;
use packet::{error, ext32, header, op, respond, unquiet};
pub use packet::{Header, Status, HEADER_LEN, REQ_MAGIC};
pub use sasl::complete as complete_sasl;

use super::action::{Action, BinReq, Completion, Parsed, PendingStore};
use super::ctx::{Ctx, Report};
use super::session::Session;
use super::store::{admit, count_cas, Refusal};
use crate::cache::items::KEY_MAX_LENGTH;
use crate::cache::{DeleteResult, DeltaResult, StoreMode, StoreResult};

/// An exptime of the binary protocol (unsigned) as the text protocol's.
fn exptime(ctx: &Ctx<'_>, e: u32) -> u32 {
    ctx.cache
        .clock()
        .realtime(i32::try_from(e).unwrap_or(i32::MAX))
}

/// Handle the request at the front of `buf` (memcached's
/// `try_read_command_binary` and `dispatch_bin_command`).
pub fn process(ctx: &Ctx<'_>, sess: &mut Session, buf: &[u8], out: &mut Vec<u8>) -> Parsed {
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
    // Under -S, only VERSION and SASL run before the client has
    // authenticated; anything else is refused and the connection closed.
    if ctx.settings.sasl && !sasl::allowed(h.opcode, sess) {
        log::debug!("opcode {:#04x} refused: not authenticated", h.opcode);
        error(out, req, Status::AuthError);
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
            respond(out, req, 0, crate::settings::VERSION.as_bytes());
            Action::Continue
        }
        op::FLUSH if keylen == 0 && vlen == 0 && (extlen == 0 || extlen == 4) => {
            flush(ctx, req, ext, out);
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
            let exp = exptime(ctx, ext32(ext, 4));
            update(ctx, sess, req, cmd, mode, key, flags, exp, h.cas, vlen, out)
        }
        op::APPEND | op::PREPEND if keylen > 0 && extlen == 0 => {
            let mode = if cmd == op::APPEND {
                StoreMode::Append
            } else {
                StoreMode::Prepend
            };
            update(ctx, sess, req, cmd, mode, key, 0, 0, h.cas, vlen, out)
        }
        op::GET | op::GETK if extlen == 0 && vlen == 0 && keylen > 0 => {
            if get_or_touch(ctx, sess, req, cmd, key, None, out) {
                sess.held.hold(key);
            }
            Action::Continue
        }
        op::TOUCH | op::GAT | op::GATK if extlen == 4 && keylen != 0 => {
            let exp = exptime(ctx, ext32(ext, 0));
            if get_or_touch(ctx, sess, req, cmd, key, Some(exp), out) {
                sess.held.hold(key);
            }
            Action::Continue
        }
        op::DELETE if keylen > 0 && extlen == 0 && vlen == 0 => {
            delete(ctx, req, key, h.cas, out);
            Action::Continue
        }
        op::INCREMENT | op::DECREMENT if keylen > 0 && extlen == 20 && vlen == 0 => {
            let in_place = !sess.held.holds(key);
            arithmetic(
                ctx,
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
            stat(ctx, req, key, out);
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
        // Without -S the SASL opcodes are unknown commands, as in a
        // memcached started without it.
        op::SASL_LIST_MECHS if extlen == 0 && keylen == 0 && bodylen == 0 => {
            if ctx.settings.sasl {
                sasl::list_mechs(ctx, sess, req, out);
            } else {
                error(out, req, Status::UnknownCommand);
            }
            Action::Continue
        }
        op::SASL_AUTH | op::SASL_STEP if extlen == 0 && keylen != 0 => {
            if ctx.settings.sasl {
                sasl::read_data(ctx, sess, req, key, vlen, out)
            } else {
                error(out, req, Status::UnknownCommand);
                Action::Swallow(vlen)
            }
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
    ctx: &Ctx<'_>,
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
    if let Some(r) = admit(ctx, key, flags, vlen, cmd == op::SET) {
        let status = match r {
            Refusal::TooLarge => Status::E2big,
            Refusal::NoMemory => Status::Enomem,
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
        done: Completion::Binary(req),
    })
}

/// `complete_update_bin`: the value has arrived.
pub fn complete_store(
    ctx: &Ctx<'_>,
    req: BinReq,
    p: &PendingStore,
    data: &[u8],
    out: &mut Vec<u8>,
) {
    let s = &ctx.stats;
    s.cmd_set.fetch_add(1, Ordering::Relaxed);
    let (res, cas) = ctx
        .cache
        .store(p.mode, &p.key, p.flags, p.exptime, data, p.cas);
    count_cas(ctx, p.mode, res);
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
    ctx: &Ctx<'_>,
    sess: &mut Session,
    req: BinReq,
    cmd: u8,
    key: &[u8],
    touch: Option<u32>,
    out: &mut Vec<u8>,
) -> bool {
    let with_key = cmd == op::GETK || cmd == op::GATK;
    let with_value = cmd != op::TOUCH;
    let hit = ctx.cache.get_with(key, touch, |it| {
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
    ctx.prefix.record_get(key, hit.is_some());
    let s = &ctx.stats;
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
fn delete(ctx: &Ctx<'_>, req: BinReq, key: &[u8], cas: u64, out: &mut Vec<u8>) {
    ctx.prefix.record_delete(key);
    match ctx.cache.delete_cas(key, cas) {
        DeleteResult::Deleted => {
            ctx.stats.delete_hits.fetch_add(1, Ordering::Relaxed);
            respond(out, req, 0, b"");
        }
        DeleteResult::Exists => error(out, req, Status::KeyEexists),
        DeleteResult::NotFound => {
            ctx.stats.delete_misses.fetch_add(1, Ordering::Relaxed);
            error(out, req, Status::KeyEnoent);
        }
    }
}

/// `complete_incr_bin`: extras are delta (8), initial (8), exptime (4);
/// a miss creates the item with `initial` unless exptime is all ones.
#[allow(clippy::too_many_arguments)]
fn arithmetic(
    ctx: &Ctx<'_>,
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
    let s = &ctx.stats;
    let (hits, misses) = if incr {
        (&s.incr_hits, &s.incr_misses)
    } else {
        (&s.decr_hits, &s.decr_misses)
    };
    match ctx.cache.delta(key, incr, delta, cas, in_place) {
        (DeltaResult::Ok(v), cas) => {
            hits.fetch_add(1, Ordering::Relaxed);
            respond(out, req, cas, &v.to_be_bytes());
        }
        (DeltaResult::NonNumeric, _) => error(out, req, Status::DeltaBadval),
        (DeltaResult::NoMemory, _) => error(out, req, Status::Enomem),
        (DeltaResult::Exists, _) => error(out, req, Status::KeyEexists),
        (DeltaResult::NotFound, _) if expiration != u32::MAX => {
            let value = initial.to_string();
            let exp = exptime(ctx, expiration);
            match ctx
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
fn flush(ctx: &Ctx<'_>, req: BinReq, ext: &[u8], out: &mut Vec<u8>) {
    if !ctx.settings.flush_enabled {
        return error(out, req, Status::AuthError);
    }
    let delay = if ext.len() == 4 { ext32(ext, 0) } else { 0 };
    let when = if delay > 0 { exptime(ctx, delay) } else { 0 };
    ctx.cache.flush_all(when);
    ctx.stats.cmd_flush.fetch_add(1, Ordering::Relaxed);
    respond(out, req, 0, b"");
}

/// `process_bin_stat`: one reply per statistic (key = name, value =
/// value), then an empty one.
fn stat(ctx: &Ctx<'_>, req: BinReq, sub: &[u8], out: &mut Vec<u8>) {
    let mut text = Vec::new();
    if sub.is_empty() {
        ctx.admin.report(Report::General, &mut text);
    } else if sub.starts_with(b"reset") {
        ctx.stats.reset();
        ctx.cache.reset_stats();
        ctx.prefix.clear();
    } else if sub.starts_with(b"settings") {
        ctx.admin.report(Report::Settings, &mut text);
    } else if let Some(rest) = sub.strip_prefix(b"detail") {
        if rest.starts_with(b" dump") {
            let mut dump = Vec::new();
            ctx.prefix.dump(&mut dump);
            stat_packet(out, req, b"detailed", &dump);
        } else if rest.starts_with(b" on") || rest.starts_with(b" off") {
            ctx.prefix.set_enabled(rest.starts_with(b" on"));
        } else {
            return error(out, req, Status::KeyEnoent);
        }
    } else if let Some(which) = match sub {
        b"items" => Some(Report::Items),
        b"slabs" => Some(Report::Slabs),
        b"sizes" => Some(Report::Sizes),
        b"rmemcached" => Some(Report::Own),
        _ => None,
    } {
        ctx.admin.report(which, &mut text);
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
mod tests;
