//! Topic endpoints: list, describe, create, delete, add partitions, read
//! and edit configs (Kafka's names, with the broker's documentation),
//! empty (DeleteRecords up to the high watermark). Each is one Kafka
//! request through [`kafka::call`]; sizes on disk and watermarks for the
//! list come from the shards' reports.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsRequest, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use kafka_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde::Deserialize;
use serde_json::json;

use super::access::{self, Need};
use super::guard::refuse_internal_topic;
use super::kafka::{self, check, check_message, topic_name};
use super::overview::{observe, reports};
use super::{ConsoleError, ConsoleResult};
use crate::security::acl::Operation;
use crate::shard::Shard;

/// How long an admin request may wait for the broker, in ms.
const ADMIN_TIMEOUT_MS: i32 = 30_000;
/// Kafka's resource type for a topic (DescribeConfigs, AlterConfigs).
const RESOURCE_TOPIC: i8 = 2;
/// IncrementalAlterConfigs operations.
const CONFIG_OP_SET: i8 = 0;
const CONFIG_OP_DELETE: i8 = 1;
/// Kafka's ConfigSource codes, named for the console.
const CONFIG_SOURCES: &[(i8, &str)] = &[
    (1, "topic"),
    (2, "dynamic broker"),
    (3, "dynamic default broker"),
    (4, "static broker"),
    (5, "default"),
];
const CREATE_TOPICS_VERSION: i16 = 7;
const DELETE_TOPICS_VERSION: i16 = 6;
const CREATE_PARTITIONS_VERSION: i16 = 3;
const DESCRIBE_CONFIGS_VERSION: i16 = 4;
const INCREMENTAL_ALTER_CONFIGS_VERSION: i16 = 1;
const DELETE_RECORDS_VERSION: i16 = 2;

/// Per partition of a topic, from the shard reports.
#[derive(Debug, Default, Clone, Copy)]
struct PartitionFigures {
    shard: usize,
    log_start: i64,
    high_watermark: i64,
    size_bytes: u64,
}

async fn figures(
    shard: &Rc<Shard>,
) -> (
    BTreeMap<(String, i32), PartitionFigures>,
    BTreeMap<String, f64>,
) {
    let reports = reports(shard).await;
    let rates = observe(&reports);
    let mut out = BTreeMap::new();
    for r in &reports {
        for p in &r.partitions {
            let f = PartitionFigures {
                shard: r.shard,
                log_start: p.log_start_offset,
                high_watermark: p.high_watermark,
                size_bytes: p.size_bytes,
            };
            out.insert((p.topic.clone(), p.partition), f);
        }
    }
    (out, rates.topic_messages_per_s)
}

/// `GET /v1/topics`.
pub(super) async fn list(shard: &Rc<Shard>) -> ConsoleResult {
    let metadata = kafka::metadata(shard, None).await?;
    let (figures, rates) = figures(shard).await;
    let mut topics: Vec<_> = metadata
        .topics
        .iter()
        .filter_map(|t| {
            let name = t.name.as_ref()?.0.as_str();
            let parts: Vec<_> = (0..t.partitions.len() as i32)
                .filter_map(|p| figures.get(&(name.to_string(), p)))
                .collect();
            Some(json!({
                "name": name,
                "internal": t.is_internal,
                "partitions": t.partitions.len(),
                "replication_factor": t.partitions.first().map_or(0, |p| p.replica_nodes.len()),
                "size_bytes": parts.iter().map(|f| f.size_bytes).sum::<u64>(),
                "messages": parts.iter().map(|f| (f.high_watermark - f.log_start).max(0)).sum::<i64>(),
                "produce_rate_per_s": rates.get(name).copied().unwrap_or(0.0),
            }))
        })
        .collect();
    topics.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(json!({ "topics": topics }))
}

/// `GET /v1/topics/{topic}`: partitions with watermarks, owner shard, size.
pub(super) async fn describe(shard: &Rc<Shard>, topic: &str) -> ConsoleResult {
    let metadata = kafka::metadata(shard, Some(&[topic])).await?;
    let meta = metadata
        .topics
        .first()
        .ok_or_else(|| ConsoleError::NotFound(format!("topic {topic:?} not found")))?;
    check(meta.error_code, &format!("topic {topic:?}"))?;
    let (figures, rates) = figures(shard).await;
    let partitions: Vec<_> = meta
        .partitions
        .iter()
        .map(|p| {
            let f = figures
                .get(&(topic.to_string(), p.partition_index))
                .copied()
                .unwrap_or_default();
            json!({
                "partition": p.partition_index,
                "leader": p.leader_id.0,
                "replicas": p.replica_nodes.iter().map(|r| r.0).collect::<Vec<_>>(),
                "isr": p.isr_nodes.iter().map(|r| r.0).collect::<Vec<_>>(),
                "shard": f.shard,
                "log_start_offset": f.log_start,
                "high_watermark": f.high_watermark,
                "messages": (f.high_watermark - f.log_start).max(0),
                "size_bytes": f.size_bytes,
            })
        })
        .collect();
    Ok(json!({
        "name": topic,
        "topic_id": meta.topic_id.to_string(),
        "internal": meta.is_internal,
        "produce_rate_per_s": rates.get(topic).copied().unwrap_or(0.0),
        "partitions": partitions,
    }))
}

/// Body of `POST /v1/topics`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateTopic {
    name: String,
    /// -1 (or absent): the broker's default.
    #[serde(default = "minus_one")]
    partitions: i32,
    #[serde(default = "minus_one_i16")]
    replication_factor: i16,
    #[serde(default)]
    configs: BTreeMap<String, String>,
}

fn minus_one() -> i32 {
    -1
}

fn minus_one_i16() -> i16 {
    -1
}

/// `POST /v1/topics`.
pub(super) async fn create(shard: &Rc<Shard>, body: &CreateTopic) -> ConsoleResult {
    refuse_internal_topic("create", &body.name)?;
    // Kafka's CreateTopics rule: CREATE on the cluster or on the topic.
    access::require_any(
        shard,
        &[
            Need::cluster(Operation::Create),
            Need::topic(Operation::Create, &body.name),
        ],
    )?;
    let configs = body
        .configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.clone()))
                .with_value(Some(StrBytes::from_string(v.clone())))
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(ADMIN_TIMEOUT_MS)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(&body.name))
            .with_num_partitions(body.partitions)
            .with_replication_factor(body.replication_factor)
            .with_configs(configs)]);
    let answer = kafka::call(shard, CREATE_TOPICS_VERSION, &request).await?;
    for t in &answer.topics {
        check_message(
            t.error_code,
            t.error_message.as_ref(),
            &format!("create {:?}", body.name),
        )?;
    }
    let created = answer.topics.first();
    Ok(json!({
        "name": body.name,
        "partitions": created.map(|t| t.num_partitions),
        "replication_factor": created.map(|t| t.replication_factor),
    }))
}

/// `POST /v1/topics/{topic}/delete`.
pub(super) async fn delete(shard: &Rc<Shard>, topic: &str) -> ConsoleResult {
    refuse_internal_topic("delete", topic)?;
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(ADMIN_TIMEOUT_MS)
        .with_topics(vec![
            DeleteTopicState::default().with_name(Some(topic_name(topic)))
        ]);
    let answer = kafka::call(shard, DELETE_TOPICS_VERSION, &request).await?;
    for r in &answer.responses {
        check_message(
            r.error_code,
            r.error_message.as_ref(),
            &format!("delete {topic:?}"),
        )?;
    }
    Ok(json!({ "deleted": topic }))
}

/// Body of `POST /v1/topics/{topic}/partitions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AddPartitions {
    /// The new total partition count.
    count: i32,
}

/// `POST /v1/topics/{topic}/partitions`.
pub(super) async fn add_partitions(
    shard: &Rc<Shard>,
    topic: &str,
    body: &AddPartitions,
) -> ConsoleResult {
    refuse_internal_topic("add partitions to", topic)?;
    let request = CreatePartitionsRequest::default()
        .with_timeout_ms(ADMIN_TIMEOUT_MS)
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic_name(topic))
            .with_count(body.count)]);
    let answer = kafka::call(shard, CREATE_PARTITIONS_VERSION, &request).await?;
    for r in &answer.results {
        check_message(
            r.error_code,
            r.error_message.as_ref(),
            &format!("partitions of {topic:?}"),
        )?;
    }
    Ok(json!({ "name": topic, "partitions": body.count }))
}

/// `GET /v1/topics/{topic}/configs`: every config with value, source,
/// read-only flag and Kafka's documentation.
pub(super) async fn configs(shard: &Rc<Shard>, topic: &str) -> ConsoleResult {
    let request = DescribeConfigsRequest::default()
        .with_include_documentation(true)
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(StrBytes::from_string(topic.to_string()))
            .with_configuration_keys(None)]);
    let answer = kafka::call(shard, DESCRIBE_CONFIGS_VERSION, &request).await?;
    let result = answer
        .results
        .first()
        .ok_or_else(|| ConsoleError::Internal("DescribeConfigs: no result".into()))?;
    check_message(
        result.error_code,
        result.error_message.as_ref(),
        &format!("configs of {topic:?}"),
    )?;
    let configs: Vec<_> = result
        .configs
        .iter()
        .map(|c| {
            let source = CONFIG_SOURCES
                .iter()
                .find(|(code, _)| *code == c.config_source)
                .map_or("unknown", |(_, name)| name);
            json!({
                "name": c.name.as_str(),
                "value": c.value.as_ref().map(|v| v.as_str()),
                "source": source,
                "read_only": c.read_only,
                "sensitive": c.is_sensitive,
                "documentation": c.documentation.as_ref().map(|d| d.as_str()),
            })
        })
        .collect();
    Ok(json!({ "name": topic, "configs": configs }))
}

/// Body of `POST /v1/topics/{topic}/configs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AlterConfigs {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    delete: Vec<String>,
}

/// `POST /v1/topics/{topic}/configs`: IncrementalAlterConfigs (set, and
/// delete back to the default).
pub(super) async fn alter_configs(
    shard: &Rc<Shard>,
    topic: &str,
    body: &AlterConfigs,
) -> ConsoleResult {
    refuse_internal_topic("change configs of", topic)?;
    if body.set.is_empty() && body.delete.is_empty() {
        return Err(ConsoleError::BadRequest(
            "nothing to change: give set or delete".into(),
        ));
    }
    let set = body.set.iter().map(|(k, v)| {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(k.clone()))
            .with_config_operation(CONFIG_OP_SET)
            .with_value(Some(StrBytes::from_string(v.clone())))
    });
    let delete = body.delete.iter().map(|k| {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(k.clone()))
            .with_config_operation(CONFIG_OP_DELETE)
    });
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(StrBytes::from_string(topic.to_string()))
            .with_configs(set.chain(delete).collect()),
    ]);
    let answer = kafka::call(shard, INCREMENTAL_ALTER_CONFIGS_VERSION, &request).await?;
    for r in &answer.responses {
        check_message(
            r.error_code,
            r.error_message.as_ref(),
            &format!("configs of {topic:?}"),
        )?;
    }
    configs(shard, topic).await
}

/// `POST /v1/topics/{topic}/empty`: DeleteRecords of every partition up to
/// its high watermark (the log start moves; the records are gone).
pub(super) async fn empty(shard: &Rc<Shard>, topic: &str) -> ConsoleResult {
    refuse_internal_topic("delete records of", topic)?;
    let count = kafka::partition_count(shard, topic).await?;
    let partitions: Vec<i32> = (0..count).collect();
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(ADMIN_TIMEOUT_MS)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|&p| {
                        DeleteRecordsPartition::default()
                            .with_partition_index(p)
                            .with_offset(kafka::OFFSET_LATEST)
                    })
                    .collect(),
            )]);
    let answer = kafka::call(shard, DELETE_RECORDS_VERSION, &request).await?;
    let mut low = Vec::new();
    for p in answer.topics.iter().flat_map(|t| &t.partitions) {
        check(
            p.error_code,
            &format!("empty {topic}/{}", p.partition_index),
        )?;
        low.push(json!({ "partition": p.partition_index, "log_start_offset": p.low_watermark }));
    }
    Ok(json!({ "name": topic, "partitions": low }))
}
