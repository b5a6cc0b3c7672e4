//! `PartitionLog::flush`: write the pending tail, fdatasync, advance the
//! high watermark.
//!
//! Flushes are serialized by an async mutex. A caller first notes the log
//! end; if, once it holds the lock, an earlier flush already made that end
//! durable, it returns at once: concurrent producers share one fdatasync
//! (group commit). Otherwise it takes *everything* pending at that moment,
//! so later callers are likely covered by it.
//!
//! Per segment with pending data, in offset order: create the file if this
//! is its first flush (then sync the directory), grow the preallocation (doubling
//! from 256 KiB up to `preallocate_bytes` steps), write the chunks (at most
//! [`WRITES_IN_FLIGHT_MAX`] at once), fdatasync. A segment sealed by a roll
//! is then trimmed to its logical size and its indexes are written.
//!
//! A failed flush poisons the log: after a failed write or fdatasync the
//! durable content is unknown (the kernel may have dropped dirty state), so
//! the high watermark stays, appends and flushes are refused, and the owner
//! must reopen the log, which runs recovery.

use std::path::PathBuf;
use std::rc::Rc;

use futures::future::try_join_all;

use super::disk::{align_up, Disk, DiskFile, IoBuffer};
use super::error::StorageError;
use super::log::PartitionLog;
use super::small_file::sync_parent;

/// Chunk writes a flush keeps in flight at once (each at most
/// `WRITE_BYTES_MAX`).
pub const WRITES_IN_FLIGHT_MAX: usize = 16;

/// The work of one flush for one segment, taken under a short borrow.
struct FlushJob<D: Disk> {
    base_offset: i64,
    path: PathBuf,
    file: Option<Rc<D::File>>,
    chunks: Vec<(u64, Rc<D::Buffer>)>,
    /// Logical size once these chunks are written.
    log_bytes: u64,
    /// The segment was sealed: trim it and write its indexes afterwards.
    seal: bool,
}

/// Poisons the log if a flush that took pending chunks is dropped before it
/// finished (its future cancelled): what those chunks held is then unknown
/// on disk, exactly as after a failed write, so appends and flushes are
/// refused until the owner reopens the log and recovery finds the durable
/// end. Callers run flushes in tasks that are never cancelled (see
/// `Shard::call_partition`); this is the backstop that turns a cancellation
/// into a visible failure instead of an acknowledged hole.
struct PoisonUnlessFinished<'a, D: Disk> {
    log: &'a PartitionLog<D>,
}

impl<D: Disk> Drop for PoisonUnlessFinished<'_, D> {
    fn drop(&mut self) {
        tracing::error!(
            dir = %self.log.dir().display(),
            "a flush was cancelled mid-way: log refused until reopened"
        );
        *self.log.failure.borrow_mut() =
            Some("a flush was cancelled before its writes were durable".into());
    }
}

impl<D: Disk> PartitionLog<D> {
    /// Writes everything appended so far and fdatasyncs it. Serialized
    /// internally; concurrent callers share flushes. After `Ok`, the high
    /// watermark covers every batch appended before the call.
    pub async fn flush(&self) -> Result<(), StorageError> {
        self.check_writable()?;
        let target = self.next_offset.get();
        if self.high_watermark.get() >= target {
            return Ok(());
        }
        let _guard = self.flush_lock.lock().await;
        if self.high_watermark.get() >= target {
            return Ok(());
        }
        self.flush_locked().await
    }

    /// Flushes everything pending; the caller holds `flush_lock`.
    pub(crate) async fn flush_locked(&self) -> Result<(), StorageError> {
        self.check_writable()?;
        let end_offset = self.next_offset.get();
        let taken_bytes = self.pending_bytes.get();
        let jobs = self.take_jobs();
        // From here the taken chunks exist only in this future: dropped
        // before they are durable, the next flush would write the chunks
        // after them and move the high watermark over a hole.
        let unfinished = PoisonUnlessFinished { log: self };
        // The leader-epoch file goes first: it may be ahead of the durable
        // log after a crash, never behind it (epochs.rs).
        let written = match self.persist_epochs().await {
            Ok(()) => self.run_jobs(jobs).await,
            Err(e) => Err(e),
        };
        // Finished, well or not: a failure poisons with its own reason.
        std::mem::forget(unfinished);
        if let Err(e) = written {
            *self.failure.borrow_mut() = Some(format!("flush failed: {e}"));
            return Err(e);
        }
        self.high_watermark.set(end_offset);
        self.pending_bytes
            .set(self.pending_bytes.get() - taken_bytes);
        Ok(())
    }

    /// Takes the pending chunks of every segment that has some (and of
    /// sealed segments whose seal is not yet on disk).
    fn take_jobs(&self) -> Vec<FlushJob<D>> {
        let mut segments = self.segments.borrow_mut();
        let mut jobs = Vec::new();
        for segment in segments.iter_mut() {
            let seal = segment.sealed && !segment.seal_persisted;
            if segment.pending.is_empty() && !seal {
                continue;
            }
            segment.seal_persisted |= seal;
            jobs.push(FlushJob {
                base_offset: segment.base_offset,
                path: segment.path.clone(),
                file: segment.file.clone(),
                chunks: segment.take_pending(&self.disk),
                log_bytes: segment.log_bytes,
                seal,
            });
        }
        jobs
    }

    async fn run_jobs(&self, jobs: Vec<FlushJob<D>>) -> Result<(), StorageError> {
        for job in jobs {
            self.run_job(job).await?;
        }
        Ok(())
    }

    async fn run_job(&self, job: FlushJob<D>) -> Result<(), StorageError> {
        let file = match job.file {
            Some(file) => file,
            None => self.create_segment_file(job.base_offset, &job.path).await?,
        };
        self.preallocate(&file, &job.path, job.base_offset, job.log_bytes)
            .await?;
        write_chunks(&*file, &job.path, job.chunks).await?;
        let sync_started = std::time::Instant::now();
        let sync = file.fdatasync().await;
        crate::ops::metrics::record_fsync(sync_started.elapsed());
        sync.map_err(StorageError::io_at("fdatasync", &job.path, None))?;
        self.with_segment(job.base_offset, |s| s.durable_bytes = job.log_bytes);
        if job.seal {
            let trunc = file.truncate(job.log_bytes).await;
            trunc.map_err(StorageError::io_at(
                "truncate",
                &job.path,
                Some(job.log_bytes),
            ))?;
            self.with_segment(job.base_offset, |s| s.allocated_bytes = job.log_bytes);
            self.write_indexes(job.base_offset).await?;
        }
        Ok(())
    }

    /// Creates a segment's file, makes its directory entry durable, and
    /// records it in the segment.
    async fn create_segment_file(
        &self,
        base_offset: i64,
        path: &std::path::Path,
    ) -> Result<Rc<D::File>, StorageError> {
        let file = self.disk.open(path).await;
        let file = Rc::new(file.map_err(StorageError::io_at("create segment", path, None))?);
        sync_parent(&self.disk, path).await?;
        self.with_segment(base_offset, |s| s.file = Some(file.clone()));
        Ok(file)
    }

    /// Grows the file's preallocation so `log_bytes` (rounded up to a block)
    /// fits.
    pub(crate) async fn preallocate(
        &self,
        file: &D::File,
        path: &std::path::Path,
        base_offset: i64,
        log_bytes: u64,
    ) -> Result<(), StorageError> {
        let allocated = self.with_segment(base_offset, |s| s.allocated_bytes);
        let Some(target) = self
            .config
            .get()
            .allocation_for(allocated, align_up(log_bytes))
        else {
            return Ok(());
        };
        let done = file.preallocate(target).await;
        done.map_err(StorageError::io_at("preallocate", path, Some(target)))?;
        self.with_segment(base_offset, |s| s.allocated_bytes = target);
        Ok(())
    }

    /// Runs `f` on the segment with `base_offset` under a short borrow.
    pub(crate) fn with_segment<R>(
        &self,
        base_offset: i64,
        f: impl FnOnce(&mut super::segment::Segment<D>) -> R,
    ) -> R {
        let mut segments = self.segments.borrow_mut();
        let at = self.segment_position(&segments, base_offset);
        f(&mut segments[at])
    }
}

/// Writes `chunks`, [`WRITES_IN_FLIGHT_MAX`] at a time; a short write is an
/// error.
async fn write_chunks<F: DiskFile>(
    file: &F,
    path: &std::path::Path,
    chunks: Vec<(u64, Rc<F::Buffer>)>,
) -> Result<(), StorageError> {
    for group in chunks.chunks(WRITES_IN_FLIGHT_MAX) {
        let writes = group.iter().map(|(pos, buf)| async move {
            let len = buf.as_bytes().len();
            let written = file.write_at(buf.clone(), *pos).await;
            let written =
                written.map_err(StorageError::io_at("write segment", path, Some(*pos)))?;
            if written != len {
                let short = std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    format!("short write: {written} of {len} bytes"),
                );
                return Err(StorageError::io_at("write segment", path, Some(*pos))(
                    short,
                ));
            }
            Ok(())
        });
        try_join_all(writes).await?;
    }
    Ok(())
}
