//! Database compatibility: a database laid out by upstream 0.16 (created here with upstream's DDL
//! through plain SQLite, independent of gm's own schema code) is served unchanged; gm creates
//! exactly versions 1–6 in a fresh file; only gm's own `gm_…` indexes are added.

use crate::harness::{sandbox, GmServer, TempDir};

const UPSTREAM_DDL: &str = "
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
CREATE TABLE invite_tokens (token_id TEXT PRIMARY KEY, assigned_roles_json TEXT NOT NULL, max_validity_hours INTEGER NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL, used_at TEXT, used_by_key TEXT);
CREATE TABLE issued_certs (cert_id TEXT PRIMARY KEY, node_public_key TEXT NOT NULL, cert_json TEXT NOT NULL, roles_json TEXT NOT NULL, issued_at TEXT NOT NULL, expires_at TEXT NOT NULL, remote_addr TEXT, status TEXT NOT NULL DEFAULT 'issued', last_heartbeat TEXT, heartbeat_status TEXT, renewed_from TEXT, revoked_at TEXT, revocation_reason TEXT, max_validity_hours INTEGER);
CREATE INDEX idx_issued_certs_node_public_key ON issued_certs(node_public_key);
CREATE TABLE nonces (scope TEXT NOT NULL, nonce TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (scope, nonce));
CREATE TABLE crl_versions (sequence INTEGER PRIMARY KEY, crl_json TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL);
CREATE TABLE policy_versions (policy_id TEXT PRIMARY KEY, policy_json TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL);
CREATE TABLE audit_events (event_id TEXT PRIMARY KEY, event_json TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE agent_registrations (node_public_key TEXT PRIMARY KEY, agent_id TEXT NOT NULL, network_name TEXT NOT NULL, capabilities_csv TEXT NOT NULL, endpoint_host TEXT NOT NULL, endpoint_port INTEGER NOT NULL, endpoint_scheme TEXT NOT NULL, descriptor_json TEXT NOT NULL, registered_at TEXT NOT NULL, expires_at TEXT NOT NULL);
CREATE TABLE membership_attestations (attestation_id TEXT PRIMARY KEY, issuer_sovereign_id TEXT NOT NULL, subject_id TEXT NOT NULL, subject_public_key TEXT, roles_json TEXT NOT NULL, status TEXT NOT NULL, attestation_json TEXT NOT NULL, issued_at TEXT NOT NULL, valid_from TEXT NOT NULL, expires_at TEXT NOT NULL, revoked_at TEXT, revocation_reason TEXT);
CREATE TABLE recognition_policies (policy_id TEXT PRIMARY KEY, policy_json TEXT NOT NULL, active INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE recognition_treaties (treaty_id TEXT PRIMARY KEY, issuer_sovereign_id TEXT NOT NULL, subject_sovereign_id TEXT NOT NULL, status TEXT NOT NULL, treaty_json TEXT NOT NULL, issued_at TEXT NOT NULL, valid_from TEXT NOT NULL, expires_at TEXT NOT NULL, revoked_at TEXT, revocation_reason TEXT);
CREATE TABLE sovereign_revocation_feeds (feed_id TEXT PRIMARY KEY, issuer_sovereign_id TEXT NOT NULL, sequence INTEGER NOT NULL, feed_json TEXT NOT NULL, imported_at TEXT NOT NULL);
CREATE TABLE imported_sovereign_revocations (issuer_sovereign_id TEXT NOT NULL, attestation_id TEXT NOT NULL, feed_id TEXT NOT NULL, sequence INTEGER NOT NULL, reason TEXT, imported_at TEXT NOT NULL, PRIMARY KEY (issuer_sovereign_id, attestation_id));
INSERT INTO schema_version VALUES (1,'2026-01-01T00:00:00.000001+00:00'),(2,'2026-01-01T00:00:00.000002+00:00'),(3,'2026-01-01T00:00:00.000003+00:00'),(4,'2026-01-01T00:00:00.000004+00:00'),(5,'2026-01-01T00:00:00.000005+00:00'),(6,'2026-01-01T00:00:00.000006+00:00');
PRAGMA journal_mode = WAL;
";

fn dump(conn: &rusqlite::Connection, table: &str) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY 1")).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| Ok((0..n).map(|i| format!("{:?}", r.get_ref(i).unwrap())).collect::<Vec<_>>().join("|")))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

#[test]
fn upstream_database_is_served_unchanged() {
    let dir = TempDir::new("store-upstream");
    let home = sandbox(&dir);
    let db = home.join("na.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(UPSTREAM_DDL).unwrap();
    let now = chrono::Utc::now();
    let recent = gm::model::timestamp::isoformat_utc(now - chrono::Duration::seconds(30));
    let old = gm::model::timestamp::isoformat_utc(now - chrono::Duration::seconds(900));
    conn.execute(
        "INSERT INTO issued_certs VALUES ('c-1','KEY1','{}','[\"role:client\"]','2026-01-01T00:00:00+00:00','2099-01-01T00:00:00+00:00','10.0.0.1','issued',?1,'healthy',NULL,NULL,NULL,168)",
        [&recent],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO issued_certs VALUES ('c-2','KEY2','{}','[]','2026-01-01T00:00:00+00:00','2099-01-01T00:00:00+00:00',NULL,'issued',?1,'joined',NULL,NULL,NULL,NULL)",
        [&old],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO issued_certs VALUES ('c-3','KEY3','{}','[]','2026-01-01T00:00:00+00:00','2099-01-01T00:00:00+00:00',NULL,'revoked',?1,'healthy',NULL,'2026-01-02T00:00:00+00:00','key_compromise',NULL)",
        [&recent],
    )
    .unwrap();
    let tables = ["schema_version", "issued_certs", "invite_tokens", "nonces", "audit_events"];
    let before: Vec<Vec<String>> = tables.iter().map(|t| dump(&conn, t)).collect();
    drop(conn);

    let server = GmServer::start(&home, &[]);
    let nodes = server.get("/nodes").text();
    assert_eq!(
        nodes,
        format!("{{\"count\":1,\"nodes\":{{\"c-1\":{{\"expires_at\":\"2099-01-01T00:00:00+00:00\",\"last_heartbeat\":\"{recent}\",\"node_public_key\":\"KEY1\",\"remote_addr\":\"10.0.0.1\",\"roles\":[\"role:client\"],\"status\":\"healthy\"}}}}}}\n")
    );
    let metrics = server.get("/metrics").text();
    assert!(metrics.contains("\ngenesis_mesh_na_issued_certs_total 3\n"), "{metrics}");
    assert!(metrics.contains("\ngenesis_mesh_na_active_nodes 1\n"), "{metrics}");
    assert!(metrics.contains("\ngenesis_mesh_na_revoked_certs_total 1\n"), "{metrics}");
    assert!(metrics.contains("\ngenesis_mesh_na_crl_sequence 0\n"), "{metrics}");
    assert_eq!(server.get("/readyz").status, 200);
    drop(server);

    let conn = rusqlite::Connection::open(&db).unwrap();
    let after: Vec<Vec<String>> = tables.iter().map(|t| dump(&conn, t)).collect();
    assert_eq!(before, after, "upstream rows are never rewritten");
    let gm_indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type='index' AND name LIKE 'gm_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        gm_indexes,
        vec![
            "gm_audit_events_created_at",
            "gm_audit_trust_changes",
            "gm_issued_certs_heartbeat_status",
            "gm_issued_certs_renewed_from",
            "gm_issued_certs_status",
            "gm_nonces_created_at"
        ]
    );
}

#[test]
fn fresh_database_gets_versions_one_to_six_and_wal() {
    let dir = TempDir::new("store-fresh");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    assert_eq!(server.get("/readyz").status, 200);
    drop(server);
    let conn = rusqlite::Connection::open(home.join("na.db")).unwrap();
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM schema_version ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 6]);
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let tables: i64 =
        conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type='table'", [], |r| r.get(0)).unwrap();
    assert_eq!(tables, 13);
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('issued_certs')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(columns.last().map(String::as_str), Some("max_validity_hours"));
}
