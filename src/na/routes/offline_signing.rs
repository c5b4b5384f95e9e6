//! gm-extension admin routes of the offline signing round trip (customer-held custody,
//! `docs/custody.md` "Offline signing round trip"): trust material the customer's policy keeps
//! manual is prepared here, signed offline by the NA key holder (`gm sign`), and published back.
//!
//! * `POST /admin/gm/recognition-treaties/prepare` takes the body of `POST
//!   /admin/recognition-treaties` and answers the signing request: exactly the unsigned treaty the
//!   issue route would have signed (same checks, same fields). It stores nothing.
//! * `POST /admin/gm/recognition-treaties/publish` takes `{"treaty": <signed treaty>}`, verifies
//!   every signature against the genesis NA key (not a key the request names), validates the treaty
//!   as issue would, and stores it through the issue route's own store path, with an audit event
//!   naming the operator and saying it was signed offline.
//!
//! * `POST /admin/gm/policy/prepare` and `POST /admin/gm/policy/publish` do the same for the policy
//!   manifest of `POST /admin/policy`: prepare answers the unsigned manifest, publish takes
//!   `{"policy": <signed manifest>}`, verifies it against the genesis NA key, refuses a stored
//!   policy id, and activates it as the policy route does.
//!
//! All are operator-signed like every admin route. Not upstream routes: an upstream NA answers 404.
//! Must not sign anything with the NA's own key.

use chrono::{DateTime, Utc};

use crate::crypto::keys::PublicKey;
use crate::crypto::signature::{check_signatures, VerifyRule};
use crate::http::{Request, Response};
use crate::model::policy::PolicyManifest;
use crate::model::signing_request::{SigningRequest, Stage};
use crate::model::timestamp::isoformat_utc;
use crate::model::treaty::RecognitionTreaty;
use crate::model::SignedObject;

use super::super::authority::{json_response, Authority};
use super::super::body;
use super::super::error::NaError;
use super::super::verify_limits::SignatureWork;
use super::admin::{admit, admit_strict, build_policy, store_policy};
use super::enroll::invalid_role;
use super::trust::{build_treaty, store_treaty};

/// `POST /admin/gm/recognition-treaties/prepare`.
pub(crate) fn prepare_treaty(na: &Authority, req: &Request, path: &str) -> Result<Response, NaError> {
    let (body, _operator, _remote, now) = admit_strict(na, req, path)?;
    let treaty = build_treaty(na, &body, now)?;
    Ok(signing_request(na, &treaty, now))
}

/// `POST /admin/gm/policy/prepare` (the body of `POST /admin/policy`, parsed the same lenient way).
pub(crate) fn prepare_policy(na: &Authority, req: &Request, path: &str) -> Result<Response, NaError> {
    let body = body::lenient(req)?;
    let (_operator, _remote, now) = admit(na, req, path, &body)?;
    let manifest = build_policy(na, &body, now).ok_or_else(|| NaError::api(400, "Invalid policy manifest"))?;
    Ok(signing_request(na, &manifest, now))
}

/// The signing request of an unsigned `object` this NA prepared at `now`.
fn signing_request<T: SignedObject>(na: &Authority, object: &T, now: DateTime<Utc>) -> Response {
    let request = SigningRequest {
        stage: Stage::Request,
        kind: T::KIND,
        network_name: na.genesis.network_name.clone(),
        na_url: None,
        na_public_key: na.genesis.network_authority.public_key.clone(),
        na_key_id: na.settings.na_key_id.clone(),
        created_at: isoformat_utc(now),
        object: object.to_value(),
    };
    json_response(200, &request.to_value())
}

/// `POST /admin/gm/recognition-treaties/publish`.
pub(crate) fn publish_treaty(na: &Authority, req: &Request, path: &str) -> Result<Response, NaError> {
    let (body, operator, _remote, now) = admit_strict(na, req, path)?;
    let invalid = || NaError::api(400, "Invalid recognition treaty");
    let treaty =
        body.get("treaty").ok_or_else(invalid).and_then(|v| RecognitionTreaty::from_value(v).map_err(|_| invalid()))?;
    let key_id = check_offline_signature(na, &treaty, "Recognition treaty")?;
    check_issuable(na, &treaty, now)?;
    store_treaty(na, &treaty, &operator.key_id, Some(&key_id), now)?;
    Ok(json_response(201, &treaty.to_value()))
}

/// `POST /admin/gm/policy/publish`.
pub(crate) fn publish_policy(na: &Authority, req: &Request, path: &str) -> Result<Response, NaError> {
    let (body, operator, _remote, now) = admit_strict(na, req, path)?;
    let invalid = || NaError::api(400, "Invalid policy manifest");
    let manifest =
        body.get("policy").ok_or_else(invalid).and_then(|v| PolicyManifest::from_value(v).map_err(|_| invalid()))?;
    let key_id = check_offline_signature(na, &manifest, "Policy")?;
    store_policy(na, &manifest, &operator.key_id, Some(&key_id), now)?;
    Ok(json_response(201, &manifest.to_value()))
}

/// Every signature of `object` (`what`, for messages) must verify with the genesis NA key (a key
/// the request names proves nothing); answers the first signature's key id. The work is bounded
/// like the public verify routes' (G1).
fn check_offline_signature<T: SignedObject>(na: &Authority, object: &T, what: &str) -> Result<String, NaError> {
    let genesis_text = na.genesis.network_authority.public_key.clone();
    let genesis_key =
        PublicKey::from_b64(&genesis_text).map_err(|e| NaError::Internal { detail: format!("genesis NA key: {e}") })?;
    let first = object.signatures().first().ok_or_else(|| NaError::api(400, format!("{what} is not signed")))?;
    let sigs: Vec<&str> = object.signatures().iter().map(|s| s.sig.as_str()).collect();
    let keys = [genesis_text];
    na.settings.verify_limits.admit(&[SignatureWork { signatures: &sigs, keys: &keys }])?;
    let check = check_signatures(&object.canonical_bytes(), &sigs, &[genesis_key], VerifyRule::All);
    if !check.is_valid() {
        return Err(NaError::api(400, format!("{what} signature does not verify with this NA's genesis key")));
    }
    Ok(first.key_id.clone())
}

/// What issue guarantees of a treaty it builds: this sovereign issues it, it is active, its roles
/// are known, and it has not expired.
fn check_issuable(
    na: &Authority,
    treaty: &RecognitionTreaty,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), NaError> {
    if treaty.issuer_sovereign_id != na.genesis.network_name {
        return Err(NaError::api(400, "issuer_sovereign_id must match this sovereign"));
    }
    if treaty.status != "active" {
        return Err(NaError::api(400, "Recognition treaty status must be active"));
    }
    if let Some(bad) = invalid_role(&treaty.scope.allowed_roles) {
        return Err(NaError::api(400, format!("Invalid role: {bad}")));
    }
    if treaty.expires_at.to_utc() <= now {
        return Err(NaError::api(400, "Recognition treaty has expired"));
    }
    Ok(())
}
