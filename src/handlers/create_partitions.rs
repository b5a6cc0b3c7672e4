//! CreatePartitions (key 37), v0-3: grows a topic; new partitions are spread
//! over the least-loaded shards. Explicit assignments may only name this
//! broker. Internal topics are refused (INVALID_REQUEST).

use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{ApiKey, CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::config::PARTITIONS_PER_TOPIC_MAX;
use crate::metadata::{internal_topics, is_internal_topic};
use crate::shard::MetaChange;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::CreatePartitions,
    min: 0,
    max: 3,
};

/// Answers CreatePartitions.
pub async fn handle(
    ctx: &RequestContext,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        let node = ctx.shard.config.node_id;
        let (code, message) = match ctx.shard.snapshot().topic(&name) {
            // Kafka: ALTER on the topic.
            _ if !ctx.authorize(Operation::Alter, ResourceType::Topic, &name) => {
                (ResponseError::TopicAuthorizationFailed.code(), None)
            }
            None => (ResponseError::UnknownTopicOrPartition.code(), None),
            // More partitions would move groups and transactional ids to
            // other partitions, away from their state.
            Some(_) if is_internal_topic(&name) => (
                ResponseError::InvalidRequest.code(),
                Some(internal_topics::admin_refusal("add partitions to", &name)),
            ),
            Some(_) if topic.count > PARTITIONS_PER_TOPIC_MAX => (
                ResponseError::InvalidPartitions.code(),
                Some(format!("Number of partitions must be at most {PARTITIONS_PER_TOPIC_MAX}.")),
            ),
            Some(_) if topic.assignments.iter().flatten().any(|a| a.broker_ids.iter().any(|b| b.0 != node)) => (
                ResponseError::InvalidReplicaAssignment.code(),
                Some(format!("Replica assignments may only name broker {node}.")),
            ),
            Some(t) if topic.count <= t.partition_count() => (
                ResponseError::InvalidPartitions.code(),
                Some(format!(
                    "Topic currently has {} partitions, which is higher than or equal to the requested {}.",
                    t.partition_count(),
                    topic.count
                )),
            ),
            Some(_) if request.validate_only => (0, None),
            Some(_) => ctx.shard.change_metadata(MetaChange::CreatePartitions { name, total: topic.count }).await,
        };
        results.push(
            result
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_string)),
        );
    }
    CreatePartitionsResponse::default().with_results(results)
}
