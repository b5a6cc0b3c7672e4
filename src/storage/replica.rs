//! `PartitionLog::append_replica`: a follower's append of batches exactly
//! as its leader wrote them.
//!
//! Unlike `append`, nothing in the batches is rewritten: base offsets,
//! partitionLeaderEpoch and timestamps are the leader's, so the follower's
//! log is byte for byte the leader's and a leader epoch in a batch means
//! the same on every replica. What is checked instead, before anything is
//! queued (all or nothing): whole v2 batches, each CRC (the bytes crossed
//! the network; the leader's produce-side check does not cover that), and
//! offsets that continue the log: the first batch at `next_offset()`, each
//! next one right after the previous one. Durability is `append`'s: memory
//! only until a `flush`, which group-commits with everything else.

use crate::protocol::batch::check_crc;

use super::disk::Disk;
use super::error::StorageError;
use super::log::{frame, AppendInfo, Framed, PartitionLog};
use super::segment::BatchInfo;

impl<D: Disk> PartitionLog<D> {
    /// Appends whole RecordBatch v2 `batches` keeping their offsets, epochs
    /// and timestamps (see the module doc). Refused without writing
    /// anything if a batch is malformed, fails its CRC, or does not
    /// continue the log ([`StorageError::NonContiguousReplica`]). Not
    /// durable, and not readable, until a [`flush`](Self::flush) covering
    /// it returns. `batches` is not modified (`&mut` matches `append`).
    pub fn append_replica(&self, batches: &mut [u8]) -> Result<AppendInfo, StorageError> {
        self.check_writable()?;
        let framed = frame(batches)?;
        let first = self.next_offset.get();
        let infos = self.replica_infos(batches, &framed, first)?;
        let mut segments = self.segments.borrow_mut();
        for (f, info) in framed.iter().zip(&infos) {
            let bytes = &batches[f.position..f.position + f.total_len];
            self.place(&mut segments, bytes, info);
            self.next_offset.set(info.last_offset + 1);
        }
        let appended: usize = framed.iter().map(|f| f.total_len).sum();
        self.pending_bytes.set(self.pending_bytes.get() + appended);
        Ok(AppendInfo {
            base_offset: first,
            last_offset: self.next_offset.get() - 1,
        })
    }

    /// Checks every batch (CRC, contiguity from `first`) and returns what
    /// the log records of each; nothing is changed.
    fn replica_infos(
        &self,
        batches: &[u8],
        framed: &[Framed],
        first: i64,
    ) -> Result<Vec<BatchInfo>, StorageError> {
        let mut expected = first;
        let mut infos = Vec::with_capacity(framed.len());
        for f in framed {
            if f.base_offset != expected {
                return Err(StorageError::NonContiguousReplica {
                    dir: self.dir.clone(),
                    expected,
                    found: f.base_offset,
                });
            }
            check_crc(&batches[f.position..f.position + f.total_len])?;
            let last_offset = f
                .base_offset
                .checked_add(i64::from(f.last_offset_delta))
                .ok_or(StorageError::OffsetOverflow {
                    next_offset: expected,
                })?;
            infos.push(BatchInfo {
                base_offset: f.base_offset,
                last_offset,
                total_len: f.total_len as u64,
                max_timestamp: f.max_timestamp,
                leader_epoch: f.leader_epoch,
            });
            expected = last_offset
                .checked_add(1)
                .ok_or(StorageError::OffsetOverflow {
                    next_offset: last_offset,
                })?;
        }
        Ok(infos)
    }
}
