//! [`RaftLogStore`]: the controller's Raft log and vote, on the [`Disk`] seam.
//!
//! openraft asks the log store for durability at two points: an appended
//! entry is acknowledged (the `IOFlushed` callback) only once it is on
//! disk, and a vote is saved before `save_vote` returns. Both are done
//! here with an fdatasync (O_DIRECT on `DmaDisk`) before the
//! acknowledgement, so a node never promises what a power cut can take.
//!
//! On-disk format, in the store's directory:
//!
//! - `raft-log`: a sequence of frames, each
//!   `[payload length: u32 LE][CRC32C of payload: u32 LE][payload]`, the
//!   payload a JSON [`LogRecord`]: either `{"Purged": log_id}` (only as the
//!   first frame: everything up to that log id was purged) or
//!   `{"Entry": entry}` (openraft's entry with its serde derive). Entries
//!   follow each other by index, without holes. A zero length ends the log
//!   (writes are block-aligned and zero-padded, so the padding after the
//!   last frame reads as the end).
//! - `raft-vote`: one frame holding the JSON vote, replaced atomically
//!   (`storage::write_small_file`: temp file, fdatasync, rename, fsync of
//!   the directory).
//!
//! Decisions:
//!
//! - The whole unpurged log is also kept in memory, and readers read only
//!   memory. The controller log is small (metadata changes, purged after
//!   each snapshot), and it makes `append`'s "readable on return" and the
//!   readers' consistency trivial. [`LOG_FILE_BYTES_MAX`] bounds it.
//! - An append writes the partial last block again together with the new
//!   frames (O_DIRECT writes whole blocks), then fdatasyncs, then calls the
//!   callback. Appends are not batched across calls: openraft already
//!   hands over batches, and the controller's rate is low.
//! - A purge rewrites the log (a `Purged` frame, then the remaining
//!   entries) through the atomic small-file path: purges follow snapshots,
//!   are rare, and leave the log short.
//! - `truncate_after` cuts the file at the first removed frame and syncs
//!   before returning, so a removed (uncommitted) entry cannot come back
//!   after a crash.
//! - Recovery at open: frames are read until the first that is short, has
//!   a bad length or CRC, or does not decode; the file is cut there (a torn
//!   write of the last append). A frame that decodes but breaks the log's
//!   order (a hole, a second `Purged`) is an error, not a truncation: no
//!   torn write can produce it. A bad vote file is an error too: forgetting
//!   a vote could let this node vote twice in a term.
//! - After a failed write or sync the store refuses all further work
//!   ([`LogStoreError::Failed`]): what reached the disk is unknown until
//!   it is reopened and recovered.
//! - `save_committed` is not implemented (openraft's default): the state
//!   machine will re-apply from its snapshot on restart.
//!
//! Everything here is `!Send`: the store lives on the controller's shard.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::OptionalSend;
use serde::{Deserialize, Serialize};

use super::types::{ControllerRaft, Entry, LogId, Vote};
use crate::storage::{
    align_down, align_up, read_small_file, write_small_file, Disk, DiskFile, IoBuffer,
    StorageError, BLOCK_BYTES,
};

/// Name of the log file in the store's directory.
pub const LOG_FILE_NAME: &str = "raft-log";
/// Name of the vote file in the store's directory.
pub const VOTE_FILE_NAME: &str = "raft-vote";
/// Frame header: payload length, then CRC32C, both u32 little-endian.
pub const FRAME_HEADER_BYTES: usize = 8;
/// Largest frame payload written or accepted when read back.
pub const FRAME_PAYLOAD_BYTES_MAX: usize = 16 << 20;
/// Largest log file opened (the whole log is held in memory).
pub const LOG_FILE_BYTES_MAX: u64 = 1 << 30;
/// Read size while recovering the log at open.
const RECOVERY_READ_BYTES: usize = 1 << 20;

const _: () = assert!(RECOVERY_READ_BYTES.is_multiple_of(BLOCK_BYTES));
const _: () = assert!(FRAME_PAYLOAD_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(FRAME_PAYLOAD_BYTES_MAX as u64 <= LOG_FILE_BYTES_MAX);

/// What the Raft log store refuses or fails at.
#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    /// A disk operation failed (with operation, path and position).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A file holds something no write of this store can leave behind.
    #[error("corrupt raft file {} at byte {position}: {reason}", path.display())]
    Corrupt {
        /// The log or vote file.
        path: PathBuf,
        /// Byte position of the bad frame.
        position: u64,
        /// What was wrong.
        reason: String,
    },
    /// The log file is over [`LOG_FILE_BYTES_MAX`].
    #[error("raft log {} is {bytes} bytes, over the {LOG_FILE_BYTES_MAX} byte limit", path.display())]
    LogTooLarge {
        /// The log file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// An entry or vote encodes to more than [`FRAME_PAYLOAD_BYTES_MAX`].
    #[error("raft record {what} encodes to {bytes} bytes, over the {FRAME_PAYLOAD_BYTES_MAX} byte limit")]
    RecordTooLarge {
        /// Which record ("entry 12", "vote").
        what: String,
        /// Its encoded size.
        bytes: usize,
    },
    /// A record could not be encoded as JSON (a bug: these types always
    /// serialise).
    #[error("cannot encode raft {what}: {reason}")]
    Encode {
        /// Which record ("entry 12", "vote").
        what: String,
        /// The serde error.
        reason: String,
    },
    /// An append would leave a hole or go backwards (a caller bug).
    #[error("raft entry {index} appended after log end {last:?}: the log must stay consecutive")]
    NotConsecutive {
        /// Index of the refused entry.
        index: u64,
        /// Index of the last entry or purged id, if any.
        last: Option<u64>,
    },
    /// An earlier write failed; reopen the store to recover.
    #[error("raft log store {} failed and must be reopened: {reason}", dir.display())]
    Failed {
        /// The store's directory.
        dir: PathBuf,
        /// The first error.
        reason: String,
    },
}

impl From<LogStoreError> for io::Error {
    fn from(error: LogStoreError) -> io::Error {
        io::Error::other(error)
    }
}

/// One frame's payload in `raft-log` (see the module doc).
#[derive(Debug, Deserialize)]
enum LogRecord {
    Purged(LogId),
    Entry(Entry),
}

/// [`LogRecord`] by reference, for writing without cloning entries.
#[derive(Serialize)]
enum LogRecordRef<'a> {
    Purged(&'a LogId),
    Entry(&'a Entry),
}

/// What readers see: the log and vote as of the last call that returned.
#[derive(Debug, Default)]
struct LogMemory {
    entries: BTreeMap<u64, Entry>,
    vote: Option<Vote>,
    last_purged: Option<LogId>,
}

impl LogMemory {
    fn last_index(&self) -> Option<u64> {
        let last_entry = self.entries.last_key_value().map(|(index, _)| *index);
        last_entry.or(self.last_purged.as_ref().map(LogId::index))
    }

    fn entries_in(&self, range: impl RangeBounds<u64>) -> Vec<Entry> {
        self.entries.range(range).map(|(_, e)| e.clone()).collect()
    }
}

/// The Raft log and vote of one controller node; see the module doc.
/// `!Send`: it lives on the controller's shard.
pub struct RaftLogStore<D: Disk> {
    disk: D,
    dir: PathBuf,
    log_path: PathBuf,
    vote_path: PathBuf,
    file: D::File,
    /// Logical end of the log file (the bytes after it are padding).
    end: u64,
    /// The file's bytes `[align_down(end), end)`, rewritten by the next
    /// append since O_DIRECT writes whole blocks.
    tail: Vec<u8>,
    /// Byte position of each entry's frame.
    positions: BTreeMap<u64, u64>,
    memory: Rc<RefCell<LogMemory>>,
    /// Set by the first failed write; see [`LogStoreError::Failed`].
    failed: Option<String>,
}

/// A reader of a [`RaftLogStore`]'s log and vote (openraft's replication
/// tasks each hold one). Sees every append once `append` has returned.
#[derive(Clone)]
pub struct RaftLogReaderHandle {
    memory: Rc<RefCell<LogMemory>>,
}

/// Encodes one frame: header, then `payload`.
fn encode_frame(what: impl FnOnce() -> String, payload: &[u8]) -> Result<Vec<u8>, LogStoreError> {
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

fn encode_record(record: &LogRecordRef<'_>) -> Result<Vec<u8>, LogStoreError> {
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

fn read_u32(bytes: &[u8], pos: usize) -> Option<u32> {
    let word = bytes.get(pos..pos.checked_add(4)?)?;
    Some(u32::from_le_bytes(word.try_into().ok()?))
}

/// The payload of the whole frame at `pos`, if one is there intact.
fn decode_frame(bytes: &[u8], pos: usize) -> Option<&[u8]> {
    let len = read_u32(bytes, pos)? as usize;
    let crc = read_u32(bytes, pos + 4)?;
    if len == 0 || len > FRAME_PAYLOAD_BYTES_MAX {
        return None;
    }
    let start = pos + FRAME_HEADER_BYTES;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    (crc32c::crc32c(payload) == crc).then_some(payload)
}

/// The intact records at the start of `bytes`, each with its position, and
/// where the intact part ends.
fn scan_records(bytes: &[u8]) -> (Vec<(u64, LogRecord)>, u64) {
    let mut records = Vec::new();
    let mut pos = 0;
    while let Some(payload) = decode_frame(bytes, pos) {
        let Ok(record) = serde_json::from_slice::<LogRecord>(payload) else {
            break;
        };
        records.push((pos as u64, record));
        pos += FRAME_HEADER_BYTES + payload.len();
    }
    (records, pos as u64)
}

impl<D: Disk> RaftLogStore<D> {
    /// Opens (creating if needed) the store in `dir`, recovering the log:
    /// a torn or corrupt tail is cut at the last whole entry.
    pub async fn open(disk: D, dir: &Path) -> Result<Self, LogStoreError> {
        disk.create_dir_all(dir)
            .await
            .map_err(StorageError::io_at("create dir", dir, None))?;
        let log_path = dir.join(LOG_FILE_NAME);
        let vote_path = dir.join(VOTE_FILE_NAME);
        let vote = read_vote(&disk, &vote_path).await?;
        let file = disk
            .open(&log_path)
            .await
            .map_err(StorageError::io_at("open", &log_path, None))?;
        let bytes = read_whole(&file, &log_path).await?;
        let (records, end) = scan_records(&bytes);
        let mut memory = LogMemory {
            vote,
            ..LogMemory::default()
        };
        let mut positions = BTreeMap::new();
        for (position, record) in records {
            restore_record(&mut memory, &mut positions, position, record)
                .map_err(|reason| corrupt(&log_path, position, reason))?;
        }
        if end < bytes.len() as u64 {
            cut_torn_tail(&file, &log_path, end, bytes.len() as u64).await?;
        }
        let tail = bytes[align_down(end) as usize..end as usize].to_vec();
        Ok(RaftLogStore {
            disk,
            dir: dir.to_path_buf(),
            log_path,
            vote_path,
            file,
            end,
            tail,
            positions,
            memory: Rc::new(RefCell::new(memory)),
            failed: None,
        })
    }

    /// A reader sharing this store's view of the log and vote.
    pub fn reader(&self) -> RaftLogReaderHandle {
        RaftLogReaderHandle {
            memory: self.memory.clone(),
        }
    }

    /// The last purged log id and the last log id (an entry's, else the
    /// purged one).
    pub fn log_state(&self) -> LogState<ControllerRaft> {
        let memory = self.memory.borrow();
        let last_entry = memory.entries.last_key_value().map(|(_, e)| e.log_id());
        LogState {
            last_purged_log_id: memory.last_purged,
            last_log_id: last_entry.or(memory.last_purged),
        }
    }

    fn check_usable(&self) -> Result<(), LogStoreError> {
        match &self.failed {
            None => Ok(()),
            Some(reason) => Err(LogStoreError::Failed {
                dir: self.dir.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// Runs a write step; its failure poisons the store (see
    /// [`LogStoreError::Failed`]).
    fn poison_on_error<T>(&mut self, result: Result<T, LogStoreError>) -> Result<T, LogStoreError> {
        if let Err(e) = &result {
            self.failed.get_or_insert_with(|| e.to_string());
        }
        result
    }

    /// Saves `vote` durably, then makes it visible to readers.
    pub async fn save_vote_durably(&mut self, vote: &Vote) -> Result<(), LogStoreError> {
        self.check_usable()?;
        let payload = serde_json::to_vec(vote).map_err(|e| LogStoreError::Encode {
            what: "vote".to_string(),
            reason: e.to_string(),
        })?;
        let frame = encode_frame(|| "vote".to_string(), &payload)?;
        let written = write_small_file(&self.disk, &self.vote_path, &frame).await;
        self.poison_on_error(written.map_err(LogStoreError::from))?;
        self.memory.borrow_mut().vote = Some(*vote);
        Ok(())
    }

    /// Appends `entries` (readable when this returns) and makes them
    /// durable (fdatasync) before returning `Ok`.
    pub async fn append_durably(
        &mut self,
        entries: impl IntoIterator<Item = Entry>,
    ) -> Result<(), LogStoreError> {
        self.check_usable()?;
        let base = align_down(self.end);
        // The partial last block goes out again with the new frames.
        let mut bytes = self.tail.clone();
        let mut appended = Vec::new();
        let mut last = self.memory.borrow().last_index();
        for entry in entries {
            let index = entry.index();
            if last.is_some_and(|last| index != last + 1) {
                return Err(LogStoreError::NotConsecutive { index, last });
            }
            let frame = encode_record(&LogRecordRef::Entry(&entry))?;
            appended.push((index, base + bytes.len() as u64, entry));
            bytes.extend_from_slice(&frame);
            last = Some(index);
        }
        {
            let mut memory = self.memory.borrow_mut();
            for (index, position, entry) in appended {
                self.positions.insert(index, position);
                memory.entries.insert(index, entry);
            }
        }
        let written = self.write_tail_and_sync(base, &bytes).await;
        self.poison_on_error(written)?;
        self.end = base + bytes.len() as u64;
        self.tail = bytes[(align_down(self.end) - base) as usize..].to_vec();
        Ok(())
    }

    /// Writes `bytes` (zero-padded to whole blocks) at `base`, fdatasyncs.
    async fn write_tail_and_sync(&self, base: u64, bytes: &[u8]) -> Result<(), LogStoreError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut buf = self
            .disk
            .alloc_buffer(align_up(bytes.len() as u64) as usize);
        buf.as_bytes_mut()[..bytes.len()].copy_from_slice(bytes);
        buf.as_bytes_mut()[bytes.len()..].fill(0);
        let path = &self.log_path;
        self.file
            .write_at(Rc::new(buf), base)
            .await
            .map_err(StorageError::io_at("write", path, Some(base)))?;
        self.file
            .fdatasync()
            .await
            .map_err(StorageError::io_at("fdatasync", path, None))?;
        Ok(())
    }

    /// Removes every entry after `last_log_id` (all if `None`), durably.
    pub async fn truncate_after_durably(
        &mut self,
        last_log_id: Option<&LogId>,
    ) -> Result<(), LogStoreError> {
        self.check_usable()?;
        let first_removed = last_log_id.map_or(0, |id| id.index() + 1);
        let Some(&cut) = self.positions.range(first_removed..).next().map(|(_, p)| p) else {
            return Ok(());
        };
        self.positions.split_off(&first_removed);
        self.memory.borrow_mut().entries.split_off(&first_removed);
        let cut_done = self.cut_file_at(cut).await;
        self.poison_on_error(cut_done)
    }

    /// Truncates the file to `cut`, syncs, reloads the partial last block.
    async fn cut_file_at(&mut self, cut: u64) -> Result<(), LogStoreError> {
        let path = &self.log_path;
        self.file
            .truncate(cut)
            .await
            .map_err(StorageError::io_at("truncate", path, Some(cut)))?;
        self.file
            .fdatasync()
            .await
            .map_err(StorageError::io_at("fdatasync", path, None))?;
        let base = align_down(cut);
        let block = self
            .file
            .read_at(base, BLOCK_BYTES)
            .await
            .map_err(StorageError::io_at("read", path, Some(base)))?;
        let keep = (cut - base) as usize;
        let Some(tail) = block.get(..keep) else {
            return Err(corrupt(
                path,
                base,
                "shorter than its truncation point".into(),
            ));
        };
        self.tail = tail.to_vec();
        self.end = cut;
        Ok(())
    }

    /// Removes every entry up to and including `log_id`, rewriting the log
    /// atomically with a purge marker first.
    pub async fn purge_durably(&mut self, log_id: &LogId) -> Result<(), LogStoreError> {
        self.check_usable()?;
        let rewritten = self.rewrite_purged(log_id).await;
        self.poison_on_error(rewritten)
    }

    async fn rewrite_purged(&mut self, log_id: &LogId) -> Result<(), LogStoreError> {
        let purged = {
            let mut memory = self.memory.borrow_mut();
            let keep = memory.entries.split_off(&(log_id.index() + 1));
            memory.entries = keep;
            let newer = memory.last_purged.as_ref().is_some_and(|p| p > log_id);
            if !newer {
                memory.last_purged = Some(*log_id);
            }
            memory.last_purged
        };
        let mut bytes = Vec::new();
        let mut positions = BTreeMap::new();
        if let Some(purged) = &purged {
            bytes.extend_from_slice(&encode_record(&LogRecordRef::Purged(purged))?);
        }
        for (index, entry) in self.memory.borrow().entries.iter() {
            positions.insert(*index, bytes.len() as u64);
            bytes.extend_from_slice(&encode_record(&LogRecordRef::Entry(entry))?);
        }
        write_small_file(&self.disk, &self.log_path, &bytes).await?;
        // The rename replaced the file: the old handle names the old one.
        self.file = self
            .disk
            .open(&self.log_path)
            .await
            .map_err(StorageError::io_at("open", &self.log_path, None))?;
        self.positions = positions;
        self.end = bytes.len() as u64;
        self.tail = bytes[align_down(self.end) as usize..].to_vec();
        Ok(())
    }
}

fn corrupt(path: &Path, position: u64, reason: String) -> LogStoreError {
    LogStoreError::Corrupt {
        path: path.to_path_buf(),
        position,
        reason,
    }
}

/// Adds one recovered record to the in-memory log; `Err` if it breaks the
/// log's order (which no torn write can do).
fn restore_record(
    memory: &mut LogMemory,
    positions: &mut BTreeMap<u64, u64>,
    position: u64,
    record: LogRecord,
) -> Result<(), String> {
    match record {
        LogRecord::Purged(id) if position == 0 => {
            memory.last_purged = Some(id);
            Ok(())
        }
        LogRecord::Purged(id) => Err(format!("purge marker {id} after the first frame")),
        LogRecord::Entry(entry) => {
            let index = entry.index();
            if let Some(last) = memory.last_index() {
                if index != last + 1 {
                    return Err(format!("entry {index} follows {last}"));
                }
            }
            positions.insert(index, position);
            memory.entries.insert(index, entry);
            Ok(())
        }
    }
}

/// Reads the whole log file (bounded by [`LOG_FILE_BYTES_MAX`]).
async fn read_whole<F: DiskFile>(file: &F, path: &Path) -> Result<Vec<u8>, LogStoreError> {
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
async fn cut_torn_tail<F: DiskFile>(
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
async fn has_data<F: DiskFile>(
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

/// The saved vote; `None` if none was ever saved.
async fn read_vote<D: Disk>(disk: &D, path: &Path) -> Result<Option<Vote>, LogStoreError> {
    let Some(bytes) = read_small_file(disk, path).await? else {
        return Ok(None);
    };
    let payload = decode_frame(&bytes, 0)
        .filter(|p| p.len() + FRAME_HEADER_BYTES == bytes.len())
        .ok_or_else(|| corrupt(path, 0, "vote frame torn or bad CRC".into()))?;
    let vote = serde_json::from_slice(payload)
        .map_err(|e| corrupt(path, FRAME_HEADER_BYTES as u64, format!("vote: {e}")))?;
    Ok(Some(vote))
}

impl RaftLogReader<ControllerRaft> for RaftLogReaderHandle {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        Ok(self.memory.borrow().entries_in(range))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.memory.borrow().vote)
    }
}

impl<D: Disk + 'static> RaftLogReader<ControllerRaft> for RaftLogStore<D> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        Ok(self.memory.borrow().entries_in(range))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.memory.borrow().vote)
    }
}

impl<D: Disk + 'static> RaftLogStorage<ControllerRaft> for RaftLogStore<D> {
    type LogReader = RaftLogReaderHandle;

    async fn get_log_state(&mut self) -> Result<LogState<ControllerRaft>, io::Error> {
        Ok(self.log_state())
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        Ok(self.save_vote_durably(vote).await?)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<ControllerRaft>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        match self.append_durably(entries).await {
            Ok(()) => {
                callback.io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.io_completed(Err(io::Error::other(e.to_string())));
                Err(e.into())
            }
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        Ok(self.truncate_after_durably(last_log_id.as_ref()).await?)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        Ok(self.purge_durably(&log_id).await?)
    }
}
