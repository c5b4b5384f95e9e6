//! Which backups in a folder can be trusted, and in what order (finding F13). A file's name is
//! not evidence: anyone who can write to the folder can name a file `gm-<network>-20991231T…`.
//! A backup counts only when its signature (`<archive>.sig`) verifies with the pinned
//! backup-signing key, names this file and its bytes (SHA-256 and size), and agrees with the file
//! name (network and second). Its time is the *signed* `created_at`. Everything else is listed as
//! rejected, with the reason, so `restore-drill --latest`, the scheduled verify and `prune` can
//! report it; none of them ever picks, counts or deletes a rejected file.
//!
//! Checking a file reads it once to hash it; no decryption is needed, so a host holding only the
//! age recipients and the backup-signing public key (the NA host) can run it.

use std::path::{Path, PathBuf};

use crate::crypto::keys::PublicKey;
use crate::model::timestamp::parse_db_time;

use super::backup::file_sha256;
use super::backup_signature::BackupSignature;
use super::error::OpsError;
use super::prune::folder::{scan, Folder};
use super::prune::BackupFile;

/// A backup whose signature checks out, dated by the signed `created_at`.
#[derive(Debug, Clone)]
pub struct SignedBackup {
    /// The file (its `taken_at` is the signed time, equal to the name's).
    pub file: BackupFile,
    /// Its full path.
    pub path: PathBuf,
}

/// A backup-named file that is not trusted, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The file name.
    pub name: String,
    /// Why it is not trusted.
    pub reason: String,
}

/// A folder's trusted backups (sorted oldest first), its rejected backup-named files, and the
/// entries that are not backups at all.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Backups whose signature checks out.
    pub backups: Vec<SignedBackup>,
    /// Backup-named regular files that failed the checks.
    pub rejected: Vec<Rejected>,
    /// Everything else (as [`scan`] lists it).
    pub other: Folder,
}

impl Catalog {
    /// The newest trusted backup (by signed time, then name).
    pub fn newest(&self) -> Option<&SignedBackup> {
        self.backups.iter().max_by(|a, b| (a.file.taken_at, &a.file.name).cmp(&(b.file.taken_at, &b.file.name)))
    }
}

/// Reads `dir` and checks every backup-named regular file against `pinned`.
pub fn catalog(dir: &Path, pinned: &PublicKey) -> Result<Catalog, OpsError> {
    let mut other = scan(dir)?;
    let named = std::mem::take(&mut other.backups);
    let mut c = Catalog { other, ..Catalog::default() };
    for file in named {
        let path = dir.join(&file.name);
        match check(&path, &file, pinned)? {
            Ok(()) => c.backups.push(SignedBackup { file, path }),
            Err(reason) => c.rejected.push(Rejected { name: file.name, reason }),
        }
    }
    c.backups.sort_by(|a, b| (a.file.taken_at, &a.file.name).cmp(&(b.file.taken_at, &b.file.name)));
    Ok(c)
}

fn check(path: &Path, file: &BackupFile, pinned: &PublicKey) -> Result<Result<(), String>, OpsError> {
    let sig = match BackupSignature::read_for(path) {
        Ok(Some(sig)) => sig,
        Ok(None) => return Ok(Err("unsigned (no .sig file)".into())),
        Err(problem) => return Ok(Err(problem)),
    };
    if let Err(problem) = sig.check(pinned) {
        return Ok(Err(problem));
    }
    if sig.archive != file.name {
        return Ok(Err(format!("the signature is for {}", sig.archive)));
    }
    // The name carries the snapshot time to the second; the manifest has microseconds.
    let signed_second = parse_db_time(&sig.created_at).map(|t| t.timestamp());
    if signed_second != Some(file.taken_at.timestamp()) || sig.network_name != file.network {
        return Ok(Err(format!(
            "the name says {} at {}, the signed manifest says {} at {}",
            file.network,
            file.taken_at.format("%Y-%m-%dT%H:%M:%SZ"),
            sig.network_name,
            sig.created_at
        )));
    }
    let size = std::fs::metadata(path).map_err(super::error::io("read", path))?.len();
    if size != sig.archive_size || file_sha256(path)? != sig.archive_sha256 {
        return Ok(Err("the file's bytes are not the ones the signature names".into()));
    }
    Ok(Ok(()))
}
