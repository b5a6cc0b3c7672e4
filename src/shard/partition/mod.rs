//! A partition as its owner shard holds it: the log, the long-poll waiters,
//! and the operations other shards ask for.
//!
//! `Partition` is `!Send` on purpose: only the owner shard touches it
//! (invariant 3). Appends to one partition are serialized by `append_lock`
//! (a [`FifoLock`]: granted in the order operations reached the owner) so
//! batches land in the order their requests arrived, even when one of them
//! waits for back-pressure. Transactional batches that must first be
//! verified with their coordinator keep that order too (`txn_order`). Durability is the log's
//! flush: concurrent produces to a partition share one write + fdatasync
//! (group commit), and acks=1/all are answered only after it.
//!
//! Transactions (markers, the last stable offset, read_committed reads,
//! the aborted index) are in [`txn`].

mod epochs;
mod follower_progress;
mod read;
mod replica;
mod replica_ops;
#[cfg(test)]
mod tests;
mod txn;
pub use epochs::{check_leader_epoch, NO_LEADER_EPOCH_CHECK};
pub(crate) use replica::{IsrProposal, RoleChange};
pub(crate) use txn::CleanerView;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;
use kafka_protocol::ResponseError;
use tracing::{error, warn};
use uuid::Uuid;

use super::messages::{PartitionOp, PartitionReply, ProduceOrigin};
use crate::fetch::{PartitionTail, TailCache};
use crate::metadata::PartitionId;
use crate::producer::aborted::AbortedIndex;
use crate::producer::state::{last_seq, BatchSeq};
use crate::producer::{ProducerCheck, ProducerStateTable};
use crate::protocol::batch::batches;
use crate::shard::fifo_lock::{FifoGuard, FifoLock};
use crate::storage::{DmaDisk, PartitionLog, StorageError};

/// Appended-but-unflushed bytes above which a produce waits for a flush
/// before appending (back-pressure instead of unbounded buffering).
pub const PENDING_BYTES_MAX: usize = 64 * 1024 * 1024;

/// One partition on its owner shard.
pub struct Partition {
    /// Which partition.
    pub id: PartitionId,
    /// The topic id it was created under (a recreated topic gets a new id).
    pub topic_id: Uuid,
    /// The log.
    pub log: PartitionLog<DmaDisk>,
    /// Recent durable batches in memory (the shard's tail cache): reads at
    /// the tail are answered from it without a disk read or a copy.
    tail: Rc<PartitionTail>,
    append_lock: FifoLock,
    /// Transactional produces in arrival order while they are verified
    /// with their coordinator (KIP-890): held from arrival until the
    /// append lock is, so a verification that answers late cannot let a
    /// later batch of the same connection pass an earlier one.
    txn_order: FifoLock,
    /// Idempotent producers' last batches (see [`crate::producer`]).
    producers: RefCell<ProducerStateTable>,
    /// Aborted transactions, for read_committed fetches.
    aborted: RefCell<AbortedIndex>,
    /// First offsets of transactions whose marker is appended but not yet
    /// durable, and for an abort not yet in `aborted`: the last stable
    /// offset stays at or below them (`txn.rs`), so neither a read_committed
    /// fetch nor the cleaner reads a transaction before its outcome is
    /// known there.
    markers_in_flight: RefCell<Vec<i64>>,
    waiters: RefCell<Vec<oneshot::Sender<PartitionReply>>>,
    /// The offset of the last producer-state snapshot written.
    producers_saved_at: Cell<i64>,
    /// Set after a failed write or fsync: the state on disk is unknown, so
    /// the partition refuses reads and writes until the broker restarts and
    /// recovers it (Kafka marks the log dir offline the same way) — unless
    /// the failure was a full disk (`out_of_space`).
    failed: Cell<bool>,
    /// The failure was ENOSPC/EDQUOT: operations retry recovery (at most
    /// every [`FULL_DISK_RETRY_INTERVAL`]), which reopens the log from its
    /// files once writes can succeed again; no restart needed.
    out_of_space: Cell<bool>,
    /// When recovery was last tried.
    recovery_tried_at: Cell<Option<Instant>>,
    /// Leader, follower or sole replica (`replica`).
    role: RefCell<replica::Role>,
    /// Shares its log with other replicas: the high watermark is `hw`,
    /// not the log's durable end.
    replicated: Cell<bool>,
    /// The replicated high watermark (meaningful when `replicated`).
    hw: Cell<i64>,
    /// Followers' long polls: woken when the durable end moves.
    replica_waiters: RefCell<Vec<oneshot::Sender<PartitionReply>>>,
    /// The current leader epoch, from the metadata snapshot (epochs.rs).
    leader_epoch: Cell<i32>,
}

/// How often a partition offline for a full disk tries to come back.
const FULL_DISK_RETRY_INTERVAL: Duration = Duration::from_millis(500);

impl Partition {
    /// Wraps an opened log, rebuilding its idempotent-producer table.
    pub async fn open(
        id: PartitionId,
        topic_id: Uuid,
        log: PartitionLog<DmaDisk>,
    ) -> Result<Partition, StorageError> {
        let (producers, aborted, snapshot_at) = txn::load_producer_state(&id, &log).await?;
        let tail = PartitionTail::new(TailCache::for_this_shard());
        tail.publish(log.high_watermark());
        // Until `restore_hw`: nothing of a replicated log is known committed.
        let log_start = log.log_start_offset();
        Ok(Partition {
            id,
            topic_id,
            log,
            tail,
            producers: RefCell::new(producers),
            aborted: RefCell::new(aborted),
            markers_in_flight: RefCell::new(Vec::new()),
            // A snapshot at the log end is current: a close with nothing
            // new does not write it again.
            producers_saved_at: Cell::new(snapshot_at.unwrap_or(-1)),
            append_lock: FifoLock::new(),
            txn_order: FifoLock::new(),
            waiters: RefCell::new(Vec::new()),
            failed: Cell::new(false),
            out_of_space: Cell::new(false),
            recovery_tried_at: Cell::new(None),
            role: RefCell::new(replica::Role::Sole),
            replicated: Cell::new(false),
            hw: Cell::new(log_start),
            replica_waiters: RefCell::new(Vec::new()),
            leader_epoch: Cell::new(0),
        })
    }

    /// Runs one operation; long-poll waits reply through `reply` later.
    pub async fn execute(self: &Rc<Self>, op: PartitionOp, reply: oneshot::Sender<PartitionReply>) {
        if self.failed.get() && !self.recover_from_full_disk().await {
            let _ = reply.send(PartitionReply::Error(
                ResponseError::KafkaStorageError.code(),
            ));
            return;
        }
        let answer = match op {
            PartitionOp::Produce {
                records,
                acks,
                origin,
                timeout_ms,
            } => {
                self.produce(records, (acks, timeout_ms), &origin, None, None)
                    .await
            }
            PartitionOp::Read {
                offset,
                max_bytes,
                min_one,
                committed,
                last_fetched_epoch,
            } => match self.diverging_reply(offset, last_fetched_epoch, committed) {
                Some(reply) => reply,
                None => self.read(offset, max_bytes, min_one, committed).await,
            },
            PartitionOp::ListOffset {
                timestamp,
                committed,
            } => self.list_offset(timestamp, committed).await,
            PartitionOp::OffsetForLeaderEpoch {
                current_leader_epoch,
                leader_epoch,
            } => self.offset_for_leader_epoch(current_leader_epoch, leader_epoch),
            PartitionOp::WriteTxnMarker {
                producer_id,
                epoch,
                commit,
                coordinator_epoch,
            } => {
                self.write_marker(producer_id, epoch, commit, coordinator_epoch)
                    .await
            }
            PartitionOp::ReplicaWait { offset } => {
                if self.log.high_watermark() > offset {
                    PartitionReply::DataReady
                } else {
                    let mut waiters = self.replica_waiters.borrow_mut();
                    waiters.retain(|w| !w.is_canceled());
                    waiters.push(reply);
                    return;
                }
            }
            PartitionOp::ReplicaFetch { .. } => {
                // Answered by the shard (`replica_ops`), which may also ask
                // the controller for an ISR change.
                PartitionReply::Error(ResponseError::UnknownServerError.code())
            }
            PartitionOp::WaitForData { offset, committed } => {
                let end = if committed {
                    self.last_stable_offset()
                } else {
                    self.high_watermark()
                };
                if end > offset || offset < self.log.log_start_offset() {
                    PartitionReply::DataReady
                } else {
                    let mut waiters = self.waiters.borrow_mut();
                    waiters.retain(|w| !w.is_canceled());
                    waiters.push(reply);
                    return;
                }
            }
        };
        let _ = reply.send(answer);
    }

    /// Appends a produce. `guard` is the KIP-890 verification guard of a
    /// transactional produce (its producer's marker count when verification
    /// began): if a marker was written since, the transaction it was
    /// verified for is over and the batch is refused. `turn` (its place in
    /// `txn_order`) is given up once the append lock is held.
    async fn produce(
        self: &Rc<Self>,
        records: Bytes,
        (acks, timeout_ms): (i16, i32),
        origin: &ProduceOrigin,
        guard: Option<(i64, u64)>,
        turn: Option<FifoGuard>,
    ) -> PartitionReply {
        let (base_offset, end) = {
            let _order = self.append_lock.lock().await;
            drop(turn);
            if self.replicated.get() {
                let check = match acks {
                    -1 => self.check_min_insync(),
                    _ => self.check_leader(),
                };
                if let Err(code) = check {
                    return PartitionReply::Error(code);
                }
            }
            while self.log.pending_bytes() > PENDING_BYTES_MAX {
                if let Err(e) = self.flush().await {
                    return self.storage_failure("flush", e);
                }
            }
            if let Some((pid, markers)) = guard {
                if self.producers.borrow().marker_count(pid) != markers {
                    return PartitionReply::Error(ResponseError::InvalidTxnState.code());
                }
            }
            let trusted = *origin == ProduceOrigin::Coordinator;
            match self.append_checked(&records, trusted) {
                Ok(base_offset) => (base_offset, self.log.next_offset()),
                Err(reply) => return reply,
            }
        };
        if acks == 0 {
            let me = self.clone();
            glommio::spawn_local(async move {
                if let Err(e) = me.flush().await {
                    me.storage_failure("flush", e);
                }
            })
            .detach();
        } else if let Err(e) = self.flush().await {
            return self.storage_failure("flush", e);
        }
        if acks == -1 && self.replicated.get() {
            let timeout = Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0));
            match self.wait_replicated(end, timeout).await {
                0 => {}
                code => return PartitionReply::Error(code),
            }
        }
        PartitionReply::Produced {
            base_offset,
            log_start_offset: self.log.log_start_offset(),
        }
    }

    /// Appends the request's batches (already validated: whole v2 batches
    /// with good CRCs) and returns the offset of the first one. Batches of an
    /// idempotent producer are judged against the producer table first: a
    /// retry of a batch already written answers with its original offset and
    /// is not written again; a sequence gap or a fenced epoch is refused.
    ///
    /// `trusted` (a coordinator's own write) skips the sequence rules: its
    /// transactional batches carry no sequence.
    fn append_checked(&self, records: &[u8], trusted: bool) -> Result<i64, PartitionReply> {
        let idempotent = batches(records)
            .next()
            .and_then(Result::ok)
            .is_some_and(|b| b.header.producer_id() >= 0);
        if !idempotent {
            // The log rewrites baseOffset in place; the request's bytes are
            // shared with its frame, so they are copied once here, into the
            // tail cache's reserved memory (fetch::cache_arena).
            let mut owned = self.tail.writable_copy(records);
            self.stamp(owned.as_mut_slice());
            let info = self
                .log
                .append(owned.as_mut_slice())
                .map_err(|e| self.storage_failure("append", e))?;
            // The log rewrote the offsets in `owned`: these are the stored
            // bytes, kept (not copied) for the tail cache.
            self.tail.stage(owned.freeze());
            return Ok(info.base_offset);
        }
        let mut first_base = None;
        for batch in batches(records) {
            let Ok(batch) = batch else { break };
            let h = batch.header;
            let (pid, epoch, first_seq) = (h.producer_id(), h.producer_epoch(), h.base_sequence());
            let seqs = BatchSeq {
                first_seq,
                last_seq: last_seq(first_seq, h.records_count()),
                base_offset: -1,
            };
            let verdict = if pid >= 0 && !trusted {
                self.producers
                    .borrow()
                    .check(pid, epoch, seqs.first_seq, seqs.last_seq)
            } else {
                ProducerCheck::Append
            };
            let base_offset = match verdict {
                ProducerCheck::Append => {
                    let mut owned = self.tail.writable_copy(batch.bytes);
                    self.stamp(owned.as_mut_slice());
                    let info = self
                        .log
                        .append(owned.as_mut_slice())
                        .map_err(|e| self.storage_failure("append", e))?;
                    self.tail.stage(owned.freeze());
                    if h.is_transactional() {
                        self.producers.borrow_mut().begin_txn(pid, info.base_offset);
                    }
                    if pid >= 0 && !trusted {
                        self.producers.borrow_mut().record(
                            pid,
                            epoch,
                            BatchSeq {
                                base_offset: info.base_offset,
                                ..seqs
                            },
                        );
                    }
                    info.base_offset
                }
                ProducerCheck::Duplicate { base_offset } => base_offset,
                ProducerCheck::Refuse(code) => return Err(PartitionReply::Error(code)),
            };
            first_base.get_or_insert(base_offset);
        }
        first_base.ok_or(PartitionReply::Error(ResponseError::CorruptMessage.code()))
    }

    /// Clean close: producer state snapshot, then the log (flush, indexes,
    /// checkpoint).
    pub async fn close(&self) -> Result<(), StorageError> {
        self.log.flush().await?;
        let end = self.log.high_watermark();
        // The snapshot on disk is already at the end (written by the last
        // close or a housekeeping pass since): nothing to add. A follower
        // keeps no producer table (rebuilt when it leads): none to save.
        if self.producers_saved_at.get() != end && self.leads() {
            let table = self.producers.borrow().clone();
            if let Err(e) = crate::producer::snapshot::save(self.log.dir(), end, table).await {
                warn!(partition = %self.id, "producer state snapshot not written (rebuilt from the log next time): {e}");
            }
        }
        self.log.close().await
    }

    /// Writes the producer-state snapshot if the log moved since the last
    /// one (housekeeping calls this each pass), so that after a crash the
    /// rebuild replays only the batches since, not the whole log. The
    /// snapshot is taken at a flushed end under the append lock, so it
    /// matches the log exactly at its offset.
    pub async fn snapshot_producers(&self) {
        if self.failed.get()
            || !self.leads()
            || self.producers.borrow().is_empty()
            || self.log.high_watermark() == self.producers_saved_at.get()
        {
            return;
        }
        let (offset, table) = {
            let _order = self.append_lock.lock().await;
            if self.flush().await.is_err() {
                return; // the produce path reports and handles it
            }
            (self.log.high_watermark(), self.producers.borrow().clone())
        };
        match crate::producer::snapshot::save(self.log.dir(), offset, table).await {
            Ok(()) => self.producers_saved_at.set(offset),
            Err(e) => warn!(partition = %self.id, "producer state snapshot not written: {e}"),
        }
    }

    /// Drops the cached tail: compaction rewrote batches the cache still
    /// holds in their old form (housekeeping.rs calls this after a pass).
    pub fn forget_cached_tail(&self) {
        self.tail.clear();
    }

    /// Brings a partition taken offline by a full disk back: reopens the log
    /// from its files (recovery drops what was appended but never made
    /// durable and cuts a torn tail), rebuilds the producer table and the
    /// aborted index from them, and empties the tail cache, exactly the
    /// state a restart would give. Tried at most every
    /// [`FULL_DISK_RETRY_INTERVAL`] and only for out-of-space failures;
    /// true if the partition is online afterwards.
    async fn recover_from_full_disk(&self) -> bool {
        let due = self
            .recovery_tried_at
            .get()
            .is_none_or(|at| at.elapsed() >= FULL_DISK_RETRY_INTERVAL);
        if !self.out_of_space.get() || !due {
            return false;
        }
        let _order = self.append_lock.lock().await;
        if !self.failed.get() {
            return true; // another operation recovered it meanwhile
        }
        self.recovery_tried_at.set(Some(Instant::now()));
        if let Err(e) = self.log.reopen().await {
            warn!(partition = %self.id, "recovery after a full disk failed, retrying later: {e}");
            return false;
        }
        let (producers, aborted, _) = match txn::load_producer_state(&self.id, &self.log).await {
            Ok(state) => state,
            Err(e) => {
                warn!(partition = %self.id, "producer state not rebuilt after a full disk, retrying later: {e}");
                return false;
            }
        };
        *self.producers.borrow_mut() = producers;
        *self.aborted.borrow_mut() = aborted;
        self.producers_saved_at.set(-1);
        self.tail.clear();
        self.tail.publish(self.log.high_watermark());
        self.failed.set(false);
        self.out_of_space.set(false);
        warn!(partition = %self.id, log_end = self.log.next_offset(),
            "partition back online after a full disk (log recovered to its durable end)");
        true
    }

    /// Flushes the log and wakes long-poll fetches waiting on new data:
    /// followers' always, consumers' when the high watermark moved (with
    /// one replica it is the durable end).
    pub async fn flush(&self) -> Result<(), StorageError> {
        self.log.flush().await?;
        self.tail.publish(self.log.high_watermark());
        if self.replicated.get() {
            let followers = std::mem::take(&mut *self.replica_waiters.borrow_mut());
            for w in followers {
                let _ = w.send(PartitionReply::DataReady);
            }
            self.advance_hw();
        } else {
            self.wake_consumers();
        }
        Ok(())
    }

    /// Answers the consumers' long polls (the high watermark moved).
    fn wake_consumers(&self) {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters {
            let _ = w.send(PartitionReply::DataReady);
        }
    }

    async fn list_offset(&self, timestamp: i64, committed: bool) -> PartitionReply {
        const LATEST: i64 = -1;
        const EARLIEST: i64 = -2;
        const MAX_TIMESTAMP: i64 = -3;
        match timestamp {
            LATEST => PartitionReply::Offset {
                offset: if committed {
                    self.last_stable_offset()
                } else {
                    self.high_watermark()
                },
                timestamp: -1,
            },
            EARLIEST => PartitionReply::Offset {
                offset: self.log.log_start_offset(),
                timestamp: -1,
            },
            MAX_TIMESTAMP => match self.log.offset_for_max_timestamp().await {
                Ok(Some((offset, timestamp))) => PartitionReply::Offset { offset, timestamp },
                Ok(None) => PartitionReply::Offset {
                    offset: -1,
                    timestamp: -1,
                },
                Err(e) => self.storage_failure("offset for max timestamp", e),
            },
            ts if ts < 0 => PartitionReply::Error(ResponseError::InvalidRequest.code()),
            ts => match self.log.offset_for_timestamp(ts).await {
                Ok(Some((offset, timestamp))) => PartitionReply::Offset { offset, timestamp },
                Ok(None) => PartitionReply::Offset {
                    offset: -1,
                    timestamp: -1,
                },
                Err(e) => self.storage_failure("offset for timestamp", e),
            },
        }
    }

    pub(super) fn storage_failure(&self, op: &str, e: StorageError) -> PartitionReply {
        if matches!(e, StorageError::OffsetOutOfRange { .. }) {
            return PartitionReply::Error(ResponseError::OffsetOutOfRange.code());
        }
        if !self.failed.replace(true) {
            self.out_of_space.set(e.is_out_of_space());
            self.recovery_tried_at.set(Some(Instant::now()));
            if e.is_out_of_space() {
                error!(partition = %self.id, "{op} failed, disk full: partition offline until space is freed: {e}");
            } else {
                error!(partition = %self.id, "{op} failed, partition taken offline until restart: {e}");
            }
        } else {
            warn!(partition = %self.id, "{op} failed on an offline partition: {e}");
        }
        PartitionReply::Error(ResponseError::KafkaStorageError.code())
    }
}
