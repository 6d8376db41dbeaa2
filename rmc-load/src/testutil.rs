//! What the unit tests of several modules share: a parsed command line,
//! and retrieval replies cut into datagrams.

use rmemcached::udp::Header;

use crate::args::{parse_args, Config};
use crate::workload::value_bytes;

/// The command line `args` (words split on spaces), which must be valid.
pub fn test_config(args: &str) -> Config {
    parse_args(args.split_whitespace())
        .expect("valid options")
        .expect("not --help")
}

/// Cut `reply` into datagram payloads of at most `size` bytes.
pub fn cut(reply: &[u8], size: usize) -> Vec<Vec<u8>> {
    reply.chunks(size).map(|c| c.to_vec()).collect()
}

/// A retrieval reply of `n` values of `len` bytes each, as the items
/// and the closing `END`.
pub fn reply_items(n: usize, len: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
    let items = (0..n)
        .map(|i| {
            let mut v = format!("VALUE key{i} 0 {len}\r\n").into_bytes();
            v.extend(value_bytes(len));
            v.extend_from_slice(b"\r\n");
            v
        })
        .collect();
    (items, b"END\r\n".to_vec())
}

/// A reply datagram: the frame header, then `payload`.
pub fn datagram(id: u16, seq: u16, total: u16, payload: &[u8]) -> Vec<u8> {
    let h = Header {
        request_id: id,
        sequence: seq,
        total,
        reserved: 0,
    };
    [&h.to_bytes()[..], payload].concat()
}
