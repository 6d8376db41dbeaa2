//! Differential test of the ASCII and meta protocols: the same request
//! streams ([`cases`]) go to the real memcached 1.6.18
//! (`/usr/bin/memcached`) and to rmemcached, over TCP and over UDP, and
//! the replies must be byte-equal. The lockstep runner, the UDP framing
//! checks and the report are `common::lockstep`'s; this file says how a
//! text reply is read and how its CAS values are normalised.
//!
//! How a reply is known to be complete: after the step's bytes a sentinel
//! `version\r\n` is sent and the reply is read until it ends with the
//! server's `VERSION ...\r\n` line, which is then stripped. Steps that must
//! close the connection are read to EOF instead. Over UDP the sentinel is a
//! separate datagram with its own request id (both servers run with `-t 1`
//! so that datagrams are handled in order).
//!
//! CAS uniques differ between servers, so every `VALUE k f n CAS` line has
//! its CAS replaced by `C<i>`, `i` numbering the distinct CAS values of the
//! case in order of first appearance (equal/unequal CAS stay visible); the
//! same goes for the `c<cas>` flag of meta replies (and `cas=` of `me`,
//! whose `cls=` and `size=` describe memcached's slabs and are masked). A
//! request may say `{CAS}` (the last CAS this server returned in this case)
//! or `{CAS+1}` (a wrong one).
//!
//! UDP notes (deliberate differences, see `src/udp.rs`):
//! * memcached 1.6 sends every key of a multi-get, and every command of a
//!   datagram, as its own UDP message (each numbered from sequence 0);
//!   rmemcached sends one message per request datagram. The payloads of all
//!   messages answering one datagram are concatenated in arrival order
//!   before comparing, and rmemcached's single-message rule is checked.
//! * memcached drops multi-packet requests and, on a `set` whose value is
//!   cut short by the end of the datagram, waits for the next datagram:
//!   such cases (and anything needing several writes or more than one
//!   datagram) are TCP only.
//! * `quit` is TCP only: memcached leaves `close_after_write` set on its
//!   shared UDP connection, which then cuts every later datagram short
//!   after its first get.
//!
//! Every difference is printed (case, request, both replies, escaped) and
//! the test fails at the end if there was any. `DIFF_VERBOSE=1` also prints
//! every step with memcached's reply.

#[path = "../common/mod.rs"]
mod common;

mod cases;

use common::lockstep::{self, CasScope, Protocol, ReadEnd, Side, Step, UdpReply};
use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

/// The ASCII and meta protocols, with each server's reply to the
/// sentinel `version\r\n` (memcached's and rmemcached's differ).
struct Text {
    sentinel: [Vec<u8>; 2],
}

impl Text {
    /// The sentinel replies read over TCP.
    fn over_tcp(mc: &common::Server, rm: &common::Server) -> Text {
        let version = |server: &common::Server| {
            let mut s = server.tcp();
            let v = common::request(&mut s, b"version\r\n", b"\r\n");
            assert!(v.starts_with(b"VERSION "), "bad version reply");
            v
        };
        Text {
            sentinel: [version(mc), version(rm)],
        }
    }

    /// The sentinel replies read over UDP.
    fn over_udp(mc: &common::Server, rm: &common::Server) -> Text {
        let version = |server: &common::Server| {
            assert!(server.udp_port != 0, "server has no UDP port");
            let v = common::udp_request(&server.udp(), 1, b"version\r\n");
            assert!(v.starts_with(b"VERSION "), "bad UDP version reply");
            v
        };
        Text {
            sentinel: [version(mc), version(rm)],
        }
    }
}

impl Protocol for Text {
    type Reply = Vec<u8>;
    type Cas = CasState;
    const VERBOSE_VAR: &'static str = "DIFF_VERBOSE";
    const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

    fn fill_cas(&self, req: &[u8], cas: &CasState) -> Vec<u8> {
        substitute_cas(req, cas)
    }

    fn normalise(&self, reply: &Vec<u8>, cas: &mut CasState, _: &lockstep::Case) -> Vec<u8> {
        normalise(reply, cas)
    }

    fn tcp_step(
        &self,
        side: Side,
        conn: &mut Option<TcpStream>,
        step: &Step,
        req: &[u8],
    ) -> Vec<u8> {
        let Some(s) = conn.as_mut() else {
            return b"<connection already closed>".to_vec();
        };
        match step {
            Step::Write(_) => {
                if let Err(e) = s.write_all(req) {
                    *conn = None;
                    return format!("<write error: {e}>").into_bytes();
                }
                Vec::new()
            }
            Step::Send(_) => {
                let mut bytes = req.to_vec();
                bytes.extend_from_slice(b"version\r\n");
                if let Err(e) = s.write_all(&bytes) {
                    *conn = None;
                    return format!("<write error: {e}>").into_bytes();
                }
                let want = version_commands(req) + 1;
                let sentinel = &self.sentinel[side as usize];
                let (mut out, end) = lockstep::read_stream(s, |b| {
                    b.ends_with(sentinel) && count(b, sentinel) >= want
                });
                match end {
                    ReadEnd::Done => out.truncate(out.len() - sentinel.len()),
                    ReadEnd::Closed | ReadEnd::Failed(_) => {
                        if let ReadEnd::Failed(e) = end {
                            out.extend_from_slice(format!("<read error: {e}>").as_bytes());
                        }
                        out.extend_from_slice(b"<closed>");
                        *conn = None;
                    }
                    ReadEnd::Timeout => out.extend_from_slice(b"<timeout: no sentinel reply>"),
                }
                out
            }
            Step::Close(_) => {
                // The server may close before reading everything: a failed
                // write is not a difference in itself.
                let _ = s.write_all(req);
                let (mut out, end) = lockstep::read_stream(s, |_| false);
                match end {
                    ReadEnd::Closed | ReadEnd::Failed(_) => {
                        if let ReadEnd::Failed(e) = end {
                            out.extend_from_slice(format!("<read error: {e}>").as_bytes());
                        }
                        out.extend_from_slice(b"<closed>");
                    }
                    _ => out.extend_from_slice(b"<timeout: connection still open>"),
                }
                *conn = None;
                out
            }
            _ => unreachable!("{step:?} is not a text protocol step"),
        }
    }

    fn udp_sentinel(&self) -> Vec<u8> {
        b"version\r\n".to_vec()
    }

    fn udp_reply(&self, side: Side, got: UdpReply, problems: &mut Vec<String>) -> Vec<u8> {
        let mut out = got.payload;
        match got.sentinel {
            None => out.extend_from_slice(b"<timeout: no sentinel reply>"),
            Some(p) if p != self.sentinel[side as usize] => {
                out.extend_from_slice(b"<sentinel reply: ");
                out.extend_from_slice(&p);
                out.push(b'>');
            }
            Some(_) => {}
        }
        if side == Side::Rmemcached && got.messages > 1 {
            problems.push(format!(
                "{} messages for one request datagram",
                got.messages
            ));
        }
        out
    }

    fn show_request(&self, req: &[u8]) -> String {
        escape(req)
    }

    fn show_reply(&self, _raw: &Vec<u8>, normalised: &Vec<u8>) -> String {
        escape(normalised)
    }
}

/// Lines of `req` that are a `version` command (each adds a VERSION line
/// to the reply, like the sentinel).
fn version_commands(req: &[u8]) -> usize {
    req.split(|&b| b == b'\n')
        .filter(|l| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            l.split(|&b| b == b' ').find(|t| !t.is_empty()) == Some(b"version")
        })
        .count()
}

#[test]
fn tcp_replies_match_memcached() {
    let (mc, rm) = lockstep::start_pair(&[]);
    let text = Text::over_tcp(&mc, &rm);
    lockstep::run_tcp(&text, &cases::corpus(), &mc, &rm).assert_clean();
}

#[test]
fn udp_replies_match_memcached() {
    // One worker thread each, so that datagrams are answered in order.
    let (mc, rm) = lockstep::start_pair(&["-t", "1"]);
    let text = Text::over_udp(&mc, &rm);
    lockstep::run_udp(&text, &cases::corpus(), &mc, &rm, CasScope::PerCase).assert_clean();
}

// ---------------------------------------------------------------------------
// Reply normalisation.

/// Per-server state of one case: the CAS values seen.
#[derive(Default)]
struct CasState {
    ids: HashMap<u64, usize>,
    last: Option<u64>,
}

/// Replace `{CAS}` / `{CAS+1}` in a request with this server's last CAS.
fn substitute_cas(req: &[u8], st: &CasState) -> Vec<u8> {
    let mut out = Vec::with_capacity(req.len());
    let mut i = 0;
    while i < req.len() {
        if req[i..].starts_with(b"{CAS}") {
            let v = st.last.map_or("NO_CAS_SEEN".to_string(), |c| c.to_string());
            out.extend_from_slice(v.as_bytes());
            i += 5;
        } else if req[i..].starts_with(b"{CAS+1}") {
            let v = st
                .last
                .map_or("NO_CAS_SEEN".to_string(), |c| (c + 1).to_string());
            out.extend_from_slice(v.as_bytes());
            i += 7;
        } else {
            out.push(req[i]);
            i += 1;
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// The two-letter codes of meta replies.
const META_CODES: &[&[u8]] = &[b"HD", b"VA", b"EN", b"NF", b"NS", b"EX", b"MN", b"ME"];

/// Replace the CAS of every `VALUE` line by `C<i>` (see the module doc),
/// remembering the raw value for `{CAS}`.
fn normalise(reply: &[u8], st: &mut CasState) -> Vec<u8> {
    let mut out = Vec::with_capacity(reply.len());
    let mut pos = 0;
    while pos < reply.len() {
        let rest = &reply[pos..];
        let Some(eol) = find(rest, b"\r\n") else {
            out.extend_from_slice(rest);
            break;
        };
        let line = &rest[..eol];
        pos += eol + 2;
        let toks: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let nbytes = toks
            .get(3)
            .and_then(|t| std::str::from_utf8(t).ok())
            .and_then(|t| t.parse::<usize>().ok());
        if let Some(code) = toks.first().filter(|t| META_CODES.contains(t)) {
            // Meta reply: its `c<cas>` flag (or `cas=` for `me`) is a CAS;
            // `VA <n>` is followed by n bytes of value; `me`'s `cls=` and
            // `size=` describe memcached's slabs, not the item.
            for (i, t) in toks.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                let cas = t
                    .strip_prefix(b"cas=")
                    .map(|c| (&b"cas="[..], c))
                    .or_else(|| t.strip_prefix(b"c").map(|c| (&b"c"[..], c)))
                    .filter(|_| i > 0)
                    .and_then(|(p, c)| {
                        Some((p, std::str::from_utf8(c).ok()?.parse::<u64>().ok()?))
                    });
                if let Some((prefix, cas)) = cas {
                    let next = st.ids.len();
                    let id = *st.ids.entry(cas).or_insert(next);
                    st.last = Some(cas);
                    out.extend_from_slice(prefix);
                    out.extend_from_slice(format!("C{id}").as_bytes());
                } else if *code == b"ME" && (t.starts_with(b"cls=") || t.starts_with(b"size=")) {
                    out.extend_from_slice(&t[..t.iter().position(|&b| b == b'=').unwrap() + 1]);
                    out.push(b'*');
                } else {
                    out.extend_from_slice(t);
                }
            }
            out.extend_from_slice(b"\r\n");
            let va = std::str::from_utf8(toks.get(1).copied().unwrap_or_default())
                .ok()
                .and_then(|t| t.parse::<usize>().ok());
            if let (b"VA", Some(n)) = (*code, va) {
                let end = (pos + n + 2).min(reply.len());
                out.extend_from_slice(&reply[pos..end]);
                pos = end;
            }
            continue;
        }
        match (toks.first(), nbytes) {
            (Some(&b"VALUE"), Some(n)) if toks.len() == 4 || toks.len() == 5 => {
                if toks.len() == 5 {
                    out.extend_from_slice(&line[..line.len() - toks[4].len()]);
                    match std::str::from_utf8(toks[4])
                        .ok()
                        .and_then(|t| t.parse::<u64>().ok())
                    {
                        Some(cas) => {
                            let next = st.ids.len();
                            let id = *st.ids.entry(cas).or_insert(next);
                            st.last = Some(cas);
                            out.extend_from_slice(format!("C{id}").as_bytes());
                        }
                        None => out.extend_from_slice(toks[4]),
                    }
                } else {
                    out.extend_from_slice(line);
                }
                out.extend_from_slice(b"\r\n");
                let end = (pos + n + 2).min(reply.len());
                out.extend_from_slice(&reply[pos..end]);
                pos = end;
            }
            _ => {
                out.extend_from_slice(line);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out
}

/// Printable form of bytes, cut in the middle when long.
fn escape(b: &[u8]) -> String {
    const MAX: usize = 600;
    let show = |s: &[u8]| -> String {
        let mut o = String::new();
        for &c in s {
            match c {
                b'\r' => o.push_str("\\r"),
                b'\n' => o.push_str("\\n"),
                b'\t' => o.push_str("\\t"),
                b'\\' => o.push_str("\\\\"),
                0x20..=0x7e => o.push(c as char),
                _ => o.push_str(&format!("\\x{c:02x}")),
            }
        }
        o
    };
    if b.len() <= MAX {
        format!("\"{}\"", show(b))
    } else {
        format!(
            "\"{}\" ...({} bytes)... \"{}\"",
            show(&b[..MAX / 2]),
            b.len(),
            show(&b[b.len() - MAX / 2..])
        )
    }
}
