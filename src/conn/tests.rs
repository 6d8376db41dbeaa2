//! The stream machine's edge-triggered rules, run deterministically over
//! an in-memory byte stream instead of a socket: what the test hands the
//! stream is all the "socket" holds, a read past it is `WouldBlock` (or
//! end of stream once the peer has hung up), and writes may be cut short.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use super::common::{Common, Outcome};
use super::stream::StreamConn;
use crate::conn_state::ConnState;
use crate::server::Server;
use crate::settings::Settings;

/// One end of an in-memory stream, as the server sees it.
#[derive(Default)]
struct Pipe {
    /// Bytes the client has sent and the server not yet read.
    input: VecDeque<u8>,
    /// The client has shut down its side: reads past `input` return 0.
    hung_up: bool,
    /// Everything the server wrote.
    output: Vec<u8>,
    /// How many more bytes the server may write before `WouldBlock`.
    window: usize,
    /// Reads the server made, `WouldBlock` and end of stream included.
    reads: usize,
}

impl Pipe {
    fn new() -> Pipe {
        Pipe {
            window: usize::MAX,
            ..Pipe::default()
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.input.extend(bytes);
    }

    fn take_output(&mut self) -> String {
        String::from_utf8(std::mem::take(&mut self.output)).expect("text replies")
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads += 1;
        if self.input.is_empty() {
            return if self.hung_up {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(self.input.len());
        for (b, v) in buf.iter_mut().zip(self.input.drain(..n)) {
            *b = v;
        }
        Ok(n)
    }
}

impl super::common::ByteStream for Pipe {}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.window == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.window);
        self.window -= n;
        self.output.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A connection over a [`Pipe`], as a worker holds one.
struct Rig {
    server: Server,
    common: Common,
    conn: StreamConn,
    pipe: Pipe,
}

impl Rig {
    fn new(settings: Settings) -> Rig {
        let server = Server::new(settings);
        let now = server.cache.clock().now();
        Rig {
            server,
            common: Common::new(ConnState::NewCmd, -1, now),
            conn: StreamConn::default(),
            pipe: Pipe::new(),
        }
    }

    /// A readiness event: what the worker does when epoll reports one.
    fn event(&mut self) -> Outcome {
        self.conn.readiness_event();
        self.conn
            .drive(&mut self.common, &mut self.pipe, &self.server)
    }

    fn state(&self) -> ConnState {
        self.common.state()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.conn.release_mem(&self.server);
    }
}

#[test]
fn a_connection_yields_after_reqs_per_event_and_resumes() {
    let mut rig = Rig::new(Settings {
        reqs_per_event: 4,
        ..Settings::default()
    });
    rig.pipe.send(&b"version\r\n".repeat(10));
    assert_eq!(rig.event(), Outcome::Yield, "4 requests, then yield");
    assert_eq!(rig.pipe.take_output().matches("VERSION").count(), 4);
    // The worker runs a parked connection again without a new event: the
    // bytes already read raise none.
    assert_eq!(
        rig.conn.drive(&mut rig.common, &mut rig.pipe, &rig.server),
        Outcome::Yield
    );
    assert_eq!(rig.pipe.take_output().matches("VERSION").count(), 4);
    assert_eq!(
        rig.conn.drive(&mut rig.common, &mut rig.pipe, &rig.server),
        Outcome::Idle
    );
    assert_eq!(rig.pipe.take_output().matches("VERSION").count(), 2);
    assert_eq!(rig.state(), ConnState::Waiting);
}

#[test]
fn a_short_read_waits_without_reading_again() {
    let mut rig = Rig::new(Settings::default());
    rig.pipe.send(b"version\r\n");
    assert_eq!(rig.event(), Outcome::Idle);
    assert_eq!(rig.pipe.take_output(), "VERSION 1.6.18\r\n");
    // The read took less than the buffer offered, so the socket was empty:
    // one read, no second one to see `WouldBlock`.
    assert_eq!(rig.pipe.reads, 1);
    assert_eq!(rig.state(), ConnState::Waiting);
    // A later event reads again.
    rig.pipe.send(b"version\r\n");
    assert_eq!(rig.event(), Outcome::Idle);
    assert_eq!(rig.pipe.take_output(), "VERSION 1.6.18\r\n");
    assert_eq!(rig.pipe.reads, 2);
}

#[test]
fn after_the_peer_hangs_up_reads_go_on_until_end_of_stream() {
    let mut rig = Rig::new(Settings::default());
    rig.pipe.send(b"version\r\n");
    rig.pipe.hung_up = true;
    // Without EPOLLRDHUP the short read ends the event, and the FIN that
    // came with the same edge would never be seen.
    assert_eq!(rig.event(), Outcome::Idle);
    assert_eq!(rig.pipe.reads, 1);
    // With it, the machine reads until the read returns 0, then closes.
    rig.conn.read_closed_event();
    assert_eq!(rig.event(), Outcome::Close);
    assert_eq!(rig.pipe.take_output(), "VERSION 1.6.18\r\n");
    assert_eq!(rig.state(), ConnState::Closing);
}

#[test]
fn a_value_split_across_reads_waits_in_nread() {
    let mut rig = Rig::new(Settings::default());
    rig.pipe.send(b"set k 0 0 10\r\n01234");
    assert_eq!(rig.event(), Outcome::Idle);
    assert_eq!(rig.state(), ConnState::Nread);
    assert_eq!(rig.pipe.take_output(), "");
    rig.pipe.send(b"56789\r");
    assert_eq!(rig.event(), Outcome::Idle);
    assert_eq!(rig.state(), ConnState::Nread);
    rig.pipe.send(b"\nget k\r\n");
    assert_eq!(rig.event(), Outcome::Idle);
    assert_eq!(
        rig.pipe.take_output(),
        "STORED\r\nVALUE k 0 10\r\n0123456789\r\nEND\r\n"
    );
}

#[test]
fn a_line_split_across_reads_is_taken_whole() {
    let mut rig = Rig::new(Settings::default());
    rig.pipe.send(b"ver");
    assert_eq!(rig.event(), Outcome::Idle);
    assert_eq!(rig.state(), ConnState::Waiting);
    rig.pipe.send(b"sion\r\n");
    assert_eq!(rig.event(), Outcome::Idle);
    assert_eq!(rig.pipe.take_output(), "VERSION 1.6.18\r\n");
}

#[test]
fn a_short_write_waits_in_mwrite_and_finishes_on_the_next_event() {
    let mut rig = Rig::new(Settings::default());
    rig.pipe.window = 5;
    rig.pipe.send(b"version\r\n");
    assert_eq!(rig.event(), Outcome::Idle);
    assert_eq!(rig.state(), ConnState::Mwrite);
    assert_eq!(rig.pipe.take_output(), "VERSI");
    rig.pipe.window = usize::MAX;
    assert_eq!(rig.event(), Outcome::Idle);
    assert_eq!(rig.pipe.take_output(), "ON 1.6.18\r\n");
    assert_eq!(rig.state(), ConnState::Waiting);
}

#[test]
fn a_value_too_large_is_swallowed_across_reads() {
    let mut rig = Rig::new(Settings {
        item_size_max: 1024,
        ..Settings::default()
    });
    rig.pipe.send(b"set k 0 0 5000\r\n");
    rig.pipe.send(&[b'x'; 3000]);
    assert_eq!(rig.event(), Outcome::Idle);
    assert_eq!(rig.state(), ConnState::Swallow);
    rig.pipe.send(&[b'x'; 2000]);
    rig.pipe.send(b"\r\nversion\r\n");
    assert_eq!(rig.event(), Outcome::Idle);
    assert_eq!(
        rig.pipe.take_output(),
        "SERVER_ERROR object too large for cache\r\nVERSION 1.6.18\r\n"
    );
}

#[test]
fn quit_writes_what_is_queued_then_closes() {
    let mut rig = Rig::new(Settings::default());
    rig.pipe.send(b"version\r\nquit\r\nversion\r\n");
    assert_eq!(rig.event(), Outcome::Close);
    assert_eq!(rig.pipe.take_output(), "VERSION 1.6.18\r\n");
}

/// A metadump takes its next batch only once the client has read the
/// last: the output never holds more than `STREAM_FREE`, a client that
/// reads nothing gets nothing more queued, and a command sent after the
/// dump is answered after its `END`.
#[test]
fn a_metadump_goes_at_the_pace_the_client_reads() {
    use crate::mem_budget::STREAM_FREE;
    let mut rig = Rig::new(Settings::default());
    for i in 0..5000 {
        let key = format!("dump:{i:05}");
        rig.server
            .cache
            .store(crate::cache::StoreMode::Set, key.as_bytes(), 0, 0, b"v", 0);
    }
    rig.pipe.window = 0;
    rig.pipe.send(b"lru_crawler metadump all\r\nversion\r\n");
    assert_eq!(rig.event(), Outcome::Idle);
    assert_eq!(rig.state(), ConnState::Mwrite);
    let first = rig.conn.write_buf_len();
    assert!(first > 0 && first <= STREAM_FREE, "{first}");
    // Events without room to write queue nothing more.
    assert_eq!(rig.event(), Outcome::Idle);
    assert_eq!(rig.conn.write_buf_len(), first);
    let mut events = 0;
    while !rig.pipe.output.ends_with(b"VERSION 1.6.18\r\n") {
        rig.pipe.window = 3000;
        rig.event();
        assert!(rig.conn.write_buf_len() <= STREAM_FREE);
        events += 1;
        assert!(events < 10_000, "the dump does not end");
    }
    let out = rig.pipe.take_output();
    let (dump, rest) = out.split_once("END\r\n").unwrap();
    assert_eq!(rest, "VERSION 1.6.18\r\n");
    let mut keys: Vec<&str> = dump
        .lines()
        .map(|l| l.strip_prefix("key=").unwrap().split(' ').next().unwrap())
        .collect();
    keys.sort();
    let want: Vec<String> = (0..5000)
        .map(|i| format!("dump:{i:05}").replace(':', "%3A"))
        .collect();
    assert_eq!(keys, want);
}

#[test]
fn a_nul_ends_the_keys_of_a_paused_multi_get() {
    let mut rig = Rig::new(Settings::default());
    let big = vec![b'b'; 100_000];
    rig.pipe.send(b"set big 0 0 100000\r\n");
    rig.pipe.send(&big);
    rig.pipe.send(b"\r\nset small 0 0 2\r\nhi\r\n");
    assert_eq!(rig.event(), Outcome::Idle);
    assert_eq!(rig.pipe.take_output(), "STORED\r\nSTORED\r\n");
    // The first value spends the get's reply budget, so the get pauses
    // after it; the keys it resumes with end at the NUL, as memcached's
    // C string does.
    rig.pipe.send(b"get big big\0 small\r\n");
    while rig.event() != Outcome::Idle || rig.state() != ConnState::Waiting {}
    let out = rig.pipe.take_output();
    assert_eq!(out.matches("VALUE big 0 100000\r\n").count(), 2);
    assert!(!out.contains("small"), "a key after the NUL was served");
    assert!(out.ends_with("END\r\n"));
}
