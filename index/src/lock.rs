//! The data-dir lock: one cairn process owns a data dir at a time.
//!
//! The embedded catalog and indexes assume a single writer. [`DataDirLock::acquire`] takes
//! an exclusive, non-blocking lock on `<dir>/LOCK` (an OS file lock, so it is released when
//! the process dies, even by `kill -9`) and writes the owner's pid into the file so that
//! a second process can say who holds it. The lock belongs to the open file, so a second
//! `acquire` of the same dir fails inside one process too.

use crate::error::IndexError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Name of the lock file inside a data dir.
pub const LOCK_FILE: &str = "LOCK";

/// Holds the data-dir lock until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    dir: PathBuf,
    // Keeps the OS lock: closing the file releases it.
    _file: File,
}

impl DataDirLock {
    /// Creates `dir` if needed and locks it. `Conflict` if another holder has it.
    pub fn acquire(dir: &Path) -> cairn_core::Result<DataDirLock> {
        Ok(Self::acquire_inner(dir)?)
    }

    fn acquire_inner(dir: &Path) -> Result<DataDirLock, IndexError> {
        std::fs::create_dir_all(dir).map_err(IndexError::io("cannot create data dir", dir))?;
        let path = dir.join(LOCK_FILE);
        // No truncation before the lock is ours: the file holds the owner's pid.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(IndexError::io("cannot open lock file", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let pid = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                return Err(IndexError::DataDirInUse {
                    dir: dir.to_path_buf(),
                    pid,
                });
            }
            Err(TryLockError::Error(e)) => {
                return Err(IndexError::Io {
                    context: "cannot lock",
                    path,
                    source: e,
                });
            }
        }
        let write_pid = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            writeln!(file, "{}", std::process::id())?;
            file.sync_all()
        };
        write_pid(&mut file).map_err(IndexError::io("cannot write lock file", &path))?;
        Ok(DataDirLock {
            dir: dir.to_path_buf(),
            _file: file,
        })
    }

    /// The locked data dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::ErrorKind;

    #[test]
    fn a_second_holder_is_refused_until_the_first_drops() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let first = DataDirLock::acquire(&dir).unwrap();
        assert_eq!(first.dir(), dir.as_path());
        let pid = std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());

        let err = DataDirLock::acquire(&dir).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict);
        assert!(
            err.message
                .contains(&format!("(pid {})", std::process::id())),
            "{}",
            err.message
        );
        assert!(err.message.contains("in use by another cairn process"));

        drop(first);
        let again = DataDirLock::acquire(&dir).unwrap();
        drop(again);
    }
}
