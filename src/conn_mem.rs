//! `-o read_buf_mem_limit`: a cap on the memory one worker's connections
//! hold for requests being read and replies not yet written.
//!
//! memcached gives each worker thread a pool of 16 KiB chunks, at most
//! `read_buf_mem_limit / threads` bytes of them (at least one chunk). A
//! stream connection holds one chunk as its read buffer from its first read
//! until it waits again with nothing unparsed; every reply (a command's
//! answer, or one key of a multi-get) takes a response object, 13 of which
//! share a chunk, until it is written. When no chunk is left, a read fails
//! (`read_buf_oom`, the connection closes), a multi-get answers `SERVER_ERROR
//! out of memory writing get response`, and any other command closes the
//! connection (`response_obj_oom`).
//!
//! Replies here are bytes in a connection's write buffer, not objects, but
//! the pool is counted the same way so that the limit means what it means
//! in memcached: the same requests fail at the same point. Without the
//! option nothing is counted.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// memcached's `READ_BUFFER_SIZE`: the pool's chunk.
pub const CHUNK: usize = 16 * 1024;

/// Response objects per chunk: memcached's `MAX_RESP_PER_BUNDLE` on a
/// 64-bit build, (16384 - 24) / 1184.
pub const RESP_PER_CHUNK: usize = 13;

/// One worker's pool. Only its own thread changes it; the counters are
/// atomic so that `stats` can read them from any worker.
#[derive(Debug, Default)]
pub struct ThreadMem {
    /// Chunks the pool may hand out; 0 means no limit.
    limit: usize,
    /// Chunks held as read buffers.
    rbufs: AtomicUsize,
    /// Response objects not yet written.
    resps: AtomicUsize,
    /// Failed read-buffer takes (`read_buf_oom`).
    pub read_buf_oom: AtomicU64,
    /// Failed response takes (`response_obj_oom`).
    pub response_obj_oom: AtomicU64,
    /// Response objects ever taken (`response_obj_count`).
    pub response_obj_count: AtomicU64,
}

impl ThreadMem {
    /// The pool of one of `threads` workers under a limit of `limit_bytes`
    /// (0: none).
    pub fn new(limit_bytes: usize, threads: usize) -> ThreadMem {
        let limit = match limit_bytes / threads.max(1) {
            0 if limit_bytes == 0 => 0,
            per => (per / CHUNK).max(1),
        };
        ThreadMem {
            limit,
            ..ThreadMem::default()
        }
    }

    /// Whether the pool counts at all.
    pub fn limited(&self) -> bool {
        self.limit != 0
    }

    fn chunks(&self, rbufs: usize, resps: usize) -> usize {
        rbufs + resps.div_ceil(RESP_PER_CHUNK)
    }

    /// Take a chunk for a connection's read buffer.
    pub fn take_rbuf(&self) -> bool {
        let rbufs = self.rbufs.load(Ordering::Relaxed);
        if self.chunks(rbufs + 1, self.resps.load(Ordering::Relaxed)) > self.limit {
            self.read_buf_oom.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.rbufs.store(rbufs + 1, Ordering::Relaxed);
        true
    }

    /// Give a read-buffer chunk back.
    pub fn put_rbuf(&self) {
        self.rbufs.fetch_sub(1, Ordering::Relaxed);
    }

    /// Take a response object (memcached's `resp_start`).
    pub fn take_resp(&self) -> bool {
        let resps = self.resps.load(Ordering::Relaxed);
        if self.chunks(self.rbufs.load(Ordering::Relaxed), resps + 1) > self.limit {
            self.response_obj_oom.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.resps.store(resps + 1, Ordering::Relaxed);
        self.response_obj_count.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Give `n` response objects back (their replies were written, or
    /// dropped).
    pub fn put_resps(&self, n: usize) {
        self.resps.fetch_sub(n, Ordering::Relaxed);
    }

    /// What the pool has handed out and not had back: (read buffers,
    /// response objects). Both are 0 once every connection is closed.
    pub fn held(&self) -> (usize, usize) {
        (
            self.rbufs.load(Ordering::Relaxed),
            self.resps.load(Ordering::Relaxed),
        )
    }

    /// Bytes of chunks held for response objects (`response_obj_bytes`).
    pub fn response_bytes(&self) -> usize {
        self.resps.load(Ordering::Relaxed).div_ceil(RESP_PER_CHUNK) * CHUNK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_megabyte_over_32_threads_is_two_chunks() {
        let m = ThreadMem::new(1 << 20, 32);
        assert!(m.take_rbuf());
        for _ in 0..RESP_PER_CHUNK {
            assert!(m.take_resp());
        }
        assert!(!m.take_resp());
        assert_eq!(m.response_obj_oom.load(Ordering::Relaxed), 1);
        assert!(!m.take_rbuf());
        m.put_resps(RESP_PER_CHUNK);
        assert!(m.take_rbuf());
        assert!(!m.take_resp());
    }

    #[test]
    fn no_limit_counts_nothing() {
        let m = ThreadMem::new(0, 4);
        assert!(!m.limited());
        let tiny = ThreadMem::new(1, 4);
        assert!(tiny.limited());
        assert!(tiny.take_rbuf());
        assert!(!tiny.take_rbuf());
    }
}
