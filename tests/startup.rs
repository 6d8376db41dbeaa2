//! With `-v`, the server says at start what it runs and where it listens.
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn verbose_start_logs_version_addresses_and_threads() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rmemcached"))
        .args([
            "-l",
            "127.0.0.1",
            "-p",
            "-1",
            "-U",
            "-1",
            "-t",
            "3",
            "-v",
            "-u",
            "root",
        ])
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let line = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("rmemcached "));
    child.kill().unwrap();
    child.wait().unwrap();
    let line = line.expect("a startup line");
    assert!(line.contains("speaking memcached 1.6.18"), "{line}");
    assert!(line.contains("TCP 127.0.0.1:"), "{line}");
    assert!(line.contains("UDP 127.0.0.1:"), "{line}");
    assert!(line.contains("3 worker threads"), "{line}");
    assert!(line.contains("-m 64 MiB"), "{line}");
}
