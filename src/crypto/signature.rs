//! Ed25519 signing and verification over canonical bytes, and upstream's multi-signature rules.
//!
//! Verification is strict (`verify_strict`: non-canonical `S` and small-order keys are rejected), as
//! `na-wire.md` §2.1 recommends. A `key_id` is a label only: verifiers try every allowed key on every
//! signature.

use super::digest::b64_decode;
use super::keys::PublicKey;

/// How the signatures of an object must verify (vectors' `verify_rules`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyRule {
    /// Non-empty and every signature verifies with some allowed key (genesis).
    All,
    /// Some signature verifies with some allowed key (certificates, policy, attestations, treaties, feeds).
    Any,
    /// Non-empty and `signatures[0]` verifies (CRL, agent descriptors).
    First,
}

/// Result of checking an object's signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// The rule is satisfied.
    Valid,
    /// The object carries no signatures.
    Unsigned,
    /// The rule is not satisfied; `index` names a failing signature where one can be named.
    Invalid {
        /// The failing signature, when one can be named.
        index: Option<usize>,
    },
}

impl SignatureCheck {
    /// True for [`SignatureCheck::Valid`].
    pub fn is_valid(&self) -> bool {
        matches!(self, SignatureCheck::Valid)
    }
}

/// True when `sig_b64` is a valid signature of `message` by `key`. Undecodable base64 or a wrong
/// length is simply "does not verify".
pub fn verify_b64(key: &PublicKey, message: &[u8], sig_b64: &str) -> bool {
    let Some(bytes) = b64_decode(sig_b64) else {
        return false;
    };
    let Ok(raw) = <[u8; 64]>::try_from(bytes.as_slice()) else {
        return false;
    };
    let sig = ed25519_dalek::Signature::from_bytes(&raw);
    key.inner().verify_strict(message, &sig).is_ok()
}

/// Applies `rule` to the signatures `sigs` (base64 strings) over `message` with the allowed `keys`.
pub(crate) fn check_signatures(message: &[u8], sigs: &[&str], keys: &[PublicKey], rule: VerifyRule) -> SignatureCheck {
    if sigs.is_empty() {
        return SignatureCheck::Unsigned;
    }
    // A repeated signature text is verified once: its answer cannot change, and without the memo a
    // posted object could repeat one signature to multiply the work the caller's budget counted once.
    let mut seen: Vec<(String, bool)> = Vec::new();
    let mut verifies = |sig: &str| match seen.iter().find(|(s, _)| s == sig) {
        Some((_, ok)) => *ok,
        None => {
            let ok = keys.iter().any(|k| verify_b64(k, message, sig));
            seen.push((sig.to_string(), ok));
            ok
        }
    };
    match rule {
        VerifyRule::All => match sigs.iter().position(|s| !verifies(s)) {
            None => SignatureCheck::Valid,
            Some(i) => SignatureCheck::Invalid { index: Some(i) },
        },
        VerifyRule::Any => {
            if sigs.iter().any(|s| verifies(s)) {
                SignatureCheck::Valid
            } else {
                SignatureCheck::Invalid { index: None }
            }
        }
        VerifyRule::First => {
            if sigs.first().is_some_and(|s| verifies(s)) {
                SignatureCheck::Valid
            } else {
                SignatureCheck::Invalid { index: Some(0) }
            }
        }
    }
}
