//! Consistent snapshots of a live database through SQLite's online backup API (never a file copy:
//! a copy misses what only the WAL holds, `operations.md` §2.2), and read-only inspection of a
//! snapshot that never creates or modifies a file.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{backup::Backup, params, Connection, OpenFlags};

use super::error::StoreError;
use super::schema;

/// Copies the whole database behind `src` into a new file at `dest` while other connections keep
/// writing; `progress(done_pages, total_pages)` is called between steps. A step that finds the
/// source locked by another process (`SQLITE_BUSY`, e.g. a connection in `locking_mode =
/// EXCLUSIVE`; in WAL mode ordinary writers never block it) is retried until `busy_timeout` has
/// passed since the copy began, then the copy fails with [`StoreError::Busy`].
pub fn online_backup(
    src: &Connection,
    dest: &Path,
    busy_timeout: Duration,
    mut progress: impl FnMut(i32, i32),
) -> Result<(), StoreError> {
    let started = Instant::now();
    // Owner-only whatever the umask: the copy holds every row, unredeemed invite tokens included.
    // Should this fail, SQLite's own open below reports the cause.
    let _ = crate::files::private::precreate_private(dest);
    let mut dst = Connection::open(dest).map_err(|source| StoreError::Open { path: dest.to_path_buf(), source })?;
    // The copy is a new file nothing reads until it is complete; callers that keep it (plain and
    // pre-restore copies) fsync it themselves, so SQLite's own per-commit fsyncs are skipped.
    dst.pragma_update(None, "synchronous", "OFF").map_err(StoreError::sqlite("configuring the backup copy"))?;
    let backup = Backup::new(src, &mut dst).map_err(StoreError::sqlite("starting the online backup"))?;
    loop {
        match backup.step(1024).map_err(|e| StoreError::Sqlite { op: "copying pages", source: without_message(e) })? {
            rusqlite::backup::StepResult::Done => {
                let p = backup.progress();
                progress(p.pagecount, p.pagecount);
                break;
            }
            rusqlite::backup::StepResult::More => {
                let p = backup.progress();
                progress(p.pagecount - p.remaining, p.pagecount);
            }
            // Busy, Locked (and any future non-error result): wait, within the timeout.
            _ => {
                if started.elapsed() >= busy_timeout {
                    return Err(StoreError::Busy { op: "copying pages", waited: busy_timeout });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    drop(backup);
    // The copy is a standalone file: rollback journal, no WAL side files left behind.
    dst.execute_batch("PRAGMA journal_mode = DELETE").map_err(StoreError::sqlite("finishing the snapshot"))?;
    Ok(())
}

/// A failed step reports the destination connection's message, which is "not an error" (the error
/// belongs to the backup object); the result code alone says what happened ("database or disk is
/// full", "disk I/O error").
fn without_message(e: rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, _) => rusqlite::Error::SqliteFailure(code, None),
        other => other,
    }
}

/// Folds a database's WAL into its main file (`PRAGMA wal_checkpoint(TRUNCATE)`) and rolls back a
/// hot rollback journal, so the main file alone holds every committed transaction. Restore runs
/// this before it moves the old `-wal` aside and renames the new file in: a restore killed between
/// those two steps then leaves the old database whole, not its main file without its last commits.
/// Waits at most `busy_timeout` for other connections.
pub fn fold_journal(path: &Path, busy_timeout: Duration) -> Result<(), StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|source| StoreError::Open { path: path.to_path_buf(), source })?;
    conn.busy_timeout(busy_timeout).map_err(StoreError::sqlite("setting busy_timeout"))?;
    // Reading recovers a hot journal or WAL first.
    conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
        .map_err(StoreError::sqlite("opening the database to fold its journal"))?;
    let blocked: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .map_err(StoreError::sqlite("folding the WAL into the database"))?;
    if blocked != 0 {
        return Err(StoreError::Busy { op: "folding the WAL into the database", waited: busy_timeout });
    }
    Ok(())
}

/// Opens `path` read-only and immutable: nothing is created (no `-wal`/`-shm`) and nothing written.
pub fn open_immutable(path: &Path) -> Result<Connection, StoreError> {
    let uri = format!("file:{}?immutable=1", path.display());
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&uri, flags)
        .map_err(|source| StoreError::Open { path: path.to_path_buf(), source })?;
    conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)).map_err(|e| {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
            StoreError::NotSqlite { path: path.to_path_buf() }
        } else {
            StoreError::Open { path: path.to_path_buf(), source: e }
        }
    })?;
    Ok(conn)
}

/// `PRAGMA integrity_check`: `Ok(())` or the first problems reported.
pub fn integrity_check(conn: &Connection) -> Result<Result<(), String>, StoreError> {
    let mut stmt = conn.prepare("PRAGMA integrity_check").map_err(StoreError::sqlite("checking integrity"))?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .map_err(StoreError::sqlite("checking integrity"))?
        .collect::<Result<_, _>>()
        .map_err(StoreError::sqlite("checking integrity"))?;
    Ok(if rows.len() == 1 && rows[0] == "ok" {
        Ok(())
    } else {
        Err(rows.into_iter().take(5).collect::<Vec<_>>().join("; "))
    })
}

/// Rows per NA table (tables that do not exist are left out).
pub fn row_counts(conn: &Connection) -> Result<Vec<(&'static str, i64)>, StoreError> {
    let mut out = Vec::new();
    for table in schema::TABLES {
        if schema::table_exists(conn, table)? {
            let n = conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .map_err(StoreError::sqlite("counting rows"))?;
            out.push((table, n));
        }
    }
    Ok(out)
}

/// Treaty edge counts for a manifest: `(recognition, stored active and unexpired at now_iso, revoked)`.
pub fn treaty_counts(conn: &Connection, now_iso: &str) -> Result<(i64, i64, i64), StoreError> {
    if !schema::table_exists(conn, "recognition_treaties")? {
        return Ok((0, 0, 0));
    }
    conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(status = 'active' AND expires_at > ?1), 0), COALESCE(SUM(status = 'revoked'), 0)
         FROM recognition_treaties",
        [now_iso],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .map_err(StoreError::sqlite("counting treaties"))
}

/// Every stored CRL and policy JSON (for signature checks of a snapshot).
pub fn signed_material(conn: &Connection) -> Result<(Vec<String>, Vec<String>), StoreError> {
    let collect = |sql: &str| -> Result<Vec<String>, StoreError> {
        let mut stmt = conn.prepare(sql).map_err(StoreError::sqlite("reading signed material"))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(StoreError::sqlite("reading signed material"))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("reading signed material"))
    };
    Ok((collect("SELECT crl_json FROM crl_versions")?, collect("SELECT policy_json FROM policy_versions")?))
}

/// Nonces created at or after `since` (isoformat), to carry over a restore (D23).
pub fn recent_nonces(conn: &Connection, since: &str) -> Result<Vec<(String, String, String)>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT scope, nonce, created_at FROM nonces WHERE created_at >= ?1")
        .map_err(StoreError::sqlite("reading nonces"))?;
    let rows = stmt
        .query_map([since], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(StoreError::sqlite("reading nonces"))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("reading nonces"))
}

/// The columns of an `issued_certs` row carried over a restore, in this order.
const REVOKED_COLUMNS: &str = "cert_id, node_public_key, cert_json, roles_json, issued_at, expires_at, remote_addr, \
     status, last_heartbeat, heartbeat_status, renewed_from, revoked_at, revocation_reason, max_validity_hours";

/// A revoked certificate's whole `issued_certs` row, to carry over a restore.
#[derive(Debug, Clone)]
pub struct RevokedRow(Vec<rusqlite::types::Value>);

impl RevokedRow {
    /// The certificate id.
    pub fn cert_id(&self) -> String {
        match self.0.first() {
            Some(rusqlite::types::Value::Text(t)) => t.clone(),
            _ => String::new(),
        }
    }
}

/// Every revoked certificate (whole rows), so a restore to an older backup cannot un-revoke one.
pub fn revoked_rows(conn: &Connection) -> Result<Vec<RevokedRow>, StoreError> {
    let mut stmt = conn
        .prepare(&format!("SELECT {REVOKED_COLUMNS} FROM issued_certs WHERE status = 'revoked'"))
        .map_err(StoreError::sqlite("reading revoked certificates"))?;
    let rows = stmt
        .query_map([], |r| (0..14).map(|i| r.get::<_, rusqlite::types::Value>(i)).collect::<Result<Vec<_>, _>>())
        .map_err(StoreError::sqlite("reading revoked certificates"))?;
    rows.map(|r| r.map(RevokedRow))
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite("reading revoked certificates"))
}

/// Applies carried-over revocations to a database file: a certificate the file holds unrevoked is
/// marked revoked with the carried time and reason; one it does not hold (issued after the
/// backup) is inserted whole, and the node's agent registration is removed (as a revocation does).
/// Returns the ids of the certificates whose status changed.
pub fn carry_revocations(conn: &Connection, rows: &[RevokedRow]) -> Result<Vec<String>, StoreError> {
    let mut changed = Vec::new();
    for row in rows {
        let v = &row.0;
        let (Some(id), Some(at), Some(reason)) = (v.first(), v.get(11), v.get(12)) else { continue };
        let updated = conn
            .execute(
                "UPDATE issued_certs SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3 \
                 WHERE cert_id = ?1 AND status != 'revoked'",
                rusqlite::params![id, at, reason],
            )
            .map_err(StoreError::sqlite("carrying a revocation over"))?;
        let inserted = conn
            .execute(
                &format!(
                    "INSERT OR IGNORE INTO issued_certs ({REVOKED_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
                ),
                rusqlite::params_from_iter(v.iter()),
            )
            .map_err(StoreError::sqlite("carrying a revoked certificate over"))?;
        if updated + inserted > 0 {
            // As `POST /admin/revoke` does: a revoked node's agent registration goes too.
            if let Some(rusqlite::types::Value::Text(node_key)) = v.get(1) {
                super::agents::delete(conn, node_key)?;
            }
            changed.push(row.cert_id());
        }
    }
    Ok(changed)
}

/// Inserts carried-over nonces into a database file (restore, D23).
pub fn insert_nonces(conn: &Connection, rows: &[(String, String, String)]) -> Result<(), StoreError> {
    for (scope, nonce, at) in rows {
        conn.execute("INSERT OR IGNORE INTO nonces (scope, nonce, created_at) VALUES (?1, ?2, ?3)", [scope, nonce, at])
            .map_err(StoreError::sqlite("carrying nonces over"))?;
    }
    Ok(())
}

/// What [`scrub_secrets`] replaced in a snapshot copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scrubbed {
    /// Invite tokens replaced by their fingerprint.
    pub invite_tokens: usize,
    /// Nonces replaced by their fingerprint.
    pub nonces: usize,
    /// Audit events rewritten through the redaction rule.
    pub audit_events: usize,
}

/// What a scrubbed secret becomes: `fingerprint:` and the first 16 hex characters of its SHA-256,
/// the form upstream's audit events and gm's logs name an invite token by (`na-wire.md` §14.1), so
/// rows can still be matched with log lines but never redeemed or replayed.
pub fn secret_fingerprint(secret: &str) -> String {
    format!("fingerprint:{}", crate::crypto::digest::token_fingerprint(secret))
}

/// Removes every live secret from the snapshot copy at `path` (never the live database): invite
/// tokens (`invite_tokens.token_id`, redeemable at `/join`) and nonces (`nonces.nonce`) become
/// [`secret_fingerprint`]s, and each `audit_events.event_json` is replaced by `redact_event` of it
/// (the audit export's rule). Runs with `secure_delete` and ends with `VACUUM`, so no old value
/// survives in a free page or a journal.
pub fn scrub_secrets(path: &Path, redact_event: impl Fn(&str) -> String) -> Result<Scrubbed, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)
        .map_err(|source| StoreError::Open { path: path.to_path_buf(), source })?;
    conn.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA secure_delete = ON")
        .map_err(StoreError::sqlite("preparing the copy for scrubbing"))?;
    let tx = conn.transaction().map_err(StoreError::sqlite("scrubbing the copy"))?;
    let mut done = Scrubbed::default();
    for (rowid, token) in text_rows(&tx, "SELECT rowid, token_id FROM invite_tokens")? {
        tx.execute(
            "UPDATE invite_tokens SET token_id = ?1 WHERE rowid = ?2",
            params![secret_fingerprint(&token), rowid],
        )
        .map_err(StoreError::sqlite("scrubbing an invite token"))?;
        done.invite_tokens += 1;
    }
    for (rowid, nonce) in text_rows(&tx, "SELECT rowid, nonce FROM nonces")? {
        tx.execute("UPDATE nonces SET nonce = ?1 WHERE rowid = ?2", params![secret_fingerprint(&nonce), rowid])
            .map_err(StoreError::sqlite("scrubbing a nonce"))?;
        done.nonces += 1;
    }
    for (rowid, event) in text_rows(&tx, "SELECT rowid, event_json FROM audit_events")? {
        tx.execute("UPDATE audit_events SET event_json = ?1 WHERE rowid = ?2", params![redact_event(&event), rowid])
            .map_err(StoreError::sqlite("redacting an audit event"))?;
        done.audit_events += 1;
    }
    tx.commit().map_err(StoreError::sqlite("scrubbing the copy"))?;
    conn.execute_batch("VACUUM").map_err(StoreError::sqlite("compacting the scrubbed copy"))?;
    Ok(done)
}

/// `(rowid, text)` pairs of a two-column query (a NULL or non-text value reads as empty).
fn text_rows(conn: &Connection, sql: &str) -> Result<Vec<(i64, String)>, StoreError> {
    let mut stmt = conn.prepare(sql).map_err(StoreError::sqlite("reading rows to scrub"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?.unwrap_or_default())))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(StoreError::sqlite("reading rows to scrub"));
    rows
}
