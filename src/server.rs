//! Shared server state and the main thread's accept loop: mirrors the part
//! of memcached's `main()` after option parsing, and the `conn_listening`
//! state of `drive_machine`.

use std::io::{self, Write as _};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mio::net::{TcpListener, UnixListener};
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook_mio::v1_0::Signals;

use crate::cache::Cache;
use crate::clock::Clock;
use crate::conn::Transport;
use crate::settings::Settings;
use crate::stats::{Gauges, Stats};
use crate::stats_prefix::PrefixStats;
use crate::thread::{self, Workers};

/// Everything the workers share.
#[derive(Debug)]
pub struct Server {
    /// Settings, read-only after start.
    pub settings: Settings,
    /// The cache.
    pub cache: Cache,
    /// Resettable counters.
    pub stats: Stats,
    /// Connection gauges.
    pub gauges: Gauges,
    /// `stats detail` per-prefix counters.
    pub prefix: PrefixStats,
    /// Current verbosity (the `verbosity` command changes it).
    verbose: AtomicU8,
    /// Per-source UDP reply budget (`-o udp_reply_rate`).
    pub udp_budget: crate::udp_guard::ReplyBudget,
    /// Why the server is stopping, once it is ([`Stop`] as a byte; 0 while
    /// running). Workers read it to start draining.
    stop: AtomicU8,
    /// Wakes the main thread's poll when `shutdown` asks it to stop.
    main_waker: OnceLock<Waker>,
    /// Every open socket, for `stats conns`.
    pub conn_list: crate::conn_list::ConnList,
    /// Each worker's pool for `-o read_buf_mem_limit`, by worker id.
    pub thread_mem: Vec<Arc<crate::conn_mem::ThreadMem>>,
    /// The `-Y` file: stream connections must authenticate first.
    pub auth: Option<crate::auth::AuthFile>,
    /// The reply budget of one UDP request datagram (`mem_budget`).
    pub udp_reply_budget: usize,
    /// Unsent stream replies past what each connection holds free
    /// (`mem_budget`); every worker charges it.
    pub reply_pool: Arc<crate::mem_budget::Pool>,
    /// Values being read from stream connections (`mem_budget`).
    pub inflight: crate::mem_budget::Pool,
}

/// Why the server stops. Every way drains: no new connections or requests
/// are taken, replies in flight are finished (for at most
/// [`DRAIN_LIMIT`]), then the process exits 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Stop {
    /// SIGTERM, SIGINT, or the `shutdown` command (which memcached turns
    /// into SIGINT).
    Signal = 1,
    /// SIGUSR1 or `shutdown graceful` (memcached's graceful stop).
    Graceful = 2,
}

/// The longest a stop waits for replies in flight (a client that stopped
/// reading would otherwise hold the process forever).
pub const DRAIN_LIMIT: Duration = Duration::from_secs(10);

impl Server {
    /// Build the shared state from settings.
    pub fn new(settings: Settings) -> Server {
        use crate::mem_budget as budget;
        let clock = Arc::new(Clock::new());
        let cache = Cache::new(clock, &crate::cache::CacheConfig::from_settings(&settings));
        let prefix = PrefixStats::new(settings.prefix_delimiter, settings.detail_enabled);
        Server {
            thread_mem: (0..settings.num_threads.max(1))
                .map(|_| {
                    Arc::new(crate::conn_mem::ThreadMem::new(
                        settings.read_buf_mem_limit as usize,
                        settings.num_threads,
                    ))
                })
                .collect(),
            conn_list: Default::default(),
            verbose: AtomicU8::new(settings.verbose),
            udp_budget: crate::udp_guard::ReplyBudget::new(settings.udp_reply_rate),
            cache,
            stats: Stats::default(),
            gauges: Gauges::default(),
            prefix,
            stop: AtomicU8::new(0),
            main_waker: OnceLock::new(),
            auth: None,
            udp_reply_budget: budget::udp_reply_budget(settings.item_size_max),
            reply_pool: Arc::new(budget::Pool::new(budget::reply_pool_limit(
                settings.item_size_max,
            ))),
            inflight: budget::Pool::new(budget::inflight_pool_limit(
                settings.maxbytes,
                settings.item_size_max,
            )),
            settings,
        }
    }

    /// The `verbosity` command: memcached caps it at its maximum level.
    pub fn set_verbosity(&self, level: u32) {
        let level = level.min(2) as u8;
        self.verbose.store(level, Ordering::Relaxed);
        if std::env::var_os("RUST_LOG").is_none() {
            log::set_max_level(level_filter(level));
        }
    }

    /// The current verbosity.
    pub fn verbosity(&self) -> u8 {
        self.verbose.load(Ordering::Relaxed)
    }

    /// Begin stopping: the first request wins. The main thread sees it at
    /// its next poll (woken here) and tells the workers.
    pub fn request_stop(&self, why: Stop) {
        if self
            .stop
            .compare_exchange(0, why as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            if let Some(w) = self.main_waker.get() {
                if let Err(e) = w.wake() {
                    log::error!("waking the main thread: {e}");
                }
            }
        }
    }

    /// Whether the server is stopping (workers drain once it is).
    pub fn stopping(&self) -> Option<Stop> {
        match self.stop.load(Ordering::Acquire) {
            1 => Some(Stop::Signal),
            2 => Some(Stop::Graceful),
            _ => None,
        }
    }
}

/// `-v` levels to `log` levels: warnings by default, `-v` info,
/// `-vv` debug (every command), `-vvv` trace (every state change).
pub fn level_filter(verbose: u8) -> log::LevelFilter {
    match verbose {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        2 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

/// What the settings ask for that memcached would do and this server
/// accepts but does not: a warning at start names these, since an operator
/// relying on them would otherwise not know. (Tuning options memcached
/// needs and this design does not, such as `slab_automove`, are left out.)
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
            .filter_map(|t| t.local_addr().ok())
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
        crate::VERSION,
        st.num_threads,
        st.maxbytes / (1024 * 1024)
    )
}

/// A listening socket watched by the main thread.
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// Open the sockets, start the workers and run the accept loop (which also
/// ticks the clock once a second). Returns only on a fatal error.
pub fn run(settings: Settings, auth: Option<crate::auth::AuthFile>) -> Result<(), String> {
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
    let server = Arc::new(Server {
        auth,
        ..Server::new(settings)
    });
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
    for l in listeners.tcp {
        if let Ok(a) = l.local_addr() {
            list(l.as_raw_fd(), crate::conn_list::inet_text(false, a));
        }
        socks.push(Listener::Tcp(TcpListener::from_std(l)));
    }
    if let Some(l) = listeners.unix {
        let path = server.settings.socket_path.as_deref();
        list(l.as_raw_fd(), crate::conn_list::unix_text(path));
        socks.push(Listener::Unix(UnixListener::from_std(l)));
    }
    for (i, l) in socks.iter_mut().enumerate() {
        let src: &mut dyn mio::event::Source = match l {
            Listener::Tcp(t) => t,
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
            if server.settings.lru_crawler {
                server.cache.crawl_step();
            }
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
            Listener::Tcp(t) => t.accept().map(|(s, _)| {
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
        Transport::Udp(_) => Ok(0),
    };
}
