//! DescribeCluster (key 60), v0-1: this broker is the whole cluster and its
//! controller.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::authorized_operations::{authorized_operations, Resource};
use super::{ApiSpec, RequestContext};

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::DescribeCluster,
    min: 0,
    max: 1,
};

/// Answers DescribeCluster.
pub async fn handle(
    ctx: &RequestContext,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let config = &ctx.shard.config;
    let broker = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(config.node_id))
        .with_host(StrBytes::from_string(ctx.connection.listener.advertised_host.clone()))
        .with_port(ctx.connection.listener.advertised_port);
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(
            ctx.shard.snapshot().cluster_id.clone(),
        ))
        .with_controller_id(BrokerId(config.node_id))
        .with_brokers(vec![broker])
        .with_cluster_authorized_operations(authorized_operations(
            Resource::Cluster,
            request.include_cluster_authorized_operations,
        ))
}
