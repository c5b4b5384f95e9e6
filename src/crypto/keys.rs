//! Upstream Ed25519 key files and key types.
//!
//! File format (`na-wire.md` §2.2): `<base>.key` holds `# Ed25519 Private Key`, an optional
//! `# Key ID: <id>` line and the base64 32-byte seed; `<base>.pub` the same with `# Ed25519 Public Key`
//! and the base64 32-byte public key. Loader rule: drop lines starting with `#`, strip whitespace,
//! concatenate, base64-decode. Anything else is rejected with a message naming the file and the problem.
//! Secret material lives in [`SigningKey`], whose `Debug` prints `[redacted]`.

use std::fmt;
use std::path::Path;

use super::digest::{b64_decode, b64_encode, fill_random};
use super::error::{CryptoError, KeyProblem};

const PRIVATE_HEADER: &str = "# Ed25519 Private Key";
const PUBLIC_HEADER: &str = "# Ed25519 Public Key";

/// An Ed25519 signing key (the 32-byte seed). `Debug` never shows the seed.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey([redacted], public {})", self.public_key().to_b64())
    }
}

impl SigningKey {
    /// A fresh key from the OS random source.
    pub fn generate() -> SigningKey {
        let mut seed = [0u8; 32];
        fill_random(&mut seed);
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// The key for a 32-byte seed.
    pub(crate) fn from_seed(seed: &[u8; 32]) -> SigningKey {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The key for a base64 seed (test vectors, inline `NA_PRIVATE_KEY`).
    pub fn from_seed_b64(text: &str) -> Result<SigningKey, CryptoError> {
        let bytes = b64_decode(text).ok_or(CryptoError::Base64 { what: "private key seed" })?;
        let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| CryptoError::KeyLength {
            what: "private key seed",
            expected: 32,
            found: bytes.len(),
        })?;
        Ok(SigningKey::from_seed(&seed))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `message`, returning the 64-byte signature.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.0.sign(message).to_bytes()
    }

    /// Signs `message`, returning standard base64 (88 characters).
    pub fn sign_b64(&self, message: &[u8]) -> String {
        b64_encode(&self.sign(message))
    }

    /// The seed in the upstream private key file layout.
    pub fn to_file_text(&self, key_id: Option<&str>) -> String {
        key_file_text(PRIVATE_HEADER, key_id, &b64_encode(self.0.as_bytes()))
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_b64())
    }
}

impl PublicKey {
    /// Parses a standard base64 32-byte public key.
    pub fn from_b64(text: &str) -> Result<PublicKey, CryptoError> {
        let bytes = b64_decode(text).ok_or(CryptoError::Base64 { what: "public key" })?;
        PublicKey::from_bytes(&bytes)
    }

    /// Parses 32 raw bytes.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<PublicKey, CryptoError> {
        let raw: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::KeyLength {
            what: "public key",
            expected: 32,
            found: bytes.len(),
        })?;
        ed25519_dalek::VerifyingKey::from_bytes(&raw).map(PublicKey).map_err(|_| CryptoError::InvalidPublicKey)
    }

    /// Standard padded base64 (44 characters), the wire form.
    pub fn to_b64(&self) -> String {
        b64_encode(self.0.as_bytes())
    }

    /// True when `sig` is a valid (strict) signature of `message` by this key.
    pub(crate) fn verify_bytes(&self, message: &[u8], sig: &[u8; 64]) -> bool {
        self.0.verify_strict(message, &ed25519_dalek::Signature::from_bytes(sig)).is_ok()
    }

    /// The fingerprint operators compare by eye: the first 16 hex digits of the key's sha256.
    pub(crate) fn fingerprint(&self) -> String {
        let mut hex = super::digest::sha256_hex(self.0.as_bytes());
        hex.truncate(16);
        hex
    }

    /// The inner key, for signature verification.
    pub(crate) fn inner(&self) -> &ed25519_dalek::VerifyingKey {
        &self.0
    }

    /// The public key in the upstream `.pub` file layout.
    pub fn to_file_text(&self, key_id: Option<&str>) -> String {
        key_file_text(PUBLIC_HEADER, key_id, &self.to_b64())
    }
}

fn key_file_text(header: &str, key_id: Option<&str>, b64: &str) -> String {
    match key_id {
        Some(id) => format!("{header}\n# Key ID: {id}\n{b64}\n"),
        None => format!("{header}\n{b64}\n"),
    }
}

/// Loads an upstream private key file.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, CryptoError> {
    let bytes = read_key_file(path, KeyKind::Private)?;
    let seed: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| bad(path, KeyProblem::WrongLength { expected: 32, found: bytes.len() }))?;
    Ok(SigningKey::from_seed(&seed))
}

/// Parses the text of an upstream private key file held in memory (an escrow decrypted without
/// touching disk); the same rule as [`load_signing_key`].
pub(crate) fn signing_key_from_text(text: &str) -> Result<SigningKey, KeyProblem> {
    let bytes = decode_key_text(text, KeyKind::Private)?;
    let seed: [u8; 32] =
        bytes.as_slice().try_into().map_err(|_| KeyProblem::WrongLength { expected: 32, found: bytes.len() })?;
    Ok(SigningKey::from_seed(&seed))
}

/// Loads an upstream public key file.
pub fn load_public_key(path: &Path) -> Result<PublicKey, CryptoError> {
    let bytes = read_key_file(path, KeyKind::Public)?;
    if bytes.len() != 32 {
        return Err(bad(path, KeyProblem::WrongLength { expected: 32, found: bytes.len() }));
    }
    PublicKey::from_bytes(&bytes).map_err(|_| bad(path, KeyProblem::InvalidPoint))
}

/// The key id recorded in a key file's `# Key ID:` (or `# key-id:`) comment, if any.
pub(crate) fn key_id_in_file(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix('#')?.trim();
        let lower = rest.to_ascii_lowercase();
        ["key id:", "key-id:"].iter().find(|p| lower.starts_with(*p)).map(|p| rest[p.len()..].trim().to_string())
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Private,
    Public,
}

impl KeyKind {
    fn name(self) -> &'static str {
        match self {
            KeyKind::Private => "private",
            KeyKind::Public => "public",
        }
    }
}

fn bad(path: &Path, problem: KeyProblem) -> CryptoError {
    CryptoError::BadKeyFile { path: path.to_path_buf(), problem }
}

fn read_key_file(path: &Path, kind: KeyKind) -> Result<Vec<u8>, CryptoError> {
    let raw = std::fs::read(path).map_err(|source| CryptoError::ReadKey { path: path.to_path_buf(), source })?;
    let text = String::from_utf8(raw).map_err(|_| bad(path, KeyProblem::NotText))?;
    decode_key_text(&text, kind).map_err(|problem| bad(path, problem))
}

/// Applies upstream's loader rule to the text of a key file.
fn decode_key_text(text: &str, kind: KeyKind) -> Result<Vec<u8>, KeyProblem> {
    if let Some(found) = declared_kind(text) {
        if found != kind {
            return Err(KeyProblem::WrongKind { expected: kind.name(), found: found.name() });
        }
    }
    let body: String = text.lines().filter(|line| !line.starts_with('#')).map(str::trim).collect();
    if body.is_empty() {
        return Err(KeyProblem::Empty);
    }
    b64_decode(&body).ok_or(KeyProblem::NotBase64)
}

fn declared_kind(text: &str) -> Option<KeyKind> {
    text.lines().find_map(|line| match line.trim_end() {
        PRIVATE_HEADER => Some(KeyKind::Private),
        PUBLIC_HEADER => Some(KeyKind::Public),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_rule_strips_comments_and_whitespace() {
        let text = "# Ed25519 Private Key\nS4OR8zs44Ri5M5ZC5eiu\n  IdBk2j0eqCqUgp2zXSlJjl8=  \n";
        let bytes = decode_key_text(text, KeyKind::Private).unwrap();
        assert_eq!(b64_encode(&bytes), "S4OR8zs44Ri5M5ZC5eiuIdBk2j0eqCqUgp2zXSlJjl8=");
    }

    #[test]
    fn public_file_is_refused_as_private() {
        let text = "# Ed25519 Public Key\n9Ci7Uk+4W6QaaxfxQsGKjQkBFVrjVaYgGUJiWSm66IQ=\n";
        assert_eq!(
            decode_key_text(text, KeyKind::Private),
            Err(KeyProblem::WrongKind { expected: "private", found: "public" })
        );
    }

    #[test]
    fn a_key_file_text_in_memory_round_trips_and_a_public_one_is_refused() {
        let key = SigningKey::from_seed(&[9u8; 32]);
        let back = signing_key_from_text(&key.to_file_text(Some("na-1"))).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        assert_eq!(
            signing_key_from_text(&key.public_key().to_file_text(None)).map(|k| k.public_key()),
            Err(KeyProblem::WrongKind { expected: "private", found: "public" })
        );
        assert_eq!(
            signing_key_from_text("# Ed25519 Private Key\nAAAA\n").map(|k| k.public_key()),
            Err(KeyProblem::WrongLength { expected: 32, found: 3 })
        );
    }

    #[test]
    fn debug_never_shows_seed() {
        let key = SigningKey::from_seed(&[7u8; 32]);
        let shown = format!("{key:?}");
        assert!(shown.contains("[redacted]"));
        assert!(!shown.contains(&b64_encode(&[7u8; 32])));
    }
}
