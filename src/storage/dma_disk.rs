//! [`DmaDisk`]: the production [`Disk`], glommio `DmaFile`s (O_DIRECT,
//! io_uring).
//!
//! Decisions:
//! - Files are opened with `OpenOptions` read + write + create, never with
//!   `DmaFile::create` (that opens write-only, and the log reads back what it
//!   wrote).
//! - DMA buffers are allocated from the executor's io_memory pool through an
//!   open file (glommio has no free-standing allocator); [`prime_dma_io`]
//!   keeps the `.dma-probe` file open per executor (a thread local) for that,
//!   so a buffer can be allocated before the segment file it is meant for
//!   exists. Past the pool (RLIMIT_MEMLOCK is
//!   small) glommio falls back to heap memory, so callers keep buffers modest.
//! - Directory operations without an io_uring op (mkdir -p, readdir,
//!   rm -r) run on glommio's blocking thread pool (`spawn_blocking`), never
//!   on the shard thread.
//! - Environment quirk: glommio 0.9 decides whether polled I/O works from the
//!   first file it reads; on virtio disks it gets this wrong unless the first
//!   O_DIRECT read is of an existing non-empty file, after which reads fail
//!   with EOPNOTSUPP. [`prime_dma_io`] does that read once per executor.

use std::cell::RefCell;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{DmaBuffer, DmaFile, OpenOptions, ReadResult};

use super::disk::{is_aligned, misaligned, Disk, DiskFile, IoBuffer, BLOCK_BYTES};
use super::error::StorageError;

/// Name of the probe file [`prime_dma_io`] creates in the data directory.
pub const DMA_PROBE_FILE_NAME: &str = ".dma-probe";

/// Opens (creating if needed) `<data_dir>/.dma-probe`, fills it with one
/// block if it is empty, and reads it back with O_DIRECT, so glommio
/// detects this disk's I/O capabilities from a real read (see module doc).
/// Call once per executor before any other file I/O through [`DmaDisk`].
pub async fn prime_dma_io(data_dir: &Path) -> Result<(), StorageError> {
    let probe = Rc::new(open_dma_probe(data_dir).await?);
    register_allocator(&probe, true);
    Ok(())
}

/// [`prime_dma_io`], returning the open probe file.
async fn open_dma_probe(data_dir: &Path) -> Result<DmaFile, StorageError> {
    let path = data_dir.join(DMA_PROBE_FILE_NAME);
    let op = |op: &'static str| StorageError::io_at(op, &path, None);
    write_probe_file(data_dir.to_path_buf(), path.clone())
        .await
        .map_err(op("create dma probe"))?;
    let file = open_rw(&path).await.map_err(op("open dma probe"))?;
    let block = file
        .read_at_aligned(0, BLOCK_BYTES)
        .await
        .map_err(glommio_io)
        .map_err(op("read dma probe"))?;
    debug_assert_eq!(block.len(), BLOCK_BYTES);
    Ok(file)
}

/// Creates the data directory and a one-block probe file unless a non-empty
/// one exists. Buffered I/O on the blocking pool, on purpose: glommio's
/// capability probe must not see an empty file (see module doc). Runs once
/// per executor at start, never on the hot path.
async fn write_probe_file(data_dir: PathBuf, path: PathBuf) -> io::Result<()> {
    glommio::executor()
        .spawn_blocking(move || {
            std::fs::create_dir_all(&data_dir)?;
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if len < BLOCK_BYTES as u64 {
                std::fs::write(&path, [0u8; BLOCK_BYTES])?;
                std::fs::File::open(&path)?.sync_all()?;
            }
            Ok(())
        })
        .await
}

async fn open_rw(path: &Path) -> io::Result<DmaFile> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .dma_open(path)
        .await
        .map_err(glommio_io)
}

async fn create_dir_all(path: PathBuf) -> io::Result<()> {
    glommio::executor()
        .spawn_blocking(move || std::fs::create_dir_all(path))
        .await
}

/// The OS error inside a glommio error, kept as such so its errno
/// survives (`StorageError::is_out_of_space` needs ENOSPC); the operation
/// and path glommio adds are in `StorageError::Io` already.
fn glommio_io(err: glommio::GlommioError<()>) -> io::Error {
    match err {
        glommio::GlommioError::IoError(e) => e,
        glommio::GlommioError::EnhancedIoError { source, .. } => source,
        other => io::Error::other(other.to_string()),
    }
}

/// The production disk: glommio DMA files. A unit value: all state is the
/// executor's. Call [`prime_dma_io`] once per executor before using it
/// (it also provides the file buffers are allocated through). `!Send` in
/// spirit: its files belong to the executor that opened them.
#[derive(Clone, Copy, Default, Debug)]
pub struct DmaDisk;

thread_local! {
    /// (executor id, open file) used to allocate DMA buffers on this thread's
    /// executor: glommio allocates through a file's reactor handle.
    static DMA_ALLOCATOR: RefCell<Option<(usize, Rc<DmaFile>)>> = const { RefCell::new(None) };
}

/// Makes `file` this executor's buffer allocator unless it already has one.
fn register_allocator(file: &Rc<DmaFile>, replace: bool) {
    let executor_id = glommio::executor().id();
    DMA_ALLOCATOR.with(|slot| {
        let mut slot = slot.borrow_mut();
        let current = matches!(&*slot, Some((id, _)) if *id == executor_id);
        if replace || !current {
            *slot = Some((executor_id, file.clone()));
        }
    });
}

fn alloc_dma_buffer(len: usize) -> DmaBuffer {
    let executor_id = glommio::executor().id();
    DMA_ALLOCATOR.with(|slot| match &*slot.borrow() {
        Some((id, file)) if *id == executor_id => file.alloc_dma_buffer(len),
        _ => panic!("DmaDisk used before prime_dma_io on this executor"),
    })
}

impl IoBuffer for DmaBuffer {
    fn as_bytes(&self) -> &[u8] {
        DmaBuffer::as_bytes(self)
    }
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        DmaBuffer::as_bytes_mut(self)
    }
    fn trim_to(&mut self, len: usize) {
        self.trim_to_size(len);
    }
}

/// What a [`DmaDiskFile`] read returns: glommio's result, or nothing for a
/// zero-length read, which glommio cannot do (it has no empty `ReadResult`
/// to hand out, and its reactor panics on a zero-byte buffer).
#[derive(Debug)]
pub struct DmaRead(Option<ReadResult>);

impl std::ops::Deref for DmaRead {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

/// An open glommio DMA file.
#[derive(Debug)]
pub struct DmaDiskFile {
    file: Rc<DmaFile>,
}

impl Disk for DmaDisk {
    type Buffer = DmaBuffer;
    type File = DmaDiskFile;

    fn alloc_buffer(&self, len: usize) -> DmaBuffer {
        assert!(is_aligned(len as u64), "buffer length {len} not aligned");
        let mut buf = alloc_dma_buffer(len);
        DmaBuffer::as_bytes_mut(&mut buf).fill(0);
        buf
    }

    fn alloc_write_buffer(&self, len: usize) -> DmaBuffer {
        assert!(is_aligned(len as u64), "buffer length {len} not aligned");
        alloc_dma_buffer(len)
    }

    async fn open(&self, path: &Path) -> io::Result<DmaDiskFile> {
        let file = Rc::new(open_rw(path).await?);
        register_allocator(&file, false);
        Ok(DmaDiskFile { file })
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        create_dir_all(path.to_path_buf()).await
    }

    async fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let path = path.to_path_buf();
        glommio::executor()
            .spawn_blocking(move || {
                let mut names = Vec::new();
                for entry in std::fs::read_dir(path)? {
                    if let Some(name) = entry?.file_name().to_str() {
                        names.push(name.to_owned());
                    }
                }
                names.sort();
                Ok(names)
            })
            .await
    }

    async fn remove_file(&self, path: &Path) -> io::Result<()> {
        glommio::io::remove(path).await.map_err(glommio_io)
    }

    async fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let path = path.to_path_buf();
        glommio::executor()
            .spawn_blocking(move || std::fs::remove_dir_all(path))
            .await
    }

    async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        glommio::io::rename(from, to).await.map_err(glommio_io)
    }

    async fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let dir = glommio::io::Directory::open(path)
            .await
            .map_err(glommio_io)?;
        dir.sync().await.map_err(glommio_io)?;
        dir.close().await.map_err(glommio_io)
    }

    async fn exists(&self, path: &Path) -> io::Result<bool> {
        let path = path.to_path_buf();
        glommio::executor()
            .spawn_blocking(move || path.try_exists())
            .await
    }
}

impl DiskFile for DmaDiskFile {
    type Buffer = DmaBuffer;
    type ReadBuffer = DmaRead;

    async fn write_at(&self, buf: Rc<DmaBuffer>, pos: u64) -> io::Result<usize> {
        let len = buf.as_bytes().len();
        if !is_aligned(pos) || !is_aligned(len as u64) {
            return Err(misaligned("write_at", pos, len));
        }
        self.file.write_rc_at(buf, pos).await.map_err(glommio_io)
    }

    async fn read_at(&self, pos: u64, len: usize) -> io::Result<DmaRead> {
        if !is_aligned(pos) || !is_aligned(len as u64) {
            return Err(misaligned("read_at", pos, len));
        }
        if len == 0 {
            // glommio 0.9 would ask its allocator for a zero-byte buffer,
            // get none, and panic the whole shard.
            return Ok(DmaRead(None));
        }
        let read = self.file.read_at_aligned(pos, len).await;
        read.map(|r| DmaRead(Some(r))).map_err(glommio_io)
    }

    async fn fdatasync(&self) -> io::Result<()> {
        self.file.fdatasync().await.map_err(glommio_io)
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.truncate(len).await.map_err(glommio_io)
    }

    async fn preallocate(&self, len: u64) -> io::Result<()> {
        self.file.pre_allocate(len, false).await.map_err(glommio_io)
    }

    async fn size(&self) -> io::Result<u64> {
        self.file.file_size().await.map_err(glommio_io)
    }
}
