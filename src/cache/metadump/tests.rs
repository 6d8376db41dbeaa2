//! The metadump cursor while the cache changes under it between batches.

use std::collections::HashMap;
use std::sync::Arc;

use super::*;
use crate::cache::{CacheConfig, StoreMode};
use crate::clock::Clock;

fn cache(limit: usize) -> Cache {
    Cache::new(Arc::new(Clock::new()), &CacheConfig::with_limit(limit))
}

fn set(c: &Cache, key: &str, len: usize) {
    c.store(StoreMode::Set, key.as_bytes(), 0, 0, &vec![b'v'; len], 0);
}

/// A tiny xorshift generator, so that the churn is the same every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Sizes from a few bytes to large items (over an eighth of a page).
const SIZES: [usize; 5] = [1, 40, 300, 2000, 9000];

/// Dump the cache in batches of about `batch` bytes, calling `churn`
/// between batches. Returns how often each (key, CAS) was listed.
fn dump_with(
    c: &Cache,
    classes: ClassSet,
    batch: usize,
    mut churn: impl FnMut(),
) -> HashMap<(String, u64), usize> {
    let mut cur = c.metadump(classes, true);
    let mut seen = HashMap::new();
    let mut out = Vec::new();
    let line = |v: ItemView<'_>, _class: usize, out: &mut Vec<u8>| {
        out.extend_from_slice(format!("{} {}\n", v.key().escape_ascii(), v.cas()).as_bytes());
    };
    for batches in 0.. {
        assert!(batches < 100_000, "the dump never ends");
        out.clear();
        let done = c.metadump_batch(&mut cur, batch, line, &mut out);
        assert!(out.len() <= batch);
        for l in String::from_utf8(out.clone()).unwrap().lines() {
            let (k, cas) = l.split_once(' ').unwrap();
            *seen
                .entry((k.to_string(), cas.parse().unwrap()))
                .or_insert(0) += 1;
        }
        if done {
            break;
        }
        churn();
    }
    seen
}

/// Items stored and deleted between batches, items read (bumped) and
/// large items among them: every item present for the whole dump is
/// listed exactly once, and no item twice.
#[test]
fn every_item_present_throughout_is_listed_once() {
    let c = cache(64 << 20);
    for i in 0..6000 {
        set(&c, &format!("stable{i}"), SIZES[i % SIZES.len()]);
    }
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut temp = 0;
    let seen = dump_with(&c, ClassSet::ALL, 1500, || {
        for _ in 0..40 {
            set(&c, &format!("temp{temp}"), SIZES[rng.below(SIZES.len())]);
            temp += 1;
        }
        for _ in 0..30 {
            c.delete(format!("temp{}", rng.below(temp)).as_bytes());
        }
        for _ in 0..20 {
            c.get(format!("stable{}", rng.below(6000)).as_bytes(), None);
        }
    });
    assert!(temp > 1000, "{temp} batches of churn");
    for ((k, _), n) in &seen {
        assert_eq!(*n, 1, "{k} listed {n} times");
    }
    for i in 0..6000 {
        let cas = c
            .peek(format!("stable{i}").as_bytes(), |v| v.cas())
            .unwrap();
        assert!(
            seen.contains_key(&(format!("stable{i}"), cas)),
            "stable{i} missed"
        );
    }
}

/// A full cache evicting, and pages moving between classes, while the
/// dump runs: it ends, lists nothing twice, and lists every item that
/// was never evicted.
#[test]
fn a_dump_survives_evictions_and_page_moves() {
    let c = cache(4 << 20);
    for i in 0..3000 {
        set(&c, &format!("stable{i}"), SIZES[i % 3]);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut n = 0;
    let seen = dump_with(&c, ClassSet::ALL, 700, || {
        for _ in 0..20 {
            // Growing values: memory moves to the larger classes.
            let len = SIZES[rng.below(SIZES.len())] + n / 20;
            set(&c, &format!("churn{n}"), len);
            n += 1;
        }
    });
    assert!(c.stats.evictions.load(std::sync::atomic::Ordering::Relaxed) > 0);
    for ((k, _), times) in &seen {
        assert_eq!(*times, 1, "{k} listed {times} times");
    }
    let mut kept = 0;
    for i in 0..3000 {
        let key = format!("stable{i}");
        if let Some(cas) = c.peek(key.as_bytes(), |v| v.cas()) {
            kept += 1;
            assert!(seen.contains_key(&(key, cas)), "stable{i} missed");
        }
    }
    assert!(kept > 0);
}

/// Only the classes asked for, and only live items.
#[test]
fn classes_and_dead_items_are_left_out() {
    let c = cache(16 << 20);
    for i in 0..500 {
        set(&c, &format!("a{i}"), 1);
        set(&c, &format!("b{i}"), 2000);
    }
    let class_a = c.class_of_key(b"a0").unwrap();
    let mut only_a = ClassSet::default();
    only_a.insert(class_a);
    let seen = dump_with(&c, only_a, 4096, || {});
    assert_eq!(seen.len(), 500);
    assert!(seen.keys().all(|(k, _)| k.starts_with('a')));
    let checked: u64 = c
        .class_reports()
        .iter()
        .map(|r| r.stats.crawler_items_checked)
        .sum();
    assert_eq!(checked, 500, "an LRU-mode dump counts what it looks at");
    c.store(StoreMode::Set, b"gone", 0, c.clock().realtime(-1), b"x", 0);
    let seen = dump_with(&c, ClassSet::ALL, 4096, || {});
    assert_eq!(seen.len(), 1000);
    c.flush_all(0);
    assert!(dump_with(&c, ClassSet::ALL, 4096, || {}).is_empty());
}
