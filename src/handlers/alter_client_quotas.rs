//! AlterClientQuotas (key 49), v0-1 (flexible from v1): sets and removes
//! client quota keys per entity, as `kafka-configs --alter --entity-type
//! users/clients --add-config producer_byte_rate=...` sends them. Each
//! entity is checked as Kafka's controller checks it: only `user` and
//! `client-id` parts (a null name is `<default>`, an empty one is refused),
//! only the keys `producer_byte_rate`, `consumer_byte_rate` (whole numbers)
//! and `request_percentage`; anything else is INVALID_REQUEST for that
//! entity with Kafka's message (`controller_mutation_rate` and `ip`
//! entities too: not enforced here, see `quota`). Unlike Kafka, an entity
//! with any bad op changes nothing. The valid entities' ops go to the
//! metadata owner as one change, unless `validate_only`. With an
//! authorizer it needs ALTER_CONFIGS on the cluster (else every entity is
//! CLUSTER_AUTHORIZATION_FAILED), as Kafka.

use kafka_protocol::messages::alter_client_quotas_request::EntryData as RequestEntry;
use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse, ApiKey};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::quota::entity::check_value;
use crate::quota::{QuotaEntity, QuotaType};
use crate::security::acl::Operation;
use crate::shard::MetaChange;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::AlterClientQuotas,
    min: 0,
    max: 1,
};

/// One entity's checked edits: key, new value (`None` removes).
type Edits = Vec<(QuotaEntity, QuotaType, Option<f64>)>;

/// Answers AlterClientQuotas.
pub async fn handle(
    ctx: &RequestContext,
    request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let allowed = ctx.authorize_cluster(Operation::AlterConfigs);
    let mut outcomes: Vec<Result<Edits, (i16, String)>> = request
        .entries
        .iter()
        .map(|entry| match allowed {
            true => check_entry(entry).map_err(|m| (ResponseError::InvalidRequest.code(), m)),
            false => Err((
                ResponseError::ClusterAuthorizationFailed.code(),
                "Cluster authorization failed.".into(),
            )),
        })
        .collect();
    let edits: Edits = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok())
        .flatten()
        .cloned()
        .collect();
    if !request.validate_only && !edits.is_empty() {
        let (code, message) = ctx
            .shard
            .change_metadata(MetaChange::AlterClientQuotas { edits })
            .await;
        if code != 0 {
            for outcome in outcomes.iter_mut().filter(|o| o.is_ok()) {
                *outcome = Err((code, message.clone().unwrap_or_default()));
            }
        }
    }
    let entries = request
        .entries
        .iter()
        .zip(outcomes)
        .map(|(entry, outcome)| {
            let entity = entry
                .entity
                .iter()
                .map(|e| {
                    EntityData::default()
                        .with_entity_type(e.entity_type.clone())
                        .with_entity_name(e.entity_name.clone())
                })
                .collect();
            let answer = EntryData::default().with_entity(entity);
            match outcome {
                // Kafka answers a null message on success.
                Ok(_) => answer.with_error_message(None),
                Err((code, message)) => answer
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    AlterClientQuotasResponse::default().with_entries(entries)
}

/// One entry's entity and ops, checked; Kafka's message for the first
/// problem.
fn check_entry(entry: &RequestEntry) -> Result<Edits, String> {
    let entity = QuotaEntity::from_wire(
        entry
            .entity
            .iter()
            .map(|e| (e.entity_type.as_str(), e.entity_name.as_deref())),
    )
    .map_err(|e| e.0)?;
    entry
        .ops
        .iter()
        .map(|op| {
            let key = op.key.as_str();
            if op.remove {
                let kind = QuotaType::from_key(key)
                    .ok_or_else(|| format!("Invalid configuration key {key}"))?;
                return Ok((entity.clone(), kind, None));
            }
            check_value(key, op.value).map(|kind| (entity.clone(), kind, Some(op.value)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::alter_client_quotas_request::{EntityData, OpData};

    fn entry(entity: &[(&str, Option<&str>)], ops: &[(&str, f64, bool)]) -> RequestEntry {
        RequestEntry::default()
            .with_entity(
                entity
                    .iter()
                    .map(|(t, n)| {
                        EntityData::default()
                            .with_entity_type(StrBytes::from_string(t.to_string()))
                            .with_entity_name(n.map(|n| StrBytes::from_string(n.to_string())))
                    })
                    .collect(),
            )
            .with_ops(
                ops.iter()
                    .map(|(k, v, remove)| {
                        OpData::default()
                            .with_key(StrBytes::from_string(k.to_string()))
                            .with_value(*v)
                            .with_remove(*remove)
                    })
                    .collect(),
            )
    }

    #[test]
    fn alter_client_quotas_v0_checks_entities_keys_and_values_as_kafka() {
        let ok = check_entry(&entry(
            &[("user", Some("alice")), ("client-id", None)],
            &[("producer_byte_rate", 1024.0, false), ("request_percentage", 12.5, false)],
        ))
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].0.to_string(), "users/alice/clients/<default>");
        for (e, ops, needle) in [
            (vec![], vec![("producer_byte_rate", 1.0, false)], "Invalid empty client quota entity"),
            (vec![("user", Some(""))], vec![], "Empty user not supported"),
            (vec![("group", Some("g"))], vec![], "Unhandled client quota entity type: group"),
            (vec![("ip", Some("1.2.3.4"))], vec![], "IP connection-rate"),
            (vec![("user", Some("a"))], vec![("no_such_key", 1.0, false)], "Invalid configuration key no_such_key"),
            (vec![("user", Some("a"))], vec![("consumer_byte_rate", 1.5, false)], "must be a Long value"),
            (vec![("user", Some("a"))], vec![("producer_byte_rate", 0.0, false)], "positive"),
            (vec![("user", Some("a"))], vec![("controller_mutation_rate", 1.0, false)], "not supported"),
            (vec![("user", Some("a"))], vec![("bogus", 0.0, true)], "Invalid configuration key bogus"),
        ] {
            let message = check_entry(&entry(&e, &ops)).unwrap_err();
            assert!(message.contains(needle), "{message} lacks {needle}");
        }
        let removal = check_entry(&entry(&[("client-id", Some("c"))], &[("consumer_byte_rate", 0.0, true)])).unwrap();
        assert_eq!(removal[0].2, None);
    }
}
