//! [`RaftLogStore`]: the controller's Raft log, vote and committed log id,
//! on the [`Disk`] seam.
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
//!   payload a JSON `LogRecord` (`log_file`): either `{"Purged": log_id}` (only as the
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
//! - Recovery at open: frames are read until the first that is short or
//!   has a bad length or CRC. If no whole record follows it, it is the torn
//!   write of the last append and the file is cut there. If a whole record
//!   follows, the bad frame is damage in the middle of the log, where
//!   entries may be committed: open fails with [`LogStoreError::Corrupt`]
//!   (path, byte position) rather than drop them. (An append spanning
//!   several blocks torn so that a later block reached the disk and an
//!   earlier one did not looks the same and fails safe the same way; the
//!   node's raft directory must then be repaired or rebuilt from the
//!   quorum.) A frame with a good CRC that does not decode, or that breaks
//!   the log's order (a hole, a second `Purged`), is an error too: no torn
//!   write can produce it. A bad vote file is an error too: forgetting a
//!   vote could let this node vote twice in a term.
//! - After a failed write or sync the store refuses all further work
//!   ([`LogStoreError::Failed`]): what reached the disk is unknown until
//!   it is reopened and recovered.
//! - `raft-committed`: the last committed log id openraft reported
//!   (`save_committed`), one frame, replaced atomically like the vote, so a
//!   restarted node re-applies every committed entry after its snapshot
//!   at start-up. That costs a file replace per commit advance, which the
//!   controller's low write rate affords.
//! - Purge: the log is rewritten without the purged entries (the `Purged`
//!   frame first), so purged records are really gone from the disk. The
//!   state machine's snapshot (`snapshot_file`) is on disk before openraft
//!   purges up to it.
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

use super::log_file::{
    corrupt, cut_torn_tail, encode_record, read_framed_json, read_whole, record_after,
    scan_records, write_framed_json, LogRecord, LogRecordRef,
};
use super::types::{ControllerRaft, Entry, LogId, Vote};
use crate::storage::{
    align_down, align_up, write_small_file, Disk, DiskFile, IoBuffer, StorageError, BLOCK_BYTES,
};

/// Name of the log file in the store's directory.
pub const LOG_FILE_NAME: &str = "raft-log";
/// Name of the vote file in the store's directory.
pub const VOTE_FILE_NAME: &str = "raft-vote";
/// Name of the committed log id file in the store's directory.
pub const COMMITTED_FILE_NAME: &str = "raft-committed";
/// Frame header: payload length, then CRC32C, both u32 little-endian.
pub const FRAME_HEADER_BYTES: usize = 8;
/// Largest frame payload written or accepted when read back.
pub const FRAME_PAYLOAD_BYTES_MAX: usize = 16 << 20;
/// Largest log file opened (the whole log is held in memory).
pub const LOG_FILE_BYTES_MAX: u64 = 1 << 30;
/// Read size while recovering the log at open.
pub(super) const RECOVERY_READ_BYTES: usize = 1 << 20;

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
    committed_path: PathBuf,
    /// The last saved committed log id.
    committed: Option<LogId>,
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

impl<D: Disk> RaftLogStore<D> {
    /// Opens (creating if needed) the store in `dir`, recovering the log:
    /// a torn tail (a bad or short frame with no whole record after it) is
    /// cut at the last whole entry; a bad frame with records after it is
    /// [`LogStoreError::Corrupt`] (path, byte position).
    pub async fn open(disk: D, dir: &Path) -> Result<Self, LogStoreError> {
        disk.create_dir_all(dir)
            .await
            .map_err(StorageError::io_at("create dir", dir, None))?;
        let log_path = dir.join(LOG_FILE_NAME);
        let vote_path = dir.join(VOTE_FILE_NAME);
        let committed_path = dir.join(COMMITTED_FILE_NAME);
        let vote = read_framed_json(&disk, &vote_path, "vote").await?;
        let committed = read_framed_json(&disk, &committed_path, "committed log id").await?;
        let file = disk
            .open(&log_path)
            .await
            .map_err(StorageError::io_at("open", &log_path, None))?;
        let bytes = read_whole(&file, &log_path).await?;
        let (records, end) = scan_records(&bytes)
            .map_err(|(position, reason)| corrupt(&log_path, position, reason))?;
        if let Some(next) = record_after(&bytes, end as usize) {
            let reason = format!("bad frame followed by a whole record at byte {next}");
            return Err(corrupt(&log_path, end, reason));
        }
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
            committed_path,
            committed,
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
        let written = write_framed_json(&self.disk, &self.vote_path, "vote", vote).await;
        self.poison_on_error(written)?;
        self.memory.borrow_mut().vote = Some(*vote);
        Ok(())
    }

    /// Saves the committed log id durably (see the module doc).
    pub async fn save_committed_durably(
        &mut self,
        committed: Option<LogId>,
    ) -> Result<(), LogStoreError> {
        self.check_usable()?;
        if committed == self.committed {
            return Ok(());
        }
        let path = &self.committed_path;
        let written = write_framed_json(&self.disk, path, "committed log id", &committed).await;
        self.poison_on_error(written)?;
        self.committed = committed;
        Ok(())
    }

    /// The committed log id last saved.
    pub fn committed(&self) -> Option<LogId> {
        self.committed
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

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        Ok(self.save_committed_durably(committed).await?)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.committed)
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        Ok(self.truncate_after_durably(last_log_id.as_ref()).await?)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        Ok(self.purge_durably(&log_id).await?)
    }
}
