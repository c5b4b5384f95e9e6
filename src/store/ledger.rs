//! The ops ledger: a small gm-owned SQLite file beside the NA database (`gm-ops.db`), so the NA
//! database keeps upstream's schema. One row per operation (backup, verify, restore, drill,
//! export, prune) with its time, outcome, duration, artifact and message.

use std::path::Path;

use rusqlite::{params, Connection};

use super::error::StoreError;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS gm_ops_ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    artifact TEXT,
    sha256 TEXT,
    size_bytes INTEGER,
    message TEXT NOT NULL,
    details_json TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS gm_ops_ledger_kind ON gm_ops_ledger(kind, finished_at);
CREATE INDEX IF NOT EXISTS gm_ops_ledger_kind_artifact ON gm_ops_ledger(kind, artifact, id);";

const COLUMNS: &str =
    "id, kind, started_at, finished_at, outcome, duration_ms, artifact, sha256, size_bytes, message, details_json";

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Row id (ignored on insert).
    pub id: i64,
    /// `backup`, `verify`, `restore`, `drill`, `audit-export`, `prune`, …
    pub kind: String,
    /// Start (isoformat).
    pub started_at: String,
    /// End (isoformat).
    pub finished_at: String,
    /// `ok`, `failed`, `skipped` or `timeout`.
    pub outcome: String,
    /// Duration in milliseconds.
    pub duration_ms: i64,
    /// The file produced or checked.
    pub artifact: Option<String>,
    /// Its SHA-256.
    pub sha256: Option<String>,
    /// Its size.
    pub size_bytes: Option<i64>,
    /// One line for people.
    pub message: String,
    /// Structured details (JSON object text).
    pub details_json: String,
}

/// Opens (creating if needed) the ledger at `path`.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    // Owner-only whatever the umask (the ledger names artifacts and their outcomes); should this
    // fail, SQLite's own open below reports the cause.
    let _ = crate::files::private::precreate_private(path);
    let conn = Connection::open(path).map_err(|source| StoreError::Open { path: path.to_path_buf(), source })?;
    conn.busy_timeout(super::BUSY_TIMEOUT).map_err(StoreError::sqlite("setting busy_timeout"))?;
    conn.execute_batch(SCHEMA).map_err(|e| {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
            StoreError::NotSqlite { path: path.to_path_buf() }
        } else {
            StoreError::Sqlite { op: "creating the ops ledger", source: e }
        }
    })?;
    Ok(conn)
}

/// Opens the ledger at `path` when the file is there; `None` (and nothing created) when it is not.
/// When existence cannot be told, the open is attempted and SQLite reports the cause.
pub(crate) fn open_existing(path: &Path) -> Result<Option<Connection>, StoreError> {
    if matches!(path.try_exists(), Ok(false)) {
        return Ok(None);
    }
    open(path).map(Some)
}

/// Appends an entry; returns its id.
pub(crate) fn record(conn: &Connection, e: &Entry) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO gm_ops_ledger (kind, started_at, finished_at, outcome, duration_ms, artifact, sha256, size_bytes, message, details_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![e.kind, e.started_at, e.finished_at, e.outcome, e.duration_ms, e.artifact, e.sha256, e.size_bytes, e.message, e.details_json],
    )
    .map_err(StoreError::sqlite("recording in the ops ledger"))?;
    Ok(conn.last_insert_rowid())
}

/// Entries, newest first, optionally of one kind.
pub(crate) fn list(conn: &Connection, kind: Option<&str>, limit: i64) -> Result<Vec<Entry>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM gm_ops_ledger WHERE (?1 IS NULL OR kind = ?1) ORDER BY id DESC LIMIT ?2"
        ))
        .map_err(StoreError::sqlite("reading the ops ledger"))?;
    let rows = stmt.query_map(params![kind, limit], entry).map_err(StoreError::sqlite("reading the ops ledger"))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("reading the ops ledger"))
}

/// The newest entry of `kind` for `artifact` (a scheduled job's runs are kind `job`, artifact the
/// job name), passing over entries whose outcome is `except`. One seek on
/// `gm_ops_ledger_kind_artifact`, however long the ledger: the scheduler asks this per job per tick.
pub(crate) fn newest_for(
    conn: &Connection,
    kind: &str,
    artifact: &str,
    except: Option<&str>,
) -> Result<Option<Entry>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM gm_ops_ledger WHERE kind = ?1 AND artifact = ?2 AND (?3 IS NULL OR outcome != ?3)
             ORDER BY id DESC LIMIT 1"
        ))
        .map_err(StoreError::sqlite("reading the ops ledger"))?;
    let mut rows =
        stmt.query_map(params![kind, artifact, except], entry).map_err(StoreError::sqlite("reading the ops ledger"))?;
    rows.next().transpose().map_err(StoreError::sqlite("reading the ops ledger"))
}

/// The newest entry of `kind` whose outcome is `outcome` (the newest successful backup, drill or
/// restore).
pub(crate) fn newest_with_outcome(conn: &Connection, kind: &str, outcome: &str) -> Result<Option<Entry>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM gm_ops_ledger WHERE kind = ?1 AND outcome = ?2 ORDER BY id DESC LIMIT 1"
        ))
        .map_err(StoreError::sqlite("reading the ops ledger"))?;
    let mut rows =
        stmt.query_map(params![kind, outcome], entry).map_err(StoreError::sqlite("reading the ops ledger"))?;
    rows.next().transpose().map_err(StoreError::sqlite("reading the ops ledger"))
}

/// `PRAGMA data_version` of `conn`: differs between two calls when another connection committed.
pub(crate) fn data_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached("PRAGMA data_version")
        .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
        .map_err(StoreError::sqlite("reading the ops ledger's data version"))
}

fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        id: r.get(0)?,
        kind: r.get(1)?,
        started_at: r.get(2)?,
        finished_at: r.get(3)?,
        outcome: r.get(4)?,
        duration_ms: r.get(5)?,
        artifact: r.get(6)?,
        sha256: r.get(7)?,
        size_bytes: r.get(8)?,
        message: r.get(9)?,
        details_json: r.get(10)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(artifact: &str, outcome: &str, started_at: &str) -> Entry {
        Entry {
            id: 0,
            kind: "job".into(),
            started_at: started_at.into(),
            finished_at: started_at.into(),
            outcome: outcome.into(),
            duration_ms: 1,
            artifact: Some(artifact.into()),
            sha256: None,
            size_bytes: None,
            message: String::new(),
            details_json: "{}".into(),
        }
    }

    #[test]
    fn newest_for_finds_a_jobs_last_run_by_index_passing_over_skips() {
        let dir = std::env::temp_dir().join(format!("gm-ledger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conn = open(&dir.join("gm-ops.db")).unwrap();
        record(&conn, &job("backup", "ok", "t1")).unwrap();
        conn.execute_batch("BEGIN").unwrap();
        for i in 0..20_000 {
            record(&conn, &job("probe", "ok", &format!("p{i}"))).unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
        record(&conn, &job("backup", "skipped", "t2")).unwrap();
        assert_eq!(newest_for(&conn, "job", "backup", None).unwrap().unwrap().started_at, "t2");
        assert_eq!(newest_for(&conn, "job", "backup", Some("skipped")).unwrap().unwrap().started_at, "t1");
        assert_eq!(newest_for(&conn, "job", "verify", None).unwrap(), None);
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id FROM gm_ops_ledger WHERE kind = 'job' AND artifact = 'backup' ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("gm_ops_ledger_kind_artifact"), "{plan}");
        drop(conn);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
