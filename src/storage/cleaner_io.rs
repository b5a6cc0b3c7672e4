//! The cleaner's file I/O: reading a durable segment batch by batch and
//! streaming a new segment with aligned O_DIRECT writes.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::protocol::batch::{check_crc, BATCH_HEADER_LEN};

use super::disk::{align_down, align_up, Disk, DiskFile, IoBuffer};
use super::error::StorageError;
use super::fault::{self, Step};
use super::scan::{batch_info, FileWindow};
use super::WRITE_BYTES_MAX;

/// Read-ahead of the cleaner's segment reads, in bytes.
pub const CLEANER_READ_BYTES: usize = 1 << 20;

/// Reads the whole, CRC-checked batches of a durable segment in order.
pub(super) struct BatchReader<'a, F: DiskFile> {
    window: FileWindow<'a, F>,
    path: &'a Path,
    position: u64,
    limit: u64,
}

impl<'a, F: DiskFile> BatchReader<'a, F> {
    pub(super) fn new(file: &'a F, path: &'a Path, limit: u64) -> Self {
        Self {
            window: FileWindow::new(file, path),
            path,
            position: 0,
            limit,
        }
    }

    /// The next batch, `None` at the end. Durable data that fails its
    /// checks is corruption: the pass stops and leaves the segment alone.
    pub(super) async fn next(&mut self) -> Result<Option<&[u8]>, StorageError> {
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
pub(super) struct SegmentWriter<D: Disk> {
    file: D::File,
    path: PathBuf,
    /// File position of `buf[0]` (block aligned).
    file_pos: u64,
    buf: Vec<u8>,
}

impl<D: Disk> SegmentWriter<D> {
    pub(super) async fn create(disk: &D, path: &Path) -> Result<Self, StorageError> {
        let file = disk.open(path).await;
        let file = file.map_err(StorageError::io_at("create cleaned segment", path, None))?;
        let trunc = file.truncate(0).await; // a leftover of an earlier failed pass
        trunc.map_err(StorageError::io_at("truncate", path, Some(0)))?;
        fault::reached(Step::CleanedTempCreated);
        Ok(Self {
            file,
            path: path.to_path_buf(),
            file_pos: 0,
            buf: Vec::new(),
        })
    }

    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Writes the whole blocks buffered once there is a chunk's worth.
    pub(super) async fn write_full_chunks(&mut self, disk: &D) -> Result<(), StorageError> {
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
    pub(super) async fn finish(self, disk: &D) -> Result<D::File, StorageError> {
        let rest = self.buf.len();
        if rest > 0 {
            self.write(disk, rest, align_up(rest as u64) as usize)
                .await?;
        }
        let len = self.file_pos + rest as u64;
        let trunc = self.file.truncate(len).await;
        trunc.map_err(StorageError::io_at("truncate", &self.path, Some(len)))?;
        fault::reached(Step::CleanedTempTruncated);
        let sync = self.file.fdatasync().await;
        sync.map_err(StorageError::io_at("fdatasync", &self.path, None))?;
        fault::reached(Step::CleanedTempSynced);
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
        fault::reached(Step::CleanedDataWritten);
        Ok(())
    }
}
