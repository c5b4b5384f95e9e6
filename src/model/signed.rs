//! What every signed object shares: the [`SignedObject`] trait (schema, canonical bytes, signature
//! envelope), the [`Kind`]s `gm sign` and `gm verify` know, and one envelope entry ([`Signature`]).
//!
//! Its own file so that each object file (`genesis.rs`, `crl.rs`, ...) and `fields.rs` depend on it
//! while `mod.rs` dispatches over the objects: it must import no object file and not `fields.rs`.

use crate::crypto::canonical::canonical_bytes;
use crate::crypto::keys::{PublicKey, SigningKey};
use crate::crypto::signature::{check_signatures, SignatureCheck, VerifyRule};
use crate::json::{Map, Value};

use super::error::ModelError;

/// One entry of a `signatures` envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// A free-form label; verifiers ignore it.
    pub key_id: String,
    /// Standard base64 of the 64-byte Ed25519 signature.
    pub sig: String,
}

impl Signature {
    fn to_value(&self) -> Value {
        Value::Object(
            [("key_id", Value::Str(self.key_id.clone())), ("sig", Value::Str(self.sig.clone()))]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }
}

/// The kinds of signed object `gm sign` and `gm verify` understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// GenesisBlock, signed by the root key.
    Genesis,
    /// JoinCertificate, signed by the NA.
    Cert,
    /// PolicyManifest, signed by the NA.
    Policy,
    /// CertificateRevocationList, signed by the NA.
    Crl,
    /// MembershipAttestation, signed by the NA.
    Attestation,
    /// RecognitionTreaty, signed by the NA.
    Treaty,
    /// SovereignRevocationFeed, signed by the issuing NA.
    Feed,
    /// AgentDescriptor, signed by the node key.
    Agent,
}

impl Kind {
    /// Every kind, in the order the CLI documents them.
    pub const ALL: [Kind; 8] =
        [Kind::Genesis, Kind::Cert, Kind::Policy, Kind::Crl, Kind::Attestation, Kind::Treaty, Kind::Feed, Kind::Agent];

    /// The CLI name (`genesis`, `cert`, …).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Genesis => "genesis",
            Kind::Cert => "cert",
            Kind::Policy => "policy",
            Kind::Crl => "crl",
            Kind::Attestation => "attestation",
            Kind::Treaty => "treaty",
            Kind::Feed => "feed",
            Kind::Agent => "agent",
        }
    }

    /// Upstream's model name.
    pub fn model_name(self) -> &'static str {
        match self {
            Kind::Genesis => "GenesisBlock",
            Kind::Cert => "JoinCertificate",
            Kind::Policy => "PolicyManifest",
            Kind::Crl => "CertificateRevocationList",
            Kind::Attestation => "MembershipAttestation",
            Kind::Treaty => "RecognitionTreaty",
            Kind::Feed => "SovereignRevocationFeed",
            Kind::Agent => "AgentDescriptor",
        }
    }

    /// Parses a CLI name.
    pub(crate) fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Upstream's verification rule for this kind (vectors' `verify_rules`): genesis needs every
    /// signature, CRLs and agent descriptors the first, everything else any.
    pub fn verify_rule(self) -> VerifyRule {
        match self {
            Kind::Genesis => VerifyRule::All,
            Kind::Crl | Kind::Agent => VerifyRule::First,
            _ => VerifyRule::Any,
        }
    }

    /// Guesses the kind from the fields present (each kind has an id field no other kind has).
    pub fn detect(value: &Value) -> Option<Kind> {
        let map = value.as_object()?;
        let has = |k: &str| map.contains_key(k);
        if has("root_public_key") && has("network_authority") {
            Some(Kind::Genesis)
        } else if has("cert_id") {
            Some(Kind::Cert)
        } else if has("crl_id") {
            Some(Kind::Crl)
        } else if has("policy_id") && has("min_client_version") {
            Some(Kind::Policy)
        } else if has("attestation_id") {
            Some(Kind::Attestation)
        } else if has("treaty_id") {
            Some(Kind::Treaty)
        } else if has("feed_id") {
            Some(Kind::Feed)
        } else if has("agent_id") {
            Some(Kind::Agent)
        } else {
            None
        }
    }
}

/// A signed object: its schema, its canonical bytes and its signature envelope.
pub trait SignedObject: Sized {
    /// Which kind this is.
    const KIND: Kind;

    /// Validates `value` through the schema (lax coercion, unknown fields dropped).
    fn from_value(value: &Value) -> Result<Self, ModelError>;

    /// Every declared field except `signatures`, in declaration order.
    fn body(&self) -> Map;

    /// The signature envelope.
    fn signatures(&self) -> &[Signature];

    /// The signature envelope, for appending.
    fn signatures_mut(&mut self) -> &mut Vec<Signature>;

    /// The bytes that are signed: canonical JSON of [`SignedObject::body`].
    fn canonical_bytes(&self) -> Vec<u8> {
        canonical_bytes(&Value::Object(self.body()))
    }

    /// The full object including `signatures`, in declaration order (the `*_json` DB layout;
    /// responses sort it through the canonical serializer).
    fn to_value(&self) -> Value {
        let mut map = self.body();
        map.insert("signatures".to_string(), Value::Array(self.signatures().iter().map(Signature::to_value).collect()));
        Value::Object(map)
    }

    /// Appends a signature by `key` labelled `key_id`.
    fn sign(&mut self, key: &SigningKey, key_id: &str) {
        let sig = key.sign_b64(&self.canonical_bytes());
        self.signatures_mut().push(Signature { key_id: key_id.to_string(), sig });
    }

    /// Applies this kind's rule with the allowed `keys`.
    fn check_signatures(&self, keys: &[PublicKey]) -> SignatureCheck {
        let sigs: Vec<&str> = self.signatures().iter().map(|s| s.sig.as_str()).collect();
        check_signatures(&self.canonical_bytes(), &sigs, keys, Self::KIND.verify_rule())
    }
}
