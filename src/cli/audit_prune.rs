//! `gm managed audit-prune`: audit retention that exports before it deletes (`ops::audit_prune`).
//! Flags become [`AuditPruneOptions`] once; the run is recorded in the ops ledger (kind
//! `audit-prune`) with the export's path and SHA-256, like every other managed operation.

use std::path::PathBuf;

use argh::FromArgs;

use crate::clock::{Clock, SystemClock};
use crate::json::{Map, Value};
use crate::model::timestamp::isoformat_utc;
use crate::ops::audit_prune::{prune_audit, AuditPruneOptions, AuditPruneSummary};
use crate::ops::ledger::{artifact, Ledger, LedgerKind, Outcome, Record, Span};

use super::backup::{ops_error, settings};
use super::error::Error;
use super::output::Output;

/// Delete old audit events after exporting them: never a row that is not in a verified export.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "audit-prune",
    example = "gm managed audit-prune --home /etc/gm --dir /var/lib/gm/exports/pruned --max-age-days 365 --dry-run\ngm managed audit-prune --home /etc/gm --dir /var/lib/gm/exports/pruned --max-age-days 365 --max-rows 5000000\ngm managed audit-prune --home /etc/gm --dir exports/pruned --max-rows 1000000 --json",
    note = "Events older than the cutoff (the later of now minus --max-age-days and the created_at of the first event beyond the newest --max-rows) are first exported with upstream's redaction to EXPORT_DIR/audit-pruned-<UTC>.jsonl plus its SHA-256 manifest (mode 0600, never replacing a file); the export is checked against its manifest and exactly the event ids it lists are deleted. Events that arrive meanwhile are never touched. Safe while gm serve runs. As a scheduled job: kind = \"audit-prune\" with export_dir and max_age_days and/or max_rows. Exit status: 0 done (or dry run, or nothing to prune), 1 the export did not check out (nothing deleted), 2 could not run."
)]
pub(crate) struct AuditPruneArgs {
    /// gm home holding gm.toml and the database (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// SQLite database (default DB_PATH, else [na] db_path of HOME/gm.toml, else HOME/na.db)
    #[argh(option)]
    db_path: Option<PathBuf>,
    /// folder for the export of the pruned events (required; created if missing)
    #[argh(option, long = "dir")]
    export_dir: PathBuf,
    /// keep events younger than this many days (default: no age limit)
    #[argh(option)]
    max_age_days: Option<u32>,
    /// keep at most this many of the newest events (default: no row limit)
    #[argh(option)]
    max_rows: Option<u64>,
    /// report the cutoff and how many events would go, write nothing
    #[argh(switch)]
    dry_run: bool,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
}

/// Runs `gm managed audit-prune`.
pub(crate) fn run(args: AuditPruneArgs) -> Result<u8, Error> {
    if args.max_age_days.is_none() && args.max_rows.is_none() {
        return Err(Error::usage(
            "audit-prune needs a retention policy",
            "give --max-age-days N, --max-rows N, or both",
        ));
    }
    if args.max_age_days == Some(0) {
        return Err(Error::usage("--max-age-days 0 would prune every event", "give at least 1 day"));
    }
    let s = settings(args.home.as_deref(), args.db_path.clone())?;
    let opts = AuditPruneOptions {
        db_path: s.db_path.clone(),
        export_dir: args.export_dir.clone(),
        max_age: args.max_age_days.map(|d| chrono::Duration::days(i64::from(d))),
        max_rows: args.max_rows,
        dry_run: args.dry_run,
    };
    let (started, took) = (SystemClock.now(), std::time::Instant::now());
    let result = prune_audit(&opts, started);
    if !opts.dry_run && opts.db_path.is_file() {
        let (outcome, message, details) = match &result {
            Ok(sum) => (Outcome::Ok, format!("pruned {} audit events", sum.pruned), summary_value(sum)),
            Err(e) => (Outcome::Failed, e.to_string(), Value::Null),
        };
        let ok = result.as_ref().ok();
        let entry = Record {
            kind: LedgerKind::AuditPrune,
            outcome,
            artifact: ok.and_then(|s| s.export.as_deref()).and_then(artifact),
            sha256: ok.and_then(|s| s.sha256.clone()),
            size: ok.and_then(|s| s.export.as_ref()).and_then(|p| std::fs::metadata(p).ok()).map(|m| m.len()),
            message,
            details,
        };
        Ledger::beside(&opts.db_path).record_logged(&entry, Span::ended_now(started, took));
    }
    let summary = result.map_err(ops_error)?;
    Output { json: args.json }.result(&text(&summary), &summary_value(&summary));
    Ok(0)
}

fn text(s: &AuditPruneSummary) -> String {
    let cutoff = s.cutoff.map_or("none".to_string(), isoformat_utc);
    match (&s.export, s.dry_run) {
        (_, true) => format!(
            "dry run: {} audit event(s) older than {cutoff} would be exported and pruned; {} in the table",
            s.selected, s.remaining
        ),
        (Some(export), false) => format!(
            "exported {} audit event(s) older than {cutoff} to {} (sha256 {}), pruned {}; {} left",
            s.selected,
            export.display(),
            s.sha256.as_deref().unwrap_or_default(),
            s.pruned,
            s.remaining
        ),
        (None, false) => format!("nothing to prune (cutoff {cutoff}); {} audit event(s) in the table", s.remaining),
    }
}

fn summary_value(s: &AuditPruneSummary) -> Value {
    let mut m = Map::new();
    m.insert("cutoff", s.cutoff.map_or(Value::Null, |c| Value::from(isoformat_utc(c))));
    m.insert("dry_run", Value::Bool(s.dry_run));
    m.insert("export", s.export.as_ref().map_or(Value::Null, |p| Value::from(p.display().to_string())));
    m.insert("pruned", Value::from(s.pruned));
    m.insert("remaining", Value::from(s.remaining));
    m.insert("selected", Value::from(s.selected));
    m.insert("sha256", s.sha256.as_deref().map_or(Value::Null, Value::from));
    Value::Object(m)
}
