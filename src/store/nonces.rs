//! `nonces`: replay protection for node and admin requests, per scope (`join:<key>`,
//! `node:<key>`, `admin:<key id>`). Rows survive restarts; [`prune_older_than`] bounds the table.

use rusqlite::{params, Connection, OptionalExtension};

use super::error::StoreError;

/// True when `nonce` was already used in `scope`.
pub(crate) fn exists(conn: &Connection, scope: &str, nonce: &str) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT 1 FROM nonces WHERE scope = ?1 AND nonce = ?2")
        .and_then(|mut s| s.query_row(params![scope, nonce], |_| Ok(())).optional())
        .map(|r| r.is_some())
        .map_err(StoreError::sqlite("checking a nonce"))
}

/// Records `nonce` in `scope`; false when it was already there (a replay that won a race).
pub fn insert(conn: &Connection, scope: &str, nonce: &str, created_at: &str) -> Result<bool, StoreError> {
    conn.prepare_cached("INSERT OR IGNORE INTO nonces (scope, nonce, created_at) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![scope, nonce, created_at]))
        .map(|n| n == 1)
        .map_err(StoreError::sqlite("storing a nonce"))
}

/// Deletes nonces created before `threshold` (isoformat UTC); returns how many went.
pub(crate) fn prune_older_than(conn: &Connection, threshold: &str) -> Result<usize, StoreError> {
    conn.execute("DELETE FROM nonces WHERE created_at < ?1", [threshold]).map_err(StoreError::sqlite("pruning nonces"))
}

/// Number of stored nonces.
pub fn count(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("SELECT COUNT(*) FROM nonces", [], |r| r.get(0)).map_err(StoreError::sqlite("counting nonces"))
}
