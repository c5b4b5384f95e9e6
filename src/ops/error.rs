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
        }
    }
}

impl std::error::Error for OpsError {}

impl From<StoreError> for OpsError {
    fn from(e: StoreError) -> OpsError {
        OpsError::Store(e)
    }
}

/// `map_err` helper for file operations.
pub fn io(action: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> OpsError {
    let path = path.to_path_buf();
    move |source| OpsError::Io { action, path, source }
}
