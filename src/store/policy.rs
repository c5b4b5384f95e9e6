//! `policy_versions`: signed policy manifests; at most one row is active.

use rusqlite::{params, Connection, OptionalExtension};

use super::error::StoreError;

/// The active policy's `policy_json`, if any.
pub(crate) fn active_json(conn: &Connection) -> Result<Option<String>, StoreError> {
    conn.query_row(
        "SELECT policy_json FROM policy_versions WHERE active = 1 ORDER BY created_at DESC LIMIT 1",
        [],
        |r| r.get(0),
    )
    .optional()
    .map_err(StoreError::sqlite("reading the active policy"))
}

/// Stores `policy_json` under `policy_id` as the only active version (same id overwrites).
pub(crate) fn activate_new(
    conn: &Connection,
    policy_id: &str,
    policy_json: &str,
    created_at: &str,
) -> Result<(), StoreError> {
    conn.execute("UPDATE policy_versions SET active = 0 WHERE active != 0", [])
        .map_err(StoreError::sqlite("deactivating policies"))?;
    conn.execute(
        "INSERT OR REPLACE INTO policy_versions (policy_id, policy_json, active, created_at) VALUES (?1, ?2, 1, ?3)",
        params![policy_id, policy_json, created_at],
    )
    .map_err(StoreError::sqlite("storing a policy"))?;
    Ok(())
}

/// True when a version with `policy_id` is stored (active or not).
pub(crate) fn exists(conn: &Connection, policy_id: &str) -> Result<bool, StoreError> {
    conn.query_row("SELECT 1 FROM policy_versions WHERE policy_id = ?1", [policy_id], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
        .map_err(StoreError::sqlite("reading a policy"))
}

/// Number of stored policy versions (`genesis_mesh_na_policy_versions_total`).
pub fn count(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT COUNT(*) FROM policy_versions")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(StoreError::sqlite("counting policies"))
}

/// One row of `policy_versions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyRow {
    /// Policy id.
    pub policy_id: String,
    /// Declaration-order `policy_json`.
    pub policy_json: String,
    /// Whether it is the active version.
    pub active: bool,
    /// When it was stored (isoformat).
    pub created_at: String,
}

/// Every stored version, newest first (`GET /admin/policy/history`).
pub(crate) fn history(conn: &Connection) -> Result<Vec<PolicyRow>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT policy_id, policy_json, active, created_at FROM policy_versions ORDER BY created_at DESC")
        .map_err(StoreError::sqlite("reading policy history"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(PolicyRow {
                policy_id: r.get(0)?,
                policy_json: r.get(1)?,
                active: r.get::<_, i64>(2)? != 0,
                created_at: r.get(3)?,
            })
        })
        .map_err(StoreError::sqlite("reading policy history"))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("reading policy history"))
}

/// Makes an existing version the only active one; returns its `policy_json`, or `None` if unknown.
pub(crate) fn activate_existing(conn: &Connection, policy_id: &str) -> Result<Option<String>, StoreError> {
    let json: Option<String> = conn
        .query_row("SELECT policy_json FROM policy_versions WHERE policy_id = ?1", [policy_id], |r| r.get(0))
        .optional()
        .map_err(StoreError::sqlite("reading a policy"))?;
    if json.is_some() {
        conn.execute("UPDATE policy_versions SET active = CASE WHEN policy_id = ?1 THEN 1 ELSE 0 END", [policy_id])
            .map_err(StoreError::sqlite("activating a policy"))?;
    }
    Ok(json)
}
