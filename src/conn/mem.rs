//! What a stream connection's replies hold, charged where the memory
//! bounds say (docs/ARCHITECTURE.md, "Memory bounds"): the output buffer
//! past [`STREAM_FREE`] to the server's reply pool, and one of memcached's
//! response objects per reply to the worker's `-o read_buf_mem_limit` pool
//! ([`ThreadMem`]). The protocols see it only as [`ReplyMemory`], through
//! their session.

use std::sync::Arc;

use crate::conn_mem::ThreadMem;
use crate::mem_budget::{Pool, STREAM_FREE};
use crate::proto::session::ReplyMemory;

/// One stream connection's charges.
#[derive(Debug)]
pub struct StreamMemory {
    /// The server's pool for unsent replies.
    pool: Arc<Pool>,
    /// Bytes charged to `pool`.
    charged: usize,
    /// The worker's response-object pool, when `-o read_buf_mem_limit`
    /// counts.
    thread: Option<Arc<ThreadMem>>,
    /// Response objects held from `thread`.
    resps: usize,
}

impl StreamMemory {
    /// Charges against `pool` and, if it counts, `thread`.
    pub fn new(pool: Arc<Pool>, thread: Option<Arc<ThreadMem>>) -> StreamMemory {
        StreamMemory {
            pool,
            charged: 0,
            thread,
            resps: 0,
        }
    }
}

impl ReplyMemory for StreamMemory {
    fn reserve(&mut self, end: usize) -> bool {
        // The whole output buffer is held until it is all written, its
        // sent part included.
        let need = end.saturating_sub(STREAM_FREE);
        if need > self.charged {
            if !self.pool.take(need - self.charged) {
                return false;
            }
            self.charged = need;
        }
        true
    }

    fn settle(&mut self, held: usize) {
        let need = held.saturating_sub(STREAM_FREE);
        if need < self.charged {
            self.pool.give(self.charged - need);
            self.charged = need;
        }
    }

    fn resp_start(&mut self) -> bool {
        match &self.thread {
            None => true,
            Some(m) if m.take_resp() => {
                self.resps += 1;
                true
            }
            Some(_) => false,
        }
    }

    fn resp_undo(&mut self) {
        if let Some(m) = &self.thread {
            m.put_resps(1);
            self.resps -= 1;
        }
    }

    fn release_resps(&mut self) {
        if let Some(m) = &self.thread {
            m.put_resps(std::mem::take(&mut self.resps));
        }
    }
}

impl Drop for StreamMemory {
    /// A connection freed gives back whatever it still holds.
    fn drop(&mut self) {
        self.settle(0);
        self.release_resps();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_past_the_free_part_are_charged_and_given_back() {
        let pool = Arc::new(Pool::new(STREAM_FREE * 4));
        let mut m = StreamMemory::new(pool.clone(), None);
        assert!(m.reserve(STREAM_FREE), "the free part costs nothing");
        assert_eq!(pool.used(), 0);
        assert!(m.reserve(STREAM_FREE + 100));
        assert_eq!(pool.used(), 100);
        assert!(!m.reserve(STREAM_FREE * 6), "past the pool's limit");
        assert_eq!(pool.used(), 100, "a refusal charges nothing");
        m.settle(STREAM_FREE + 40);
        assert_eq!(pool.used(), 40);
        drop(m);
        assert_eq!(pool.used(), 0, "a freed connection gives back all");
    }

    #[test]
    fn response_objects_come_from_the_worker_pool() {
        let pool = Arc::new(Pool::new(STREAM_FREE));
        // One chunk: 13 response objects.
        let thread = Arc::new(ThreadMem::new(crate::conn_mem::CHUNK, 1));
        let mut m = StreamMemory::new(pool, Some(thread.clone()));
        for _ in 0..crate::conn_mem::RESP_PER_CHUNK {
            assert!(m.resp_start());
        }
        assert!(!m.resp_start(), "the chunk is spent");
        m.resp_undo();
        assert!(m.resp_start());
        m.release_resps();
        assert_eq!(thread.held(), (0, 0));
    }
}
