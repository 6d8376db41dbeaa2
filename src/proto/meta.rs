//! The meta commands of the text protocol: mirrors `process_mget_command`,
//! `process_mset_command`, `process_mdelete_command`,
//! `process_marithmetic_command` and `process_meta_command` of memcached
//! 1.6.18's `proto_text.c`.
//!
//! A meta command is `<cmd> <key> <flags>*`, each flag one letter with an
//! optional argument. Replies are two letters (`HD`, `VA`, `EN`, `NF`,
//! `NS`, `EX`, `MN`, `ME`) followed by the return flags asked for, in the
//! order asked. With `q`, the nominal reply is not sent (a miss for `mg`,
//! success for `ms`, `md`, `ma`); errors always are.

use std::borrow::Cow;
use std::io::Write as _;
use std::sync::atomic::Ordering;

use base64::Engine as _;

mod flags;
pub use flags::decode_key;
use flags::*;

use super::action::{Action, Completion, MetaStore, PendingStore};
use super::ctx::Ctx;
use super::session::Session;
use super::store::{admit, count_cas};
use super::tokens::Tokens;
use crate::cache::items::{KEY_BINARY, KEY_MAX_LENGTH};
use crate::cache::meta::MetaGetOpts;
use crate::cache::{DeleteResult, DeltaResult, StoreMode, StoreOpts, StoreResult};
use crate::cnum::safe_strtol as strtol;

/// Dispatch a two-letter command that starts with `m`.
pub fn process(ctx: &Ctx<'_>, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) -> Action {
    match t.get(0)[1] {
        b'g' => mget(ctx, sess, t, out),
        b's' => return mset(ctx, sess, t, out),
        b'd' => mdelete(ctx, t, out),
        b'a' => marithmetic(ctx, sess, t, out),
        b'e' => mexamine(ctx, t, out),
        b'n' => {
            out.extend_from_slice(b"MN\r\n");
            return Action::Flush;
        }
        _ => error(out, b"ERROR"),
    }
    Action::Continue
}

/// The checks every meta command but `me` starts with. `None` when the
/// reply (an error) is already written.
fn start<'a>(t: &Tokens<'a>, out: &mut Vec<u8>, too_long: &[u8]) -> Option<Cow<'a, [u8]>> {
    let n = t.ntokens();
    if n < 3 {
        error(out, b"ERROR");
        return None;
    }
    if t.get(1).len() > KEY_MAX_LENGTH {
        error(out, b"CLIENT_ERROR bad command line format");
        return None;
    }
    if n > MAX_OPT_TOKENS {
        error(out, too_long);
        return None;
    }
    Some(Cow::Borrowed(t.get(1)))
}

/// `mg <key> <flags>*`.
fn mget(ctx: &Ctx<'_>, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let Some(mut key) = start(t, out, b"CLIENT_ERROR options flags are too long") else {
        return;
    };
    let f = match preparse(ctx, t, 2, &mut key) {
        Ok(f) => f,
        Err(e) => return error(out, e),
    };
    let opts = MetaGetOpts {
        touch: f.ttl,
        vivify: f.vivify,
        recache: f.recache,
        no_update: f.no_update,
    };
    let now = ctx.cache.clock().now();
    let mark = out.len();
    let hit = ctx
        .cache
        .meta_get(&key, &opts, |hit| -> Result<(), &'static [u8]> {
            let it = hit.item;
            let data = it.data();
            // The budget is checked before the value is copied.
            let value_len = if f.value { data.len() + 2 } else { 0 };
            if !sess.room(out.len(), value_len + META_LINE_MAX) {
                return Err(NO_MEMORY);
            }
            if f.value {
                let _ = write!(out, "VA {}", data.len());
            } else {
                out.extend_from_slice(b"HD");
            }
            // Flags apply in the order given: a `t` before `T` shows the old
            // TTL, as in memcached.
            let mut exptime = hit.old_exptime;
            for i in 2..t.ntokens() - 1 {
                let tok = t.get(i);
                match tok[0] {
                    b'T' => exptime = f.ttl.unwrap_or(exptime),
                    b'N' if hit.created => exptime = f.vivify.unwrap_or(exptime),
                    b's' => {
                        let _ = write!(out, " s{}", data.len());
                    }
                    b't' => {
                        if exptime == 0 {
                            out.extend_from_slice(b" t-1");
                        } else {
                            let _ = write!(out, " t{}", exptime.wrapping_sub(now));
                        }
                    }
                    b'c' => {
                        let _ = write!(out, " c{}", it.cas());
                    }
                    b'f' => {
                        let _ = write!(out, " f{}", it.flags());
                    }
                    b'l' => {
                        let _ = write!(out, " l{}", hit.last_access);
                    }
                    b'h' => out.extend_from_slice(if hit.fetched { b" h1" } else { b" h0" }),
                    b'O' => put_opaque(out, tok)?,
                    b'k' => put_key(out, it.key(), hit.key_binary),
                    _ => {}
                }
            }
            if hit.token_sent {
                out.extend_from_slice(b" Z");
            }
            if hit.stale {
                out.extend_from_slice(b" X");
            }
            if hit.won {
                out.extend_from_slice(b" W");
            }
            out.extend_from_slice(b"\r\n");
            if f.value {
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
            Ok(())
        });
    let s = &ctx.stats;
    let (count, hits, misses) = if f.ttl.is_some() {
        (&s.cmd_touch, &s.touch_hits, &s.touch_misses)
    } else {
        (&s.cmd_get, &s.get_hits, &s.get_misses)
    };
    count.fetch_add(1, Ordering::Relaxed);
    match hit {
        Some(Ok(())) => {
            hits.fetch_add(1, Ordering::Relaxed);
            sess.held.hold(&key);
        }
        Some(Err(e)) => {
            hits.fetch_add(1, Ordering::Relaxed);
            out.truncate(mark);
            error(out, e);
            if e == NO_MEMORY {
                // Over UDP the datagram ends here.
                sess.reply_spent = true;
            }
        }
        None => {
            misses.fetch_add(1, Ordering::Relaxed);
            let mut line = b"EN".to_vec();
            if let Err(e) = put_request_flags(&mut line, t, &key, f.key_binary) {
                return error(out, e);
            }
            if !f.quiet {
                out.extend_from_slice(&line);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// `ms <key> <datalen> <flags>*`: checks, then the value is read.
fn mset(ctx: &Ctx<'_>, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) -> Action {
    let n = t.ntokens();
    let Some(mut key) = start(t, out, b"CLIENT_ERROR options flags too long") else {
        return Action::Continue;
    };
    if n == 3 {
        error(out, b"CLIENT_ERROR bad command line format");
        return Action::Continue;
    }
    let vlen = match strtol(t.get(2)) {
        Some(v) if (0..=i32::MAX - 2).contains(&v) => v as usize + 2,
        _ => {
            error(out, b"CLIENT_ERROR bad command line format");
            return Action::Continue;
        }
    };
    let fail = |out: &mut Vec<u8>, msg: &[u8]| {
        error(out, msg);
        Action::Swallow(vlen)
    };
    let f = match preparse(ctx, t, 3, &mut key) {
        Ok(f) => f,
        Err(e) => return fail(out, e),
    };
    let mut ret = Vec::new();
    for i in 3..n - 1 {
        let tok = t.get(i);
        match tok[0] {
            b'O' if tok.len() > MAX_OPAQUE => {
                return fail(out, b"CLIENT_ERROR opaque token too long")
            }
            b'O' | b'k' | b'c' => ret.push(tok.to_vec()),
            _ => {}
        }
    }
    let mut mode = match f.mode {
        None | Some(b'S') => StoreMode::Set,
        Some(b'E') => StoreMode::Add,
        Some(b'A') => StoreMode::Append,
        Some(b'P') => StoreMode::Prepend,
        Some(b'R') => StoreMode::Replace,
        Some(_) => return fail(out, b"CLIENT_ERROR invalid mode for ms M token"),
    };
    if f.cas.is_some() && matches!(mode, StoreMode::Set | StoreMode::Replace) {
        mode = StoreMode::Cas;
    }
    if let Some(r) = admit(ctx, &key, f.client_flags, vlen - 2, true) {
        return fail(out, r.text());
    }
    Action::Nread(PendingStore {
        mode,
        key: sess.key_copy(&key),
        flags: f.client_flags,
        exptime: f.ttl.unwrap_or(0),
        cas: f.cas.unwrap_or(0),
        vlen,
        done: Completion::Meta(MetaStore {
            ret,
            quiet: f.quiet,
            set_stale: f.stale && mode == StoreMode::Cas,
            key_binary: f.key_binary,
        }),
    })
}

/// `_finalize_mset`: the value of an `ms` has arrived.
pub fn complete_mset(
    ctx: &Ctx<'_>,
    m: &MetaStore,
    p: &PendingStore,
    data: &[u8],
    out: &mut Vec<u8>,
) {
    ctx.stats.cmd_set.fetch_add(1, Ordering::Relaxed);
    let Some(value) = data.strip_suffix(b"\r\n") else {
        return error(out, b"CLIENT_ERROR bad data chunk");
    };
    let opts = StoreOpts {
        meta: if m.key_binary { KEY_BINARY } else { 0 },
        set_stale: m.set_stale,
    };
    let (res, cas) = ctx
        .cache
        .store_ext(p.mode, &p.key, p.flags, p.exptime, value, p.cas, opts);
    count_cas(ctx, p.mode, res);
    let code: &[u8] = match res {
        StoreResult::Stored if m.quiet => return,
        StoreResult::Stored => b"HD",
        StoreResult::Exists => b"EX",
        StoreResult::NotFound => b"NF",
        StoreResult::NotStored => b"NS",
        StoreResult::TooLarge => return error(out, b"SERVER_ERROR object too large for cache"),
        StoreResult::NoMemory => return error(out, b"SERVER_ERROR out of memory storing object"),
    };
    out.extend_from_slice(code);
    for tok in &m.ret {
        match tok[0] {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(tok);
            }
            b'k' => put_key(out, &p.key, m.key_binary),
            b'c' => {
                let _ = write!(out, " c{cas}");
            }
            _ => {}
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// `md <key> <flags>*`.
fn mdelete(ctx: &Ctx<'_>, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let Some(mut key) = start(t, out, b"CLIENT_ERROR options flags too long") else {
        return;
    };
    let f = match preparse(ctx, t, 2, &mut key) {
        Ok(f) => f,
        Err(_) => return error(out, b"CLIENT_ERROR invalid or duplicate flag"),
    };
    let mut flags = Vec::new();
    if let Err(e) = put_request_flags(&mut flags, t, &key, f.key_binary) {
        return error(out, e);
    }
    ctx.prefix.record_delete(&key);
    let cas = f.cas.unwrap_or(0);
    let res = if f.stale {
        ctx.cache.invalidate(&key, cas, f.ttl)
    } else {
        ctx.cache.delete_cas(&key, cas)
    };
    let code: &[u8] = match res {
        DeleteResult::Deleted => {
            if !f.stale {
                ctx.stats.delete_hits.fetch_add(1, Ordering::Relaxed);
            }
            if f.quiet {
                return;
            }
            b"HD"
        }
        DeleteResult::Exists => {
            ctx.stats.delete_misses.fetch_add(1, Ordering::Relaxed);
            b"EX"
        }
        DeleteResult::NotFound => {
            ctx.stats.delete_misses.fetch_add(1, Ordering::Relaxed);
            b"NF"
        }
    };
    out.extend_from_slice(code);
    out.extend_from_slice(&flags);
    out.extend_from_slice(b"\r\n");
}

/// `ma <key> <flags>*`.
fn marithmetic(ctx: &Ctx<'_>, sess: &Session, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let Some(mut key) = start(t, out, b"CLIENT_ERROR options flags too long") else {
        return;
    };
    let f = match preparse(ctx, t, 2, &mut key) {
        Ok(f) => f,
        Err(_) => return error(out, b"CLIENT_ERROR invalid or duplicate flag"),
    };
    let incr = match f.mode {
        None | Some(b'I') | Some(b'+') => true,
        Some(b'D') | Some(b'-') => false,
        Some(_) => return error(out, b"CLIENT_ERROR invalid mode for ma M token"),
    };
    let s = &ctx.stats;
    let (hits, misses) = if incr {
        (&s.incr_hits, &s.incr_misses)
    } else {
        (&s.decr_hits, &s.decr_misses)
    };
    let delta = f.delta.unwrap_or(1);
    let mut created = false;
    let (code, value): (&[u8], Option<u64>) = match ctx
        .cache
        .delta(
            &key,
            incr,
            delta,
            f.cas.unwrap_or(0),
            !sess.held.holds(&key),
        )
        .0
    {
        DeltaResult::Ok(v) => {
            hits.fetch_add(1, Ordering::Relaxed);
            (b"", Some(v))
        }
        DeltaResult::NonNumeric => {
            return error(
                out,
                b"CLIENT_ERROR cannot increment or decrement non-numeric value",
            )
        }
        DeltaResult::NoMemory => return error(out, b"SERVER_ERROR out of memory"),
        DeltaResult::Exists => (b"EX", None),
        DeltaResult::NotFound if f.vivify.is_some() => {
            let v = f.initial.to_string();
            match ctx
                .cache
                .store(StoreMode::Add, &key, 0, 0, v.as_bytes(), 0)
                .0
            {
                StoreResult::Stored => {
                    created = true;
                    (b"", Some(f.initial))
                }
                StoreResult::NoMemory => {
                    return error(out, b"SERVER_ERROR Out of memory allocating new item")
                }
                _ => (b"NS", None),
            }
        }
        DeltaResult::NotFound => {
            misses.fetch_add(1, Ordering::Relaxed);
            (b"NF", None)
        }
    };
    let Some(value) = value else {
        let mut line = code.to_vec();
        if let Err(e) = put_request_flags(&mut line, t, &key, f.key_binary) {
            return error(out, e);
        }
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
        return;
    };
    if !created && f.quiet {
        // A quiet success sends nothing; a TTL still applies.
        if let Some(ttl) = f.ttl {
            ctx.cache.set_exptime(&key, ttl);
        }
        return;
    }
    let now = ctx.cache.clock().now();
    let (cas, mut exptime) = ctx
        .cache
        .peek(&key, |it| (it.cas(), it.exptime()))
        .unwrap_or((0, 0));
    let digits = value.to_string();
    let mut line = if f.value {
        format!("VA {}", digits.len()).into_bytes()
    } else {
        b"HD".to_vec()
    };
    for i in 2..t.ntokens() - 1 {
        let tok = t.get(i);
        match tok[0] {
            b'c' => {
                let _ = write!(line, " c{cas}");
            }
            b't' => {
                if exptime == 0 {
                    line.extend_from_slice(b" t-1");
                } else {
                    let _ = write!(line, " t{}", exptime.wrapping_sub(now));
                }
            }
            b'T' => exptime = f.ttl.unwrap_or(exptime),
            b'N' if created => exptime = f.vivify.unwrap_or(exptime),
            b'O' => {
                if let Err(e) = put_opaque(&mut line, tok) {
                    return error(out, e);
                }
            }
            b'k' => put_key(&mut line, &key, f.key_binary),
            _ => {}
        }
    }
    if f.ttl.is_some() || created {
        ctx.cache.set_exptime(&key, exptime);
    }
    out.extend_from_slice(&line);
    if f.value {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(digits.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// `me <key> [b]`: what memcached knows of an item.
fn mexamine(ctx: &Ctx<'_>, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let n = t.ntokens();
    if n < 3 || t.get(1).len() > KEY_MAX_LENGTH {
        return error(out, b"CLIENT_ERROR bad command line format");
    }
    let mut key = Cow::Borrowed(t.get(1));
    if n >= 4 && t.get(2) == b"b" {
        match decode_key(&key) {
            Some(k) => key = Cow::Owned(k),
            None => return error(out, b"CLIENT_ERROR bad command line format"),
        }
    }
    ctx.stats.cmd_meta.fetch_add(1, Ordering::Relaxed);
    let now = ctx.cache.clock().now();
    let class = ctx.cache.class_of_key(&key).unwrap_or(0);
    let found = ctx.cache.peek(&key, |it| {
        out.extend_from_slice(b"ME ");
        if it.meta() & KEY_BINARY != 0 {
            let k = base64::engine::general_purpose::STANDARD.encode(it.key());
            out.extend_from_slice(k.as_bytes());
        } else {
            out.extend_from_slice(it.key());
        }
        let exp = if it.exptime() == 0 {
            -1
        } else {
            i64::from(now) - i64::from(it.exptime())
        };
        let _ = write!(
            out,
            " exp={exp} la={} cas={} fetch={} cls={class} size={}\r\n",
            now.saturating_sub(it.time()),
            it.cas(),
            if it.fetched() { "yes" } else { "no" },
            it.size()
        );
    });
    if found.is_none() {
        error(out, b"EN");
    }
}

#[cfg(test)]
mod tests;
