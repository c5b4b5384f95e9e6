//! Errors of managed operations: which step failed, on which file, and why.

use std::fmt;
use std::path::PathBuf;

use crate::store::StoreError;

/// A managed-operation failure.
#[derive(Debug)]
pub enum OpsError {
    /// A file operation failed.
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Database problem.
    Store(StoreError),
    /// Encryption or decryption failed (wrong identity or passphrase, damaged file).
    Crypto {
        /// What failed.
        problem: String,
    },
    /// The archive is not a gm backup or is damaged.
    Archive {
        /// What is wrong.
        problem: String,
    },
    /// A check ran and failed (exit 1).
    Check {
        /// The check's name.
        check: String,
        /// What it found.
        problem: String,
    },
    /// The operation refused to act.
    Refused {
        /// Why.
        reason: String,
    },
    /// An output file exists and replacing it was not allowed (`--force`).
    Exists {
        /// The file that exists.
        path: PathBuf,
    },
    /// An output path names the source database or one of its SQLite sidecars.
    OutputIsDatabase {
        /// The output path as given.
        output: PathBuf,
        /// The database path as given.
        db_path: PathBuf,
    },
    /// The operation needs a database file, not SQLite's private `:memory:` database.
    MemoryDatabase,
    /// The time window selects nothing: `since` is not before `until`.
    EmptyWindow {
        /// The inclusive start, as isoformat.
        since: String,
        /// The exclusive end, as isoformat.
        until: String,
    },
    /// `gm managed prune` deleted what it could, but some deletions (or the folder fsync) failed.
    PruneIncomplete {
        /// The backup folder.
        dir: PathBuf,
        /// How many deletions failed, counting a failed folder fsync as one.
        failed: usize,
        /// How many backups the plan dropped.
        planned: usize,
    },
    /// Another process kept the database locked for the whole busy timeout.
    Busy {
        /// The database.
        db: PathBuf,
        /// How long gm waited.
        waited: std::time::Duration,
    },
    /// Writing a backup failed (a full disk, a quota or file-size limit, a failing device); the
    /// partial output was removed.
    Write {
        /// The backup being written.
        target: PathBuf,
        /// The step that failed (`snapshot`, `manifest`, `archive`, `rename`).
        step: &'static str,
        /// The cause.
        source: Box<OpsError>,
    },
    /// An S3 request failed (a destination unreachable, credentials refused, no bucket, …).
    Remote(Box<super::s3::S3Error>),
    /// A stored audit row cannot be read back.
    BadAuditRow {
        /// The row's `created_at` column.
        created_at: String,
        /// What is wrong.
        problem: String,
    },
}

impl OpsError {
    /// An I/O failure wrapper for `map_err` (same as [`io`]).
    pub(crate) fn io(action: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> OpsError {
        io(action, path)
    }
}

/// Whether the file system refused a write for lack of room: a full disk, a quota or a file-size
/// limit. Such a failure is the target's, never the input's (a restore must not call a good backup
/// damaged because the disk it unpacks to is full).
pub(crate) fn is_out_of_space(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded | std::io::ErrorKind::FileTooLarge
    )
}

/// Whether the device reported an I/O error (EIO): a failing disk, a lost network volume. Like a
/// full disk it is the target's failure, never the input's.
pub(crate) fn is_device_error(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error())
}

/// Whether `e` or its cause is a device I/O error reported by the OS (EIO).
pub(crate) fn caused_by_device_error(e: &OpsError) -> bool {
    match e {
        OpsError::Io { source, .. } => is_device_error(source),
        OpsError::Write { source, .. } => caused_by_device_error(source),
        _ => false,
    }
}

/// Whether `e` or its cause is SQLite's "disk I/O error" (`SQLITE_IOERR`). SQLite reports it for a
/// failing device (EIO) but also for a write past the file-size limit (EFBIG), so it cannot tell
/// a full disk from a failing one: hints name both.
pub(crate) fn caused_by_sqlite_io_error(e: &OpsError) -> bool {
    match e {
        OpsError::Write { source, .. } => caused_by_sqlite_io_error(source),
        OpsError::Store(e) => e.is_io_failure(),
        _ => false,
    }
}

impl fmt::Display for OpsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpsError::Io { action, path, source } => write!(f, "cannot {action} {}: {source}", path.display()),
            OpsError::Store(e) => write!(f, "{e}"),
            OpsError::Crypto { problem } => write!(f, "{problem}"),
            OpsError::Archive { problem } => write!(f, "not a usable gm backup: {problem}"),
            OpsError::Check { check, problem } => write!(f, "check {check} failed: {problem}"),
            OpsError::Refused { reason } => write!(f, "{reason}"),
            OpsError::Exists { path } => write!(f, "refusing to overwrite existing file {}", path.display()),
            OpsError::OutputIsDatabase { output, db_path } => write!(
                f,
                "refusing to write {}: it is the source database {} or one of its sidecars",
                output.display(),
                db_path.display()
            ),
            OpsError::MemoryDatabase => f.write_str("cannot export from :memory:: it is not a database file"),
            OpsError::EmptyWindow { since, until } => {
                write!(f, "empty time window: --since {since} is not before --until {until}")
            }
            OpsError::PruneIncomplete { dir, failed, planned } => write!(
                f,
                "could not finish pruning {}: {failed} failure(s) while deleting {planned} backup(s), each listed above",
                dir.display()
            ),
            OpsError::Busy { db, waited } => write!(
                f,
                "database {} is busy: another process kept it locked for the whole {} s busy timeout",
                db.display(),
                waited.as_secs()
            ),
            OpsError::Write { target, step, source } => {
                write!(f, "cannot write backup {} ({step} step): {source}", target.display())
            }
            OpsError::Remote(e) => write!(f, "{e}"),
            OpsError::BadAuditRow { created_at, problem } => {
                write!(f, "cannot read the audit event created at {created_at:?}: {problem}")
            }
        }
    }
}

impl std::error::Error for OpsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpsError::Io { source, .. } => Some(source),
            OpsError::Store(e) => Some(e),
            OpsError::Write { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

impl From<super::s3::S3Error> for OpsError {
    fn from(e: super::s3::S3Error) -> OpsError {
        OpsError::Remote(Box::new(e))
    }
}

impl From<StoreError> for OpsError {
    fn from(e: StoreError) -> OpsError {
        OpsError::Store(e)
    }
}

/// `map_err` helper for file operations.
pub(crate) fn io(action: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> OpsError {
    let path = path.to_path_buf();
    move |source| OpsError::Io { action, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_errors_are_told_apart_from_full_disks_and_damage() {
        let eio = || std::io::Error::from_raw_os_error(rustix::io::Errno::IO.raw_os_error());
        let enospc = || std::io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error());
        assert!(is_device_error(&eio()) && !is_out_of_space(&eio()));
        assert!(is_out_of_space(&enospc()) && !is_device_error(&enospc()));
        let path = std::path::Path::new("/backups/b.age");
        let io_eio = OpsError::Io { action: "write", path: path.to_path_buf(), source: eio() };
        assert!(caused_by_device_error(&io_eio));
        let wrapped = OpsError::Write { target: path.to_path_buf(), step: "archive", source: Box::new(io_eio) };
        assert!(caused_by_device_error(&wrapped), "the cause of a failed backup write is looked at");
        let sqlite_ioerr = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error { code: rusqlite::ErrorCode::SystemIoFailure, extended_code: 778 },
            None,
        );
        let store = OpsError::Store(crate::store::StoreError::Sqlite { op: "copying pages", source: sqlite_ioerr });
        assert!(!caused_by_device_error(&store), "SQLite's disk I/O error may be EFBIG as well as EIO");
        let wrapped = OpsError::Write { target: path.to_path_buf(), step: "snapshot", source: Box::new(store) };
        assert!(caused_by_sqlite_io_error(&wrapped));
        let full = OpsError::Io { action: "write", path: path.to_path_buf(), source: enospc() };
        assert!(!caused_by_device_error(&full) && !caused_by_sqlite_io_error(&full));
        assert!(!caused_by_device_error(&OpsError::Archive { problem: "bad entry".to_string() }));
    }
}
