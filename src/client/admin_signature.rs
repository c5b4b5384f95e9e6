//! The admin signature scheme (`na-wire.md` §6.2, §6.3): the four `X-Admin-*` headers of one
//! operator-signed request and the request facts they sign.
//!
//! Both versions sign canonical JSON (§3.1) of an object holding the body `B`, the key id, the nonce
//! and the timestamp; version 2 adds the NA's public key (`audience`), the method, the
//! percent-decoded path and the query, and `"v": 2`. `B` is exactly the JSON value sent, or `{}`
//! for a request without a body. The path and query are decoded with the same decoder the server
//! uses (`crate::percent`), so the signature covers what the NA will read.
//!
//! Pure: no I/O, no clock (the timestamp and nonce are given). Sending is `admin.rs`; the payload
//! bytes themselves are `crypto::payload`, shared with the NA's verifier.

use std::fmt;

use crate::crypto::keys::SigningKey;
use crate::json::Value;
use crate::percent::{decode_lossy, Plus};

/// The admin signature scheme (`na-wire.md` §6.2, §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigVersion {
    /// Version 1: body, key id, nonce, timestamp (upstream 0.16).
    V1,
    /// Version 2: also audience, method, path, query (upstream 1.x).
    V2,
}

impl SigVersion {
    /// Parses `v1` or `v2`.
    pub fn parse(text: &str) -> Option<SigVersion> {
        match text {
            "v1" => Some(SigVersion::V1),
            "v2" => Some(SigVersion::V2),
            _ => None,
        }
    }
}

/// An operator key and the id the NA knows it by (a key of `OPERATOR_PUBLIC_KEYS_JSON`).
#[derive(Debug, Clone)]
pub struct Operator {
    /// The private key; its `Debug` is redacted.
    pub key: SigningKey,
    /// The `X-Admin-Key-Id` value.
    pub key_id: String,
}

/// The four `X-Admin-*` header values of one request. `Debug` hides the signature.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminHeaders {
    /// `X-Admin-Key-Id`.
    pub key_id: String,
    /// `X-Admin-Timestamp`, Python isoformat UTC.
    pub timestamp: String,
    /// `X-Admin-Nonce`, a UUID4.
    pub nonce: String,
    /// `X-Admin-Signature`, base64 Ed25519.
    pub signature: String,
}

impl fmt::Debug for AdminHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminHeaders")
            .field("key_id", &self.key_id)
            .field("timestamp", &self.timestamp)
            .field("nonce", &self.nonce)
            .field("signature", &"[redacted]")
            .finish()
    }
}

impl AdminHeaders {
    /// Header names and values, ready to send.
    pub(crate) fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            ("X-Admin-Key-Id", &self.key_id),
            ("X-Admin-Timestamp", &self.timestamp),
            ("X-Admin-Nonce", &self.nonce),
            ("X-Admin-Signature", &self.signature),
        ]
    }
}

pub use crate::crypto::payload::{v1_payload, v2_payload};

/// Splits a request target into the percent-decoded path and the decoded query parameters, as the
/// NA sees them (`+` is a space in the query; a parameter without `=` has the value `""`).
pub fn split_target(target: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            (decode_lossy(name, Plus::IsSpace), decode_lossy(value, Plus::IsSpace))
        })
        .collect();
    // Python's unquote replaces undecodable bytes rather than failing; so does this.
    (decode_lossy(path, Plus::Kept), params)
}

/// What a request signs besides the operator's identity and freshness.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// The request target: path and optional query, as sent.
    pub target: &'a str,
    /// The JSON body sent; `{}` is signed for a request without one.
    pub body: &'a Value,
    /// The NA public key (version 2 only).
    pub audience: Option<&'a str>,
}

/// Signs one request at `timestamp` with `nonce`. Version 2 without an audience signs `""`, which
/// no NA accepts; [`AdminClient`] always fetches the audience first.
pub fn sign_request(
    operator: &Operator,
    version: SigVersion,
    request: &SignedRequest<'_>,
    timestamp: &str,
    nonce: &str,
) -> AdminHeaders {
    let payload = match version {
        SigVersion::V1 => v1_payload(request.body, &operator.key_id, nonce, timestamp),
        SigVersion::V2 => {
            let (path, query) = split_target(request.target);
            v2_payload(
                request.audience.unwrap_or(""),
                request.body,
                &operator.key_id,
                request.method,
                nonce,
                &path,
                &query,
                timestamp,
            )
        }
    };
    AdminHeaders {
        key_id: operator.key_id.clone(),
        timestamp: timestamp.to_string(),
        nonce: nonce.to_string(),
        signature: operator.key.sign_b64(&payload),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::json::{parse_str, Map};

    /// The vector `id` of `tests/vectors/admin-requests.json`.
    pub(crate) fn vector(id: &str) -> Value {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/admin-requests.json")).unwrap();
        let file = parse_str(&text).unwrap();
        let vectors = field(&file, &["vectors"]).as_array().unwrap();
        vectors
            .iter()
            .find(|v| field(v, &["id"]).as_str() == Some(id))
            .unwrap_or_else(|| panic!("vector {id} not found"))
            .clone()
    }

    fn field<'v>(v: &'v Value, path: &[&str]) -> &'v Value {
        path.iter().fold(v, |v, k| v.as_object().and_then(|m| m.get(k)).unwrap_or_else(|| panic!("missing {k}")))
    }

    /// The string at `path` in `v`.
    pub(crate) fn text_of<'v>(v: &'v Value, path: &[&str]) -> &'v str {
        field(v, path).as_str().unwrap()
    }

    /// Rebuilds a vector's signed payload and signature; both must match byte for byte.
    fn check_vector(id: &str) {
        let v = vector(id);
        let key_id = text_of(&v, &["headers", "X-Admin-Key-Id"]);
        let timestamp = text_of(&v, &["headers", "X-Admin-Timestamp"]);
        let nonce = text_of(&v, &["headers", "X-Admin-Nonce"]);
        let body = field(&v, &["signed_body"]);
        let payload = match text_of(&v, &["scheme"]) {
            "v1" => v1_payload(body, key_id, nonce, timestamp),
            _ => {
                let target = match text_of(&v, &["query_string"]) {
                    "" => text_of(&v, &["url_path"]).to_string(),
                    q => format!("{}?{q}", text_of(&v, &["url_path"])),
                };
                let (path, query) = split_target(&target);
                assert_eq!(path, text_of(&v, &["path"]), "{id}: decoded path");
                v2_payload(
                    text_of(&v, &["audience"]),
                    body,
                    key_id,
                    text_of(&v, &["method"]),
                    nonce,
                    &path,
                    &query,
                    timestamp,
                )
            }
        };
        let expected = text_of(&v, &["signed_payload"]);
        assert_eq!(String::from_utf8(payload.clone()).unwrap(), expected, "{id}: signed payload");
        let key = SigningKey::from_seed_b64(text_of(&v, &["operator_key", "seed_b64"])).unwrap();
        assert_eq!(key.sign_b64(&payload), text_of(&v, &["signature"]), "{id}: signature");
    }

    #[test]
    fn v1_invite_vector() {
        check_vector("v1/invite/node1");
    }

    #[test]
    fn v1_policy_history_vector_signs_empty_body() {
        check_vector("v1/policy/history");
    }

    #[test]
    fn v1_float_hours_vector_keeps_python_float_repr() {
        check_vector("v1/invite/float-hours");
    }

    #[test]
    fn v2_invite_vector() {
        check_vector("v2/invite");
    }

    #[test]
    fn v2_repeated_query_vector_keeps_order_and_duplicates() {
        check_vector("v2/get-with-repeated-query");
    }

    #[test]
    fn v2_percent_decoded_unicode_path_vector() {
        check_vector("v2/percent-decoded-unicode-path");
    }

    #[test]
    fn every_valid_vector_reproduces() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/admin-requests.json")).unwrap();
        let file = parse_str(&text).unwrap();
        let valid: Vec<&str> = field(&file, &["vectors"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| field(v, &["valid"]).as_bool() == Some(true))
            .map(|v| text_of(v, &["id"]))
            .collect();
        assert!(valid.len() > 20, "only {} valid vectors", valid.len());
        for id in valid {
            check_vector(id);
        }
    }

    #[test]
    fn split_target_decodes_like_the_na() {
        let (path, query) = split_target("/a%3Fb/x?n+1=a+b&flag&e=%C3%A9&&z=");
        assert_eq!(path, "/a?b/x");
        let pairs: Vec<(&str, &str)> = query.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(pairs, vec![("n 1", "a b"), ("flag", ""), ("e", "\u{e9}"), ("z", "")]);
        assert_eq!(split_target("/p%zz+").0, "/p%zz+");
    }

    const OPERATOR_SEED: &str = "kcEtbrpIkVQ4x8x26K89loTgOPGEsmpGbb2PY9+XYNI=";

    fn operator() -> Operator {
        Operator { key: SigningKey::from_seed_b64(OPERATOR_SEED).unwrap(), key_id: "operator-1".to_string() }
    }

    #[test]
    fn headers_debug_hides_the_signature() {
        let headers = sign_request(
            &operator(),
            SigVersion::V1,
            &SignedRequest {
                method: "GET",
                target: "/admin/policy/history",
                body: &Value::Object(Map::new()),
                audience: None,
            },
            "2026-03-02T10:00:09+00:00",
            "n",
        );
        assert!(!format!("{headers:?}").contains(&headers.signature));
    }
}
