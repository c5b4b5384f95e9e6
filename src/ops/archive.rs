//! The backup archive: a gzip-compressed tar of `na.db`, `manifest.json`, `genesis.signed.json` and
//! `operators.json` (public keys only), encrypted with age to X25519 recipients or a passphrase.
//! Reading is bounded: only the expected entry names, each at most once, into a private folder, and
//! the unpacked bytes are capped by [`ExtractLimits`] (a total and an expansion ratio, checked while
//! streaming) so a small crafted archive cannot fill the disk.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use age::secrecy::SecretString;
use sha2::Digest;

use crate::crypto::digest::hex;

use super::error::{io, OpsError};
use super::gzip_members::{default_workers, MemberReader, MemberWriter, Spares};
use super::progress::{Counting, Progress, Silent};

/// Names an archive may hold.
pub const ENTRIES: [&str; 4] = ["na.db", "manifest.json", "genesis.signed.json", "operators.json"];

/// Unpacked bytes always allowed before the expansion ratio is enforced: small archives (a fresh
/// database is mostly empty pages and compresses far beyond any sane ratio) never trip it.
pub(crate) const RATIO_GRACE_BYTES: u64 = 64 * 1024 * 1024;

/// Bounds on what reading an archive may write (`[backup]` in gm.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Largest total of unpacked bytes (all entries), checked against each entry's declared size
    /// before it is written and against the bytes actually written. Defaults to 64 GiB.
    pub max_unpacked_bytes: u64,
    /// Largest ratio of unpacked bytes to compressed bytes read so far, checked while streaming
    /// once [`RATIO_GRACE_BYTES`] are written. Real gm snapshots stay well under it; a
    /// decompression bomb does not. Defaults to 100.
    pub max_expansion_ratio: u64,
}

impl Default for ExtractLimits {
    fn default() -> ExtractLimits {
        ExtractLimits { max_unpacked_bytes: 64 * 1024 * 1024 * 1024, max_expansion_ratio: 100 }
    }
}

/// How an archive is encrypted or decrypted.
pub enum Key {
    /// X25519 recipients (`age1…`), encryption only.
    Recipients(Vec<age::x25519::Recipient>),
    /// An identity file (`AGE-SECRET-KEY-1…`), decryption.
    Identities(Vec<Box<dyn age::Identity + Send + Sync>>),
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
pub(crate) struct ArchiveWriter<W: Write> {
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
    pub(crate) fn append(&mut self, name: &str, path: &Path, progress: &dyn Progress) -> Result<(), OpsError> {
        let file = File::open(path).map_err(io("read", path))?;
        let meta = file.metadata().map_err(io("read", path))?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Deterministic);
        header.set_size(meta.len());
        let reader = Counting::new(file, "archive", meta.len(), progress);
        self.tar.append_data(&mut header, name, reader).map_err(io("archive", path))
    }

    /// Appends `size` bytes read from `reader` as entry `name`, with the (deterministic) metadata
    /// of `meta`: how the backup streams the snapshot while it is still being written.
    pub(crate) fn append_reader(
        &mut self,
        name: &str,
        meta: &std::fs::Metadata,
        size: u64,
        reader: impl Read,
        path: &Path,
    ) -> Result<(), OpsError> {
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(meta, tar::HeaderMode::Deterministic);
        header.set_size(size);
        self.tar.append_data(&mut header, name, reader.take(size)).map_err(io("archive", path))
    }

    /// Finishes the tar, gzip and age streams and returns the output.
    pub(crate) fn finish(self) -> Result<W, OpsError> {
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
pub(crate) struct Hashing<W> {
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
    pub(crate) fn finish(self) -> (W, String, u64) {
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
pub(crate) type EntryDigests = std::collections::BTreeMap<String, String>;

/// Decrypts and unpacks `archive` into the private folder `dir`: only the expected names, each at
/// most once, within `limits` (a duplicate, unexpected or oversized entry is a damaged archive).
pub fn extract(
    archive: &Path,
    key: &Key,
    dir: &Path,
    limits: &ExtractLimits,
    progress: &dyn Progress,
) -> Result<EntryDigests, OpsError> {
    let file = File::open(archive).map_err(io("read", archive))?;
    extract_file(file, archive, key, dir, limits, progress)
}

/// [`extract`] from a file already open (positioned at its start): verification hashes and
/// unpacks the same open file, so a file swapped in the folder meanwhile is never the one unpacked.
pub(crate) fn extract_file(
    file: File,
    archive: &Path,
    key: &Key,
    dir: &Path,
    limits: &ExtractLimits,
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
    let budget = Budget::new(*limits);
    let compressed = Consumed { inner: reader, budget: &budget };
    // Every member, not just the first (a single-member GzDecoder would stop after 2 MiB).
    let gz = MemberReader::new(compressed, default_workers())
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
        // A second copy of an entry is a forged or damaged archive, not a local file clash.
        if digests.contains_key(&name) {
            return Err(OpsError::Archive { problem: format!("duplicate entry {name:?}") });
        }
        check_declared_size(&name, entry.size(), dir, &budget, &digests)?;
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
        copy_within_budget(&name, &mut entry, &mut out, &budget).map_err(|e| match e {
            Copy::Read(e) | Copy::Write(e) => entry_error(e),
            Copy::OverBudget(problem) => OpsError::Archive { problem },
        })?;
        let digest = out.finish().map_err(entry_error)?;
        digests.insert(name, digest);
    }
    Ok(digests)
}

/// Counts what was unpacked against what was read, for [`ExtractLimits`].
struct Budget {
    limits: ExtractLimits,
    consumed: std::cell::Cell<u64>,
    unpacked: std::cell::Cell<u64>,
}

impl Budget {
    fn new(limits: ExtractLimits) -> Budget {
        Budget { limits, consumed: std::cell::Cell::new(0), unpacked: std::cell::Cell::new(0) }
    }

    /// Records `n` more unpacked bytes of `name`; `Err` says which bound was crossed.
    fn add_unpacked(&self, name: &str, n: u64) -> Result<(), String> {
        let unpacked = self.unpacked.get().saturating_add(n);
        self.unpacked.set(unpacked);
        let consumed = self.consumed.get();
        if unpacked > self.limits.max_unpacked_bytes {
            return Err(format!(
                "damaged backup: entry {name} unpacks beyond {} bytes (backup.max_unpacked_bytes in gm.toml)",
                self.limits.max_unpacked_bytes
            ));
        }
        if unpacked > RATIO_GRACE_BYTES && unpacked > consumed.saturating_mul(self.limits.max_expansion_ratio) {
            return Err(format!(
                "damaged backup: entry {name} expands {unpacked} bytes from {consumed} compressed bytes, beyond \
                 the ratio {}:1 (backup.max_expansion_ratio in gm.toml)",
                self.limits.max_expansion_ratio
            ));
        }
        Ok(())
    }
}

/// The compressed stream, counted into the [`Budget`] as it is read.
struct Consumed<'a, R> {
    inner: R,
    budget: &'a Budget,
}

impl<R: Read> Read for Consumed<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.budget.consumed.set(self.budget.consumed.get().saturating_add(n as u64));
        Ok(n)
    }
}

/// Refuses an entry whose tar header declares more than the limits allow, before a byte is
/// written: beyond `max_unpacked_bytes`, beyond the manifest's `snapshot.size_bytes` when the
/// manifest came first, or beyond the free space of `dir` (a local problem, not damage).
fn check_declared_size(
    name: &str,
    declared: u64,
    dir: &Path,
    budget: &Budget,
    digests: &EntryDigests,
) -> Result<(), OpsError> {
    let room = budget.limits.max_unpacked_bytes.saturating_sub(budget.unpacked.get());
    if declared > room {
        return Err(OpsError::Archive {
            problem: format!(
                "damaged backup: entry {name} declares {declared} bytes, beyond backup.max_unpacked_bytes ({} \
                 bytes, {} already unpacked)",
                budget.limits.max_unpacked_bytes,
                budget.unpacked.get()
            ),
        });
    }
    if name == "na.db" && digests.contains_key("manifest.json") {
        let manifest = std::fs::read_to_string(dir.join("manifest.json"))
            .ok()
            .and_then(|t| super::manifest::Manifest::parse(&t).ok());
        if let Some(m) = manifest.filter(|m| m.snapshot_size != declared) {
            return Err(OpsError::Archive {
                problem: format!(
                    "damaged backup: entry na.db declares {declared} bytes, the manifest says {}",
                    m.snapshot_size
                ),
            });
        }
    }
    if let Some(free) = free_bytes(dir).filter(|free| declared > *free) {
        return Err(OpsError::Io {
            action: "unpack",
            path: dir.join(name),
            source: std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!("entry {name} declares {declared} bytes, the folder has {free} bytes free"),
            ),
        });
    }
    Ok(())
}

/// Bytes available to gm in the file system holding `dir`, when the system says.
fn free_bytes(dir: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    s.f_bavail.checked_mul(s.f_frsize)
}

enum Copy {
    Read(std::io::Error),
    Write(std::io::Error),
    OverBudget(String),
}

/// `std::io::copy`, checking the [`Budget`] after every piece so a bomb stops within one piece
/// of the bound.
fn copy_within_budget(name: &str, from: &mut impl Read, to: &mut impl Write, budget: &Budget) -> Result<(), Copy> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Copy::Read(e)),
        };
        budget.add_unpacked(name, n as u64).map_err(Copy::OverBudget)?;
        to.write_all(buf.get(..n).unwrap_or_default()).map_err(Copy::Write)?;
    }
}

/// Writes through to `inner` as it is given (64 KiB at a time from [`copy_within_budget`], still
/// in the CPU cache: 1 MiB writes measured up to 3× the kernel time on 1 GiB) and hashes 1 MiB
/// pieces on a helper thread, so SHA-256 runs on another core than decryption, tar and the file
/// writes (verify's main thread is its bottleneck).
struct HashingWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    pieces: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    hasher: Option<std::thread::JoinHandle<String>>,
    /// Hashed pieces handed back for the next ones (see [`Spares`]).
    spares: Spares,
}

const HASH_PIECE_BYTES: usize = 1 << 20;

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> std::io::Result<HashingWriter<W>> {
        let (pieces, queue) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let spares = Spares::default();
        let handed_back = spares.clone();
        let hasher = std::thread::Builder::new().name("archive-sha256".into()).spawn(move || {
            let mut hasher = sha2::Sha256::new();
            for piece in queue {
                hasher.update(&piece);
                handed_back.give(piece);
            }
            hex(&hasher.finalize())
        })?;
        Ok(HashingWriter {
            inner,
            buf: Vec::with_capacity(HASH_PIECE_BYTES),
            pieces: Some(pieces),
            hasher: Some(hasher),
            spares,
        })
    }

    fn send_piece(&mut self) -> std::io::Result<()> {
        let piece = std::mem::replace(&mut self.buf, self.spares.take(HASH_PIECE_BYTES));
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
        let data = data.get(..n).unwrap_or_default();
        self.inner.write_all(data)?;
        self.buf.extend_from_slice(data);
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
        let digests = extract(
            &dir.join("a.tar.gz.age"),
            &Key::Identities(vec![Box::new(id)]),
            &unpacked,
            &ExtractLimits::default(),
            &Silent,
        )
        .unwrap();
        let original = std::fs::read(&db).unwrap();
        assert_eq!(std::fs::read(unpacked.join("na.db")).unwrap(), original);
        assert_eq!(digests.get("na.db"), Some(&crate::crypto::digest::sha256_hex(&original)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn manifest_declaring(size: u64) -> String {
        crate::crypto::canonical::to_pretty_string(
            &super::super::manifest::Manifest {
                created_at: "2026-01-01T00:00:00+00:00".into(),
                network_name: "m".into(),
                genesis_sha256: "0".repeat(64),
                na_public_key: "k".into(),
                schema_version: 6,
                snapshot_sha256: "0".repeat(64),
                snapshot_size: size,
                row_counts: Vec::new(),
                crl_sequence: 0,
                connectome: (0, 0, 0, 0),
            }
            .to_value(),
        )
    }

    /// Writes `entries` (name, content) in order and extracts them with `limits`.
    fn round_trip(name: &str, entries: &[(&str, &[u8])], limits: &ExtractLimits) -> Result<EntryDigests, OpsError> {
        let dir = scratch(name);
        let files: Vec<(&str, std::path::PathBuf)> = entries
            .iter()
            .enumerate()
            .map(|(i, (n, bytes))| {
                let p = dir.join(format!("in-{i}"));
                std::fs::write(&p, bytes).unwrap();
                (*n, p)
            })
            .collect();
        let id = age::x25519::Identity::generate();
        let list: Vec<(&str, &Path)> = files.iter().map(|(n, p)| (*n, p.as_path())).collect();
        write(File::create(dir.join("a.age")).unwrap(), &Key::Recipients(vec![id.to_public()]), &list, 1).unwrap();
        let out = dir.join("out");
        std::fs::create_dir(&out).unwrap();
        let result = extract(&dir.join("a.age"), &Key::Identities(vec![Box::new(id)]), &out, limits, &Silent);
        std::fs::remove_dir_all(&dir).unwrap();
        result
    }

    fn archive_problem(r: Result<EntryDigests, OpsError>) -> String {
        match r {
            Err(OpsError::Archive { problem }) => problem,
            other => panic!("expected a damaged archive, got {other:?}"),
        }
    }

    #[test]
    fn a_snapshot_larger_than_the_manifest_before_it_declares_is_refused_before_writing() {
        let manifest = manifest_declaring(10);
        let r = round_trip(
            "declared",
            &[("manifest.json", manifest.as_bytes()), ("na.db", &[7u8; 4096])],
            &ExtractLimits::default(),
        );
        assert_eq!(archive_problem(r), "damaged backup: entry na.db declares 4096 bytes, the manifest says 10");
        let manifest = manifest_declaring(4096);
        let r = round_trip(
            "declared-ok",
            &[("manifest.json", manifest.as_bytes()), ("na.db", &[7u8; 4096])],
            &ExtractLimits::default(),
        );
        assert!(r.is_ok(), "{r:?}");
    }

    #[test]
    fn duplicate_entries_and_the_total_bound_are_damaged_archives() {
        let r = round_trip("dup", &[("operators.json", b"[]"), ("operators.json", b"[]")], &ExtractLimits::default());
        assert_eq!(archive_problem(r), "duplicate entry \"operators.json\"");
        let limits = ExtractLimits { max_unpacked_bytes: 100, ..ExtractLimits::default() };
        let r = round_trip("total", &[("operators.json", &[b' '; 60]), ("genesis.signed.json", &[b' '; 60])], &limits);
        assert_eq!(
            archive_problem(r),
            "damaged backup: entry genesis.signed.json declares 60 bytes, beyond backup.max_unpacked_bytes (100 bytes, 60 already unpacked)"
        );
    }

    #[test]
    fn the_expansion_ratio_applies_only_past_the_grace_bytes() {
        let budget = Budget::new(ExtractLimits { max_unpacked_bytes: u64::MAX, max_expansion_ratio: 10 });
        budget.consumed.set(1);
        assert!(budget.add_unpacked("na.db", RATIO_GRACE_BYTES).is_ok(), "within the grace");
        budget.consumed.set(RATIO_GRACE_BYTES / 10 + 1);
        assert!(budget.add_unpacked("na.db", 1).is_ok(), "at the ratio");
        let err = budget.add_unpacked("na.db", 20).unwrap_err();
        assert!(err.contains("beyond the ratio 10:1 (backup.max_expansion_ratio in gm.toml)"), "{err}");
    }
}
