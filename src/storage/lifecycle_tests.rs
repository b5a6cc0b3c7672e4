//! Unit tests of the log lifecycle on [`MemDisk`]: time-based roll,
//! retention by time and size, DeleteRecords, compaction, and a clean
//! close that writes nothing. Crashes at every step of those passes are in
//! `lifecycle_crash_tests.rs`, which shares the helpers here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use futures::executor::block_on;

use crate::protocol::batch::{batches, build_test_batch, BatchHeader, TestRecord};
use crate::protocol::records::records;

use super::*;

pub(super) fn dir() -> PathBuf {
    PathBuf::from("/data/life-0")
}

pub(super) fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2 << 10,
        index_interval_bytes: 256,
        preallocate_bytes: 4 << 10,
        ..LogConfig::default()
    }
}

pub(super) fn open(disk: &MemDisk, config: LogConfig) -> PartitionLog<MemDisk> {
    block_on(PartitionLog::open(disk.clone(), dir(), config)).expect("open")
}

/// Appends one batch of (key, value) records stamped `ts`; returns its base offset.
pub(super) fn put(
    log: &PartitionLog<MemDisk>,
    recs: &[(Option<&str>, Option<&str>)],
    ts: i64,
) -> i64 {
    let recs: Vec<TestRecord<'_>> = recs
        .iter()
        .map(|(k, v)| (k.map(str::as_bytes), v.map(str::as_bytes)))
        .collect();
    let mut b = build_test_batch(0, &recs, ts);
    log.append(&mut b).expect("append").base_offset
}

/// Every record from the log start: (offset, key, value).
pub(super) type Rec = (i64, Option<String>, Option<String>);

pub(super) fn read_records(log: &PartitionLog<MemDisk>) -> Vec<Rec> {
    let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let bytes = block_on(log.read(offset, 1 << 20, true)).expect("read");
        let mut last = offset;
        for batch in batches(&bytes) {
            let batch = batch.expect("whole batches");
            for r in records(batch.bytes).expect("uncompressed") {
                if r.offset >= offset {
                    out.push((r.offset, text(r.key), text(r.value)));
                }
            }
            last = batch.header.last_offset();
        }
        offset = last + 1;
    }
    out
}

pub(super) fn log_files(disk: &MemDisk) -> Vec<String> {
    let names = block_on(disk.list_dir(&dir())).unwrap();
    names.into_iter().filter(|n| n.ends_with(".log")).collect()
}

#[test]
fn roll_by_time_follows_batch_timestamps() {
    let disk = MemDisk::new();
    let log = open(
        &disk,
        LogConfig {
            segment_ms: 100,
            ..config()
        },
    );
    put(&log, &[(Some("a"), Some("1"))], 1_000);
    put(&log, &[(Some("a"), Some("2"))], 1_100);
    assert_eq!(log.segment_count(), 1, "exactly segment.ms later: no roll");
    put(&log, &[(Some("a"), Some("3"))], 1_101);
    assert_eq!(log.segment_count(), 2);
    put(&log, &[(Some("a"), Some("4"))], 900);
    assert_eq!(log.segment_count(), 2, "older timestamps never roll");
    block_on(log.flush()).unwrap();
    block_on(log.close()).unwrap();
    let log = open(
        &disk,
        LogConfig {
            segment_ms: 100,
            ..config()
        },
    );
    put(&log, &[(Some("a"), Some("5"))], 1_300);
    assert_eq!(log.segment_count(), 3, "first timestamp survives reopen");
}

/// 30 batches of ~200 bytes with timestamps 1000, 1010, ...: several segments.
pub(super) fn filled(disk: &MemDisk) -> PartitionLog<MemDisk> {
    let log = open(disk, config());
    let value = "x".repeat(120);
    for i in 0..30 {
        let key = format!("k{i}");
        put(&log, &[(Some(&key), Some(&value))], 1_000 + 10 * i);
    }
    block_on(log.flush()).unwrap();
    log
}

#[test]
fn retention_by_time_deletes_a_prefix_and_moves_the_start() {
    let disk = MemDisk::new();
    let log = filled(&disk);
    let before = log.segment_count();
    assert!(before >= 3, "{before} segments");
    let policy = RetentionPolicy {
        retention_ms: 100,
        retention_bytes: -1,
    };
    // now - 100 = 1150: segments whose newest batch is < 1150 go.
    let removed = block_on(log.enforce_retention(1_250, policy)).unwrap();
    assert!(removed.segments > 0);
    let start = log.log_start_offset();
    assert!(start > 0 && start <= 15, "start {start}");
    assert!(matches!(
        block_on(log.read(start - 1, 1 << 20, true)),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(read_records(&log).first().unwrap().0, start);
    assert_eq!(log_files(&disk).len(), before - removed.segments);
    // Durable: a crash keeps the new start.
    disk.crash();
    let log = open(&disk, config());
    assert_eq!(log.log_start_offset(), start);
    assert_eq!(log.next_offset(), 30);
}

#[test]
fn retention_of_everything_rolls_the_active_segment() {
    let disk = MemDisk::new();
    let log = filled(&disk);
    let policy = RetentionPolicy {
        retention_ms: 10,
        retention_bytes: -1,
    };
    block_on(log.enforce_retention(1_000_000, policy)).unwrap();
    assert_eq!(log.log_start_offset(), 30);
    assert!(read_records(&log).is_empty());
    assert!(log_files(&disk).is_empty(), "{:?}", log_files(&disk));
    put(&log, &[(Some("k"), Some("after"))], 2_000_000);
    block_on(log.flush()).unwrap();
    assert_eq!(
        read_records(&log),
        vec![(30, Some("k".into()), Some("after".into()))]
    );
    disk.crash();
    let log = open(&disk, config());
    assert_eq!((log.log_start_offset(), log.next_offset()), (30, 31));
}

#[test]
fn retention_by_bytes_stays_within_one_segment_of_the_bound() {
    let disk = MemDisk::new();
    let log = filled(&disk);
    let bound = 3_000;
    let policy = RetentionPolicy {
        retention_ms: -1,
        retention_bytes: bound,
    };
    let removed = block_on(log.enforce_retention(0, policy)).unwrap();
    assert!(removed.segments > 0);
    let size = log.size_bytes() as i64;
    assert!(
        size >= bound && size <= bound + config().segment_bytes as i64,
        "size {size}"
    );
    assert_eq!(read_records(&log).last().unwrap().0, 29);
}

#[test]
fn delete_records_moves_the_start_and_drops_whole_segments() {
    let disk = MemDisk::new();
    let log = filled(&disk);
    let files = log_files(&disk).len();
    assert_eq!(block_on(log.delete_records(17)).unwrap(), 17);
    assert!(log_files(&disk).len() < files);
    assert_eq!(read_records(&log).first().unwrap().0, 17);
    assert!(matches!(
        block_on(log.read(16, 1 << 20, true)),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        block_on(log.delete_records(5)).unwrap(),
        17,
        "never moves back"
    );
    assert!(matches!(
        block_on(log.delete_records(31)),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    disk.crash();
    let log = open(&disk, config());
    assert_eq!(log.log_start_offset(), 17);
    assert_eq!(block_on(log.delete_records(-1)).unwrap(), 30);
    assert!(read_records(&log).is_empty());
}

pub(super) fn policy() -> CompactionPolicy {
    CompactionPolicy {
        delete_retention_ms: 1_000,
        min_compaction_lag_ms: 0,
        max_compaction_lag_ms: i64::MAX,
        min_cleanable_dirty_ratio: 0.0,
    }
}

/// The latest (offset, value) per key a test expects after compaction.
pub(super) type LatestByKey = BTreeMap<String, (i64, Option<String>)>;

/// 10 keys updated 20 times (batches of 5 records, some keys tombstoned at
/// the end), then a sentinel batch in a new segment. Returns the log and
/// the expected latest (offset, value) per key.
pub(super) fn keyed(disk: &MemDisk) -> (PartitionLog<MemDisk>, LatestByKey) {
    let log = open(
        disk,
        LogConfig {
            segment_ms: 10_000,
            ..config()
        },
    );
    let mut latest = BTreeMap::new();
    let mut n = 0;
    for round in 0..40 {
        let recs: Vec<(String, String)> = (0..5)
            .map(|_| {
                n += 1;
                (format!("key{}", n % 10), format!("v{n}-{round}"))
            })
            .collect();
        let refs: Vec<(Option<&str>, Option<&str>)> = recs
            .iter()
            .map(|(k, v)| (Some(k.as_str()), Some(v.as_str())))
            .collect();
        let base = put(&log, &refs, 1_000 + round);
        for (i, (k, v)) in recs.iter().enumerate() {
            latest.insert(k.clone(), (base + i as i64, Some(v.clone())));
        }
    }
    let base = put(&log, &[(Some("key3"), None), (Some("key4"), None)], 1_100);
    latest.insert("key3".into(), (base, None));
    latest.insert("key4".into(), (base + 1, None));
    // Far later: rolls, and leaves the active segment holding only this.
    let base = put(&log, &[(Some("sentinel"), Some("s"))], 100_000);
    latest.insert("sentinel".into(), (base, Some("s".into())));
    block_on(log.flush()).unwrap();
    (log, latest)
}

/// (key -> (offset, value)) of what the log holds, asserting one record per key.
pub(super) fn latest_in(log: &PartitionLog<MemDisk>) -> BTreeMap<String, (i64, Option<String>)> {
    let mut out = BTreeMap::new();
    for (offset, key, value) in read_records(log) {
        let key = key.expect("keyed");
        assert!(
            out.insert(key.clone(), (offset, value)).is_none(),
            "{key} twice"
        );
    }
    out
}

#[test]
fn compaction_keeps_the_latest_value_per_key_at_its_offset() {
    let disk = MemDisk::new();
    let (log, expected) = keyed(&disk);
    let before = log.size_bytes();
    // Tombstones survive their first cleaning: it sets their delete
    // horizon to now + delete.retention.ms (3_000).
    let stats = block_on(log.compact(2_000, &policy(), &NoTxns, &mut NoPacing))
        .unwrap()
        .expect("due");
    assert!(
        stats.segments_rewritten > 0 && stats.records_removed > 0,
        "{stats:?}"
    );
    assert!(
        log.size_bytes() < before / 2,
        "{} of {before}",
        log.size_bytes()
    );
    assert_eq!(latest_in(&log), expected);
    assert_eq!(log.next_offset(), 203);
    // Nothing new is dirty: no second pass.
    assert!(
        block_on(log.compact(2_000, &policy(), &NoTxns, &mut NoPacing))
            .unwrap()
            .is_none()
    );
    // Reopened (indexes rewritten by the swap) it reads the same.
    block_on(log.close()).unwrap();
    let log = open(&disk, config());
    assert_eq!(latest_in(&log), expected);
    // At the horizon (persisted in the batch) the tombstones go.
    let stats = block_on(log.compact(3_000, &policy(), &NoTxns, &mut NoPacing))
        .unwrap()
        .expect("the tombstone horizon (from the checkpoint) is due");
    assert_eq!(stats.records_removed, 2);
    let mut without = expected.clone();
    without.remove("key3");
    without.remove("key4");
    assert_eq!(latest_in(&log), without);
}

/// The dirty mark and the pending horizon are in the checkpoint: after a
/// clean restart or a crash nothing is cleaned again until the horizon or
/// new dirty data; without the checkpoint the whole range is dirty once.
#[test]
fn compaction_progress_survives_a_restart() {
    for crash in [false, true] {
        let disk = MemDisk::new();
        let (log, expected) = keyed(&disk);
        block_on(log.compact(2_000, &policy(), &NoTxns, &mut NoPacing))
            .unwrap()
            .expect("due");
        if crash {
            drop(log);
            disk.crash();
        } else {
            block_on(log.close()).unwrap();
        }
        let log = open(&disk, config());
        assert_eq!(latest_in(&log), expected, "crash {crash}");
        assert!(
            block_on(log.compact(2_500, &policy(), &NoTxns, &mut NoPacing))
                .unwrap()
                .is_none(),
            "crash {crash}: nothing dirty, horizon (3_000) not reached"
        );
        let stats = block_on(log.compact(3_000, &policy(), &NoTxns, &mut NoPacing))
            .unwrap()
            .expect("horizon due");
        assert_eq!(stats.records_removed, 2, "crash {crash}");
    }
    // Without the checkpoint (or with one from before the pass) the next
    // pass reads everything again.
    let disk = MemDisk::new();
    let (log, _) = keyed(&disk);
    block_on(log.compact(2_000, &policy(), &NoTxns, &mut NoPacing))
        .unwrap()
        .expect("due");
    drop(log);
    disk.crash();
    let checkpoint = dir().join(super::checkpoint::CHECKPOINT_FILE_NAME);
    assert!(block_on(disk.remove_file(&checkpoint)).is_ok());
    let log = open(&disk, config());
    let stats = block_on(log.compact(2_500, &policy(), &NoTxns, &mut NoPacing))
        .unwrap()
        .expect("all dirty without the checkpoint");
    assert_eq!(stats.records_removed, 0, "already clean: {stats:?}");
}

#[test]
fn compaction_honours_lag_and_dirty_ratio() {
    let disk = MemDisk::new();
    let (log, _) = keyed(&disk);
    let lagged = CompactionPolicy {
        min_compaction_lag_ms: 1_000_000,
        ..policy()
    };
    assert!(
        block_on(log.compact(2_000, &lagged, &NoTxns, &mut NoPacing))
            .unwrap()
            .is_none()
    );
    let picky = CompactionPolicy {
        min_cleanable_dirty_ratio: 1.0,
        ..policy()
    };
    assert!(
        block_on(log.compact(2_000, &picky, &NoTxns, &mut NoPacing))
            .unwrap()
            .is_some(),
        "all dirty: ratio 1"
    );
    let overdue = CompactionPolicy {
        max_compaction_lag_ms: 1,
        min_cleanable_dirty_ratio: 1.0,
        ..policy()
    };
    // Clean now; a new dirty segment alone is a small ratio but overdue.
    let log2 = log;
    for i in 0..20 {
        put(
            &log2,
            &[(Some("key1"), Some(&format!("late{i}")))],
            200_000 + i,
        );
    }
    put(&log2, &[(Some("sentinel2"), Some("s2"))], 400_000);
    block_on(log2.flush()).unwrap();
    assert!(
        block_on(log2.compact(500_000, &overdue, &NoTxns, &mut NoPacing))
            .unwrap()
            .is_some()
    );
    assert_eq!(latest_in(&log2)["key1"].1.as_deref(), Some("late19"));
}

#[test]
fn compaction_leaves_empty_batches_that_keep_offsets_dense() {
    let disk = MemDisk::new();
    let (log, _) = keyed(&disk);
    block_on(log.compact(2_000, &policy(), &NoTxns, &mut NoPacing)).unwrap();
    let mut expected_next = 0;
    let mut offset = 0;
    while offset < log.high_watermark() {
        let bytes = block_on(log.read(offset, 1 << 20, true)).unwrap();
        for batch in batches(&bytes) {
            let header: &BatchHeader = batch.unwrap().header;
            assert_eq!(header.base_offset(), expected_next);
            expected_next = header.last_offset() + 1;
        }
        offset = expected_next;
    }
    assert_eq!(expected_next, log.next_offset());
}

/// Every file of the partition directory with its contents.
fn dir_contents(disk: &MemDisk) -> BTreeMap<String, Vec<u8>> {
    let names = block_on(disk.list_dir(&dir())).unwrap();
    names
        .into_iter()
        .map(|n| {
            let bytes = disk.contents(&dir().join(&n)).unwrap_or_default();
            (n, bytes)
        })
        .collect()
}

/// A log opened after a clean close, with nothing appended, closes without
/// writing (no flush, truncate, index or checkpoint rewrite); after an
/// append it closes fully again; a crash after a clean open loses nothing.
#[test]
fn close_after_a_clean_open_with_nothing_new_writes_nothing() {
    let disk = MemDisk::new();
    let log = open(&disk, config());
    for i in 0..30 {
        put(&log, &[(Some("k"), Some(&format!("v{i}")))], 1_000 + i);
    }
    block_on(log.flush()).unwrap();
    let expected = read_records(&log);
    block_on(log.close()).unwrap();
    let closed = dir_contents(&disk);

    let log = open(&disk, config());
    assert_eq!(read_records(&log), expected);
    // Any disk operation from here fails: the close must not need one.
    disk.fail_after(0, libc::EIO);
    block_on(log.close()).expect("an idle close does no I/O");
    disk.clear_faults();
    assert_eq!(
        dir_contents(&disk),
        closed,
        "an idle open and close changed files"
    );

    // An append after a clean open: the first flush preallocates, the
    // close writes indexes and checkpoint, and the next open reads it all.
    let log = open(&disk, config());
    let base = put(&log, &[(Some("k"), Some("after"))], 2_000);
    block_on(log.flush()).unwrap();
    block_on(log.close()).unwrap();
    assert_ne!(dir_contents(&disk), closed);
    let log = open(&disk, config());
    let mut with_new = expected.clone();
    with_new.push((base, Some("k".into()), Some("after".into())));
    assert_eq!(read_records(&log), with_new);

    // A crash after a clean open, then after an acknowledged append.
    drop(log);
    disk.crash();
    let log = open(&disk, config());
    assert_eq!(read_records(&log), with_new);
    let base = put(&log, &[(Some("k"), Some("late"))], 3_000);
    block_on(log.flush()).unwrap();
    drop(log);
    disk.crash();
    let log = open(&disk, config());
    with_new.push((base, Some("k".into()), Some("late".into())));
    assert_eq!(read_records(&log), with_new);
    assert_eq!(log.next_offset(), base + 1);
}
