//! Backup file names: `gm-<network>-<UTC YYYYMMDDTHHMMSSZ>.tar.gz.age` (with milliseconds,
//! `…T135744.123Z…`, for a second backup within the same second), what a name says
//! ([`BackupFile`]), how `ops::backup` picks a free one ([`free_backup_name`]) and the folder lock
//! that makes the pick safe against a concurrent run ([`FOLDER_LOCK`]).
//!
//! Must not: open an archive. Which backup is newest is decided by signed time (`ops::catalog`),
//! never by the name alone.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};

use super::backup_signature::sidecar_path;

/// How every backup file name ends.
pub const BACKUP_SUFFIX: &str = ".tar.gz.age";

/// How every backup file name starts.
pub const BACKUP_PREFIX: &str = "gm-";

/// The timestamp in a backup name (`gm-<network>-<UTC YYYYMMDDTHHMMSSZ>.tar.gz.age`), as written by
/// `ops::backup`.
pub(crate) const NAME_TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// The timestamp of a backup taken within the same second as another one in the same folder
/// (`YYYYMMDDTHHMMSS.mmmZ`).
pub(crate) const NAME_TIME_FORMAT_MS: &str = "%Y%m%dT%H%M%S%.3fZ";

/// A backup file: its name and what the name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFile {
    /// The file name (no folder).
    pub name: String,
    /// The network name from the file name.
    pub network: String,
    /// When the backup was taken, from the file name.
    pub taken_at: DateTime<Utc>,
}

impl BackupFile {
    /// Parses `gm-<network>-<UTC YYYYMMDDTHHMMSSZ>.tar.gz.age`, or with milliseconds
    /// (`YYYYMMDDTHHMMSS.mmmZ`, the name a second backup taken within the same second gets); any
    /// other name is not a backup. The timestamp must be exactly that shape and a real UTC instant
    /// (no `20261399T…`).
    pub fn parse(name: &str) -> Option<BackupFile> {
        let stem = name.strip_prefix(BACKUP_PREFIX)?.strip_suffix(BACKUP_SUFFIX)?;
        let (network, stamp) = stem.rsplit_once('-')?;
        let digit_or = |i: usize, b: u8, at: &[(usize, u8)]| match at.iter().find(|(j, _)| *j == i) {
            Some((_, want)) => b == *want,
            None => b.is_ascii_digit(),
        };
        let (well_formed, format) = match stamp.len() {
            16 => (stamp.bytes().enumerate().all(|(i, b)| digit_or(i, b, &[(8, b'T'), (15, b'Z')])), NAME_TIME_FORMAT),
            20 => (
                stamp.bytes().enumerate().all(|(i, b)| digit_or(i, b, &[(8, b'T'), (15, b'.'), (19, b'Z')])),
                NAME_TIME_FORMAT_MS,
            ),
            _ => (false, NAME_TIME_FORMAT),
        };
        if network.is_empty() || !well_formed {
            return None;
        }
        let taken_at = NaiveDateTime::parse_from_str(stamp, format).ok()?.and_utc();
        Some(BackupFile { name: name.to_string(), network: network.to_string(), taken_at })
    }
}

/// The lock file that serializes backups into one folder: `ops::backup` holds an OS lock on it
/// for the whole run, so the name [`free_backup_name`] picks cannot be taken by a run that started
/// in the same second. The file stays (empty); the lock goes with the process, however it ends.
pub(crate) const FOLDER_LOCK: &str = ".gm-backup.lock";

/// `gm-<network>-<UTC second>.tar.gz.age` in `folder`; when a backup of that second is already
/// there (or its signature), the same second with milliseconds (`…T135744.123Z…`), later than
/// every backup of that network and second in the folder, so names keep the order in which the
/// runs took [`FOLDER_LOCK`] (`ops::catalog` picks the newest by this time). Call it with the lock
/// held. `None` when the second has no millisecond left (a thousand backups within one second).
pub(crate) fn free_backup_name(folder: &Path, network: &str, now: DateTime<Utc>) -> Option<PathBuf> {
    let name_at = |at: DateTime<Utc>, format: &str| {
        folder.join(format!("{BACKUP_PREFIX}{network}-{}{BACKUP_SUFFIX}", at.format(format)))
    };
    let taken = |p: &Path| p.exists() || sidecar_path(p).exists();
    let first = name_at(now, NAME_TIME_FORMAT);
    if !taken(&first) {
        return Some(first);
    }
    let second = now.timestamp();
    let newest_in_second = std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            BackupFile::parse(name.strip_suffix(".sig").unwrap_or(&name))
        })
        .filter(|b| b.network == network && b.taken_at.timestamp() == second)
        .map(|b| b.taken_at)
        .max();
    let start_of_second = DateTime::from_timestamp(second, 0)?;
    let mut at = [Some(now), newest_in_second.map(|t| t + chrono::Duration::milliseconds(1))]
        .into_iter()
        .flatten()
        .max()?
        .max(start_of_second + chrono::Duration::milliseconds(1));
    while at.timestamp() == second {
        let candidate = name_at(at, NAME_TIME_FORMAT_MS);
        if !taken(&candidate) {
            return Some(candidate);
        }
        at += chrono::Duration::milliseconds(1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_written_by_backup_including_dashed_networks() {
        let b = BackupFile::parse("gm-sandbox-mesh-20261125T120000Z.tar.gz.age").unwrap();
        assert_eq!(b.network, "sandbox-mesh");
        assert_eq!(b.taken_at.to_rfc3339(), "2026-11-25T12:00:00+00:00");
        let ms = BackupFile::parse("gm-acme-20261125T120000.042Z.tar.gz.age").unwrap();
        assert_eq!(ms.taken_at.to_rfc3339(), "2026-11-25T12:00:00.042+00:00");
    }

    #[test]
    fn rejects_every_other_name() {
        for name in [
            "gm-acme-20261125T120000Z.tar.gz.age.tmp",
            "gm-acme-20261125T120000Z.tar.gz",
            "gm--20261125T120000Z.tar.gz.age",
            "gm-20261125T120000Z.tar.gz.age",
            "xgm-acme-20261125T120000Z.tar.gz.age",
            "gm-acme-20261125T120000.tar.gz.age",
            "gm-acme-20261125T1200000Z.tar.gz.age",
            "gm-acme-2026112T5120000Z.tar.gz.age",
            "gm-acme-20261399T120000Z.tar.gz.age",
            "gm-acme-20261125T250000Z.tar.gz.age",
            "gm-acme-+2026112T120000Z.tar.gz.age",
            "gm-acme-20261125t120000z.tar.gz.age",
            "gm-acme-20261125T120000.42Z.tar.gz.age",
            "gm-acme-20261125T120000,042Z.tar.gz.age",
            "gm-acme-20261125T120000.0420Z.tar.gz.age",
            "notes.txt",
            ".gm-backup-1234",
        ] {
            assert_eq!(BackupFile::parse(name), None, "{name}");
        }
    }

    #[test]
    fn a_second_backup_in_the_same_second_gets_a_later_name_with_milliseconds() {
        let dir = std::env::temp_dir().join(format!("gm-backup-name-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let now = NaiveDateTime::parse_from_str("20261205T135744Z", NAME_TIME_FORMAT).unwrap().and_utc();
        let first = free_backup_name(&dir, "acme", now).unwrap();
        assert_eq!(first.file_name().unwrap(), "gm-acme-20261205T135744Z.tar.gz.age");
        std::fs::write(&first, b"x").unwrap();
        // A run that read the clock at .500 but took the lock after a run of .700: named after it.
        let later = now + chrono::Duration::milliseconds(700);
        let second = free_backup_name(&dir, "acme", later).unwrap();
        assert_eq!(second.file_name().unwrap(), "gm-acme-20261205T135744.700Z.tar.gz.age");
        std::fs::write(sidecar_path(&second), b"sig").unwrap();
        let third = free_backup_name(&dir, "acme", now + chrono::Duration::milliseconds(500)).unwrap();
        assert_eq!(third.file_name().unwrap(), "gm-acme-20261205T135744.701Z.tar.gz.age");
        std::fs::write(&third, b"x").unwrap();
        // Another network's backups do not push the time.
        let other = free_backup_name(&dir, "beta", now).unwrap();
        assert_eq!(other.file_name().unwrap(), "gm-beta-20261205T135744Z.tar.gz.age");
        // No millisecond left in the second: None, never a name of the next second.
        let last = now + chrono::Duration::milliseconds(999);
        std::fs::write(dir.join("gm-acme-20261205T135744.999Z.tar.gz.age"), b"x").unwrap();
        assert_eq!(free_backup_name(&dir, "acme", last), None);
        for name in [&first, &second, &third] {
            assert_eq!(BackupFile::parse(&name.file_name().unwrap().to_string_lossy()).unwrap().network, "acme");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
