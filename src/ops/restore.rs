//! `gm managed restore`: brings a verified backup back as the NA database, safely
//! (`operations.md` §2.2, `deviations.md` D20/D23). It refuses while a `gm serve` holds the
//! database (and holds the same lock itself while it works), verifies first (gm archives: every
//! check; upstream plain `.db` backups: integrity, schema, tables, signatures), refuses a backup of
//! another sovereign unless told otherwise, takes the pre-restore copy with the online backup API,
//! carries over nonces younger than 600 s so a captured request cannot be replayed after the
//! restore, carries over every revocation of the replaced database (a certificate revoked after
//! the backup stays revoked; `gm serve` re-issues the CRL with it above the replaced sequence),
//! folds the old database's WAL (or hot journal) into its main file and moves any side
//! file left aside, and swaps the file in atomically while keeping the target's mode and owner.
//!
//! Killed at any moment (SIGKILL, power loss), a restore leaves the target either the old database
//! or the new one, whole: the new file is built as `<db>.restore-tmp` and renamed in, and the old
//! WAL is folded into the old main file first, so moving the `-wal` aside before the rename loses
//! nothing. The next restore removes the killed run's temporary file (with its SQLite side files,
//! whose stale `-journal` would otherwise be rolled back into the next temporary file) and its
//! scratch folder ([`super::leftovers`]).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};

use crate::files::atomic::sync_parent;
use crate::files::lock::{try_lock_db, LockError};
use crate::model::timestamp::isoformat_utc;
use crate::store::{schema, snapshot, OpenMode, Store};

use super::archive::Key;
use super::backup::{remove_leftovers, snapshot_file, Scratch};
use super::backup_signature::SignatureTrust;
use super::error::{io, OpsError};
use super::leftovers::remove_with_sidecars;
use super::progress::Progress;
use super::verify::{check_signed_material, verify_into, DAMAGED_OR_FORGED};

/// What to restore.
pub(crate) struct RestoreOptions {
    /// The database to replace (need not exist).
    pub db_path: PathBuf,
    /// A gm archive or an upstream plain `.db` backup.
    pub backup: PathBuf,
    /// Decryption for gm archives.
    pub key: Option<Key>,
    /// Where to copy the current database first.
    pub pre_restore_backup: Option<PathBuf>,
    /// Keep the replaced database file beside the new one as `<db>.pre-restore-<UTC>` (a hard
    /// link taken just before the new file is renamed in: no copy, no window without a database
    /// file). The CLI sets it unless `--discard-replaced` is given.
    pub keep_replaced: bool,
    /// The configured genesis NA key (from the gm home), when known.
    pub expected_na_key: Option<String>,
    /// Restore a backup of another sovereign anyway.
    pub allow_different_genesis: bool,
    /// How long to wait for another process's lock on the replaced database (pre-restore copy,
    /// WAL fold) before failing as busy.
    pub busy_timeout: std::time::Duration,
    /// Bounds on what unpacking the archive may write.
    pub limits: super::archive::ExtractLimits,
    /// The pinned backup-signing key and whether unsigned backups are accepted.
    pub trust: SignatureTrust,
}

/// What a restore did.
#[derive(Debug)]
pub(crate) struct RestoreReport {
    /// Where the previous database was copied.
    pub pre_restore_backup: Option<PathBuf>,
    /// Where the replaced database file was kept ([`RestoreOptions::keep_replaced`]).
    pub replaced_kept: Option<PathBuf>,
    /// Nonces carried over.
    pub nonces_carried: usize,
    /// Side files moved aside.
    pub moved_aside: Vec<PathBuf>,
    /// The replaced database's highest CRL sequence (nodes may have seen it): `gm serve` re-issues
    /// the CRL above it when the restored one is lower, so the sequence never goes backwards.
    pub crl_sequence_replaced: Option<i64>,
    /// The restored database's CRL sequence.
    pub crl_sequence_restored: i64,
    /// Revocations of the replaced database that the backup lacked, now applied again
    /// (certificates, treaties, attestations, imported revocations).
    pub revocations_carried: snapshot::CarriedRevocations,
    /// True when an unsigned backup was restored (`--allow-unsigned`).
    pub unsigned: bool,
}

/// Restores per `opts`.
pub(crate) fn restore(
    opts: &RestoreOptions,
    now: DateTime<Utc>,
    progress: &dyn Progress,
) -> Result<RestoreReport, OpsError> {
    let stamp = now.format("%Y%m%dT%H%M%SZ").to_string();
    if let Some(pre) = &opts.pre_restore_backup {
        if pre.exists() {
            return Err(OpsError::Refused {
                reason: format!("refusing to overwrite existing pre-restore backup {}", pre.display()),
            });
        }
    }
    let folder = opts.db_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    std::fs::create_dir_all(&folder).map_err(io("create folder", &folder))?;
    let _lock = match try_lock_db(&opts.db_path) {
        Ok(l) => l,
        Err(LockError::Held { path }) => {
            return Err(OpsError::Refused {
                reason: format!(
                    "{} is served by a running gm (lock {} is held): stop it first",
                    opts.db_path.display(),
                    path.display()
                ),
            })
        }
        Err(LockError::Io { path, source }) => return Err(OpsError::Io { action: "lock", path, source }),
    };
    // The database lock is ours: no other restore of this database runs, so its temporary file is
    // a leftover whatever its age.
    let tmp = restore_tmp_path(&opts.db_path);
    remove_with_sidecars(&tmp);
    remove_leftovers(&folder, ".gm-restore");
    let scratch = Scratch::new(&folder, ".gm-restore")?;
    let (snap, verification, na_key) = if is_age(&opts.backup)? {
        let key = opts.key.as_ref().ok_or_else(|| OpsError::Refused {
            reason: "this backup is encrypted: pass --identity FILE or --passphrase-file FILE".into(),
        })?;
        let report = verify_into(&opts.backup, key, &scratch, &opts.limits, now, &opts.trust, progress)?;
        if !report.ok() {
            let failed = report
                .checks
                .iter()
                .find(|c| !c.ok)
                .map(|c| (c.name, c.detail.clone()))
                .unwrap_or(("verify", String::new()));
            return Err(OpsError::Check { check: failed.0.to_string(), problem: failed.1 });
        }
        let na_key = report.manifest.as_ref().map(|m| m.na_public_key.clone());
        (scratch.path().join("na.db"), Some(report), na_key)
    } else {
        if !opts.trust.allow_unsigned {
            return Err(OpsError::Check {
                check: "signature".into(),
                problem: format!(
                    "{DAMAGED_OR_FORGED}: {} is a plain database copy, which carries no signature; pass --allow-unsigned to restore it anyway",
                    opts.backup.display()
                ),
            });
        }
        validate_plain(&opts.backup, opts.expected_na_key.as_deref())?;
        let copy = scratch.path().join("na.db");
        std::fs::copy(&opts.backup, &copy).map_err(io("copy", &opts.backup))?;
        (copy, None, opts.expected_na_key.clone())
    };
    if let (Some(expected), Some(found)) = (&opts.expected_na_key, &na_key) {
        if expected != found && !opts.allow_different_genesis {
            return Err(OpsError::Refused {
                reason: format!("the backup belongs to NA key {found}, the configured genesis names {expected}; pass --allow-different-genesis to restore it anyway"),
            });
        }
    }
    let unsigned = verification.as_ref().is_none_or(|v| v.unsigned);
    let exists = opts.db_path.exists();
    let mut nonces = Vec::new();
    let mut revoked = snapshot::Revocations::default();
    let mut crl_sequence_replaced = None;
    if exists {
        let store =
            Store::open_with_busy_timeout(&opts.db_path, OpenMode::ReadOnly, &isoformat_utc(now), opts.busy_timeout)?;
        if let Some(pre) = &opts.pre_restore_backup {
            if let Some(parent) = pre.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(io("create folder", parent))?;
                remove_leftovers(parent, ".gm-backup");
            }
            store.read(|c| Ok(snapshot_file(c, pre, opts.busy_timeout)))??;
        }
        crl_sequence_replaced = store.read(|c| {
            if schema::table_exists(c, "crl_versions")? {
                crate::store::crl::max_sequence(c).map(Some)
            } else {
                Ok(None)
            }
        })?;
        // Another sovereign's revocations (--allow-different-genesis) are not this one's to carry.
        let same_sovereign = opts.expected_na_key.as_ref().zip(na_key.as_ref()).is_none_or(|(e, f)| e == f);
        revoked =
            store.read(
                |c| {
                    if same_sovereign {
                        snapshot::revocations(c)
                    } else {
                        Ok(snapshot::Revocations::default())
                    }
                },
            )?;
        let since = isoformat_utc(now - Duration::seconds(600));
        nonces = store.read(|c| {
            if schema::table_exists(c, "nonces")? {
                snapshot::recent_nonces(c, &since)
            } else {
                Ok(Vec::new())
            }
        })?;
    }
    let crl_sequence_restored = {
        let conn = snapshot::open_immutable(&snap)?;
        crate::store::crl::max_sequence(&conn)?
    };
    let result = place(&snap, &tmp, &nonces, &revoked, &opts.db_path, exists);
    if result.is_err() {
        remove_with_sidecars(&tmp);
    }
    let revocations_carried = result?;
    if exists && ["-wal", "-journal"].iter().any(|side| sidecar(&opts.db_path, side).exists()) {
        if let Err(e) = snapshot::fold_journal(&opts.db_path, opts.busy_timeout) {
            remove_with_sidecars(&tmp);
            return Err(e.into());
        }
    }
    let mut moved_aside = Vec::new();
    // After the fold these hold nothing the main file lacks; left beside the new file they would
    // be applied to it.
    for side in ["-wal", "-shm", "-journal"] {
        let p = sidecar(&opts.db_path, side);
        if p.exists() {
            let mut aside = p.as_os_str().to_os_string();
            aside.push(format!(".pre-restore-{stamp}"));
            let aside = PathBuf::from(aside);
            std::fs::rename(&p, &aside).map_err(io("move aside", &p))?;
            moved_aside.push(aside);
        }
    }
    let replaced_kept = if exists && opts.keep_replaced {
        match keep_replaced(&opts.db_path, &stamp) {
            Ok(kept) => Some(kept),
            Err(e) => {
                remove_with_sidecars(&tmp);
                return Err(e);
            }
        }
    } else {
        None
    };
    std::fs::rename(&tmp, &opts.db_path).map_err(io("rename", &opts.db_path))?;
    sync_parent(&opts.db_path);
    Ok(RestoreReport {
        pre_restore_backup: opts.pre_restore_backup.clone(),
        replaced_kept,
        nonces_carried: nonces.len(),
        moved_aside,
        crl_sequence_replaced,
        crl_sequence_restored,
        revocations_carried,
        unsigned,
    })
}

/// Hard-links the database about to be replaced as `<db>.pre-restore-<UTC>` (beside its
/// moved-aside side files), or `…-2`, `…-3` when a restore of the same second kept one already:
/// never replacing a kept file.
fn keep_replaced(db: &Path, stamp: &str) -> Result<PathBuf, OpsError> {
    let mut n = 1u32;
    loop {
        let mut name = db.as_os_str().to_os_string();
        name.push(format!(".pre-restore-{stamp}"));
        if n > 1 {
            name.push(format!("-{n}"));
        }
        let kept = PathBuf::from(name);
        match std::fs::hard_link(db, &kept) {
            Ok(()) => return Ok(kept),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            Err(e) => return Err(OpsError::Io { action: "keep the replaced database as", path: kept, source: e }),
        }
    }
}

/// SQLite's side file `<db><side>` (`-wal`, `-shm`, `-journal`).
fn sidecar(db: &Path, side: &str) -> PathBuf {
    let mut p = db.as_os_str().to_os_string();
    p.push(side);
    PathBuf::from(p)
}

/// `<db>.restore-tmp`: where the new database is built before it is renamed over `db`.
fn restore_tmp_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".restore-tmp");
    db.with_file_name(name)
}

/// Copies the snapshot to `tmp`, adds the carried-over nonces and revocations, matches the
/// target's mode and owner, and fsyncs. Returns what was revoked again.
fn place(
    snap: &Path,
    tmp: &Path,
    nonces: &[(String, String, String)],
    revoked: &snapshot::Revocations,
    target: &Path,
    exists: bool,
) -> Result<snapshot::CarriedRevocations, OpsError> {
    {
        let mut src = File::open(snap).map_err(io("read", snap))?;
        let mut dst = crate::files::private::create_new_private(tmp).map_err(io("create", tmp))?;
        std::io::copy(&mut src, &mut dst).map_err(io("write", tmp))?;
        dst.sync_all().map_err(io("fsync", tmp))?;
    }
    let mut carried = snapshot::CarriedRevocations::default();
    if !nonces.is_empty() || !revoked.is_empty() {
        carried = snapshot::carry_over(tmp, nonces, revoked)?;
        File::options().write(true).open(tmp).and_then(|f| f.sync_all()).map_err(io("fsync", tmp))?;
    }
    #[cfg(unix)]
    if exists {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(target).map_err(io("read", target))?;
        std::fs::set_permissions(
            tmp,
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(meta.mode() & 0o7777),
        )
        .map_err(io("set mode of", tmp))?;
        let _ = std::os::unix::fs::chown(tmp, Some(meta.uid()), Some(meta.gid()));
    }
    Ok(carried)
}

fn is_age(path: &Path) -> Result<bool, OpsError> {
    let mut head = [0u8; 21];
    let n = File::open(path).and_then(|mut f| f.read(&mut head)).map_err(io("read", path))?;
    Ok(head.get(..n).is_some_and(|h| h.starts_with(b"age-encryption.org/v1")))
}

/// Upstream plain backups: integrity, schema 1–6 and all tables, and (when the NA key is known)
/// CRL/policy signatures by that key.
fn validate_plain(path: &Path, na_key: Option<&str>) -> Result<(), OpsError> {
    let conn =
        snapshot::open_immutable(path).map_err(|e| OpsError::Check { check: "open".into(), problem: e.to_string() })?;
    if let Err(problem) = snapshot::integrity_check(&conn)? {
        return Err(OpsError::Check { check: "integrity_check".into(), problem });
    }
    let versions = schema::applied_versions(&conn)?;
    let missing = schema::missing_tables(&conn)?;
    if versions != (1..=schema::KNOWN_VERSION).collect::<Vec<_>>() || !missing.is_empty() {
        return Err(OpsError::Check {
            check: "schema".into(),
            problem: format!(
                "{} does not look like a Genesis Mesh NA database (versions {versions:?}, missing {missing:?})",
                path.display()
            ),
        });
    }
    if let Some(key) = na_key {
        let n = check_signed_material(&conn, key)
            .map_err(|problem| OpsError::Check { check: "signed_material".into(), problem })?;
        // A database gm or upstream has served holds at least its first CRL or policy (F4).
        if n == 0 {
            return Err(OpsError::Check {
                check: "signed_material".into(),
                problem: format!("{DAMAGED_OR_FORGED}: the database holds no CRL or policy signed by the NA key"),
            });
        }
    }
    Ok(())
}
