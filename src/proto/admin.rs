//! Administrative ASCII commands: mirrors `process_slabs_command` and
//! `process_slabs_automove_command` and `process_memlimit_command` of
//! memcached's `proto_text.c`, and `slabs_reassign` of `slabs.c`.

use super::number::{strtol, strtoul};
use super::text::{out_string, Session, Tokens};
use crate::Server;

/// `slabs reassign <src> <dst>` and `slabs automove <0|1|2|ratio N>`.
pub fn process_slabs(server: &Server, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) {
    let n = t.ntokens();
    if n == 5 && t.get(1) == b"reassign" {
        if !server.settings.slab_reassign {
            out_string(sess, out, b"CLIENT_ERROR slab reassignment disabled");
            return;
        }
        let (Some(src), Some(dst)) = (strtol(t.get(2)), strtol(t.get(3))) else {
            out_string(sess, out, b"CLIENT_ERROR bad command line format");
            return;
        };
        let largest = server.cache.classes().largest() as i32;
        let reply: &[u8] = if src == dst {
            b"SAME src and dst class are identical"
        } else if !(0..=largest).contains(&src) || !(0..=largest).contains(&dst) {
            b"BADCLASS invalid src or dst class id"
        } else {
            // Items are not kept in slab pages here, so no class ever has
            // a spare page to give away.
            b"NOSPARE source class has no spare pages"
        };
        out_string(sess, out, reply);
    } else if n >= 4 && t.get(1) == b"automove" {
        super::text::set_noreply_maybe(sess, t);
        if t.get(2) == b"ratio" {
            let ok = n >= 5
                && std::str::from_utf8(t.get(3)).is_ok_and(|s| s.trim().parse::<f64>().is_ok());
            out_string(sess, out, if ok { b"OK" } else { b"ERROR" });
            return;
        }
        match strtoul(t.get(2)) {
            None => out_string(sess, out, b"CLIENT_ERROR bad command line format"),
            Some(level) if level <= 2 => out_string(sess, out, b"OK"),
            Some(_) => out_string(sess, out, b"ERROR"),
        }
    } else {
        out_string(sess, out, b"ERROR");
    }
}

/// `cache_memlimit <megabytes> [noreply]`: change `-m` at run time. A lower
/// limit is reached by evicting on later stores, as memcached frees pages
/// gradually.
pub fn process_memlimit(server: &Server, sess: &mut Session, t: &Tokens<'_>, out: &mut Vec<u8>) {
    super::text::set_noreply_maybe(sess, t);
    let reply: &[u8] = match strtoul(t.get(1)) {
        None => b"ERROR",
        Some(mb) if mb < 8 => b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m",
        Some(mb) if mb > 1_000_000_000 => {
            b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes"
        }
        Some(mb) => {
            server.cache.set_limit(mb as usize * 1024 * 1024);
            log::info!("maxbytes adjusted to {mb}m");
            b"OK"
        }
    };
    out_string(sess, out, reply);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memlimit_replies() {
        let server = Server::new(crate::settings::Settings::default());
        let run = |line: &[u8]| {
            let mut sess = Session::default();
            let mut out = Vec::new();
            process_memlimit(&server, &mut sess, &Tokens::new(line), &mut out);
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
