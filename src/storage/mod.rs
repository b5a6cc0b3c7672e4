//! The on-disk log of one partition, Kafka's layout, written with O_DIRECT.
//!
//! ```text
//! <data_dir>/.dma-probe                     see dma_disk.rs (prime_dma_io)
//! <data_dir>/replication-offset-checkpoint.<shard>   high watermarks (hw_checkpoint.rs)
//! <data_dir>/<topic>-<partition>/
//!     00000000000000000000.log              RecordBatch v2 bytes back to back
//!     00000000000000000000.index            sparse offset index (index.rs)
//!     00000000000000000000.timeindex        sparse time index (index.rs)
//!     00000000000000000000.txnindex         aborted transactions (producer::aborted)
//!     partition.checkpoint                  log start offset (checkpoint.rs)
//!     leader-epoch-checkpoint               leader epochs, Kafka's text format (epoch_cache.rs)
//! ```
//!
//! Pieces, each a small module with its decisions in its doc:
//! - [`disk`](Disk): the seam: [`Disk`]/[`DiskFile`] traits,
//!   [`DmaDisk`] (glommio, production) and [`MemDisk`] (tests, crash and
//!   fault injection).
//! - `segment`: one `.log` + indexes + the pending aligned tail.
//! - `index`: the sparse offset and time indexes.
//! - `log`: [`PartitionLog`], the appender (rolls by size and by batch
//!   timestamp, `segment.ms`); `flush`: group commit;
//!   `read`: fetch and timestamp lookup; `scan`: batch walking;
//!   `recovery`: open; `checkpoint`, `small_file`: small durable files.
//! - `replica`: `append_replica` (a follower's append, the leader's bytes
//!   as written); `truncate`: `truncate_to` (crash-safe cut of the tail);
//!   `epoch_cache`, `epochs`: the leader-epoch cache, its file and its
//!   place in append, flush, truncation and log-start moves.
//! - `retention`: retention by time and size, DeleteRecords, removal of
//!   segments below the log start (checkpoint first, then files).
//! - `compaction`: the cleaner (latest value per key, tombstones, crash-safe
//!   swap of a cleaned segment through `<base>.cleaned.tmp`).
//! - [`fault`]: test-only crash points (`--fault-abort-at`) at every durable
//!   step of compaction and segment deletion.
//!
//! Who calls them: the owner shard's housekeeping task (src/shard/
//! housekeeping.rs) runs retention and compaction every
//! `log.retention.check.interval.ms` in a low-priority task queue;
//! DeleteRecords runs on request. All three take the log's housekeeping
//! lock, so they never interleave; appends and reads never wait for it.
//!
//! Durability contract: `append` is memory only; `flush` makes everything
//! appended before it durable (fdatasync) and only then raises the high
//! watermark; reads never return data at or past the high watermark.
//!
//! Reads leave this module zero-copy: the hot tail is served from the
//! shard's tail cache and older data as file ranges (both in `crate::fetch`),
//! and the cleaner decompresses batches (`cleaner_batch.rs`, bounded by
//! `DECOMPRESSED_BATCH_BYTES_MAX`). Not done: an open-file limit for the
//! log itself: a segment keeps its `.log` file open once opened, and its
//! indexes in memory (only the fds held by fetch file ranges are capped,
//! `fetch::cold_file::segment_fds_max`).
//!
//! Everything here is single-threaded and `!Send` on purpose: a partition is
//! owned by one shard (DESIGN.md, thread per core).

mod checkpoint;
mod cleaner_batch;
mod cleaner_io;
mod cleaner_txn;
mod compaction;
mod disk;
mod dma_disk;
mod epoch_cache;
mod epochs;
mod error;
pub mod fault;
mod flush;
mod hw_checkpoint;
/// Public only so `bench/index_lookup.rs` can time lookups; not an API.
#[doc(hidden)]
pub mod index;
mod log;
mod mem_disk;
mod read;
mod recovery;
mod replica;
mod reset;
mod retention;
mod scan;
mod segment;
mod small_file;
mod truncate;

#[cfg(test)]
mod cleaner_tests;
#[cfg(test)]
mod cleaner_txn_crash_tests;
#[cfg(test)]
mod cleaner_txn_tests;
#[cfg(test)]
mod full_disk_tests;
#[cfg(test)]
mod lifecycle_crash_tests;
#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod recovery_tests;
#[cfg(test)]
mod replica_tests;
#[cfg(test)]
mod tests;

pub use checkpoint::CHECKPOINT_FILE_NAME;
pub use cleaner_batch::DECOMPRESSED_BATCH_BYTES_MAX;
pub use cleaner_io::CLEANER_READ_BYTES;
pub use cleaner_txn::{AbortedTxnRange, CleanerTxns, NoTxns};
pub use compaction::{
    CompactionPolicy, CompactionStats, IoPacer, NoPacing, CLEANER_PACE_STEP_BYTES,
    OFFSET_MAP_BYTES_MAX, OFFSET_MAP_ENTRY_OVERHEAD_BYTES,
};
pub use disk::{align_down, align_up, is_aligned, Disk, DiskFile, IoBuffer, BLOCK_BYTES};
pub use dma_disk::{prime_dma_io, DmaDisk, DmaDiskFile, DMA_PROBE_FILE_NAME};
pub use epoch_cache::{
    Divergence, EpochEntry, LeaderEpochCache, LEADER_EPOCH_FILE_NAME, UNDEFINED_EPOCH,
    UNDEFINED_EPOCH_OFFSET,
};
pub use error::StorageError;
pub use flush::WRITES_IN_FLIGHT_MAX;
pub use hw_checkpoint::{
    read_hw_checkpoint, write_hw_checkpoint, HwCheckpoint, HW_CHECKPOINT_FILE_PREFIX,
};
pub use log::{AppendInfo, PartitionLog};
pub use mem_disk::{MemBuffer, MemDisk, MemFile};
pub use read::FileRangeStart;
pub use retention::{Removed, RetentionPolicy};
pub use scan::{READ_CHUNK_BYTES, RECOVERY_READ_BYTES};
pub(crate) use segment::segment_path as segment_file_path;
pub use segment::{PENDING_CHUNK_BYTES, TXN_INDEX_EXTENSION, WRITE_BYTES_MAX};
pub(crate) use small_file::{read_small_file, write_small_file};

use crate::protocol::batch::BATCH_HEADER_LEN;

/// Default segment size before a roll, in bytes (Kafka's `segment.bytes`).
pub const SEGMENT_BYTES_DEFAULT: u64 = 1 << 30;
/// Largest segment size, in bytes: index positions are u32 and Kafka caps
/// `segment.bytes` at i32::MAX.
pub const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;
/// Smallest segment size, in bytes: one batch header.
pub const SEGMENT_BYTES_MIN: u64 = BATCH_HEADER_LEN as u64;
/// Default bytes between offset-index entries (Kafka's
/// `index.interval.bytes`).
pub const INDEX_INTERVAL_BYTES_DEFAULT: u32 = 4096;
/// Default time-based roll, in ms (Kafka's `segment.ms`: 7 days).
pub const SEGMENT_MS_DEFAULT: i64 = 7 * 24 * 3600 * 1000;
/// Default largest preallocation step of a segment file, in bytes.
pub const PREALLOCATE_BYTES_DEFAULT: u64 = 64 << 20;
/// First preallocation of a segment file, in bytes; each later one doubles
/// the file until steps reach `preallocate_bytes` (see `allocation_for`).
pub const PREALLOCATE_BYTES_FIRST: u64 = 256 << 10;

const _: () = assert!(SEGMENT_BYTES_DEFAULT <= SEGMENT_BYTES_MAX);
const _: () = assert!(PREALLOCATE_BYTES_DEFAULT.is_multiple_of(BLOCK_BYTES as u64));
const _: () = assert!(PREALLOCATE_BYTES_FIRST.is_multiple_of(BLOCK_BYTES as u64));

/// Settings of one partition log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll to a new segment when the active one would exceed this, in bytes
    /// (`SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX`).
    pub segment_bytes: u64,
    /// Bytes appended between two sparse index entries (> 0).
    pub index_interval_bytes: u32,
    /// Preallocation step of segment files, in bytes (rounded up to a
    /// block; capped at `segment_bytes`).
    pub preallocate_bytes: u64,
    /// Roll when a batch's max timestamp is more than this many ms after
    /// the active segment's first batch (Kafka's `segment.ms`; > 0).
    pub segment_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            index_interval_bytes: INDEX_INTERVAL_BYTES_DEFAULT,
            preallocate_bytes: PREALLOCATE_BYTES_DEFAULT,
            segment_ms: SEGMENT_MS_DEFAULT,
        }
    }
}
