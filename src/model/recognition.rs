//! RecognitionPolicy and RecognizedIssuer (`na-wire.md` §7.8): which foreign sovereigns this NA
//! recognises, with which keys, roles and statuses. Stored unsigned.

use crate::json::{Map, Value};

use super::attestation::STATUSES;
use super::fields::{object, str_array, Fields};
use super::ModelError;

const MODEL: &str = "RecognitionPolicy";

/// One recognised issuer.
#[derive(Debug, Clone, PartialEq)]
pub struct RecognizedIssuer {
    /// The issuing sovereign.
    pub sovereign_id: String,
    /// Its keys (at least one).
    pub public_keys: Vec<String>,
    /// Roles accepted from it; empty = any role.
    pub allowed_roles: Vec<String>,
    /// Attestation statuses accepted from it.
    pub accepted_statuses: Vec<String>,
}

/// A recognition policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RecognitionPolicy {
    /// This sovereign.
    pub local_sovereign_id: String,
    /// Recognised issuers, in order (the first matching entry wins).
    pub recognized_issuers: Vec<RecognizedIssuer>,
    /// Locally revoked attestation ids (a set; gm keeps it sorted).
    pub revoked_attestation_ids: Vec<String>,
}

impl RecognitionPolicy {
    /// Validates a policy object.
    pub fn from_value(value: &Value) -> Result<RecognitionPolicy, ModelError> {
        let f = Fields::of(MODEL, value)?;
        let recognized_issuers = f.list_of("recognized_issuers", |i| {
            let issuer = RecognizedIssuer {
                sovereign_id: i.str("sovereign_id")?,
                public_keys: i.str_list("public_keys")?,
                allowed_roles: i.str_list_or("allowed_roles", &[])?,
                accepted_statuses: i.str_list_or("accepted_statuses", &["active"])?,
            };
            if issuer.public_keys.is_empty() {
                return Err(i.invalid("public_keys", "must contain at least one key"));
            }
            if issuer.accepted_statuses.iter().any(|s| !STATUSES.contains(&s.as_str())) {
                return Err(i.invalid("accepted_statuses", "must be active, suspended or revoked"));
            }
            Ok(issuer)
        })?;
        let mut revoked = f.str_list_or("revoked_attestation_ids", &[])?;
        revoked.sort();
        revoked.dedup();
        Ok(RecognitionPolicy {
            local_sovereign_id: f.str("local_sovereign_id")?,
            recognized_issuers,
            revoked_attestation_ids: revoked,
        })
    }

    /// Declaration-order rendering (stored `policy_json`, responses sort it).
    pub fn to_value(&self) -> Value {
        let issuers = self
            .recognized_issuers
            .iter()
            .map(|i| {
                Value::Object(object(vec![
                    ("sovereign_id", Value::from(i.sovereign_id.as_str())),
                    ("public_keys", str_array(&i.public_keys)),
                    ("allowed_roles", str_array(&i.allowed_roles)),
                    ("accepted_statuses", str_array(&i.accepted_statuses)),
                ]))
            })
            .collect();
        let map: Map = object(vec![
            ("local_sovereign_id", Value::from(self.local_sovereign_id.as_str())),
            ("recognized_issuers", Value::Array(issuers)),
            ("revoked_attestation_ids", str_array(&self.revoked_attestation_ids)),
        ]);
        Value::Object(map)
    }
}
