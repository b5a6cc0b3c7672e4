//! Transaction markers: the control batches that end a transaction in a
//! partition (Kafka's `EndTransactionMarker`).
//!
//! A marker is a RecordBatch v2 with the transactional and control
//! attribute bits, the producer's id and epoch, no sequence, and one record
//! whose key is `(version: i16 = 0, type: i16)` (0 = ABORT, 1 = COMMIT) and
//! whose value is `(version: i16 = 0, coordinator_epoch: i32)`. Consumers
//! never see the record; read_committed consumers use it to drop an aborted
//! transaction's batches.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::batch::BatchHeader;
use super::records::records;

/// Control record type of an abort marker.
pub const CONTROL_TYPE_ABORT: i16 = 0;
/// Control record type of a commit marker.
pub const CONTROL_TYPE_COMMIT: i16 = 1;

/// A marker batch for `producer_id` at `epoch` (base offset 0; the log
/// assigns the real one).
pub fn encode_marker(
    producer_id: i64,
    epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    timestamp_ms: i64,
) -> Result<Bytes, String> {
    let kind = if commit {
        CONTROL_TYPE_COMMIT
    } else {
        CONTROL_TYPE_ABORT
    };
    let mut key = BytesMut::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&kind.to_be_bytes());
    let mut value = BytesMut::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id,
        producer_epoch: epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: timestamp_ms,
        key: Some(key.freeze()),
        value: Some(value.freeze()),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, std::iter::once(&record), &options)
        .map_err(|e| e.to_string())?;
    Ok(buf.freeze())
}

/// The marker a control batch holds: `Some(true)` commit, `Some(false)`
/// abort, `None` for any other batch (or an unreadable control record).
pub fn marker_kind(batch: &[u8]) -> Option<bool> {
    let header = BatchHeader::parse(batch).ok()?;
    if !header.is_control() || header.compression() != 0 {
        return None;
    }
    let records = records(batch)?;
    let key = records.first()?.key?;
    match i16::from_be_bytes(key.get(2..4)?.try_into().ok()?) {
        CONTROL_TYPE_COMMIT => Some(true),
        CONTROL_TYPE_ABORT => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::{batches, validate_produce};

    #[test]
    fn marker_round_trips_and_is_a_valid_control_batch() {
        for commit in [true, false] {
            let m = encode_marker(42, 3, commit, 0, 1_700_000_000_000).unwrap();
            let b = batches(&m).next().unwrap().unwrap();
            assert!(b.header.is_control());
            assert!(b.header.is_transactional());
            assert_eq!(b.header.producer_id(), 42);
            assert_eq!(b.header.producer_epoch(), 3);
            assert_eq!(b.header.base_sequence(), -1);
            assert_eq!(marker_kind(&m), Some(commit));
            let summary = validate_produce(&m).unwrap();
            assert!(summary.has_control_batch);
        }
    }

    #[test]
    fn marker_kind_of_a_data_batch_is_none() {
        let data =
            crate::protocol::batch::test_batch::build_test_batch(0, &[(None, Some(b"v"))], 0);
        assert_eq!(marker_kind(&data), None);
        assert_eq!(marker_kind(b"short"), None);
    }
}
