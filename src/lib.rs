//! rmemcached: a memcached server on mio, speaking memcached's protocols
//! over TCP, UDP and unix sockets, with memcached's flags and replies.
//!
//! The code follows memcached's own structure, file by file, so that it can
//! be read side by side with memcached's C source.
//!
//! # Threads
//!
//! ```text
//! main thread:  settings -> listen::open_all() -> thread::start() -> accept loop
//!                   |  dispatch_conn_new(conn) = queue push + Waker::wake
//!                   v
//! worker i:     mio Poll { Waker, Slab<Conn> } -> Conn::drive_machine on readiness
//!                   |  (every worker also owns a clone of each UDP socket)
//!                   v
//! shared:       Server { Cache (16 shards: table, slab pages, LRUs), Stats, Settings }
//! ```
//!
//! The main thread accepts TCP and unix-socket connections and deals them
//! round-robin to the workers. UDP needs no accept: every worker reads the
//! same UDP socket, as memcached hands its UDP socket to every thread.
//!
//! # Connection states
//!
//! `NewCmd -> Waiting -> Read -> ParseCmd -> Nread / Swallow -> Write /
//! Mwrite -> NewCmd ... -> Closing`, memcached's `conn_*` states, in
//! [`conn::ConnState`]. A connection serves at most `-R` requests per event
//! and is then parked on its worker's pending list.
//!
//! # Layout
//!
//! | module | holds | memcached |
//! | --- | --- | --- |
//! | `main.rs` | start-up | `main()` |
//! | [`settings`] | the command line | `settings_init`, getopt |
//! | [`daemon`] | file limit, `-u`, `-d`, `-P` | `daemon.c`, `main()` |
//! | [`listen`] | address resolution, socket options, bind | `server_socket`, `maximize_sndbuf` |
//! | [`server`] | shared state, accept loop | `main()`'s event loop, `conn_listening` |
//! | [`thread`] | workers, queue, round robin | `thread.c` |
//! | [`conn`] | `Conn`, states, `drive_machine` | `conn_new`, `drive_machine` |
//! | [`udp`] | the 8-byte frame, reply splitting | `try_read_udp`, `transmit_udp` |
//! | [`udp_batch`] | `recvmmsg` / `sendmmsg` batches | (one call per datagram) |
//! | [`udp_guard`] | allow-list and reply budget for UDP | (none) |
//! | [`mem_budget`] | what one client can make the server hold | (item references) |
//! | [`proto`] | pure protocol parsers and reply writers | `proto_text.c`, `proto_bin.c` |
//! | [`cache`] | hash tables, slab pages, items, LRUs | `assoc.c`, `items.c`, `slabs.c` |
//! | [`stats`] | counters, `stats` replies | `server_stats` |
//! | [`stats_prefix`] | `stats detail` per-prefix counters | `stats_prefix.c` |
//! | [`clock`] | relative time, exptime rules | `current_time`, `realtime` |
//! | [`sync`] | locks, and what a poisoned one means | `pthread_mutex_lock` |
//!
//! Two "slabs" meet in this code: the `slab` crate stores connections in
//! the workers (and large items in the cache's shards), while memcached's
//! slab classes, mirrored in [`cache::slabs`], are a memory allocator.
#![deny(missing_docs, rust_2018_idioms)]

pub mod auth;
pub mod cache;
pub mod clock;
pub mod conn;
pub mod conn_list;
pub mod conn_mem;
pub mod daemon;
pub mod listen;
pub mod mem_budget;
pub mod proto;
pub mod server;
pub mod settings;
pub mod stats;
pub mod stats_prefix;
pub mod sync;
pub mod thread;
pub mod udp;
pub mod udp_batch;
pub mod udp_guard;

pub use server::Server;

/// The memcached version this server answers as (`version`, `stats`).
pub const VERSION: &str = "1.6.18";
