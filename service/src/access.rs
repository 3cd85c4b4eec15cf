//! Who may do what: each operation of the [`crate::Service`] asks here once, before it
//! does anything. Reading is decided by the ACL inside every index (the principal's
//! tenant and groups); this module decides the rest:
//!
//! - the role an operation needs ([`require`]);
//! - which groups a writer may give a document ([`check_groups`]): only its own, unless
//!   it is an admin, so a writer cannot plant text in another group's view;
//! - which files on the server's disk a principal may have the server read
//!   ([`ServerPaths::check`]): the CLI on the machine any it can read; an admin key only
//!   those under a configured source root (`[ingest] roots`); nobody else any.

use cairn_core::{Actor, Error, Principal, Result, Role};
use std::path::{Path, PathBuf};

/// `Forbidden` unless `p` has at least `role`; `what` names the operation.
pub fn require(p: &Principal, role: Role, what: &str) -> Result<()> {
    if p.can(role) {
        Ok(())
    } else {
        Err(Error::forbidden(format!(
            "{what} needs the {role} role; this key is a {}",
            p.role
        )))
    }
}

/// `Forbidden` when a non-admin gives a document a group it is not in.
pub fn check_groups(p: &Principal, groups: &[String]) -> Result<()> {
    if p.can(Role::Admin) {
        return Ok(());
    }
    match groups.iter().find(|g| !p.groups.contains(g)) {
        None => Ok(()),
        Some(g) => Err(Error::forbidden(format!(
            "this key may only give documents its own groups ({}); {g:?} is not one of them",
            if p.groups.is_empty() {
                "none".to_string()
            } else {
                p.groups.join(", ")
            }
        ))),
    }
}

/// The folders under which admin keys may have the server read files.
#[derive(Debug, Clone, Default)]
pub struct ServerPaths {
    /// Canonical folders.
    roots: Vec<PathBuf>,
}

impl ServerPaths {
    /// Canonicalises each configured root; one that does not exist is left out (with a
    /// warning), so it grants nothing.
    pub fn new(roots: &[PathBuf]) -> ServerPaths {
        let roots = roots
            .iter()
            .filter_map(|r| match std::fs::canonicalize(r) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(root = %r.display(), error = %e, "[ingest] roots: folder left out");
                    None
                }
            })
            .collect();
        ServerPaths { roots }
    }

    /// The canonical form of `path` if `p` may have the server read it. `NotFound` when
    /// it does not exist (for those who may read it); `Forbidden` otherwise.
    pub fn check(&self, p: &Principal, path: &Path) -> Result<PathBuf> {
        require(p, Role::Admin, "reading files on the server's disk")?;
        if !path.is_absolute() {
            return Err(Error::user(format!(
                "{} is not an absolute path (paths are read on the server's machine)",
                path.display()
            )));
        }
        let refused = || {
            Error::forbidden(format!(
                "{} is not under a folder this server reads for API callers ([ingest] roots{})",
                path.display(),
                if self.roots.is_empty() {
                    " is empty"
                } else {
                    ""
                }
            ))
        };
        if p.actor != Actor::Local && self.roots.is_empty() {
            return Err(refused());
        }
        let canonical = std::fs::canonicalize(path).map_err(|e| {
            // Those without a root for it learn nothing of the disk.
            if p.actor != Actor::Local && !self.lexically_under_root(path) {
                refused()
            } else if e.kind() == std::io::ErrorKind::NotFound {
                Error::not_found(format!("{}: no such file or folder", path.display()))
            } else {
                Error::user(format!("{}: {e}", path.display()))
            }
        })?;
        if p.actor == Actor::Local || self.roots.iter().any(|r| canonical.starts_with(r)) {
            Ok(canonical)
        } else {
            Err(refused())
        }
    }

    fn lexically_under_root(&self, path: &Path) -> bool {
        self.roots.iter().any(|r| path.starts_with(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(role: Role, groups: &[&str]) -> Principal {
        Principal::new("acme", groups.iter().map(|g| g.to_string()).collect())
            .with_role(role)
            .with_actor(Actor::Key("k".into()))
    }

    #[test]
    fn roles_gate_operations_with_a_message_naming_both() {
        assert!(require(&key(Role::Writer, &[]), Role::Writer, "uploading").is_ok());
        let e = require(&key(Role::Reader, &[]), Role::Writer, "uploading").unwrap_err();
        assert_eq!(e.kind, cairn_core::ErrorKind::Forbidden);
        assert_eq!(
            e.message,
            "uploading needs the writer role; this key is a reader"
        );
    }

    #[test]
    fn writers_give_only_their_own_groups() {
        let w = key(Role::Writer, &["eng"]);
        assert!(check_groups(&w, &[]).is_ok());
        assert!(check_groups(&w, &["eng".into()]).is_ok());
        let e = check_groups(&w, &["hr".into()]).unwrap_err();
        assert_eq!(e.kind, cairn_core::ErrorKind::Forbidden);
        assert!(check_groups(&key(Role::Admin, &[]), &["hr".into()]).is_ok());
    }

    #[test]
    fn server_paths_need_admin_and_a_root_unless_local() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("docs");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("a.md"), "a").unwrap();
        std::fs::write(tmp.path().join("secret.txt"), "s").unwrap();
        let paths = ServerPaths::new(std::slice::from_ref(&root));
        let admin = key(Role::Admin, &[]);
        let inside = root.join("a.md");
        let outside = tmp.path().join("secret.txt");
        let sneaky = root.join("../secret.txt");

        assert!(paths.check(&admin, &inside).is_ok());
        for p in [&outside, &sneaky] {
            let e = paths.check(&admin, p).unwrap_err();
            assert_eq!(e.kind, cairn_core::ErrorKind::Forbidden, "{}", p.display());
        }
        // A missing file outside every root is refused the same way: the disk is not probed.
        let e = paths
            .check(&admin, &tmp.path().join("nope.txt"))
            .unwrap_err();
        assert_eq!(e.kind, cairn_core::ErrorKind::Forbidden);
        let e = paths.check(&admin, &root.join("nope.txt")).unwrap_err();
        assert_eq!(e.kind, cairn_core::ErrorKind::NotFound);
        let e = paths.check(&key(Role::Writer, &[]), &inside).unwrap_err();
        assert_eq!(e.kind, cairn_core::ErrorKind::Forbidden);
        // --no-auth requests are no more trusted than a key.
        let open = Principal::new("acme", vec![]).with_role(Role::Admin);
        assert!(ServerPaths::default().check(&open, &inside).is_err());
        // The CLI on the machine reads what its user can.
        let local = Principal::local("acme", vec![]);
        assert!(ServerPaths::default().check(&local, &outside).is_ok());
        let e = paths.check(&admin, Path::new("relative/a.md")).unwrap_err();
        assert_eq!(e.kind, cairn_core::ErrorKind::User);
    }
}
