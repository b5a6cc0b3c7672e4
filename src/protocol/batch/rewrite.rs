//! The header fields the broker writes (base offset, leader epoch,
//! LogAppendTime) and rebuilding a batch around fewer records (the
//! compactor). Callers pass only batches already validated.

use super::framing::checked_total_len;
use super::*;

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
