//! Errors of the crypto layer: key files and key material, base64, signatures.

use std::fmt;
use std::path::PathBuf;

/// What went wrong with key material or a signature.
#[derive(Debug)]
pub enum CryptoError {
    /// A key file could not be read.
    ReadKey {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A key file was read but its content is not what upstream writes.
    BadKeyFile {
        /// The file involved.
        path: PathBuf,
        /// What is wrong.
        problem: KeyProblem,
    },
    /// A base64 value that is not standard padded base64.
    Base64 {
        /// Which value.
        what: &'static str,
    },
    /// Decoded key material of the wrong length.
    KeyLength {
        /// Which value.
        what: &'static str,
        /// The expected size.
        expected: usize,
        /// What was found.
        found: usize,
    },
    /// A public key that is not a valid Ed25519 point.
    InvalidPublicKey,
}

/// Why a key file was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    /// Only comments or whitespace.
    Empty,
    /// The key line is not standard padded base64.
    NotBase64,
    /// Decoded to the wrong number of bytes.
    WrongLength {
        /// The expected size.
        expected: usize,
        /// What was found.
        found: usize,
    },
    /// The file is not UTF-8 text.
    NotText,
    /// A private key file was given where a public one was expected, or the reverse.
    WrongKind {
        /// The expected size.
        expected: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// The public key bytes are not a valid Ed25519 point.
    InvalidPoint,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::Empty => write!(f, "no key line found (only comments or blank lines)"),
            KeyProblem::NotBase64 => write!(f, "the key line is not standard padded base64"),
            KeyProblem::WrongLength { expected, found } => {
                write!(f, "expected a base64 {expected}-byte Ed25519 key, found {found} bytes")
            }
            KeyProblem::NotText => write!(f, "the file is not UTF-8 text"),
            KeyProblem::WrongKind { expected, found } => {
                write!(f, "expected an Ed25519 {expected} key file, found a {found} key file")
            }
            KeyProblem::InvalidPoint => write!(f, "the bytes are not a valid Ed25519 public key"),
        }
    }
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::ReadKey { path, source } => {
                write!(f, "cannot read key file {}: {source}", path.display())
            }
            CryptoError::BadKeyFile { path, problem } => {
                write!(f, "cannot load key file {}: {problem}", path.display())
            }
            CryptoError::Base64 { what } => write!(f, "{what} is not standard padded base64"),
            CryptoError::KeyLength { what, expected, found } => {
                write!(f, "{what} must be {expected} bytes, found {found}")
            }
            CryptoError::InvalidPublicKey => write!(f, "not a valid Ed25519 public key"),
        }
    }
}

impl std::error::Error for CryptoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CryptoError::ReadKey { source, .. } => Some(source),
            _ => None,
        }
    }
}
