//! Operator authentication for admin routes (`na-wire.md` §6, `deviations.md` D6).
//!
//! Headers `X-Admin-Key-Id`, `X-Admin-Timestamp`, `X-Admin-Nonce`, `X-Admin-Signature`. Version 2
//! (upstream 1.x) signs method, percent-decoded path, query and this NA's public key as well as the
//! body; version 1 (upstream 0.16) signs only body, key id, timestamp and nonce. gm tries v2 first,
//! then v1 unless legacy signatures are refused (`admin_signature = "v2"`), and audits every v1
//! acceptance. Check order and messages follow upstream's table; every rejection writes
//! `admin_auth_failed`.

use chrono::{DateTime, Utc};

use crate::crypto::payload::{v1_payload, v2_payload};
use crate::crypto::signature::verify_b64;
use crate::http::{parse_query, Request};
use crate::json::{Map, Value};
use crate::store::nonces;

use super::super::audit;
use super::super::auth_failures::FailureKey;
use super::super::authority::Authority;
pub use super::super::authority::SignaturePolicy;
use super::super::error::NaError;
use super::{check_timestamp, TimestampProblem};

/// An authenticated operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// The operator key id that signed.
    pub key_id: String,
}

/// Why an admin request was refused (`na-wire.md` §6.4): status, message and audit reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    MissingHeaders,
    UnknownKey,
    InvalidTimestamp,
    NaiveTimestamp,
    StaleTimestamp,
    NonceReplay,
    InvalidSignature,
}

impl Refusal {
    fn status_message_reason(self) -> (u16, &'static str, &'static str) {
        match self {
            Refusal::MissingHeaders => (401, "Missing admin authentication headers", "missing_headers"),
            Refusal::UnknownKey => (401, "Unknown admin key", "unknown_key"),
            Refusal::InvalidTimestamp => (401, "Invalid admin timestamp", "invalid_timestamp"),
            Refusal::NaiveTimestamp => (400, "Invalid admin timestamp", "invalid_timestamp"),
            Refusal::StaleTimestamp => (401, "Admin request timestamp too old", "stale_timestamp"),
            Refusal::NonceReplay => (401, "Admin nonce already used", "nonce_replay"),
            Refusal::InvalidSignature => (401, "Invalid admin signature", "invalid_signature"),
        }
    }
}

/// One authentication attempt: what its audit events name.
struct Attempt<'a> {
    na: &'a Authority,
    now: DateTime<Utc>,
    key_id: &'a str,
    nonce: &'a str,
    remote_addr: &'a str,
}

impl Attempt<'_> {
    /// Audits `admin_auth_failed` and returns the error (scope only for replays and signatures,
    /// the nonce only for replays, as upstream's details).
    fn refuse(&self, refusal: Refusal) -> NaError {
        let (status, message, reason) = refusal.status_message_reason();
        let mut d = audit::details(vec![("key_id", Value::from(self.key_id)), ("reason", Value::from(reason))]);
        if matches!(refusal, Refusal::NonceReplay | Refusal::InvalidSignature) {
            d.insert("scope", Value::from(format!("admin:{}", self.key_id)));
        }
        if refusal == Refusal::NonceReplay {
            d.insert("nonce", Value::from(self.nonce));
        }
        d.insert("remote_addr", Value::from(self.remote_addr));
        // G3: identical failures past the burst are counted into one summary row per window. The
        // admin routes are already limited per address (`admin:<addr>`), so no new 429 here.
        let key = FailureKey {
            event_type: "admin_auth_failed",
            remote: self.remote_addr.to_string(),
            subject: self.key_id.to_string(),
            reason: reason.to_string(),
        };
        let limits = &self.na.settings.auth_failures;
        if let Some(event) = self.na.failure_log.note(limits, key, d, false, self.now, std::time::Instant::now()) {
            audit::record_events(&self.na.store, vec![event]);
        }
        NaError::api(status, message)
    }
}

/// Authenticates `req` whose parsed body (as signed) is `body`; `path` is the percent-decoded path.
pub fn authenticate(
    na: &Authority,
    req: &Request,
    path: &str,
    body: &Map,
    remote_addr: &str,
    now: DateTime<Utc>,
) -> Result<Operator, NaError> {
    let header = |name: &str| req.header(name).filter(|v| !v.is_empty());
    let (key_id, timestamp, nonce, signature) = match (
        header("X-Admin-Key-Id"),
        header("X-Admin-Timestamp"),
        header("X-Admin-Nonce"),
        header("X-Admin-Signature"),
    ) {
        (Some(k), Some(t), Some(n), Some(s)) => (k, t, n, s),
        (k, ..) => {
            let attempt = Attempt { na, now, key_id: k.unwrap_or("missing"), nonce: "", remote_addr };
            return Err(attempt.refuse(Refusal::MissingHeaders));
        }
    };
    let attempt = Attempt { na, now, key_id, nonce, remote_addr };
    let keys = na.operators.current();
    let key = keys.get(key_id).ok_or_else(|| attempt.refuse(Refusal::UnknownKey))?;
    check_timestamp(timestamp, now).map_err(|p| {
        attempt.refuse(match p {
            TimestampProblem::Unparsable => Refusal::InvalidTimestamp,
            TimestampProblem::Naive => Refusal::NaiveTimestamp,
            TimestampProblem::Stale(_) => Refusal::StaleTimestamp,
        })
    })?;
    let scope = format!("admin:{key_id}");
    if na.store.read(|c| nonces::exists(c, &scope, nonce)).unwrap_or(false) {
        return Err(attempt.refuse(Refusal::NonceReplay));
    }
    let body_value = Value::Object(body.clone());
    let v2 = v2_payload(
        &na.genesis.network_authority.public_key,
        &body_value,
        key_id,
        &req.method,
        nonce,
        path,
        &req.query.as_deref().map(parse_query).unwrap_or_default(),
        timestamp,
    );
    let legacy = if verify_b64(key, &v2, signature) {
        false
    } else if na.settings.admin_signature == SignaturePolicy::V1AndV2
        && verify_b64(key, &v1_payload(&body_value, key_id, nonce, timestamp), signature)
    {
        true
    } else {
        return Err(attempt.refuse(Refusal::InvalidSignature));
    };
    let (nonce_w, at) = (nonce.to_string(), crate::model::timestamp::isoformat_utc(now));
    if !na.store.write(move |c| nonces::insert(c, &scope, &nonce_w, &at))? {
        return Err(attempt.refuse(Refusal::NonceReplay));
    }
    if legacy {
        let d = audit::details(vec![
            ("key_id", Value::from(key_id)),
            ("method", Value::from(req.method.as_str())),
            ("path", Value::from(path)),
        ]);
        audit::record(&na.store, "admin_legacy_signature_accepted", d, now);
    }
    Ok(Operator { key_id: key_id.to_string() })
}
