//! Where a document came from, decided once at ingest and stored with it: a file on the
//! server's disk ([`Origin::Path`], always absolute) or a file a client sent
//! ([`Origin::Upload`], only its base name). The two never share a string: an upload's
//! name has no `/`, a path always starts with one. So an upload can never name, replace or
//! make the server read a file on its disk: re-indexing an upload reads its kept original,
//! never a path.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The longest upload name kept, in bytes (the common file-system limit).
pub const MAX_UPLOAD_NAME_BYTES: usize = 255;

/// Where a document came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "origin", content = "source", rename_all = "snake_case")]
pub enum Origin {
    /// A file on the server's machine: its canonical absolute path.
    Path(String),
    /// A file a client uploaded: its base name, as reduced by [`Origin::upload`].
    Upload(String),
}

/// [`Origin`] without its string, as the catalog stores it in its own column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OriginKind {
    Path,
    Upload,
}

impl OriginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OriginKind::Path => "path",
            OriginKind::Upload => "upload",
        }
    }
    pub fn parse(s: &str) -> Option<OriginKind> {
        match s {
            "path" => Some(OriginKind::Path),
            "upload" => Some(OriginKind::Upload),
            _ => None,
        }
    }
}

impl Origin {
    /// A file on the server: `path` must be absolute and valid UTF-8 (the caller has
    /// already made it canonical).
    pub fn path(path: &Path) -> Result<Origin> {
        let s = path.to_str().ok_or_else(|| {
            Error::user(format!("{}: the path is not valid UTF-8", path.display()))
        })?;
        if !path.is_absolute() {
            return Err(Error::user(format!("{s}: not an absolute path")));
        }
        Ok(Origin::Path(s.to_string()))
    }

    /// An upload's name as a client sent it, reduced to its base name: whatever comes
    /// before the last `/` or `\` is dropped (`../../etc/passwd` is `passwd`,
    /// `C:\Users\a\b.md` is `b.md`). Refused with a clear error: a name with a NUL or
    /// another control character, a name longer than [`MAX_UPLOAD_NAME_BYTES`], and one
    /// with nothing left (`""`, `.`, `..`, `dir/`). Names in any script are kept as sent.
    pub fn upload(name: &str) -> Result<Origin> {
        if name.chars().any(char::is_control) {
            return Err(Error::user(format!(
                "the file name {name:?} contains a control character (NUL, newline, ...)"
            )));
        }
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name).trim();
        if base.is_empty() || base == "." || base == ".." {
            return Err(Error::user(format!(
                "the file name {name:?} has no base name; send a name such as report.pdf"
            )));
        }
        if base.len() > MAX_UPLOAD_NAME_BYTES {
            return Err(Error::user(format!(
                "the file name is {} bytes long; the limit is {MAX_UPLOAD_NAME_BYTES}",
                base.len()
            )));
        }
        Ok(Origin::Upload(base.to_string()))
    }

    /// Rebuilds an origin from the catalog's two columns.
    pub fn from_parts(kind: OriginKind, source: String) -> Origin {
        match kind {
            OriginKind::Path => Origin::Path(source),
            OriginKind::Upload => Origin::Upload(source),
        }
    }

    pub fn kind(&self) -> OriginKind {
        match self {
            Origin::Path(_) => OriginKind::Path,
            Origin::Upload(_) => OriginKind::Upload,
        }
    }

    /// The path or the upload name.
    pub fn as_str(&self) -> &str {
        match self {
            Origin::Path(s) | Origin::Upload(s) => s,
        }
    }

    /// The file name (the last part of a path; an upload's name is one already). The
    /// parser is chosen by its extension, and it is what a reader is shown.
    pub fn file_name(&self) -> &str {
        match self {
            Origin::Path(s) => Path::new(s)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or(s),
            Origin::Upload(s) => s,
        }
    }

    /// The path on the server, for a document that has one.
    pub fn server_path(&self) -> Option<&Path> {
        match self {
            Origin::Path(s) => Some(Path::new(s)),
            Origin::Upload(_) => None,
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> String {
        match Origin::upload(s).unwrap() {
            Origin::Upload(n) => n,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn upload_names_are_reduced_to_their_base_name() {
        assert_eq!(name("/etc/passwd"), "passwd");
        assert_eq!(name("../../etc/shadow"), "shadow");
        assert_eq!(name("C:\\Users\\ann\\notes.md"), "notes.md");
        assert_eq!(name("a/b/../c.txt"), "c.txt");
        assert_eq!(name("报告 2026.md"), "报告 2026.md");
        assert_eq!(name("résumé.txt"), "résumé.txt");
        assert_eq!(name("..hidden.md"), "..hidden.md");
        // No upload name can ever be taken for a server path.
        for n in ["/x", "//x", "\\\\server\\share\\x.md", "/a/b/"] {
            if let Ok(o) = Origin::upload(n) {
                assert!(
                    !o.as_str().contains('/') && !o.as_str().contains('\\'),
                    "{n}"
                );
            }
        }
    }

    #[test]
    fn hostile_upload_names_are_refused_with_a_reason() {
        for bad in [
            "", ".", "..", "../", "a/..", "dir/", "   ", "x\0.md", "a\nb.md",
        ] {
            let e = Origin::upload(bad).unwrap_err();
            assert_eq!(e.kind, crate::ErrorKind::User, "{bad:?}");
        }
        let long = format!("{}.md", "é".repeat(200));
        let e = Origin::upload(&long).unwrap_err();
        assert!(e.message.contains("limit is 255"), "{}", e.message);
        assert!(Origin::upload(&format!("{}.md", "a".repeat(252))).is_ok());
    }

    #[test]
    fn paths_must_be_absolute() {
        assert!(Origin::path(Path::new("docs/a.md")).is_err());
        let o = Origin::path(Path::new("/srv/docs/a.md")).unwrap();
        assert_eq!(o.file_name(), "a.md");
        assert_eq!(o.server_path(), Some(Path::new("/srv/docs/a.md")));
        assert_eq!(Origin::upload("a.md").unwrap().server_path(), None);
    }

    #[test]
    fn serialises_as_origin_and_source() {
        let o = Origin::upload("a.md").unwrap();
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v, serde_json::json!({"origin": "upload", "source": "a.md"}));
        assert_eq!(serde_json::from_value::<Origin>(v).unwrap(), o);
    }
}
