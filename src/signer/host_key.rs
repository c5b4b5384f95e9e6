//! The NA host key: the Ed25519 key `gm serve` proves itself with to a remote signer, which pins its
//! public half. It is not trust material (it signs nothing a node sees), so it lives on the NA host
//! (`HOME/keys/na-host.key`, 0600), created on first use.

use std::path::Path;

use crate::crypto::keys::{load_signing_key, SigningKey};
use crate::files::atomic::{write_atomic, Mode};

/// Loads the host key at `path`, creating it (0600, with its `.pub` beside it) when absent.
/// Returns the key and whether it was created.
pub(crate) fn load_or_create(path: &Path) -> Result<(SigningKey, bool), String> {
    if path.exists() {
        return load_signing_key(path).map(|k| (k, false)).map_err(|e| e.to_string());
    }
    let key = SigningKey::generate();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    write_atomic(path, key.to_file_text(Some("na-host")).as_bytes(), Mode::Private, false)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let public = path.with_extension("pub");
    let text = key.public_key().to_file_text(Some("na-host"));
    write_atomic(&public, text.as_bytes(), Mode::Public, true)
        .map_err(|e| format!("cannot write {}: {e}", public.display()))?;
    Ok((key, true))
}
