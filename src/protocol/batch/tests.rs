//! Unit tests of RecordBatch v2 framing: header parsing, CRC checks,
//! produce validation and the test-batch builder (checked against the
//! kafka-protocol crate's decoder).

use super::*;
use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use proptest::prelude::*;

const TS: i64 = 1_700_000_000_000;

fn three_records() -> Vec<u8> {
    build_test_batch(
        0,
        &[
            (Some(b"k1"), Some(b"v1")),
            (None, Some(b"value two")),
            (Some(b"k3"), None),
        ],
        TS,
    )
}

#[test]
fn test_batch_decodes_with_kafka_protocol() {
    let batch = three_records();
    let mut buf = Bytes::from(batch);
    let set = RecordBatchDecoder::decode(&mut buf).expect("kafka-protocol decodes the test batch");
    assert_eq!(set.version, 2);
    assert_eq!(set.records.len(), 3);
    assert_eq!(set.records[0].key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(set.records[1].key, None);
    assert_eq!(set.records[1].value.as_deref(), Some(&b"value two"[..]));
    assert_eq!(set.records[2].offset, 2);
    assert_eq!(set.records[2].value, None);
    assert_eq!(set.records[2].timestamp, TS);
    assert!(buf.is_empty());
}

#[test]
fn parse_reads_every_field() {
    let batch = three_records();
    let h = BatchHeader::parse(&batch).unwrap();
    assert_eq!(h.base_offset(), 0);
    assert_eq!(h.total_len(), batch.len());
    assert_eq!(h.batch_length() as usize, batch.len() - 12);
    assert_eq!(h.partition_leader_epoch(), -1);
    assert_eq!(h.magic(), 2);
    assert_eq!(h.crc(), crc32c::crc32c(&batch[21..]));
    assert_eq!(h.attributes(), 0);
    assert_eq!(h.last_offset_delta(), 2);
    assert_eq!(h.last_offset(), 2);
    assert_eq!(h.base_timestamp(), TS);
    assert_eq!(h.max_timestamp(), TS);
    assert_eq!(h.producer_id(), -1);
    assert_eq!(h.producer_epoch(), -1);
    assert_eq!(h.base_sequence(), -1);
    assert_eq!(h.records_count(), 3);
    assert_eq!(h.compression(), 0);
    assert!(!h.is_transactional() && !h.is_control() && !h.timestamp_type_is_log_append());
}

#[test]
fn parse_attribute_bits() {
    let mut batch = three_records();
    batch[21..23].copy_from_slice(&(0x0030i16 | 0x03).to_be_bytes());
    let h = BatchHeader::parse(&batch).unwrap();
    assert_eq!(h.compression(), 3);
    assert!(h.is_transactional());
    assert!(h.is_control());
    assert!(!h.timestamp_type_is_log_append());
}

#[test]
fn parse_short_buffer_is_truncated() {
    let batch = three_records();
    let err = BatchHeader::parse(&batch[..60]).unwrap_err();
    assert_eq!(
        err,
        BatchError::Truncated {
            position: 0,
            needed: 61,
            available: 60
        }
    );
    assert_eq!(err.error_code(), 2);
}

#[test]
fn crc_good_and_bad() {
    let mut batch = three_records();
    check_crc(&batch).unwrap();
    let last = batch.len() - 1;
    batch[last] ^= 0x01;
    match check_crc(&batch) {
        Err(e @ BatchError::CrcMismatch { .. }) => assert_eq!(e.error_code(), 2),
        other => panic!("expected CrcMismatch, got {other:?}"),
    }
    assert!(matches!(
        validate_produce(&batch),
        Err(BatchError::CrcMismatch { .. })
    ));
}

#[test]
fn truncated_batch_is_rejected() {
    let batch = three_records();
    for cut in [1, 20, 60, 61, batch.len() - 1] {
        let err = validate_produce(&batch[..cut]).unwrap_err();
        assert!(
            matches!(err, BatchError::Truncated { .. }),
            "cut {cut}: {err:?}"
        );
        assert_eq!(err.error_code(), 2);
    }
}

#[test]
fn invalid_length_is_rejected() {
    let mut batch = three_records();
    batch[8..12].copy_from_slice(&48i32.to_be_bytes()); // 60 < 61
    let err = validate_produce(&batch).unwrap_err();
    assert_eq!(
        err,
        BatchError::InvalidLength {
            position: 0,
            batch_length: 48
        }
    );
    batch[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    assert!(matches!(
        validate_produce(&batch),
        Err(BatchError::InvalidLength { .. })
    ));
    batch[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(matches!(
        validate_produce(&batch),
        Err(BatchError::Truncated { .. })
    ));
}

#[test]
fn magic_0_and_1_are_unsupported_for_message_format() {
    for magic in [0i8, 1] {
        let mut batch = three_records();
        batch[16] = magic as u8;
        let err = validate_produce(&batch).unwrap_err();
        assert_eq!(err, BatchError::UnsupportedMagic { magic });
        assert_eq!(err.error_code(), 43);
    }
    // A v0 message (26 bytes) is shorter than a v2 header: still named by its magic.
    let mut v0 = vec![0u8; 26];
    v0[8..12].copy_from_slice(&14i32.to_be_bytes());
    assert_eq!(validate_produce(&v0).unwrap_err().error_code(), 43);
    let mut batch = three_records();
    batch[16] = 7;
    assert_eq!(validate_produce(&batch).unwrap_err().error_code(), 2);
}

#[test]
fn empty_and_inconsistent_batches_are_invalid_record() {
    assert_eq!(validate_produce(&[]).unwrap_err(), BatchError::Empty);
    assert_eq!(BatchError::Empty.error_code(), 87);
    let empty = build_test_batch(0, &[], TS);
    let err = validate_produce(&empty).unwrap_err();
    assert_eq!(err, BatchError::EmptyBatch);
    assert_eq!(err.error_code(), 87);

    let mut batch = three_records();
    batch[57..61].copy_from_slice(&5i32.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    let err = validate_produce(&batch).unwrap_err();
    assert_eq!(
        err,
        BatchError::InconsistentRecordCount {
            records_count: 5,
            last_offset_delta: 2
        }
    );
    assert_eq!(err.error_code(), 87);
}

#[test]
fn iterator_walks_several_batches() {
    let a = build_test_batch(0, &[(None, Some(b"a"))], TS);
    let b = three_records();
    let c = build_test_batch(4, &[(Some(b"key"), Some(&[7u8; 300][..]))], TS + 5);
    let blob = [a.clone(), b.clone(), c.clone()].concat();
    let found: Vec<_> = batches(&blob).collect::<Result<_, _>>().unwrap();
    assert_eq!(found.len(), 3);
    assert_eq!(found[0].position, 0);
    assert_eq!(found[1].position, a.len());
    assert_eq!(found[2].position, a.len() + b.len());
    assert_eq!(found[2].bytes, &c[..]);
    assert_eq!(found[2].header.base_offset(), 4);

    let summary = validate_produce(&blob).unwrap();
    assert_eq!(summary.batch_count, 3);
    assert_eq!(summary.record_count, 5);
    assert_eq!(summary.max_timestamp, TS + 5);
    assert_eq!(summary.bytes, blob.len());
    assert_eq!(summary.first_batch_producer_id, -1);
}

#[test]
fn iterator_stops_after_first_error() {
    let a = three_records();
    let mut blob = [a.clone(), a.clone()].concat();
    blob.extend_from_slice(&[0u8; 10]); // trailing garbage
    let mut it = batches(&blob);
    assert!(it.next().unwrap().is_ok());
    assert!(it.next().unwrap().is_ok());
    let err = it.next().unwrap().unwrap_err();
    assert_eq!(
        err,
        BatchError::Truncated {
            position: 2 * a.len(),
            needed: 61,
            available: 10
        }
    );
    assert_eq!(it.position(), 2 * a.len());
    assert!(it.next().is_none());
    assert!(matches!(
        validate_produce(&blob),
        Err(BatchError::Truncated { .. })
    ));
}

#[test]
fn set_base_offset_and_epoch_keep_crc_valid() {
    let mut batch = three_records();
    set_base_offset(&mut batch, 1_234_567);
    set_partition_leader_epoch(&mut batch, 42);
    check_crc(&batch).unwrap();
    let h = BatchHeader::parse(&batch).unwrap();
    assert_eq!(h.base_offset(), 1_234_567);
    assert_eq!(h.last_offset(), 1_234_569);
    assert_eq!(h.partition_leader_epoch(), 42);
    let set = RecordBatchDecoder::decode(&mut Bytes::from(batch)).unwrap();
    assert_eq!(set.records[2].offset, 1_234_569);
}

#[test]
fn set_max_timestamp_log_append_recomputes_crc() {
    let mut batch = three_records();
    let before = BatchHeader::parse(&batch).unwrap().crc();
    set_max_timestamp_log_append(&mut batch, TS + 99);
    check_crc(&batch).unwrap();
    let h = BatchHeader::parse(&batch).unwrap();
    assert_ne!(h.crc(), before);
    assert!(h.timestamp_type_is_log_append());
    assert_eq!(h.max_timestamp(), TS + 99);
    assert_eq!(h.compression(), 0);
    let set = RecordBatchDecoder::decode(&mut Bytes::from(batch)).unwrap();
    assert_eq!(
        set.records[0].timestamp_type,
        kafka_protocol::records::TimestampType::LogAppend
    );
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = validate_produce(&bytes);
        let _ = check_crc(&bytes);
        let mut count = 0usize;
        for item in batches(&bytes) {
            count += 1;
            if let Ok(batch) = item {
                prop_assert!(batch.bytes.len() >= BATCH_HEADER_LEN);
            }
        }
        prop_assert!(count <= bytes.len() / BATCH_HEADER_LEN + 1);
    }

    #[test]
    fn random_header_over_real_batch_never_panics(
        header in proptest::collection::vec(any::<u8>(), 61),
        corrupt_magic in any::<bool>(),
    ) {
        let mut batch = three_records();
        batch[..61].copy_from_slice(&header);
        if !corrupt_magic { batch[16] = 2; }
        let _ = validate_produce(&batch);
        let _ = batches(&batch).count();
    }

    #[test]
    fn build_then_validate_round_trips(
        base_offset in 0i64..i64::MAX / 2,
        ts in 0i64..i64::MAX / 2,
        records in proptest::collection::vec(
            (proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
             proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200))),
            1..20),
        batch_count in 1usize..4,
    ) {
        let refs: Vec<TestRecord<'_>> =
            records.iter().map(|(k, v)| (k.as_deref(), v.as_deref())).collect();
        let one = build_test_batch(base_offset, &refs, ts);
        let blob = one.repeat(batch_count);
        let summary = validate_produce(&blob).unwrap();
        prop_assert_eq!(summary.batch_count, batch_count);
        prop_assert_eq!(summary.record_count, (records.len() * batch_count) as i64);
        prop_assert_eq!(summary.max_timestamp, ts);
        let set = RecordBatchDecoder::decode(&mut Bytes::from(one)).unwrap();
        prop_assert_eq!(set.records.len(), records.len());
        for (decoded, (k, v)) in set.records.iter().zip(&records) {
            prop_assert_eq!(decoded.key.as_deref(), k.as_deref());
            prop_assert_eq!(decoded.value.as_deref(), v.as_deref());
        }
    }
}
