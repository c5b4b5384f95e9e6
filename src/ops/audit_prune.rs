//! `gm managed audit-prune`: audit retention that never deletes a row it has not exported.
//!
//! Upstream never deletes audit events, so an NA under attack (or simply old) grows without bound.
//! Retention here runs the export first, in the same job:
//!
//! 1. the cutoff is the later of `now - max_age` and the `created_at` of the first event beyond the
//!    newest `max_rows` (rows at the cutoff instant are kept);
//! 2. every event strictly older than the cutoff is exported with `ops::audit_export` (upstream's
//!    redaction, mode 0600, SHA-256 manifest) to `export_dir/audit-pruned-<UTC>.jsonl`; an existing
//!    file is never replaced;
//! 3. the export is checked against its manifest (hash and event count), then its event ids are
//!    read back from the file, and exactly those rows are deleted, in chunks of
//!    [`DELETE_CHUNK`] per transaction so a live `gm serve` waits at most one short chunk for the
//!    write lock.
//!
//! A row that arrives while the job runs is not in the export and is therefore never deleted. A
//! failure before step 3 deletes nothing; a failure during step 3 leaves the rest of the exported
//! rows in place (the export still holds all of them). `dry_run` computes the cutoff and counts,
//! and writes nothing.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};

use crate::json::parse_str;
use crate::model::timestamp::{isoformat_utc, parse_db_time};
use crate::store::{audit, OpenMode, Store, StoreError};

use super::audit_export::{check_export, export, ExportFormat, ExportOptions};
use super::error::OpsError;

/// Rows deleted per write transaction.
pub(crate) const DELETE_CHUNK: usize = 2_000;

/// What to keep and where the pruned rows go; built and checked once in `cli/`.
#[derive(Debug, Clone)]
pub(crate) struct AuditPruneOptions {
    /// The NA database (must exist).
    pub db_path: PathBuf,
    /// Where the export of the pruned rows is written.
    pub export_dir: PathBuf,
    /// Keep events younger than this. At least one of `max_age` and `max_rows` is set.
    pub max_age: Option<Duration>,
    /// Keep at most this many of the newest events (plus those sharing the cutoff instant).
    pub max_rows: Option<u64>,
    /// Compute and report, write nothing.
    pub dry_run: bool,
}

/// What a retention run did (or, with `dry_run`, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuditPruneSummary {
    /// Events strictly older than this were selected; `None` when the policy selects nothing.
    pub cutoff: Option<DateTime<Utc>>,
    /// Events selected (exported, then deleted).
    pub selected: usize,
    /// Events deleted (0 with `dry_run`).
    pub pruned: usize,
    /// Events left in the table.
    pub remaining: i64,
    /// The export file, when one was written.
    pub export: Option<PathBuf>,
    /// Its SHA-256, when one was written.
    pub sha256: Option<String>,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

/// Runs the retention policy in `opts` at `now`.
pub(crate) fn prune_audit(opts: &AuditPruneOptions, now: DateTime<Utc>) -> Result<AuditPruneSummary, OpsError> {
    if opts.max_age.is_none() && opts.max_rows.is_none() {
        return Err(OpsError::Refused {
            reason: "no retention policy: give a maximum age or a maximum row count".into(),
        });
    }
    if opts.db_path.as_os_str() == ":memory:" {
        return Err(OpsError::MemoryDatabase);
    }
    if !opts.db_path.is_file() {
        return Err(OpsError::Store(StoreError::Missing { path: opts.db_path.clone() }));
    }
    let mode = if opts.dry_run { OpenMode::ReadOnly } else { OpenMode::Serve };
    let store = Store::open(&opts.db_path, mode, &isoformat_utc(now))?;
    let cutoff = cutoff(&store, opts, now)?;
    let selected = match cutoff {
        Some(c) => count_older(&store, c)?,
        None => 0,
    };
    let mut summary = AuditPruneSummary {
        cutoff,
        selected,
        pruned: 0,
        remaining: store.read(audit::count)?,
        export: None,
        sha256: None,
        dry_run: opts.dry_run,
    };
    let Some(cutoff) = cutoff.filter(|_| selected > 0 && !opts.dry_run) else {
        return Ok(summary);
    };
    let output = opts.export_dir.join(format!("audit-pruned-{}.jsonl", now.format("%Y%m%dT%H%M%SZ")));
    let exported = export(
        &ExportOptions {
            db_path: opts.db_path.clone(),
            output: output.clone(),
            format: ExportFormat::Jsonl,
            event_types: Vec::new(),
            since: None,
            until: Some(cutoff),
            force: false,
            signer: None,
        },
        now,
    )?;
    let checked = check_export(&output, None)?;
    let ids = exported_ids(&output)?;
    if ids.len() != checked.event_count || ids.len() != exported.event_count {
        return Err(OpsError::Check {
            check: "export".into(),
            problem: format!(
                "{} lists {} event ids but its manifest counts {}; nothing was pruned",
                output.display(),
                ids.len(),
                checked.event_count
            ),
        });
    }
    for chunk in ids.chunks(DELETE_CHUNK) {
        let chunk = chunk.to_vec();
        let n = store.write(move |c| audit::delete_ids(c, &chunk))?;
        summary.pruned = summary.pruned.saturating_add(n);
    }
    summary.selected = ids.len();
    summary.remaining = store.read(audit::count)?;
    summary.export = Some(output);
    summary.sha256 = Some(checked.sha256);
    Ok(summary)
}

/// The later of the age cutoff and the row-count cutoff.
fn cutoff(store: &Store, opts: &AuditPruneOptions, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, OpsError> {
    let by_age = opts.max_age.and_then(|age| now.checked_sub_signed(age));
    let by_rows = match opts.max_rows {
        Some(keep) => match store.read(|c| audit::created_at_beyond(c, keep))? {
            Some(text) => Some(parse_db_time(&text).ok_or_else(|| OpsError::BadAuditRow {
                created_at: text.clone(),
                problem: "created_at is not an isoformat time, so the row-count cutoff cannot be placed".into(),
            })?),
            None => None,
        },
        None => None,
    };
    Ok(by_age.into_iter().chain(by_rows).max())
}

/// Events strictly older than `cutoff`, by the same parsed-time rule as the export.
fn count_older(store: &Store, cutoff: DateTime<Utc>) -> Result<usize, OpsError> {
    let mut n = 0usize;
    let walked = store.read(|c| {
        Ok(audit::for_each_event::<OpsError>(c, |_, created_at| {
            let at = parse_db_time(created_at).ok_or_else(|| OpsError::BadAuditRow {
                created_at: created_at.to_string(),
                problem: "created_at is not an isoformat time, so retention cannot place it".into(),
            })?;
            if at < cutoff {
                n = n.saturating_add(1);
            }
            Ok(())
        }))
    })?;
    walked?;
    Ok(n)
}

/// The `event_id` of every line of a JSONL export.
fn exported_ids(output: &Path) -> Result<Vec<String>, OpsError> {
    let file = std::fs::File::open(output).map_err(OpsError::io("read", output))?;
    let mut ids = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(OpsError::io("read", output))?;
        let id = parse_str(&line)
            .ok()
            .and_then(|v| v.as_object().and_then(|m| m.get("event_id")).and_then(|v| v.as_str().map(str::to_string)));
        match id {
            Some(id) => ids.push(id),
            None => {
                return Err(OpsError::Check {
                    check: "export".into(),
                    problem: format!("{}: a line has no event_id; nothing was pruned", output.display()),
                })
            }
        }
    }
    Ok(ids)
}
