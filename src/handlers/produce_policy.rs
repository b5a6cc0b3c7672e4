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

use bytes::Bytes;
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

/// Applies `config`'s produce rules to validated batches at `now_ms`.
/// `Err` carries the Kafka error code and message for the partition.
pub(super) fn apply_topic_policy(
    config: &TopicConfig,
    records_bytes: Bytes,
    now_ms: i64,
) -> Result<Checked, (i16, String)> {
    for batch in batches(&records_bytes) {
        let batch = batch.map_err(|e| (e.error_code(), e.to_string()))?;
        check_batch(config, batch.header, batch.bytes, now_ms)?;
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

fn check_batch(
    config: &TopicConfig,
    header: &BatchHeader,
    bytes: &[u8],
    now_ms: i64,
) -> Result<(), (i16, String)> {
    if bytes.len() as i64 > i64::from(config.max_message_bytes) {
        return Err((
            ResponseError::MessageTooLarge.code(),
            format!(
                "The batch of {} bytes is larger than max.message.bytes ({}).",
                bytes.len(),
                config.max_message_bytes
            ),
        ));
    }
    let recs = records(bytes);
    if config.cleanup_compact && has_keyless_record(header, bytes, recs.as_deref())? {
        return Err((
            ResponseError::InvalidRecord.code(),
            "Compacted topic cannot accept message without key.".to_string(),
        ));
    }
    if config.log_append_time {
        return Ok(());
    }
    let earliest = now_ms.saturating_sub(config.timestamp_before_max_ms);
    let latest = now_ms.saturating_add(config.timestamp_after_max_ms);
    let mut stamps: Vec<i64> = match &recs {
        Some(rs) => rs.iter().map(|r| r.timestamp).collect(),
        None => vec![header.base_timestamp(), header.max_timestamp()],
    };
    stamps.retain(|&t| t >= 0); // -1: no timestamp (older clients); Kafka lets it pass
    match stamps.into_iter().find(|&t| t < earliest || t > latest) {
        Some(t) => Err((
            ResponseError::InvalidTimestamp.code(),
            format!(
                "Timestamp {t} of a record is out of range: message.timestamp.before.max.ms={} and \
                 message.timestamp.after.max.ms={} around broker time {now_ms}.",
                config.timestamp_before_max_ms, config.timestamp_after_max_ms
            ),
        )),
        None => Ok(()),
    }
}

/// Whether a batch of a compacted topic holds a record without a key;
/// `recs` are its records when uncompressed.
fn has_keyless_record(
    header: &BatchHeader,
    bytes: &[u8],
    recs: Option<&[RecordView<'_>]>,
) -> Result<bool, (i16, String)> {
    if let Some(rs) = recs {
        return Ok(rs.iter().any(|r| r.key.is_none()));
    }
    let corrupt = |e: String| {
        (
            ResponseError::CorruptMessage.code(),
            format!("Compressed records cannot be read: {e}"),
        )
    };
    let body = bytes.get(BATCH_HEADER_LEN..).unwrap_or_default();
    let Some(codec) =
        Codec::detect(header.compression(), body).map_err(|e| corrupt(e.to_string()))?
    else {
        return Ok(false); // uncompressed but malformed: validation's business
    };
    match codec.decompress(body, DECOMPRESSED_BATCH_BYTES_MAX) {
        Ok(plain) => match records_in(header, &plain) {
            Some(rs) => Ok(rs.iter().any(|r| r.key.is_none())),
            None => Err(corrupt("records do not parse".into())),
        },
        Err(CodecError::TooLarge { .. }) => Ok(false),
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
        assert_eq!(e.0, ResponseError::MessageTooLarge.code());
        assert!(apply_topic_policy(&TopicConfig::default(), batch, 1_000).is_ok());
    }

    #[test]
    fn produce_policy_compacted_needs_keys() {
        let compact = config(|c| c.cleanup_compact = true);
        let keyless = Bytes::from(build_test_batch(0, &[(None, Some(b"v"))], 1_000));
        let e = apply_topic_policy(&compact, keyless.clone(), 1_000).unwrap_err();
        assert_eq!(e.0, ResponseError::InvalidRecord.code());
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
        assert_eq!(e.0, ResponseError::InvalidRecord.code());
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
        assert_eq!(e.0, ResponseError::CorruptMessage.code());
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
        assert_eq!(e.0, ResponseError::InvalidTimestamp.code());
        assert!(apply_topic_policy(&bounded, at(10_600), 10_000).is_err());
        let append = config(|c| c.log_append_time = true);
        let checked = apply_topic_policy(&append, at(5), 77_000).unwrap();
        assert_eq!(checked.log_append_time_ms, 77_000);
        let header = BatchHeader::parse(&checked.records).unwrap();
        assert!(header.timestamp_type_is_log_append());
        assert_eq!(header.max_timestamp(), 77_000);
        check_crc(&checked.records).unwrap();
    }
}
