//! The per-partition checkpoint file, `partition.checkpoint` (JSON).
//!
//! It holds what the segment files cannot tell: the log start offset (moved
//! by DeleteRecords and retention later), the log end offset at the last
//! clean close, which recovery compares with what it finds so that a loss of
//! data is logged loudly, and the cleaner's progress on compact topics (its
//! dirty mark and the next tombstone or marker delete horizon; Kafka keeps
//! the same in `cleaner-offset-checkpoint`), so a restart does not make the
//! cleaner read and rewrite the whole log again. Where recovery *starts
//! scanning* is not stored here: each segment's persisted offset index marks
//! the data that was already durable and verified when it was written (see
//! `recovery.rs`). Written atomically (tmp + rename) on close, when the log
//! start moves, and after a compaction pass.
//!
//! The cleaner fields were added without a version change: a file without
//! them reads as "nothing cleaned yet", which only costs one full pass.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::disk::Disk;
use super::error::StorageError;
use super::small_file::{read_small_file, write_small_file};

/// File name of the checkpoint inside the partition directory.
pub const CHECKPOINT_FILE_NAME: &str = "partition.checkpoint";
/// Format version written; other versions are ignored (treated as absent).
const CHECKPOINT_VERSION: u32 = 1;

/// Contents of the checkpoint file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// Format version.
    pub(crate) version: u32,
    /// First offset of the log still readable.
    pub(crate) log_start_offset: i64,
    /// Log end offset when the checkpoint was written (durable data only,
    /// except at a clean close, when everything is).
    pub(crate) next_offset: i64,
    /// Offsets below this were compacted by the last cleaner pass (0: never
    /// cleaned). Only ever an under-estimate: it is written after the pass
    /// has swapped in every segment it cleaned.
    #[serde(default)]
    pub(crate) clean_offset: i64,
    /// Earliest delete horizon (ms) of a tombstone or transaction marker the
    /// last pass kept: a pass is due then even with no new dirty data.
    #[serde(default)]
    pub(crate) cleaner_due_ms: Option<i64>,
}

impl Checkpoint {
    /// A checkpoint of the current format; `cleaner` is the cleaner's
    /// `(clean_offset, due_ms)`.
    pub(crate) fn new(
        log_start_offset: i64,
        next_offset: i64,
        cleaner: (i64, Option<i64>),
    ) -> Self {
        Self {
            version: CHECKPOINT_VERSION,
            log_start_offset,
            next_offset,
            clean_offset: cleaner.0,
            cleaner_due_ms: cleaner.1,
        }
    }
}

/// Reads the checkpoint of partition directory `dir`; `None` if absent or
/// unreadable (a warning is logged: the checkpoint is advisory).
pub(crate) async fn read_checkpoint<D: Disk>(
    disk: &D,
    dir: &Path,
) -> Result<Option<Checkpoint>, StorageError> {
    let path = dir.join(CHECKPOINT_FILE_NAME);
    let Some(bytes) = read_small_file(disk, &path).await? else {
        return Ok(None);
    };
    match serde_json::from_slice::<Checkpoint>(&bytes) {
        Ok(c) if c.version == CHECKPOINT_VERSION => Ok(Some(c)),
        Ok(c) => {
            tracing::warn!(path = %path.display(), version = c.version, "ignoring checkpoint of unknown version");
            Ok(None)
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), "ignoring unreadable checkpoint: {e}");
            Ok(None)
        }
    }
}

/// Writes the checkpoint of partition directory `dir`, atomically.
pub(crate) async fn write_checkpoint<D: Disk>(
    disk: &D,
    dir: &Path,
    checkpoint: Checkpoint,
) -> Result<(), StorageError> {
    let bytes = serde_json::to_vec(&checkpoint).expect("checkpoint serializes");
    write_small_file(disk, &dir.join(CHECKPOINT_FILE_NAME), &bytes).await
}
