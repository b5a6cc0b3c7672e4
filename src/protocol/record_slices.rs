//! Record bytes of one partition's fetch answer, as they travel from the
//! partition owner to the socket without being copied: a list of
//! [`Slice`]s, each either shared memory (`Bytes` views of the tail cache
//! or of a disk read) or a range of a segment file (sent with splice, see
//! `server::splice`).
//!
//! Invariant: every slice holds whole RecordBatch v2 batches, so trimming at
//! a batch end keeps the records valid. A file slice cannot be parsed
//! without reading it, so it carries its batches' extents (found from their
//! headers when the range was chosen, `fetch::cold_file`).

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::Arc;

use bytes::Bytes;

use crate::protocol::batch::batches;

/// One batch inside a file slice, relative to the slice's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchExtent {
    /// End of the batch, in bytes from the slice's start.
    pub end: usize,
    /// Its base offset.
    pub base_offset: i64,
    /// Its last offset.
    pub last_offset: i64,
    /// Its record count (0 for a batch the cleaner emptied).
    pub records: i32,
}

/// Whole batches in a segment file: `len` bytes at `position` of `fd`. The
/// fd is a buffered, read-only descriptor of the segment (shared, `Send`:
/// the slice may cross shards; whoever opened it decides what its drop
/// releases, e.g. `fetch::cold_file::SegmentFd`); an unlinked segment stays
/// readable through it.
#[derive(Clone)]
pub struct FileSlice {
    /// The segment, opened read-only without O_DIRECT.
    pub fd: Arc<dyn AsFd + Send + Sync>,
    /// First byte, in the file.
    pub position: u64,
    /// Bytes.
    pub len: usize,
    /// The batches, in order; the last one ends at `len`.
    pub batches: Arc<[BatchExtent]>,
}

impl std::fmt::Debug for FileSlice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSlice")
            .field("fd", &self.raw_fd())
            .field("position", &self.position)
            .field("len", &self.len)
            .field("batches", &self.batches.len())
            .finish()
    }
}

impl PartialEq for FileSlice {
    fn eq(&self, other: &Self) -> bool {
        self.raw_fd() == other.raw_fd() && self.position == other.position && self.len == other.len
    }
}

impl Eq for FileSlice {}

impl FileSlice {
    /// The segment's fd number.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_fd().as_raw_fd()
    }

    /// Reads the slice into memory (`pread`: a copy; tests and the copy
    /// fallback only).
    pub fn read_to_bytes(&self) -> std::io::Result<Bytes> {
        let mut out = vec![0u8; self.len];
        let mut done = 0usize;
        while done < self.len {
            // SAFETY: `out[done..]` is a valid, writable buffer of the
            // length passed; the fd is open while `self` holds it.
            let n = unsafe {
                libc::pread(
                    self.raw_fd(),
                    out[done..].as_mut_ptr().cast(),
                    self.len - done,
                    (self.position + done as u64) as libc::off_t,
                )
            };
            if n < 0 {
                let err = std::io::Error::last_os_error();
                if err.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("segment fd {} ends before {}", self.raw_fd(), self.len),
                ));
            }
            done += n as usize;
        }
        Ok(Bytes::from(out))
    }
}

/// A piece of record bytes (and of an encoded response: see
/// `fetch_writer::ResponseParts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slice {
    /// Shared memory.
    Mem(Bytes),
    /// A segment file range.
    File(FileSlice),
}

impl Slice {
    /// Bytes in the slice.
    pub fn len(&self) -> usize {
        match self {
            Slice::Mem(b) => b.len(),
            Slice::File(f) => f.len,
        }
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The memory, if this is a memory slice.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Slice::Mem(b) => Some(b),
            Slice::File(_) => None,
        }
    }

    /// Extents of the slice's batches, in order, stopping at the first
    /// memory bytes that are not a well-framed batch.
    pub fn batch_extents(&self) -> Vec<BatchExtent> {
        match self {
            Slice::File(f) => f.batches.to_vec(),
            Slice::Mem(b) => batches(b)
                .map_while(Result::ok)
                .map(|batch| BatchExtent {
                    end: batch.position + batch.bytes.len(),
                    base_offset: batch.header.base_offset(),
                    last_offset: batch.header.last_offset(),
                    records: batch.header.records_count(),
                })
                .collect(),
        }
    }

    fn truncate(&mut self, len: usize) {
        match self {
            Slice::Mem(b) => b.truncate(len),
            Slice::File(f) if len < f.len => {
                f.len = len;
                f.batches = f.batches.iter().copied().filter(|b| b.end <= len).collect();
            }
            Slice::File(_) => {}
        }
    }
}

/// Record bytes of one partition: whole batches, as slices. Cloning shares
/// them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSlices {
    slices: Vec<Slice>,
    len: usize,
}

impl RecordSlices {
    /// No records.
    pub fn new() -> Self {
        Self::default()
    }

    /// One slice of whole batches.
    pub fn from_bytes(bytes: Bytes) -> Self {
        let mut slices = Self::new();
        slices.push(bytes);
        slices
    }

    /// One file range of whole batches.
    pub fn from_file(file: FileSlice) -> Self {
        let mut slices = Self::new();
        slices.push_slice(Slice::File(file));
        slices
    }

    /// Appends a memory slice of whole batches (empty slices are skipped).
    pub fn push(&mut self, bytes: Bytes) {
        self.push_slice(Slice::Mem(bytes));
    }

    /// Appends a slice of whole batches (empty slices are skipped).
    pub fn push_slice(&mut self, slice: Slice) {
        if !slice.is_empty() {
            self.len += slice.len();
            self.slices.push(slice);
        }
    }

    /// Appends `other`'s slices (whole batches following these).
    pub fn append(&mut self, other: RecordSlices) {
        for slice in other.slices {
            self.push_slice(slice);
        }
    }

    /// Total bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no record bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slices, in order.
    pub fn slices(&self) -> &[Slice] {
        &self.slices
    }

    /// Every batch, with its end as a cumulative byte count; stops at the
    /// first slice tail that is not a well-framed batch.
    pub fn batch_extents(&self) -> impl Iterator<Item = BatchExtent> + '_ {
        let mut base = 0usize;
        self.slices.iter().flat_map(move |slice| {
            let start = base;
            base += slice.len();
            slice.batch_extents().into_iter().map(move |b| BatchExtent {
                end: start + b.end,
                ..b
            })
        })
    }

    /// End positions (cumulative byte counts) of each whole batch, in order.
    pub fn batch_ends(&self) -> impl Iterator<Item = usize> + '_ {
        self.batch_extents().map(|b| b.end)
    }

    /// Keeps the first `len` bytes. `len` should be a batch end (see
    /// [`batch_ends`](Self::batch_ends)); slices are cut, never copied.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let mut kept = 0usize;
        let mut keep_slices = 0usize;
        for slice in self.slices.iter_mut() {
            if kept >= len {
                break;
            }
            let take = slice.len().min(len - kept);
            slice.truncate(take);
            kept += take;
            keep_slices += 1;
        }
        self.slices.truncate(keep_slices);
        self.len = kept;
    }

    /// The bytes as one contiguous `Bytes` (copies unless there is one
    /// memory slice; reads file slices). Compiled for tests only: a file
    /// that cannot be read panics, and the fetch path never flattens.
    #[cfg(test)]
    pub fn to_contiguous(&self) -> Bytes {
        if let [Slice::Mem(one)] = self.slices.as_slice() {
            return one.clone();
        }
        let mut out = bytes::BytesMut::with_capacity(self.len);
        for s in &self.slices {
            match s {
                Slice::Mem(b) => out.extend_from_slice(b),
                Slice::File(f) => out.extend_from_slice(&f.read_to_bytes().expect("file slice")),
            }
        }
        out.freeze()
    }
}
