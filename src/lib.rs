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
//!                   |  (the Waker also brings a watcher's log lines, from any worker)
//!                   |  (every worker also owns a clone of each UDP socket)
//!                   v
//! shared:       Server { Cache (16 shards: table, slab pages, LRUs), Stats, Settings }
//!                   ^
//! crawler:      Cache::run_crawler: `lru_crawler crawl` passes, and a
//!               background pass over one shard a second
//! maintainer:   Cache::run_lru_maintainer: moves items HOT -> WARM/COLD,
//!               WARM -> COLD, one shard lock at a time, with backoff
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
//! [`conn_state::ConnState`]. A connection serves at most `-R` requests per
//! event and is then parked on its worker's pending list.
//!
//! # Layers
//!
//! A module imports only modules of its own layer or of the layers above
//! it in this table, never of one below, and the imports have no cycle;
//! `scripts/check-layers.py` checks both (CI runs it).
//!
//! | layer | module | holds | memcached |
//! | --- | --- | --- | --- |
//! | leaves | [`clock`] | relative time, exptime rules | `current_time`, `realtime` |
//! | | [`settings`] | the command line | `settings_init`, getopt in `main()` |
//! | | [`cnum`] | C number parsing | `safe_strto*` (`util.c`), `atoi`, `strtol` |
//! | | [`conn_state`] | connection state names | `enum conn_states` |
//! | | [`udp`] | the 8-byte UDP frame | `try_read_udp`, `build_udp_header` |
//! | | [`udp_guard`] | UDP allow-list and reply budget | (none) |
//! | | [`mem_budget`] | what one client can make the server hold | (item references) |
//! | | [`conn_mem`] | `-o read_buf_mem_limit` pools | `thread.c`'s `rbuf` cache, `resp_start` |
//! | | [`sync`], [`auth`] | locks; the `-Y` file | `pthread_mutex_lock`; `authfile.c` |
//! | | [`tls`] | the TLS configuration, `refresh_certs` | `tls.c` |
//! | | [`sasl`] | `-S`: Cyrus SASL loaded at run time, a connection's exchange | `sasl_defs.c` |
//! | | [`logger`] | `watch`: the watchers, their bounded buffers, the log lines | `logger.c` |
//! | storage | [`cache`] | hash tables, slab pages, items, segmented LRUs and their maintainer, crawler | `assoc.c`, `items.c`, `slabs.c`, `crawler.c` |
//! | shared state | [`server`] | what every thread shares | globals `settings`, `stats_state` |
//! | | [`counters`] | counters and gauges | `struct stats`, `thread_stats` |
//! | | [`stats_prefix`] | `stats detail` | `stats_prefix.c` |
//! | | [`conn_list`] | `stats conns` | `conns[]` |
//! | protocols | [`proto`] | text, meta, binary, `-Y` auth, datagram commands, over a narrow [`proto::ctx::Ctx`] | `proto_text.c`, `proto_bin.c` |
//! | | [`stats`] | the `stats` reports, [`proto::ctx::Admin`] for the server | `server_stats`, `process_stat_settings` |
//! | connections | [`conn`] | `Conn`: a stream part or a UDP part, the read buffer, reply memory | `conn_new`, `drive_machine`, `transmit` |
//! | | [`udp_batch`] | `recvmmsg` / `sendmmsg` batches | (one call per datagram) |
//! | threads | [`thread`] | workers, their queue, round robin | `thread.c` |
//! | | [`accept`] | the main thread's loop: accept, clock, signals | `main()`'s event loop, `conn_listening` |
//! | | [`listen`], [`daemon`] | sockets; `-d`, `-u`, `-P`, limits | `server_socket`, `daemonize` |
//! | | `main.rs` | start-up | `main()` |
//!
//! Where each memcached file's logic lives:
//!
//! | memcached | here |
//! | --- | --- |
//! | `memcached.c` `main()` | `main.rs`, [`accept`], [`listen`], [`daemon`] |
//! | `memcached.c` `drive_machine`, `conn_*` | [`conn`] ([`conn::stream`], [`conn::udp`]) |
//! | `memcached.c` `try_read_udp`, `transmit_udp` | [`udp`], [`udp_batch`], [`conn::udp`] |
//! | `memcached.c` `server_stats`, `process_stat_settings` | [`stats`] |
//! | `proto_text.c` | [`proto::text`], [`proto::get`], [`proto::meta`], [`proto::admin`], [`proto::crawler`], [`proto::lru`], [`proto::auth`], [`proto::tokens`] |
//! | `proto_bin.c` | [`proto::binary`] |
//! | `memcached.c` `complete_nread*`, `process_update_command` checks | [`proto::complete`], [`proto::store`] |
//! | `thread.c` | [`thread`], [`counters`], [`conn_mem`] |
//! | `assoc.c`, `items.c`, `slabs.c` | [`cache`] ([`cache::lru`] and `cache/maintain.rs`: the segmented LRU and `lru_maintainer_thread`) |
//! | `crawler.c` | [`cache::crawler`] (the crawler thread's work), [`cache::metadump`] (the dump's cursor), [`proto::crawler`] (its lines) |
//! | `stats_prefix.c` | [`stats_prefix`] |
//! | `authfile.c` | [`auth`], [`proto::auth`] |
//! | `tls.c` | [`tls`], [`conn::tls`] |
//! | `sasl_defs.c`; `proto_bin.c`'s SASL commands | [`sasl`]; `proto/binary/sasl.rs` |
//! | `util.c` | [`cnum`] |
//! | `logger.c`, `process_watch_command` | [`logger`], [`proto::text`] |
//!
//! Two "slabs" meet in this code: the `slab` crate stores connections in
//! the workers (and large items in the cache's shards), while memcached's
//! slab classes, mirrored in [`cache::slabs`], are a memory allocator.
#![deny(missing_docs, rust_2018_idioms)]

pub mod accept;
pub mod auth;
pub mod cache;
pub mod clock;
pub mod cnum;
pub mod conn;
pub mod conn_list;
pub mod conn_mem;
pub mod conn_state;
pub mod counters;
pub mod daemon;
pub mod listen;
pub mod logger;
pub mod mem_budget;
pub mod proto;
pub mod sasl;
pub mod server;
pub mod settings;
pub mod stats;
pub mod stats_prefix;
pub mod sync;
pub mod thread;
pub mod tls;
pub mod udp;
pub mod udp_batch;
pub mod udp_guard;

pub use server::Server;
pub use settings::VERSION;
