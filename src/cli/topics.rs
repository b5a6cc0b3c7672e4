//! `corestream topics ...` and `corestream api-versions`.

use std::collections::BTreeMap;

use clap::Subcommand;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    ListOffsetsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::client::{check, ClientError, Cluster};
use super::output::Output;

/// Time a broker may take to create or delete topics, in ms.
pub const ADMIN_TIMEOUT_MS: i32 = 30_000;
/// Highest CreateTopics version this client fills in.
const CREATE_TOPICS_VERSION_MAX: i16 = 7;
/// Highest DeleteTopics version (v6 switched to topic states).
const DELETE_TOPICS_VERSION_MAX: i16 = 5;
/// Highest CreatePartitions version.
const CREATE_PARTITIONS_VERSION_MAX: i16 = 3;
/// Highest ListOffsets version.
const LIST_OFFSETS_VERSION_MAX: i16 = 7;
/// ListOffsets timestamp sentinels.
pub const OFFSET_LATEST: i64 = -1;
/// See [`OFFSET_LATEST`].
pub const OFFSET_EARLIEST: i64 = -2;

/// Topic commands.
#[derive(Subcommand, Debug)]
pub enum TopicsCommand {
    /// List topics.
    List {
        /// Include internal topics (__consumer_offsets).
        #[arg(long)]
        internal: bool,
    },
    /// Create a topic.
    Create {
        /// Topic name.
        name: String,
        /// Partitions (-1: the broker's default).
        #[arg(short, long, default_value_t = -1)]
        partitions: i32,
        /// Replication factor (-1: the broker's default).
        #[arg(short, long, default_value_t = -1)]
        replication_factor: i16,
        /// Topic config KEY=VALUE (repeatable), e.g. retention.ms=3600000.
        #[arg(short, long = "config")]
        configs: Vec<String>,
    },
    /// Partitions, leaders and offsets of topics.
    Describe {
        /// Topic names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Grow a topic to a new total partition count.
    AlterPartitions {
        /// Topic name.
        name: String,
        /// New total partition count.
        #[arg(short, long)]
        partitions: i32,
    },
    /// Delete topics.
    Delete {
        /// Topic names.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// Runs a topic command.
pub fn run(cluster: &mut Cluster, out: &Output, cmd: TopicsCommand) -> Result<(), ClientError> {
    match cmd {
        TopicsCommand::List { internal } => list(cluster, out, internal),
        TopicsCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => create(cluster, &name, partitions, replication_factor, &configs),
        TopicsCommand::Describe { names } => describe(cluster, out, &names),
        TopicsCommand::AlterPartitions { name, partitions } => {
            alter_partitions(cluster, &name, partitions)
        }
        TopicsCommand::Delete { names } => delete(cluster, &names),
    }
}

pub(crate) fn topic_name(name: &str) -> TopicName {
    StrBytes::from_string(name.to_string()).into()
}

fn list(cluster: &mut Cluster, out: &Output, internal: bool) -> Result<(), ClientError> {
    let md = cluster.metadata(None)?;
    let mut topics: Vec<(String, usize, bool)> = md
        .topics
        .iter()
        .filter(|t| internal || !t.is_internal)
        .filter_map(|t| {
            Some((
                t.name.as_ref()?.to_string(),
                t.partitions.len(),
                t.is_internal,
            ))
        })
        .collect();
    topics.sort();
    let rows: Vec<Vec<String>> = topics
        .iter()
        .map(|(n, p, i)| vec![n.clone(), p.to_string(), i.to_string()])
        .collect();
    let json = json!(topics
        .iter()
        .map(|(n, p, i)| json!({"name": n, "partitions": p, "internal": i}))
        .collect::<Vec<_>>());
    out.table(&["TOPIC", "PARTITIONS", "INTERNAL"], &rows, json);
    Ok(())
}

/// Creates topic `name` (CreateTopics to the bootstrap broker).
pub fn create(
    cluster: &mut Cluster,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[String],
) -> Result<(), ClientError> {
    let mut topic = CreatableTopic::default();
    topic.name = topic_name(name);
    topic.num_partitions = partitions;
    topic.replication_factor = replication_factor;
    for kv in configs {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| ClientError::Usage(format!("--config {kv:?} is not KEY=VALUE")))?;
        let mut c = CreatableTopicConfig::default();
        c.name = StrBytes::from_string(k.to_string());
        c.value = Some(StrBytes::from_string(v.to_string()));
        topic.configs.push(c);
    }
    let mut request = CreateTopicsRequest::default();
    request.topics = vec![topic];
    request.timeout_ms = ADMIN_TIMEOUT_MS;
    // Topic admin goes to the controller in Kafka; any broker forwards it.
    let answer = cluster
        .bootstrap
        .send(&request, CREATE_TOPICS_VERSION_MAX)?;
    for t in &answer.topics {
        if t.error_code != 0 {
            let message = t
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            return Err(ClientError::Kafka {
                context: format!("creating topic {name:?} {message}")
                    .trim_end()
                    .to_string(),
                code: t.error_code,
            });
        }
    }
    eprintln!("created topic {name}");
    Ok(())
}

fn delete(cluster: &mut Cluster, names: &[String]) -> Result<(), ClientError> {
    let mut request = DeleteTopicsRequest::default();
    request.topic_names = names.iter().map(|n| topic_name(n)).collect();
    request.timeout_ms = ADMIN_TIMEOUT_MS;
    let answer = cluster
        .bootstrap
        .send(&request, DELETE_TOPICS_VERSION_MAX)?;
    for r in &answer.responses {
        let name = r.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
        check(r.error_code, || format!("deleting topic {name:?}"))?;
        eprintln!("deleted topic {name}");
    }
    Ok(())
}

fn alter_partitions(cluster: &mut Cluster, name: &str, total: i32) -> Result<(), ClientError> {
    let mut topic = CreatePartitionsTopic::default();
    topic.name = topic_name(name);
    topic.count = total;
    let mut request = CreatePartitionsRequest::default();
    request.topics = vec![topic];
    request.timeout_ms = ADMIN_TIMEOUT_MS;
    let answer = cluster
        .bootstrap
        .send(&request, CREATE_PARTITIONS_VERSION_MAX)?;
    for r in &answer.results {
        check(r.error_code, || {
            format!("growing topic {name:?} to {total} partitions")
        })?;
    }
    eprintln!("topic {name} now has {total} partitions");
    Ok(())
}

/// Offsets at `timestamp` (or [`OFFSET_EARLIEST`] / [`OFFSET_LATEST`]) of
/// the given partitions of `topic`, asked of each partition's leader.
pub fn list_offsets(
    cluster: &mut Cluster,
    topic: &str,
    partitions: &[(i32, BrokerId)],
    timestamp: i64,
) -> Result<BTreeMap<i32, i64>, ClientError> {
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (p, leader) in partitions {
        by_leader.entry(leader.0).or_default().push(*p);
    }
    let mut offsets = BTreeMap::new();
    for (leader, parts) in by_leader {
        let mut t = ListOffsetsTopic::default();
        t.name = topic_name(topic);
        t.partitions = parts
            .iter()
            .map(|&p| {
                let mut lp = ListOffsetsPartition::default();
                lp.partition_index = p;
                lp.timestamp = timestamp;
                lp
            })
            .collect();
        let mut request = ListOffsetsRequest::default();
        request.replica_id = BrokerId(-1);
        request.topics = vec![t];
        let answer = cluster
            .node(leader)?
            .send(&request, LIST_OFFSETS_VERSION_MAX)?;
        for t in &answer.topics {
            for p in &t.partitions {
                check(p.error_code, || {
                    format!("offsets of {topic}-{}", p.partition_index)
                })?;
                offsets.insert(p.partition_index, p.offset);
            }
        }
    }
    Ok(offsets)
}

fn describe(cluster: &mut Cluster, out: &Output, names: &[String]) -> Result<(), ClientError> {
    let mut rows = Vec::new();
    let mut json_topics = Vec::new();
    for name in names {
        let md = cluster.metadata(Some(std::slice::from_ref(name)))?;
        let t = md
            .topics
            .first()
            .ok_or_else(|| ClientError::Usage(format!("topic {name:?} not in metadata")))?;
        check(t.error_code, || format!("describing topic {name:?}"))?;
        let leaders = cluster.leaders(name)?;
        let start = list_offsets(cluster, name, &leaders, OFFSET_EARLIEST)?;
        let end = list_offsets(cluster, name, &leaders, OFFSET_LATEST)?;
        let mut parts: Vec<_> = t.partitions.iter().collect();
        parts.sort_by_key(|p| p.partition_index);
        let mut json_parts = Vec::new();
        for p in parts {
            let i = p.partition_index;
            let replicas: Vec<i32> = p.replica_nodes.iter().map(|b| b.0).collect();
            let isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
            let (s, e) = (
                start.get(&i).copied().unwrap_or(-1),
                end.get(&i).copied().unwrap_or(-1),
            );
            rows.push(vec![
                name.clone(),
                i.to_string(),
                p.leader_id.0.to_string(),
                format!("{replicas:?}"),
                format!("{isr:?}"),
                s.to_string(),
                e.to_string(),
            ]);
            json_parts.push(json!({
                "partition": i, "leader": p.leader_id.0, "replicas": replicas,
                "isr": isr, "log_start_offset": s, "log_end_offset": e,
            }));
        }
        json_topics.push(json!({
            "name": name, "topic_id": t.topic_id.to_string(),
            "internal": t.is_internal, "partitions": json_parts,
        }));
    }
    out.table(
        &[
            "TOPIC",
            "PARTITION",
            "LEADER",
            "REPLICAS",
            "ISR",
            "LOG-START",
            "LOG-END",
        ],
        &rows,
        json!(json_topics),
    );
    Ok(())
}

/// Every broker and the API versions it serves (kafka-broker-api-versions).
pub fn api_versions(cluster: &mut Cluster, out: &Output) -> Result<(), ClientError> {
    let md = cluster.metadata(Some(&[]))?;
    let (rows, json) = api_versions_of(cluster, &md)?;
    out.table(&API_VERSIONS_HEADERS, &rows, json);
    Ok(())
}

/// Columns of [`api_versions_of`]'s rows.
pub const API_VERSIONS_HEADERS: [&str; 6] = ["NODE", "ADDRESS", "API", "KEY", "MIN", "MAX"];

/// Table rows and JSON (one object per broker) of the API versions of
/// every broker in `md`.
pub fn api_versions_of(
    cluster: &mut Cluster,
    md: &kafka_protocol::messages::MetadataResponse,
) -> Result<(Vec<Vec<String>>, serde_json::Value), ClientError> {
    let mut rows = Vec::new();
    let mut json_brokers = Vec::new();
    let mut brokers: Vec<_> = md
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.host.to_string(), b.port))
        .collect();
    brokers.sort();
    for (node, host, port) in brokers {
        let conn = cluster.node(node)?;
        let mut apis: Vec<_> = conn.versions.iter().map(|(k, v)| (*k, *v)).collect();
        apis.sort();
        let mut json_apis = Vec::new();
        for (key, (min, max)) in apis {
            let name = ApiKey::try_from(key)
                .map(|k| format!("{k:?}"))
                .unwrap_or_else(|_| key.to_string());
            rows.push(vec![
                format!("{node}"),
                format!("{host}:{port}"),
                name.clone(),
                key.to_string(),
                min.to_string(),
                max.to_string(),
            ]);
            json_apis.push(json!({"api": name, "key": key, "min": min, "max": max}));
        }
        json_brokers.push(json!({"node_id": node, "host": host, "port": port, "apis": json_apis}));
    }
    Ok((rows, json!(json_brokers)))
}
