//! The ACLs as a shard reads them: [`AclIndex`], and the decision
//! ([`AclIndex::authorize`]) with Kafka's rules.
//!
//! Per resource type, the ACLs are kept three ways: a hash map from
//! literal name to its entries, the wildcard (`*`) entries, and a hash map
//! from prefix to its entries with the distinct prefix lengths beside it.
//! A check is then one hash lookup for the literal name, the wildcard list,
//! and one hash lookup per distinct prefix length up to the name's length
//! (the name cut at that length): its cost follows how many prefix lengths
//! are in use, not how many prefixed ACLs there are, which a scan of every
//! prefix did. The index is built once per ACL change, by every shard's
//! snapshot, and is never mutated: readers need no lock. How many ACLs
//! there may be at all is capped ([`super::ACLS_MAX`]).
//!
//! The decision follows Kafka's `StandardAuthorizer`:
//! 1. a super user is allowed everything (the caller checks; see
//!    `security::acl::AclAuthorizer`);
//! 2. the ACLs that apply to the resource are the literal ones for its
//!    name, the wildcard ones and the prefixed ones whose prefix starts
//!    its name; if there are none at all (for any principal),
//!    `allow_everyone_if_no_acl_found` decides;
//! 3. of those, the ones for this principal (or `User:*`) and host (or
//!    `*`) count: a DENY for the operation (or ALL) refuses, whatever
//!    else matches;
//! 4. else an ALLOW for the operation, ALL, or an operation implying it
//!    ([`Operation::allows`]) grants; nothing else does.

use std::collections::{BTreeSet, HashMap};

use super::model::WILDCARD_PRINCIPAL;
use super::model::{AclBinding, Operation, PatternType, Permission, ResourceType, WILDCARD};

/// The access control entry of one ACL, as the index keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    principal: Box<str>,
    host: Box<str>,
    operation: Operation,
    permission: Permission,
}

impl Entry {
    fn applies_to(&self, principal: &str, host: &str) -> bool {
        (&*self.principal == principal || &*self.principal == WILDCARD_PRINCIPAL)
            && (&*self.host == host || &*self.host == WILDCARD)
    }
}

/// One resource type's ACLs.
#[derive(Clone, Debug, Default)]
struct TypeIndex {
    /// LITERAL ACLs by name (`*` excluded).
    literal: HashMap<Box<str>, Vec<Entry>>,
    /// LITERAL `*` ACLs.
    wildcard: Vec<Entry>,
    /// PREFIXED ACLs, by prefix.
    prefixed: HashMap<Box<str>, Vec<Entry>>,
    /// The distinct lengths of the prefixes in `prefixed`, in bytes,
    /// ascending.
    prefix_lens: Vec<usize>,
}

impl TypeIndex {
    /// The entries of the PREFIXED ACLs whose prefix starts `name`.
    fn prefixed_matching<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.prefix_lens
            .iter()
            .take_while(move |&&len| len <= name.len())
            .filter_map(move |&len| name.get(..len)) // None off a char boundary
            .filter_map(|prefix| self.prefixed.get(prefix))
            .flatten()
    }
}

/// Every ACL, in order (the stored set), and their lookup index.
#[derive(Clone, Debug, Default)]
pub struct AclIndex {
    bindings: BTreeSet<AclBinding>,
    by_type: [TypeIndex; 4],
}

impl PartialEq for AclIndex {
    fn eq(&self, other: &Self) -> bool {
        self.bindings == other.bindings // the index derives from them
    }
}
impl Eq for AclIndex {}

impl AclIndex {
    /// The index of these ACLs (duplicates are one).
    pub fn new(bindings: impl IntoIterator<Item = AclBinding>) -> AclIndex {
        let bindings: BTreeSet<AclBinding> = bindings.into_iter().collect();
        let mut by_type: [TypeIndex; 4] = Default::default();
        for b in &bindings {
            let entry = Entry {
                principal: b.principal.as_str().into(),
                host: b.host.as_str().into(),
                operation: b.operation,
                permission: b.permission,
            };
            let index = &mut by_type[b.resource_type.index()];
            match b.pattern {
                PatternType::Literal if b.name == WILDCARD => index.wildcard.push(entry),
                PatternType::Literal => index
                    .literal
                    .entry(b.name.as_str().into())
                    .or_default()
                    .push(entry),
                PatternType::Prefixed => index
                    .prefixed
                    .entry(b.name.as_str().into())
                    .or_default()
                    .push(entry),
            }
        }
        for index in &mut by_type {
            let lens: BTreeSet<usize> = index.prefixed.keys().map(|p| p.len()).collect();
            index.prefix_lens = lens.into_iter().collect();
        }
        AclIndex { bindings, by_type }
    }

    /// Every ACL, in a stable order.
    pub fn bindings(&self) -> impl Iterator<Item = &AclBinding> {
        self.bindings.iter()
    }

    /// Number of ACLs.
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// Whether `principal` from `host` may do `operation` on the resource
    /// (steps 2-4 of the module doc; super users are the caller's).
    pub fn authorize(
        &self,
        principal: &str,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
        allow_everyone_if_no_acl_found: bool,
    ) -> bool {
        let index = &self.by_type[resource_type.index()];
        let literal = index.literal.get(name).map(Vec::as_slice).unwrap_or(&[]);
        let prefixed = index.prefixed_matching(name);
        let mut any_acl = false;
        let mut allowed = false;
        for entry in literal.iter().chain(&index.wildcard).chain(prefixed) {
            any_acl = true;
            if !entry.applies_to(principal, host) {
                continue;
            }
            match entry.permission {
                Permission::Deny if entry.operation.denies(operation) => return false,
                Permission::Allow if entry.operation.allows(operation) => allowed = true,
                _ => {}
            }
        }
        if !any_acl {
            return allow_everyone_if_no_acl_found;
        }
        allowed
    }

    /// Whether `principal` from `host` may do `operation` on some resource
    /// of this type (Kafka's `authorizeByResourceType`, which
    /// InitProducerId uses for idempotent producers and
    /// `allow_everyone_if_no_acl_found` does not widen): an ALLOW on any
    /// pattern, unless a DENY of the same operation covers every name
    /// (a wildcard, or a literal or prefixed one that covers the allowed
    /// pattern).
    pub fn authorize_any(
        &self,
        principal: &str,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        let index = &self.by_type[resource_type.index()];
        let applies = |e: &&Entry| e.applies_to(principal, host);
        let denied_everywhere = index
            .wildcard
            .iter()
            .filter(applies)
            .any(|e| e.permission == Permission::Deny && e.operation.denies(operation));
        if denied_everywhere {
            return false;
        }
        let denied = |name: &str, prefix: bool| {
            let literal = index.literal.get(name).into_iter().flatten();
            let prefixed = index.prefixed_matching(name);
            // A DENY literal of the same name does not cover a prefix.
            let literal = literal.filter(|_| !prefix);
            let mut covering = prefixed.chain(literal);
            covering.any(|e| {
                e.applies_to(principal, host)
                    && e.permission == Permission::Deny
                    && e.operation.denies(operation)
            })
        };
        let allow = |e: &Entry| {
            e.applies_to(principal, host)
                && e.permission == Permission::Allow
                && e.operation.allows(operation)
        };
        index.wildcard.iter().any(allow)
            || index
                .literal
                .iter()
                .any(|(name, es)| es.iter().any(allow) && !denied(name, false))
            || index
                .prefixed
                .iter()
                .any(|(p, es)| es.iter().any(allow) && !denied(p, true))
    }
}
