//! `agent_registrations`: one agent descriptor per node key (discovery routes come with their issue;
//! revocation already removes a revoked node's registration, as upstream does).

use rusqlite::Connection;

use super::error::StoreError;

/// Deletes the registration of `node_public_key`; true when one existed.
pub fn delete(conn: &Connection, node_public_key: &str) -> Result<bool, StoreError> {
    conn.execute("DELETE FROM agent_registrations WHERE node_public_key = ?1", [node_public_key])
        .map(|n| n > 0)
        .map_err(StoreError::sqlite("deleting an agent registration"))
}
