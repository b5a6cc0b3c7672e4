//! `PartitionLog::truncate_to`: cut the end of the log (a follower whose
//! tail diverged from its leader's, KIP-101/KIP-279).
//!
//! Kafka's `truncateTo` semantics: every batch whose last offset is
//! `>= offset` goes, so a target inside a batch removes that whole batch
//! and the log then ends at the batch's base offset (`next_offset() <=
//! offset`; offsets stay dense, and a batch is never split). A target at
//! or past the log end changes nothing. A cut that would start below the
//! log start is refused (`TruncateBelowLogStart`); cutting below the high
//! watermark of a replicated partition is the caller's decision.
//!
//! Steps, each safe to crash after (recovery then opens a prefix of the
//! log as it was, never garbage):
//! 1. Flush: everything appended becomes durable, so the cut works on
//!    files only (pending tails need no surgery).
//! 2. `partition.checkpoint` names the new end (so the recovery after a
//!    crash does not report the cut tail as lost data at a clean close).
//! 3. Later segments are deleted, newest first, indexes before `.log`: a
//!    crash leaves a contiguous prefix of segments.
//! 4. The segment holding the cut is truncated at the cut batch's position
//!    and fdatasynced; a crash before leaves it whole (a prefix), after it
//!    the next segment, if one was left, no longer follows it and recovery
//!    deletes it.
//! 5. Its indexes are rewritten without entries at or past the cut (a
//!    stale index is safe anyway: recovery refuses entries past the file's
//!    end and rescans), and the directory is synced.
//! 6. The in-memory log is rebuilt from the files by the recovery code
//!    (`reload`), which also trims the leader-epoch cache at the new end and
//!    writes its file (the file is thus rewritten after the cut, never
//!    before: it may be ahead of the log, never behind; epochs.rs).
//!
//! A failure part-way poisons the log (as a failed flush does): the owner
//! reopens it, and recovery finds whichever prefix the files hold.
//! Not done here, on purpose: the partition's own state above the log
//! (producer table, aborted-transaction index, tail cache) is rebuilt by
//! its owner after a truncation.

use std::ops::ControlFlow;
use std::path::PathBuf;

use super::checkpoint::{write_checkpoint, Checkpoint};
use super::disk::{Disk, DiskFile};
use super::error::StorageError;
use super::log::PartitionLog;
use super::scan::{scan_batches, FileWindow, ScanRule, ScanStop, READ_CHUNK_BYTES};
use super::segment::SEGMENT_FILES_REMOVAL_ORDER;
use super::small_file::write_small_file;

impl<D: Disk> PartitionLog<D> {
    /// Removes every batch whose last offset is `>= offset` (see the module
    /// doc). Afterwards `next_offset() <= offset` and the high watermark is
    /// the new end. Refused below the log start; a no-op at or past the
    /// log end.
    pub async fn truncate_to(&self, offset: i64) -> Result<(), StorageError> {
        let _serial = self.housekeeping_lock.lock().await;
        let _flush = self.flush_lock.lock().await;
        self.check_writable()?;
        if offset >= self.next_offset.get() {
            return Ok(());
        }
        self.check_above_start(offset, offset)?;
        self.flush_locked().await?;
        let (segment_base, cut_at, position) = self.find_cut(offset).await?;
        self.check_above_start(offset, cut_at)?;
        let result = self.cut_files(segment_base, cut_at, position).await;
        if let Err(e) = &result {
            tracing::error!(dir = %self.dir.display(), offset, "truncation failed part-way: log refused until reopened: {e}");
            *self.failure.borrow_mut() = Some(format!("truncation failed: {e}"));
        }
        result
    }

    fn check_above_start(&self, offset: i64, cut_at: i64) -> Result<(), StorageError> {
        let log_start = self.log_start_offset.get();
        if cut_at < log_start {
            return Err(StorageError::TruncateBelowLogStart {
                dir: self.dir.clone(),
                offset,
                cut_at,
                log_start,
            });
        }
        Ok(())
    }

    /// The segment holding `offset`, and the position and base offset of
    /// the batch holding it: `(segment_base, offset_of_cut, position)`.
    async fn find_cut(&self, offset: i64) -> Result<(i64, i64, u64), StorageError> {
        let (base, file, path, limit, from, expected) = {
            let segments = self.segments.borrow();
            let at = segments.partition_point(|s| s.base_offset <= offset);
            let segment = &segments[at.saturating_sub(1)];
            let floor = segment.index.floor(segment.relative(offset));
            let (relative, position) = floor.unwrap_or((0, 0));
            let Some(file) = segment.file.clone() else {
                return Err(self.no_cut(&segment.path, offset, "segment has no file"));
            };
            (
                segment.base_offset,
                file,
                segment.path.clone(),
                segment.durable_bytes,
                u64::from(position),
                segment.base_offset + i64::from(relative),
            )
        };
        let rule = ScanRule {
            limit,
            expected_offset: Some(expected),
            verify_crc: false,
            read_ahead: READ_CHUNK_BYTES,
        };
        let mut cut_at = None;
        let mut window = FileWindow::new(&*file, &path);
        let end = scan_batches(&mut window, from, rule, |_, batch| {
            if batch.last_offset < offset {
                return ControlFlow::Continue(());
            }
            cut_at = Some(batch.base_offset);
            ControlFlow::Break(())
        })
        .await?;
        match (end.stop, cut_at) {
            (ScanStop::Visitor, Some(cut_at)) => Ok((base, cut_at, end.position)),
            (stop, _) => Err(self.no_cut(&path, offset, &format!("scan ended: {stop:?}"))),
        }
    }

    fn no_cut(&self, path: &std::path::Path, offset: i64, why: &str) -> StorageError {
        StorageError::Corrupt {
            path: path.to_path_buf(),
            position: 0,
            reason: format!("no batch holds offset {offset} below the log end: {why}"),
        }
    }

    /// Steps 2-6 of the module doc: the log ends at `cut_at`, at `position`
    /// of segment `base`.
    async fn cut_files(&self, base: i64, cut_at: i64, position: u64) -> Result<(), StorageError> {
        let clean_offset = self.clean_offset.get().min(cut_at);
        self.clean_offset.set(clean_offset);
        let cleaner = (clean_offset, self.tombstones_due_ms.get());
        let checkpoint = Checkpoint::new(self.log_start_offset.get(), cut_at, cleaner);
        write_checkpoint(&self.disk, &self.dir, checkpoint).await?;
        self.remove_segments_after(base).await?;
        let (file, path, index, time_index) = {
            let segments = self.segments.borrow();
            let segment = &segments[self.segment_position(&segments, base)];
            let mut index = segment.index.clone();
            index.truncate_at_position(position);
            let mut time_index = segment.time_index.clone();
            time_index.truncate_to_offset(segment.relative(cut_at));
            (
                segment.file.clone(),
                segment.path.clone(),
                index,
                time_index,
            )
        };
        if let Some(file) = file {
            let trunc = file.truncate(position).await;
            trunc.map_err(StorageError::io_at("truncate", &path, Some(position)))?;
            let sync = file.fdatasync().await;
            sync.map_err(StorageError::io_at("fdatasync", &path, None))?;
        }
        // Time index first, as in `write_indexes`.
        write_small_file(
            &self.disk,
            &path.with_extension("timeindex"),
            &time_index.encode(),
        )
        .await?;
        write_small_file(&self.disk, &path.with_extension("index"), &index.encode()).await?;
        let synced = self.disk.sync_dir(&self.dir).await;
        synced.map_err(StorageError::io_at("sync dir", &self.dir, None))?;
        self.reload().await
    }

    /// Deletes the files of every segment after `base`, newest first.
    async fn remove_segments_after(&self, base: i64) -> Result<(), StorageError> {
        let later: Vec<PathBuf> = {
            let segments = self.segments.borrow();
            let later = segments.iter().filter(|s| s.base_offset > base);
            later.rev().map(|s| s.path.clone()).collect()
        };
        for path in later {
            for extension in SEGMENT_FILES_REMOVAL_ORDER {
                self.remove_if_present(&path.with_extension(extension))
                    .await?;
            }
        }
        Ok(())
    }

    /// Removes one file of a segment being dropped, if it is there (a
    /// crash may have removed it already: removal is resumable).
    pub(crate) async fn remove_if_present(
        &self,
        file: &std::path::Path,
    ) -> Result<(), StorageError> {
        let exists = self.disk.exists(file).await;
        if exists.map_err(StorageError::io_at("stat", file, None))? {
            let done = self.disk.remove_file(file).await;
            done.map_err(StorageError::io_at("remove segment", file, None))?;
        }
        Ok(())
    }
}
