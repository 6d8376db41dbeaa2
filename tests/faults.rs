//! Misbehaving clients and network faults: a client reset in the middle of
//! a value or of a large reply, a half-closed client, a client that never
//! reads, UDP replies to closed ports (ICMP port unreachable), UDP replies
//! to a client that does not read, and SIGTERM/SIGINT while a reply is in
//! flight.
//!
//! None of these may disturb anyone else: every test runs "bystander"
//! clients doing real `set`/`get` work on their own keys while the fault
//! happens, and asserts that each of their operations was answered
//! promptly (under [`PROMPT`]) and that everything they stored is still
//! there, with the last value they stored.
//!
//! All traffic is on loopback; every loop is bounded.
mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The longest a bystander's operation may take.
const PROMPT: Duration = Duration::from_secs(1);

/// How long a bystander waits for a reply before it calls it lost (longer
/// than [`PROMPT`], so that a slow reply is measured, not just failed).
const LOST: Duration = Duration::from_secs(10);

// --- helpers -------------------------------------------------------------------

/// The tests of this file take turns: each loads the two cores with its
/// fault, and a bystander's deadline should measure the server under that
/// fault, not under another test's.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every `stats` value, memcached's and this server's own (`stats
/// rmemcached`), read one after the other over a fresh TCP connection.
fn stats(server: &common::Server) -> HashMap<String, u64> {
    let mut s = server.tcp();
    let mut text = common::request(&mut s, b"stats\r\n", b"END\r\n");
    text.extend(common::request(&mut s, b"stats rmemcached\r\n", b"END\r\n"));
    String::from_utf8(text)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut p = l.strip_prefix("STAT ")?.splitn(2, ' ');
            Some((p.next()?.to_string(), p.next()?.parse().ok()?))
        })
        .collect()
}

/// One `stats` value.
fn stat(server: &common::Server, name: &str) -> u64 {
    *stats(server)
        .get(name)
        .unwrap_or_else(|| panic!("no stat {name}"))
}

/// One counter of `/proc/net/snmp` (`Udp`, `InErrors` say); these count
/// for the whole network namespace.
fn snmp(proto: &str, field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/net/snmp").unwrap();
    let prefix = format!("{proto}:");
    let mut rows = text.lines().filter(|l| l.starts_with(&prefix));
    let names = rows.next().unwrap();
    let values = rows.next().unwrap();
    let i = names
        .split_whitespace()
        .position(|n| n == field)
        .unwrap_or_else(|| panic!("no {proto} {field} in /proc/net/snmp"));
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

/// The server process is still running.
fn assert_alive(server: &mut common::Server) {
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited"
    );
}

/// Close with a TCP RST instead of a FIN (SO_LINGER 0, then close).
fn reset(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
}

/// Wait until the server's `curr_connections` is back to `expected`
/// (it has noticed and closed every faulty connection).
fn wait_connections(server: &common::Server, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = stat(server, "curr_connections");
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "curr_connections is {now}, expected {expected}: connections left open"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// A value as stored by `set` over a stream: the request bytes.
fn set_request(key: &str, value: &[u8]) -> Vec<u8> {
    let mut r = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
    r.extend_from_slice(value);
    r.extend_from_slice(b"\r\n");
    r
}

/// Store `value` under `key` over a new TCP connection.
fn store(server: &common::Server, key: &str, value: &[u8]) {
    let mut s = server.tcp();
    assert_eq!(
        common::request(&mut s, &set_request(key, value), b"\r\n"),
        b"STORED\r\n"
    );
}

/// `get key` over a new TCP connection: the value, or `None`.
fn fetch(server: &common::Server, key: &str) -> Option<Vec<u8>> {
    let mut s = server.tcp();
    s.write_all(format!("get {key}\r\n").as_bytes()).unwrap();
    read_get_reply(&mut s).remove(key)
}

/// Read one `get` reply (VALUE blocks then END) from a stream.
fn read_get_reply<S: Read>(s: &mut S) -> HashMap<String, Vec<u8>> {
    let mut out = HashMap::new();
    loop {
        let line = read_line(s);
        if line == "END" {
            return out;
        }
        let parts: Vec<&str> = line.split(' ').collect();
        assert!(
            parts.len() >= 4 && parts[0] == "VALUE",
            "unexpected line {line:?}"
        );
        let len: usize = parts[3].parse().unwrap();
        let data = common::read_exact(s, len + 2);
        assert!(data.ends_with(b"\r\n"), "value of {} not ended", parts[1]);
        out.insert(parts[1].to_string(), data[..len].to_vec());
    }
}

/// One line without its `\r\n` (byte by byte: replies are small here).
fn read_line<S: Read>(s: &mut S) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match s.read(&mut b) {
            Ok(1) => line.push(b[0]),
            Ok(_) => panic!("connection closed after {:?}", common::show(&line)),
            Err(e) => panic!("read failed after {:?}: {e}", common::show(&line)),
        }
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).unwrap()
}

// --- bystanders ----------------------------------------------------------------

/// How a bystander reaches the server.
#[derive(Clone)]
enum Via {
    Tcp(u16),
    Unix(PathBuf),
    Udp(u16),
}

/// What a bystander did.
#[derive(Debug)]
struct Report {
    name: String,
    /// Operations done (each `set` and each `get` counts one).
    ops: u64,
    /// The slowest operation, and its request's first line.
    slowest: Duration,
    slowest_op: String,
}

/// A client doing `set`/`get` on its own keys in a loop until stopped,
/// checking every value it reads against what it last stored; at the end
/// it reads every key back once more.
struct Bystander {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Report>,
}

/// Request/reply over one transport, with a deadline per operation.
trait Link {
    /// Send `req`, return the whole reply (which ends with `end`).
    fn call(&mut self, req: &[u8], end: &[u8]) -> Vec<u8>;
}

impl<S: Read + Write> Link for S {
    fn call(&mut self, req: &[u8], end: &[u8]) -> Vec<u8> {
        common::request(self, req, end)
    }
}

/// A UDP link: one request datagram, the whole reply message back.
struct UdpLink {
    sock: UdpSocket,
    id: u16,
}

impl UdpLink {
    fn call(&mut self, req: &[u8]) -> Vec<u8> {
        self.id = self.id.wrapping_add(1);
        let id = self.id;
        let mut d = common::udp_header(id, 0, 1).to_vec();
        d.extend_from_slice(req);
        self.sock.send(&d).unwrap();
        let mut parts: Vec<Option<Vec<u8>>> = Vec::new();
        let mut got = 0;
        loop {
            let Some(g) = common::udp_recv(&self.sock) else {
                panic!(
                    "UDP request {id} {:?} not answered within {:?}",
                    common::show(req),
                    self.sock.read_timeout().unwrap().unwrap()
                );
            };
            if g.id != id {
                continue; // a late reply to an earlier request
            }
            if parts.is_empty() {
                parts = vec![None; usize::from(g.total)];
            }
            if parts[usize::from(g.seq)].replace(g.payload).is_none() {
                got += 1;
            }
            if got == parts.len() {
                return parts
                    .into_iter()
                    .map(Option::unwrap)
                    .collect::<Vec<_>>()
                    .concat();
            }
        }
    }
}

impl Bystander {
    fn start(name: &str, via: Via) -> Bystander {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let name = name.to_string();
        let handle = thread::spawn(move || match via {
            Via::Tcp(port) => {
                let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(LOST)).unwrap();
                s.set_nodelay(true).unwrap();
                run_bystander(&name, &flag, s)
            }
            Via::Unix(path) => {
                let s = UnixStream::connect(path).unwrap();
                s.set_read_timeout(Some(LOST)).unwrap();
                run_bystander(&name, &flag, s)
            }
            Via::Udp(port) => {
                let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
                sock.connect(("127.0.0.1", port)).unwrap();
                sock.set_read_timeout(Some(LOST)).unwrap();
                let mut link = UdpLink { sock, id: 0 };
                run_bystander_with(&name, &flag, |req, _end| link.call(req))
            }
        });
        Bystander { stop, handle }
    }

    /// Stop, and return what it did.
    fn stop(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        let r = self.handle.join().expect("bystander failed");
        eprintln!(
            "bystander {}: {} ops, slowest {:?} ({})",
            r.name, r.ops, r.slowest, r.slowest_op
        );
        r
    }

    /// Stop, and check the report: it did work, and promptly.
    fn finish(self) -> Report {
        let r = self.stop();
        assert!(r.ops >= 20, "{}: only {} operations", r.name, r.ops);
        assert!(
            r.slowest < PROMPT,
            "{}: {} took {:?}",
            r.name,
            r.slowest_op,
            r.slowest
        );
        r
    }
}

fn run_bystander<S: Read + Write>(name: &str, stop: &AtomicBool, mut s: S) -> Report {
    run_bystander_with(name, stop, |req, end| s.call(req, end))
}

/// The bystander's loop over any transport.
fn run_bystander_with(
    name: &str,
    stop: &AtomicBool,
    mut call: impl FnMut(&[u8], &[u8]) -> Vec<u8>,
) -> Report {
    const KEYS: u64 = 40;
    let mut last: HashMap<String, Vec<u8>> = HashMap::new();
    let mut ops = 0;
    let mut slowest = Duration::ZERO;
    let mut slowest_op = String::new();
    let mut timed = |req: &[u8], end: &[u8]| {
        let t = Instant::now();
        let r = call(req, end);
        if t.elapsed() > slowest {
            slowest = t.elapsed();
            let line = req.split(|&b| b == b'\r').next().unwrap_or_default();
            slowest_op = String::from_utf8_lossy(line).into_owned();
        }
        r
    };
    fn get(timed: &mut impl FnMut(&[u8], &[u8]) -> Vec<u8>, key: &str) -> Option<Vec<u8>> {
        let r = timed(format!("get {key}\r\n").as_bytes(), b"END\r\n");
        read_get_reply(&mut &r[..]).remove(key)
    }
    let mut i = 0u64;
    // At least a few rounds even if stopped at once.
    while i < 10 || !stop.load(Ordering::Relaxed) {
        let key = format!("{name}:{}", i % KEYS);
        // Values of varied sizes, up to a few datagrams over UDP.
        let value = format!("{name}-{i}-{}", "x".repeat((i * 37 % 3000) as usize)).into_bytes();
        let r = timed(&set_request(&key, &value), b"\r\n");
        assert_eq!(r, b"STORED\r\n", "{name}: set {key}");
        last.insert(key.clone(), value);
        ops += 1;
        // Read back this key and an older one.
        for k in [key, format!("{name}:{}", i * 7 % KEYS)] {
            let got = get(&mut timed, &k);
            assert_eq!(got.as_ref(), last.get(&k), "{name}: get {k}");
            ops += 1;
        }
        i += 1;
        // Leave the CPU to the fault too (two cores).
        thread::sleep(Duration::from_millis(1));
    }
    // Everything stored is still there, with its last value.
    for (k, v) in &last {
        assert_eq!(get(&mut timed, k).as_ref(), Some(v), "{name}: final {k}");
    }
    Report {
        name: name.to_string(),
        ops,
        slowest,
        slowest_op,
    }
}

// --- resets --------------------------------------------------------------------

/// A client sends `set` with part of its 1000-byte value (or all of it but
/// the closing `\r\n`) and then resets the connection: the key is not
/// stored (memcached stores only whole values), the server stays up, closes
/// the connection, and the bystanders see nothing.
#[test]
fn reset_in_the_middle_of_a_value_stores_nothing() {
    let _serial = serial();
    let mut server = common::start_server(&["-t", "2"]);
    let base = stat(&server, "curr_connections");
    let tcp = Bystander::start("tcp", Via::Tcp(server.port));
    let udp = Bystander::start("udp", Via::Udp(server.udp_port));
    let value = vec![b'p'; 1000];
    // Cut after 0, 1, 500, 999 and 1000 bytes of the value, and after its
    // `\r` (1001: all but the final `\n`).
    let cuts = [0usize, 1, 500, 999, 1000, 1001];
    for round in 0..5 {
        for (c, &cut) in cuts.iter().enumerate() {
            let key = format!("partial{round}.{c}");
            let mut s = server.tcp();
            let mut req = format!("set {key} 0 0 1000\r\n").into_bytes();
            req.extend_from_slice(&value);
            req.extend_from_slice(b"\r\n");
            req.truncate(req.len() - 1002 + cut);
            s.write_all(&req).unwrap();
            // Let the server take the partial value into its buffer
            // (state nread) before the reset.
            thread::sleep(Duration::from_millis(5));
            reset(s);
        }
    }
    assert_alive(&mut server);
    for round in 0..5 {
        for c in 0..cuts.len() {
            let key = format!("partial{round}.{c}");
            assert_eq!(fetch(&server, &key), None, "{key} was stored");
        }
    }
    // A whole value on a fresh connection is stored as usual.
    store(&server, "whole", &value);
    assert_eq!(fetch(&server, "whole").as_deref(), Some(&value[..]));
    tcp.finish();
    udp.finish();
    wait_connections(&server, base);
    assert_alive(&mut server);
}

/// A client asks for a 20 MB reply (a 500 KB value 40 times, in one
/// multi-get and as 40 pipelined gets) and resets the connection right
/// after sending, or after reading a little of the reply: the server is
/// writing into a reset socket (EPIPE/ECONNRESET, never a SIGPIPE that
/// kills it), drops that connection and serves everyone else.
#[test]
fn reset_during_a_large_reply_kills_nothing() {
    let _serial = serial();
    let mut server = common::start_server(&["-t", "2"]);
    let base = stat(&server, "curr_connections");
    let big = vec![b'B'; 500_000];
    store(&server, "big", &big);
    let tcp = Bystander::start("tcp", Via::Tcp(server.port));
    let udp = Bystander::start("udp", Via::Udp(server.udp_port));
    let multi = format!("get{}\r\n", " big".repeat(40));
    let pipelined = "get big\r\n".repeat(40);
    for round in 0..20 {
        let mut s = server.tcp();
        let req = if round % 2 == 0 { &multi } else { &pipelined };
        s.write_all(req.as_bytes()).unwrap();
        // Reset at once, or after part of the reply (each way for each
        // kind of request).
        let read_first = [0usize, 1, 100_000, 3_000_000][round / 2 % 4];
        if read_first > 0 {
            common::read_exact(&mut s, read_first);
        }
        reset(s);
    }
    assert_alive(&mut server);
    assert_eq!(fetch(&server, "big").as_deref(), Some(&big[..]));
    tcp.finish();
    udp.finish();
    wait_connections(&server, base);
    assert_alive(&mut server);
}

/// The same over a unix socket, where a peer that goes away gives the
/// writer EPIPE (and SIGPIPE, where not ignored) rather than a reset.
#[test]
fn unix_client_gone_during_a_large_reply_kills_nothing() {
    let _serial = serial();
    let mut server = common::start_unix_server(&["-t", "2"]);
    let path = server.socket.clone().unwrap();
    let big = vec![b'U'; 500_000];
    {
        let mut s = server.unix();
        assert_eq!(
            common::request(&mut s, &set_request("big", &big), b"\r\n"),
            b"STORED\r\n"
        );
    }
    let by = Bystander::start("unix", Via::Unix(path));
    let multi = format!("get{}\r\n", " big".repeat(40));
    for round in 0..20 {
        let mut s = server.unix();
        s.write_all(multi.as_bytes()).unwrap();
        let read_first = [0usize, 1, 100_000, 3_000_000][round % 4];
        if read_first > 0 {
            common::read_exact(&mut s, read_first);
        }
        drop(s);
    }
    assert_alive(&mut server);
    let mut s = server.unix();
    s.write_all(b"get big\r\n").unwrap();
    assert_eq!(
        read_get_reply(&mut s).remove("big").as_deref(),
        Some(&big[..])
    );
    by.finish();
    assert_alive(&mut server);
}

// --- half-close ----------------------------------------------------------------

/// Read until EOF, within `limit`: `Ok(bytes)` at EOF, `Err(bytes)` if the
/// connection was still open at the limit.
fn read_to_eof(s: &mut TcpStream, limit: Duration) -> Result<Vec<u8>, Vec<u8>> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(out);
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(out)
            }
            Err(e) => panic!("read failed after {} bytes: {e}", out.len()),
        }
    }
}

/// Requests a half-closing client sends, with the exact replies.
fn half_close_cases(big: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut big_reply = Vec::new();
    for _ in 0..3 {
        big_reply.extend_from_slice(format!("VALUE big 0 {}\r\n", big.len()).as_bytes());
        big_reply.extend_from_slice(big);
        big_reply.extend_from_slice(b"\r\n");
    }
    big_reply.extend_from_slice(b"END\r\n");
    vec![
        // Complete requests.
        (
            b"set h 0 0 1\r\nx\r\nget h\r\nget h h\r\n".to_vec(),
            b"STORED\r\nVALUE h 0 1\r\nx\r\nEND\r\nVALUE h 0 1\r\nx\r\nVALUE h 0 1\r\nx\r\nEND\r\n"
                .to_vec(),
        ),
        // A reply of 1.5 MB, larger than the socket buffers: the server
        // goes on writing after the client's FIN.
        (b"get big big big\r\n".to_vec(), big_reply),
        // A complete request, then a value cut short by the FIN: the
        // complete one is answered, the cut one is dropped.
        (
            b"get h\r\nset cut 0 0 10\r\nabc".to_vec(),
            b"VALUE h 0 1\r\nx\r\nEND\r\n".to_vec(),
        ),
        // A command line cut short by the FIN.
        (
            b"get h\r\nget h".to_vec(),
            b"VALUE h 0 1\r\nx\r\nEND\r\n".to_vec(),
        ),
    ]
}

/// A client that sends its requests and then shuts down its write side
/// (`shutdown(SHUT_WR)`, a FIN) while still reading gets every reply, in
/// full, as memcached answers it.
fn half_closed_client_gets_every_reply(server: &common::Server) {
    let big = vec![b'b'; 500_000];
    store(server, "big", &big);
    for (req, want) in half_close_cases(&big) {
        for _ in 0..10 {
            let mut s = server.tcp();
            s.write_all(&req).unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let got = common::read_exact(&mut s, want.len());
            assert!(
                got == want,
                "request {}: got {}",
                common::show(&req),
                common::show(&got)
            );
            // Nothing more: EOF, or (see the test below) a connection
            // left open.
            let more = read_to_eof(&mut s, Duration::from_millis(50)).unwrap_or_else(|m| m);
            assert!(
                more.is_empty(),
                "request {}: then {}",
                common::show(&req),
                common::show(&more)
            );
        }
    }
    assert_eq!(fetch(server, "cut"), None);
}

#[test]
fn half_closed_client_gets_every_reply_rmemcached() {
    let _serial = serial();
    let server = common::start_server(&[]);
    let by = Bystander::start("tcp", Via::Tcp(server.port));
    half_closed_client_gets_every_reply(&server);
    by.finish();
}

#[test]
fn half_closed_client_gets_every_reply_memcached() {
    let _serial = serial();
    half_closed_client_gets_every_reply(&common::start_with("/usr/bin/memcached", &[]));
}

/// After the replies, the server closes a half-closed connection (the
/// client reads EOF): memcached reads the FIN as the end of the
/// connection. Two ways in: the requests and the FIN in one segment
/// (TCP_CORK holds the data until `shutdown` adds the FIN to it) on a
/// connection the server is already watching, which is deterministic; and
/// 300 ordinary half-closes, where the FIN sometimes arrives with the data.
/// Every connection gets its replies first; then all of them must reach
/// EOF within 2 s.
fn half_closed_connection_is_closed_after_its_replies(server: &common::Server) {
    let want: &[u8] = b"END\r\nEND\r\n";
    let mut open = Vec::new();
    for i in 0..320 {
        let corked = i < 20;
        let mut s = server.tcp();
        if corked {
            // A round trip first: the server is watching the connection.
            assert_eq!(
                common::request(&mut s, b"version\r\n", b"\r\n"),
                b"VERSION 1.6.18\r\n"
            );
            socket2::SockRef::from(&s).set_cork(true).unwrap();
        }
        s.write_all(b"get nothere\r\nget nothere\r\n").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(
            common::read_exact(&mut s, want.len()),
            want,
            "connection {i}"
        );
        open.push((i, corked, s));
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut hung = Vec::new();
    for (i, corked, mut s) in open {
        let left = deadline.saturating_duration_since(Instant::now());
        match read_to_eof(&mut s, left.max(Duration::from_millis(10))) {
            Ok(more) => assert!(more.is_empty(), "connection {i}: {}", common::show(&more)),
            Err(more) => {
                assert!(more.is_empty(), "connection {i}: {}", common::show(&more));
                hung.push((i, corked));
            }
        }
    }
    assert!(
        hung.is_empty(),
        "{} half-closed connections got their replies but were never closed \
         (index, corked): {hung:?}",
        hung.len()
    );
}

#[test]
fn half_closed_connection_is_closed_after_its_replies_rmemcached() {
    let _serial = serial();
    let server = common::start_server(&["-t", "2"]);
    let by = Bystander::start("tcp", Via::Tcp(server.port));
    half_closed_connection_is_closed_after_its_replies(&server);
    by.finish();
}

#[test]
fn half_closed_connection_is_closed_after_its_replies_memcached() {
    let _serial = serial();
    half_closed_connection_is_closed_after_its_replies(&common::start_with(
        "/usr/bin/memcached",
        &["-t", "2"],
    ));
}

// --- slow reader -----------------------------------------------------------------

/// Bytes waiting unread in a socket's receive queue (FIONREAD).
fn unread_bytes(s: &TcpStream) -> usize {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which is valid.
    let rc = unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD");
    n as usize
}

/// Two clients ask for 50 MB each (a 500 KB value 100 times, as 100
/// pipelined gets and as one multi-get) and read nothing, so the server's
/// send buffers fill. On a single worker thread, the bystanders sharing
/// that thread are still served promptly, the server's memory stays far
/// below the replies' size, and when the slow readers finally read, every
/// byte of their replies arrives.
fn slow_reader(bin: Option<&str>) -> (u64, u64) {
    let mut server = match bin {
        Some(b) => common::start_with(b, &["-t", "1", "-m", "64"]),
        None => common::start_server(&["-t", "1", "-m", "64"]),
    };
    const COPIES: usize = 100;
    let big = vec![b'S'; 500_000];
    store(&server, "big", &big);
    let before = common::rss_kb(server.child.id());
    let tcp = Bystander::start("tcp", Via::Tcp(server.port));
    let udp = Bystander::start("udp", Via::Udp(server.udp_port));

    let mut pipelined = server.tcp();
    pipelined
        .write_all("get big\r\n".repeat(COPIES).as_bytes())
        .unwrap();
    let mut multi = server.tcp();
    multi
        .write_all(format!("get{}\r\n", " big".repeat(COPIES)).as_bytes())
        .unwrap();
    // Let the server run against the full buffers for a while.
    for _ in 0..10 {
        thread::sleep(Duration::from_millis(100));
        assert_alive(&mut server);
    }
    let peak = common::peak_rss_kb(server.child.id());
    let queued = (unread_bytes(&pipelined), unread_bytes(&multi));
    eprintln!(
        "slow readers: {} kB and {} kB unread of {} kB each; server RSS {before} kB, peak since start {peak} kB",
        queued.0 / 1024,
        queued.1 / 1024,
        COPIES * big.len() / 1024
    );
    assert!(
        queued.0 < COPIES * big.len() / 2 && queued.1 < COPIES * big.len() / 2,
        "the replies were not held up: {queued:?} bytes unread"
    );
    tcp.finish();
    udp.finish();

    // Now read everything: nothing was lost or reordered.
    let header = format!("VALUE big 0 {}\r\n", big.len()).into_bytes();
    for (s, ends) in [(&mut pipelined, COPIES), (&mut multi, 1)] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut value = vec![0u8; header.len() + big.len() + 2];
        let mut values = 0;
        let mut ended = 0;
        while ended < ends {
            s.read_exact(&mut value[..5]).unwrap();
            if &value[..5] == b"END\r\n" {
                ended += 1;
                continue;
            }
            s.read_exact(&mut value[5..]).unwrap();
            assert!(value.starts_with(&header), "value {values}: header");
            assert!(value[header.len()..header.len() + big.len()] == big[..]);
            assert!(value.ends_with(b"\r\n"));
            values += 1;
        }
        assert_eq!(values, COPIES);
    }
    assert_alive(&mut server);
    (before, peak)
}

#[test]
fn slow_reader_does_not_hold_up_others_or_grow_memory() {
    let _serial = serial();
    let (before, peak) = slow_reader(None);
    assert!(
        peak < before + 48 * 1024,
        "RSS grew from {before} kB to {peak} kB behind two slow readers"
    );
}

/// The same against memcached 1.6.18, for its figures (it bounds its
/// memory too: its replies point into the item).
#[test]
fn slow_reader_does_not_hold_up_others_or_grow_memory_memcached() {
    let _serial = serial();
    let (before, peak) = slow_reader(Some("/usr/bin/memcached"));
    assert!(
        peak < before + 48 * 1024,
        "memcached: RSS grew from {before} kB to {peak} kB"
    );
}

// --- UDP -----------------------------------------------------------------------

/// 300 UDP requests, each from a socket closed right after sending, so the
/// server's replies (one datagram, or three) go to closed ports and come
/// back as ICMP port unreachable. The server, whose UDP socket is not
/// connected (so Linux does not report those errors to it), goes on
/// serving UDP and TCP: the bystanders see nothing, and every request it
/// received was answered (`udp_requests` = `udp_replies`).
#[test]
fn udp_replies_to_closed_ports_disturb_no_one() {
    let _serial = serial();
    let mut server = common::start_server(&["-t", "2"]);
    store(&server, "small", b"v");
    store(&server, "mid", &vec![b'm'; 3000]);
    let tcp = Bystander::start("tcp", Via::Tcp(server.port));
    let udp = Bystander::start("udp", Via::Udp(server.udp_port));
    let requests = stat(&server, "udp_requests");
    let icmp_out = snmp("Icmp", "OutDestUnreachs");
    const N: u64 = 300;
    for i in 0..N {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.connect(("127.0.0.1", server.udp_port)).unwrap();
        let key = if i % 2 == 0 { "small" } else { "mid" };
        let mut d = common::udp_header(i as u16, 0, 1).to_vec();
        d.extend_from_slice(format!("get {key}\r\n").as_bytes());
        s.send(&d).unwrap();
        drop(s);
        if i % 50 == 0 {
            assert_alive(&mut server);
        }
    }
    tcp.finish();
    udp.finish();
    // Every request the server received was answered (into a closed port,
    // but for the bystander's), and the kernel said so with ICMP. The
    // server's only UDP traffic is this test's, so its totals compare.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut asked, mut answered) = (0, 0);
    let mut still = Instant::now();
    loop {
        let st = stats(&server);
        if (st["udp_requests"], st["udp_replies"]) != (asked, answered) {
            still = Instant::now();
        }
        (asked, answered) = (st["udp_requests"], st["udp_replies"]);
        // All there, or (a datagram may be dropped at a full socket
        // buffer on a busy machine) nothing more for half a second.
        let settled = asked >= requests + N || still.elapsed() > Duration::from_millis(500);
        if (answered == asked && settled) || Instant::now() >= deadline {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let icmp = snmp("Icmp", "OutDestUnreachs").saturating_sub(icmp_out);
    eprintln!(
        "{N} requests from sockets closed at once; the server received {} UDP requests \
         (the bystander's too; {asked} since it started) and answered {answered} in all; \
         ICMP destination unreachable sent: {icmp}",
        asked - requests
    );
    assert_eq!(answered, asked, "requests received but not answered");
    assert!(
        icmp >= N / 2,
        "only {icmp} ICMP port unreachable seen: fault not provoked"
    );
    assert_alive(&mut server);
}

/// What [`udp_flood`] saw.
struct Flood {
    tcp: Report,
    udp: Report,
    /// Peak RSS growth, kB.
    grown_kb: u64,
}

/// UDP replies to a client that does not read: `n` multi-gets from one
/// socket with the smallest receive buffer the kernel allows, each
/// answered with 4 MB (2,900 datagrams). On loopback the kernel hands each
/// datagram straight to the receiving socket and drops it there when that
/// is full (`RcvbufErrors`), so the server's `sendmmsg` does not meet
/// EAGAIN (the namespace's `SndbufErrors` are printed to show whether it
/// did). The server sends every reply, within bounded memory, and answers
/// the slow socket once it reads; the bystanders' reports are returned.
fn udp_flood(bin: Option<&str>, n: u64) -> Flood {
    let flags = ["-t", "2", "-m", "64"];
    let mut server = match bin {
        Some(b) => common::start_with(b, &flags),
        None => common::start_server(&flags),
    };
    let value = vec![b'q'; 100_000];
    for k in 0..40 {
        store(&server, &format!("q{k}"), &value);
    }
    let tcp = Bystander::start("tcp", Via::Tcp(server.port));
    let udp = Bystander::start("udp", Via::Udp(server.udp_port));
    let before = common::rss_kb(server.child.id());
    let snd0 = snmp("Udp", "SndbufErrors");
    let rcv0 = snmp("Udp", "RcvbufErrors");
    let written = stat(&server, "bytes_written");

    let slow = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket2::SockRef::from(&slow)
        .set_recv_buffer_size(1)
        .unwrap();
    slow.connect(("127.0.0.1", server.udp_port)).unwrap();
    let keys: String = (0..40).map(|k| format!(" q{k}")).collect();
    let started = Instant::now();
    for i in 0..n {
        let mut d = common::udp_header(i as u16, 0, 1).to_vec();
        d.extend_from_slice(format!("get{keys}\r\n").as_bytes());
        slow.send(&d).unwrap();
    }
    // Wait until every reply's datagrams are sent (the bystanders' bytes
    // count too, so this is a lower bound).
    let reply_bytes = 40 * (value.len() + 20) as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while stat(&server, "bytes_written") < written + n * reply_bytes {
        assert!(Instant::now() < deadline, "replies not sent within 30 s");
        thread::sleep(Duration::from_millis(20));
    }
    let peak = common::peak_rss_kb(server.child.id());
    let took = started.elapsed();
    let sent = stat(&server, "bytes_written") - written;
    let snd = snmp("Udp", "SndbufErrors") - snd0;
    let rcv = snmp("Udp", "RcvbufErrors") - rcv0;
    eprintln!(
        "UDP flood of a non-reading socket: {n} requests, {} MB sent in {took:?}; \
         SndbufErrors +{snd} (EAGAIN), RcvbufErrors +{rcv} (dropped at the client); \
         server RSS {before} kB, peak since start {peak} kB",
        sent / 1_000_000
    );
    assert!(
        rcv > 0,
        "no datagram was dropped at the client: fault not provoked"
    );
    let tcp = tcp.stop();
    let udp = udp.stop();

    // The slow socket reads what it kept, takes a receive buffer large
    // enough for a 100 KB reply, and gets one.
    slow.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while common::udp_recv(&slow).is_some() {}
    socket2::SockRef::from(&slow)
        .set_recv_buffer_size(1 << 20)
        .unwrap();
    slow.set_read_timeout(Some(PROMPT)).unwrap();
    let mut link = UdpLink {
        sock: slow,
        id: 1000,
    };
    let r = link.call(b"get q0\r\n");
    assert_eq!(
        r.len(),
        value.len() + "VALUE q0 0 100000\r\n\r\nEND\r\n".len()
    );
    assert_alive(&mut server);
    Flood {
        tcp,
        udp,
        grown_kb: peak.saturating_sub(before),
    }
}

/// 12 requests for 4 MB each (48 MB of datagrams) to a socket that does not
/// read: the bystanders are served promptly and memory stays bounded.
#[test]
fn udp_client_that_does_not_read_disturbs_no_one() {
    let _serial = serial();
    let f = udp_flood(None, 12);
    assert!(f.grown_kb < 64 * 1024, "RSS grew by {} kB", f.grown_kb);
    for r in [&f.tcp, &f.udp] {
        assert!(r.ops >= 20, "{}: only {} operations", r.name, r.ops);
        assert!(
            r.slowest < PROMPT,
            "{}: {} took {:?}",
            r.name,
            r.slowest_op,
            r.slowest
        );
    }
}

/// The same flood, four times larger (190 MB), against rmemcached and
/// memcached 1.6.18 (`cargo test -- --ignored udp_flood` prints both): a
/// bystander's UDP request waits in the socket's queue behind the flood's,
/// and a TCP connection on a worker busy sending waits too; nothing is
/// lost and memory stays bounded.
#[test]
#[ignore = "a measurement (a few seconds), not a gate: compare the slowest bystander operations"]
fn udp_flood_compared_with_memcached() {
    let _serial = serial();
    for (name, bin) in [
        ("rmemcached", None),
        ("memcached", Some("/usr/bin/memcached")),
    ] {
        let f = udp_flood(bin, 48);
        eprintln!(
            "{name}: RSS +{} kB; slowest tcp {:?}, slowest udp {:?}",
            f.grown_kb, f.tcp.slowest, f.udp.slowest
        );
        assert!(
            f.grown_kb < 64 * 1024,
            "{name}: RSS grew by {} kB",
            f.grown_kb
        );
    }
}

// --- SIGTERM, SIGINT --------------------------------------------------------------

/// Wait for the process to exit, for at most `limit`.
fn wait_exit(server: &mut common::Server, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = server.child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// `signal` arrives while a client is reading a 20 MB reply slowly (a
/// 500 KB value 40 times, a multi-get), and while another client sits
/// idle: the reader gets its whole reply, the idle client is closed, and
/// the process exits with status 0 within a few seconds.
fn stop_finishes_replies_in_flight(signal: libc::c_int) {
    let mut server = common::start_server(&["-t", "2"]);
    const COPIES: usize = 40;
    let big = vec![b'T'; 500_000];
    store(&server, "big", &big);
    let mut idle = server.tcp();
    assert_eq!(
        common::request(&mut idle, b"version\r\n", b"\r\n"),
        b"VERSION 1.6.18\r\n"
    );
    let mut s = server.tcp();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("get{}\r\n", " big".repeat(COPIES)).as_bytes())
        .unwrap();
    let header = format!("VALUE big 0 {}\r\n", big.len()).into_bytes();
    let one = header.len() + big.len() + 2;
    let total = COPIES * one + 5;
    let mut got = Vec::with_capacity(total);
    let mut buf = vec![0u8; 256 * 1024];
    let mut signalled = None;
    let started = Instant::now();
    while got.len() < total {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read failed after {} of {total} bytes: {e}", got.len()),
        }
        if signalled.is_none() && got.len() >= one {
            // SAFETY: kill(2) on our own child's pid.
            assert_eq!(unsafe { libc::kill(server.child.id() as i32, signal) }, 0);
            signalled = Some((Instant::now(), got.len()));
        }
        // Read slowly: about 25 MB/s, so the reply is in flight for a
        // second after the signal.
        thread::sleep(Duration::from_millis(10));
    }
    let (at, had) = signalled.expect("signal sent");
    eprintln!(
        "signal {signal} after {had} of {total} bytes ({:?} in); {} bytes read, the last {:?} after it",
        at - started,
        got.len(),
        at.elapsed()
    );
    assert_eq!(got.len(), total, "reply cut short after the signal");
    for i in 0..COPIES {
        let v = &got[i * one..(i + 1) * one];
        assert!(v.starts_with(&header), "value {i}: header");
        assert!(v[header.len()..one - 2] == big[..], "value {i}: data");
    }
    assert!(got.ends_with(b"END\r\n"));
    let status = wait_exit(&mut server, Duration::from_secs(5))
        .expect("the server did not exit within 5 s of the reply");
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    // The idle client was closed.
    idle.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut b = [0u8; 16];
    assert_eq!(idle.read(&mut b).unwrap(), 0, "idle connection not closed");
}

#[test]
fn sigterm_finishes_replies_in_flight_then_exits_0() {
    let _serial = serial();
    stop_finishes_replies_in_flight(libc::SIGTERM);
}

#[test]
fn sigint_finishes_replies_in_flight_then_exits_0() {
    let _serial = serial();
    stop_finishes_replies_in_flight(libc::SIGINT);
}
