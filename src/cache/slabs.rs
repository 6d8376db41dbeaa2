//! Slab classes: mirrors `slabs_init` and `slabs_clsid` of memcached's
//! `slabs.c`.
//!
//! A class is a chunk size. Sizes grow by `-f` from the item header plus
//! `-n`, 8-byte aligned, up to `-o slab_chunk_max`, or are given outright by
//! `-o slab_sizes`. An item lives in the smallest class whose chunk holds
//! it; an item larger than the largest chunk belongs to the largest class,
//! as memcached's chunked items do.
//!
//! Classes of small chunks are carved out of pages (see [`super::shard`]).
//! Classes whose chunk is a large share of a page are *large*: each item
//! of such a class is one allocation of exactly its size, because rounding
//! a 40 KiB item up to a 52 KiB chunk, or a page up to whole chunks, wastes
//! more than the allocator's own rounding.

use super::items::HEADER_FOR_CLASSES;

/// memcached's `CHUNK_ALIGN_BYTES`.
const CHUNK_ALIGN: usize = 8;

/// Rounding of a large item's allocation.
const LARGE_ALIGN: usize = 64;

/// memcached's `MAX_NUMBER_OF_SLAB_CLASSES - 1` in 1.6 (class ids 1..=63
/// as `slabs_init` numbers them; 0 is unused).
pub const MAX_CLASSES: usize = 63;

/// The class table of one cache.
#[derive(Debug, Clone)]
pub struct Classes {
    /// Chunk size of class `i` at index `i`; index 0 is unused (0).
    sizes: Vec<usize>,
    /// Bytes of a page of the small classes.
    page_size: usize,
    /// Chunks larger than this are large classes.
    small_max: usize,
}

/// What `Classes::new` needs from the settings.
#[derive(Debug, Clone, Copy)]
pub struct ClassParams<'a> {
    /// `-n`.
    pub chunk_size: usize,
    /// `-f`.
    pub factor: f64,
    /// `-o slab_chunk_max`.
    pub slab_chunk_max: usize,
    /// `-o slab_sizes`, empty for the geometric series.
    pub slab_sizes: &'a [u32],
    /// Bytes of a page for the small classes.
    pub page_size: usize,
}

impl Classes {
    /// The classes `slabs_init` would make.
    pub fn new(p: ClassParams<'_>) -> Classes {
        let mut sizes = vec![0];
        let mut size = (HEADER_FOR_CLASSES + p.chunk_size) as f64;
        let max = p.slab_chunk_max;
        let mut given = p.slab_sizes.iter();
        while sizes.len() < MAX_CLASSES {
            let mut s = if p.slab_sizes.is_empty() {
                if size >= max as f64 / p.factor {
                    break;
                }
                size as usize
            } else {
                match given.next() {
                    Some(&s) if (s as usize) < max => s as usize,
                    _ => break,
                }
            };
            s = s.div_ceil(CHUNK_ALIGN) * CHUNK_ALIGN;
            sizes.push(s);
            size = s as f64 * p.factor;
        }
        sizes.push(max);
        Classes {
            sizes,
            page_size: p.page_size,
            small_max: p.page_size / 8,
        }
    }

    /// The largest class id (memcached's `power_largest`).
    pub fn largest(&self) -> usize {
        self.sizes.len() - 1
    }

    /// Chunk size of a class.
    pub fn size(&self, class: usize) -> usize {
        self.sizes[class]
    }

    /// Bytes of a page of the small classes.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Chunks of `class` in one page (for a large class, 1).
    pub fn per_page(&self, class: usize) -> usize {
        if self.is_large(class) {
            1
        } else {
            self.page_size / self.sizes[class]
        }
    }

    /// Whether items of `class` are single allocations instead of chunks.
    pub fn is_large(&self, class: usize) -> bool {
        self.sizes[class] > self.small_max
    }

    /// Whether an item of `size` bytes in `class` is a single allocation:
    /// an item of a large class, or one bigger than the largest chunk
    /// (which memcached chains over several chunks).
    pub fn is_large_item(&self, class: usize, size: usize) -> bool {
        self.is_large(class) || size > self.sizes[class]
    }

    /// The chunk an item of `size` bytes in `class` is stored in: its size
    /// rounded up to a sixteenth of the class's chunk (8 bytes at the
    /// least), never more than the class's chunk. memcached rounds every
    /// item up to its class's chunk, which wastes a tenth of the memory on
    /// average with `-f 1.25`; a class here has a few chunk sizes instead,
    /// each with its own pages and free chunks, and one LRU for all.
    ///
    /// A large item (see [`Classes::is_large_item`]) is its own
    /// allocation: its size rounded to a cache line (64 bytes), so that
    /// items of nearly one size take the same memory, without the
    /// sixteenth's waste on big items.
    pub fn chunk_for(&self, class: usize, size: usize) -> usize {
        let top = self.sizes[class];
        if self.is_large_item(class, size) {
            return size.div_ceil(LARGE_ALIGN) * LARGE_ALIGN;
        }
        let step = (top / 16).div_ceil(CHUNK_ALIGN).max(1) * CHUNK_ALIGN;
        size.div_ceil(step).saturating_mul(step).min(top)
    }

    /// The class for an item of `size` bytes (memcached's `slabs_clsid`):
    /// the smallest that holds it, or the largest for anything bigger.
    pub fn class_for(&self, size: usize) -> usize {
        let i = self.sizes[1..].partition_point(|&s| s < size) + 1;
        i.min(self.largest())
    }
}

/// The page size for a cache of `limit` bytes in `shards` shards: a power
/// of two from 4 KiB to 1 MiB, small enough that every shard can hold 64
/// pages, so that a shard can keep pages of many classes at once.
pub fn page_size_for(limit: usize, shards: usize) -> usize {
    let per_shard = limit / shards / 64;
    per_shard.next_power_of_two().clamp(4 * 1024, 1024 * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_classes() -> Classes {
        Classes::new(ClassParams {
            chunk_size: 48,
            factor: 1.25,
            slab_chunk_max: 512 * 1024,
            slab_sizes: &[],
            page_size: 64 * 1024,
        })
    }

    #[test]
    fn geometric_classes_end_at_slab_chunk_max() {
        let c = default_classes();
        assert_eq!(c.size(1), HEADER_FOR_CLASSES + 48);
        for i in 2..=c.largest() {
            assert!(c.size(i) > c.size(i - 1));
            assert_eq!(c.size(i) % 8, 0);
        }
        assert_eq!(c.size(c.largest()), 512 * 1024);
        // memcached's default table has 39 classes, and a 66560-byte value
        // lands in class 31; the same holds here.
        assert_eq!(c.largest(), 39);
        assert_eq!(c.class_for(66560 + 40), 31);
    }

    #[test]
    fn class_for_picks_the_smallest_that_fits() {
        let c = default_classes();
        assert_eq!(c.class_for(1), 1);
        assert_eq!(c.class_for(c.size(1)), 1);
        assert_eq!(c.class_for(c.size(1) + 1), 2);
        assert_eq!(c.class_for(10 * 1024 * 1024), c.largest());
        assert!(!c.is_large(1));
        assert_eq!(c.size(1), 96);
        assert_eq!(c.chunk_for(c.largest(), 1 << 20), 1 << 20);
        assert_eq!(c.chunk_for(c.largest(), (1 << 20) - 100), (1 << 20) - 64);
        assert_eq!(c.chunk_for(c.largest(), (1 << 20) - 250), (1 << 20) - 192);
        assert_eq!(c.chunk_for(1, 72), 72);
        assert_eq!(c.chunk_for(1, 73), 80);
        let top = c.size(6);
        assert_eq!(c.chunk_for(6, top - 1), top);
        assert!(c.chunk_for(6, c.size(5) + 1) < top);
        assert!(c.is_large(c.largest()));
        // With a small slab_chunk_max, items beyond it are large too.
        let small = Classes::new(ClassParams {
            chunk_size: 48,
            factor: 1.25,
            slab_chunk_max: 4096,
            slab_sizes: &[],
            page_size: 64 * 1024,
        });
        let top = small.largest();
        assert!(!small.is_large(top));
        assert!(small.is_large_item(top, 7932));
        assert_eq!(small.chunk_for(top, 7932), 7936);
        assert_eq!(small.chunk_for(top, 4000), 4096);
    }

    #[test]
    fn explicit_sizes() {
        let c = Classes::new(ClassParams {
            chunk_size: 48,
            factor: 1.25,
            slab_chunk_max: 512 * 1024,
            slab_sizes: &[100, 200, 300],
            page_size: 64 * 1024,
        });
        assert_eq!(
            (1..=c.largest()).map(|i| c.size(i)).collect::<Vec<_>>(),
            vec![104, 200, 304, 512 * 1024]
        );
        assert_eq!(c.chunk_for(2, 150), 160);
    }

    #[test]
    fn page_size_scales_with_the_limit() {
        assert_eq!(page_size_for(3 << 20, 16), 4 * 1024);
        assert_eq!(page_size_for(1 << 20, 16), 4 * 1024);
        assert_eq!(page_size_for(64 << 20, 16), 64 * 1024);
        assert_eq!(page_size_for(1 << 30, 16), 1024 * 1024);
    }
}
