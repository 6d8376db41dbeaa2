//! `-Y` authentication over the text protocol: memcached's
//! `try_read_command_asciiauth` and `process_command_ascii`'s auth check
//! in `proto_text.c`.
//!
//! Before a connection authenticates, the one command taken is
//! `set <key> <flags> <exptime> <bytes>` whose value is `<user> <password>`;
//! any other line gets `CLIENT_ERROR unauthenticated`.

use std::sync::atomic::Ordering;

use crate::auth::AuthFile;
use crate::cnum::safe_strtoul;

use super::action::{Action, Parsed};
use super::ctx::Ctx;
use super::session::{out_string, Session};
use super::text::MAX_LINE_NO_GET;
use super::tokens::Tokens;

/// Take the authentication command at the front of `buf`, if it is all
/// there, and answer it in `out`. A pass is [`Action::Authenticated`]; a
/// line or value too long to be credentials is [`Action::Close`].
pub fn process(
    ctx: &Ctx<'_>,
    auth: &AuthFile,
    sess: &mut Session,
    buf: &[u8],
    out: &mut Vec<u8>,
) -> Parsed {
    // memcached waits for two bytes at least, the shortest it answers.
    if buf.len() < 2 {
        return Parsed::NeedMore;
    }
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > MAX_LINE_NO_GET {
            return Parsed::Done(0, Action::Close);
        }
        return Parsed::NeedMore;
    };
    // The `\r` stays on the last token, as in memcached; the number parser
    // stops at it.
    let t = Tokens::new(&buf[..nl]);
    let size = if t.ntokens() >= 6 && t.get(0) == b"set" {
        safe_strtoul(t.get(4))
    } else {
        None
    };
    let (used, reply, passed): (usize, &[u8], Option<bool>) = match size {
        None => (nl + 1, b"CLIENT_ERROR unauthenticated", None),
        // Tokens of a few hundred bytes at most are expected; a longer
        // value would only be buffered for nothing.
        Some(n) if n as usize > MAX_LINE_NO_GET => return Parsed::Done(0, Action::Close),
        Some(n) => {
            let vlen = n as usize + 2;
            let Some(value) = buf.get(nl + 1..nl + 1 + vlen) else {
                return Parsed::NeedMore;
            };
            // Some(passed) when the tokens were checked at all.
            let (reply, passed): (&[u8], _) = if !value.ends_with(b"\r\n") {
                (b"CLIENT_ERROR bad command line termination", None)
            } else {
                let creds = Tokens::new(&value[..vlen - 2]);
                if creds.ntokens() < 3 {
                    (b"CLIENT_ERROR bad authentication token format", None)
                } else if auth.check(creds.get(0), creds.get(1)) {
                    (b"STORED", Some(true))
                } else {
                    (b"CLIENT_ERROR authentication failure", Some(false))
                }
            };
            (nl + 1 + vlen, reply, passed)
        }
    };
    if let Some(passed) = passed {
        ctx.stats.auth_cmds.fetch_add(1, Ordering::Relaxed);
        if !passed {
            ctx.stats.auth_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    if !sess.resp_start() {
        // No response object for the reply: memcached closes.
        return Parsed::Done(used, Action::Close);
    }
    out_string(sess, out, reply);
    let action = if passed == Some(true) {
        Action::Authenticated
    } else {
        Action::Continue
    };
    Parsed::Done(used, action)
}
