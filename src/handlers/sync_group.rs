//! SyncGroup (key 14), v0-5. The leader's call carries the assignments,
//! which are passed through untouched; the others wait on the coordinator
//! shard until it arrives. v5 checks protocol type and name.

use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::{ApiKey, SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::group::coordinator::Committer;
use crate::group::member::SyncResult;
use crate::group::on_coordinator;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::SyncGroup,
    min: 0,
    max: 5,
};

/// Answers SyncGroup.
pub async fn handle(ctx: &RequestContext, request: SyncGroupRequest) -> SyncGroupResponse {
    let group_id = request.group_id.0.to_string();
    if group_id.is_empty() {
        return response(
            ctx.version,
            SyncResult::error(ResponseError::InvalidGroupId.code()),
        );
    }
    // Kafka: READ on the group.
    if !ctx.authorize(Operation::Read, ResourceType::Group, &group_id) {
        return response(
            ctx.version,
            SyncResult::error(ResponseError::GroupAuthorizationFailed.code()),
        );
    }
    let member = Committer {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|s| s.to_string()),
        generation: request.generation_id,
    };
    let protocol_type = request.protocol_type.map(|s| s.to_string());
    let protocol_name = request.protocol_name.map(|s| s.to_string());
    let assignments = request
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let group = group_id.clone();
    let result = on_coordinator(&ctx.shard, &group_id, move |shard, partition| async move {
        shard
            .groups
            .sync(
                &shard,
                partition,
                &group,
                member,
                protocol_type,
                protocol_name,
                assignments,
            )
            .await
    })
    .await
    .unwrap_or_else(SyncResult::error);
    response(ctx.version, result)
}

/// Shapes a [`SyncResult`] for `version` (protocol fields only in v5).
pub fn response(version: i16, r: SyncResult) -> SyncGroupResponse {
    let response = SyncGroupResponse::default()
        .with_error_code(r.error)
        .with_assignment(r.assignment);
    if version >= 5 {
        response
            .with_protocol_type(r.protocol_type.map(StrBytes::from_string))
            .with_protocol_name(r.protocol_name.map(StrBytes::from_string))
    } else {
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn sync_group_response_encodes_at_every_version() {
        for version in API.min..=API.max {
            let r = SyncResult {
                error: 0,
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                assignment: bytes::Bytes::from_static(b"a"),
            };
            let mut buf = bytes::BytesMut::new();
            response(version, r)
                .encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("v{version}: {e}"));
        }
    }
}
