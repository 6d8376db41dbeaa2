//! The server clock: mirrors memcached's `current_time`, `process_started`
//! and `realtime()` in `memcached.c`.
//!
//! Time inside the cache is a `u32` count of seconds since the process
//! started (memcached's `rel_time_t`), advanced once a second by the main
//! thread, so that checking an expiry is one load and one compare instead of
//! a system call per request.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// An exptime larger than this many seconds (30 days) is an absolute unix
/// time, not a delta (memcached's `REALTIME_MAXDELTA`).
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

/// How often an item may be bumped in the LRU (memcached's
/// `ITEM_UPDATE_INTERVAL`).
pub const ITEM_UPDATE_INTERVAL: u32 = 60;

/// Seconds-since-start clock shared by every thread.
#[derive(Debug)]
pub struct Clock {
    /// Unix time the clock counts from. Like memcached it is set
    /// `ITEM_UPDATE_INTERVAL + 2` seconds before the real start, so that a
    /// relative time is never 0 (0 means "never" for an exptime).
    process_started: i64,
    /// Seconds since `process_started`; written by the main thread's tick,
    /// read by every worker.
    current_time: AtomicU32,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Clock {
    /// A clock that starts now.
    pub fn new() -> Clock {
        let started = unix_now() - i64::from(ITEM_UPDATE_INTERVAL) - 2;
        let clock = Clock {
            process_started: started,
            current_time: AtomicU32::new(0),
        };
        clock.tick();
        clock
    }

    /// Re-read the wall clock (memcached's `clock_handler`).
    pub fn tick(&self) {
        let rel = (unix_now() - self.process_started).max(1) as u32;
        self.current_time.store(rel, Ordering::Relaxed);
    }

    /// Seconds since the (adjusted) process start.
    pub fn now(&self) -> u32 {
        self.current_time.load(Ordering::Relaxed)
    }

    /// Unix time of the adjusted process start.
    pub fn process_started(&self) -> i64 {
        self.process_started
    }

    /// Turn a client exptime into relative time, as memcached's
    /// `realtime(EXPTIME_TO_POSITIVE_TIME(exptime))`:
    /// 0 is "never", a negative value is "already expired", a value up to
    /// 30 days is a delta, anything larger an absolute unix time.
    pub fn realtime(&self, exptime: i32) -> u32 {
        let exptime = if exptime < 0 {
            REALTIME_MAXDELTA + 1
        } else {
            i64::from(exptime)
        };
        if exptime == 0 {
            return 0;
        }
        if exptime > REALTIME_MAXDELTA {
            if exptime <= self.process_started {
                return 1;
            }
            return (exptime - self.process_started) as u32;
        }
        (exptime + i64::from(self.now())) as u32
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exptime_rules() {
        let c = Clock::new();
        let now = c.now();
        assert!(now >= 62);
        assert_eq!(c.realtime(0), 0);
        assert_eq!(c.realtime(10), now + 10);
        assert_eq!(c.realtime(-1), 1, "negative exptime is already expired");
        let abs = unix_now() + 100;
        let rel = c.realtime(abs as i32);
        assert!(rel >= now + 99 && rel <= now + 101);
        assert_eq!(c.realtime((REALTIME_MAXDELTA + 1) as i32), 1);
    }
}
