//! What the fuzz targets share: a fresh server for every input, and the
//! real connection state machine (`Conn::drive_machine`) run over a unix
//! socket pair (the stream protocols, as a TCP connection runs them) or
//! over loopback UDP sockets (the datagram path, with its frame headers
//! and `recvmmsg`/`sendmmsg` batches).
//!
//! Each run checks cheap invariants besides "no panic": the connection
//! closes once the client hangs up, its read buffer leaves the gauges as it
//! found them, replies come out whole (text ends in `\r\n`, binary parses
//! into whole packets), and every UDP reply datagram is framed within the
//! limits of `udp.rs`.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use rmemcached::conn::{Conn, ConnState, Outcome, Transport};
use rmemcached::proto::binary::HEADER_LEN;
use rmemcached::settings::{Protocol, Settings};
use rmemcached::server::Server;
use rmemcached::udp;

/// A server as `tests/parser_props.rs` builds one (8 MiB of cache), with
/// the protocol of its listening socket fixed (`-B`), `shutdown` enabled
/// (`-A`; it only marks the server as stopping), and a small
/// `-o read_buf_mem_limit`: 256 KiB over the default 4 threads is 4 chunks
/// a worker, a read buffer and 39 replies, so that long pipelines run into
/// the pool's limits; and a UDP reply budget of 16 KiB.
pub fn server(protocol: Protocol) -> Server {
    let mut server = Server::new(Settings {
        maxbytes: 8 << 20,
        binding_protocol: protocol,
        shutdown_command: true,
        read_buf_mem_limit: 256 << 10,
        ..Settings::default()
    });
    // A datagram's reply budget small enough for a fuzzed datagram's own
    // values to pass it.
    server.udp_reply_budget = 16 * 1024;
    server
}

/// Whether the connection may have been closed with a reply half written:
/// the `read_buf_mem_limit` pool ran out (memcached closes then), or a
/// `shutdown` closed it. Reply-stream checks are skipped after that.
pub fn closed_early(server: &Server) -> bool {
    let pool = &server.thread_mem[0];
    pool.response_obj_oom.load(Ordering::Relaxed) + pool.read_buf_oom.load(Ordering::Relaxed) > 0
        || server.stopping().is_some()
}

/// An input whose first byte is 0xC0 or more asks for its stream to be
/// written in pieces of `byte - 0xBF` bytes (1 to 64), the connection
/// running after each piece, so that lines, headers and values arrive cut
/// at every place. Any other input is written whole. Returns the piece size
/// and the stream.
pub fn pieces(data: &[u8]) -> (usize, &[u8]) {
    match data.first() {
        Some(&b) if b >= 0xC0 => (usize::from(b - 0xBF), &data[1..]),
        _ => (usize::MAX, data),
    }
}

/// Rounds after which a connection that has not closed counts as stuck.
/// A round writes a piece of input or lets the machine run once; the
/// largest reply an input of a few KiB can ask for drains in far fewer.
const MAX_IDLE_ROUNDS: usize = 100_000;

/// What a stream run saw.
#[derive(Debug, Default)]
pub struct StreamRun {
    /// Every byte the server wrote back, in order.
    pub replies: Vec<u8>,
    /// Bytes of input the connection took before it closed.
    pub sent: usize,
}

/// Feed `input` to a new connection of `server` in pieces of `piece`
/// bytes, then hang up, and run the connection's state machine until it
/// closes. Panics if it does not close, or if its read buffer is not
/// counted out of the gauges on close.
pub fn run_stream(server: &Server, input: &[u8], piece: usize) -> StreamRun {
    let (ours, mut client) = mio::net::UnixStream::pair().expect("socket pair");
    let mut conn = Conn::new(Transport::Unix(ours), server.cache.clock().now());
    conn.set_mem(&server.thread_mem[0]);
    let mut run = StreamRun::default();
    let mut hung_up = false;
    let mut rounds = 0usize;
    loop {
        if run.sent < input.len() {
            let end = input.len().min(run.sent.saturating_add(piece));
            match client.write(&input[run.sent..end]) {
                Ok(n) => run.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("client write failed: {e}"),
            }
        } else if !hung_up {
            client.shutdown(Shutdown::Write).expect("shutdown");
            hung_up = true;
        }
        rounds += 1;
        assert!(
            rounds < input.len() + MAX_IDLE_ROUNDS,
            "connection still open after {rounds} rounds (state {:?}, {} of {} bytes sent)",
            conn.state(),
            run.sent,
            input.len()
        );
        conn.readiness_event();
        let outcome = conn.drive_machine(server);
        drain_stream(&mut client, &mut run.replies);
        if outcome == Outcome::Close {
            break;
        }
    }
    assert_eq!(conn.state(), ConnState::Closing);
    close_and_check_gauges(server, conn);
    run
}

/// What the worker does when it frees a connection; the connection was
/// the server's only one, so its read buffers must leave the gauges at 0,
/// and it must give back all it took from the `read_buf_mem_limit` pool
/// and from the reply and in-flight pools.
fn close_and_check_gauges(server: &Server, mut conn: Conn) {
    conn.sync_read_buf(&server.gauges, true);
    conn.release_mem(server);
    assert_eq!(server.thread_mem[0].held(), (0, 0), "pool left held");
    assert_eq!(server.reply_pool.used(), 0, "reply pool left charged");
    assert_eq!(server.inflight.used(), 0, "in-flight pool left charged");
    let g = &server.gauges;
    assert_eq!(
        g.read_buf_count.load(Ordering::Relaxed),
        0,
        "read_buf_count"
    );
    assert_eq!(
        g.read_buf_bytes.load(Ordering::Relaxed),
        0,
        "read_buf_bytes"
    );
}

fn drain_stream(client: &mut mio::net::UnixStream, replies: &mut Vec<u8>) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match client.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => replies.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("client read failed: {e}"),
        }
    }
}

/// Text replies come out whole: whatever a connection wrote ends a line.
pub fn check_text_replies(replies: &[u8]) {
    assert!(
        replies.is_empty() || replies.ends_with(b"\r\n"),
        "text reply stream ends mid-line: ...{:?}",
        String::from_utf8_lossy(&replies[replies.len().saturating_sub(80)..])
    );
}

/// Binary replies come out whole: the stream is a run of response packets
/// (magic 0x81) whose extras and key fit their body. Returns how many.
pub fn check_binary_replies(replies: &[u8]) -> usize {
    let mut pos = 0;
    let mut packets = 0;
    while pos < replies.len() {
        let rest = &replies[pos..];
        assert!(
            rest.len() >= HEADER_LEN,
            "reply stream ends inside a header"
        );
        assert_eq!(
            rest[0], 0x81,
            "reply packet {packets} has magic {:#x}",
            rest[0]
        );
        let keylen = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let extlen = usize::from(rest[4]);
        let bodylen = u32::from_be_bytes(rest[8..12].try_into().expect("4 bytes")) as usize;
        assert!(
            extlen + keylen <= bodylen,
            "reply packet {packets}: extras {extlen} + key {keylen} > body {bodylen}"
        );
        assert!(
            rest.len() >= HEADER_LEN + bodylen,
            "reply stream ends inside packet {packets}'s body"
        );
        pos += HEADER_LEN + bodylen;
        packets += 1;
    }
    packets
}

/// The meta target's input: a line whose first byte is 0 to 5 starts with
/// that meta command instead (`mg `, `ms `, `md `, `ma `, `mn `, `me `), so
/// one mutated byte turns any line into a meta command. Other lines (the
/// data of an `ms`, say) pass unchanged.
pub fn expand_meta(data: &[u8]) -> Vec<u8> {
    const NAMES: [&[u8]; 6] = [b"mg ", b"ms ", b"md ", b"ma ", b"mn ", b"me "];
    let mut out = Vec::with_capacity(data.len() + 64);
    for line in data.split_inclusive(|&b| b == b'\n') {
        match line.first() {
            Some(&b) if usize::from(b) < NAMES.len() => {
                out.extend_from_slice(NAMES[usize::from(b)]);
                out.extend_from_slice(&line[1..]);
            }
            _ => out.extend_from_slice(line),
        }
    }
    out
}

/// The UDP target's separator between datagrams. Each datagram between
/// separators is sent as is, its 8-byte frame header included.
pub const DATAGRAM_SEPARATOR: &[u8] = b"\xfe\xfd";

/// Split the UDP target's input into datagrams.
pub fn datagrams(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(i) = rest
        .windows(DATAGRAM_SEPARATOR.len())
        .position(|w| w == DATAGRAM_SEPARATOR)
    {
        out.push(&rest[..i]);
        rest = &rest[i + DATAGRAM_SEPARATOR.len()..];
    }
    out.push(rest);
    out
}

/// A server-side and a client-side UDP socket on loopback, kept for the
/// whole fuzzing process (a run drains both).
struct UdpRig {
    server: UdpSocket,
    client: UdpSocket,
    server_addr: SocketAddr,
}

fn rig() -> &'static UdpRig {
    static RIG: OnceLock<UdpRig> = OnceLock::new();
    RIG.get_or_init(|| {
        let bind = || {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind loopback UDP");
            s.set_nonblocking(true).expect("nonblocking");
            s
        };
        let server = bind();
        let server_addr = server.local_addr().expect("local addr");
        UdpRig {
            server,
            client: bind(),
            server_addr,
        }
    })
}

/// Datagrams sent before the connection runs: enough to fill a few
/// `recvmmsg` batches, few enough that the server socket's receive buffer
/// never drops one.
const SEND_GROUP: usize = 40;

/// The largest number of datagrams a reply may take: the datagram's
/// reply budget plus the room kept for the error line that ends a reply
/// cut short (`mem_budget`).
pub fn max_reply_datagrams(server: &Server) -> usize {
    (server.udp_reply_budget + rmemcached::mem_budget::ERROR_ROOM).div_ceil(udp::UDP_DATA_SIZE)
}

/// What a UDP run saw.
#[derive(Debug, Default)]
pub struct UdpRun {
    /// Reply datagrams received (all of them framed and checked).
    pub reply_datagrams: usize,
}

/// Send `grams` to a new UDP connection of `server` from a loopback
/// client, run the connection, and check every reply datagram's frame:
/// 8 to 1400 bytes, a request id that was sent, `sequence < total`,
/// `total` within [`max_reply_datagrams`], every datagram but a message's
/// last one full. Also checks that each datagram sent was counted once as
/// a request, a short drop or a multi-packet refusal (unless a
/// `stats reset` may have cleared the counters).
pub fn run_udp(server: &Server, grams: &[&[u8]]) -> UdpRun {
    let rig = rig();
    let sock = rig.server.try_clone().expect("dup UDP socket");
    let mut conn = Conn::new(
        Transport::Udp(mio::net::UdpSocket::from_std(sock)),
        server.cache.clock().now(),
    );
    let mut run = UdpRun::default();
    let ids: Vec<u16> = grams
        .iter()
        .filter(|g| g.len() >= 2)
        .map(|g| u16::from_be_bytes([g[0], g[1]]))
        .collect();
    for group in grams.chunks(SEND_GROUP) {
        for g in group {
            rig.client
                .send_to(g, rig.server_addr)
                .expect("send a datagram to the server");
        }
        let mut rounds = 0usize;
        loop {
            rounds += 1;
            assert!(
                rounds < MAX_IDLE_ROUNDS,
                "UDP connection still busy after {rounds} rounds (state {:?})",
                conn.state()
            );
            conn.readiness_event();
            let outcome = conn.drive_machine(server);
            drain_udp(&rig.client, &ids, max_reply_datagrams(server), &mut run);
            match outcome {
                Outcome::Close => panic!("a UDP connection closed"),
                Outcome::Yield => {}
                Outcome::Idle if conn.state() == ConnState::Mwrite => {}
                Outcome::Idle => break,
            }
        }
    }
    // Nothing may be left for the next input.
    let mut buf = [0u8; 16];
    assert!(
        matches!(rig.server.recv_from(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock),
        "the UDP connection went idle with datagrams unread"
    );
    let s = &server.stats;
    let counted = s.udp_requests.load(Ordering::Relaxed)
        + s.udp_short_dropped.load(Ordering::Relaxed)
        + s.udp_multipacket_rejected.load(Ordering::Relaxed);
    assert_eq!(s.udp_dropped_disallowed.load(Ordering::Relaxed), 0);
    let may_reset = grams
        .iter()
        .any(|g| g.windows(5).any(|w| w.eq_ignore_ascii_case(b"reset")));
    if !may_reset {
        assert_eq!(counted, grams.len() as u64, "datagrams counted");
    }
    close_and_check_gauges(server, conn);
    run
}

fn drain_udp(client: &UdpSocket, ids: &[u16], max_datagrams: usize, run: &mut UdpRun) {
    let mut buf = vec![0u8; 2 * udp::UDP_MAX_PAYLOAD_SIZE];
    loop {
        let n = match client.recv_from(&mut buf) {
            Ok((n, _)) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => panic!("client receive failed: {e}"),
        };
        let d = &buf[..n];
        assert!(
            (udp::UDP_HEADER_SIZE + 1..=udp::UDP_MAX_PAYLOAD_SIZE).contains(&n),
            "reply datagram of {n} bytes"
        );
        let h = udp::Header::parse(d);
        assert!(
            ids.contains(&h.request_id),
            "reply to request id {} that was never sent",
            h.request_id
        );
        assert!(h.total >= 1 && h.sequence < h.total, "frame {h:?}");
        assert!(
            usize::from(h.total) <= max_datagrams,
            "a reply of {} datagrams passes the limit of {max_datagrams}",
            h.total
        );
        assert_eq!(h.reserved, 0, "frame {h:?}");
        if h.sequence + 1 < h.total {
            assert_eq!(
                n,
                udp::UDP_MAX_PAYLOAD_SIZE,
                "short datagram inside a message"
            );
        }
        run.reply_datagrams += 1;
    }
}
