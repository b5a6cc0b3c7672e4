//! Metadata (key 3), v0-12. A single node leads every partition, and
//! replicas and ISR are this broker alone; in a cluster the brokers,
//! controller, leaders and replicas come from the snapshot's cluster view
//! (fenced brokers are not listed; a partition without a leader answers
//! LEADER_NOT_AVAILABLE with leader -1, as Kafka does). Unknown topics are
//! created when the broker and the request (v4+) allow it, as Kafka's
//! auto.create.topics.enable does.
//!
//! With an authorizer, a principal sees only the topics it may DESCRIBE
//! (others are left out of a full listing, and TOPIC_AUTHORIZATION_FAILED
//! when named), and auto-creation needs CREATE on the cluster or the
//! topic (`topics::topic_or_create`).

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::authorized_operations::{
    authorized_operations, Resource, AUTHORIZED_OPERATIONS_OMITTED,
};
use super::topics::topic_or_create;
use super::{ApiSpec, RequestContext};
use crate::security::acl::{Operation, ResourceType};
use crate::metadata::{is_internal_topic, ClusterView, PartitionState, TopicMeta, NO_LEADER};

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::Metadata,
    min: 0,
    max: 12,
};

/// Answers Metadata.
pub async fn handle(ctx: &RequestContext, request: MetadataRequest) -> MetadataResponse {
    let config = &ctx.shard.config;
    // v0 has no flag and always auto-creates; v1-3 too (the flag came in v4).
    let allow_auto_create = ctx.version < 4 || request.allow_auto_topic_creation;
    // The flags exist from v8 (the cluster one until v10): older requests
    // decode them false, so their answers carry the omitted marker.
    let include_topic_operations = request.include_topic_authorized_operations;
    let cluster_operations = authorized_operations(
        ctx,
        Resource::Cluster,
        "",
        request.include_cluster_authorized_operations,
    );
    let mut topics = Vec::new();
    match request.topics {
        // v0: an empty list means all topics; v1+: null means all.
        None => topics.extend(all_topics(ctx)),
        Some(list) if list.is_empty() && ctx.version == 0 => topics.extend(all_topics(ctx)),
        Some(list) => {
            for wanted in list {
                let name = match (
                    &wanted.name,
                    ctx.shard.snapshot().topic_by_id(&wanted.topic_id),
                ) {
                    (Some(name), _) => name.0.to_string(),
                    (None, Some(t)) if !may_describe(ctx, &t.name) => {
                        topics.push(
                            MetadataResponseTopic::default()
                                .with_topic_id(wanted.topic_id)
                                .with_error_code(ResponseError::TopicAuthorizationFailed.code()),
                        );
                        continue;
                    }
                    (None, Some(t)) => t.name.to_string(),
                    (None, None) => {
                        topics.push(
                            MetadataResponseTopic::default()
                                .with_topic_id(wanted.topic_id)
                                .with_error_code(ResponseError::UnknownTopicId.code()),
                        );
                        continue;
                    }
                };
                // Kafka: a topic named but not describable is refused,
                // whether it exists or not (no existence is revealed).
                if !may_describe(ctx, &name) {
                    topics.push(
                        MetadataResponseTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(name))))
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code()),
                    );
                    continue;
                }
                topics.push(match topic_or_create(ctx, &name, allow_auto_create).await {
                    Ok(t) => describe_topic(&t, config.node_id),
                    Err(code) => MetadataResponseTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(name))))
                        .with_error_code(code),
                });
            }
        }
    }
    let topics = topics
        .into_iter()
        .map(|t| {
            // v0 has no is_internal.
            let internal =
                ctx.version >= 1 && t.name.as_ref().is_some_and(|n| is_internal_topic(&n.0));
            let operations = match (t.error_code, &t.name) {
                (0, Some(name)) => {
                    authorized_operations(ctx, Resource::Topic, &name.0, include_topic_operations)
                }
                _ => AUTHORIZED_OPERATIONS_OMITTED,
            };
            t.with_topic_authorized_operations(operations)
                .with_is_internal(internal)
        })
        .collect();
    let snapshot = ctx.shard.snapshot();
    let (brokers, controller_id) = match &snapshot.cluster {
        Some(cluster) => (
            cluster_brokers(cluster, ctx.connection.listener.protocol.name()),
            cluster.controller_id,
        ),
        None => (
            vec![MetadataResponseBroker::default()
                .with_node_id(BrokerId(config.node_id))
                .with_host(StrBytes::from_string(
                    ctx.connection.listener.advertised_host.clone(),
                ))
                .with_port(ctx.connection.listener.advertised_port)],
            config.node_id,
        ),
    };
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_string(snapshot.cluster_id.clone())))
        .with_controller_id(BrokerId(controller_id))
        .with_topics(topics)
        .with_cluster_authorized_operations(cluster_operations)
}

fn all_topics(ctx: &RequestContext) -> Vec<MetadataResponseTopic> {
    let node = ctx.shard.config.node_id;
    ctx.shard
        .snapshot()
        .topics
        .values()
        .filter(|t| may_describe(ctx, &t.name))
        .map(|t| describe_topic(t, node))
        .collect()
}

/// Kafka: Metadata shows a topic only to a principal with DESCRIBE on it;
/// a listing of all topics leaves the others out.
fn may_describe(ctx: &RequestContext, topic: &str) -> bool {
    ctx.authorize(Operation::Describe, ResourceType::Topic, topic)
}

/// The live brokers of a cluster, by id.
/// Each one's address is the one on `listener`, the listener the client
/// came in on (Kafka's behaviour).
fn cluster_brokers(cluster: &ClusterView, listener: &str) -> Vec<MetadataResponseBroker> {
    cluster
        .live_brokers()
        .map(|b| {
            let (host, port) = b.address_on(listener);
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(host.to_string()))
                .with_port(port)
        })
        .collect()
}

fn describe_topic(topic: &TopicMeta, node_id: i32) -> MetadataResponseTopic {
    let partitions = match &topic.placement {
        Some(placement) => placement
            .iter()
            .enumerate()
            .map(|(p, state)| describe_placed(p as i32, state))
            .collect(),
        None => (0..topic.partition_count())
            .map(|p| {
                MetadataResponsePartition::default()
                    .with_partition_index(p)
                    .with_leader_id(BrokerId(node_id))
                    .with_leader_epoch(crate::metadata::SINGLE_NODE_LEADER_EPOCH)
                    .with_replica_nodes(vec![BrokerId(node_id)])
                    .with_isr_nodes(vec![BrokerId(node_id)])
            })
            .collect(),
    };
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(
            topic.name.to_string(),
        ))))
        .with_topic_id(topic.id)
        .with_partitions(partitions)
}

/// One partition of a cluster topic.
fn describe_placed(index: i32, state: &PartitionState) -> MetadataResponsePartition {
    let ids = |nodes: &[i32]| nodes.iter().map(|n| BrokerId(*n)).collect::<Vec<_>>();
    let error = match state.leader {
        NO_LEADER => ResponseError::LeaderNotAvailable.code(),
        _ => 0,
    };
    MetadataResponsePartition::default()
        .with_error_code(error)
        .with_partition_index(index)
        .with_leader_id(BrokerId(state.leader))
        .with_leader_epoch(state.leader_epoch)
        .with_replica_nodes(ids(&state.replicas))
        .with_isr_nodes(ids(&state.isr))
}
