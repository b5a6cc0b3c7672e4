//! One segment: a `.log` file of batches, its indexes, and its unflushed
//! tail.
//!
//! O_DIRECT writes must be block aligned in position and length, but batches
//! are not. Appended bytes are copied into *pending chunks*: aligned buffers
//! of [`PENDING_CHUNK_BYTES`] that map one-to-one onto file positions. A
//! flush takes every pending chunk (zero padding each to a block boundary)
//! and, if the log ends inside a block, starts a new chunk holding a copy of
//! that partial block, which the next flush writes again as it fills. So
//! logical size (`log_bytes`) and file size differ: the file is preallocated
//! ahead and zero filled after the last batch.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::disk::{align_down, align_up, is_aligned, Disk, IoBuffer, BLOCK_BYTES};
use super::index::{OffsetIndex, TimeIndex};

/// Size of one pending (not yet flushed) buffer, in bytes. Modest on purpose:
/// DMA memory is locked (RLIMIT_MEMLOCK is small) and a flush writes each
/// chunk as one I/O.
pub const PENDING_CHUNK_BYTES: usize = 256 << 10;
/// Largest single write a flush issues, in bytes.
pub const WRITE_BYTES_MAX: usize = 1 << 20;
const _: () = assert!(PENDING_CHUNK_BYTES.is_multiple_of(BLOCK_BYTES));
const _: () = assert!(PENDING_CHUNK_BYTES <= WRITE_BYTES_MAX);

/// Extension of a segment's aborted-transaction index, written by the
/// partition (`producer::aborted`) and removed here with its segment.
pub const TXN_INDEX_EXTENSION: &str = "txnindex";

/// A segment's files in the order they are removed: indexes first, so a
/// crash leaves a `.log` without indexes (rebuilt), never an index whose
/// `.log` is gone.
pub(crate) const SEGMENT_FILES_REMOVAL_ORDER: [&str; 4] =
    [TXN_INDEX_EXTENSION, "timeindex", "index", "log"];

/// `<base_offset:020>.<extension>` in `dir`.
pub(crate) fn segment_path(dir: &Path, base_offset: i64, extension: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{extension}"))
}

/// Base offset from a `.log` file name, if it is one.
pub(crate) fn parse_log_file_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(".log")?;
    let all_digits = digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit());
    all_digits.then(|| digits.parse().ok()).flatten()
}

/// Aligned bytes of the log not yet written, at file position `file_pos`.
pub(crate) struct Chunk<B> {
    /// File position of the buffer's first byte (block aligned).
    pub(crate) file_pos: u64,
    /// The bytes; only `..filled` hold log data.
    pub(crate) buf: B,
    /// Bytes of log data in the buffer.
    pub(crate) filled: usize,
}

impl<B: IoBuffer> Chunk<B> {
    fn capacity(&self) -> usize {
        self.buf.as_bytes().len()
    }

    /// Zero pads to a block boundary and trims: ready for an O_DIRECT write.
    pub(crate) fn seal(mut self) -> (u64, Rc<B>) {
        let len = align_up(self.filled as u64) as usize;
        self.buf.as_bytes_mut()[self.filled..len].fill(0);
        self.buf.trim_to(len);
        (self.file_pos, Rc::new(self.buf))
    }
}

/// Summary of one batch, copied out of its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchInfo {
    /// Offset of the batch's first record.
    pub(crate) base_offset: i64,
    /// Offset of its last record.
    pub(crate) last_offset: i64,
    /// Bytes it occupies.
    pub(crate) total_len: u64,
    /// Its max timestamp.
    pub(crate) max_timestamp: i64,
    /// Its partitionLeaderEpoch (-1 when no leader stamped it).
    pub(crate) leader_epoch: i32,
}

/// One segment of a partition log. Single-threaded; owned by the log state.
pub(crate) struct Segment<D: Disk> {
    /// Offset of the first batch (the file name).
    pub(crate) base_offset: i64,
    /// The `.log` file path.
    pub(crate) path: PathBuf,
    /// The open file; `None` until the first flush creates it.
    pub(crate) file: Option<Rc<D::File>>,
    /// Offset after the last appended batch.
    pub(crate) end_offset: i64,
    /// Logical size: bytes of batches appended (flushed or not).
    pub(crate) log_bytes: u64,
    /// Bytes written and fdatasynced.
    pub(crate) durable_bytes: u64,
    /// File size reserved by preallocation (or found on open).
    pub(crate) allocated_bytes: u64,
    /// Sparse offset index.
    pub(crate) index: OffsetIndex,
    /// Sparse time index.
    pub(crate) time_index: TimeIndex,
    /// Largest batch max timestamp (i64::MIN when empty).
    pub(crate) max_timestamp: i64,
    /// Max timestamp of the first batch (i64::MIN when empty or unknown):
    /// what `segment.ms` is measured from, as in Kafka.
    pub(crate) first_timestamp: i64,
    /// Relative offset of the batch holding `max_timestamp`.
    max_timestamp_offset: u32,
    /// Bytes appended since the last offset-index entry.
    bytes_since_index: u64,
    /// Unflushed bytes, in file order.
    pub(crate) pending: Vec<Chunk<D::Buffer>>,
    /// No more appends go here (a newer segment exists).
    pub(crate) sealed: bool,
    /// Index files and trimmed size are on disk for the sealed segment.
    pub(crate) seal_persisted: bool,
    /// Offset-index entries loaded from the file by recovery.
    pub(crate) loaded_index_len: usize,
    /// partitionLeaderEpoch of the last batch indexed (-1 if none): after
    /// recovery, the last segment with data tells whether the
    /// leader-epoch file is behind the log (`epochs.rs`).
    pub(crate) last_leader_epoch: i32,
}

impl<D: Disk> Segment<D> {
    /// An empty segment starting at `base_offset` (no file yet).
    pub(crate) fn new(dir: &Path, base_offset: i64) -> Self {
        Self {
            base_offset,
            path: segment_path(dir, base_offset, "log"),
            file: None,
            end_offset: base_offset,
            log_bytes: 0,
            durable_bytes: 0,
            allocated_bytes: 0,
            index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            max_timestamp: i64::MIN,
            first_timestamp: i64::MIN,
            max_timestamp_offset: 0,
            bytes_since_index: 0,
            pending: Vec::new(),
            sealed: false,
            seal_persisted: false,
            loaded_index_len: 0,
            last_leader_epoch: -1,
        }
    }

    /// Path of a sibling file (`index`, `timeindex`).
    pub(crate) fn sibling(&self, extension: &str) -> PathBuf {
        self.path.with_extension(extension)
    }

    /// Offset relative to the base; the caller keeps it within u32.
    pub(crate) fn relative(&self, offset: i64) -> u32 {
        u32::try_from(offset - self.base_offset).expect("relative offset fits u32")
    }

    /// True if a batch ending at `last_offset` still has a u32 relative
    /// offset here.
    pub(crate) fn fits_offset(&self, last_offset: i64) -> bool {
        last_offset - self.base_offset <= i64::from(u32::MAX)
    }

    /// Records a batch at `self.log_bytes` in the indexes (append and
    /// recovery use the same rule, Kafka's: an entry once more than
    /// `interval_bytes` were appended since the previous one).
    pub(crate) fn index_batch(&mut self, batch: &BatchInfo, interval_bytes: u64) {
        let relative = self.relative(batch.base_offset);
        if self.log_bytes == 0 {
            self.first_timestamp = batch.max_timestamp;
        }
        if batch.max_timestamp > self.max_timestamp || self.max_timestamp == i64::MIN {
            self.max_timestamp = batch.max_timestamp;
            self.max_timestamp_offset = relative;
        }
        if self.bytes_since_index > interval_bytes {
            self.index.push(relative, self.log_bytes as u32);
            self.time_index
                .push_if_larger(self.max_timestamp, self.max_timestamp_offset);
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += batch.total_len;
        self.log_bytes += batch.total_len;
        self.end_offset = batch.last_offset + 1;
        self.last_leader_epoch = batch.leader_epoch;
    }

    /// Adds the final time-index entry (the segment's max timestamp), so a
    /// sealed segment's max timestamp is its time index's last entry.
    pub(crate) fn finish_time_index(&mut self) {
        if self.max_timestamp != i64::MIN {
            self.time_index
                .push_if_larger(self.max_timestamp, self.max_timestamp_offset);
        }
    }

    /// Restarts index bookkeeping at a loaded index's last entry (recovery):
    /// the batch of `offset` starts at `position`, and the time index's last
    /// entry gives the max timestamp of the batches before it.
    pub(crate) fn resume_at(&mut self, position: u64, offset: i64) {
        self.log_bytes = position;
        self.end_offset = offset;
        self.bytes_since_index = 0;
        if let Some((timestamp, relative)) = self.time_index.last() {
            self.max_timestamp = timestamp;
            self.max_timestamp_offset = relative;
        }
        if position > 0 {
            // The first batch is not rescanned: its time-index entry (the
            // largest timestamp of the first indexed batches) stands in.
            self.first_timestamp = self.time_index.first().map_or(i64::MIN, |(t, _)| t);
        }
    }

    /// Copies `bytes` into pending chunks at `log_bytes`; call before
    /// [`Segment::index_batch`], which advances `log_bytes`.
    pub(crate) fn copy_to_pending(&mut self, disk: &D, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let chunk = self.writable_chunk(disk);
            let room = chunk.capacity() - chunk.filled;
            let n = room.min(bytes.len());
            chunk.buf.as_bytes_mut()[chunk.filled..chunk.filled + n].copy_from_slice(&bytes[..n]);
            chunk.filled += n;
            bytes = &bytes[n..];
        }
    }

    fn writable_chunk(&mut self, disk: &D) -> &mut Chunk<D::Buffer> {
        if let Some(seed) = self
            .pending
            .last_mut()
            .filter(|c| c.capacity() < PENDING_CHUNK_BYTES)
        {
            // A one-block seed (see `seed_tail`) grows into a full chunk on
            // the first append, so a flush still writes one chunk.
            let mut buf = disk.alloc_write_buffer(PENDING_CHUNK_BYTES);
            buf.as_bytes_mut()[..seed.filled].copy_from_slice(&seed.buf.as_bytes()[..seed.filled]);
            seed.buf = buf;
        }
        let full = self.pending.last().is_none_or(|c| c.filled == c.capacity());
        if full {
            let file_pos = match self.pending.last() {
                Some(c) => c.file_pos + c.capacity() as u64,
                None => self.log_bytes,
            };
            assert!(is_aligned(file_pos), "pending tail lost its partial block");
            let buf = disk.alloc_write_buffer(PENDING_CHUNK_BYTES);
            self.pending.push(Chunk {
                file_pos,
                buf,
                filled: 0,
            });
        }
        self.pending.last_mut().expect("a chunk was just ensured")
    }

    /// Seeds the pending tail with the partial last block `[align_down(end),
    /// end)`, so appends continue it. `partial` holds exactly those bytes.
    ///
    /// The seed is one block, not a chunk: every partition with a partial
    /// last block holds it while idle (after recovery and after each
    /// flush), and a zero-filled 256 KiB chunk each made 10,000 idle
    /// partitions cost 2.5 GiB of RSS. `writable_chunk` grows it on the
    /// next append.
    pub(crate) fn seed_tail(&mut self, disk: &D, end: u64, partial: &[u8]) {
        debug_assert!(self.pending.is_empty());
        debug_assert_eq!(partial.len() as u64, end - align_down(end));
        if partial.is_empty() {
            return;
        }
        let mut buf = disk.alloc_buffer(BLOCK_BYTES);
        buf.as_bytes_mut()[..partial.len()].copy_from_slice(partial);
        self.pending.push(Chunk {
            file_pos: align_down(end),
            buf,
            filled: partial.len(),
        });
    }

    /// Takes every pending chunk, ready to write, and (for an unsealed
    /// segment) re-seeds the partial last block. Returns the chunks.
    pub(crate) fn take_pending(&mut self, disk: &D) -> Vec<(u64, Rc<D::Buffer>)> {
        let chunks = std::mem::take(&mut self.pending);
        let end = self.log_bytes;
        let partial = match (self.sealed, chunks.last()) {
            (false, Some(last)) if !is_aligned(end) => {
                let from = (align_down(end) - last.file_pos) as usize;
                last.buf.as_bytes()[from..last.filled].to_vec()
            }
            _ => Vec::new(),
        };
        let ready = chunks.into_iter().map(Chunk::seal).collect();
        // The new tail chunk sits at align_down(end), which writable_chunk
        // relies on; a sealed segment takes no more appends.
        if !self.sealed {
            self.seed_tail(disk, end, &partial);
        }
        ready
    }
}

#[cfg(test)]
mod seed_tests {
    use super::*;
    use crate::storage::MemDisk;

    /// An idle partition with a partial last block holds one block, not a
    /// 256 KiB chunk; the first append grows it, keeping the bytes.
    #[test]
    fn seed_tail_holds_one_block_and_grows_on_append() {
        let disk = MemDisk::new();
        let mut segment: Segment<MemDisk> = Segment::new(Path::new("/seed"), 0);
        segment.log_bytes = 100;
        segment.seed_tail(&disk, 100, &[7u8; 100]);
        assert_eq!(segment.pending[0].capacity(), BLOCK_BYTES);
        segment.copy_to_pending(&disk, &[9u8; 50]);
        assert_eq!(segment.pending.len(), 1);
        assert_eq!(segment.pending[0].capacity(), PENDING_CHUNK_BYTES);
        assert_eq!(segment.pending[0].filled, 150);
        let expected = [[7u8; 100].as_slice(), [9u8; 50].as_slice()].concat();
        assert_eq!(
            &segment.pending[0].buf.as_bytes()[..150],
            expected.as_slice()
        );
    }
}
