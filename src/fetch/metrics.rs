//! Per-shard counters of which path served each partition read.
//!
//! Plain `Cell`s in a thread local: a shard thread is the only writer (the
//! read runs on the partition's owner), so there is no atomic and no shared
//! cache line. [`FetchMetrics::this_shard`] returns a `Send` copy; the
//! metrics endpoint reads it on each shard (e.g. inside `Shard::run_on`)
//! and sums or labels by shard.

use std::cell::Cell;

/// Which path served a partition read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchPath {
    /// `Bytes` views of the hot tail cache: no disk read, no copy.
    TailCache,
    /// Segment file read into a DMA buffer, then copied once into `Bytes`
    /// (the copy fallback; expected to go to 0 once sendfile lands).
    DiskCopy,
}

/// A copy of one shard's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchMetrics {
    tail_cache_reads: u64,
    tail_cache_bytes: u64,
    disk_copy_reads: u64,
    disk_copy_bytes: u64,
}

impl FetchMetrics {
    /// This shard thread's counters.
    pub fn this_shard() -> FetchMetrics {
        COUNTERS.with(|c| FetchMetrics {
            tail_cache_reads: c.tail_cache_reads.get(),
            tail_cache_bytes: c.tail_cache_bytes.get(),
            disk_copy_reads: c.disk_copy_reads.get(),
            disk_copy_bytes: c.disk_copy_bytes.get(),
        })
    }

    /// Partition reads with data answered from the tail cache.
    pub fn tail_cache_reads(&self) -> u64 {
        self.tail_cache_reads
    }

    /// Record bytes answered from the tail cache (zero copy).
    pub fn tail_cache_bytes(&self) -> u64 {
        self.tail_cache_bytes
    }

    /// Partition reads with data answered by a disk read plus a copy.
    pub fn disk_copy_reads(&self) -> u64 {
        self.disk_copy_reads
    }

    /// Record bytes answered by a disk read plus a copy into `Bytes`.
    pub fn disk_copy_bytes(&self) -> u64 {
        self.disk_copy_bytes
    }

    /// Record bytes sent with sendfile/splice (not built yet: always 0).
    pub fn sendfile_bytes(&self) -> u64 {
        0
    }

    /// Adds `other` (sums shards).
    pub fn add(&mut self, other: &FetchMetrics) {
        self.tail_cache_reads += other.tail_cache_reads;
        self.tail_cache_bytes += other.tail_cache_bytes;
        self.disk_copy_reads += other.disk_copy_reads;
        self.disk_copy_bytes += other.disk_copy_bytes;
    }
}

#[derive(Default)]
struct Counters {
    tail_cache_reads: Cell<u64>,
    tail_cache_bytes: Cell<u64>,
    disk_copy_reads: Cell<u64>,
    disk_copy_bytes: Cell<u64>,
}

thread_local! {
    static COUNTERS: Counters = Counters::default();
}

/// Counts one partition read of `bytes` record bytes served by `path`
/// (reads that return nothing are not counted).
pub fn record_read(path: FetchPath, bytes: usize) {
    if bytes == 0 {
        return;
    }
    let bump = |c: &Cell<u64>, by: u64| c.set(c.get() + by);
    COUNTERS.with(|c| match path {
        FetchPath::TailCache => {
            bump(&c.tail_cache_reads, 1);
            bump(&c.tail_cache_bytes, bytes as u64);
        }
        FetchPath::DiskCopy => {
            bump(&c.disk_copy_reads, 1);
            bump(&c.disk_copy_bytes, bytes as u64);
        }
    });
}
