//! What one client can make the server hold, bounded before it is spent.
//! memcached has no single counterpart: its replies point into items (an
//! item reference costs no memory), and a value in flight is read into
//! item memory, so `-m` bounds it. Here replies are copies and a value is
//! read into the connection's buffer, so both are charged to a [`Pool`]
//! first, and a request that finds its pool spent gets memcached's
//! out-of-memory reply instead of the memory.
//!
//! The bounds, with their defaults, are written out in
//! `docs/ARCHITECTURE.md` ("Memory bounds"):
//! - **A UDP request datagram**: every reply of every command in it shares
//!   one budget, [`udp_reply_budget`], checked before a value is copied.
//! - **A stream connection**: up to [`STREAM_FREE`] bytes of unsent reply
//!   cost nothing; anything beyond is charged to the server's reply pool
//!   ([`reply_pool_limit`]) before it is copied, and parsing stops while
//!   more than [`STREAM_FREE`] bytes wait for the socket.
//! - **A value in flight** larger than one read is charged to the server's
//!   in-flight pool ([`inflight_pool_limit`]) before its first byte is read.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Unsent reply bytes a stream connection holds without charge. Parsing
/// stops while more than this waits for the socket (memcached stops
/// parsing when its `sendmsg` would block, too).
pub const STREAM_FREE: usize = 16 * 1024;

/// Bytes of one value read without a charge: what one read takes anyway.
pub const INFLIGHT_FREE: usize = 16 * 1024;

/// Room kept for the one-line error that ends a reply whose budget is spent.
pub const ERROR_ROOM: usize = 64;

/// The reply budget of one UDP request datagram: one value of the largest
/// size `-I` allows, with room for its `VALUE` line and a few small
/// replies. It never passes what the frame can number (65,535 datagrams).
pub fn udp_reply_budget(item_size_max: usize) -> usize {
    let frame_max = usize::from(u16::MAX) * crate::udp::UDP_DATA_SIZE;
    (item_size_max.max(1024 * 1024) + 4096).min(frame_max) - ERROR_ROOM
}

/// The reply pool shared by every stream connection: 16 MiB, or two of
/// the largest values when `-I` is larger.
pub fn reply_pool_limit(item_size_max: usize) -> usize {
    (16 * 1024 * 1024).max(2 * item_size_max + 4096)
}

/// The pool for values in flight (and long lines): half of `-m`, at
/// least 16 MiB, and always room for two of the largest values. memcached
/// reads values into item memory, so its in-flight values share `-m` with
/// the cache; half of it keeps this one close to that while a cache that
/// is also full stays within 1.5 × `-m`.
pub fn inflight_pool_limit(memory_limit: usize, item_size_max: usize) -> usize {
    (memory_limit / 2)
        .max(16 * 1024 * 1024)
        .max(2 * item_size_max + 4096)
}

/// A shared count of bytes against a limit. Every worker charges it, so
/// it is one atomic; a charge that would pass the limit fails and changes
/// nothing.
#[derive(Debug)]
pub struct Pool {
    /// The most bytes charged at once.
    limit: usize,
    /// Bytes charged now.
    used: AtomicUsize,
    /// Charges refused (for `stats`).
    pub refused: AtomicU64,
}

impl Pool {
    /// An empty pool of `limit` bytes.
    pub fn new(limit: usize) -> Pool {
        Pool {
            limit,
            used: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Charge `n` bytes if they fit.
    pub fn take(&self, n: usize) -> bool {
        if n == 0 {
            return true;
        }
        let ok = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                (u + n <= self.limit).then_some(u + n)
            })
            .is_ok();
        if !ok {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Give `n` charged bytes back.
    pub fn give(&self, n: usize) {
        if n != 0 {
            self.used.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_refuses_what_does_not_fit_and_changes_nothing() {
        let p = Pool::new(100);
        assert!(p.take(60));
        assert!(!p.take(41));
        assert_eq!(p.used(), 60);
        assert_eq!(p.refused.load(Ordering::Relaxed), 1);
        assert!(p.take(40));
        p.give(100);
        assert_eq!(p.used(), 0);
    }

    #[test]
    fn budgets_fit_one_largest_value_and_the_frame() {
        let b = udp_reply_budget(1024 * 1024);
        assert!(b > 1024 * 1024 + 300);
        assert!(b + ERROR_ROOM <= usize::from(u16::MAX) * crate::udp::UDP_DATA_SIZE);
        let huge = udp_reply_budget(1 << 30);
        assert_eq!(
            huge + ERROR_ROOM,
            usize::from(u16::MAX) * crate::udp::UDP_DATA_SIZE
        );
        assert!(reply_pool_limit(64 << 20) > 128 << 20);
        assert_eq!(inflight_pool_limit(64 << 20, 1 << 20), 32 << 20);
        assert_eq!(inflight_pool_limit(16 << 20, 1 << 20), 16 << 20);
    }
}
