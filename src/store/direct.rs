//! One-off connections to a database file outside the pool and its migrations: a read-only look at
//! a live database or ops ledger (readiness evidence, incident bundles), and a plain read-write
//! connection to a private scratch copy (the restore's temporary file, a drill's scratch
//! database). Nothing here opens the pooled NA database `gm serve` writes through, and nothing
//! here creates a file that is not there.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::error::StoreError;

/// Opens `path` read-only: [`StoreError::Missing`] when it is not a file (never created).
pub(crate) fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    if !path.is_file() {
        return Err(StoreError::Missing { path: path.to_path_buf() });
    }
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|source| StoreError::Open { path: path.to_path_buf(), source })
}

/// Opens a scratch copy at `path` read-write (SQLite's defaults; the caller made the file and owns
/// it: no busy timeout, no migrations).
pub(crate) fn open_scratch(path: &Path) -> Result<Connection, StoreError> {
    Connection::open(path).map_err(|source| StoreError::Open { path: path.to_path_buf(), source })
}

/// The database's journal mode (`wal` for a database `gm serve` has opened).
pub(crate) fn journal_mode(conn: &Connection) -> Result<String, StoreError> {
    conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).map_err(StoreError::sqlite("reading the journal mode"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_open_neither_creates_nor_writes() {
        let dir = std::env::temp_dir().join(format!("gm-store-direct-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("na.db");
        assert!(matches!(open_read_only(&db), Err(StoreError::Missing { .. })));
        assert!(!db.exists());
        let conn = open_scratch(&db).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER)").unwrap();
        drop(conn);
        let conn = open_read_only(&db).unwrap();
        assert_eq!(journal_mode(&conn).unwrap(), "wal");
        assert!(conn.execute_batch("INSERT INTO t VALUES (1)").is_err());
        drop(conn);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
