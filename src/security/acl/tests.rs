//! The matcher's rules, one test each.

use super::filter::AclFilter;
use super::model::*;
use super::{parse_super_users, AclAuthorizer, AclIndex};

const ALICE: &str = "User:alice";
const BOB: &str = "User:bob";
const HOST: &str = "10.0.0.1";

fn acl(
    resource_type: ResourceType,
    name: &str,
    pattern: PatternType,
    principal: &str,
    operation: Operation,
    permission: Permission,
) -> AclBinding {
    AclBinding {
        resource_type,
        name: name.into(),
        pattern,
        principal: principal.into(),
        host: WILDCARD.into(),
        operation,
        permission,
    }
}

fn allow_topic(name: &str, pattern: PatternType, principal: &str, op: Operation) -> AclBinding {
    acl(
        ResourceType::Topic,
        name,
        pattern,
        principal,
        op,
        Permission::Allow,
    )
}

fn can(index: &AclIndex, principal: &str, op: Operation, topic: &str) -> bool {
    index.authorize(principal, HOST, op, ResourceType::Topic, topic, false)
}

#[test]
fn acl_literal_allow_grants_only_that_name_principal_and_operation() {
    let index = AclIndex::new([allow_topic(
        "t",
        PatternType::Literal,
        ALICE,
        Operation::Write,
    )]);
    assert!(can(&index, ALICE, Operation::Write, "t"));
    assert!(!can(&index, ALICE, Operation::Read, "t"));
    assert!(!can(&index, BOB, Operation::Write, "t"));
    assert!(!can(&index, ALICE, Operation::Write, "t2"));
}

#[test]
fn acl_prefixed_grants_every_name_with_the_prefix() {
    let index = AclIndex::new([allow_topic(
        "orders-",
        PatternType::Prefixed,
        ALICE,
        Operation::Write,
    )]);
    assert!(can(&index, ALICE, Operation::Write, "orders-eu"));
    assert!(can(&index, ALICE, Operation::Write, "orders-"));
    assert!(!can(&index, ALICE, Operation::Write, "order"));
    assert!(!can(&index, ALICE, Operation::Write, "xorders-eu"));
}

#[test]
fn acl_wildcard_name_and_principal_match_everything() {
    let index = AclIndex::new([allow_topic(
        WILDCARD,
        PatternType::Literal,
        WILDCARD_PRINCIPAL,
        Operation::Read,
    )]);
    assert!(can(&index, ALICE, Operation::Read, "any"));
    assert!(can(&index, BOB, Operation::Read, "other"));
    assert!(!can(&index, BOB, Operation::Write, "other"));
    // A PREFIXED "*" is a prefix, not a wildcard.
    let index = AclIndex::new([allow_topic(
        WILDCARD,
        PatternType::Prefixed,
        ALICE,
        Operation::Read,
    )]);
    assert!(!can(&index, ALICE, Operation::Read, "any"));
    assert!(can(&index, ALICE, Operation::Read, "*any"));
}

#[test]
fn acl_implied_operations_are_kafkas() {
    for (granted, implied) in [
        (Operation::Read, Operation::Describe),
        (Operation::Write, Operation::Describe),
        (Operation::Delete, Operation::Describe),
        (Operation::Alter, Operation::Describe),
        (Operation::AlterConfigs, Operation::DescribeConfigs),
    ] {
        let index = AclIndex::new([allow_topic("t", PatternType::Literal, ALICE, granted)]);
        assert!(
            can(&index, ALICE, implied, "t"),
            "{granted:?} implies {implied:?}"
        );
    }
    // Not the other way, and not between unrelated operations.
    let index = AclIndex::new([allow_topic(
        "t",
        PatternType::Literal,
        ALICE,
        Operation::Describe,
    )]);
    assert!(!can(&index, ALICE, Operation::Read, "t"));
    let index = AclIndex::new([allow_topic(
        "t",
        PatternType::Literal,
        ALICE,
        Operation::Create,
    )]);
    assert!(!can(&index, ALICE, Operation::Describe, "t"));
    let index = AclIndex::new([allow_topic(
        "t",
        PatternType::Literal,
        ALICE,
        Operation::DescribeConfigs,
    )]);
    assert!(!can(&index, ALICE, Operation::AlterConfigs, "t"));
}

#[test]
fn acl_all_allows_every_operation() {
    let index = AclIndex::new([allow_topic(
        "t",
        PatternType::Literal,
        ALICE,
        Operation::All,
    )]);
    for op in Operation::ALL_OPERATIONS {
        assert!(can(&index, ALICE, op, "t"), "{op:?}");
    }
}

#[test]
fn acl_deny_beats_allow_from_any_pattern() {
    let index = AclIndex::new([
        allow_topic(
            WILDCARD,
            PatternType::Literal,
            WILDCARD_PRINCIPAL,
            Operation::All,
        ),
        acl(
            ResourceType::Topic,
            "secret-",
            PatternType::Prefixed,
            ALICE,
            Operation::Read,
            Permission::Deny,
        ),
    ]);
    assert!(!can(&index, ALICE, Operation::Read, "secret-x"));
    assert!(can(&index, ALICE, Operation::Write, "secret-x"));
    assert!(can(&index, BOB, Operation::Read, "secret-x"));
    assert!(can(&index, ALICE, Operation::Read, "public"));
    // A DENY READ does not deny DESCRIBE (implication is for ALLOW only) ...
    assert!(can(&index, ALICE, Operation::Describe, "secret-x"));
    // ... and a DENY ALL denies everything.
    let index = AclIndex::new([
        allow_topic("t", PatternType::Literal, ALICE, Operation::All),
        acl(
            ResourceType::Topic,
            "t",
            PatternType::Literal,
            WILDCARD_PRINCIPAL,
            Operation::All,
            Permission::Deny,
        ),
    ]);
    assert!(!can(&index, ALICE, Operation::Describe, "t"));
}

#[test]
fn acl_no_acl_for_the_resource_follows_allow_everyone_if_no_acl_found() {
    let index = AclIndex::new([allow_topic(
        "other",
        PatternType::Literal,
        BOB,
        Operation::Read,
    )]);
    let on = |name| {
        index.authorize(
            ALICE,
            HOST,
            Operation::Read,
            ResourceType::Topic,
            name,
            true,
        )
    };
    assert!(on("t"), "no ACL names t: allowed when the flag is on");
    assert!(
        !can(&index, ALICE, Operation::Read, "t"),
        "and refused when off"
    );
    assert!(
        !on("other"),
        "an ACL for another principal counts as an ACL"
    );
    assert!(!AclIndex::default().authorize(
        ALICE,
        HOST,
        Operation::Read,
        ResourceType::Group,
        "g",
        false
    ));
}

#[test]
fn acl_host_must_match_or_be_wildcard() {
    let mut b = allow_topic("t", PatternType::Literal, ALICE, Operation::Read);
    b.host = "10.0.0.2".into();
    let index = AclIndex::new([b]);
    assert!(!can(&index, ALICE, Operation::Read, "t"));
    assert!(index.authorize(
        ALICE,
        "10.0.0.2",
        Operation::Read,
        ResourceType::Topic,
        "t",
        false
    ));
}

#[test]
fn acl_resource_types_are_separate() {
    let index = AclIndex::new([acl(
        ResourceType::Group,
        "t",
        PatternType::Literal,
        ALICE,
        Operation::Read,
        Permission::Allow,
    )]);
    assert!(!can(&index, ALICE, Operation::Read, "t"));
    assert!(index.authorize(
        ALICE,
        HOST,
        Operation::Read,
        ResourceType::Group,
        "t",
        false
    ));
}

#[test]
fn acl_super_users_bypass_every_acl() {
    let authorizer = AclAuthorizer {
        super_users: parse_super_users("User:admin;User:broker").unwrap(),
        allow_everyone_if_no_acl_found: false,
    };
    let index = AclIndex::new([acl(
        ResourceType::Topic,
        WILDCARD,
        PatternType::Literal,
        WILDCARD_PRINCIPAL,
        Operation::All,
        Permission::Deny,
    )]);
    assert!(authorizer.authorize(
        &index,
        "User:admin",
        HOST,
        Operation::Write,
        ResourceType::Topic,
        "t"
    ));
    assert!(!authorizer.authorize(
        &index,
        ALICE,
        HOST,
        Operation::Write,
        ResourceType::Topic,
        "t"
    ));
    assert_eq!(parse_super_users("User:a, User:b").unwrap().len(), 2);
    assert!(parse_super_users("admin").is_err());
}

#[test]
fn acl_authorize_any_sees_any_allowed_topic_unless_denied_everywhere() {
    let write = |p| allow_topic("t", p, ALICE, Operation::Write);
    let any =
        |index: &AclIndex| index.authorize_any(ALICE, HOST, Operation::Write, ResourceType::Topic);
    assert!(!any(&AclIndex::default()));
    assert!(any(&AclIndex::new([write(PatternType::Literal)])));
    assert!(any(&AclIndex::new([write(PatternType::Prefixed)])));
    let deny_all = acl(
        ResourceType::Topic,
        WILDCARD,
        PatternType::Literal,
        ALICE,
        Operation::Write,
        Permission::Deny,
    );
    assert!(!any(&AclIndex::new([
        write(PatternType::Literal),
        deny_all
    ])));
    let deny_t = acl(
        ResourceType::Topic,
        "t",
        PatternType::Literal,
        ALICE,
        Operation::Write,
        Permission::Deny,
    );
    assert!(!any(&AclIndex::new([
        write(PatternType::Literal),
        deny_t.clone()
    ])));
    // A literal DENY of "t" leaves the rest of the prefix "t" allowed.
    assert!(any(&AclIndex::new([write(PatternType::Prefixed), deny_t])));
}

#[test]
fn acl_binding_from_wire_checks_like_kafka() {
    let ok = AclBinding::from_wire(2, "t", 3, ALICE, "*", 3, 3).unwrap();
    assert_eq!(
        (ok.resource_type, ok.pattern, ok.operation, ok.permission),
        (
            ResourceType::Topic,
            PatternType::Literal,
            Operation::Read,
            Permission::Allow
        )
    );
    for (rt, name, pattern, principal, op, perm) in [
        (1, "t", 3, ALICE, 3, 3),   // resource type ANY
        (2, "t", 2, ALICE, 3, 3),   // pattern MATCH
        (2, "t", 3, ALICE, 1, 3),   // operation ANY
        (2, "t", 3, ALICE, 3, 1),   // permission ANY
        (2, "", 3, ALICE, 3, 3),    // empty name
        (4, "c", 3, ALICE, 7, 3),   // cluster not named kafka-cluster
        (2, "t", 3, "alice", 3, 3), // principal without a type
    ] {
        assert!(
            AclBinding::from_wire(rt, name, pattern, principal, "*", op, perm).is_err(),
            "{rt} {name} {pattern} {principal} {op} {perm}"
        );
    }
    assert!(AclBinding::from_wire(4, CLUSTER_RESOURCE_NAME, 3, ALICE, "*", 9, 3).is_ok());
}

#[test]
fn acl_operation_names_parse_as_kafka_acls_sh_takes_them() {
    assert_eq!(Operation::from_name("Read"), Some(Operation::Read));
    assert_eq!(
        Operation::from_name("DescribeConfigs"),
        Some(Operation::DescribeConfigs)
    );
    assert_eq!(
        Operation::from_name("IDEMPOTENT_WRITE"),
        Some(Operation::IdempotentWrite)
    );
    assert_eq!(
        Operation::from_name("ClusterAction"),
        Some(Operation::ClusterAction)
    );
    assert_eq!(Operation::from_name("fly"), None);
}

#[test]
fn acl_filter_match_selects_what_applies_to_the_name() {
    let literal = allow_topic("orders-eu", PatternType::Literal, ALICE, Operation::Read);
    let wildcard = allow_topic(WILDCARD, PatternType::Literal, ALICE, Operation::Read);
    let prefix = allow_topic("orders-", PatternType::Prefixed, ALICE, Operation::Read);
    let other = allow_topic("orders-us", PatternType::Literal, ALICE, Operation::Read);
    let filter = |pattern: i8| {
        AclFilter::from_wire(2, Some("orders-eu"), pattern, None, None, 1, 1).unwrap()
    };
    let selected = |f: &AclFilter| [&literal, &wildcard, &prefix, &other].map(|a| f.matches(a));
    assert_eq!(
        selected(&filter(PATTERN_TYPE_MATCH)),
        [true, true, true, false]
    );
    assert_eq!(
        selected(&filter(PATTERN_TYPE_ANY)),
        [true, false, false, false]
    );
    assert_eq!(
        selected(&filter(PatternType::Literal.code())),
        [true, false, false, false]
    );
    assert_eq!(
        selected(&filter(PatternType::Prefixed.code())),
        [false, false, false, false]
    );
    let everything = AclFilter::from_wire(1, None, PATTERN_TYPE_ANY, None, None, 1, 1).unwrap();
    assert_eq!(selected(&everything), [true; 4]);
    let by_principal =
        AclFilter::from_wire(1, None, PATTERN_TYPE_ANY, Some(BOB), None, 1, 1).unwrap();
    assert_eq!(selected(&by_principal), [false; 4]);
    let by_op = AclFilter::from_wire(
        1,
        None,
        PATTERN_TYPE_ANY,
        None,
        None,
        Operation::Write.code(),
        1,
    )
    .unwrap();
    assert_eq!(selected(&by_op), [false; 4]);
    assert!(AclFilter::from_wire(0, None, 1, None, None, 1, 1).is_err());
    assert!(AclFilter::from_wire(1, None, 0, None, None, 1, 1).is_err());
}

#[test]
fn acl_authorize_any_follows_allow_everyone_if_no_acl_found() {
    let open = AclAuthorizer {
        super_users: Default::default(),
        allow_everyone_if_no_acl_found: true,
    };
    let any = |a: &AclAuthorizer, index: &AclIndex| {
        a.authorize_any(index, ALICE, HOST, Operation::Write, ResourceType::Topic)
    };
    assert!(
        any(&open, &AclIndex::default()),
        "no ACL at all: allowed when the flag is on"
    );
    let closed = AclAuthorizer::default();
    assert!(!any(&closed, &AclIndex::default()));
    let deny_all = AclIndex::new([acl(
        ResourceType::Topic,
        WILDCARD,
        PatternType::Literal,
        ALICE,
        Operation::Write,
        Permission::Deny,
    )]);
    assert!(!any(&open, &deny_all));
}

/// What the prefix index must answer: every PREFIXED ACL whose prefix
/// starts the name, found by scanning them all.
fn prefixed_by_scan(acls: &[AclBinding], principal: &str, op: Operation, name: &str) -> bool {
    let matching: Vec<&AclBinding> = acls
        .iter()
        .filter(|a| name.starts_with(a.name.as_str()))
        .collect();
    let applies = |a: &&&AclBinding| a.principal == principal || a.principal == WILDCARD_PRINCIPAL;
    if matching
        .iter()
        .filter(applies)
        .any(|a| a.permission == Permission::Deny && a.operation.denies(op))
    {
        return false;
    }
    matching
        .iter()
        .filter(applies)
        .any(|a| a.permission == Permission::Allow && a.operation.allows(op))
}

#[test]
fn acl_prefixed_index_answers_as_a_scan_of_every_prefix() {
    // Prefixes of many lengths, shared lengths, nested prefixes, DENYs, and
    // a multi-byte name the index must not cut inside a character.
    let mut acls = Vec::new();
    for (i, prefix) in [
        "o",
        "or",
        "ord",
        "orders-",
        "orders-eu-",
        "pay",
        "é",
        "éa",
        "x",
    ]
    .iter()
    .enumerate()
    {
        let (principal, permission) = match i % 3 {
            0 => (ALICE, Permission::Allow),
            1 => (WILDCARD_PRINCIPAL, Permission::Allow),
            _ => (BOB, Permission::Deny),
        };
        acls.push(acl(
            ResourceType::Topic,
            prefix,
            PatternType::Prefixed,
            principal,
            Operation::Read,
            permission,
        ));
    }
    for n in 0..200 {
        acls.push(allow_topic(
            &format!("p{n:03}-"),
            PatternType::Prefixed,
            BOB,
            Operation::Write,
        ));
    }
    let index = AclIndex::new(acls.clone());
    let names = [
        "orders-eu-1",
        "orders-us",
        "ord",
        "o",
        "other",
        "pay",
        "payments",
        "é",
        "éa",
        "éb",
        "ü",
        "",
        "x",
        "p007-a",
        "p007",
        "p19",
        "p199-z",
        "q",
    ];
    for name in names {
        for principal in [ALICE, BOB, "User:carol"] {
            for op in [Operation::Read, Operation::Write, Operation::Describe] {
                assert_eq!(
                    can(&index, principal, op, name),
                    prefixed_by_scan(&acls, principal, op, name),
                    "{principal} {op:?} on {name:?}"
                );
            }
        }
    }
}

#[test]
fn acl_create_over_acls_max_is_refused_with_policy_violation() {
    use crate::metadata::{LogDefaults, Snapshot};
    use crate::shard::{next_snapshot, MetaChange};
    let topic = |n: usize| {
        allow_topic(
            &format!("t{n}"),
            PatternType::Literal,
            ALICE,
            Operation::Read,
        )
    };
    let full = Snapshot::default().with_acls(AclIndex::new((0..super::ACLS_MAX).map(topic)));
    let create = |creations: Vec<AclBinding>| MetaChange::AlterAcls {
        creations,
        deletions: Vec::new(),
    };
    let defaults = LogDefaults::default();
    let refused = next_snapshot(&full, &create(vec![topic(super::ACLS_MAX)]), 1, &defaults);
    let Err((code, message)) = refused else {
        panic!("one over ACLS_MAX is refused");
    };
    assert_eq!(code, kafka_protocol::ResponseError::PolicyViolation.code());
    assert!(message.unwrap_or_default().contains("ACLS_MAX"));
    // Re-creating one that exists adds nothing: allowed at the cap.
    let same = next_snapshot(&full, &create(vec![topic(0)]), 1, &defaults);
    assert_eq!(same.expect("no growth").acls.len(), super::ACLS_MAX);
    // Replacing one (a deletion and a creation in one change) too.
    let replace = MetaChange::AlterAcls {
        creations: vec![topic(super::ACLS_MAX)],
        deletions: vec![topic(0)],
    };
    assert!(next_snapshot(&full, &replace, 1, &defaults).is_ok());
}
