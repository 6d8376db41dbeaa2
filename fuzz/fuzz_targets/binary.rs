//! The binary protocol over a stream connection, through the real
//! connection state machine of a real server. An input that starts with
//! 0x80 (after the optional piece-size byte, see `pieces`) is sent as it
//! is; any other input describes a run of requests whose lengths agree
//! with their parts (or, when asked, lie about the body), so that the
//! fuzzer spends its time past the header checks. Each described request
//! is then also handed to `binary::process` alone, which must wait for
//! more bytes only while its header, extras or key are incomplete.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use rmemcached::proto::action::Parsed;
use rmemcached::proto::binary::{self, HEADER_LEN, REQ_MAGIC};
use rmemcached::proto::session::Session;
use rmemcached::settings::Protocol;
use rmemcached_fuzz::{check_binary_replies, closed_early, pieces, run_stream, server};

/// One request built from the fuzzer's bytes, and where its key ends.
struct Request {
    bytes: Vec<u8>,
    head: usize,
}

/// The extras length memcached expects for an opcode.
fn natural_extlen(opcode: u8) -> u8 {
    match opcode {
        0x01..=0x03 | 0x11..=0x13 => 8,
        0x05 | 0x06 | 0x15 | 0x16 => 20,
        0x08 | 0x18 | 0x1b..=0x1e | 0x23 | 0x24 => 4,
        _ => 0,
    }
}

fn request(u: &mut Unstructured<'_>) -> Result<Request> {
    let op: u8 = u.arbitrary()?;
    // Mostly the opcodes memcached knows (0x00..=0x24), sometimes any.
    let opcode = if op & 0x80 == 0 { op % 0x25 } else { op };
    let shape: u8 = u.arbitrary()?;
    let extlen = if shape & 1 == 0 {
        natural_extlen(opcode)
    } else {
        u.arbitrary::<u8>()? % 32
    };
    let ext = u.bytes(usize::from(extlen).min(u.len()))?.to_vec();
    // Mostly a few short keys, so that requests meet each other's items.
    let key: Vec<u8> = if shape & 2 == 0 {
        vec![b'k', b'0' + u.arbitrary::<u8>()? % 4]
    } else {
        let n = u.int_in_range(0..=300usize)?;
        u.bytes(n.min(u.len()))?.to_vec()
    };
    let vlen = usize::from(u.arbitrary::<u8>()?);
    let value = u.bytes(vlen.min(u.len()))?.to_vec();
    let cas: u64 = if shape & 4 == 0 { 0 } else { u.arbitrary()? };
    let body = ext.len() + key.len() + value.len();
    let bodylen = if shape & 8 == 0 {
        body as u32
    } else {
        body as u32 ^ u.arbitrary::<u32>()?
    };
    let mut b = Vec::with_capacity(HEADER_LEN + body);
    b.extend_from_slice(&[REQ_MAGIC, opcode]);
    b.extend_from_slice(&(key.len() as u16).to_be_bytes());
    b.extend_from_slice(&[ext.len() as u8, 0, 0, 0]);
    b.extend_from_slice(&bodylen.to_be_bytes());
    b.extend_from_slice(&u.arbitrary::<u32>()?.to_be_bytes());
    b.extend_from_slice(&cas.to_be_bytes());
    let head = HEADER_LEN + ext.len() + key.len();
    b.extend_from_slice(&ext);
    b.extend_from_slice(&key);
    b.extend_from_slice(&value);
    Ok(Request { bytes: b, head })
}

fn requests(data: &[u8]) -> Vec<Request> {
    let mut u = Unstructured::new(data);
    let mut out = Vec::new();
    while !u.is_empty() && out.len() < 64 {
        match request(&mut u) {
            Ok(r) => out.push(r),
            Err(_) => break,
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let (piece, input) = pieces(data);
    let server = server(Protocol::Binary);
    if input.first() == Some(&REQ_MAGIC) {
        let run = run_stream(&server, input, piece);
        if !closed_early(&server) {
            check_binary_replies(&run.replies);
        }
        return;
    }
    let reqs = requests(input);
    let stream: Vec<u8> = reqs.iter().flat_map(|r| r.bytes.iter().copied()).collect();
    let run = run_stream(&server, &stream, piece);
    if !closed_early(&server) {
        check_binary_replies(&run.replies);
    }

    let mut sess = Session::default();
    let mut out = Vec::new();
    for r in &reqs {
        let cut = r.head - 1 - usize::from(r.bytes[1]) % r.head;
        assert_eq!(
            binary::process(&server.ctx(), &mut sess, &r.bytes[..cut], &mut out),
            Parsed::NeedMore,
            "a request cut at {cut} of {} header, extras and key bytes",
            r.head
        );
        match binary::process(&server.ctx(), &mut sess, &r.bytes, &mut out) {
            Parsed::NeedMore => panic!("a whole request left waiting"),
            Parsed::Done(n, _) => assert!(n <= r.bytes.len()),
        }
        out.clear();
    }
});
