//! Wire compatibility: upstream's signed node and admin requests (`node-requests.json`,
//! `admin-requests.json`) replayed in upstream's order against the real `gm serve`, restarted for
//! every step with its clock frozen at the vector's `server_now` (nonces persist across the
//! restarts, as they must). Bodies that upstream made deterministic must match byte for byte;
//! bodies carrying fresh UUIDs match once those ids and the signatures over them are normalised,
//! and the signatures are verified. Where gm differs on purpose the assertion says which deviation.

use std::path::PathBuf;

use gm::crypto::canonical::canonical_string;
use gm::crypto::keys::PublicKey;
use gm::json::{parse_str, Value};
use gm::model::certificate::JoinCertificate;
use gm::model::crl::Crl;
use gm::model::SignedObject;

use crate::harness::{request, GmServer, HttpResponse, TempDir};
use crate::vectors::{list, load, s};

/// A home holding upstream's vector sovereign (`alpha-mesh`, NA key `na`, operator `operator-1`),
/// configured the upstream way: files in the home, no gm.toml.
pub struct VectorSovereign {
    _dir: TempDir,
    pub home: PathBuf,
}

impl VectorSovereign {
    pub fn new(label: &str) -> VectorSovereign {
        let dir = TempDir::new(label);
        let home = dir.join("home");
        std::fs::create_dir_all(home.join("keys")).unwrap();
        let signed = load("signed-objects.json");
        let genesis = list(&signed, "vectors").iter().find(|v| s(v, "id") == "genesis/valid").unwrap();
        let text = gm::crypto::canonical::to_pretty_string(genesis.as_object().unwrap().get("signed").unwrap());
        std::fs::write(home.join("genesis.signed.json"), text).unwrap();
        let keys = load("keys.json");
        let key = |name: &str| list(&keys, "keys").iter().find(|k| s(k, "name") == name).unwrap().clone();
        std::fs::write(home.join("keys/na.key"), s(&key("na"), "private_key_file")).unwrap();
        let operators = format!(
            "{{\"operator-1\": \"{}\", \"operator-2\": \"{}\"}}",
            s(&key("operator"), "public_key_b64"),
            s(&key("operator2"), "public_key_b64")
        );
        std::fs::write(home.join("operators.json"), operators).unwrap();
        // No gm.toml: upstream's sovereign as an upstream deployment runs it (NA key id
        // `na-2025-q1` is the default), so version-1 admin signatures stay accepted (D6).
        VectorSovereign { _dir: dir, home }
    }

    pub fn start_at(&self, now: &str) -> GmServer {
        GmServer::start(&self.home, &["--frozen-clock", now])
    }

    pub fn start_at_with(&self, now: &str, env: &[(&str, &str)]) -> GmServer {
        GmServer::start_with(&self.home, &["--frozen-clock", now], env)
    }

    pub fn db(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.home.join("na.db")).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        c
    }

    pub fn na_key(&self) -> PublicKey {
        PublicKey::from_b64("9Ci7Uk+4W6QaaxfxQsGKjQkBFVrjVaYgGUJiWSm66IQ=").unwrap()
    }
}

fn get(v: &Value, key: &str) -> Value {
    v.as_object().and_then(|m| m.get(key)).cloned().unwrap_or(Value::Null)
}

/// Sends a vector's request (method, raw path and query, its headers, its body as JSON).
pub fn send(server: &GmServer, vector: &Value) -> HttpResponse {
    let method = s(vector, "method");
    let path = match get(vector, "url_path") {
        Value::Str(p) => p,
        _ => s(vector, "path").to_string(),
    };
    let query = get(vector, "query_string");
    let target = match query.as_str() {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path,
    };
    let body = canonical_string(&get(vector, "body"));
    let mut raw = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        server.addr,
        body.len()
    );
    if let Value::Object(h) = get(vector, "headers") {
        for (k, v) in h.iter() {
            raw.push_str(&format!("{k}: {}\r\n", v.as_str().unwrap()));
        }
    }
    raw.push_str("\r\n");
    raw.push_str(&body);
    request(server.addr, &raw)
}

fn expected(vector: &Value) -> (u16, String) {
    let u = get(vector, "upstream_check");
    let status = match get(&u, "http_status") {
        Value::Int(i) => i.as_i64().unwrap() as u16,
        _ => 0,
    };
    (status, get(&u, "response_body").as_str().unwrap_or_default().to_string())
}

/// Replaces the values of `keys` (at any depth) with a placeholder, and every `sig`.
fn normalise(body: &str, keys: &[&str]) -> Value {
    fn walk(v: &mut Value, keys: &[&str]) {
        match v {
            Value::Object(m) => {
                let names: Vec<String> = m.keys().map(str::to_string).collect();
                for k in names {
                    if keys.contains(&k.as_str()) || k == "sig" {
                        m.insert(k, Value::from("<normalised>"));
                    } else if let Some(x) = m.get_mut(&k) {
                        walk(x, keys);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, keys)),
            _ => {}
        }
    }
    let mut v = parse_str(body).unwrap();
    walk(&mut v, keys);
    v
}

fn rewrite(db: &rusqlite::Connection, table: &str, column: &str, from: &str, to: &str) {
    let n = db.execute(&format!("UPDATE {table} SET {column} = ?2 WHERE {column} = ?1"), [from, to]).unwrap();
    assert_eq!(n, 1, "rewrite {table}.{column} {from} -> {to}");
    if table == "issued_certs" {
        db.execute("UPDATE issued_certs SET cert_json = replace(cert_json, ?1, ?2), renewed_from = replace(renewed_from, ?1, ?2)", [from, to]).unwrap();
    }
}

#[test]
fn upstream_node_and_admin_v1_vectors_replay_in_order() {
    let sov = VectorSovereign::new("replay-v1");
    let na = sov.na_key();
    let signed = load("signed-objects.json");
    let object = |id: &str| list(&signed, "vectors").iter().find(|v| s(v, "id") == id).unwrap().clone();

    // The empty CRL and the default policy, created at upstream's instants.
    let crl_vector = object("crl/empty");
    let server = sov.start_at(s(&get(&crl_vector, "na_http"), "server_now"));
    let r = server.get("/crl");
    assert_eq!(normalise(&r.text(), &["crl_id"]), normalise(s(&get(&crl_vector, "na_http"), "body"), &["crl_id"]));
    assert!(Crl::from_value(&parse_str(&r.text()).unwrap()).unwrap().check_signatures(&[na]).is_valid());
    drop(server);
    let policy_vector = object("policy/default");
    let server = sov.start_at(s(&get(&policy_vector, "na_http"), "server_now"));
    assert_eq!(
        server.get("/policy").text(),
        s(&get(&policy_vector, "na_http"), "body"),
        "default policy, byte for byte"
    );
    drop(server);

    let admin = load("admin-requests.json");
    let node = load("node-requests.json");
    let mut steps: Vec<Value> = list(&node, "vectors").to_vec();
    steps.extend(list(&admin, "vectors").iter().filter(|v| s(v, "scheme") == "v1").cloned());
    steps.sort_by(|a, b| s(&get(a, "upstream_check"), "server_now").cmp(s(&get(b, "upstream_check"), "server_now")));
    let mut replayed = 0;
    for step in &steps {
        let id = s(step, "id");
        let check = get(step, "upstream_check");
        let now = s(&check, "server_now");
        let db = sov.db();
        if s(step, "path") == "/join" {
            // Tokens issued upstream outside these vectors: seed them as an unused invite.
            let token = s(&get(step, "body"), "invite_token").to_string();
            db.execute(
                "INSERT OR IGNORE INTO invite_tokens VALUES (?1, '[\"role:client\"]', 168, '2026-03-02T00:00:00+00:00', '2099-01-01T00:00:00+00:00', NULL, NULL)",
                [&token],
            )
            .unwrap();
        }
        let server = sov.start_at(now);
        let r = send(&server, step);
        let (status, body) = expected(step);
        match id {
            "v1/invalid/v2-signature" => {
                // D6: gm accepts version-2 signatures (upstream 1.x clients); 0.16 refused them.
                assert_eq!(r.status, 201, "{id}: {}", r.text());
            }
            "v1/revoke/node1" | "v1/revoke/node2" => {
                // D5: revoking a certificate revokes its whole renewal chain, so the renewed
                // certificate is listed too and the count is one more per chain than upstream's.
                let seq = if id.ends_with("node1") { 1 } else { 2 };
                assert_eq!(
                    (r.status, r.text()),
                    (200, format!("{{\"crl_sequence\":{seq},\"revoked_count\":{}}}\n", seq * 2)),
                    "{id}"
                );
            }
            _ if s(step, "path") == "/admin/invite" && status == 201 => {
                assert_eq!(r.status, 201, "{id}: {}", r.text());
                assert_eq!(normalise(&r.text(), &["token_id"]), normalise(&body, &["token_id"]), "{id}");
                let ours = s(&parse_str(&r.text()).unwrap(), "token_id").to_string();
                let theirs = s(&parse_str(&body).unwrap(), "token_id").to_string();
                rewrite(&db, "invite_tokens", "token_id", &ours, &theirs);
            }
            _ if matches!(s(step, "path"), "/admin/attestations" | "/admin/recognition-treaties") && status == 201 => {
                // Fresh UUIDs and the signatures over them differ; everything else is upstream's.
                let id_field = if s(step, "path") == "/admin/attestations" { "attestation_id" } else { "treaty_id" };
                assert_eq!(r.status, 201, "{id}: {}", r.text());
                assert_eq!(normalise(&r.text(), &[id_field]), normalise(&body, &[id_field]), "{id}");
                let (table, ours, theirs) = (
                    if id_field == "attestation_id" { "membership_attestations" } else { "recognition_treaties" },
                    s(&parse_str(&r.text()).unwrap(), id_field).to_string(),
                    s(&parse_str(&body).unwrap(), id_field).to_string(),
                );
                rewrite(&db, table, id_field, &ours, &theirs);
            }
            _ if matches!(s(step, "path"), "/join" | "/renew") && status == 201 => {
                assert_eq!(r.status, 201, "{id}: {}", r.text());
                assert_eq!(normalise(&r.text(), &["cert_id"]), normalise(&body, &["cert_id"]), "{id}");
                let cert = JoinCertificate::from_value(&parse_str(&r.text()).unwrap()).unwrap();
                assert!(cert.check_signatures(&[na]).is_valid(), "{id}: NA signature");
                let theirs = s(&parse_str(&body).unwrap(), "cert_id").to_string();
                rewrite(&db, "issued_certs", "cert_id", &cert.cert_id, &theirs);
            }
            _ => assert_eq!((r.status, r.text()), (status, body), "{id}"),
        }
        replayed += 1;
    }
    assert!(replayed >= 20, "only {replayed} steps replayed");
    // The audit trail holds upstream's events for what happened.
    let db = sov.db();
    for (event, n) in
        [("invite_created", 5), ("certificate_issued", 2), ("certificate_renewed", 2), ("certificate_revoked", 2)]
    {
        let count: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM audit_events WHERE event_json LIKE ?1",
                [format!("%\"event_type\": \"{event}\"%")],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(count, n, "{event}");
    }
    let failures: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM audit_events WHERE event_json LIKE '%\"event_type\": \"admin_auth_failed\"%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failures, 4, "four invalid v1 admin requests are audited");
    let tokens: String = db.query_row("SELECT group_concat(event_json) FROM audit_events", [], |r| r.get(0)).unwrap();
    assert!(!tokens.contains("ec28d761-0e81-4dd9-b4d4-871ee830c2c3"), "invite tokens never reach the audit log");
}

#[test]
fn upstream_v2_admin_vectors_verify_on_gm_routes() {
    let sov = VectorSovereign::new("replay-v2");
    let admin = load("admin-requests.json");
    let v2: Vec<Value> = list(&admin, "vectors").iter().filter(|v| s(v, "scheme") == "v2").cloned().collect();
    for vector in &v2 {
        let id = s(vector, "id");
        let check = get(vector, "upstream_check");
        let now = s(&check, "server_now");
        let valid = matches!(get(vector, "valid"), Value::Bool(true));
        // The payload gm rebuilds is exactly what the 1.x client signed.
        let headers = get(vector, "headers");
        let path = s(vector, "path");
        let payload = gm::crypto::payload::v2_payload(
            s(vector, "audience"),
            &get(vector, "signed_body"),
            s(&headers, "X-Admin-Key-Id"),
            s(vector, "method"),
            s(&headers, "X-Admin-Nonce"),
            path,
            &get(vector, "query_string").as_str().map(gm::http::parse_query).unwrap_or_default(),
            s(&headers, "X-Admin-Timestamp"),
        );
        assert_eq!(String::from_utf8(payload).unwrap(), s(vector, "signed_payload"), "{id}: payload");
        if path.starts_with("/admin/edge-nodes")
            || path.starts_with("/admin/grants")
            || id == "v2/invalid/method-changed"
        {
            continue; // routes that 0.16 does not have (404) or a method the route refuses (405)
        }
        let env: &[(&str, &str)] =
            if id == "v2/invalid/v1-signature" { &[("NA_ADMIN_LEGACY_SIGNATURES", "reject")] } else { &[] };
        let server = sov.start_at_with(now, env);
        let r = send(&server, vector);
        if valid {
            assert!(r.status < 500 && r.status != 401, "{id}: {} {}", r.status, r.text());
        } else {
            assert_eq!((r.status, r.text().as_str()), (401, "{\"error\":\"Invalid admin signature\"}\n"), "{id}");
        }
    }
}
