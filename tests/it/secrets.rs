//! Secret scanning (issue 8 item 4): one representative flow with the real binary, then every
//! artifact it produced is searched for every secret the flow handled.
//!
//! The flow: quickstart, `gm serve` at DEBUG with its stderr captured, invites (CLI and signed by
//! the test), `gm join` plus a test node's join, heartbeat and renew, a revoke, failed admin and node
//! authentications (bad signature, replayed nonce, stale timestamp, unknown key), `gm managed
//! backup`/`verify`/`restore-drill`/`audit-export`, `gm incident bundle` (decrypted here) and `gm
//! readiness --format json` (also with `--output`).
//!
//! The secrets: the base64 seed (and its hex form) of every private key (keys/na.key,
//! offline/root.key, offline/operator.key, the CLI node's node.key, the test node's key), the age
//! identity (`AGE-SECRET-KEY-1…`, and that prefix at all), every invite token returned by
//! `/admin/invite`, and every `X-Admin-Signature`, `X-Admin-Nonce`, node `signature` and node
//! `nonce` sent.
//!
//! The rule:
//! * No secret appears in the server's log, in any command's stdout or stderr, in the audit export
//!   or its manifest, in the readiness report, or in any incident bundle entry, the two database
//!   snapshots `na.db` and `gm-ops.db` included (searched in every encoding: base64, hex, raw bytes).
//! * One exception by design: the stdout of `gm admin invite` is the token it was asked for.
//! * F8: upstream keys invites by the raw token (`invites.token_id`), keeps accepted nonces
//!   (`nonces`) and records a replayed nonce in `admin_auth_failed`/`node_auth_failed` (§14.2); the
//!   live database keeps them, the bundle's copy replaces them by fingerprints and redacts its audit
//!   events, so a token from a decrypted bundle cannot enroll a node.

use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use gm::crypto::keys::SigningKey;
use gm::json::Value;

use crate::harness::{request, Gm, GmServer, TempDir};
use crate::signer::{audience, field, now_iso, Node, Operator};

/// A secret and where it came from (the label is what a failure prints, never the value).
struct Secret {
    label: String,
    /// Text forms searched for.
    forms: Vec<String>,
    /// Raw bytes searched for in the database snapshots.
    raw: Option<Vec<u8>>,
}

#[derive(Default)]
struct Secrets(Vec<Secret>);

impl Secrets {
    fn private_key(&mut self, label: &str, seed_b64: &str) {
        let seed = gm::crypto::digest::b64_decode(seed_b64).unwrap();
        assert_eq!(seed.len(), 32, "{label}");
        let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
        self.0.push(Secret { label: label.into(), forms: vec![seed_b64.to_string(), hex], raw: Some(seed) });
    }

    fn key_file(&mut self, path: &Path) {
        self.private_key(&path.display().to_string(), &seed_of_key_file(path));
    }

    fn signature(&mut self, label: &str, sig_b64: &str) {
        let raw = gm::crypto::digest::b64_decode(sig_b64).unwrap();
        self.0.push(Secret { label: label.into(), forms: vec![sig_b64.to_string()], raw: Some(raw) });
    }

    fn text(&mut self, label: &str, value: &str) {
        self.0.push(Secret { label: label.into(), forms: vec![value.to_string()], raw: None });
    }
}

/// The base64 seed line of an upstream private key file.
fn seed_of_key_file(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect::<String>()
}

fn seed_of(key: &SigningKey) -> String {
    key.to_file_text(None).lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
}

fn header(raw: &str, name: &str) -> String {
    raw.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).unwrap().trim().to_string()
}

/// Every produced artifact: a label and its bytes.
#[derive(Default)]
struct Artifacts(Vec<(String, Vec<u8>)>);

impl Artifacts {
    fn add(&mut self, label: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.0.push((label.into(), bytes.into()));
    }

    /// Runs `gm ARGS` at DEBUG, asserts its status and records stdout and stderr.
    fn run(&mut self, args: &[&str], status: Option<i32>) -> String {
        let out = Gm::new(args).env("GENESIS_LOG_LEVEL", "DEBUG").output();
        let (stdout, stderr) =
            (String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string());
        if let Some(s) = status {
            assert_eq!(out.status.code(), Some(s), "gm {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        }
        let name = args.iter().take(2).copied().collect::<Vec<_>>().join(" ");
        self.add(format!("stdout of gm {name}"), stdout.clone());
        self.add(format!("stderr of gm {name}"), stderr);
        stdout
    }
}

/// Sends a signed admin request; records its signature and nonce; returns the response.
fn admin(
    secrets: &mut Secrets,
    addr: SocketAddr,
    op: &Operator,
    label: &str,
    (path, body, timestamp): (&str, &str, &str),
) -> (String, crate::harness::HttpResponse) {
    let raw = op.raw_v2(&audience(addr), "POST", path, body, timestamp, &gm::crypto::digest::uuid4());
    secrets.signature(&format!("admin signature ({label})"), &header(&raw, "X-Admin-Signature"));
    secrets.text(&format!("admin nonce ({label})"), &header(&raw, "X-Admin-Nonce"));
    let r = request(addr, &raw);
    (raw, r)
}

/// Records a node body's nonce and signature.
fn node_body(secrets: &mut Secrets, label: &str, body: &gm::json::Map) {
    let text = |k: &str| body.get(k).unwrap().as_str().unwrap().to_string();
    secrets.signature(&format!("node signature ({label})"), &text("signature"));
    secrets.text(&format!("node nonce ({label})"), &text("nonce"));
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_key_token_signature_or_nonce_reaches_a_log_output_export_bundle_or_report() {
    let dir = TempDir::new("secrets");
    let home = dir.join("home");
    let h = home.to_str().unwrap();
    let mut artifacts = Artifacts::default();
    let mut secrets = Secrets::default();

    artifacts.run(&["quickstart", "--home", h, "--no-serve"], Some(0));
    for key in ["keys/na.key", "offline/root.key", "offline/operator.key"] {
        secrets.key_file(&home.join(key));
    }
    let age_identity = std::fs::read_to_string(home.join("offline/backup.key")).unwrap();
    let age_identity =
        age_identity.lines().map(str::trim).find(|l| l.starts_with("AGE-SECRET-KEY-1")).unwrap().to_string();
    secrets.0.push(Secret {
        label: "age identity offline/backup.key".into(),
        forms: vec![age_identity.clone(), age_identity.to_lowercase(), "AGE-SECRET-KEY-1".into()],
        raw: None,
    });
    let identity = age::x25519::Identity::from_str(&age_identity).unwrap();
    let recipient = identity.to_public().to_string();
    assert_eq!(identity.to_string().expose_secret(), &age_identity);

    let server = GmServer::start_with(&home, &["--no-scheduler"], &[("GENESIS_LOG_LEVEL", "DEBUG")]);
    let url = format!("http://{}", server.addr);
    let op = Operator::sandbox(&home);

    // An invite through the CLI, redeemed by `gm join`; then revoked through the CLI.
    let invite_out = artifacts.run(&["admin", "invite", "--na", &url, "--home", h, "--json"], Some(0));
    let cli_token = gm::json::parse_str(&invite_out)
        .unwrap()
        .as_object()
        .unwrap()
        .get("token_id")
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    secrets.text("invite token (gm admin invite)", &cli_token);
    // Its stdout is the token by design; keep the stderr only.
    artifacts.0.retain(|(l, _)| l != "stdout of gm admin invite");
    let node_home = dir.join("node1");
    let joined = artifacts
        .run(&["join", "--na", &url, "--token", &cli_token, "--home", node_home.to_str().unwrap(), "--json"], Some(0));
    secrets.key_file(&node_home.join("node.key"));
    let cli_cert = gm::json::parse_str(&joined)
        .unwrap()
        .as_object()
        .unwrap()
        .get("cert_id")
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    artifacts.run(
        &["admin", "revoke", "--na", &url, "--home", h, "--cert-id", &cli_cert, "--reason", "key_compromise"],
        Some(0),
    );

    // An invite signed here, redeemed by a test node that heartbeats and renews.
    let (_, r) = admin(&mut secrets, server.addr, &op, "invite", ("/admin/invite", "{}", &now_iso()));
    assert_eq!(r.status, 201, "{}", r.text());
    let token = field(&r, "token_id");
    secrets.text("invite token (POST /admin/invite)", &token);
    let node = Node::new();
    secrets.private_key("test node key", &seed_of(&node.key));
    let join = node
        .sign(&[("invite_token", Value::from(token.as_str())), ("validity_hours", Value::from(168i64))], &now_iso());
    node_body(&mut secrets, "join", &join);
    let r = node.post(server.addr, "/join", &join);
    assert_eq!(r.status, 201, "{}", r.text());
    let cert = field(&r, "cert_id");
    let beat = node.sign(&[("cert_id", Value::from(cert.as_str())), ("status", Value::from("healthy"))], &now_iso());
    node_body(&mut secrets, "heartbeat", &beat);
    assert_eq!(node.post(server.addr, "/heartbeat", &beat).status, 200);
    assert_eq!(node.post(server.addr, "/heartbeat", &beat).status, 401, "a replayed heartbeat");
    let renew =
        node.sign(&[("cert_id", Value::from(cert.as_str())), ("validity_hours", Value::from(24i64))], &now_iso());
    node_body(&mut secrets, "renew", &renew);
    assert_eq!(node.post(server.addr, "/renew", &renew).status, 201);

    // Failed operator authentications.
    let impostor = Operator { key: SigningKey::generate(), key_id: "operator-local".into() };
    let (_, r) = admin(&mut secrets, server.addr, &impostor, "bad signature", ("/admin/invite", "{}", &now_iso()));
    assert_eq!((r.status, r.text()), (401, "{\"error\":\"Invalid admin signature\"}\n".to_string()));
    let (raw, r) =
        admin(&mut secrets, server.addr, &op, "replayed", ("/admin/revoke", "{\"cert_id\":\"nope\"}", &now_iso()));
    assert_eq!(r.status, 404, "{}", r.text());
    let r = request(server.addr, &raw);
    assert_eq!((r.status, r.text()), (401, "{\"error\":\"Admin nonce already used\"}\n".to_string()));
    let stale = gm::model::timestamp::isoformat_utc(chrono::Utc::now() - chrono::Duration::minutes(10));
    let (_, r) = admin(&mut secrets, server.addr, &op, "stale", ("/admin/invite", "{}", &stale));
    assert_eq!(r.status, 401);
    let stranger = Operator { key: SigningKey::generate(), key_id: "nobody".into() };
    let (_, r) = admin(&mut secrets, server.addr, &stranger, "unknown key", ("/admin/invite", "{}", &now_iso()));
    assert_eq!(r.status, 401);

    // Managed operations.
    let backups = dir.join("backups");
    let archive = artifacts.run(
        &["managed", "backup", "--home", h, "--recipient", &recipient, "--dir", backups.to_str().unwrap()],
        Some(0),
    );
    let key = home.join("offline/backup.key");
    artifacts.run(&["managed", "verify", archive.trim(), "--identity", key.to_str().unwrap(), "--home", h], Some(0));
    artifacts.run(
        &[
            "managed",
            "restore-drill",
            "--home",
            h,
            "--latest",
            backups.to_str().unwrap(),
            "--identity",
            key.to_str().unwrap(),
            "--json",
        ],
        Some(0),
    );
    let export = dir.join("exports/audit.jsonl");
    artifacts.run(&["managed", "audit-export", "--home", h, "--output", export.to_str().unwrap()], Some(0));
    let exported = std::fs::read_to_string(&export).unwrap();
    assert!(exported.contains("\"nonce_replay\""), "the export holds the failures: {exported}");
    artifacts.add("audit export", exported);
    artifacts.add("audit export manifest", std::fs::read(dir.join("exports/audit.jsonl.manifest.json")).unwrap());
    let bundle = dir.join("inc.tar.gz.age");
    artifacts.run(
        &[
            "incident",
            "bundle",
            "--home",
            h,
            "--since",
            "2020-01-01T00:00:00Z",
            "--output",
            bundle.to_str().unwrap(),
            "--recipient",
            &recipient,
            "--na",
            &url,
        ],
        Some(0),
    );
    let mut databases = Vec::new();
    let entries = crate::harness::open_archive(&bundle, &identity);
    assert!(entries.contains_key("audit.jsonl") && entries.contains_key("na.db"), "{:?}", entries.keys());
    for (name, bytes) in entries {
        if name == "na.db" || name == "gm-ops.db" {
            databases.push((format!("incident bundle {name}"), bytes));
        } else {
            artifacts.add(format!("incident bundle {name}"), bytes);
        }
    }
    let report = dir.join("readiness.json");
    artifacts.run(&["readiness", "--home", h, "--na", &url, "--format", "json"], None);
    artifacts
        .run(&["readiness", "--home", h, "--na", &url, "--format", "json", "--output", report.to_str().unwrap()], None);
    artifacts.add("readiness --output", std::fs::read(&report).unwrap());

    assert_eq!(server.terminate(), 0);
    let log = std::fs::read_to_string(home.join(format!("serve-{}.log", std::process::id()))).unwrap();
    assert!(log.contains("DEBUG"), "the log ran at DEBUG: {log}");
    artifacts.add("gm serve stderr (DEBUG)", log);

    let mut found = Vec::new();
    for (what, bytes) in &artifacts.0 {
        for s in &secrets.0 {
            if s.forms.iter().any(|f| contains(bytes, f.as_bytes())) {
                found.push(format!("{} in {what}", s.label));
            }
        }
    }
    for (what, bytes) in &databases {
        for s in &secrets.0 {
            let raw_hit = s.raw.as_deref().is_some_and(|r| contains(bytes, r));
            if raw_hit || s.forms.iter().any(|f| contains(bytes, f.as_bytes())) {
                found.push(format!("{} in {what}", s.label));
            }
        }
    }
    // The invite is in the bundle's copy, under its fingerprint only (F8).
    let na_db = &databases.iter().find(|(w, _)| w.ends_with("na.db")).unwrap().1;
    let fingerprint = format!("fingerprint:{}", gm::crypto::digest::token_fingerprint(&token));
    assert!(contains(na_db, fingerprint.as_bytes()), "na.db holds the invite by its fingerprint");
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
    assert!(
        secrets.0.len() >= 20 && artifacts.0.len() >= 20,
        "{} secrets, {} artifacts",
        secrets.0.len(),
        artifacts.0.len()
    );
}
