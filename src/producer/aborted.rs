//! The aborted-transaction index, one file per segment (Kafka's layout).
//!
//! A read_committed consumer receives, with each fetch, the aborted
//! transactions overlapping the offsets it reads, and drops their batches
//! itself (Kafka's design: the broker never filters record data). Each
//! abort marker gives one entry: producer id, first offset of the
//! transaction in this partition, the marker's offset, and the last stable
//! offset when it was written, in Kafka's `.txnindex` entry layout (version
//! i16 = 0, then four i64; 34 bytes, big-endian).
//!
//! Decisions:
//! - **Per segment, like Kafka**: an entry goes to
//!   `<segment base>.txnindex` of the segment holding its marker. Retention,
//!   DeleteRecords and recovery truncation remove it with the segment
//!   (storage's removal lists name the extension), so the index never
//!   outlives the data it describes. The cleaner rewrites a segment's file
//!   only to drop the entries of markers it removes
//!   ([`AbortedIndex::remove_markers`]): an entry lives as long as its
//!   marker.
//! - **Appended after the marker is durable** (one write + fdatasync). An
//!   entry lost to a crash between the two is found again at open by the
//!   log replay (`producer::snapshot::rebuild`) and written back then
//!   ([`AbortedIndex::persist_recovered`]), so it survives later snapshots.
//! - **All entries in memory**: aborts are rare and entries small; a fetch
//!   looks at the segments from the one holding its start offset on.
//! - **Upgrade**: a partition written by an older broker has one
//!   `aborted.txnindex`; its entries are moved to their segments' files at
//!   open, then it is removed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use tracing::warn;

use crate::protocol::fetch_writer::AbortedTxn;
use crate::storage::{segment_file_path, TXN_INDEX_EXTENSION};

/// The per-partition file of brokers before the per-segment index.
pub const LEGACY_FILE_NAME: &str = "aborted.txnindex";
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

/// The entries of one partition, grouped by the segment holding each
/// marker, in marker order within a segment.
#[derive(Debug, Default)]
pub struct AbortedIndex {
    dir: PathBuf,
    by_segment: BTreeMap<i64, Vec<AbortedEntry>>,
    /// Segments whose file lacks entries held here (legacy upgrade, or
    /// entries recovered from the log): rewritten by `persist_recovered`.
    unsaved: BTreeSet<i64>,
    legacy_found: bool,
}

impl AbortedIndex {
    /// Every aborted transaction as the cleaner sees it (its data range
    /// and marker offset).
    pub fn cleaner_ranges(&self) -> Vec<crate::storage::AbortedTxnRange> {
        self.entries()
            .map(|e| crate::storage::AbortedTxnRange {
                producer_id: e.producer_id,
                first_offset: e.first_offset,
                marker_offset: e.last_offset,
            })
            .collect()
    }

    /// Reads the index files of the segments `segment_bases` (ascending) in
    /// `dir`. Entries whose marker is at or past `log_end` describe data a
    /// recovery truncation removed and are dropped; a torn last entry is
    /// ignored (rebuilt from the log).
    pub fn load(dir: &Path, segment_bases: &[i64], log_end: i64) -> AbortedIndex {
        let mut index = AbortedIndex {
            dir: dir.to_path_buf(),
            ..AbortedIndex::default()
        };
        for &base in segment_bases {
            let path = segment_file_path(dir, base, TXN_INDEX_EXTENSION);
            let entries = read_entries(&path);
            let kept: Vec<AbortedEntry> = entries
                .iter()
                .copied()
                .filter(|e| e.last_offset < log_end)
                .collect();
            if kept.len() != entries.len() {
                index.unsaved.insert(base);
            }
            if !kept.is_empty() || index.unsaved.contains(&base) {
                index.by_segment.insert(base, kept);
            }
        }
        let legacy = dir.join(LEGACY_FILE_NAME);
        if legacy.exists() {
            index.legacy_found = true;
            for entry in read_entries(&legacy) {
                if entry.last_offset < log_end {
                    if let Some(base) = segment_of(segment_bases, entry.last_offset) {
                        index.insert_unsaved(base, entry);
                    }
                }
            }
        }
        index
    }

    /// Adds an entry found in the log at open (its marker is at or after
    /// every segment base in `segment_bases` up to it), unless it is held.
    pub fn recover(&mut self, segment_bases: &[i64], entry: AbortedEntry) -> bool {
        let Some(base) = segment_of(segment_bases, entry.last_offset) else {
            return false;
        };
        self.insert_unsaved(base, entry)
    }

    fn insert_unsaved(&mut self, base: i64, entry: AbortedEntry) -> bool {
        let entries = self.by_segment.entry(base).or_default();
        let held = entries
            .iter()
            .any(|e| e.producer_id == entry.producer_id && e.last_offset == entry.last_offset);
        if held {
            return false;
        }
        entries.push(entry);
        entries.sort_by_key(|e| e.last_offset);
        self.unsaved.insert(base);
        true
    }

    /// Writes the whole file of every segment that gained or lost entries at
    /// open, then removes the legacy file (blocking: run it off the shard
    /// thread). Returns how many segment files were written.
    pub fn persist_recovered(&mut self) -> std::io::Result<usize> {
        let mut written = 0;
        for base in std::mem::take(&mut self.unsaved) {
            let bytes: Vec<u8> = self
                .by_segment
                .get(&base)
                .map(|entries| entries.iter().flat_map(|e| e.encode()).collect())
                .unwrap_or_default();
            let name = format!("{base:020}.{TXN_INDEX_EXTENSION}");
            crate::metadata::write_bytes_atomically(&self.dir, &name, &bytes)
                .map_err(std::io::Error::other)?;
            written += 1;
        }
        if std::mem::take(&mut self.legacy_found) {
            std::fs::remove_file(self.dir.join(LEGACY_FILE_NAME))?;
        }
        Ok(written)
    }

    /// Whether `persist_recovered` has anything to do.
    pub fn needs_persist(&self) -> bool {
        !self.unsaved.is_empty() || self.legacy_found
    }

    /// Adds an entry for a marker just made durable in segment
    /// `segment_base`, and returns the file and bytes to append (see
    /// [`append_to_file`]).
    pub fn push(&mut self, segment_base: i64, entry: AbortedEntry) -> (PathBuf, [u8; ENTRY_LEN]) {
        self.by_segment.entry(segment_base).or_default().push(entry);
        let path = segment_file_path(&self.dir, segment_base, TXN_INDEX_EXTENSION);
        (path, entry.encode())
    }

    /// Forgets the entries of segments below `first_segment_base` (retention
    /// removed them, files included).
    pub fn prune_below(&mut self, first_segment_base: i64) {
        self.by_segment = self.by_segment.split_off(&first_segment_base);
    }

    /// Aborted transactions a fetch of `[from, to)` must report: those whose
    /// marker is at or after `from` and whose first offset is before `to`.
    /// Only segments from the one holding `from` can hold such markers.
    pub fn overlapping(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let start = self
            .by_segment
            .range(..=from)
            .next_back()
            .map_or(i64::MIN, |(base, _)| *base);
        self.by_segment
            .range(start..)
            .flat_map(|(_, entries)| entries)
            .filter(|e| e.last_offset >= from && e.first_offset < to)
            .map(|e| AbortedTxn {
                producer_id: e.producer_id,
                first_offset: e.first_offset,
            })
            .collect()
    }

    /// Every entry, by segment, in marker order within a segment.
    pub fn entries(&self) -> impl Iterator<Item = &AbortedEntry> {
        self.by_segment.values().flatten()
    }

    /// Forgets the entries of the markers at `marker_offsets` in segment
    /// `segment_base` (the cleaner is removing them) and returns the
    /// segment's whole new index file (empty: no entry left), or `None`
    /// if it held none of them. The caller writes the file.
    pub fn remove_markers(&mut self, segment_base: i64, marker_offsets: &[i64]) -> Option<Vec<u8>> {
        let entries = self.by_segment.get_mut(&segment_base)?;
        let before = entries.len();
        entries.retain(|e| !marker_offsets.contains(&e.last_offset));
        if entries.len() == before {
            return None;
        }
        let bytes = entries.iter().flat_map(|e| e.encode()).collect();
        if entries.is_empty() {
            self.by_segment.remove(&segment_base);
        }
        Some(bytes)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.by_segment.values().map(Vec::len).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_segment.values().all(Vec::is_empty)
    }
}

/// The base of the segment holding `offset`: the greatest base at or below
/// it (`None` below the first segment).
fn segment_of(segment_bases: &[i64], offset: i64) -> Option<i64> {
    let after = segment_bases.partition_point(|&base| base <= offset);
    after.checked_sub(1).map(|i| segment_bases[i])
}

/// The entries of one file; reading stops at a torn or unknown entry.
fn read_entries(path: &Path) -> Vec<AbortedEntry> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    bytes
        .chunks(ENTRY_LEN)
        .map_while(|chunk| {
            let entry = AbortedEntry::decode(chunk);
            if entry.is_none() {
                warn!(path = %path.display(), "unreadable aborted-transaction entry; the rest is rebuilt from the log");
            }
            entry
        })
        .collect()
}

/// Appends `bytes` to the index file and makes them durable (blocking: run
/// it off the shard thread).
/// A new file's directory entry is made durable too: the entry must
/// survive even once the producer snapshot has moved past its marker.
pub fn append_to_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let created = !path.exists();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    match path.parent() {
        Some(dir) if created => std::fs::File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "aborted_tests.rs"]
mod tests;
