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

/// The newest `limit` events whose type contains one of `words`, newest first (dashboard).
pub fn recent_matching(conn: &Connection, words: &[&str], limit: usize) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT event_json FROM audit_events ORDER BY created_at DESC LIMIT 2000")
        .map_err(StoreError::sqlite("reading audit events"))?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(StoreError::sqlite("reading audit events"))?;
    let mut out = Vec::new();
    for row in rows {
        let json = row.map_err(StoreError::sqlite("reading audit events"))?;
        let event_type = json.split("\"event_type\": \"").nth(1).and_then(|t| t.split('"').next()).unwrap_or_default();
        if words.iter().any(|w| event_type.contains(w)) {
            out.push(json);
            if out.len() == limit {
                break;
            }
        }
    }
    Ok(out)
}
