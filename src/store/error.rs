//! Errors of the store layer. No SQL text or file content ever reaches an HTTP body; the NA maps
//! these to a generic 500 and logs the detail.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What went wrong with the database.
#[derive(Debug)]
pub enum StoreError {
    /// The file could not be opened as a database.
    Open {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: rusqlite::Error,
    },
    /// The file exists but is not an SQLite database.
    NotSqlite {
        /// The file involved.
        path: PathBuf,
    },
    /// The database needs to exist for this operation.
    Missing {
        /// The file involved.
        path: PathBuf,
    },
    /// The database carries schema versions newer than gm knows (e.g. written by upstream 1.x).
    SchemaTooNew {
        /// The file involved.
        path: PathBuf,
        /// What was found.
        found: i64,
        /// The newest version gm knows.
        known: i64,
    },
    /// A query failed.
    Sqlite {
        /// The operation that failed.
        op: &'static str,
        /// The underlying error.
        source: rusqlite::Error,
    },
    /// No connection became free within the busy timeout.
    PoolTimeout,
    /// Another process kept the database locked for the whole busy timeout.
    Busy {
        /// The operation that waited.
        op: &'static str,
        /// How long it waited.
        waited: Duration,
    },
    /// The writer thread failed or stopped.
    Writer {
        /// What happened.
        problem: String,
    },
    /// The store was opened read-only and cannot write.
    ReadOnly,
    /// A stored JSON column could not be read back.
    CorruptRow {
        /// The table.
        table: &'static str,
        /// The row key.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// The write job's caller refused to commit (an application decision, such as a remote signer
    /// refusing to sign); nothing was written.
    Refused {
        /// The HTTP status the decision maps to.
        status: u16,
        /// The message shown.
        message: String,
    },
}

impl StoreError {
    /// Wraps a rusqlite error with the operation that failed.
    pub(crate) fn sqlite(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Sqlite { op, source }
    }

    /// True when another connection's lock stopped the operation (`SQLITE_BUSY`, `SQLITE_LOCKED`),
    /// after the busy timeout ran out.
    pub(crate) fn is_busy(&self) -> bool {
        match self {
            StoreError::Busy { .. } => true,
            StoreError::Open { source, .. } | StoreError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }

    /// True when SQLite reported "disk I/O error" (`SQLITE_IOERR`): a failing device (EIO), but also
    /// a write past the file-size limit (EFBIG).
    pub(crate) fn is_io_failure(&self) -> bool {
        match self {
            StoreError::Open { source, .. } | StoreError::Sqlite { source, .. } => {
                source.sqlite_error_code() == Some(rusqlite::ErrorCode::SystemIoFailure)
            }
            _ => false,
        }
    }

    /// True when SQLite could not write or create a file (`SQLITE_FULL`, `SQLITE_IOERR`,
    /// `SQLITE_CANTOPEN`): a full disk, a quota or file-size limit, or a failing device.
    pub(crate) fn is_write_failure(&self) -> bool {
        match self {
            StoreError::Open { source, .. } | StoreError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(
                    rusqlite::ErrorCode::DiskFull
                        | rusqlite::ErrorCode::SystemIoFailure
                        | rusqlite::ErrorCode::CannotOpen
                )
            ),
            _ => false,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Open { path, source } => write!(f, "cannot open database {}: {source}", path.display()),
            StoreError::NotSqlite { path } => {
                write!(f, "{} is not an SQLite database (file header not recognised)", path.display())
            }
            StoreError::Missing { path } => write!(f, "database {} does not exist", path.display()),
            StoreError::SchemaTooNew { path, found, known } => write!(
                f,
                "database {} has schema version {found}, newer than the {known} this gm knows (written by a newer upstream or gm?)",
                path.display()
            ),
            StoreError::Sqlite { op, source } => write!(f, "database error while {op}: {source}"),
            StoreError::PoolTimeout => write!(f, "no database connection became free within the busy timeout"),
            StoreError::Busy { op, waited } => {
                write!(f, "database busy while {op}: still locked by another process after {} s", waited.as_secs())
            }
            StoreError::Writer { problem } => write!(f, "database write failed: {problem}"),
            StoreError::ReadOnly => write!(f, "the database was opened read-only"),
            StoreError::CorruptRow { table, key, problem } => {
                write!(f, "stored row {key} in table {table} cannot be read: {problem}")
            }
            StoreError::Refused { message, .. } => write!(f, "not written: {message}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Open { source, .. } | StoreError::Sqlite { source, .. } => Some(source),
            _ => None,
        }
    }
}
