//! Broker-level log defaults (`log.*` keys from the TOML file, and the
//! dynamic broker configs set at run time) that topic configs fall back to,
//! and the TOML flattening they are read with.
//!
//! Each broker key resolves per key, as in Kafka's DynamicBrokerConfig:
//! this broker's dynamic value, then the cluster-wide dynamic default, then
//! the static (TOML) value; a topic key then takes the first of its broker
//! synonyms that resolves (`log.retention.ms` before `.minutes` before
//! `.hours`).

use super::*;

/// Broker-level log defaults from the TOML file: Kafka's broker keys
/// (`log.retention.hours = 168`), each validated like its topic key. Also
/// the two settings that only exist at broker level.
#[derive(Debug, Clone, PartialEq)]
pub struct LogDefaults {
    /// Broker keys the operator set in the TOML file, with their text.
    pub set: BTreeMap<String, String>,
    /// Broker keys set at run time (AlterConfigs on the broker resource).
    pub dynamic: DynamicBrokerConfigs,
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

/// Dynamic broker configs, validated text by broker key: set with
/// (Incremental)AlterConfigs on the broker resource, persisted with the
/// metadata and broadcast in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DynamicBrokerConfigs {
    /// This broker's own (resource name = its node id).
    pub broker: BTreeMap<String, String>,
    /// The cluster-wide default (resource name "").
    pub cluster_default: BTreeMap<String, String>,
}

/// Whether broker key `name` may change at run time: every broker synonym
/// of a topic key and the cleaner's I/O budget, as Kafka's
/// DynamicLogConfig and DynamicBrokerConfig allow.
/// `log.retention.check.interval.ms` is read-only in Kafka too.
pub fn is_dynamic_broker_key(name: &str) -> bool {
    name == CLEANER_IO_KEY
        || CONFIG_KEYS
            .iter()
            .any(|k| k.synonyms.iter().any(|s| s.name == name))
}

/// Checks a dynamic broker value; `None` when `name` is not a dynamic key.
pub fn validate_dynamic_broker_value(
    name: &str,
    value: &str,
) -> Option<Result<String, ConfigValueError>> {
    if name == CLEANER_IO_KEY {
        let checked = match value.trim().parse::<u64>() {
            Ok(n) if n >= CLEANER_IO_BYTES_PER_SECOND_MIN => Ok(n.to_string()),
            _ => Err(ConfigValueError::new(
                name,
                format!(
                    "Invalid value {value} for configuration {name}: Value must be at least \
                     {CLEANER_IO_BYTES_PER_SECOND_MIN}"
                ),
            )),
        };
        return Some(checked);
    }
    let (key, factor) = CONFIG_KEYS.iter().find_map(|k| {
        k.synonyms
            .iter()
            .find(|s| s.name == name)
            .map(|s| (k, s.factor))
    })?;
    Some(validate_value(key, name, value, factor))
}

impl Default for LogDefaults {
    fn default() -> Self {
        Self {
            set: BTreeMap::new(),
            dynamic: DynamicBrokerConfigs::default(),
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

    /// These static defaults under `dynamic` broker configs.
    pub fn with_dynamic(&self, dynamic: &DynamicBrokerConfigs) -> LogDefaults {
        let mut out = LogDefaults {
            dynamic: dynamic.clone(),
            ..self.clone()
        };
        if let Some((text, _)) = out.layered(CLEANER_IO_KEY) {
            if let Ok(n) = text.parse::<u64>() {
                out.cleaner_io_bytes_per_second = n;
            }
        }
        out
    }

    /// Broker key `name`'s text and source: this broker's dynamic value,
    /// the cluster default's, or the static one.
    pub fn layered(&self, name: &str) -> Option<(&String, i8)> {
        self.layer_maps()
            .into_iter()
            .find_map(|(map, source)| map.get(name).map(|text| (text, source)))
    }

    /// Kafka's DescribeConfigs synonyms of topic key `key` at the broker
    /// level: layer by layer (this broker, the cluster default, the file),
    /// the broker keys in precedence order within each layer, then Kafka's
    /// default under the broker key Kafka reports it with (the last
    /// synonym, in its unit), or under the key itself when it has none.
    pub fn synonyms_of(&self, key: &ConfigKey) -> Vec<(String, String, i8)> {
        let mut out = Vec::new();
        for (map, source) in self.layer_maps() {
            for s in key.synonyms {
                if let Some(text) = map.get(s.name) {
                    out.push((s.name.to_string(), text.clone(), source));
                }
            }
        }
        let (shown_name, shown_default) = match key.synonyms.last() {
            Some(last) if last.factor != 1 => (
                last.name,
                (key.default.parse::<i64>().unwrap_or(0) / last.factor).to_string(),
            ),
            Some(last) => (last.name, key.default.to_string()),
            None => (key.name, key.default.to_string()),
        };
        out.push((
            shown_name.to_string(),
            shown_default,
            source::DEFAULT_CONFIG,
        ));
        out
    }

    /// The broker layers with their DescribeConfigs source, highest first.
    fn layer_maps(&self) -> [(&BTreeMap<String, String>, i8); 3] {
        [
            (&self.dynamic.broker, source::DYNAMIC_BROKER_CONFIG),
            (
                &self.dynamic.cluster_default,
                source::DYNAMIC_DEFAULT_BROKER_CONFIG,
            ),
            (&self.set, source::STATIC_BROKER_CONFIG),
        ]
    }

    /// The broker-level value of topic key `key`, the broker key it came
    /// from and its source, if the operator set one.
    pub fn broker_value(&self, key: &ConfigKey) -> Option<(&'static str, String, i8)> {
        key.synonyms.iter().find_map(|s| {
            let (text, source) = self.layered(s.name)?;
            let value = match s.factor {
                1 => text.clone(),
                f => text.parse::<i64>().ok()?.saturating_mul(f).to_string(),
            };
            Some((s.name, value, source))
        })
    }

    /// The value a topic without an override gets for `key`, and its source.
    pub fn default_for(&self, key: &ConfigKey) -> (String, i8) {
        match self.broker_value(key) {
            Some((_, value, source)) => (value, source),
            None => (key.default.to_string(), source::DEFAULT_CONFIG),
        }
    }

    /// Every broker key this broker knows, with its current text and
    /// source: what DescribeConfigs on the broker resource lists (besides
    /// the non-log settings of `Config`).
    pub fn broker_entries(&self) -> Vec<(String, String, i8)> {
        let source_of = |name: &str| {
            self.layered(name)
                .map_or(source::DEFAULT_CONFIG, |(_, source)| source)
        };
        let mut entries = vec![
            (
                CHECK_INTERVAL_KEY.to_string(),
                self.retention_check_interval_ms.to_string(),
                source_of(CHECK_INTERVAL_KEY),
            ),
            (
                CLEANER_IO_KEY.to_string(),
                self.cleaner_io_bytes_per_second.to_string(),
                source_of(CLEANER_IO_KEY),
            ),
        ];
        for key in CONFIG_KEYS {
            for s in key.synonyms {
                let value = match (self.layered(s.name), s.factor) {
                    (Some((text, _)), _) => Some(text.clone()),
                    (None, 1) => Some(key.default.to_string()),
                    // Unit synonyms (hours, minutes) show the default only on
                    // the last, which is how Kafka reports them.
                    (None, f)
                        if key
                            .synonyms
                            .last()
                            .is_some_and(|last| std::ptr::eq(s, last)) =>
                    {
                        key.default.parse::<i64>().ok().map(|d| (d / f).to_string())
                    }
                    (None, _) => None,
                };
                if let Some(value) = value {
                    entries.push((s.name.to_string(), value, source_of(s.name)));
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
