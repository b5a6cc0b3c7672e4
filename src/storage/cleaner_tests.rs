//! Cleaner tests on [`MemDisk`]: compressed batches with every codec,
//! tombstones ageing from cleaning time (KIP-534 delete horizon), and
//! batches that cannot be decoded.

use std::collections::BTreeMap;
use std::path::PathBuf;

use futures::executor::block_on;

use crate::protocol::batch::{
    batches, build_test_batch, check_crc, rebuild_batch_body, BatchHeader, TestRecord,
    BATCH_HEADER_LEN,
};
use crate::protocol::compression::Codec;
use crate::protocol::records::records_in;

use super::*;

fn dir() -> PathBuf {
    PathBuf::from("/data/clean-0")
}

fn open(disk: &MemDisk) -> PartitionLog<MemDisk> {
    let config = LogConfig {
        segment_bytes: 4 << 10,
        index_interval_bytes: 256,
        preallocate_bytes: 8 << 10,
        segment_ms: 10_000,
    };
    block_on(PartitionLog::open(disk.clone(), dir(), config)).expect("open")
}

fn policy(delete_retention_ms: i64) -> CompactionPolicy {
    CompactionPolicy {
        delete_retention_ms,
        min_compaction_lag_ms: 0,
        max_compaction_lag_ms: i64::MAX,
        min_cleanable_dirty_ratio: 0.0,
    }
}

/// `batch` with its records section compressed by `codec` (codec bits set).
fn compressed(batch: &[u8], codec: Option<Codec>) -> Vec<u8> {
    let Some(codec) = codec else {
        return batch.to_vec();
    };
    let header = BatchHeader::parse(batch).unwrap();
    let id: i16 = match codec {
        Codec::Gzip => 1,
        Codec::SnappyXerial | Codec::SnappyRaw => 2,
        Codec::Lz4 => 3,
        Codec::Zstd => 4,
    };
    let body = codec.compress(&batch[BATCH_HEADER_LEN..]).unwrap();
    let mut head = batch[..BATCH_HEADER_LEN].to_vec();
    head[21..23].copy_from_slice(&(header.attributes() | id).to_be_bytes());
    rebuild_batch_body(
        &head,
        &[&body],
        header.records_count(),
        header.last_offset_delta(),
    )
}

fn put(
    log: &PartitionLog<MemDisk>,
    recs: &[(&str, Option<&str>)],
    ts: i64,
    codec: Option<Codec>,
) -> i64 {
    let recs: Vec<TestRecord<'_>> = recs
        .iter()
        .map(|(k, v)| (Some(k.as_bytes()), v.map(str::as_bytes)))
        .collect();
    let mut b = compressed(&build_test_batch(0, &recs, ts), codec);
    log.append(&mut b).expect("append").base_offset
}

/// Every record from the log start as key -> (offset, value, timestamp),
/// asserting one record per key, and the codecs of non-empty batches.
type Latest = BTreeMap<String, (i64, Option<String>)>;

fn read_all(log: &PartitionLog<MemDisk>) -> (Latest, Vec<i64>, Vec<u8>) {
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
    let (mut out, mut stamps, mut codecs) = (BTreeMap::new(), Vec::new(), Vec::new());
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let bytes = block_on(log.read(offset, 1 << 20, true)).expect("read");
        for batch in batches(&bytes) {
            let batch = batch.expect("whole batches");
            check_crc(batch.bytes).unwrap();
            let header = batch.header;
            let raw = &batch.bytes[BATCH_HEADER_LEN..];
            let body = match Codec::detect(header.compression(), raw).unwrap() {
                Some(c) => c.decompress(raw, 1 << 20).unwrap(),
                None => raw.to_vec(),
            };
            let recs = records_in(header, &body).expect("records parse");
            if !recs.is_empty() {
                codecs.push(header.compression());
            }
            for r in recs.iter().filter(|r| r.offset >= offset) {
                let key = text(r.key.unwrap());
                let prev = out.insert(key.clone(), (r.offset, r.value.map(text)));
                assert!(prev.is_none(), "{key} twice");
                stamps.push(r.timestamp);
            }
            offset = header.last_offset() + 1;
        }
    }
    (out, stamps, codecs)
}

/// 20 keys updated 400 times in batches of 10, two keys tombstoned, then a
/// sentinel far later (in the active segment).
fn fill(log: &PartitionLog<MemDisk>, codec: Option<Codec>) -> Latest {
    let mut latest = BTreeMap::new();
    for round in 0..40 {
        let recs: Vec<(String, String)> = (0..10)
            .map(|i| {
                (
                    format!("key{}", (round * 10 + i) % 20),
                    format!("value-{round}-{i}-padding-padding"),
                )
            })
            .collect();
        let refs: Vec<(&str, Option<&str>)> = recs
            .iter()
            .map(|(k, v)| (k.as_str(), Some(v.as_str())))
            .collect();
        let base = put(log, &refs, 1_000 + round, codec);
        for (i, (k, v)) in recs.iter().enumerate() {
            latest.insert(k.clone(), (base + i as i64, Some(v.clone())));
        }
    }
    let base = put(log, &[("key3", None), ("key4", None)], 1_100, codec);
    latest.insert("key3".into(), (base, None));
    latest.insert("key4".into(), (base + 1, None));
    let base = put(log, &[("sentinel", Some("s"))], 100_000, codec);
    latest.insert("sentinel".into(), (base, Some("s".into())));
    block_on(log.flush()).unwrap();
    latest
}

#[test]
fn cleaner_compacts_compressed_batches_every_codec() {
    let codecs = [
        Codec::Gzip,
        Codec::SnappyXerial,
        Codec::SnappyRaw,
        Codec::Lz4,
        Codec::Zstd,
    ];
    for codec in codecs {
        let disk = MemDisk::new();
        let log = open(&disk);
        let expected = fill(&log, Some(codec));
        let before = log.size_bytes();
        let stats = block_on(log.compact(2_000, &policy(1_000), &NoTxns, &mut NoPacing))
            .unwrap()
            .expect("due");
        assert!(stats.records_removed > 300, "{codec:?} {stats:?}");
        assert!(
            log.size_bytes() < before,
            "{codec:?}: {} of {before}",
            log.size_bytes()
        );
        let (got, _, codecs_read) = read_all(&log);
        assert_eq!(got, expected, "{codec:?}");
        let id = BatchHeader::parse(&compressed(
            &build_test_batch(0, &[(Some(b"k"), Some(b"v"))], 0),
            Some(codec),
        ))
        .unwrap()
        .compression();
        assert!(
            codecs_read.iter().all(|&c| c == id),
            "{codec:?}: {codecs_read:?}"
        );
        // Reopened (recovery re-checks every batch) it reads the same.
        block_on(log.close()).unwrap();
        let log = open(&disk);
        assert_eq!(read_all(&log).0, expected, "{codec:?} after reopen");
    }
}

#[test]
fn cleaner_tombstones_age_from_cleaning_time() {
    let disk = MemDisk::new();
    let log = open(&disk);
    let expected = fill(&log, Some(Codec::Lz4));
    // Cleaned long after the tombstones' own timestamps (1_100): they stay,
    // with a delete horizon of now + delete.retention.ms.
    let now = 50_000;
    block_on(log.compact(now, &policy(1_000), &NoTxns, &mut NoPacing))
        .unwrap()
        .expect("due");
    let (got, stamps, _) = read_all(&log);
    assert_eq!(got, expected);
    assert!(
        stamps.iter().all(|&t| (1_000..=100_000).contains(&t)),
        "timestamps kept: {stamps:?}"
    );
    let bytes = block_on(log.read(expected["key3"].0, 1 << 20, true)).unwrap();
    let header = BatchHeader::parse(&bytes).unwrap();
    assert_eq!(header.attributes() & 0x40, 0x40, "delete horizon bit");
    assert_eq!(header.base_timestamp(), now + 1_000);
    assert_eq!(header.compression(), 3);
    // Not yet due: no pass.
    assert!(
        block_on(log.compact(now + 999, &policy(1_000), &NoTxns, &mut NoPacing))
            .unwrap()
            .is_none()
    );
    // At the horizon the pass is due without new data, and they go.
    let stats = block_on(log.compact(now + 1_000, &policy(1_000), &NoTxns, &mut NoPacing))
        .unwrap()
        .expect("due by the horizon");
    assert_eq!(stats.records_removed, 2);
    let mut without = expected.clone();
    without.remove("key3");
    without.remove("key4");
    assert_eq!(read_all(&log).0, without);
    assert!(
        block_on(log.compact(now + 5_000, &policy(1_000), &NoTxns, &mut NoPacing))
            .unwrap()
            .is_none()
    );
}

#[test]
fn cleaner_keeps_undecodable_compressed_batches_whole() {
    let disk = MemDisk::new();
    let log = open(&disk);
    // A valid CRC over a gzip-flagged body that is not gzip.
    let plain = build_test_batch(0, &[(Some(b"key1"), Some(b"old"))], 1_000);
    let mut head = plain[..BATCH_HEADER_LEN].to_vec();
    head[21..23].copy_from_slice(&1i16.to_be_bytes());
    let mut bad = rebuild_batch_body(&head, &[b"not gzip at all"], 1, 0);
    log.append(&mut bad).unwrap();
    put(&log, &[("key1", Some("new"))], 1_001, None);
    put(&log, &[("key1", Some("newer"))], 1_002, Some(Codec::Zstd));
    put(&log, &[("sentinel", Some("s"))], 100_000, None);
    block_on(log.flush()).unwrap();
    let stats = block_on(log.compact(2_000, &policy(1_000), &NoTxns, &mut NoPacing))
        .unwrap()
        .expect("due");
    assert_eq!(stats.records_removed, 1, "only the uncompressed 'new' goes");
    let first = block_on(log.read(0, 1 << 20, true)).unwrap();
    assert_eq!(&first[..bad.len()], &bad[..], "kept byte for byte");
}
