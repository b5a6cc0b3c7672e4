//! Topic configs with Kafka's names, defaults, broker-level synonyms and
//! validation.
//!
//! Three layers resolve a topic setting, highest first, as in Kafka:
//! 1. the topic's own override (`retention.ms`), set at CreateTopics or by
//!    (Incremental)AlterConfigs, stored as text in the metadata snapshot and
//!    persisted in `meta/topics.json`;
//! 2. the broker's setting (`log.retention.ms`, `log.retention.minutes`,
//!    `log.retention.hours`, in that precedence) from the TOML file;
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
//! - Broker-level settings are static (TOML only): describing the broker
//!   resource reports them read-only, and altering them is refused.
//! - `cleanup.policy` may be emptied (SUBTRACT of every element): the log
//!   is then neither deleted by retention nor compacted (Kafka 4.1's rule).

use std::collections::BTreeMap;

use crate::storage::SEGMENT_BYTES_MIN;

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
    /// Set in the broker's config file.
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    /// Kafka's default.
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// What a key accepts beyond its type.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Integer at least this.
    AtLeast(i64),
    /// Integer in this range.
    Between(i64, i64),
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
    ConfigKey { name: "compression.type", kind: ConfigKind::Str, default: "producer",
        rule: Rule::OneOf(COMPRESSION_TYPES), synonyms: &[syn("compression.type")],
        doc: "Codec of stored batches; only `producer` (store as received) is applied: batches are never recompressed." },
    ConfigKey { name: "delete.retention.ms", kind: ConfigKind::Long, default: "86400000",
        rule: Rule::AtLeast(0), synonyms: &[syn("log.cleaner.delete.retention.ms")],
        doc: "How long a tombstone (null value) stays in a compacted log, from its record timestamp." },
    ConfigKey { name: "index.interval.bytes", kind: ConfigKind::Int, default: "4096",
        rule: Rule::Between(1, i32::MAX as i64), synonyms: &[syn("log.index.interval.bytes")],
        doc: "Bytes appended between two sparse offset-index entries." },
    ConfigKey { name: "max.compaction.lag.ms", kind: ConfigKind::Long, default: "9223372036854775807",
        rule: Rule::AtLeast(1), synonyms: &[syn("log.cleaner.max.compaction.lag.ms")],
        doc: "A dirty segment older than this is compacted whatever the dirty ratio." },
    ConfigKey { name: "max.message.bytes", kind: ConfigKind::Int, default: "1048588",
        rule: Rule::Between(0, i32::MAX as i64), synonyms: &[syn("message.max.bytes")],
        doc: "Largest record batch accepted, in bytes (MESSAGE_TOO_LARGE above it)." },
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
    ConfigKey { name: "retention.bytes", kind: ConfigKind::Long, default: "-1",
        rule: Rule::AtLeast(i64::MIN), synonyms: &[syn("log.retention.bytes")],
        doc: "Delete the oldest closed segments while the partition is larger than this (-1: no limit)." },
    ConfigKey { name: "retention.ms", kind: ConfigKind::Long, default: "604800000",
        rule: Rule::AtLeast(-1),
        synonyms: &[syn("log.retention.ms"), BrokerSynonym { name: "log.retention.minutes", factor: MS_PER_MINUTE },
            BrokerSynonym { name: "log.retention.hours", factor: MS_PER_HOUR }],
        doc: "Delete segments whose newest record is older than this (-1: forever)." },
    ConfigKey { name: "segment.bytes", kind: ConfigKind::Int, default: "1073741824",
        rule: Rule::Between(SEGMENT_BYTES_MIN as i64, i32::MAX as i64), synonyms: &[syn("log.segment.bytes")],
        doc: "Roll to a new segment when the active one would grow past this." },
    ConfigKey { name: "segment.ms", kind: ConfigKind::Long, default: "604800000",
        rule: Rule::AtLeast(1),
        synonyms: &[syn("log.roll.ms"), BrokerSynonym { name: "log.roll.hours", factor: MS_PER_HOUR }],
        doc: "Roll when a batch's timestamp is this much newer than the segment's first batch." },
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
        ConfigKind::Boolean => match value {
            "true" | "false" => Ok(value.to_string()),
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

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Broker-level log defaults from the TOML file: Kafka's broker keys
/// (`log.retention.hours = 168`), each validated like its topic key. Also
/// the two settings that only exist at broker level.
#[derive(Debug, Clone, PartialEq)]
pub struct LogDefaults {
    /// Broker keys the operator set, with their text.
    pub set: BTreeMap<String, String>,
    /// `log.retention.check.interval.ms`: how often housekeeping runs.
    pub retention_check_interval_ms: u64,
    /// `log.cleaner.io.max.bytes.per.second`: the cleaner's I/O budget.
    pub cleaner_io_bytes_per_second: u64,
}

/// Kafka's `log.retention.check.interval.ms` default: 5 minutes.
pub const RETENTION_CHECK_INTERVAL_MS_DEFAULT: u64 = 300_000;
/// Smallest housekeeping interval accepted, in ms.
pub const RETENTION_CHECK_INTERVAL_MS_MIN: u64 = 10;
/// Default cleaner I/O budget, bytes/s (Kafka's default is unlimited; a
/// bound keeps compaction from starving produce and fetch of disk).
pub const CLEANER_IO_BYTES_PER_SECOND_DEFAULT: u64 = 256 << 20;
/// Smallest cleaner I/O budget accepted, bytes/s.
pub const CLEANER_IO_BYTES_PER_SECOND_MIN: u64 = 64 << 10;

const CHECK_INTERVAL_KEY: &str = "log.retention.check.interval.ms";
const CLEANER_IO_KEY: &str = "log.cleaner.io.max.bytes.per.second";

impl Default for LogDefaults {
    fn default() -> Self {
        Self {
            set: BTreeMap::new(),
            retention_check_interval_ms: RETENTION_CHECK_INTERVAL_MS_DEFAULT,
            cleaner_io_bytes_per_second: CLEANER_IO_BYTES_PER_SECOND_DEFAULT,
        }
    }
}

impl LogDefaults {
    /// Parses broker keys given as `(name, text)`; an unknown key or a bad
    /// value is an error naming it.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
    ) -> Result<LogDefaults, ConfigValueError> {
        let mut defaults = LogDefaults::default();
        for (name, value) in pairs {
            let parse_u64 = |min: u64| -> Result<u64, ConfigValueError> {
                match value.trim().parse::<u64>() {
                    Ok(n) if n >= min => Ok(n),
                    _ => Err(ConfigValueError::new(&name, format!(
                        "Invalid value {value} for configuration {name}: Value must be at least {min}"))),
                }
            };
            if name == CHECK_INTERVAL_KEY {
                defaults.retention_check_interval_ms = parse_u64(RETENTION_CHECK_INTERVAL_MS_MIN)?;
                continue;
            }
            if name == CLEANER_IO_KEY {
                defaults.cleaner_io_bytes_per_second = parse_u64(CLEANER_IO_BYTES_PER_SECOND_MIN)?;
                continue;
            }
            let found = CONFIG_KEYS.iter().find_map(|k| {
                k.synonyms
                    .iter()
                    .find(|s| s.name == name)
                    .map(|s| (k, s.factor))
            });
            let Some((key, factor)) = found else {
                return Err(ConfigValueError::new(
                    &name,
                    format!("Unknown broker log config name: {name}"),
                ));
            };
            let text = validate_value(key, &name, &value, factor)?;
            defaults.set.insert(name, text);
        }
        Ok(defaults)
    }

    /// The broker-level value of topic key `key` and the broker key it came
    /// from, if the operator set one.
    pub fn broker_value(&self, key: &ConfigKey) -> Option<(&'static str, String)> {
        key.synonyms.iter().find_map(|s| {
            let text = self.set.get(s.name)?;
            let value = match s.factor {
                1 => text.clone(),
                f => text.parse::<i64>().ok()?.saturating_mul(f).to_string(),
            };
            Some((s.name, value))
        })
    }

    /// The value a topic without an override gets for `key`, and its source.
    pub fn default_for(&self, key: &ConfigKey) -> (String, i8) {
        match self.broker_value(key) {
            Some((_, value)) => (value, source::STATIC_BROKER_CONFIG),
            None => (key.default.to_string(), source::DEFAULT_CONFIG),
        }
    }

    /// Every broker key this broker knows, with its current text and
    /// whether the operator set it: what DescribeConfigs on the broker
    /// resource lists (besides the non-log settings of `Config`).
    pub fn broker_entries(&self) -> Vec<(String, String, bool)> {
        let mut entries = vec![
            (
                CHECK_INTERVAL_KEY.to_string(),
                self.retention_check_interval_ms.to_string(),
                self.set.contains_key(CHECK_INTERVAL_KEY),
            ),
            (
                CLEANER_IO_KEY.to_string(),
                self.cleaner_io_bytes_per_second.to_string(),
                false,
            ),
        ];
        for key in CONFIG_KEYS {
            for s in key.synonyms {
                let value = match (self.set.get(s.name), s.factor) {
                    (Some(text), _) => Some(text.clone()),
                    (None, 1) => Some(key.default.to_string()),
                    // Unit synonyms (hours, minutes) show the default only on
                    // the last, which is how Kafka reports them.
                    (None, f) if std::ptr::eq(s, key.synonyms.last().expect("non-empty")) => {
                        key.default.parse::<i64>().ok().map(|d| (d / f).to_string())
                    }
                    (None, _) => None,
                };
                if let Some(value) = value {
                    entries.push((s.name.to_string(), value, self.set.contains_key(s.name)));
                }
            }
        }
        entries.sort();
        entries.dedup_by(|a, b| a.0 == b.0);
        entries
    }
}

/// Flattens a TOML table read under `prefix` (`log.retention.hours = 168`
/// arrives as `log = { retention = { hours = 168 } }`) into Kafka key/text
/// pairs. Lists become comma-separated text.
pub fn toml_pairs(prefix: &str, table: &toml::Table) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, value) in table {
        let key = format!("{prefix}.{name}");
        match value {
            toml::Value::Table(inner) => out.extend(toml_pairs(&key, inner)),
            toml::Value::String(text) => out.push((key, text.clone())),
            toml::Value::Array(items) => {
                let texts: Vec<String> = items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect();
                out.push((key, texts.join(",")));
            }
            other => out.push((key, other.to_string())),
        }
    }
    out
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
            for s in key.synonyms {
                if let Some(v) = defaults.set.get(s.name) {
                    synonyms.push((s.name.to_string(), v.clone(), source::STATIC_BROKER_CONFIG));
                }
            }
            let last = key.synonyms.last().expect("every key has a broker synonym");
            let shown_default = match last.factor {
                1 => key.default.to_string(),
                f => (key.default.parse::<i64>().unwrap_or(0) / f).to_string(),
            };
            synonyms.push((last.name.to_string(), shown_default, source::DEFAULT_CONFIG));
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
    /// `retention.bytes` (negative: unlimited).
    pub retention_bytes: i64,
    /// `retention.ms` (negative: forever).
    pub retention_ms: i64,
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `segment.ms`.
    pub segment_ms: i64,
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
            retention_bytes: long("retention.bytes"),
            retention_ms: long("retention.ms"),
            segment_bytes: long("segment.bytes") as u64,
            segment_ms: long("segment.ms"),
        }
    }
}

/// IncrementalAlterConfigs operations (Kafka's `OpType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterOp {
    /// Set the value.
    Set,
    /// Remove the override (back to the broker default).
    Delete,
    /// Add list items (list keys only).
    Append,
    /// Remove list items (list keys only).
    Subtract,
}

impl AlterOp {
    /// From the wire code.
    pub fn from_code(code: i8) -> Option<AlterOp> {
        match code {
            0 => Some(AlterOp::Set),
            1 => Some(AlterOp::Delete),
            2 => Some(AlterOp::Append),
            3 => Some(AlterOp::Subtract),
            _ => None,
        }
    }
}

/// A change to a topic's overrides, applied by the metadata owner to the
/// current snapshot (so concurrent alters never lose each other's edits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigEdit {
    /// Legacy AlterConfigs: the overrides become exactly these.
    Replace(BTreeMap<String, String>),
    /// IncrementalAlterConfigs: these operations in order.
    Incremental(Vec<(String, AlterOp, Option<String>)>),
}

/// Validates every entry of a full override set (CreateTopics, legacy
/// AlterConfigs); returns the normalised set.
pub fn validate_overrides(
    configs: impl IntoIterator<Item = (String, Option<String>)>,
) -> Result<BTreeMap<String, String>, ConfigValueError> {
    let mut out = BTreeMap::new();
    for (name, value) in configs {
        let Some(value) = value else {
            return Err(ConfigValueError::new(
                &name,
                format!("Null value not supported for topic config: {name}"),
            ));
        };
        out.insert(name.clone(), validate_topic_value(&name, &value)?);
    }
    Ok(out)
}

/// Applies `edit` to `current` overrides; the result is validated.
pub fn apply_edit(
    defaults: &LogDefaults,
    current: &BTreeMap<String, String>,
    edit: &ConfigEdit,
) -> Result<BTreeMap<String, String>, ConfigValueError> {
    let ops = match edit {
        ConfigEdit::Replace(all) => {
            return validate_overrides(all.iter().map(|(k, v)| (k.clone(), Some(v.clone()))))
        }
        ConfigEdit::Incremental(ops) => ops,
    };
    let mut next = current.clone();
    for (name, op, value) in ops {
        let Some(key) = config_key(name) else {
            return Err(ConfigValueError::new(
                name,
                format!("Unknown topic config name: {name}"),
            ));
        };
        let list_only = |verb: &str| ConfigValueError {
            invalid_request: true,
            ..ConfigValueError::new(
                name,
                format!("Config value {verb} is not allowed for config key: {name}"),
            )
        };
        match op {
            AlterOp::Delete => {
                next.remove(name);
            }
            AlterOp::Set => {
                let Some(value) = value else {
                    return Err(ConfigValueError::new(
                        name,
                        format!("Null value not supported for topic config: {name}"),
                    ));
                };
                next.insert(name.clone(), validate_topic_value(name, value)?);
            }
            AlterOp::Append | AlterOp::Subtract => {
                if key.kind != ConfigKind::List {
                    let verb = if *op == AlterOp::Append {
                        "append"
                    } else {
                        "subtract"
                    };
                    return Err(list_only(verb));
                }
                let currently = next
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| defaults.default_for(key).0);
                let mut items = split_list(&currently);
                let given = split_list(value.as_deref().unwrap_or(""));
                match op {
                    AlterOp::Append => {
                        for item in given {
                            if !items.contains(&item) {
                                items.push(item);
                            }
                        }
                    }
                    _ => items.retain(|i| !given.contains(i)),
                }
                next.insert(name.clone(), validate_topic_value(name, &items.join(","))?);
            }
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn config_keys_sorted_and_defaults_valid() {
        let names: Vec<_> = CONFIG_KEYS.iter().map(|k| k.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for key in CONFIG_KEYS {
            assert!(
                validate_topic_value(key.name, key.default).is_ok(),
                "{}",
                key.name
            );
            assert!(!key.synonyms.is_empty());
        }
        let c = TopicConfig::default();
        assert!(c.cleanup_delete && !c.cleanup_compact);
        assert_eq!(c.retention_ms, 604_800_000);
        assert_eq!(c.max_message_bytes, 1_048_588);
        assert_eq!(c.segment_bytes, 1 << 30);
    }

    #[test]
    fn config_validation_names_the_key() {
        let e = validate_topic_value("retention.ms", "abc").unwrap_err();
        assert_eq!(
            e.message,
            "Invalid value abc for configuration retention.ms: Not a number of type LONG"
        );
        let e = validate_topic_value("retention.ms", "-2").unwrap_err();
        assert!(e.message.contains("at least -1"), "{}", e.message);
        let e = validate_topic_value("cleanup.policy", "compact,shred").unwrap_err();
        assert!(e.message.contains("cleanup.policy") && e.message.contains("shred"));
        let e = validate_topic_value("no.such.key", "1").unwrap_err();
        assert_eq!(e.message, "Unknown topic config name: no.such.key");
        assert_eq!(
            e.error_code(),
            kafka_protocol::ResponseError::InvalidConfig.code()
        );
        assert_eq!(
            validate_topic_value("cleanup.policy", " compact , delete ").unwrap(),
            "compact,delete"
        );
        assert!(validate_topic_value("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate_topic_value("segment.bytes", "3000000000").is_err());
        assert!(validate_topic_value("message.timestamp.type", "LogAppendTime").is_ok());
    }

    #[test]
    fn config_broker_synonyms_and_precedence() {
        let d = LogDefaults::from_pairs([
            ("log.retention.hours".to_string(), "2".to_string()),
            ("log.segment.bytes".to_string(), "1048576".to_string()),
            (
                "log.retention.check.interval.ms".to_string(),
                "1000".to_string(),
            ),
        ])
        .unwrap();
        assert_eq!(d.retention_check_interval_ms, 1000);
        let c = TopicConfig::resolve(&d, &BTreeMap::new());
        assert_eq!(c.retention_ms, 2 * MS_PER_HOUR);
        assert_eq!(c.segment_bytes, 1 << 20);
        let c = TopicConfig::resolve(&d, &map(&[("retention.ms", "5")]));
        assert_eq!(c.retention_ms, 5);
        let entries = resolve_entries(&d, &map(&[("retention.ms", "5")]));
        let r = entries
            .iter()
            .find(|e| e.key.name == "retention.ms")
            .unwrap();
        assert_eq!(r.source, source::DYNAMIC_TOPIC_CONFIG);
        assert_eq!(
            r.synonyms,
            vec![
                (
                    "retention.ms".into(),
                    "5".into(),
                    source::DYNAMIC_TOPIC_CONFIG
                ),
                (
                    "log.retention.hours".into(),
                    "2".into(),
                    source::STATIC_BROKER_CONFIG
                ),
                (
                    "log.retention.hours".into(),
                    "168".into(),
                    source::DEFAULT_CONFIG
                ),
            ]
        );
        let s = entries
            .iter()
            .find(|e| e.key.name == "segment.bytes")
            .unwrap();
        assert_eq!(
            (s.value.as_str(), s.source),
            ("1048576", source::STATIC_BROKER_CONFIG)
        );
        let e = LogDefaults::from_pairs([("log.bogus".to_string(), "1".to_string())]).unwrap_err();
        assert!(e.message.contains("log.bogus"));
        let e = LogDefaults::from_pairs([("log.retention.hours".to_string(), "x".to_string())])
            .unwrap_err();
        assert!(e.message.contains("log.retention.hours"));
        let table: toml::Table = toml::from_str(
            "log.retention.hours = 3\nlog.cleanup.policy = [\"compact\", \"delete\"]\n",
        )
        .unwrap();
        let pairs = toml_pairs("log", table["log"].as_table().unwrap());
        assert!(pairs.contains(&("log.retention.hours".into(), "3".into())));
        assert!(pairs.contains(&("log.cleanup.policy".into(), "compact,delete".into())));
        let entries = d.broker_entries();
        assert!(entries.contains(&("log.retention.hours".into(), "2".into(), true)));
        assert!(entries.contains(&("log.retention.bytes".into(), "-1".into(), false)));
    }

    #[test]
    fn config_incremental_ops() {
        let d = LogDefaults::default();
        let cur = map(&[("retention.ms", "100")]);
        let edit = ConfigEdit::Incremental(vec![
            (
                "cleanup.policy".into(),
                AlterOp::Append,
                Some("compact".into()),
            ),
            ("retention.ms".into(), AlterOp::Delete, None),
            ("segment.bytes".into(), AlterOp::Set, Some("4096".into())),
        ]);
        let next = apply_edit(&d, &cur, &edit).unwrap();
        assert_eq!(
            next,
            map(&[
                ("cleanup.policy", "delete,compact"),
                ("segment.bytes", "4096")
            ])
        );
        let sub = ConfigEdit::Incremental(vec![(
            "cleanup.policy".into(),
            AlterOp::Subtract,
            Some("delete".into()),
        )]);
        assert_eq!(
            apply_edit(&d, &next, &sub).unwrap()["cleanup.policy"],
            "compact"
        );
        let bad = ConfigEdit::Incremental(vec![(
            "retention.ms".into(),
            AlterOp::Append,
            Some("1".into()),
        )]);
        let e = apply_edit(&d, &cur, &bad).unwrap_err();
        assert!(e.invalid_request && e.message.contains("retention.ms"));
        let replace = ConfigEdit::Replace(map(&[("retention.bytes", "10")]));
        assert_eq!(
            apply_edit(&d, &cur, &replace).unwrap(),
            map(&[("retention.bytes", "10")])
        );
    }
}
