//! Topic configs with Kafka's names, defaults, broker-level synonyms and
//! validation.
//!
//! Three layers resolve a topic setting, highest first, as in Kafka:
//! 1. the topic's own override (`retention.ms`), set at CreateTopics or by
//!    (Incremental)AlterConfigs, stored as text in the metadata snapshot and
//!    persisted in `meta/topics.json`;
//! 2. the broker's setting (`log.retention.ms`, `log.retention.minutes`,
//!    `log.retention.hours`, in that precedence), each dynamic (this
//!    broker's, then the cluster default) before the TOML file's;
//! 3. Kafka's default.
//!
//! Values are kept as the text the operator gave (what DescribeConfigs
//! echoes) and are validated before they are ever stored, so resolving a
//! stored value cannot fail. [`CONFIG_KEYS`] is the single table: adding a
//! setting is one row here plus its field in [`TopicConfig`].
//!
//! Decisions:
//! - Unknown topic keys are refused (INVALID_CONFIG naming the key), as
//!   Kafka does, instead of being stored and silently ignored.
//! - `segment.bytes` may go down to one batch header (61 bytes), smaller
//!   than Kafka's floor, so tests and demos can roll segments quickly.
//! - Broker-level log settings may also be set at run time (dynamic broker
//!   configs, per broker or cluster-wide, between the override and the
//!   TOML value); other broker settings are read-only.
//! - `cleanup.policy` may be emptied (SUBTRACT of every element): the log
//!   is then neither deleted by retention nor compacted (Kafka 4.1's rule).

use std::collections::BTreeMap;

use crate::storage::{SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN};

mod edit;
mod log_defaults;

pub use edit::{apply_edit, validate_overrides, AlterOp, ConfigEdit};
pub use log_defaults::{
    is_dynamic_broker_key, toml_pairs, validate_dynamic_broker_value, DynamicBrokerConfigs,
    LogDefaults, CLEANER_IO_BYTES_PER_SECOND_DEFAULT, CLEANER_IO_BYTES_PER_SECOND_MIN,
    RETENTION_CHECK_INTERVAL_MS_DEFAULT, RETENTION_CHECK_INTERVAL_MS_MIN,
};

/// Kafka's config types, with the DescribeConfigs v3+ `config_type` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    /// true/false.
    Boolean,
    /// Free text, checked by the key's rule.
    Str,
    /// 32-bit integer.
    Int,
    /// 64-bit integer.
    Long,
    /// Floating point.
    Double,
    /// Comma-separated list.
    List,
}

impl ConfigKind {
    /// DescribeConfigs' `config_type` code (BOOLEAN=1 .. LIST=7).
    pub fn code(self) -> i8 {
        match self {
            ConfigKind::Boolean => 1,
            ConfigKind::Str => 2,
            ConfigKind::Int => 3,
            ConfigKind::Long => 5,
            ConfigKind::Double => 6,
            ConfigKind::List => 7,
        }
    }

    fn type_name(self) -> &'static str {
        match self {
            ConfigKind::Boolean => "BOOLEAN",
            ConfigKind::Str => "STRING",
            ConfigKind::Int => "INT",
            ConfigKind::Long => "LONG",
            ConfigKind::Double => "DOUBLE",
            ConfigKind::List => "LIST",
        }
    }
}

/// DescribeConfigs `config_source` codes (Kafka's ConfigSource).
pub mod source {
    /// A topic override.
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    /// This broker's dynamic config.
    pub const DYNAMIC_BROKER_CONFIG: i8 = 2;
    /// The cluster-wide dynamic default.
    pub const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
    /// Set in the broker's config file.
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    /// Kafka's default.
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// What a key accepts beyond its type.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Anything of the key's type.
    Any,
    /// Integer at least this.
    AtLeast(i64),
    /// Integer in this range.
    Between(i64, i64),
    /// Integer in this range, or this one value (`compression.gzip.level`:
    /// 1..9 or -1 for the codec's default).
    BetweenOr(i64, i64, i64),
    /// Only this value: a feature this broker does not have, which Kafka
    /// refuses too when its broker lacks it (`remote.storage.enable`).
    Only(&'static str, &'static str),
    /// Kafka's throttled-replica list: `*` or `partition:broker` items.
    ThrottledReplicas,
    /// Double in 0..=1.
    Ratio,
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// A list of these words.
    ListOf(&'static [&'static str]),
}

/// A broker setting that stands in for a topic key, with the factor that
/// turns its unit into the topic key's (hours to ms...).
#[derive(Debug, Clone, Copy)]
pub struct BrokerSynonym {
    /// Broker key, e.g. `log.retention.hours`.
    pub name: &'static str,
    /// Topic value = broker value × this.
    pub factor: i64,
}

/// One topic config key.
#[derive(Debug, Clone, Copy)]
pub struct ConfigKey {
    /// Kafka's topic key.
    pub name: &'static str,
    /// Its type.
    pub kind: ConfigKind,
    /// Kafka's default, as text.
    pub default: &'static str,
    rule: Rule,
    /// Broker synonyms, highest precedence first; the default is reported
    /// under the last one (as Kafka reports `log.retention.hours=168`).
    pub synonyms: &'static [BrokerSynonym],
    /// One line for DescribeConfigs' documentation.
    pub doc: &'static str,
}

/// No broker setting stands in for the key (the default is reported under
/// the key itself).
const NO_SYNONYM: &[BrokerSynonym] = &[];

const fn syn(name: &'static str) -> BrokerSynonym {
    BrokerSynonym { name, factor: 1 }
}

const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_HOUR: i64 = 3_600_000;

/// Cleanup policy words.
pub const CLEANUP_DELETE: &str = "delete";
/// Cleanup policy words.
pub const CLEANUP_COMPACT: &str = "compact";
/// `compression.type` values (`producer` keeps the producer's codec).
pub const COMPRESSION_TYPES: &[&str] =
    &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// Every topic key served, sorted by name (DescribeConfigs order).
pub const CONFIG_KEYS: &[ConfigKey] = &[
    ConfigKey { name: "cleanup.policy", kind: ConfigKind::List, default: "delete",
        rule: Rule::ListOf(&[CLEANUP_COMPACT, CLEANUP_DELETE]), synonyms: &[syn("log.cleanup.policy")],
        doc: "delete: drop old segments by retention.ms/bytes; compact: keep the latest value per key." },
    ConfigKey { name: "compression.gzip.level", kind: ConfigKind::Int, default: "-1",
        rule: Rule::BetweenOr(1, 9, -1), synonyms: &[syn("compression.gzip.level")],
        doc: "Accepted and ignored: batches are stored as the producer compressed them, never recompressed." },
    ConfigKey { name: "compression.lz4.level", kind: ConfigKind::Int, default: "9",
        rule: Rule::Between(1, 17), synonyms: &[syn("compression.lz4.level")],
        doc: "Accepted and ignored: batches are stored as the producer compressed them, never recompressed." },
    ConfigKey { name: "compression.type", kind: ConfigKind::Str, default: "producer",
        rule: Rule::OneOf(COMPRESSION_TYPES), synonyms: &[syn("compression.type")],
        doc: "Codec of stored batches; only `producer` (store as received) is applied: batches are never recompressed." },
    ConfigKey { name: "compression.zstd.level", kind: ConfigKind::Int, default: "3",
        rule: Rule::Between(-131072, 22), synonyms: &[syn("compression.zstd.level")],
        doc: "Accepted and ignored: batches are stored as the producer compressed them, never recompressed." },
    ConfigKey { name: "delete.retention.ms", kind: ConfigKind::Long, default: "86400000",
        rule: Rule::AtLeast(0), synonyms: &[syn("log.cleaner.delete.retention.ms")],
        doc: "How long a tombstone (null value) stays in a compacted log, from its record timestamp." },
    ConfigKey { name: "file.delete.delay.ms", kind: ConfigKind::Long, default: "60000",
        rule: Rule::AtLeast(0), synonyms: &[syn("log.segment.delete.delay.ms")],
        doc: "Accepted and ignored: a segment dropped by retention or compaction is deleted at once (no reader holds it by name)." },
    ConfigKey { name: "flush.messages", kind: ConfigKind::Long, default: "9223372036854775807",
        rule: Rule::AtLeast(1), synonyms: &[syn("log.flush.interval.messages")],
        doc: "Accepted and ignored: every acks=1/all produce is fdatasynced before it is answered (group commit), as if flush.messages were 1; acks=0 data is flushed with the next group commit." },
    ConfigKey { name: "flush.ms", kind: ConfigKind::Long, default: "9223372036854775807",
        rule: Rule::AtLeast(0), synonyms: &[syn("log.flush.interval.ms"), syn("log.flush.scheduler.interval.ms")],
        doc: "Accepted and ignored: acknowledged data is already on stable storage (see flush.messages)." },
    ConfigKey { name: "follower.replication.throttled.replicas", kind: ConfigKind::List, default: "",
        rule: Rule::ThrottledReplicas, synonyms: NO_SYNONYM,
        doc: "Accepted and ignored: a single broker has no followers to throttle." },
    ConfigKey { name: "index.interval.bytes", kind: ConfigKind::Int, default: "4096",
        rule: Rule::Between(1, i32::MAX as i64), synonyms: &[syn("log.index.interval.bytes")],
        doc: "Bytes appended between two sparse offset-index entries." },
    ConfigKey { name: "leader.replication.throttled.replicas", kind: ConfigKind::List, default: "",
        rule: Rule::ThrottledReplicas, synonyms: NO_SYNONYM,
        doc: "Accepted and ignored: a single broker has no followers to throttle." },
    ConfigKey { name: "local.retention.bytes", kind: ConfigKind::Long, default: "-2",
        rule: Rule::AtLeast(-2), synonyms: &[syn("log.local.retention.bytes")],
        doc: "Accepted and ignored: there is no tiered storage; every segment is local and retention.bytes rules." },
    ConfigKey { name: "local.retention.ms", kind: ConfigKind::Long, default: "-2",
        rule: Rule::AtLeast(-2), synonyms: &[syn("log.local.retention.ms")],
        doc: "Accepted and ignored: there is no tiered storage; every segment is local and retention.ms rules." },
    ConfigKey { name: "max.compaction.lag.ms", kind: ConfigKind::Long, default: "9223372036854775807",
        rule: Rule::AtLeast(1), synonyms: &[syn("log.cleaner.max.compaction.lag.ms")],
        doc: "A dirty segment older than this is compacted whatever the dirty ratio." },
    ConfigKey { name: "max.message.bytes", kind: ConfigKind::Int, default: "1048588",
        rule: Rule::Between(0, i32::MAX as i64), synonyms: &[syn("message.max.bytes")],
        doc: "Largest record batch accepted, in bytes (MESSAGE_TOO_LARGE above it)." },
    ConfigKey { name: "message.downconversion.enable", kind: ConfigKind::Boolean, default: "true",
        rule: Rule::Any, synonyms: &[syn("log.message.downconversion.enable")],
        doc: "Accepted and ignored (a no-op in Kafka 4 too): only RecordBatch v2 is served, never down-converted." },
    ConfigKey { name: "message.timestamp.after.max.ms", kind: ConfigKind::Long, default: "9223372036854775807",
        rule: Rule::AtLeast(0), synonyms: &[syn("log.message.timestamp.after.max.ms")],
        doc: "CreateTime timestamps may be at most this far in the future." },
    ConfigKey { name: "message.timestamp.before.max.ms", kind: ConfigKind::Long, default: "9223372036854775807",
        rule: Rule::AtLeast(0), synonyms: &[syn("log.message.timestamp.before.max.ms")],
        doc: "CreateTime timestamps may be at most this far in the past." },
    ConfigKey { name: "message.timestamp.type", kind: ConfigKind::Str, default: "CreateTime",
        rule: Rule::OneOf(&["CreateTime", "LogAppendTime"]), synonyms: &[syn("log.message.timestamp.type")],
        doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the broker's clock." },
    ConfigKey { name: "min.cleanable.dirty.ratio", kind: ConfigKind::Double, default: "0.5",
        rule: Rule::Ratio, synonyms: &[syn("log.cleaner.min.cleanable.ratio")],
        doc: "Compact once dirty bytes are at least this share of the cleanable bytes." },
    ConfigKey { name: "min.compaction.lag.ms", kind: ConfigKind::Long, default: "0",
        rule: Rule::AtLeast(0), synonyms: &[syn("log.cleaner.min.compaction.lag.ms")],
        doc: "Segments whose newest record is younger than this are not compacted." },
    ConfigKey { name: "min.insync.replicas", kind: ConfigKind::Int, default: "1",
        rule: Rule::Between(1, i32::MAX as i64), synonyms: &[syn("min.insync.replicas")],
        doc: "Accepted for compatibility; a single broker is always in sync." },
    ConfigKey { name: "preallocate", kind: ConfigKind::Boolean, default: "false",
        rule: Rule::Any, synonyms: &[syn("log.preallocate")],
        doc: "Accepted and ignored: segments are always preallocated in large extents (fallocate) for O_DIRECT appends." },
    ConfigKey { name: "remote.log.copy.disable", kind: ConfigKind::Boolean, default: "false",
        rule: Rule::Any, synonyms: NO_SYNONYM,
        doc: "Accepted and ignored: there is no tiered storage." },
    ConfigKey { name: "remote.log.delete.on.disable", kind: ConfigKind::Boolean, default: "false",
        rule: Rule::Any, synonyms: NO_SYNONYM,
        doc: "Accepted and ignored: there is no tiered storage." },
    ConfigKey { name: "remote.storage.enable", kind: ConfigKind::Boolean, default: "false",
        rule: Rule::Only("false", "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage."),
        synonyms: NO_SYNONYM,
        doc: "Only false: there is no tiered storage (Kafka answers the same when its broker has it disabled)." },
    ConfigKey { name: "retention.bytes", kind: ConfigKind::Long, default: "-1",
        rule: Rule::AtLeast(i64::MIN), synonyms: &[syn("log.retention.bytes")],
        doc: "Delete the oldest closed segments while the partition is larger than this (-1: no limit)." },
    ConfigKey { name: "retention.ms", kind: ConfigKind::Long, default: "604800000",
        rule: Rule::AtLeast(-1),
        synonyms: &[syn("log.retention.ms"), BrokerSynonym { name: "log.retention.minutes", factor: MS_PER_MINUTE },
            BrokerSynonym { name: "log.retention.hours", factor: MS_PER_HOUR }],
        doc: "Delete segments whose newest record is older than this (-1: forever)." },
    ConfigKey { name: "segment.bytes", kind: ConfigKind::Int, default: "1073741824",
        rule: Rule::Between(SEGMENT_BYTES_MIN as i64, SEGMENT_BYTES_MAX as i64), synonyms: &[syn("log.segment.bytes")],
        doc: "Roll to a new segment when the active one would grow past this." },
    ConfigKey { name: "segment.index.bytes", kind: ConfigKind::Int, default: "10485760",
        rule: Rule::Between(4, i32::MAX as i64), synonyms: &[syn("log.index.size.max.bytes")],
        doc: "Accepted and ignored: the sparse indexes grow with the segment (one entry per index.interval.bytes)." },
    ConfigKey { name: "segment.jitter.ms", kind: ConfigKind::Long, default: "0",
        rule: Rule::AtLeast(0),
        synonyms: &[syn("log.roll.jitter.ms"), BrokerSynonym { name: "log.roll.jitter.hours", factor: MS_PER_HOUR }],
        doc: "Accepted and ignored: segments roll at segment.ms exactly." },
    ConfigKey { name: "segment.ms", kind: ConfigKind::Long, default: "604800000",
        rule: Rule::AtLeast(1),
        synonyms: &[syn("log.roll.ms"), BrokerSynonym { name: "log.roll.hours", factor: MS_PER_HOUR }],
        doc: "Roll when a batch's timestamp is this much newer than the segment's first batch." },
    ConfigKey { name: "unclean.leader.election.enable", kind: ConfigKind::Boolean, default: "false",
        rule: Rule::Any, synonyms: &[syn("unclean.leader.election.enable")],
        doc: "In a cluster, whether an offline partition (no live ISR member) may be led by a live out-of-sync replica, losing the records it lacks (logged, counted in corestream_unclean_leader_elections_total)." },
];

/// The row of a topic key.
pub fn config_key(name: &str) -> Option<&'static ConfigKey> {
    CONFIG_KEYS.iter().find(|k| k.name == name)
}

/// A refused config value: what Kafka answers as INVALID_CONFIG (or
/// INVALID_REQUEST for a misused operation), with a message naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigValueError {
    /// The key.
    pub key: String,
    /// Kafka-style message naming the key.
    pub message: String,
    /// The request itself was malformed (INVALID_REQUEST), not the value.
    pub invalid_request: bool,
}

impl ConfigValueError {
    fn new(key: &str, message: String) -> Self {
        Self {
            key: key.to_string(),
            message,
            invalid_request: false,
        }
    }

    /// A misused operation on `key` (INVALID_REQUEST).
    pub fn invalid_request(key: &str, message: String) -> Self {
        Self {
            invalid_request: true,
            ..Self::new(key, message)
        }
    }

    /// A broker key that cannot change at run time: INVALID_REQUEST with
    /// Kafka's message.
    pub fn read_only(key: &str) -> Self {
        Self::invalid_request(
            key,
            format!("Cannot update these configs dynamically: Set({key})"),
        )
    }

    /// The Kafka error code to answer.
    pub fn error_code(&self) -> i16 {
        use kafka_protocol::ResponseError;
        match self.invalid_request {
            true => ResponseError::InvalidRequest.code(),
            false => ResponseError::InvalidConfig.code(),
        }
    }
}

/// Checks `value` for topic key `name`; returns it normalised (trimmed,
/// list items trimmed).
pub fn validate_topic_value(name: &str, value: &str) -> Result<String, ConfigValueError> {
    let Some(key) = config_key(name) else {
        return Err(ConfigValueError::new(
            name,
            format!("Unknown topic config name: {name}"),
        ));
    };
    validate_value(key, name, value, 1)
}

/// Checks `value` for `key` given under `shown_name` whose unit is
/// `factor` times smaller than the topic key's.
fn validate_value(
    key: &ConfigKey,
    shown_name: &str,
    value: &str,
    factor: i64,
) -> Result<String, ConfigValueError> {
    let value = value.trim();
    let bad = |why: String| {
        ConfigValueError::new(
            shown_name,
            format!("Invalid value {value} for configuration {shown_name}: {why}"),
        )
    };
    match key.kind {
        ConfigKind::Int | ConfigKind::Long => {
            let n: i64 = value
                .parse()
                .map_err(|_| bad(format!("Not a number of type {}", key.kind.type_name())))?;
            if key.kind == ConfigKind::Int && i32::try_from(n).is_err() {
                return Err(bad("Not a number of type INT".into()));
            }
            let n = n
                .checked_mul(factor)
                .ok_or_else(|| bad("too large".into()))?;
            match key.rule {
                Rule::AtLeast(min) if n < min => Err(bad(format!("Value must be at least {min}"))),
                Rule::Between(min, max) if n < min || n > max => Err(bad(format!(
                    "Value must be at least {min} and at most {max}"
                ))),
                Rule::BetweenOr(min, max, or) if n != or && (n < min || n > max) => Err(bad(
                    format!("Value must be {or}, or at least {min} and at most {max}"),
                )),
                _ => Ok(value.to_string()),
            }
        }
        ConfigKind::Double => {
            let x: f64 = value
                .parse()
                .map_err(|_| bad("Not a number of type DOUBLE".into()))?;
            match (0.0..=1.0).contains(&x) {
                true => Ok(value.to_string()),
                false => Err(bad("Value must be between 0.0 and 1.0".into())),
            }
        }
        ConfigKind::Boolean => match (value, key.rule) {
            (v, Rule::Only(only, why)) if v != only => Err(bad(why.into())),
            ("true" | "false", _) => Ok(value.to_string()),
            _ => Err(bad("Expected value to be either true or false".into())),
        },
        ConfigKind::Str => match key.rule {
            Rule::OneOf(words) if !words.contains(&value) => {
                Err(bad(format!("String must be one of: {}", words.join(", "))))
            }
            _ => Ok(value.to_string()),
        },
        ConfigKind::List => {
            let items = split_list(value);
            if matches!(key.rule, Rule::ThrottledReplicas) {
                check_throttled_replicas(&items).map_err(|why| bad(why.into()))?;
            }
            if let Rule::ListOf(words) = key.rule {
                if let Some(item) = items.iter().find(|i| !words.contains(&i.as_str())) {
                    return Err(bad(format!(
                        "Invalid value {item}; must be one of [{}]",
                        words.join(", ")
                    )));
                }
            }
            Ok(items.join(","))
        }
    }
}

/// Kafka's ThrottledReplicaListValidator: `*` alone, or items
/// `partition:broker` of decimal ids.
fn check_throttled_replicas(items: &[String]) -> Result<(), &'static str> {
    if items.len() == 1 && items[0] == "*" {
        return Ok(());
    }
    let is_id = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let valid = |item: &String| {
        item.split_once(':')
            .is_some_and(|(partition, broker)| is_id(partition) && is_id(broker))
    };
    match items.iter().all(valid) {
        true => Ok(()),
        false => Err("must be the literal '*' or a list of replicas in the format [PartitionId]:[BrokerId],[PartitionId]:[BrokerId],..."),
    }
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// How a topic's effective value of one key came about (DescribeConfigs).
#[derive(Debug, Clone)]
pub struct ResolvedEntry {
    /// The key.
    pub key: &'static ConfigKey,
    /// Effective value.
    pub value: String,
    /// Where it comes from ([`source`]).
    pub source: i8,
    /// Every layer that sets it, highest first: (name, value, source).
    pub synonyms: Vec<(String, String, i8)>,
}

/// Resolves every key of a topic with `overrides`, in [`CONFIG_KEYS`] order.
pub fn resolve_entries(
    defaults: &LogDefaults,
    overrides: &BTreeMap<String, String>,
) -> Vec<ResolvedEntry> {
    CONFIG_KEYS
        .iter()
        .map(|key| {
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(key.name) {
                synonyms.push((
                    key.name.to_string(),
                    v.clone(),
                    source::DYNAMIC_TOPIC_CONFIG,
                ));
            }
            synonyms.extend(defaults.synonyms_of(key));
            let (value, source) = match overrides.get(key.name) {
                Some(v) => (v.clone(), source::DYNAMIC_TOPIC_CONFIG),
                None => defaults.default_for(key),
            };
            ResolvedEntry {
                key,
                value,
                source,
                synonyms,
            }
        })
        .collect()
}

/// A topic's effective settings, typed. Built by [`TopicConfig::resolve`]
/// from validated text, so it cannot fail.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    /// `cleanup.policy` contains `delete`.
    pub cleanup_delete: bool,
    /// `cleanup.policy` contains `compact`.
    pub cleanup_compact: bool,
    /// `compression.type`.
    pub compression_type: String,
    /// `delete.retention.ms`.
    pub delete_retention_ms: i64,
    /// `index.interval.bytes`.
    pub index_interval_bytes: u32,
    /// `max.compaction.lag.ms`.
    pub max_compaction_lag_ms: i64,
    /// `max.message.bytes`.
    pub max_message_bytes: i32,
    /// `message.timestamp.after.max.ms`.
    pub timestamp_after_max_ms: i64,
    /// `message.timestamp.before.max.ms`.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.type` is LogAppendTime.
    pub log_append_time: bool,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    /// `min.insync.replicas`: acks=all needs an ISR this large.
    pub min_insync_replicas: i32,
    /// `retention.bytes` (negative: unlimited).
    pub retention_bytes: i64,
    /// `retention.ms` (negative: forever).
    pub retention_ms: i64,
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `segment.ms`.
    pub segment_ms: i64,
    /// `unclean.leader.election.enable`: an out-of-sync replica may lead
    /// an offline partition.
    pub unclean_leader_election_enable: bool,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig::resolve(&LogDefaults::default(), &BTreeMap::new())
    }
}

impl TopicConfig {
    /// The effective config of a topic with `overrides` (validated text).
    pub fn resolve(defaults: &LogDefaults, overrides: &BTreeMap<String, String>) -> TopicConfig {
        let text = |name: &str| -> String {
            let key = config_key(name).expect("key in CONFIG_KEYS");
            overrides
                .get(name)
                .cloned()
                .unwrap_or_else(|| defaults.default_for(key).0)
        };
        let long = |name: &str| text(name).parse::<i64>().expect("validated LONG");
        let policy = split_list(&text("cleanup.policy"));
        TopicConfig {
            cleanup_delete: policy.iter().any(|p| p == CLEANUP_DELETE),
            cleanup_compact: policy.iter().any(|p| p == CLEANUP_COMPACT),
            compression_type: text("compression.type"),
            delete_retention_ms: long("delete.retention.ms"),
            index_interval_bytes: long("index.interval.bytes") as u32,
            max_compaction_lag_ms: long("max.compaction.lag.ms"),
            max_message_bytes: long("max.message.bytes") as i32,
            timestamp_after_max_ms: long("message.timestamp.after.max.ms"),
            timestamp_before_max_ms: long("message.timestamp.before.max.ms"),
            log_append_time: text("message.timestamp.type") == "LogAppendTime",
            min_cleanable_dirty_ratio: text("min.cleanable.dirty.ratio")
                .parse()
                .expect("validated DOUBLE"),
            min_compaction_lag_ms: long("min.compaction.lag.ms"),
            min_insync_replicas: long("min.insync.replicas") as i32,
            retention_bytes: long("retention.bytes"),
            retention_ms: long("retention.ms"),
            segment_bytes: long("segment.bytes") as u64,
            segment_ms: long("segment.ms"),
            unclean_leader_election_enable: text("unclean.leader.election.enable")
                .eq_ignore_ascii_case("true"),
        }
    }
}

#[cfg(test)]
#[path = "topic_config_tests.rs"]
mod tests;
