//! The ops ledger's one owner: what a managed run records (`gm-ops.db` beside the NA database, one
//! row per backup, verify, restore, drill, export, prune, incident bundle or scheduled job run) and
//! the questions the other commands ask of it (the newest successful run of a kind, a job's last run
//! and last start, the artifacts that passed a check).
//!
//! The kinds and outcomes are typed here ([`LedgerKind`], [`Outcome`]); their strings are the
//! table's content and never change (older ledgers must keep reading). Every SQL string stays in
//! `store::ledger`; this module never prints (a command's failure to record is logged, never fatal)
//! and never decides what a check concludes from the entries.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::clock::{Clock, SystemClock};
use crate::crypto::canonical::canonical_string;
use crate::json::{parse_str, Map, Value};
use crate::model::timestamp::{isoformat_utc, parse_db_time};
use crate::store::ledger as table;
use crate::store::StoreError;

pub use crate::store::ledger::Entry;

/// What a ledger entry records. The strings are the `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum LedgerKind {
    /// `gm managed backup`: `backup`.
    Backup,
    /// `gm managed verify`: `verify`.
    Verify,
    /// `gm managed restore`: `restore`.
    Restore,
    /// `gm managed restore-drill`: `drill`.
    Drill,
    /// `gm managed audit-export`: `export`.
    Export,
    /// `gm managed audit-prune`: `audit-prune`.
    AuditPrune,
    /// `gm managed prune` (backup retention): `prune`.
    Prune,
    /// `gm managed incident-bundle`: `incident`.
    Incident,
    /// A scheduled job's run (artifact = the job name): `job`.
    Job,
}

impl LedgerKind {
    /// Every kind, in the order of the enum.
    pub(crate) const ALL: [LedgerKind; 9] = [
        LedgerKind::Backup,
        LedgerKind::Verify,
        LedgerKind::Restore,
        LedgerKind::Drill,
        LedgerKind::Export,
        LedgerKind::AuditPrune,
        LedgerKind::Prune,
        LedgerKind::Incident,
        LedgerKind::Job,
    ];

    /// The `kind` column.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Backup => "backup",
            LedgerKind::Verify => "verify",
            LedgerKind::Restore => "restore",
            LedgerKind::Drill => "drill",
            LedgerKind::Export => "export",
            LedgerKind::AuditPrune => "audit-prune",
            LedgerKind::Prune => "prune",
            LedgerKind::Incident => "incident",
            LedgerKind::Job => "job",
        }
    }

    /// The kind a `kind` column names, if gm knows it.
    pub fn parse(s: &str) -> Option<LedgerKind> {
        LedgerKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for LedgerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run ended: the scheduler's outcome is the ledger's, one definition (its strings are the
/// `outcome` column and the job metrics' labels).
pub use crate::sched::runner::Outcome;

/// One run to record (its timing comes apart, as a [`Span`]).
#[derive(Debug, Clone)]
pub(crate) struct Record {
    /// What ran.
    pub kind: LedgerKind,
    /// How it ended.
    pub outcome: Outcome,
    /// The file produced or checked (a job's name for [`LedgerKind::Job`]).
    pub artifact: Option<String>,
    /// The artifact's SHA-256.
    pub sha256: Option<String>,
    /// The artifact's size.
    pub size: Option<u64>,
    /// One line for people.
    pub message: String,
    /// Structured details (stored as canonical JSON).
    pub details: Value,
}

impl Record {
    /// A run of `kind` that failed with `message`, nothing produced.
    pub(crate) fn failed(kind: LedgerKind, artifact: Option<String>, message: String) -> Record {
        Record {
            kind,
            outcome: Outcome::Failed,
            artifact,
            sha256: None,
            size: None,
            message,
            details: Value::Object(Map::new()),
        }
    }
}

/// When a run happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// When it started (wall clock).
    pub started_at: DateTime<Utc>,
    /// When it ended (wall clock).
    pub finished_at: DateTime<Utc>,
    /// How long it took (monotonic).
    pub duration: Duration,
}

impl Span {
    /// A run that started at `started_at` (wall clock) and `took` (monotonic, started with it), and
    /// ends now.
    pub(crate) fn ended_now(started_at: DateTime<Utc>, took: Instant) -> Span {
        Span { started_at, finished_at: SystemClock.now(), duration: took.elapsed() }
    }
}

impl Record {
    /// The row as the table stores it (the one place an entry is built).
    fn entry(&self, span: Span) -> Entry {
        Entry {
            id: 0,
            kind: self.kind.as_str().to_string(),
            started_at: isoformat_utc(span.started_at),
            finished_at: isoformat_utc(span.finished_at),
            outcome: self.outcome.as_str().to_string(),
            duration_ms: i64::try_from(span.duration.as_millis()).unwrap_or(i64::MAX),
            artifact: self.artifact.clone(),
            sha256: self.sha256.clone(),
            size_bytes: self.size.and_then(|s| i64::try_from(s).ok()),
            message: self.message.clone(),
            details_json: canonical_string(&self.details),
        }
    }
}

/// A path as the ledger records an artifact (as it was given, not canonicalized).
pub(crate) fn artifact(path: &Path) -> Option<String> {
    Some(path.display().to_string())
}

/// The ops ledger file beside the NA database `db_path` (`gm-ops.db` in its folder).
pub(crate) fn path_beside(db_path: &Path) -> PathBuf {
    db_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).join("gm-ops.db")
}

/// The ops ledger at one path. Each call opens the file (creating it only to record or list), so a
/// handle is cheap to keep and never holds the database open between questions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ledger {
    path: PathBuf,
}

impl Ledger {
    /// The ledger beside the NA database `db_path`.
    pub(crate) fn beside(db_path: &Path) -> Ledger {
        Ledger { path: path_beside(db_path) }
    }

    /// The ledger in the file `path` (e.g. a copy of another host's ledger, read as evidence).
    pub(crate) fn at(path: &Path) -> Ledger {
        Ledger { path: path.to_path_buf() }
    }

    /// The ledger file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the ledger file exists (nothing has been recorded when it does not).
    pub(crate) fn exists(&self) -> std::io::Result<bool> {
        self.path.try_exists()
    }

    /// Appends `r` (creating the ledger if needed); returns the row id.
    pub(crate) fn record(&self, r: &Record, span: Span) -> Result<i64, StoreError> {
        let conn = table::open(&self.path)?;
        table::record(&conn, &r.entry(span))
    }

    /// Appends `r`; a failure is logged, never fatal: the run itself happened.
    pub(crate) fn record_logged(&self, r: &Record, span: Span) {
        if let Err(e) = self.record(r, span) {
            let path = self.path.display();
            match (r.kind, &r.artifact) {
                (LedgerKind::Job, Some(job)) => {
                    log::error!(target: "gm::sched", "cannot record job {job} in the ops ledger {path}: {e}");
                }
                (kind, _) => log::error!(target: "gm::ops", "cannot record {kind} in the ops ledger {path}: {e}"),
            }
        }
    }

    /// Entries, newest first, at most `limit`, optionally of one `kind` column value (a free
    /// filter: `gm managed history --kind` names kinds this gm may not know). Creates the ledger.
    pub(crate) fn list(&self, kind: Option<&str>, limit: i64) -> Result<Vec<Entry>, StoreError> {
        let conn = table::open(&self.path)?;
        table::list(&conn, kind, limit)
    }

    /// The newest entry of `kind` whose outcome is `ok`; `None` when there is none or no ledger
    /// (which is not created).
    pub(crate) fn newest_ok(&self, kind: LedgerKind) -> Result<Option<Entry>, StoreError> {
        let Some(conn) = table::open_existing(&self.path)? else { return Ok(None) };
        table::newest_with_outcome(&conn, kind.as_str(), Outcome::Ok.as_str())
    }

    /// The artifacts of every `kind` entry whose outcome is `ok`, newest first (none, and no ledger
    /// created, when there is no ledger).
    pub(crate) fn passed_artifacts(&self, kind: LedgerKind) -> Result<Vec<String>, StoreError> {
        let Some(conn) = table::open_existing(&self.path)? else { return Ok(Vec::new()) };
        Ok(table::list(&conn, Some(kind.as_str()), i64::MAX)?
            .into_iter()
            .filter(|e| e.outcome == Outcome::Ok.as_str())
            .filter_map(|e| e.artifact)
            .collect())
    }

    /// The last recorded run of scheduled job `job` (skips included): one index seek on
    /// `gm_ops_ledger_kind_artifact`.
    pub(crate) fn last_run(&self, job: &str) -> Result<Option<Entry>, StoreError> {
        let Some(conn) = table::open_existing(&self.path)? else { return Ok(None) };
        table::newest_for(&conn, LedgerKind::Job.as_str(), job, None)
    }

    /// When scheduled job `job` last started a run (skips do not count): one index seek on
    /// `gm_ops_ledger_kind_artifact`, however long the ledger (the scheduler asks per job per tick).
    pub(crate) fn last_started(&self, job: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let Some(conn) = table::open_existing(&self.path)? else { return Ok(None) };
        let entry = table::newest_for(&conn, LedgerKind::Job.as_str(), job, Some(Outcome::Skipped.as_str()))?;
        Ok(entry.and_then(|e| parse_db_time(&e.started_at)))
    }
}

/// An entry's structured details (`None` when they are not a JSON object).
pub(crate) fn details(entry: &Entry) -> Option<Map> {
    match parse_str(&entry.details_json).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// A long-lived read connection to the ledger for a caller that reads it on every request (the
/// server's `/metrics`): opened once, when the ledger first exists, instead of an open (and a
/// schema check) per read. Other processes' commits are seen at each statement, as ever.
#[derive(Debug)]
pub(crate) struct LedgerReader {
    path: PathBuf,
    conn: std::sync::Mutex<Option<crate::store::Connection>>,
}

impl LedgerReader {
    /// A reader of the ledger beside the NA database `db_path`; nothing is opened yet.
    pub(crate) fn beside(db_path: &Path) -> LedgerReader {
        LedgerReader { path: Ledger::beside(db_path).path().to_path_buf(), conn: std::sync::Mutex::new(None) }
    }

    /// [`Ledger::newest_ok`] on the kept connection (opened now if the ledger has appeared).
    pub(crate) fn newest_ok(&self, kind: LedgerKind) -> Result<Option<Entry>, StoreError> {
        self.with_conn(None, |conn| table::newest_with_outcome(conn, kind.as_str(), Outcome::Ok.as_str()))
    }

    /// The ledger's `PRAGMA data_version` on the kept connection: it changes whenever another
    /// connection (a `gm managed` command, the scheduler) committed to the ledger since the last
    /// call. `None` while there is no ledger.
    pub(crate) fn data_version(&self) -> Result<Option<i64>, StoreError> {
        self.with_conn(None, |conn| table::data_version(conn).map(Some))
    }

    /// The newest `limit` entries of `kind`, newest first, on the kept connection.
    pub(crate) fn recent(&self, kind: LedgerKind, limit: i64) -> Result<Vec<Entry>, StoreError> {
        self.with_conn(Vec::new(), |conn| table::list(conn, Some(kind.as_str()), limit))
    }

    /// Runs `read` on the kept connection, opening it first if the ledger has appeared since;
    /// `absent` while there is no ledger (which is not created).
    fn with_conn<T>(
        &self,
        absent: T,
        read: impl FnOnce(&crate::store::Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = table::open_existing(&self.path)?;
        }
        match guard.as_ref() {
            Some(conn) => read(conn),
            None => Ok(absent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_outcomes_keep_their_column_strings() {
        let kinds: Vec<&str> = LedgerKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            kinds,
            ["backup", "verify", "restore", "drill", "export", "audit-prune", "prune", "incident", "job"]
        );
        for k in LedgerKind::ALL {
            assert_eq!(LedgerKind::parse(k.as_str()), Some(k));
        }
        for o in [Outcome::Ok, Outcome::Failed, Outcome::Skipped, Outcome::Timeout] {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(LedgerKind::parse("restore-drill"), None);
    }

    #[test]
    fn records_and_answers_without_creating_a_missing_ledger() {
        let dir = std::env::temp_dir().join(format!("gm-ops-ledger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ledger = Ledger::beside(&dir.join("na.db"));
        assert_eq!(ledger.newest_ok(LedgerKind::Backup).unwrap(), None);
        assert_eq!(ledger.last_started("nightly").unwrap(), None);
        assert!(!ledger.exists().unwrap());
        let at = parse_db_time("2026-06-01T00:00:00+00:00").unwrap();
        let span = Span { started_at: at, finished_at: at, duration: Duration::from_millis(5) };
        let run = |kind, outcome, artifact: &str| Record {
            kind,
            outcome,
            artifact: Some(artifact.into()),
            sha256: None,
            size: Some(7),
            message: "m".into(),
            details: Value::Null,
        };
        ledger.record(&run(LedgerKind::Backup, Outcome::Ok, "a"), span).unwrap();
        ledger.record(&run(LedgerKind::Backup, Outcome::Failed, "b"), span).unwrap();
        ledger.record(&run(LedgerKind::Job, Outcome::Ok, "nightly"), span).unwrap();
        ledger.record(&run(LedgerKind::Job, Outcome::Skipped, "nightly"), span).unwrap();
        let newest = ledger.newest_ok(LedgerKind::Backup).unwrap().unwrap();
        assert_eq!((newest.artifact.as_deref(), newest.details_json.as_str()), (Some("a"), "null"));
        assert_eq!(newest.started_at, "2026-06-01T00:00:00+00:00");
        assert_eq!(ledger.passed_artifacts(LedgerKind::Backup).unwrap(), ["a"]);
        assert_eq!(ledger.last_run("nightly").unwrap().unwrap().outcome, "skipped");
        assert_eq!(ledger.last_started("nightly").unwrap(), Some(at));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
