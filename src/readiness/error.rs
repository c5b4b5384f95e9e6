//! Why a fact could not be gathered. A missing fact is evidence (the check that needs it fails with
//! "no evidence: …"), so these errors are kept in [`super::checks::Evidence`] in place of the fact;
//! they are rendered here and nowhere else.

use std::fmt;
use std::path::PathBuf;

use crate::store::StoreError;

/// A fact readiness could not gather.
#[derive(Debug)]
pub enum Error {
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file was read but does not hold what it must (a genesis that does not parse or validate).
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// No ops ledger beside the database: no backup, drill or export has run.
    NoLedger {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The database or the ops ledger could not be read.
    Store(StoreError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Read { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Error::Invalid { path, problem } => write!(f, "{}: {problem}", path.display()),
            Error::NoLedger { path } => {
                write!(f, "no ops ledger at {} (no backup, drill or export has run)", path.display())
            }
            Error::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Read { source, .. } => Some(source),
            Error::Store(e) => Some(e),
            Error::Invalid { .. } | Error::NoLedger { .. } => None,
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        Error::Store(e)
    }
}
