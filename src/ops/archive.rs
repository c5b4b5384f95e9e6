//! The backup archive: a gzip-compressed tar of `na.db`, `manifest.json`, `genesis.signed.json` and
//! `operators.json` (public keys only), encrypted with age to X25519 recipients or a passphrase.
//! Reading is bounded: only the expected entry names, each under a size cap, into a private folder.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use age::secrecy::SecretString;
use sha2::Digest;

use crate::crypto::digest::hex;

use super::error::{io, OpsError};
use super::gzip_members::{default_workers, MemberReader, MemberWriter};
use super::progress::{Counting, Progress, Silent};

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

/// An archive being written: tar, multi-member gzip on every core (`gzip_members.rs`; stock
/// `gzip` and `tar` read it), age encryption, into `W`. Entries are appended one by one, so a
/// caller can stream the large snapshot first and add the manifest once it is known.
pub struct ArchiveWriter<W: Write> {
    tar: tar::Builder<MemberWriter<age::stream::StreamWriter<W>>>,
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts an archive encrypted with `key` (recipients or passphrase), gzip level `level`.
    pub fn new(out: W, key: &Key, level: u32) -> Result<ArchiveWriter<W>, OpsError> {
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
        let gz = MemberWriter::new(encrypted, level, default_workers())
            .map_err(|e| OpsError::Archive { problem: format!("cannot start compression: {e}") })?;
        let mut tar = tar::Builder::new(gz);
        tar.mode(tar::HeaderMode::Deterministic);
        // A snapshot the online backup API wrote can have holes; tar's default would store it as a
        // GNU sparse entry, which `extract` refuses (regular files only). Holes read back as zeros.
        tar.sparse(false);
        Ok(ArchiveWriter { tar })
    }

    /// Appends the file at `path` as entry `name`, reporting its bytes to `progress`.
    pub fn append(&mut self, name: &str, path: &Path, progress: &dyn Progress) -> Result<(), OpsError> {
        let file = File::open(path).map_err(io("read", path))?;
        let meta = file.metadata().map_err(io("read", path))?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Deterministic);
        header.set_size(meta.len());
        let reader = Counting::new(file, "archive", meta.len(), progress);
        self.tar.append_data(&mut header, name, reader).map_err(io("archive", path))
    }

    /// Finishes the tar, gzip and age streams and returns the output.
    pub fn finish(self) -> Result<W, OpsError> {
        let gz = self
            .tar
            .into_inner()
            .map_err(|e| OpsError::Archive { problem: format!("cannot finish the tar stream: {e}") })?;
        let encrypted =
            gz.finish().map_err(|e| OpsError::Archive { problem: format!("cannot finish compression: {e}") })?;
        let mut out =
            encrypted.finish().map_err(|e| OpsError::Crypto { problem: format!("cannot finish encryption: {e}") })?;
        out.flush().map_err(|e| OpsError::Archive { problem: e.to_string() })?;
        Ok(out)
    }
}

/// Writes the encrypted archive of `files` (`(name, path)`) into `out`, gzip level `level`.
pub fn write<W: Write>(out: W, key: &Key, files: &[(&str, &Path)], level: u32) -> Result<W, OpsError> {
    let mut w = ArchiveWriter::new(out, key, level)?;
    for (name, path) in files {
        w.append(name, path, &Silent)?;
    }
    w.finish()
}

/// A writer that hashes (SHA-256) and counts what passes through it, so an archive's digest needs
/// no second read of the file.
pub struct Hashing<W> {
    inner: W,
    hasher: sha2::Sha256,
    len: u64,
}

impl<W: Write> Hashing<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Hashing<W> {
        Hashing { inner, hasher: sha2::Digest::new(), len: 0 }
    }

    /// The inner writer, the hex digest and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, crate::crypto::digest::hex(&sha2::Digest::finalize(self.hasher)), self.len)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The SHA-256 (hex) of each unpacked entry, by name: hashed while writing, so checking the
/// snapshot against its manifest needs no second pass over a large file.
pub type EntryDigests = std::collections::BTreeMap<String, String>;

/// Decrypts and unpacks `archive` into the private folder `dir` (only the expected names).
pub fn extract(archive: &Path, key: &Key, dir: &Path, progress: &dyn Progress) -> Result<EntryDigests, OpsError> {
    let file = File::open(archive).map_err(io("read", archive))?;
    extract_file(file, archive, key, dir, progress)
}

/// [`extract`] from a file already open (positioned at its start): verification hashes and
/// unpacks the same open file, so a file swapped in the folder meanwhile is never the one unpacked.
pub fn extract_file(
    file: File,
    archive: &Path,
    key: &Key,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<EntryDigests, OpsError> {
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let decryptor = age::Decryptor::new_buffered(BufReader::new(Counting::new(file, "decrypt", total, progress)))
        .map_err(|e| OpsError::Crypto {
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
    // Every member, not just the first (a single-member GzDecoder would stop after 2 MiB).
    let gz = MemberReader::new(reader, default_workers())
        .map_err(|e| OpsError::Archive { problem: format!("cannot decompress {}: {e}", archive.display()) })?;
    let mut tar = tar::Archive::new(gz);
    let entries = tar.entries().map_err(|e| OpsError::Archive { problem: e.to_string() })?;
    let mut digests = EntryDigests::new();
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
        let out = crate::files::private::create_new_private(&target).map_err(io("write", &target))?;
        let entry_error = |e: std::io::Error| {
            // A full or failing target (EIO) is not damage in the backup. (EIO could also come
            // from the device the backup is read from; either way the archive is not to blame.)
            if super::error::is_out_of_space(&e) || super::error::is_device_error(&e) {
                OpsError::Io { action: "write", path: target.clone(), source: e }
            } else {
                OpsError::Archive { problem: format!("entry {name}: {e}") }
            }
        };
        let mut out = HashingWriter::new(out).map_err(entry_error)?;
        std::io::copy(&mut entry, &mut out).map_err(entry_error)?;
        let digest = out.finish().map_err(entry_error)?;
        digests.insert(name, digest);
    }
    Ok(digests)
}

/// Writes to `inner` in 1 MiB pieces and hashes each piece on a helper thread, so SHA-256 runs on
/// another core than decryption, tar and the file writes (verify's main thread is its bottleneck).
struct HashingWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    pieces: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    hasher: Option<std::thread::JoinHandle<String>>,
}

const HASH_PIECE_BYTES: usize = 1 << 20;

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> std::io::Result<HashingWriter<W>> {
        let (pieces, queue) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let hasher = std::thread::Builder::new().name("archive-sha256".into()).spawn(move || {
            let mut hasher = sha2::Sha256::new();
            for piece in queue {
                hasher.update(&piece);
            }
            hex(&hasher.finalize())
        })?;
        Ok(HashingWriter {
            inner,
            buf: Vec::with_capacity(HASH_PIECE_BYTES),
            pieces: Some(pieces),
            hasher: Some(hasher),
        })
    }

    fn send_piece(&mut self) -> std::io::Result<()> {
        self.inner.write_all(&self.buf)?;
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(HASH_PIECE_BYTES));
        let sent = self.pieces.as_ref().map(|p| p.send(piece));
        if !matches!(sent, Some(Ok(()))) {
            return Err(std::io::Error::other(HASHER_STOPPED));
        }
        Ok(())
    }

    /// Writes the tail and returns the hex SHA-256 of everything written.
    fn finish(mut self) -> std::io::Result<String> {
        self.send_piece()?;
        self.inner.flush()?;
        self.pieces = None;
        let hasher = self.hasher.take().ok_or_else(|| std::io::Error::other(HASHER_STOPPED))?;
        hasher.join().map_err(|_| std::io::Error::other(HASHER_STOPPED))
    }
}

const HASHER_STOPPED: &str = "the archive hashing thread stopped unexpectedly (a gm bug; please report it)";

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(HASH_PIECE_BYTES - self.buf.len());
        self.buf.extend_from_slice(data.get(..n).unwrap_or_default());
        if self.buf.len() >= HASH_PIECE_BYTES {
            self.send_piece()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Drop for HashingWriter<W> {
    /// On an error path: close the queue so the helper ends, and join it.
    fn drop(&mut self) {
        self.pieces = None;
        if let Some(hasher) = self.hasher.take() {
            let _ = hasher.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gm-archive-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    // Regression: tar's default stored a snapshot with holes as a GNU sparse entry, which
    // `extract` refused as "unexpected entry" (found on a 1.2 GiB database while benchmarking issue 5).
    #[test]
    fn a_file_with_holes_round_trips_as_a_regular_entry_with_its_digest() {
        let dir = scratch("sparse");
        let db = dir.join("na.db");
        let mut f = File::create(&db).unwrap();
        f.write_all(b"SQLite format 3\0").unwrap();
        f.set_len(9 * 1024 * 1024 + 17).unwrap();
        drop(f);
        let id = age::x25519::Identity::generate();
        let out = File::create(dir.join("a.tar.gz.age")).unwrap();
        write(out, &Key::Recipients(vec![id.to_public()]), &[("na.db", &db)], 1).unwrap();
        let unpacked = dir.join("out");
        std::fs::create_dir(&unpacked).unwrap();
        let digests =
            extract(&dir.join("a.tar.gz.age"), &Key::Identities(vec![Box::new(id)]), &unpacked, &Silent).unwrap();
        let original = std::fs::read(&db).unwrap();
        assert_eq!(std::fs::read(unpacked.join("na.db")).unwrap(), original);
        assert_eq!(digests.get("na.db"), Some(&crate::crypto::digest::sha256_hex(&original)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
