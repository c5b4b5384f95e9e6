//! Creating secret files: mode 0600 at creation (never chmod-ed afterwards), `create_new` so an
//! existing file is never replaced by surprise.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Creates `path` for writing with mode 0600, failing if it already exists.
pub(crate) fn create_new_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    set_private_mode(&mut options);
    options.open(path)
}

/// Creates `path` empty with mode 0600 unless it exists, so a program that then creates it by name
/// (SQLite, which copies the database file's mode to its `-wal`, `-shm` and `-journal`) keeps it
/// owner-only whatever the process umask. An existing file is left as it is.
pub(crate) fn precreate_private(path: &Path) -> io::Result<()> {
    match create_new_private(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes the group and other permission bits of an existing `path`; `Ok(Some(old_mode))` when it
/// had any (a file an earlier version created under a loose umask), `Ok(None)` when it was already
/// owner-only or does not exist.
#[cfg(unix)]
pub(crate) fn restrict_to_owner(path: &Path) -> io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match mode_of(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
    Ok(Some(mode))
}

/// Without unix permissions there is nothing to restrict.
#[cfg(not(unix))]
pub(crate) fn restrict_to_owner(_path: &Path) -> io::Result<Option<u32>> {
    Ok(None)
}

#[cfg(unix)]
fn set_private_mode(options: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(0o600);
}

#[cfg(not(unix))]
fn set_private_mode(_options: &mut OpenOptions) {}

/// The permission bits of `path` (unix), e.g. `0o600`.
#[cfg(unix)]
pub fn mode_of(path: &Path) -> io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o7777)
}
