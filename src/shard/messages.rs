//! What shards send each other. Every message is `Send` (owned bytes, `Arc`
//! snapshots, oneshot reply senders); partition state itself never crosses.

use std::sync::Arc;

use bytes::Bytes;
use futures::channel::oneshot;

use crate::metadata::{PartitionId, Snapshot};

/// An operation on one partition, executed on its owner shard.
#[derive(Debug)]
pub enum PartitionOp {
    /// Append validated RecordBatch v2 bytes.
    Produce {
        /// One or more whole batches, CRC already checked.
        records: Bytes,
        /// 0, 1 or -1 (all).
        acks: i16,
        /// Who writes, which decides the checks made before appending.
        origin: ProduceOrigin,
        /// How long acks=all may wait for the ISR, ms (the request's
        /// timeout).
        timeout_ms: i32,
    },
    /// A follower's fetch (Fetch with a replica id): its fetch offset is
    /// its durable log end; read up to the leader's durable end.
    ReplicaFetch {
        /// The follower's node id.
        replica_id: i32,
        /// Its fetch offset.
        offset: i64,
        /// Byte budget for this partition.
        max_bytes: usize,
        /// The epoch of the follower's last batch (DivergingEpoch check).
        last_fetched_epoch: i32,
    },
    /// A follower's long poll: answer once the durable end passes `offset`.
    ReplicaWait {
        /// The follower's fetch offset.
        offset: i64,
    },
    /// Read whole batches from `offset`.
    Read {
        /// First offset wanted.
        offset: i64,
        /// Byte budget for this partition.
        max_bytes: usize,
        /// Return the first batch even if it alone exceeds `max_bytes`.
        min_one: bool,
        /// read_committed: stop at the last stable offset and list the
        /// aborted transactions in the range read.
        committed: bool,
        /// Fetch v12+: the epoch of the fetcher's last batch (-1: none);
        /// when set, the DivergingEpoch check runs first.
        last_fetched_epoch: i32,
    },
    /// ListOffsets: -2 earliest, -1 latest, -3 max timestamp, otherwise a
    /// timestamp in ms.
    ListOffset {
        /// The timestamp or sentinel.
        timestamp: i64,
        /// read_committed: latest is the last stable offset.
        committed: bool,
    },
    /// Long poll: answer once the high watermark (read_committed: the last
    /// stable offset) passes `offset`.
    WaitForData {
        /// The offset the consumer waits for.
        offset: i64,
        /// Wait on the last stable offset instead of the high watermark.
        committed: bool,
    },
    /// OffsetForLeaderEpoch (KIP-101/KIP-279): where `leader_epoch` ends in
    /// this log, after Kafka's CurrentLeaderEpoch check.
    OffsetForLeaderEpoch {
        /// The requester's view of the current epoch (-1: no check).
        current_leader_epoch: i32,
        /// The epoch whose end offset is wanted.
        leader_epoch: i32,
    },
    /// Write a transaction marker (from the transaction coordinator).
    WriteTxnMarker {
        /// The transactional producer.
        producer_id: i64,
        /// Its epoch (possibly bumped, to fence the old producer).
        epoch: i16,
        /// Commit, else abort.
        commit: bool,
        /// The coordinator's epoch, stored in the marker.
        coordinator_epoch: i32,
    },
}

/// Who is producing, for [`PartitionOp::Produce`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProduceOrigin {
    /// A client; idempotent batches follow the sequence rules.
    Client,
    /// A transactional client: the owner first asks the transaction
    /// coordinator whether the partition is in the producer's ongoing
    /// transaction (KIP-890 part 1), then appends with the sequence rules.
    Transactional {
        /// The request's transactional id.
        transactional_id: String,
        /// The batches' producer id.
        producer_id: i64,
        /// The batches' producer epoch.
        epoch: i16,
    },
    /// A coordinator's own write (offsets, transaction state). Its
    /// transactional batches (TxnOffsetCommit) carry no sequence.
    Coordinator,
}

/// The owner's answer to a [`PartitionOp`].
#[derive(Debug)]
pub enum PartitionReply {
    /// The batches were appended (and made durable unless acks=0).
    Produced {
        /// Offset given to the first record.
        base_offset: i64,
        /// The partition's log start offset.
        log_start_offset: i64,
    },
    /// Batches read.
    Read {
        /// Whole batches, possibly empty, as shared slices (tail cache
        /// views or a disk read; never copied on the way to the socket).
        records: crate::protocol::fetch_writer::RecordSlices,
        /// Durable end of the log.
        high_watermark: i64,
        /// First offset still in the log.
        log_start_offset: i64,
        /// Offsets below it are in no open transaction.
        last_stable_offset: i64,
        /// read_committed: aborted transactions overlapping the batches.
        aborted: Option<Vec<crate::protocol::fetch_writer::AbortedTxn>>,
        /// `(epoch, end_offset)` when the fetcher's log diverges from this
        /// one (then `records` is empty).
        diverging_epoch: Option<(i32, i64)>,
    },
    /// A ListOffsets answer.
    Offset {
        /// The offset, -1 if none.
        offset: i64,
        /// Its timestamp, -1 if not by time.
        timestamp: i64,
    },
    /// An OffsetForLeaderEpoch answer (Kafka's `endOffsetFor`; -1, -1 when
    /// unknown).
    EpochEndOffset {
        /// The largest epoch `<=` the one asked for.
        leader_epoch: i32,
        /// Where it ends.
        end_offset: i64,
    },
    /// The high watermark passed the awaited offset.
    DataReady,
    /// A Kafka error code for this partition.
    Error(i16),
}

/// A metadata change, made by the metadata owner (shard 0).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum MetaChange {
    /// Create a topic with this many partitions.
    CreateTopic {
        /// Name, already validated.
        name: String,
        /// Partition count, already validated.
        partitions: i32,
        /// Topic config overrides, already validated (`topic_config`).
        configs: std::collections::BTreeMap<String, String>,
        /// Replicas per partition; [`DEFAULT_REPLICATION`] lets the
        /// controller choose (internal topics: min(3, live brokers), as
        /// Kafka's offsets.topic.replication.factor; others: 1). A single
        /// node has one replica whatever this says (checked by the handler).
        #[serde(default = "default_replication")]
        replication_factor: i16,
    },
    /// Change a topic's config overrides (AlterConfigs,
    /// IncrementalAlterConfigs). Applied to the current overrides by the
    /// metadata owner, so concurrent alters compose.
    AlterTopicConfig {
        /// Topic name.
        name: String,
        /// The edit.
        edit: crate::metadata::topic_config::ConfigEdit,
        /// Check only; change nothing.
        validate_only: bool,
    },
    /// Change dynamic broker configs (AlterConfigs,
    /// IncrementalAlterConfigs on the broker resource), applied by the
    /// metadata owner to the current layer.
    AlterBrokerConfig {
        /// The cluster-wide default (resource name "") rather than this
        /// broker's own.
        cluster_default: bool,
        /// The edit, by broker key.
        edit: crate::metadata::topic_config::ConfigEdit,
        /// Check only; change nothing.
        validate_only: bool,
    },
    /// Delete a topic.
    DeleteTopic {
        /// Name.
        name: String,
    },
    /// Grow a topic to `total` partitions.
    CreatePartitions {
        /// Name.
        name: String,
        /// New total count.
        total: i32,
    },
    /// Set or remove SASL users' SCRAM credentials
    /// (AlterUserScramCredentials), already validated.
    AlterScramCredentials {
        /// Credentials to set: user, mechanism, credential.
        upsertions: Vec<(
            String,
            crate::security::scram::ScramMechanism,
            crate::security::scram::ScramCredential,
        )>,
        /// Credentials to remove: user, mechanism (a missing one is skipped).
        deletions: Vec<(String, crate::security::scram::ScramMechanism)>,
    },
    /// Add and remove ACLs (CreateAcls, DeleteAcls), already validated.
    /// Removals are the bindings the request's filters matched in the
    /// broker's snapshot; one already gone is skipped, one already there
    /// is kept once.
    AlterAcls {
        /// ACLs to add.
        creations: Vec<crate::security::acl::AclBinding>,
        /// ACLs to remove.
        deletions: Vec<crate::security::acl::AclBinding>,
    },
    /// Set and remove client quota keys (AlterClientQuotas), already
    /// validated: entity, key, new value (`None` removes it).
    AlterClientQuotas {
        /// The edits, applied in order.
        edits: Vec<(
            crate::quota::QuotaEntity,
            crate::quota::QuotaType,
            Option<f64>,
        )>,
    },
}

/// CreateTopics' "broker default" replication factor.
pub const DEFAULT_REPLICATION: i16 = -1;

fn default_replication() -> i16 {
    DEFAULT_REPLICATION
}

/// The outcome of a [`MetaChange`]: a Kafka error code (0 = done) and a message.
pub type MetaResult = (i16, Option<String>);

/// Work for another shard: a `Send` closure that, run on the target shard,
/// builds a (possibly `!Send`) future there. Subsystems that keep state on an
/// owner shard (group coordinators, say) use this instead of adding a
/// message variant each; the closure carries its own reply channel.
pub type ShardJob = Box<
    dyn FnOnce(std::rc::Rc<super::Shard>) -> futures::future::LocalBoxFuture<'static, ()> + Send,
>;

/// A message to a shard.
pub enum ShardMsg {
    /// Run a job on this shard (see [`ShardJob`]).
    Run(ShardJob),
    /// Run an operation on a partition this shard owns.
    Partition {
        /// Which partition.
        id: PartitionId,
        /// What to do.
        op: PartitionOp,
        /// Where the answer goes.
        reply: oneshot::Sender<PartitionReply>,
    },
    /// Install a new metadata snapshot (open/remove partitions), then ack.
    ApplySnapshot {
        /// The snapshot.
        snapshot: Arc<Snapshot>,
        /// Acknowledged once applied.
        reply: oneshot::Sender<()>,
    },
    /// A metadata change (only sent to shard 0).
    Meta {
        /// The change.
        change: MetaChange,
        /// Its outcome.
        reply: oneshot::Sender<MetaResult>,
    },
    /// Stop: stop accepting, close every partition cleanly, then ack.
    Shutdown {
        /// Acknowledged once every partition is closed.
        reply: oneshot::Sender<()>,
        /// Shards still draining their in-flight requests (one count per
        /// shard, shared by all of them): partitions close once it is 0.
        draining: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    },
}
