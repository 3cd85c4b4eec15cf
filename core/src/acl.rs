//! Who may read what. Every chunk carries its document's [`Acl`]; every retrieval path is
//! scoped by the caller's [`Principal`] *before* ranking, so no result list is ever cut
//! after the fact.

use serde::{Deserialize, Serialize};

/// The access list stored with a document and each of its chunks.
///
/// A principal may read a chunk when it belongs to the same tenant and either the chunk's
/// `groups` is empty (readable by the whole tenant) or the two share a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    pub tenant: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The caller of a search or an ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub tenant: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The tenant used when none is configured.
pub const DEFAULT_TENANT: &str = "default";

/// The group token that derived indexes store for "readable by the whole tenant".
pub const PUBLIC_GROUP: &str = "*";

impl Acl {
    pub fn tenant_wide(tenant: impl Into<String>) -> Self {
        Acl {
            tenant: tenant.into(),
            groups: Vec::new(),
        }
    }

    /// Whether `p` may read what this ACL protects.
    pub fn allows(&self, p: &Principal) -> bool {
        self.tenant == p.tenant
            && (self.groups.is_empty() || self.groups.iter().any(|g| p.groups.contains(g)))
    }

    /// Group tokens as derived indexes store them: the groups, or [`PUBLIC_GROUP`].
    pub fn index_groups(&self) -> Vec<String> {
        if self.groups.is_empty() {
            vec![PUBLIC_GROUP.to_string()]
        } else {
            self.groups.clone()
        }
    }
}

impl Principal {
    pub fn new(tenant: impl Into<String>, groups: Vec<String>) -> Self {
        Principal {
            tenant: tenant.into(),
            groups,
        }
    }

    /// Group tokens to match in a derived index: the principal's groups plus [`PUBLIC_GROUP`].
    pub fn index_groups(&self) -> Vec<String> {
        let mut g = self.groups.clone();
        g.push(PUBLIC_GROUP.to_string());
        g
    }
}

impl Default for Principal {
    fn default() -> Self {
        Principal::new(DEFAULT_TENANT, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_wide_acl_is_readable_by_any_member_of_the_tenant() {
        let acl = Acl::tenant_wide("acme");
        assert!(acl.allows(&Principal::new("acme", vec![])));
        assert!(acl.allows(&Principal::new("acme", vec!["hr".into()])));
        assert!(!acl.allows(&Principal::new("other", vec![])));
    }

    #[test]
    fn group_acl_needs_a_shared_group() {
        let acl = Acl {
            tenant: "acme".into(),
            groups: vec!["hr".into(), "legal".into()],
        };
        assert!(acl.allows(&Principal::new("acme", vec!["legal".into()])));
        assert!(!acl.allows(&Principal::new("acme", vec!["eng".into()])));
        assert!(!acl.allows(&Principal::new("acme", vec![])));
        assert!(!acl.allows(&Principal::new("evil", vec!["hr".into()])));
    }
}
