//! The UDP amplification guard (`-o udp_allow`, `-o udp_reply_rate`) over
//! real sockets: a source outside the allow-list gets nothing back and is
//! not served, a source over its reply budget gets nothing more, and the
//! counters in `stats` show each drop. The "spoofed" source is 127.0.0.1
//! itself, left out of the allow-list.
use crate::common;

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

/// memcached's `stats` and this server's own (`stats rmemcached`, where
/// the UDP guard's counters are).
fn stats(server: &common::Server) -> HashMap<String, String> {
    let mut s = server.tcp();
    let mut text = common::request(&mut s, b"stats\r\n", b"END\r\n");
    text.extend(common::request(&mut s, b"stats rmemcached\r\n", b"END\r\n"));
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| l.strip_prefix("STAT "))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn counter(server: &common::Server, name: &str) -> u64 {
    stats(server)[name].parse().unwrap()
}

/// Send one framed request and wait briefly for any reply datagram.
fn udp_try(server: &common::Server, id: u16, req: &[u8]) -> Option<Vec<u8>> {
    let s = server.udp();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut d = common::udp_header(id, 0, 1).to_vec();
    d.extend_from_slice(req);
    s.send(&d).unwrap();
    common::udp_recv(&s).map(|d| d.payload)
}

#[test]
fn default_allow_list_serves_loopback() {
    let server = common::start_server(&[]);
    let reply = udp_try(&server, 1, b"version\r\n").expect("a reply");
    assert_eq!(reply, b"VERSION 1.6.18\r\n");
    let st = stats(&server);
    assert_eq!(st["udp_requests"], "1");
    assert_eq!(st["udp_replies"], "1");
    assert_eq!(st["udp_dropped_disallowed"], "0");
}

#[test]
fn disallowed_source_gets_nothing_and_changes_nothing() {
    let server = common::start_server(&["-o", "udp_allow=10.0.0.0/8;192.0.2.1"]);
    assert_eq!(udp_try(&server, 1, b"version\r\n"), None);
    assert_eq!(udp_try(&server, 2, b"set k 0 0 1\r\nx\r\n"), None);
    // The set was not served either.
    let mut t = server.tcp();
    assert_eq!(
        common::request(&mut t, b"get k\r\n", b"END\r\n"),
        b"END\r\n"
    );
    let st = stats(&server);
    assert_eq!(st["udp_dropped_disallowed"], "2");
    assert_eq!(st["udp_requests"], "0");
    assert_eq!(st["udp_replies"], "0");
    // TCP is not affected.
    assert_eq!(
        common::request(&mut t, b"version\r\n", b"\r\n"),
        b"VERSION 1.6.18\r\n"
    );
}

#[test]
fn reply_budget_caps_bytes_per_source() {
    let server = common::start_server(&["-o", "udp_reply_rate=2000"]);
    let mut t = server.tcp();
    let value = "v".repeat(1500);
    let r = common::request(
        &mut t,
        format!("set big 0 0 1500\r\n{value}\r\n").as_bytes(),
        b"\r\n",
    );
    assert_eq!(r, b"STORED\r\n");
    // About 1,540 bytes on the wire: within the 2,000-byte burst.
    let first = udp_try(&server, 1, b"get big\r\n").expect("first reply");
    assert!(first.starts_with(b"VALUE big 0 1500\r\n"));
    // The same again at once: over the budget, dropped.
    assert_eq!(udp_try(&server, 2, b"get big\r\n"), None);
    assert_eq!(counter(&server, "udp_dropped_rate"), 1);
    // A small reply still fits what is left.
    assert!(udp_try(&server, 3, b"version\r\n").is_some());
}

#[test]
fn short_and_multi_packet_datagrams_are_counted() {
    let server = common::start_server(&[]);
    let s = server.udp();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s.send(&[0, 1, 0, 0, 0, 1, 0, 0]).unwrap();
    s.send(&[]).unwrap();
    let mut d = common::udp_header(9, 0, 2).to_vec();
    d.extend_from_slice(b"get a\r\n");
    s.send(&d).unwrap();
    let reply = common::udp_recv(&s).expect("an error reply");
    assert_eq!(
        reply.payload,
        b"SERVER_ERROR multi-packet request not supported\r\n"
    );
    let st = stats(&server);
    assert_eq!(st["udp_short_dropped"], "2");
    assert_eq!(st["udp_multipacket_rejected"], "1");
}

#[test]
fn settings_show_the_guard_and_bad_lists_are_refused() {
    let server = common::start_server(&["-o", "udp_allow=any,udp_reply_rate=5000"]);
    let mut t = server.tcp();
    let st = String::from_utf8(common::request(&mut t, b"stats settings\r\n", b"END\r\n")).unwrap();
    assert!(st.contains("STAT udp_allow any\r\n"), "{st}");
    assert!(st.contains("STAT udp_reply_rate 5000\r\n"), "{st}");
    t.write_all(b"quit\r\n").unwrap();

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rmemcached"))
        .args(["-o", "udp_allow=10.0.0.0/33", "-U", "0", "-p", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("udp_allow"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
