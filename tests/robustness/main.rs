//! What keeps the server up and bounded: connection and line limits, the
//! memory budgets and the cache's own limit, idle timeouts, garbage input,
//! signals and a dying worker. One test binary; each module was a test
//! file of its own (`cargo test --test robustness budgets::` runs one).
//!
//! Tests that load both cores or measure the whole server's peak memory
//! against memcached's have binaries of their own (`tests/faults.rs`,
//! `tests/hostile_memory.rs`, `tests/memaslap.rs`, `tests/soak.rs`), so
//! that nothing else runs beside them.

#[path = "../common/mod.rs"]
mod common;

mod budgets;
mod garbage;
mod idle;
mod limits;
mod metadump_memory;
mod multiget_memory;
mod read_buf_limit;
mod signals;
mod storage;
mod worker_death;
