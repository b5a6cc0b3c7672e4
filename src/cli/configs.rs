//! `corestream configs describe|alter` (and the short forms `config get
//! |set|delete`): topic and broker configs through DescribeConfigs and
//! IncrementalAlterConfigs (kafka-configs).

use clap::{Args, Subcommand};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::client::{check, ClientError, Cluster};
use super::output::Output;

/// Highest DescribeConfigs version this client fills in.
const DESCRIBE_CONFIGS_VERSION_MAX: i16 = 4;
/// Highest IncrementalAlterConfigs version.
const INCREMENTAL_ALTER_CONFIGS_VERSION_MAX: i16 = 1;
/// Kafka's ConfigResource.Type codes.
const RESOURCE_TOPIC: i8 = 2;
/// See [`RESOURCE_TOPIC`].
const RESOURCE_BROKER: i8 = 4;
/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
/// See [`OP_SET`].
const OP_DELETE: i8 = 1;

/// Which resource.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct Resource {
    /// A topic's configs.
    #[arg(long)]
    pub topic: Option<String>,
    /// A broker's configs (its node id).
    #[arg(long)]
    pub broker: Option<i32>,
}

impl Resource {
    fn kind_and_name(&self) -> (i8, String) {
        match (&self.topic, self.broker) {
            (Some(t), _) => (RESOURCE_TOPIC, t.clone()),
            (None, Some(b)) => (RESOURCE_BROKER, b.to_string()),
            (None, None) => (RESOURCE_TOPIC, String::new()),
        }
    }
}

/// Config commands.
#[derive(Subcommand, Debug)]
pub enum ConfigsCommand {
    /// Every config of a topic or broker, with its value and source
    /// (`get KEY...` shows only those keys).
    #[command(visible_alias = "get")]
    Describe {
        /// Which resource.
        #[command(flatten)]
        resource: Resource,
        /// Only these keys (default: all).
        keys: Vec<String>,
    },
    /// Set configs: KEY=VALUE... (same as `alter --set`).
    Set {
        /// Which resource.
        #[command(flatten)]
        resource: Resource,
        /// KEY=VALUE pairs.
        #[arg(required = true, value_name = "KEY=VALUE")]
        pairs: Vec<String>,
    },
    /// Delete configs back to their defaults: KEY... (same as `alter --delete`).
    Delete {
        /// Which resource.
        #[command(flatten)]
        resource: Resource,
        /// Keys.
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
    },
    /// Set or delete (back to the default) configs.
    Alter {
        /// Which resource.
        #[command(flatten)]
        resource: Resource,
        /// KEY=VALUE to set (repeatable).
        #[arg(long = "set")]
        set: Vec<String>,
        /// KEY to delete (repeatable).
        #[arg(long = "delete")]
        delete: Vec<String>,
    },
}

fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        _ => "UNKNOWN",
    }
}

/// Runs a config command.
pub fn run(cluster: &mut Cluster, out: &Output, cmd: ConfigsCommand) -> Result<(), ClientError> {
    match cmd {
        ConfigsCommand::Describe { resource, keys } => describe(cluster, out, &resource, &keys),
        ConfigsCommand::Set { resource, pairs } => alter(cluster, &resource, &pairs, &[]),
        ConfigsCommand::Delete { resource, keys } => alter(cluster, &resource, &[], &keys),
        ConfigsCommand::Alter {
            resource,
            set,
            delete,
        } => alter(cluster, &resource, &set, &delete),
    }
}

fn describe(
    cluster: &mut Cluster,
    out: &Output,
    resource: &Resource,
    keys: &[String],
) -> Result<(), ClientError> {
    let (kind, name) = resource.kind_and_name();
    let mut r = DescribeConfigsResource::default();
    r.resource_type = kind;
    r.resource_name = StrBytes::from_string(name.clone());
    r.configuration_keys = (!keys.is_empty()).then(|| {
        keys.iter()
            .map(|k| StrBytes::from_string(k.clone()))
            .collect()
    });
    let mut request = DescribeConfigsRequest::default();
    request.resources = vec![r];
    let answer = cluster
        .bootstrap
        .send(&request, DESCRIBE_CONFIGS_VERSION_MAX)?;
    let mut rows = Vec::new();
    let mut entries = Vec::new();
    for result in &answer.results {
        check(result.error_code, || {
            format!("describing configs of {name:?}")
        })?;
        for c in &result.configs {
            let value = if c.is_sensitive {
                "(sensitive)".to_string()
            } else {
                c.value
                    .as_ref()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "null".into())
            };
            rows.push(vec![
                c.name.to_string(),
                value.clone(),
                source_name(c.config_source).into(),
                c.read_only.to_string(),
            ]);
            entries.push(json!({
                "name": c.name.as_str(), "value": value,
                "source": source_name(c.config_source), "read_only": c.read_only,
            }));
        }
    }
    out.table(
        &["KEY", "VALUE", "SOURCE", "READ-ONLY"],
        &rows,
        json!(entries),
    );
    Ok(())
}

fn alter(
    cluster: &mut Cluster,
    resource: &Resource,
    set: &[String],
    delete: &[String],
) -> Result<(), ClientError> {
    if set.is_empty() && delete.is_empty() {
        return Err(ClientError::Usage(
            "nothing to change: give --set KEY=VALUE or --delete KEY".into(),
        ));
    }
    let (kind, name) = resource.kind_and_name();
    let mut configs = Vec::new();
    for kv in set {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| ClientError::Usage(format!("--set {kv:?} is not KEY=VALUE")))?;
        let mut c = AlterableConfig::default();
        c.name = StrBytes::from_string(k.to_string());
        c.config_operation = OP_SET;
        c.value = Some(StrBytes::from_string(v.to_string()));
        configs.push(c);
    }
    for k in delete {
        let mut c = AlterableConfig::default();
        c.name = StrBytes::from_string(k.to_string());
        c.config_operation = OP_DELETE;
        configs.push(c);
    }
    let mut r = AlterConfigsResource::default();
    r.resource_type = kind;
    r.resource_name = StrBytes::from_string(name.clone());
    r.configs = configs;
    let mut request = IncrementalAlterConfigsRequest::default();
    request.resources = vec![r];
    let answer = cluster
        .bootstrap
        .send(&request, INCREMENTAL_ALTER_CONFIGS_VERSION_MAX)?;
    for r in &answer.responses {
        if r.error_code != 0 {
            let message = r
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            return Err(ClientError::Kafka {
                context: format!("altering configs of {name:?} {message}")
                    .trim_end()
                    .to_string(),
                code: r.error_code,
            });
        }
    }
    eprintln!("altered configs of {name}");
    Ok(())
}
