//! The leader-epoch cache of a [`PartitionLog`]: kept in step with
//! appends, truncation and the log start, persisted as
//! `leader-epoch-checkpoint`, and loaded (or rebuilt) on open.
//!
//! Write order, so the file is never *behind* durable data: `flush` writes
//! the file (when the cache changed) before it writes the batches it took;
//! `truncate_to` cuts the segments first and rewrites the file after; the
//! log start is checkpointed before the file drops entries below it. A
//! crash can therefore only leave the file *ahead* (entries at or past the
//! recovered end, or below the log start), which `load_epochs` trims.
//!
//! On open the file is trusted unless it is missing, unreadable, or its
//! latest epoch is below the epoch of the log's last batch (the file was
//! lost or is from before this log's newer batches); then the cache is
//! rebuilt from the partitionLeaderEpoch of every batch header (no CRC
//! check: recovery already verified the tail, and only headers are read).
//! A log whose last batch carries no epoch (-1: written before the broker
//! stamped batches) has no epochs, so that case needs no scan.

use std::cell::{Cell, RefCell};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::rc::Rc;

use super::disk::Disk;
use super::epoch_cache::{Divergence, EpochEntry, LeaderEpochCache, LEADER_EPOCH_FILE_NAME};
use super::error::StorageError;
use super::log::PartitionLog;
use super::scan::{scan_batches, FileWindow, ScanRule, READ_CHUNK_BYTES};
use super::small_file::{read_small_file, write_small_file};

/// The cache with its persistence bookkeeping. `!Send`, like the log.
#[derive(Default)]
pub(crate) struct EpochState {
    cache: RefCell<LeaderEpochCache>,
    /// Bumped on every change of `cache`.
    version: Cell<u64>,
    /// The `version` the file holds.
    persisted: Cell<u64>,
    /// Serializes writers of the file (flush, log start moves, truncation).
    write_lock: futures::lock::Mutex<()>,
}

impl EpochState {
    /// An appended batch of `epoch` at `base_offset` (see
    /// `LeaderEpochCache::observe`). Integer compares unless the epoch is
    /// new.
    pub(crate) fn observe(&self, epoch: i32, base_offset: i64) {
        if epoch < 0 {
            return;
        }
        self.change(|c| c.observe(epoch, base_offset));
    }

    /// Runs `f` on the cache; marks it changed if `f` says so.
    pub(crate) fn change(&self, f: impl FnOnce(&mut LeaderEpochCache) -> bool) {
        if f(&mut self.cache.borrow_mut()) {
            self.version.set(self.version.get() + 1);
        }
    }

    fn dirty(&self) -> bool {
        self.version.get() != self.persisted.get()
    }

    fn replace(&self, cache: LeaderEpochCache, persisted: bool) {
        *self.cache.borrow_mut() = cache;
        self.version.set(self.version.get() + 1);
        if persisted {
            self.persisted.set(self.version.get());
        }
    }
}

impl<D: Disk> PartitionLog<D> {
    /// The latest leader epoch that wrote to this log, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.cache.borrow().latest_epoch()
    }

    /// OffsetsForLeaderEpoch for `epoch`: `(epoch, end_offset)` with Kafka's
    /// semantics (see `LeaderEpochCache::end_offset_for`); the latest
    /// epoch ends at the log end offset ([`next_offset`](Self::next_offset),
    /// Kafka's LEO).
    pub fn end_offset_for(&self, epoch: i32) -> (i32, i64) {
        let log_end = self.next_offset.get();
        self.epochs.cache.borrow().end_offset_for(epoch, log_end)
    }

    /// Fetch v12+ DivergingEpoch check of a fetcher at `fetch_offset` whose
    /// last fetched batch had `last_fetched_epoch` (see
    /// `LeaderEpochCache::diverging`).
    pub fn diverging_epoch(&self, last_fetched_epoch: i32, fetch_offset: i64) -> Divergence {
        let log_end = self.next_offset.get();
        let cache = self.epochs.cache.borrow();
        cache.diverging(last_fetched_epoch, fetch_offset, log_end)
    }

    /// A new leader's epoch starts at the log end (Kafka assigns it when a
    /// replica becomes leader, before it appends anything). Kept in memory;
    /// written with the next flush.
    pub fn assign_leader_epoch(&self, epoch: i32) {
        self.epochs.observe(epoch, self.next_offset.get());
    }

    /// The cache's entries, oldest first.
    pub fn epoch_entries(&self) -> Vec<EpochEntry> {
        self.epochs.cache.borrow().entries().to_vec()
    }

    /// Writes `leader-epoch-checkpoint` if the cache changed since it was
    /// last written (atomic, fsynced).
    pub(crate) async fn persist_epochs(&self) -> Result<(), StorageError> {
        if !self.epochs.dirty() {
            return Ok(());
        }
        let _writer = self.epochs.write_lock.lock().await;
        let (version, bytes) = (
            self.epochs.version.get(),
            self.epochs.cache.borrow().encode(),
        );
        if version == self.epochs.persisted.get() {
            return Ok(()); // a writer that held the lock wrote it
        }
        write_small_file(&self.disk, &self.epoch_file_path(), &bytes).await?;
        self.epochs.persisted.set(version);
        Ok(())
    }

    /// Loads the cache after recovery (open, reopen): the file trimmed to
    /// the log, or a rebuild from the batch headers (module doc).
    pub(crate) async fn load_epochs(&self) -> Result<(), StorageError> {
        let path = self.epoch_file_path();
        let loaded = read_small_file(&self.disk, &path).await?.and_then(|bytes| {
            let cache = LeaderEpochCache::decode(&bytes);
            if cache.is_none() {
                tracing::warn!(path = %path.display(), "leader-epoch file unreadable; rebuilding it from the log");
            }
            cache
        });
        let last_epoch = self.last_batch_epoch();
        let found = loaded.is_some();
        let mut cache = loaded.unwrap_or_default();
        let trimmed = cache.truncate_from_end(self.next_offset.get())
            | cache.truncate_from_start(self.log_start_offset.get());
        let behind = cache.latest_epoch().unwrap_or(-1) < last_epoch;
        if behind {
            tracing::info!(dir = %self.dir.display(), last_epoch,
                file_epoch = ?cache.latest_epoch(), "rebuilding the leader-epoch cache from the log");
            cache = self.rebuild_epochs().await?;
        }
        // A missing file with nothing to hold stays missing (an empty or
        // pre-epoch partition costs no file); anything else is written.
        let write = behind || trimmed || (!found && last_epoch >= 0);
        self.epochs.replace(cache, !write);
        self.persist_epochs().await
    }

    /// partitionLeaderEpoch of the log's last batch (-1 if empty).
    fn last_batch_epoch(&self) -> i32 {
        let segments = self.segments.borrow();
        let last = segments.iter().rev().find(|s| s.log_bytes > 0);
        last.map_or(-1, |s| s.last_leader_epoch)
    }

    /// Reads every batch header of every segment and collects the epochs.
    async fn rebuild_epochs(&self) -> Result<LeaderEpochCache, StorageError> {
        let files: Vec<(Rc<D::File>, PathBuf, u64, i64)> = {
            let segments = self.segments.borrow();
            let with_files = segments.iter().filter(|s| s.log_bytes > 0);
            with_files
                .filter_map(|s| {
                    Some((
                        s.file.clone()?,
                        s.path.clone(),
                        s.durable_bytes,
                        s.base_offset,
                    ))
                })
                .collect()
        };
        let mut cache = LeaderEpochCache::default();
        for (file, path, limit, base_offset) in files {
            let rule = ScanRule {
                limit,
                expected_offset: Some(base_offset),
                verify_crc: false,
                read_ahead: READ_CHUNK_BYTES,
            };
            let mut window = FileWindow::new(&*file, &path);
            scan_batches(&mut window, 0, rule, |_, batch| {
                cache.observe(batch.leader_epoch, batch.base_offset);
                ControlFlow::Continue(())
            })
            .await?;
        }
        cache.truncate_from_start(self.log_start_offset.get());
        Ok(cache)
    }

    fn epoch_file_path(&self) -> PathBuf {
        self.dir.join(LEADER_EPOCH_FILE_NAME)
    }
}
