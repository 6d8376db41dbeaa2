//! A multi-get asking for a large item many times is served in slices:
//! the whole reply arrives, in order, while the server's memory stays far
//! below the reply's size.
mod common;

use std::io::{Read, Write};
use std::time::Duration;

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn huge_multi_get_reply_is_streamed_not_buffered() {
    let server = common::start_server(&["-t", "1"]);
    let value = vec![b'v'; 1_000_000];
    let mut s = server.tcp();
    let mut req = b"set big 0 0 1000000\r\n".to_vec();
    req.extend_from_slice(&value);
    req.extend_from_slice(b"\r\n");
    assert_eq!(common::request(&mut s, &req, b"\r\n"), b"STORED\r\n");
    let before = rss_kb(server.child.id());

    // 300 copies of a 1 MB value: a 300 MB reply from a 1.2 KB request.
    const COPIES: usize = 300;
    let mut get = b"get".to_vec();
    for _ in 0..COPIES {
        get.extend_from_slice(b" big");
    }
    get.extend_from_slice(b"\r\n");
    s.write_all(&get).unwrap();
    // Let the server run ahead while the client reads nothing.
    std::thread::sleep(Duration::from_millis(500));
    let peak = rss_kb(server.child.id());
    assert!(
        peak < before + 64 * 1024,
        "server buffered the reply: RSS {before} kB -> {peak} kB"
    );

    // Then the whole reply arrives intact.
    let header = b"VALUE big 0 1000000\r\n";
    let one = header.len() + value.len() + 2;
    let mut buf = vec![0u8; one];
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for i in 0..COPIES {
        s.read_exact(&mut buf).unwrap();
        assert!(buf.starts_with(header), "value {i} header");
        assert!(
            buf[header.len()..one - 2].iter().all(|&b| b == b'v'),
            "value {i} data"
        );
        assert!(buf.ends_with(b"\r\n"));
    }
    assert_eq!(common::read_exact(&mut s, 5), b"END\r\n");
}
