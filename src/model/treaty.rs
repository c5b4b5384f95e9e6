//! RecognitionTreaty (`na-wire.md` §7.9): a directed edge issuer → subject, signed by the issuing
//! (accepting) NA. Always signed as `active`.

use crate::json::{Map, Value};

use super::attestation::STATUSES;
use super::fields::{object, str_array, time_value, Fields};
use super::timestamp::ModelTime;
use super::{Kind, ModelError, Signature, SignedObject};

const MODEL: &str = "RecognitionTreaty";

/// What a treaty accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct TreatyScope {
    /// Allowed roles; empty = any.
    pub allowed_roles: Vec<String>,
    /// Accepted attestation statuses.
    pub accepted_statuses: Vec<String>,
    /// Free-form claims.
    pub claims: Map,
}

impl TreatyScope {
    /// Reads a scope object (all fields defaulted).
    pub(crate) fn from_fields(s: &Fields<'_>) -> Result<TreatyScope, ModelError> {
        let accepted_statuses = s.str_list_or("accepted_statuses", &["active"])?;
        if let Some(bad) = accepted_statuses.iter().position(|st| !STATUSES.contains(&st.as_str())) {
            return Err(s.invalid(&format!("accepted_statuses.{bad}"), "must be one of active, suspended, revoked"));
        }
        Ok(TreatyScope {
            allowed_roles: s.str_list_or("allowed_roles", &[])?,
            accepted_statuses,
            claims: s.dict_or_empty("claims")?,
        })
    }

    fn default_scope() -> TreatyScope {
        TreatyScope { allowed_roles: Vec::new(), accepted_statuses: vec!["active".to_string()], claims: Map::new() }
    }

    /// Declaration-order rendering.
    pub(crate) fn to_value(&self) -> Value {
        Value::Object(object(vec![
            ("allowed_roles", str_array(&self.allowed_roles)),
            ("accepted_statuses", str_array(&self.accepted_statuses)),
            ("claims", Value::Object(self.claims.clone())),
        ]))
    }
}

/// A recognition treaty.
#[derive(Debug, Clone, PartialEq)]
pub struct RecognitionTreaty {
    /// UUID4.
    pub treaty_id: String,
    /// The accepting sovereign.
    pub issuer_sovereign_id: String,
    /// The recognised sovereign.
    pub subject_sovereign_id: String,
    /// The subject's keys (at least one).
    pub subject_public_keys: Vec<String>,
    /// What is accepted.
    pub scope: TreatyScope,
    /// `active`, `suspended` or `revoked`.
    pub status: String,
    /// Issue time.
    pub issued_at: ModelTime,
    /// Start of validity.
    pub valid_from: ModelTime,
    /// End of validity.
    pub expires_at: ModelTime,
    /// NA key id.
    pub issued_by: String,
    /// Free-form metadata.
    pub metadata: Map,
    /// NA signatures.
    pub signatures: Vec<Signature>,
}

impl SignedObject for RecognitionTreaty {
    const KIND: Kind = Kind::Treaty;

    fn from_value(value: &Value) -> Result<Self, ModelError> {
        let f = Fields::of(MODEL, value)?;
        let scope = match f.object_or_empty("scope")? {
            Some(s) => TreatyScope::from_fields(&s)?,
            None => TreatyScope::default_scope(),
        };
        let t = RecognitionTreaty {
            treaty_id: f.str("treaty_id")?,
            issuer_sovereign_id: f.str("issuer_sovereign_id")?,
            subject_sovereign_id: f.str("subject_sovereign_id")?,
            subject_public_keys: f.str_list("subject_public_keys")?,
            scope,
            status: f.enum_or("status", &STATUSES, "active")?,
            issued_at: f.time("issued_at")?,
            valid_from: f.time("valid_from")?,
            expires_at: f.time("expires_at")?,
            issued_by: f.str("issued_by")?,
            metadata: f.dict_or_empty("metadata")?,
            signatures: f.signatures()?,
        };
        if t.subject_public_keys.is_empty() {
            return Err(f.invalid("subject_public_keys", "must contain at least one key"));
        }
        if t.expires_at.to_utc() <= t.valid_from.to_utc() {
            return Err(f.invalid("expires_at", "must be after valid_from"));
        }
        if t.issued_at.to_utc() > t.expires_at.to_utc() {
            return Err(f.invalid("issued_at", "must not be after expires_at"));
        }
        Ok(t)
    }

    fn body(&self) -> Map {
        object(vec![
            ("treaty_id", Value::Str(self.treaty_id.clone())),
            ("issuer_sovereign_id", Value::Str(self.issuer_sovereign_id.clone())),
            ("subject_sovereign_id", Value::Str(self.subject_sovereign_id.clone())),
            ("subject_public_keys", str_array(&self.subject_public_keys)),
            ("scope", self.scope.to_value()),
            ("status", Value::Str(self.status.clone())),
            ("issued_at", time_value(&self.issued_at)),
            ("valid_from", time_value(&self.valid_from)),
            ("expires_at", time_value(&self.expires_at)),
            ("issued_by", Value::Str(self.issued_by.clone())),
            ("metadata", Value::Object(self.metadata.clone())),
        ])
    }

    fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    fn signatures_mut(&mut self) -> &mut Vec<Signature> {
        &mut self.signatures
    }
}
