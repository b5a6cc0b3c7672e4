//! The RecordBatch v2 header: the only part of record data the broker reads.
//!
//! Produce and fetch never decode records. A partition's `records` blob is a
//! run of v2 batches back to back; the broker reads each batch's fixed
//! 61-byte header in place (a `zerocopy` view, no copy, no allocation),
//! checks its length and CRC32C on produce, rewrites `baseOffset` and
//! `partitionLeaderEpoch`, and stores the bytes exactly as received (still
//! compressed), which is what makes zero-copy fetch possible.
//!
//! Layout (all big-endian), offsets in bytes:
//!
//! ```text
//!  0 baseOffset i64          27 baseTimestamp i64
//!  8 batchLength i32         35 maxTimestamp i64
//! 12 partitionLeaderEpoch i32 43 producerId i64
//! 16 magic i8 (= 2)          51 producerEpoch i16
//! 17 crc u32                 53 baseSequence i32
//! 21 attributes i16          57 recordsCount i32
//! 23 lastOffsetDelta i32     61 records...
//! ```
//!
//! `batchLength` counts the bytes after itself, so a batch occupies
//! `batchLength + 12` bytes. The CRC is CRC32C (Castagnoli) over everything
//! from `attributes` to the end of the batch: `baseOffset`,
//! `batchLength` and `partitionLeaderEpoch` lie outside it, so the broker
//! can assign offsets and epochs without recomputing it.
//!
//! Errors from outside (a client's produce, a torn log tail) are
//! [`BatchError`]s; the setters, which the broker only calls on batches it
//! has already validated, panic on a short buffer because that is a bug.

// One file per concern; everything is re-exported here, so callers name
// `protocol::batch::X` whichever file holds it. The fuzz crate compiles
// this directory by path (fuzz/src/protocol.rs).
mod error;
mod framing;
mod header;
mod produce;
mod rewrite;

pub use error::BatchError;
pub use framing::{batches, check_crc, BatchRef, Batches};
pub use header::BatchHeader;
pub use produce::{validate_produce, ProduceSummary};
pub use rewrite::{
    rebuild_batch, rebuild_batch_body, set_base_offset, set_max_timestamp_log_append,
    set_partition_leader_epoch,
};

#[doc(hidden)]
pub mod test_batch;
#[doc(hidden)]
pub use test_batch::{
    build_test_batch, build_test_batch_spaced, build_test_producer_batch, TestRecord,
};

/// Size of the fixed RecordBatch v2 header, in bytes.
pub const BATCH_HEADER_LEN: usize = 61;
/// The only record-batch format the broker accepts and stores.
pub const BATCH_MAGIC_V2: i8 = 2;
/// Bytes before and including `batchLength`, not counted by it.
pub const BATCH_LENGTH_OVERHEAD: usize = 12;

// The header layout and attribute bits: their one home. Code that must
// touch raw header bytes (the cleaner's rewrites, the bench CLI's value
// walk) uses these; the offsets are checked against [`BatchHeader`]'s
// fields at compile time in `header.rs`.

/// Byte offset of `baseOffset` (i64).
pub const BASE_OFFSET_OFFSET: usize = 0;
/// Byte offset of `batchLength` (i32).
pub const BATCH_LENGTH_OFFSET: usize = 8;
/// Byte offset of `partitionLeaderEpoch` (i32).
pub const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
/// Byte offset of the `magic` byte; the same in message sets v0/v1, which
/// lets a short legacy message be told apart from a truncated v2 batch.
pub const MAGIC_OFFSET: usize = 16;
/// Byte offset of `crc` (u32).
pub const CRC_OFFSET: usize = 17;
/// Byte offset of `attributes` (i16).
pub const ATTRIBUTES_OFFSET: usize = 21;
/// The first byte covered by the CRC: `attributes`.
pub const CRC_START: usize = ATTRIBUTES_OFFSET;
/// Byte offset of `lastOffsetDelta` (i32).
pub const LAST_OFFSET_DELTA_OFFSET: usize = 23;
/// Byte offset of `baseTimestamp` (i64).
pub const BASE_TIMESTAMP_OFFSET: usize = 27;
/// Byte offset of `maxTimestamp` (i64).
pub const MAX_TIMESTAMP_OFFSET: usize = 35;
/// Byte offset of `producerId` (i64).
pub const PRODUCER_ID_OFFSET: usize = 43;
/// Byte offset of `producerEpoch` (i16).
pub const PRODUCER_EPOCH_OFFSET: usize = 51;
/// Byte offset of `baseSequence` (i32).
pub const BASE_SEQUENCE_OFFSET: usize = 53;
/// Byte offset of `recordsCount` (i32).
pub const RECORDS_COUNT_OFFSET: usize = 57;

/// Attributes bits 0-2: the compression codec (0 = none).
pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
/// Attributes bit 3: timestamps are LogAppendTime.
pub const ATTR_TIMESTAMP_LOG_APPEND: i16 = 0x08;
/// Attributes bit 4: the batch is part of a transaction.
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Attributes bit 5: a control batch (transaction marker).
pub const ATTR_CONTROL: i16 = 0x20;
/// Attributes bit 6: `baseTimestamp` holds the delete horizon (set by the
/// compactor, KIP-534).
pub const ATTR_DELETE_HORIZON: i16 = 0x40;

#[cfg(test)]
mod tests;
