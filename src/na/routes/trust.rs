//! Cross-sovereign trust routes (`na-wire.md` §9.3, §9.5, §9.6, §11): membership attestations,
//! the recognition policy, recognition treaties and the three public verify routes. Decisions use
//! `model::decision` (upstream's procedures); every issue, revoke and verify writes upstream's audit
//! event. gm binds `issuer_sovereign_id` to this sovereign (D13), rate-limits the public verify
//! routes (D9) and bounds their signature work before any verification (G1, `verify_limits.rs`).

use chrono::{DateTime, Duration, Utc};

use crate::crypto::digest::uuid4;
use crate::http::{Request, Response};
use crate::json::{Map, Value};
use crate::model::attestation::MembershipAttestation;
use crate::model::decision::{verify_attestation, verify_treaty, verify_with_treaty, TreatyExpectations};
use crate::model::fields::Fields;
use crate::model::recognition::RecognitionPolicy;
use crate::model::timestamp::{isoformat_utc, ModelTime};
use crate::model::treaty::{RecognitionTreaty, TreatyScope};
use crate::model::SignedObject;
use crate::store::{attestations, feeds, recognition, treaties};

use super::super::audit;
use super::super::authority::{json_response, Authority};
use super::super::body;
use super::super::coerce::python_int;
use super::super::error::NaError;
use super::super::publish::{parse_stored, stored_json};
use super::super::rate_limit::VERIFY_LIMIT;
use super::super::remote_addr::client_addr;
use super::super::verify_limits::SignatureWork;
use super::admin::admit_strict;
use super::enroll::invalid_role;

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array()?.iter().map(|x| x.as_str().map(str::to_string)).collect()
}

fn str_values(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| Value::from(s.as_str())).collect())
}

fn opt(v: &Option<String>) -> Value {
    v.as_deref().map_or(Value::Null, Value::from)
}

/// `validity_hours` (default 168) as a positive number of hours whose end stays in Python's range.
fn validity(body: &Map, now: DateTime<Utc>) -> Result<DateTime<Utc>, NaError> {
    let bad = || NaError::api(400, "validity_hours must be greater than zero");
    let hours = body.get("validity_hours").map_or(Some(168), python_int).ok_or_else(bad)?;
    if hours <= 0 {
        return Err(bad());
    }
    let end = Duration::try_hours(hours).and_then(|d| now.checked_add_signed(d)).ok_or_else(bad)?;
    if chrono::Datelike::year(&end) > 9999 {
        return Err(bad());
    }
    Ok(end)
}

/// D13: a present `issuer_sovereign_id` must name this sovereign.
fn own_issuer(na: &Authority, body: &Map) -> Result<String, NaError> {
    match body.get("issuer_sovereign_id") {
        None => Ok(na.genesis.network_name.clone()),
        Some(Value::Str(s)) if *s == na.genesis.network_name => Ok(s.clone()),
        Some(_) => Err(NaError::api(400, "issuer_sovereign_id must match this sovereign")),
    }
}

fn object_or_empty(body: &Map, name: &str) -> Option<Map> {
    match body.get(name) {
        None => Some(Map::new()),
        Some(v) if !v.is_truthy() => Some(Map::new()),
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => None,
    }
}

fn reason_of(body: &Map) -> String {
    match body.get("reason").filter(|v| v.is_truthy()) {
        None => "unspecified".to_string(),
        Some(Value::Str(s)) => s.clone(),
        Some(other) => crate::crypto::canonical::canonical_string(other),
    }
}

fn param(req: &Request, name: &str) -> Option<String> {
    req.query.as_deref().and_then(|q| crate::http::parse_query(q).into_iter().find(|(k, _)| k == name).map(|(_, v)| v))
}

fn filter(req: &Request, name: &str) -> String {
    param(req, name).unwrap_or_default()
}

// ---------------------------------------------------------------- attestations

/// `POST /admin/attestations`.
pub(crate) fn issue_attestation(na: &Authority, req: &Request, path: &str) -> Result<Response, NaError> {
    let (body, operator, _remote, now) = admit_strict(na, req, path)?;
    let subject_id = match body.get("subject_id").filter(|v| v.is_truthy()) {
        Some(Value::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let roles = body.get("roles").and_then(strings).filter(|r| !r.is_empty());
    let (Some(subject_id), Some(roles)) = (subject_id, roles) else {
        return Err(NaError::api(400, "subject_id and roles are required"));
    };
    if let Some(bad) = invalid_role(&roles) {
        return Err(NaError::api(400, format!("Invalid role: {bad}")));
    }
    let expires = validity(&body, now)?;
    let issuer = own_issuer(na, &body)?;
    let invalid = || NaError::api(400, "Invalid membership attestation");
    let claims = object_or_empty(&body, "claims").ok_or_else(invalid)?;
    let subject_public_key = match body.get("subject_public_key") {
        None | Some(Value::Null) => None,
        Some(Value::Str(s)) => Some(s.clone()),
        Some(_) => return Err(invalid()),
    };
    let mut a = MembershipAttestation {
        attestation_id: uuid4(),
        issuer_sovereign_id: issuer,
        subject_id,
        subject_public_key,
        roles,
        status: "active".to_string(),
        issued_at: ModelTime::from_utc(now),
        valid_from: ModelTime::from_utc(now),
        expires_at: ModelTime::from_utc(expires),
        issued_by: na.settings.na_key_id.clone(),
        claims,
        signatures: Vec::new(),
    };
    na.signer().sign(&mut a, "attestation", &req.request_id)?;
    let row = attestations::NewAttestation {
        attestation_id: a.attestation_id.clone(),
        issuer_sovereign_id: a.issuer_sovereign_id.clone(),
        subject_id: a.subject_id.clone(),
        subject_public_key: a.subject_public_key.clone(),
        roles_json: crate::crypto::canonical::to_string_with(
            &str_values(&a.roles),
            &crate::crypto::canonical::Style::PYTHON_DEFAULT_UNSORTED,
        ),
        attestation_json: stored_json(&a.to_value()),
        issued_at: isoformat_utc(now),
        valid_from: isoformat_utc(now),
        expires_at: isoformat_utc(expires),
    };
    let event = audit::Event::new(
        "membership_attestation_issued",
        audit::details(vec![
            ("attestation_id", Value::from(a.attestation_id.as_str())),
            ("issuer_sovereign_id", Value::from(a.issuer_sovereign_id.as_str())),
            ("operator_key_id", Value::from(operator.key_id.as_str())),
            ("roles", str_values(&a.roles)),
            ("subject_id", Value::from(a.subject_id.as_str())),
        ]),
        now,
    );
    na.store.write(move |c| {
        attestations::insert(c, &row)?;
        event.write(c)
    })?;
    Ok(json_response(201, &a.to_value()))
}

/// `POST /admin/attestations/<id>/revoke`.
pub(crate) fn revoke_attestation(na: &Authority, req: &Request, path: &str, id: &str) -> Result<Response, NaError> {
    let (body, operator, _remote, now) = admit_strict(na, req, path)?;
    let reason = reason_of(&body);
    let (id_w, reason_w) = (id.to_string(), reason.clone());
    let found = na.store.write(move |c| {
        if !attestations::revoke(c, &id_w, &isoformat_utc(now), &reason_w)? {
            return Ok(false);
        }
        let d = audit::details(vec![
            ("attestation_id", Value::from(id_w.as_str())),
            ("operator_key_id", Value::from(operator.key_id.as_str())),
            ("reason", Value::from(reason_w.as_str())),
        ]);
        audit::write(c, "membership_attestation_revoked", d, now)?;
        Ok(true)
    })?;
    if !found {
        return Err(NaError::api(404, "Attestation not found"));
    }
    let mut m = Map::new();
    m.insert("attestation_id", Value::from(id));
    m.insert("status", Value::from("revoked"));
    Ok(json_response(200, &Value::Object(m)))
}

fn attestation_row(row: &attestations::AttestationRow) -> Result<Value, NaError> {
    let a: MembershipAttestation = parse_stored(&row.attestation_json, "membership_attestations", &row.attestation_id)?;
    let mut m = Map::new();
    m.insert("attestation", a.to_value());
    m.insert("revocation_reason", opt(&row.revocation_reason));
    m.insert("revoked_at", opt(&row.revoked_at));
    m.insert("status", Value::from(row.status.as_str()));
    Ok(Value::Object(m))
}

/// `GET /attestations`.
pub(crate) fn list_attestations(na: &Authority, req: &Request) -> Result<Response, NaError> {
    let (issuer, subject, status) =
        (filter(req, "issuer_sovereign_id"), filter(req, "subject_id"), filter(req, "status"));
    let rows = na.store.read(|c| attestations::list(c, &issuer, &subject, &status))?;
    let items = rows.iter().map(attestation_row).collect::<Result<Vec<_>, _>>()?;
    let mut m = Map::new();
    m.insert("count", Value::from(items.len()));
    m.insert("attestations", Value::Array(items));
    Ok(json_response(200, &Value::Object(m)))
}

/// `GET /attestations/<id>`.
pub(crate) fn get_attestation(na: &Authority, id: &str) -> Result<Response, NaError> {
    let row = na.store.read(|c| attestations::get(c, id))?.ok_or_else(|| NaError::api(404, "Attestation not found"))?;
    Ok(json_response(200, &attestation_row(&row)?))
}

// ---------------------------------------------------------------- recognition policy

/// `POST /admin/recognition-policy`.
pub(crate) fn save_recognition_policy(na: &Authority, req: &Request, path: &str) -> Result<Response, NaError> {
    let (body, operator, _remote, now) = admit_strict(na, req, path)?;
    let invalid = || NaError::api(400, "Invalid recognition_policy");
    let policy = body.get("recognition_policy").ok_or_else(invalid)?;
    let policy = RecognitionPolicy::from_value(policy).map_err(|_| invalid())?;
    let policy_id = match body.get("policy_id") {
        None => format!("recognition-{}", policy.local_sovereign_id),
        Some(Value::Str(s)) => s.clone(),
        Some(_) => return Err(invalid()),
    };
    let json = stored_json(&policy.to_value());
    let (id_w, local, count) = (policy_id.clone(), policy.local_sovereign_id.clone(), policy.recognized_issuers.len());
    na.store.write(move |c| {
        recognition::activate(c, &id_w, &json, &isoformat_utc(now))?;
        let d = audit::details(vec![
            ("local_sovereign_id", Value::from(local.as_str())),
            ("operator_key_id", Value::from(operator.key_id.as_str())),
            ("policy_id", Value::from(id_w.as_str())),
            ("recognized_issuer_count", Value::from(count)),
        ]);
        audit::write(c, "recognition_policy_saved", d, now)
    })?;
    let mut m = Map::new();
    m.insert("active", Value::Bool(true));
    m.insert("local_sovereign_id", Value::from(policy.local_sovereign_id.as_str()));
    m.insert("policy_id", Value::from(policy_id));
    Ok(json_response(200, &Value::Object(m)))
}

fn active_recognition_policy(na: &Authority) -> Result<Option<RecognitionPolicy>, NaError> {
    match na.store.read(recognition::active_json)? {
        None => Ok(None),
        Some(json) => {
            let v = crate::json::parse_str(&json)
                .map_err(|e| NaError::Internal { detail: format!("recognition_policies: {e}") })?;
            RecognitionPolicy::from_value(&v)
                .map(Some)
                .map_err(|e| NaError::Internal { detail: format!("recognition_policies: {e}") })
        }
    }
}

/// `GET /recognition-policy`.
pub(crate) fn get_recognition_policy(na: &Authority) -> Result<Response, NaError> {
    let policy =
        active_recognition_policy(na)?.ok_or_else(|| NaError::api(404, "Recognition policy not configured"))?;
    Ok(json_response(200, &policy.to_value()))
}

// ---------------------------------------------------------------- treaties

/// `POST /admin/recognition-treaties`.
pub(crate) fn issue_treaty(na: &Authority, req: &Request, path: &str) -> Result<Response, NaError> {
    let (body, operator, _remote, now) = admit_strict(na, req, path)?;
    let mut t = build_treaty(na, &body, now)?;
    na.signer().sign(&mut t, "treaty", &req.request_id)?;
    store_treaty(na, &t, &operator.key_id, None, now)?;
    Ok(json_response(201, &t.to_value()))
}

/// The unsigned treaty an issue request describes, checked as upstream checks it (§9.5, D13):
/// a fresh id, this sovereign as issuer, `issued_by` the NA key id, valid from `now`.
pub(super) fn build_treaty(na: &Authority, body: &Map, now: DateTime<Utc>) -> Result<RecognitionTreaty, NaError> {
    let required = || NaError::api(400, "subject_sovereign_id and subject_public_keys are required");
    let subject = match body.get("subject_sovereign_id").filter(|v| v.is_truthy()) {
        Some(Value::Str(s)) => s.clone(),
        _ => return Err(required()),
    };
    let keys = match body.get("subject_public_keys").filter(|v| v.is_truthy()) {
        None => Vec::new(),
        Some(v) => strings(v).ok_or_else(required)?,
    };
    if keys.is_empty() {
        return Err(NaError::api(400, "subject_public_keys must not be empty"));
    }
    let scope_map = object_or_empty(body, "scope").ok_or_else(|| NaError::api(400, "Invalid treaty scope"))?;
    let scope_value = Value::Object(scope_map);
    let scope = Fields::of("RecognitionTreaty", &scope_value)
        .and_then(|f| TreatyScope::from_fields(&f))
        .map_err(|_| NaError::api(400, "Invalid treaty scope"))?;
    if let Some(bad) = invalid_role(&scope.allowed_roles) {
        return Err(NaError::api(400, format!("Invalid role: {bad}")));
    }
    let expires = validity(body, now)?;
    let issuer = own_issuer(na, body)?;
    let metadata = object_or_empty(body, "metadata").ok_or_else(|| NaError::api(400, "Invalid recognition treaty"))?;
    Ok(RecognitionTreaty {
        treaty_id: uuid4(),
        issuer_sovereign_id: issuer,
        subject_sovereign_id: subject,
        subject_public_keys: keys,
        scope,
        status: "active".to_string(),
        issued_at: ModelTime::from_utc(now),
        valid_from: ModelTime::from_utc(now),
        expires_at: ModelTime::from_utc(expires),
        issued_by: na.settings.na_key_id.clone(),
        metadata,
        signatures: Vec::new(),
    })
}

/// Stores a signed treaty with its `recognition_treaty_issued` event in one write job and marks
/// trust changed. `offline` is the signature's key id when the key holder signed it offline (the
/// event then says so). A treaty id already stored is refused with 409 and nothing is written.
pub(super) fn store_treaty(
    na: &Authority,
    t: &RecognitionTreaty,
    operator_key_id: &str,
    offline: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), NaError> {
    let row = treaties::TreatyRow {
        treaty_id: t.treaty_id.clone(),
        issuer_sovereign_id: t.issuer_sovereign_id.clone(),
        subject_sovereign_id: t.subject_sovereign_id.clone(),
        status: "active".to_string(),
        treaty_json: stored_json(&t.to_value()),
        issued_at: isoformat_utc(t.issued_at.to_utc()),
        valid_from: isoformat_utc(t.valid_from.to_utc()),
        expires_at: isoformat_utc(t.expires_at.to_utc()),
        revoked_at: None,
        revocation_reason: None,
    };
    let mut details = vec![
        ("allowed_roles", str_values(&t.scope.allowed_roles)),
        ("issuer_sovereign_id", Value::from(t.issuer_sovereign_id.as_str())),
        ("operator_key_id", Value::from(operator_key_id)),
        ("subject_sovereign_id", Value::from(t.subject_sovereign_id.as_str())),
        ("treaty_id", Value::from(t.treaty_id.as_str())),
    ];
    if let Some(key_id) = offline {
        details.push(("signature_key_id", Value::from(key_id)));
        details.push(("signed_offline", Value::Bool(true)));
    }
    let event = audit::Event::new("recognition_treaty_issued", audit::details(details), now);
    let stored = na.store.write(move |c| {
        if treaties::get(c, &row.treaty_id)?.is_some() {
            return Ok(false);
        }
        treaties::insert(c, &row)?;
        event.write(c)?;
        Ok(true)
    })?;
    if !stored {
        return Err(NaError::api(409, "Recognition treaty already exists"));
    }
    na.trust_changed();
    Ok(())
}

/// `POST /admin/recognition-treaties/<id>/revoke`.
pub(crate) fn revoke_treaty(na: &Authority, req: &Request, path: &str, id: &str) -> Result<Response, NaError> {
    let (body, operator, _remote, now) = admit_strict(na, req, path)?;
    let reason = reason_of(&body);
    let (id_w, reason_w) = (id.to_string(), reason);
    let found = na.store.write(move |c| {
        if !treaties::revoke(c, &id_w, &isoformat_utc(now), &reason_w)? {
            return Ok(false);
        }
        let d = audit::details(vec![
            ("operator_key_id", Value::from(operator.key_id.as_str())),
            ("reason", Value::from(reason_w.as_str())),
            ("treaty_id", Value::from(id_w.as_str())),
        ]);
        audit::write(c, "recognition_treaty_revoked", d, now)?;
        Ok(true)
    })?;
    if !found {
        return Err(NaError::api(404, "Recognition treaty not found"));
    }
    na.trust_changed();
    let mut m = Map::new();
    m.insert("status", Value::from("revoked"));
    m.insert("treaty_id", Value::from(id));
    Ok(json_response(200, &Value::Object(m)))
}

/// A stored treaty row as served: `{"revocation_reason", "revoked_at", "status", "treaty"}`.
pub(crate) fn treaty_row(row: &treaties::TreatyRow) -> Result<Value, NaError> {
    let t: RecognitionTreaty = parse_stored(&row.treaty_json, "recognition_treaties", &row.treaty_id)?;
    let mut m = Map::new();
    m.insert("revocation_reason", opt(&row.revocation_reason));
    m.insert("revoked_at", opt(&row.revoked_at));
    m.insert("status", Value::from(row.status.as_str()));
    m.insert("treaty", t.to_value());
    Ok(Value::Object(m))
}

/// `GET /recognition-treaties`.
pub(crate) fn list_treaties(na: &Authority, req: &Request) -> Result<Response, NaError> {
    let (issuer, subject, status) =
        (filter(req, "issuer_sovereign_id"), filter(req, "subject_sovereign_id"), filter(req, "status"));
    let rows = na.store.read(|c| treaties::list(c, &issuer, &subject, &status))?;
    let items = rows.iter().map(treaty_row).collect::<Result<Vec<_>, _>>()?;
    let mut m = Map::new();
    m.insert("count", Value::from(items.len()));
    m.insert("recognition_treaties", Value::Array(items));
    Ok(json_response(200, &Value::Object(m)))
}

/// `GET /recognition-treaties/<id>`.
pub(crate) fn get_treaty(na: &Authority, id: &str) -> Result<Response, NaError> {
    let row =
        na.store.read(|c| treaties::get(c, id))?.ok_or_else(|| NaError::api(404, "Recognition treaty not found"))?;
    Ok(json_response(200, &treaty_row(&row)?))
}

// ---------------------------------------------------------------- verification

/// D9: the public verify routes share `verify:<addr>`, then parse strictly.
fn verify_body(na: &Authority, req: &Request) -> Result<Map, NaError> {
    let remote = client_addr(req, na.settings.proxy_hops);
    if !na.limiter.allow(&format!("verify:{remote}"), VERIFY_LIMIT) {
        return Err(NaError::rate_limited());
    }
    body::strict(req)
}

/// The `sig` strings of a posted object, for the work bound (G1).
fn sig_texts<T: SignedObject>(object: &T) -> Vec<&str> {
    object.signatures().iter().map(|s| s.sig.as_str()).collect()
}

/// Issuer keys from a request field; absent or falsy means this NA's own key.
fn key_list(na: &Authority, body: &Map, name: &str) -> Option<Vec<String>> {
    match body.get(name).filter(|v| v.is_truthy()) {
        None => Some(vec![na.genesis.network_authority.public_key.clone()]),
        Some(v) => strings(v),
    }
}

/// `POST /attestations/verify`.
pub(crate) fn verify_attestation_route(na: &Authority, req: &Request) -> Result<Response, NaError> {
    let body = verify_body(na, req)?;
    let now = na.clock.now();
    let invalid = || NaError::api(400, "Invalid attestation or recognition policy");
    let mut policy = match body.get("recognition_policy") {
        Some(v) => RecognitionPolicy::from_value(v).map_err(|_| invalid())?,
        None => active_recognition_policy(na)?.ok_or_else(|| NaError::api(400, "recognition_policy is required"))?,
    };
    let a = body
        .get("attestation")
        .ok_or_else(invalid)
        .and_then(|v| MembershipAttestation::from_value(v).map_err(|_| invalid()))?;
    let issuer_keys = policy
        .recognized_issuers
        .iter()
        .find(|i| i.sovereign_id == a.issuer_sovereign_id)
        .map_or(&[][..], |i| i.public_keys.as_slice());
    let sigs = sig_texts(&a);
    na.settings.verify_limits.admit(&[SignatureWork { signatures: &sigs, keys: issuer_keys }])?;
    if na.store.read(|c| attestations::is_revoked(c, &a.attestation_id))? {
        policy.revoked_attestation_ids.push(a.attestation_id.clone());
    }
    let d = verify_attestation(&a, &policy, now);
    let details = audit::details(vec![
        ("accepted", Value::Bool(d.accepted)),
        ("attestation_id", Value::from(a.attestation_id.as_str())),
        ("issuer_sovereign_id", Value::from(a.issuer_sovereign_id.as_str())),
        ("reason", Value::from(d.reason)),
    ]);
    audit::record(&na.store, "membership_attestation_verified", details, now);
    let mut m = Map::new();
    m.insert("accepted", Value::Bool(d.accepted));
    m.insert("attestation_id", Value::from(a.attestation_id.as_str()));
    m.insert("issuer_sovereign_id", Value::from(a.issuer_sovereign_id.as_str()));
    m.insert("reason", Value::from(d.reason));
    Ok(json_response(200, &Value::Object(m)))
}

fn locally_revoked_treaty(na: &Authority, id: &str) -> Result<Vec<String>, NaError> {
    let revoked = na.store.read(|c| treaties::get(c, id))?.is_some_and(|r| r.status == "revoked");
    Ok(if revoked { vec![id.to_string()] } else { Vec::new() })
}

/// `POST /recognition-treaties/verify`.
pub(crate) fn verify_treaty_route(na: &Authority, req: &Request) -> Result<Response, NaError> {
    let body = verify_body(na, req)?;
    let now = na.clock.now();
    let invalid = || NaError::api(400, "Invalid recognition treaty");
    let t =
        body.get("treaty").ok_or_else(invalid).and_then(|v| RecognitionTreaty::from_value(v).map_err(|_| invalid()))?;
    let keys = key_list(na, &body, "issuer_public_keys").ok_or_else(invalid)?;
    let sigs = sig_texts(&t);
    na.settings.verify_limits.admit(&[SignatureWork { signatures: &sigs, keys: &keys }])?;
    let revoked = locally_revoked_treaty(na, &t.treaty_id)?;
    let e = TreatyExpectations {
        keys: &keys,
        issuer: body.get("expected_issuer_sovereign_id").and_then(Value::as_str),
        subject: body.get("expected_subject_sovereign_id").and_then(Value::as_str),
        revoked: &revoked,
    };
    let d = verify_treaty(&t, &e, now);
    let details = audit::details(vec![
        ("accepted", Value::Bool(d.accepted)),
        ("issuer_sovereign_id", Value::from(t.issuer_sovereign_id.as_str())),
        ("reason", Value::from(d.reason)),
        ("subject_sovereign_id", Value::from(t.subject_sovereign_id.as_str())),
        ("treaty_id", Value::from(t.treaty_id.as_str())),
    ]);
    audit::record(&na.store, "recognition_treaty_verified", details, now);
    let mut m = Map::new();
    m.insert("accepted", Value::Bool(d.accepted));
    m.insert("issuer_sovereign_id", Value::from(t.issuer_sovereign_id.as_str()));
    m.insert("reason", Value::from(d.reason));
    m.insert("subject_sovereign_id", Value::from(t.subject_sovereign_id.as_str()));
    m.insert("treaty_id", Value::from(t.treaty_id.as_str()));
    Ok(json_response(200, &Value::Object(m)))
}

/// `POST /attestations/verify-with-treaty`.
pub(crate) fn verify_with_treaty_route(na: &Authority, req: &Request) -> Result<Response, NaError> {
    let body = verify_body(na, req)?;
    let now = na.clock.now();
    let invalid = || NaError::api(400, "Invalid attestation or recognition treaty");
    let a = body
        .get("attestation")
        .ok_or_else(invalid)
        .and_then(|v| MembershipAttestation::from_value(v).map_err(|_| invalid()))?;
    let t =
        body.get("treaty").ok_or_else(invalid).and_then(|v| RecognitionTreaty::from_value(v).map_err(|_| invalid()))?;
    let keys = key_list(na, &body, "treaty_issuer_public_keys").ok_or_else(invalid)?;
    // Both stages count: a treaty the caller signed with its own key passes stage one and makes
    // gm try the attestation's signatures with the treaty's subject keys.
    let (treaty_sigs, attestation_sigs) = (sig_texts(&t), sig_texts(&a));
    na.settings.verify_limits.admit(&[
        SignatureWork { signatures: &treaty_sigs, keys: &keys },
        SignatureWork { signatures: &attestation_sigs, keys: &t.subject_public_keys },
    ])?;
    let revoked_treaties = locally_revoked_treaty(na, &t.treaty_id)?;
    let imported = na.store.read(|c| feeds::imported_ids(c, &a.issuer_sovereign_id))?;
    let d = verify_with_treaty(&a, &t, &keys, &revoked_treaties, &imported, now);
    let details = audit::details(vec![
        ("accepted", Value::Bool(d.accepted)),
        ("attestation_id", Value::from(a.attestation_id.as_str())),
        ("reason", Value::from(d.reason.as_str())),
        ("treaty_id", Value::from(t.treaty_id.as_str())),
    ]);
    audit::record(&na.store, "treaty_attestation_verified", details, now);
    let mut m = Map::new();
    m.insert("accepted", Value::Bool(d.accepted));
    m.insert("attestation_id", Value::from(a.attestation_id.as_str()));
    m.insert("issuer_sovereign_id", Value::from(t.issuer_sovereign_id.as_str()));
    m.insert("reason", Value::from(d.reason));
    m.insert("subject_sovereign_id", Value::from(t.subject_sovereign_id.as_str()));
    m.insert("treaty_id", Value::from(t.treaty_id.as_str()));
    Ok(json_response(200, &Value::Object(m)))
}
