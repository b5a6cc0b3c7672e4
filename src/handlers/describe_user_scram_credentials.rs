//! DescribeUserScramCredentials (key 50), v0: the mechanisms and
//! iteration counts of users' SCRAM credentials (never the credentials).
//! No users named (null or empty) lists every user; a named user without
//! credentials is RESOURCE_NOT_FOUND, a name given twice DUPLICATE_RESOURCE,
//! as Kafka answers.

use std::collections::HashMap;

use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    ApiKey, DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::DescribeUserScramCredentials,
    min: 0,
    max: 0,
};

/// Answers DescribeUserScramCredentials.
pub async fn handle(
    ctx: &RequestContext,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    // Kafka: DESCRIBE on the cluster.
    if !ctx.authorize_cluster(crate::security::acl::Operation::Describe) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code());
    }
    let users = ctx.shard.snapshot().users.clone();
    let names: Vec<String> = match request.users {
        Some(named) if !named.is_empty() => named.iter().map(|u| u.name.to_string()).collect(),
        _ => users.keys().cloned().collect(),
    };
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for name in &names {
        *seen.entry(name.as_str()).or_default() += 1;
    }
    let results = names
        .iter()
        .map(|name| {
            let result = DescribeUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(name.clone()));
            if seen.get(name.as_str()).copied().unwrap_or(0) > 1 {
                return result
                    .with_error_code(ResponseError::DuplicateResource.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Cannot describe SCRAM credentials for the same user twice in a single request: {name}"
                    ))));
            }
            match users.get(name) {
                Some(credentials) => result.with_credential_infos(
                    credentials
                        .iter()
                        .map(|(mechanism, c)| {
                            CredentialInfo::default()
                                .with_mechanism(mechanism.kafka_type())
                                .with_iterations(c.iterations as i32)
                        })
                        .collect(),
                ),
                None => result
                    .with_error_code(ResponseError::ResourceNotFound.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Attempt to describe a user credential that does not exist: {name}"
                    )))),
            }
        })
        .collect();
    DescribeUserScramCredentialsResponse::default().with_results(results)
}
