//! `lru_crawler metadump` streams: a dump of a cache far larger than any
//! socket buffer, from a client that stalls and then reads, costs the
//! server no more than one connection's reply buffer (docs/ARCHITECTURE.md,
//! "Memory bounds"), and every key comes once.
use crate::common::{self, request};

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const KEYS: usize = 200_000;

#[test]
fn a_stalled_metadump_of_200k_keys_stays_within_16_mb() {
    let server = common::start_server(&["-m", "128"]);
    let pid = server.child.id();
    let mut s = server.tcp();
    let mut batch = Vec::new();
    for i in 0..KEYS {
        let _ = write!(
            batch,
            "set metadump-{i:08}-0123456789abcdef 0 0 10 noreply\r\n0123456789\r\n"
        );
        if batch.len() > 256 * 1024 {
            s.write_all(&batch).unwrap();
            batch.clear();
        }
    }
    s.write_all(&batch).unwrap();
    request(&mut s, b"version\r\n", b"\r\n");
    std::thread::sleep(Duration::from_millis(300));
    let before = common::rss_kb(pid);

    // Sample the server's RSS while the dump runs.
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(before));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(kb) = common::try_proc_status_kb(pid, "VmRSS") {
                    peak.fetch_max(kb, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let mut slow = server.tcp();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    slow.write_all(b"lru_crawler metadump all\r\n").unwrap();
    // The dump (about 19 MB: more than the bound, were it all held)
    // fills the socket buffers and waits.
    std::thread::sleep(Duration::from_millis(1500));
    let mut dump = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    while !dump.ends_with(b"END\r\n") {
        let n = slow.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {} bytes", dump.len());
        dump.extend_from_slice(&buf[..n]);
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();

    assert!(dump.len() > 17 << 20, "{} bytes", dump.len());
    let mut keys: Vec<&[u8]> = dump
        .split(|&b| b == b'\n')
        .filter_map(|l| l.strip_prefix(b"key="))
        .map(|l| &l[..l.iter().position(|&b| b == b' ').unwrap()])
        .collect();
    assert_eq!(keys.len(), KEYS);
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), KEYS, "a key listed twice");
    let growth = peak.load(Ordering::Relaxed).saturating_sub(before);
    eprintln!("RSS before the dump {before} kB, growth during it {growth} kB");
    assert!(growth < 16 * 1024, "the dump grew RSS by {growth} kB");
}
