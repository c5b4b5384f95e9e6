//! The backup signature: `<archive>.sig`, a small JSON document signed with the dedicated
//! backup-signing Ed25519 key (`gm keygen backup-signing`). It names the archive file, its SHA-256
//! and size, the manifest's SHA-256 and the facts retention and `--latest` order by (network and
//! `created_at`), so they can be trusted without decrypting anything.
//!
//! Why a key of its own: the archive is encrypted to a *public* age recipient and the genesis is
//! public, so anyone who can write to the backup folder can build an archive with a
//! self-consistent manifest (finding F4). Only the signature by a key the backup storage never
//! holds tells a backup gm took from a forged one. The signed bytes are the canonical JSON
//! (`crypto::canonical`) of the document without its `signature` field.

use std::path::{Path, PathBuf};

use crate::crypto::canonical::{canonical_bytes, to_pretty_string};
use crate::crypto::keys::{PublicKey, SigningKey};
use crate::crypto::signature::verify_b64;
use crate::json::{parse_str, Map, Value};

/// `format` of a signature document.
pub(crate) const FORMAT: &str = "gm-backup-signature";

/// Largest signature file read (a genuine one is well under 1 KiB).
const MAX_SIGNATURE_BYTES: u64 = 64 * 1024;

/// The key that signs backups, with its label.
pub struct BackupSigner {
    /// The private key.
    pub key: SigningKey,
    /// Its key id (recorded in the signature; informative only).
    pub key_id: String,
}

/// The backup-signing public keys a backup may be signed with: the current one, and the keys it
/// replaced (`[backup] retired_signing_public_keys`), so that backups taken before a rotation still
/// verify, restore and count for retention until they age out.
#[derive(Clone)]
pub(crate) struct TrustedKeys {
    /// The key new backups are signed with.
    pub current: PublicKey,
    /// Keys of earlier rotations, trusted for the backups they signed.
    pub retired: Vec<PublicKey>,
}

impl TrustedKeys {
    /// Only `current`.
    #[cfg(test)]
    pub(crate) fn only(current: PublicKey) -> TrustedKeys {
        TrustedKeys { current, retired: Vec::new() }
    }

    /// Whether `key` is one of these, and if so whether it is retired.
    fn status(&self, key: &PublicKey) -> Option<KeyStatus> {
        if self.current == *key {
            Some(KeyStatus::Current)
        } else if self.retired.contains(key) {
            Some(KeyStatus::Retired)
        } else {
            None
        }
    }
}

/// Which trusted key signed a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyStatus {
    /// The current backup-signing key.
    Current,
    /// A key retired by a rotation, still trusted for what it signed.
    Retired,
}

/// What verification trusts: the pinned public keys, and whether unsigned backups are accepted.
#[derive(Clone, Default)]
pub(crate) struct SignatureTrust {
    /// The backup-signing public keys a backup must be signed with.
    pub pinned: Option<TrustedKeys>,
    /// Accept a backup without a signature file (`--allow-unsigned`): warned and recorded.
    pub allow_unsigned: bool,
}

/// The signed facts about one archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSignature {
    /// The archive's file name (no folder).
    pub archive: String,
    /// SHA-256 of the encrypted archive.
    pub archive_sha256: String,
    /// Size of the encrypted archive.
    pub archive_size: u64,
    /// The manifest's `created_at` (snapshot time).
    pub created_at: String,
    /// The manifest's network name.
    pub network_name: String,
    /// SHA-256 of `manifest.json` inside the archive.
    pub manifest_sha256: String,
    /// The signing key's id.
    pub key_id: String,
    /// The signing public key (base64).
    pub public_key: String,
    /// Ed25519 signature (base64) over the canonical JSON without this field.
    pub signature: String,
}

/// `<archive>.sig`.
pub fn sidecar_path(archive: &Path) -> PathBuf {
    let mut p = archive.as_os_str().to_os_string();
    p.push(".sig");
    PathBuf::from(p)
}

impl BackupSignature {
    /// Signs the facts with `signer`.
    pub fn sign(mut unsigned: BackupSignature, signer: &BackupSigner) -> BackupSignature {
        unsigned.key_id.clone_from(&signer.key_id);
        unsigned.public_key = signer.key.public_key().to_b64();
        unsigned.signature = signer.key.sign_b64(&canonical_bytes(&unsigned.body()));
        unsigned
    }

    /// The document without its signature (what is signed).
    fn body(&self) -> Value {
        let mut m = Map::new();
        m.insert("archive", Value::from(self.archive.as_str()));
        m.insert("archive_sha256", Value::from(self.archive_sha256.as_str()));
        m.insert("archive_size", Value::from(self.archive_size));
        m.insert("created_at", Value::from(self.created_at.as_str()));
        m.insert("format", Value::from(FORMAT));
        m.insert("format_version", Value::from(1_i64));
        m.insert("key_id", Value::from(self.key_id.as_str()));
        m.insert("manifest_sha256", Value::from(self.manifest_sha256.as_str()));
        m.insert("network_name", Value::from(self.network_name.as_str()));
        m.insert("public_key", Value::from(self.public_key.as_str()));
        Value::Object(m)
    }

    /// The file text (pretty JSON, trailing newline).
    pub fn to_text(&self) -> String {
        let mut v = self.body();
        if let Value::Object(m) = &mut v {
            m.insert("signature", Value::from(self.signature.as_str()));
        }
        let mut text = to_pretty_string(&v);
        text.push('\n');
        text
    }

    /// Reads `<archive>.sig`: `Ok(None)` when there is none, `Err` (a problem for the report) when
    /// it cannot be read or parsed.
    pub(crate) fn read_for(archive: &Path) -> Result<Option<BackupSignature>, String> {
        let path = sidecar_path(archive);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        if !meta.is_file() || meta.len() > MAX_SIGNATURE_BYTES {
            return Err(format!("{} is not a regular file under 64 KiB", path.display()));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        BackupSignature::parse(&text).map(Some).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses a signature document.
    pub fn parse(text: &str) -> Result<BackupSignature, String> {
        let v = parse_str(text).map_err(|e| e.to_string())?;
        let m = v.as_object().ok_or("not a JSON object")?;
        let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string).ok_or(format!("missing {k}"));
        if s("format")? != FORMAT || m.get("format_version").and_then(Value::as_i64) != Some(1) {
            return Err("not a gm backup signature (format/format_version)".into());
        }
        let size = m.get("archive_size").and_then(Value::as_i64).ok_or("missing archive_size")?;
        Ok(BackupSignature {
            archive: s("archive")?,
            archive_sha256: s("archive_sha256")?,
            archive_size: u64::try_from(size).map_err(|_| "bad archive_size".to_string())?,
            created_at: s("created_at")?,
            network_name: s("network_name")?,
            manifest_sha256: s("manifest_sha256")?,
            key_id: s("key_id")?,
            public_key: s("public_key")?,
            signature: s("signature")?,
        })
    }

    /// Checks that the signing key is one of `trusted` and the signature verifies; says which
    /// key signed it. `Err` says why not.
    pub(crate) fn check(&self, trusted: &TrustedKeys) -> Result<KeyStatus, String> {
        let key = PublicKey::from_b64(&self.public_key).ok();
        let Some((key, status)) = key.and_then(|k| trusted.status(&k).map(|s| (k, s))) else {
            return Err(format!(
                "signed by key {} ({}), not the pinned backup-signing key {}{}",
                self.public_key,
                self.key_id,
                trusted.current.to_b64(),
                if trusted.retired.is_empty() { "" } else { " nor a retired one" }
            ));
        };
        if !verify_b64(&key, &canonical_bytes(&self.body()), &self.signature) {
            return Err("the signature does not verify".into());
        }
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BackupSignature {
        BackupSignature {
            archive: "gm-acme-20261125T120000Z.tar.gz.age".into(),
            archive_sha256: "ab".repeat(32),
            archive_size: 1234,
            created_at: "2026-11-25T12:00:00".into(),
            network_name: "acme".into(),
            manifest_sha256: "cd".repeat(32),
            key_id: String::new(),
            public_key: String::new(),
            signature: String::new(),
        }
    }

    #[test]
    fn a_signature_round_trips_and_verifies_only_with_the_pinned_key() {
        let signer = BackupSigner { key: SigningKey::generate(), key_id: "backup-signing".into() };
        let signed = BackupSignature::sign(sample(), &signer);
        let parsed = BackupSignature::parse(&signed.to_text()).unwrap();
        assert_eq!(parsed, signed);
        assert_eq!(parsed.check(&TrustedKeys::only(signer.key.public_key())).unwrap(), KeyStatus::Current);
        let other = SigningKey::generate().public_key();
        assert!(parsed.check(&TrustedKeys::only(other)).unwrap_err().contains("not the pinned backup-signing key"));
    }

    #[test]
    fn a_retired_key_still_verifies_what_it_signed_and_is_reported_as_retired() {
        let old = BackupSigner { key: SigningKey::generate(), key_id: "old".into() };
        let new = SigningKey::generate().public_key();
        let signed = BackupSignature::sign(sample(), &old);
        let rotated = TrustedKeys { current: new, retired: vec![old.key.public_key()] };
        assert_eq!(signed.check(&rotated).unwrap(), KeyStatus::Retired);
        let forgotten = TrustedKeys::only(new);
        assert!(signed.check(&forgotten).unwrap_err().contains("not the pinned backup-signing key"));
        let mut forged = signed;
        forged.signature =
            BackupSignature::sign(sample(), &BackupSigner { key: SigningKey::generate(), key_id: "x".into() })
                .signature;
        assert_eq!(forged.check(&rotated).unwrap_err(), "the signature does not verify");
    }

    #[test]
    fn any_changed_fact_breaks_the_signature() {
        let signer = BackupSigner { key: SigningKey::generate(), key_id: "k".into() };
        let signed = BackupSignature::sign(sample(), &signer);
        let mut later = signed.clone();
        later.created_at = "2099-01-01T00:00:00".into();
        assert_eq!(
            later.check(&TrustedKeys::only(signer.key.public_key())).unwrap_err(),
            "the signature does not verify"
        );
        let mut other_archive = signed;
        other_archive.archive_sha256 = "00".repeat(32);
        assert!(other_archive.check(&TrustedKeys::only(signer.key.public_key())).is_err());
    }
}
