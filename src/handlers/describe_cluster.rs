//! DescribeCluster (key 60), v0-2: on a single node this broker is the
//! whole cluster and its controller; in a cluster, the live brokers and
//! the active controller.
//!
//! v2 (KIP-1073) may ask for fenced brokers too (`IncludeFencedBrokers`),
//! each marked `IsFenced`; `corestream cluster info` shows broker states
//! from it. Without the flag, and before v2, fenced brokers are left out,
//! as from Metadata.
//!
//! v1 (KIP-919) asks for an endpoint type: brokers (1) or controllers (2).
//! This is a broker endpoint, so, as Kafka's brokers do, it answers
//! `endpoint_type` 1 with itself, refuses controllers with
//! MISMATCHED_ENDPOINT_TYPE and an unknown type with
//! UNSUPPORTED_ENDPOINT_TYPE (v0 cannot ask, so it always means brokers).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::authorized_operations::{
    authorized_operations, Resource, AUTHORIZED_OPERATIONS_OMITTED,
};
use super::{ApiSpec, RequestContext};
use crate::metadata::{BrokerInfo, Snapshot};
use crate::security::acl::Operation;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::DescribeCluster,
    min: 0,
    max: 2,
};

/// KIP-919's endpoint types.
const ENDPOINT_TYPE_BROKER: i8 = 1;
/// See [`ENDPOINT_TYPE_BROKER`].
const ENDPOINT_TYPE_CONTROLLER: i8 = 2;

/// Answers DescribeCluster.
pub async fn handle(
    ctx: &RequestContext,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let snapshot = ctx.shard.snapshot();
    let listener = &ctx.connection.listener;
    let this_broker = BrokerInfo {
        id: ctx.shard.config.node_id,
        host: listener.advertised_host.clone(),
        port: listener.advertised_port,
        fenced: false,
        endpoints: Default::default(),
    };
    // Kafka: DESCRIBE on the cluster.
    if !ctx.authorize_cluster(Operation::Describe) {
        return DescribeClusterResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_endpoint_type(ENDPOINT_TYPE_BROKER)
            .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
    }
    let operations = authorized_operations(
        ctx,
        Resource::Cluster,
        "",
        request.include_cluster_authorized_operations,
    );
    let answer = describe(
        &snapshot,
        this_broker,
        &request,
        listener.protocol.name(),
    );
    match answer.error_code {
        0 => answer.with_cluster_authorized_operations(operations),
        _ => answer,
    }
}

/// The answer for a broker whose metadata is `snapshot`: on a single
/// node, `this_broker` alone; in a cluster, every live broker and the
/// active controller, at their addresses on `listener` (the client's).
fn describe(
    snapshot: &Snapshot,
    this_broker: BrokerInfo,
    request: &DescribeClusterRequest,
    listener: &str,
) -> DescribeClusterResponse {
    let refuse = |error: ResponseError, message: String| {
        DescribeClusterResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(StrBytes::from_string(message)))
            .with_endpoint_type(ENDPOINT_TYPE_BROKER)
    };
    match request.endpoint_type {
        ENDPOINT_TYPE_BROKER => {}
        ENDPOINT_TYPE_CONTROLLER => {
            return refuse(
                ResponseError::MismatchedEndpointType,
                "The request was sent to an endpoint of type BROKER, but we wanted an \
                 endpoint of type CONTROLLER"
                    .to_string(),
            )
        }
        other => {
            return refuse(
                ResponseError::UnsupportedEndpointType,
                format!("Unsupported endpoint type {other}"),
            )
        }
    }
    let (brokers, controller_id) = match &snapshot.cluster {
        Some(cluster) if request.include_fenced_brokers => (
            cluster.brokers.values().cloned().collect(),
            cluster.controller_id,
        ),
        Some(cluster) => (
            cluster.live_brokers().cloned().collect(),
            cluster.controller_id,
        ),
        None => (vec![this_broker.clone()], this_broker.id),
    };
    let brokers = brokers
        .into_iter()
        .map(|b| {
            let (host, port) = b.address_on(listener);
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(host.to_string()))
                .with_port(port)
                .with_is_fenced(b.fenced)
        })
        .collect();
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(snapshot.cluster_id.clone()))
        .with_controller_id(BrokerId(controller_id))
        .with_brokers(brokers)
        .with_endpoint_type(ENDPOINT_TYPE_BROKER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::ClusterView;
    use kafka_protocol::protocol::Encodable;
    use std::sync::Arc;

    fn request(endpoint_type: i8) -> DescribeClusterRequest {
        DescribeClusterRequest::default().with_endpoint_type(endpoint_type)
    }

    fn broker(id: i32, fenced: bool) -> BrokerInfo {
        BrokerInfo {
            id,
            host: "127.0.0.1".into(),
            port: 9000 + id,
            fenced,
            endpoints: Default::default(),
        }
    }

    fn single_node() -> Snapshot {
        Snapshot {
            cluster_id: "c".into(),
            ..Default::default()
        }
    }

    #[test]
    fn describe_cluster_v0_v1_brokers_endpoint_answers_itself() {
        let r = describe(&single_node(), broker(3, false), &request(ENDPOINT_TYPE_BROKER), "PLAINTEXT");
        assert_eq!((r.error_code, r.endpoint_type), (0, ENDPOINT_TYPE_BROKER));
        assert_eq!(r.brokers.len(), 1);
        assert_eq!(r.controller_id, BrokerId(3));
        assert_eq!(r.cluster_authorized_operations, i32::MIN, "not asked");
        for version in API.min..=API.max {
            let mut buf = bytes::BytesMut::new();
            r.encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("v{version}: {e}"));
        }
    }

    #[test]
    fn describe_cluster_v1_cluster_lists_live_brokers_and_the_controller() {
        let mut snapshot = single_node();
        snapshot.cluster = Some(Arc::new(ClusterView {
            local_node: 1,
            controller_id: 2,
            brokers: [(1, broker(1, false)), (2, broker(2, false)), (3, broker(3, true))]
                .into_iter()
                .collect(),
        }));
        let r = describe(&snapshot, broker(1, false), &request(ENDPOINT_TYPE_BROKER), "PLAINTEXT");
        let ids: Vec<i32> = r.brokers.iter().map(|b| b.broker_id.0).collect();
        assert_eq!(ids, vec![1, 2], "the fenced broker is left out");
        assert_eq!(r.controller_id, BrokerId(2));
        // v2 asks for fenced brokers too, each marked
        let with_fenced = request(ENDPOINT_TYPE_BROKER).with_include_fenced_brokers(true);
        let r = describe(&snapshot, broker(1, false), &with_fenced, "PLAINTEXT");
        let states: Vec<(i32, bool)> = r.brokers.iter().map(|b| (b.broker_id.0, b.is_fenced)).collect();
        assert_eq!(states, vec![(1, false), (2, false), (3, true)]);
        let mut buf = bytes::BytesMut::new();
        r.encode(&mut buf, 2).expect("v2 encodes");
    }

    #[test]
    fn describe_cluster_v1_controllers_and_unknown_endpoint_types_refused() {
        let r = describe(&single_node(), broker(0, false), &request(ENDPOINT_TYPE_CONTROLLER), "PLAINTEXT");
        assert_eq!(r.error_code, ResponseError::MismatchedEndpointType.code());
        assert!(r.brokers.is_empty());
        let r = describe(&single_node(), broker(0, false), &request(7), "PLAINTEXT");
        assert_eq!(r.error_code, ResponseError::UnsupportedEndpointType.code());
    }
}
