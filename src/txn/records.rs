//! Keys and values of `__transaction_state` records, in Kafka's formats
//! (`TransactionLogKey` v0 and `TransactionLogValue` v0), so Kafka's tools
//! read them:
//!
//! - key: version (i16 = 0), transactional id (string);
//! - value: version (i16 = 0), producer id (i64), producer epoch (i16),
//!   transaction timeout ms (i32), state (i8), partitions (array of
//!   topic (string) + partition ids (array of i32); null when none), last
//!   update ms (i64), start ms (i64).
//!
//! A null value is a tombstone. Value version 1 (flexible, with tagged
//! fields for KIP-890 part 2) is not written; it is refused on read with a
//! clear error, as an unknown version.

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};

use super::state::{TxnMeta, TxnState};
use crate::group::records::{get_i16, get_i32, get_i64, get_str, need, put_str, CodecError};

/// Key and value version written.
pub const TXN_RECORD_VERSION: i16 = 0;

/// The key of transactional id `id`.
pub fn encode_key(id: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + id.len());
    b.put_i16(TXN_RECORD_VERSION);
    put_str(&mut b, id);
    b.freeze()
}

/// The transactional id of a key.
pub fn decode_key(mut buf: &[u8]) -> Result<String, CodecError> {
    let version = get_i16(&mut buf, "key version")?;
    if version != TXN_RECORD_VERSION {
        return Err(CodecError::UnknownVersion {
            what: "transaction key",
            version,
        });
    }
    get_str(&mut buf, "transactional id")
}

/// The value for `meta`.
pub fn encode_value(meta: &TxnMeta) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    b.put_i16(TXN_RECORD_VERSION);
    b.put_i64(meta.producer_id);
    b.put_i16(meta.epoch);
    b.put_i32(meta.timeout_ms);
    b.put_i8(meta.state as i8);
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (topic, partition) in &meta.partitions {
        match topics.last_mut() {
            Some((t, ps)) if *t == topic.as_str() => ps.push(*partition),
            _ => topics.push((topic, vec![*partition])),
        }
    }
    if topics.is_empty() {
        b.put_i32(-1);
    } else {
        b.put_i32(topics.len() as i32);
        for (topic, partitions) in topics {
            put_str(&mut b, topic);
            b.put_i32(partitions.len() as i32);
            for p in partitions {
                b.put_i32(p);
            }
        }
    }
    b.put_i64(meta.update_ms);
    b.put_i64(meta.start_ms);
    b.freeze()
}

/// Decodes a value.
pub fn decode_value(mut buf: &[u8]) -> Result<TxnMeta, CodecError> {
    let version = get_i16(&mut buf, "value version")?;
    if version != TXN_RECORD_VERSION {
        return Err(CodecError::UnknownVersion {
            what: "transaction value",
            version,
        });
    }
    let producer_id = get_i64(&mut buf, "producer id")?;
    let epoch = get_i16(&mut buf, "producer epoch")?;
    let timeout_ms = get_i32(&mut buf, "transaction timeout")?;
    need(buf, 1, "state")?;
    let state = TxnState::from_i8(buf[0] as i8).ok_or(CodecError::Bad { field: "state" })?;
    buf = &buf[1..];
    let mut partitions = BTreeSet::new();
    let topics = get_i32(&mut buf, "partitions")?;
    for _ in 0..topics.max(0) {
        let topic = get_str(&mut buf, "topic")?;
        let count = get_i32(&mut buf, "partition ids")?;
        for _ in 0..count.max(0) {
            partitions.insert((topic.clone(), get_i32(&mut buf, "partition id")?));
        }
    }
    let update_ms = get_i64(&mut buf, "last update")?;
    let start_ms = get_i64(&mut buf, "start")?;
    Ok(TxnMeta {
        producer_id,
        epoch,
        timeout_ms,
        state,
        partitions,
        start_ms,
        update_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_record_round_trips() {
        let meta = TxnMeta {
            producer_id: 1234,
            epoch: 7,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [
                ("a".to_string(), 0),
                ("a".to_string(), 3),
                ("b".to_string(), 1),
            ]
            .into_iter()
            .collect(),
            start_ms: 10,
            update_ms: 20,
        };
        let value = encode_value(&meta);
        assert_eq!(decode_value(&value).unwrap(), meta);
        assert_eq!(decode_key(&encode_key("tx-1")).unwrap(), "tx-1");
        let empty = TxnMeta {
            partitions: BTreeSet::new(),
            state: TxnState::CompleteCommit,
            ..meta
        };
        assert_eq!(decode_value(&encode_value(&empty)).unwrap(), empty);
    }

    #[test]
    fn txn_record_truncated_or_unknown_is_an_error_not_a_panic() {
        let value = encode_value(&TxnMeta {
            producer_id: 1,
            epoch: 0,
            timeout_ms: 1,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            update_ms: 0,
        });
        for cut in 0..value.len() {
            assert!(decode_value(&value[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode_key(&[0, 1, 0, 1, b'x']).is_err());
    }
}
