//! The NA database: upstream's 0.16 SQLite layout, opened with upstream's connection settings
//! (`foreign_keys = ON`, `busy_timeout = 30000`, `journal_mode = WAL`, `na-wire.md` §13.1).
//!
//! Every SQL string in gm lives in this module: [`schema`] owns the DDL and version gate, and one file
//! per table family owns its queries. Callers get a pooled connection through [`Store::read`] and
//! [`Store::write`]; no lock is held across a query except the connection itself.

pub mod agents;
pub mod attestations;
pub mod audit;
pub mod certs;
pub mod crl;
pub(crate) mod direct;
pub mod error;
pub mod feeds;
pub mod invites;
pub mod ledger;
pub mod nonces;
pub mod policy;
pub mod recognition;
pub mod schema;
pub mod snapshot;
pub mod treaties;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::{OpenFlags, TransactionBehavior};

pub use error::StoreError;
/// The connection type store functions take. Callers name it in signatures (a route's writer job,
/// a check over a snapshot); only `store` opens one, and only `store` holds SQL.
pub(crate) use rusqlite::Connection;

/// Upstream's busy timeout.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_millis(30_000);

/// How a database is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// `gm serve`: create the file if missing, apply missing migrations, create gm indexes.
    Serve,
    /// Read-only inspection: the file must exist; nothing is written, nothing created.
    ReadOnly,
}

/// A pool of connections to one database file.
pub struct Store {
    path: PathBuf,
    mode: OpenMode,
    max_connections: usize,
    busy_timeout: Duration,
    idle: Mutex<PoolState>,
    freed: Condvar,
    writer: Option<writer::Writer>,
    /// Bumped by the writer after a batch that changed a published document (CRL, policy).
    published: Arc<AtomicU64>,
}

struct PoolState {
    idle: Vec<Connection>,
    open: usize,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).field("mode", &self.mode).finish()
    }
}

impl Store {
    /// Opens `path`. In [`OpenMode::Serve`] the schema is brought to version 6 (a fresh file gets all
    /// six migrations) and a newer schema is refused; in [`OpenMode::ReadOnly`] the file must exist.
    /// `applied_at` is the isoformat time recorded for migrations.
    pub fn open(path: &Path, mode: OpenMode, applied_at: &str) -> Result<Store, StoreError> {
        Store::open_with_busy_timeout(path, mode, applied_at, BUSY_TIMEOUT)
    }

    /// [`Store::open`] with connections that wait at most `busy_timeout` for another process's lock
    /// (a backup's `--busy-timeout`) instead of upstream's 30 s.
    pub(crate) fn open_with_busy_timeout(
        path: &Path,
        mode: OpenMode,
        applied_at: &str,
        busy_timeout: Duration,
    ) -> Result<Store, StoreError> {
        let memory = path.as_os_str() == ":memory:";
        if mode == OpenMode::ReadOnly && !memory && !path.exists() {
            return Err(StoreError::Missing { path: path.to_path_buf() });
        }
        let mut store = Store {
            path: path.to_path_buf(),
            mode,
            // `:memory:` is one private database per connection, so it gets exactly one.
            // Four readers: reads are short (the heartbeat path reads on the writer), and each
            // connection costs page cache and schema memory, so more would only grow the RSS.
            max_connections: if memory { 1 } else { 4 },
            busy_timeout,
            idle: Mutex::new(PoolState { idle: Vec::new(), open: 0 }),
            freed: Condvar::new(),
            writer: None,
            published: Arc::new(AtomicU64::new(0)),
        };
        if mode == OpenMode::Serve && !memory {
            // Should this fail, SQLite's own open below reports the cause.
            let _ = crate::files::private::precreate_private(path);
        }
        // Gate before anything writes: a foreign or newer database is refused untouched.
        let mut conn = store.connect_raw()?;
        check_is_sqlite(&conn, path)?;
        gate_version(&conn, path)?;
        if mode == OpenMode::Serve {
            if !memory {
                make_private(path);
            }
            store.enable_wal(&conn)?;
            schema::migrate(&mut conn, applied_at)?;
            schema::ensure_gm_indexes(&conn)?;
            conn.execute_batch("PRAGMA synchronous = FULL")
                .map_err(StoreError::sqlite("setting synchronous = FULL"))?;
            if !memory {
                store.writer = Some(writer::Writer::start(store.connect()?, Arc::clone(&store.published))?);
            }
        }
        store.give_back(conn);
        Ok(store)
    }

    /// Runs `f` on a pooled connection.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let conn = self.take()?;
        let result = f(&conn);
        self.give_back(conn);
        result
    }

    /// Runs `f` as one atomic unit of the writer's next group commit and returns after the commit
    /// (durable: `synchronous = FULL`). `f` must own what it needs (it runs on the writer thread).
    pub fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if self.mode == OpenMode::ReadOnly {
            return Err(StoreError::ReadOnly);
        }
        match &self.writer {
            Some(w) => w.submit(f),
            None => {
                // `:memory:` databases have one connection and no writer thread.
                let mut conn = self.take()?;
                let result = run_in_transaction(&mut conn, f);
                self.give_back(conn);
                result
            }
        }
    }

    /// How many write batches so far changed a published document (a CRL or policy version row), or
    /// `None` when this store has no writer thread (`:memory:`, read-only) and so cannot tell. A copy
    /// of a document read after seeing value `n` is current while the value is still `n`: the writer
    /// bumps it after the commit and before answering the write's caller, and every write of the
    /// serving process goes through the writer. No other process writes these tables while `gm
    /// serve` holds the database lock (`gm managed restore` takes the same lock and refuses).
    pub(crate) fn published_epoch(&self) -> Option<u64> {
        self.writer.as_ref().map(|_| self.published.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Size of the database file plus its WAL, in bytes.
    pub(crate) fn size_bytes(&self) -> u64 {
        let main = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.as_os_str().to_os_string();
        wal.push("-wal");
        main + std::fs::metadata(PathBuf::from(wal)).map(|m| m.len()).unwrap_or(0)
    }

    /// WAL files above this are truncated by [`Store::bound_wal`].
    pub(crate) const WAL_LIMIT_BYTES: u64 = 16 * 1024 * 1024;

    /// Keeps the WAL file bounded. Under a steady stream of readers SQLite's automatic checkpoints
    /// copy pages but rarely find a moment to restart the log, so the `-wal` file keeps growing
    /// (175 MiB beside a 20 MiB database after two minutes of `scripts/load.sh`). When it exceeds
    /// `limit` (the server uses [`Store::WAL_LIMIT_BYTES`]), a `wal_checkpoint(TRUNCATE)` waits at most `wait` for readers
    /// and empties it. Returns the size it was when truncated; a busy database is reported, not
    /// waited for (the next call tries again).
    pub(crate) fn bound_wal(&self, limit: u64, wait: std::time::Duration) -> Result<Option<u64>, StoreError> {
        if self.mode == OpenMode::ReadOnly || self.path.as_os_str() == ":memory:" {
            return Ok(None);
        }
        let mut wal = self.path.as_os_str().to_os_string();
        wal.push("-wal");
        let size = std::fs::metadata(PathBuf::from(wal)).map(|m| m.len()).unwrap_or(0);
        if size <= limit {
            return Ok(None);
        }
        snapshot::fold_journal(&self.path, wait)?;
        Ok(Some(size))
    }

    /// Readiness (`deviations.md` D3): the schema holds versions 1–6 and all 13 tables, and a write
    /// transaction can be started and rolled back. Returns the short reason when not ready.
    ///
    /// With a writer thread (`gm serve`), a batch committed within the last second already proves
    /// the database writable; otherwise an empty job goes through the writer's `BEGIN IMMEDIATE`,
    /// waiting at most 2 s. The probe never holds a pooled reader while it waits: probes that
    /// waited for the write lock on pooled connections starved `/metrics` and `/policy` under
    /// `scripts/load.sh`.
    pub(crate) fn check_ready(&self) -> Result<(), String> {
        let schema = self.read(|c| Ok(schema_ready(c))).map_err(|e| e.to_string())?;
        schema?;
        match &self.writer {
            Some(w) if w.committed_within(RECENT_COMMIT) => Ok(()),
            Some(w) => w.probe(READY_WRITE_WAIT).map_err(|p| format!("database not writable: {p}")),
            None => {
                let mut conn = self.take().map_err(|e| e.to_string())?;
                let _ = conn.busy_timeout(READY_WRITE_WAIT);
                let result = write_probe(&mut conn);
                let _ = conn.busy_timeout(self.busy_timeout);
                self.give_back(conn);
                result
            }
        }
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let conn = self.connect_raw()?;
        if self.mode == OpenMode::Serve {
            self.enable_wal(&conn)?;
        }
        Ok(conn)
    }

    fn connect_raw(&self) -> Result<Connection, StoreError> {
        let flags = match self.mode {
            OpenMode::Serve => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            OpenMode::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)
            .map_err(|source| StoreError::Open { path: self.path.clone(), source })?;
        conn.busy_timeout(self.busy_timeout).map_err(StoreError::sqlite("setting busy_timeout"))?;
        // Room for every statement gm prepares, so none is re-parsed per request.
        conn.set_prepared_statement_cache_capacity(64);
        // A modest page cache per pooled reader keeps the RSS bounded with 32 connections.
        conn.execute_batch("PRAGMA cache_size = -1024").map_err(|e| not_sqlite_or(e, &self.path))?;
        conn.execute_batch("PRAGMA foreign_keys = ON").map_err(|e| not_sqlite_or(e, &self.path))?;
        Ok(conn)
    }

    /// Upstream only logs a failure to switch to WAL; so does gm (it still works, just slower).
    fn enable_wal(&self, conn: &Connection) -> Result<(), StoreError> {
        if let Err(e) = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            let e = not_sqlite_or(e, &self.path);
            if matches!(e, StoreError::NotSqlite { .. }) {
                return Err(e);
            }
            log::warn!("cannot switch {} to WAL mode: {e}", self.path.display());
        }
        Ok(())
    }

    fn take(&self) -> Result<Connection, StoreError> {
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        let mut state = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(conn);
            }
            if state.open < self.max_connections {
                state.open += 1;
                drop(state);
                return self.connect().inspect_err(|_| {
                    let mut s = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                    s.open -= 1;
                });
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(StoreError::PoolTimeout);
            }
            state = self.freed.wait_timeout(state, deadline - now).map(|(s, _)| s).unwrap_or_else(|p| p.into_inner().0);
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut state = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if state.open == 0 {
            state.open = 1;
        }
        state.idle.push(conn);
        drop(state);
        self.freed.notify_one();
    }
}

fn run_in_transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::sqlite("starting a write transaction"))?;
    let value = f(&tx)?;
    tx.commit().map_err(StoreError::sqlite("committing"))?;
    Ok(value)
}

fn not_sqlite_or(e: rusqlite::Error, path: &Path) -> StoreError {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
        StoreError::NotSqlite { path: path.to_path_buf() }
    } else {
        StoreError::Open { path: path.to_path_buf(), source: e }
    }
}

/// The database holds unredeemed invite tokens: it and its sidecars are owner-only whatever the
/// umask (F9). [`Store::open`] creates a missing file 0600 before SQLite opens it (SQLite gives
/// `-wal`, `-shm` and `-journal` the main file's mode); here, once the file passed the gate, files
/// an earlier run left group- or world-readable are tightened, with a warning.
fn make_private(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        match crate::files::private::restrict_to_owner(&file) {
            Ok(Some(old)) => log::warn!("{} was mode {old:o}; made it owner-only (0600)", file.display()),
            Ok(None) => {}
            Err(e) => log::warn!("cannot make {} owner-only: {e}", file.display()),
        }
    }
}

fn check_is_sqlite(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
        .map(|_| ())
        .map_err(|e| not_sqlite_or(e, path))
}

fn gate_version(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let found = schema::current_version(conn)?;
    if found > schema::KNOWN_VERSION {
        return Err(StoreError::SchemaTooNew { path: path.to_path_buf(), found, known: schema::KNOWN_VERSION });
    }
    Ok(())
}

/// How long `/readyz` waits for a write transaction before answering "not writable".
const READY_WRITE_WAIT: Duration = Duration::from_secs(2);
/// A commit this recent makes `/readyz` skip its write probe.
const RECENT_COMMIT: Duration = Duration::from_secs(1);

fn schema_ready(conn: &Connection) -> Result<(), String> {
    let versions = schema::applied_versions(conn).map_err(|e| e.to_string())?;
    if let Some(v) = (1..=schema::KNOWN_VERSION).find(|v| !versions.contains(v)) {
        return Err(format!("schema migration {v:03} not applied"));
    }
    let missing = schema::missing_tables(conn).map_err(|e| e.to_string())?;
    if let Some(t) = missing.first() {
        return Err(format!("table {t} missing"));
    }
    Ok(())
}

fn write_probe(conn: &mut Connection) -> Result<(), String> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| format!("database not writable: {e}"))?;
    tx.rollback().map_err(|e| format!("database not writable: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_wal_empties_a_wal_over_the_limit_and_keeps_every_row() {
        let dir = std::env::temp_dir().join(format!("gm-store-wal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let db = dir.join("na.db");
        let store =
            Store::open(&db, OpenMode::Serve, "2026-01-01T00:00:00+00:00").unwrap_or_else(|e| unreachable!("{e}"));
        for i in 0..50 {
            store
                .write(move |c| audit::insert(c, &format!("e{i}"), "{}", "2026-01-02T00:00:00+00:00"))
                .unwrap_or_else(|e| unreachable!("{e}"));
        }
        let wal = dir.join("na.db-wal");
        let before = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        assert!(before > 0);
        assert_eq!(store.bound_wal(u64::MAX, Duration::from_secs(1)).ok(), Some(None), "under the limit: untouched");
        assert_eq!(store.bound_wal(0, Duration::from_secs(2)).ok(), Some(Some(before)));
        assert_eq!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(u64::MAX), 0);
        let rows = store.read(|c| {
            c.query_row("SELECT COUNT(*) FROM audit_events", [], |r| r.get::<_, i64>(0))
                .map_err(StoreError::sqlite("count"))
        });
        assert_eq!(rows.ok(), Some(50));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
