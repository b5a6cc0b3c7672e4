//! `corestream quotas list | set | delete`: client quotas through
//! DescribeClientQuotas and AlterClientQuotas, so it works against Kafka
//! too (what `kafka-configs --entity-type users/clients` does).
//!
//! An entity is `--user U` and/or `--client-id C`; `--user-default` and
//! `--client-id-default` name the `<default>` entities (kafka-configs'
//! `--entity-default`). `set` takes `--producer-byte-rate`,
//! `--consumer-byte-rate` and `--request-percentage`; `delete` removes the
//! keys named with `--key` (repeatable), or every key of the entity.
//! `list` shows every quota, or those of the entities matching the
//! options (a user or client id given alone also lists its pairs).

use clap::{Args, Subcommand};
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{AlterClientQuotasRequest, DescribeClientQuotasRequest};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::client::{check, ClientError, Cluster};
use super::output::Output;
use crate::quota::entity::{ENTITY_TYPE_CLIENT_ID, ENTITY_TYPE_USER};
use crate::quota::QuotaType;

/// Highest DescribeClientQuotas / AlterClientQuotas version spoken.
const QUOTA_VERSION_MAX: i16 = 1;
/// Kafka's match types: a name, the `<default>` entity.
const MATCH_TYPE_EXACT: i8 = 0;
const MATCH_TYPE_DEFAULT: i8 = 1;

/// Quota commands.
#[derive(Subcommand, Debug)]
pub enum QuotasCommand {
    /// Client quotas, all or those of the named entity.
    List(EntityArgs),
    /// Set quota keys of an entity.
    Set(SetArgs),
    /// Remove quota keys of an entity (every key without --key).
    Delete(DeleteArgs),
}

/// The entity: user and/or client id.
#[derive(Args, Debug, Default)]
pub struct EntityArgs {
    /// User (the principal's name, e.g. alice for User:alice).
    #[arg(long, conflicts_with = "user_default")]
    user: Option<String>,
    /// The <default> user entity.
    #[arg(long)]
    user_default: bool,
    /// Client id.
    #[arg(long, conflicts_with = "client_id_default")]
    client_id: Option<String>,
    /// The <default> client-id entity.
    #[arg(long)]
    client_id_default: bool,
}

/// `quotas set`.
#[derive(Args, Debug)]
pub struct SetArgs {
    #[command(flatten)]
    entity: EntityArgs,
    /// producer_byte_rate: produce bytes per second.
    #[arg(long)]
    producer_byte_rate: Option<u64>,
    /// consumer_byte_rate: fetch bytes per second.
    #[arg(long)]
    consumer_byte_rate: Option<u64>,
    /// request_percentage: percent of one request thread (a shard here).
    #[arg(long)]
    request_percentage: Option<f64>,
    /// Check only; change nothing.
    #[arg(long)]
    validate_only: bool,
}

/// `quotas delete`.
#[derive(Args, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    entity: EntityArgs,
    /// Key to remove, e.g. producer_byte_rate (repeatable; default every key).
    #[arg(long)]
    key: Vec<String>,
}

/// Runs a quota command.
pub fn run(cluster: &mut Cluster, out: &Output, cmd: QuotasCommand) -> Result<(), ClientError> {
    match cmd {
        QuotasCommand::List(entity) => list(cluster, out, &entity),
        QuotasCommand::Set(args) => set(cluster, &args),
        QuotasCommand::Delete(args) => delete(cluster, &args),
    }
}

fn usage(message: impl Into<String>) -> ClientError {
    ClientError::Usage(message.into())
}

/// One entity part: `None` absent, `Some(None)` the default, `Some(Some)` a name.
type Part = Option<Option<String>>;

impl EntityArgs {
    fn user(&self) -> Part {
        match (&self.user, self.user_default) {
            (Some(u), _) => Some(Some(u.clone())),
            (None, true) => Some(None),
            (None, false) => None,
        }
    }

    fn client_id(&self) -> Part {
        match (&self.client_id, self.client_id_default) {
            (Some(c), _) => Some(Some(c.clone())),
            (None, true) => Some(None),
            (None, false) => None,
        }
    }

    /// The entity as the wire names it; at least one part is required.
    fn wire(&self) -> Result<Vec<EntityData>, ClientError> {
        let parts = self.parts();
        if parts.is_empty() {
            return Err(usage(
                "name an entity: --user, --user-default, --client-id or --client-id-default",
            ));
        }
        Ok(parts
            .into_iter()
            .map(|(t, n)| {
                EntityData::default()
                    .with_entity_type(StrBytes::from_static_str(t))
                    .with_entity_name(n.map(StrBytes::from_string))
            })
            .collect())
    }

    fn parts(&self) -> Vec<(&'static str, Option<String>)> {
        let mut out = Vec::new();
        if let Some(u) = self.user() {
            out.push((ENTITY_TYPE_USER, u));
        }
        if let Some(c) = self.client_id() {
            out.push((ENTITY_TYPE_CLIENT_ID, c));
        }
        out
    }
}

/// One entity's quotas as read back: (user, client id) parts and values.
struct Described {
    user: Part,
    client_id: Part,
    values: Vec<(String, f64)>,
}

fn describe(
    cluster: &mut Cluster,
    entity: &EntityArgs,
    strict: bool,
) -> Result<Vec<Described>, ClientError> {
    let components = entity
        .parts()
        .into_iter()
        .map(|(t, n)| {
            ComponentData::default()
                .with_entity_type(StrBytes::from_static_str(t))
                .with_match_type(if n.is_some() {
                    MATCH_TYPE_EXACT
                } else {
                    MATCH_TYPE_DEFAULT
                })
                .with_match(n.map(StrBytes::from_string))
        })
        .collect();
    let request = DescribeClientQuotasRequest::default()
        .with_components(components)
        .with_strict(strict);
    let answer = cluster.bootstrap.send(&request, QUOTA_VERSION_MAX)?;
    let message = answer.error_message.as_ref().map(|m| m.to_string());
    check(answer.error_code, || {
        format!("describing client quotas: {}", message.unwrap_or_default())
    })?;
    let mut out = Vec::new();
    for entry in answer.entries.unwrap_or_default() {
        let mut d = Described {
            user: None,
            client_id: None,
            values: entry
                .values
                .iter()
                .map(|v| (v.key.to_string(), v.value))
                .collect(),
        };
        for e in entry.entity {
            let name = e.entity_name.map(|n| n.to_string());
            match e.entity_type.as_str() {
                ENTITY_TYPE_USER => d.user = Some(name),
                ENTITY_TYPE_CLIENT_ID => d.client_id = Some(name),
                _ => {}
            }
        }
        out.push(d);
    }
    Ok(out)
}

fn shown(part: &Part) -> String {
    match part {
        None => String::new(),
        Some(None) => "<default>".into(),
        Some(Some(n)) => n.clone(),
    }
}

fn list(cluster: &mut Cluster, out: &Output, entity: &EntityArgs) -> Result<(), ClientError> {
    let described = describe(cluster, entity, false)?;
    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    for d in &described {
        for (key, value) in &d.values {
            rows.push(vec![
                shown(&d.user),
                shown(&d.client_id),
                key.clone(),
                value.to_string(),
            ]);
            // JSON: null when the entity has no such part.
            let part = |p: &Part| p.as_ref().map(|_| shown(p));
            json_rows.push(json!({
                "user": part(&d.user), "client_id": part(&d.client_id), "key": key, "value": value,
            }));
        }
    }
    out.table(
        &["USER", "CLIENT_ID", "KEY", "VALUE"],
        &rows,
        json!({ "quotas": json_rows }),
    );
    Ok(())
}

fn alter(
    cluster: &mut Cluster,
    entity: Vec<EntityData>,
    ops: Vec<OpData>,
    validate_only: bool,
) -> Result<(), ClientError> {
    let request = AlterClientQuotasRequest::default()
        .with_entries(vec![EntryData::default().with_entity(entity).with_ops(ops)])
        .with_validate_only(validate_only);
    let answer = cluster.bootstrap.send(&request, QUOTA_VERSION_MAX)?;
    for entry in answer.entries {
        let message = entry.error_message.as_ref().map(|m| m.to_string());
        check(entry.error_code, || {
            format!("altering client quotas: {}", message.unwrap_or_default())
        })?;
    }
    Ok(())
}

fn set(cluster: &mut Cluster, args: &SetArgs) -> Result<(), ClientError> {
    let entity = args.entity.wire()?;
    let values = [
        (
            QuotaType::Produce,
            args.producer_byte_rate.map(|v| v as f64),
        ),
        (QuotaType::Fetch, args.consumer_byte_rate.map(|v| v as f64)),
        (QuotaType::Request, args.request_percentage),
    ];
    let ops: Vec<OpData> = values
        .into_iter()
        .filter_map(|(kind, value)| {
            value.map(|v| {
                OpData::default()
                    .with_key(StrBytes::from_static_str(kind.key()))
                    .with_value(v)
            })
        })
        .collect();
    if ops.is_empty() {
        return Err(usage(
            "set needs --producer-byte-rate, --consumer-byte-rate or --request-percentage",
        ));
    }
    alter(cluster, entity, ops, args.validate_only)
}

fn delete(cluster: &mut Cluster, args: &DeleteArgs) -> Result<(), ClientError> {
    let entity = args.entity.wire()?;
    let keys: Vec<String> = match args.key.is_empty() {
        false => args.key.clone(),
        // Every key the entity has now.
        true => describe(cluster, &args.entity, true)?
            .into_iter()
            .flat_map(|d| d.values.into_iter().map(|(k, _)| k))
            .collect(),
    };
    if keys.is_empty() {
        return Ok(());
    }
    let ops = keys
        .into_iter()
        .map(|k| {
            OpData::default()
                .with_key(StrBytes::from_string(k))
                .with_remove(true)
        })
        .collect();
    alter(cluster, entity, ops, false)
}
