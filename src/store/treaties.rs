//! `recognition_treaties`: treaties this NA issued (directed edges issuer → subject). Revocation is
//! stored beside the signed JSON.

use rusqlite::{params, Connection, OptionalExtension};

use super::error::StoreError;

/// One stored treaty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreatyRow {
    /// Treaty id.
    pub treaty_id: String,
    /// Issuer (accepting sovereign).
    pub issuer_sovereign_id: String,
    /// Subject (recognised sovereign).
    pub subject_sovereign_id: String,
    /// `active` or `revoked`.
    pub status: String,
    /// Declaration-order `treaty_json`.
    pub treaty_json: String,
    /// Issue time (isoformat).
    pub issued_at: String,
    /// Start (isoformat).
    pub valid_from: String,
    /// End (isoformat).
    pub expires_at: String,
    /// Revocation time.
    pub revoked_at: Option<String>,
    /// Revocation reason.
    pub revocation_reason: Option<String>,
}

const COLUMNS: &str =
    "treaty_id, issuer_sovereign_id, subject_sovereign_id, status, treaty_json, issued_at, valid_from, \
                       expires_at, revoked_at, revocation_reason";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TreatyRow> {
    Ok(TreatyRow {
        treaty_id: r.get(0)?,
        issuer_sovereign_id: r.get(1)?,
        subject_sovereign_id: r.get(2)?,
        status: r.get(3)?,
        treaty_json: r.get(4)?,
        issued_at: r.get(5)?,
        valid_from: r.get(6)?,
        expires_at: r.get(7)?,
        revoked_at: r.get(8)?,
        revocation_reason: r.get(9)?,
    })
}

/// Stores a new treaty with status `active` (the row's fields come from the treaty itself).
pub fn insert(conn: &Connection, t: &TreatyRow) -> Result<(), StoreError> {
    conn.execute(
        &format!(
            "INSERT INTO recognition_treaties ({COLUMNS}) VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6, ?7, NULL, NULL)"
        ),
        params![
            t.treaty_id,
            t.issuer_sovereign_id,
            t.subject_sovereign_id,
            t.treaty_json,
            t.issued_at,
            t.valid_from,
            t.expires_at
        ],
    )
    .map(|_| ())
    .map_err(StoreError::sqlite("storing a treaty"))
}

/// One treaty.
pub(crate) fn get(conn: &Connection, id: &str) -> Result<Option<TreatyRow>, StoreError> {
    conn.query_row(&format!("SELECT {COLUMNS} FROM recognition_treaties WHERE treaty_id = ?1"), [id], row)
        .optional()
        .map_err(StoreError::sqlite("reading a treaty"))
}

/// Filtered list ordered by `issued_at` (empty filters are ignored).
pub(crate) fn list(conn: &Connection, issuer: &str, subject: &str, status: &str) -> Result<Vec<TreatyRow>, StoreError> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM recognition_treaties
             WHERE (?1 = '' OR issuer_sovereign_id = ?1) AND (?2 = '' OR subject_sovereign_id = ?2) AND (?3 = '' OR status = ?3)
             ORDER BY issued_at"
        ))
        .map_err(StoreError::sqlite("listing treaties"))?;
    let rows = stmt.query_map(params![issuer, subject, status], row).map_err(StoreError::sqlite("listing treaties"))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("listing treaties"))
}

/// Marks a treaty revoked (repeatable); false when unknown.
pub(crate) fn revoke(conn: &Connection, id: &str, at: &str, reason: &str) -> Result<bool, StoreError> {
    conn.execute(
        "UPDATE recognition_treaties SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3 WHERE treaty_id = ?1",
        params![id, at, reason],
    )
    .map(|n| n > 0)
    .map_err(StoreError::sqlite("revoking a treaty"))
}
