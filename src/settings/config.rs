//! Every setting of the server, memcached's `struct settings`, with its
//! defaults (`settings_init`).

use std::path::PathBuf;

/// The memcached release whose behaviour (and `version` reply) we mirror.
pub const VERSION: &str = "1.6.18";

/// What `-V` prints, and the first line of `-h`: clients and test suites
/// parse it, so it names memcached, not rmemcached.
pub const VERSION_LINE: &str = "memcached 1.6.18";

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
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// TCP port (`-p`, 11211). As in memcached, -1 picks a random port,
    /// reported through the file named by `MEMCACHED_PORT_FILENAME`, and 0
    /// opens no TCP socket at all.
    pub port: i32,
    /// UDP port (`-U`, 0 = off). As in memcached, a non-zero `-U` given
    /// without `-p` becomes the TCP port as well.
    /// -1 picks a random UDP port.
    pub udp_port: i32,
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
    /// Size of a slab page: always 1 MiB, as in memcached 1.6.18, whatever
    /// `-I` says (memcached 1.6 stores items larger than
    /// `slab_chunk_size_max` as chains of chunks instead of growing pages).
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
    /// Bytes of log lines each watcher may hold (`-o watcher_logbuf_size`,
    /// in KiB; 256 KiB).
    pub watcher_logbuf_size: usize,
    /// `stats sizes` keeps its histogram from the start (`-o track_sizes`).
    pub track_sizes: bool,
    /// Verbosity (`-v`, `-vv`, `-vvv`): 1 errors and warnings, 2 client
    /// commands, 3 every connection state transition. Capped at 3
    /// (memcached keeps counting, to no further effect).
    pub verbose: u8,
    /// Run as a daemon (`-d`).
    pub daemonize: bool,
    /// Where to write the pid (`-P`).
    pub pid_file: Option<PathBuf>,
    /// User to drop to when started as root (`-u`).
    pub username: Option<String>,
    /// Lock paged memory (`-k`): accepted, warned about, not done.
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
    /// Bytes of read buffers and response objects all workers may hold
    /// (`-o read_buf_mem_limit`, in megabytes; 0 = no limit); see
    /// [`crate::conn_mem`].
    pub read_buf_mem_limit: u32,
    /// One `SO_REUSEPORT` UDP socket per worker instead of one shared socket
    /// (`-o udp_reuseport`; an rmemcached extension).
    pub udp_reuseport: bool,
    /// Sources that get UDP replies (`-o udp_allow=CIDR;...|any`; an
    /// rmemcached extension, see `udp_guard`).
    pub udp_allow: crate::udp_guard::UdpAllow,
    /// Bytes a second any one source may be sent over UDP (`-o
    /// udp_reply_rate`, 0 = no cap; an rmemcached extension).
    pub udp_reply_rate: u64,
    /// Prefix delimiter for `stats detail` (`-D`, ':').
    pub prefix_delimiter: u8,
    /// Collect per-prefix stats from the start (set by `-D`; otherwise
    /// only after `stats detail on`).
    pub detail_enabled: bool,
    /// Explicit slab class sizes in bytes, ascending (`-o slab_sizes=
    /// 100-200-...`); empty means classes grow by `factor` from
    /// `chunk_size`.
    pub slab_sizes: Vec<u32>,
    /// Number of NAPI ids (`-N`, 0 = off): validated (at most
    /// `num_threads`) but not used, as there is no NAPI-based thread
    /// selection here.
    pub num_napi_ids: usize,
    /// Try large memory pages (`-L`): accepted, warned about, not done.
    pub large_pages: bool,
    /// File to mmap for item memory, for a restartable cache (`-e`):
    /// accepted, warned about, not used; memory is always anonymous.
    pub memory_file: Option<PathBuf>,
    /// TLS: `-Z` and the `ssl_*` options of `-o`.
    pub tls: TlsSettings,
    /// ASCII authentication token file (`-Y`). Recorded so the server can
    /// enforce it or refuse to start; as in memcached, giving it makes the
    /// listeners ASCII-only unless `-B` said otherwise (then it is an
    /// error).
    pub auth_file: Option<PathBuf>,
    /// SASL authentication of binary connections (`-S`, memcached's
    /// `settings.sasl`): the listeners speak binary unless `-B` said
    /// otherwise (then it is an error), and UDP must be off.
    pub sasl: bool,
    /// Names of the extended options (`-o`) that were accepted but mean
    /// nothing here, in the order first given, kept so that `stats
    /// settings` and the log can show them. See the `extended` module for
    /// which names those are.
    pub ignored_options: Vec<String>,
    /// Every such option as given, with its value, in order: `stats
    /// settings` shows the last value of each (see the `shown` module).
    pub ignored_values: Vec<(String, Option<String>)>,
    /// Whether `slabs reassign` is allowed (`-o slab_reassign`, on by
    /// default; `no_slab_reassign` and `no_modern` turn it off).
    pub slab_reassign: bool,
    /// The LRU is segmented (HOT, WARM, COLD) rather than flat: on by
    /// default; `-o no_lru_maintainer` and `-o no_modern` turn it off, as
    /// memcached's; `lru mode` changes it at run time, in the cache.
    pub lru_segmented: bool,
    /// Items whose TTL is at most `temporary_ttl` go to the TEMP LRU
    /// (`-o temporary_ttl=N` turns it on; `lru temp_ttl` at run time).
    pub temp_lru: bool,
    /// `-o temporary_ttl`: seconds (61).
    pub temporary_ttl: u32,
    /// `-o hot_lru_pct`: percent of a class's bytes HOT may hold (20).
    pub hot_lru_pct: u32,
    /// `-o warm_lru_pct`: percent WARM may hold (40).
    pub warm_lru_pct: u32,
    /// `-o hot_max_factor`: HOT's tail may be this times COLD's age (0.2).
    pub hot_max_factor: f64,
    /// `-o warm_max_factor`: WARM's tail may be this times COLD's age (2.0).
    pub warm_max_factor: f64,
    /// Start with the LRU crawler enabled (`-o lru_crawler`, on;
    /// `no_lru_crawler` turns it off; `lru_crawler enable|disable` changes
    /// it at run time, in the cache).
    pub lru_crawler: bool,
    /// `-o lru_crawler_sleep`: microseconds the crawler sleeps between
    /// batches (100).
    pub lru_crawler_sleep: u32,
    /// `-o lru_crawler_tocrawl`: items crawled per LRU and crawl, 0 = all.
    pub lru_crawler_tocrawl: u32,
    /// The LRU maintainer thread (`-o no_lru_maintainer` turns it off);
    /// with it `stats` and `stats items` show the segments' figures, as in
    /// memcached.
    pub lru_maintainer_thread: bool,
    /// `-o slab_automove=0|1|2` (1; `no_slab_automove` and `no_modern`
    /// make it 0): the slab mover's starting mode, which `slabs automove`
    /// changes at run time (in the cache).
    pub slab_automove: u8,
    /// `-o slab_automove_ratio` (0.8): automove 1 moves a page when the
    /// youngest evicting class's tail age is below this share of the
    /// oldest's.
    pub slab_automove_ratio: f64,
    /// `-o slab_automove_window` (30): seconds of history automove 1 keeps.
    pub slab_automove_window: u32,
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
            watcher_logbuf_size: 256 * 1024,
            track_sizes: false,
            verbose: 0,
            daemonize: false,
            pid_file: None,
            username: None,
            lock_memory: false,
            maxcore: false,
            maxconns_fast: true,
            hashpower_init: 0,
            idle_timeout: 0,
            read_buf_mem_limit: 0,
            udp_reuseport: false,
            udp_allow: Default::default(),
            udp_reply_rate: 0,
            prefix_delimiter: b':',
            detail_enabled: false,
            slab_sizes: Vec::new(),
            num_napi_ids: 0,
            large_pages: false,
            memory_file: None,
            tls: TlsSettings::default(),
            auth_file: None,
            sasl: false,
            ignored_options: Vec::new(),
            ignored_values: Vec::new(),
            slab_reassign: true,
            lru_segmented: true,
            temp_lru: false,
            temporary_ttl: 61,
            hot_lru_pct: 20,
            warm_lru_pct: 40,
            hot_max_factor: 0.2,
            warm_max_factor: 2.0,
            lru_crawler: true,
            lru_crawler_sleep: 100,
            lru_crawler_tocrawl: 0,
            lru_maintainer_thread: true,
            slab_automove: 1,
            slab_automove_ratio: 0.8,
            slab_automove_window: 30,
        }
    }
}

/// memcached's `settings.ssl_*`: TLS on the TCP listeners (`-Z`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `-Z`: TCP listeners speak TLS (but those given as `notls:` in `-l`).
    pub enabled: bool,
    /// `ssl_chain_cert`: the server's certificate chain (PEM).
    pub chain_cert: Option<PathBuf>,
    /// `ssl_key`: the server's private key.
    pub key: Option<PathBuf>,
    /// `ssl_keyformat`: OpenSSL's file type of the key, 1 (PEM, the
    /// default) or 2 (DER).
    pub keyformat: i32,
    /// `ssl_verify_mode` as given: 0 none, 1 request, 2 require, 3 once.
    pub verify_mode: i32,
    /// `ssl_ciphers`: OpenSSL's cipher list for TLS 1.2.
    pub ciphers: Option<String>,
    /// `ssl_ca_cert`: the CAs client certificates are checked against.
    pub ca_cert: Option<PathBuf>,
    /// `ssl_wbuf_size` in bytes (given in KiB; 16 KiB by default).
    pub wbuf_size: u32,
    /// `ssl_session_cache`: resume sessions the server cached.
    pub session_cache: bool,
    /// `ssl_kernel_tls`: ask for kernel TLS offload.
    pub kernel_tls: bool,
    /// `ssl_min_version` as given: 0 TLS 1.0, 1 TLS 1.1, 2 TLS 1.2 (the
    /// default), 3 TLS 1.3.
    pub min_version: i32,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            enabled: false,
            chain_cert: None,
            key: None,
            keyformat: 1,
            verify_mode: 0,
            ciphers: None,
            ca_cert: None,
            wbuf_size: 16 * 1024,
            session_cache: false,
            kernel_tls: false,
            min_version: 2,
        }
    }
}
