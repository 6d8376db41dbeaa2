//! Connections and their state machine: mirrors memcached's `conn`,
//! `enum conn_states` and `drive_machine()` in `memcached.c`.
//!
//! One `Conn` type serves TCP, unix sockets and UDP. memcached's libevent
//! loop is level-triggered with `EV_PERSIST`; mio is edge-triggered, so a
//! connection here must read until `WouldBlock` before it may wait, and a
//! connection that stops early (after `-R` requests) must be put back on the
//! worker's pending list, because mio will not report bytes that are already
//! sitting in the socket buffer.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;

use mio::net::{TcpStream, UdpSocket, UnixStream};

use crate::proto::binary;
use crate::proto::get::{self, GetCmd, Progress};
use crate::proto::text::{self, Action, PendingStore, Session, MAX_LINE, MAX_LINE_NO_GET};
use crate::udp;
use crate::Server;

/// Reply buffers a UDP connection keeps for reuse: two receive batches'
/// worth, each of at most `SPARE_CAPACITY` bytes.
const SPARE_BUFFERS: usize = 2 * crate::udp_batch::BATCH;
const SPARE_CAPACITY: usize = 16 * 1024;

/// Size of each read from a stream socket.
const READ_SIZE: usize = 16 * 1024;

/// The states of a connection, memcached's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ConnState {
    /// A listening socket (the main thread's accept loop).
    Listening,
    /// Ready for the next command: reset per-command state.
    NewCmd,
    /// Waiting for the socket to become readable.
    Waiting,
    /// Reading from the socket.
    Read,
    /// A command line may be in the buffer: parse and run it.
    ParseCmd,
    /// Reading the value of a store command.
    Nread,
    /// Discarding the value of a store command that cannot be stored.
    Swallow,
    /// Writing a simple reply. memcached uses it for single-line replies;
    /// here every reply goes through `Mwrite`, so it is never entered.
    Write,
    /// Writing queued replies (several commands' worth, or UDP datagrams).
    Mwrite,
    /// Done: the worker closes and frees the connection.
    Closing,
}

impl ConnState {
    const ALL: [ConnState; 10] = [
        ConnState::Listening,
        ConnState::NewCmd,
        ConnState::Waiting,
        ConnState::Read,
        ConnState::ParseCmd,
        ConnState::Nread,
        ConnState::Swallow,
        ConnState::Write,
        ConnState::Mwrite,
        ConnState::Closing,
    ];

    /// The state as a small number (for [`crate::conn_list`]).
    pub fn index(self) -> u8 {
        self as u8
    }

    /// The state numbered `i` by [`ConnState::index`].
    pub fn from_index(i: u8) -> ConnState {
        Self::ALL[usize::from(i).min(Self::ALL.len() - 1)]
    }

    /// memcached's name for the state, as `-vvv` prints it.
    pub fn name(self) -> &'static str {
        match self {
            ConnState::Listening => "conn_listening",
            ConnState::NewCmd => "conn_new_cmd",
            ConnState::Waiting => "conn_waiting",
            ConnState::Read => "conn_read",
            ConnState::ParseCmd => "conn_parse_cmd",
            ConnState::Nread => "conn_nread",
            ConnState::Swallow => "conn_swallow",
            ConnState::Write => "conn_write",
            ConnState::Mwrite => "conn_mwrite",
            ConnState::Closing => "conn_closing",
        }
    }
}

/// The socket under a connection.
#[derive(Debug)]
pub enum Transport {
    /// An accepted TCP connection.
    Tcp(TcpStream),
    /// An accepted unix-socket connection.
    Unix(UnixStream),
    /// This worker's handle on the shared UDP socket.
    Udp(UdpSocket),
}

/// What `drive_machine` tells the worker.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The connection waits for its next readiness event.
    Idle,
    /// The connection used up its `-R` budget with work left: run it again
    /// soon without waiting for an event.
    Yield,
    /// Close and free the connection.
    Close,
}

/// The rest of a multi-get served in slices (see `proto::get`).
#[derive(Debug)]
struct PausedGet {
    /// How to answer each key.
    cmd: GetCmd,
    /// The keys of the command line not yet served.
    keys: Vec<u8>,
    /// How far into `keys` serving has got.
    pos: usize,
}

/// One client connection (or one worker's UDP socket).
#[derive(Debug)]
pub struct Conn {
    /// The socket. Only the owning worker touches it.
    pub transport: Transport,
    /// Where the state machine is.
    pub state: ConnState,
    /// The read buffer: `rbuf[rpos..rlen]` is read and not yet consumed.
    /// Its length only grows (zero-filled once), so a read needs no fresh
    /// zeroing; `rlen` marks the end of the valid bytes.
    rbuf: Vec<u8>,
    /// The connection's protocol once known: `Some(true)` for binary
    /// (memcached's `c->protocol`, chosen by `-B` or by the first byte).
    binary: Option<bool>,
    /// Passed `-Y` authentication (memcached's `c->authenticated`; looked
    /// at only under `-Y`, which UDP cannot be used with).
    authenticated: bool,
    /// The last read was short: the socket held no more at that moment.
    drained: bool,
    /// The peer has shut down its side: a FIN may sit behind the bytes
    /// read, with no edge left to report it, so reads go on until one
    /// returns 0 (the short-read rule no longer applies).
    read_closed: bool,
    /// Bytes of `rbuf` counted in the `read_buf_*` stats.
    rbuf_charged: usize,
    /// Start of the unconsumed bytes in `rbuf`.
    rpos: usize,
    /// End of the bytes read into `rbuf`.
    rlen: usize,
    /// Replies queued for a stream socket: `wbuf[wpos..]` is unsent.
    wbuf: Vec<u8>,
    /// How much of `wbuf` is already sent.
    wpos: usize,
    /// Protocol state that outlives a command (`noreply`).
    sess: Session,
    /// The store command whose value is being read (`conn_nread`).
    pending: Option<PendingStore>,
    /// Bytes of value still to swallow (`conn_swallow`).
    sbytes: usize,
    /// Close once the queued replies are written (`quit`).
    close_after_write: bool,
    /// A multi-get that spent its reply budget and waits for the write to
    /// drain before serving the rest of its keys.
    paused_get: Option<PausedGet>,
    /// Relative time of the last command, for `-o idle_timeout`.
    pub last_cmd_time: u32,
    /// Framed UDP datagrams not yet sent, with their destinations. Filled
    /// when `sendto` hits `EAGAIN`; drained when the socket is writable.
    udp_out: VecDeque<udp::Outgoing>,
    /// Sent messages' reply buffers, kept for the next datagrams' replies
    /// so that a request costs no allocation: a batch of datagrams builds
    /// up to a batch of replies before they are sent.
    udp_spare: Vec<Vec<u8>>,
    /// Receive buffers of a UDP connection (see `udp_batch`).
    udp_batch: crate::udp_batch::RecvBatch,
    /// Send state of a UDP connection.
    udp_send: crate::udp_batch::SendBatch,
    /// The server is stopping: finish the requests already received, then
    /// close instead of waiting for more.
    draining: bool,
    /// Holds a read-buffer chunk of the worker's `read_buf_mem_limit`
    /// pool (see `conn_mem`).
    holds_rbuf: bool,
    /// Bytes of the value being read charged to the server's in-flight
    /// pool (`mem_budget`).
    inflight: usize,
    /// Bytes of `rbuf` past two reads' worth charged to the in-flight
    /// pool: a long multi-get line (up to `MAX_LINE`), kept until the
    /// buffer is shrunk.
    line_charge: usize,
    /// This connection's line in `stats conns`.
    entry: Option<std::sync::Arc<crate::conn_list::ConnEntry>>,
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

fn interrupted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}

impl Conn {
    /// A new connection. Stream sockets start in `conn_new_cmd`, UDP in
    /// `conn_read`, as memcached's `dispatch_conn_new` starts them.
    pub fn new(transport: Transport, now: u32) -> Conn {
        let state = match transport {
            Transport::Udp(_) => ConnState::Read,
            _ => ConnState::NewCmd,
        };
        Conn {
            transport,
            state,
            rbuf: Vec::new(),
            rbuf_charged: 0,
            drained: false,
            read_closed: false,
            binary: None,
            authenticated: false,
            rpos: 0,
            rlen: 0,
            wbuf: Vec::new(),
            wpos: 0,
            sess: Session::default(),
            pending: None,
            sbytes: 0,
            close_after_write: false,
            paused_get: None,
            last_cmd_time: now,
            udp_out: VecDeque::new(),
            udp_spare: Vec::new(),
            udp_batch: Default::default(),
            udp_send: Default::default(),
            draining: false,
            holds_rbuf: false,
            inflight: 0,
            line_charge: 0,
            entry: None,
        }
    }

    /// Enter the connection in `stats conns`, with memcached's address
    /// texts: the peer (a unix client has none) and the local address.
    pub fn list_in(&mut self, list: &crate::conn_list::ConnList, now: u32) {
        use crate::conn_list::{inet_text, unix_text};
        let (addr, listen) = match &self.transport {
            Transport::Tcp(s) => (
                s.peer_addr().map(|a| inet_text(false, a)),
                s.local_addr().ok().map(|a| inet_text(false, a)),
            ),
            Transport::Unix(s) => (
                Ok(unix_text(None)),
                s.local_addr()
                    .ok()
                    .map(|a| unix_text(Some(a.as_pathname().unwrap_or("".as_ref())))),
            ),
            Transport::Udp(s) => (s.local_addr().map(|a| inet_text(true, a)), None),
        };
        let addr = addr.unwrap_or_else(|_| "<closed>".to_string());
        self.entry = Some(list.add(self.fd(), self.is_udp(), addr, listen, self.state, now));
    }

    /// A command arrived: note the time (idle timeout, `stats conns`).
    fn touch(&mut self, server: &Server) {
        self.last_cmd_time = server.cache.clock().now();
        if let Some(e) = &self.entry {
            e.set_last_cmd(self.last_cmd_time);
        }
    }

    /// Count this stream connection's buffers in its worker's
    /// `-o read_buf_mem_limit` pool.
    pub fn set_mem(&mut self, mem: &std::sync::Arc<crate::conn_mem::ThreadMem>) {
        if mem.limited() && !self.is_udp() {
            self.sess.mem = Some(mem.clone());
        }
    }

    /// Give back what the connection holds of its worker's pool, and of
    /// the server's reply and in-flight pools. `server` is the one the
    /// connection was charged to.
    pub fn release_mem(&mut self, server: &Server) {
        self.sess.release_resps();
        self.release_rbuf();
        self.sess.settle(0);
        server.inflight.give(std::mem::take(&mut self.inflight));
        server.inflight.give(std::mem::take(&mut self.line_charge));
    }

    fn release_rbuf(&mut self) {
        if std::mem::take(&mut self.holds_rbuf) {
            if let Some(m) = &self.sess.mem {
                m.put_rbuf();
            }
        }
    }

    /// `conn_read` of a stream: take a read-buffer chunk from the pool
    /// if counted and not held (memcached closes when there is none; an
    /// error other than `WouldBlock` does that here), then read.
    fn take_rbuf_then_read(&mut self, server: &Server) -> io::Result<usize> {
        if let Some(m) = &self.sess.mem {
            if !self.holds_rbuf {
                if !m.take_rbuf() {
                    return Err(io::Error::other("read_buf_mem_limit: no read buffer"));
                }
                self.holds_rbuf = true;
            }
        }
        self.stream_read(server)
    }

    /// The server is stopping (the `draining` field): a stream
    /// connection answers what it has read or still finds in its socket
    /// and then closes; a UDP one sends its queued datagrams and closes.
    pub fn begin_drain(&mut self) {
        self.draining = true;
    }

    /// The mio source to register.
    pub fn source(&mut self) -> &mut dyn mio::event::Source {
        match &mut self.transport {
            Transport::Tcp(s) => s,
            Transport::Unix(s) => s,
            Transport::Udp(s) => s,
        }
    }

    /// The socket's file descriptor, for log lines (memcached logs by fd).
    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match &self.transport {
            Transport::Tcp(s) => s.as_raw_fd(),
            Transport::Unix(s) => s.as_raw_fd(),
            Transport::Udp(s) => s.as_raw_fd(),
        }
    }

    /// Whether `-o idle_timeout` may close this connection now: a stream
    /// connection waiting for its next command for longer than the timeout
    /// (memcached's `conn_timeout_thread`).
    /// A connection stalled inside a value (`conn_nread`, `conn_swallow`)
    /// counts as idle too, timed from its last byte: memcached leaves it
    /// alone, but here a stalled value holds memory of the in-flight pool.
    pub fn is_idle(&self, now: u32, idle_timeout: u32) -> bool {
        let waiting = match self.state {
            ConnState::Waiting | ConnState::Read | ConnState::NewCmd => self.unread().is_empty(),
            ConnState::Nread | ConnState::Swallow => true,
            _ => false,
        };
        !self.is_udp() && waiting && now.saturating_sub(self.last_cmd_time) > idle_timeout
    }

    fn is_udp(&self) -> bool {
        matches!(self.transport, Transport::Udp(_))
    }

    /// memcached's `conn_set_state`: every transition is logged at `-vvv`.
    fn set_state(&mut self, state: ConnState) {
        if state != self.state {
            log::trace!(
                "{}: going from {} to {}",
                self.fd(),
                self.state.name(),
                state.name()
            );
            self.state = state;
            if let Some(e) = &self.entry {
                e.set_state(state);
            }
        }
    }

    fn unread(&self) -> &[u8] {
        &self.rbuf[self.rpos..self.rlen]
    }

    /// The socket reported readiness: whatever the last read saw, there
    /// may be more to read now.
    pub fn readiness_event(&mut self) {
        self.drained = false;
    }

    /// The readiness event also said the peer shut down its side
    /// (`EPOLLRDHUP`).
    pub fn read_closed_event(&mut self) {
        self.read_closed = true;
    }

    /// Bring the `read_buf_count` / `read_buf_bytes` stats up to date with
    /// this connection's read buffer; with `closing`, take it out of them.
    pub fn sync_read_buf(&mut self, g: &crate::stats::Gauges, closing: bool) {
        let now = if closing { 0 } else { self.rbuf.capacity() };
        let old = std::mem::replace(&mut self.rbuf_charged, now);
        if now == old {
            return;
        }
        g.read_buf_bytes.fetch_add(now as u64, Ordering::Relaxed);
        g.read_buf_bytes.fetch_sub(old as u64, Ordering::Relaxed);
        match (old, now) {
            (0, _) => g.read_buf_count.fetch_add(1, Ordering::Relaxed),
            (_, 0) => g.read_buf_count.fetch_sub(1, Ordering::Relaxed),
            _ => 0,
        };
    }

    /// Move the unconsumed bytes to the front of `rbuf`.
    fn compact(&mut self) {
        if self.rpos > 0 {
            self.rbuf.copy_within(self.rpos..self.rlen, 0);
            self.rlen -= self.rpos;
            self.rpos = 0;
        }
    }

    fn stream_read(&mut self, server: &Server) -> io::Result<usize> {
        self.compact();
        let len = self.rlen;
        if self.rbuf.is_empty() {
            // Zeroed by the allocator (calloc), which leaves fresh memory
            // untouched: an idle connection's buffer costs only the pages
            // its reads fill.
            self.rbuf = vec![0; READ_SIZE];
            self.sync_read_buf(&server.gauges, false);
        } else if self.rbuf.len() < len + READ_SIZE {
            // A buffer that grows past two reads for anything but a value
            // (whose charge covers it) holds a long line: charge it first.
            let want = (len + READ_SIZE).saturating_sub(2 * READ_SIZE);
            if self.inflight == 0 && want > self.line_charge {
                if !server.inflight.take(want - self.line_charge) {
                    return Err(io::Error::other("no memory for a long line"));
                }
                self.line_charge = want;
            }
            self.rbuf.resize(len + READ_SIZE, 0);
            self.sync_read_buf(&server.gauges, false);
        }
        let space = self.rbuf.len() - len;
        let res = match &mut self.transport {
            Transport::Tcp(s) => s.read(&mut self.rbuf[len..]),
            Transport::Unix(s) => s.read(&mut self.rbuf[len..]),
            Transport::Udp(_) => unreachable!("UDP reads use recv_from"),
        };
        self.drained = matches!(res, Ok(n) if n > 0 && n < space);
        self.rlen = len + *res.as_ref().unwrap_or(&0);
        if let Ok(n) = res {
            server
                .stats
                .bytes_read
                .fetch_add(n as u64, Ordering::Relaxed);
        }
        res
    }

    /// Give back buffer space a large value or reply left behind, so that
    /// an idle connection holds little memory (memcached returns its big
    /// read buffers to a pool for the same reason).
    fn shrink_buffers(&mut self, server: &Server) {
        const KEEP: usize = 16 * 1024;
        self.compact();
        // New buffers rather than shrinking in place: a block cut down
        // in place leaves a hole the next large one cannot use. A buffer
        // still filling with a long line or a value is left alone.
        if self.rbuf.len() > 4 * KEEP && self.inflight == 0 && self.rlen <= KEEP {
            let mut fresh = vec![0; KEEP];
            fresh[..self.rlen].copy_from_slice(&self.rbuf[..self.rlen]);
            self.rbuf = fresh;
            server.inflight.give(std::mem::take(&mut self.line_charge));
        }
        if self.wbuf.is_empty() && self.wbuf.capacity() > 4 * KEEP {
            self.wbuf = Vec::new();
        }
    }

    fn stream_write(&mut self) -> io::Result<usize> {
        let buf = &self.wbuf[self.wpos..];
        match &mut self.transport {
            Transport::Tcp(s) => s.write(buf),
            Transport::Unix(s) => s.write(buf),
            Transport::Udp(_) => unreachable!("UDP writes use send_to"),
        }
    }

    /// Run the state machine until the connection must wait, has used its
    /// `-R` budget, or is done (memcached's `drive_machine`).
    pub fn drive_machine(&mut self, server: &Server) -> Outcome {
        if self.is_udp() {
            return self.drive_udp(server);
        }
        let mut nreqs = server.settings.reqs_per_event as isize;
        loop {
            match self.state {
                ConnState::Listening => unreachable!("listeners live on the main thread"),
                ConnState::NewCmd => {
                    // One command per pass; once the budget is spent, flush
                    // what is queued, then yield.
                    nreqs -= 1;
                    if nreqs >= 0 {
                        if self.wbuf.len() - self.wpos > crate::mem_budget::STREAM_FREE {
                            // Replies wait for the socket: parse nothing
                            // more until they are written, so that what a
                            // client that does not read can make the
                            // server hold is bounded, whatever it sends.
                            self.set_state(ConnState::Mwrite);
                        } else if let Some(g) = self.paused_get.take() {
                            self.resume_get(server, g);
                        } else if !self.unread().is_empty() {
                            self.set_state(ConnState::ParseCmd);
                        } else if self.wpos < self.wbuf.len() {
                            self.set_state(ConnState::Mwrite);
                        } else {
                            self.shrink_buffers(server);
                            self.sync_read_buf(&server.gauges, false);
                            self.release_rbuf();
                            self.set_state(ConnState::Waiting);
                        }
                    } else if self.wpos < self.wbuf.len() {
                        self.set_state(ConnState::Mwrite);
                    } else {
                        server.stats.conn_yields.fetch_add(1, Ordering::Relaxed);
                        return Outcome::Yield;
                    }
                }
                ConnState::Waiting => {
                    // Edge-triggered: wait only once the socket is known to
                    // be empty, either because a read said WouldBlock or
                    // because the last read was short (it took everything
                    // there was; anything later raises a new edge). The
                    // second saves a read per request.
                    // While stopping, read until the socket says it is
                    // empty, so requests sent before the stop are answered;
                    // after the peer's FIN, read until the read returns 0
                    // (the FIN's edge came with the bytes already read).
                    if std::mem::take(&mut self.drained) && !self.draining && !self.read_closed {
                        return Outcome::Idle;
                    }
                    self.set_state(ConnState::Read);
                }
                ConnState::Read => match self.take_rbuf_then_read(server) {
                    Ok(0) => self.set_state(ConnState::Closing),
                    Ok(_) => self.set_state(ConnState::ParseCmd),
                    Err(e) if would_block(&e) => {
                        if self.draining && self.unread().is_empty() {
                            // Nothing was asked that is not answered.
                            self.set_state(ConnState::Closing);
                            continue;
                        }
                        if self.unread().is_empty() {
                            self.release_rbuf();
                        }
                        self.set_state(ConnState::Waiting);
                        return Outcome::Idle;
                    }
                    Err(e) if interrupted(&e) => {}
                    Err(e) => {
                        log::debug!("read error: {e}");
                        self.set_state(ConnState::Closing);
                    }
                },
                ConnState::ParseCmd => self.parse_cmd(server),
                ConnState::Nread => {
                    let p = self
                        .pending
                        .as_ref()
                        .expect("nread without a pending store");
                    if self.unread().len() >= p.vlen {
                        let p = self.pending.take().expect("checked above");
                        let vlen = p.vlen;
                        let data = &self.rbuf[self.rpos..self.rpos + vlen];
                        text::complete_nread(server, &mut self.sess, p, data, &mut self.wbuf);
                        self.rpos += vlen;
                        if self.inflight > 0 {
                            // The buffer sized for the value goes with
                            // its charge: what follows the value is at
                            // most one read.
                            server.inflight.give(std::mem::take(&mut self.inflight));
                            self.shrink_buffers(server);
                        }
                        self.set_state(ConnState::NewCmd);
                    } else if let Some(o) = self.read_more(server) {
                        return o;
                    }
                }
                ConnState::Swallow => {
                    let take = self.sbytes.min(self.unread().len());
                    self.rpos += take;
                    self.sbytes -= take;
                    if self.sbytes == 0 {
                        self.set_state(ConnState::NewCmd);
                    } else if let Some(o) = self.read_more(server) {
                        return o;
                    }
                }
                ConnState::Write | ConnState::Mwrite => {
                    if self.wpos >= self.wbuf.len() {
                        self.wbuf.clear();
                        self.wpos = 0;
                        self.sess.settle(0);
                        // The pool covered the reply while it waited; the
                        // buffer it grew would outlive the charge, so a
                        // large one goes back now, not when the client
                        // next falls silent.
                        if self.wbuf.capacity() > 4 * crate::mem_budget::STREAM_FREE {
                            self.wbuf = Vec::new();
                        }
                        self.sess.held.clear();
                        self.sess.release_resps();
                        if self.close_after_write {
                            self.set_state(ConnState::Closing);
                        } else {
                            self.set_state(ConnState::NewCmd);
                        }
                        continue;
                    }
                    match self.stream_write() {
                        Ok(n) => {
                            self.wpos += n;
                            server
                                .stats
                                .bytes_written
                                .fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Err(e) if would_block(&e) => return Outcome::Idle,
                        Err(e) if interrupted(&e) => {}
                        Err(e) => {
                            log::debug!("write error: {e}");
                            self.set_state(ConnState::Closing);
                        }
                    }
                }
                ConnState::Closing => return Outcome::Close,
            }
        }
    }

    /// Read more bytes while in `Nread` or `Swallow`; `Some` when the
    /// machine must stop.
    fn read_more(&mut self, server: &Server) -> Option<Outcome> {
        // A value is consumed as it arrives, so the buffer never holds more
        // than one read beyond the value being assembled.
        if self.state == ConnState::Swallow {
            self.rpos = 0;
            self.rlen = 0;
        }
        match self.stream_read(server) {
            Ok(0) => {
                self.set_state(ConnState::Closing);
                None
            }
            Ok(_) => {
                // The idle timeout of a value in flight counts from its
                // last byte.
                self.last_cmd_time = server.cache.clock().now();
                None
            }
            Err(e) if would_block(&e) => Some(Outcome::Idle),
            Err(e) if interrupted(&e) => None,
            Err(e) => {
                log::debug!("read error: {e}");
                self.set_state(ConnState::Closing);
                None
            }
        }
    }

    /// memcached's `try_read_command_ascii` plus `process_command_ascii`.
    fn parse_cmd(&mut self, server: &Server) {
        use crate::settings::Protocol;
        if self.sess.pool.is_none() {
            self.sess.pool = Some(server.reply_pool.clone());
        }
        if server.auth.is_some() && !self.authenticated {
            return self.parse_auth(server);
        }
        let first = self.unread().first().copied();
        let binary = *self
            .binary
            .get_or_insert(match server.settings.binding_protocol {
                Protocol::Ascii => false,
                Protocol::Binary => true,
                Protocol::Auto => first == Some(binary::REQ_MAGIC),
            });
        if binary {
            return self.parse_binary(server);
        }
        let buf = self.unread();
        let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
            if buf.len() > MAX_LINE_NO_GET {
                // Without a newline in the first 2 KiB, only a huge
                // multi-get is plausible; anything else is garbage.
                let trimmed = buf.iter().position(|&b| b != b' ').unwrap_or(buf.len());
                let rest = &buf[trimmed..];
                if trimmed > 100
                    || !(rest.starts_with(b"get ") || rest.starts_with(b"gets "))
                    || buf.len() > MAX_LINE
                {
                    self.set_state(ConnState::Closing);
                    return;
                }
            }
            self.await_input(server);
            return;
        };
        let mut end = nl;
        if end > 1 && buf[end - 1] == b'\r' {
            end -= 1;
        }
        let start = self.rpos;
        self.rpos += nl + 1;
        self.sess.unsent = self.wpos;
        self.touch(server);
        if !self.sess.resp_start() {
            // No response object for the reply: memcached closes.
            self.set_state(ConnState::Closing);
            return;
        }
        let line = &self.rbuf[start..start + end];
        let action = text::process_command(server, &mut self.sess, line, &mut self.wbuf);
        if let Action::GetMore(cmd, offset) = action {
            // Keep the keys not served yet; the line itself is consumed.
            let keys = self.rbuf[start + offset..start + end].to_vec();
            self.paused_get = Some(PausedGet { cmd, keys, pos: 0 });
            self.set_state(ConnState::Mwrite);
            return;
        }
        self.apply(server, action);
    }

    /// The buffer holds no whole request yet: send what earlier pipelined
    /// requests produced, then wait for more bytes.
    fn await_input(&mut self, server: &Server) {
        if self.wpos < self.wbuf.len() {
            self.set_state(ConnState::Mwrite);
        } else {
            // A large value read earlier may have left a large buffer
            // behind a partial line that will never end.
            self.shrink_buffers(server);
            self.set_state(ConnState::Waiting);
        }
    }

    /// memcached's `try_read_command_asciiauth`: before `-Y`
    /// authentication the one command taken is `set <key> <flags>
    /// <exptime> <bytes>` whose value is `<user> <password>`; any other
    /// line gets `CLIENT_ERROR unauthenticated`.
    fn parse_auth(&mut self, server: &Server) {
        let buf = self.unread();
        // memcached waits for two bytes at least, the shortest it answers.
        if buf.len() < 2 {
            self.await_input(server);
            return;
        }
        let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
            if buf.len() > MAX_LINE_NO_GET {
                self.set_state(ConnState::Closing);
            } else {
                self.await_input(server);
            }
            return;
        };
        // The `\r` stays on the last token, as in memcached; the number
        // parser stops at it.
        let t = text::Tokens::new(&buf[..nl]);
        let size = if t.ntokens() >= 6 && t.get(0) == b"set" {
            crate::proto::number::strtoul(t.get(4))
        } else {
            None
        };
        let reply: &[u8] = match size {
            None => {
                self.rpos += nl + 1;
                b"CLIENT_ERROR unauthenticated"
            }
            // Tokens of a few hundred bytes at most are expected; a longer
            // value would only be buffered for nothing.
            Some(n) if n as usize > MAX_LINE_NO_GET => {
                self.set_state(ConnState::Closing);
                return;
            }
            Some(n) => {
                let vlen = n as usize + 2;
                let Some(value) = buf.get(nl + 1..nl + 1 + vlen) else {
                    self.await_input(server);
                    return;
                };
                let auth = server.auth.as_ref().expect("parse_auth runs under -Y");
                // Some(passed) when the tokens were checked at all.
                let (reply, passed): (&[u8], _) = if !value.ends_with(b"\r\n") {
                    (b"CLIENT_ERROR bad command line termination", None)
                } else {
                    let creds = text::Tokens::new(&value[..vlen - 2]);
                    if creds.ntokens() < 3 {
                        (b"CLIENT_ERROR bad authentication token format", None)
                    } else if auth.check(creds.get(0), creds.get(1)) {
                        (b"STORED", Some(true))
                    } else {
                        (b"CLIENT_ERROR authentication failure", Some(false))
                    }
                };
                self.rpos += nl + 1 + vlen;
                if let Some(passed) = passed {
                    server.stats.auth_cmds.fetch_add(1, Ordering::Relaxed);
                    if passed {
                        self.authenticated = true;
                    } else {
                        server.stats.auth_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                reply
            }
        };
        self.touch(server);
        if !self.sess.resp_start() {
            self.set_state(ConnState::Closing);
            return;
        }
        self.sess.unsent = self.wpos;
        text::out_string(&mut self.sess, &mut self.wbuf, reply);
        self.apply(server, Action::Continue);
    }

    /// memcached's `try_read_command_binary`.
    fn parse_binary(&mut self, server: &Server) {
        self.touch(server);
        if !self.sess.resp_start() {
            self.set_state(ConnState::Closing);
            return;
        }
        let buf = &self.rbuf[self.rpos..self.rlen];
        match binary::process(server, &mut self.sess, buf, &mut self.wbuf) {
            binary::Parsed::NeedMore => {
                // Not a request yet: give the response object back.
                self.sess.resp_undo();
                self.await_input(server);
            }
            binary::Parsed::Done(n, action) => {
                self.rpos += n;
                self.apply(server, action);
            }
        }
    }

    /// Serve the next slice of a paused multi-get.
    fn resume_get(&mut self, server: &Server, mut g: PausedGet) {
        self.sess.unsent = self.wpos;
        let keys = &g.keys[g.pos..];
        match get::serve_keys(server, &mut self.sess, g.cmd, keys, &mut self.wbuf) {
            Progress::Paused(n) => {
                g.pos += n;
                self.paused_get = Some(g);
            }
            Progress::Close => {
                self.apply(server, Action::Close);
                return;
            }
            Progress::Done | Progress::Failed => {}
        }
        self.set_state(ConnState::Mwrite);
    }

    fn apply(&mut self, server: &Server, action: Action) {
        match action {
            Action::Continue | Action::GetMore(..) => self.set_state(ConnState::NewCmd),
            Action::Flush => self.set_state(ConnState::Mwrite),
            Action::Nread(p) => {
                if p.vlen > crate::mem_budget::INFLIGHT_FREE {
                    // Charged before the first byte is read: a value
                    // that finds the pool spent is refused and swallowed.
                    if !server.inflight.take(p.vlen) {
                        let n = p.vlen;
                        text::refuse_store(server, &mut self.sess, p, &mut self.wbuf);
                        self.sbytes = n;
                        self.set_state(ConnState::Swallow);
                        return;
                    }
                    self.inflight = p.vlen;
                    // Room for the whole value at once, rather than
                    // growth by doubling as it arrives.
                    self.compact();
                    let want = self.rlen + p.vlen + READ_SIZE;
                    if self.rbuf.capacity() < want {
                        self.rbuf.reserve_exact(want - self.rbuf.len());
                    }
                }
                self.pending = Some(p);
                self.set_state(ConnState::Nread);
            }
            Action::Swallow(n) => {
                self.sbytes = n;
                self.set_state(ConnState::Swallow);
            }
            Action::Close => {
                // Replies queued since the last flush die with the
                // connection, as in memcached.
                self.wbuf.truncate(self.wpos);
                self.set_state(ConnState::Closing);
            }
            Action::Quit => {
                self.close_after_write = true;
                self.set_state(ConnState::Mwrite);
            }
            Action::Shutdown(why) => {
                // memcached closes the asking connection at once.
                server.request_stop(why);
                self.set_state(ConnState::Closing);
            }
        }
    }

    /// The UDP side of the machine: `conn_read` takes one datagram, runs
    /// every command in it, and `conn_mwrite` sends the framed reply.
    fn drive_udp(&mut self, server: &Server) -> Outcome {
        let mut nreqs = server.settings.reqs_per_event;
        // A batch shorter than asked for emptied the socket's queue: any
        // later datagram raises a new edge, so no read to see EAGAIN.
        let mut drained = false;
        // Receive errors in a row.
        let mut failures = 0;
        loop {
            match self.state {
                ConnState::Mwrite => match self.flush_udp(server) {
                    Ok(()) => {
                        self.set_state(ConnState::Read);
                        if drained && !self.draining {
                            return Outcome::Idle;
                        }
                    }
                    Err(e) if would_block(&e) => return Outcome::Idle,
                    Err(e) => {
                        // Lose this datagram, not the connection.
                        log::warn!("UDP send failed: {e}");
                        if let Some(o) = self.udp_out.front_mut() {
                            o.next += 1;
                        }
                    }
                },
                _ => {
                    if self.draining {
                        // Stopping: send what is queued, take nothing new.
                        if self.udp_out.is_empty() {
                            return Outcome::Close;
                        }
                        self.set_state(ConnState::Mwrite);
                        continue;
                    }
                    if nreqs == 0 {
                        server.stats.conn_yields.fetch_add(1, Ordering::Relaxed);
                        return Outcome::Yield;
                    }
                    match self.read_batch(server) {
                        Ok((n, empty)) => {
                            failures = 0;
                            nreqs = nreqs.saturating_sub(n.max(1));
                            drained = empty;
                            if !self.udp_out.is_empty() {
                                self.set_state(ConnState::Mwrite);
                            } else if drained {
                                return Outcome::Idle;
                            }
                        }
                        Err(e) if would_block(&e) => return Outcome::Idle,
                        Err(e) if interrupted(&e) => {}
                        Err(e) => {
                            // Try once more (a queued ICMP error is
                            // reported once); an error that repeats ends
                            // the event instead of spinning on it. The
                            // next datagram raises a new edge.
                            log::warn!("UDP receive failed: {e}");
                            failures += 1;
                            if failures > 1 {
                                return Outcome::Idle;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Handle the datagrams of the current batch not handled yet, or
    /// receive a new batch, queueing framed replies until the queue holds
    /// a datagram's reply budget. Returns how many datagrams were handled and
    /// whether the socket's queue is known to be empty.
    fn read_batch(&mut self, server: &Server) -> io::Result<(usize, bool)> {
        let mut batch = std::mem::take(&mut self.udp_batch);
        let mut received = None;
        if !batch.has_pending() {
            let res = match &self.transport {
                Transport::Udp(sock) => batch.recv(sock),
                _ => unreachable!("UDP only"),
            };
            match res {
                Ok(n) => received = Some(n),
                Err(e) => {
                    self.udp_batch = batch;
                    return Err(e);
                }
            }
        }
        let mut handled = 0;
        while let Some(i) = batch.take_next() {
            let (data, peer) = batch.datagram(i);
            self.handle_datagram(server, data, peer);
            handled += 1;
            let queued: usize = self.udp_out.iter().map(|o| o.reply.capacity()).sum();
            if queued >= server.udp_reply_budget {
                break;
            }
        }
        let drained = received.is_some_and(|n| n < crate::udp_batch::BATCH) && !batch.has_pending();
        self.udp_batch = batch;
        self.sync_udp_buf(&server.gauges);
        Ok((handled, drained))
    }

    /// Count the batch buffers in the `read_buf_*` stats.
    fn sync_udp_buf(&mut self, g: &crate::stats::Gauges) {
        let now = self.udp_batch.capacity();
        let old = std::mem::replace(&mut self.rbuf_charged, now);
        if now != old {
            g.read_buf_bytes.fetch_add(now as u64, Ordering::Relaxed);
            g.read_buf_bytes.fetch_sub(old as u64, Ordering::Relaxed);
            if old == 0 {
                g.read_buf_count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Run the commands of one datagram and queue the framed reply.
    fn handle_datagram(&mut self, server: &Server, data: &[u8], peer: std::net::SocketAddr) {
        let s = &server.stats;
        s.bytes_read.fetch_add(data.len() as u64, Ordering::Relaxed);
        // The amplification guard: a source outside the allow-list is
        // neither answered nor served.
        if !server.settings.udp_allow.allows(peer.ip()) {
            s.udp_dropped_disallowed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut reply = self.udp_spare.pop().unwrap_or_default();
        reply.clear();
        let id = match udp::parse_request(data) {
            udp::Request::Drop => {
                s.udp_short_dropped.fetch_add(1, Ordering::Relaxed);
                self.udp_spare.push(reply);
                return;
            }
            udp::Request::MultiPacket(h) => {
                s.udp_multipacket_rejected.fetch_add(1, Ordering::Relaxed);
                reply.extend_from_slice(udp::MULTI_PACKET_ERROR);
                h.request_id
            }
            udp::Request::Single(h, payload) => {
                s.udp_requests.fetch_add(1, Ordering::Relaxed);
                self.sess.restart(server.udp_reply_budget);
                if let Some(why) =
                    udp::process_datagram(server, &mut self.sess, payload, &mut reply)
                {
                    server.request_stop(why);
                }
                h.request_id
            }
        };
        if reply.is_empty() {
            self.udp_spare.push(reply);
            return;
        }
        // A reply cut back to an error keeps the memory it had grown to.
        if reply.capacity() > 2 * reply.len() + 64 * 1024 {
            reply.shrink_to_fit();
        }
        let out = udp::Outgoing::new(peer, id, reply);
        let wire = out.reply.len() + udp::UDP_HEADER_SIZE * usize::from(out.total());
        if !server.udp_budget.take(peer.ip(), wire) {
            s.udp_dropped_rate.fetch_add(1, Ordering::Relaxed);
            self.udp_spare.push(out.reply);
            return;
        }
        s.udp_replies.fetch_add(1, Ordering::Relaxed);
        self.udp_out.push_back(out);
    }

    /// Send queued datagrams until done or `EAGAIN`.
    fn flush_udp(&mut self, server: &Server) -> io::Result<()> {
        let Transport::Udp(sock) = &self.transport else {
            unreachable!("UDP only")
        };
        let res = crate::udp_batch::send(sock, &mut self.udp_send, &mut self.udp_out);
        if let Ok(n) = res {
            server
                .stats
                .bytes_written
                .fetch_add(n as u64, Ordering::Relaxed);
        }
        while let Some(o) = self.udp_out.front() {
            if o.next < o.total() {
                break;
            }
            let o = self.udp_out.pop_front().expect("front exists");
            // Keep modest buffers for the next replies.
            if o.reply.capacity() <= SPARE_CAPACITY && self.udp_spare.len() < SPARE_BUFFERS {
                self.udp_spare.push(o.reply);
            }
        }
        res.map(|_| ())
    }
}
