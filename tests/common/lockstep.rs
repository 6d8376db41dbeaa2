//! The lockstep differential harness: the same request streams go to the
//! real memcached 1.6.18 ([`MEMCACHED`]) and to rmemcached, one step at a
//! time on both, and the replies must be equal once what two servers may
//! rightly differ in (the CAS values they hand out) is normalised.
//!
//! This file knows cases, steps, connections, datagrams and the report. A
//! [`Protocol`] knows the rest: how a step's replies are read (each step
//! ends with a sentinel request whose reply marks the end), how a request
//! names a CAS the server handed out earlier in the case, how CAS values
//! in replies are numbered, and how to show bytes. `tests/differential`
//! (ASCII and meta) and `tests/binary` are its two protocols.
//!
//! Each case runs on a fresh connection to each server (over TCP), or as
//! one datagram per step (over UDP), with its own CAS numbering. A `Sleep`
//! step sleeps once, for both servers. Every difference is printed (case,
//! step, request, both replies) and [`Findings::assert_clean`] fails at
//! the end if there was any; the protocol's verbose variable
//! ([`Protocol::VERBOSE_VAR`]) also prints every step with memcached's
//! reply.

use super::{start_server, start_with, udp_header, udp_recv, Server};
use std::io::{ErrorKind, Read};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

/// The real memcached the replies are compared with.
pub const MEMCACHED: &str = "/usr/bin/memcached";

/// Largest UDP reply payload (after the 8-byte frame header) either
/// server may send in one datagram.
pub const UDP_PAYLOAD_MAX: usize = 1392;

/// Fail, rather than skip, when memcached is missing.
pub fn require_memcached() {
    assert!(
        std::path::Path::new(MEMCACHED).exists(),
        "{MEMCACHED} is missing: the differential tests need the real memcached 1.6.18 \
         (apt-get install memcached); they are not skipped"
    );
}

/// memcached and rmemcached, both started with `flags`.
pub fn start_pair(flags: &[&str]) -> (Server, Server) {
    require_memcached();
    (start_with(MEMCACHED, flags), start_server(flags))
}

/// One step of a case.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send, then the protocol's sentinel; read until the sentinel's reply.
    Send(Vec<u8>),
    /// Send; read this many replies (no sentinel).
    Count(Vec<u8>, usize),
    /// A settings request, sent as `Send` and compared by
    /// [`Protocol::settings_match`] (rmemcached shows a subset).
    Settings(Vec<u8>),
    /// Send; the server must close the connection: read to EOF.
    Close(Vec<u8>),
    /// Send without reading (the first part of a request split across
    /// writes).
    Write(Vec<u8>),
    /// Sleep this many milliseconds, once for both servers.
    Sleep(u64),
    /// Open a new connection to each server.
    Reconnect,
}

impl Step {
    /// The bytes the step sends, if it sends any.
    pub fn request(&self) -> Option<&[u8]> {
        match self {
            Step::Send(r)
            | Step::Count(r, _)
            | Step::Settings(r)
            | Step::Close(r)
            | Step::Write(r) => Some(r),
            Step::Sleep(_) | Step::Reconnect => None,
        }
    }
}

/// A named list of steps, run in lock step on both servers.
#[derive(Debug, Clone)]
pub struct Case {
    /// Shown in the report.
    pub name: String,
    /// In order.
    pub steps: Vec<Step>,
    /// Whether [`run_udp`] runs the case (one datagram per step).
    pub udp: bool,
    /// `STAT` values vary between processes (pid, uptime, memory): the
    /// protocol compares their names only.
    pub stat_names: bool,
}

impl Case {
    /// A case that runs over TCP and UDP and compares every value.
    pub fn new(name: impl Into<String>, steps: Vec<Step>) -> Case {
        Case {
            name: name.into(),
            steps,
            udp: true,
            stat_names: false,
        }
    }
}

/// Which server of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The real memcached: the reference.
    Memcached,
    /// The server under test.
    Rmemcached,
}

impl Side {
    /// Both, reference first.
    pub const BOTH: [Side; 2] = [Side::Memcached, Side::Rmemcached];
}

/// Whether each case numbers its CAS values afresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasScope {
    /// Each case starts with no CAS seen.
    PerCase,
    /// The cases are one sequence: a request may name a CAS handed out in
    /// an earlier case.
    Shared,
}

/// What [`run_udp`] collected for one request datagram.
pub struct UdpReply {
    /// The payloads of the datagrams answering the request, concatenated
    /// in arrival order.
    pub payload: Vec<u8>,
    /// How many reply messages (runs of datagrams numbered from 0, empty
    /// ones included) answered it.
    pub messages: usize,
    /// The payload of the sentinel's reply; `None` when it never came.
    pub sentinel: Option<Vec<u8>>,
}

/// How a protocol's requests are sent and its replies read and compared.
pub trait Protocol {
    /// A step's reply, as read or normalised.
    type Reply: PartialEq;
    /// One server's CAS values within a case.
    type Cas: Default;
    /// The environment variable that prints every step when set.
    const VERBOSE_VAR: &'static str;
    /// How long to wait for a reply before calling it a timeout.
    const REPLY_TIMEOUT: Duration;

    /// `req` with its CAS placeholders replaced by this server's values.
    fn fill_cas(&self, req: &[u8], cas: &Self::Cas) -> Vec<u8>;
    /// The comparable form of a reply: its CAS values numbered in order of
    /// first appearance (and remembered in `cas` for [`Protocol::fill_cas`]).
    fn normalise(&self, reply: &Self::Reply, cas: &mut Self::Cas, case: &Case) -> Self::Reply;
    /// Whether the normalised replies to a [`Step::Settings`] agree.
    fn settings_match(&self, theirs: &Self::Reply, ours: &Self::Reply) -> bool {
        theirs == ours
    }
    /// Run a sending step (not `Sleep` or `Reconnect`) on one server's
    /// connection (`None` once it has closed) and read the reply.
    fn tcp_step(
        &self,
        side: Side,
        conn: &mut Option<TcpStream>,
        step: &Step,
        req: &[u8],
    ) -> Self::Reply;
    /// The request sent in a datagram of its own after each UDP step.
    fn udp_sentinel(&self) -> Vec<u8>;
    /// The reply to one UDP step, from what came back; complaints about it
    /// go in `problems`.
    fn udp_reply(&self, side: Side, got: UdpReply, problems: &mut Vec<String>) -> Self::Reply;
    /// A request, printable.
    fn show_request(&self, req: &[u8]) -> String;
    /// A reply, printable, from its raw and normalised forms.
    fn show_reply(&self, raw: &Self::Reply, normalised: &Self::Reply) -> String;
}

/// One step whose replies differ, already printable.
pub struct Mismatch {
    /// Index of the case in the list run.
    pub case: usize,
    /// Its name.
    pub name: String,
    /// Index of the step in the case.
    pub step: usize,
    /// The request as written in the case.
    pub request: String,
    /// memcached's reply.
    pub memcached: String,
    /// rmemcached's reply.
    pub rmemcached: String,
}

/// The outcome of a run: every mismatching step and every other problem.
pub struct Findings {
    /// `TCP`, `UDP`, ...
    pub transport: String,
    /// How many cases ran.
    pub cases: usize,
    /// Steps whose normalised replies differ.
    pub mismatches: Vec<Mismatch>,
    /// Anything else wrong (framing, counters).
    pub problems: Vec<String>,
}

impl Findings {
    fn new(transport: &str) -> Findings {
        Findings {
            transport: transport.to_string(),
            cases: 0,
            mismatches: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Take in the findings of a later run over the same servers.
    pub fn extend(&mut self, later: Findings) {
        self.cases += later.cases;
        self.mismatches.extend(later.mismatches);
        self.problems.extend(later.problems);
    }

    /// Print every mismatch and problem, then fail if there was any.
    pub fn assert_clean(&self) {
        let t = &self.transport;
        for m in &self.mismatches {
            println!(
                "\n=== {t} MISMATCH case {} \"{}\" step {}\n  request:    {}\n  memcached:  {}\n  rmemcached: {}",
                m.case, m.name, m.step, m.request, m.memcached, m.rmemcached
            );
        }
        for p in &self.problems {
            println!("\n=== {t} PROBLEM {p}");
        }
        let names: Vec<String> = self
            .mismatches
            .iter()
            .map(|m| format!("#{} {} (step {})", m.case, m.name, m.step))
            .collect();
        println!(
            "\n{t}: {} cases, {} mismatching steps, {} other problems",
            self.cases,
            self.mismatches.len(),
            self.problems.len()
        );
        assert!(
            self.mismatches.is_empty() && self.problems.is_empty(),
            "{t}: rmemcached differs from memcached in {} steps: {names:#?}\nother problems: {:#?}",
            self.mismatches.len(),
            self.problems
        );
    }
}

fn verbose<P: Protocol>() -> bool {
    std::env::var_os(P::VERBOSE_VAR).is_some()
}

/// Compare one step's replies; returns a mismatch when they differ.
#[allow(clippy::too_many_arguments)]
fn compare<P: Protocol>(
    p: &P,
    ci: usize,
    case: &Case,
    si: usize,
    step: &Step,
    raw_req: &[u8],
    theirs: (P::Reply, P::Reply),
    ours: (P::Reply, P::Reply),
) -> Option<Mismatch> {
    if verbose::<P>() {
        println!(
            "{ci} {} step {si}\n  > {}\n  < {}",
            case.name,
            p.show_request(raw_req),
            p.show_reply(&theirs.0, &theirs.1)
        );
    }
    let same = match step {
        Step::Settings(_) => p.settings_match(&theirs.1, &ours.1),
        _ => theirs.1 == ours.1,
    };
    (!same).then(|| Mismatch {
        case: ci,
        name: case.name.clone(),
        step: si,
        request: p.show_request(raw_req),
        memcached: p.show_reply(&theirs.0, &theirs.1),
        rmemcached: p.show_reply(&ours.0, &ours.1),
    })
}

fn connect<P: Protocol>(server: &Server) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    s.set_read_timeout(Some(P::REPLY_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Run `cases` over TCP, each on fresh connections.
pub fn run_tcp<P: Protocol>(p: &P, cases: &[Case], mc: &Server, rm: &Server) -> Findings {
    let mut f = Findings::new("TCP");
    let servers = [mc, rm];
    for (ci, case) in cases.iter().enumerate() {
        f.cases += 1;
        let open = || servers.map(|s| Some(connect::<P>(s)));
        let mut conns = open();
        let mut cas: [P::Cas; 2] = Default::default();
        for (si, step) in case.steps.iter().enumerate() {
            let raw_req = match step {
                Step::Sleep(ms) => {
                    std::thread::sleep(Duration::from_millis(*ms));
                    continue;
                }
                Step::Reconnect => {
                    conns = open();
                    continue;
                }
                _ => step.request().unwrap(),
            };
            let [theirs, ours] = Side::BOTH.map(|side| {
                let i = side as usize;
                let req = p.fill_cas(raw_req, &cas[i]);
                let raw = p.tcp_step(side, &mut conns[i], step, &req);
                let norm = p.normalise(&raw, &mut cas[i], case);
                (raw, norm)
            });
            f.mismatches
                .extend(compare(p, ci, case, si, step, raw_req, theirs, ours));
        }
    }
    f
}

/// A UDP socket talking to one server, numbering its requests.
struct UdpPeer {
    sock: UdpSocket,
    next_id: u16,
}

impl UdpPeer {
    fn new<P: Protocol>(server: &Server) -> UdpPeer {
        assert!(server.udp_port != 0, "server has no UDP port");
        let sock = server.udp();
        sock.set_read_timeout(Some(P::REPLY_TIMEOUT)).unwrap();
        UdpPeer { sock, next_id: 100 }
    }

    fn id(&mut self) -> u16 {
        self.next_id = self.next_id.wrapping_add(1).max(100);
        self.next_id
    }

    /// Send `req` in one datagram, then `sentinel` in another; collect
    /// every datagram answering `req` until the sentinel's reply arrives.
    /// Complains (in `problems`) when a reply message does not number its
    /// datagrams 0..total or a datagram is over [`UDP_PAYLOAD_MAX`].
    fn exchange(&mut self, req: &[u8], sentinel: &[u8], problems: &mut Vec<String>) -> UdpReply {
        let (id, sid) = (self.id(), self.id());
        for (i, p) in [(id, req), (sid, sentinel)] {
            let mut d = udp_header(i, 0, 1).to_vec();
            d.extend_from_slice(p);
            self.sock.send(&d).unwrap();
        }
        let mut got = UdpReply {
            payload: Vec::new(),
            messages: 0,
            sentinel: None,
        };
        let mut expect: Option<(u16, u16)> = None; // (next seq, total)
        let cut = |expect: Option<(u16, u16)>, problems: &mut Vec<String>| {
            if let Some((next, total)) = expect {
                if next != total {
                    problems.push(format!("message cut at {next} of {total} datagrams"));
                }
            }
        };
        while let Some(g) = udp_recv(&self.sock) {
            if g.id == sid {
                got.sentinel = Some(g.payload);
                break;
            }
            if g.id != id {
                continue; // late datagram of an earlier (timed-out) step
            }
            if g.seq == 0 && g.total == 0 && g.payload.is_empty() {
                // memcached's empty "0 datagrams" message: for a command
                // that answers nothing, a get miss that is not the last
                // key, and quit.
                got.messages += 1;
                continue;
            }
            if g.seq == 0 {
                cut(expect, problems);
                got.messages += 1;
                expect = Some((1, g.total));
            } else {
                match expect {
                    Some((next, total)) if g.seq == next && g.total == total => {
                        expect = Some((next + 1, total));
                    }
                    _ => problems.push(format!(
                        "datagram seq {} total {} out of order (expected {expect:?})",
                        g.seq, g.total
                    )),
                }
            }
            if g.payload.len() > UDP_PAYLOAD_MAX {
                problems.push(format!("datagram of {} payload bytes", g.payload.len()));
            }
            got.payload.extend_from_slice(&g.payload);
        }
        cut(expect, problems);
        got
    }
}

/// Run the cases marked `udp`, one datagram per step (no `Write` steps).
/// rmemcached's framing problems fail the run; memcached's are printed.
pub fn run_udp<P: Protocol>(
    p: &P,
    cases: &[Case],
    mc: &Server,
    rm: &Server,
    scope: CasScope,
) -> Findings {
    let mut f = Findings::new("UDP");
    let mut peers = [UdpPeer::new::<P>(mc), UdpPeer::new::<P>(rm)];
    let sentinel = p.udp_sentinel();
    let mut cas: [P::Cas; 2] = Default::default();
    for (ci, case) in cases.iter().enumerate().filter(|(_, c)| c.udp) {
        f.cases += 1;
        if scope == CasScope::PerCase {
            cas = Default::default();
        }
        for (si, step) in case.steps.iter().enumerate() {
            let raw_req = match step {
                Step::Sleep(ms) => {
                    std::thread::sleep(Duration::from_millis(*ms));
                    continue;
                }
                Step::Send(r) | Step::Close(r) | Step::Settings(r) => r,
                _ => panic!("case {ci} \"{}\": {step:?} is TCP only", case.name),
            };
            let [theirs, ours] = Side::BOTH.map(|side| {
                let i = side as usize;
                let req = p.fill_cas(raw_req, &cas[i]);
                let mut problems = Vec::new();
                let got = peers[i].exchange(&req, &sentinel, &mut problems);
                let raw = p.udp_reply(side, got, &mut problems);
                for problem in problems {
                    let at = format!("case {ci} \"{}\" step {si}: {problem}", case.name);
                    match side {
                        Side::Memcached => println!("note: memcached UDP framing, {at}"),
                        Side::Rmemcached => f.problems.push(at),
                    }
                }
                let norm = p.normalise(&raw, &mut cas[i], case);
                (raw, norm)
            });
            f.mismatches
                .extend(compare(p, ci, case, si, step, raw_req, theirs, ours));
        }
    }
    f
}

/// How [`read_stream`] stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadEnd {
    /// `done` said so.
    Done,
    /// EOF, or the connection was reset or aborted.
    Closed,
    /// Nothing more within the read timeout.
    Timeout,
    /// Any other read error.
    Failed(String),
}

/// Read from `s` (which has a read timeout) until `done(bytes so far)`,
/// EOF, an error or the timeout.
pub fn read_stream<S: Read>(s: &mut S, mut done: impl FnMut(&[u8]) -> bool) -> (Vec<u8>, ReadEnd) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        if done(&out) {
            return (out, ReadEnd::Done);
        }
        match s.read(&mut buf) {
            Ok(0) => return (out, ReadEnd::Closed),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (out, ReadEnd::Timeout)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                return (out, ReadEnd::Closed)
            }
            Err(e) => return (out, ReadEnd::Failed(e.to_string())),
        }
    }
}
