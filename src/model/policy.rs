//! PolicyManifest (`na-wire.md` §7.5): the NA's signed network policy.

use crate::json::{Map, Value};

use super::fields::{object, str_array, time_value, Fields};
use super::timestamp::ModelTime;
use super::{Kind, ModelError, Signature, SignedObject};

const MODEL: &str = "PolicyManifest";

/// A policy manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyManifest {
    /// Policy id.
    pub policy_id: String,
    /// Issue time.
    pub issued_at: ModelTime,
    /// NA key id.
    pub issued_by: String,
    /// Minimum client version.
    pub min_client_version: String,
    /// Allowed ports.
    pub allowed_ports: Vec<i64>,
    /// Allowed services.
    pub allowed_services: Vec<String>,
    /// Preferred transports (routing).
    pub preferred_transports: Vec<String>,
    /// Maximum hops (routing).
    pub max_hops: i64,
    /// NA signatures.
    pub signatures: Vec<Signature>,
}

impl SignedObject for PolicyManifest {
    const KIND: Kind = Kind::Policy;

    fn from_value(value: &Value) -> Result<Self, ModelError> {
        let f = Fields::of(MODEL, value)?;
        let routing = f.object_or_empty("routing")?;
        let (preferred_transports, max_hops) = match routing {
            Some(r) => (r.str_list_or("preferred_transports", &["quic", "wireguard"])?, r.int_or("max_hops", 6)?),
            None => (vec!["quic".to_string(), "wireguard".to_string()], 6),
        };
        Ok(PolicyManifest {
            policy_id: f.str("policy_id")?,
            issued_at: f.time("issued_at")?,
            issued_by: f.str("issued_by")?,
            min_client_version: f.str("min_client_version")?,
            allowed_ports: f.int_list_or("allowed_ports", &[443, 8443])?,
            allowed_services: f.str_list_or("allowed_services", &[])?,
            preferred_transports,
            max_hops,
            signatures: f.signatures()?,
        })
    }

    fn body(&self) -> Map {
        object(vec![
            ("policy_id", Value::Str(self.policy_id.clone())),
            ("issued_at", time_value(&self.issued_at)),
            ("issued_by", Value::Str(self.issued_by.clone())),
            ("min_client_version", Value::Str(self.min_client_version.clone())),
            ("allowed_ports", Value::Array(self.allowed_ports.iter().map(|p| Value::from(*p)).collect())),
            ("allowed_services", str_array(&self.allowed_services)),
            (
                "routing",
                Value::Object(object(vec![
                    ("preferred_transports", str_array(&self.preferred_transports)),
                    ("max_hops", Value::from(self.max_hops)),
                ])),
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
