//! Renewing and replacing a treaty: upstream's CLI compositions of §11.1 (there is no server
//! route). Read the old treaty, refuse if it is revoked, issue a successor (the old terms with the
//! given ones laid over), then revoke the old treaty with `renewed_by:<new id>` or
//! `replaced_by:<new id>`.
//!
//! This lives in `client/`, not `cli/`, so the sequence and its partial failure (successor issued,
//! old treaty still active) can be tested against a fake NA without a process, and reused by any
//! caller holding an [`AdminClient`]. Flag parsing, confirmation and printing stay in
//! `cli/treaty.rs`; the plan's steps are described here, next to the code that carries them out.

use std::fmt;

use crate::json::{Map, Value};
use crate::model::fields::str_array;
use crate::model::treaty::RecognitionTreaty;

use super::admin::AdminClient;
use super::treaty::{fetch_row, issue, revoke, IssueRequest};
use super::ClientError;

/// Keys and scope parts given by the operator; empty means "not given".
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Terms {
    /// Subject NA public keys, base64, checked and deduplicated.
    pub subject_public_keys: Vec<String>,
    /// Allowed roles, each with its `role:` prefix.
    pub allowed_roles: Option<Vec<String>>,
    /// Accepted attestation statuses.
    pub accepted_statuses: Option<Vec<String>>,
}

impl Terms {
    /// Whether no key or scope part was given.
    pub(crate) fn is_unchanged(&self) -> bool {
        self.subject_public_keys.is_empty() && self.allowed_roles.is_none() && self.accepted_statuses.is_none()
    }

    /// The scope object of an issue request: only the parts given, or `None`.
    pub(crate) fn scope_patch(&self) -> Option<Value> {
        let mut scope = Map::new();
        if let Some(roles) = &self.allowed_roles {
            scope.insert("allowed_roles", str_array(roles));
        }
        if let Some(statuses) = &self.accepted_statuses {
            scope.insert("accepted_statuses", str_array(statuses));
        }
        (!scope.is_empty()).then_some(Value::Object(scope))
    }
}

/// Which composition of §11.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SuccessionKind {
    /// Same terms, new validity.
    Renew,
    /// New keys or scope.
    Replace,
}

impl SuccessionKind {
    /// `renew` or `replace`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SuccessionKind::Renew => "renew",
            SuccessionKind::Replace => "replace",
        }
    }

    /// The revocation reason prefix naming the successor.
    pub(crate) fn reason_prefix(self) -> &'static str {
        match self {
            SuccessionKind::Renew => "renewed_by:",
            SuccessionKind::Replace => "replaced_by:",
        }
    }
}

/// A renew or replace: the old treaty, the successor's validity and the changed terms.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Succession {
    /// Renew or replace.
    pub kind: SuccessionKind,
    /// The treaty to succeed.
    pub old_id: String,
    /// The successor's validity in hours.
    pub validity_hours: u32,
    /// The terms laid over the old ones.
    pub terms: Terms,
}

/// What a renew or replace did once the successor was issued.
#[derive(Debug)]
pub(crate) enum SuccessionOutcome {
    /// Successor issued, old treaty revoked.
    Done {
        /// The successor as the NA signed it.
        successor: RecognitionTreaty,
        /// The revocation reason of the old treaty.
        reason: String,
    },
    /// Successor issued, but the old treaty is still active.
    RevokeFailed {
        /// The successor as the NA signed it.
        successor: RecognitionTreaty,
        /// The revocation reason that could not be recorded.
        reason: String,
        /// Why the revoke failed.
        error: ClientError,
    },
}

/// Why a renew or replace issued nothing.
#[derive(Debug)]
pub(crate) enum SuccessionError {
    /// The old treaty is already revoked.
    AlreadyRevoked {
        /// Renew or replace.
        kind: SuccessionKind,
        /// The old treaty.
        treaty_id: String,
        /// Its revocation reason, when stored.
        reason: Option<String>,
    },
    /// Reading the old treaty or issuing the successor failed.
    Client(ClientError),
}

impl fmt::Display for SuccessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SuccessionError::AlreadyRevoked { kind, treaty_id, reason } => write!(
                f,
                "refusing to {} treaty {treaty_id}: it is already revoked (reason {})",
                kind.name(),
                reason.as_deref().unwrap_or("unspecified")
            ),
            SuccessionError::Client(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SuccessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SuccessionError::AlreadyRevoked { .. } => None,
            SuccessionError::Client(e) => Some(e),
        }
    }
}

impl From<ClientError> for SuccessionError {
    fn from(e: ClientError) -> SuccessionError {
        SuccessionError::Client(e)
    }
}

impl Succession {
    /// The successor's issue request: the old treaty's terms with the given ones laid over.
    pub(crate) fn successor_request(&self, old: &RecognitionTreaty) -> IssueRequest {
        let mut scope = old.scope.clone();
        if let Some(roles) = &self.terms.allowed_roles {
            scope.allowed_roles.clone_from(roles);
        }
        if let Some(statuses) = &self.terms.accepted_statuses {
            scope.accepted_statuses.clone_from(statuses);
        }
        let keys = if self.terms.subject_public_keys.is_empty() {
            old.subject_public_keys.clone()
        } else {
            self.terms.subject_public_keys.clone()
        };
        IssueRequest {
            issuer_sovereign_id: Some(old.issuer_sovereign_id.clone()),
            subject_sovereign_id: old.subject_sovereign_id.clone(),
            subject_public_keys: keys,
            scope: Some(scope.to_value()),
            validity_hours: self.validity_hours,
            metadata: (!old.metadata.is_empty()).then(|| old.metadata.clone()),
        }
    }

    /// The steps, for `--dry-run`.
    pub(crate) fn steps(&self) -> Vec<String> {
        let mut changes = Vec::new();
        if !self.terms.subject_public_keys.is_empty() {
            changes.push(format!("subject keys {}", self.terms.subject_public_keys.join(", ")));
        }
        if let Some(roles) = &self.terms.allowed_roles {
            changes.push(format!("allowed roles {}", roles.join(", ")));
        }
        if let Some(statuses) = &self.terms.accepted_statuses {
            changes.push(format!("accepted statuses {}", statuses.join(", ")));
        }
        let terms = if changes.is_empty() {
            "the same issuer, subject, keys, scope and metadata".to_string()
        } else {
            format!("{}; everything else copied from the old treaty", changes.join("; "))
        };
        vec![
            format!("read treaty {} (GET /recognition-treaties/{}); stop if it is revoked", self.old_id, self.old_id),
            format!("issue a successor valid {} h with {terms}", self.validity_hours),
            format!("revoke treaty {} with reason {}<new treaty id>", self.old_id, self.kind.reason_prefix()),
        ]
    }

    /// Reads the old treaty, issues the successor, revokes the old one. A failed revoke after the
    /// successor was issued is an outcome, not an error: both treaties are active and the caller
    /// must say so.
    pub(crate) fn carry_out(&self, admin: &AdminClient<'_>) -> Result<SuccessionOutcome, SuccessionError> {
        let row = fetch_row(admin.na(), &self.old_id)?;
        if row.status == "revoked" {
            return Err(SuccessionError::AlreadyRevoked {
                kind: self.kind,
                treaty_id: self.old_id.clone(),
                reason: row.revocation_reason,
            });
        }
        let successor = issue(admin, &self.successor_request(&row.treaty))?;
        let reason = format!("{}{}", self.kind.reason_prefix(), successor.treaty_id);
        Ok(match revoke(admin, &self.old_id, &reason) {
            Ok(()) => SuccessionOutcome::Done { successor, reason },
            Err(error) => SuccessionOutcome::RevokeFailed { successor, reason, error },
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::admin::Operator;
    use super::super::fake_na::{Answer, FakeNa, Recorded};
    use super::super::treaty::tests::{row, subject_key, treaty, NEW_ID, OLD_ID, OPERATOR_SEED};
    use super::super::{ClientOptions, NaClient};
    use super::*;
    use crate::client::admin::SigVersion;
    use crate::clock::SystemClock;
    use crate::crypto::canonical::canonical_string;
    use crate::crypto::keys::SigningKey;
    use crate::model::SignedObject;

    fn operator() -> Operator {
        Operator { key: SigningKey::from_seed_b64(OPERATOR_SEED).unwrap(), key_id: "operator-1".to_string() }
    }

    /// Carries `plan` out against the NA at `url`, signing as the fixture operator with version 1.
    fn carry_out(plan: &Succession, url: &str) -> Result<SuccessionOutcome, SuccessionError> {
        let na = NaClient::new(url, ClientOptions::default()).unwrap();
        let operator = operator();
        plan.carry_out(&AdminClient::new(&na, &operator, SigVersion::V1, &SystemClock))
    }

    fn body_of(seen: &Recorded) -> String {
        String::from_utf8(seen.body.clone()).unwrap()
    }

    /// Renew `OLD_ID` for 720 hours with unchanged terms (shared with the cli rendering tests).
    pub(crate) fn renew_plan() -> Succession {
        Succession {
            kind: SuccessionKind::Renew,
            old_id: OLD_ID.to_string(),
            validity_hours: 720,
            terms: Terms::default(),
        }
    }

    #[test]
    fn renew_issues_a_copy_then_revokes_the_old_treaty_as_renewed_by_the_new_one() {
        let na = FakeNa::start(vec![
            Answer::json(200, &row(OLD_ID, "active")),
            Answer::json(201, &canonical_string(&treaty(NEW_ID))),
            Answer::json(200, &format!("{{\"status\":\"revoked\",\"treaty_id\":\"{OLD_ID}\"}}")),
        ]);
        let outcome = carry_out(&renew_plan(), &na.url()).unwrap();
        match &outcome {
            SuccessionOutcome::Done { successor, reason } => {
                assert_eq!(successor.treaty_id, NEW_ID);
                assert_eq!(reason, &format!("renewed_by:{NEW_ID}"));
            }
            other => panic!("expected a finished renewal, got {other:?}"),
        }
        let seen = na.finish();
        let calls: Vec<(&str, &str)> = seen.iter().map(|r| (r.method.as_str(), r.target.as_str())).collect();
        assert_eq!(
            calls,
            vec![
                ("GET", format!("/recognition-treaties/{OLD_ID}").as_str()),
                ("POST", "/admin/recognition-treaties"),
                ("POST", format!("/admin/recognition-treaties/{OLD_ID}/revoke").as_str()),
            ]
        );
        assert_eq!(
            body_of(&seen[1]),
            format!(
                "{{\"issuer_sovereign_id\":\"alpha\",\"metadata\":{{\"ticket\":\"CHG-42\"}},\"scope\":{{\"accepted_statuses\":[\"active\"],\"allowed_roles\":[\"role:client\"],\"claims\":{{\"tier\":\"gold\"}}}},\"subject_public_keys\":[\"{}\"],\"subject_sovereign_id\":\"beta\",\"validity_hours\":720}}",
                subject_key()
            )
        );
        assert_eq!(body_of(&seen[2]), format!("{{\"reason\":\"renewed_by:{NEW_ID}\"}}"));
        assert!(seen[1].header("x-admin-signature").is_some());
        assert!(seen[2].header("x-admin-signature").is_some());
    }

    #[test]
    fn replace_lays_new_terms_over_the_old_ones_and_names_the_successor() {
        let new_key = SigningKey::from_seed(&[9u8; 32]).public_key().to_b64();
        let plan = Succession {
            kind: SuccessionKind::Replace,
            old_id: OLD_ID.to_string(),
            validity_hours: 168,
            terms: Terms {
                subject_public_keys: vec![new_key.clone()],
                allowed_roles: Some(vec!["role:anchor".to_string()]),
                accepted_statuses: None,
            },
        };
        let old = RecognitionTreaty::from_value(&treaty(OLD_ID)).unwrap();
        let body = canonical_string(&plan.successor_request(&old).body());
        assert_eq!(
            body,
            format!(
                "{{\"issuer_sovereign_id\":\"alpha\",\"metadata\":{{\"ticket\":\"CHG-42\"}},\"scope\":{{\"accepted_statuses\":[\"active\"],\"allowed_roles\":[\"role:anchor\"],\"claims\":{{\"tier\":\"gold\"}}}},\"subject_public_keys\":[\"{new_key}\"],\"subject_sovereign_id\":\"beta\",\"validity_hours\":168}}"
            )
        );
        assert_eq!(plan.kind.reason_prefix(), "replaced_by:");
    }

    #[test]
    fn renew_refuses_a_revoked_treaty_and_issues_nothing() {
        let na = FakeNa::start(vec![Answer::json(200, &row(OLD_ID, "revoked"))]);
        let err = carry_out(&renew_plan(), &na.url()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("refusing to renew treaty {OLD_ID}: it is already revoked (reason unspecified)")
        );
        assert_eq!(na.finish().len(), 1);
    }
}
