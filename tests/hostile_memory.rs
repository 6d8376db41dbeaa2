//! Hostile clients and memory, side by side with memcached 1.6.18.
//!
//! Each test runs one attack that makes a server hold memory on a client's
//! behalf (replies nobody reads, values that never finish, lines that never
//! end), first against the real memcached (`/usr/bin/memcached`) and then
//! against rmemcached, both started with the same flags. After the attack
//! the server's peak RSS (`VmHWM`) is read while the attackers are still
//! connected, and rmemcached's must stay within 1.25 × memcached's plus
//! 16 MiB. Meanwhile a bystander on its own TCP connection keeps asking
//! for `small`, and rmemcached must answer each time within a second
//! (memcached's times are only shown: on UDP floods it takes a few hundred
//! milliseconds itself).
//!
//! Every attack is a bounded loop on loopback that stops by itself; the
//! attacking sockets are kept open, unread, until the measurement is done.
//! The tests take a lock so that they run one at a time even without
//! `--test-threads=1`: two attacks at once would slow each other's
//! bystanders.
mod common;

use common::Server;
use std::io::{self, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The real memcached the attacks are measured against.
const MEMCACHED: &str = "/usr/bin/memcached";
/// Flags both servers get (UDP is on: `start_with` passes `-U -1`).
const FLAGS: &[&str] = &["-m", "64", "-t", "4"];
/// Length of the value stored under `big` (memcached's default `-I 1m`
/// takes it).
const BIG_LEN: usize = 1_000_000;
/// The value stored under `small`, which the bystander reads.
const SMALL: &[u8] = b"bystander";
/// The longest a bystander may wait for `small`.
const BYSTANDER_LIMIT: Duration = Duration::from_secs(1);
/// How long a TCP attack keeps writing to sockets that no longer take
/// bytes before it gives up on them.
const WRITE_DEADLINE: Duration = Duration::from_secs(5);
/// A server whose RSS passes this is killed, so that a server that
/// buffers without bound fails its test instead of the machine.
const RSS_CAP_KB: u64 = 4 * 1024 * 1024;

// --- the attacks ------------------------------------------------------

/// Attack 1, UDP text: from 3 sockets, 8 datagrams of 100 `get big` and
/// one of 1,000 each; the replies (100 MB and 1 GB) are never read.
#[test]
fn udp_text_multi_get() {
    compare("udp text get", &[], |s| {
        udp_flood(s, 3, 8, 1, b"get big\r\n")
    });
}

/// Attack 2, UDP meta: the same with `mg big v`.
#[test]
fn udp_meta_get() {
    compare("udp meta mg", &[], |s| {
        udp_flood(s, 3, 8, 1, b"mg big v\r\n")
    });
}

/// Attack 3, UDP binary: the same with binary GETs of `big`.
#[test]
fn udp_binary_get() {
    compare("udp binary get", &[], |s| {
        udp_flood(s, 3, 8, 1, &binary_get(b"big"))
    });
}

/// Attack 4, TCP: 60 connections pipeline 400 `mg big v` each and never
/// read.
#[test]
fn tcp_pipelined_meta_get_unread() {
    compare("tcp pipelined mg", &[], |s| {
        tcp_flood(s, 60, &b"mg big v\r\n".repeat(400))
    });
}

/// Attack 5, TCP: 60 connections pipeline 400 binary GETs each and never
/// read.
#[test]
fn tcp_pipelined_binary_get_unread() {
    compare("tcp pipelined binary get", &[], |s| {
        tcp_flood(s, 60, &binary_get(b"big").repeat(400))
    });
}

/// Attack 6, TCP: 200 connections each start a 1 MB `set` and stall
/// 1,000 bytes short of its end. memcached reads values into item memory,
/// so `-m` bounds what they can hold.
#[test]
fn tcp_values_in_flight() {
    compare("tcp values in flight", &[], |s| {
        tcp_flood_with(s, 200, |i| {
            let mut set = format!("set k{i} 0 0 {BIG_LEN}\r\n").into_bytes();
            set.resize(set.len() + BIG_LEN - 1_000, b'v');
            set
        })
    });
}

/// Attack 6b, TCP: 200 connections each store a 1 MB value (all under
/// one key, so that the cache itself stays small), then start a small
/// `set` and stall inside it: the buffer a connection grew for the large
/// value must not outlive it.
#[test]
fn tcp_stored_values_then_stall() {
    compare("tcp stored values then stall", &[], |s| {
        tcp_flood_with(s, 200, |i| {
            let mut set = format!("set big 0 0 {BIG_LEN}\r\n").into_bytes();
            set.resize(set.len() + BIG_LEN, b'v');
            set.extend_from_slice(format!("\r\nset s{i} 0 0 10\r\nab").as_bytes());
            set
        })
    });
}

/// Attack 7, TCP: `stats cachedump` of a class holding 200,000 items,
/// pipelined 20 times on a connection that never reads.
#[test]
fn tcp_cachedump_unread() {
    compare("tcp stats cachedump", &[], |s| {
        let class = fill_one_class(s, 200_000);
        tcp_flood(
            s,
            1,
            &format!("stats cachedump {class} 0\r\n")
                .repeat(20)
                .into_bytes(),
        )
    });
}

/// Attack 8, TCP: 2,000 connections each hold a 2,000-byte line with no
/// newline (memcached closes a line over 2,048 bytes unless it is a get).
#[test]
fn tcp_partial_lines() {
    raise_fd_limit(8192);
    compare("tcp partial lines", &["-c", "4096"], |s| {
        let mut line = b"get ".to_vec();
        line.resize(2_000, b'k');
        tcp_flood(s, 2_000, &line)
    });
}

/// Attack 9a, TCP: one connection sends a 1 MB multi-get line (`get big
/// big ...`, 250,000 keys) and never reads.
#[test]
fn tcp_huge_multi_get_line_unread() {
    compare("tcp 1 MB multi-get line", &[], |s| {
        let line = format!("get{}\r\n", " big".repeat(250_000));
        tcp_flood(s, 1, line.as_bytes())
    });
}

/// Attack 9b, UDP: 200 sockets each send one datagram of 100 `get big`,
/// so that per-source state (if any) is multiplied.
#[test]
fn udp_many_sources() {
    compare("udp many sources", &[], |s| {
        udp_flood(s, 200, 1, 0, b"get big\r\n")
    });
}

/// Attack 9c, TCP: 60 connections pipeline 100 `gat 0 big big big big`
/// each (a touch and a 4 MB reply per line) and never read.
#[test]
fn tcp_pipelined_gat_unread() {
    compare("tcp pipelined gat", &[], |s| {
        tcp_flood(s, 60, &b"gat 0 big big big big\r\n".repeat(100))
    });
}

// --- the runner -------------------------------------------------------

/// What an attack leaves connected: kept open, and never read, until the
/// measurement is done. The fields are only ever dropped.
#[allow(dead_code)]
struct Held {
    /// Attacking TCP connections.
    tcp: Vec<TcpStream>,
    /// Attacking UDP sockets.
    udp: Vec<UdpSocket>,
}

/// One server's result for one attack.
struct Outcome {
    /// Peak RSS (`VmHWM`) in kB once `big` and `small` are stored, before
    /// the attack.
    before_kb: u64,
    /// Peak RSS (`VmHWM`) in kB after the attack.
    peak_kb: u64,
    /// The bystander's slowest reply, or what went wrong.
    bystander: Result<Duration, String>,
}

/// Run `attack` against memcached and then rmemcached, print both peaks,
/// and check rmemcached's peak and its bystander.
fn compare(name: &str, extra: &[&str], attack: fn(&Server) -> Held) {
    let _one_at_a_time = serial();
    let mc = run(MEMCACHED, extra, attack);
    let rmc = run(env!("CARGO_BIN_EXE_rmemcached"), extra, attack);
    println!(
        "attack {name}: memcached {} kB, rmemcached {} kB",
        mc.peak_kb, rmc.peak_kb
    );
    println!(
        "attack {name}: before it: memcached {} kB, rmemcached {} kB",
        mc.before_kb, rmc.before_kb
    );
    println!(
        "attack {name}: slowest bystander: memcached {:?}, rmemcached {:?}",
        mc.bystander, rmc.bystander
    );
    // memcached's bystander is only shown: it is the yardstick, not the
    // server under test.
    match &rmc.bystander {
        Ok(t) => assert!(
            *t <= BYSTANDER_LIMIT,
            "attack {name}: rmemcached answered the bystander in {t:?}"
        ),
        Err(e) => panic!("attack {name}: rmemcached failed the bystander: {e}"),
    }
    let limit_kb = mc.peak_kb + mc.peak_kb / 4 + 16 * 1024;
    assert!(
        rmc.peak_kb <= limit_kb,
        "attack {name}: rmemcached peaked at {} kB, over 1.25 x memcached's {} kB + 16 MiB = {limit_kb} kB",
        rmc.peak_kb,
        mc.peak_kb
    );
}

/// Start `bin`, store `big` and `small`, run the attack with a bystander
/// watching, wait for the memory to settle, and read the peak.
fn run(bin: &str, extra: &[&str], attack: fn(&Server) -> Held) -> Outcome {
    let mut flags = FLAGS.to_vec();
    flags.extend_from_slice(extra);
    let server = common::start_with(bin, &flags);
    let pid = server.child.id();
    let mut c = server.tcp();
    store(&mut c, "big", &vec![b'b'; BIG_LEN]);
    store(&mut c, "small", SMALL);
    drop(c);
    let before_kb = common::try_proc_status_kb(pid, "VmHWM").unwrap();

    let watchdog = Watchdog::start(pid);
    let bystander = Bystander::start(&server);
    let held = attack(&server);
    settle(pid);
    // The last probe runs after settling, with the attackers still there.
    let bystander = bystander.stop();
    let peak_kb = watchdog
        .stop()
        .max(common::try_proc_status_kb(pid, "VmHWM").unwrap_or(0));
    println!(
        "  {bin}: {} connections open at the end",
        curr_connections(&server).unwrap_or_else(|| "?".into())
    );
    drop(held);
    Outcome {
        before_kb,
        peak_kb,
        bystander,
    }
}

/// Serialize the tests of this file.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `set key 0 0 len` on `c`, expecting `STORED`.
fn store(c: &mut TcpStream, key: &str, value: &[u8]) {
    let mut req = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
    req.extend_from_slice(value);
    req.extend_from_slice(b"\r\n");
    assert_eq!(
        common::request(c, &req, b"\r\n"),
        b"STORED\r\n",
        "set {key}"
    );
}

/// `curr_connections` from `stats`, or `None` if the server does not
/// answer within a second.
fn curr_connections(server: &Server) -> Option<String> {
    let mut c = TcpStream::connect(("127.0.0.1", server.port)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    c.write_all(b"stats\r\n").ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while !reply.ends_with(b"END\r\n") {
        let n = c.read(&mut buf).ok().filter(|&n| n > 0)?;
        reply.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&reply)
        .lines()
        .find_map(|l| l.strip_prefix("STAT curr_connections "))
        .map(str::to_string)
}

/// Wait until the peak stops growing: at least 1.5 s after the attack,
/// and 1 s without growth, but no more than 8 s.
fn settle(pid: u32) {
    let start = Instant::now();
    let mut last = common::try_proc_status_kb(pid, "VmHWM");
    let mut since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = common::try_proc_status_kb(pid, "VmHWM");
        if now.is_none() {
            return;
        }
        if now != last {
            last = now;
            since = Instant::now();
        }
        let elapsed = start.elapsed();
        if (elapsed >= Duration::from_millis(1500) && since.elapsed() >= Duration::from_secs(1))
            || elapsed >= Duration::from_secs(8)
        {
            return;
        }
    }
}

/// Polls a server's memory while it is attacked, remembers the peak, and
/// kills the server if its RSS passes `RSS_CAP_KB`.
struct Watchdog {
    /// Set to stop the thread.
    stop: Arc<AtomicBool>,
    /// The polling thread; it returns the highest `VmHWM` it saw.
    thread: JoinHandle<u64>,
}

impl Watchdog {
    fn start(pid: u32) -> Watchdog {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                let Some(hwm) = common::try_proc_status_kb(pid, "VmHWM") else {
                    break;
                };
                peak = peak.max(hwm);
                if common::try_proc_status_kb(pid, "VmRSS").unwrap_or(0) > RSS_CAP_KB {
                    eprintln!("pid {pid} passed {RSS_CAP_KB} kB of RSS: killing it");
                    // The child is not reaped until `Server` drops, so the
                    // pid cannot have been reused.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        Watchdog { stop, thread }
    }

    /// Stop polling and return the peak seen.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// A client on its own connection asking for `small` every 200 ms.
struct Bystander {
    /// Set to stop the thread (after one last probe).
    stop: Arc<AtomicBool>,
    /// The probing thread; it returns the slowest reply.
    thread: JoinHandle<Result<Duration, String>>,
}

impl Bystander {
    /// Connect now, before the attack, and start probing.
    fn start(server: &Server) -> Bystander {
        let mut c = server.tcp();
        c.set_read_timeout(Some(BYSTANDER_LIMIT * 3)).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut slowest = Duration::ZERO;
            loop {
                let last = flag.load(Ordering::Relaxed);
                slowest = slowest.max(probe(&mut c)?);
                if last {
                    return Ok(slowest);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Bystander { stop, thread }
    }

    fn stop(self) -> Result<Duration, String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// One `get small`, timed.
fn probe(c: &mut TcpStream) -> Result<Duration, String> {
    let start = Instant::now();
    c.write_all(b"get small\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while !reply.ends_with(b"END\r\n") {
        match c.read(&mut buf) {
            Ok(0) => return Err(format!("closed after {}", common::show(&reply))),
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("{e} after {}", common::show(&reply))),
        }
    }
    let elapsed = start.elapsed();
    let mut want = format!("VALUE small 0 {}\r\n", SMALL.len()).into_bytes();
    want.extend_from_slice(SMALL);
    want.extend_from_slice(b"\r\nEND\r\n");
    if reply != want {
        return Err(format!("got {}", common::show(&reply)));
    }
    Ok(elapsed)
}

// --- attack helpers ---------------------------------------------------

/// A binary-protocol GET of `key`: a 24-byte header and the key.
fn binary_get(key: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; 24];
    r[0] = 0x80; // request magic
    r[1] = 0x00; // GET
    r[2..4].copy_from_slice(&(key.len() as u16).to_be_bytes());
    r[8..12].copy_from_slice(&(key.len() as u32).to_be_bytes());
    r.extend_from_slice(key);
    r
}

/// From each of `sockets` UDP sockets, send `small` datagrams of about
/// 900 bytes and `large` of about 9 KB, each packed with copies of
/// `request`, as fast as they go; replies are never read.
fn udp_flood(server: &Server, sockets: usize, small: usize, large: usize, request: &[u8]) -> Held {
    let packed = |bytes: usize| request.repeat(bytes / request.len());
    let (small_dgram, large_dgram) = (packed(900), packed(9_000));
    let udp: Vec<UdpSocket> = (0..sockets).map(|_| server.udp()).collect();
    for (i, s) in udp.iter().enumerate() {
        for j in 0..small + large {
            let mut d = common::udp_header((i * (small + large) + j) as u16, 0, 1).to_vec();
            d.extend_from_slice(if j < small {
                &small_dgram
            } else {
                &large_dgram
            });
            // A full socket buffer or a dead server only loses datagrams.
            let _ = s.send(&d);
        }
    }
    Held {
        udp,
        tcp: Vec::new(),
    }
}

/// Open `conns` TCP connections and write `payload` on each.
fn tcp_flood(server: &Server, conns: usize, payload: &[u8]) -> Held {
    tcp_flood_with(server, conns, |_| payload.to_vec())
}

/// Open `conns` TCP connections and write `payload(i)` on the i-th,
/// round robin and without blocking, until every payload is written,
/// the server closes the connection, or the sockets have taken nothing
/// for `WRITE_DEADLINE`. Nothing is ever read.
fn tcp_flood_with(server: &Server, conns: usize, payload: impl Fn(usize) -> Vec<u8>) -> Held {
    let mut tcp = Vec::with_capacity(conns);
    for _ in 0..conns {
        let s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        s.set_nonblocking(true).unwrap();
        tcp.push(s);
    }
    let mut left: Vec<(Vec<u8>, usize)> = (0..conns).map(|i| (payload(i), 0)).collect();
    let mut last_progress = Instant::now();
    loop {
        let mut pending = false;
        for (s, (bytes, done)) in tcp.iter_mut().zip(&mut left) {
            while *done < bytes.len() {
                match s.write(&bytes[*done..]) {
                    Ok(n) => {
                        *done += n;
                        last_progress = Instant::now();
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // Closed by the server: that connection is done.
                    Err(_) => *done = bytes.len(),
                }
            }
            pending |= *done < bytes.len();
        }
        if !pending || last_progress.elapsed() >= WRITE_DEADLINE {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let unwritten: usize = left.iter().map(|(b, d)| b.len() - d).sum();
    if unwritten > 0 {
        println!("  {unwritten} bytes were never taken by the server");
    }
    Held {
        tcp,
        udp: Vec::new(),
    }
}

/// Fill one slab class with `n` items (40-byte keys, 10-byte values)
/// through pipelined `noreply` sets, and return its class id, found in
/// `stats items` as the class holding the most items.
fn fill_one_class(server: &Server, n: usize) -> u32 {
    let mut c = server.tcp();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut batch = Vec::new();
    for i in 0..n {
        batch.extend_from_slice(
            format!("set filler-{i:033} 0 0 10 noreply\r\n0123456789\r\n").as_bytes(),
        );
        if batch.len() > 1 << 20 || i + 1 == n {
            c.write_all(&batch).unwrap();
            batch.clear();
        }
    }
    let items = common::request(&mut c, b"stats items\r\n", b"END\r\n");
    let (class, count) = String::from_utf8_lossy(&items)
        .lines()
        .filter_map(|l| l.strip_prefix("STAT items:"))
        .filter_map(|l| {
            let (class, rest) = l.split_once(':')?;
            let count = rest.strip_prefix("number ")?;
            Some((class.parse::<u32>().ok()?, count.parse::<usize>().ok()?))
        })
        .max_by_key(|&(_, count)| count)
        .expect("stats items lists a class");
    assert!(
        count >= n * 9 / 10,
        "class {class} holds only {count} of {n} items"
    );
    class
}

/// Raise this process's soft limit on open files to at least `want` (up to
/// the hard limit); the servers inherit it.
fn raise_fd_limit(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if lim.rlim_cur < want as libc::rlim_t {
        lim.rlim_cur = (want as libc::rlim_t).min(lim.rlim_max);
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}
