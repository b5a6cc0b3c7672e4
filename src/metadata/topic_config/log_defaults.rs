//! Broker-level log defaults (`log.*` keys from the TOML file) that topic
//! configs fall back to, and the TOML flattening they are read with.

use super::*;

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
