//! AgentDescriptor (`na-wire.md` §7.11): signed by the node key; only `signatures[0]` counts and its
//! `key_id` is ignored.

use crate::json::{Map, Value};

use super::fields::{object, str_array, time_value, Fields};
use super::timestamp::ModelTime;
use super::{Kind, ModelError, Signature, SignedObject};

const MODEL: &str = "AgentDescriptor";

/// Where an agent listens.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// Port, 1–65535.
    pub port: i64,
    /// Scheme (not enum-checked in 0.16). Defaults to `ws`.
    pub scheme: String,
}

/// An agent descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentDescriptor {
    /// Agent id.
    pub agent_id: String,
    /// B64 node public key (the signer).
    pub node_public_key: String,
    /// Network name.
    pub network_name: String,
    /// Capability tags.
    pub capabilities: Vec<String>,
    /// Endpoint.
    pub endpoint: Endpoint,
    /// Registration time.
    pub registered_at: ModelTime,
    /// Expiry; strictly after `registered_at`.
    pub expires_at: ModelTime,
    /// Free-form metadata.
    pub metadata: Map,
    /// Node signatures.
    pub signatures: Vec<Signature>,
}

impl SignedObject for AgentDescriptor {
    const KIND: Kind = Kind::Agent;

    fn from_value(value: &Value) -> Result<Self, ModelError> {
        let f = Fields::of(MODEL, value)?;
        let e = f.object("endpoint")?;
        let endpoint = Endpoint { host: e.str("host")?, port: e.int("port")?, scheme: e.str_or("scheme", "ws")? };
        if !(1..=65535).contains(&endpoint.port) {
            return Err(e.invalid("port", "must be between 1 and 65535"));
        }
        let d = AgentDescriptor {
            agent_id: f.str("agent_id")?,
            node_public_key: f.str("node_public_key")?,
            network_name: f.str("network_name")?,
            capabilities: f.str_list_or("capabilities", &[])?,
            endpoint,
            registered_at: f.time("registered_at")?,
            expires_at: f.time("expires_at")?,
            metadata: f.dict_or_empty("metadata")?,
            signatures: f.signatures()?,
        };
        if d.expires_at.to_utc() <= d.registered_at.to_utc() {
            return Err(f.invalid("expires_at", "must be after registered_at"));
        }
        Ok(d)
    }

    fn body(&self) -> Map {
        object(vec![
            ("agent_id", Value::Str(self.agent_id.clone())),
            ("node_public_key", Value::Str(self.node_public_key.clone())),
            ("network_name", Value::Str(self.network_name.clone())),
            ("capabilities", str_array(&self.capabilities)),
            (
                "endpoint",
                Value::Object(object(vec![
                    ("host", Value::Str(self.endpoint.host.clone())),
                    ("port", Value::from(self.endpoint.port)),
                    ("scheme", Value::Str(self.endpoint.scheme.clone())),
                ])),
            ),
            ("registered_at", time_value(&self.registered_at)),
            ("expires_at", time_value(&self.expires_at)),
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
