//! Worker threads: mirrors memcached's `thread.c` (`memcached_thread_init`,
//! `worker_libevent`, `dispatch_conn_new`, `thread_libevent_process`), and
//! starts and stops the LRU crawler's thread beside them (memcached's
//! `start_item_crawler_thread`, `stop_item_crawler_thread`).
//!
//! Each worker owns a mio `Poll`, a `Waker` and a `Slab` of connections (the
//! `slab` crate: connection storage, unrelated to memcached's memory slabs).
//! The main thread hands a new connection to a worker by pushing it on the
//! worker's queue and calling `Waker::wake`; memcached writes a byte to a
//! notify pipe instead, but the idea is the same: the worker's poll returns
//! with the reserved `WAKER` token and drains the queue.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};
use slab::Slab;

use crate::conn::{Conn, Outcome, Transport};
use crate::Server;

/// The token of a worker's `Waker`; a connection's token is its slab key.
pub const WAKER: Token = Token(usize::MAX);

/// The main thread's handle on one worker.
#[derive(Debug)]
pub struct WorkerHandle {
    /// New connections for the worker (memcached's `CQ_ITEM` queue).
    queue: Arc<Mutex<VecDeque<Transport>>>,
    /// Wakes the worker's poll (memcached's notify pipe).
    waker: Arc<Waker>,
    /// The thread, joined at exit.
    pub thread: JoinHandle<()>,
}

/// All workers plus the round-robin cursor of `dispatch_conn_new`, the
/// crawler thread and the LRU maintainer thread.
#[derive(Debug)]
pub struct Workers {
    /// One handle per worker.
    pub handles: Vec<WorkerHandle>,
    /// The next worker to receive a connection.
    last_thread: usize,
    /// The LRU crawler's thread (it runs `Cache::run_crawler`), joined at
    /// exit.
    crawler: JoinHandle<()>,
    /// The LRU maintainer's thread (it runs `Cache::run_lru_maintainer`),
    /// unless `-o no_lru_maintainer`; joined at exit.
    maintainer: Option<JoinHandle<()>>,
    /// The slab mover's thread (it runs `Cache::run_mover`), when
    /// `slab_reassign` is on, joined at exit.
    mover: Option<JoinHandle<()>>,
    /// The shared state, to tell the crawler to stop.
    server: Arc<Server>,
}

impl Workers {
    /// Hand a new connection to the next worker in turn
    /// (memcached's `dispatch_conn_new`).
    pub fn dispatch_conn_new(&mut self, transport: Transport) {
        let w = &self.handles[self.last_thread];
        self.last_thread = (self.last_thread + 1) % self.handles.len();
        crate::sync::lock(&w.queue).push_back(transport);
        if let Err(e) = w.waker.wake() {
            log::error!("waking worker: {e}");
        }
    }

    /// Wake every worker to see that the server is stopping, and wait
    /// until each has drained its connections (at most
    /// [`crate::server::DRAIN_LIMIT`]) and ended.
    pub fn stop(mut self) {
        for w in &self.handles {
            if let Err(e) = w.waker.wake() {
                log::error!("waking worker: {e}");
            }
        }
        // The crawler leaves its crawl at the next batch of items.
        self.server.cache.stop_crawler();
        self.server.cache.stop_mover();
        if let Some(m) = self.mover.take() {
            if m.join().is_err() {
                log::error!("the slab mover panicked while stopping");
            }
        }
        if self.crawler.join().is_err() {
            log::error!("the LRU crawler panicked while stopping");
        }
        self.server.cache.stop_lru_maintainer();
        if self.maintainer.is_some_and(|m| m.join().is_err()) {
            log::error!("the LRU maintainer panicked while stopping");
        }
        for w in self.handles {
            if w.thread.join().is_err() {
                log::error!("a worker panicked while stopping");
            }
        }
    }
}

/// Start `n` workers. Each gets a clone of every UDP socket, as memcached
/// `dup()`s its UDP socket into every thread, or with `-o udp_reuseport`
/// its own socket of each group.
pub fn start(server: &Arc<Server>, udp: &[Vec<std::net::UdpSocket>]) -> io::Result<Workers> {
    let mut handles = Vec::new();
    for id in 0..server.settings.num_threads {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let queue = Arc::new(Mutex::new(VecDeque::new()));
        let mut conns = Slab::new();
        for group in udp {
            let clone = group[id % group.len()].try_clone()?;
            let mut conn = Conn::new(
                Transport::Udp(mio::net::UdpSocket::from_std(clone)),
                server.cache.clock().now(),
            );
            let entry = conns.vacant_entry();
            let token = Token(entry.key());
            let interest = conn.wanted_interest();
            poll.registry().register(conn.source(), token, interest)?;
            conn.list_in(&server.conn_list, server.cache.clock().now());
            entry.insert(conn);
        }
        let mut worker = Worker {
            poll,
            waker: waker.clone(),
            watchers: Vec::new(),
            queue: queue.clone(),
            conns,
            pending: Vec::new(),
            mem: server.thread_mem[id].clone(),
            server: server.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || worker.run())?;
        handles.push(WorkerHandle {
            queue,
            waker,
            thread,
        });
    }
    // One crawler thread for the server's life: `lru_crawler disable`
    // parks it, `enable` wakes it.
    let cache_owner = server.clone();
    let crawler = std::thread::Builder::new()
        .name("crawler".to_string())
        .spawn(move || cache_owner.cache.run_crawler())?;
    let maintainer = if server.cache.lru().maintainer() {
        let cache_owner = server.clone();
        Some(
            std::thread::Builder::new()
                .name("lru-maintainer".to_string())
                .spawn(move || cache_owner.cache.run_lru_maintainer())?,
        )
    } else {
        None
    };
    // The slab mover, as memcached starts its `mc-slabmaint` thread only
    // with `slab_reassign`.
    let mover = if server.settings.slab_reassign {
        let cache_owner = server.clone();
        Some(
            std::thread::Builder::new()
                .name("slab-mover".to_string())
                .spawn(move || cache_owner.cache.run_mover())?,
        )
    } else {
        None
    };
    Ok(Workers {
        handles,
        last_thread: 0,
        crawler,
        maintainer,
        mover,
        server: server.clone(),
    })
}

/// One worker's event loop state.
struct Worker {
    /// This worker's poll.
    poll: Poll,
    /// This worker's `Waker`: the main thread wakes it with new
    /// connections, other workers with log lines for its watchers.
    waker: Arc<Waker>,
    /// The tokens of its watchers, gathered when it is woken.
    watchers: Vec<usize>,
    /// Connections handed over by the main thread.
    queue: Arc<Mutex<VecDeque<Transport>>>,
    /// The connections; a token is a slab key.
    conns: Slab<Conn>,
    /// Connections that yielded after `-R` requests and must run again
    /// without waiting for readiness.
    pending: Vec<Token>,
    /// Shared server state.
    server: Arc<Server>,
    /// This worker's `-o read_buf_mem_limit` pool.
    mem: Arc<crate::conn_mem::ThreadMem>,
}

impl Worker {
    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        let idle_timeout = self.server.settings.idle_timeout;
        // With an idle timeout the loop also wakes once a second to look
        // for idle connections (memcached runs a thread for that).
        let mut tick = (idle_timeout > 0).then_some(Duration::from_secs(1));
        let mut drain_until = None;
        loop {
            if drain_until.is_none() && self.server.stopping().is_some() {
                drain_until = Some(Instant::now() + crate::server::DRAIN_LIMIT);
                tick = Some(Duration::from_millis(50));
                self.begin_drain();
            }
            if let Some(deadline) = drain_until {
                if self.conns.is_empty() {
                    return;
                }
                if Instant::now() >= deadline {
                    log::warn!(
                        "stopping: closing {} connections with replies still unsent",
                        self.conns.len()
                    );
                    return;
                }
            }
            // Parked connections run again at once: the poll only collects
            // what is ready meanwhile, and does not sleep.
            let timeout = if self.pending.is_empty() {
                tick
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // A worker that stops polling leaves every connection dealt
                // to it hanging; the process goes instead (the worker death
                // policy in docs/ARCHITECTURE.md, "Operations").
                log::error!("worker poll failed, aborting: {e}");
                std::process::abort();
            }
            // Connections parked in the last round go first, so they are
            // not starved by new events.
            let parked = std::mem::take(&mut self.pending);
            for token in parked {
                self.drive(token);
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {
                        self.accept_queued();
                        self.drive_watchers();
                    }
                    token => {
                        // New bytes may have come since the last short read.
                        if let Some(c) = self.conns.get_mut(token.0) {
                            c.readiness_event();
                            if event.is_read_closed() {
                                c.read_closed_event();
                            }
                        }
                        self.drive(token);
                    }
                }
            }
            if idle_timeout > 0 {
                self.close_idle(idle_timeout);
            }
        }
    }

    /// The server is stopping: take what the main thread queued (those
    /// clients may have sent requests already), then let every connection
    /// finish the requests it has and close. Idle ones close here.
    fn begin_drain(&mut self) {
        self.accept_queued();
        let tokens: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in tokens {
            if let Some(c) = self.conns.get_mut(key) {
                c.begin_drain();
            }
            self.drive(Token(key));
        }
    }

    /// Run this worker's watchers: another worker may have given them
    /// lines (a watcher with nothing new returns at once).
    #[inline(never)]
    fn drive_watchers(&mut self) {
        let mut tokens = std::mem::take(&mut self.watchers);
        crate::logger::LOGGER.watchers_of(&self.waker, &mut tokens);
        for &t in &tokens {
            self.drive(Token(t));
        }
        self.watchers = tokens;
    }

    /// Register every connection the main thread queued for us.
    fn accept_queued(&mut self) {
        loop {
            let next = crate::sync::lock(&self.queue).pop_front();
            let Some(transport) = next else { break };
            let mut conn = Conn::new(transport, self.server.cache.clock().now());
            conn.set_mem(&self.mem);
            if self.server.stopping().is_some() {
                conn.begin_drain();
            }
            let entry = self.conns.vacant_entry();
            let token = Token(entry.key());
            let interest = conn.wanted_interest();
            if let Err(e) = self
                .poll
                .registry()
                .register(conn.source(), token, interest)
            {
                log::warn!("register connection: {e}");
                self.server
                    .gauges
                    .curr_connections
                    .fetch_sub(1, Ordering::Relaxed);
                continue;
            }
            conn.list_in(&self.server.conn_list, self.server.cache.clock().now());
            conn.set_wake(token.0, &self.waker);
            if crate::logger::wants(crate::logger::kind::CONNEVENTS) {
                conn.log_event(true);
            }
            entry.insert(conn);
            // A client may have sent its request before we registered.
            self.drive(token);
        }
    }

    /// Close connections idle for longer than `-o idle_timeout` seconds.
    fn close_idle(&mut self, idle_timeout: u32) {
        let now = self.server.cache.clock().now();
        let idle: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_idle(now, idle_timeout))
            .map(|(k, _)| k)
            .collect();
        for key in idle {
            log::info!("closing idle connection {key}");
            self.server.stats.idle_kicks.fetch_add(1, Ordering::Relaxed);
            if let Some(c) = self.conns.get_mut(key) {
                c.closing_idle();
            }
            self.close(Token(key));
        }
    }

    fn close(&mut self, token: Token) {
        let mut conn = self.conns.remove(token.0);
        if crate::logger::wants(crate::logger::kind::CONNEVENTS) {
            conn.log_event(false);
        }
        conn.say_goodbye();
        conn.sync_read_buf(&self.server.gauges, true);
        conn.release_mem(&self.server);
        self.server.conn_list.remove(conn.fd());
        if let Err(e) = self.poll.registry().deregister(conn.source()) {
            log::warn!("deregister connection {}: {e}", token.0);
        }
        self.server
            .gauges
            .curr_connections
            .fetch_sub(1, Ordering::Relaxed);
        log::debug!("connection {} closed", token.0);
    }

    #[inline(always)]
    fn drive(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        let outcome = conn.drive_machine(&self.server);
        if outcome != Outcome::Close {
            // A UDP connection's queue may have filled or drained, whether
            // it waits now or yielded.
            if let Some(interest) = conn.interest_change() {
                if let Err(e) = self
                    .poll
                    .registry()
                    .reregister(conn.source(), token, interest)
                {
                    // Without the registration the connection would wait
                    // for an edge that never comes.
                    log::warn!("reregister connection: {e}");
                    self.close(token);
                    return;
                }
            }
        }
        match outcome {
            Outcome::Idle => {}
            Outcome::Yield => {
                if !self.pending.contains(&token) {
                    self.pending.push(token);
                }
            }
            Outcome::Close => self.close(token),
        }
    }
}
