//! The advisory lock a live `gm serve` holds on its database, so `gm managed restore` (and anything
//! else that must not run under a live server) can detect it. The lock is an OS file lock on the
//! sidecar `<db>.gm-lock`; it vanishes with the process, so a crashed server never leaves a stale lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct DbLock {
    _file: File,
    path: PathBuf,
}

impl DbLock {
    /// The lock file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Outcome of trying to take the lock.
#[derive(Debug)]
pub(crate) enum LockError {
    /// Another process holds it (a live `gm serve`).
    Held {
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file could not be opened.
    Io {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// The sidecar lock path for database `db`.
pub(crate) fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".gm-lock");
    db.with_file_name(name)
}

/// Takes the exclusive lock for `db` without blocking.
pub(crate) fn try_lock_db(db: &Path) -> Result<DbLock, LockError> {
    let path = lock_path(db);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| LockError::Io { path: path.clone(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(DbLock { _file: file, path }),
        Err(TryLockError::WouldBlock) => Err(LockError::Held { path }),
        Err(TryLockError::Error(source)) => Err(LockError::Io { path, source }),
    }
}
