//! Folder walking for `cairn ingest` and `cairn reindex`: which files under a folder are
//! documents.
//!
//! A [`Walker`] holds the include and exclude globs. Globs are matched against the path
//! relative to the folder being walked (with `/` separators; `*` also crosses `/`, so
//! `*.md` matches at any depth). With no include glob, a file is taken when its extension
//! is one of [`DEFAULT_EXTENSIONS`]. Hidden entries (names starting with `.`) and symbolic
//! links are skipped, so every file found lies inside the folder and the folder's documents
//! are exactly the catalog sources under it. A folder that matches an exclude glob is not
//! entered. A sub-folder that cannot be read is reported in [`Walked::unreadable`] rather
//! than failing the whole walk, so callers can refuse to treat its files as vanished.

use crate::error::IngestError;
use cairn_core::{Error, Result};
use globset::{Glob, GlobSet, GlobSetBuilder};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often [`read_settled`] tries before it gives up on a file that keeps changing.
const READ_ATTEMPTS: u32 = 3;

/// Reads a whole file and makes sure it did not change while it was read, so a document
/// is never indexed from a torn read (half old, half new, or cut short by a copy still
/// running). The file's size, modification and change times, device and inode are taken
/// from the open file before reading and from the path after: any difference, or a read
/// that does not match the size, means it changed (or was replaced), and the read is
/// tried again after a short pause, up to three times. A file still changing after that
/// is [`IngestError::Changing`]: reported, and nothing is written.
///
/// The check is only as fine as the file system's timestamps: a rewrite that keeps the
/// size within one timestamp tick (a few milliseconds on Linux) can go unseen; the
/// content hash then still describes exactly the bytes that were indexed.
pub fn read_settled(path: &Path) -> std::result::Result<Vec<u8>, IngestError> {
    read_settled_with(path, &mut |_| {})
}

/// [`read_settled`], calling `after_read(attempt)` between reading and the second look at
/// the file (the tests change the file there).
fn read_settled_with(
    path: &Path,
    after_read: &mut dyn FnMut(u32),
) -> std::result::Result<Vec<u8>, IngestError> {
    let io = |source| IngestError::Io {
        path: path.display().to_string(),
        source,
    };
    let stamp = |m: &std::fs::Metadata| {
        (
            m.len(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
            m.dev(),
            m.ino(),
        )
    };
    for attempt in 0..READ_ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(50 << attempt));
        }
        let mut file = std::fs::File::open(path).map_err(io)?;
        let before = file.metadata().map_err(io)?;
        if before.is_dir() {
            return Err(io(std::io::Error::from(std::io::ErrorKind::IsADirectory)));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(before.len()).unwrap_or(0));
        file.read_to_end(&mut bytes).map_err(io)?;
        after_read(attempt);
        let after = std::fs::metadata(path).map_err(io)?;
        if stamp(&before) == stamp(&after) && bytes.len() as u64 == before.len() {
            return Ok(bytes);
        }
    }
    Err(IngestError::Changing {
        path: path.display().to_string(),
    })
}

/// File extensions (lower case, no dot) taken from a folder when no include glob is given.
/// The one list of what a folder walk picks up by default.
pub const DEFAULT_EXTENSIONS: &[&str] = &[
    "md", "markdown", "txt", "text", "html", "htm", "docx", "pdf",
];

/// Which files of a folder to take.
#[derive(Debug, Clone)]
pub struct Walker {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

/// A folder that could not be read while walking, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub path: PathBuf,
    pub error: String,
}

/// The result of walking one folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walked {
    /// Files found, sorted by path, each `root.join(relative path)`.
    pub files: Vec<PathBuf>,
    /// Sub-folders that could not be read (their files are unknown, not absent).
    pub unreadable: Vec<Unreadable>,
}

impl Default for Walker {
    fn default() -> Self {
        Walker {
            include: None,
            exclude: GlobSet::empty(),
        }
    }
}

fn glob_set(globs: &[String], what: &str) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        let glob = Glob::new(g).map_err(|e| Error::user(format!("{what} glob {g:?}: {e}")))?;
        b.add(glob);
    }
    b.build()
        .map_err(|e| Error::user(format!("{what} globs: {e}")))
}

impl Walker {
    /// A walker with these include and exclude globs. An empty `include` means "the
    /// default extensions". A malformed glob is a `User` error naming it.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Walker> {
        Ok(Walker {
            include: if include.is_empty() {
                None
            } else {
                Some(glob_set(include, "include")?)
            },
            exclude: glob_set(exclude, "exclude")?,
        })
    }

    /// Whether a file at `relative` (to the walked folder) is taken.
    pub fn takes(&self, relative: &Path) -> bool {
        if self.exclude.is_match(relative) {
            return false;
        }
        match &self.include {
            Some(set) => set.is_match(relative),
            None => has_default_extension(relative),
        }
    }

    /// Walks `root` (a folder), depth first in name order. Errors only when `root` itself
    /// cannot be read.
    pub fn walk(&self, root: &Path) -> Result<Walked> {
        let mut walked = Walked::default();
        let top = std::fs::read_dir(root).map_err(|e| read_error(root, &e))?;
        self.walk_dir(root, Path::new(""), top, &mut walked);
        walked.files.sort();
        Ok(walked)
    }

    fn walk_dir(&self, root: &Path, relative: &Path, entries: std::fs::ReadDir, out: &mut Walked) {
        let dir = root.join(relative);
        let mut list = Vec::new();
        for e in entries {
            match e {
                Ok(e) => list.push(e),
                Err(e) => {
                    out.unreadable.push(Unreadable {
                        path: dir.clone(),
                        error: e.to_string(),
                    });
                    return;
                }
            }
        }
        list.sort_by_key(|e| e.file_name());
        for e in list {
            let name = e.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let rel = relative.join(&name);
            let file_type = match e.file_type() {
                Ok(t) => t,
                Err(err) => {
                    out.unreadable.push(Unreadable {
                        path: root.join(&rel),
                        error: err.to_string(),
                    });
                    continue;
                }
            };
            if file_type.is_symlink() {
                tracing::debug!(path = %root.join(&rel).display(), "symbolic link skipped");
            } else if file_type.is_dir() {
                if self.exclude.is_match(&rel) {
                    continue;
                }
                let path = root.join(&rel);
                match std::fs::read_dir(&path) {
                    Ok(sub) => self.walk_dir(root, &rel, sub, out),
                    Err(err) => out.unreadable.push(Unreadable {
                        path,
                        error: err.to_string(),
                    }),
                }
            } else if file_type.is_file() && self.takes(&rel) {
                out.files.push(root.join(&rel));
            }
        }
    }
}

fn has_default_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|x| x.to_str())
        .is_some_and(|x| DEFAULT_EXTENSIONS.contains(&x.to_ascii_lowercase().as_str()))
}

fn read_error(path: &Path, e: &std::io::Error) -> Error {
    let msg = format!("{}: cannot read the folder: {e}", path.display());
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::not_found(msg)
    } else {
        Error::user(msg)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    #[test]
    fn a_settled_file_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "steady text").unwrap();
        assert_eq!(read_settled(&path).unwrap(), b"steady text");
        let missing = read_settled(&dir.path().join("nope.txt")).unwrap_err();
        assert_eq!(missing.kind(), cairn_core::ErrorKind::NotFound);
        let folder = read_settled(dir.path()).unwrap_err();
        assert_eq!(folder.kind(), cairn_core::ErrorKind::User, "{folder}");
    }

    #[test]
    fn a_file_changed_during_the_read_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "first half").unwrap();
        // Appended to while the first read is under way: the second read gets it all.
        let bytes = read_settled_with(&path, &mut |attempt| {
            if attempt == 0 {
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .unwrap();
                f.write_all(b" and the rest").unwrap();
            }
        })
        .unwrap();
        assert_eq!(bytes, b"first half and the rest");
        // Replaced (renamed over, same size) during the read: the new file is read.
        let bytes = read_settled_with(&path, &mut |attempt| {
            if attempt == 0 {
                let tmp = dir.path().join("b.tmp");
                std::fs::write(&tmp, "FIRST HALF AND THE REST").unwrap();
                std::fs::rename(&tmp, &path).unwrap();
            }
        })
        .unwrap();
        assert_eq!(bytes, b"FIRST HALF AND THE REST");
    }

    #[test]
    fn a_file_that_keeps_changing_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing.log");
        std::fs::write(&path, "line\n").unwrap();
        let mut reads = 0;
        let e = read_settled_with(&path, &mut |_| {
            reads += 1;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            f.write_all(b"line\n").unwrap();
        })
        .unwrap_err();
        assert_eq!(reads, READ_ATTEMPTS);
        assert!(matches!(e, IngestError::Changing { .. }));
        assert_eq!(e.kind(), cairn_core::ErrorKind::User);
        assert!(
            e.to_string().contains("changed while it was being read"),
            "{e}"
        );
    }

    #[test]
    fn a_file_rewritten_by_another_thread_is_never_read_torn() {
        // Another thread rewrites the file (truncate, then write) between two contents as
        // fast as it can. A plain read can mix the two (old bytes before the truncation,
        // new ones after); each settled read gives one state the file really had (one
        // content, or a prefix of it while a write was paused) or reports it as changing.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.txt");
        let a = vec![b'a'; 1 << 20];
        let b = vec![b'b'; (1 << 20) + 4096];
        std::fs::write(&path, &a).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut i = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let content = if i.is_multiple_of(2) { &b } else { &a };
                    std::fs::write(&path, content).unwrap();
                    i += 1;
                }
            });
            for _ in 0..20 {
                match read_settled(&path) {
                    Ok(bytes) => assert!(
                        bytes.iter().all(|&c| c == bytes[0]) && bytes.len() <= b.len(),
                        "torn read of {} bytes",
                        bytes.len()
                    ),
                    Err(e) => assert!(matches!(e, IngestError::Changing { .. }), "{e}"),
                }
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }

    use super::*;
    use cairn_core::ErrorKind;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        for f in [
            "a.md",
            "b.TXT",
            "c.pdf",
            "f.png",
            "notes",
            ".hidden.md",
            "sub/d.markdown",
            "sub/deep/e.txt",
            "drafts/f.md",
            ".git/g.md",
        ] {
            let path = p.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "x").unwrap();
        }
        dir
    }

    fn names(root: &Path, w: &Walked) -> Vec<String> {
        w.files
            .iter()
            .map(|f| f.strip_prefix(root).unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn default_walk_takes_known_extensions_and_skips_hidden() {
        let dir = tree();
        let w = Walker::default().walk(dir.path()).unwrap();
        assert_eq!(
            names(dir.path(), &w),
            [
                "a.md",
                "b.TXT",
                "c.pdf",
                "drafts/f.md",
                "sub/d.markdown",
                "sub/deep/e.txt"
            ]
        );
        assert!(w.unreadable.is_empty());
    }

    #[test]
    fn include_and_exclude_globs_match_the_relative_path() {
        let dir = tree();
        let w = Walker::new(&["*.md".into(), "*.pdf".into()], &["drafts/**".into()])
            .unwrap()
            .walk(dir.path())
            .unwrap();
        assert_eq!(names(dir.path(), &w), ["a.md", "c.pdf"]);

        // a folder matching an exclude glob is not entered
        let w = Walker::new(&[], &["sub".into()])
            .unwrap()
            .walk(dir.path())
            .unwrap();
        assert_eq!(
            names(dir.path(), &w),
            ["a.md", "b.TXT", "c.pdf", "drafts/f.md"]
        );

        // '*' crosses folders; '**/' anchors at any depth
        let w = Walker::new(&["sub/*".into()], &["**/e.txt".into()])
            .unwrap()
            .walk(dir.path())
            .unwrap();
        assert_eq!(names(dir.path(), &w), ["sub/d.markdown"]);
    }

    #[test]
    fn bad_globs_and_missing_roots_are_clear_errors() {
        let e = Walker::new(&["a[".into()], &[]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::User);
        assert!(
            e.message.starts_with("include glob \"a[\""),
            "{}",
            e.message
        );
        let e = Walker::new(&[], &["{x".into()]).unwrap_err();
        assert!(e.message.starts_with("exclude glob"), "{}", e.message);

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        let e = Walker::default().walk(&missing).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(
            e.message.contains("gone: cannot read the folder"),
            "{}",
            e.message
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_skipped() {
        let dir = tree();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("o.md"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("o.md"), dir.path().join("link.md"))
            .unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("linkdir")).unwrap();
        let w = Walker::default().walk(dir.path()).unwrap();
        assert!(!names(dir.path(), &w).iter().any(|n| n.contains("link")));
    }
}
