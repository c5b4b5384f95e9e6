//! Errors of the probe itself (not of the NA it checks): its state file and its textfile. A check
//! that fails is a result, never one of these; these make the run UNKNOWN (exit 3).

use std::fmt;
use std::path::PathBuf;

/// A failure of the probe's own files.
#[derive(Debug)]
pub enum ProbeError {
    /// The state file exists but cannot be read.
    StateRead {
        /// The state file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The state file is not a probe state.
    StateCorrupt {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The state file cannot be written.
    StateWrite {
        /// The state file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The node_exporter textfile cannot be written.
    TextfileWrite {
        /// The textfile.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::StateRead { path, source } => write!(f, "cannot read probe state {}: {source}", path.display()),
            ProbeError::StateCorrupt { path, problem } => {
                write!(f, "probe state {} is not valid: {problem}", path.display())
            }
            ProbeError::StateWrite { path, source } => {
                write!(f, "cannot write probe state {}: {source}", path.display())
            }
            ProbeError::TextfileWrite { path, source } => {
                write!(f, "cannot write metrics textfile {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for ProbeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProbeError::StateRead { source, .. }
            | ProbeError::StateWrite { source, .. }
            | ProbeError::TextfileWrite { source, .. } => Some(source),
            ProbeError::StateCorrupt { .. } => None,
        }
    }
}
