//! `gm keygen`: writes an Ed25519 key pair in upstream's key-file format (`PREFIX.key` mode 0600,
//! `PREFIX.pub`), refusing to overwrite either file without `--force`.

use std::path::{Path, PathBuf};

use argh::FromArgs;

use crate::crypto::keys::SigningKey;
use crate::files::atomic::{write_atomic, Mode};
use crate::json::Value;
use crate::model::fields::object;

use super::error::Error;
use super::input::refuse_existing;
use super::output::Output;

/// Generate an Ed25519 key pair in the upstream key-file format.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "keygen",
    example = "gm keygen root --output offline/root --key-id rs-2025-q1\ngm keygen network-authority --output keys/na --key-id na-2025-q1\ngm keygen operator --output ~/.gm/operator --key-id alice-2026\ngm keygen backup-signing --home /etc/gm --output keys/backup-signing",
    note = "Writes PREFIX.key (the base64 seed, mode 0600) and PREFIX.pub. Keep root keys offline."
)]
pub(crate) struct KeygenArgs {
    /// key role: root, network-authority, operator, node or backup-signing (signs backup manifests; keep its .key on the backup host only)
    #[argh(positional)]
    role: String,
    /// path prefix: writes PREFIX.key and PREFIX.pub
    #[argh(option)]
    output: PathBuf,
    /// key id recorded in the files (default: rs-2025-q1, na-2025-q1, operator-local, node-local, backup-signing by role)
    #[argh(option)]
    key_id: Option<String>,
    /// replace existing key files
    #[argh(switch)]
    force: bool,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
    /// gm home: a relative --output is taken inside it when given
    #[argh(option)]
    home: Option<PathBuf>,
}

/// Runs `gm keygen`.
pub(crate) fn run(args: KeygenArgs) -> Result<u8, Error> {
    let default_id = match args.role.as_str() {
        "root" => "rs-2025-q1",
        "network-authority" | "na" => "na-2025-q1",
        "operator" => super::flags::DEFAULT_OPERATOR_KEY_ID,
        "node" => "node-local",
        "backup-signing" => "backup-signing",
        other => {
            return Err(Error::usage(
                format!("unknown key role {other:?}"),
                "choose one of: root, network-authority, operator, node, backup-signing",
            ))
        }
    };
    let key_id = args.key_id.clone().unwrap_or_else(|| default_id.to_string());
    let prefix = match &args.home {
        Some(home) if args.output.is_relative() => home.join(&args.output),
        _ => args.output.clone(),
    };
    let (key_path, pub_path) = key_paths(&prefix);
    refuse_existing(&key_path, args.force)?;
    refuse_existing(&pub_path, args.force)?;
    if let Some(parent) = key_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(Error::io("create folder", parent))?;
    }
    let key = SigningKey::generate();
    write_key_pair(&key, Some(&key_id), &prefix, args.force)?;
    let public = key.public_key().to_b64();
    let out = Output { json: args.json };
    let text = format!(
        "wrote {} (private, mode 0600) and {}\nkey id: {key_id}\npublic key: {public}",
        key_path.display(),
        pub_path.display()
    );
    let value = Value::Object(object(vec![
        ("key_id", Value::from(key_id.as_str())),
        ("private_key_file", Value::from(key_path.display().to_string())),
        ("public_key", Value::from(public.as_str())),
        ("public_key_file", Value::from(pub_path.display().to_string())),
        ("role", Value::from(args.role.as_str())),
    ]));
    out.result(&text, &value);
    Ok(0)
}

/// `PREFIX.key` and `PREFIX.pub`.
pub(crate) fn key_paths(prefix: &Path) -> (PathBuf, PathBuf) {
    let with = |ext: &str| {
        let mut s = prefix.as_os_str().to_os_string();
        s.push(ext);
        PathBuf::from(s)
    };
    (with(".key"), with(".pub"))
}

/// Writes `PREFIX.key` (0600) and `PREFIX.pub` (0644) atomically.
pub(crate) fn write_key_pair(key: &SigningKey, key_id: Option<&str>, prefix: &Path, force: bool) -> Result<(), Error> {
    let (key_path, pub_path) = key_paths(prefix);
    let map_exists = |path: &Path| {
        let path = path.to_path_buf();
        move |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Exists { path }
            } else {
                Error::Io { action: "write", path, source: e }
            }
        }
    };
    write_atomic(&key_path, key.to_file_text(key_id).as_bytes(), Mode::Private, force)
        .map_err(map_exists(&key_path))?;
    write_atomic(&pub_path, key.public_key().to_file_text(key_id).as_bytes(), Mode::Public, force)
        .map_err(map_exists(&pub_path))
}
