//! Writing to and replaying `__consumer_offsets` on the coordinator shard.
//!
//! Writes are one RecordBatch v2 (no compression, no producer id) per
//! request, appended through the owner's partition like a produce with
//! acks=all: the caller is answered after fdatasync, so a committed offset
//! survives a crash. One batch per request keeps a multi-partition commit
//! atomic on replay.
//!
//! Replay reads the partition from its start to the high watermark and
//! hands every record to the caller in log order (latest value per key
//! wins; a null value deletes the key).

use std::collections::HashMap;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kafka_protocol::ResponseError;

use super::OFFSETS_TOPIC;
use crate::metadata::PartitionId;
use crate::protocol::batch::batches;
use crate::protocol::control::marker_kind;
use crate::shard::{PartitionOp, PartitionReply, ProduceOrigin, Shard};

/// How long a coordinator's write waits for the ISR (acks=all), ms:
/// Kafka's offsets.commit.timeout.ms default.
const COORDINATOR_WRITE_TIMEOUT_MS: i32 = 5_000;

/// Bytes read per step while replaying.
pub const REPLAY_READ_BYTES_MAX: usize = 1024 * 1024;

/// A key and its value (`None`: tombstone).
pub type KeyValue = (Bytes, Option<Bytes>);

/// Replay or write failure, with where it happened.
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// The partition is not open on this shard (ownership moved).
    #[error("internal topic partition {partition} is not owned by shard {shard}")]
    NotOwned {
        /// Offsets partition.
        partition: i32,
        /// This shard.
        shard: usize,
    },
    /// Reading the log failed.
    #[error("reading internal topic partition {partition} at offset {offset}: {source}")]
    Read {
        /// Offsets partition.
        partition: i32,
        /// Where.
        offset: i64,
        /// Why.
        source: crate::storage::StorageError,
    },
    /// A stored batch does not decode.
    #[error("decoding internal topic partition {partition} at offset {offset}: {message}")]
    Decode {
        /// Offsets partition.
        partition: i32,
        /// Where.
        offset: i64,
        /// Why.
        message: String,
    },
}

impl StoreError {
    /// The Kafka error a client gets for it.
    pub fn error_code(&self) -> i16 {
        match self {
            StoreError::NotOwned { .. } => ResponseError::NotCoordinator.code(),
            _ => ResponseError::CoordinatorNotAvailable.code(),
        }
    }
}

/// Transactional records not yet closed by a marker, per producer id, in
/// log order (TxnOffsetCommit writes; applied or dropped by the marker).
pub type OpenTxns = HashMap<i64, Vec<KeyValue>>;

/// One RecordBatch v2 holding `records` (offsets 0..n, to be rewritten by
/// the log), with the current time as timestamp.
pub fn encode_batch(records: &[KeyValue]) -> Result<Bytes, String> {
    encode_batch_as(records, None)
}

/// [`encode_batch`], as a transactional batch of `(producer id, epoch)`
/// when given (TxnOffsetCommit): no sequence, as Kafka's coordinator writes.
pub fn encode_batch_as(records: &[KeyValue], txn: Option<(i64, i16)>) -> Result<Bytes, String> {
    let now = crate::clock::wall_ms();
    let (producer_id, producer_epoch) = txn.unwrap_or((-1, -1));
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: txn.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch whenever offset - sequence
            // changes; this keeps one batch with base sequence -1.
            sequence: i as i32 - 1,
            timestamp: now,
            key: Some(key.clone()),
            value: value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).map_err(|e| e.to_string())?;
    Ok(buf.freeze())
}

/// Appends `records` to offsets partition `partition` and waits until they
/// are durable. Errors are the Kafka codes Kafka's coordinator answers.
pub async fn append(shard: &Rc<Shard>, partition: i32, records: &[KeyValue]) -> Result<(), i16> {
    append_to(shard, OFFSETS_TOPIC, partition, records, None).await
}

/// Appends `records` to partition `partition` of internal topic `topic`
/// (as a transactional batch of `txn` when given) and waits until they are
/// durable. Errors are the Kafka codes Kafka's coordinators answer.
pub async fn append_to(
    shard: &Rc<Shard>,
    topic: &str,
    partition: i32,
    records: &[KeyValue],
    txn: Option<(i64, i16)>,
) -> Result<(), i16> {
    if records.is_empty() {
        return Ok(());
    }
    let batch = encode_batch_as(records, txn).map_err(|e| {
        tracing::error!("encoding a {topic} batch failed: {e}");
        ResponseError::UnknownServerError.code()
    })?;
    let id = PartitionId {
        topic: topic.into(),
        partition,
    };
    let op = PartitionOp::Produce {
        records: batch,
        acks: -1,
        timeout_ms: COORDINATOR_WRITE_TIMEOUT_MS,
        origin: ProduceOrigin::Coordinator,
    };
    match shard.call_partition(id, op).await {
        PartitionReply::Produced { .. } => Ok(()),
        PartitionReply::Error(code)
            if code == ResponseError::NotLeaderOrFollower.code()
                || code == ResponseError::UnknownTopicOrPartition.code() =>
        {
            Err(ResponseError::NotCoordinator.code())
        }
        PartitionReply::Error(code) => {
            tracing::warn!(partition, code, "writing to {topic} failed");
            Err(ResponseError::CoordinatorNotAvailable.code())
        }
        other => {
            tracing::error!(
                partition,
                "unexpected reply to an offsets append: {other:?}"
            );
            Err(ResponseError::UnknownServerError.code())
        }
    }
}

/// Reads offsets partition `partition` (owned by this shard) from its start
/// to its high watermark and calls `apply(key, value)` for every record in
/// log order.
pub async fn replay(
    shard: &Rc<Shard>,
    partition: i32,
    apply: impl FnMut(&[u8], Option<&[u8]>),
) -> Result<u64, StoreError> {
    replay_from(shard, OFFSETS_TOPIC, partition, apply)
        .await
        .map(|(applied, _)| applied)
}

/// Reads partition `partition` of internal topic `topic` (owned by this
/// shard) from its start to its high watermark and calls `apply(key,
/// value)` for every record in log order. Transactional records are held
/// until their producer's marker: applied on COMMIT, dropped on ABORT, and
/// those still open at the end are returned.
pub async fn replay_from(
    shard: &Rc<Shard>,
    topic: &str,
    partition: i32,
    mut apply: impl FnMut(&[u8], Option<&[u8]>),
) -> Result<(u64, OpenTxns), StoreError> {
    let id = PartitionId {
        topic: topic.into(),
        partition,
    };
    let Some(part) = shard.local_partition(&id) else {
        return Err(StoreError::NotOwned {
            partition,
            shard: shard.id,
        });
    };
    let mut offset = part.log.log_start_offset();
    let mut applied = 0u64;
    let mut open = OpenTxns::new();
    while offset < part.log.high_watermark() {
        let bytes = part
            .log
            .read(offset, REPLAY_READ_BYTES_MAX, true)
            .await
            .map_err(|source| StoreError::Read {
                partition,
                offset,
                source,
            })?;
        if bytes.is_empty() {
            break;
        }
        let decode_err = |offset, message: String| StoreError::Decode {
            partition,
            offset,
            message,
        };
        for batch in batches(&bytes) {
            let batch = batch.map_err(|e| decode_err(offset, e.to_string()))?;
            let next = batch.header.last_offset() + 1;
            let mut raw = Bytes::copy_from_slice(batch.bytes);
            let set = RecordBatchDecoder::decode(&mut raw)
                .map_err(|e| decode_err(batch.header.base_offset(), e.to_string()))?;
            let commit = marker_kind(batch.bytes);
            for record in set.records.iter().filter(|r| r.offset >= offset) {
                if record.control {
                    let held = open.remove(&record.producer_id).unwrap_or_default();
                    if commit == Some(true) {
                        for (key, value) in held {
                            apply(&key, value.as_deref());
                            applied += 1;
                        }
                    }
                } else if let Some(key) = &record.key {
                    if record.transactional {
                        open.entry(record.producer_id)
                            .or_default()
                            .push((key.clone(), record.value.clone()));
                    } else {
                        apply(key, record.value.as_deref());
                        applied += 1;
                    }
                }
            }
            offset = next;
        }
    }
    Ok((applied, open))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::validate_produce;

    #[test]
    fn encoded_batch_is_a_valid_v2_batch_and_decodes_back() {
        let records = vec![
            (Bytes::from_static(b"k1"), Some(Bytes::from_static(b"v1"))),
            (Bytes::from_static(b"k2"), None),
        ];
        let batch = encode_batch(&records).unwrap();
        let summary = validate_produce(&batch).unwrap();
        assert!(summary.first_batch_producer_id < 0);
        let headers: Vec<_> = batches(&batch).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            headers.len(),
            1,
            "one batch per request, so a commit is atomic"
        );
        assert_eq!(headers[0].header.base_sequence(), -1);
        let set = RecordBatchDecoder::decode(&mut batch.clone()).unwrap();
        assert_eq!(set.records.len(), 2);
        assert_eq!(set.records[0].key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(set.records[1].value, None);
    }
}
