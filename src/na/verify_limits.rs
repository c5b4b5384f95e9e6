//! The work bound of the public verify routes (`DEVIATIONS.md` G1). `POST /attestations/verify`,
//! `/recognition-treaties/verify` and `/attestations/verify-with-treaty` verify caller-supplied
//! signatures against caller-supplied keys, and a `key_id` is only a label (`na-wire.md` §2.1), so
//! every signature is tried with every key. Upstream has no bound: 400 signatures × 400 keys in a
//! 62 KiB body cost 5.8 s of CPU per unauthenticated request. gm counts the work before doing any
//! and refuses a request over a limit with a 400 that names the limit and its setting.
//!
//! Must not verify anything itself: it only counts, so a refusal costs microseconds.

use std::collections::BTreeSet;

use super::error::NaError;

/// Bounds on the signature work of one verify request. Settings live in `[server.limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyLimits {
    /// Most signatures on one posted object (`verify_max_signatures`). Defaults to 16.
    pub max_signatures: usize,
    /// Most keys in one key list the request makes gm try (`verify_max_public_keys`). Defaults to 64.
    pub max_public_keys: usize,
    /// Most (signature, key) verifications of one request, over distinct signatures and distinct
    /// keys, summed over every object it checks (`verify_max_signature_checks`). Defaults to 256
    /// (about 10 ms of CPU).
    pub max_signature_checks: usize,
}

impl Default for VerifyLimits {
    fn default() -> Self {
        VerifyLimits { max_signatures: 16, max_public_keys: 64, max_signature_checks: 256 }
    }
}

/// One signed object of a request and the keys it will be tried with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignatureWork<'a> {
    /// The object's `sig` strings.
    pub signatures: &'a [&'a str],
    /// The key list (base64 texts) its signatures are tried against.
    pub keys: &'a [String],
}

impl VerifyLimits {
    /// Refuses `work` when one object carries too many signatures, one key list is too long, or the
    /// distinct (signature, key) pairs of all objects together exceed the budget.
    pub(crate) fn admit(&self, work: &[SignatureWork<'_>]) -> Result<(), NaError> {
        let mut checks = 0usize;
        for w in work {
            if w.signatures.len() > self.max_signatures {
                return Err(too_many("signatures", w.signatures.len(), self.max_signatures, "verify_max_signatures"));
            }
            if w.keys.len() > self.max_public_keys {
                return Err(too_many("public keys", w.keys.len(), self.max_public_keys, "verify_max_public_keys"));
            }
            let sigs = w.signatures.iter().collect::<BTreeSet<_>>().len();
            let keys = w.keys.iter().collect::<BTreeSet<_>>().len();
            checks = checks.saturating_add(sigs.saturating_mul(keys));
        }
        if checks > self.max_signature_checks {
            return Err(too_many("signature checks", checks, self.max_signature_checks, "verify_max_signature_checks"));
        }
        Ok(())
    }
}

fn too_many(what: &str, found: usize, limit: usize, setting: &str) -> NaError {
    NaError::api(400, format!("Too many {what}: {found} exceeds the limit of {limit} ({setting})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("k{i}")).collect()
    }

    fn message(e: NaError) -> String {
        crate::crypto::canonical::canonical_string(&e.body())
    }

    #[test]
    fn counts_distinct_pairs_over_all_objects() {
        let limits = VerifyLimits { max_signatures: 4, max_public_keys: 8, max_signature_checks: 16 };
        let (sigs, ks) = (["a", "b", "a", "b"], keys(8));
        let w = SignatureWork { signatures: &sigs, keys: &ks };
        assert!(limits.admit(&[w]).is_ok(), "2 distinct signatures x 8 keys = 16");
        let e = limits.admit(&[w, w]).unwrap_err();
        assert_eq!(
            message(e),
            "{\"error\":\"Too many signature checks: 32 exceeds the limit of 16 (verify_max_signature_checks)\"}"
        );
        let same = vec!["k".to_string(); 8];
        let dup = SignatureWork { signatures: &["a", "b", "c", "d"], keys: &same };
        assert!(limits.admit(&[dup, dup, dup, dup]).is_ok(), "8 copies of one key count once: 4 x 4 x 1 = 16");
    }

    #[test]
    fn each_list_is_capped_before_the_budget() {
        let limits = VerifyLimits::default();
        let many: Vec<&str> = vec!["s"; 17];
        let e = limits.admit(&[SignatureWork { signatures: &many, keys: &keys(1) }]).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(message(e).contains("Too many signatures: 17 exceeds the limit of 16 (verify_max_signatures)"));
        let e = limits.admit(&[SignatureWork { signatures: &["s"], keys: &keys(65) }]).unwrap_err();
        assert!(message(e).contains("Too many public keys: 65 exceeds the limit of 64 (verify_max_public_keys)"));
    }
}
