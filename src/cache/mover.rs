//! The slab mover: mirrors memcached's `slabs_reassign`,
//! `slab_rebalance_thread`, `slab_rebalance_start` / `_move` / `_finish`
//! (`slabs.c`), and the automove modes (`slab_automove.c`, and the
//! `slabs_reassign(-1, id)` of `lru_pull_tail` for mode 2).
//!
//! `slabs reassign src dst` asks the mover thread to take one page (see
//! [`super::ledger`]) from class `src` and give it to `dst` (0: the global
//! pool). The thread first makes `src`'s real memory fit the pages it
//! keeps, then moves the page in the ledger:
//!
//! 1. **Rescue.** A page's worth of `src`'s memory is visited. Shard pages
//!    of `src` (sparsest first) whose live items all fit free chunks of
//!    their size elsewhere in the shard are emptied by copying each item
//!    into such a chunk (`slab_reassign_rescues`), and the page is freed:
//!    real memory comes back with nothing lost.
//! 2. **Evict.** While `src` still holds more than its remaining pages,
//!    its oldest large item (over all shards) is evicted, or else its
//!    sparsest shard page is emptied, rescuing items into free chunks
//!    where there are any and evicting the rest
//!    (`slab_reassign_evictions_nomem`); dead items are just dropped.
//! 3. **Keep.** Large items have no page: those at the tail of `src`'s
//!    LRU, up to the rest of the page's worth, stay where they are, since
//!    the pages `src` keeps have room for them, and count as rescued
//!    (`slab_reassign_chunk_rescues` for items bigger than the largest
//!    chunk, memcached's chunked items; `slab_reassign_rescues` else).
//!
//! Work is bounded per lock hold: one shard at a time, one shard page (or
//! one large item) per hold. No item is ever busy here (the mover holds
//! the shard's lock, and no reference to an item outlives that lock), so
//! `slab_reassign_busy_items`, `_busy_deletes` and `_inline_reclaim` stay
//! 0. A rescued item moves to another chunk and to its LRU's head, as
//! memcached's `do_item_replace` does; a metadump walking the shard at
//! that moment may miss or repeat it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

/// `slabs reassign`'s outcome (memcached's `enum reassign_result_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reassign {
    /// `OK`: the mover took the request.
    Ok,
    /// `BUSY currently processing reassign request`.
    Running,
    /// `BADCLASS invalid src or dst class id`.
    BadClass,
    /// `NOSPARE source class has no spare pages`.
    NoSpare,
    /// `SAME src and dst class are identical`.
    Same,
}

/// The mover's counters (memcached's `stats.slab_reassign_*`,
/// `slabs_moved`), shown by `stats` when `slab_reassign` is on.
#[derive(Debug, Default)]
pub struct MoverStats {
    /// Items copied into free chunks, or large items kept, during moves.
    pub rescues: AtomicU64,
    /// Of the kept large items, those bigger than the largest chunk
    /// (memcached's chunked items).
    pub chunk_rescues: AtomicU64,
    /// Live items evicted by moves for lack of room.
    pub evictions_nomem: AtomicU64,
    /// Pages moved.
    pub slabs_moved: AtomicU64,
    /// A move is under way.
    pub running: AtomicBool,
}

/// What the workers and the mover thread share.
#[derive(Debug, Default)]
pub(super) struct Signal {
    /// A move asked for and not yet started: (source, destination).
    pub(super) request: Option<(usize, usize)>,
    /// A move is under way.
    pub(super) busy: bool,
    /// The thread must end.
    pub(super) stop: bool,
}

/// The slab mover's settings and mailbox.
#[derive(Debug)]
pub struct Mover {
    /// `slabs reassign` is allowed and the thread runs (`slab_reassign`).
    pub(super) enabled: bool,
    /// automove 1 runs (memcached runs it in its LRU maintainer thread).
    pub(super) maintainer: bool,
    /// `slab_automove`: 0, 1 or 2; `slabs automove` changes it.
    automove: AtomicU8,
    /// `slab_automove_ratio`, as f64 bits; `slabs automove ratio` changes it.
    ratio: AtomicU64,
    /// `slab_automove_window`.
    pub(super) window: usize,
    /// The mailbox.
    pub(super) signal: Mutex<Signal>,
    /// Wakes the thread for a request or to stop.
    pub(super) wake: Condvar,
    /// Where `slabs_reassign_pick_any` looks next.
    pub(super) pick: AtomicUsize,
    /// Where a move starts its walk over shards.
    pub(super) cursor: AtomicUsize,
    /// Counters.
    pub stats: MoverStats,
}

/// The mover's settings, from the cache's configuration.
#[derive(Debug, Clone, Copy)]
pub struct MoverConfig {
    /// `slab_reassign`.
    pub enabled: bool,
    /// memcached's LRU maintainer thread is on.
    pub maintainer: bool,
    /// `slab_automove`.
    pub automove: u8,
    /// `slab_automove_ratio`.
    pub ratio: f64,
    /// `slab_automove_window`.
    pub window: u32,
}

impl Mover {
    /// A mover as `c` says.
    pub fn new(c: MoverConfig) -> Mover {
        Mover {
            enabled: c.enabled,
            maintainer: c.maintainer,
            automove: AtomicU8::new(c.automove),
            ratio: AtomicU64::new(c.ratio.to_bits()),
            window: c.window.max(1) as usize,
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
            pick: AtomicUsize::new(0),
            cursor: AtomicUsize::new(0),
            stats: MoverStats::default(),
        }
    }

    /// `slab_automove` now.
    pub fn automove(&self) -> u8 {
        self.automove.load(Ordering::Relaxed)
    }

    /// `slabs automove <0|1|2>`.
    pub fn set_automove(&self, level: u8) {
        self.automove.store(level, Ordering::Relaxed);
    }

    /// `slab_automove_ratio` now.
    pub fn ratio(&self) -> f64 {
        f64::from_bits(self.ratio.load(Ordering::Relaxed))
    }

    /// `slabs automove ratio <r>`.
    pub fn set_ratio(&self, r: f64) {
        self.ratio.store(r.to_bits(), Ordering::Relaxed);
    }
}
