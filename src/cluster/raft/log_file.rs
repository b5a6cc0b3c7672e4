//! The byte layer of the Raft log store's files: frames (`[length: u32
//! LE][CRC32C: u32 LE][payload]`), the log's records, recovery's scan of
//! the log (where the intact part ends, whether a bad frame is a torn tail
//! or damage in the middle), and one-frame files (vote, committed log id).
//! The format itself is described in `log_store`'s module doc.

use std::path::Path;

use openraft::entry::RaftEntry;
use serde::{Deserialize, Serialize};

use super::log_store::{
    LogStoreError, FRAME_HEADER_BYTES, FRAME_PAYLOAD_BYTES_MAX, LOG_FILE_BYTES_MAX,
    RECOVERY_READ_BYTES,
};
use super::types::{Entry, LogId};
use crate::storage::{
    align_down, align_up, read_small_file, write_small_file, Disk, DiskFile, StorageError,
    BLOCK_BYTES,
};

/// One frame's payload in `raft-log` (see the module doc).
#[derive(Debug, Deserialize)]
pub(super) enum LogRecord {
    Purged(LogId),
    Entry(Entry),
}

/// [`LogRecord`] by reference, for writing without cloning entries.
#[derive(Serialize)]
pub(super) enum LogRecordRef<'a> {
    Purged(&'a LogId),
    Entry(&'a Entry),
}

/// Encodes one frame: header, then `payload`.
pub(super) fn encode_frame(
    what: impl FnOnce() -> String,
    payload: &[u8],
) -> Result<Vec<u8>, LogStoreError> {
    if payload.is_empty() || payload.len() > FRAME_PAYLOAD_BYTES_MAX {
        let bytes = payload.len();
        return Err(LogStoreError::RecordTooLarge {
            what: what(),
            bytes,
        });
    }
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    frame.extend_from_slice(payload);
    Ok(frame)
}

pub(super) fn encode_record(record: &LogRecordRef<'_>) -> Result<Vec<u8>, LogStoreError> {
    let what = || match record {
        LogRecordRef::Purged(_) => "purge marker".to_string(),
        LogRecordRef::Entry(e) => format!("entry {}", e.index()),
    };
    let payload = serde_json::to_vec(record).map_err(|e| LogStoreError::Encode {
        what: what(),
        reason: e.to_string(),
    })?;
    encode_frame(what, &payload)
}

pub(super) fn read_u32(bytes: &[u8], pos: usize) -> Option<u32> {
    let word = bytes.get(pos..pos.checked_add(4)?)?;
    Some(u32::from_le_bytes(word.try_into().ok()?))
}

/// The payload of the whole frame at `pos`, if one is there intact.
pub(super) fn decode_frame(bytes: &[u8], pos: usize) -> Option<&[u8]> {
    let len = read_u32(bytes, pos)? as usize;
    let crc = read_u32(bytes, pos + 4)?;
    if len == 0 || len > FRAME_PAYLOAD_BYTES_MAX {
        return None;
    }
    let start = pos + FRAME_HEADER_BYTES;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    (crc32c::crc32c(payload) == crc).then_some(payload)
}

/// The intact records of a log file, each with its byte position, and the
/// byte where the intact part ends.
pub(super) type ScannedLog = (Vec<(u64, LogRecord)>, u64);

/// The intact records at the start of `bytes`, each with its position, and
/// where the intact part ends. A frame whose CRC holds but whose payload
/// does not decode is corruption (no torn write leaves one): `Err` with its
/// position and the reason.
pub(super) fn scan_records(bytes: &[u8]) -> Result<ScannedLog, (u64, String)> {
    let mut records = Vec::new();
    let mut pos = 0;
    while let Some(payload) = decode_frame(bytes, pos) {
        let record = serde_json::from_slice::<LogRecord>(payload).map_err(|e| {
            (
                pos as u64,
                format!("frame with a good CRC does not decode: {e}"),
            )
        })?;
        records.push((pos as u64, record));
        pos += FRAME_HEADER_BYTES + payload.len();
    }
    Ok((records, pos as u64))
}

/// Start of the first whole record after the bad frame at `bad`, if any.
///
/// A torn write leaves a bad frame only at the tail (later bytes are
/// padding, or frames of the same unfinished append); a bad frame with a
/// record after it is a damaged entry in the middle of the log, which may
/// be committed. Cutting there would drop every entry after it, so open
/// refuses instead. Looks first where the next frame would start if the
/// bad frame's header is intact, then at every byte (a damaged length);
/// a candidate must start like a record's JSON before its CRC is checked,
/// which keeps the byte-wise search linear in practice.
pub(super) fn record_after(bytes: &[u8], bad: usize) -> Option<usize> {
    let is_record = |pos: usize| {
        let payload = decode_frame(bytes, pos)?;
        let starts_like_a_record = RECORD_PREFIXES.iter().any(|p| payload.starts_with(p));
        (starts_like_a_record && serde_json::from_slice::<LogRecord>(payload).is_ok())
            .then_some(pos)
    };
    let natural = read_u32(bytes, bad)
        .map(|len| bad + FRAME_HEADER_BYTES + len as usize)
        .filter(|next| *next < bytes.len())
        .and_then(is_record);
    natural.or_else(|| {
        (bad + 1..bytes.len().saturating_sub(FRAME_HEADER_BYTES)).find_map(|pos| {
            let head = bytes.get(pos + FRAME_HEADER_BYTES..)?;
            RECORD_PREFIXES
                .iter()
                .any(|p| head.starts_with(p))
                .then(|| is_record(pos))
                .flatten()
        })
    })
}

/// How every record's JSON starts (serde's externally tagged enum).
const RECORD_PREFIXES: [&[u8]; 2] = [b"{\"Entry\":", b"{\"Purged\":"];

pub(super) fn corrupt(path: &Path, position: u64, reason: String) -> LogStoreError {
    LogStoreError::Corrupt {
        path: path.to_path_buf(),
        position,
        reason,
    }
}

/// Reads the whole log file (bounded by [`LOG_FILE_BYTES_MAX`]).
pub(super) async fn read_whole<F: DiskFile>(
    file: &F,
    path: &Path,
) -> Result<Vec<u8>, LogStoreError> {
    let size = file
        .size()
        .await
        .map_err(StorageError::io_at("stat", path, None))?;
    if size > LOG_FILE_BYTES_MAX {
        let path = path.to_path_buf();
        return Err(LogStoreError::LogTooLarge { path, bytes: size });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    while (bytes.len() as u64) < size {
        let pos = bytes.len() as u64;
        let chunk = file
            .read_at(pos, RECOVERY_READ_BYTES)
            .await
            .map_err(StorageError::io_at("read", path, Some(pos)))?;
        if chunk.is_empty() {
            break;
        }
        let want = (size - pos).min(chunk.len() as u64) as usize;
        bytes.extend_from_slice(&chunk[..want]);
    }
    Ok(bytes)
}

/// Cuts a torn tail at `end` (durably, so a later append's padding is not
/// mixed with old bytes).
pub(super) async fn cut_torn_tail<F: DiskFile>(
    file: &F,
    path: &Path,
    end: u64,
    size: u64,
) -> Result<(), LogStoreError> {
    if size > align_up(end) || has_data(file, path, end, size).await? {
        tracing::warn!(
            "raft log {}: cutting {} bytes of torn or corrupt tail at byte {end}",
            path.display(),
            size - end
        );
    }
    file.truncate(end)
        .await
        .map_err(StorageError::io_at("truncate", path, Some(end)))?;
    file.fdatasync()
        .await
        .map_err(StorageError::io_at("fdatasync", path, None))?;
    Ok(())
}

/// True if `[end, size)` (within one block) holds anything but padding.
pub(super) async fn has_data<F: DiskFile>(
    file: &F,
    path: &Path,
    end: u64,
    size: u64,
) -> Result<bool, LogStoreError> {
    let base = align_down(end);
    let block = file
        .read_at(base, BLOCK_BYTES)
        .await
        .map_err(StorageError::io_at("read", path, Some(base)))?;
    let from = (end - base) as usize;
    let to = ((size - base) as usize).min(block.len());
    Ok(block
        .get(from..to)
        .is_some_and(|b| b.iter().any(|&x| x != 0)))
}

/// The JSON value saved in a one-frame file (the vote, the committed log
/// id); `None` if none was ever saved.
pub(super) async fn read_framed_json<D: Disk, T: serde::de::DeserializeOwned>(
    disk: &D,
    path: &Path,
    what: &str,
) -> Result<Option<T>, LogStoreError> {
    let Some(bytes) = read_small_file(disk, path).await? else {
        return Ok(None);
    };
    let payload = decode_frame(&bytes, 0)
        .filter(|p| p.len() + FRAME_HEADER_BYTES == bytes.len())
        .ok_or_else(|| corrupt(path, 0, format!("{what} frame torn or bad CRC")))?;
    let value = serde_json::from_slice(payload)
        .map_err(|e| corrupt(path, FRAME_HEADER_BYTES as u64, format!("{what}: {e}")))?;
    Ok(Some(value))
}

/// Replaces the one-frame file `path` with `value` as JSON, durably.
pub(super) async fn write_framed_json<D: Disk, T: Serialize>(
    disk: &D,
    path: &Path,
    what: &str,
    value: &T,
) -> Result<(), LogStoreError> {
    let payload = serde_json::to_vec(value).map_err(|e| LogStoreError::Encode {
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    let frame = encode_frame(|| what.to_string(), &payload)?;
    write_small_file(disk, path, &frame).await?;
    Ok(())
}
