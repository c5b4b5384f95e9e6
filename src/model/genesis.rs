//! GenesisBlock (`na-wire.md` §7.2): the root of trust, signed by the offline root key; every
//! signature must verify with the block's own `root_public_key`.

use crate::crypto::keys::PublicKey;
use crate::crypto::signature::SignatureCheck;
use crate::json::{Map, Value};

use super::fields::{object, opt_str_value, str_array, time_value, Fields};
use super::timestamp::ModelTime;
use super::{Kind, ModelError, Signature, SignedObject};

const MODEL: &str = "GenesisBlock";

/// The NA entry of a genesis block.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkAuthority {
    /// B64 NA public key.
    pub public_key: String,
    /// Start of the NA validity window.
    pub valid_from: ModelTime,
    /// End of the NA validity window.
    pub valid_to: ModelTime,
}

/// A bootstrap anchor.
#[derive(Debug, Clone, PartialEq)]
pub struct Anchor {
    /// Anchor id.
    pub id: String,
    /// `host:port` endpoint.
    pub endpoint: String,
}

/// A genesis block.
#[derive(Debug, Clone, PartialEq)]
pub struct Genesis {
    /// Network name; doubles as the sovereign id.
    pub network_name: String,
    /// Network version, e.g. `v0.1`.
    pub network_version: String,
    /// B64 root public key.
    pub root_public_key: String,
    /// The NA key and its validity window.
    pub network_authority: NetworkAuthority,
    /// Allowed crypto suites.
    pub allowed_crypto_suites: Vec<String>,
    /// Allowed transports.
    pub allowed_transports: Vec<String>,
    /// Policy manifest hash.
    pub policy_hash: String,
    /// Policy manifest URL.
    pub policy_url: Option<String>,
    /// Bootstrap anchors.
    pub bootstrap_anchors: Vec<Anchor>,
    /// Root signatures.
    pub signatures: Vec<Signature>,
}

impl Genesis {
    /// Verifies the root signatures against the block's own `root_public_key` (upstream's rule:
    /// non-empty and every signature verifies).
    pub fn check_root_signatures(&self) -> SignatureCheck {
        match PublicKey::from_b64(&self.root_public_key) {
            Ok(root) => self.check_signatures(&[root]),
            Err(_) => SignatureCheck::Invalid { index: None },
        }
    }
}

impl SignedObject for Genesis {
    const KIND: Kind = Kind::Genesis;

    fn from_value(value: &Value) -> Result<Self, ModelError> {
        let f = Fields::of(MODEL, value)?;
        let na = f.object("network_authority")?;
        let pm = f.object("policy_manifest")?;
        Ok(Genesis {
            network_name: f.str("network_name")?,
            network_version: f.str("network_version")?,
            root_public_key: f.str("root_public_key")?,
            network_authority: NetworkAuthority {
                public_key: na.str("public_key")?,
                valid_from: na.time("valid_from")?,
                valid_to: na.time("valid_to")?,
            },
            allowed_crypto_suites: f.str_list_or("allowed_crypto_suites", &["ed25519", "x25519"])?,
            allowed_transports: f.str_list_or("allowed_transports", &["quic", "wireguard"])?,
            policy_hash: pm.str("hash")?,
            policy_url: pm.opt_str("url")?,
            bootstrap_anchors: f
                .list_of("bootstrap_anchors", |a| Ok(Anchor { id: a.str("id")?, endpoint: a.str("endpoint")? }))?,
            signatures: f.signatures()?,
        })
    }

    fn body(&self) -> Map {
        let na = &self.network_authority;
        object(vec![
            ("network_name", Value::Str(self.network_name.clone())),
            ("network_version", Value::Str(self.network_version.clone())),
            ("root_public_key", Value::Str(self.root_public_key.clone())),
            (
                "network_authority",
                Value::Object(object(vec![
                    ("public_key", Value::Str(na.public_key.clone())),
                    ("valid_from", time_value(&na.valid_from)),
                    ("valid_to", time_value(&na.valid_to)),
                ])),
            ),
            ("allowed_crypto_suites", str_array(&self.allowed_crypto_suites)),
            ("allowed_transports", str_array(&self.allowed_transports)),
            (
                "policy_manifest",
                Value::Object(object(vec![
                    ("hash", Value::Str(self.policy_hash.clone())),
                    ("url", opt_str_value(&self.policy_url)),
                ])),
            ),
            (
                "bootstrap_anchors",
                Value::Array(
                    self.bootstrap_anchors
                        .iter()
                        .map(|a| {
                            Value::Object(object(vec![
                                ("id", Value::Str(a.id.clone())),
                                ("endpoint", Value::Str(a.endpoint.clone())),
                            ]))
                        })
                        .collect(),
                ),
            ),
        ])
    }

    fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    fn signatures_mut(&mut self) -> &mut Vec<Signature> {
        &mut self.signatures
    }
}
