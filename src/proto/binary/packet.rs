//! The binary protocol's packets: the 24-byte header, opcodes, status
//! codes, and the reply writers (memcached's `protocol_binary.h`,
//! `add_bin_header`, `write_bin_error`, `write_bin_response`).

use crate::proto::action::BinReq;

/// First byte of a request.
pub const REQ_MAGIC: u8 = 0x80;
/// First byte of a reply.
pub const RES_MAGIC: u8 = 0x81;
/// Bytes of a header.
pub const HEADER_LEN: usize = 24;

/// Opcodes (`protocol_binary.h`).
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
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
    pub const SASL_LIST_MECHS: u8 = 0x20;
    pub const SASL_AUTH: u8 = 0x21;
    pub const SASL_STEP: u8 = 0x22;
    pub const GATK: u8 = 0x23;
    pub const GATKQ: u8 = 0x24;
}

/// Reply statuses (`protocol_binary_response_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Status {
    /// Success.
    Ok = 0x0000,
    /// Key not found.
    KeyEnoent = 0x0001,
    /// Key exists (or CAS mismatch).
    KeyEexists = 0x0002,
    /// Value too large.
    E2big = 0x0003,
    /// Invalid arguments.
    Einval = 0x0004,
    /// Item not stored.
    NotStored = 0x0005,
    /// Incr/decr on a non-numeric value.
    DeltaBadval = 0x0006,
    /// Authentication error.
    AuthError = 0x0020,
    /// SASL: another step is needed; the body is the server's challenge.
    AuthContinue = 0x0021,
    /// Unknown command.
    UnknownCommand = 0x0081,
    /// Out of memory.
    Enomem = 0x0082,
}

impl Status {
    /// memcached's text for an error status (`write_bin_error`).
    fn text(self) -> &'static [u8] {
        match self {
            Status::Ok | Status::AuthContinue => b"",
            Status::Enomem => b"Out of memory",
            Status::UnknownCommand => b"Unknown command",
            Status::KeyEnoent => b"Not found",
            Status::Einval => b"Invalid arguments",
            Status::KeyEexists => b"Data exists for key.",
            Status::E2big => b"Too large.",
            Status::DeltaBadval => b"Non-numeric server-side value for incr or decr",
            Status::NotStored => b"Not stored.",
            Status::AuthError => b"Auth failure.",
        }
    }
}

/// A parsed request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Must be [`REQ_MAGIC`].
    pub magic: u8,
    /// What to do.
    pub opcode: u8,
    /// Key length.
    pub keylen: u16,
    /// Extras length.
    pub extlen: u8,
    /// Body length: extras, key and value.
    pub bodylen: u32,
    /// Echoed back.
    pub opaque: u32,
    /// CAS for conditional operations.
    pub cas: u64,
}

impl Header {
    /// Parse the first 24 bytes of `b`.
    pub fn parse(b: &[u8]) -> Header {
        let be16 = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let be32 = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        Header {
            magic: b[0],
            opcode: b[1],
            keylen: be16(2),
            extlen: b[4],
            bodylen: be32(8),
            opaque: be32(12),
            cas: u64::from_be_bytes(b[16..24].try_into().expect("8 bytes")),
        }
    }
}

/// Write a reply header.
#[allow(clippy::too_many_arguments)]
pub fn header(
    out: &mut Vec<u8>,
    req: BinReq,
    status: Status,
    extlen: u8,
    keylen: usize,
    bodylen: usize,
    cas: u64,
) {
    out.push(RES_MAGIC);
    out.push(req.opcode);
    out.extend_from_slice(&(keylen as u16).to_be_bytes());
    out.push(extlen);
    out.push(0);
    out.extend_from_slice(&(status as u16).to_be_bytes());
    out.extend_from_slice(&(bodylen as u32).to_be_bytes());
    out.extend_from_slice(&req.opaque.to_be_bytes());
    out.extend_from_slice(&cas.to_be_bytes());
}

/// `write_bin_error`: sent whether the opcode is quiet or not.
pub fn error(out: &mut Vec<u8>, req: BinReq, status: Status) {
    let text = status.text();
    header(out, req, status, 0, 0, text.len(), 0);
    out.extend_from_slice(text);
}

/// `write_bin_response`: a success reply, unless quiet.
pub fn respond(out: &mut Vec<u8>, req: BinReq, cas: u64, body: &[u8]) {
    if !req.quiet {
        header(out, req, Status::Ok, 0, 0, body.len(), cas);
        out.extend_from_slice(body);
    }
}

/// A quiet opcode's loud twin, and whether it was quiet.
pub fn unquiet(opcode: u8) -> (u8, bool) {
    let loud = match opcode {
        op::SETQ => op::SET,
        op::ADDQ => op::ADD,
        op::REPLACEQ => op::REPLACE,
        op::DELETEQ => op::DELETE,
        op::INCREMENTQ => op::INCREMENT,
        op::DECREMENTQ => op::DECREMENT,
        op::QUITQ => op::QUIT,
        op::FLUSHQ => op::FLUSH,
        op::APPENDQ => op::APPEND,
        op::PREPENDQ => op::PREPEND,
        op::GETQ => op::GET,
        op::GETKQ => op::GETK,
        op::GATQ => op::GAT,
        op::GATKQ => op::GATK,
        other => return (other, false),
    };
    (loud, true)
}

/// Read a big-endian `u32` of the extras.
pub fn ext32(ext: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(ext[at..at + 4].try_into().expect("4 bytes"))
}
