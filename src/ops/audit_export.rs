//! `gm managed audit-export` (`operations.md` §2.3, `deviations.md` D22): copies the `audit_events`
//! table into a JSONL or JSON file with upstream's exact redaction rule and byte formats, so SIEM
//! pipelines fed by upstream keep working, and adds what upstream lacks: a `created_at` window
//! (`since` inclusive, `until` exclusive) and a sidecar manifest holding the SHA-256 of the output.
//!
//! The source database is opened read-only: the export never writes to it, never creates it and
//! never switches its journal mode (upstream's connection switched the file to WAL). One footprint
//! remains, and it is SQLite's: a reader of a WAL-mode database needs the `-shm` wal-index, so when a
//! clean shutdown removed `-wal`/`-shm`, opening creates them empty (no data; the next writer reuses
//! them). `immutable=1` would avoid that but could read torn pages under a live server. Rows stream
//! from SQLite into `<output>.tmp` one at a time, so a large table is never held in memory; the tmp
//! file is fsynced and renamed over the output only when complete, and removed on every error path.
//! Both files are created with mode 0600: an export still reveals trust decisions, node keys and
//! timing (§2.3), so it belongs under incident-record access control.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::crypto::canonical::{canonical_string, to_pretty_sorted_string, to_string_with, Style};
use crate::crypto::digest::hex;
use crate::crypto::keys::{PublicKey, SigningKey};
use crate::files::atomic::{sync_parent, tmp_path, write_atomic, Mode};
use crate::files::private::create_new_private;
use crate::json::{parse_str, Map, Value};
use crate::model::timestamp::{isoformat_utc, parse_db_time};
use crate::store::{audit, OpenMode, Store};

use super::error::OpsError;

/// What a redacted value becomes.
pub(crate) const REDACTED: &str = "<redacted>";

/// Upstream's redaction substrings: an object key whose lower-cased name contains one of them has its
/// whole value replaced by [`REDACTED`] (`operations.md` §2.3).
pub(crate) const REDACTED_KEY_PARTS: [&str; 10] = [
    "admin_signature",
    "body",
    "invite_token",
    "na_private_key",
    "nonce",
    "operator_private_key",
    "private_key",
    "request_body",
    "signature",
    "token",
];

/// Version of the redaction rule recorded in the manifest; bumped if [`REDACTED_KEY_PARTS`] changes.
pub(crate) const REDACTION_RULE_VERSION: i64 = 1;

/// Version of the manifest layout.
pub(crate) const MANIFEST_FORMAT_VERSION: i64 = 1;

/// The export file's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExportFormat {
    /// One event per line, sorted keys, Python's default separators. The default.
    Jsonl,
    /// One JSON array, indent 2, sorted keys.
    Json,
}

impl ExportFormat {
    /// The name used by `--format` and in summaries (`jsonl`, `json`).
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Json => "json",
        }
    }
}

/// What to export, where, and how; built and checked once in `cli/`.
#[derive(Debug, Clone)]
pub(crate) struct ExportOptions {
    /// The NA database to read (never modified).
    pub db_path: PathBuf,
    /// The export file; its manifest is written next to it as `<output>.manifest.json`.
    pub output: PathBuf,
    /// The output layout. Defaults to [`ExportFormat::Jsonl`] in the CLI.
    pub format: ExportFormat,
    /// Event types to keep, matched exactly against `event_type` after redaction; empty keeps all.
    pub event_types: Vec<String>,
    /// Keep events whose `created_at` is at or after this instant (inclusive). Defaults to no bound.
    pub since: Option<DateTime<Utc>>,
    /// Keep events whose `created_at` is strictly before this instant (exclusive). Defaults to no bound.
    pub until: Option<DateTime<Utc>>,
    /// Replace an existing output and manifest. Defaults to false: existing files are refused.
    pub force: bool,
    /// Sign the manifest with this key (`signature` in the manifest). Defaults to unsigned.
    pub signer: Option<(SigningKey, String)>,
}

/// What an export produced: upstream's summary fields plus the manifest path and the output digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExportSummary {
    /// The database read, as given.
    pub db_path: PathBuf,
    /// The export file, as given.
    pub output: PathBuf,
    /// The layout written.
    pub format: ExportFormat,
    /// How many events were written.
    pub event_count: usize,
    /// The sidecar manifest.
    pub manifest: PathBuf,
    /// Lower-case hex SHA-256 of the export file's bytes.
    pub sha256: String,
}

/// Exports the audit events selected by `opts`; `now` stamps the manifest.
pub(crate) fn export(opts: &ExportOptions, now: DateTime<Utc>) -> Result<ExportSummary, OpsError> {
    let manifest = manifest_path(&opts.output);
    validate(opts, &manifest)?;
    let store = Store::open(&opts.db_path, OpenMode::ReadOnly, &isoformat_utc(now))?;
    if let Some(parent) = opts.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(OpsError::io("create folder", parent))?;
    }
    let tmp = tmp_path(&opts.output);
    let written = write_events(&store, opts, &tmp).and_then(|(count, sha256)| {
        publish(&tmp, &opts.output, opts.force)?;
        Ok((count, sha256))
    });
    let (event_count, sha256) = written.inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })?;
    let summary = ExportSummary {
        db_path: opts.db_path.clone(),
        output: opts.output.clone(),
        format: opts.format,
        event_count,
        manifest,
        sha256,
    };
    let mut manifest_json = manifest_value(opts, &summary, now);
    if let (Some((key, key_id)), Value::Object(m)) = (&opts.signer, &mut manifest_json) {
        let signature = key.sign_b64(canonical_string(&Value::Object(m.clone())).as_bytes());
        let mut sig = Map::new();
        sig.insert("algorithm", "ed25519");
        sig.insert("key_id", key_id.as_str());
        sig.insert("public_key", key.public_key().to_b64());
        sig.insert("value", signature);
        m.insert("signature", Value::Object(sig));
    }
    let text = to_pretty_sorted_string(&manifest_json) + "\n";
    write_atomic(&summary.manifest, text.as_bytes(), Mode::Private, opts.force)
        .map_err(|e| exists_or_io(e, "write", &summary.manifest))?;
    Ok(summary)
}

/// What checking an export against its manifest found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExportCheck {
    /// Events in the file.
    pub event_count: usize,
    /// The file's SHA-256.
    pub sha256: String,
    /// The manifest's signing key id, when it is signed and the signature verified.
    pub signed_by: Option<String>,
}

/// Checks `output` against its manifest: the SHA-256 and the event count must match and, with
/// `public_key`, the manifest must carry a signature that verifies with it. A mismatch is an
/// [`OpsError::Check`] naming what differs.
pub(crate) fn check_export(output: &Path, public_key: Option<&PublicKey>) -> Result<ExportCheck, OpsError> {
    let manifest_file = manifest_path(output);
    let text = fs::read_to_string(&manifest_file).map_err(OpsError::io("read", &manifest_file))?;
    let mut manifest = parse_str(&text).map_err(|e| OpsError::Check {
        check: "manifest".into(),
        problem: format!("{}: {e}", manifest_file.display()),
    })?;
    let field = |m: &Value, k: &str| m.as_object().and_then(|o| o.get(k)).cloned();
    let sha256 = super::backup::file_sha256(output)?;
    if field(&manifest, "sha256").and_then(|v| v.as_str().map(str::to_string)).as_deref() != Some(sha256.as_str()) {
        return Err(OpsError::Check {
            check: "sha256".into(),
            problem: format!("{} hashes to {sha256}, not the manifest's", output.display()),
        });
    }
    let body = fs::read_to_string(output).map_err(OpsError::io("read", output))?;
    let event_count = if body.trim_start().starts_with('[') {
        parse_str(&body).ok().and_then(|v| v.as_array().map(|a| a.len())).unwrap_or(0)
    } else {
        body.lines().filter(|l| !l.trim().is_empty()).count()
    };
    let expected = field(&manifest, "event_count").and_then(|v| v.as_i64());
    if expected != i64::try_from(event_count).ok() {
        return Err(OpsError::Check {
            check: "event_count".into(),
            problem: format!("{event_count} events in the file, the manifest says {expected:?}"),
        });
    }
    let signature = match &mut manifest {
        Value::Object(m) => m.remove("signature"),
        _ => None,
    };
    let signed_by = match (public_key, signature) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(OpsError::Check { check: "signature".into(), problem: "the manifest is not signed".into() })
        }
        (Some(key), Some(sig)) => {
            let value = field(&sig, "value").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            if !crate::crypto::signature::verify_b64(key, canonical_string(&manifest).as_bytes(), &value) {
                return Err(OpsError::Check {
                    check: "signature".into(),
                    problem: "the manifest signature does not verify with the given key".into(),
                });
            }
            field(&sig, "key_id").and_then(|v| v.as_str().map(str::to_string))
        }
    };
    Ok(ExportCheck { event_count, sha256, signed_by })
}

/// The sidecar manifest of `output`: `<output>.manifest.json`.
pub fn manifest_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_os_string();
    name.push(".manifest.json");
    PathBuf::from(name)
}

/// Applies upstream's redaction rule in place: walks objects and arrays; every object key whose
/// lower-cased name contains one of [`REDACTED_KEY_PARTS`] has its whole value (of any type) replaced
/// by [`REDACTED`] without descending into it. Values are never inspected, so `"reason":
/// "invalid_signature"` survives; keys like `token_fingerprint` are over-redacted by design.
pub(crate) fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            *map = std::mem::take(map)
                .into_iter()
                .map(|(key, mut item)| {
                    if is_redacted_key(&key) {
                        item = Value::from(REDACTED);
                    } else {
                        redact(&mut item);
                    }
                    (key, item)
                })
                .collect();
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// One stored event's `event_json` with the rule applied, in upstream's JSON layout; text that is
/// not JSON becomes `"<redacted>"` as a whole (it cannot be walked, so nothing of it is kept).
pub(crate) fn redact_event_json(event_json: &str) -> String {
    match parse_str(event_json) {
        Ok(mut event) => {
            redact(&mut event);
            to_string_with(&event, &Style::PYTHON_DEFAULT)
        }
        Err(_) => to_string_with(&Value::from(REDACTED), &Style::PYTHON_DEFAULT),
    }
}

fn is_redacted_key(key: &str) -> bool {
    let lower = key.to_lowercase();
    REDACTED_KEY_PARTS.iter().any(|part| lower.contains(part))
}

/// Rejects what cannot work before any file is touched.
fn validate(opts: &ExportOptions, manifest: &Path) -> Result<(), OpsError> {
    if opts.db_path.as_os_str() == ":memory:" {
        return Err(OpsError::MemoryDatabase);
    }
    if let (Some(since), Some(until)) = (opts.since, opts.until) {
        if since >= until {
            return Err(OpsError::EmptyWindow { since: isoformat_utc(since), until: isoformat_utc(until) });
        }
    }
    let db = resolved(&opts.db_path);
    let ours = [opts.output.clone(), manifest.to_path_buf(), tmp_path(&opts.output), tmp_path(manifest)];
    for path in &ours {
        let path = resolved(path);
        let hits_db = ["", "-wal", "-shm", "-journal"].iter().any(|suffix| {
            let mut sidecar = db.as_os_str().to_os_string();
            sidecar.push(suffix);
            path.as_os_str() == sidecar
        });
        if hits_db {
            return Err(OpsError::OutputIsDatabase { output: opts.output.clone(), db_path: opts.db_path.clone() });
        }
    }
    if !opts.force {
        for path in [&opts.output, &manifest.to_path_buf()] {
            if path.exists() {
                return Err(OpsError::Exists { path: path.clone() });
            }
        }
    }
    Ok(())
}

/// `path` with symlinks and `..` resolved as far as it exists (the file itself may not exist yet).
fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = fs::canonicalize(path) {
        return p;
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match (fs::canonicalize(parent), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    }
}

/// Streams the selected events into a new private `tmp` file, fsyncs it and returns the event count
/// and the SHA-256 of the bytes written.
fn write_events(store: &Store, opts: &ExportOptions, tmp: &Path) -> Result<(usize, String), OpsError> {
    let _ = fs::remove_file(tmp);
    let file = create_new_private(tmp).map_err(OpsError::io("create", tmp))?;
    let mut sink =
        ExportSink { out: BufWriter::new(file), hasher: Sha256::new(), path: tmp, format: opts.format, count: 0 };
    store.read(|conn| {
        Ok(audit::for_each_event::<OpsError>(conn, |event_json, created_at| {
            if !in_window(created_at, opts)? {
                return Ok(());
            }
            let mut event = parse_str(event_json).map_err(|e| OpsError::BadAuditRow {
                created_at: created_at.to_string(),
                problem: format!("event_json is not valid JSON: {e}"),
            })?;
            redact(&mut event);
            if is_selected_type(&event, &opts.event_types) {
                sink.push(&event)?;
            }
            Ok(())
        }))
    })??;
    sink.finish()
}

/// Whether `created_at` lies in `[since, until)`; without a window every row is in and none is parsed.
fn in_window(created_at: &str, opts: &ExportOptions) -> Result<bool, OpsError> {
    if opts.since.is_none() && opts.until.is_none() {
        return Ok(true);
    }
    let at = parse_db_time(created_at).ok_or_else(|| OpsError::BadAuditRow {
        created_at: created_at.to_string(),
        problem: "created_at is not an isoformat time, so the --since/--until window cannot place it".to_string(),
    })?;
    Ok(opts.since.is_none_or(|since| at >= since) && opts.until.is_none_or(|until| at < until))
}

/// Upstream's filter: exact match on the (already redacted) `event_type`; no filter keeps everything.
fn is_selected_type(event: &Value, event_types: &[String]) -> bool {
    if event_types.is_empty() {
        return true;
    }
    let found = event.as_object().and_then(|m| m.get("event_type")).and_then(Value::as_str);
    found.is_some_and(|t| event_types.iter().any(|wanted| wanted == t))
}

/// The tmp file being written, with a running digest of its bytes.
struct ExportSink<'a> {
    out: BufWriter<File>,
    hasher: Sha256,
    path: &'a Path,
    format: ExportFormat,
    count: usize,
}

impl ExportSink<'_> {
    /// Appends one event in the chosen layout.
    fn push(&mut self, event: &Value) -> Result<(), OpsError> {
        match self.format {
            ExportFormat::Jsonl => {
                let line = to_string_with(event, &Style::PYTHON_DEFAULT) + "\n";
                self.put(&line)?;
            }
            ExportFormat::Json => {
                self.put(if self.count == 0 { "[\n  " } else { ",\n  " })?;
                // Each array item sits one level deep: indent every line after its first by two
                // spaces. ASCII escaping turns newlines inside strings into `\n`, so every raw
                // newline in the text is a layout newline.
                self.put(&to_pretty_sorted_string(event).replace('\n', "\n  "))?;
            }
        }
        self.count = self.count.saturating_add(1);
        Ok(())
    }

    /// Closes the layout, flushes and fsyncs; returns the event count and the hex digest.
    fn finish(mut self) -> Result<(usize, String), OpsError> {
        if self.format == ExportFormat::Json {
            self.put(if self.count == 0 { "[]\n" } else { "\n]\n" })?;
        }
        let file = self.out.into_inner().map_err(|e| OpsError::Io {
            action: "write",
            path: self.path.to_path_buf(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(OpsError::io("sync", self.path))?;
        Ok((self.count, hex(&self.hasher.finalize())))
    }

    fn put(&mut self, text: &str) -> Result<(), OpsError> {
        self.hasher.update(text.as_bytes());
        self.out.write_all(text.as_bytes()).map_err(OpsError::io("write", self.path))
    }
}

/// Renames the complete tmp file over `output`; without `force` an output that appeared meanwhile
/// is refused rather than replaced.
fn publish(tmp: &Path, output: &Path, force: bool) -> Result<(), OpsError> {
    if !force && output.exists() {
        return Err(OpsError::Exists { path: output.to_path_buf() });
    }
    fs::rename(tmp, output).map_err(OpsError::io("rename into place", output))?;
    sync_parent(output);
    Ok(())
}

fn exists_or_io(e: std::io::Error, action: &'static str, path: &Path) -> OpsError {
    if e.kind() == std::io::ErrorKind::AlreadyExists {
        OpsError::Exists { path: path.to_path_buf() }
    } else {
        OpsError::Io { action, path: path.to_path_buf(), source: e }
    }
}

/// The manifest: what was exported, from where, with which filters and rule, and the output digest.
fn manifest_value(opts: &ExportOptions, summary: &ExportSummary, now: DateTime<Utc>) -> Value {
    let time_or_null = |t: Option<DateTime<Utc>>| t.map_or(Value::Null, |t| Value::from(isoformat_utc(t)));
    let mut rule = Map::new();
    rule.insert("version", REDACTION_RULE_VERSION);
    rule.insert("keys", REDACTED_KEY_PARTS.iter().map(|k| Value::from(*k)).collect::<Vec<_>>());
    let mut m = Map::new();
    m.insert("format_version", MANIFEST_FORMAT_VERSION);
    m.insert("created_at", isoformat_utc(now));
    m.insert("gm_version", env!("CARGO_PKG_VERSION"));
    m.insert("source_db", summary.db_path.display().to_string());
    m.insert("output", summary.output.display().to_string());
    m.insert("format", summary.format.as_str());
    m.insert("event_count", summary.event_count);
    m.insert("sha256", summary.sha256.as_str());
    m.insert("since", time_or_null(opts.since));
    m.insert("until", time_or_null(opts.until));
    m.insert("event_types", opts.event_types.iter().map(|t| Value::from(t.as_str())).collect::<Vec<_>>());
    m.insert("redaction_rule", rule);
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::canonical::canonical_string;

    fn redacted(json: &str) -> String {
        let mut v = parse_str(json).unwrap();
        redact(&mut v);
        canonical_string(&v)
    }

    #[test]
    fn redact_hides_upstream_named_fields_and_keeps_the_rest() {
        let event = r#"{"event_id": "e1", "event_type": "node_auth_failed", "created_at": "2026-01-01T00:00:00+00:00",
            "details": {"token_fingerprint": "ab12", "invite_token_fingerprint": "cd34", "nonce": "n-1",
            "reason": "invalid_signature", "key_id": "operator-local", "scope": "global",
            "node_public_key": "pk", "remote_addr": "127.0.0.1"}}"#;
        assert_eq!(
            redacted(event),
            r#"{"created_at":"2026-01-01T00:00:00+00:00","details":{"invite_token_fingerprint":"<redacted>","key_id":"operator-local","node_public_key":"pk","nonce":"<redacted>","reason":"invalid_signature","remote_addr":"127.0.0.1","scope":"global","token_fingerprint":"<redacted>"},"event_id":"e1","event_type":"node_auth_failed"}"#
        );
    }

    #[test]
    fn redact_replaces_whole_values_of_any_type_and_matches_case_insensitively() {
        assert_eq!(
            redacted(r#"{"Request_Body": {"a": 1}, "SIGNATURES": [1, 2], "x_private_key_y": null, "bodyguard": 7}"#),
            r#"{"Request_Body":"<redacted>","SIGNATURES":"<redacted>","bodyguard":"<redacted>","x_private_key_y":"<redacted>"}"#
        );
    }

    #[test]
    fn redact_walks_arrays_and_nested_objects_but_never_values() {
        assert_eq!(
            redacted(r#"[{"items": [{"nonce": 1, "note": "token nonce signature"}]}, "token", 3]"#),
            r#"[{"items":[{"nonce":"<redacted>","note":"token nonce signature"}]},"token",3]"#
        );
    }

    #[test]
    fn every_rule_substring_is_redacted() {
        for part in REDACTED_KEY_PARTS {
            let mut m = Map::new();
            m.insert(format!("x{part}x"), 1i64);
            let mut v = Value::Object(m);
            redact(&mut v);
            assert_eq!(v.as_object().unwrap().values().next().unwrap().as_str(), Some(REDACTED), "{part}");
        }
    }

    #[test]
    fn window_is_since_inclusive_until_exclusive() {
        let t = |s: &str| parse_db_time(s).unwrap();
        let opts = ExportOptions {
            db_path: "na.db".into(),
            output: "out.jsonl".into(),
            format: ExportFormat::Jsonl,
            event_types: Vec::new(),
            since: Some(t("2026-01-02T00:00:00+00:00")),
            until: Some(t("2026-01-03T00:00:00+00:00")),
            force: false,
            signer: None,
        };
        assert!(!in_window("2026-01-01T23:59:59.999999+00:00", &opts).unwrap());
        assert!(in_window("2026-01-02T00:00:00+00:00", &opts).unwrap());
        assert!(in_window("2026-01-02T23:59:59+00:00", &opts).unwrap());
        assert!(!in_window("2026-01-03T00:00:00+00:00", &opts).unwrap());
        assert!(matches!(in_window("yesterday", &opts), Err(OpsError::BadAuditRow { .. })));
    }

    #[test]
    fn type_filter_is_exact() {
        let event = parse_str(r#"{"event_type": "join_success"}"#).unwrap();
        assert!(is_selected_type(&event, &[]));
        assert!(is_selected_type(&event, &["x".into(), "join_success".into()]));
        assert!(!is_selected_type(&event, &["join".into()]));
        assert!(!is_selected_type(&parse_str("[]").unwrap(), &["join".into()]));
    }

    #[test]
    fn validation_refuses_memory_db_empty_window_and_the_source_db_as_output() {
        let base = ExportOptions {
            db_path: ":memory:".into(),
            output: "out.jsonl".into(),
            format: ExportFormat::Jsonl,
            event_types: Vec::new(),
            since: None,
            until: None,
            force: true,
            signer: None,
        };
        assert!(matches!(validate(&base, Path::new("m")), Err(OpsError::MemoryDatabase)));
        let t = parse_db_time("2026-01-02T00:00:00+00:00").unwrap();
        let window = ExportOptions { db_path: "na.db".into(), since: Some(t), until: Some(t), ..base.clone() };
        assert!(matches!(validate(&window, Path::new("m")), Err(OpsError::EmptyWindow { .. })));
        let wal = ExportOptions { db_path: "dir/na.db".into(), output: "dir/./na.db-wal".into(), ..base };
        assert!(matches!(validate(&wal, Path::new("m")), Err(OpsError::OutputIsDatabase { .. })));
    }

    #[test]
    fn manifest_sits_next_to_the_output() {
        assert_eq!(manifest_path(Path::new("out/a.jsonl")), PathBuf::from("out/a.jsonl.manifest.json"));
    }
}
