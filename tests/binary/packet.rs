//! Binary protocol packets, built by hand (magic 0x80, opcode, key length,
//! extras length, data type 0, vbucket 0, body length, opaque, CAS; then
//! extras, key and value; all big-endian), so that malformed ones can be
//! built too; and reply packets taken apart and shown.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

/// Bytes of a packet header.
pub const HEADER: usize = 24;

/// Opaque of the NOOP that ends a step.
pub const SENTINEL_OPAQUE: u32 = 0x5e47_1e1e;

/// Opcodes of `protocol_binary.h`.
pub mod op {
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const INCREMENT: u8 = 0x05;
    pub const DECREMENT: u8 = 0x06;
    pub const QUIT: u8 = 0x07;
    pub const FLUSH: u8 = 0x08;
    pub const GETQ: u8 = 0x09;
    pub const NOOP: u8 = 0x0a;
    pub const VERSION: u8 = 0x0b;
    pub const GETK: u8 = 0x0c;
    pub const GETKQ: u8 = 0x0d;
    pub const APPEND: u8 = 0x0e;
    pub const PREPEND: u8 = 0x0f;
    pub const STAT: u8 = 0x10;
    pub const SETQ: u8 = 0x11;
    pub const ADDQ: u8 = 0x12;
    pub const REPLACEQ: u8 = 0x13;
    pub const DELETEQ: u8 = 0x14;
    pub const INCREMENTQ: u8 = 0x15;
    pub const DECREMENTQ: u8 = 0x16;
    pub const QUITQ: u8 = 0x17;
    pub const FLUSHQ: u8 = 0x18;
    pub const APPENDQ: u8 = 0x19;
    pub const PREPENDQ: u8 = 0x1a;
    pub const VERBOSITY: u8 = 0x1b;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
    pub const SASL_LIST_MECHS: u8 = 0x20;
    pub const SASL_AUTH: u8 = 0x21;
    pub const SASL_STEP: u8 = 0x22;
    pub const GATK: u8 = 0x23;
    pub const GATKQ: u8 = 0x24;
}

// ---------------------------------------------------------------------------
// Building requests.

static NEXT_OPAQUE: AtomicU32 = AtomicU32::new(0x0100_0000);

/// A distinct opaque for every request built, so that echoing is checked.
pub fn next_opaque() -> u32 {
    NEXT_OPAQUE.fetch_add(1, Ordering::Relaxed)
}

/// A raw header with every length given explicitly.
pub fn raw_header(
    magic: u8,
    opcode: u8,
    keylen: u16,
    extlen: u8,
    bodylen: u32,
    cas: u64,
) -> Vec<u8> {
    let mut b = vec![magic, opcode];
    b.extend_from_slice(&keylen.to_be_bytes());
    b.push(extlen);
    b.push(0); // data type
    b.extend_from_slice(&0u16.to_be_bytes()); // vbucket
    b.extend_from_slice(&bodylen.to_be_bytes());
    b.extend_from_slice(&next_opaque().to_be_bytes());
    b.extend_from_slice(&cas.to_be_bytes());
    b
}

/// A well-formed request.
pub fn pkt(opcode: u8, ext: &[u8], key: &[u8], value: &[u8], cas: u64) -> Vec<u8> {
    let body = ext.len() + key.len() + value.len();
    let mut b = raw_header(
        0x80,
        opcode,
        key.len() as u16,
        ext.len() as u8,
        body as u32,
        cas,
    );
    b.extend_from_slice(ext);
    b.extend_from_slice(key);
    b.extend_from_slice(value);
    b
}

/// Store extras: flags and exptime.
pub fn set_ext(flags: u32, exp: u32) -> Vec<u8> {
    [flags.to_be_bytes(), exp.to_be_bytes()].concat()
}

/// set/add/replace (and quiet forms).
pub fn store(opcode: u8, key: &str, flags: u32, exp: u32, value: &[u8], cas: u64) -> Vec<u8> {
    pkt(opcode, &set_ext(flags, exp), key.as_bytes(), value, cas)
}

/// A plain set.
pub fn set(key: &str, value: &[u8]) -> Vec<u8> {
    store(op::SET, key, 0, 0, value, 0)
}

/// get/getk/getq/getkq/delete/deleteq/stat: a key and nothing else.
pub fn keyed(opcode: u8, key: &str) -> Vec<u8> {
    pkt(opcode, &[], key.as_bytes(), b"", 0)
}

/// append/prepend (and quiet forms).
pub fn append(opcode: u8, key: &str, value: &[u8], cas: u64) -> Vec<u8> {
    pkt(opcode, &[], key.as_bytes(), value, cas)
}

/// incr/decr: delta, initial value, exptime.
pub fn delta(opcode: u8, key: &str, delta: u64, initial: u64, exp: u32, cas: u64) -> Vec<u8> {
    let ext = [
        &delta.to_be_bytes()[..],
        &initial.to_be_bytes(),
        &exp.to_be_bytes(),
    ]
    .concat();
    pkt(opcode, &ext, key.as_bytes(), b"", cas)
}

/// touch/gat/gatk/gatq/gatkq: exptime.
pub fn touch(opcode: u8, key: &str, exp: u32) -> Vec<u8> {
    pkt(opcode, &exp.to_be_bytes(), key.as_bytes(), b"", 0)
}

/// An opcode without extras, key or value.
pub fn bare(opcode: u8) -> Vec<u8> {
    pkt(opcode, &[], b"", b"", 0)
}

/// The NOOP that ends a step.
pub fn sentinel() -> Vec<u8> {
    let mut b = bare(op::NOOP);
    b[12..16].copy_from_slice(&SENTINEL_OPAQUE.to_be_bytes());
    b
}

/// A placeholder CAS: the i-th (from 1) distinct CAS this server returned
/// in this case.
pub fn cas_ref(i: u8) -> u64 {
    0xCA5C_A5CA_5CA5_CA00 | u64::from(i)
}

pub const CAS_REF_PREFIX: [u8; 7] = [0xCA, 0x5C, 0xA5, 0xCA, 0x5C, 0xA5, 0xCA];

pub fn cat(parts: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
    parts.into_iter().flatten().collect()
}

// ---------------------------------------------------------------------------
// Taking replies apart.

pub fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

pub fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes(b[i..i + 4].try_into().unwrap())
}

pub fn be64(b: &[u8], i: usize) -> u64 {
    u64::from_be_bytes(b[i..i + 8].try_into().unwrap())
}

/// Split whole packets off the front of `buf`.
pub fn split_packets(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        if buf.len() < HEADER {
            return out;
        }
        let len = HEADER + be32(buf, 8) as usize;
        if buf.len() < len {
            return out;
        }
        out.push(buf.drain(..len).collect());
    }
}

pub fn is_sentinel_reply(p: &[u8]) -> bool {
    p[1] == op::NOOP && be32(p, 12) == SENTINEL_OPAQUE
}

/// The packets of a reply, as (opcode, status, extras, key, value, cas).
pub type Parsed = (u8, u16, Vec<u8>, Vec<u8>, Vec<u8>, u64);

pub fn parse(p: &[u8]) -> Parsed {
    assert_eq!(p[0], 0x81, "reply magic");
    let (extlen, keylen) = (p[4] as usize, be16(p, 2) as usize);
    let body = &p[HEADER..];
    (
        p[1],
        be16(p, 6),
        body[..extlen].to_vec(),
        body[extlen..extlen + keylen].to_vec(),
        body[extlen + keylen..].to_vec(),
        be64(p, 16),
    )
}

// ---------------------------------------------------------------------------
// Showing bytes.

pub fn hex(b: &[u8]) -> String {
    const MAX: usize = 400;
    let h = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    if b.len() > MAX {
        format!(
            "{}...({} bytes)...{}",
            h(&b[..MAX / 2]),
            b.len(),
            h(&b[b.len() - 32..])
        )
    } else {
        h(b)
    }
}

pub fn escaped(b: &[u8]) -> String {
    const MAX: usize = 120;
    let s: String = b
        .iter()
        .take(MAX)
        .flat_map(|&c| std::ascii::escape_default(c))
        .map(char::from)
        .collect();
    if b.len() > MAX {
        format!("\"{s}\"...({} bytes)", b.len())
    } else {
        format!("\"{s}\"")
    }
}

/// One packet, field by field.
pub fn describe(p: &[u8]) -> String {
    let (extlen, keylen) = (p[4] as usize, be16(p, 2) as usize);
    let body = &p[HEADER..];
    let ext = &body[..extlen.min(body.len())];
    let key = &body[extlen.min(body.len())..(extlen + keylen).min(body.len())];
    let value = &body[(extlen + keylen).min(body.len())..];
    format!(
        "[magic {:02x} op {:02x} status {:04x} extlen {} keylen {} bodylen {} opaque {:08x} cas {:x} ext {} key {} value {}]",
        p[0],
        p[1],
        be16(p, 6),
        extlen,
        keylen,
        be32(p, 8),
        be32(p, 12),
        be64(p, 16),
        hex(ext),
        escaped(key),
        escaped(value)
    )
}
