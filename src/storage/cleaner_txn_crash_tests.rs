//! Crash tests of the cleaner's transaction rules on [`MemDisk`]: a fault
//! after every number of disk operations of (a) the pass that removes
//! aborted data and gives orphaned markers their delete horizon and (b) the
//! pass after the horizon that removes those markers and rewrites or removes
//! their segments' `.txnindex`, then power loss and a reopen that rebuilds
//! the aborted index the way the partition does at open
//! (`AbortedIndex::load` of the segments' files, then
//! `producer::snapshot::rebuild`, which replays the log and adds back
//! entries it finds missing).
//!
//! After every crash a read_committed reader (simulated with the consumer's
//! rule: a transactional batch of a producer whose aborted transaction
//! started at or before it is dropped until that producer's ABORT marker)
//! must see, for every key, the latest committed value last and at its
//! original offset, and never an aborted record; no aborted-index entry may
//! name a marker that is gone (it would hide later committed batches of the
//! same producer); and no transaction may be left open by the replay (the
//! last stable offset would stop for ever). Cleaning then runs to its end
//! and must give the exact result.
//!
//! The index files live on the [`MemDisk`] (so they crash with the log);
//! `AbortedIndex::load` reads real files, so the test copies them into a
//! temporary directory to load them. `rebuild` reads the producer snapshot
//! through glommio's blocking pool, so the loops run in a glommio executor.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};

use futures::executor::block_on;

use super::cleaner_txn_tests::{
    marker, open, pad, plain, policy, read_batches, txn, Recs, Seen, NOW_MS, RETENTION_MS,
};
use super::small_file::write_small_file;
use super::*;
use crate::producer::aborted::{AbortedEntry, AbortedIndex};
use crate::producer::snapshot::rebuild;
use crate::producer::ProducerStateTable;

/// Most faults tried per phase; each pass takes far fewer operations.
const FAULT_OPS_MAX: u64 = 400;

/// The partition side for the cleaner: the real aborted index, and the
/// last stable offset from the producer table.
struct Txns {
    index: RefCell<AbortedIndex>,
    stable_end: Cell<i64>,
}

impl CleanerTxns for Txns {
    fn stable_end(&self) -> i64 {
        self.stable_end.get()
    }

    fn aborted(&self) -> Vec<AbortedTxnRange> {
        self.index.borrow().cleaner_ranges()
    }

    fn remove_markers(&self, segment_base: i64, markers: &[i64]) -> Option<Vec<u8>> {
        self.index
            .borrow_mut()
            .remove_markers(segment_base, markers)
    }
}

/// Whether a produced record was committed (plain writes are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Committed,
    Aborted,
    Open,
}

/// What was written: offset -> (key, value, fate), pad keys left out.
#[derive(Default)]
struct Produced {
    records: BTreeMap<i64, (String, String, Fate)>,
}

impl Produced {
    fn add(&mut self, base: i64, recs: &Recs<'_>, fate: Fate) {
        for (i, (k, v)) in recs.iter().enumerate() {
            let v = v.expect("no tombstones here").to_string();
            self.records
                .insert(base + i as i64, (k.to_string(), v, fate));
        }
    }

    /// The transaction of `values` (tagged with its name) ends.
    fn end(&mut self, tag: &str, commit: bool) {
        for (_, v, fate) in self.records.values_mut() {
            if *fate == Fate::Open && v.ends_with(tag) {
                *fate = if commit {
                    Fate::Committed
                } else {
                    Fate::Aborted
                };
            }
        }
    }

    /// Key -> (offset, value) of its latest committed record.
    fn latest_committed(&self) -> BTreeMap<String, (i64, String)> {
        let mut out = BTreeMap::new();
        for (offset, (k, v, fate)) in &self.records {
            assert_ne!(*fate, Fate::Open, "every transaction is finished");
            if *fate == Fate::Committed {
                out.insert(k.clone(), (*offset, v.clone()));
            }
        }
        out
    }
}

/// Appends an ABORT marker of `pid` and its aborted-index entry, as the
/// partition does: the entry once the marker is durable, in the file of
/// the segment holding the marker.
fn abort(
    disk: &MemDisk,
    log: &PartitionLog<MemDisk>,
    index: &mut AbortedIndex,
    pid: i64,
    first: i64,
) {
    let at = marker(log, pid, false);
    block_on(log.flush()).unwrap();
    let segment = log.segment_base_of(at);
    let entry = AbortedEntry {
        producer_id: pid,
        first_offset: first,
        last_offset: at,
        last_stable_offset: at + 1,
    };
    let (path, bytes) = index.push(segment, entry);
    let path = log.dir().join(path.file_name().unwrap());
    let mut file = disk.contents(&path).unwrap_or_default();
    file.extend_from_slice(&bytes);
    block_on(write_small_file(disk, &path, &file)).unwrap();
}

/// The scenario: plain writes, two producers' transactions overlapping,
/// producer 7 aborting twice (once across three segments), producer 8
/// committing records that stay (its marker stays), producer 9 committing
/// a record a later plain write replaces (its marker goes).
fn scenario(disk: &MemDisk) -> (PartitionLog<MemDisk>, AbortedIndex, Produced) {
    let log = open(disk);
    let mut index = AbortedIndex::default();
    let mut p = Produced::default();
    let recs: &Recs<'_> = &[
        ("k1", Some("p-k1")),
        ("k2", Some("p-k2")),
        ("k3", Some("p-k3")),
        ("k4", Some("p-k4")),
        ("k6", Some("p-k6")),
    ];
    p.add(plain(&log, recs, 1_000), recs, Fate::Committed);
    let r7a: &Recs<'_> = &[
        ("k1", Some("aborted-7a")),
        ("k2", Some("aborted-7a")),
        ("k5", Some("aborted-7a")),
    ];
    let first_7a = txn(&log, 7, 0, r7a);
    p.add(first_7a, r7a, Fate::Open);
    let r8a: &Recs<'_> = &[("k2", Some("c-8")), ("k3", Some("c-8"))];
    p.add(txn(&log, 8, 0, r8a), r8a, Fate::Open);
    pad(&log, "a");
    let r8b: &Recs<'_> = &[("k6", Some("c-8"))];
    p.add(txn(&log, 8, 2, r8b), r8b, Fate::Open);
    abort(disk, &log, &mut index, 7, first_7a);
    p.end("-7a", false);
    pad(&log, "b");
    marker(&log, 8, true);
    p.end("-8", true);
    let r7b: &Recs<'_> = &[("k3", Some("aborted-7b"))];
    let first_7b = txn(&log, 7, 3, r7b);
    p.add(first_7b, r7b, Fate::Open);
    pad(&log, "c");
    let r7c: &Recs<'_> = &[("k5", Some("aborted-7b")), ("k1", Some("aborted-7b"))];
    p.add(txn(&log, 7, 4, r7c), r7c, Fate::Open);
    abort(disk, &log, &mut index, 7, first_7b);
    p.end("-7b", false);
    let r9: &Recs<'_> = &[("k4", Some("c-9"))];
    p.add(txn(&log, 9, 0, r9), r9, Fate::Open);
    marker(&log, 9, true);
    p.end("-9", true);
    let later: &Recs<'_> = &[("k4", Some("p-k4b")), ("k6", Some("p-k6b"))];
    p.add(plain(&log, later, 1_000), later, Fate::Committed);
    pad(&log, "d");
    let sentinel: &Recs<'_> = &[("sentinel", Some("s"))];
    p.add(plain(&log, sentinel, 100_000), sentinel, Fate::Committed);
    block_on(log.flush()).unwrap();
    assert_eq!(index.len(), 2);
    (log, index, p)
}

/// Reopens after a crash: the log's recovery, then the aborted index from
/// the segments' `.txnindex` files and the replay of the log, and the
/// entries the replay found written back (the partition's
/// `load_producer_state`).
async fn reopen(disk: &MemDisk) -> (PartitionLog<MemDisk>, Txns, ProducerStateTable) {
    let log = open(disk);
    let files = tempfile::tempdir().unwrap();
    let bases = log.segment_bases();
    for &base in &bases {
        let path = segment_file_path(log.dir(), base, TXN_INDEX_EXTENSION);
        if let Some(bytes) = disk.contents(&path) {
            std::fs::write(files.path().join(path.file_name().unwrap()), bytes).unwrap();
        }
    }
    let mut index = AbortedIndex::load(files.path(), &bases, log.next_offset());
    let (producers, _) = rebuild(&log, &mut index).await.expect("replay");
    if index.needs_persist() {
        index.persist_recovered().unwrap();
        for &base in &bases {
            let path = segment_file_path(files.path(), base, TXN_INDEX_EXTENSION);
            if let Ok(bytes) = std::fs::read(&path) {
                let on_disk = log.dir().join(path.file_name().unwrap());
                write_small_file(disk, &on_disk, &bytes).await.unwrap();
            }
        }
    }
    let stable_end = producers
        .first_unstable_offset()
        .map_or(log.high_watermark(), |f| f.min(log.high_watermark()));
    let txns = Txns {
        index: RefCell::new(index),
        stable_end: Cell::new(stable_end),
    };
    (log, txns, producers)
}

/// Records a read_committed consumer returns, in offset order: it reads the
/// whole log with the aborted transactions the broker reports for it and
/// drops what a Kafka consumer drops.
fn read_committed(seen: &[Seen], txns: &Txns, from: i64, to: i64) -> Vec<(i64, String, String)> {
    let mut reported = txns.index.borrow().overlapping(from, to);
    reported.sort_by_key(|a| a.first_offset);
    let mut reported = reported.into_iter().peekable();
    let mut aborting: HashSet<i64> = HashSet::new();
    let mut out = Vec::new();
    for batch in seen {
        if batch.transactional {
            while let Some(a) = reported.next_if(|a| a.first_offset <= batch.last) {
                aborting.insert(a.producer_id);
            }
        }
        match batch.marker {
            Some(false) => {
                aborting.remove(&batch.producer_id);
                continue;
            }
            Some(true) => continue,
            None => {}
        }
        if batch.transactional && aborting.contains(&batch.producer_id) {
            continue;
        }
        for (offset, key, value) in &batch.records {
            out.push((*offset, key.clone(), value.clone().expect("no tombstones")));
        }
    }
    out
}

/// The checks that hold after any crash (see the module doc); `when` names
/// the case in failures.
fn check_after_crash(
    log: &PartitionLog<MemDisk>,
    txns: &Txns,
    producers: &ProducerStateTable,
    p: &Produced,
    when: &str,
) {
    assert_eq!(
        producers.first_unstable_offset(),
        None,
        "a transaction reopened, {when}"
    );
    let seen = read_batches(log);
    for e in txns.index.borrow().entries() {
        let batch = seen
            .iter()
            .find(|b| b.base <= e.last_offset && e.last_offset <= b.last);
        let marker = batch.map(|b| (b.base, b.marker, b.producer_id));
        assert_eq!(
            marker,
            Some((e.last_offset, Some(false), e.producer_id)),
            "aborted-index entry {e:?} without its marker, {when}"
        );
    }
    let committed = read_committed(&seen, txns, log.log_start_offset(), log.high_watermark());
    let mut last = BTreeMap::new();
    for (offset, key, value) in committed.iter().filter(|r| !r.1.starts_with("pad-")) {
        let (k, v, fate) = &p.records[offset];
        assert_eq!(
            (k, v),
            (key, value),
            "offset {offset} holds what was written, {when}"
        );
        assert_eq!(
            *fate,
            Fate::Committed,
            "{key}={value} at {offset} read_committed, {when}"
        );
        last.insert(key.clone(), (*offset, value.clone()));
    }
    assert_eq!(
        last,
        p.latest_committed(),
        "latest committed per key, {when}"
    );
    // read_uncommitted: aborted data may still be there, but every record
    // is the one written at its offset.
    for (offset, key, value) in seen.iter().flat_map(|b| &b.records) {
        if !key.starts_with("pad-") {
            let (k, v, _) = &p.records[offset];
            assert_eq!(
                (k, Some(v)),
                (key, value.as_ref()),
                "offset {offset}, {when}"
            );
        }
    }
}

/// Cleans the reopened log to its end (a pass now, one after the markers'
/// horizon) and checks the exact result: each key once, at its latest
/// committed offset; only producer 8's marker left; no aborted-index entry
/// in memory or on disk; and the same after one more reopen.
async fn finish_and_check_exact(disk: &MemDisk, p: &Produced, when: &str) {
    let (log, txns, _) = reopen(disk).await;
    block_on(log.compact(NOW_MS, &policy(), &txns, &mut NoPacing)).expect("pass");
    block_on(log.compact(NOW_MS + RETENTION_MS, &policy(), &txns, &mut NoPacing)).expect("pass");
    let check = |log: &PartitionLog<MemDisk>, txns: &Txns| {
        let seen = read_batches(log);
        let mut got = BTreeMap::new();
        for (offset, key, value) in seen.iter().flat_map(|b| &b.records) {
            if !key.starts_with("pad-") {
                let prev = got.insert(key.clone(), (*offset, value.clone().unwrap()));
                assert!(prev.is_none(), "{key} twice, {when}");
            }
        }
        assert_eq!(got, p.latest_committed(), "{when}");
        let markers: Vec<(i64, Option<bool>)> = seen
            .iter()
            .filter(|b| b.marker.is_some())
            .map(|b| (b.producer_id, b.marker))
            .collect();
        assert_eq!(markers, vec![(8, Some(true))], "{when}");
        assert!(txns.index.borrow().is_empty(), "{when}");
        for base in log.segment_bases() {
            let path = segment_file_path(log.dir(), base, TXN_INDEX_EXTENSION);
            let bytes = disk.contents(&path).unwrap_or_default();
            assert!(bytes.is_empty(), "{} left, {when}", path.display());
        }
    };
    check(&log, &txns);
    block_on(log.close()).unwrap();
    drop(log);
    disk.crash();
    let (log, txns, producers) = reopen(disk).await;
    check_after_crash(&log, &txns, &producers, p, when);
    check(&log, &txns);
}

fn run_glommio<F>(f: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = ()> + 'static,
{
    let ex = glommio::LocalExecutorBuilder::default()
        .make()
        .expect("executor");
    ex.run(async move { f().await })
}

/// The first pass (aborted data removed, markers given their horizon)
/// crashed after every number of disk operations.
#[test]
fn cleaner_txn_crash_during_first_pass_keeps_the_committed_view() {
    run_glommio(|| async {
        let mut finished = false;
        for ops in 0..FAULT_OPS_MAX {
            let disk = MemDisk::new();
            let (log, index, p) = scenario(&disk);
            let txns = Txns {
                index: RefCell::new(index),
                stable_end: Cell::new(log.high_watermark()),
            };
            disk.fail_after(ops, libc::EIO);
            let result = block_on(log.compact(NOW_MS, &policy(), &txns, &mut NoPacing));
            disk.clear_faults();
            drop(log);
            disk.crash();
            let when = format!("first pass, crash after {ops} operations ({result:?})");
            let (log, txns, producers) = reopen(&disk).await;
            check_after_crash(&log, &txns, &producers, &p, &when);
            drop(log);
            finish_and_check_exact(&disk, &p, &when).await;
            if let Ok(stats) = result {
                let stats = stats.expect("due");
                assert!(
                    stats.records_removed > 0 && stats.markers_removed == 0,
                    "{stats:?}"
                );
                finished = true;
                break;
            }
        }
        assert!(
            finished,
            "the first pass never completed within {FAULT_OPS_MAX} operations"
        );
    });
}

/// The pass after the horizon (markers and their `.txnindex` entries
/// removed) crashed after every number of disk operations.
#[test]
fn cleaner_txn_crash_during_marker_removal_keeps_the_committed_view() {
    run_glommio(|| async {
        let mut finished = false;
        for ops in 0..FAULT_OPS_MAX {
            let disk = MemDisk::new();
            let (log, index, p) = scenario(&disk);
            let txns = Txns {
                index: RefCell::new(index),
                stable_end: Cell::new(log.high_watermark()),
            };
            block_on(log.compact(NOW_MS, &policy(), &txns, &mut NoPacing))
                .unwrap()
                .expect("first pass due");
            assert_eq!(
                txns.index.borrow().len(),
                2,
                "entries kept with their markers"
            );
            disk.fail_after(ops, libc::EIO);
            let now = NOW_MS + RETENTION_MS;
            let result = block_on(log.compact(now, &policy(), &txns, &mut NoPacing));
            disk.clear_faults();
            drop(log);
            disk.crash();
            let when = format!("marker removal, crash after {ops} operations ({result:?})");
            let (log, txns, producers) = reopen(&disk).await;
            check_after_crash(&log, &txns, &producers, &p, &when);
            drop(log);
            finish_and_check_exact(&disk, &p, &when).await;
            if let Ok(stats) = result {
                let stats = stats.expect("due by the horizon");
                assert_eq!(stats.markers_removed, 3, "{stats:?}");
                finished = true;
                break;
            }
        }
        assert!(
            finished,
            "the marker pass never completed within {FAULT_OPS_MAX} operations"
        );
    });
}
