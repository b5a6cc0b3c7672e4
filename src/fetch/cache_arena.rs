//! Memory for the hot tail cache, reserved once per shard and recycled.
//!
//! # Why
//!
//! Every produced batch is copied once (the request's bytes are shared
//! with its frame, and the log rewrites baseOffset), and the copy is what
//! the tail cache keeps. Copied into a fresh heap block, each byte of a
//! filling cache lands on a page touched for the first time: 65,000 page
//! faults a second at 270 MB/s. On the VM this was measured on, the host
//! takes back memory the guest frees (free page reporting), and touching
//! it again cost 1.3-41 us per 4 KiB page depending on the host. After a
//! restart, the broker's produce ran at 80-150 MB/s instead of 650-700 for
//! as long as its cache was filling (docs/BENCHMARKS_HISTORY.md, "The slowdown
//! after a restart"). With the cache off, produce ran at 830 MB/s against
//! 700 with a filling cache.
//!
//! # What
//!
//! [`CacheArena`] maps the shard's cache budget (plus slack, see
//! [`CacheArena::new`]) in [`ARENA_CHUNK_BYTES`] chunks and touches every
//! page once, when the shard starts, before it reports ready: as Redpanda
//! takes its memory at start. Batches are copied into the current chunk
//! ([`CacheArena::copy`]); the copy is written in place (the log's offset
//! rewrite) and then frozen into a `Bytes` whose owner holds the chunk.
//! When the last `Bytes` of a chunk is dropped (the cache evicted its
//! batches and no fetch answer still holds them), the chunk goes back to
//! the free list and is reused without a page fault.
//!
//! - The cost is resident memory: the whole reserve is RSS from the start
//!   (with the default 256 MiB budget, 320 MiB per shard).
//! - A batch larger than [`ARENA_BATCH_BYTES_MAX`], or one arriving when
//!   every chunk is in use, is copied to the heap as before
//!   ([`StagingBuf::heap`]): correct, just not fault-free.
//! - Chunks are shared with other shards only through `Bytes` (a fetch
//!   answer sent by the connection's shard), whose drop may return a chunk
//!   from any thread: the free list is a `Mutex`, taken once per chunk
//!   (8 MiB), not per batch.
//! - Eviction is FIFO over the whole shard and batches are copied in
//!   arrival order, so chunks free up in order and a partly evicted chunk
//!   pins little.

use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Bytes per chunk (8 MiB): large enough that the free list is touched
/// rarely and a batch rarely wastes a chunk's end.
pub const ARENA_CHUNK_BYTES: usize = 8 << 20;
/// Largest batch copied into the arena (1 MiB): a batch never wastes more
/// than this at a chunk's end, 1/8 of it.
pub const ARENA_BATCH_BYTES_MAX: usize = 1 << 20;
/// Chunks reserved beyond the budget's own, as a fraction of them (1/4):
/// chunk ends left unused, and chunks a fetch answer still holds after
/// their batches were evicted.
const SLACK_DIVISOR: usize = 4;
/// The smallest page size on supported targets: touching one byte per page
/// backs the whole page.
const PAGE_BYTES: usize = 4096;

const _: () = assert!(ARENA_BATCH_BYTES_MAX <= ARENA_CHUNK_BYTES / 8);
const _: () = assert!(ARENA_CHUNK_BYTES.is_multiple_of(PAGE_BYTES));

/// One shard's reserve of chunks and the chunk being filled. `!Send`:
/// one per shard thread.
pub struct CacheArena {
    free: Arc<FreeList>,
    current: std::cell::RefCell<Option<(Arc<Chunk>, usize)>>,
    reserved_chunks: usize,
    /// Bytes copied to the heap instead (too big, or every chunk in use).
    heap_copy_bytes: std::cell::Cell<u64>,
}

/// Chunks not in use; shared with every `Bytes` that may return one.
struct FreeList {
    chunks: Mutex<Vec<ChunkPtr>>,
}

/// The address of a mapped chunk of [`ARENA_CHUNK_BYTES`].
#[derive(Clone, Copy)]
struct ChunkPtr(NonNull<u8>);

// SAFETY: a ChunkPtr is the sole handle of its mapping while it sits in the
// free list (ownership moves in and out under the mutex).
unsafe impl Send for ChunkPtr {}

/// A chunk in use: returned to the free list when the last reference
/// (the arena's current chunk, or a `Bytes` of one of its batches) drops.
struct Chunk {
    ptr: ChunkPtr,
    free: Arc<FreeList>,
}

// SAFETY: after a batch is frozen its bytes are only read, by any thread;
// the bytes not yet handed out are written only by the owning shard
// (`CacheArena::copy`), never through a `Bytes`.
unsafe impl Send for Chunk {}
unsafe impl Sync for Chunk {}

impl Drop for Chunk {
    fn drop(&mut self) {
        self.free.lock().push(self.ptr);
    }
}

impl FreeList {
    /// The list. A poisoned lock only means another thread panicked while
    /// holding it (the daemon aborts on a panic anyway); the Vec is valid.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ChunkPtr>> {
        self.chunks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for FreeList {
    fn drop(&mut self) {
        let chunks = self.chunks.get_mut().unwrap_or_else(|p| p.into_inner());
        for c in chunks.drain(..) {
            // SAFETY: every chunk in the list was mapped by `map_chunk` with
            // this length, and nothing references it (chunks in use hold
            // an Arc<FreeList>, so the list outlives them).
            unsafe { libc::munmap(c.0.as_ptr().cast(), ARENA_CHUNK_BYTES) };
        }
    }
}

/// A batch copied into the arena (or the heap), writable until frozen.
pub struct StagingBuf(Staging);

enum Staging {
    /// In an arena chunk: `len` bytes at `offset`.
    Arena {
        chunk: Arc<Chunk>,
        offset: usize,
        len: usize,
    },
    /// A heap copy (no arena, batch too large, or every chunk in use).
    Heap(Vec<u8>),
}

impl StagingBuf {
    /// A heap copy of `src` (no arena).
    pub fn heap(src: &[u8]) -> StagingBuf {
        StagingBuf(Staging::Heap(src.to_vec()))
    }

    /// The copy, writable (the log rewrites offsets in it).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        match &mut self.0 {
            // SAFETY: `copy` handed this range of the chunk to this buffer
            // alone (the arena's cursor moved past it), and no `Bytes` of it
            // exists before `freeze`.
            Staging::Arena { chunk, offset, len } => unsafe {
                std::slice::from_raw_parts_mut(chunk.ptr.0.as_ptr().add(*offset), *len)
            },
            Staging::Heap(v) => v,
        }
    }

    /// The bytes, shared from now on: keeps the chunk out of the free list
    /// while any clone or slice of them lives.
    pub fn freeze(self) -> Bytes {
        match self.0 {
            Staging::Arena { chunk, offset, len } => {
                Bytes::from_owner(Frozen { chunk, offset, len })
            }
            Staging::Heap(v) => Bytes::from(v),
        }
    }

    /// True if the copy is in the arena.
    pub fn in_arena(&self) -> bool {
        matches!(self.0, Staging::Arena { .. })
    }
}

/// The owner behind a frozen arena `Bytes`.
struct Frozen {
    chunk: Arc<Chunk>,
    offset: usize,
    len: usize,
}

impl AsRef<[u8]> for Frozen {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the range was written before freezing and is never
        // written again while this owner holds the chunk.
        unsafe { std::slice::from_raw_parts(self.chunk.ptr.0.as_ptr().add(self.offset), self.len) }
    }
}

/// Chunks reserved for a cache budget: its own plus 1/[`SLACK_DIVISOR`].
fn chunks_for(budget_bytes: usize) -> usize {
    let own = budget_bytes.div_ceil(ARENA_CHUNK_BYTES);
    own + own.div_ceil(SLACK_DIVISOR)
}

/// Bytes [`CacheArena::new`] reserves for `budget_bytes` (the config
/// checks it against the machine's memory).
pub fn reserve_bytes_for(budget_bytes: usize) -> usize {
    chunks_for(budget_bytes).saturating_mul(ARENA_CHUNK_BYTES)
}

impl CacheArena {
    /// Maps and touches the chunks for a cache of `budget_bytes` plus
    /// 1/[`SLACK_DIVISOR`]. Fewer chunks (down to none) if the kernel
    /// refuses a mapping: the heap copy then serves, as without an arena.
    pub fn new(budget_bytes: usize) -> CacheArena {
        let wanted = chunks_for(budget_bytes);
        let mut chunks = Vec::with_capacity(wanted);
        for _ in 0..wanted {
            match map_chunk() {
                Some(c) => chunks.push(c),
                None => break,
            }
        }
        let reserved_chunks = chunks.len();
        CacheArena {
            free: Arc::new(FreeList {
                chunks: Mutex::new(chunks),
            }),
            current: std::cell::RefCell::new(None),
            reserved_chunks,
            heap_copy_bytes: std::cell::Cell::new(0),
        }
    }

    /// Bytes reserved (mapped and touched).
    pub fn reserved_bytes(&self) -> usize {
        self.reserved_chunks * ARENA_CHUNK_BYTES
    }

    /// Bytes copied to the heap instead of the arena since start (the
    /// `corestream_tail_cache_unreserved_copy_bytes_total` metric): batches
    /// over [`ARENA_BATCH_BYTES_MAX`], or every chunk in use.
    pub fn heap_copy_bytes(&self) -> u64 {
        self.heap_copy_bytes.get()
    }

    /// Chunks in the free list now (tests and metrics).
    pub fn free_chunks(&self) -> usize {
        self.free.lock().len()
    }

    /// A writable copy of `src`: in the current chunk, or the next free
    /// one, or on the heap (see the module docs).
    pub fn copy(&self, src: &[u8]) -> StagingBuf {
        let len = src.len();
        if len == 0 || len > ARENA_BATCH_BYTES_MAX {
            return self.heap_copy(src);
        }
        let mut current = self.current.borrow_mut();
        let fits = current
            .as_ref()
            .is_some_and(|(_, used)| used + len <= ARENA_CHUNK_BYTES);
        if !fits {
            // Dropping the old chunk's Arc here returns it as soon as its
            // batches are gone too.
            *current = self.take_free().map(|c| (c, 0));
        }
        let Some((chunk, used)) = current.as_mut() else {
            return self.heap_copy(src);
        };
        let offset = *used;
        *used += len;
        let mut buf = StagingBuf(Staging::Arena {
            chunk: Arc::clone(chunk),
            offset,
            len,
        });
        buf.as_mut_slice().copy_from_slice(src);
        buf
    }

    fn heap_copy(&self, src: &[u8]) -> StagingBuf {
        self.heap_copy_bytes
            .set(self.heap_copy_bytes.get() + src.len() as u64);
        StagingBuf::heap(src)
    }

    fn take_free(&self) -> Option<Arc<Chunk>> {
        let ptr = self.free.lock().pop()?;
        Some(Arc::new(Chunk {
            ptr,
            free: Arc::clone(&self.free),
        }))
    }
}

/// Maps one chunk and touches each of its pages, or `None` if the kernel
/// refuses.
fn map_chunk() -> Option<ChunkPtr> {
    // SAFETY: an anonymous private mapping with no address hint; the result
    // is checked before use.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            ARENA_CHUNK_BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return None;
    }
    let base = NonNull::new(ptr.cast::<u8>())?;
    for page in (0..ARENA_CHUNK_BYTES).step_by(PAGE_BYTES) {
        // SAFETY: inside the mapping just made; a volatile write so the
        // touch is not optimised away.
        unsafe { std::ptr::write_volatile(base.as_ptr().add(page), 0) };
    }
    Some(ChunkPtr(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_reserves_budget_plus_slack_in_whole_chunks() {
        let arena = CacheArena::new(4 * ARENA_CHUNK_BYTES);
        assert_eq!(arena.reserved_bytes(), 5 * ARENA_CHUNK_BYTES);
        assert_eq!(
            reserve_bytes_for(4 * ARENA_CHUNK_BYTES),
            arena.reserved_bytes()
        );
        assert_eq!(reserve_bytes_for(256 << 20), 320 << 20);
        assert_eq!(arena.free_chunks(), 5);
        let none = CacheArena::new(0);
        assert_eq!(none.reserved_bytes(), 0);
    }

    #[test]
    fn arena_copy_is_writable_then_frozen_bytes_read_back() {
        let arena = CacheArena::new(ARENA_CHUNK_BYTES);
        let mut a = arena.copy(b"hello batch");
        assert!(a.in_arena());
        a.as_mut_slice()[0] = b'j';
        let b = arena.copy(b"second");
        let (a, b) = (a.freeze(), b.freeze());
        assert_eq!(&a[..], b"jello batch");
        assert_eq!(&b[..], b"second");
        // Both live in the same chunk, back to back.
        assert_eq!(unsafe { a.as_ptr().add(a.len()) }, b.as_ptr());
    }

    #[test]
    fn arena_chunk_returns_to_the_free_list_when_its_last_bytes_drop() {
        let arena = CacheArena::new(ARENA_CHUNK_BYTES);
        let reserved = arena.free_chunks();
        let big = vec![7u8; ARENA_BATCH_BYTES_MAX];
        // Fill the first chunk exactly, then one more batch starts the next.
        let first: Vec<Bytes> = (0..ARENA_CHUNK_BYTES / ARENA_BATCH_BYTES_MAX)
            .map(|_| arena.copy(&big).freeze())
            .collect();
        let next = arena.copy(&big).freeze();
        assert_eq!(arena.free_chunks(), reserved - 2);
        // A slice sent to another thread keeps the chunk pinned until it
        // drops there.
        let held = first[3].slice(10..20);
        drop(first);
        assert_eq!(
            arena.free_chunks(),
            reserved - 2,
            "a slice still holds the first chunk"
        );
        std::thread::spawn(move || assert_eq!(&held[..], &[7u8; 10]))
            .join()
            .unwrap();
        assert_eq!(
            arena.free_chunks(),
            reserved - 1,
            "the first chunk is free again"
        );
        assert_eq!(&next[..4], &[7u8; 4]);
    }

    #[test]
    fn arena_falls_back_to_the_heap_when_too_big_or_exhausted() {
        let arena = CacheArena::new(ARENA_CHUNK_BYTES);
        let too_big = arena.copy(&vec![1u8; ARENA_BATCH_BYTES_MAX + 1]);
        assert!(!too_big.in_arena());
        assert_eq!(too_big.freeze().len(), ARENA_BATCH_BYTES_MAX + 1);
        let batch = vec![2u8; ARENA_BATCH_BYTES_MAX];
        let mut held = Vec::new();
        for _ in 0..arena.reserved_bytes() / ARENA_BATCH_BYTES_MAX {
            let b = arena.copy(&batch);
            assert!(b.in_arena());
            held.push(b.freeze());
        }
        assert_eq!(arena.heap_copy_bytes(), ARENA_BATCH_BYTES_MAX as u64 + 1);
        let spill = arena.copy(&batch);
        assert!(!spill.in_arena(), "every chunk is held: the heap serves");
        assert_eq!(
            arena.heap_copy_bytes(),
            2 * ARENA_BATCH_BYTES_MAX as u64 + 1
        );
        assert_eq!(&spill.freeze()[..], &batch[..]);
        let none = CacheArena::new(0);
        assert!(!none.copy(b"x").in_arena());
    }
}
