//! Whole-file reads and atomic whole-file writes of small files (indexes,
//! checkpoint) through the O_DIRECT disk seam.
//!
//! A write goes to `<name>.tmp` (aligned, zero padded), is cut to its exact
//! length with ftruncate, fdatasynced, renamed over `<name>`, and the
//! directory is synced: a reader sees the old file or the new one, never a
//! torn one.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::disk::{align_up, Disk, DiskFile, IoBuffer};
use super::error::StorageError;

/// Largest small file read back, in bytes (an index of a 2 GiB segment at
/// the default interval is ~4 MiB); bigger files are treated as corrupt.
pub(crate) const SMALL_FILE_BYTES_MAX: u64 = 64 << 20;

/// Reads all of `path`; `Ok(None)` if it does not exist or is too large.
pub(crate) async fn read_small_file<D: Disk>(
    disk: &D,
    path: &Path,
) -> Result<Option<Vec<u8>>, StorageError> {
    let exists = disk.exists(path).await;
    if !exists.map_err(StorageError::io_at("stat", path, None))? {
        return Ok(None);
    }
    let file = disk
        .open(path)
        .await
        .map_err(StorageError::io_at("open", path, None))?;
    let size = file
        .size()
        .await
        .map_err(StorageError::io_at("stat", path, None))?;
    if size > SMALL_FILE_BYTES_MAX {
        return Ok(None);
    }
    let bytes = file
        .read_at(0, align_up(size) as usize)
        .await
        .map_err(StorageError::io_at("read", path, Some(0)))?;
    Ok(Some(bytes[..(size as usize).min(bytes.len())].to_vec()))
}

/// Replaces `path` with `bytes`, atomically and durably.
pub(crate) async fn write_small_file<D: Disk>(
    disk: &D,
    path: &Path,
    bytes: &[u8],
) -> Result<(), StorageError> {
    let tmp = tmp_path(path);
    let file = disk
        .open(&tmp)
        .await
        .map_err(StorageError::io_at("create", &tmp, None))?;
    if !bytes.is_empty() {
        let mut buf = disk.alloc_buffer(align_up(bytes.len() as u64) as usize);
        buf.as_bytes_mut()[..bytes.len()].copy_from_slice(bytes);
        file.write_at(Rc::new(buf), 0)
            .await
            .map_err(StorageError::io_at("write", &tmp, Some(0)))?;
    }
    let len = bytes.len() as u64;
    file.truncate(len)
        .await
        .map_err(StorageError::io_at("truncate", &tmp, Some(len)))?;
    file.fdatasync()
        .await
        .map_err(StorageError::io_at("fdatasync", &tmp, None))?;
    drop(file);
    disk.rename(&tmp, path)
        .await
        .map_err(StorageError::io_at("rename", &tmp, None))?;
    sync_parent(disk, path).await
}

/// fsyncs the directory holding `path`, making its creation/rename durable.
pub(crate) async fn sync_parent<D: Disk>(disk: &D, path: &Path) -> Result<(), StorageError> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    disk.sync_dir(dir)
        .await
        .map_err(StorageError::io_at("sync dir", dir, None))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}
