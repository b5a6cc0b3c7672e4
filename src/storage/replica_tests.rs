//! Tests of the replication foundation on [`MemDisk`] (and one on the real
//! [`DmaDisk`]): `append_replica`, `truncate_to` (with a crash after every
//! mutating disk operation), and the leader-epoch cache as the log keeps it
//! (file, rebuild, trimming at both ends). Helpers are `tests.rs`'s.

use futures::executor::block_on;

use crate::protocol::batch::{batches, build_test_batch, set_partition_leader_epoch};

use super::tests::{dir, offsets, open_mem, read_all, small_config};
use super::*;

/// A batch of `records` records of 300 bytes stamped with `epoch`.
fn epoch_batch(epoch: i32, records: usize, timestamp: i64) -> Vec<u8> {
    let value = vec![b'r'; 300];
    let recs: Vec<_> = (0..records).map(|_| (None, Some(&value[..]))).collect();
    let mut b = build_test_batch(0, &recs, timestamp);
    set_partition_leader_epoch(&mut b, epoch);
    b
}

/// A leader log: 40 batches of 3 records under epochs 0, 0.., 2.., 5..,
/// spread over several segments; flushed.
fn leader_log(disk: &MemDisk) -> PartitionLog<MemDisk> {
    let log = open_mem(disk, small_config());
    for i in 0..40 {
        let epoch = match i {
            0..=14 => 0,
            15..=29 => 2,
            _ => 5,
        };
        let mut b = epoch_batch(epoch, 3, 1_000 + i);
        log.append(&mut b).expect("append");
    }
    block_on(log.flush()).expect("flush");
    log
}

fn pairs(log: &PartitionLog<MemDisk>) -> Vec<(i32, i64)> {
    log.epoch_entries()
        .iter()
        .map(|e| (e.epoch, e.start_offset))
        .collect()
}

/// (base offset, epoch) of every batch in `bytes`.
fn batch_epochs(bytes: &[u8]) -> Vec<(i64, i32)> {
    batches(bytes)
        .map(|b| b.expect("whole batches"))
        .map(|b| (b.header.base_offset(), b.header.partition_leader_epoch()))
        .collect()
}

fn epoch_file(disk: &MemDisk) -> Option<String> {
    let bytes = disk.contents(&dir().join(LEADER_EPOCH_FILE_NAME))?;
    Some(String::from_utf8(bytes).expect("text"))
}

#[test]
fn append_stamped_batches_builds_the_epoch_cache_and_its_file() {
    let disk = MemDisk::new();
    let log = leader_log(&disk);
    assert_eq!(pairs(&log), [(0, 0), (2, 45), (5, 90)]);
    assert_eq!(log.latest_epoch(), Some(5));
    assert_eq!(
        epoch_file(&disk).as_deref(),
        Some("0\n3\n0 0\n2 45\n5 90\n")
    );
    assert_eq!(log.end_offset_for(5), (5, 120));
    assert_eq!(log.end_offset_for(2), (2, 90));
    assert_eq!(log.end_offset_for(3), (2, 90));
    assert_eq!(log.end_offset_for(6), (-1, -1));
    assert_eq!(log.diverging_epoch(5, 120), Divergence::Consistent);
    assert_eq!(
        log.diverging_epoch(2, 100),
        Divergence::Diverging {
            epoch: 2,
            end_offset: 90
        }
    );
}

#[test]
fn append_replica_keeps_leader_offsets_epochs_and_bytes() {
    let leader_disk = MemDisk::new();
    let leader = leader_log(&leader_disk);
    let mut bytes = block_on(read_all(&leader));
    let disk = MemDisk::new();
    let follower = open_mem(&disk, small_config());
    // Two fetches' worth: a prefix, then the rest.
    let split = batches(&bytes)
        .nth(17)
        .expect("batch 17")
        .expect("whole")
        .position;
    let (head, tail) = bytes.split_at_mut(split);
    let info = follower.append_replica(head).expect("append head");
    assert_eq!((info.base_offset, info.last_offset), (0, 50));
    let info = follower.append_replica(tail).expect("append tail");
    assert_eq!((info.base_offset, info.last_offset), (51, 119));
    block_on(follower.flush()).expect("flush");
    assert_eq!(block_on(read_all(&follower)), bytes);
    assert_eq!(follower.next_offset(), leader.next_offset());
    assert_eq!(pairs(&follower), pairs(&leader));
    assert_eq!(follower.segment_bases(), leader.segment_bases());
    assert_eq!(
        block_on(follower.offset_for_timestamp(1_020)).unwrap(),
        block_on(leader.offset_for_timestamp(1_020)).unwrap()
    );
    block_on(follower.close()).expect("close");
    let reopened = open_mem(&disk, small_config());
    assert_eq!(block_on(read_all(&reopened)), bytes);
    assert_eq!(pairs(&reopened), [(0, 0), (2, 45), (5, 90)]);
}

#[test]
fn append_replica_refuses_gaps_overlaps_and_bad_crc_writing_nothing() {
    let leader_disk = MemDisk::new();
    let leader = leader_log(&leader_disk);
    let bytes = block_on(read_all(&leader));
    let disk = MemDisk::new();
    let follower = open_mem(&disk, small_config());
    let at = |n: usize| {
        batches(&bytes)
            .nth(n)
            .expect("batch")
            .expect("whole")
            .position
    };
    follower
        .append_replica(&mut bytes[..at(2)].to_vec())
        .expect("first two batches");
    let refuse = |mut b: Vec<u8>, expected: i64, found: i64| {
        let err = follower.append_replica(&mut b).expect_err("refused");
        let ok = matches!(err, StorageError::NonContiguousReplica { expected: e, found: f, .. } if e == expected && f == found);
        assert!(ok, "{err}");
    };
    refuse(bytes[at(3)..at(4)].to_vec(), 6, 9); // a gap
    refuse(bytes[at(1)..at(3)].to_vec(), 6, 3); // an overlap
                                                // Contiguous first batch, then a gap: the whole call is refused.
    let mut gapped = bytes[at(2)..at(3)].to_vec();
    gapped.extend_from_slice(&bytes[at(4)..at(5)]);
    refuse(gapped, 9, 12);
    let mut corrupt = bytes[at(2)..at(3)].to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x40;
    let err = follower.append_replica(&mut corrupt).expect_err("bad crc");
    assert!(matches!(err, StorageError::InvalidBatch(_)), "{err}");
    let err = follower.append_replica(&mut [0u8; 10]).expect_err("torn");
    assert!(matches!(err, StorageError::InvalidBatch(_)), "{err}");
    assert_eq!(follower.next_offset(), 6);
    block_on(follower.flush()).expect("flush");
    assert_eq!(block_on(read_all(&follower)), bytes[..at(2)].to_vec());
}

#[test]
fn truncate_to_mid_batch_removes_that_batch_and_later_segments() {
    let disk = MemDisk::new();
    let log = leader_log(&disk);
    let before = block_on(read_all(&log));
    let segments_before = log.segment_count();
    assert!(segments_before >= 3, "several segments: {segments_before}");
    // Offset 100 is the middle of the batch 99..=101.
    block_on(log.truncate_to(100)).expect("truncate");
    assert_eq!(log.next_offset(), 99);
    assert_eq!(log.high_watermark(), 99);
    let after = block_on(read_all(&log));
    assert!(before.starts_with(&after));
    assert_eq!(offsets(&after).last(), Some(&(96, 98)));
    assert!(log.segment_bases().iter().all(|&base| base <= 99));
    assert_eq!(pairs(&log), [(0, 0), (2, 45), (5, 90)]);
    block_on(log.truncate_to(90)).expect("truncate to an epoch start");
    assert_eq!(pairs(&log), [(0, 0), (2, 45)]);
    assert_eq!(epoch_file(&disk).as_deref(), Some("0\n2\n0 0\n2 45\n"));
    assert_eq!(log.end_offset_for(2), (2, 90));
    // The log continues right after the cut, and survives a reopen.
    let mut b = epoch_batch(7, 2, 5_000);
    assert_eq!(log.append(&mut b).expect("append").base_offset, 90);
    block_on(log.close()).expect("close");
    let log = open_mem(&disk, small_config());
    assert_eq!(log.next_offset(), 92);
    assert_eq!(pairs(&log), [(0, 0), (2, 45), (7, 90)]);
    let reread = block_on(read_all(&log));
    assert_eq!(
        &reread[..],
        &[&before[..reread.len() - b.len()], &b[..]].concat()[..]
    );
}

#[test]
fn truncate_to_end_is_a_no_op_and_below_log_start_is_refused() {
    let disk = MemDisk::new();
    let log = leader_log(&disk);
    block_on(log.truncate_to(120)).expect("at the end");
    block_on(log.truncate_to(500)).expect("past the end");
    assert_eq!(log.next_offset(), 120);
    assert_eq!(
        block_on(log.delete_records(61)).expect("delete records"),
        61
    );
    // The batch holding 61 starts at 60, below the log start.
    for offset in [10, 61] {
        let err = block_on(log.truncate_to(offset)).expect_err("below start");
        assert!(
            matches!(
                err,
                StorageError::TruncateBelowLogStart { log_start: 61, .. }
            ),
            "{err}"
        );
    }
    assert_eq!(log.next_offset(), 120, "nothing cut");
    block_on(log.truncate_to(63)).expect("above the start");
    assert_eq!((log.log_start_offset(), log.next_offset()), (61, 63));
    assert_eq!(pairs(&log), [(2, 61)]);
}

#[test]
fn truncate_to_a_segment_base_and_to_zero() {
    let disk = MemDisk::new();
    let log = leader_log(&disk);
    let second = log.segment_bases()[1];
    block_on(log.truncate_to(second)).expect("truncate");
    assert_eq!(log.next_offset(), second);
    assert_eq!(*log.segment_bases().last().unwrap(), second);
    block_on(log.truncate_to(0)).expect("truncate to 0");
    assert_eq!((log.next_offset(), log.segment_bases()), (0, vec![0]));
    assert!(pairs(&log).is_empty());
    // The log starts again at 0, under a new epoch.
    let mut b = epoch_batch(9, 1, 1);
    let info = log.append_replica(&mut b).expect("append at 0");
    assert_eq!((info.base_offset, info.last_offset), (0, 0));
    block_on(log.flush()).expect("flush");
    assert_eq!(pairs(&log), [(9, 0)]);
}

/// A crash (process or power) after any number of mutating disk
/// operations of a truncation leaves a log that opens as a prefix of the
/// log before it, at least as long as the cut, with an epoch cache that
/// matches its batches.
#[test]
fn crash_during_truncate_to_leaves_a_prefix() {
    let mut finished = false;
    for ops in 0..200 {
        let disk = MemDisk::new();
        let log = leader_log(&disk);
        let before = block_on(read_all(&log));
        disk.fail_after(ops, libc::EIO);
        let result = block_on(log.truncate_to(34));
        disk.clear_faults();
        drop(log);
        disk.crash();
        let log = open_mem(&disk, small_config());
        let after = block_on(read_all(&log));
        assert!(before.starts_with(&after), "not a prefix after {ops}");
        assert!(
            log.next_offset() >= 33,
            "lost data before the cut after {ops}"
        );
        let expected: Vec<(i32, i64)> = [(0, 0), (2, 45), (5, 90)]
            .into_iter()
            .filter(|&(_, start)| start < log.next_offset())
            .collect();
        assert_eq!(pairs(&log), expected, "epochs after {ops} ({result:?})");
        let first_epochs = batch_epochs(&after).first().copied();
        assert!(first_epochs.is_none_or(|(base, epoch)| (base, epoch) == (0, 0)));
        if result.is_ok() {
            assert_eq!(log.next_offset(), 33, "after {ops}");
            finished = true;
            break;
        }
    }
    assert!(
        finished,
        "the truncation never completed within the fault budget"
    );
}

#[test]
fn missing_behind_or_ahead_epoch_file_is_fixed_on_open() {
    let disk = MemDisk::new();
    let log = leader_log(&disk);
    block_on(log.close()).expect("close");
    let path = dir().join(LEADER_EPOCH_FILE_NAME);
    let expected = "0\n3\n0 0\n2 45\n5 90\n";
    for (name, content) in [
        ("missing", None),
        ("behind", Some("0\n1\n0 0\n")),
        ("garbage", Some("not a checkpoint")),
        ("ahead", Some("0\n5\n0 0\n2 45\n5 90\n6 120\n8 300\n")),
    ] {
        match content {
            None => block_on(disk.remove_file(&path)).expect("remove"),
            Some(text) => disk.set_contents(&path, text.as_bytes()),
        }
        let log = open_mem(&disk, small_config());
        assert_eq!(pairs(&log), [(0, 0), (2, 45), (5, 90)], "{name}");
        assert_eq!(epoch_file(&disk).as_deref(), Some(expected), "{name}");
        block_on(log.close()).expect("close");
    }
}

#[test]
fn unstamped_log_has_no_epochs_and_no_file() {
    let disk = MemDisk::new();
    let log = open_mem(&disk, small_config());
    super::tests::append_many(&log, 10, 2, 100);
    block_on(log.close()).expect("close");
    let log = open_mem(&disk, small_config());
    assert_eq!(log.latest_epoch(), None);
    assert_eq!(log.end_offset_for(0), (-1, -1));
    assert_eq!(epoch_file(&disk), None);
}

#[test]
fn delete_records_and_retention_trim_the_epoch_cache_from_the_start() {
    let disk = MemDisk::new();
    let log = leader_log(&disk);
    assert_eq!(block_on(log.delete_records(50)).expect("delete"), 50);
    assert_eq!(pairs(&log), [(2, 50), (5, 90)]);
    assert_eq!(epoch_file(&disk).as_deref(), Some("0\n2\n2 50\n5 90\n"));
    let policy = RetentionPolicy {
        retention_ms: 0,
        retention_bytes: -1,
    };
    block_on(log.enforce_retention(1_000_000, policy)).expect("retention");
    assert_eq!(log.log_start_offset(), 120);
    assert_eq!(pairs(&log), [(5, 120)]);
    assert_eq!(log.end_offset_for(5), (5, 120));
    drop(log);
    disk.crash();
    // An entry at the log end describes no batch: loading drops it, as
    // Kafka's truncateFromEnd at load does.
    let log = open_mem(&disk, small_config());
    assert_eq!((log.log_start_offset(), log.next_offset()), (120, 120));
    assert_eq!(pairs(&log), []);
}

/// The same on the real O_DIRECT files: replica append, truncation, the
/// epoch file, reopen.
#[test]
fn dma_append_replica_truncate_and_epoch_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().to_path_buf();
    let leader_disk = MemDisk::new();
    let leader = leader_log(&leader_disk);
    let bytes = block_on(read_all(&leader));
    super::tests::run_glommio(move || async move {
        let log = super::tests::open_dma(&data_dir, small_config()).await;
        log.append_replica(&mut bytes.clone()).expect("append");
        log.flush().await.expect("flush");
        assert_eq!(read_all(&log).await, bytes);
        log.truncate_to(100).await.expect("truncate");
        assert_eq!(log.next_offset(), 99);
        log.close().await.expect("close");
        let text = std::fs::read_to_string(data_dir.join("t-0").join(LEADER_EPOCH_FILE_NAME));
        assert_eq!(text.expect("epoch file"), "0\n3\n0 0\n2 45\n5 90\n");
        let log = super::tests::open_dma(&data_dir, small_config()).await;
        assert_eq!(log.next_offset(), 99);
        let reread = read_all(&log).await;
        assert!(bytes.starts_with(&reread) && !reread.is_empty());
        assert_eq!(log.end_offset_for(2), (2, 90));
    });
}

#[test]
fn reset_to_past_the_end_empties_the_log_and_continues_at_the_target() {
    let disk = MemDisk::new();
    let log = leader_log(&disk);
    assert_eq!(log.next_offset(), 120);
    let err = block_on(log.reset_to(119)).expect_err("below the end");
    assert!(
        matches!(err, StorageError::ResetBelowLogEnd { end: 120, .. }),
        "{err}"
    );
    block_on(log.reset_to(500)).expect("reset");
    assert_eq!(
        (
            log.log_start_offset(),
            log.next_offset(),
            log.high_watermark()
        ),
        (500, 500, 500)
    );
    assert_eq!(log.segment_bases(), vec![500]);
    assert!(pairs(&log).is_empty(), "the epoch cache starts again");
    assert!(block_on(read_all(&log)).is_empty());
    // Still empty, it may move back (a leader's log start inside a batch).
    block_on(log.reset_to(490)).expect("an empty log moves back");
    assert_eq!((log.log_start_offset(), log.next_offset()), (490, 490));
    block_on(log.reset_to(500)).expect("reset");
    // The leader's batches continue at the target, and survive a reopen.
    let mut b = epoch_batch(8, 2, 9_000);
    crate::protocol::batch::set_base_offset(&mut b, 500);
    let info = log.append_replica(&mut b).expect("append at the target");
    assert_eq!((info.base_offset, info.last_offset), (500, 501));
    block_on(log.close()).expect("close");
    let log = open_mem(&disk, small_config());
    assert_eq!((log.log_start_offset(), log.next_offset()), (500, 502));
    assert_eq!(pairs(&log), [(8, 500)]);
    assert_eq!(offsets(&block_on(read_all(&log))), [(500, 501)]);
}

/// A crash after any number of mutating disk operations of a reset leaves
/// either the whole old log or an empty log whose start is at most the
/// target (from which the follower is refused again and resets again);
/// never a log with a hole or a stale epoch cache.
#[test]
fn crash_during_reset_to_leaves_the_old_log_or_an_empty_one() {
    let mut finished = false;
    for ops in 0..200 {
        let disk = MemDisk::new();
        let log = leader_log(&disk);
        let before = block_on(read_all(&log));
        disk.fail_after(ops, libc::EIO);
        let result = block_on(log.reset_to(300));
        disk.clear_faults();
        drop(log);
        disk.crash();
        let log = open_mem(&disk, small_config());
        let after = block_on(read_all(&log));
        assert!(before.ends_with(&after), "not a suffix after {ops}");
        if after.is_empty() {
            assert!(log.log_start_offset() <= 300, "after {ops}");
            assert_eq!(log.log_start_offset(), log.next_offset(), "after {ops}");
        } else {
            assert_eq!(log.next_offset(), 120, "after {ops}");
        }
        let got: Vec<i32> = pairs(&log).iter().map(|p| p.0).collect();
        if after.is_empty() {
            // At most the entry covering the log start (as after a
            // DeleteRecords to the end: Kafka's truncateFromStart keeps it).
            assert!(got.len() <= 1, "epochs after {ops} ({result:?}): {got:?}");
        } else {
            let mut expected: Vec<i32> = Vec::new();
            for (_, epoch) in batch_epochs(&after) {
                if expected.last() != Some(&epoch) {
                    expected.push(epoch);
                }
            }
            assert_eq!(got, expected, "epochs after {ops} ({result:?})");
        }
        if result.is_ok() {
            assert_eq!((log.log_start_offset(), log.next_offset()), (300, 300));
            finished = true;
            break;
        }
    }
    assert!(
        finished,
        "the reset never completed within the fault budget"
    );
}
