//! `gm managed audit-export`: the flags of `operations.md` §2.3 plus gm's `--since/--until`,
//! `--force` and manifest (`deviations.md` D22), turned into [`ExportOptions`] once and handed to
//! `ops::audit_export`. Stdout carries upstream's summary (indent 2, upstream's key order, then gm's
//! `manifest` and `sha256`) with `--json`, or one line for people.

use std::path::{Component, Path, PathBuf};

use argh::FromArgs;
use chrono::{DateTime, Utc};

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Env};
use crate::crypto::canonical::to_pretty_string;
use crate::json::{Map, Value};
use crate::ops::audit_export::{export, ExportFormat, ExportOptions, ExportSummary};
use crate::ops::ledger::{artifact, Ledger, LedgerKind, Outcome, Record, Span};

use super::error::Error;
use super::output;

/// Export the audit log with upstream's redaction, as JSONL or JSON, plus a SHA-256 manifest.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "audit-export",
    example = "gm managed audit-export --home /etc/gm --output /var/lib/gm/exports/audit.jsonl\ngm managed audit-export --db-path na.db --output audit.json --format json --since 2026-03-01T00:00:00Z --until 2026-04-01T00:00:00Z\ngm managed audit-export --home /etc/gm --output auth-failures.jsonl --event-type admin_auth_failed --event-type node_auth_failed --force --json",
    note = "Keys containing admin_signature, body, invite_token, na_private_key, nonce, operator_private_key, private_key, request_body, signature or token (case-insensitive) have their values replaced by \"<redacted>\". The database is opened read-only and never modified. Output and OUTPUT.manifest.json are written atomically with mode 0600. Exit status: 0 exported, 2 the command could not run (bad flags, missing database, existing output without --force, I/O)."
)]
pub(crate) struct AuditExportArgs {
    /// gm home holding gm.toml and the database (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// SQLite database to read, never modified (default DB_PATH, else [na] db_path of HOME/gm.toml, else
    /// HOME/na.db)
    #[argh(option)]
    db_path: Option<PathBuf>,
    /// export file to write (required; parent folders are created); the manifest goes to
    /// OUTPUT.manifest.json
    #[argh(option)]
    output: PathBuf,
    /// jsonl (one event per line) or json (one array, indent 2) (default jsonl)
    #[argh(option)]
    format: Option<String>,
    /// keep only events of this type, exact match after redaction; repeat for several (default: all)
    #[argh(option)]
    event_type: Vec<String>,
    /// keep events whose created_at is at or after this RFC 3339 instant (default: no lower bound)
    #[argh(option)]
    since: Option<String>,
    /// keep events whose created_at is before this RFC 3339 instant, exclusive (default: no upper bound)
    #[argh(option)]
    until: Option<String>,
    /// replace an existing output and manifest (default: refuse)
    #[argh(switch)]
    force: bool,
    /// sign the manifest with this Ed25519 private key file (an operator key; default unsigned)
    #[argh(option, long = "signing-key")]
    sign_key: Option<PathBuf>,
    /// the signing key's id (required with --signing-key)
    #[argh(option, long = "signing-key-id")]
    sign_key_id: Option<String>,
    /// print the summary as JSON (default: one line for people)
    #[argh(switch)]
    json: bool,
}

/// Check an audit export against its manifest (SHA-256, event count) and, with --public-key, the
/// manifest's signature.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "audit-verify",
    example = "gm managed audit-verify /var/lib/gm/exports/audit.jsonl --public-key alice.pub",
    note = "Exit status: 0 the export matches its manifest (and signature), 1 it does not (named), 2 could not run."
)]
pub(crate) struct AuditVerifyArgs {
    /// the export file (its manifest is OUTPUT.manifest.json)
    #[argh(positional)]
    output: PathBuf,
    /// the public key the manifest must be signed with
    #[argh(option)]
    public_key: Option<PathBuf>,
    /// print JSON
    #[argh(switch)]
    json: bool,
}

/// Runs `gm managed audit-verify`.
pub(crate) fn run_verify(args: AuditVerifyArgs) -> Result<u8, Error> {
    let key = args.public_key.as_deref().map(crate::crypto::keys::load_public_key).transpose()?;
    let checked = crate::ops::audit_export::check_export(&args.output, key.as_ref()).map_err(|e| match e {
        crate::ops::OpsError::Check { check, problem } => {
            Error::CheckFailed { message: format!("check {check} failed: {problem}") }
        }
        other => Error::from(other),
    })?;
    let mut m = Map::new();
    m.insert("event_count", checked.event_count);
    m.insert("output", args.output.display().to_string());
    m.insert("sha256", checked.sha256.as_str());
    m.insert("signed_by", checked.signed_by.as_deref().map_or(Value::Null, Value::from));
    let text = format!(
        "valid: {} ({} events, sha256 {}){}",
        args.output.display(),
        checked.event_count,
        checked.sha256,
        checked.signed_by.as_ref().map_or(String::new(), |k| format!(", manifest signed by {k}"))
    );
    super::output::Output { json: args.json }.result(&text, &Value::Object(m));
    Ok(0)
}

/// Runs `gm managed audit-export`.
pub(crate) fn run_export(args: AuditExportArgs) -> Result<u8, Error> {
    let json = args.json;
    let opts = export_options(args)?;
    let (started, took) = (SystemClock.now(), std::time::Instant::now());
    let result = export(&opts, started);
    if opts.db_path.is_file() {
        let (outcome, message, details) = match &result {
            Ok(s) => (Outcome::Ok, format!("{} events to {}", s.event_count, s.output.display()), summary_value(s)),
            Err(e) => (Outcome::Failed, e.to_string(), Value::Null),
        };
        let sha = result.as_ref().ok().map(|s| s.sha256.clone());
        let entry = Record {
            kind: LedgerKind::Export,
            outcome,
            artifact: artifact(&opts.output),
            sha256: sha,
            size: result.as_ref().ok().and_then(|s| std::fs::metadata(&s.output).ok()).map(|m| m.len()),
            message,
            details,
        };
        Ledger::beside(&opts.db_path).record_logged(&entry, Span::ended_now(started, took));
    }
    let summary = result?;
    if json {
        output::raw(&(to_pretty_string(&summary_value(&summary)) + "\n"));
    } else {
        output::line(&format!(
            "exported {} event{} from {} to {} ({}, sha256 {}); manifest {}",
            summary.event_count,
            if summary.event_count == 1 { "" } else { "s" },
            summary.db_path.display(),
            summary.output.display(),
            summary.format.as_str(),
            summary.sha256,
            summary.manifest.display()
        ));
    }
    Ok(0)
}

/// Resolves the database and parses every flag into typed options, before any file is touched.
fn export_options(args: AuditExportArgs) -> Result<ExportOptions, Error> {
    let format = match args.format.as_deref() {
        None | Some("jsonl") => ExportFormat::Jsonl,
        Some("json") => ExportFormat::Json,
        Some(other) => return Err(Error::usage(format!("invalid --format {other:?}"), "use jsonl or json")),
    };
    let db_path = match args.db_path {
        Some(p) => p,
        None => {
            let env = Env::from_process();
            let home = config::resolve_home(args.home.as_deref(), &env);
            let file = config::load_file(&home)?;
            config::resolve_db_path(&home, &file, &env, None)
        }
    };
    Ok(ExportOptions {
        db_path: normalized(&db_path),
        output: normalized(&args.output),
        format,
        event_types: args.event_type,
        since: parse_instant("--since", args.since.as_deref())?,
        until: parse_instant("--until", args.until.as_deref())?,
        force: args.force,
        signer: match (args.sign_key, args.sign_key_id) {
            (None, None) => None,
            (Some(file), Some(id)) => Some((crate::crypto::keys::load_signing_key(&file)?, id)),
            _ => {
                return Err(Error::usage(
                    "--signing-key and --signing-key-id go together",
                    "e.g. --signing-key alice.key --signing-key-id alice-2026",
                ))
            }
        },
    })
}

fn parse_instant(flag: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, Error> {
    let Some(text) = text else { return Ok(None) };
    DateTime::parse_from_rfc3339(text).map(|t| Some(t.with_timezone(&Utc))).map_err(|e| {
        Error::usage(
            format!("invalid {flag} {text:?}: {e}"),
            "use an RFC 3339 time with an offset, such as 2026-03-01T00:00:00Z",
        )
    })
}

/// A path as upstream echoes it (Python `pathlib`): `.` components dropped, so `./na.db` is `na.db`.
fn normalized(path: &Path) -> PathBuf {
    let clean: PathBuf = path.components().filter(|c| !matches!(c, Component::CurDir)).collect();
    if clean.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        clean
    }
}

/// Upstream's summary keys in upstream's order, then gm's additions.
fn summary_value(summary: &ExportSummary) -> Value {
    let mut m = Map::new();
    m.insert("db_path", summary.db_path.display().to_string());
    m.insert("output", summary.output.display().to_string());
    m.insert("format", summary.format.as_str());
    m.insert("event_count", summary.event_count);
    m.insert("manifest", summary.manifest.display().to_string());
    m.insert("sha256", summary.sha256.as_str());
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_echoed_like_python_pathlib() {
        assert_eq!(normalized(Path::new("./na.db")), PathBuf::from("na.db"));
        assert_eq!(normalized(Path::new("a//./b/")), PathBuf::from("a/b"));
        assert_eq!(normalized(Path::new("/x/./y")), PathBuf::from("/x/y"));
        assert_eq!(normalized(Path::new(".")), PathBuf::from("."));
    }

    #[test]
    fn instants_need_an_offset() {
        let t = parse_instant("--since", Some("2026-03-01T00:00:00+01:00")).unwrap().unwrap();
        assert_eq!(t.to_rfc3339(), "2026-02-28T23:00:00+00:00");
        assert!(parse_instant("--since", Some("2026-03-01T00:00:00")).is_err());
        assert!(parse_instant("--until", None).unwrap().is_none());
    }

    #[test]
    fn summary_keeps_upstream_key_order() {
        let summary = ExportSummary {
            db_path: "na.db".into(),
            output: "a.jsonl".into(),
            format: ExportFormat::Jsonl,
            event_count: 2,
            manifest: "a.jsonl.manifest.json".into(),
            sha256: "ab".into(),
        };
        assert_eq!(
            to_pretty_string(&summary_value(&summary)),
            "{\n  \"db_path\": \"na.db\",\n  \"output\": \"a.jsonl\",\n  \"format\": \"jsonl\",\n  \"event_count\": 2,\n  \"manifest\": \"a.jsonl.manifest.json\",\n  \"sha256\": \"ab\"\n}"
        );
    }
}
