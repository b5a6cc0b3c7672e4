//! Recovery on open: rebuild the in-memory log from the directory, and cut
//! the log at the first batch that cannot be trusted.
//!
//! For each `<base>.log`, in offset order:
//! 1. Load `.index` and `.timeindex`. They are only ever written after the
//!    data they describe was fdatasynced (at segment seal, close, or end of
//!    recovery), so the last offset-index entry marks data already verified:
//!    it is the recovery checkpoint. Entries are shape-checked; a missing,
//!    empty or malformed index means a scan from position 0 (rebuild).
//! 2. Scan from that entry to the end of the file checking framing, magic
//!    2, CRC32C and dense offsets (each batch starts at the previous last
//!    offset + 1; the first at the expected offset). If the batch at the
//!    loaded entry itself is bad, the index is distrusted and the segment is
//!    rescanned from 0.
//! 3. A scan that stops on zero bytes (preallocated space) or at EOF ends the
//!    segment cleanly. Any other stop (torn, corrupt, non-contiguous, junk)
//!    truncates the log there: the file is cut with ftruncate (so stale bytes
//!    after it read as zeros and can never be taken for data), later
//!    segments are deleted, and a warning names the file, position and
//!    reason. A segment whose base offset does not follow the previous one
//!    is deleted with everything after it.
//!
//! Sealed segments are trimmed to their logical size; the active one is
//! trimmed, fdatasynced, preallocated again, and its partial last block is
//! read back into the pending tail. Indexes that changed are written out.
//! Nothing here panics on file contents.

use std::ops::ControlFlow;
use std::path::Path;
use std::rc::Rc;

use super::checkpoint::read_checkpoint;
use super::disk::{align_down, Disk, DiskFile};
use super::error::StorageError;
use super::index::{OffsetIndex, TimeIndex};
use super::scan::{scan_batches, FileWindow, ScanRule, ScanStop, RECOVERY_READ_BYTES};
use super::segment::{parse_log_file_name, segment_path, Segment, SEGMENT_FILES_REMOVAL_ORDER};
use super::small_file::{read_small_file, write_small_file};
use super::LogConfig;

/// The recovered log.
pub(crate) struct Recovered<D: Disk> {
    pub(crate) segments: Vec<Segment<D>>,
    pub(crate) log_start_offset: i64,
    pub(crate) next_offset: i64,
    /// The cleaner's `(clean_offset, due_ms)` from the checkpoint, the
    /// mark cut back to the recovered log end (offsets past it will be
    /// written again, uncleaned).
    pub(crate) cleaner: (i64, Option<i64>),
    /// The last close completed and nothing needed repair: the files are
    /// durable as found, so opening did not preallocate or fdatasync, and
    /// a close with nothing new has nothing to write.
    pub(crate) clean_close: bool,
}

/// Outcome of recovering one segment.
struct SegmentRecovery<D: Disk> {
    segment: Segment<D>,
    /// The log was cut inside this segment: drop the later ones.
    truncated: bool,
    /// Its indexes differ from the files: write them.
    indexes_changed: bool,
}

/// Recovers the log in `dir` (creating `dir` if absent).
pub(crate) async fn recover<D: Disk>(
    disk: &D,
    dir: &Path,
    config: &LogConfig,
) -> Result<Recovered<D>, StorageError> {
    let created = disk.create_dir_all(dir).await;
    created.map_err(StorageError::io_at("create dir", dir, None))?;
    let bases = list_segments(disk, dir).await?;
    let checkpoint = read_checkpoint(disk, dir).await?;
    let checkpoint =
        checkpoint.filter(|c| 0 <= c.log_start_offset && c.log_start_offset <= c.next_offset);
    let mut segments: Vec<Segment<D>> = Vec::new();
    // Every segment read back exactly as its indexes describe it, nothing
    // cut or removed.
    let mut intact = !bases.is_empty();
    for (i, &base) in bases.iter().enumerate() {
        let expected = segments.last().map(|s| s.end_offset);
        if expected.is_some_and(|e| e != base) {
            let reason = format!("segment base {base} does not follow offset {expected:?}");
            remove_segments(disk, dir, &bases[i..], &reason).await?;
            intact = false;
            break;
        }
        let recovery = recover_segment(disk, dir, base, config).await?;
        let truncated = recovery.truncated;
        intact &= !truncated && !recovery.indexes_changed;
        segments.push(finish_segment(disk, recovery).await?);
        if truncated {
            let reason = format!("log truncated in segment {base}");
            remove_segments(disk, dir, &bases[i + 1..], &reason).await?;
            break;
        }
    }
    let first = checkpoint.map_or(0, |c| c.log_start_offset);
    if segments.is_empty() {
        segments.push(Segment::new(dir, first));
    }
    let found_end = segments.last().expect("one segment").end_offset;
    // The last close finished: its checkpoint (written after the final
    // flush, truncate and indexes) names the end found, and the active
    // segment's indexes were there and matched. Everything is durable.
    let clean_close = intact && checkpoint.is_some_and(|c| c.next_offset == found_end);
    let active = segments.last_mut().expect("one segment");
    activate(disk, config, active, clean_close).await?;
    let next_offset = found_end;
    if let Some(c) = checkpoint.filter(|c| c.next_offset > next_offset) {
        tracing::error!(dir = %dir.display(), recovered = next_offset, at_close = c.next_offset,
            "recovered log ends before the offset recorded at the last clean close: data lost");
    }
    let log_start_offset = first.max(segments[0].base_offset).min(next_offset);
    let cleaner = checkpoint.map_or((0, None), |c| {
        (c.clean_offset.clamp(0, next_offset), c.cleaner_due_ms)
    });
    Ok(Recovered {
        segments,
        log_start_offset,
        next_offset,
        cleaner,
        clean_close,
    })
}

/// Base offsets of the `.log` files in `dir`, sorted; removes leftover
/// `.tmp` files of interrupted atomic writes.
async fn list_segments<D: Disk>(disk: &D, dir: &Path) -> Result<Vec<i64>, StorageError> {
    let names = disk.list_dir(dir).await;
    let names = names.map_err(StorageError::io_at("list dir", dir, None))?;
    let mut bases = Vec::new();
    for name in names {
        if name.ends_with(".tmp") {
            let path = dir.join(&name);
            let removed = disk.remove_file(&path).await;
            removed.map_err(StorageError::io_at("remove", &path, None))?;
        } else if let Some(base) = parse_log_file_name(&name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Loads, scans and (if needed) cuts one segment.
async fn recover_segment<D: Disk>(
    disk: &D,
    dir: &Path,
    base: i64,
    config: &LogConfig,
) -> Result<SegmentRecovery<D>, StorageError> {
    let path = segment_path(dir, base, "log");
    let file = Rc::new(
        disk.open(&path)
            .await
            .map_err(StorageError::io_at("open", &path, None))?,
    );
    let size = file
        .size()
        .await
        .map_err(StorageError::io_at("stat", &path, None))?;
    let mut segment = Segment::new(dir, base);
    segment.file = Some(file.clone());
    segment.allocated_bytes = size;
    let loaded = load_indexes(disk, &mut segment, size).await?;
    let from = resume_position(&segment);
    let mut end = scan_segment(&mut segment, &file, &path, size, config).await?;
    if from > 0 && matches!(end.stop, ScanStop::Bad(_)) && end.position == from {
        tracing::warn!(segment = %path.display(), "index does not match the log; rebuilding it");
        segment = Segment::new(dir, base);
        segment.file = Some(file.clone());
        segment.allocated_bytes = size;
        end = scan_segment(&mut segment, &file, &path, size, config).await?;
    }
    let truncated = matches!(end.stop, ScanStop::Bad(_));
    if let ScanStop::Bad(reason) = &end.stop {
        tracing::warn!(segment = %path.display(), position = end.position, reason = %reason,
            dropped_bytes = size - end.position, "truncating log at the first bad batch");
    }
    let indexes_changed = !loaded || segment.index.len() != segment.loaded_index_len;
    Ok(SegmentRecovery {
        segment,
        truncated,
        indexes_changed: indexes_changed || truncated,
    })
}

/// Position of the last loaded index entry (where the scan resumed).
fn resume_position<D: Disk>(segment: &Segment<D>) -> u64 {
    segment.index.last().map_or(0, |(_, p)| u64::from(p))
}

/// Scans `segment` from its last index entry (or 0) to `size`, indexing
/// every valid batch. Returns where and why it stopped.
async fn scan_segment<D: Disk>(
    segment: &mut Segment<D>,
    file: &D::File,
    path: &Path,
    size: u64,
    config: &LogConfig,
) -> Result<super::scan::ScanEnd, StorageError> {
    let (from, expected) = match segment.index.last() {
        Some((relative, position)) => (
            u64::from(position),
            segment.base_offset.saturating_add(i64::from(relative)),
        ),
        None => (0, segment.base_offset),
    };
    segment.resume_at(from, expected);
    let rule = ScanRule {
        limit: size,
        expected_offset: Some(expected),
        verify_crc: true,
        read_ahead: RECOVERY_READ_BYTES,
    };
    let interval = u64::from(config.index_interval_bytes);
    let mut window = FileWindow::new(file, path);
    scan_batches(&mut window, from, rule, |_, batch| {
        if !segment.fits_offset(batch.last_offset) {
            return ControlFlow::Break(());
        }
        segment.index_batch(batch, interval);
        ControlFlow::Continue(())
    })
    .await
    .map(|mut end| {
        if end.stop == ScanStop::Visitor {
            end.stop = ScanStop::Bad("relative offset overflows u32".into());
        }
        end
    })
}

/// Loads both index files into `segment` if present and well formed.
/// Time-index entries at or after the resume point are dropped (the scan
/// re-adds them). Returns whether the indexes were loaded.
async fn load_indexes<D: Disk>(
    disk: &D,
    segment: &mut Segment<D>,
    size: u64,
) -> Result<bool, StorageError> {
    let index = read_small_file(disk, &segment.sibling("index")).await?;
    let time = read_small_file(disk, &segment.sibling("timeindex")).await?;
    let index = index.and_then(|b| OffsetIndex::decode(&b, size));
    let time = time.and_then(|b| TimeIndex::decode(&b));
    let (Some(index), Some(mut time)) = (index, time) else {
        return Ok(false);
    };
    // The scan resumes at the last offset-index entry (or at 0 without
    // one) and re-adds what follows, which may now be cut or different.
    time.truncate_to_offset(index.last().map_or(0, |(relative, _)| relative));
    segment.loaded_index_len = index.len();
    segment.index = index;
    segment.time_index = time;
    Ok(true)
}

/// Trims a recovered segment to its logical size and writes its indexes if
/// they changed. Every recovered segment is sealed until `activate`.
async fn finish_segment<D: Disk>(
    disk: &D,
    recovery: SegmentRecovery<D>,
) -> Result<Segment<D>, StorageError> {
    let mut segment = recovery.segment;
    segment.durable_bytes = segment.log_bytes;
    segment.finish_time_index();
    let file = segment.file.clone().expect("recovered segment has a file");
    let trim = segment.allocated_bytes > segment.log_bytes;
    if trim {
        let len = segment.log_bytes;
        let trunc = file.truncate(len).await;
        trunc.map_err(StorageError::io_at("truncate", &segment.path, Some(len)))?;
        segment.allocated_bytes = len;
    }
    if trim || recovery.indexes_changed {
        // Indexes may only describe durable data.
        let sync = file.fdatasync().await;
        sync.map_err(StorageError::io_at("fdatasync", &segment.path, None))?;
    }
    if recovery.indexes_changed {
        // Time index first, as in `PartitionLog::write_indexes`.
        let time = segment.time_index.encode();
        write_small_file(disk, &segment.sibling("timeindex"), &time).await?;
        let index = segment.index.encode();
        write_small_file(disk, &segment.sibling("index"), &index).await?;
    }
    segment.sealed = true;
    segment.seal_persisted = true;
    Ok(segment)
}

/// Makes the last segment the active one: unsealed, with its partial last
/// block back in the pending tail; unless the last close was clean
/// (`durable`), preallocated and fdatasynced. After a clean close the
/// first flush preallocates, and a close with nothing appended leaves the
/// file as it was.
async fn activate<D: Disk>(
    disk: &D,
    config: &LogConfig,
    segment: &mut Segment<D>,
    durable: bool,
) -> Result<(), StorageError> {
    segment.sealed = false;
    segment.seal_persisted = false;
    let Some(file) = segment.file.clone() else {
        return Ok(());
    };
    if durable {
        return seed_partial_block(disk, segment, &*file).await;
    }
    if let Some(target) = config.allocation_for(segment.allocated_bytes, segment.log_bytes + 1) {
        let done = file.preallocate(target).await;
        done.map_err(StorageError::io_at(
            "preallocate",
            &segment.path,
            Some(target),
        ))?;
        segment.allocated_bytes = target;
    }
    // What recovery found is what the high watermark will claim is durable.
    let sync = file.fdatasync().await;
    sync.map_err(StorageError::io_at("fdatasync", &segment.path, None))?;
    seed_partial_block(disk, segment, &*file).await
}

/// Puts the segment's partial last block back in its pending tail, so the
/// next append rewrites the whole block.
async fn seed_partial_block<D: Disk>(
    disk: &D,
    segment: &mut Segment<D>,
    file: &D::File,
) -> Result<(), StorageError> {
    let block_start = align_down(segment.log_bytes);
    let partial_len = (segment.log_bytes - block_start) as usize;
    if partial_len == 0 {
        return Ok(());
    }
    let mut window = FileWindow::new(file, &segment.path);
    let partial = window.get(block_start, partial_len, 0).await?;
    let Some(partial) = partial.map(<[u8]>::to_vec) else {
        return Err(StorageError::Corrupt {
            path: segment.path.clone(),
            position: block_start,
            reason: "partial last block unreadable".into(),
        });
    };
    segment.seed_tail(disk, segment.log_bytes, &partial);
    Ok(())
}

/// Deletes the files of segments `bases` (after a truncation or a gap).
async fn remove_segments<D: Disk>(
    disk: &D,
    dir: &Path,
    bases: &[i64],
    reason: &str,
) -> Result<(), StorageError> {
    for &base in bases {
        tracing::warn!(segment = %segment_path(dir, base, "log").display(), reason,
            "deleting segment after the point where the log was cut");
        for extension in SEGMENT_FILES_REMOVAL_ORDER {
            remove_if_exists(disk, &segment_path(dir, base, extension)).await?;
        }
    }
    Ok(())
}

async fn remove_if_exists<D: Disk>(disk: &D, path: &Path) -> Result<(), StorageError> {
    let exists = disk.exists(path).await;
    if exists.map_err(StorageError::io_at("stat", path, None))? {
        let removed = disk.remove_file(path).await;
        removed.map_err(StorageError::io_at("remove", path, None))?;
    }
    Ok(())
}
