//! The message browser and the console's producer.
//!
//! Browsing reads through the broker's own Fetch handler (no session, no
//! long poll) with [`FETCH_BYTES_MAX`] per request and at most
//! [`SCAN_BYTES_MAX`] per browse call, so a filter over a large topic
//! stops early instead of reading it all: browsing costs what one modest
//! consumer costs, and cannot crowd out producers. The answer carries
//! `next_offset`, which the live tail passes back on its next poll.
//! Producing builds one RecordBatch v2 with the kafka-protocol encoder and
//! sends it as a Produce request with acks=all.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_protocol::messages::BrokerId;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};
use serde::Deserialize;
use serde_json::json;

use super::guard::refuse_internal_topic;
use super::kafka::{self, check, check_message, topic_name};
use super::records::{record_json, Decode, Filters};
use super::{ConsoleError, ConsoleResult};
use crate::ops::http::Request;
use crate::shard::Shard;

/// Bytes one browse fetch asks for (whole topic and partition).
pub(super) const FETCH_BYTES_MAX: i32 = 1024 * 1024;
/// Bytes one browse call reads at most, over all its fetches.
pub(super) const SCAN_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Records one browse call returns by default.
const LIMIT_DEFAULT: usize = 50;
/// Records one browse call returns at most.
pub(super) const LIMIT_MAX: usize = 500;
const FETCH_VERSION: i16 = 12;
const PRODUCE_VERSION: i16 = 9;
/// acks=all: answered once the batch is durable.
const ACKS_ALL: i16 = -1;
/// How long a console produce may wait, in ms.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;
/// Kafka's READ_UNCOMMITTED: the browser shows every record up to the
/// high watermark, as `kcat -C` does.
const READ_UNCOMMITTED: i8 = 0;

const _: () = assert!(FETCH_BYTES_MAX as usize <= SCAN_BYTES_MAX);

fn parse_number<T: std::str::FromStr>(
    request: &Request,
    name: &str,
) -> Result<Option<T>, ConsoleError> {
    request
        .param(name)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse()
                .map_err(|_| ConsoleError::BadRequest(format!("{name} {v:?} is not a number")))
        })
        .transpose()
}

/// Where a browse starts, from the `from` query parameter.
async fn start_offset(
    shard: &Rc<Shard>,
    topic: &str,
    partition: i32,
    request: &Request,
    limit: usize,
) -> Result<i64, ConsoleError> {
    let one = [partition];
    let offsets = |ts| kafka::list_offsets(shard, topic, &one, ts);
    let first =
        |m: std::collections::BTreeMap<i32, (i64, i64)>| m.get(&partition).map_or(0, |o| o.0);
    match request.param("from").unwrap_or("beginning") {
        "beginning" => Ok(first(offsets(kafka::OFFSET_EARLIEST).await?)),
        "end" => {
            let start = first(offsets(kafka::OFFSET_EARLIEST).await?);
            let end = first(offsets(kafka::OFFSET_LATEST).await?);
            Ok((end - limit as i64).max(start))
        }
        "offset" => parse_number(request, "offset")?
            .ok_or_else(|| ConsoleError::BadRequest("from=offset needs offset=N".into())),
        "timestamp" => {
            let ms: i64 = parse_number(request, "timestamp")?.ok_or_else(|| {
                ConsoleError::BadRequest("from=timestamp needs timestamp=MS".into())
            })?;
            let at = first(offsets(ms).await?);
            if at >= 0 {
                return Ok(at);
            }
            Ok(first(offsets(kafka::OFFSET_LATEST).await?))
        }
        other => Err(ConsoleError::BadRequest(format!(
            "from {other:?}: expected beginning, end, offset or timestamp"
        ))),
    }
}

/// One fetch of `partition` from `offset`: (records bytes, high watermark,
/// log start).
pub(super) async fn fetch_once(
    shard: &Rc<Shard>,
    topic: &str,
    partition: i32,
    offset: i64,
    max_bytes: i32,
) -> Result<(Bytes, i64, i64), ConsoleError> {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(max_bytes)
        .with_isolation_level(READ_UNCOMMITTED)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(offset)
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(max_bytes)])]);
    let answer = kafka::call(shard, FETCH_VERSION, &request).await?;
    check(answer.error_code, "fetch")?;
    let data = answer
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| ConsoleError::Internal("fetch: partition missing".into()))?;
    check(
        data.error_code,
        &format!("fetch {topic}/{partition} at {offset}"),
    )?;
    let records = data.records.clone().unwrap_or_default();
    Ok((records, data.high_watermark, data.log_start_offset))
}

/// Decodes whole batches into records (control records dropped).
pub(super) fn decode_records(bytes: Bytes) -> Result<Vec<Record>, ConsoleError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut raw = bytes;
    let set = RecordBatchDecoder::decode(&mut raw)
        .map_err(|e| ConsoleError::Internal(format!("decoding fetched records: {e}")))?;
    Ok(set.records.into_iter().filter(|r| !r.control).collect())
}

/// `GET /v1/topics/{topic}/messages?partition=&from=&offset=&timestamp=&limit=&decode=&key=&value=&header=`.
pub(super) async fn browse(shard: &Rc<Shard>, topic: &str, request: &Request) -> ConsoleResult {
    let partitions = kafka::partition_count(shard, topic).await?;
    let partition: i32 = parse_number(request, "partition")?.unwrap_or(0);
    if !(0..partitions).contains(&partition) {
        return Err(ConsoleError::NotFound(format!(
            "topic {topic:?} has no partition {partition} (it has {partitions})"
        )));
    }
    let limit = parse_number::<usize>(request, "limit")?
        .unwrap_or(LIMIT_DEFAULT)
        .clamp(1, LIMIT_MAX);
    let decode = Decode::parse(request.param("decode"))?;
    let text = |name: &str| {
        request
            .param(name)
            .filter(|v| !v.is_empty())
            .map(String::from)
    };
    let filters = Filters {
        key: text("key"),
        value: text("value"),
        header: text("header"),
    };
    let mut offset = start_offset(shard, topic, partition, request, limit).await?;
    let mut rows = Vec::new();
    let mut scanned = 0usize;
    let (mut high_watermark, mut log_start) = (0, 0);
    while rows.len() < limit && scanned < SCAN_BYTES_MAX {
        let (bytes, hw, ls) =
            fetch_once(shard, topic, partition, offset.max(0), FETCH_BYTES_MAX).await?;
        (high_watermark, log_start) = (hw, ls);
        if offset < log_start {
            offset = log_start;
        }
        scanned += bytes.len();
        let records = decode_records(bytes)?;
        let Some(last) = records.last().map(|r| r.offset) else {
            break;
        };
        let from = offset;
        for r in records.iter().filter(|r| r.offset >= from) {
            if rows.len() == limit {
                break;
            }
            offset = r.offset + 1;
            if filters.keep(r) {
                rows.push(record_json(partition, r, decode));
            }
        }
        if rows.len() < limit {
            offset = offset.max(last + 1);
        }
        if offset >= high_watermark {
            break;
        }
    }
    Ok(json!({
        "topic": topic,
        "partition": partition,
        "partitions": partitions,
        "log_start_offset": log_start,
        "high_watermark": high_watermark,
        "next_offset": offset,
        "scanned_bytes": scanned,
        "scan_limited": scanned >= SCAN_BYTES_MAX,
        "filtered": !filters.is_empty(),
        "messages": rows,
    }))
}

/// A header of a produced message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Header {
    key: String,
    value: Option<String>,
}

/// Body of `POST /v1/topics/{topic}/messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProduceMessage {
    /// Partition (default 0).
    #[serde(default)]
    partition: i32,
    key: Option<String>,
    value: Option<String>,
    #[serde(default)]
    headers: Vec<Header>,
}

/// `POST /v1/topics/{topic}/messages`: one record, acks=all.
pub(super) async fn produce(
    shard: &Rc<Shard>,
    topic: &str,
    body: &ProduceMessage,
) -> ConsoleResult {
    refuse_internal_topic("produce to", topic)?;
    let partitions = kafka::partition_count(shard, topic).await?;
    if !(0..partitions).contains(&body.partition) {
        return Err(ConsoleError::BadRequest(format!(
            "topic {topic:?} has no partition {} (it has {partitions})",
            body.partition
        )));
    }
    let text = |t: &String| Bytes::from(t.clone().into_bytes());
    let headers = body
        .headers
        .iter()
        .map(|h| {
            (
                StrBytes::from_string(h.key.clone()),
                h.value.as_ref().map(text),
            )
        })
        .collect();
    let record = crate::cli::produce::record(
        body.key.as_ref().map(text),
        body.value.as_ref().map(text),
        headers,
    );
    let mut batch = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut batch, std::iter::once(&record), &options)
        .map_err(|e| ConsoleError::Internal(format!("encoding the record: {e}")))?;
    let request = ProduceRequest::default()
        .with_acks(ACKS_ALL)
        .with_timeout_ms(PRODUCE_TIMEOUT_MS)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(body.partition)
                .with_records(Some(batch.freeze()))])]);
    let answer = kafka::call(shard, PRODUCE_VERSION, &request).await?;
    let result = answer
        .responses
        .iter()
        .flat_map(|t| &t.partition_responses)
        .next()
        .ok_or_else(|| ConsoleError::Internal("produce: no partition answer".into()))?;
    check_message(
        result.error_code,
        result.error_message.as_ref(),
        &format!("produce to {topic}"),
    )?;
    Ok(json!({
        "topic": topic,
        "partition": body.partition,
        "offset": result.base_offset,
    }))
}
