//! The aborted-transaction index of a partition.
//!
//! A read_committed consumer receives, with each fetch, the aborted
//! transactions overlapping the offsets it reads, and drops their batches
//! itself (Kafka's design: the broker never filters record data). The index
//! holds one entry per abort marker: producer id, first offset of the
//! transaction in this partition, the marker's offset, and the last stable
//! offset when it was written. Entries use Kafka's `.txnindex` layout
//! (version i16 = 0, then four i64; 34 bytes, big-endian).
//!
//! Decision: one file per partition (`aborted.txnindex`) rather than one per
//! segment. Aborts are rare and entries small; a per-partition file is
//! appended with one write + fdatasync after the marker itself is durable.
//! An entry lost to a crash between the two is rebuilt at open from the
//! marker in the log (see `producer::snapshot::rebuild`), and entries below
//! the log start offset are skipped when read (retention does not rewrite
//! the file; it is rewritten at clean close without them).

use std::io::Write;
use std::path::{Path, PathBuf};

use tracing::warn;

use crate::protocol::fetch_writer::AbortedTxn;

/// The index's file name in the partition directory.
pub const ABORTED_INDEX_FILE_NAME: &str = "aborted.txnindex";
/// Bytes per entry (Kafka's `AbortedTxn.TOTAL_SIZE`).
pub const ENTRY_LEN: usize = 34;

/// One aborted transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedEntry {
    /// The producer.
    pub producer_id: i64,
    /// First offset of its transaction in this partition.
    pub first_offset: i64,
    /// Offset of the abort marker.
    pub last_offset: i64,
    /// Last stable offset once the marker was written.
    pub last_stable_offset: i64,
}

impl AbortedEntry {
    fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0u8; ENTRY_LEN];
        out[0..2].copy_from_slice(&0i16.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    fn decode(b: &[u8]) -> Option<AbortedEntry> {
        let i64_at = |at: usize| Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?));
        if i16::from_be_bytes(b.get(0..2)?.try_into().ok()?) != 0 {
            return None;
        }
        Some(AbortedEntry {
            producer_id: i64_at(2)?,
            first_offset: i64_at(10)?,
            last_offset: i64_at(18)?,
            last_stable_offset: i64_at(26)?,
        })
    }
}

/// The entries of one partition, in marker order, and where they live.
#[derive(Debug, Default)]
pub struct AbortedIndex {
    path: PathBuf,
    entries: Vec<AbortedEntry>,
}

impl AbortedIndex {
    /// Reads the index in `dir` (an absent file is an empty index; a torn
    /// last entry is ignored and rebuilt from the log).
    pub fn load(dir: &Path) -> AbortedIndex {
        let path = dir.join(ABORTED_INDEX_FILE_NAME);
        let entries = match std::fs::read(&path) {
            Ok(bytes) => bytes
                .chunks_exact(ENTRY_LEN)
                .map_while(|chunk| {
                    let entry = AbortedEntry::decode(chunk);
                    if entry.is_none() {
                        warn!(path = %path.display(), "unreadable aborted-transaction entry; the rest is rebuilt from the log");
                    }
                    entry
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        AbortedIndex { path, entries }
    }

    /// Adds an entry found in the log at open, unless the file has it.
    pub fn recover(&mut self, entry: AbortedEntry) -> bool {
        if self
            .entries
            .iter()
            .any(|e| e.producer_id == entry.producer_id && e.last_offset == entry.last_offset)
        {
            return false;
        }
        self.entries.push(entry);
        true
    }

    /// Adds an entry for a marker just made durable, and returns the bytes
    /// to append to the file (see [`append_to_file`]).
    pub fn push(&mut self, entry: AbortedEntry) -> [u8; ENTRY_LEN] {
        self.entries.push(entry);
        entry.encode()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Aborted transactions a fetch of `[from, to)` must report: those whose
    /// marker is at or after `from` and whose first offset is before `to`.
    pub fn overlapping(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.entries
            .iter()
            .filter(|e| e.last_offset >= from && e.first_offset < to)
            .map(|e| AbortedTxn {
                producer_id: e.producer_id,
                first_offset: e.first_offset,
            })
            .collect()
    }

    /// The whole file's bytes without entries wholly below `log_start`.
    pub fn encoded_from(&self, log_start: i64) -> Vec<u8> {
        self.entries
            .iter()
            .filter(|e| e.last_offset >= log_start)
            .flat_map(|e| e.encode())
            .collect()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Appends `bytes` to the index file and makes them durable (blocking: run
/// it off the shard thread).
pub fn append_to_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: i64, first: i64, last: i64) -> AbortedEntry {
        AbortedEntry {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: last + 1,
        }
    }

    #[test]
    fn aborted_index_persists_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = AbortedIndex::load(dir.path());
        assert!(index.is_empty());
        let bytes = index.push(entry(7, 10, 20));
        append_to_file(index.path(), &bytes).unwrap();
        let bytes = index.push(entry(8, 30, 31));
        append_to_file(index.path(), &bytes).unwrap();
        // A torn write leaves a partial entry: ignored.
        append_to_file(index.path(), &[0, 0, 1]).unwrap();
        let mut reloaded = AbortedIndex::load(dir.path());
        assert_eq!(reloaded.len(), 2);
        assert!(!reloaded.recover(entry(7, 10, 20)), "already there");
        assert!(reloaded.recover(entry(9, 40, 45)));
        assert_eq!(reloaded.len(), 3);
    }

    #[test]
    fn aborted_index_overlap_rules() {
        let mut index = AbortedIndex::default();
        index.push(entry(1, 10, 20));
        index.push(entry(2, 25, 30));
        let pids = |from, to| -> Vec<i64> {
            index
                .overlapping(from, to)
                .iter()
                .map(|t| t.producer_id)
                .collect()
        };
        assert_eq!(pids(0, 10), Vec::<i64>::new());
        assert_eq!(pids(0, 11), vec![1]);
        assert_eq!(pids(15, 26), vec![1, 2]);
        assert_eq!(pids(21, 100), vec![2]);
        assert_eq!(pids(31, 100), Vec::<i64>::new());
        assert_eq!(index.encoded_from(21).len(), ENTRY_LEN);
    }
}
