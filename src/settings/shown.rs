//! Values `stats settings` shows for the options that are accepted but
//! change nothing here (memcached's slab mover, logger,
//! extstore and TLS knobs). An operator's tooling reads them back, so
//! they are shown as memcached 1.6.18 (Debian's build, with extstore and
//! TLS) would show them: its default, or the value last given with `-o`,
//! parsed and formatted as memcached does.

use super::config::Settings;
use crate::cnum::{atof, atoi, safe_strtoul};

impl Settings {
    /// The last value given for the accepted-but-inert `-o` option `name`
    /// (`Some(None)` when given without a value).
    fn given(&self, name: &str) -> Option<Option<&str>> {
        self.ignored_values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref())
    }

    fn given_any(&self, names: &[&str]) -> Option<(&str, Option<&str>)> {
        self.ignored_values
            .iter()
            .rev()
            .find(|(n, _)| names.contains(&n.as_str()))
            .map(|(n, v)| (n.as_str(), v.as_deref()))
    }

    /// `stats settings` lines for the inert options, in memcached's order,
    /// as (name, value); `at` tells where each group goes: see the
    /// [`InertGroup`] variants.
    pub fn inert_settings(&self, group: InertGroup) -> Vec<(&'static str, String)> {
        let int = |name: &str, default: i64| {
            self.given(name)
                .flatten()
                .map_or(default, |v| i64::from(atoi(v)))
                .to_string()
        };
        let uint = |name: &str, default: u64, scale: u64| {
            self.given(name)
                .flatten()
                .and_then(|v| safe_strtoul(v.as_bytes()))
                .map_or(default, |v| u64::from(v).wrapping_mul(scale) & 0xffff_ffff)
                .to_string()
        };
        let float = |name: &str, default: f64, places: usize| {
            let v = self.given(name).flatten().map_or(default, atof);
            format!("{v:.places$}")
        };
        let flag = |name: &str| {
            if self.given(name).is_some() {
                "yes"
            } else {
                "no"
            }
            .to_string()
        };
        let text = |name: &str, default: &str| {
            self.given(name)
                .flatten()
                .map_or(default.to_string(), str::to_string)
        };
        match group {
            InertGroup::SlabMover => {
                let names = ["slab_automove", "no_slab_automove", "no_modern"];
                let automove = match self.given_any(&names) {
                    Some(("no_slab_automove" | "no_modern", _)) => 0,
                    Some((_, Some(v))) => atoi(v),
                    _ => 1,
                };
                vec![
                    ("slab_automove", automove.to_string()),
                    ("slab_automove_ratio", float("slab_automove_ratio", 0.8, 2)),
                    ("slab_automove_window", uint("slab_automove_window", 30, 1)),
                ]
            }
            // `lru_crawler_sleep` and `lru_crawler_tocrawl` come before it,
            // from the crawler (the `lru_crawler` command changes them).
            InertGroup::Crawler => vec![("tail_repair_time", int("tail_repair_time", 0))],
            InertGroup::Hash => {
                let hash = match self.given_any(&["hash_algorithm", "no_modern"]) {
                    Some(("hash_algorithm", Some(v))) => v,
                    Some(_) => "jenkins",
                    None => "murmur3",
                };
                vec![("hash_algorithm", hash.to_string())]
            }
            InertGroup::Logger => vec![
                // Honoured (the `logger`), so the value is the setting's;
                // memcached shows it as an unsigned 32-bit number.
                (
                    "watcher_logbuf_size",
                    (self.watcher_logbuf_size as u32).to_string(),
                ),
                (
                    "worker_logbuf_size",
                    uint("worker_logbuf_size", 65_536, 1024),
                ),
            ],
            InertGroup::Tail => {
                let ssl_version = match self.given("ssl_min_version").flatten().map(atoi) {
                    Some(0) => "tlsv1.0",
                    Some(1) => "tlsv1.1",
                    Some(3) => "tlsv1.3",
                    _ => "tlsv1.2",
                };
                vec![
                    ("track_sizes", "no".to_string()),
                    ("inline_ascii_response", "no".to_string()),
                    ("ext_item_size", uint("ext_item_size", 512, 1)),
                    ("ext_item_age", uint("ext_item_age", u64::from(u32::MAX), 1)),
                    ("ext_low_ttl", uint("ext_low_ttl", 0, 1)),
                    ("ext_recache_rate", uint("ext_recache_rate", 2000, 1)),
                    ("ext_wbuf_size", uint("ext_wbuf_size", 4 << 20, 1 << 20)),
                    ("ext_compact_under", uint("ext_compact_under", 0, 1)),
                    ("ext_drop_under", uint("ext_drop_under", 0, 1)),
                    ("ext_max_sleep", uint("ext_max_sleep", 1_000_000, 1)),
                    ("ext_max_frag", float("ext_max_frag", 0.8, 2)),
                    (
                        "slab_automove_freeratio",
                        float("slab_automove_freeratio", 0.01, 3),
                    ),
                    ("ext_drop_unread", flag("ext_drop_unread")),
                    (
                        "ssl_enabled",
                        if self.tls.enabled { "yes" } else { "no" }.to_string(),
                    ),
                    ("ssl_chain_cert", text("ssl_chain_cert", "(null)")),
                    ("ssl_key", text("ssl_key", "(null)")),
                    // OpenSSL's flags: PEER 1, FAIL_IF_NO_PEER_CERT 2,
                    // CLIENT_ONCE 4.
                    (
                        "ssl_verify_mode",
                        [0, 1, 3, 7][self.tls.verify_mode.clamp(0, 3) as usize].to_string(),
                    ),
                    ("ssl_keyformat", int("ssl_keyformat", 1)),
                    ("ssl_ciphers", text("ssl_ciphers", "NULL")),
                    ("ssl_ca_cert", text("ssl_ca_cert", "NULL")),
                    ("ssl_wbuf_size", uint("ssl_wbuf_size", 16_384, 1024)),
                    ("ssl_session_cache", flag("ssl_session_cache")),
                    ("ssl_kernel_tls", flag("ssl_kernel_tls")),
                    ("ssl_min_version", ssl_version.to_string()),
                    ("num_napi_ids", "(null)".to_string()),
                    ("memory_file", "(null)".to_string()),
                ]
            }
        }
    }
}

/// Where a group of inert settings goes in `stats settings`.
#[derive(Clone, Copy, Debug)]
pub enum InertGroup {
    /// After `slab_reassign`.
    SlabMover,
    /// After `lru_crawler_tocrawl`.
    Crawler,
    /// After `dump_enabled`.
    Hash,
    /// After `idle_timeout`.
    Logger,
    /// After `read_buf_mem_limit`: the rest of memcached's list.
    Tail,
}
