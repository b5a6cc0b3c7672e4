//! The disk seam: the few file operations the log needs, behind two traits.
//!
//! The log never calls glommio or `std::fs` directly; it calls [`Disk`] and
//! [`DiskFile`]. Two implementations exist:
//!
//! - [`DmaDisk`](super::DmaDisk): glommio `DmaFile`s (O_DIRECT, io_uring) —
//!   production.
//! - [`MemDisk`](super::MemDisk): an in-memory file system that keeps the
//!   *synced* and the *unsynced* content of every file apart, so tests can
//!   simulate a crash, inject I/O errors and corrupt bytes at rest,
//!   deterministically.
//!
//! Contracts (both implementations enforce them, so tests catch misuse):
//!
//! - [`DiskFile::write_at`] and [`DiskFile::read_at`] take a position and a
//!   length that are multiples of [`BLOCK_BYTES`] (O_DIRECT). Buffers come
//!   from [`Disk::alloc_buffer`], which hands out memory the device can DMA
//!   from.
//! - A read past the end of the file returns fewer bytes (possibly none).
//! - Nothing here is `Send`: a disk and its files live on one shard.
//!
//! The traits use `async fn` without `Send` bounds on purpose (thread per
//! core; see DESIGN.md), hence `#[allow(async_fn_in_trait)]`.

use std::io;
use std::ops::Deref;
use std::path::Path;
use std::rc::Rc;

/// O_DIRECT alignment of positions, lengths and buffers, in bytes.
pub const BLOCK_BYTES: usize = 4096;

/// Rounds `value` down to a multiple of [`BLOCK_BYTES`].
pub const fn align_down(value: u64) -> u64 {
    value & !(BLOCK_BYTES as u64 - 1)
}

/// Rounds `value` up to a multiple of [`BLOCK_BYTES`].
pub const fn align_up(value: u64) -> u64 {
    align_down(value + BLOCK_BYTES as u64 - 1)
}

/// True if `value` is a multiple of [`BLOCK_BYTES`].
pub const fn is_aligned(value: u64) -> bool {
    value.is_multiple_of(BLOCK_BYTES as u64)
}

/// A buffer that can be written with O_DIRECT: block-aligned memory.
pub trait IoBuffer {
    /// The whole buffer.
    fn as_bytes(&self) -> &[u8];
    /// The whole buffer, writable.
    fn as_bytes_mut(&mut self) -> &mut [u8];
    /// Shrinks the buffer to its first `len` bytes (`len <= current length`);
    /// a write then writes only those.
    fn trim_to(&mut self, len: usize);
}

/// One open file (read + write). Dropping it closes it.
#[allow(async_fn_in_trait)]
pub trait DiskFile {
    /// The buffer type writes take (see [`Disk::alloc_buffer`]).
    type Buffer: IoBuffer;
    /// What a read returns: the bytes read, owned.
    type ReadBuffer: Deref<Target = [u8]>;

    /// Writes the whole of `buf` at `pos`. `pos` and `buf`'s length are
    /// multiples of [`BLOCK_BYTES`]. The buffer is shared (`Rc`) so a caller
    /// may keep it, e.g. as a cache of the tail. Returns bytes written.
    async fn write_at(&self, buf: Rc<Self::Buffer>, pos: u64) -> io::Result<usize>;
    /// Reads up to `len` bytes at `pos`; both multiples of [`BLOCK_BYTES`].
    /// Short (or empty) at the end of the file.
    async fn read_at(&self, pos: u64, len: usize) -> io::Result<Self::ReadBuffer>;
    /// Makes written data (and the size) durable.
    async fn fdatasync(&self) -> io::Result<()>;
    /// Sets the file size to `len` bytes (any value, not only aligned).
    async fn truncate(&self, len: u64) -> io::Result<()>;
    /// Reserves blocks so the file is at least `len` bytes; the file size
    /// becomes `len` if it was smaller, and new bytes read as zero.
    async fn preallocate(&self, len: u64) -> io::Result<()>;
    /// Current file size in bytes.
    async fn size(&self) -> io::Result<u64>;
}

/// The directory and file operations of one shard's data directory.
#[allow(async_fn_in_trait)]
pub trait Disk {
    /// Buffers for [`DiskFile::write_at`].
    type Buffer: IoBuffer;
    /// An open file.
    type File: DiskFile<Buffer = Self::Buffer>;

    /// A zero-filled, block-aligned buffer of `len` bytes (`len` a multiple
    /// of [`BLOCK_BYTES`]).
    fn alloc_buffer(&self, len: usize) -> Self::Buffer;
    /// A block-aligned buffer of `len` bytes whose contents are unspecified:
    /// for the pending tail, which writes every byte before it goes out and
    /// zero-pads the last block when sealed (`Chunk::seal`). Zero-filling a
    /// 256 KiB chunk per 256 KiB appended cost about 5 % of the broker's CPU
    /// at full produce rate.
    fn alloc_write_buffer(&self, len: usize) -> Self::Buffer {
        self.alloc_buffer(len)
    }
    /// Opens `path` for reading and writing, creating it (empty) if absent.
    async fn open(&self, path: &Path) -> io::Result<Self::File>;
    /// Creates `path` and its missing parents.
    async fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Names (not paths) of the entries of directory `path`, sorted.
    async fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Removes file `path`.
    async fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes directory `path` and everything in it.
    async fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to` (atomic on a real file system).
    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the entries of directory `path` (creations, renames) durable.
    async fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// True if `path` exists (file or directory).
    async fn exists(&self, path: &Path) -> io::Result<bool>;
}

/// `io::Error` for a misaligned O_DIRECT request (a bug in the caller).
pub(crate) fn misaligned(op: &str, pos: u64, len: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{op}: position {pos} or length {len} not a multiple of {BLOCK_BYTES}"),
    )
}
