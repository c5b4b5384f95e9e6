//! Unauthenticated audit growth (adversarial review F3, DEVIATIONS G3/G4): node-auth failures are
//! rate-limited per address and per node key and collapsed into counted rows; the dashboard's recent
//! changes are chosen by event type; audit retention prunes only rows it has exported first.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use gm::crypto::canonical::canonical_string;
use gm::json::{parse_str, Map, Value};

use crate::harness::{request, sandbox, wait_until, with_limits, Gm, GmServer, HttpResponse, TempDir};
use crate::signer::{field, Node, Operator};

fn count(home: &Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(home.join("na.db")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn audit_rows(home: &Path, event: &str) -> i64 {
    count(home, &format!("SELECT COUNT(*) FROM audit_events WHERE event_json LIKE '%\"event_type\": \"{event}\"%'"))
}

/// An unsigned heartbeat for `cert_id`/`key`, as if from `from` (the server trusts one proxy hop).
fn unsigned_heartbeat(addr: SocketAddr, from: &str, cert_id: &str, key: &str) -> HttpResponse {
    let body = format!("{{\"cert_id\":\"{cert_id}\",\"node_public_key\":\"{key}\",\"status\":\"healthy\"}}");
    request(addr, &format!(
        "POST /heartbeat HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Forwarded-For: {from}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

fn signed_heartbeat(addr: SocketAddr, from: &str, node: &Node, cert_id: &str) -> HttpResponse {
    let body =
        node.sign(&[("cert_id", Value::from(cert_id)), ("status", Value::from("healthy"))], &crate::signer::now_iso());
    let text = canonical_string(&Value::Object(body));
    request(addr, &format!(
        "POST /heartbeat HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Forwarded-For: {from}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
        text.len()
    ))
}

/// The (cert id, node key) of the only active node, read from the public `/nodes` as the attacker did.
fn public_pair(server: &GmServer) -> (String, String) {
    let nodes = parse_str(&server.get("/nodes").text()).unwrap();
    let map = nodes.as_object().unwrap().get("nodes").unwrap().as_object().unwrap();
    let (cert_id, entry) = map.iter().next().unwrap();
    let key = entry.as_object().unwrap().get("node_public_key").and_then(Value::as_str).unwrap().to_string();
    (cert_id.to_string(), key)
}

// F3: 73,000 `node_auth_failed` rows in 20 s from one address. Now: upstream's 401 for the first 10
// failures of an address per minute, then 429; 3 rows for the repeated failure, then one counted
// summary row when the window closes; a flood on one node key from many addresses adds no rows and
// never blocks that node's correctly signed heartbeats.
#[test]
fn unsigned_heartbeats_get_bounded_audit_rows_then_429() {
    let dir = TempDir::new("auth-flood");
    let home = sandbox(&dir);
    with_limits(&home, "auth_failure_audit_window_seconds = 3");
    let server = GmServer::start(&home, &["--trusted-proxy-hops", "1"]);
    let op = Operator::sandbox(&home);
    let node = Node::new();
    let joined = node.join(server.addr, &op.invite(server.addr, "{}"));
    let cert_id = field(&joined, "cert_id");
    assert_eq!(public_pair(&server), (cert_id.clone(), node.public()));
    let mut statuses = Vec::new();
    for _ in 0..500 {
        statuses.push(unsigned_heartbeat(server.addr, "203.0.113.9", &cert_id, &node.public()));
    }
    for r in &statuses[..10] {
        assert_eq!((r.status, r.text().as_str()), (401, "{\"error\":\"Missing signature, timestamp, or nonce\"}\n"));
    }
    for r in &statuses[10..] {
        assert_eq!((r.status, r.text().as_str()), (429, "{\"error\":\"Rate limit exceeded\"}\n"));
        assert_eq!(r.header("Retry-After"), Some("60"));
    }
    assert_eq!(audit_rows(&home, "node_auth_failed"), 3, "the burst of identical failures");
    // The same node key from 300 other addresses: the key's bucket is spent, so 429 and no new row.
    for i in 0..300 {
        let r = unsigned_heartbeat(server.addr, &format!("198.51.100.{}", i % 250 + 1), &cert_id, &node.public());
        assert_eq!(r.status, 429, "{}", r.text());
    }
    assert_eq!(audit_rows(&home, "node_auth_failed"), 3);
    // The real node, from its own address, is not locked out by either flood.
    assert_eq!(signed_heartbeat(server.addr, "192.0.2.7", &node, &cert_id).status, 200);
    // When the windows close, the repeats become counted summary rows (one per address, and one
    // for the key-limited failures from any address).
    assert!(wait_until(Duration::from_secs(20), || audit_rows(&home, "node_auth_failed") >= 5));
    std::thread::sleep(Duration::from_secs(1));
    let summaries = count(&home, "SELECT COUNT(*) FROM audit_events WHERE event_json LIKE '%\"suppressed\": %'");
    let suppressed: i64 = count(
        &home,
        "SELECT SUM(json_extract(event_json, '$.details.suppressed')) FROM audit_events WHERE event_json LIKE '%\"suppressed\": %'",
    );
    assert_eq!(summaries, 2, "one summary for 203.0.113.9 and one for the key from any address");
    assert_eq!(suppressed, 7 + 300, "every failure that reached auth is counted");
    assert_eq!(audit_rows(&home, "node_auth_failed"), 5);
    let any = count(&home, "SELECT COUNT(*) FROM audit_events WHERE event_json LIKE '%\"remote_addr\": \"*\"%'");
    assert_eq!(any, 1);
}

// F3: 2,100 auth failures pushed a fresh treaty out of the dashboard's recent changes (upstream scans
// the newest 2,000 audit rows). Here the limits are raised so 3,000 failures really are written;
// the treaty stays listed because recent changes are chosen by event type (G4).
#[test]
fn a_treaty_stays_in_dashboard_recent_changes_after_3000_auth_failures() {
    let dir = TempDir::new("dashboard-changes");
    let home = sandbox(&dir);
    with_limits(
        &home,
        "node_auth_failures_per_address = 100000\nnode_auth_failures_per_key = 100000\nauth_failure_audit_burst = 100000",
    );
    let server = GmServer::start(&home, &["--trusted-proxy-hops", "1"]);
    let op = Operator::sandbox(&home);
    let beta = gm::crypto::keys::SigningKey::generate().public_key().to_b64();
    let r = op.send(
        server.addr,
        "POST",
        "/admin/recognition-treaties",
        &format!("{{\"subject_sovereign_id\":\"beta-mesh\",\"subject_public_keys\":[\"{beta}\"]}}"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let treaty_id = field(&r, "treaty_id");
    let node = Node::new();
    let cert_id = field(&node.join(server.addr, &op.invite(server.addr, "{}")), "cert_id");
    for _ in 0..3000 {
        assert_eq!(unsigned_heartbeat(server.addr, "203.0.113.9", &cert_id, &node.public()).status, 401);
    }
    assert!(audit_rows(&home, "node_auth_failed") >= 3000);
    let dashboard = parse_str(&server.get("/dashboard.json").text()).unwrap();
    let changes = dashboard.as_object().unwrap().get("recent_changes").unwrap().as_array().unwrap();
    let types: Vec<&str> =
        changes.iter().map(|c| c.as_object().unwrap().get("event_type").and_then(Value::as_str).unwrap()).collect();
    assert!(types.contains(&"recognition_treaty_issued"), "{types:?}");
    assert!(!types.iter().any(|t| t.contains("auth_failed") || t.ends_with("_verified")), "{types:?}");
    let listed = changes.iter().any(|c| {
        c.as_object().unwrap().get("details").and_then(Value::as_object).and_then(|d| d.get("treaty_id"))
            == Some(&Value::from(treaty_id.as_str()))
    });
    assert!(listed, "{}", canonical_string(&Value::Array(changes.to_vec())));
    assert!(server.get("/dashboard").text().contains("recognition_treaty_issued"));
    let _ = Map::new();
}

fn ids(home: &Path) -> std::collections::BTreeSet<String> {
    let c = rusqlite::Connection::open(home.join("na.db")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut stmt = c.prepare("SELECT event_id FROM audit_events").unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap).collect()
}

fn exported_ids(file: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| parse_str(l).unwrap().as_object().unwrap().get("event_id").unwrap().as_str().unwrap().to_string())
        .collect()
}

/// Appends `n` old events (`days` ago) as an older gm or upstream would have written them.
fn old_events(home: &Path, prefix: &str, n: usize, days: i64) {
    let c = rusqlite::Connection::open(home.join("na.db")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let at = gm::model::timestamp::isoformat_utc(chrono::Utc::now() - chrono::Duration::days(days));
    for i in 0..n {
        let id = format!("{prefix}-{i}");
        let json = format!(
            "{{\"created_at\": \"{at}\", \"details\": {{\"reason\": \"missing_fields\", \"remote_addr\": \"203.0.113.9\"}}, \"event_id\": \"{id}\", \"event_type\": \"node_auth_failed\"}}"
        );
        c.execute("INSERT INTO audit_events (event_id, event_json, created_at) VALUES (?1, ?2, ?3)", [&id, &json, &at])
            .unwrap();
    }
}

// F3: audit retention. `gm managed audit-prune` (and the cron kind `audit-prune`) exports the rows it
// will delete, checks the export against its manifest, and deletes exactly the ids in it; a run
// whose export cannot be written deletes nothing; a dry run writes nothing.
#[test]
fn audit_retention_prunes_only_rows_it_exported() {
    let dir = TempDir::new("audit-retention");
    let home = sandbox(&dir);
    let h = home.to_str().unwrap();
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    op.invite(server.addr, "{}");
    old_events(&home, "ancient", 50, 400);
    old_events(&home, "recent", 30, 10);
    let before = ids(&home);
    assert!(before.len() >= 81, "{}", before.len());
    let prune = |export_dir: &str, extra: &[&str]| {
        Gm::new(&[&["managed", "audit-prune", "--home", h, "--dir", export_dir], extra].concat())
    };
    // Dry run: the plan, and nothing written.
    let (out, _) = prune("x", &["--max-age-days", "365", "--dry-run", "--json"]).expect(0);
    let plan = parse_str(&out).unwrap();
    assert_eq!(plan.as_object().unwrap().get("selected"), Some(&Value::from(50)), "{out}");
    assert_eq!(ids(&home), before);
    assert!(!Path::new("x").exists() && !home.join("x").exists());
    // The export cannot be written (its folder is a file): nothing is deleted.
    std::fs::write(dir.join("blocked"), "a file").unwrap();
    let blocked = dir.join("blocked");
    let (_, err) = prune(blocked.to_str().unwrap(), &["--max-age-days", "365"]).expect(2);
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(ids(&home), before, "a failed export deletes nothing");
    // By age, through the scheduled job kind, with the server live.
    let toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    std::fs::write(
        home.join("gm.toml"),
        toml + "\n[cron.jobs.audit-retention]\nkind = \"audit-prune\"\nschedule = \"30 5 * * *\"\nexport_dir = \"exports/pruned\"\nmax_age_days = 365\n",
    )
    .unwrap();
    Gm::new(&["cron", "run-once", "audit-retention", "--home", h]).expect(0);
    let exports: Vec<_> = std::fs::read_dir(home.join("exports/pruned"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert_eq!(exports.len(), 1, "{exports:?}");
    let first = exported_ids(&exports[0]);
    assert_eq!(first, (0..50).map(|i| format!("ancient-{i}")).collect());
    let after = ids(&home);
    assert!(after.is_disjoint(&first));
    assert_eq!(after.len() + first.len(), before.len());
    Gm::new(&["managed", "audit-verify", exports[0].to_str().unwrap()]).expect(0);
    // By row count: everything older than the newest event goes (rows exactly as old as the cutoff are
    // kept, so the 30 planted rows that share one time must be older), and every deleted id is in an
    // export.
    std::thread::sleep(Duration::from_millis(1100));
    op.invite(server.addr, "{}");
    let (out, _) = prune(dir.join("by-rows").to_str().unwrap(), &["--max-rows", "1", "--json"]).expect(0);
    let summary = parse_str(&out).unwrap();
    let export = summary.as_object().unwrap().get("export").unwrap().as_str().unwrap().to_string();
    let second = exported_ids(Path::new(&export));
    let remaining = ids(&home);
    assert!(remaining.len() >= 2 && remaining.len() < after.len(), "{} left", remaining.len());
    assert!(second.iter().all(|id| !remaining.contains(id)));
    let mut accounted: std::collections::BTreeSet<String> = remaining.clone();
    accounted.extend(first);
    accounted.extend(second);
    assert!(before.iter().all(|id| accounted.contains(id)), "every event is in the table or in an export");
    // The ops ledger records the runs.
    let (history, _) = Gm::new(&["managed", "history", "--home", h, "--json"]).expect(0);
    assert!(history.contains("audit-prune"), "{history}");
    drop(server);
}

// F3, same hole before the proof: a revoked certificate's pair (the CRL names the cert, `/nodes`
// showed the key while it was active) made every unsigned heartbeat write `heartbeat_rejected`. The
// rows are now collapsed and capped per certificate; the answer stays upstream's 403, and no address
// is rate-limited for it (a NAT full of nodes must not be locked out by one stale certificate).
#[test]
fn revoked_certificate_floods_write_bounded_heartbeat_rejected_rows() {
    let dir = TempDir::new("revoked-flood");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &["--trusted-proxy-hops", "1"]);
    let op = Operator::sandbox(&home);
    let (stale, fresh) = (Node::new(), Node::new());
    let stale_id = field(&stale.join(server.addr, &op.invite(server.addr, "{}")), "cert_id");
    let fresh_id = field(&fresh.join(server.addr, &op.invite(server.addr, "{}")), "cert_id");
    let r = op.send(server.addr, "POST", "/admin/revoke", &format!("{{\"cert_id\":\"{stale_id}\"}}"));
    assert_eq!(r.status, 200, "{}", r.text());
    for i in 0..400 {
        let from = if i < 200 { "203.0.113.9".to_string() } else { format!("198.51.100.{}", i % 250 + 1) };
        let r = unsigned_heartbeat(server.addr, &from, &stale_id, &stale.public());
        assert_eq!((r.status, r.text().as_str()), (403, "{\"error\":\"Certificate revoked\"}\n"));
    }
    assert!(audit_rows(&home, "heartbeat_rejected") <= 10, "{} rows", audit_rows(&home, "heartbeat_rejected"));
    // Nodes behind the flooding address still heartbeat.
    assert_eq!(signed_heartbeat(server.addr, "203.0.113.9", &fresh, &fresh_id).status, 200);
}
