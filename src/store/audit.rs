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

/// How many events of type `event_type` were written at or after `since` (an isoformat time, as
/// `created_at` is stored; readiness counts recent legacy admin signatures with it).
pub(crate) fn count_since(conn: &Connection, event_type: &str, since: &str) -> Result<i64, StoreError> {
    let pattern = format!("%\"event_type\": \"{event_type}\"%");
    conn.query_row(
        "SELECT COUNT(*) FROM audit_events WHERE created_at >= ?1 AND event_json LIKE ?2",
        params![since, pattern],
        |r| r.get(0),
    )
    .map_err(StoreError::sqlite("counting audit events"))
}

/// The audit event types the dashboard lists as recent changes (G4): what an operator changed in
/// the trust state. Upstream matched any type containing `recognition`, `attestation`,
/// `revocation` or `policy`, which includes the decisions of the public verify routes, so anyone
/// could push a fresh treaty out of the list; auth failures pushed it out of upstream's 2,000-row
/// scan. The same list is spelled in [`trust_change_filter!`], which the index and the query share.
#[cfg(test)]
pub(crate) const TRUST_CHANGE_EVENTS: [&str; 9] = [
    "recognition_treaty_issued",
    "recognition_treaty_revoked",
    "recognition_policy_saved",
    "sovereign_revocation_feed_imported",
    "membership_attestation_issued",
    "membership_attestation_revoked",
    "policy_published",
    "policy_rolled_back",
    "certificate_revoked",
];

/// The SQL condition "this row is a trust change" (one of [`TRUST_CHANGE_EVENTS`]), spelled once
/// for the partial index `gm_audit_trust_changes` and the query that must match it word for word
/// (SQLite uses a partial index only when the query's WHERE contains the index's). `json_valid`
/// guards `json_extract`, which would refuse a row whose `event_json` is not JSON.
///
/// A `CASE` rather than `IN (…)`: SQLite evaluates an `IN` list of more than two constants through
/// a temporary index it builds and drops again on every run of the statement, and this condition
/// runs on every audit insert (each join, revocation, auth failure), on the one writer thread. One
/// insert took 6.65 µs with the list and takes 4.77 µs with the `CASE` (`cargo bench --bench audit`;
/// BENCHMARKS.md, issue 19, eighth part).
macro_rules! trust_change_filter {
    () => {
        "(CASE (CASE WHEN json_valid(event_json) THEN json_extract(event_json, '$.event_type') END) \
         WHEN 'recognition_treaty_issued' THEN 1 WHEN 'recognition_treaty_revoked' THEN 1 \
         WHEN 'recognition_policy_saved' THEN 1 WHEN 'sovereign_revocation_feed_imported' THEN 1 \
         WHEN 'membership_attestation_issued' THEN 1 WHEN 'membership_attestation_revoked' THEN 1 \
         WHEN 'policy_published' THEN 1 WHEN 'policy_rolled_back' THEN 1 WHEN 'certificate_revoked' THEN 1 \
         ELSE 0 END) = 1"
    };
}
pub(crate) use trust_change_filter;

/// The newest `limit` trust changes ([`TRUST_CHANGE_EVENTS`]), newest first (dashboard recent
/// changes, G4). Read through the partial index `gm_audit_trust_changes`, which holds only those
/// rows: no number of other events (auth failures, verify decisions) can push a change out or make
/// the query slow, and inserting any other event never touches the index.
pub(crate) fn recent_trust_changes(conn: &Connection, limit: usize) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached(concat!(
            "SELECT event_json FROM audit_events WHERE ",
            trust_change_filter!(),
            " ORDER BY created_at DESC LIMIT ?1"
        ))
        .map_err(StoreError::sqlite("reading audit events"))?;
    let rows = stmt
        .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get::<_, String>(0))
        .map_err(StoreError::sqlite("reading audit events"))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("reading audit events"))
}

/// How many events the table holds.
pub fn count(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("SELECT COUNT(*) FROM audit_events", [], |r| r.get(0))
        .map_err(StoreError::sqlite("counting audit events"))
}

/// The `created_at` of the newest event after the newest `keep` (the first one a row-count
/// retention would drop), or `None` when the table holds at most `keep` events.
pub(crate) fn created_at_beyond(conn: &Connection, keep: u64) -> Result<Option<String>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT created_at FROM audit_events ORDER BY created_at DESC LIMIT 1 OFFSET ?1")
        .map_err(StoreError::sqlite("reading audit events"))?;
    let mut rows =
        stmt.query([i64::try_from(keep).unwrap_or(i64::MAX)]).map_err(StoreError::sqlite("reading audit events"))?;
    match rows.next().map_err(StoreError::sqlite("reading audit events"))? {
        Some(row) => Ok(Some(row.get(0).map_err(StoreError::sqlite("reading audit events"))?)),
        None => Ok(None),
    }
}

/// Deletes the events with these ids inside a write job; returns how many were deleted. Audit
/// retention passes only ids it has just read back from a verified export.
pub(crate) fn delete_ids(conn: &Connection, ids: &[String]) -> Result<usize, StoreError> {
    let mut stmt = conn
        .prepare_cached("DELETE FROM audit_events WHERE event_id = ?1")
        .map_err(StoreError::sqlite("deleting audit events"))?;
    let mut deleted = 0usize;
    for id in ids {
        deleted = deleted.saturating_add(stmt.execute([id]).map_err(StoreError::sqlite("deleting audit events"))?);
    }
    Ok(deleted)
}

/// Calls `f(event_json, created_at)` for every event, oldest first by the string order of `created_at`
/// (upstream's `ORDER BY created_at`), one row at a time so a large table is never held in memory.
/// Returns the number of rows read; an error from `f` stops the walk and is returned as is, so callers
/// keep their own error type (`E` only needs to hold a [`StoreError`]).
pub(crate) fn for_each_event<E: From<StoreError>>(
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
    fn the_trust_change_filter_lists_exactly_the_trust_change_events() {
        let filter = trust_change_filter!();
        let listed: Vec<&str> =
            filter.split(" WHEN '").skip(1).filter_map(|w| w.split_once("' THEN 1")).map(|(t, _)| t).collect();
        assert_eq!(listed, TRUST_CHANGE_EVENTS.to_vec());
        assert!(!filter.contains(" IN "), "an IN list makes SQLite build a temporary index per insert");
    }

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
    fn recent_of_types_ignores_any_number_of_other_events() {
        let store =
            Store::open(std::path::Path::new(":memory:"), OpenMode::Serve, "2026-01-01T00:00:00+00:00").unwrap();
        store.write(super::super::schema::ensure_gm_indexes).unwrap();
        let ev = |t: &str| {
            format!("{{\"created_at\": \"x\", \"details\": {{}}, \"event_id\": \"i\", \"event_type\": \"{t}\"}}")
        };
        store
            .write(move |c| {
                insert(c, "t1", &ev("recognition_treaty_issued"), "2026-01-01T00:00:01+00:00")?;
                insert(c, "p1", &ev("policy_published"), "2026-01-01T00:00:02+00:00")?;
                for i in 0..3000 {
                    insert(c, &format!("f{i}"), &ev("node_auth_failed"), "2026-01-02T00:00:00+00:00")?;
                }
                Ok(())
            })
            .unwrap();
        let got = store.read(|c| recent_trust_changes(c, 8)).unwrap();
        assert_eq!(got, vec![ev("policy_published"), ev("recognition_treaty_issued")]);
        let plan: String = store
            .read(|c| {
                c.query_row(
                    concat!(
                        "EXPLAIN QUERY PLAN SELECT event_json FROM audit_events WHERE ",
                        trust_change_filter!(),
                        " ORDER BY created_at DESC LIMIT 8"
                    ),
                    [],
                    |r| r.get::<_, String>(3),
                )
                .map_err(StoreError::sqlite("plan"))
            })
            .unwrap();
        assert!(plan.contains("gm_audit_trust_changes"), "{plan}");
        // Only trust changes are in the index: the 3,000 auth failures never touched it.
        let indexed: i64 = store
            .read(|c| {
                c.query_row(
                    concat!(
                        "SELECT COUNT(*) FROM audit_events INDEXED BY gm_audit_trust_changes WHERE ",
                        trust_change_filter!()
                    ),
                    [],
                    |r| r.get(0),
                )
                .map_err(StoreError::sqlite("count"))
            })
            .unwrap();
        assert_eq!(indexed, 2);
    }

    #[test]
    fn an_audit_insert_builds_no_temporary_index_and_an_old_in_list_index_is_rebuilt() {
        let store =
            Store::open(std::path::Path::new(":memory:"), OpenMode::Serve, "2026-01-01T00:00:00+00:00").unwrap();
        // The definition gm wrote before: the same events as an IN list.
        let old =
            "DROP INDEX gm_audit_trust_changes; CREATE INDEX gm_audit_trust_changes ON audit_events(created_at) WHERE \
                   (CASE WHEN json_valid(event_json) THEN json_extract(event_json, '$.event_type') END) IN \
                   ('recognition_treaty_issued', 'policy_published', 'certificate_revoked')";
        store.write(move |c| c.execute_batch(old).map_err(StoreError::sqlite("old index"))).unwrap();
        store.write(super::super::schema::ensure_gm_indexes).unwrap();
        let (sql, ephemeral) = store
            .read(|c| {
                let sql: String = c
                    .query_row("SELECT sql FROM sqlite_master WHERE name = 'gm_audit_trust_changes'", [], |r| r.get(0))
                    .map_err(StoreError::sqlite("sql"))?;
                let mut plan = c
                    .prepare(
                        "EXPLAIN INSERT INTO audit_events (event_id, event_json, created_at) VALUES ('e', '{}', 'x')",
                    )
                    .map_err(StoreError::sqlite("explain"))?;
                let ops: Vec<String> = plan
                    .query_map([], |r| r.get::<_, String>(1))
                    .map_err(StoreError::sqlite("explain"))?
                    .collect::<Result<_, _>>()
                    .map_err(StoreError::sqlite("explain"))?;
                Ok((sql, ops.iter().filter(|op| op.as_str() == "OpenEphemeral").count()))
            })
            .unwrap();
        assert!(sql.contains(trust_change_filter!()), "rebuilt with today's condition: {sql}");
        assert_eq!(ephemeral, 0, "an audit insert opens no temporary index");
        // Running it again keeps the index (no rebuild at every start).
        store.write(super::super::schema::ensure_gm_indexes).unwrap();
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
