//! ConsumerGroupDescribe (key 69), v0-1: a KIP-848 group's state, epochs,
//! assignor, and each member's subscription, assignment and target
//! assignment (topic ids resolved to names from the metadata snapshot). A
//! classic group or an unknown id is GROUP_ID_NOT_FOUND, as Kafka answers;
//! admin clients then fall back to DescribeGroups for classic groups.

use futures::future::join_all;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions as DescribedTopicPartitions,
};
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, GroupId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::authorized_operations::{
    authorized_operations, Resource, AUTHORIZED_OPERATIONS_OMITTED,
};
use crate::security::acl::{Operation, ResourceType};
use super::{ApiSpec, RequestContext};
use crate::group::consumer::coordinator::ConsumerGroupDescription;
use crate::group::consumer::TopicPartitions;
use crate::group::on_coordinator;
use crate::metadata::Snapshot;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::ConsumerGroupDescribe,
    min: 0,
    max: 1,
};

/// Kafka's member type for a member using the consumer protocol (v1+).
const MEMBER_TYPE_CONSUMER: i8 = 1;

/// Answers ConsumerGroupDescribe.
pub async fn handle(
    ctx: &RequestContext,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let include_operations = request.include_authorized_operations;
    let groups = join_all(request.group_ids.into_iter().map(|group_id| async move {
        let id = group_id.0.to_string();
        // Kafka: DESCRIBE on the group.
        if !ctx.authorize(Operation::Describe, ResourceType::Group, &id) {
            let refused = ConsumerGroupDescription {
                error: ResponseError::GroupAuthorizationFailed.code(),
                state: "",
                ..Default::default()
            };
            return described(ctx.version, &ctx.shard.snapshot(), group_id, refused)
                .with_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
        }
        let operations = authorized_operations(ctx, Resource::Group, &id, include_operations);
        let group = id.clone();
        let d = on_coordinator(&ctx.shard, &id, move |shard, partition| async move {
            shard
                .groups
                .consumer_describe(&shard, partition, &group)
                .await
        })
        .await
        .unwrap_or_else(|code| ConsumerGroupDescription {
            error: code,
            state: "Dead",
            ..Default::default()
        });
        described(ctx.version, &ctx.shard.snapshot(), group_id, d)
            .with_authorized_operations(operations)
    }))
    .await;
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}

fn assignment(snapshot: &Snapshot, tps: &TopicPartitions) -> Assignment {
    Assignment::default().with_topic_partitions(
        tps.iter()
            .map(|(id, ps)| {
                let name = snapshot
                    .topic_ids
                    .get(id)
                    .map(|n| n.to_string())
                    .unwrap_or_default();
                DescribedTopicPartitions::default()
                    .with_topic_id(*id)
                    .with_topic_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect(),
    )
}

fn described(
    version: i16,
    snapshot: &Snapshot,
    group_id: GroupId,
    d: ConsumerGroupDescription,
) -> DescribedGroup {
    let members = d
        .members
        .iter()
        .map(|dm| {
            let m = &dm.member;
            let md = &m.metadata;
            let member = Member::default()
                .with_member_id(StrBytes::from_string(m.member_id.clone()))
                .with_instance_id(md.instance_id.clone().map(StrBytes::from_string))
                .with_rack_id(md.rack_id.clone().map(StrBytes::from_string))
                .with_member_epoch(m.member_epoch)
                .with_client_id(StrBytes::from_string(md.client_id.clone()))
                .with_client_host(StrBytes::from_string(md.client_host.clone()))
                .with_subscribed_topic_names(
                    md.subscribed_topic_names
                        .iter()
                        .map(|t| TopicName(StrBytes::from_string(t.clone())))
                        .collect(),
                )
                .with_subscribed_topic_regex(
                    md.subscribed_topic_regex.clone().map(StrBytes::from_string),
                )
                .with_assignment(assignment(snapshot, &m.assigned))
                .with_target_assignment(assignment(snapshot, &dm.target));
            match version >= 1 {
                true => member.with_member_type(MEMBER_TYPE_CONSUMER),
                false => member,
            }
        })
        .collect();
    DescribedGroup::default()
        .with_error_code(d.error)
        .with_error_message(d.message.map(StrBytes::from_string))
        .with_group_id(group_id)
        .with_group_state(StrBytes::from_static_str(d.state))
        .with_group_epoch(d.group_epoch)
        .with_assignment_epoch(d.assignment_epoch)
        .with_assignor_name(StrBytes::from_string(d.assignor))
        .with_members(members)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::consumer::coordinator::DescribedConsumerMember;
    use crate::group::consumer::member::ConsumerMember;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn consumer_group_describe_response_encodes_at_every_version() {
        let mut m = ConsumerMember::new("m", std::time::Instant::now());
        m.assigned = [(uuid::Uuid::from_u128(1), [0, 1].into())].into();
        m.metadata.subscribed_topic_names = vec!["t".into()];
        let d = ConsumerGroupDescription {
            state: "Stable",
            group_epoch: 2,
            assignment_epoch: 2,
            assignor: "uniform".into(),
            members: vec![DescribedConsumerMember {
                target: m.assigned.clone(),
                member: m,
            }],
            ..Default::default()
        };
        for version in API.min..=API.max {
            let g = described(
                version,
                &Snapshot::default(),
                GroupId(StrBytes::from_static_str("g")),
                d.clone(),
            );
            let mut buf = bytes::BytesMut::new();
            ConsumerGroupDescribeResponse::default()
                .with_groups(vec![g])
                .encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("v{version}: {e}"));
        }
    }
}
