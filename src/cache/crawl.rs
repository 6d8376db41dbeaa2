//! The LRU crawler's walks (memcached's `item_crawler_thread` loop and
//! `crawler_expired_eval`): the crawler thread's body, the crawls asked
//! for, and the background pass. What they share with the commands is in
//! [`super::crawler`], which says how the walks work.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::crawler::{
    ClassSet, CrawlStart, Crawler, Job, AUTO_EVERY, AUTO_ITEMS, CRAWLS_PER_SLEEP,
};
use super::shard::{Handle, Shard};
use super::{lock, Cache, SHARDS};

impl Cache {
    /// The crawler's settings and state.
    pub fn crawler(&self) -> &Crawler {
        &self.crawler
    }

    /// `lru_crawler crawl`: queue a pass over `classes` for the crawler
    /// thread (memcached's `lru_crawler_start`).
    pub fn crawl(&self, classes: ClassSet) -> CrawlStart {
        self.crawler().request(classes)
    }

    /// The crawler thread's body (memcached's `item_crawler_thread`): run
    /// the crawls asked for, and the background pass once a second while
    /// enabled, until [`Cache::stop_crawler`].
    pub fn run_crawler(&self) {
        let cr = self.crawler();
        let mut background = Instant::now() + AUTO_EVERY;
        loop {
            match cr.next_job(background) {
                Job::Stop => return,
                Job::Crawl(classes) => {
                    log::debug!("LRU crawler: crawl starts");
                    for shard in 0..SHARDS {
                        if !self.crawl_shard(shard, classes) {
                            break;
                        }
                    }
                    cr.crawl_done();
                    log::debug!("LRU crawler: crawl done");
                }
                Job::Background => {
                    // Whole shards in turn, until enough items were looked
                    // at: a small cache is swept every second, a large one
                    // a few shards at a time.
                    let mut looked = 0;
                    for _ in 0..SHARDS {
                        looked += self.crawl_step();
                        if looked >= AUTO_ITEMS || cr.stopping() {
                            break;
                        }
                    }
                    background = Instant::now() + AUTO_EVERY;
                }
            }
        }
    }

    /// End the crawler thread: it leaves its crawl at the next batch.
    pub fn stop_crawler(&self) {
        self.crawler().stop();
    }

    /// One step of the background pass: take back every dead item of the
    /// next shard, and give back its empty pages when the cache is over
    /// its limit (after `cache_memlimit` lowered it) and its table's
    /// memory when it lost most of its items. Returns how many items the
    /// shard held.
    pub fn crawl_step(&self) -> usize {
        let i = self.crawl_cursor.fetch_add(1, Ordering::Relaxed) % SHARDS;
        let held = lock(&self.shards[i]).len();
        self.crawl_shard(i, ClassSet::ALL);
        let mut sh = lock(&self.shards[i]);
        while self.used() > self.limit() {
            match sh.empty_page() {
                Some(p) => {
                    self.release(&mut sh, p);
                }
                None => break,
            }
        }
        if sh.shrink_table() {
            self.sync_table(&mut sh);
        }
        held
    }

    /// Crawl the LRUs of `classes` in shard `i`. Returns false if the
    /// server is stopping.
    fn crawl_shard(&self, i: usize, classes: ClassSet) -> bool {
        let nclasses = lock(&self.shards[i]).classes.len();
        (1..nclasses)
            .filter(|&c| classes.contains(c))
            .all(|class| self.crawl_lru(i, class))
    }

    /// Walk one class's LRU in shard `i` from its tail, taking back the
    /// dead items (memcached's `crawler_expired_eval`), a batch of
    /// [`CRAWLS_PER_SLEEP`] items per lock. Returns false if the server
    /// is stopping.
    fn crawl_lru(&self, i: usize, class: usize) -> bool {
        let tocrawl = u64::from(self.crawler().tocrawl());
        let mut budget = None;
        let mut resume: Option<(Handle, (u32, u64))> = None;
        loop {
            let now = self.clock.now();
            let mut sh = lock(&self.shards[i]);
            let left = budget.get_or_insert_with(|| {
                let n = sh.classes[class].stats.number;
                if tocrawl == 0 {
                    n
                } else {
                    n.min(tocrawl)
                }
            });
            let mut cur = match resume {
                None => sh.tail(class),
                Some((h, age)) => still_there(&sh, h, class, age).then_some(h),
            };
            let mut n = 0;
            while let Some(h) = cur {
                if *left == 0 || n == CRAWLS_PER_SLEEP {
                    break;
                }
                cur = sh.prev(h);
                *left -= 1;
                n += 1;
                if self.is_dead(sh.view(h), now).is_some() {
                    self.reclaim(&mut sh, h, true);
                }
            }
            sh.classes[class].stats.crawler_items_checked += n;
            let Some(next) = cur.filter(|_| *left > 0) else {
                return !self.crawler().stopping();
            };
            let v = sh.view(next);
            resume = Some((next, (v.time(), v.cas())));
            drop(sh);
            if !self.crawler().pause() {
                return false;
            }
        }
    }
}

/// Whether `h`, the next item of a crawl that unlocked its shard, is still
/// the item it was: linked, of the class, with the same last bump and CAS
/// (a bump moved it to the head; a new item there has a new CAS).
fn still_there(sh: &Shard, h: Handle, class: usize, age: (u32, u64)) -> bool {
    sh.linked_at(h) && sh.class_of(h) == class && {
        let v = sh.view(h);
        (v.time(), v.cas()) == age
    }
}
