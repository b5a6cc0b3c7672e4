//! The cleaner: log compaction of one partition (`cleanup.policy=compact`).
//!
//! A pass, on the owner shard, under the log's housekeeping lock:
//! 1. **Cleanable range**: the leading closed, fully durable segments whose
//!    newest batch is at least `min.compaction.lag.ms` old (never the
//!    active segment). The pass runs when dirty bytes (segments past the
//!    last pass's end) are at least `min.cleanable.dirty.ratio` of the
//!    range, or when the oldest dirty segment is older than
//!    `max.compaction.lag.ms`.
//! 2. **Offset map**: one read of the range records, per key, the offset of
//!    its latest record (full keys, at most [`OFFSET_MAP_BYTES_MAX`]; if
//!    the map fills up, only the segments mapped completely are cleaned).
//! 3. **Rewrite**, segment by segment, skipping segments with nothing to
//!    drop. A record goes if a later record has its key, or if it is a
//!    tombstone (null value) whose timestamp is older than
//!    `delete.retention.ms`. Kept records are copied byte for byte (their
//!    offset and timestamp deltas stay valid because the batch header's
//!    base offset and timestamps do not change), so **offsets never
//!    change**. A batch keeps its offset range (base offset, last offset
//!    delta) so the log stays dense from batch to batch, which recovery and
//!    reads check; a batch whose records all go becomes part of one empty
//!    batch covering the run of such batches (Kafka clients skip empty
//!    batches; Kafka's own cleaner leaves them too). Batches of idempotent
//!    producers keep their own header, so sequence numbers survive.
//! 4. **Swap**, crash-safe at every step: the cleaned segment is written to
//!    `<base>.cleaned.tmp` and fdatasynced; the old `.index` is removed;
//!    the temp file is renamed over `<base>.log` (atomic) and the directory
//!    synced; the new time index and offset index are written. A crash
//!    before the rename leaves the old segment (recovery deletes `*.tmp`);
//!    after it, the new one; a missing index is rebuilt by recovery. Either
//!    way every latest value is in the log.
//!
//! Limits, documented rather than hidden:
//! - Compressed batches are kept whole and their keys are not mapped (the
//!   broker has no codecs: batches are stored as received). A compressed
//!   topic is therefore not compacted; an uncompressed record superseded
//!   only by a compressed one stays.
//! - Transactional and control batches are kept whole (transactions are
//!   not implemented).
//! - Tombstones age by record timestamp, not by the time they were first
//!   cleaned (Kafka's delete horizon); with CreateTime and producer clocks
//!   far in the past a tombstone can go sooner than `delete.retention.ms`
//!   after it was written.
//! - The dirty mark is kept in memory: after a restart the first pass sees
//!   the whole range as dirty and cleans once.
//! - Cleaner I/O is paced by the caller's [`IoPacer`] (bytes/s budget).

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::protocol::batch::{check_crc, rebuild_batch, BatchHeader, BATCH_HEADER_LEN};
use crate::protocol::records::{records, RecordView};

use super::disk::{align_down, align_up, Disk, DiskFile, IoBuffer};
use super::error::StorageError;
use super::log::PartitionLog;
use super::scan::{batch_info, FileWindow};
use super::segment::{segment_path, Segment};
use super::small_file::{sync_parent, write_small_file};
use super::WRITE_BYTES_MAX;

/// Largest offset map one pass builds: key bytes plus
/// [`OFFSET_MAP_ENTRY_OVERHEAD_BYTES`] per key.
pub const OFFSET_MAP_BYTES_MAX: usize = 64 << 20;
/// Bookkeeping counted per map entry (hash slot, Vec header, offset), bytes.
pub const OFFSET_MAP_ENTRY_OVERHEAD_BYTES: usize = 48;
/// Read-ahead of the cleaner's segment reads, in bytes.
pub const CLEANER_READ_BYTES: usize = 1 << 20;
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
    /// Segments rewritten (those that had something to drop).
    pub segments_rewritten: usize,
    /// Bytes of the rewritten segments before and after.
    pub bytes_before: u64,
    /// See `bytes_before`.
    pub bytes_after: u64,
    /// Records dropped.
    pub records_removed: u64,
}

/// A segment of the cleanable range, copied out of the log.
struct Target<F> {
    base_offset: i64,
    end_offset: i64,
    path: PathBuf,
    file: Rc<F>,
    log_bytes: u64,
}

/// Latest offset per key over the mapped segments.
type OffsetMap = HashMap<Vec<u8>, i64>;

/// What the rewrite keeps of one record.
fn keep_record(map: &OffsetMap, record: &RecordView<'_>, tombstone_horizon: i64) -> bool {
    let Some(key) = record.key else {
        return true; // keyless records predate the compact policy: kept
    };
    match map.get(key) {
        Some(&latest) if latest > record.offset => false,
        Some(&latest) if latest == record.offset => {
            !(record.value.is_none() && record.timestamp < tombstone_horizon)
        }
        _ => true,
    }
}

/// Whether a batch can be filtered record by record.
fn filterable(header: &BatchHeader) -> bool {
    header.compression() == 0 && !header.is_control() && !header.is_transactional()
}

impl<D: Disk> PartitionLog<D> {
    /// Runs one compaction pass at wall-clock `now_ms` if the dirty ratio
    /// (or the max lag) asks for it; `None` when nothing was due.
    pub async fn compact<P: IoPacer>(
        &self,
        now_ms: i64,
        policy: &CompactionPolicy,
        pacer: &mut P,
    ) -> Result<Option<CompactionStats>, StorageError> {
        let _serial = self.housekeeping_lock.lock().await;
        self.check_writable()?;
        let Some(targets) = self.cleanable(now_ms, policy) else {
            return Ok(None);
        };
        let (map, mapped) = self.build_offset_map(&targets, pacer).await?;
        if mapped == 0 {
            tracing::warn!(dir = %self.dir.display(),
                "compaction skipped: the first segment's keys exceed the offset map ({OFFSET_MAP_BYTES_MAX} bytes)");
            return Ok(None);
        }
        let tombstone_horizon = now_ms.saturating_sub(policy.delete_retention_ms);
        let mut stats = CompactionStats {
            segments_cleaned: mapped,
            ..Default::default()
        };
        for target in &targets[..mapped] {
            self.clean_segment(target, &map, tombstone_horizon, pacer, &mut stats)
                .await?;
        }
        self.clean_offset.set(targets[mapped - 1].end_offset);
        Ok(Some(stats))
    }

    /// The cleanable range, if a pass is due.
    fn cleanable(&self, now_ms: i64, policy: &CompactionPolicy) -> Option<Vec<Target<D::File>>> {
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
                .filter(|_| closed && s.max_timestamp <= lag_horizon)
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
        let oldest_dirty = oldest_dirty?;
        let overdue = oldest_dirty <= now_ms.saturating_sub(policy.max_compaction_lag_ms);
        let ratio = dirty as f64 / total.max(1) as f64;
        (dirty > 0 && (ratio >= policy.min_cleanable_dirty_ratio || overdue)).then_some(targets)
    }

    /// Maps every key of the range to its latest offset. Returns the map
    /// and how many leading segments it covers completely.
    async fn build_offset_map<P: IoPacer>(
        &self,
        targets: &[Target<D::File>],
        pacer: &mut P,
    ) -> Result<(OffsetMap, usize), StorageError> {
        let mut map = OffsetMap::new();
        let mut map_bytes = 0usize;
        for (i, target) in targets.iter().enumerate() {
            let mut reader = BatchReader::new(&*target.file, &target.path, target.log_bytes);
            while let Some(batch) = reader.next().await? {
                let Ok(header) = BatchHeader::parse(batch) else {
                    continue;
                };
                let recs = filterable(header).then(|| records(batch)).flatten();
                for record in recs.into_iter().flatten() {
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
                    return Ok((map, i));
                }
            }
            pacer.pace(target.log_bytes).await;
        }
        Ok((map, targets.len()))
    }

    /// Rewrites one segment if it has anything to drop, and swaps it in.
    async fn clean_segment<P: IoPacer>(
        &self,
        target: &Target<D::File>,
        map: &OffsetMap,
        tombstone_horizon: i64,
        pacer: &mut P,
        stats: &mut CompactionStats,
    ) -> Result<(), StorageError> {
        if !self.has_droppable(target, map, tombstone_horizon).await? {
            return Ok(());
        }
        let tmp = self
            .dir
            .join(format!("{:020}.cleaned.tmp", target.base_offset));
        let mut writer = SegmentWriter::create(&self.disk, &tmp).await?;
        let mut segment = Segment::new(&self.dir, target.base_offset);
        let interval = u64::from(self.config.get().index_interval_bytes);
        let mut run = EmptyRun::default();
        let mut reader = BatchReader::new(&*target.file, &target.path, target.log_bytes);
        let mut since_pace = 0u64;
        while let Some(batch) = reader.next().await? {
            since_pace += batch.len() as u64;
            let mut out = Vec::new();
            stats.records_removed +=
                rewrite_batch(batch, map, tombstone_horizon, &mut run, &mut out);
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
        self.swap_in(target, &tmp, file, segment).await
    }

    /// True if the rewrite would drop at least one record.
    async fn has_droppable(
        &self,
        target: &Target<D::File>,
        map: &OffsetMap,
        tombstone_horizon: i64,
    ) -> Result<bool, StorageError> {
        let mut reader = BatchReader::new(&*target.file, &target.path, target.log_bytes);
        while let Some(batch) = reader.next().await? {
            let Ok(header) = BatchHeader::parse(batch) else {
                continue;
            };
            let recs = filterable(header).then(|| records(batch)).flatten();
            if recs.is_some_and(|rs| rs.iter().any(|r| !keep_record(map, r, tombstone_horizon))) {
                return Ok(true);
            }
        }
        Ok(false)
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
        let renamed = self.disk.rename(tmp, &target.path).await;
        renamed.map_err(StorageError::io_at("rename cleaned segment", tmp, None))?;
        sync_parent(&self.disk, &target.path).await?;
        segment.finish_time_index();
        segment.sealed = true;
        segment.seal_persisted = true;
        segment.durable_bytes = segment.log_bytes;
        segment.allocated_bytes = segment.log_bytes;
        segment.file = Some(Rc::new(file));
        let time_index = segment.time_index.encode();
        write_small_file(&self.disk, &segment.sibling("timeindex"), &time_index).await?;
        write_small_file(&self.disk, &index_path, &segment.index.encode()).await?;
        let mut segments = self.segments.borrow_mut();
        let at = self.segment_position(&segments, target.base_offset);
        segments[at] = segment;
        Ok(())
    }
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

/// A run of batches whose records all went, to be written as one empty
/// batch covering their offsets.
#[derive(Default)]
struct EmptyRun {
    /// Header of the run's first batch, and the run's last offset.
    first: Option<(Vec<u8>, i64)>,
}

impl EmptyRun {
    fn flush(&mut self, out: &mut Vec<u8>) {
        if let Some((header, last_offset)) = self.first.take() {
            let base = BatchHeader::parse(&header)
                .expect("header kept whole")
                .base_offset();
            let delta = i32::try_from(last_offset - base).expect("run limited to i32 offsets");
            out.extend_from_slice(&rebuild_batch(&header, &[], delta));
        }
    }

    fn extend(&mut self, batch: &[u8], header: &BatchHeader, out: &mut Vec<u8>) {
        let last = header.last_offset();
        if let Some((first, _)) = &self.first {
            let base = BatchHeader::parse(first)
                .expect("header kept whole")
                .base_offset();
            if last - base > i64::from(i32::MAX) {
                self.flush(out);
            }
        }
        match &mut self.first {
            Some((_, run_last)) => *run_last = last,
            None => self.first = Some((batch[..BATCH_HEADER_LEN].to_vec(), last)),
        }
    }
}

/// Appends the cleaned form of `batch` to `out`; returns records dropped.
fn rewrite_batch(
    batch: &[u8],
    map: &OffsetMap,
    tombstone_horizon: i64,
    run: &mut EmptyRun,
    out: &mut Vec<u8>,
) -> u64 {
    let header = BatchHeader::parse(batch).expect("reader yields whole batches");
    let recs = filterable(header).then(|| records(batch)).flatten();
    let Some(recs) = recs else {
        run.flush(out);
        out.extend_from_slice(batch);
        return 0;
    };
    let kept: Vec<&[u8]> = recs
        .iter()
        .filter(|r| keep_record(map, r, tombstone_horizon))
        .map(|r| r.raw)
        .collect();
    let dropped = (recs.len() - kept.len()) as u64;
    match (kept.len(), header.producer_id() >= 0) {
        (n, _) if n == recs.len() => {
            run.flush(out);
            out.extend_from_slice(batch);
        }
        (0, false) => run.extend(batch, header, out),
        _ => {
            run.flush(out);
            out.extend_from_slice(&rebuild_batch(batch, &kept, header.last_offset_delta()));
        }
    }
    dropped
}

/// Reads the whole, CRC-checked batches of a durable segment in order.
struct BatchReader<'a, F: DiskFile> {
    window: FileWindow<'a, F>,
    path: &'a Path,
    position: u64,
    limit: u64,
}

impl<'a, F: DiskFile> BatchReader<'a, F> {
    fn new(file: &'a F, path: &'a Path, limit: u64) -> Self {
        Self {
            window: FileWindow::new(file, path),
            path,
            position: 0,
            limit,
        }
    }

    /// The next batch, `None` at the end. Durable data that fails its
    /// checks is corruption: the pass stops and leaves the segment alone.
    async fn next(&mut self) -> Result<Option<&[u8]>, StorageError> {
        if self.position >= self.limit {
            return Ok(None);
        }
        let corrupt = |position, reason: String| StorageError::Corrupt {
            path: self.path.to_path_buf(),
            position,
            reason,
        };
        let position = self.position;
        let header_len = (self.limit - position).min(BATCH_HEADER_LEN as u64) as usize;
        let header = self
            .window
            .get(position, header_len, CLEANER_READ_BYTES)
            .await?;
        let header = header.ok_or_else(|| corrupt(position, "short header".into()))?;
        let info = batch_info(header).map_err(|r| corrupt(position, r))?;
        if info.total_len > self.limit - position {
            return Err(corrupt(position, "batch past the segment end".into()));
        }
        let len = info.total_len as usize;
        let bytes = self.window.get(position, len, CLEANER_READ_BYTES).await?;
        let bytes = bytes.ok_or_else(|| corrupt(position, "short batch".into()))?;
        check_crc(bytes).map_err(|e| corrupt(position, e.to_string()))?;
        self.position += info.total_len;
        Ok(Some(bytes))
    }
}

/// Streams a new segment file with aligned O_DIRECT writes.
struct SegmentWriter<D: Disk> {
    file: D::File,
    path: PathBuf,
    /// File position of `buf[0]` (block aligned).
    file_pos: u64,
    buf: Vec<u8>,
}

impl<D: Disk> SegmentWriter<D> {
    async fn create(disk: &D, path: &Path) -> Result<Self, StorageError> {
        let file = disk.open(path).await;
        let file = file.map_err(StorageError::io_at("create cleaned segment", path, None))?;
        let trunc = file.truncate(0).await; // a leftover of an earlier failed pass
        trunc.map_err(StorageError::io_at("truncate", path, Some(0)))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            file_pos: 0,
            buf: Vec::new(),
        })
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Writes the whole blocks buffered once there is a chunk's worth.
    async fn write_full_chunks(&mut self, disk: &D) -> Result<(), StorageError> {
        if self.buf.len() < WRITE_BYTES_MAX {
            return Ok(());
        }
        let len = align_down(self.buf.len() as u64) as usize;
        self.write(disk, len, len).await?;
        self.buf.drain(..len);
        self.file_pos += len as u64;
        Ok(())
    }

    /// Writes the rest (zero padded to a block), cuts the file to its exact
    /// length and fdatasyncs it.
    async fn finish(self, disk: &D) -> Result<D::File, StorageError> {
        let rest = self.buf.len();
        if rest > 0 {
            self.write(disk, rest, align_up(rest as u64) as usize)
                .await?;
        }
        let len = self.file_pos + rest as u64;
        let trunc = self.file.truncate(len).await;
        trunc.map_err(StorageError::io_at("truncate", &self.path, Some(len)))?;
        let sync = self.file.fdatasync().await;
        sync.map_err(StorageError::io_at("fdatasync", &self.path, None))?;
        Ok(self.file)
    }

    /// Writes `buf[..data]` padded to `padded` bytes at `file_pos`.
    async fn write(&self, disk: &D, data: usize, padded: usize) -> Result<(), StorageError> {
        let mut io = disk.alloc_buffer(padded);
        io.as_bytes_mut()[..data].copy_from_slice(&self.buf[..data]);
        io.as_bytes_mut()[data..].fill(0);
        let written = self.file.write_at(Rc::new(io), self.file_pos).await;
        let written = written.map_err(StorageError::io_at(
            "write cleaned segment",
            &self.path,
            Some(self.file_pos),
        ))?;
        if written != padded {
            let short = std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                format!("short write: {written} of {padded} bytes"),
            );
            return Err(StorageError::io_at(
                "write cleaned segment",
                &self.path,
                Some(self.file_pos),
            )(short));
        }
        Ok(())
    }
}
