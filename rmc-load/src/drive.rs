//! The loops that send and receive, and the run around them.
//!
//! Open loop (`--rate R`): one thread sends request `k` at `start + k / R`
//! whatever the replies do, and takes the replies of every socket in
//! between. Closed loop (`--rate 0`): a thread per socket keeps
//! `--outstanding` requests in flight. Either way every socket is opened
//! first (over TLS, its handshake done), then the run sends for
//! `--duration`, and waits at most `--timeout` for the last replies.

use std::io::{self, ErrorKind};
use std::thread;
use std::time::{Duration, Instant};

use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sys::time::TimeSpec;

use crate::args::{Config, Proto};
use crate::flight::{Core, Flight, TcpFlight, UdpFlight};
use crate::outcome::{nanos, Outcome};
use crate::preload::{preload_tcp, preload_udp};
use crate::sockets::{tcp_socket, udp_socket, Io};
use crate::tls::{client_config, TlsStream};

/// How long a blocking receive waits before the loop looks at the clock.
const POLL: Duration = Duration::from_millis(2);
/// Open loop: the generator spins instead of sleeping while its next send
/// is nearer than this (so at rates above 5,000 requests/s it spins).
const SPIN: Duration = Duration::from_micros(200);

/// The whole run: preload the keys, open the sockets (and finish their
/// TLS handshakes), then send for `--duration` and wait for the last
/// replies; the outcomes of all sockets, merged.
pub fn run(cfg: &Config) -> Result<Outcome, String> {
    let tls = cfg.tls.as_ref().map(client_config).transpose()?;
    if cfg.preload {
        match (cfg.preload_tcp, cfg.proto) {
            (Some(p), _) => preload_tcp(cfg, p, tls.as_ref())?,
            (None, Proto::Tcp) => preload_tcp(cfg, cfg.port, tls.as_ref())?,
            (None, Proto::Udp) => preload_udp(cfg)?,
        }
    }
    let connect_error = |e| format!("connect to TCP port {}: {e}", cfg.port);
    let outcomes = match (cfg.proto, &tls) {
        (Proto::Udp, _) => drive(cfg, UdpFlight::new, || {
            udp_socket(cfg.host, cfg.port, POLL).map_err(|e| format!("UDP socket: {e}"))
        })?,
        (Proto::Tcp, None) => drive(cfg, TcpFlight::new, || {
            tcp_socket(cfg.host, cfg.port, POLL).map_err(connect_error)
        })?,
        (Proto::Tcp, Some(config)) => drive(cfg, TcpFlight::new, || {
            TlsStream::connect(cfg.host, cfg.port, POLL, config).map_err(connect_error)
        })?,
    };
    let mut total = Outcome::new();
    for o in &outcomes {
        total.merge(o);
    }
    Ok(total)
}

/// Open every socket, then run the open loop over all of them in this
/// thread, or the closed loop in a thread per socket; the clock starts
/// once all are open.
fn drive<F: Flight, I: Io>(
    cfg: &Config,
    flight: impl Fn(Core) -> F,
    socket: impl Fn() -> Result<I, String>,
) -> Result<Vec<Outcome>, String> {
    let mut ios = (0..cfg.sockets)
        .map(|_| socket())
        .collect::<Result<Vec<I>, String>>()?;
    let mut flights: Vec<F> = (0..cfg.sockets)
        .map(|i| flight(Core::new(cfg, i as u64)))
        .collect();
    flights[0].core().out.session = ios[0].session();
    let start = Instant::now() + Duration::from_millis(10);
    if cfg.rate > 0.0 {
        run_open_loop(cfg, &mut flights, &mut ios, start);
        return Ok(flights.into_iter().map(Flight::into_outcome).collect());
    }
    thread::scope(|scope| {
        let handles: Vec<_> = flights
            .into_iter()
            .zip(ios)
            .map(|(f, io)| scope.spawn(move || run_closed_loop(cfg, f, io, start)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "a socket thread panicked".into()))
            .collect()
    })
}

/// Open loop: one thread sends request `k` at `start + k / rate`, over
/// socket `k % sockets`, whatever the replies do, until the end, and takes
/// every socket's replies, waiting in ppoll(2) until the next send is due
/// or a reply comes. One thread, so that sending and receiving never wait
/// for each other (or for a lock, or the scheduler) on the generator's own
/// core: what it measures is the server's delay.
fn run_open_loop<F: Flight, I: Io>(cfg: &Config, flights: &mut [F], ios: &mut [I], start: Instant) {
    // Wake up on time: the default timer slack (50 µs) would show as
    // latency, since latency runs from the scheduled instant.
    let _ = nix::sys::prctl::set_timerslack(1);
    let interval_ns = 1e9 / cfg.rate;
    let end = start + cfg.duration;
    let mut stopped = vec![false; ios.len()];
    let mut buf = vec![0u8; 65536];
    let mut req = Vec::new();
    let mut k: u64 = 0;
    let mut sending = true;
    loop {
        // Send what is due. A request that cannot go yet (no free UDP
        // request id) keeps its slot in the schedule and is tried again
        // 100 µs later, its lag growing.
        let mut retry = false;
        let mut next = end;
        while sending {
            let t = start + Duration::from_nanos((k as f64 * interval_ns) as u64);
            let now = Instant::now();
            if t >= end {
                sending = false;
                break;
            }
            if t > now {
                next = t;
                break;
            }
            let i = (k % ios.len() as u64) as usize;
            if !stopped[i] {
                req.clear();
                if !flights[i].begin(t, now, &mut req) {
                    retry = true;
                    break;
                }
                let lag = nanos(now.saturating_duration_since(t)).max(1);
                flights[i].core().out.lag.saturating_record(lag);
                if ios[i].send(&req).is_err() {
                    flights[i].core().out.n.socket_errors += 1;
                }
            }
            k += 1;
        }
        // Take every reply there is.
        for (i, io) in ios.iter_mut().enumerate() {
            while !stopped[i] {
                let got = io.try_recv(&mut buf);
                match take(&mut flights[i], cfg.proto, got, &buf, Instant::now()) {
                    Got::More => {}
                    Got::Nothing => break,
                    Got::Failed => {
                        stopped[i] = true;
                        lose_in_flight(&mut flights[i]);
                    }
                }
            }
        }
        let now = Instant::now();
        let mut waiting = false;
        for (f, &stop) in flights.iter_mut().zip(&stopped) {
            if !stop {
                f.expire(now);
                waiting |= f.in_flight() > 0;
            }
        }
        if !sending && !waiting {
            break;
        }
        // Sleep until the next send, a retry, or (sending over) the next
        // look for expired requests; a reply wakes it sooner.
        let wait = if retry {
            Duration::from_micros(100)
        } else if sending {
            next.saturating_duration_since(now)
        } else {
            POLL
        };
        // A send due within SPIN comes sooner than a sleep and a wake-up
        // could deliver it on time: look at the sockets again instead.
        if sending && !retry && wait < SPIN {
            continue;
        }
        let mut fds: Vec<PollFd<'_>> = ios
            .iter()
            .zip(&stopped)
            .filter(|(_, &stop)| !stop)
            .map(|(io, _)| PollFd::new(io.as_fd(), PollFlags::POLLIN))
            .collect();
        match ppoll(&mut fds, Some(TimeSpec::from_duration(wait)), None) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                flights[0].core().out.failure = Some(format!("ppoll: {e}"));
                break;
            }
        }
    }
}

/// Closed loop on one socket: keep `cfg.outstanding` requests in flight
/// until the end, then wait for the last replies (or their timeouts).
fn run_closed_loop<F: Flight, I: Io>(cfg: &Config, mut f: F, mut io: I, start: Instant) -> Outcome {
    let end = start + cfg.duration;
    let mut buf = vec![0u8; 65536];
    let mut req = Vec::new();
    loop {
        loop {
            let now = Instant::now();
            if now >= end || f.in_flight() >= cfg.outstanding as usize {
                break;
            }
            req.clear();
            if !f.begin(now, now, &mut req) {
                break;
            }
            if io.send(&req).is_err() {
                f.core().out.n.socket_errors += 1;
            }
        }
        let got = io.recv(&mut buf);
        let now = Instant::now();
        if let Got::Failed = take(&mut f, cfg.proto, got, &buf, now) {
            lose_in_flight(&mut f);
            break;
        }
        f.expire(now);
        if now >= end && f.in_flight() == 0 {
            break;
        }
    }
    f.into_outcome()
}

/// What one receive gave.
enum Got {
    /// Bytes (or a passing error): there may be more.
    More,
    /// Nothing there (or the receive timed out).
    Nothing,
    /// The socket cannot go on; the failure is recorded.
    Failed,
}

/// Hand a receive's result to the socket's flight.
fn take<F: Flight>(
    f: &mut F,
    proto: Proto,
    got: io::Result<usize>,
    buf: &[u8],
    now: Instant,
) -> Got {
    let failure = match got {
        Ok(0) if proto == Proto::Tcp => "the server closed the connection".to_string(),
        Ok(n) => match f.received(&buf[..n], now) {
            Ok(()) => return Got::More,
            Err(e) => e,
        },
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            return Got::Nothing
        }
        Err(e) if e.kind() == ErrorKind::Interrupted => return Got::More,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            // ICMP port unreachable on a connected UDP socket.
            f.core().out.n.socket_errors += 1;
            return Got::More;
        }
        Err(e) => format!("receive: {e}"),
    };
    f.core().out.failure = Some(failure);
    Got::Failed
}

/// A failed socket: what it has in flight is lost.
fn lose_in_flight<F: Flight>(f: &mut F) {
    let lost = f.in_flight() as u64;
    f.core().out.n.lost += lost;
}
