//! One file per Kafka API. Each declares the version range it serves
//! ([`ApiSpec`]); the dispatcher refuses other versions before the handler
//! runs, and ApiVersions advertises exactly the table in [`SUPPORTED_APIS`].
//!
//! A handler takes the decoded request and returns the response struct; the
//! dispatcher encodes it with the matching response header. Kafka errors are
//! error codes inside responses. The connection is closed only where Kafka
//! closes it: an unknown API key, an unsupported version of an API other than
//! ApiVersions, or a body that does not decode.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod api_versions;
mod authorized_operations;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_transactions;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod produce;
mod produce_policy;
pub mod sync_group;
mod topics;
pub mod txn_offset_commit;
pub mod write_txn_markers;

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable};
use tracing::warn;

use crate::protocol::frame::{encode_response, parse_request_header, ParsedHeader};
use crate::shard::Shard;

/// An API and the versions this broker serves.
#[derive(Clone, Copy, Debug)]
pub struct ApiSpec {
    /// The API.
    pub key: ApiKey,
    /// Lowest version served.
    pub min: i16,
    /// Highest version served.
    pub max: i16,
}

/// Every API this broker implements, with its version range.
pub const SUPPORTED_APIS: &[ApiSpec] = &[
    produce::API,
    init_producer_id::API,
    fetch::API,
    list_offsets::API,
    metadata::API,
    api_versions::API,
    create_topics::API,
    delete_topics::API,
    create_partitions::API,
    describe_cluster::API,
    // configs and log lifecycle (metadata/topic_config.rs, storage/retention.rs)
    describe_configs::API,
    alter_configs::API,
    incremental_alter_configs::API,
    delete_records::API,
    // consumer groups (src/group/)
    find_coordinator::API,
    join_group::API,
    sync_group::API,
    heartbeat::API,
    leave_group::API,
    offset_commit::API,
    offset_fetch::API,
    list_groups::API,
    describe_groups::API,
    delete_groups::API,
    offset_delete::API,
    // transactions (src/txn/)
    add_partitions_to_txn::API,
    add_offsets_to_txn::API,
    end_txn::API,
    txn_offset_commit::API,
    describe_transactions::API,
    list_transactions::API,
    write_txn_markers::API,
    // KIP-848 consumer groups (src/group/consumer/)
    consumer_group_heartbeat::API,
    consumer_group_describe::API,
];

/// The served range of an API, if it is implemented.
pub fn supported(key: ApiKey) -> Option<ApiSpec> {
    SUPPORTED_APIS.iter().copied().find(|s| s.key == key)
}

/// What a request handler hands the connection.
pub struct RequestContext {
    /// The shard the connection lives on.
    pub shard: Rc<Shard>,
    /// The request's API version.
    pub version: i16,
    /// The client's id from the request header.
    pub client_id: Option<String>,
}

/// What the connection does with a request.
#[derive(Debug)]
pub enum Outcome {
    /// Send this size-prefixed response frame.
    Respond(Bytes),
    /// Send this size-prefixed frame made of parts, back to back (Fetch:
    /// encoded metadata interleaved with shared record slices; see
    /// `protocol::fetch_writer`).
    RespondParts(crate::protocol::fetch_writer::ResponseParts),
    /// Send nothing (Produce with acks=0).
    NoResponse,
    /// Close the connection, logging why.
    Close(String),
}

/// Decodes, dispatches and answers one request frame (size prefix removed),
/// counting it in the shard's metrics (`ops::metrics`): API, latency, bytes
/// in and out, and in flight while it runs (graceful stop drains those).
pub async fn handle_frame(shard: Rc<Shard>, frame: Bytes) -> Outcome {
    use crate::ops::metrics;
    use crate::protocol::frame::FRAME_SIZE_PREFIX_BYTES;
    let _in_flight = metrics::request_started();
    let started = std::time::Instant::now();
    let api_key = frame
        .get(..2)
        .map_or(-1, |b| i16::from_be_bytes([b[0], b[1]]));
    let bytes_in = frame.len() + FRAME_SIZE_PREFIX_BYTES;
    let drop_every = shard.config.fault_drop_produce_response_every;
    let mut outcome = handle_frame_uncounted(shard, frame).await;
    if api_key == PRODUCE_API_KEY && drop_every > 0 && fault_drop_this_response(drop_every) {
        // Test-only fault injection (off by default): the records are
        // appended but the client never hears so, and retries.
        outcome = Outcome::Close("fault injection: Produce response dropped".into());
    }
    let bytes_out = match &outcome {
        Outcome::Respond(response) => response.len(),
        Outcome::RespondParts(parts) => parts.total_bytes(),
        _ => 0,
    };
    metrics::record_request(api_key, started.elapsed(), bytes_in, bytes_out);
    outcome
}

/// Produce's API key.
const PRODUCE_API_KEY: i16 = 0;

thread_local! {
    static PRODUCE_RESPONSES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Whether this shard's next Produce response is the `every`th one.
fn fault_drop_this_response(every: u64) -> bool {
    PRODUCE_RESPONSES.with(|n| {
        n.set(n.get() + 1);
        n.get() % every == 0
    })
}

async fn handle_frame_uncounted(shard: Rc<Shard>, mut frame: Bytes) -> Outcome {
    let header = match parse_request_header(&mut frame) {
        Ok(h) => h,
        Err(e) => return Outcome::Close(format!("bad request header: {e}")),
    };
    let Some(key) = header.api_key else {
        return Outcome::Close(format!("unknown API key {}", header.api_key_raw));
    };
    let spec = supported(key).filter(|s| (s.min..=s.max).contains(&header.api_version));
    if spec.is_none() {
        if key == ApiKey::ApiVersions {
            return respond_or_close(&header, 0, &api_versions::unsupported_version_response());
        }
        return Outcome::Close(format!(
            "unsupported version {} of {key:?}",
            header.api_version
        ));
    }
    let ctx = RequestContext {
        shard,
        version: header.api_version,
        client_id: header.client_id.as_ref().map(|c| c.to_string()),
    };
    dispatch(ctx, key, &header, frame).await
}

macro_rules! route {
    ($ctx:ident, $key:ident, $header:ident, $body:ident, { $($api:ident => $module:ident),* $(,)? }) => {
        match $key {
            $(ApiKey::$api => match decode(&mut $body, $ctx.version) {
                Ok(request) => {
                    let version = $ctx.version;
                    let response = $module::handle(&$ctx, request).await;
                    respond_or_close(&$header, version, &response)
                }
                Err(e) => Outcome::Close(format!("{:?} v{} body does not decode: {e}", $key, $ctx.version)),
            },)*
            ApiKey::Fetch => match decode(&mut $body, $ctx.version) {
                Ok(request) => {
                    let response = fetch::handle(&$ctx, request).await;
                    fetch::respond(&$header, $ctx.version, &response)
                }
                Err(e) => Outcome::Close(format!("Fetch v{} body does not decode: {e}", $ctx.version)),
            },
            ApiKey::Produce => match decode(&mut $body, $ctx.version) {
                Ok(request) => {
                    let version = $ctx.version;
                    match produce::handle(&$ctx, request).await {
                        Some(response) => respond_or_close(&$header, version, &response),
                        None => Outcome::NoResponse,
                    }
                }
                Err(e) => Outcome::Close(format!("Produce v{} body does not decode: {e}", $ctx.version)),
            },
            other => Outcome::Close(format!("{other:?} is not implemented")),
        }
    };
}

async fn dispatch(
    ctx: RequestContext,
    key: ApiKey,
    header: &ParsedHeader,
    mut body: Bytes,
) -> Outcome {
    route!(ctx, key, header, body, {
        ApiVersions => api_versions,
        InitProducerId => init_producer_id,
        Metadata => metadata,
        ListOffsets => list_offsets,
        CreateTopics => create_topics,
        DeleteTopics => delete_topics,
        CreatePartitions => create_partitions,
        DescribeCluster => describe_cluster,
        DescribeConfigs => describe_configs,
        AlterConfigs => alter_configs,
        IncrementalAlterConfigs => incremental_alter_configs,
        DeleteRecords => delete_records,
        FindCoordinator => find_coordinator,
        JoinGroup => join_group,
        SyncGroup => sync_group,
        Heartbeat => heartbeat,
        LeaveGroup => leave_group,
        OffsetCommit => offset_commit,
        OffsetFetch => offset_fetch,
        ListGroups => list_groups,
        DescribeGroups => describe_groups,
        DeleteGroups => delete_groups,
        OffsetDelete => offset_delete,
        AddPartitionsToTxn => add_partitions_to_txn,
        AddOffsetsToTxn => add_offsets_to_txn,
        EndTxn => end_txn,
        TxnOffsetCommit => txn_offset_commit,
        DescribeTransactions => describe_transactions,
        ListTransactions => list_transactions,
        WriteTxnMarkers => write_txn_markers,
        ConsumerGroupHeartbeat => consumer_group_heartbeat,
        ConsumerGroupDescribe => consumer_group_describe,
    })
}

fn decode<T: Decodable>(body: &mut Bytes, version: i16) -> anyhow::Result<T> {
    T::decode(body, version)
}

fn respond_or_close<T: Encodable>(header: &ParsedHeader, version: i16, body: &T) -> Outcome {
    let Some(key) = header.api_key else {
        return Outcome::Close("unknown API key".into());
    };
    match encode_response(
        header.correlation_id,
        key.response_header_version(version),
        body,
        version,
    ) {
        Ok(frame) => Outcome::Respond(frame),
        Err(e) => {
            warn!("encoding {key:?} v{version} response failed: {e}");
            Outcome::Close(format!("response encoding failed: {e}"))
        }
    }
}
