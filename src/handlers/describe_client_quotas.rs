//! DescribeClientQuotas (key 48), v0-1 (flexible from v1): the client
//! quotas whose entity matches the filter, as Kafka's controller answers
//! (`ClientQuotasImage.describe`). Each component names an entity type
//! (`user`, `client-id`) and a match: EXACT (that name), DEFAULT (the
//! `<default>` entity) or SPECIFIED (any entity that has the type, default
//! included). Non-strict, an entity matches when every component does;
//! strict, it must also have no other type. A bad filter (empty, repeated
//! or unknown type, a match string where none belongs, an unknown match
//! type) is INVALID_REQUEST with Kafka's message and no entries. With an
//! authorizer it needs DESCRIBE_CONFIGS on the cluster (else
//! CLUSTER_AUTHORIZATION_FAILED), as Kafka.

use kafka_protocol::messages::describe_client_quotas_response::{
    EntityData, EntryData, ValueData,
};
use kafka_protocol::messages::{ApiKey, DescribeClientQuotasRequest, DescribeClientQuotasResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::quota::entity::{ENTITY_TYPE_CLIENT_ID, ENTITY_TYPE_IP, ENTITY_TYPE_USER};
use crate::quota::{EntityName, QuotaEntity};
use crate::security::acl::Operation;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::DescribeClientQuotas,
    min: 0,
    max: 1,
};

/// Kafka's match types (`DescribeClientQuotasRequest.MATCH_TYPE_*`).
const MATCH_TYPE_EXACT: i8 = 0;
const MATCH_TYPE_DEFAULT: i8 = 1;
const MATCH_TYPE_SPECIFIED: i8 = 2;

/// What one filter component asks of an entity's part of its type.
#[derive(Debug, PartialEq)]
enum PartMatch {
    /// The part is this name, or `<default>`.
    Exact(EntityName),
    /// The part is present.
    Specified,
}

/// The filter: a match for the user part and for the client-id part.
#[derive(Debug, Default, PartialEq)]
struct Filter {
    user: Option<PartMatch>,
    client_id: Option<PartMatch>,
    strict: bool,
}

/// Answers DescribeClientQuotas.
pub async fn handle(
    ctx: &RequestContext,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let refused = |code: i16, message: String| {
        DescribeClientQuotasResponse::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)))
            .with_entries(None)
    };
    if !ctx.authorize_cluster(Operation::DescribeConfigs) {
        return refused(
            ResponseError::ClusterAuthorizationFailed.code(),
            "Cluster authorization failed.".into(),
        );
    }
    let filter = match Filter::from_request(&request) {
        Ok(f) => f,
        Err(message) => return refused(ResponseError::InvalidRequest.code(), message),
    };
    let quotas = ctx.shard.snapshot().client_quotas.clone();
    let entries = quotas
        .iter()
        .filter(|(entity, _)| filter.matches(entity))
        .map(|(entity, values)| {
            let entity_data = entity
                .components()
                .into_iter()
                .map(|(entity_type, name)| {
                    EntityData::default()
                        .with_entity_type(StrBytes::from_static_str(entity_type))
                        .with_entity_name(name.map(|n| StrBytes::from_string(n.to_string())))
                })
                .collect();
            let value_data = values
                .iter()
                .map(|(kind, value)| {
                    ValueData::default()
                        .with_key(StrBytes::from_static_str(kind.key()))
                        .with_value(*value)
                })
                .collect();
            EntryData::default()
                .with_entity(entity_data)
                .with_values(value_data)
        })
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}

impl Filter {
    /// Kafka's checks of a describe filter, with its messages.
    fn from_request(request: &DescribeClientQuotasRequest) -> Result<Filter, String> {
        let mut filter = Filter {
            strict: request.strict,
            ..Filter::default()
        };
        for c in &request.components {
            let entity_type = c.entity_type.as_str();
            let slot = match entity_type {
                "" => return Err("Invalid empty entity type.".into()),
                ENTITY_TYPE_USER => &mut filter.user,
                ENTITY_TYPE_CLIENT_ID => &mut filter.client_id,
                // IP (connection-rate) quotas are not served: refused,
                // as AlterClientQuotas refuses setting them.
                ENTITY_TYPE_IP => {
                    return Err("IP connection-rate quotas are not supported by this broker".into())
                }
                other => return Err(format!("Custom entity type {other} not supported")),
            };
            if slot.is_some() {
                return Err(format!(
                    "Entity type {entity_type} cannot appear more than once in the filter."
                ));
            }
            let name = c._match.as_ref().map(|m| m.to_string());
            *slot = Some(match (c.match_type, name) {
                (MATCH_TYPE_EXACT, Some(name)) => PartMatch::Exact(EntityName::Name(name)),
                (MATCH_TYPE_EXACT, None) => {
                    return Err("Request specified MATCH_TYPE_EXACT, but set match string to null.".into())
                }
                (MATCH_TYPE_DEFAULT, None) => PartMatch::Exact(EntityName::Default),
                (MATCH_TYPE_DEFAULT, Some(_)) => {
                    return Err("Request specified MATCH_TYPE_DEFAULT, but also specified a match string.".into())
                }
                (MATCH_TYPE_SPECIFIED, None) => PartMatch::Specified,
                (MATCH_TYPE_SPECIFIED, Some(_)) => {
                    return Err("Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.".into())
                }
                (other, _) => return Err(format!("Unknown match type {other}")),
            });
        }
        Ok(filter)
    }

    /// Whether `entity` matches every component (and, strict, has no
    /// other part).
    fn matches(&self, entity: &QuotaEntity) -> bool {
        let part = |want: &Option<PartMatch>, have: &Option<EntityName>| match (want, have) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(PartMatch::Specified), Some(_)) => true,
            (Some(PartMatch::Exact(name)), Some(have)) => name == have,
        };
        let all_matched = part(&self.user, &entity.user) && part(&self.client_id, &entity.client_id);
        let unmatched = (self.user.is_none() && entity.user.is_some())
            || (self.client_id.is_none() && entity.client_id.is_some());
        all_matched && !(self.strict && unmatched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_client_quotas_request::ComponentData;

    fn component(entity_type: &str, match_type: i8, name: Option<&str>) -> ComponentData {
        ComponentData::default()
            .with_entity_type(StrBytes::from_string(entity_type.into()))
            .with_match_type(match_type)
            .with_match(name.map(|n| StrBytes::from_string(n.into())))
    }

    fn entity(user: Option<Option<&str>>, client: Option<Option<&str>>) -> QuotaEntity {
        QuotaEntity {
            user: user.map(EntityName::from_wire),
            client_id: client.map(EntityName::from_wire),
        }
    }

    fn filter(components: Vec<ComponentData>, strict: bool) -> Result<Filter, String> {
        Filter::from_request(
            &DescribeClientQuotasRequest::default()
                .with_components(components)
                .with_strict(strict),
        )
    }

    #[test]
    fn describe_client_quotas_v1_filters_match_as_kafka() {
        let alice = entity(Some(Some("alice")), None);
        let alice_app = entity(Some(Some("alice")), Some(Some("app")));
        let default_user = entity(Some(None), None);
        let app = entity(None, Some(Some("app")));
        let exact = filter(vec![component("user", MATCH_TYPE_EXACT, Some("alice"))], false).unwrap();
        assert!(exact.matches(&alice) && exact.matches(&alice_app));
        assert!(!exact.matches(&default_user) && !exact.matches(&app));
        let strict = filter(vec![component("user", MATCH_TYPE_EXACT, Some("alice"))], true).unwrap();
        assert!(strict.matches(&alice) && !strict.matches(&alice_app));
        let default = filter(vec![component("user", MATCH_TYPE_DEFAULT, None)], false).unwrap();
        assert!(default.matches(&default_user) && !default.matches(&alice));
        let any_user = filter(vec![component("user", MATCH_TYPE_SPECIFIED, None)], false).unwrap();
        assert!(any_user.matches(&alice) && any_user.matches(&default_user));
        assert!(!any_user.matches(&app));
        let everything = filter(vec![], false).unwrap();
        assert!(everything.matches(&app) && everything.matches(&alice_app));
        let nothing_strict = filter(vec![], true).unwrap();
        assert!(!nothing_strict.matches(&app));
    }

    #[test]
    fn describe_client_quotas_v0_bad_filters_are_refused() {
        for (components, needle) in [
            (vec![component("", MATCH_TYPE_EXACT, Some("a"))], "empty entity type"),
            (
                vec![component("user", 0, Some("a")), component("user", 2, None)],
                "more than once",
            ),
            (vec![component("user", MATCH_TYPE_EXACT, None)], "MATCH_TYPE_EXACT"),
            (vec![component("user", MATCH_TYPE_DEFAULT, Some("a"))], "MATCH_TYPE_DEFAULT"),
            (vec![component("user", 7, None)], "Unknown match type 7"),
            (vec![component("group", 2, None)], "Custom entity type group"),
        ] {
            let message = filter(components, false).unwrap_err();
            assert!(message.contains(needle), "{message}");
        }
    }
}
