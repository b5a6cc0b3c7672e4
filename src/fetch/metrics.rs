//! Per-shard counters of which path served each partition read, and how
//! file ranges reached the socket.
//!
//! Plain `Cell`s in a thread local: a shard thread is the only writer (the
//! read runs on the partition's owner, the send on the connection's
//! shard), so there is no atomic and no shared cache line.
//! [`FetchMetrics::this_shard`] returns a `Send` copy; the metrics endpoint
//! reads it on each shard (e.g. inside `Shard::run_on`) and sums or labels
//! by shard.

use std::cell::Cell;

/// Which path served a partition read (on the partition's owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchPath {
    /// `Bytes` views of the hot tail cache: no disk read, no copy.
    TailCache,
    /// A segment file range, sent later by [`SendPath`].
    FileRange,
    /// Segment file read into a DMA buffer, then copied once into `Bytes`
    /// (when a file range could not be chosen: a fallback, expected 0).
    DiskCopy,
}

/// How a file range went to the socket (on the connection's shard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendPath {
    /// io_uring SPLICE file -> pipe -> socket: no user-space copy.
    Splice,
    /// `pread` into memory, then a send (splice unavailable: a fallback,
    /// expected 0).
    Copy,
}

/// A copy of one shard's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchMetrics {
    tail_cache_reads: u64,
    tail_cache_bytes: u64,
    file_range_reads: u64,
    file_range_bytes: u64,
    disk_copy_reads: u64,
    disk_copy_bytes: u64,
    splice_bytes: u64,
    send_copy_bytes: u64,
}

impl FetchMetrics {
    /// This shard thread's counters.
    pub fn this_shard() -> FetchMetrics {
        COUNTERS.with(|c| FetchMetrics {
            tail_cache_reads: c.tail_cache_reads.get(),
            tail_cache_bytes: c.tail_cache_bytes.get(),
            file_range_reads: c.file_range_reads.get(),
            file_range_bytes: c.file_range_bytes.get(),
            disk_copy_reads: c.disk_copy_reads.get(),
            disk_copy_bytes: c.disk_copy_bytes.get(),
            splice_bytes: c.splice_bytes.get(),
            send_copy_bytes: c.send_copy_bytes.get(),
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

    /// Partition reads the tail cache could not answer (file range or copy).
    pub fn disk_reads(&self) -> u64 {
        self.file_range_reads + self.disk_copy_reads
    }

    /// Record bytes the tail cache could not answer.
    pub fn disk_bytes(&self) -> u64 {
        self.file_range_bytes + self.disk_copy_bytes
    }

    /// Partition reads answered by a disk read plus a copy into `Bytes`.
    pub fn disk_copy_reads(&self) -> u64 {
        self.disk_copy_reads
    }

    /// Record bytes answered by a disk read plus a copy into `Bytes`.
    pub fn disk_copy_bytes(&self) -> u64 {
        self.disk_copy_bytes
    }

    /// Record bytes copied in user space on the cold path: O_DIRECT reads
    /// copied into `Bytes` plus file ranges sent by `pread` (both
    /// fallbacks; 0 when every cold byte is spliced).
    pub fn copy_fallback_bytes(&self) -> u64 {
        self.disk_copy_bytes + self.send_copy_bytes
    }

    /// Record bytes sent from segment files with splice.
    pub fn splice_bytes(&self) -> u64 {
        self.splice_bytes
    }

    /// Adds `other` (sums shards).
    pub fn add(&mut self, other: &FetchMetrics) {
        self.tail_cache_reads += other.tail_cache_reads;
        self.tail_cache_bytes += other.tail_cache_bytes;
        self.file_range_reads += other.file_range_reads;
        self.file_range_bytes += other.file_range_bytes;
        self.disk_copy_reads += other.disk_copy_reads;
        self.disk_copy_bytes += other.disk_copy_bytes;
        self.splice_bytes += other.splice_bytes;
        self.send_copy_bytes += other.send_copy_bytes;
    }
}

#[derive(Default)]
struct Counters {
    tail_cache_reads: Cell<u64>,
    tail_cache_bytes: Cell<u64>,
    file_range_reads: Cell<u64>,
    file_range_bytes: Cell<u64>,
    disk_copy_reads: Cell<u64>,
    disk_copy_bytes: Cell<u64>,
    splice_bytes: Cell<u64>,
    send_copy_bytes: Cell<u64>,
}

thread_local! {
    static COUNTERS: Counters = Counters::default();
}

fn bump(c: &Cell<u64>, by: u64) {
    c.set(c.get() + by);
}

/// Counts one partition read of `bytes` record bytes served by `path`
/// (reads that return nothing are not counted).
pub fn record_read(path: FetchPath, bytes: usize) {
    if bytes == 0 {
        return;
    }
    COUNTERS.with(|c| {
        let (reads, total) = match path {
            FetchPath::TailCache => (&c.tail_cache_reads, &c.tail_cache_bytes),
            FetchPath::FileRange => (&c.file_range_reads, &c.file_range_bytes),
            FetchPath::DiskCopy => (&c.disk_copy_reads, &c.disk_copy_bytes),
        };
        bump(reads, 1);
        bump(total, bytes as u64);
    });
}

/// Counts `bytes` of a file range sent to a socket by `path`.
pub fn record_send(path: SendPath, bytes: usize) {
    COUNTERS.with(|c| match path {
        SendPath::Splice => bump(&c.splice_bytes, bytes as u64),
        SendPath::Copy => bump(&c.send_copy_bytes, bytes as u64),
    });
}
