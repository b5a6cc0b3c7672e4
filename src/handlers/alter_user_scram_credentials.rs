//! AlterUserScramCredentials (key 51), v0: sets or deletes users' SCRAM
//! credentials with Kafka's checks (kafka-configs.sh --alter
//! --add-config 'SCRAM-SHA-512=[iterations=8192,password=...]' sends the
//! salted password, computed by the client). Per user: an unknown mechanism
//! is UNSUPPORTED_SASL_MECHANISM; iterations outside 4096..=16384, an empty
//! name, salt or salted password UNACCEPTABLE_CREDENTIAL; the same user and
//! mechanism twice DUPLICATE_RESOURCE; deleting a credential that does not
//! exist RESOURCE_NOT_FOUND. The accepted ones go to the metadata owner as
//! one change. With an authorizer it needs ALTER on the cluster.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::security::scram::{
    ScramCredential, ScramMechanism, SCRAM_ITERATIONS_MAX, SCRAM_ITERATIONS_MIN,
};
use crate::shard::MetaChange;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::AlterUserScramCredentials,
    min: 0,
    max: 0,
};

type UserError = (i16, String);

/// Answers AlterUserScramCredentials.
pub async fn handle(
    ctx: &RequestContext,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    // Kafka: ALTER on the cluster, else every user named fails.
    if !ctx.authorize_cluster(crate::security::acl::Operation::Alter) {
        let mut named: Vec<StrBytes> = request.deletions.iter().map(|d| d.name.clone()).collect();
        named.extend(request.upsertions.iter().map(|u| u.name.clone()));
        named.dedup();
        let results = named
            .into_iter()
            .map(|user| {
                AlterUserScramCredentialsResult::default()
                    .with_user(user)
                    .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            })
            .collect();
        return AlterUserScramCredentialsResponse::default().with_results(results);
    }
    let users = ctx.shard.snapshot().users.clone();
    // Every user named, in request order, with the first error found.
    let mut outcome: BTreeMap<String, Option<UserError>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut pairs: HashMap<(String, i8), usize> = HashMap::new();
    let named = request
        .deletions
        .iter()
        .map(|d| (d.name.to_string(), d.mechanism))
        .chain(
            request
                .upsertions
                .iter()
                .map(|u| (u.name.to_string(), u.mechanism)),
        );
    for (name, mechanism) in named {
        *pairs.entry((name.clone(), mechanism)).or_default() += 1;
        if let std::collections::btree_map::Entry::Vacant(slot) = outcome.entry(name) {
            order.push(slot.key().clone());
            slot.insert(None);
        }
    }
    let mut fail = |name: &str, error: UserError| {
        if let Some(slot) = outcome.get_mut(name) {
            slot.get_or_insert(error);
        }
    };
    for ((name, mechanism), count) in &pairs {
        if *count > 1 {
            fail(name, (ResponseError::DuplicateResource.code(), format!("A user credential cannot be altered twice in the same request: {name} mechanism {mechanism}")));
        }
    }
    let mut deletions = Vec::new();
    for d in &request.deletions {
        let name = d.name.to_string();
        match check(&name, d.mechanism) {
            Err(e) => fail(&name, e),
            Ok(m) if users.get(&name).is_some_and(|c| c.contains_key(&m)) => {
                deletions.push((name, m))
            }
            Ok(_) => fail(&name, (ResponseError::ResourceNotFound.code(), format!("Attempt to delete a user credential that does not exist: {name}"))),
        }
    }
    let mut upsertions = Vec::new();
    for u in &request.upsertions {
        let name = u.name.to_string();
        let checked = check(&name, u.mechanism).and_then(|m| {
            let iterations = u32::try_from(u.iterations).unwrap_or(0);
            if !(SCRAM_ITERATIONS_MIN..=SCRAM_ITERATIONS_MAX).contains(&iterations) {
                return Err((ResponseError::UnacceptableCredential.code(), format!("Iterations must be within {SCRAM_ITERATIONS_MIN}..={SCRAM_ITERATIONS_MAX}: {}", u.iterations)));
            }
            if u.salt.is_empty() || u.salted_password.is_empty() {
                return Err((ResponseError::UnacceptableCredential.code(), "Salt and salted password must not be empty".into()));
            }
            Ok(ScramCredential::from_salted_password(m, &u.salted_password, u.salt.to_vec(), iterations))
                .map(|c| (m, c))
        });
        match checked {
            Ok((m, c)) => upsertions.push((name, m, c)),
            Err(e) => fail(&name, e),
        }
    }
    // A user with any error changes nothing.
    deletions.retain(|(n, _)| matches!(outcome.get(n), Some(None)));
    upsertions.retain(|(n, _, _)| matches!(outcome.get(n), Some(None)));
    if !deletions.is_empty() || !upsertions.is_empty() {
        let (code, message) = ctx
            .shard
            .change_metadata(MetaChange::AlterScramCredentials {
                upsertions,
                deletions,
            })
            .await;
        if code != 0 {
            for slot in outcome.values_mut() {
                slot.get_or_insert((code, message.clone().unwrap_or_default()));
            }
        }
    }
    let results = order
        .into_iter()
        .map(|name| {
            let error = outcome.get(&name).cloned().flatten();
            let result =
                AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(name));
            match error {
                None => result,
                Some((code, message)) => result
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}

fn check(name: &str, mechanism: i8) -> Result<ScramMechanism, UserError> {
    if name.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential.code(),
            "Username must not be empty".into(),
        ));
    }
    ScramMechanism::from_kafka_type(mechanism).ok_or_else(|| {
        (
            ResponseError::UnsupportedSaslMechanism.code(),
            format!("Unknown SCRAM mechanism type {mechanism}"),
        )
    })
}
