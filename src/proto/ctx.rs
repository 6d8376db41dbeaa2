//! What the protocols see of the server: the cache, the counters, the
//! settings, the SASL library, and an [`Admin`] hook for what reaches further (the `stats`
//! reports, `verbosity`). A narrow context, so that the protocols depend on
//! the storage and the counters but not on the connections or threads
//! above them; memcached's `proto_text.c` reaches the same things through
//! its globals (`settings`, `stats`) and `c->thread`.

use crate::cache::Cache;
use crate::counters::Stats;
use crate::sasl::Sasl;
use crate::settings::Settings;
use crate::stats_prefix::PrefixStats;

/// The server as a command sees it.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The cache.
    pub cache: &'a Cache,
    /// The server-wide counters.
    pub stats: &'a Stats,
    /// `stats detail` per-prefix counters.
    pub prefix: &'a PrefixStats,
    /// Settings, read-only.
    pub settings: &'a Settings,
    /// The SASL library under `-S` (`None` without it, or when it is
    /// not loaded: then every exchange fails).
    pub sasl: Option<&'static Sasl>,
    /// Reports and knobs that reach past the cache.
    pub admin: &'a dyn Admin,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").finish_non_exhaustive()
    }
}

/// A `stats` report that reads more than the cache (memcached's
/// `server_stats`, `process_stat_settings`, `do_item_stats`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// `stats` with no argument.
    General,
    /// `stats settings`.
    Settings,
    /// `stats items`.
    Items,
    /// `stats slabs`.
    Slabs,
    /// `stats sizes`.
    Sizes,
    /// `stats conns`.
    Conns,
    /// `stats rmemcached`: this server's own counters (UDP guard, pools).
    Own,
}

/// What the protocols ask of the server beyond the cache and the counters.
pub trait Admin {
    /// Write a `stats` report's `STAT` lines and its `END`.
    fn report(&self, which: Report, out: &mut Vec<u8>);
    /// The current verbosity.
    fn verbosity(&self) -> u8;
    /// The `verbosity` command.
    fn set_verbosity(&self, level: u32);
    /// `refresh_certs`: load the TLS certificates again; the error is
    /// memcached's whole reply.
    fn refresh_certs(&self) -> Result<(), String>;
}
