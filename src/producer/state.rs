//! The per-partition producer state table and Kafka's sequence rules.

use std::collections::{HashMap, VecDeque};

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

/// Batches remembered per producer: Kafka's max.in.flight limit for
/// idempotent producers is 5, so a retry can only be one of the last 5.
pub const PRODUCER_BATCHES_KEPT: usize = 5;

/// One written batch of a producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSeq {
    /// First sequence number in the batch.
    pub first_seq: i32,
    /// Last sequence number in the batch.
    pub last_seq: i32,
    /// Offset of the first record.
    pub base_offset: i64,
}

/// What is known about one producer id in one partition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerEntry {
    /// Current epoch.
    pub epoch: i16,
    /// The last batches, oldest first.
    pub batches: VecDeque<BatchSeq>,
    /// Offset of the first batch of this producer's open transaction in
    /// this partition (Kafka's `currentTxnFirstOffset`): the partition's
    /// last stable offset cannot pass it until a marker closes it.
    #[serde(default)]
    pub txn_first_offset: Option<i64>,
    /// Markers written for this producer since open: the KIP-890
    /// verification guard (a produce verified before a marker landed must
    /// not be appended after it).
    #[serde(skip)]
    pub markers: u64,
}

/// The verdict on an incoming idempotent batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProducerCheck {
    /// New and in sequence: append it.
    Append,
    /// Already written at this offset: answer with it, write nothing.
    Duplicate {
        /// The original batch's base offset.
        base_offset: i64,
    },
    /// Refused with this Kafka error code.
    Refuse(i16),
}

/// Producer id -> entry, for one partition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
}

/// The sequence after `seq` (sequences wrap from i32::MAX to 0).
fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// The last sequence of a batch of `records` starting at `first_seq`.
pub fn last_seq(first_seq: i32, records: i32) -> i32 {
    let last = first_seq as i64 + records.max(1) as i64 - 1;
    (last % (i32::MAX as i64 + 1)) as i32
}

impl ProducerStateTable {
    /// Judges a batch of producer `pid` at `epoch` with sequences
    /// `first_seq..=last_seq`, as Kafka does: an older epoch is fenced, a new
    /// epoch must start at sequence 0, a batch equal to one of the last five
    /// is a duplicate, anything else must follow the last sequence exactly.
    pub fn check(&self, pid: i64, epoch: i16, first_seq: i32, last_seq: i32) -> ProducerCheck {
        let Some(entry) = self.producers.get(&pid) else {
            return if first_seq == 0 {
                ProducerCheck::Append
            } else {
                ProducerCheck::Refuse(ResponseError::OutOfOrderSequenceNumber.code())
            };
        };
        if epoch < entry.epoch {
            return ProducerCheck::Refuse(ResponseError::InvalidProducerEpoch.code());
        }
        if epoch > entry.epoch {
            return if first_seq == 0 {
                ProducerCheck::Append
            } else {
                ProducerCheck::Refuse(ResponseError::OutOfOrderSequenceNumber.code())
            };
        }
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
        {
            return ProducerCheck::Duplicate {
                base_offset: dup.base_offset,
            };
        }
        match entry.batches.back() {
            Some(last) if first_seq == next_seq(last.last_seq) => ProducerCheck::Append,
            None if first_seq == 0 => ProducerCheck::Append,
            _ => ProducerCheck::Refuse(ResponseError::OutOfOrderSequenceNumber.code()),
        }
    }

    /// Records a batch that was appended (or found in the log at recovery).
    pub fn record(&mut self, pid: i64, epoch: i16, batch: BatchSeq) {
        let entry = self.producers.entry(pid).or_default();
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == PRODUCER_BATCHES_KEPT {
            entry.batches.pop_front();
        }
        entry.batches.push_back(batch);
    }

    /// Notes that `pid` wrote a transactional batch at `base_offset`: the
    /// first one opens its transaction in this partition.
    pub fn begin_txn(&mut self, pid: i64, base_offset: i64) {
        let entry = self.producers.entry(pid).or_default();
        entry.txn_first_offset.get_or_insert(base_offset);
    }

    /// Whether a transaction marker at `epoch` may be written for `pid`:
    /// markers come from the coordinator with the producer's current epoch
    /// or a bumped one (fencing), never an older one.
    pub fn marker_allowed(&self, pid: i64, epoch: i16) -> bool {
        self.producers.get(&pid).is_none_or(|e| epoch >= e.epoch)
    }

    /// Closes `pid`'s transaction with a marker written at `epoch`; returns
    /// the transaction's first offset here (`None`: it wrote nothing here).
    /// A bumped epoch resets the sequence state, as a new epoch does.
    pub fn end_txn(&mut self, pid: i64, epoch: i16) -> Option<i64> {
        let entry = self.producers.entry(pid).or_default();
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.markers += 1;
        entry.txn_first_offset.take()
    }

    /// The verification guard of `pid` (see [`ProducerEntry::markers`]).
    pub fn marker_count(&self, pid: i64) -> u64 {
        self.producers.get(&pid).map_or(0, |e| e.markers)
    }

    /// Whether `pid` has an open transaction in this partition.
    pub fn in_txn(&self, pid: i64) -> bool {
        self.producers
            .get(&pid)
            .is_some_and(|e| e.txn_first_offset.is_some())
    }

    /// Whether `pid` has an open transaction in this partition at `epoch`:
    /// a batch of it needs no KIP-890 verification (no marker closed it).
    pub fn in_txn_at(&self, pid: i64, epoch: i16) -> bool {
        self.producers
            .get(&pid)
            .is_some_and(|e| e.epoch == epoch && e.txn_first_offset.is_some())
    }

    /// The first offset of the oldest open transaction, if any.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.producers
            .values()
            .filter_map(|e| e.txn_first_offset)
            .min()
    }

    /// Number of producers known.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is known.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT_OF_ORDER: i16 = 45;
    const INVALID_EPOCH: i16 = 47;

    fn batch(first_seq: i32, last_seq: i32, base_offset: i64) -> BatchSeq {
        BatchSeq {
            first_seq,
            last_seq,
            base_offset,
        }
    }

    #[test]
    fn producer_state_new_producer_must_start_at_zero() {
        let t = ProducerStateTable::default();
        assert_eq!(t.check(7, 0, 0, 4), ProducerCheck::Append);
        assert_eq!(t.check(7, 0, 5, 9), ProducerCheck::Refuse(OUT_OF_ORDER));
    }

    #[test]
    fn producer_state_in_sequence_duplicate_and_gap() {
        let mut t = ProducerStateTable::default();
        t.record(7, 0, batch(0, 4, 100));
        t.record(7, 0, batch(5, 9, 105));
        assert_eq!(t.check(7, 0, 10, 12), ProducerCheck::Append);
        assert_eq!(
            t.check(7, 0, 0, 4),
            ProducerCheck::Duplicate { base_offset: 100 }
        );
        assert_eq!(
            t.check(7, 0, 5, 9),
            ProducerCheck::Duplicate { base_offset: 105 }
        );
        assert_eq!(t.check(7, 0, 11, 12), ProducerCheck::Refuse(OUT_OF_ORDER));
        assert_eq!(t.check(7, 0, 3, 4), ProducerCheck::Refuse(OUT_OF_ORDER));
    }

    #[test]
    fn producer_state_only_last_five_batches_dedup() {
        let mut t = ProducerStateTable::default();
        for i in 0..7 {
            t.record(1, 0, batch(i, i, 10 + i as i64));
        }
        assert_eq!(
            t.check(1, 0, 6, 6),
            ProducerCheck::Duplicate { base_offset: 16 }
        );
        assert_eq!(
            t.check(1, 0, 2, 2),
            ProducerCheck::Duplicate { base_offset: 12 }
        );
        assert_eq!(t.check(1, 0, 1, 1), ProducerCheck::Refuse(OUT_OF_ORDER));
    }

    #[test]
    fn producer_state_epochs_fence_and_reset() {
        let mut t = ProducerStateTable::default();
        t.record(1, 3, batch(0, 0, 0));
        assert_eq!(t.check(1, 2, 1, 1), ProducerCheck::Refuse(INVALID_EPOCH));
        assert_eq!(t.check(1, 4, 1, 1), ProducerCheck::Refuse(OUT_OF_ORDER));
        assert_eq!(t.check(1, 4, 0, 0), ProducerCheck::Append);
        t.record(1, 4, batch(0, 0, 1));
        assert_eq!(t.check(1, 4, 1, 1), ProducerCheck::Append);
    }

    #[test]
    fn producer_state_sequence_wraps() {
        let mut t = ProducerStateTable::default();
        assert_eq!(last_seq(i32::MAX - 1, 3), 0);
        t.record(1, 0, batch(i32::MAX - 1, i32::MAX, 0));
        assert_eq!(t.check(1, 0, 0, 3), ProducerCheck::Append);
    }

    #[test]
    fn producer_state_txn_first_offset_and_markers() {
        let mut t = ProducerStateTable::default();
        t.record(1, 0, batch(0, 0, 10));
        t.begin_txn(1, 10);
        t.record(1, 0, batch(1, 1, 11));
        t.begin_txn(1, 11);
        t.record(2, 0, batch(0, 0, 12));
        t.begin_txn(2, 12);
        assert_eq!(t.first_unstable_offset(), Some(10));
        assert!(t.in_txn(1));
        assert_eq!(t.marker_count(1), 0);
        assert!(!t.marker_allowed(1, -1));
        assert_eq!(t.end_txn(1, 0), Some(10));
        assert_eq!(t.marker_count(1), 1);
        assert_eq!(t.first_unstable_offset(), Some(12));
        // A marker at a bumped epoch fences the old one and resets sequences.
        assert_eq!(t.end_txn(2, 1), Some(12));
        assert_eq!(t.first_unstable_offset(), None);
        assert_eq!(t.check(2, 0, 1, 1), ProducerCheck::Refuse(INVALID_EPOCH));
        assert_eq!(t.check(2, 1, 0, 0), ProducerCheck::Append);
        // A marker for a producer that wrote nothing here closes nothing.
        assert_eq!(t.end_txn(3, 0), None);
    }
}
