//! `-o name[=value],...`: memcached's extended options (its `getsubopt`
//! loop, plus the `ext_*` names its extstore build hands to
//! `storage_read_config`).
//!
//! Every name memcached 1.6.18 knows in any build is accepted, so that
//! configurations written for memcached start. Values are checked as
//! memcached checks them, with its messages. What each name does here:
//!
//! | name | effect in rmemcached |
//! |------|----------------------|
//! | `maxconns_fast`, `no_maxconns_fast` | [`Settings::maxconns_fast`](super::Settings::maxconns_fast) |
//! | `hashpower=N` (12..=32) | [`Settings::hashpower_init`](super::Settings::hashpower_init) |
//! | `idle_timeout=S` | [`Settings::idle_timeout`](super::Settings::idle_timeout) (negative = 0) |
//! | `read_buf_mem_limit=MB` | [`Settings::read_buf_mem_limit`](super::Settings::read_buf_mem_limit) |
//! | `slab_chunk_max=BYTES` | [`Settings::slab_chunk_size_max`](super::Settings::slab_chunk_size_max); plain bytes, no suffix, as in 1.6.18 |
//! | `slab_sizes=A-B-...` | [`Settings::slab_sizes`](super::Settings::slab_sizes) |
//! | `no_chunked_items` | `slab_chunk_size_max` = slab page size |
//! | `no_modern` | `no_maxconns_fast`, `no_lru_crawler`, `no_lru_maintainer` (a flat LRU, plain `stats items` names), and `no_chunked_items` unless `slab_chunk_max` was given |
//! | `lru_crawler`, `no_lru_crawler` | [`Settings::lru_crawler`](super::Settings::lru_crawler): the crawler starts enabled or not |
//! | `lru_crawler_sleep=US`, `lru_crawler_tocrawl=N` | [`Settings::lru_crawler_sleep`](super::Settings::lru_crawler_sleep), [`Settings::lru_crawler_tocrawl`](super::Settings::lru_crawler_tocrawl) |
//! | `udp_reuseport` | [`Settings::udp_reuseport`](super::Settings::udp_reuseport) (rmemcached only) |
//! | `udp_allow=CIDR;...\|any` | [`Settings::udp_allow`](super::Settings::udp_allow) (rmemcached only) |
//! | `udp_reply_rate=BYTES` | [`Settings::udp_reply_rate`](super::Settings::udp_reply_rate) (rmemcached only) |
//! | `lru_maintainer`, `no_lru_maintainer` | [`Settings::lru_maintainer_thread`](super::Settings::lru_maintainer_thread) and [`Settings::lru_segmented`](super::Settings::lru_segmented) |
//! | `hot_lru_pct`, `warm_lru_pct`, `hot_max_factor`, `warm_max_factor` | the LRU maintainer's limits ([`Settings::hot_lru_pct`](super::Settings::hot_lru_pct), ...) |
//! | `temporary_ttl=S` | [`Settings::temp_lru`](super::Settings::temp_lru) and [`Settings::temporary_ttl`](super::Settings::temporary_ttl) |
//! | `resp_obj_mem_limit` | nothing; memcached's deprecation notice is printed |
//! | `watcher_logbuf_size=KB` | [`Settings::watcher_logbuf_size`](super::Settings::watcher_logbuf_size) |
//! | `track_sizes` | [`Settings::track_sizes`](super::Settings::track_sizes) |
//! | `slab_automove[=0..2]`, `no_slab_automove`, `slab_automove_ratio`, `slab_automove_window` | [`Settings::slab_automove`](super::Settings::slab_automove), [`Settings::slab_automove_ratio`](super::Settings::slab_automove_ratio), [`Settings::slab_automove_window`](super::Settings::slab_automove_window) (also kept in [`Settings::ignored_values`](super::Settings::ignored_values), which `stats settings` reads) |
//!
//! Accepted no-ops, recorded by name in
//! [`Settings::ignored_options`](super::Settings::ignored_options) after
//! their value passes memcached's check: `no_hashexpand`, `slab_automove_freeratio`,
//! `tail_repair_time`, `hash_algorithm`,
//! `worker_logbuf_size` (there is no per-worker log buffer), `inline_ascii_resp`,
//! `no_inline_ascii_resp`, `modern`, `drop_privileges`,
//! `no_drop_privileges`, `relaxed_privileges`,
//! `sock_cookie_id`, the TLS ones (`ssl_chain_cert`, `ssl_key`,
//! `ssl_keyformat`, `ssl_verify_mode`, `ssl_ciphers`, `ssl_ca_cert`,
//! `ssl_wbuf_size`, `ssl_session_cache`, `ssl_kernel_tls`,
//! `ssl_min_version`) and
//! the extstore ones (`ext_path`, `ext_page_size`, `ext_wbuf_size`,
//! `ext_threads`, `ext_io_depth`, `ext_item_size`, `ext_item_age`,
//! `ext_low_ttl`, `ext_recache_rate`, `ext_compact_under`,
//! `ext_drop_under`, `ext_max_sleep`, `ext_max_frag`, `ext_drop_unread`).
//!
//! Any other name is refused with `Illegal suboption "<item>"`, exit 1,
//! among them the proxy ones (`proxy_config`, `proxy_uring`), which
//! Debian's memcached 1.6.18, built without its proxy, refuses the same
//! way: a server that quietly cached instead of routing would be worse.

use super::error::SettingsError;
use super::state::{State, SLAB_PAGE_SIZE};
use crate::cnum::{atof, atoi, safe_strtod, safe_strtol, safe_strtoul};

/// Whether an option changed anything here.
enum Effect {
    Honoured,
    Ignored,
}

/// Handle the value of one `-o`.
pub(super) fn apply(state: &mut State, list: &str) -> Result<(), SettingsError> {
    let mut items: Vec<&str> = list.split(',').collect();
    // getsubopt stops where the string ends: a trailing comma (or an empty
    // `-o ''`) ends the list, an empty item anywhere else is illegal.
    if items.last() == Some(&"") {
        items.pop();
    }
    for item in items {
        let (name, value) = match item.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (item, None),
        };
        match one(state, item, name, value)? {
            Effect::Honoured => {}
            Effect::Ignored => {
                let ignored = &mut state.settings.ignored_options;
                if !ignored.iter().any(|n| n == name) {
                    ignored.push(name.to_owned());
                }
                let given = (name.to_owned(), value.map(str::to_owned));
                state.settings.ignored_values.push(given);
            }
        }
    }
    Ok(())
}

fn bad(msg: impl Into<String>) -> SettingsError {
    SettingsError::BadValue(msg.into())
}

/// The value, or `missing` as memcached's refusal.
fn need<'a>(value: Option<&'a str>, missing: &str) -> Result<&'a str, SettingsError> {
    value.ok_or_else(|| bad(missing))
}

/// The many options memcached reads with `safe_strtoul` and the same two
/// messages.
fn u32_value(name: &str, value: Option<&str>) -> Result<u32, SettingsError> {
    let v = need(value, &format!("Missing {name} argument"))?;
    safe_strtoul(v.as_bytes()).ok_or_else(|| bad(format!("could not parse argument to {name}")))
}

fn i32_value(name: &str, value: Option<&str>) -> Result<i32, SettingsError> {
    let v = need(value, &format!("Missing {name} argument"))?;
    safe_strtol(v.as_bytes()).ok_or_else(|| bad(format!("could not parse argument to {name}")))
}

fn f64_value(name: &str, value: Option<&str>) -> Result<f64, SettingsError> {
    let v = need(value, &format!("Missing {name} argument"))?;
    safe_strtod(v).ok_or_else(|| bad(format!("could not parse argument to {name}")))
}

/// One item of the list; `item` is the whole `name=value` text, for the
/// unknown-name message.
fn one(
    state: &mut State,
    item: &str,
    name: &str,
    value: Option<&str>,
) -> Result<Effect, SettingsError> {
    use Effect::{Honoured, Ignored};
    let s = &mut state.settings;
    Ok(match name {
        "maxconns_fast" => {
            s.maxconns_fast = true;
            Honoured
        }
        "no_maxconns_fast" => {
            s.maxconns_fast = false;
            Honoured
        }
        "hashpower" => {
            let n = atoi(need(value, "Missing numeric argument for hashpower")?);
            if n < 12 {
                return Err(bad(format!(
                    "Initial hashtable multiplier of {n} is too low"
                )));
            }
            if n > 32 {
                return Err(bad(format!(
                    "Initial hashtable multiplier of {n} is too high\n\
                     Choose a value based on \"STAT hash_power_level\" from a running instance"
                )));
            }
            s.hashpower_init = n as u32;
            Honoured
        }
        "idle_timeout" => {
            let n = atoi(need(value, "Missing numeric argument for idle_timeout")?);
            s.idle_timeout = n.max(0) as u32;
            Honoured
        }
        "read_buf_mem_limit" => {
            // Megabytes, kept in bytes as a 32-bit value, as memcached does.
            let mb = u32_value(name, value)?;
            s.read_buf_mem_limit = mb.wrapping_mul(1024 * 1024);
            Honoured
        }
        "slab_chunk_max" => {
            // memcached prints these two and carries on to crash; refuse.
            let v = need(value, "Missing slab_chunk_max argument")?;
            state.slab_chunk_max = safe_strtol(v.as_bytes())
                .ok_or_else(|| bad("could not parse argument to slab_chunk_max"))?;
            state.slab_chunk_changed = true;
            Honoured
        }
        "slab_sizes" => {
            // memcached dereferences the missing value and crashes.
            state.slab_sizes = Some(need(value, "Missing slab_sizes argument")?.to_owned());
            Honoured
        }
        "no_chunked_items" => {
            state.slab_chunk_max = SLAB_PAGE_SIZE;
            Honoured
        }
        "slab_reassign" => {
            s.slab_reassign = true;
            Honoured
        }
        "no_slab_reassign" => {
            s.slab_reassign = false;
            Honoured
        }
        "no_modern" => {
            s.slab_reassign = false;
            s.slab_automove = 0;
            s.lru_segmented = false;
            s.lru_crawler = false;
            if !state.slab_chunk_changed {
                state.slab_chunk_max = SLAB_PAGE_SIZE;
            }
            s.maxconns_fast = false;
            state.lru_maintainer = false;
            // It also turns the slab mover off and picks the jenkins hash,
            // which only `stats settings` shows (see the `shown` module).
            s.ignored_values.push(("no_modern".into(), None));
            Honoured
        }
        "udp_reuseport" => {
            s.udp_reuseport = true;
            Honoured
        }
        "udp_allow" => {
            let v = need(value, "Missing udp_allow argument")?;
            s.udp_allow = crate::udp_guard::UdpAllow::parse(v).map_err(bad)?;
            Honoured
        }
        "udp_reply_rate" => {
            let v = need(value, "Missing udp_reply_rate argument")?;
            s.udp_reply_rate = v
                .parse()
                .map_err(|_| bad("udp_reply_rate takes bytes per second"))?;
            Honoured
        }
        "resp_obj_mem_limit" => {
            state.warnings.push(
                "DEPRECATED: resp_obj_mem_limit no longer used. See read_buf_mem_limit,".into(),
            );
            Honoured
        }
        // The slab mover's options take effect (in the cache's mover) and
        // are also kept as given, since `stats settings` shows them the
        // way memcached prints them (see the `shown` module).
        "slab_automove" => {
            s.slab_automove = 1;
            if let Some(v) = value {
                let level = atoi(v);
                if !(0..=2).contains(&level) {
                    return Err(bad("slab_automove must be between 0 and 2"));
                }
                s.slab_automove = level as u8;
            }
            Ignored
        }
        "slab_automove_ratio" => {
            let r = atof(need(value, "Missing slab_automove_ratio argument")?);
            if r <= 0.0 || r > 1.0 {
                return Err(bad("slab_automove_ratio must be > 0 and < 1"));
            }
            s.slab_automove_ratio = r;
            Ignored
        }
        "slab_automove_window" => {
            let w = atoi(need(value, "Missing slab_automove_window argument")?);
            if w < 3 {
                return Err(bad("slab_automove_window must be > 2"));
            }
            s.slab_automove_window = w as u32;
            Ignored
        }
        "no_slab_automove" => {
            s.slab_automove = 0;
            Ignored
        }
        "tail_repair_time" => {
            if atoi(need(
                value,
                "Missing numeric argument for tail_repair_time",
            )?) < 10
            {
                return Err(bad("Cannot set tail_repair_time to less than 10 seconds"));
            }
            Ignored
        }
        "hash_algorithm" => match need(value, "Missing hash_algorithm argument")? {
            "jenkins" | "murmur3" | "xxh3" => Ignored,
            _ => {
                return Err(bad(
                    "Unknown hash_algorithm option (jenkins, murmur3, xxh3)",
                ))
            }
        },
        "lru_crawler_sleep" => {
            let n = atoi(need(value, "Missing lru_crawler_sleep value")?);
            if !(0..=1_000_000).contains(&n) {
                return Err(bad("LRU crawler sleep must be between 0 and 1 second"));
            }
            s.lru_crawler_sleep = n as u32;
            Honoured
        }
        "lru_crawler_tocrawl" => {
            let v = need(value, "Missing lru_crawler_tocrawl value")?;
            let Some(n) = safe_strtoul(v.as_bytes()) else {
                return Err(bad("lru_crawler_tocrawl takes a numeric 32bit value"));
            };
            s.lru_crawler_tocrawl = n;
            Honoured
        }
        "lru_crawler" => {
            s.lru_crawler = true;
            Honoured
        }
        "no_lru_crawler" => {
            s.lru_crawler = false;
            Honoured
        }
        "lru_maintainer" => {
            state.lru_maintainer = true;
            // memcached turns segmentation on and off with it.
            s.lru_segmented = true;
            Honoured
        }
        "no_lru_maintainer" => {
            state.lru_maintainer = false;
            s.lru_segmented = false;
            Honoured
        }
        "hot_lru_pct" | "warm_lru_pct" => {
            let n = atoi(need(value, &format!("Missing {name} argument"))?);
            if !(1..80).contains(&n) {
                return Err(bad(format!("{name} must be > 1 and < 80")));
            }
            if name == "hot_lru_pct" {
                state.hot_lru_pct = n;
                s.hot_lru_pct = n as u32;
            } else {
                state.warm_lru_pct = n;
                s.warm_lru_pct = n as u32;
            }
            Honoured
        }
        "hot_max_factor" | "warm_max_factor" => {
            let f = atof(need(value, &format!("Missing {name} argument"))?);
            // memcached tests `<= 0`, which lets NaN through; refuse it too.
            if f.is_nan() || f <= 0.0 {
                return Err(bad(format!("{name} must be > 0")));
            }
            if name == "hot_max_factor" {
                s.hot_max_factor = f;
            } else {
                s.warm_max_factor = f;
            }
            Honoured
        }
        "temporary_ttl" => {
            // memcached's `atoi` into an unsigned setting.
            let ttl = atoi(need(value, "Missing temporary_ttl argument")?);
            state.temp_lru = true;
            s.temp_lru = true;
            s.temporary_ttl = ttl as u32;
            Honoured
        }
        "ssl_wbuf_size" => {
            let kb = u32_value(name, value)?;
            state.settings.tls.wbuf_size = kb.wrapping_mul(1024);
            Ignored
        }
        "watcher_logbuf_size" => {
            let kb = u32_value(name, value)?;
            s.watcher_logbuf_size = (kb as usize).saturating_mul(1024);
            Honoured
        }
        "track_sizes" => {
            s.track_sizes = true;
            Honoured
        }
        // There is no per-worker log buffer here (see `logger`).
        "worker_logbuf_size" | "ext_wbuf_size" | "ext_threads" | "ext_io_depth"
        | "ext_item_size" | "ext_item_age" | "ext_low_ttl" | "ext_recache_rate"
        | "ext_compact_under" | "ext_drop_under" | "ext_max_sleep" => {
            u32_value(name, value)?;
            Ignored
        }
        "ext_page_size" => {
            if state.ext_path_seen {
                return Err(bad(
                    "Must specify ext_page_size before any ext_path arguments",
                ));
            }
            u32_value(name, value)?;
            Ignored
        }
        "ext_path" => {
            need(
                value,
                "missing argument to ext_path, ie: ext_path=/d/file:5G",
            )?;
            state.ext_path_seen = true;
            Ignored
        }
        "ext_max_frag" | "slab_automove_freeratio" => {
            f64_value(name, value)?;
            Ignored
        }
        "ssl_keyformat" => {
            state.settings.tls.keyformat = i32_value(name, value)?;
            Ignored
        }
        "ssl_verify_mode" | "ssl_min_version" => {
            let n = i32_value(name, value)?;
            if !(0..=3).contains(&n) {
                return Err(bad(format!(
                    "Invalid {name}. Use help to see valid options."
                )));
            }
            let tls = &mut state.settings.tls;
            if name == "ssl_verify_mode" {
                tls.verify_mode = n;
            } else {
                tls.min_version = n;
            }
            Ignored
        }
        "ssl_chain_cert" | "ssl_key" | "ssl_ciphers" | "ssl_ca_cert" => {
            let v = need(value, &format!("Missing {name} argument"))?.to_string();
            let tls = &mut state.settings.tls;
            match name {
                "ssl_chain_cert" => tls.chain_cert = Some(v.into()),
                "ssl_key" => tls.key = Some(v.into()),
                "ssl_ciphers" => tls.ciphers = Some(v),
                _ => tls.ca_cert = Some(v.into()),
            }
            Ignored
        }
        "ssl_session_cache" => {
            state.settings.tls.session_cache = true;
            Ignored
        }
        "ssl_kernel_tls" => {
            state.settings.tls.kernel_tls = true;
            Ignored
        }
        "no_hashexpand"
        | "inline_ascii_resp"
        | "no_inline_ascii_resp"
        | "modern"
        | "drop_privileges"
        | "no_drop_privileges"
        | "relaxed_privileges"
        | "sock_cookie_id"
        | "ext_drop_unread" => Ignored,
        _ => return Err(SettingsError::IllegalSuboption(item.to_owned())),
    })
}
