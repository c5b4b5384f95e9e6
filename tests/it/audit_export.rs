//! `gm managed audit-export` end to end (`operations.md` §2.3, `deviations.md` D22): real audit
//! events from a served NA exported byte for byte with upstream's redaction, the json layout pinned
//! against Python's `json.dumps`, the type filter and time window, the manifest digest, file modes,
//! the untouched source database and the refusal to overwrite.

use std::path::{Path, PathBuf};

use gm::crypto::canonical::{to_string_with, Style};
use gm::json::{parse_str, Map, Value};
use gm::store::{audit, OpenMode, Store};

use crate::harness::{request, sandbox, Gm, GmServer, TempDir};
use crate::signer::{audience, now_iso, Node, Operator};

/// Known rows (event_id, event_json, created_at), stored out of order.
const KNOWN_ROWS: [(&str, &str, &str); 3] = [
    ("e2", "{\"event_id\": \"e2\", \"event_type\": \"admin_auth_failed\", \"created_at\": \"2026-03-02T10:00:00+00:00\", \"details\": {\"key_id\": \"k\", \"reason\": \"invalid_signature\", \"nonce\": \"n\", \"empty\": {}, \"list\": []}}", "2026-03-02T10:00:00+00:00"),
    ("e3", "{\"event_id\": \"e3\", \"event_type\": \"note\", \"created_at\": \"2026-03-03T10:00:00+00:00\", \"details\": {\"text\": \"caf\\u00e9 \\\"q\\\"\", \"n\": 1.5}}", "2026-03-03T10:00:00+00:00"),
    ("e1", "{\"event_id\": \"e1\", \"event_type\": \"invite_created\", \"created_at\": \"2026-03-01T10:00:00+00:00\", \"details\": {\"token_fingerprint\": \"abc\", \"roles\": [\"role:client\"], \"remote_addr\": \"127.0.0.1\"}}", "2026-03-01T10:00:00+00:00"),
];
/// python3: json.dumps(redacted_events, indent=2, sort_keys=True) + "\n"
const KNOWN_JSON: &str = "[\n  {\n    \"created_at\": \"2026-03-01T10:00:00+00:00\",\n    \"details\": {\n      \"remote_addr\": \"127.0.0.1\",\n      \"roles\": [\n        \"role:client\"\n      ],\n      \"token_fingerprint\": \"<redacted>\"\n    },\n    \"event_id\": \"e1\",\n    \"event_type\": \"invite_created\"\n  },\n  {\n    \"created_at\": \"2026-03-02T10:00:00+00:00\",\n    \"details\": {\n      \"empty\": {},\n      \"key_id\": \"k\",\n      \"list\": [],\n      \"nonce\": \"<redacted>\",\n      \"reason\": \"invalid_signature\"\n    },\n    \"event_id\": \"e2\",\n    \"event_type\": \"admin_auth_failed\"\n  },\n  {\n    \"created_at\": \"2026-03-03T10:00:00+00:00\",\n    \"details\": {\n      \"n\": 1.5,\n      \"text\": \"caf\\u00e9 \\\"q\\\"\"\n    },\n    \"event_id\": \"e3\",\n    \"event_type\": \"note\"\n  }\n]\n";
/// python3: "".join(json.dumps(e, sort_keys=True) + "\n" for e in redacted_events)
const KNOWN_JSONL: &str = "{\"created_at\": \"2026-03-01T10:00:00+00:00\", \"details\": {\"remote_addr\": \"127.0.0.1\", \"roles\": [\"role:client\"], \"token_fingerprint\": \"<redacted>\"}, \"event_id\": \"e1\", \"event_type\": \"invite_created\"}\n{\"created_at\": \"2026-03-02T10:00:00+00:00\", \"details\": {\"empty\": {}, \"key_id\": \"k\", \"list\": [], \"nonce\": \"<redacted>\", \"reason\": \"invalid_signature\"}, \"event_id\": \"e2\", \"event_type\": \"admin_auth_failed\"}\n{\"created_at\": \"2026-03-03T10:00:00+00:00\", \"details\": {\"n\": 1.5, \"text\": \"caf\\u00e9 \\\"q\\\"\"}, \"event_id\": \"e3\", \"event_type\": \"note\"}\n";
/// The e2 event alone in json format (the --since/--until window test).
const KNOWN_E2_JSON: &str = "[\n  {\n    \"created_at\": \"2026-03-02T10:00:00+00:00\",\n    \"details\": {\n      \"empty\": {},\n      \"key_id\": \"k\",\n      \"list\": [],\n      \"nonce\": \"<redacted>\",\n      \"reason\": \"invalid_signature\"\n    },\n    \"event_id\": \"e2\",\n    \"event_type\": \"admin_auth_failed\"\n  }\n]\n";

/// The rule as the spec states it, written independently of gm's implementation.
fn spec_redact(value: Value) -> Value {
    const PARTS: [&str; 10] = [
        "admin_signature",
        "body",
        "invite_token",
        "na_private_key",
        "nonce",
        "operator_private_key",
        "private_key",
        "request_body",
        "signature",
        "token",
    ];
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let hidden = PARTS.iter().any(|p| k.to_lowercase().contains(p));
                    let v = if hidden { Value::from("<redacted>") } else { spec_redact(v) };
                    (k, v)
                })
                .collect::<Map>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(spec_redact).collect()),
        other => other,
    }
}

/// A sandbox whose NA recorded invites, a join, a bad-key admin failure and an admin nonce replay;
/// the server is stopped before returning.
fn home_with_real_events(dir: &TempDir) -> PathBuf {
    let home = sandbox(dir);
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    let token = op.invite(server.addr, "{\"roles\":[\"role:client\"]}");
    op.invite(server.addr, "{}");
    assert_eq!(Node::new().join(server.addr, &token).status, 201);
    let impostor = Operator { key: gm::crypto::keys::SigningKey::generate(), key_id: "operator-local".into() };
    assert_eq!(impostor.send(server.addr, "POST", "/admin/invite", "{}").status, 401);
    let raw = op.raw_v2(&audience(server.addr), "POST", "/admin/invite", "{}", &now_iso(), "replayed-nonce-1");
    assert_eq!(request(server.addr, &raw).status, 201);
    assert_eq!(request(server.addr, &raw).status, 401);
    assert_eq!(server.terminate(), 0);
    home
}

/// A fresh database (gm's own schema) holding exactly `rows`.
fn db_with_rows(path: &Path, rows: &[(&str, &str, &str)]) {
    let store = Store::open(path, OpenMode::Serve, "2026-01-01T00:00:00+00:00").unwrap();
    let rows: Vec<(String, String, String)> =
        rows.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    store
        .write(move |c| {
            for (id, json, at) in &rows {
                audit::insert(c, id, json, at)?;
            }
            Ok(())
        })
        .unwrap();
}

/// The expected jsonl bytes recomputed from the database rows (ordered by `created_at` string).
fn expected_jsonl(db: &Path, event_type: Option<&str>) -> String {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = c.prepare("SELECT event_json FROM audit_events ORDER BY created_at").unwrap();
    let rows: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    let mut out = String::new();
    for json in rows {
        let event = spec_redact(parse_str(&json).unwrap());
        let kind = event.as_object().unwrap().get("event_type").unwrap().as_str().unwrap().to_string();
        if event_type.is_none_or(|t| t == kind) {
            out.push_str(&to_string_with(&event, &Style::PYTHON_DEFAULT));
            out.push('\n');
        }
    }
    out
}

/// SHA-256 of the database, its WAL and rollback journal (None when absent). The `-shm` wal-index
/// is left out: it is shared memory that every reader, even a read-only one, updates (read marks).
fn db_files(db: &Path) -> Vec<(String, Option<String>)> {
    ["", "-wal", "-journal"]
        .iter()
        .map(|s| {
            let p = format!("{}{s}", db.display());
            let digest = std::fs::read(&p).ok().map(|b| gm::crypto::digest::sha256_hex(&b));
            (p, digest)
        })
        .collect()
}

/// The database and journal bytes are identical; the only allowed difference is the empty `-wal`
/// SQLite creates beside a WAL-mode database when a reader opens it after a clean shutdown removed it
/// (a reader needs the wal-index; an empty WAL holds no data).
fn assert_unchanged(db: &Path, before: &[(String, Option<String>)]) {
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    for ((path, was), (_, now)) in before.iter().zip(db_files(db)) {
        let created_empty_wal = path.ends_with("-wal") && was.is_none() && now.as_deref() == Some(EMPTY_SHA256);
        assert!(was == &now || created_empty_wal, "{path} changed: {was:?} -> {now:?}");
    }
}

fn mode(path: &Path) -> u32 {
    gm::files::private::mode_of(path).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn export_of_real_events_is_byte_exact_redacted_and_leaves_the_db_untouched() {
    let dir = TempDir::new("audit-export");
    let home = home_with_real_events(&dir);
    let db = home.join("na.db");
    let before = db_files(&db);
    let out = dir.join("exports/nested/audit.jsonl");
    let (stdout, stderr) =
        Gm::new(&["managed", "audit-export", "--home", s(&home), "--output", s(&out), "--json"]).expect(0);
    assert_eq!(stderr, "");
    assert_unchanged(&db, &before);

    let bytes = std::fs::read_to_string(&out).unwrap();
    assert_eq!(bytes, expected_jsonl(&db, None));
    assert!(bytes.contains("\"token_fingerprint\": \"<redacted>\""), "{bytes}");
    assert!(bytes.contains("\"invite_token_fingerprint\": \"<redacted>\""), "{bytes}");
    assert!(bytes.contains("\"nonce\": \"<redacted>\""), "{bytes}");
    assert!(bytes.contains("\"reason\": \"invalid_signature\""), "values are never redacted: {bytes}");
    assert!(!bytes.contains("replayed-nonce-1"), "{bytes}");
    let rows: i64 = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM audit_events", [], |r| r.get(0))
        .unwrap();
    assert!(rows >= 6, "3 invites, a certificate (the join) and 2 auth failures at least: {bytes}");
    assert_eq!(bytes.lines().count() as i64, rows);
    assert_eq!(mode(&out), 0o600);

    let manifest_path = dir.join("exports/nested/audit.jsonl.manifest.json");
    assert_eq!(mode(&manifest_path), 0o600);
    let manifest = parse_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let m = manifest.as_object().unwrap();
    let sha = gm::crypto::digest::sha256_hex(bytes.as_bytes());
    assert_eq!(m.get("sha256").unwrap().as_str(), Some(sha.as_str()));
    assert_eq!(m.get("event_count").unwrap().as_i64(), Some(rows));
    assert_eq!(m.get("format").unwrap().as_str(), Some("jsonl"));
    assert_eq!(m.get("source_db").unwrap().as_str(), Some(s(&db)));
    assert!(m.get("since").unwrap().is_null() && m.get("until").unwrap().is_null());
    let rule = m.get("redaction_rule").unwrap().as_object().unwrap();
    assert_eq!(rule.get("keys").unwrap().as_array().unwrap().len(), 10);

    let expected_stdout = format!(
        "{{\n  \"db_path\": \"{}\",\n  \"output\": \"{}\",\n  \"format\": \"jsonl\",\n  \"event_count\": {rows},\n  \"manifest\": \"{}\",\n  \"sha256\": \"{sha}\"\n}}\n",
        s(&db),
        s(&out),
        s(&manifest_path)
    );
    assert_eq!(stdout, expected_stdout);
    // The export is recorded in the ops ledger beside the database.
    let (history, _) = Gm::new(&["managed", "history", "--home", s(&home), "--json"]).expect(0);
    assert!(history.contains("\"kind\":\"export\""), "{history}");
    assert!(history.contains(&format!("\"sha256\":\"{sha}\"")), "{history}");
}

#[test]
fn event_type_filter_keeps_exact_matches_only() {
    let dir = TempDir::new("audit-export-type");
    let home = home_with_real_events(&dir);
    let db = home.join("na.db");
    let out = dir.join("failures.jsonl");
    let (stdout, _) = Gm::new(&[
        "managed",
        "audit-export",
        "--db-path",
        s(&db),
        "--output",
        s(&out),
        "--event-type",
        "admin_auth_failed",
    ])
    .expect(0);
    let bytes = std::fs::read_to_string(&out).unwrap();
    assert_eq!(bytes, expected_jsonl(&db, Some("admin_auth_failed")));
    assert_eq!(bytes.lines().count(), 2);
    assert!(stdout.starts_with("exported 2 events from "), "{stdout}");
    let out2 = dir.join("none.jsonl");
    Gm::new(&["managed", "audit-export", "--db-path", s(&db), "--output", s(&out2), "--event-type", "admin_auth"])
        .expect(0);
    assert_eq!(std::fs::read(&out2).unwrap(), b"", "no events => empty jsonl file");
}

#[test]
fn json_and_jsonl_bytes_match_python_for_a_known_event_set() {
    let dir = TempDir::new("audit-export-known");
    let db = dir.join("na.db");
    db_with_rows(&db, &KNOWN_ROWS);
    let json = dir.join("a.json");
    Gm::new(&["managed", "audit-export", "--db-path", s(&db), "--output", s(&json), "--format", "json"]).expect(0);
    assert_eq!(std::fs::read_to_string(&json).unwrap(), KNOWN_JSON);
    let jsonl = dir.join("a.jsonl");
    Gm::new(&["managed", "audit-export", "--db-path", s(&db), "--output", s(&jsonl)]).expect(0);
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap(), KNOWN_JSONL);

    let empty_db = dir.join("empty.db");
    db_with_rows(&empty_db, &[]);
    let empty = dir.join("empty.json");
    Gm::new(&["managed", "audit-export", "--db-path", s(&empty_db), "--output", s(&empty), "--format", "json"])
        .expect(0);
    assert_eq!(std::fs::read_to_string(&empty).unwrap(), "[]\n");
}

#[test]
fn since_is_inclusive_and_until_exclusive() {
    let dir = TempDir::new("audit-export-window");
    let db = dir.join("na.db");
    db_with_rows(&db, &KNOWN_ROWS);
    let out = dir.join("window.json");
    let (stdout, _) = Gm::new(&[
        "managed",
        "audit-export",
        "--db-path",
        s(&db),
        "--output",
        s(&out),
        "--format",
        "json",
        "--since",
        "2026-03-02T10:00:00Z",
        "--until",
        "2026-03-03T11:00:00+01:00",
        "--json",
    ])
    .expect(0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), KNOWN_E2_JSON);
    assert!(stdout.contains("\"event_count\": 1,"), "{stdout}");
    let manifest = std::fs::read_to_string(dir.join("window.json.manifest.json")).unwrap();
    assert!(manifest.contains("\"since\": \"2026-03-02T10:00:00+00:00\""), "{manifest}");
    assert!(manifest.contains("\"until\": \"2026-03-03T10:00:00+00:00\""), "{manifest}");

    let (_, stderr) = Gm::new(&[
        "managed",
        "audit-export",
        "--db-path",
        s(&db),
        "--output",
        s(&dir.join("x.json")),
        "--since",
        "2026-03-02T10:00:00Z",
        "--until",
        "2026-03-02T10:00:00Z",
    ])
    .expect(2);
    assert_eq!(
        stderr,
        "error: empty time window: --since 2026-03-02T10:00:00+00:00 is not before --until 2026-03-02T10:00:00+00:00\nhint: --since must be earlier than --until\n"
    );
    assert!(!dir.join("x.json").exists());
}

#[test]
fn existing_output_is_refused_without_force_and_replaced_with_it() {
    let dir = TempDir::new("audit-export-force");
    let db = dir.join("na.db");
    db_with_rows(&db, &KNOWN_ROWS);
    let out = dir.join("audit.jsonl");
    std::fs::write(&out, b"old evidence").unwrap();
    let (stdout, stderr) = Gm::new(&["managed", "audit-export", "--db-path", s(&db), "--output", s(&out)]).expect(2);
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!(
            "error: refusing to overwrite existing file {}\nhint: pass --force to replace it, or choose another --output\n",
            s(&out)
        )
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"old evidence");
    assert!(!dir.join("audit.jsonl.manifest.json").exists());
    assert!(!dir.join("audit.jsonl.tmp").exists());

    Gm::new(&["managed", "audit-export", "--db-path", s(&db), "--output", s(&out), "--force"]).expect(0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), KNOWN_JSONL);
    assert_eq!(mode(&out), 0o600);
    // A second run without --force now meets the manifest too and refuses.
    Gm::new(&["managed", "audit-export", "--db-path", s(&db), "--output", s(&out)]).expect(2);
}

#[test]
fn missing_database_and_the_database_as_output_are_refused() {
    let dir = TempDir::new("audit-export-refusals");
    let missing = dir.join("nope.db");
    let (_, stderr) =
        Gm::new(&["managed", "audit-export", "--db-path", s(&missing), "--output", s(&dir.join("a"))]).expect(2);
    assert_eq!(
        stderr,
        format!(
            "error: database {} does not exist\nhint: check --db-path, DB_PATH or --home: the database must already exist\n",
            s(&missing)
        )
    );
    assert!(!missing.exists(), "a read-only export never creates the database");
    let db = dir.join("na.db");
    db_with_rows(&db, &KNOWN_ROWS);
    let before = db_files(&db);
    let wal = format!("{}-wal", s(&db));
    let (_, stderr) = Gm::new(&["managed", "audit-export", "--db-path", s(&db), "--output", &wal, "--force"]).expect(2);
    assert!(stderr.starts_with("error: refusing to write "), "{stderr}");
    assert_unchanged(&db, &before);
}

#[test]
fn a_failed_export_leaves_no_output_and_no_tmp_file() {
    let dir = TempDir::new("audit-export-bad-row");
    let db = dir.join("na.db");
    db_with_rows(&db, &[KNOWN_ROWS[0], ("bad", "{\"event_type\": ", "2026-03-04T00:00:00+00:00")]);
    let out = dir.join("out/audit.jsonl");
    let (stdout, stderr) = Gm::new(&["managed", "audit-export", "--db-path", s(&db), "--output", s(&out)]).expect(2);
    assert_eq!(stdout, "");
    assert!(
        stderr.starts_with(
            "error: cannot read the audit event created at \"2026-03-04T00:00:00+00:00\": event_json is not valid JSON"
        ),
        "{stderr}"
    );
    assert!(!out.exists());
    assert!(!dir.join("out/audit.jsonl.tmp").exists());
    assert!(!dir.join("out/audit.jsonl.manifest.json").exists());
}

#[test]
fn a_signed_manifest_verifies_and_any_change_is_caught() {
    let dir = TempDir::new("audit-signed");
    let home = home_with_real_events(&dir);
    let out = dir.join("signed.jsonl");
    let key = home.join("offline/operator.key");
    let public = home.join("offline/operator.pub");
    Gm::new(&[
        "managed",
        "audit-export",
        "--home",
        s(&home),
        "--output",
        s(&out),
        "--signing-key",
        s(&key),
        "--signing-key-id",
        "operator-local",
    ])
    .expect(0);
    let (stdout, _) = Gm::new(&["managed", "audit-verify", s(&out), "--public-key", s(&public)]).expect(0);
    assert!(stdout.starts_with("valid: ") && stdout.contains("manifest signed by operator-local"), "{stdout}");
    // Without a key only the digest and count are checked.
    Gm::new(&["managed", "audit-verify", s(&out)]).expect(0);
    // The manifest's fields are covered by the signature.
    let manifest = dir.join("signed.jsonl.manifest.json");
    let original = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, original.replace("\"format\": \"jsonl\"", "\"format\": \"jsonl \"")).unwrap();
    let (_, stderr) = Gm::new(&["managed", "audit-verify", s(&out), "--public-key", s(&public)]).expect(1);
    assert!(stderr.contains("check signature failed"), "{stderr}");
    std::fs::write(&manifest, &original).unwrap();
    // A changed export no longer matches its digest.
    let mut body = std::fs::read_to_string(&out).unwrap();
    body.push_str("{\"event_type\": \"forged\"}\n");
    std::fs::write(&out, body).unwrap();
    let (_, stderr) = Gm::new(&["managed", "audit-verify", s(&out), "--public-key", s(&public)]).expect(1);
    assert!(stderr.contains("check sha256 failed"), "{stderr}");
    // An unsigned export does not pass a signature check; half a signing request is a usage error.
    let plain = dir.join("plain.jsonl");
    Gm::new(&["managed", "audit-export", "--home", s(&home), "--output", s(&plain)]).expect(0);
    let (_, stderr) = Gm::new(&["managed", "audit-verify", s(&plain), "--public-key", s(&public)]).expect(1);
    assert!(stderr.contains("not signed"), "{stderr}");
    Gm::new(&[
        "managed",
        "audit-export",
        "--home",
        s(&home),
        "--output",
        s(&dir.join("x.jsonl")),
        "--signing-key",
        s(&key),
    ])
    .expect(2);
}
