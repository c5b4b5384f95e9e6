//! `agent_registrations`: one agent descriptor per node key (discovery routes come with their issue;
//! revocation already removes a revoked node's registration, as upstream does).

use rusqlite::Connection;

use super::error::StoreError;

/// Deletes the registration of `node_public_key`; true when one existed.
pub(crate) fn delete(conn: &Connection, node_public_key: &str) -> Result<bool, StoreError> {
    conn.execute("DELETE FROM agent_registrations WHERE node_public_key = ?1", [node_public_key])
        .map(|n| n > 0)
        .map_err(StoreError::sqlite("deleting an agent registration"))
}

/// A registration to upsert.
pub(crate) struct Registration<'a> {
    /// Node key.
    pub node_public_key: &'a str,
    /// Agent id.
    pub agent_id: &'a str,
    /// Network name.
    pub network_name: &'a str,
    /// Sorted unique tags joined by `,`.
    pub capabilities_csv: &'a str,
    /// Endpoint host.
    pub host: &'a str,
    /// Endpoint port.
    pub port: i64,
    /// Endpoint scheme.
    pub scheme: &'a str,
    /// Declaration-order descriptor JSON.
    pub descriptor_json: &'a str,
    /// Registration time (isoformat).
    pub registered_at: &'a str,
    /// Expiry (isoformat).
    pub expires_at: &'a str,
}

/// Inserts or replaces the registration of a node key.
pub(crate) fn upsert(conn: &Connection, r: &Registration<'_>) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR REPLACE INTO agent_registrations (node_public_key, agent_id, network_name, capabilities_csv, endpoint_host,
           endpoint_port, endpoint_scheme, descriptor_json, registered_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        rusqlite::params![
            r.node_public_key,
            r.agent_id,
            r.network_name,
            r.capabilities_csv,
            r.host,
            r.port,
            r.scheme,
            r.descriptor_json,
            r.registered_at,
            r.expires_at
        ],
    )
    .map(|_| ())
    .map_err(StoreError::sqlite("storing an agent registration"))
}

/// Deletes registrations whose `expires_at` is at or before `now` (isoformat).
pub(crate) fn delete_expired(conn: &Connection, now: &str) -> Result<usize, StoreError> {
    conn.execute("DELETE FROM agent_registrations WHERE expires_at <= ?1", [now])
        .map_err(StoreError::sqlite("deleting expired agents"))
}

/// Every stored descriptor JSON with its capabilities, newest registration first.
pub(crate) fn list(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT descriptor_json, capabilities_csv FROM agent_registrations ORDER BY registered_at DESC")
        .map_err(StoreError::sqlite("listing agents"))?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(StoreError::sqlite("listing agents"))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("listing agents"))
}

/// One stored descriptor JSON.
pub(crate) fn get(conn: &Connection, node_public_key: &str) -> Result<Option<String>, StoreError> {
    use rusqlite::OptionalExtension;
    conn.query_row(
        "SELECT descriptor_json FROM agent_registrations WHERE node_public_key = ?1",
        [node_public_key],
        |r| r.get(0),
    )
    .optional()
    .map_err(StoreError::sqlite("reading an agent"))
}

/// Whether `node_public_key` owns a certificate that is not revoked and has not expired.
pub(crate) fn has_active_certificate(conn: &Connection, node_public_key: &str, now: &str) -> Result<bool, StoreError> {
    conn.query_row(
        "SELECT COUNT(*) FROM issued_certs WHERE node_public_key = ?1 AND status != 'revoked' AND expires_at > ?2",
        [node_public_key, now],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(StoreError::sqlite("checking agent certificates"))
}
