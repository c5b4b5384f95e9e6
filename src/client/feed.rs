//! Sovereign revocation feeds on the wire (`na-wire.md` §7.10, §12): fetching this NA's signed
//! feed from `GET /sovereign-revocation-feed`, and importing another sovereign's feed with
//! `POST /admin/sovereign-revocation-feeds/import` (operator-signed), whose answer is read into an
//! [`ImportVerdict`].
//!
//! Checks only the shape of answers: whether a fetched feed verifies, and what to tell the
//! operator about a rejection, is the caller's (`cli/feed.rs`).

use crate::json::{Map, Value};
use crate::model::feed::RevocationFeed;
use crate::model::fields::str_array;
use crate::model::SignedObject;
use crate::percent::target_with_query;

use super::admin::AdminClient;
use super::{ClientError, NaClient, Reply};

/// A feed as `GET /sovereign-revocation-feed` served it.
#[derive(Debug, Clone)]
pub(crate) struct FetchedFeed {
    /// The feed, schema-checked; its signature is not checked here.
    pub feed: RevocationFeed,
    /// The URL it came from (user info redacted).
    pub url: String,
}

/// `GET /sovereign-revocation-feed`, of `issuer` when given (default: the NA's own sovereign).
pub(crate) fn fetch_feed(na: &NaClient, issuer: Option<&str>) -> Result<FetchedFeed, ClientError> {
    let target = target_with_query("/sovereign-revocation-feed", &[("issuer_sovereign_id", issuer)]);
    let reply = na.get_object(&na.deadline(), &target)?;
    let feed = RevocationFeed::from_value(&reply.body).map_err(|e| reply.bad(e.to_string()))?;
    Ok(FetchedFeed { feed, url: reply.url })
}

/// `POST /admin/sovereign-revocation-feeds/import` parameters (§12.2); `None` fields are not sent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ImportRequest {
    /// The feed exactly as read (it is sent unchanged).
    pub feed: Value,
    /// Issuer NA public keys in base64; `None` lets the NA use its treaty keys for the issuer.
    pub issuer_public_keys: Option<Vec<String>>,
    /// Reject the feed unless its issuer is this sovereign id.
    pub expected_issuer_sovereign_id: Option<String>,
}

impl ImportRequest {
    /// The request body: the feed and only the given options.
    pub(crate) fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("feed", self.feed.clone());
        if let Some(keys) = &self.issuer_public_keys {
            body.insert("issuer_public_keys", str_array(keys));
        }
        if let Some(issuer) = &self.expected_issuer_sovereign_id {
            body.insert("expected_issuer_sovereign_id", issuer.as_str());
        }
        Value::Object(body)
    }
}

/// The NA's decision on an import: accepted, or rejected with a reason code.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ImportVerdict {
    /// Whether the NA imported the feed.
    pub accepted: bool,
    /// `accepted`, or the rejection reason code (`stale_sequence`, `wrong_issuer`, …).
    pub reason: String,
    /// The feed's issuer as the NA read it (empty when not given).
    pub issuer_sovereign_id: String,
    /// The feed's sequence, when the NA gave it.
    pub sequence: Option<i64>,
    /// How many attestations the feed revokes, when the NA gave it.
    pub revoked_count: Option<i64>,
    /// The answer as the NA sent it, for `--json`.
    pub answer: Value,
}

/// Sends the import. A 2xx answer or a 400/409 decision body (`{"accepted": false, "reason"}`)
/// is a verdict; any other answer (401, 415, `{"error": …}`) is a refusal.
pub(crate) fn import(admin: &AdminClient<'_>, request: &ImportRequest) -> Result<ImportVerdict, ClientError> {
    let reply = admin.send("POST", "/admin/sovereign-revocation-feeds/import", Some(&request.body()))?;
    let decision = reply.body.as_object().filter(|m| m.get("accepted").and_then(Value::as_bool).is_some());
    match decision {
        Some(map) if reply.is_success() || matches!(reply.status, 400 | 409) => verdict(&reply, map),
        _ => {
            reply.object()?;
            Err(reply.bad("field accepted is missing or not a boolean"))
        }
    }
}

fn verdict(reply: &Reply, map: &Map) -> Result<ImportVerdict, ClientError> {
    let text = |field: &str| map.get(field).and_then(Value::as_str).map(str::to_string);
    let accepted = map.get("accepted").and_then(Value::as_bool).unwrap_or(false);
    if accepted && !reply.is_success() {
        return Err(reply.bad("accepted is true on an error status"));
    }
    Ok(ImportVerdict {
        accepted,
        reason: text("reason").ok_or_else(|| reply.bad("field reason is missing or not a string"))?,
        issuer_sovereign_id: text("issuer_sovereign_id").unwrap_or_default(),
        sequence: map.get("sequence").and_then(Value::as_i64),
        revoked_count: map.get("revoked_count").and_then(Value::as_i64),
        answer: reply.body.clone(),
    })
}
