//! `gm serve` and `gm quickstart` end to end: startup refusals that change no file, public routes
//! byte-compatible with upstream, JSON 404/405 bodies, real readiness, metrics, SIGTERM.

use std::collections::BTreeMap;
use std::path::Path;

use gm::crypto::keys::load_public_key;
use gm::json::{parse_str, Value};
use gm::model::crl::Crl;
use gm::model::policy::PolicyManifest;
use gm::model::SignedObject;

use crate::harness::{request, sandbox, Gm, GmServer, TempDir};

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn json(body: &[u8]) -> Value {
    parse_str(std::str::from_utf8(body).unwrap()).unwrap()
}

#[test]
fn healthz_is_byte_exact_and_other_routes_answer() {
    let dir = TempDir::new("serve-basic");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    let r = server.get("/healthz");
    assert_eq!((r.status, r.body.as_slice()), (200, b"{\"status\":\"ok\"}\n".as_slice()));
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.header("X-Request-ID").map(str::len), Some(32));
    let h = server.get("/health");
    assert_eq!(h.text(), "{\"network\":\"sandbox-mesh\",\"status\":\"healthy\",\"version\":\"v0.1\"}\n");
    let missing = server.get("/na/key-history");
    assert_eq!((missing.status, missing.text().as_str()), (404, "{\"error\":\"Not Found\"}\n"));
    let wrong = request(
        server.addr,
        &format!("POST /healthz HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", server.addr),
    );
    assert_eq!((wrong.status, wrong.text().as_str()), (405, "{\"error\":\"Method Not Allowed\"}\n"));
    assert_eq!(wrong.header("Allow"), Some("GET, HEAD, OPTIONS"));
}

#[test]
fn genesis_route_serves_the_signed_file_canonically() {
    let dir = TempDir::new("serve-genesis");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    let r = server.get("/genesis");
    let file = std::fs::read_to_string(home.join("genesis.signed.json")).unwrap();
    let mut expected = gm::crypto::canonical::canonical_string(&parse_str(&file).unwrap());
    expected.push('\n');
    assert_eq!(r.text(), expected);
    let (stdout, _) =
        Gm::new(&["genesis", "verify", "--genesis", home.join("genesis.signed.json").to_str().unwrap()]).expect(0);
    assert!(stdout.starts_with("valid"));
}

#[test]
fn policy_and_crl_are_created_signed_and_stable() {
    let dir = TempDir::new("serve-policy");
    let home = sandbox(&dir);
    let na = load_public_key(&home.join("keys/na.pub")).unwrap();
    let server = GmServer::start(&home, &[]);
    let first = server.get("/policy");
    assert_eq!(first.status, 200);
    let policy = PolicyManifest::from_value(&json(&first.body)).unwrap();
    assert!(policy.check_signatures(&[na]).is_valid());
    assert_eq!(policy.policy_id, "policy-sandbox-mesh-v0.1");
    assert_eq!(policy.allowed_services, vec!["service-1", "service-2"]);
    assert_eq!(policy.issued_by, "na-local");
    assert_eq!(server.get("/policy").body, first.body, "the stored default is served again");
    let crl_resp = server.get("/crl");
    let crl = Crl::from_value(&json(&crl_resp.body)).unwrap();
    assert!(crl.check_signatures(&[na]).is_valid());
    assert_eq!((crl.sequence, crl.revoked_certificates.len(), crl.issuer.as_str()), (0, 0, "na-local"));
    assert_eq!((crl.next_update.to_utc() - crl.issued_at.to_utc()).num_hours(), 24);
    assert_eq!(server.get("/crl").body, crl_resp.body);
    // The CLI verifies what the server signed (the customer-held custody path checks the same way).
    let crl_file = dir.join("crl.json");
    std::fs::write(&crl_file, &crl_resp.body).unwrap();
    Gm::new(&["verify", "--public-key", home.join("keys/na.pub").to_str().unwrap(), crl_file.to_str().unwrap()])
        .expect(0);
    let metrics = server.get("/metrics").text();
    assert!(metrics.contains("\ngenesis_mesh_na_policy_versions_total 1\n"), "{metrics}");
    assert!(metrics.contains("\ngenesis_mesh_na_crl_sequence 0\n"), "{metrics}");
}

#[test]
fn sovereign_json_uses_host_header_and_ignores_forwarded_without_proxy_hops() {
    let dir = TempDir::new("serve-sovereign");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    let raw = "GET /sovereign.json HTTP/1.1\r\nHost: na.example:8443\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n";
    let r = request(server.addr, raw);
    let body = r.text();
    assert!(body.contains("\"endpoint\":\"http://na.example:8443\""), "{body}");
    assert!(body.contains("\"genesis\":\"http://na.example:8443/genesis\""), "{body}");
    assert!(!body.contains("evil"), "{body}");
    assert!(body.contains("\"sovereign_id\":\"sandbox-mesh\""), "{body}");
    assert!(body.contains("+00:00\""), "sovereign.json renders NA times as isoformat: {body}");
    drop(server);
    let proxied = GmServer::start(&home, &["--trusted-proxy-hops", "1"]);
    let body = request(proxied.addr, raw).text();
    assert!(body.contains("\"endpoint\":\"https://evil.example\""), "{body}");
}

#[test]
fn readyz_reports_ready_with_db_path_and_metrics_have_gm_series() {
    let dir = TempDir::new("serve-ready");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    let r = server.get("/readyz");
    let db = home.join("na.db");
    assert_eq!((r.status, r.text()), (200, format!("{{\"db_path\":\"{}\",\"status\":\"ready\"}}\n", db.display())));
    server.get("/healthz");
    let m = server.get("/metrics");
    assert_eq!(m.header("Content-Type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    let text = m.text();
    assert!(text.starts_with(
        "# HELP genesis_mesh_na_issued_certs_total Total certificates issued by the Network Authority.\n"
    ));
    assert!(text.contains("gm_http_requests_total{route=\"/healthz\",status=\"200\"} 1\n"), "{text}");
    assert!(text.contains("gm_http_request_duration_seconds_count"), "{text}");
    assert!(text.contains("gm_db_size_bytes "), "{text}");
    assert!(text.contains("gm_build_info{version="), "{text}");
    let nodes = server.get("/nodes");
    assert_eq!(nodes.text(), "{\"count\":0,\"nodes\":{}}\n");
}

#[test]
fn readyz_says_which_check_failed_when_the_schema_is_damaged() {
    let dir = TempDir::new("serve-notready");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    assert_eq!(server.get("/readyz").status, 200);
    let conn = rusqlite::Connection::open(home.join("na.db")).unwrap();
    conn.execute_batch("DROP TABLE audit_events").unwrap();
    drop(conn);
    let r = server.get("/readyz");
    assert_eq!(r.status, 503);
    assert!(r.text().ends_with("\"error\":\"table audit_events missing\",\"status\":\"not_ready\"}\n"), "{}", r.text());
    assert_eq!(server.get("/healthz").status, 200, "liveness is dependency-free");
}

#[test]
fn readyz_says_not_writable_within_seconds_while_another_process_holds_the_write_lock() {
    let dir = TempDir::new("serve-locked");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    assert_eq!(server.get("/readyz").status, 200);
    // Let the startup writes age past the one-second "recent commit" shortcut.
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    let mut other = rusqlite::Connection::open(home.join("na.db")).unwrap();
    let lock = other.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
    let started = std::time::Instant::now();
    let r = server.get("/readyz");
    let waited = started.elapsed();
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.text().contains("\"error\":\"database not writable: no write transaction could start within 2000 ms\""),
        "{}",
        r.text()
    );
    assert!(
        waited < std::time::Duration::from_secs(5),
        "the probe waits about 2 s, not the 30 s busy timeout: {waited:?}"
    );
    // Reads do not wait for the write lock.
    assert_eq!(server.get("/metrics").status, 200);
    lock.rollback().unwrap();
    let r = server.get("/readyz");
    assert_eq!((r.status, r.text().contains("\"status\":\"ready\"")), (200, true), "{}", r.text());
}

#[test]
fn sigterm_stops_serving_and_exits_zero() {
    let dir = TempDir::new("serve-sigterm");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(server.terminate(), 0);
}

fn refused(home: &Path, extra: &[&str], env: &[(&str, &str)]) -> String {
    let before = snapshot(home);
    let mut args = vec!["serve", "--home", home.to_str().unwrap()];
    if !env.iter().any(|(k, _)| *k == "PORT") {
        args.extend(["--bind", "127.0.0.1:0"]);
    }
    args.extend_from_slice(extra);
    let mut gm = Gm::new(&args);
    for (k, v) in env {
        gm = gm.env(k, v);
    }
    let (_, stderr) = gm.expect(2);
    assert_eq!(snapshot(home), before, "a refused start must change no file");
    stderr
}

#[test]
fn startup_refuses_unsigned_or_tampered_genesis() {
    let dir = TempDir::new("refuse-genesis");
    let home = sandbox(&dir);
    let signed = std::fs::read_to_string(home.join("genesis.signed.json")).unwrap();
    let mut value = parse_str(&signed).unwrap();
    if let Value::Object(m) = &mut value {
        m.insert("signatures", Value::Array(Vec::new()));
    }
    std::fs::write(home.join("unsigned.json"), gm::crypto::canonical::to_pretty_string(&value)).unwrap();
    let unsigned = home.join("unsigned.json");
    let stderr = refused(&home, &["--genesis", unsigned.to_str().unwrap()], &[]);
    assert_eq!(
        stderr,
        format!(
            "error: genesis {} carries no root signature\nhint: sign it with `gm genesis sign`, or pass --allow-unsigned-genesis for development only\n",
            unsigned.display()
        )
    );
    std::fs::write(home.join("tampered.json"), signed.replace("sandbox-mesh", "other-mesh")).unwrap();
    let stderr = refused(&home, &["--genesis", home.join("tampered.json").to_str().unwrap()], &[]);
    assert!(stderr.contains("root signature 1 does not verify with its root_public_key"), "{stderr}");
    // Development override starts, with a warning.
    let server = GmServer::start(&home, &["--genesis", unsigned.to_str().unwrap(), "--allow-unsigned-genesis"]);
    assert_eq!(server.get("/healthz").status, 200);
    assert!(crate::harness::wait_until(std::time::Duration::from_secs(5), || server
        .stderr()
        .contains("UNSIGNED genesis")));
}

#[test]
fn startup_refuses_na_key_that_does_not_match_genesis() {
    let dir = TempDir::new("refuse-key");
    let home = sandbox(&dir);
    Gm::new(&["keygen", "network-authority", "--output", dir.join("other").to_str().unwrap()]).expect(0);
    let stderr = refused(&home, &["--na-key", dir.join("other.key").to_str().unwrap()], &[]);
    assert!(stderr.starts_with("error: NA private key does not match genesis block: "), "{stderr}");
    assert!(stderr.contains("hint: point NA_PRIVATE_KEY_FILE"), "{stderr}");
    // Upstream's environment names work too, with the same refusal.
    let stderr = refused(&home, &[], &[("NA_PRIVATE_KEY_FILE", dir.join("other.key").to_str().unwrap())]);
    assert!(stderr.starts_with("error: NA private key does not match genesis block"), "{stderr}");
}

#[test]
fn startup_refuses_a_file_that_is_not_sqlite() {
    let dir = TempDir::new("refuse-notdb");
    let home = sandbox(&dir);
    std::fs::write(
        home.join("na.db"),
        b"this is not a database, just text that is long enough to fill a header page....",
    )
    .unwrap();
    let stderr = refused(&home, &[], &[]);
    assert_eq!(
        stderr,
        format!(
            "error: {} is not an SQLite database (file header not recognised)\nhint: check --db-path / DB_PATH: it must name an SQLite database (or a new file)\n",
            home.join("na.db").display()
        )
    );
}

#[test]
fn startup_refuses_a_newer_schema() {
    let dir = TempDir::new("refuse-newer");
    let home = sandbox(&dir);
    let conn = rusqlite::Connection::open(home.join("na.db")).unwrap();
    conn.execute_batch("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL); INSERT INTO schema_version VALUES (7, '2027-01-01T00:00:00+00:00');").unwrap();
    drop(conn);
    let stderr = refused(&home, &[], &[]);
    assert!(stderr.contains("has schema version 7, newer than the 6 this gm knows"), "{stderr}");
}

#[test]
fn startup_refuses_a_port_in_use() {
    let dir = TempDir::new("refuse-port");
    let home = sandbox(&dir);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let stderr = refused(&home, &[], &[("PORT", &port)]);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("hint: stop the other process using the port"), "{stderr}");
    assert!(!home.join("na.db").exists(), "no database is created when the port is taken");
}

#[test]
fn a_second_server_on_the_same_database_is_refused() {
    let dir = TempDir::new("refuse-lock");
    let home = sandbox(&dir);
    let _first = GmServer::start(&home, &[]);
    let (_, stderr) = Gm::new(&["serve", "--home", home.to_str().unwrap(), "--bind", "127.0.0.1:0"]).expect(2);
    assert!(stderr.contains("is already served by another gm"), "{stderr}");
}

#[test]
fn quickstart_refuses_a_non_empty_folder_without_config() {
    let dir = TempDir::new("qs-refuse");
    std::fs::write(dir.join("precious.txt"), "keep me").unwrap();
    let (_, stderr) = Gm::new(&["quickstart", "--home", dir.path().to_str().unwrap(), "--no-serve"]).expect(2);
    assert!(stderr.contains("is not empty and holds no gm.toml"), "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.join("precious.txt")).unwrap(), "keep me");
}

#[test]
fn quickstart_keeps_root_key_offline_and_serves() {
    let dir = TempDir::new("qs-serve");
    let home = dir.join("sb");
    let mut child = std::process::Command::new(crate::harness::gm_bin())
        .args(["quickstart", "--home", home.to_str().unwrap(), "--bind", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let addr: std::net::SocketAddr = line.trim().strip_prefix("listening on http://").unwrap().parse().unwrap();
    let r = request(addr, &format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n"));
    assert_eq!(r.text(), "{\"status\":\"ok\"}\n");
    assert!(home.join("offline/root.key").exists() && !home.join("keys/root.key").exists());
    // SIGTERM, as systemd stops it: the scheduler stops its running jobs (the sandbox schedules an
    // uptime probe) before gm exits. A SIGKILL would leave such a job running in its own process
    // group, writing into the sandbox after the test removed it.
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "gm quickstart did not exit after SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    drop(stdout);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("offline/ holds the ROOT and OPERATOR private keys"), "{stderr}");
    assert!(stderr.contains("curl http://127.0.0.1:"), "{stderr}");
}

#[test]
fn quickstart_defaults_to_a_sandbox_folder_in_the_working_directory() {
    let dir = TempDir::new("qs-default");
    let (_, stderr) = Gm::new(&["quickstart", "--no-serve"]).cwd(dir.path()).expect(0);
    assert!(stderr.contains("created sandbox sovereign sandbox-mesh in gm-sandbox"), "{stderr}");
    for f in ["gm.toml", "genesis.signed.json", "keys/na.key", "offline/root.key", "operators.json"] {
        assert!(dir.join("gm-sandbox").join(f).exists(), "{f}");
    }
    // Running it again reuses the sandbox instead of refusing or overwriting it.
    let before = std::fs::read(dir.join("gm-sandbox/keys/na.key")).unwrap();
    let (_, stderr) = Gm::new(&["quickstart", "--no-serve"]).cwd(dir.path()).expect(0);
    assert!(stderr.contains("using the existing sandbox in gm-sandbox"), "{stderr}");
    assert_eq!(std::fs::read(dir.join("gm-sandbox/keys/na.key")).unwrap(), before);
}

/// Issue 8 item 5: a device booted without a real-time clock (here frozen at 2001) is told that its
/// clock is wrong, against both the genesis NA valid_from and this build's date, instead of refusing
/// every request as too old or not yet valid with nothing pointing at the clock.
#[test]
fn serve_warns_when_the_clock_is_before_the_genesis_valid_from_and_the_build_date() {
    let dir = TempDir::new("clock");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &["--no-scheduler", "--frozen-clock", "2001-01-01T00:00:00Z"]);
    let stderr = server.stderr();
    let consequence = "until it is set, signed requests fail as too old and new certificates as not yet valid; set the clock (NTP or a real-time clock) and restart";
    let genesis = gm::model::genesis::Genesis::from_value(
        &gm::json::parse_str(&std::fs::read_to_string(home.join("genesis.signed.json")).unwrap()).unwrap(),
    )
    .unwrap();
    let valid_from = genesis.network_authority.valid_from.render_isoformat();
    assert!(
        stderr.contains(&format!("the system clock (2001-01-01T00:00:00+00:00) is before the genesis NA valid_from ({valid_from}): the clock is probably wrong; {consequence}")),
        "{stderr}"
    );
    let built = gm::model::timestamp::isoformat_utc(gm::clock::build_time().unwrap());
    assert!(
        stderr.contains(&format!("the system clock (2001-01-01T00:00:00+00:00) is before this gm build ({built}): the clock is wrong (a device booted without a real-time clock or NTP?); {consequence}")),
        "{stderr}"
    );
    drop(server);
    let server = GmServer::start(&home, &["--no-scheduler"]);
    assert!(!server.stderr().contains("the system clock"), "a correct clock gets no warning: {}", server.stderr());
}

// F10 (adversarial review): `/dashboard.json` and `/dashboard` showed the database path while
// `/readyz` hid it; one setting now hides it in every public view.
#[test]
fn readyz_shows_db_path_false_hides_the_path_in_every_public_view() {
    let dir = TempDir::new("serve-hide-db");
    let home = sandbox(&dir);
    let toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    std::fs::write(home.join("gm.toml"), toml.replace("[server]\n", "[server]\nreadyz_shows_db_path = false\n"))
        .unwrap();
    let server = GmServer::start(&home, &[]);
    let db = home.join("na.db").display().to_string();
    let ready = server.get("/readyz");
    assert_eq!((ready.status, ready.text().as_str()), (200, "{\"db_path\":\"[REDACTED]\",\"status\":\"ready\"}\n"));
    let dashboard = server.get("/dashboard.json");
    assert_eq!(dashboard.status, 200);
    let value = json(&dashboard.body);
    let readiness = value.as_object().unwrap().get("readiness").unwrap().as_object().unwrap();
    assert_eq!(readiness.get("db_path").and_then(Value::as_str), Some("[REDACTED]"));
    for path in ["/dashboard.json", "/dashboard", "/readyz", "/health", "/connectome", "/sovereign.json", "/metrics"] {
        let r = server.get(path);
        assert!(!r.text().contains(&db), "{path} shows the database path: {}", r.text());
        assert!(!r.text().contains(home.display().to_string().as_str()), "{path} shows the home: {}", r.text());
    }
}

/// F7: with one trusted hop, a client-sent `X-Forwarded-For` line before the one the proxy appended must not
/// pick the rate-limit bucket (RFC 9110 §5.3: repeated field lines are one comma-separated list, in order).
#[test]
fn repeated_forwarded_for_lines_are_combined_before_counting_hops() {
    let dir = TempDir::new("serve-xff-lines");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &["--trusted-proxy-hops", "1"]);
    let node = crate::signer::Node::new();
    let body = node.sign(
        &[("invite_token", Value::from("no-such-token")), ("validity_hours", Value::from(168i64))],
        &crate::signer::now_iso(),
    );
    let body = gm::crypto::canonical::canonical_string(&Value::Object(body));
    let statuses: Vec<u16> = (0..4)
        .map(|i| {
            let raw = format!(
                "POST /join HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.66.0.{i}\r\nConnection: close\r\n\
                 Content-Type: application/json\r\nX-Forwarded-For: 203.0.113.7\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            request(server.addr, &raw).status
        })
        .collect();
    assert_eq!(statuses, vec![403, 403, 403, 429], "the forged first line chose the bucket");
    // A fifth request whose proxy-appended line names another client lands in a fresh bucket.
    let raw = format!(
        "POST /join HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.9\r\n\
         Connection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(request(server.addr, &raw).status, 403);

    let raw = "GET /sovereign.json HTTP/1.1\r\nHost: na.example:8443\r\nX-Forwarded-Host: evil.example\r\n\
               X-Forwarded-Proto: http\r\nX-Forwarded-Host: na.example\r\nX-Forwarded-Proto: https\r\n\
               Connection: close\r\n\r\n";
    let body = request(server.addr, raw).text();
    assert!(body.contains("\"endpoint\":\"https://na.example\""), "{body}");
    assert!(!body.contains("evil"), "{body}");
    // Host is one value, not a list: a second line is refused rather than guessed at.
    let raw = "GET /sovereign.json HTTP/1.1\r\nHost: na.example\r\nHost: evil.example\r\nConnection: close\r\n\r\n";
    let r = request(server.addr, raw);
    assert_eq!((r.status, r.text().as_str()), (400, "{\"error\":\"Bad Request\"}\n"));
}
