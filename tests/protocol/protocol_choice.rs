//! `-B ascii|binary|auto`: which protocol a connection speaks, checked
//! against the real memcached started with the same flag. With `auto` the
//! first byte decides (0x80: binary); `ascii` reads a binary request as
//! text, and `binary` waits for a 24-byte header that text never completes.
use crate::common;

use std::io::{Read, Write};
use std::time::Duration;

fn request(opcode: u8, key: &[u8]) -> Vec<u8> {
    let mut b = vec![0x80, opcode];
    b.extend_from_slice(&(key.len() as u16).to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.extend_from_slice(&(key.len() as u32).to_be_bytes());
    b.extend_from_slice(&7u32.to_be_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(key);
    b
}

/// Everything the server sends within a quarter of a second, and whether it closed.
fn exchange(server: &common::Server, payload: &[u8]) -> (Vec<u8>, bool) {
    let mut s = server.tcp();
    s.set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    s.write_all(payload).unwrap();
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, false),
        }
    }
}

#[test]
fn binding_protocol_matches_memcached() {
    let payloads: [Vec<u8>; 4] = [
        request(0x0b, b""),
        b"version\r\n".to_vec(),
        [request(0x00, b"k"), b"get k\r\n".to_vec()].concat(),
        [b"get k\r\n".to_vec(), request(0x0b, b"")].concat(),
    ];
    for mode in ["auto", "ascii", "binary"] {
        let ours = common::start_server(&["-B", mode]);
        let theirs = common::start_with("/usr/bin/memcached", &["-B", mode]);
        for p in &payloads {
            assert_eq!(
                exchange(&ours, p),
                exchange(&theirs, p),
                "-B {mode}, request {p:?}"
            );
        }
    }
}
