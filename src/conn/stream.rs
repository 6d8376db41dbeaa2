//! The state machine of a stream connection (TCP, unix socket): memcached's
//! `drive_machine` with `try_read_network`, `try_read_command_ascii`,
//! `try_read_command_binary`, `complete_nread` and `transmit`.
//!
//! The machine is generic over the byte stream (`Read + Write`), so that
//! it runs the same over a socket, over a TLS session, and over the
//! in-memory streams of its unit tests.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::common::ByteStream;
use super::common::{interrupted, would_block, Common, Outcome};
use super::mem::StreamMemory;
use super::read_buf::{ReadBuf, READ_SIZE};
use crate::cache::metadump::DumpCursor;
use crate::conn_mem::ThreadMem;
use crate::conn_state::ConnState;
use crate::logger::{CloseReason, WatchHandle};
use crate::mem_budget::{INFLIGHT_FREE, STREAM_FREE};
use crate::proto::action::GetCmd;
use crate::proto::action::{Action, Parsed, PendingStore};
use crate::proto::complete::{complete_nread, refuse_store};
use crate::proto::crawler::{metadump_batch, METADUMP_LINE_MAX};
use crate::proto::ctx::Ctx;
use crate::proto::get::{self, Progress};
use crate::proto::session::Session;
use crate::proto::text::{self, MAX_LINE, MAX_LINE_NO_GET};
use crate::proto::{auth, binary};
use crate::server::Server;

mod watch;

/// Buffer space a connection keeps when it falls idle.
const KEEP: usize = 16 * 1024;

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

/// A stream connection's buffers and protocol state.
#[derive(Debug, Default)]
pub struct StreamConn {
    /// Bytes read and not yet consumed.
    rbuf: ReadBuf,
    /// The connection's protocol once known: `Some(true)` for binary
    /// (memcached's `c->protocol`, chosen by `-B` or by the first byte).
    binary: Option<bool>,
    /// Passed `-Y` authentication (memcached's `c->authenticated`).
    authenticated: bool,
    /// The last read was short: the socket held no more at that moment.
    drained: bool,
    /// The peer has shut down its side: a FIN may sit behind the bytes
    /// read, with no edge left to report it, so reads go on until one
    /// returns 0 (the short-read rule no longer applies).
    read_closed: bool,
    /// Replies queued: `wbuf[wpos..]` is unsent.
    wbuf: Vec<u8>,
    /// How much of `wbuf` is already sent.
    wpos: usize,
    /// Protocol state that outlives a command (`noreply`, reply budget).
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
    /// An `lru_crawler metadump` in progress: the next batch of lines is
    /// taken once the client has read the last.
    dump: Option<DumpCursor>,
    /// The worker's `-o read_buf_mem_limit` pool, when it counts.
    thread_mem: Option<Arc<ThreadMem>>,
    /// Holds a read-buffer chunk of `thread_mem` (see `conn_mem`).
    holds_rbuf: bool,
    /// Bytes of the value being read charged to the server's in-flight
    /// pool (`mem_budget`).
    inflight: usize,
    /// Bytes of `rbuf` past two reads' worth charged to the in-flight
    /// pool: a long multi-get line (up to `MAX_LINE`), kept until the
    /// buffer is shrunk.
    line_charge: usize,
    /// How the worker is woken, and this connection's token there: what a
    /// watcher needs to be found when lines arrive.
    wake: Option<(Arc<mio::Waker>, usize)>,
    /// The registration of a `watch` connection (state `Watch`); dropped,
    /// it removes the watcher.
    watch: Option<WatchHandle>,
}

impl StreamConn {
    /// Count the buffers in the worker's `-o read_buf_mem_limit` pool.
    pub fn set_mem(&mut self, mem: &Arc<ThreadMem>) {
        if mem.limited() {
            self.thread_mem = Some(mem.clone());
        }
    }

    /// How the worker is woken, and the connection's token there.
    pub fn set_wake(&mut self, token: usize, waker: &Arc<mio::Waker>) {
        self.wake = Some((waker.clone(), token));
    }

    /// Give back what the connection holds of its worker's pool, and of
    /// the server's reply and in-flight pools.
    pub fn release_mem(&mut self, server: &Server) {
        self.sess.release_resps();
        self.release_rbuf();
        self.sess.settle(0);
        server.inflight.give(std::mem::take(&mut self.inflight));
        server.inflight.give(std::mem::take(&mut self.line_charge));
    }

    /// Whether every byte read has been consumed.
    pub fn nothing_unread(&self) -> bool {
        self.rbuf.is_empty()
    }

    /// The memory the read buffer holds.
    pub fn read_buf_capacity(&self) -> usize {
        self.rbuf.capacity()
    }

    /// Bytes in the output buffer, sent part included (for tests).
    #[cfg(test)]
    pub fn write_buf_len(&self) -> usize {
        self.wbuf.len()
    }

    /// The socket reported readiness: there may be more to read now.
    pub fn readiness_event(&mut self) {
        self.drained = false;
    }

    /// The peer shut down its side (`EPOLLRDHUP`).
    pub fn read_closed_event(&mut self) {
        self.read_closed = true;
    }

    fn release_rbuf(&mut self) {
        if std::mem::take(&mut self.holds_rbuf) {
            if let Some(m) = &self.thread_mem {
                m.put_rbuf();
            }
        }
    }

    /// `conn_read`: take a read-buffer chunk from the worker's pool if
    /// counted and not held (memcached closes when there is none; an error
    /// other than `WouldBlock` does that here), then read.
    #[inline]
    fn take_rbuf_then_read<S: ByteStream>(
        &mut self,
        c: &mut Common,
        sock: &mut S,
        server: &Server,
    ) -> io::Result<usize> {
        if let Some(m) = &self.thread_mem {
            if !self.holds_rbuf {
                if !m.take_rbuf() {
                    return Err(io::Error::other("read_buf_mem_limit: no read buffer"));
                }
                self.holds_rbuf = true;
            }
        }
        self.read(c, sock, server)
    }

    /// One read into the buffer (memcached's `try_read_network`).
    #[inline]
    fn read<S: ByteStream>(
        &mut self,
        c: &mut Common,
        sock: &mut S,
        server: &Server,
    ) -> io::Result<usize> {
        self.rbuf.compact();
        let grow = self.rbuf.growth_for_read();
        if grow > 0 {
            if self.rbuf.size() > 0 {
                // A buffer that grows past two reads for anything but a
                // value (whose charge covers it) holds a long line: charge
                // it first.
                let want = (self.rbuf.size() + grow).saturating_sub(2 * READ_SIZE);
                if self.inflight == 0 && want > self.line_charge {
                    if !server.inflight.take(want - self.line_charge) {
                        return Err(io::Error::other("no memory for a long line"));
                    }
                    self.line_charge = want;
                }
            }
            self.rbuf.make_room();
            c.sync_read_buf(&server.gauges, self.rbuf.capacity());
        }
        let (res, short) = self.rbuf.read_from(sock);
        self.drained = short && sock.short_read_drains();
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
    /// read buffers to a pool for the same reason). A buffer still filling
    /// with a value is left alone.
    #[inline(always)]
    fn shrink_buffers(&mut self, c: &mut Common, server: &Server) {
        if self.inflight == 0 && self.rbuf.shrink(KEEP) {
            server.inflight.give(std::mem::take(&mut self.line_charge));
            c.sync_read_buf(&server.gauges, self.rbuf.capacity());
        }
        if self.wbuf.is_empty() && self.wbuf.capacity() > 4 * KEEP {
            self.wbuf = Vec::new();
        }
    }

    /// Run the machine until the connection must wait, has used its `-R`
    /// budget, or is done.
    #[inline]
    pub fn drive<S: ByteStream>(
        &mut self,
        c: &mut Common,
        sock: &mut S,
        server: &Server,
    ) -> Outcome {
        let ctx = server.ctx();
        let mut nreqs = server.settings.reqs_per_event as isize;
        loop {
            match c.state() {
                ConnState::NewCmd => {
                    // One command per pass; once the budget is spent, flush
                    // what is queued, then yield.
                    nreqs -= 1;
                    if nreqs >= 0 {
                        if self.wbuf.len() - self.wpos > STREAM_FREE {
                            // Replies wait for the socket: parse nothing
                            // more until they are written, so that what a
                            // client that does not read can make the
                            // server hold is bounded, whatever it sends.
                            c.set_state(ConnState::Mwrite);
                        } else if let Some(g) = self.paused_get.take() {
                            self.resume_get(c, &ctx, g);
                        } else if let Some(d) = self.dump.take() {
                            self.dump_more(c, &ctx, d);
                        } else if !self.rbuf.is_empty() {
                            c.set_state(ConnState::ParseCmd);
                        } else if self.wpos < self.wbuf.len() {
                            c.set_state(ConnState::Mwrite);
                        } else {
                            self.shrink_buffers(c, server);
                            c.sync_read_buf(&server.gauges, self.rbuf.capacity());
                            self.release_rbuf();
                            c.set_state(ConnState::Waiting);
                        }
                    } else if self.wpos < self.wbuf.len() {
                        c.set_state(ConnState::Mwrite);
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
                    if std::mem::take(&mut self.drained) && !c.draining() && !self.read_closed {
                        return Outcome::Idle;
                    }
                    c.set_state(ConnState::Read);
                }
                ConnState::Read => match self.take_rbuf_then_read(c, sock, server) {
                    Ok(0) => c.close_for(CloseReason::Normal),
                    Ok(_) => c.set_state(ConnState::ParseCmd),
                    Err(e) if would_block(&e) => {
                        if c.draining() && self.rbuf.is_empty() {
                            // Nothing was asked that is not answered.
                            c.set_state(ConnState::Closing);
                            continue;
                        }
                        if self.rbuf.is_empty() {
                            self.release_rbuf();
                        }
                        c.set_state(ConnState::Waiting);
                        return Outcome::Idle;
                    }
                    Err(e) if interrupted(&e) => {}
                    Err(e) => {
                        log::debug!("read error: {e}");
                        c.set_state(ConnState::Closing);
                    }
                },
                ConnState::ParseCmd => self.parse_cmd(c, &ctx, server),
                ConnState::Nread => {
                    let vlen = self.pending.as_ref().map_or(0, |p| p.vlen);
                    if self.rbuf.unread().len() >= vlen {
                        let p = self.pending.take().expect("conn_nread has a pending store");
                        let data = &self.rbuf.unread()[..vlen];
                        complete_nread(&ctx, &mut self.sess, p, data, &mut self.wbuf);
                        self.rbuf.consume(vlen);
                        if self.inflight > 0 {
                            // The buffer sized for the value goes with its
                            // charge: what follows the value is at most
                            // one read.
                            server.inflight.give(std::mem::take(&mut self.inflight));
                            self.shrink_buffers(c, server);
                        }
                        c.set_state(ConnState::NewCmd);
                    } else if let Some(o) = self.read_more(c, sock, server) {
                        return o;
                    }
                }
                ConnState::Swallow => {
                    let take = self.sbytes.min(self.rbuf.unread().len());
                    self.rbuf.consume(take);
                    self.sbytes -= take;
                    if self.sbytes == 0 {
                        c.set_state(ConnState::NewCmd);
                    } else if let Some(o) = self.read_more(c, sock, server) {
                        return o;
                    }
                }
                ConnState::Write | ConnState::Mwrite => {
                    if self.wpos >= self.wbuf.len() {
                        // A TLS stream may still hold encrypted bytes.
                        match sock.flush() {
                            Ok(()) => self.written(c),
                            Err(e) if would_block(&e) => return Outcome::Idle,
                            Err(e) if interrupted(&e) => {}
                            Err(e) => {
                                log::debug!("write error: {e}");
                                c.set_state(ConnState::Closing);
                            }
                        }
                        continue;
                    }
                    match sock.write(&self.wbuf[self.wpos..]) {
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
                            c.set_state(ConnState::Closing);
                        }
                    }
                }
                ConnState::Watch => return self.watch(c, sock, server),
                // A stream connection is never a listener: those stay on
                // the main thread.
                ConnState::Closing | ConnState::Listening => return Outcome::Close,
            }
        }
    }

    /// Every queued reply is written: free what the replies held.
    fn written(&mut self, c: &mut Common) {
        self.wbuf.clear();
        self.wpos = 0;
        self.sess.settle(0);
        // The pool covered the reply while it waited; the buffer it grew
        // would outlive the charge, so a large one goes back now, not when
        // the client next falls silent.
        if self.wbuf.capacity() > 4 * STREAM_FREE {
            self.wbuf = Vec::new();
        }
        self.sess.held.clear();
        self.sess.release_resps();
        if self.close_after_write {
            c.close_for(CloseReason::Normal);
        } else {
            c.set_state(ConnState::NewCmd);
        }
    }

    /// Read more bytes while in `Nread` or `Swallow`; `Some` when the
    /// machine must stop.
    fn read_more<S: ByteStream>(
        &mut self,
        c: &mut Common,
        sock: &mut S,
        server: &Server,
    ) -> Option<Outcome> {
        // A value is consumed as it arrives, so the buffer never holds more
        // than one read beyond the value being assembled.
        if c.state() == ConnState::Swallow {
            self.rbuf.discard();
        }
        match self.read(c, sock, server) {
            Ok(0) => {
                c.close_for(CloseReason::Normal);
                None
            }
            Ok(_) => {
                c.touch_quietly(server.cache.clock().now());
                None
            }
            Err(e) if would_block(&e) => Some(Outcome::Idle),
            Err(e) if interrupted(&e) => None,
            Err(e) => {
                log::debug!("read error: {e}");
                c.set_state(ConnState::Closing);
                None
            }
        }
    }

    /// memcached's `try_read_command_*` plus `process_command_*`.
    #[inline]
    fn parse_cmd(&mut self, c: &mut Common, ctx: &Ctx<'_>, server: &Server) {
        use crate::settings::Protocol;
        if !self.sess.has_memory() {
            let memory = StreamMemory::new(server.reply_pool.clone(), self.thread_mem.clone());
            let counts_resps = self.thread_mem.is_some();
            self.sess.lend(Box::new(memory), STREAM_FREE, counts_resps);
        }
        if let (Some(auth_file), false) = (&server.auth, self.authenticated) {
            self.sess.unsent = self.wpos;
            let parsed = auth::process(
                ctx,
                auth_file,
                &mut self.sess,
                self.rbuf.unread(),
                &mut self.wbuf,
            );
            if matches!(&parsed, Parsed::Done(_, a) if *a != Action::Close) {
                c.touch(ctx.cache.clock().now());
            }
            return self.parsed(c, ctx, server, parsed);
        }
        let first = self.rbuf.unread().first().copied();
        let binary = *self
            .binary
            .get_or_insert(match server.settings.binding_protocol {
                Protocol::Ascii => false,
                Protocol::Binary => true,
                Protocol::Auto => first == Some(binary::REQ_MAGIC),
            });
        if binary {
            // memcached's `try_read_command_binary`.
            c.touch(ctx.cache.clock().now());
            if !self.sess.resp_start() {
                c.set_state(ConnState::Closing);
                return;
            }
            let parsed = binary::process(ctx, &mut self.sess, self.rbuf.unread(), &mut self.wbuf);
            if parsed == Parsed::NeedMore {
                // Not a request yet: give the response object back.
                self.sess.resp_undo();
            }
            return self.parsed(c, ctx, server, parsed);
        }
        let buf = self.rbuf.unread();
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
                    c.set_state(ConnState::Closing);
                    return;
                }
            }
            self.await_input(c, server);
            return;
        };
        let mut end = nl;
        if end > 1 && buf[end - 1] == b'\r' {
            end -= 1;
        }
        self.sess.unsent = self.wpos;
        c.touch(ctx.cache.clock().now());
        if !self.sess.resp_start() {
            // No response object for the reply: memcached closes.
            c.set_state(ConnState::Closing);
            return;
        }
        let line = &buf[..end];
        let action = text::process_command(ctx, &mut self.sess, line, &mut self.wbuf);
        if let Action::GetMore(cmd, offset) = action {
            // Keep the keys not served yet; the line itself is consumed.
            // The keys end where the command saw the line end: at a NUL,
            // as memcached's C string does.
            let keys = &line[offset..];
            let keys = keys
                .iter()
                .position(|&b| b == 0)
                .map_or(keys, |n| &keys[..n]);
            let keys = keys.to_vec();
            self.rbuf.consume(nl + 1);
            self.paused_get = Some(PausedGet { cmd, keys, pos: 0 });
            c.set_state(ConnState::Mwrite);
            return;
        }
        self.rbuf.consume(nl + 1);
        self.apply(c, ctx, server, action);
    }

    /// What a protocol found at the front of the buffer.
    fn parsed(&mut self, c: &mut Common, ctx: &Ctx<'_>, server: &Server, parsed: Parsed) {
        match parsed {
            Parsed::NeedMore => self.await_input(c, server),
            Parsed::Done(n, action) => {
                self.rbuf.consume(n);
                self.apply(c, ctx, server, action);
            }
        }
    }

    /// The buffer holds no whole request yet: send what earlier pipelined
    /// requests produced, then wait for more bytes.
    fn await_input(&mut self, c: &mut Common, server: &Server) {
        if self.wpos < self.wbuf.len() {
            c.set_state(ConnState::Mwrite);
        } else {
            // A large value read earlier may have left a large buffer
            // behind a partial line that will never end.
            self.shrink_buffers(c, server);
            c.set_state(ConnState::Waiting);
        }
    }

    /// Serve the next slice of a paused multi-get.
    fn resume_get(&mut self, c: &mut Common, ctx: &Ctx<'_>, mut g: PausedGet) {
        self.sess.unsent = self.wpos;
        let keys = &g.keys[g.pos..];
        match get::serve_keys(ctx, &mut self.sess, g.cmd, keys, &mut self.wbuf) {
            Progress::Paused(n) => {
                g.pos += n;
                self.paused_get = Some(g);
            }
            Progress::Close => {
                self.wbuf.truncate(self.wpos);
                c.set_state(ConnState::Closing);
                return;
            }
            Progress::Done | Progress::Failed => {}
        }
        c.set_state(ConnState::Mwrite);
    }

    /// Write the next batch of a metadump's lines. The output holds at
    /// most `STREAM_FREE` bytes of them, so a dump costs nothing of the
    /// reply pool however large the cache; the next batch comes once the
    /// client has read this one (the machine goes back to `NewCmd` only
    /// after a write has emptied the buffer).
    fn dump_more(&mut self, c: &mut Common, ctx: &Ctx<'_>, mut d: DumpCursor) {
        let room = STREAM_FREE.saturating_sub(self.wbuf.len() - self.wpos);
        let done = room >= METADUMP_LINE_MAX
            && metadump_batch(ctx, &mut d, self.wbuf.len() + room, &mut self.wbuf);
        if !done {
            self.dump = Some(d);
        }
        c.set_state(ConnState::Mwrite);
    }

    /// Carry out what a command asked for.
    #[inline(never)]
    fn apply(&mut self, c: &mut Common, ctx: &Ctx<'_>, server: &Server, action: Action) {
        match action {
            Action::Continue | Action::GetMore(..) => c.set_state(ConnState::NewCmd),
            Action::MetaDump(d) => {
                self.dump = Some(d);
                c.set_state(ConnState::NewCmd);
            }
            Action::Authenticated => {
                self.authenticated = true;
                c.set_state(ConnState::NewCmd);
            }
            Action::Flush => c.set_state(ConnState::Mwrite),
            Action::Nread(p) => {
                if p.vlen > INFLIGHT_FREE {
                    // Charged before the first byte is read: a value that
                    // finds the pool spent is refused and swallowed.
                    if !server.inflight.take(p.vlen) {
                        let n = p.vlen;
                        refuse_store(ctx, &mut self.sess, p, &mut self.wbuf);
                        self.sbytes = n;
                        c.set_state(ConnState::Swallow);
                        return;
                    }
                    self.inflight = p.vlen;
                    self.rbuf.reserve_exact(p.vlen + READ_SIZE);
                }
                self.pending = Some(p);
                c.set_state(ConnState::Nread);
            }
            Action::Swallow(n) => {
                self.sbytes = n;
                c.set_state(ConnState::Swallow);
            }
            Action::Close => {
                // Replies queued since the last flush die with the
                // connection, as in memcached.
                self.wbuf.truncate(self.wpos);
                c.set_state(ConnState::Closing);
            }
            Action::Quit => {
                self.close_after_write = true;
                c.set_state(ConnState::Mwrite);
            }
            Action::Shutdown(why) => {
                // memcached closes the asking connection at once.
                server.request_stop(why);
                c.close_for(CloseReason::Shutdown);
            }
            Action::Watch(kinds) => self.start_watch(c, server, kinds),
        }
    }
}
