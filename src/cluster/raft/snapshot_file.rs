//! The state machine's last snapshot on disk: `raft-snapshot` in the raft
//! directory, beside `raft-log` and `raft-vote`.
//!
//! Format: two frames in `log_store`'s framing (`[length: u32 LE][CRC32C:
//! u32 LE][payload]`), the first holding openraft's `SnapshotMeta` as JSON
//! (last applied log id, membership), the second the snapshot bytes (the
//! `ClusterState` JSON) as they are. Written whole through
//! `storage::write_small_file` (temp file, fdatasync, rename, directory
//! fsync), so a reader finds the previous snapshot or the new one, never a
//! mix. A file that exists but does not read back whole is an error, never
//! "no snapshot": the log before it may already be purged.

use std::path::Path;

use openraft::type_config::alias::{SnapshotMetaOf, SnapshotOf};

use super::log_file::{corrupt, decode_frame, encode_frame};
use super::log_store::{LogStoreError, FRAME_HEADER_BYTES};
use super::types::ControllerRaft;
use crate::storage::{read_small_file, write_small_file, Disk, StorageError};

/// Name of the snapshot file in the raft directory.
pub const SNAPSHOT_FILE_NAME: &str = "raft-snapshot";

/// A snapshot as openraft hands it over: meta plus the state's bytes.
pub type Snapshot = SnapshotOf<ControllerRaft, Vec<u8>>;

/// Replaces the snapshot file at `path` with `snapshot`, durably.
pub async fn write_snapshot<D: Disk>(
    disk: &D,
    path: &Path,
    snapshot: &Snapshot,
) -> Result<(), LogStoreError> {
    let meta = serde_json::to_vec(&snapshot.meta).map_err(|e| LogStoreError::Encode {
        what: "snapshot meta".to_string(),
        reason: e.to_string(),
    })?;
    let mut bytes = encode_frame(|| "snapshot meta".to_string(), &meta)?;
    bytes.extend_from_slice(&encode_frame(
        || "snapshot".to_string(),
        &snapshot.snapshot,
    )?);
    write_small_file(disk, path, &bytes).await?;
    Ok(())
}

/// The snapshot saved at `path`; `None` if none was ever saved.
pub async fn read_snapshot<D: Disk>(
    disk: &D,
    path: &Path,
) -> Result<Option<Snapshot>, LogStoreError> {
    let exists = disk
        .exists(path)
        .await
        .map_err(StorageError::io_at("stat", path, None))?;
    if !exists {
        return Ok(None);
    }
    let Some(bytes) = read_small_file(disk, path).await? else {
        return Err(corrupt(path, 0, "snapshot file over the size limit".into()));
    };
    let meta_payload =
        decode_frame(&bytes, 0).ok_or_else(|| corrupt(path, 0, "snapshot meta frame".into()))?;
    let data_at = FRAME_HEADER_BYTES + meta_payload.len();
    let data = decode_frame(&bytes, data_at)
        .filter(|d| data_at + FRAME_HEADER_BYTES + d.len() == bytes.len())
        .ok_or_else(|| corrupt(path, data_at as u64, "snapshot data frame".into()))?;
    let meta: SnapshotMetaOf<ControllerRaft> = serde_json::from_slice(meta_payload)
        .map_err(|e| corrupt(path, 0, format!("snapshot meta: {e}")))?;
    Ok(Some(Snapshot {
        meta,
        snapshot: data.to_vec(),
    }))
}
