//! A stream connection's read buffer: memcached's `c->rbuf`, `c->rcurr`
//! and `c->rbytes`.
//!
//! `buf[pos..len]` is read and not yet consumed. The buffer's length only
//! grows (zero-filled once), so a read needs no fresh zeroing; `len` marks
//! the end of the valid bytes.

use std::io::{self, Read};

/// Size of each read from a stream socket.
pub const READ_SIZE: usize = 16 * 1024;

/// The bytes read from a stream and not yet consumed.
#[derive(Debug, Default)]
pub struct ReadBuf {
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

impl ReadBuf {
    /// The bytes read and not yet consumed.
    pub fn unread(&self) -> &[u8] {
        &self.buf[self.pos..self.len]
    }

    /// Whether every byte read has been consumed.
    pub fn is_empty(&self) -> bool {
        self.pos == self.len
    }

    /// Mark `n` unread bytes as consumed.
    pub fn consume(&mut self, n: usize) {
        debug_assert!(self.pos + n <= self.len);
        self.pos += n;
    }

    /// Forget every unread byte (a value being swallowed is consumed as it
    /// arrives, so the buffer never holds more than one read of it).
    pub fn discard(&mut self) {
        self.pos = 0;
        self.len = 0;
    }

    /// The memory the buffer holds (for the `read_buf_bytes` stat).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The buffer's usable length.
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// Move the unconsumed bytes to the front.
    pub fn compact(&mut self) {
        if self.pos == self.len {
            self.pos = 0;
            self.len = 0;
        } else if self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
        }
    }

    /// How long the buffer must be for one more read after the unread
    /// bytes (after [`ReadBuf::compact`]): 0 when it already is.
    pub fn growth_for_read(&self) -> usize {
        (self.len + READ_SIZE).saturating_sub(self.buf.len())
    }

    /// Make room for one more read after the unread bytes, compacting
    /// first. The first buffer is zeroed by the allocator (calloc), which
    /// leaves fresh memory untouched: an idle connection's buffer costs
    /// only the pages its reads fill.
    pub fn make_room(&mut self) {
        self.compact();
        if self.buf.is_empty() {
            self.buf = vec![0; READ_SIZE];
        } else if self.buf.len() < self.len + READ_SIZE {
            self.buf.resize(self.len + READ_SIZE, 0);
        }
    }

    /// Room for `n` more bytes after the unread ones in one allocation
    /// (a value whose size is known), rather than growth by doubling as
    /// it arrives.
    pub fn reserve_exact(&mut self, n: usize) {
        self.compact();
        let want = self.len + n;
        if self.buf.capacity() < want {
            self.buf.reserve_exact(want - self.buf.len());
        }
    }

    /// One read from `src` into the free space after the unread bytes
    /// (call [`ReadBuf::make_room`] first). Returns what the read returned
    /// and whether it was short: it filled less than the space offered,
    /// so the source held no more at that moment.
    pub fn read_from<R: Read + ?Sized>(&mut self, src: &mut R) -> (io::Result<usize>, bool) {
        let space = self.buf.len() - self.len;
        let res = src.read(&mut self.buf[self.len..]);
        let short = matches!(res, Ok(n) if n > 0 && n < space);
        if let Ok(n) = res {
            self.len += n;
        }
        (res, short)
    }

    /// Give back a buffer that a large value or line left behind, keeping
    /// the unread bytes, when it is over four times `keep` and holds at
    /// most `keep` bytes. A new buffer rather than shrinking in place: a
    /// block cut down in place leaves a hole the next large one cannot
    /// use. Returns whether it was replaced.
    pub fn shrink(&mut self, keep: usize) -> bool {
        self.compact();
        if self.len <= keep && self.buf.len() > 4 * keep {
            let mut fresh = vec![0; keep];
            fresh[..self.len].copy_from_slice(&self.buf[..self.len]);
            self.buf = fresh;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_append_and_consume_moves_the_start() {
        let mut rb = ReadBuf::default();
        rb.make_room();
        let (res, short) = rb.read_from(&mut &b"get a\r\nget b"[..]);
        assert_eq!(res.unwrap(), 12);
        assert!(short);
        rb.consume(7);
        assert_eq!(rb.unread(), b"get b");
        rb.make_room();
        rb.read_from(&mut &b"\r\n"[..]).0.unwrap();
        assert_eq!(rb.unread(), b"get b\r\n");
        rb.consume(7);
        assert!(rb.is_empty());
    }

    #[test]
    fn a_full_read_is_not_short() {
        let mut rb = ReadBuf::default();
        rb.make_room();
        let data = vec![b'x'; 2 * READ_SIZE];
        let (res, short) = rb.read_from(&mut &data[..]);
        assert_eq!(res.unwrap(), READ_SIZE);
        assert!(!short, "a read that filled the buffer may have left more");
        assert_eq!(rb.growth_for_read(), READ_SIZE);
        rb.make_room();
        assert_eq!(rb.size(), 2 * READ_SIZE);
    }

    #[test]
    fn shrink_keeps_the_unread_bytes() {
        let mut rb = ReadBuf::default();
        rb.reserve_exact(10 * READ_SIZE);
        rb.make_room();
        for _ in 0..6 {
            rb.make_room();
            rb.read_from(&mut &vec![b'v'; READ_SIZE][..]).0.unwrap();
        }
        rb.consume(6 * READ_SIZE - 3);
        assert!(rb.size() >= 6 * READ_SIZE);
        assert!(rb.shrink(READ_SIZE));
        assert_eq!(rb.unread(), b"vvv");
        assert_eq!(rb.size(), READ_SIZE);
        assert!(!rb.shrink(READ_SIZE), "a small buffer stays");
    }
}
