//! DescribeAcls and DeleteAcls filters, with Kafka's matching
//! (`AclBindingFilter.matches`): ANY matches every value of a field, a
//! missing name, principal or host matches every one, and pattern type
//! MATCH selects every ACL that applies to the named resource (its
//! literal name, the wildcard, and prefixes of the name).

use super::model::{
    AclBinding, InvalidAcl, Operation, PatternType, Permission, ResourceType, OPERATION_ANY,
    PATTERN_TYPE_ANY, PATTERN_TYPE_MATCH, PERMISSION_ANY, RESOURCE_TYPE_ANY, WILDCARD,
};

/// Which pattern types a filter selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternFilter {
    /// Any pattern type, name compared exactly.
    Any,
    /// Every ACL that applies to the named resource.
    Match,
    /// This pattern type, name compared exactly.
    Exactly(PatternType),
}

/// One DescribeAcls or DeleteAcls filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclFilter {
    /// `None`: any type.
    pub resource_type: Option<ResourceType>,
    /// `None`: any name.
    pub name: Option<String>,
    /// The pattern types selected.
    pub pattern: PatternFilter,
    /// `None`: any principal.
    pub principal: Option<String>,
    /// `None`: any host.
    pub host: Option<String>,
    /// `None`: any operation.
    pub operation: Option<Operation>,
    /// `None`: any permission.
    pub permission: Option<Permission>,
}

impl AclFilter {
    /// A filter from the request's codes; UNKNOWN values (and types this
    /// broker does not serve) are Kafka's INVALID_REQUEST.
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        name: Option<&str>,
        pattern: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<AclFilter, InvalidAcl> {
        let bad = |m: String| Err(InvalidAcl(m));
        let resource_type = match resource_type {
            RESOURCE_TYPE_ANY => None,
            code => match ResourceType::from_code(code) {
                Some(t) => Some(t),
                None => return bad(format!("Invalid resource type filter {code}")),
            },
        };
        let pattern = match pattern {
            PATTERN_TYPE_ANY => PatternFilter::Any,
            PATTERN_TYPE_MATCH => PatternFilter::Match,
            code => match PatternType::from_code(code) {
                Some(p) => PatternFilter::Exactly(p),
                None => return bad(format!("Invalid pattern type filter {code}")),
            },
        };
        let operation = match operation {
            OPERATION_ANY => None,
            code => match Operation::from_code(code) {
                Some(o) => Some(o),
                None => return bad(format!("Invalid operation filter {code}")),
            },
        };
        let permission = match permission {
            PERMISSION_ANY => None,
            code => match Permission::from_code(code) {
                Some(p) => Some(p),
                None => return bad(format!("Invalid permission type filter {code}")),
            },
        };
        Ok(AclFilter {
            resource_type,
            name: name.map(str::to_string),
            pattern,
            principal: principal.map(str::to_string),
            host: host.map(str::to_string),
            operation,
            permission,
        })
    }

    /// Whether the filter selects `acl`.
    pub fn matches(&self, acl: &AclBinding) -> bool {
        self.resource_type.is_none_or(|t| t == acl.resource_type)
            && self.pattern_matches(acl)
            && self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && self.operation.is_none_or(|o| o == acl.operation)
            && self.permission.is_none_or(|p| p == acl.permission)
    }

    fn pattern_matches(&self, acl: &AclBinding) -> bool {
        if let PatternFilter::Exactly(p) = self.pattern {
            if p != acl.pattern {
                return false;
            }
        }
        let Some(name) = &self.name else {
            return true;
        };
        match (self.pattern, acl.pattern) {
            (PatternFilter::Match, PatternType::Literal) => {
                *name == acl.name || acl.name == WILDCARD
            }
            (PatternFilter::Match, PatternType::Prefixed) => name.starts_with(&acl.name),
            _ => *name == acl.name,
        }
    }
}
