//! MembershipAttestation (`na-wire.md` §7.7): the NA states that a subject is a member with roles.
//! Always signed as `active`; revocation is stored beside the object, never in it.

use crate::json::{Map, Value};

use super::fields::{object, opt_str_value, str_array, time_value, Fields};
use super::timestamp::ModelTime;
use super::{Kind, ModelError, Signature, SignedObject};

const MODEL: &str = "MembershipAttestation";

/// Statuses an attestation or treaty may carry.
pub(crate) const STATUSES: [&str; 3] = ["active", "suspended", "revoked"];

/// A membership attestation.
#[derive(Debug, Clone, PartialEq)]
pub struct MembershipAttestation {
    /// UUID4.
    pub attestation_id: String,
    /// Issuing sovereign.
    pub issuer_sovereign_id: String,
    /// Subject id.
    pub subject_id: String,
    /// Subject public key, if any.
    pub subject_public_key: Option<String>,
    /// Roles.
    pub roles: Vec<String>,
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
    /// Free-form claims.
    pub claims: Map,
    /// NA signatures.
    pub signatures: Vec<Signature>,
}

impl SignedObject for MembershipAttestation {
    const KIND: Kind = Kind::Attestation;

    fn from_value(value: &Value) -> Result<Self, ModelError> {
        let f = Fields::of(MODEL, value)?;
        let a = MembershipAttestation {
            attestation_id: f.str("attestation_id")?,
            issuer_sovereign_id: f.str("issuer_sovereign_id")?,
            subject_id: f.str("subject_id")?,
            subject_public_key: f.opt_str("subject_public_key")?,
            roles: f.str_list_or("roles", &[])?,
            status: f.enum_or("status", &STATUSES, "active")?,
            issued_at: f.time("issued_at")?,
            valid_from: f.time("valid_from")?,
            expires_at: f.time("expires_at")?,
            issued_by: f.str("issued_by")?,
            claims: f.dict_or_empty("claims")?,
            signatures: f.signatures()?,
        };
        if a.expires_at.to_utc() <= a.valid_from.to_utc() {
            return Err(f.invalid("expires_at", "must be after valid_from"));
        }
        if a.issued_at.to_utc() > a.expires_at.to_utc() {
            return Err(f.invalid("issued_at", "must not be after expires_at"));
        }
        Ok(a)
    }

    fn body(&self) -> Map {
        object(vec![
            ("attestation_id", Value::Str(self.attestation_id.clone())),
            ("issuer_sovereign_id", Value::Str(self.issuer_sovereign_id.clone())),
            ("subject_id", Value::Str(self.subject_id.clone())),
            ("subject_public_key", opt_str_value(&self.subject_public_key)),
            ("roles", str_array(&self.roles)),
            ("status", Value::Str(self.status.clone())),
            ("issued_at", time_value(&self.issued_at)),
            ("valid_from", time_value(&self.valid_from)),
            ("expires_at", time_value(&self.expires_at)),
            ("issued_by", Value::Str(self.issued_by.clone())),
            ("claims", Value::Object(self.claims.clone())),
        ])
    }

    fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    fn signatures_mut(&mut self) -> &mut Vec<Signature> {
        &mut self.signatures
    }
}
