//! Who the console acts as, and what each console route needs (issue 24:
//! "when ACLs are on, the console acts as a configured principal and shows
//! only what it may see").
//!
//! Decisions:
//! - The console is a Kafka client of its own broker ([`super::kafka`]),
//!   so it acts as a principal like any client: `admin_ui_principal`
//!   (default `User:ANONYMOUS`, what a Kafka client without credentials
//!   is; Kafka UIs likewise connect as a configured user). Every Kafka
//!   request it sends carries that principal, and the handlers check it
//!   exactly as for a client: Metadata lists only the topics it may
//!   DESCRIBE, ListGroups only the groups, Fetch needs READ, and so on.
//!   The console never bypasses a check and holds no rule of its own.
//! - Before a route runs, [`require`] asks the same authorizer
//!   (`handlers::RequestContext::authorize`, on this shard's ACL
//!   snapshot) for the one operation the route is about ([`need`], the
//!   table of Kafka's per-operation rules for what each page does), so a
//!   refusal is a 403 that names the missing operation, resource and
//!   principal, instead of whichever Kafka error code the first request
//!   happens to meet. The handlers still check every request the route
//!   then sends; a refusal there (e.g. a ListOffsets of a topic during a
//!   reset) is a 403 too, carrying Kafka's error name.
//! - Figures that come from the shards' reports rather than a Kafka
//!   request (sizes, rates, a group's lag rows) are shown only for what
//!   the principal may DESCRIBE ([`allowed`]); the overview's per-shard
//!   figures are cluster information and need DESCRIBE on the cluster.
//! - Without an authorizer nothing changes: [`require`] is one branch.
//! - The admin port's own routes (`/metrics`, `/v1/groups` without
//!   details, `/v1/groups/{g}/lag`) are monitoring, not Kafka access: the
//!   admin token guards them, not ACLs.

use std::rc::Rc;

use super::kafka::{console_connection, CONSOLE_CLIENT_ID};
use super::ConsoleError;
use crate::handlers::RequestContext;
use crate::security::acl::{Operation, ResourceType, CLUSTER_RESOURCE_NAME};
use crate::shard::Shard;

/// A Kafka operation on one resource, as a console route needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Need<'a> {
    /// The operation (READ, WRITE, ...).
    pub(super) operation: Operation,
    /// Topic, group or cluster.
    pub(super) resource_type: ResourceType,
    /// The resource's name (`kafka-cluster` for the cluster).
    pub(super) name: &'a str,
}

impl<'a> Need<'a> {
    /// `operation` on topic `name`.
    pub(super) fn topic(operation: Operation, name: &'a str) -> Need<'a> {
        Need {
            operation,
            resource_type: ResourceType::Topic,
            name,
        }
    }

    /// `operation` on group `name`.
    pub(super) fn group(operation: Operation, name: &'a str) -> Need<'a> {
        Need {
            operation,
            resource_type: ResourceType::Group,
            name,
        }
    }

    /// `operation` on the cluster.
    pub(super) fn cluster(operation: Operation) -> Need<'static> {
        Need {
            operation,
            resource_type: ResourceType::Cluster,
            name: CLUSTER_RESOURCE_NAME,
        }
    }
}

/// What a console route needs, by Kafka's rules for the requests behind
/// it. `None`: the route's Kafka request filters by itself (the topic
/// list is Metadata's, which lists only DESCRIBE-able topics; the group
/// list is ListGroups'), or, for topic creation, the need depends on the
/// body (`topics::create` asks: CREATE on the cluster or the topic).
pub(super) fn need<'a>(method: &str, segments: &[&'a str]) -> Option<Need<'a>> {
    use Operation::{Alter, AlterConfigs, Delete, Describe, DescribeConfigs, Read, Write};
    match (method, segments) {
        ("GET", &["overview"]) => Some(Need::cluster(Describe)),
        ("GET", &["topics", t]) => Some(Need::topic(Describe, t)),
        ("POST", &["topics", t, "delete"]) => Some(Need::topic(Delete, t)),
        ("POST", &["topics", t, "partitions"]) => Some(Need::topic(Alter, t)),
        ("GET", &["topics", t, "configs"]) => Some(Need::topic(DescribeConfigs, t)),
        ("POST", &["topics", t, "configs"]) => Some(Need::topic(AlterConfigs, t)),
        // DeleteRecords up to the high watermark.
        ("POST", &["topics", t, "empty"]) => Some(Need::topic(Delete, t)),
        ("GET", &["topics", t, "messages"]) => Some(Need::topic(Read, t)),
        ("POST", &["topics", t, "messages"]) => Some(Need::topic(Write, t)),
        ("GET", &["groups", g]) => Some(Need::group(Describe, g)),
        ("POST", &["groups", g, "delete"]) => Some(Need::group(Delete, g)),
        // Committing offsets for the group (OffsetCommit), as a member does.
        ("POST", &["groups", g, "reset"]) => Some(Need::group(Read, g)),
        _ => None,
    }
}

/// The request context the handlers would see for a console request, so
/// the decision is theirs (`RequestContext::authorize`), not a copy.
fn console_context(shard: &Rc<Shard>) -> Result<RequestContext, ConsoleError> {
    Ok(RequestContext {
        shard: shard.clone(),
        version: 0,
        client_id: Some(CONSOLE_CLIENT_ID.to_string()),
        admission: None,
        connection: console_connection(shard)?,
        throttle_ms: 0,
    })
}

/// Whether the console's principal may do what `need` says (always, with
/// no authorizer).
pub(super) fn allowed(shard: &Rc<Shard>, need: Need<'_>) -> Result<bool, ConsoleError> {
    if shard.config.security.authorizer.is_none() {
        return Ok(true);
    }
    let ctx = console_context(shard)?;
    Ok(ctx.authorize(need.operation, need.resource_type, need.name))
}

/// `Ok` when the console's principal may do one of `needs`; otherwise a
/// 403 naming the first (logged, as Kafka's authorizer logs a denial).
pub(super) fn require_any(shard: &Rc<Shard>, needs: &[Need<'_>]) -> Result<(), ConsoleError> {
    if shard.config.security.authorizer.is_none() {
        return Ok(());
    }
    let ctx = console_context(shard)?;
    if needs
        .iter()
        .any(|n| ctx.authorize(n.operation, n.resource_type, n.name))
    {
        return Ok(());
    }
    let Some(first) = needs.first() else {
        return Ok(());
    };
    let principal = ctx.connection.principal();
    tracing::info!(
        principal = principal.as_str(),
        operation = first.operation.name(),
        resource_type = first.resource_type.name(),
        resource = first.name,
        "console request denied by the ACL authorizer"
    );
    Err(ConsoleError::Denied {
        principal,
        operation: first.operation.name(),
        resource_type: first.resource_type.name(),
        resource: first.name.to_string(),
    })
}

/// [`require_any`] of one need.
pub(super) fn require(shard: &Rc<Shard>, need: Need<'_>) -> Result<(), ConsoleError> {
    require_any(shard, &[need])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_table_names_kafkas_operation_for_each_route() {
        let t = |op| Some(Need::topic(op, "a"));
        let g = |op| Some(Need::group(op, "g"));
        use Operation::*;
        let table = [
            ("GET", &["overview"][..], Some(Need::cluster(Describe))),
            ("GET", &["topics"][..], None),
            ("POST", &["topics"][..], None),
            ("GET", &["topics", "a"][..], t(Describe)),
            ("POST", &["topics", "a", "delete"][..], t(Delete)),
            ("POST", &["topics", "a", "partitions"][..], t(Alter)),
            ("GET", &["topics", "a", "configs"][..], t(DescribeConfigs)),
            ("POST", &["topics", "a", "configs"][..], t(AlterConfigs)),
            ("POST", &["topics", "a", "empty"][..], t(Delete)),
            ("GET", &["topics", "a", "messages"][..], t(Read)),
            ("POST", &["topics", "a", "messages"][..], t(Write)),
            ("GET", &["groups"][..], None),
            ("GET", &["groups", "g"][..], g(Describe)),
            ("POST", &["groups", "g", "delete"][..], g(Delete)),
            ("POST", &["groups", "g", "reset"][..], g(Read)),
        ];
        for (method, path, want) in table {
            assert_eq!(need(method, path), want, "{method} {path:?}");
        }
    }
}
