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
//! - One `pread` of [`HEADER_READ_BYTES`] per batch: cheap for the batch
//!   sizes producers send (KiBs), a syscall per batch for tiny ones. The
//!   alternative, reading whole chunks, would copy the records into user
//!   space, which this path exists to avoid.
//! - Headers are checked (magic 2, sane length, inside the durable bytes,
//!   offsets dense from the index entry); anything unexpected is an error
//!   and the caller falls back to the O_DIRECT read, which checks CRCs and
//!   reports corruption. Record CRCs are not checked on this path (Kafka
//!   does not check them on fetch either; consumers do).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::protocol::record_slices::{BatchExtent, FileSlice, RecordSlices};
use crate::storage::FileRangeStart;

/// Bytes of a RecordBatch v2 header read per batch: up to and including
/// lastOffsetDelta.
const HEADER_READ_BYTES: usize = 27;
/// Smallest valid batch (a v2 header with no records), in bytes.
const BATCH_BYTES_MIN: u64 = 61;
/// RecordBatch magic this broker stores.
const MAGIC_V2: u8 = 2;

/// Whole batches from the one holding `offset`, up to `max_bytes` (the
/// first batch whole even if larger when `min_one`, KIP-74), below the high
/// watermark and the durable end. Blocking.
pub fn find_file_range(
    start: &FileRangeStart,
    offset: i64,
    max_bytes: usize,
    min_one: bool,
) -> io::Result<RecordSlices> {
    let file = File::open(&start.path)
        .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", start.path.display())))?;
    let walk = Walk { file: &file, start };
    let (first, extents) = walk.batches(offset, max_bytes, min_one)?;
    let Some(last) = extents.last() else {
        return Ok(RecordSlices::new());
    };
    let fd: OwnedFd = file.into();
    Ok(RecordSlices::from_file(FileSlice {
        fd: Arc::new(fd),
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
            let (base, last, total) = self.header(position, expected)?;
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

    /// (base offset, last offset, total length) of the batch at `position`.
    fn header(&self, position: u64, expected: i64) -> io::Result<(i64, i64, u64)> {
        let mut h = [0u8; HEADER_READ_BYTES];
        self.file.read_exact_at(&mut h, position).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{}: header at {position}: {e}", self.path()),
            )
        })?;
        let base = i64::from_be_bytes(h[0..8].try_into().expect("8 bytes"));
        let length = i32::from_be_bytes(h[8..12].try_into().expect("4 bytes"));
        let magic = h[16];
        let last_delta = i32::from_be_bytes(h[23..27].try_into().expect("4 bytes"));
        let total = 12 + u64::try_from(length).unwrap_or(0);
        if magic != MAGIC_V2 || total < BATCH_BYTES_MIN || last_delta < 0 {
            return Err(self.corrupt(
                position,
                format!("bad header (magic {magic}, length {length})"),
            ));
        }
        if position + total > self.start.limit {
            return Err(self.corrupt(position, "batch runs past the durable end".into()));
        }
        if base != expected {
            return Err(self.corrupt(position, format!("base offset {base}, expected {expected}")));
        }
        Ok((base, base + i64::from(last_delta), total))
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
