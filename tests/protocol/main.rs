//! What clients see: the commands, the protocols and transports, the
//! statistics, and real client libraries, most of it compared with the
//! real memcached 1.6.18. One test binary; each module was a test file of
//! its own (`cargo test --test protocol udp::` runs one).
//!
//! The line-by-line differential tests have binaries of their own
//! (`tests/differential`, `tests/binary`).

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod cachedump;
mod clients;
mod clients_binary;
mod concurrency;
mod getset;
mod lru;
mod lru_crawler;
mod protocol_choice;
mod sasl;
mod slabs;
mod smoke;
mod startup;
mod stats;
mod stats_conns;
mod udp;
mod udp_guard;
mod udp_reuseport;
mod watch;
