//! Atomic file replacement: write `<target>.tmp` in the same directory, fsync, rename over the
//! target, fsync the directory. The temporary file is removed on every error path.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// How the new file is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Mode 0600 (secrets, backups).
    Private,
    /// Mode 0644 (public material such as `.pub` files and signed genesis).
    Public,
}

/// Writes `bytes` to `target` atomically. With `overwrite == false` an existing target is refused
/// (checked before writing and again by the rename target check).
pub(crate) fn write_atomic(target: &Path, bytes: &[u8], mode: Mode, overwrite: bool) -> io::Result<()> {
    if !overwrite && target.exists() {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, "file exists"));
    }
    let tmp = tmp_path(target);
    let result = write_tmp(&tmp, bytes, mode).and_then(|()| {
        if !overwrite && target.exists() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "file exists"));
        }
        fs::rename(&tmp, target)
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    sync_parent(target);
    Ok(())
}

/// The temporary sibling used while writing `target`.
pub(crate) fn tmp_path(target: &Path) -> PathBuf {
    let mut name = target.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    target.with_file_name(name)
}

fn write_tmp(tmp: &Path, bytes: &[u8], mode: Mode) -> io::Result<()> {
    let _ = fs::remove_file(tmp);
    let mut file = open_tmp(tmp, mode)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn open_tmp(tmp: &Path, mode: Mode) -> io::Result<File> {
    match mode {
        Mode::Private => super::private::create_new_private(tmp),
        Mode::Public => OpenOptions::new().write(true).create_new(true).open(tmp),
    }
}

/// Best-effort fsync of the directory holding `path`, so a rename survives a crash.
pub(crate) fn sync_parent(path: &Path) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(parent) {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_existing_target_and_leaves_no_tmp() {
        let dir = std::env::temp_dir().join(format!("gm-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let target = dir.join("f.txt");
        fs::write(&target, b"old").unwrap();
        let err = write_atomic(&target, b"new", Mode::Public, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert!(!tmp_path(&target).exists());
        write_atomic(&target, b"new", Mode::Private, true).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        #[cfg(unix)]
        assert_eq!(super::super::private::mode_of(&target).unwrap(), 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }
}
