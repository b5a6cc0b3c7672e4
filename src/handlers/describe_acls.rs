//! DescribeAcls (key 29), v1-3 (flexible from v2). v0, without pattern types, is
//! what Kafka 4 removed (KIP-896) and the codec crate does not carry;
//! clients ask for v1 or later. Needs DESCRIBE on the cluster (else
//! CLUSTER_AUTHORIZATION_FAILED); without an authorizer
//! SECURITY_DISABLED, as Kafka. Answers the snapshot's ACLs the filter
//! selects (`security::acl::filter`, with ANY and MATCH), grouped by
//! resource pattern.

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{ApiKey, DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::security::acl::{AclBinding, AclFilter, Operation};

/// Served versions.
pub const API: ApiSpec = ApiSpec {
    key: ApiKey::DescribeAcls,
    min: 1,
    max: 3,
};

/// Answers DescribeAcls.
pub async fn handle(ctx: &RequestContext, request: DescribeAclsRequest) -> DescribeAclsResponse {
    let refused = |code: i16, message: String| {
        DescribeAclsResponse::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)))
    };
    if let Err((code, message)) = ctx.acl_api_gate(Operation::Describe) {
        return refused(code, message.to_string());
    }
    let filter = match AclFilter::from_wire(
        request.resource_type_filter,
        request.resource_name_filter.as_deref(),
        request.pattern_type_filter,
        request.principal_filter.as_deref(),
        request.host_filter.as_deref(),
        request.operation,
        request.permission_type,
    ) {
        Ok(f) => f,
        Err(e) => return refused(ResponseError::InvalidRequest.code(), e.0),
    };
    let acls = ctx.shard.snapshot().acls.clone();
    let selected = acls.bindings().filter(|b| filter.matches(b));
    DescribeAclsResponse::default().with_resources(grouped(selected))
}

/// ACLs grouped by resource pattern; `bindings` come sorted, so each
/// pattern's ACLs are adjacent.
fn grouped<'a>(bindings: impl Iterator<Item = &'a AclBinding>) -> Vec<DescribeAclsResource> {
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    for b in bindings {
        let description = AclDescription::default()
            .with_principal(StrBytes::from_string(b.principal.clone()))
            .with_host(StrBytes::from_string(b.host.clone()))
            .with_operation(b.operation.code())
            .with_permission_type(b.permission.code());
        let same = resources.last_mut().filter(|r| {
            r.resource_type == b.resource_type.code()
                && r.pattern_type == b.pattern.code()
                && *r.resource_name == *b.name
        });
        match same {
            Some(r) => r.acls.push(description),
            None => resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(b.resource_type.code())
                    .with_resource_name(StrBytes::from_string(b.name.clone()))
                    .with_pattern_type(b.pattern.code())
                    .with_acls(vec![description]),
            ),
        }
    }
    resources
}
