//! `policy_versions`: signed policy manifests; at most one row is active.

use rusqlite::{params, Connection, OptionalExtension};

use super::error::StoreError;

/// The active policy's `policy_json`, if any.
pub fn active_json(conn: &Connection) -> Result<Option<String>, StoreError> {
    conn.query_row(
        "SELECT policy_json FROM policy_versions WHERE active = 1 ORDER BY created_at DESC LIMIT 1",
        [],
        |r| r.get(0),
    )
    .optional()
    .map_err(StoreError::sqlite("reading the active policy"))
}

/// Stores `policy_json` under `policy_id` as the only active version (same id overwrites).
pub fn activate_new(
    conn: &Connection,
    policy_id: &str,
    policy_json: &str,
    created_at: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE policy_versions SET active = 0 WHERE active != 0",
        [],
    )
    .map_err(StoreError::sqlite("deactivating policies"))?;
    conn.execute(
        "INSERT OR REPLACE INTO policy_versions (policy_id, policy_json, active, created_at) VALUES (?1, ?2, 1, ?3)",
        params![policy_id, policy_json, created_at],
    )
    .map_err(StoreError::sqlite("storing a policy"))?;
    Ok(())
}

/// Number of stored policy versions (`genesis_mesh_na_policy_versions_total`).
pub fn count(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("SELECT COUNT(*) FROM policy_versions", [], |r| r.get(0))
        .map_err(StoreError::sqlite("counting policies"))
}
