//! The logger behind `watch`: mirrors memcached's `logger.c`, without its
//! logger thread.
//!
//! memcached's workers write binary entries into a buffer of their own
//! (`worker_logbuf_size`), and a logger thread, waking every 1 ms to 1 s,
//! renders them into each watcher's buffer (`watcher_logbuf_size`) and
//! writes them to the watchers' sockets, which it has taken over from the
//! workers. Here a worker that logs an event renders the line at once and
//! appends it to the buffer of every watcher that wants it; the watcher's
//! connection stays with its own worker, which is woken through its mio
//! `Waker` when its watcher's buffer stops being empty, and writes the
//! buffer out like any reply. So there is one buffer per watcher and none
//! per worker (`worker_logbuf_size` is accepted and shown, and has no
//! effect; `log_worker_dropped` stays 0), lines reach an idle server's
//! watchers at once, and nothing polls.
//!
//! A watcher's buffer is bounded: a line that does not fit (with room for
//! memcached's `skipped=N` line beside it) is skipped and counted, and the
//! next line that fits is preceded by `skipped=N`. A worker never waits
//! for a watcher: it holds the watcher's lock only to copy a line in.
//!
//! When nobody watches, an event costs one relaxed load of
//! the logger's flags ([`wants`]).
//!
//! | file | holds | memcached |
//! | --- | --- | --- |
//! | `mod.rs` | the watchers, their buffers, the counters | `logger_add_watcher`, `logger_thread_write_entry`, `logger_set_flags` |
//! | [`mod@line`] | the lines | `_logger_parse_ige`, `_logger_parse_ise`, `_logger_parse_ee`, `_logger_parse_cne`, `_logger_parse_cce`, `uriencode` |

pub mod line;

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use mio::Waker;

pub use line::{CloseReason, Found, Transport};
use line::{Line, LINE_MAX};

/// Event kinds, memcached's `LOG_*` bits (`watch` arguments).
pub mod kind {
    /// `sysevents`: memcached's LRU maintainer and slab mover report here;
    /// rmemcached has neither, so nothing is logged.
    pub const SYSEVENTS: u32 = 1 << 1;
    /// `fetchers`: every item lookup.
    pub const FETCHERS: u32 = 1 << 2;
    /// `mutations`: every store.
    pub const MUTATIONS: u32 = 1 << 3;
    /// `connevents`: connections opened and closed.
    pub const CONNEVENTS: u32 = 1 << 5;
    /// `evictions`: items evicted to make room.
    pub const EVICTIONS: u32 = 1 << 6;
    /// `rawcmds`: accepted; memcached 1.6.18 logs nothing of this kind.
    pub const RAWCMDS: u32 = 1 << 9;
    /// `proxyreqs`, `proxyevents`, `proxyuser`: memcached's proxy; accepted,
    /// nothing logged.
    pub const PROXY: u32 = (1 << 10) | (1 << 11) | (1 << 12);
}

/// The most watchers at once (memcached's `WATCHER_LIMIT`).
pub const WATCHER_LIMIT: usize = 20;

/// Room a line needs in a watcher's buffer beyond its own length: a
/// `skipped=N` line may have to go before it (memcached asks the same).
const SKIP_ROOM: usize = 128;

/// The event kinds named by `watch`'s arguments; `None` for an unknown
/// name (memcached answers `ERROR`). No argument means `fetchers`.
pub fn parse_kinds<'a>(names: impl Iterator<Item = &'a [u8]>) -> Option<u32> {
    let mut kinds = 0;
    let mut any = false;
    for name in names {
        any = true;
        kinds |= match name {
            b"rawcmds" => kind::RAWCMDS,
            b"evictions" => kind::EVICTIONS,
            b"fetchers" => kind::FETCHERS,
            b"mutations" => kind::MUTATIONS,
            b"sysevents" => kind::SYSEVENTS,
            b"connevents" => kind::CONNEVENTS,
            b"proxyreqs" => 1 << 10,
            b"proxyevents" => 1 << 11,
            b"proxyuser" => 1 << 12,
            _ => return None,
        };
    }
    Some(if any { kinds } else { kind::FETCHERS })
}

/// The process's logger (memcached's are globals too). The storage layer
/// logs evictions and lookups into it, the connections their events.
pub static LOGGER: Logger = Logger::new();

thread_local! {
    /// The descriptor of the connection this thread is serving: the
    /// `cfd` of its lines (memcached passes `c->sfd` down to
    /// `do_item_get`). The connection sets it each time it runs.
    static CFD: Cell<i32> = const { Cell::new(-1) };
}

/// Note the connection this thread now serves.
#[inline(always)]
pub fn set_cfd(fd: i32) {
    CFD.with(|c| c.set(fd));
}

fn cfd() -> i32 {
    CFD.with(|c| c.get())
}

/// Whether any watcher wants events of `kind`: one relaxed load, the whole
/// cost of an event when nobody watches.
#[inline(always)]
pub fn wants(kind: u32) -> bool {
    LOGGER.flags.load(Ordering::Relaxed) & kind != 0
}

/// Watchers and the counters of `stats`.
#[derive(Debug)]
pub struct Logger {
    /// The kinds some watcher wants (memcached's `logger->eflags`).
    flags: AtomicU32,
    /// The last global id handed out (memcached's `logger_gid`).
    gid: AtomicU64,
    /// The watchers. Workers take the read lock to append a line; `watch`
    /// and a watcher's close take the write lock.
    watchers: RwLock<Vec<Arc<Watcher>>>,
    /// `log_worker_written`: events logged.
    worker_written: AtomicU64,
    /// `log_watcher_skipped`: lines a watcher had no room for.
    watcher_skipped: AtomicU64,
    /// `log_watcher_sent`: lines appended to a watcher's buffer.
    watcher_sent: AtomicU64,
}

/// The counters `stats` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggerStats {
    /// `log_worker_dropped`: always 0 (there is no worker buffer).
    pub worker_dropped: u64,
    /// `log_worker_written`.
    pub worker_written: u64,
    /// `log_watcher_skipped`.
    pub watcher_skipped: u64,
    /// `log_watcher_sent`.
    pub watcher_sent: u64,
    /// `log_watchers`.
    pub watchers: u64,
}

/// Why `watch` failed (memcached's `logger_add_watcher_ret`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddError {
    /// [`WATCHER_LIMIT`] watchers are already registered.
    TooMany,
}

impl Default for Logger {
    fn default() -> Self {
        Logger::new()
    }
}

impl Logger {
    /// A logger with no watcher.
    pub const fn new() -> Logger {
        Logger {
            flags: AtomicU32::new(0),
            gid: AtomicU64::new(0),
            watchers: RwLock::new(Vec::new()),
            worker_written: AtomicU64::new(0),
            watcher_skipped: AtomicU64::new(0),
            watcher_sent: AtomicU64::new(0),
        }
    }

    fn next_gid(&self) -> u64 {
        self.gid.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Register a watcher of `kinds` whose buffer holds `limit` bytes; its
    /// worker is woken through `waker`, and finds it by `token`. The
    /// buffer starts with memcached's `OK`. Dropping the handle removes
    /// the watcher.
    pub fn add_watcher(
        &'static self,
        kinds: u32,
        limit: usize,
        waker: Arc<Waker>,
        token: usize,
    ) -> Result<WatchHandle, AddError> {
        let mut list = crate::sync::write(&self.watchers);
        if list.len() >= WATCHER_LIMIT {
            return Err(AddError::TooMany);
        }
        let mut buf = Vec::with_capacity(limit);
        buf.extend_from_slice(b"OK\r\n");
        let w = Arc::new(Watcher {
            kinds,
            min_gid: self.next_gid(),
            limit,
            waker,
            token,
            buf: Mutex::new(WatchBuf {
                lines: buf,
                held: 0,
                skipped: 0,
                wake_asked: false,
            }),
        });
        list.push(w.clone());
        self.set_flags(&list);
        Ok(WatchHandle {
            logger: self,
            watcher: w,
        })
    }

    fn set_flags(&self, list: &[Arc<Watcher>]) {
        let f = list.iter().fold(0, |f, w| f | w.kinds);
        self.flags.store(f, Ordering::Relaxed);
    }

    fn remove(&self, w: &Arc<Watcher>) {
        let mut list = crate::sync::write(&self.watchers);
        list.retain(|x| !Arc::ptr_eq(x, w));
        self.set_flags(&list);
    }

    /// The tokens of the watchers served by the worker of `waker`, into
    /// `out` (the worker drives them when it is woken).
    pub fn watchers_of(&self, waker: &Arc<Waker>, out: &mut Vec<usize>) {
        out.clear();
        if self.flags.load(Ordering::Relaxed) == 0 {
            return;
        }
        let list = crate::sync::read(&self.watchers);
        out.extend(
            list.iter()
                .filter(|w| Arc::ptr_eq(&w.waker, waker))
                .map(|w| w.token),
        );
    }

    /// The counters, for `stats`.
    pub fn stats(&self) -> LoggerStats {
        LoggerStats {
            worker_dropped: 0,
            worker_written: self.worker_written.load(Ordering::Relaxed),
            watcher_skipped: self.watcher_skipped.load(Ordering::Relaxed),
            watcher_sent: self.watcher_sent.load(Ordering::Relaxed),
            watchers: crate::sync::read(&self.watchers).len() as u64,
        }
    }

    /// `stats reset` zeroes the counters (memcached's are in `stats`).
    pub fn reset(&self) {
        self.worker_written.store(0, Ordering::Relaxed);
        self.watcher_skipped.store(0, Ordering::Relaxed);
        self.watcher_sent.store(0, Ordering::Relaxed);
    }

    /// Render one event of `kind` and append it to every watcher that
    /// wants it. `body` writes what follows `ts=... gid=... `.
    fn log(&self, kind: u32, body: impl FnOnce(&mut Line)) {
        let gid = self.next_gid();
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut line = Line::new();
        line.head(t.as_secs(), t.subsec_micros(), gid);
        body(&mut line);
        line.text("\n");
        self.worker_written.fetch_add(1, Ordering::Relaxed);
        let list = crate::sync::read(&self.watchers);
        for w in list.iter() {
            if w.kinds & kind != 0 && gid >= w.min_gid {
                w.push(self, line.as_bytes());
            }
        }
    }
}

/// One watcher: what it wants and its bounded buffer.
#[derive(Debug)]
pub struct Watcher {
    /// The kinds it asked for.
    kinds: u32,
    /// Events older than the watcher are not shown (memcached's `min_gid`).
    min_gid: u64,
    /// `watcher_logbuf_size`: the most bytes of lines held for it,
    /// written and being written together.
    limit: usize,
    /// Wakes the worker that serves its connection.
    waker: Arc<Waker>,
    /// Its connection's token in that worker.
    token: usize,
    /// The lines; every worker appends, its own worker takes.
    buf: Mutex<WatchBuf>,
}

/// A watcher's lines.
#[derive(Debug)]
struct WatchBuf {
    /// Lines not yet taken by the watcher's worker.
    lines: Vec<u8>,
    /// Bytes the worker took last and may still be writing: they count
    /// against the limit until its next take.
    held: usize,
    /// Lines skipped since the last one appended (memcached's `skipped`).
    skipped: u64,
    /// The worker was woken and has not taken the lines since.
    wake_asked: bool,
}

impl Watcher {
    fn push(&self, logger: &Logger, line: &[u8]) {
        let wake = {
            let mut b = crate::sync::lock(&self.buf);
            if b.lines.len() + b.held + line.len() + SKIP_ROOM > self.limit {
                b.skipped += 1;
                logger.watcher_skipped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if b.skipped > 0 {
                let mut s = Line::new();
                s.args(format_args!("skipped={}\n", b.skipped));
                b.lines.extend_from_slice(s.as_bytes());
                b.skipped = 0;
            }
            b.lines.extend_from_slice(line);
            logger.watcher_sent.fetch_add(1, Ordering::Relaxed);
            !std::mem::replace(&mut b.wake_asked, true)
        };
        if wake {
            if let Err(e) = self.waker.wake() {
                log::warn!("waking a watcher's worker: {e}");
            }
        }
    }
}

/// A connection's registration as a watcher; dropping it (the connection
/// closes) removes the watcher.
#[derive(Debug)]
pub struct WatchHandle {
    logger: &'static Logger,
    watcher: Arc<Watcher>,
}

impl WatchHandle {
    /// Move the watcher's lines into `out`, which must be empty (its
    /// allocation becomes the watcher's next buffer, so that the two stay
    /// at `watcher_logbuf_size` each). Returns false if there were none.
    pub fn take(&self, out: &mut Vec<u8>) -> bool {
        debug_assert!(out.is_empty());
        let mut b = crate::sync::lock(&self.watcher.buf);
        b.wake_asked = false;
        std::mem::swap(&mut b.lines, out);
        b.held = out.len();
        let limit = self.watcher.limit;
        if b.lines.capacity() < limit {
            b.lines.reserve_exact(limit);
        }
        !out.is_empty()
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.logger.remove(&self.watcher);
    }
}

/// A lookup (memcached's `do_item_get`): `type=item_get`.
#[cold]
#[inline(never)]
pub fn item_get(found: Found, key: &[u8], nbytes: usize, clsid: usize) {
    LOGGER.log(kind::FETCHERS, |l| {
        l.text("type=item_get key=");
        l.key(key);
        l.args(format_args!(
            " status={} clsid={clsid} cfd={} size={nbytes}",
            found.name(),
            cfd()
        ));
    });
}

/// A store (memcached's `do_store_item`): `type=item_store`. `ttl` is the
/// seconds left (0: never expires).
#[cold]
#[inline(never)]
pub fn item_store(status: &str, cmd: &str, key: &[u8], ttl: u32, clsid: usize, nbytes: usize) {
    LOGGER.log(kind::MUTATIONS, |l| {
        l.text("type=item_store key=");
        l.key(key);
        l.args(format_args!(
            " status={status} cmd={cmd} ttl={ttl} clsid={clsid} cfd={} size={nbytes}",
            cfd()
        ));
    });
}

/// An eviction (memcached's `lru_pull_tail`): `type=eviction`. `ttl` is
/// the seconds the item had left, -1 for none; `la` the seconds since
/// it was last accessed.
#[cold]
#[inline(never)]
pub fn eviction(key: &[u8], fetched: bool, ttl: i64, la: u32, clsid: usize, nbytes: usize) {
    LOGGER.log(kind::EVICTIONS, |l| {
        l.text("type=eviction key=");
        l.key(key);
        let fetch = if fetched { "yes" } else { "no" };
        l.args(format_args!(
            " fetch={fetch} ttl={ttl} la={la} clsid={clsid} size={nbytes}"
        ));
    });
}

/// A new connection (memcached's `conn_new`): `type=conn_new`.
#[cold]
#[inline(never)]
pub fn conn_new(peer: Option<SocketAddr>, transport: Transport, fd: i32) {
    LOGGER.log(kind::CONNEVENTS, |l| {
        l.text("type=conn_new ");
        line::peer(l, peer);
        l.args(format_args!(" transport={} cfd={fd}", transport.name()));
    });
}

/// A connection closing (memcached's `conn_close`): `type=conn_close`.
#[cold]
#[inline(never)]
pub fn conn_close(peer: Option<SocketAddr>, transport: Transport, reason: CloseReason, fd: i32) {
    LOGGER.log(kind::CONNEVENTS, |l| {
        l.text("type=conn_close ");
        line::peer(l, peer);
        l.args(format_args!(
            " transport={} reason={} cfd={fd}",
            transport.name(),
            reason.name()
        ));
    });
}

/// The line buffer of one event is on the stack: keep it small enough.
const _: () = assert!(LINE_MAX <= 4096);

#[cfg(test)]
mod tests;
