//! What a follower replica does to its partition (append the leader's
//! batches as they are, truncate a divergent tail, start again at the
//! leader's log start when it fell behind it) and what a replica
//! does when it becomes leader (rebuild producer state from its log).

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tracing::{info, warn};

use super::{txn, Partition};
use crate::storage::StorageError;

impl Partition {
    /// Refuses writes on a replica that does not lead (a snapshot moved the
    /// leadership while the request was on its way).
    pub(super) fn check_leader(&self) -> Result<(), i16> {
        match !self.leads() {
            true => Err(ResponseError::NotLeaderOrFollower.code()),
            false => Ok(()),
        }
    }

    /// Appends batches fetched from the leader exactly as they are (their
    /// offsets, leader epochs and CRCs), makes them durable, then takes the
    /// leader's high watermark up to this replica's durable end. A follower
    /// reports its new end only by fetching again, so an offset the leader
    /// counts for acks=all is on this disk.
    pub async fn append_replica(
        self: &Rc<Self>,
        records: &Bytes,
        leader_hw: i64,
    ) -> Result<(), StorageError> {
        if !records.is_empty() {
            let _order = self.append_lock.lock().await;
            if !self.is_follower() {
                // A fetch answered after this replica started leading:
                // its own clients write here now.
                return Ok(());
            }
            // User-space copies after the socket read (counted for
            // docs/BENCHMARKS.md): one into the tail cache's staging
            // buffer (the cache serves this data if this replica comes to
            // lead), one into the segment's O_DIRECT buffer (`place`; the
            // log takes all of `records` or nothing: whole batches).
            let mut owned = self.tail.writable_copy(records);
            self.log.append_replica(owned.as_mut_slice())?;
            crate::ops::metrics::record_replication_copy(2 * records.len());
            self.tail.stage(owned.freeze());
            self.flush().await?;
        }
        self.follow_hw(leader_hw);
        Ok(())
    }

    /// Drops this replica's log from `offset` on (a tail the new leader
    /// does not have). The tail cache and producer state go with it; the
    /// producer table is rebuilt from the log when this replica leads.
    /// Returns whether the high watermark went down with the log (then the
    /// high-watermark checkpoint must be written again before a crash
    /// could bring the old one back over a refilled log).
    pub async fn truncate_replica(&self, offset: i64) -> Result<bool, StorageError> {
        let _order = self.append_lock.lock().await;
        let before = self.log.next_offset();
        if offset >= before {
            return Ok(false);
        }
        // Before the log: a crash between the two then leaves a log the
        // next rebuild replays from its start, never a stale snapshot.
        if let Err(e) = crate::producer::snapshot::discard_from(self.log.dir(), offset).await {
            // Keeping it could hide a duplicate after the next leadership:
            // refuse the truncation (the fetcher retries).
            return Err(StorageError::Io {
                op: "remove producer snapshot before truncation",
                path: self
                    .log
                    .dir()
                    .join(crate::producer::snapshot::PRODUCER_STATE_FILE_NAME),
                position: None,
                source: e,
            });
        }
        self.log.truncate_to(offset).await?;
        self.tail.clear();
        self.tail.publish(self.log.high_watermark());
        let hw_lowered = self.hw.get() > self.log.high_watermark();
        if hw_lowered {
            self.hw.set(self.log.high_watermark());
        }
        self.producers_saved_at.set(-1);
        warn!(partition = %self.id, from = before, to = self.log.next_offset(),
            "divergent tail truncated (the new leader does not have it)");
        Ok(hw_lowered)
    }

    /// Empties this replica's log and starts it again at `offset`, the
    /// leader's log start, when the leader no longer has what this replica
    /// lacks (its retention or DeleteRecords moved past this replica's end
    /// while it was away): Kafka's `truncateFullyAndStartAt`. The tail
    /// cache and aborted-index entries go with the segments; the producer
    /// table is rebuilt from the log when this replica leads. The high
    /// watermark moves up to `offset` (nothing below it exists any more).
    /// An empty log may also move back (`PartitionLog::reset_to`).
    pub async fn reset_replica(&self, offset: i64) -> Result<(), StorageError> {
        let _order = self.append_lock.lock().await;
        let before = (self.log.log_start_offset(), self.log.next_offset());
        let empty = before.0 == before.1;
        if (offset <= before.1 && !empty) || (empty && offset == before.1) {
            return Ok(());
        }
        self.log.reset_to(offset).await?;
        self.tail.clear();
        self.tail.publish(self.log.high_watermark());
        self.hw.set(self.hw.get().max(self.log.high_watermark()));
        self.prune_aborted_index();
        self.producers_saved_at.set(-1);
        warn!(partition = %self.id, log_start = before.0, log_end = before.1, leader_log_start = offset,
            "log reset: the leader's log starts past this replica's end (retention or DeleteRecords ran while it was away)");
        Ok(())
    }

    /// Rebuilds the idempotent-producer table and the aborted index from
    /// the log: a follower's table was not kept while it followed, and the
    /// new leader must judge retries of batches the old leader wrote.
    pub async fn rebuild_as_leader(&self) {
        let _order = self.append_lock.lock().await;
        match txn::load_producer_state(&self.id, &self.log).await {
            Ok((producers, aborted, _)) => {
                *self.producers.borrow_mut() = producers;
                *self.aborted.borrow_mut() = aborted;
                self.producers_saved_at.set(-1);
                info!(partition = %self.id, log_end = self.log.next_offset(),
                    "leading: producer state rebuilt from the log");
            }
            Err(e) => {
                self.storage_failure("producer state rebuild", e);
            }
        }
    }
}
