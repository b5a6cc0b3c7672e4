//! `corestream acls list | add | remove`: Kafka ACLs through DescribeAcls,
//! CreateAcls and DeleteAcls, with kafka-acls.sh's options
//! (`--allow-principal`, `--deny-principal`, `--allow-host`,
//! `--deny-host`, `--operation`, `--resource-pattern-type`, `--topic`,
//! `--group`, `--cluster`, `--transactional-id`), so it works against
//! Kafka too.
//!
//! As in kafka-acls.sh: hosts default to `*`, operations to ALL, the
//! pattern type to LITERAL (list and remove also take `any` and
//! `match`); `list` without a resource lists every ACL, and `remove`
//! without a principal removes every ACL of the named resources.

use clap::{Args, Subcommand};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::client::{check, ClientError, Cluster};
use super::output::{render_table, Output};
use crate::security::acl::model::{
    OPERATION_ANY, PATTERN_TYPE_ANY, PATTERN_TYPE_MATCH, PERMISSION_ANY, RESOURCE_TYPE_ANY,
};
use crate::security::acl::{
    Operation, PatternType, Permission, ResourceType, CLUSTER_RESOURCE_NAME, WILDCARD,
};

/// Highest DescribeAcls / CreateAcls / DeleteAcls version spoken.
const ACL_VERSION_MAX: i16 = 3;

/// ACL commands.
#[derive(Subcommand, Debug)]
pub enum AclsCommand {
    /// ACLs, of every resource or of the named ones.
    List(AclArgs),
    /// Add ACLs: each principal × host × operation on each resource.
    Add(AclArgs),
    /// Remove ACLs (every ACL of the resources when no principal is given).
    Remove(AclArgs),
}

/// kafka-acls.sh's options.
#[derive(Args, Debug, Default)]
pub struct AclArgs {
    /// Principal to allow, e.g. User:alice (repeatable).
    #[arg(long)]
    allow_principal: Vec<String>,
    /// Principal to deny (repeatable).
    #[arg(long)]
    deny_principal: Vec<String>,
    /// Host the allow principals may come from (repeatable; default *).
    #[arg(long)]
    allow_host: Vec<String>,
    /// Host the deny principals are denied from (repeatable; default *).
    #[arg(long)]
    deny_host: Vec<String>,
    /// Operation, e.g. Read, Write, Describe, All (repeatable; default All).
    #[arg(long)]
    operation: Vec<String>,
    /// literal or prefixed (list and remove also take any and match).
    #[arg(long, default_value = "literal")]
    resource_pattern_type: String,
    /// Topic (repeatable; `*` for every topic).
    #[arg(long)]
    topic: Vec<String>,
    /// Consumer group (repeatable).
    #[arg(long)]
    group: Vec<String>,
    /// The cluster resource.
    #[arg(long)]
    cluster: bool,
    /// Transactional id (repeatable).
    #[arg(long)]
    transactional_id: Vec<String>,
    /// list: only this principal's ACLs.
    #[arg(long)]
    principal: Option<String>,
}

/// Runs an ACL command.
pub fn run(cluster: &mut Cluster, out: &Output, cmd: AclsCommand) -> Result<(), ClientError> {
    match cmd {
        AclsCommand::List(args) => list(cluster, out, &args),
        AclsCommand::Add(args) => add(cluster, &args),
        AclsCommand::Remove(args) => remove(cluster, &args),
    }
}

/// One ACL as the CLI prints it.
struct Row {
    resource_type: i8,
    name: String,
    pattern: i8,
    principal: String,
    host: String,
    operation: i8,
    permission: i8,
}

fn usage(message: impl Into<String>) -> ClientError {
    ClientError::Usage(message.into())
}

impl AclArgs {
    /// The named resources, as (type, name).
    fn resources(&self) -> Vec<(ResourceType, String)> {
        let mut out: Vec<(ResourceType, String)> = Vec::new();
        out.extend(self.topic.iter().map(|t| (ResourceType::Topic, t.clone())));
        out.extend(self.group.iter().map(|g| (ResourceType::Group, g.clone())));
        if self.cluster {
            out.push((ResourceType::Cluster, CLUSTER_RESOURCE_NAME.to_string()));
        }
        out.extend(
            self.transactional_id
                .iter()
                .map(|t| (ResourceType::TransactionalId, t.clone())),
        );
        out
    }

    /// The pattern type code; `any`/`match` only when `filter`.
    fn pattern(&self, filter: bool) -> Result<i8, ClientError> {
        match self.resource_pattern_type.to_ascii_lowercase().as_str() {
            "literal" => Ok(PatternType::Literal.code()),
            "prefixed" => Ok(PatternType::Prefixed.code()),
            "any" if filter => Ok(PATTERN_TYPE_ANY),
            "match" if filter => Ok(PATTERN_TYPE_MATCH),
            other => Err(usage(format!(
                "--resource-pattern-type {other}: literal or prefixed{}",
                if filter { ", any or match" } else { "" }
            ))),
        }
    }

    fn operations(&self) -> Result<Vec<Operation>, ClientError> {
        if self.operation.is_empty() {
            return Ok(vec![Operation::All]);
        }
        self.operation
            .iter()
            .map(|o| Operation::from_name(o).ok_or_else(|| usage(format!("unknown operation {o}"))))
            .collect()
    }

    /// (principal, host, permission) of every entry the options name.
    fn entries(&self) -> Vec<(String, String, Permission)> {
        let hosts = |h: &[String]| match h.is_empty() {
            true => vec![WILDCARD.to_string()],
            false => h.to_vec(),
        };
        let mut out = Vec::new();
        for (principals, hs, permission) in [
            (&self.allow_principal, &self.allow_host, Permission::Allow),
            (&self.deny_principal, &self.deny_host, Permission::Deny),
        ] {
            for p in principals {
                for h in hosts(hs) {
                    out.push((p.clone(), h, permission));
                }
            }
        }
        out
    }
}

fn list(cluster: &mut Cluster, out: &Output, args: &AclArgs) -> Result<(), ClientError> {
    let resources = args.resources();
    let pattern = args.pattern(true)?;
    let filters: Vec<(i8, Option<String>, i8)> = match resources.is_empty() {
        true => vec![(RESOURCE_TYPE_ANY, None, PATTERN_TYPE_ANY)],
        false => resources
            .into_iter()
            .map(|(t, n)| (t.code(), Some(n), pattern))
            .collect(),
    };
    let mut rows = Vec::new();
    for (resource_type, name, pattern) in filters {
        let request = DescribeAclsRequest::default()
            .with_resource_type_filter(resource_type)
            .with_resource_name_filter(name.map(StrBytes::from_string))
            .with_pattern_type_filter(pattern)
            .with_principal_filter(args.principal.clone().map(StrBytes::from_string))
            .with_host_filter(None)
            .with_operation(OPERATION_ANY)
            .with_permission_type(PERMISSION_ANY);
        let answer = cluster.bootstrap.send(&request, ACL_VERSION_MAX)?;
        let message = answer.error_message.as_ref().map(|m| m.to_string());
        check(answer.error_code, || {
            format!("describing ACLs: {}", message.unwrap_or_default())
        })?;
        for r in answer.resources {
            for a in r.acls {
                rows.push(Row {
                    resource_type: r.resource_type,
                    name: r.resource_name.to_string(),
                    pattern: r.pattern_type,
                    principal: a.principal.to_string(),
                    host: a.host.to_string(),
                    operation: a.operation,
                    permission: a.permission_type,
                });
            }
        }
    }
    print_rows(out, &rows);
    Ok(())
}

fn name_of<T>(
    code: i8,
    from: impl Fn(i8) -> Option<T>,
    name: impl Fn(T) -> &'static str,
) -> String {
    from(code).map_or_else(|| code.to_string(), |v| name(v).to_string())
}

fn print_rows(out: &Output, rows: &[Row]) {
    let text = |r: &Row| {
        [
            name_of(r.resource_type, ResourceType::from_code, ResourceType::name),
            r.name.clone(),
            name_of(r.pattern, PatternType::from_code, PatternType::name),
            r.principal.clone(),
            r.host.clone(),
            name_of(r.operation, Operation::from_code, Operation::name),
            name_of(r.permission, Permission::from_code, Permission::name),
        ]
    };
    if out.json {
        let acls: Vec<_> = rows
            .iter()
            .map(|r| {
                let [t, n, p, pr, h, o, pe] = text(r);
                json!({"resource_type": t, "name": n, "pattern_type": p, "principal": pr,
                       "host": h, "operation": o, "permission": pe})
            })
            .collect();
        println!("{}", json!({ "acls": acls }));
        return;
    }
    let table: Vec<Vec<String>> = rows.iter().map(|r| text(r).to_vec()).collect();
    print!(
        "{}",
        render_table(
            &[
                "RESOURCE_TYPE",
                "NAME",
                "PATTERN",
                "PRINCIPAL",
                "HOST",
                "OPERATION",
                "PERMISSION"
            ],
            &table
        )
    );
}

fn add(cluster: &mut Cluster, args: &AclArgs) -> Result<(), ClientError> {
    let resources = args.resources();
    let entries = args.entries();
    if resources.is_empty() || entries.is_empty() {
        return Err(usage(
            "add needs a resource (--topic, --group, --cluster, --transactional-id) and \
             --allow-principal or --deny-principal",
        ));
    }
    let pattern = args.pattern(false)?;
    let operations = args.operations()?;
    let mut creations = Vec::new();
    for (resource_type, name) in &resources {
        for (principal, host, permission) in &entries {
            for operation in &operations {
                creations.push(
                    AclCreation::default()
                        .with_resource_type(resource_type.code())
                        .with_resource_name(StrBytes::from_string(name.clone()))
                        .with_resource_pattern_type(pattern)
                        .with_principal(StrBytes::from_string(principal.clone()))
                        .with_host(StrBytes::from_string(host.clone()))
                        .with_operation(operation.code())
                        .with_permission_type(permission.code()),
                );
            }
        }
    }
    let count = creations.len();
    let request = CreateAclsRequest::default().with_creations(creations);
    let answer = cluster.bootstrap.send(&request, ACL_VERSION_MAX)?;
    for result in answer.results {
        let message = result.error_message.as_ref().map(|m| m.to_string());
        check(result.error_code, || {
            format!("creating ACLs: {}", message.unwrap_or_default())
        })?;
    }
    println!("{count} ACLs added");
    Ok(())
}

fn remove(cluster: &mut Cluster, args: &AclArgs) -> Result<(), ClientError> {
    let resources = args.resources();
    if resources.is_empty() {
        return Err(usage(
            "remove needs a resource (--topic, --group, --cluster, --transactional-id)",
        ));
    }
    let pattern = args.pattern(true)?;
    let filter = |t: ResourceType, n: &str| {
        DeleteAclsFilter::default()
            .with_resource_type_filter(t.code())
            .with_resource_name_filter(Some(StrBytes::from_string(n.to_string())))
            .with_pattern_type_filter(pattern)
            .with_host_filter(None)
            .with_principal_filter(None)
            .with_operation(OPERATION_ANY)
            .with_permission_type(PERMISSION_ANY)
    };
    let entries = args.entries();
    let operations = match args.operation.is_empty() {
        true => None,
        false => Some(args.operations()?),
    };
    let mut filters = Vec::new();
    for (t, n) in &resources {
        if entries.is_empty() {
            filters.push(filter(*t, n));
            continue;
        }
        for (principal, host, permission) in &entries {
            let base = filter(*t, n)
                .with_principal_filter(Some(StrBytes::from_string(principal.clone())))
                .with_host_filter(Some(StrBytes::from_string(host.clone())))
                .with_permission_type(permission.code());
            match &operations {
                None => filters.push(base),
                Some(ops) => {
                    filters.extend(ops.iter().map(|o| base.clone().with_operation(o.code())))
                }
            }
        }
    }
    let request = DeleteAclsRequest::default().with_filters(filters);
    let answer = cluster.bootstrap.send(&request, ACL_VERSION_MAX)?;
    let mut removed = 0;
    for result in answer.filter_results {
        let message = result.error_message.as_ref().map(|m| m.to_string());
        check(result.error_code, || {
            format!("removing ACLs: {}", message.unwrap_or_default())
        })?;
        removed += result.matching_acls.len();
    }
    println!("{removed} ACLs removed");
    Ok(())
}
