//! Kafka's ACL vocabulary, with Kafka's wire codes (`ResourceType`,
//! `PatternType`, `AclOperation`, `AclPermissionType` in
//! org.apache.kafka.common), and one ACL: [`AclBinding`].
//!
//! The codes are the ones CreateAcls, DescribeAcls and DeleteAcls carry,
//! so a binding decodes from a request and encodes into a response
//! without a table. The filter-only values (ANY, MATCH) are kept apart
//! from the stored ones: a stored binding can never hold ANY.

use serde::{Deserialize, Serialize};

/// The cluster resource's only name (Kafka's `Resource.CLUSTER_NAME`).
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";
/// The resource name and host that match every name or host.
pub const WILDCARD: &str = "*";
/// The principal that matches every user (Kafka's `User:*`).
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// Longest resource name, principal or host accepted in an ACL, in bytes
/// (topic names stop at 249; group and transactional ids are free text,
/// and every ACL is kept in memory on every shard).
pub const ACL_TEXT_BYTES_MAX: usize = 1024;

/// A resource type an ACL can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ResourceType {
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
    /// The cluster ([`CLUSTER_RESOURCE_NAME`]).
    Cluster,
    /// A transactional id.
    TransactionalId,
}

impl ResourceType {
    /// Every type, in code order.
    pub const ALL: [ResourceType; 4] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
    ];

    /// Kafka's code.
    pub const fn code(self) -> i8 {
        match self {
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
        }
    }

    /// By Kafka's code; `None` for UNKNOWN, ANY and types not served
    /// (DELEGATION_TOKEN, USER).
    pub fn from_code(code: i8) -> Option<ResourceType> {
        ResourceType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// Index into per-type tables.
    pub const fn index(self) -> usize {
        match self {
            ResourceType::Topic => 0,
            ResourceType::Group => 1,
            ResourceType::Cluster => 2,
            ResourceType::TransactionalId => 3,
        }
    }

    /// Kafka's name, as kafka-acls.sh prints it.
    pub const fn name(self) -> &'static str {
        match self {
            ResourceType::Topic => "TOPIC",
            ResourceType::Group => "GROUP",
            ResourceType::Cluster => "CLUSTER",
            ResourceType::TransactionalId => "TRANSACTIONAL_ID",
        }
    }
}

/// Kafka's ResourceType ANY, for filters.
pub const RESOURCE_TYPE_ANY: i8 = 1;

/// How a stored ACL's resource name matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PatternType {
    /// The name exactly, or every name when it is [`WILDCARD`].
    Literal,
    /// Every name that starts with it.
    Prefixed,
}

impl PatternType {
    /// Kafka's code.
    pub const fn code(self) -> i8 {
        match self {
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    /// By Kafka's code; `None` for UNKNOWN, ANY and MATCH.
    pub fn from_code(code: i8) -> Option<PatternType> {
        match code {
            3 => Some(PatternType::Literal),
            4 => Some(PatternType::Prefixed),
            _ => None,
        }
    }

    /// Kafka's name.
    pub const fn name(self) -> &'static str {
        match self {
            PatternType::Literal => "LITERAL",
            PatternType::Prefixed => "PREFIXED",
        }
    }
}

/// Kafka's PatternType ANY (filters: any pattern type, exact name).
pub const PATTERN_TYPE_ANY: i8 = 1;
/// Kafka's PatternType MATCH (filters: every ACL that applies to the name).
pub const PATTERN_TYPE_MATCH: i8 = 2;

/// An operation, by Kafka's `AclOperation` code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Operation {
    /// Every operation (in an ACL only; never asked for).
    All,
    /// Consume, join a group, commit offsets.
    Read,
    /// Produce.
    Write,
    /// Create topics.
    Create,
    /// Delete topics, records, groups.
    Delete,
    /// Add partitions, change ACLs and credentials.
    Alter,
    /// See that a resource exists.
    Describe,
    /// Broker-to-broker requests.
    ClusterAction,
    /// Read configs.
    DescribeConfigs,
    /// Change configs.
    AlterConfigs,
    /// Idempotent produce.
    IdempotentWrite,
    /// Delegation tokens (stored and described; nothing here asks for it).
    CreateTokens,
    /// Delegation tokens (stored and described; nothing here asks for it).
    DescribeTokens,
}

impl Operation {
    /// Every operation, in code order.
    pub const ALL_OPERATIONS: [Operation; 13] = [
        Operation::All,
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
        Operation::CreateTokens,
        Operation::DescribeTokens,
    ];

    /// Kafka's code.
    pub const fn code(self) -> i8 {
        match self {
            Operation::All => 2,
            Operation::Read => 3,
            Operation::Write => 4,
            Operation::Create => 5,
            Operation::Delete => 6,
            Operation::Alter => 7,
            Operation::Describe => 8,
            Operation::ClusterAction => 9,
            Operation::DescribeConfigs => 10,
            Operation::AlterConfigs => 11,
            Operation::IdempotentWrite => 12,
            Operation::CreateTokens => 13,
            Operation::DescribeTokens => 14,
        }
    }

    /// By Kafka's code; `None` for UNKNOWN and ANY.
    pub fn from_code(code: i8) -> Option<Operation> {
        Operation::ALL_OPERATIONS
            .into_iter()
            .find(|o| o.code() == code)
    }

    /// Kafka's name (`kafka-acls.sh --operation` takes it in any case,
    /// with or without the underscore).
    pub const fn name(self) -> &'static str {
        match self {
            Operation::All => "ALL",
            Operation::Read => "READ",
            Operation::Write => "WRITE",
            Operation::Create => "CREATE",
            Operation::Delete => "DELETE",
            Operation::Alter => "ALTER",
            Operation::Describe => "DESCRIBE",
            Operation::ClusterAction => "CLUSTER_ACTION",
            Operation::DescribeConfigs => "DESCRIBE_CONFIGS",
            Operation::AlterConfigs => "ALTER_CONFIGS",
            Operation::IdempotentWrite => "IDEMPOTENT_WRITE",
            Operation::CreateTokens => "CREATE_TOKENS",
            Operation::DescribeTokens => "DESCRIBE_TOKENS",
        }
    }

    /// By name, as kafka-acls.sh accepts it (`Read`, `DescribeConfigs`,
    /// `DESCRIBE_CONFIGS`).
    pub fn from_name(name: &str) -> Option<Operation> {
        let wanted: String = name
            .chars()
            .filter(|c| *c != '_')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        Operation::ALL_OPERATIONS
            .into_iter()
            .find(|o| o.name().replace('_', "") == wanted)
    }

    /// Whether an ALLOW ACL for `self` allows `asked` (Kafka's implied
    /// operations): ALL allows everything; READ, WRITE, DELETE and ALTER
    /// allow DESCRIBE; ALTER_CONFIGS allows DESCRIBE_CONFIGS.
    pub const fn allows(self, asked: Operation) -> bool {
        if self as u8 == asked as u8 || matches!(self, Operation::All) {
            return true;
        }
        match asked {
            Operation::Describe => matches!(
                self,
                Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
            ),
            Operation::DescribeConfigs => matches!(self, Operation::AlterConfigs),
            _ => false,
        }
    }

    /// Whether a DENY ACL for `self` denies `asked`: only the operation
    /// itself or ALL (a DENY READ does not deny DESCRIBE, as in Kafka).
    pub const fn denies(self, asked: Operation) -> bool {
        self as u8 == asked as u8 || matches!(self, Operation::All)
    }
}

/// Kafka's AclOperation ANY, for filters.
pub const OPERATION_ANY: i8 = 1;

/// ALLOW or DENY.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Permission {
    /// Refuses, and wins over any ALLOW.
    Deny,
    /// Grants.
    Allow,
}

impl Permission {
    /// Kafka's code.
    pub const fn code(self) -> i8 {
        match self {
            Permission::Deny => 2,
            Permission::Allow => 3,
        }
    }

    /// By Kafka's code; `None` for UNKNOWN and ANY.
    pub fn from_code(code: i8) -> Option<Permission> {
        match code {
            2 => Some(Permission::Deny),
            3 => Some(Permission::Allow),
            _ => None,
        }
    }

    /// Kafka's name.
    pub const fn name(self) -> &'static str {
        match self {
            Permission::Deny => "DENY",
            Permission::Allow => "ALLOW",
        }
    }
}

/// Kafka's AclPermissionType ANY, for filters.
pub const PERMISSION_ANY: i8 = 1;

/// One ACL: a resource pattern and an access control entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    /// Resource type.
    pub resource_type: ResourceType,
    /// Resource name (or prefix, or [`WILDCARD`]).
    pub name: String,
    /// How `name` matches.
    pub pattern: PatternType,
    /// `User:<name>` or [`WILDCARD_PRINCIPAL`].
    pub principal: String,
    /// A client IP address, or [`WILDCARD`].
    pub host: String,
    /// The operation.
    pub operation: Operation,
    /// ALLOW or DENY.
    pub permission: Permission,
}

/// Why an ACL cannot be created: Kafka's INVALID_REQUEST message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidAcl(pub String);

impl AclBinding {
    /// A binding from CreateAcls' codes, checked as Kafka's
    /// `AclControlManager.validateNewAcl` checks it.
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        name: &str,
        pattern: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission: i8,
    ) -> Result<AclBinding, InvalidAcl> {
        let bad = |m: String| Err(InvalidAcl(m));
        let Some(resource_type) = ResourceType::from_code(resource_type) else {
            return bad(format!("Invalid resource type {resource_type}"));
        };
        let Some(pattern) = PatternType::from_code(pattern) else {
            return bad(format!("Invalid patternType {pattern}"));
        };
        let Some(operation) = Operation::from_code(operation) else {
            return bad(format!("Invalid operation {operation}"));
        };
        let Some(permission) = Permission::from_code(permission) else {
            return bad(format!("Invalid permissionType {permission}"));
        };
        if name.is_empty() {
            return bad("Resource name should not be empty".into());
        }
        if resource_type == ResourceType::Cluster && name != CLUSTER_RESOURCE_NAME {
            return bad(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_RESOURCE_NAME}"
            ));
        }
        match principal.split_once(':') {
            Some((kind, user)) if !kind.is_empty() && !user.is_empty() => {}
            _ => return bad(format!("Could not parse principal from `{principal}`")),
        }
        if host.is_empty() {
            return bad("Host should not be empty".into());
        }
        if [name, principal, host]
            .iter()
            .any(|t| t.len() > ACL_TEXT_BYTES_MAX)
        {
            return bad(format!("ACL text longer than {ACL_TEXT_BYTES_MAX} bytes"));
        }
        Ok(AclBinding {
            resource_type,
            name: name.to_string(),
            pattern,
            principal: principal.to_string(),
            host: host.to_string(),
            operation,
            permission,
        })
    }
}
