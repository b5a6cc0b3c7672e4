//! `corestream groups ...` and `corestream lag`.

use std::collections::BTreeMap;

use bytes::{Buf, Bytes};
use clap::{Args, Subcommand};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetCommitRequest,
    OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::client::{check, ClientError, Cluster};
use super::output::Output;
use super::topics::{list_offsets, topic_name, OFFSET_LATEST};

/// Highest ListGroups version this client fills in.
const LIST_GROUPS_VERSION_MAX: i16 = 4;
/// Highest DescribeGroups version.
const DESCRIBE_GROUPS_VERSION_MAX: i16 = 5;
/// Highest OffsetFetch version (v8 batched groups).
const OFFSET_FETCH_VERSION_MAX: i16 = 7;
/// Highest DeleteGroups version.
const DELETE_GROUPS_VERSION_MAX: i16 = 2;
/// Highest OffsetCommit version (v9+ may address topics by id).
pub const OFFSET_COMMIT_VERSION_MAX: i16 = 8;

/// Group commands.
#[derive(Subcommand, Debug)]
pub enum GroupsCommand {
    /// List consumer groups of every broker.
    List,
    /// State, members with their assignments, and lag of groups.
    Describe {
        /// Group ids.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Per-partition lag of a group.
    Lag(LagArgs),
    /// Move an Empty group's committed offsets on one topic (dry run unless
    /// --execute).
    ResetOffsets(super::reset::ResetArgs),
    /// Delete empty groups (their committed offsets go too).
    Delete {
        /// Group ids.
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

/// Arguments of `lag`.
#[derive(Args, Debug)]
pub struct LagArgs {
    /// Group id.
    pub group: String,
}

/// Runs a group command.
pub fn run(cluster: &mut Cluster, out: &Output, cmd: GroupsCommand) -> Result<(), ClientError> {
    match cmd {
        GroupsCommand::List => list(cluster, out),
        GroupsCommand::Describe { groups } => describe(cluster, out, &groups),
        GroupsCommand::Lag(args) => lag(cluster, out, &args),
        GroupsCommand::ResetOffsets(args) => super::reset::run(cluster, out, &args),
        GroupsCommand::Delete { groups } => delete(cluster, &groups),
    }
}

/// A group id for a request.
pub fn group_id(g: &str) -> GroupId {
    GroupId(StrBytes::from_string(g.to_string()))
}

fn list(cluster: &mut Cluster, out: &Output) -> Result<(), ClientError> {
    let md = cluster.metadata(Some(&[]))?;
    let nodes: Vec<i32> = md.brokers.iter().map(|b| b.node_id.0).collect();
    let mut groups = BTreeMap::new();
    for node in nodes {
        let answer = cluster
            .node(node)?
            .send(&ListGroupsRequest::default(), LIST_GROUPS_VERSION_MAX)?;
        check(answer.error_code, || {
            format!("listing groups on broker {node}")
        })?;
        for g in answer.groups {
            let state = if g.group_state.is_empty() {
                "?".to_string()
            } else {
                g.group_state.to_string()
            };
            groups.insert(
                g.group_id.to_string(),
                (g.protocol_type.to_string(), state, node),
            );
        }
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|(g, (p, s, n))| vec![g.clone(), p.clone(), s.clone(), n.to_string()])
        .collect();
    let json = json!(groups
        .iter()
        .map(|(g, (p, s, n))| json!({"group": g, "protocol_type": p, "state": s, "coordinator": n}))
        .collect::<Vec<_>>());
    out.table(
        &["GROUP", "PROTOCOL-TYPE", "STATE", "COORDINATOR"],
        &rows,
        json,
    );
    Ok(())
}

/// One partition's lag for a group.
#[derive(Debug, Clone)]
pub struct LagRow {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset (-1: none).
    pub committed: i64,
    /// Log end offset (-1: unknown).
    pub end: i64,
    /// end - committed, -1 when unknown.
    pub lag: i64,
}

/// Committed offsets of `group` (from its coordinator) against log end
/// offsets (from each partition's leader).
pub fn group_lag(cluster: &mut Cluster, group: &str) -> Result<Vec<LagRow>, ClientError> {
    let mut request = OffsetFetchRequest::default();
    request.group_id = group_id(group);
    request.topics = None; // every partition the group has an offset for
    let answer = cluster
        .coordinator(group)?
        .send(&request, OFFSET_FETCH_VERSION_MAX)?;
    check(answer.error_code, || format!("offsets of group {group:?}"))?;
    let mut committed: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
    for t in &answer.topics {
        for p in &t.partitions {
            check(p.error_code, || {
                format!(
                    "offset of group {group:?} on {}-{}",
                    t.name.as_str(),
                    p.partition_index
                )
            })?;
            committed
                .entry(t.name.to_string())
                .or_default()
                .insert(p.partition_index, p.committed_offset);
        }
    }
    let mut rows = Vec::new();
    for (topic, parts) in committed {
        let leaders = cluster.leaders(&topic)?;
        let wanted: Vec<_> = leaders
            .into_iter()
            .filter(|(p, _)| parts.contains_key(p))
            .collect();
        let ends = list_offsets(cluster, &topic, &wanted, OFFSET_LATEST)?;
        for (partition, c) in parts {
            let end = ends.get(&partition).copied().unwrap_or(-1);
            let lag = if end < 0 {
                -1
            } else if c < 0 {
                end
            } else {
                (end - c).max(0)
            };
            rows.push(LagRow {
                topic: topic.clone(),
                partition,
                committed: c,
                end,
                lag,
            });
        }
    }
    Ok(rows)
}

fn lag_rows(group: &str, rows: &[LagRow]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| {
            vec![
                group.to_string(),
                r.topic.clone(),
                r.partition.to_string(),
                r.committed.to_string(),
                r.end.to_string(),
                r.lag.to_string(),
            ]
        })
        .collect()
}

fn lag_json(group: &str, rows: &[LagRow]) -> serde_json::Value {
    json!({
        "group": group,
        "total_lag": rows.iter().map(|r| r.lag.max(0)).sum::<i64>(),
        "partitions": rows.iter().map(|r| json!({
            "topic": r.topic, "partition": r.partition, "committed_offset": r.committed,
            "log_end_offset": r.end, "lag": r.lag,
        })).collect::<Vec<_>>(),
    })
}

const LAG_HEADERS: [&str; 6] = ["GROUP", "TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG"];

/// `corestream lag GROUP`.
pub fn lag(cluster: &mut Cluster, out: &Output, args: &LagArgs) -> Result<(), ClientError> {
    let rows = group_lag(cluster, &args.group)?;
    out.table(
        &LAG_HEADERS,
        &lag_rows(&args.group, &rows),
        lag_json(&args.group, &rows),
    );
    Ok(())
}

/// A member as `describe` shows it: id, client id, host, assignment.
type MemberRow = (String, String, String, Vec<(String, Vec<i32>)>);

/// Topic-partitions of a consumer-protocol assignment (version, then
/// [topic: string, partitions: [i32]], then user data). Empty if malformed.
pub fn decode_assignment(mut buf: Bytes) -> Vec<(String, Vec<i32>)> {
    fn read(buf: &mut Bytes) -> Option<Vec<(String, Vec<i32>)>> {
        if buf.remaining() < 6 {
            return None;
        }
        let _version = buf.get_i16();
        let topics = buf.get_i32();
        let mut out = Vec::new();
        for _ in 0..topics.max(0) {
            if buf.remaining() < 2 {
                return None;
            }
            let len = buf.get_i16();
            if len < 0 || buf.remaining() < len as usize + 4 {
                return None;
            }
            let name = String::from_utf8_lossy(&buf.split_to(len as usize)).into_owned();
            let count = buf.get_i32();
            if count < 0 || buf.remaining() < count as usize * 4 {
                return None;
            }
            out.push((name, (0..count).map(|_| buf.get_i32()).collect()));
        }
        Some(out)
    }
    read(&mut buf).unwrap_or_default()
}

fn describe(cluster: &mut Cluster, out: &Output, groups: &[String]) -> Result<(), ClientError> {
    let mut json_groups = Vec::new();
    let mut text = String::new();
    for group in groups {
        let g = describe_one(cluster, group)?;
        let members: Vec<MemberRow> = g
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.client_id.to_string(),
                    m.client_host.to_string(),
                    decode_assignment(m.member_assignment.clone()),
                )
            })
            .collect();
        let lags = group_lag(cluster, group)?;
        text.push_str(&format!(
            "group {group}: state {}, protocol {} {}, {} members\n",
            g.group_state.as_str(),
            g.protocol_type.as_str(),
            g.protocol_data.as_str(),
            members.len()
        ));
        let member_rows: Vec<Vec<String>> = members
            .iter()
            .map(|(id, client, host, a)| {
                let parts: Vec<String> = a.iter().map(|(t, ps)| format!("{t}{ps:?}")).collect();
                vec![id.clone(), client.clone(), host.clone(), parts.join(" ")]
            })
            .collect();
        if !member_rows.is_empty() {
            text.push_str(&super::output::render_table(
                &["MEMBER", "CLIENT-ID", "HOST", "ASSIGNMENT"],
                &member_rows,
            ));
        }
        text.push_str(&super::output::render_table(
            &LAG_HEADERS,
            &lag_rows(group, &lags),
        ));
        text.push('\n');
        json_groups.push(json!({
            "group": group,
            "state": g.group_state.as_str(),
            "protocol_type": g.protocol_type.as_str(),
            "protocol": g.protocol_data.as_str(),
            "members": members.iter().map(|(id, client, host, a)| json!({
                "member_id": id, "client_id": client, "client_host": host,
                "assignment": a.iter().map(|(t, ps)| json!({"topic": t, "partitions": ps})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "lag": lag_json(group, &lags),
        }));
    }
    if out.json {
        println!("{}", json!(json_groups));
    } else {
        print!("{text}");
    }
    Ok(())
}

/// DescribeGroups for one group, from its coordinator.
pub(super) fn describe_one(
    cluster: &mut Cluster,
    group: &str,
) -> Result<kafka_protocol::messages::describe_groups_response::DescribedGroup, ClientError> {
    let mut request = DescribeGroupsRequest::default();
    request.groups = vec![group_id(group)];
    let answer = cluster
        .coordinator(group)?
        .send(&request, DESCRIBE_GROUPS_VERSION_MAX)?;
    let g = answer
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| ClientError::Usage(format!("no answer for group {group:?}")))?;
    check(g.error_code, || format!("describing group {group:?}"))?;
    Ok(g)
}

/// Commits `offsets` (partition, offset) of `topic` for `group`. An admin
/// commit (reset-offsets) passes generation -1 and an empty member id, as
/// kafka-consumer-groups does; a member passes its own.
pub fn commit_offsets(
    cluster: &mut Cluster,
    group: &str,
    member: (i32, &str),
    topic: &str,
    offsets: &[(i32, i64)],
) -> Result<(), ClientError> {
    let mut t = OffsetCommitRequestTopic::default();
    t.name = topic_name(topic);
    t.partitions = offsets
        .iter()
        .map(|&(p, offset)| {
            let mut cp = OffsetCommitRequestPartition::default();
            cp.partition_index = p;
            cp.committed_offset = offset;
            cp.committed_leader_epoch = -1;
            cp
        })
        .collect();
    let mut request = OffsetCommitRequest::default();
    request.group_id = group_id(group);
    request.generation_id_or_member_epoch = member.0;
    request.member_id = StrBytes::from_string(member.1.to_string());
    request.retention_time_ms = -1;
    request.topics = vec![t];
    let answer = cluster
        .coordinator(group)?
        .send(&request, OFFSET_COMMIT_VERSION_MAX)?;
    for t in &answer.topics {
        for p in &t.partitions {
            check(p.error_code, || {
                format!(
                    "committing the offset of group {group:?} on {}-{}",
                    t.name.as_str(),
                    p.partition_index
                )
            })?;
        }
    }
    Ok(())
}

fn delete(cluster: &mut Cluster, groups: &[String]) -> Result<(), ClientError> {
    for group in groups {
        let mut request = DeleteGroupsRequest::default();
        request.groups_names = vec![group_id(group)];
        let answer = cluster
            .coordinator(group)?
            .send(&request, DELETE_GROUPS_VERSION_MAX)?;
        for r in &answer.results {
            check(r.error_code, || format!("deleting group {group:?}"))?;
        }
        eprintln!("deleted group {group}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_decode_consumer_assignment() {
        let mut b = Vec::new();
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&1i16.to_be_bytes());
        b.push(b't');
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&3i32.to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes()); // null user data
        assert_eq!(
            decode_assignment(Bytes::from(b)),
            vec![("t".to_string(), vec![0, 3])]
        );
        assert!(decode_assignment(Bytes::from_static(b"\x00")).is_empty());
    }
}
