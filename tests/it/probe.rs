//! `gm probe` from the outside: all checks pass against a real `gm serve`; each fault (target down,
//! silent target, 500s, wrong body, invalid JSON, genesis of another root, CRL of another key,
//! expired CRL, self-signed and expired TLS certificates) gives a one-line reason and the Nagios
//! exit code; thresholds with a state file; the dead-man ping only on success; usage errors are
//! UNKNOWN.
//!
//! Faults an honest gm cannot produce are served by `StubNa` (a tiny HTTP/1.1 server thread on
//! 127.0.0.1:0) with bodies signed through gm's own model and key APIs, or by `TlsStub` (rustls
//! with rcgen certificates).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{Datelike, Utc};
use gm::crypto::canonical::canonical_string;
use gm::crypto::keys::{load_signing_key, SigningKey};
use gm::json::{parse_str, Value};
use gm::model::timestamp::pydantic_utc;
use gm::model::{sign_as, Kind};

use crate::harness::{sandbox, Gm, GmServer, TempDir};

// ---------------------------------------------------------------------------------------------
// Test servers

/// A canned answer: status, content type, body.
type Answer = (u16, &'static str, String);

/// A stub NA serving canned answers by path (`*` answers any other path); records each path.
struct StubNa {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl StubNa {
    fn start(routes: Vec<(&str, Answer)>) -> StubNa {
        let routes: HashMap<String, Answer> = routes.into_iter().map(|(p, a)| (p.to_string(), a)).collect();
        StubNa::spawn(move |mut stream, seen| {
            let Some(path) = read_request_path(&mut stream) else { return };
            seen.lock().unwrap().push(path.clone());
            let (status, content_type, body) = routes.get(&path).or_else(|| routes.get("*")).cloned().unwrap_or((
                404,
                "application/json",
                "{\"error\":\"Not found\"}\n".to_string(),
            ));
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        })
    }

    /// Accepts connections and never answers (holds them open until dropped).
    fn silent() -> StubNa {
        let held = Mutex::new(Vec::new());
        StubNa::spawn(move |stream, _| held.lock().unwrap().push(stream))
    }

    fn spawn(handle: impl Fn(TcpStream, &Mutex<Vec<String>>) + Send + 'static) -> StubNa {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        handle(stream, &seen2);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        StubNa { addr, stop, seen, thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for StubNa {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_request_path(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf).split(' ').nth(1).map(str::to_string)
}

fn json(status: u16, body: &str) -> Answer {
    (status, "application/json", format!("{body}\n"))
}

/// A TLS server presenting a self-signed certificate valid from `not_before` to `not_after`
/// (year, month, day); it completes or fails the handshake and closes.
fn tls_stub(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> StubNa {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.subject_alt_names.push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let cert = params.self_signed(&key).unwrap();
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)
        .unwrap();
    let config = Arc::new(config);
    StubNa::spawn(move |mut stream, seen| {
        seen.lock().unwrap().push("tls".to_string());
        let mut conn = rustls::ServerConnection::new(config.clone()).unwrap();
        while conn.is_handshaking() {
            if conn.complete_io(&mut stream).is_err() {
                return;
            }
        }
    })
}

/// (year, month, day) `days` from today.
fn ymd_in(days: i64) -> (i32, u8, u8) {
    let d = Utc::now().date_naive() + chrono::Duration::days(days);
    (d.year(), d.month() as u8, d.day() as u8)
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn probe(args: &[&str]) -> Gm {
    let mut all = vec!["probe"];
    all.extend_from_slice(args);
    Gm::new(&all)
}

/// The table row of `check` (`healthz  OK  3 ms  reason`).
fn row<'a>(stdout: &'a str, check: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(check))
        .unwrap_or_else(|| panic!("no {check} row in:\n{stdout}"))
}

/// Each check's (status, reason) from `--json` output.
pub(crate) fn json_checks(stdout: &str) -> HashMap<String, (String, String)> {
    let v = parse_str(stdout.trim()).unwrap();
    let checks = v.as_object().unwrap().get("checks").unwrap().as_array().unwrap();
    checks
        .iter()
        .map(|c| {
            let c = c.as_object().unwrap();
            let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap().to_string();
            (s("check"), (s("status"), s("reason")))
        })
        .collect()
}

fn root_pub(home: &Path) -> String {
    home.join("offline/root.pub").to_str().unwrap().to_string()
}

/// A CRL body signed by `key`, with `next_update` `hours` from now.
fn crl_body(key: &SigningKey, next_update_hours: i64) -> String {
    let now = Utc::now();
    let value = parse_str(&format!(
        "{{\"crl_id\":\"c-probe\",\"sequence\":4,\"issued_at\":\"{}\",\"next_update\":\"{}\",\"issuer\":\"na-local\",\"revoked_certificates\":[]}}",
        pydantic_utc(now - chrono::Duration::hours(48)),
        pydantic_utc(now + chrono::Duration::hours(next_update_hours)),
    ))
    .unwrap();
    canonical_string(&sign_as(Kind::Crl, &value, key, "na-local").unwrap())
}

// ---------------------------------------------------------------------------------------------
// Against a real gm serve

#[test]
fn probe_of_a_real_gm_serve_passes_every_check_writes_the_textfile_and_pings() {
    let dir = TempDir::new("probe-ok");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    let target = format!("http://{}", server.addr);
    let ping = StubNa::start(vec![("/ping/0f9a", json(200, "{}"))]);
    let ping_url = format!("{}/ping/0f9a", ping.url());
    let textfile = dir.join("gm_probe.prom");
    let (stdout, _) = probe(&[
        "--na",
        &target,
        "--root-public-key",
        &root_pub(&home),
        "--prom-textfile",
        textfile.to_str().unwrap(),
        "--ping-url",
        &ping_url,
    ])
    .expect(0);
    assert!(stdout.starts_with(&format!("gm probe OK: 6 of 6 checks OK - {target}\n")), "{stdout}");
    for check in ["healthz", "readyz", "metrics", "connectome", "genesis", "crl"] {
        assert!(row(&stdout, check).contains(" OK "), "{stdout}");
    }
    assert!(row(&stdout, "genesis").ends_with("1 root signature(s) verify with the pinned root key"));
    assert!(row(&stdout, "crl").contains("signed by the genesis NA key"), "{stdout}");
    assert!(stdout.contains(&format!("dead-man ping to {}/…: sent, 200 after 1 attempt(s)", ping.url())), "{stdout}");
    assert!(!stdout.contains("0f9a"), "the ping URL's secret path is never shown: {stdout}");
    assert_eq!(ping.seen(), ["/ping/0f9a"]);
    let text = std::fs::read_to_string(&textfile).unwrap();
    assert!(text.contains(&format!("gm_probe_success{{target=\"{target}\",check=\"healthz\"}} 1\n")), "{text}");
    assert!(text.contains(&format!("gm_probe_latency_seconds{{target=\"{target}\",check=\"crl\"}} ")), "{text}");
    assert!(text.lines().filter(|l| l.starts_with("gm_probe_success{")).all(|l| l.ends_with(" 1")), "{text}");
    assert!(!dir.join("gm_probe.prom.tmp").exists());

    // The same run as JSON, with the key given as base64 (the line of the .pub file).
    let root_b64 = std::fs::read_to_string(home.join("offline/root.pub")).unwrap();
    let root_b64 = root_b64.lines().find(|l| !l.starts_with('#')).unwrap().trim().to_string();
    let (stdout, _) = probe(&["--na", &target, "--root-public-key", &root_b64, "--json"]).expect(0);
    let checks = json_checks(&stdout);
    assert_eq!(checks.len(), 6);
    assert!(checks.values().all(|(status, _)| status == "OK"), "{stdout}");
}

#[test]
fn unpinned_genesis_is_a_warning_and_withholds_the_ping() {
    let dir = TempDir::new("probe-unpinned");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    let ping = StubNa::start(vec![("/p", json(200, "{}"))]);
    let (stdout, _) =
        probe(&["--na", &format!("http://{}", server.addr), "--ping-url", &format!("{}/p", ping.url())]).expect(1);
    assert!(stdout.starts_with("gm probe WARNING: 1 of 6 checks not OK (genesis)"), "{stdout}");
    assert!(
        row(&stdout, "genesis").contains("WARNING") && stdout.contains("root key not pinned (pass --root-public-key)")
    );
    assert!(ping.seen().is_empty(), "no ping unless every check passed");
}

#[test]
fn genesis_signed_by_another_root_is_critical() {
    let dir = TempDir::new("probe-other-root");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    let other = dir.join("other-root");
    Gm::new(&["keygen", "root", "--output", other.to_str().unwrap()]).expect(0);
    let (stdout, _) = probe(&[
        "--na",
        &format!("http://{}", server.addr),
        "--check",
        "genesis,crl",
        "--root-public-key",
        dir.join("other-root.pub").to_str().unwrap(),
    ])
    .expect(2);
    let genesis = row(&stdout, "genesis");
    assert!(genesis.contains("CRITICAL"), "{stdout}");
    assert!(
        genesis.contains("signature 0 does not verify with the pinned root key; the genesis names root key"),
        "{stdout}"
    );
    // The CRL cannot be vouched for by a genesis the pinned root did not sign.
    assert!(row(&stdout, "crl").contains("UNKNOWN"), "{stdout}");
    assert!(stdout.contains("the served genesis is not signed by the pinned root key"), "{stdout}");
}

// ---------------------------------------------------------------------------------------------
// Transport faults

#[test]
fn target_down_is_critical_with_connection_refused_on_every_check() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let target = format!("http://127.0.0.1:{port}");
    let (stdout, _) = probe(&["--na", &target, "--check", "healthz,readyz,connectome"]).expect(2);
    for (check, path) in [("healthz", "/healthz"), ("readyz", "/readyz"), ("connectome", "/connectome.json")] {
        assert!(
            row(&stdout, check)
                .ends_with(&format!("CRITICAL          -  cannot reach {target}{path}: connection refused")),
            "{stdout}"
        );
    }
}

#[test]
fn silent_target_times_out_within_the_timeout() {
    let silent = StubNa::silent();
    let started = Instant::now();
    let (stdout, _) = probe(&["--na", &silent.url(), "--timeout", "1s"]).expect(2);
    let elapsed = started.elapsed();
    // Checks run in parallel under one per-check deadline: one timeout, not six. The margin is
    // generous (a loaded CI machine); this asserts the bound, not speed.
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
    assert!(row(&stdout, "healthz").contains("CRITICAL"), "{stdout}");
    assert!(row(&stdout, "healthz").contains("timed out after 1s waiting for an answer from"), "{stdout}");
}

#[test]
fn server_errors_are_critical_with_the_status_and_message() {
    let stub = StubNa::start(vec![("*", json(500, "{\"error\":\"database is locked\"}"))]);
    let (stdout, _) = probe(&["--na", &stub.url(), "--check", "healthz,readyz,metrics,connectome,genesis"]).expect(2);
    for check in ["healthz", "readyz", "connectome", "genesis"] {
        assert!(
            row(&stdout, check).contains("CRITICAL") && row(&stdout, check).ends_with("HTTP 500: database is locked")
        );
    }
    // /metrics is for dashboards: without a state file a failure is a warning (operations.md §4.2).
    assert!(
        row(&stdout, "metrics").contains("WARNING")
            && row(&stdout, "metrics").ends_with("HTTP 500: database is locked")
    );
}

// ---------------------------------------------------------------------------------------------
// Body faults

#[test]
fn wrong_bodies_and_invalid_json_are_critical() {
    let stub = StubNa::start(vec![
        ("/healthz", json(200, "{\"status\":\"degraded\"}")),
        ("/readyz", (200, "application/json", "ready!".to_string())),
        ("/connectome.json", json(200, "{\"summary\":{}}")),
        ("/metrics", json(200, "{\"genesis_mesh_na_active_nodes\":1}")),
    ]);
    let (stdout, _) = probe(&["--na", &stub.url(), "--check", "healthz,readyz,connectome,metrics", "--json"]).expect(2);
    let checks = json_checks(&stdout);
    let reason = |c: &str| {
        assert!(checks[c].0 == "CRITICAL" || c == "metrics", "{stdout}");
        checks[c].1.clone()
    };
    assert_eq!(reason("healthz"), "expected body {\"status\":\"ok\"}, found {\"status\":\"degraded\"}");
    assert_eq!(reason("readyz"), "/readyz is not a JSON object: ready!");
    assert_eq!(
        reason("connectome"),
        "missing keys sovereigns, recognition_edges, active_treaties, revoked_trust_material, revocation_blast_radius"
    );
    assert_eq!(reason("metrics"), "not Prometheus text: line 1: expected a metric name");
}

#[test]
fn readyz_not_ready_is_critical() {
    let stub = StubNa::start(vec![("/readyz", json(503, "{\"status\":\"not_ready\"}"))]);
    let (stdout, _) = probe(&["--na", &stub.url(), "--check", "readyz"]).expect(2);
    assert!(row(&stdout, "readyz").ends_with("HTTP 503: {\"status\":\"not_ready\"}"), "{stdout}");
}

// ---------------------------------------------------------------------------------------------
// Signature and freshness faults

/// A stub serving the sandbox's real genesis and the given CRL.
fn genesis_and_crl(home: &Path, crl: String) -> StubNa {
    let genesis = std::fs::read_to_string(home.join("genesis.signed.json")).unwrap();
    StubNa::start(vec![("/genesis", (200, "application/json", genesis)), ("/crl", (200, "application/json", crl))])
}

#[test]
fn crl_signed_by_another_key_is_critical() {
    let dir = TempDir::new("probe-crl-key");
    let home = sandbox(&dir);
    let stub = genesis_and_crl(&home, crl_body(&SigningKey::generate(), 20));
    let (stdout, _) = probe(&["--na", &stub.url(), "--check", "crl", "--root-public-key", &root_pub(&home)]).expect(2);
    assert!(
        row(&stdout, "crl").ends_with("sequence 4: signature 0 does not verify with the genesis NA key"),
        "{stdout}"
    );
}

#[test]
fn expired_crl_is_critical_and_a_crl_near_expiry_warns() {
    let dir = TempDir::new("probe-crl-expired");
    let home = sandbox(&dir);
    let na = load_signing_key(&home.join("keys/na.key")).unwrap();
    let stub = genesis_and_crl(&home, crl_body(&na, -3));
    let (stdout, _) = probe(&["--na", &stub.url(), "--check", "crl", "--root-public-key", &root_pub(&home)]).expect(2);
    let crl = row(&stdout, "crl");
    assert!(crl.contains("CRITICAL") && crl.contains("sequence 4 expired: next_update "), "{stdout}");
    assert!(crl.ends_with(" passed 2 h ago") || crl.ends_with(" passed 3 h ago"), "{stdout}");

    let stub = genesis_and_crl(&home, crl_body(&na, 5));
    let (stdout, _) = probe(&["--na", &stub.url(), "--check", "crl", "--root-public-key", &root_pub(&home)]).expect(1);
    assert!(row(&stdout, "crl").ends_with("the NA is not re-issuing it"), "{stdout}");
}

// ---------------------------------------------------------------------------------------------
// TLS

#[test]
fn self_signed_certificate_is_critical_and_its_expiry_is_still_reported() {
    let tls = tls_stub(ymd_in(-1), ymd_in(30));
    let target = format!("https://{}", tls.addr);
    let dir = TempDir::new("probe-tls");
    let textfile = dir.join("tls.prom");
    let (stdout, _) =
        probe(&["--na", &target, "--check", "tls", "--prom-textfile", textfile.to_str().unwrap()]).expect(2);
    let tls_row = row(&stdout, "tls");
    assert!(tls_row.contains("CRITICAL"), "{stdout}");
    assert!(
        tls_row.contains(
            "certificate not trusted: it is self-signed or issued by an authority outside the webpki roots; it expires in "
        ),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&textfile).unwrap();
    let days = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("gm_probe_tls_cert_expiry_days{{target=\"{target}\"}} ")))
        .unwrap_or_else(|| panic!("{text}"));
    let days: f64 = days.parse().unwrap();
    assert!((28.0..=31.0).contains(&days), "{days}");
}

#[test]
fn expired_certificate_is_critical() {
    let tls = tls_stub((2020, 1, 1), (2021, 1, 1));
    let (stdout, _) = probe(&["--na", &format!("https://{}", tls.addr), "--check", "tls", "--json"]).expect(2);
    let (status, reason) = json_checks(&stdout)["tls"].clone();
    assert_eq!(status, "CRITICAL");
    assert!(reason.starts_with("certificate not trusted: it has expired; it expired "), "{reason}");
    assert!(reason.ends_with(" days ago (2021-01-01T00:00:00Z)"), "{reason}");
}

// ---------------------------------------------------------------------------------------------
// Thresholds and state

#[test]
fn healthz_turns_critical_on_the_second_consecutive_failure_and_a_pass_resets_it() {
    let dir = TempDir::new("probe-state");
    let state = dir.join("state.json");
    let state_arg = state.to_str().unwrap();
    let down = StubNa::start(vec![("/healthz", json(503, "{\"error\":\"restarting\"}"))]);
    let args = ["--na", &down.url(), "--check", "healthz", "--state-file", state_arg];
    let (stdout, _) = probe(&args).expect(1);
    assert!(row(&stdout, "healthz").ends_with("HTTP 503: restarting (failure 1 of 2 before CRITICAL)"), "{stdout}");
    let (stdout, _) = probe(&args).expect(2);
    assert!(row(&stdout, "healthz").ends_with("HTTP 503: restarting"), "{stdout}");
    let saved = parse_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let field = |v: &Value, k: &str| v.as_object().unwrap().get(k).unwrap().clone();
    let count = field(&field(&field(&saved, "checks"), "healthz"), "consecutive_failures").as_i64();
    assert_eq!(count, Some(2));
    assert!(!dir.join("state.json.tmp").exists());

    // --fail-after 3 holds readyz at WARNING for two failures.
    let (stdout, _) =
        probe(&["--na", &down.url(), "--check", "readyz", "--state-file", state_arg, "--fail-after", "3"]).expect(1);
    assert!(row(&stdout, "readyz").ends_with("(failure 1 of 3 before CRITICAL)"), "{stdout}");
}

#[test]
fn a_pass_resets_the_failure_count() {
    let dir = TempDir::new("probe-reset");
    let state = dir.join("state.json");
    let up = StubNa::start(vec![("/healthz", json(200, "{\"status\":\"ok\"}"))]);
    std::fs::write(
        &state,
        format!(
            "{{\"version\":1,\"target\":\"{}\",\"checks\":{{\"healthz\":{{\"consecutive_failures\":5}}}}}}",
            up.url()
        ),
    )
    .unwrap();
    probe(&["--na", &up.url(), "--check", "healthz", "--state-file", state.to_str().unwrap()]).expect(0);
    assert!(!std::fs::read_to_string(&state).unwrap().contains("healthz"));
}

/// Issue 15 item 5: the dead-man URL is a secret, so gm-probe.service hands it over in a file (a
/// systemd credential) instead of on the command line, where `ps` shows it to every local user.
#[test]
fn the_ping_url_can_come_from_a_file_and_is_still_never_shown() {
    let dir = TempDir::new("probe-ping-file");
    let up = StubNa::start(vec![("/healthz", json(200, "{\"status\":\"ok\"}")), ("/ping/5ec2e7", json(200, "{}"))]);
    let url = up.url();
    let file = dir.join("ping-url");
    std::fs::write(&file, format!("\n  {url}/ping/5ec2e7  \n# ignored\n")).unwrap();
    let f = file.to_str().unwrap();
    let (stdout, _) = probe(&["--na", &url, "--check", "healthz", "--ping-url-file", f]).expect(0);
    assert!(stdout.contains(&format!("dead-man ping to {url}/…: sent, 200 after 1 attempt(s)")), "{stdout}");
    assert!(!stdout.contains("5ec2e7"), "the ping URL's secret path is never shown: {stdout}");
    assert_eq!(up.seen(), ["/healthz", "/ping/5ec2e7"]);

    let empty = dir.join("empty");
    std::fs::write(&empty, " \n\n").unwrap();
    let not_a_url = dir.join("not-a-url");
    std::fs::write(&not_a_url, "hc-ping.com/5ec2e7\n").unwrap();
    let missing = dir.join("missing");
    let cases: [(&[&str], String); 4] = [
        (&["--ping-url-file", f, "--ping-url", "https://hc-ping.com/x"], "error: --ping-url and --ping-url-file both name the dead-man URL\nhint: keep one: --ping-url-file keeps the URL out of the process list\n".to_string()),
        (&["--ping-url-file", empty.to_str().unwrap()], format!("error: --ping-url-file {} is empty\nhint: write the dead-man URL into it, one line, e.g. https://hc-ping.com/<uuid>\n", empty.display())),
        (&["--ping-url-file", not_a_url.to_str().unwrap()], "error: the URL in --ping-url-file must be an http:// or https:// URL\nhint: the file holds one line: the dead-man URL, e.g. https://hc-ping.com/<uuid>\n".to_string()),
        (&["--ping-url-file", missing.to_str().unwrap()], format!("error: cannot read the dead-man URL from {}: No such file or directory (os error 2)\n", missing.display())),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["--na", url.as_str(), "--check", "healthz"];
        args.extend_from_slice(extra);
        let (stdout, stderr) = probe(&args).expect(3);
        assert_eq!(stderr, expected, "{extra:?}");
        assert!(stdout.is_empty(), "nothing is probed before the options are valid: {stdout}");
    }
    assert_eq!(up.seen(), ["/healthz", "/ping/5ec2e7"], "the refused runs probed and pinged nothing");
}

/// gm-probe.service passes `--na ${GM_PROBE_TARGET}`: with the variable unset that is an empty
/// target, which must say what is missing (it was a silent probe of a placeholder host).
#[test]
fn an_empty_target_is_refused_with_what_to_set() {
    let (stdout, stderr) = probe(&["--na", ""]).expect(3);
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        "error: no NA to probe: --na is empty\nhint: pass --na https://na.example.org (gm-probe.service takes it from GM_PROBE_TARGET in /etc/gm-probe/env)\n"
    );
}

// ---------------------------------------------------------------------------------------------
// The probe's own failures: UNKNOWN (3)

#[test]
fn usage_and_file_errors_exit_unknown_never_ok() {
    let dir = TempDir::new("probe-usage");
    let up = StubNa::start(vec![("/healthz", json(200, "{\"status\":\"ok\"}"))]);
    let url = up.url();
    let (_, stderr) = probe(&["--na", &url, "--bogus"]).expect(3);
    assert!(stderr.starts_with("error: Unrecognized argument: --bogus"), "{stderr}");
    probe(&[]).expect(3);
    let cases: [(&[&str], &str); 6] = [
        (&["--check", "health"], "error: unknown check \"health\" in --check\nhint: choose from healthz, readyz, metrics, connectome, genesis, crl, tls (comma-separated)\n"),
        (&["--check", "tls"], "error: the tls check needs an https:// --na\nhint: drop tls from --check, or probe the https URL\n"),
        (&["--fail-after", "2"], "error: --fail-after needs --state-file\nhint: consecutive failures are counted in the state file: add --state-file /var/lib/gm-probe/state.json\n"),
        (&["--timeout", "1h"], "error: invalid --timeout \"1h\": expected a whole number of ms, s or m, from 1ms to 5m\nhint: e.g. --timeout 10s or --timeout 500ms\n"),
        (&["--tls-critical-days", "20"], "error: --tls-critical-days 20 is more than --tls-warn-days 14\nhint: the critical threshold must not exceed the warning one, e.g. --tls-warn-days 14 --tls-critical-days 7\n"),
        (&["--root-public-key", "not a key"], "error: --root-public-key is neither a key file nor a base64 Ed25519 public key: public key is not standard padded base64\nhint: pass the root_public_key of the genesis you trust, or the root .pub file from the ceremony\n"),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["--na", url.as_str()];
        args.extend_from_slice(extra);
        let (stdout, stderr) = probe(&args).expect(3);
        assert_eq!(stderr, expected);
        assert!(stdout.is_empty());
    }
    probe(&["--na", "ftp://na"]).expect(3);

    let bad_state = dir.join("state.json");
    std::fs::write(&bad_state, "{broken").unwrap();
    let (_, stderr) =
        probe(&["--na", &url, "--check", "healthz", "--state-file", bad_state.to_str().unwrap()]).expect(3);
    assert!(stderr.contains("is not valid") && stderr.contains("hint: delete the state file"), "{stderr}");

    let missing_dir = dir.join("no/such/dir/gm.prom");
    let (stdout, stderr) =
        probe(&["--na", &url, "--check", "healthz", "--prom-textfile", missing_dir.to_str().unwrap()]).expect(3);
    assert!(stdout.starts_with("gm probe OK"), "the report is printed before the failure: {stdout}");
    assert!(stderr.starts_with("error: cannot write metrics textfile "), "{stderr}");
}
