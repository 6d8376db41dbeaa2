//! UDP replies put back together. The 8-byte frame header is the
//! server's own ([`rmemcached::udp::Header`]): the generator writes it with
//! [`Header::to_bytes`] and reads it with [`Header::parse`], so that both
//! ends of the wire share one definition. What is the generator's alone is
//! reassembly: a reply may come as one numbered series of datagrams
//! (rmemcached) or as several (memcached 1.6), and datagrams get lost.

use std::collections::VecDeque;

use rmemcached::udp::{Header, UDP_HEADER_SIZE};

/// The header of a request: id `id`, datagram 0 of 1 (a request is always
/// one datagram).
pub fn request_header(id: u16) -> [u8; UDP_HEADER_SIZE] {
    Header {
        request_id: id,
        sequence: 0,
        total: 1,
        reserved: 0,
    }
    .to_bytes()
}

/// The header of a received datagram, or `None` if it is too short to
/// carry one.
pub fn reply_header(datagram: &[u8]) -> Option<Header> {
    (datagram.len() >= UDP_HEADER_SIZE).then(|| Header::parse(datagram))
}

/// A datagram whose header cannot belong to a reply.
#[derive(Debug, PartialEq, Eq)]
pub struct BadFrame;

/// One numbered series of datagrams: `total` parts, numbered `0..total`.
#[derive(Debug)]
struct Series {
    parts: Vec<Option<Vec<u8>>>,
    missing: usize,
}

/// The datagrams received for one request id, put back together.
///
/// A reply is one or more series; rmemcached sends one series per request,
/// memcached 1.6 one per key of a multi-get and one for `END`, each
/// numbered from 0. Loopback delivers one socket's datagrams in the order
/// they were sent, but drops some under overload, so: a datagram numbered
/// 0 starts a new series, and any other continues the newest series if it
/// has the same total and a free place for it, or else starts a series of
/// its own. Series are appended to the payload in the order they started,
/// once whole; a lost datagram leaves its series open, so the request
/// never completes and is counted lost, instead of being stitched to the
/// datagrams of another key.
#[derive(Debug, Default)]
pub struct Reassembly {
    open: VecDeque<Series>,
    data: Vec<u8>,
}

impl Reassembly {
    /// Add the datagram numbered `seq` of a series of `total`.
    pub fn push(&mut self, seq: u16, total: u16, payload: &[u8]) -> Result<(), BadFrame> {
        let (seq, total) = (seq as usize, total as usize);
        if seq >= total {
            return Err(BadFrame);
        }
        if total == 1 && self.open.is_empty() {
            self.data.extend_from_slice(payload);
            return Ok(());
        }
        let fits = |s: &Series| s.parts.len() == total && s.parts[seq].is_none();
        let continues = seq > 0 && self.open.back().is_some_and(fits);
        let series = match self.open.back_mut() {
            Some(s) if continues => s,
            _ => {
                self.open.push_back(Series {
                    parts: vec![None; total],
                    missing: total,
                });
                self.open.back_mut().expect("just pushed")
            }
        };
        series.parts[seq] = Some(payload.to_vec());
        series.missing -= 1;
        while self.open.front().is_some_and(|s| s.missing == 0) {
            let s = self.open.pop_front().expect("front exists");
            for part in s.parts.into_iter().flatten() {
                self.data.extend_from_slice(&part);
            }
        }
        Ok(())
    }

    /// Whether every series begun is whole (the payload may still be only
    /// part of the reply, if more series are to come).
    pub fn settled(&self) -> bool {
        self.open.is_empty()
    }

    /// The payload of the whole series, in order.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::{udp_reply, Expect, Reply};
    use crate::testutil::{cut, reply_items};

    #[test]
    fn one_message_per_request() {
        // rmemcached: the whole reply is one series numbered 0..n of n.
        let (items, end) = reply_items(10, 700);
        let whole = [items.concat(), end].concat();
        let parts = cut(&whole, 1392);
        let total = parts.len() as u16;
        assert!(total > 4);
        let mut a = Reassembly::default();
        for (i, p) in parts.iter().enumerate() {
            assert!(!a.settled() || i == 0);
            a.push(i as u16, total, p).unwrap();
            if i + 1 < parts.len() {
                assert!(!a.settled());
            }
        }
        assert!(a.settled());
        assert_eq!(a.data(), &whole[..]);
        assert_eq!(
            udp_reply(Expect::Retrieval, a.data()),
            Reply::Done {
                len: whole.len(),
                values: 10
            }
        );

        // A datagram lost: the series stays open, whatever follows.
        let mut a = Reassembly::default();
        for (i, p) in parts.iter().enumerate().filter(|(i, _)| *i != 2) {
            a.push(i as u16, total, p).unwrap();
        }
        assert!(!a.settled());
        assert!(a.data().is_empty());
    }

    #[test]
    fn one_message_per_key() {
        // memcached 1.6: each key's item is its own series, then END alone.
        let (items, end) = reply_items(4, 2000);
        let whole = [items.concat(), end.clone()].concat();
        let mut datagrams: Vec<(u16, u16, Vec<u8>)> = Vec::new();
        for item in &items {
            let parts = cut(item, 1392);
            let total = parts.len() as u16;
            assert_eq!(total, 2);
            for (i, p) in parts.into_iter().enumerate() {
                datagrams.push((i as u16, total, p));
            }
        }
        datagrams.push((0, 1, end));
        let mut a = Reassembly::default();
        for (n, (seq, total, p)) in datagrams.iter().enumerate() {
            a.push(*seq, *total, p).unwrap();
            let expect = if n + 1 == datagrams.len() {
                Reply::Done {
                    len: whole.len(),
                    values: 4,
                }
            } else if a.settled() {
                Reply::Incomplete
            } else {
                continue;
            };
            assert_eq!(udp_reply(Expect::Retrieval, a.data()), expect, "after {n}");
        }
        assert_eq!(a.data(), &whole[..]);

        // A datagram lost from key 1's series (either one): that series
        // stays open, key 2's datagrams are not stitched to it, and the
        // reply never looks whole.
        for lost in [2, 3] {
            let mut a = Reassembly::default();
            for (n, (seq, total, p)) in datagrams.iter().enumerate() {
                if n == lost {
                    continue;
                }
                a.push(*seq, *total, p).unwrap();
                if a.settled() {
                    assert_eq!(udp_reply(Expect::Retrieval, a.data()), Reply::Incomplete);
                }
            }
            assert!(!a.settled(), "lost {lost}");
            assert_eq!(a.data(), &items[0][..], "lost {lost}");
        }

        // Small values: every series has one datagram.
        let (items, end) = reply_items(3, 10);
        let mut a = Reassembly::default();
        for it in &items {
            a.push(0, 1, it).unwrap();
            assert!(a.settled());
            assert_eq!(udp_reply(Expect::Retrieval, a.data()), Reply::Incomplete);
        }
        a.push(0, 1, &end).unwrap();
        assert_eq!(
            udp_reply(Expect::Retrieval, a.data()),
            Reply::Done {
                len: a.data().len(),
                values: 3
            }
        );
    }

    #[test]
    fn bad_frames() {
        let mut a = Reassembly::default();
        assert_eq!(a.push(2, 2, b"x"), Err(BadFrame));
        assert_eq!(a.push(0, 0, b"x"), Err(BadFrame));
        assert!(a.settled());
        assert!(a.data().is_empty());
        assert_eq!(reply_header(&[0; 7]), None);
        let h = Header {
            request_id: 0xabcd,
            sequence: 3,
            total: 7,
            reserved: 0,
        };
        assert_eq!(reply_header(&h.to_bytes()), Some(h));
        assert_eq!(Header::parse(&request_header(9)).request_id, 9);
    }
}
