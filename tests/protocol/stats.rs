//! `stats` and `stats settings` use memcached's field names, in memcached's
//! order: checked against the real memcached, started with the same flags.
use crate::common;

/// The names of a `stats` reply, in order.
fn names(reply: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(reply)
        .lines()
        .filter_map(|l| l.strip_prefix("STAT "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

fn stats_names(server: &common::Server, cmd: &[u8]) -> Vec<String> {
    let mut s = server.tcp();
    names(&common::request(&mut s, cmd, b"END\r\n"))
}

/// The general names, under flag sets that change which names memcached
/// shows (the LRU crawler and maintainer, the slab mover, maxconns_fast,
/// the idle timeout).
#[test]
fn general_stats_names_match_memcached() {
    for args in [
        &[][..],
        &["-o", "no_modern"],
        &["-o", "no_lru_crawler,no_lru_maintainer"],
        &["-o", "no_slab_reassign,idle_timeout=5"],
        &["-o", "no_maxconns_fast"],
    ] {
        let ours = common::start_server(args);
        let theirs = common::start_with("/usr/bin/memcached", args);
        // The UDP guard's counters and the memory pools' are rmemcached's
        // own, after memcached's names.
        let got: Vec<String> = stats_names(&ours, b"stats\r\n")
            .into_iter()
            .filter(|n| !n.starts_with("udp_") && !n.contains("_pool_"))
            .collect();
        let want = stats_names(&theirs, b"stats\r\n");
        assert_eq!(got, want, "with {args:?}");
    }
}

/// `stats settings` lines other than the ports (each server has its own)
/// and rmemcached's own UDP guard settings.
fn settings_lines(server: &common::Server) -> Vec<String> {
    let mut s = server.tcp();
    let reply = common::request(&mut s, b"stats settings\r\n", b"END\r\n");
    String::from_utf8(reply)
        .unwrap()
        .lines()
        .filter(|l| {
            let name = l.split(' ').nth(1).unwrap_or("");
            !matches!(
                name,
                "tcpport" | "udpport" | "udp_reuseport" | "udp_allow" | "udp_reply_rate"
            )
        })
        .map(str::to_string)
        .collect()
}

/// Every `stats settings` line, names and values, in memcached's order,
/// byte for byte: with defaults, with `no_modern`, and with every inert
/// option given a value, so their values are seen to be shown as given
/// (except `worker_logbuf_size`: memcached 1.6.18 also takes its value as
/// `slab_sizes`, a fall-through in its option parser, not copied).
#[test]
fn settings_match_memcached_line_for_line() {
    for args in [
        &[][..],
        &["-o", "no_modern", "-t", "3", "-c", "77", "-R", "9"],
        &[
            "-o",
            "slab_automove=2,slab_automove_ratio=0.5,slab_automove_window=7,\
             lru_crawler_sleep=50,lru_crawler_tocrawl=9,tail_repair_time=20,\
             hash_algorithm=jenkins,hot_lru_pct=30,warm_lru_pct=50,hot_max_factor=0.3,\
             warm_max_factor=3,temporary_ttl=100,idle_timeout=5,watcher_logbuf_size=10,\
             read_buf_mem_limit=2,ext_item_size=600,\
             ext_wbuf_size=8,ext_max_frag=0.5,slab_automove_freeratio=0.02,\
             ext_drop_unread,ssl_min_version=3,ssl_wbuf_size=32,ssl_ciphers=HIGH",
        ],
        &["-o", "no_slab_automove,no_lru_crawler,no_lru_maintainer"],
    ] {
        let ours = common::start_server(args);
        let theirs = common::start_with("/usr/bin/memcached", args);
        assert_eq!(
            settings_lines(&ours),
            settings_lines(&theirs),
            "with {args:?}"
        );
    }
}

#[test]
fn counters_count_and_reset() {
    let server = common::start_server(&[]);
    let mut s = server.tcp();
    common::request(
        &mut s,
        b"set a 0 0 1\r\nx\r\nget a\r\nget b\r\n",
        b"END\r\nEND\r\n",
    );
    let value = |s: &mut std::net::TcpStream, name: &str| -> u64 {
        let reply = common::request(s, b"stats\r\n", b"END\r\n");
        let text = String::from_utf8(reply).unwrap();
        let prefix = format!("STAT {name} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value(&mut s, "cmd_get"), 2);
    assert_eq!(value(&mut s, "get_hits"), 1);
    assert_eq!(value(&mut s, "get_misses"), 1);
    assert_eq!(value(&mut s, "curr_items"), 1);
    assert_eq!(
        common::request(&mut s, b"stats reset\r\n", b"\r\n"),
        b"RESET\r\n"
    );
    assert_eq!(value(&mut s, "cmd_get"), 0);
    assert_eq!(value(&mut s, "curr_items"), 1, "gauges survive a reset");
}

#[test]
fn stats_detail_and_other_subcommands_match_memcached() {
    let script: &[&[u8]] = &[
        b"stats detail dump\r\n",
        b"stats detail on\r\n",
        b"set foo:1 0 0 1\r\nx\r\n",
        b"get foo:1 foo:2 nodelim\r\n",
        b"delete foo:3\r\n",
        b"stats detail dump\r\n",
        b"stats detail bogus\r\n",
        b"stats detail\r\n",
        b"stats reset\r\n",
        b"stats detail dump\r\n",
        b"stats extstore\r\n",
        b"stats extstore x\r\n",
        b"stats sizes\r\n",
        b"stats bogus\r\n",
        b"stats detail off\r\n",
        b"get foo:1\r\n",
        b"stats detail dump\r\n",
    ];
    let run = |server: &common::Server| {
        let mut s = server.tcp();
        let mut all = Vec::new();
        for step in script {
            let mut req = step.to_vec();
            req.extend_from_slice(b"version\r\n");
            let reply = common::request(&mut s, &req, b"VERSION 1.6.18\r\n");
            all.extend_from_slice(&reply);
        }
        all
    };
    let ours = common::start_server(&[]);
    let theirs = common::start_with("/usr/bin/memcached", &[]);
    assert_eq!(common::show(&run(&ours)), common::show(&run(&theirs)));
}

fn general(s: &mut std::net::TcpStream) -> std::collections::HashMap<String, u64> {
    String::from_utf8_lossy(&common::request(s, b"stats\r\n", b"END\r\n"))
        .lines()
        .filter_map(|l| l.strip_prefix("STAT "))
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// `read_buf_count` / `read_buf_bytes` follow the connections' read
/// buffers: three more clients that have sent a command add three buffers,
/// and closing them takes the buffers out again. (Without UDP: each
/// worker's UDP socket takes its buffer at its first wake-up, whenever
/// that is.)
#[test]
fn read_buffers_are_counted() {
    let server = common::start_server(&["-U", "0"]);
    let mut s = server.tcp();
    // The first `stats` reply is written before this connection's own
    // buffer is counted.
    general(&mut s);
    let base = general(&mut s);
    let mut clients: Vec<_> = (0..3).map(|_| server.tcp()).collect();
    for c in &mut clients {
        assert_eq!(
            common::request(c, b"version\r\n", b"\r\n"),
            b"VERSION 1.6.18\r\n"
        );
    }
    let busy = general(&mut s);
    assert_eq!(busy["read_buf_count"], base["read_buf_count"] + 3);
    assert!(busy["read_buf_bytes"] >= base["read_buf_bytes"] + 3 * 1024);
    drop(clients);
    let mut after = general(&mut s);
    for _ in 0..50 {
        if after["read_buf_count"] == base["read_buf_count"] {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        after = general(&mut s);
    }
    assert_eq!(after["read_buf_count"], base["read_buf_count"]);
    assert_eq!(after["read_buf_bytes"], base["read_buf_bytes"]);
}

/// `stats sizes`, `sizes_enable` and `sizes_disable` answer as memcached
/// does, byte for byte, through a run of stores and deletes (items stored
/// before `sizes_enable` are not counted), with `-o track_sizes` and with
/// `-C` too.
#[test]
fn sizes_histogram_matches_memcached() {
    let value = "v".repeat(300);
    let steps: Vec<(Vec<u8>, &[u8])> = vec![
        (b"stats sizes\r\n".to_vec(), b"END\r\n"),
        (b"set a 0 0 5\r\nhello\r\n".to_vec(), b"\r\n"),
        // No END after these two, in memcached.
        (b"stats sizes_enable\r\n".to_vec(), b"\r\n"),
        (b"stats sizes\r\n".to_vec(), b"END\r\n"),
        (
            format!("set b 0 0 5\r\nhello\r\nset cc 7 0 300\r\n{value}\r\nset dd 0 0 1\r\nx\r\n")
                .into_bytes(),
            b"STORED\r\nSTORED\r\nSTORED\r\n",
        ),
        (b"stats sizes\r\n".to_vec(), b"END\r\n"),
        (
            b"delete a\r\ndelete b\r\n".to_vec(),
            b"DELETED\r\nDELETED\r\n",
        ),
        (b"incr dd 5\r\n".to_vec(), b"\r\n"),
        (b"stats sizes\r\n".to_vec(), b"END\r\n"),
        (b"stats sizes_disable\r\n".to_vec(), b"\r\n"),
        (b"stats sizes\r\n".to_vec(), b"END\r\n"),
    ];
    for args in [&[][..], &["-o", "track_sizes"], &["-C"]] {
        let run = |server: &common::Server| {
            let mut s = server.tcp();
            let mut replies: Vec<Vec<u8>> = steps
                .iter()
                .map(|(req, end)| common::request(&mut s, req, end))
                .collect();
            let settings = settings_lines(server);
            replies.push(
                settings
                    .into_iter()
                    .find(|l| l.starts_with("STAT track_sizes"))
                    .unwrap()
                    .into_bytes(),
            );
            replies
        };
        let mc = common::start_with("/usr/bin/memcached", args);
        let rm = common::start_server(args);
        let (want, got) = (run(&mc), run(&rm));
        for (w, g) in want.iter().zip(&got) {
            assert_eq!(common::show(g), common::show(w), "{args:?}");
        }
    }
}
