//! The envelope of the offline signing round trip (customer-held custody, `docs/custody.md`): a
//! signing request carries exactly the unsigned object the NA would have signed, plus what the
//! key holder needs to sign it safely (which NA, which public key, which key id, when it was
//! prepared); the signed reply is the same envelope with the object's signature appended.
//!
//! It owns the envelope's fields and their reading and rendering only. It must not sign, verify
//! or decide anything: signing is [`super::sign_as`] (`gm sign`), verifying and storing are the
//! NA's publish routes.

use crate::json::Value;

use super::error::ModelError;
use super::fields::object;
use super::Kind;

const MODEL: &str = "SigningRequest";

/// The format tag of a request nobody has signed yet.
pub(crate) const REQUEST_FORMAT: &str = "gm-signing-request";
/// The format tag of a request whose object carries the key holder's signature.
pub(crate) const SIGNED_FORMAT: &str = "gm-signed-object";
/// The envelope version this gm writes and reads.
pub(crate) const VERSION: i64 = 1;

/// Which side of the round trip an envelope is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Prepared by the NA, not signed yet.
    Request,
    /// Signed by the key holder, ready to publish.
    Signed,
}

impl Stage {
    fn tag(self) -> &'static str {
        match self {
            Stage::Request => REQUEST_FORMAT,
            Stage::Signed => SIGNED_FORMAT,
        }
    }
}

/// A signing request (or its signed reply).
#[derive(Debug, Clone, PartialEq)]
pub struct SigningRequest {
    /// Request or signed reply.
    pub stage: Stage,
    /// The kind of the inner object (`treaty`, `policy`).
    pub kind: Kind,
    /// The sovereign (genesis `network_name`) whose NA prepared it.
    pub network_name: String,
    /// The NA base URL the operator prepared it at, when known (the NA does not know its own URL).
    pub na_url: Option<String>,
    /// The genesis NA public key (base64) the object must be signed with.
    pub na_public_key: String,
    /// The key id the object names as its issuer (`issued_by`), written beside the signature.
    pub na_key_id: String,
    /// When the NA prepared it (isoformat, UTC).
    pub created_at: String,
    /// The object, exactly as the NA built it (declaration order, `signatures` empty in a request).
    pub object: Value,
}

impl SigningRequest {
    /// The format tag a JSON document carries, if it is an envelope at all.
    pub(crate) fn format_of(value: &Value) -> Option<&str> {
        value.as_object()?.get("format")?.as_str()
    }

    /// Reads an envelope of either stage; the inner object is checked by its own model later.
    pub fn from_value(value: &Value) -> Result<SigningRequest, ModelError> {
        let map = value.as_object().ok_or_else(|| ModelError::new(MODEL, "", "must be a JSON object"))?;
        let text = |name: &str| -> Result<String, ModelError> {
            map.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| ModelError::new(MODEL, name, "must be a non-empty string"))
        };
        let stage = match text("format")?.as_str() {
            REQUEST_FORMAT => Stage::Request,
            SIGNED_FORMAT => Stage::Signed,
            other => {
                return Err(ModelError::new(
                    MODEL,
                    "format",
                    format!("{other:?} is not {REQUEST_FORMAT:?} or {SIGNED_FORMAT:?}"),
                ))
            }
        };
        match map.get("version").and_then(Value::as_i64) {
            Some(VERSION) => {}
            _ => return Err(ModelError::new(MODEL, "version", format!("must be {VERSION} (this gm's envelope)"))),
        }
        let kind_name = text("kind")?;
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.name() == kind_name)
            .ok_or_else(|| ModelError::new(MODEL, "kind", format!("{kind_name:?} is not a kind gm signs")))?;
        let na_url = match map.get("na_url") {
            None | Some(Value::Null) => None,
            Some(Value::Str(s)) => Some(s.clone()),
            Some(_) => return Err(ModelError::new(MODEL, "na_url", "must be a string or null")),
        };
        let object = match map.get("object") {
            Some(v @ Value::Object(_)) => v.clone(),
            _ => return Err(ModelError::new(MODEL, "object", "must be a JSON object")),
        };
        Ok(SigningRequest {
            stage,
            kind,
            network_name: text("network_name")?,
            na_url,
            na_public_key: text("na_public_key")?,
            na_key_id: text("na_key_id")?,
            created_at: text("created_at")?,
            object,
        })
    }

    /// The envelope in declaration order (`object` last, so a reader sees who and which key first).
    pub fn to_value(&self) -> Value {
        Value::Object(object(vec![
            ("format", Value::from(self.stage.tag())),
            ("version", Value::from(VERSION)),
            ("kind", Value::from(self.kind.name())),
            ("network_name", Value::from(self.network_name.as_str())),
            ("na_url", self.na_url.as_deref().map_or(Value::Null, Value::from)),
            ("na_public_key", Value::from(self.na_public_key.as_str())),
            ("na_key_id", Value::from(self.na_key_id.as_str())),
            ("created_at", Value::from(self.created_at.as_str())),
            ("object", self.object.clone()),
        ]))
    }

    /// The inner object's id (`treaty_id`, `policy_id`, …), for messages.
    pub(crate) fn object_id(&self) -> Option<&str> {
        let field = match self.kind {
            Kind::Treaty => "treaty_id",
            Kind::Policy => "policy_id",
            Kind::Attestation => "attestation_id",
            Kind::Feed => "feed_id",
            Kind::Crl => "crl_id",
            Kind::Cert => "cert_id",
            Kind::Agent => "agent_id",
            Kind::Genesis => "network_name",
        };
        self.object.as_object()?.get(field)?.as_str()
    }

    /// The number of signatures the inner object carries (absent counts as none).
    pub(crate) fn signature_count(&self) -> usize {
        self.object.as_object().and_then(|m| m.get("signatures")).and_then(Value::as_array).map_or(0, |a| a.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse_str;

    fn request() -> SigningRequest {
        SigningRequest {
            stage: Stage::Request,
            kind: Kind::Treaty,
            network_name: "alpha-mesh".to_string(),
            na_url: None,
            na_public_key: "8GFtLlsDpEJNfcATcNmBxcpzjgC9Vz8/N9FZUFXpOw4=".to_string(),
            na_key_id: "na-2026".to_string(),
            created_at: "2026-03-02T10:00:00+00:00".to_string(),
            object: parse_str("{\"treaty_id\":\"t-1\",\"signatures\":[]}").unwrap(),
        }
    }

    #[test]
    fn an_envelope_round_trips_in_both_stages() {
        let mut r = request();
        assert_eq!(SigningRequest::from_value(&r.to_value()).unwrap(), r);
        r.stage = Stage::Signed;
        r.na_url = Some("https://na.example.org".to_string());
        assert_eq!(SigningRequest::from_value(&r.to_value()).unwrap(), r);
        assert_eq!(SigningRequest::format_of(&r.to_value()), Some(SIGNED_FORMAT));
        assert_eq!(r.signature_count(), 0);
        assert_eq!(r.object_id(), Some("t-1"));
    }

    #[test]
    fn a_wrong_format_version_kind_or_object_is_refused_naming_the_field() {
        for (field, value) in [
            ("format", Value::from("other")),
            ("version", Value::from(2i64)),
            ("kind", Value::from("certificate")),
            ("object", Value::from("x")),
            ("na_public_key", Value::from("")),
        ] {
            let mut v = request().to_value();
            if let Value::Object(m) = &mut v {
                m.insert(field, value);
            }
            assert_eq!(SigningRequest::from_value(&v).unwrap_err().field, field);
        }
    }
}
