//! Unit tests of recovery on [`MemDisk`]: torn tails, flipped bytes,
//! garbage and gaps cut at open, indexes rebuilt, corruption never served,
//! the torn-crash property (acknowledged data survives), and regressions
//! found by the seeded storage simulation.

use futures::executor::block_on;

use crate::protocol::batch::{batches, build_test_batch};

use super::tests::{
    append_many, batch, dir, log_files, offsets, open_mem, read_all, segment_file, small_config,
};
use super::*;

#[test]
fn recovery_truncates_torn_last_batch() {
    let disk = MemDisk::new();
    let log = open_mem(&disk, small_config());
    append_many(&log, 3, 2, 500);
    block_on(log.flush()).unwrap();
    let good = block_on(read_all(&log));
    disk.fail_syncs(Some(libc::EIO));
    append_many(&log, 1, 4, 500);
    assert!(block_on(log.flush()).is_err());
    assert!(matches!(
        log.append(&mut batch(1, 1, 1)),
        Err(StorageError::Failed { .. })
    ));
    assert_eq!(
        log.high_watermark(),
        6,
        "a failed flush does not raise the high watermark"
    );
    drop(log);
    disk.fail_syncs(None);
    disk.crash_tearing(100); // header of the new batch made it, its body did not
    let log = open_mem(&disk, small_config());
    assert_eq!(log.next_offset(), 6);
    assert_eq!(block_on(read_all(&log)), good);
    append_many(&log, 1, 1, 10);
    block_on(log.flush()).unwrap();
    assert_eq!(log.high_watermark(), 7);
}

/// A flush dropped while its fdatasync waits (its request task cancelled)
/// poisons the log: the next flush must not write the chunks after the
/// dropped ones and raise the high watermark over the hole. Reopening
/// recovers every batch the dropped flush had written.
#[test]
fn flush_dropped_mid_way_poisons_the_log_and_reopen_recovers() {
    use futures::FutureExt;
    let disk = MemDisk::new();
    let log = open_mem(&disk, small_config());
    append_many(&log, 3, 2, 500);
    block_on(log.flush()).unwrap();
    append_many(&log, 2, 2, 500);
    disk.stall_syncs();
    assert!(
        log.flush().now_or_never().is_none(),
        "the flush waits on its fdatasync"
    );
    disk.clear_faults();
    assert_eq!(log.high_watermark(), 6, "a dropped flush raises nothing");
    assert!(
        matches!(
            log.append(&mut batch(1, 1, 1)),
            Err(StorageError::Failed { .. })
        ),
        "appends refused after a dropped flush"
    );
    assert!(matches!(
        block_on(log.flush()),
        Err(StorageError::Failed { .. })
    ));
    drop(log);
    let log = open_mem(&disk, small_config());
    assert_eq!(
        log.next_offset(),
        10,
        "the dropped flush's writes were whole"
    );
    let all = block_on(read_all(&log));
    let expected: Vec<(i64, i64)> = (0..5).map(|i| (2 * i, 2 * i + 1)).collect();
    assert_eq!(offsets(&all), expected);
    append_many(&log, 1, 1, 10);
    block_on(log.flush()).unwrap();
    assert_eq!(log.high_watermark(), 11);
}

#[test]
fn recovery_truncates_at_flipped_byte() {
    let disk = MemDisk::new();
    let log = open_mem(&disk, small_config());
    append_many(&log, 6, 1, 200);
    block_on(log.flush()).unwrap();
    let all = block_on(read_all(&log));
    let positions: Vec<usize> = batches(&all).map(|b| b.unwrap().position).collect();
    drop(log); // crash: no close, no index files
    assert!(disk.corrupt(&segment_file(0, "log"), positions[3] as u64 + 70, 0x40));
    let log = open_mem(&disk, small_config());
    assert_eq!(log.next_offset(), 3, "cut at the corrupt batch");
    assert_eq!(block_on(read_all(&log)), all[..positions[3]]);
    let file = disk.contents(&segment_file(0, "log")).unwrap();
    assert!(
        file[positions[3]..].iter().all(|&b| b == 0),
        "stale bytes zeroed"
    );
}

#[test]
fn corruption_at_rest_is_never_served() {
    let disk = MemDisk::new();
    let log = open_mem(&disk, small_config());
    append_many(&log, 4, 1, 200);
    block_on(log.flush()).unwrap();
    let all = block_on(read_all(&log));
    let second = batches(&all).nth(1).unwrap().unwrap().position;
    assert!(disk.corrupt(&segment_file(0, "log"), second as u64 + 65, 1));
    let first_only = block_on(log.read(0, 1 << 20, true)).unwrap();
    assert_eq!(offsets(&first_only), vec![(0, 0)]);
    assert!(matches!(
        block_on(log.read(1, 1 << 20, true)),
        Err(StorageError::Corrupt { .. })
    ));
}

#[test]
fn recovery_cuts_garbage_after_the_end() {
    let disk = MemDisk::new();
    let log = open_mem(&disk, small_config());
    append_many(&log, 3, 1, 100);
    block_on(log.flush()).unwrap();
    let good = block_on(read_all(&log));
    drop(log);
    let path = segment_file(0, "log");
    let mut file = disk.contents(&path).unwrap();
    file[good.len()..good.len() + 200].fill(0xAB);
    disk.set_contents(&path, &file);
    let log = open_mem(&disk, small_config());
    assert_eq!(log.next_offset(), 3);
    let file = disk.contents(&path).unwrap();
    assert!(file[good.len()..].iter().all(|&b| b == 0));
    append_many(&log, 2, 1, 100);
    block_on(log.flush()).unwrap();
    drop(log);
    let log = open_mem(&disk, small_config());
    assert_eq!(log.next_offset(), 5);
}

#[test]
fn recovery_cuts_non_contiguous_offsets() {
    let disk = MemDisk::new();
    block_on(disk.create_dir_all(&dir())).unwrap();
    let mut file = build_test_batch(0, &[(None, Some(b"a")), (None, Some(b"b"))], 1);
    file.extend_from_slice(&build_test_batch(2, &[(None, Some(b"c"))], 2));
    let cut = file.len();
    file.extend_from_slice(&build_test_batch(7, &[(None, Some(b"d"))], 3));
    disk.set_contents(&segment_file(0, "log"), &file);
    let log = open_mem(&disk, small_config());
    assert_eq!(log.next_offset(), 3);
    assert_eq!(block_on(read_all(&log)), file[..cut]);
}

#[test]
fn recovery_drops_segments_after_a_gap() {
    let disk = MemDisk::new();
    let log = open_mem(&disk, small_config());
    append_many(&log, 40, 2, 1000);
    block_on(log.close()).unwrap();
    let files = log_files(&disk);
    block_on(disk.remove_file(&dir().join(&files[2]))).unwrap();
    let log = open_mem(&disk, small_config());
    let second_base: i64 = files[1].trim_end_matches(".log").parse().unwrap();
    let third_base: i64 = files[2].trim_end_matches(".log").parse().unwrap();
    assert!(log.next_offset() == third_base && log.next_offset() > second_base);
    assert_eq!(log_files(&disk).len(), 2);
}

#[test]
fn missing_or_bad_index_is_rebuilt() {
    let disk = MemDisk::new();
    let log = open_mem(&disk, small_config());
    append_many(&log, 12, 5, 300);
    block_on(log.close()).unwrap();
    let index = disk.contents(&segment_file(0, "index")).unwrap();
    assert!(index.len() >= 16, "several index entries");
    block_on(disk.remove_file(&segment_file(0, "index"))).unwrap();
    let log = open_mem(&disk, small_config());
    assert_eq!(disk.contents(&segment_file(0, "index")).unwrap(), index);
    assert_eq!(
        offsets(&block_on(log.read(33, 1, true)).unwrap()),
        vec![(30, 34)]
    );
    block_on(log.close()).unwrap();
    // An entry pointing into the middle of a batch: distrusted, rebuilt.
    let mut bad = index.clone();
    let last = bad.len() - 4;
    bad[last + 3] = bad[last + 3].wrapping_add(1);
    disk.set_contents(&segment_file(0, "index"), &bad);
    let log = open_mem(&disk, small_config());
    assert_eq!(log.next_offset(), 60);
    assert_eq!(disk.contents(&segment_file(0, "index")).unwrap(), index);
}

// ---- crash property: acknowledged data survives any torn crash ----

#[derive(Debug, Clone)]
enum Op {
    Append {
        records: usize,
        value_len: usize,
    },
    Flush,
    /// Flush whose fdatasync fails, then power loss keeping `keep` bytes of
    /// the unsynced writes, then reopen.
    TornCrash {
        keep: usize,
    },
    /// Clean close and reopen.
    Reopen,
}

fn op_strategy() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (1usize..6, 0usize..3000).prop_map(|(records, value_len)| Op::Append { records, value_len }),
        2 => Just(Op::Flush),
        1 => (0usize..20_000).prop_map(|keep| Op::TornCrash { keep }),
        1 => Just(Op::Reopen),
    ]
}

/// Runs `ops`; after every reopen the log must start with every byte
/// acknowledged (flushed) before, and be whole and dense.
fn check_crash_ops(ops: &[Op]) {
    let disk = MemDisk::new();
    let mut log = open_mem(&disk, small_config());
    let mut acked = Vec::new();
    for op in ops {
        match op {
            Op::Append { records, value_len } => {
                log.append(&mut batch(*records, *value_len, 7)).unwrap();
            }
            Op::Flush => {
                block_on(log.flush()).unwrap();
                acked = block_on(read_all(&log));
            }
            Op::TornCrash { keep } => {
                disk.fail_syncs(Some(libc::EIO));
                let _ = block_on(log.flush());
                drop(log);
                disk.fail_syncs(None);
                disk.crash_tearing(*keep);
                log = open_mem(&disk, small_config());
            }
            Op::Reopen => {
                block_on(log.close()).unwrap();
                acked = block_on(read_all(&log));
                log = open_mem(&disk, small_config());
            }
        }
        let all = block_on(read_all(&log));
        assert!(
            all.starts_with(&acked),
            "acknowledged bytes lost after {op:?}"
        );
        let offsets = offsets(&all);
        assert!(
            offsets.windows(2).all(|w| w[1].0 == w[0].1 + 1),
            "offsets not dense"
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn acknowledged_data_survives_torn_crashes(ops in proptest::collection::vec(op_strategy(), 1..40)) {
        check_crash_ops(&ops);
    }
}

// ---- regressions found by the seeded simulation (tests/sim_storage.rs) ----

#[test]
fn flipped_base_offset_of_a_later_batch_is_not_served() {
    let disk = MemDisk::new();
    let log = open_mem(&disk, small_config());
    append_many(&log, 3, 1, 100);
    block_on(log.flush()).unwrap();
    let all = block_on(read_all(&log));
    let third = batches(&all).nth(2).unwrap().unwrap().position;
    // baseOffset is outside the CRC: only the density check can catch it.
    assert!(disk.corrupt(&segment_file(0, "log"), third as u64 + 7, 0x10));
    let bytes = block_on(log.read(0, 1 << 20, true)).unwrap();
    assert_eq!(
        offsets(&bytes),
        vec![(0, 0), (1, 1)],
        "stops before the bad batch"
    );
    assert!(matches!(
        block_on(log.read(2, 1 << 20, true)),
        Err(StorageError::Corrupt { .. })
    ));
}

#[test]
fn recovery_drops_time_index_entries_of_cut_batches() {
    // First without offset-index entries: close leaves the time index
    // [(500, 4)] beside an empty offset index.
    let sparse = LogConfig {
        index_interval_bytes: 1 << 20,
        ..small_config()
    };
    let dense = LogConfig {
        index_interval_bytes: 1,
        ..small_config()
    };
    let disk = MemDisk::new();
    let log = open_mem(&disk, sparse);
    for ts in [100, 200, 300, 400, 500] {
        log.append(&mut batch(1, 100, ts)).unwrap();
    }
    block_on(log.close()).unwrap();
    let all = block_on(read_all(&log));
    let second = batches(&all).nth(1).unwrap().unwrap().position;
    drop(log);
    // Corrupt the second batch: recovery cuts the log to offset 1, and the
    // entry (500, 4) describes batches that are gone.
    assert!(disk.corrupt(&segment_file(0, "log"), second as u64 + 70, 1));
    let log = open_mem(&disk, dense);
    assert_eq!(log.next_offset(), 1);
    for ts in [600, 700, 800, 900] {
        log.append(&mut batch(1, 100, ts)).unwrap();
    }
    block_on(log.flush()).unwrap();
    assert_eq!(
        block_on(log.offset_for_timestamp(550)).unwrap(),
        Some((1, 600))
    );
}

#[test]
fn index_written_without_its_time_index_keeps_lookups_right() {
    let disk = MemDisk::new();
    let log = open_mem(&disk, small_config());
    for i in 0..6 {
        log.append(&mut batch(2, 400, 1_000 + 10 * i)).unwrap();
    }
    block_on(log.close()).unwrap(); // indexes cover offsets 0..12
    let log = open_mem(&disk, small_config());
    for i in 6..12 {
        let ts = if i == 8 { 5_000 } else { 1_000 + 10 * i };
        log.append(&mut batch(2, 400, ts)).unwrap();
    }
    block_on(log.flush()).unwrap();
    assert_eq!(log_files(&disk).len(), 1, "one segment");
    drop(log); // crash: the index files still describe offsets 0..12
    let index_before = disk.contents(&segment_file(0, "index")).unwrap();
    let time_before = disk.contents(&segment_file(0, "timeindex")).unwrap();
    // Recovery rewrites both indexes; stop it right after the first one.
    let mut stopped_between = false;
    for ops in 0..64 {
        disk.fail_after(ops, libc::EIO);
        let opened = block_on(PartitionLog::open(disk.clone(), dir(), small_config()));
        disk.clear_faults();
        let index_new = disk.contents(&segment_file(0, "index")).unwrap() != index_before;
        let time_new = disk.contents(&segment_file(0, "timeindex")).unwrap() != time_before;
        if index_new || time_new {
            assert!(opened.is_err() && index_new != time_new, "ops {ops}");
            stopped_between = true;
            break;
        }
    }
    assert!(
        stopped_between,
        "no fault point between the two index writes"
    );
    let log = open_mem(&disk, small_config());
    assert_eq!(
        block_on(log.offset_for_timestamp(4_000)).unwrap(),
        Some((16, 5_000))
    );
}
