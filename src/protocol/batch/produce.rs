//! Produce-path validation of a partition's `records` blob
//! ([`validate_produce`]) and what it learns ([`ProduceSummary`]).

use super::*;

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
