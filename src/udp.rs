//! The UDP frame: mirrors memcached's `try_read_udp` (header parsing) and
//! `build_udp_header` / `transmit_udp` (reply splitting) in `memcached.c`.
//!
//! Every datagram starts with an 8-byte header of four big-endian `u16`s:
//! request id, sequence number, total datagrams, reserved. This module is
//! pure framing, with no sockets, so that its rules are unit-tested; the
//! commands of a datagram are run by [`crate::proto::datagram`], and the
//! socket is read and written by the connection (`conn::udp`).
//!
//! Two rules differ from memcached 1.6 on purpose (see docs/ARCHITECTURE.md):
//! all replies to one request datagram form *one* message, split into
//! datagrams numbered `0..n` of `n`; and a request whose total is not 1 is
//! answered with `SERVER_ERROR multi-packet request not supported` instead
//! of being dropped without a word.

/// Size of the frame header.
pub const UDP_HEADER_SIZE: usize = 8;
/// Largest datagram sent, header included (memcached's `UDP_MAX_PAYLOAD_SIZE`).
pub const UDP_MAX_PAYLOAD_SIZE: usize = 1400;
/// Reply bytes carried by one datagram.
pub const UDP_DATA_SIZE: usize = UDP_MAX_PAYLOAD_SIZE - UDP_HEADER_SIZE;
/// Largest request datagram read (the largest a UDP socket can deliver).
pub const UDP_READ_BUFFER_SIZE: usize = 65536;

// What one request datagram may make the server hold is its reply budget,
// `mem_budget::udp_reply_budget`: one value of the largest size `-I`
// allows, shared by every command of the datagram, whatever its protocol,
// and checked before a value is copied (`Session::room`). A reply that
// would pass it ends with memcached's out-of-memory reply and nothing more
// of the datagram is run. A UDP connection takes no new datagram while a
// budget's worth of replies waits to be sent, so one worker's UDP replies
// hold at most two budgets (see docs/ARCHITECTURE.md, "Memory bounds").

/// Reply to a request that spans more than one datagram.
pub const MULTI_PACKET_ERROR: &[u8] = b"SERVER_ERROR multi-packet request not supported\r\n";

/// The frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Chosen by the client, echoed in every reply datagram.
    pub request_id: u16,
    /// Index of this datagram in its message.
    pub sequence: u16,
    /// Datagrams in the message.
    pub total: u16,
    /// Reserved, 0.
    pub reserved: u16,
}

/// What a received datagram asks of the server.
#[derive(Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// Too short to carry a header and a byte of request: drop it.
    Drop,
    /// A request spanning several datagrams: refuse it.
    MultiPacket(Header),
    /// A whole request: the header and the command bytes.
    Single(Header, &'a [u8]),
}

impl Header {
    /// Read the header at the start of `buf` (at least 8 bytes).
    pub fn parse(buf: &[u8]) -> Header {
        let u = |i: usize| u16::from_be_bytes([buf[i], buf[i + 1]]);
        Header {
            request_id: u(0),
            sequence: u(2),
            total: u(4),
            reserved: u(6),
        }
    }

    /// The 8 header bytes.
    pub fn to_bytes(self) -> [u8; UDP_HEADER_SIZE] {
        let mut b = [0u8; UDP_HEADER_SIZE];
        b[0..2].copy_from_slice(&self.request_id.to_be_bytes());
        b[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        b[4..6].copy_from_slice(&self.total.to_be_bytes());
        b[6..8].copy_from_slice(&self.reserved.to_be_bytes());
        b
    }
}

/// Classify a received datagram.
pub fn parse_request(datagram: &[u8]) -> Request<'_> {
    if datagram.len() <= UDP_HEADER_SIZE {
        return Request::Drop;
    }
    let h = Header::parse(datagram);
    if h.total != 1 {
        return Request::MultiPacket(h);
    }
    Request::Single(h, &datagram[UDP_HEADER_SIZE..])
}

/// Number of datagrams a reply of `len` bytes takes (at least one).
/// Callers keep replies under `u16::MAX` datagrams (the reply budget).
pub fn datagram_count(len: usize) -> u16 {
    len.div_ceil(UDP_DATA_SIZE).clamp(1, usize::from(u16::MAX)) as u16
}

/// A reply message waiting to be sent, datagram by datagram. The reply is
/// kept whole and each datagram is framed just before it is sent, so a
/// large reply is never held twice.
#[derive(Debug)]
pub struct Outgoing {
    /// Where the request came from.
    pub peer: std::net::SocketAddr,
    /// The request id to echo.
    pub request_id: u16,
    /// Every reply byte of the request datagram.
    pub reply: Vec<u8>,
    /// The next sequence number to send.
    pub next: u16,
}

impl Outgoing {
    /// A message for `reply`. A reply too large for the frame's `u16`
    /// datagram count is replaced by memcached's out-of-memory error.
    pub fn new(peer: std::net::SocketAddr, request_id: u16, mut reply: Vec<u8>) -> Outgoing {
        if reply.len() > usize::from(u16::MAX) * UDP_DATA_SIZE {
            reply = b"SERVER_ERROR out of memory writing get response\r\n".to_vec();
        }
        Outgoing {
            peer,
            request_id,
            reply,
            next: 0,
        }
    }

    /// Datagrams in the message.
    pub fn total(&self) -> u16 {
        datagram_count(self.reply.len())
    }

    /// The reply bytes of datagram `seq`.
    pub fn payload(&self, seq: u16) -> &[u8] {
        let start = usize::from(seq) * UDP_DATA_SIZE;
        let end = (start + UDP_DATA_SIZE).min(self.reply.len());
        &self.reply[start..end]
    }

    /// Frame datagram `seq` into `buf`.
    pub fn datagram(&self, seq: u16, buf: &mut Vec<u8>) {
        let start = usize::from(seq) * UDP_DATA_SIZE;
        let end = (start + UDP_DATA_SIZE).min(self.reply.len());
        let h = Header {
            request_id: self.request_id,
            sequence: seq,
            total: self.total(),
            reserved: 0,
        };
        buf.clear();
        buf.extend_from_slice(&h.to_bytes());
        buf.extend_from_slice(&self.reply[start..end]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = Header {
            request_id: 0xBEEF,
            sequence: 2,
            total: 3,
            reserved: 0,
        };
        assert_eq!(h.to_bytes(), [0xBE, 0xEF, 0, 2, 0, 3, 0, 0]);
        assert_eq!(Header::parse(&h.to_bytes()), h);
    }

    #[test]
    fn short_datagrams_are_dropped() {
        assert_eq!(parse_request(&[]), Request::Drop);
        assert_eq!(parse_request(&[0, 1, 0, 0, 0, 1, 0, 0]), Request::Drop);
        let d = [0, 1, 0, 0, 0, 1, 0, 0, b'x'];
        assert_eq!(
            parse_request(&d),
            Request::Single(Header::parse(&d), &b"x"[..])
        );
    }

    #[test]
    fn multi_packet_requests_are_refused() {
        let d = [0, 7, 0, 0, 0, 2, 0, 0, b'g', b'e', b't'];
        assert!(matches!(parse_request(&d), Request::MultiPacket(h) if h.request_id == 7));
        let d = [0, 7, 0, 0, 0, 0, 0, 0, b'g'];
        assert!(matches!(parse_request(&d), Request::MultiPacket(_)));
    }

    fn frame(id: u16, reply: &[u8]) -> Vec<Vec<u8>> {
        let o = Outgoing::new("127.0.0.1:1".parse().unwrap(), id, reply.to_vec());
        let mut buf = Vec::new();
        (0..o.total())
            .map(|seq| {
                o.datagram(seq, &mut buf);
                buf.clone()
            })
            .collect()
    }

    #[test]
    fn replies_split_at_1392_data_bytes() {
        let reply: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let grams = frame(9, &reply);
        assert_eq!(grams.len(), 3);
        let mut joined = Vec::new();
        for (i, g) in grams.iter().enumerate() {
            assert!(g.len() <= UDP_MAX_PAYLOAD_SIZE);
            let h = Header::parse(g);
            assert_eq!((h.request_id, h.sequence, h.total), (9, i as u16, 3));
            joined.extend_from_slice(&g[UDP_HEADER_SIZE..]);
        }
        assert_eq!(grams[0].len(), 1400);
        assert_eq!(joined, reply);
    }

    #[test]
    fn exact_multiple_takes_no_empty_datagram() {
        let reply = vec![b'a'; UDP_DATA_SIZE * 2];
        let grams = frame(1, &reply);
        assert_eq!(grams.len(), 2);
        assert!(grams
            .iter()
            .all(|d| Header::parse(d).total == 2 && d.len() == 1400));
    }

    #[test]
    fn oversized_reply_becomes_an_error_not_a_cut_message() {
        let o = Outgoing::new(
            "127.0.0.1:1".parse().unwrap(),
            1,
            vec![b'v'; usize::from(u16::MAX) * UDP_DATA_SIZE + 1],
        );
        assert_eq!(o.total(), 1);
        assert_eq!(
            o.reply,
            b"SERVER_ERROR out of memory writing get response\r\n"
        );
    }
}
