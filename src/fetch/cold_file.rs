//! Choosing the file range a cold read is answered with: the segment is
//! opened buffered and read-only, and the batches are found by walking
//! their headers, so the record bytes themselves are never read into user
//! space (they go to the socket with splice, `server::splice`).
//!
//! Decisions:
//! - Runs on glommio's blocking pool ([`find_file_range`] is blocking): the
//!   `open` and the header `pread`s may wait on the disk, which a shard
//!   thread must not. The preads pull the range into the page cache (with
//!   readahead), which the splice then reads.
//! - One `pread` of [`BATCH_HEADER_LEN`] bytes per batch: cheap for the batch
//!   sizes producers send (KiBs), a syscall per batch for tiny ones. The
//!   alternative, reading whole chunks, would copy the records into user
//!   space, which this path exists to avoid.
//! - Headers are checked (magic 2, sane length, inside the durable bytes,
//!   offsets dense from the index entry); anything unexpected is an error
//!   and the caller falls back to the O_DIRECT read, which checks CRCs and
//!   reports corruption. Record CRCs are not checked on this path (Kafka
//!   does not check them on fetch either; consumers do).
//! - Each file range holds its segment open until its response is sent.
//!   The fds file ranges hold are bounded process-wide (a quarter of the
//!   soft `RLIMIT_NOFILE`, see [`segment_fds_max`]), so a burst of cold
//!   reads over many partitions cannot starve `accept` of fds: past the
//!   bound, reads take the copy fallback (counted) until fds are released.
//!   One process-wide atomic, like the connection limits: the bound is on a
//!   process-wide resource, and a range opened on one shard is released on
//!   another (the connection's).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::protocol::batch::{BatchHeader, BATCH_HEADER_LEN, BATCH_MAGIC_V2};
use crate::protocol::record_slices::{BatchExtent, FileSlice, RecordSlices};
use crate::storage::FileRangeStart;

/// Fewest segment fds file ranges may hold, whatever `RLIMIT_NOFILE` says.
const SEGMENT_FDS_MIN: usize = 16;

/// Segment fds file ranges hold now, process-wide.
static SEGMENT_FDS_OPEN: AtomicUsize = AtomicUsize::new(0);

/// Most segment fds file ranges may hold at once: a quarter of the soft
/// `RLIMIT_NOFILE` (the rest is for connections, segments, indexes).
pub fn segment_fds_max() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct passed.
        let soft = match unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } {
            0 => usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX),
            _ => 1024,
        };
        (soft / 4).max(SEGMENT_FDS_MIN)
    })
}

/// Why a file range was not chosen (the caller copies instead).
#[derive(Debug, thiserror::Error)]
pub enum ColdFileError {
    /// [`segment_fds_max`] fds are held by file ranges already.
    #[error("{0} segment fds held by file ranges already")]
    FdLimit(usize),
    /// Opening or walking the segment failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A segment fd held by file ranges; counted in [`SEGMENT_FDS_OPEN`] until
/// dropped (wherever the last range holding it is dropped).
struct SegmentFd(OwnedFd);

impl AsFd for SegmentFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Drop for SegmentFd {
    fn drop(&mut self) {
        SEGMENT_FDS_OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Takes one of the [`segment_fds_max`] places, if one is free.
fn reserve_segment_fd() -> Result<(), ColdFileError> {
    let max = segment_fds_max();
    if SEGMENT_FDS_OPEN.fetch_add(1, Ordering::Relaxed) >= max {
        SEGMENT_FDS_OPEN.fetch_sub(1, Ordering::Relaxed);
        return Err(ColdFileError::FdLimit(max));
    }
    Ok(())
}

/// Whole batches from the one holding `offset`, up to `max_bytes` (the
/// first batch whole even if larger when `min_one`, KIP-74), below the high
/// watermark and the durable end. Blocking.
pub fn find_file_range(
    start: &FileRangeStart,
    offset: i64,
    max_bytes: usize,
    min_one: bool,
) -> Result<RecordSlices, ColdFileError> {
    reserve_segment_fd()?;
    let file = File::open(&start.path).map_err(|e| {
        SEGMENT_FDS_OPEN.fetch_sub(1, Ordering::Relaxed);
        io::Error::new(e.kind(), format!("open {}: {e}", start.path.display()))
    })?;
    let walked = Walk { file: &file, start }.batches(offset, max_bytes, min_one);
    // Counted from the reservation above; released when the last range
    // holding it is dropped (or right here on an error).
    let file = SegmentFd(file.into());
    let (first, extents) = walked?;
    let Some(last) = extents.last() else {
        return Ok(RecordSlices::new());
    };
    Ok(RecordSlices::from_file(FileSlice {
        fd: Arc::new(file),
        position: first,
        len: last.end,
        batches: Arc::from(extents),
    }))
}

struct Walk<'a> {
    file: &'a File,
    start: &'a FileRangeStart,
}

impl Walk<'_> {
    /// (position of the first batch, extents relative to it).
    fn batches(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> io::Result<(u64, Vec<BatchExtent>)> {
        let mut position = self.start.position;
        let mut expected = self.start.offset;
        let mut first = None;
        let mut extents = Vec::new();
        while position < self.start.limit {
            let (base, last, total, records) = self.header(position, expected)?;
            expected = last + 1;
            if base >= self.start.high_watermark {
                break;
            }
            if last < offset {
                position += total;
                continue;
            }
            let from = *first.get_or_insert(position);
            let end = (position + total - from) as usize;
            if end > max_bytes && !(extents.is_empty() && min_one) {
                break;
            }
            extents.push(BatchExtent {
                end,
                base_offset: base,
                last_offset: last,
                records,
            });
            if end >= max_bytes {
                break;
            }
            position += total;
        }
        if first.is_none() {
            return Err(self.corrupt(position, format!("no batch holds offset {offset}")));
        }
        Ok((first.unwrap_or(position), extents))
    }

    /// (base offset, last offset, total length, record count) of the batch
    /// at `position`.
    fn header(&self, position: u64, expected: i64) -> io::Result<(i64, i64, u64, i32)> {
        let mut h = [0u8; BATCH_HEADER_LEN];
        self.file.read_exact_at(&mut h, position).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{}: header at {position}: {e}", self.path()),
            )
        })?;
        let header =
            BatchHeader::parse(&h).map_err(|e| self.corrupt(position, format!("header: {e}")))?;
        let (base, magic) = (header.base_offset(), header.magic());
        let (last_delta, records) = (header.last_offset_delta(), header.records_count());
        // `total_len` is below the header length for a negative length.
        let total = header.total_len() as u64;
        if magic != BATCH_MAGIC_V2 || total < BATCH_HEADER_LEN as u64 || last_delta < 0 {
            return Err(self.corrupt(
                position,
                format!(
                    "bad header (magic {magic}, length {})",
                    header.batch_length()
                ),
            ));
        }
        if position + total > self.start.limit {
            return Err(self.corrupt(position, "batch runs past the durable end".into()));
        }
        if base != expected {
            return Err(self.corrupt(position, format!("base offset {base}, expected {expected}")));
        }
        Ok((base, base + i64::from(last_delta), total, records))
    }

    fn path(&self) -> String {
        format!(
            "{} (fd {})",
            self.start.path.display(),
            self.file.as_raw_fd()
        )
    }

    fn corrupt(&self, position: u64, reason: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} at {position}: {reason}", self.path()),
        )
    }
}

#[cfg(test)]
mod tests;
