//! Sparse indexes of one segment, kept in memory and persisted beside it.
//!
//! - Offset index (`.index`): entries of 8 bytes, `relative offset: u32 BE`
//!   and `file position: u32 BE`. Kafka's layout; here the relative offset
//!   is the *base* offset of the batch starting at that position (Kafka
//!   stores the batch's last offset), which lets recovery check an entry by
//!   reading the header it points at. One entry each time more than
//!   `index_interval_bytes` were appended since the previous one.
//! - Time index (`.timeindex`): entries of 12 bytes, `timestamp: i64 BE`
//!   and `relative offset: u32 BE`: the largest batch max timestamp seen so
//!   far in the segment and the base offset of the batch holding it. Added
//!   with offset-index entries, and only when the timestamp grew, so
//!   timestamps are strictly increasing and binary-searchable.
//!
//! Both are sparse and only ever narrow a scan: a missing entry makes a
//! lookup scan more, never return a wrong batch. Decoding validates the
//! shape (sizes, ordering, positions inside the log); whether the entries
//! match the log is checked by recovery (see `recovery.rs`).

/// Bytes per offset-index entry.
pub(crate) const OFFSET_INDEX_ENTRY_BYTES: usize = 8;
/// Bytes per time-index entry.
pub(crate) const TIME_INDEX_ENTRY_BYTES: usize = 12;

/// In-memory offset index of one segment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OffsetIndex {
    /// (relative base offset, file position), both strictly increasing.
    entries: Vec<(u32, u32)>,
}

impl OffsetIndex {
    /// Adds an entry; offsets and positions must grow.
    pub fn push(&mut self, relative_offset: u32, position: u32) {
        if let Some(&(last_offset, last_position)) = self.entries.last() {
            assert!(relative_offset > last_offset && position > last_position);
        }
        self.entries.push((relative_offset, position));
    }

    /// The entry with the largest relative offset `<= relative_offset`.
    pub fn floor(&self, relative_offset: u32) -> Option<(u32, u32)> {
        let after = self.entries.partition_point(|e| e.0 <= relative_offset);
        after.checked_sub(1).map(|i| self.entries[i])
    }

    /// Last entry, if any.
    pub(crate) fn last(&self) -> Option<(u32, u32)> {
        self.entries.last().copied()
    }

    /// Drops entries at or past file position `position` (a cut there).
    pub(crate) fn truncate_at_position(&mut self, position: u64) {
        self.entries.retain(|e| u64::from(e.1) < position);
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// File bytes, big-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * OFFSET_INDEX_ENTRY_BYTES);
        for &(offset, position) in &self.entries {
            out.extend_from_slice(&offset.to_be_bytes());
            out.extend_from_slice(&position.to_be_bytes());
        }
        out
    }

    /// Parses file bytes; `None` if the shape is wrong (size, ordering, a
    /// position at or past `log_bytes`).
    pub fn decode(bytes: &[u8], log_bytes: u64) -> Option<Self> {
        if !bytes.len().is_multiple_of(OFFSET_INDEX_ENTRY_BYTES) {
            return None;
        }
        let mut index = Self::default();
        for entry in bytes.chunks_exact(OFFSET_INDEX_ENTRY_BYTES) {
            let offset = u32::from_be_bytes(entry[0..4].try_into().ok()?);
            let position = u32::from_be_bytes(entry[4..8].try_into().ok()?);
            let grows = index.last().is_none_or(|(o, p)| offset > o && position > p);
            if !grows || u64::from(position) >= log_bytes {
                return None;
            }
            index.entries.push((offset, position));
        }
        Some(index)
    }
}

/// In-memory time index of one segment.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TimeIndex {
    /// (max timestamp so far, relative offset of its batch); timestamps
    /// strictly increasing, offsets non-decreasing.
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    /// Adds an entry if `timestamp` is larger than the last one.
    pub fn push_if_larger(&mut self, timestamp: i64, relative_offset: u32) {
        if self.entries.last().is_none_or(|e| timestamp > e.0) {
            debug_assert!(self.entries.last().is_none_or(|e| relative_offset >= e.1));
            self.entries.push((timestamp, relative_offset));
        }
    }

    /// Relative offset of the last entry whose timestamp is `< timestamp`:
    /// every batch up to and including that offset has a smaller max
    /// timestamp, so a search for `timestamp` may start after it.
    pub fn last_before(&self, timestamp: i64) -> Option<u32> {
        let after = self.entries.partition_point(|e| e.0 < timestamp);
        after.checked_sub(1).map(|i| self.entries[i].1)
    }

    /// Last entry, if any.
    pub(crate) fn last(&self) -> Option<(i64, u32)> {
        self.entries.last().copied()
    }

    /// First entry, if any.
    pub(crate) fn first(&self) -> Option<(i64, u32)> {
        self.entries.first().copied()
    }

    /// Drops entries for batches at or after `relative_offset`.
    pub(crate) fn truncate_to_offset(&mut self, relative_offset: u32) {
        self.entries.retain(|e| e.1 < relative_offset);
    }

    /// File bytes, big-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * TIME_INDEX_ENTRY_BYTES);
        for &(timestamp, offset) in &self.entries {
            out.extend_from_slice(&timestamp.to_be_bytes());
            out.extend_from_slice(&offset.to_be_bytes());
        }
        out
    }

    /// Parses file bytes; `None` if the shape is wrong.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(TIME_INDEX_ENTRY_BYTES) {
            return None;
        }
        let mut index = Self::default();
        for entry in bytes.chunks_exact(TIME_INDEX_ENTRY_BYTES) {
            let timestamp = i64::from_be_bytes(entry[0..8].try_into().ok()?);
            let offset = u32::from_be_bytes(entry[8..12].try_into().ok()?);
            if !index
                .entries
                .last()
                .is_none_or(|e| timestamp > e.0 && offset >= e.1)
            {
                return None;
            }
            index.entries.push((timestamp, offset));
        }
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_floor_and_roundtrip() {
        let mut index = OffsetIndex::default();
        index.push(10, 4100);
        index.push(20, 8300);
        assert_eq!(index.floor(5), None);
        assert_eq!(index.floor(10), Some((10, 4100)));
        assert_eq!(index.floor(19), Some((10, 4100)));
        assert_eq!(index.floor(99), Some((20, 8300)));
        let bytes = index.encode();
        assert_eq!(OffsetIndex::decode(&bytes, 9000), Some(index.clone()));
        assert_eq!(
            OffsetIndex::decode(&bytes, 8300),
            None,
            "position past log end"
        );
        assert_eq!(OffsetIndex::decode(&bytes[..7], 9000), None);
    }

    #[test]
    fn time_index_last_before_and_roundtrip() {
        let mut index = TimeIndex::default();
        index.push_if_larger(100, 0);
        index.push_if_larger(100, 3);
        index.push_if_larger(200, 5);
        assert_eq!(index.last_before(100), None);
        assert_eq!(index.last_before(101), Some(0));
        assert_eq!(index.last_before(1000), Some(5));
        assert_eq!(index.last(), Some((200, 5)));
        assert_eq!(TimeIndex::decode(&index.encode()), Some(index.clone()));
        let mut unordered = index.encode();
        unordered.extend_from_slice(&50i64.to_be_bytes());
        unordered.extend_from_slice(&9u32.to_be_bytes());
        assert_eq!(TimeIndex::decode(&unordered), None);
    }

    mod properties {
        use super::super::*;
        use crate::storage::{align_down, align_up, is_aligned, LogConfig, BLOCK_BYTES};
        use proptest::prelude::*;

        /// Strictly increasing (relative offset, position) pairs.
        fn offset_entries() -> impl Strategy<Value = Vec<(u32, u32)>> {
            proptest::collection::vec((1u32..1000, 1u32..100_000), 0..64).prop_map(|steps| {
                let (mut offset, mut position) = (0u32, 0u32);
                steps
                    .into_iter()
                    .map(|(d_offset, d_position)| {
                        offset += d_offset;
                        position += d_position;
                        (offset, position)
                    })
                    .collect()
            })
        }

        proptest! {
            #[test]
            fn offset_index_round_trip_and_floor(entries in offset_entries(), probe in 0u32..200_000) {
                let mut index = OffsetIndex::default();
                for &(offset, position) in &entries {
                    index.push(offset, position);
                }
                let end = entries.last().map_or(1, |e| u64::from(e.1) + 1);
                prop_assert_eq!(OffsetIndex::decode(&index.encode(), end), Some(index.clone()));
                let linear = entries.iter().rev().find(|e| e.0 <= probe).copied();
                prop_assert_eq!(index.floor(probe), linear);
                if let Some(&(_, last_position)) = entries.last() {
                    // An entry at or past the log end is refused.
                    prop_assert_eq!(OffsetIndex::decode(&index.encode(), u64::from(last_position)), None);
                }
            }

            #[test]
            fn time_index_keeps_maxima_searchable(
                stamps in proptest::collection::vec((-1000i64..1000, 0u32..5), 0..64),
                probe in -1100i64..1100,
            ) {
                let mut index = TimeIndex::default();
                let mut offset = 0u32;
                let mut max = i64::MIN;
                let mut pushed = Vec::new();
                for (ts, d_offset) in stamps {
                    offset += d_offset;
                    max = max.max(ts);
                    index.push_if_larger(max, offset);
                    if pushed.last().is_none_or(|&(t, _)| max > t) {
                        pushed.push((max, offset));
                    }
                }
                prop_assert_eq!(TimeIndex::decode(&index.encode()), Some(index.clone()));
                let linear = pushed.iter().rev().find(|e| e.0 < probe).map(|e| e.1);
                prop_assert_eq!(index.last_before(probe), linear);
                let mut cut = index.clone();
                cut.truncate_to_offset(offset / 2);
                prop_assert!(cut.last().is_none_or(|(_, o)| o < offset / 2));
            }

            #[test]
            fn alignment_arithmetic(value in 0u64..(1 << 50)) {
                let block = BLOCK_BYTES as u64;
                let down = align_down(value);
                let up = align_up(value);
                prop_assert!(is_aligned(down) && is_aligned(up));
                prop_assert!(down <= value && value - down < block);
                prop_assert!(up >= value && up - value < block);
                prop_assert_eq!(is_aligned(value), down == value);
            }

            #[test]
            fn preallocation_covers_and_stays_bounded(
                segment_bytes in 61u64..(1 << 30),
                step in 0u64..(1 << 28),
                allocated_blocks in 0u64..(1 << 18),
                needed_end in 0u64..(1 << 31),
            ) {
                let config = LogConfig { segment_bytes, index_interval_bytes: 4096, preallocate_bytes: step, ..LogConfig::default() };
                let allocated = allocated_blocks * BLOCK_BYTES as u64;
                match config.allocation_for(allocated, needed_end) {
                    None => prop_assert!(needed_end <= allocated),
                    Some(target) => {
                        prop_assert!(needed_end > allocated);
                        prop_assert!(target >= needed_end && is_aligned(target));
                        prop_assert!(target <= align_up(segment_bytes).max(align_up(needed_end)));
                    }
                }
            }
        }
    }
}
