//! A partition's side of transactions: markers, the last stable offset,
//! read_committed reads and the aborted-transaction index.
//!
//! - A transactional batch opens its producer's transaction here
//!   (`ProducerStateTable::begin_txn`, in the append path); the last stable
//!   offset (LSO) is the high watermark or the first offset of the oldest
//!   open transaction, whichever is lower.
//! - The coordinator ends it with a marker (`WriteTxnMarker`): appended and
//!   made durable like a produce with acks=all, then, for an abort, an entry
//!   in the aborted index, so read_committed consumers drop its batches.
//!   On a replicated partition the marker is also acks=all in the
//!   replication sense, as Kafka appends markers with requiredAcks=-1: too
//!   small an ISR refuses it (NOT_ENOUGH_REPLICAS) and the write is answered
//!   only once the high watermark passes it. Otherwise the coordinator could
//!   record the transaction complete while its marker exists on the leader
//!   alone; a failover then leaves the transaction open forever on the new
//!   leader, holding its LSO back. A marker that times out is retried by
//!   the coordinator (a second marker for a closed transaction is harmless:
//!   it opens nothing and consumers skip control batches).
//! - read_committed reads stop before the first batch at or past the LSO
//!   and carry the aborted transactions overlapping what they return.

use std::rc::Rc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use tracing::warn;

use super::Partition;
use crate::producer::aborted::{append_to_file, AbortedEntry, AbortedIndex};
use crate::protocol::control::encode_marker;
use crate::protocol::fetch_writer::RecordSlices;
use crate::shard::PartitionReply;
use crate::storage::{AbortedTxnRange, CleanerTxns};

/// How long a marker write waits for the ISR to have it: as long as a
/// coordinator's own acks=all write (`group::store`), so a coordinator's
/// EndTxn stays bounded while it retries (`txn::markers`).
const MARKER_REPLICATION_TIMEOUT: Duration = Duration::from_secs(5);

impl Partition {
    /// The last stable offset: no open transaction starts below it, and
    /// no transaction whose marker is still being written (the marker is
    /// not durable yet, or an abort's index entry is not in `aborted` yet).
    /// A transaction leaves the producer table when its marker is appended,
    /// but read_committed readers must not pass it before they can also
    /// see the marker and, for an abort, the aborted-index entry that tells
    /// them to drop its records.
    pub fn last_stable_offset(&self) -> i64 {
        let hw = self.high_watermark();
        let open = self.producers.borrow().first_unstable_offset();
        let closing = self.markers_in_flight.borrow().iter().copied().min();
        [open, closing].into_iter().flatten().fold(hw, i64::min)
    }

    /// The KIP-890 verification guard of `producer_id` (markers written for
    /// it so far), taken before asking the coordinator.
    pub fn txn_guard(&self, producer_id: i64) -> u64 {
        self.producers.borrow().marker_count(producer_id)
    }

    /// Appends a client's transactional produce (KIP-890 part 1). In
    /// arrival order (`txn_order`): when the producer's transaction is
    /// already open here at `epoch`, no marker closed it, so the batch is
    /// appended without asking; otherwise `verify` asks the coordinator and
    /// the batch is appended only if the answer is yes and no marker for
    /// the producer landed meanwhile (the guard).
    pub async fn produce_transactional<V>(
        self: &Rc<Self>,
        records: bytes::Bytes,
        (acks, timeout_ms): (i16, i32),
        (producer_id, epoch): (i64, i16),
        verify: V,
    ) -> PartitionReply
    where
        V: std::future::Future<Output = Result<(), i16>>,
    {
        let turn = self.txn_order.lock().await;
        if self.failed.get() {
            return PartitionReply::Error(ResponseError::KafkaStorageError.code());
        }
        let guard = self.txn_guard(producer_id);
        if !self.producers.borrow().in_txn_at(producer_id, epoch) {
            if let Err(code) = verify.await {
                return PartitionReply::Error(code);
            }
        }
        let origin = crate::shard::ProduceOrigin::Client;
        self.produce(
            records,
            (acks, timeout_ms),
            &origin,
            Some((producer_id, guard)),
            Some(turn),
        )
        .await
    }

    /// The Read reply for `records` read from `offset`: read_committed cuts
    /// them at the LSO and adds the aborted transactions they overlap.
    pub(super) fn read_reply(
        &self,
        offset: i64,
        mut records: RecordSlices,
        committed: bool,
    ) -> PartitionReply {
        let last_stable_offset = self.last_stable_offset();
        let aborted = committed.then(|| {
            // Reads never pass the high watermark: with no open transaction
            // there is nothing to cut (the common case costs no parsing).
            let end = if last_stable_offset < self.high_watermark() {
                cut_at_offset(&mut records, last_stable_offset)
            } else {
                last_stable_offset
            };
            let index = self.aborted.borrow();
            if index.is_empty() {
                Vec::new()
            } else {
                index.overlapping(offset, end)
            }
        });
        PartitionReply::Read {
            records,
            high_watermark: self.high_watermark(),
            log_start_offset: self.log.log_start_offset(),
            last_stable_offset,
            aborted,
            diverging_epoch: None,
        }
    }

    /// Writes a COMMIT or ABORT marker for `producer_id`, durably, and for an
    /// abort records the transaction in the aborted index.
    pub(super) async fn write_marker(
        self: &Rc<Self>,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> PartitionReply {
        let marker = match encode_marker(
            producer_id,
            epoch,
            commit,
            coordinator_epoch,
            crate::shard::now_ms(),
        ) {
            Ok(m) => m,
            Err(e) => {
                warn!(partition = %self.id, "encoding a transaction marker failed: {e}");
                return PartitionReply::Error(ResponseError::UnknownServerError.code());
            }
        };
        let (base_offset, first_offset, entry) = {
            let _order = self.append_lock.lock().await;
            if self.replicated.get() {
                if let Err(code) = self.check_min_insync() {
                    return PartitionReply::Error(code);
                }
            }
            if !self.producers.borrow().marker_allowed(producer_id, epoch) {
                return PartitionReply::Error(ResponseError::InvalidProducerEpoch.code());
            }
            let mut owned = marker.to_vec();
            self.stamp(&mut owned);
            let info = match self.log.append(&mut owned) {
                Ok(info) => info,
                Err(e) => return self.storage_failure("append marker", e),
            };
            self.tail.stage(bytes::Bytes::from(owned));
            let first = self.producers.borrow_mut().end_txn(producer_id, epoch);
            let lso_after = self
                .producers
                .borrow()
                .first_unstable_offset()
                .unwrap_or(info.base_offset + 1)
                .min(info.base_offset + 1);
            if let Some(first_offset) = first {
                self.markers_in_flight.borrow_mut().push(first_offset);
            }
            let entry = match (commit, first) {
                (false, Some(first_offset)) => Some((
                    self.log.segment_base_of(info.base_offset),
                    AbortedEntry {
                        producer_id,
                        first_offset,
                        last_offset: info.base_offset,
                        last_stable_offset: lso_after,
                    },
                )),
                _ => None,
            };
            (info.base_offset, first, entry)
        };
        let flushed = self.flush().await;
        // The marker is durable (or the partition goes offline): the
        // transaction stops holding the LSO back here, and an abort's entry
        // is pushed below before any await, so no reader sees the LSO past
        // the transaction without the entry.
        if let Some(first_offset) = first_offset {
            let mut in_flight = self.markers_in_flight.borrow_mut();
            if let Some(at) = in_flight.iter().position(|&f| f == first_offset) {
                in_flight.swap_remove(at);
            }
        }
        if let Err(e) = flushed {
            return self.storage_failure("flush", e);
        }
        if let Some((segment_base, entry)) = entry {
            let (path, bytes) = self.aborted.borrow_mut().push(segment_base, entry);
            let written = glommio::executor()
                .spawn_blocking(move || append_to_file(&path, &bytes))
                .await;
            if let Err(e) = written {
                // The marker is durable; the entry is rebuilt from it at open.
                warn!(partition = %self.id, "aborted-transaction index not written (rebuilt from the log at open): {e}");
            }
        }
        match self
            .wait_replicated(base_offset + 1, MARKER_REPLICATION_TIMEOUT)
            .await
        {
            0 => {}
            code => return PartitionReply::Error(code),
        }
        PartitionReply::Produced {
            base_offset,
            log_start_offset: self.log.log_start_offset(),
        }
    }

    /// Forgets the aborted-index entries of segments that retention or
    /// DeleteRecords removed (their files went with the segments).
    pub fn prune_aborted_index(&self) {
        let first = self.log.segment_base_of(i64::MIN);
        self.aborted.borrow_mut().prune_below(first);
    }
}

/// The cleaner's view of a partition's transactions (`storage::cleaner_txn`).
pub(crate) struct CleanerView<'p>(pub(crate) &'p Partition);

impl CleanerTxns for CleanerView<'_> {
    /// The LSO, which already stays below every transaction whose marker
    /// is in flight (the cleaner must know every aborted transaction it
    /// reads).
    fn stable_end(&self) -> i64 {
        self.0.last_stable_offset()
    }

    fn aborted(&self) -> Vec<AbortedTxnRange> {
        self.0.aborted.borrow().cleaner_ranges()
    }

    fn remove_markers(&self, segment_base: i64, marker_offsets: &[i64]) -> Option<Vec<u8>> {
        self.0
            .aborted
            .borrow_mut()
            .remove_markers(segment_base, marker_offsets)
    }
}

/// The producer table and aborted-transaction index of `log`, rebuilt from
/// the files (at open, and after a full disk).
/// Also the offset of the producer snapshot it started from, if any.
pub(super) async fn load_producer_state(
    id: &crate::metadata::PartitionId,
    log: &crate::storage::PartitionLog<crate::storage::DmaDisk>,
) -> Result<
    (
        crate::producer::ProducerStateTable,
        AbortedIndex,
        Option<i64>,
    ),
    crate::storage::StorageError,
> {
    let mut aborted = AbortedIndex::load(log.dir(), &log.segment_bases(), log.next_offset());
    let (producers, snapshot_at) = crate::producer::snapshot::rebuild(log, &mut aborted).await?;
    Ok((
        producers,
        persist_recovered_entries(id, aborted).await,
        snapshot_at,
    ))
}

/// Writes back, at open, the index entries found only by the log replay or
/// moved from the pre-segment file (off the shard thread). A failure is
/// logged: the entries stay in memory and are found again next open.
async fn persist_recovered_entries(
    id: &crate::metadata::PartitionId,
    mut aborted: AbortedIndex,
) -> AbortedIndex {
    if !aborted.needs_persist() {
        return aborted;
    }
    let (aborted, written) = glommio::executor()
        .spawn_blocking(move || {
            let written = aborted.persist_recovered();
            (aborted, written)
        })
        .await;
    match written {
        Ok(files) => {
            tracing::info!(partition = %id, files, "aborted-transaction index entries written back at open")
        }
        Err(e) => {
            warn!(partition = %id, "aborted-transaction index not written back (found again next open): {e}")
        }
    }
    aborted
}

/// Cuts `records` before the first batch at or past `end`; returns the
/// offset after the last batch kept (`end` when nothing was cut).
pub(super) fn cut_at_offset(records: &mut RecordSlices, end: i64) -> i64 {
    let mut keep = 0usize;
    let mut next: Option<i64> = None;
    let mut cut = None;
    for batch in records.batch_extents() {
        if batch.base_offset >= end {
            cut = Some(keep);
            break;
        }
        keep = batch.end;
        next = Some(batch.last_offset + 1);
    }
    match cut {
        Some(keep) => {
            records.truncate(keep);
            next.unwrap_or(end)
        }
        None => end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::test_batch::build_test_batch;

    #[test]
    fn cut_at_offset_keeps_whole_batches_below_the_end() {
        let mut records = RecordSlices::new();
        let a = build_test_batch(0, &[(None, Some(b"a")), (None, Some(b"b"))], 0);
        let b = build_test_batch(2, &[(None, Some(b"c"))], 0);
        let c = build_test_batch(3, &[(None, Some(b"d"))], 0);
        let mut ab = a.clone();
        ab.extend_from_slice(&b);
        records.push(bytes::Bytes::from(ab));
        records.push(bytes::Bytes::from(c.clone()));
        let total = records.len();
        let mut all = records.clone();
        assert_eq!(cut_at_offset(&mut all, 10), 10);
        assert_eq!(all.len(), total);
        let mut two = records.clone();
        assert_eq!(cut_at_offset(&mut two, 3), 3);
        assert_eq!(two.len(), total - c.len());
        let mut one = records.clone();
        assert_eq!(cut_at_offset(&mut one, 2), 2);
        assert_eq!(one.len(), a.len(), "cut inside a slice holding two batches");
        let mut none = records.clone();
        assert_eq!(cut_at_offset(&mut none, 0), 0);
        assert!(none.is_empty());
    }
}
