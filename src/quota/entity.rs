//! Quota entities, keys and Kafka's precedence between them.
//!
//! An entity is what `kafka-configs --entity-type users/clients` names: a
//! user, a client id, or a (user, client id) pair, where either part may be
//! the `<default>` entity (a null name on the wire). The quota that applies
//! to a connection is found per key, walking Kafka's eight levels from the
//! most specific (`/config/users/<user>/clients/<client-id>`) to the least
//! (`/config/clients/<default>`); the first level that sets the key wins.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Kafka's entity type for a user (the authenticated principal's name).
pub const ENTITY_TYPE_USER: &str = "user";
/// Kafka's entity type for a client id.
pub const ENTITY_TYPE_CLIENT_ID: &str = "client-id";
/// Kafka's entity type for an IP (connection-rate quotas; refused here).
pub const ENTITY_TYPE_IP: &str = "ip";

/// One part of an entity: a name, or the `<default>` entity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityName {
    /// `<default>`: every user (or client id) without its own entry.
    Default,
    /// One user or client id.
    Name(String),
}

impl EntityName {
    /// From the wire: a null name is the default entity.
    pub fn from_wire(name: Option<&str>) -> EntityName {
        match name {
            None => EntityName::Default,
            Some(n) => EntityName::Name(n.to_string()),
        }
    }

    /// To the wire: the default entity is a null name.
    pub fn to_wire(&self) -> Option<&str> {
        match self {
            EntityName::Default => None,
            EntityName::Name(n) => Some(n),
        }
    }
}

impl std::fmt::Display for EntityName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntityName::Default => f.write_str("<default>"),
            EntityName::Name(n) => f.write_str(n),
        }
    }
}

/// A quota entity: a user, a client id, or both. At least one is set.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntity {
    /// The user part, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<EntityName>,
    /// The client-id part, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<EntityName>,
}

impl std::fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.user, &self.client_id) {
            (Some(u), Some(c)) => write!(f, "users/{u}/clients/{c}"),
            (Some(u), None) => write!(f, "users/{u}"),
            (None, Some(c)) => write!(f, "clients/{c}"),
            (None, None) => f.write_str("(no entity)"),
        }
    }
}

/// An entity that cannot be used, with Kafka's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidEntity(pub String);

impl QuotaEntity {
    /// Builds an entity from the wire's (type, name) components, as Kafka
    /// checks them: each type at most once, only `user` and `client-id`
    /// (`ip` is a connection-rate quota, not served), and not empty.
    pub fn from_wire<'a>(
        components: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<QuotaEntity, InvalidEntity> {
        let mut entity = QuotaEntity {
            user: None,
            client_id: None,
        };
        for (entity_type, name) in components {
            let slot = match entity_type {
                ENTITY_TYPE_USER => &mut entity.user,
                ENTITY_TYPE_CLIENT_ID => &mut entity.client_id,
                ENTITY_TYPE_IP => {
                    return Err(InvalidEntity(
                        "IP connection-rate quotas are not supported by this broker".into(),
                    ))
                }
                other => {
                    return Err(InvalidEntity(format!(
                        "Unhandled client quota entity type: {other}"
                    )))
                }
            };
            if name == Some("") {
                return Err(InvalidEntity(format!("Empty {entity_type} not supported")));
            }
            if slot.is_some() {
                return Err(InvalidEntity(format!(
                    "Duplicate {entity_type} found in entity"
                )));
            }
            *slot = Some(EntityName::from_wire(name));
        }
        if entity.user.is_none() && entity.client_id.is_none() {
            return Err(InvalidEntity("Invalid empty client quota entity".into()));
        }
        Ok(entity)
    }

    /// The (type, name) components, user first, as Kafka lists them.
    pub fn components(&self) -> Vec<(&'static str, Option<&str>)> {
        let mut out = Vec::with_capacity(2);
        if let Some(u) = &self.user {
            out.push((ENTITY_TYPE_USER, u.to_wire()));
        }
        if let Some(c) = &self.client_id {
            out.push((ENTITY_TYPE_CLIENT_ID, c.to_wire()));
        }
        out
    }
}

/// The quota kinds a client may be throttled on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaType {
    /// `producer_byte_rate`: Produce request bytes per second.
    Produce,
    /// `consumer_byte_rate`: Fetch response bytes per second.
    Fetch,
    /// `request_percentage`: percent of one shard's time spent on the
    /// client's requests, per second (`quota` module doc).
    Request,
}

impl QuotaType {
    /// Every type, in metric order.
    pub const ALL: [QuotaType; 3] = [QuotaType::Produce, QuotaType::Fetch, QuotaType::Request];

    /// Kafka's config key.
    pub fn key(self) -> &'static str {
        match self {
            QuotaType::Produce => "producer_byte_rate",
            QuotaType::Fetch => "consumer_byte_rate",
            QuotaType::Request => "request_percentage",
        }
    }

    /// The type a config key sets.
    pub fn from_key(key: &str) -> Option<QuotaType> {
        QuotaType::ALL.into_iter().find(|t| t.key() == key)
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            QuotaType::Produce => "produce",
            QuotaType::Fetch => "fetch",
            QuotaType::Request => "request",
        }
    }
}

/// Kafka's key for KIP-599 controller mutation quotas: refused here, since
/// the broker does not throttle topic creations and deletions.
pub const CONTROLLER_MUTATION_RATE_KEY: &str = "controller_mutation_rate";

/// Checks one key and value as Kafka's controller does
/// (`Invalid configuration key`, `must be a Long value` for the byte
/// rates), and refuses what cannot be enforced: a value that is not a
/// positive number (the throttle divides by it).
pub fn check_value(key: &str, value: f64) -> Result<QuotaType, String> {
    let Some(kind) = QuotaType::from_key(key) else {
        if key == CONTROLLER_MUTATION_RATE_KEY {
            return Err(format!(
                "Configuration {key} is not supported by this broker (topic mutations are not throttled)"
            ));
        }
        return Err(format!("Invalid configuration key {key}"));
    };
    if kind != QuotaType::Request && value.fract() != 0.0 {
        return Err(format!("Configuration {key} must be a Long value"));
    }
    if !value.is_finite() || value <= 0.0 {
        return Err(format!(
            "Configuration {key} must be a positive number, not {value}"
        ));
    }
    Ok(kind)
}

/// Every configured quota: entity -> key -> value. Empty on a broker that
/// never had one, which the hot path checks first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientQuotas {
    entries: BTreeMap<QuotaEntity, BTreeMap<QuotaType, f64>>,
}

/// The quota that applies to one connection for one type, and the
/// accounting bucket it is shared in (Kafka's metric tags): the user
/// and/or client id of the entity level it came from, with a default level
/// naming the connection's own user or client id.
#[derive(Clone, Debug, PartialEq)]
pub struct AppliedQuota {
    /// The bound: bytes per second, or percent.
    pub bound: f64,
    /// The user the usage is counted under (None: not by user).
    pub user: Option<String>,
    /// The client id the usage is counted under (None: not by client id).
    pub client_id: Option<String>,
}

impl ClientQuotas {
    /// No quota is configured.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entity with its values, in entity order.
    pub fn iter(&self) -> impl Iterator<Item = (&QuotaEntity, &BTreeMap<QuotaType, f64>)> {
        self.entries.iter()
    }

    /// Sets (`Some`) or removes (`None`) one key of one entity; an entity
    /// left without keys is dropped.
    pub fn set(&mut self, entity: &QuotaEntity, kind: QuotaType, value: Option<f64>) {
        match value {
            Some(v) => {
                self.entries
                    .entry(entity.clone())
                    .or_default()
                    .insert(kind, v);
            }
            None => {
                if let Some(values) = self.entries.get_mut(entity) {
                    values.remove(&kind);
                    if values.is_empty() {
                        self.entries.remove(entity);
                    }
                }
            }
        }
    }

    /// The quota of `kind` for a connection of `user` (the principal's
    /// name) with `client_id`, by Kafka's precedence:
    /// 1. users/U/clients/C, 2. users/U/clients/<default>, 3. users/U,
    /// 4. users/<default>/clients/C, 5. users/<default>/clients/<default>,
    /// 6. users/<default>, 7. clients/C, 8. clients/<default>.
    pub fn applied(&self, kind: QuotaType, user: &str, client_id: &str) -> Option<AppliedQuota> {
        use EntityName::{Default as D, Name as N};
        let u = || N(user.to_string());
        let c = || N(client_id.to_string());
        // (entity, counted by user, counted by client id)
        let levels: [(Option<EntityName>, Option<EntityName>, bool, bool); 8] = [
            (Some(u()), Some(c()), true, true),
            (Some(u()), Some(D), true, true),
            (Some(u()), None, true, false),
            (Some(D), Some(c()), true, true),
            (Some(D), Some(D), true, true),
            (Some(D), None, true, false),
            (None, Some(c()), false, true),
            (None, Some(D), false, true),
        ];
        for (entity_user, entity_client, by_user, by_client) in levels {
            let entity = QuotaEntity {
                user: entity_user,
                client_id: entity_client,
            };
            if let Some(bound) = self.entries.get(&entity).and_then(|v| v.get(&kind)) {
                return Some(AppliedQuota {
                    bound: *bound,
                    user: by_user.then(|| user.to_string()),
                    client_id: by_client.then(|| client_id.to_string()),
                });
            }
        }
        None
    }

    /// The values of one entity.
    pub fn get(&self, entity: &QuotaEntity) -> Option<&BTreeMap<QuotaType, f64>> {
        self.entries.get(entity)
    }
}

/// One entity's quotas on disk and in the Raft log: Kafka key -> value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersistedQuota {
    /// The entity.
    #[serde(flatten)]
    pub entity: QuotaEntity,
    /// Kafka key -> value.
    pub values: BTreeMap<String, f64>,
}

// Values are checked finite when set (`check_value`), so equality is an
// equivalence here; the Raft log's types need `Eq`.
impl Eq for PersistedQuota {}

impl ClientQuotas {
    /// The persisted form.
    pub fn to_persisted(&self) -> Vec<PersistedQuota> {
        self.entries
            .iter()
            .map(|(entity, values)| PersistedQuota {
                entity: entity.clone(),
                values: values
                    .iter()
                    .map(|(k, v)| (k.key().to_string(), *v))
                    .collect(),
            })
            .collect()
    }

    /// From the persisted form; an unknown key or bad value is an error
    /// naming the entity (a hand-edited file stops start-up).
    pub fn from_persisted(records: &[PersistedQuota]) -> Result<ClientQuotas, String> {
        let mut out = ClientQuotas::default();
        for r in records {
            if r.entity.user.is_none() && r.entity.client_id.is_none() {
                return Err("client quota with no user and no client id".into());
            }
            for (key, value) in &r.values {
                let kind = check_value(key, *value)
                    .map_err(|e| format!("client quota {}: {e}", r.entity))?;
                out.set(&r.entity, kind, Some(*value));
            }
        }
        Ok(out)
    }
}

/// The user name of a principal (`User:alice` is `alice`), as Kafka's
/// quota entity names it.
pub fn user_of_principal(principal: &str) -> &str {
    principal.strip_prefix("User:").unwrap_or(principal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(user: Option<Option<&str>>, client: Option<Option<&str>>) -> QuotaEntity {
        QuotaEntity {
            user: user.map(EntityName::from_wire),
            client_id: client.map(EntityName::from_wire),
        }
    }

    /// Kafka's eight levels, most specific first: removing each level in
    /// turn exposes the next one, and the bucket follows the level.
    #[test]
    fn quota_precedence_is_kafkas_eight_levels() {
        let levels = [
            (entity(Some(Some("u")), Some(Some("c"))), 1.0, (true, true)),
            (entity(Some(Some("u")), Some(None)), 2.0, (true, true)),
            (entity(Some(Some("u")), None), 3.0, (true, false)),
            (entity(Some(None), Some(Some("c"))), 4.0, (true, true)),
            (entity(Some(None), Some(None)), 5.0, (true, true)),
            (entity(Some(None), None), 6.0, (true, false)),
            (entity(None, Some(Some("c"))), 7.0, (false, true)),
            (entity(None, Some(None)), 8.0, (false, true)),
        ];
        let mut quotas = ClientQuotas::default();
        for (e, v, _) in &levels {
            quotas.set(e, QuotaType::Produce, Some(*v));
        }
        for (e, v, (by_user, by_client)) in &levels {
            let applied = quotas.applied(QuotaType::Produce, "u", "c").unwrap();
            assert_eq!(applied.bound, *v, "level {e}");
            assert_eq!(applied.user.is_some(), *by_user, "level {e}");
            assert_eq!(applied.client_id.is_some(), *by_client, "level {e}");
            quotas.set(e, QuotaType::Produce, None);
        }
        assert!(quotas.is_empty());
        assert_eq!(quotas.applied(QuotaType::Produce, "u", "c"), None);
    }

    #[test]
    fn quota_keys_resolve_independently() {
        let mut quotas = ClientQuotas::default();
        quotas.set(
            &entity(Some(Some("u")), None),
            QuotaType::Produce,
            Some(100.0),
        );
        quotas.set(&entity(None, Some(None)), QuotaType::Fetch, Some(200.0));
        let fetch = quotas.applied(QuotaType::Fetch, "u", "other").unwrap();
        assert_eq!(
            (fetch.bound, fetch.client_id.as_deref()),
            (200.0, Some("other"))
        );
        assert_eq!(quotas.applied(QuotaType::Produce, "v", "c"), None);
        assert_eq!(quotas.applied(QuotaType::Request, "u", "c"), None);
    }

    #[test]
    fn quota_persisted_form_round_trips_and_is_checked() {
        let mut quotas = ClientQuotas::default();
        quotas.set(
            &entity(Some(None), Some(Some("c"))),
            QuotaType::Request,
            Some(12.5),
        );
        quotas.set(
            &entity(Some(Some("u")), None),
            QuotaType::Produce,
            Some(1024.0),
        );
        let json = serde_json::to_string(&quotas.to_persisted()).unwrap();
        let back: Vec<PersistedQuota> = serde_json::from_str(&json).unwrap();
        assert_eq!(ClientQuotas::from_persisted(&back).unwrap(), quotas);
        let bad: Vec<PersistedQuota> =
            serde_json::from_str(r#"[{"user":{"name":"u"},"values":{"no_such":1.0}}]"#).unwrap();
        assert!(ClientQuotas::from_persisted(&bad)
            .unwrap_err()
            .contains("users/u"));
    }

    #[test]
    fn quota_user_is_the_principal_name() {
        assert_eq!(user_of_principal("User:alice"), "alice");
        assert_eq!(user_of_principal("User:ANONYMOUS"), "ANONYMOUS");
    }
}
