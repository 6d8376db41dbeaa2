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
//!   any one address is sent. 0 (the default) means no cap.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use ipnet::IpNet;

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

/// Sources tracked by the reply budget at most; when full, the table is
/// cleared of sources whose bucket has refilled, or else emptied.
const MAX_SOURCES: usize = 65536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Per-source token buckets for `udp_reply_rate`.
#[derive(Debug)]
pub struct ReplyBudget {
    rate: u64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl ReplyBudget {
    /// A budget of `rate` bytes a second per source (0: unlimited). A
    /// source may burst one second's worth.
    pub fn new(rate: u64) -> ReplyBudget {
        ReplyBudget {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take `bytes` from `ip`'s bucket; false (and nothing taken) when the
    /// bucket holds fewer.
    pub fn take(&self, ip: IpAddr, bytes: usize) -> bool {
        if self.rate == 0 {
            return true;
        }
        let rate = self.rate as f64;
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_SOURCES && !map.contains_key(&ip) {
            map.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < rate);
            if map.len() >= MAX_SOURCES {
                map.clear();
            }
        }
        let b = map.entry(ip).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(rate);
        b.at = now;
        if b.tokens < bytes as f64 {
            return false;
        }
        b.tokens -= bytes as f64;
        true
    }

    /// Sources tracked now.
    pub fn sources(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
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
}
