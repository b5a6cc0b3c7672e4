//! Topic lookups shared by the handlers, with Kafka's auto-creation.

use std::sync::Arc;

use kafka_protocol::ResponseError;

use super::RequestContext;
use crate::metadata::{is_internal_topic, validate_topic_name, TopicMeta};
use crate::security::acl::{Operation, ResourceType};
use crate::shard::{internal_topic, MetaChange};

/// The topic named `name`; when it does not exist and `auto_create` is set
/// (and the broker allows it), creates it with the default partition count
/// (an internal topic: as its coordinator does). Errors are Kafka error
/// codes for the caller's response.
pub(super) async fn topic_or_create(
    ctx: &RequestContext,
    name: &str,
    auto_create: bool,
) -> Result<Arc<TopicMeta>, i16> {
    if let Some(topic) = ctx.shard.snapshot().topic(name) {
        return Ok(topic.clone());
    }
    if validate_topic_name(name).is_err() {
        return Err(ResponseError::InvalidTopicException.code());
    }
    if !(auto_create && ctx.shard.config.auto_create_topics) {
        return Err(ResponseError::UnknownTopicOrPartition.code());
    }
    // Kafka: auto-creation needs CREATE on the cluster or on the topic.
    if !ctx.authorize_cluster(Operation::Create)
        && !ctx.authorize(Operation::Create, ResourceType::Topic, name)
    {
        return Err(ResponseError::TopicAuthorizationFailed.code());
    }
    // An internal topic is created as its coordinator would (partition
    // count, compaction), never with a client topic's defaults; one no
    // coordinator creates is not created at all.
    if is_internal_topic(name) {
        let Some(partitions) = internal_topic::partitions_for_topic(&ctx.shard.config, name) else {
            return Err(ResponseError::InvalidTopicException.code());
        };
        internal_topic::ensure(&ctx.shard, name, partitions).await?;
        return ctx
            .shard
            .snapshot()
            .topic(name)
            .cloned()
            .ok_or(ResponseError::UnknownTopicOrPartition.code());
    }
    let change = MetaChange::CreateTopic {
        name: name.to_string(),
        partitions: ctx.shard.config.default_partitions,
        configs: Default::default(),
        replication_factor: ctx.shard.config.cluster.default_replication_factor,
    };
    let (code, _) = ctx.shard.change_metadata(change).await;
    // Another request may have created it first: that is success too.
    if code != 0 && code != ResponseError::TopicAlreadyExists.code() {
        return Err(code);
    }
    ctx.shard
        .snapshot()
        .topic(name)
        .cloned()
        .ok_or(ResponseError::UnknownTopicOrPartition.code())
}
