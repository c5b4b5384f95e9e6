//! Enrollment routes `POST /join`, `/heartbeat`, `/renew` (`na-wire.md` §9.2, §9.4) with upstream's
//! check order, statuses and messages. Every decision that writes (nonce, token consumption,
//! certificate, audit event) happens in one write job, so a crash never leaves half a decision and
//! two concurrent joins with one token cannot both win.
//!
//! Renewal (D5, gm's decision): a renewed certificate's predecessor stays usable for
//! [`super::super::Settings::supersede_grace`] after the renewal (default 1 h, so a node that
//! renewed but missed the response can retry), then heartbeats and renewals on it fail with
//! `403 Certificate revoked` and audit reason `superseded`. Superseded certificates are not added to
//! the CRL (same key, and they expire anyway); revoking any certificate revokes its whole chain.

use chrono::{DateTime, Duration, Utc};

use crate::crypto::canonical::{to_string_with, Style};
use crate::crypto::digest::{token_fingerprint, uuid4};
use crate::http::Request;
use crate::json::{parse_str, Map, Value};
use crate::model::certificate::JoinCertificate;
use crate::model::timestamp::{isoformat_utc, parse_db_time, ModelTime};
use crate::model::SignedObject;
use crate::store::{certs, invites, nonces, StoreError};

use super::super::audit;
use super::super::auth::node::{self, NodeAuthError, NodeProof};
use super::super::auth_failures::FailureKey;
use super::super::authority::{json_bytes, json_raw, json_response, Authority};
use super::super::body;
use super::super::coerce::int_field;
use super::super::error::NaError;
use super::super::publish::{stored_json, SignError, Signer};
use super::super::rate_limit::{JOIN_LIMIT, TOKEN_FAIL_LIMIT};
use super::super::remote_addr::client_addr;

const ROLE_PREFIXES: [&str; 5] = ["role:anchor", "role:bridge", "role:client", "role:operator", "role:service:"];

/// Upstream's role check: every role starts with a known prefix.
pub(crate) fn invalid_role(roles: &[String]) -> Option<&String> {
    roles.iter().find(|r| !ROLE_PREFIXES.iter().any(|p| r.starts_with(p)))
}

fn truthy_str(body: &Map, name: &str) -> Option<String> {
    body.get(name).filter(|v| v.is_truthy()).map(|v| match v {
        Value::Str(s) => s.clone(),
        other => crate::crypto::canonical::canonical_string(other),
    })
}

fn roles_json(roles: &[String]) -> String {
    let v = Value::Array(roles.iter().map(|r| Value::from(r.as_str())).collect());
    to_string_with(&v, &Style::PYTHON_DEFAULT_UNSORTED)
}

fn parse_roles(json: &str) -> Vec<String> {
    parse_str(json)
        .ok()
        .and_then(|v| v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()))
        .unwrap_or_default()
}

/// G3: a client address that caused `per_address` node-auth failures in the last minute gets 429
/// on every node route before any work is done.
fn failure_gate(na: &Authority, remote: &str) -> Result<(), NaError> {
    if na.limiter.is_exhausted(&format!("node-auth-fail:{remote}"), na.settings.auth_failures.per_address) {
        return Err(NaError::rate_limited());
    }
    Ok(())
}

/// A node-auth failure: counted against the address and the node key (G3), audited through the
/// collapse log, answered with upstream's 401 until a limit is reached and 429 after.
fn auth_failed(na: &Authority, e: &NodeAuthError, scope: &str, remote: &str, now: DateTime<Utc>) -> NaError {
    let limits = &na.settings.auth_failures;
    let by_address = na.limiter.allow(&format!("node-auth-fail:{remote}"), limits.per_address);
    let by_key = na.limiter.allow(&format!("node-auth-fail-key:{scope}"), limits.per_key);
    let limited = !(by_address && by_key);
    // Once a key's budget is spent, failures for it from any address share one window
    // (`remote_addr: "*"`), so a flood from many addresses still sums into one counted row.
    let counted_as = if by_key { remote } else { "*" };
    let key = FailureKey {
        event_type: "node_auth_failed",
        remote: counted_as.to_string(),
        subject: scope.to_string(),
        reason: e.reason().to_string(),
    };
    let details = e.audit_details(scope, counted_as);
    if let Some(event) = na.failure_log.note(limits, key, details, limited, now, std::time::Instant::now()) {
        audit::record_events(&na.store, vec![event]);
    }
    if limited {
        NaError::rate_limited()
    } else {
        e.to_error()
    }
}

/// Checks the node proof, auditing failures.
fn prove(
    na: &Authority,
    body: &Map,
    scope: &str,
    seen: bool,
    remote: &str,
    now: DateTime<Utc>,
) -> Result<NodeProof, NaError> {
    node::verify(body, scope, now, seen).map_err(|e| auth_failed(na, &e, scope, remote, now))
}

/// Whether the body's nonce is already stored in `scope` (a replay), inside an existing read.
fn nonce_seen(conn: &crate::store::Connection, body: &Map, scope: &str) -> Result<bool, StoreError> {
    match node::nonce_of(body) {
        Some(n) => nonces::exists(conn, scope, &n),
        None => Ok(false),
    }
}

/// Stores the proof's nonce inside a write job; `false` means a concurrent replay won.
fn store_nonce(conn: &crate::store::Connection, proof: &NodeProof, now: DateTime<Utc>) -> Result<bool, StoreError> {
    nonces::insert(conn, &proof.scope, &proof.nonce, &isoformat_utc(now))
}

fn new_certificate(
    signer: &Signer,
    network_name: &str,
    node_public_key: &str,
    roles: Vec<String>,
    now: DateTime<Utc>,
    hours: i64,
    why: (&str, &str),
) -> Result<Option<JoinCertificate>, SignError> {
    let Some(expires) = Duration::try_hours(hours).and_then(|h| now.checked_add_signed(h)) else {
        return Ok(None);
    };
    if chrono::Datelike::year(&expires) > 9999 {
        return Ok(None);
    }
    let mut cert = JoinCertificate {
        cert_id: uuid4(),
        node_public_key: node_public_key.to_string(),
        network_name: network_name.to_string(),
        roles,
        issued_at: ModelTime::from_utc(now),
        expires_at: ModelTime::from_utc(expires),
        issued_by: signer.key_id.clone(),
        signatures: Vec::new(),
    };
    signer.sign(&mut cert, why.0, why.1)?;
    Ok(Some(cert))
}

/// The row of a new certificate and the body of the 201 that answers it, both rendered from one
/// `to_value` of the certificate (the join handler's largest allocation site was building it twice).
fn cert_row(
    cert: &JoinCertificate,
    remote: &str,
    renewed_from: Option<String>,
    max_hours: Option<i64>,
) -> (certs::NewCert, Vec<u8>) {
    let value = cert.to_value();
    let row = certs::NewCert {
        cert_id: cert.cert_id.clone(),
        node_public_key: cert.node_public_key.clone(),
        cert_json: stored_json(&value),
        roles_json: roles_json(&cert.roles),
        issued_at: cert.issued_at.render_isoformat(),
        expires_at: cert.expires_at.render_isoformat(),
        remote_addr: remote.to_string(),
        renewed_from,
        max_validity_hours: max_hours,
    };
    (row, json_bytes(&value))
}

fn bad_validity() -> NaError {
    NaError::api(400, "validity_hours must be a positive integer")
}

/// `POST /join`.
pub(crate) fn join(na: &Authority, req: &Request) -> Result<crate::http::Response, NaError> {
    let remote = client_addr(req, na.settings.proxy_hops);
    if !na.limiter.allow(&format!("join:{remote}"), JOIN_LIMIT) {
        return Err(NaError::rate_limited());
    }
    failure_gate(na, &remote)?;
    let body = body::lenient(req)?;
    let now = na.clock.now();
    let validity = int_field(&body, "validity_hours", 168).ok_or_else(bad_validity)?;
    let node_key = truthy_str(&body, "node_public_key").ok_or_else(|| NaError::api(400, "node_public_key required"))?;
    let token = truthy_str(&body, "invite_token").ok_or_else(|| NaError::api(403, "invite_token required"))?;
    if validity <= 0 {
        return Err(bad_validity());
    }
    let scope = format!("join:{node_key}");
    // One read for everything the checks need: compromise, the invite, and the nonce.
    let (compromised, invite, seen) = na.store.read(|c| {
        Ok((certs::key_compromised(c, &node_key)?, invites::get(c, &token)?, nonce_seen(c, &body, &scope)?))
    })?;
    if let Some(prior) = compromised {
        let d = audit::details(vec![
            ("node_public_key", Value::from(node_key.as_str())),
            ("prior_cert_id", Value::from(prior)),
            ("reason", Value::from("key_compromise")),
            ("remote_addr", Value::from(remote.as_str())),
        ]);
        audit_unproven(na, "join_rejected", &node_key, "key_compromise", &remote, d, now);
        return Err(NaError::api(403, "Node public key has been compromised"));
    }
    let usable = invite
        .as_ref()
        .is_some_and(|i| i.used_at.is_none() && parse_db_time(&i.expires_at).is_some_and(|exp| exp >= now));
    let Some(invite) = invite.filter(|_| usable) else {
        return Err(token_failure(na, &remote));
    };
    let proof = prove(na, &body, &scope, seen, &remote, now)?;
    let roles = parse_roles(&invite.assigned_roles_json);
    let hours = validity.min(invite.max_validity_hours);
    // Everything that costs CPU (signing, rendering) happens here, off the single writer thread;
    // the write job only decides and stores.
    let bad_role = invalid_role(&roles).cloned();
    // A certificate the write job would refuse (bad role) is never sent to a remote signer.
    let cert = match bad_role {
        Some(_) => None,
        None => new_certificate(
            &na.signer(),
            &na.genesis.network_name,
            &node_key,
            roles,
            now,
            hours,
            ("join", &req.request_id),
        )?,
    };
    let issued = cert.map(|cert| {
        let (row, response) = cert_row(&cert, &remote, None, Some(invite.max_validity_hours));
        let event = audit::Event::new(
            "certificate_issued",
            audit::details(vec![
                ("cert_id", Value::from(cert.cert_id.as_str())),
                ("invite_token_fingerprint", Value::from(token_fingerprint(&token))),
                ("node_public_key", Value::from(node_key.as_str())),
                ("remote_addr", Value::from(remote.as_str())),
                ("roles", Value::Array(cert.roles.iter().map(|r| Value::from(r.as_str())).collect())),
            ]),
            now,
        );
        (response, row, event)
    });
    let (token_w, key_w) = (token.clone(), node_key.clone());
    let outcome = na.store.write(move |c| {
        if !store_nonce(c, &proof, now)? {
            return Ok(JoinOutcome::Replay(proof));
        }
        if !invites::consume(c, &token_w, &isoformat_utc(now), &key_w)? {
            return Ok(JoinOutcome::TokenLost);
        }
        if let Some(bad) = bad_role {
            return Ok(JoinOutcome::InvalidRole(bad));
        }
        let Some((response, row, event)) = issued else {
            return Ok(JoinOutcome::BadValidity);
        };
        certs::insert(c, &row)?;
        event.write(c)?;
        Ok(JoinOutcome::Issued(response))
    })?;
    match outcome {
        JoinOutcome::Issued(response) => Ok(json_raw(201, response)),
        JoinOutcome::Replay(proof) => {
            Err(auth_failed(na, &NodeAuthError::NonceReplay(proof.nonce.clone()), &proof.scope, &remote, now))
        }
        JoinOutcome::TokenLost => Err(token_failure(na, &remote)),
        JoinOutcome::InvalidRole(role) => Err(NaError::api(400, format!("Invalid role: {role}"))),
        JoinOutcome::BadValidity => Err(bad_validity()),
    }
}

enum JoinOutcome {
    /// The 201 body: the certificate as JSON.
    Issued(Vec<u8>),
    Replay(NodeProof),
    TokenLost,
    InvalidRole(String),
    BadValidity,
}

/// An unusable token: 403, or 429 once `join-token-fail:<addr>` is exhausted (not audited).
fn token_failure(na: &Authority, remote: &str) -> NaError {
    if na.limiter.allow(&format!("join-token-fail:{remote}"), TOKEN_FAIL_LIMIT) {
        NaError::api(403, "Invalid, expired, or used invite token")
    } else {
        NaError::rate_limited()
    }
}

/// The certificate checks shared by heartbeat and renew (steps 2–4 of their tables), done in one
/// read together with the nonce lookup. Returns the row, the node key and whether the nonce was seen.
fn load_cert(
    na: &Authority,
    body: &Map,
    unknown: &'static str,
    rejected_event: &'static str,
    remote: &str,
    now: DateTime<Utc>,
) -> Result<(certs::CertRow, String, bool), NaError> {
    let (Some(cert_id), Some(node_key)) = (truthy_str(body, "cert_id"), truthy_str(body, "node_public_key")) else {
        return Err(NaError::api(400, "cert_id and node_public_key required"));
    };
    let scope = format!("node:{node_key}");
    let (row, successor, seen) = na.store.read(|c| {
        let row = certs::get(c, &cert_id)?;
        let successor = match &row {
            Some(r) if r.status != "revoked" => certs::successor(c, &r.cert_id)?,
            _ => None,
        };
        Ok((row, successor, nonce_seen(c, body, &scope)?))
    })?;
    let row = row.ok_or_else(|| NaError::api(403, unknown))?;
    if row.node_public_key != node_key {
        return Err(NaError::api(403, "Public key does not match certificate"));
    }
    // D5: a predecessor whose successor is older than the grace window is superseded.
    let superseded = successor
        .and_then(|(_, issued_at)| parse_db_time(&issued_at))
        .is_some_and(|t| now - t >= na.settings.supersede_grace);
    let reason = if row.status == "revoked" {
        Some(row.revocation_reason.clone().filter(|r| !r.is_empty()).unwrap_or_else(|| "revoked".to_string()))
    } else if superseded {
        Some("superseded".to_string())
    } else {
        None
    };
    if let Some(reason) = reason {
        reject(na, rejected_event, &row.cert_id, &reason, remote, now);
        return Err(NaError::api(403, "Certificate revoked"));
    }
    Ok((row, node_key, seen))
}

fn reject(na: &Authority, event: &'static str, cert_id: &str, reason: &str, remote: &str, now: DateTime<Utc>) {
    let d = audit::details(vec![
        ("cert_id", Value::from(cert_id)),
        ("reason", Value::from(reason)),
        ("remote_addr", Value::from(remote)),
    ]);
    audit_unproven(na, event, cert_id, reason, remote, d, now);
}

/// G3: an audited refusal that comes before the node proof (a revoked or superseded certificate, a
/// compromised key) costs the caller nothing, and the pair it needs is public (`/nodes`, the CRL).
/// Its rows go through the collapse log, and after `per_key` rows a minute for one certificate or
/// key they are only counted (`remote_addr: "*"`). The answer stays upstream's 403, and no address
/// is rate-limited for it: nodes behind one NAT with a stale certificate must not lock out the rest.
fn audit_unproven(
    na: &Authority,
    event: &'static str,
    subject: &str,
    reason: &str,
    remote: &str,
    mut details: Map,
    now: DateTime<Utc>,
) {
    let limits = &na.settings.auth_failures;
    let by_subject = na.limiter.allow(&format!("{event}:{subject}"), limits.per_key);
    let counted_as = if by_subject { remote } else { "*" };
    details.insert("remote_addr", Value::from(counted_as));
    let key = FailureKey {
        event_type: event,
        remote: counted_as.to_string(),
        subject: subject.to_string(),
        reason: reason.to_string(),
    };
    if let Some(e) = na.failure_log.note(limits, key, details, !by_subject, now, std::time::Instant::now()) {
        audit::record_events(&na.store, vec![e]);
    }
}

/// §9.2 time window (no skew allowance), as an audit reason and message.
fn window_problem(row: &certs::CertRow, now: DateTime<Utc>) -> Option<(&'static str, &'static str)> {
    if parse_db_time(&row.issued_at).is_some_and(|t| t > now) {
        return Some(("certificate_not_yet_valid", "Certificate is not yet valid"));
    }
    if parse_db_time(&row.expires_at).is_none_or(|t| t <= now) {
        return Some(("certificate_expired", "Certificate expired; re-enrollment required"));
    }
    None
}

/// `POST /heartbeat`: the steady-state hot path. The node proof (signature verification, the
/// expensive part) is computed here on the request thread; all state is read and written inside
/// one write job on the writer's always-warm connection, where the outcomes are applied in
/// upstream's order (certificate checks, then the proof, then the time window) and every
/// rejection's audit event commits with the nonce it consumed.
pub(crate) fn heartbeat(na: &Authority, req: &Request) -> Result<crate::http::Response, NaError> {
    let remote = client_addr(req, na.settings.proxy_hops);
    failure_gate(na, &remote)?;
    let body = body::lenient(req)?;
    let now = na.clock.now();
    let (Some(cert_id), Some(node_key)) = (truthy_str(&body, "cert_id"), truthy_str(&body, "node_public_key")) else {
        return Err(NaError::api(400, "cert_id and node_public_key required"));
    };
    let scope = format!("node:{node_key}");
    let proof = node::verify(&body, &scope, now, false);
    let nonce = node::nonce_of(&body);
    let status = heartbeat_status(&body)?;
    let grace = na.settings.supersede_grace;
    let rejected_cert = cert_id.clone();
    let beat =
        Heartbeat { cert_id, node_key, scope: scope.clone(), nonce, proof, status, remote: remote.clone(), grace };
    match na.store.write(move |c| beat.apply(c, now))? {
        Ok(()) => {}
        Err(Refusal::Error(e)) => return Err(e),
        Err(Refusal::Auth(e)) => return Err(auth_failed(na, &e, &scope, &remote, now)),
        Err(Refusal::Unproven(reason)) => {
            reject(na, "heartbeat_rejected", &rejected_cert, &reason, &remote, now);
            return Err(NaError::api(403, "Certificate revoked"));
        }
    }
    let mut m = Map::new();
    m.insert("ack", Value::Bool(true));
    m.insert("server_time", Value::from(isoformat_utc(now)));
    Ok(json_response(200, &Value::Object(m)))
}

/// The longest heartbeat `status` gm stores, in characters (G2).
pub(crate) const MAX_HEARTBEAT_STATUS_CHARS: usize = 128;

/// The heartbeat `status` as stored (default `unknown`; a non-string is kept as its JSON text).
/// G2: upstream stores any string and `/nodes` echoes it to everyone, so one node could make every
/// `/nodes` answer megabytes long; gm refuses a status longer than
/// [`MAX_HEARTBEAT_STATUS_CHARS`] or holding control characters with a 400, before any state is read.
fn heartbeat_status(body: &Map) -> Result<String, NaError> {
    let status = match body.get("status") {
        None | Some(Value::Null) => return Ok("unknown".to_string()),
        Some(Value::Str(s)) => s.clone(),
        Some(other) => crate::crypto::canonical::canonical_string(other),
    };
    if status.chars().count() > MAX_HEARTBEAT_STATUS_CHARS || status.chars().any(char::is_control) {
        return Err(NaError::api(
            400,
            format!("status must be at most {MAX_HEARTBEAT_STATUS_CHARS} printable characters"),
        ));
    }
    Ok(status)
}

/// Why a heartbeat write job refused: a plain error, or a node-auth failure or pre-proof rejection
/// that the route audits and counts outside the job (G3), so the collapse log is never locked on the
/// writer thread.
enum Refusal {
    Error(NaError),
    Auth(NodeAuthError),
    /// Revoked or superseded, decided before the proof; the reason is audited by the route.
    Unproven(String),
}

impl From<NaError> for Refusal {
    fn from(e: NaError) -> Refusal {
        Refusal::Error(e)
    }
}

/// A heartbeat decided inside its write job.
struct Heartbeat {
    cert_id: String,
    node_key: String,
    scope: String,
    nonce: Option<String>,
    proof: Result<NodeProof, NodeAuthError>,
    status: String,
    remote: String,
    grace: Duration,
}

impl Heartbeat {
    fn apply(mut self, c: &crate::store::Connection, now: DateTime<Utc>) -> Result<Result<(), Refusal>, StoreError> {
        let Some(row) = certs::get(c, &self.cert_id)? else {
            return Ok(Err(NaError::api(403, "Unknown certificate").into()));
        };
        if row.node_public_key != self.node_key {
            return Ok(Err(NaError::api(403, "Public key does not match certificate").into()));
        }
        let superseded = || -> Result<bool, StoreError> {
            Ok(certs::successor(c, &row.cert_id)?
                .and_then(|(_, issued_at)| parse_db_time(&issued_at))
                .is_some_and(|t| now - t >= self.grace))
        };
        let revoked = if row.status == "revoked" {
            Some(row.revocation_reason.clone().filter(|r| !r.is_empty()).unwrap_or_else(|| "revoked".to_string()))
        } else if superseded()? {
            Some("superseded".to_string())
        } else {
            None
        };
        if let Some(reason) = revoked {
            return Ok(Err(Refusal::Unproven(reason)));
        }
        let proof = match std::mem::replace(&mut self.proof, Err(NodeAuthError::MissingFields)) {
            Ok(p) => p,
            Err(e) => {
                // Upstream checks the nonce before the signature: a replayed nonce reports as such.
                let replay = matches!(e, NodeAuthError::InvalidSignature | NodeAuthError::SignatureError)
                    && self.nonce.as_deref().map(|n| nonces::exists(c, &self.scope, n)).transpose()?.unwrap_or(false);
                let e = if replay { NodeAuthError::NonceReplay(self.nonce.clone().unwrap_or_default()) } else { e };
                return Ok(Err(Refusal::Auth(e)));
            }
        };
        if !store_nonce(c, &proof, now)? {
            return Ok(Err(Refusal::Auth(NodeAuthError::NonceReplay(proof.nonce.clone()))));
        }
        if let Some((reason, message)) = window_problem(&row, now) {
            self.reject(c, "heartbeat_rejected", reason, now)?;
            return Ok(Err(NaError::api(403, message).into()));
        }
        certs::record_heartbeat(c, &row.cert_id, &isoformat_utc(now), &self.status, &self.remote)?;
        Ok(Ok(()))
    }

    fn reject(
        &self,
        c: &crate::store::Connection,
        event: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let d = audit::details(vec![
            ("cert_id", Value::from(self.cert_id.as_str())),
            ("reason", Value::from(reason)),
            ("remote_addr", Value::from(self.remote.as_str())),
        ]);
        audit::write(c, event, d, now)
    }
}

/// `POST /renew`.
pub(crate) fn renew(na: &Authority, req: &Request) -> Result<crate::http::Response, NaError> {
    let remote = client_addr(req, na.settings.proxy_hops);
    failure_gate(na, &remote)?;
    let body = body::lenient(req)?;
    let now = na.clock.now();
    let validity = int_field(&body, "validity_hours", 168).ok_or_else(bad_validity)?;
    if truthy_str(&body, "cert_id").is_none() || truthy_str(&body, "node_public_key").is_none() {
        return Err(NaError::api(400, "cert_id and node_public_key required"));
    }
    if validity <= 0 {
        return Err(bad_validity());
    }
    let (row, node_key, seen) =
        load_cert(na, &body, "Unknown certificate. Cannot renew.", "renewal_rejected", &remote, now)?;
    let proof = prove(na, &body, &format!("node:{node_key}"), seen, &remote, now)?;
    let stored_roles = parse_roles(&row.roles_json);
    let roles_change = match body.get("roles") {
        None => false,
        Some(Value::Array(items)) => {
            let mut asked: Vec<String> =
                items.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_default()).collect();
            let all_strings = items.iter().all(|v| v.as_str().is_some());
            let mut have = stored_roles.clone();
            asked.sort();
            have.sort();
            !all_strings || asked != have
        }
        Some(_) => true,
    };
    let cap = row.max_validity_hours.unwrap_or_else(|| legacy_cap(&row));
    let hours = validity.min(cap);
    let window = window_problem(&row, now);
    let (old_id, remote_w, max_hours) = (row.cert_id.clone(), remote.clone(), row.max_validity_hours);
    // A renewal the write job rejects (window, role change) is never sent to a remote signer.
    let cert = match window.is_some() || roles_change {
        true => None,
        false => new_certificate(
            &na.signer(),
            &na.genesis.network_name,
            &node_key,
            stored_roles,
            now,
            hours,
            ("renew", &req.request_id),
        )?,
    };
    let issued = cert.map(|cert| {
        let (new_row, response) = cert_row(&cert, &remote, Some(old_id.clone()), max_hours);
        let event = audit::Event::new(
            "certificate_renewed",
            audit::details(vec![
                ("new_cert_id", Value::from(cert.cert_id.as_str())),
                ("node_public_key", Value::from(node_key.as_str())),
                ("old_cert_id", Value::from(old_id.as_str())),
            ]),
            now,
        );
        (response, new_row, event)
    });
    let outcome = na.store.write(move |c| {
        if !store_nonce(c, &proof, now)? {
            return Ok(RenewOutcome::Replay(proof));
        }
        if let Some((reason, message)) = window {
            let d = audit::details(vec![
                ("cert_id", Value::from(old_id.as_str())),
                ("reason", Value::from(reason)),
                ("remote_addr", Value::from(remote_w.as_str())),
            ]);
            audit::write(c, "renewal_rejected", d, now)?;
            return Ok(RenewOutcome::Rejected(message));
        }
        if roles_change {
            return Ok(RenewOutcome::Rejected("Role changes are not permitted during renewal"));
        }
        let Some((response, new_row, event)) = issued else {
            return Ok(RenewOutcome::BadValidity);
        };
        certs::insert(c, &new_row)?;
        event.write(c)?;
        Ok(RenewOutcome::Issued(response))
    })?;
    match outcome {
        RenewOutcome::Issued(response) => Ok(json_raw(201, response)),
        RenewOutcome::Replay(proof) => {
            Err(auth_failed(na, &NodeAuthError::NonceReplay(proof.nonce.clone()), &proof.scope, &remote, now))
        }
        RenewOutcome::Rejected(message) => Err(NaError::api(403, message)),
        RenewOutcome::BadValidity => Err(bad_validity()),
    }
}

enum RenewOutcome {
    /// The 201 body: the certificate as JSON.
    Issued(Vec<u8>),
    Replay(NodeProof),
    Rejected(&'static str),
    BadValidity,
}

/// Rows older than migration 002 carry no cap: `max(1, ceil((expires_at − issued_at) / 1 h))`.
fn legacy_cap(row: &certs::CertRow) -> i64 {
    match (parse_db_time(&row.issued_at), parse_db_time(&row.expires_at)) {
        (Some(i), Some(e)) => {
            let micros = (e - i).num_microseconds().unwrap_or(i64::MAX);
            let hour = 3_600_000_000;
            (micros.div_euclid(hour) + i64::from(micros.rem_euclid(hour) > 0)).max(1)
        }
        _ => 1,
    }
}
