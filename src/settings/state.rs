//! The state of a command-line parse, shared by the option scanner
//! (`cmdline`) and the `-o` handler (`extended`).

use super::config::Settings;

/// memcached 1.6 carves chunks out of 1 MiB pages whatever `-I` is.
pub(super) const SLAB_PAGE_SIZE: i32 = 1024 * 1024;

/// The options read so far. Values that memcached range-checks only at the
/// end are kept in memcached's C types until then, so that out-of-range
/// input produces memcached's message rather than a silent wrap.
pub(super) struct State {
    pub(super) settings: Settings,
    pub(super) warnings: Vec<String>,
    pub(super) port: i32,
    pub(super) udp_port: i32,
    pub(super) tcp_specified: bool,
    pub(super) udp_specified: bool,
    /// `-B` was given: `-Y` and `-o proxy_config` must then agree with it.
    pub(super) protocol_specified: bool,
    pub(super) num_threads: i32,
    pub(super) num_napi_ids: i32,
    pub(super) item_size_max: i32,
    pub(super) slab_chunk_max: i32,
    /// `-o slab_chunk_max` was given, so `-I` and `no_modern` leave it be.
    pub(super) slab_chunk_changed: bool,
    /// Unparsed `-o slab_sizes`, checked last as memcached does.
    pub(super) slab_sizes: Option<String>,
    /// LRU state memcached cross-checks (`temporary_ttl`, `*_lru_pct`).
    pub(super) lru_maintainer: bool,
    pub(super) temp_lru: bool,
    pub(super) hot_lru_pct: i32,
    pub(super) warm_lru_pct: i32,
    /// An `ext_path` was given (then `ext_page_size` may not follow).
    pub(super) ext_path_seen: bool,
}

impl State {
    pub(super) fn new() -> State {
        let settings = Settings::default();
        State {
            port: settings.port,
            udp_port: settings.udp_port,
            num_threads: settings.num_threads as i32,
            num_napi_ids: 0,
            item_size_max: settings.item_size_max as i32,
            slab_chunk_max: settings.slab_chunk_size_max as i32,
            settings,
            warnings: Vec::new(),
            tcp_specified: false,
            udp_specified: false,
            protocol_specified: false,
            slab_chunk_changed: false,
            slab_sizes: None,
            lru_maintainer: true,
            temp_lru: false,
            hot_lru_pct: 20,
            warm_lru_pct: 40,
            ext_path_seen: false,
        }
    }
}
