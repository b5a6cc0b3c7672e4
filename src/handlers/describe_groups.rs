//! DescribeGroups (key 15), v0-6: state, protocol and members (with
//! metadata and, once Stable, assignments) from each group's coordinator.
//! An unknown group is "Dead" (v6: GROUP_ID_NOT_FOUND, as Kafka 4 says).

use futures::future::join_all;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::authorized_operations::{
    authorized_operations, Resource, AUTHORIZED_OPERATIONS_OMITTED,
};
use crate::security::acl::{Operation, ResourceType};
use super::{ApiSpec, RequestContext};
use crate::group::coordinator::GroupDescription;
use crate::group::on_coordinator;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::DescribeGroups,
    min: 0,
    max: 6,
};

/// Answers DescribeGroups.
pub async fn handle(
    ctx: &RequestContext,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    // The flag exists from v3; older requests decode it false.
    let include_operations = request.include_authorized_operations;
    let groups = join_all(request.groups.into_iter().map(|group_id| async move {
        let id = group_id.0.to_string();
        // Kafka: DESCRIBE on the group.
        if !ctx.authorize(Operation::Describe, ResourceType::Group, &id) {
            let refused = GroupDescription {
                error: ResponseError::GroupAuthorizationFailed.code(),
                state: "",
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            };
            return described(ctx.version, group_id, refused)
                .with_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
        }
        let operations = authorized_operations(ctx, Resource::Group, &id, include_operations);
        let group = id.clone();
        let description = on_coordinator(&ctx.shard, &id, move |shard, partition| async move {
            shard.groups.describe(&shard, partition, &group).await
        })
        .await
        .unwrap_or_else(|code| GroupDescription {
            error: code,
            state: "Dead",
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        });
        described(ctx.version, group_id, description).with_authorized_operations(operations)
    }))
    .await;
    DescribeGroupsResponse::default().with_groups(groups)
}

fn described(version: i16, group_id: GroupId, d: GroupDescription) -> DescribedGroup {
    let members =
        d.members
            .into_iter()
            .map(|m| {
                let member = DescribedGroupMember::default()
                    .with_member_id(StrBytes::from_string(m.member_id))
                    .with_client_id(StrBytes::from_string(m.client_id))
                    .with_client_host(StrBytes::from_string(m.client_host))
                    .with_member_metadata(m.metadata)
                    .with_member_assignment(m.assignment);
                match version >= 4 {
                    true => member
                        .with_group_instance_id(m.group_instance_id.map(StrBytes::from_string)),
                    false => member,
                }
            })
            .collect();
    let not_found = version >= 6 && d.error == 0 && d.state == "Dead";
    let mut group = DescribedGroup::default()
        .with_error_code(if not_found {
            ResponseError::GroupIdNotFound.code()
        } else {
            d.error
        })
        .with_group_state(StrBytes::from_static_str(d.state))
        .with_protocol_type(StrBytes::from_string(d.protocol_type))
        .with_protocol_data(StrBytes::from_string(d.protocol))
        .with_members(members);
    if not_found {
        group = group.with_error_message(Some(StrBytes::from_string(format!(
            "Group {} not found.",
            group_id.0
        ))));
    }
    group.with_group_id(group_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::coordinator::DescribedMember;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn describe_groups_response_encodes_at_every_version() {
        for version in API.min..=API.max {
            for state in ["Stable", "Dead"] {
                let d = GroupDescription {
                    error: 0,
                    state,
                    protocol_type: "consumer".into(),
                    protocol: "range".into(),
                    members: vec![DescribedMember {
                        member_id: "m".into(),
                        group_instance_id: Some("i".into()),
                        client_id: "c".into(),
                        client_host: "/127.0.0.1".into(),
                        metadata: bytes::Bytes::from_static(b"x"),
                        assignment: bytes::Bytes::from_static(b"y"),
                    }],
                };
                let r = DescribeGroupsResponse::default().with_groups(vec![described(
                    version,
                    GroupId(StrBytes::from_static_str("g")),
                    d,
                )]);
                let mut buf = bytes::BytesMut::new();
                r.encode(&mut buf, version)
                    .unwrap_or_else(|e| panic!("v{version}: {e}"));
            }
        }
    }
}
