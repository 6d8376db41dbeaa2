//! Requests in flight on one socket: what each transport keeps to match a
//! reply to its request, count it, and declare it lost at its deadline.
//! Over UDP ([`UdpFlight`]) replies are matched by request id and may come
//! in any order; over TCP ([`TcpFlight`]) they come in request order.

mod tcp;
mod udp;

use std::time::{Duration, Instant};

use crate::args::Config;
use crate::outcome::{nanos, Outcome};
use crate::reply::{Expect, Reply};
use crate::workload::{Op, Workload};

pub use tcp::TcpFlight;
pub use udp::UdpFlight;

/// A request in flight.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    /// When it was due to be sent (latency runs from here).
    pub scheduled: Instant,
    /// When it is lost without a whole reply.
    pub deadline: Instant,
    /// What it asks.
    pub op: Op,
    /// Its number on its socket, from 1.
    pub serial: u64,
}

/// What every transport shares: making requests and counting replies.
pub struct Core {
    /// The requests to send.
    work: Workload,
    /// What was measured.
    pub out: Outcome,
    /// `--timeout`.
    timeout: Duration,
    /// Requests made so far.
    serial: u64,
}

impl Core {
    /// The core of socket number `stream`.
    pub fn new(cfg: &Config, stream: u64) -> Core {
        Core {
            work: Workload::new(cfg, stream),
            out: Outcome::new(),
            timeout: cfg.timeout,
            serial: 0,
        }
    }

    /// Write the next request into `buf` and describe it.
    fn make(&mut self, scheduled: Instant, now: Instant, buf: &mut Vec<u8>) -> Meta {
        let op = self.work.next(buf);
        self.serial += 1;
        self.out.n.sent += 1;
        Meta {
            scheduled,
            deadline: now + self.timeout,
            op,
            serial: self.serial,
        }
    }

    /// Count a request's whole reply.
    fn finish(&mut self, m: &Meta, reply: Reply, now: Instant) {
        let n = &mut self.out.n;
        n.completed += 1;
        match reply {
            Reply::Done { values, .. } => {
                if m.op.expect == Expect::Retrieval {
                    n.hits += values as u64;
                    n.misses += m.op.keys.saturating_sub(values) as u64;
                }
            }
            Reply::Error { .. } => n.errors += 1,
            Reply::Malformed => {
                n.errors += 1;
                n.malformed += 1;
            }
            Reply::Incomplete => unreachable!("finish needs a whole reply"),
        }
        self.out
            .latency
            .saturating_record(nanos(now.saturating_duration_since(m.scheduled)).max(1));
    }
}

/// The requests in flight on one socket, for one transport.
pub trait Flight: Send {
    /// Register the next request, scheduled at `scheduled`, and write its
    /// bytes (frame included) into `buf`; `false` if it cannot be sent now.
    fn begin(&mut self, scheduled: Instant, now: Instant, buf: &mut Vec<u8>) -> bool;
    /// Take bytes received: one datagram (UDP) or a piece of the stream
    /// (TCP). An error means the socket cannot go on.
    fn received(&mut self, bytes: &[u8], now: Instant) -> Result<(), String>;
    /// Count requests past their deadline as lost.
    fn expire(&mut self, now: Instant);
    /// Requests sent and neither answered nor lost.
    fn in_flight(&self) -> usize;
    /// What every transport shares.
    fn core(&mut self) -> &mut Core;
    /// The measurements, once the socket is done.
    fn into_outcome(self) -> Outcome;
}
