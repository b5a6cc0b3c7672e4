//! Tests of [`RaftLogStore`] on [`MemDisk`] (append, read, truncate, purge,
//! reopen, torn tails, corruption, a fault at every I/O step) and one on the
//! real O_DIRECT [`DmaDisk`].

use std::path::{Path, PathBuf};

use futures::executor::block_on;
use openraft::async_runtime::Oneshot;
use openraft::entry::RaftEntry;
use openraft::impls::leader_id_adv::LeaderId;
use openraft::storage::{IOFlushed, RaftLogReader, RaftLogStorage};

use openraft::testing::log::{StoreBuilder, Suite};
use openraft::AsyncRuntime;

use super::log_store::{LogStoreError, RaftLogStore, LOG_FILE_NAME, VOTE_FILE_NAME};
use super::runtime::{FuturesOneshot, GlommioRuntime};
use super::state_machine::ClusterStateMachine;
use super::types::ControllerRaft;
use super::types::{ClusterCommand, Entry, LogId, Vote};
use crate::storage::{prime_dma_io, DmaDisk, MemDisk};

fn dir() -> PathBuf {
    PathBuf::from("/data/controller")
}

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(LeaderId { term, node_id: 1 }, index)
}

fn entry(term: u64, index: u64) -> Entry {
    let command = ClusterCommand::RemoveTopic {
        name: format!("topic-{index}"),
    };
    Entry::new_normal(log_id(term, index), command)
}

fn entries(term: u64, indexes: std::ops::Range<u64>) -> Vec<Entry> {
    indexes.map(|i| entry(term, i)).collect()
}

fn open(disk: &MemDisk) -> RaftLogStore<MemDisk> {
    block_on(RaftLogStore::open(disk.clone(), &dir())).expect("open raft log store")
}

/// The (term, index) of every entry the store's reader returns.
fn ids(store: &RaftLogStore<MemDisk>) -> Vec<(u64, u64)> {
    let mut reader = store.reader();
    let all = block_on(reader.try_get_log_entries(..)).expect("read");
    all.iter()
        .map(|e| (e.log_id().committed_leader_id().term, e.index()))
        .collect()
}

fn range_ids(term: u64, indexes: std::ops::Range<u64>) -> Vec<(u64, u64)> {
    indexes.map(|i| (term, i)).collect()
}

#[test]
fn appended_entries_are_readable_and_survive_reopen() {
    let disk = MemDisk::new();
    let mut store = open(&disk);
    block_on(store.append_durably(entries(1, 0..5))).unwrap();
    block_on(store.append_durably(entries(2, 5..8))).unwrap();
    let mut reader = store.reader();
    let some = block_on(reader.try_get_log_entries(3..6)).unwrap();
    assert_eq!(some, vec![entry(1, 3), entry(1, 4), entry(2, 5)]);
    let state = store.log_state();
    assert_eq!(state.last_log_id, Some(log_id(2, 7)));
    assert_eq!(state.last_purged_log_id, None);
    drop(store);
    disk.crash(); // only what was synced counts
    let store = open(&disk);
    assert_eq!(
        block_on(store.reader().try_get_log_entries(..))
            .unwrap()
            .len(),
        8
    );
    assert_eq!(store.log_state().last_log_id, Some(log_id(2, 7)));
}

#[test]
fn append_through_the_raft_trait_acknowledges_after_sync() {
    let disk = MemDisk::new();
    let mut store = open(&disk);
    let (tx, rx) = FuturesOneshot::channel::<Result<(), std::io::Error>>();
    let callback = IOFlushed::signal(tx);
    block_on(RaftLogStorage::append(
        &mut store,
        entries(1, 0..3),
        callback,
    ))
    .unwrap();
    assert!(block_on(rx).unwrap().is_ok());
    disk.crash();
    assert_eq!(ids(&open(&disk)), range_ids(1, 0..3));
}

#[test]
fn append_with_a_hole_is_refused() {
    let disk = MemDisk::new();
    let mut store = open(&disk);
    block_on(store.append_durably(entries(1, 0..3))).unwrap();
    let refused = block_on(store.append_durably(entries(1, 4..5)));
    assert!(matches!(
        refused,
        Err(LogStoreError::NotConsecutive { index: 4, .. })
    ));
    block_on(store.append_durably(entries(1, 3..4))).unwrap();
    assert_eq!(ids(&store), range_ids(1, 0..4));
}

#[test]
fn truncate_after_removes_the_tail_durably_and_appends_continue() {
    let disk = MemDisk::new();
    let mut store = open(&disk);
    block_on(store.append_durably(entries(1, 0..10))).unwrap();
    block_on(store.truncate_after_durably(Some(&log_id(1, 5)))).unwrap();
    assert_eq!(ids(&store), range_ids(1, 0..6));
    block_on(store.append_durably(entries(3, 6..9))).unwrap();
    drop(store);
    disk.crash();
    let mut store = open(&disk);
    let mut expected = range_ids(1, 0..6);
    expected.extend(range_ids(3, 6..9));
    assert_eq!(ids(&store), expected);
    block_on(store.truncate_after_durably(None)).unwrap();
    assert!(ids(&store).is_empty());
    drop(store);
    disk.crash();
    assert!(ids(&open(&disk)).is_empty());
}

#[test]
fn purge_keeps_the_purged_id_and_the_rest_across_reopen() {
    let disk = MemDisk::new();
    let mut store = open(&disk);
    block_on(store.append_durably(entries(1, 0..10))).unwrap();
    block_on(store.purge_durably(&log_id(1, 3))).unwrap();
    assert_eq!(ids(&store), range_ids(1, 4..10));
    block_on(store.append_durably(entries(2, 10..12))).unwrap();
    drop(store);
    disk.crash();
    let mut store = open(&disk);
    let state = store.log_state();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 3)));
    assert_eq!(state.last_log_id, Some(log_id(2, 11)));
    // Purging everything leaves the purged id as the last log id.
    block_on(store.purge_durably(&log_id(2, 11))).unwrap();
    drop(store);
    disk.crash();
    let mut store = open(&disk);
    assert_eq!(store.log_state().last_log_id, Some(log_id(2, 11)));
    assert!(ids(&store).is_empty());
    block_on(store.append_durably(entries(2, 12..13))).unwrap();
    assert_eq!(ids(&store), range_ids(2, 12..13));
}

#[test]
fn saved_vote_survives_a_crash_and_is_seen_by_readers() {
    let disk = MemDisk::new();
    let mut store = open(&disk);
    let mut reader = store.reader();
    assert_eq!(block_on(reader.read_vote()).unwrap(), None);
    let vote = Vote::new(4, 2);
    block_on(store.save_vote_durably(&vote)).unwrap();
    assert_eq!(block_on(reader.read_vote()).unwrap(), Some(vote));
    drop(store);
    disk.crash();
    let store = open(&disk);
    assert_eq!(block_on(store.reader().read_vote()).unwrap(), Some(vote));
}

#[test]
fn corrupt_vote_file_is_an_error_not_a_forgotten_vote() {
    let disk = MemDisk::new();
    let mut store = open(&disk);
    block_on(store.save_vote_durably(&Vote::new(4, 2))).unwrap();
    drop(store);
    assert!(disk.corrupt(&dir().join(VOTE_FILE_NAME), 12, 0x01));
    let reopened = block_on(RaftLogStore::open(disk.clone(), &dir()));
    assert!(matches!(reopened, Err(LogStoreError::Corrupt { .. })));
}

/// Appends 0..3 durably, then 3..6 whose fdatasync fails, then crashes
/// keeping `keep_bytes` of the unsynced write.
fn torn_after_failed_sync(keep_bytes: usize) -> MemDisk {
    let disk = MemDisk::new();
    let mut store = open(&disk);
    block_on(store.append_durably(entries(1, 0..3))).unwrap();
    disk.fail_syncs(Some(libc::EIO));
    assert!(block_on(store.append_durably(entries(1, 3..6))).is_err());
    let refused = block_on(store.append_durably(entries(1, 6..7)));
    assert!(matches!(refused, Err(LogStoreError::Failed { .. })));
    drop(store);
    disk.clear_faults();
    disk.crash_tearing(keep_bytes);
    disk
}

#[test]
fn torn_tail_is_cut_at_the_last_whole_entry() {
    let log_path = dir().join(LOG_FILE_NAME);
    let full = {
        let disk = torn_after_failed_sync(usize::MAX);
        disk.contents(&log_path).unwrap().len()
    };
    for keep_bytes in (0..full).step_by(7).chain([full]) {
        let disk = torn_after_failed_sync(keep_bytes);
        let mut store = open(&disk);
        let got = ids(&store);
        assert!(
            got.len() >= 3 && got.len() <= 6,
            "keep {keep_bytes}: {got:?}"
        );
        assert_eq!(got, range_ids(1, 0..got.len() as u64), "keep {keep_bytes}");
        // The cut log takes appends again, and they survive a reopen.
        let next = got.len() as u64;
        block_on(store.append_durably(entries(2, next..next + 2))).unwrap();
        drop(store);
        disk.crash();
        assert_eq!(
            ids(&open(&disk)).len() as u64,
            next + 2,
            "keep {keep_bytes}"
        );
    }
}

/// Five entries on a fresh `MemDisk`, and the byte position of each frame.
fn five_entries() -> (MemDisk, PathBuf, Vec<usize>) {
    let disk = MemDisk::new();
    let mut store = open(&disk);
    block_on(store.append_durably(entries(1, 0..5))).unwrap();
    drop(store);
    let log_path = dir().join(LOG_FILE_NAME);
    let bytes = disk.contents(&log_path).unwrap();
    let mut frames = vec![0usize];
    for _ in 0..4 {
        let pos = *frames.last().unwrap();
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        frames.push(pos + 8 + len);
    }
    (disk, log_path, frames)
}

#[test]
fn flipped_byte_in_the_last_entry_cuts_it_as_a_torn_tail() {
    let (disk, log_path, frames) = five_entries();
    assert!(disk.corrupt(&log_path, frames[4] as u64 + 20, 0x40));
    let store = open(&disk);
    assert_eq!(ids(&store), range_ids(1, 0..4));
}

#[test]
fn flipped_byte_mid_log_fails_open_with_path_and_position() {
    let (disk, log_path, frames) = five_entries();
    // Entry 3's payload: entry 4 follows it whole.
    assert!(disk.corrupt(&log_path, frames[3] as u64 + 20, 0x40));
    let opened = block_on(RaftLogStore::open(disk.clone(), &dir()));
    match opened {
        Err(LogStoreError::Corrupt { path, position, .. }) => {
            assert_eq!(path, log_path);
            assert_eq!(position, frames[3] as u64);
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("a damaged mid-log entry must fail open"),
    }
    // Nothing was cut: the file still holds all five frames' bytes.
    assert!(disk.contents(&log_path).unwrap().len() > frames[4]);
}

#[test]
fn damaged_length_mid_log_fails_open_too() {
    let (disk, log_path, frames) = five_entries();
    // Entry 1's length field: the next frame is found by the byte scan.
    assert!(disk.corrupt(&log_path, frames[1] as u64 + 2, 0x7f));
    let opened = block_on(RaftLogStore::open(disk.clone(), &dir()));
    assert!(
        matches!(opened, Err(LogStoreError::Corrupt { position, .. }) if position == frames[1] as u64)
    );
}

#[test]
fn garbage_file_opens_as_an_empty_log() {
    let disk = MemDisk::new();
    block_on(crate::storage::Disk::create_dir_all(&disk, &dir())).unwrap();
    disk.set_contents(&dir().join(LOG_FILE_NAME), &[0xAB; 5000]);
    let store = open(&disk);
    assert!(ids(&store).is_empty());
    assert_eq!(store.log_state().last_log_id, None);
}

/// The log (entry ids) and vote a scripted run leaves.
type Outcome = (Vec<(u64, u64)>, Option<Vote>);

type Step = (
    fn(&mut RaftLogStore<MemDisk>) -> Result<(), LogStoreError>,
    fn(&mut Outcome),
);

/// Appends in batches, a vote, a truncation and a purge, in order.
fn script() -> Vec<Step> {
    vec![
        (
            |s| block_on(s.append_durably(entries(1, 0..4))),
            |o| o.0.extend(range_ids(1, 0..4)),
        ),
        (
            |s| block_on(s.save_vote_durably(&Vote::new(2, 1))),
            |o| o.1 = Some(Vote::new(2, 1)),
        ),
        (
            |s| block_on(s.append_durably(entries(2, 4..9))),
            |o| o.0.extend(range_ids(2, 4..9)),
        ),
        (
            |s| block_on(s.truncate_after_durably(Some(&log_id(2, 6)))),
            |o| o.0.truncate(7),
        ),
        (
            |s| block_on(s.append_durably(entries(3, 7..10))),
            |o| o.0.extend(range_ids(3, 7..10)),
        ),
        (
            |s| block_on(s.purge_durably(&log_id(1, 2))),
            |_| {}, // the purged entries are filtered out at the check
        ),
        (
            |s| block_on(s.append_durably(entries(3, 10..12))),
            |o| o.0.extend(range_ids(3, 10..12)),
        ),
    ]
}

/// Runs the script until a step fails. Returns what was acknowledged and
/// what the log would be had the failed step also reached the disk.
fn scripted_run(store: &mut RaftLogStore<MemDisk>) -> (Outcome, Outcome, bool) {
    let mut acked: Outcome = (Vec::new(), None);
    for (step, effect) in script() {
        if step(store).is_err() {
            let mut maybe = acked.clone();
            effect(&mut maybe);
            return (acked, maybe, false);
        }
        effect(&mut acked);
    }
    (acked.clone(), acked, true)
}

#[test]
fn a_fault_at_every_io_step_reopens_to_the_acknowledged_log() {
    for ops in 0.. {
        assert!(ops < 200, "script never finished");
        let disk = MemDisk::new();
        let mut store = open(&disk);
        disk.fail_after(ops, libc::EIO);
        let (acked, maybe, finished) = scripted_run(&mut store);
        drop(store);
        disk.clear_faults();
        disk.crash();
        let store = open(&disk);
        let got = ids(&store);
        assert_consecutive(&got, ops);
        let purged = store.log_state().last_purged_log_id.map(|id| id.index());
        let unpurged = |log: &[(u64, u64)]| -> Vec<(u64, u64)> {
            let kept = log.iter().filter(|(_, i)| purged.is_none_or(|p| *i > p));
            kept.copied().collect()
        };
        // The acknowledged log, or that plus the step that failed (which
        // may have reached the disk before its error).
        assert!(
            got == unpurged(&acked.0) || got == unpurged(&maybe.0),
            "ops {ops}: got {got:?}, acknowledged {:?}, in flight {:?}",
            acked.0,
            maybe.0
        );
        let got_vote = block_on(store.reader().read_vote()).unwrap();
        assert!(got_vote == acked.1 || got_vote == maybe.1, "ops {ops}");
        if finished {
            assert_eq!(got, unpurged(&acked.0));
            assert_eq!(purged, Some(2));
            break;
        }
    }
}

fn assert_consecutive(ids: &[(u64, u64)], ops: u64) {
    for pair in ids.windows(2) {
        assert_eq!(pair[1].1, pair[0].1 + 1, "ops {ops}: hole in {ids:?}");
        assert!(
            pair[1].0 >= pair[0].0,
            "ops {ops}: term goes back in {ids:?}"
        );
    }
}

fn run_glommio<F, T>(f: impl FnOnce() -> F + Send + 'static) -> T
where
    F: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    let executor = glommio::LocalExecutorBuilder::default()
        .make()
        .expect("executor");
    executor.run(async move { f().await })
}

async fn open_dma(dir: &Path) -> RaftLogStore<DmaDisk> {
    RaftLogStore::open(DmaDisk, dir)
        .await
        .expect("open on DmaDisk")
}

#[test]
fn dma_append_vote_truncate_purge_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().to_path_buf();
    run_glommio(move || async move {
        prime_dma_io(&data_dir).await.expect("prime");
        let dir = data_dir.join("controller");
        let mut store = open_dma(&dir).await;
        store.append_durably(entries(1, 0..50)).await.unwrap();
        store.save_vote_durably(&Vote::new(2, 3)).await.unwrap();
        store
            .truncate_after_durably(Some(&log_id(1, 39)))
            .await
            .unwrap();
        store.append_durably(entries(2, 40..45)).await.unwrap();
        store.purge_durably(&log_id(1, 9)).await.unwrap();
        drop(store);
        let store = open_dma(&dir).await;
        let mut reader = store.reader();
        let all = reader.try_get_log_entries(..).await.unwrap();
        assert_eq!(all.first().map(|e| e.index()), Some(10));
        assert_eq!(all.last().map(|e| e.log_id()), Some(log_id(2, 44)));
        assert_eq!(all.len(), 35);
        assert_eq!(reader.read_vote().await.unwrap(), Some(Vote::new(2, 3)));
        assert_eq!(store.log_state().last_purged_log_id, Some(log_id(1, 9)));
    });
}

/// Builds a fresh store on a new `MemDisk` for openraft's storage suite.
struct MemStoreBuilder;

impl StoreBuilder<ControllerRaft, RaftLogStore<MemDisk>, ClusterStateMachine> for MemStoreBuilder {
    async fn build(
        &self,
    ) -> Result<
        ((), RaftLogStore<MemDisk>, ClusterStateMachine),
        openraft::StorageError<ControllerRaft>,
    > {
        let store = RaftLogStore::open(MemDisk::new(), &dir())
            .await
            .expect("open raft log store");
        Ok(((), store, ClusterStateMachine::default()))
    }
}

/// openraft's own storage conformance suite (log state, reads, appends,
/// truncation, purge, votes, applying and snapshots), on our runtime.
#[test]
fn log_store_and_state_machine_pass_openraft_storage_suite() {
    GlommioRuntime::new(1).block_on(async {
        Suite::<ControllerRaft, RaftLogStore<MemDisk>, ClusterStateMachine, MemStoreBuilder, ()>::test_all(
            MemStoreBuilder,
        )
        .await
        .expect("openraft storage suite");
    });
}
