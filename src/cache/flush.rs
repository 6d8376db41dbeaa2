//! The `flush_all` horizon: mirrors memcached's `settings.oldest_live` and
//! `settings.oldest_cas` (set in `process_flush_all_command`, read by
//! `item_is_flushed` in `items.c`).
//!
//! memcached writes and reads the two globals with no ordering at all; a
//! get racing a flush may see the new time with the old CAS. Here the two
//! are published as one pair: writers are serialized by a mutex (so the
//! flush that took the larger CAS publishes last), and readers use a
//! seqlock, which costs a get two extra loads and no store. A 48-bit CAS
//! and a 32-bit time do not fit one 64-bit atomic, hence the seqlock.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::sync::lock;

/// What `flush_all` published: items last bumped at or before `oldest_live`
/// (a relative time, 0 = no flush), or with a CAS below `oldest_cas`
/// (0 = none), are dead once the clock reaches `oldest_live`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlushPair {
    /// memcached's `settings.oldest_live`.
    pub oldest_live: u32,
    /// memcached's `settings.oldest_cas`.
    pub oldest_cas: u64,
}

/// The published pair behind a seqlock.
#[derive(Debug, Default)]
pub struct Horizon {
    /// Held by a flush from choosing its CAS until its pair is published,
    /// so that two flushes publish in the order they took their CAS.
    writer: Mutex<()>,
    /// Seqlock version: odd while a writer is storing the pair; bumped by
    /// the writer (under `writer`), read by every get.
    seq: AtomicU64,
    /// The pair's `oldest_live`; written only inside an odd `seq`.
    oldest_live: AtomicU32,
    /// The pair's `oldest_cas`; written only inside an odd `seq`.
    oldest_cas: AtomicU64,
}

impl Horizon {
    /// The pair the last finished flush published (never half of one).
    #[inline]
    pub fn read(&self) -> FlushPair {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 0 {
                let pair = FlushPair {
                    oldest_live: self.oldest_live.load(Ordering::Relaxed),
                    oldest_cas: self.oldest_cas.load(Ordering::Relaxed),
                };
                // Keeps the two loads above before the re-check of `seq`:
                // if a writer's stores were seen, so is its odd version.
                fence(Ordering::Acquire);
                if self.seq.load(Ordering::Relaxed) == before {
                    return pair;
                }
            }
            // A writer is between its two stores; it holds no lock a get
            // needs, so it finishes in a few instructions.
            std::hint::spin_loop();
        }
    }

    /// Publish the pair `next` computes from the current one, with every
    /// other writer shut out from reading the current pair until this one
    /// is published. Returns what was published.
    pub fn update(&self, next: impl FnOnce(FlushPair) -> FlushPair) -> FlushPair {
        // A poisoned writer lock panics (see `crate::sync`).
        let _writer = lock(&self.writer);
        // Only writers store `seq` and the pair, and we hold the writer
        // lock, so these Relaxed loads see the last published values.
        let current = FlushPair {
            oldest_live: self.oldest_live.load(Ordering::Relaxed),
            oldest_cas: self.oldest_cas.load(Ordering::Relaxed),
        };
        let pair = next(current);
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq + 1, Ordering::Relaxed);
        // Orders the odd version before the pair's stores: a reader that
        // sees either store then sees `seq` changed.
        fence(Ordering::Release);
        self.oldest_live.store(pair.oldest_live, Ordering::Relaxed);
        self.oldest_cas.store(pair.oldest_cas, Ordering::Relaxed);
        self.seq.store(seq + 2, Ordering::Release);
        pair
    }
}
