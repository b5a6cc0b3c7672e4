//! CreateAcls (key 30), v1-3 (flexible from v2). v0, without pattern types, is
//! what Kafka 4 removed (KIP-896) and the codec crate does not carry;
//! clients ask for v1 or later. Needs ALTER on the cluster (else every result is
//! CLUSTER_AUTHORIZATION_FAILED); without an authorizer it answers
//! SECURITY_DISABLED, as Kafka does. Each creation is checked as Kafka
//! checks it (`AclBinding::from_wire`; INVALID_REQUEST with the reason),
//! and the valid ones are made by the metadata owner in one change.

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::security::acl::{AclBinding, Operation};
use crate::shard::MetaChange;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::CreateAcls,
    min: 1,
    max: 3,
};

/// Answers CreateAcls.
pub async fn handle(ctx: &RequestContext, request: CreateAclsRequest) -> CreateAclsResponse {
    let refused = |code: i16, message: &str| -> CreateAclsResponse {
        let result = AclCreationResult::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message.to_string())));
        CreateAclsResponse::default().with_results(vec![result; request.creations.len()])
    };
    if let Err((code, message)) = ctx.acl_api_gate(Operation::Alter) {
        return refused(code, message);
    }
    let checked: Vec<Result<AclBinding, String>> = request
        .creations
        .iter()
        .map(|c| {
            AclBinding::from_wire(
                c.resource_type,
                &c.resource_name,
                c.resource_pattern_type,
                &c.principal,
                &c.host,
                c.operation,
                c.permission_type,
            )
            .map_err(|e| e.0)
        })
        .collect();
    let creations: Vec<AclBinding> = checked.iter().filter_map(|c| c.clone().ok()).collect();
    let mut failure: Option<(i16, Option<String>)> = None;
    if !creations.is_empty() {
        let (code, message) = ctx
            .shard
            .change_metadata(MetaChange::AlterAcls {
                creations,
                deletions: Vec::new(),
            })
            .await;
        if code != 0 {
            failure = Some((code, message));
        }
    }
    let results = checked
        .into_iter()
        .map(|c| match (c, &failure) {
            (Err(message), _) => AclCreationResult::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(StrBytes::from_string(message))),
            (Ok(_), Some((code, message))) => AclCreationResult::default()
                .with_error_code(*code)
                .with_error_message(message.clone().map(StrBytes::from_string)),
            (Ok(_), None) => AclCreationResult::default(),
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}
