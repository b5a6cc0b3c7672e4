//! Fetch (key 1), v4-16. Reads whole stored batches from each partition's
//! owner, trims to the request's byte budgets at batch boundaries, and when
//! less than `min_bytes` is available parks on the owners until an append
//! makes data durable or `max_wait_ms` passes (long poll, woken by appends).
//!
//! The response is encoded by `protocol::fetch_writer` as parts (metadata
//! interleaved with the record slices the owners returned), so record bytes
//! are never copied into a response buffer; [`respond`] hands the parts to
//! the connection as `Outcome::RespondParts`.
//!
//! v13+ names topics by id. Fetch sessions (KIP-227) live in the shard's
//! `fetch::session::FetchSessionCache`: a full request (epoch 0) opens one
//! if there is room; an incremental request reads every partition of its
//! session and answers only those with records, an error or offsets the
//! client has not seen (see that module for the rules and eviction).
//! read_committed (isolation level 1) reads stop at each partition's last
//! stable offset and carry the aborted transactions overlapping them; the
//! long poll then waits on the last stable offset (`shard::partition::txn`).
//!
//! Leader epochs (KIP-320, KIP-595): from v9 a partition's
//! CurrentLeaderEpoch is checked against this shard's snapshot (an integer
//! compare: FENCED_LEADER_EPOCH below, UNKNOWN_LEADER_EPOCH above, -1
//! none); from v12 a LastFetchedEpoch >= 0 makes the owner check the
//! fetcher's log against its leader-epoch cache first, and a divergent one
//! is answered at once with no records and the DivergingEpoch to truncate
//! to (`shard::partition::epochs`). Sessions keep both epochs per
//! partition, as Kafka's cached partitions do.
//!
//! In a cluster, a partition led elsewhere is answered NOT_LEADER_OR_FOLLOWER
//! with, from v16, the KIP-951 hint: the leader's id and epoch and its
//! address (`handlers::leader_hint`).
//!
//! Client quotas (`quota`): a consumer's answered record bytes count
//! against its `consumer_byte_rate`; over it, the answer carries
//! `throttle_time_ms` and the connection is muted that long (KIP-219).

use std::collections::BTreeSet;
use crate::security::acl::{Operation, ResourceType};
use std::time::Duration;

use futures::future::{join_all, select, select_all, Either};
use futures::FutureExt;
use kafka_protocol::messages::{ApiKey, FetchRequest};
use kafka_protocol::ResponseError;
use tracing::warn;

use super::leader_hint::{endpoints, leader_of, FETCH_HINT_VERSION_MIN};
use super::{ApiSpec, Outcome, RequestContext};
use crate::fetch::session::{
    must_respond, FetchPlan, PartitionResult, SessionPartition, SessionRequest, TopicKey,
    NO_SESSION_ID,
};
use crate::metadata::PartitionId;
use crate::protocol::fetch_writer::{
    encode_fetch_response, FetchResponseOut, NodeEndpointOut, PartitionOut, RecordSlices,
    TopicOut,
};
use crate::protocol::frame::ParsedHeader;
use crate::shard::{check_leader_epoch, PartitionOp, PartitionReply};

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::Fetch,
    min: 4,
    max: 16,
};

/// Largest fetch response the broker builds, in bytes, whatever the client
/// asks: Kafka's broker default for `fetch.max.bytes` (55 MiB). The first
/// batch of a response is still sent whole when it alone is larger (KIP-74).
pub const FETCH_RESPONSE_BYTES_MAX: usize = 55 * 1024 * 1024;

/// Longest long poll we honour, whatever the client asks.
pub const FETCH_WAIT_MS_MAX: i32 = 30_000;

/// Kafka's isolation level for read_committed.
const READ_COMMITTED: i8 = 1;

/// Who reads, which decides where reads stop and what a long poll waits on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reader {
    /// A consumer, read_uncommitted: up to the high watermark.
    Uncommitted,
    /// A consumer, read_committed: up to the last stable offset.
    Committed,
    /// A follower (its node id): up to the leader's durable end.
    Replica(i32),
}

/// One partition to read, resolved against the metadata snapshot.
struct Wanted {
    id: Result<PartitionId, i16>,
    offset: i64,
    max_bytes: usize,
    /// -1 unless v12+ sent one.
    last_fetched_epoch: i32,
}

/// Answers Fetch. The session (KIP-227, `fetch::session`) decides which
/// partitions are read (the request's, or the session's after this
/// request's changes) and which are answered (all, or those that changed).
pub async fn handle(ctx: &RequestContext, request: FetchRequest) -> FetchResponseOut {
    let session_request = session_request(ctx.version, &request);
    let plan = ctx
        .shard
        .fetch_sessions
        .borrow_mut()
        .begin(&session_request, now_ms());
    let uses_topic_ids = session_request.uses_topic_ids;
    let opens_session = plan == FetchPlan::Full;
    let (mut partitions, incremental) = match plan {
        FetchPlan::Error(code) => {
            return FetchResponseOut {
                error_code: code,
                ..FetchResponseOut::default()
            }
        }
        FetchPlan::Sessionless | FetchPlan::Full => (session_request.partitions, None),
        FetchPlan::Incremental {
            session_id,
            partitions,
        } => (partitions, Some(session_id)),
    };
    let replica = replica_of(ctx.version, &request);
    let wanted = resolve(ctx, &partitions, replica.is_some());
    let replies = read_or_wait(ctx, &request, &wanted, replica).await;
    let answer: Vec<bool> = partitions
        .iter_mut()
        .zip(&replies)
        .map(|(p, reply)| must_respond(p, &summary(reply)) || incremental.is_none())
        .collect();
    let mut sessions = ctx.shard.fetch_sessions.borrow_mut();
    let session_id = match (opens_session, incremental) {
        (_, Some(id)) => {
            let answered = partitions
                .iter()
                .zip(&answer)
                .filter(|(_, a)| **a)
                .map(|(p, _)| p.clone())
                .collect();
            sessions.finish_incremental(id, answered);
            id
        }
        (true, None) => sessions.open(partitions.clone(), uses_topic_ids, now_ms()),
        (false, None) => NO_SESSION_ID,
    };
    drop(sessions);
    // Client quotas (`quota`): a consumer's answered record bytes; a
    // follower's fetches are replication, never throttled.
    let quota_bytes = (ctx.shard.quotas_configured() && replica.is_none())
        .then(|| replies.iter().map(records_len).sum::<usize>());
    let mut response = build_response(session_id, &partitions, &answer, replies);
    response.throttle_time_ms = ctx.throttle_ms;
    if let Some(bytes) = quota_bytes {
        let client_id = ctx.client_id.as_deref().unwrap_or("");
        let throttle_ms =
            crate::quota::on_fetch_answered(&ctx.shard, &ctx.connection, client_id, bytes);
        response.throttle_time_ms = response.throttle_time_ms.max(throttle_ms);
    }
    if ctx.version >= FETCH_HINT_VERSION_MIN {
        add_leader_hints(
            &ctx.shard.snapshot(),
            ctx.connection.listener.protocol.name(),
            &mut response,
        );
    }
    response
}

/// KIP-951: every NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH partition
/// names the leader this broker knows of, and the response carries those
/// leaders' addresses (`handlers::leader_hint`). Nothing to do on a single
/// node.
/// Addresses are those on `listener`, the client's.
fn add_leader_hints(
    snapshot: &crate::metadata::Snapshot,
    listener: &str,
    response: &mut FetchResponseOut,
) {
    if snapshot.cluster.is_none() {
        return;
    }
    let moved = [
        ResponseError::NotLeaderOrFollower.code(),
        ResponseError::FencedLeaderEpoch.code(),
    ];
    let mut leaders = BTreeSet::new();
    for topic in &mut response.topics {
        let Some(meta) = snapshot
            .topic_by_id(&topic.topic_id)
            .or_else(|| snapshot.topic(&topic.name.0))
        else {
            continue;
        };
        for p in &mut topic.partitions {
            if !moved.contains(&p.error_code) {
                continue;
            }
            if let Some(hint) = leader_of(snapshot, &meta.name, p.partition_index) {
                p.current_leader = Some((hint.leader_id, hint.leader_epoch));
                leaders.insert(hint.leader_id);
            }
        }
    }
    response.node_endpoints = endpoints(snapshot, leaders)
        .into_iter()
        .map(|b| {
            let (host, port) = b.address_on(listener);
            NodeEndpointOut {
                node_id: b.id,
                host: host.to_string(),
                port,
                rack: None,
            }
        })
        .collect();
}

/// The follower's node id of a replica fetch (ReplicaId, or ReplicaState
/// from v15), `None` for a consumer's.
fn replica_of(version: i16, request: &FetchRequest) -> Option<i32> {
    let id = match version {
        ..=14 => request.replica_id.0,
        _ => request.replica_state.replica_id.0,
    };
    (id >= 0).then_some(id)
}

/// Milliseconds on the monotonic clock (session idle times).
fn now_ms() -> u64 {
    crate::clock::monotonic_ms()
}

/// The request's session fields and partitions, keyed as its version
/// names topics (by id from v13).
fn session_request(version: i16, request: &FetchRequest) -> SessionRequest {
    let uses_topic_ids = version >= 13;
    let partitions = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                SessionPartition::requested(
                    t.topic.clone(),
                    t.topic_id,
                    p.partition,
                    p.fetch_offset,
                    p.partition_max_bytes,
                )
                .with_epochs(
                    if version >= 9 { p.current_leader_epoch } else { -1 },
                    if version >= 12 { p.last_fetched_epoch } else { -1 },
                )
            })
        })
        .collect();
    let forgotten = request
        .forgotten_topics_data
        .iter()
        .flat_map(|t| {
            let topic = if uses_topic_ids {
                TopicKey::Id(t.topic_id)
            } else {
                TopicKey::Name(t.topic.clone())
            };
            t.partitions.iter().map(move |&p| (topic.clone(), p))
        })
        .collect();
    SessionRequest {
        session_id: request.session_id,
        session_epoch: request.session_epoch,
        uses_topic_ids,
        partitions,
        forgotten,
    }
}

/// Reads every wanted partition; with less than `min_bytes` available,
/// parks on the owners (long poll) and reads again.
async fn read_or_wait(
    ctx: &RequestContext,
    request: &FetchRequest,
    wanted: &[Wanted],
    replica: Option<i32>,
) -> Vec<PartitionReply> {
    // The client's budget, capped by the broker's (Kafka's broker-side
    // fetch.max.bytes): a hostile max_bytes of 2 GiB must not make one
    // response, times the requests a connection may pipeline, pin gigabytes.
    let response_max = usize::try_from(request.max_bytes)
        .unwrap_or(0)
        .clamp(1, FETCH_RESPONSE_BYTES_MAX);
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let committed = request.isolation_level == READ_COMMITTED;
    let reader = match (replica, committed) {
        (Some(id), _) => Reader::Replica(id),
        (None, true) => Reader::Committed,
        (None, false) => Reader::Uncommitted,
    };
    let replies = read_all(ctx, wanted, response_max, reader).await;
    let total: usize = replies.iter().map(records_len).sum();
    // An error or a divergence is answered at once, as in Kafka.
    let any_error = replies.iter().any(|r| {
        matches!(
            r,
            PartitionReply::Error(_)
                | PartitionReply::Read {
                    diverging_epoch: Some(_),
                    ..
                }
        )
    });
    if total < min_bytes.max(1) && request.max_wait_ms > 0 && !any_error && !wanted.is_empty() {
        let wait = Duration::from_millis(request.max_wait_ms.min(FETCH_WAIT_MS_MAX) as u64);
        wait_for_data(ctx, wanted, wait, reader).await;
        return read_all(ctx, wanted, response_max, reader).await;
    }
    replies
}

/// What a partition's reply shows the session.
fn summary(reply: &PartitionReply) -> PartitionResult {
    match reply {
        PartitionReply::Read {
            records,
            high_watermark,
            log_start_offset,
            last_stable_offset,
            diverging_epoch,
            ..
        } => PartitionResult {
            records_bytes: records.len(),
            error_code: 0,
            high_watermark: *high_watermark,
            last_stable_offset: *last_stable_offset,
            log_start_offset: *log_start_offset,
            diverging: diverging_epoch.is_some(),
        },
        PartitionReply::Error(code) => error_result(*code),
        _ => error_result(ResponseError::UnknownServerError.code()),
    }
}

fn error_result(code: i16) -> PartitionResult {
    PartitionResult {
        records_bytes: 0,
        error_code: code,
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        diverging: false,
    }
}

/// The partitions to read, or each one's error. With an authorizer, a
/// consumer needs READ on the topic and a follower (`from_replica`)
/// CLUSTER_ACTION on the cluster; either refusal is the partition's
/// TOPIC_AUTHORIZATION_FAILED, as in Kafka.
fn resolve(ctx: &RequestContext, partitions: &[SessionPartition], from_replica: bool) -> Vec<Wanted> {
    let snapshot = ctx.shard.snapshot();
    let replica_allowed = from_replica && ctx.authorize_cluster(Operation::ClusterAction);
    if from_replica && !replica_allowed && !partitions.is_empty() {
        crate::replication::denials::record(&ctx.connection);
    }
    let allowed = |topic: &str| match from_replica {
        true => replica_allowed,
        false => ctx.authorize(Operation::Read, ResourceType::Topic, topic),
    };
    partitions
        .iter()
        .map(|p| {
            let meta = if ctx.version >= 13 {
                snapshot
                    .topic_by_id(&p.topic_id)
                    .ok_or(ResponseError::UnknownTopicId.code())
            } else {
                snapshot
                    .topic(&p.topic_name.0)
                    .ok_or(ResponseError::UnknownTopicOrPartition.code())
            };
            let id = match meta {
                Ok(m) if !allowed(&m.name) => Err(ResponseError::TopicAuthorizationFailed.code()),
                Ok(m) if (0..m.partition_count()).contains(&p.partition) => {
                    let current = snapshot.leader_epoch(&m.name, p.partition);
                    check_leader_epoch(p.current_leader_epoch, current).map(|()| PartitionId {
                        topic: m.name.clone(),
                        partition: p.partition,
                    })
                }
                Ok(_) => Err(ResponseError::UnknownTopicOrPartition.code()),
                Err(code) => Err(code),
            };
            Wanted {
                id,
                offset: p.fetch_offset,
                max_bytes: usize::try_from(p.max_bytes).unwrap_or(0),
                last_fetched_epoch: p.last_fetched_epoch,
            }
        })
        .collect()
}

/// Reads every partition at once, then trims to the response budget in
/// request order: the first partition with data keeps at least one whole
/// batch (KIP-74), later ones keep whole batches while the budget lasts.
async fn read_all(
    ctx: &RequestContext,
    wanted: &[Wanted],
    response_max: usize,
    reader: Reader,
) -> Vec<PartitionReply> {
    let reads = wanted.iter().map(|w| async move {
        match &w.id {
            Err(code) => PartitionReply::Error(*code),
            Ok(id) => {
                let max_bytes = w.max_bytes.min(response_max);
                let op = match reader {
                    Reader::Replica(replica_id) => PartitionOp::ReplicaFetch {
                        replica_id,
                        offset: w.offset,
                        max_bytes,
                        last_fetched_epoch: w.last_fetched_epoch,
                    },
                    _ => PartitionOp::Read {
                        offset: w.offset,
                        max_bytes,
                        min_one: true,
                        committed: reader == Reader::Committed,
                        last_fetched_epoch: w.last_fetched_epoch,
                    },
                };
                ctx.shard.call_partition(id.clone(), op).await
            }
        }
    });
    let mut replies = join_all(reads).await;
    let mut used = 0usize;
    for reply in replies.iter_mut() {
        if let PartitionReply::Read { records, .. } = reply {
            let within = whole_batches_within(records, response_max.saturating_sub(used));
            let keep = if used == 0 {
                within.max(first_batch_len(records))
            } else {
                within
            };
            records.truncate(keep);
            used += keep;
        }
    }
    replies
}

fn records_len(reply: &PartitionReply) -> usize {
    match reply {
        PartitionReply::Read { records, .. } => records.len(),
        _ => 0,
    }
}

fn first_batch_len(records: &RecordSlices) -> usize {
    records.batch_ends().next().unwrap_or(0)
}

/// Length of the longest prefix of whole batches that fits in `budget`.
fn whole_batches_within(records: &RecordSlices, budget: usize) -> usize {
    records
        .batch_ends()
        .take_while(|&end| end <= budget)
        .last()
        .unwrap_or(0)
}

/// Parks on the owners of every readable partition until one of them has
/// data past the fetch offset, or `wait` passes. Dropping the losing waits
/// cancels them on their owners.
async fn wait_for_data(ctx: &RequestContext, wanted: &[Wanted], wait: Duration, reader: Reader) {
    let waits: Vec<_> = wanted
        .iter()
        .filter_map(|w| w.id.as_ref().ok().map(|id| (id.clone(), w.offset)))
        .map(|(id, offset)| {
            let op = match reader {
                Reader::Replica(_) => PartitionOp::ReplicaWait { offset },
                _ => PartitionOp::WaitForData {
                    offset,
                    committed: reader == Reader::Committed,
                },
            };
            ctx.shard.call_partition(id, op).boxed_local()
        })
        .collect();
    if waits.is_empty() {
        return;
    }
    let timer = glommio::timer::sleep(wait).boxed_local();
    match select(select_all(waits), timer).await {
        Either::Left(_) | Either::Right(_) => {}
    }
}

/// Encodes the response as parts for the connection; an encoding failure
/// (a bug or an over-large frame) closes the connection, as for every API.
pub fn respond(header: &ParsedHeader, version: i16, response: &FetchResponseOut) -> Outcome {
    match encode_fetch_response(header.correlation_id, version, response) {
        Ok(parts) => Outcome::RespondParts(parts),
        Err(e) => {
            warn!("encoding Fetch v{version} response failed: {e}");
            Outcome::Close(format!("response encoding failed: {e}"))
        }
    }
}

/// The answer: the partitions marked in `answer`, grouped into topics by
/// consecutive runs of the same topic (as Kafka builds its response).
fn build_response(
    session_id: i32,
    partitions: &[SessionPartition],
    answer: &[bool],
    replies: Vec<PartitionReply>,
) -> FetchResponseOut {
    let mut topics: Vec<TopicOut> = Vec::new();
    for ((p, reply), _) in partitions
        .iter()
        .zip(replies)
        .zip(answer)
        .filter(|(_, a)| **a)
    {
        let same_topic = topics
            .last()
            .is_some_and(|t| t.name == p.topic_name && t.topic_id == p.topic_id);
        if !same_topic {
            topics.push(TopicOut {
                name: p.topic_name.clone(),
                topic_id: p.topic_id,
                partitions: Vec::new(),
            });
        }
        let base = PartitionOut {
            partition_index: p.partition,
            ..PartitionOut::default()
        };
        let data = match reply {
            PartitionReply::Read {
                records,
                high_watermark,
                log_start_offset,
                last_stable_offset,
                aborted,
                diverging_epoch,
            } => PartitionOut {
                high_watermark,
                last_stable_offset,
                log_start_offset,
                aborted_transactions: aborted,
                records: Some(records),
                diverging_epoch,
                ..base
            },
            PartitionReply::Error(code) => error_partition(base, code),
            _ => error_partition(base, ResponseError::UnknownServerError.code()),
        };
        if let Some(topic) = topics.last_mut() {
            topic.partitions.push(data);
        }
    }
    FetchResponseOut {
        session_id,
        topics,
        ..FetchResponseOut::default()
    }
}

fn error_partition(base: PartitionOut, code: i16) -> PartitionOut {
    PartitionOut {
        error_code: code,
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        records: Some(RecordSlices::new()),
        ..base
    }
}
