//! Crash tests of the log lifecycle on [`MemDisk`]: a crash (process or
//! power) after every mutating step of a compaction, a retention pass and
//! DeleteRecords leaves a valid log that lost nothing it had to keep. The
//! helpers are `lifecycle_tests.rs`'s.

use std::collections::BTreeMap;

use futures::executor::block_on;

use super::lifecycle_tests::*;
use super::*;

/// A crash (process or power) after any number of mutating operations of a
/// compaction pass leaves a log with every latest value, at its offset.
#[test]
fn crash_during_compaction_loses_nothing() {
    let mut finished = false;
    for ops in 0..200 {
        let disk = MemDisk::new();
        let (log, expected) = keyed(&disk);
        disk.fail_after(ops, libc::EIO);
        let result = block_on(log.compact(2_000, &policy(), &NoTxns, &mut NoPacing));
        disk.clear_faults();
        drop(log);
        disk.crash();
        let log = open(
            &disk,
            LogConfig {
                segment_ms: 10_000,
                ..config()
            },
        );
        let got: BTreeMap<String, (i64, Option<String>)> = {
            // Before cleaning finished, older values may remain: check that
            // the last record per key is the expected one.
            let mut last = BTreeMap::new();
            for (offset, key, value) in read_records(&log) {
                last.insert(key.unwrap(), (offset, value));
            }
            last
        };
        assert_eq!(got, expected, "crash after {ops} operations ({result:?})");
        assert_eq!(log.next_offset(), 203);
        // And the restarted log compacts to the exact result.
        block_on(log.compact(2_000, &policy(), &NoTxns, &mut NoPacing)).unwrap();
        assert_eq!(latest_in(&log), expected, "after {ops}");
        if result.is_ok() {
            finished = true;
            break;
        }
    }
    assert!(finished, "the pass never completed within the fault budget");
}

/// The same for retention: a crash at any step keeps the data at and above
/// the start it reports after restart, and that start never goes back.
#[test]
fn crash_during_retention_keeps_the_log_valid() {
    let mut finished = false;
    for ops in 0..100 {
        let disk = MemDisk::new();
        let log = filled(&disk);
        disk.fail_after(ops, libc::EIO);
        let policy = RetentionPolicy {
            retention_ms: 100,
            retention_bytes: -1,
        };
        let result = block_on(log.enforce_retention(1_250, policy));
        disk.clear_faults();
        drop(log);
        disk.crash();
        let log = open(&disk, config());
        let recs = read_records(&log);
        let start = log.log_start_offset();
        assert_eq!(recs.first().map(|r| r.0), Some(start), "after {ops}");
        assert_eq!(
            recs.len() as i64,
            30 - start,
            "dense from the start, after {ops}"
        );
        if result.is_ok() {
            assert!(start > 0);
            finished = true;
            break;
        }
    }
    assert!(finished);
}

/// Files of the partition left by segments wholly below the log start, or
/// index files without their `.log`.
fn leftovers_below_start(disk: &MemDisk, log_start: i64) -> Vec<String> {
    let names = block_on(disk.list_dir(&dir())).unwrap();
    let base = |n: &str| n.split('.').next().and_then(|b| b.parse::<i64>().ok());
    let mut logs: Vec<i64> = names
        .iter()
        .filter(|n| n.ends_with(".log"))
        .filter_map(|n| base(n))
        .collect();
    logs.sort_unstable();
    // The first segment kept is the one holding the log start.
    let first_kept = logs
        .iter()
        .copied()
        .filter(|b| *b <= log_start)
        .max()
        .unwrap_or(log_start);
    names
        .into_iter()
        .filter(|n| base(n).is_some_and(|b| b < first_kept || !logs.contains(&b)))
        .collect()
}

/// A crash at any step of DeleteRecords: the start is the old or the new
/// one, the data from it is dense, and once the log is open again no file
/// of a segment below the start is left (regression: leftovers of an
/// interrupted removal stayed forever when no later retention pass deleted
/// anything, e.g. DeleteRecords on a topic without retention).
#[test]
fn crash_during_delete_records_leaves_no_segment_below_the_start() {
    let mut finished = false;
    for ops in 0..100 {
        let disk = MemDisk::new();
        let log = filled(&disk);
        disk.fail_after(ops, libc::EIO);
        let result = block_on(log.delete_records(17));
        disk.clear_faults();
        drop(log);
        disk.crash();
        let log = open(&disk, config());
        let start = log.log_start_offset();
        assert!(start == 0 || start == 17, "start {start} after {ops}");
        let recs = read_records(&log);
        assert_eq!(recs.first().map(|r| r.0), Some(start), "after {ops}");
        assert_eq!(recs.len() as i64, 30 - start, "dense, after {ops}");
        let left = leftovers_below_start(&disk, start);
        assert!(left.is_empty(), "after {ops} ({result:?}): {left:?}");
        if result.is_ok() {
            finished = true;
            break;
        }
    }
    assert!(finished);
}
