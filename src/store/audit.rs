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

/// How many events of type `event_type` were written at or after `since` (an isoformat time, as
/// `created_at` is stored; readiness counts recent legacy admin signatures with it).
pub fn count_since(conn: &Connection, event_type: &str, since: &str) -> Result<i64, StoreError> {
    let pattern = format!("%\"event_type\": \"{event_type}\"%");
    conn.query_row(
        "SELECT COUNT(*) FROM audit_events WHERE created_at >= ?1 AND event_json LIKE ?2",
        params![since, pattern],
        |r| r.get(0),
    )
    .map_err(StoreError::sqlite("counting audit events"))
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

/// Calls `f(event_json, created_at)` for every event, oldest first by the string order of `created_at`
/// (upstream's `ORDER BY created_at`), one row at a time so a large table is never held in memory.
/// Returns the number of rows read; an error from `f` stops the walk and is returned as is, so callers
/// keep their own error type (`E` only needs to hold a [`StoreError`]).
pub fn for_each_event<E: From<StoreError>>(
    conn: &Connection,
    mut f: impl FnMut(&str, &str) -> Result<(), E>,
) -> Result<usize, E> {
    let mut stmt = conn
        .prepare("SELECT event_json, created_at FROM audit_events ORDER BY created_at")
        .map_err(StoreError::sqlite("reading audit events"))?;
    let mut rows = stmt.query([]).map_err(StoreError::sqlite("reading audit events"))?;
    let mut count = 0usize;
    while let Some(row) = rows.next().map_err(StoreError::sqlite("reading audit events"))? {
        let event_json: String = row.get(0).map_err(StoreError::sqlite("reading audit events"))?;
        let created_at: String = row.get(1).map_err(StoreError::sqlite("reading audit events"))?;
        f(&event_json, &created_at)?;
        count = count.saturating_add(1);
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{OpenMode, Store};

    #[test]
    fn for_each_event_walks_rows_in_created_at_string_order() {
        let store =
            Store::open(std::path::Path::new(":memory:"), OpenMode::Serve, "2026-01-01T00:00:00+00:00").unwrap();
        store
            .write(|c| {
                insert(c, "b", "{\"n\": 2}", "2026-01-02T00:00:00+00:00")?;
                insert(c, "a", "{\"n\": 1}", "2026-01-01T00:00:00+00:00")?;
                insert(c, "c", "{\"n\": 3}", "2026-01-10T00:00:00+00:00")
            })
            .unwrap();
        let mut seen = Vec::new();
        let count = store
            .read(|c| {
                for_each_event::<StoreError>(c, |json, at| {
                    seen.push((json.to_string(), at.to_string()));
                    Ok(())
                })
            })
            .unwrap();
        assert_eq!(count, 3);
        let jsons: Vec<&str> = seen.iter().map(|(j, _)| j.as_str()).collect();
        assert_eq!(jsons, ["{\"n\": 1}", "{\"n\": 2}", "{\"n\": 3}"]);
    }

    #[test]
    fn for_each_event_stops_at_the_first_callback_error() {
        let store =
            Store::open(std::path::Path::new(":memory:"), OpenMode::Serve, "2026-01-01T00:00:00+00:00").unwrap();
        store
            .write(|c| {
                insert(c, "a", "{}", "2026-01-01T00:00:00+00:00")?;
                insert(c, "b", "{}", "2026-01-02T00:00:00+00:00")
            })
            .unwrap();
        let mut calls = 0;
        let err = store
            .read(|c| {
                for_each_event::<StoreError>(c, |_, _| {
                    calls += 1;
                    Err(StoreError::ReadOnly)
                })
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::ReadOnly));
        assert_eq!(calls, 1);
    }
}
