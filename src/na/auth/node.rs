//! Node proof of possession for `/join`, `/heartbeat` and `/renew` (`na-wire.md` §5): the node
//! signs the canonical JSON of its own body without `signature` (every other key covered, the
//! timestamp text verbatim). Checks in upstream's order: required fields, timestamp, freshness,
//! nonce not seen (before the signature), signature. The nonce itself is stored by the caller in
//! the same write as the decision, so a replay loses even a race.

use chrono::{DateTime, Utc};

use crate::crypto::keys::PublicKey;
use crate::crypto::payload::node_signed_bytes;
use crate::crypto::signature::verify_b64;
use crate::json::{Map, Value};

use super::super::error::NaError;
use super::{check_timestamp, TimestampProblem};

/// A verified proof: the nonce to store and its scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeProof {
    /// `join:<key>` or `node:<key>`.
    pub scope: String,
    /// The request nonce.
    pub nonce: String,
}

/// Why a node proof failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeAuthError {
    /// `signature`, `timestamp` or `nonce` missing or falsy.
    MissingFields,
    /// The timestamp is not a parsable ISO string.
    InvalidTimestamp,
    /// The timestamp has no UTC offset (D1: 400 instead of upstream's 500).
    NaiveTimestamp,
    /// Outside ±300 s; age in seconds.
    Stale(i64),
    /// Nonce already used in the scope.
    NonceReplay(String),
    /// The signature does not verify.
    InvalidSignature,
    /// The node key is unusable (D7: reported as an invalid signature, audited as `signature_error`).
    SignatureError,
}

impl NodeAuthError {
    /// Audit `reason`.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            NodeAuthError::MissingFields => "missing_fields",
            NodeAuthError::InvalidTimestamp | NodeAuthError::NaiveTimestamp => "invalid_timestamp",
            NodeAuthError::Stale(_) => "stale_timestamp",
            NodeAuthError::NonceReplay(_) => "nonce_replay",
            NodeAuthError::InvalidSignature => "invalid_signature",
            NodeAuthError::SignatureError => "signature_error",
        }
    }

    /// Status and upstream message.
    pub(crate) fn to_error(&self) -> NaError {
        match self {
            NodeAuthError::MissingFields => NaError::api(401, "Missing signature, timestamp, or nonce"),
            NodeAuthError::InvalidTimestamp => NaError::api(401, "Invalid timestamp format"),
            NodeAuthError::NaiveTimestamp => NaError::api(400, "Invalid timestamp format"),
            NodeAuthError::Stale(age) => NaError::api(401, format!("Request timestamp too old ({age}s > 300s)")),
            NodeAuthError::NonceReplay(_) => NaError::api(401, "Nonce already used (replay detected)"),
            NodeAuthError::InvalidSignature | NodeAuthError::SignatureError => NaError::api(401, "Invalid signature"),
        }
    }

    /// `node_auth_failed` details.
    pub(crate) fn audit_details(&self, scope: &str, remote_addr: &str) -> Map {
        let mut d = Map::new();
        if let NodeAuthError::NonceReplay(nonce) = self {
            d.insert("nonce", Value::from(nonce.as_str()));
        }
        d.insert("reason", Value::from(self.reason()));
        d.insert("remote_addr", Value::from(remote_addr));
        d.insert("scope", Value::from(scope));
        d
    }
}

fn truthy_str<'a>(body: &'a Map, name: &str) -> Option<&'a Value> {
    body.get(name).filter(|v| v.is_truthy())
}

/// The request nonce as it is stored (a non-string nonce is kept as its JSON text).
pub fn nonce_of(body: &Map) -> Option<String> {
    truthy_str(body, "nonce").map(|n| match n {
        Value::Str(s) => s.clone(),
        other => crate::crypto::canonical::canonical_string(other),
    })
}

/// Verifies the proof in `body` for `scope` with the body's `node_public_key`. `nonce_seen` says
/// whether the body's nonce is already stored in `scope` (looked up by the caller in the same read
/// as the rest of the route's state, see [`nonce_of`]).
pub fn verify(body: &Map, scope: &str, now: DateTime<Utc>, nonce_seen: bool) -> Result<NodeProof, NodeAuthError> {
    let (Some(signature), Some(timestamp), Some(nonce)) =
        (truthy_str(body, "signature"), truthy_str(body, "timestamp"), nonce_of(body))
    else {
        return Err(NodeAuthError::MissingFields);
    };
    let ts = timestamp.as_str().ok_or(NodeAuthError::InvalidTimestamp)?;
    check_timestamp(ts, now).map_err(|p| match p {
        TimestampProblem::Unparsable => NodeAuthError::InvalidTimestamp,
        TimestampProblem::Naive => NodeAuthError::NaiveTimestamp,
        TimestampProblem::Stale(age) => NodeAuthError::Stale(age),
    })?;
    if nonce_seen {
        return Err(NodeAuthError::NonceReplay(nonce));
    }
    let key_text = body.get("node_public_key").and_then(Value::as_str).unwrap_or_default();
    let key = PublicKey::from_b64(key_text).map_err(|_| NodeAuthError::SignatureError)?;
    let sig = signature.as_str().ok_or(NodeAuthError::InvalidSignature)?;
    if !verify_b64(&key, &node_signed_bytes(body), sig) {
        return Err(NodeAuthError::InvalidSignature);
    }
    Ok(NodeProof { scope: scope.to_string(), nonce })
}
