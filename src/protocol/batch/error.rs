//! [`BatchError`]: why a batch was refused, and the Kafka error code that
//! answers the client.

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
