//! `issued_certs`: node certificates. Counts and the active-node set are indexed queries (gm's
//! `gm_issued_certs_status` and `gm_issued_certs_heartbeat_status` indexes), never full row loads;
//! the active count reads the covering heartbeat index only.

use rusqlite::Connection;

use super::error::StoreError;

/// One row of the active-node set (`GET /nodes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActiveNodeRow {
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
pub(crate) fn count_all(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT COUNT(*) FROM issued_certs")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(StoreError::sqlite("counting certificates"))
}

/// Rows with status `revoked`.
pub(crate) fn count_revoked(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT COUNT(*) FROM issued_certs WHERE status = 'revoked'")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(StoreError::sqlite("counting revoked certificates"))
}

/// Non-revoked rows whose `last_heartbeat` sorts at or after `not_before` (an isoformat prefix such
/// as `2026-11-25T17:40:00`). Callers apply the exact time test to the few rows returned.
pub(crate) fn recent_heartbeats(conn: &Connection, not_before: &str) -> Result<Vec<ActiveNodeRow>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT cert_id, node_public_key, roles_json, expires_at, last_heartbeat, remote_addr, status, heartbeat_status
             FROM issued_certs INDEXED BY gm_issued_certs_heartbeat_status
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
    rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("reading active nodes"))
}

/// For the `/metrics` active count: the number of non-revoked rows whose `last_heartbeat` sorts at
/// or after `sure`, and the `last_heartbeat` values of those between `not_before` (inclusive) and
/// `sure`, for the caller's exact test. Reads only the covering `(last_heartbeat, status)` index:
/// no row is loaded, so the cost stays small with tens of thousands of active nodes.
pub(crate) fn recent_heartbeat_count(
    conn: &Connection,
    not_before: &str,
    sure: &str,
) -> Result<(i64, Vec<String>), StoreError> {
    let what = "counting active nodes";
    let sure_count = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM issued_certs INDEXED BY gm_issued_certs_heartbeat_status
             WHERE last_heartbeat >= ?1 AND status != 'revoked'",
        )
        .or_else(|_| {
            conn.prepare_cached("SELECT COUNT(*) FROM issued_certs WHERE last_heartbeat >= ?1 AND status != 'revoked'")
        })
        .and_then(|mut stmt| stmt.query_row([sure], |r| r.get::<_, i64>(0)))
        .map_err(StoreError::sqlite(what))?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT last_heartbeat FROM issued_certs INDEXED BY gm_issued_certs_heartbeat_status
             WHERE last_heartbeat >= ?1 AND last_heartbeat < ?2 AND status != 'revoked'",
        )
        .or_else(|_| {
            conn.prepare_cached(
                "SELECT last_heartbeat FROM issued_certs
                 WHERE last_heartbeat >= ?1 AND last_heartbeat < ?2 AND status != 'revoked'",
            )
        })
        .map_err(StoreError::sqlite(what))?;
    let boundary = stmt
        .query_map([not_before, sure], |r| r.get::<_, String>(0))
        .map_err(StoreError::sqlite(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite(what))?;
    Ok((sure_count, boundary))
}

/// The columns of one certificate row that decisions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertRow {
    /// Certificate id.
    pub cert_id: String,
    /// Node public key.
    pub node_public_key: String,
    /// Stored `roles_json`.
    pub roles_json: String,
    /// Issue time (isoformat).
    pub issued_at: String,
    /// Expiry (isoformat).
    pub expires_at: String,
    /// `issued` or `revoked`.
    pub status: String,
    /// Revocation reason, when revoked.
    pub revocation_reason: Option<String>,
    /// The certificate this one renewed.
    pub renewed_from: Option<String>,
    /// Validity cap (NULL on rows older than migration 002).
    pub max_validity_hours: Option<i64>,
}

const CERT_COLUMNS: &str =
    "cert_id, node_public_key, roles_json, issued_at, expires_at, status, revocation_reason, renewed_from, max_validity_hours";

fn cert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CertRow> {
    Ok(CertRow {
        cert_id: r.get(0)?,
        node_public_key: r.get(1)?,
        roles_json: r.get(2)?,
        issued_at: r.get(3)?,
        expires_at: r.get(4)?,
        status: r.get(5)?,
        revocation_reason: r.get(6)?,
        renewed_from: r.get(7)?,
        max_validity_hours: r.get(8)?,
    })
}

/// Loads one certificate row.
pub(crate) fn get(conn: &Connection, cert_id: &str) -> Result<Option<CertRow>, StoreError> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached(&format!("SELECT {CERT_COLUMNS} FROM issued_certs WHERE cert_id = ?1"))
        .and_then(|mut s| s.query_row([cert_id], cert_row).optional())
        .map_err(StoreError::sqlite("reading a certificate"))
}

/// The id of a certificate of `node_public_key` revoked for `key_compromise`, if any.
pub(crate) fn key_compromised(conn: &Connection, node_public_key: &str) -> Result<Option<String>, StoreError> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached(
        "SELECT cert_id FROM issued_certs WHERE node_public_key = ?1 AND status = 'revoked' AND revocation_reason = 'key_compromise' LIMIT 1",
    )
    .and_then(|mut s| s.query_row([node_public_key], |r| r.get(0)).optional())
    .map_err(StoreError::sqlite("checking for a compromised key"))
}

/// A certificate to store.
pub struct NewCert {
    /// Certificate id.
    pub cert_id: String,
    /// Node public key.
    pub node_public_key: String,
    /// Declaration-order `cert_json`.
    pub cert_json: String,
    /// `roles_json` with upstream's separators.
    pub roles_json: String,
    /// Issue time (isoformat).
    pub issued_at: String,
    /// Expiry (isoformat).
    pub expires_at: String,
    /// Client address.
    pub remote_addr: String,
    /// The certificate this one renews.
    pub renewed_from: Option<String>,
    /// Validity cap.
    pub max_validity_hours: Option<i64>,
}

/// Stores a freshly issued certificate: status `issued`, heartbeat status `joined`, last
/// heartbeat = issue time (so it appears in `/nodes` for five minutes, as upstream).
pub fn insert(conn: &Connection, c: &NewCert) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO issued_certs (cert_id, node_public_key, cert_json, roles_json, issued_at, expires_at, remote_addr,
           status, last_heartbeat, heartbeat_status, renewed_from, revoked_at, revocation_reason, max_validity_hours)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'issued', ?5, 'joined', ?8, NULL, NULL, ?9)",
    )
    .and_then(|mut s| {
        s.execute(rusqlite::params![
            c.cert_id,
            c.node_public_key,
            c.cert_json,
            c.roles_json,
            c.issued_at,
            c.expires_at,
            c.remote_addr,
            c.renewed_from,
            c.max_validity_hours
        ])
    })
    .map(|_| ())
    .map_err(StoreError::sqlite("storing a certificate"))
}

/// Records a heartbeat.
pub(crate) fn record_heartbeat(
    conn: &Connection,
    cert_id: &str,
    at: &str,
    status: &str,
    remote_addr: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE issued_certs SET last_heartbeat = ?2, heartbeat_status = ?3, remote_addr = ?4 WHERE cert_id = ?1",
    )
    .and_then(|mut s| s.execute(rusqlite::params![cert_id, at, status, remote_addr]))
    .map(|_| ())
    .map_err(StoreError::sqlite("recording a heartbeat"))
}

/// A revoked certificate: `(cert_id, revoked_at, revocation_reason)`.
pub(crate) type RevokedCert = (String, Option<String>, Option<String>);

/// Every revoked certificate, oldest revocation first.
pub(crate) fn revoked(conn: &Connection) -> Result<Vec<RevokedCert>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT cert_id, revoked_at, revocation_reason FROM issued_certs WHERE status = 'revoked' ORDER BY revoked_at, cert_id")
        .map_err(StoreError::sqlite("listing revoked certificates"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(StoreError::sqlite("listing revoked certificates"))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("listing revoked certificates"))
}

/// Marks a certificate revoked (only if it is not already).
pub(crate) fn mark_revoked(conn: &Connection, cert_id: &str, at: &str, reason: &str) -> Result<bool, StoreError> {
    conn.execute(
        "UPDATE issued_certs SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3 WHERE cert_id = ?1 AND status != 'revoked'",
        rusqlite::params![cert_id, at, reason],
    )
    .map(|n| n == 1)
    .map_err(StoreError::sqlite("revoking a certificate"))
}

/// Replaces the stored revocation reason (escalation to `key_compromise`, D12).
pub(crate) fn set_revocation_reason(conn: &Connection, cert_id: &str, reason: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE issued_certs SET revocation_reason = ?2 WHERE cert_id = ?1",
        rusqlite::params![cert_id, reason],
    )
    .map(|_| ())
    .map_err(StoreError::sqlite("updating a revocation reason"))
}

/// The certificate that renewed `cert_id` (earliest), with its issue time.
pub(crate) fn successor(conn: &Connection, cert_id: &str) -> Result<Option<(String, String)>, StoreError> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached(
        "SELECT cert_id, issued_at FROM issued_certs WHERE renewed_from = ?1 ORDER BY issued_at LIMIT 1",
    )
    .and_then(|mut s| s.query_row([cert_id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
    .map_err(StoreError::sqlite("reading a renewal"))
}

/// Every certificate linked to `cert_id` through `renewed_from` (ancestors and descendants) with the
/// same node key, `cert_id` first.
pub(crate) fn renewal_chain(conn: &Connection, cert_id: &str) -> Result<Vec<CertRow>, StoreError> {
    let Some(start) = get(conn, cert_id)? else {
        return Ok(Vec::new());
    };
    let mut chain = vec![start.clone()];
    let mut cursor = start.renewed_from.clone();
    while let Some(id) = cursor {
        match get(conn, &id)? {
            Some(row)
                if row.node_public_key == start.node_public_key && !chain.iter().any(|c| c.cert_id == row.cert_id) =>
            {
                cursor = row.renewed_from.clone();
                chain.push(row);
            }
            _ => break,
        }
    }
    let mut frontier = vec![start.cert_id.clone()];
    while let Some(id) = frontier.pop() {
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {CERT_COLUMNS} FROM issued_certs WHERE renewed_from = ?1"))
            .map_err(StoreError::sqlite("reading renewals"))?;
        let children = stmt
            .query_map([&id], cert_row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(StoreError::sqlite("reading renewals"))?;
        for child in children {
            if child.node_public_key == start.node_public_key && !chain.iter().any(|c| c.cert_id == child.cert_id) {
                frontier.push(child.cert_id.clone());
                chain.push(child);
            }
        }
    }
    Ok(chain)
}

/// Rows whose status is not `revoked` (the dashboard's tracked nodes).
pub(crate) fn count_tracked(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("SELECT COUNT(*) FROM issued_certs WHERE status != 'revoked'", [], |r| r.get(0))
        .map_err(StoreError::sqlite("counting tracked certificates"))
}
