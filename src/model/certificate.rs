//! JoinCertificate (`na-wire.md` §7.3): issued by the NA to a node key on `/join` and `/renew`.

use crate::json::{Map, Value};

use super::fields::{object, str_array, time_value, Fields};
use super::timestamp::ModelTime;
use super::{Kind, ModelError, Signature, SignedObject};

const MODEL: &str = "JoinCertificate";

/// A join certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinCertificate {
    /// UUID4.
    pub cert_id: String,
    /// B64 node public key.
    pub node_public_key: String,
    /// Genesis network name.
    pub network_name: String,
    /// Roles from the invite token.
    pub roles: Vec<String>,
    /// Issue time.
    pub issued_at: ModelTime,
    /// Expiry time.
    pub expires_at: ModelTime,
    /// NA key id.
    pub issued_by: String,
    /// NA signatures.
    pub signatures: Vec<Signature>,
}

impl SignedObject for JoinCertificate {
    const KIND: Kind = Kind::Cert;

    fn from_value(value: &Value) -> Result<Self, ModelError> {
        let f = Fields::of(MODEL, value)?;
        Ok(JoinCertificate {
            cert_id: f.str("cert_id")?,
            node_public_key: f.str("node_public_key")?,
            network_name: f.str("network_name")?,
            roles: f.str_list_or("roles", &[])?,
            issued_at: f.time("issued_at")?,
            expires_at: f.time("expires_at")?,
            issued_by: f.str("issued_by")?,
            signatures: f.signatures()?,
        })
    }

    fn body(&self) -> Map {
        object(vec![
            ("cert_id", Value::Str(self.cert_id.clone())),
            ("node_public_key", Value::Str(self.node_public_key.clone())),
            ("network_name", Value::Str(self.network_name.clone())),
            ("roles", str_array(&self.roles)),
            ("issued_at", time_value(&self.issued_at)),
            ("expires_at", time_value(&self.expires_at)),
            ("issued_by", Value::Str(self.issued_by.clone())),
        ])
    }

    fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    fn signatures_mut(&mut self) -> &mut Vec<Signature> {
        &mut self.signatures
    }
}
