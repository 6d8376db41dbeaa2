//! Requests in flight on a TCP connection: pipelined, and answered in the
//! order they were sent.

use std::collections::VecDeque;
use std::time::Instant;

use super::{Core, Flight, Meta};
use crate::outcome::Outcome;
use crate::reply::{parse_reply, Reply};

/// Requests in flight on a TCP connection: replies come in request order.
pub struct TcpFlight {
    core: Core,
    fifo: VecDeque<Meta>,
    /// The first `lost` requests of `fifo` are counted lost already (their
    /// deadlines passed, and deadlines ascend along the queue); a reply to
    /// one of them is late.
    lost: usize,
    rbuf: Vec<u8>,
}

impl TcpFlight {
    /// No request in flight yet.
    pub fn new(core: Core) -> TcpFlight {
        TcpFlight {
            core,
            fifo: VecDeque::new(),
            lost: 0,
            rbuf: Vec::new(),
        }
    }
}

impl Flight for TcpFlight {
    fn begin(&mut self, scheduled: Instant, now: Instant, buf: &mut Vec<u8>) -> bool {
        let m = self.core.make(scheduled, now, buf);
        self.fifo.push_back(m);
        true
    }

    fn received(&mut self, bytes: &[u8], now: Instant) -> Result<(), String> {
        self.rbuf.extend_from_slice(bytes);
        let mut pos = 0;
        let mut result = Ok(());
        while pos < self.rbuf.len() {
            let Some(m) = self.fifo.front().copied() else {
                result = Err("bytes received with no request outstanding".into());
                break;
            };
            let reply = parse_reply(m.op.expect, &self.rbuf[pos..]);
            let len = match reply {
                Reply::Incomplete => break,
                Reply::Done { len, .. } | Reply::Error { len } => len,
                Reply::Malformed => {
                    let end = (pos + 80).min(self.rbuf.len());
                    result = Err(format!(
                        "reply out of step with the requests: {:?}",
                        String::from_utf8_lossy(&self.rbuf[pos..end])
                    ));
                    break;
                }
            };
            pos += len;
            self.fifo.pop_front();
            if self.lost > 0 {
                self.lost -= 1;
                self.core.out.n.late_replies += 1;
            } else {
                self.core.finish(&m, reply, now);
            }
        }
        self.rbuf.drain(..pos);
        result
    }

    fn expire(&mut self, now: Instant) {
        while self.lost < self.fifo.len() && self.fifo[self.lost].deadline <= now {
            self.lost += 1;
            self.core.out.n.lost += 1;
        }
    }

    fn in_flight(&self) -> usize {
        self.fifo.len() - self.lost
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
    use crate::testutil::test_config;

    #[test]
    fn tcp_flight_in_order_and_late() {
        let cfg = test_config("--tcp 1 --mode get --timeout 100");
        let mut f = TcpFlight::new(Core::new(&cfg, 0));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(f.begin(t0, t0, &mut Vec::new()));
        }
        f.received(b"VALUE k 0 1\r\na\r\nEN", t0).unwrap();
        assert_eq!(f.in_flight(), 3);
        f.received(b"D\r\n", t0).unwrap();
        assert_eq!(f.in_flight(), 2);
        f.expire(t0 + Duration::from_millis(100));
        assert_eq!(f.in_flight(), 0);
        f.received(b"END\r\n", t0).unwrap();
        let n = f.core.out.n;
        assert_eq!(
            (n.completed, n.lost, n.late_replies, n.hits, n.misses),
            (1, 2, 1, 1, 0)
        );
        assert!(f.received(b"STORED\r\n", t0).is_err());
    }
}
