//! SovereignRevocationFeed (`na-wire.md` §7.10): the attestation ids a sovereign has revoked. The
//! schema sorts and de-duplicates `revoked_attestation_ids` before signing or verifying, so a feed
//! signed over an unsorted list never verifies.

use crate::json::{Map, Value};

use super::fields::{object, str_array, time_value, Fields};
use super::timestamp::ModelTime;
use super::{Kind, ModelError, Signature, SignedObject};

const MODEL: &str = "SovereignRevocationFeed";

/// A revocation feed.
#[derive(Debug, Clone, PartialEq)]
pub struct RevocationFeed {
    /// UUID4, fresh per GET.
    pub feed_id: String,
    /// Issuing sovereign.
    pub issuer_sovereign_id: String,
    /// Number of revoked attestations at generation time.
    pub sequence: i64,
    /// Generation time.
    pub issued_at: ModelTime,
    /// Sorted, unique revoked ids.
    pub revoked_attestation_ids: Vec<String>,
    /// Reason per id (keys ⊆ ids).
    pub revocation_reasons: Map,
    /// NA key id.
    pub issued_by: String,
    /// NA signatures.
    pub signatures: Vec<Signature>,
}

impl SignedObject for RevocationFeed {
    const KIND: Kind = Kind::Feed;

    fn from_value(value: &Value) -> Result<Self, ModelError> {
        let f = Fields::of(MODEL, value)?;
        let mut ids = f.str_list_or("revoked_attestation_ids", &[])?;
        ids.sort();
        ids.dedup();
        let reasons = f.dict_or_empty("revocation_reasons")?;
        for (key, reason) in reasons.iter() {
            if !matches!(reason, Value::Str(_)) {
                return Err(f.invalid(&format!("revocation_reasons.{key}"), "expected a string"));
            }
            if ids.binary_search_by(|id| id.as_str().cmp(key)).is_err() {
                return Err(f.invalid("revocation_reasons", "every key must be in revoked_attestation_ids"));
            }
        }
        let sequence = f.int("sequence")?;
        if sequence < 0 {
            return Err(f.invalid("sequence", "must be greater than or equal to 0"));
        }
        Ok(RevocationFeed {
            feed_id: f.str("feed_id")?,
            issuer_sovereign_id: f.str("issuer_sovereign_id")?,
            sequence,
            issued_at: f.time("issued_at")?,
            revoked_attestation_ids: ids,
            revocation_reasons: reasons,
            issued_by: f.str("issued_by")?,
            signatures: f.signatures()?,
        })
    }

    fn body(&self) -> Map {
        object(vec![
            ("feed_id", Value::Str(self.feed_id.clone())),
            ("issuer_sovereign_id", Value::Str(self.issuer_sovereign_id.clone())),
            ("sequence", Value::from(self.sequence)),
            ("issued_at", time_value(&self.issued_at)),
            ("revoked_attestation_ids", str_array(&self.revoked_attestation_ids)),
            ("revocation_reasons", Value::Object(self.revocation_reasons.clone())),
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
