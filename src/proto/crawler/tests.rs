//! `lru_crawler` replies and metadump lines, without sockets or threads
//! (no crawler thread runs here: a crawl stays queued, which is what
//! `BUSY` needs).

use super::*;
use crate::cache::StoreMode;
use crate::proto::text::process_command;
use crate::server::Server;
use crate::settings::Settings;

fn server(settings: Settings) -> Server {
    Server::new(settings)
}

/// Run one command line; a metadump is pulled to its end in batches of
/// `batch` bytes, as a connection pulls it.
fn run_with(s: &Server, sess: &mut Session, line: &str, batch: usize) -> String {
    let mut out = Vec::new();
    let action = process_command(&s.ctx(), sess, line.as_bytes(), &mut out);
    match action {
        Action::Continue => {}
        Action::MetaDump(mut cur) => {
            let mut batches = 0;
            while !metadump_batch(&s.ctx(), &mut cur, out.len() + batch, &mut out) {
                batches += 1;
                assert!(batches < 1_000_000, "the dump never ends");
            }
        }
        other => panic!("{line}: {other:?}"),
    }
    String::from_utf8(out).unwrap()
}

fn run(s: &Server, line: &str) -> String {
    run_with(s, &mut Session::default(), line, METADUMP_LINE_MAX)
}

#[test]
fn settings_commands_reply_as_memcached() {
    let s = server(Settings::default());
    let table = [
        ("lru_crawler sleep 1000000", "OK\r\n"),
        (
            "lru_crawler sleep 1000001",
            "CLIENT_ERROR sleep must be one second or less\r\n",
        ),
        (
            "lru_crawler sleep x",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        (
            "lru_crawler sleep -1",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        ("lru_crawler tocrawl 4294967295", "OK\r\n"),
        (
            "lru_crawler tocrawl 1x",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        ("lru_crawler tocrawl 5", "OK\r\n"),
        ("lru_crawler sleep 20", "OK\r\n"),
        ("lru_crawler", "ERROR\r\n"),
        ("lru_crawler bogus", "ERROR\r\n"),
        ("lru_crawler sleep 1 noreply", "ERROR\r\n"),
        (
            "lru_crawler enable",
            "ERROR failed to start lru crawler thread\r\n",
        ),
        ("lru_crawler disable", "OK\r\n"),
        ("lru_crawler disable", "OK\r\n"),
        (
            "lru_crawler crawl 1",
            "CLIENT_ERROR lru crawler disabled\r\n",
        ),
        (
            "lru_crawler metadump all",
            "CLIENT_ERROR lru crawler disabled\r\n",
        ),
        ("lru_crawler enable", "OK\r\n"),
    ];
    for (req, want) in table {
        assert_eq!(run(&s, req), want, "{req}");
    }
    let cr = s.cache.crawler();
    assert_eq!((cr.sleep_us(), cr.tocrawl(), cr.enabled()), (20, 5, true));
}

#[test]
fn crawl_replies_as_memcached() {
    let s = server(Settings::default());
    let table = [
        ("lru_crawler crawl 0", "BADCLASS invalid class id\r\n"),
        ("lru_crawler crawl 64", "BADCLASS invalid class id\r\n"),
        ("lru_crawler crawl 1,x", "BADCLASS invalid class id\r\n"),
        ("lru_crawler crawl ,", "NOTSTARTED no items to crawl\r\n"),
        (
            "lru_crawler crawl hash",
            "ERROR an unknown error happened\r\n",
        ),
        ("lru_crawler crawl 1,,63", "OK\r\n"),
        // No crawler thread runs in this test: the crawl stays queued.
        (
            "lru_crawler crawl all",
            "BUSY currently processing crawler request\r\n",
        ),
        (
            "lru_crawler crawl hash",
            "BUSY currently processing crawler request\r\n",
        ),
        ("lru_crawler crawl 1 2", "ERROR\r\n"),
    ];
    for (req, want) in table {
        assert_eq!(run(&s, req), want, "{req}");
    }
    assert!(s.cache.crawler().running());
    assert_eq!(s.cache.crawler().starts(), 1);
}

#[test]
fn metadump_checks_come_first() {
    let s = server(Settings {
        dump_enabled: false,
        ..Settings::default()
    });
    assert_eq!(
        run(&s, "lru_crawler metadump all"),
        "ERROR metadump not allowed\r\n"
    );
    let s = server(Settings::default());
    assert_eq!(
        run(&s, "lru_crawler metadump 99"),
        "BADCLASS invalid class id\r\n"
    );
    assert_eq!(
        run(&s, "lru_crawler metadump ,"),
        "NOTSTARTED no items to crawl\r\n"
    );
    assert_eq!(run(&s, "lru_crawler metadump all"), "END\r\n");
    // A reply still unsent in the same output: memcached's
    // `resp_has_stack`.
    let mut sess = Session::default();
    let mut out = b"EN\r\n".to_vec();
    let a = process(
        &s.ctx(),
        &mut sess,
        &Tokens::new(b"lru_crawler metadump all"),
        &mut out,
    );
    assert_eq!(a, Action::Continue);
    assert_eq!(
        out,
        b"EN\r\nERROR cannot pipeline other commands before metadump\r\n"
    );
}

#[test]
fn metadump_lines_are_memcacheds() {
    let s = server(Settings::default());
    let set = |key: &[u8], exptime: u32| {
        let r = s.cache.store(StoreMode::Set, key, 5, exptime, b"value", 0);
        assert_eq!(r.0, crate::cache::StoreResult::Stored);
    };
    set(b"plain-key_1.~", 0);
    set(b"with space/%\xff", 1000);
    s.cache.get(b"plain-key_1.~", None);
    let dump = run(&s, "lru_crawler metadump hash");
    let started = s.cache.clock().process_started();
    let la = started + i64::from(s.cache.clock().now());
    let class = |k: &[u8]| s.cache.class_of_key(k).unwrap();
    let size = |k: &[u8]| s.cache.peek(k, |v| v.size()).unwrap();
    let a = format!(
        "key=plain-key_1.~ exp=-1 la={la} cas=1 fetch=yes cls={} size={}\n",
        class(b"plain-key_1.~"),
        size(b"plain-key_1.~")
    );
    let b = format!(
        "key=with%20space%2F%25%FF exp={} la={la} cas=2 fetch=no cls={} size={}\n",
        started + 1000,
        class(b"with space/%\xff"),
        size(b"with space/%\xff")
    );
    let mut lines: Vec<&str> = dump.split_inclusive('\n').collect();
    assert_eq!(lines.pop(), Some("END\r\n"));
    lines.sort();
    assert_eq!(lines, [a.as_str(), b.as_str()]);
    assert_eq!(run(&s, "lru_crawler metadump all"), dump);
}

/// Class lists pick the classes; expired and flushed items are left out;
/// a batch never passes its limit, and each line comes once.
#[test]
fn metadump_lists_live_items_of_the_classes_asked() {
    let s = server(Settings::default());
    for i in 0..2000 {
        let value = vec![b'v'; if i % 2 == 0 { 10 } else { 3000 }];
        let exptime = if i % 10 == 9 {
            s.cache.clock().realtime(-1)
        } else {
            0
        };
        s.cache.store(
            StoreMode::Set,
            format!("k{i}").as_bytes(),
            0,
            exptime,
            &value,
            0,
        );
    }
    let small = s.cache.class_of_key(b"k0").unwrap();
    let large = s.cache.class_of_key(b"k1").unwrap();
    assert_ne!(small, large);
    let keys = |dump: &str| {
        let mut k: Vec<String> = dump
            .lines()
            .filter_map(|l| Some(l.strip_prefix("key=")?.split(' ').next()?.to_string()))
            .collect();
        k.sort();
        k
    };
    let want = |pick: &dyn Fn(usize) -> bool| {
        let mut k: Vec<String> = (0..2000)
            .filter(|&i| i % 10 != 9 && pick(i))
            .map(|i| format!("k{i}"))
            .collect();
        k.sort();
        k
    };
    let mut sess = Session::default();
    let all = run_with(&s, &mut sess, "lru_crawler metadump all", 1500);
    assert_eq!(keys(&all), want(&|_| true));
    let one = run(&s, &format!("lru_crawler metadump {small}"));
    assert_eq!(keys(&one), want(&|i| i % 2 == 0));
    let both = run(&s, &format!("lru_crawler metadump {large},{small}"));
    assert_eq!(keys(&both), want(&|_| true));
    s.cache.flush_all(0);
    assert_eq!(run(&s, "lru_crawler metadump hash"), "END\r\n");
}

#[test]
fn a_datagram_dump_fits_its_budget_or_is_refused() {
    let mut s = server(Settings::default());
    for i in 0..300 {
        s.cache
            .store(StoreMode::Set, format!("key{i}").as_bytes(), 0, 0, b"v", 0);
    }
    let run_udp = |s: &Server, budget: usize| {
        let mut sess = Session::default();
        sess.restart(budget);
        let mut reply = Vec::new();
        crate::proto::datagram::process(
            &s.ctx(),
            &mut sess,
            b"lru_crawler metadump all\r\nversion\r\n",
            &mut reply,
        );
        String::from_utf8(reply).unwrap()
    };
    let whole = run_udp(&s, 1 << 20);
    assert_eq!(whole.lines().filter(|l| l.starts_with("key=")).count(), 300);
    let tail = format!("END\r\nVERSION {}\r\n", crate::settings::VERSION);
    assert!(whole.ends_with(&tail), "{whole}");
    s.udp_reply_budget = 4096;
    assert_eq!(
        run_udp(&s, 4096),
        "SERVER_ERROR out of memory writing metadump\r\n"
    );
}
