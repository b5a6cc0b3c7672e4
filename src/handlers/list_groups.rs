//! ListGroups (key 16), v0-5: every group of every shard's coordinator
//! (each shard lists the groups of the offsets partitions it owns). v4
//! filters by state, v5 by type ("classic", or "consumer" for KIP-848
//! groups, whose states are Empty/Assigning/Reconciling/Stable).
//!
//! Both filters match as Kafka 4's group coordinator
//! (`GroupMetadataManager.listGroups`) matches them: case ignored, states
//! also trimmed of blanks (types are not: `GroupType.parse` looks the name
//! up as given), an empty filter keeps every group, and a name that is no
//! state or type matches nothing (no error). A shard
//! whose coordinator fails sets the response's error code, and the groups
//! of the other shards are still listed, as Kafka lists the groups of the
//! coordinators that answered.

use crate::security::acl::{Operation, ResourceType};
use futures::future::join_all;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{ApiKey, GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::group::coordinator::ListedGroup as Listed;
use crate::group::OFFSETS_TOPIC;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::ListGroups,
    min: 0,
    max: 5,
};

/// Answers ListGroups.
pub async fn handle(ctx: &RequestContext, request: ListGroupsRequest) -> ListGroupsResponse {
    if ctx.shard.snapshot().topic(OFFSETS_TOPIC).is_none() {
        return ListGroupsResponse::default();
    }
    let lists = join_all((0..ctx.shard.shard_count()).map(|target| {
        ctx.shard.run_on(
            target,
            |shard| async move { shard.groups.list(&shard).await },
        )
    }))
    .await;
    let mut groups: Vec<Listed> = Vec::new();
    let mut error = 0;
    for list in lists {
        match list {
            Some(Ok(g)) => groups.extend(g),
            Some(Err(code)) => error = code,
            None => error = ResponseError::CoordinatorNotAvailable.code(),
        }
    }
    let mut groups = filtered(groups, &request.states_filter, &request.types_filter);
    // Kafka: DESCRIBE on the cluster lists every group; else only the
    // groups the principal may DESCRIBE.
    if !ctx.authorize_cluster(Operation::Describe) {
        groups.retain(|g| ctx.authorize(Operation::Describe, ResourceType::Group, &g.group_id));
    }
    response(ctx.version, error, groups)
}

/// The groups whose state is in `states` and whose type is in `types`
/// (an empty filter keeps all), sorted by id.
fn filtered(mut groups: Vec<Listed>, states: &[StrBytes], types: &[StrBytes]) -> Vec<Listed> {
    let states: Vec<String> = states.iter().map(|s| s.trim().to_lowercase()).collect();
    let types: Vec<String> = types.iter().map(|s| s.to_lowercase()).collect();
    groups.retain(|g| states.is_empty() || states.contains(&g.state.to_lowercase()));
    groups.retain(|g| types.is_empty() || types.iter().any(|t| t == g.group_type));
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    groups
}

fn response(version: i16, error: i16, groups: Vec<Listed>) -> ListGroupsResponse {
    let groups = groups
        .into_iter()
        .map(|g| {
            let mut listed = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                .with_protocol_type(StrBytes::from_string(g.protocol_type));
            if version >= 4 {
                listed = listed.with_group_state(StrBytes::from_static_str(g.state));
            }
            if version >= 5 {
                listed = listed.with_group_type(StrBytes::from_static_str(g.group_type));
            }
            listed
        })
        .collect();
    ListGroupsResponse::default()
        .with_error_code(error)
        .with_groups(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Encodable;

    fn listed(id: &str, state: &'static str, group_type: &'static str) -> Listed {
        Listed {
            group_id: id.into(),
            protocol_type: "consumer".into(),
            state,
            group_type,
        }
    }

    fn names(list: &[&'static str]) -> Vec<StrBytes> {
        list.iter().map(|s| StrBytes::from_static_str(s)).collect()
    }

    #[test]
    fn list_groups_v4_v5_filters_match_as_kafka_4() {
        let all = || {
            vec![
                listed("c", "Stable", "classic"),
                listed("a", "Empty", "consumer"),
                listed("b", "PreparingRebalance", "classic"),
                listed("d", "Reconciling", "consumer"),
            ]
        };
        let ids = |g: Vec<Listed>| g.into_iter().map(|g| g.group_id).collect::<Vec<_>>();
        assert_eq!(ids(filtered(all(), &[], &[])), ["a", "b", "c", "d"]);
        let states = names(&[" stable ", "EMPTY"]);
        assert_eq!(ids(filtered(all(), &states, &[])), ["a", "c"]);
        assert_eq!(ids(filtered(all(), &[], &names(&["Consumer"]))), ["a", "d"]);
        assert_eq!(
            ids(filtered(all(), &names(&["Stable"]), &names(&["consumer"]))),
            Vec::<String>::new(),
            "both filters apply"
        );
        assert!(filtered(all(), &names(&["NoSuchState"]), &[]).is_empty());
        assert!(filtered(all(), &[], &names(&["share"])).is_empty());
        assert!(
            filtered(all(), &[], &names(&[" consumer"])).is_empty(),
            "types are not trimmed"
        );
    }

    #[test]
    fn list_groups_response_encodes_at_every_version() {
        for version in API.min..=API.max {
            let g = Listed {
                group_id: "g".into(),
                protocol_type: "consumer".into(),
                state: "Stable",
                group_type: "consumer",
            };
            let mut buf = bytes::BytesMut::new();
            response(version, 0, vec![g])
                .encode(&mut buf, version)
                .unwrap_or_else(|e| panic!("v{version}: {e}"));
        }
    }
}
