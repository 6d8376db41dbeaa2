//! Retrieval commands, `get`, `gets`, `gat`, `gats`: mirrors memcached's
//! `process_get_command` in `proto_text.c`.
//!
//! memcached answers a multi-get with iovecs that point into the items, so
//! a reply costs little memory however large. Here replies are copied into
//! the connection's buffer, so a multi-get is served in slices instead: once
//! the queued reply passes the session's budget, serving pauses, the
//! connection writes what it has, and the rest of the keys are served after.
//! One client asking for the same 1 MB item a million times in one line
//! therefore never holds more than about a budget of reply in memory.

use std::sync::atomic::Ordering;

use super::action::{Action, GetCmd};
use super::ctx::Ctx;
use super::session::{out_string, Session};
use super::tokens::Tokens;
use crate::cache::items::{ItemView, KEY_MAX_LENGTH};
use crate::cnum::safe_strtol as strtol;

/// How far [`serve_keys`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Every key answered and `END` written.
    Done,
    /// A key was too long, or the `read_buf_mem_limit` pool ran out: the
    /// error line is written instead.
    Failed,
    /// The pool ran out and had nothing left even for the error line:
    /// close the connection (memcached's "severe out of memory").
    Close,
    /// The reply budget is spent: this many bytes of the key list were
    /// served; serve the rest after writing.
    Paused(usize),
}

/// Offset in `line` after its first `n` space-separated tokens.
fn skip_tokens(line: &[u8], n: usize) -> usize {
    let mut pos = 0;
    for _ in 0..n {
        while pos < line.len() && line[pos] == b' ' {
            pos += 1;
        }
        while pos < line.len() && line[pos] != b' ' {
            pos += 1;
        }
    }
    pos
}

/// Start a retrieval command. `line` is the whole command line; `t` its
/// tokens.
pub fn process_get(
    ctx: &Ctx<'_>,
    sess: &mut Session,
    line: &[u8],
    t: &Tokens<'_>,
    cas: bool,
    touch: bool,
    out: &mut Vec<u8>,
) -> Action {
    let mut cmd = GetCmd { cas, touch: None };
    let mut first_key = 1;
    if touch {
        let Some(e) = strtol(t.get(1)) else {
            out_string(sess, out, b"CLIENT_ERROR invalid exptime argument");
            return Action::Continue;
        };
        cmd.touch = Some(ctx.cache.clock().realtime(e));
        first_key = 2;
    }
    let start = skip_tokens(line, first_key);
    match serve_keys(ctx, sess, cmd, &line[start..], out) {
        Progress::Done => Action::Flush,
        Progress::Failed => Action::Continue,
        Progress::Close => Action::Close,
        Progress::Paused(n) => Action::GetMore(cmd, start + n),
    }
}

/// Answer the space-separated keys in `keys` until done or until `out`
/// has grown by more than `sess.get_budget`.
pub fn serve_keys(
    ctx: &Ctx<'_>,
    sess: &mut Session,
    cmd: GetCmd,
    keys: &[u8],
    out: &mut Vec<u8>,
) -> Progress {
    let mark = out.len();
    let limit = mark.saturating_add(sess.get_budget);
    let s = &ctx.stats;
    let mut pos = 0;
    let mut later = false;
    loop {
        while pos < keys.len() && keys[pos] == b' ' {
            pos += 1;
        }
        if pos == keys.len() {
            break;
        }
        if out.len() > limit {
            return Progress::Paused(pos);
        }
        let end = keys[pos..]
            .iter()
            .position(|&b| b == b' ')
            .map_or(keys.len(), |e| pos + e);
        let key = &keys[pos..end];
        pos = end;
        // Each key after the first needs a response object of its own
        // (the first uses the command's); see `conn_mem`.
        if std::mem::replace(&mut later, true) && !sess.resp_start() {
            // memcached drops every reply not yet sent and reports the
            // failure on a fresh response object.
            out.truncate(sess.unsent);
            sess.release_resps();
            if !sess.resp_start() {
                return Progress::Close;
            }
            out_string(
                sess,
                out,
                b"SERVER_ERROR out of memory writing get response",
            );
            return Progress::Failed;
        }
        if key.len() > KEY_MAX_LENGTH {
            // memcached releases every reply not yet sent, this command's
            // and earlier ones', then reports the error.
            out.truncate(sess.unsent);
            out_string(sess, out, b"CLIENT_ERROR bad command line format");
            return Progress::Failed;
        }
        let hit = ctx.cache.get_with(key, cmd.touch, |it| {
            // The budget is checked before the value is copied.
            if !sess.room(out.len(), value_reply_len(it)) {
                return false;
            }
            write_value(out, it, cmd.cas);
            true
        });
        if hit == Some(false) {
            // No memory for this reply: the command's replies so far are
            // dropped, as memcached drops them when it runs out of
            // response objects, and over UDP the datagram ends here.
            out.truncate(mark);
            out_string(
                sess,
                out,
                b"SERVER_ERROR out of memory writing get response",
            );
            sess.reply_spent = true;
            return Progress::Failed;
        }
        ctx.prefix.record_get(key, hit.is_some());
        let (count, hits, misses) = if cmd.touch.is_some() {
            (&s.cmd_touch, &s.touch_hits, &s.touch_misses)
        } else {
            (&s.cmd_get, &s.get_hits, &s.get_misses)
        };
        count.fetch_add(1, Ordering::Relaxed);
        match hit {
            Some(_) => hits.fetch_add(1, Ordering::Relaxed),
            None => misses.fetch_add(1, Ordering::Relaxed),
        };
    }
    out.extend_from_slice(b"END\r\n");
    Progress::Done
}

/// The most bytes [`write_value`] writes for `it`: the value, the key and
/// room for the numbers of the `VALUE` line.
pub fn value_reply_len(it: ItemView<'_>) -> usize {
    it.key().len() + it.data().len() + 64
}

/// `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n`.
pub fn write_value(out: &mut Vec<u8>, it: ItemView<'_>, cas: bool) {
    let data = it.data();
    let key = it.key();
    let mut num = itoa::Buffer::new();
    out.reserve(key.len() + data.len() + 48);
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.push(b' ');
    out.extend_from_slice(num.format(it.flags()).as_bytes());
    out.push(b' ');
    out.extend_from_slice(num.format(data.len()).as_bytes());
    if cas {
        out.push(b' ');
        out.extend_from_slice(num.format(it.cas()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Server;

    #[test]
    fn skips_tokens_like_the_tokenizer() {
        assert_eq!(&b"get a b"[skip_tokens(b"get a b", 1)..], b" a b");
        assert_eq!(&b"gat 10  a"[skip_tokens(b"gat 10  a", 2)..], b"  a");
        assert_eq!(skip_tokens(b"get", 1), 3);
    }

    /// Under `read_buf_mem_limit`, a multi-get that runs the pool out gets
    /// memcached's error line; when even that line has no response object
    /// (the pool is all read buffers), the connection must close.
    #[test]
    fn spent_pool_fails_the_get_or_closes() {
        let server = Server::new(crate::settings::Settings::default());
        let cmd = GetCmd {
            cas: false,
            touch: None,
        };
        // One 16 KiB chunk: 13 response objects, or one read buffer.
        let pool = std::sync::Arc::new(crate::conn_mem::ThreadMem::new(16 * 1024, 1));
        let replies = std::sync::Arc::new(crate::mem_budget::Pool::new(1 << 30));
        let memory = crate::conn::mem::StreamMemory::new(replies, Some(pool.clone()));
        let mut sess = Session::default();
        sess.lend(Box::new(memory), crate::mem_budget::STREAM_FREE, true);
        let mut out = Vec::new();
        let keys = b"a ".repeat(20);
        assert_eq!(
            serve_keys(&server.ctx(), &mut sess, cmd, &keys, &mut out),
            Progress::Failed
        );
        assert_eq!(out, b"SERVER_ERROR out of memory writing get response\r\n");
        sess.release_resps();
        assert_eq!(pool.held(), (0, 0));

        assert!(pool.take_rbuf());
        out.clear();
        assert_eq!(
            serve_keys(&server.ctx(), &mut sess, cmd, b"a b", &mut out),
            Progress::Close
        );
        assert_eq!(pool.held(), (1, 0));
    }

    #[test]
    fn large_multi_get_pauses_and_resumes_to_the_same_reply() {
        let server = Server::new(crate::settings::Settings::default());
        let value = vec![b'x'; 100_000];
        server
            .cache
            .store(crate::cache::StoreMode::Set, b"big", 0, 0, &value, 0);
        let keys = b"big ".repeat(50);
        let cmd = GetCmd {
            cas: false,
            touch: None,
        };

        let mut whole = Vec::new();
        let mut sess = Session::default();
        sess.get_budget = usize::MAX;
        assert_eq!(
            serve_keys(&server.ctx(), &mut sess, cmd, &keys, &mut whole),
            Progress::Done
        );

        let mut sliced = Vec::new();
        let mut sess = Session::default();
        sess.get_budget = 250_000;
        let mut pos = 0;
        let mut pauses = 0;
        loop {
            let before = sliced.len();
            match serve_keys(&server.ctx(), &mut sess, cmd, &keys[pos..], &mut sliced) {
                Progress::Paused(n) => {
                    assert!(sliced.len() - before <= 250_000 + 100_100);
                    pos += n;
                    pauses += 1;
                }
                Progress::Done => break,
                Progress::Failed | Progress::Close => panic!("no long key or pool here"),
            }
        }
        assert!(pauses >= 10);
        assert_eq!(sliced, whole);
    }
}
