//! Kafka ACLs: the model ([`model`]), the per-shard index and decision
//! ([`index`]), DescribeAcls/DeleteAcls filters ([`filter`]) and the
//! broker's authorizer settings ([`AclAuthorizer`]).
//!
//! ACLs are cluster metadata, like SCRAM users: CreateAcls and DeleteAcls
//! become a `MetaChange::AlterAcls` made by the metadata owner (single
//! node: persisted in `meta/topics.json`; cluster: a `SetAcls` command
//! through Raft), and every shard gets them in its
//! `metadata::Snapshot::acls` as an [`AclIndex`]. A permission check is
//! then a lookup in the shard's own snapshot: no cross-shard call, no
//! lock, no allocation.
//!
//! The authorizer is off unless `--authorizer acl`: then the broker's
//! config holds an [`AclAuthorizer`] and every request checks; without
//! it `handlers::RequestContext::authorize` is one branch that says yes.

pub mod filter;
pub mod index;
pub mod model;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

pub use filter::{AclFilter, PatternFilter};
pub use index::AclIndex;
pub use model::{
    AclBinding, InvalidAcl, Operation, PatternType, Permission, ResourceType,
    CLUSTER_RESOURCE_NAME, WILDCARD, WILDCARD_PRINCIPAL,
};

/// Most ACLs the broker holds. Every shard keeps an index of all of them,
/// rebuilt on each change, and a single node rewrites them all to
/// `meta/topics.json` per change: a bound keeps that memory and that work
/// bounded. Kafka clusters with tens of thousands of ACLs exist; a
/// CreateAcls that would pass this is refused with POLICY_VIOLATION.
pub const ACLS_MAX: usize = 100_000;

/// The resource name [`AclAuthorizer::authorize_any`] asks about first
/// (Kafka's `authorizeByResourceType` uses the same one).
const UNNAMED_RESOURCE: &str = "hardcode";

/// The ACL authorizer's settings (`--authorizer acl`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclAuthorizer {
    /// Principals allowed everything (Kafka's super.users), e.g.
    /// `User:admin`.
    pub super_users: BTreeSet<String>,
    /// Allow a request on a resource no ACL names (Kafka's
    /// allow.everyone.if.no.acl.found; default false).
    pub allow_everyone_if_no_acl_found: bool,
}

impl AclAuthorizer {
    /// Whether `principal` from `host` may do `operation` on the named
    /// resource under `acls`.
    pub fn authorize(
        &self,
        acls: &AclIndex,
        principal: &str,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.super_users.contains(principal)
            || acls.authorize(
                principal,
                host,
                operation,
                resource_type,
                name,
                self.allow_everyone_if_no_acl_found,
            )
    }

    /// Whether `principal` may do `operation` on some resource of the
    /// type (see [`AclIndex::authorize_any`]).
    pub fn authorize_any(
        &self,
        acls: &AclIndex,
        principal: &str,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        // As Kafka's default `authorizeByResourceType`: first the answer
        // for a name no ACL is meant to name, which lets
        // allow_everyone_if_no_acl_found (and wildcard ALLOWs) through.
        self.authorize(
            acls,
            principal,
            host,
            operation,
            resource_type,
            UNNAMED_RESOURCE,
        ) || acls.authorize_any(principal, host, operation, resource_type)
    }
}

/// Parses Kafka's super.users list: principals separated by `;` (Kafka's
/// form) or `,`, each `Type:name`.
pub fn parse_super_users(text: &str) -> Result<BTreeSet<String>, InvalidAcl> {
    let mut users = BTreeSet::new();
    for principal in text
        .split([';', ','])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        users.insert(
            parse_principal(principal).map_err(|e| InvalidAcl(format!("super user {}", e.0)))?,
        );
    }
    Ok(users)
}

/// Checks one principal is Kafka's `Type:name` (e.g. `User:console`),
/// trimmed, with no list separator in it; the one home for the form that
/// `--super-users` and `--admin-ui-principal` share.
pub fn parse_principal(text: &str) -> Result<String, InvalidAcl> {
    let principal = text.trim();
    match principal.split_once(':') {
        Some((kind, name))
            if !kind.is_empty() && !name.is_empty() && !principal.contains([';', ',']) =>
        {
            Ok(principal.to_string())
        }
        _ => Err(InvalidAcl(format!(
            "{principal:?} is not Type:name (e.g. User:admin)"
        ))),
    }
}
