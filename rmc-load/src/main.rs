//! `rmc-load`: the project's own load generator, for what memaslap cannot
//! do. It speaks memcached's ASCII protocol over UDP (first) or TCP to any
//! memcached-compatible server on loopback (TCP also over TLS, `--tls`,
//! with rustls), and measures:
//!
//! - multi-gets over UDP whose replies span several datagrams, reassembled
//!   under both framings: one message per request (rmemcached) and one
//!   message per key plus one for `END` (memcached 1.6);
//! - a fixed request rate (open loop: requests leave on schedule, whether
//!   or not earlier ones were answered), with latency taken from the
//!   *scheduled* send time to the complete reply, so that a stall of the
//!   server shows in the percentiles instead of slowing the generator down
//!   (no coordinated omission); or a closed loop with a fixed number of
//!   requests in flight per socket;
//! - many requests in flight on one UDP socket, matched by request id;
//! - loss: a request without a complete reply within the timeout is lost;
//!   datagrams for ids nobody waits for are counted apart.
//!
//! In closed loop each socket has a thread of its own; in open loop one
//! thread sends on schedule and receives on every socket, so that sending
//! and receiving never wait for each other. The run sends for
//! `--duration`, then waits at most `--timeout` for the last replies, and
//! stops by itself.
//!
//! It lives in its own crate of the workspace, so that what only a client
//! needs (latency histograms) stays out of the server's dependencies; it
//! uses the server's library for the UDP frame header
//! ([`rmemcached::udp::Header`]), the one thing both ends must agree on.
//! The benchmark scripts (`scripts/bench-vs-memcached.sh`,
//! `scripts/bench-reuseport.sh`) run it from `target/release/rmc-load`, next to the server's binary.
//!
//! # Layout
//!
//! | module | holds |
//! | --- | --- |
//! | [`args`] | `--help`, the options and their checks |
//! | [`workload`] | keys, values and the request of each `--mode` |
//! | [`reply`] | where a reply ends and what it says |
//! | [`reassembly`] | UDP replies put back together from datagrams |
//! | [`flight`] | requests in flight per socket, UDP by id, TCP in order |
//! | [`sockets`] | the UDP and TCP sockets behind one trait |
//! | [`tls`] | a TLS session over a TCP connection, behind the same trait |
//! | [`drive`] | the open and closed loops, and the run around them |
//! | [`preload`] | setting every key before the run |
//! | [`outcome`] | counters and latency histograms |
//! | [`report`] | the human summary and the JSON line |

mod args;
mod drive;
mod flight;
mod outcome;
mod preload;
mod reassembly;
mod reply;
mod report;
mod sockets;
#[cfg(test)]
mod testutil;
mod tls;
mod workload;

use std::process::ExitCode;

use args::{parse_args, HELP};
use drive::run;
use report::{human, json, summarize};

fn main() -> ExitCode {
    let cfg = match parse_args(std::env::args_os().skip(1)) {
        Ok(Some(cfg)) => cfg,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("rmc-load: {e}\nTry 'rmc-load --help'.");
            return ExitCode::from(2);
        }
    };
    let outcome = match run(&cfg) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rmc-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let s = summarize(&cfg, &outcome);
    print!("{}", human(&cfg, &s));
    if cfg.json {
        println!("{}", json(&cfg, &s));
    }
    if s.failure.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
