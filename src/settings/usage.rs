//! The texts of `-h` and `-i`. They cover every flag memcached 1.6.18 has,
//! in rmemcached's own words; the first line is memcached's version line
//! because scripts read it.

use std::fmt::Write;

use super::config::{Protocol, Settings, VERSION_LINE};

/// One line per option: the flags, then what they do.
fn row(out: &mut String, flags: &str, what: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "{flags:<34}{what}");
}

/// The `-h` text, newline-terminated, with the built-in defaults filled in.
pub fn usage() -> String {
    let d = Settings::default();
    let protocol = match d.binding_protocol {
        Protocol::Auto => "auto",
        Protocol::Ascii => "ascii",
        Protocol::Binary => "binary",
    };
    let mut o = format!("{VERSION_LINE}\n");
    let r = &mut o;
    row(
        r,
        "-p, --port=<num>",
        &format!(
            "TCP port, -1 for any free port, 0 for none (default {})",
            d.port
        ),
    );
    row(
        r,
        "-U, --udp-port=<num>",
        &format!(
            "UDP port, -1 for any free port, 0 for none (default {});",
            d.udp_port
        ),
    );
    row(r, "", "given without -p it is the TCP port too");
    row(
        r,
        "-s, --unix-socket=<path>",
        "listen on this unix socket only (no TCP, no UDP)",
    );
    row(
        r,
        "-a, --unix-mask=<octal>",
        &format!(
            "permissions of the unix socket (default {:o})",
            d.access_mask
        ),
    );
    row(
        r,
        "-l, --listen=<addr>[,...]",
        "addresses to listen on, host or host:port; repeatable",
    );
    row(r, "", "(default: every address)");
    row(r, "-A, --enable-shutdown", "allow the \"shutdown\" command");
    row(r, "-d, --daemon", "detach and run in the background");
    row(
        r,
        "-P, --pidfile=<file>",
        "write the process id here (with -d)",
    );
    row(
        r,
        "-u, --user=<name>",
        "switch to this user when started as root",
    );
    row(
        r,
        "-r, --enable-coredumps",
        "raise the core file size limit",
    );
    row(
        r,
        "-m, --memory-limit=<MiB>",
        &format!(
            "memory for items, in megabytes (default {})",
            d.maxbytes >> 20
        ),
    );
    row(
        r,
        "-M, --disable-evictions",
        "answer an error when memory is full instead of evicting",
    );
    row(
        r,
        "-c, --conn-limit=<num>",
        &format!("most connections at once (default {})", d.maxconns),
    );
    row(
        r,
        "-t, --threads=<num>",
        &format!("worker threads (default {})", d.num_threads),
    );
    row(
        r,
        "-R, --max-reqs-per-event=<num>",
        &format!(
            "requests served per connection before others get a turn (default {})",
            d.reqs_per_event
        ),
    );
    row(
        r,
        "-b, --listen-backlog=<num>",
        &format!("listen() queue length (default {})", d.backlog),
    );
    row(
        r,
        "-B, --protocol=<name>",
        &format!("auto, ascii or binary (default {protocol})"),
    );
    row(
        r,
        "-I, --max-item-size=<size>",
        "largest item; bytes, or with a k or m suffix",
    );
    row(
        r,
        "",
        "(default 1m, at least 1k, at most 1024m, at most half of -m)",
    );
    row(
        r,
        "-f, --slab-growth-factor=<num>",
        &format!(
            "size ratio of successive slab classes (default {:.2})",
            d.factor
        ),
    );
    row(
        r,
        "-n, --slab-min-size=<bytes>",
        &format!(
            "smallest room for key, value and flags (default {})",
            d.chunk_size
        ),
    );
    row(r, "-C, --disable-cas", "do not keep CAS values");
    row(r, "-F, --disable-flush-all", "refuse \"flush_all\"");
    row(
        r,
        "-X, --disable-dumping",
        "refuse \"stats cachedump\" and \"lru_crawler metadump\"",
    );
    row(r, "-W, --disable-watch", "refuse \"watch\"");
    row(
        r,
        "-D <char>",
        &format!(
            "key prefix delimiter for \"stats detail\" (default '{}');",
            d.prefix_delimiter as char
        ),
    );
    row(r, "", "giving it also turns the per-prefix stats on");
    row(r, "-v, --verbose", "log errors and warnings");
    row(r, "-vv", "also log every command and reply");
    row(r, "-vvv", "also log connection state changes");
    row(r, "-k, --lock-memory", "accepted; memory is not locked");
    row(
        r,
        "-L, --enable-largepages",
        "accepted; no large pages are used",
    );
    row(
        r,
        "-e, --memory-file=<file>",
        "accepted; items always live in anonymous memory",
    );
    row(
        r,
        "-Y, --auth-file=<file>",
        "ASCII authentication tokens (implies -B ascii)",
    );
    row(
        r,
        "-N, --napi-ids=<num>",
        "accepted (at most -t); no NAPI thread selection",
    );
    row(
        r,
        "-S, --enable-sasl",
        "turn on Sasl authentication (binary protocol; loads libsasl2)",
    );
    row(r, "-Z, --enable-ssl", "enable TLS/SSL (rustls)");
    row(
        r,
        "-o, --extended=<opt>[,...]",
        "extended options, name or name=value:",
    );
    row(
        r,
        "   maxconns_fast",
        "drop connections past -c at once (default on;",
    );
    row(r, "", "no_maxconns_fast turns it off)");
    row(
        r,
        "   hashpower=<12..32>",
        "start the hash table at 2^N buckets",
    );
    row(
        r,
        "   idle_timeout=<secs>",
        "close connections idle this long (default 0, never)",
    );
    row(
        r,
        "   slab_chunk_max=<bytes>",
        &format!("largest slab chunk (default {})", d.slab_chunk_size_max),
    );
    row(
        r,
        "   slab_sizes=<a-b-...>",
        "explicit slab class sizes, ascending",
    );
    row(
        r,
        "   no_chunked_items",
        "make slab_chunk_max a whole slab page",
    );
    row(r, "   no_modern", "no_maxconns_fast and no_chunked_items");
    row(
        r,
        "   udp_reuseport",
        "one UDP socket per worker (rmemcached only)",
    );
    row(r, "", "memcached's other names are accepted and ignored:");
    row(r, "", "LRU, crawler, slab mover, hash, logging, ssl_*,");
    row(r, "", "proxy_* and ext_* tuning");
    row(r, "-h, --help", "show this text");
    row(r, "-V, --version", "show the version");
    row(r, "-i, --license", "show the license");
    o
}

/// The `-i` text, newline-terminated.
pub fn license() -> String {
    format!(
        "{VERSION_LINE}\n\n\
         rmemcached, a server speaking the memcached protocols, is distributed\n\
         under the BSD 3-Clause license. Its behaviour follows memcached,\n\
         Copyright (c) 2003, Danga Interactive, Inc., also BSD licensed.\n"
    )
}
