//! The `rmc-load` binary end to end: a fixed-rate UDP multi-get whose
//! replies span several datagrams, against rmemcached (one reply message
//! per request) and against the real memcached (one message per key, then
//! `END`); closed- and open-loop TCP runs, plain and over TLS (against
//! both servers started with `-Z` and the test certificate); and the
//! loopback-only rule.
//!
//! The server binary comes from the other package of the workspace: see
//! [`common::server_bin`] for how it is found.
mod common;

use std::process::{Command, Output};
use std::sync::Mutex;

/// Run the generator with `args`.
fn load(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rmc-load"))
        .args(args)
        .output()
        .expect("run rmc-load")
}

/// A number from the generator's one-line JSON summary (its last line).
fn field(stdout: &str, name: &str) -> f64 {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line in {stdout}"));
    let key = format!("\"{name}\":");
    let at = line
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {line}"))
        + key.len();
    let rest = &line[at..];
    let end = rest.find([',', '}']).unwrap();
    rest[..end].parse().unwrap()
}

/// The fixed-rate UDP runs take turns, so that on a small machine one does
/// not starve the other into dropping datagrams.
static UDP_RUNS: Mutex<()> = Mutex::new(());

/// Run a 1.5 s multi-get of 5 keys of 1500 bytes at 2000 requests/s over
/// UDP and check that every request completed, with percentiles; returns
/// the stdout.
fn multiget_at_fixed_rate(udp_port: u16) -> String {
    let _turn = UDP_RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let port = udp_port.to_string();
    let out = load(&[
        "--udp",
        &port,
        "--mode",
        "multiget",
        "--keys",
        "200",
        "--value-size",
        "1500",
        "--multiget-keys",
        "5",
        "--rate",
        "2000",
        "--duration",
        "1.5",
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let f = |name| field(&stdout, name);
    // Sent on schedule: 2000/s for 1.5 s.
    assert!(
        (2900.0..=3000.0).contains(&f("sent")),
        "sent {}\n{stdout}",
        f("sent")
    );
    assert_eq!(f("completed"), f("sent"), "{stdout}");
    assert_eq!(f("lost"), 0.0, "{stdout}");
    assert_eq!(f("errors"), 0.0, "{stdout}");
    assert_eq!(f("unknown_datagrams"), 0.0, "{stdout}");
    // Every key preloaded and found.
    assert_eq!(f("hits"), 5.0 * f("completed"), "{stdout}");
    assert_eq!(f("misses"), 0.0, "{stdout}");
    // A value of 1500 bytes cannot travel in one datagram.
    assert!(f("datagrams") >= 5.0 * f("completed"), "{stdout}");
    assert!(f("ops_per_sec") > 1500.0, "{stdout}");
    let (p50, p99, p999, max) = (f("p50_us"), f("p99_us"), f("p999_us"), f("max_us"));
    assert!(
        0.0 < p50 && p50 <= p99 && p99 <= p999 && p999 <= max,
        "{stdout}"
    );
    for label in ["p50", "p99 ", "p99.9", "max"] {
        assert!(stdout.contains(label), "no {label} in {stdout}");
    }
    stdout
}

#[test]
fn multiget_over_udp_against_rmemcached() {
    let server = common::start_server(&[]);
    let out = multiget_at_fixed_rate(server.udp_port);
    // One message per request: 5 items of about 1530 bytes, and END, in
    // datagrams of 1392 bytes: 6 per reply.
    assert_eq!(
        field(&out, "datagrams"),
        6.0 * field(&out, "completed"),
        "{out}"
    );
}

#[test]
fn multiget_over_udp_against_memcached() {
    let server = common::start_with("/usr/bin/memcached", &[]);
    let out = multiget_at_fixed_rate(server.udp_port);
    // One message per key, each of two datagrams.
    assert!(
        field(&out, "datagrams") >= 10.0 * field(&out, "completed"),
        "{out}"
    );
}

/// Run a mixed load over TCP against a fresh rmemcached with `args` added
/// and check that every request was answered, about 90% of them gets that
/// hit; returns the server and the generator's stdout.
fn mixed_over_tcp(args: &[&str]) -> (common::Server, String) {
    mixed_against(common::server_bin(), &[], args)
}

/// [`mixed_over_tcp`] against the server `bin` started with `server_args`.
fn mixed_against(
    bin: impl AsRef<std::path::Path>,
    server_args: &[&str],
    args: &[&str],
) -> (common::Server, String) {
    let server = common::start_with(bin, server_args);
    let port = server.port.to_string();
    let mut all = vec!["--tcp", &port, "--mode", "mixed", "--keys", "100", "--json"];
    all.extend_from_slice(args);
    let out = load(&all);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let f = |name| field(&stdout, name);
    assert!(f("completed") > 100.0, "{stdout}");
    assert_eq!(f("completed"), f("sent"), "{stdout}");
    assert_eq!(
        (f("lost"), f("errors"), f("misses")),
        (0.0, 0.0, 0.0),
        "{stdout}"
    );
    let gets = f("hits") / f("completed");
    assert!((0.8..0.97).contains(&gets), "{stdout}");
    (server, stdout)
}

#[test]
fn closed_loop_mixed_over_tcp() {
    mixed_over_tcp(&["--sockets", "2", "--outstanding", "8", "--duration", "0.5"]);
}

#[test]
fn refuses_addresses_off_loopback() {
    for host in ["192.0.2.1", "0.0.0.0", "::"] {
        let out = load(&["--udp", "11211", "--host", host, "--duration", "0.1"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{host}: {stderr}");
        assert!(stderr.contains("loopback"), "{host}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

/// Open loop over TCP: one thread drives three connections on one
/// schedule, each request on the next connection in turn.
#[test]
fn open_loop_over_tcp_on_three_connections() {
    let args = ["--sockets", "3", "--rate", "3000", "--duration", "1"];
    let (server, stdout) = mixed_over_tcp(&args);
    // 3000/s for 1 s.
    let sent = field(&stdout, "sent");
    assert!((2950.0..=3000.0).contains(&sent), "{stdout}");
    // The server saw the preload's connection, the three of the run and
    // the one that asks.
    let total = server.stat("total_connections");
    assert!(total >= 5, "total_connections {total}");
}

/// A file of the server's test certificates (tests/tls/ of the workspace:
/// server.pem and server.key for 127.0.0.1, signed by ca.pem).
fn cert_file(name: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/tls");
    dir.join(name).to_str().unwrap().to_string()
}

/// A mixed load over TLS against `bin` started with `-Z` and the test
/// certificate, the generator trusting the test CA, with `args` added:
/// every request answered, and the session shown.
fn mixed_over_tls(bin: impl AsRef<std::path::Path>, args: &[&str]) -> String {
    let certs = format!(
        "ssl_chain_cert={},ssl_key={}",
        cert_file("server.pem"),
        cert_file("server.key")
    );
    let ca = cert_file("ca.pem");
    let mut all = vec!["--tls", "--tls-ca", &ca];
    all.extend_from_slice(args);
    let (_server, stdout) = mixed_against(bin, &["-Z", "-U", "0", "-o", &certs], &all);
    assert!(stdout.contains("over tcp (TLS)"), "{stdout}");
    assert!(stdout.contains("\"tls\":\"TLS 1."), "{stdout}");
    stdout
}

/// TLS, closed loop on two connections, then open loop on three, against
/// rmemcached.
#[test]
fn mixed_over_tls_against_rmemcached() {
    let bin = common::server_bin();
    mixed_over_tls(
        bin,
        &["--sockets", "2", "--outstanding", "8", "--duration", "0.5"],
    );
    let args = ["--sockets", "3", "--rate", "3000", "--duration", "1"];
    let stdout = mixed_over_tls(bin, &args);
    let sent = field(&stdout, "sent");
    assert!((2950.0..=3000.0).contains(&sent), "{stdout}");
}

/// TLS against memcached (OpenSSL), closed loop on two connections.
#[test]
fn mixed_over_tls_against_memcached() {
    let args = ["--sockets", "2", "--outstanding", "8", "--duration", "0.5"];
    mixed_over_tls("/usr/bin/memcached", &args);
}
