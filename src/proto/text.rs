//! The ASCII protocol: mirrors memcached's `proto_text.c`
//! (`process_command_ascii`, `process_*_command`, `complete_nread_ascii`).
//!
//! A command line goes in, reply bytes come out in `out`, and an
//! [`Action`] tells the connection what to do next (read a value, swallow
//! one, close). The command sees the server only through its [`Ctx`], and
//! no socket is touched, so every reply can be unit-tested. Replies are
//! memcached 1.6.18's byte for byte, quirks included (see [`crate::cnum`]
//! for the number parsing ones). Retrievals are in [`super::get`], the
//! meta commands in [`super::meta`], `stats` and the other administrative
//! commands in [`super::admin`].

use std::sync::atomic::Ordering;

use crate::cache::items::KEY_MAX_LENGTH;
use crate::cache::{DeltaResult, StoreMode, StoreResult};
use crate::cnum::{safe_strtol as strtol, safe_strtoul as strtoul, safe_strtoull as strtoull};
use crate::server::Stop;

use super::action::{Action, Completion, PendingStore};
use super::ctx::Ctx;
use super::session::{out_string, set_noreply_maybe, Session};
use super::store::{admit, count_cas};
use super::tokens::Tokens;

/// Lines longer than this without a `\n` close the connection unless they
/// are a `get`/`gets` (memcached's 2048-byte rule in `try_read_command_ascii`).
pub const MAX_LINE_NO_GET: usize = 2048;

/// Longest line accepted at all, even for a multi-get. memcached grows its
/// buffer without bound here; a bound keeps one client from taking all
/// memory.
pub const MAX_LINE: usize = 4 * 1024 * 1024;

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
    ctx: &Ctx<'_>,
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
        process_update(ctx, sess, &t, mode, out)
    };
    // Meta commands are all two letters, starting with `m`.
    if cmd.len() == 2 && cmd[0] == b'm' {
        return super::meta::process(ctx, sess, &t, out);
    }
    match cmd {
        b"get" | b"gets" | b"gat" | b"gats" | b"bget" => {
            if want(n >= 3, sess, out) {
                let cas = cmd == b"gets" || cmd == b"gats";
                let touch = cmd == b"gat" || cmd == b"gats";
                return super::get::process_get(ctx, sess, line, &t, cas, touch, out);
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
                process_arithmetic(ctx, sess, &t, cmd == b"incr", out);
            }
        }
        b"delete" => {
            if want((3..=5).contains(&n), sess, out) {
                process_delete(ctx, sess, &t, out);
            }
        }
        b"touch" => {
            if want(n == 4 || n == 5, sess, out) {
                process_touch(ctx, sess, &t, out);
            }
        }
        b"stats" => {
            // A statistics reply is bounded by the server's own state (a
            // few kB; `stats cachedump` is capped below); it is built,
            // then checked against a UDP datagram's budget.
            let mark = out.len();
            super::admin::process_stat(ctx, sess, &t, out);
            if out.len() > sess.reply_limit {
                out.truncate(mark);
                out_string(sess, out, b"SERVER_ERROR out of memory writing stats");
                sess.reply_spent = true;
            }
        }
        b"slabs" => super::admin::process_slabs(ctx, sess, &t, out),
        b"lru_crawler" => return super::crawler::process(ctx, sess, &t, out),
        b"lru" => {
            if want(n >= 3, sess, out) {
                super::lru::process(ctx, sess, &t, out);
            }
        }
        b"cache_memlimit" => {
            if want(n == 3 || n == 4, sess, out) {
                super::admin::process_memlimit(ctx, sess, &t, out);
            }
        }
        b"flush_all" => {
            if want((2..=4).contains(&n), sess, out) {
                process_flush_all(ctx, sess, &t, out);
            }
        }
        b"version" => {
            out_string(
                sess,
                out,
                format!("VERSION {}", crate::settings::VERSION).as_bytes(),
            );
        }
        b"quit" => return Action::Quit,
        b"watch" => return process_watch(ctx, sess, &t, out),
        b"refresh_certs" => {
            set_noreply_maybe(sess, &t);
            match ctx.admin.refresh_certs() {
                Ok(()) => out_string(sess, out, b"OK"),
                Err(msg) => out.extend_from_slice(msg.as_bytes()),
            }
        }
        b"shutdown" => return process_shutdown(ctx, sess, &t, out),
        b"verbosity" => {
            if want(n == 3 || n == 4, sess, out) {
                set_noreply_maybe(sess, &t);
                match strtoul(t.get(1)) {
                    Some(level) => {
                        ctx.admin.set_verbosity(level);
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

/// `watch [kind ...]` (memcached's `process_watch_command`): the checks,
/// then the kinds the connection will watch; no kind means `fetchers`.
fn process_watch(ctx: &Ctx<'_>, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) -> Action {
    set_noreply_maybe(sess, t);
    let reply: &[u8] = if !ctx.settings.watch_enabled {
        b"CLIENT_ERROR watch commands not allowed"
    } else if out.len() > sess.unsent {
        // Replies of earlier commands still wait to be written (memcached's
        // `resp_has_stack`).
        b"ERROR cannot pipeline other commands before watch"
    } else {
        let names = (1..t.ntokens() - 1).map(|i| t.get(i));
        match crate::logger::parse_kinds(names) {
            Some(kinds) => return Action::Watch(kinds),
            None => b"ERROR",
        }
    };
    out_string(sess, out, reply);
    Action::Continue
}

/// `set`, `add`, `replace`, `append`, `prepend`, `cas` up to the value
/// (memcached's `process_update_command`).
fn process_update(
    ctx: &Ctx<'_>,
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
    let exptime = ctx.cache.clock().realtime(exptime);
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
    if let Some(r) = admit(ctx, key, flags, nbytes, mode == StoreMode::Set) {
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
        done: Completion::Text,
    })
}

/// The value of a text store has arrived: `data` is `vlen` bytes, which
/// must end in `\r\n` (memcached's `complete_nread_ascii`).
pub fn complete_store(
    ctx: &Ctx<'_>,
    sess: &mut Session,
    p: &PendingStore,
    data: &[u8],
    out: &mut Vec<u8>,
) {
    let s = &ctx.stats;
    s.cmd_set.fetch_add(1, Ordering::Relaxed);
    if !data.ends_with(b"\r\n") {
        out_string(sess, out, b"CLIENT_ERROR bad data chunk");
        return;
    }
    let value = &data[..data.len() - 2];
    let (res, _) = ctx
        .cache
        .store(p.mode, &p.key, p.flags, p.exptime, value, p.cas);
    count_cas(ctx, p.mode, res);
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

/// `incr` / `decr` (memcached's `process_arithmetic_command`).
fn process_arithmetic(
    ctx: &Ctx<'_>,
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
    let s = &ctx.stats;
    let (hits, misses) = if incr {
        (&s.incr_hits, &s.incr_misses)
    } else {
        (&s.decr_hits, &s.decr_misses)
    };
    match ctx.cache.delta(key, incr, delta, 0, true).0 {
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
fn process_delete(ctx: &Ctx<'_>, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) {
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
    ctx.prefix.record_delete(key);
    let s = &ctx.stats;
    if ctx.cache.delete(key) {
        s.delete_hits.fetch_add(1, Ordering::Relaxed);
        out_string(sess, out, b"DELETED");
    } else {
        s.delete_misses.fetch_add(1, Ordering::Relaxed);
        out_string(sess, out, b"NOT_FOUND");
    }
}

/// `touch <key> <exptime> [noreply]` (memcached's `process_touch_command`).
fn process_touch(ctx: &Ctx<'_>, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let Some(key) = key_arg(sess, t, out) else {
        return;
    };
    let Some(exptime) = strtol(t.get(2)) else {
        out_string(sess, out, b"CLIENT_ERROR invalid exptime argument");
        return;
    };
    let s = &ctx.stats;
    s.cmd_touch.fetch_add(1, Ordering::Relaxed);
    if ctx.cache.touch(key, ctx.cache.clock().realtime(exptime)) {
        s.touch_hits.fetch_add(1, Ordering::Relaxed);
        out_string(sess, out, b"TOUCHED");
    } else {
        s.touch_misses.fetch_add(1, Ordering::Relaxed);
        out_string(sess, out, b"NOT_FOUND");
    }
}

/// `flush_all [delay] [noreply]` (memcached's `process_flush_all_command`).
fn process_flush_all(ctx: &Ctx<'_>, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) {
    set_noreply_maybe(sess, t);
    ctx.stats.cmd_flush.fetch_add(1, Ordering::Relaxed);
    if !ctx.settings.flush_enabled {
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
        ctx.cache.clock().realtime(delay)
    } else {
        0
    };
    ctx.cache.flush_all(when);
    out_string(sess, out, b"OK");
}

/// `shutdown [graceful]`, only with `-A`.
fn process_shutdown(
    ctx: &Ctx<'_>,
    sess: &mut Session,
    t: &Tokens<'_>,
    out: &mut Vec<u8>,
) -> Action {
    if !ctx.settings.shutdown_command {
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

#[cfg(test)]
mod tests;
