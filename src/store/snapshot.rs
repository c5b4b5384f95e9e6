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
pub(crate) fn online_backup(
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

/// Reads a consistent copy of the database behind `src` page by page, in ONE read transaction,
/// through SQLite's `sqlite_dbpage` table (what the pager sees, so committed frames still in the
/// WAL are included): `start(page_size, page_count)` once the transaction holds its snapshot, then
/// `page(bytes)` for every page in order. Writers in WAL mode go on meanwhile; a lock another
/// process holds is waited for within the connection's busy timeout, then fails as busy.
///
/// The pages, written one after another, are a standalone database file that means what the
/// online backup API's copy means: page 1's file format bytes (18 and 19) say rollback journal, as
/// `journal_mode = DELETE` leaves them, and the page holding SQLite's lock byte (at 1 GiB) reads as
/// zeros, as the backup API leaves it. Only the header's counters (change counter, schema cookie,
/// version numbers) may differ from that copy.
pub(crate) fn stream_pages<E: From<StoreError>>(
    src: &Connection,
    mut start: impl FnMut(u32, u64) -> Result<(), E>,
    mut page: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let tx = src.unchecked_transaction().map_err(StoreError::sqlite("starting the snapshot"))?;
    // The first read fixes the transaction's snapshot; the page count is read inside it.
    let page_size: u32 = tx
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(StoreError::sqlite("reading the database for the snapshot"))?;
    let pages: i64 = tx
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .map_err(StoreError::sqlite("reading the database for the snapshot"))?;
    let pages = u64::try_from(pages).unwrap_or(0);
    start(page_size, pages)?;
    let mut stmt = tx
        .prepare("SELECT pgno, data FROM sqlite_dbpage ORDER BY pgno")
        .map_err(StoreError::sqlite("reading pages for the snapshot"))?;
    let mut rows = stmt.query([]).map_err(StoreError::sqlite("reading pages for the snapshot"))?;
    let mut expected = 1u64;
    while let Some(row) = rows.next().map_err(StoreError::sqlite("reading pages for the snapshot"))? {
        let pgno: i64 = row.get(0).map_err(StoreError::sqlite("reading pages for the snapshot"))?;
        let pgno = u64::try_from(pgno).unwrap_or(0);
        let data = row.get_ref(1).map_err(StoreError::sqlite("reading pages for the snapshot"))?;
        let bytes = data.as_blob().map_err(|e| StoreError::sqlite("reading pages for the snapshot")(e.into()))?;
        if pgno != expected || bytes.len() != page_size as usize {
            return Err(E::from(corrupt(format!(
                "page {pgno} of {pages} ({} bytes) came where page {expected} was due",
                bytes.len()
            ))));
        }
        if pgno == 1 {
            let mut first = bytes.to_vec();
            // File format write/read version: 1 = rollback journal (2 = WAL).
            if let Some(versions) = first.get_mut(18..20) {
                versions.copy_from_slice(&[1, 1]);
            }
            page(&first)?;
        } else {
            page(bytes)?;
        }
        expected += 1;
    }
    if expected != pages + 1 {
        return Err(E::from(corrupt(format!("{} pages read, the database has {pages}", expected - 1))));
    }
    drop(rows);
    drop(stmt);
    tx.rollback().map_err(StoreError::sqlite("ending the snapshot"))?;
    Ok(())
}

/// A page stream that does not add up (which SQLite never produces): reported as corruption.
fn corrupt(problem: String) -> StoreError {
    let code = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT);
    StoreError::Sqlite {
        op: "reading pages for the snapshot",
        source: rusqlite::Error::SqliteFailure(code, Some(problem)),
    }
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
pub(crate) fn fold_journal(path: &Path, busy_timeout: Duration) -> Result<(), StoreError> {
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

/// [`open_immutable`] with the file memory-mapped (up to SQLite's 2 GiB ceiling), for a whole-file
/// check of a private snapshot: `integrity_check` then reads pages from the page cache in place
/// instead of copying each through a read call into a 2 MiB cache (~20 % faster on 1 GiB). The
/// mapping counts in the peak RSS as file pages, not as memory gm allocates.
pub(crate) fn open_immutable_mapped(path: &Path) -> Result<Connection, StoreError> {
    let conn = open_immutable(path)?;
    conn.execute_batch("PRAGMA mmap_size = 2147418112").map_err(StoreError::sqlite("mapping the snapshot"))?;
    Ok(conn)
}

/// `PRAGMA integrity_check`: `Ok(())` or the first problems reported.
pub(crate) fn integrity_check(conn: &Connection) -> Result<Result<(), String>, StoreError> {
    Ok(reported(problems_in(first_column(conn, "PRAGMA integrity_check", "checking integrity")?)))
}

/// The text of the first column of every row `sql` returns.
fn first_column(conn: &Connection, sql: &str, op: &'static str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(sql).map_err(StoreError::sqlite(op))?;
    let rows = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(StoreError::sqlite(op));
    rows
}

/// The problems in an integrity pragma's rows: none when its one row is "ok".
fn problems_in(rows: Vec<String>) -> Vec<String> {
    if rows.len() == 1 && rows[0] == "ok" {
        Vec::new()
    } else {
        rows
    }
}

/// `Ok(())` when no problem was found, else the first five.
fn reported(problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.into_iter().take(5).collect::<Vec<_>>().join("; "))
    }
}

/// [`integrity_check`] of the file at `path` on up to `threads` connections at once, for a snapshot
/// whose check is what the caller waits for (`gm managed verify`). One `PRAGMA integrity_check` runs
/// on one core, and on an NA database one table (the audit log, with its three indexes) is most of
/// the work; so the check is cut along tables, which SQLite can check one at a time:
/// `PRAGMA quick_check` checks the whole file's structure (every B-tree page, the freelist, every page
/// used exactly once, NOT NULL and CHECK constraints) and `PRAGMA integrity_check(T)` checks table T's
/// B-tree and each of its indexes against it (entries, counts, UNIQUE). Every table gets the second,
/// so together they check what one `integrity_check` does. Biggest tables first (by their largest
/// rowid); the quick check second, beside the biggest. The calling thread's connection maps the
/// file (it takes the biggest table); the helpers read through calls instead, so the peak RSS counts
/// the file's pages once, not once per mapping. With `threads` < 2 this is one plain
/// `integrity_check`. `Ok(())` or the first problems reported.
pub(crate) fn integrity_check_split(path: &Path, threads: usize) -> Result<Result<(), String>, StoreError> {
    let conn = open_immutable_mapped(path)?;
    if threads < 2 {
        return integrity_check(&conn);
    }
    let tables =
        first_column(&conn, "SELECT name FROM sqlite_schema WHERE type = 'table'", "listing the tables to check")?;
    let mut sized: Vec<(i64, String)> = tables
        .into_iter()
        .map(|t| {
            // A WITHOUT ROWID table has no rowid: it is simply scheduled last.
            let rows = conn
                .query_row(&format!("SELECT max(rowid) FROM {}", quote_ident(&t)), [], |r| r.get::<_, Option<i64>>(0))
                .ok()
                .flatten()
                .unwrap_or(0);
            (rows, t)
        })
        .collect();
    sized.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut jobs: Vec<String> =
        sized.iter().map(|(_, t)| format!("PRAGMA integrity_check({})", quote_ident(t))).collect();
    jobs.insert(jobs.len().min(1), "PRAGMA quick_check".to_string());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = |conn: &Connection| -> Result<Vec<String>, StoreError> {
        let mut problems = Vec::new();
        loop {
            let Some(sql) = jobs.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) else {
                return Ok(problems);
            };
            problems.extend(problems_in(first_column(conn, sql, "checking integrity")?));
        }
    };
    let helpers = threads.min(jobs.len()) - 1;
    let results: Vec<Result<Vec<String>, StoreError>> = std::thread::scope(|scope| {
        // A helper that cannot start leaves its share to the others.
        let handles: Vec<_> = (0..helpers)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("integrity-check".into())
                    .spawn_scoped(scope, || work(&open_immutable(path)?))
                    .ok()
            })
            .collect();
        let mut results = vec![work(&conn)];
        for h in handles {
            results.push(h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        results
    });
    let mut problems = Vec::new();
    for r in results {
        problems.extend(r?);
    }
    Ok(reported(problems))
}

/// `name` as an SQL identifier in double quotes.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Rows per NA table (tables that do not exist are left out).
pub(crate) fn row_counts(conn: &Connection) -> Result<Vec<(&'static str, i64)>, StoreError> {
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
pub(crate) fn treaty_counts(conn: &Connection, now_iso: &str) -> Result<(i64, i64, i64), StoreError> {
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
pub(crate) fn signed_material(conn: &Connection) -> Result<(Vec<String>, Vec<String>), StoreError> {
    let collect = |sql: &str| -> Result<Vec<String>, StoreError> {
        let mut stmt = conn.prepare(sql).map_err(StoreError::sqlite("reading signed material"))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(StoreError::sqlite("reading signed material"))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("reading signed material"))
    };
    Ok((collect("SELECT crl_json FROM crl_versions")?, collect("SELECT policy_json FROM policy_versions")?))
}

/// Nonces created at or after `since` (isoformat), to carry over a restore (D23).
pub(crate) fn recent_nonces(conn: &Connection, since: &str) -> Result<Vec<(String, String, String)>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT scope, nonce, created_at FROM nonces WHERE created_at >= ?1")
        .map_err(StoreError::sqlite("reading nonces"))?;
    let rows = stmt
        .query_map([since], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(StoreError::sqlite("reading nonces"))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("reading nonces"))
}

/// One table whose revocations a restore carries over: its name, primary-key column, and the
/// columns of a whole row (the key first).
struct RevocableTable {
    table: &'static str,
    key: &'static str,
    columns: &'static str,
    /// Positions of `revoked_at` and `revocation_reason` in `columns`.
    revoked_at: usize,
    reason: usize,
}

const CERTIFICATES: RevocableTable = RevocableTable {
    table: "issued_certs",
    key: "cert_id",
    columns: "cert_id, node_public_key, cert_json, roles_json, issued_at, expires_at, remote_addr, status, \
              last_heartbeat, heartbeat_status, renewed_from, revoked_at, revocation_reason, max_validity_hours",
    revoked_at: 11,
    reason: 12,
};

const TREATIES: RevocableTable = RevocableTable {
    table: "recognition_treaties",
    key: "treaty_id",
    columns: "treaty_id, issuer_sovereign_id, subject_sovereign_id, status, treaty_json, issued_at, valid_from, \
              expires_at, revoked_at, revocation_reason",
    revoked_at: 8,
    reason: 9,
};

const ATTESTATIONS: RevocableTable = RevocableTable {
    table: "membership_attestations",
    key: "attestation_id",
    columns: "attestation_id, issuer_sovereign_id, subject_id, subject_public_key, roles_json, status, \
              attestation_json, issued_at, valid_from, expires_at, revoked_at, revocation_reason",
    revoked_at: 10,
    reason: 11,
};

/// Imported revocations of other sovereigns' attestations: an append-only set (key: issuer and
/// attestation), carried as a union.
const IMPORTED_COLUMNS: &str = "issuer_sovereign_id, attestation_id, feed_id, sequence, reason, imported_at";

/// A whole row read from the replaced database.
#[derive(Debug, Clone)]
pub(crate) struct Row(Vec<rusqlite::types::Value>);

impl Row {
    /// The first column (the primary key of a revocable table) as text.
    fn key(&self) -> String {
        match self.0.first() {
            Some(rusqlite::types::Value::Text(t)) => t.clone(),
            _ => String::new(),
        }
    }
}

/// Every revocation the replaced database holds, so that restoring an older backup cannot
/// un-revoke anything: revoked certificates, treaties and attestations (whole rows, for those
/// issued after the backup) and imported revocations of other sovereigns.
#[derive(Debug, Clone, Default)]
pub(crate) struct Revocations {
    certificates: Vec<Row>,
    treaties: Vec<Row>,
    attestations: Vec<Row>,
    imported: Vec<Row>,
}

impl Revocations {
    /// True when the replaced database held no revocation of any kind.
    pub(crate) fn is_empty(&self) -> bool {
        self.certificates.is_empty()
            && self.treaties.is_empty()
            && self.attestations.is_empty()
            && self.imported.is_empty()
    }
}

/// What a restore carried over: the ids whose status changed (or rows that were added).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CarriedRevocations {
    /// Certificates revoked again; `gm serve` republishes them in the CRL.
    pub certificates: Vec<String>,
    /// Recognition treaties revoked again.
    pub treaties: Vec<String>,
    /// Membership attestations revoked again.
    pub attestations: Vec<String>,
    /// Imported revocations (from other sovereigns' feeds) added back.
    pub imported: usize,
}

impl CarriedRevocations {
    /// How many revocations were carried over in all.
    pub(crate) fn total(&self) -> usize {
        self.certificates.len() + self.treaties.len() + self.attestations.len() + self.imported
    }
}

/// Reads every revocation of `conn` (tables it lacks are skipped).
pub(crate) fn revocations(conn: &Connection) -> Result<Revocations, StoreError> {
    let rows = |table: &str, columns: &str, filter: &str| -> Result<Vec<Row>, StoreError> {
        if !super::schema::table_exists(conn, table)? {
            return Ok(Vec::new());
        }
        let n = columns.split(',').count();
        let mut stmt = conn
            .prepare(&format!("SELECT {columns} FROM {table} {filter}"))
            .map_err(StoreError::sqlite("reading revocations"))?;
        let rows = stmt
            .query_map([], |r| (0..n).map(|i| r.get::<_, rusqlite::types::Value>(i)).collect::<Result<Vec<_>, _>>())
            .map_err(StoreError::sqlite("reading revocations"))?;
        rows.map(|r| r.map(Row)).collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("reading revocations"))
    };
    let revoked = |t: &RevocableTable| rows(t.table, t.columns, "WHERE status = 'revoked'");
    Ok(Revocations {
        certificates: revoked(&CERTIFICATES)?,
        treaties: revoked(&TREATIES)?,
        attestations: revoked(&ATTESTATIONS)?,
        imported: rows("imported_sovereign_revocations", IMPORTED_COLUMNS, "")?,
    })
}

/// Applies carried-over revocations to a database file: a row the file holds unrevoked is marked
/// revoked with the carried time and reason; one it does not hold (issued after the backup) is
/// inserted whole; a revoked node's agent registration is removed (as a revocation does); imported
/// revocations are added where missing.
pub(crate) fn carry_revocations(conn: &Connection, r: &Revocations) -> Result<CarriedRevocations, StoreError> {
    let certificates = carry_table(conn, &CERTIFICATES, &r.certificates)?;
    for row in r.certificates.iter().filter(|row| certificates.contains(&row.key())) {
        if let Some(rusqlite::types::Value::Text(node_key)) = row.0.get(1) {
            super::agents::delete(conn, node_key)?;
        }
    }
    let mut imported = 0;
    for row in &r.imported {
        imported += conn
            .execute(
                &format!("INSERT OR IGNORE INTO imported_sovereign_revocations ({IMPORTED_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                rusqlite::params_from_iter(row.0.iter()),
            )
            .map_err(StoreError::sqlite("carrying an imported revocation over"))?;
    }
    Ok(CarriedRevocations {
        certificates,
        treaties: carry_table(conn, &TREATIES, &r.treaties)?,
        attestations: carry_table(conn, &ATTESTATIONS, &r.attestations)?,
        imported,
    })
}

/// Carries the revoked `rows` of one table; returns the keys whose status changed or were added.
fn carry_table(conn: &Connection, t: &RevocableTable, rows: &[Row]) -> Result<Vec<String>, StoreError> {
    let placeholders = (1..=t.columns.split(',').count()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
    let mut changed = Vec::new();
    for row in rows {
        let key = row.0.first();
        let updated = conn
            .execute(
                &format!(
                    "UPDATE {} SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3 \
                     WHERE {} = ?1 AND status != 'revoked'",
                    t.table, t.key
                ),
                rusqlite::params![key, row.0.get(t.revoked_at), row.0.get(t.reason)],
            )
            .map_err(StoreError::sqlite("carrying a revocation over"))?;
        let inserted = conn
            .execute(
                &format!("INSERT OR IGNORE INTO {} ({}) VALUES ({placeholders})", t.table, t.columns),
                rusqlite::params_from_iter(row.0.iter()),
            )
            .map_err(StoreError::sqlite("carrying a revoked row over"))?;
        if updated + inserted > 0 {
            changed.push(row.key());
        }
    }
    Ok(changed)
}

/// Adds the carried-over nonces and revocations to the restore's private copy at `tmp`, in one
/// transaction: the file gets all carried rows or none (restore, D23). The caller fsyncs the file.
pub(crate) fn carry_over(
    tmp: &Path,
    nonces: &[(String, String, String)],
    revoked: &Revocations,
) -> Result<CarriedRevocations, StoreError> {
    let mut conn = super::direct::open_scratch(tmp)?;
    let tx = conn.transaction().map_err(StoreError::sqlite("starting the carry-over"))?;
    insert_nonces(&tx, nonces)?;
    let carried = carry_revocations(&tx, revoked)?;
    tx.commit().map_err(StoreError::sqlite("committing the carry-over"))?;
    Ok(carried)
}

/// Inserts carried-over nonces into a database file (restore, D23).
pub(crate) fn insert_nonces(conn: &Connection, rows: &[(String, String, String)]) -> Result<(), StoreError> {
    for (scope, nonce, at) in rows {
        conn.execute("INSERT OR IGNORE INTO nonces (scope, nonce, created_at) VALUES (?1, ?2, ?3)", [scope, nonce, at])
            .map_err(StoreError::sqlite("carrying nonces over"))?;
    }
    Ok(())
}

/// What [`scrub_secrets`] replaced in a snapshot copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Scrubbed {
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
pub(crate) fn secret_fingerprint(secret: &str) -> String {
    format!("fingerprint:{}", crate::crypto::digest::token_fingerprint(secret))
}

/// Removes every live secret from the snapshot copy at `path` (never the live database): invite
/// tokens (`invite_tokens.token_id`, redeemable at `/join`) and nonces (`nonces.nonce`) become
/// [`secret_fingerprint`]s, and each `audit_events.event_json` is replaced by `redact_event` of it
/// (the audit export's rule). Runs with `secure_delete` and ends with `VACUUM`, so no old value
/// survives in a free page or a journal.
pub(crate) fn scrub_secrets(path: &Path, redact_event: impl Fn(&str) -> String) -> Result<Scrubbed, StoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{OpenMode, Store};

    fn store() -> Store {
        Store::open(Path::new(":memory:"), OpenMode::Serve, "2026-01-01T00:00:00+00:00").unwrap()
    }

    fn exec(store: &Store, sql: &'static str) {
        store.write(move |c| c.execute_batch(sql).map_err(StoreError::sqlite("test"))).unwrap();
    }

    const TREATY: &str =
        "INSERT INTO recognition_treaties VALUES ('t-old', 'a', 'b', 'active', '{}', 'i', 'v', 'e', NULL, NULL);";
    const ATTESTATION: &str = "INSERT INTO membership_attestations VALUES ('a-old', 'a', 's', NULL, '[]', 'active', '{}', 'i', 'v', 'e', NULL, NULL);";

    #[test]
    fn the_column_positions_name_revoked_at_and_the_reason() {
        for t in [&CERTIFICATES, &TREATIES, &ATTESTATIONS] {
            let columns: Vec<&str> = t.columns.split(',').map(str::trim).collect();
            assert_eq!(columns.first(), Some(&t.key), "{}", t.table);
            assert_eq!(columns.get(t.revoked_at), Some(&"revoked_at"), "{}", t.table);
            assert_eq!(columns.get(t.reason), Some(&"revocation_reason"), "{}", t.table);
        }
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gm-snapshot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A WAL database of a few hundred pages whose last commits are still only in the WAL (the
    /// returned connection keeps them there: no checkpoint runs while it is open).
    fn wal_database(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
             CREATE INDEX t_body ON t(body);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO t (body) SELECT printf('row %06d %0200d', i, i) FROM n;
             PRAGMA wal_checkpoint(TRUNCATE);
             DELETE FROM t WHERE id % 7 = 0;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
             INSERT INTO t (body) SELECT printf('late %06d %0300d', i, i) FROM n;",
        )
        .unwrap();
        let wal = std::fs::metadata(path.with_extension("db-wal")).map(|m| m.len()).unwrap_or(0);
        assert!(wal > 100_000, "the last commits must still be in the WAL ({wal} bytes)");
        conn
    }

    /// Streams `path`'s pages into one buffer, calling `during(page_number)` after each page.
    fn streamed(path: &Path, mut during: impl FnMut(u64)) -> Vec<u8> {
        let src = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let mut out = Vec::new();
        let mut expected = 0;
        let mut n = 0;
        stream_pages::<StoreError>(
            &src,
            |size, pages| {
                expected = u64::from(size) * pages;
                Ok(())
            },
            |page| {
                out.extend_from_slice(page);
                n += 1;
                during(n);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(out.len() as u64, expected);
        out
    }

    /// A database with two tables (one named with a quote and a space), their indexes and free
    /// pages, in rollback-journal mode so the file alone is the database.
    fn checked_database(path: &Path) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT);
             CREATE INDEX t_a ON t(a);
             CREATE TABLE \"we\"\"ird name\" (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO t (a, b) SELECT printf('a%06d %0100d', i, i), printf('b%06d', 3000 - i) FROM n;
             INSERT INTO \"we\"\"ird name\" SELECT a, b FROM t;
             DELETE FROM t WHERE id > 2000;",
        )
        .unwrap();
        let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0)).unwrap();
        assert!(free > 10, "the test needs free pages ({free})");
    }

    fn split_and_whole(path: &Path) -> [Result<(), String>; 3] {
        let whole = integrity_check(&open_immutable_mapped(path).unwrap()).unwrap();
        [whole, integrity_check_split(path, 2).unwrap(), integrity_check_split(path, 8).unwrap()]
    }

    // The split check passes a sound file, and reports what one integrity_check reports: an index
    // that does not match its table (found by the per-table checks) and free pages that no list
    // holds (found only by the whole-file quick_check, which the per-table checks cannot see).
    #[test]
    fn the_split_integrity_check_finds_what_one_integrity_check_finds() {
        let dir = temp_dir("split-check");
        let sound = dir.join("sound.db");
        checked_database(&sound);
        assert_eq!(split_and_whole(&sound), [Ok(()), Ok(()), Ok(())]);
        assert_eq!(integrity_check_split(&sound, 1).unwrap(), Ok(()));

        // The index's definition now names another column: its entries no longer match the rows.
        let index = dir.join("index.db");
        checked_database(&index);
        let conn = Connection::open(&index).unwrap();
        conn.execute_batch(
            "PRAGMA writable_schema = ON;
             UPDATE sqlite_schema SET sql = 'CREATE INDEX t_a ON t(b)' WHERE name = 't_a';
             PRAGMA writable_schema = OFF;",
        )
        .unwrap();
        drop(conn);
        for found in split_and_whole(&index) {
            let problem = found.expect_err("an index that does not match its table");
            assert!(problem.contains("t_a"), "{problem}");
        }

        // The header's freelist (trunk page and count, bytes 32..40) says there are no free pages.
        let freelist = dir.join("freelist.db");
        checked_database(&freelist);
        let mut bytes = std::fs::read(&freelist).unwrap();
        bytes[32..40].fill(0);
        std::fs::write(&freelist, &bytes).unwrap();
        let per_table = open_immutable(&freelist).unwrap();
        for table in ["t", "\"we\"\"ird name\""] {
            let alone: String =
                per_table.query_row(&format!("PRAGMA integrity_check({table})"), [], |r| r.get(0)).unwrap();
            assert_eq!(alone, "ok", "a per-table check cannot see unlisted free pages");
        }
        for found in split_and_whole(&freelist) {
            let problem = found.expect_err("pages no B-tree and no freelist holds");
            assert!(problem.contains("never used"), "{problem}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn check_and_count(path: &Path) -> i64 {
        let conn = open_immutable_mapped(path).unwrap();
        assert_eq!(integrity_check(&conn).unwrap(), Ok(()));
        conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap()
    }

    /// The header fields a copy may change without changing the database's meaning: the file
    /// change counter, the schema cookie, version-valid-for and the writing library's version.
    const HEADER_COUNTERS: [std::ops::Range<usize>; 3] = [24..28, 40..44, 92..100];

    // The page stream is what the online backup API copies, committed WAL frames included: every
    // page byte for byte, page 1 but for its counters, and a standalone rollback-journal file.
    #[test]
    fn the_page_stream_of_a_wal_database_is_the_online_backup_copy() {
        let dir = temp_dir("stream");
        let db = dir.join("src.db");
        let writer = wal_database(&db);
        let reference = dir.join("backup-api.db");
        online_backup(&writer, &reference, Duration::from_secs(5), |_, _| {}).unwrap();
        let api = std::fs::read(&reference).unwrap();
        let pages = streamed(&db, |_| {});
        assert_eq!(pages.len(), api.len());
        assert_eq!((pages[18], pages[19]), (1, 1), "rollback journal, like journal_mode = DELETE");
        let differing: Vec<usize> = (0..api.len()).filter(|&i| pages[i] != api[i]).collect();
        assert!(
            differing.iter().all(|i| HEADER_COUNTERS.iter().any(|r| r.contains(i))),
            "bytes differing outside the header counters: {:?}",
            differing.iter().take(10).collect::<Vec<_>>()
        );
        let copy = dir.join("streamed.db");
        std::fs::write(&copy, &pages).unwrap();
        let rows: i64 = writer.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(check_and_count(&copy), rows);
        assert_eq!(check_and_count(&reference), rows);
        drop(writer);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // Commits made while the pages are read (here from inside the stream, so they surely fall in
    // the middle of it) are not in the copy: it is the database as of the stream's one snapshot.
    #[test]
    fn writes_during_the_page_stream_stay_out_of_the_copy() {
        let dir = temp_dir("stream-writer");
        let db = dir.join("src.db");
        let writer = wal_database(&db);
        let before = dir.join("before.db");
        online_backup(&writer, &before, Duration::from_secs(5), |_, _| {}).unwrap();
        let rows: i64 = writer.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        let pages = streamed(&db, |page| {
            if page % 20 == 0 {
                writer
                    .execute_batch(
                        "INSERT INTO t (body) SELECT printf('during %0500d', id) FROM t LIMIT 50;
                         DELETE FROM t WHERE id IN (SELECT id FROM t ORDER BY id LIMIT 10);",
                    )
                    .unwrap();
            }
        });
        let now: i64 = writer.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert!(now > rows, "the writer committed during the stream");
        let api = std::fs::read(&before).unwrap();
        assert_eq!(pages.len(), api.len());
        assert!((0..api.len()).all(|i| pages[i] == api[i] || HEADER_COUNTERS.iter().any(|r| r.contains(&i))));
        let copy = dir.join("streamed.db");
        std::fs::write(&copy, &pages).unwrap();
        assert_eq!(check_and_count(&copy), rows);
        drop(writer);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // An older backup holds the treaty and attestation still active and knows nothing of what was
    // issued and revoked after it: every revocation of the replaced database comes back.
    #[test]
    fn treaty_attestation_and_imported_revocations_survive_restoring_an_older_backup() {
        let replaced = store();
        exec(&replaced, TREATY);
        exec(&replaced, ATTESTATION);
        exec(
            &replaced,
            "UPDATE recognition_treaties SET status = 'revoked', revoked_at = 'r1', revocation_reason = 'bad' WHERE treaty_id = 't-old';
             UPDATE membership_attestations SET status = 'revoked', revoked_at = 'r2', revocation_reason = 'left' WHERE attestation_id = 'a-old';
             INSERT INTO recognition_treaties VALUES ('t-new', 'a', 'c', 'revoked', '{}', 'i', 'v', 'e', 'r3', 'oops');
             INSERT INTO membership_attestations VALUES ('a-new', 'a', 's', NULL, '[]', 'revoked', '{}', 'i', 'v', 'e', 'r4', 'x');
             INSERT INTO imported_sovereign_revocations VALUES ('peer', 'p-1', 'f-1', 3, 'key_compromise', 'at');",
        );
        let revoked = replaced.read(revocations).unwrap();
        let restored = store();
        exec(&restored, TREATY);
        exec(&restored, ATTESTATION);
        let carried = restored.write(move |c| carry_revocations(c, &revoked)).unwrap();
        assert_eq!(carried.treaties, vec!["t-old".to_string(), "t-new".to_string()]);
        assert_eq!(carried.attestations, vec!["a-old".to_string(), "a-new".to_string()]);
        assert_eq!((carried.imported, carried.total()), (1, 5));
        let rows: Vec<(String, String, String)> = restored
            .read(|c| {
                let mut stmt = c
                    .prepare(
                        "SELECT treaty_id, status, revocation_reason FROM recognition_treaties
                         UNION ALL SELECT attestation_id, status, revocation_reason FROM membership_attestations
                         UNION ALL SELECT attestation_id, 'imported', reason FROM imported_sovereign_revocations ORDER BY 1",
                    )
                    .map_err(StoreError::sqlite("test"))?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(StoreError::sqlite("test"))?;
                rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("test"))
            })
            .unwrap();
        let row = |id: &str, status: &str, reason: &str| (id.to_string(), status.to_string(), reason.to_string());
        assert_eq!(
            rows,
            vec![
                row("a-new", "revoked", "x"),
                row("a-old", "revoked", "left"),
                row("p-1", "imported", "key_compromise"),
                row("t-new", "revoked", "oops"),
                row("t-old", "revoked", "bad"),
            ]
        );
        // Carrying again changes nothing.
        let again = replaced.read(revocations).unwrap();
        assert_eq!(restored.write(move |c| carry_revocations(c, &again)).unwrap(), CarriedRevocations::default());
    }
}
