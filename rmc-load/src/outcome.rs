//! What a run measured: the counters and latency histograms of each
//! socket, merged at the end. The histograms are hdrhistogram's, at three
//! significant digits, in nanoseconds.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest latency the histograms hold, in ns; longer ones saturate.
const HIST_MAX_NS: u64 = 600_000_000_000;

/// The counters of one socket, added up at the end.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// Requests sent.
    pub sent: u64,
    /// Requests whose whole reply came in time.
    pub completed: u64,
    /// Requests without a whole reply within the timeout, or in flight on
    /// a socket that failed.
    pub lost: u64,
    /// Replies that were error lines, or malformed.
    pub errors: u64,
    /// Replies that cannot answer their request.
    pub malformed: u64,
    /// Values returned by retrievals.
    pub hits: u64,
    /// Keys asked for and not returned.
    pub misses: u64,
    /// UDP datagrams received.
    pub datagrams: u64,
    /// Datagrams for an id with no request in flight.
    pub unknown_datagrams: u64,
    /// Datagrams for an id whose request was counted lost.
    pub expired_datagrams: u64,
    /// Datagrams too short for a frame header, or numbered past their
    /// total.
    pub bad_datagrams: u64,
    /// TCP replies that came after their request was counted lost.
    pub late_replies: u64,
    /// Sends that failed, and ICMP errors received on UDP sockets.
    pub socket_errors: u64,
    /// Times a UDP request waited for a free request id.
    pub id_stalls: u64,
}

impl Counters {
    /// Add `o` to these counters.
    pub fn add(&mut self, o: &Counters) {
        self.sent += o.sent;
        self.completed += o.completed;
        self.lost += o.lost;
        self.errors += o.errors;
        self.malformed += o.malformed;
        self.hits += o.hits;
        self.misses += o.misses;
        self.datagrams += o.datagrams;
        self.unknown_datagrams += o.unknown_datagrams;
        self.expired_datagrams += o.expired_datagrams;
        self.bad_datagrams += o.bad_datagrams;
        self.late_replies += o.late_replies;
        self.socket_errors += o.socket_errors;
        self.id_stalls += o.id_stalls;
    }
}

/// Counters and latency histograms (ns).
pub struct Outcome {
    /// The counters.
    pub n: Counters,
    /// Scheduled send to complete reply.
    pub latency: Histogram<u64>,
    /// Scheduled send to actual send (open loop): the generator's own lag.
    pub lag: Histogram<u64>,
    /// First fatal error of the socket, if any.
    pub failure: Option<String>,
    /// The TLS session's version, cipher suite and key exchange (`--tls`).
    pub session: Option<String>,
}

impl Outcome {
    /// Nothing counted yet.
    pub fn new() -> Outcome {
        let h = || Histogram::new_with_bounds(1, HIST_MAX_NS, 3).expect("histogram bounds");
        Outcome {
            n: Counters::default(),
            latency: h(),
            lag: h(),
            failure: None,
            session: None,
        }
    }

    /// Add the counts and histograms of `o`; the first failure (and TLS
    /// session) stays.
    pub fn merge(&mut self, o: &Outcome) {
        self.n.add(&o.n);
        self.latency.add(&o.latency).expect("same bounds");
        self.lag.add(&o.lag).expect("same bounds");
        if self.failure.is_none() {
            self.failure.clone_from(&o.failure);
        }
        if self.session.is_none() {
            self.session.clone_from(&o.session);
        }
    }
}

/// `d` in nanoseconds, saturating.
pub fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}
