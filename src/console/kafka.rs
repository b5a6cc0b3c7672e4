//! The console's way into the broker: a kafka-protocol request, encoded
//! as a frame and handed to `handlers::handle_frame` on shard 0, exactly
//! as a frame read from a client connection would be.
//!
//! Why: every console action then has Kafka's semantics by construction
//! (validation, error codes, routing to owner shards, the group
//! coordinator, the fetch read path with its byte bounds), and nothing here
//! can drift from what clients see. The cost, an encode and a decode per
//! call, is small against an HTTP round trip.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use super::ConsoleError;
use crate::handlers::{handle_frame, Outcome};
use crate::protocol::frame::FRAME_SIZE_PREFIX_BYTES;
use crate::protocol::record_slices::Slice;
use crate::security::ConnectionContext;
use crate::shard::Shard;

/// The client id the console's requests carry (visible in request logs).
pub const CONSOLE_CLIENT_ID: &str = "corestream-console";

/// Sends `request` at `version` through the broker's handler dispatch and
/// decodes the answer.
pub async fn call<R: Request>(
    shard: &Rc<Shard>,
    version: i16,
    request: &R,
) -> Result<R::Response, ConsoleError> {
    let api = R::KEY;
    let header = RequestHeader::default()
        .with_request_api_key(api)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str(CONSOLE_CLIENT_ID)));
    let mut frame = BytesMut::new();
    header
        .encode(&mut frame, R::header_version(version))
        .map_err(|e| ConsoleError::Internal(format!("encoding request header: {e}")))?;
    request
        .encode(&mut frame, version)
        .map_err(|e| ConsoleError::Internal(format!("encoding API {api} request: {e}")))?;
    let connection = console_connection(shard)?;
    let mut answer = match handle_frame(shard.clone(), frame.freeze(), None, connection, 0).await {
        Outcome::Respond(bytes) => bytes,
        Outcome::RespondParts(parts) => contiguous(parts.into_parts()).await?,
        Outcome::NoResponse => {
            return Err(ConsoleError::Internal(format!("API {api}: no response")))
        }
        Outcome::Close(why) => return Err(ConsoleError::Internal(format!("API {api}: {why}"))),
    };
    if answer.len() < FRAME_SIZE_PREFIX_BYTES {
        return Err(ConsoleError::Internal(format!("API {api}: short response")));
    }
    let _ = answer.split_to(FRAME_SIZE_PREFIX_BYTES);
    ResponseHeader::decode(&mut answer, R::Response::header_version(version))
        .map_err(|e| ConsoleError::Internal(format!("API {api} response header: {e}")))?;
    R::Response::decode(&mut answer, version)
        .map_err(|e| ConsoleError::Internal(format!("API {api} response: {e}")))
}

/// The connection the console's requests come in on: a client of the
/// first listener (addresses in answers are that listener's), not subject
/// to its SASL, acting as `admin_ui_principal` (`console::access`). Its
/// peer, and so the host ACLs see, is [`CONSOLE_CLIENT_ID`], not an IP:
/// only ACLs for host `*` apply to the console.
pub fn console_connection(shard: &Shard) -> Result<Rc<ConnectionContext>, ConsoleError> {
    let listener = shard
        .config
        .listeners()
        .into_iter()
        .next()
        .ok_or_else(|| ConsoleError::Internal("no Kafka listener configured".to_string()))?;
    let connection = ConnectionContext::new(Rc::new(listener), CONSOLE_CLIENT_ID.to_string());
    *connection.principal.borrow_mut() = shard.config.security.admin_ui_principal.clone();
    Ok(Rc::new(connection))
}

/// Joins a fetch response's parts. File parts (cold segments) are read on
/// glommio's blocking pool: a `pread` must not run on the shard thread.
async fn contiguous(parts: Vec<Slice>) -> Result<Bytes, ConsoleError> {
    let mut out = BytesMut::new();
    for part in parts {
        match part {
            Slice::Mem(bytes) => out.extend_from_slice(&bytes),
            Slice::File(file) => {
                let bytes = glommio::executor()
                    .spawn_blocking(move || file.read_to_bytes())
                    .await
                    .map_err(|e| ConsoleError::Internal(format!("reading a segment: {e}")))?;
                out.extend_from_slice(&bytes);
            }
        }
    }
    Ok(out.freeze())
}

/// A Kafka error code as a console error (None for 0).
pub fn check(code: i16, what: &str) -> Result<(), ConsoleError> {
    if code == 0 {
        return Ok(());
    }
    Err(ConsoleError::Kafka {
        code,
        name: error_name(code),
        context: what.to_string(),
    })
}

/// Like [`check`], with the broker's own error message when it sent one.
pub fn check_message(
    code: i16,
    message: Option<&StrBytes>,
    what: &str,
) -> Result<(), ConsoleError> {
    match message {
        Some(m) if code != 0 && !m.is_empty() => check(code, &format!("{what}: {}", m.as_str())),
        _ => check(code, what),
    }
}

/// Kafka's name of an error code, e.g. "UNKNOWN_TOPIC_OR_PARTITION" (the
/// CLI's table: one home for it).
pub fn error_name(code: i16) -> String {
    crate::cli::client::kafka_error_name(code)
}

/// Kafka's TOPIC_AUTHORIZATION_FAILED.
pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;

/// ListOffsets' timestamp for "the log end".
pub const OFFSET_LATEST: i64 = -1;
/// ListOffsets' timestamp for "the log start".
pub const OFFSET_EARLIEST: i64 = -2;
/// Versions the console speaks (each within the served range: see the
/// test below).
pub mod versions {
    /// Metadata.
    pub const METADATA: i16 = 12;
    /// ListOffsets.
    pub const LIST_OFFSETS: i16 = 8;
}

/// A topic name for a request.
pub fn topic_name(name: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(StrBytes::from_string(name.to_string()))
}

/// Metadata of `topics` (all when `None`), never creating a topic.
pub async fn metadata(
    shard: &Rc<Shard>,
    topics: Option<&[&str]>,
) -> Result<kafka_protocol::messages::MetadataResponse, ConsoleError> {
    use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
    let request = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(topics.map(|names| {
            names
                .iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
                .collect()
        }));
    call(shard, versions::METADATA, &request).await
}

/// Partition count of `topic` (NotFound when it does not exist).
pub async fn partition_count(shard: &Rc<Shard>, topic: &str) -> Result<i32, ConsoleError> {
    let answer = metadata(shard, Some(&[topic])).await?;
    let meta = answer
        .topics
        .first()
        .ok_or_else(|| ConsoleError::NotFound(format!("topic {topic:?} not found")))?;
    if meta.error_code == TOPIC_AUTHORIZATION_FAILED {
        // Refused, not missing: 403 (Kafka answers this whether or not
        // the topic exists).
        check(meta.error_code, &format!("topic {topic:?}"))?;
    }
    if meta.error_code != 0 {
        return Err(ConsoleError::NotFound(format!(
            "topic {topic:?}: {}",
            error_name(meta.error_code)
        )));
    }
    Ok(meta.partitions.len() as i32)
}

/// ListOffsets of `partitions` of `topic` at `timestamp` (or
/// [`OFFSET_LATEST`] / [`OFFSET_EARLIEST`]): partition -> (offset,
/// timestamp); offset -1 when no record is that late.
pub async fn list_offsets(
    shard: &Rc<Shard>,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
) -> Result<std::collections::BTreeMap<i32, (i64, i64)>, ConsoleError> {
    use kafka_protocol::messages::list_offsets_request::{
        ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
    };
    let request = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|&p| {
                        ListOffsetsPartition::default()
                            .with_partition_index(p)
                            .with_current_leader_epoch(-1)
                            .with_timestamp(timestamp)
                    })
                    .collect(),
            )]);
    let answer = call(shard, versions::LIST_OFFSETS, &request).await?;
    let mut out = std::collections::BTreeMap::new();
    for p in answer.topics.iter().flat_map(|t| &t.partitions) {
        check(
            p.error_code,
            &format!("offsets of {topic}/{}", p.partition_index),
        )?;
        out.insert(p.partition_index, (p.offset, p.timestamp));
    }
    Ok(out)
}
