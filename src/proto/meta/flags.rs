//! The flags of a meta command: memcached's `_meta_flag_preparse` and the
//! helpers that write a meta reply's key, opaque and return flags.

use std::borrow::Cow;

use base64::Engine as _;

use crate::cnum::{safe_strtol as strtol, safe_strtoul as strtoul, safe_strtoull as strtoull};
use crate::proto::ctx::Ctx;
use crate::proto::tokens::Tokens;

/// More tokens than this (command, key and flags, plus memcached's empty
/// final token) is an error (`MFLAG_MAX_OPT_LENGTH`).
pub(super) const MAX_OPT_TOKENS: usize = 20;
/// Longest opaque token, its `O` included (`MFLAG_MAX_OPAQUE_LENGTH`).
pub(super) const MAX_OPAQUE: usize = 32;

/// What `_meta_flag_preparse` gathers from the flags.
#[derive(Debug, Default)]
pub(super) struct Flags {
    /// `b`: the key was base64 and is decoded.
    pub(super) key_binary: bool,
    /// `N`: autovivify with this exptime.
    pub(super) vivify: Option<u32>,
    /// `T`: new exptime.
    pub(super) ttl: Option<u32>,
    /// `R`: recache time.
    pub(super) recache: Option<u32>,
    /// `v`: return the value.
    pub(super) value: bool,
    /// `u`: no LRU bump.
    pub(super) no_update: bool,
    /// `q`: quiet.
    pub(super) quiet: bool,
    /// `F`: client flags.
    pub(super) client_flags: u32,
    /// `C`: compare CAS.
    pub(super) cas: Option<u64>,
    /// `M`: mode.
    pub(super) mode: Option<u8>,
    /// `J`: initial value (`ma`).
    pub(super) initial: u64,
    /// `D`: delta (`ma`).
    pub(super) delta: Option<u64>,
    /// `I`: invalidate / set stale.
    pub(super) stale: bool,
}

/// `_meta_flag_preparse`: the flags from token `start` on. The key is
/// decoded in place by `b`. On error, memcached's message.
pub(super) fn preparse<'a>(
    ctx: &Ctx<'_>,
    t: &Tokens<'a>,
    start: usize,
    key: &mut Cow<'a, [u8]>,
) -> Result<Flags, &'static [u8]> {
    let mut f = Flags::default();
    let mut seen = [false; 127];
    let mut err: Option<&'static [u8]> = None;
    let realtime = |v: i32| ctx.cache.clock().realtime(v);
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
pub(super) const NO_MEMORY: &[u8] = b"SERVER_ERROR out of memory writing get response";

/// The longest `mg` reply line: every return flag (at most 22 tokens of a
/// number each), a 32-byte opaque and a base64 key.
pub(super) const META_LINE_MAX: usize = 22 * 24 + 32 + 350 + 8;

/// memcached's `out_errstring`: an error is sent even in quiet mode.
pub(super) fn error(out: &mut Vec<u8>, msg: &[u8]) {
    out.extend_from_slice(msg);
    out.extend_from_slice(b"\r\n");
}

/// ` k<key>`, base64 with ` b` for a binary key (`META_KEY`).
pub(super) fn put_key(out: &mut Vec<u8>, key: &[u8], binary: bool) {
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
pub(super) fn put_opaque(out: &mut Vec<u8>, tok: &[u8]) -> Result<(), &'static [u8]> {
    if tok.len() > MAX_OPAQUE {
        return Err(b"CLIENT_ERROR opaque token too long");
    }
    out.push(b' ');
    out.extend_from_slice(tok);
    Ok(())
}

/// The `O` and `k` return flags of a reply that has no item to describe
/// (a miss, `md`, a failed `ma`), appended in the order asked.
pub(super) fn put_request_flags(
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
