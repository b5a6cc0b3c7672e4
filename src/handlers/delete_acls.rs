//! DeleteAcls (key 31), v1-3 (flexible from v2). v0, without pattern types, is
//! what Kafka 4 removed (KIP-896) and the codec crate does not carry;
//! clients ask for v1 or later.
//! Needs ALTER on the cluster (else every filter's result is
//! CLUSTER_AUTHORIZATION_FAILED); without an authorizer
//! SECURITY_DISABLED, as Kafka. Each filter selects ACLs of the broker's
//! snapshot as DescribeAcls does; an ACL two filters select is reported
//! under the first, as Kafka's controller does. All are removed by the
//! metadata owner in one change.

use std::collections::BTreeSet;

use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::{ApiKey, DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::security::acl::{AclBinding, AclFilter, Operation};
use crate::shard::MetaChange;

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::DeleteAcls,
    min: 1,
    max: 3,
};

/// Answers DeleteAcls.
pub async fn handle(ctx: &RequestContext, request: DeleteAclsRequest) -> DeleteAclsResponse {
    let refused = |code: i16, message: &str| -> DeleteAclsResponse {
        let result = DeleteAclsFilterResult::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message.to_string())));
        DeleteAclsResponse::default().with_filter_results(vec![result; request.filters.len()])
    };
    if let Err((code, message)) = ctx.acl_api_gate(Operation::Alter) {
        return refused(code, message);
    }
    let acls = ctx.shard.snapshot().acls.clone();
    let mut taken: BTreeSet<&AclBinding> = BTreeSet::new();
    let mut per_filter: Vec<Result<Vec<&AclBinding>, String>> = Vec::new();
    for f in &request.filters {
        let filter = AclFilter::from_wire(
            f.resource_type_filter,
            f.resource_name_filter.as_deref(),
            f.pattern_type_filter,
            f.principal_filter.as_deref(),
            f.host_filter.as_deref(),
            f.operation,
            f.permission_type,
        );
        per_filter.push(match filter {
            Err(e) => Err(e.0),
            Ok(filter) => Ok(acls
                .bindings()
                .filter(|b| filter.matches(b) && taken.insert(*b))
                .collect()),
        });
    }
    let mut failure = None;
    if !taken.is_empty() {
        let (code, message) = ctx
            .shard
            .change_metadata(MetaChange::AlterAcls {
                creations: Vec::new(),
                deletions: taken.iter().map(|b| (*b).clone()).collect(),
            })
            .await;
        if code != 0 {
            failure = Some((code, message));
        }
    }
    let results = per_filter
        .into_iter()
        .map(|matched| match (matched, &failure) {
            (Err(message), _) => DeleteAclsFilterResult::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(StrBytes::from_string(message))),
            (Ok(_), Some((code, message))) => DeleteAclsFilterResult::default()
                .with_error_code(*code)
                .with_error_message(message.clone().map(StrBytes::from_string)),
            (Ok(matched), None) => DeleteAclsFilterResult::default()
                .with_matching_acls(matched.into_iter().map(matching).collect()),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}

fn matching(b: &AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(b.resource_type.code())
        .with_resource_name(StrBytes::from_string(b.name.clone()))
        .with_pattern_type(b.pattern.code())
        .with_principal(StrBytes::from_string(b.principal.clone()))
        .with_host(StrBytes::from_string(b.host.clone()))
        .with_operation(b.operation.code())
        .with_permission_type(b.permission.code())
}
