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
use super::topics::{list_offsets, topic_name, OFFSET_EARLIEST, OFFSET_LATEST};

/// Highest ListGroups version this client fills in.
const LIST_GROUPS_VERSION_MAX: i16 = 4;
/// Highest DescribeGroups version.
const DESCRIBE_GROUPS_VERSION_MAX: i16 = 5;
/// Highest OffsetFetch version (v8 batched groups).
const OFFSET_FETCH_VERSION_MAX: i16 = 7;
/// Highest DeleteGroups version.
const DELETE_GROUPS_VERSION_MAX: i16 = 2;
/// Highest OffsetCommit version (v9+ may address topics by id).
const OFFSET_COMMIT_VERSION_MAX: i16 = 8;

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
    ResetOffsets(ResetArgs),
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

/// Arguments of `groups reset-offsets`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(
    ["to_earliest", "to_latest", "to_offset", "shift_by"]
)))]
pub struct ResetArgs {
    /// Group id.
    pub group: String,
    /// Topic whose partitions are reset (every partition of it).
    #[arg(long)]
    pub topic: String,
    /// To each partition's log start offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// To each partition's log end offset.
    #[arg(long)]
    pub to_latest: bool,
    /// To this offset (clamped to [log start, log end]).
    #[arg(long, value_name = "N")]
    pub to_offset: Option<i64>,
    /// Current committed offset plus N (N may be negative), clamped.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub shift_by: Option<i64>,
    /// Commit the new offsets; without it only print them.
    #[arg(long)]
    pub execute: bool,
}

/// Runs a group command.
pub fn run(cluster: &mut Cluster, out: &Output, cmd: GroupsCommand) -> Result<(), ClientError> {
    match cmd {
        GroupsCommand::List => list(cluster, out),
        GroupsCommand::Describe { groups } => describe(cluster, out, &groups),
        GroupsCommand::Lag(args) => lag(cluster, out, &args),
        GroupsCommand::ResetOffsets(args) => reset_offsets(cluster, out, &args),
        GroupsCommand::Delete { groups } => delete(cluster, &groups),
    }
}

fn group_id(g: &str) -> GroupId {
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

/// The new offset of one partition: `start`/`end` are its log start and
/// end offsets, `current` the committed offset (-1: none).
pub fn reset_target(args: &ResetArgs, start: i64, end: i64, current: i64) -> i64 {
    let wanted = if args.to_earliest {
        start
    } else if args.to_latest {
        end
    } else if let Some(n) = args.to_offset {
        n
    } else {
        let base = if current < 0 { start } else { current };
        base.saturating_add(args.shift_by.unwrap_or(0))
    };
    wanted.clamp(start, end.max(start))
}

/// DescribeGroups for one group, from its coordinator.
fn describe_one(
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

/// State of `group` from DescribeGroups ("Dead" when it does not exist).
fn group_state(cluster: &mut Cluster, group: &str) -> Result<String, ClientError> {
    Ok(describe_one(cluster, group)?.group_state.to_string())
}

fn reset_offsets(cluster: &mut Cluster, out: &Output, args: &ResetArgs) -> Result<(), ClientError> {
    let group = args.group.as_str();
    let state = group_state(cluster, group)?;
    if args.execute && !matches!(state.as_str(), "Empty" | "Dead" | "") {
        // NON_EMPTY_GROUP, as Kafka's tool reports it: exit status 1
        const NON_EMPTY_GROUP: i16 = 68;
        return check(NON_EMPTY_GROUP, || {
            format!("group {group:?} is {state}, not Empty: stop its consumers before resetting offsets")
        });
    }
    let leaders = cluster.leaders(&args.topic)?;
    let starts = list_offsets(cluster, &args.topic, &leaders, OFFSET_EARLIEST)?;
    let ends = list_offsets(cluster, &args.topic, &leaders, OFFSET_LATEST)?;
    let current: BTreeMap<i32, i64> = group_lag(cluster, group)?
        .into_iter()
        .filter(|r| r.topic == args.topic)
        .map(|r| (r.partition, r.committed))
        .collect();
    let mut plan = Vec::new();
    for (p, _) in &leaders {
        let start = starts.get(p).copied().unwrap_or(0);
        let end = ends.get(p).copied().unwrap_or(start);
        let cur = current.get(p).copied().unwrap_or(-1);
        plan.push((*p, cur, reset_target(args, start, end, cur)));
    }
    if args.execute {
        let mut t = OffsetCommitRequestTopic::default();
        t.name = topic_name(&args.topic);
        t.partitions = plan
            .iter()
            .map(|&(p, _, new)| {
                let mut cp = OffsetCommitRequestPartition::default();
                cp.partition_index = p;
                cp.committed_offset = new;
                cp.committed_leader_epoch = -1;
                cp
            })
            .collect();
        let mut request = OffsetCommitRequest::default();
        request.group_id = group_id(group);
        // an admin commit: no member, no generation (kafka-consumer-groups)
        request.generation_id_or_member_epoch = -1;
        request.member_id = StrBytes::from_static_str("");
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
    }
    let rows: Vec<Vec<String>> = plan
        .iter()
        .map(|(p, cur, new)| {
            vec![
                group.to_string(),
                args.topic.clone(),
                p.to_string(),
                cur.to_string(),
                new.to_string(),
            ]
        })
        .collect();
    out.table(
        &[
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "NEW-OFFSET",
        ],
        &rows,
        json!({
            "group": group, "topic": args.topic, "executed": args.execute,
            "partitions": plan.iter().map(|(p, cur, new)| json!({
                "partition": p, "current_offset": cur, "new_offset": new,
            })).collect::<Vec<_>>(),
        }),
    );
    if !args.execute {
        eprintln!("dry run: nothing committed (add --execute to apply)");
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

    fn reset(f: impl FnOnce(&mut ResetArgs)) -> ResetArgs {
        let mut a = ResetArgs {
            group: "g".into(),
            topic: "t".into(),
            to_earliest: false,
            to_latest: false,
            to_offset: None,
            shift_by: None,
            execute: false,
        };
        f(&mut a);
        a
    }

    #[test]
    fn cli_reset_offsets_targets_are_clamped() {
        assert_eq!(reset_target(&reset(|a| a.to_earliest = true), 5, 20, 12), 5);
        assert_eq!(reset_target(&reset(|a| a.to_latest = true), 5, 20, 12), 20);
        assert_eq!(
            reset_target(&reset(|a| a.to_offset = Some(9)), 5, 20, 12),
            9
        );
        assert_eq!(
            reset_target(&reset(|a| a.to_offset = Some(99)), 5, 20, 12),
            20
        );
        assert_eq!(
            reset_target(&reset(|a| a.shift_by = Some(-3)), 5, 20, 12),
            9
        );
        assert_eq!(
            reset_target(&reset(|a| a.shift_by = Some(-30)), 5, 20, 12),
            5
        );
        assert_eq!(reset_target(&reset(|a| a.shift_by = Some(2)), 5, 20, -1), 7);
    }

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
