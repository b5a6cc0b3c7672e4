//! OffsetDelete (key 47), v0: deletes committed offsets of partitions the
//! group is not subscribed to (GROUP_SUBSCRIBED_TO_TOPIC otherwise).

use crate::security::acl::{Operation, ResourceType};
use std::collections::HashMap;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetDeleteRequest, OffsetDeleteResponse};
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::group::on_coordinator;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::OffsetDelete,
    min: 0,
    max: 0,
};

/// Answers OffsetDelete.
pub async fn handle(ctx: &RequestContext, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group_id = request.group_id.0.to_string();
    if group_id.is_empty() {
        return OffsetDeleteResponse::default()
            .with_error_code(ResponseError::InvalidGroupId.code());
    }
    // Kafka: DELETE on the group, READ on each topic.
    if !ctx.authorize(Operation::Delete, ResourceType::Group, &group_id) {
        return OffsetDeleteResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let snapshot = ctx.shard.snapshot();
    let mut decided: HashMap<(String, i32), i16> = HashMap::new();
    let mut asked = Vec::new();
    for t in &request.topics {
        let name = t.name.0.to_string();
        let count = snapshot.topic(&name).map(|t| t.partition_count());
        let readable = ctx.authorize(Operation::Read, ResourceType::Topic, &name);
        for p in &t.partitions {
            if !readable {
                decided.insert(
                    (name.clone(), p.partition_index),
                    ResponseError::TopicAuthorizationFailed.code(),
                );
            } else if count.is_some_and(|c| (0..c).contains(&p.partition_index)) {
                asked.push((name.clone(), p.partition_index));
            } else {
                decided.insert(
                    (name.clone(), p.partition_index),
                    ResponseError::UnknownTopicOrPartition.code(),
                );
            }
        }
    }
    let group = group_id.clone();
    let keys = asked.clone();
    let codes = on_coordinator(&ctx.shard, &group_id, move |shard, partition| async move {
        shard
            .groups
            .delete_offsets(&shard, partition, &group, asked)
            .await
    })
    .await
    .and_then(|r| r);
    let codes = match codes {
        Ok(codes) => codes,
        Err(code) => return OffsetDeleteResponse::default().with_error_code(code),
    };
    decided.extend(keys.into_iter().zip(codes));
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(
                            decided
                                .get(&(name.clone(), p.partition_index))
                                .copied()
                                .unwrap_or(0),
                        )
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn offset_delete_response_encodes_at_every_version() {
        for version in API.min..=API.max {
            let r = OffsetDeleteResponse::default().with_topics(vec![
                OffsetDeleteResponseTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partitions(vec![OffsetDeleteResponsePartition::default()
                        .with_partition_index(0)
                        .with_error_code(86)]),
            ]);
            let mut buf = bytes::BytesMut::new();
            r.encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("v{version}: {e}"));
        }
    }
}
