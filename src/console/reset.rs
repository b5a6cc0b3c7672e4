//! `POST /v1/groups/{group}/reset`: move a group's committed offsets on
//! one topic to the earliest, the latest, a timestamp or an offset, as
//! `kafka-consumer-groups --reset-offsets` does. Without `"execute": true`
//! it is a dry run that only returns the plan; with it the plan is
//! committed through the group coordinator (OffsetCommit with generation
//! -1, the admin form), which Kafka refuses while the group has members.
//! Targets are clamped to each partition's [log start, log end].

use std::rc::Rc;

use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::protocol::StrBytes;
use serde::Deserialize;
use serde_json::json;

use super::groups::group_id;
use super::guard::refuse_internal_topic;
use super::kafka::{self, check, topic_name};
use super::{ConsoleError, ConsoleResult};
use crate::shard::Shard;

const OFFSET_COMMIT_VERSION: i16 = 8;
const DESCRIBE_GROUPS_VERSION: i16 = 5;
/// Group states in which an admin commit is allowed.
const RESETTABLE_STATES: &[&str] = &["Empty", "Dead", ""];

/// Body of a reset.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Reset {
    topic: String,
    /// "earliest", "latest", "timestamp" or "offset".
    to: String,
    /// With "offset".
    offset: Option<i64>,
    /// With "timestamp": ms since the epoch...
    timestamp_ms: Option<i64>,
    /// ...or an ISO-8601 time (2026-11-22T10:00:00Z).
    datetime: Option<String>,
    /// Commit the plan; otherwise a dry run.
    #[serde(default)]
    execute: bool,
}

/// What the reset moves to, parsed from the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Earliest,
    Latest,
    Offset(i64),
    Timestamp(i64),
}

fn target(body: &Reset) -> Result<Target, ConsoleError> {
    let missing = |what: &str| ConsoleError::BadRequest(format!("to={:?} needs {what}", body.to));
    match body.to.as_str() {
        "earliest" => Ok(Target::Earliest),
        "latest" => Ok(Target::Latest),
        "offset" => body
            .offset
            .map(Target::Offset)
            .ok_or_else(|| missing("offset")),
        "timestamp" => match (body.timestamp_ms, &body.datetime) {
            (Some(ms), _) => Ok(Target::Timestamp(ms)),
            (None, Some(text)) => crate::cli::reset::parse_datetime_ms(text)
                .map(Target::Timestamp)
                .map_err(ConsoleError::BadRequest),
            (None, None) => Err(missing("timestamp_ms or datetime")),
        },
        other => Err(ConsoleError::BadRequest(format!(
            "to {other:?}: expected earliest, latest, timestamp or offset"
        ))),
    }
}

/// The new offset of one partition with log `[start, end]`; `at_time` is
/// what ListOffsets answered for the timestamp (-1: no record that late).
fn new_offset(target: Target, start: i64, end: i64, at_time: i64) -> i64 {
    let wanted = match target {
        Target::Earliest => start,
        Target::Latest => end,
        Target::Offset(n) => n,
        Target::Timestamp(_) if at_time < 0 => end,
        Target::Timestamp(_) => at_time,
    };
    wanted.clamp(start, end.max(start))
}

async fn group_state(shard: &Rc<Shard>, group: &str) -> Result<String, ConsoleError> {
    let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    let answer = kafka::call(shard, DESCRIBE_GROUPS_VERSION, &request).await?;
    Ok(answer
        .groups
        .first()
        .map(|g| g.group_state.to_string())
        .unwrap_or_default())
}

/// The reset endpoint.
pub(super) async fn reset(shard: &Rc<Shard>, group: &str, body: &Reset) -> ConsoleResult {
    let target = target(body)?;
    let topic = body.topic.as_str();
    refuse_internal_topic("reset group offsets on", topic)?;
    let count = kafka::partition_count(shard, topic).await?;
    let partitions: Vec<i32> = (0..count).collect();
    let starts = kafka::list_offsets(shard, topic, &partitions, kafka::OFFSET_EARLIEST).await?;
    let ends = kafka::list_offsets(shard, topic, &partitions, kafka::OFFSET_LATEST).await?;
    let at_time = match target {
        Target::Timestamp(ms) => Some(kafka::list_offsets(shard, topic, &partitions, ms).await?),
        _ => None,
    };
    let committed = crate::group::lag::group_lag(shard, group)
        .await
        .map_err(|code| ConsoleError::Kafka {
            code,
            name: kafka::error_name(code),
            context: format!("offsets of group {group:?}"),
        })?;
    let plan: Vec<(i32, i64, i64)> = partitions
        .iter()
        .map(|&p| {
            let offset =
                |m: &std::collections::BTreeMap<i32, (i64, i64)>| m.get(&p).map_or(0, |o| o.0);
            let at = at_time
                .as_ref()
                .map_or(-1, |m| m.get(&p).map_or(-1, |o| o.0));
            let current = committed
                .iter()
                .find(|l| l.topic == topic && l.partition == p)
                .map_or(-1, |l| l.committed_offset);
            (
                p,
                current,
                new_offset(target, offset(&starts), offset(&ends), at),
            )
        })
        .collect();
    if body.execute {
        let state = group_state(shard, group).await?;
        if !RESETTABLE_STATES.contains(&state.as_str()) {
            return Err(ConsoleError::Kafka {
                code: 68,
                name: kafka::error_name(68),
                context: format!("group {group:?} is {state}: stop its consumers before a reset"),
            });
        }
        commit(shard, group, topic, &plan).await?;
    }
    let rows: Vec<_> = plan
        .iter()
        .map(|&(p, current, new)| json!({ "partition": p, "current_offset": current, "new_offset": new }))
        .collect();
    Ok(json!({
        "group": group,
        "topic": topic,
        "dry_run": !body.execute,
        "executed": body.execute,
        "partitions": rows,
    }))
}

async fn commit(
    shard: &Rc<Shard>,
    group: &str,
    topic: &str,
    plan: &[(i32, i64, i64)],
) -> Result<(), ConsoleError> {
    let request = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_retention_time_ms(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                plan.iter()
                    .map(|&(p, _, new)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(new)
                            .with_committed_leader_epoch(-1)
                    })
                    .collect(),
            )]);
    let answer = kafka::call(shard, OFFSET_COMMIT_VERSION, &request).await?;
    for t in &answer.topics {
        for p in &t.partitions {
            check(
                p.error_code,
                &format!("commit {group:?} {topic}/{}", p.partition_index),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_targets_clamp_to_the_log() {
        assert_eq!(new_offset(Target::Earliest, 5, 10, -1), 5);
        assert_eq!(new_offset(Target::Latest, 5, 10, -1), 10);
        assert_eq!(new_offset(Target::Offset(99), 5, 10, -1), 10);
        assert_eq!(new_offset(Target::Offset(1), 5, 10, -1), 5);
        assert_eq!(new_offset(Target::Timestamp(0), 5, 10, 7), 7);
        assert_eq!(new_offset(Target::Timestamp(0), 5, 10, -1), 10);
    }
}
