//! A multi-get asking for a large item many times is served in slices:
//! the whole reply arrives, in order, while the server's memory stays far
//! below the reply's size.
use crate::common;

use std::io::{Read, Write};
use std::time::Duration;

#[test]
fn huge_multi_get_reply_is_streamed_not_buffered() {
    let server = common::start_server(&["-t", "1"]);
    let value = vec![b'v'; 1_000_000];
    let mut s = server.tcp();
    let mut req = b"set big 0 0 1000000\r\n".to_vec();
    req.extend_from_slice(&value);
    req.extend_from_slice(b"\r\n");
    assert_eq!(common::request(&mut s, &req, b"\r\n"), b"STORED\r\n");
    let before = common::rss_kb(server.child.id());

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
    let peak = common::rss_kb(server.child.id());
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

/// Over UDP a reply must be whole before its first datagram, so a
/// multi-get asking for a 500 KB value 170 times (85 MB from a 700-byte
/// datagram) gets memcached's out-of-memory error instead, and 32 such
/// datagrams at once leave the server's peak memory far below what the
/// replies would have taken.
#[test]
fn huge_udp_multi_gets_are_refused_in_bounded_memory() {
    let server = common::start_server(&["-t", "2"]);
    let mut s = server.tcp();
    let mut req = b"set big 0 0 500000\r\n".to_vec();
    req.extend_from_slice(&vec![b'v'; 500_000]);
    req.extend_from_slice(b"\r\n");
    assert_eq!(common::request(&mut s, &req, b"\r\n"), b"STORED\r\n");
    let before = common::peak_rss_kb(server.child.id());

    let u = server.udp();
    u.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let huge = format!("get{}\r\n", " big".repeat(170));
    for id in 0..32u16 {
        let mut d = common::udp_header(id, 0, 1).to_vec();
        d.extend_from_slice(huge.as_bytes());
        u.send(&d).unwrap();
    }
    let mut errors = 0;
    while let Some(d) = common::udp_recv(&u) {
        assert_eq!(
            d.payload, b"SERVER_ERROR out of memory writing get response\r\n",
            "request {}",
            d.id
        );
        errors += 1;
        if errors == 32 {
            break;
        }
    }
    assert_eq!(errors, 32);
    let grown = common::peak_rss_kb(server.child.id()).saturating_sub(before);
    assert!(grown < 100 * 1024, "peak RSS grew by {grown} kB");

    // The server still serves UDP.
    assert_eq!(
        common::request(&mut s, b"set small 0 0 2\r\nhi\r\n", b"\r\n"),
        b"STORED\r\n"
    );
    let mut d = common::udp_header(500, 0, 1).to_vec();
    d.extend_from_slice(b"get small\r\n");
    u.send(&d).unwrap();
    let reply = common::udp_recv(&u).expect("a reply");
    assert_eq!(reply.payload, b"VALUE small 0 2\r\nhi\r\nEND\r\n");
}
