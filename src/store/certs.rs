//! `issued_certs`: node certificates. Counts and the active-node set are indexed queries (gm's
//! `gm_issued_certs_status` and `gm_issued_certs_last_heartbeat` indexes), never full row loads.

use rusqlite::Connection;

use super::error::StoreError;

/// One row of the active-node set (`GET /nodes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveNodeRow {
    /// Certificate id.
    pub cert_id: String,
    /// Node public key.
    pub node_public_key: String,
    /// Stored `roles_json`.
    pub roles_json: String,
    /// Stored `expires_at`.
    pub expires_at: String,
    /// Stored `last_heartbeat`.
    pub last_heartbeat: String,
    /// Stored `remote_addr`.
    pub remote_addr: Option<String>,
    /// Stored `status`.
    pub status: String,
    /// Stored `heartbeat_status`.
    pub heartbeat_status: Option<String>,
}

/// Rows in `issued_certs` (renewed and revoked included).
pub fn count_all(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("SELECT COUNT(*) FROM issued_certs", [], |r| r.get(0))
        .map_err(StoreError::sqlite("counting certificates"))
}

/// Rows with status `revoked`.
pub fn count_revoked(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row(
        "SELECT COUNT(*) FROM issued_certs WHERE status = 'revoked'",
        [],
        |r| r.get(0),
    )
    .map_err(StoreError::sqlite("counting revoked certificates"))
}

/// Non-revoked rows whose `last_heartbeat` sorts at or after `not_before` (an isoformat prefix such
/// as `2026-11-25T17:40:00`). Callers apply the exact time test to the few rows returned.
pub fn recent_heartbeats(
    conn: &Connection,
    not_before: &str,
) -> Result<Vec<ActiveNodeRow>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT cert_id, node_public_key, roles_json, expires_at, last_heartbeat, remote_addr, status, heartbeat_status
             FROM issued_certs INDEXED BY gm_issued_certs_last_heartbeat
             WHERE last_heartbeat >= ?1 AND status != 'revoked'
             ORDER BY last_heartbeat",
        )
        .or_else(|_| {
            conn.prepare_cached(
                "SELECT cert_id, node_public_key, roles_json, expires_at, last_heartbeat, remote_addr, status, heartbeat_status
                 FROM issued_certs WHERE last_heartbeat >= ?1 AND status != 'revoked' ORDER BY last_heartbeat",
            )
        })
        .map_err(StoreError::sqlite("reading active nodes"))?;
    let rows = stmt
        .query_map([not_before], |r| {
            Ok(ActiveNodeRow {
                cert_id: r.get(0)?,
                node_public_key: r.get(1)?,
                roles_json: r.get(2)?,
                expires_at: r.get(3)?,
                last_heartbeat: r.get(4)?,
                remote_addr: r.get(5)?,
                status: r.get(6)?,
                heartbeat_status: r.get(7)?,
            })
        })
        .map_err(StoreError::sqlite("reading active nodes"))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite("reading active nodes"))
}
