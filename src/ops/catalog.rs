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

use crate::model::timestamp::parse_db_time;

use super::backup::file_sha256;
use super::backup_signature::{BackupSignature, TrustedKeys};
use super::error::OpsError;
use super::prune::folder::{scan, Folder};
use super::prune::BackupFile;

/// A backup whose signature checks out, dated by the signed `created_at`.
#[derive(Debug, Clone)]
pub(crate) struct SignedBackup {
    /// The file (its `taken_at` is the signed time, equal to the name's).
    pub file: BackupFile,
    /// Its full path.
    pub path: PathBuf,
}

/// A backup-named file that is not trusted, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejected {
    /// The file name.
    pub name: String,
    /// Why it is not trusted.
    pub reason: String,
}

/// A folder's trusted backups (sorted oldest first), its rejected backup-named files, and the
/// entries that are not backups at all.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    /// Backups whose signature checks out.
    pub backups: Vec<SignedBackup>,
    /// Backup-named regular files that failed the checks.
    pub rejected: Vec<Rejected>,
    /// Everything else (as [`scan`] lists it).
    pub other: Folder,
}

impl Catalog {
    /// The newest trusted backup (by signed time, then name).
    pub(crate) fn newest(&self) -> Option<&SignedBackup> {
        self.backups.iter().max_by(|a, b| (a.file.taken_at, &a.file.name).cmp(&(b.file.taken_at, &b.file.name)))
    }
}

/// Reads `dir` and checks every backup-named regular file against the `pinned` keys (current or retired).
pub(crate) fn catalog(dir: &Path, pinned: &TrustedKeys) -> Result<Catalog, OpsError> {
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

fn check(path: &Path, file: &BackupFile, pinned: &TrustedKeys) -> Result<Result<(), String>, OpsError> {
    let sig = match BackupSignature::read_for(path) {
        Ok(Some(sig)) => sig,
        Ok(None) => return Ok(Err("unsigned (no .sig file)".into())),
        Err(problem) => return Ok(Err(problem)),
    };
    if let Err(problem) = signature_names(&sig, file, pinned) {
        return Ok(Err(problem));
    }
    let size = std::fs::metadata(path).map_err(super::error::io("read", path))?.len();
    if size != sig.archive_size || file_sha256(path)? != sig.archive_sha256 {
        return Ok(Err("the file's bytes are not the ones the signature names".into()));
    }
    Ok(Ok(()))
}

/// What a backup's signature must say, wherever the backup is (a folder, a bucket): signed by a
/// pinned key, for this name, at the name's second and network. The bytes are the caller's check.
pub(crate) fn signature_names(sig: &BackupSignature, file: &BackupFile, pinned: &TrustedKeys) -> Result<(), String> {
    sig.check(pinned)?;
    if sig.archive != file.name {
        return Err(format!("the signature is for {}", sig.archive));
    }
    // The name carries the snapshot time to the second; the manifest has microseconds.
    let signed_second = parse_db_time(&sig.created_at).map(|t| t.timestamp());
    if signed_second != Some(file.taken_at.timestamp()) || sig.network_name != file.network {
        return Err(format!(
            "the name says {} at {}, the signed manifest says {} at {}",
            file.network,
            file.taken_at.format("%Y-%m-%dT%H:%M:%SZ"),
            sig.network_name,
            sig.created_at
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::SigningKey;
    use crate::ops::backup_signature::{sidecar_path, BackupSigner};

    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Writes `name` and a signature claiming `created_at`, signed by `signer`.
    fn signed(dir: &Path, name: &str, created_at: &str, signer: &BackupSigner) {
        let path = dir.join(name);
        std::fs::write(&path, name.as_bytes()).unwrap();
        let facts = BackupSignature {
            archive: name.to_string(),
            archive_sha256: file_sha256(&path).unwrap(),
            archive_size: name.len() as u64,
            created_at: created_at.to_string(),
            network_name: "acme".to_string(),
            manifest_sha256: "0".repeat(64),
            key_id: String::new(),
            public_key: String::new(),
            signature: String::new(),
        };
        std::fs::write(sidecar_path(&path), BackupSignature::sign(facts, signer).to_text()).unwrap();
    }

    /// F13: only files whose signature checks out and agrees with the name count, dated by the
    /// signed time; a far-future name, another key, edited bytes and a mismatched time are rejected.
    #[test]
    fn only_signed_backups_that_agree_with_their_name_count() {
        let dir = Dir(std::env::temp_dir().join(format!("gm-catalog-{}", std::process::id())));
        let _ = std::fs::remove_dir_all(&dir.0);
        std::fs::create_dir_all(&dir.0).unwrap();
        let ours = BackupSigner { key: SigningKey::generate(), key_id: "ours".into() };
        let theirs = BackupSigner { key: SigningKey::generate(), key_id: "theirs".into() };
        signed(&dir.0, "gm-acme-20261124T120000Z.tar.gz.age", "2026-11-24T12:00:00.123456", &ours);
        signed(&dir.0, "gm-acme-20261125T120000Z.tar.gz.age", "2026-11-25T12:00:00", &ours);
        signed(&dir.0, "gm-acme-20991231T000000Z.tar.gz.age", "2026-11-25T12:00:00", &ours);
        signed(&dir.0, "gm-acme-20991230T000000Z.tar.gz.age", "2099-12-30T00:00:00", &theirs);
        signed(&dir.0, "gm-acme-20991229T000000Z.tar.gz.age", "2099-12-29T00:00:00", &ours);
        std::fs::write(dir.0.join("gm-acme-20991229T000000Z.tar.gz.age"), b"edited").unwrap();
        std::fs::write(dir.0.join("gm-acme-20991228T000000Z.tar.gz.age"), b"unsigned").unwrap();
        let c = catalog(&dir.0, &TrustedKeys::only(ours.key.public_key())).unwrap();
        let names: Vec<&str> = c.backups.iter().map(|b| b.file.name.as_str()).collect();
        assert_eq!(names, ["gm-acme-20261124T120000Z.tar.gz.age", "gm-acme-20261125T120000Z.tar.gz.age"]);
        assert_eq!(c.newest().unwrap().file.name, "gm-acme-20261125T120000Z.tar.gz.age");
        let rejected: Vec<(&str, &str)> = c.rejected.iter().map(|r| (r.name.as_str(), r.reason.as_str())).collect();
        assert_eq!(rejected[0], ("gm-acme-20991228T000000Z.tar.gz.age", "unsigned (no .sig file)"));
        assert_eq!(
            rejected[1],
            ("gm-acme-20991229T000000Z.tar.gz.age", "the file's bytes are not the ones the signature names")
        );
        assert!(rejected[2].1.contains("not the pinned backup-signing key"), "{rejected:?}");
        assert_eq!(
            rejected[3],
            (
                "gm-acme-20991231T000000Z.tar.gz.age",
                "the name says acme at 2099-12-31T00:00:00Z, the signed manifest says acme at 2026-11-25T12:00:00"
            )
        );
        assert!(c.other.ignored.is_empty(), "signatures of present backups are not listed: {:?}", c.other.ignored);
    }
}
