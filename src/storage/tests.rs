//! Unit tests of the partition log: append, flush, reads, rolls and
//! timestamp lookup on [`MemDisk`], and a few on the real [`DmaDisk`] in a
//! tempdir. Recovery, corruption and crash tests are in `recovery_tests.rs`,
//! which shares the helpers here.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::executor::block_on;

use crate::protocol::batch::{batches, build_test_batch};

use super::*;

/// Small segments and dense indexes so tests exercise rolls and lookups.
pub(super) fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 << 10,
        index_interval_bytes: 512,
        preallocate_bytes: 8 << 10,
        ..LogConfig::default()
    }
}

/// One valid v2 batch of `records` records of `value_len` bytes each.
pub(super) fn batch(records: usize, value_len: usize, timestamp: i64) -> Vec<u8> {
    let value = vec![b'v'; value_len];
    let recs: Vec<_> = (0..records).map(|_| (None, Some(&value[..]))).collect();
    build_test_batch(0, &recs, timestamp)
}

pub(super) fn dir() -> PathBuf {
    PathBuf::from("/data/topic-0")
}

pub(super) fn open_mem(disk: &MemDisk, config: LogConfig) -> PartitionLog<MemDisk> {
    block_on(PartitionLog::open(disk.clone(), dir(), config)).expect("open")
}

/// (base offset, last offset, timestamp) of every batch in `bytes`.
pub(super) fn offsets(bytes: &[u8]) -> Vec<(i64, i64)> {
    batches(bytes)
        .map(|b| b.expect("whole batches"))
        .map(|b| (b.header.base_offset(), b.header.last_offset()))
        .collect()
}

/// Reads the whole durable log, batch by batch.
pub(super) async fn read_all<D: Disk>(log: &PartitionLog<D>) -> Vec<u8> {
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
pub(super) fn append_many<D: Disk>(
    log: &PartitionLog<D>,
    count: usize,
    records: usize,
    value_len: usize,
) {
    for i in 0..count {
        let mut b = batch(records, value_len, 1_000 + i as i64);
        log.append(&mut b).expect("append");
    }
}

pub(super) fn log_files(disk: &MemDisk) -> Vec<String> {
    let names = block_on(disk.list_dir(&dir())).unwrap();
    names.into_iter().filter(|n| n.ends_with(".log")).collect()
}

pub(super) fn segment_file(base: i64, extension: &str) -> PathBuf {
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

pub(super) fn run_glommio<F, T>(f: impl FnOnce() -> F + Send + 'static) -> T
where
    F: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    let ex = glommio::LocalExecutorBuilder::default()
        .make()
        .expect("executor");
    ex.run(async move { f().await })
}

pub(super) async fn open_dma(data_dir: &Path, config: LogConfig) -> PartitionLog<DmaDisk> {
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

/// An empty small file (a segment's index before its first entry) reads
/// as empty on the real disk, and so does any zero-length read: glommio
/// 0.9 panicked the shard on one, which once made a restart with 10,000
/// one-batch partitions never become ready.
#[test]
fn dma_zero_length_reads_return_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().to_path_buf();
    run_glommio(move || async move {
        prime_dma_io(&data_dir).await.expect("prime");
        let path = data_dir.join("empty.index");
        std::fs::write(&path, b"").unwrap();
        let read = small_file::read_small_file(&DmaDisk, &path).await.unwrap();
        assert_eq!(read, Some(Vec::new()));
        let file = DmaDisk.open(&path).await.unwrap();
        assert!(file.read_at(0, 0).await.unwrap().is_empty());
        assert!(file
            .read_at(BLOCK_BYTES as u64, 0)
            .await
            .unwrap()
            .is_empty());
    });
}
