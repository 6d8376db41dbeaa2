//! Command-line tests. Expected messages and exit codes were taken from
//! running memcached 1.6.18 with the same arguments.

use super::*;

/// The settings for `args`, failing the test on anything but `Run`.
fn run(args: &[&str]) -> Settings {
    match parse(args.iter().copied()) {
        Ok(Parsed::Run { settings, .. }) => *settings,
        other => panic!("{args:?}: expected settings, got {other:?}"),
    }
}

/// The error for `args`, as (message, exit code).
fn fail(args: &[&str]) -> (String, i32) {
    match parse(args.iter().copied()) {
        Err(e) => (e.to_string(), e.exit_code()),
        Ok(other) => panic!("{args:?}: expected an error, got {other:?}"),
    }
}

fn warnings(args: &[&str]) -> Vec<String> {
    match parse(args.iter().copied()) {
        Ok(Parsed::Run { warnings, .. }) => warnings,
        other => panic!("{args:?}: expected settings, got {other:?}"),
    }
}

#[test]
fn no_arguments_give_memcached_defaults() {
    let s = run(&[]);
    assert_eq!(s, Settings::default());
    assert_eq!((s.port, s.udp_port, s.num_threads), (11211, 0, 4));
    assert_eq!(
        (s.maxbytes, s.maxconns, s.item_size_max),
        (64 << 20, 1024, 1 << 20)
    );
    assert_eq!(
        (s.slab_page_size, s.slab_chunk_size_max),
        (1 << 20, 512 << 10)
    );
    assert!(s.maxconns_fast && s.use_cas && s.evict_to_free);
}

#[test]
fn verbosity_counts_in_every_spelling_and_stops_at_three() {
    assert_eq!(run(&["-v"]).verbose, 1);
    assert_eq!(run(&["-vv"]).verbose, 2);
    assert_eq!(run(&["-vvv"]).verbose, 3);
    assert_eq!(run(&["-v", "-v"]).verbose, 2);
    assert_eq!(run(&["-vvvvv"]).verbose, 3);
    assert_eq!(run(&["--verbose", "--verbose=7", "-v"]).verbose, 3);
}

#[test]
fn values_attach_or_follow() {
    for args in [
        &["-p11211"][..],
        &["-p", "11211"],
        &["--port=11211"],
        &["--port", "11211"],
    ] {
        assert_eq!(run(args).port, 11211, "{args:?}");
    }
    // Options cluster, the last one taking the rest as its value.
    let s = run(&["-vdp1234"]);
    assert_eq!((s.verbose, s.daemonize, s.port), (1, true, 1234));
    // getopt keeps the '=' of `-p=1`, and atoi("=1") is 0.
    assert_eq!(run(&["-p=1"]).port, 0);
}

#[test]
fn numbers_are_read_like_atoi() {
    assert_eq!(run(&["-p", "11212x"]).port, 11212);
    assert_eq!(run(&["-p", "abc"]).port, 0);
    assert_eq!(run(&["-b", "-7"]).backlog, -7);
    assert_eq!(run(&["-a", "0644"]).access_mask, 0o644);
    assert_eq!(run(&["-a", "777x"]).access_mask, 0o777);
    assert_eq!(run(&["-m", "128"]).maxbytes, 128 << 20);
    assert_eq!(run(&["-f", "1.5e0x"]).factor, 1.5);
}

#[test]
fn long_options_and_abbreviations() {
    let s = run(&[
        "--udp-port=11311",
        "--port=0",
        "--unix-socket=/tmp/mc.sock",
        "--unix-mask=755",
        "--memory-limit=32",
        "--conn-limit=10",
        "--threads=2",
        "--disable-cas",
        "--disable-evictions",
        "--protocol=ascii",
        "--max-item-size=512k",
        "--enable-shutdown",
        "--disable-flush-all",
        "--disable-dumping",
        "--disable-watch",
        "--pidfile=/tmp/pid",
        "--user=nobody",
        "--listen=127.0.0.1",
        "--slab-growth-factor=1.5",
        "--slab-min-size=64",
        "--max-reqs-per-event=5",
        "--listen-backlog=16",
        "--lock-memory",
        "--enable-coredumps",
        "--enable-largepages",
        "--daemon",
    ]);
    assert_eq!((s.port, s.udp_port), (0, 11311));
    assert_eq!(
        s.socket_path.as_deref(),
        Some(std::path::Path::new("/tmp/mc.sock"))
    );
    assert_eq!(
        (s.access_mask, s.maxbytes, s.maxconns, s.num_threads),
        (0o755, 32 << 20, 10, 2)
    );
    assert_eq!(
        (s.binding_protocol, s.item_size_max),
        (Protocol::Ascii, 512 << 10)
    );
    assert!(!s.use_cas && !s.evict_to_free && !s.flush_enabled && !s.dump_enabled);
    assert!(!s.watch_enabled && s.shutdown_command && s.lock_memory && s.maxcore);
    assert!(s.large_pages && s.daemonize);
    assert_eq!(
        (s.username.as_deref(), s.inter.as_deref()),
        (Some("nobody"), Some("127.0.0.1"))
    );
    assert_eq!(
        (s.factor, s.chunk_size, s.reqs_per_event, s.backlog),
        (1.5, 64, 5, 16)
    );
    assert_eq!(run(&["--po", "1"]).port, 1);
    assert_eq!(run(&["--verb"]).verbose, 1);
    assert!(matches!(parse(["--vers"]), Ok(Parsed::Version)));
}

#[test]
fn help_version_license_stop_parsing() {
    assert!(matches!(parse(["-h"]), Ok(Parsed::Help)));
    assert!(matches!(parse(["--help"]), Ok(Parsed::Help)));
    assert!(matches!(parse(["-V", "-x"]), Ok(Parsed::Version)));
    assert!(matches!(parse(["-I", "0", "-V"]), Ok(Parsed::Version)));
    assert!(matches!(parse(["-i"]), Ok(Parsed::License)));
    assert_eq!(fail(&["-t", "0", "-V"]).1, 1);
    let help = usage();
    assert!(help.starts_with("memcached 1.6.18\n"));
    for word in ["unix-socket", "udp-port", "--extended", "-vvv", "hashpower"] {
        assert!(help.contains(word), "help lacks {word}");
    }
    assert!(license().starts_with(VERSION_LINE));
}

#[test]
fn getopt_errors() {
    let ill = "\nIllegal argument \"?\"";
    assert_eq!(
        fail(&["-x"]),
        (format!("rmemcached: invalid option -- 'x'{ill}"), 1)
    );
    assert_eq!(
        fail(&["-vx"]).0,
        format!("rmemcached: invalid option -- 'x'{ill}")
    );
    assert_eq!(
        fail(&["-p"]),
        (
            format!("rmemcached: option requires an argument -- 'p'{ill}"),
            1
        )
    );
    assert_eq!(
        fail(&["--po"]).0,
        format!("rmemcached: option '--port' requires an argument{ill}")
    );
    assert_eq!(
        fail(&["--bogus=1"]).0,
        format!("rmemcached: unrecognized option '--bogus=1'{ill}")
    );
    assert_eq!(
        fail(&["--dae=1"]).0,
        format!("rmemcached: option '--daemon' doesn't allow an argument{ill}")
    );
    assert_eq!(
        fail(&["--ver"]),
        (
            format!("rmemcached: option '--ver' is ambiguous; possibilities: '--version' '--verbose'{ill}"),
            1
        )
    );
    assert_eq!(fail(&["--napi_ids", "1"]).1, 1);
}

#[test]
fn operands_are_skipped() {
    assert_eq!(run(&["foo", "-p", "5", "bar"]).port, 5);
    assert_eq!(run(&["--", "-p", "5"]).port, 11211);
    assert_eq!(run(&["-"]).port, 11211);
}

#[test]
fn bad_values_exit_one() {
    let msg = "Number of threads must be greater than 0";
    for t in ["0", "-1", "abc"] {
        assert_eq!(fail(&["-t", t]), (msg.into(), 1));
    }
    assert_eq!(
        fail(&["-c", "0"]),
        ("Maximum connections must be greater than 0".into(), 1)
    );
    assert_eq!(
        fail(&["-R", "0"]).0,
        "Number of requests per event must be greater than 0"
    );
    assert_eq!(fail(&["-n", "0"]).0, "Chunk size must be greater than 0");
    assert_eq!(fail(&["-f", "1"]).0, "Factor must be greater than 1");
    assert_eq!(fail(&["-D", ""]).0, "No delimiter specified");
    assert_eq!(
        fail(&["-N", "0"]).0,
        "Maximum number of NAPI IDs must be greater than 0"
    );
    assert_eq!(run(&["-t", "2"]).num_threads, 2);
}

#[test]
fn many_threads_only_warn() {
    let w = warnings(&["-t", "65"]);
    assert_eq!(w.len(), 1);
    assert!(w[0].starts_with("WARNING: Setting a high number of workerthreads"));
    assert!(warnings(&["-t", "64"]).is_empty());
}

#[test]
fn binding_protocol() {
    assert_eq!(run(&["-B", "binary"]).binding_protocol, Protocol::Binary);
    assert_eq!(run(&["-B", "auto"]).binding_protocol, Protocol::Auto);
    assert_eq!(
        fail(&["-B", "foo"]),
        (
            "Invalid value for binding protocol: foo\n -- should be one of auto, binary, or ascii"
                .into(),
            64
        )
    );
}

#[test]
fn item_size_suffixes_and_limits() {
    assert_eq!(run(&["-I", "1m"]).item_size_max, 1 << 20);
    assert_eq!(run(&["-I", "512k"]).item_size_max, 512 << 10);
    assert_eq!(run(&["-I", "1048576"]).item_size_max, 1 << 20);
    let s = run(&["-I", "2m"]);
    assert_eq!(
        (s.item_size_max, s.slab_page_size, s.slab_chunk_size_max),
        (2 << 20, 1 << 20, 512 << 10)
    );
    let s = run(&["-o", "no_chunked_items", "-I", "2M"]);
    assert_eq!(s.slab_chunk_size_max, 512 << 10);
    let too_small = (
        "Item max size cannot be less than 1024 bytes.".to_string(),
        64,
    );
    assert_eq!(fail(&["-I", "512"]), too_small);
    // memcached knows no `g`: "2g" is atoi'd to 2 bytes.
    assert_eq!(fail(&["-I", "2g"]), too_small);
    assert_eq!(
        fail(&["-I", "33m"]),
        (
            "Cannot set item size limit higher than 1/2 of memory max.".into(),
            64
        )
    );
    assert_eq!(
        fail(&["-m", "0"]).0,
        "Cannot set item size limit higher than 1/2 of memory max."
    );
    assert_eq!(
        fail(&["-I", "1025m", "-m", "4096"]),
        (
            "Cannot set item size limit higher than a gigabyte.".into(),
            64
        )
    );
    assert_eq!(
        fail(&["-I", "256k"]).0,
        "slab_chunk_max (bytes: 524288) cannot be larger than -I (item_size_max 262144)"
    );
    assert_eq!(
        fail(&["-I", "1100k"]).0,
        "-I (item_size_max: 1126400) must be evenly divisible by slab_chunk_max (bytes: 524288)"
    );
}

#[test]
fn udp_port_alone_moves_tcp_port() {
    let s = run(&["-U", "11311"]);
    assert_eq!((s.port, s.udp_port), (11311, 11311));
    let s = run(&["-U", "11311", "-p", "11411"]);
    assert_eq!((s.port, s.udp_port), (11411, 11311));
    let s = run(&["-p", "11411", "-U", "11311"]);
    assert_eq!((s.port, s.udp_port), (11411, 11311));
    assert_eq!(run(&["-U", "0"]).port, 11211);
    assert_eq!(
        fail(&["-U", "70000"]),
        ("ERROR: Invalid port number 70000.".into(), 64)
    );
    assert_eq!(
        fail(&["-p", "70000"]),
        ("ERROR: Invalid port number 70000.".into(), 64)
    );
}

#[test]
fn paths_users_and_listen_addresses() {
    let s = run(&[
        "-s",
        "/tmp/x.sock",
        "-P",
        "/run/mc.pid",
        "-e",
        "/dev/shm/m",
        "-D",
        "#",
    ]);
    assert_eq!(s.socket_path, Some("/tmp/x.sock".into()));
    assert_eq!(s.pid_file, Some("/run/mc.pid".into()));
    assert_eq!(s.memory_file, Some("/dev/shm/m".into()));
    assert_eq!((s.prefix_delimiter, s.detail_enabled), (b'#', true));
    // A repeat (or any substring of the list so far) is dropped, as in memcached.
    let s = run(&["-l", "127.0.0.1", "-l", "127.0.0", "-l", "::1"]);
    assert_eq!(s.inter.as_deref(), Some("127.0.0.1,::1"));
}

#[test]
fn sasl_takes_the_binary_protocol_and_no_udp() {
    // memcached.c's checks after the options: -S without -B means binary.
    let s = run(&["-S"]);
    assert!(s.sasl);
    assert_eq!(s.binding_protocol, Protocol::Binary);
    assert!(!run(&[]).sasl);
    assert_eq!(
        run(&["-S", "-B", "binary"]).binding_protocol,
        Protocol::Binary
    );
    assert_eq!(
        run(&["--enable-sasl", "-U", "0"]).binding_protocol,
        Protocol::Binary
    );
    let ascii = (
        "ERROR: You cannot allow the ASCII protocol while using SASL.".into(),
        64,
    );
    assert_eq!(fail(&["-S", "-B", "ascii"]), ascii);
    assert_eq!(fail(&["-S", "-B", "auto"]), ascii);
    assert_eq!(fail(&["-B", "binary", "-S", "-B", "ascii"]), ascii);
    let udp = (
        "ERROR: Cannot enable UDP while using binary SASL authentication.".into(),
        64,
    );
    assert_eq!(fail(&["-S", "-U", "11211"]), udp);
    assert_eq!(fail(&["-U", "-1", "-S"]), udp);
    // The protocol is checked first.
    assert_eq!(fail(&["-S", "-U", "1", "-B", "ascii"]), ascii);
    // With -Y too and no -B, -Y's check comes last and picks ASCII.
    assert_eq!(
        run(&["-S", "-Y", "/etc/tokens"]).binding_protocol,
        Protocol::Ascii
    );
}

#[test]
fn tls_and_auth_files_are_read() {
    let tls = run(&[
        "-Z",
        "-o",
        "ssl_chain_cert=c.pem,ssl_key=k.der,ssl_keyformat=2,ssl_verify_mode=2,ssl_wbuf_size=32",
    ])
    .tls;
    assert!(tls.enabled);
    assert_eq!(tls.chain_cert.as_deref(), Some("c.pem".as_ref()));
    assert_eq!(tls.key.as_deref(), Some("k.der".as_ref()));
    assert_eq!((tls.keyformat, tls.verify_mode), (2, 2));
    assert_eq!((tls.wbuf_size, tls.min_version), (32 * 1024, 2));
    assert_eq!(
        run(&["-Y", "/etc/tokens"]).binding_protocol,
        Protocol::Ascii
    );
    assert_eq!(
        fail(&["-Y", "/etc/tokens", "-B", "binary"]),
        (
            "ERROR: You cannot allow the BINARY protocol while using ascii authentication tokens."
                .into(),
            64
        )
    );
    assert_eq!(
        fail(&["-N", "8"]),
        (
            "Number of napi_ids(8) cannot be greater than number of threads(4)".into(),
            64
        )
    );
}

#[test]
fn extended_options() {
    let s = run(&[
        "-o",
        "no_maxconns_fast,hashpower=20,idle_timeout=30,udp_reuseport",
    ]);
    assert!(!s.maxconns_fast && s.udp_reuseport);
    assert_eq!((s.hashpower_init, s.idle_timeout), (20, 30));
    assert!(s.ignored_options.is_empty());
    let s = run(&[
        "-o",
        "modern,lru_crawler,hash_algorithm=xxh3,",
        "-o",
        "modern,ext_path=/x:1G",
    ]);
    assert!(s.lru_crawler);
    assert_eq!(s.ignored_options, ["modern", "hash_algorithm", "ext_path"]);
    assert!(run(&["-o", "no_maxconns_fast", "-o", "maxconns_fast"]).maxconns_fast);
    assert!(run(&["--extended="]).ignored_options.is_empty());
    let s = run(&["-o", "slab_chunk_max=16384,slab_sizes=100-200-16384"]);
    assert_eq!(
        (s.slab_chunk_size_max, s.slab_sizes.as_slice()),
        (16384, &[100, 200, 16384][..])
    );
    assert_eq!(run(&["-o", "no_modern"]).slab_chunk_size_max, 1 << 20);
    let w = warnings(&["-o", "resp_obj_mem_limit"]);
    assert_eq!(
        w,
        ["DEPRECATED: resp_obj_mem_limit no longer used. See read_buf_mem_limit,"]
    );
}

#[test]
fn extended_option_errors() {
    let illegal = |item: &str| (format!("Illegal suboption \"{item}\""), 1);
    assert_eq!(fail(&["-o", "bogus"]), illegal("bogus"));
    assert_eq!(fail(&["-o", "bogus=1,maxconns_fast"]), illegal("bogus=1"));
    assert_eq!(fail(&["-o", "maxconns_fast,,modern"]), illegal(""));
    assert_eq!(fail(&["-o", ","]), illegal(""));
    // Debian's memcached 1.6.18 has no proxy built in and refuses these.
    assert_eq!(
        fail(&["-o", "proxy_config=/x.lua"]),
        illegal("proxy_config=/x.lua")
    );
    assert_eq!(fail(&["-o", "proxy_uring"]), illegal("proxy_uring"));
    assert_eq!(
        fail(&["-o", "hashpower"]),
        ("Missing numeric argument for hashpower".into(), 1)
    );
    assert_eq!(
        fail(&["-o", "hashpower="]).0,
        "Initial hashtable multiplier of 0 is too low"
    );
    assert_eq!(
        fail(&["-o", "hashpower=5"]).0,
        "Initial hashtable multiplier of 5 is too low"
    );
    assert_eq!(
        fail(&["-o", "hashpower=40"]).0,
        "Initial hashtable multiplier of 40 is too high\n\
         Choose a value based on \"STAT hash_power_level\" from a running instance"
    );
    assert_eq!(
        fail(&["-o", "slab_chunk_max=abc"]).0,
        "could not parse argument to slab_chunk_max"
    );
    assert_eq!(
        fail(&["-o", "slab_chunk_max=300000"]),
        ("-I (item_size_max: 1048576) must be evenly divisible by slab_chunk_max (bytes: 300000)".into(), 64)
    );
    assert_eq!(
        fail(&["-o", "hash_algorithm=foo"]).0,
        "Unknown hash_algorithm option (jenkins, murmur3, xxh3)"
    );
    assert_eq!(
        fail(&["-o", "lru_crawler_tocrawl=-1"]).0,
        "lru_crawler_tocrawl takes a numeric 32bit value"
    );
    assert_eq!(
        fail(&["-o", "worker_logbuf_size=abc"]).0,
        "could not parse argument to worker_logbuf_size"
    );
    assert_eq!(
        fail(&["-o", "slab_automove=3"]).0,
        "slab_automove must be between 0 and 2"
    );
    assert_eq!(
        fail(&["-o", "ssl_verify_mode=4"]).0,
        "Invalid ssl_verify_mode. Use help to see valid options."
    );
    assert_eq!(
        fail(&["-o", "ext_path=/tmp/x:1G,ext_page_size=2"]).0,
        "Must specify ext_page_size before any ext_path arguments"
    );
    assert_eq!(
        fail(&["-o", "temporary_ttl=5,no_lru_maintainer"]),
        (
            "temporary_ttl requires lru_maintainer to be enabled".into(),
            64
        )
    );
    assert_eq!(
        fail(&["-o", "hot_lru_pct=50,warm_lru_pct=40"]).0,
        "hot_lru_pct + warm_lru_pct cannot be more than 80% combined"
    );
    assert_eq!(
        fail(&["-o", "slab_sizes=100-200-150"]),
        (
            "slab size 150 cannot be lower than or equal to a previous class size".into(),
            64
        )
    );
    assert_eq!(
        fail(&["-o", "slab_sizes=10"]).0,
        "slab size 10 is out of valid range"
    );
    assert_eq!(
        fail(&["-o", "slab_sizes=1000-x"]).0,
        "slab size 0 is out of valid range"
    );
    assert_eq!(
        fail(&["-o", "slab_sizes=100-104"]).0,
        "slab size 104 must be at least 8 bytes larger than previous class"
    );
}

#[test]
fn c_number_conversions() {
    use crate::cnum::{atof, atoi, safe_strtol, safe_strtoul};
    assert_eq!(
        (atoi(" 42abc"), atoi("-3"), atoi("+7"), atoi("x1")),
        (42, -3, 7, 0)
    );
    assert_eq!(atoi("4294967297"), 1); // glibc's long, truncated to int
    assert_eq!(
        (atof("2.5x"), atof("1e"), atof(".5"), atof("x")),
        (2.5, 1.0, 0.5, 0.0)
    );
    assert_eq!(
        (
            safe_strtoul(b"12"),
            safe_strtoul(b"12 "),
            safe_strtoul(b"12x")
        ),
        (Some(12), Some(12), None)
    );
    assert_eq!(
        (
            safe_strtoul(b"-1"),
            safe_strtoul(b""),
            safe_strtoul(b"4294967296")
        ),
        (None, None, Some(0))
    );
    assert_eq!(
        (safe_strtol(b"-5"), safe_strtol(b"99999999999999999999")),
        (Some(-5), None)
    );
}
