//! Changing a topic's overrides: AlterConfigs (replace) and
//! IncrementalAlterConfigs (SET, DELETE, APPEND, SUBTRACT), validated.

use super::*;

/// IncrementalAlterConfigs operations (Kafka's `OpType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
