//! Administrative ASCII commands: mirrors `process_stat`,
//! `process_slabs_command`, `process_slabs_automove_command` and
//! `process_memlimit_command` of memcached's `proto_text.c`,
//! `slabs_reassign` of `slabs.c` and `item_cachedump` of `items.c`.

use super::session::{out_string, set_noreply_maybe, Session};
use super::tokens::Tokens;
use crate::cache::mover::Reassign;
use crate::cnum::{safe_strtod, safe_strtol as strtol, safe_strtoul as strtoul};
use std::fmt::Write as _;

use super::ctx::{Ctx, Report};
use crate::cache::sizes::EnableResult;

/// `slabs reassign <src> <dst>` and `slabs automove <0|1|2|ratio N>`.
pub fn process_slabs(ctx: &Ctx<'_>, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let n = t.ntokens();
    if n == 5 && t.get(1) == b"reassign" {
        if !ctx.settings.slab_reassign {
            out_string(sess, out, b"CLIENT_ERROR slab reassignment disabled");
            return;
        }
        let (Some(src), Some(dst)) = (strtol(t.get(2)), strtol(t.get(3))) else {
            out_string(sess, out, b"CLIENT_ERROR bad command line format");
            return;
        };
        let reply: &[u8] = match ctx.cache.reassign(i64::from(src), i64::from(dst)) {
            Reassign::Ok => b"OK",
            Reassign::Running => b"BUSY currently processing reassign request",
            Reassign::BadClass => b"BADCLASS invalid src or dst class id",
            Reassign::NoSpare => b"NOSPARE source class has no spare pages",
            Reassign::Same => b"SAME src and dst class are identical",
        };
        out_string(sess, out, reply);
    } else if n >= 4 && t.get(1) == b"automove" {
        set_noreply_maybe(sess, t);
        let mover = ctx.cache.mover();
        if t.get(2) == b"ratio" {
            let ratio = std::str::from_utf8(t.get(3)).ok().and_then(safe_strtod);
            match ratio.filter(|_| n >= 5) {
                Some(r) => {
                    mover.set_ratio(r);
                    out_string(sess, out, b"OK");
                }
                None => out_string(sess, out, b"ERROR"),
            }
            return;
        }
        match strtoul(t.get(2)) {
            None => out_string(sess, out, b"CLIENT_ERROR bad command line format"),
            Some(level) if level <= 2 => {
                mover.set_automove(level as u8);
                out_string(sess, out, b"OK");
            }
            Some(_) => out_string(sess, out, b"ERROR"),
        }
    } else {
        out_string(sess, out, b"ERROR");
    }
}

/// `cache_memlimit <megabytes> [noreply]`: change `-m` at run time. A lower
/// limit is reached by evicting on later stores, as memcached frees pages
/// gradually.
pub fn process_memlimit(ctx: &Ctx<'_>, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) {
    set_noreply_maybe(sess, t);
    let reply: &[u8] = match strtoul(t.get(1)) {
        None => b"ERROR",
        Some(mb) if mb < 8 => b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m",
        Some(mb) if mb > 1_000_000_000 => {
            b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes"
        }
        Some(mb) => {
            ctx.cache.set_limit(mb as usize * 1024 * 1024);
            log::info!("maxbytes adjusted to {mb}m");
            b"OK"
        }
    };
    out_string(sess, out, reply);
}

/// `stats [group]` (memcached's `process_stat`).
pub fn process_stat(ctx: &Ctx<'_>, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let n = t.ntokens();
    if n == 2 {
        ctx.admin.report(Report::General, out);
        return;
    }
    match t.get(1) {
        b"reset" => {
            ctx.stats.reset();
            crate::logger::LOGGER.reset();
            ctx.cache.reset_stats();
            ctx.prefix.clear();
            out_string(sess, out, b"RESET");
        }
        b"settings" => ctx.admin.report(Report::Settings, out),
        b"detail" => match t.get(2) {
            b"on" | b"off" if n >= 4 => {
                ctx.prefix.set_enabled(t.get(2) == b"on");
                out_string(sess, out, b"OK");
            }
            b"dump" if n >= 4 => ctx.prefix.dump(out),
            _ => out_string(sess, out, b"CLIENT_ERROR usage: stats detail on|off|dump"),
        },
        b"cachedump" => {
            if !ctx.settings.dump_enabled {
                out_string(sess, out, b"CLIENT_ERROR stats cachedump not allowed");
            } else if n < 5 {
                out_string(sess, out, b"CLIENT_ERROR bad command line");
            } else {
                match (strtoul(t.get(2)), strtoul(t.get(3))) {
                    (Some(id), Some(limit)) if id as usize > crate::cache::slabs::MAX_CLASSES => {
                        let _ = limit;
                        out_string(sess, out, b"CLIENT_ERROR Illegal slab id");
                    }
                    (Some(id), Some(limit)) => {
                        let id = id as usize;
                        if id <= ctx.cache.classes().largest() {
                            // Over UDP, cut to what the datagram's budget
                            // has left.
                            let room = sess.reply_limit.saturating_sub(out.len());
                            let cap = CACHEDUMP_MAX.min(room);
                            cachedump(ctx, id, limit as usize, cap, out);
                        } else {
                            out.extend_from_slice(b"END\r\n");
                        }
                    }
                    _ => out_string(sess, out, b"CLIENT_ERROR bad command line format"),
                }
            }
        }
        b"items" => ctx.admin.report(Report::Items, out),
        b"sizes" => ctx.admin.report(Report::Sizes, out),
        // memcached ends these two with no `END`.
        b"sizes_enable" => match ctx.cache.sizes_enable() {
            EnableResult::Enabled => out.extend_from_slice(b"STAT sizes_status enabled\r\n"),
            EnableResult::NoCas => out.extend_from_slice(
                b"STAT sizes_status error\r\nSTAT sizes_error cas_support_disabled\r\n",
            ),
        },
        b"sizes_disable" => {
            ctx.cache.sizes.disable();
            out.extend_from_slice(b"STAT sizes_status disabled\r\n");
        }
        b"slabs" => ctx.admin.report(Report::Slabs, out),
        b"conns" => ctx.admin.report(Report::Conns, out),
        b"rmemcached" => ctx.admin.report(Report::Own, out),
        // memcached built with extstore, but running without it, prints an
        // empty block (whatever follows); there is no extstore here.
        b"extstore" => out.extend_from_slice(b"END\r\n"),
        _ => out_string(sess, out, b"ERROR"),
    }
}

/// The most bytes a `stats cachedump` reply takes (memcached's `memlimit`
/// in `item_cachedump`).
pub const CACHEDUMP_MAX: usize = 2 * 1024 * 1024;

/// `stats cachedump <class> <limit>` (memcached's `item_cachedump`):
/// `ITEM <key> [<bytes> b; <exptime> s]` per item, newest first, exptime
/// absolute or 0, then `END`. The reply appended to `out` stays under a
/// `cap` of 6 bytes or more ([`CACHEDUMP_MAX`] for a client): a line goes
/// in only if it leaves room for `END\r\n` and memcached's terminating
/// NUL, so the lines end where memcached's end.
pub fn cachedump(ctx: &Ctx<'_>, class: usize, limit: usize, cap: usize, out: &mut Vec<u8>) {
    let started = ctx.cache.clock().process_started();
    let room = cap.saturating_sub(b"END\r\n\0".len());
    let line = |v: crate::cache::items::ItemView<'_>, line: &mut Vec<u8>| {
        let abs = match v.exptime() {
            0 => 0,
            rel => started + i64::from(rel),
        };
        line.extend_from_slice(b"ITEM ");
        line.extend_from_slice(v.key());
        let _ = write!(Line(line), " [{} b; {abs} s]\r\n", v.data().len());
    };
    ctx.cache.dump(class, limit, room, line, out);
    out.extend_from_slice(b"END\r\n");
}

/// `fmt::Write` into a byte buffer.
struct Line<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Line<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Server;

    #[test]
    fn memlimit_replies() {
        let server = Server::new(crate::settings::Settings::default());
        let run = |line: &[u8]| {
            let mut sess = Session::default();
            let mut out = Vec::new();
            process_memlimit(&server.ctx(), &mut sess, &Tokens::new(line), &mut out);
            out
        };
        assert_eq!(run(b"cache_memlimit x"), b"ERROR\r\n");
        assert_eq!(
            run(b"cache_memlimit 7"),
            &b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"[..]
        );
        assert_eq!(
            run(b"cache_memlimit 1000000001"),
            &b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n"[..]
        );
        assert_eq!(run(b"cache_memlimit 100 noreply"), b"");
        assert_eq!(server.cache.limit(), 100 * 1024 * 1024);
        assert_eq!(run(b"cache_memlimit 8"), b"OK\r\n");
        assert_eq!(server.cache.limit(), 8 * 1024 * 1024);
    }
}
