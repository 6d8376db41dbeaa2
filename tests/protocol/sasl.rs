//! `-S`: SASL authentication of binary connections, with the real Cyrus
//! SASL library and a sasldb made by `saslpasswd2`, as memcached's
//! t/binary-sasl.t sets it up. One exchange script runs against
//! rmemcached and the real memcached 1.6.18 and the transcripts must be
//! equal; a real client (pylibmc, through libmemcached's SASL) runs
//! against both too.
//!
//! Skipped, saying so, only where `saslpasswd2` (sasl2-bin) or
//! `libsasl2.so.2` is missing; scripts/test.sh installs them (and the
//! PLAIN and CRAM-MD5 mechanisms, libsasl2-modules, and pylibmc), so CI
//! never skips.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common;

const MEMCACHED: &str = "/usr/bin/memcached";
const REALM: &str = "memcached.realm";
const USER: &str = "testuser";
const PASS: &str = "testpass";

const VERSION: u8 = 0x0b;
const GET: u8 = 0x00;
const SET: u8 = 0x01;
const STAT: u8 = 0x10;
const LIST_MECHS: u8 = 0x20;
const AUTH: u8 = 0x21;
const STEP: u8 = 0x22;

/// `saslpasswd2`, when it and the library are installed.
fn sasl_tools() -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path.split(':').chain(["/usr/sbin", "/usr/bin", "/sbin"]);
    let tool = dirs
        .map(|d| Path::new(d).join("saslpasswd2"))
        .find(|p| p.exists());
    let Some(tool) = tool else {
        eprintln!("skipping: saslpasswd2 not found (apt-get install sasl2-bin)");
        return None;
    };
    let ldconfig = Command::new("/sbin/ldconfig").arg("-p").output();
    let listed =
        ldconfig.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("libsasl2.so.2"));
    if !listed {
        eprintln!("skipping: libsasl2.so.2 not found (apt-get install libsasl2-2)");
        return None;
    }
    Some(tool)
}

/// A directory holding `memcached.conf` (PLAIN and CRAM-MD5 from a
/// sasldb) and the sasldb with one user, as t/binary-sasl.t makes them.
fn sasl_dir(tool: &Path) -> PathBuf {
    let dir = common::unique_name("rmc-sasl");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("sasldb");
    let conf = format!(
        "mech_list: plain cram-md5\nlog_level: 5\nsasldb_path: {}\n",
        db.display()
    );
    std::fs::write(dir.join("memcached.conf"), conf).unwrap();
    let mut child = Command::new(tool)
        .args(["-a", "memcached", "-f"])
        .arg(&db)
        .args(["-u", REALM, "-c", "-p", USER])
        .stdin(Stdio::piped())
        .spawn()
        .expect("run saslpasswd2");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASS}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "saslpasswd2 failed");
    dir
}

fn start(bin: &str, dir: &Path) -> common::Server {
    common::start_with_env(bin, &["-S"], &[("SASL_CONF_PATH", dir.to_str().unwrap())])
}

fn request(opcode: u8, ext: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut b = vec![0x80, opcode];
    b.extend_from_slice(&(key.len() as u16).to_be_bytes());
    b.push(ext.len() as u8);
    b.extend_from_slice(&[0, 0, 0]);
    b.extend_from_slice(&((ext.len() + key.len() + value.len()) as u32).to_be_bytes());
    b.extend_from_slice(&[0; 12]);
    b.extend_from_slice(ext);
    b.extend_from_slice(key);
    b.extend_from_slice(value);
    b
}

/// One reply: opcode, status, key, value (the CAS is left out: it is
/// the one field allowed to differ).
type Reply = (u8, u16, Vec<u8>, Vec<u8>);

/// The next reply, or `None` once the server has closed the connection.
fn reply(s: &mut TcpStream) -> Option<Reply> {
    let mut h = [0u8; 24];
    if s.read_exact(&mut h).is_err() {
        return None;
    }
    assert_eq!(h[0], 0x81, "reply magic");
    let extlen = h[4] as usize;
    let keylen = u16::from_be_bytes([h[2], h[3]]) as usize;
    let bodylen = u32::from_be_bytes(h[8..12].try_into().unwrap()) as usize;
    let body = common::read_exact(s, bodylen);
    let status = u16::from_be_bytes([h[6], h[7]]);
    let key = body[extlen..extlen + keylen].to_vec();
    Some((h[1], status, key, body[extlen + keylen..].to_vec()))
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Send one request and describe its reply for the transcript.
fn exchange(s: &mut TcpStream, req: &[u8]) -> String {
    s.write_all(req).unwrap();
    describe(reply(s))
}

fn describe(r: Option<Reply>) -> String {
    match r {
        None => "closed".into(),
        Some((op, status, key, value)) => format!(
            "op {op:#04x} status {status:#06x} key {:?} value {:?}",
            String::from_utf8_lossy(&key),
            String::from_utf8_lossy(&value)
        ),
    }
}

/// PLAIN's message: no authorization id, the user with its realm, the
/// password.
fn plain(pass: &str) -> Vec<u8> {
    format!("\0{USER}@{REALM}\0{pass}").into_bytes()
}

fn set_ext() -> [u8; 8] {
    [0; 8]
}

/// The binary `stats` values named, from one `STAT` request.
fn stats(s: &mut TcpStream, sub: &[u8], names: &[&str]) -> Vec<String> {
    s.write_all(&request(STAT, &[], sub, b"")).unwrap();
    let mut all = Vec::new();
    loop {
        let (_, status, key, value) = reply(s).expect("stats reply");
        assert_eq!(status, 0);
        if key.is_empty() {
            break;
        }
        all.push((
            String::from_utf8(key).unwrap(),
            String::from_utf8(value).unwrap(),
        ));
    }
    names
        .iter()
        .map(|n| match all.iter().find(|(k, _)| k == n) {
            Some((k, v)) => format!("{k} {v}"),
            None => format!("{n} missing"),
        })
        .collect()
}

/// The exchanges of t/binary-sasl.t and a few more, as lines to compare.
fn transcript(port: u16) -> Vec<String> {
    let mut t = Vec::new();
    // Before authenticating: VERSION and the mechanisms are served; a
    // store is refused and the connection closed.
    let mut c = connect(port);
    t.push(exchange(&mut c, &request(VERSION, &[], b"", b"")));
    c.write_all(&request(LIST_MECHS, &[], b"", b"")).unwrap();
    let (op, status, _, mechs) = reply(&mut c).unwrap();
    let mut mechs: Vec<_> = String::from_utf8(mechs)
        .unwrap()
        .split(' ')
        .map(String::from)
        .collect();
    mechs.sort();
    t.push(format!("op {op:#04x} status {status:#06x} mechs {mechs:?}"));
    t.push(exchange(
        &mut c,
        &request(SET, &set_ext(), b"x", b"somevalue"),
    ));
    t.push(describe(reply(&mut c)));

    // A wrong password, then a get: refused and closed.
    let mut c = connect(port);
    t.push(exchange(
        &mut c,
        &request(AUTH, &[], b"PLAIN", &plain("wrongpassword")),
    ));
    t.push(exchange(&mut c, &request(GET, &[], b"x", b"")));
    t.push(describe(reply(&mut c)));

    // A mechanism name too long, then the right password: served until
    // the mechanisms are listed again (memcached forgets the
    // authentication on every SASL command).
    let mut c = connect(port);
    t.push(exchange(
        &mut c,
        &request(AUTH, &[], &[b'X'; 40], &plain(PASS)),
    ));
    t.push(exchange(
        &mut c,
        &request(AUTH, &[], b"PLAIN", &plain(PASS)),
    ));
    t.push(exchange(
        &mut c,
        &request(SET, &set_ext(), b"x", b"somevalue"),
    ));
    t.push(exchange(&mut c, &request(GET, &[], b"x", b"")));
    t.push(exchange(&mut c, &request(LIST_MECHS, &[], b"", b"")));
    t.push(exchange(&mut c, &request(GET, &[], b"x", b"")));
    t.push(describe(reply(&mut c)));

    // A step with no exchange started.
    let mut c = connect(port);
    t.push(exchange(
        &mut c,
        &request(STEP, &[], b"PLAIN", &plain(PASS)),
    ));

    // CRAM-MD5 takes two steps: the first is answered AUTH_CONTINUE with
    // the server's challenge; a wrong answer fails.
    let mut c = connect(port);
    c.write_all(&request(AUTH, &[], b"CRAM-MD5", b"")).unwrap();
    let (op, status, _, challenge) = reply(&mut c).unwrap();
    t.push(format!(
        "op {op:#04x} status {status:#06x} challenge <...>: {}",
        challenge.starts_with(b"<") && challenge.ends_with(b">")
    ));
    t.push(exchange(
        &mut c,
        &request(STEP, &[], b"CRAM-MD5", b"testuser 0123"),
    ));

    // ASCII is not spoken: a request line long enough to be a binary
    // header has the wrong magic, and the connection is closed.
    let mut c = connect(port);
    c.write_all(b"get a_key_long_enough_for_a_header\r\n")
        .unwrap();
    let mut buf = [0u8; 64];
    t.push(format!(
        "ascii: {:?}",
        c.read(&mut buf).map_err(|e| e.kind())
    ));

    // The counters: every finished exchange, and the failed ones.
    let mut c = connect(port);
    t.push(exchange(
        &mut c,
        &request(AUTH, &[], b"PLAIN", &plain(PASS)),
    ));
    t.extend(stats(&mut c, b"", &["auth_cmds", "auth_errors"]));
    t.extend(stats(
        &mut c,
        b"settings",
        &["auth_enabled_sasl", "binding_protocol", "udpport"],
    ));
    t
}

#[test]
fn sasl_exchanges_match_memcached() {
    let Some(tool) = sasl_tools() else { return };
    let dir = sasl_dir(&tool);
    let ours = transcript(start(env!("CARGO_BIN_EXE_rmemcached"), &dir).port);
    let text = ours.join("\n");
    // What the transcript must say, whatever memcached says.
    for want in [
        "op 0x0b status 0x0000 key \"\" value \"1.6.18\"",
        "mechs [\"CRAM-MD5\", \"PLAIN\"]",
        "op 0x01 status 0x0020 key \"\" value \"Auth failure.\"\nclosed",
        "op 0x21 status 0x0004 key \"\" value \"Invalid arguments\"",
        "op 0x21 status 0x0000 key \"\" value \"Authenticated\"",
        "op 0x00 status 0x0000 key \"\" value \"somevalue\"",
        "op 0x22 status 0x0020",
        "op 0x21 status 0x0021 challenge <...>: true",
        "ascii: Ok(0)",
        "auth_cmds 5\nauth_errors 3\nauth_enabled_sasl yes\nbinding_protocol binary\nudpport 0",
    ] {
        assert!(text.contains(want), "no {want:?} in\n{text}");
    }
    let theirs = transcript(start(MEMCACHED, &dir).port);
    assert_eq!(ours, theirs, "rmemcached, then memcached");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pylibmc_authenticates_as_with_memcached() {
    let Some(tool) = sasl_tools() else { return };
    let dir = sasl_dir(&tool);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/sasl-pylibmc.py");
    let user = format!("{USER}@{REALM}");
    for bin in [env!("CARGO_BIN_EXE_rmemcached"), MEMCACHED] {
        let server = start(bin, &dir);
        let out = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(format!("127.0.0.1:{}", server.port))
            .args([user.as_str(), PASS])
            .output()
            .expect("run /usr/bin/python3");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{bin}: pylibmc (apt-get install python3-pylibmc; scripts/test.sh does):\n{text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn s_refuses_ascii_and_udp_at_start() {
    for (args, msg) in [
        (
            &["-B", "ascii"][..],
            "ERROR: You cannot allow the ASCII protocol while using SASL.",
        ),
        (
            &["-B", "auto"][..],
            "ERROR: You cannot allow the ASCII protocol while using SASL.",
        ),
        (
            &["-U", "11211"][..],
            "ERROR: Cannot enable UDP while using binary SASL authentication.",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_rmemcached"))
            .arg("-S")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim_end(),
            msg,
            "{args:?}"
        );
    }
}

#[test]
fn memcached_sasl_pwdb_is_checked_first() {
    // memcached's --enable-sasl-pwdb (Debian's memcached lacks it, so
    // rmemcached alone): a `user:password` file checked before the sasldb.
    let Some(tool) = sasl_tools() else { return };
    let dir = sasl_dir(&tool);
    let pwdb = dir.join("pwdb");
    std::fs::write(&pwdb, "alice:secret:extra\nbob:pw\n").unwrap();
    let server = common::start_server_env(
        &["-S"],
        &[
            ("SASL_CONF_PATH", dir.to_str().unwrap()),
            ("MEMCACHED_SASL_PWDB", pwdb.to_str().unwrap()),
        ],
    );
    let auth = |user: &str, pass: &str| {
        let mut c = connect(server.port);
        let msg = format!("\0{user}\0{pass}");
        exchange(&mut c, &request(AUTH, &[], b"PLAIN", msg.as_bytes()))
    };
    let passed = "op 0x21 status 0x0000 key \"\" value \"Authenticated\"";
    let failed = "op 0x21 status 0x0020 key \"\" value \"Auth failure.\"";
    assert_eq!(auth("alice", "secret"), passed);
    assert_eq!(auth("alice", "secre"), failed);
    assert_eq!(auth("bob", "pw"), passed);
    assert_eq!(auth("carol", "pw"), failed);
    // The sasldb still answers for its own users.
    assert_eq!(auth(&format!("{USER}@{REALM}"), PASS), passed);
    let _ = std::fs::remove_dir_all(&dir);
}
