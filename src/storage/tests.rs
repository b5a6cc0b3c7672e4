//! Unit tests of the partition log: on [`MemDisk`] (deterministic, crash and
//! fault injection) and a few on the real [`DmaDisk`] in a tempdir.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::executor::block_on;

use crate::protocol::batch::{batches, build_test_batch};

use super::*;

/// Small segments and dense indexes so tests exercise rolls and lookups.
fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 << 10,
        index_interval_bytes: 512,
        preallocate_bytes: 8 << 10,
        ..LogConfig::default()
    }
}

/// One valid v2 batch of `records` records of `value_len` bytes each.
fn batch(records: usize, value_len: usize, timestamp: i64) -> Vec<u8> {
    let value = vec![b'v'; value_len];
    let recs: Vec<_> = (0..records).map(|_| (None, Some(&value[..]))).collect();
    build_test_batch(0, &recs, timestamp)
}

fn dir() -> PathBuf {
    PathBuf::from("/data/topic-0")
}

fn open_mem(disk: &MemDisk, config: LogConfig) -> PartitionLog<MemDisk> {
    block_on(PartitionLog::open(disk.clone(), dir(), config)).expect("open")
}

/// (base offset, last offset, timestamp) of every batch in `bytes`.
fn offsets(bytes: &[u8]) -> Vec<(i64, i64)> {
    batches(bytes)
        .map(|b| b.expect("whole batches"))
        .map(|b| (b.header.base_offset(), b.header.last_offset()))
        .collect()
}

/// Reads the whole durable log, batch by batch.
async fn read_all<D: Disk>(log: &PartitionLog<D>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let bytes = log.read(offset, 1 << 20, true).await.expect("read");
        let (_, last) = *offsets(&bytes).last().expect("a batch");
        out.extend_from_slice(&bytes);
        offset = last + 1;
    }
    out
}

/// Appends `count` batches of `records` records each, one append per batch.
fn append_many<D: Disk>(log: &PartitionLog<D>, count: usize, records: usize, value_len: usize) {
    for i in 0..count {
        let mut b = batch(records, value_len, 1_000 + i as i64);
        log.append(&mut b).expect("append");
    }
}

fn log_files(disk: &MemDisk) -> Vec<String> {
    let names = block_on(disk.list_dir(&dir())).unwrap();
    names.into_iter().filter(|n| n.ends_with(".log")).collect()
}

fn segment_file(base: i64, extension: &str) -> PathBuf {
    dir().join(format!("{base:020}.{extension}"))
}

#[test]
fn offsets_are_dense_across_batches_and_appends() {
    let disk = MemDisk::new();
    let log = open_mem(&disk, small_config());
    let mut two = batch(3, 10, 1);
    two.extend_from_slice(&batch(1, 10, 2));
    assert_eq!(
        log.append(&mut two).unwrap(),
        AppendInfo {
            base_offset: 0,
            last_offset: 3
        }
    );
    let mut five = batch(5, 10, 3);
    assert_eq!(
        log.append(&mut five).unwrap(),
        AppendInfo {
            base_offset: 4,
            last_offset: 8
        }
    );
    assert_eq!(
        offsets(&two),
        vec![(0, 2), (3, 3)],
        "append rewrites baseOffset in place"
    );
    block_on(log.flush()).unwrap();
    let all = block_on(read_all(&log));
    assert_eq!(offsets(&all), vec![(0, 2), (3, 3), (4, 8)]);
    assert_eq!(log.next_offset(), 9);
}

#[test]
fn append_refuses_partial_or_empty_input() {
    let log = open_mem(&MemDisk::new(), small_config());
    let mut torn = batch(2, 10, 1);
    torn.truncate(torn.len() - 1);
    assert!(matches!(
        log.append(&mut torn),
        Err(StorageError::InvalidBatch(_))
    ));
    assert!(matches!(
        log.append(&mut []),
        Err(StorageError::InvalidBatch(_))
    ));
    assert_eq!(log.next_offset(), 0);
}

#[test]
fn high_watermark_advances_only_on_flush() {
    let log = open_mem(&MemDisk::new(), small_config());
    append_many(&log, 3, 2, 100);
    assert_eq!((log.next_offset(), log.high_watermark()), (6, 0));
    assert!(log.pending_bytes() > 0);
    assert_eq!(block_on(log.read(0, 1 << 20, true)).unwrap(), Bytes::new());
    let past = block_on(log.read(1, 1 << 20, true));
    assert!(matches!(
        past,
        Err(StorageError::OffsetOutOfRange {
            offset: 1,
            high_watermark: 0,
            ..
        })
    ));
    block_on(log.flush()).unwrap();
    assert_eq!((log.high_watermark(), log.pending_bytes()), (6, 0));
    assert_eq!(offsets(&block_on(read_all(&log))).len(), 3);
}

#[test]
fn concurrent_flushes_share_and_all_succeed() {
    let log = open_mem(&MemDisk::new(), small_config());
    append_many(&log, 5, 1, 300);
    let (a, b) = block_on(async { futures::join!(log.flush(), log.flush()) });
    a.unwrap();
    b.unwrap();
    assert_eq!(log.high_watermark(), 5);
}

#[test]
fn rolls_at_segment_bytes_and_reads_across_segments() {
    let disk = MemDisk::new();
    let log = open_mem(&disk, small_config());
    append_many(&log, 40, 2, 1000); // ~2 KiB each, 16 KiB segments
    block_on(log.flush()).unwrap();
    let files = log_files(&disk);
    assert!(files.len() >= 5, "{files:?}");
    for name in &files[..files.len() - 1] {
        let size = disk.contents(&dir().join(name)).unwrap().len() as u64;
        assert!(
            size <= small_config().segment_bytes,
            "{name} is {size} bytes"
        );
    }
    let all = block_on(read_all(&log));
    let expected: Vec<_> = (0..40).map(|i| (2 * i, 2 * i + 1)).collect();
    assert_eq!(offsets(&all), expected);
}

#[test]
fn read_from_middle_offset_returns_containing_batch() {
    let log = open_mem(&MemDisk::new(), small_config());
    append_many(&log, 30, 5, 200);
    block_on(log.flush()).unwrap();
    let bytes = block_on(log.read(77, 1, true)).unwrap();
    assert_eq!(offsets(&bytes), vec![(75, 79)]);
    assert_eq!(
        block_on(log.read(150, 1 << 20, true)).unwrap(),
        Bytes::new()
    );
}

#[test]
fn read_honours_max_bytes_and_min_one() {
    let log = open_mem(&MemDisk::new(), small_config());
    append_many(&log, 6, 1, 1000);
    block_on(log.flush()).unwrap();
    let one = block_on(log.read(0, 10, true)).unwrap();
    let len = one.len();
    assert_eq!(offsets(&one), vec![(0, 0)]);
    assert_eq!(block_on(log.read(0, 10, false)).unwrap(), Bytes::new());
    let two = block_on(log.read(0, 2 * len + len / 2, false)).unwrap();
    assert_eq!(offsets(&two), vec![(0, 0), (1, 1)]);
    let below = block_on(log.read(-1, 10, true));
    assert!(matches!(below, Err(StorageError::OffsetOutOfRange { .. })));
}

#[test]
fn reopen_after_close_returns_identical_bytes_and_continues() {
    let disk = MemDisk::new();
    let log = open_mem(&disk, small_config());
    append_many(&log, 25, 3, 333);
    block_on(log.close()).unwrap();
    let before = block_on(read_all(&log));
    assert!(
        log.append(&mut batch(1, 1, 1)).is_err(),
        "closed log refuses appends"
    );
    let log = open_mem(&disk, small_config());
    assert_eq!((log.next_offset(), log.high_watermark()), (75, 75));
    assert_eq!(block_on(read_all(&log)), before);
    append_many(&log, 3, 1, 10); // continues the partial tail block
    block_on(log.flush()).unwrap();
    drop(log);
    let log = open_mem(&disk, small_config());
    let all = block_on(read_all(&log));
    assert_eq!(&all[..before.len()], &before[..]);
    assert_eq!(offsets(&all).last(), Some(&(77, 77)));
}

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

#[test]
fn offset_for_timestamp_finds_first_batch_at_or_after() {
    let disk = MemDisk::new();
    let log = open_mem(&disk, small_config());
    for i in 0..30 {
        log.append(&mut batch(2, 1000, 100 * (i + 1))).unwrap();
    }
    assert_eq!(
        block_on(log.offset_for_timestamp(0)).unwrap(),
        None,
        "nothing durable"
    );
    block_on(log.flush()).unwrap();
    assert!(log_files(&disk).len() > 2);
    let at = |ts| block_on(log.offset_for_timestamp(ts)).unwrap();
    assert_eq!(at(0), Some((0, 100)));
    assert_eq!(at(250), Some((4, 300)));
    assert_eq!(at(2_000), Some((38, 2_000)));
    assert_eq!(at(2_950), Some((58, 3_000)));
    assert_eq!(at(3_001), None);
    block_on(log.close()).unwrap();
    let log = open_mem(&disk, small_config());
    assert_eq!(
        block_on(log.offset_for_timestamp(2_950)).unwrap(),
        Some((58, 3_000))
    );
}

#[test]
fn failed_write_poisons_the_log() {
    let disk = MemDisk::new();
    let log = open_mem(&disk, small_config());
    append_many(&log, 2, 1, 10);
    disk.fail_writes(Some(libc::ENOSPC));
    let err = block_on(log.flush()).unwrap_err();
    assert!(err.to_string().contains("write segment"), "{err}");
    assert_eq!(log.high_watermark(), 0);
    assert!(matches!(
        block_on(log.flush()),
        Err(StorageError::Failed { .. })
    ));
}

#[test]
fn delete_removes_the_directory() {
    let disk = MemDisk::new();
    let log = open_mem(&disk, small_config());
    append_many(&log, 2, 1, 10);
    block_on(log.flush()).unwrap();
    block_on(log.delete()).unwrap();
    assert!(!block_on(disk.exists(&dir())).unwrap());
}

// ---- real disk (glommio DmaDisk) ----

fn run_glommio<F, T>(f: impl FnOnce() -> F + Send + 'static) -> T
where
    F: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    let ex = glommio::LocalExecutorBuilder::default()
        .make()
        .expect("executor");
    ex.run(async move { f().await })
}

async fn open_dma(data_dir: &Path, config: LogConfig) -> PartitionLog<DmaDisk> {
    prime_dma_io(data_dir).await.expect("prime");
    PartitionLog::open(DmaDisk, data_dir.join("t-0"), config)
        .await
        .expect("open")
}

#[test]
fn dma_append_flush_read_close_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().to_path_buf();
    run_glommio(move || async move {
        let log = open_dma(&data_dir, small_config()).await;
        append_many(&log, 50, 3, 700);
        log.flush().await.unwrap();
        assert_eq!(log.high_watermark(), 150);
        assert_eq!(
            offsets(&log.read(100, 1, true).await.unwrap()),
            vec![(99, 101)]
        );
        let before = read_all(&log).await;
        log.close().await.unwrap();
        let log = open_dma(&data_dir, small_config()).await;
        assert_eq!(read_all(&log).await, before);
        assert_eq!(
            log.offset_for_timestamp(1_010).await.unwrap(),
            Some((30, 1_010))
        );
        append_many(&log, 2, 1, 10);
        log.flush().await.unwrap();
        assert_eq!(log.high_watermark(), 152);
    });
}

#[test]
fn dma_recovery_cuts_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().to_path_buf();
    run_glommio(move || async move {
        let log = open_dma(&data_dir, LogConfig::default()).await;
        append_many(&log, 10, 2, 100);
        log.flush().await.unwrap();
        let good = read_all(&log).await;
        drop(log); // crash: preallocated, no index
        let path = data_dir.join("t-0").join(format!("{:020}.log", 0));
        let mut bytes = std::fs::read(&path).unwrap();
        let torn = batch(3, 100, 5);
        let torn_with_offset = [&20i64.to_be_bytes()[..], &torn[8..60]].concat();
        bytes[good.len()..good.len() + 60].copy_from_slice(&torn_with_offset);
        std::fs::write(&path, &bytes).unwrap();
        let log = open_dma(&data_dir, LogConfig::default()).await;
        assert_eq!(log.next_offset(), 20);
        assert_eq!(read_all(&log).await, good);
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(
            size >= PREALLOCATE_BYTES_FIRST,
            "preallocated again: {size}"
        );
        log.delete().await.unwrap();
        assert!(!data_dir.join("t-0").exists());
    });
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
