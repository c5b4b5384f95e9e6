//! The sandbox operator as the benchmarks sign with it: version-2 admin signatures (method, path
//! and this NA bound in), since sovereigns gm creates refuse version 1 (DEVIATIONS D6).

use std::path::Path;

use gm::crypto::keys::{load_public_key, load_signing_key, SigningKey};
use gm::json::Value;

/// The operator key of a quickstart home and the NA it signs for.
pub struct Operator {
    key: SigningKey,
    audience: String,
}

impl Operator {
    /// Loads `offline/operator.key` and the audience (`keys/na.pub`) of the quickstart home `home`.
    pub fn load(home: &Path) -> Operator {
        Operator {
            key: load_signing_key(&home.join("offline/operator.key")).unwrap(),
            audience: load_public_key(&home.join("keys/na.pub")).unwrap().to_b64(),
        }
    }

    /// The `X-Admin-Signature` of `POST path` with `body` (no query), as key `operator-local`.
    pub fn sign(&self, body: &Value, path: &str, nonce: &str, timestamp: &str) -> String {
        let payload = gm::crypto::payload::v2_payload(
            &self.audience,
            body,
            "operator-local",
            "POST",
            nonce,
            path,
            &[],
            timestamp,
        );
        self.key.sign_b64(&payload)
    }
}
