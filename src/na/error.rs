//! The one table from NA errors to HTTP status and upstream JSON body (`na-wire.md` §8.2,
//! `deviations.md` D7/D8). No file path, SQL text, token or key material ever reaches a body; the
//! detail of an internal error goes to the log under the request id.

use crate::json::{Map, Value};
use crate::store::StoreError;

/// An NA request failure.
#[derive(Debug)]
pub enum NaError {
    /// Unknown path: 404 `{"error":"Not Found"}` (D8).
    NotFound,
    /// Known path, wrong method: 405 `{"error":"Method Not Allowed"}` with `Allow` (D8).
    MethodNotAllowed {
        /// The methods the path accepts.
        allow: &'static [&'static str],
    },
    /// An application error with upstream's exact message.
    Api {
        /// The HTTP status.
        status: u16,
        /// The message shown.
        message: String,
    },
    /// A rate-limit bucket is exhausted: 429 `{"error":"Rate limit exceeded"}` with `Retry-After: 60`.
    RateLimited,
    /// A gm failure (database, bug): 500 `{"error":"Internal server error"}` (D7).
    Internal {
        /// Details for the log (never the response body).
        detail: String,
    },
}

impl NaError {
    /// An application error.
    pub(crate) fn api(status: u16, message: impl Into<String>) -> NaError {
        NaError::Api { status, message: message.into() }
    }

    /// 429 for an exhausted rate-limit bucket.
    pub(crate) fn rate_limited() -> NaError {
        NaError::RateLimited
    }

    /// The status code.
    pub(crate) fn status(&self) -> u16 {
        match self {
            NaError::NotFound => 404,
            NaError::MethodNotAllowed { .. } => 405,
            NaError::Api { status, .. } => *status,
            NaError::RateLimited => 429,
            NaError::Internal { .. } => 500,
        }
    }

    /// The JSON body (before rendering).
    pub(crate) fn body(&self) -> Value {
        let message = match self {
            NaError::NotFound => "Not Found",
            NaError::MethodNotAllowed { .. } => "Method Not Allowed",
            NaError::Api { message, .. } => message.as_str(),
            NaError::RateLimited => "Rate limit exceeded",
            NaError::Internal { .. } => "Internal server error",
        };
        let mut map = Map::new();
        map.insert("error", Value::from(message));
        Value::Object(map)
    }
}

impl From<StoreError> for NaError {
    fn from(e: StoreError) -> NaError {
        match e {
            StoreError::Refused { status, message } => NaError::Api { status, message },
            e => NaError::Internal { detail: e.to_string() },
        }
    }
}
