//! `sovereign_revocation_feeds` and `imported_sovereign_revocations`: revocation feeds imported
//! from other sovereigns. Append-only; the highest accepted sequence per issuer is the floor for the
//! next import.

use rusqlite::{params, Connection, OptionalExtension};

use super::error::StoreError;

/// Highest sequence imported for `issuer`, if any.
pub(crate) fn latest_sequence(conn: &Connection, issuer: &str) -> Result<Option<i64>, StoreError> {
    conn.query_row(
        "SELECT MAX(sequence) FROM sovereign_revocation_feeds WHERE issuer_sovereign_id = ?1",
        [issuer],
        |r| r.get::<_, Option<i64>>(0),
    )
    .optional()
    .map(Option::flatten)
    .map_err(StoreError::sqlite("reading feed sequences"))
}

/// An accepted feed to persist.
pub struct ImportedFeed<'a> {
    /// Feed id.
    pub feed_id: &'a str,
    /// Issuer.
    pub issuer: &'a str,
    /// Sequence.
    pub sequence: i64,
    /// Declaration-order `feed_json`.
    pub feed_json: &'a str,
    /// `(attestation id, reason)` for every revoked id.
    pub revocations: &'a [(String, Option<String>)],
    /// Import time (isoformat).
    pub imported_at: &'a str,
}

/// Persists an accepted feed; false when its sequence is no longer above the floor (a concurrent
/// import won).
pub fn insert(conn: &Connection, f: &ImportedFeed<'_>) -> Result<bool, StoreError> {
    if latest_sequence(conn, f.issuer)?.is_some_and(|l| f.sequence <= l) {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO sovereign_revocation_feeds (feed_id, issuer_sovereign_id, sequence, feed_json, imported_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![f.feed_id, f.issuer, f.sequence, f.feed_json, f.imported_at],
    )
    .map_err(StoreError::sqlite("storing a feed"))?;
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO imported_sovereign_revocations (issuer_sovereign_id, attestation_id, feed_id, sequence, reason, imported_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (issuer_sovereign_id, attestation_id) DO UPDATE SET
               feed_id = excluded.feed_id, sequence = excluded.sequence, reason = excluded.reason, imported_at = excluded.imported_at",
        )
        .map_err(StoreError::sqlite("storing imported revocations"))?;
    for (id, reason) in f.revocations {
        stmt.execute(params![f.issuer, id, f.feed_id, f.sequence, reason, f.imported_at])
            .map_err(StoreError::sqlite("storing imported revocations"))?;
    }
    Ok(true)
}

/// Attestation ids imported as revoked for `issuer`.
pub(crate) fn imported_ids(conn: &Connection, issuer: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT attestation_id FROM imported_sovereign_revocations WHERE issuer_sovereign_id = ?1 ORDER BY attestation_id")
        .map_err(StoreError::sqlite("reading imported revocations"))?;
    let rows = stmt.query_map([issuer], |r| r.get(0)).map_err(StoreError::sqlite("reading imported revocations"))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("reading imported revocations"))
}

/// One imported revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImportedRevocation {
    /// Issuer.
    pub issuer_sovereign_id: String,
    /// Attestation id.
    pub attestation_id: String,
    /// Feed that carried it.
    pub feed_id: String,
    /// Feed sequence.
    pub sequence: i64,
    /// Reason, when the feed gave one.
    pub reason: Option<String>,
    /// Import time.
    pub imported_at: String,
}

/// Every imported revocation ordered by (issuer, attestation id).
pub(crate) fn all_imported(conn: &Connection) -> Result<Vec<ImportedRevocation>, StoreError> {
    let mut stmt = conn
        .prepare(
            "SELECT issuer_sovereign_id, attestation_id, feed_id, sequence, reason, imported_at
             FROM imported_sovereign_revocations ORDER BY issuer_sovereign_id, attestation_id",
        )
        .map_err(StoreError::sqlite("reading imported revocations"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(ImportedRevocation {
                issuer_sovereign_id: r.get(0)?,
                attestation_id: r.get(1)?,
                feed_id: r.get(2)?,
                sequence: r.get(3)?,
                reason: r.get(4)?,
                imported_at: r.get(5)?,
            })
        })
        .map_err(StoreError::sqlite("reading imported revocations"))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("reading imported revocations"))
}

/// One imported feed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FeedRow {
    /// Feed id.
    pub feed_id: String,
    /// Issuer.
    pub issuer_sovereign_id: String,
    /// Sequence.
    pub sequence: i64,
    /// Stored `feed_json`.
    pub feed_json: String,
    /// Import time.
    pub imported_at: String,
}

/// Every imported feed ordered by (issuer, sequence).
pub(crate) fn all_feeds(conn: &Connection) -> Result<Vec<FeedRow>, StoreError> {
    let mut stmt = conn
        .prepare(
            "SELECT feed_id, issuer_sovereign_id, sequence, feed_json, imported_at FROM sovereign_revocation_feeds
             ORDER BY issuer_sovereign_id, sequence",
        )
        .map_err(StoreError::sqlite("reading feeds"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(FeedRow {
                feed_id: r.get(0)?,
                issuer_sovereign_id: r.get(1)?,
                sequence: r.get(2)?,
                feed_json: r.get(3)?,
                imported_at: r.get(4)?,
            })
        })
        .map_err(StoreError::sqlite("reading feeds"))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("reading feeds"))
}
