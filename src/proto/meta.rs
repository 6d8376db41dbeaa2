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

use super::number::{strtol, strtoul, strtoull};
use super::text::{Action, PendingStore, Session, Tokens};
use crate::cache::items::{KEY_BINARY, KEY_MAX_LENGTH};
use crate::cache::meta::MetaGetOpts;
use crate::cache::{DeleteResult, DeltaResult, StoreMode, StoreOpts, StoreResult};
use crate::Server;

/// More tokens than this (command, key and flags, plus memcached's empty
/// final token) is an error (`MFLAG_MAX_OPT_LENGTH`).
const MAX_OPT_TOKENS: usize = 20;
/// Longest opaque token, its `O` included (`MFLAG_MAX_OPAQUE_LENGTH`).
const MAX_OPAQUE: usize = 32;

/// What `_meta_flag_preparse` gathers from the flags.
#[derive(Debug, Default)]
struct Flags {
    /// `b`: the key was base64 and is decoded.
    key_binary: bool,
    /// `N`: autovivify with this exptime.
    vivify: Option<u32>,
    /// `T`: new exptime.
    ttl: Option<u32>,
    /// `R`: recache time.
    recache: Option<u32>,
    /// `v`: return the value.
    value: bool,
    /// `u`: no LRU bump.
    no_update: bool,
    /// `q`: quiet.
    quiet: bool,
    /// `F`: client flags.
    client_flags: u32,
    /// `C`: compare CAS.
    cas: Option<u64>,
    /// `M`: mode.
    mode: Option<u8>,
    /// `J`: initial value (`ma`).
    initial: u64,
    /// `D`: delta (`ma`).
    delta: Option<u64>,
    /// `I`: invalidate / set stale.
    stale: bool,
}

/// `_meta_flag_preparse`: the flags from token `start` on. The key is
/// decoded in place by `b`. On error, memcached's message.
fn preparse<'a>(
    server: &Server,
    t: &Tokens<'a>,
    start: usize,
    key: &mut Cow<'a, [u8]>,
) -> Result<Flags, &'static [u8]> {
    let mut f = Flags::default();
    let mut seen = [false; 127];
    let mut err: Option<&'static [u8]> = None;
    let realtime = |v: i32| server.cache.clock().realtime(v);
    let bad_token: &'static [u8] = b"CLIENT_ERROR bad token in command line format";
    for i in start..t.ntokens() - 1 {
        let tok = t.get(i);
        let o = tok[0];
        if o >= 127 || seen[o as usize] {
            return Err(b"CLIENT_ERROR duplicate flag");
        }
        seen[o as usize] = true;
        let arg = &tok[1..];
        match o {
            b'b' => match decode_key(key) {
                Some(k) => {
                    *key = Cow::Owned(k);
                    f.key_binary = true;
                }
                None => {
                    err = Some(b"CLIENT_ERROR error decoding key");
                    f.key_binary = true;
                }
            },
            b'N' => match strtol(arg) {
                Some(v) => f.vivify = Some(realtime(v)),
                None => err = Some(bad_token),
            },
            b'T' => match strtol(arg) {
                Some(v) => f.ttl = Some(realtime(v)),
                None => err = Some(bad_token),
            },
            b'R' => match strtol(arg) {
                Some(v) => f.recache = Some(realtime(v)),
                None => err = Some(bad_token),
            },
            b'l' | b'O' | b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' | b'h' => {}
            b'v' => f.value = true,
            b'u' => f.no_update = true,
            b'q' => f.quiet = true,
            b'F' => match strtoul(arg) {
                Some(v) => f.client_flags = v,
                None => err = err.or(Some(b"CLIENT_ERROR bad command line format")),
            },
            b'C' => match strtoull(arg) {
                Some(v) => f.cas = Some(v),
                None => err = Some(bad_token),
            },
            b'M' => {
                if tok.len() != 2 {
                    err = Some(b"CLIENT_ERROR incorrect length for M token");
                } else {
                    f.mode = Some(tok[1]);
                }
            }
            b'J' => match strtoull(arg) {
                Some(v) => f.initial = v,
                None => err = Some(b"CLIENT_ERROR invalid numeric initial value"),
            },
            b'D' => match strtoull(arg) {
                Some(v) => f.delta = Some(v),
                None => err = Some(b"CLIENT_ERROR invalid numeric delta value"),
            },
            b'I' => f.stale = true,
            _ => return Err(b"CLIENT_ERROR invalid flag"),
        }
    }
    match err {
        Some(e) => Err(e),
        None => Ok(f),
    }
}

/// memcached's `base64_decode`: characters outside the alphabet are
/// skipped, the rest must come in whole groups of four, and decoding stops
/// after the first group with padding. `None` where memcached returns 0.
pub fn decode_key(key: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let valid: Vec<u8> = key
        .iter()
        .copied()
        .filter(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
        .collect();
    if valid.is_empty() || !valid.len().is_multiple_of(4) {
        return None;
    }
    let end = valid
        .chunks(4)
        .position(|g| g.contains(&b'='))
        .map_or(valid.len(), |i| (i + 1) * 4);
    LENIENT.decode(&valid[..end]).ok().filter(|k| !k.is_empty())
}

/// The reply to an `mg` whose value finds no memory (the budget of a UDP
/// datagram, or the reply pool): the text protocol's line for a get.
const NO_MEMORY: &[u8] = b"SERVER_ERROR out of memory writing get response";

/// The longest `mg` reply line: every return flag (at most 22 tokens of a
/// number each), a 32-byte opaque and a base64 key.
const META_LINE_MAX: usize = 22 * 24 + 32 + 350 + 8;

/// memcached's `out_errstring`: an error is sent even in quiet mode.
fn error(out: &mut Vec<u8>, msg: &[u8]) {
    out.extend_from_slice(msg);
    out.extend_from_slice(b"\r\n");
}

/// ` k<key>`, base64 with ` b` for a binary key (`META_KEY`).
fn put_key(out: &mut Vec<u8>, key: &[u8], binary: bool) {
    out.extend_from_slice(b" k");
    if binary {
        out.extend_from_slice(
            base64::engine::general_purpose::STANDARD
                .encode(key)
                .as_bytes(),
        );
        out.extend_from_slice(b" b");
    } else {
        out.extend_from_slice(key);
    }
}

/// Append ` O...` for an opaque token, or say it is too long.
fn put_opaque(out: &mut Vec<u8>, tok: &[u8]) -> Result<(), &'static [u8]> {
    if tok.len() > MAX_OPAQUE {
        return Err(b"CLIENT_ERROR opaque token too long");
    }
    out.push(b' ');
    out.extend_from_slice(tok);
    Ok(())
}

/// The `O` and `k` return flags of a reply that has no item to describe
/// (a miss, `md`, a failed `ma`), appended in the order asked.
fn put_request_flags(
    line: &mut Vec<u8>,
    t: &Tokens<'_>,
    key: &[u8],
    key_binary: bool,
) -> Result<(), &'static [u8]> {
    for i in 2..t.ntokens() - 1 {
        let tok = t.get(i);
        match tok[0] {
            b'O' => put_opaque(line, tok)?,
            b'k' => put_key(line, key, key_binary),
            _ => {}
        }
    }
    Ok(())
}

/// Dispatch a two-letter command that starts with `m`.
pub fn process(server: &Server, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) -> Action {
    match t.get(0)[1] {
        b'g' => mget(server, sess, t, out),
        b's' => return mset(server, sess, t, out),
        b'd' => mdelete(server, t, out),
        b'a' => marithmetic(server, sess, t, out),
        b'e' => mexamine(server, t, out),
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
fn mget(server: &Server, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let Some(mut key) = start(t, out, b"CLIENT_ERROR options flags are too long") else {
        return;
    };
    let f = match preparse(server, t, 2, &mut key) {
        Ok(f) => f,
        Err(e) => return error(out, e),
    };
    let opts = MetaGetOpts {
        touch: f.ttl,
        vivify: f.vivify,
        recache: f.recache,
        no_update: f.no_update,
    };
    let now = server.cache.clock().now();
    let mark = out.len();
    let hit = server
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
    let s = &server.stats;
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

/// What `ms` replies with once its value has arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaStore {
    /// The `O`, `k` and `c` flag tokens, in the order given.
    ret: Vec<Vec<u8>>,
    /// `q`.
    quiet: bool,
    /// `I` with a CAS.
    set_stale: bool,
    /// `b`.
    key_binary: bool,
}

/// `ms <key> <datalen> <flags>*`: checks, then the value is read.
fn mset(server: &Server, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) -> Action {
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
    let f = match preparse(server, t, 3, &mut key) {
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
    if let Some(r) = super::text::admit(server, &key, f.client_flags, vlen - 2, true) {
        return fail(out, r.text());
    }
    Action::Nread(PendingStore {
        mode,
        key: sess.key_copy(&key),
        flags: f.client_flags,
        exptime: f.ttl.unwrap_or(0),
        cas: f.cas.unwrap_or(0),
        vlen,
        bin: None,
        meta: Some(MetaStore {
            ret,
            quiet: f.quiet,
            set_stale: f.stale && mode == StoreMode::Cas,
            key_binary: f.key_binary,
        }),
    })
}

/// `_finalize_mset`: the value of an `ms` has arrived.
pub fn complete_mset(
    server: &Server,
    m: &MetaStore,
    p: &PendingStore,
    data: &[u8],
    out: &mut Vec<u8>,
) {
    server.stats.cmd_set.fetch_add(1, Ordering::Relaxed);
    let Some(value) = data.strip_suffix(b"\r\n") else {
        return error(out, b"CLIENT_ERROR bad data chunk");
    };
    let opts = StoreOpts {
        meta: if m.key_binary { KEY_BINARY } else { 0 },
        set_stale: m.set_stale,
    };
    let (res, cas) = server
        .cache
        .store_ext(p.mode, &p.key, p.flags, p.exptime, value, p.cas, opts);
    super::text::count_cas(server, p.mode, res);
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
fn mdelete(server: &Server, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let Some(mut key) = start(t, out, b"CLIENT_ERROR options flags too long") else {
        return;
    };
    let f = match preparse(server, t, 2, &mut key) {
        Ok(f) => f,
        Err(_) => return error(out, b"CLIENT_ERROR invalid or duplicate flag"),
    };
    let mut flags = Vec::new();
    if let Err(e) = put_request_flags(&mut flags, t, &key, f.key_binary) {
        return error(out, e);
    }
    server.prefix.record_delete(&key);
    let cas = f.cas.unwrap_or(0);
    let res = if f.stale {
        server.cache.invalidate(&key, cas, f.ttl)
    } else {
        server.cache.delete_cas(&key, cas)
    };
    let code: &[u8] = match res {
        DeleteResult::Deleted => {
            if !f.stale {
                server.stats.delete_hits.fetch_add(1, Ordering::Relaxed);
            }
            if f.quiet {
                return;
            }
            b"HD"
        }
        DeleteResult::Exists => {
            server.stats.delete_misses.fetch_add(1, Ordering::Relaxed);
            b"EX"
        }
        DeleteResult::NotFound => {
            server.stats.delete_misses.fetch_add(1, Ordering::Relaxed);
            b"NF"
        }
    };
    out.extend_from_slice(code);
    out.extend_from_slice(&flags);
    out.extend_from_slice(b"\r\n");
}

/// `ma <key> <flags>*`.
fn marithmetic(server: &Server, sess: &Session, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let Some(mut key) = start(t, out, b"CLIENT_ERROR options flags too long") else {
        return;
    };
    let f = match preparse(server, t, 2, &mut key) {
        Ok(f) => f,
        Err(_) => return error(out, b"CLIENT_ERROR invalid or duplicate flag"),
    };
    let incr = match f.mode {
        None | Some(b'I') | Some(b'+') => true,
        Some(b'D') | Some(b'-') => false,
        Some(_) => return error(out, b"CLIENT_ERROR invalid mode for ma M token"),
    };
    let s = &server.stats;
    let (hits, misses) = if incr {
        (&s.incr_hits, &s.incr_misses)
    } else {
        (&s.decr_hits, &s.decr_misses)
    };
    let delta = f.delta.unwrap_or(1);
    let mut created = false;
    let (code, value): (&[u8], Option<u64>) = match server
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
            match server
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
            server.cache.set_exptime(&key, ttl);
        }
        return;
    }
    let now = server.cache.clock().now();
    let (cas, mut exptime) = server
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
        server.cache.set_exptime(&key, exptime);
    }
    out.extend_from_slice(&line);
    if f.value {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(digits.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// `me <key> [b]`: what memcached knows of an item.
fn mexamine(server: &Server, t: &Tokens<'_>, out: &mut Vec<u8>) {
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
    server.stats.cmd_meta.fetch_add(1, Ordering::Relaxed);
    let now = server.cache.clock().now();
    let class = server.cache.class_of_key(&key).unwrap_or(0);
    let found = server.cache.peek(&key, |it| {
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
mod tests {
    use super::*;

    fn run(server: &Server, lines: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut sess = Session::default();
        for line in lines {
            let t = Tokens::new(line);
            match process(server, &mut sess, &t, &mut out) {
                Action::Nread(p) => {
                    let m = p.meta.clone().expect("ms");
                    let data = [&b"value"[..], b"\r\n"].concat();
                    assert_eq!(p.vlen, data.len());
                    complete_mset(server, &m, &p, &data, &mut out);
                }
                Action::Swallow(_) | Action::Continue | Action::Flush => {}
                other => panic!("{other:?}"),
            }
        }
        out
    }

    #[test]
    fn set_get_delete_arith() {
        let server = Server::new(crate::settings::Settings::default());
        let out = run(
            &server,
            &[
                b"ms foo 5 T0 F3 Oab k",
                b"mg foo v s f Oxy k q",
                b"mg missing v q",
                b"mg missing Oz k",
                b"md foo q",
                b"md foo",
                b"ma n N0 J10 v",
                b"ma n D5 MI v",
                b"ma n MD D100",
                b"mn",
                b"mg n v",
                b"mx",
                b"mg foo xx",
                b"mg foo s s",
            ],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HD Oab kfoo\r\n\
             VA 5 s5 f3 Oxy kfoo\r\nvalue\r\n\
             EN Oz kmissing\r\n\
             NF\r\n\
             VA 2\r\n10\r\n\
             VA 2\r\n15\r\n\
             HD\r\n\
             MN\r\n\
             VA 2\r\n0 \r\n\
             ERROR\r\n\
             CLIENT_ERROR invalid flag\r\n\
             CLIENT_ERROR duplicate flag\r\n"
        );
    }

    #[test]
    fn base64_decoding_is_memcacheds() {
        assert_eq!(decode_key(b"YWJj").as_deref(), Some(&b"abc"[..]));
        // Characters outside the alphabet are skipped.
        assert_eq!(decode_key(b"c121_YQ==").unwrap().len(), 4);
        assert_eq!(decode_key(b"!!!!"), None);
        assert_eq!(decode_key(b"YWJ"), None);
        // Decoding stops after the first padded group.
        assert_eq!(decode_key(b"YQ==YWJj").as_deref(), Some(&b"a"[..]));
    }

    #[test]
    fn base64_keys_round_trip() {
        let server = Server::new(crate::settings::Settings::default());
        // "a b" is not a valid text key, but is as base64 ("YSBi").
        let out = run(&server, &[b"ms YSBi 5 b k", b"mg YSBi b k v", b"me YSBi b"]);
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.starts_with("HD kYSBi b\r\nVA 5 kYSBi b\r\nvalue\r\nME YSBi exp=-1 "),
            "{s}"
        );
    }
}
