//! A full disk (ENOSPC) on [`MemDisk`]: the failed flush leaves the high
//! watermark at durable data, and `reopen` once space is back gives a log
//! that appends right after it, with nothing partial visible, no restart.

use std::path::PathBuf;

use futures::executor::block_on;

use crate::protocol::batch::{batches, build_test_batch};
use crate::protocol::records::records;

use super::*;

fn dir() -> PathBuf {
    PathBuf::from("/data/full-0")
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 << 10,
        index_interval_bytes: 512,
        preallocate_bytes: 8 << 10,
        ..LogConfig::default()
    }
}

/// Appends batches of one record each, values `name-i`.
fn put(log: &PartitionLog<MemDisk>, name: &str, count: usize) {
    for i in 0..count {
        let value = format!("{name}-{i}-{}", "x".repeat(300));
        let mut b = build_test_batch(0, &[(Some(b"k"), Some(value.as_bytes()))], 1_000);
        log.append(&mut b).expect("append");
    }
}

/// (offset, value prefix) of every durable record.
fn values(log: &PartitionLog<MemDisk>) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let bytes = block_on(log.read(offset, 1 << 20, true)).expect("read");
        for batch in batches(&bytes) {
            let batch = batch.expect("whole batches");
            for r in records(batch.bytes).expect("records") {
                let v = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
                out.push((r.offset, v.split('-').take(2).collect::<Vec<_>>().join("-")));
            }
            offset = batch.header.last_offset() + 1;
        }
    }
    out
}

fn expected(parts: &[(&str, usize)]) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for (name, count) in parts {
        for i in 0..*count {
            out.push((out.len() as i64, format!("{name}-{i}")));
        }
    }
    out
}

#[test]
fn full_disk_flush_fails_then_reopen_appends_after_durable_data() {
    let disk = MemDisk::new();
    let log = block_on(PartitionLog::open(disk.clone(), dir(), config())).unwrap();
    put(&log, "a", 20);
    block_on(log.flush()).unwrap();
    put(&log, "lost", 30);
    disk.fail_writes(Some(libc::ENOSPC));
    let err = block_on(log.flush()).unwrap_err();
    assert!(err.is_out_of_space(), "{err}");
    assert_eq!(
        log.high_watermark(),
        20,
        "nothing past durable data is visible"
    );
    assert!(log
        .append(&mut build_test_batch(0, &[(None, Some(b"v"))], 1))
        .is_err());
    // Still full: recovery (which rewrites indexes) fails too, and the
    // log stays refused, with nothing changed.
    assert!(block_on(log.reopen()).unwrap_err().is_out_of_space());
    assert!(log
        .append(&mut build_test_batch(0, &[(None, Some(b"v"))], 1))
        .is_err());
    assert_eq!(log.high_watermark(), 20);
    // Space is back.
    disk.fail_writes(None);
    block_on(log.reopen()).unwrap();
    assert_eq!((log.next_offset(), log.high_watermark()), (20, 20));
    put(&log, "b", 40); // crosses a segment roll
    block_on(log.flush()).unwrap();
    assert_eq!(values(&log), expected(&[("a", 20), ("b", 40)]));
    block_on(log.close()).unwrap();
    let log = block_on(PartitionLog::open(disk.clone(), dir(), config())).unwrap();
    assert_eq!(values(&log), expected(&[("a", 20), ("b", 40)]));
}

#[test]
fn full_disk_torn_tail_is_cut_by_reopen() {
    let disk = MemDisk::new();
    let log = block_on(PartitionLog::open(disk.clone(), dir(), config())).unwrap();
    put(&log, "a", 10);
    block_on(log.flush()).unwrap();
    // Some of the next flush's writes land, then the disk fills: a torn
    // tail past the durable end.
    put(&log, "torn", 60);
    disk.fail_after(3, libc::ENOSPC);
    assert!(block_on(log.flush()).is_err());
    assert_eq!(log.high_watermark(), 10);
    disk.clear_faults();
    block_on(log.reopen()).unwrap();
    let end = log.next_offset();
    assert!(end >= 10, "durable data kept");
    let survivors = values(&log);
    // Whatever whole batches recovery kept are the torn run's prefix.
    assert_eq!(survivors[..10], expected(&[("a", 10)])[..]);
    for (i, (offset, v)) in survivors[10..].iter().enumerate() {
        assert_eq!(
            (*offset, v.as_str()),
            (10 + i as i64, format!("torn-{i}").as_str())
        );
    }
    put(&log, "b", 5);
    block_on(log.flush()).unwrap();
    let all = values(&log);
    assert_eq!(all.len() as i64, end + 5);
    assert_eq!(
        all[end as usize..],
        expected(&[("b", 5)])
            .iter()
            .enumerate()
            .map(|(i, (_, v))| (end + i as i64, v.clone()))
            .collect::<Vec<_>>()[..]
    );
}
