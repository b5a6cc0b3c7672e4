//! The `authorized_operations` bitfields of Metadata, DescribeCluster,
//! DescribeGroups and ConsumerGroupDescribe (not an API: a helper of
//! those).
//!
//! There is no authorizer, so, as Kafka answers without one, every
//! operation valid for the resource type is authorized: Kafka's
//! `AclEntry.supportedOperations` sets (4.x: groups include the config
//! operations of KIP-848's group configs), as bits at each `AclOperation`
//! code. A field not requested carries `i32::MIN`. An authorizer would
//! plug in here, answering per principal and resource.

/// Kafka's "authorized operations not requested" marker.
pub(super) const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// Kafka's `AclOperation` codes of the operations used below.
mod acl_operation {
    pub(super) const READ: u8 = 3;
    pub(super) const WRITE: u8 = 4;
    pub(super) const CREATE: u8 = 5;
    pub(super) const DELETE: u8 = 6;
    pub(super) const ALTER: u8 = 7;
    pub(super) const DESCRIBE: u8 = 8;
    pub(super) const CLUSTER_ACTION: u8 = 9;
    pub(super) const DESCRIBE_CONFIGS: u8 = 10;
    pub(super) const ALTER_CONFIGS: u8 = 11;
    pub(super) const IDEMPOTENT_WRITE: u8 = 12;
}

use acl_operation::*;

const TOPIC_OPERATIONS: &[u8] = &[
    READ,
    WRITE,
    CREATE,
    DESCRIBE,
    DELETE,
    ALTER,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
];
const GROUP_OPERATIONS: &[u8] = &[READ, DESCRIBE, DELETE, DESCRIBE_CONFIGS, ALTER_CONFIGS];
const CLUSTER_OPERATIONS: &[u8] = &[
    CREATE,
    CLUSTER_ACTION,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
    IDEMPOTENT_WRITE,
    ALTER,
    DESCRIBE,
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

/// Kafka's `Utils.to32BitField`: bit `code` set for each operation.
const fn bitfield(operations: &[u8]) -> i32 {
    let mut bits = 0i32;
    let mut i = 0;
    while i < operations.len() {
        bits |= 1 << operations[i];
        i += 1;
    }
    bits
}

/// The field for `resource` when the client asked (`requested`), else the
/// omitted marker.
pub(super) fn authorized_operations(resource: Resource, requested: bool) -> i32 {
    if !requested {
        return AUTHORIZED_OPERATIONS_OMITTED;
    }
    match resource {
        Resource::Topic => bitfield(TOPIC_OPERATIONS),
        Resource::Group => bitfield(GROUP_OPERATIONS),
        Resource::Cluster => bitfield(CLUSTER_OPERATIONS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorized_operations_without_authorizer_are_kafkas_supported_sets() {
        // READ|WRITE|CREATE|DELETE|ALTER|DESCRIBE|DESCRIBE_CONFIGS|ALTER_CONFIGS
        assert_eq!(authorized_operations(Resource::Topic, true), 3576);
        // READ|DELETE|DESCRIBE|DESCRIBE_CONFIGS|ALTER_CONFIGS
        assert_eq!(authorized_operations(Resource::Group, true), 3400);
        // CREATE|ALTER|DESCRIBE|CLUSTER_ACTION|DESCRIBE_CONFIGS|ALTER_CONFIGS|IDEMPOTENT_WRITE
        assert_eq!(authorized_operations(Resource::Cluster, true), 8096);
        for r in [Resource::Topic, Resource::Group, Resource::Cluster] {
            assert_eq!(authorized_operations(r, false), i32::MIN);
        }
    }
}
