//! `recognition_policies`: the active recognition policy (at most one row with `active = 1`).

use rusqlite::{params, Connection, OptionalExtension};

use super::error::StoreError;

/// The active policy's JSON.
pub(crate) fn active_json(conn: &Connection) -> Result<Option<String>, StoreError> {
    conn.query_row(
        "SELECT policy_json FROM recognition_policies WHERE active = 1 ORDER BY created_at DESC LIMIT 1",
        [],
        |r| r.get(0),
    )
    .optional()
    .map_err(StoreError::sqlite("reading the recognition policy"))
}

/// Stores a policy as the only active one (same id overwrites).
pub(crate) fn activate(conn: &Connection, policy_id: &str, json: &str, created_at: &str) -> Result<(), StoreError> {
    conn.execute("UPDATE recognition_policies SET active = 0 WHERE active != 0", [])
        .map_err(StoreError::sqlite("deactivating recognition policies"))?;
    conn.execute(
        "INSERT OR REPLACE INTO recognition_policies (policy_id, policy_json, active, created_at) VALUES (?1, ?2, 1, ?3)",
        params![policy_id, json, created_at],
    )
    .map(|_| ())
    .map_err(StoreError::sqlite("storing a recognition policy"))
}
