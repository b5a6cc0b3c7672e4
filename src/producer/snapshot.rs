//! Producer state persistence beside a partition's log.
//!
//! At clean close the table is written to `producer_state.json` together
//! with the offset it is valid up to. At open the table is that snapshot
//! plus every idempotent batch after its offset (read back from the log), or
//! the whole log when there is no usable snapshot (a first start, or a
//! snapshot past the recovered end). Rebuilding reads the log's batch
//! headers only through the normal read path, once, at open.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tracing::warn;

use super::aborted::{AbortedEntry, AbortedIndex};
use super::state::{last_seq, BatchSeq, ProducerStateTable};
use crate::metadata::write_json_atomically;
use crate::protocol::batch::batches;
use crate::protocol::control::marker_kind;
use crate::storage::{Disk, PartitionLog, StorageError};

/// The snapshot's file name in the partition directory.
pub const PRODUCER_STATE_FILE_NAME: &str = "producer_state.json";
/// Bytes read per step while replaying the log at open.
pub const REPLAY_READ_BYTES: usize = 1024 * 1024;

#[derive(Serialize, Deserialize)]
struct Persisted {
    /// The table covers every batch below this offset.
    offset: i64,
    table: ProducerStateTable,
}

/// Writes the table, valid up to `offset`, off the shard thread.
pub async fn save(
    dir: &Path,
    offset: i64,
    table: ProducerStateTable,
) -> Result<(), crate::metadata::MetadataError> {
    let dir = dir.to_path_buf();
    glommio::executor()
        .spawn_blocking(move || {
            write_json_atomically(&dir, PRODUCER_STATE_FILE_NAME, &Persisted { offset, table })
        })
        .await
}

/// Removes the snapshot when it covers offsets at or past `end`, before a
/// replica's log is truncated to `end` (a divergent tail dropped): such a
/// snapshot describes batches the log is about to lose, and once the log
/// grows past its offset again with the new leader's batches, a rebuild
/// would start from it and never replay the new batches below its offset,
/// so a retry of one of them would not be seen as a duplicate. Kafka drops
/// such snapshots on truncation too. Returns whether one was removed.
pub async fn discard_from(dir: &Path, end: i64) -> std::io::Result<bool> {
    match load(dir).await {
        Some(p) if p.offset > end => {
            let path = dir.join(PRODUCER_STATE_FILE_NAME);
            glommio::executor()
                .spawn_blocking(move || std::fs::remove_file(path))
                .await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

async fn load(dir: &Path) -> Option<Persisted> {
    let path: PathBuf = dir.join(PRODUCER_STATE_FILE_NAME);
    let bytes = glommio::executor()
        .spawn_blocking(move || std::fs::read(path))
        .await
        .ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(p) => Some(p),
        Err(e) => {
            warn!(dir = %dir.display(), "producer state snapshot unreadable, rebuilding from the log: {e}");
            None
        }
    }
}

/// The producer table for `log`: the snapshot, then the batches after it.
/// Transactions are replayed too: a transactional batch opens its
/// producer's transaction here, a marker closes it, and an abort marker
/// missing from `aborted` (a crash before its index entry was written) is
/// added back. Also returns the offset of the snapshot used, if any (at
/// the log end: the file on disk is current).
pub async fn rebuild<D: Disk>(
    log: &PartitionLog<D>,
    aborted: &mut AbortedIndex,
) -> Result<(ProducerStateTable, Option<i64>), StorageError> {
    let end = log.high_watermark();
    let segment_bases = log.segment_bases();
    let start = log.log_start_offset();
    let (mut table, mut offset, snapshot_at) = match load(log.dir()).await {
        Some(p) if p.offset >= start && p.offset <= end => (p.table, p.offset, Some(p.offset)),
        _ => (ProducerStateTable::default(), start, None),
    };
    while offset < end {
        let bytes = log.read(offset, REPLAY_READ_BYTES, true).await?;
        let mut advanced = false;
        for batch in batches(&bytes) {
            let Ok(b) = batch else { break };
            let h = b.header;
            if h.is_control() {
                if let Some(commit) = marker_kind(b.bytes) {
                    let first = table.end_txn(h.producer_id(), h.producer_epoch());
                    if let (false, Some(first_offset)) = (commit, first) {
                        let marker = h.base_offset();
                        let lso = table.first_unstable_offset().unwrap_or(marker + 1);
                        aborted.recover(
                            &segment_bases,
                            AbortedEntry {
                                producer_id: h.producer_id(),
                                first_offset,
                                last_offset: marker,
                                last_stable_offset: lso.min(marker + 1),
                            },
                        );
                    }
                }
            } else if h.producer_id() >= 0 {
                if h.is_transactional() {
                    table.begin_txn(h.producer_id(), h.base_offset());
                }
                let first_seq = h.base_sequence();
                // From the offset range, not the record count: a batch the
                // cleaner emptied keeps its range and sequence numbers
                // (Kafka's `lastSequence` is base + lastOffsetDelta too).
                let batch = BatchSeq {
                    first_seq,
                    last_seq: last_seq(first_seq, h.last_offset_delta().saturating_add(1)),
                    base_offset: h.base_offset(),
                };
                table.record(h.producer_id(), h.producer_epoch(), batch);
            }
            offset = h.last_offset() + 1;
            advanced = true;
        }
        if !advanced {
            break;
        }
    }
    Ok((table, snapshot_at))
}

#[cfg(test)]
mod discard_tests {
    use super::*;

    #[test]
    fn producer_snapshot_discarded_only_when_past_the_truncation_point() {
        let dir = tempfile::tempdir().unwrap();
        let ex = glommio::LocalExecutorBuilder::default().make().unwrap();
        ex.run(async {
            let path = dir.path().join(PRODUCER_STATE_FILE_NAME);
            save(dir.path(), 100, ProducerStateTable::default())
                .await
                .unwrap();
            // Truncating to 100 or past it keeps a snapshot valid below 100.
            assert!(!discard_from(dir.path(), 100).await.unwrap());
            assert!(!discard_from(dir.path(), 150).await.unwrap());
            assert!(path.exists());
            // Truncating below it removes it.
            assert!(discard_from(dir.path(), 99).await.unwrap());
            assert!(!path.exists());
            // No snapshot: nothing to do.
            assert!(!discard_from(dir.path(), 0).await.unwrap());
        });
    }
}
