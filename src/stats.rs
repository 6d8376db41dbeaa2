//! The `stats` reports: mirrors memcached's `server_stats()`,
//! `process_stat_settings()`, `do_item_stats()` and `do_slabs_stats()`.
//! They read the whole shared state, so they answer the protocols through
//! the [`Admin`] hook rather than being called by them directly. The
//! counters they print are in [`crate::counters`]; the field names and
//! their order in the reply are memcached 1.6's, so tools that scrape
//! `stats` keep working.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::proto::ctx::{Admin, Ctx, Report};
use crate::server::Server;
use crate::settings::{InertGroup, Protocol, Settings};

fn stat(out: &mut Vec<u8>, name: &str, value: impl std::fmt::Display) {
    let mut line = String::with_capacity(48);
    let _ = write!(line, "STAT {name} {value}\r\n");
    out.extend_from_slice(line.as_bytes());
}

fn rusage() -> (String, String) {
    // SAFETY: getrusage only writes into the zeroed struct we pass it.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let f = |t: libc::timeval| format!("{}.{:06}", t.tv_sec, t.tv_usec);
    (f(ru.ru_utime), f(ru.ru_stime))
}

/// The general `stats` section (memcached's `server_stats` + `get_stats`),
/// ending with `END`.
pub fn general(server: &Server, out: &mut Vec<u8>) {
    let s = &server.stats;
    let g = &server.gauges;
    let c = &server.cache.stats;
    let now = server.cache.clock().now();
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let (user, system) = rusage();
    stat(out, "pid", std::process::id());
    stat(out, "uptime", now);
    stat(
        out,
        "time",
        server.cache.clock().process_started() + i64::from(now),
    );
    stat(out, "version", crate::settings::VERSION);
    stat(out, "libevent", "mio");
    stat(out, "pointer_size", usize::BITS);
    stat(out, "rusage_user", user);
    stat(out, "rusage_system", system);
    stat(out, "max_connections", server.settings.maxconns);
    stat(out, "curr_connections", get(&g.curr_connections));
    stat(out, "total_connections", get(&s.total_connections));
    if server.settings.maxconns_fast {
        stat(out, "rejected_connections", get(&s.rejected_connections));
    }
    stat(out, "connection_structures", get(&g.connection_structures));
    // memcached's response objects are counted only under
    // `-o read_buf_mem_limit` (see `conn_mem`); there is no pool of free
    // read buffers: each connection owns its read buffer.
    let pools = &server.thread_mem;
    let sum =
        |f: &dyn Fn(&crate::conn_mem::ThreadMem) -> u64| pools.iter().map(|m| f(m)).sum::<u64>();
    stat(out, "response_obj_oom", sum(&|m| get(&m.response_obj_oom)));
    stat(
        out,
        "response_obj_count",
        sum(&|m| get(&m.response_obj_count)),
    );
    stat(
        out,
        "response_obj_bytes",
        sum(&|m| m.response_bytes() as u64),
    );
    stat(out, "read_buf_count", get(&g.read_buf_count));
    stat(out, "read_buf_bytes", get(&g.read_buf_bytes));
    stat(out, "read_buf_bytes_free", 0);
    stat(out, "read_buf_oom", sum(&|m| get(&m.read_buf_oom)));
    // No descriptors are set aside from `-c` (see docs/ARCHITECTURE.md).
    stat(out, "reserved_fds", 0);
    for (name, v) in [
        ("cmd_get", &s.cmd_get),
        ("cmd_set", &s.cmd_set),
        ("cmd_flush", &s.cmd_flush),
        ("cmd_touch", &s.cmd_touch),
        ("cmd_meta", &s.cmd_meta),
        ("get_hits", &s.get_hits),
        ("get_misses", &s.get_misses),
        ("get_expired", &c.get_expired),
        ("get_flushed", &c.get_flushed),
        ("delete_misses", &s.delete_misses),
        ("delete_hits", &s.delete_hits),
        ("incr_misses", &s.incr_misses),
        ("incr_hits", &s.incr_hits),
        ("decr_misses", &s.decr_misses),
        ("decr_hits", &s.decr_hits),
        ("cas_misses", &s.cas_misses),
        ("cas_hits", &s.cas_hits),
        ("cas_badval", &s.cas_badval),
        ("touch_hits", &s.touch_hits),
        ("touch_misses", &s.touch_misses),
        ("store_too_large", &s.store_too_large),
        ("store_no_memory", &s.store_no_memory),
    ] {
        stat(out, name, get(v));
    }
    stat(out, "auth_cmds", get(&s.auth_cmds));
    stat(out, "auth_errors", get(&s.auth_errors));
    if server.settings.idle_timeout > 0 {
        stat(out, "idle_kicks", get(&s.idle_kicks));
    }
    stat(out, "bytes_read", get(&s.bytes_read));
    stat(out, "bytes_written", get(&s.bytes_written));
    stat(out, "limit_maxbytes", server.cache.limit());
    stat(out, "accepting_conns", 1);
    stat(out, "listen_disabled_num", 0);
    stat(out, "time_in_listen_disabled_us", 0);
    stat(out, "threads", server.settings.num_threads);
    stat(out, "conn_yields", get(&s.conn_yields));
    let (hash_power, hash_bytes) = server.cache.hash_stats();
    stat(out, "hash_power_level", hash_power);
    stat(out, "hash_bytes", hash_bytes);
    // memcached machinery that has no counterpart here (hash expansion,
    // the logger's worker buffers): the names are kept so that tools
    // scraping `stats` find them, at 0, under the same settings memcached
    // shows them under. The slab mover never meets a busy item (see
    // `cache::mover`), so its busy counters stay 0.
    let st = &server.settings;
    stat(out, "hash_is_expanding", 0);
    if st.slab_reassign {
        let m = &server.cache.mover().stats;
        for (name, v) in [
            ("slab_reassign_rescues", get(&m.rescues)),
            ("slab_reassign_chunk_rescues", get(&m.chunk_rescues)),
            ("slab_reassign_evictions_nomem", get(&m.evictions_nomem)),
            ("slab_reassign_inline_reclaim", 0),
            ("slab_reassign_busy_items", 0),
            ("slab_reassign_busy_deletes", 0),
            (
                "slab_reassign_running",
                u64::from(m.running.load(Ordering::Relaxed)),
            ),
            ("slabs_moved", get(&m.slabs_moved)),
        ] {
            stat(out, name, v);
        }
    }
    let crawler = server.cache.crawler();
    if crawler.enabled() {
        stat(out, "lru_crawler_running", u8::from(crawler.running()));
        stat(out, "lru_crawler_starts", crawler.starts());
    }
    if st.lru_maintainer_thread {
        let juggles = &server.cache.lru().juggles;
        stat(out, "lru_maintainer_juggles", get(juggles));
    }
    for name in ZERO_FIELDS_MID {
        // memcached shows its TLS counters after `log_watchers`.
        if *name == "unexpected_napi_ids" {
            if let Some(tls) = &server.tls {
                if tls.session_cache() {
                    stat(out, "ssl_new_sessions", get(&tls.new_sessions));
                }
                stat(out, "ssl_handshake_errors", get(&tls.handshake_errors));
                stat(
                    out,
                    "time_since_server_cert_refresh",
                    tls.since_refresh(now),
                );
            }
        }
        if let Some(v) = logger_stat(name) {
            stat(out, name, v);
            continue;
        }
        stat(out, name, 0);
    }
    stat(out, "bytes", c.bytes.load(Ordering::Relaxed));
    stat(out, "curr_items", get(&c.curr_items));
    stat(out, "total_items", get(&c.total_items));
    stat(
        out,
        "slab_global_page_pool",
        server.cache.ledger().pool() as u64,
    );
    stat(out, "expired_unfetched", get(&c.expired_unfetched));
    stat(out, "evicted_unfetched", get(&c.evicted_unfetched));
    let t = server.cache.class_totals();
    if st.lru_maintainer_thread {
        stat(out, "evicted_active", t.evicted_active);
    }
    stat(out, "evictions", get(&c.evictions));
    stat(out, "reclaimed", get(&c.reclaimed));
    stat(out, "crawler_reclaimed", t.crawler_reclaimed);
    stat(out, "crawler_items_checked", t.crawler_items_checked);
    stat(out, "lrutail_reflocked", 0);
    if st.lru_maintainer_thread {
        stat(out, "moves_to_cold", t.moves_to_cold);
        stat(out, "moves_to_warm", t.moves_to_warm);
        stat(out, "moves_within_lru", t.moves_within_lru);
        stat(out, "direct_reclaims", t.direct_reclaims);
        // A fetch in COLD moves its item at once (see `cache::lru`):
        // there is no bump buffer to drop from.
        stat(out, "lru_bumps_dropped", 0);
    }
    out.extend_from_slice(b"END\r\n");
}

/// `stats rmemcached`: this server's own counters, kept out of the general
/// `stats` so that it lists memcached's names only (tools and memcached's
/// own t/stats.t count them): the UDP guard (`udp_guard`), and the pools
/// for what clients make the server hold (`mem_budget`): bytes charged
/// now, and charges refused.
pub fn own(server: &Server, out: &mut Vec<u8>) {
    let s = &server.stats;
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    for (name, v) in [
        ("udp_requests", &s.udp_requests),
        ("udp_replies", &s.udp_replies),
        ("udp_dropped_disallowed", &s.udp_dropped_disallowed),
        ("udp_dropped_rate", &s.udp_dropped_rate),
        ("udp_multipacket_rejected", &s.udp_multipacket_rejected),
        ("udp_short_dropped", &s.udp_short_dropped),
    ] {
        stat(out, name, get(v));
    }
    // The bytes items really take (shard pages and large items), which
    // with `hash_bytes` stay within `-m`; `total_malloced` counts the
    // ledger's slab pages instead, as memcached's does.
    stat(out, "item_malloced", server.cache.item_malloced() as u64);
    for (name, pool) in [
        ("reply_pool", &*server.reply_pool),
        ("inflight_pool", &server.inflight),
    ] {
        stat(out, &format!("{name}_bytes"), pool.used() as u64);
        stat(out, &format!("{name}_oom"), get(&pool.refused));
    }
    out.extend_from_slice(b"END\r\n");
}

/// The logger's counters (`log_*`), by name.
fn logger_stat(name: &str) -> Option<u64> {
    let l = crate::logger::LOGGER.stats();
    Some(match name {
        "log_worker_dropped" => l.worker_dropped,
        "log_worker_written" => l.worker_written,
        "log_watcher_skipped" => l.watcher_skipped,
        "log_watcher_sent" => l.watcher_sent,
        "log_watchers" => l.watchers,
        _ => return None,
    })
}

/// Fields of memcached's general stats after the LRU ones: most describe
/// machinery rmemcached does not have (0); the `log_*` ones are the
/// logger's.
const ZERO_FIELDS_MID: &[&str] = &[
    "malloc_fails",
    "log_worker_dropped",
    "log_worker_written",
    "log_watcher_skipped",
    "log_watcher_sent",
    "log_watchers",
    "unexpected_napi_ids",
    "round_robin_fallback",
];

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// What `stats settings` shows that commands change at run time.
#[derive(Debug, Clone, Copy)]
pub struct LiveSettings {
    /// `verbosity`.
    pub verbose: u8,
    /// `cache_memlimit`.
    pub maxbytes: usize,
    /// `stats detail on|off`.
    pub detail_enabled: bool,
    /// `lru_crawler enable|disable`.
    pub lru_crawler: bool,
    /// `lru_crawler sleep`.
    pub lru_crawler_sleep: u32,
    /// `lru_crawler tocrawl`.
    pub lru_crawler_tocrawl: u32,
    /// `stats sizes_enable|sizes_disable` (`track_sizes`).
    pub track_sizes: bool,
    /// `lru mode`, `lru temp_ttl`, `lru tune`.
    pub lru: crate::cache::lru::LruTuning,
}

/// `stats settings` (memcached's `process_stat_settings`), ending with `END`.
pub fn settings(st: &Settings, live: LiveSettings, out: &mut Vec<u8>) {
    let LiveSettings {
        verbose,
        maxbytes,
        detail_enabled,
        ..
    } = live;
    // maxbytes is the live limit: `cache_memlimit` changes it.
    stat(out, "maxbytes", maxbytes);
    stat(out, "maxconns", st.maxconns);
    stat(out, "tcpport", st.port);
    stat(out, "udpport", st.udp_port);
    stat(out, "inter", st.inter.as_deref().unwrap_or("NULL"));
    stat(out, "verbosity", verbose);
    stat(out, "oldest", 0);
    stat(
        out,
        "evictions",
        if st.evict_to_free { "on" } else { "off" },
    );
    let sock = st.socket_path.as_ref().map(|p| p.display().to_string());
    stat(out, "domain_socket", sock.as_deref().unwrap_or("NULL"));
    stat(out, "umask", format_args!("{:o}", st.access_mask));
    stat(out, "shutdown_command", yes_no(st.shutdown_command));
    stat(out, "growth_factor", format_args!("{:.2}", st.factor));
    stat(out, "chunk_size", st.chunk_size);
    stat(out, "num_threads", st.num_threads);
    stat(out, "num_threads_per_udp", st.num_threads);
    stat(out, "stat_key_prefix", st.prefix_delimiter as char);
    stat(out, "detail_enabled", yes_no(detail_enabled));
    stat(out, "reqs_per_event", st.reqs_per_event);
    stat(out, "cas_enabled", yes_no(st.use_cas));
    stat(out, "tcp_backlog", st.backlog);
    let proto = match st.binding_protocol {
        Protocol::Auto => "auto-negotiate",
        Protocol::Ascii => "ascii",
        Protocol::Binary => "binary",
    };
    stat(out, "binding_protocol", proto);
    stat(out, "auth_enabled_sasl", if st.sasl { "yes" } else { "no" });
    match &st.auth_file {
        Some(f) => stat(out, "auth_enabled_ascii", f.display()),
        None => stat(out, "auth_enabled_ascii", "no"),
    }
    stat(out, "item_size_max", st.item_size_max);
    stat(out, "maxconns_fast", yes_no(st.maxconns_fast));
    stat(out, "hashpower_init", st.hashpower_init);
    let inert = |group, out: &mut Vec<u8>| {
        for (name, value) in st.inert_settings(group) {
            if name == "track_sizes" {
                stat(out, name, yes_no(live.track_sizes));
            } else {
                stat(out, name, value);
            }
        }
    };
    stat(out, "slab_reassign", yes_no(st.slab_reassign));
    inert(InertGroup::SlabMover, out);
    stat(out, "slab_chunk_max", st.slab_chunk_size_max);
    stat(out, "lru_crawler", yes_no(live.lru_crawler));
    stat(out, "lru_crawler_sleep", live.lru_crawler_sleep);
    stat(out, "lru_crawler_tocrawl", live.lru_crawler_tocrawl);
    inert(InertGroup::Crawler, out);
    stat(out, "flush_enabled", yes_no(st.flush_enabled));
    stat(out, "dump_enabled", yes_no(st.dump_enabled));
    inert(InertGroup::Hash, out);
    stat(
        out,
        "lru_maintainer_thread",
        yes_no(st.lru_maintainer_thread),
    );
    let lru = live.lru;
    stat(out, "lru_segmented", yes_no(lru.segmented));
    stat(out, "hot_lru_pct", lru.hot_pct);
    stat(out, "warm_lru_pct", lru.warm_pct);
    stat(out, "hot_max_factor", format_args!("{:.2}", lru.hot_factor));
    stat(
        out,
        "warm_max_factor",
        format_args!("{:.2}", lru.warm_factor),
    );
    stat(out, "temp_lru", yes_no(lru.temp_lru));
    stat(out, "temporary_ttl", lru.temporary_ttl);
    stat(out, "idle_timeout", st.idle_timeout);
    inert(InertGroup::Logger, out);
    stat(out, "read_buf_mem_limit", st.read_buf_mem_limit);
    inert(InertGroup::Tail, out);
    stat(out, "udp_reuseport", yes_no(st.udp_reuseport));
    match &st.udp_allow {
        crate::udp_guard::UdpAllow::Any => stat(out, "udp_allow", "any"),
        crate::udp_guard::UdpAllow::Nets(nets) => {
            let list: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
            stat(out, "udp_allow", list.join(";"));
        }
    }
    stat(out, "udp_reply_rate", st.udp_reply_rate);
    out.extend_from_slice(b"END\r\n");
}

/// `stats items`, `stats slabs`, `stats sizes`, `stats conns`.
pub fn group(server: &Server, name: &[u8], out: &mut Vec<u8>) {
    match name {
        b"items" => items(server, out),
        b"slabs" => slabs(server, out),
        b"sizes" => match server.cache.sizes.report() {
            Some(buckets) => {
                for (size, n) in buckets {
                    stat(out, &size.to_string(), n);
                }
            }
            None => stat(out, "sizes_status", "disabled"),
        },
        b"conns" => server.conn_list.write(server.cache.clock().now(), out),
        _ => {}
    }
    out.extend_from_slice(b"END\r\n");
}

/// `stats items` (memcached's `do_item_stats`): one block per class that
/// holds items, each figure summed over the shards (ages: the oldest
/// tail of any shard). The segments' figures are shown while the LRU
/// maintainer runs, TEMP's while `temp_lru` is on, as in memcached.
fn items(server: &Server, out: &mut Vec<u8>) {
    use crate::cache::lru::{COLD, HOT, TEMP, WARM};
    let maintainer = server.settings.lru_maintainer_thread;
    let temp_lru = server.cache.lru().tuning().temp_lru;
    for (class, r) in server.cache.class_reports().iter().enumerate() {
        let s = &r.stats;
        if s.number == 0 {
            continue;
        }
        let mut f = |name: &str, v: u64| stat(out, &format!("items:{class}:{name}"), v);
        f("number", s.number);
        if maintainer {
            f("number_hot", r.seg_number[HOT]);
            f("number_warm", r.seg_number[WARM]);
            f("number_cold", r.seg_number[COLD]);
            if temp_lru {
                f("number_temp", r.seg_number[TEMP]);
            }
            f("age_hot", r.age_hot.into());
            f("age_warm", r.age_warm.into());
        }
        f("age", r.age.into());
        f("mem_requested", s.requested);
        f("evicted", s.evicted);
        f("evicted_nonzero", s.evicted_nonzero);
        f("evicted_time", s.evicted_time.into());
        f("outofmemory", s.outofmemory);
        f("tailrepairs", 0);
        f("reclaimed", s.reclaimed);
        f("expired_unfetched", s.expired_unfetched);
        f("evicted_unfetched", s.evicted_unfetched);
        if maintainer {
            f("evicted_active", s.evicted_active);
        }
        f("crawler_reclaimed", s.crawler_reclaimed);
        f("crawler_items_checked", s.crawler_items_checked);
        f("lrutail_reflocked", 0);
        if maintainer {
            f("moves_to_cold", s.moves_to_cold);
            f("moves_to_warm", s.moves_to_warm);
            f("moves_within_lru", s.moves_within_lru);
            f("direct_reclaims", s.direct_reclaims);
            f("hits_to_hot", s.hits[HOT]);
            f("hits_to_warm", s.hits[WARM]);
            f("hits_to_cold", s.hits[COLD]);
            f("hits_to_temp", s.hits[TEMP]);
        }
    }
}

/// `stats slabs` (memcached's `do_slabs_stats`): one block per class that
/// owns slab pages, then the totals. Pages, chunks per page and
/// `total_malloced` are the ledger's (`cache::ledger`): memcached's
/// `slab_page_size` pages, which the class's real memory is charged
/// against; used chunks are the class's items.
fn slabs(server: &Server, out: &mut Vec<u8>) {
    let classes = server.cache.classes();
    let ledger = server.cache.ledger();
    let mut active = 0;
    for (class, r) in server.cache.class_reports().iter().enumerate() {
        let s = &r.stats;
        let pages = ledger.owned(class) as u64;
        if class == 0 || pages == 0 {
            continue;
        }
        active += 1;
        let per_page = (ledger.page() / classes.size(class)).max(1) as u64;
        let chunks = pages * per_page;
        let mut f = |name: &str, v: u64| stat(out, &format!("{class}:{name}"), v);
        f("chunk_size", classes.size(class) as u64);
        f("chunks_per_page", per_page);
        f("total_pages", pages);
        f("total_chunks", chunks);
        f("used_chunks", s.number);
        f("free_chunks", chunks.saturating_sub(s.number));
        f("free_chunks_end", 0);
        f("get_hits", s.get_hits());
        f("cmd_set", s.cmd_set);
        f("delete_hits", s.delete_hits);
        f("incr_hits", s.incr_hits);
        f("decr_hits", s.decr_hits);
        f("cas_hits", s.cas_hits);
        f("cas_badval", s.cas_badval);
        f("touch_hits", s.touch_hits);
    }
    stat(out, "active_slabs", active);
    stat(out, "total_malloced", server.cache.total_malloced());
}

impl Server {
    /// The server as the protocols see it (see [`crate::proto::ctx`]).
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx {
            cache: &self.cache,
            stats: &self.stats,
            prefix: &self.prefix,
            settings: &self.settings,
            sasl: self.sasl,
            admin: self,
        }
    }
}

/// The protocols reach the reports, and the verbosity, through this.
impl Admin for Server {
    fn report(&self, which: Report, out: &mut Vec<u8>) {
        match which {
            Report::General => general(self, out),
            Report::Settings => {
                let crawler = self.cache.crawler();
                let live = LiveSettings {
                    verbose: self.verbosity(),
                    maxbytes: self.cache.limit(),
                    detail_enabled: self.prefix.enabled(),
                    lru_crawler: crawler.enabled(),
                    lru_crawler_sleep: crawler.sleep_us(),
                    lru_crawler_tocrawl: crawler.tocrawl(),
                    track_sizes: self.cache.sizes.enabled(),
                    lru: self.cache.lru().tuning(),
                };
                settings(&self.settings, live, out)
            }
            Report::Items => group(self, b"items", out),
            Report::Slabs => group(self, b"slabs", out),
            Report::Sizes => group(self, b"sizes", out),
            Report::Conns => group(self, b"conns", out),
            Report::Own => own(self, out),
        }
    }

    fn verbosity(&self) -> u8 {
        Server::verbosity(self)
    }

    fn set_verbosity(&self, level: u32) {
        Server::set_verbosity(self, level)
    }

    fn refresh_certs(&self) -> Result<(), String> {
        match &self.tls {
            Some(tls) => tls.refresh(self.cache.clock().now()),
            None => Err("Error TLS not enabled\r\n".to_string()),
        }
    }
}
