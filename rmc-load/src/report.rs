//! The report: percentiles out of the histograms, then a human summary and,
//! with `--json`, one JSON line for scripts.

use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::args::{Config, Mode, Proto, Trust};
use crate::outcome::{Counters, Outcome};

/// The figures of a run, in µs for latencies.
pub struct Summary {
    /// The counters of all sockets.
    pub n: Counters,
    /// Completed requests per second of `--duration`.
    pub ops_per_sec: f64,
    /// Median latency.
    pub p50: f64,
    /// 90th percentile of latency.
    pub p90: f64,
    /// 99th percentile of latency.
    pub p99: f64,
    /// 99.9th percentile of latency.
    pub p999: f64,
    /// Highest latency.
    pub max: f64,
    /// 99th percentile of the sender's lag (open loop).
    pub lag_p99: f64,
    /// Highest lag of the sender (open loop).
    pub lag_max: f64,
    /// The first fatal error of a socket.
    pub failure: Option<String>,
    /// The TLS session (`--tls`): version, cipher suite, key exchange.
    pub session: Option<String>,
}

/// Nanoseconds as microseconds.
fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// The figures of the merged outcome `o`.
pub fn summarize(cfg: &Config, o: &Outcome) -> Summary {
    let h = &o.latency;
    let q = |x: f64| {
        if h.is_empty() {
            0.0
        } else {
            us(h.value_at_quantile(x))
        }
    };
    let lag = |x: f64| {
        if o.lag.is_empty() {
            0.0
        } else {
            us(o.lag.value_at_quantile(x))
        }
    };
    Summary {
        n: o.n,
        ops_per_sec: o.n.completed as f64 / cfg.duration.as_secs_f64(),
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        p999: q(0.999),
        max: if h.is_empty() { 0.0 } else { us(h.max()) },
        lag_p99: lag(0.99),
        lag_max: if o.lag.is_empty() {
            0.0
        } else {
            us(o.lag.max())
        },
        failure: o.failure.clone(),
        session: o.session.clone(),
    }
}

/// The report for people: a few lines, the counters that matter to the
/// run's transport and loop, and trouble only when there was some.
pub fn human(cfg: &Config, s: &Summary) -> String {
    let mut t = String::new();
    let load = if cfg.rate > 0.0 {
        format!("open loop at {} req/s", cfg.rate)
    } else {
        format!("closed loop, {} in flight per socket", cfg.outstanding)
    };
    let what = match cfg.mode {
        Mode::MultiGet => format!("multiget of {} keys", cfg.multiget_keys),
        m => m.name().to_string(),
    };
    let over = if cfg.tls.is_some() {
        format!("{} (TLS)", cfg.proto.name())
    } else {
        cfg.proto.name().to_string()
    };
    let _ = writeln!(
        t,
        "rmc-load: {what} over {over} to {}, {} socket(s), {load}, {:.1} s; \
         {} keys of {} bytes",
        SocketAddr::new(cfg.host, cfg.port),
        cfg.sockets,
        cfg.duration.as_secs_f64(),
        cfg.keys,
        cfg.value_size
    );
    if let Some(session) = &s.session {
        let trust = match &cfg.tls {
            Some(Trust::Ca(file)) => format!("certificate checked against {}", file.display()),
            _ => "certificate not checked (--tls-no-verify)".to_string(),
        };
        let _ = writeln!(t, "tls:        {session}; {trust}");
    }
    let n = &s.n;
    let _ = writeln!(
        t,
        "requests:   sent {}, completed {}, lost {} (timeout {} ms), errors {}",
        n.sent,
        n.completed,
        n.lost,
        cfg.timeout.as_millis(),
        n.errors
    );
    let _ = writeln!(
        t,
        "throughput: {:.1} req/s; values: hits {}, misses {}",
        s.ops_per_sec, n.hits, n.misses
    );
    let from = if cfg.rate > 0.0 {
        "scheduled send"
    } else {
        "send"
    };
    let _ = writeln!(
        t,
        "latency (µs, from {from} to whole reply): p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
        s.p50, s.p90, s.p99, s.p999, s.max
    );
    if cfg.proto == Proto::Udp {
        let _ = writeln!(
            t,
            "datagrams:  received {}, for unknown ids {}, for expired ids {}, malformed {}",
            n.datagrams, n.unknown_datagrams, n.expired_datagrams, n.bad_datagrams
        );
    } else if n.late_replies > 0 {
        let _ = writeln!(t, "late replies (after their timeout): {}", n.late_replies);
    }
    if cfg.rate > 0.0 {
        let _ = writeln!(
            t,
            "sender lag (µs, scheduled to actual send): p99 {:.1}  max {:.1}",
            s.lag_p99, s.lag_max
        );
    }
    if n.malformed + n.socket_errors + n.id_stalls > 0 {
        let _ = writeln!(
            t,
            "trouble:    malformed replies {}, socket errors {}, waits for a free request id {}",
            n.malformed, n.socket_errors, n.id_stalls
        );
    }
    if let Some(f) = &s.failure {
        let _ = writeln!(t, "failure:    {f}");
    }
    t
}

/// The one-line JSON summary (`--json`) that the benchmark scripts read.
/// Its field names are an interface: keep them. With `--tls` it ends with
/// `"tls":"..."`, the session (its text has no quote or backslash).
pub fn json(cfg: &Config, s: &Summary) -> String {
    let n = &s.n;
    let tls = match &s.session {
        Some(session) => format!(",\"tls\":\"{session}\""),
        None => String::new(),
    };
    format!(
        "{{\"proto\":\"{}\",\"mode\":\"{}\",\"rate\":{},\"sockets\":{},\"duration_s\":{},\
         \"ops_per_sec\":{:.1},\"p50_us\":{:.1},\"p90_us\":{:.1},\"p99_us\":{:.1},\
         \"p999_us\":{:.1},\"max_us\":{:.1},\"sent\":{},\"completed\":{},\"lost\":{},\
         \"errors\":{},\"hits\":{},\"misses\":{},\"datagrams\":{},\"unknown_datagrams\":{},\
         \"late_replies\":{}{tls}}}",
        cfg.proto.name(),
        cfg.mode.name(),
        cfg.rate,
        cfg.sockets,
        cfg.duration.as_secs_f64(),
        s.ops_per_sec,
        s.p50,
        s.p90,
        s.p99,
        s.p999,
        s.max,
        n.sent,
        n.completed,
        n.lost,
        n.errors,
        n.hits,
        n.misses,
        n.datagrams,
        n.unknown_datagrams + n.expired_datagrams,
        n.late_replies
    )
}
