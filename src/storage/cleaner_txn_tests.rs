//! Cleaner tests for transactions on [`MemDisk`]: aborted data removed and
//! never mapped, committed transactional records compacted, markers kept
//! while their data stays and removed after their delete horizon, and
//! nothing cleaned at or past the last stable offset.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::PathBuf;

use futures::executor::block_on;

use crate::protocol::batch::{
    batches, build_test_batch, check_crc, rebuild_batch_body, BatchHeader, BATCH_HEADER_LEN,
};
use crate::protocol::control::{encode_marker, marker_kind};
use crate::protocol::records::records_in;

use super::*;

pub(super) const RETENTION_MS: i64 = 1_000;
pub(super) const NOW_MS: i64 = 2_000;

pub(super) fn open(disk: &MemDisk) -> PartitionLog<MemDisk> {
    let config = LogConfig {
        segment_bytes: 4 << 10,
        index_interval_bytes: 256,
        preallocate_bytes: 8 << 10,
        segment_ms: 10_000,
    };
    block_on(PartitionLog::open(
        disk.clone(),
        PathBuf::from("/data/txn-0"),
        config,
    ))
    .expect("open")
}

pub(super) fn policy() -> CompactionPolicy {
    CompactionPolicy {
        delete_retention_ms: RETENTION_MS,
        min_compaction_lag_ms: 0,
        max_compaction_lag_ms: i64::MAX,
        min_cleanable_dirty_ratio: 0.0,
    }
}

/// The partition's side, as the shard keeps it: aborted entries by marker
/// segment, the last stable offset, and what the cleaner removed.
struct Txns {
    stable_end: Cell<i64>,
    aborted: RefCell<Vec<(i64, AbortedTxnRange)>>,
    removed: RefCell<Vec<i64>>,
}

impl Txns {
    fn new() -> Self {
        Txns {
            stable_end: Cell::new(i64::MAX),
            aborted: RefCell::new(Vec::new()),
            removed: RefCell::new(Vec::new()),
        }
    }
}

impl CleanerTxns for Txns {
    fn stable_end(&self) -> i64 {
        self.stable_end.get()
    }

    fn aborted(&self) -> Vec<AbortedTxnRange> {
        self.aborted.borrow().iter().map(|(_, a)| *a).collect()
    }

    fn remove_markers(&self, segment_base: i64, markers: &[i64]) -> Option<Vec<u8>> {
        let mut aborted = self.aborted.borrow_mut();
        let before = aborted.len();
        aborted.retain(|(base, a)| *base != segment_base || !markers.contains(&a.marker_offset));
        self.removed.borrow_mut().extend_from_slice(markers);
        (aborted.len() != before).then(Vec::new)
    }
}

pub(super) type Recs<'a> = [(&'a str, Option<&'a str>)];
/// Raw key and value of a test record.
type RawRec<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

pub(super) fn plain(log: &PartitionLog<MemDisk>, recs: &Recs<'_>, ts: i64) -> i64 {
    let recs: Vec<RawRec<'_>> = recs
        .iter()
        .map(|(k, v)| (Some(k.as_bytes()), v.map(str::as_bytes)))
        .collect();
    let mut b = build_test_batch(0, &recs, ts);
    log.append(&mut b).expect("append").base_offset
}

/// A transactional batch of producer `pid` (epoch 0) from sequence `seq`.
pub(super) fn txn(log: &PartitionLog<MemDisk>, pid: i64, seq: i32, recs: &Recs<'_>) -> i64 {
    let recs: Vec<RawRec<'_>> = recs
        .iter()
        .map(|(k, v)| (Some(k.as_bytes()), v.map(str::as_bytes)))
        .collect();
    let batch = build_test_batch(0, &recs, 1_000);
    let header = BatchHeader::parse(&batch).unwrap();
    let mut head = batch[..BATCH_HEADER_LEN].to_vec();
    head[21..23].copy_from_slice(&(header.attributes() | 0x10).to_be_bytes());
    head[43..51].copy_from_slice(&pid.to_be_bytes());
    head[51..53].copy_from_slice(&0i16.to_be_bytes());
    head[53..57].copy_from_slice(&seq.to_be_bytes());
    let mut b = rebuild_batch_body(
        &head,
        &[&batch[BATCH_HEADER_LEN..]],
        header.records_count(),
        header.last_offset_delta(),
    );
    log.append(&mut b).expect("append").base_offset
}

pub(super) fn marker(log: &PartitionLog<MemDisk>, pid: i64, commit: bool) -> i64 {
    let mut m = encode_marker(pid, 0, commit, 0, 1_000).unwrap().to_vec();
    log.append(&mut m).expect("append").base_offset
}

/// Enough plain records under `pad*` keys to roll a segment or two.
pub(super) fn pad(log: &PartitionLog<MemDisk>, tag: &str) {
    for round in 0..10 {
        let recs: Vec<(String, String)> = (0..10)
            .map(|i| {
                (
                    format!("pad-{tag}-{i}"),
                    format!("{round}-padding-padding-padding"),
                )
            })
            .collect();
        let refs: Vec<(&str, Option<&str>)> = recs
            .iter()
            .map(|(k, v)| (k.as_str(), Some(v.as_str())))
            .collect();
        plain(log, &refs, 1_000);
    }
}

/// One batch as read back.
#[derive(Debug)]
pub(super) struct Seen {
    pub(super) base: i64,
    pub(super) last: i64,
    pub(super) producer_id: i64,
    pub(super) transactional: bool,
    pub(super) horizon: bool,
    pub(super) marker: Option<bool>,
    pub(super) records: Vec<(i64, String, Option<String>)>,
}

pub(super) fn read_batches(log: &PartitionLog<MemDisk>) -> Vec<Seen> {
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let bytes = block_on(log.read(offset, 1 << 20, true)).expect("read");
        for batch in batches(&bytes) {
            let batch = batch.expect("whole batches");
            check_crc(batch.bytes).unwrap();
            let h = batch.header;
            let recs = records_in(h, &batch.bytes[BATCH_HEADER_LEN..]).expect("records");
            out.push(Seen {
                base: h.base_offset(),
                last: h.last_offset(),
                producer_id: h.producer_id(),
                transactional: h.is_transactional(),
                horizon: h.attributes() & 0x40 != 0,
                marker: marker_kind(batch.bytes),
                records: recs
                    .iter()
                    .filter(|_| !h.is_control())
                    .map(|r| (r.offset, text(r.key.unwrap()), r.value.map(text)))
                    .collect(),
            });
            offset = h.last_offset() + 1;
        }
    }
    out
}

/// Key -> (offset, value) of the data records read back (no pad keys).
fn latest(seen: &[Seen]) -> BTreeMap<String, (i64, Option<String>)> {
    let mut out = BTreeMap::new();
    for (offset, key, value) in seen.iter().flat_map(|b| &b.records) {
        if !key.starts_with("pad-") {
            let prev = out.insert(key.clone(), (*offset, value.clone()));
            assert!(prev.is_none(), "{key} twice: {seen:?}");
        }
    }
    out
}

fn batch_at(seen: &[Seen], offset: i64) -> &Seen {
    seen.iter()
        .find(|b| b.base <= offset && offset <= b.last)
        .unwrap_or_else(|| panic!("no batch holds {offset}"))
}

fn compact(log: &PartitionLog<MemDisk>, now: i64, txns: &Txns) -> Option<CompactionStats> {
    block_on(log.compact(now, &policy(), txns, &mut NoPacing)).expect("compact")
}

fn value(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn cleaner_txn_aborted_records_removed_and_not_mapped() {
    let disk = MemDisk::new();
    let log = open(&disk);
    let txns = Txns::new();
    let committed = plain(&log, &[("k1", Some("committed"))], 1_000);
    // An aborted transaction overwriting k1 and adding k2, with its marker
    // segments later: the pass carries the transaction across segments.
    let first = txn(
        &log,
        7,
        0,
        &[("k1", Some("aborted")), ("k2", Some("aborted"))],
    );
    pad(&log, "a");
    let abort = marker(&log, 7, false);
    let base = log.segment_base_of(abort);
    txns.aborted.borrow_mut().push((
        base,
        AbortedTxnRange {
            producer_id: 7,
            first_offset: first,
            marker_offset: abort,
        },
    ));
    pad(&log, "b");
    plain(&log, &[("sentinel", Some("s"))], 100_000);
    block_on(log.flush()).unwrap();
    assert!(log.segment_base_of(abort) > log.segment_base_of(first));

    let stats = compact(&log, NOW_MS, &txns).expect("due");
    let seen = read_batches(&log);
    let got = latest(&seen);
    assert_eq!(
        got["k1"],
        (committed, value("committed")),
        "aborted value not mapped"
    );
    assert!(!got.contains_key("k2"), "aborted record removed: {got:?}");
    assert!(stats.records_removed >= 2, "{stats:?}");
    // The emptied batch keeps its producer (sequence numbers) but is no
    // longer transactional; the marker stays with a delete horizon.
    let emptied = batch_at(&seen, first);
    assert_eq!((emptied.base, emptied.last), (first, first + 1));
    assert_eq!(emptied.producer_id, 7);
    assert!(!emptied.transactional && emptied.records.is_empty());
    let kept = batch_at(&seen, abort);
    assert_eq!((kept.marker, kept.horizon), (Some(false), true));
    assert_eq!(txns.aborted().len(), 1, "entry kept while its marker is");

    // Before the horizon nothing is due; after it the marker and its index
    // entry go, and its offset is covered by an empty batch with no producer.
    assert!(compact(&log, NOW_MS + RETENTION_MS - 1, &txns).is_none());
    let stats = compact(&log, NOW_MS + RETENTION_MS, &txns).expect("due by the horizon");
    assert_eq!(stats.markers_removed, 1, "{stats:?}");
    assert_eq!(*txns.removed.borrow(), vec![abort]);
    assert!(txns.aborted().is_empty());
    let seen = read_batches(&log);
    let gone = batch_at(&seen, abort);
    assert_eq!((gone.marker, gone.producer_id), (None, -1));
    assert!(seen.iter().all(|b| !b.transactional), "{seen:?}");
    assert_eq!(latest(&seen)["k1"], (committed, value("committed")));
    // Reopened (recovery re-checks every batch) it reads the same.
    block_on(log.close()).unwrap();
    let log = open(&disk);
    assert_eq!(
        latest(&read_batches(&log))["k1"],
        (committed, value("committed"))
    );
}

#[test]
fn cleaner_txn_committed_records_compacted_marker_kept_while_data_stays() {
    let disk = MemDisk::new();
    let log = open(&disk);
    let txns = Txns::new();
    let first = txn(&log, 8, 0, &[("k1", Some("c1")), ("k2", Some("c2"))]);
    let second = txn(&log, 8, 2, &[("k1", Some("c1b"))]);
    let commit = marker(&log, 8, true);
    pad(&log, "a");
    let k1 = plain(&log, &[("k1", Some("p1"))], 1_000);
    pad(&log, "b");
    plain(&log, &[("sentinel", Some("s"))], 100_000);
    block_on(log.flush()).unwrap();

    compact(&log, NOW_MS, &txns).expect("due");
    let seen = read_batches(&log);
    let got = latest(&seen);
    assert_eq!(got["k1"], (k1, value("p1")), "later plain value wins");
    assert_eq!(got["k2"], (first + 1, value("c2")), "committed record kept");
    let partly = batch_at(&seen, first);
    assert!(partly.transactional && partly.records.len() == 1);
    let emptied = batch_at(&seen, second);
    assert!(!emptied.transactional && emptied.records.is_empty());
    assert_eq!(emptied.producer_id, 8);
    let kept = batch_at(&seen, commit);
    assert_eq!((kept.marker, kept.horizon), (Some(true), false), "k2 stays");
    // Even long after: the transaction still has data.
    assert!(compact(&log, NOW_MS * 100, &txns).is_none_or(|s| s.markers_removed == 0));
    assert_eq!(batch_at(&read_batches(&log), commit).marker, Some(true));

    // k2 overwritten: the transaction's last record goes, the marker gets
    // its horizon in that pass and goes after it.
    let k2 = plain(&log, &[("k2", Some("p2"))], 1_000);
    pad(&log, "c");
    plain(&log, &[("pad-sentinel", Some("s2"))], 100_000);
    block_on(log.flush()).unwrap();
    let now = NOW_MS * 200;
    compact(&log, now, &txns).expect("dirty");
    let seen = read_batches(&log);
    assert_eq!(latest(&seen)["k2"], (k2, value("p2")));
    let marked = batch_at(&seen, commit);
    assert_eq!((marked.marker, marked.horizon), (Some(true), true));
    assert!(compact(&log, now + RETENTION_MS - 1, &txns).is_none());
    let stats = compact(&log, now + RETENTION_MS, &txns).expect("due by the horizon");
    assert_eq!(stats.markers_removed, 1);
    let seen = read_batches(&log);
    assert_eq!(batch_at(&seen, commit).marker, None);
    assert_eq!(
        *txns.removed.borrow(),
        vec![commit],
        "told, though it has no entry"
    );
}

#[test]
fn cleaner_txn_never_cleans_at_or_past_the_last_stable_offset() {
    let disk = MemDisk::new();
    let log = open(&disk);
    let txns = Txns::new();
    pad(&log, "a");
    pad(&log, "a");
    let open_txn = txn(&log, 9, 0, &[("k1", Some("open"))]);
    pad(&log, "a");
    pad(&log, "a");
    plain(&log, &[("sentinel", Some("s"))], 100_000);
    block_on(log.flush()).unwrap();
    let before = read_batches(&log);
    // Nothing is below the stable end: no pass.
    txns.stable_end.set(0);
    assert!(compact(&log, NOW_MS, &txns).is_none());
    // The open transaction's first offset is the stable end: segments from
    // the one holding it are left alone, byte for byte.
    txns.stable_end.set(open_txn);
    compact(&log, NOW_MS, &txns).expect("due below the stable end");
    let after = read_batches(&log);
    let boundary = log.segment_base_of(open_txn);
    assert!(boundary > 0);
    let untouched = |seen: &[Seen]| -> Vec<String> {
        seen.iter()
            .filter(|b| b.base >= boundary)
            .map(|b| format!("{b:?}"))
            .collect()
    };
    assert_eq!(untouched(&after), untouched(&before));
    let cleaned_below = after.iter().filter(|b| b.base < boundary).count();
    assert!(cleaned_below < before.iter().filter(|b| b.base < boundary).count());
    // The open transaction's record is still there, transactional.
    let open = batch_at(&after, open_txn);
    assert!(open.transactional && open.records.len() == 1);
}
