//! Requests in flight on a UDP socket, by request id: any number of them,
//! answered in any order, each reply put back together from its datagrams.

use std::collections::VecDeque;
use std::time::Instant;

use rmemcached::udp::UDP_HEADER_SIZE;

use super::{Core, Flight, Meta};
use crate::outcome::Outcome;
use crate::reassembly::{reply_header, request_header, Reassembly};
use crate::reply::{udp_reply, Reply};

/// A UDP request id's state.
enum Slot {
    Free,
    Busy(Box<(Meta, Reassembly)>),
    /// Lost; free again from the instant given, so that a late reply is
    /// not taken for the next request with the same id.
    Expired(Instant),
}

/// Requests in flight on a UDP socket, by request id.
pub struct UdpFlight {
    core: Core,
    slots: Vec<Slot>,
    next_id: u16,
    busy: usize,
    /// (deadline, id, serial) in send order, so deadlines ascend.
    deadlines: VecDeque<(Instant, u16, u64)>,
}

impl UdpFlight {
    /// No request in flight yet.
    pub fn new(core: Core) -> UdpFlight {
        UdpFlight {
            core,
            slots: (0..=u16::MAX as usize).map(|_| Slot::Free).collect(),
            next_id: 0,
            busy: 0,
            deadlines: VecDeque::new(),
        }
    }

    /// The next id not in use, round robin (so an id is reused as late as
    /// possible).
    fn free_id(&mut self, now: Instant) -> Option<u16> {
        for _ in 0..=u16::MAX as u32 {
            let id = self.next_id;
            self.next_id = id.wrapping_add(1);
            match self.slots[id as usize] {
                Slot::Free => return Some(id),
                Slot::Expired(t) if t <= now => return Some(id),
                _ => {}
            }
        }
        None
    }
}

impl Flight for UdpFlight {
    fn begin(&mut self, scheduled: Instant, now: Instant, buf: &mut Vec<u8>) -> bool {
        let Some(id) = self.free_id(now) else {
            self.core.out.n.id_stalls += 1;
            return false;
        };
        buf.extend_from_slice(&request_header(id));
        let m = self.core.make(scheduled, now, buf);
        self.deadlines.push_back((m.deadline, id, m.serial));
        self.slots[id as usize] = Slot::Busy(Box::new((m, Reassembly::default())));
        self.busy += 1;
        true
    }

    fn received(&mut self, d: &[u8], now: Instant) -> Result<(), String> {
        let n = &mut self.core.out.n;
        n.datagrams += 1;
        let Some(h) = reply_header(d) else {
            n.bad_datagrams += 1;
            return Ok(());
        };
        let slot = &mut self.slots[h.request_id as usize];
        let reply = match slot {
            Slot::Free => {
                n.unknown_datagrams += 1;
                return Ok(());
            }
            Slot::Expired(_) => {
                n.expired_datagrams += 1;
                return Ok(());
            }
            Slot::Busy(b) => {
                let (m, asm) = &mut **b;
                if asm
                    .push(h.sequence, h.total, &d[UDP_HEADER_SIZE..])
                    .is_err()
                {
                    n.bad_datagrams += 1;
                    return Ok(());
                }
                if !asm.settled() {
                    return Ok(());
                }
                match udp_reply(m.op.expect, asm.data()) {
                    Reply::Incomplete => return Ok(()),
                    r => (*m, r),
                }
            }
        };
        *slot = Slot::Free;
        self.busy -= 1;
        self.core.finish(&reply.0, reply.1, now);
        Ok(())
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(deadline, id, serial)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            let slot = &mut self.slots[id as usize];
            if matches!(slot, Slot::Busy(b) if b.0.serial == serial) {
                *slot = Slot::Expired(now + self.core.timeout);
                self.busy -= 1;
                self.core.out.n.lost += 1;
            }
        }
    }

    fn in_flight(&self) -> usize {
        self.busy
    }

    fn core(&mut self) -> &mut Core {
        &mut self.core
    }

    fn into_outcome(self) -> Outcome {
        self.core.out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testutil::{datagram, reply_items, test_config};

    #[test]
    fn udp_flight_matches_ids_and_counts_loss() {
        let cfg = test_config("--udp 1 --mode multiget --keys 8 --multiget-keys 2 --timeout 100");
        let mut f = UdpFlight::new(Core::new(&cfg, 0));
        let t0 = Instant::now();
        let mut reqs = Vec::new();
        for _ in 0..3 {
            let mut b = Vec::new();
            assert!(f.begin(t0, t0, &mut b));
            assert!(b[UDP_HEADER_SIZE..].starts_with(b"get rmcload:"));
            reqs.push(reply_header(&b).unwrap().request_id);
        }
        assert_eq!(f.in_flight(), 3);
        // Request 1 answered in two series (memcached style).
        let (items, end) = reply_items(2, 3);
        let t1 = t0 + Duration::from_millis(5);
        f.received(&datagram(reqs[1], 0, 1, &items[0]), t1).unwrap();
        f.received(&datagram(reqs[1], 0, 1, &items[1]), t1).unwrap();
        assert_eq!(f.in_flight(), 3);
        f.received(&datagram(reqs[1], 0, 1, &end), t1).unwrap();
        assert_eq!(f.in_flight(), 2);
        // A datagram for an id nobody waits for.
        f.received(&datagram(reqs[1], 0, 1, &end), t1).unwrap();
        // The others time out; a late reply is counted apart.
        f.expire(t0 + Duration::from_millis(100));
        assert_eq!(f.in_flight(), 0);
        f.received(&datagram(reqs[0], 0, 1, &end), t1).unwrap();
        let n = f.core.out.n;
        assert_eq!((n.sent, n.completed, n.lost), (3, 1, 2));
        assert_eq!((n.hits, n.misses), (2, 0));
        assert_eq!((n.unknown_datagrams, n.expired_datagrams), (1, 1));
        assert_eq!(f.core.out.latency.len(), 1);
        assert!(f.core.out.latency.max() >= 4_000_000);
        // Expired ids rest; a fresh id is handed out instead.
        let mut b = Vec::new();
        assert!(f.begin(t1, t1, &mut b));
        assert!(!reqs.contains(&reply_header(&b).unwrap().request_id));
    }
}
