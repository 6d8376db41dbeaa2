//! Items: mirrors the `item` struct of memcached's `memcached.h` and the
//! size rules of `items.c` (`item_make_header`, `item_size_ok`).
//!
//! Unlike memcached, an item here is an immutable, reference-counted value
//! (`Arc<Item>`): a reply being written keeps its own reference, so the
//! cache can replace or drop the item at any time without the refcount
//! juggling of `do_item_remove`. What changes in place (LRU position,
//! access time, exptime) lives in the hash table's entry, not here.

/// memcached's `sizeof(item)` on a 64-bit build: the header cost that the
/// memory accounting charges for each item, so that `-m` and the
/// "object too large" limit mean what they mean in memcached.
pub const ITEM_HEADER_SIZE: usize = 48;

/// Longest key accepted (memcached's `KEY_MAX_LENGTH`).
pub const KEY_MAX_LENGTH: usize = 250;

/// One stored key and value.
#[derive(Debug)]
pub struct Item {
    /// The key, at most `KEY_MAX_LENGTH` bytes.
    pub key: Box<[u8]>,
    /// The value, without the trailing `\r\n` of the protocol.
    pub data: Box<[u8]>,
    /// The client's opaque flags.
    pub flags: u32,
    /// The CAS unique, 0 when CAS is disabled (`-C`).
    pub cas: u64,
}

/// Bytes an item of this key, flags and value is charged, as memcached's
/// `ITEM_ntotal`: header, key plus its NUL, 4 bytes of flags when they are
/// not 0, value plus `\r\n`, and 8 bytes of CAS when CAS is on.
pub fn item_ntotal(nkey: usize, flags: u32, nbytes: usize, use_cas: bool) -> usize {
    let flags_size = if flags != 0 { 4 } else { 0 };
    let cas_size = if use_cas { 8 } else { 0 };
    ITEM_HEADER_SIZE + nkey + 1 + flags_size + nbytes + 2 + cas_size
}

impl Item {
    /// Bytes this item is charged.
    pub fn ntotal(&self, use_cas: bool) -> usize {
        item_ntotal(self.key.len(), self.flags, self.data.len(), use_cas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntotal_matches_memcached_layout() {
        assert_eq!(item_ntotal(3, 0, 5, true), 48 + 4 + 7 + 8);
        assert_eq!(item_ntotal(3, 0, 5, false), 48 + 4 + 7);
        assert_eq!(item_ntotal(3, 1, 5, false), 48 + 4 + 4 + 7);
    }
}
