//! Upstream's 0.16 schema, migrations 001–006 (`na-wire.md` §13), and the version gate.
//!
//! A database created by upstream opens unchanged: migrations are `CREATE … IF NOT EXISTS` and only
//! versions missing from `schema_version` are applied (as upstream does at every start). gm never
//! inserts `schema_version` rows ≥ 7 (upstream 1.x owns those numbers, §13.4). gm's own indexes are
//! named `gm_…` and are created only by [`ensure_gm_indexes`] (called by `gm serve`); they make the
//! `/metrics` and `/nodes` counts indexed queries on big databases.

use rusqlite::{Connection, OptionalExtension};

use super::error::StoreError;

/// The highest upstream schema version gm implements.
pub(crate) const KNOWN_VERSION: i64 = 6;

/// Every table of the 0.16 schema.
pub(crate) const TABLES: [&str; 13] = [
    "schema_version",
    "invite_tokens",
    "issued_certs",
    "nonces",
    "crl_versions",
    "policy_versions",
    "audit_events",
    "agent_registrations",
    "membership_attestations",
    "recognition_policies",
    "recognition_treaties",
    "sovereign_revocation_feeds",
    "imported_sovereign_revocations",
];

const BOOTSTRAP: &str = "CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL
)";

const MIGRATIONS: [(i64, &str); 6] = [
    (
        1,
        "CREATE TABLE IF NOT EXISTS invite_tokens (
    token_id TEXT PRIMARY KEY,
    assigned_roles_json TEXT NOT NULL,
    max_validity_hours INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    used_by_key TEXT
);
CREATE TABLE IF NOT EXISTS issued_certs (
    cert_id TEXT PRIMARY KEY,
    node_public_key TEXT NOT NULL,
    cert_json TEXT NOT NULL,
    roles_json TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    remote_addr TEXT,
    status TEXT NOT NULL DEFAULT 'issued',
    last_heartbeat TEXT,
    heartbeat_status TEXT,
    renewed_from TEXT,
    revoked_at TEXT,
    revocation_reason TEXT
);
CREATE INDEX IF NOT EXISTS idx_issued_certs_node_public_key ON issued_certs(node_public_key);
CREATE TABLE IF NOT EXISTS nonces (
    scope TEXT NOT NULL,
    nonce TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (scope, nonce)
);
CREATE TABLE IF NOT EXISTS crl_versions (
    sequence INTEGER PRIMARY KEY,
    crl_json TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS policy_versions (
    policy_id TEXT PRIMARY KEY,
    policy_json TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_events (
    event_id TEXT PRIMARY KEY,
    event_json TEXT NOT NULL,
    created_at TEXT NOT NULL
);",
    ),
    (2, "ALTER TABLE issued_certs ADD COLUMN max_validity_hours INTEGER;"),
    (
        3,
        "CREATE TABLE IF NOT EXISTS agent_registrations (
    node_public_key TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    network_name TEXT NOT NULL,
    capabilities_csv TEXT NOT NULL,
    endpoint_host TEXT NOT NULL,
    endpoint_port INTEGER NOT NULL,
    endpoint_scheme TEXT NOT NULL,
    descriptor_json TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_agent_registrations_capabilities ON agent_registrations(capabilities_csv);
CREATE INDEX IF NOT EXISTS idx_agent_registrations_expires ON agent_registrations(expires_at);",
    ),
    (
        4,
        "CREATE TABLE IF NOT EXISTS membership_attestations (
    attestation_id TEXT PRIMARY KEY,
    issuer_sovereign_id TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    subject_public_key TEXT,
    roles_json TEXT NOT NULL,
    status TEXT NOT NULL,
    attestation_json TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    revocation_reason TEXT
);
CREATE INDEX IF NOT EXISTS idx_membership_attestations_issuer ON membership_attestations(issuer_sovereign_id);
CREATE INDEX IF NOT EXISTS idx_membership_attestations_subject ON membership_attestations(subject_id);
CREATE INDEX IF NOT EXISTS idx_membership_attestations_status ON membership_attestations(status);
CREATE INDEX IF NOT EXISTS idx_membership_attestations_expires ON membership_attestations(expires_at);
CREATE TABLE IF NOT EXISTS recognition_policies (
    policy_id TEXT PRIMARY KEY,
    policy_json TEXT NOT NULL,
    active INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_recognition_policies_active ON recognition_policies(active);",
    ),
    (
        5,
        "CREATE TABLE IF NOT EXISTS recognition_treaties (
    treaty_id TEXT PRIMARY KEY,
    issuer_sovereign_id TEXT NOT NULL,
    subject_sovereign_id TEXT NOT NULL,
    status TEXT NOT NULL,
    treaty_json TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    revocation_reason TEXT
);
CREATE INDEX IF NOT EXISTS idx_recognition_treaties_issuer ON recognition_treaties(issuer_sovereign_id);
CREATE INDEX IF NOT EXISTS idx_recognition_treaties_subject ON recognition_treaties(subject_sovereign_id);
CREATE INDEX IF NOT EXISTS idx_recognition_treaties_status ON recognition_treaties(status);",
    ),
    (
        6,
        "CREATE TABLE IF NOT EXISTS sovereign_revocation_feeds (
    feed_id TEXT PRIMARY KEY,
    issuer_sovereign_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    feed_json TEXT NOT NULL,
    imported_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_sovereign_revocation_feeds_issuer_sequence ON sovereign_revocation_feeds(issuer_sovereign_id, sequence);
CREATE INDEX IF NOT EXISTS idx_sovereign_revocation_feeds_issuer ON sovereign_revocation_feeds(issuer_sovereign_id);
CREATE TABLE IF NOT EXISTS imported_sovereign_revocations (
    issuer_sovereign_id TEXT NOT NULL,
    attestation_id TEXT NOT NULL,
    feed_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    reason TEXT,
    imported_at TEXT NOT NULL,
    PRIMARY KEY (issuer_sovereign_id, attestation_id)
);
CREATE INDEX IF NOT EXISTS idx_imported_sovereign_revocations_issuer ON imported_sovereign_revocations(issuer_sovereign_id);",
    ),
];

/// gm's own indexes on upstream tables (documented in README "Database"): they turn the `/metrics`
/// revoked count, the `/nodes` active set, renewal-chain lookups (D5) and nonce pruning (D18) into
/// indexed queries. The heartbeat index also holds `status`, so the `/metrics` active count never
/// loads a row; it replaces the `last_heartbeat`-only index of earlier gm versions (dropped).
/// The audit indexes serve the audit retention (`gm managed audit-prune`) by age and the
/// dashboard's recent changes (G4): the latter is partial, holding only the trust-changing events,
/// so the stream of verify decisions and auth failures never updates it (an expression index over
/// every row cost the audited public verify route about 8% of its throughput).
const GM_INDEXES: &str = concat!(
    "CREATE INDEX IF NOT EXISTS gm_issued_certs_status ON issued_certs(status);
DROP INDEX IF EXISTS gm_issued_certs_last_heartbeat;
CREATE INDEX IF NOT EXISTS gm_issued_certs_heartbeat_status ON issued_certs(last_heartbeat, status);
CREATE INDEX IF NOT EXISTS gm_issued_certs_renewed_from ON issued_certs(renewed_from);
CREATE INDEX IF NOT EXISTS gm_nonces_created_at ON nonces(created_at);
CREATE INDEX IF NOT EXISTS gm_audit_events_created_at ON audit_events(created_at);
DROP INDEX IF EXISTS gm_audit_events_type;
CREATE INDEX IF NOT EXISTS gm_audit_trust_changes ON audit_events(created_at) WHERE ",
    super::audit::trust_change_filter!(),
    ";"
);

/// The versions recorded in `schema_version` (empty when the table does not exist).
pub(crate) fn applied_versions(conn: &Connection) -> Result<Vec<i64>, StoreError> {
    if !table_exists(conn, "schema_version")? {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare("SELECT version FROM schema_version ORDER BY version")
        .map_err(StoreError::sqlite("reading schema_version"))?;
    let rows = stmt.query_map([], |r| r.get::<_, i64>(0)).map_err(StoreError::sqlite("reading schema_version"))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::sqlite("reading schema_version"))
}

/// True when `name` is a table of the database.
pub(crate) fn table_exists(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [name], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n > 0)
    .map_err(StoreError::sqlite("reading sqlite_master"))
}

/// The tables of [`TABLES`] that are missing.
pub(crate) fn missing_tables(conn: &Connection) -> Result<Vec<&'static str>, StoreError> {
    let mut missing = Vec::new();
    for t in TABLES {
        if !table_exists(conn, t)? {
            missing.push(t);
        }
    }
    Ok(missing)
}

/// Applies every migration not yet recorded, each in its own transaction with its
/// `schema_version` row, exactly as upstream does at start. `applied_at` is the isoformat time.
pub(crate) fn migrate(conn: &mut Connection, applied_at: &str) -> Result<Vec<i64>, StoreError> {
    conn.execute_batch(BOOTSTRAP).map_err(StoreError::sqlite("creating schema_version"))?;
    let done = applied_versions(conn)?;
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS {
        if done.contains(&version) {
            continue;
        }
        let tx = conn.transaction().map_err(StoreError::sqlite("starting a migration"))?;
        if version == 2 && column_exists(&tx, "issued_certs", "max_validity_hours")? {
            // A database whose 002 column exists without its version row: record it only.
        } else {
            tx.execute_batch(sql).map_err(StoreError::sqlite("applying a migration"))?;
        }
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
            rusqlite::params![version, applied_at],
        )
        .map_err(StoreError::sqlite("recording a migration"))?;
        tx.commit().map_err(StoreError::sqlite("committing a migration"))?;
        applied.push(version);
    }
    Ok(applied)
}

fn column_exists(conn: &Connection, table: &str, column: &str) -> Result<bool, StoreError> {
    let mut stmt =
        conn.prepare("SELECT name FROM pragma_table_info(?1)").map_err(StoreError::sqlite("reading table info"))?;
    let names = stmt
        .query_map([table], |r| r.get::<_, String>(0))
        .map_err(StoreError::sqlite("reading table info"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(StoreError::sqlite("reading table info"))?;
    Ok(names.iter().any(|n| n == column))
}

/// Creates gm's own `gm_…` indexes if missing, first dropping a `gm_audit_trust_changes` whose
/// condition is not today's [`super::audit::trust_change_filter!`] (gm before issue 19's eighth part
/// spelled it as an `IN` list): the query's WHERE must contain the index's word for word, or the
/// dashboard's recent changes would scan every audit row. Rebuilding it reads each audit row once.
pub(crate) fn ensure_gm_indexes(conn: &Connection) -> Result<(), StoreError> {
    let trust_index: Option<String> = conn
        .query_row("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'gm_audit_trust_changes'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(StoreError::sqlite("reading gm indexes"))?;
    if trust_index.is_some_and(|sql| !sql.contains(super::audit::trust_change_filter!())) {
        conn.execute_batch("DROP INDEX gm_audit_trust_changes")
            .map_err(StoreError::sqlite("dropping a stale gm index"))?;
    }
    conn.execute_batch(GM_INDEXES).map_err(StoreError::sqlite("creating gm indexes"))
}

/// The highest recorded version, 0 when none.
pub(crate) fn current_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(applied_versions(conn)?.last().copied().unwrap_or(0))
}
