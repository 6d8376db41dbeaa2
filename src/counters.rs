//! The server-wide counters: memcached's `struct stats` and the
//! `thread_stats` counters of `thread.c`.
//!
//! memcached keeps per-thread counters under per-thread mutexes and sums
//! them on `stats`; here every counter is one relaxed atomic, which needs
//! no lock at all. The reports that print them are in [`crate::stats`].

use std::sync::atomic::{AtomicU64, Ordering};

/// Declares the counter struct and the names `stats reset` clears.
macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Server-wide counters, bumped by every worker.
        #[derive(Debug, Default)]
        pub struct Stats {
            $($(#[$doc])* pub $name: AtomicU64,)*
        }

        impl Stats {
            /// `stats reset`: zero the resettable counters.
            pub fn reset(&self) {
                $(self.$name.store(0, Ordering::Relaxed);)*
            }
        }
    };
}

counters! {
    /// `-Y` authentication attempts.
    auth_cmds,
    /// `-Y` authentication attempts that failed.
    auth_errors,
    /// Retrieval keys asked for (`get`, `gets`).
    cmd_get,
    /// Storage commands (`set`, `add`, ...).
    cmd_set,
    /// `flush_all` commands.
    cmd_flush,
    /// `touch` and `gat` keys.
    cmd_touch,
    /// Meta commands.
    cmd_meta,
    /// Retrieval hits.
    get_hits,
    /// Retrieval misses.
    get_misses,
    /// `delete` misses.
    delete_misses,
    /// `delete` hits.
    delete_hits,
    /// `incr` misses.
    incr_misses,
    /// `incr` hits.
    incr_hits,
    /// `decr` misses.
    decr_misses,
    /// `decr` hits.
    decr_hits,
    /// `cas` on a missing key.
    cas_misses,
    /// `cas` that stored.
    cas_hits,
    /// `cas` with a stale unique.
    cas_badval,
    /// `touch` / `gat` hits.
    touch_hits,
    /// `touch` / `gat` misses.
    touch_misses,
    /// Stores refused as too large.
    store_too_large,
    /// Stores refused for lack of memory.
    store_no_memory,
    /// Bytes read from clients.
    bytes_read,
    /// Bytes written to clients.
    bytes_written,
    /// Times a connection yielded after `-R` requests.
    conn_yields,
    /// Connections refused at `-c`.
    rejected_connections,
    /// Connections ever accepted.
    total_connections,
    /// Connections closed by `-o idle_timeout`.
    idle_kicks,
    /// UDP request datagrams taken (from allowed sources, whole).
    udp_requests,
    /// UDP reply messages queued.
    udp_replies,
    /// UDP datagrams dropped: source not in `udp_allow`.
    udp_dropped_disallowed,
    /// UDP replies dropped: the source's `udp_reply_rate` budget was spent.
    udp_dropped_rate,
    /// UDP requests spanning several datagrams, refused.
    udp_multipacket_rejected,
    /// UDP datagrams of 8 bytes or fewer, dropped.
    udp_short_dropped,
}

/// Connection gauges: not reset by `stats reset`.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Open connections (UDP sockets included, as memcached counts them).
    pub curr_connections: AtomicU64,
    /// Connection structures allocated.
    pub connection_structures: AtomicU64,
    /// Connections holding a read buffer.
    pub read_buf_count: AtomicU64,
    /// Bytes of those read buffers.
    pub read_buf_bytes: AtomicU64,
}
