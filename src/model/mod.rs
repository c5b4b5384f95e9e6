//! Upstream's signed objects, one per file, each read through its schema and canonicalised exactly
//! as upstream does (`na-wire.md` §3.2, §7): unknown fields dropped, defaults filled, every declared
//! field except `signatures` emitted, datetimes in the pydantic rendering.
//!
//! [`SignedObject`] is the one path from an object to the bytes that get signed or verified. It,
//! [`Kind`] and [`Signature`] live in `signed.rs`, which every object file imports; this file only
//! declares the objects and dispatches [`sign_as`] and [`check_as`] over the kinds.

pub mod agent;
pub mod attestation;
pub mod certificate;
pub mod crl;
pub mod decision;
pub mod error;
pub mod feed;
pub mod fields;
pub mod genesis;
pub mod policy;
pub mod recognition;
mod signed;
pub mod signing_request;
pub mod timestamp;
pub mod treaty;
pub mod treaty_lifecycle;

use crate::crypto::keys::{PublicKey, SigningKey};
use crate::crypto::signature::SignatureCheck;
use crate::json::Value;

pub use error::ModelError;
pub use signed::{Kind, Signature, SignedObject};

/// Reads `value` as `kind`, appends a signature by `key`, and returns the signed object
/// (declaration order). This is how the customer-held custody model signs trust material offline.
pub fn sign_as(kind: Kind, value: &Value, key: &SigningKey, key_id: &str) -> Result<Value, ModelError> {
    fn go<T: SignedObject>(value: &Value, key: &SigningKey, key_id: &str) -> Result<Value, ModelError> {
        let mut object = T::from_value(value)?;
        object.sign(key, key_id);
        Ok(object.to_value())
    }
    match kind {
        Kind::Genesis => go::<genesis::Genesis>(value, key, key_id),
        Kind::Cert => go::<certificate::JoinCertificate>(value, key, key_id),
        Kind::Policy => go::<policy::PolicyManifest>(value, key, key_id),
        Kind::Crl => go::<crl::Crl>(value, key, key_id),
        Kind::Attestation => go::<attestation::MembershipAttestation>(value, key, key_id),
        Kind::Treaty => go::<treaty::RecognitionTreaty>(value, key, key_id),
        Kind::Feed => go::<feed::RevocationFeed>(value, key, key_id),
        Kind::Agent => go::<agent::AgentDescriptor>(value, key, key_id),
    }
}

/// What checking an object of some kind found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The canonical bytes the signatures must cover.
    pub canonical: Vec<u8>,
    /// How many signatures the object carries.
    pub signature_count: usize,
    /// The outcome under the kind's rule.
    pub outcome: SignatureCheck,
}

/// Reads `value` as `kind` and applies the kind's verification rule with `keys`.
pub fn check_as(kind: Kind, value: &Value, keys: &[PublicKey]) -> Result<Checked, ModelError> {
    fn go<T: SignedObject>(value: &Value, keys: &[PublicKey]) -> Result<Checked, ModelError> {
        let object = T::from_value(value)?;
        Ok(Checked {
            canonical: object.canonical_bytes(),
            signature_count: object.signatures().len(),
            outcome: object.check_signatures(keys),
        })
    }
    match kind {
        Kind::Genesis => go::<genesis::Genesis>(value, keys),
        Kind::Cert => go::<certificate::JoinCertificate>(value, keys),
        Kind::Policy => go::<policy::PolicyManifest>(value, keys),
        Kind::Crl => go::<crl::Crl>(value, keys),
        Kind::Attestation => go::<attestation::MembershipAttestation>(value, keys),
        Kind::Treaty => go::<treaty::RecognitionTreaty>(value, keys),
        Kind::Feed => go::<feed::RevocationFeed>(value, keys),
        Kind::Agent => go::<agent::AgentDescriptor>(value, keys),
    }
}
