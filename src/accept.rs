//! The main thread: opens the sockets, starts the workers, and runs the
//! accept loop, which also ticks the clock and takes signals. Mirrors the
//! part of memcached's `main()` after option parsing, and the
//! `conn_listening` state of `drive_machine`.

use std::io::{self, Write as _};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use mio::net::{TcpListener, UnixListener};
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook_mio::v1_0::Signals;

use crate::conn::Transport;
use crate::server::{Server, Stop};
use crate::settings::Settings;
use crate::thread::{self, Workers};

/// What the settings ask for that memcached would do and this server
/// accepts but does not: a warning at start names these, since an operator
/// relying on them would otherwise not know. (Tuning options memcached
/// needs and this design does not, such as `hot_lru_pct`, are left out.)
pub fn unsupported(st: &Settings) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(f) = &st.memory_file {
        v.push(format!(
            "-e {} (the cache is not saved across restarts)",
            f.display()
        ));
    }
    if st.lock_memory {
        v.push("-k (memory is not locked)".to_string());
    }
    if st.large_pages {
        v.push("-L (no large pages)".to_string());
    }
    if st.ignored_options.iter().any(|o| o.starts_with("ext_")) {
        v.push("-o ext_* (no extstore: every item stays in memory)".to_string());
    }
    v
}

/// The line logged at start (with `-v`): version, listening addresses,
/// threads and memory limit.
fn startup_line(st: &Settings, l: &crate::listen::Listeners) -> String {
    let addrs = |v: Vec<String>| {
        if v.is_empty() {
            "off".to_string()
        } else {
            v.join(", ")
        }
    };
    let tcp = addrs(
        l.tcp
            .iter()
            .filter_map(|(t, _)| t.local_addr().ok())
            .map(|a| a.to_string())
            .collect(),
    );
    let udp = addrs(
        l.udp
            .iter()
            .filter_map(|g| g.first()?.local_addr().ok())
            .map(|a| a.to_string())
            .collect(),
    );
    let unix = st
        .socket_path
        .as_ref()
        .map_or("off".to_string(), |p| p.display().to_string());
    format!(
        "rmemcached {}, speaking memcached {}: TCP {tcp}; UDP {udp}; unix {unix}; \
         {} worker threads; -m {} MiB",
        env!("CARGO_PKG_VERSION"),
        crate::settings::VERSION,
        st.num_threads,
        st.maxbytes / (1024 * 1024)
    )
}

/// A listening socket watched by the main thread.
enum Listener {
    /// A TCP listener, and whether its connections speak TLS.
    Tcp(TcpListener, bool),
    Unix(UnixListener),
}

/// Open the sockets, start the workers (and the crawler) and run the
/// accept loop (which also ticks the clock once a second). Returns only on a fatal error.
pub fn run(
    settings: Settings,
    auth: Option<crate::auth::AuthFile>,
    tls: Option<crate::tls::TlsContext>,
    sasl: Option<&'static crate::sasl::Sasl>,
) -> Result<(), String> {
    let listeners = crate::listen::open_all(&settings)?;
    if !listeners.udp.is_empty() && settings.udp_allow == crate::udp_guard::UdpAllow::Any {
        log::warn!(
            "udp_allow=any: UDP replies go to any source address, which lets forged \
             requests aim this server's replies at others (a reflection attack)"
        );
    }
    let unsupported = unsupported(&settings);
    if !unsupported.is_empty() {
        log::warn!(
            "accepted but not supported here: {}",
            unsupported.join("; ")
        );
    }
    let mut server = Server::new(settings);
    server.auth = auth;
    server.tls = tls.map(Arc::new);
    server.sasl = sasl;
    if let Some(t) = &server.tls {
        t.mark_loaded(server.cache.clock().now());
    }
    let server = Arc::new(server);
    let udp_count = listeners.udp.len() as u64;
    server.gauges.curr_connections.fetch_add(
        udp_count * server.settings.num_threads as u64,
        Ordering::Relaxed,
    );
    let mut workers =
        thread::start(&server, &listeners.udp).map_err(|e| format!("starting workers: {e}"))?;
    log::info!("{}", startup_line(&server.settings, &listeners));

    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut socks = Vec::new();
    let now = server.cache.clock().now();
    let list = |fd, addr| {
        let state = crate::conn::ConnState::Listening;
        server.conn_list.add(fd, false, addr, None, state, now);
    };
    for (l, tls) in listeners.tcp {
        if let Ok(a) = l.local_addr() {
            list(l.as_raw_fd(), crate::conn_list::inet_text(false, a));
        }
        socks.push(Listener::Tcp(TcpListener::from_std(l), tls));
    }
    if let Some(l) = listeners.unix {
        let path = server.settings.socket_path.as_deref();
        list(l.as_raw_fd(), crate::conn_list::unix_text(path));
        socks.push(Listener::Unix(UnixListener::from_std(l)));
    }
    for (i, l) in socks.iter_mut().enumerate() {
        let src: &mut dyn mio::event::Source = match l {
            Listener::Tcp(t, _) => t,
            Listener::Unix(u) => u,
        };
        poll.registry()
            .register(src, Token(i), Interest::READABLE)
            .map_err(|e| e.to_string())?;
    }
    let signal_token = Token(socks.len());
    let waker_token = Token(socks.len() + 1);
    // memcached stops on SIGTERM and SIGINT, stops gracefully on SIGUSR1,
    // and takes SIGHUP without dying.
    let mut signals = Signals::new([libc::SIGTERM, libc::SIGINT, libc::SIGUSR1, libc::SIGHUP])
        .map_err(|e| format!("signal handlers: {e}"))?;
    poll.registry()
        .register(&mut signals, signal_token, Interest::READABLE)
        .map_err(|e| e.to_string())?;
    let waker = Waker::new(poll.registry(), waker_token).map_err(|e| e.to_string())?;
    let _ = server.main_waker.set(waker);
    let mut events = Events::with_capacity(64);
    loop {
        if let Some(why) = server.stopping() {
            drop(socks);
            stop(&server, why, workers);
            return Ok(());
        }
        match poll.poll(&mut events, Some(Duration::from_secs(1))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let clock = server.cache.clock();
        let before = clock.now();
        clock.tick();
        if clock.now() != before {
            // An accept that failed (EMFILE, say) left connections in the
            // backlog, and no new edge will report them: retry each second.
            for l in &socks {
                accept_all(l, &server, &mut workers);
            }
        }
        for ev in events.iter() {
            if ev.token() == signal_token {
                for sig in signals.pending() {
                    match sig {
                        libc::SIGUSR1 => server.request_stop(Stop::Graceful),
                        libc::SIGHUP => match &server.auth {
                            // memcached reloads the auth file on SIGHUP.
                            Some(a) => match a.reload() {
                                Ok(()) => log::info!("SIGHUP: auth file reloaded"),
                                Err(e) => log::warn!("SIGHUP: {}", e.message(a.path())),
                            },
                            None => log::info!("SIGHUP received, ignored"),
                        },
                        _ => server.request_stop(Stop::Signal),
                    }
                }
            } else if let Some(l) = socks.get(ev.token().0) {
                accept_all(l, &server, &mut workers);
            }
        }
    }
}

/// Stop: the listening sockets are already closed; the workers drain
/// their connections and end, then the pid file of a daemon goes, as in
/// memcached.
fn stop(server: &Server, why: Stop, workers: Workers) {
    match why {
        Stop::Graceful => eprintln!("Gracefully stopping"),
        Stop::Signal => log::info!("Exiting normally"),
    }
    workers.stop();
    if server.settings.daemonize {
        crate::daemon::remove_pid(&server.settings);
    }
}

/// Accept until `WouldBlock` (edge-triggered), refusing past `-c` the way
/// memcached's `maxconns_fast` does: a short error line, then close.
fn accept_all(l: &Listener, server: &Server, workers: &mut Workers) {
    loop {
        let res = match l {
            Listener::Tcp(t, _) => t.accept().map(|(s, _)| {
                let _ = s.set_nodelay(true);
                Transport::Tcp(s)
            }),
            Listener::Unix(u) => u.accept().map(|(s, _)| Transport::Unix(s)),
        };
        let transport = match res {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::warn!("accept(): {e}");
                return;
            }
        };
        let g = &server.gauges;
        let curr = g.curr_connections.load(Ordering::Relaxed) as usize;
        if server.settings.maxconns_fast && curr + 1 >= server.settings.maxconns {
            server
                .stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            refuse(transport);
            continue;
        }
        // A TLS listener's connection starts its session here, as
        // memcached's listener calls SSL_accept (the handshake itself runs
        // on the worker, as the bytes come).
        let transport = match (transport, l, &server.tls) {
            (Transport::Tcp(s), Listener::Tcp(_, true), Some(ctx)) => {
                match crate::conn::tls::TlsStream::new(s, ctx.clone()) {
                    Ok(t) => Transport::Tls(Box::new(t)),
                    Err(e) => {
                        log::warn!("TLS session: {e}");
                        continue;
                    }
                }
            }
            (t, _, _) => t,
        };
        g.curr_connections.fetch_add(1, Ordering::Relaxed);
        g.connection_structures.fetch_add(1, Ordering::Relaxed);
        server
            .stats
            .total_connections
            .fetch_add(1, Ordering::Relaxed);
        workers.dispatch_conn_new(transport);
    }
}

fn refuse(transport: Transport) {
    const MSG: &[u8] = b"ERROR Too many open connections\r\n";
    let _ = match transport {
        Transport::Tcp(mut s) => s.write(MSG),
        Transport::Unix(mut s) => s.write(MSG),
        Transport::Udp(_) | Transport::Tls(_) => Ok(0),
    };
}
