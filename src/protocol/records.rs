//! Walking the records inside an uncompressed RecordBatch v2.
//!
//! The broker never needs record data on the produce or fetch path. It is
//! read only where Kafka's semantics are per record and the call is rare:
//! ListOffsets by timestamp, which answers the first *record* at or after
//! the target time, not the first batch. Compressed batches would need
//! decompression; callers fall back to batch granularity for them.

use super::batch::{BatchHeader, BATCH_HEADER_LEN};

/// Reads a zig-zag varint (Kafka's `varint`/`varlong`) at `*pos`.
fn read_varlong(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((value >> 1) as i64 ^ -((value & 1) as i64));
        }
    }
    None
}

/// Skips a varint-length-prefixed byte field (length -1 = null).
fn skip_bytes(buf: &[u8], pos: &mut usize) -> Option<()> {
    let len = read_varlong(buf, pos)?;
    if len > 0 {
        *pos = pos.checked_add(usize::try_from(len).ok()?)?;
    }
    (*pos <= buf.len()).then_some(())
}

/// The offset and timestamp of the first record in `batch` (one whole,
/// CRC-checked, uncompressed v2 batch) whose timestamp is at or after `ts`.
/// `None` when the batch is compressed, malformed, or has no such record.
pub fn first_record_at_or_after(batch: &[u8], ts: i64) -> Option<(i64, i64)> {
    let header = BatchHeader::parse(batch).ok()?;
    if header.compression() != 0 {
        return None;
    }
    if header.timestamp_type_is_log_append() {
        // Every record carries the batch's append time.
        return (header.max_timestamp() >= ts)
            .then(|| (header.base_offset(), header.max_timestamp()));
    }
    let mut pos = BATCH_HEADER_LEN;
    for _ in 0..header.records_count().max(0) {
        let len = usize::try_from(read_varlong(batch, &mut pos)?).ok()?;
        let end = pos.checked_add(len)?;
        let record = batch.get(..end)?;
        let mut at = pos + 1; // attributes (unused, one byte)
        let timestamp = header
            .base_timestamp()
            .checked_add(read_varlong(record, &mut at)?)?;
        let offset_delta = read_varlong(record, &mut at)?;
        if timestamp >= ts {
            return Some((header.base_offset().checked_add(offset_delta)?, timestamp));
        }
        skip_bytes(record, &mut at)?; // key: not needed, but proves the record is well formed
        pos = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::build_test_batch;

    /// A real client-shaped batch (kafka-protocol's encoder) whose records
    /// are stamped 1000, 1005 and 1010 ms.
    /// Records stamped 1000, 1005 and 1010 ms.
    fn batch_with_timestamps(base_offset: i64) -> Vec<u8> {
        let records: Vec<(Option<&[u8]>, Option<&[u8]>)> =
            vec![(None, Some(b"a")), (Some(b"k"), Some(b"b")), (None, None)];
        crate::protocol::batch::build_test_batch_spaced(base_offset, &records, 1_000, 5)
    }

    #[test]
    fn records_first_at_or_after_timestamp() {
        let batch = batch_with_timestamps(100);
        assert_eq!(first_record_at_or_after(&batch, 0), Some((100, 1_000)));
        assert_eq!(first_record_at_or_after(&batch, 1_001), Some((101, 1_005)));
        assert_eq!(first_record_at_or_after(&batch, 1_005), Some((101, 1_005)));
        assert_eq!(first_record_at_or_after(&batch, 1_006), Some((102, 1_010)));
        assert_eq!(first_record_at_or_after(&batch, 1_011), None);
    }

    #[test]
    fn records_malformed_input_is_none_not_panic() {
        let records: Vec<(Option<&[u8]>, Option<&[u8]>)> = vec![(None, Some(b"abc"))];
        let batch = build_test_batch(0, &records, 5);
        for cut in 0..batch.len() {
            let _ = first_record_at_or_after(&batch[..cut], 6);
        }
        let mut bad = batch.clone();
        bad[BATCH_HEADER_LEN] = 0xff; // an endless varint
        let _ = first_record_at_or_after(&bad, 6);
    }
}
