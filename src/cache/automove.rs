//! `slabs automove 1`'s decision: mirrors memcached's `slab_automove.c`
//! (`slab_automove_run`), run once a second by the mover thread as
//! memcached's LRU maintainer runs it.
//!
//! Each run takes a sample of every class (evictions, out-of-memory
//! failures, pages owned, free chunks, the age of its LRU tail) and keeps
//! the last `window` runs per class. Then, in class order:
//! - a class with more than 2.5 pages of free chunks whose window saw no
//!   eviction, no failed allocation and no new page gives a page back to
//!   the global pool (and the run ends there);
//! - otherwise, once the window has filled, the oldest class (average tail
//!   age over the window) with more than 2 pages gives a page to the
//!   youngest class that evicts steadily (in more than half the window, or
//!   more than a quarter of all evictions), if the youngest's age is below
//!   `ratio` times the oldest's and it evicted in this run.
//!
//! Pure logic, no locks: the caller takes the samples.

/// Pages a class keeps before it may give one away for balance.
const MIN_PAGES_FOR_SOURCE: u64 = 2;

/// Pages of free chunks past which a quiet class returns one to the pool.
const MIN_PAGES_FOR_RECLAIM: f64 = 2.5;

/// One class's figures at one run (memcached's `item_stats_automove` and
/// `slab_stats_automove` together).
#[derive(Debug, Clone, Copy, Default)]
pub struct ClassSample {
    /// Items evicted so far.
    pub evicted: u64,
    /// Allocations that failed so far.
    pub outofmemory: u64,
    /// Seconds since the class's LRU tail was last used.
    pub age: u64,
    /// Pages the class owns.
    pub total_pages: u64,
    /// Chunks of those pages holding no item.
    pub free_chunks: u64,
    /// Chunks in one page.
    pub chunks_per_page: u64,
}

/// One run's record of one class.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    age: u64,
    dirty: bool,
    evicted_ratio: f64,
    evicted_seen: bool,
}

/// The decider's memory between runs.
#[derive(Debug)]
pub struct Automove {
    /// Runs remembered per class (`slab_automove_window`).
    window: usize,
    /// `slab_automove_ratio`.
    ratio: f64,
    /// `window` slots per class, class-major.
    slots: Vec<Slot>,
    /// Runs so far.
    runs: u64,
    /// The samples of the previous run.
    before: Vec<ClassSample>,
}

impl Automove {
    /// A decider starting from `first`, a sample of every class (index =
    /// class id; 0 is the pool and is never looked at). What happened
    /// before `first` is unknown, so every window starts dirty: nothing
    /// goes to the pool until a whole window has been seen quiet.
    pub fn new(window: usize, ratio: f64, first: Vec<ClassSample>) -> Automove {
        let dirty = Slot {
            dirty: true,
            ..Slot::default()
        };
        Automove {
            window,
            ratio,
            slots: vec![dirty; window * first.len()],
            runs: 0,
            before: first,
        }
    }

    /// The ratio it was made with.
    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// One run over `after`, this second's samples: the page to move, as
    /// (source, destination), destination 0 being the global pool.
    // The class id indexes three tables at once (samples before and
    // after, and the window slots).
    #[allow(clippy::needless_range_loop)]
    pub fn run(&mut self, after: Vec<ClassSample>) -> Option<(usize, usize)> {
        let n = after.len().min(self.before.len());
        let evicted_total: u64 = (1..n)
            .map(|c| after[c].evicted.saturating_sub(self.before[c].evicted))
            .sum();
        self.runs += 1;
        let cur = (self.runs % self.window as u64) as usize;
        let mut oldest: Option<(usize, u64)> = None;
        let mut youngest: Option<(usize, u64, bool)> = None;
        let mut decision = None;
        for c in 1..n {
            let (a, b) = (&after[c], &self.before[c]);
            let mut slot = Slot {
                age: a.age,
                ..Slot::default()
            };
            let evicted = a.evicted.saturating_sub(b.evicted);
            if evicted > 0 {
                slot.evicted_ratio = evicted as f64 / evicted_total as f64;
                slot.evicted_seen = true;
                slot.dirty = true;
            }
            if a.outofmemory > b.outofmemory || a.total_pages > b.total_pages {
                slot.dirty = true;
            }
            let base = c * self.window;
            self.slots[base + cur] = slot;
            let w = &self.slots[base..base + self.window];
            let age = w.iter().map(|s| s.age).sum::<u64>() / self.window as u64;
            let dirty = w.iter().any(|s| s.dirty);
            let seen = w.iter().filter(|s| s.evicted_seen).count();
            let ratio_sum: f64 = w.iter().map(|s| s.evicted_ratio).sum();

            if a.free_chunks as f64 > a.chunks_per_page as f64 * MIN_PAGES_FOR_RECLAIM && !dirty {
                decision = Some((c, 0));
                oldest = None;
                youngest = None;
                break;
            }
            if age > oldest.map_or(0, |o| o.1) && a.total_pages > MIN_PAGES_FOR_SOURCE {
                oldest = Some((c, age));
            }
            let steady = seen > self.window / 2 || ratio_sum / self.window as f64 > 0.25;
            if age < youngest.map_or(u64::MAX, |y| y.1) && steady {
                youngest = Some((c, age, slot.evicted_seen));
            }
        }
        self.before = after;
        if let (Some((o, o_age)), Some((y, y_age, evicting))) = (oldest, youngest) {
            if self.runs > self.window as u64
                && (y_age as f64) < o_age as f64 * self.ratio
                && evicting
            {
                decision = Some((o, y));
            }
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pages: u64, free: u64, evicted: u64, age: u64) -> ClassSample {
        ClassSample {
            evicted,
            outofmemory: 0,
            age,
            total_pages: pages,
            free_chunks: free,
            chunks_per_page: 10,
        }
    }

    #[test]
    fn a_quiet_class_with_free_chunks_returns_a_page_to_the_pool() {
        let first = vec![ClassSample::default(), sample(5, 30, 0, 0)];
        let mut a = Automove::new(3, 0.8, first);
        // Its pages grew in the first run: dirty for the whole window.
        assert_eq!(
            a.run(vec![ClassSample::default(), sample(6, 30, 0, 0)]),
            None
        );
        assert_eq!(
            a.run(vec![ClassSample::default(), sample(6, 30, 0, 0)]),
            None
        );
        assert_eq!(
            a.run(vec![ClassSample::default(), sample(6, 30, 0, 0)]),
            None
        );
        assert_eq!(
            a.run(vec![ClassSample::default(), sample(6, 30, 0, 0)]),
            Some((1, 0))
        );
        // 25 free chunks are not more than 2.5 pages.
        assert_eq!(
            a.run(vec![ClassSample::default(), sample(5, 25, 0, 0)]),
            None
        );
    }

    #[test]
    fn the_oldest_class_feeds_the_youngest_evicting_one() {
        let s = |ev: u64| {
            vec![
                ClassSample::default(),
                sample(10, 0, 0, 100),
                sample(3, 0, ev, 5),
            ]
        };
        let mut a = Automove::new(3, 0.8, s(0));
        for (i, ev) in [10, 20, 30].into_iter().enumerate() {
            assert_eq!(a.run(s(ev)), None, "run {i}: the window is not full");
        }
        assert_eq!(a.run(s(40)), Some((1, 2)));
        // No eviction in this run: no move.
        assert_eq!(a.run(s(40)), None);
    }
}
