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
//! v13+ names topics by id. Fetch sessions (KIP-227) are not kept yet: every
//! answer carries session id 0, which tells clients to send full requests.
//! read_committed (isolation level 1) reads stop at each partition's last
//! stable offset and carry the aborted transactions overlapping them; the
//! long poll then waits on the last stable offset (`shard::partition::txn`).

use std::time::Duration;

use futures::future::{join_all, select, select_all, Either};
use futures::FutureExt;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::{ApiKey, FetchRequest};
use kafka_protocol::ResponseError;
use tracing::warn;

use super::{ApiSpec, Outcome, RequestContext};
use crate::metadata::PartitionId;
use crate::protocol::fetch_writer::{
    encode_fetch_response, FetchResponseOut, PartitionOut, RecordSlices, TopicOut,
};
use crate::protocol::frame::ParsedHeader;
use crate::shard::{PartitionOp, PartitionReply};

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

/// One partition to read, resolved against the metadata snapshot.
struct Wanted {
    topic: usize,
    partition: i32,
    id: Result<PartitionId, i16>,
    offset: i64,
    max_bytes: usize,
}

/// Answers Fetch.
pub async fn handle(ctx: &RequestContext, request: FetchRequest) -> FetchResponseOut {
    let wanted = resolve(ctx, &request.topics);
    // The client's budget, capped by the broker's (Kafka's broker-side
    // fetch.max.bytes): a hostile max_bytes of 2 GiB must not make one
    // response, times the requests a connection may pipeline, pin gigabytes.
    let response_max = usize::try_from(request.max_bytes)
        .unwrap_or(0)
        .clamp(1, FETCH_RESPONSE_BYTES_MAX);
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let committed = request.isolation_level == READ_COMMITTED;
    let mut replies = read_all(ctx, &wanted, response_max, committed).await;
    let total: usize = replies.iter().map(|r| records_len(r)).sum();
    let any_error = replies
        .iter()
        .any(|r| matches!(r, PartitionReply::Error(_)));
    if total < min_bytes.max(1) && request.max_wait_ms > 0 && !any_error && !wanted.is_empty() {
        let wait = Duration::from_millis(request.max_wait_ms.min(FETCH_WAIT_MS_MAX) as u64);
        wait_for_data(ctx, &wanted, wait, committed).await;
        replies = read_all(ctx, &wanted, response_max, committed).await;
    }
    build_response(&request.topics, wanted, replies)
}

fn resolve(ctx: &RequestContext, topics: &[FetchTopic]) -> Vec<Wanted> {
    let snapshot = ctx.shard.snapshot();
    let mut wanted = Vec::new();
    for (ti, topic) in topics.iter().enumerate() {
        let meta = if ctx.version >= 13 {
            snapshot
                .topic_by_id(&topic.topic_id)
                .ok_or(ResponseError::UnknownTopicId.code())
        } else {
            snapshot
                .topic(&topic.topic.0)
                .ok_or(ResponseError::UnknownTopicOrPartition.code())
        };
        for p in &topic.partitions {
            let id = match &meta {
                Ok(m) if (0..m.partition_count()).contains(&p.partition) => Ok(PartitionId {
                    topic: m.name.clone(),
                    partition: p.partition,
                }),
                Ok(_) => Err(ResponseError::UnknownTopicOrPartition.code()),
                Err(code) => Err(*code),
            };
            let max_bytes = usize::try_from(p.partition_max_bytes).unwrap_or(0);
            wanted.push(Wanted {
                topic: ti,
                partition: p.partition,
                id,
                offset: p.fetch_offset,
                max_bytes,
            });
        }
    }
    wanted
}

/// Reads every partition at once, then trims to the response budget in
/// request order: the first partition with data keeps at least one whole
/// batch (KIP-74), later ones keep whole batches while the budget lasts.
async fn read_all(
    ctx: &RequestContext,
    wanted: &[Wanted],
    response_max: usize,
    committed: bool,
) -> Vec<PartitionReply> {
    let reads = wanted.iter().map(|w| async move {
        match &w.id {
            Err(code) => PartitionReply::Error(*code),
            Ok(id) => {
                let op = PartitionOp::Read {
                    offset: w.offset,
                    max_bytes: w.max_bytes.min(response_max),
                    min_one: true,
                    committed,
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
async fn wait_for_data(ctx: &RequestContext, wanted: &[Wanted], wait: Duration, committed: bool) {
    let waits: Vec<_> = wanted
        .iter()
        .filter_map(|w| w.id.as_ref().ok().map(|id| (id.clone(), w.offset)))
        .map(|(id, offset)| {
            ctx.shard
                .call_partition(id, PartitionOp::WaitForData { offset, committed })
                .boxed_local()
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

fn build_response(
    topics: &[FetchTopic],
    wanted: Vec<Wanted>,
    replies: Vec<PartitionReply>,
) -> FetchResponseOut {
    let mut out: Vec<TopicOut> = topics
        .iter()
        .map(|t| TopicOut {
            name: t.topic.clone(),
            topic_id: t.topic_id,
            partitions: Vec::with_capacity(t.partitions.len()),
        })
        .collect();
    for (w, reply) in wanted.into_iter().zip(replies) {
        let base = PartitionOut {
            partition_index: w.partition,
            ..PartitionOut::default()
        };
        let data = match reply {
            PartitionReply::Read {
                records,
                high_watermark,
                log_start_offset,
                last_stable_offset,
                aborted,
            } => PartitionOut {
                high_watermark,
                last_stable_offset,
                log_start_offset,
                aborted_transactions: aborted,
                records: Some(records),
                ..base
            },
            PartitionReply::Error(code) => error_partition(base, code),
            _ => error_partition(base, ResponseError::UnknownServerError.code()),
        };
        out[w.topic].partitions.push(data);
    }
    FetchResponseOut {
        topics: out,
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
