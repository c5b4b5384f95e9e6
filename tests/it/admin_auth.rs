//! Every `/admin/*` route refuses a request without a valid operator signature (issue 8 item 4,
//! `na-wire.md` §6.4): the table is the router's own [`gm::na::router::ADMIN_ROUTES`], so a new
//! admin route is covered the day it is added. Each refusal is the documented 401 and message, one
//! `admin_auth_failed` audit event with the documented reason, and no other change to the database.

use std::net::SocketAddr;
use std::path::Path;

use gm::crypto::keys::SigningKey;
use gm::model::timestamp::isoformat_utc;
use gm::na::router::ADMIN_ROUTES;

use crate::harness::{request, sandbox, GmServer, TempDir};
use crate::signer::{field, now_iso, Node, Operator};

/// One way of getting authentication wrong: name, expected error and audit reason.
struct Case {
    name: &'static str,
    error: &'static str,
    reason: &'static str,
}

const CASES: [Case; 4] = [
    Case { name: "no auth headers", error: "Missing admin authentication headers", reason: "missing_headers" },
    Case { name: "wrong signature", error: "Invalid admin signature", reason: "invalid_signature" },
    Case { name: "unknown key id", error: "Unknown admin key", reason: "unknown_key" },
    Case { name: "stale timestamp", error: "Admin request timestamp too old", reason: "stale_timestamp" },
];

/// A body that would change state if authentication let it through.
fn body_for(pattern: &str, cert_id: &str) -> String {
    match pattern {
        "/admin/revoke" => format!("{{\"cert_id\":\"{cert_id}\",\"reason\":\"key_compromise\"}}"),
        "/admin/policy" => "{\"policy_id\":\"p-attacker\",\"min_client_version\":\"0.16.0\"}".into(),
        "/admin/policy/rollback" => "{\"policy_id\":\"p-attacker\"}".into(),
        _ => "{\"roles\":[\"role:anchor\"]}".into(),
    }
}

/// The raw request for `case`, sent from its own forwarded address so the `admin:` rate-limit bucket
/// (30 per address) never answers first.
fn raw_request(case: &Case, op: &Operator, method: &str, path: &str, body: &str, from: &str) -> String {
    let raw = match case.name {
        "no auth headers" => op
            .raw_v1(method, path, body, &now_iso(), &gm::crypto::digest::uuid4())
            .split("\r\n")
            .filter(|l| !l.starts_with("X-Admin-"))
            .collect::<Vec<_>>()
            .join("\r\n"),
        "wrong signature" => Operator { key: SigningKey::generate(), key_id: op.key_id.clone() }.raw_v1(
            method,
            path,
            body,
            &now_iso(),
            &gm::crypto::digest::uuid4(),
        ),
        "unknown key id" => Operator { key: op.key.clone(), key_id: "no-such-key".into() }.raw_v1(
            method,
            path,
            body,
            &now_iso(),
            &gm::crypto::digest::uuid4(),
        ),
        "stale timestamp" => {
            let stale = isoformat_utc(chrono::Utc::now() - chrono::Duration::seconds(301 + 60));
            op.raw_v1(method, path, body, &stale, &gm::crypto::digest::uuid4())
        }
        other => panic!("unknown case {other}"),
    };
    raw.replacen("Host: x\r\n", &format!("Host: x\r\nX-Forwarded-For: {from}\r\n"), 1)
}

/// Every table but the audit log, row by row: what a refused request must leave alone.
fn state(db: &Path) -> String {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = String::new();
    for t in tables.iter().filter(|t| t.as_str() != "audit_events") {
        let mut stmt = c.prepare(&format!("SELECT * FROM \"{t}\" ORDER BY 1")).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| Ok((0..n).map(|i| text(r.get_ref(i).unwrap())).collect::<Vec<_>>().join("|")))
            .unwrap();
        for row in rows {
            out.push_str(&format!("{t}: {}\n", row.unwrap()));
        }
    }
    out
}

fn text(v: rusqlite::types::ValueRef<'_>) -> String {
    match v {
        rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => String::from_utf8_lossy(t).into(),
        other => format!("{other:?}"),
    }
}

/// The audit events of the database, oldest first.
fn audit_events(db: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = c.prepare("SELECT event_json FROM audit_events ORDER BY rowid").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

fn join_a_node(addr: SocketAddr, op: &Operator) -> String {
    let r = Node::new().join(addr, &op.invite(addr, "{}"));
    assert_eq!(r.status, 201, "{}", r.text());
    field(&r, "cert_id")
}

#[test]
fn every_admin_route_refuses_missing_wrong_unknown_and_stale_authentication_and_changes_nothing() {
    let dir = TempDir::new("admin-auth");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &["--no-scheduler", "--trusted-proxy-hops", "1"]);
    let op = Operator::sandbox(&home);
    let cert_id = join_a_node(server.addr, &op);
    let db = home.join("na.db");
    let before = state(&db);
    assert!(before.contains(&cert_id), "the state snapshot sees the database: {before}");

    let mut seen = 0;
    for (r, (method, pattern, _)) in ADMIN_ROUTES.iter().enumerate() {
        let path = pattern.replace("<id>", "id-1");
        let body = if *method == "GET" { String::new() } else { body_for(pattern, &cert_id) };
        for (c, case) in CASES.iter().enumerate() {
            let events = audit_events(&db).len();
            let raw = raw_request(case, &op, method, &path, &body, &format!("10.9.{r}.{c}"));
            let resp = request(server.addr, &raw);
            let what = format!("{method} {path} with {}", case.name);
            assert_eq!(resp.status, 401, "{what}: {}", resp.text());
            assert_eq!(resp.text(), format!("{{\"error\":\"{}\"}}\n", case.error), "{what}");
            let after = audit_events(&db);
            assert_eq!(after.len(), events + 1, "{what}: one audit event");
            let event = after.last().unwrap();
            assert!(
                event.contains("\"event_type\": \"admin_auth_failed\"")
                    && event.contains(&format!("\"reason\": \"{}\"", case.reason)),
                "{what}: {event}"
            );
            assert_eq!(state(&db), before, "{what} changed the database");
            seen += 1;
        }
    }
    assert_eq!(seen, ADMIN_ROUTES.len() * CASES.len());
    // The valid request still works afterwards: the refusals were about authentication only.
    assert_eq!(op.send(server.addr, "POST", "/admin/invite", "{}").status, 201);
}
