//! LeaveGroup (key 13), v0-5. v0-2 name one member; v3+ a batch of members
//! (by member id or group.instance.id) with a code each.

use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{ApiKey, LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::group::on_coordinator;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::LeaveGroup,
    min: 0,
    max: 5,
};

/// Answers LeaveGroup.
pub async fn handle(ctx: &RequestContext, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let group_id = request.group_id.0.to_string();
    let identities = if ctx.version >= 3 {
        request.members
    } else {
        vec![
            kafka_protocol::messages::leave_group_request::MemberIdentity::default()
                .with_member_id(request.member_id),
        ]
    };
    if group_id.is_empty() {
        return LeaveGroupResponse::default().with_error_code(ResponseError::InvalidGroupId.code());
    }
    // Kafka: READ on the group.
    if !ctx.authorize(Operation::Read, ResourceType::Group, &group_id) {
        return LeaveGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let members: Vec<(String, Option<String>)> = identities
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.group_instance_id.as_ref().map(|s| s.to_string()),
            )
        })
        .collect();
    let group = group_id.clone();
    let asked = members.clone();
    let codes = on_coordinator(&ctx.shard, &group_id, move |shard, partition| async move {
        shard.groups.leave(&shard, partition, &group, asked).await
    })
    .await
    .and_then(|r| r);
    match codes {
        Err(code) => LeaveGroupResponse::default().with_error_code(code),
        Ok(codes) if ctx.version < 3 => {
            LeaveGroupResponse::default().with_error_code(codes.first().copied().unwrap_or(0))
        }
        Ok(codes) => LeaveGroupResponse::default().with_members(
            identities
                .into_iter()
                .zip(codes)
                .map(|(m, code)| {
                    MemberResponse::default()
                        .with_member_id(m.member_id)
                        .with_group_instance_id(m.group_instance_id)
                        .with_error_code(code)
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn leave_group_response_encodes_at_every_version() {
        for version in API.min..=API.max {
            let mut r = LeaveGroupResponse::default().with_error_code(25);
            if version >= 3 {
                r = r.with_members(vec![MemberResponse::default()
                    .with_member_id(StrBytes::from_static_str("m"))
                    .with_group_instance_id(Some(StrBytes::from_static_str("i")))
                    .with_error_code(25)]);
            }
            let mut buf = bytes::BytesMut::new();
            r.encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("v{version}: {e}"));
        }
    }
}
