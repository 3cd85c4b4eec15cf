//! Who may read what. Every chunk carries its document's [`Acl`]; every retrieval path is
//! scoped by the caller's [`Principal`] *before* ranking, so no result list is ever cut
//! after the fact.

use serde::{Deserialize, Serialize};

/// The access list stored with a document and each of its chunks.
///
/// A principal may read a chunk when it belongs to the same tenant and either the chunk's
/// `groups` is empty (readable by the whole tenant) or the two share a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Acl {
    pub tenant: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The caller of an operation: who they act for (tenant and groups, which decide what
/// they may read), what they may do ([`Role`]) and how they came ([`Actor`], which decides
/// whether they may make the server read its own disk).
///
/// A principal is made by the one who authenticated the caller (the CLI, the server's key
/// check); it is never read from a request body, so it has no `Deserialize`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub tenant: String,
    pub groups: Vec<String>,
    pub role: Role,
    pub actor: Actor,
}

/// What a principal may do. Each role may do what the ones before it may.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Search, ask, list, show and download what its groups may read.
    Reader,
    /// Also upload, re-index and delete documents it may read.
    Writer,
    /// Also manage its tenant's keys, read the audit log, and re-index files on the
    /// server's disk under a configured source root.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "reader" => Some(Role::Reader),
            "writer" => Some(Role::Writer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a principal reached cairn.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// Someone on the server's machine with access to its data dir: the CLI, or a command
    /// handing its work to `cairn serve` with the data dir's token. Already able to read
    /// the disk, it may name any path there.
    Local,
    /// A caller with an API key (its public id).
    Key(String),
    /// A caller a trusted proxy vouched for (the user it named).
    Proxy(String),
    /// A request to a server started with `--no-auth` (loopback only). It may be a web
    /// page the user visits, so it gets no more of the disk than a key would.
    Open,
}

impl Actor {
    /// The id shown in the audit log.
    pub fn label(&self) -> String {
        match self {
            Actor::Local => "local".to_string(),
            Actor::Key(id) => format!("key:{id}"),
            Actor::Proxy(user) => format!("proxy:{user}"),
            Actor::Open => "open".to_string(),
        }
    }
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
    /// A reader of `tenant` in `groups` (what a search's scope needs).
    pub fn new(tenant: impl Into<String>, groups: Vec<String>) -> Self {
        Principal {
            tenant: tenant.into(),
            groups,
            role: Role::Reader,
            actor: Actor::Open,
        }
    }

    /// The CLI on the server's machine: an admin of `tenant` who may name any path.
    pub fn local(tenant: impl Into<String>, groups: Vec<String>) -> Self {
        Principal {
            role: Role::Admin,
            actor: Actor::Local,
            ..Principal::new(tenant, groups)
        }
    }

    pub fn with_role(self, role: Role) -> Self {
        Principal { role, ..self }
    }

    pub fn with_actor(self, actor: Actor) -> Self {
        Principal { actor, ..self }
    }

    /// Whether the principal may do what `role` may.
    pub fn can(&self, role: Role) -> bool {
        self.role >= role
    }

    /// Group tokens to match in a derived index: the principal's groups plus [`PUBLIC_GROUP`].
    pub fn index_groups(&self) -> Vec<String> {
        let mut g = self.groups.clone();
        g.push(PUBLIC_GROUP.to_string());
        g
    }
}

impl Default for Principal {
    /// A reader of the default tenant without groups.
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

    #[test]
    fn roles_include_the_ones_below() {
        let w = Principal::new("acme", vec![]).with_role(Role::Writer);
        assert!(w.can(Role::Reader) && w.can(Role::Writer) && !w.can(Role::Admin));
        let local = Principal::local("acme", vec![]);
        assert!(local.can(Role::Admin));
        assert_eq!(local.actor, Actor::Local);
        assert_eq!(Principal::default().actor, Actor::Open);
        for r in [Role::Reader, Role::Writer, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
