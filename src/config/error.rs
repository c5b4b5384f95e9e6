//! Configuration errors: which file or variable, which field, and what is wrong with it.

use std::fmt;
use std::path::PathBuf;

/// A configuration problem.
#[derive(Debug)]
pub enum ConfigError {
    /// `gm.toml` could not be read.
    Read {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `gm.toml` is not valid (syntax, unknown key, wrong type).
    Invalid {
        /// The file involved.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A value is out of range or malformed.
    Value {
        /// The file or variable the value came from.
        source_name: String,
        /// The setting.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            ConfigError::Invalid { path, problem } => {
                write!(f, "invalid config {}: {problem}", path.display())
            }
            ConfigError::Value { source_name, field, problem } => {
                write!(f, "invalid setting {field} in {source_name}: {problem}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}
