//! DescribeConfigs (key 32), v0-4 (v0, which left Kafka 4.0, through
//! `handlers::legacy`, as v1 without synonyms).
//!
//! Topic resources list every key of `metadata::topic_config` with its
//! effective value and source (DYNAMIC_TOPIC_CONFIG for an override,
//! STATIC_BROKER_CONFIG when the broker's TOML sets it, DEFAULT_CONFIG),
//! synonyms in Kafka's order (topic override, broker keys, then the default
//! under the broker key Kafka reports it with, e.g. `log.retention.hours`),
//! `config_type` and documentation from v3. Nothing is sensitive; topic keys
//! are writable.
//!
//! The broker resource (name = this node id, or empty for the cluster
//! default) lists the broker's log defaults and the main static settings.
//! The log defaults are dynamic (writable; source
//! DYNAMIC_BROKER_CONFIG / DYNAMIC_DEFAULT_BROKER_CONFIG once altered) and
//! their synonyms are Kafka's: the key's whole synonym chain (e.g.
//! `log.retention.ms`, `.minutes`, `.hours`) walked layer by layer (this
//! broker, the cluster default, the TOML file, then Kafka's default), from
//! the first entry of the described key on, so `log.retention.hours` does
//! not list a `log.retention.ms` set above it. The other settings are
//! read-only. Every key carries documentation from v3 when asked: topic
//! keys their table's, broker log keys their topic key's, the rest a line
//! here.
//!
//! The broker-logger resource (type 8, name = this node id) lists `root`
//! and every logger given a level at run time (see `ops::logging`).
//!
//! Group resources (Kafka 4.0's group configs, KIP-848/932) of any name
//! list Kafka 4.0's keys: `consumer.session.timeout.ms` and
//! `consumer.heartbeat.interval.ms` with the broker's
//! `group.consumer.*` values (they apply to every group), and the share
//! group keys with Kafka's defaults (share groups are not served). Every
//! group has the broker's values, so they are reported read-only and
//! IncrementalAlterConfigs on a group is refused (INVALID_REQUEST).

use crate::security::acl::{Operation, ResourceType};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::config::Config;
use crate::metadata::topic_config::{
    config_key, is_dynamic_broker_key, resolve_entries, source, ConfigKey, ConfigKind,
    CONFIG_KEYS,
};
use crate::metadata::LogDefaults;
use crate::metadata::TopicMeta;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::DescribeConfigs,
    min: 0,
    max: 4,
};

/// Kafka's ConfigResource types.
pub const RESOURCE_TOPIC: i8 = 2;
/// See [`RESOURCE_TOPIC`].
pub const RESOURCE_BROKER: i8 = 4;
/// See [`RESOURCE_TOPIC`] (Kafka 4.0's group configs).
pub const RESOURCE_GROUP: i8 = 32;
/// See [`RESOURCE_TOPIC`]: a broker's loggers and their levels.
pub const RESOURCE_BROKER_LOGGER: i8 = 8;
/// DescribeConfigs source of a logger level.
const DYNAMIC_BROKER_LOGGER_CONFIG: i8 = 6;

/// Kafka 4.0's share-group config defaults (GroupConfig / ShareGroupConfig).
const SHARE_SESSION_TIMEOUT_MS_DEFAULT: u64 = 45_000;
const SHARE_HEARTBEAT_INTERVAL_MS_DEFAULT: u64 = 5_000;
const SHARE_RECORD_LOCK_DURATION_MS_DEFAULT: u64 = 30_000;

/// Documentation of `node.id` and `broker.id`.
const DOC_NODE_ID: &str = "The id of this broker in the cluster.";

/// What the request asks to include.
#[derive(Debug, Clone, Copy)]
pub struct Detail {
    /// Request version (fields exist per version).
    pub version: i16,
    /// `include_synonyms`.
    pub synonyms: bool,
    /// `include_documentation`.
    pub documentation: bool,
}

/// One described key before it becomes a wire struct.
struct Entry {
    name: String,
    value: String,
    source: i8,
    read_only: bool,
    kind: ConfigKind,
    doc: &'static str,
    synonyms: Vec<(String, String, i8)>,
}

/// The authorization error for `operation` (DESCRIBE_CONFIGS or
/// ALTER_CONFIGS) on a config resource, as Kafka checks it: a topic or a
/// group by name, a broker or its loggers on the cluster. `None` when
/// allowed (or for a resource type the handler refuses itself).
pub(super) fn config_refusal(
    ctx: &RequestContext,
    operation: Operation,
    resource_type: i8,
    name: &str,
) -> Option<i16> {
    let (allowed, error) = match resource_type {
        RESOURCE_TOPIC => (
            ctx.authorize(operation, ResourceType::Topic, name),
            ResponseError::TopicAuthorizationFailed,
        ),
        RESOURCE_GROUP => (
            ctx.authorize(operation, ResourceType::Group, name),
            ResponseError::GroupAuthorizationFailed,
        ),
        RESOURCE_BROKER | RESOURCE_BROKER_LOGGER => (
            ctx.authorize_cluster(operation),
            ResponseError::ClusterAuthorizationFailed,
        ),
        _ => (true, ResponseError::UnknownServerError),
    };
    (!allowed).then(|| error.code())
}

/// Answers DescribeConfigs.
pub async fn handle(
    ctx: &RequestContext,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let detail = Detail {
        version: ctx.version,
        synonyms: request.include_synonyms,
        documentation: request.include_documentation,
    };
    let snapshot = ctx.shard.snapshot();
    let results = request
        .resources
        .into_iter()
        .map(|r| {
            if let Some(code) =
                config_refusal(ctx, Operation::DescribeConfigs, r.resource_type, &r.resource_name)
            {
                return DescribeConfigsResult::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone())
                    .with_error_code(code);
            }
            let topic = snapshot.topic(&r.resource_name).cloned();
            describe_resource(
                &ctx.shard.config,
                &snapshot.log_defaults,
                &r,
                topic.as_deref(),
                detail,
            )
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// Describes one resource (`topic` is the topic it names, if it exists)
/// under the broker's effective log `defaults` (static and dynamic).
pub fn describe_resource(
    config: &Config,
    defaults: &LogDefaults,
    resource: &DescribeConfigsResource,
    topic: Option<&TopicMeta>,
    detail: Detail,
) -> DescribeConfigsResult {
    let result = DescribeConfigsResult::default()
        .with_resource_type(resource.resource_type)
        .with_resource_name(resource.resource_name.clone())
        .with_error_message(None);
    let name = resource.resource_name.as_str();
    let fail = |code: i16, message: String| {
        result
            .clone()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)))
    };
    let entries = match resource.resource_type {
        RESOURCE_TOPIC => match topic {
            Some(topic) => topic_entries(defaults, topic),
            None => {
                return fail(
                    ResponseError::UnknownTopicOrPartition.code(),
                    format!("Topic {name} does not exist."),
                )
            }
        },
        // The cluster default resource holds only the dynamic defaults set
        // on it, as Kafka describes it.
        RESOURCE_BROKER if name.is_empty() => cluster_default_entries(defaults),
        RESOURCE_BROKER if name == config.node_id.to_string() => broker_entries(config, defaults),
        RESOURCE_GROUP if !name.is_empty() => group_entries(config),
        RESOURCE_BROKER_LOGGER if name == config.node_id.to_string() => {
            match crate::ops::logging::broker_loggers() {
                Some(loggers) => logger_entries(loggers),
                None => {
                    return fail(
                        ResponseError::InvalidRequest.code(),
                        "Logging is not initialised.".to_string(),
                    )
                }
            }
        }
        RESOURCE_GROUP => {
            return fail(
                ResponseError::InvalidGroupId.code(),
                "A group name is required.".to_string(),
            )
        }
        RESOURCE_BROKER => {
            return fail(
                ResponseError::InvalidRequest.code(),
                format!("Broker {name} is not this broker ({}).", config.node_id),
            )
        }
        other => {
            return fail(
                ResponseError::InvalidRequest.code(),
                format!("Unsupported resource type {other}."),
            )
        }
    };
    let wanted = resource
        .configuration_keys
        .as_ref()
        .filter(|k| !k.is_empty());
    let configs = entries
        .into_iter()
        .filter(|e| wanted.is_none_or(|keys| keys.iter().any(|k| k.as_str() == e.name)))
        .map(|e| to_wire(e, detail))
        .collect();
    result.with_configs(configs)
}

fn topic_entries(defaults: &LogDefaults, topic: &TopicMeta) -> Vec<Entry> {
    resolve_entries(defaults, &topic.configs)
        .into_iter()
        .map(|e| Entry {
            name: e.key.name.to_string(),
            value: e.value,
            source: e.source,
            read_only: false,
            kind: e.key.kind,
            doc: e.key.doc,
            synonyms: e.synonyms,
        })
        .collect()
}

fn broker_entries(config: &Config, defaults: &LogDefaults) -> Vec<Entry> {
    let kind_of = |name: &str| topic_key_of(name).map_or(ConfigKind::Long, |k| k.kind);
    let mut entries: Vec<Entry> = defaults
        .broker_entries()
        .into_iter()
        .map(|(name, value, source)| {
            let kind = kind_of(&name);
            let mut e = static_entry(name, value, source, kind);
            if is_dynamic_broker_key(&e.name) {
                // Writable at run time. Synonyms as Kafka lists them: layer
                // by layer over the key's synonym chain, from the first
                // entry of this key on (the keys above it are left out).
                e.read_only = false;
                if let Some(key) = topic_key_of(&e.name) {
                    let chain = defaults.synonyms_of(key);
                    let from = chain.iter().position(|(n, _, _)| *n == e.name);
                    e.synonyms = from.map_or_else(Vec::new, |i| chain[i..].to_vec());
                    e.source = e.synonyms.first().map_or(source::DEFAULT_CONFIG, |s| s.2);
                }
            }
            e
        })
        .collect();
    let static_settings = [
        ("node.id", config.node_id.to_string(), ConfigKind::Int, DOC_NODE_ID),
        ("broker.id", config.node_id.to_string(), ConfigKind::Int, DOC_NODE_ID),
        (
            "num.partitions",
            config.default_partitions.to_string(),
            ConfigKind::Int,
            "The default number of partitions of an automatically created topic.",
        ),
        (
            "auto.create.topics.enable",
            config.auto_create_topics.to_string(),
            ConfigKind::Boolean,
            "Create a topic when a client asks for one that does not exist.",
        ),
        (
            "socket.request.max.bytes",
            config.request_bytes_max.to_string(),
            ConfigKind::Int,
            "The largest request the broker accepts, in bytes.",
        ),
        (
            "offsets.topic.num.partitions",
            config.offsets_topic_partitions.to_string(),
            ConfigKind::Int,
            "The number of partitions of the offsets topic (fixed once it exists).",
        ),
        (
            "log.dirs",
            config.data_dir.display().to_string(),
            ConfigKind::Str,
            "The directory in which the log data is kept.",
        ),
        (
            "listeners",
            format!("PLAINTEXT://{}", config.listen),
            ConfigKind::List,
            "The URI the broker listens on, with its listener name.",
        ),
    ];
    for (name, value, kind, doc) in static_settings {
        let mut e = static_entry(name.to_string(), value, source::STATIC_BROKER_CONFIG, kind);
        e.doc = doc;
        entries.push(e);
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// The cluster-wide dynamic defaults (broker resource "").
fn cluster_default_entries(defaults: &LogDefaults) -> Vec<Entry> {
    defaults
        .dynamic
        .cluster_default
        .iter()
        .map(|(name, value)| {
            let kind = topic_key_of(name).map_or(ConfigKind::Long, |k| k.kind);
            let source = source::DYNAMIC_DEFAULT_BROKER_CONFIG;
            let mut e = static_entry(name.clone(), value.clone(), source, kind);
            e.read_only = false;
            e
        })
        .collect()
}

/// Loggers and their levels (BROKER_LOGGER): writable, not persisted.
fn logger_entries(loggers: Vec<(String, String)>) -> Vec<Entry> {
    loggers
        .into_iter()
        .map(|(name, level)| {
            let mut e = static_entry(name, level, DYNAMIC_BROKER_LOGGER_CONFIG, ConfigKind::Str);
            e.read_only = false;
            e.synonyms.clear();
            e
        })
        .collect()
}

/// A group's configs: each key with the broker setting it comes from.
fn group_entries(config: &Config) -> Vec<Entry> {
    use crate::group::consumer::{HEARTBEAT_INTERVAL_MS_DEFAULT, SESSION_TIMEOUT_MS_DEFAULT};
    let keys = [
        (
            "consumer.heartbeat.interval.ms",
            "group.consumer.heartbeat.interval.ms",
            config.group_consumer_heartbeat_interval_ms,
            HEARTBEAT_INTERVAL_MS_DEFAULT,
        ),
        (
            "consumer.session.timeout.ms",
            "group.consumer.session.timeout.ms",
            config.group_consumer_session_timeout_ms,
            SESSION_TIMEOUT_MS_DEFAULT,
        ),
        (
            "share.heartbeat.interval.ms",
            "group.share.heartbeat.interval.ms",
            SHARE_HEARTBEAT_INTERVAL_MS_DEFAULT,
            SHARE_HEARTBEAT_INTERVAL_MS_DEFAULT,
        ),
        (
            "share.record.lock.duration.ms",
            "group.share.record.lock.duration.ms",
            SHARE_RECORD_LOCK_DURATION_MS_DEFAULT,
            SHARE_RECORD_LOCK_DURATION_MS_DEFAULT,
        ),
        (
            "share.session.timeout.ms",
            "group.share.session.timeout.ms",
            SHARE_SESSION_TIMEOUT_MS_DEFAULT,
            SHARE_SESSION_TIMEOUT_MS_DEFAULT,
        ),
    ];
    let mut entries: Vec<Entry> = keys
        .into_iter()
        .map(|(name, broker_key, value, default)| {
            // The resolved config keeps no trace of who set it: a value
            // other than Kafka's default was set by the operator.
            let source = match value == default {
                true => source::DEFAULT_CONFIG,
                false => source::STATIC_BROKER_CONFIG,
            };
            let mut e = static_entry(name.to_string(), value.to_string(), source, ConfigKind::Int);
            e.synonyms = vec![(broker_key.to_string(), value.to_string(), source)];
            e
        })
        .collect();
    entries.push(static_entry(
        "share.auto.offset.reset".to_string(),
        "latest".to_string(),
        source::DEFAULT_CONFIG,
        ConfigKind::Str,
    ));
    for e in &mut entries {
        e.doc = group_doc(&e.name);
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// The topic key that broker key `name` stands for.
fn topic_key_of(name: &str) -> Option<&'static ConfigKey> {
    CONFIG_KEYS
        .iter()
        .find(|k| k.synonyms.iter().any(|s| s.name == name))
}

/// Documentation of the broker log keys that stand for no topic key.
fn broker_only_doc(name: &str) -> &'static str {
    match name {
        "log.retention.check.interval.ms" => {
            "How often the broker looks for log segments to delete, in ms."
        }
        "log.cleaner.io.max.bytes.per.second" => {
            "The most bytes per second the log cleaner reads and writes together."
        }
        _ => "",
    }
}

/// Short documentation of a group config, in Kafka's manner.
fn group_doc(name: &str) -> &'static str {
    match name {
        "consumer.heartbeat.interval.ms" => {
            "The heartbeat interval given to consumer-protocol group members, in ms."
        }
        "consumer.session.timeout.ms" => {
            "A consumer-protocol member without a heartbeat for this long is removed, in ms."
        }
        "share.heartbeat.interval.ms" => "The heartbeat interval of share group members, in ms.",
        "share.record.lock.duration.ms" => {
            "How long a share group member holds a record it acquired, in ms."
        }
        "share.session.timeout.ms" => {
            "A share group member without a heartbeat for this long is removed, in ms."
        }
        "share.auto.offset.reset" => {
            "Where a share group starts reading a partition it has no offset for."
        }
        _ => "",
    }
}

fn static_entry(name: String, value: String, source: i8, kind: ConfigKind) -> Entry {
    let synonyms = vec![(name.clone(), value.clone(), source)];
    // A broker log key shares its topic key's documentation.
    let doc = config_key(&name)
        .or_else(|| topic_key_of(&name))
        .map_or_else(|| broker_only_doc(&name), |k| k.doc);
    Entry {
        name,
        value,
        source,
        read_only: true,
        kind,
        doc,
        synonyms,
    }
}

fn to_wire(e: Entry, detail: Detail) -> DescribeConfigsResourceResult {
    let synonyms = match detail.synonyms {
        true => e
            .synonyms
            .into_iter()
            .map(|(name, value, source)| {
                DescribeConfigsSynonym::default()
                    .with_name(StrBytes::from_string(name))
                    .with_value(Some(StrBytes::from_string(value)))
                    .with_source(source)
            })
            .collect(),
        false => Vec::new(),
    };
    let mut out = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(e.name))
        .with_value(Some(StrBytes::from_string(e.value)))
        .with_read_only(e.read_only)
        .with_config_source(e.source)
        .with_is_sensitive(false)
        .with_synonyms(synonyms);
    if detail.version >= 3 {
        let doc =
            (detail.documentation && !e.doc.is_empty()).then(|| StrBytes::from_static_str(e.doc));
        out = out.with_config_type(e.kind.code()).with_documentation(doc);
    }
    out
}

#[cfg(test)]
#[path = "describe_configs_tests.rs"]
mod tests;
