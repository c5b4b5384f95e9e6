//! Upstream's trust decisions (`na-wire.md` §11.2): a membership attestation under a recognition
//! policy, a recognition treaty, and an attestation through a treaty. Pure functions of their
//! inputs and `now`; the first failing step decides the reason code. Keys that are not valid
//! Ed25519 keys simply do not verify (`deviations.md` D17), and offset-less times compare as UTC.

use chrono::{DateTime, Duration, Utc};

use crate::crypto::keys::PublicKey;

use super::attestation::MembershipAttestation;
use super::feed::RevocationFeed;
use super::recognition::{RecognitionPolicy, RecognizedIssuer};
use super::timestamp::ModelTime;
use super::treaty::RecognitionTreaty;
use super::SignedObject;

/// Clock skew allowed either side of a validity window (inclusive).
const SKEW_MINUTES: i64 = 5;

/// An attestation decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationDecision {
    /// Accepted?
    pub accepted: bool,
    /// `accepted` or the failing step's reason code.
    pub reason: &'static str,
}

/// A treaty decision.
pub(crate) type TreatyDecision = AttestationDecision;

/// A verify-with-treaty decision: `accepted`, `treaty_<reason>` or `attestation_<reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithTreatyDecision {
    /// Accepted?
    pub accepted: bool,
    /// The reason code.
    pub reason: String,
}

fn decided(reason: &'static str) -> AttestationDecision {
    AttestationDecision { accepted: reason == "accepted", reason }
}

fn within_window(valid_from: &ModelTime, expires_at: &ModelTime, now: DateTime<Utc>) -> bool {
    let skew = Duration::minutes(SKEW_MINUTES);
    valid_from.to_utc() - skew <= now && now <= expires_at.to_utc() + skew
}

/// The usable keys of a posted list, each once (a duplicate would only repeat a verification).
fn keys(texts: &[String]) -> Vec<PublicKey> {
    let mut out: Vec<PublicKey> = Vec::with_capacity(texts.len());
    for key in texts.iter().filter_map(|k| PublicKey::from_b64(k).ok()) {
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

/// `verify_membership_attestation`: attestation `a` under policy `p` at `now`.
pub fn verify_attestation(a: &MembershipAttestation, p: &RecognitionPolicy, now: DateTime<Utc>) -> AttestationDecision {
    let Some(issuer) = p.recognized_issuers.iter().find(|i| i.sovereign_id == a.issuer_sovereign_id) else {
        return decided("unknown_issuer");
    };
    verify_with_issuer(a, issuer, &p.revoked_attestation_ids, now)
}

fn verify_with_issuer(
    a: &MembershipAttestation,
    issuer: &RecognizedIssuer,
    revoked: &[String],
    now: DateTime<Utc>,
) -> AttestationDecision {
    if revoked.contains(&a.attestation_id) {
        return decided("locally_revoked");
    }
    if !issuer.accepted_statuses.contains(&a.status) {
        return decided("bad_status");
    }
    if a.status != "active" || !within_window(&a.valid_from, &a.expires_at, now) {
        return decided("outside_validity_window");
    }
    if !issuer.allowed_roles.is_empty() && !a.roles.iter().all(|r| issuer.allowed_roles.contains(r)) {
        return decided("role_not_allowed");
    }
    if a.signatures.is_empty() {
        return decided("missing_signature");
    }
    if a.check_signatures(&keys(&issuer.public_keys)).is_valid() {
        decided("accepted")
    } else {
        decided("invalid_signature")
    }
}

/// What a treaty is checked against.
#[derive(Debug, Clone, Default)]
pub struct TreatyExpectations<'a> {
    /// The issuer keys that may have signed it.
    pub keys: &'a [String],
    /// Expected issuer (ignored when empty).
    pub issuer: Option<&'a str>,
    /// Expected subject (ignored when empty).
    pub subject: Option<&'a str>,
    /// Locally revoked treaty ids.
    pub revoked: &'a [String],
}

/// `verify_recognition_treaty`.
pub fn verify_treaty(t: &RecognitionTreaty, e: &TreatyExpectations<'_>, now: DateTime<Utc>) -> TreatyDecision {
    if e.issuer.is_some_and(|i| !i.is_empty() && i != t.issuer_sovereign_id) {
        return decided("wrong_issuer");
    }
    if e.subject.is_some_and(|s| !s.is_empty() && s != t.subject_sovereign_id) {
        return decided("wrong_subject");
    }
    if e.revoked.contains(&t.treaty_id) {
        return decided("locally_revoked");
    }
    if t.status != "active" {
        return decided("bad_status");
    }
    if !within_window(&t.valid_from, &t.expires_at, now) {
        return decided("outside_validity_window");
    }
    if t.signatures.is_empty() {
        return decided("missing_signature");
    }
    if t.check_signatures(&keys(e.keys)).is_valid() {
        decided("accepted")
    } else {
        decided("invalid_signature")
    }
}

/// `verify_attestation_with_treaty`: the treaty (signed by one of `treaty_keys`) must recognise
/// the attestation's issuer; the attestation is then checked under a policy built from the treaty,
/// with `imported_revocations` (feed-imported ids for that issuer) as the revoked set.
pub fn verify_with_treaty(
    a: &MembershipAttestation,
    t: &RecognitionTreaty,
    treaty_keys: &[String],
    revoked_treaties: &[String],
    imported_revocations: &[String],
    now: DateTime<Utc>,
) -> WithTreatyDecision {
    let expectations = TreatyExpectations {
        keys: treaty_keys,
        issuer: None,
        subject: Some(&a.issuer_sovereign_id),
        revoked: revoked_treaties,
    };
    let treaty = verify_treaty(t, &expectations, now);
    if !treaty.accepted {
        return WithTreatyDecision { accepted: false, reason: format!("treaty_{}", treaty.reason) };
    }
    let policy = RecognitionPolicy {
        local_sovereign_id: t.issuer_sovereign_id.clone(),
        recognized_issuers: vec![RecognizedIssuer {
            sovereign_id: t.subject_sovereign_id.clone(),
            public_keys: t.subject_public_keys.clone(),
            allowed_roles: t.scope.allowed_roles.clone(),
            accepted_statuses: t.scope.accepted_statuses.clone(),
        }],
        revoked_attestation_ids: imported_revocations.to_vec(),
    };
    let att = verify_attestation(a, &policy, now);
    if att.accepted {
        WithTreatyDecision { accepted: true, reason: "accepted".to_string() }
    } else {
        WithTreatyDecision { accepted: false, reason: format!("attestation_{}", att.reason) }
    }
}

/// `verify_sovereign_revocation_feed` (`na-wire.md` §12.2 steps 4–7): `keys` are the issuer keys
/// the importer trusts (non-empty; the route answers `missing_issuer_public_keys` before this),
/// `latest_sequence` the highest sequence accepted before for this issuer (`None` for the first
/// import, which has no floor).
pub fn verify_feed(
    feed: &RevocationFeed,
    keys: &[String],
    expected_issuer: Option<&str>,
    latest_sequence: Option<i64>,
) -> AttestationDecision {
    if expected_issuer.is_some_and(|i| !i.is_empty() && i != feed.issuer_sovereign_id) {
        return decided("wrong_issuer");
    }
    if latest_sequence.is_some_and(|l| feed.sequence <= l) {
        return decided("stale_sequence");
    }
    if feed.signatures.is_empty() {
        return decided("missing_signature");
    }
    if feed.check_signatures(&self::keys(keys)).is_valid() {
        decided("accepted")
    } else {
        decided("invalid_signature")
    }
}
