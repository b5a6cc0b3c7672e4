//! The record values of a fetched RecordBatch v2, without building
//! `Record`s.
//!
//! The consumer side must not be what limits a throughput run, so an
//! uncompressed batch is walked in place (varint lengths, no allocation);
//! only compressed batches go through the crate's decoder, which
//! decompresses them. Control batches (transaction markers) hold no data
//! records and are skipped.

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

// The header layout's one home is `protocol::batch`.
use crate::protocol::batch::{
    ATTRIBUTES_OFFSET, ATTR_COMPRESSION_MASK, ATTR_CONTROL, BATCH_HEADER_LEN, RECORDS_COUNT_OFFSET,
};

/// Calls `f` with each data record value of `batch` whose offset is at
/// least `from_offset` (a fetch may return a batch that starts before the
/// offset asked for). A null value is passed as empty.
pub fn for_each_value(
    batch: &Bytes,
    from_offset: i64,
    mut f: impl FnMut(&[u8]),
) -> Result<(), String> {
    if batch.len() < BATCH_HEADER_LEN {
        return Err(format!(
            "batch of {} bytes is shorter than its header",
            batch.len()
        ));
    }
    let attributes = i16::from_be_bytes([batch[ATTRIBUTES_OFFSET], batch[ATTRIBUTES_OFFSET + 1]]);
    if attributes & ATTR_CONTROL != 0 {
        return Ok(());
    }
    let base_offset = i64::from_be_bytes(batch[..8].try_into().expect("8 bytes"));
    if attributes & ATTR_COMPRESSION_MASK != 0 {
        let set = RecordBatchDecoder::decode(&mut batch.clone())
            .map_err(|e| format!("decoding a compressed batch: {e}"))?;
        for r in set.records.iter().filter(|r| r.offset >= from_offset) {
            f(r.value.as_deref().unwrap_or(&[]));
        }
        return Ok(());
    }
    let count = i32::from_be_bytes(
        batch[RECORDS_COUNT_OFFSET..BATCH_HEADER_LEN]
            .try_into()
            .expect("4 bytes"),
    );
    let mut pos = BATCH_HEADER_LEN;
    for _ in 0..count.max(0) {
        let length = varint(batch, &mut pos)?;
        let end = pos
            .checked_add(usize::try_from(length).map_err(|_| "negative record length")?)
            .filter(|&e| e <= batch.len())
            .ok_or("record runs past its batch")?;
        let mut p = pos + 1; // attributes
        varint(batch, &mut p)?; // timestamp delta
        let offset_delta = varint(batch, &mut p)?;
        let key_length = varint(batch, &mut p)?;
        p += key_length.max(0) as usize;
        let value_length = varint(batch, &mut p)?;
        let value = match usize::try_from(value_length) {
            Ok(n) if p + n <= end => &batch[p..p + n],
            Ok(_) => return Err("record value runs past its record".into()),
            Err(_) => &[][..],
        };
        if base_offset + offset_delta >= from_offset {
            f(value);
        }
        pos = end;
    }
    Ok(())
}

/// A zigzag varint (records use them for lengths and deltas).
fn varint(buf: &[u8], pos: &mut usize) -> Result<i64, String> {
    let mut raw: u64 = 0;
    for shift in (0..70).step_by(7) {
        let byte = *buf.get(*pos).ok_or("varint runs past the batch")?;
        *pos += 1;
        raw |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    Err("varint longer than 10 bytes".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use indexmap::IndexMap;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn batch(values: &[&[u8]], compression: Compression) -> Bytes {
        let records: Vec<Record> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: 100 + i as i64,
                sequence: i as i32 - 1 + 100,
                timestamp: 1_700_000_000_000 + i as i64,
                key: (i % 2 == 0).then(|| Bytes::from_static(b"key")),
                value: Some(Bytes::copy_from_slice(v)),
                headers: IndexMap::new(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, records.iter(), &options).unwrap();
        buf.freeze()
    }

    fn values_of(b: &Bytes, from: i64) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for_each_value(b, from, |v| out.push(v.to_vec())).unwrap();
        out
    }

    #[test]
    fn bench_values_of_uncompressed_and_compressed_batches() {
        let long = vec![b'z'; 300]; // a 2-byte varint length
        let values: [&[u8]; 3] = [b"a", &long, b""];
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let b = batch(&values, c);
            assert_eq!(
                values_of(&b, 0),
                vec![b"a".to_vec(), long.clone(), vec![]],
                "{c:?}"
            );
            assert_eq!(
                values_of(&b, 101).len(),
                2,
                "{c:?}: records before 101 skipped"
            );
        }
    }

    #[test]
    fn bench_values_reject_a_truncated_batch() {
        let b = batch(&[b"hello", b"world"], Compression::None);
        let cut = b.slice(..b.len() - 3);
        assert!(for_each_value(&cut, 0, |_| {}).is_err());
        assert!(for_each_value(&b.slice(..20), 0, |_| {}).is_err());
    }

    #[test]
    fn bench_varint_zigzag() {
        let mut p = 0;
        assert_eq!(varint(&[0x01], &mut p), Ok(-1));
        p = 0;
        assert_eq!(varint(&[0xd8, 0x04], &mut p), Ok(300));
        assert_eq!(p, 2);
    }
}
