//! `invite_tokens`: single-use enrollment tokens, stored exactly as upstream stores them (the token
//! id is the primary key, so an upstream NA on the same database redeems gm's tokens and the
//! reverse). The token never leaves this table: audit events carry only its fingerprint.

use rusqlite::{params, Connection, OptionalExtension};

use super::error::StoreError;

/// One stored invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InviteRow {
    /// `assigned_roles_json`.
    pub assigned_roles_json: String,
    /// Certificate validity cap in hours.
    pub max_validity_hours: i64,
    /// Expiry (isoformat).
    pub expires_at: String,
    /// When it was redeemed, if it was.
    pub used_at: Option<String>,
}

/// A new invite.
pub struct NewInvite<'a> {
    /// The token (UUID4).
    pub token_id: &'a str,
    /// `["role:client", …]` with upstream's `", "` separators.
    pub assigned_roles_json: &'a str,
    /// Cap for certificates.
    pub max_validity_hours: i64,
    /// Creation time (isoformat).
    pub created_at: &'a str,
    /// Expiry (isoformat).
    pub expires_at: &'a str,
}

/// Stores a new invite.
pub fn insert(conn: &Connection, invite: &NewInvite<'_>) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO invite_tokens (token_id, assigned_roles_json, max_validity_hours, created_at, expires_at, used_at, used_by_key)
         VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL)",
        params![invite.token_id, invite.assigned_roles_json, invite.max_validity_hours, invite.created_at, invite.expires_at],
    )
    .map(|_| ())
    .map_err(StoreError::sqlite("storing an invite"))
}

/// Looks an invite up.
pub(crate) fn get(conn: &Connection, token_id: &str) -> Result<Option<InviteRow>, StoreError> {
    conn.prepare_cached(
        "SELECT assigned_roles_json, max_validity_hours, expires_at, used_at FROM invite_tokens WHERE token_id = ?1",
    )
    .and_then(|mut s| {
        s.query_row([token_id], |r| {
            Ok(InviteRow {
                assigned_roles_json: r.get(0)?,
                max_validity_hours: r.get(1)?,
                expires_at: r.get(2)?,
                used_at: r.get(3)?,
            })
        })
        .optional()
    })
    .map_err(StoreError::sqlite("reading an invite"))
}

/// Marks the invite used if it still is unused; false when another request got it first.
pub(crate) fn consume(conn: &Connection, token_id: &str, used_at: &str, used_by_key: &str) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "UPDATE invite_tokens SET used_at = ?2, used_by_key = ?3 WHERE token_id = ?1 AND used_at IS NULL",
    )
    .and_then(|mut s| s.execute(params![token_id, used_at, used_by_key]))
    .map(|n| n == 1)
    .map_err(StoreError::sqlite("consuming an invite"))
}
