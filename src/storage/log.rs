//! [`PartitionLog`]: the appender and the public face of one partition's log.
//!
//! - `append` is synchronous and does no I/O: it assigns offsets, copies the
//!   bytes into the pending aligned tail of the active segment, and rolls to
//!   a new segment (whose file is created by the next flush) when the active
//!   one would pass `segment_bytes`.
//! - `flush` (flush.rs) writes and fdatasyncs everything appended so far;
//!   callers that arrive while a flush runs wait for it and are usually
//!   covered by it or by the next one (group commit).
//! - `read` and `offset_for_timestamp` (read.rs) serve durable data only.
//! - `open` runs recovery (recovery.rs).
//!
//! State sits in `Cell`/`RefCell` because the log is shared as
//! `Rc<PartitionLog<D>>` by the tasks of one shard; no borrow is ever held
//! across an `.await`. It is `!Send` on purpose (thread per core).

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};

use crate::protocol::batch::{batches, set_base_offset, BatchError};

use super::checkpoint::{write_checkpoint, Checkpoint};
use super::disk::{align_up, Disk, DiskFile};
use super::epochs::EpochState;
use super::error::StorageError;
use super::segment::{BatchInfo, Segment};
use super::small_file::write_small_file;
use super::{LogConfig, PREALLOCATE_BYTES_FIRST, SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN};

/// Offsets assigned by [`PartitionLog::append`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record of the first batch.
    pub base_offset: i64,
    /// Offset of the last record of the last batch.
    pub last_offset: i64,
}

/// The log of one partition: segments, indexes, unflushed tail. See the
/// module doc. `!Send`: owned by one shard.
pub struct PartitionLog<D: Disk> {
    pub(crate) disk: D,
    pub(crate) dir: PathBuf,
    /// Settings; replaced when the topic's config changes (`set_config`).
    pub(crate) config: Cell<LogConfig>,
    /// Segments by base offset; the last one is active. Never empty.
    pub(crate) segments: RefCell<Vec<Segment<D>>>,
    pub(crate) next_offset: Cell<i64>,
    pub(crate) high_watermark: Cell<i64>,
    pub(crate) log_start_offset: Cell<i64>,
    /// Bytes appended and not yet covered by a completed flush.
    pub(crate) pending_bytes: Cell<usize>,
    /// Serializes flushes (and close).
    pub(crate) flush_lock: futures::lock::Mutex<()>,
    /// Set by the first failed flush, or by close: the log refuses writes.
    pub(crate) failure: RefCell<Option<String>>,
    /// Serializes retention, DeleteRecords and compaction (retention.rs,
    /// compaction.rs): each changes the segment list across awaits.
    pub(crate) housekeeping_lock: futures::lock::Mutex<()>,
    /// Offsets below this were compacted by the last cleaning (kept in the
    /// checkpoint, so a restart does not clean everything again).
    pub(crate) clean_offset: Cell<i64>,
    /// Earliest delete horizon (ms) of tombstones or transaction markers the
    /// last cleaning kept: a pass is due then even without new dirty data
    /// (in the checkpoint too).
    pub(crate) tombstones_due_ms: Cell<Option<i64>>,
    /// After an open that found a clean close: what the checkpoint holds
    /// (`log_start_offset`, `next_offset`, cleaner state). A close that
    /// finds the same has nothing to write (see `close`).
    opened_clean: Cell<Option<DurableState>>,
    /// The leader-epoch cache and its file (epochs.rs).
    pub(crate) epochs: EpochState,
}

/// What a clean close leaves in the checkpoint: log start, log end, and
/// the cleaner's `(clean_offset, due_ms)`.
type DurableState = (i64, i64, (i64, Option<i64>));

impl LogConfig {
    /// Checks ranges; see the constants in the module root.
    pub(crate) fn validate(&self) -> Result<(), StorageError> {
        let segment_ok = (SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes);
        if !segment_ok || self.index_interval_bytes == 0 || self.segment_ms < 1 {
            return Err(StorageError::InvalidConfig(format!(
                "segment_bytes {} must be in {SEGMENT_BYTES_MIN}..={SEGMENT_BYTES_MAX}, \
                 index_interval_bytes {} must be > 0, segment_ms {} must be > 0",
                self.segment_bytes, self.index_interval_bytes, self.segment_ms
            )));
        }
        Ok(())
    }

    /// New file size to preallocate so that `needed_end` bytes fit, growing
    /// up to `segment_bytes` (a single batch larger than a segment may go
    /// past it); `None` if `allocated` suffices.
    ///
    /// The step doubles the file, from [`PREALLOCATE_BYTES_FIRST`] up to
    /// `preallocate_bytes`: a fixed 64 MiB first step cost 64 MiB of disk per
    /// partition written to at all (10,000 partitions: 640 GB, and a full
    /// disk), while doubling reaches full-size steps after a few extensions
    /// on a busy partition.
    pub(crate) fn allocation_for(&self, allocated: u64, needed_end: u64) -> Option<u64> {
        if needed_end <= allocated {
            return None;
        }
        let full = align_up(self.preallocate_bytes.max(1));
        let step = align_up(allocated.max(PREALLOCATE_BYTES_FIRST)).min(full);
        let cap = align_up(self.segment_bytes).max(align_up(needed_end));
        Some((allocated + step).max(align_up(needed_end)).min(cap))
    }
}

impl<D: Disk> PartitionLog<D> {
    /// Opens the log in `dir`, creating the directory if absent, else
    /// recovering what is there (see recovery.rs).
    pub async fn open(disk: D, dir: PathBuf, config: LogConfig) -> Result<Self, StorageError> {
        config.validate()?;
        let recovered = super::recovery::recover(&disk, &dir, &config).await?;
        let log = Self {
            disk,
            dir,
            config: Cell::new(config),
            segments: RefCell::new(recovered.segments),
            next_offset: Cell::new(recovered.next_offset),
            high_watermark: Cell::new(recovered.next_offset),
            log_start_offset: Cell::new(recovered.log_start_offset),
            pending_bytes: Cell::new(0),
            flush_lock: futures::lock::Mutex::new(()),
            failure: RefCell::new(None),
            housekeeping_lock: futures::lock::Mutex::new(()),
            clean_offset: Cell::new(recovered.cleaner.0),
            tombstones_due_ms: Cell::new(recovered.cleaner.1),
            opened_clean: Cell::new(recovered.clean_close.then_some((
                recovered.log_start_offset,
                recovered.next_offset,
                recovered.cleaner,
            ))),
            epochs: EpochState::default(),
        };
        log.finish_interrupted_deletion().await?;
        log.load_epochs().await?;
        Ok(log)
    }

    /// Removes whole segments left below the log start by a deletion that
    /// was cut short (a crash, or a failed removal, between the log-start
    /// checkpoint and the last file of the last segment). Retention would
    /// only remove them when it deletes again, and DeleteRecords or a
    /// compact-only topic never would: they would stay on disk for good.
    async fn finish_interrupted_deletion(&self) -> Result<(), StorageError> {
        let removed = self.remove_segments_below_start().await?;
        if removed.segments > 0 {
            tracing::info!(dir = %self.dir.display(), segments = removed.segments,
                bytes = removed.bytes, log_start = self.log_start_offset.get(),
                "removed segments left below the log start by an interrupted deletion");
        }
        Ok(())
    }

    /// Drops everything in memory and recovers the log from its files, as
    /// a restart would, without one: used after a failed flush whose cause
    /// has gone (a full disk with space freed). Batches appended but not
    /// durable are dropped (their producers were told the produce failed);
    /// recovery cuts a torn tail back to the last whole batch, so the next
    /// append lands right after durable data. Holds the flush and
    /// housekeeping locks; the caller holds off appends.
    pub async fn reopen(&self) -> Result<(), StorageError> {
        let _flush = self.flush_lock.lock().await;
        let _housekeeping = self.housekeeping_lock.lock().await;
        self.reload().await
    }

    /// `reopen`'s work; the caller holds the flush and housekeeping locks
    /// (`truncate_to` reuses it after cutting the files).
    pub(crate) async fn reload(&self) -> Result<(), StorageError> {
        let config = self.config.get();
        let recovered = super::recovery::recover(&self.disk, &self.dir, &config).await?;
        self.segments.replace(recovered.segments);
        self.next_offset.set(recovered.next_offset);
        self.high_watermark.set(recovered.next_offset);
        self.log_start_offset.set(recovered.log_start_offset);
        self.pending_bytes.set(0);
        self.clean_offset.set(recovered.cleaner.0);
        self.tombstones_due_ms.set(recovered.cleaner.1);
        self.opened_clean.set(None);
        self.failure.replace(None);
        self.finish_interrupted_deletion().await?;
        self.load_epochs().await
    }

    /// The cleaner's `(clean_offset, due_ms)`, as the checkpoint holds it.
    pub(crate) fn cleaner_state(&self) -> (i64, Option<i64>) {
        (self.clean_offset.get(), self.tombstones_due_ms.get())
    }

    /// The current settings.
    pub fn config(&self) -> LogConfig {
        self.config.get()
    }

    /// Replaces the settings (a topic config change); later appends and
    /// rolls follow them. Refused if out of range.
    pub fn set_config(&self, config: LogConfig) -> Result<(), StorageError> {
        config.validate()?;
        self.config.set(config);
        Ok(())
    }

    /// Assigns offsets to `batches` (whole v2 batches, CRC already checked
    /// by the caller) by rewriting each baseOffset, and queues the bytes for
    /// the next flush. No I/O. Not durable, and not readable, until a
    /// [`flush`](Self::flush) covering it returns.
    pub fn append(&self, batches: &mut [u8]) -> Result<AppendInfo, StorageError> {
        self.check_writable()?;
        let framed = frame(batches)?;
        let first = self.next_offset.get();
        let records: i64 = framed
            .iter()
            .map(|f| i64::from(f.last_offset_delta) + 1)
            .sum();
        if first.checked_add(records).is_none() {
            return Err(StorageError::OffsetOverflow { next_offset: first });
        }
        let mut segments = self.segments.borrow_mut();
        for f in &framed {
            let bytes = &mut batches[f.position..f.position + f.total_len];
            let info = self.assign(bytes, f);
            self.place(&mut segments, bytes, &info);
        }
        let appended: usize = framed.iter().map(|f| f.total_len).sum();
        self.pending_bytes.set(self.pending_bytes.get() + appended);
        Ok(AppendInfo {
            base_offset: first,
            last_offset: self.next_offset.get() - 1,
        })
    }

    /// Queues one batch whose offsets are final (`append` assigned them,
    /// `append_replica` kept the leader's): rolls if needed, copies it into
    /// the active segment's pending tail, indexes it, notes its epoch.
    pub(crate) fn place(&self, segments: &mut Vec<Segment<D>>, bytes: &[u8], info: &BatchInfo) {
        self.roll_if_needed(segments, info);
        let active = segments.last_mut().expect("log has an active segment");
        active.copy_to_pending(&self.disk, bytes);
        active.index_batch(info, u64::from(self.config.get().index_interval_bytes));
        self.epochs.observe(info.leader_epoch, info.base_offset);
    }

    /// Rewrites the batch's baseOffset to the log end and advances it.
    fn assign(&self, bytes: &mut [u8], framed: &Framed) -> BatchInfo {
        let base_offset = self.next_offset.get();
        set_base_offset(bytes, base_offset);
        let last_offset = base_offset + i64::from(framed.last_offset_delta);
        self.next_offset.set(last_offset + 1);
        BatchInfo {
            base_offset,
            last_offset,
            total_len: framed.total_len as u64,
            max_timestamp: framed.max_timestamp,
            leader_epoch: framed.leader_epoch,
        }
    }

    /// Seals the active segment and starts one at `batch.base_offset` if the
    /// batch would push it past `segment_bytes` or past u32 relative
    /// offsets, or if its max timestamp is more than `segment_ms` after the
    /// segment's first batch (Kafka's time-based roll: batch timestamps, not
    /// the wall clock, so replays and restarts roll the same way).
    fn roll_if_needed(&self, segments: &mut Vec<Segment<D>>, batch: &BatchInfo) {
        let config = self.config.get();
        let active = segments.last_mut().expect("log has an active segment");
        let full =
            active.log_bytes > 0 && active.log_bytes + batch.total_len > config.segment_bytes;
        let aged = active.log_bytes > 0
            && active.first_timestamp != i64::MIN
            && batch.max_timestamp.saturating_sub(active.first_timestamp) > config.segment_ms;
        if !full && !aged && active.fits_offset(batch.last_offset) {
            return;
        }
        Self::seal_active(&self.dir, segments, batch.base_offset);
    }

    /// Seals the active segment and starts an empty one at `next_offset`.
    pub(crate) fn seal_active(dir: &Path, segments: &mut Vec<Segment<D>>, next_offset: i64) {
        let active = segments.last_mut().expect("log has an active segment");
        active.finish_time_index();
        active.sealed = true;
        segments.push(Segment::new(dir, next_offset));
    }

    /// Base offsets of the segments, oldest first (the active one last).
    pub fn segment_bases(&self) -> Vec<i64> {
        self.segments
            .borrow()
            .iter()
            .map(|s| s.base_offset)
            .collect()
    }

    /// Base offset of the segment holding `offset` (the first segment's for
    /// offsets below it).
    pub fn segment_base_of(&self, offset: i64) -> i64 {
        let segments = self.segments.borrow();
        let after = segments.partition_point(|s| s.base_offset <= offset);
        segments[after.saturating_sub(1)].base_offset
    }

    /// Log end offset: the offset the next appended record gets.
    pub fn next_offset(&self) -> i64 {
        self.next_offset.get()
    }

    /// Durable end offset: every offset below it is on stable storage and
    /// readable.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.get()
    }

    /// First offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.get()
    }

    /// Bytes of record batches in all segments (appended, flushed or not).
    pub fn size_bytes(&self) -> u64 {
        self.segments.borrow().iter().map(|s| s.log_bytes).sum()
    }

    /// Bytes appended but not yet covered by a completed flush.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes.get()
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Clean shutdown: flushes, trims the active segment's preallocation,
    /// writes its indexes and the checkpoint. Later writes are refused.
    pub async fn close(&self) -> Result<(), StorageError> {
        let _guard = self.flush_lock.lock().await;
        let now = (
            self.log_start_offset(),
            self.next_offset(),
            self.cleaner_state(),
        );
        if self.failure.borrow().is_none() && self.opened_clean.get() == Some(now) {
            // Opened after a clean close and nothing changed since: the
            // files, indexes and checkpoint on disk are already this log.
            // (10,000 idle partitions: a restart skips ~6 syncs each.)
            *self.failure.borrow_mut() = Some("log closed".into());
            return Ok(());
        }
        self.flush_locked().await?;
        *self.failure.borrow_mut() = Some("log closed".into());
        let (file, log_bytes) = {
            let mut segments = self.segments.borrow_mut();
            let active = segments.last_mut().expect("log has an active segment");
            active.finish_time_index();
            (active.file.clone(), active.log_bytes)
        };
        if let Some(file) = file {
            let path = self.active_path();
            let trunc = file.truncate(log_bytes).await;
            trunc.map_err(StorageError::io_at("truncate", &path, Some(log_bytes)))?;
            let sync = file.fdatasync().await;
            sync.map_err(StorageError::io_at("fdatasync", &path, None))?;
            self.write_indexes(self.active_base()).await?;
        }
        let checkpoint = Checkpoint::new(
            self.log_start_offset(),
            self.next_offset(),
            self.cleaner_state(),
        );
        write_checkpoint(&self.disk, &self.dir, checkpoint).await
    }

    /// Removes the partition directory and everything in it.
    pub async fn delete(self) -> Result<(), StorageError> {
        let _guard = self.flush_lock.lock().await;
        self.segments.borrow_mut().clear();
        let removed = self.disk.remove_dir_all(&self.dir).await;
        removed.map_err(StorageError::io_at("remove dir", &self.dir, None))
    }

    /// Writes the `.index` and `.timeindex` of segment `base_offset`.
    pub(crate) async fn write_indexes(&self, base_offset: i64) -> Result<(), StorageError> {
        let (index_path, index, time_path, time_index) = {
            let segments = self.segments.borrow();
            let segment = &segments[self.segment_position(&segments, base_offset)];
            let index = (segment.sibling("index"), segment.index.encode());
            (
                index.0,
                index.1,
                segment.sibling("timeindex"),
                segment.time_index.encode(),
            )
        };
        // Time index first: recovery keeps only the time entries below the
        // offset index's last entry, so a newer time index beside an older
        // offset index is harmless, while the reverse would lose the maxima
        // of the batches between the two (found by tests/sim_storage.rs).
        write_small_file(&self.disk, &time_path, &time_index).await?;
        write_small_file(&self.disk, &index_path, &index).await
    }

    /// Index in `segments` of the segment with `base_offset` (must exist).
    pub(crate) fn segment_position(&self, segments: &[Segment<D>], base_offset: i64) -> usize {
        segments
            .binary_search_by_key(&base_offset, |s| s.base_offset)
            .expect("segment still in the log")
    }

    fn active_base(&self) -> i64 {
        self.segments
            .borrow()
            .last()
            .expect("active segment")
            .base_offset
    }

    fn active_path(&self) -> PathBuf {
        self.segments
            .borrow()
            .last()
            .expect("active segment")
            .path
            .clone()
    }

    /// Refuses writes after a failed flush or close.
    pub(crate) fn check_writable(&self) -> Result<(), StorageError> {
        match &*self.failure.borrow() {
            None => Ok(()),
            Some(reason) => Err(StorageError::Failed {
                dir: self.dir.clone(),
                reason: reason.clone(),
            }),
        }
    }
}

/// One batch of an append, as framed by the protocol's iterator.
pub(crate) struct Framed {
    pub(crate) position: usize,
    pub(crate) total_len: usize,
    pub(crate) last_offset_delta: i32,
    pub(crate) max_timestamp: i64,
    pub(crate) leader_epoch: i32,
    /// The batch's baseOffset as received (`append` overwrites it,
    /// `append_replica` keeps it).
    pub(crate) base_offset: i64,
}

/// Frames `buf` into whole batches; refuses partial or inconsistent ones.
pub(crate) fn frame(buf: &[u8]) -> Result<Vec<Framed>, StorageError> {
    let mut framed = Vec::new();
    for batch in batches(buf) {
        let batch = batch?;
        let delta = batch.header.last_offset_delta();
        if delta < 0 {
            return Err(StorageError::InvalidBatch(
                BatchError::InconsistentRecordCount {
                    records_count: batch.header.records_count(),
                    last_offset_delta: delta,
                },
            ));
        }
        framed.push(Framed {
            position: batch.position,
            total_len: batch.bytes.len(),
            last_offset_delta: delta,
            max_timestamp: batch.header.max_timestamp(),
            leader_epoch: batch.header.partition_leader_epoch(),
            base_offset: batch.header.base_offset(),
        });
    }
    if framed.is_empty() {
        return Err(StorageError::InvalidBatch(BatchError::Empty));
    }
    Ok(framed)
}

#[cfg(test)]
mod preallocation_tests {
    use super::super::PREALLOCATE_BYTES_DEFAULT;
    use super::*;

    /// A partition that receives a few KiB holds 256 KiB of disk, not
    /// 64 MiB; a busy one doubles up to full 64 MiB steps.
    #[test]
    fn preallocation_doubles_from_first_step_to_full_steps() {
        let config = LogConfig::default();
        let mut sizes = vec![config.allocation_for(0, 1).unwrap()];
        while *sizes.last().unwrap() < 3 * PREALLOCATE_BYTES_DEFAULT {
            let allocated = *sizes.last().unwrap();
            sizes.push(config.allocation_for(allocated, allocated + 1).unwrap());
        }
        let kib = [
            256u64,
            512,
            1 << 10,
            2 << 10,
            4 << 10,
            8 << 10,
            16 << 10,
            32 << 10,
            64 << 10,
        ];
        let mut expected: Vec<u64> = kib.iter().map(|k| k << 10).collect();
        expected.extend([128u64 << 20, 192 << 20]);
        assert_eq!(sizes, expected);
        // A large batch is covered in one allocation, whatever the step.
        assert_eq!(config.allocation_for(0, 5 << 20), Some(5 << 20));
    }
}
