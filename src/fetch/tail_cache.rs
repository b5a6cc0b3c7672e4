//! The hot tail cache: recent batches of each partition kept in memory, so
//! a consumer at the tail is answered without a disk read and without a
//! copy (its response carries `Bytes` views of the cached buffers).
//!
//! Decisions:
//! - **What is cached.** Each appended batch exactly as the log stored it
//!   (baseOffset already rewritten): the owned buffer `Partition` appends
//!   from ([`PartitionTail::writable_copy`], in the shard's reserved memory,
//!   `fetch::cache_arena`), frozen into `Bytes` (no copy) after
//!   `PartitionLog::append` wrote its offsets into it. These are the bytes
//!   that were copied into the O_DIRECT pending chunks and written. Why not
//!   the O_DIRECT chunks themselves: glommio's `DmaBuffer` is `!Send` (it
//!   holds an `Rc` to the executor's registered-memory allocator), while a
//!   fetch reply crosses shards (`PartitionReply` is `Send`), so a `Bytes`
//!   cannot own one. The cost is the memory of a second copy of the tail,
//!   bounded below. The owned buffer exists anyway (the offset rewrite
//!   cannot touch the request's bytes, shared with its frame), so caching
//!   adds no memcpy: two per produced byte (into the owned buffer, into the
//!   DMA chunk), zero per fetched byte.
//! - **Only durable data is served.** Batches are staged at append and
//!   become visible when a flush raises the high watermark past them
//!   ([`PartitionTail::publish`]); a read never returns a batch at or past
//!   `durable_end`.
//! - **Contiguity.** A partition's cache holds a dense run of offsets
//!   `[first cached base offset, end)`; an append that does not continue it
//!   (a gap, e.g. after a failed append) empties the partition's cache
//!   first. A read at an offset the cache does not cover returns `None` and
//!   the caller reads the disk.
//! - **Bounded per shard.** All partitions of a shard share one byte budget
//!   (`tail_cache_bytes` in the config, [`TAIL_CACHE_SHARD_BYTES_DEFAULT`]
//!   when unset; 0 turns the cache off and every fetch reads the disk). Eviction is FIFO over the whole
//!   shard (oldest inserted batch first, whichever partition holds it),
//!   through one queue of (sequence number, partition) entries; entries for
//!   batches already gone (the partition was cleared or dropped) are skipped
//!   when met, and the queue is compacted when stale entries dominate, so
//!   every operation is amortised O(1) whatever the partition count.
//! - `!Send` on purpose: one instance per shard; the `Bytes` it hands out
//!   are `Send` and may travel.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use bytes::Bytes;

use crate::fetch::cache_arena::{CacheArena, StagingBuf};
use crate::protocol::batch::batches;
use crate::protocol::fetch_writer::RecordSlices;

/// Default bytes of batches one shard's tail cache keeps, over all its
/// partitions.
pub const TAIL_CACHE_SHARD_BYTES_DEFAULT: usize = 256 << 20;
/// Largest per-shard budget the config accepts, in bytes (a typo guard:
/// the budget is ordinary heap memory, held until evicted).
pub const TAIL_CACHE_SHARD_BYTES_MAX: usize = 1 << 40;
/// Largest batch the cache takes, in bytes: bigger ones are read from disk
/// (they would evict too much of everyone else's tail).
pub const TAIL_CACHE_BATCH_BYTES_MAX: usize = 16 << 20;
/// Stale eviction-queue entries tolerated per live one before compaction.
const STALE_ENTRIES_PER_LIVE_MAX: usize = 2;

const _: () = assert!(TAIL_CACHE_BATCH_BYTES_MAX <= TAIL_CACHE_SHARD_BYTES_DEFAULT);

/// One shard's cache: budget and eviction order. Create one per shard
/// ([`TailCache::for_this_shard`]) or, in tests, with [`TailCache::new`].
pub struct TailCache {
    budget_bytes: usize,
    used_bytes: Cell<usize>,
    live_batches: Cell<usize>,
    next_seq: Cell<u64>,
    /// Insertion order over all partitions: (batch seq, its partition).
    order: RefCell<VecDeque<(u64, Weak<PartitionTail>)>>,
    /// Reserved memory the appended batches are copied into (the shard's
    /// cache only; `None` in tests built with [`TailCache::new`] and when
    /// the budget is 0).
    arena: Option<CacheArena>,
}

thread_local! {
    static SHARD_CACHE: OnceCell<Rc<TailCache>> = const { OnceCell::new() };
}

impl TailCache {
    /// A cache holding at most `budget_bytes` of batches.
    pub fn new(budget_bytes: usize) -> Rc<TailCache> {
        TailCache::build(budget_bytes, None)
    }

    /// A cache of `budget_bytes` whose batches live in a [`CacheArena`]
    /// reserved (mapped and touched) now; none for a budget of 0.
    pub fn with_arena(budget_bytes: usize) -> Rc<TailCache> {
        let arena = (budget_bytes > 0).then(|| CacheArena::new(budget_bytes));
        TailCache::build(budget_bytes, arena)
    }

    fn build(budget_bytes: usize, arena: Option<CacheArena>) -> Rc<TailCache> {
        Rc::new(TailCache {
            budget_bytes,
            used_bytes: Cell::new(0),
            live_batches: Cell::new(0),
            next_seq: Cell::new(0),
            order: RefCell::new(VecDeque::new()),
            arena,
        })
    }

    /// Bytes of memory reserved for the cache's batches (0 without an arena).
    pub fn reserved_bytes(&self) -> usize {
        self.arena.as_ref().map_or(0, CacheArena::reserved_bytes)
    }

    /// Bytes of appended batches copied to the heap because the arena had
    /// no room for them (0 without an arena).
    pub fn unreserved_copy_bytes(&self) -> u64 {
        self.arena.as_ref().map_or(0, CacheArena::heap_copy_bytes)
    }

    /// Sizes this shard thread's cache and reserves its memory (see
    /// `fetch::cache_arena`); called once when the shard starts, before any
    /// partition opens. A later call changes nothing (the cache already
    /// holds batches under the first budget).
    pub fn init_for_this_shard(budget_bytes: usize) {
        SHARD_CACHE.with(|c| {
            c.get_or_init(|| TailCache::with_arena(budget_bytes));
        });
    }

    /// This shard thread's cache (with [`TAIL_CACHE_SHARD_BYTES_DEFAULT`]
    /// if [`TailCache::init_for_this_shard`] was not called: tests).
    pub fn for_this_shard() -> Rc<TailCache> {
        SHARD_CACHE
            .with(|c| Rc::clone(c.get_or_init(|| TailCache::new(TAIL_CACHE_SHARD_BYTES_DEFAULT))))
    }

    /// Bytes cached now, over all partitions.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes.get()
    }

    /// The byte budget.
    pub fn budget_bytes(&self) -> usize {
        self.budget_bytes
    }

    /// Evicts the shard's oldest batches until `incoming` more bytes fit.
    fn make_room(&self, incoming: usize) {
        while self.used_bytes.get() + incoming > self.budget_bytes {
            let Some((seq, tail)) = self.order.borrow_mut().pop_front() else {
                return;
            };
            if let Some(tail) = tail.upgrade() {
                tail.evict_front_if(seq);
            }
        }
    }

    fn enqueue(&self, seq: u64, tail: Weak<PartitionTail>) {
        let mut order = self.order.borrow_mut();
        order.push_back((seq, tail));
        let live = self.live_batches.get();
        if order.len() > (live + 1) * (STALE_ENTRIES_PER_LIVE_MAX + 1) {
            order.retain(|(seq, tail)| tail.upgrade().is_some_and(|t| t.holds(*seq)));
        }
    }

    fn account(&self, bytes: isize, batches: isize) {
        self.used_bytes
            .set(self.used_bytes.get().wrapping_add_signed(bytes));
        self.live_batches
            .set(self.live_batches.get().wrapping_add_signed(batches));
    }
}

/// One cached batch.
#[derive(Debug, Clone)]
struct CachedBatch {
    seq: u64,
    base_offset: i64,
    last_offset: i64,
    bytes: Bytes,
}

/// One partition's slice of the shard cache. Hold it in an `Rc` (the shard
/// queue keeps a `Weak`); dropping it releases its bytes from the budget.
pub struct PartitionTail {
    shard: Rc<TailCache>,
    me: Weak<PartitionTail>,
    batches: RefCell<VecDeque<CachedBatch>>,
    /// Offsets below this are durable (the log's high watermark as last
    /// published).
    durable_end: Cell<i64>,
}

impl PartitionTail {
    /// An empty cache for one partition in `shard`'s budget.
    pub fn new(shard: Rc<TailCache>) -> Rc<PartitionTail> {
        Rc::new_cyclic(|me| PartitionTail {
            shard,
            me: me.clone(),
            batches: RefCell::new(VecDeque::new()),
            durable_end: Cell::new(i64::MIN),
        })
    }

    /// A writable copy of `records` (batches about to be appended), in the
    /// shard's reserved memory when there is room: the log rewrites their
    /// offsets in it, then [`stage`](Self::stage) keeps it frozen.
    pub fn writable_copy(&self, records: &[u8]) -> StagingBuf {
        match &self.shard.arena {
            Some(arena) => arena.copy(records),
            None => StagingBuf::heap(records),
        }
    }

    /// Stages batches just appended (whole v2 batches with their final
    /// offsets; `bytes` is shared, not copied). Not readable until
    /// [`publish`](Self::publish) covers them.
    pub fn stage(&self, bytes: Bytes) {
        for batch in batches(&bytes) {
            let Ok(batch) = batch else { return };
            let (base, last) = (batch.header.base_offset(), batch.header.last_offset());
            let len = batch.bytes.len();
            let continues = self
                .batches
                .borrow()
                .back()
                .is_none_or(|b| b.last_offset + 1 == base);
            let too_big = len > TAIL_CACHE_BATCH_BYTES_MAX || len > self.shard.budget_bytes;
            if !continues || too_big {
                // Keep the cached run dense: restart it here.
                self.clear();
            }
            if !too_big {
                self.stage_one(
                    base,
                    last,
                    bytes.slice(batch.position..batch.position + len),
                );
            }
        }
    }

    fn stage_one(&self, base_offset: i64, last_offset: i64, bytes: Bytes) {
        self.shard.make_room(bytes.len());
        let seq = self.shard.next_seq.get();
        self.shard.next_seq.set(seq + 1);
        self.shard.account(bytes.len() as isize, 1);
        self.batches.borrow_mut().push_back(CachedBatch {
            seq,
            base_offset,
            last_offset,
            bytes,
        });
        self.shard.enqueue(seq, self.me.clone());
    }

    /// Makes batches below `high_watermark` readable.
    pub fn publish(&self, high_watermark: i64) {
        self.durable_end.set(high_watermark);
    }

    /// Whole durable batches from the one holding `offset`, up to
    /// `max_bytes` (the first one whole if it alone is larger and
    /// `min_one`), or `None` if the cache does not hold `offset`.
    pub fn read(&self, offset: i64, max_bytes: usize, min_one: bool) -> Option<RecordSlices> {
        let batches = self.batches.borrow();
        let durable_end = self.durable_end.get();
        let front = batches.front()?;
        if offset < front.base_offset || offset >= durable_end {
            return None;
        }
        let at = batches.partition_point(|b| b.last_offset < offset);
        let first = batches.get(at)?;
        if first.base_offset >= durable_end {
            return None;
        }
        let mut out = RecordSlices::new();
        for b in batches.range(at..) {
            if b.base_offset >= durable_end {
                break;
            }
            let fits = out.len() + b.bytes.len() <= max_bytes;
            let first_may_overflow = out.is_empty() && min_one;
            if !fits && !first_may_overflow {
                break;
            }
            out.push(b.bytes.clone());
            if !fits {
                break;
            }
        }
        Some(out)
    }

    /// Bytes this partition holds in the cache.
    pub fn cached_bytes(&self) -> usize {
        self.batches.borrow().iter().map(|b| b.bytes.len()).sum()
    }

    /// `(first base offset, end offset)` cached, if any.
    pub fn cached_range(&self) -> Option<(i64, i64)> {
        let batches = self.batches.borrow();
        Some((
            batches.front()?.base_offset,
            batches.back()?.last_offset + 1,
        ))
    }

    /// Drops everything this partition caches (e.g. the log was truncated
    /// or its start moved past the cache).
    pub fn clear(&self) {
        let drained: Vec<CachedBatch> = self.batches.borrow_mut().drain(..).collect();
        let bytes: usize = drained.iter().map(|b| b.bytes.len()).sum();
        self.shard
            .account(-(bytes as isize), -(drained.len() as isize));
    }

    fn holds(&self, seq: u64) -> bool {
        let batches = self.batches.borrow();
        match (batches.front(), batches.back()) {
            (Some(front), Some(back)) => front.seq <= seq && seq <= back.seq,
            _ => false,
        }
    }

    /// Drops the front batch if it is the one inserted as `seq`.
    fn evict_front_if(&self, seq: u64) {
        let mut batches = self.batches.borrow_mut();
        if batches.front().is_some_and(|b| b.seq == seq) {
            let b = batches.pop_front().expect("front checked");
            self.shard.account(-(b.bytes.len() as isize), -1);
        }
    }
}

impl Drop for PartitionTail {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests;
