//! The partition's leader epoch: what the owner stamps into the batches it
//! appends, and the checks Kafka makes against a request's
//! CurrentLeaderEpoch (KIP-320) and its OffsetForLeaderEpoch answer.
//!
//! The current epoch comes from the metadata snapshot (`Snapshot::
//! leader_epoch`: 0 on a single node, the PartitionRecord's in a cluster)
//! and is set by the owner shard each time a snapshot is applied. Checks
//! are one integer compare each, so the consumer fetch path stays as fast
//! as it was.
//!
//! Stamping: the leader writes its epoch into every batch's
//! partitionLeaderEpoch (header bytes 12..16, outside the CRC, so no CRC
//! is recomputed) before the log sees it; the log's leader-epoch cache
//! learns the epoch from there (storage/epochs.rs). Replicated appends
//! keep the leader's stamp instead (`PartitionLog::append_replica`).

use kafka_protocol::ResponseError;

use super::Partition;
use crate::protocol::batch::{
    set_partition_leader_epoch, BatchHeader, BATCH_HEADER_LEN, PARTITION_LEADER_EPOCH_OFFSET,
};
use crate::protocol::fetch_writer::RecordSlices;
use crate::shard::PartitionReply;
use crate::storage::Divergence;

/// A request's CurrentLeaderEpoch that asks for no check (Kafka's
/// `RecordBatch.NO_PARTITION_LEADER_EPOCH`).
pub const NO_LEADER_EPOCH_CHECK: i32 = -1;

impl Partition {
    /// The partition's current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.get()
    }

    /// Takes the epoch of a newly applied metadata snapshot.
    pub(crate) fn set_leader_epoch(&self, epoch: i32) {
        self.leader_epoch.set(epoch);
    }

    /// Kafka's CurrentLeaderEpoch check (Fetch v9+, ListOffsets v4+,
    /// OffsetForLeaderEpoch v2+): a client behind this epoch is fenced
    /// (FENCED_LEADER_EPOCH), one ahead of it knows newer metadata than
    /// this broker (UNKNOWN_LEADER_EPOCH); -1 skips the check.
    pub fn check_current_leader_epoch(&self, requested: i32) -> Result<(), i16> {
        check_leader_epoch(requested, self.leader_epoch.get())
    }

    /// Writes the current leader epoch into every batch of `batches`
    /// (whole v2 batches, already framed by the caller).
    pub(super) fn stamp(&self, batches: &mut [u8]) {
        let epoch = self.leader_epoch.get();
        let mut position = 0;
        while let Some(rest) = batches.get(position..) {
            let Ok(header) = BatchHeader::parse(rest) else {
                return; // the log refuses what does not frame
            };
            let len = header.total_len();
            if len < BATCH_HEADER_LEN || len > rest.len() {
                return;
            }
            set_partition_leader_epoch(&mut batches[position..position + len], epoch);
            position += len;
        }
    }

    /// Fetch v12+ with a LastFetchedEpoch: Kafka's leader check before a
    /// read. `None` when the fetcher's log is consistent (read on), or
    /// when it sent no epoch (-1); else the answer: OFFSET_OUT_OF_RANGE
    /// when the epoch is unknown here or the offset is below the log
    /// start, or no records and the DivergingEpoch to truncate to.
    pub(crate) fn diverging_reply(
        &self,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        committed: bool,
    ) -> Option<PartitionReply> {
        if last_fetched_epoch < 0 {
            return None;
        }
        let out_of_range = PartitionReply::Error(ResponseError::OffsetOutOfRange.code());
        let (epoch, end_offset) = match self.log.diverging_epoch(last_fetched_epoch, fetch_offset) {
            Divergence::Consistent => return None,
            Divergence::Unknown => return Some(out_of_range),
            Divergence::Diverging { epoch, end_offset } => (epoch, end_offset),
        };
        if fetch_offset < self.log.log_start_offset() {
            return Some(out_of_range);
        }
        Some(PartitionReply::Read {
            records: RecordSlices::new(),
            high_watermark: self.high_watermark(),
            log_start_offset: self.log.log_start_offset(),
            last_stable_offset: self.last_stable_offset(),
            aborted: committed.then(Vec::new),
            diverging_epoch: Some((epoch, end_offset)),
        })
    }

    /// OffsetForLeaderEpoch for one partition: the CurrentLeaderEpoch check,
    /// then the log's `(epoch, end_offset)` for `leader_epoch`.
    pub(super) fn offset_for_leader_epoch(
        &self,
        current_leader_epoch: i32,
        leader_epoch: i32,
    ) -> PartitionReply {
        if let Err(code) = self.check_current_leader_epoch(current_leader_epoch) {
            return PartitionReply::Error(code);
        }
        let (leader_epoch, end_offset) = self.log.end_offset_for(leader_epoch);
        PartitionReply::EpochEndOffset {
            leader_epoch,
            end_offset,
        }
    }
}

/// The check of [`Partition::check_current_leader_epoch`], for `current`.
pub fn check_leader_epoch(requested: i32, current: i32) -> Result<(), i16> {
    match requested {
        NO_LEADER_EPOCH_CHECK => Ok(()),
        r if r < current => Err(ResponseError::FencedLeaderEpoch.code()),
        r if r > current => Err(ResponseError::UnknownLeaderEpoch.code()),
        _ => Ok(()),
    }
}

const _: () = assert!(PARTITION_LEADER_EPOCH_OFFSET + 4 <= BATCH_HEADER_LEN);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_leader_epoch_check_fenced_unknown_and_none() {
        assert_eq!(check_leader_epoch(-1, 3), Ok(()));
        assert_eq!(check_leader_epoch(3, 3), Ok(()));
        assert_eq!(
            check_leader_epoch(2, 3),
            Err(ResponseError::FencedLeaderEpoch.code())
        );
        assert_eq!(
            check_leader_epoch(4, 3),
            Err(ResponseError::UnknownLeaderEpoch.code())
        );
    }
}
