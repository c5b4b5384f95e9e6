//! The S3 side of retention and `--latest`: list a prefix, check each backup-named object's
//! signature (`<object>.sig`, fetched, at most 64 KiB) against the pinned keys, and delete the
//! objects a plan drops, never one under Object Lock retention.
//!
//! Checking an object here reads only its signature and its listed size: its bytes are checked
//! against the signed SHA-256 when it is read (verify, restore and restore-drill download it and
//! check before use). So a same-size replacement of an archive in the bucket counts for retention
//! until it is read; with Object Lock on the bucket, the genuine copies cannot be deleted anyway.
//!
//! Must not: delete anything but a backup-named object and its signature, or follow keys below
//! the prefix (only its direct children are candidates).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::folder::{Deleted, Deletion, Folder, Ignored, IgnoredKind};
use super::BackupFile;
use crate::ops::backup_signature::{BackupSignature, TrustedKeys};
use crate::ops::catalog::signature_names;
use crate::ops::error::OpsError;
use crate::ops::s3::{Remote, S3Error, S3Url};

/// The largest signature file gm reads.
const MAX_SIGNATURE_BYTES: u64 = 64 * 1024;

/// The prefix as prune sees it: signed backups (dated by the signed time), and everything else
/// left alone with the reason (rejected ones as [`IgnoredKind::Unverified`]).
pub(crate) fn scan(remote: &Remote, prefix: &S3Url, pinned: &TrustedKeys) -> Result<Folder, S3Error> {
    let listing_prefix = if prefix.key.is_empty() { String::new() } else { format!("{}/", prefix.key) };
    let listed = remote.list(&listing_prefix)?;
    let direct: BTreeMap<String, u64> = listed
        .iter()
        .filter_map(|l| l.url.key.strip_prefix(&listing_prefix).map(|n| (n.to_string(), l.size)))
        .filter(|(n, _)| !n.is_empty() && !n.contains('/'))
        .collect();
    let mut found = Folder::default();
    for (name, size) in &direct {
        if let Some(archive) = name.strip_suffix(".sig") {
            if BackupFile::parse(archive).is_some() && !direct.contains_key(archive) {
                found.ignored.push(Ignored { name: name.clone(), kind: IgnoredKind::OrphanSignature, detail: None });
            }
            continue;
        }
        let Some(file) = BackupFile::parse(name) else {
            found.ignored.push(Ignored { name: name.clone(), kind: IgnoredKind::NotBackupName, detail: None });
            continue;
        };
        let verdict = if direct.contains_key(&format!("{name}.sig")) {
            let mut text = Vec::new();
            remote.get_into(&format!("{}{name}.sig", listing_prefix), &mut text, MAX_SIGNATURE_BYTES)?;
            check(&String::from_utf8_lossy(&text), &file, *size, pinned)
        } else {
            Err("unsigned (no .sig object)".to_string())
        };
        match verdict {
            Ok(_) => found.backups.push(file),
            Err(reason) => {
                found.ignored.push(Ignored { name: name.clone(), kind: IgnoredKind::Unverified, detail: Some(reason) })
            }
        }
    }
    found.backups.sort_by(|a, b| (a.taken_at, &a.name).cmp(&(b.taken_at, &b.name)));
    found.ignored.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// The signature check of `ops::catalog` ([`signature_names`]) on a listed object, and its listed
/// size.
fn check(text: &str, file: &BackupFile, size: u64, pinned: &TrustedKeys) -> Result<(), String> {
    let sig = BackupSignature::parse(text)?;
    signature_names(&sig, file, pinned)?;
    if size != sig.archive_size {
        return Err(format!("the object has {size} bytes, the signature names {}", sig.archive_size));
    }
    Ok(())
}

/// The backups under `prefix` the ledger's `artifacts` (`s3://…` URLs) name.
pub(crate) fn named_by_artifacts(prefix: &S3Url, backups: &[BackupFile], artifacts: &[String]) -> BTreeSet<String> {
    let wanted: BTreeSet<&str> = artifacts.iter().map(String::as_str).collect();
    backups
        .iter()
        .filter(|b| wanted.contains(prefix.join(&b.name).to_string().as_str()))
        .map(|b| b.name.clone())
        .collect()
}

/// Which of `names` are under Object Lock retention that has not ended at `now`: name → the
/// retention's end. An object whose lock cannot be read is treated as locked (never deleted
/// on a guess), with the error as its "end".
pub(crate) fn locked(remote: &Remote, prefix: &S3Url, names: &[&str], now: DateTime<Utc>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in names {
        match remote.head(&prefix.join(name).key) {
            Ok(Some(meta)) => {
                if let Some(until) = meta.retain_until {
                    let ends = DateTime::parse_from_rfc3339(&until).map(|t| t.with_timezone(&Utc));
                    if ends.map_or(true, |t| t > now) {
                        out.insert(name.to_string(), until);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                out.insert(name.to_string(), format!("unknown ({e})"));
            }
        }
    }
    out
}

/// Deletes the named backups (and their signatures) under `prefix`, carrying on past failures.
pub(crate) fn delete(remote: &Remote, prefix: &S3Url, names: &[&str]) -> Deleted {
    let deletions = names
        .iter()
        .map(|name| {
            let result = if BackupFile::parse(name).is_none() {
                Err(OpsError::Refused { reason: format!("refusing to delete {name}: not a backup name") })
            } else {
                let url = prefix.join(name);
                remote.delete(&url.key).map_err(OpsError::from).map(|()| {
                    // The signature goes with its backup; a failure leaves an inert orphan, listed next time.
                    let _ = remote.delete(&format!("{}.sig", url.key));
                })
            };
            Deletion { name: name.to_string(), result }
        })
        .collect();
    Deleted { deletions, sync: Ok(()) }
}
