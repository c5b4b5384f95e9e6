//! The control plane end to end through the real binary: invites, join, heartbeat, renew,
//! revocation and the CRL, replay protection across restarts, the single-use token race, rate
//! limits, bad input that must change no state, and durability after kill -9.

use std::time::Duration;

use gm::json::{parse_str, Value};
use gm::model::crl::Crl;
use gm::model::SignedObject;

use crate::harness::{home_with_schema, sandbox, GmServer, TempDir};
use crate::signer::{audience, field, now_iso, post_json, Node, Operator};

fn count(home: &std::path::Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(home.join("na.db")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The stored `cert_json` of `cert_id`, parsed.
fn stored_cert(home: &std::path::Path, cert_id: &str) -> Value {
    let c = rusqlite::Connection::open(home.join("na.db")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let json: String =
        c.query_row("SELECT cert_json FROM issued_certs WHERE cert_id = ?1", [cert_id], |r| r.get(0)).unwrap();
    parse_str(&json).unwrap()
}

fn audit_count(home: &std::path::Path, event: &str) -> i64 {
    count(home, &format!("SELECT COUNT(*) FROM audit_events WHERE event_json LIKE '%\"event_type\": \"{event}\"%'"))
}

#[test]
fn invite_join_heartbeat_renew_revoke_and_key_compromise() {
    let dir = TempDir::new("flow");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    let token = op.invite(server.addr, "{\"roles\":[\"role:client\",\"role:service:db\"],\"max_validity_hours\":48}");
    let node = Node::new();
    let joined = node.join(server.addr, &token);
    assert_eq!(joined.status, 201, "{}", joined.text());
    let cert_id = field(&joined, "cert_id");
    assert_eq!(field(&joined, "roles"), "[\"role:client\",\"role:service:db\"]");
    let cert = parse_str(&joined.text()).unwrap();
    let na = gm::crypto::keys::load_public_key(&home.join("keys/na.pub")).unwrap();
    let c = gm::model::certificate::JoinCertificate::from_value(&cert).unwrap();
    assert!(c.check_signatures(&[na]).is_valid());
    assert_eq!((c.expires_at.to_utc() - c.issued_at.to_utc()).num_hours(), 48, "validity capped by the invite");
    // The 201 body and the stored row are one certificate (both rendered from one value).
    assert_eq!(stored_cert(&home, &cert_id), cert);
    // The token is single use.
    let again = Node::new().join(server.addr, &token);
    assert_eq!(
        (again.status, again.text().as_str()),
        (403, "{\"error\":\"Invalid, expired, or used invite token\"}\n")
    );
    let hb = node.heartbeat(server.addr, &cert_id);
    assert_eq!(hb.status, 200, "{}", hb.text());
    assert!(hb.text().starts_with("{\"ack\":true,\"server_time\":\""));
    assert!(server.get("/nodes").text().contains(&format!("\"{cert_id}\":{{")));
    let renewed = node.renew(server.addr, &cert_id);
    assert_eq!(renewed.status, 201, "{}", renewed.text());
    let new_id = field(&renewed, "cert_id");
    let renewed_cert = parse_str(&renewed.text()).unwrap();
    assert_eq!(stored_cert(&home, &new_id), renewed_cert);
    let r = gm::model::certificate::JoinCertificate::from_value(&renewed_cert).unwrap();
    assert!(r.check_signatures(&[na]).is_valid());
    // Within the grace window the predecessor still works (D5).
    assert_eq!(node.heartbeat(server.addr, &cert_id).status, 200);
    let revoked = op.send(
        server.addr,
        "POST",
        "/admin/revoke",
        &format!("{{\"cert_id\":\"{cert_id}\",\"reason\":\"key_compromise\"}}"),
    );
    assert_eq!((revoked.status, revoked.text().as_str()), (200, "{\"crl_sequence\":1,\"revoked_count\":2}\n"));
    let crl = Crl::from_value(&parse_str(&server.get("/crl").text()).unwrap()).unwrap();
    assert!(crl.check_signatures(&[na]).is_valid());
    let listed: Vec<&str> = crl.revoked_certificates.iter().map(|r| r.certificate_id.as_str()).collect();
    assert_eq!(listed, vec![cert_id.as_str(), new_id.as_str()], "the whole renewal chain is revoked (D5)");
    for id in [&cert_id, &new_id] {
        let r = node.heartbeat(server.addr, id);
        assert_eq!((r.status, r.text().as_str()), (403, "{\"error\":\"Certificate revoked\"}\n"));
    }
    let token2 = op.invite(server.addr, "{}");
    let rejoin = node.join(server.addr, &token2);
    assert_eq!(
        (rejoin.status, rejoin.text().as_str()),
        (403, "{\"error\":\"Node public key has been compromised\"}\n")
    );
    let metrics = server.get("/metrics").text();
    assert!(metrics.contains("\ngenesis_mesh_na_issued_certs_total 2\n"), "{metrics}");
    assert!(metrics.contains("\ngenesis_mesh_na_revoked_certs_total 2\n"), "{metrics}");
    assert!(metrics.contains("\ngenesis_mesh_na_crl_sequence 1\n"), "{metrics}");
    for (event, n) in [
        ("invite_created", 2),
        ("certificate_issued", 1),
        ("certificate_renewed", 1),
        ("certificate_revoked", 1),
        ("join_rejected", 1),
        ("heartbeat_rejected", 2),
    ] {
        assert_eq!(audit_count(&home, event), n, "{event}");
    }
    let events = count(
        &home,
        "SELECT COUNT(*) FROM audit_events WHERE event_json LIKE '%\"operator_key_id\": \"operator-local\"%'",
    );
    assert_eq!(events, 3, "admin actions carry the operator key id");
}

#[test]
fn replayed_heartbeat_nonce_is_rejected_after_restart() {
    let dir = TempDir::new("replay-restart");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    let node = Node::new();
    let cert_id = field(&node.join(server.addr, &op.invite(server.addr, "{}")), "cert_id");
    let body = node.sign(&[("cert_id", Value::from(cert_id.as_str())), ("status", Value::from("healthy"))], &now_iso());
    assert_eq!(node.post(server.addr, "/heartbeat", &body).status, 200);
    drop(server);
    let server = GmServer::start(&home, &[]);
    let replay = node.post(server.addr, "/heartbeat", &body);
    assert_eq!(
        (replay.status, replay.text().as_str()),
        (401, "{\"error\":\"Nonce already used (replay detected)\"}\n")
    );
    assert_eq!(audit_count(&home, "node_auth_failed"), 1);
    let detail = count(&home, "SELECT COUNT(*) FROM audit_events WHERE event_json LIKE '%\"reason\": \"nonce_replay\"%' AND event_json LIKE '%\"scope\": \"node:%'");
    assert_eq!(detail, 1);
}

#[test]
fn concurrent_joins_with_one_token_exactly_one_wins() {
    let dir = TempDir::new("race");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    let token = op.invite(server.addr, "{}");
    let addr = server.addr;
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let token = token.clone();
            std::thread::spawn(move || Node::new().join(addr, &token).status)
        })
        .collect();
    let mut statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 403 || *s == 429), "{statuses:?}");
    assert_eq!(count(&home, "SELECT COUNT(*) FROM issued_certs"), 1);
}

#[test]
fn fourth_bad_token_in_a_minute_gets_429() {
    let dir = TempDir::new("badtoken");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    let node = Node::new();
    let statuses: Vec<u16> = (0..4).map(|_| node.join(server.addr, "no-such-token").status).collect();
    assert_eq!(statuses, vec![403, 403, 403, 429]);
    let r = node.join(server.addr, "no-such-token");
    assert_eq!(r.text(), "{\"error\":\"Rate limit exceeded\"}\n");
    assert_eq!(r.header("Retry-After"), Some("60"));
}

#[test]
fn bad_join_input_gets_documented_errors_and_changes_no_state() {
    let dir = TempDir::new("badjoin");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    let token = op.invite(server.addr, "{}");
    let node = Node::new();
    let stale = gm::model::timestamp::isoformat_utc(chrono::Utc::now() - chrono::Duration::seconds(400));
    let future = gm::model::timestamp::isoformat_utc(chrono::Utc::now() + chrono::Duration::seconds(900));
    let t = Value::from(token.as_str());
    let cases: Vec<(gm::json::Map, u16, &str)> = vec![
        (
            node.sign(&[("invite_token", t.clone()), ("validity_hours", Value::from("abc"))], &now_iso()),
            400,
            "validity_hours must be a positive integer",
        ),
        (
            node.sign(&[("invite_token", t.clone()), ("validity_hours", Value::from(-5i64))], &now_iso()),
            400,
            "validity_hours must be a positive integer",
        ),
        (node.sign(&[("invite_token", Value::from(""))], &now_iso()), 403, "invite_token required"),
        (node.sign(&[("invite_token", t.clone())], "2026-11-25T17:45:00"), 400, "Invalid timestamp format"),
        (node.sign(&[("invite_token", t.clone())], "not a time"), 401, "Invalid timestamp format"),
        (node.sign(&[("invite_token", t.clone())], &future), 401, "Request timestamp too old ("),
        (node.sign(&[("invite_token", t.clone())], &stale), 401, "Request timestamp too old ("),
    ];
    for (body, status, message) in cases {
        let r = node.post(server.addr, "/join", &body);
        assert_eq!(r.status, status, "{message}: {}", r.text());
        assert!(r.text().contains(message), "{message}: {}", r.text());
    }
    let mut tampered = node.sign(&[("invite_token", t.clone())], &now_iso());
    tampered.insert("validity_hours", Value::from(1i64));
    let r = node.post(server.addr, "/join", &tampered);
    assert_eq!((r.status, r.text().as_str()), (401, "{\"error\":\"Invalid signature\"}\n"));
    let mut wrong_key = Node::new().sign(&[("invite_token", t.clone())], &now_iso());
    wrong_key.insert("node_public_key", Value::from(node.public()));
    assert_eq!(node.post(server.addr, "/join", &wrong_key).status, 401);
    // The join bucket allows 10 per minute; a restart gives the rest of the cases a fresh one.
    drop(server);
    let server = GmServer::start(&home, &[]);
    let r = post_json(server.addr, "/join", "[1]");
    assert_eq!((r.status, r.text().as_str()), (400, "{\"error\":\"request body must be a JSON object\"}\n"));
    let r = post_json(server.addr, "/join", "{\"node_public_key\": NaN}");
    assert_eq!((r.status, r.text().as_str()), (400, "{\"error\":\"request body must be valid JSON\"}\n"));
    let r = post_json(server.addr, "/join", "this is not json");
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "{\"error\":\"node_public_key required\"}\n"),
        "malformed is {{}} on lenient routes"
    );
    // None of that consumed the token or issued anything.
    assert_eq!(count(&home, "SELECT COUNT(*) FROM issued_certs"), 0);
    assert_eq!(count(&home, "SELECT COUNT(*) FROM invite_tokens WHERE used_at IS NOT NULL"), 0);
    let reasons = count(&home, "SELECT COUNT(*) FROM audit_events WHERE event_json LIKE '%node_auth_failed%'");
    assert_eq!(reasons, 6, "every node-auth failure is audited");
    // Duplicate keys: the last one wins, as in Python, and the token then works.
    let good = node.sign(&[("invite_token", t.clone())], &now_iso());
    let text = gm::crypto::canonical::canonical_string(&Value::Object(good));
    let dup = text.replacen('{', "{\"invite_token\":\"decoy\",", 1);
    assert_eq!(post_json(server.addr, "/join", &dup).status, 201);
}

#[test]
fn bad_admin_requests_are_refused_and_audited() {
    let dir = TempDir::new("badadmin");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    let unknown = Operator { key: gm::crypto::keys::SigningKey::generate(), key_id: "mallory".into() };
    let r = unknown.send(server.addr, "POST", "/admin/invite", "{}");
    assert_eq!((r.status, r.text().as_str()), (401, "{\"error\":\"Unknown admin key\"}\n"));
    let impostor = Operator { key: gm::crypto::keys::SigningKey::generate(), key_id: "operator-local".into() };
    let r = impostor.send(server.addr, "POST", "/admin/invite", "{}");
    assert_eq!((r.status, r.text().as_str()), (401, "{\"error\":\"Invalid admin signature\"}\n"));
    let stale = gm::model::timestamp::isoformat_utc(chrono::Utc::now() - chrono::Duration::seconds(301));
    let r = crate::harness::request(server.addr, &op.raw_v1("POST", "/admin/invite", "{}", &stale, "n-1"));
    assert_eq!((r.status, r.text().as_str()), (401, "{\"error\":\"Admin request timestamp too old\"}\n"));
    let r =
        crate::harness::request(server.addr, &op.raw_v1("POST", "/admin/invite", "{}", "2026-11-25T17:45:00", "n-2"));
    assert_eq!((r.status, r.text().as_str()), (400, "{\"error\":\"Invalid admin timestamp\"}\n"));
    let raw = op.raw_v2(&audience(server.addr), "POST", "/admin/invite", "{}", &now_iso(), "n-3");
    assert_eq!(crate::harness::request(server.addr, &raw).status, 201);
    let r = crate::harness::request(server.addr, &raw);
    assert_eq!((r.status, r.text().as_str()), (401, "{\"error\":\"Admin nonce already used\"}\n"));
    let r = post_json(server.addr, "/admin/invite", "{}");
    assert_eq!((r.status, r.text().as_str()), (401, "{\"error\":\"Missing admin authentication headers\"}\n"));
    let cases = [
        ("/admin/invite", "{\"max_validity_hours\":\"abc\"}", 400, "Token validity windows must be positive"),
        ("/admin/invite", "{\"token_expiry_hours\":-1}", 400, "Token validity windows must be positive"),
        ("/admin/invite", "{\"max_validity_hours\":99999999999}", 400, "Token validity windows must be positive"),
        ("/admin/invite", "{\"roles\":[\"role:bogus\"]}", 400, "Invalid role: role:bogus"),
        ("/admin/revoke", "{}", 400, "cert_id required"),
        ("/admin/revoke", "{\"cert_id\":\"nope\"}", 404, "Unknown certificate"),
        ("/admin/revoke", "{\"cert_id\":\"nope\",\"reason\":\"because\"}", 400, "Invalid revocation reason"),
        ("/admin/policy/rollback", "{}", 400, "policy_id required"),
        ("/admin/policy/rollback", "{\"policy_id\":\"nope\"}", 404, "Unknown policy"),
        ("/admin/policy", "{\"allowed_ports\":\"many\"}", 400, "Invalid policy manifest"),
    ];
    for (path, body, status, message) in cases {
        let r = op.send(server.addr, "POST", path, body);
        assert_eq!((r.status, r.text()), (status, format!("{{\"error\":\"{message}\"}}\n")), "{path} {body}");
    }
    assert_eq!(count(&home, "SELECT COUNT(*) FROM invite_tokens"), 1, "only the one good invite was stored");
    assert_eq!(audit_count(&home, "admin_auth_failed"), 6);
    let reasons =
        ["unknown_key", "invalid_signature", "stale_timestamp", "invalid_timestamp", "nonce_replay", "missing_headers"];
    for reason in reasons {
        let n = count(
            &home,
            &format!("SELECT COUNT(*) FROM audit_events WHERE event_json LIKE '%\"reason\": \"{reason}\"%'"),
        );
        assert_eq!(n, 1, "{reason}");
    }
}

#[test]
fn v2_signatures_work_and_policy_publish_history_rollback() {
    let dir = TempDir::new("policy");
    let home = sandbox(&dir);
    // Legacy acceptance switched on explicitly: both versions work, v1 is audited.
    let server = GmServer::start_with(&home, &[], &[("NA_ADMIN_LEGACY_SIGNATURES", "accept")]);
    let op = Operator::sandbox(&home);
    let audience = gm::crypto::keys::load_public_key(&home.join("keys/na.pub")).unwrap().to_b64();
    assert_eq!(server.get("/policy").status, 200);
    let r = op.send_v2(server.addr, &audience, "POST", "/admin/policy", "{\"policy_id\":\"p-2\",\"min_client_version\":\"0.16.0\",\"allowed_ports\":[443],\"routing\":{\"max_hops\":3,\"ignored\":1}}");
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(
        r.text().contains("\"routing\":{\"max_hops\":3,\"preferred_transports\":[\"quic\",\"wireguard\"]}"),
        "{}",
        r.text()
    );
    assert_eq!(field(&server.get("/policy"), "policy_id"), "p-2");
    let h = op.send_v2(server.addr, &audience, "GET", "/admin/policy/history", "");
    assert_eq!(h.status, 200, "{}", h.text());
    let versions = parse_str(&h.text()).unwrap();
    let list = versions.as_object().unwrap().get("versions").unwrap().as_array().unwrap();
    assert_eq!(list.len(), 2);
    let rb = op.send_v1(server.addr, "POST", "/admin/policy/rollback", "{\"policy_id\":\"policy-sandbox-mesh-v0.1\"}");
    assert_eq!(rb.status, 200, "{}", rb.text());
    assert_eq!(field(&server.get("/policy"), "policy_id"), "policy-sandbox-mesh-v0.1");
    assert_eq!(audit_count(&home, "admin_legacy_signature_accepted"), 1, "the v1 rollback is audited as legacy (D6)");
    drop(server);
    // With legacy signatures refused (the sandbox's gm.toml, or the environment), a v1 request
    // fails and a v2 one passes.
    for env in [&[][..], &[("NA_ADMIN_LEGACY_SIGNATURES", "reject")][..]] {
        let server = GmServer::start_with(&home, &[], env);
        assert_eq!(op.send_v1(server.addr, "POST", "/admin/invite", "{}").status, 401, "{env:?}");
        assert_eq!(op.send_v2(server.addr, &audience, "POST", "/admin/invite", "{}").status, 201, "{env:?}");
    }
}

#[test]
fn superseded_predecessor_fails_after_the_grace_window() {
    let dir = TempDir::new("supersede");
    let home = sandbox(&dir);
    let mut toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    toml = toml.replace("[server]\n", "[server]\nrenewal_grace_seconds = 0\n");
    std::fs::write(home.join("gm.toml"), toml).unwrap();
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    let node = Node::new();
    let old = field(&node.join(server.addr, &op.invite(server.addr, "{}")), "cert_id");
    let new = field(&node.renew(server.addr, &old), "cert_id");
    let r = node.heartbeat(server.addr, &old);
    assert_eq!((r.status, r.text().as_str()), (403, "{\"error\":\"Certificate revoked\"}\n"));
    assert_eq!(node.heartbeat(server.addr, &new).status, 200);
    let n = count(&home, "SELECT COUNT(*) FROM audit_events WHERE event_json LIKE '%heartbeat_rejected%' AND event_json LIKE '%\"reason\": \"superseded\"%'");
    assert_eq!(n, 1);
}

#[test]
fn acknowledged_join_survives_kill_nine() {
    let dir = TempDir::new("durable");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    let node = Node::new();
    let joined = node.join(server.addr, &op.invite(server.addr, "{}"));
    assert_eq!(joined.status, 201);
    let cert_id = field(&joined, "cert_id");
    server.kill_nine();
    assert_eq!(count(&home, &format!("SELECT COUNT(*) FROM issued_certs WHERE cert_id = '{cert_id}'")), 1);
    assert_eq!(audit_count(&home, "certificate_issued"), 1, "the certificate never lands without its audit event");
}

#[test]
fn crl_is_reissued_near_next_update() {
    let dir = TempDir::new("crl-fresh");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &["--frozen-clock", "2026-11-25T00:00:00Z"]);
    let first = Crl::from_value(&parse_str(&server.get("/crl").text()).unwrap()).unwrap();
    drop(server);
    let server = GmServer::start(&home, &["--frozen-clock", "2026-11-25T11:00:00Z"]);
    assert_eq!(Crl::from_value(&parse_str(&server.get("/crl").text()).unwrap()).unwrap().sequence, first.sequence);
    drop(server);
    let server = GmServer::start(&home, &["--frozen-clock", "2026-11-25T13:00:00Z"]);
    let fresh = Crl::from_value(&parse_str(&server.get("/crl").text()).unwrap()).unwrap();
    assert_eq!(fresh.sequence, first.sequence + 1, "D4: re-issued with the next sequence");
    assert_eq!(fresh.next_update.render_isoformat(), "2026-11-26T13:00:00+00:00");
    assert_ne!(fresh.crl_id, first.crl_id);
}

#[test]
fn expired_invite_token_is_refused() {
    let dir = TempDir::new("expired-token");
    let home = sandbox(&dir);
    let op = Operator::sandbox(&home);
    let server = GmServer::start(&home, &["--frozen-clock", "2026-11-25T10:00:00Z"]);
    let body = "{\"token_expiry_hours\":1}";
    let raw = op.raw_v2(&audience(server.addr), "POST", "/admin/invite", body, "2026-11-25T10:00:00+00:00", "n-exp");
    let r = crate::harness::request(server.addr, &raw);
    assert_eq!(r.status, 201, "{}", r.text());
    let token = field(&r, "token_id");
    drop(server);
    let server = GmServer::start(&home, &["--frozen-clock", "2026-11-25T11:00:01Z"]);
    let node = Node::new();
    let body = node.sign(&[("invite_token", Value::from(token.as_str()))], "2026-11-25T11:00:01+00:00");
    let r = node.post(server.addr, "/join", &body);
    assert_eq!((r.status, r.text().as_str()), (403, "{\"error\":\"Invalid, expired, or used invite token\"}\n"));
    assert_eq!(count(&home, "SELECT COUNT(*) FROM invite_tokens WHERE used_at IS NOT NULL"), 0);
}

#[test]
fn expired_nonces_are_pruned_and_recent_ones_kept() {
    let dir = TempDir::new("prune");
    let home = home_with_schema(&dir);
    let c = rusqlite::Connection::open(home.join("na.db")).unwrap();
    let old = gm::model::timestamp::isoformat_utc(chrono::Utc::now() - chrono::Duration::seconds(700));
    let recent = gm::model::timestamp::isoformat_utc(chrono::Utc::now() - chrono::Duration::seconds(100));
    c.execute("INSERT INTO nonces VALUES ('node:k', 'old', ?1), ('node:k', 'recent', ?2)", [&old, &recent]).unwrap();
    drop(c);
    let server = GmServer::start(&home, &[]);
    // Upkeep runs at start and then every minute (D18).
    assert!(crate::harness::wait_until(Duration::from_secs(5), || count(
        &home,
        "SELECT COUNT(*) FROM nonces WHERE nonce = 'old'"
    ) == 0));
    assert_eq!(count(&home, "SELECT COUNT(*) FROM nonces WHERE nonce = 'recent'"), 1);
    drop(server);
}

// F11 (adversarial review, DEVIATIONS G2): a 2,000,000-character heartbeat `status` was stored and
// echoed by the public `/nodes` to every caller. A status is now at most 128 printable characters;
// a longer one or one with control characters gets 400 and changes nothing.
#[test]
fn oversized_or_control_heartbeat_status_gets_400_and_nodes_stays_small() {
    let dir = TempDir::new("hb-status");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    let node = Node::new();
    let cert_id = field(&node.join(server.addr, &op.invite(server.addr, "{}")), "cert_id");
    let beat = |status: Value| {
        let body = node.sign(&[("cert_id", Value::from(cert_id.as_str())), ("status", status)], &now_iso());
        node.post(server.addr, "/heartbeat", &body)
    };
    let at_limit = "d".repeat(128);
    assert_eq!(beat(Value::from(at_limit.as_str())).status, 200);
    for bad in ["x".repeat(2_000_000), "y".repeat(129), "ok\nforged log line".to_string(), "bell\u{7}".to_string()] {
        let r = beat(Value::from(bad.as_str()));
        assert_eq!(
            (r.status, r.text().as_str()),
            (400, "{\"error\":\"status must be at most 128 printable characters\"}\n"),
            "status of {} chars",
            bad.len()
        );
    }
    let nodes = server.get("/nodes");
    assert!(nodes.text().contains(&format!("\"status\":\"{at_limit}\"")), "{}", nodes.text());
    assert!(nodes.body.len() < 4096, "/nodes is {} bytes", nodes.body.len());
    assert_eq!(count(&home, "SELECT COUNT(*) FROM issued_certs WHERE length(heartbeat_status) > 128"), 0);
    // Ordinary statuses, including non-ASCII text, still go through.
    assert_eq!(beat(Value::from("degraded: disk 91 % — état")).status, 200);
    assert_eq!(beat(Value::from("healthy")).status, 200);
}

/// Issue 19: `/crl` and `/policy` are served from memory, and every write that changes them is
/// seen by the very next read: each revocation (the CRL read just before it filled the cache), a
/// new policy, a restart (a fresh process reads the database). Repeated reads are the same bytes.
#[test]
fn crl_and_policy_served_from_memory_follow_every_revocation_and_publish() {
    let dir = TempDir::new("published-cache");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &["--no-scheduler"]);
    let op = Operator::sandbox(&home);
    let crl = |server: &GmServer| {
        let r = server.get("/crl");
        assert_eq!(r.status, 200, "{}", r.text());
        Crl::from_value(&parse_str(&r.text()).unwrap()).unwrap()
    };
    let first = crl(&server);
    assert_eq!(server.get("/crl").text(), server.get("/crl").text(), "stable bytes");
    let mut ids = Vec::new();
    for round in 0..3 {
        let node = Node::new();
        let id = field(&node.join(server.addr, &op.invite(server.addr, "{}")), "cert_id");
        let before = crl(&server); // fills the cache at the current epoch
        let r = op.send(server.addr, "POST", "/admin/revoke", &format!("{{\"cert_id\":\"{id}\"}}"));
        assert_eq!(r.status, 200, "{}", r.text());
        ids.push(id);
        let after = crl(&server);
        assert_eq!(after.sequence, before.sequence + 1, "round {round}: the revocation's CRL, not the cached one");
        let listed: Vec<String> = after.revoked_certificates.iter().map(|r| r.certificate_id.clone()).collect();
        assert!(ids.iter().all(|i| listed.contains(i)), "round {round}: {listed:?} lists {ids:?}");
    }
    assert_eq!(crl(&server).sequence, first.sequence + 3);

    let policy = server.get("/policy").text();
    assert_eq!(server.get("/policy").text(), policy);
    let r = op.send(
        server.addr,
        "POST",
        "/admin/policy",
        "{\"policy_id\":\"p-cache-2\",\"min_client_version\":\"0.16.0\"}",
    );
    assert!(r.status == 200 || r.status == 201, "{} {}", r.status, r.text());
    let next = server.get("/policy").text();
    assert!(next.contains("p-cache-2"), "the new policy at once: {next}");
    drop(server);

    let again = GmServer::start(&home, &["--no-scheduler"]);
    assert_eq!(crl(&again).sequence, first.sequence + 3);
    assert!(again.get("/policy").text().contains("p-cache-2"));
}
