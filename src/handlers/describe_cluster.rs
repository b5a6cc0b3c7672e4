//! DescribeCluster (key 60), v0-1: this broker is the whole cluster and its
//! controller.
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

use super::authorized_operations::{authorized_operations, Resource};
use super::{ApiSpec, RequestContext};
use crate::config::Config;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::DescribeCluster,
    min: 0,
    max: 1,
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
    let cluster_id = ctx.shard.snapshot().cluster_id.clone();
    describe(&ctx.shard.config, cluster_id, &request)
}

/// The answer for this broker of the cluster `cluster_id`.
fn describe(
    config: &Config,
    cluster_id: String,
    request: &DescribeClusterRequest,
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
    let broker = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(config.node_id))
        .with_host(StrBytes::from_string(config.advertised_host.clone()))
        .with_port(config.advertised_port);
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(cluster_id))
        .with_controller_id(BrokerId(config.node_id))
        .with_brokers(vec![broker])
        .with_endpoint_type(ENDPOINT_TYPE_BROKER)
        .with_cluster_authorized_operations(authorized_operations(
            Resource::Cluster,
            request.include_cluster_authorized_operations,
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Flags;
    use kafka_protocol::protocol::Encodable;

    fn request(endpoint_type: i8) -> DescribeClusterRequest {
        DescribeClusterRequest::default().with_endpoint_type(endpoint_type)
    }

    #[test]
    fn describe_cluster_v0_v1_brokers_endpoint_answers_itself() {
        let config = Config::resolve(Flags::default()).unwrap();
        let r = describe(&config, "c".into(), &request(ENDPOINT_TYPE_BROKER));
        assert_eq!((r.error_code, r.endpoint_type), (0, ENDPOINT_TYPE_BROKER));
        assert_eq!(r.brokers.len(), 1);
        assert_eq!(r.controller_id, BrokerId(config.node_id));
        assert_eq!(r.cluster_authorized_operations, i32::MIN, "not asked");
        for version in API.min..=API.max {
            let mut buf = bytes::BytesMut::new();
            r.encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("v{version}: {e}"));
        }
    }

    #[test]
    fn describe_cluster_v1_controllers_and_unknown_endpoint_types_refused() {
        let config = Config::resolve(Flags::default()).unwrap();
        let r = describe(&config, "c".into(), &request(ENDPOINT_TYPE_CONTROLLER));
        assert_eq!(r.error_code, ResponseError::MismatchedEndpointType.code());
        assert!(r.brokers.is_empty());
        let r = describe(&config, "c".into(), &request(7));
        assert_eq!(r.error_code, ResponseError::UnsupportedEndpointType.code());
    }
}
