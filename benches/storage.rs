//! The storage engine alone, with no sockets and no protocol parsing: `get`
//! and `set` on a [`Cache`] from 1, 2 and 4 threads at once.
//!
//! The cache is 64 MiB and preloaded with 100,000 keys of 12 bytes
//! (`k00000000000` ...) holding 32-byte values, so every get hits and every
//! set replaces a live item. Each thread walks the key space with its own
//! xorshift sequence, so threads touch different keys but the same shards,
//! the way server workers do. The benchmarks are:
//!
//! - `storage/get/N`: `Cache::get_with`, the server's read path (the value is
//!   looked at while the shard lock is held, not copied out);
//! - `storage/set/N`: `Cache::store` in `set` mode;
//! - `storage/mixed_90_10/N`: nine gets to one set, drawn at random.
//!
//! `N` is the number of threads. The reported throughput is operations per
//! second summed over all threads, timed from the moment every thread has
//! started until the last one is done (thread start-up is not counted).
//! With more threads than cores the extra threads only take turns, so read
//! the 4-thread figures with the machine's core count in mind.
//!
//! Run it with `cargo bench --bench storage` (add `-- --quick` for a short
//! run, or a filter such as `-- get/` for one kind). Absolute numbers depend
//! on the machine; compare runs as ratios (before/after a change, or N
//! threads against 1 thread) on the same machine.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rmemcached::cache::{Cache, CacheConfig, StoreMode, StoreResult};
use rmemcached::clock::Clock;

/// Cache size (`-m 64`).
const LIMIT: usize = 64 << 20;
/// Keys preloaded; every operation picks one of them.
const KEYS: usize = 100_000;
/// Key length: `k` and eleven digits.
const KEY_LEN: usize = 12;
/// Value length.
const VALUE_LEN: usize = 32;
/// Thread counts measured.
const THREADS: [usize; 3] = [1, 2, 4];

type Key = [u8; KEY_LEN];

/// What each thread does per operation.
#[derive(Clone, Copy)]
enum Op {
    Get,
    Set,
    /// One set in ten, gets otherwise.
    Mixed,
}

/// The keys, built once so that formatting stays out of the timed loop.
fn make_keys() -> Vec<Key> {
    (0..KEYS)
        .map(|i| {
            let s = format!("k{i:011}");
            s.as_bytes().try_into().expect("12-byte key")
        })
        .collect()
}

/// A cache holding every key.
fn preloaded(keys: &[Key]) -> Cache {
    let cache = Cache::new(Arc::new(Clock::new()), &CacheConfig::with_limit(LIMIT));
    let value = [b'v'; VALUE_LEN];
    for key in keys {
        let (r, _) = cache.store(StoreMode::Set, key, 0, 0, &value, 0);
        assert_eq!(r, StoreResult::Stored, "preload failed");
    }
    cache
}

/// One step of xorshift64 (never yields 0 from a non-zero state).
fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// `iters` operations of kind `op` from one thread. Returns when it started
/// and finished, after everyone passed `start`.
fn worker(
    cache: &Cache,
    keys: &[Key],
    op: Op,
    seed: u64,
    iters: u64,
    start: &Barrier,
) -> (Instant, Instant) {
    let value = [b'w'; VALUE_LEN];
    let n = keys.len() as u64;
    let mut x = seed | 1;
    let mut sum = 0usize;
    let mut misses = 0u64;
    let mut failed = 0u64;
    start.wait();
    let began = Instant::now();
    for _ in 0..iters {
        x = xorshift(x);
        // High half picks the key, low half picks the operation.
        let key = &keys[(((x >> 32) * n) >> 32) as usize];
        let set = match op {
            Op::Get => false,
            Op::Set => true,
            Op::Mixed => (x as u32).is_multiple_of(10),
        };
        if set {
            let (r, cas) = cache.store(StoreMode::Set, key, 0, 0, &value, 0);
            failed += u64::from(r != StoreResult::Stored);
            black_box(cas);
        } else {
            match cache.get_with(key, None, |item| item.data().len()) {
                Some(len) => sum += len,
                None => misses += 1,
            }
        }
    }
    let ended = Instant::now();
    black_box(sum);
    assert_eq!(misses, 0, "a preloaded key was missing");
    assert_eq!(failed, 0, "a set was not stored");
    (began, ended)
}

/// Wall time for `threads` threads each doing `iters` operations.
fn run(cache: &Cache, keys: &[Key], op: Op, threads: usize, iters: u64, round: u64) -> Duration {
    let start = Barrier::new(threads);
    let spans: Vec<(Instant, Instant)> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let seed = (t as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ round;
                let start = &start;
                s.spawn(move || worker(cache, keys, op, seed, iters, start))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .collect()
    });
    let began = spans.iter().map(|s| s.0).min().expect("one thread");
    let ended = spans.iter().map(|s| s.1).max().expect("one thread");
    ended - began
}

fn storage(c: &mut Criterion) {
    let keys = make_keys();
    let cache = preloaded(&keys);
    let mut group = c.benchmark_group("storage");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, op) in [
        ("get", Op::Get),
        ("set", Op::Set),
        ("mixed_90_10", Op::Mixed),
    ] {
        for threads in THREADS {
            // One criterion iteration is one operation on every thread, so
            // the elements per iteration are the thread count.
            group.throughput(Throughput::Elements(threads as u64));
            group.bench_with_input(BenchmarkId::new(name, threads), &threads, |b, &threads| {
                let mut round = 0u64;
                b.iter_custom(|iters| {
                    round += 1;
                    run(&cache, &keys, op, threads, iters, round)
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, storage);
criterion_main!(benches);
