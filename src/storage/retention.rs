//! Moving the log start: retention by time and size, DeleteRecords, and
//! removal of whole segments below the log start.
//!
//! Kafka's rules:
//! - Only whole closed segments go. A segment is past `retention_ms` when
//!   its largest batch timestamp is older than `now - retention_ms`; past
//!   `retention_bytes` while the partition minus that segment is still at
//!   least the bound (so the log stays within the bound plus one segment).
//!   Deletion stops at the first segment that must stay (a prefix).
//! - When every segment, the active one included, is past `retention_ms`,
//!   the active segment is rolled first so the expired data can go (Kafka
//!   does the same); the log then holds one empty active segment.
//! - DeleteRecords moves the log start to any offset up to the high
//!   watermark; whole segments below it are removed, the rest is hidden
//!   (reads below the log start get OFFSET_OUT_OF_RANGE).
//!
//! Crash order: the new log start is written to `partition.checkpoint`
//! (atomic tmp + rename) *before* any file is removed, then segments leave
//! the in-memory list, then their files are deleted oldest first (indexes
//! before the `.log`, so no index outlives its data), then the directory is
//! synced once. A crash in between leaves old segments below a durable log
//! start; recovery takes the checkpoint's log start, and `PartitionLog::open`
//! removes them (waiting for the next retention pass would leave them for
//! good when it deletes nothing). Nothing at or above the log start is ever
//! touched. Each step is a crash point of `fault` (tested on the real
//! binary by `tests/integration/test_crash_lifecycle.py`).
//!
//! Only segments that are sealed, whose seal is on disk and that are fully
//! durable are candidates, so a flush never races a deletion.

use std::path::PathBuf;

use super::checkpoint::{write_checkpoint, Checkpoint};
use super::disk::Disk;
use super::error::StorageError;
use super::fault::{reached, Step};
use super::log::PartitionLog;
use super::segment::SEGMENT_FILES_REMOVAL_ORDER;

/// Retention settings of one pass (negative = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `retention.ms`.
    pub retention_ms: i64,
    /// `retention.bytes`.
    pub retention_bytes: i64,
}

/// What a retention pass or DeleteRecords removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Whole segments deleted.
    pub segments: usize,
    /// Their bytes.
    pub bytes: u64,
}

impl<D: Disk> PartitionLog<D> {
    /// Applies `policy` at wall-clock `now_ms`: deletes the expired prefix
    /// of closed segments and moves the log start past it.
    pub async fn enforce_retention(
        &self,
        now_ms: i64,
        policy: RetentionPolicy,
    ) -> Result<Removed, StorageError> {
        let _serial = self.housekeeping_lock.lock().await;
        self.check_writable()?;
        if policy.retention_ms >= 0 && self.all_expired(now_ms, policy.retention_ms) {
            let (segments, next) = (&mut *self.segments.borrow_mut(), self.next_offset.get());
            Self::seal_active(&self.dir, segments, next);
        }
        // Persist any seal (trim + indexes) and the rolled data first.
        let _flush = self.flush_lock.lock().await;
        self.flush_locked().await?;
        drop(_flush);
        let count = self.expired_prefix(now_ms, policy);
        let Some(new_start) = self.base_after(count) else {
            return Ok(Removed::default());
        };
        self.move_log_start(new_start).await?;
        self.remove_segments_below_start().await
    }

    /// DeleteRecords: moves the log start to `offset` (-1: the high
    /// watermark) and removes the whole segments below it. Returns the new
    /// log start (the low watermark). An offset past the high watermark is
    /// `OffsetOutOfRange`; one below the current start changes nothing.
    pub async fn delete_records(&self, offset: i64) -> Result<i64, StorageError> {
        let _serial = self.housekeeping_lock.lock().await;
        self.check_writable()?;
        let high_watermark = self.high_watermark.get();
        let target = if offset == -1 { high_watermark } else { offset };
        if target < 0 || target > high_watermark {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset.get(),
                high_watermark,
            });
        }
        if target > self.log_start_offset.get() {
            self.move_log_start(target).await?;
            self.remove_segments_below_start().await?;
        }
        Ok(self.log_start_offset.get())
    }

    /// True if the log has data and every segment's newest batch is older
    /// than `now - retention_ms`.
    fn all_expired(&self, now_ms: i64, retention_ms: i64) -> bool {
        let segments = self.segments.borrow();
        let active = segments.last().expect("active segment");
        active.log_bytes > 0
            && active.max_timestamp != i64::MIN
            && segments
                .iter()
                .all(|s| s.max_timestamp < now_ms.saturating_sub(retention_ms))
    }

    /// How many leading segments retention may delete.
    fn expired_prefix(&self, now_ms: i64, policy: RetentionPolicy) -> usize {
        let segments = self.segments.borrow();
        let mut excess = match policy.retention_bytes {
            bytes if bytes >= 0 => {
                let total: u64 = segments.iter().map(|s| s.log_bytes).sum();
                total as i64 - bytes
            }
            _ => i64::MIN,
        };
        let mut count = 0;
        for segment in segments.iter() {
            let closed = segment.sealed && segment.seal_persisted;
            let durable = segment.durable_bytes == segment.log_bytes;
            if !closed || !durable {
                break;
            }
            let by_time = policy.retention_ms >= 0
                && segment.max_timestamp < now_ms.saturating_sub(policy.retention_ms);
            let by_size = excess != i64::MIN && excess - segment.log_bytes as i64 >= 0;
            if !by_time && !by_size {
                break;
            }
            if excess != i64::MIN {
                excess -= segment.log_bytes as i64;
            }
            count += 1;
        }
        count
    }

    /// Base offset of segment `count` (the first one kept), if `count > 0`.
    fn base_after(&self, count: usize) -> Option<i64> {
        let segments = self.segments.borrow();
        (count > 0).then(|| segments[count].base_offset)
    }

    /// Makes `new_start` the durable log start (checkpoint first).
    async fn move_log_start(&self, new_start: i64) -> Result<(), StorageError> {
        if new_start <= self.log_start_offset.get() {
            return Ok(());
        }
        let next_offset = self.high_watermark.get().max(new_start);
        let checkpoint = Checkpoint::new(new_start, next_offset, self.cleaner_state());
        write_checkpoint(&self.disk, &self.dir, checkpoint).await?;
        reached(Step::LogStartCheckpointWritten);
        self.log_start_offset.set(new_start);
        // After the checkpoint: a crash before this write leaves entries
        // below the start, which loading trims (epochs.rs).
        self.epochs.change(|c| c.truncate_from_start(new_start));
        self.persist_epochs().await
    }

    /// Drops every closed segment that ends at or below the log start from
    /// the list, then deletes its files (oldest first).
    pub(crate) async fn remove_segments_below_start(&self) -> Result<Removed, StorageError> {
        let log_start = self.log_start_offset.get();
        let gone: Vec<(PathBuf, u64)> = {
            let mut segments = self.segments.borrow_mut();
            let keep_from = segments
                .iter()
                .position(|s| !(s.sealed && s.seal_persisted && s.end_offset <= log_start))
                .expect("the active segment is never sealed");
            segments
                .drain(..keep_from)
                .map(|s| (s.path.clone(), s.log_bytes))
                .collect()
        };
        let mut removed = Removed::default();
        for (path, bytes) in gone {
            for extension in SEGMENT_FILES_REMOVAL_ORDER {
                self.remove_if_present(&path.with_extension(extension))
                    .await?;
                reached(Step::segment_file_removed(extension));
            }
            removed.segments += 1;
            removed.bytes += bytes;
        }
        if removed.segments > 0 {
            // One sync per pass makes the removals durable before the pass
            // reports them; a power loss before it may bring back files
            // below the log start, which the next open removes.
            let synced = self.disk.sync_dir(&self.dir).await;
            synced.map_err(StorageError::io_at("sync dir", &self.dir, None))?;
            reached(Step::DeletionDirSynced);
        }
        Ok(removed)
    }

    /// Number of segments (the active one included).
    pub fn segment_count(&self) -> usize {
        self.segments.borrow().len()
    }
}
