//! `gm incident bundle` end to end: a bundle taken while the NA serves holds the redacted audit
//! export of the window, a database snapshot, the ops ledger, the live views and config
//! fingerprints, every entry hashed in the manifest and no private key anywhere; with the NA down
//! the views are computed from the database (same connectome bytes); bad requests leave nothing.

use std::collections::BTreeMap;
use std::path::Path;

use age::secrecy::ExposeSecret;
use gm::json::{parse_str, Map};

use crate::harness::{sandbox, Gm, GmServer, TempDir};
use crate::signer::{Node, Operator};

fn manifest(entries: &BTreeMap<String, Vec<u8>>) -> Map {
    parse_str(std::str::from_utf8(&entries["manifest.json"]).unwrap()).unwrap().as_object().unwrap().clone()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".tmp") || n.starts_with(".gm-"))
        .collect()
}

#[test]
fn bundle_from_a_live_na_then_from_the_database_alone() {
    let dir = TempDir::new("incident");
    let home = sandbox(&dir);
    let h = home.to_str().unwrap();
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    let node = Node::new();
    assert_eq!(node.join(server.addr, &op.invite(server.addr, "{}")).status, 201);
    Gm::backup(&home, &recipient, &dir.join("b")).expect(0);
    let out_dir = dir.join("incidents");
    let live = out_dir.join("inc-1.tar.gz.age");
    let url = format!("http://{}", server.addr);
    let (stdout, _) = Gm::new(&[
        "incident",
        "bundle",
        "--home",
        h,
        "--since",
        "2020-01-01T00:00:00Z",
        "--output",
        live.to_str().unwrap(),
        "--recipient",
        &recipient,
        "--na",
        &url,
        "--json",
    ])
    .expect(0);
    assert!(stdout.contains("\"live_error\":null"), "{stdout}");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&live).unwrap().permissions()) & 0o777,
        0o600
    );
    let entries = crate::harness::open_archive(&live, &id);
    for name in [
        "manifest.json",
        "audit.jsonl",
        "audit.jsonl.manifest.json",
        "na.db",
        "gm-ops.db",
        "gm-runtime.json",
        "fingerprints.json",
        "views/healthz.json",
        "views/readyz.json",
        "views/connectome.json",
        "views/crl.json",
        "views/metrics.txt",
    ] {
        assert!(entries.contains_key(name), "{name} in {:?}", entries.keys());
    }
    // Every entry is hashed in the manifest.
    let m = manifest(&entries);
    let files = m.get("files").unwrap().as_array().unwrap();
    assert_eq!(files.len(), entries.len() - 1, "every entry but the manifest itself");
    for f in files {
        let f = f.as_object().unwrap();
        let name = f.get("name").unwrap().as_str().unwrap();
        assert_eq!(
            f.get("sha256").unwrap().as_str().unwrap(),
            gm::crypto::digest::sha256_hex(&entries[name]),
            "{name}"
        );
    }
    assert_eq!(m.get("format").unwrap().as_str(), Some("gm-incident-bundle"));
    assert!(m.get("views").unwrap().as_array().unwrap().iter().all(|v| v
        .as_object()
        .unwrap()
        .get("source")
        .unwrap()
        .as_str()
        .unwrap()
        .starts_with("live http://127.0.0.1:")));
    // The audit export is redacted; the join is in it.
    let audit = String::from_utf8(entries["audit.jsonl"].clone()).unwrap();
    assert!(audit.contains("\"event_type\": \"certificate_issued\""), "{audit}");
    assert!(audit.contains("<redacted>"), "{audit}");
    assert!(String::from_utf8_lossy(&entries["views/metrics.txt"]).contains("gm_build_info"));
    // No private key anywhere: neither the NA key nor the operator key nor the age identity.
    let na_key = std::fs::read_to_string(home.join("keys/na.key")).unwrap();
    let secret_line = na_key.lines().find(|l| !l.starts_with('#') && !l.trim().is_empty()).unwrap().trim().to_string();
    let fingerprints = String::from_utf8(entries["fingerprints.json"].clone()).unwrap();
    assert!(fingerprints.contains("\"na_private_key\""), "{fingerprints}");
    assert!(
        fingerprints.contains(&gm::crypto::digest::sha256_hex(na_key.as_bytes())),
        "the key file is fingerprinted by its hash: {fingerprints}"
    );
    for (name, bytes) in &entries {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains(&secret_line), "{name} holds the NA private key");
        assert!(!text.contains(id.to_string().expose_secret()), "{name} holds the age identity");
    }
    let live_connectome = entries["views/connectome.json"].clone();
    drop(server);

    // The NA is down: the views come from the database, and the manifest says why.
    let offline = out_dir.join("inc-2.tar.gz.age");
    let (stdout, _) = Gm::new(&[
        "incident",
        "bundle",
        "--home",
        h,
        "--since",
        "2020-01-01T00:00:00Z",
        "--output",
        offline.to_str().unwrap(),
        "--recipient",
        &recipient,
        "--na",
        "http://127.0.0.1:9",
    ])
    .expect(0);
    assert!(stdout.contains("from the database"), "{stdout}");
    let entries = crate::harness::open_archive(&offline, &id);
    assert_eq!(entries["views/connectome.json"], live_connectome, "the same connectome bytes as served");
    assert!(entries.contains_key("views/crl.json") && entries.contains_key("views/metrics.txt"));
    assert!(!entries.contains_key("views/healthz.json"));
    let m = manifest(&entries);
    assert!(m.get("live_error").unwrap().as_str().unwrap().starts_with("http://127.0.0.1:9"), "{m:?}");

    // Refusals leave nothing behind and change nothing.
    let before = std::fs::read(&live).unwrap();
    let (_, stderr) = Gm::new(&[
        "incident",
        "bundle",
        "--home",
        h,
        "--since",
        "2020-01-01T00:00:00Z",
        "--output",
        live.to_str().unwrap(),
        "--recipient",
        &recipient,
        "--offline",
    ])
    .expect(2);
    assert!(stderr.contains("refusing to overwrite"), "{stderr}");
    assert_eq!(std::fs::read(&live).unwrap(), before);
    let (_, stderr) = Gm::new(&[
        "incident",
        "bundle",
        "--home",
        h,
        "--since",
        "2020-01-01T00:00:00Z",
        "--output",
        out_dir.join("plain.tar.gz").to_str().unwrap(),
    ])
    .expect(2);
    assert!(stderr.contains("must be encrypted"), "{stderr}");
    let (_, stderr) = Gm::new(&[
        "incident",
        "bundle",
        "--home",
        h,
        "--since",
        "2030-01-01T00:00:00Z",
        "--until",
        "2029-01-01T00:00:00Z",
        "--output",
        out_dir.join("x.tar.gz.age").to_str().unwrap(),
        "--recipient",
        &recipient,
    ])
    .expect(2);
    assert!(stderr.contains("empty window"), "{stderr}");
    Gm::new(&["incident", "bundle", "--home", h, "--since", "yesterday", "--output", "x", "--recipient", &recipient])
        .expect(2);
    assert!(leftovers(&out_dir).is_empty(), "{:?}", leftovers(&out_dir));
    assert!(!out_dir.join("x.tar.gz.age").exists() && !out_dir.join("plain.tar.gz").exists());
    let (history, _) = Gm::new(&["managed", "history", "--home", h, "--json"]).expect(0);
    assert_eq!(history.matches("\"kind\":\"incident\"").count(), 3, "{history}");
}

/// Every value of `column` in `table` of the SQLite file `db`.
fn column(db: &Path, table: &str, column: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn.prepare(&format!("SELECT {column} FROM {table}")).unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap).collect();
    rows
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// F8: the bundled database copy held live invite tokens; a token from a decrypted bundle joined the
// live NA.
#[test]
fn the_bundled_database_holds_no_live_token_or_nonce_and_its_tokens_cannot_join() {
    let dir = TempDir::new("incident-scrub");
    let home = sandbox(&dir);
    let h = home.to_str().unwrap();
    let id = age::x25519::Identity::generate();
    let server = GmServer::start(&home, &["--no-scheduler"]);
    let op = Operator::sandbox(&home);
    let redeemed = op.invite(server.addr, "{}");
    assert_eq!(Node::new().join(server.addr, &redeemed).status, 201);
    let live_token = op.invite(server.addr, "{}");
    let bundle = dir.join("inc.tar.gz.age");
    let url = format!("http://{}", server.addr);
    let args = ["incident", "bundle", "--home", h, "--since", "2020-01-01T00:00:00Z", "--na", &url];
    let recipient = id.to_public().to_string();
    Gm::new(&[&args[..], &["--output", bundle.to_str().unwrap(), "--recipient", &recipient]].concat()).expect(0);

    let live_db = home.join("na.db");
    let live_tokens = column(&live_db, "invite_tokens", "token_id");
    let live_nonces = column(&live_db, "nonces", "nonce");
    assert!(live_tokens.contains(&live_token) && live_tokens.contains(&redeemed), "the live database is untouched");
    assert!(!live_nonces.is_empty(), "the join and the admin requests stored nonces");

    let entries = crate::harness::open_archive(&bundle, &id);
    let copy = dir.join("bundled-na.db");
    std::fs::write(&copy, &entries["na.db"]).unwrap();
    let bundled_tokens = column(&copy, "invite_tokens", "token_id");
    let fingerprint = |s: &str| format!("fingerprint:{}", gm::crypto::digest::token_fingerprint(s));
    let mut expected: Vec<String> = live_tokens.iter().map(|t| fingerprint(t)).collect();
    let mut found = bundled_tokens.clone();
    expected.sort();
    found.sort();
    assert_eq!(found, expected, "every token replaced by its fingerprint");
    let mut expected: Vec<String> = live_nonces.iter().map(|n| fingerprint(n)).collect();
    let mut found = column(&copy, "nonces", "nonce");
    expected.sort();
    found.sort();
    assert_eq!(found, expected, "every nonce replaced by its fingerprint");
    for secret in live_tokens.iter().chain(&live_nonces) {
        for (name, bytes) in &entries {
            assert!(!contains(bytes, secret.as_bytes()), "{name} holds a live token or nonce");
        }
    }
    let events = column(&copy, "audit_events", "event_json");
    assert!(events.iter().any(|e| e.contains("<redacted>")), "audit events redacted: {events:?}");
    let m = manifest(&entries);
    let redaction = m.get("database_redaction").unwrap().as_object().unwrap();
    assert_eq!(redaction.get("invite_tokens_fingerprinted").unwrap().as_i64(), Some(live_tokens.len() as i64));

    // A token read from the bundle does not enroll; the live token still does.
    for token in &bundled_tokens {
        let r = Node::new().join(server.addr, token);
        assert!(r.status == 400 || r.status == 403, "{}: {}", r.status, r.text());
    }
    assert_eq!(Node::new().join(server.addr, &live_token).status, 201);
}
