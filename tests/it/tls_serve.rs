//! Built-in TLS of `gm serve` (issue 18): real handshakes on 127.0.0.1 with certificates made here by
//! rcgen (a test CA and leaves it signs), clients that trust only that CA (Python's standard library, as
//! upstream's clients use, and curl), reloads on file change and SIGHUP, refused new certificates, and
//! a stalled handshake cut by the head deadline.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{sandbox, wait_until, with_limits, GmServer, TempDir};

/// A CA and the leaves it signs (`readiness_tls.rs` uses it too).
pub(crate) struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    der: Vec<u8>,
    pub(crate) pem_path: PathBuf,
}

/// PEM of one DER object.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// Today plus `days` (UTC) as `(year, month, day)`.
fn day(days: i64) -> (i32, u8, u8) {
    use chrono::Datelike as _;
    let d = chrono::Utc::now().date_naive() + chrono::Duration::days(days);
    (d.year(), d.month() as u8, d.day() as u8)
}

impl TestCa {
    pub(crate) fn new(dir: &Path) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "gm test CA");
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        let pem_path = dir.join("ca.pem");
        std::fs::write(&pem_path, pem("CERTIFICATE", cert.der())).unwrap();
        TestCa { issuer: rcgen::Issuer::new(params, key), der: cert.der().to_vec(), pem_path }
    }

    /// Writes a leaf for localhost and 127.0.0.1 valid until `not_after_days` from today (negative:
    /// expired) and its key: `(chain file, key file, leaf DER)`.
    pub(crate) fn leaf(&self, dir: &Path, name: &str, not_after_days: i64) -> (PathBuf, PathBuf, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let ((by, bm, bd), (ay, am, ad)) = (day(-3), day(not_after_days));
        params.not_before = rcgen::date_time_ymd(by, bm, bd);
        params.not_after = rcgen::date_time_ymd(ay, am, ad);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let chain = dir.join(format!("{name}.pem"));
        let key_path = dir.join(format!("{name}.key"));
        std::fs::write(&chain, format!("{}{}", pem("CERTIFICATE", cert.der()), pem("CERTIFICATE", &self.der))).unwrap();
        std::fs::write(&key_path, pem("PRIVATE KEY", &key.serialize_der())).unwrap();
        (chain, key_path, cert.der().to_vec())
    }
}

/// The DER of the certificate the server presents to a fresh connection, read with Python's ssl
/// module trusting only `ca`, and the body of `GET /healthz` over that connection.
fn presented(addr: std::net::SocketAddr, ca: &Path) -> (Vec<u8>, String) {
    let script = format!(
        "import ssl, urllib.request, http.client, sys\n\
         ctx = ssl.create_default_context(cafile={ca:?})\n\
         c = http.client.HTTPSConnection('localhost', {port}, context=ctx, timeout=10)\n\
         c.request('GET', '/healthz')\n\
         body = c.getresponse().read().decode()\n\
         der = c.sock.getpeercert(binary_form=True)\n\
         sys.stdout.write(der.hex() + '\\n' + body)\n",
        ca = ca.to_str().unwrap(),
        port = addr.port()
    );
    let out = Command::new("python3").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "python client failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let (hex, body) = text.split_once('\n').unwrap();
    let der = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    (der, body.to_string())
}

pub(crate) fn serve_tls(home: &Path, chain: &Path, key: &Path) -> GmServer {
    GmServer::start(home, &["--tls-cert", chain.to_str().unwrap(), "--tls-key", key.to_str().unwrap()])
}

#[test]
fn upstream_style_clients_get_https_with_the_test_ca_and_plain_http_gets_nothing() {
    let dir = TempDir::new("tls-serve");
    let home = sandbox(&dir);
    let ca = TestCa::new(dir.path());
    let (chain, key, leaf) = ca.leaf(dir.path(), "leaf-a", 30);
    let server = serve_tls(&home, &chain, &key);
    let (der, body) = presented(server.addr, &ca.pem_path);
    assert_eq!(der, leaf, "the server presents the configured leaf");
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    // curl, trusting only the test CA, reads a signed document over HTTP/1.1.
    let out = Command::new("curl")
        .args(["-sS", "--http1.1", "--cacert", ca.pem_path.to_str().unwrap()])
        .arg(format!("https://localhost:{}/crl", server.addr.port()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"crl_id\""));
    // Without the CA the same client refuses the certificate.
    let out = Command::new("curl")
        .arg("-sS")
        .arg(format!("https://localhost:{}/healthz", server.addr.port()))
        .output()
        .unwrap();
    assert!(!out.status.success(), "a client without the test CA must not trust the server");
    // A plain HTTP request on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(server.addr).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(!String::from_utf8_lossy(&got).contains("200 OK"), "{got:?}");
}

#[test]
fn a_renewed_certificate_is_served_to_new_connections_and_a_bad_one_keeps_the_old() {
    let dir = TempDir::new("tls-reload");
    let home = sandbox(&dir);
    let ca = TestCa::new(dir.path());
    let (chain, key, leaf_a) = ca.leaf(dir.path(), "served", 30);
    let server = serve_tls(&home, &chain, &key);
    assert_eq!(presented(server.addr, &ca.pem_path).0, leaf_a);

    // certbot-style renewal: both files replaced; picked up without a signal.
    let (chain_b, key_b, leaf_b) = ca.leaf(dir.path(), "renewed", 60);
    std::fs::copy(&chain_b, &chain).unwrap();
    std::fs::copy(&key_b, &key).unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || presented(server.addr, &ca.pem_path).0 == leaf_b),
        "the renewed certificate was not served; log:\n{}",
        server.stderr()
    );

    // An expired certificate is refused and the renewed one keeps serving (SIGHUP asks at once).
    let (chain_c, key_c, _) = ca.leaf(dir.path(), "expired", -1);
    std::fs::copy(&chain_c, &chain).unwrap();
    std::fs::copy(&key_c, &key).unwrap();
    Command::new("kill").args(["-HUP", &server.pid().to_string()]).status().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || server.stderr().contains("expired")),
        "no log line about the refused certificate:\n{}",
        server.stderr()
    );
    assert_eq!(presented(server.addr, &ca.pem_path).0, leaf_b, "the previous certificate keeps serving");

    // A key that does not belong to the certificate is refused the same way.
    std::fs::copy(&chain_b, &chain).unwrap();
    std::fs::copy(&key_c, &key).unwrap();
    Command::new("kill").args(["-HUP", &server.pid().to_string()]).status().unwrap();
    assert!(wait_until(Duration::from_secs(10), || server.stderr().contains("KeyMismatch")), "{}", server.stderr());
    assert_eq!(presented(server.addr, &ca.pem_path).0, leaf_b);
}

#[test]
fn gm_serve_refuses_to_start_with_an_expired_certificate_or_half_the_files() {
    let dir = TempDir::new("tls-refuse");
    let home = sandbox(&dir);
    let ca = TestCa::new(dir.path());
    let (chain, key, _) = ca.leaf(dir.path(), "old", -1);
    let out = Command::new(crate::harness::gm_bin())
        .args(["serve", "--home", home.to_str().unwrap(), "--bind", "127.0.0.1:0"])
        .args(["--tls-cert", chain.to_str().unwrap(), "--tls-key", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("expired") && stderr.contains("hint:"), "{stderr}");
    let out = Command::new(crate::harness::gm_bin())
        .args([
            "serve",
            "--home",
            home.to_str().unwrap(),
            "--bind",
            "127.0.0.1:0",
            "--tls-cert",
            chain.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls.key_file"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_stalled_handshake_is_cut_by_the_head_deadline() {
    let dir = TempDir::new("tls-stall");
    let home = sandbox(&dir);
    with_limits(&home, "head_timeout_seconds = 2");
    let ca = TestCa::new(dir.path());
    let (chain, key, _) = ca.leaf(dir.path(), "leaf", 30);
    let server = serve_tls(&home, &chain, &key);
    // The first bytes of a TLS record header, then nothing.
    let mut stalled = TcpStream::connect(server.addr).unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).unwrap();
    stalled.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let started = Instant::now();
    let mut sink = [0u8; 64];
    let closed = loop {
        match stalled.read(&mut sink) {
            Ok(0) | Err(_) => break started.elapsed(),
            Ok(_) => {}
        }
    };
    assert!(closed < Duration::from_secs(6), "a stalled handshake held its connection for {closed:?}");
    // Meanwhile and after, a real client is served.
    assert!(presented(server.addr, &ca.pem_path).1.contains("\"status\":\"ok\""));
}

/// A client certificate for `curl --cert/--key`, issued by `ca`: `(cert file, key file)`.
fn client_cert(ca: &TestCa, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let ((by, bm, bd), (ay, am, ad)) = (day(-3), day(30));
    params.not_before = rcgen::date_time_ymd(by, bm, bd);
    params.not_after = rcgen::date_time_ymd(ay, am, ad);
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let (c, k) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&c, pem("CERTIFICATE", cert.der())).unwrap();
    std::fs::write(&k, pem("PRIVATE KEY", &key.serialize_der())).unwrap();
    (c, k)
}

/// `curl` against `path` trusting `ca`, with an optional client certificate: `(exit ok, status, body)`.
fn curl(port: u16, ca: &Path, client: Option<&(PathBuf, PathBuf)>, method: &str, path: &str) -> (bool, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--http1.1", "-X", method, "-w", "\n%{http_code}", "--cacert", ca.to_str().unwrap()]);
    if let Some((c, k)) = client {
        cmd.args(["--cert", c.to_str().unwrap(), "--key", k.to_str().unwrap()]);
    }
    let out = cmd.arg(format!("https://localhost:{port}{path}")).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string())
}

#[test]
fn a_client_ca_guards_the_admin_routes_and_metrics_and_nothing_else() {
    let dir = TempDir::new("tls-client-ca");
    let home = sandbox(&dir);
    let ca = TestCa::new(dir.path());
    let (chain, key, _) = ca.leaf(dir.path(), "leaf", 30);
    let operators_ca_dir = dir.join("operators-ca");
    std::fs::create_dir_all(&operators_ca_dir).unwrap();
    let operators_ca = TestCa::new(&operators_ca_dir);
    let operator = client_cert(&operators_ca, dir.path(), "operator");
    let stranger_ca_dir = dir.join("stranger-ca");
    std::fs::create_dir_all(&stranger_ca_dir).unwrap();
    let stranger = client_cert(&TestCa::new(&stranger_ca_dir), dir.path(), "stranger");
    let server = GmServer::start(
        &home,
        &[
            "--tls-cert",
            chain.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--tls-client-ca",
            operators_ca.pem_path.to_str().unwrap(),
        ],
    );
    let port = server.addr.port();
    // Public routes need no client certificate.
    let (ok, out) = curl(port, &ca.pem_path, None, "GET", "/crl");
    assert!(ok && out.ends_with("\n200"), "{out}");
    // The operator surface does: refused before anything else, with a JSON error.
    let (ok, out) = curl(port, &ca.pem_path, None, "GET", "/metrics");
    assert!(ok && out.ends_with("\n403") && out.contains("client certificate is required"), "{out}");
    let (ok, out) = curl(port, &ca.pem_path, None, "POST", "/admin/invite");
    assert!(ok && out.ends_with("\n403"), "{out}");
    // With the operator's certificate, /metrics answers and the admin route gets as far as its own
    // checks (an unsigned request is refused by the admin signature, not by TLS).
    let (ok, out) = curl(port, &ca.pem_path, Some(&operator), "GET", "/metrics");
    assert!(ok && out.ends_with("\n200") && out.contains("genesis_mesh_"), "{out}");
    let (ok, out) = curl(port, &ca.pem_path, Some(&operator), "POST", "/admin/invite");
    assert!(ok && !out.contains("client certificate"), "{out}");
    // A certificate from another CA fails the handshake.
    let (ok, _) = curl(port, &ca.pem_path, Some(&stranger), "GET", "/healthz");
    assert!(!ok, "a client certificate the client CA did not issue must fail the handshake");
}

#[test]
fn the_redirect_listener_sends_plain_http_to_the_same_path_over_https() {
    let dir = TempDir::new("tls-redirect");
    let home = sandbox(&dir);
    let ca = TestCa::new(dir.path());
    let (chain, key, _) = ca.leaf(dir.path(), "leaf", 30);
    // A free port for the redirect listener (bound, released, then given to gm).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    toml.push_str(&format!("\n[tls]\nredirect_http_bind = \"127.0.0.1:{port}\"\n"));
    std::fs::write(home.join("gm.toml"), toml).unwrap();
    let server = serve_tls(&home, &chain, &key);
    let plain: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let answer = crate::harness::request(
        plain,
        "GET /crl?since=1 HTTP/1.1\r\nHost: na.example.org:80\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(answer.status, 308, "{}", answer.text());
    assert_eq!(
        answer.header("location"),
        Some(format!("https://na.example.org:{}/crl?since=1", server.addr.port()).as_str())
    );
    // A Host that is not a plain name cannot steer the redirect.
    let answer = crate::harness::request(plain, "GET / HTTP/1.1\r\nHost: evil.example/x\r\nConnection: close\r\n\r\n");
    assert_eq!(answer.status, 400);
    // The redirect lands: the HTTPS listener serves the path.
    assert!(presented(server.addr, &ca.pem_path).1.contains("\"status\":\"ok\""));
}

/// Reload under load loses no request: four Python clients (two on keep-alive connections, two
/// opening a new TLS connection per request) call `/healthz` without pause while the certificate is
/// swapped four times, by file change and by SIGHUP alternately. Every request succeeds, the open
/// keep-alive connections survive every swap, and new connections see each certificate in turn.
#[test]
fn a_reload_under_load_loses_no_request_and_keeps_open_connections() {
    let dir = TempDir::new("tls-reload-load");
    let home = sandbox(&dir);
    let ca = TestCa::new(dir.path());
    let (chain, key, leaf_a) = ca.leaf(dir.path(), "first", 30);
    let server = serve_tls(&home, &chain, &key);
    let stop = dir.join("stop");
    let script = format!(
        "import ssl, http.client, threading, json, os, hashlib\n\
         ctx = ssl.create_default_context(cafile={ca:?})\n\
         res = {{'ok': 0, 'failed': [], 'reconnects': 0, 'seen': set()}}\n\
         lock = threading.Lock()\n\
         def worker(keep):\n\
         \x20   c = None\n\
         \x20   while not os.path.exists({stop:?}):\n\
         \x20       try:\n\
         \x20           if c is None:\n\
         \x20               c = http.client.HTTPSConnection('localhost', {port}, context=ctx, timeout=10)\n\
         \x20               c.connect()\n\
         \x20               with lock: res['seen'].add(hashlib.sha256(c.sock.getpeercert(True)).hexdigest())\n\
         \x20           c.request('GET', '/healthz')\n\
         \x20           r = c.getresponse(); body = r.read()\n\
         \x20           assert r.status == 200 and b'ok' in body, (r.status, body)\n\
         \x20           with lock: res['ok'] += 1\n\
         \x20           if not keep: c.close(); c = None\n\
         \x20       except Exception as e:\n\
         \x20           with lock: res['failed'].append(repr(e))\n\
         \x20           c = None\n\
         ts = [threading.Thread(target=worker, args=(k,)) for k in (True, True, False, False)]\n\
         [t.start() for t in ts]; [t.join() for t in ts]\n\
         res['seen'] = sorted(res['seen'])\n\
         print(json.dumps(res))\n",
        ca = ca.pem_path.to_str().unwrap(),
        stop = stop.to_str().unwrap(),
        port = server.addr.port()
    );
    let client = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let sha = |der: &[u8]| {
        use sha2::Digest as _;
        sha2::Sha256::digest(der).iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let mut served = vec![sha(&leaf_a)];
    std::thread::sleep(Duration::from_millis(700));
    for round in 0..4 {
        let (next_chain, next_key, leaf) = ca.leaf(dir.path(), &format!("swap-{round}"), 30 + round);
        std::fs::copy(&next_chain, &chain).unwrap();
        std::fs::copy(&next_key, &key).unwrap();
        if round % 2 == 1 {
            Command::new("kill").args(["-HUP", &server.pid().to_string()]).status().unwrap();
        }
        assert!(
            wait_until(Duration::from_secs(15), || presented(server.addr, &ca.pem_path).0 == leaf),
            "swap {round} not served; log:\n{}",
            server.stderr()
        );
        served.push(sha(&leaf));
        std::thread::sleep(Duration::from_millis(500));
    }
    std::fs::write(&stop, "").unwrap();
    let out = client.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let report = gm::json::parse_str(text.trim()).unwrap();
    let report = report.as_object().unwrap();
    let ok = report.get("ok").and_then(gm::json::Value::as_i64).unwrap();
    let failed = report.get("failed").unwrap().as_array().unwrap();
    assert!(failed.is_empty(), "{} of {} requests failed across the swaps: {failed:?}", failed.len(), ok);
    assert!(ok > 200, "the clients kept the server busy: {ok} requests");
    let seen: Vec<String> =
        report.get("seen").unwrap().as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    for (i, fingerprint) in served.iter().enumerate() {
        assert!(seen.contains(fingerprint), "certificate {i} was never seen by a new connection: {seen:?}");
    }
}
