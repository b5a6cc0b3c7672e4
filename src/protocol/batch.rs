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

use zerocopy::byteorder::{BigEndian as BE, I16, I32, I64, U32};
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

#[doc(hidden)]
#[path = "test_batch.rs"]
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
// fields at compile time below.

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

/// The fixed 61-byte header of a RecordBatch v2, read in place.
///
/// Obtain one with [`BatchHeader::parse`]; the fields are big-endian on the
/// wire and the accessors return native values.
#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct BatchHeader {
    base_offset: I64<BE>,
    batch_length: I32<BE>,
    partition_leader_epoch: I32<BE>,
    magic: i8,
    crc: U32<BE>,
    attributes: I16<BE>,
    last_offset_delta: I32<BE>,
    base_timestamp: I64<BE>,
    max_timestamp: I64<BE>,
    producer_id: I64<BE>,
    producer_epoch: I16<BE>,
    base_sequence: I32<BE>,
    records_count: I32<BE>,
}

const _: () = assert!(std::mem::size_of::<BatchHeader>() == BATCH_HEADER_LEN);
const _: () = assert!(std::mem::align_of::<BatchHeader>() == 1);
const _: () = assert!(CRC_START == CRC_OFFSET + 4);
const _: () = {
    use std::mem::offset_of;
    assert!(offset_of!(BatchHeader, base_offset) == BASE_OFFSET_OFFSET);
    assert!(offset_of!(BatchHeader, batch_length) == BATCH_LENGTH_OFFSET);
    assert!(offset_of!(BatchHeader, partition_leader_epoch) == PARTITION_LEADER_EPOCH_OFFSET);
    assert!(offset_of!(BatchHeader, magic) == MAGIC_OFFSET);
    assert!(offset_of!(BatchHeader, crc) == CRC_OFFSET);
    assert!(offset_of!(BatchHeader, attributes) == ATTRIBUTES_OFFSET);
    assert!(offset_of!(BatchHeader, last_offset_delta) == LAST_OFFSET_DELTA_OFFSET);
    assert!(offset_of!(BatchHeader, base_timestamp) == BASE_TIMESTAMP_OFFSET);
    assert!(offset_of!(BatchHeader, max_timestamp) == MAX_TIMESTAMP_OFFSET);
    assert!(offset_of!(BatchHeader, producer_id) == PRODUCER_ID_OFFSET);
    assert!(offset_of!(BatchHeader, producer_epoch) == PRODUCER_EPOCH_OFFSET);
    assert!(offset_of!(BatchHeader, base_sequence) == BASE_SEQUENCE_OFFSET);
    assert!(offset_of!(BatchHeader, records_count) == RECORDS_COUNT_OFFSET);
};
const _: () = assert!(BATCH_LENGTH_OVERHEAD + 49 == BATCH_HEADER_LEN);

impl std::fmt::Debug for BatchHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchHeader")
            .field("base_offset", &self.base_offset())
            .field("batch_length", &self.batch_length())
            .field("partition_leader_epoch", &self.partition_leader_epoch())
            .field("magic", &self.magic())
            .field("crc", &format_args!("{:#010x}", self.crc()))
            .field("attributes", &format_args!("{:#06x}", self.attributes()))
            .field("last_offset_delta", &self.last_offset_delta())
            .field("base_timestamp", &self.base_timestamp())
            .field("max_timestamp", &self.max_timestamp())
            .field("producer_id", &self.producer_id())
            .field("producer_epoch", &self.producer_epoch())
            .field("base_sequence", &self.base_sequence())
            .field("records_count", &self.records_count())
            .finish()
    }
}

impl BatchHeader {
    /// Views the first [`BATCH_HEADER_LEN`] bytes of `buf` as a header.
    ///
    /// Checks only that the bytes are there: magic, length and CRC are the
    /// caller's to check (see [`batches`] and [`validate_produce`]).
    pub fn parse(buf: &[u8]) -> Result<&BatchHeader, BatchError> {
        match BatchHeader::ref_from_prefix(buf) {
            Ok((header, _rest)) => Ok(header),
            Err(_) => Err(BatchError::Truncated {
                position: 0,
                needed: BATCH_HEADER_LEN,
                available: buf.len(),
            }),
        }
    }

    /// Offset of the first record in the batch.
    pub fn base_offset(&self) -> i64 {
        self.base_offset.get()
    }
    /// Bytes after the `batchLength` field; see [`BatchHeader::total_len`].
    pub fn batch_length(&self) -> i32 {
        self.batch_length.get()
    }
    /// Bytes the whole batch occupies: `batchLength + 12`. A negative
    /// `batchLength` (garbage) gives a value below [`BATCH_HEADER_LEN`], which
    /// every validator rejects.
    pub fn total_len(&self) -> usize {
        let total = i64::from(self.batch_length()) + BATCH_LENGTH_OVERHEAD as i64;
        usize::try_from(total).unwrap_or(0)
    }
    /// Epoch of the leader that appended the batch (-1 from producers).
    pub fn partition_leader_epoch(&self) -> i32 {
        self.partition_leader_epoch.get()
    }
    /// Record format version; 2 for every batch the broker stores.
    pub fn magic(&self) -> i8 {
        self.magic
    }
    /// Stored CRC32C of bytes `[21..total_len)`.
    pub fn crc(&self) -> u32 {
        self.crc.get()
    }
    /// Raw attribute bits (compression, timestamp type, transactional, control).
    pub fn attributes(&self) -> i16 {
        self.attributes.get()
    }
    /// Offset of the last record relative to `base_offset`.
    pub fn last_offset_delta(&self) -> i32 {
        self.last_offset_delta.get()
    }
    /// Timestamp of the first record, in ms.
    pub fn base_timestamp(&self) -> i64 {
        self.base_timestamp.get()
    }
    /// Largest record timestamp in the batch (or the LogAppendTime), in ms.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp.get()
    }
    /// Idempotent/transactional producer id, -1 if none.
    pub fn producer_id(&self) -> i64 {
        self.producer_id.get()
    }
    /// Producer epoch, -1 if none.
    pub fn producer_epoch(&self) -> i16 {
        self.producer_epoch.get()
    }
    /// Sequence number of the first record, -1 if none.
    pub fn base_sequence(&self) -> i32 {
        self.base_sequence.get()
    }
    /// Number of records in the batch, as declared.
    pub fn records_count(&self) -> i32 {
        self.records_count.get()
    }
    /// `base_offset + last_offset_delta`.
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            .wrapping_add(i64::from(self.last_offset_delta()))
    }
    /// Compression codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u8 {
        (self.attributes() & ATTR_COMPRESSION_MASK) as u8
    }
    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes() & ATTR_TRANSACTIONAL != 0
    }
    /// Whether the batch holds control records (commit/abort markers).
    pub fn is_control(&self) -> bool {
        self.attributes() & ATTR_CONTROL != 0
    }
    /// Whether timestamps are LogAppendTime (attributes bit 3).
    pub fn timestamp_type_is_log_append(&self) -> bool {
        self.attributes() & ATTR_TIMESTAMP_LOG_APPEND != 0
    }
}

/// Why a batch, or a run of batches, was refused.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than the header or the declared length needs.
    #[error(
        "record batch at byte {position} truncated: needs {needed} bytes, {available} available"
    )]
    Truncated {
        /// Byte position of the batch in the buffer examined.
        position: usize,
        /// Bytes the batch needs (header, or its declared total length).
        needed: usize,
        /// Bytes left in the buffer from `position`.
        available: usize,
    },
    /// `batchLength` is too small to hold a v2 header.
    #[error("record batch at byte {position} has invalid batchLength {batch_length}")]
    InvalidLength {
        /// Byte position of the batch in the buffer examined.
        position: usize,
        /// The declared `batchLength`.
        batch_length: i32,
    },
    /// Not a v2 batch (v0/v1 message sets, or garbage).
    #[error("unsupported record batch magic {magic}")]
    UnsupportedMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// The stored CRC32C does not match the bytes.
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC in the header.
        stored: u32,
        /// CRC32C of bytes `[21..total_len)`.
        computed: u32,
    },
    /// A batch declaring no records.
    #[error("record batch declares no records")]
    EmptyBatch,
    /// `recordsCount` disagrees with `lastOffsetDelta + 1`.
    #[error(
        "record batch declares {records_count} records but lastOffsetDelta {last_offset_delta}"
    )]
    InconsistentRecordCount {
        /// The declared `recordsCount`.
        records_count: i32,
        /// The declared `lastOffsetDelta`.
        last_offset_delta: i32,
    },
    /// A `records` blob with no batch at all.
    #[error("records blob is empty")]
    Empty,
}

impl BatchError {
    /// The Kafka error code to answer the client with.
    ///
    /// CORRUPT_MESSAGE (2) for bad length, truncation, CRC or unknown magic;
    /// UNSUPPORTED_FOR_MESSAGE_FORMAT (43) for message sets v0/v1;
    /// INVALID_RECORD (87) for empty or inconsistent batches.
    pub fn error_code(&self) -> i16 {
        const CORRUPT_MESSAGE: i16 = 2;
        const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
        const INVALID_RECORD: i16 = 87;
        match self {
            BatchError::Truncated { .. }
            | BatchError::InvalidLength { .. }
            | BatchError::CrcMismatch { .. } => CORRUPT_MESSAGE,
            BatchError::UnsupportedMagic { magic: 0 | 1 } => UNSUPPORTED_FOR_MESSAGE_FORMAT,
            BatchError::UnsupportedMagic { .. } => CORRUPT_MESSAGE,
            BatchError::EmptyBatch
            | BatchError::InconsistentRecordCount { .. }
            | BatchError::Empty => INVALID_RECORD,
        }
    }
}

/// Checks the CRC32C of one whole batch at the start of `batch`.
///
/// `batch` must hold at least the batch's `total_len` bytes; bytes beyond it
/// are ignored.
pub fn check_crc(batch: &[u8]) -> Result<(), BatchError> {
    let header = BatchHeader::parse(batch)?;
    let total_len = checked_total_len(header, 0, batch.len())?;
    let computed = crc32c::crc32c(&batch[CRC_START..total_len]);
    if computed != header.crc() {
        return Err(BatchError::CrcMismatch {
            stored: header.crc(),
            computed,
        });
    }
    Ok(())
}

/// `header.total_len()`, checked against the header size and the bytes
/// `available` from `position`.
fn checked_total_len(
    header: &BatchHeader,
    position: usize,
    available: usize,
) -> Result<usize, BatchError> {
    let total_len = header.total_len();
    if total_len < BATCH_HEADER_LEN {
        return Err(BatchError::InvalidLength {
            position,
            batch_length: header.batch_length(),
        });
    }
    if total_len > available {
        return Err(BatchError::Truncated {
            position,
            needed: total_len,
            available,
        });
    }
    Ok(total_len)
}

/// Writes `baseOffset`. The CRC stays valid: the field is outside it.
///
/// # Panics
/// If `batch` is shorter than [`BATCH_HEADER_LEN`] (call only on validated batches).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    assert!(
        batch.len() >= BATCH_HEADER_LEN,
        "set_base_offset on a short batch"
    );
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Writes `partitionLeaderEpoch`. The CRC stays valid: the field is outside it.
///
/// # Panics
/// If `batch` is shorter than [`BATCH_HEADER_LEN`] (call only on validated batches).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    assert!(
        batch.len() >= BATCH_HEADER_LEN,
        "set_partition_leader_epoch on a short batch"
    );
    let at = PARTITION_LEADER_EPOCH_OFFSET;
    batch[at..at + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks the batch LogAppendTime (attributes bit 3), sets `maxTimestamp` to
/// `ts`, and recomputes the CRC.
///
/// This is the one case where the broker changes bytes covered by the CRC
/// (Kafka does the same for topics with `message.timestamp.type=LogAppendTime`):
/// consumers read the batch's `maxTimestamp` as every record's timestamp.
///
/// # Panics
/// If `batch` does not hold one whole batch (call only on validated batches).
pub fn set_max_timestamp_log_append(batch: &mut [u8], ts: i64) {
    let total_len =
        match BatchHeader::parse(batch).and_then(|h| checked_total_len(h, 0, batch.len())) {
            Ok(total_len) => total_len,
            Err(error) => panic!("set_max_timestamp_log_append on an invalid batch: {error}"),
        };
    let at = ATTRIBUTES_OFFSET;
    let attributes = i16::from_be_bytes([batch[at], batch[at + 1]]) | ATTR_TIMESTAMP_LOG_APPEND;
    batch[at..at + 2].copy_from_slice(&attributes.to_be_bytes());
    let at = MAX_TIMESTAMP_OFFSET;
    batch[at..at + 8].copy_from_slice(&ts.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..total_len]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// A copy of the batch `header` (its first [`BATCH_HEADER_LEN`] bytes)
/// holding only `records` (raw records of that batch, in order), with
/// recordsCount, batchLength and the CRC recomputed. Base offset, last
/// offset delta, timestamps and producer fields stay: the compactor keeps
/// the batch's offset range (so the log stays dense batch to batch) and
/// the producer's sequence numbers, as Kafka's cleaner does. With no
/// records it is an empty batch, which Kafka clients skip.
///
/// # Panics
/// If `header` is shorter than [`BATCH_HEADER_LEN`].
pub fn rebuild_batch(header: &[u8], records: &[&[u8]], last_offset_delta: i32) -> Vec<u8> {
    rebuild_batch_body(header, records, records.len() as i32, last_offset_delta)
}

/// [`rebuild_batch`] with the records section given as `body` pieces
/// (e.g. one compressed blob) holding `count` records.
pub fn rebuild_batch_body(
    header: &[u8],
    body: &[&[u8]],
    count: i32,
    last_offset_delta: i32,
) -> Vec<u8> {
    let len: usize = body.iter().map(|r| r.len()).sum();
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + len);
    out.extend_from_slice(&header[..BATCH_HEADER_LEN]);
    for r in body {
        out.extend_from_slice(r);
    }
    let batch_length = (out.len() - BATCH_LENGTH_OVERHEAD) as i32;
    out[BATCH_LENGTH_OFFSET..BATCH_LENGTH_OFFSET + 4].copy_from_slice(&batch_length.to_be_bytes());
    let at = LAST_OFFSET_DELTA_OFFSET;
    out[at..at + 4].copy_from_slice(&last_offset_delta.to_be_bytes());
    out[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

/// One batch found by [`batches`].
#[derive(Debug, Clone, Copy)]
pub struct BatchRef<'a> {
    /// Byte position of the batch in the buffer iterated.
    pub position: usize,
    /// Its header.
    pub header: &'a BatchHeader,
    /// The whole batch, header included (`header.total_len()` bytes).
    pub bytes: &'a [u8],
}

/// Iterator over v2 batches laid back to back; see [`batches`].
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    buf: &'a [u8],
    position: usize,
    failed: bool,
}

/// Iterates over the v2 batches laid back to back in `buf`.
///
/// Each item is checked for framing only: enough bytes for the header,
/// magic 2, and a declared length between [`BATCH_HEADER_LEN`] and the bytes
/// left. CRCs are not checked (use [`check_crc`], or [`validate_produce`]).
/// After the first `Err` the iterator yields `None`, so recovery can stop at
/// the first torn batch (its `position` says where to truncate).
pub fn batches(buf: &[u8]) -> Batches<'_> {
    Batches {
        buf,
        position: 0,
        failed: false,
    }
}

impl<'a> Batches<'a> {
    /// Byte position of the next batch: after the last one yielded `Ok`.
    pub fn position(&self) -> usize {
        self.position
    }

    fn next_batch(&self) -> Result<BatchRef<'a>, BatchError> {
        let position = self.position;
        let rest = &self.buf[position..];
        if rest.len() < BATCH_HEADER_LEN {
            // A legacy message can be shorter than a v2 header: name it.
            if let Some(&magic) = rest.get(MAGIC_OFFSET) {
                if magic as i8 != BATCH_MAGIC_V2 {
                    return Err(BatchError::UnsupportedMagic { magic: magic as i8 });
                }
            }
            return Err(BatchError::Truncated {
                position,
                needed: BATCH_HEADER_LEN,
                available: rest.len(),
            });
        }
        let header = BatchHeader::parse(rest)?;
        if header.magic() != BATCH_MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic {
                magic: header.magic(),
            });
        }
        let total_len = checked_total_len(header, position, rest.len())?;
        Ok(BatchRef {
            position,
            header,
            bytes: &rest[..total_len],
        })
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = Result<BatchRef<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.buf.len() {
            return None;
        }
        let item = self.next_batch();
        match &item {
            Ok(batch) => self.position += batch.bytes.len(),
            Err(_) => self.failed = true,
        }
        Some(item)
    }
}

impl std::iter::FusedIterator for Batches<'_> {}

/// What [`validate_produce`] learned about a partition's `records` blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceSummary {
    /// Number of batches.
    pub batch_count: usize,
    /// Sum over batches of `lastOffsetDelta + 1`: the offsets to assign.
    pub record_count: i64,
    /// Total bytes (the whole blob).
    pub bytes: usize,
    /// Largest `maxTimestamp` over the batches.
    pub max_timestamp: i64,
    /// `producerId` of the first batch (-1: not idempotent).
    pub first_batch_producer_id: i64,
    /// `producerEpoch` of the first batch.
    pub first_batch_producer_epoch: i16,
    /// `baseSequence` of the first batch.
    pub first_batch_base_sequence: i32,
    /// Whether the first batch is transactional.
    pub first_batch_is_transactional: bool,
    /// Whether any batch is a control batch (clients may not send these).
    pub has_control_batch: bool,
    /// Whether any batch is compressed (attributes codec != 0).
    pub has_compressed_batch: bool,
}

/// Produce-path validation of a partition's `records` blob: one or more whole
/// v2 batches, nothing trailing; each: total length sane (>= 61, <= remaining),
/// magic == 2, CRC ok, `last_offset_delta >= 0` and
/// `records_count == last_offset_delta + 1`.
///
/// Reads only the headers and runs one CRC32C pass over the bytes; records
/// are never decoded.
pub fn validate_produce(records: &[u8]) -> Result<ProduceSummary, BatchError> {
    if records.is_empty() {
        return Err(BatchError::Empty);
    }
    let mut summary = ProduceSummary {
        batch_count: 0,
        record_count: 0,
        bytes: records.len(),
        max_timestamp: i64::MIN,
        first_batch_producer_id: -1,
        first_batch_producer_epoch: -1,
        first_batch_base_sequence: -1,
        first_batch_is_transactional: false,
        has_control_batch: false,
        has_compressed_batch: false,
    };
    for batch in batches(records) {
        let batch = batch?;
        let header = batch.header;
        validate_produce_batch(&batch)?;
        if summary.batch_count == 0 {
            summary.first_batch_producer_id = header.producer_id();
            summary.first_batch_producer_epoch = header.producer_epoch();
            summary.first_batch_base_sequence = header.base_sequence();
            summary.first_batch_is_transactional = header.is_transactional();
        }
        summary.batch_count += 1;
        summary.record_count += i64::from(header.last_offset_delta()) + 1;
        summary.max_timestamp = summary.max_timestamp.max(header.max_timestamp());
        summary.has_control_batch |= header.is_control();
        summary.has_compressed_batch |= header.compression() != 0;
    }
    Ok(summary)
}

/// The per-batch checks of [`validate_produce`] beyond framing.
fn validate_produce_batch(batch: &BatchRef<'_>) -> Result<(), BatchError> {
    let header = batch.header;
    check_crc(batch.bytes)?;
    if header.records_count() == 0 {
        return Err(BatchError::EmptyBatch);
    }
    let last_offset_delta = header.last_offset_delta();
    if last_offset_delta < 0
        || i64::from(header.records_count()) != i64::from(last_offset_delta) + 1
    {
        return Err(BatchError::InconsistentRecordCount {
            records_count: header.records_count(),
            last_offset_delta,
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
