//! The cleaner: log compaction of one partition (`cleanup.policy=compact`).
//!
//! A pass, on the owner shard, under the log's housekeeping lock:
//! 1. **Cleanable range**: the leading closed, fully durable segments whose
//!    newest batch is at least `min.compaction.lag.ms` old and that end at
//!    or before the last stable offset (never the active segment, never
//!    data of an open transaction, whose outcome is unknown). The pass runs when dirty bytes (segments past the
//!    last pass's end) are at least `min.cleanable.dirty.ratio` of the
//!    range, or when the oldest dirty segment is older than
//!    `max.compaction.lag.ms`.
//! 2. **Offset map**: one read of the range records, per key, the offset of
//!    its latest record (full keys, at most [`OFFSET_MAP_BYTES_MAX`]; if
//!    the map fills up, only the segments mapped completely are cleaned).
//!    Records of aborted transactions and markers are not mapped.
//! 3. **Rewrite**, segment by segment, skipping segments with nothing to
//!    change. A record goes if a later record has its key, or if it is a
//!    tombstone (null value) whose batch's delete horizon has passed; a
//!    batch with surviving tombstones and no horizon gets one (Kafka's
//!    KIP-534, see `cleaner_batch`). Kept records of uncompressed batches
//!    are copied byte for byte; compressed batches are decompressed and
//!    recompressed with their codec. Either way the batch header's base
//!    offset stays, so **offsets never change**. A batch keeps its offset
//!    range (base offset, last offset delta) so the log stays dense from
//!    batch to batch, which recovery and reads check; a batch whose
//!    records all go becomes part of one empty batch covering the run of
//!    such batches (Kafka clients skip empty batches; Kafka's own cleaner
//!    leaves them too). Batches of idempotent producers keep their own
//!    header, so sequence numbers survive. Transactions follow Kafka's
//!    rules (`cleaner_txn`): aborted data goes whole, committed data is
//!    compacted, a marker stays while its transaction has records, then
//!    gets a delete horizon and goes after it.
//! 4. **Swap**, crash-safe at every step: the cleaned segment is written to
//!    `<base>.cleaned.tmp` and fdatasynced; the old `.index` is removed;
//!    the temp file is renamed over `<base>.log` (atomic) and the directory
//!    synced; the new time index and offset index are written. If the
//!    rewrite removes ABORT markers, their aborted-index entries are
//!    dropped first (in memory and the segment's `.txnindex`): a marker
//!    without its entry is harmless, an entry without its marker is not
//!    (see `cleaner_txn`). A crash
//!    before the rename leaves the old segment (recovery deletes `*.tmp`);
//!    after it, the new one; a missing index is rebuilt by recovery. Either
//!    way every latest value is in the log.
//!
//! Limits, documented rather than hidden:
//! - A compressed batch over `DECOMPRESSED_BATCH_BYTES_MAX` or that does
//!   not decode is kept whole (logged), and its keys are not mapped.
//! - The dirty mark and the next tombstone or marker horizon are kept in
//!   the partition checkpoint, written after each pass (after its last
//!   swap, so it never marks uncleaned data clean). A lost or older
//!   checkpoint only makes the next pass read more.
//! - Cleaner I/O is paced by the caller's [`IoPacer`] (bytes/s budget).

use std::future::Future;
use std::path::Path;
use std::path::PathBuf;
use std::rc::Rc;

use super::checkpoint::{write_checkpoint, Checkpoint};
use super::cleaner_batch::{clean_batch, decode, Cleaned, EmptyRun, OffsetMap, Rules, Sink};
use super::cleaner_io::{BatchReader, SegmentWriter};
use super::cleaner_txn::{AbortedLookup, CleanerTxns, TxnTracker};
use super::disk::Disk;
use super::error::StorageError;
use super::fault::{reached, Step};
use super::log::PartitionLog;
use super::scan::batch_info;
use super::segment::{segment_path, Segment, TXN_INDEX_EXTENSION};
use super::small_file::{sync_parent, write_small_file};
use crate::protocol::batch::BATCH_HEADER_LEN;

/// Largest offset map one pass builds: key bytes plus
/// [`OFFSET_MAP_ENTRY_OVERHEAD_BYTES`] per key.
pub const OFFSET_MAP_BYTES_MAX: usize = 64 << 20;
/// Bookkeeping counted per map entry (hash slot, Vec header, offset), bytes.
pub const OFFSET_MAP_ENTRY_OVERHEAD_BYTES: usize = 48;
/// Bytes of cleaner I/O between two calls to the pacer.
pub const CLEANER_PACE_STEP_BYTES: u64 = 1 << 20;

/// Compaction settings of one pass (the topic's config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionPolicy {
    /// `delete.retention.ms`: tombstones older than this go.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_dirty_ratio: f64,
}

/// Paces cleaner I/O: called after every [`CLEANER_PACE_STEP_BYTES`] or so
/// read or written; may sleep to stay within a bytes/s budget.
pub trait IoPacer {
    /// `bytes` more were read or written.
    fn pace(&mut self, bytes: u64) -> impl Future<Output = ()>;
}

/// A pacer that never waits (tests, benchmarks).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPacing;

impl IoPacer for NoPacing {
    async fn pace(&mut self, _bytes: u64) {}
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionStats {
    /// Segments in the cleaned range.
    pub segments_cleaned: usize,
    /// Bytes of the cleaned range (all read to build the offset map).
    pub bytes_scanned: u64,
    /// Segments rewritten (those that had something to drop).
    pub segments_rewritten: usize,
    /// Bytes of the rewritten segments before and after.
    pub bytes_before: u64,
    /// See `bytes_before`.
    pub bytes_after: u64,
    /// Records dropped (markers included).
    pub records_removed: u64,
    /// Transaction markers removed (past their delete horizon).
    pub markers_removed: u64,
}

/// A segment of the cleanable range, copied out of the log.
struct Target<F> {
    base_offset: i64,
    end_offset: i64,
    path: PathBuf,
    file: Rc<F>,
    log_bytes: u64,
}

impl<D: Disk> PartitionLog<D> {
    /// Runs one compaction pass at wall-clock `now_ms` if the dirty ratio
    /// (or the max lag, or a tombstone's or marker's delete horizon) asks
    /// for it; `None` when nothing was due. `txns` is the partition's
    /// transaction state ([`super::NoTxns`] where there is none).
    pub async fn compact<P: IoPacer, T: CleanerTxns>(
        &self,
        now_ms: i64,
        policy: &CompactionPolicy,
        txns: &T,
        pacer: &mut P,
    ) -> Result<Option<CompactionStats>, StorageError> {
        let _serial = self.housekeeping_lock.lock().await;
        self.check_writable()?;
        let Some(targets) = self.cleanable(now_ms, policy, txns.stable_end()) else {
            return Ok(None);
        };
        let aborted = AbortedLookup::new(&txns.aborted());
        let (map, mapped, due) = self
            .build_offset_map(&targets, &aborted, now_ms, policy, pacer)
            .await?;
        if mapped == 0 {
            tracing::warn!(dir = %self.dir.display(),
                "compaction skipped: the first segment's keys exceed the offset map ({OFFSET_MAP_BYTES_MAX} bytes)");
            return Ok(None);
        }
        let rules = Rules {
            map: &map,
            aborted: &aborted,
            now_ms,
            delete_retention_ms: policy.delete_retention_ms,
        };
        let mut stats = CompactionStats {
            segments_cleaned: mapped,
            bytes_scanned: targets[..mapped].iter().map(|t| t.log_bytes).sum(),
            ..Default::default()
        };
        let mut tracker = TxnTracker::default();
        for target in &targets[..mapped] {
            let pass = Pass {
                rules: &rules,
                txns,
            };
            self.clean_segment(target, &pass, &mut tracker, pacer, &mut stats)
                .await?;
        }
        self.clean_offset.set(targets[mapped - 1].end_offset);
        let due = match (due, tracker.due_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.tombstones_due_ms.set(due);
        // After every swap: the mark on disk never claims uncleaned data.
        let next_offset = self.high_watermark.get().max(self.log_start_offset.get());
        let checkpoint = Checkpoint::new(
            self.log_start_offset.get(),
            next_offset,
            self.cleaner_state(),
        );
        write_checkpoint(&self.disk, &self.dir, checkpoint).await?;
        Ok(Some(stats))
    }

    /// The cleanable range, if a pass is due: it ends at or before
    /// `stable_end` (the last stable offset).
    fn cleanable(
        &self,
        now_ms: i64,
        policy: &CompactionPolicy,
        stable_end: i64,
    ) -> Option<Vec<Target<D::File>>> {
        let segments = self.segments.borrow();
        let lag_horizon = now_ms.saturating_sub(policy.min_compaction_lag_ms);
        let mut targets = Vec::new();
        let mut oldest_dirty = None;
        let clean_offset = self.clean_offset.get();
        for s in segments.iter() {
            let closed = s.sealed && s.seal_persisted && s.durable_bytes == s.log_bytes;
            let Some(file) = s
                .file
                .clone()
                .filter(|_| closed && s.max_timestamp <= lag_horizon && s.end_offset <= stable_end)
            else {
                break;
            };
            if s.end_offset > clean_offset && oldest_dirty.is_none() {
                oldest_dirty = Some(s.max_timestamp);
            }
            targets.push(Target {
                base_offset: s.base_offset,
                end_offset: s.end_offset,
                path: s.path.clone(),
                file,
                log_bytes: s.log_bytes,
            });
        }
        let total: u64 = targets.iter().map(|t| t.log_bytes).sum();
        let dirty: u64 = targets
            .iter()
            .filter(|t| t.end_offset > clean_offset)
            .map(|t| t.log_bytes)
            .sum();
        let tombstones_due = self.tombstones_due_ms.get().is_some_and(|t| t <= now_ms);
        let overdue =
            oldest_dirty.is_some_and(|t| t <= now_ms.saturating_sub(policy.max_compaction_lag_ms));
        let ratio = dirty as f64 / total.max(1) as f64;
        let due = dirty > 0 && (ratio >= policy.min_cleanable_dirty_ratio || overdue);
        (!targets.is_empty() && (due || tombstones_due)).then_some(targets)
    }

    /// Maps every key of the range to its latest offset. Returns the map,
    /// how many leading segments it covers completely, and when the
    /// earliest tombstone left after this pass may go.
    async fn build_offset_map<P: IoPacer>(
        &self,
        targets: &[Target<D::File>],
        aborted: &AbortedLookup,
        now_ms: i64,
        policy: &CompactionPolicy,
        pacer: &mut P,
    ) -> Result<(OffsetMap, usize, Option<i64>), StorageError> {
        let mut map = OffsetMap::new();
        let mut map_bytes = 0usize;
        let mut due: Option<i64> = None;
        let new_horizon = now_ms.saturating_add(policy.delete_retention_ms);
        for (i, target) in targets.iter().enumerate() {
            let mut reader = BatchReader::new(&*target.file, &target.path, target.log_bytes);
            while let Some(batch) = reader.next().await? {
                // Markers have no keys; aborted records never count as a
                // key's latest value (Kafka skips them too).
                let Ok(Some(decoded)) = decode(batch) else {
                    continue;
                };
                if aborted.holds(decoded.header) {
                    continue;
                }
                let horizon = decoded.delete_horizon();
                for record in decoded.records().into_iter().flatten() {
                    // A tombstone past its horizon goes in this pass; one
                    // without a horizon gets `new_horizon`.
                    let at = match horizon {
                        Some(h) if h <= now_ms => None,
                        Some(h) => Some(h),
                        None => Some(new_horizon),
                    };
                    if let Some(at) = at.filter(|_| record.value.is_none()) {
                        due = Some(due.map_or(at, |d| d.min(at)));
                    }
                    let Some(key) = record.key else { continue };
                    match map.get_mut(key) {
                        Some(offset) => *offset = record.offset,
                        None => {
                            map_bytes += key.len() + OFFSET_MAP_ENTRY_OVERHEAD_BYTES;
                            map.insert(key.to_vec(), record.offset);
                        }
                    }
                }
                if map_bytes > OFFSET_MAP_BYTES_MAX {
                    // Entries of this partly mapped segment still name real,
                    // later records: they may only make older ones go.
                    return Ok((map, i, due));
                }
            }
            pacer.pace(target.log_bytes).await;
        }
        Ok((map, targets.len(), due))
    }

    /// Rewrites one segment if it has anything to change, and swaps it in.
    /// `tracker` carries transaction state from the previous segments.
    async fn clean_segment<P: IoPacer, T: CleanerTxns>(
        &self,
        target: &Target<D::File>,
        pass: &Pass<'_, T>,
        tracker: &mut TxnTracker,
        pacer: &mut P,
        stats: &mut CompactionStats,
    ) -> Result<(), StorageError> {
        let mut replay = tracker.clone();
        if !self.has_changes(target, pass.rules, tracker).await? {
            return Ok(());
        }
        let tmp = self
            .dir
            .join(format!("{:020}.cleaned.tmp", target.base_offset));
        let mut writer = SegmentWriter::create(&self.disk, &tmp).await?;
        let mut segment = Segment::new(&self.dir, target.base_offset);
        let interval = u64::from(self.config.get().index_interval_bytes);
        let mut run = EmptyRun::default();
        let mut removed_markers = Vec::new();
        let mut reader = BatchReader::new(&*target.file, &target.path, target.log_bytes);
        let mut since_pace = 0u64;
        let dir = self.dir.clone();
        let warn = move |base_offset: i64, reason: &str| {
            tracing::warn!(dir = %dir.display(), base_offset, reason,
                "cleaner keeps a batch whole: its records cannot be read");
        };
        while let Some(batch) = reader.next().await? {
            since_pace += batch.len() as u64;
            let mut out = Vec::new();
            let mut sink = Sink {
                run: &mut run,
                out: &mut out,
                warn: &warn,
                removed_markers: &mut removed_markers,
            };
            let cleaned = clean_batch(batch, pass.rules, &mut replay, Some(&mut sink));
            stats.records_removed += cleaned.dropped;
            append_output(&mut writer, &mut segment, &out, interval);
            writer.write_full_chunks(&self.disk).await?;
            if since_pace >= CLEANER_PACE_STEP_BYTES {
                pacer.pace(since_pace).await;
                since_pace = 0;
            }
        }
        let mut out = Vec::new();
        run.flush(&mut out);
        append_output(&mut writer, &mut segment, &out, interval);
        let file = writer.finish(&self.disk).await?;
        pacer.pace(since_pace + segment.log_bytes).await;
        if segment.end_offset != target.end_offset {
            return Err(StorageError::Corrupt {
                path: target.path.clone(),
                position: 0,
                reason: format!(
                    "cleaned segment ends at offset {} instead of {}",
                    segment.end_offset, target.end_offset
                ),
            });
        }
        stats.segments_rewritten += 1;
        stats.bytes_before += target.log_bytes;
        stats.bytes_after += segment.log_bytes;
        stats.markers_removed += removed_markers.len() as u64;
        self.forget_markers(target, pass.txns, &removed_markers)
            .await?;
        self.swap_in(target, &tmp, file, segment).await
    }

    /// True if the rewrite would change a batch. Reads the whole segment:
    /// `tracker` must see every transactional batch.
    async fn has_changes(
        &self,
        target: &Target<D::File>,
        rules: &Rules<'_>,
        tracker: &mut TxnTracker,
    ) -> Result<bool, StorageError> {
        let mut reader = BatchReader::new(&*target.file, &target.path, target.log_bytes);
        let mut changes = false;
        while let Some(batch) = reader.next().await? {
            let cleaned: Cleaned = clean_batch(batch, rules, tracker, None);
            changes |= cleaned.changed;
        }
        Ok(changes)
    }

    /// Drops the aborted-index entries of `markers` (about to be removed
    /// from `target`), in memory and in the segment's `.txnindex`, before
    /// the cleaned segment replaces the old one.
    async fn forget_markers<T: CleanerTxns>(
        &self,
        target: &Target<D::File>,
        txns: &T,
        markers: &[i64],
    ) -> Result<(), StorageError> {
        if markers.is_empty() {
            return Ok(());
        }
        let Some(bytes) = txns.remove_markers(target.base_offset, markers) else {
            return Ok(());
        };
        let path = segment_path(&self.dir, target.base_offset, TXN_INDEX_EXTENSION);
        if !bytes.is_empty() {
            write_small_file(&self.disk, &path, &bytes).await?;
        } else if self.disk.exists(&path).await.unwrap_or(true) {
            let removed = self.disk.remove_file(&path).await;
            removed.map_err(StorageError::io_at("remove txn index", &path, None))?;
            sync_parent(&self.disk, &path).await?;
        }
        reached(Step::CleanedTxnIndexWritten);
        Ok(())
    }

    /// Replaces segment `target` by the cleaned file at `tmp` (see the
    /// module doc for the crash order) and updates the segment list.
    async fn swap_in(
        &self,
        target: &Target<D::File>,
        tmp: &Path,
        file: D::File,
        mut segment: Segment<D>,
    ) -> Result<(), StorageError> {
        let index_path = segment_path(&self.dir, target.base_offset, "index");
        if self.disk.exists(&index_path).await.unwrap_or(true) {
            let removed = self.disk.remove_file(&index_path).await;
            removed.map_err(StorageError::io_at("remove index", &index_path, None))?;
        }
        reached(Step::OldIndexRemoved);
        let renamed = self.disk.rename(tmp, &target.path).await;
        renamed.map_err(StorageError::io_at("rename cleaned segment", tmp, None))?;
        reached(Step::CleanedRenamed);
        sync_parent(&self.disk, &target.path).await?;
        reached(Step::CleanedDirSynced);
        segment.finish_time_index();
        segment.sealed = true;
        segment.seal_persisted = true;
        segment.durable_bytes = segment.log_bytes;
        segment.allocated_bytes = segment.log_bytes;
        segment.file = Some(Rc::new(file));
        let time_index = segment.time_index.encode();
        write_small_file(&self.disk, &segment.sibling("timeindex"), &time_index).await?;
        reached(Step::CleanedTimeIndexWritten);
        write_small_file(&self.disk, &index_path, &segment.index.encode()).await?;
        reached(Step::CleanedOffsetIndexWritten);
        let mut segments = self.segments.borrow_mut();
        let at = self.segment_position(&segments, target.base_offset);
        segments[at] = segment;
        Ok(())
    }
}

/// What every segment of one pass is cleaned with.
struct Pass<'p, T> {
    rules: &'p Rules<'p>,
    txns: &'p T,
}

/// Adds output batches to the writer and to the new segment's indexes.
fn append_output<D: Disk>(
    writer: &mut SegmentWriter<D>,
    segment: &mut Segment<D>,
    out: &[u8],
    interval: u64,
) {
    let mut rest = out;
    while rest.len() >= BATCH_HEADER_LEN {
        let info = batch_info(&rest[..BATCH_HEADER_LEN]).expect("the cleaner writes valid batches");
        segment.index_batch(&info, interval);
        rest = &rest[info.total_len as usize..];
    }
    writer.push(out);
}
