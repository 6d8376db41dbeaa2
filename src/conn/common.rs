//! What both parts of a connection share: the state, with memcached's
//! `conn_set_state`, the line in `stats conns`, and what the machine tells
//! the worker.

use std::io::{self, Read, Write};
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::conn_list::ConnEntry;
use crate::conn_state::ConnState;
use crate::counters::Gauges;
use crate::logger::CloseReason;

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

/// What both parts of a connection keep: its state and its line in
/// `stats conns`.
#[derive(Debug)]
pub struct Common {
    /// Where the state machine is.
    pub(super) state: ConnState,
    /// The socket's descriptor, for log lines (memcached logs by fd).
    pub(super) fd: RawFd,
    /// Relative time of the last command, for `-o idle_timeout`.
    pub(super) last_cmd_time: u32,
    /// The server is stopping: finish the requests already received, then
    /// close instead of waiting for more.
    pub(super) draining: bool,
    /// Bytes of read buffer counted in the `read_buf_*` stats.
    rbuf_charged: usize,
    /// This connection's line in `stats conns`.
    pub(super) entry: Option<Arc<ConnEntry>>,
    /// Why it is closing, for the `conn_close` log line (memcached's
    /// `c->close_reason`; an error unless said otherwise).
    pub(super) close_reason: CloseReason,
}

impl Common {
    /// A connection starting in `state`.
    pub fn new(state: ConnState, fd: RawFd, now: u32) -> Common {
        Common {
            state,
            fd,
            last_cmd_time: now,
            draining: false,
            rbuf_charged: 0,
            entry: None,
            close_reason: CloseReason::Error,
        }
    }

    /// The current state.
    pub fn state(&self) -> ConnState {
        self.state
    }

    /// Whether the server is stopping.
    pub fn draining(&self) -> bool {
        self.draining
    }

    /// memcached's `conn_set_state`: every transition is logged at `-vvv`.
    #[inline(always)]
    pub fn set_state(&mut self, state: ConnState) {
        if state != self.state {
            log::trace!(
                "{}: going from {} to {}",
                self.fd,
                self.state.name(),
                state.name()
            );
            self.state = state;
            if let Some(e) = &self.entry {
                e.set_state(state);
            }
        }
    }

    /// Close, for this reason (as `conn_close` lines give it).
    #[cold]
    #[inline(never)]
    pub fn close_for(&mut self, reason: CloseReason) {
        self.close_reason = reason;
        self.set_state(ConnState::Closing);
    }

    /// A command arrived at relative time `now` (idle timeout, `stats
    /// conns`).
    pub fn touch(&mut self, now: u32) {
        self.last_cmd_time = now;
        if let Some(e) = &self.entry {
            e.set_last_cmd(now);
        }
    }

    /// A byte of a value arrived: the idle timeout of a value in flight
    /// counts from its last byte.
    pub fn touch_quietly(&mut self, now: u32) {
        self.last_cmd_time = now;
    }

    /// Bring the `read_buf_count` / `read_buf_bytes` stats up to date with
    /// a read buffer now holding `now` bytes (0 when closing).
    pub fn sync_read_buf(&mut self, g: &Gauges, now: usize) {
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
}

pub(crate) fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

pub(crate) fn interrupted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}

/// What the stream machine reads requests from and writes replies to: a
/// socket, a TLS session over one, or an in-memory stream in tests.
pub trait ByteStream: Read + Write {
    /// Whether a read that returns fewer bytes than it was offered proves
    /// the source empty at that moment. True of a socket (the machine then
    /// waits for the next edge without a read that would only say
    /// `WouldBlock`); not of TLS, whose reads end at a record's end.
    fn short_read_drains(&self) -> bool {
        true
    }
}
