//! Cache behaviour without sockets: eviction, limits, concurrency.

use super::*;

fn cache(limit: usize, evict: bool) -> Cache {
    let mut config = CacheConfig::with_limit(limit);
    config.evict_to_free = evict;
    Cache::new(Arc::new(Clock::new()), &config)
}

#[test]
fn lru_eviction_keeps_memory_bounded() {
    let c = cache(64 * 1024, true);
    let value = vec![b'v'; 1000];
    for i in 0..1000 {
        let key = format!("key{i}");
        let (r, _) = c.store(StoreMode::Set, key.as_bytes(), 0, 0, &value, 0);
        assert_eq!(r, StoreResult::Stored);
        assert!(c.stats.bytes.load(Ordering::Relaxed) <= 64 * 1024);
    }
    assert!(c.stats.evictions.load(Ordering::Relaxed) > 0);
    // The newest key survives; the oldest is gone.
    assert!(c.get(b"key999", None).is_some());
    assert!(c.get(b"key0", None).is_none());
}

#[test]
fn no_eviction_reports_out_of_memory() {
    let c = cache(16 * 1024, false);
    let value = vec![b'v'; 1000];
    let mut stored = 0;
    let mut refused = 0;
    for i in 0..100 {
        match c
            .store(StoreMode::Set, format!("k{i}").as_bytes(), 0, 0, &value, 0)
            .0
        {
            StoreResult::Stored => stored += 1,
            StoreResult::NoMemory => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(stored > 0 && refused > 0);
    assert_eq!(c.stats.evictions.load(Ordering::Relaxed), 0);
}

#[test]
fn concurrent_incr_loses_no_update() {
    let c = Arc::new(cache(64 * 1024 * 1024, true));
    c.store(StoreMode::Set, b"n", 0, 0, b"0", 0);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    assert!(matches!(
                        c.delta(b"n", true, 1, 0, true).0,
                        DeltaResult::Ok(_)
                    ));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(&*c.get(b"n", None).unwrap().data, b"40000");
}

#[test]
fn flush_all_hides_existing_items() {
    let c = cache(1024 * 1024, true);
    c.store(StoreMode::Set, b"a", 0, 0, b"1", 0);
    c.flush_all(0);
    assert!(c.get(b"a", None).is_none());
    c.store(StoreMode::Set, b"b", 0, 0, b"1", 0);
    assert!(
        c.get(b"b", None).is_some(),
        "items stored after the flush live"
    );
}

#[test]
fn no_eviction_still_reclaims_flushed_items() {
    let c = cache(16 * 1024, false);
    let value = vec![b'v'; 1000];
    let mut i = 0;
    while c
        .store(StoreMode::Set, format!("k{i}").as_bytes(), 0, 0, &value, 0)
        .0
        == StoreResult::Stored
    {
        i += 1;
    }
    assert!(!c.can_alloc(3, 0, 1000), "full");
    c.flush_all(0);
    assert!(c.can_alloc(3, 0, 1000), "flushed items make room at once");
    assert_eq!(
        c.store(StoreMode::Set, b"new", 0, 0, &value, 0).0,
        StoreResult::Stored
    );
}

#[test]
fn background_pass_frees_a_cache_of_dead_items() {
    let c = cache(1024 * 1024, true);
    for i in 0..500 {
        c.store(
            StoreMode::Set,
            format!("k{i}").as_bytes(),
            0,
            0,
            b"value",
            0,
        );
    }
    c.flush_all(0);
    for _ in 0..SHARDS {
        c.crawl_step();
    }
    assert_eq!(c.stats.curr_items.load(Ordering::Relaxed), 0);
    assert_eq!(c.stats.bytes.load(Ordering::Relaxed), 0);
    assert_eq!(c.stats.reclaimed.load(Ordering::Relaxed), 500);
}

#[test]
fn bytes_return_to_zero_after_deletes() {
    let c = cache(1024 * 1024, true);
    for i in 0..100 {
        let k = format!("k{i}");
        c.store(StoreMode::Set, k.as_bytes(), 1, 0, b"12", 0);
        c.store(StoreMode::Append, k.as_bytes(), 0, 0, b"34", 0);
        c.delta(k.as_bytes(), true, 99_999_999, 0, true);
    }
    for i in 0..100 {
        assert!(c.delete(format!("k{i}").as_bytes()));
    }
    assert_eq!(c.stats.bytes.load(Ordering::Relaxed), 0);
    assert_eq!(c.stats.curr_items.load(Ordering::Relaxed), 0);
}

/// Every shard's LRU lists, table, page counts and the budget agree.
fn audit(c: &Cache) {
    let mut charged = 0;
    let mut items = 0;
    for m in c.shards.iter() {
        let sh = lock(m);
        charged += sh.audit();
        items += sh.len();
    }
    assert_eq!(charged, c.used(), "budget");
    assert_eq!(items as u64, c.stats.curr_items.load(Ordering::Relaxed));
}

fn fill(c: &Cache, prefix: &str, n: usize, len: usize) {
    let v = vec![b'v'; len];
    for i in 0..n {
        c.store(
            StoreMode::Set,
            format!("{prefix}{i}").as_bytes(),
            0,
            0,
            &v,
            0,
        );
    }
}

#[test]
fn a_large_item_finds_room_in_a_cache_full_of_small_ones() {
    let c = cache(4 << 20, true);
    fill(&c, "s", 100_000, 100);
    let big = vec![b'b'; 900 * 1024];
    for i in 0..3 {
        let k = format!("big{i}");
        assert_eq!(
            c.store(StoreMode::Set, k.as_bytes(), 0, 0, &big, 0).0,
            StoreResult::Stored
        );
        assert_eq!(c.get(k.as_bytes(), None).unwrap().data.len(), big.len());
    }
    audit(&c);
}

#[test]
fn a_lowered_limit_is_reached_by_the_next_stores() {
    let c = cache(16 << 20, true);
    fill(&c, "k", 200_000, 32);
    c.set_limit(2 << 20);
    for i in 0..10 {
        let k = format!("new{i}");
        assert_eq!(
            c.store(StoreMode::Set, k.as_bytes(), 0, 0, b"x", 0).0,
            StoreResult::Stored
        );
    }
    assert!(c.used() <= 2 << 20, "used {}", c.used());
    audit(&c);
}

#[test]
fn tables_give_back_memory_after_deletes() {
    let c = cache(16 << 20, true);
    fill(&c, "k", 100_000, 10);
    let (_, full) = c.hash_stats();
    for i in 0..100_000 {
        c.delete(format!("k{i}").as_bytes());
    }
    for _ in 0..SHARDS {
        c.crawl_step();
    }
    let (_, empty) = c.hash_stats();
    assert!(empty * 10 < full, "{empty} of {full} bytes left");
    audit(&c);
}

/// `-M`, a full cache, sets replacing existing keys while another thread
/// flushes: the item being replaced may die between its lookup and the
/// allocation, which must not free it under the store's feet.
#[test]
fn flush_racing_stores_without_eviction() {
    let c = Arc::new(cache(1 << 20, false));
    let value = vec![b'v'; 200];
    fill(&c, "k", 10_000, 200);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flusher = {
        let (c, stop) = (c.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                c.flush_all(0);
                std::thread::yield_now();
            }
        })
    };
    for round in 0..20 {
        for i in 0..2_000 {
            let k = format!("k{}", (i * 7 + round) % 3_000);
            c.store(StoreMode::Set, k.as_bytes(), 0, 0, &value, 0);
        }
    }
    stop.store(true, Ordering::Relaxed);
    flusher.join().unwrap();
    audit(&c);
}

#[test]
fn a_failed_set_leaves_no_old_value() {
    let c = cache(1 << 20, false);
    fill(&c, "k", 100_000, 100);
    // A value of another class, with no room and no eviction.
    let big = vec![b'b'; 5000];
    assert_eq!(
        c.store(StoreMode::Set, b"k0", 0, 0, &big, 0).0,
        StoreResult::NoMemory
    );
    assert!(c.get(b"k0", None).is_none());
    audit(&c);
}

/// `flush_all` publishes its time and CAS as one pair: a reader racing
/// many flushes only ever sees a pair some flush published, never sees the
/// CAS go back, and once they have all returned the pair in force is the
/// one with the largest CAS (the last flush to reply OK is the one that
/// counts).
#[test]
fn racing_flushes_publish_whole_pairs_in_order() {
    use std::collections::{HashMap, HashSet};
    use std::sync::atomic::AtomicBool;
    const WRITERS: u32 = 2;
    const FLUSHES: u32 = 50_000;
    let c = Arc::new(cache(1 << 20, true));
    let now = c.clock().now();
    assert!(now >= 62, "delays below need a clock past 62");
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (c, done) = (c.clone(), done.clone());
        std::thread::spawn(move || {
            // Only new pairs are kept, so that the loop reads as fast as
            // it can and meets writers mid-publish as often as it can.
            let (mut seen, mut last) = (HashSet::new(), FlushPair::default());
            while !done.load(Ordering::Relaxed) {
                let pair = c.flush.read();
                if pair != last {
                    // Flushes publish in the order they took their CAS.
                    assert!(pair.oldest_cas > last.oldest_cas, "{last:?} then {pair:?}");
                    seen.insert(pair);
                    last = pair;
                }
            }
            seen
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let c = c.clone();
            std::thread::spawn(move || {
                // Delays 2..=61 make oldest_live 1..=60, all in the past,
                // so every flush takes a new CAS, and neighbouring flushes
                // publish different times.
                (0..FLUSHES)
                    .map(|i| {
                        let pair = c.publish_flush(2 + (i * WRITERS + w) % 60);
                        let now = c.flush.read();
                        assert!(
                            now.oldest_cas >= pair.oldest_cas,
                            "{pair:?} undone: {now:?}"
                        );
                        pair
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut published = HashMap::new();
    for t in writers {
        for pair in t.join().unwrap() {
            assert!((1..=60).contains(&pair.oldest_live), "{pair:?}");
            assert!(published
                .insert(pair.oldest_cas, pair.oldest_live)
                .is_none());
        }
    }
    done.store(true, Ordering::Relaxed);
    let seen = reader.join().unwrap();
    for pair in &seen {
        assert_eq!(
            published.get(&pair.oldest_cas),
            Some(&pair.oldest_live),
            "{pair:?} is no flush's pair"
        );
    }
    let last = c.flush.read();
    let max_cas = *published.keys().max().unwrap();
    assert_eq!(max_cas, u64::from(WRITERS * FLUSHES));
    assert_eq!(last.oldest_cas, max_cas, "an older flush's CAS won");
    assert_eq!(last.oldest_live, published[&max_cas]);
}

/// A worker that dies holding a shard's lock leaves the shard poisoned;
/// the next user refuses it rather than trust a half-updated shard. (The
/// binary aborts on the first panic; only tests can get this far.)
#[cfg(debug_assertions)]
#[test]
fn a_shard_whose_holder_died_is_not_used_again() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let mut c = cache(1 << 20, true);
    c.panic_key = Some(b"boom".to_vec().into_boxed_slice());
    c.store(StoreMode::Set, b"boom", 0, 0, b"v", 0);
    assert!(c.get(b"other", None).is_none(), "other keys are served");
    let died = catch_unwind(AssertUnwindSafe(|| c.get(b"boom", None)));
    assert!(died.is_err(), "the debug key panics");
    let again = catch_unwind(AssertUnwindSafe(|| c.delete(b"boom")));
    assert!(again.is_err(), "a poisoned shard was used");
}

// --- the segmented LRU (lru.rs, maintain.rs) ---------------------------

use lru::{COLD, HOT, TEMP, WARM};

/// The segment `key` is linked in.
fn seg_of(c: &Cache, key: &str) -> Option<usize> {
    let (hash, sh) = c.locate(key.as_bytes());
    sh.find(hash, key.as_bytes()).map(|h| sh.view(h).seg())
}

/// Items of `class` per segment, over all shards.
fn segs(c: &Cache, class: usize) -> [u64; lru::SEGS] {
    c.class_reports()[class].seg_number
}

fn class_for(c: &Cache, key_len: usize, len: usize) -> usize {
    c.classes()
        .class_for(items::item_size(key_len, 0, len, true))
}

#[test]
fn new_items_go_to_hot_and_the_maintainer_keeps_hot_to_its_share() {
    let c = cache(64 << 20, true);
    fill(&c, "k", 100, 100);
    let class = class_for(&c, 3, 100);
    assert_eq!(segs(&c, class), [100, 0, 0, 0]);
    assert!(c.juggle(class) > 0);
    let n = segs(&c, class);
    // HOT may keep 20% of the class's bytes; the rest went to COLD.
    assert!((18..=20).contains(&n[HOT]), "{n:?}");
    assert_eq!(n[HOT] + n[COLD], 100);
    let r = &c.class_reports()[class];
    assert_eq!(r.stats.moves_to_cold, n[COLD]);
    // A second juggle finds nothing to do.
    assert_eq!(c.juggle(class), 0);
    audit(&c);
}

#[test]
fn an_item_fetched_twice_in_cold_moves_to_warm_at_once() {
    let c = cache(64 << 20, true);
    fill(&c, "k", 100, 100);
    let class = class_for(&c, 3, 100);
    c.lru().tune(1, 40, 0.2, 2.0);
    c.juggle(class);
    let key = (0..100)
        .map(|i| format!("k{i}"))
        .find(|k| seg_of(&c, k) == Some(COLD))
        .expect("an item in COLD");
    assert!(c.get(key.as_bytes(), None).is_some());
    assert_eq!(seg_of(&c, &key), Some(COLD), "one fetch only marks it");
    assert!(c.get(key.as_bytes(), None).is_some());
    assert_eq!(seg_of(&c, &key), Some(WARM));
    let r = &c.class_reports()[class];
    assert_eq!((r.stats.moves_to_warm, r.stats.hits[COLD]), (1, 2));
    audit(&c);
}

#[test]
fn an_active_item_survives_a_flood_that_evicts_others() {
    let c = cache(1 << 20, true);
    let v = vec![b'v'; 200];
    c.store(StoreMode::Set, b"canary", 0, 0, &v, 0);
    let class = class_for(&c, 6, 200);
    for k in ["canary", "canary"] {
        assert!(c.get(k.as_bytes(), None).is_some());
    }
    for round in 0..50 {
        fill(&c, &format!("r{round}-"), 1000, 200);
        c.juggle(class);
    }
    assert!(c.stats.evictions.load(Ordering::Relaxed) > 10_000);
    assert!(c.get(b"canary", None).is_some(), "the canary was evicted");
    assert_eq!(seg_of(&c, "canary"), Some(WARM));
    audit(&c);
}

#[test]
fn short_ttl_items_go_to_temp_and_are_evicted_last() {
    let mut config = CacheConfig::with_limit(1 << 20);
    config.lru.temp_lru = true;
    let c = Cache::new(Arc::new(Clock::new()), &config);
    let now = c.clock().now();
    let v = vec![b'v'; 200];
    c.store(StoreMode::Set, b"temp", 0, now + 30, &v, 0);
    c.store(StoreMode::Set, b"long", 0, now + 3600, &v, 0);
    assert_eq!(seg_of(&c, "temp"), Some(TEMP));
    assert_eq!(seg_of(&c, "long"), Some(HOT));
    let class = class_for(&c, 4, 200);
    for round in 0..20 {
        fill(&c, &format!("r{round}-"), 1000, 200);
        c.juggle(class);
    }
    assert!(c.stats.evictions.load(Ordering::Relaxed) > 0);
    assert!(c.get(b"temp", None).is_some(), "the TEMP item was evicted");
    audit(&c);
}

#[test]
fn flat_mode_puts_new_items_in_cold_and_drains_hot() {
    let c = cache(64 << 20, true);
    fill(&c, "h", 10, 100);
    c.lru().set_segmented(false);
    fill(&c, "c", 10, 100);
    let class = class_for(&c, 2, 100);
    assert_eq!(segs(&c, class), [10, 0, 10, 0]);
    c.juggle(class);
    assert_eq!(segs(&c, class), [0, 0, 20, 0]);
    // Two fetches mark nothing active in flat mode.
    for _ in 0..2 {
        assert!(c.get(b"c1", None).is_some());
    }
    assert_eq!(seg_of(&c, "c1"), Some(COLD));
    audit(&c);
}
