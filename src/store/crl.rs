//! `crl_versions`: one signed CRL per sequence; the active CRL is the highest sequence with
//! `active = 1`.

use rusqlite::{params, Connection, OptionalExtension};

use super::error::StoreError;

/// The active CRL's `(sequence, crl_json)`, if any.
pub(crate) fn active(conn: &Connection) -> Result<Option<(i64, String)>, StoreError> {
    conn.query_row(
        "SELECT sequence, crl_json FROM crl_versions WHERE active = 1 ORDER BY sequence DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(StoreError::sqlite("reading the active CRL"))
}

/// The highest CRL sequence ever stored, active or not (0 when none).
pub(crate) fn max_sequence(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("SELECT COALESCE(MAX(sequence), 0) FROM crl_versions", [], |r| r.get(0))
        .map_err(StoreError::sqlite("reading the CRL sequence"))
}

/// The active sequence without loading the CRL (0 when none; `/metrics` never creates one).
pub(crate) fn active_sequence(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT COALESCE(MAX(sequence), 0) FROM crl_versions WHERE active = 1")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(StoreError::sqlite("reading the CRL sequence"))
}

/// Stores a new CRL version as the only active one.
pub(crate) fn activate_new(
    conn: &Connection,
    sequence: i64,
    crl_json: &str,
    created_at: &str,
) -> Result<(), StoreError> {
    conn.execute("UPDATE crl_versions SET active = 0 WHERE active != 0", [])
        .map_err(StoreError::sqlite("deactivating CRLs"))?;
    conn.execute(
        "INSERT INTO crl_versions (sequence, crl_json, active, created_at) VALUES (?1, ?2, 1, ?3)",
        params![sequence, crl_json, created_at],
    )
    .map_err(StoreError::sqlite("storing a CRL"))?;
    Ok(())
}
