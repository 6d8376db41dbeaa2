//! Properties of the protocol code over arbitrary bytes (proptest): the
//! text, meta and binary parsers and the UDP datagram path never panic,
//! always either consume a request or ask for more bytes, and never build
//! a reply larger than their limits allow; and round trips: a UDP frame
//! header survives serializing and parsing, and what a text or binary set
//! stores (key, flags, value), a get gives back byte for byte.
use proptest::prelude::*;

use rmemcached::mem_budget::ERROR_ROOM;
use rmemcached::proto::action::Parsed;
use rmemcached::proto::session::Session;
use rmemcached::proto::{binary, datagram, text};
use rmemcached::server::Server;
use rmemcached::settings::Settings;
use rmemcached::udp;

fn server() -> Server {
    Server::new(Settings {
        maxbytes: 8 << 20,
        ..Settings::default()
    })
}

/// A session as a UDP connection starts each datagram with.
fn udp_session(server: &Server) -> Session {
    let mut sess = Session::default();
    sess.restart(server.udp_reply_budget);
    sess
}

/// One command of a datagram that asks for a stored value, in any of the
/// three protocols: `(protocol, verb, key index)`.
fn value_command() -> impl Strategy<Value = (u8, u8, usize)> {
    (0u8..3, 0u8..4, 0usize..6)
}

/// The bytes of a [`value_command`] for key `k<i>`.
fn command_bytes((proto, verb, i): (u8, u8, usize)) -> Vec<u8> {
    let key = format!("k{i}");
    match proto {
        0 => match verb {
            0 => format!("get {key}\r\n"),
            1 => format!("gets {key} {key}\r\n"),
            2 => format!("gat 0 {key}\r\n"),
            _ => "stats\r\n".to_string(),
        }
        .into_bytes(),
        1 => match verb {
            0 | 1 => format!("mg {key} v f\r\n"),
            2 => format!("mg {key} v k c t s\r\n"),
            _ => format!("mg {key} v q\r\n"),
        }
        .into_bytes(),
        _ => {
            // GET, GETK, GETQ, GETKQ.
            let opcode = [0x00, 0x0c, 0x09, 0x0d][usize::from(verb)];
            let mut b = vec![0x80, opcode];
            b.extend_from_slice(&(key.len() as u16).to_be_bytes());
            b.extend_from_slice(&[0, 0, 0, 0]);
            b.extend_from_slice(&(key.len() as u32).to_be_bytes());
            b.extend_from_slice(&[0; 12]);
            b.extend_from_slice(key.as_bytes());
            b
        }
    }
}

/// Bytes that look like protocol: pieces of real commands and flags mixed
/// with arbitrary bytes, so that the parsers get past their first checks.
fn protocolish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"get ".to_vec()),
        Just(b"set k 0 0 3\r\nabc\r\n".to_vec()),
        Just(b"mg k v c f t s k O1 q\r\n".to_vec()),
        Just(b"ms k 2 T10 I C5\r\nhi\r\n".to_vec()),
        Just(b"ma k N0 J5 D2 MD\r\n".to_vec()),
        Just(b"md k I q\r\n".to_vec()),
        Just(b"incr k 1\r\n".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\r\n".to_vec()),
        prop::collection::vec(any::<u8>(), 0..40),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

fn binary_request() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..30),
        prop::collection::vec(any::<u8>(), 0..260),
        prop::collection::vec(any::<u8>(), 0..100),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(|(opcode, ext, key, value, cas, lie)| {
            let body = ext.len() + key.len() + value.len();
            let mut b = vec![0x80, opcode];
            b.extend_from_slice(&(key.len() as u16).to_be_bytes());
            b.push(ext.len() as u8);
            b.extend_from_slice(&[0, 0, 0]);
            // Sometimes a body length that disagrees with the parts.
            let bodylen = if lie { body as u32 ^ 0x15 } else { body as u32 };
            b.extend_from_slice(&bodylen.to_be_bytes());
            b.extend_from_slice(&7u32.to_be_bytes());
            b.extend_from_slice(&cas.to_be_bytes());
            b.extend_from_slice(&ext);
            b.extend_from_slice(&key);
            b.extend_from_slice(&value);
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn text_and_meta_lines_never_panic(line in protocolish()) {
        let server = server();
        let mut sess = Session::default();
        let mut out = Vec::new();
        for l in line.split(|&b| b == b'\n') {
            text::process_command(&server.ctx(), &mut sess, l, &mut out);
        }
        prop_assert!(out.len() < 1 << 20);
    }

    #[test]
    fn binary_requests_are_consumed_or_wait(req in binary_request(), cut in any::<prop::sample::Index>()) {
        let server = server();
        let mut sess = Session::default();
        let mut out = Vec::new();
        // A prefix may be answered or wait for more.
        let prefix = &req[..cut.index(req.len() + 1)];
        if let Parsed::Done(n, _) = binary::process(&server.ctx(), &mut sess, prefix, &mut out) {
            prop_assert!(n <= prefix.len());
        }
        // The whole request always has its header, extras and key, so it
        // is always handled (a lying body length gets an error reply).
        match binary::process(&server.ctx(), &mut sess, &req, &mut out) {
            Parsed::NeedMore => prop_assert!(false, "whole request left waiting"),
            Parsed::Done(n, _) => prop_assert!(n <= req.len()),
        }
    }

    #[test]
    fn any_datagram_is_handled(payload in prop_oneof![protocolish(), binary_request(), prop::collection::vec(any::<u8>(), 0..300)]) {
        let server = server();
        let mut sess = udp_session(&server);
        let mut reply = Vec::new();
        datagram::process(&server.ctx(), &mut sess, &payload, &mut reply);
        prop_assert!(reply.len() <= server.udp_reply_budget + ERROR_ROOM);
    }

    /// However many values a datagram asks for, of whatever sizes and in
    /// whichever protocol, its reply never passes the budget (with room
    /// for the error line that ends it), and a reply cut short ends with
    /// the protocol's out-of-memory reply.
    #[test]
    fn a_datagram_reply_never_passes_its_budget(
        sizes in prop::collection::vec(0usize..40_000, 6),
        budget in 2_000usize..120_000,
        binary_first in any::<bool>(),
        cmds in prop::collection::vec(value_command(), 1..40),
    ) {
        let mut server = server();
        server.udp_reply_budget = budget;
        for (i, n) in sizes.iter().enumerate() {
            let v = vec![b'v'; *n];
            server.cache.store(rmemcached::cache::StoreMode::Set, format!("k{i}").as_bytes(), 0, 0, &v, 0);
        }
        // One datagram speaks one protocol (the first byte picks it).
        let binary = binary_first;
        let payload: Vec<u8> = cmds
            .into_iter()
            .filter(|c| (c.0 == 2) == binary)
            .flat_map(command_bytes)
            .collect();
        let mut sess = udp_session(&server);
        let mut reply = Vec::new();
        datagram::process(&server.ctx(), &mut sess, &payload, &mut reply);
        prop_assert!(reply.len() <= budget + ERROR_ROOM, "{} > {budget}", reply.len());
        if sess.reply_spent {
            if binary {
                // The last response is ENOMEM (status 0x82).
                let last = &reply[reply.len() - 24 - 13..];
                prop_assert_eq!(&last[6..8], &[0x00, 0x82]);
            } else {
                let s = String::from_utf8_lossy(&reply);
                prop_assert!(
                    s.ends_with("SERVER_ERROR out of memory writing get response\r\n")
                        || s.ends_with("SERVER_ERROR out of memory writing stats\r\n"),
                    "{}", &s[s.len().saturating_sub(80)..]
                );
            }
        }
    }

    #[test]
    fn udp_header_round_trips(
        request_id: u16,
        sequence: u16,
        total: u16,
        reserved: u16,
        payload in prop::collection::vec(any::<u8>(), 1..100),
    ) {
        let h = udp::Header { request_id, sequence, total, reserved };
        let mut datagram = h.to_bytes().to_vec();
        datagram.extend_from_slice(&payload);
        prop_assert_eq!(udp::Header::parse(&datagram), h);
        match udp::parse_request(&datagram) {
            udp::Request::Single(got, body) => {
                prop_assert_eq!(total, 1);
                prop_assert_eq!(got, h);
                prop_assert_eq!(body, &payload[..]);
            }
            udp::Request::MultiPacket(got) => {
                prop_assert_ne!(total, 1);
                prop_assert_eq!(got, h);
            }
            udp::Request::Drop => prop_assert!(false, "a datagram with a payload dropped"),
        }
    }

    #[test]
    fn text_set_then_get_round_trips(
        key in "[!-~]{1,250}",
        flags: u32,
        value in prop::collection::vec(any::<u8>(), 0..3000),
    ) {
        let server = server();
        let mut sess = udp_session(&server);
        let mut req = format!("set {key} {flags} 0 {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(&value);
        req.extend_from_slice(format!("\r\nget {key}\r\n").as_bytes());
        let mut reply = Vec::new();
        datagram::process(&server.ctx(), &mut sess, &req, &mut reply);
        let mut want = format!("STORED\r\nVALUE {key} {flags} {}\r\n", value.len()).into_bytes();
        want.extend_from_slice(&value);
        want.extend_from_slice(b"\r\nEND\r\n");
        prop_assert_eq!(reply, want);
    }

    #[test]
    fn binary_set_then_get_round_trips(
        key in prop::collection::vec(any::<u8>(), 1..250),
        flags: u32,
        opaque: u32,
        value in prop::collection::vec(any::<u8>(), 0..3000),
    ) {
        let server = server();
        let mut sess = udp_session(&server);
        let packet = |opcode: u8, extras: &[u8], body: &[u8]| {
            let mut p = vec![0x80, opcode];
            p.extend_from_slice(&(key.len() as u16).to_be_bytes());
            p.extend_from_slice(&[extras.len() as u8, 0, 0, 0]);
            let total = extras.len() + key.len() + body.len();
            p.extend_from_slice(&(total as u32).to_be_bytes());
            p.extend_from_slice(&opaque.to_be_bytes());
            p.extend_from_slice(&[0; 8]);
            p.extend_from_slice(extras);
            p.extend_from_slice(&key);
            p.extend_from_slice(body);
            p
        };
        let mut extras = flags.to_be_bytes().to_vec();
        extras.extend_from_slice(&[0; 4]);
        // Both requests in one datagram, through the same path as a
        // server's UDP socket (binary chosen by the first byte).
        let mut req = packet(0x01, &extras, &value);
        req.extend_from_slice(&packet(0x00, &[], &[]));
        let mut out = Vec::new();
        datagram::process(&server.ctx(), &mut sess, &req, &mut out);
        prop_assert_eq!(out.len(), 24 + 24 + 4 + value.len());
        // The SET's response: 24-byte header, status 0, no body.
        prop_assert_eq!(&out[..2], &[0x81, 0x01]);
        prop_assert_eq!(&out[6..8], &[0, 0]);
        prop_assert_eq!(&out[12..16], &opaque.to_be_bytes());
        // The GET's: flags as extras, then the value.
        let get = &out[24..];
        prop_assert_eq!(&get[..2], &[0x81, 0x00]);
        prop_assert_eq!(&get[6..8], &[0, 0]);
        prop_assert_eq!(get[4], 4);
        prop_assert_eq!(&get[8..12], &((4 + value.len()) as u32).to_be_bytes());
        prop_assert_eq!(&get[12..16], &opaque.to_be_bytes());
        prop_assert_eq!(&get[24..28], &flags.to_be_bytes());
        prop_assert_eq!(&get[28..], &value[..]);
    }
}
