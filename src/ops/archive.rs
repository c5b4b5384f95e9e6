//! The backup archive: a gzip-compressed tar of `na.db`, `manifest.json`, `genesis.signed.json` and
//! `operators.json` (public keys only), encrypted with age to X25519 recipients or a passphrase.
//! Reading is bounded: only the expected entry names, each under a size cap, into a private folder.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use age::secrecy::SecretString;

use super::error::{io, OpsError};

/// Names an archive may hold.
pub const ENTRIES: [&str; 4] = ["na.db", "manifest.json", "genesis.signed.json", "operators.json"];

/// Largest entry accepted when reading (the database may be large; the rest is small).
const MAX_ENTRY_BYTES: u64 = 64 * 1024 * 1024 * 1024;

/// How an archive is encrypted or decrypted.
pub enum Key {
    /// X25519 recipients (`age1…`), encryption only.
    Recipients(Vec<age::x25519::Recipient>),
    /// An identity file (`AGE-SECRET-KEY-1…`), decryption.
    Identities(Vec<Box<dyn age::Identity>>),
    /// A passphrase (scrypt), both ways.
    Passphrase(SecretString),
}

/// Parses `age1…` recipients, one per line or argument; `#` comments and blank lines are skipped.
pub fn parse_recipients(lines: &[String]) -> Result<Vec<age::x25519::Recipient>, OpsError> {
    lines
        .iter()
        .flat_map(|l| l.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.parse::<age::x25519::Recipient>()
                .map_err(|e| OpsError::Crypto { problem: format!("invalid age recipient {l:?}: {e}") })
        })
        .collect()
}

/// Reads an age identity file.
pub fn read_identities(path: &Path) -> Result<Key, OpsError> {
    let file = File::open(path).map_err(io("read identity file", path))?;
    let ids = age::IdentityFile::from_buffer(BufReader::new(file))
        .map_err(io("read identity file", path))?
        .into_identities()
        .map_err(|e| OpsError::Crypto { problem: format!("identity file {}: {e}", path.display()) })?;
    if ids.is_empty() {
        return Err(OpsError::Crypto { problem: format!("identity file {} holds no identity", path.display()) });
    }
    Ok(Key::Identities(ids))
}

/// Reads a passphrase file (first line, trailing newline removed).
pub fn read_passphrase(path: &Path) -> Result<Key, OpsError> {
    let text = std::fs::read_to_string(path).map_err(io("read passphrase file", path))?;
    let line = text.lines().next().unwrap_or_default().to_string();
    if line.is_empty() {
        return Err(OpsError::Crypto { problem: format!("passphrase file {} is empty", path.display()) });
    }
    Ok(Key::Passphrase(SecretString::from(line)))
}

/// Writes the encrypted archive of `files` (`(name, path)`) into `out`, gzip level `level`.
pub fn write(out: File, key: &Key, files: &[(&str, &Path)], level: u32) -> Result<File, OpsError> {
    let encryptor = match key {
        Key::Recipients(rs) => age::Encryptor::with_recipients(rs.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| OpsError::Crypto { problem: format!("cannot encrypt: {e}") })?,
        Key::Passphrase(p) => age::Encryptor::with_user_passphrase(p.clone()),
        Key::Identities(_) => {
            return Err(OpsError::Crypto { problem: "an identity decrypts; pass recipients to encrypt".into() })
        }
    };
    let encrypted =
        encryptor.wrap_output(out).map_err(|e| OpsError::Crypto { problem: format!("cannot encrypt: {e}") })?;
    let gz = flate2::write::GzEncoder::new(encrypted, flate2::Compression::new(level));
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for (name, path) in files {
        let mut f = File::open(path).map_err(io("read", path))?;
        tar.append_file(name, &mut f).map_err(io("archive", path))?;
    }
    let gz =
        tar.into_inner().map_err(|e| OpsError::Archive { problem: format!("cannot finish the tar stream: {e}") })?;
    let encrypted =
        gz.finish().map_err(|e| OpsError::Archive { problem: format!("cannot finish compression: {e}") })?;
    let mut file =
        encrypted.finish().map_err(|e| OpsError::Crypto { problem: format!("cannot finish encryption: {e}") })?;
    file.flush().map_err(|e| OpsError::Archive { problem: e.to_string() })?;
    Ok(file)
}

/// Decrypts and unpacks `archive` into the private folder `dir` (only the expected names).
pub fn extract(archive: &Path, key: &Key, dir: &Path) -> Result<(), OpsError> {
    let file = File::open(archive).map_err(io("read", archive))?;
    let decryptor = age::Decryptor::new_buffered(BufReader::new(file)).map_err(|e| OpsError::Crypto {
        problem: format!("{} is not an age-encrypted gm backup: {e}", archive.display()),
    })?;
    let scrypt_id;
    let reader: Box<dyn Read> = match key {
        Key::Identities(ids) => Box::new(
            decryptor
                .decrypt(ids.iter().map(|i| i.as_ref() as &dyn age::Identity))
                .map_err(|e| OpsError::Crypto { problem: format!("cannot decrypt {}: {e}", archive.display()) })?,
        ),
        Key::Passphrase(p) => {
            scrypt_id = age::scrypt::Identity::new(p.clone());
            Box::new(
                decryptor
                    .decrypt(std::iter::once(&scrypt_id as &dyn age::Identity))
                    .map_err(|e| OpsError::Crypto { problem: format!("cannot decrypt {}: {e}", archive.display()) })?,
            )
        }
        Key::Recipients(_) => {
            return Err(OpsError::Crypto {
                problem: "recipients can encrypt but not decrypt: pass --identity or --passphrase-file".into(),
            })
        }
    };
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let entries = tar.entries().map_err(|e| OpsError::Archive { problem: e.to_string() })?;
    for entry in entries {
        let mut entry = entry.map_err(|e| OpsError::Archive { problem: e.to_string() })?;
        let name =
            entry.path().map_err(|e| OpsError::Archive { problem: e.to_string() })?.to_string_lossy().to_string();
        if !ENTRIES.contains(&name.as_str()) || entry.header().entry_type() != tar::EntryType::Regular {
            return Err(OpsError::Archive { problem: format!("unexpected entry {name:?}") });
        }
        if entry.size() > MAX_ENTRY_BYTES {
            return Err(OpsError::Archive { problem: format!("entry {name} is larger than the limit") });
        }
        let target = dir.join(&name);
        let mut out = crate::files::private::create_new_private(&target).map_err(io("write", &target))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| OpsError::Archive { problem: format!("entry {name}: {e}") })?;
    }
    Ok(())
}
