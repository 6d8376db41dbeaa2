//! What is sent: the keys (`PREFIX0 .. PREFIX<N-1>`), the values, and the
//! request of each mode, drawn from a seeded generator so that a run can
//! be replayed with `--seed`.

use std::fmt::Write as _;

use crate::args::{Config, Mode};
use crate::reply::Expect;

/// xorshift64*: small, fast, and good enough to pick keys.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, never 0.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next() >> 32) * n as u64) >> 32) as u32
    }
}

/// What a request asks, for checking and counting its reply.
#[derive(Debug, Clone, Copy)]
pub struct Op {
    /// The kind of reply to parse.
    pub expect: Expect,
    /// Keys asked for by a retrieval (to count misses).
    pub keys: u32,
}

/// Makes the requests of one socket.
pub struct Workload {
    mode: Mode,
    keys: u32,
    multiget_keys: u32,
    prefix: String,
    value: Vec<u8>,
    rng: Rng,
}

impl Workload {
    /// The requests of socket number `stream`: each socket draws its own
    /// sequence from the run's seed.
    pub fn new(cfg: &Config, stream: u64) -> Workload {
        Workload {
            mode: cfg.mode,
            keys: cfg.keys,
            multiget_keys: cfg.multiget_keys,
            prefix: cfg.prefix.clone(),
            value: value_bytes(cfg.value_size),
            rng: Rng::new(cfg.seed ^ stream.wrapping_mul(0x1000_0000_01B3)),
        }
    }

    /// Append the next request's bytes to `out`.
    pub fn next(&mut self, out: &mut Vec<u8>) -> Op {
        let mode = match self.mode {
            Mode::Mixed if self.rng.below(10) == 0 => Mode::Set,
            Mode::Mixed => Mode::Get,
            m => m,
        };
        match mode {
            Mode::Set => {
                let k = self.rng.below(self.keys);
                set_request(out, &self.prefix, k, &self.value);
                Op {
                    expect: Expect::Storage,
                    keys: 0,
                }
            }
            Mode::MultiGet => {
                // Consecutive keys from a random start: distinct while
                // K <= N.
                let start = self.rng.below(self.keys);
                out.extend_from_slice(b"get");
                for i in 0..self.multiget_keys {
                    let k = (start as u64 + i as u64) % self.keys as u64;
                    let _ = write!(Bytes(out), " {}{k}", self.prefix);
                }
                out.extend_from_slice(b"\r\n");
                Op {
                    expect: Expect::Retrieval,
                    keys: self.multiget_keys,
                }
            }
            _ => {
                let k = self.rng.below(self.keys);
                let _ = write!(Bytes(out), "get {}{k}\r\n", self.prefix);
                Op {
                    expect: Expect::Retrieval,
                    keys: 1,
                }
            }
        }
    }
}

/// `fmt::Write` into a byte vector.
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// A value of `n` printable bytes.
pub fn value_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Append `set PREFIX<key> 0 0 LEN`, then the value, to `out`.
pub fn set_request(out: &mut Vec<u8>, prefix: &str, key: u32, value: &[u8]) {
    let _ = write!(Bytes(out), "set {prefix}{key} 0 0 {}\r\n", value.len());
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Upper bound of the bytes of a set of a key of `key` bytes.
pub fn set_request_len(key: usize, value: usize) -> usize {
    "set  0 0 \r\n\r\n".len() + key + 20 + value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::test_config;

    #[test]
    fn workload_requests() {
        let c = test_config("--udp 1 --mode mixed --keys 10 --value-size 3");
        let mut w = Workload::new(&c, 0);
        let (mut gets, mut sets) = (0, 0);
        for _ in 0..2000 {
            let mut b = Vec::new();
            let op = w.next(&mut b);
            match op.expect {
                Expect::Retrieval => {
                    gets += 1;
                    assert!(b.starts_with(b"get rmcload:") && b.ends_with(b"\r\n"));
                }
                Expect::Storage => {
                    sets += 1;
                    assert!(b.starts_with(b"set rmcload:") && b.ends_with(b" 0 0 3\r\nabc\r\n"));
                }
            }
        }
        assert!((1700..1900).contains(&gets), "{gets} gets, {sets} sets");
        let c = test_config("--udp 1 --mode multiget --keys 3 --multiget-keys 3");
        let mut b = Vec::new();
        Workload::new(&c, 1).next(&mut b);
        let mut keys: Vec<&[u8]> = b[4..b.len() - 2].split(|&x| x == b' ').collect();
        keys.sort();
        assert_eq!(keys, [&b"rmcload:0"[..], b"rmcload:1", b"rmcload:2"]);
    }
}
