//! The `authorized_operations` bitfields of Metadata, DescribeCluster,
//! DescribeGroups and ConsumerGroupDescribe (not an API: a helper of
//! those).
//!
//! Each operation valid for the resource type (Kafka's
//! `AclEntry.supportedOperations` sets; 4.x groups include the config
//! operations of KIP-848's group configs) is a bit at its `AclOperation`
//! code, set when the connection's principal may do it on the resource
//! (`RequestContext::authorize`): without an authorizer, every one, as
//! Kafka answers without one. A field not requested carries `i32::MIN`.

use super::RequestContext;
use crate::security::acl::{Operation, ResourceType, CLUSTER_RESOURCE_NAME};

/// Kafka's "authorized operations not requested" marker.
pub(super) const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

use Operation::*;

const TOPIC_OPERATIONS: &[Operation] = &[
    Read,
    Write,
    Create,
    Describe,
    Delete,
    Alter,
    DescribeConfigs,
    AlterConfigs,
];
const GROUP_OPERATIONS: &[Operation] = &[Read, Describe, Delete, DescribeConfigs, AlterConfigs];
const CLUSTER_OPERATIONS: &[Operation] = &[
    Create,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    Alter,
    Describe,
];

/// The resource types that report authorized operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resource {
    /// A topic (Metadata).
    Topic,
    /// A consumer group (DescribeGroups, ConsumerGroupDescribe).
    Group,
    /// The cluster (Metadata v8-10, DescribeCluster).
    Cluster,
}

impl Resource {
    fn operations(self) -> &'static [Operation] {
        match self {
            Resource::Topic => TOPIC_OPERATIONS,
            Resource::Group => GROUP_OPERATIONS,
            Resource::Cluster => CLUSTER_OPERATIONS,
        }
    }

    fn acl_type(self) -> ResourceType {
        match self {
            Resource::Topic => ResourceType::Topic,
            Resource::Group => ResourceType::Group,
            Resource::Cluster => ResourceType::Cluster,
        }
    }
}

/// Kafka's `Utils.to32BitField`: bit `code` set for each operation.
fn bitfield(operations: impl Iterator<Item = Operation>) -> i32 {
    operations.fold(0i32, |bits, o| bits | 1 << o.code())
}

/// The field for the resource `name` (ignored for the cluster) when the
/// client asked (`requested`), else the omitted marker.
pub(super) fn authorized_operations(
    ctx: &RequestContext,
    resource: Resource,
    name: &str,
    requested: bool,
) -> i32 {
    if !requested {
        return AUTHORIZED_OPERATIONS_OMITTED;
    }
    let name = match resource {
        Resource::Cluster => CLUSTER_RESOURCE_NAME,
        _ => name,
    };
    bitfield(
        resource
            .operations()
            .iter()
            .copied()
            .filter(|o| ctx.authorize(*o, resource.acl_type(), name)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorized_operations_without_authorizer_are_kafkas_supported_sets() {
        let all = |r: Resource| bitfield(r.operations().iter().copied());
        // READ|WRITE|CREATE|DELETE|ALTER|DESCRIBE|DESCRIBE_CONFIGS|ALTER_CONFIGS
        assert_eq!(all(Resource::Topic), 3576);
        // READ|DELETE|DESCRIBE|DESCRIBE_CONFIGS|ALTER_CONFIGS
        assert_eq!(all(Resource::Group), 3400);
        // CREATE|ALTER|DESCRIBE|CLUSTER_ACTION|DESCRIBE_CONFIGS|ALTER_CONFIGS|IDEMPOTENT_WRITE
        assert_eq!(all(Resource::Cluster), 8096);
    }
}
