//! Consumer group endpoints: the list (ListGroups, then DescribeGroups for
//! member counts and protocol), one group (members and assignments from
//! DescribeGroups or, for KIP-848 groups, ConsumerGroupDescribe; lag per
//! partition in offsets and in time with the Burrow-style status of
//! `/v1/groups/{g}/lag`; the commit window for the lag chart) and delete
//! (DeleteGroups). Resets are in `reset`.

use std::rc::Rc;

use kafka_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::GroupId;
use kafka_protocol::protocol::StrBytes;
use serde_json::{json, Value};

use super::access::{self, Need};
use super::kafka::{self, check, check_message};
use super::messages::{decode_records, fetch_once};
use super::{ConsoleError, ConsoleResult};
use crate::cli::groups::decode_assignment;
use crate::ops::admin::{lag_history, observe_lag};
use crate::security::acl::Operation;
use crate::shard::Shard;

const LIST_GROUPS_VERSION: i16 = 5;
const DESCRIBE_GROUPS_VERSION: i16 = 5;
const CONSUMER_GROUP_DESCRIBE_VERSION: i16 = 0;
const DELETE_GROUPS_VERSION: i16 = 2;
/// Bytes read to find the timestamp of a group's next record (time lag).
const TIME_LAG_FETCH_BYTES: i32 = 64 * 1024;

/// A group id for a request.
pub(super) fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_string()))
}

/// `GET /v1/groups?details=true`.
pub(super) async fn list(shard: &Rc<Shard>) -> ConsoleResult {
    let listed = kafka::call(shard, LIST_GROUPS_VERSION, &ListGroupsRequest::default()).await?;
    check(listed.error_code, "list groups")?;
    let ids: Vec<GroupId> = listed.groups.iter().map(|g| g.group_id.clone()).collect();
    let described = if ids.is_empty() {
        Vec::new()
    } else {
        let request = DescribeGroupsRequest::default().with_groups(ids);
        kafka::call(shard, DESCRIBE_GROUPS_VERSION, &request)
            .await?
            .groups
    };
    let mut groups: Vec<Value> = listed
        .groups
        .iter()
        .map(|g| {
            let d = described.iter().find(|d| d.group_id == g.group_id);
            json!({
                "group": g.group_id.0.as_str(),
                "state": g.group_state.as_str(),
                "type": if g.group_type.is_empty() { "classic" } else { g.group_type.as_str() },
                "protocol_type": g.protocol_type.as_str(),
                "protocol": d.map(|d| d.protocol_data.as_str()),
                "members": d.map_or(0, |d| d.members.len()),
            })
        })
        .collect();
    groups.sort_by(|a, b| a["group"].as_str().cmp(&b["group"].as_str()));
    Ok(json!({ "groups": groups }))
}

/// Members of a classic group: id, client, host, assignment.
async fn classic_members(
    shard: &Rc<Shard>,
    group: &str,
) -> Result<(String, String, Vec<Value>), ConsoleError> {
    let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    let answer = kafka::call(shard, DESCRIBE_GROUPS_VERSION, &request).await?;
    let d = answer
        .groups
        .first()
        .ok_or_else(|| ConsoleError::Internal("DescribeGroups: no group".into()))?;
    check_message(
        d.error_code,
        d.error_message.as_ref(),
        &format!("group {group:?}"),
    )?;
    let members = d
        .members
        .iter()
        .map(|m| {
            let assignment: Vec<Value> = decode_assignment(m.member_assignment.clone())
                .into_iter()
                .map(|(topic, partitions)| json!({ "topic": topic, "partitions": partitions }))
                .collect();
            json!({
                "member_id": m.member_id.as_str(),
                "instance_id": m.group_instance_id.as_ref().map(|i| i.as_str()),
                "client_id": m.client_id.as_str(),
                "client_host": m.client_host.as_str(),
                "assignment": assignment,
            })
        })
        .collect();
    Ok((
        d.group_state.to_string(),
        d.protocol_data.to_string(),
        members,
    ))
}

/// Members of a KIP-848 group.
async fn consumer_members(
    shard: &Rc<Shard>,
    group: &str,
) -> Result<(String, String, Vec<Value>), ConsoleError> {
    let request = ConsumerGroupDescribeRequest::default().with_group_ids(vec![group_id(group)]);
    let answer = kafka::call(shard, CONSUMER_GROUP_DESCRIBE_VERSION, &request).await?;
    let d = answer
        .groups
        .first()
        .ok_or_else(|| ConsoleError::Internal("ConsumerGroupDescribe: no group".into()))?;
    check_message(
        d.error_code,
        d.error_message.as_ref(),
        &format!("group {group:?}"),
    )?;
    let members = d
        .members
        .iter()
        .map(|m| {
            let assignment: Vec<Value> = m
                .assignment
                .topic_partitions
                .iter()
                .map(|t| json!({ "topic": t.topic_name.0.as_str(), "partitions": t.partitions }))
                .collect();
            json!({
                "member_id": m.member_id.as_str(),
                "instance_id": m.instance_id.as_ref().map(|i| i.as_str()),
                "client_id": m.client_id.as_str(),
                "client_host": m.client_host.as_str(),
                "member_epoch": m.member_epoch,
                "assignment": assignment,
            })
        })
        .collect();
    Ok((
        d.group_state.to_string(),
        d.assignor_name.to_string(),
        members,
    ))
}

/// Timestamp of the record at `offset` (the group's next record), if any.
async fn next_record_timestamp(
    shard: &Rc<Shard>,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Option<i64> {
    let (bytes, _, _) = fetch_once(shard, topic, partition, offset, TIME_LAG_FETCH_BYTES)
        .await
        .ok()?;
    let records = decode_records(bytes).ok()?;
    records
        .iter()
        .find(|r| r.offset >= offset)
        .map(|r| r.timestamp)
}

/// `GET /v1/groups/{group}`: state, protocol, members with assignments,
/// lag per partition (offsets, time, status) and the lag chart's window.
pub(super) async fn describe(shard: &Rc<Shard>, group: &str) -> ConsoleResult {
    let listed = kafka::call(shard, LIST_GROUPS_VERSION, &ListGroupsRequest::default()).await?;
    let kind = listed
        .groups
        .iter()
        .find(|g| g.group_id.0.as_str() == group)
        .map(|g| g.group_type.to_string());
    let (state, protocol, members) = match kind.as_deref() {
        Some("consumer") => consumer_members(shard, group).await?,
        _ => classic_members(shard, group).await?,
    };
    let lags = crate::group::lag::group_lag(shard, group)
        .await
        .map_err(|code| ConsoleError::Kafka {
            code,
            name: kafka::error_name(code),
            context: format!("lag of group {group:?}"),
        })?;
    if kind.is_none() && lags.is_empty() && members.is_empty() {
        return Err(ConsoleError::NotFound(format!("group {group:?} not found")));
    }
    // The lag monitor sees every partition (its window is shared with
    // `/v1/groups/{g}/lag`); the answer shows only the topics the
    // console's principal may DESCRIBE, as Metadata would list them: the
    // rows come from the coordinator, not from a Kafka request (`access`).
    let all_statuses = observe_lag(&shard.config.ops.lag_rules, group, &lags);
    let mut visible_topics = std::collections::BTreeSet::new();
    for p in &lags {
        if !visible_topics.contains(p.topic.as_str())
            && access::allowed(shard, Need::topic(Operation::Describe, &p.topic))?
        {
            visible_topics.insert(p.topic.clone());
        }
    }
    let (lags, statuses): (Vec<_>, Vec<_>) = lags
        .into_iter()
        .zip(all_statuses)
        .filter(|(p, _)| visible_topics.contains(&p.topic))
        .unzip();
    let now = crate::clock::wall_ms();
    let mut partitions = Vec::new();
    for (p, status) in lags.iter().zip(&statuses) {
        let time_lag_ms = if p.lag > 0 {
            next_record_timestamp(shard, &p.topic, p.partition, p.committed_offset)
                .await
                .map(|ts| (now - ts).max(0))
        } else {
            Some(0)
        };
        partitions.push(json!({
            "topic": p.topic,
            "partition": p.partition,
            "committed_offset": p.committed_offset,
            "log_end_offset": p.log_end_offset,
            "lag": p.lag,
            "time_lag_ms": time_lag_ms,
            "commit_timestamp_ms": p.commit_timestamp_ms,
            "status": status.as_str(),
        }));
    }
    let history: Vec<Value> = lag_history(group)
        .into_iter()
        .filter(|(topic, _, _)| visible_topics.contains(topic))
        .map(|(topic, partition, samples)| {
            let points: Vec<Value> = samples
                .iter()
                .map(|s| json!({ "t": s.timestamp_ms, "offset": s.offset, "lag": s.lag }))
                .collect();
            json!({ "topic": topic, "partition": partition, "commits": points })
        })
        .collect();
    Ok(json!({
        "group": group,
        "type": kind.as_deref().map(|k| if k.is_empty() { "classic" } else { k }),
        "state": state,
        "protocol": protocol,
        "members": members,
        "status": crate::group::lag::group_status(statuses.iter().copied()),
        "total_lag": lags.iter().map(|p| p.lag.max(0)).sum::<i64>(),
        "partitions": partitions,
        "lag_history": history,
    }))
}

/// `POST /v1/groups/{group}/delete` (Kafka refuses a group with members).
pub(super) async fn delete(shard: &Rc<Shard>, group: &str) -> ConsoleResult {
    let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
    let answer = kafka::call(shard, DELETE_GROUPS_VERSION, &request).await?;
    for r in &answer.results {
        check(r.error_code, &format!("delete group {group:?}"))?;
    }
    Ok(json!({ "deleted": group }))
}
