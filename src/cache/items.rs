//! Items: the byte layout of one stored item, mirroring the `item` struct of
//! memcached's `memcached.h`, and the size rules of `items.c`
//! (`item_make_header`, `item_size_ok`).
//!
//! An item is a run of bytes inside a slab chunk (or, for the large
//! classes, its own allocation):
//!
//! | offset | bytes | field |
//! |-------:|------:|-------|
//! | 0 | 4 | `prev`: handle of the neighbour towards the LRU head |
//! | 4 | 4 | `next`: handle of the neighbour towards the LRU tail |
//! | 8 | 4 | `time`: relative time of the last LRU bump |
//! | 12 | 4 | `exptime`: relative expiry, 0 = never |
//! | 16 | 4 | `nbytes`: value length (low 30 bits); the LRU segment (top 2 bits, see `lru.rs`) |
//! | 20 | 1 | `nkey`: key length |
//! | 21 | 1 | `iflags`: [`FETCHED`], [`HAS_FLAGS`], [`HAS_CAS`], [`LINKED`], [`TOKEN_SENT`], [`STALE`], [`KEY_BINARY`], [`ACTIVE`] |
//! | 22 | 6 | CAS unique (48 bits), only with CAS on (not with `-C`) |
//! | … | 4 | client flags, only when not 0 |
//! | … | `nkey` | key |
//! | … | `nbytes` | value, without the protocol's `\r\n` |
//!
//! So an item with CAS and flags 0 costs 28 bytes plus key plus value;
//! memcached's costs 56 plus key plus value plus 3 (the key's NUL and the
//! value's `\r\n`). Handles are `u32`s, which is what keeps the LRU links
//! and the hash table small. The slab class is not stored: it is the
//! page's (or, for a large item, kept beside its allocation). The LRU
//! segment (memcached keeps it in the top bits of `slabs_clsid`) takes the
//! two top bits of `nbytes`: a value is below 1 GB (`-I` is at most 1 GB),
//! so 30 bits hold its length, and the header does not grow.
//!
//! CAS uniques are 48 bits wide here ([`CAS_MASK`]): at a million stores a
//! second they wrap after 8 years, where memcached's 64 bits never do.

/// Bytes of the header memcached charges (`sizeof(item)` on a 64-bit
/// build). The "object too large" limit is computed with it, so that the
/// largest value accepted is memcached's.
pub const MC_HEADER_SIZE: usize = 48;

/// Bytes of the fixed part of the header here.
pub const HEADER_FIXED: usize = 22;

/// Bytes of a stored CAS unique.
const CAS_SIZE: usize = 6;

/// The largest CAS unique; the counter wraps to 1 after it.
pub const CAS_MASK: u64 = (1 << (8 * CAS_SIZE)) - 1;

/// The header size the class table starts from: memcached's
/// `sizeof(item)`, so that the class table (`stats slabs` chunk sizes, the
/// `slabs reassign` range) is memcached's for the same `-n`, `-f` and
/// `slab_chunk_max`. Items, smaller here, are stored in chunks finer than
/// their class (see `slabs::Classes::chunk_for`).
pub const HEADER_FOR_CLASSES: usize = MC_HEADER_SIZE;

/// Longest key accepted (memcached's `KEY_MAX_LENGTH`).
pub const KEY_MAX_LENGTH: usize = 250;

/// `iflags`: the item was read since it was stored.
pub const FETCHED: u8 = 1;
/// `iflags`: 4 bytes of client flags follow the CAS.
pub const HAS_FLAGS: u8 = 2;
/// `iflags`: 6 bytes of CAS follow the fixed header.
pub const HAS_CAS: u8 = 4;
/// `iflags`: a meta get handed out the win token for this item
/// (memcached's `ITEM_TOKEN_SENT`).
pub const TOKEN_SENT: u8 = 16;
/// `iflags`: the item was invalidated (`md ... I`) and is stale
/// (memcached's `ITEM_STALE`).
pub const STALE: u8 = 32;
/// `iflags`: the key was given base64-encoded (meta `b` flag), so meta
/// replies show it encoded (memcached's `ITEM_KEY_BINARY`).
pub const KEY_BINARY: u8 = 64;
/// The `iflags` a caller may set on a new item or change later.
pub const META_FLAGS: u8 = TOKEN_SENT | STALE | KEY_BINARY;

/// `iflags`: the item was fetched again after its first fetch (memcached's
/// `ITEM_ACTIVE`): the segmented LRU rescues it from the tail.
pub const ACTIVE: u8 = 128;

/// `iflags`: the item is in the hash table and an LRU (memcached's
/// `ITEM_LINKED`); a chunk without it is free.
pub const LINKED: u8 = 8;

pub(crate) const PREV: usize = 0;
pub(crate) const NEXT: usize = 4;
pub(crate) const TIME: usize = 8;
pub(crate) const EXPTIME: usize = 12;
const NBYTES: usize = 16;
/// The bits of `nbytes` that hold the value's length.
const NBYTES_MASK: u32 = (1 << SEG_SHIFT) - 1;
/// Where the LRU segment starts in `nbytes`.
const SEG_SHIFT: u32 = 30;
const NKEY: usize = 20;
const IFLAGS: usize = 21;
const CAS: usize = 22;

/// Bytes memcached would charge for this item (`ITEM_ntotal`): header,
/// key plus NUL, 4 bytes of flags when not 0, value plus `\r\n`, 8 bytes
/// of CAS when on. Used only for the "too large" limit, so that it matches
/// memcached's to the byte.
pub fn mc_ntotal(nkey: usize, flags: u32, nbytes: usize, use_cas: bool) -> usize {
    let flags_size = if flags != 0 { 4 } else { 0 };
    let cas_size = if use_cas { 8 } else { 0 };
    MC_HEADER_SIZE + nkey + 1 + flags_size + nbytes + 2 + cas_size
}

/// Bytes this item really takes here.
pub fn item_size(nkey: usize, flags: u32, nbytes: usize, use_cas: bool) -> usize {
    key_offset(flags != 0, use_cas) + nkey + nbytes
}

fn key_offset(has_flags: bool, has_cas: bool) -> usize {
    HEADER_FIXED + if has_cas { CAS_SIZE } else { 0 } + if has_flags { 4 } else { 0 }
}

fn read_cas(mem: &[u8]) -> u64 {
    let mut b = [0; 8];
    b[..CAS_SIZE].copy_from_slice(&mem[CAS..CAS + CAS_SIZE]);
    u64::from_le_bytes(b)
}

fn write_cas(mem: &mut [u8], cas: u64) {
    debug_assert!(cas <= CAS_MASK);
    mem[CAS..CAS + CAS_SIZE].copy_from_slice(&cas.to_le_bytes()[..CAS_SIZE]);
}

pub(crate) fn get_u32(mem: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(mem[off..off + 4].try_into().expect("4 bytes"))
}

pub(crate) fn set_u32(mem: &mut [u8], off: usize, v: u32) {
    mem[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// A stored item, read in place: the view handed to the protocol code
/// while its shard is locked.
#[derive(Debug, Clone, Copy)]
pub struct ItemView<'a> {
    mem: &'a [u8],
}

impl<'a> ItemView<'a> {
    /// A view of the item at the start of `mem`.
    pub fn new(mem: &'a [u8]) -> ItemView<'a> {
        ItemView { mem }
    }

    fn iflags(&self) -> u8 {
        self.mem[IFLAGS]
    }

    fn key_off(&self) -> usize {
        let f = self.iflags();
        key_offset(f & HAS_FLAGS != 0, f & HAS_CAS != 0)
    }

    /// The key.
    pub fn key(&self) -> &'a [u8] {
        let off = self.key_off();
        &self.mem[off..off + self.mem[NKEY] as usize]
    }

    /// The value.
    pub fn data(&self) -> &'a [u8] {
        let off = self.key_off() + self.mem[NKEY] as usize;
        &self.mem[off..off + (get_u32(self.mem, NBYTES) & NBYTES_MASK) as usize]
    }

    /// The client's flags.
    pub fn flags(&self) -> u32 {
        if self.iflags() & HAS_FLAGS == 0 {
            return 0;
        }
        let off = HEADER_FIXED
            + if self.iflags() & HAS_CAS != 0 {
                CAS_SIZE
            } else {
                0
            };
        get_u32(self.mem, off)
    }

    /// The CAS unique, 0 when CAS is off.
    pub fn cas(&self) -> u64 {
        if self.iflags() & HAS_CAS == 0 {
            return 0;
        }
        read_cas(self.mem)
    }

    /// Relative expiry time, 0 = never.
    pub fn exptime(&self) -> u32 {
        get_u32(self.mem, EXPTIME)
    }

    /// Relative time of the last bump.
    pub fn time(&self) -> u32 {
        get_u32(self.mem, TIME)
    }

    /// Whether the item was read since it was stored.
    pub fn fetched(&self) -> bool {
        self.iflags() & FETCHED != 0
    }

    /// Whether the item is linked (a chunk without it is free).
    pub fn linked(&self) -> bool {
        self.iflags() & LINKED != 0
    }

    /// The meta flags ([`META_FLAGS`]) set on the item.
    pub fn meta(&self) -> u8 {
        self.iflags() & META_FLAGS
    }

    /// Bytes the item takes.
    pub fn size(&self) -> usize {
        self.key_off()
            + self.mem[NKEY] as usize
            + (get_u32(self.mem, NBYTES) & NBYTES_MASK) as usize
    }

    /// The LRU segment the item is linked in (`lru::HOT` .. `lru::TEMP`).
    pub fn seg(&self) -> usize {
        (get_u32(self.mem, NBYTES) >> SEG_SHIFT) as usize
    }

    /// Whether the item was fetched twice since it was last moved
    /// (memcached's `ITEM_ACTIVE`).
    pub fn active(&self) -> bool {
        self.iflags() & ACTIVE != 0
    }
}

/// An owned copy of an item, for tests and for commands that read a value
/// and then store a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub data: Vec<u8>,
    /// The client's flags.
    pub flags: u32,
    /// The CAS unique.
    pub cas: u64,
}

impl From<ItemView<'_>> for Item {
    fn from(v: ItemView<'_>) -> Item {
        Item {
            key: v.key().to_vec(),
            data: v.data().to_vec(),
            flags: v.flags(),
            cas: v.cas(),
        }
    }
}

/// What a new item is made of.
#[derive(Debug, Clone, Copy)]
pub struct NewItem<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value, in one or two parts (append and prepend join two).
    pub data: [&'a [u8]; 2],
    /// Client flags.
    pub flags: u32,
    /// Relative expiry time.
    pub exptime: u32,
    /// CAS unique, `None` with CAS off.
    pub cas: Option<u64>,
    /// Meta flags to start with ([`META_FLAGS`]).
    pub meta: u8,
}

impl NewItem<'_> {
    /// Value length.
    pub fn nbytes(&self) -> usize {
        self.data[0].len() + self.data[1].len()
    }

    /// Bytes the item will take.
    pub fn size(&self) -> usize {
        item_size(
            self.key.len(),
            self.flags,
            self.nbytes(),
            self.cas.is_some(),
        )
    }

    /// Write the item at the start of `mem` (at least `size()` bytes), with
    /// LRU links unset and the given time.
    pub fn write(&self, mem: &mut [u8], now: u32) {
        let has_flags = self.flags != 0;
        let mut iflags = 0;
        if has_flags {
            iflags |= HAS_FLAGS;
        }
        if self.cas.is_some() {
            iflags |= HAS_CAS;
        }
        set_u32(mem, PREV, u32::MAX);
        set_u32(mem, NEXT, u32::MAX);
        set_u32(mem, TIME, now);
        set_u32(mem, EXPTIME, self.exptime);
        set_u32(mem, NBYTES, self.nbytes() as u32);
        mem[NKEY] = self.key.len() as u8;
        mem[IFLAGS] = iflags | (self.meta & META_FLAGS);
        let mut off = HEADER_FIXED;
        if let Some(cas) = self.cas {
            write_cas(mem, cas);
            off += CAS_SIZE;
        }
        if has_flags {
            set_u32(mem, off, self.flags);
            off += 4;
        }
        for part in [self.key, self.data[0], self.data[1]] {
            mem[off..off + part.len()].copy_from_slice(part);
            off += part.len();
        }
    }
}

/// Mark an item active (memcached's `ITEM_ACTIVE`) or not.
pub(crate) fn set_active(mem: &mut [u8], active: bool) {
    if active {
        mem[IFLAGS] |= ACTIVE;
    } else {
        mem[IFLAGS] &= !ACTIVE;
    }
}

/// Record the LRU segment an item is linked in.
pub(crate) fn set_seg(mem: &mut [u8], seg: usize) {
    debug_assert!(seg < 4);
    let n = get_u32(mem, NBYTES) & NBYTES_MASK;
    set_u32(mem, NBYTES, n | (seg as u32) << SEG_SHIFT);
}

/// Mark a fetch in the item's flags (the flag part of memcached's
/// `do_item_bump`). Segmented: the first fetch sets [`FETCHED`], the
/// next [`ACTIVE`] (and, outside COLD, the time); an active item is left
/// alone. Flat: [`FETCHED`]. Returns whether the item must also be
/// relinked: an item turning active in COLD (to WARM), or in flat mode
/// one not bumped for `interval` seconds.
#[inline]
pub(crate) fn mark_fetch(
    mem: &mut [u8],
    segmented: bool,
    cold: usize,
    now: u32,
    interval: u32,
) -> bool {
    let f = mem[IFLAGS];
    if !segmented {
        mem[IFLAGS] = f | FETCHED;
        return get_u32(mem, TIME) + interval < now;
    }
    if f & ACTIVE != 0 {
        return false;
    }
    if f & FETCHED == 0 {
        mem[IFLAGS] = f | FETCHED;
        return false;
    }
    mem[IFLAGS] = f | ACTIVE;
    if ItemView::new(mem).seg() == cold {
        return true;
    }
    set_u32(mem, TIME, now);
    false
}

/// Set or clear meta flags ([`META_FLAGS`]).
pub(crate) fn set_meta(mem: &mut [u8], set: u8, clear: u8) {
    mem[IFLAGS] = (mem[IFLAGS] & !(clear & META_FLAGS)) | (set & META_FLAGS);
}

/// Overwrite the CAS (meta invalidation gives the item a new one).
pub(crate) fn set_cas(mem: &mut [u8], cas: u64) {
    if mem[IFLAGS] & HAS_CAS != 0 {
        write_cas(mem, cas);
    }
}

/// Mark an item linked or not.
pub(crate) fn set_linked(mem: &mut [u8], linked: bool) {
    if linked {
        mem[IFLAGS] |= LINKED;
    } else {
        mem[IFLAGS] &= !LINKED;
    }
}

/// Set a new relative exptime (`touch`, `gat`).
pub(crate) fn set_exptime(mem: &mut [u8], exptime: u32) {
    set_u32(mem, EXPTIME, exptime);
}

/// Overwrite the value in place (same length) and the CAS: `incr`/`decr`
/// of a value that still fits, as memcached does.
pub(crate) fn rewrite_value(mem: &mut [u8], value: &[u8], cas: u64) {
    let view = ItemView::new(mem);
    let off = view.key_off() + mem[NKEY] as usize;
    debug_assert_eq!(value.len(), (get_u32(mem, NBYTES) & NBYTES_MASK) as usize);
    if mem[IFLAGS] & HAS_CAS != 0 {
        write_cas(mem, cas);
    }
    mem[off..off + value.len()].copy_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memcached_total_matches_its_layout() {
        assert_eq!(mc_ntotal(3, 0, 5, true), 48 + 4 + 7 + 8);
        assert_eq!(mc_ntotal(3, 0, 5, false), 48 + 4 + 7);
        assert_eq!(mc_ntotal(3, 1, 5, false), 48 + 4 + 4 + 7);
    }

    #[test]
    fn write_and_read_back() {
        for (flags, cas) in [
            (0, None),
            (7, None),
            (0, Some(99)),
            (0xdead_beef, Some(CAS_MASK)),
        ] {
            let n = NewItem {
                key: b"key",
                data: [b"val", b"ue"],
                flags,
                exptime: 42,
                cas,
                meta: STALE,
            };
            let mut mem = vec![0xaa; n.size() + 10];
            n.write(&mut mem, 1000);
            let v = ItemView::new(&mem);
            assert_eq!(v.key(), b"key");
            assert_eq!(v.data(), b"value");
            assert_eq!(v.flags(), flags);
            assert_eq!(v.cas(), cas.unwrap_or(0));
            assert_eq!((v.exptime(), v.time()), (42, 1000));
            assert_eq!(v.size(), n.size());
            assert!(!v.fetched());
            assert_eq!(v.meta(), STALE);
            // Flat: a fetch marks it, and asks for a bump once it is old.
            assert!(!mark_fetch(&mut mem, false, 2, 1060, 60));
            assert!(ItemView::new(&mem).fetched());
            assert!(mark_fetch(&mut mem, false, 2, 1061, 60));
            // Segmented, in HOT: fetched, then active with the time.
            assert!(!mark_fetch(&mut mem, true, 2, 1100, 60));
            let v = ItemView::new(&mem);
            assert_eq!((v.active(), v.time()), (true, 1100));
            assert!(!mark_fetch(&mut mem, true, 2, 1200, 60));
            assert_eq!(
                ItemView::new(&mem).time(),
                1100,
                "an active item is left alone"
            );
            set_active(&mut mem, false);
            // In COLD, turning active asks for the move to WARM.
            set_seg(&mut mem, 2);
            assert!(mark_fetch(&mut mem, true, 2, 1300, 60));
            set_seg(&mut mem, 0);
            // The segment and the active mark change nothing else.
            set_seg(&mut mem, 3);
            let v = ItemView::new(&mem);
            assert_eq!((v.seg(), v.active(), v.data()), (3, true, &b"value"[..]));
            assert_eq!(v.size(), n.size());
            set_seg(&mut mem, 1);
            assert_eq!(ItemView::new(&mem).seg(), 1);
        }
        assert_eq!(item_size(12, 0, 32, true), 72);
    }

    #[test]
    fn rewrite_in_place() {
        let n = NewItem {
            key: b"n",
            data: [b"10", b""],
            flags: 0,
            exptime: 0,
            cas: Some(1),
            meta: 0,
        };
        let mut mem = vec![0; n.size()];
        n.write(&mut mem, 0);
        rewrite_value(&mut mem, b"9 ", 2);
        let v = ItemView::new(&mem);
        assert_eq!((v.data(), v.cas()), (&b"9 "[..], 2));
    }
}
