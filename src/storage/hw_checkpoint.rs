//! The high-watermark checkpoint: Kafka's `replication-offset-checkpoint`,
//! one file per shard, `<data_dir>/replication-offset-checkpoint.<shard>`.
//!
//! Why it exists: the high watermark of a replicated partition is known
//! only in memory (the minimum over the ISR of the followers' ends). A
//! broker that restarts without it starts every partition at its log
//! start, and a restarted leader then shows consumers nothing until its
//! followers fetch again. With it, a replica starts from
//! `min(checkpoint, log end)` (`Partition::restore_hw`).
//!
//! Decisions:
//! - **One file per shard**, not per partition: each shard owns its
//!   partitions (invariant 3) and writes its own file, so there is no
//!   shared writer, and a periodic write costs one fdatasync per shard
//!   however many partitions it holds (Kafka writes one per log dir).
//! - **Kafka's text layout plus the topic id**: a version line, a count
//!   line, then `topic partition high_watermark topic_id` per line (topic
//!   names hold no spaces). The topic id makes an entry of a deleted and
//!   recreated topic of the same name count for nothing.
//! - **A stale file is only an under-estimate**: a stale file (an
//!   older write, a crash before the next one) holds a high watermark at or
//!   below the true one, which only delays what consumers see. A follower
//!   that truncates below its checkpointed high watermark writes the file
//!   at once (`replication::hw_checkpoint`), so a crash cannot bring back a
//!   high watermark above a cut log that was then refilled.
//! - Written like every small file (`small_file.rs`): temp file, fdatasync,
//!   rename, fsync of the directory: a reader sees the old or the new file.
//!   An unreadable file is ignored with a warning (the checkpoint is
//!   advisory: without it the log start is used, as before).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::disk::Disk;
use super::error::StorageError;
use super::small_file::{read_small_file, write_small_file};

/// File name prefix; the shard index follows after a dot.
pub const HW_CHECKPOINT_FILE_PREFIX: &str = "replication-offset-checkpoint";
/// Format version written (Kafka's file is version 0 without topic ids).
const HW_CHECKPOINT_VERSION: u32 = 1;
/// Most entries one file is read with; more means a corrupt file (a shard
/// holding a million partitions is far beyond any supported size).
const HW_CHECKPOINT_ENTRIES_MAX: usize = 1_000_000;

/// A partition's checkpointed high watermark, keyed by (topic, partition).
pub type HwCheckpoint = HashMap<(String, i32), (Uuid, i64)>;

/// The checkpoint file of `shard` in `data_dir`.
pub(super) fn hw_checkpoint_path(data_dir: &Path, shard: usize) -> PathBuf {
    data_dir.join(format!("{HW_CHECKPOINT_FILE_PREFIX}.{shard}"))
}

/// The file's bytes for `entries` (sorted, so equal contents give equal
/// files).
pub(super) fn encode_hw_checkpoint(entries: &[(String, i32, Uuid, i64)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, i32, Uuid, i64)> = entries.iter().collect();
    sorted.sort_unstable_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let mut text = format!("{HW_CHECKPOINT_VERSION}\n{}\n", sorted.len());
    for (topic, partition, id, hw) in sorted {
        text.push_str(&format!("{topic} {partition} {hw} {id}\n"));
    }
    text.into_bytes()
}

/// Parses the file; `None` if it is not a well-formed file of this version.
pub(super) fn decode_hw_checkpoint(bytes: &[u8]) -> Option<HwCheckpoint> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.lines();
    if lines.next()?.trim().parse::<u32>().ok()? != HW_CHECKPOINT_VERSION {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    if count > HW_CHECKPOINT_ENTRIES_MAX {
        return None;
    }
    let mut entries = HashMap::with_capacity(count);
    for _ in 0..count {
        let mut fields = lines.next()?.split(' ');
        let topic = fields.next()?.to_string();
        let partition: i32 = fields.next()?.parse().ok()?;
        let hw: i64 = fields.next()?.parse().ok()?;
        let id = Uuid::parse_str(fields.next()?).ok()?;
        if fields.next().is_some() || partition < 0 || hw < 0 {
            return None;
        }
        entries.insert((topic, partition), (id, hw));
    }
    lines.next().is_none().then_some(entries)
}

/// Reads the checkpoint of `shard`; empty when absent or unreadable (a
/// warning is logged).
pub async fn read_hw_checkpoint<D: Disk>(
    disk: &D,
    data_dir: &Path,
    shard: usize,
) -> Result<HwCheckpoint, StorageError> {
    let path = hw_checkpoint_path(data_dir, shard);
    let Some(bytes) = read_small_file(disk, &path).await? else {
        return Ok(HwCheckpoint::new());
    };
    match decode_hw_checkpoint(&bytes) {
        Some(entries) => Ok(entries),
        None => {
            tracing::warn!(path = %path.display(), "ignoring unreadable high-watermark checkpoint");
            Ok(HwCheckpoint::new())
        }
    }
}

/// Replaces the checkpoint of `shard` with `entries`, atomically and
/// durably.
pub async fn write_hw_checkpoint<D: Disk>(
    disk: &D,
    data_dir: &Path,
    shard: usize,
    entries: &[(String, i32, Uuid, i64)],
) -> Result<(), StorageError> {
    let path = hw_checkpoint_path(data_dir, shard);
    write_small_file(disk, &path, &encode_hw_checkpoint(entries)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hw_checkpoint_round_trips_sorted_and_rejects_malformed_files() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        let entries = vec![("t".to_string(), 1, a, 42), ("s".to_string(), 0, b, 7)];
        let bytes = encode_hw_checkpoint(&entries);
        let text = String::from_utf8(bytes.clone()).expect("text");
        assert_eq!(text, format!("1\n2\ns 0 7 {b}\nt 1 42 {a}\n"));
        let decoded = decode_hw_checkpoint(&bytes).expect("well formed");
        assert_eq!(decoded.get(&("t".to_string(), 1)), Some(&(a, 42)));
        assert_eq!(decoded.get(&("s".to_string(), 0)), Some(&(b, 7)));
        for bad in [
            "0\n0\n".to_string(),           // another version
            "1\n2\ns 0 7 x\n".to_string(),  // bad id, short
            format!("1\n1\ns 0 -1 {b}\n"),  // negative high watermark
            format!("1\n1\ns 0 7 {b} x\n"), // extra field
            format!("1\n0\ns 0 7 {b}\n"),   // trailing entry
        ] {
            assert!(decode_hw_checkpoint(bad.as_bytes()).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn hw_checkpoint_write_then_read_through_the_disk_seam() {
        futures::executor::block_on(async {
            let disk = crate::storage::MemDisk::new();
            let dir = Path::new("/data");
            disk.create_dir_all(dir).await.expect("mkdir");
            let id = Uuid::new_v4();
            assert!(read_hw_checkpoint(&disk, dir, 0)
                .await
                .expect("read")
                .is_empty());
            write_hw_checkpoint(&disk, dir, 0, &[("t".into(), 3, id, 9)])
                .await
                .expect("write");
            let read = read_hw_checkpoint(&disk, dir, 0).await.expect("read");
            assert_eq!(read.get(&("t".to_string(), 3)), Some(&(id, 9)));
            assert!(read_hw_checkpoint(&disk, dir, 1)
                .await
                .expect("read")
                .is_empty());
        });
    }
}
