//! DeleteGroups (key 42), v0-2: deletes empty groups (NON_EMPTY_GROUP
//! otherwise), writing tombstones for their offsets and metadata.

use crate::security::acl::{Operation, ResourceType};
use futures::future::join_all;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{ApiKey, DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::group::on_coordinator;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::DeleteGroups,
    min: 0,
    max: 2,
};

/// Answers DeleteGroups.
pub async fn handle(ctx: &RequestContext, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let results = join_all(request.groups_names.into_iter().map(|group_id| async move {
        let id = group_id.0.to_string();
        let code = if id.is_empty() {
            ResponseError::InvalidGroupId.code()
        } else if !ctx.authorize(Operation::Delete, ResourceType::Group, &id) {
            ResponseError::GroupAuthorizationFailed.code()
        } else {
            let group = id.clone();
            on_coordinator(&ctx.shard, &id, move |shard, partition| async move {
                shard.groups.delete(&shard, partition, &group).await
            })
            .await
            .unwrap_or_else(|code| code)
        };
        DeletableGroupResult::default()
            .with_group_id(group_id)
            .with_error_code(code)
    }))
    .await;
    DeleteGroupsResponse::default().with_results(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::GroupId;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn delete_groups_response_encodes_at_every_version() {
        for version in API.min..=API.max {
            let r =
                DeleteGroupsResponse::default().with_results(vec![DeletableGroupResult::default()
                    .with_group_id(GroupId(StrBytes::from_static_str("g")))
                    .with_error_code(68)]);
            let mut buf = bytes::BytesMut::new();
            r.encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("v{version}: {e}"));
        }
    }
}
