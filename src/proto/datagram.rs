//! The commands of one UDP request datagram: memcached runs a datagram's
//! commands through the same `drive_machine` as a stream's, with the
//! datagram as the whole read buffer. Here they run in one call, and
//! nothing reads past the end of the datagram (see `udp` for the frame and
//! docs/ARCHITECTURE.md for why a datagram's replies form one message).

use crate::server::Stop;
use crate::settings::Protocol;

use super::action::{Action, Parsed};
use super::binary;
use super::complete::complete_nread;
use super::ctx::Ctx;
use super::session::{out_string, Session};
use super::text;

/// Run every command of one request datagram and collect all their replies
/// in `reply` (one message per datagram). Nothing reads past the end of the
/// datagram: a store whose value is cut short gets `CLIENT_ERROR bad data
/// chunk` at once, and a trailing line without `\n` is dropped. Returns
/// the stop a `shutdown` asked for, if one was accepted.
pub fn process(
    ctx: &Ctx<'_>,
    sess: &mut Session,
    payload: &[u8],
    reply: &mut Vec<u8>,
) -> Option<Stop> {
    let binary = match ctx.settings.binding_protocol {
        Protocol::Ascii => false,
        Protocol::Binary => true,
        Protocol::Auto => payload.first() == Some(&binary::REQ_MAGIC),
    };
    if binary {
        process_binary(ctx, sess, payload, reply);
        return None;
    }
    let mut pos = 0;
    while pos < payload.len() {
        let buf = &payload[pos..];
        let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
            log::debug!("UDP: {} bytes without a newline dropped", buf.len());
            break;
        };
        let mut end = nl;
        if end > 1 && buf[end - 1] == b'\r' {
            end -= 1;
        }
        pos += nl + 1;
        let action = text::process_command(ctx, sess, &buf[..end], reply);
        if sess.reply_spent {
            // The budget is spent: the reply ends with the error line.
            break;
        }
        match action {
            Action::Continue | Action::Authenticated => {}
            Action::Flush => sess.unsent = reply.len(),
            Action::GetMore(..) => {
                reply.truncate(sess.unsent);
                out_string(
                    sess,
                    reply,
                    b"SERVER_ERROR out of memory writing get response",
                );
            }
            Action::Nread(p) => {
                let rest = &payload[pos..];
                let vlen = p.vlen;
                if rest.len() < vlen {
                    complete_nread(ctx, sess, p, &rest[..0], reply);
                    break;
                }
                complete_nread(ctx, sess, p, &rest[..vlen], reply);
                pos += vlen;
            }
            Action::Swallow(n) => pos += n.min(payload.len() - pos),
            Action::Close => {
                reply.truncate(sess.unsent);
                break;
            }
            Action::MetaDump(cur) => {
                super::crawler::metadump_datagram(ctx, sess, cur, reply);
                if sess.reply_spent {
                    break;
                }
            }
            Action::Watch(_) => {
                // A datagram cannot become a stream of log lines (memcached
                // would take the worker's UDP socket off its event loop).
                out_string(sess, reply, b"SERVER_ERROR watch is not supported over UDP");
            }
            Action::Quit => break,
            Action::Shutdown(why) => return Some(why),
        }
    }
    None
}

/// The binary requests of one datagram (memcached decides the protocol
/// per datagram over UDP). A request cut short ends the datagram.
fn process_binary(ctx: &Ctx<'_>, sess: &mut Session, payload: &[u8], reply: &mut Vec<u8>) {
    let mut pos = 0;
    while pos < payload.len() {
        let Parsed::Done(n, action) = binary::process(ctx, sess, &payload[pos..], reply) else {
            log::debug!(
                "UDP: {} bytes of a partial binary request dropped",
                payload.len() - pos
            );
            return;
        };
        pos += n;
        if sess.reply_spent {
            return;
        }
        match action {
            Action::Nread(p) => {
                let vlen = p.vlen;
                let Some(data) = payload.get(pos..pos + vlen) else {
                    return;
                };
                complete_nread(ctx, sess, p, data, reply);
                pos += vlen;
            }
            Action::Swallow(n) => pos += n.min(payload.len() - pos),
            Action::Close | Action::Quit | Action::Shutdown(_) => return,
            Action::Continue
            | Action::Authenticated
            | Action::Flush
            | Action::GetMore(..)
            | Action::Watch(_)
            | Action::MetaDump(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server holding `small` ("hi") and `big` (1,000 bytes), whose
    /// datagrams may build `budget` bytes of reply.
    fn budget_server(budget: usize) -> crate::server::Server {
        let mut server = crate::server::Server::new(crate::settings::Settings::default());
        server.udp_reply_budget = budget;
        let set = crate::cache::StoreMode::Set;
        server.cache.store(set, b"small", 0, 0, b"hi", 0);
        server.cache.store(set, b"big", 0, 0, &[b'b'; 1000], 0);
        server
    }

    fn run(server: &crate::server::Server, payload: &[u8]) -> Vec<u8> {
        let mut sess = Session::default();
        sess.restart(server.udp_reply_budget);
        let mut reply = Vec::new();
        process(&server.ctx(), &mut sess, payload, &mut reply);
        reply
    }

    /// Every command of a datagram shares one budget: the get that would
    /// pass it gives up its values for the error line, and the rest of
    /// the datagram is not run; earlier commands keep their replies.
    #[test]
    fn a_spent_budget_ends_a_text_datagram() {
        let server = budget_server(2500);
        let reply = run(&server, b"get small\r\nget big big big\r\nget small\r\n");
        assert_eq!(
            reply,
            b"VALUE small 0 2\r\nhi\r\nEND\r\nSERVER_ERROR out of memory writing get response\r\n"
        );
        // The same gets, spread over commands, share the one budget too.
        let reply = run(&server, b"get big\r\nget big\r\nget big\r\nget small\r\n");
        assert!(reply.ends_with(b"END\r\nSERVER_ERROR out of memory writing get response\r\n"));
        assert_eq!(reply.len(), 2 * (18 + 1002 + 5) + 49);
    }

    #[test]
    fn a_spent_budget_ends_a_meta_datagram() {
        let server = budget_server(2500);
        let reply = run(&server, b"mg big v\r\nmg big v\r\nmn\r\n");
        let mut want = b"VA 1000\r\n".to_vec();
        want.extend_from_slice(&[b'b'; 1000]);
        want.extend_from_slice(b"\r\nSERVER_ERROR out of memory writing get response\r\n");
        assert_eq!(reply, want);
    }

    #[test]
    fn a_spent_budget_ends_a_binary_datagram() {
        let server = budget_server(1500);
        let get = |opaque: u8| {
            let mut b = vec![0x80, 0x00, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, opaque];
            b.extend_from_slice(&[0; 8]);
            b.extend_from_slice(b"big");
            b
        };
        let mut payload = [get(1), get(2)].concat();
        // NOOP: never answered, the budget being spent before it.
        payload.extend_from_slice(&[0x80, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
        payload.extend_from_slice(&[0; 8]);
        let reply = run(&server, &payload);
        assert_eq!(reply.len(), (24 + 4 + 1000) + (24 + 13));
        let (first, second) = reply.split_at(1028);
        assert_eq!(
            (first[0], first[1], first[7], first[15]),
            (0x81, 0x00, 0x00, 1)
        );
        assert_eq!((second[6], second[7], second[15]), (0x00, 0x82, 2));
        assert_eq!(&second[24..], b"Out of memory");
    }
}
