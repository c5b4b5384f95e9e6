//! Cross-sovereign trust end to end with two real `gm serve` processes on loopback (A = alpha-mesh,
//! B = beta-mesh), plus bad input on the trust routes and agent discovery.

use gm::crypto::canonical::canonical_string;
use gm::crypto::keys::{load_public_key, SigningKey};
use gm::json::{parse_str, Map, Value};
use gm::model::agent::AgentDescriptor;
use gm::model::SignedObject;

use crate::harness::{request, with_limits, Gm, GmServer, TempDir};
use crate::signer::{field, post_json, Node, Operator};

fn sovereign(dir: &TempDir, name: &str) -> std::path::PathBuf {
    let home = dir.join(name);
    Gm::new(&["quickstart", "--home", home.to_str().unwrap(), "--network-name", name, "--no-serve"]).expect(0);
    home
}

fn json(text: &str) -> Value {
    parse_str(text).unwrap()
}

fn get<'a>(v: &'a Value, k: &str) -> &'a Value {
    v.as_object().and_then(|m| m.get(k)).unwrap_or(&Value::Null)
}

fn count(home: &std::path::Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(home.join("na.db")).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn two_sovereigns_attest_recognise_revoke_import_and_unrecognise() {
    let dir = TempDir::new("two-sovereigns");
    let (home_a, home_b) = (sovereign(&dir, "alpha-mesh"), sovereign(&dir, "beta-mesh"));
    let (a, b) = (GmServer::start(&home_a, &[]), GmServer::start(&home_b, &[]));
    let (op_a, op_b) = (Operator::sandbox(&home_a), Operator::sandbox(&home_b));
    let b_key = load_public_key(&home_b.join("keys/na.pub")).unwrap().to_b64();

    // B attests a member.
    let issued =
        op_b.send(b.addr, "POST", "/admin/attestations", "{\"subject_id\":\"agent-1\",\"roles\":[\"role:client\"]}");
    assert_eq!(issued.status, 201, "{}", issued.text());
    let attestation = json(&issued.text());
    let attestation_id = field(&issued, "attestation_id");
    // A recognises B through a treaty.
    let body = format!("{{\"subject_sovereign_id\":\"beta-mesh\",\"subject_public_keys\":[\"{b_key}\"],\"scope\":{{\"allowed_roles\":[\"role:client\"]}}}}");
    let treaty_resp = op_a.send(a.addr, "POST", "/admin/recognition-treaties", &body);
    assert_eq!(treaty_resp.status, 201, "{}", treaty_resp.text());
    let treaty = json(&treaty_resp.text());
    let treaty_id = field(&treaty_resp, "treaty_id");
    let verify_body = object_body([("attestation", attestation.clone()), ("treaty", treaty.clone())]);
    let r = post_json(a.addr, "/attestations/verify-with-treaty", &verify_body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(field(&r, "reason"), "accepted");
    assert_eq!(field(&r, "issuer_sovereign_id"), "alpha-mesh", "the treaty's issuer is reported");

    // B revokes and publishes its feed; A imports it (keys from the active treaty).
    let r = op_b.send(
        b.addr,
        "POST",
        &format!("/admin/attestations/{attestation_id}/revoke"),
        "{\"reason\":\"key_compromise\"}",
    );
    assert_eq!(r.text(), format!("{{\"attestation_id\":\"{attestation_id}\",\"status\":\"revoked\"}}\n"));
    let feed = b.get("/sovereign-revocation-feed");
    assert_eq!(feed.status, 200);
    let feed_value = json(&feed.text());
    assert_eq!(get(&feed_value, "sequence").as_i64(), Some(1));
    let import = object_body([("feed", feed_value.clone())]);
    let r = op_a.send(a.addr, "POST", "/admin/sovereign-revocation-feeds/import", &import);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"reason\":\"accepted\",\"revoked_count\":1,\"sequence\":1"), "{}", r.text());
    // Re-importing the same sequence is stale.
    let r = op_a.send(a.addr, "POST", "/admin/sovereign-revocation-feeds/import", &import);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(field(&r, "reason"), "stale_sequence");
    // A now rejects the attestation.
    let r = post_json(a.addr, "/attestations/verify-with-treaty", &verify_body);
    assert_eq!(field(&r, "reason"), "attestation_locally_revoked");

    // A's connectome shows the edge and the blast radius.
    let c = json(&a.get("/connectome.json").text());
    assert_eq!(canonical_string(get(&c, "summary")), "{\"active_edge_count\":1,\"imported_revocation_count\":1,\"recognition_edge_count\":1,\"revoked_edge_count\":0,\"revoked_trust_material_count\":1,\"sovereign_count\":2}");
    let blast = get(&c, "revocation_blast_radius").as_array().unwrap();
    assert_eq!(blast.len(), 1);
    assert_eq!(canonical_string(get(&blast[0], "affected_accepting_sovereigns")), "[\"alpha-mesh\"]");
    assert_eq!(get(&blast[0], "id").as_str(), Some(attestation_id.as_str()));
    let path = a.get("/connectome/trust-path?from=alpha-mesh&to=beta-mesh");
    assert!(
        path.text().contains("\"reason\":\"active_treaty_path\"") && path.text().contains("\"trusted\":true"),
        "{}",
        path.text()
    );

    // A revokes the treaty: the trust path disappears.
    let r = op_a.send(a.addr, "POST", &format!("/admin/recognition-treaties/{treaty_id}/revoke"), "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    let path = a.get("/connectome/trust-path?source=alpha-mesh&target=beta-mesh");
    assert!(
        path.text().contains("\"reason\":\"direct_treaty_revoked\"") && path.text().contains("\"trusted\":false"),
        "{}",
        path.text()
    );
    let r = post_json(a.addr, "/attestations/verify-with-treaty", &verify_body);
    assert_eq!(field(&r, "reason"), "treaty_locally_revoked");
    // The cached connectome follows the write.
    let c = json(&a.get("/connectome.json").text());
    assert_eq!(get(get(&c, "summary"), "revoked_edge_count").as_i64(), Some(1));
    assert_eq!(get(get(&c, "summary"), "active_edge_count").as_i64(), Some(0));
    assert_eq!(get(&c, "revocation_blast_radius").as_array().map(|b| b.len()), Some(1));
    let dash = json(&a.get("/dashboard.json").text());
    assert_eq!(get(get(&dash, "treaty_summary"), "revoked").as_i64(), Some(1));
    assert_eq!(get(get(&dash, "revocation_feed_summary"), "freshness").as_str(), Some("fresh"));
    let html = a.get("/dashboard");
    assert_eq!(html.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert!(html.text().contains("alpha-mesh") && !html.text().contains("<script"), "read-only page without scripts");
    for (home, event) in [
        (&home_b, "membership_attestation_issued"),
        (&home_b, "membership_attestation_revoked"),
        (&home_a, "recognition_treaty_issued"),
        (&home_a, "treaty_attestation_verified"),
        (&home_a, "sovereign_revocation_feed_imported"),
        (&home_a, "sovereign_revocation_feed_rejected"),
        (&home_a, "recognition_treaty_revoked"),
    ] {
        let n = count(
            home,
            &format!("SELECT COUNT(*) FROM audit_events WHERE event_json LIKE '%\"event_type\": \"{event}\"%'"),
        );
        assert!(n >= 1, "{event} in {}", home.display());
    }
}

#[test]
fn bad_trust_input_gets_documented_errors_and_changes_no_state() {
    let dir = TempDir::new("bad-trust");
    let home = sovereign(&dir, "alpha-mesh");
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    let key = load_public_key(&home.join("keys/na.pub")).unwrap().to_b64();
    let cases = [
        ("/admin/attestations", "{\"roles\":[\"role:client\"]}", 400, "subject_id and roles are required"),
        ("/admin/attestations", "{\"subject_id\":\"s\",\"roles\":[\"role:nope\"]}", 400, "Invalid role: role:nope"),
        ("/admin/attestations", "{\"subject_id\":\"s\",\"roles\":[\"role:client\"],\"validity_hours\":0}", 400, "validity_hours must be greater than zero"),
        ("/admin/attestations", "{\"subject_id\":\"s\",\"roles\":[\"role:client\"],\"issuer_sovereign_id\":\"other\"}", 400, "issuer_sovereign_id must match this sovereign"),
        ("/admin/attestations/nope/revoke", "{}", 404, "Attestation not found"),
        ("/admin/recognition-treaties", "{\"subject_sovereign_id\":\"b\",\"subject_public_keys\":[]}", 400, "subject_public_keys must not be empty"),
        ("/admin/recognition-treaties", "{\"subject_sovereign_id\":\"b\"}", 400, "subject_public_keys must not be empty"),
        ("/admin/recognition-treaties", "{\"subject_public_keys\":[\"k\"]}", 400, "subject_sovereign_id and subject_public_keys are required"),
        ("/admin/recognition-treaties", "{\"subject_sovereign_id\":\"b\",\"subject_public_keys\":[\"k\"],\"scope\":{\"allowed_roles\":[\"root\"]}}", 400, "Invalid role: root"),
        ("/admin/recognition-treaties", "{\"subject_sovereign_id\":\"b\",\"subject_public_keys\":[\"k\"],\"scope\":{\"accepted_statuses\":[\"maybe\"]}}", 400, "Invalid treaty scope"),
        ("/admin/recognition-treaties", "{\"subject_sovereign_id\":\"b\",\"subject_public_keys\":[\"k\"],\"validity_hours\":-1}", 400, "validity_hours must be greater than zero"),
        ("/admin/recognition-treaties/nope/revoke", "{}", 404, "Recognition treaty not found"),
        ("/admin/recognition-policy", "{}", 400, "Invalid recognition_policy"),
    ];
    for (path, body, status, message) in cases {
        let r = op.send(server.addr, "POST", path, body);
        assert_eq!((r.status, r.text()), (status, format!("{{\"error\":\"{message}\"}}\n")), "{path} {body}");
    }
    assert_eq!(server.get("/attestations/nope").text(), "{\"error\":\"Attestation not found\"}\n");
    assert_eq!(
        server.get("/attestations/verify").text(),
        "{\"error\":\"Attestation not found\"}\n",
        "upstream's routing quirk"
    );
    assert_eq!(server.get("/recognition-treaties/nope").status, 404);
    assert_eq!(server.get("/recognition-policy").text(), "{\"error\":\"Recognition policy not configured\"}\n");
    // Strict routes: non-JSON is 415, malformed 400.
    let raw = op.raw_v1("POST", "/admin/attestations", "{", &crate::signer::now_iso(), "n-strict");
    let r = request(server.addr, &raw);
    assert_eq!((r.status, r.text().as_str()), (400, "{\"error\":\"Bad Request\"}\n"));
    // Feeds: reasons for ids not listed, wrong key, unsigned.
    let peer = SigningKey::generate();
    let feed = |reasons: &str, key: &SigningKey, sign: bool| {
        let mut v = json(&format!(
            "{{\"feed_id\":\"f-1\",\"issuer_sovereign_id\":\"beta-mesh\",\"sequence\":1,\"issued_at\":\"2026-11-25T00:00:00Z\",\"revoked_attestation_ids\":[\"a-1\"],\"revocation_reasons\":{reasons},\"issued_by\":\"beta\"}}"
        ));
        if sign {
            v = gm::model::sign_as(gm::model::Kind::Feed, &v, key, "beta").unwrap();
        }
        v
    };
    let import = |f: Value, keys: &str| format!("{{\"feed\":{},\"issuer_public_keys\":{keys}}}", canonical_string(&f));
    let peer_key = format!("[\"{}\"]", peer.public_key().to_b64());
    let r = op.send(
        server.addr,
        "POST",
        "/admin/sovereign-revocation-feeds/import",
        &import(feed("{\"zzz\":\"x\"}", &peer, false), &peer_key),
    );
    assert_eq!((r.status, r.text().as_str()), (400, "{\"error\":\"Invalid sovereign revocation feed\"}\n"));
    let r = op.send(
        server.addr,
        "POST",
        "/admin/sovereign-revocation-feeds/import",
        &import(feed("{}", &SigningKey::generate(), true), &peer_key),
    );
    assert_eq!(r.status, 400);
    assert_eq!(field(&r, "reason"), "invalid_signature");
    let r = op.send(
        server.addr,
        "POST",
        "/admin/sovereign-revocation-feeds/import",
        &import(feed("{}", &peer, false), &peer_key),
    );
    assert_eq!(field(&r, "reason"), "missing_signature");
    let r = op.send(
        server.addr,
        "POST",
        "/admin/sovereign-revocation-feeds/import",
        &import(feed("{}", &peer, true), "[]"),
    );
    assert_eq!(
        r.text(),
        "{\"accepted\":false,\"issuer_sovereign_id\":\"beta-mesh\",\"reason\":\"missing_issuer_public_keys\"}\n"
    );
    assert_eq!(count(&home, "SELECT COUNT(*) FROM sovereign_revocation_feeds"), 0);
    assert_eq!(count(&home, "SELECT COUNT(*) FROM membership_attestations"), 0);
    assert_eq!(count(&home, "SELECT COUNT(*) FROM recognition_treaties"), 0);
    assert_eq!(
        count(&home, "SELECT COUNT(*) FROM audit_events WHERE event_json LIKE '%sovereign_revocation_feed_rejected%'"),
        2,
        "invalid_signature and missing_signature are audited; schema errors and missing keys are not"
    );
    // D13: feeds are signed only for this sovereign.
    assert_eq!(server.get("/sovereign-revocation-feed?issuer_sovereign_id=other").status, 400);
    assert_eq!(server.get("/sovereign-revocation-feed?issuer_sovereign_id=").status, 200);
    let _ = key;
}

#[test]
fn agents_register_list_and_deregister_once() {
    let dir = TempDir::new("agents");
    let home = sovereign(&dir, "alpha-mesh");
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    let node = Node::new();
    assert_eq!(node.join(server.addr, &op.invite(server.addr, "{}")).status, 201);
    let now = chrono::Utc::now();
    let descriptor = |network: &str| {
        let v = json(&format!(
            "{{\"agent_id\":\"a-1\",\"node_public_key\":\"{}\",\"network_name\":\"{network}\",\"capabilities\":[\"chat\",\"search\"],\"endpoint\":{{\"host\":\"127.0.0.1\",\"port\":9000}},\"registered_at\":\"{}\",\"expires_at\":\"{}\"}}",
            node.public(),
            gm::model::timestamp::isoformat_utc(now),
            gm::model::timestamp::isoformat_utc(now + chrono::Duration::seconds(600))
        ));
        let mut d = AgentDescriptor::from_value(&v).unwrap();
        d.sign(&node.key, &node.public());
        canonical_string(&d.to_value())
    };
    let r = post_json(server.addr, "/agents", &descriptor("other-mesh"));
    assert_eq!(
        r.text(),
        "{\"error\":\"descriptor network_name does not match this NA\",\"expected\":\"alpha-mesh\"}\n"
    );
    let r = post_json(server.addr, "/agents", "{\"agent_id\":1}");
    assert_eq!(r.status, 400);
    assert!(r.text().starts_with("{\"error\":\"invalid descriptor: "), "{}", r.text());
    assert_eq!(
        post_json(server.addr, "/agents", "not json").text(),
        "{\"error\":\"request body must be valid JSON\"}\n"
    );
    let r = post_json(server.addr, "/agents", &descriptor("alpha-mesh"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"status\":\"registered\""));
    assert!(server.get("/agents?capability=chat").text().contains("\"count\":1"));
    assert!(
        server.get("/agents?capability=%25").text().contains("\"count\":0"),
        "exact match, no LIKE wildcards (D15)"
    );
    let key_path = node.public().replace('+', "%2B");
    assert_eq!(server.get(&format!("/agents/{key_path}")).status, 200);
    let signed_at = gm::model::timestamp::isoformat_utc(chrono::Utc::now());
    let sig = node.key.sign_b64(format!("delete-agent|v1|{}|{signed_at}", node.public()).as_bytes());
    let del = format!("{{\"signature\":\"{sig}\",\"signed_at\":\"{signed_at}\"}}");
    let raw = |body: &str| {
        format!(
            "DELETE /agents/{key_path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    assert_eq!(request(server.addr, &raw(&del)).text(), "{\"status\":\"deregistered\"}\n");
    assert_eq!(
        request(server.addr, &raw(&del)).text(),
        "{\"error\":\"invalid signature\"}\n",
        "an envelope works once (D16)"
    );
    assert_eq!(server.get(&format!("/agents/{key_path}")).text(), "{\"error\":\"agent not registered\"}\n");
}

#[test]
fn treaty_and_feed_commands_against_two_servers() {
    let dir = TempDir::new("treaty-cli");
    let (home_a, home_b) = (sovereign(&dir, "alpha-mesh"), sovereign(&dir, "beta-mesh"));
    let (a, b) = (GmServer::start(&home_a, &[]), GmServer::start(&home_b, &[]));
    let (ha, hb) = (home_a.to_str().unwrap(), home_b.to_str().unwrap());
    let (na_a, na_b) = (format!("http://{}", a.addr), format!("http://{}", b.addr));
    let b_key = load_public_key(&home_b.join("keys/na.pub")).unwrap().to_b64();
    let (stdout, _) = Gm::new(&[
        "treaty",
        "issue",
        "--na",
        &na_a,
        "--home",
        ha,
        "--subject",
        "beta-mesh",
        "--subject-public-key",
        &b_key,
        "--allowed-role",
        "client",
        "--json",
    ])
    .expect(0);
    let treaty_id = get(&json(stdout.trim()), "treaty_id").as_str().unwrap_or_else(|| panic!("{stdout}")).to_string();
    let (stdout, _) = Gm::new(&["treaty", "inspect", &treaty_id, "--na", &na_a]).expect(0);
    assert!(stdout.contains("beta-mesh") && stdout.contains(&treaty_id), "{stdout}");
    let (_, stderr) = Gm::new(&["treaty", "renew", &treaty_id, "--na", &na_a, "--home", ha]).expect(2);
    assert!(stderr.contains("--yes"), "{stderr}");
    Gm::new(&["treaty", "renew", &treaty_id, "--na", &na_a, "--home", ha, "--yes"]).expect(0);
    let (stdout, _) = Gm::new(&["treaty", "list", "--na", &na_a, "--json"]).expect(0);
    assert!(stdout.contains("replaced") && stdout.contains("renewed_by:"), "{stdout}");
    // B revokes an attestation, exports its feed; A imports it (keys from the renewed treaty).
    let op_b = Operator::sandbox(&home_b);
    let issued =
        op_b.send(b.addr, "POST", "/admin/attestations", "{\"subject_id\":\"agent-1\",\"roles\":[\"role:client\"]}");
    let id = field(&issued, "attestation_id");
    assert_eq!(op_b.send(b.addr, "POST", &format!("/admin/attestations/{id}/revoke"), "{}").status, 200);
    let feed_file = dir.join("beta.feed.json");
    Gm::new(&["feed", "export", "--na", &na_b, "--output", feed_file.to_str().unwrap()]).expect(0);
    let (stdout, _) =
        Gm::new(&["feed", "import", feed_file.to_str().unwrap(), "--na", &na_a, "--home", ha, "--json"]).expect(0);
    assert!(stdout.contains("\"accepted\":true"), "{stdout}");
    let (stdout, stderr) =
        Gm::new(&["feed", "import", feed_file.to_str().unwrap(), "--na", &na_a, "--home", ha]).expect(1);
    assert!(format!("{stdout}{stderr}").contains("stale_sequence"), "{stdout}{stderr}");
    let _ = hb;
}

/// A treaty from `issuer` to `subject_keys`, valid now, signed by `signer` after `junk` forged
/// signatures (so every forged one is tried before the real one).
fn crafted_treaty(signer: &SigningKey, subject_keys: &[String], junk: usize) -> Value {
    use gm::model::treaty::RecognitionTreaty;
    let now = chrono::Utc::now();
    let t = |d: chrono::Duration| (now + d).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let keys = Value::Array(subject_keys.iter().map(|k| Value::from(k.as_str())).collect());
    let mut value = json(&format!(
        "{{\"treaty_id\":\"t-1\",\"issuer_sovereign_id\":\"mallory-mesh\",\"subject_sovereign_id\":\"beta-mesh\",\
         \"subject_public_keys\":{},\"scope\":{{\"allowed_roles\":[\"role:client\"],\"accepted_statuses\":[\"active\"]}},\
         \"status\":\"active\",\"issued_at\":\"{}\",\"valid_from\":\"{}\",\"expires_at\":\"{}\",\"issued_by\":\"m\",\
         \"metadata\":{{}},\"signatures\":[]}}",
        canonical_string(&keys),
        t(chrono::Duration::hours(-1)),
        t(chrono::Duration::hours(-1)),
        t(chrono::Duration::hours(24))
    ));
    let mut treaty = RecognitionTreaty::from_value(&value).unwrap();
    for i in 0..junk {
        // Well-formed 64-byte signatures that do not verify: the expensive kind to reject.
        let forged = SigningKey::generate().sign_b64(format!("junk {i}").as_bytes());
        treaty.signatures.push(gm::model::Signature { key_id: format!("j{i}"), sig: forged });
    }
    treaty.sign(signer, "mallory");
    value = treaty.to_value();
    value
}

fn random_keys(n: usize) -> Vec<String> {
    (0..n).map(|_| SigningKey::generate().public_key().to_b64()).collect()
}

/// `n - 1` random public keys, then `last`'s (the pair that verifies is the last one tried).
fn keys_ending_with(n: usize, last: &SigningKey) -> Vec<String> {
    let mut k = random_keys(n - 1);
    k.push(last.public_key().to_b64());
    k
}

/// A request body: the canonical JSON object of `fields`.
fn object_body<const N: usize>(fields: [(&str, Value); N]) -> String {
    canonical_string(&Value::Object(Map::from_iter(fields.map(|(k, v)| (k.to_string(), v)))))
}

fn key_array(keys: &[String]) -> Value {
    Value::Array(keys.iter().map(|k| Value::from(k.as_str())).collect())
}

// F1 (adversarial review, DEVIATIONS G1): the public verify routes tried every posted signature with
// every posted key; 400 x 400 in a 62 KiB body cost 5.8 s of CPU per unauthenticated request. The
// work is now counted before any verification and a request over a limit gets a 400 naming it.
#[test]
fn verify_routes_refuse_unbounded_signature_work_and_answer_at_the_limits() {
    let dir = TempDir::new("verify-work");
    let home = sovereign(&dir, "alpha-mesh");
    let server = GmServer::start(&home, &[]);
    let mallory = SigningKey::generate();
    let attack_keys = keys_ending_with(400, &mallory);
    let treaty = crafted_treaty(&mallory, &random_keys(1), 399);
    let body = object_body([("issuer_public_keys", key_array(&attack_keys)), ("treaty", treaty.clone())]);
    assert!(body.len() > 50_000, "the attack body is {} bytes", body.len());
    let started = std::time::Instant::now();
    let r = post_json(server.addr, "/recognition-treaties/verify", &body);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "{\"error\":\"Too many signatures: 400 exceeds the limit of 16 (verify_max_signatures)\"}\n")
    );
    // Few signatures but too many keys.
    let few = crafted_treaty(&mallory, &random_keys(1), 1);
    let body = object_body([("issuer_public_keys", key_array(&attack_keys)), ("treaty", few)]);
    let r = post_json(server.addr, "/recognition-treaties/verify", &body);
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "{\"error\":\"Too many public keys: 400 exceeds the limit of 64 (verify_max_public_keys)\"}\n")
    );
    // Within each cap but over the pair budget: 16 signatures x 64 keys.
    let keys64 = keys_ending_with(64, &mallory);
    let body = object_body([
        ("issuer_public_keys", key_array(&keys64)),
        ("treaty", crafted_treaty(&mallory, &random_keys(1), 15)),
    ]);
    let r = post_json(server.addr, "/recognition-treaties/verify", &body);
    assert_eq!(
        (r.status, r.text().as_str()),
        (
            400,
            "{\"error\":\"Too many signature checks: 1024 exceeds the limit of 256 (verify_max_signature_checks)\"}\n"
        )
    );
    // At the limits (16 signatures x 16 keys = 256 checks, the real pair last) the answer is given.
    let keys16 = keys_ending_with(16, &mallory);
    let at_limit = crafted_treaty(&mallory, &random_keys(1), 15);
    let body = object_body([("issuer_public_keys", key_array(&keys16)), ("treaty", at_limit.clone())]);
    let r = post_json(server.addr, "/recognition-treaties/verify", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&json(&r.text()), "accepted"), &Value::Bool(true), "{}", r.text());
    // verify-with-treaty counts both stages: a self-signed treaty (1 x 1) whose 64 subject keys
    // would each be tried on 16 attestation signatures.
    let treaty = crafted_treaty(&mallory, &random_keys(64), 0);
    let attestation = {
        let mut sigs = Vec::new();
        for i in 0..16 {
            let forged = SigningKey::generate().sign_b64(format!("a {i}").as_bytes());
            sigs.push(json(&format!("{{\"key_id\":\"k\",\"sig\":\"{forged}\"}}")));
        }
        let now = chrono::Utc::now();
        json(&format!(
            "{{\"attestation_id\":\"a-1\",\"issuer_sovereign_id\":\"beta-mesh\",\"subject_id\":\"s\",\"roles\":[\"role:client\"],\
             \"status\":\"active\",\"issued_at\":\"{0}\",\"valid_from\":\"{0}\",\"expires_at\":\"{1}\",\"issued_by\":\"b\",\
             \"claims\":{{}},\"signatures\":{2}}}",
            (now - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ"),
            (now + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ"),
            canonical_string(&Value::Array(sigs))
        ))
    };
    let body = object_body([
        ("attestation", attestation.clone()),
        ("treaty", treaty),
        ("treaty_issuer_public_keys", key_array(&[mallory.public_key().to_b64()])),
    ]);
    let r = post_json(server.addr, "/attestations/verify-with-treaty", &body);
    assert_eq!(
        (r.status, r.text().as_str()),
        (
            400,
            "{\"error\":\"Too many signature checks: 1025 exceeds the limit of 256 (verify_max_signature_checks)\"}\n"
        )
    );
    // /attestations/verify counts the matching issuer's keys from the posted policy.
    let policy = json(&format!(
        "{{\"local_sovereign_id\":\"alpha-mesh\",\"recognized_issuers\":[{{\"sovereign_id\":\"beta-mesh\",\"public_keys\":{}}}]}}",
        canonical_string(&key_array(&keys64))
    ));
    let body = object_body([("attestation", attestation), ("recognition_policy", policy)]);
    let r = post_json(server.addr, "/attestations/verify", &body);
    assert_eq!(
        (r.status, r.text().as_str()),
        (
            400,
            "{\"error\":\"Too many signature checks: 1024 exceeds the limit of 256 (verify_max_signature_checks)\"}\n"
        )
    );
    // Refused requests write no audit event; the answered ones do.
    assert_eq!(count(&home, "SELECT COUNT(*) FROM audit_events WHERE event_json LIKE '%_verified\"%'"), 1);
}

// F1: the limits are settings; raising one lets the same request through.
#[test]
fn verify_limits_are_configurable_in_gm_toml() {
    let dir = TempDir::new("verify-work-config");
    let home = sovereign(&dir, "alpha-mesh");
    with_limits(&home, "verify_max_signatures = 2\n");
    let server = GmServer::start(&home, &[]);
    let mallory = SigningKey::generate();
    let body = object_body([
        ("issuer_public_keys", key_array(&[mallory.public_key().to_b64()])),
        ("treaty", crafted_treaty(&mallory, &random_keys(1), 2)),
    ]);
    let r = post_json(server.addr, "/recognition-treaties/verify", &body);
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "{\"error\":\"Too many signatures: 3 exceeds the limit of 2 (verify_max_signatures)\"}\n")
    );
}
