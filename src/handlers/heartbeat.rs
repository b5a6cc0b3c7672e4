//! Heartbeat (key 12), v0-4: keeps a member's session alive; answers
//! REBALANCE_IN_PROGRESS while the group rebalances, so members rejoin.

use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::{ApiKey, HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::group::coordinator::Committer;
use crate::group::on_coordinator;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::Heartbeat,
    min: 0,
    max: 4,
};

/// Answers Heartbeat.
pub async fn handle(ctx: &RequestContext, request: HeartbeatRequest) -> HeartbeatResponse {
    let group_id = request.group_id.0.to_string();
    if group_id.is_empty() {
        return HeartbeatResponse::default().with_error_code(ResponseError::InvalidGroupId.code());
    }
    // Kafka: READ on the group.
    if !ctx.authorize(Operation::Read, ResourceType::Group, &group_id) {
        return HeartbeatResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let member = Committer {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|s| s.to_string()),
        generation: request.generation_id,
    };
    let group = group_id.clone();
    let code = on_coordinator(&ctx.shard, &group_id, move |shard, partition| async move {
        shard
            .groups
            .heartbeat(&shard, partition, &group, member)
            .await
    })
    .await
    .unwrap_or_else(|code| code);
    HeartbeatResponse::default().with_error_code(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn heartbeat_response_encodes_at_every_version() {
        for version in API.min..=API.max {
            let mut buf = bytes::BytesMut::new();
            HeartbeatResponse::default()
                .with_error_code(27)
                .encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("v{version}: {e}"));
        }
    }
}
