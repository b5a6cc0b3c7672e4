//! Transactions in the cleaner: Kafka's `CleanedTransactionMetadata` rules.
//!
//! - **Aborted data goes.** A transactional batch of producer P at an
//!   offset in `[first offset, abort marker)` of one of P's entries in the
//!   aborted index is dropped whatever its keys, and its records are never
//!   put in the offset map (Kafka skips them there too), so an aborted
//!   value never makes an older committed one go.
//! - **Committed transactional records** are compacted like any others.
//! - **Markers** (COMMIT/ABORT control batches) stay while any record of
//!   their transaction stays. Once none does, the marker gets a delete
//!   horizon (KIP-534, attribute bit 6, as tombstones do) and a pass after
//!   the horizon removes it. The decision needs to know whether the
//!   transaction's records survive *this* pass, which the pass knows
//!   because it reads the range from the log start in offset order and a
//!   transaction's data always comes before its marker: [`TxnTracker`]
//!   carries, per producer, "some record of its current transaction is
//!   kept" from batch to batch and segment to segment, as Kafka's cleaner
//!   does.
//! - **Emptied transactional batches lose the transactional bit.** A batch
//!   whose records all go keeps its header for the producer's sequence
//!   numbers (as idempotent batches always did here). If it stayed marked
//!   transactional, the replay of the log at open (no producer snapshot)
//!   would reopen a transaction whose marker the cleaner removed, and the
//!   last stable offset would never move again. Kafka avoids this by
//!   keeping the marker while such a header remains (so a producer's last
//!   transaction keeps its marker for ever); clearing the bit of a batch
//!   that holds no records lets every marker go and changes nothing a
//!   consumer can see (it has no records either way).
//! - **The aborted index follows the markers.** The entry of an ABORT
//!   marker is dropped, in memory and in its segment's `.txnindex`, just
//!   before the cleaned segment without the marker replaces the old one
//!   ([`CleanerTxns::remove_markers`]), and kept while the marker is. A
//!   consumer keeps an aborted producer id "active" until it reads that
//!   producer's ABORT marker in the same fetch response, so an entry that
//!   outlived its marker would hide later committed batches of the same
//!   producer; a marker without its entry is harmless.
//! - **Never at or past the last stable offset**: the pass's range ends at
//!   or before [`CleanerTxns::stable_end`], so every transaction with data
//!   in it is finished and, if aborted, in the index.

use std::collections::HashMap;

use crate::protocol::batch::{BatchHeader, ATTR_DELETE_HORIZON};
use crate::protocol::control::marker_kind;

/// One aborted transaction of the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxnRange {
    /// The producer.
    pub producer_id: i64,
    /// Its transaction's first offset in this partition.
    pub first_offset: i64,
    /// Offset of its ABORT marker.
    pub marker_offset: i64,
}

/// What the cleaner needs from the partition's transaction state. Calls are
/// synchronous and made on the owner shard (the state is shard-local).
pub trait CleanerTxns {
    /// The offset a pass must stay below: the last stable offset, lowered to
    /// the first offset of any aborted transaction whose index entry is not
    /// yet in [`CleanerTxns::aborted`].
    fn stable_end(&self) -> i64;
    /// The aborted transactions of the partition (the aborted index).
    fn aborted(&self) -> Vec<AbortedTxnRange>;
    /// The markers at `marker_offsets`, in segment `segment_base`, are about
    /// to be removed: forget their aborted-index entries and return the
    /// whole new `.txnindex` of that segment (empty: remove the file), or
    /// `None` when it held none of them.
    fn remove_markers(&self, segment_base: i64, marker_offsets: &[i64]) -> Option<Vec<u8>>;
}

/// A partition no transactional producer wrote to (storage tests, the
/// storage simulation): nothing aborted, no bound but the closed segments.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTxns;

impl CleanerTxns for NoTxns {
    fn stable_end(&self) -> i64 {
        i64::MAX
    }

    fn aborted(&self) -> Vec<AbortedTxnRange> {
        Vec::new()
    }

    fn remove_markers(&self, _segment_base: i64, _marker_offsets: &[i64]) -> Option<Vec<u8>> {
        None
    }
}

/// The aborted transactions by producer, for one pass.
#[derive(Debug, Default)]
pub(super) struct AbortedLookup {
    /// Producer id -> (first offset, marker offset), by first offset.
    by_producer: HashMap<i64, Vec<(i64, i64)>>,
}

impl AbortedLookup {
    pub(super) fn new(aborted: &[AbortedTxnRange]) -> Self {
        let mut by_producer: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for a in aborted {
            by_producer
                .entry(a.producer_id)
                .or_default()
                .push((a.first_offset, a.marker_offset));
        }
        for ranges in by_producer.values_mut() {
            ranges.sort_unstable();
        }
        Self { by_producer }
    }

    /// Whether `header` is a data batch of an aborted transaction. A
    /// producer has one transaction open at a time, so its ranges do not
    /// overlap.
    pub(super) fn holds(&self, header: &BatchHeader) -> bool {
        if !header.is_transactional() || header.is_control() {
            return false;
        }
        let Some(ranges) = self.by_producer.get(&header.producer_id()) else {
            return false;
        };
        let offset = header.base_offset();
        let after = ranges.partition_point(|&(first, _)| first <= offset);
        after > 0 && offset < ranges[after - 1].1
    }
}

/// What a pass does with a marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MarkerFate {
    /// Its transaction keeps records (or it is not a marker we know).
    Keep,
    /// Orphaned, horizon ahead (already set, or set now to this value).
    Horizon { set: Option<i64> },
    /// Orphaned and past its horizon.
    Remove,
}

/// Transaction state carried through a pass in offset order (see the
/// module doc). Cloned at a segment's start so the check for changes and
/// the rewrite make the same decisions.
#[derive(Debug, Clone, Default)]
pub(super) struct TxnTracker {
    /// Producer id -> whether its current transaction keeps a record.
    data_kept: HashMap<i64, bool>,
    /// Earliest delete horizon of a marker kept by the pass.
    pub(super) due_ms: Option<i64>,
}

impl TxnTracker {
    /// Notes a data batch and whether any of its records stays.
    pub(super) fn on_data(&mut self, header: &BatchHeader, kept: bool) {
        if header.is_transactional() && !header.is_control() {
            *self.data_kept.entry(header.producer_id()).or_default() |= kept;
        }
    }

    /// Decides a control batch's fate; it closes its producer's transaction.
    pub(super) fn on_marker(
        &mut self,
        batch: &[u8],
        header: &BatchHeader,
        now_ms: i64,
        delete_retention_ms: i64,
    ) -> MarkerFate {
        if marker_kind(batch).is_none() {
            return MarkerFate::Keep;
        }
        if self
            .data_kept
            .remove(&header.producer_id())
            .unwrap_or(false)
        {
            return MarkerFate::Keep;
        }
        let (horizon, set) = match horizon_of(header) {
            Some(h) if h <= now_ms => return MarkerFate::Remove,
            Some(h) => (h, None),
            None => {
                let h = now_ms.saturating_add(delete_retention_ms);
                (h, Some(h))
            }
        };
        self.due_ms = Some(self.due_ms.map_or(horizon, |d| d.min(horizon)));
        MarkerFate::Horizon { set }
    }
}

/// The delete horizon a cleaner set on a batch.
pub(super) fn horizon_of(header: &BatchHeader) -> Option<i64> {
    (header.attributes() & ATTR_DELETE_HORIZON != 0).then(|| header.base_timestamp())
}
