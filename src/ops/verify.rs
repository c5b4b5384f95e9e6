//! `gm managed verify`: decrypts a backup into a private scratch folder and checks, in order, the
//! manifest, the snapshot hash, `PRAGMA integrity_check` (on a read-only, immutable open that never
//! creates a file), the schema version and tables, the genesis (hash, root signatures, NA key) and
//! the stored CRL and policy signatures against that NA key, and the row counts.
//!
//! Before any of that, the backup's signature (`<archive>.sig`, [`super::backup_signature`]) must
//! verify with the pinned backup-signing key and name this archive's hash: the age recipient and
//! the genesis are public, so without it a forged archive with a self-consistent manifest would
//! pass every other check (finding F4). A snapshot with no signed CRL or policy fails too: a
//! database gm has served always holds at least the first CRL.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::crypto::keys::PublicKey;
use crate::model::crl::Crl;
use crate::model::policy::PolicyManifest;
use crate::model::SignedObject;
use crate::store::{schema, snapshot};

use super::archive::{self, ExtractLimits, Key};
use super::backup::{load_genesis, Scratch};
use super::backup_signature::{sidecar_path, BackupSignature, KeyStatus, SignatureTrust};

/// How a failed check that a genuine backup always passes begins (signature, manifest, signed
/// material): the CLI reports such a failure as a damaged or forged backup, with what to do.
pub(crate) const DAMAGED_OR_FORGED: &str = "damaged or forged backup";
use super::error::OpsError;
use super::manifest::Manifest;
use super::progress::Progress;

/// One named check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Its name.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// The outcome of a verification.
#[derive(Debug)]
pub(crate) struct VerifyReport {
    /// Every check run, in order (stops at the first failure).
    pub checks: Vec<Check>,
    /// The manifest, when it could be read.
    pub manifest: Option<Manifest>,
    /// The verified signature, when the backup is signed.
    pub signature: Option<BackupSignature>,
    /// True when an unsigned backup was accepted (`--allow-unsigned`).
    pub unsigned: bool,
}

impl VerifyReport {
    /// True when every check passed.
    pub(crate) fn ok(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.ok)
    }

    fn pass(&mut self, name: &'static str, detail: impl Into<String>) {
        self.checks.push(Check { name, ok: true, detail: detail.into() });
    }

    fn fail(mut self, name: &'static str, detail: impl Into<String>) -> VerifyReport {
        self.checks.push(Check { name, ok: false, detail: detail.into() });
        self
    }
}

/// Verifies `archive`; the decrypted files stay in `scratch` for the caller (restore uses them).
pub(crate) fn verify_into(
    archive: &Path,
    key: &Key,
    scratch: &Scratch,
    limits: &ExtractLimits,
    _now: DateTime<Utc>,
    trust: &SignatureTrust,
    progress: &dyn Progress,
) -> Result<VerifyReport, OpsError> {
    let mut r = VerifyReport { checks: Vec::new(), manifest: None, signature: None, unsigned: false };
    // One open file for the signature's hash and the unpacking: a file renamed over the archive
    // after the check is not the one decrypted.
    let mut file = std::fs::File::open(archive).map_err(super::error::io("read", archive))?;
    match check_signature(archive, &mut file, trust)? {
        Ok(Some((sig, status))) => {
            let retired =
                if status == KeyStatus::Retired { " (a retired key, trusted for backups it signed)" } else { "" };
            r.pass("signature", format!("signed by backup-signing key {} ({}){retired}", sig.key_id, sig.public_key));
            r.signature = Some(sig);
        }
        Ok(None) => {
            r.unsigned = true;
            r.pass("signature", "UNSIGNED backup accepted because of --allow-unsigned: its origin is not proven");
        }
        Err(problem) => return Ok(r.fail("signature", format!("{DAMAGED_OR_FORGED}: {problem}"))),
    }
    std::io::Seek::rewind(&mut file).map_err(super::error::io("read", archive))?;
    let digests = match archive::extract_file(file, archive, key, scratch.path(), limits, progress) {
        Ok(digests) => digests,
        Err(OpsError::Io { action, path, source }) => return Err(OpsError::Io { action, path, source }),
        Err(e) => return Ok(r.fail("decrypt", e.to_string())),
    };
    r.pass("decrypt", "decrypted and unpacked");
    let dir = scratch.path();
    let manifest = match std::fs::read_to_string(dir.join("manifest.json"))
        .map_err(|e| e.to_string())
        .and_then(|t| Manifest::parse(&t))
    {
        Ok(m) => m,
        Err(e) => return Ok(r.fail("manifest", e)),
    };
    if let Some(sig) = &r.signature {
        let manifest_sha = digests.get("manifest.json").map(String::as_str).unwrap_or_default();
        if manifest_sha != sig.manifest_sha256
            || manifest.created_at != sig.created_at
            || manifest.network_name != sig.network_name
        {
            return Ok(
                r.fail("manifest", format!("{DAMAGED_OR_FORGED}: the manifest is not the one the signature names"))
            );
        }
    }
    r.pass("manifest", format!("{} backup of {}", manifest.created_at, manifest.network_name));
    r.manifest = Some(manifest.clone());
    let snap = dir.join("na.db");
    // Hashed while it was unpacked (the same bytes that are now on disk).
    let Some(sha) = digests.get("na.db").filter(|_| snap.exists()).cloned() else {
        return Ok(r.fail("snapshot_sha256", "the archive holds no na.db"));
    };
    if sha != manifest.snapshot_sha256 {
        return Ok(r.fail(
            "snapshot_sha256",
            format!("na.db hashes to {sha}, the manifest says {}", manifest.snapshot_sha256),
        ));
    }
    r.pass("snapshot_sha256", sha);
    // The hash already binds the size; this names it plainly (declared vs found) for the operator.
    let found = std::fs::metadata(&snap).map(|m| m.len()).unwrap_or(0);
    if found != manifest.snapshot_size {
        return Ok(
            r.fail("snapshot_size", format!("na.db is {found} bytes, the manifest says {}", manifest.snapshot_size))
        );
    }
    std::thread::scope(|scope| -> Result<VerifyReport, OpsError> {
        let conn = match snapshot::open_immutable_mapped(&snap) {
            Ok(c) => c,
            Err(e) => return Ok(r.fail("integrity_check", e.to_string())),
        };
        // The rows are counted on a second connection while integrity_check runs (checked last).
        let counted = std::thread::Builder::new()
            .name("verify-count".into())
            .spawn_scoped(scope, || -> Result<Vec<(String, i64)>, OpsError> {
                let conn = snapshot::open_immutable_mapped(&snap)?;
                Ok(snapshot::row_counts(&conn)?.into_iter().map(|(t, n)| (t.to_string(), n)).collect())
            })
            .map_err(super::error::io("start a thread for", &snap))?;
        // Split over the cores (one integrity_check runs on one): the check is most of verify's time.
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        match snapshot::integrity_check_split(&snap, cores.min(4))? {
            Ok(()) => r.pass("integrity_check", "ok"),
            Err(problem) => return Ok(r.fail("integrity_check", problem)),
        }
        let versions = schema::applied_versions(&conn)?;
        let missing = schema::missing_tables(&conn)?;
        let version = versions.last().copied().unwrap_or(0);
        if versions != (1..=schema::KNOWN_VERSION).collect::<Vec<_>>()
            || !missing.is_empty()
            || version != manifest.schema_version
        {
            return Ok(r.fail(
                "schema",
                format!(
                    "versions {}, missing tables {}, manifest says {}",
                    versions.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
                    if missing.is_empty() { "none".to_string() } else { missing.join(", ") },
                    manifest.schema_version
                ),
            ));
        }
        r.pass("schema", format!("versions 1-{version}, all tables present"));
        let genesis_path = dir.join("genesis.signed.json");
        let (bytes, genesis) = match load_genesis(&genesis_path) {
            Ok(g) => g,
            Err(e) => return Ok(r.fail("genesis", e.to_string())),
        };
        let genesis_sha = crate::crypto::digest::sha256_hex(&bytes);
        if genesis_sha != manifest.genesis_sha256 || genesis.network_authority.public_key != manifest.na_public_key {
            return Ok(r.fail("genesis", "genesis hash or NA key differ from the manifest"));
        }
        if !genesis.check_root_signatures().is_valid() {
            return Ok(r.fail("genesis", "the genesis root signature does not verify"));
        }
        r.pass(
            "genesis",
            format!("{} signed by its root key; NA key {}", genesis.network_name, manifest.na_public_key),
        );
        match check_signed_material(&conn, &manifest.na_public_key) {
            Ok(0) => {
                return Ok(r.fail(
                    "signed_material",
                    format!("{DAMAGED_OR_FORGED}: the snapshot holds no CRL or policy signed by the NA key (a database gm has served holds at least its first CRL)"),
                ))
            }
            Ok(n) => r.pass("signed_material", format!("{n} CRL and policy version(s) verify with the NA key")),
            Err(problem) => return Ok(r.fail("signed_material", problem)),
        }
        let counts: Vec<(String, i64)> = match counted.join() {
            Ok(counts) => counts?,
            Err(_) => return Err(OpsError::Archive { problem: "the row-counting thread panicked".into() }),
        };
        let mut expected = manifest.row_counts.clone();
        let mut found = counts.clone();
        expected.sort();
        found.sort();
        if expected != found {
            return Ok(r.fail("row_counts", "row counts differ from the manifest"));
        }
        r.pass("row_counts", format!("{} tables match", counts.len()));
        Ok(r)
    })
}

/// The signature check: `Ok(Ok(Some))` signed by a pinned key (which one) and naming this archive's
/// bytes, `Ok(Ok(None))` unsigned but accepted, `Ok(Err)` the reason it is refused.
pub(crate) fn check_signature(
    archive: &Path,
    file: &mut std::fs::File,
    trust: &SignatureTrust,
) -> Result<Result<Option<(BackupSignature, KeyStatus)>, String>, OpsError> {
    let sig = match BackupSignature::read_for(archive) {
        Ok(Some(sig)) => sig,
        Ok(None) if trust.allow_unsigned => return Ok(Ok(None)),
        Ok(None) => {
            return Ok(Err(format!(
                "no signature file {} (an unsigned backup is accepted only with --allow-unsigned)",
                sidecar_path(archive).display()
            )))
        }
        Err(problem) => return Ok(Err(problem)),
    };
    let Some(pinned) = &trust.pinned else {
        return Ok(Err("no backup-signing public key is pinned to check the signature with".into()));
    };
    let status = match sig.check(pinned) {
        Ok(status) => status,
        Err(problem) => return Ok(Err(problem)),
    };
    let sha = super::backup::reader_sha256(file, archive)?;
    let size = file.metadata().map_err(super::error::io("read", archive))?.len();
    if sha != sig.archive_sha256 || size != sig.archive_size {
        return Ok(Err(format!(
            "the archive hashes to {sha} ({size} bytes), the signature names {} ({} bytes)",
            sig.archive_sha256, sig.archive_size
        )));
    }
    Ok(Ok(Some((sig, status))))
}

/// Checks every stored CRL and policy signature against `na_key` (`Err` names the first failure).
pub(crate) fn check_signed_material(conn: &crate::store::Connection, na_key: &str) -> Result<usize, String> {
    let key = PublicKey::from_b64(na_key).map_err(|e| format!("NA key: {e}"))?;
    let (crls, policies) = snapshot::signed_material(conn).map_err(|e| e.to_string())?;
    for json in &crls {
        let v = crate::json::parse_str(json).map_err(|e| e.to_string())?;
        let crl = Crl::from_value(&v).map_err(|e| e.to_string())?;
        if !crl.check_signatures(&[key]).is_valid() {
            return Err(format!("CRL sequence {} is not signed by this NA key", crl.sequence));
        }
    }
    for json in &policies {
        let v = crate::json::parse_str(json).map_err(|e| e.to_string())?;
        let p = PolicyManifest::from_value(&v).map_err(|e| e.to_string())?;
        if !p.check_signatures(&[key]).is_valid() {
            return Err(format!("policy {} is not signed by this NA key", p.policy_id));
        }
    }
    Ok(crls.len() + policies.len())
}
