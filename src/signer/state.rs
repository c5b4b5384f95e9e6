//! The signer's durable memory (`STATE_DIR/state.json`): the highest CRL sequence it ever signed
//! and the sha256 of that CRL's canonical bytes. A CRL numbered below it, or the same number with
//! other content, is refused, so a compromised or restored NA cannot get an older revocation list
//! (one that forgets revocations) signed as the newest; and a new CRL must list every certificate
//! the highest signed one listed (a revocation is never taken back). The state is written (atomic replace,
//! fsync) before the signature leaves the process. It owns the state dir's privacy check and its
//! lock; it must not decide anything but the CRL sequence.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::files::atomic::{write_atomic, Mode};
use crate::files::lock::{try_lock_db, DbLock, LockError};

const STATE_FILE: &str = "state.json";
/// Room for the revoked certificate ids of a large network (about 45 bytes each).
const MAX_STATE_BYTES: u64 = 64 * 1024 * 1024;

/// What `state.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    /// The highest CRL sequence signed.
    crl_high: Option<i64>,
    /// sha256 (hex) of that CRL's canonical bytes.
    crl_sha256: Option<String>,
    /// The certificate ids that CRL lists, sorted (absent in states written before this field).
    #[serde(default)]
    crl_revoked: Vec<String>,
}

/// The CRL sequence floor, shared by every session.
#[derive(Debug)]
pub(crate) struct SignerState {
    path: PathBuf,
    current: Mutex<StateFile>,
    _lock: DbLock,
}

/// What admitting a CRL found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CrlAdmission {
    /// Above the highest signed sequence: recorded as the new highest.
    New,
    /// The highest signed sequence with the same content: signed again (idempotent).
    Again,
}

impl SignerState {
    /// Opens the state in `dir` (created mode 0700 when absent), refusing a dir that is not
    /// private or that another `gm signer run` holds.
    pub(crate) fn open(dir: &Path) -> Result<SignerState, String> {
        ensure_private_dir(dir)?;
        let path = dir.join(STATE_FILE);
        let lock = try_lock_db(&path).map_err(|e| match e {
            LockError::Held { path } => format!(
                "another gm signer run uses the state dir {} (it holds {}): run one signer per state dir",
                dir.display(),
                path.display()
            ),
            LockError::Io { path, source } => format!("cannot lock {}: {source}", path.display()),
        })?;
        let current = read_state(&path)?;
        Ok(SignerState { path, current: Mutex::new(current), _lock: lock })
    }

    /// The highest CRL sequence signed (sent in the handshake and with every refusal).
    pub(crate) fn crl_high(&self) -> Option<i64> {
        self.current.lock().map(|s| s.crl_high).unwrap_or(None)
    }

    /// Admits CRL `sequence` with canonical sha256 `digest` listing `revoked`, durably, before it
    /// is signed. `Err` names the highest signed sequence, or the revocations the CRL would drop.
    pub(crate) fn admit_crl(&self, sequence: i64, digest: &str, revoked: &[String]) -> Result<CrlAdmission, String> {
        // The lock is held across the write on purpose: two sessions must not both pass the check
        // for the same sequence with different content. CRLs are rare; joins never take it.
        let mut current = self.current.lock().map_err(|_| "the signer state lock is poisoned".to_string())?;
        match (current.crl_high, current.crl_sha256.as_deref()) {
            (Some(high), _) if sequence < high => {
                return Err(format!(
                    "CRL sequence {sequence} is below the highest sequence this signer signed, {high}: number the CRL above {high}"
                ))
            }
            (Some(high), Some(known)) if sequence == high => {
                if known == digest {
                    return Ok(CrlAdmission::Again);
                }
                return Err(format!(
                    "CRL sequence {sequence} was already signed with other content (sha256 {known}, this one {digest}): number the CRL above {high}"
                ));
            }
            _ => {}
        }
        let listed: std::collections::BTreeSet<&str> = revoked.iter().map(String::as_str).collect();
        let dropped: Vec<&str> =
            current.crl_revoked.iter().map(String::as_str).filter(|id| !listed.contains(id)).collect();
        if !dropped.is_empty() {
            let shown: Vec<&str> = dropped.iter().copied().take(5).collect();
            return Err(format!(
                "CRL sequence {sequence} drops {} revoked certificate(s) that CRL {} listed ({}{}): a revocation is never taken back",
                dropped.len(),
                current.crl_high.unwrap_or_default(),
                shown.join(", "),
                if dropped.len() > shown.len() { ", …" } else { "" }
            ));
        }
        let mut kept: Vec<String> = listed.into_iter().map(str::to_string).collect();
        kept.sort();
        let next = StateFile { crl_high: Some(sequence), crl_sha256: Some(digest.to_string()), crl_revoked: kept };
        let text = serde_json::to_string_pretty(&next).map_err(|e| format!("cannot encode the state: {e}"))?;
        write_atomic(&self.path, format!("{text}\n").as_bytes(), Mode::Private, true)
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))?;
        *current = next;
        Ok(CrlAdmission::New)
    }
}

fn read_state(path: &Path) -> Result<StateFile, String> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StateFile::default()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let meta = file.metadata().map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.len() > MAX_STATE_BYTES {
        return Err(format!("{} is over {MAX_STATE_BYTES} bytes: not a signer state", path.display()));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{} is damaged ({e}); restore it from your backup of the state dir (it holds the highest CRL sequence signed)",
            path.display()
        )
    })
}

/// Creates `dir` mode 0700 when absent; refuses one that group or others can read, write or
/// enter, or that another user owns.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        create_private_dir(dir).map_err(|e| format!("cannot create the state dir {}: {e}", dir.display()))?;
    }
    let meta = std::fs::metadata(dir).map_err(|e| format!("cannot read the state dir {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("the state dir {} is not a folder", dir.display()));
    }
    check_private(dir, &meta)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn check_private(dir: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "the state dir {} is mode {mode:o}: group and others must have no access (chmod 700 {})",
            dir.display(),
            dir.display()
        ));
    }
    let me = rustix::process::getuid().as_raw();
    if meta.uid() != me {
        return Err(format!(
            "the state dir {} belongs to uid {}, not to this user (uid {me})",
            dir.display(),
            meta.uid()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_dir: &Path, _meta: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gm-signer-state-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_crl_floor_only_rises_and_survives_a_reopen() {
        let dir = temp_dir("floor");
        {
            let state = SignerState::open(&dir).unwrap();
            assert_eq!(state.crl_high(), None);
            assert_eq!(state.admit_crl(5, "aa", &[]), Ok(CrlAdmission::New));
            assert_eq!(state.admit_crl(5, "aa", &[]), Ok(CrlAdmission::Again));
            let err = state.admit_crl(5, "bb", &[]).unwrap_err();
            assert!(err.starts_with("CRL sequence 5 was already signed with other content"), "{err}");
            let err = state.admit_crl(4, "cc", &[]).unwrap_err();
            assert!(err.contains("below the highest sequence this signer signed, 5"), "{err}");
            assert_eq!(state.admit_crl(9, "dd", &["c-1".to_string()]), Ok(CrlAdmission::New));
        }
        let state = SignerState::open(&dir).unwrap();
        assert_eq!(state.crl_high(), Some(9));
        assert!(state.admit_crl(8, "ee", &[]).is_err());
        assert_eq!(state.admit_crl(9, "dd", &["c-1".to_string()]), Ok(CrlAdmission::Again));
        // After a restart too, a newer CRL must still list c-1.
        let err = state.admit_crl(10, "ff", &["c-2".to_string()]).unwrap_err();
        assert!(err.contains("drops 1 revoked certificate(s) that CRL 9 listed (c-1)"), "{err}");
        let both = ["c-2".to_string(), "c-1".to_string()];
        assert_eq!(state.admit_crl(10, "ff", &both), Ok(CrlAdmission::New));
        #[cfg(unix)]
        assert_eq!(crate::files::private::mode_of(&dir.join(STATE_FILE)).unwrap(), 0o600);
        drop(state);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_second_signer_on_the_same_state_dir_is_refused() {
        let dir = temp_dir("twice");
        let _first = SignerState::open(&dir).unwrap();
        let err = SignerState::open(&dir).unwrap_err();
        assert!(err.contains("another gm signer run uses the state dir"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_state_dir_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("open");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = SignerState::open(&dir).unwrap_err();
        assert!(err.contains("is mode 755: group and others must have no access (chmod 700"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_state_is_refused_not_reset() {
        let dir = temp_dir("damaged");
        ensure_private_dir(&dir).unwrap();
        std::fs::write(dir.join(STATE_FILE), b"{\"crl_high\": 3").unwrap();
        let err = SignerState::open(&dir).unwrap_err();
        assert!(err.contains("is damaged"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
