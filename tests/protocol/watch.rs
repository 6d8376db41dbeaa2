//! `watch`: the log lines, in memcached 1.6.18's formats, that a watcher
//! connection receives; several kinds on one watcher; a slow watcher's
//! skipped lines; the `log_*` stats; `-W`; and what a watcher that never
//! reads costs the server (its buffer is bounded). One test compares the
//! lines with the real memcached's, with the times, ids and descriptors
//! masked.
use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::{read_until, request, start_server, start_unix_server, start_with, stat};

const MEMCACHED: &str = "/usr/bin/memcached";

/// A watcher of `kinds` on `server`, past its `OK`.
fn watcher(server: &common::Server, kinds: &str) -> BufReader<TcpStream> {
    let mut w = server.tcp();
    w.write_all(format!("watch {kinds}\r\n").as_bytes())
        .unwrap();
    let mut r = BufReader::new(w);
    let mut ok = String::new();
    r.read_line(&mut ok).unwrap();
    assert_eq!(ok, "OK\r\n");
    r
}

/// The next log line, without its `\n`.
fn next_line<R: BufRead>(r: &mut R) -> String {
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    assert!(l.ends_with('\n'), "cut line {l:?}");
    l.pop();
    l
}

/// The line with `ts=` and `gid=` checked and cut off, and `cfd=N` masked
/// as `cfd=C`, so that lines of two servers compare.
fn masked(line: &str) -> String {
    let mut words = line.split(' ');
    let ts = words.next().unwrap();
    let (secs, usecs) = ts.strip_prefix("ts=").unwrap().split_once('.').unwrap();
    assert!(secs.parse::<u64>().unwrap() > 1_600_000_000, "{line}");
    assert!(usecs.parse::<u32>().unwrap() < 1_000_000, "{line}");
    let gid = words.next().unwrap();
    assert!(
        gid.strip_prefix("gid=").unwrap().parse::<u64>().is_ok(),
        "{line}"
    );
    words
        .map(|w| if w.starts_with("cfd=") { "cfd=C" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The descriptor `stats conns` shows for `client` (found by its port).
fn cfd_of(client: &mut TcpStream) -> u32 {
    let port = client.local_addr().unwrap().port();
    let reply = String::from_utf8(request(client, b"stats conns\r\n", b"END\r\n")).unwrap();
    let addr = format!(":addr tcp:127.0.0.1:{port}");
    let line = reply
        .lines()
        .find(|l| l.ends_with(&addr))
        .expect("own line");
    line["STAT ".len()..]
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn fetchers_and_mutations_in_memcacheds_format() {
    let server = start_server(&[]);
    let mut client = server.tcp();
    let cfd = cfd_of(&mut client);
    let mut w = watcher(&server, "fetchers mutations");
    request(&mut client, b"set foo 0 0 5\r\nhello\r\n", b"STORED\r\n");
    request(&mut client, b"get foo\r\n", b"END\r\n");
    request(&mut client, b"add foo 0 100 2\r\nhi\r\n", b"NOT_STORED\r\n");
    // A store looks the key up first, and says so.
    let expected = [
        format!("type=item_get key=foo status=not_found clsid=0 cfd={cfd} size=0"),
        format!("type=item_store key=foo status=stored cmd=set ttl=0 clsid=1 cfd={cfd} size=5"),
        format!("type=item_get key=foo status=found clsid=1 cfd={cfd} size=5"),
        format!("type=item_get key=foo status=found clsid=1 cfd={cfd} size=5"),
        format!(
            "type=item_store key=foo status=not_stored cmd=add ttl=100 clsid=1 cfd={cfd} size=2"
        ),
    ];
    for want in expected {
        let line = next_line(&mut w);
        let rest = line.splitn(3, ' ').nth(2).unwrap();
        assert_eq!(rest, want, "{line}");
        masked(&line);
    }
}

#[test]
fn a_key_of_250_bytes_is_uri_encoded_to_750() {
    let server = start_server(&[]);
    let mut client = server.tcp();
    let mut w = watcher(&server, "mutations");
    let key = "#".repeat(250);
    request(
        &mut client,
        format!("set {key} 0 0 1\r\nx\r\n").as_bytes(),
        b"STORED\r\n",
    );
    let line = next_line(&mut w);
    let key_field = line.split(' ').nth(3).unwrap();
    assert_eq!(key_field, format!("key={}", "%23".repeat(250)));
}

#[test]
fn kinds_stack_on_one_watcher_and_others_see_only_theirs() {
    // 1 MiB items at -m 8: every store past the first few evicts.
    let server = start_server(&["-m", "8"]);
    let mut client = server.tcp();
    let mut both = watcher(&server, "mutations evictions");
    let mut fetch = watcher(&server, "fetchers");
    let value = vec![b'v'; 500_000];
    for i in 0..40 {
        let mut req = format!("set big{i} 0 0 {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(&value);
        req.extend_from_slice(b"\r\n");
        request(&mut client, &req, b"STORED\r\n");
    }
    let (mut stores, mut evictions) = (0, 0);
    while stores < 40 {
        let line = masked(&next_line(&mut both));
        if line.starts_with("type=item_store ") {
            stores += 1;
        } else {
            assert!(
                line.starts_with("type=eviction key=big") && line.contains(" fetch=no ttl=-1 la="),
                "{line}"
            );
            assert!(line.ends_with(" size=500000"), "{line}");
            evictions += 1;
        }
    }
    assert!(evictions > 0);
    // The fetchers watcher saw the stores' lookups, and nothing else.
    for _ in 0..40 {
        let line = masked(&next_line(&mut fetch));
        assert!(line.starts_with("type=item_get key=big"), "{line}");
    }
}

#[test]
fn connection_events_with_reasons() {
    let server = start_server(&[]);
    let mut w = watcher(&server, "connevents");
    let mut c = server.tcp();
    let port = c.local_addr().unwrap().port();
    request(&mut c, b"version\r\n", b"\r\n");
    let cfd = cfd_of(&mut c);
    c.write_all(b"quit\r\n").unwrap();
    let opened = next_line(&mut w);
    assert_eq!(
        masked(&opened),
        format!("type=conn_new rip=127.0.0.1 rport={port} transport=tcp cfd=C")
    );
    assert!(opened.ends_with(&format!(" cfd={cfd}")));
    assert_eq!(
        masked(&next_line(&mut w)),
        format!("type=conn_close rip=127.0.0.1 rport={port} transport=tcp reason=normal cfd=C")
    );
    // A client speaking HTTP is hung up on: an error.
    let mut c = server.tcp();
    c.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    assert!(masked(&next_line(&mut w)).starts_with("type=conn_new "));
    assert!(masked(&next_line(&mut w)).ends_with(" transport=tcp reason=error cfd=C"));
}

#[test]
fn unix_socket_connections_are_local() {
    let server = start_unix_server(&[]);
    let mut w = server.unix();
    w.write_all(b"watch connevents\r\n").unwrap();
    let mut w = BufReader::new(w);
    assert_eq!(next_line(&mut w), "OK\r");
    let mut c = server.unix();
    request(&mut c, b"version\r\n", b"\r\n");
    drop(c);
    assert_eq!(
        masked(&next_line(&mut w)),
        "type=conn_new rip=unix rport=0 transport=local cfd=C"
    );
    assert_eq!(
        masked(&next_line(&mut w)),
        "type=conn_close rip=unix rport=0 transport=local reason=normal cfd=C"
    );
}

#[test]
fn a_slow_watcher_skips_lines_then_says_how_many() {
    let server = start_server(&["-o", "watcher_logbuf_size=8"]);
    let mut client = server.tcp();
    let mut w = server.tcp();
    w.write_all(b"watch\r\n").unwrap();
    assert_eq!(common::read_exact(&mut w, 4), b"OK\r\n");
    let spacer = "X".repeat(180);
    let mut events = 0u64;
    for batch in 0..40 {
        let mut req = Vec::new();
        for i in 0..500 {
            req.extend_from_slice(format!("get k{batch}.{i}{spacer}\r\n").as_bytes());
        }
        client.write_all(&req).unwrap();
        let mut ends = 0;
        let mut buf = [0u8; 65536];
        while ends < 500 {
            let n = client.read(&mut buf).unwrap();
            ends += buf[..n].windows(5).filter(|x| x == b"END\r\n").count();
        }
        events += 500;
    }
    let skipped = stat(&server, "log_watcher_skipped");
    assert!(skipped > 0);
    // Now read. Every line is either an event or says how many were
    // skipped before the next one; a skip is reported with the next line
    // that fits, so a get now and then gives the last ones their line.
    // In the end every event is accounted for.
    w.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut r = BufReader::new(w);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut shown, mut said_skipped, mut skip_lines) = (0u64, 0u64, 0);
    let mut line = String::new();
    while shown + said_skipped < events {
        assert!(
            Instant::now() < deadline,
            "{shown} shown, {said_skipped} skipped"
        );
        match r.read_line(&mut line) {
            Ok(_) if line.ends_with('\n') => {
                if let Some(n) = line.trim_end().strip_prefix("skipped=") {
                    said_skipped += n.parse::<u64>().unwrap();
                    skip_lines += 1;
                } else {
                    assert!(
                        masked(line.trim_end()).starts_with("type=item_get "),
                        "{line}"
                    );
                    shown += 1;
                }
                line.clear();
            }
            Ok(_) => {}
            Err(_) => {
                // Quiet: one more event to carry a pending skip count.
                request(&mut client, b"get more\r\n", b"END\r\n");
                events += 1;
            }
        }
    }
    assert_eq!(shown + said_skipped, events);
    assert!(skip_lines > 0 && said_skipped >= skipped);
    assert_eq!(stat(&server, "log_watcher_skipped"), said_skipped);
    assert_eq!(stat(&server, "log_watcher_sent"), shown);
}

#[test]
fn stats_count_watchers_and_lines() {
    let server = start_server(&[]);
    assert_eq!(stat(&server, "log_watchers"), 0);
    let mut w1 = watcher(&server, "fetchers");
    let w2 = watcher(&server, "mutations");
    assert_eq!(stat(&server, "log_watchers"), 2);
    let mut client = server.tcp();
    request(&mut client, b"get a\r\nget b\r\n", b"END\r\nEND\r\n");
    next_line(&mut w1);
    next_line(&mut w1);
    assert_eq!(stat(&server, "log_watcher_sent"), 2);
    assert_eq!(stat(&server, "log_worker_written"), 2);
    assert_eq!(stat(&server, "log_watcher_skipped"), 0);
    assert_eq!(stat(&server, "log_worker_dropped"), 0);
    drop(w1);
    drop(w2);
    // A closed watcher is untracked once its worker sees the close.
    let deadline = Instant::now() + Duration::from_secs(5);
    while stat(&server, "log_watchers") != 0 {
        assert!(Instant::now() < deadline, "watchers still tracked");
        std::thread::sleep(Duration::from_millis(20));
    }
    request(&mut client, b"stats reset\r\n", b"RESET\r\n");
    assert_eq!(stat(&server, "log_watcher_sent"), 0);
}

#[test]
fn refusals() {
    let server = start_server(&["-W"]);
    let mut c = server.tcp();
    assert_eq!(
        request(&mut c, b"watch mutations\r\n", b"\r\n"),
        b"CLIENT_ERROR watch commands not allowed\r\n"
    );
    let server = start_server(&[]);
    let mut c = server.tcp();
    assert_eq!(request(&mut c, b"watch bogus\r\n", b"\r\n"), b"ERROR\r\n");
    // A reply not yet written stands in the way, as in memcached.
    let reply = request(&mut c, b"version\r\nwatch\r\n", b"before watch\r\n");
    assert!(reply.ends_with(b"\r\nERROR cannot pipeline other commands before watch\r\n"));
    // Twenty watchers at most.
    let _ws: Vec<_> = (0..20).map(|_| watcher(&server, "fetchers")).collect();
    assert_eq!(
        request(&mut c, b"watch\r\n", b"\r\n"),
        b"WATCHER_TOO_MANY log watcher limit reached\r\n"
    );
}

#[test]
fn a_watcher_that_never_reads_costs_a_bounded_buffer() {
    let server = start_server(&["-t", "2"]);
    let pid = server.child.id();
    let mut client = server.tcp();
    // Watchers that never read: their sockets fill, then their buffers
    // (256 KiB each by default), then lines are skipped.
    let mut watchers = Vec::new();
    for _ in 0..4 {
        let mut w = server.tcp();
        w.write_all(b"watch fetchers mutations\r\n").unwrap();
        assert_eq!(common::read_exact(&mut w, 4), b"OK\r\n");
        watchers.push(w);
    }
    std::thread::sleep(Duration::from_millis(100));
    let base = common::rss_kb(pid);
    let spacer = "Y".repeat(200);
    for batch in 0..60 {
        let mut req = Vec::new();
        for i in 0..1000 {
            req.extend_from_slice(format!("get k{batch}.{i}{spacer}\r\n").as_bytes());
        }
        client.write_all(&req).unwrap();
        let mut ends = 0;
        let mut buf = [0u8; 65536];
        while ends < 1000 {
            let n = client.read(&mut buf).unwrap();
            ends += buf[..n].windows(5).filter(|x| x == b"END\r\n").count();
        }
    }
    // 60,000 lines of ~300 bytes (18 MB) for each of 4 watchers: what
    // the sockets could not take was skipped, not kept.
    let skipped = stat(&server, "log_watcher_skipped");
    let sent = stat(&server, "log_watcher_sent");
    assert!(skipped > 0);
    assert_eq!(skipped + sent, 4 * stat(&server, "log_worker_written"));
    let grown = common::peak_rss_kb(pid).saturating_sub(base);
    // Each watcher holds at most two buffers of 256 KiB: 2 MiB in all
    // (1.4 MB measured), against 72 MB of lines.
    assert!(grown < 8 * 1024, "RSS grew by {grown} kB");
    // Clients are still served.
    assert_eq!(
        request(&mut client, b"set z 0 0 1\r\nz\r\nget z\r\n", b"END\r\n"),
        b"STORED\r\nVALUE z 0 1\r\nz\r\nEND\r\n"
    );
    assert_eq!(stat(&server, "log_watchers"), 4);
}

/// The same commands against memcached 1.6.18 and rmemcached: the same
/// lines, once times, ids and descriptors are masked.
#[test]
fn lines_match_memcached() {
    fn run(server: &common::Server) -> Vec<String> {
        let mut w = watcher(server, "fetchers mutations");
        let mut c = server.tcp();
        for (req, end) in [
            (&b"set foo 0 0 5\r\nhello\r\n"[..], &b"STORED\r\n"[..]),
            (b"get foo missing\r\n", b"END\r\n"),
            (b"append foo 0 0 3\r\nabc\r\n", b"STORED\r\n"),
            (b"prepend nope 0 0 1\r\nx\r\n", b"NOT_STORED\r\n"),
            (b"add foo 0 0 1\r\nx\r\n", b"NOT_STORED\r\n"),
            (b"replace foo 5 0 2\r\nab\r\n", b"STORED\r\n"),
            (b"gets foo\r\n", b"END\r\n"),
            (b"cas foo 0 0 1 1\r\nx\r\n", b"EXISTS\r\n"),
            (b"touch foo 10\r\n", b"TOUCHED\r\n"),
            (b"incr n 1\r\n", b"NOT_FOUND\r\n"),
            (b"delete foo\r\n", b"DELETED\r\n"),
            (b"set a%20b 0 0 1\r\nx\r\n", b"STORED\r\n"),
        ] {
            request(&mut c, req, end);
        }
        c.write_all(b"version\r\n").unwrap();
        read_until(&mut c, b"\r\n");
        let mut lines = Vec::new();
        loop {
            let line = masked(&next_line(&mut w));
            let last = line.contains("key=a%2520b") && line.contains("item_store");
            lines.push(line);
            if last {
                return lines;
            }
        }
    }
    let mc = start_with(MEMCACHED, &[]);
    let rm = start_server(&[]);
    let (mc_lines, rm_lines) = (run(&mc), run(&rm));
    assert_eq!(rm_lines, mc_lines);
    assert!(rm_lines.len() > 15);
}

/// A datagram cannot become a watcher: it is told so, and the worker's
/// UDP socket goes on serving.
#[test]
fn watch_over_udp_is_refused() {
    let server = start_server(&[]);
    let s = server.udp();
    assert_eq!(
        common::udp_request(&s, 7, b"watch\r\nversion\r\n"),
        b"SERVER_ERROR watch is not supported over UDP\r\nVERSION 1.6.18\r\n".to_vec()
    );
    assert_eq!(stat(&server, "log_watchers"), 0);
}
