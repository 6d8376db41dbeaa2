//! `rmc-load`: the project's own load generator, for what memaslap cannot
//! do. It speaks memcached's ASCII protocol over UDP (first) or TCP to any
//! memcached-compatible server on loopback, and measures:
//!
//! - multi-gets over UDP whose replies span several datagrams, reassembled
//!   under both framings: one message per request (rmemcached) and one
//!   message per key plus one for `END` (memcached 1.6);
//! - a fixed request rate (open loop: requests leave on schedule, whether
//!   or not earlier ones were answered), with latency taken from the
//!   *scheduled* send time to the complete reply, so that a stall of the
//!   server shows in the percentiles instead of slowing the generator down
//!   (no coordinated omission); or a closed loop with a fixed number of
//!   requests in flight per socket;
//! - many requests in flight on one UDP socket, matched by request id;
//! - loss: a request without a complete reply within the timeout is lost;
//!   datagrams for ids nobody waits for are counted apart.
//!
//! Each socket has a receiving thread, plus a sending thread in open loop.
//! The run sends for `--duration`, then waits at most `--timeout` for the
//! last replies, and stops by itself.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use lexopt::{Arg, Parser, ValueExt};
use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sys::socket::MsgFlags;
use nix::sys::time::TimeSpec;

/// Size of memcached's UDP frame header.
const UDP_HEADER: usize = 8;
/// Largest UDP payload a socket can carry over IPv4.
const UDP_MAX_DATAGRAM: usize = 65507;
/// Receive buffer asked for on UDP sockets, so that bursts of reply
/// datagrams are not dropped by the generator itself.
const UDP_RCVBUF: usize = 4 << 20;
/// How long a blocking receive waits before the loop looks at the clock.
const POLL: Duration = Duration::from_millis(2);
/// Open loop: the generator spins instead of sleeping while its next send
/// is nearer than this (so at rates above 5,000 requests/s it spins).
const SPIN: Duration = Duration::from_micros(200);
/// Most sockets (each with one or two threads).
const MAX_SOCKETS: u32 = 64;
/// Most requests in flight per socket in closed loop (UDP ids are `u16`s,
/// and expired ids rest for a timeout before reuse).
const MAX_OUTSTANDING: u32 = 16384;
/// Highest latency the histograms hold, in ns; longer ones saturate.
const HIST_MAX_NS: u64 = 600_000_000_000;

const HELP: &str = "\
rmc-load: load generator for memcached-compatible servers on loopback
(memcached's ASCII protocol over UDP or TCP)

Usage: rmc-load (--udp PORT | --tcp PORT) [options]

  --udp PORT           send over UDP to PORT (memcached's 8-byte frame)
  --tcp PORT           send over TCP to PORT
  --host ADDR          server address; loopback only (127.0.0.0/8, ::1)
                       [127.0.0.1]
  --mode MODE          get | multiget | set | mixed (90% get, 10% set) [get]
  --keys N             key space: PREFIX0 .. PREFIX<N-1> [1000]
  --value-size B       bytes per value, preloaded and set [100]
  --multiget-keys K    keys per multiget request [10]
  --rate R             requests/s over all sockets, sent on schedule (open
                       loop); 0 = closed loop, as fast as replies come [0]
  --outstanding M      closed loop: requests in flight per socket [16]
  --sockets S          sockets (connections), 1..64; a thread each in
                       closed loop, one thread for all in open loop [1]
  --duration SECS      seconds of sending (fractions allowed) [5]
  --timeout MS         a request without a complete reply this long after
                       its send is lost [1000]
  --preload-tcp PORT   preload the keys over TCP on PORT instead of over the
                       load's own transport
  --no-preload         do not set the keys before the run
  --prefix STR         key prefix [rmcload:]
  --seed N             random seed [from the clock]
  --json               also print a one-line JSON summary (the last line)
  -h, --help           print this text

Latency runs from the scheduled send time (open loop) or the send time
(closed loop) to the complete reply. A UDP reply is complete when the
datagrams of its request id, in one message or in several (memcached sends
one per key of a multi-get, then END), concatenate to a whole reply; a
lost datagram makes its request lost (in memcached's framing a key's
message lost whole cannot be told from a miss, and counts as one).
";

// ---------------------------------------------------------------------------
// Settings

/// What the requests are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Get,
    MultiGet,
    Set,
    Mixed,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Get => "get",
            Mode::MultiGet => "multiget",
            Mode::Set => "set",
            Mode::Mixed => "mixed",
        }
    }
}

/// The transport of the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Udp,
    Tcp,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
        }
    }
}

/// The parsed command line.
#[derive(Debug, Clone)]
struct Config {
    proto: Proto,
    port: u16,
    host: IpAddr,
    mode: Mode,
    keys: u32,
    value_size: usize,
    multiget_keys: u32,
    rate: f64,
    outstanding: u32,
    sockets: u32,
    duration: Duration,
    timeout: Duration,
    preload: bool,
    preload_tcp: Option<u16>,
    prefix: String,
    seed: u64,
    json: bool,
}

/// Accept `host` only if it is a loopback address: the load must not leave
/// the machine.
fn loopback_host(host: &str) -> Result<IpAddr, String> {
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse()
            .map_err(|_| format!("--host {host:?}: not an IP address"))?
    };
    if !ip.is_loopback() {
        return Err(format!(
            "--host {ip}: not a loopback address (127.0.0.0/8 or ::1); \
             rmc-load sends on loopback only"
        ));
    }
    Ok(ip)
}

/// Parse a value of type `T`, naming the option on error.
fn value<T: std::str::FromStr>(parser: &mut Parser, name: &str) -> Result<T, String> {
    let v = parser.value().map_err(|e| e.to_string())?;
    let s = v.string().map_err(|e| e.to_string())?;
    s.parse()
        .map_err(|_| format!("{name}: invalid value {s:?}"))
}

/// Parse the command line (without the program name). `Ok(None)` means
/// `--help` was asked for.
fn parse_args<I>(args: I) -> Result<Option<Config>, String>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut parser = Parser::from_args(args);
    let mut udp: Option<u16> = None;
    let mut tcp: Option<u16> = None;
    let mut cfg = Config {
        proto: Proto::Udp,
        port: 0,
        host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        mode: Mode::Get,
        keys: 1000,
        value_size: 100,
        multiget_keys: 10,
        rate: 0.0,
        outstanding: 16,
        sockets: 1,
        duration: Duration::from_secs(5),
        timeout: Duration::from_secs(1),
        preload: true,
        preload_tcp: None,
        prefix: "rmcload:".into(),
        seed: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        json: false,
    };
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Arg::Short('h') | Arg::Long("help") => return Ok(None),
            Arg::Long("udp") => udp = Some(value(&mut parser, "--udp")?),
            Arg::Long("tcp") => tcp = Some(value(&mut parser, "--tcp")?),
            Arg::Long("host") => {
                let h: String = value(&mut parser, "--host")?;
                cfg.host = loopback_host(&h)?;
            }
            Arg::Long("mode") => {
                let m: String = value(&mut parser, "--mode")?;
                cfg.mode = match m.as_str() {
                    "get" => Mode::Get,
                    "multiget" => Mode::MultiGet,
                    "set" => Mode::Set,
                    "mixed" => Mode::Mixed,
                    _ => return Err(format!("--mode {m:?}: get, multiget, set or mixed")),
                };
            }
            Arg::Long("keys") => cfg.keys = value(&mut parser, "--keys")?,
            Arg::Long("value-size") => cfg.value_size = value(&mut parser, "--value-size")?,
            Arg::Long("multiget-keys") => {
                cfg.multiget_keys = value(&mut parser, "--multiget-keys")?
            }
            Arg::Long("rate") => cfg.rate = value(&mut parser, "--rate")?,
            Arg::Long("outstanding") => cfg.outstanding = value(&mut parser, "--outstanding")?,
            Arg::Long("sockets") => cfg.sockets = value(&mut parser, "--sockets")?,
            Arg::Long("duration") => {
                let secs: f64 = value(&mut parser, "--duration")?;
                if !(secs > 0.0 && secs < 1e6) {
                    return Err("--duration: must be more than 0 seconds".into());
                }
                cfg.duration = Duration::from_secs_f64(secs);
            }
            Arg::Long("timeout") => {
                let ms: u64 = value(&mut parser, "--timeout")?;
                if ms == 0 {
                    return Err("--timeout: must be at least 1 ms".into());
                }
                cfg.timeout = Duration::from_millis(ms);
            }
            Arg::Long("preload-tcp") => {
                cfg.preload_tcp = Some(value(&mut parser, "--preload-tcp")?)
            }
            Arg::Long("no-preload") => cfg.preload = false,
            Arg::Long("prefix") => cfg.prefix = value(&mut parser, "--prefix")?,
            Arg::Long("seed") => cfg.seed = value(&mut parser, "--seed")?,
            Arg::Long("json") => cfg.json = true,
            other => return Err(other.unexpected().to_string()),
        }
    }
    match (udp, tcp) {
        (Some(p), None) => (cfg.proto, cfg.port) = (Proto::Udp, p),
        (None, Some(p)) => (cfg.proto, cfg.port) = (Proto::Tcp, p),
        _ => return Err("give exactly one of --udp PORT and --tcp PORT".into()),
    }
    check(&cfg)?;
    Ok(Some(cfg))
}

/// The consistency checks once all options are read.
fn check(cfg: &Config) -> Result<(), String> {
    if cfg.port == 0 {
        return Err("port 0 is no server port".into());
    }
    if cfg.keys == 0 {
        return Err("--keys: at least 1".into());
    }
    if cfg.mode == Mode::MultiGet && !(1..=cfg.keys).contains(&cfg.multiget_keys) {
        return Err("--multiget-keys: between 1 and --keys".into());
    }
    if !(1..=MAX_SOCKETS).contains(&cfg.sockets) {
        return Err(format!("--sockets: between 1 and {MAX_SOCKETS}"));
    }
    if !(1..=MAX_OUTSTANDING).contains(&cfg.outstanding) {
        return Err(format!("--outstanding: between 1 and {MAX_OUTSTANDING}"));
    }
    if !(cfg.rate >= 0.0 && cfg.rate.is_finite()) {
        return Err("--rate: 0 (closed loop) or more".into());
    }
    if cfg.prefix.is_empty() || cfg.prefix.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("--prefix: printable characters, no spaces".into());
    }
    if cfg.prefix.len() + 10 > 250 {
        return Err("--prefix: keys would exceed 250 bytes".into());
    }
    if cfg.proto == Proto::Udp {
        let key = cfg.prefix.len() + 10;
        let set = UDP_HEADER + set_request_len(key, cfg.value_size);
        let sets = matches!(cfg.mode, Mode::Set | Mode::Mixed)
            || (cfg.preload && cfg.preload_tcp.is_none());
        if sets && set > UDP_MAX_DATAGRAM {
            return Err(format!(
                "--value-size {}: a set does not fit in one datagram; \
                 use --tcp, or --preload-tcp with a get mode",
                cfg.value_size
            ));
        }
        let get = UDP_HEADER + 6 + cfg.multiget_keys as usize * (key + 1);
        if cfg.mode == Mode::MultiGet && get > UDP_MAX_DATAGRAM {
            return Err("--multiget-keys: the request does not fit in one datagram".into());
        }
    }
    Ok(())
}

/// Upper bound of the bytes of a set of a key of `key` bytes.
fn set_request_len(key: usize, value: usize) -> usize {
    "set  0 0 \r\n\r\n".len() + key + 20 + value
}

// ---------------------------------------------------------------------------
// Replies

/// The reply a request expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// `VALUE ...` items, then `END`.
    Retrieval,
    /// One line: `STORED`, `NOT_STORED`, `EXISTS` or `NOT_FOUND`.
    Storage,
}

/// How far the bytes received form a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// Not whole yet.
    Incomplete,
    /// A whole reply of `len` bytes, with `values` items for a retrieval.
    Done { len: usize, values: u32 },
    /// A whole error line (`ERROR`, `CLIENT_ERROR ...`, `SERVER_ERROR ...`).
    Error { len: usize },
    /// Bytes that cannot be the reply to the request.
    Malformed,
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

fn is_error_line(line: &[u8]) -> bool {
    line == b"ERROR" || line.starts_with(b"CLIENT_ERROR") || line.starts_with(b"SERVER_ERROR")
}

/// Parse one reply from the start of `buf`: a whole reply is reported with
/// its length, so that what follows (the next pipelined reply over TCP, or
/// stray bytes over UDP) is left alone.
fn parse_reply(expect: Expect, buf: &[u8]) -> Reply {
    let mut pos = 0;
    let mut values = 0;
    loop {
        let Some(e) = find_crlf(&buf[pos..]) else {
            return Reply::Incomplete;
        };
        let line = &buf[pos..pos + e];
        let after = pos + e + 2;
        if is_error_line(line) {
            return Reply::Error { len: after };
        }
        match expect {
            Expect::Storage => {
                return match line {
                    b"STORED" | b"NOT_STORED" | b"EXISTS" | b"NOT_FOUND" => {
                        Reply::Done { len: after, values }
                    }
                    _ => Reply::Malformed,
                };
            }
            Expect::Retrieval => {
                if line == b"END" {
                    return Reply::Done { len: after, values };
                }
                let Some(rest) = line.strip_prefix(b"VALUE ") else {
                    return Reply::Malformed;
                };
                let fields: Vec<&[u8]> = rest.split(|&b| b == b' ').collect();
                if !(3..=4).contains(&fields.len()) {
                    return Reply::Malformed;
                }
                let Some(bytes) = std::str::from_utf8(fields[2])
                    .ok()
                    .and_then(|s| s.parse::<usize>().ok())
                else {
                    return Reply::Malformed;
                };
                let end = after + bytes + 2;
                if buf.len() < end {
                    return Reply::Incomplete;
                }
                if &buf[end - 2..end] != b"\r\n" {
                    return Reply::Malformed;
                }
                values += 1;
                pos = end;
            }
        }
    }
}

/// The whole of a UDP reply: the payload must be exactly one reply.
fn udp_reply(expect: Expect, payload: &[u8]) -> Reply {
    match parse_reply(expect, payload) {
        Reply::Done { len, .. } | Reply::Error { len } if len != payload.len() => Reply::Malformed,
        r => r,
    }
}

// ---------------------------------------------------------------------------
// UDP reassembly

/// A datagram whose header cannot belong to a reply.
#[derive(Debug, PartialEq, Eq)]
struct BadFrame;

/// One numbered series of datagrams: `total` parts, numbered `0..total`.
#[derive(Debug)]
struct Series {
    parts: Vec<Option<Vec<u8>>>,
    missing: usize,
}

/// The datagrams received for one request id, put back together.
///
/// A reply is one or more series; rmemcached sends one series per request,
/// memcached 1.6 one per key of a multi-get and one for `END`, each
/// numbered from 0. Loopback delivers one socket's datagrams in the order
/// they were sent, but drops some under overload, so: a datagram numbered
/// 0 starts a new series, and any other continues the newest series if it
/// has the same total and a free place for it, or else starts a series of
/// its own. Series are appended to the payload in the order they started,
/// once whole; a lost datagram leaves its series open, so the request
/// never completes and is counted lost, instead of being stitched to the
/// datagrams of another key.
#[derive(Debug, Default)]
struct Reassembly {
    open: VecDeque<Series>,
    data: Vec<u8>,
}

impl Reassembly {
    /// Add the datagram numbered `seq` of a series of `total`.
    fn push(&mut self, seq: u16, total: u16, payload: &[u8]) -> Result<(), BadFrame> {
        let (seq, total) = (seq as usize, total as usize);
        if seq >= total {
            return Err(BadFrame);
        }
        if total == 1 && self.open.is_empty() {
            self.data.extend_from_slice(payload);
            return Ok(());
        }
        let fits = |s: &Series| s.parts.len() == total && s.parts[seq].is_none();
        let continues = seq > 0 && self.open.back().is_some_and(fits);
        let series = match self.open.back_mut() {
            Some(s) if continues => s,
            _ => {
                self.open.push_back(Series {
                    parts: vec![None; total],
                    missing: total,
                });
                self.open.back_mut().expect("just pushed")
            }
        };
        series.parts[seq] = Some(payload.to_vec());
        series.missing -= 1;
        while self.open.front().is_some_and(|s| s.missing == 0) {
            let s = self.open.pop_front().expect("front exists");
            for part in s.parts.into_iter().flatten() {
                self.data.extend_from_slice(&part);
            }
        }
        Ok(())
    }

    /// Whether every series begun is whole (the payload may still be only
    /// part of the reply, if more series are to come).
    fn settled(&self) -> bool {
        self.open.is_empty()
    }

    /// The payload of the whole series, in order.
    fn data(&self) -> &[u8] {
        &self.data
    }
}

/// The four header fields of a datagram.
fn udp_header(id: u16, seq: u16, total: u16) -> [u8; UDP_HEADER] {
    let mut h = [0u8; UDP_HEADER];
    h[0..2].copy_from_slice(&id.to_be_bytes());
    h[2..4].copy_from_slice(&seq.to_be_bytes());
    h[4..6].copy_from_slice(&total.to_be_bytes());
    h
}

fn parse_header(d: &[u8]) -> Option<(u16, u16, u16)> {
    if d.len() < UDP_HEADER {
        return None;
    }
    let u = |i: usize| u16::from_be_bytes([d[i], d[i + 1]]);
    Some((u(0), u(2), u(4)))
}

// ---------------------------------------------------------------------------
// Requests

/// xorshift64*: small, fast, and good enough to pick keys.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, never 0.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u32) -> u32 {
        (((self.next() >> 32) * n as u64) >> 32) as u32
    }
}

/// What a request asks, for checking and counting its reply.
#[derive(Debug, Clone, Copy)]
struct Op {
    expect: Expect,
    /// Keys asked for by a retrieval (to count misses).
    keys: u32,
}

/// Makes the requests of one socket.
struct Workload {
    mode: Mode,
    keys: u32,
    multiget_keys: u32,
    prefix: String,
    value: Vec<u8>,
    rng: Rng,
}

impl Workload {
    fn new(cfg: &Config, stream: u64) -> Workload {
        Workload {
            mode: cfg.mode,
            keys: cfg.keys,
            multiget_keys: cfg.multiget_keys,
            prefix: cfg.prefix.clone(),
            value: value_bytes(cfg.value_size),
            rng: Rng::new(cfg.seed ^ stream.wrapping_mul(0x1000_0000_01B3)),
        }
    }

    /// Append the next request's bytes to `out`.
    fn next(&mut self, out: &mut Vec<u8>) -> Op {
        let mode = match self.mode {
            Mode::Mixed if self.rng.below(10) == 0 => Mode::Set,
            Mode::Mixed => Mode::Get,
            m => m,
        };
        match mode {
            Mode::Set => {
                let k = self.rng.below(self.keys);
                set_request(out, &self.prefix, k, &self.value);
                Op {
                    expect: Expect::Storage,
                    keys: 0,
                }
            }
            Mode::MultiGet => {
                // Consecutive keys from a random start: distinct while
                // K <= N.
                let start = self.rng.below(self.keys);
                out.extend_from_slice(b"get");
                for i in 0..self.multiget_keys {
                    let k = (start as u64 + i as u64) % self.keys as u64;
                    let _ = write!(Bytes(out), " {}{k}", self.prefix);
                }
                out.extend_from_slice(b"\r\n");
                Op {
                    expect: Expect::Retrieval,
                    keys: self.multiget_keys,
                }
            }
            _ => {
                let k = self.rng.below(self.keys);
                let _ = write!(Bytes(out), "get {}{k}\r\n", self.prefix);
                Op {
                    expect: Expect::Retrieval,
                    keys: 1,
                }
            }
        }
    }
}

/// `fmt::Write` into a byte vector.
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// A value of `n` printable bytes.
fn value_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

fn set_request(out: &mut Vec<u8>, prefix: &str, key: u32, value: &[u8]) {
    let _ = write!(Bytes(out), "set {prefix}{key} 0 0 {}\r\n", value.len());
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

// ---------------------------------------------------------------------------
// Measurements

/// The counters of one socket, added up at the end.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    sent: u64,
    completed: u64,
    lost: u64,
    errors: u64,
    malformed: u64,
    hits: u64,
    misses: u64,
    datagrams: u64,
    unknown_datagrams: u64,
    expired_datagrams: u64,
    bad_datagrams: u64,
    late_replies: u64,
    socket_errors: u64,
    id_stalls: u64,
}

impl Counters {
    fn add(&mut self, o: &Counters) {
        self.sent += o.sent;
        self.completed += o.completed;
        self.lost += o.lost;
        self.errors += o.errors;
        self.malformed += o.malformed;
        self.hits += o.hits;
        self.misses += o.misses;
        self.datagrams += o.datagrams;
        self.unknown_datagrams += o.unknown_datagrams;
        self.expired_datagrams += o.expired_datagrams;
        self.bad_datagrams += o.bad_datagrams;
        self.late_replies += o.late_replies;
        self.socket_errors += o.socket_errors;
        self.id_stalls += o.id_stalls;
    }
}

/// Counters and latency histograms (ns).
struct Outcome {
    n: Counters,
    /// Scheduled send to complete reply.
    latency: Histogram<u64>,
    /// Scheduled send to actual send (open loop): the generator's own lag.
    lag: Histogram<u64>,
    /// First fatal error of the socket, if any.
    failure: Option<String>,
}

impl Outcome {
    fn new() -> Outcome {
        let h = || Histogram::new_with_bounds(1, HIST_MAX_NS, 3).expect("histogram bounds");
        Outcome {
            n: Counters::default(),
            latency: h(),
            lag: h(),
            failure: None,
        }
    }

    fn merge(&mut self, o: &Outcome) {
        self.n.add(&o.n);
        self.latency.add(&o.latency).expect("same bounds");
        self.lag.add(&o.lag).expect("same bounds");
        if self.failure.is_none() {
            self.failure.clone_from(&o.failure);
        }
    }
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

/// A request in flight.
#[derive(Debug, Clone, Copy)]
struct Meta {
    scheduled: Instant,
    deadline: Instant,
    op: Op,
    serial: u64,
}

/// What every transport shares: making requests and counting replies.
struct Core {
    work: Workload,
    out: Outcome,
    timeout: Duration,
    serial: u64,
}

impl Core {
    fn new(cfg: &Config, stream: u64) -> Core {
        Core {
            work: Workload::new(cfg, stream),
            out: Outcome::new(),
            timeout: cfg.timeout,
            serial: 0,
        }
    }

    /// Write the next request into `buf` and describe it.
    fn make(&mut self, scheduled: Instant, now: Instant, buf: &mut Vec<u8>) -> Meta {
        let op = self.work.next(buf);
        self.serial += 1;
        self.out.n.sent += 1;
        Meta {
            scheduled,
            deadline: now + self.timeout,
            op,
            serial: self.serial,
        }
    }

    /// Count a request's whole reply.
    fn finish(&mut self, m: &Meta, reply: Reply, now: Instant) {
        let n = &mut self.out.n;
        n.completed += 1;
        match reply {
            Reply::Done { values, .. } => {
                if m.op.expect == Expect::Retrieval {
                    n.hits += values as u64;
                    n.misses += m.op.keys.saturating_sub(values) as u64;
                }
            }
            Reply::Error { .. } => n.errors += 1,
            Reply::Malformed => {
                n.errors += 1;
                n.malformed += 1;
            }
            Reply::Incomplete => unreachable!("finish needs a whole reply"),
        }
        self.out
            .latency
            .saturating_record(nanos(now.saturating_duration_since(m.scheduled)).max(1));
    }
}

/// The requests in flight on one socket, for one transport.
trait Flight: Send {
    /// Register the next request, scheduled at `scheduled`, and write its
    /// bytes (frame included) into `buf`; `false` if it cannot be sent now.
    fn begin(&mut self, scheduled: Instant, now: Instant, buf: &mut Vec<u8>) -> bool;
    /// Take bytes received: one datagram (UDP) or a piece of the stream
    /// (TCP). An error means the socket cannot go on.
    fn received(&mut self, bytes: &[u8], now: Instant) -> Result<(), String>;
    /// Count requests past their deadline as lost.
    fn expire(&mut self, now: Instant);
    /// Requests sent and neither answered nor lost.
    fn in_flight(&self) -> usize;
    fn core(&mut self) -> &mut Core;
    fn into_outcome(self) -> Outcome;
}

/// A UDP request id's state.
enum Slot {
    Free,
    Busy(Box<(Meta, Reassembly)>),
    /// Lost; free again from the instant given, so that a late reply is
    /// not taken for the next request with the same id.
    Expired(Instant),
}

/// Requests in flight on a UDP socket, by request id.
struct UdpFlight {
    core: Core,
    slots: Vec<Slot>,
    next_id: u16,
    busy: usize,
    /// (deadline, id, serial) in send order, so deadlines ascend.
    deadlines: VecDeque<(Instant, u16, u64)>,
}

impl UdpFlight {
    fn new(core: Core) -> UdpFlight {
        UdpFlight {
            core,
            slots: (0..=u16::MAX as usize).map(|_| Slot::Free).collect(),
            next_id: 0,
            busy: 0,
            deadlines: VecDeque::new(),
        }
    }

    /// The next id not in use, round robin (so an id is reused as late as
    /// possible).
    fn free_id(&mut self, now: Instant) -> Option<u16> {
        for _ in 0..=u16::MAX as u32 {
            let id = self.next_id;
            self.next_id = id.wrapping_add(1);
            match self.slots[id as usize] {
                Slot::Free => return Some(id),
                Slot::Expired(t) if t <= now => return Some(id),
                _ => {}
            }
        }
        None
    }
}

impl Flight for UdpFlight {
    fn begin(&mut self, scheduled: Instant, now: Instant, buf: &mut Vec<u8>) -> bool {
        let Some(id) = self.free_id(now) else {
            self.core.out.n.id_stalls += 1;
            return false;
        };
        buf.extend_from_slice(&udp_header(id, 0, 1));
        let m = self.core.make(scheduled, now, buf);
        self.deadlines.push_back((m.deadline, id, m.serial));
        self.slots[id as usize] = Slot::Busy(Box::new((m, Reassembly::default())));
        self.busy += 1;
        true
    }

    fn received(&mut self, d: &[u8], now: Instant) -> Result<(), String> {
        let n = &mut self.core.out.n;
        n.datagrams += 1;
        let Some((id, seq, total)) = parse_header(d) else {
            n.bad_datagrams += 1;
            return Ok(());
        };
        let slot = &mut self.slots[id as usize];
        let reply = match slot {
            Slot::Free => {
                n.unknown_datagrams += 1;
                return Ok(());
            }
            Slot::Expired(_) => {
                n.expired_datagrams += 1;
                return Ok(());
            }
            Slot::Busy(b) => {
                let (m, asm) = &mut **b;
                if asm.push(seq, total, &d[UDP_HEADER..]).is_err() {
                    n.bad_datagrams += 1;
                    return Ok(());
                }
                if !asm.settled() {
                    return Ok(());
                }
                match udp_reply(m.op.expect, asm.data()) {
                    Reply::Incomplete => return Ok(()),
                    r => (*m, r),
                }
            }
        };
        *slot = Slot::Free;
        self.busy -= 1;
        self.core.finish(&reply.0, reply.1, now);
        Ok(())
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(deadline, id, serial)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            let slot = &mut self.slots[id as usize];
            if matches!(slot, Slot::Busy(b) if b.0.serial == serial) {
                *slot = Slot::Expired(now + self.core.timeout);
                self.busy -= 1;
                self.core.out.n.lost += 1;
            }
        }
    }

    fn in_flight(&self) -> usize {
        self.busy
    }

    fn core(&mut self) -> &mut Core {
        &mut self.core
    }

    fn into_outcome(self) -> Outcome {
        self.core.out
    }
}

/// Requests in flight on a TCP connection: replies come in request order.
struct TcpFlight {
    core: Core,
    fifo: VecDeque<Meta>,
    /// The first `lost` requests of `fifo` are counted lost already (their
    /// deadlines passed, and deadlines ascend along the queue); a reply to
    /// one of them is late.
    lost: usize,
    rbuf: Vec<u8>,
}

impl TcpFlight {
    fn new(core: Core) -> TcpFlight {
        TcpFlight {
            core,
            fifo: VecDeque::new(),
            lost: 0,
            rbuf: Vec::new(),
        }
    }
}

impl Flight for TcpFlight {
    fn begin(&mut self, scheduled: Instant, now: Instant, buf: &mut Vec<u8>) -> bool {
        let m = self.core.make(scheduled, now, buf);
        self.fifo.push_back(m);
        true
    }

    fn received(&mut self, bytes: &[u8], now: Instant) -> Result<(), String> {
        self.rbuf.extend_from_slice(bytes);
        let mut pos = 0;
        let mut result = Ok(());
        while pos < self.rbuf.len() {
            let Some(m) = self.fifo.front().copied() else {
                result = Err("bytes received with no request outstanding".into());
                break;
            };
            let reply = parse_reply(m.op.expect, &self.rbuf[pos..]);
            let len = match reply {
                Reply::Incomplete => break,
                Reply::Done { len, .. } | Reply::Error { len } => len,
                Reply::Malformed => {
                    let end = (pos + 80).min(self.rbuf.len());
                    result = Err(format!(
                        "reply out of step with the requests: {:?}",
                        String::from_utf8_lossy(&self.rbuf[pos..end])
                    ));
                    break;
                }
            };
            pos += len;
            self.fifo.pop_front();
            if self.lost > 0 {
                self.lost -= 1;
                self.core.out.n.late_replies += 1;
            } else {
                self.core.finish(&m, reply, now);
            }
        }
        self.rbuf.drain(..pos);
        result
    }

    fn expire(&mut self, now: Instant) {
        while self.lost < self.fifo.len() && self.fifo[self.lost].deadline <= now {
            self.lost += 1;
            self.core.out.n.lost += 1;
        }
    }

    fn in_flight(&self) -> usize {
        self.fifo.len() - self.lost
    }

    fn core(&mut self) -> &mut Core {
        &mut self.core
    }

    fn into_outcome(self) -> Outcome {
        self.core.out
    }
}

// ---------------------------------------------------------------------------
// Sockets

/// A connected socket.
trait Io: AsFd {
    fn send(&self, bytes: &[u8]) -> io::Result<()>;
    /// Receive with the socket's short timeout; `Ok(0)` on TCP is the end
    /// of the stream.
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Receive what is there without waiting (`WouldBlock` if nothing).
    fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.as_fd().as_raw_fd();
        nix::sys::socket::recv(fd, buf, MsgFlags::MSG_DONTWAIT).map_err(io::Error::from)
    }
}

impl Io for UdpSocket {
    fn send(&self, bytes: &[u8]) -> io::Result<()> {
        UdpSocket::send(self, bytes).map(|_| ())
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        UdpSocket::recv(self, buf)
    }
}

impl Io for TcpStream {
    fn send(&self, bytes: &[u8]) -> io::Result<()> {
        (&mut &*self).write_all(bytes)
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&mut &*self).read(buf)
    }
}

/// The local address to bind: the loopback of the server's family.
fn local_for(host: IpAddr) -> SocketAddr {
    SocketAddr::new(host, 0)
}

fn udp_socket(host: IpAddr, port: u16, read_timeout: Duration) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let server = SocketAddr::new(host, port);
    let s = Socket::new(
        Domain::for_address(server),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    // Best effort: the kernel caps it at its own maximum.
    let _ = s.set_recv_buffer_size(UDP_RCVBUF);
    s.bind(&local_for(host).into())?;
    s.connect(&server.into())?;
    let s: UdpSocket = s.into();
    s.set_read_timeout(Some(read_timeout))?;
    Ok(s)
}

fn tcp_socket(host: IpAddr, port: u16, read_timeout: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&SocketAddr::new(host, port), Duration::from_secs(5))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(read_timeout))?;
    Ok(s)
}

/// Open loop: one thread sends request `k` at `start + k / rate`, over
/// socket `k % sockets`, whatever the replies do, until the end, and takes
/// every socket's replies, waiting in ppoll(2) until the next send is due
/// or a reply comes. One thread, so that sending and receiving never wait
/// for each other (or for a lock, or the scheduler) on the generator's own
/// core: what it measures is the server's delay.
fn run_open_loop<F: Flight, I: Io>(cfg: &Config, flights: &mut [F], ios: &[I], start: Instant) {
    // Wake up on time: the default timer slack (50 µs) would show as
    // latency, since latency runs from the scheduled instant.
    let _ = nix::sys::prctl::set_timerslack(1);
    let interval_ns = 1e9 / cfg.rate;
    let end = start + cfg.duration;
    let mut stopped = vec![false; ios.len()];
    let mut buf = vec![0u8; 65536];
    let mut req = Vec::new();
    let mut k: u64 = 0;
    let mut sending = true;
    loop {
        // Send what is due. A request that cannot go yet (no free UDP
        // request id) keeps its slot in the schedule and is tried again
        // 100 µs later, its lag growing.
        let mut retry = false;
        let mut next = end;
        while sending {
            let t = start + Duration::from_nanos((k as f64 * interval_ns) as u64);
            let now = Instant::now();
            if t >= end {
                sending = false;
                break;
            }
            if t > now {
                next = t;
                break;
            }
            let i = (k % ios.len() as u64) as usize;
            if !stopped[i] {
                req.clear();
                if !flights[i].begin(t, now, &mut req) {
                    retry = true;
                    break;
                }
                let lag = nanos(now.saturating_duration_since(t)).max(1);
                flights[i].core().out.lag.saturating_record(lag);
                if ios[i].send(&req).is_err() {
                    flights[i].core().out.n.socket_errors += 1;
                }
            }
            k += 1;
        }
        // Take every reply there is.
        for (i, io) in ios.iter().enumerate() {
            while !stopped[i] {
                let got = io.try_recv(&mut buf);
                match take(&mut flights[i], cfg.proto, got, &buf, Instant::now()) {
                    Got::More => {}
                    Got::Nothing => break,
                    Got::Failed => {
                        stopped[i] = true;
                        lose_in_flight(&mut flights[i]);
                    }
                }
            }
        }
        let now = Instant::now();
        let mut waiting = false;
        for (f, &stop) in flights.iter_mut().zip(&stopped) {
            if !stop {
                f.expire(now);
                waiting |= f.in_flight() > 0;
            }
        }
        if !sending && !waiting {
            break;
        }
        // Sleep until the next send, a retry, or (sending over) the next
        // look for expired requests; a reply wakes it sooner.
        let wait = if retry {
            Duration::from_micros(100)
        } else if sending {
            next.saturating_duration_since(now)
        } else {
            POLL
        };
        // A send due within SPIN comes sooner than a sleep and a wake-up
        // could deliver it on time: look at the sockets again instead.
        if sending && !retry && wait < SPIN {
            continue;
        }
        let mut fds: Vec<PollFd<'_>> = ios
            .iter()
            .zip(&stopped)
            .filter(|(_, &stop)| !stop)
            .map(|(io, _)| PollFd::new(io.as_fd(), PollFlags::POLLIN))
            .collect();
        match ppoll(&mut fds, Some(TimeSpec::from_duration(wait)), None) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                flights[0].core().out.failure = Some(format!("ppoll: {e}"));
                break;
            }
        }
    }
}

/// Closed loop on one socket: keep `cfg.outstanding` requests in flight
/// until the end, then wait for the last replies (or their timeouts).
fn run_closed_loop<F: Flight, I: Io>(cfg: &Config, mut f: F, io: &I, start: Instant) -> Outcome {
    let end = start + cfg.duration;
    let mut buf = vec![0u8; 65536];
    let mut req = Vec::new();
    loop {
        loop {
            let now = Instant::now();
            if now >= end || f.in_flight() >= cfg.outstanding as usize {
                break;
            }
            req.clear();
            if !f.begin(now, now, &mut req) {
                break;
            }
            if io.send(&req).is_err() {
                f.core().out.n.socket_errors += 1;
            }
        }
        let got = io.recv(&mut buf);
        let now = Instant::now();
        if let Got::Failed = take(&mut f, cfg.proto, got, &buf, now) {
            lose_in_flight(&mut f);
            break;
        }
        f.expire(now);
        if now >= end && f.in_flight() == 0 {
            break;
        }
    }
    f.into_outcome()
}

/// What one receive gave.
enum Got {
    /// Bytes (or a passing error): there may be more.
    More,
    /// Nothing there (or the receive timed out).
    Nothing,
    /// The socket cannot go on; the failure is recorded.
    Failed,
}

/// Hand a receive's result to the socket's flight.
fn take<F: Flight>(
    f: &mut F,
    proto: Proto,
    got: io::Result<usize>,
    buf: &[u8],
    now: Instant,
) -> Got {
    let failure = match got {
        Ok(0) if proto == Proto::Tcp => "the server closed the connection".to_string(),
        Ok(n) => match f.received(&buf[..n], now) {
            Ok(()) => return Got::More,
            Err(e) => e,
        },
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            return Got::Nothing
        }
        Err(e) if e.kind() == ErrorKind::Interrupted => return Got::More,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            // ICMP port unreachable on a connected UDP socket.
            f.core().out.n.socket_errors += 1;
            return Got::More;
        }
        Err(e) => format!("receive: {e}"),
    };
    f.core().out.failure = Some(failure);
    Got::Failed
}

/// A failed socket: what it has in flight is lost.
fn lose_in_flight<F: Flight>(f: &mut F) {
    let lost = f.in_flight() as u64;
    f.core().out.n.lost += lost;
}

// ---------------------------------------------------------------------------
// Preload

/// Set every key over UDP, a window at a time, resending sets that got no
/// reply.
fn preload_udp(cfg: &Config) -> Result<(), String> {
    const WINDOW: usize = 64;
    let sock = udp_socket(cfg.host, cfg.port, Duration::from_millis(20))
        .map_err(|e| format!("preload: UDP socket: {e}"))?;
    let refused = || format!("preload: nothing listens on UDP port {}", cfg.port);
    let value = value_bytes(cfg.value_size);
    let mut todo: Vec<u32> = (0..cfg.keys).collect();
    let mut next_id: u16 = 0;
    let mut buf = vec![0u8; 65536];
    for _round in 0..8 {
        if todo.is_empty() {
            return Ok(());
        }
        let mut again = Vec::new();
        for chunk in todo.chunks(WINDOW) {
            let mut waiting: Vec<(u16, u32, Reassembly)> = Vec::new();
            for &k in chunk {
                let id = next_id;
                next_id = next_id.wrapping_add(1);
                let mut d = udp_header(id, 0, 1).to_vec();
                set_request(&mut d, &cfg.prefix, k, &value);
                match sock.send(&d) {
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Err(refused()),
                    _ => {}
                }
                waiting.push((id, k, Reassembly::default()));
            }
            let deadline = Instant::now() + Duration::from_millis(500);
            while !waiting.is_empty() && Instant::now() < deadline {
                let n = match sock.recv(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Err(refused()),
                    Err(_) => continue,
                };
                let Some((id, seq, total)) = parse_header(&buf[..n]) else {
                    continue;
                };
                let Some(i) = waiting.iter().position(|w| w.0 == id) else {
                    continue;
                };
                let (_, key, asm) = &mut waiting[i];
                if asm.push(seq, total, &buf[UDP_HEADER..n]).is_err() || !asm.settled() {
                    continue;
                }
                match udp_reply(Expect::Storage, asm.data()) {
                    Reply::Incomplete => continue,
                    Reply::Done { .. } => {
                        waiting.swap_remove(i);
                    }
                    _ => {
                        return Err(format!(
                            "preload: set {}{}: {:?}",
                            cfg.prefix,
                            key,
                            String::from_utf8_lossy(asm.data()).trim_end()
                        ));
                    }
                }
            }
            if waiting.len() == chunk.len() {
                return Err(format!(
                    "preload: no reply to {} sets over UDP port {}",
                    chunk.len(),
                    cfg.port
                ));
            }
            again.extend(waiting.iter().map(|w| w.1));
        }
        todo = again;
    }
    if todo.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "preload: {} sets over UDP got no reply",
            todo.len()
        ))
    }
}

/// Set every key over TCP, pipelined a window at a time.
fn preload_tcp(cfg: &Config, port: u16) -> Result<(), String> {
    const WINDOW: u32 = 100;
    let mut s = tcp_socket(cfg.host, port, Duration::from_secs(5))
        .map_err(|e| format!("preload: connect to TCP port {port}: {e}"))?;
    let value = value_bytes(cfg.value_size);
    let mut req = Vec::new();
    let mut rbuf = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut k = 0;
    while k < cfg.keys {
        let n = WINDOW.min(cfg.keys - k);
        req.clear();
        for i in k..k + n {
            set_request(&mut req, &cfg.prefix, i, &value);
        }
        s.write_all(&req)
            .map_err(|e| format!("preload: write: {e}"))?;
        let mut answered = 0;
        while answered < n {
            match parse_reply(Expect::Storage, &rbuf) {
                Reply::Done { len, .. } => {
                    rbuf.drain(..len);
                    answered += 1;
                }
                Reply::Incomplete => {
                    let got = s
                        .read(&mut buf)
                        .map_err(|e| format!("preload: read: {e}"))?;
                    if got == 0 {
                        return Err("preload: the server closed the connection".into());
                    }
                    rbuf.extend_from_slice(&buf[..got]);
                }
                _ => {
                    let line = rbuf.split(|&b| b == b'\n').next().unwrap_or(&[]);
                    return Err(format!(
                        "preload: set: {:?}",
                        String::from_utf8_lossy(line).trim_end()
                    ));
                }
            }
        }
        k += n;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Report

/// The figures of a run, in µs for latencies.
struct Summary {
    n: Counters,
    ops_per_sec: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
    lag_p99: f64,
    lag_max: f64,
    failure: Option<String>,
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn summarize(cfg: &Config, o: &Outcome) -> Summary {
    let h = &o.latency;
    let q = |x: f64| {
        if h.is_empty() {
            0.0
        } else {
            us(h.value_at_quantile(x))
        }
    };
    let lag = |x: f64| {
        if o.lag.is_empty() {
            0.0
        } else {
            us(o.lag.value_at_quantile(x))
        }
    };
    Summary {
        n: o.n,
        ops_per_sec: o.n.completed as f64 / cfg.duration.as_secs_f64(),
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        p999: q(0.999),
        max: if h.is_empty() { 0.0 } else { us(h.max()) },
        lag_p99: lag(0.99),
        lag_max: if o.lag.is_empty() {
            0.0
        } else {
            us(o.lag.max())
        },
        failure: o.failure.clone(),
    }
}

fn human(cfg: &Config, s: &Summary) -> String {
    let mut t = String::new();
    let load = if cfg.rate > 0.0 {
        format!("open loop at {} req/s", cfg.rate)
    } else {
        format!("closed loop, {} in flight per socket", cfg.outstanding)
    };
    let what = match cfg.mode {
        Mode::MultiGet => format!("multiget of {} keys", cfg.multiget_keys),
        m => m.name().to_string(),
    };
    let _ = writeln!(
        t,
        "rmc-load: {what} over {} to {}, {} socket(s), {load}, {:.1} s; \
         {} keys of {} bytes",
        cfg.proto.name(),
        SocketAddr::new(cfg.host, cfg.port),
        cfg.sockets,
        cfg.duration.as_secs_f64(),
        cfg.keys,
        cfg.value_size
    );
    let n = &s.n;
    let _ = writeln!(
        t,
        "requests:   sent {}, completed {}, lost {} (timeout {} ms), errors {}",
        n.sent,
        n.completed,
        n.lost,
        cfg.timeout.as_millis(),
        n.errors
    );
    let _ = writeln!(
        t,
        "throughput: {:.1} req/s; values: hits {}, misses {}",
        s.ops_per_sec, n.hits, n.misses
    );
    let from = if cfg.rate > 0.0 {
        "scheduled send"
    } else {
        "send"
    };
    let _ = writeln!(
        t,
        "latency (µs, from {from} to whole reply): p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
        s.p50, s.p90, s.p99, s.p999, s.max
    );
    if cfg.proto == Proto::Udp {
        let _ = writeln!(
            t,
            "datagrams:  received {}, for unknown ids {}, for expired ids {}, malformed {}",
            n.datagrams, n.unknown_datagrams, n.expired_datagrams, n.bad_datagrams
        );
    } else if n.late_replies > 0 {
        let _ = writeln!(t, "late replies (after their timeout): {}", n.late_replies);
    }
    if cfg.rate > 0.0 {
        let _ = writeln!(
            t,
            "sender lag (µs, scheduled to actual send): p99 {:.1}  max {:.1}",
            s.lag_p99, s.lag_max
        );
    }
    if n.malformed + n.socket_errors + n.id_stalls > 0 {
        let _ = writeln!(
            t,
            "trouble:    malformed replies {}, socket errors {}, waits for a free request id {}",
            n.malformed, n.socket_errors, n.id_stalls
        );
    }
    if let Some(f) = &s.failure {
        let _ = writeln!(t, "failure:    {f}");
    }
    t
}

fn json(cfg: &Config, s: &Summary) -> String {
    let n = &s.n;
    format!(
        "{{\"proto\":\"{}\",\"mode\":\"{}\",\"rate\":{},\"sockets\":{},\"duration_s\":{},\
         \"ops_per_sec\":{:.1},\"p50_us\":{:.1},\"p90_us\":{:.1},\"p99_us\":{:.1},\
         \"p999_us\":{:.1},\"max_us\":{:.1},\"sent\":{},\"completed\":{},\"lost\":{},\
         \"errors\":{},\"hits\":{},\"misses\":{},\"datagrams\":{},\"unknown_datagrams\":{},\
         \"late_replies\":{}}}",
        cfg.proto.name(),
        cfg.mode.name(),
        cfg.rate,
        cfg.sockets,
        cfg.duration.as_secs_f64(),
        s.ops_per_sec,
        s.p50,
        s.p90,
        s.p99,
        s.p999,
        s.max,
        n.sent,
        n.completed,
        n.lost,
        n.errors,
        n.hits,
        n.misses,
        n.datagrams,
        n.unknown_datagrams + n.expired_datagrams,
        n.late_replies
    )
}

// ---------------------------------------------------------------------------

fn run(cfg: &Config) -> Result<Outcome, String> {
    if cfg.preload {
        match (cfg.preload_tcp, cfg.proto) {
            (Some(p), _) => preload_tcp(cfg, p)?,
            (None, Proto::Tcp) => preload_tcp(cfg, cfg.port)?,
            (None, Proto::Udp) => preload_udp(cfg)?,
        }
    }
    let mut total = Outcome::new();
    let outcomes = if cfg.rate > 0.0 {
        match cfg.proto {
            Proto::Udp => open_loop(cfg, UdpFlight::new, |c| {
                udp_socket(c.host, c.port, POLL).map_err(|e| format!("UDP socket: {e}"))
            })?,
            Proto::Tcp => open_loop(cfg, TcpFlight::new, |c| {
                tcp_socket(c.host, c.port, POLL)
                    .map_err(|e| format!("connect to TCP port {}: {e}", c.port))
            })?,
        }
    } else {
        let start = Instant::now() + Duration::from_millis(10);
        thread::scope(|scope| {
            let handles: Vec<_> = (0..cfg.sockets)
                .map(|i| {
                    scope.spawn(move || -> Result<Outcome, String> {
                        let core = Core::new(cfg, i as u64);
                        Ok(match cfg.proto {
                            Proto::Udp => {
                                let s = udp_socket(cfg.host, cfg.port, POLL)
                                    .map_err(|e| format!("UDP socket: {e}"))?;
                                run_closed_loop(cfg, UdpFlight::new(core), &s, start)
                            }
                            Proto::Tcp => {
                                let s = tcp_socket(cfg.host, cfg.port, POLL).map_err(|e| {
                                    format!("connect to TCP port {}: {e}", cfg.port)
                                })?;
                                run_closed_loop(cfg, TcpFlight::new(core), &s, start)
                            }
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("a socket thread panicked".into()))
                })
                .collect::<Result<Vec<Outcome>, String>>()
        })?
    };
    for o in &outcomes {
        total.merge(o);
    }
    Ok(total)
}

/// Open the sockets, then run the open loop over all of them in this thread.
fn open_loop<F: Flight, I: Io>(
    cfg: &Config,
    flight: impl Fn(Core) -> F,
    socket: impl Fn(&Config) -> Result<I, String>,
) -> Result<Vec<Outcome>, String> {
    let ios = (0..cfg.sockets)
        .map(|_| socket(cfg))
        .collect::<Result<Vec<I>, String>>()?;
    let mut flights: Vec<F> = (0..cfg.sockets)
        .map(|i| flight(Core::new(cfg, i as u64)))
        .collect();
    let start = Instant::now() + Duration::from_millis(10);
    run_open_loop(cfg, &mut flights, &ios, start);
    Ok(flights.into_iter().map(Flight::into_outcome).collect())
}

fn main() -> ExitCode {
    let cfg = match parse_args(std::env::args_os().skip(1)) {
        Ok(Some(cfg)) => cfg,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("rmc-load: {e}\nTry 'rmc-load --help'.");
            return ExitCode::from(2);
        }
    };
    let outcome = match run(&cfg) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rmc-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let s = summarize(&cfg, &outcome);
    print!("{}", human(&cfg, &s));
    if cfg.json {
        println!("{}", json(&cfg, &s));
    }
    if s.failure.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Option<Config>, String> {
        parse_args(s.split_whitespace())
    }

    #[test]
    fn retrieval_replies() {
        let r = Expect::Retrieval;
        assert_eq!(parse_reply(r, b""), Reply::Incomplete);
        assert_eq!(parse_reply(r, b"EN"), Reply::Incomplete);
        assert_eq!(
            parse_reply(r, b"END\r\n"),
            Reply::Done { len: 5, values: 0 }
        );
        let one = b"VALUE k 0 5\r\nhello\r\nEND\r\n";
        assert_eq!(
            parse_reply(r, one),
            Reply::Done {
                len: one.len(),
                values: 1
            }
        );
        // Cut anywhere short of the end: incomplete, never done.
        for cut in 0..one.len() {
            assert_eq!(
                parse_reply(r, &one[..cut]),
                Reply::Incomplete,
                "cut at {cut}"
            );
        }
        // Data that looks like the end is data.
        let tricky = b"VALUE k 0 5\r\nEND\r\n\r\nEND\r\n";
        assert_eq!(
            parse_reply(r, tricky),
            Reply::Done {
                len: tricky.len(),
                values: 1
            }
        );
        assert_eq!(parse_reply(r, &tricky[..18]), Reply::Incomplete);
        // With a cas field, several values, and what follows left alone.
        let two = b"VALUE a 1 1 7\r\nx\r\nVALUE b 0 2 8\r\nyy\r\nEND\r\nSTORED\r\n";
        assert_eq!(
            parse_reply(r, two),
            Reply::Done {
                len: two.len() - 8,
                values: 2
            }
        );
        assert_eq!(udp_reply(r, two), Reply::Malformed);
        assert_eq!(
            parse_reply(r, b"SERVER_ERROR out of memory\r\n"),
            Reply::Error { len: 28 }
        );
        assert_eq!(parse_reply(r, b"ERROR\r\n"), Reply::Error { len: 7 });
        assert_eq!(parse_reply(r, b"STORED\r\n"), Reply::Malformed);
        assert_eq!(parse_reply(r, b"VALUE k 0 x\r\n"), Reply::Malformed);
        assert_eq!(
            parse_reply(r, b"VALUE k 0 1\r\nab\r\nEND\r\n"),
            Reply::Malformed
        );
    }

    #[test]
    fn storage_replies() {
        let s = Expect::Storage;
        for line in ["STORED", "NOT_STORED", "EXISTS", "NOT_FOUND"] {
            let b = format!("{line}\r\n");
            assert_eq!(
                parse_reply(s, b.as_bytes()),
                Reply::Done {
                    len: b.len(),
                    values: 0
                }
            );
            assert_eq!(
                parse_reply(s, &b.as_bytes()[..b.len() - 1]),
                Reply::Incomplete
            );
        }
        assert_eq!(
            parse_reply(s, b"CLIENT_ERROR bad data chunk\r\n"),
            Reply::Error { len: 29 }
        );
        assert_eq!(parse_reply(s, b"END\r\n"), Reply::Malformed);
        assert_eq!(udp_reply(s, b"STORED\r\nSTORED\r\n"), Reply::Malformed);
        assert_eq!(
            udp_reply(s, b"STORED\r\n"),
            Reply::Done { len: 8, values: 0 }
        );
    }

    /// Cut `reply` into datagram payloads of at most `size` bytes.
    fn cut(reply: &[u8], size: usize) -> Vec<Vec<u8>> {
        reply.chunks(size).map(|c| c.to_vec()).collect()
    }

    /// A retrieval reply of `n` values of `len` bytes each, as the items
    /// and the closing `END`.
    fn reply_items(n: usize, len: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
        let items = (0..n)
            .map(|i| {
                let mut v = format!("VALUE key{i} 0 {len}\r\n").into_bytes();
                v.extend(value_bytes(len));
                v.extend_from_slice(b"\r\n");
                v
            })
            .collect();
        (items, b"END\r\n".to_vec())
    }

    #[test]
    fn one_message_per_request() {
        // rmemcached: the whole reply is one series numbered 0..n of n.
        let (items, end) = reply_items(10, 700);
        let whole = [items.concat(), end].concat();
        let parts = cut(&whole, 1392);
        let total = parts.len() as u16;
        assert!(total > 4);
        let mut a = Reassembly::default();
        for (i, p) in parts.iter().enumerate() {
            assert!(!a.settled() || i == 0);
            a.push(i as u16, total, p).unwrap();
            if i + 1 < parts.len() {
                assert!(!a.settled());
            }
        }
        assert!(a.settled());
        assert_eq!(a.data(), &whole[..]);
        assert_eq!(
            udp_reply(Expect::Retrieval, a.data()),
            Reply::Done {
                len: whole.len(),
                values: 10
            }
        );

        // A datagram lost: the series stays open, whatever follows.
        let mut a = Reassembly::default();
        for (i, p) in parts.iter().enumerate().filter(|(i, _)| *i != 2) {
            a.push(i as u16, total, p).unwrap();
        }
        assert!(!a.settled());
        assert!(a.data().is_empty());
    }

    #[test]
    fn one_message_per_key() {
        // memcached 1.6: each key's item is its own series, then END alone.
        let (items, end) = reply_items(4, 2000);
        let whole = [items.concat(), end.clone()].concat();
        let mut datagrams: Vec<(u16, u16, Vec<u8>)> = Vec::new();
        for item in &items {
            let parts = cut(item, 1392);
            let total = parts.len() as u16;
            assert_eq!(total, 2);
            for (i, p) in parts.into_iter().enumerate() {
                datagrams.push((i as u16, total, p));
            }
        }
        datagrams.push((0, 1, end));
        let mut a = Reassembly::default();
        for (n, (seq, total, p)) in datagrams.iter().enumerate() {
            a.push(*seq, *total, p).unwrap();
            let expect = if n + 1 == datagrams.len() {
                Reply::Done {
                    len: whole.len(),
                    values: 4,
                }
            } else if a.settled() {
                Reply::Incomplete
            } else {
                continue;
            };
            assert_eq!(udp_reply(Expect::Retrieval, a.data()), expect, "after {n}");
        }
        assert_eq!(a.data(), &whole[..]);

        // A datagram lost from key 1's series (either one): that series
        // stays open, key 2's datagrams are not stitched to it, and the
        // reply never looks whole.
        for lost in [2, 3] {
            let mut a = Reassembly::default();
            for (n, (seq, total, p)) in datagrams.iter().enumerate() {
                if n == lost {
                    continue;
                }
                a.push(*seq, *total, p).unwrap();
                if a.settled() {
                    assert_eq!(udp_reply(Expect::Retrieval, a.data()), Reply::Incomplete);
                }
            }
            assert!(!a.settled(), "lost {lost}");
            assert_eq!(a.data(), &items[0][..], "lost {lost}");
        }

        // Small values: every series has one datagram.
        let (items, end) = reply_items(3, 10);
        let mut a = Reassembly::default();
        for it in &items {
            a.push(0, 1, it).unwrap();
            assert!(a.settled());
            assert_eq!(udp_reply(Expect::Retrieval, a.data()), Reply::Incomplete);
        }
        a.push(0, 1, &end).unwrap();
        assert_eq!(
            udp_reply(Expect::Retrieval, a.data()),
            Reply::Done {
                len: a.data().len(),
                values: 3
            }
        );
    }

    #[test]
    fn bad_frames() {
        let mut a = Reassembly::default();
        assert_eq!(a.push(2, 2, b"x"), Err(BadFrame));
        assert_eq!(a.push(0, 0, b"x"), Err(BadFrame));
        assert!(a.settled());
        assert!(a.data().is_empty());
        assert_eq!(parse_header(&[0; 7]), None);
        assert_eq!(
            parse_header(&udp_header(0xabcd, 3, 7)),
            Some((0xabcd, 3, 7))
        );
    }

    #[test]
    fn udp_flight_matches_ids_and_counts_loss() {
        let cfg = args("--udp 1 --mode multiget --keys 8 --multiget-keys 2 --timeout 100")
            .unwrap()
            .unwrap();
        let mut f = UdpFlight::new(Core::new(&cfg, 0));
        let t0 = Instant::now();
        let mut reqs = Vec::new();
        for _ in 0..3 {
            let mut b = Vec::new();
            assert!(f.begin(t0, t0, &mut b));
            assert!(b[UDP_HEADER..].starts_with(b"get rmcload:"));
            reqs.push(parse_header(&b).unwrap().0);
        }
        assert_eq!(f.in_flight(), 3);
        // Request 1 answered in two series (memcached style).
        let (items, end) = reply_items(2, 3);
        let t1 = t0 + Duration::from_millis(5);
        let dgram = |id, seq, total, p: &[u8]| [&udp_header(id, seq, total)[..], p].concat();
        f.received(&dgram(reqs[1], 0, 1, &items[0]), t1).unwrap();
        f.received(&dgram(reqs[1], 0, 1, &items[1]), t1).unwrap();
        assert_eq!(f.in_flight(), 3);
        f.received(&dgram(reqs[1], 0, 1, &end), t1).unwrap();
        assert_eq!(f.in_flight(), 2);
        // A datagram for an id nobody waits for.
        f.received(&dgram(reqs[1], 0, 1, &end), t1).unwrap();
        // The others time out; a late reply is counted apart.
        f.expire(t0 + Duration::from_millis(100));
        assert_eq!(f.in_flight(), 0);
        f.received(&dgram(reqs[0], 0, 1, &end), t1).unwrap();
        let n = f.core.out.n;
        assert_eq!((n.sent, n.completed, n.lost), (3, 1, 2));
        assert_eq!((n.hits, n.misses), (2, 0));
        assert_eq!((n.unknown_datagrams, n.expired_datagrams), (1, 1));
        assert_eq!(f.core.out.latency.len(), 1);
        assert!(f.core.out.latency.max() >= 4_000_000);
        // Expired ids rest; a fresh id is handed out instead.
        let mut b = Vec::new();
        assert!(f.begin(t1, t1, &mut b));
        assert!(!reqs.contains(&parse_header(&b).unwrap().0));
    }

    #[test]
    fn tcp_flight_in_order_and_late() {
        let cfg = args("--tcp 1 --mode get --timeout 100").unwrap().unwrap();
        let mut f = TcpFlight::new(Core::new(&cfg, 0));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(f.begin(t0, t0, &mut Vec::new()));
        }
        f.received(b"VALUE k 0 1\r\na\r\nEN", t0).unwrap();
        assert_eq!(f.in_flight(), 3);
        f.received(b"D\r\n", t0).unwrap();
        assert_eq!(f.in_flight(), 2);
        f.expire(t0 + Duration::from_millis(100));
        assert_eq!(f.in_flight(), 0);
        f.received(b"END\r\n", t0).unwrap();
        let n = f.core.out.n;
        assert_eq!(
            (n.completed, n.lost, n.late_replies, n.hits, n.misses),
            (1, 2, 1, 1, 0)
        );
        assert!(f.received(b"STORED\r\n", t0).is_err());
    }

    #[test]
    fn options() {
        let c = args("--udp 11211 --mode multiget --keys 100 --multiget-keys 20 --rate 2000 --duration 1.5 --json")
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.proto, c.port, c.mode),
            (Proto::Udp, 11211, Mode::MultiGet)
        );
        assert_eq!(c.duration, Duration::from_millis(1500));
        assert!(c.json && c.rate == 2000.0);
        assert!(args("--help").unwrap().is_none());
        assert!(args("--mode get").is_err());
        assert!(args("--udp 1 --tcp 2").is_err());
        assert!(args("--udp 1 --mode multiget --keys 5 --multiget-keys 6").is_err());
        assert!(args("--udp 1 --value-size 70000").is_err());
        assert!(args("--udp 1 --value-size 70000 --no-preload").is_ok());
        assert!(args("--tcp 1 --value-size 70000").is_ok());
        for ok in ["127.0.0.1", "127.1.2.3", "::1", "localhost"] {
            assert!(args(&format!("--udp 1 --host {ok}")).is_ok(), "{ok}");
        }
        for bad in [
            "10.0.0.1",
            "0.0.0.0",
            "192.168.1.1",
            "::",
            "::ffff:127.0.0.1",
            "example.com",
        ] {
            let e = args(&format!("--udp 1 --host {bad}")).unwrap_err();
            assert!(e.contains("--host"), "{bad}: {e}");
        }
    }

    #[test]
    fn workload_requests() {
        let c = args("--udp 1 --mode mixed --keys 10 --value-size 3")
            .unwrap()
            .unwrap();
        let mut w = Workload::new(&c, 0);
        let (mut gets, mut sets) = (0, 0);
        for _ in 0..2000 {
            let mut b = Vec::new();
            let op = w.next(&mut b);
            match op.expect {
                Expect::Retrieval => {
                    gets += 1;
                    assert!(b.starts_with(b"get rmcload:") && b.ends_with(b"\r\n"));
                }
                Expect::Storage => {
                    sets += 1;
                    assert!(b.starts_with(b"set rmcload:") && b.ends_with(b" 0 0 3\r\nabc\r\n"));
                }
            }
        }
        assert!((1700..1900).contains(&gets), "{gets} gets, {sets} sets");
        let c = args("--udp 1 --mode multiget --keys 3 --multiget-keys 3")
            .unwrap()
            .unwrap();
        let mut b = Vec::new();
        Workload::new(&c, 1).next(&mut b);
        let mut keys: Vec<&[u8]> = b[4..b.len() - 2].split(|&x| x == b' ').collect();
        keys.sort();
        assert_eq!(keys, [&b"rmcload:0"[..], b"rmcload:1", b"rmcload:2"]);
    }
}
