//! The bytes that requests are signed over (`na-wire.md` §5, §6.2, §6.3). Clients sign them and
//! the NA verifies them, so both sides call these and cannot drift apart. They only assemble the
//! JSON value; [`super::canonical`] turns it into bytes.

use super::canonical::{canonical_bytes, canonical_bytes_without};
use crate::json::{Map, Value};

/// Version 1 signed bytes: canonical `{"body", "key_id", "nonce", "timestamp"}` (§6.2).
pub fn v1_payload(body: &Value, key_id: &str, nonce: &str, timestamp: &str) -> Vec<u8> {
    let mut payload = Map::new();
    payload.insert("body", body.clone());
    payload.insert("key_id", key_id);
    payload.insert("nonce", nonce);
    payload.insert("timestamp", timestamp);
    canonical_bytes(&Value::Object(payload))
}

/// Version 2 signed bytes: canonical `{"audience", "body", "key_id", "method", "nonce", "path",
/// "query", "timestamp", "v": 2}` (§6.3). `path` is percent-decoded and has no query; `query`
/// holds the decoded parameters in the order sent.
// One argument per payload field keeps this a transcription of §6.3 that vectors can drive.
#[allow(clippy::too_many_arguments)]
pub fn v2_payload(
    audience: &str,
    body: &Value,
    key_id: &str,
    method: &str,
    nonce: &str,
    path: &str,
    query: &[(String, String)],
    timestamp: &str,
) -> Vec<u8> {
    let mut grouped = Map::new();
    for (name, value) in query {
        match grouped.get_mut(name).and_then(Value::as_array_mut) {
            Some(values) => values.push(Value::from(value.as_str())),
            None => {
                grouped.insert(name.as_str(), Value::Array(vec![Value::from(value.as_str())]));
            }
        }
    }
    let mut payload = Map::new();
    payload.insert("audience", audience);
    payload.insert("body", body.clone());
    payload.insert("key_id", key_id);
    payload.insert("method", method.to_ascii_uppercase());
    payload.insert("nonce", nonce);
    payload.insert("path", path);
    payload.insert("query", Value::Object(grouped));
    payload.insert("timestamp", timestamp);
    payload.insert("v", 2i64);
    canonical_bytes(&Value::Object(payload))
}

/// The bytes a node signs: canonical JSON of `body` without its `signature` key.
pub fn node_signed_bytes(body: &Map) -> Vec<u8> {
    canonical_bytes_without(body, "signature")
}
