//! Which backup-signing key `gm managed backup` signs with and which public key `verify`,
//! `restore`, `restore-drill` and `prune` trust: the flags, else `[backup]` in `gm.toml`
//! (`signing_public_key`, else the public half of `signing_key`). Unsigned backups are refused
//! unless `--allow-unsigned`, which prints a warning (and the ops ledger records it).

use std::path::{Path, PathBuf};

use crate::config::{self, Env};
use crate::crypto::keys::{key_id_in_file, load_public_key, load_signing_key, PublicKey};
use crate::ops::backup_signature::{BackupSigner, SignatureTrust, TrustedKeys};

use super::error::Error;
use super::output::notice;

const KEYGEN_HINT: &str = "create one with `gm keygen backup-signing --home HOME --output keys/backup-signing` and set [backup] signing_key = \"keys/backup-signing.key\" in gm.toml";

fn settings(home: Option<&Path>) -> Result<config::BackupSigningSettings, Error> {
    let home = config::resolve_home(home, &Env::from_process());
    let file = config::load_file(&home)?;
    Ok(config::backup_signing(&home, &file))
}

/// The key `gm managed backup` signs with: `--signing-key`, else `[backup] signing_key`. `None`
/// only with `--allow-unsigned` (warned).
pub(super) fn signer(
    home: Option<&Path>,
    flag: Option<&Path>,
    allow_unsigned: bool,
) -> Result<Option<BackupSigner>, Error> {
    let path: Option<PathBuf> = match flag {
        Some(p) => Some(p.to_path_buf()),
        None => settings(home)?.signing_key,
    };
    match path {
        Some(p) => {
            let key = load_signing_key(&p)?;
            let key_id = key_id_in_file(&p).unwrap_or_else(|| "backup-signing".to_string());
            Ok(Some(BackupSigner { key, key_id }))
        }
        None if allow_unsigned => {
            notice("warning: writing an UNSIGNED backup (--allow-unsigned): verify, restore and drills refuse it without --allow-unsigned");
            Ok(None)
        }
        None => Err(Error::refused(
            "no backup-signing key is configured: an unsigned backup cannot be told from a forged one",
            KEYGEN_HINT,
        )),
    }
}

/// The trust of `verify`, `restore`, `restore-drill` and `prune`: `--signing-public-key`, else
/// `[backup] signing_public_key`, else the public half of `[backup] signing_key`.
pub(super) fn trust(home: Option<&Path>, flag: Option<&str>, allow_unsigned: bool) -> Result<SignatureTrust, Error> {
    let pinned = match configured_public_key(home, flag)? {
        Some(k) => Some(k),
        None if allow_unsigned => None,
        None => return Err(no_public_key()),
    };
    if allow_unsigned {
        notice("warning: --allow-unsigned: a backup without a signature is accepted, and its origin is not proven");
    }
    Ok(SignatureTrust { pinned, allow_unsigned })
}

/// The pinned public keys, required (`prune`, `--latest`: only signed backups are ever picked).
pub(super) fn pinned(home: Option<&Path>, flag: Option<&str>) -> Result<TrustedKeys, Error> {
    configured_public_key(home, flag)?.ok_or_else(no_public_key)
}

/// The current key (`--signing-public-key`, else `[backup] signing_public_key`, else the public
/// half of `[backup] signing_key`) and the retired ones (`[backup] retired_signing_public_keys`).
fn configured_public_key(home: Option<&Path>, flag: Option<&str>) -> Result<Option<TrustedKeys>, Error> {
    let s = settings(home)?;
    let current = match (flag, &s.signing_public_key, &s.signing_key) {
        (Some(text), _, _) => parse_public_key(text, "--signing-public-key")?,
        (None, Some(text), _) => parse_public_key(text, "[backup] signing_public_key")?,
        (None, None, Some(private)) => load_signing_key(private)?.public_key(),
        (None, None, None) => return Ok(None),
    };
    let retired = s
        .retired_signing_public_keys
        .iter()
        .map(|text| parse_public_key(text, "[backup] retired_signing_public_keys"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(TrustedKeys { current, retired }))
}

fn no_public_key() -> Error {
    Error::refused(
        "no backup-signing public key is configured: a backup's origin cannot be checked",
        format!("pass --signing-public-key KEY (base64 or the .pub file), or set [backup] signing_public_key in gm.toml; {KEYGEN_HINT}"),
    )
}

/// A base64 Ed25519 public key, or a key file holding one.
fn parse_public_key(text: &str, source: &str) -> Result<PublicKey, Error> {
    let path = Path::new(text);
    if path.is_file() {
        return Ok(load_public_key(path)?);
    }
    PublicKey::from_b64(text.trim()).map_err(|e| {
        Error::usage(
            format!("{source} is neither a key file nor a base64 Ed25519 public key: {e}"),
            "pass the backup-signing .pub file or its base64 key (gm keygen backup-signing prints it)",
        )
    })
}
