//! Smoke runs of libmemcached-tools against rmemcached: `memaslap`
//! (Debian's `memcaslap`) over TCP and UDP, including UDP multi-gets, and
//! `memcapable` (Debian's `memccapable`) for the ASCII and binary protocols. The tools
//! must be installed (`.ci/run` installs libmemcached-tools): a missing tool
//! is a failure, never a skip.
mod common;

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One load generator at a time: the machine has two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn find_tool(names: &[&str]) -> String {
    for n in names {
        for dir in ["/usr/bin", "/usr/local/bin"] {
            let p = format!("{dir}/{n}");
            if std::path::Path::new(&p).exists() {
                return p;
            }
        }
    }
    panic!(
        "none of {names:?} found in /usr/bin or /usr/local/bin: \
         install libmemcached-tools (apt-get install libmemcached-tools)"
    );
}

/// Run `cmd` with a deadline; kill it (by its own pid) when it is late.
/// Returns its output and whether it had to be killed.
fn run_with_deadline(mut cmd: Command, secs: u64) -> (Output, bool) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tool");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = tx.send(());
        out
    });
    let late = rx.recv_timeout(Duration::from_secs(secs)).is_err();
    if late {
        // SAFETY: kill(2) on the pid of the child we spawned and still own.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
    (waiter.join().unwrap().unwrap(), late)
}

/// A port free for both TCP and UDP on 127.0.0.1: memaslap's `--udp`
/// needs the server's TCP and UDP ports to be the same.
fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let t = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both TCP and UDP");
}

/// The `name: number` lines and the final `Run time: .. Ops: .. TPS: ..`
/// line of memaslap's report.
fn parse_report(out: &str) -> HashMap<String, f64> {
    let mut m = HashMap::new();
    for line in out.lines() {
        let line = line.trim();
        if line.starts_with("Run time:") {
            // Run time: 2.0s Ops: 91535 TPS: 45757 Net_rate: 51.2M/s
            let f: Vec<&str> = line.split_whitespace().collect();
            if let Some(t) = f.get(2).and_then(|t| t.trim_end_matches('s').parse().ok()) {
                m.insert("Run time".to_string(), t);
            }
            for pair in f.get(3..).unwrap_or(&[]).chunks(2) {
                if let [k, v] = pair {
                    let v = v.trim_end_matches("M/s");
                    if let Ok(n) = v.parse::<f64>() {
                        m.insert(k.trim_end_matches(':').to_string(), n);
                    }
                }
            }
        } else if let Some((k, v)) = line.split_once(':') {
            if let Ok(n) = v.trim().parse::<f64>() {
                m.insert(k.trim().to_string(), n);
            }
        }
    }
    m
}

/// memaslap's UDP sockets are unconnected, autobound and `SO_REUSEADDR`:
/// Linux may then give two of them (or one of them and another process's
/// `SO_REUSEADDR` UDP socket, such as a server of a concurrent test) the
/// same port. One socket then receives the other's replies and memaslap
/// aborts on its request-id assertion, or waits forever for a reply that
/// went elsewhere. About 0.4% of sets of 16 such sockets share a port here
/// (more with other servers running), so a UDP run that ends that way is
/// run again on a fresh server; a server bug that does this every time
/// still fails.
fn client_port_clash(out: &Output, late: bool) -> bool {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    stderr.contains("ms_sort_udp_packet: Assertion `req_id == c->request_id")
        || (late && stdout.contains("\nRun time: "))
}

/// Run memaslap against a fresh server and check its report.
fn memaslap(extra_server: &[&str], args: &[&str], udp: bool) -> HashMap<String, f64> {
    let tool = find_tool(&["memcaslap", "memaslap"]);
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let attempts = if udp { 3 } else { 1 };
    let mut attempt = 0;
    let (mut server, out, all) = loop {
        attempt += 1;
        let port = free_port_pair().to_string();
        let mut flags = vec!["-p", &port, "-U", &port];
        flags.extend_from_slice(extra_server);
        let server = common::start_server(&flags);
        assert_eq!(server.port.to_string(), port);
        if udp {
            assert_eq!(server.udp_port.to_string(), port);
        }
        let mut cmd = Command::new(&tool);
        cmd.arg("-s")
            .arg(format!("127.0.0.1:{port}"))
            .args(["-t", "2s", "-T", "1", "-c", "16"])
            .args(args);
        if udp {
            cmd.arg("--udp");
        }
        let start = Instant::now();
        let (out, late) = run_with_deadline(cmd, 10);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let all = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
        eprintln!(
            "memaslap {args:?} udp={udp} attempt {attempt} took {:?} (killed: {late})\n{all}",
            start.elapsed()
        );
        if udp && attempt < attempts && client_port_clash(&out, late) {
            eprintln!("memaslap's UDP sockets clashed: running again");
            continue;
        }
        assert!(!late, "memaslap still running after 10 s\n{all}");
        break (server, out, all);
    };
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "memaslap exit {:?}\n{all}",
        out.status
    );
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "server died under memaslap\n{all}"
    );
    let r = parse_report(&stdout);
    for key in ["cmd_get", "cmd_set", "get_misses", "Ops", "TPS", "Run time"] {
        assert!(r.contains_key(key), "no {key:?} in the report\n{all}");
    }
    assert!(r["Ops"] >= 1000.0, "only {} ops\n{all}", r["Ops"]);
    assert!(r["TPS"] > 0.0, "TPS\n{all}");
    assert!(r["cmd_get"] > 0.0 && r["cmd_set"] > 0.0, "{all}");
    for bad in [
        "get_misses",
        "verify_misses",
        "verify_failed",
        "expired_get",
        "unexpired_unget",
        "packet_disorder",
        "packet_drop",
        "udp_timeout",
    ] {
        if let Some(n) = r.get(bad) {
            assert_eq!(*n, 0.0, "{bad} = {n}\n{all}");
        }
    }
    if udp {
        for key in ["packet_drop", "udp_timeout", "packet_disorder"] {
            assert!(r.contains_key(key), "no {key:?} in a UDP report\n{all}");
        }
    }
    let lower = all.to_lowercase();
    for word in ["error", "assert", "timeout!", "failed to", "abort"] {
        assert!(!lower.contains(word), "{word:?} in the output\n{all}");
    }
    // The server still answers.
    let mut c = server.tcp();
    assert_eq!(
        common::request(&mut c, b"version\r\n", b"\r\n"),
        b"VERSION 1.6.18\r\n"
    );
    r
}

#[test]
fn memaslap_tcp() {
    memaslap(&[], &[], false);
}

#[test]
fn memaslap_tcp_verify() {
    let r = memaslap(&[], &["-v", "0.2"], false);
    assert!(r.contains_key("verify_failed"), "{r:?}");
}

#[test]
fn memaslap_udp() {
    memaslap(&[], &[], true);
}

/// memaslap expects the whole reply to a multi-get in one message: the
/// framing rmemcached keeps and memcached 1.6 dropped (memaslap aborts on
/// memcached 1.6.18 here).
#[test]
fn memaslap_udp_multiget() {
    let r = memaslap(&[], &["-d", "4", "-v", "0.2"], true);
    assert!(r.contains_key("verify_failed"), "{r:?}");
}

/// memcapable's whole run: its 27 ASCII tests and 27 binary tests.
#[test]
fn memcapable_ascii_and_binary() {
    let tool = find_tool(&["memccapable", "memcapable"]);
    let server = common::start_server(&[]);
    let mut cmd = Command::new(&tool);
    cmd.args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "-t", "2"]);
    let (out, late) = run_with_deadline(cmd, 60);
    assert!(!late, "memcapable still running after 60 s");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!(
        "{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{all}");
    let failed: Vec<&str> = stdout.lines().filter(|l| l.contains("[FAIL]")).collect();
    assert!(
        failed.is_empty(),
        "memcapable ASCII failures: {failed:#?}\n{all}"
    );
    let passed = |set: &str| {
        stdout
            .lines()
            .filter(|l| l.starts_with(set) && l.contains("[pass]"))
            .count()
    };
    assert!(
        passed("ascii") >= 27,
        "ASCII tests passed: {}\n{all}",
        passed("ascii")
    );
    assert!(
        passed("binary") >= 27,
        "binary tests passed: {}\n{all}",
        passed("binary")
    );
    assert!(stdout.contains("All tests passed"), "{all}");
    assert!(out.status.success(), "exit {:?}\n{all}", out.status);
}
