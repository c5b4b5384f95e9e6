//! Admin routes (`na-wire.md` §9.5): invites, revocation, policy publish/history/rollback. Check
//! order as upstream: lenient body parse, `admin:<addr>` rate limit (also on history and rollback,
//! D19), operator authentication, then the route's own checks. Every accepted action's audit event
//! carries the operator key id. Client input errors are 400 with upstream's closest message (D7).

use chrono::{DateTime, Duration, Utc};

use crate::crypto::digest::{token_fingerprint, uuid4};
use crate::http::{Request, Response};
use crate::json::{Map, Value};
use crate::model::policy::PolicyManifest;
use crate::model::timestamp::{isoformat_utc, pydantic_utc};
use crate::model::SignedObject;
use crate::store::{certs, invites, policy};

use super::super::audit;
use super::super::auth::admin::{authenticate, Operator};
use super::super::authority::{json_response, Authority};
use super::super::body;
use super::super::coerce::python_int;
use super::super::error::NaError;
use super::super::publish::{self, parse_stored, Revocation};
use super::super::rate_limit::ADMIN_LIMIT;
use super::super::remote_addr::client_addr;
use super::enroll::invalid_role;

const REVOCATION_REASONS: [&str; 4] = ["key_compromise", "cessation_of_operation", "superseded", "unspecified"];

/// Rate limit, then authentication with the signed body `signed` (lenient routes parse first).
pub(super) fn admit(
    na: &Authority,
    req: &Request,
    path: &str,
    signed: &Map,
) -> Result<(Operator, String, DateTime<Utc>), NaError> {
    let remote = limit(na, req)?;
    let now = na.clock.now();
    let operator = authenticate(na, req, path, signed, &remote, now)?;
    Ok((operator, remote, now))
}

/// Strict admin routes: rate limit, then the strict body parse (415/400), then authentication.
pub(super) fn admit_strict(
    na: &Authority,
    req: &Request,
    path: &str,
) -> Result<(Map, Operator, String, DateTime<Utc>), NaError> {
    let remote = limit(na, req)?;
    let body = body::strict(req)?;
    let now = na.clock.now();
    let operator = authenticate(na, req, path, &body, &remote, now)?;
    Ok((body, operator, remote, now))
}

/// The shared `admin:<addr>` bucket; returns the client address.
fn limit(na: &Authority, req: &Request) -> Result<String, NaError> {
    let remote = client_addr(req, na.settings.proxy_hops);
    if !na.limiter.allow(&format!("admin:{remote}"), ADMIN_LIMIT) {
        return Err(NaError::rate_limited());
    }
    Ok(remote)
}

fn str_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?.iter().map(|x| x.as_str().map(str::to_string)).collect()
}

fn add_hours(now: DateTime<Utc>, hours: i64) -> Option<DateTime<Utc>> {
    let t = now.checked_add_signed(Duration::try_hours(hours)?)?;
    (chrono::Datelike::year(&t) <= 9999).then_some(t)
}

/// `POST /admin/invite`.
pub(crate) fn invite(na: &Authority, req: &Request, path: &str) -> Result<Response, NaError> {
    let body = body::lenient(req)?;
    let (operator, remote, now) = admit(na, req, path, &body)?;
    let windows = NaError::api(400, "Token validity windows must be positive");
    let hours = |name: &str, default: i64| body.get(name).map_or(Some(default), python_int);
    let (Some(max_validity), Some(expiry)) = (hours("max_validity_hours", 168), hours("token_expiry_hours", 24)) else {
        return Err(windows);
    };
    let roles = match body.get("roles") {
        None => vec!["role:client".to_string()],
        Some(v) => str_list(v).ok_or_else(|| {
            NaError::api(400, format!("Invalid role: {}", crate::crypto::canonical::canonical_string(v)))
        })?,
    };
    if let Some(bad) = invalid_role(&roles) {
        return Err(NaError::api(400, format!("Invalid role: {bad}")));
    }
    if max_validity <= 0 || expiry <= 0 {
        return Err(windows);
    }
    let (Some(expires), Some(_)) = (add_hours(now, expiry), add_hours(now, max_validity)) else {
        return Err(windows);
    };
    let token = uuid4();
    let roles_json = crate::crypto::canonical::to_string_with(
        &Value::Array(roles.iter().map(|r| Value::from(r.as_str())).collect()),
        &crate::crypto::canonical::Style::PYTHON_DEFAULT_UNSORTED,
    );
    let (token_w, expires_iso) = (token.clone(), isoformat_utc(expires));
    let expires_w = expires_iso.clone();
    na.store.write(move |c| {
        let at = isoformat_utc(now);
        invites::insert(
            c,
            &invites::NewInvite {
                token_id: &token_w,
                assigned_roles_json: &roles_json,
                max_validity_hours: max_validity,
                created_at: &at,
                expires_at: &expires_w,
            },
        )?;
        let d = audit::details(vec![
            ("operator_key_id", Value::from(operator.key_id.as_str())),
            ("remote_addr", Value::from(remote.as_str())),
            ("roles", Value::Array(roles.iter().map(|r| Value::from(r.as_str())).collect())),
            ("token_fingerprint", Value::from(token_fingerprint(&token_w))),
        ]);
        audit::write(c, "invite_created", d, now)
    })?;
    let mut m = Map::new();
    m.insert("expires_at", Value::from(expires_iso));
    m.insert("token_id", Value::from(token));
    Ok(json_response(201, &Value::Object(m)))
}

/// `POST /admin/revoke`.
pub(crate) fn revoke(na: &Authority, req: &Request, path: &str) -> Result<Response, NaError> {
    let body = body::lenient(req)?;
    let (operator, remote, now) = admit(na, req, path, &body)?;
    let cert_id = match body.get("cert_id").filter(|v| v.is_truthy()) {
        Some(Value::Str(s)) => s.clone(),
        Some(_) => return Err(NaError::api(404, "Unknown certificate")),
        None => return Err(NaError::api(400, "cert_id required")),
    };
    let reason = match body.get("reason") {
        None => "unspecified".to_string(),
        Some(Value::Str(r)) if REVOCATION_REASONS.contains(&r.as_str()) => r.clone(),
        Some(_) => return Err(NaError::api(400, "Invalid revocation reason")),
    };
    if na.store.read(|c| certs::get(c, &cert_id))?.is_none() {
        return Err(NaError::api(404, "Unknown certificate"));
    }
    let signer = na.signer();
    let r = Revocation { cert_id, reason, remote_addr: remote, operator_key_id: operator.key_id };
    let (sequence, count) = na.store.write(move |c| publish::revoke(c, &r, &signer, now))?;
    let mut m = Map::new();
    m.insert("crl_sequence", Value::from(sequence));
    m.insert("revoked_count", Value::from(count));
    Ok(json_response(200, &Value::Object(m)))
}

/// `POST /admin/policy`.
pub(crate) fn policy_publish(na: &Authority, req: &Request, path: &str) -> Result<Response, NaError> {
    let body = body::lenient(req)?;
    let (operator, _remote, now) = admit(na, req, path, &body)?;
    let mut manifest = build_policy(na, &body, now).ok_or_else(|| NaError::api(400, "Invalid policy manifest"))?;
    na.signer().sign(&mut manifest, "policy", &req.request_id)?;
    store_policy(na, &manifest, &operator.key_id, None, now)?;
    Ok(json_response(201, &manifest.to_value()))
}

/// Stores `manifest` as the active policy with its `policy_published` event in one write job.
/// `offline` is the signature's key id when the key holder signed it offline: the event says so,
/// and a policy id already stored is refused with 409 (upstream's route replaces that version;
/// a signed file must not be replayable over a later decision).
pub(super) fn store_policy(
    na: &Authority,
    manifest: &PolicyManifest,
    operator_key_id: &str,
    offline: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), NaError> {
    let stored = manifest.clone();
    let (operator_key_id, offline) = (operator_key_id.to_string(), offline.map(str::to_string));
    let published = na.store.write(move |c| {
        if offline.is_some() && policy::exists(c, &stored.policy_id)? {
            return Ok(false);
        }
        publish::activate_policy(c, &stored, now)?;
        let mut d = vec![
            ("operator_key_id", Value::from(operator_key_id.as_str())),
            ("policy_id", Value::from(stored.policy_id.as_str())),
        ];
        if let Some(key_id) = &offline {
            d.push(("signature_key_id", Value::from(key_id.as_str())));
            d.push(("signed_offline", Value::Bool(true)));
        }
        audit::write(c, "policy_published", audit::details(d), now)?;
        Ok(true)
    })?;
    if !published {
        return Err(NaError::api(409, "Policy already exists"));
    }
    Ok(())
}

/// Builds the unsigned manifest from the request fields through the model's validation.
pub(super) fn build_policy(na: &Authority, body: &Map, now: DateTime<Utc>) -> Option<PolicyManifest> {
    let policy_id = match body.get("policy_id").filter(|v| v.is_truthy()) {
        Some(v) => v.clone(),
        None => Value::from(format!("policy-{}", uuid4())),
    };
    let routing = match body.get("routing") {
        None => Value::Object(Map::new()),
        Some(v) if !v.is_truthy() => Value::Object(Map::new()),
        Some(Value::Object(r)) => {
            let mut kept = Map::new();
            for k in ["preferred_transports", "max_hops"] {
                if let Some(x) = r.get(k) {
                    kept.insert(k, x.clone());
                }
            }
            Value::Object(kept)
        }
        Some(_) => return None,
    };
    let mut m = Map::new();
    m.insert("policy_id", policy_id);
    m.insert("issued_at", Value::from(pydantic_utc(now)));
    m.insert("issued_by", Value::from(na.settings.na_key_id.as_str()));
    m.insert("min_client_version", body.get("min_client_version").cloned().unwrap_or(Value::from("0.1.0")));
    m.insert(
        "allowed_ports",
        body.get("allowed_ports").cloned().unwrap_or_else(|| Value::Array(vec![443i64.into(), 8443i64.into()])),
    );
    m.insert("allowed_services", body.get("allowed_services").cloned().unwrap_or(Value::Array(Vec::new())));
    m.insert("routing", routing);
    PolicyManifest::from_value(&Value::Object(m)).ok()
}

/// `GET /admin/policy/history` (signature over body `{}`).
pub(crate) fn policy_history(na: &Authority, req: &Request, path: &str) -> Result<Response, NaError> {
    admit(na, req, path, &Map::new())?;
    let rows = na.store.read(policy::history)?;
    let mut versions = Vec::with_capacity(rows.len());
    for row in rows {
        let manifest: PolicyManifest = parse_stored(&row.policy_json, "policy_versions", &row.policy_id)?;
        let mut v = Map::new();
        v.insert("active", Value::Bool(row.active));
        v.insert("created_at", Value::from(row.created_at));
        v.insert("policy", manifest.to_value());
        v.insert("policy_id", Value::from(row.policy_id));
        versions.push(Value::Object(v));
    }
    let mut m = Map::new();
    m.insert("versions", Value::Array(versions));
    Ok(json_response(200, &Value::Object(m)))
}

/// `POST /admin/policy/rollback`.
pub(crate) fn policy_rollback(na: &Authority, req: &Request, path: &str) -> Result<Response, NaError> {
    let body = body::lenient(req)?;
    let (operator, _remote, now) = admit(na, req, path, &body)?;
    let policy_id = match body.get("policy_id").filter(|v| v.is_truthy()) {
        Some(Value::Str(s)) => s.clone(),
        Some(_) => return Err(NaError::api(404, "Unknown policy")),
        None => return Err(NaError::api(400, "policy_id required")),
    };
    let id = policy_id.clone();
    let json = na.store.write(move |c| {
        let json = policy::activate_existing(c, &id)?;
        if json.is_some() {
            let d = audit::details(vec![
                ("operator_key_id", Value::from(operator.key_id.as_str())),
                ("policy_id", Value::from(id.as_str())),
            ]);
            audit::write(c, "policy_rolled_back", d, now)?;
        }
        Ok(json)
    })?;
    let json = json.ok_or_else(|| NaError::api(404, "Unknown policy"))?;
    let manifest: PolicyManifest = parse_stored(&json, "policy_versions", &policy_id)?;
    Ok(json_response(200, &manifest.to_value()))
}
