//! OffsetFetch (key 9), v0-9 (v0 through `handlers::legacy`, as v1). v1-7 ask for one group, v8+ for several;
//! a null topic list (v2+) means every partition the group committed.
//! Partitions without a committed offset get offset -1 and no error. v9
//! carries a KIP-848 member id and epoch: checked like OffsetCommit
//! (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH).

use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ApiKey, GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::group::on_coordinator;
use crate::group::records::OffsetValue;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::OffsetFetch,
    min: 0,
    max: 9,
};

/// One topic's partitions with their committed offsets, if any.
type TopicOffsets = (String, Vec<(i32, PartitionOffset)>);
/// A partition's committed offset (`None`: nothing committed), or its error
/// (UNSTABLE_OFFSET_COMMIT while a transactional commit awaits its marker
/// and the client asked for stable offsets).
type PartitionOffset = Result<Option<OffsetValue>, i16>;
/// One group's answer: committed offsets by topic (request order), or a group error.
type GroupOffsets = Result<Vec<TopicOffsets>, i16>;

/// Answers OffsetFetch.
pub async fn handle(ctx: &RequestContext, request: OffsetFetchRequest) -> OffsetFetchResponse {
    if ctx.version < 8 {
        let topics = request.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes))
                .collect()
        });
        // v7+: read_committed consumers ask for stable offsets (KIP-447).
        let stable = ctx.version >= 7 && request.require_stable;
        let answer = fetch_group(
            ctx,
            request.group_id.0.to_string(),
            topics,
            None,
            -1,
            stable,
        )
        .await;
        return single_group_response(ctx.version, answer);
    }
    let mut groups = Vec::with_capacity(request.groups.len());
    for g in request.groups {
        let topics = g.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes))
                .collect()
        });
        // v9: a KIP-848 member names itself and its epoch.
        let member_id = g.member_id.map(|m| m.to_string());
        let stable = request.require_stable;
        let answer = fetch_group(
            ctx,
            g.group_id.0.to_string(),
            topics,
            member_id,
            g.member_epoch,
            stable,
        )
        .await;
        groups.push(group_response(g.group_id, answer));
    }
    OffsetFetchResponse::default().with_groups(groups)
}

async fn fetch_group(
    ctx: &RequestContext,
    group_id: String,
    topics: Option<Vec<(String, Vec<i32>)>>,
    member_id: Option<String>,
    member_epoch: i32,
    require_stable: bool,
) -> GroupOffsets {
    if group_id.is_empty() {
        return Err(ResponseError::InvalidGroupId.code());
    }
    // Kafka: READ on the group; then topics without READ are refused
    // when named, and left out of an all-topics answer.
    if !ctx.authorize(Operation::Read, ResourceType::Group, &group_id) {
        return Err(ResponseError::GroupAuthorizationFailed.code());
    }
    let named = topics.is_some();
    let asked = topics.clone();
    let group = group_id.clone();
    let flat = on_coordinator(&ctx.shard, &group_id, move |shard, partition| async move {
        let groups = &shard.groups;
        groups
            .check_offset_fetch(&shard, partition, &group, member_id, member_epoch)
            .await?;
        let offsets = groups
            .fetch_offsets(&shard, partition, &group, asked)
            .await?;
        let unstable =
            |topic: &str, p: i32| require_stable && groups.has_pending_txn_offset(&group, topic, p);
        Ok::<_, i16>(
            offsets
                .into_iter()
                .map(|(topic, p, value)| {
                    let value = match unstable(&topic, p) {
                        true => Err(ResponseError::UnstableOffsetCommit.code()),
                        false => Ok(value),
                    };
                    (topic, p, value)
                })
                .collect::<Vec<_>>(),
        )
    })
    .await
    .and_then(|r| r)?;
    // Regroup by topic, keeping the request's (or the store's) order.
    let mut out: Vec<TopicOffsets> = Vec::new();
    for (topic, partition, value) in flat {
        match out.last_mut() {
            Some((t, parts)) if *t == topic => parts.push((partition, value)),
            _ => out.push((topic, vec![(partition, value)])),
        }
    }
    let readable = |topic: &str| ctx.authorize(Operation::Read, ResourceType::Topic, topic);
    if !named {
        out.retain(|(topic, _)| readable(topic));
    }
    for (_, parts) in out.iter_mut().filter(|(topic, _)| !readable(topic)) {
        for (_, value) in parts.iter_mut() {
            *value = Err(ResponseError::TopicAuthorizationFailed.code());
        }
    }
    Ok(out)
}

fn single_group_response(version: i16, answer: GroupOffsets) -> OffsetFetchResponse {
    match answer {
        Err(code) if version >= 2 => OffsetFetchResponse::default().with_error_code(code),
        // v1 has no top-level error code: Kafka answers an empty topic list.
        Err(_) => OffsetFetchResponse::default(),
        Ok(topics) => OffsetFetchResponse::default().with_topics(
            topics
                .into_iter()
                .map(|(name, parts)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name)))
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|(index, value)| {
                                    let (offset, epoch, metadata, code) = split(value);
                                    let p = OffsetFetchResponsePartition::default()
                                        .with_partition_index(index)
                                        .with_error_code(code)
                                        .with_committed_offset(offset)
                                        .with_metadata(Some(StrBytes::from_string(metadata)));
                                    if version >= 5 {
                                        p.with_committed_leader_epoch(epoch)
                                    } else {
                                        p
                                    }
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
    }
}

fn group_response(group_id: GroupId, answer: GroupOffsets) -> OffsetFetchResponseGroup {
    match answer {
        Err(code) => OffsetFetchResponseGroup::default()
            .with_group_id(group_id)
            .with_error_code(code),
        Ok(topics) => OffsetFetchResponseGroup::default()
            .with_group_id(group_id)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(name, parts)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(StrBytes::from_string(name)))
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|(index, value)| {
                                        let (offset, epoch, metadata, code) = split(value);
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(index)
                                            .with_error_code(code)
                                            .with_committed_offset(offset)
                                            .with_committed_leader_epoch(epoch)
                                            .with_metadata(Some(StrBytes::from_string(metadata)))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
    }
}

/// (offset, leader epoch, metadata, error); -1, -1, "" when nothing is
/// committed or the partition has an error.
fn split(value: PartitionOffset) -> (i64, i32, String, i16) {
    match value {
        Ok(Some(v)) => (v.offset, v.leader_epoch, v.metadata, 0),
        Ok(None) => (-1, -1, String::new(), 0),
        Err(code) => (-1, -1, String::new(), code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Encodable;

    fn sample() -> GroupOffsets {
        Ok(vec![(
            "t".into(),
            vec![
                (
                    0,
                    Ok(Some(OffsetValue {
                        offset: 5,
                        leader_epoch: 2,
                        metadata: "m".into(),
                        commit_timestamp_ms: 0,
                    })),
                ),
                (1, Ok(None)),
                (2, Err(88)),
            ],
        )])
    }

    #[test]
    fn offset_fetch_response_encodes_at_every_version() {
        let crate_min = <OffsetFetchResponse as kafka_protocol::protocol::Message>::VERSIONS.min;
        for version in crate_min..=API.max {
            for answer in [sample(), Err(15)] {
                let r = if version >= 8 {
                    OffsetFetchResponse::default().with_groups(vec![group_response(
                        GroupId(StrBytes::from_static_str("g")),
                        answer,
                    )])
                } else {
                    single_group_response(version, answer)
                };
                let mut buf = bytes::BytesMut::new();
                r.encode(&mut buf, version)
                    .unwrap_or_else(|e| panic!("v{version}: {e}"));
            }
        }
    }
}
