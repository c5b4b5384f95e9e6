//! `gm incident bundle`: the "incident bundle" of the responsibility matrix (`operations.md` §1.4,
//! §3.8), which upstream names but never defines. One age-encrypted `.tar.gz` holding:
//!
//! | entry | what |
//! |---|---|
//! | `audit.jsonl`, `audit.jsonl.manifest.json` | the redacted audit export of the window (upstream's rule) |
//! | `na.db` | a consistent snapshot of the NA database (online backup API, `integrity_check`ed), scrubbed: invite tokens and nonces replaced by `fingerprint:<16 hex of SHA-256>`, audit events redacted by the export's rule |
//! | `gm-ops.db` | a snapshot of the ops ledger, when there is one |
//! | `gm-runtime.json` | how the running NA signs (key file, credential or remote signer, fingerprints) and its effective settings, as `gm serve` recorded them, when it runs |
//! | `views/…` | `/healthz`, `/readyz`, `/connectome.json`, `/crl`, `/metrics` as the live NA served them, or computed from the database when it cannot be reached |
//! | `fingerprints.json` | SHA-256 and size of the configuration files (genesis, keys, operators, gm.toml); never their content |
//! | `manifest.json` | format version, window, sources, and SHA-256 + size of every other entry |
//!
//! No private key is ever copied, and no live secret either: a bundle travels to people and tickets
//! that must not be able to enroll a node with a token found in it (F8). The caller (the CLI) gathers the views, because rendering them
//! from the database belongs to `na`, which `ops` may not import. The archive is written under a
//! temporary name in the target folder, fsynced and renamed, mode 0600.

use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::crypto::canonical::to_pretty_string;
use crate::files::atomic::sync_parent;
use crate::files::private::create_new_private;
use crate::json::{Map, Value};
use crate::model::timestamp::isoformat_utc;
use crate::store::{snapshot, OpenMode, Store};

use super::archive::{self, Key};
use super::audit_export::{self, ExportFormat, ExportOptions, REDACTION_RULE_VERSION};
use super::backup::{file_sha256, Scratch};
use super::error::{io, OpsError};
use super::leftovers::tmp_path;

/// The bundle format, recorded in its manifest.
pub(crate) const FORMAT: &str = "gm-incident-bundle";
/// The bundle format version.
pub(crate) const FORMAT_VERSION: i64 = 1;

/// A view of the NA (an HTTP body) captured for the bundle.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// Entry name under `views/`, e.g. `connectome.json`.
    pub name: String,
    /// The body.
    pub bytes: Vec<u8>,
    /// Where it came from: `live http://…/path` or `database`.
    pub source: String,
}

/// A configuration file to fingerprint (hash and size only).
#[derive(Debug, Clone)]
pub(crate) struct Fingerprint {
    /// What it is (`genesis`, `na_private_key`, `operators`, `config`).
    pub label: String,
    /// The file.
    pub path: PathBuf,
}

/// What to bundle.
pub(crate) struct BundleOptions {
    /// The NA database.
    pub db_path: PathBuf,
    /// The ops ledger (included when it exists).
    pub ledger_path: PathBuf,
    /// The network name (for the manifest).
    pub network_name: String,
    /// Window start, inclusive.
    pub since: DateTime<Utc>,
    /// Window end, exclusive.
    pub until: DateTime<Utc>,
    /// The archive to write.
    pub output: PathBuf,
    /// Replace an existing archive.
    pub force: bool,
    /// Encryption (recipients or passphrase).
    pub key: Key,
    /// gzip level.
    pub level: u32,
    /// The captured views.
    pub views: Vec<View>,
    /// Why the live NA was not used, when it was not.
    pub live_error: Option<String>,
    /// Files to fingerprint.
    pub fingerprints: Vec<Fingerprint>,
}

/// What a bundle produced.
#[derive(Debug, Clone)]
pub(crate) struct BundleReport {
    /// The archive.
    pub path: PathBuf,
    /// Its SHA-256.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Audit events in the window.
    pub event_count: usize,
    /// The manifest written into the archive.
    pub manifest: Value,
}

/// Builds the bundle.
pub(crate) fn bundle(opts: &BundleOptions, now: DateTime<Utc>) -> Result<BundleReport, OpsError> {
    if opts.since >= opts.until {
        return Err(OpsError::EmptyWindow { since: isoformat_utc(opts.since), until: isoformat_utc(opts.until) });
    }
    if matches!(opts.key, Key::Identities(_)) {
        return Err(OpsError::Crypto { problem: "an identity decrypts; pass recipients to encrypt".into() });
    }
    if !opts.db_path.is_file() {
        return Err(OpsError::Refused { reason: format!("database {} does not exist", opts.db_path.display()) });
    }
    if opts.output.exists() && !opts.force {
        return Err(OpsError::Exists { path: opts.output.clone() });
    }
    let folder = opts.output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    std::fs::create_dir_all(&folder).map_err(io("create folder", &folder))?;
    let scratch = Scratch::new(&folder, ".gm-incident")?;
    let dir = scratch.path();

    let audit = dir.join("audit.jsonl");
    let export = audit_export::export(
        &ExportOptions {
            db_path: opts.db_path.clone(),
            output: audit.clone(),
            format: ExportFormat::Jsonl,
            event_types: Vec::new(),
            since: Some(opts.since),
            until: Some(opts.until),
            force: false,
            signer: None,
        },
        now,
    )?;

    let snap = dir.join("na.db");
    let store = Store::open(&opts.db_path, OpenMode::ReadOnly, &isoformat_utc(now))?;
    store.read(|c| snapshot::online_backup(c, &snap, crate::store::BUSY_TIMEOUT, |_, _| {}))?;
    drop(store);
    // The copy only: the live database keeps its tokens.
    let scrubbed = snapshot::scrub_secrets(&snap, audit_export::redact_event_json)?;
    let conn = snapshot::open_immutable(&snap)?;
    if let Err(problem) = snapshot::integrity_check(&conn)? {
        return Err(OpsError::Check { check: "integrity_check".into(), problem });
    }
    drop(conn);

    let mut entries: Vec<(String, PathBuf)> = vec![
        ("audit.jsonl".into(), audit.clone()),
        ("audit.jsonl.manifest.json".into(), audit_export::manifest_path(&audit)),
        ("na.db".into(), snap),
    ];
    if opts.ledger_path.is_file() {
        let ledger_snap = dir.join("gm-ops.db");
        let src = crate::store::direct::open_read_only(&opts.ledger_path)?;
        snapshot::online_backup(&src, &ledger_snap, crate::store::BUSY_TIMEOUT, |_, _| {})?;
        entries.push(("gm-ops.db".into(), ledger_snap));
    }
    // How the NA signs, as it recorded itself (no secret in it: paths, fingerprints, settings).
    let runtime = opts.ledger_path.with_file_name(super::runtime::FILE_NAME);
    if runtime.is_file() {
        let copy = dir.join(super::runtime::FILE_NAME);
        std::fs::copy(&runtime, &copy).map_err(io("copy", &runtime))?;
        entries.push((super::runtime::FILE_NAME.into(), copy));
    }
    let views_dir = dir.join("views");
    std::fs::create_dir(&views_dir).map_err(io("create folder", &views_dir))?;
    for view in &opts.views {
        let safe = !view.name.is_empty()
            && view.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            && !view.name.starts_with('.');
        if !safe {
            return Err(OpsError::Refused { reason: format!("invalid view name {:?}", view.name) });
        }
        let path = views_dir.join(&view.name);
        std::fs::write(&path, &view.bytes).map_err(io("write", &path))?;
        entries.push((format!("views/{}", view.name), path));
    }
    let fingerprints = dir.join("fingerprints.json");
    write_json(&fingerprints, &fingerprint_value(&opts.fingerprints)?)?;
    entries.push(("fingerprints.json".into(), fingerprints));

    let manifest = manifest_value(opts, now, &export, &entries, scrubbed)?;
    let manifest_path = dir.join("manifest.json");
    write_json(&manifest_path, &manifest)?;
    entries.insert(0, ("manifest.json".into(), manifest_path));

    let files: Vec<(&str, &Path)> = entries.iter().map(|(n, p)| (n.as_str(), p.as_path())).collect();
    write_archive(&opts.output, opts.force, &opts.key, &files, opts.level)?;
    let size = std::fs::metadata(&opts.output).map_err(io("read", &opts.output))?.len();
    Ok(BundleReport {
        sha256: file_sha256(&opts.output)?,
        path: opts.output.clone(),
        size,
        event_count: export.event_count,
        manifest,
    })
}

fn write_json(path: &Path, value: &Value) -> Result<(), OpsError> {
    let mut text = to_pretty_string(value);
    text.push('\n');
    std::fs::write(path, text).map_err(io("write", path))
}

fn fingerprint_value(files: &[Fingerprint]) -> Result<Value, OpsError> {
    let mut list = Vec::new();
    for f in files {
        let mut m = Map::new();
        m.insert("file", f.label.as_str());
        m.insert("path", f.path.display().to_string());
        if f.path.is_file() {
            m.insert("sha256", file_sha256(&f.path)?);
            m.insert("size", std::fs::metadata(&f.path).map_err(io("read", &f.path))?.len());
        } else {
            m.insert("sha256", Value::Null);
            m.insert("missing", true);
        }
        list.push(Value::Object(m));
    }
    Ok(Value::Array(list))
}

fn manifest_value(
    opts: &BundleOptions,
    now: DateTime<Utc>,
    export: &audit_export::ExportSummary,
    entries: &[(String, PathBuf)],
    scrubbed: snapshot::Scrubbed,
) -> Result<Value, OpsError> {
    let mut files = Vec::new();
    for (name, path) in entries {
        let mut m = Map::new();
        m.insert("name", name.as_str());
        m.insert("sha256", file_sha256(path)?);
        m.insert("size", std::fs::metadata(path).map_err(io("read", path))?.len());
        files.push(Value::Object(m));
    }
    let views: Vec<Value> = opts
        .views
        .iter()
        .map(|v| {
            let mut m = Map::new();
            m.insert("name", format!("views/{}", v.name));
            m.insert("source", v.source.as_str());
            Value::Object(m)
        })
        .collect();
    let mut audit = Map::new();
    audit.insert("event_count", export.event_count);
    audit.insert("redaction_rule_version", REDACTION_RULE_VERSION);
    audit.insert("sha256", export.sha256.as_str());
    let mut window = Map::new();
    window.insert("since", isoformat_utc(opts.since));
    window.insert("until", isoformat_utc(opts.until));
    let mut m = Map::new();
    m.insert("audit", Value::Object(audit));
    m.insert("created_at", isoformat_utc(now));
    let mut redaction = Map::new();
    redaction.insert("audit_events_redacted", scrubbed.audit_events);
    redaction.insert("invite_tokens_fingerprinted", scrubbed.invite_tokens);
    redaction.insert("nonces_fingerprinted", scrubbed.nonces);
    redaction.insert("rule", "invite_tokens.token_id and nonces.nonce become fingerprint:<first 16 hex of sha256>; audit_events.event_json redacted as in audit.jsonl");
    m.insert("database_redaction", Value::Object(redaction));
    m.insert("files", Value::Array(files));
    m.insert("format", FORMAT);
    m.insert("format_version", FORMAT_VERSION);
    m.insert("gm_version", env!("CARGO_PKG_VERSION"));
    m.insert("live_error", opts.live_error.as_deref().map_or(Value::Null, Value::from));
    m.insert("network_name", opts.network_name.as_str());
    m.insert("views", Value::Array(views));
    m.insert("window", Value::Object(window));
    Ok(Value::Object(m))
}

/// Writes the encrypted archive to `<output>.tmp`, fsyncs it and renames it into place; on any
/// failure the temporary file is removed and `output` is untouched.
fn write_archive(output: &Path, force: bool, key: &Key, files: &[(&str, &Path)], level: u32) -> Result<(), OpsError> {
    let tmp = tmp_path(output);
    let _ = std::fs::remove_file(&tmp);
    let out: File = create_new_private(&tmp).map_err(io("create", &tmp))?;
    let written = archive::write(out, key, files, level).and_then(|f| f.sync_all().map_err(io("fsync", &tmp)));
    let placed = written.and_then(|()| {
        if output.exists() && !force {
            return Err(OpsError::Exists { path: output.to_path_buf() });
        }
        std::fs::rename(&tmp, output).map_err(io("rename into place", output))
    });
    if placed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    placed?;
    sync_parent(output);
    Ok(())
}
