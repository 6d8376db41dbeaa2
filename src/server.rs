//! The state every thread shares: memcached's globals (`settings`,
//! `stats`, `stats_state`, the per-thread memory pools) gathered in one
//! struct. The main thread's accept loop, which starts the workers and
//! hands them connections, is in [`crate::accept`].

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mio::Waker;

use crate::cache::Cache;
use crate::clock::Clock;
use crate::counters::{Gauges, Stats};
use crate::settings::Settings;
use crate::stats_prefix::PrefixStats;

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
    pub(crate) main_waker: OnceLock<Waker>,
    /// Every open socket, for `stats conns`.
    pub conn_list: crate::conn_list::ConnList,
    /// Each worker's pool for `-o read_buf_mem_limit`, by worker id.
    pub thread_mem: Vec<Arc<crate::conn_mem::ThreadMem>>,
    /// The `-Y` file: stream connections must authenticate first.
    pub auth: Option<crate::auth::AuthFile>,
    /// TLS (`-Z`): the configuration new TLS connections start from.
    pub tls: Option<Arc<crate::tls::TlsContext>>,
    /// SASL (`-S`): the library, loaded and initialised once per process
    /// before the workers start.
    pub sasl: Option<&'static crate::sasl::Sasl>,
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
            tls: None,
            sasl: None,
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
