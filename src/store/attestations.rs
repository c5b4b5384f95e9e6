//! `membership_attestations`: attestations this NA issued; revocation is stored beside the signed
//! JSON (status, revoked_at, revocation_reason), never in it.

use rusqlite::{params, Connection, OptionalExtension};

use super::error::StoreError;

/// One stored attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttestationRow {
    /// Attestation id.
    pub attestation_id: String,
    /// Declaration-order `attestation_json`.
    pub attestation_json: String,
    /// `active` or `revoked`.
    pub status: String,
    /// Revocation time (isoformat).
    pub revoked_at: Option<String>,
    /// Revocation reason.
    pub revocation_reason: Option<String>,
}

/// A new attestation row.
pub struct NewAttestation {
    /// Attestation id.
    pub attestation_id: String,
    /// Issuer.
    pub issuer_sovereign_id: String,
    /// Subject.
    pub subject_id: String,
    /// Subject key.
    pub subject_public_key: Option<String>,
    /// `roles_json` with upstream's separators.
    pub roles_json: String,
    /// Declaration-order JSON.
    pub attestation_json: String,
    /// Times (isoformat).
    pub issued_at: String,
    /// Start of validity (isoformat).
    pub valid_from: String,
    /// End of validity (isoformat).
    pub expires_at: String,
}

const COLUMNS: &str = "attestation_id, attestation_json, status, revoked_at, revocation_reason";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AttestationRow> {
    Ok(AttestationRow {
        attestation_id: r.get(0)?,
        attestation_json: r.get(1)?,
        status: r.get(2)?,
        revoked_at: r.get(3)?,
        revocation_reason: r.get(4)?,
    })
}

/// Stores a new attestation with status `active`.
pub fn insert(conn: &Connection, a: &NewAttestation) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO membership_attestations (attestation_id, issuer_sovereign_id, subject_id, subject_public_key, roles_json,
           status, attestation_json, issued_at, valid_from, expires_at, revoked_at, revocation_reason)
         VALUES (?1, ?2, ?3, ?4, ?5, 'active', ?6, ?7, ?8, ?9, NULL, NULL)",
        params![
            a.attestation_id,
            a.issuer_sovereign_id,
            a.subject_id,
            a.subject_public_key,
            a.roles_json,
            a.attestation_json,
            a.issued_at,
            a.valid_from,
            a.expires_at
        ],
    )
    .map(|_| ())
    .map_err(StoreError::sqlite("storing an attestation"))
}

/// One attestation.
pub(crate) fn get(conn: &Connection, id: &str) -> Result<Option<AttestationRow>, StoreError> {
    conn.query_row(&format!("SELECT {COLUMNS} FROM membership_attestations WHERE attestation_id = ?1"), [id], row)
        .optional()
        .map_err(StoreError::sqlite("reading an attestation"))
}

/// Filtered list ordered by `issued_at` (empty filters are ignored).
pub(crate) fn list(
    conn: &Connection,
    issuer: &str,
    subject: &str,
    status: &str,
) -> Result<Vec<AttestationRow>, StoreError> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM membership_attestations
             WHERE (?1 = '' OR issuer_sovereign_id = ?1) AND (?2 = '' OR subject_id = ?2) AND (?3 = '' OR status = ?3)
             ORDER BY issued_at"
        ))
        .map_err(StoreError::sqlite("listing attestations"))?;
    let rows =
        stmt.query_map(params![issuer, subject, status], row).map_err(StoreError::sqlite("listing attestations"))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("listing attestations"))
}

/// Marks an attestation revoked (repeatable: overwrites time and reason); false when unknown.
pub(crate) fn revoke(conn: &Connection, id: &str, at: &str, reason: &str) -> Result<bool, StoreError> {
    conn.execute(
        "UPDATE membership_attestations SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3 WHERE attestation_id = ?1",
        params![id, at, reason],
    )
    .map(|n| n > 0)
    .map_err(StoreError::sqlite("revoking an attestation"))
}

/// Whether the stored row is revoked.
pub(crate) fn is_revoked(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    conn.query_row("SELECT status FROM membership_attestations WHERE attestation_id = ?1", [id], |r| {
        r.get::<_, String>(0)
    })
    .optional()
    .map(|s| s.as_deref() == Some("revoked"))
    .map_err(StoreError::sqlite("reading an attestation"))
}

/// Revoked attestations of `issuer` as `(id, reason)`, ordered by `issued_at` (the revocation feed).
pub(crate) fn revoked_of(conn: &Connection, issuer: &str) -> Result<Vec<(String, Option<String>)>, StoreError> {
    let mut stmt = conn
        .prepare(
            "SELECT attestation_id, revocation_reason FROM membership_attestations
             WHERE issuer_sovereign_id = ?1 AND status = 'revoked' ORDER BY issued_at",
        )
        .map_err(StoreError::sqlite("reading revoked attestations"))?;
    let rows = stmt
        .query_map([issuer], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(StoreError::sqlite("reading revoked attestations"))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("reading revoked attestations"))
}
