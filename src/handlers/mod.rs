//! One file per Kafka API, named after it (`ApiKey::OffsetCommit` is
//! `offset_commit.rs`). Each declares the version range it serves
//! ([`ApiSpec`]); the dispatcher refuses other versions before the handler
//! runs, and ApiVersions advertises exactly the table in [`SUPPORTED_APIS`].
//! The list of served APIs is written once, in the `served_apis!`
//! invocation below.
//!
//! A handler takes the decoded request and returns the response struct; the
//! dispatcher encodes it with the matching response header. Kafka errors are
//! error codes inside responses. The connection is closed only where Kafka
//! closes it: an unknown API key, an unsupported version of an API other than
//! ApiVersions, or a body that does not decode.

mod authorized_operations;
mod leader_hint;
mod legacy;
mod produce_policy;
mod topics;

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable};
use tracing::warn;

use crate::protocol::frame::{encode_response, parse_request_header, ParsedHeader};
use crate::security::acl::{Operation, ResourceType, CLUSTER_RESOURCE_NAME};
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

/// The one list of served APIs: `ApiKey variant => handler module`, each
/// module a file of this folder with its `API: ApiSpec` and `handle`. From
/// it come the module declarations, [`SUPPORTED_APIS`] (what ApiVersions
/// advertises) and the routing in `route`, so an API cannot be advertised
/// without a route, nor routed without being advertised; a compile-time
/// check holds each module's `API.key` to the key it is listed under.
/// `special` APIs are declared and advertised here but routed by hand in
/// [`dispatch`]: Produce may have no answer (acks=0) and Fetch's answer
/// carries file ranges (`protocol::fetch_writer`).
macro_rules! served_apis {
    (
        special: { $($special_api:ident => $special_module:ident),* $(,)? }
        plain: { $($api:ident => $module:ident),* $(,)? }
    ) => {
        $(pub mod $special_module;)*
        $(pub mod $module;)*

        /// Every API this broker implements, with its version range.
        pub const SUPPORTED_APIS: &[ApiSpec] = &[$($special_module::API,)* $($module::API,)*];

        $(const _: () = assert!(
            $special_module::API.key as i16 == ApiKey::$special_api as i16,
            concat!(stringify!($special_module), "::API is not ", stringify!($special_api))
        );)*
        $(const _: () = assert!(
            $module::API.key as i16 == ApiKey::$api as i16,
            concat!(stringify!($module), "::API is not ", stringify!($api))
        );)*

        /// Decodes, handles and encodes a request of a `plain` API.
        async fn route(ctx: RequestContext, key: ApiKey, header: &ParsedHeader, mut body: Bytes) -> Outcome {
            match key {
                $(ApiKey::$api => match decode(&mut body, ctx.version) {
                    Ok(request) => {
                        let response = $module::handle(&ctx, request).await;
                        respond_or_close(header, ctx.version, &response)
                    }
                    Err(e) => Outcome::Close(format!("{key:?} v{} body does not decode: {e}", ctx.version)),
                },)*
                other => Outcome::Close(format!("{other:?} is not implemented")),
            }
        }
    };
}

served_apis! {
    special: {
        Produce => produce,
        Fetch => fetch,
    }
    plain: {
        InitProducerId => init_producer_id,
        ListOffsets => list_offsets,
        Metadata => metadata,
        ApiVersions => api_versions,
        CreateTopics => create_topics,
        DeleteTopics => delete_topics,
        CreatePartitions => create_partitions,
        DescribeCluster => describe_cluster,
        // the controller quorum (src/cluster/)
        DescribeQuorum => describe_quorum,
        // configs and log lifecycle (metadata/topic_config.rs, storage/retention.rs)
        DescribeConfigs => describe_configs,
        AlterConfigs => alter_configs,
        IncrementalAlterConfigs => incremental_alter_configs,
        DeleteRecords => delete_records,
        // replication (storage/epochs.rs, shard/partition/epochs.rs)
        OffsetForLeaderEpoch => offset_for_leader_epoch,
        ElectLeaders => elect_leaders,
        // consumer groups (src/group/)
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
        // transactions (src/txn/)
        AddPartitionsToTxn => add_partitions_to_txn,
        AddOffsetsToTxn => add_offsets_to_txn,
        EndTxn => end_txn,
        TxnOffsetCommit => txn_offset_commit,
        DescribeTransactions => describe_transactions,
        ListTransactions => list_transactions,
        WriteTxnMarkers => write_txn_markers,
        // KIP-848 consumer groups (src/group/consumer/)
        ConsumerGroupHeartbeat => consumer_group_heartbeat,
        ConsumerGroupDescribe => consumer_group_describe,
        // security (src/security/)
        SaslHandshake => sasl_handshake,
        SaslAuthenticate => sasl_authenticate,
        DescribeUserScramCredentials => describe_user_scram_credentials,
        AlterUserScramCredentials => alter_user_scram_credentials,
        // ACLs (src/security/acl/)
        DescribeAcls => describe_acls,
        CreateAcls => create_acls,
        DeleteAcls => delete_acls,
        // client quotas (src/quota/)
        DescribeClientQuotas => describe_client_quotas,
        AlterClientQuotas => alter_client_quotas,
    }
}

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
    /// The request's place in its connection's order
    /// (`server::request_order`); `None` outside a connection.
    pub admission: Option<crate::server::request_order::Admission>,
    /// The connection: its listener (whose address Metadata advertises),
    /// SASL state and principal.
    pub connection: Rc<crate::security::ConnectionContext>,
    /// The quota throttle the connection's reader decided for this request
    /// (`quota`), in ms; 0 when none applies. Produce and Fetch answer it.
    pub throttle_ms: i32,
}

impl RequestContext {
    /// Whether the connection's principal may do `operation` on the named
    /// resource (`security::acl`). Without `--authorizer acl` this is
    /// one branch that says yes; with it, a super-user set lookup and an
    /// index lookup in the shard's snapshot, allocating nothing.
    #[inline]
    pub fn authorize(&self, operation: Operation, resource_type: ResourceType, name: &str) -> bool {
        let Some(authorizer) = &self.shard.config.security.authorizer else {
            return true;
        };
        let snapshot = self.shard.snapshot();
        let principal = self.connection.principal.borrow();
        authorizer.authorize(
            &snapshot.acls,
            &principal,
            &self.connection.host,
            operation,
            resource_type,
            name,
        )
    }

    /// [`RequestContext::authorize`] on the cluster resource.
    pub fn authorize_cluster(&self, operation: Operation) -> bool {
        self.authorize(operation, ResourceType::Cluster, CLUSTER_RESOURCE_NAME)
    }

    /// Whether the principal may do `operation` on some resource of the
    /// type (`AclIndex::authorize_any`).
    pub fn authorize_any(&self, operation: Operation, resource_type: ResourceType) -> bool {
        let Some(authorizer) = &self.shard.config.security.authorizer else {
            return true;
        };
        let snapshot = self.shard.snapshot();
        let principal = self.connection.principal.borrow();
        authorizer.authorize_any(
            &snapshot.acls,
            &principal,
            &self.connection.host,
            operation,
            resource_type,
        )
    }

    /// Whether an authorizer is on (`--authorizer acl`).
    pub fn authorizer_on(&self) -> bool {
        self.shard.config.security.authorizer.is_some()
    }

    /// The gate of the ACL APIs (Create/Describe/DeleteAcls): Kafka answers
    /// SECURITY_DISABLED without an authorizer and
    /// CLUSTER_AUTHORIZATION_FAILED without `operation` on the cluster.
    /// `Err` carries the code and message for every result.
    pub fn acl_api_gate(
        &self,
        operation: crate::security::acl::Operation,
    ) -> Result<(), (i16, &'static str)> {
        use kafka_protocol::ResponseError;
        if !self.authorizer_on() {
            return Err((
                ResponseError::SecurityDisabled.code(),
                "No Authorizer is configured.",
            ));
        }
        if !self.authorize_cluster(operation) {
            return Err((ResponseError::ClusterAuthorizationFailed.code(), ""));
        }
        Ok(())
    }

    /// Waits for this produce's turn to hand its batches to the owners:
    /// the connection's earlier produces have handed theirs
    /// (`server::request_order`).
    pub async fn dispatch_turn(&self) {
        if let Some(admission) = &self.admission {
            admission.dispatch_turn().await;
        }
    }

    /// Tells the connection this request handed all its partition work to
    /// the owners (Produce): its next produce may dispatch.
    pub fn dispatched(&self) {
        if let Some(admission) = &self.admission {
            admission.dispatched();
        }
    }
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
pub async fn handle_frame(
    shard: Rc<Shard>,
    frame: Bytes,
    admission: Option<crate::server::request_order::Admission>,
    connection: Rc<crate::security::ConnectionContext>,
    throttle_ms: i32,
) -> Outcome {
    use crate::ops::metrics;
    use crate::protocol::frame::FRAME_SIZE_PREFIX_BYTES;
    let started = std::time::Instant::now();
    let api_key = frame
        .get(..2)
        .map_or(-1, |b| i16::from_be_bytes([b[0], b[1]]));
    let _in_flight = metrics::request_started(api_key);
    let bytes_in = frame.len() + FRAME_SIZE_PREFIX_BYTES;
    let drop_every = shard.config.fault_drop_produce_response_every;
    // Only with quotas configured: what the request quota needs after
    // the request (its client id and connection).
    let quota = shard
        .quotas_configured()
        .then(|| (shard.clone(), connection.clone(), frame.clone()));
    let mut outcome =
        handle_frame_uncounted(shard, frame, admission, connection, throttle_ms).await;
    if let Some((shard, connection, frame)) = quota {
        let client_id = crate::quota::client_id_of(&frame);
        crate::quota::on_request_handled(
            &shard,
            &connection,
            api_key,
            client_id,
            started.elapsed(),
        );
    }
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

async fn handle_frame_uncounted(
    shard: Rc<Shard>,
    mut frame: Bytes,
    admission: Option<crate::server::request_order::Admission>,
    connection: Rc<crate::security::ConnectionContext>,
    throttle_ms: i32,
) -> Outcome {
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
        admission,
        connection,
        throttle_ms,
    };
    if crate::protocol::legacy::is_legacy(key, header.api_version) {
        return legacy::dispatch(ctx, key, &header, frame).await;
    }
    dispatch(ctx, key, &header, frame).await
}

/// Routes a request to its handler: Produce and Fetch here, every other
/// served API through `route` (from [`served_apis!`]).
async fn dispatch(
    ctx: RequestContext,
    key: ApiKey,
    header: &ParsedHeader,
    mut body: Bytes,
) -> Outcome {
    match key {
        ApiKey::Fetch => match decode(&mut body, ctx.version) {
            Ok(request) => {
                let response = fetch::handle(&ctx, request).await;
                fetch::respond(header, ctx.version, &response)
            }
            Err(e) => Outcome::Close(format!("Fetch v{} body does not decode: {e}", ctx.version)),
        },
        ApiKey::Produce => match decode(&mut body, ctx.version) {
            Ok(request) => match produce::handle(&ctx, request).await {
                Some(response) => respond_or_close(header, ctx.version, &response),
                None => Outcome::NoResponse,
            },
            Err(e) => Outcome::Close(format!(
                "Produce v{} body does not decode: {e}",
                ctx.version
            )),
        },
        other => route(ctx, other, header, body).await,
    }
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
