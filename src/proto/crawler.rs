//! `lru_crawler`: mirrors `process_lru_crawler_command` of memcached's
//! `proto_text.c`, `lru_crawler_crawl`'s class list of `crawler.c`, and
//! the line `crawler_metadump_eval` writes for each item.
//!
//! The replies are memcached 1.6.18's. The crawler itself is in the cache
//! (`cache::crawler`); a metadump is a cursor the connection pulls from
//! (`cache::metadump`), which [`metadump_batch`] turns into lines.

use super::action::Action;
use super::ctx::Ctx;
use super::session::{out_string, Session};
use super::tokens::Tokens;
use crate::cache::crawler::{ClassSet, CrawlStart};
use crate::cache::items::ItemView;
use crate::cache::metadump::DumpCursor;
use crate::cnum::safe_strtoul;

/// The longest metadump line: `key=` and a 250-byte key URI-encoded
/// (750 bytes), then six numbers and their names.
pub const METADUMP_LINE_MAX: usize = 1024;

/// The class argument of `crawl` and `metadump`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    /// `all` or a list of class ids.
    Classes(ClassSet),
    /// `hash`: walk the hash table (metadump only).
    Hash,
}

/// `all`, `hash`, or class ids separated by commas (empty ones skipped,
/// as `strtok_r` skips them); an id that is not a number from 1 to 63 is
/// memcached's `BADCLASS`.
fn parse_classes(arg: &[u8]) -> Option<Which> {
    match arg {
        b"all" => return Some(Which::Classes(ClassSet::ALL)),
        b"hash" => return Some(Which::Hash),
        _ => {}
    }
    let mut set = ClassSet::default();
    for id in arg.split(|&b| b == b',').filter(|p| !p.is_empty()) {
        match safe_strtoul(id) {
            Some(id @ 1..=63) => set.insert(id as usize),
            _ => return None,
        }
    }
    Some(Which::Classes(set))
}

/// `lru_crawler <enable|disable|sleep N|tocrawl N|crawl C|metadump C>`.
pub fn process(ctx: &Ctx<'_>, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) -> Action {
    let crawler = ctx.cache.crawler();
    let n = t.ntokens();
    let reply: &[u8] = match (n, t.get(1)) {
        (4, b"crawl") => {
            if !crawler.enabled() {
                b"CLIENT_ERROR lru crawler disabled"
            } else {
                match parse_classes(t.get(2)) {
                    None => b"BADCLASS invalid class id",
                    // A crawl that walks the hash table is not built in
                    // memcached either.
                    Some(Which::Hash) if crawler.running() => {
                        b"BUSY currently processing crawler request"
                    }
                    Some(Which::Hash) => b"ERROR an unknown error happened",
                    Some(Which::Classes(set)) => match ctx.cache.crawl(set) {
                        CrawlStart::Ok => b"OK",
                        CrawlStart::Busy => b"BUSY currently processing crawler request",
                        CrawlStart::NotStarted => b"NOTSTARTED no items to crawl",
                    },
                }
            }
        }
        (4, b"metadump") => return metadump(ctx, sess, t.get(2), out),
        (4, b"tocrawl") => match safe_strtoul(t.get(2)) {
            Some(n) => {
                crawler.set_tocrawl(n);
                b"OK"
            }
            None => b"CLIENT_ERROR bad command line format",
        },
        (4, b"sleep") => match safe_strtoul(t.get(2)) {
            Some(us) if us > 1_000_000 => b"CLIENT_ERROR sleep must be one second or less",
            Some(us) => {
                crawler.set_sleep_us(us);
                b"OK"
            }
            None => b"CLIENT_ERROR bad command line format",
        },
        (3, b"enable") if crawler.enable() => b"OK",
        (3, b"enable") => b"ERROR failed to start lru crawler thread",
        (3, b"disable") => {
            crawler.disable();
            b"OK"
        }
        _ => b"ERROR",
    };
    out_string(sess, out, reply);
    Action::Continue
}

/// `lru_crawler metadump <classes|all|hash>`: the checks, then the cursor
/// the connection pulls the lines from.
fn metadump(ctx: &Ctx<'_>, sess: &mut Session, arg: &[u8], out: &mut Vec<u8>) -> Action {
    let reply: &[u8] = if !ctx.cache.crawler().enabled() {
        b"CLIENT_ERROR lru crawler disabled"
    } else if !ctx.settings.dump_enabled {
        b"ERROR metadump not allowed"
    } else if out.len() > sess.unsent {
        // Replies of earlier commands still wait to be written (memcached's
        // `resp_has_stack`): the dump's lines would have to queue behind
        // them.
        b"ERROR cannot pipeline other commands before metadump"
    } else {
        match parse_classes(arg) {
            None => b"BADCLASS invalid class id",
            Some(Which::Classes(set)) if set.is_empty() => b"NOTSTARTED no items to crawl",
            Some(Which::Classes(set)) => return Action::MetaDump(ctx.cache.metadump(set, true)),
            Some(Which::Hash) => return Action::MetaDump(ctx.cache.metadump(ClassSet::ALL, false)),
        }
    };
    out_string(sess, out, reply);
    Action::Continue
}

/// Append the next lines of a metadump to `out` while it stays within
/// `limit` bytes, and `END` once every item is listed. Returns true then.
/// `limit` leaves room for one [`METADUMP_LINE_MAX`] line at least.
pub fn metadump_batch(
    ctx: &Ctx<'_>,
    cur: &mut DumpCursor,
    limit: usize,
    out: &mut Vec<u8>,
) -> bool {
    let started = ctx.cache.clock().process_started();
    let line =
        |v: ItemView<'_>, class: usize, out: &mut Vec<u8>| metadump_line(started, v, class, out);
    let done = ctx.cache.metadump_batch(cur, limit, line, out);
    if done {
        out.extend_from_slice(b"END\r\n");
    }
    done
}

/// A whole metadump into one UDP datagram's reply (memcached's own
/// answer over UDP is nothing at all). A dump that would pass the
/// datagram's budget is replaced by an out-of-memory line, as a `stats`
/// reply is, and the rest of the datagram is not run.
pub fn metadump_datagram(
    ctx: &Ctx<'_>,
    sess: &mut Session,
    mut cur: DumpCursor,
    reply: &mut Vec<u8>,
) {
    let mark = reply.len();
    let limit = sess.reply_limit.saturating_sub(b"END\r\n".len());
    while !metadump_batch(ctx, &mut cur, limit, reply) {
        if limit.saturating_sub(reply.len()) < METADUMP_LINE_MAX {
            reply.truncate(mark);
            out_string(sess, reply, b"SERVER_ERROR out of memory writing metadump");
            sess.reply_spent = true;
            return;
        }
    }
}

/// One item's line (memcached's `crawler_metadump_eval`): times absolute,
/// `exp=-1` for an item that never expires, the key URI-encoded. `cls`
/// and `size` are this engine's, as in `me`: the item's slab class and
/// the bytes it takes here.
pub fn metadump_line(started: i64, v: ItemView<'_>, class: usize, out: &mut Vec<u8>) {
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(b"key=");
    uriencode(v.key(), out);
    out.extend_from_slice(b" exp=");
    let exp = match v.exptime() {
        0 => -1,
        rel => started + i64::from(rel),
    };
    out.extend_from_slice(n.format(exp).as_bytes());
    out.extend_from_slice(b" la=");
    out.extend_from_slice(n.format(started + i64::from(v.time())).as_bytes());
    out.extend_from_slice(b" cas=");
    out.extend_from_slice(n.format(v.cas()).as_bytes());
    out.extend_from_slice(if v.fetched() {
        b" fetch=yes cls="
    } else {
        b" fetch=no cls="
    });
    out.extend_from_slice(n.format(class).as_bytes());
    out.extend_from_slice(b" size=");
    out.extend_from_slice(n.format(v.size()).as_bytes());
    out.push(b'\n');
}

/// memcached's `uriencode`: letters, digits and `-._~` as they are, every
/// other byte as `%XX`.
fn uriencode(key: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in key {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

#[cfg(test)]
mod tests;
