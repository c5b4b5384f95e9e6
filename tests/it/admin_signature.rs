//! Admin signature versions (`DEVIATIONS.md` D6, finding F5): a relay on the operator's path that
//! sees a signed read-only request must not be able to replay its headers on another route. gm's
//! clients sign version 2 by default, sovereigns gm creates accept version 2 only, and a server
//! configured the upstream way (no gm.toml) keeps accepting upstream 0.16's version 1, loudly.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::harness::{request, sandbox, Gm, GmServer, HttpResponse, TempDir};
use crate::signer::{now_iso, Operator};

/// A relay between a client and the NA that forwards every byte unchanged and keeps a copy of what
/// the client sent: the position of an on-path proxy, load balancer or logging middlebox. A request
/// whose bytes contain `hold_back` is recorded but never forwarded (its connection is dropped), so
/// its nonce stays unused for the replay.
struct RecordingRelay {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl RecordingRelay {
    fn start(upstream: SocketAddr, hold_back: &'static str) -> RecordingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let record = Arc::clone(&record);
                std::thread::spawn(move || {
                    let mut server = TcpStream::connect(upstream).unwrap();
                    let (mut back_from, mut back_to) = (server.try_clone().unwrap(), client.try_clone().unwrap());
                    let back = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut back_from, &mut back_to);
                        let _ = back_to.shutdown(Shutdown::Write);
                    });
                    let mut chunk = [0u8; 4096];
                    while let Ok(n) = client.read(&mut chunk) {
                        if n == 0 {
                            break;
                        }
                        record.lock().unwrap().extend_from_slice(&chunk[..n]);
                        let held = String::from_utf8_lossy(&chunk[..n]).contains(hold_back);
                        if held || server.write_all(&chunk[..n]).is_err() {
                            let _ = client.shutdown(Shutdown::Both);
                            break;
                        }
                    }
                    let _ = server.shutdown(Shutdown::Write);
                    let _ = back.join();
                });
            }
        });
        RecordingRelay { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The four `X-Admin-*` headers of the first recorded request whose request line starts with
    /// `line`, as `Name: value` lines.
    fn admin_headers_of(&self, line: &str) -> Vec<String> {
        let seen = String::from_utf8_lossy(&self.seen.lock().unwrap()).to_string();
        let start = seen.find(line).unwrap_or_else(|| panic!("the relay saw no {line:?} in:\n{seen}"));
        let head = &seen[start..start + seen[start..].find("\r\n\r\n").unwrap()];
        let headers: Vec<String> =
            head.split("\r\n").filter(|l| l.to_ascii_lowercase().starts_with("x-admin-")).map(str::to_string).collect();
        assert_eq!(headers.len(), 4, "{head}");
        headers
    }
}

/// The relay's attack: the captured headers, sent as `POST /admin/invite` with no body (the body a
/// `GET` signs is `{}`, and so is an absent invite body).
fn replay_as_invite(server: SocketAddr, headers: &[String]) -> HttpResponse {
    request(
        server,
        &format!(
            "POST /admin/invite HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n{}\r\n\r\n",
            headers.join("\r\n")
        ),
    )
}

fn count(home: &Path, sql: &str) -> i64 {
    let c =
        rusqlite::Connection::open_with_flags(home.join("na.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn audit_count(home: &Path, event: &str) -> i64 {
    count(home, &format!("SELECT COUNT(*) FROM audit_events WHERE event_json LIKE '%\"event_type\": \"{event}\"%'"))
}

// F5: `gm admin policy history` signed v1 by default and the sandbox accepted v1, so a relay turned
// a read-only request into a working invite token.
#[test]
fn relayed_history_headers_replayed_as_invite_are_refused_with_default_client_and_sovereign() {
    let dir = TempDir::new("f5-default");
    let home = sandbox(&dir);
    let h = home.to_str().unwrap();
    let server = GmServer::start(&home, &["--no-scheduler"]);
    let relay = RecordingRelay::start(server.addr, "GET /admin/policy/history ");

    // The operator's request never reaches the NA (the relay drops it), so its nonce is unused.
    let _ = Gm::new(&["admin", "policy", "history", "--na", &relay.url(), "--home", h]).output();
    let captured = relay.admin_headers_of("GET /admin/policy/history ");

    let r = replay_as_invite(server.addr, &captured);
    assert_eq!((r.status, r.text().as_str()), (401, "{\"error\":\"Invalid admin signature\"}\n"));
    assert_eq!(count(&home, "SELECT COUNT(*) FROM invite_tokens"), 0, "no invite was created");
    assert_eq!(audit_count(&home, "admin_auth_failed"), 1);
    assert_eq!(audit_count(&home, "admin_legacy_signature_accepted"), 0);
}

// F5, server side: even an operator who still signs v1 (`--sig v1`) cannot be relayed into an
// invite on a sovereign gm created, because it accepts v2 only.
#[test]
fn gm_created_sovereign_refuses_v1_so_a_relayed_v1_history_cannot_become_an_invite() {
    let dir = TempDir::new("f5-v1");
    let home = sandbox(&dir);
    let h = home.to_str().unwrap();
    let toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    assert!(toml.contains("admin_signature = \"v2\""), "quickstart writes the setting explicitly:\n{toml}");
    let server = GmServer::start(&home, &["--no-scheduler"]);
    assert!(!server.stderr().contains("version-1"), "no legacy warning: {}", server.stderr());
    let relay = RecordingRelay::start(server.addr, "no request holds this");

    let (_, stderr) =
        Gm::new(&["admin", "policy", "history", "--na", &relay.url(), "--home", h, "--sig", "v1"]).expect(1);
    assert!(stderr.contains("Invalid admin signature"), "{stderr}");
    assert!(stderr.contains("hint:") && stderr.contains("--sig v1"), "the hint names the flag: {stderr}");
    let captured = relay.admin_headers_of("GET /admin/policy/history ");

    let r = replay_as_invite(server.addr, &captured);
    assert_eq!((r.status, r.text().as_str()), (401, "{\"error\":\"Invalid admin signature\"}\n"));
    // A well-formed upstream-style v1 invite is refused the same way.
    let op = Operator::sandbox(&home);
    let r = request(server.addr, &op.raw_v1("POST", "/admin/invite", "{}", &now_iso(), "n-v1"));
    assert_eq!((r.status, r.text().as_str()), (401, "{\"error\":\"Invalid admin signature\"}\n"));
    assert_eq!(count(&home, "SELECT COUNT(*) FROM invite_tokens"), 0);
    // The default client (v2) still administers it.
    Gm::new(&["admin", "invite", "--na", &format!("http://{}", server.addr), "--home", h, "--json"]).expect(0);
    assert_eq!(count(&home, "SELECT COUNT(*) FROM invite_tokens"), 1);
}

/// `gm readiness --format json` for `home` with `env`; the `admin_auth` check's status and reason.
fn readiness_admin_auth(home: &Path, env: &[(&str, &str)]) -> (String, String) {
    let mut gm = Gm::new(&["readiness", "--home", home.to_str().unwrap(), "--format", "json"]);
    for (k, v) in env {
        gm = gm.env(k, v);
    }
    let out = gm.output();
    assert_eq!(
        out.status.code(),
        Some(2),
        "other checks fail on a bare home: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = gm::json::parse_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let checks = report.as_object().unwrap().get("checks").unwrap().as_array().unwrap();
    let check =
        checks.iter().map(|c| c.as_object().unwrap()).find(|c| c.get("id").unwrap().as_str() == Some("admin_auth"));
    let check = check.expect("an admin_auth check");
    let text = |k: &str| check.get(k).unwrap().as_str().unwrap().to_string();
    (text("status"), text("reason"))
}

// F5 compatibility: a drop-in for an upstream deployment (environment only, no gm.toml) accepts
// upstream 0.16's version-1 requests as upstream does, warns at start, audits every one, and the
// readiness gate fails on it until it is switched off or waived.
#[test]
fn a_server_configured_the_upstream_way_accepts_v1_warns_and_fails_readiness() {
    let dir = TempDir::new("f5-upstream");
    let home = sandbox(&dir);
    std::fs::remove_file(home.join("gm.toml")).unwrap();
    let path = |p: &str| home.join(p).to_str().unwrap().to_string();
    let operators = std::fs::read_to_string(home.join("operators.json")).unwrap();
    let env = [
        ("GENESIS_FILE", path("genesis.signed.json")),
        ("NA_PRIVATE_KEY_FILE", path("keys/na.key")),
        ("DB_PATH", path("na.db")),
        ("OPERATOR_PUBLIC_KEYS_JSON", operators.trim().to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = GmServer::start_with(&home, &["--no-scheduler"], &env);
    let log = server.stderr();
    assert!(
        log.contains("version-1 admin signatures are ACCEPTED (the default for a home without gm.toml (upstream-style deployment))")
            && log.contains("admin_signature to \"v2\" in gm.toml"),
        "{log}"
    );

    // An upstream 0.16 operator request (v1) works, and is audited as legacy.
    let op = Operator::sandbox(&home);
    let r = request(server.addr, &op.raw_v1("POST", "/admin/invite", "{}", &now_iso(), "n-upstream"));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(audit_count(&home, "admin_legacy_signature_accepted"), 1);
    // gm's client: v2 by default, v1 only when asked (with a warning).
    let na = format!("http://{}", server.addr);
    let h = home.to_str().unwrap();
    let (_, stderr) = Gm::new(&["admin", "invite", "--na", &na, "--home", h, "--json"]).expect(0);
    assert!(!stderr.contains("warning"), "{stderr}");
    let (_, stderr) = Gm::new(&["admin", "invite", "--na", &na, "--home", h, "--sig", "v1", "--json"]).expect(0);
    assert!(stderr.contains("warning: --sig v1 signs only the body"), "{stderr}");
    assert_eq!(audit_count(&home, "admin_legacy_signature_accepted"), 2);
    drop(server);

    let (status, reason) = readiness_admin_auth(&home, &env);
    assert_eq!(status, "fail", "{reason}");
    assert!(
        reason.starts_with("version-1 admin signatures are accepted (the default for a home without gm.toml")
            && reason.contains("2 version-1 request(s) accepted in the last 30 days"),
        "{reason}"
    );
    // A written, time-boxed waiver turns it into a warning; never into a pass.
    let expires = (chrono::Utc::now() + chrono::Duration::days(30)).format("%Y-%m-%d").to_string();
    std::fs::write(
        home.join("profile.toml"),
        format!("[waivers.legacy_admin_signatures]\nreason = \"0.16 CLI in CI until March\"\naccepted_by = \"Jane Doe\"\naccepted_at = \"2026-11-20\"\nexpires_at = \"{expires}\"\n"),
    )
    .unwrap();
    let (status, reason) = readiness_admin_auth(&home, &env);
    assert_eq!(status, "warn", "{reason}");
    assert!(reason.contains("waived by Jane Doe until"), "{reason}");
    // Switched off explicitly: it passes.
    let mut reject = env.clone();
    reject.push(("NA_ADMIN_LEGACY_SIGNATURES", "reject"));
    let (status, reason) = readiness_admin_auth(&home, &reject);
    assert_eq!((status.as_str(), reason.as_str()), ("pass", "version 2 only (NA_ADMIN_LEGACY_SIGNATURES)"));
}
