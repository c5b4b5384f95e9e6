//! Escrow of the NA private key (`gm custody escrow` and `escrow-check`): the managed custody
//! model's required backup of the NA key, age-encrypted to the customer's X25519 recipients so that
//! only the customer can open it. The plaintext is the key in the upstream key file layout (header,
//! `# Key ID:` when the source has one, base64 seed), so `age -d -i customer.key FILE > na.key`
//! gives back a key file `gm serve` loads. The check decrypts in memory and confirms the key's
//! public half is the genesis NA key.
//!
//! Must not: write the key in the clear anywhere (the plaintext lives in a zeroized buffer), return
//! it to a caller, replace an existing escrow file, or read more than [`MAX_ESCROW_BYTES`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use age::secrecy::{ExposeSecret, SecretString};

use crate::crypto::keys::{load_signing_key, PublicKey, SigningKey};

use super::archive::Key;
use super::backup::load_genesis;
use super::error::{io, OpsError};
use super::verify::Check;

/// The largest escrow file the check reads: a key file is about 100 bytes, its age envelope a few
/// hundred per recipient.
pub(crate) const MAX_ESCROW_BYTES: u64 = 64 * 1024;

/// What `escrow` wrote.
#[derive(Debug)]
pub(crate) struct Escrowed {
    /// The escrow file.
    pub output: PathBuf,
    /// The recipients it is encrypted to (`age1…`).
    pub recipients: Vec<String>,
    /// The escrowed key's public half (base64).
    pub public_key: String,
    /// The escrowed key's fingerprint ([`fingerprint`]).
    pub fingerprint: String,
    /// The key id of the source file's `# Key ID:` line, kept in the escrowed text.
    pub key_id: Option<String>,
}

/// A public key's fingerprint: `sha256:` and the hex SHA-256 of its 32 raw bytes.
pub(crate) fn fingerprint(key: &PublicKey) -> String {
    format!("sha256:{}", crate::crypto::digest::sha256_hex(key.inner().as_bytes()))
}

/// Encrypts the NA private key in `key_file` to `recipients` into `output` (mode 0600, atomic,
/// refused when `output` exists). Refuses an empty recipient list.
pub(crate) fn escrow(
    key_file: &Path,
    recipients: &[age::x25519::Recipient],
    output: &Path,
) -> Result<Escrowed, OpsError> {
    if recipients.is_empty() {
        return Err(OpsError::Refused { reason: "no age recipient to escrow the NA key to".into() });
    }
    if std::fs::symlink_metadata(output).is_ok() {
        return Err(OpsError::Exists { path: output.to_path_buf() });
    }
    let key = load_signing_key(key_file).map_err(|e| OpsError::Refused { reason: e.to_string() })?;
    let key_id = crate::crypto::keys::key_id_in_file(key_file);
    let plaintext = SecretString::from(key.to_file_text(key_id.as_deref()));
    let sealed = seal(plaintext.expose_secret().as_bytes(), recipients)?;
    crate::files::atomic::write_atomic(output, &sealed, crate::files::atomic::Mode::Private, false).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            OpsError::Exists { path: output.to_path_buf() }
        } else {
            io("write", output)(e)
        }
    })?;
    let public = key.public_key();
    Ok(Escrowed {
        output: output.to_path_buf(),
        recipients: recipients.iter().map(ToString::to_string).collect(),
        public_key: public.to_b64(),
        fingerprint: fingerprint(&public),
        key_id,
    })
}

fn seal(plaintext: &[u8], recipients: &[age::x25519::Recipient]) -> Result<Vec<u8>, OpsError> {
    let crypto = |e: &dyn std::fmt::Display| OpsError::Crypto { problem: format!("age encryption: {e}") };
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient)).map_err(|e| crypto(&e))?;
    let mut sealed = Vec::new();
    let mut writer = encryptor.wrap_output(&mut sealed).map_err(|e| crypto(&e))?;
    writer.write_all(plaintext).map_err(|e| crypto(&e))?;
    writer.finish().map_err(|e| crypto(&e))?;
    Ok(sealed)
}

/// Whether the genesis in `genesis_file` (verified with its own root key) names `public_key` as its
/// NA key; `None` when there is no such genesis to compare with.
pub(crate) fn genesis_names(genesis_file: &Path, public_key: &str) -> Option<bool> {
    let (_, genesis) = load_genesis(genesis_file).ok()?;
    genesis.check_root_signatures().is_valid().then(|| genesis.network_authority.public_key == public_key)
}

/// The outcome of `escrow-check`.
#[derive(Debug)]
pub(crate) struct EscrowCheck {
    /// Every check run, in order (stops at the first failure).
    pub checks: Vec<Check>,
    /// The escrowed key's public half, once decrypted.
    pub public_key: Option<String>,
    /// Its fingerprint.
    pub fingerprint: Option<String>,
    /// The genesis network name.
    pub network_name: String,
}

impl EscrowCheck {
    /// True when every check passed.
    pub(crate) fn ok(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.ok)
    }

    fn add(&mut self, name: &'static str, ok: bool, detail: impl Into<String>) -> bool {
        self.checks.push(Check { name, ok, detail: detail.into() });
        ok
    }
}

/// Decrypts `file` with `identity` in memory and checks that it holds an Ed25519 private key whose
/// public half is the NA key of `genesis_file` (which must verify with its own root key).
/// Unreadable inputs are `Err`; a file that fails a check is an `Ok` report with the failure.
pub(crate) fn check(file: &Path, identity: &Key, genesis_file: &Path) -> Result<EscrowCheck, OpsError> {
    let (_, genesis) = load_genesis(genesis_file)?;
    if !genesis.check_root_signatures().is_valid() {
        return Err(OpsError::Refused {
            reason: format!("the genesis {} does not verify with its root key", genesis_file.display()),
        });
    }
    let mut r = EscrowCheck {
        checks: Vec::new(),
        public_key: None,
        fingerprint: None,
        network_name: genesis.network_name.clone(),
    };
    let sealed = read_bounded(file)?;
    let plaintext = match open(&sealed, identity) {
        Ok(p) => p,
        Err(problem) => {
            r.add("decrypt", false, problem);
            return Ok(r);
        }
    };
    r.add("decrypt", true, format!("decrypted in memory ({} bytes of age envelope)", sealed.len()));
    let key: SigningKey = match crate::crypto::keys::signing_key_from_text(plaintext.expose_secret()) {
        Ok(k) => k,
        Err(problem) => {
            r.add("key", false, format!("the decrypted content is not an upstream NA private key file: {problem}"));
            return Ok(r);
        }
    };
    let public = key.public_key();
    r.public_key = Some(public.to_b64());
    r.fingerprint = Some(fingerprint(&public));
    r.add("key", true, format!("an Ed25519 private key, public half {} ({})", public.to_b64(), fingerprint(&public)));
    let expected = &genesis.network_authority.public_key;
    let same = &public.to_b64() == expected;
    r.add(
        "genesis_na_key",
        same,
        if same {
            format!("the NA key of genesis {} ({})", genesis.network_name, genesis_file.display())
        } else {
            format!(
                "the genesis {} ({}) names NA key {expected}, not this key",
                genesis.network_name,
                genesis_file.display()
            )
        },
    );
    Ok(r)
}

fn read_bounded(file: &Path) -> Result<Vec<u8>, OpsError> {
    let f = std::fs::File::open(file).map_err(io("read", file))?;
    let mut sealed = Vec::new();
    f.take(MAX_ESCROW_BYTES + 1).read_to_end(&mut sealed).map_err(io("read", file))?;
    if sealed.len() as u64 > MAX_ESCROW_BYTES {
        return Err(OpsError::Refused {
            reason: format!(
                "{} is larger than {MAX_ESCROW_BYTES} bytes: not an escrowed NA key (gm custody escrow writes a few hundred bytes)",
                file.display()
            ),
        });
    }
    Ok(sealed)
}

/// Decrypts `sealed` with `identity` into a zeroized buffer; `Err` says why it cannot.
fn open(sealed: &[u8], identity: &Key) -> Result<SecretString, String> {
    let Key::Identities(ids) = identity else {
        return Err("an escrow is opened with the customer's age identity (--identity)".into());
    };
    let decryptor = age::Decryptor::new(sealed).map_err(|e| format!("not an age file: {e}"))?;
    let mut reader = decryptor
        .decrypt(ids.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| format!("cannot decrypt with the given identity: {e}"))?;
    let mut bytes = Vec::new();
    let read = (&mut reader).take(MAX_ESCROW_BYTES).read_to_end(&mut bytes).map_err(|e| e.to_string());
    let text = String::from_utf8(bytes).map_err(|_| "the decrypted content is not text".to_string());
    // Wrap before reporting any error, so the plaintext is zeroized on every path.
    let text = text.map(SecretString::from);
    read?;
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gm-escrow-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn escrow_refuses_no_recipient_and_an_existing_output_and_writes_0600() {
        let d = dir("refuse");
        let key = SigningKey::generate();
        let key_file = d.join("na.key");
        std::fs::write(&key_file, key.to_file_text(Some("na-1"))).unwrap();
        let out = d.join("na.key.age");
        assert!(matches!(escrow(&key_file, &[], &out), Err(OpsError::Refused { .. })));
        assert!(!out.exists());
        let id = age::x25519::Identity::generate();
        let done = escrow(&key_file, &[id.to_public()], &out).unwrap();
        assert_eq!(done.public_key, key.public_key().to_b64());
        assert_eq!(done.key_id.as_deref(), Some("na-1"));
        assert_eq!(crate::files::private::mode_of(&out).unwrap(), 0o600);
        let before = std::fs::read(&out).unwrap();
        assert!(matches!(escrow(&key_file, &[id.to_public()], &out), Err(OpsError::Exists { .. })));
        assert_eq!(std::fs::read(&out).unwrap(), before);
        let text = String::from_utf8_lossy(&before).to_string();
        assert!(!text.contains(&key.to_file_text(None).lines().nth(1).unwrap().to_string()));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_fingerprint_is_the_sha256_of_the_raw_public_key() {
        let key = PublicKey::from_b64("Wwoe8FU1sy0NkSK8mcEi1qmNA8nN7tlY0LqFz6sNyU0=").unwrap();
        let raw = crate::crypto::digest::b64_decode(&key.to_b64()).unwrap();
        assert_eq!(fingerprint(&key), format!("sha256:{}", crate::crypto::digest::sha256_hex(&raw)));
        assert_eq!(fingerprint(&key).len(), 7 + 64);
    }
}
