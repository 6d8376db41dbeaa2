//! With `-v`, the server says at start what it runs and where it listens;
//! without it, it warns about flags it accepts but does not honour.
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// The first stderr line starting with `prefix` of a server started on
/// free ports with `-v` and `args`, looked for up to and including its
/// startup line.
fn stderr_line(args: &[&str], prefix: &str) -> Option<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rmemcached"))
        .args(["-l", "127.0.0.1", "-p", "-1", "-u", "root", "-v"])
        .args(args)
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut found = None;
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        let startup = line.starts_with("rmemcached ");
        if line.starts_with(prefix) {
            found = Some(line);
            break;
        }
        if startup {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    found
}

#[test]
fn warns_about_flags_accepted_but_not_honoured() {
    let warning = stderr_line(
        &[
            "-U",
            "0",
            "-e",
            "/nonexistent/memory_file",
            "-k",
            "-o",
            "ext_path=/x:64m",
        ],
        "accepted but not supported here",
    )
    .expect("a warning");
    for part in ["-e /nonexistent/memory_file", "-k", "ext_"] {
        assert!(warning.contains(part), "{warning}");
    }
    assert_eq!(
        stderr_line(&["-U", "0"], "accepted but not supported here"),
        None
    );
}

#[test]
fn verbose_start_logs_version_addresses_and_threads() {
    let line = stderr_line(&["-U", "-1", "-t", "3"], "rmemcached ");
    let line = line.expect("a startup line");
    assert!(line.contains("speaking memcached 1.6.18"), "{line}");
    assert!(line.contains("TCP 127.0.0.1:"), "{line}");
    assert!(line.contains("UDP 127.0.0.1:"), "{line}");
    assert!(line.contains("3 worker threads"), "{line}");
    assert!(line.contains("-m 64 MiB"), "{line}");
}
