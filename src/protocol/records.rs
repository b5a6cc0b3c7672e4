//! Walking the records inside an uncompressed RecordBatch v2.
//!
//! The broker never needs record data on the produce or fetch path. It is
//! read only where Kafka's semantics are per record and the call is rare:
//! ListOffsets by timestamp, which answers the first *record* at or after
//! the target time, not the first batch. Compressed batches would need
//! decompression; callers fall back to batch granularity for them.
//!
//! [`records`] lists the records of an uncompressed batch with their raw
//! bytes, for the two other per-record rules: compaction (latest value per
//! key; a kept record's bytes are copied verbatim, since its offset and
//! timestamp deltas stay relative to the unchanged batch header) and the
//! "compacted topics need keys" produce check.

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

/// One record of an uncompressed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The record's bytes, its varint length prefix included.
    pub raw: &'a [u8],
    /// Absolute offset (base offset + delta).
    pub offset: i64,
    /// Absolute timestamp (base timestamp + delta; for LogAppendTime
    /// batches the batch's max timestamp).
    pub timestamp: i64,
    /// The key, `None` when null.
    pub key: Option<&'a [u8]>,
    /// The value, `None` when null (a tombstone).
    pub value: Option<&'a [u8]>,
}

/// Reads a varint-length-prefixed byte field (length -1 = null).
fn read_bytes<'a>(buf: &'a [u8], pos: &mut usize) -> Option<Option<&'a [u8]>> {
    let len = read_varlong(buf, pos)?;
    if len < 0 {
        return Some(None);
    }
    let end = pos.checked_add(usize::try_from(len).ok()?)?;
    let bytes = buf.get(*pos..end)?;
    *pos = end;
    Some(Some(bytes))
}

/// The records of one whole uncompressed v2 batch; `None` when it is
/// compressed or malformed (records that do not exactly fill the batch,
/// a count that does not match).
pub fn records(batch: &[u8]) -> Option<Vec<RecordView<'_>>> {
    let header = BatchHeader::parse(batch).ok()?;
    if header.compression() != 0 {
        return None;
    }
    let batch = batch.get(..header.total_len())?;
    records_in(header, &batch[BATCH_HEADER_LEN..])
}

/// The records of `body`, the (decompressed) records section of the batch
/// whose header is `header`; `None` when malformed (records that do not
/// exactly fill the body, a count that does not match).
pub fn records_in<'a>(header: &BatchHeader, body: &'a [u8]) -> Option<Vec<RecordView<'a>>> {
    let count = usize::try_from(header.records_count()).ok()?;
    let mut out = Vec::with_capacity(count.min(body.len()));
    let mut pos = 0;
    for _ in 0..count {
        let start = pos;
        let len = usize::try_from(read_varlong(body, &mut pos)?).ok()?;
        let end = pos.checked_add(len)?;
        let record = body.get(..end)?;
        let mut at = pos + 1; // attributes
        let timestamp_delta = read_varlong(record, &mut at)?;
        let offset_delta = read_varlong(record, &mut at)?;
        let key = read_bytes(record, &mut at)?;
        let value = read_bytes(record, &mut at)?;
        let timestamp = match header.timestamp_type_is_log_append() {
            true => header.max_timestamp(),
            false => header.base_timestamp().checked_add(timestamp_delta)?,
        };
        out.push(RecordView {
            raw: &body[start..end],
            offset: header.base_offset().checked_add(offset_delta)?,
            timestamp,
            key,
            value,
        });
        pos = end;
    }
    (pos == body.len()).then_some(out)
}

/// Appends Kafka's zig-zag varint encoding of `value` to `out`.
pub fn write_varlong(value: i64, out: &mut Vec<u8>) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Re-encodes one record (`raw`, length prefix included) with its
/// timestamp delta shifted by `shift` (old base timestamp minus new), so
/// its absolute timestamp is unchanged under a new base timestamp. The
/// record's other fields are copied as they are. `None` when malformed.
pub fn rebase_record(raw: &[u8], shift: i64) -> Option<Vec<u8>> {
    let mut pos = 0;
    let len = usize::try_from(read_varlong(raw, &mut pos)?).ok()?;
    let body = raw.get(pos..pos.checked_add(len)?)?;
    let attributes = *body.first()?;
    let mut at = 1;
    let timestamp_delta = read_varlong(body, &mut at)?;
    let mut inner = vec![attributes];
    write_varlong(timestamp_delta.checked_add(shift)?, &mut inner);
    inner.extend_from_slice(&body[at..]);
    let mut out = Vec::with_capacity(inner.len() + 5);
    write_varlong(inner.len() as i64, &mut out);
    out.extend_from_slice(&inner);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::{build_test_batch, TestRecord};

    /// A real client-shaped batch (kafka-protocol's encoder) whose records
    /// are stamped 1000, 1005 and 1010 ms.
    /// Records stamped 1000, 1005 and 1010 ms.
    fn batch_with_timestamps(base_offset: i64) -> Vec<u8> {
        let records: Vec<TestRecord<'_>> =
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
    fn records_lists_keys_values_and_raw_bytes() {
        let batch = batch_with_timestamps(100);
        let recs = records(&batch).expect("uncompressed");
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[1].key, Some(&b"k"[..]));
        assert_eq!((recs[1].offset, recs[1].timestamp), (101, 1_005));
        assert!(recs[2].value.is_none() && recs[0].value == Some(&b"a"[..]));
        let raw: usize = recs.iter().map(|r| r.raw.len()).sum();
        assert_eq!(raw + BATCH_HEADER_LEN, batch.len());
        for cut in 0..batch.len() {
            assert!(records(&batch[..cut]).is_none());
        }
    }

    #[test]
    fn records_rebase_keeps_absolute_timestamps() {
        let batch = batch_with_timestamps(100);
        let header = BatchHeader::parse(&batch).unwrap();
        let recs = records(&batch).unwrap();
        // New base 1_000_000 ms later: deltas become large negatives.
        let body: Vec<u8> = recs
            .iter()
            .flat_map(|r| rebase_record(r.raw, -1_000_000).unwrap())
            .collect();
        let mut rebased = batch[..BATCH_HEADER_LEN].to_vec();
        rebased[27..35].copy_from_slice(&(header.base_timestamp() + 1_000_000).to_be_bytes());
        let new_header = BatchHeader::parse(&rebased).unwrap();
        let again = records_in(new_header, &body).unwrap();
        let stamps: Vec<i64> = again.iter().map(|r| r.timestamp).collect();
        assert_eq!(stamps, vec![1_000, 1_005, 1_010]);
        assert_eq!(again[1].key, Some(&b"k"[..]));
        assert!(rebase_record(&recs[0].raw[..2], 5).is_none());
    }

    #[test]
    fn records_malformed_input_is_none_not_panic() {
        let records: Vec<TestRecord<'_>> = vec![(None, Some(b"abc"))];
        let batch = build_test_batch(0, &records, 5);
        assert_eq!(first_record_at_or_after(&batch, 5), Some((0, 5)));
        for cut in 0..batch.len() {
            assert_eq!(
                first_record_at_or_after(&batch[..cut], 5),
                None,
                "batch cut at {cut} of {} bytes",
                batch.len()
            );
        }
        let mut bad = batch.clone();
        bad[BATCH_HEADER_LEN] = 0xff; // a record length that does not decode to a length
        assert_eq!(first_record_at_or_after(&bad, 5), None);
    }
}
