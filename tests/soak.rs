//! Soak: many clients at once, over TCP, UDP and a unix socket, in the
//! ASCII, meta and binary protocols, for a fixed time, then a check that
//! nothing was lost and that the server's memory stayed flat.
//!
//! Two servers run: one on TCP and UDP, one on a unix socket (`-s` turns
//! the network off, as in memcached). Nine kinds of client: the `memcache`
//! crate in ASCII over TCP and the unix socket, and in binary over TCP, the
//! unix socket and UDP; the meta protocol by hand over all three; the
//! ASCII protocol by hand over UDP (the crate's ASCII `get` never sends its
//! request over UDP). Each does `set`, `get`, multi-gets (streams only),
//! `delete` and `incr` in a random mix, with values of 48 B to 100 KB, and
//! opens a new connection every 2,000 operations.
//!
//! * Every client owns its keys, so "the last acknowledged value" of a key
//!   is well defined: at the end every key holds exactly the value of its
//!   last acknowledged `set` (or is gone after an acknowledged `delete`).
//!   Each value carries its key and a version number, so a stale or
//!   misplaced value cannot pass for the right one. The cache is large
//!   enough (`-m 256`) that nothing is evicted, and the test checks that.
//! * All clients `incr` shared counters. The sum of the acknowledged
//!   increments must equal each counter's final value exactly. Over UDP a
//!   request whose reply never came is ambiguous (it may or may not have
//!   been applied): its increment is counted apart, and the counter must
//!   lie between the acknowledged sum and that sum plus the ambiguous ones.
//!   A UDP `set` or `delete` without a reply likewise leaves its key with
//!   two possible values; that key is written no more.
//! * The server's RSS (`VmRSS`) is sampled throughout. After the warm-up
//!   (the first fifth of the run, once every key has been written), the
//!   largest sample of the second half may exceed the largest of the first
//!   half by at most 10% (plus 1 MiB, for page-granular noise on a small
//!   process).
//!
//! Knobs (environment): `RMC_SOAK_SECS` (default 5), `RMC_SOAK_CLIENTS`
//! (clients of each of the nine kinds, default 1), `RMC_SOAK_BIN` (the
//! server binary; default the one cargo built, so
//! `RMC_SOAK_BIN=/usr/bin/memcached` soaks memcached itself).
//! `scripts/soak.sh [SECONDS]` runs it in release for longer.
mod common;

use common::Rng;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use memcache::MemcacheError;

/// Keys each client owns.
const KEYS: usize = 300;
/// Shared counters on each server.
const COUNTERS: usize = 4;
/// How long a UDP client waits for a reply before calling it lost.
const UDP_WAIT: Duration = Duration::from_secs(1);
/// How long a stream client waits for a reply before failing the test.
const STREAM_WAIT: Duration = Duration::from_secs(10);
/// A stream or UDP client reconnects (new socket) after this many ops.
const RECONNECT_EVERY: u64 = 2_000;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

// --- the servers ---------------------------------------------------------------

fn server_bin() -> String {
    std::env::var("RMC_SOAK_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_rmemcached").to_string())
}

const FLAGS: [&str; 4] = ["-t", "2", "-m", "256"];

/// A server on a unix socket only (`-s` turns TCP and UDP off, as in
/// memcached), started from any binary.
fn start_unix(bin: &str) -> common::Server {
    let path = std::env::temp_dir().join(format!("rmc-soak.{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut args = vec!["-s", path.to_str().unwrap(), "-u", "root"];
    args.extend_from_slice(&FLAGS);
    let child = Command::new(bin)
        .args(&args)
        .stdin(Stdio::null())
        .spawn()
        .expect("start server");
    let server = common::Server {
        child,
        port: 0,
        udp_port: 0,
        socket: Some(path.clone()),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(&path).is_err() {
        assert!(Instant::now() < deadline, "unix server did not start");
        thread::sleep(Duration::from_millis(20));
    }
    server
}

/// Which server a client talks to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    /// TCP and UDP.
    Net,
    /// The unix socket.
    Unix,
}

/// Where to reach the servers.
#[derive(Clone)]
struct Addrs {
    tcp: u16,
    udp: u16,
    unix: PathBuf,
}

// --- values --------------------------------------------------------------------

/// Sizes of values, by key; fixed per key so that the server's memory has
/// a steady state to reach. Over UDP a `set` must fit one datagram.
fn value_size(key: usize, udp: bool) -> usize {
    const SIZES: [usize; 8] = [48, 64, 100, 300, 700, 1_500, 4_000, 12_000];
    if !udp && key % 60 == 7 {
        return 100_000;
    }
    SIZES[key % SIZES.len()]
}

/// The value of version `v` of a key: its name and version, then filler.
fn make_value(key: &str, v: u64, size: usize) -> Vec<u8> {
    let mut out = format!("{key}#{v}#").into_bytes();
    let fill = b'a' + (v % 26) as u8;
    out.resize(size.max(out.len()), fill);
    out
}

// --- protocols -----------------------------------------------------------------

/// A request whose reply did not come (UDP only): it may or may not have
/// been applied.
#[derive(Debug)]
struct Lost;

type Res<T> = Result<T, Lost>;

/// What every client can do.
trait Proto {
    fn set(&mut self, key: &str, value: &[u8]) -> Res<()>;
    fn get(&mut self, key: &str) -> Res<Option<Vec<u8>>>;
    /// `incr` by `by`; the key exists.
    fn incr(&mut self, key: &str, by: u64) -> Res<()>;
    /// Whether the key was there.
    fn delete(&mut self, key: &str) -> Res<bool>;
    /// A multi-get, where the protocol has one.
    fn mget(&mut self, keys: &[String]) -> Option<Res<HashMap<String, Vec<u8>>>>;
    /// A new connection (or socket).
    fn reconnect(&mut self);
}

/// A buffered stream: TCP or unix.
struct Stream {
    r: BufReader<Box<dyn Read + Send>>,
    w: Box<dyn Write + Send>,
}

impl Stream {
    fn open(side: Side, addrs: &Addrs) -> Stream {
        match side {
            Side::Net => {
                let s = TcpStream::connect(("127.0.0.1", addrs.tcp)).unwrap();
                s.set_read_timeout(Some(STREAM_WAIT)).unwrap();
                s.set_nodelay(true).unwrap();
                Stream {
                    r: BufReader::new(Box::new(s.try_clone().unwrap())),
                    w: Box::new(s),
                }
            }
            Side::Unix => {
                let s = UnixStream::connect(&addrs.unix).unwrap();
                s.set_read_timeout(Some(STREAM_WAIT)).unwrap();
                Stream {
                    r: BufReader::new(Box::new(s.try_clone().unwrap())),
                    w: Box::new(s),
                }
            }
        }
    }

    fn send(&mut self, req: &[u8]) {
        self.w.write_all(req).unwrap();
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        assert!(l.ends_with("\r\n"), "reply line cut short: {l:?}");
        l.truncate(l.len() - 2);
        l
    }

    fn data(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len + 2];
        self.r.read_exact(&mut v).unwrap();
        assert!(v.ends_with(b"\r\n"), "data block not ended");
        v.truncate(len);
        v
    }
}

/// A reply's bytes, readable line by line (for UDP replies).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn line(&mut self) -> String {
        let nl = self
            .0
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or_else(|| panic!("no line in {}", common::show(self.0)));
        let l = String::from_utf8(self.0[..nl].to_vec()).unwrap();
        self.0 = &self.0[nl + 2..];
        l
    }

    fn data(&mut self, len: usize) -> Vec<u8> {
        assert_eq!(&self.0[len..len + 2], b"\r\n", "data block not ended");
        let v = self.0[..len].to_vec();
        self.0 = &self.0[len + 2..];
        v
    }
}

/// The reply lines of the text protocol, from a stream or a UDP message.
trait Lines {
    fn line(&mut self) -> String;
    fn data(&mut self, len: usize) -> Vec<u8>;
}

impl Lines for Stream {
    fn line(&mut self) -> String {
        Stream::line(self)
    }
    fn data(&mut self, len: usize) -> Vec<u8> {
        Stream::data(self, len)
    }
}

impl Lines for Bytes<'_> {
    fn line(&mut self) -> String {
        Bytes::line(self)
    }
    fn data(&mut self, len: usize) -> Vec<u8> {
        Bytes::data(self, len)
    }
}

/// `VALUE key flags len` blocks up to `END`.
fn text_values(r: &mut impl Lines) -> HashMap<String, Vec<u8>> {
    let mut out = HashMap::new();
    loop {
        let l = r.line();
        if l == "END" {
            return out;
        }
        let p: Vec<&str> = l.split(' ').collect();
        assert!(p.len() == 4 && p[0] == "VALUE", "unexpected {l:?}");
        let v = r.data(p[3].parse().unwrap());
        out.insert(p[1].to_string(), v);
    }
}

fn text_set(key: &str, value: &[u8]) -> Vec<u8> {
    let mut r = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
    r.extend_from_slice(value);
    r.extend_from_slice(b"\r\n");
    r
}

fn meta_set(key: &str, value: &[u8]) -> Vec<u8> {
    let mut r = format!("ms {key} {} T0\r\n", value.len()).into_bytes();
    r.extend_from_slice(value);
    r.extend_from_slice(b"\r\n");
    r
}

/// `mg key v`: `VA len` and the data, or `EN`.
fn meta_value(r: &mut impl Lines) -> Option<Vec<u8>> {
    let l = r.line();
    if l == "EN" {
        return None;
    }
    let len = l
        .strip_prefix("VA ")
        .unwrap_or_else(|| panic!("mg said {l:?}"));
    Some(r.data(len.split(' ').next().unwrap().parse().unwrap()))
}

fn expect_line(got: String, want: &str, what: &str) {
    assert_eq!(got, want, "{what}");
}

/// The meta protocol over a stream, by hand; its multi-get is a pipeline
/// of quiet `mg` ended by `mn`.
struct MetaStream {
    side: Side,
    addrs: Addrs,
    s: Stream,
}

impl Proto for MetaStream {
    fn set(&mut self, key: &str, value: &[u8]) -> Res<()> {
        self.s.send(&meta_set(key, value));
        expect_line(self.s.line(), "HD", key);
        Ok(())
    }
    fn get(&mut self, key: &str) -> Res<Option<Vec<u8>>> {
        self.s.send(format!("mg {key} v\r\n").as_bytes());
        Ok(meta_value(&mut self.s))
    }
    fn incr(&mut self, key: &str, by: u64) -> Res<()> {
        self.s.send(format!("ma {key} D{by}\r\n").as_bytes());
        expect_line(self.s.line(), "HD", key);
        Ok(())
    }
    fn delete(&mut self, key: &str) -> Res<bool> {
        self.s.send(format!("md {key}\r\n").as_bytes());
        match self.s.line().as_str() {
            "HD" => Ok(true),
            "NF" => Ok(false),
            other => panic!("md said {other:?}"),
        }
    }
    fn mget(&mut self, keys: &[String]) -> Option<Res<HashMap<String, Vec<u8>>>> {
        let mut req = String::new();
        for k in keys {
            req.push_str(&format!("mg {k} v k q\r\n"));
        }
        req.push_str("mn\r\n");
        self.s.send(req.as_bytes());
        let mut out = HashMap::new();
        loop {
            let l = self.s.line();
            if l == "MN" {
                return Some(Ok(out));
            }
            // VA <len> k<key>
            let p: Vec<&str> = l.split(' ').collect();
            assert!(p.len() == 3 && p[0] == "VA", "quiet mg said {l:?}");
            let key = p[2].strip_prefix('k').unwrap().to_string();
            let v = self.s.data(p[1].parse().unwrap());
            out.insert(key, v);
        }
    }
    fn reconnect(&mut self) {
        self.s = Stream::open(self.side, &self.addrs);
    }
}

/// The `memcache` crate, ASCII or binary, over TCP, a unix socket or UDP.
struct Crate {
    url: String,
    udp: bool,
    c: memcache::Client,
}

impl Crate {
    fn connect(url: &str) -> memcache::Client {
        let c = memcache::Client::connect(url).unwrap_or_else(|e| panic!("connect {url}: {e}"));
        let wait = if url.starts_with("memcache+udp") {
            UDP_WAIT
        } else {
            STREAM_WAIT
        };
        c.set_read_timeout(Some(wait)).unwrap();
        c
    }

    /// A failed call: over UDP the reply was lost (and the client gets a
    /// new socket and request id, so a late reply cannot be taken for the
    /// next one's); over a stream it fails the test.
    fn lost<T>(&mut self, what: &str, key: &str, e: MemcacheError) -> Res<T> {
        assert!(self.udp, "{}: {what} {key}: {e}", self.url);
        self.reconnect();
        Err(Lost)
    }
}

impl Proto for Crate {
    fn set(&mut self, key: &str, value: &[u8]) -> Res<()> {
        match self.c.set(key, value, 0) {
            Ok(()) => Ok(()),
            Err(e) => self.lost("set", key, e),
        }
    }
    fn get(&mut self, key: &str) -> Res<Option<Vec<u8>>> {
        match self.c.get::<Vec<u8>>(key) {
            Ok(v) => Ok(v),
            Err(e) => self.lost("get", key, e),
        }
    }
    fn incr(&mut self, key: &str, by: u64) -> Res<()> {
        match self.c.increment(key, by) {
            Ok(_) => Ok(()),
            Err(e) => self.lost("incr", key, e),
        }
    }
    fn delete(&mut self, key: &str) -> Res<bool> {
        match self.c.delete(key) {
            Ok(found) => Ok(found),
            Err(e) => self.lost("delete", key, e),
        }
    }
    fn mget(&mut self, keys: &[String]) -> Option<Res<HashMap<String, Vec<u8>>>> {
        // Over UDP the crate never sends its multi-get (see
        // tests/protocol/clients_binary.rs).
        if self.udp {
            return None;
        }
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        match self.c.gets::<Vec<u8>>(&refs) {
            Ok(m) => Some(Ok(m)),
            Err(e) => panic!("{}: multi-get: {e}", self.url),
        }
    }
    fn reconnect(&mut self) {
        self.c = Crate::connect(&self.url);
    }
}

/// Raw UDP, in the text or the meta protocol: one request datagram, one
/// reply message, a new request id each time.
struct RawUdp {
    port: u16,
    meta: bool,
    sock: UdpSocket,
    id: u16,
}

impl RawUdp {
    fn socket(port: u16) -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(UDP_WAIT)).unwrap();
        s
    }

    /// The whole reply message, or `Lost` if any of it did not come.
    fn call(&mut self, req: &[u8]) -> Res<Vec<u8>> {
        self.id = self.id.wrapping_add(1);
        let id = self.id;
        let mut d = common::udp_header(id, 0, 1).to_vec();
        d.extend_from_slice(req);
        self.sock.send(&d).unwrap();
        let deadline = Instant::now() + UDP_WAIT;
        let mut parts: Vec<Option<Vec<u8>>> = Vec::new();
        let mut got = 0;
        loop {
            if Instant::now() >= deadline {
                return Err(Lost);
            }
            let Some(g) = common::udp_recv(&self.sock) else {
                return Err(Lost);
            };
            if g.id != id {
                continue; // late: the reply to a request already given up
            }
            if parts.is_empty() {
                parts = vec![None; usize::from(g.total)];
            }
            assert!(g.payload.len() <= 1392, "datagram too long");
            if parts[usize::from(g.seq)].replace(g.payload).is_none() {
                got += 1;
            }
            if got == parts.len() {
                return Ok(parts
                    .into_iter()
                    .map(Option::unwrap)
                    .collect::<Vec<_>>()
                    .concat());
            }
        }
    }
}

impl Proto for RawUdp {
    fn set(&mut self, key: &str, value: &[u8]) -> Res<()> {
        let (req, want) = if self.meta {
            (meta_set(key, value), "HD")
        } else {
            (text_set(key, value), "STORED")
        };
        let r = self.call(&req)?;
        expect_line(Bytes(&r).line(), want, key);
        Ok(())
    }
    fn get(&mut self, key: &str) -> Res<Option<Vec<u8>>> {
        if self.meta {
            let r = self.call(format!("mg {key} v\r\n").as_bytes())?;
            Ok(meta_value(&mut Bytes(&r)))
        } else {
            let r = self.call(format!("get {key}\r\n").as_bytes())?;
            Ok(text_values(&mut Bytes(&r)).remove(key))
        }
    }
    fn incr(&mut self, key: &str, by: u64) -> Res<()> {
        if self.meta {
            let r = self.call(format!("ma {key} D{by}\r\n").as_bytes())?;
            expect_line(Bytes(&r).line(), "HD", key);
        } else {
            let r = self.call(format!("incr {key} {by}\r\n").as_bytes())?;
            let l = Bytes(&r).line();
            assert!(l.parse::<u64>().is_ok(), "incr said {l:?}");
        }
        Ok(())
    }
    fn delete(&mut self, key: &str) -> Res<bool> {
        let req = if self.meta {
            format!("md {key}\r\n")
        } else {
            format!("delete {key}\r\n")
        };
        let r = self.call(req.as_bytes())?;
        match Bytes(&r).line().as_str() {
            "HD" | "DELETED" => Ok(true),
            "NF" | "NOT_FOUND" => Ok(false),
            other => panic!("delete said {other:?}"),
        }
    }
    fn mget(&mut self, _keys: &[String]) -> Option<Res<HashMap<String, Vec<u8>>>> {
        // memcached 1.6 frames each key of a UDP multi-get as a message of
        // its own (see docs/ARCHITECTURE.md): leave multi-gets to streams,
        // so that the soak also runs against memcached.
        None
    }
    fn reconnect(&mut self) {
        self.sock = RawUdp::socket(self.port);
    }
}

// --- the clients ---------------------------------------------------------------

/// The nine kinds of client.
#[derive(Clone, Copy, Debug)]
enum Kind {
    TcpText,
    TcpMeta,
    TcpBinary,
    UnixText,
    UnixMeta,
    UnixBinary,
    UdpText,
    UdpMeta,
    UdpBinary,
}

const KINDS: [Kind; 9] = [
    Kind::TcpText,
    Kind::TcpMeta,
    Kind::TcpBinary,
    Kind::UnixText,
    Kind::UnixMeta,
    Kind::UnixBinary,
    Kind::UdpText,
    Kind::UdpMeta,
    Kind::UdpBinary,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::TcpText => "tcp-text",
            Kind::TcpMeta => "tcp-meta",
            Kind::TcpBinary => "tcp-binary",
            Kind::UnixText => "unix-text",
            Kind::UnixMeta => "unix-meta",
            Kind::UnixBinary => "unix-binary",
            Kind::UdpText => "udp-text",
            Kind::UdpMeta => "udp-meta",
            Kind::UdpBinary => "udp-binary",
        }
    }

    fn side(self) -> Side {
        match self {
            Kind::UnixText | Kind::UnixMeta | Kind::UnixBinary => Side::Unix,
            _ => Side::Net,
        }
    }

    fn udp(self) -> bool {
        matches!(self, Kind::UdpText | Kind::UdpMeta | Kind::UdpBinary)
    }

    fn client(self, addrs: &Addrs) -> Box<dyn Proto> {
        let side = self.side();
        let unix = addrs.unix.to_str().unwrap();
        let crate_url = |url: String| -> Box<dyn Proto> {
            Box::new(Crate {
                c: Crate::connect(&url),
                udp: url.starts_with("memcache+udp"),
                url,
            })
        };
        match self {
            Kind::TcpText => {
                crate_url(format!("memcache://127.0.0.1:{}?protocol=ascii", addrs.tcp))
            }
            Kind::UnixText => crate_url(format!("memcache+unix://{unix}?protocol=ascii")),
            Kind::TcpMeta | Kind::UnixMeta => Box::new(MetaStream {
                side,
                addrs: addrs.clone(),
                s: Stream::open(side, addrs),
            }),
            Kind::TcpBinary => crate_url(format!("memcache://127.0.0.1:{}", addrs.tcp)),
            Kind::UnixBinary => crate_url(format!("memcache+unix://{unix}")),
            Kind::UdpBinary => crate_url(format!("memcache+udp://127.0.0.1:{}", addrs.udp)),
            Kind::UdpText | Kind::UdpMeta => Box::new(RawUdp {
                port: addrs.udp,
                meta: matches!(self, Kind::UdpMeta),
                sock: RawUdp::socket(addrs.udp),
                id: 0,
            }),
        }
    }
}

/// What one client knows of one of its keys.
#[derive(Clone, Default)]
struct KeyState {
    /// The last acknowledged value (`None`: deleted or never set).
    value: Option<Vec<u8>>,
    /// After a lost reply: every value the key may hold. Such a key is
    /// read but never written again.
    maybe: Option<Vec<Option<Vec<u8>>>>,
    /// The version of the last value sent.
    version: u64,
}

impl KeyState {
    fn accepts(&self, got: &Option<Vec<u8>>) -> bool {
        match &self.maybe {
            Some(m) => m.contains(got),
            None => *got == self.value,
        }
    }
}

/// Counts per operation.
#[derive(Default, Clone, Debug)]
struct Tally {
    set: u64,
    get: u64,
    incr: u64,
    delete: u64,
    mget: u64,
    /// Requests without a reply (UDP).
    lost: u64,
    reconnects: u64,
}

impl Tally {
    fn ops(&self) -> u64 {
        self.set + self.get + self.incr + self.delete + self.mget
    }

    fn add(&mut self, o: &Tally) {
        self.set += o.set;
        self.get += o.get;
        self.incr += o.incr;
        self.delete += o.delete;
        self.mget += o.mget;
        self.lost += o.lost;
        self.reconnects += o.reconnects;
    }
}

/// Acknowledged and ambiguous increments of one counter.
#[derive(Default)]
struct Counter {
    acked: AtomicU64,
    ambiguous: AtomicU64,
}

/// One client's run: its keys' final state and its tally.
struct Done {
    kind: Kind,
    prefix: String,
    keys: Vec<KeyState>,
    tally: Tally,
}

fn key_name(prefix: &str, i: usize) -> String {
    format!("{prefix}:{i}")
}

fn counter_name(i: usize) -> String {
    format!("soak:ctr:{i}")
}

/// Write every key once (the warm-up), then mixed operations until
/// `stop`, checking each value read against what the client knows.
fn run_client(
    kind: Kind,
    n: usize,
    addrs: &Addrs,
    counters: &[Counter],
    warm: &std::sync::Barrier,
    stop: &AtomicBool,
) -> Done {
    let prefix = format!("{}.{n}", kind.name());
    let udp = kind.udp();
    let mut c = kind.client(addrs);
    let mut keys = vec![KeyState::default(); KEYS];
    let mut t = Tally::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((n as u64 + 1) << 32) ^ kind as u64);
    let lost = |t: &mut Tally| t.lost += 1;

    // A `set` of key i to its next version, keeping the books.
    let set = |c: &mut dyn Proto, t: &mut Tally, ks: &mut [KeyState], i: usize| {
        let k = &mut ks[i];
        k.version += 1;
        let name = key_name(&prefix, i);
        let v = make_value(&name, k.version, value_size(i, udp));
        t.set += 1;
        match c.set(&name, &v) {
            Ok(()) => k.value = Some(v),
            Err(Lost) => {
                t.lost += 1;
                k.maybe = Some(vec![k.value.take(), Some(v)]);
            }
        }
    };

    for i in 0..KEYS {
        set(&mut *c, &mut t, &mut keys, i);
    }
    warm.wait();

    let mut since_reconnect = 0;
    while !stop.load(Ordering::Relaxed) {
        let i = rng.below(KEYS as u64) as usize;
        let name = key_name(&prefix, i);
        let writable = keys[i].maybe.is_none();
        match rng.below(100) {
            0..=39 if writable => set(&mut *c, &mut t, &mut keys, i),
            40..=51 => {
                let ctr = rng.below(COUNTERS as u64) as usize;
                let by = 1 + rng.below(9);
                t.incr += 1;
                match c.incr(&counter_name(ctr), by) {
                    Ok(()) => counters[ctr].acked.fetch_add(by, Ordering::Relaxed),
                    Err(Lost) => {
                        lost(&mut t);
                        counters[ctr].ambiguous.fetch_add(by, Ordering::Relaxed)
                    }
                };
            }
            52..=55 if writable => {
                t.delete += 1;
                match c.delete(&name) {
                    Ok(found) => {
                        assert_eq!(found, keys[i].value.is_some(), "{name}: delete");
                        keys[i].value = None;
                    }
                    Err(Lost) => {
                        lost(&mut t);
                        keys[i].maybe = Some(vec![keys[i].value.take(), None]);
                    }
                }
            }
            56..=63 => {
                let picks: Vec<usize> = (0..6).map(|_| rng.below(KEYS as u64) as usize).collect();
                let names: Vec<String> = picks.iter().map(|&j| key_name(&prefix, j)).collect();
                match c.mget(&names) {
                    Some(Ok(m)) => {
                        t.mget += 1;
                        for (&j, nm) in picks.iter().zip(&names) {
                            let got = m.get(nm).cloned();
                            assert!(
                                keys[j].accepts(&got),
                                "{nm}: multi-get gave {:?}",
                                got.as_deref().map(common::show)
                            );
                        }
                    }
                    Some(Err(Lost)) => lost(&mut t),
                    None => {}
                }
            }
            _ => {
                t.get += 1;
                match c.get(&name) {
                    Ok(got) => assert!(
                        keys[i].accepts(&got),
                        "{name}: get gave {:?}, expected {:?}",
                        got.as_deref().map(common::show),
                        keys[i].value.as_deref().map(common::show)
                    ),
                    Err(Lost) => lost(&mut t),
                }
            }
        }
        since_reconnect += 1;
        if since_reconnect >= RECONNECT_EVERY {
            since_reconnect = 0;
            t.reconnects += 1;
            c.reconnect();
        }
    }
    Done {
        kind,
        prefix,
        keys,
        tally: t,
    }
}

// --- the check -----------------------------------------------------------------

/// Read `keys` back over a fresh text-protocol stream, in multi-gets of 50.
fn read_back(side: Side, addrs: &Addrs, keys: &[String]) -> HashMap<String, Vec<u8>> {
    let mut s = Stream::open(side, addrs);
    let mut out = HashMap::new();
    for chunk in keys.chunks(50) {
        s.send(format!("get {}\r\n", chunk.join(" ")).as_bytes());
        out.extend(text_values(&mut s));
    }
    out
}

/// One `stats` value over a fresh stream.
fn stat(side: Side, addrs: &Addrs, name: &str) -> u64 {
    let mut s = Stream::open(side, addrs);
    s.send(b"stats\r\n");
    let mut found = None;
    loop {
        let l = s.line();
        if l == "END" {
            break;
        }
        if let Some(v) = l.strip_prefix(&format!("STAT {name} ")) {
            found = Some(v.parse().unwrap());
        }
    }
    found.unwrap_or_else(|| panic!("no stat {name}"))
}

/// RSS samples: (seconds since start, kB of the net server, kB of the
/// unix server).
type Samples = Vec<(f64, u64, u64)>;

/// Whether a series is flat after warm-up: the largest sample of the
/// second half at most 10% (plus 1 MiB) above the largest of the first.
fn flat(series: &[u64]) -> (u64, u64, bool) {
    let (a, b) = series.split_at(series.len() / 2);
    let max1 = a.iter().copied().max().unwrap_or(0);
    let max2 = b.iter().copied().max().unwrap_or(0);
    (max1, max2, max2 <= max1 + max1 / 10 + 1024)
}

#[test]
fn soak_mixed_clients_lose_nothing_and_memory_stays_flat() {
    let secs = env_u64("RMC_SOAK_SECS", 5);
    let per_kind = env_u64("RMC_SOAK_CLIENTS", 1) as usize;
    let bin = server_bin();
    let mut net = common::start_with(&bin, &FLAGS);
    let mut unix = start_unix(&bin);
    let addrs = Addrs {
        tcp: net.port,
        udp: net.udp_port,
        unix: unix.socket.clone().unwrap(),
    };
    eprintln!(
        "soak: {bin}, {secs} s, {per_kind} client(s) of each of {} kinds, {} keys each",
        KINDS.len(),
        KEYS
    );

    // Shared counters on both servers, from 0.
    for side in [Side::Net, Side::Unix] {
        let mut s = Stream::open(side, &addrs);
        for i in 0..COUNTERS {
            s.send(&text_set(&counter_name(i), b"0"));
            assert_eq!(s.line(), "STORED");
        }
    }
    let counters: [Vec<Counter>; 2] = [
        (0..COUNTERS).map(|_| Counter::default()).collect(),
        (0..COUNTERS).map(|_| Counter::default()).collect(),
    ];
    let side_index = |s: Side| usize::from(s == Side::Unix);

    let clients: Vec<(Kind, usize)> = KINDS
        .iter()
        .flat_map(|&k| (0..per_kind).map(move |n| (k, n)))
        .collect();
    let stop = AtomicBool::new(false);
    let warm = std::sync::Barrier::new(clients.len() + 1);
    let samples: Mutex<Samples> = Mutex::new(Vec::new());
    let (net_pid, unix_pid) = (net.child.id(), unix.child.id());
    let mut elapsed = Duration::ZERO;
    let done: Vec<Done> = thread::scope(|s| {
        let handles: Vec<_> = clients
            .iter()
            .map(|&(kind, n)| {
                let (addrs, stop, warm) = (&addrs, &stop, &warm);
                let ctrs = &counters[side_index(kind.side())];
                thread::Builder::new()
                    .name(format!("{}.{n}", kind.name()))
                    .spawn_scoped(s, move || run_client(kind, n, addrs, ctrs, warm, stop))
                    .unwrap()
            })
            .collect();
        // Every key written once: the timed run starts.
        warm.wait();
        let started = Instant::now();
        let total = Duration::from_secs(secs);
        let every = (total / 40).max(Duration::from_millis(100));
        while started.elapsed() < total {
            thread::sleep(every.min(total.saturating_sub(started.elapsed())));
            samples.lock().unwrap().push((
                started.elapsed().as_secs_f64(),
                common::rss_kb(net_pid),
                common::rss_kb(unix_pid),
            ));
            if handles.iter().any(|h| h.is_finished()) {
                break; // a client failed: stop the others, report it
            }
        }
        stop.store(true, Ordering::Relaxed);
        elapsed = started.elapsed();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    assert!(
        net.child.try_wait().unwrap().is_none(),
        "TCP/UDP server exited"
    );
    assert!(
        unix.child.try_wait().unwrap().is_none(),
        "unix server exited"
    );

    // Every key holds its last acknowledged value.
    let mut checked = 0;
    let mut ambiguous_keys = 0;
    for d in &done {
        let names: Vec<String> = (0..KEYS).map(|i| key_name(&d.prefix, i)).collect();
        let mut got = read_back(d.kind.side(), &addrs, &names);
        for (i, k) in d.keys.iter().enumerate() {
            let v = got.remove(&names[i]);
            assert!(
                k.accepts(&v),
                "{}: holds {:?}, last acknowledged {:?}",
                names[i],
                v.as_deref().map(common::show),
                k.value.as_deref().map(common::show)
            );
            checked += 1;
            ambiguous_keys += usize::from(k.maybe.is_some());
        }
    }

    // Counters: exact, or within the ambiguous increments.
    for side in [Side::Net, Side::Unix] {
        let names: Vec<String> = (0..COUNTERS).map(counter_name).collect();
        let got = read_back(side, &addrs, &names);
        for (i, c) in counters[side_index(side)].iter().enumerate() {
            let v: u64 = String::from_utf8_lossy(&got[&names[i]])
                .trim_end()
                .parse()
                .unwrap();
            let acked = c.acked.load(Ordering::Relaxed);
            let maybe = c.ambiguous.load(Ordering::Relaxed);
            assert!(
                acked <= v && v <= acked + maybe,
                "{side:?} counter {i}: {v}, acknowledged increments {acked}, ambiguous {maybe}"
            );
        }
    }
    for side in [Side::Net, Side::Unix] {
        assert_eq!(stat(side, &addrs, "evictions"), 0, "{side:?}: evictions");
    }

    // The summary.
    let mut by_kind: Vec<(Kind, Tally)> = Vec::new();
    let mut all = Tally::default();
    for d in &done {
        match by_kind.iter_mut().find(|(k, _)| k.name() == d.kind.name()) {
            Some((_, t)) => t.add(&d.tally),
            None => by_kind.push((d.kind, d.tally.clone())),
        }
        all.add(&d.tally);
    }
    let secs_f = elapsed.as_secs_f64();
    eprintln!("soak: {:.1} s of mixed load after the warm-up", secs_f);
    eprintln!(
        "{:<12} {:>9} {:>9} {:>9} {:>8} {:>8} {:>6} {:>9}",
        "kind", "set", "get", "incr", "delete", "mget", "lost", "ops/s"
    );
    let row = |name: &str, t: &Tally| {
        eprintln!(
            "{:<12} {:>9} {:>9} {:>9} {:>8} {:>8} {:>6} {:>9.0}",
            name,
            t.set,
            t.get,
            t.incr,
            t.delete,
            t.mget,
            t.lost,
            t.ops() as f64 / secs_f
        )
    };
    for (k, t) in &by_kind {
        row(k.name(), t);
    }
    row("all", &all);
    let ctr_line = |side: Side| {
        counters[side_index(side)]
            .iter()
            .map(|c| c.acked.load(Ordering::Relaxed).to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    eprintln!(
        "keys checked {checked} ({ambiguous_keys} left ambiguous by a lost UDP reply); \
         counters exact: net [{}], unix [{}]; reconnects {}",
        ctr_line(Side::Net),
        ctr_line(Side::Unix),
        all.reconnects
    );

    // RSS: flat after warm-up.
    let samples = samples.into_inner().unwrap();
    let warm_s = secs_f / 5.0;
    let after: Vec<&(f64, u64, u64)> = samples.iter().filter(|s| s.0 >= warm_s).collect();
    let show = |v: &[u64]| {
        v.iter()
            .map(|x| (x / 1024).to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let net_rss: Vec<u64> = samples.iter().map(|s| s.1).collect();
    let unix_rss: Vec<u64> = samples.iter().map(|s| s.2).collect();
    eprintln!(
        "RSS MiB, every {:.2} s (warm-up: the first {warm_s:.1} s):\n  net:  {}\n  unix: {}",
        secs_f / samples.len().max(1) as f64,
        show(&net_rss),
        show(&unix_rss)
    );
    assert!(after.len() >= 4, "too few RSS samples: {}", after.len());
    for (name, series) in [
        ("net", after.iter().map(|s| s.1).collect::<Vec<_>>()),
        ("unix", after.iter().map(|s| s.2).collect::<Vec<_>>()),
    ] {
        let (max1, max2, ok) = flat(&series);
        eprintln!(
            "{name} server RSS after warm-up: first-half max {max1} kB, second-half max {max2} kB"
        );
        assert!(
            ok,
            "{name} server RSS grew: first-half max {max1} kB, second-half max {max2} kB"
        );
    }
    // Stream clients never lose a reply; UDP ones on loopback hardly ever.
    let udp_ops: u64 = done
        .iter()
        .filter(|d| d.kind.udp())
        .map(|d| d.tally.ops())
        .sum();
    assert!(
        all.lost * 100 <= udp_ops.max(100),
        "{} of {udp_ops} UDP requests lost",
        all.lost
    );
}
