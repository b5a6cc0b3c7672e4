//! `PartitionLog::reset_to`: empty the log and start it again at a later
//! offset (Kafka's `truncateFullyAndStartAt`).
//!
//! A follower that was away while its leader's retention or DeleteRecords
//! moved the log start past the follower's own end can never fetch what it
//! lacks: the leader answers OFFSET_OUT_OF_RANGE. Kafka's follower then
//! drops its whole log and starts again, empty, at the leader's log start;
//! this is that operation. Only forward on a log that holds batches: a
//! target below the end of one is refused (that is `truncate_to`'s job).
//! An empty log may also move back: the leader's log start can fall inside
//! a batch (DeleteRecords cuts batches logically), and the follower, reset
//! to that start, is then sent the whole batch, which it can only append
//! by starting again at the batch's base offset (as Kafka's follower does
//! on UnexpectedAppendOffsetException).
//!
//! Steps, each safe to crash after (recovery then opens either the old log,
//! or an empty one at a log start no later than the target, from which the
//! follower fetches, is refused again and resets again):
//! 1. Flush: nothing is pending, the files are the whole log.
//! 2. The leader-epoch file is emptied. It is then behind the log, which
//!    `load_epochs` repairs by rebuilding from the batches if a crash comes
//!    before the files go (epochs.rs).
//! 3. `partition.checkpoint` names the target as both log start and end.
//! 4. Every segment's files are deleted, oldest first (indexes before
//!    `.log`), so a crash leaves a contiguous suffix below the new start;
//!    then the directory is synced.
//! 5. The in-memory log is rebuilt from the files by the recovery code
//!    (`reload`): no segment left, so one empty active segment at the
//!    checkpoint's log start.
//!
//! A failure part-way poisons the log (as a failed flush does) until the
//! owner reopens it. The partition's state above the log (producer table,
//! aborted index, tail cache, high watermark) is its owner's to reset.

use std::path::PathBuf;

use super::checkpoint::{write_checkpoint, Checkpoint};
use super::disk::Disk;
use super::epoch_cache::LeaderEpochCache;
use super::error::StorageError;
use super::log::PartitionLog;
use super::segment::SEGMENT_FILES_REMOVAL_ORDER;

impl<D: Disk> PartitionLog<D> {
    /// Removes every batch and makes `offset` the log start and end (see
    /// the module doc). Refused below the end of a log that holds batches;
    /// a no-op on an empty log already there.
    pub async fn reset_to(&self, offset: i64) -> Result<(), StorageError> {
        let _serial = self.housekeeping_lock.lock().await;
        let _flush = self.flush_lock.lock().await;
        self.check_writable()?;
        let end = self.next_offset.get();
        let empty = self.log_start_offset.get() == end;
        if offset < end && !empty {
            return Err(StorageError::ResetBelowLogEnd {
                dir: self.dir.clone(),
                offset,
                end,
            });
        }
        if offset == end && empty {
            return Ok(());
        }
        self.flush_locked().await?;
        let result = self.reset_files(offset).await;
        if let Err(e) = &result {
            tracing::error!(dir = %self.dir.display(), offset, "log reset failed part-way: log refused until reopened: {e}");
            *self.failure.borrow_mut() = Some(format!("log reset failed: {e}"));
        }
        result
    }

    /// Steps 2-5 of the module doc.
    async fn reset_files(&self, offset: i64) -> Result<(), StorageError> {
        self.epochs.change(|cache| {
            let had = !cache.entries().is_empty();
            *cache = LeaderEpochCache::default();
            had
        });
        self.persist_epochs().await?;
        let checkpoint = Checkpoint::new(offset, offset, (offset, None));
        write_checkpoint(&self.disk, &self.dir, checkpoint).await?;
        let paths: Vec<PathBuf> = self
            .segments
            .borrow()
            .iter()
            .map(|s| s.path.clone())
            .collect();
        for path in paths {
            for extension in SEGMENT_FILES_REMOVAL_ORDER {
                self.remove_if_present(&path.with_extension(extension))
                    .await?;
            }
        }
        let synced = self.disk.sync_dir(&self.dir).await;
        synced.map_err(StorageError::io_at("sync dir", &self.dir, None))?;
        self.reload().await
    }
}
