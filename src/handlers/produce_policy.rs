//! A topic's produce-time rules, applied on the connection's shard before
//! the batches go to the owner (not an API: a helper of `produce`):
//! - `max.message.bytes`: a batch larger than it is MESSAGE_TOO_LARGE (Kafka
//!   compares the whole batch, header included).
//! - `cleanup.policy` with `compact`: a record without a key is
//!   INVALID_RECORD. Compressed batches are decompressed for this check
//!   (only on compacted topics, as Kafka does; bounded by
//!   `DECOMPRESSED_BATCH_BYTES_MAX`): one that does not decode is
//!   CORRUPT_MESSAGE; one over the bound passes unchecked (the cleaner
//!   keeps it whole).
//! - `message.timestamp.type=CreateTime` with
//!   `message.timestamp.before/after.max.ms`: a record timestamp outside
//!   `[now - before, now + after]` is INVALID_TIMESTAMP (every record of an
//!   uncompressed batch; the first and max timestamps of a compressed one).
//! - `message.timestamp.type=LogAppendTime`: each batch's max timestamp is
//!   set to the broker's clock and the timestamp-type attribute bit set, and
//!   the CRC recomputed (`set_max_timestamp_log_append`); the produce
//!   response carries that time.
//!
//! The two record-level rules (keys, timestamps) name the records at fault
//! in `record_errors` (Produce v8+, KIP-467), as Kafka does: clients then
//! fail only those records and report the others as
//! INVALID_DIFFERENT_RECORD instead of failing the whole batch. The
//! indexes are computed only once a batch is refused, except for the key
//! check, which walks the records anyway. A record's `batch_index` is its
//! position among all records of the partition's data (one batch in
//! practice: Kafka allows only one per partition from Produce v3).

use bytes::Bytes;
use kafka_protocol::messages::produce_response::BatchIndexAndErrorMessage;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::metadata::TopicConfig;
use crate::protocol::batch::{
    batches, set_max_timestamp_log_append, BatchHeader, BATCH_HEADER_LEN,
};
use crate::protocol::compression::{Codec, CodecError};
use crate::protocol::records::{records, records_in, RecordView};
use crate::storage::DECOMPRESSED_BATCH_BYTES_MAX;

/// The batches to append and the LogAppendTime given (-1 for CreateTime).
#[derive(Debug)]
pub(super) struct Checked {
    /// The (possibly rewritten) batches.
    pub(super) records: Bytes,
    /// The broker time stamped on LogAppendTime batches, else -1.
    pub(super) log_append_time_ms: i64,
}

/// Why a partition's data was refused: the answer to the client.
#[derive(Debug)]
pub(super) struct Refusal {
    /// Kafka error code of the partition.
    pub(super) code: i16,
    /// The partition's error message.
    pub(super) message: String,
    /// The records at fault, for record-level rules; empty when the whole
    /// batch is at fault (or its records cannot be read).
    pub(super) record_errors: Vec<BatchIndexAndErrorMessage>,
}

impl Refusal {
    fn batch(code: i16, message: String) -> Self {
        Refusal {
            code,
            message,
            record_errors: Vec::new(),
        }
    }

    /// A refusal naming each record at fault, `(batch_index, message)`;
    /// the partition's message names the first.
    fn records(code: i16, faults: Vec<(i32, String)>) -> Self {
        let message = match faults.first() {
            Some((index, first)) => format!(
                "{} record(s) refused; the first, at batch index {index}: {first}",
                faults.len()
            ),
            None => "One or more records were refused.".to_string(),
        };
        let record_errors = faults
            .into_iter()
            .map(|(index, message)| {
                BatchIndexAndErrorMessage::default()
                    .with_batch_index(index)
                    .with_batch_index_error_message(Some(StrBytes::from_string(message)))
            })
            .collect();
        Refusal {
            code,
            message,
            record_errors,
        }
    }
}

/// Applies `config`'s produce rules to validated batches at `now_ms`.
pub(super) fn apply_topic_policy(
    config: &TopicConfig,
    records_bytes: Bytes,
    now_ms: i64,
) -> Result<Checked, Refusal> {
    let mut first_index: i32 = 0;
    for batch in batches(&records_bytes) {
        let batch = batch.map_err(|e| Refusal::batch(e.error_code(), e.to_string()))?;
        check_batch(config, batch.header, batch.bytes, now_ms, first_index)?;
        first_index = first_index.saturating_add(batch.header.records_count().max(0));
    }
    if !config.log_append_time {
        return Ok(Checked {
            records: records_bytes,
            log_append_time_ms: -1,
        });
    }
    let mut owned = records_bytes.to_vec();
    let positions: Vec<(usize, usize)> = batches(&owned)
        .filter_map(Result::ok)
        .map(|b| (b.position, b.bytes.len()))
        .collect();
    for (position, len) in positions {
        set_max_timestamp_log_append(&mut owned[position..position + len], now_ms);
    }
    Ok(Checked {
        records: Bytes::from(owned),
        log_append_time_ms: now_ms,
    })
}

/// `first_index` is the batch index of the batch's first record.
fn check_batch(
    config: &TopicConfig,
    header: &BatchHeader,
    bytes: &[u8],
    now_ms: i64,
    first_index: i32,
) -> Result<(), Refusal> {
    if bytes.len() as i64 > i64::from(config.max_message_bytes) {
        return Err(Refusal::batch(
            ResponseError::MessageTooLarge.code(),
            format!(
                "The batch of {} bytes is larger than max.message.bytes ({}).",
                bytes.len(),
                config.max_message_bytes
            ),
        ));
    }
    let recs = records(bytes);
    if config.cleanup_compact {
        check_keys(header, bytes, recs.as_deref(), first_index)?;
    }
    if config.log_append_time {
        return Ok(());
    }
    check_timestamps(config, header, bytes, recs.as_deref(), now_ms, first_index)
}

/// Compacted topics: every record needs a key (Kafka's message).
fn check_keys(
    header: &BatchHeader,
    bytes: &[u8],
    recs: Option<&[RecordView<'_>]>,
    first_index: i32,
) -> Result<(), Refusal> {
    let keyless = |rs: &[RecordView<'_>]| indexes_where(rs, |r| r.key.is_none());
    let faults = match recs {
        Some(rs) => keyless(rs),
        None => with_plain_records(header, bytes, keyless)?.unwrap_or_default(),
    };
    if faults.is_empty() {
        return Ok(());
    }
    let message = "Compacted topic cannot accept message without key.";
    Err(Refusal::records(
        ResponseError::InvalidRecord.code(),
        faults
            .into_iter()
            .map(|i| (batch_index(first_index, i), message.to_string()))
            .collect(),
    ))
}

/// CreateTime bounds: every record of an uncompressed batch; the first and
/// max timestamps of a compressed one (its records are read only once it
/// is refused, to name them).
fn check_timestamps(
    config: &TopicConfig,
    header: &BatchHeader,
    bytes: &[u8],
    recs: Option<&[RecordView<'_>]>,
    now_ms: i64,
    first_index: i32,
) -> Result<(), Refusal> {
    let earliest = now_ms.saturating_sub(config.timestamp_before_max_ms);
    let latest = now_ms.saturating_add(config.timestamp_after_max_ms);
    // -1: no timestamp (older clients); Kafka lets it pass.
    let out_of_range = |t: i64| t >= 0 && (t < earliest || t > latest);
    let refused = match recs {
        Some(rs) => rs.iter().any(|r| out_of_range(r.timestamp)),
        None => out_of_range(header.base_timestamp()) || out_of_range(header.max_timestamp()),
    };
    if !refused {
        return Ok(());
    }
    let faulty = |rs: &[RecordView<'_>]| -> Vec<(usize, i64)> {
        indexes_where(rs, |r| out_of_range(r.timestamp))
            .into_iter()
            .filter_map(|i| rs.get(i).map(|r| (i, r.timestamp)))
            .collect()
    };
    let faults = match recs {
        Some(rs) => faulty(rs),
        // Unreadable records: the batch is refused without names.
        None => with_plain_records(header, bytes, faulty)
            .ok()
            .flatten()
            .unwrap_or_default(),
    };
    let describe = |t: i64| {
        format!(
            "Timestamp {t} of the record is out of range: it should be within [{earliest}, \
             {latest}] (message.timestamp.before.max.ms={}, message.timestamp.after.max.ms={}, \
             broker time {now_ms}).",
            config.timestamp_before_max_ms, config.timestamp_after_max_ms
        )
    };
    let faults: Vec<(i32, String)> = faults
        .into_iter()
        .map(|(i, t)| (batch_index(first_index, i), describe(t)))
        .collect();
    Err(Refusal::records(
        ResponseError::InvalidTimestamp.code(),
        faults,
    ))
}

/// The positions of the records that match `fault` (no allocation when
/// none does).
fn indexes_where(rs: &[RecordView<'_>], fault: impl Fn(&RecordView<'_>) -> bool) -> Vec<usize> {
    rs.iter()
        .enumerate()
        .filter(|(_, r)| fault(r))
        .map(|(i, _)| i)
        .collect()
}

fn batch_index(first_index: i32, within_batch: usize) -> i32 {
    first_index.saturating_add(i32::try_from(within_batch).unwrap_or(i32::MAX))
}

/// Runs `f` over the records of a compressed batch (decompressed, bounded
/// by `DECOMPRESSED_BATCH_BYTES_MAX`). `Ok(None)` when the batch is over
/// the bound or not compressed after all (then malformed: validation's
/// business); CORRUPT_MESSAGE when it does not decode.
fn with_plain_records<R>(
    header: &BatchHeader,
    bytes: &[u8],
    f: impl FnOnce(&[RecordView<'_>]) -> R,
) -> Result<Option<R>, Refusal> {
    let corrupt = |e: String| {
        Refusal::batch(
            ResponseError::CorruptMessage.code(),
            format!("Compressed records cannot be read: {e}"),
        )
    };
    let body = bytes.get(BATCH_HEADER_LEN..).unwrap_or_default();
    let Some(codec) =
        Codec::detect(header.compression(), body).map_err(|e| corrupt(e.to_string()))?
    else {
        return Ok(None);
    };
    match codec.decompress(body, DECOMPRESSED_BATCH_BYTES_MAX) {
        Ok(plain) => match records_in(header, &plain) {
            Some(rs) => Ok(Some(f(&rs))),
            None => Err(corrupt("records do not parse".into())),
        },
        Err(CodecError::TooLarge { .. }) => Ok(None),
        Err(e) => Err(corrupt(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::{build_test_batch, check_crc, TestRecord};

    fn config(f: impl FnOnce(&mut TopicConfig)) -> TopicConfig {
        let mut c = TopicConfig::default();
        f(&mut c);
        c
    }

    #[test]
    fn produce_policy_message_too_large() {
        let value = vec![b'v'; 2000];
        let batch = Bytes::from(build_test_batch(
            0,
            &[(Some(b"k"), Some(&value[..]))],
            1_000,
        ));
        let small = config(|c| c.max_message_bytes = 1000);
        let e = apply_topic_policy(&small, batch.clone(), 1_000).unwrap_err();
        assert_eq!(e.code, ResponseError::MessageTooLarge.code());
        assert!(apply_topic_policy(&TopicConfig::default(), batch, 1_000).is_ok());
    }

    #[test]
    fn produce_policy_compacted_needs_keys() {
        let compact = config(|c| c.cleanup_compact = true);
        let keyless = Bytes::from(build_test_batch(0, &[(None, Some(b"v"))], 1_000));
        let e = apply_topic_policy(&compact, keyless.clone(), 1_000).unwrap_err();
        assert_eq!(e.code, ResponseError::InvalidRecord.code());
        assert!(apply_topic_policy(&TopicConfig::default(), keyless, 1_000).is_ok());
        let keyed = Bytes::from(build_test_batch(0, &[(Some(b"k"), None)], 1_000));
        assert!(apply_topic_policy(&compact, keyed, 1_000).is_ok());
    }

    #[test]
    fn produce_policy_compacted_needs_keys_in_compressed_batches() {
        use crate::protocol::batch::rebuild_batch_body;
        let compact = config(|c| c.cleanup_compact = true);
        let zstd = |recs: &[TestRecord<'_>]| {
            let plain = build_test_batch(0, recs, 1_000);
            let body = Codec::Zstd.compress(&plain[BATCH_HEADER_LEN..]).unwrap();
            let mut head = plain[..BATCH_HEADER_LEN].to_vec();
            head[21..23].copy_from_slice(&4i16.to_be_bytes());
            let n = recs.len() as i32;
            Bytes::from(rebuild_batch_body(&head, &[&body], n, n - 1))
        };
        let keyless = zstd(&[(Some(b"k"), Some(b"v")), (None, Some(b"v"))]);
        let e = apply_topic_policy(&compact, keyless.clone(), 1_000).unwrap_err();
        assert_eq!(e.code, ResponseError::InvalidRecord.code());
        assert_eq!(indexes(&e), vec![1]);
        assert!(apply_topic_policy(&TopicConfig::default(), keyless, 1_000).is_ok());
        assert!(apply_topic_policy(&compact, zstd(&[(Some(b"k"), None)]), 1_000).is_ok());
        let mut head = build_test_batch(0, &[(Some(b"k"), Some(b"v"))], 1_000);
        head[22] |= 1; // gzip flag over an uncompressed body
        let garbage = Bytes::from(rebuild_batch_body(
            &head,
            &[&head[BATCH_HEADER_LEN..]],
            1,
            0,
        ));
        let e = apply_topic_policy(&compact, garbage, 1_000).unwrap_err();
        assert_eq!(e.code, ResponseError::CorruptMessage.code());
    }

    #[test]
    fn produce_policy_timestamps() {
        let bounded = config(|c| {
            c.timestamp_before_max_ms = 1_000;
            c.timestamp_after_max_ms = 500;
        });
        let at = |ts| Bytes::from(build_test_batch(0, &[(Some(b"k"), Some(b"v"))], ts));
        assert!(apply_topic_policy(&bounded, at(10_000), 10_000).is_ok());
        let e = apply_topic_policy(&bounded, at(8_000), 10_000).unwrap_err();
        assert_eq!(e.code, ResponseError::InvalidTimestamp.code());
        assert!(apply_topic_policy(&bounded, at(10_600), 10_000).is_err());
        let append = config(|c| c.log_append_time = true);
        let checked = apply_topic_policy(&append, at(5), 77_000).unwrap();
        assert_eq!(checked.log_append_time_ms, 77_000);
        let header = BatchHeader::parse(&checked.records).unwrap();
        assert!(header.timestamp_type_is_log_append());
        assert_eq!(header.max_timestamp(), 77_000);
        check_crc(&checked.records).unwrap();
    }

    const KV: (Option<&[u8]>, Option<&[u8]>) = (Some(b"k"), Some(b"v"));

    fn indexes(e: &Refusal) -> Vec<i32> {
        e.record_errors.iter().map(|r| r.batch_index).collect()
    }

    #[test]
    fn produce_policy_record_errors_name_keyless_records() {
        let compact = config(|c| c.cleanup_compact = true);
        let recs: Vec<crate::protocol::batch::TestRecord<'_>> = (0..100)
            .map(|i| match i % 10 {
                3 => (None, Some(&b"v"[..])),
                _ => (Some(&b"k"[..]), Some(&b"v"[..])),
            })
            .collect();
        let batch = Bytes::from(build_test_batch(0, &recs, 1_000));
        let e = apply_topic_policy(&compact, batch, 1_000).unwrap_err();
        assert_eq!(e.code, ResponseError::InvalidRecord.code());
        let expected: Vec<i32> = (0..10).map(|i| i * 10 + 3).collect();
        assert_eq!(indexes(&e), expected);
        assert!(e.message.contains("batch index 3"), "{}", e.message);
        assert!(e.record_errors.iter().all(|r| r
            .batch_index_error_message
            .as_ref()
            .is_some_and(|m| m.contains("without key"))));
    }

    #[test]
    fn produce_policy_record_errors_name_out_of_range_timestamps() {
        use crate::protocol::batch::rebuild_batch_body;
        let bounded = config(|c| {
            c.timestamp_before_max_ms = 1_000;
            c.timestamp_after_max_ms = 500;
        });
        // Records at 9_600, 9_800, ..., 10_600: the last one is late.
        let spaced = |ts| crate::protocol::batch::build_test_batch_spaced(0, &[KV; 6], ts, 200);
        let e = apply_topic_policy(&bounded, Bytes::from(spaced(9_600)), 10_000).unwrap_err();
        assert_eq!(e.code, ResponseError::InvalidTimestamp.code());
        assert_eq!(indexes(&e), vec![5]);
        // Two batches: indexes count on across them; 8_600 and 8_800 are early.
        let mut both = build_test_batch(0, &[KV; 3], 10_000);
        both.extend_from_slice(&spaced(8_600));
        let e = apply_topic_policy(&bounded, Bytes::from(both), 10_000).unwrap_err();
        assert_eq!(indexes(&e), vec![3, 4]);
        // A compressed batch is read to name its records once refused.
        let plain = build_test_batch(0, &[KV; 2], 20_000);
        let body = Codec::Zstd.compress(&plain[BATCH_HEADER_LEN..]).unwrap();
        let mut head = plain[..BATCH_HEADER_LEN].to_vec();
        head[21..23].copy_from_slice(&4i16.to_be_bytes());
        let zstd = Bytes::from(rebuild_batch_body(&head, &[&body], 2, 1));
        let e = apply_topic_policy(&bounded, zstd, 10_000).unwrap_err();
        assert_eq!(e.code, ResponseError::InvalidTimestamp.code());
        assert_eq!(indexes(&e), vec![0, 1]);
    }
}
