//! [`BatchHeader`]: the fixed 61-byte header read in place, its field
//! accessors, and the compile-time check that its layout matches the
//! offset constants in the parent module.

use zerocopy::byteorder::{BigEndian as BE, I16, I32, I64, U32};
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

use super::*;

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
