//! UDP framing: the 8-byte header, request ids, replies split into
//! datagrams of at most 1400 bytes, one reply message per request datagram,
//! and the datagram-atomic rules of the design (no command reads past the
//! end of its datagram; multi-packet requests are refused; tiny datagrams
//! are dropped).
use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::common::show;
use crate::common::{udp_header, udp_recv, udp_request, Datagram};

/// Send one datagram: header (id, seq, total) then `payload`.
fn send(s: &UdpSocket, id: u16, seq: u16, total: u16, payload: &[u8]) {
    let mut d = udp_header(id, seq, total).to_vec();
    d.extend_from_slice(payload);
    s.send(&d).unwrap();
}

/// Receive one raw datagram (header included), or `None` on timeout.
fn recv_raw(s: &UdpSocket) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    let n = s.recv(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// Assert that nothing arrives within `ms` milliseconds.
fn assert_silent(s: &UdpSocket, ms: u64, what: &str) {
    s.set_read_timeout(Some(Duration::from_millis(ms))).unwrap();
    if let Some(d) = recv_raw(s) {
        panic!("{what}: unexpected datagram {}", show(&d));
    }
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
}

/// Check the framing of the datagrams of one reply message and return the
/// reassembled payload.
fn reassemble(grams: &[Vec<u8>], id: u16) -> Vec<u8> {
    assert!(!grams.is_empty(), "no datagram");
    let u = |d: &[u8], i: usize| u16::from_be_bytes([d[i], d[i + 1]]);
    let total = u(&grams[0], 4);
    assert_eq!(grams.len(), total as usize, "datagram count vs total");
    let mut parts = BTreeMap::new();
    for d in grams {
        assert!(d.len() <= 1400, "datagram of {} bytes", d.len());
        assert!(d.len() > 8, "datagram without payload");
        assert_eq!(u(d, 0), id, "request id echoed");
        assert_eq!(u(d, 4), total, "same total in every datagram");
        assert_eq!(u(d, 6), 0, "reserved field");
        let seq = u(d, 2);
        assert!(seq < total, "seq {seq} of {total}");
        assert!(
            parts.insert(seq, d[8..].to_vec()).is_none(),
            "seq {seq} twice"
        );
    }
    parts.into_values().collect::<Vec<_>>().concat()
}

/// Send `req` with id `id` and collect the datagrams of the reply: as many
/// as the first one's total says.
fn request_raw(s: &UdpSocket, id: u16, req: &[u8]) -> Vec<Vec<u8>> {
    send(s, id, 0, 1, req);
    let first = recv_raw(s).unwrap_or_else(|| panic!("no reply to {}", show(req)));
    let total = u16::from_be_bytes([first[4], first[5]]);
    let mut grams = vec![first];
    while grams.len() < total as usize {
        match recv_raw(s) {
            Some(d) => grams.push(d),
            None => panic!("only {} of {total} datagrams", grams.len()),
        }
    }
    grams
}

fn tcp_set(server: &common::Server, key: &str, value: &[u8]) {
    let mut t = server.tcp();
    let mut req = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
    req.extend_from_slice(value);
    req.extend_from_slice(b"\r\n");
    assert_eq!(common::request(&mut t, &req, b"\r\n"), b"STORED\r\n");
}

fn value_of(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| b'a' + ((i + seed as usize) % 26) as u8)
        .collect()
}

#[test]
fn request_id_is_echoed() {
    let server = common::start_server(&[]);
    let s = server.udp();
    for id in [0u16, 1, 0x1234, 0x8000, 0xffff] {
        let grams = request_raw(&s, id, b"version\r\n");
        assert_eq!(grams.len(), 1);
        assert_eq!(
            &grams[0][..8],
            &[(id >> 8) as u8, id as u8, 0, 0, 0, 1, 0, 0]
        );
        assert_eq!(show(&grams[0][8..]), show(b"VERSION 1.6.18\r\n"));
    }
    // The sequence number of the request does not matter to the reply.
    send(&s, 77, 5, 1, b"version\r\n");
    let d = udp_recv(&s).expect("reply");
    assert_eq!((d.id, d.seq, d.total), (77, 0, 1));
}

#[test]
fn large_value_split_into_datagrams() {
    let server = common::start_server(&[]);
    let value = value_of(5000, 0);
    tcp_set(&server, "big", &value);
    let s = server.udp();
    let grams = request_raw(&s, 4242, b"get big\r\n");
    let mut want = b"VALUE big 0 5000\r\n".to_vec();
    want.extend_from_slice(&value);
    want.extend_from_slice(b"\r\nEND\r\n");
    // 5025 bytes: four datagrams of at most 1392 bytes of data.
    assert!(grams.len() >= 4, "{} datagrams", grams.len());
    let got = reassemble(&grams, 4242);
    assert!(got == want, "reply {} != {}", show(&got), show(&want));
    // Nothing more comes for that request.
    assert_silent(&s, 200, "after a split reply");
}

#[test]
fn reply_of_exactly_1392_bytes_takes_one_datagram() {
    let server = common::start_server(&[]);
    // "VALUE k 0 N\r\n" + N + "\r\nEND\r\n" == 1392 for N == 1369.
    let value = value_of(1369, 3);
    tcp_set(&server, "k", &value);
    let s = server.udp();
    let grams = request_raw(&s, 1, b"get k\r\n");
    assert_eq!(
        grams.len(),
        1,
        "datagram sizes {:?}",
        grams.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert_eq!(grams[0].len(), 1400);
    let value = value_of(1370, 3);
    tcp_set(&server, "k", &value);
    let grams = request_raw(&s, 2, b"get k\r\n");
    assert_eq!(grams.len(), 2);
    let got = reassemble(&grams, 2);
    assert_eq!(got.len(), 1393);
}

#[test]
fn several_commands_in_one_datagram_give_one_message() {
    let server = common::start_server(&[]);
    let s = server.udp();
    let got = udp_request(
        &s,
        9,
        b"set a 0 0 1\r\nv\r\nset b 5 0 2\r\nbb\r\nget a b c\r\ndelete a\r\nget a\r\n",
    );
    assert_eq!(
        show(&got),
        show(b"STORED\r\nSTORED\r\nVALUE a 0 1\r\nv\r\nVALUE b 5 2\r\nbb\r\nEND\r\nDELETED\r\nEND\r\n")
    );
    assert_silent(&s, 200, "after the one message");
}

#[test]
fn multi_get_is_one_message() {
    let server = common::start_server(&[]);
    for k in ["k1", "k2", "k3"] {
        tcp_set(&server, k, k.as_bytes());
    }
    let s = server.udp();
    let got = udp_request(&s, 10, b"get k1 missing k2 k3\r\n");
    assert_eq!(
        show(&got),
        show(b"VALUE k1 0 2\r\nk1\r\nVALUE k2 0 2\r\nk2\r\nVALUE k3 0 2\r\nk3\r\nEND\r\n")
    );
    assert_silent(&s, 200, "after a multi-get");
    // gets too.
    let got = udp_request(&s, 11, b"gets k1 k2\r\n");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("VALUE k1 0 2 "), "{text:?}");
    assert!(text.contains("\r\nk1\r\nVALUE k2 0 2 "), "{text:?}");
    assert!(text.ends_with("\r\nk2\r\nEND\r\n"), "{text:?}");
    assert_silent(&s, 200, "after a multi-gets");
}

#[test]
fn large_multi_get_spans_many_datagrams() {
    let server = common::start_server(&[]);
    let mut want = Vec::new();
    let mut req = b"get".to_vec();
    for i in 0..40u8 {
        let key = format!("key{i}");
        let value = value_of(1000, i);
        tcp_set(&server, &key, &value);
        req.extend_from_slice(format!(" {key}").as_bytes());
        want.extend_from_slice(format!("VALUE {key} 0 1000\r\n").as_bytes());
        want.extend_from_slice(&value);
        want.extend_from_slice(b"\r\n");
    }
    want.extend_from_slice(b"END\r\n");
    req.extend_from_slice(b"\r\n");
    let s = server.udp();
    let grams = request_raw(&s, 0xabcd, &req);
    assert!(grams.len() >= 30, "{} datagrams", grams.len());
    let got = reassemble(&grams, 0xabcd);
    assert!(got == want, "reply {} != {}", show(&got), show(&want));
    // And through the common helper, which checks the framing as well.
    assert!(udp_request(&s, 3, &req) == want);
    assert_silent(&s, 200, "after a large multi-get");
}

#[test]
fn multi_packet_requests_are_refused() {
    let server = common::start_server(&[]);
    tcp_set(&server, "k", b"v");
    let s = server.udp();
    for (id, seq, total) in [(21u16, 0u16, 2u16), (22, 1, 2), (23, 0, 0), (24, 0, 300)] {
        send(&s, id, seq, total, b"get k\r\n");
        let d = udp_recv(&s).unwrap_or_else(|| panic!("no reply for total {total}"));
        assert_eq!(
            (d.id, d.seq, d.total),
            (id, 0, 1),
            "header for total {total}"
        );
        assert_eq!(
            show(&d.payload),
            show(b"SERVER_ERROR multi-packet request not supported\r\n"),
            "total {total}"
        );
    }
    // A refused request stores nothing.
    send(&s, 25, 0, 2, b"set k 0 0 1\r\nx\r\n");
    let d = udp_recv(&s).expect("reply");
    assert_eq!(
        show(&d.payload),
        show(b"SERVER_ERROR multi-packet request not supported\r\n")
    );
    assert_eq!(
        udp_request(&s, 26, b"get k\r\n"),
        b"VALUE k 0 1\r\nv\r\nEND\r\n"
    );
}

#[test]
fn tiny_datagrams_get_no_reply() {
    let server = common::start_server(&[]);
    let s = server.udp();
    let full = udp_header(5, 0, 1);
    for n in 0..=8 {
        s.send(&full[..n]).unwrap();
    }
    assert_silent(&s, 300, "datagrams of 0..=8 bytes");
    assert_eq!(udp_request(&s, 6, b"version\r\n"), b"VERSION 1.6.18\r\n");
}

#[test]
fn truncated_set_fails_at_once_and_eats_nothing() {
    let server = common::start_server(&[]);
    let a = server.udp();
    let b = server.udp();
    let start = Instant::now();
    send(&a, 100, 0, 1, b"set k 0 0 10\r\nabc");
    let d: Datagram = udp_recv(&a).expect("no reply to a truncated set");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "reply took {:?}",
        start.elapsed()
    );
    assert_eq!((d.id, d.seq, d.total), (100, 0, 1));
    assert_eq!(show(&d.payload), show(b"CLIENT_ERROR bad data chunk\r\n"));
    // Another client's next datagram is a request of its own.
    assert_eq!(show(&udp_request(&b, 200, b"get k\r\n")), show(b"END\r\n"));
    assert_eq!(
        show(&udp_request(&b, 201, b"set k 0 0 2\r\nok\r\nget k\r\n")),
        show(b"STORED\r\nVALUE k 0 2\r\nok\r\nEND\r\n")
    );
    // Same client, value whose "\r\n" is missing.
    assert_eq!(
        show(&udp_request(&a, 101, b"set k 0 0 2\r\nno")),
        show(b"CLIENT_ERROR bad data chunk\r\n")
    );
    assert_eq!(
        show(&udp_request(&a, 102, b"get k\r\n")),
        show(b"VALUE k 0 2\r\nok\r\nEND\r\n")
    );
    // Commands before the truncated one still answer, in the same message.
    assert_eq!(
        show(&udp_request(&a, 103, b"get k\r\nset j 0 0 5\r\nab")),
        show(b"VALUE k 0 2\r\nok\r\nEND\r\nCLIENT_ERROR bad data chunk\r\n")
    );
    assert_eq!(show(&udp_request(&b, 202, b"get j\r\n")), show(b"END\r\n"));
}

#[test]
fn noreply_set_sends_no_datagram() {
    let server = common::start_server(&[]);
    let s = server.udp();
    send(&s, 1, 0, 1, b"set k 0 0 1 noreply\r\nv\r\n");
    assert_silent(&s, 300, "noreply set");
    send(
        &s,
        2,
        0,
        1,
        b"set k2 0 0 1 noreply\r\nw\r\ndelete k noreply\r\nincr nope 1 noreply\r\n",
    );
    assert_silent(&s, 300, "datagram of noreply commands");
    // A noreply command next to one that answers: one message, one reply.
    assert_eq!(
        show(&udp_request(
            &s,
            3,
            b"set k 0 0 1 noreply\r\nx\r\nget k k2\r\n"
        )),
        show(b"VALUE k 0 1\r\nx\r\nVALUE k2 0 1\r\nw\r\nEND\r\n")
    );
}

#[test]
fn errors_over_udp() {
    let server = common::start_server(&[]);
    let s = server.udp();
    for (id, req, want) in [
        (1u16, &b"foo\r\n"[..], &b"ERROR\r\n"[..]),
        (
            2,
            b"set k 0 abc 1\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (3, b"incr\r\n", b"ERROR\r\n"),
        (
            4,
            b"touch k x\r\n",
            b"CLIENT_ERROR invalid exptime argument\r\n",
        ),
        (
            5,
            b"set k 0 0 1\r\nvv\r\n",
            b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
    ] {
        assert_eq!(
            show(&udp_request(&s, id, req)),
            show(want),
            "request {}",
            show(req)
        );
    }
}

#[test]
fn udp_and_tcp_share_the_cache() {
    let server = common::start_server(&[]);
    let s = server.udp();
    assert_eq!(
        udp_request(&s, 1, b"set shared 3 0 2\r\nhi\r\n"),
        b"STORED\r\n"
    );
    let mut t = server.tcp();
    assert_eq!(
        common::request(&mut t, b"get shared\r\n", b"END\r\n"),
        b"VALUE shared 3 2\r\nhi\r\nEND\r\n"
    );
    assert_eq!(
        common::request(&mut t, b"incr n 1\r\nset n 0 0 1\r\n7\r\n", b"STORED\r\n"),
        b"NOT_FOUND\r\nSTORED\r\n"
    );
    assert_eq!(udp_request(&s, 2, b"incr n 5\r\n"), b"12\r\n");
}

#[test]
fn pipelined_datagrams_all_answered() {
    let server = common::start_server(&[]);
    const N: u16 = 200;
    for i in 0..N {
        tcp_set(&server, &format!("p{i}"), format!("value{i}").as_bytes());
    }
    let s = server.udp();
    let reader = s.try_clone().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let want = |i: u16| {
        format!(
            "VALUE p{i} 0 {}\r\nvalue{i}\r\nEND\r\n",
            format!("value{i}").len()
        )
    };
    let mut got: HashMap<u16, Vec<u8>> = HashMap::new();
    let mut missing: Vec<u16> = (0..N).collect();
    for round in 0..3 {
        // Read in another thread while sending, so the client's receive
        // buffer does not overflow.
        let r = reader.try_clone().unwrap();
        let expect = missing.len();
        let rx = std::thread::spawn(move || {
            let mut out = Vec::new();
            while out.len() < expect {
                match udp_recv(&r) {
                    Some(d) => out.push(d),
                    None => break,
                }
            }
            out
        });
        for &i in &missing {
            send(&s, i, 0, 1, format!("get p{i}\r\n").as_bytes());
        }
        for d in rx.join().unwrap() {
            assert_eq!((d.seq, d.total), (0, 1), "reply to {}", d.id);
            assert!(d.id < N, "unknown id {}", d.id);
            got.insert(d.id, d.payload);
        }
        missing.retain(|i| !got.contains_key(i));
        if missing.is_empty() {
            break;
        }
        eprintln!(
            "round {round}: {} replies missing, resending",
            missing.len()
        );
    }
    assert!(missing.is_empty(), "never answered: {missing:?}");
    for i in 0..N {
        assert_eq!(show(&got[&i]), show(want(i).as_bytes()), "reply to id {i}");
    }
}

/// Many clients at once, each with its own socket, keys and request ids:
/// every reply goes to the client that asked, with its id, its data, and
/// its datagrams in order (memaslap aborts on any stray datagram).
#[test]
fn concurrent_clients_get_only_their_own_replies() {
    let server = common::start_server(&[]);
    const CLIENTS: usize = 16;
    const OPS: usize = 1500;
    let threads: Vec<_> = (0..CLIENTS)
        .map(|w| {
            let s = server.udp();
            std::thread::spawn(move || {
                let mut id: u16 = (w as u16).wrapping_mul(4000);
                for j in 0..OPS {
                    id = id.wrapping_add(1);
                    let key = format!("c{w}k{}", j % 20);
                    let (req, want) = if j % 5 == 0 {
                        // Values of 0..2600 bytes: replies of one to three
                        // datagrams.
                        let v = value_of((j * 37 + w * 101) % 2600, w as u8);
                        let mut req = format!("set {key} {w} 0 {}\r\n", v.len()).into_bytes();
                        req.extend_from_slice(&v);
                        req.extend_from_slice(b"\r\n");
                        (req, Some(b"STORED\r\n".to_vec()))
                    } else {
                        (
                            format!("get {key} c{w}k{}\r\n", (j + 7) % 20).into_bytes(),
                            None,
                        )
                    };
                    send(&s, id, 0, 1, &req);
                    let mut grams = Vec::new();
                    let first =
                        recv_raw(&s).unwrap_or_else(|| panic!("client {w} op {j}: no reply"));
                    let total = u16::from_be_bytes([first[4], first[5]]) as usize;
                    grams.push(first);
                    while grams.len() < total {
                        grams.push(recv_raw(&s).unwrap_or_else(|| {
                            panic!("client {w} op {j}: {} of {total} datagrams", grams.len())
                        }));
                    }
                    for (k, d) in grams.iter().enumerate() {
                        let h = |i: usize| u16::from_be_bytes([d[i], d[i + 1]]);
                        assert_eq!(
                            (h(0), h(2), h(4)),
                            (id, k as u16, total as u16),
                            "client {w} op {j}: datagram {k}: {}",
                            show(&d[8..])
                        );
                    }
                    let body = reassemble(&grams, id);
                    match want {
                        Some(want) => assert_eq!(show(&body), show(&want), "client {w} op {j}"),
                        None => {
                            // Only this client's keys and flags.
                            let text = String::from_utf8_lossy(&body);
                            assert!(
                                text.ends_with("END\r\n"),
                                "client {w} op {j}: {}",
                                show(&body)
                            );
                            for line in text.split("\r\n").filter(|l| l.starts_with("VALUE ")) {
                                let f: Vec<&str> = line.split(' ').collect();
                                assert!(
                                    f[1].starts_with(&format!("c{w}k")) && f[2] == w.to_string(),
                                    "client {w} op {j}: {line}"
                                );
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // No stray datagrams left for anyone.
    let s = server.udp();
    assert_eq!(udp_request(&s, 1, b"version\r\n"), b"VERSION 1.6.18\r\n");
}
