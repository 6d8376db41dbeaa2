//! `lru`: mirrors `process_lru_command` of memcached's `proto_text.c`,
//! which changes the segmented LRU's settings at run time (the LRU itself
//! is `cache::lru`).
//!
//! The replies are memcached 1.6.18's: `OK`, or a plain `ERROR` (with a
//! reason for `tune`'s limits), never `CLIENT_ERROR`.

use super::ctx::Ctx;
use super::session::{out_string, set_noreply_maybe, Session};
use super::tokens::Tokens;
use crate::cnum::{safe_strtod, safe_strtol, safe_strtoul};

/// `lru tune <hot_pct> <warm_pct> <hot_max_factor> <warm_max_factor>`,
/// `lru mode <flat|segmented>`, `lru temp_ttl <ttl>` (each `[noreply]`).
/// `mode` and `temp_ttl` need the maintainer thread.
pub fn process(ctx: &Ctx<'_>, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) {
    set_noreply_maybe(sess, t);
    let n = t.ntokens();
    let lru = ctx.cache.lru();
    let float = |b: &[u8]| std::str::from_utf8(b).ok().and_then(safe_strtod);
    let reply: &[u8] = match t.get(1) {
        b"tune" if n >= 7 => {
            match (
                safe_strtoul(t.get(2)),
                safe_strtoul(t.get(3)),
                float(t.get(4)),
                float(t.get(5)),
            ) {
                (Some(hot), Some(warm), Some(hot_factor), Some(warm_factor)) => {
                    // memcached adds them as unsigned 32-bit numbers, and
                    // lets a NaN factor through.
                    if hot.wrapping_add(warm) > 80 {
                        b"ERROR hot and warm pcts must not exceed 80"
                    } else if warm_factor <= 0.0 || hot_factor <= 0.0 {
                        b"ERROR hot/warm age factors must be greater than 0"
                    } else {
                        lru.tune(hot, warm, hot_factor, warm_factor);
                        b"OK"
                    }
                }
                _ => b"ERROR",
            }
        }
        b"mode" if n >= 4 && lru.maintainer() => match t.get(2) {
            b"flat" => {
                lru.set_segmented(false);
                b"OK"
            }
            b"segmented" => {
                lru.set_segmented(true);
                b"OK"
            }
            _ => b"ERROR",
        },
        b"temp_ttl" if n >= 4 && lru.maintainer() => match safe_strtol(t.get(2)) {
            Some(ttl) => {
                lru.set_temp_ttl(ttl);
                b"OK"
            }
            None => b"ERROR",
        },
        _ => b"ERROR",
    };
    out_string(sess, out, reply);
}
