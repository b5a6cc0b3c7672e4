//! Cost of one ACL check (`AclIndex::authorize`) as the number of PREFIXED
//! ACLs grows: the figure behind indexing prefixes by length instead of
//! scanning them (`security::acl::index`). Each index holds N prefixed
//! topic ACLs ("team-0001-", ...: one prefix length) plus 16 of other
//! lengths, and one literal ACL; the check is a READ by a principal on a
//! topic name that one prefix matches.

use criterion::{black_box, criterion_group, criterion_main, Criterion};

use corestream::security::acl::{
    AclBinding, AclIndex, Operation, PatternType, Permission, ResourceType, WILDCARD,
};

fn topic_acl(name: &str, pattern: PatternType) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::Topic,
        name: name.into(),
        pattern,
        principal: "User:alice".into(),
        host: WILDCARD.into(),
        operation: Operation::Read,
        permission: Permission::Allow,
    }
}

fn index_of(prefixed: usize) -> AclIndex {
    let mut acls: Vec<AclBinding> = (0..prefixed)
        .map(|i| topic_acl(&format!("team-{i:04}-"), PatternType::Prefixed))
        .collect();
    acls.extend((1..=16).map(|len| topic_acl(&"z".repeat(len), PatternType::Prefixed)));
    acls.push(topic_acl("orders", PatternType::Literal));
    AclIndex::new(acls)
}

fn authorize(c: &mut Criterion) {
    for prefixed in [10, 1_000, 10_000] {
        let index = index_of(prefixed);
        let name = format!("team-{:04}-events", prefixed / 2);
        c.bench_function(&format!("acl_authorize_prefixed_{prefixed}"), |b| {
            b.iter(|| {
                black_box(index.authorize(
                    black_box("User:alice"),
                    "10.0.0.1",
                    Operation::Read,
                    ResourceType::Topic,
                    black_box(&name),
                    false,
                ))
            })
        });
    }
}

criterion_group!(benches, authorize);
criterion_main!(benches);
