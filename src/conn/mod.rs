//! Connections and their state machine: mirrors memcached's `conn`,
//! `conn_new` and `drive_machine()` in `memcached.c`.
//!
//! One [`Conn`] type serves every transport, with memcached's states
//! ([`ConnState`]). It holds either a stream part (TCP or unix socket; the
//! machine in [`stream`] is generic over `Read + Write`, so another byte
//! stream slots in without touching it) or a UDP part ([`udp`]: one
//! datagram in, one framed reply message out).
//!
//! memcached's libevent loop is level-triggered with `EV_PERSIST`; mio is
//! edge-triggered, so a connection here must read until `WouldBlock`
//! before it may wait, and a connection that stops early (after `-R`
//! requests) must be put back on the worker's pending list, because mio
//! will not report bytes that are already sitting in the socket buffer.
//!
//! | file | holds | memcached |
//! | --- | --- | --- |
//! | `mod.rs` | `Conn` and its socket | `conn_new`, `dispatch_conn_new` |
//! | [`common`] | what both parts share: state, stats line | `conn_set_state` |
//! | [`stream`] | the stream machine | `drive_machine`, `try_read_command_*`, `transmit` |
//! | `stream/watch.rs` | a `watch` connection's turn | `conn_watch`, the logger thread's writes |
//! | [`udp`] | the UDP machine | `try_read_udp`, `transmit_udp` |
//! | [`read_buf`] | the read buffer | `c->rbuf`, `try_read_network` |
//! | [`mem`] | what a stream's replies are charged to | `resp_start`, `resp_finish` |
//! | [`tls`] | a TLS session as a byte stream | `ssl_read`, `ssl_write` |

pub mod common;
pub mod mem;
pub mod read_buf;
pub mod stream;
pub mod tls;
pub mod udp;

#[cfg(test)]
mod tests;

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};

use std::sync::Arc;

use mio::net::{TcpStream, UdpSocket, UnixStream};

use crate::conn_list::ConnList;
use crate::conn_mem::ThreadMem;
pub use crate::conn_state::ConnState;
use crate::counters::Gauges;
use crate::logger::CloseReason;
use crate::server::Server;
pub use common::{ByteStream, Common, Outcome};

/// A socket handed to a worker: accepted by the main thread, or the
/// worker's handle on a UDP socket.
#[derive(Debug)]
pub enum Transport {
    /// An accepted TCP connection.
    Tcp(TcpStream),
    /// An accepted unix-socket connection.
    Unix(UnixStream),
    /// This worker's handle on the shared UDP socket.
    Udp(UdpSocket),
    /// An accepted TCP connection that speaks TLS.
    Tls(Box<tls::TlsStream>),
}

/// The byte stream under a stream connection.
#[derive(Debug)]
pub enum StreamSock {
    /// TCP.
    Tcp(TcpStream),
    /// A unix socket.
    Unix(UnixStream),
    /// TLS over TCP.
    Tls(Box<tls::TlsStream>),
}

impl Read for StreamSock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            StreamSock::Tcp(s) => s.read(buf),
            StreamSock::Unix(s) => s.read(buf),
            StreamSock::Tls(s) => s.read(buf),
        }
    }
}

impl Write for StreamSock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            StreamSock::Tcp(s) => s.write(buf),
            StreamSock::Unix(s) => s.write(buf),
            StreamSock::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            StreamSock::Tls(s) => s.flush(),
            _ => Ok(()),
        }
    }
}

impl ByteStream for StreamSock {
    fn short_read_drains(&self) -> bool {
        !matches!(self, StreamSock::Tls(_))
    }
}

/// The transport-specific part of a connection.
#[derive(Debug)]
enum Part {
    Stream(StreamSock, Box<stream::StreamConn>),
    Udp(UdpSocket, Box<udp::UdpConn>),
}

/// One client connection (or one worker's UDP socket).
#[derive(Debug)]
pub struct Conn {
    common: Common,
    part: Part,
    /// The readiness the worker registered the socket for.
    registered: mio::Interest,
}

impl Conn {
    /// A new connection. Stream sockets start in `conn_new_cmd`, UDP in
    /// `conn_read`, as memcached's `dispatch_conn_new` starts them.
    pub fn new(transport: Transport, now: u32) -> Conn {
        let (state, fd, part) = match transport {
            Transport::Tcp(s) => (
                ConnState::NewCmd,
                s.as_raw_fd(),
                Part::Stream(StreamSock::Tcp(s), Box::default()),
            ),
            Transport::Unix(s) => (
                ConnState::NewCmd,
                s.as_raw_fd(),
                Part::Stream(StreamSock::Unix(s), Box::default()),
            ),
            Transport::Udp(s) => (ConnState::Read, s.as_raw_fd(), Part::Udp(s, Box::default())),
            Transport::Tls(s) => (
                ConnState::NewCmd,
                s.socket().as_raw_fd(),
                Part::Stream(StreamSock::Tls(s), Box::default()),
            ),
        };
        let mut conn = Conn {
            common: Common::new(state, fd, now),
            part,
            registered: mio::Interest::READABLE,
        };
        conn.registered = conn.wanted_interest();
        conn
    }

    /// The readiness to register the socket for now. A stream always
    /// waits for both. A UDP socket waits for writability only while
    /// replies are queued behind a send that met `EAGAIN`: Linux reports a
    /// UDP socket writable again each time one of its sent datagrams is
    /// freed, so a socket registered for it would wake its worker once per
    /// reply a client reads, for nothing.
    pub fn wanted_interest(&self) -> mio::Interest {
        match &self.part {
            Part::Udp(..) if self.common.state != ConnState::Mwrite => mio::Interest::READABLE,
            _ => mio::Interest::READABLE | mio::Interest::WRITABLE,
        }
    }

    /// The readiness the socket must be registered for again, if it
    /// changed since it was last registered (the worker then calls
    /// `reregister`).
    #[inline]
    pub fn interest_change(&mut self) -> Option<mio::Interest> {
        if let Part::Stream(..) = self.part {
            return None;
        }
        let want = self.wanted_interest();
        (want != self.registered).then(|| {
            self.registered = want;
            want
        })
    }

    /// Where the state machine is.
    pub fn state(&self) -> ConnState {
        self.common.state
    }

    /// Enter the connection in `stats conns`, with memcached's address
    /// texts: the peer (a unix client has none) and the local address.
    pub fn list_in(&mut self, list: &ConnList, now: u32) {
        use crate::conn_list::{inet_text, unix_text};
        let (addr, listen) = match &self.part {
            Part::Stream(StreamSock::Tcp(s), _) => (
                s.peer_addr().map(|a| inet_text(false, a)),
                s.local_addr().ok().map(|a| inet_text(false, a)),
            ),
            Part::Stream(StreamSock::Tls(t), _) => (
                t.socket().peer_addr().map(|a| inet_text(false, a)),
                t.socket().local_addr().ok().map(|a| inet_text(false, a)),
            ),
            Part::Stream(StreamSock::Unix(s), _) => (
                Ok(unix_text(None)),
                s.local_addr()
                    .ok()
                    .map(|a| unix_text(Some(a.as_pathname().unwrap_or("".as_ref())))),
            ),
            Part::Udp(s, _) => (s.local_addr().map(|a| inet_text(true, a)), None),
        };
        let addr = addr.unwrap_or_else(|_| "<closed>".to_string());
        let udp = matches!(self.part, Part::Udp(..));
        let state = self.common.state;
        self.common.entry = Some(list.add(self.fd(), udp, addr, listen, state, now));
    }

    /// Count this stream connection's buffers in its worker's
    /// `-o read_buf_mem_limit` pool.
    pub fn set_mem(&mut self, mem: &Arc<ThreadMem>) {
        if let Part::Stream(_, s) = &mut self.part {
            s.set_mem(mem);
        }
    }

    /// Give back what the connection holds of its worker's pool, and of
    /// the server's reply and in-flight pools. `server` is the one the
    /// connection was charged to.
    pub fn release_mem(&mut self, server: &Server) {
        if let Part::Stream(_, s) = &mut self.part {
            s.release_mem(server);
        }
    }

    /// The connection is about to be closed: a TLS session tells its peer
    /// (close_notify, as memcached's `SSL_shutdown`), best effort, so that
    /// the client sees a clean end rather than a reset on its next write.
    pub fn say_goodbye(&mut self) {
        if let Part::Stream(StreamSock::Tls(t), _) = &mut self.part {
            t.close_notify();
        }
    }

    /// The server is stopping: a stream connection answers what it has
    /// read or still finds in its socket and then closes; a UDP one sends
    /// its queued datagrams and closes.
    pub fn begin_drain(&mut self) {
        self.common.draining = true;
    }

    /// The mio source to register.
    pub fn source(&mut self) -> &mut dyn mio::event::Source {
        match &mut self.part {
            Part::Stream(StreamSock::Tcp(s), _) => s,
            Part::Stream(StreamSock::Unix(s), _) => s,
            Part::Stream(StreamSock::Tls(t), _) => t.socket_mut(),
            Part::Udp(s, _) => s,
        }
    }

    /// The socket's file descriptor, for log lines (memcached logs by fd).
    pub fn fd(&self) -> RawFd {
        self.common.fd
    }

    /// Whether `-o idle_timeout` may close this connection now: a stream
    /// connection waiting for its next command for longer than the timeout
    /// (memcached's `conn_timeout_thread`).
    /// A connection stalled inside a value (`conn_nread`, `conn_swallow`)
    /// counts as idle too, timed from its last byte: memcached leaves it
    /// alone, but here a stalled value holds memory of the in-flight pool.
    pub fn is_idle(&self, now: u32, idle_timeout: u32) -> bool {
        let Part::Stream(_, s) = &self.part else {
            return false;
        };
        let waiting = match self.common.state {
            ConnState::Waiting | ConnState::Read | ConnState::NewCmd => s.nothing_unread(),
            ConnState::Nread | ConnState::Swallow => true,
            _ => false,
        };
        waiting && now.saturating_sub(self.common.last_cmd_time) > idle_timeout
    }

    /// The socket reported readiness: whatever the last read saw, there
    /// may be more to read now.
    pub fn readiness_event(&mut self) {
        if let Part::Stream(_, s) = &mut self.part {
            s.readiness_event();
        }
    }

    /// The readiness event also said the peer shut down its side
    /// (`EPOLLRDHUP`).
    pub fn read_closed_event(&mut self) {
        if let Part::Stream(_, s) = &mut self.part {
            s.read_closed_event();
        }
    }

    /// Bring the `read_buf_count` / `read_buf_bytes` stats up to date with
    /// this connection's read buffer; with `closing`, take it out of them.
    pub fn sync_read_buf(&mut self, g: &Gauges, closing: bool) {
        let now = match (&self.part, closing) {
            (_, true) => 0,
            (Part::Stream(_, s), false) => s.read_buf_capacity(),
            (Part::Udp(_, u), false) => u.read_buf_capacity(),
        };
        self.common.sync_read_buf(g, now);
    }

    /// Tell a stream connection how its worker is woken and its token
    /// there, should it become a watcher.
    #[inline(never)]
    pub fn set_wake(&mut self, token: usize, waker: &Arc<mio::Waker>) {
        if let Part::Stream(_, s) = &mut self.part {
            s.set_wake(token, waker);
        }
    }

    /// `-o idle_timeout` is closing the connection.
    pub fn closing_idle(&mut self) {
        self.common.close_reason = CloseReason::IdleTimeout;
    }

    /// Log the opening (`conn_new`) or the closing (`conn_close`) of a
    /// stream connection for `watch connevents`, as memcached's
    /// `conn_new` and `conn_close` do: the peer's address (none for a unix
    /// socket, or when the socket no longer knows it).
    #[cold]
    #[inline(never)]
    pub fn log_event(&self, new: bool) {
        use crate::logger::{conn_close, conn_new, Transport as T};
        let Part::Stream(sock, _) = &self.part else {
            return;
        };
        let (peer, transport) = match sock {
            StreamSock::Tcp(s) => (s.peer_addr().ok(), T::Tcp),
            StreamSock::Tls(t) => (t.socket().peer_addr().ok(), T::Tcp),
            StreamSock::Unix(_) => (None, T::Local),
        };
        if new {
            conn_new(peer, transport, self.fd());
        } else {
            conn_close(peer, transport, self.common.close_reason, self.fd());
        }
    }

    /// Run the state machine until the connection must wait, has used its
    /// `-R` budget, or is done (memcached's `drive_machine`).
    pub fn drive_machine(&mut self, server: &Server) -> Outcome {
        // The `cfd` of what this connection makes the cache log.
        crate::logger::set_cfd(self.common.fd);
        match &mut self.part {
            Part::Stream(sock, s) => s.drive(&mut self.common, sock, server),
            Part::Udp(sock, u) => u.drive(&mut self.common, sock, server),
        }
    }
}
