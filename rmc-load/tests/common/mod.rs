//! Servers for the end-to-end tests: rmemcached or the real memcached,
//! started on 127.0.0.1 with ports the kernel picks, and killed when
//! dropped.
//!
//! The rmemcached binary belongs to another package of the workspace, so
//! cargo does not hand it to these tests (`CARGO_BIN_EXE_*` names only this
//! package's binaries); [`server_bin`] finds it in the shared target
//! directory instead.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running server, killed when dropped.
pub struct Server {
    child: Child,
    /// TCP port.
    pub port: u16,
    /// UDP port.
    pub udp_port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// A TCP connection with a read timeout.
    pub fn tcp(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    /// The value of one line of `stats`.
    pub fn stat(&self, name: &str) -> u64 {
        let mut s = self.tcp();
        s.write_all(b"stats\r\n").unwrap();
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        while !reply.ends_with(b"END\r\n") {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
                Err(e) => panic!("stats: {e}"),
            }
        }
        let text = String::from_utf8(reply).unwrap();
        let prefix = format!("STAT {name} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .parse()
            .unwrap()
    }
}

/// The rmemcached binary: the one `RMC_SERVER_BIN` names, or else the one
/// in this test's own target directory and profile (`target/debug/` for
/// `target/debug/deps/load_generator-*`). `cargo test --workspace` (what
/// scripts/test.sh and CI run) builds it, from the current sources, before
/// any test runs. `cargo test -p rmc-load` alone does not: it uses the
/// binary already there, and builds one with cargo only if there is none.
pub fn server_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("RMC_SERVER_BIN") {
            return PathBuf::from(bin);
        }
        let exe = std::env::current_exe().expect("the test's own path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("a test executable in <target>/<profile>/deps/");
        let bin = profile_dir.join(format!("rmemcached{}", std::env::consts::EXE_SUFFIX));
        if !bin.exists() {
            build_server(profile_dir);
        }
        assert!(
            bin.exists(),
            "no server binary at {}: run `cargo test --workspace`, or set RMC_SERVER_BIN",
            bin.display()
        );
        bin
    })
}

/// Build the server binary into `profile_dir` (`<target>/<profile>`), with
/// the cargo that built this test.
fn build_server(profile_dir: &Path) {
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let target_dir = profile_dir.parent().expect("<target>/<profile>");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--package",
            "rmemcached",
            "--bin",
            "rmemcached",
        ])
        .args(["--profile", profile])
        .arg("--target-dir")
        .arg(target_dir)
        .arg("--manifest-path")
        .arg(&manifest)
        .stdin(Stdio::null())
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo build of the server: {status}");
}

/// Start rmemcached with `extra` flags.
pub fn start_server(extra: &[&str]) -> Server {
    start_with(server_bin(), extra)
}

/// Start any memcached-compatible binary on 127.0.0.1, TCP and UDP ports
/// picked by the kernel (`-p -1 -U -1`) and read back from the file named
/// by `MEMCACHED_PORT_FILENAME`, so that parallel tests never race for a
/// port; `extra` flags come after and win.
pub fn start_with(bin: impl AsRef<Path>, extra: &[&str]) -> Server {
    let port_file = std::env::temp_dir().join(format!(
        "rmc-load-ports.{}.{}",
        std::process::id(),
        next_serial()
    ));
    let _ = std::fs::remove_file(&port_file);
    let child = Command::new(bin.as_ref())
        .args(["-l", "127.0.0.1", "-p", "-1", "-U", "-1"])
        .args(extra)
        .args(["-u", "root"])
        .env("MEMCACHED_PORT_FILENAME", &port_file)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.as_ref().display()));
    // Owned before the wait, so that a failed start still kills the child.
    let mut server = Server {
        child,
        port: 0,
        udp_port: 0,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.port == 0 && Instant::now() < deadline {
        let text = std::fs::read_to_string(&port_file).unwrap_or_default();
        for line in text.lines() {
            let port = line.rsplit(' ').next().and_then(|p| p.parse().ok());
            match (line.split(' ').next(), port) {
                (Some("TCP"), Some(p)) => server.port = p,
                (Some("UDP"), Some(p)) => server.udp_port = p,
                _ => {}
            }
        }
        if server.port == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = std::fs::remove_file(&port_file);
    assert!(server.port != 0, "server did not report its port");
    server
}

/// A number no other call in this process gets.
fn next_serial() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
