//! `gm operator add|retire|list`: edits the operator public-keys file (`HOME/operators.json`, the
//! same JSON object as upstream's `OPERATOR_PUBLIC_KEYS_JSON`). A running `gm serve` picks the change
//! up on its next admin request (and on SIGHUP) without dropping connections, so rotation is: add
//! the new key, move clients to it, retire the old one. Retiring the last key is refused (it would
//! lock every operator out). Only public keys are ever written here.

use std::path::PathBuf;

use argh::FromArgs;

use crate::config::{self, Env};
use crate::crypto::keys::{load_public_key, PublicKey};
use crate::files::atomic::{write_atomic, Mode};
use crate::json::{Map, Value};
use crate::na::auth::operators::{parse_key_set, render_key_set, KeySet};

use super::error::Error;
use super::output::Output;

/// Manage the operator public keys the NA accepts for admin requests.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "operator")]
pub(crate) struct OperatorArgs {
    #[argh(subcommand)]
    action: Action,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Action {
    Add(AddArgs),
    Retire(RetireArgs),
    List(ListArgs),
}

/// Add (or replace, with --force) an operator public key.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "add",
    example = "gm operator add --home /etc/gm --key-id alice-2026 --public-key alice.pub\ngm operator add --key-id bob --public-key 8GFtLlsDpEJNfcATcNmBxcpzjgC9Vz8/N9FZUFXpOw4=",
    note = "The running server accepts the key from its next admin request on; no restart."
)]
struct AddArgs {
    /// operator key id (the X-Admin-Key-Id clients send)
    #[argh(option)]
    key_id: String,
    /// the public key: a .pub file (upstream format) or its base64 line
    #[argh(option)]
    public_key: Option<String>,
    /// replace an existing key with the same id
    #[argh(switch)]
    force: bool,
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
}

/// Retire an operator key: it fails from the next admin request on.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "retire", example = "gm operator retire --home /etc/gm --key-id alice-2025")]
struct RetireArgs {
    /// operator key id to retire
    #[argh(option)]
    key_id: String,
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
}

/// List the installed operator keys.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list", example = "gm operator list --home /etc/gm --json")]
struct ListArgs {
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
}

/// Runs `gm operator …`.
pub(crate) fn run(args: OperatorArgs) -> Result<u8, Error> {
    match args.action {
        Action::Add(a) => add(a),
        Action::Retire(a) => retire(a),
        Action::List(a) => list(a),
    }
}

fn keys_file(home: Option<&std::path::Path>) -> Result<PathBuf, Error> {
    let env = Env::from_process();
    if env.get("OPERATOR_PUBLIC_KEYS_JSON").is_some() {
        crate::cli::output::notice(
            "warning: OPERATOR_PUBLIC_KEYS_JSON is set; `gm serve` uses it instead of the keys file edited here",
        );
    }
    let home = super::home::existing(home, &env)?;
    let file = config::load_file(&home)?;
    Ok(config::operator_keys_file(&home, &file))
}

fn read_keys(path: &std::path::Path) -> Result<KeySet, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(Error::Io { action: "read", path: path.to_path_buf(), source }),
    };
    parse_key_set(&text).map_err(|problem| Error::Json { path: path.to_path_buf(), problem })
}

fn write_keys(path: &std::path::Path, keys: &KeySet) -> Result<(), Error> {
    write_atomic(path, render_key_set(keys).as_bytes(), Mode::Public, true).map_err(|source| Error::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}

fn add(a: AddArgs) -> Result<u8, Error> {
    let key: PublicKey = match &a.public_key {
        Some(k) if std::path::Path::new(k).is_file() => load_public_key(std::path::Path::new(k))?,
        Some(k) => PublicKey::from_b64(k.trim())?,
        None => {
            return Err(Error::usage(
                "--public-key is required",
                "a .pub file or its base64 line, e.g. --public-key alice.pub",
            ))
        }
    };
    if a.key_id.trim().is_empty() || a.key_id.chars().any(char::is_control) {
        return Err(Error::usage(
            format!("invalid --key-id {:?}", a.key_id),
            "use a short printable label such as alice-2026",
        ));
    }
    let path = keys_file(a.home.as_deref())?;
    let mut keys = read_keys(&path)?;
    if keys.contains_key(&a.key_id) && !a.force {
        return Err(Error::refused(
            format!("operator key {:?} already exists in {}", a.key_id, path.display()),
            "retire it first or pass --force to replace it",
        ));
    }
    if let Some((other, _)) = keys.iter().find(|(id, k)| **k == key && **id != a.key_id) {
        return Err(Error::refused(
            format!("this public key is already installed as {other:?}"),
            "one key, one id: retire the old id if you are renaming it",
        ));
    }
    keys.insert(a.key_id.clone(), key);
    write_keys(&path, &keys)?;
    report(Output { json: a.json }, &format!("added operator key {} to {}", a.key_id, path.display()), &path, &keys);
    Ok(0)
}

fn retire(a: RetireArgs) -> Result<u8, Error> {
    let path = keys_file(a.home.as_deref())?;
    let mut keys = read_keys(&path)?;
    if !keys.contains_key(&a.key_id) {
        return Err(Error::refused(
            format!("no operator key {:?} in {}", a.key_id, path.display()),
            "`gm operator list` shows the installed ids",
        ));
    }
    if keys.len() == 1 {
        return Err(Error::refused(
            format!("refusing to retire {:?}: it is the last operator key and every admin action would fail", a.key_id),
            "add the replacement key first (`gm operator add`), then retire this one",
        ));
    }
    keys.remove(&a.key_id);
    write_keys(&path, &keys)?;
    report(
        Output { json: a.json },
        &format!("retired operator key {} from {}", a.key_id, path.display()),
        &path,
        &keys,
    );
    Ok(0)
}

fn list(a: ListArgs) -> Result<u8, Error> {
    let path = keys_file(a.home.as_deref())?;
    let keys = read_keys(&path)?;
    let mut text = format!("{} operator key(s) in {}", keys.len(), path.display());
    for (id, key) in &keys {
        text.push_str(&format!("\n  {id}  {}", key.to_b64()));
    }
    report(Output { json: a.json }, &text, &path, &keys);
    Ok(0)
}

fn report(out: Output, text: &str, path: &std::path::Path, keys: &KeySet) {
    let mut list = Map::new();
    for (id, key) in keys {
        list.insert(id.clone(), Value::from(key.to_b64()));
    }
    let mut m = Map::new();
    m.insert("file", Value::from(path.display().to_string()));
    m.insert("keys", Value::Object(list));
    out.result(text, &Value::Object(m));
}
