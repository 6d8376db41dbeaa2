//! The UDP amplification guard: memcached has none of this. A spoofed UDP
//! request makes a server send its reply to the victim whose address was
//! forged, tens of kilobytes for one small datagram. Two defences:
//!
//! - an allow-list (`-o udp_allow=CIDR;CIDR...`): datagrams from other
//!   sources are dropped unanswered, and unprocessed. The default is
//!   loopback and the private ranges, which a forged public source is not;
//!   `udp_allow=any` lifts it, with a warning in the log.
//! - a per-source reply budget (`-o udp_reply_rate=BYTES_PER_SEC`): a token
//!   bucket per source address, in a table of bounded size, caps the bytes
//!   any one address is sent. 0 (the default) means no cap. A full table
//!   drops one source whose bucket is (nearly) full, never all of them.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use ipnet::IpNet;

use crate::sync::lock;

/// Which sources get UDP replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdpAllow {
    /// Any source (`udp_allow=any`).
    Any,
    /// Only these networks.
    Nets(Vec<IpNet>),
}

impl Default for UdpAllow {
    /// Loopback and the private ranges: 127/8, ::1, 10/8, 172.16/12,
    /// 192.168/16, fc00::/7, fe80::/10.
    fn default() -> Self {
        let nets = [
            "127.0.0.0/8",
            "::1/128",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "fc00::/7",
            "fe80::/10",
        ];
        UdpAllow::Nets(nets.iter().map(|n| n.parse().expect("valid")).collect())
    }
}

impl UdpAllow {
    /// Parse `any` or `CIDR[;CIDR...]` (a bare address means that host).
    pub fn parse(s: &str) -> Result<UdpAllow, String> {
        if s == "any" {
            return Ok(UdpAllow::Any);
        }
        let mut nets = Vec::new();
        for part in s.split(';').filter(|p| !p.is_empty()) {
            let net = match part.parse::<IpNet>() {
                Ok(n) => n,
                Err(_) => part
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| format!("udp_allow: not a CIDR or address: {part}"))?,
            };
            nets.push(net);
        }
        if nets.is_empty() {
            return Err("udp_allow: empty list".into());
        }
        Ok(UdpAllow::Nets(nets))
    }

    /// Whether `ip` may be answered. An IPv4 address mapped into IPv6 is
    /// checked as IPv4.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match self {
            UdpAllow::Any => true,
            UdpAllow::Nets(nets) => nets.iter().any(|n| n.contains(&ip)),
        }
    }
}

/// Sources tracked by the reply budget at most; a new source past this
/// evicts one that has (nearly) its whole budget back, see [`Table::evict`].
const MAX_SOURCES: usize = 65536;

/// Entries [`Table::evict`] looks at to choose one to drop.
const EVICT_SAMPLES: usize = 8;

/// One source's token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// The source whose bucket this is.
    ip: IpAddr,
    /// Bytes it may still be sent, as of `at`.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

impl Bucket {
    /// The tokens the bucket holds at `now`, refilled at `rate` a second
    /// up to one second's worth.
    fn level(&self, now: Instant, rate: f64) -> f64 {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * rate;
        (self.tokens + refill).min(rate)
    }
}

/// The buckets, with random access so that eviction can sample them.
#[derive(Debug)]
struct Table {
    /// Where each source's bucket is in `buckets`.
    index: HashMap<IpAddr, usize>,
    /// The buckets, in no order.
    buckets: Vec<Bucket>,
    /// xorshift64 state for choosing the samples.
    rng: u64,
}

impl Table {
    /// Make room for one more source by dropping the fullest of a few
    /// buckets chosen at random. A full bucket is worth nothing (a new
    /// source starts full), so under ordinary churn this forgets nothing.
    /// A source whose budget is spent is dropped only if every sampled
    /// bucket is as empty as its own: forging 65,536 sources to get one
    /// victim's budget back means first spending every one of their
    /// budgets. Clearing the whole table, as this once did, gave the
    /// victim its budget back for the price of 65,536 tiny datagrams.
    /// The source being charged is never dropped: it is not yet in the
    /// table.
    fn evict(&mut self, now: Instant, rate: f64) {
        let mut best: Option<(usize, f64)> = None;
        for _ in 0..EVICT_SAMPLES {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let i = (self.rng % self.buckets.len() as u64) as usize;
            let level = self.buckets[i].level(now, rate);
            if best.is_none_or(|(_, l)| level > l) {
                best = Some((i, level));
            }
        }
        let Some((i, _)) = best else { return };
        let gone = self.buckets.swap_remove(i);
        self.index.remove(&gone.ip);
        if let Some(moved) = self.buckets.get(i) {
            self.index.insert(moved.ip, i);
        }
    }
}

/// Per-source token buckets for `udp_reply_rate`.
#[derive(Debug)]
pub struct ReplyBudget {
    /// Bytes a second each source may be sent (0: no cap).
    rate: u64,
    /// The sources seen lately; every worker's UDP replies lock it.
    table: Mutex<Table>,
}

impl ReplyBudget {
    /// A budget of `rate` bytes a second per source (0: unlimited). A
    /// source may burst one second's worth.
    pub fn new(rate: u64) -> ReplyBudget {
        // A per-process seed, so that a forger cannot predict the samples.
        let seed = std::collections::hash_map::RandomState::new().hash_one(rate) | 1;
        ReplyBudget {
            rate,
            table: Mutex::new(Table {
                index: HashMap::new(),
                buckets: Vec::new(),
                rng: seed,
            }),
        }
    }

    /// Take `bytes` from `ip`'s bucket; false (and nothing taken) when the
    /// bucket holds fewer.
    pub fn take(&self, ip: IpAddr, bytes: usize) -> bool {
        self.take_at(ip, bytes, Instant::now())
    }

    /// [`ReplyBudget::take`] at a given time.
    fn take_at(&self, ip: IpAddr, bytes: usize, now: Instant) -> bool {
        if self.rate == 0 {
            return true;
        }
        let rate = self.rate as f64;
        let mut t = lock(&self.table);
        let i = match t.index.get(&ip) {
            Some(&i) => i,
            None => {
                if t.buckets.len() >= MAX_SOURCES {
                    t.evict(now, rate);
                }
                let i = t.buckets.len();
                t.buckets.push(Bucket {
                    ip,
                    tokens: rate,
                    at: now,
                });
                t.index.insert(ip, i);
                i
            }
        };
        let b = &mut t.buckets[i];
        b.tokens = b.level(now, rate);
        b.at = now;
        if b.tokens < bytes as f64 {
            return false;
        }
        b.tokens -= bytes as f64;
        true
    }

    /// Sources tracked now.
    pub fn sources(&self) -> usize {
        lock(&self.table).buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_allows_loopback_and_private_only() {
        let a = UdpAllow::default();
        for ok in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "10.1.2.3",
            "172.31.0.1",
            "192.168.5.5",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(a.allows(ok.parse().unwrap()), "{ok}");
        }
        for no in [
            "8.8.8.8",
            "172.32.0.1",
            "1.1.1.1",
            "2001:db8::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!a.allows(no.parse().unwrap()), "{no}");
        }
    }

    #[test]
    fn parse_lists() {
        assert_eq!(UdpAllow::parse("any").unwrap(), UdpAllow::Any);
        let a = UdpAllow::parse("10.0.0.0/8;192.0.2.7").unwrap();
        assert!(a.allows("10.9.9.9".parse().unwrap()));
        assert!(a.allows("192.0.2.7".parse().unwrap()));
        assert!(!a.allows("127.0.0.1".parse().unwrap()));
        assert!(UdpAllow::parse("10.0.0.0/33").is_err());
        assert!(UdpAllow::parse("nonsense").is_err());
        assert!(UdpAllow::parse("").is_err());
    }

    #[test]
    fn budget_caps_bytes_per_source() {
        let b = ReplyBudget::new(1000);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(b.take(ip, 600));
        assert!(!b.take(ip, 600), "only 400 left");
        assert!(b.take("10.0.0.2".parse().unwrap(), 1000), "another source");
        assert!(ReplyBudget::new(0).take(ip, usize::MAX), "0 is no cap");
    }

    #[test]
    fn budget_table_stays_bounded() {
        let b = ReplyBudget::new(10);
        for i in 0..(MAX_SOURCES as u32 + 10) {
            b.take(IpAddr::from(i.to_be_bytes()), 5);
        }
        assert!(b.sources() <= MAX_SOURCES);
    }

    /// Forged sources filling the table twice over must not give back a
    /// budget the victim has spent; only time does.
    #[test]
    fn a_full_table_keeps_a_spent_budget_spent() {
        let b = ReplyBudget::new(1000);
        let now = Instant::now();
        let victim: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(b.take_at(victim, 1000, now));
        assert!(!b.take_at(victim, 1, now), "spent");
        for i in 0..(2 * MAX_SOURCES as u32) {
            let forged = IpAddr::from((0x0b00_0000 + i).to_be_bytes());
            assert!(b.take_at(forged, 10, now), "a new source starts full");
        }
        assert_eq!(b.sources(), MAX_SOURCES);
        assert!(!b.take_at(victim, 1, now), "the victim's budget came back");
        let later = now + std::time::Duration::from_secs(1);
        assert!(b.take_at(victim, 1000, later), "a second refills it");
    }
}
