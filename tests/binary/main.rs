//! Differential test of the binary protocol: the same request streams
//! ([`cases`]) go to the real memcached 1.6.18 (`/usr/bin/memcached`) and
//! to rmemcached, and the replies must be byte-equal. The lockstep runner,
//! the UDP framing checks and the report are `common::lockstep`'s; the
//! requests are built by hand in [`packet`], so that malformed ones can be
//! sent too; this file says how a reply is read and normalised.
//!
//! Each case runs on a fresh connection to each server, step by step in
//! lock step. A step's reply is read until one of:
//! * a NOOP request appended to the step (opaque [`SENTINEL_OPAQUE`]) is
//!   answered (the NOOP reply itself is dropped from the comparison);
//! * a given number of reply packets has arrived;
//! * the server closes the connection (steps where memcached closes).
//!
//! CAS values differ between servers: every reply's CAS field is replaced
//! by a number, 0 for 0 and otherwise the position of that CAS among the
//! distinct non-zero CAS values of the case on that server (1, 2, ... in
//! order of first appearance). So CAS fields must be non-zero exactly where
//! memcached's are, and equal exactly where memcached's are equal. A request
//! can carry `cas_ref(i)`, replaced on each server by that server's i-th
//! CAS of the case.
//!
//! For `STAT` replies whose values vary between processes (pid, uptime,
//! memory), only the names (the packets' keys), statuses and order are
//! compared, plus the values of counters both servers must agree on.
//!
//! Over UDP each request datagram starts with the 8-byte frame header; the
//! payloads of the reply datagrams (after their frame headers) are compared
//! the same way. Both servers run with `-t 1` there so that datagrams are
//! answered in order.
//!
//! Every difference is printed (case, step, request bytes, both replies as
//! packets and as raw hex) and the test fails at the end if there was any.
//! `BIN_VERBOSE=1` prints every step.

#[path = "../common/mod.rs"]
mod common;

mod cases;
mod packet;

use common::lockstep::{self, CasScope, Protocol, ReadEnd, Side, Step, UdpReply};
use packet::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The binary protocol.
struct Binary;

impl Protocol for Binary {
    type Reply = Outcome;
    type Cas = CasState;
    const VERBOSE_VAR: &'static str = "BIN_VERBOSE";
    const REPLY_TIMEOUT: Duration = Duration::from_millis(1500);

    fn fill_cas(&self, req: &[u8], cas: &CasState) -> Vec<u8> {
        cas.substitute(req)
    }

    fn normalise(&self, reply: &Outcome, cas: &mut CasState, case: &lockstep::Case) -> Outcome {
        normalise(reply, cas, case.stat_names)
    }

    fn settings_match(&self, theirs: &Outcome, ours: &Outcome) -> bool {
        settings_match(theirs, ours)
    }

    fn tcp_step(&self, _: Side, conn: &mut Option<TcpStream>, step: &Step, req: &[u8]) -> Outcome {
        let none = |end| Outcome {
            packets: Vec::new(),
            rest: Vec::new(),
            end,
        };
        let Some(s) = conn.as_mut() else {
            return none(End::NoConnection);
        };
        let (bytes, until) = match step {
            Step::Send(_) | Step::Settings(_) => (cat([req.to_vec(), sentinel()]), Until::Sentinel),
            Step::Count(_, n) => (req.to_vec(), Until::Count(*n)),
            Step::Close(_) => (req.to_vec(), Until::Eof),
            Step::Write(_) => {
                if s.write_all(req).is_err() {
                    *conn = None;
                    return none(End::WriteFailed);
                }
                return none(End::Count);
            }
            Step::Sleep(_) | Step::Reconnect => unreachable!(),
        };
        // A server may close before reading everything: reading tells.
        let wrote = s.write_all(&bytes).is_ok();
        let mut out = read_packets(s, until);
        if !wrote && out.end != End::Closed {
            out.end = End::WriteFailed;
        }
        if matches!(out.end, End::Closed | End::WriteFailed) || matches!(step, Step::Close(_)) {
            *conn = None;
        }
        out
    }

    fn udp_sentinel(&self) -> Vec<u8> {
        sentinel()
    }

    fn udp_reply(&self, _: Side, got: UdpReply, problems: &mut Vec<String>) -> Outcome {
        let end = match got.sentinel {
            None => End::Timeout,
            Some(mut p) => {
                let whole = p.clone();
                let s = split_packets(&mut p);
                if s.len() != 1 || !p.is_empty() || !is_sentinel_reply(&s[0]) {
                    problems.push(format!("sentinel answered with {}", hex(&whole)));
                }
                End::Sentinel
            }
        };
        let mut bytes = got.payload;
        let packets = split_packets(&mut bytes);
        Outcome {
            packets,
            rest: bytes,
            end,
        }
    }

    fn show_request(&self, req: &[u8]) -> String {
        hex(req)
    }

    fn show_reply(&self, raw: &Outcome, normalised: &Outcome) -> String {
        format!(
            "{}\n    raw: {}",
            describe_outcome(normalised),
            raw_hex(raw)
        )
    }
}

// ---------------------------------------------------------------------------
// Reading replies.
/// A server's CAS values in one case, in order of first appearance.
#[derive(Default)]
struct CasState {
    seen: Vec<u64>,
}

impl CasState {
    /// 0 for 0, else the 1-based position of `cas`.
    fn index(&mut self, cas: u64) -> u64 {
        if cas == 0 {
            return 0;
        }
        let i = match self.seen.iter().position(|&c| c == cas) {
            Some(i) => i,
            None => {
                self.seen.push(cas);
                self.seen.len() - 1
            }
        };
        i as u64 + 1
    }

    /// Replace every `cas_ref(i)` in `req` by this server's i-th CAS.
    fn substitute(&self, req: &[u8]) -> Vec<u8> {
        let mut out = req.to_vec();
        let mut i = 0;
        while i + 8 <= out.len() {
            if out[i..i + 7] == CAS_REF_PREFIX {
                let n = out[i + 7] as usize;
                if let Some(&c) = n.checked_sub(1).and_then(|n| self.seen.get(n)) {
                    out[i..i + 8].copy_from_slice(&c.to_be_bytes());
                    i += 8;
                    continue;
                }
            }
            i += 1;
        }
        out
    }
}

/// How a step's reading ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// The appended NOOP was answered.
    Sentinel,
    /// The expected number of packets arrived.
    Count,
    /// EOF or reset.
    Closed,
    /// Nothing more within the timeout.
    Timeout,
    /// The connection was already gone before the step.
    NoConnection,
    /// Writing the request failed.
    WriteFailed,
}

/// What to read for a step.
#[derive(Debug, Clone, Copy)]
enum Until {
    Sentinel,
    Count(usize),
    Eof,
}

/// The reply of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    /// Whole packets, in order (raw or normalised).
    packets: Vec<Vec<u8>>,
    /// Bytes after the last whole packet.
    rest: Vec<u8>,
    end: End,
}

/// Read reply packets from a stream (with a read timeout set).
fn read_packets<S: Read>(s: &mut S, until: Until) -> Outcome {
    let whole = |buf: &[u8]| split_packets(&mut buf.to_vec());
    let (mut buf, end) = lockstep::read_stream(s, |buf| match until {
        Until::Sentinel => whole(buf).iter().any(|p| is_sentinel_reply(p)),
        Until::Count(n) => whole(buf).len() >= n,
        Until::Eof => false,
    });
    let mut packets = split_packets(&mut buf);
    let end = match end {
        ReadEnd::Done => match until {
            Until::Sentinel => {
                let i = packets.iter().position(|p| is_sentinel_reply(p)).unwrap();
                // Anything after the sentinel reply is kept visible.
                let after: Vec<Vec<u8>> = packets.drain(i..).skip(1).collect();
                let mut rest = after.concat();
                rest.extend_from_slice(&buf);
                return Outcome {
                    packets,
                    rest,
                    end: End::Sentinel,
                };
            }
            _ => End::Count,
        },
        ReadEnd::Timeout => End::Timeout,
        ReadEnd::Closed | ReadEnd::Failed(_) => End::Closed,
    };
    Outcome {
        packets,
        rest: buf,
        end,
    }
}

/// The comparable form of a reply packet: the CAS numbered, and for `STAT`
/// packets of varying values (`stat_names`) the value left out.
fn normalise_packet(p: &[u8], cas: &mut CasState, stat_names: bool) -> Vec<u8> {
    let mut p = p.to_vec();
    let n = cas.index(be64(&p, 16));
    p[16..24].copy_from_slice(&n.to_be_bytes());
    if stat_names && p[1] == op::STAT && be16(&p, 6) == 0 {
        let head = p[4] as usize + be16(&p, 2) as usize;
        p.truncate(HEADER + head);
        p[8..12].copy_from_slice(&(head as u32).to_be_bytes());
    }
    p
}

/// rmemcached's own `STAT` names (the memory pools'), which memcached
/// does not have: left out of both servers' replies.
fn own_stat(p: &[u8]) -> bool {
    let key = HEADER + p[4] as usize;
    p[1] == op::STAT
        && p.get(key..key + be16(p, 2) as usize)
            .is_some_and(|k| k.windows(6).any(|w| w == b"_pool_"))
}

fn normalise(o: &Outcome, cas: &mut CasState, stat_names: bool) -> Outcome {
    Outcome {
        packets: o
            .packets
            .iter()
            .filter(|p| !own_stat(p))
            .map(|p| normalise_packet(p, cas, stat_names))
            .collect(),
        rest: o.rest.clone(),
        end: o.end.clone(),
    }
}

fn describe_outcome(o: &Outcome) -> String {
    let mut s = String::new();
    for p in &o.packets {
        s.push_str("\n      ");
        s.push_str(&describe(p));
    }
    if !o.rest.is_empty() {
        s.push_str(&format!("\n      trailing bytes {}", hex(&o.rest)));
    }
    s.push_str(&format!("\n      end: {:?}", o.end));
    s
}

fn raw_hex(o: &Outcome) -> String {
    let mut all = o.packets.concat();
    all.extend_from_slice(&o.rest);
    hex(&all)
}

// ---------------------------------------------------------------------------
// TCP.

/// The keys of a reply's packets.
fn keys(o: &Outcome) -> Vec<String> {
    o.packets
        .iter()
        .map(|p| {
            let (extlen, keylen) = (p[4] as usize, be16(p, 2) as usize);
            String::from_utf8_lossy(&p[HEADER + extlen..HEADER + extlen + keylen]).into_owned()
        })
        .collect()
}

/// `STAT settings`: as in `tests/protocol/stats.rs` for the text protocol,
/// rmemcached shows memcached's setting names in memcached's order, but
/// only those it has (plus its own `udp_*` settings). Everything else about
/// the reply (statuses, opaque, CAS, the empty last packet, how it ends)
/// must be memcached's.
fn settings_match(theirs: &Outcome, ours: &Outcome) -> bool {
    let strip = |o: &Outcome| -> Vec<Vec<u8>> {
        o.packets
            .iter()
            .map(|p| [&p[..2], &p[4..8], &p[12..24]].concat())
            .collect()
    };
    let (want, got) = (keys(theirs), keys(ours));
    let mut it = want.iter();
    let subsequence = got
        .iter()
        .filter(|n| !matches!(n.as_str(), "udp_reuseport" | "udp_allow" | "udp_reply_rate"))
        .all(|n| it.any(|w| w == n));
    let must = [
        "maxbytes",
        "maxconns",
        "tcpport",
        "udpport",
        "item_size_max",
        "cas_enabled",
    ];
    let headers = |o: &Outcome| {
        let mut h = strip(o);
        h.dedup();
        h
    };
    subsequence
        && must.iter().all(|m| got.iter().any(|n| n == m))
        && got.last().map(String::as_str) == Some("")
        && headers(theirs) == headers(ours)
        && (theirs.rest.is_empty(), &theirs.end) == (ours.rest.is_empty(), &ours.end)
}

#[test]
fn tcp_replies_match_memcached() {
    let (mc, rm) = lockstep::start_pair(&[]);
    lockstep::run_tcp(&Binary, &cases::build(cases::CASES), &mc, &rm).assert_clean();
}

/// Counters both servers must agree on after the same traffic.
const SAME_COUNTERS: &[&str] = &[
    "cmd_get",
    "cmd_set",
    "cmd_flush",
    "cmd_touch",
    "get_hits",
    "get_misses",
    "get_expired",
    "delete_misses",
    "delete_hits",
    "incr_misses",
    "incr_hits",
    "decr_misses",
    "decr_hits",
    "cas_misses",
    "cas_hits",
    "cas_badval",
    "touch_hits",
    "touch_misses",
    "curr_items",
    "total_items",
];

/// The general statistics of a server over the binary protocol.
fn binary_stats(server: &common::Server) -> Vec<(String, String)> {
    let mut s = server.tcp();
    s.write_all(&cat([keyed(op::STAT, ""), sentinel()]))
        .unwrap();
    let o = read_packets(&mut s, Until::Sentinel);
    assert_eq!(o.end, End::Sentinel, "stat reply cut short");
    let (last, stats) = o.packets.split_last().expect("no stat reply");
    assert_eq!(parse(last), (op::STAT, 0, vec![], vec![], vec![], 0));
    stats
        .iter()
        .map(|p| {
            let (opcode, status, ext, key, value, cas) = parse(p);
            assert_eq!((opcode, status, ext.len(), cas), (op::STAT, 0, 0, 0));
            let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
            (text(key), text(value))
        })
        .collect()
}

#[test]
fn tcp_stat_replies_match_memcached() {
    // Without UDP: rmemcached's UDP guard counters would add to the names.
    let (mc, rm) = lockstep::start_pair(&["-U", "0"]);
    let cases = cases::build(cases::STAT_CASES);
    // Counters after the traffic case alone (the reset case comes later).
    let mut findings = lockstep::run_tcp(&Binary, &cases[..1], &mc, &rm);
    let pick = |stats: Vec<(String, String)>| -> Vec<(String, String)> {
        stats
            .into_iter()
            .filter(|(k, _)| SAME_COUNTERS.contains(&k.as_str()))
            .collect()
    };
    let (theirs, ours) = (pick(binary_stats(&mc)), pick(binary_stats(&rm)));
    assert_eq!(theirs.len(), SAME_COUNTERS.len(), "{theirs:?}");
    if theirs != ours {
        findings.problems.push(format!(
            "counters differ after the same traffic\n  memcached:  {theirs:?}\n  rmemcached: {ours:?}"
        ));
    }
    findings.extend(lockstep::run_tcp(&Binary, &cases[1..], &mc, &rm));
    findings.transport = "TCP STAT".into();
    findings.assert_clean();
}

// ---------------------------------------------------------------------------
// UDP.

#[test]
fn udp_replies_match_memcached() {
    // One worker thread each, so that datagrams are answered in order.
    let (mc, rm) = lockstep::start_pair(&["-t", "1"]);
    let cases = cases::udp_cases();
    lockstep::run_udp(&Binary, &cases, &mc, &rm, CasScope::Shared).assert_clean();
}

// ---------------------------------------------------------------------------
// Unix socket.

#[test]
fn unix_socket_binary_get_set() {
    let server = common::start_unix_server(&[]);
    let mut s = server.unix();
    let reqs = [
        store(op::SET, "ukey", 0x0102_0304, 0, b"unix value", 0),
        keyed(op::GET, "ukey"),
        keyed(op::GETK, "ukey"),
        keyed(op::GETQ, "nothere"),
        keyed(op::GET, "nothere"),
        delta(op::INCREMENT, "ucount", 2, 40, 0, 0),
        delta(op::INCREMENT, "ucount", 2, 40, 0, 0),
        sentinel(),
    ];
    // The opaques of the requests that are answered.
    let opaques: Vec<u32> = [0, 1, 2, 4, 5, 6]
        .iter()
        .map(|&i| be32(&reqs[i], 12))
        .collect();
    s.write_all(&reqs.concat()).unwrap();
    let o = read_packets(&mut s, Until::Sentinel);
    assert_eq!(o.end, End::Sentinel, "{}", describe_outcome(&o));
    assert!(o.rest.is_empty());
    let r: Vec<Parsed> = o.packets.iter().map(|p| parse(p)).collect();
    assert_eq!(r.len(), 6, "{}", describe_outcome(&o));
    let flags = 0x0102_0304u32.to_be_bytes().to_vec();
    let cas = r[0].5;
    assert!(cas != 0, "a set returns a CAS");
    assert_eq!(r[0], (op::SET, 0, vec![], vec![], vec![], cas));
    assert_eq!(
        r[1],
        (
            op::GET,
            0,
            flags.clone(),
            vec![],
            b"unix value".to_vec(),
            cas
        )
    );
    assert_eq!(
        r[2],
        (
            op::GETK,
            0,
            flags,
            b"ukey".to_vec(),
            b"unix value".to_vec(),
            cas
        )
    );
    assert_eq!(r[3], (op::GET, 1, vec![], vec![], b"Not found".to_vec(), 0));
    assert_eq!((r[4].0, r[4].1), (op::INCREMENT, 0));
    assert_eq!(r[4].4, 40u64.to_be_bytes());
    assert!(r[4].5 != 0);
    assert_eq!(r[5].4, 42u64.to_be_bytes());
    assert!(r[5].5 != 0 && r[5].5 != r[4].5, "incr gives a new CAS");

    // Replies echo the request's opaque.
    let got: Vec<u32> = o.packets.iter().map(|p| be32(p, 12)).collect();
    assert_eq!(got, opaques);

    // The value is there for a text client on another connection.
    let mut t = server.unix();
    let reply = common::request(&mut t, b"get ukey ucount\r\n", b"END\r\n");
    assert_eq!(
        reply,
        b"VALUE ukey 16909060 10\r\nunix value\r\nVALUE ucount 0 2\r\n42\r\nEND\r\n"
    );

    // A quit closes the unix connection after its reply.
    s.write_all(&bare(op::QUIT)).unwrap();
    let o = read_packets(&mut s, Until::Eof);
    assert_eq!(o.end, End::Closed);
    assert_eq!(o.packets.len(), 1);
    assert_eq!(
        parse(&o.packets[0]),
        (op::QUIT, 0, vec![], vec![], vec![], 0)
    );
}
