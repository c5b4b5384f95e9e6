//! The file side of `gm managed prune`: list a backup folder, find which of its backups the ops
//! ledger names, and delete the ones a [`super::Plan`] drops.
//!
//! Only regular files whose name parses as a backup ([`BackupFile::parse`]) are candidates. Symlinks
//! are never followed or deleted (even one named like a backup), folders are never entered, and
//! everything else (`.tmp` files, stale `.gm-backup*` scratch folders, notes) is listed as ignored
//! and left alone: cleaning temporary files is not retention's job.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::BackupFile;
use crate::ops::backup_name::FOLDER_LOCK;
use crate::ops::error::{io, OpsError};

/// A folder's backups and the entries prune leaves alone.
#[derive(Debug, Default)]
pub(crate) struct Folder {
    /// Regular files named like backups.
    pub backups: Vec<BackupFile>,
    /// Everything else, by name.
    pub ignored: Vec<Ignored>,
}

/// An entry prune does not touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ignored {
    /// Its name (lossy if not UTF-8).
    pub name: String,
    /// Why it is left alone.
    pub kind: IgnoredKind,
    /// What the checks found, for [`IgnoredKind::Unverified`].
    pub detail: Option<String>,
}

/// Why an entry is not a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IgnoredKind {
    /// A symbolic link (never followed, never deleted).
    Symlink,
    /// A folder (never entered).
    Folder,
    /// A file whose name is not `gm-<network>-<UTC>.tar.gz.age` (including `.tmp` files).
    NotBackupName,
    /// A socket, FIFO or device.
    Special,
    /// Named like a backup, but its signature does not check out (`ops::catalog`): never
    /// counted by the rules, never deleted.
    Unverified,
    /// A backup signature (`.sig`) whose backup is gone.
    OrphanSignature,
}

impl IgnoredKind {
    /// A short label for reports.
    pub(crate) fn label(self) -> &'static str {
        match self {
            IgnoredKind::Symlink => "symlink",
            IgnoredKind::Folder => "folder",
            IgnoredKind::NotBackupName => "not a backup name",
            IgnoredKind::Special => "not a regular file",
            IgnoredKind::Unverified => "unverified backup (kept, never counted)",
            IgnoredKind::OrphanSignature => "signature without its backup",
        }
    }
}

/// Lists `dir` without following symlinks. Backups come sorted by name, ignored entries too.
pub(crate) fn scan(dir: &Path) -> Result<Folder, OpsError> {
    let mut folder = Folder::default();
    for entry in fs::read_dir(dir).map_err(io("read folder", dir))? {
        let entry = entry.map_err(io("read folder", dir))?;
        let raw_name = entry.file_name();
        let name = raw_name.to_string_lossy().to_string();
        if name == FOLDER_LOCK {
            continue;
        }
        // `DirEntry::file_type` does not follow symlinks.
        let file_type = entry.file_type().map_err(io("inspect", &entry.path()))?;
        let kind = if file_type.is_symlink() {
            IgnoredKind::Symlink
        } else if file_type.is_dir() {
            IgnoredKind::Folder
        } else if !file_type.is_file() {
            IgnoredKind::Special
        } else if let Some(backup) = raw_name.to_str().and_then(BackupFile::parse) {
            folder.backups.push(backup);
            continue;
        } else if let Some(archive) = name.strip_suffix(".sig").filter(|a| BackupFile::parse(a).is_some()) {
            // A backup's signature belongs to it (deleted with it); only an orphan is listed.
            if dir.join(archive).symlink_metadata().is_ok_and(|m| m.is_file()) {
                continue;
            }
            IgnoredKind::OrphanSignature
        } else {
            IgnoredKind::NotBackupName
        };
        folder.ignored.push(Ignored { name, kind, detail: None });
    }
    folder.backups.sort_by(|a, b| a.name.cmp(&b.name));
    folder.ignored.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(folder)
}

/// The names of the backups in `dir` that ledger artifact paths name.
///
/// The ledger records artifact paths as they were given, relative to a working folder prune does not
/// know. So an artifact names a backup when:
/// - it resolves (symlinks and `..` included) to the same file as the backup, or
/// - it is relative, or absolute but gone (the backup was moved), and its file name equals the
///   backup's name. Backup names carry the network and the second they were taken, so an equal name
///   means a copy of the same backup. An absolute artifact that still exists elsewhere names only
///   that file, not a copy of it in `dir`.
///
/// A match can only protect a backup, never delete one, so the fallback errs towards keeping.
pub(crate) fn named_by_artifacts(dir: &Path, backups: &[BackupFile], artifacts: &[String]) -> BTreeSet<String> {
    let canonical_dir = fs::canonicalize(dir).ok();
    let in_dir: BTreeSet<&str> = backups.iter().map(|b| b.name.as_str()).collect();
    let mut named = BTreeSet::new();
    for artifact in artifacts {
        let path = Path::new(artifact);
        let resolved = fs::canonicalize(path).ok();
        let file_name = path.file_name().and_then(|n| n.to_str());
        if let (Some(resolved), Some(dir)) = (&resolved, &canonical_dir) {
            let name = resolved.file_name().and_then(|n| n.to_str());
            if resolved.parent() == Some(dir.as_path()) {
                if let Some(name) = name.filter(|n| in_dir.contains(n)) {
                    named.insert(name.to_string());
                }
            }
        }
        let by_name = path.is_relative() || resolved.is_none();
        if let Some(name) = file_name.filter(|n| by_name && in_dir.contains(n)) {
            named.insert(name.to_string());
        }
    }
    named
}

/// The outcome of deleting one backup.
#[derive(Debug)]
pub(crate) struct Deletion {
    /// The file name.
    pub name: String,
    /// Ok when it is gone.
    pub result: Result<(), OpsError>,
}

/// What [`delete`] did.
#[derive(Debug)]
pub(crate) struct Deleted {
    /// One outcome per requested file, in the order given.
    pub deletions: Vec<Deletion>,
    /// The folder fsync after the deletions (skipped when nothing was deleted).
    pub sync: Result<(), OpsError>,
}

impl Deleted {
    /// How many deletions failed (the folder fsync counts as one).
    pub(crate) fn failures(&self) -> usize {
        self.deletions.iter().filter(|d| d.result.is_err()).count() + usize::from(self.sync.is_err())
    }
}

/// Deletes the named backups from `dir` one by one, carrying on past failures, then fsyncs `dir` so
/// the deletions survive a crash. Each name is checked again just before it goes: it must still
/// parse as a backup and still be a regular file (not replaced by a symlink or folder meanwhile).
pub(crate) fn delete(dir: &Path, names: &[&str]) -> Deleted {
    let deletions: Vec<Deletion> =
        names.iter().map(|name| Deletion { name: name.to_string(), result: delete_one(dir, name) }).collect();
    let sync = if deletions.iter().any(|d| d.result.is_ok()) { sync_folder(dir) } else { Ok(()) };
    Deleted { deletions, sync }
}

fn delete_one(dir: &Path, name: &str) -> Result<(), OpsError> {
    let path: PathBuf = dir.join(name);
    if BackupFile::parse(name).is_none() {
        return Err(OpsError::Refused { reason: format!("refusing to delete {}: not a backup name", path.display()) });
    }
    let meta = fs::symlink_metadata(&path).map_err(io("inspect", &path))?;
    if !meta.file_type().is_file() {
        return Err(OpsError::Refused {
            reason: format!("refusing to delete {}: no longer a regular file", path.display()),
        });
    }
    fs::remove_file(&path).map_err(io("delete", &path))?;
    // The signature goes with its backup; a failure here leaves an inert orphan, listed next time.
    let sig = dir.join(format!("{name}.sig"));
    if fs::symlink_metadata(&sig).is_ok_and(|m| m.is_file()) {
        let _ = fs::remove_file(&sig);
    }
    Ok(())
}

fn sync_folder(dir: &Path) -> Result<(), OpsError> {
    fs::File::open(dir).and_then(|f| f.sync_all()).map_err(io("fsync folder", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(label: &str) -> Dir {
            let path = std::env::temp_dir().join(format!("gm-prune-{label}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            Dir(path)
        }
        fn touch(&self, name: &str) -> PathBuf {
            let p = self.0.join(name);
            fs::write(&p, b"x").unwrap();
            p
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const A: &str = "gm-acme-20261125T120000Z.tar.gz.age";
    const B: &str = "gm-acme-20261124T120000Z.tar.gz.age";

    #[test]
    fn scan_lists_only_regular_backup_files() {
        let d = Dir::new("scan");
        d.touch(A);
        d.touch(&format!("{B}.tmp"));
        d.touch("notes.txt");
        fs::create_dir(d.0.join(".gm-backup-123")).unwrap();
        fs::create_dir(d.0.join("gm-acme-20261101T000000Z.tar.gz.age")).unwrap();
        std::os::unix::fs::symlink(d.0.join(A), d.0.join("gm-acme-20261102T000000Z.tar.gz.age")).unwrap();
        let f = scan(&d.0).unwrap();
        assert_eq!(f.backups.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), [A]);
        let ignored: Vec<(&str, IgnoredKind)> = f.ignored.iter().map(|i| (i.name.as_str(), i.kind)).collect();
        assert_eq!(
            ignored,
            [
                (".gm-backup-123", IgnoredKind::Folder),
                ("gm-acme-20261101T000000Z.tar.gz.age", IgnoredKind::Folder),
                ("gm-acme-20261102T000000Z.tar.gz.age", IgnoredKind::Symlink),
                ("gm-acme-20261124T120000Z.tar.gz.age.tmp", IgnoredKind::NotBackupName),
                ("notes.txt", IgnoredKind::NotBackupName),
            ]
        );
    }

    #[test]
    fn artifacts_match_by_resolved_path_or_by_name_when_relative_or_gone() {
        let d = Dir::new("match");
        let a = d.touch(A);
        d.touch(B);
        let backups = scan(&d.0).unwrap().backups;
        let named = |artifacts: &[String]| named_by_artifacts(&d.0, &backups, artifacts);
        // The absolute path, and a path through `..`.
        assert_eq!(named(&[a.display().to_string()]), BTreeSet::from([A.to_string()]));
        let dotted = d.0.join("..").join(d.0.file_name().unwrap()).join(B);
        assert_eq!(named(&[dotted.display().to_string()]), BTreeSet::from([B.to_string()]));
        // Relative from an unknown working folder, and absolute but moved: by name.
        assert_eq!(named(&[format!("backups/{A}")]), BTreeSet::from([A.to_string()]));
        assert_eq!(named(&[format!("/gone/elsewhere/{B}")]), BTreeSet::from([B.to_string()]));
        // An absolute path to another, existing copy does not name the one in the folder.
        let other = Dir::new("match-other");
        let copy = other.touch(A);
        assert!(named(&[copy.display().to_string()]).is_empty());
        // Nothing else matches.
        assert!(named(&["gm-acme-20261123T120000Z.tar.gz.age".to_string(), String::new()]).is_empty());
    }

    #[test]
    fn delete_carries_on_past_failures_and_reports_each() {
        let d = Dir::new("delete");
        d.touch(A);
        d.touch("notes.txt");
        let done = delete(&d.0, &[B, A, "notes.txt"]);
        let results: Vec<(&str, bool)> = done.deletions.iter().map(|x| (x.name.as_str(), x.result.is_ok())).collect();
        assert_eq!(results, [(B, false), (A, true), ("notes.txt", false)]);
        assert_eq!(done.failures(), 2);
        assert!(done.sync.is_ok());
        assert!(!d.0.join(A).exists());
        assert!(d.0.join("notes.txt").exists(), "a non-backup name is refused even when asked");
        let first = done.deletions[0].result.as_ref().unwrap_err().to_string();
        assert!(first.starts_with(&format!("cannot inspect {}", d.0.join(B).display())), "{first}");
    }

    #[test]
    fn delete_refuses_a_backup_replaced_by_a_symlink() {
        let d = Dir::new("delete-link");
        let target = d.touch("target");
        std::os::unix::fs::symlink(&target, d.0.join(A)).unwrap();
        let done = delete(&d.0, &[A]);
        assert_eq!(done.failures(), 1);
        assert!(d.0.join(A).symlink_metadata().is_ok() && target.exists());
    }
}
