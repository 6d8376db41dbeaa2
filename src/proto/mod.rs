//! The wire protocols: mirrors memcached's `proto_text.c` and
//! `proto_bin.c`. Nothing here touches a socket: a command's bytes go in,
//! its reply bytes come out, and an [`action::Action`] tells the
//! connection what to do next (read a value, swallow one, flush, close).
//! A command sees the server through a narrow [`ctx::Ctx`] (the cache, the
//! counters, the settings, and an admin hook for the `stats` reports), so
//! every reply is unit-tested without sockets, threads or connections.
//!
//! | module | holds | memcached |
//! | --- | --- | --- |
//! | [`ctx`] | what a command sees of the server | globals, `c->thread` |
//! | [`session`] | per-connection protocol state, the reply budget | `c->noreply`, `resp_start` |
//! | [`tokens`] | a line cut into tokens | `tokenize_command` |
//! | [`action`] | what a command asks of its connection | `conn_set_state` calls |
//! | [`store`] | the checks before a value is read, CAS counters | `process_update_command` |
//! | [`complete`] | a value arrived, in the request's protocol | `complete_nread` |
//! | [`text`] | the text protocol's commands | `process_command_ascii` |
//! | [`get`] | text retrievals (`get`, `gets`, `gat`, `gats`) | `process_get_command` |
//! | [`meta`] | the meta commands | `process_mget_command`, ... |
//! | [`admin`] | `stats`, `slabs`, `cache_memlimit`, `stats cachedump` | `process_stat`, ... |
//! | [`crawler`] | `lru_crawler`, the metadump's lines | `process_lru_crawler_command` |
//! | [`lru`] | `lru tune`, `lru mode`, `lru temp_ttl` | `process_lru_command` |
//! | [`auth`] | `-Y` authentication | `try_read_command_asciiauth` |
//! | [`binary`] | the binary protocol | `proto_bin.c` |
//! | [`datagram`] | every command of one UDP datagram | `drive_machine` over a datagram |

pub mod action;
pub mod admin;
pub mod auth;
pub mod binary;
pub mod complete;
pub mod crawler;
pub mod ctx;
pub mod datagram;
pub mod get;
pub mod lru;
pub mod meta;
pub mod session;
pub mod store;
pub mod text;
pub mod tokens;
