//! JoinGroup (key 11), v0-9. The answer waits on the coordinator shard
//! until the join phase completes (every known member rejoined, or the
//! rebalance timeout passed). v4+ first joins get MEMBER_ID_REQUIRED with
//! an id to rejoin with; v5+ static members (group.instance.id).

use crate::security::acl::{Operation, ResourceType};
use std::time::Duration;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{ApiKey, JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::group::member::JoinResult;
use crate::group::on_coordinator;
use crate::group::state::JoinRequest;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::JoinGroup,
    min: 0,
    max: 9,
};

/// Answers JoinGroup.
pub async fn handle(ctx: &RequestContext, request: JoinGroupRequest) -> JoinGroupResponse {
    let group_id = request.group_id.0.to_string();
    let member_id = request.member_id.to_string();
    if group_id.is_empty() {
        return response(
            ctx.version,
            JoinResult::error(ResponseError::InvalidGroupId.code(), &member_id),
        );
    }
    // Kafka: READ on the group.
    if !ctx.authorize(Operation::Read, ResourceType::Group, &group_id) {
        return response(
            ctx.version,
            JoinResult::error(ResponseError::GroupAuthorizationFailed.code(), &member_id),
        );
    }
    let join = JoinRequest {
        member_id: member_id.clone(),
        group_instance_id: request.group_instance_id.map(|s| s.to_string()),
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: String::new(),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if ctx.version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: ctx.version >= 4,
        initial_rebalance_delay: Duration::from_millis(
            ctx.shard.config.group_initial_rebalance_delay_ms,
        ),
    };
    let group = group_id.clone();
    let result = on_coordinator(&ctx.shard, &group_id, move |shard, partition| async move {
        shard.groups.join(&shard, partition, &group, join).await
    })
    .await
    .unwrap_or_else(|code| JoinResult::error(code, &member_id));
    response(ctx.version, result)
}

/// Shapes a [`JoinResult`] for `version`: protocol type only in v7+, a null
/// protocol name only in v7+, skip_assignment only in v9.
pub fn response(version: i16, r: JoinResult) -> JoinGroupResponse {
    let members =
        r.members
            .into_iter()
            .map(|m| {
                let member = JoinGroupResponseMember::default()
                    .with_member_id(StrBytes::from_string(m.member_id))
                    .with_metadata(m.metadata);
                match version >= 5 {
                    true => member
                        .with_group_instance_id(m.group_instance_id.map(StrBytes::from_string)),
                    false => member,
                }
            })
            .collect();
    let protocol_name = match (r.protocol_name, version >= 7) {
        (Some(name), _) => Some(StrBytes::from_string(name)),
        (None, true) => None,
        (None, false) => Some(StrBytes::default()),
    };
    let mut response = JoinGroupResponse::default()
        .with_error_code(r.error)
        .with_generation_id(r.generation_id)
        .with_protocol_name(protocol_name)
        .with_leader(StrBytes::from_string(r.leader))
        .with_member_id(StrBytes::from_string(r.member_id))
        .with_members(members);
    if version >= 7 {
        response = response.with_protocol_type(r.protocol_type.map(StrBytes::from_string));
    }
    if version >= 9 {
        response = response.with_skip_assignment(r.skip_assignment);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::member::JoinMember;
    use kafka_protocol::protocol::{Decodable, Encodable};

    #[test]
    fn join_group_response_encodes_at_every_version() {
        for version in API.min..=API.max {
            let ok = JoinResult {
                error: 0,
                generation_id: 3,
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                leader: "m1".into(),
                member_id: "m1".into(),
                members: vec![JoinMember {
                    member_id: "m1".into(),
                    group_instance_id: Some("i1".into()),
                    metadata: bytes::Bytes::from_static(b"meta"),
                }],
                skip_assignment: true,
            };
            for r in [ok, JoinResult::error(79, "m2")] {
                let mut buf = bytes::BytesMut::new();
                response(version, r.clone())
                    .encode(&mut buf, version)
                    .unwrap_or_else(|e| panic!("v{version}: {e}"));
                let back = JoinGroupResponse::decode(&mut buf.freeze(), version).unwrap();
                assert_eq!(back.member_id.as_str(), r.member_id);
                assert_eq!(back.generation_id, r.generation_id);
            }
        }
    }
}
