//! `audit_events`: append-only decision log in upstream's row format (`na-wire.md` §14.1).

use rusqlite::{params, Connection};

use super::error::StoreError;

/// Appends one event.
pub fn insert(conn: &Connection, event_id: &str, event_json: &str, created_at: &str) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO audit_events (event_id, event_json, created_at) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![event_id, event_json, created_at]))
        .map(|_| ())
        .map_err(StoreError::sqlite("writing an audit event"))
}

/// `event_json` of every event whose type is `event_type`, oldest first (tests, reports).
pub fn by_type(conn: &Connection, event_type: &str) -> Result<Vec<String>, StoreError> {
    let pattern = format!("%\"event_type\": \"{event_type}\"%");
    let mut stmt = conn
        .prepare("SELECT event_json FROM audit_events WHERE event_json LIKE ?1 ORDER BY created_at")
        .map_err(StoreError::sqlite("reading audit events"))?;
    let rows = stmt.query_map([pattern], |r| r.get(0)).map_err(StoreError::sqlite("reading audit events"))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("reading audit events"))
}
