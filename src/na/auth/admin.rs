//! Operator authentication for admin routes (`na-wire.md` §6, `deviations.md` D6).
//!
//! Headers `X-Admin-Key-Id`, `X-Admin-Timestamp`, `X-Admin-Nonce`, `X-Admin-Signature`. Version 2
//! (upstream 1.x) signs method, percent-decoded path, query and this NA's public key as well as the
//! body; version 1 (upstream 0.16) signs only body, key id, timestamp and nonce. gm tries v2 first,
//! then v1 unless legacy signatures are refused (`admin_signature = "v2"`), and audits every v1
//! acceptance. Check order and messages follow upstream's table; every rejection writes
//! `admin_auth_failed`.

use chrono::{DateTime, Utc};

use crate::crypto::json::{Map, Value};
use crate::crypto::payload::{v1_payload, v2_payload};
use crate::crypto::signature::verify_b64;
use crate::http::{parse_query, Request};
use crate::store::nonces;

use super::super::audit;
use super::super::error::NaError;
use super::super::Authority;
use super::{check_timestamp, TimestampProblem};

/// Which signature versions are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignaturePolicy {
    /// v2, then v1 (gm default; 0.16 clients are the reference).
    V1AndV2,
    /// v2 only (upstream 1.1+ behaviour).
    V2Only,
}

/// An authenticated operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// The operator key id that signed.
    pub key_id: String,
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
            return Err(fail(
                na,
                now,
                k.unwrap_or("missing"),
                "missing_headers",
                None,
                remote_addr,
                401,
                "Missing admin authentication headers",
            ))
        }
    };
    let keys = na.operators.current();
    let Some(key) = keys.get(key_id) else {
        return Err(fail(na, now, key_id, "unknown_key", None, remote_addr, 401, "Unknown admin key"));
    };
    match check_timestamp(timestamp, now) {
        Ok(()) => {}
        Err(TimestampProblem::Unparsable) => {
            return Err(fail(na, now, key_id, "invalid_timestamp", None, remote_addr, 401, "Invalid admin timestamp"))
        }
        Err(TimestampProblem::Naive) => {
            return Err(fail(na, now, key_id, "invalid_timestamp", None, remote_addr, 400, "Invalid admin timestamp"))
        }
        Err(TimestampProblem::Stale(_)) => {
            return Err(fail(
                na,
                now,
                key_id,
                "stale_timestamp",
                None,
                remote_addr,
                401,
                "Admin request timestamp too old",
            ))
        }
    }
    let scope = format!("admin:{key_id}");
    if na.store.read(|c| nonces::exists(c, &scope, nonce)).unwrap_or(false) {
        return Err(fail(
            na,
            now,
            key_id,
            "nonce_replay",
            Some((&scope, Some(nonce))),
            remote_addr,
            401,
            "Admin nonce already used",
        ));
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
        return Err(fail(
            na,
            now,
            key_id,
            "invalid_signature",
            Some((&scope, None)),
            remote_addr,
            401,
            "Invalid admin signature",
        ));
    };
    let (scope_w, nonce_w, at) = (scope.clone(), nonce.to_string(), crate::model::timestamp::isoformat_utc(now));
    let stored = na.store.write(move |c| nonces::insert(c, &scope_w, &nonce_w, &at)).map_err(NaError::from)?;
    if !stored {
        return Err(fail(
            na,
            now,
            key_id,
            "nonce_replay",
            Some((&scope, Some(nonce))),
            remote_addr,
            401,
            "Admin nonce already used",
        ));
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

#[allow(clippy::too_many_arguments)]
fn fail(
    na: &Authority,
    now: DateTime<Utc>,
    key_id: &str,
    reason: &str,
    scope: Option<(&str, Option<&str>)>,
    remote_addr: &str,
    status: u16,
    message: &str,
) -> NaError {
    let mut d = audit::details(vec![("key_id", Value::from(key_id)), ("reason", Value::from(reason))]);
    if let Some((scope, nonce)) = scope {
        d.insert("scope", Value::from(scope));
        if let Some(n) = nonce {
            d.insert("nonce", Value::from(n));
        }
    }
    d.insert("remote_addr", Value::from(remote_addr));
    audit::record(&na.store, "admin_auth_failed", d, now);
    NaError::api(status, message)
}
