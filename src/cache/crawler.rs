//! The LRU crawler: mirrors memcached's `crawler.c` (`item_crawler_thread`,
//! `lru_crawler_crawl`, `crawler_expired_eval`) and the crawler settings
//! `process_lru_crawler_command` changes.
//!
//! memcached's crawler is a thread that walks an LRU from its tail towards
//! its head, past a fake "crawler item" it links into the list to keep its
//! place while it unlocks, and frees the expired and flushed items it
//! meets. Here the crawler thread (started with the workers, see
//! `thread.rs`) does two things:
//!
//! - **On demand** (`lru_crawler crawl <classes|all>`): one pass over the
//!   LRUs of the classes asked for, in every shard, tail first. It keeps
//!   its place across an unlock by remembering the next item and its last
//!   bump and CAS; if that item was bumped, removed or replaced meanwhile,
//!   the walk of that LRU ends there, as memcached's would meet the head
//!   sooner. A walk looks at most at the items its LRU held when it began
//!   (or `tocrawl` of them), so items bumped ahead of it cannot keep it
//!   going forever.
//! - **In the background**, once a second while enabled: the same walk
//!   over every class of whole shards in turn, until it has looked at
//!   [`AUTO_ITEMS`] items or at every shard. So a cache of up to that many
//!   items is swept every second, and a larger one within `SHARDS`
//!   seconds, even when nothing touches the dead keys, at a cost of about
//!   a millisecond of this thread's time a second. memcached's LRU
//!   maintainer schedules such "autocrawls" from a histogram of the TTLs it
//!   met; these are not counted in `lru_crawler_starts` and never make a
//!   `crawl` command `BUSY`.
//!
//! Either way the shard is locked for at most [`CRAWLS_PER_SLEEP`] items,
//! after which the crawler sleeps `lru_crawler_sleep` microseconds
//! (memcached's `crawls_persleep` and `lru_crawler_sleep`), and `tocrawl`
//! caps the items looked at in each LRU (a class's walk in a shard goes
//! through its four segments in turn here, where memcached counts each
//! segment on its own).
//!
//! `lru_crawler disable` parks the thread rather than ending it (a crawl
//! already accepted still runs); `enable` wakes it. The metadump is not
//! run by this thread: see `metadump.rs`.
//!
//! This file holds what the commands and the thread share: the settings,
//! the counters and the thread's mailbox ([`Crawler`]). The walks are in
//! `crawl.rs`.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::sync::{lock, wait, wait_timeout};

/// Items looked at per lock of a shard, before the crawler sleeps
/// (memcached's `crawls_persleep` default).
pub const CRAWLS_PER_SLEEP: u64 = 1000;

/// How often the background pass runs.
pub const AUTO_EVERY: Duration = Duration::from_secs(1);

/// Items the background pass looks at each time, at least: it crawls whole
/// shards in turn until it has looked at this many (or at every shard).
pub const AUTO_ITEMS: usize = 65_536;

/// A set of slab class ids (1 to 63, memcached's `POWER_SMALLEST` to
/// `MAX_NUMBER_OF_SLAB_CLASSES - 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClassSet(u64);

impl ClassSet {
    /// Every class.
    pub const ALL: ClassSet = ClassSet(!1);

    /// Add class `id` (ids over 63 are ignored).
    pub fn insert(&mut self, id: usize) {
        if id < 64 {
            self.0 |= 1 << id;
        }
    }

    /// Whether class `id` is in the set.
    pub fn contains(&self, id: usize) -> bool {
        id < 64 && self.0 & (1 << id) != 0
    }

    /// Whether the set holds no class.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
}

/// What `lru_crawler crawl` got (memcached's `enum crawler_result_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrawlStart {
    /// The crawl is queued for the crawler thread.
    Ok,
    /// A crawl asked for earlier has not finished.
    Busy,
    /// No class to crawl.
    NotStarted,
}

/// What a crawl asked of the crawler thread.
#[derive(Debug, Default)]
struct Queue {
    /// The classes of the crawl asked for and not yet begun.
    request: Option<ClassSet>,
}

/// The crawler thread's next piece of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// A crawl asked for, over these classes of every shard.
    Crawl(ClassSet),
    /// The background pass over the next shard.
    Background,
    /// The server is stopping: end the thread.
    Stop,
}

/// The crawler's settings and state, shared by the commands (any worker)
/// and the crawler thread.
#[derive(Debug)]
pub struct Crawler {
    /// `settings.lru_crawler`: whether the background pass runs and
    /// crawls and metadumps are accepted. Set by `-o lru_crawler` /
    /// `no_lru_crawler` and `lru_crawler enable|disable`.
    enabled: AtomicBool,
    /// `lru_crawler_sleep`: microseconds slept after each
    /// [`CRAWLS_PER_SLEEP`] items.
    sleep_us: AtomicU32,
    /// `lru_crawler_tocrawl`: items looked at per LRU and pass, 0 = all.
    tocrawl: AtomicU32,
    /// An on-demand crawl is queued or running (`lru_crawler_running`).
    running: AtomicBool,
    /// Crawls and metadumps started (`lru_crawler_starts`).
    starts: AtomicU64,
    /// The server is stopping: the thread ends at its next step.
    stop: AtomicBool,
    /// The crawl asked for; the thread waits on `wake` for it.
    queue: Mutex<Queue>,
    /// Signalled when a crawl is asked for, the crawler is enabled, or
    /// the server stops.
    wake: Condvar,
}

impl Crawler {
    /// A crawler as the settings start it.
    pub fn new(enabled: bool, sleep_us: u32, tocrawl: u32) -> Crawler {
        Crawler {
            enabled: AtomicBool::new(enabled),
            sleep_us: AtomicU32::new(sleep_us),
            tocrawl: AtomicU32::new(tocrawl),
            running: AtomicBool::new(false),
            starts: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        }
    }

    /// Whether the crawler is enabled (`stats settings` `lru_crawler`).
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// `lru_crawler enable`: false if it already was (memcached then
    /// fails to start a second thread).
    pub fn enable(&self) -> bool {
        let _q = lock(&self.queue);
        let was = self.enabled.swap(true, Ordering::Relaxed);
        self.wake.notify_all();
        !was
    }

    /// `lru_crawler disable`: the background pass stops; a crawl already
    /// accepted still runs, as memcached's thread finishes its crawl.
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::Relaxed);
    }

    /// `lru_crawler_sleep` in microseconds.
    pub fn sleep_us(&self) -> u32 {
        self.sleep_us.load(Ordering::Relaxed)
    }

    /// `lru_crawler sleep <us>` (the caller checks the bound).
    pub fn set_sleep_us(&self, us: u32) {
        self.sleep_us.store(us, Ordering::Relaxed);
    }

    /// `lru_crawler_tocrawl`.
    pub fn tocrawl(&self) -> u32 {
        self.tocrawl.load(Ordering::Relaxed)
    }

    /// `lru_crawler tocrawl <n>`.
    pub fn set_tocrawl(&self, n: u32) {
        self.tocrawl.store(n, Ordering::Relaxed);
    }

    /// Whether an on-demand crawl is queued or running.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// Crawls and metadumps started (`lru_crawler_starts`).
    pub fn starts(&self) -> u64 {
        self.starts.load(Ordering::Relaxed)
    }

    /// Count one more start.
    pub fn count_start(&self) {
        self.starts.fetch_add(1, Ordering::Relaxed);
    }

    /// `stats reset`.
    pub fn reset(&self) {
        self.starts.store(0, Ordering::Relaxed);
    }

    /// Whether the server is stopping.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// `lru_crawler crawl`: queue a crawl of `classes` for the thread
    /// (memcached's `lru_crawler_start`).
    pub fn request(&self, classes: ClassSet) -> CrawlStart {
        let mut q = lock(&self.queue);
        if self.running() {
            return CrawlStart::Busy;
        }
        if classes.is_empty() {
            return CrawlStart::NotStarted;
        }
        q.request = Some(classes);
        self.running.store(true, Ordering::Relaxed);
        self.count_start();
        self.wake.notify_all();
        CrawlStart::Ok
    }

    /// The crawler thread waits here for its next job: a crawl asked for
    /// (taken even while disabled: it was accepted before), the server's
    /// stop, or, while enabled, the time `background` for the background
    /// pass.
    pub fn next_job(&self, background: Instant) -> Job {
        let mut q = lock(&self.queue);
        loop {
            if self.stopping() {
                return Job::Stop;
            }
            if let Some(classes) = q.request.take() {
                return Job::Crawl(classes);
            }
            let now = Instant::now();
            if !self.enabled() {
                q = wait(&self.wake, q);
            } else if now >= background {
                return Job::Background;
            } else {
                q = wait_timeout(&self.wake, q, background - now);
            }
        }
    }

    /// The crawl asked for is over: another may be asked for.
    pub fn crawl_done(&self) {
        self.running.store(false, Ordering::Relaxed);
    }

    /// Tell the thread to end, waking it wherever it waits.
    pub fn stop(&self) {
        let _q = lock(&self.queue);
        self.stop.store(true, Ordering::Release);
        self.wake.notify_all();
    }

    /// Sleep `lru_crawler_sleep` between two batches, waking early when
    /// the server stops. Returns false when it does.
    pub fn pause(&self) -> bool {
        let us = self.sleep_us();
        if us > 0 {
            let q = lock(&self.queue);
            if !self.stopping() {
                drop(wait_timeout(
                    &self.wake,
                    q,
                    Duration::from_micros(us.into()),
                ));
            }
        }
        !self.stopping()
    }
}

#[cfg(test)]
mod tests;
