//! Shared helpers for the integration tests: start the real `rmemcached`
//! binary (or memcached) on random ports, talk to it over TCP, UDP and
//! unix sockets, read its `stats` and its memory from `/proc`. The
//! lockstep differential harness (same requests to memcached and
//! rmemcached, replies compared) is [`lockstep`].
#![allow(dead_code)]

pub mod lockstep;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server, killed when dropped.
pub struct Server {
    /// The child process.
    pub child: Child,
    /// TCP port (0 when listening on a unix socket only).
    pub port: u16,
    /// UDP port (0 when off).
    pub udp_port: u16,
    /// Unix socket path, when started with `-s`.
    pub socket: Option<PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(p) = &self.socket {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A path in the temporary directory no other call (or test process)
/// gets.
pub fn unique_name(prefix: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("{prefix}.{}.{n}", std::process::id()))
}

/// Start the binary on 127.0.0.1 with random TCP and UDP ports (found
/// through `MEMCACHED_PORT_FILENAME`), plus `extra` flags.
pub fn start_server(extra: &[&str]) -> Server {
    start_with(env!("CARGO_BIN_EXE_rmemcached"), extra)
}

/// Start any memcached-compatible binary the same way (the differential
/// tests start the real memcached with this).
pub fn start_with(bin: &str, extra: &[&str]) -> Server {
    let port_file = unique_name("rmc-ports");
    let _ = std::fs::remove_file(&port_file);
    let mut args: Vec<String> = vec![
        "-l".into(),
        "127.0.0.1".into(),
        "-p".into(),
        "-1".into(),
        "-U".into(),
        "-1".into(),
    ];
    // Both ports are the kernel's pick (`-1`), read back from the port
    // file, so parallel tests never race for a port. A caller's own `-U`
    // comes later and wins.
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(["-u".into(), "root".into()]);
    let child = Command::new(bin)
        .args(&args)
        .env("MEMCACHED_PORT_FILENAME", &port_file)
        .stdin(Stdio::null())
        .spawn()
        .expect("start server");
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut tcp, mut udp) = (0, 0);
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            for line in text.lines() {
                let port: u16 = line.rsplit(' ').next().unwrap().parse().unwrap();
                if line.starts_with("TCP") {
                    tcp = port;
                } else if line.starts_with("UDP") {
                    udp = port;
                }
            }
            if tcp != 0 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(&port_file);
    // Built before the check so that a failed start still kills the child.
    let server = Server {
        child,
        port: tcp,
        udp_port: udp,
        socket: None,
    };
    assert!(server.port != 0, "server did not report its port");
    server
}

/// Start the binary on a unix socket only.
pub fn start_unix_server(extra: &[&str]) -> Server {
    let path = unique_name("rmc-sock");
    let mut args = vec!["-s", path.to_str().unwrap(), "-u", "root"];
    args.extend_from_slice(extra);
    let child = Command::new(env!("CARGO_BIN_EXE_rmemcached"))
        .args(&args)
        .stdin(Stdio::null())
        .spawn()
        .expect("start server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && UnixStream::connect(&path).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    Server {
        child,
        port: 0,
        udp_port: 0,
        socket: Some(path),
    }
}

impl Server {
    /// A TCP connection with a read timeout.
    pub fn tcp(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    /// A unix-socket connection with a read timeout.
    pub fn unix(&self) -> UnixStream {
        let s = UnixStream::connect(self.socket.as_ref().expect("unix server")).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    /// A UDP socket connected to the server.
    pub fn udp(&self) -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.connect(("127.0.0.1", self.udp_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s
    }
}

/// Send `req` and read until the reply ends with `end` (or times out).
pub fn request<S: Read + Write>(s: &mut S, req: &[u8], end: &[u8]) -> Vec<u8> {
    s.write_all(req).unwrap();
    read_until(s, end)
}

/// Read until the bytes read end with `end`.
pub fn read_until<S: Read>(s: &mut S, end: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while !out.ends_with(end) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read failed after {:?}: {e}", String::from_utf8_lossy(&out)),
        }
    }
    out
}

/// Read exactly `n` bytes.
pub fn read_exact<S: Read>(s: &mut S, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    s.read_exact(&mut out).unwrap();
    out
}

/// The 8-byte UDP frame header.
pub fn udp_header(id: u16, seq: u16, total: u16) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[0..2].copy_from_slice(&id.to_be_bytes());
    h[2..4].copy_from_slice(&seq.to_be_bytes());
    h[4..6].copy_from_slice(&total.to_be_bytes());
    h
}

/// One UDP reply datagram, split into header fields and payload.
pub struct Datagram {
    /// Request id echoed.
    pub id: u16,
    /// Sequence number.
    pub seq: u16,
    /// Total datagrams of the reply.
    pub total: u16,
    /// The bytes after the header.
    pub payload: Vec<u8>,
}

/// Receive one datagram, or `None` on timeout.
pub fn udp_recv(s: &UdpSocket) -> Option<Datagram> {
    let mut buf = [0u8; 65536];
    let n = s.recv(&mut buf).ok()?;
    assert!(n >= 8, "short datagram");
    let u = |i: usize| u16::from_be_bytes([buf[i], buf[i + 1]]);
    Some(Datagram {
        id: u(0),
        seq: u(2),
        total: u(4),
        payload: buf[8..n].to_vec(),
    })
}

/// Send `req` in one datagram with request id `id` and reassemble the whole
/// reply message, checking its framing: every datagram echoes the id,
/// carries the same total, and the sequence numbers are 0..total.
pub fn udp_request(s: &UdpSocket, id: u16, req: &[u8]) -> Vec<u8> {
    let mut d = udp_header(id, 0, 1).to_vec();
    d.extend_from_slice(req);
    s.send(&d).unwrap();
    let first = udp_recv(s).expect("no UDP reply");
    assert_eq!(first.id, id, "request id echoed");
    let total = first.total;
    let mut parts = vec![None; total as usize];
    assert!(first.payload.len() <= 1392);
    parts[first.seq as usize] = Some(first.payload);
    for _ in 1..total {
        let d = udp_recv(s).expect("missing datagram");
        assert_eq!((d.id, d.total), (id, total));
        assert!(d.payload.len() <= 1392);
        parts[d.seq as usize] = Some(d.payload);
    }
    parts
        .into_iter()
        .map(|p| p.expect("sequence gap"))
        .collect::<Vec<_>>()
        .concat()
}

/// Bytes as a short escaped string for assertion messages.
pub fn show(b: &[u8]) -> String {
    const MAX: usize = 300;
    if b.len() > MAX {
        let head = String::from_utf8_lossy(&b[..MAX]);
        format!("{head:?}...({} bytes)", b.len())
    } else {
        format!("{:?}", String::from_utf8_lossy(b))
    }
}

/// A small deterministic generator (xorshift64*), so that a failing run
/// replays from its seed.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// An index in `0..n`.
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }
}

/// [`start_server`] with `env` set for the server: TCP only, on a port
/// the kernel picks (read back from `MEMCACHED_PORT_FILENAME`).
pub fn start_server_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
    start_with_env(env!("CARGO_BIN_EXE_rmemcached"), extra, env)
}

/// [`start_server_env`] for any memcached-compatible binary.
pub fn start_with_env(bin: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let port_file = unique_name("rmc-ports");
    let _ = std::fs::remove_file(&port_file);
    let mut args = vec!["-l", "127.0.0.1", "-p", "-1", "-U", "0", "-u", "root"];
    args.extend_from_slice(extra);
    let child = Command::new(bin)
        .args(&args)
        .envs(env.iter().copied())
        .env("MEMCACHED_PORT_FILENAME", &port_file)
        .stdin(Stdio::null())
        .spawn()
        .expect("start server");
    let mut server = Server {
        child,
        port: 0,
        udp_port: 0,
        socket: None,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.port == 0 && Instant::now() < deadline {
        let text = std::fs::read_to_string(&port_file).unwrap_or_default();
        let tcp = text.lines().find(|l| l.starts_with("TCP"));
        server.port = tcp.map_or(0, |l| l.rsplit(' ').next().unwrap().parse().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(&port_file);
    assert!(server.port != 0, "server did not report its port");
    server
}

/// One `stats` value of `server`, over a fresh TCP connection: one of
/// memcached's (`stats`) or of this server's own (`stats rmemcached`).
pub fn stat(server: &Server, name: &str) -> u64 {
    let mut s = server.tcp();
    let mut reply = request(&mut s, b"stats\r\n", b"END\r\n");
    reply.extend(request(&mut s, b"stats rmemcached\r\n", b"END\r\n"));
    let text = String::from_utf8(reply).unwrap();
    let prefix = format!("STAT {name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in stats"))
        .parse()
        .unwrap()
}

/// A field of `/proc/PID/status` in kB (`VmRSS`, `VmHWM`), or `None`
/// once the process is gone (or is a zombie, which has no memory fields).
pub fn try_proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A field of `/proc/PID/status` in kB (`VmRSS`, `VmHWM`) of a live
/// process.
pub fn proc_status_kb(pid: u32, field: &str) -> u64 {
    try_proc_status_kb(pid, field).unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The resident set size of process `pid`, in kB.
pub fn rss_kb(pid: u32) -> u64 {
    proc_status_kb(pid, "VmRSS")
}

/// The peak resident set size of process `pid` so far, in kB.
pub fn peak_rss_kb(pid: u32) -> u64 {
    proc_status_kb(pid, "VmHWM")
}
