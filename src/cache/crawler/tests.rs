//! The crawler thread: crawls on demand, `tocrawl`, and stopping.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::cache::{Cache, CacheConfig, StoreMode};
use crate::clock::Clock;

/// A cache whose crawler is disabled, so that only the crawls a test
/// asks for run (not the background pass), and its running thread.
fn crawled(limit: usize) -> (Arc<Cache>, std::thread::JoinHandle<()>) {
    let mut config = CacheConfig::with_limit(limit);
    config.lru_crawler = false;
    config.lru_crawler_sleep = 0;
    let c = Arc::new(Cache::new(Arc::new(Clock::new()), &config));
    let t = {
        let c = c.clone();
        std::thread::spawn(move || c.run_crawler())
    };
    (c, t)
}

/// Store `n` items `{prefix}{i}`, then expire those `dead` picks. They
/// expire only once all are stored: a store takes back dead items it
/// finds at its LRU's tail, which would leave the crawler less to do.
fn fill(c: &Cache, prefix: &str, n: usize, len: usize, dead: impl Fn(usize) -> bool) {
    for i in 0..n {
        let key = format!("{prefix}{i}");
        let r = c.store(StoreMode::Set, key.as_bytes(), 0, 0, &vec![b'v'; len], 0);
        assert_eq!(r.0, crate::cache::StoreResult::Stored);
    }
    let past = c.clock().realtime(-1);
    for i in (0..n).filter(|&i| dead(i)) {
        assert!(c.set_exptime(format!("{prefix}{i}").as_bytes(), past));
    }
}

fn class_set(ids: &[usize]) -> ClassSet {
    let mut s = ClassSet::default();
    for &id in ids {
        s.insert(id);
    }
    s
}

fn wait_done(c: &Cache) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.crawler().running() {
        assert!(Instant::now() < deadline, "the crawl did not end");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn totals(c: &Cache, class: usize) -> (u64, u64, u64) {
    let r = &c.class_reports()[class].stats;
    (r.number, r.crawler_reclaimed, r.crawler_items_checked)
}

/// A crawl of one class takes back its dead items, over more than one
/// batch per shard, and leaves the other classes alone.
#[test]
fn a_crawl_reclaims_the_dead_items_of_its_classes() {
    let (c, t) = crawled(64 << 20);
    fill(&c, "s", 40_000, 1, |i| i % 4 != 0);
    fill(&c, "b", 100, 2000, |_| true);
    let small = c.class_of_key(b"s0").unwrap();
    let big = c
        .classes()
        .class_for(crate::cache::items::item_size(3, 0, 2000, true));
    assert_eq!(c.crawl(class_set(&[small])), CrawlStart::Ok);
    wait_done(&c);
    assert_eq!(totals(&c, small), (10_000, 30_000, 40_000));
    assert_eq!(totals(&c, big).0, 100, "another class is not crawled");
    assert_eq!(c.crawler().starts(), 1);
    assert_eq!(c.crawl(ClassSet::ALL), CrawlStart::Ok);
    wait_done(&c);
    assert_eq!(totals(&c, big).0, 0);
    c.stop_crawler();
    t.join().unwrap();
}

/// `tocrawl` caps the items looked at in each LRU, from its tail: here
/// the oldest items are the dead ones.
#[test]
fn tocrawl_caps_each_lru_from_its_tail() {
    let (c, t) = crawled(64 << 20);
    fill(&c, "k", 4000, 1, |i| i < 2000);
    let class = c.class_of_key(b"k3999").unwrap();
    c.crawler().set_tocrawl(10);
    assert_eq!(c.crawl(ClassSet::ALL), CrawlStart::Ok);
    wait_done(&c);
    let (number, reclaimed, checked) = totals(&c, class);
    assert_eq!((reclaimed, checked), (160, 160), "10 per shard");
    assert_eq!(number, 4000 - 160);
    c.stop_crawler();
    t.join().unwrap();
}

/// A crawl asked for while one runs is `BUSY`, as in memcached, and
/// stopping ends the thread at once even mid-crawl with a long sleep.
#[test]
fn busy_then_a_prompt_stop() {
    let (c, t) = crawled(64 << 20);
    fill(&c, "k", 20_000, 1, |_| false);
    c.crawler().set_sleep_us(1_000_000);
    assert_eq!(c.crawl(ClassSet::ALL), CrawlStart::Ok);
    assert_eq!(c.crawl(ClassSet::ALL), CrawlStart::Busy);
    std::thread::sleep(Duration::from_millis(50));
    let asked = Instant::now();
    c.stop_crawler();
    t.join().unwrap();
    assert!(asked.elapsed() < Duration::from_millis(500));
}

/// The background pass runs once a second while enabled (a shard at a
/// time): dead items are freed without a crawl being asked for.
#[test]
fn the_background_pass_runs_only_while_enabled() {
    let (c, t) = crawled(16 << 20);
    fill(&c, "k", 1000, 1, |_| true);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(c.stats.curr_items.load(Ordering::Relaxed), 1000);
    assert!(c.crawler().enable());
    // The first shard's pass comes at once, the next a second later.
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.stats.curr_items.load(Ordering::Relaxed) == 1000 {
        assert!(Instant::now() < deadline, "nothing freed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.crawler().starts(), 0, "background passes are not starts");
    c.stop_crawler();
    t.join().unwrap();
}
