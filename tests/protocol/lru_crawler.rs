//! `lru_crawler` against the real memcached 1.6.18: the settings
//! commands' replies and what `stats settings` shows of them, a crawl on
//! demand, and `memcached-tool`'s `dump` and `keys` (which read
//! `lru_crawler metadump all` to its `END`) giving the same keys and
//! values from both servers.
use crate::common::{self, read_until, request, Server};

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

const MEMCACHED: &str = "/usr/bin/memcached";
/// Debian's memcached package ships it.
const MEMCACHED_TOOL: &str = "/usr/share/memcached/scripts/memcached-tool";

fn both(extra: &[&str]) -> [Server; 2] {
    [
        common::start_server(extra),
        common::start_with(MEMCACHED, extra),
    ]
}

/// The `stats settings` lines of the crawler.
fn crawler_settings(server: &Server) -> Vec<String> {
    let mut s = server.tcp();
    let reply = request(&mut s, b"stats settings\r\n", b"END\r\n");
    String::from_utf8(reply)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("STAT lru_crawler"))
        .map(str::to_string)
        .collect()
}

/// The settings commands, each reply and the settings after, as memcached
/// gives them. (A crawl's `OK` or `BUSY` depends on timing; see below.)
#[test]
fn commands_and_settings_are_memcacheds() {
    let script: &[&[u8]] = &[
        b"lru_crawler sleep 2000\r\n",
        b"lru_crawler sleep 1000001\r\n",
        b"lru_crawler sleep -5\r\n",
        b"lru_crawler tocrawl 77\r\n",
        b"lru_crawler tocrawl 4294967296\r\n",
        b"lru_crawler tocrawl 12\r\n",
        b"lru_crawler tocrawl\r\n",
        b"lru_crawler metadump 0\r\n",
        b"lru_crawler metadump 1,a\r\n",
        b"lru_crawler crawl 64\r\n",
        b"lru_crawler crawl hash\r\n",
        b"lru_crawler enable\r\n",
        b"lru_crawler frob\r\n",
        b"lru_crawler disable\r\n",
    ];
    // memcached's `disable` returns before its thread has ended and
    // changed the setting; until then a crawl gets `ERROR an unknown error
    // happened`. These come once it has.
    let disabled: &[&[u8]] = &[
        b"lru_crawler crawl all\r\n",
        b"lru_crawler metadump all\r\n",
        b"lru_crawler disable\r\n",
    ];
    let mut transcripts = Vec::new();
    for server in both(&[]) {
        let mut s = server.tcp();
        let mut t = crawler_settings(&server);
        for (i, cmds) in [script, disabled].iter().enumerate() {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(300));
            }
            for cmd in *cmds {
                t.push(String::from_utf8(request(&mut s, cmd, b"\r\n")).unwrap());
            }
        }
        t.extend(crawler_settings(&server));
        transcripts.push(t);
    }
    assert_eq!(transcripts[0], transcripts[1]);
    assert!(transcripts[0].contains(&"STAT lru_crawler no".to_string()));
    assert!(transcripts[0].contains(&"STAT lru_crawler_tocrawl 12".to_string()));
}

/// `flush_all` makes every item dead; `lru_crawler crawl all` takes them
/// back, `lru_crawler_running` shows it at work and `lru_crawler_starts`
/// counts it. Started with the crawler off, as memcached's own test does,
/// and without the LRU maintainer, which also takes back the dead items it
/// meets at the LRU tails and could beat the crawl to them.
#[test]
fn a_crawl_takes_back_dead_items() {
    let server = common::start_server(&["-o", "no_lru_crawler,no_lru_maintainer"]);
    let mut s = server.tcp();
    let mut batch = Vec::new();
    for i in 0..5000 {
        let _ = write!(batch, "set dead{i} 0 0 1 noreply\r\nx\r\n");
    }
    s.write_all(&batch).unwrap();
    assert_eq!(request(&mut s, b"flush_all\r\n", b"\r\n"), b"OK\r\n");
    assert_eq!(
        request(&mut s, b"lru_crawler crawl all\r\n", b"\r\n"),
        b"CLIENT_ERROR lru crawler disabled\r\n"
    );
    assert_eq!(
        request(&mut s, b"lru_crawler enable\r\n", b"\r\n"),
        b"OK\r\n"
    );
    assert_eq!(
        request(&mut s, b"lru_crawler crawl all\r\n", b"\r\n"),
        b"OK\r\n"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while common::stat(&server, "lru_crawler_running") != 0 {
        assert!(Instant::now() < deadline, "the crawl did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(common::stat(&server, "curr_items"), 0);
    assert_eq!(common::stat(&server, "crawler_reclaimed"), 5000);
    assert_eq!(common::stat(&server, "lru_crawler_starts"), 1);
}

/// What a server holds: key -> (flags, exptime given, value).
type Contents = BTreeMap<String, (u32, i64, String)>;

/// Keys that need URI-encoding (`:` and `/`), flags, values of several
/// sizes (large items among them), and some with an exptime.
fn contents() -> Contents {
    (0..400)
        .map(|i| {
            let key = format!("tool:{i}/k-{}", "x".repeat(i % 7));
            let value = format!("v{i}-").repeat(1 + (i % 5) * 600);
            let exptime = if i % 3 == 0 { 3600 } else { 0 };
            (key, (i as u32, exptime, value))
        })
        .collect()
}

fn fill(server: &Server, c: &Contents) {
    let mut s = server.tcp();
    for (k, (flags, exptime, v)) in c {
        let req = format!("set {k} {flags} {exptime} {}\r\n{v}\r\n", v.len());
        assert_eq!(request(&mut s, req.as_bytes(), b"\r\n"), b"STORED\r\n");
    }
}

fn tool(server: &Server, args: &[&str]) -> String {
    let out = Command::new("perl")
        .arg(MEMCACHED_TOOL)
        .arg(format!("127.0.0.1:{}", server.port))
        .args(args)
        .output()
        .expect("run memcached-tool (Debian's memcached package ships it)");
    assert!(out.status.success(), "memcached-tool {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// `memcached-tool dump`'s `add <key> <flags> <exptime> <bytes>` records,
/// each with its value.
fn parse_dump(out: &str) -> BTreeMap<String, (u32, i64, String)> {
    let mut lines = out.split("\r\n");
    let mut got = BTreeMap::new();
    while let Some(head) = lines.next().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = head.split(' ').collect();
        assert_eq!((f[0], f.len()), ("add", 5), "{head}");
        let value = lines.next().unwrap().to_string();
        assert_eq!(value.len(), f[4].parse::<usize>().unwrap());
        let rec = (f[2].parse().unwrap(), f[3].parse().unwrap(), value);
        assert!(
            got.insert(f[1].to_string(), rec).is_none(),
            "{} twice",
            f[1]
        );
    }
    got
}

/// `memcached-tool HOST:PORT dump` and `keys` list every key, with its
/// flags, value and absolute exptime, from rmemcached as from memcached;
/// `dump 5` stops reading after five keys and closes, and the server
/// goes on serving.
#[test]
fn memcached_tool_dump_and_keys_work_as_with_memcached() {
    let want = contents();
    let mut dumps = Vec::new();
    for server in both(&[]) {
        fill(&server, &want);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let got = parse_dump(&tool(&server, &["dump"]));
        assert_eq!(got.len(), want.len());
        for (k, (flags, exptime, value)) in &want {
            let (f, e, v) = &got[k];
            assert_eq!((f, v), (flags, value), "{k}");
            if *exptime == 0 {
                assert_eq!(*e, 0, "{k}");
            } else {
                assert!((e - (now + exptime)).abs() <= 2, "{k}: exptime {e}");
            }
        }
        let keys = tool(&server, &["keys"]);
        let mut listed: Vec<String> = keys
            .lines()
            .map(|l| {
                let k = l.strip_prefix("key=").unwrap().split(' ').next().unwrap();
                k.replace("%3A", ":").replace("%2F", "/")
            })
            .collect();
        listed.sort();
        assert_eq!(listed, want.keys().cloned().collect::<Vec<_>>());
        let some = parse_dump(&tool(&server, &["dump", "5"]));
        assert_eq!(some.len(), 5);
        let mut s = server.tcp();
        assert_eq!(request(&mut s, b"version\r\n", b"\r\n")[..8], *b"VERSION ");
        dumps.push(keys.lines().count());
    }
    assert_eq!(dumps[0], dumps[1]);
}

/// memcached's own format, field by field, on the same item.
#[test]
fn metadump_lines_have_memcacheds_fields() {
    let mut lines = Vec::new();
    for server in both(&["-o", "no_modern,lru_crawler"]) {
        let mut s = server.tcp();
        request(&mut s, b"set a%20b 3 0 2\r\nhi\r\n", b"\r\n");
        request(&mut s, b"get a%20b\r\n", b"END\r\n");
        let dump = request(&mut s, b"lru_crawler metadump all\r\n", b"END\r\n");
        let dump = String::from_utf8(dump).unwrap();
        // Times and CAS differ from server to server, and `cls`/`size`
        // are each engine's own (as in `me`).
        let fields: Vec<String> = dump
            .split(' ')
            .map(|f| match f.split_once('=') {
                Some((name @ ("la" | "cas" | "cls"), _)) => format!("{name}=N"),
                Some(("size", rest)) => format!("size=N{}", &rest[rest.find('\n').unwrap()..]),
                _ => f.to_string(),
            })
            .collect();
        lines.push(fields.join(" "));
    }
    assert_eq!(
        lines[0],
        "key=a%2520b exp=-1 la=N cas=N fetch=yes cls=N size=N\nEND\r\n"
    );
    assert_eq!(lines[0], lines[1]);
}

/// A metadump from a client that does not read holds back nothing else:
/// other clients store, read and dump meanwhile, and the stalled dump
/// still ends with every key once its client reads.
#[test]
fn a_stalled_dump_blocks_no_one() {
    let server = common::start_server(&[]);
    let mut s = server.tcp();
    let mut batch = Vec::new();
    for i in 0..50_000 {
        let _ = write!(batch, "set stall{i:06} 0 0 4 noreply\r\nabcd\r\n");
    }
    s.write_all(&batch).unwrap();
    request(&mut s, b"version\r\n", b"\r\n");
    let mut slow = server.tcp();
    slow.write_all(b"lru_crawler metadump all\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(
        request(
            &mut s,
            b"set new 0 0 1\r\nn\r\nget stall000007\r\n",
            b"END\r\n"
        ),
        b"STORED\r\nVALUE stall000007 0 4\r\nabcd\r\nEND\r\n"
    );
    let fast = request(&mut s, b"lru_crawler metadump hash\r\n", b"END\r\n");
    assert!(started.elapsed() < Duration::from_secs(5));
    let count = |d: &[u8]| {
        d.split(|&b| b == b'\n')
            .filter(|l| l.starts_with(b"key="))
            .count()
    };
    assert_eq!(count(&fast), 50_001);
    let slow_dump = read_until(&mut slow, b"END\r\n");
    assert!((50_000..=50_001).contains(&count(&slow_dump)));
}

/// Over UDP memcached sends nothing for a metadump; here a dump that fits
/// the datagram's reply budget comes whole, framed like any reply, and a
/// larger one is refused within it.
#[test]
fn a_metadump_over_udp_fits_its_datagram_or_is_refused() {
    let server = common::start_server(&[]);
    let mut s = server.tcp();
    for i in 0..100 {
        let req = format!("set udp{i} 0 0 1\r\nx\r\n");
        request(&mut s, req.as_bytes(), b"\r\n");
    }
    let u = server.udp();
    let reply = common::udp_request(&u, 7, b"lru_crawler metadump all\r\n");
    let text = String::from_utf8(reply).unwrap();
    assert!(text.ends_with("END\r\n"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("key=udp")).count(),
        100
    );
    // 20,000 lines of 250-byte keys: about 5.5 MB, past the 1 MB budget.
    let key = "k".repeat(240);
    let mut batch = Vec::new();
    for i in 0..20_000 {
        let _ = write!(batch, "set {key}{i:05} 0 0 1 noreply\r\nx\r\n");
    }
    s.write_all(&batch).unwrap();
    request(&mut s, b"version\r\n", b"\r\n");
    let reply = common::udp_request(&u, 8, b"lru_crawler metadump all\r\nversion\r\n");
    assert_eq!(reply, b"SERVER_ERROR out of memory writing metadump\r\n");
}
