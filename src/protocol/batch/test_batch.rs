//! A RecordBatch v2 builder for tests, benches and fuzz seeds.
//!
//! Not used by the broker (which never builds batches). It writes real v2
//! records (zigzag varints, no headers, no compression) so that any Kafka
//! decoder, including `kafka_protocol::records::RecordBatchDecoder`, reads
//! them back.

use super::{BATCH_HEADER_LEN, BATCH_MAGIC_V2};

/// One record for [`build_test_batch`]: (key, value), `None` for null.
pub type TestRecord<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// Builds one uncompressed v2 batch holding `records` (key, value), all
/// stamped `timestamp` ms, with no producer id (-1), leader epoch -1 and a
/// correct CRC. An empty `records` gives a batch declaring 0 records with
/// `lastOffsetDelta` -1 (invalid on produce, useful to test that).
pub fn build_test_batch(base_offset: i64, records: &[TestRecord<'_>], timestamp: i64) -> Vec<u8> {
    build_test_batch_spaced(base_offset, records, timestamp, 0)
}

/// As [`build_test_batch`], but record `i` is stamped
/// `timestamp + i * spacing_ms` (and the batch's max timestamp is the last).
pub fn build_test_batch_spaced(
    base_offset: i64,
    records: &[TestRecord<'_>],
    timestamp: i64,
    spacing_ms: i64,
) -> Vec<u8> {
    let max_timestamp = timestamp + spacing_ms * (records.len() as i64 - 1).max(0);
    let mut batch = Vec::with_capacity(BATCH_HEADER_LEN + records.len() * 16);
    batch.extend_from_slice(&base_offset.to_be_bytes());
    batch.extend_from_slice(&0i32.to_be_bytes()); // batchLength, patched below
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch
    batch.push(BATCH_MAGIC_V2 as u8);
    batch.extend_from_slice(&0u32.to_be_bytes()); // crc, patched below
    batch.extend_from_slice(&0i16.to_be_bytes()); // attributes
    let count = i32::try_from(records.len()).expect("test batch record count fits i32");
    batch.extend_from_slice(&(count - 1).to_be_bytes()); // lastOffsetDelta
    batch.extend_from_slice(&timestamp.to_be_bytes()); // baseTimestamp
    batch.extend_from_slice(&max_timestamp.to_be_bytes()); // maxTimestamp
    batch.extend_from_slice(&(-1i64).to_be_bytes()); // producerId
    batch.extend_from_slice(&(-1i16).to_be_bytes()); // producerEpoch
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // baseSequence
    batch.extend_from_slice(&count.to_be_bytes());
    debug_assert_eq!(batch.len(), BATCH_HEADER_LEN);

    let mut record = Vec::new();
    for (offset_delta, (key, value)) in records.iter().enumerate() {
        record.clear();
        record.push(0); // record attributes
        put_varlong(&mut record, offset_delta as i64 * spacing_ms); // timestampDelta
        put_varlong(&mut record, offset_delta as i64);
        put_bytes(&mut record, *key);
        put_bytes(&mut record, *value);
        put_varlong(&mut record, 0); // header count
        put_varlong(&mut batch, record.len() as i64);
        batch.extend_from_slice(&record);
    }

    let batch_length = i32::try_from(batch.len() - 12).expect("test batch fits i32");
    batch[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varlong(out, -1),
        Some(bytes) => {
            put_varlong(out, bytes.len() as i64);
            out.extend_from_slice(bytes);
        }
    }
}

/// Zigzag varint, as Kafka's `varint`/`varlong` (identical for values that fit i32).
fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

/// As [`build_test_batch`], but written by producer `producer_id` at
/// `epoch` from sequence `base_sequence`, with the transactional bit set
/// when `transactional` (the CRC recomputed).
pub fn build_test_producer_batch(
    records: &[TestRecord<'_>],
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    transactional: bool,
) -> Vec<u8> {
    let plain = build_test_batch(0, records, 1_000);
    let header = super::BatchHeader::parse(&plain).expect("a built batch parses");
    let mut head = plain[..BATCH_HEADER_LEN].to_vec();
    let attributes = header.attributes() | if transactional { 0x10 } else { 0 };
    head[21..23].copy_from_slice(&attributes.to_be_bytes());
    head[43..51].copy_from_slice(&producer_id.to_be_bytes());
    head[51..53].copy_from_slice(&epoch.to_be_bytes());
    head[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    super::rebuild_batch_body(
        &head,
        &[&plain[BATCH_HEADER_LEN..]],
        header.records_count(),
        header.last_offset_delta(),
    )
}
