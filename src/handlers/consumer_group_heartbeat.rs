//! ConsumerGroupHeartbeat (key 68), v0-1: KIP-848's one request for
//! joining, heartbeating, reconciling and leaving a consumer group (see
//! `group::consumer`). v0 lets the broker choose a joining member's id; v1
//! requires the client to (KIP-1082), so an empty id is INVALID_REQUEST.

use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment, TopicPartitions as ResponseTopicPartitions,
};
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::group::consumer::{HeartbeatError, HeartbeatIn, HeartbeatOut, TopicPartitions};
use crate::group::on_coordinator;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::ConsumerGroupHeartbeat,
    min: 0,
    max: 1,
};

/// Answers ConsumerGroupHeartbeat.
pub async fn handle(
    ctx: &RequestContext,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let group_id = request.group_id.0.to_string();
    let interval_ms = ctx.shard.config.group_consumer_heartbeat_interval_ms as i32;
    if group_id.is_empty() {
        return error_response(HeartbeatError {
            code: ResponseError::InvalidRequest.code(),
            message: Some("GroupId can't be empty.".into()),
        });
    }
    // Kafka: READ on the group, DESCRIBE on every subscribed topic.
    if !ctx.authorize(Operation::Read, ResourceType::Group, &group_id) {
        return error_response(HeartbeatError {
            code: ResponseError::GroupAuthorizationFailed.code(),
            message: None,
        });
    }
    let subscribed = request.subscribed_topic_names.iter().flatten();
    if subscribed
        .into_iter()
        .any(|t| !ctx.authorize(Operation::Describe, ResourceType::Topic, &t.0))
    {
        return error_response(HeartbeatError {
            code: ResponseError::TopicAuthorizationFailed.code(),
            message: None,
        });
    }
    let mut member_id = request.member_id.to_string();
    if member_id.is_empty() && request.member_epoch == 0 && ctx.version == 0 {
        member_id = uuid::Uuid::new_v4().to_string();
    }
    let owned = request.topic_partitions.map(|tps| {
        let mut out = TopicPartitions::new();
        for t in tps {
            out.entry(t.topic_id)
                .or_default()
                .extend(t.partitions.iter().copied());
        }
        out.retain(|_, ps| !ps.is_empty());
        out
    });
    let req = HeartbeatIn {
        member_id,
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.map(|s| s.to_string()),
        rack_id: request.rack_id.map(|s| s.to_string()),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .map(|names| names.into_iter().map(|n| n.0.to_string()).collect()),
        subscribed_topic_regex: request.subscribed_topic_regex.map(|s| s.to_string()),
        server_assignor: request.server_assignor.map(|s| s.to_string()),
        owned,
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: String::new(),
    };
    let group = group_id.clone();
    let result = on_coordinator(&ctx.shard, &group_id, move |shard, partition| async move {
        shard
            .groups
            .consumer_heartbeat(&shard, partition, &group, req)
            .await
    })
    .await
    .unwrap_or_else(|code| {
        Err(HeartbeatError {
            code,
            message: None,
        })
    });
    match result {
        Ok(out) => response(out, interval_ms),
        Err(e) => error_response(e),
    }
}

fn response(out: HeartbeatOut, interval_ms: i32) -> ConsumerGroupHeartbeatResponse {
    let assignment = out.assignment.map(|tps| {
        Assignment::default().with_topic_partitions(
            tps.into_iter()
                .map(|(id, ps)| {
                    ResponseTopicPartitions::default()
                        .with_topic_id(id)
                        .with_partitions(ps.into_iter().collect())
                })
                .collect(),
        )
    });
    ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(StrBytes::from_string(out.member_id)))
        .with_member_epoch(out.member_epoch)
        .with_heartbeat_interval_ms(interval_ms)
        .with_assignment(assignment)
}

fn error_response(e: HeartbeatError) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(e.code)
        .with_error_message(e.message.map(StrBytes::from_string))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn consumer_group_heartbeat_response_encodes_at_every_version() {
        let assigned: TopicPartitions = [(uuid::Uuid::from_u128(9), [0, 3].into())].into();
        for version in API.min..=API.max {
            let ok = response(
                HeartbeatOut {
                    member_id: "m".into(),
                    member_epoch: 3,
                    assignment: Some(assigned.clone()),
                },
                5_000,
            );
            let err = error_response(HeartbeatError {
                code: ResponseError::FencedMemberEpoch.code(),
                message: Some("fenced".into()),
            });
            for r in [ok, err] {
                let mut buf = bytes::BytesMut::new();
                r.encode(&mut buf, version)
                    .unwrap_or_else(|e| panic!("v{version}: {e}"));
            }
        }
    }
}
