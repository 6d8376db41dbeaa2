//! The state machine of a UDP connection: memcached's `conn_read` with
//! `try_read_udp`, and `conn_mwrite` with `transmit_udp`. Every worker runs
//! one over its handle on the UDP socket. `conn_read` takes a batch of
//! datagrams and runs every command of each (`proto::datagram`);
//! `conn_mwrite` sends the framed reply messages.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;

use mio::net::UdpSocket;

use super::common::{interrupted, would_block, Common, Outcome};
use crate::conn_state::ConnState;
use crate::proto::datagram;
use crate::proto::session::Session;
use crate::server::Server;
use crate::udp;
use crate::udp_batch::{RecvBatch, SendBatch};

/// Reply buffers a UDP connection keeps for reuse: two receive batches'
/// worth, each of at most `SPARE_CAPACITY` bytes.
const SPARE_BUFFERS: usize = 2 * crate::udp_batch::BATCH;
const SPARE_CAPACITY: usize = 16 * 1024;

/// A UDP connection's buffers and protocol state.
#[derive(Debug, Default)]
pub struct UdpConn {
    /// Protocol state, started over for each datagram.
    sess: Session,
    /// Framed reply messages not yet sent, with their destinations. Filled
    /// when `sendto` hits `EAGAIN`; drained when the socket is writable.
    out: VecDeque<udp::Outgoing>,
    /// Sent messages' reply buffers, kept for the next datagrams' replies
    /// so that a request costs no allocation: a batch of datagrams builds
    /// up to a batch of replies before they are sent.
    spare: Vec<Vec<u8>>,
    /// Receive buffers (see `udp_batch`).
    batch: RecvBatch,
    /// Send state.
    send: SendBatch,
}

impl UdpConn {
    /// The memory the receive buffers hold.
    pub fn read_buf_capacity(&self) -> usize {
        self.batch.capacity()
    }

    /// The UDP side of the machine: `conn_read` takes one datagram, runs
    /// every command in it, and `conn_mwrite` sends the framed reply.
    pub fn drive(&mut self, c: &mut Common, sock: &UdpSocket, server: &Server) -> Outcome {
        let mut nreqs = server.settings.reqs_per_event;
        // A batch shorter than asked for emptied the socket's queue: any
        // later datagram raises a new edge, so no read to see EAGAIN.
        let mut drained = false;
        // Receive errors in a row.
        let mut failures = 0;
        loop {
            match c.state() {
                ConnState::Mwrite => match self.flush(sock, server) {
                    Ok(()) => {
                        c.set_state(ConnState::Read);
                        if drained && !c.draining() {
                            return Outcome::Idle;
                        }
                    }
                    Err(e) if would_block(&e) => return Outcome::Idle,
                    Err(e) => {
                        // Lose this datagram, not the connection.
                        log::warn!("UDP send failed: {e}");
                        if let Some(o) = self.out.front_mut() {
                            o.next += 1;
                        }
                    }
                },
                _ => {
                    if c.draining() {
                        // Stopping: send what is queued, take nothing new.
                        if self.out.is_empty() {
                            return Outcome::Close;
                        }
                        c.set_state(ConnState::Mwrite);
                        continue;
                    }
                    if nreqs == 0 {
                        server.stats.conn_yields.fetch_add(1, Ordering::Relaxed);
                        return Outcome::Yield;
                    }
                    match self.read_batch(c, sock, server) {
                        Ok((n, empty)) => {
                            failures = 0;
                            nreqs = nreqs.saturating_sub(n.max(1));
                            drained = empty;
                            if !self.out.is_empty() {
                                c.set_state(ConnState::Mwrite);
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
    fn read_batch(
        &mut self,
        c: &mut Common,
        sock: &UdpSocket,
        server: &Server,
    ) -> io::Result<(usize, bool)> {
        let mut batch = std::mem::take(&mut self.batch);
        let mut received = None;
        if !batch.has_pending() {
            let res = batch.recv(sock);
            match res {
                Ok(n) => received = Some(n),
                Err(e) => {
                    self.batch = batch;
                    return Err(e);
                }
            }
        }
        let mut handled = 0;
        while let Some(i) = batch.take_next() {
            let (data, peer) = batch.datagram(i);
            self.handle_datagram(server, data, peer);
            handled += 1;
            let queued: usize = self.out.iter().map(|o| o.reply.capacity()).sum();
            if queued >= server.udp_reply_budget {
                break;
            }
        }
        let drained = received.is_some_and(|n| n < crate::udp_batch::BATCH) && !batch.has_pending();
        self.batch = batch;
        c.sync_read_buf(&server.gauges, self.batch.capacity());
        Ok((handled, drained))
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
        let mut reply = self.spare.pop().unwrap_or_default();
        reply.clear();
        let id = match udp::parse_request(data) {
            udp::Request::Drop => {
                s.udp_short_dropped.fetch_add(1, Ordering::Relaxed);
                self.spare.push(reply);
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
                    datagram::process(&server.ctx(), &mut self.sess, payload, &mut reply)
                {
                    server.request_stop(why);
                }
                h.request_id
            }
        };
        if reply.is_empty() {
            self.spare.push(reply);
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
            self.spare.push(out.reply);
            return;
        }
        s.udp_replies.fetch_add(1, Ordering::Relaxed);
        self.out.push_back(out);
    }

    /// Send queued datagrams until done or `EAGAIN`.
    fn flush(&mut self, sock: &UdpSocket, server: &Server) -> io::Result<()> {
        let res = crate::udp_batch::send(sock, &mut self.send, &mut self.out);
        if let Ok(n) = res {
            server
                .stats
                .bytes_written
                .fetch_add(n as u64, Ordering::Relaxed);
        }
        while let Some(o) = self.out.front() {
            if o.next < o.total() {
                break;
            }
            let o = self.out.pop_front().expect("front exists");
            // Keep modest buffers for the next replies.
            if o.reply.capacity() <= SPARE_CAPACITY && self.spare.len() < SPARE_BUFFERS {
                self.spare.push(o.reply);
            }
        }
        res.map(|_| ())
    }
}
