//! Why the NA could not get a signature ([`SignError`]) and how that reaches a client: a 503 when no
//! signer answered, a 403 naming the rule when the customer's signer refused. Its own file so that
//! `publish.rs` (which signs) and `remote_signer.rs` (which asks) share it without importing each
//! other.

use crate::store::StoreError;

/// A signature the NA could not get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignError {
    /// No signer answered (none connected, or every session failed or timed out).
    Unavailable(String),
    /// The signer's own policy refused the object.
    Refused(String),
}

impl SignError {
    /// The HTTP status and upstream-shaped message a route answers with.
    pub(crate) fn status_and_message(&self) -> (u16, String) {
        match self {
            SignError::Unavailable(why) => (503, format!("NA signer unavailable: {why}")),
            SignError::Refused(why) => (403, format!("NA signer refused: {why}")),
        }
    }
}

impl From<SignError> for StoreError {
    fn from(e: SignError) -> StoreError {
        let (status, message) = e.status_and_message();
        StoreError::Refused { status, message }
    }
}

impl From<SignError> for super::error::NaError {
    fn from(e: SignError) -> super::error::NaError {
        let (status, message) = e.status_and_message();
        super::error::NaError::api(status, message)
    }
}
