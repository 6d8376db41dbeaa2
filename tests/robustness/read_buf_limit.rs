//! `-o read_buf_mem_limit`: both servers, the real memcached and
//! rmemcached, get the same requests under the same tight limit and must
//! fail them the same way, while a well-behaved client on the same server
//! keeps working.
use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use crate::common::{read_until, request, start_server, start_with};

const MEMCACHED: &str = "/usr/bin/memcached";
const FLAGS: [&str; 6] = ["-o", "read_buf_mem_limit=1", "-t", "32", "-R", "500"];

fn stat(s: &mut std::net::TcpStream, name: &str) -> u64 {
    let reply = String::from_utf8(request(s, b"stats\r\n", b"END\r\n")).unwrap();
    let prefix = format!("STAT {name} ");
    reply
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name}"))
        .parse()
        .unwrap()
}

/// What one server does with a 500-key multi-get and then 500 pipelined
/// meta gets, under 1 MB shared by 32 threads (two 16 KiB chunks each).
fn run(server: &common::Server) -> (String, u64, bool, u64) {
    let mut s = server.tcp();
    let keys = vec!["foo"; 500].join(" ");
    s.write_all(format!("get {keys}\r\n").as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(&mut s).read_line(&mut line).unwrap();
    let oom_after_get = stat(&mut s, "response_obj_oom");

    let mut p = server.tcp();
    p.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    p.write_all("mg foo v\r\n".repeat(500).as_bytes()).unwrap();
    let mut rest = Vec::new();
    let closed = p.read_to_end(&mut rest).is_ok();
    (
        line,
        oom_after_get,
        closed,
        stat(&mut s, "response_obj_oom"),
    )
}

#[test]
fn tight_limit_fails_like_memcached() {
    let mc = start_with(MEMCACHED, &FLAGS);
    let rm = start_server(&FLAGS);
    let (mc_line, mc_oom1, mc_closed, mc_oom2) = run(&mc);
    let (rm_line, rm_oom1, rm_closed, rm_oom2) = run(&rm);
    assert_eq!(
        mc_line,
        "SERVER_ERROR out of memory writing get response\r\n"
    );
    assert_eq!(rm_line, mc_line);
    assert!(mc_oom1 > 0 && rm_oom1 > 0, "{mc_oom1} {rm_oom1}");
    assert!(
        mc_closed && rm_closed,
        "stacked replies close the connection"
    );
    assert!(mc_oom2 > 1 && rm_oom2 > 1, "{mc_oom2} {rm_oom2}");

    // A client within the limit is served as usual, on every thread.
    for _ in 0..40 {
        let mut c = rm.tcp();
        assert_eq!(
            request(&mut c, b"set k 0 0 2\r\nhi\r\n", b"\r\n"),
            b"STORED\r\n"
        );
        assert_eq!(
            read_until(
                &mut {
                    c.write_all(b"get k k k\r\n").unwrap();
                    c
                },
                b"END\r\n"
            ),
            b"VALUE k 0 2\r\nhi\r\nVALUE k 0 2\r\nhi\r\nVALUE k 0 2\r\nhi\r\nEND\r\n"
        );
    }
    // memcached prints the limit in bytes.
    let mut c = rm.tcp();
    let settings = String::from_utf8(request(&mut c, b"stats settings\r\n", b"END\r\n")).unwrap();
    assert!(
        settings.contains("STAT read_buf_mem_limit 1048576\r\n"),
        "{settings}"
    );
}

/// Without the option nothing is counted or refused.
#[test]
fn no_limit_serves_huge_multigets() {
    let rm = start_server(&["-t", "32", "-R", "500"]);
    let mut s = rm.tcp();
    let keys = vec!["foo"; 5000].join(" ");
    let reply = request(&mut s, format!("get {keys}\r\n").as_bytes(), b"END\r\n");
    assert_eq!(reply, b"END\r\n");
    assert_eq!(stat(&mut s, "response_obj_oom"), 0);
}
