//! Leftovers of killed runs. A `gm managed backup` or `restore` killed with SIGKILL (or cut off by a
//! power loss) skips its cleanup and leaves, in the folder it wrote to, its private scratch folder
//! (`.gm-backup-<pid>-<nanos>`, `.gm-restore-<pid>-<nanos>`: they hold an unencrypted snapshot) and
//! its temporary output (`<final>.gm-backup-<pid>.tmp`, plus SQLite's `-journal`/`-wal`/`-shm` for a
//! plain copy). The next run in the same folder calls [`remove_stale`] before it starts.
//!
//! An entry is stale only when its owner is gone by both tests: the pid in its name is not running
//! on this host (`/proc/<pid>` is absent), and nobody holds the OS lock a live run keeps on it (the
//! scratch folder and the archive's temporary file are locked while in use; the lock vanishes with
//! the process). The pid test alone would let a run in another pid namespace (a container sharing
//! the folder) delete a live run's files; the lock test alone would race a run that has created its
//! entry but not locked it yet. A reused pid keeps a leftover until that process ends, and without
//! `/proc` nothing is removed: both err on the side of keeping files.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

/// The marker in temporary output names: `<final>.gm-backup-<pid>.tmp`.
const TMP_MARKER: &str = ".gm-backup-";

/// SQLite's side files of a temporary database (a plain copy is written by SQLite itself).
pub(crate) const SQLITE_SIDECARS: [&str; 3] = ["-journal", "-wal", "-shm"];

/// The temporary sibling a run of this process writes before renaming it to `target`.
pub(crate) fn tmp_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!("{TMP_MARKER}{}.tmp", std::process::id()));
    target.with_file_name(name)
}

/// Removes `path` and SQLite's side files next to it, ignoring what does not exist.
pub(crate) fn remove_with_sidecars(path: &Path) {
    let _ = std::fs::remove_file(path);
    for side in SQLITE_SIDECARS {
        let mut p = path.as_os_str().to_os_string();
        p.push(side);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// Removes the stale scratch folders named `<scratch_prefix>-<pid>-<nanos>` and the stale temporary
/// files (see [`tmp_path`]) in `folder`, and returns what it removed. Never fails: a folder that
/// cannot be listed or an entry that cannot be removed is left alone (and logged).
pub(crate) fn remove_stale(folder: &Path, scratch_prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().to_string();
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let owner = if is_dir { scratch_owner(&name, scratch_prefix) } else { tmp_owner(&name) };
        let Some(pid) = owner else { continue };
        if !is_stale(&path, pid) {
            continue;
        }
        let result = if is_dir { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        match result {
            Ok(()) => removed.push(path),
            Err(e) => log::warn!(target: "gm::ops", "cannot remove leftover {}: {e}", path.display()),
        }
    }
    removed
}

/// The pid in `<prefix>-<pid>-<nanos>`.
fn scratch_owner(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('-')?;
    let (pid, nanos) = rest.split_once('-')?;
    nanos.parse::<i64>().ok()?;
    pid.parse().ok()
}

/// The pid in `<final>.gm-backup-<pid>.tmp` (or one of its SQLite side files).
fn tmp_owner(name: &str) -> Option<u32> {
    let name = SQLITE_SIDECARS.iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
    let (_, rest) = name.rsplit_once(TMP_MARKER)?;
    rest.strip_suffix(".tmp")?.parse().ok()
}

fn is_stale(path: &Path, pid: u32) -> bool {
    pid != std::process::id() && !pid_is_running(pid) && !is_locked(path)
}

/// `/proc/<pid>` exists; without a readable `/proc` every pid counts as running.
fn pid_is_running(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Someone holds the lock on `path` (an unreadable entry counts as locked).
fn is_locked(path: &Path) -> bool {
    match File::open(path).map(|f| f.try_lock()) {
        Ok(Ok(())) => false,
        Ok(Err(TryLockError::WouldBlock)) => true,
        Ok(Err(TryLockError::Error(_))) | Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_parsed_strictly() {
        assert_eq!(scratch_owner(".gm-backup-123-456", ".gm-backup"), Some(123));
        assert_eq!(scratch_owner(".gm-backup-123", ".gm-backup"), None);
        assert_eq!(scratch_owner(".gm-backup-x-456", ".gm-backup"), None);
        assert_eq!(scratch_owner(".gm-restore-123-456", ".gm-backup"), None);
        assert_eq!(tmp_owner("gm-a-20260101T000000Z.tar.gz.age.gm-backup-77.tmp"), Some(77));
        assert_eq!(tmp_owner("copy.db.gm-backup-77.tmp-journal"), Some(77));
        assert_eq!(tmp_owner("copy.db.tmp"), None);
        assert_eq!(tmp_owner("notes.gm-backup-77.txt"), None);
        let tmp = tmp_path(Path::new("/b/x.age"));
        assert_eq!(tmp_owner(&tmp.file_name().unwrap().to_string_lossy()), Some(std::process::id()));
    }

    #[test]
    fn only_leftovers_of_dead_owners_are_removed() {
        let dir = std::env::temp_dir().join(format!("gm-leftovers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // pid 0 never names a user process, so it is never running.
        let dead_scratch = dir.join(".gm-backup-0-1");
        std::fs::create_dir(&dead_scratch).unwrap();
        std::fs::write(dead_scratch.join("na.db"), b"x").unwrap();
        let dead_tmp = dir.join("a.age.gm-backup-0.tmp");
        std::fs::write(&dead_tmp, b"x").unwrap();
        let ours = tmp_path(&dir.join("b.age"));
        std::fs::write(&ours, b"x").unwrap();
        let locked = dir.join("c.age.gm-backup-0.tmp");
        let held = File::create(&locked).unwrap();
        held.try_lock().unwrap();
        let other = dir.join("unrelated.tmp");
        std::fs::write(&other, b"x").unwrap();
        let mut removed = remove_stale(&dir, ".gm-backup");
        removed.sort();
        assert_eq!(removed, vec![dead_scratch, dead_tmp]);
        assert!(ours.exists() && locked.exists() && other.exists());
        drop(held);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
