//! `--ca-file` over real TLS on 127.0.0.1: a real `gm serve` behind a small rustls front
//! (`TlsFront`, a thread per connection relaying plaintext to the NA) whose certificate a test CA
//! made here with rcgen issued. With the CA's bundle, `gm probe` (its tls/expiry check included),
//! `gm admin`, `gm join` and a cron probe job succeed; without it they fail on the certificate with
//! a hint naming `--ca-file`; with another CA's bundle they fail too; a bundle that cannot be used
//! is refused before any request, with a hint.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{Datelike, Utc};
use gm::json::{parse_str, Value};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::harness::{sandbox, Gm, GmServer, TempDir};
use crate::probe::json_checks;

// ---------------------------------------------------------------------------------------------
// A private PKI and a TLS front for gm serve

/// A CA made for one test: its certificate (PEM, written to `ca_file`) and what it needs to issue.
struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    ca_file: PathBuf,
}

impl TestCa {
    fn new(dir: &TempDir, name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, format!("gm test CA {name}"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        let ca_file = dir.join(&format!("{name}.pem"));
        std::fs::write(&ca_file, pem("CERTIFICATE", cert.der())).unwrap();
        TestCa { params, key, ca_file }
    }

    /// A server certificate for 127.0.0.1 and localhost, valid for `days` more days.
    fn issue(&self, days: i64) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params.distinguished_name.push(DnType::CommonName, "gm test NA");
        let date = |days: i64| {
            let d = Utc::now().date_naive() + chrono::Duration::days(days);
            rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
        };
        params.not_before = date(-1);
        params.not_after = date(days);
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.der().clone(), PrivateKeyDer::Pkcs8(key.serialize_der().into()))
    }

    fn file(&self) -> &str {
        self.ca_file.to_str().unwrap()
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n")
}

/// TLS on 127.0.0.1:0 in front of `backend`: each connection is handshaken with the given
/// certificate and then relayed, bytes both ways, to the backend over plain TCP.
struct TlsFront {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TlsFront {
    fn start(backend: SocketAddr, (cert, key): (CertificateDer<'static>, PrivateKeyDer<'static>)) -> TlsFront {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        let config = config.clone();
                        std::thread::spawn(move || relay(tcp, config, backend));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TlsFront { addr, stop, thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One connection: the handshake (a client that refuses the certificate ends it here), then both
/// directions polled with short read timeouts until either side closes, at most 20 s.
fn relay(tcp: TcpStream, config: Arc<rustls::ServerConfig>, backend: SocketAddr) {
    tcp.set_nonblocking(false).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), tcp);
    while tls.conn.is_handshaking() {
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            return;
        }
    }
    let Ok(mut up) = TcpStream::connect(backend) else { return };
    let poll = Some(Duration::from_millis(10));
    tls.sock.set_read_timeout(poll).unwrap();
    up.set_read_timeout(poll).unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 16 * 1024];
    let idle = |e: &std::io::Error| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
    while Instant::now() < until {
        match tls.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if up.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if idle(&e) => {}
            Err(_) => return,
        }
        match up.read(&mut buf) {
            Ok(0) => {
                tls.conn.send_close_notify();
                let _ = tls.flush();
                return;
            }
            Ok(n) => {
                if tls.write_all(&buf[..n]).and_then(|()| tls.flush()).is_err() {
                    return;
                }
            }
            Err(e) if idle(&e) => {}
            Err(_) => return,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn reason_of(checks: &HashMap<String, (String, String)>, name: &str) -> (String, String) {
    checks.get(name).cloned().unwrap_or_else(|| panic!("no {name} check: {checks:?}"))
}

fn token_of(stdout: &str) -> String {
    let v = parse_str(stdout.trim()).unwrap();
    v.as_object().unwrap().get("token_id").and_then(Value::as_str).unwrap().to_string()
}

fn root_pub(home: &Path) -> String {
    home.join("offline/root.pub").to_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// gm probe

#[test]
fn probe_trusts_the_private_ca_with_ca_file_for_every_check_and_the_expiry() {
    let dir = TempDir::new("tls-probe");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    let ca = TestCa::new(&dir, "ca");
    let other = TestCa::new(&dir, "other-ca");
    let front = TlsFront::start(server.addr, ca.issue(90));
    let na = front.url();
    let root = root_pub(&home);

    // With the CA's bundle: every check passes, the tls check with the certificate's expiry.
    let (stdout, _) =
        Gm::new(&["probe", "--na", &na, "--ca-file", ca.file(), "--root-public-key", &root, "--json"]).expect(0);
    let checks = json_checks(&stdout);
    assert_eq!(checks.len(), 7, "{stdout}");
    assert!(checks.values().all(|(status, _)| status == "OK"), "{stdout}");
    let (_, tls) = reason_of(&checks, "tls");
    assert!(
        tls.starts_with("certificate trusted, expires in 8") || tls.starts_with("certificate trusted, expires in 9"),
        "{tls}"
    );

    // Without it the host's roots do not know the CA: the HTTP checks and the tls check say so,
    // and the tls check names the remedy.
    let (stdout, _) = Gm::new(&["probe", "--na", &na, "--check", "healthz,tls", "--json"]).expect(2);
    let checks = json_checks(&stdout);
    let (status, healthz) = reason_of(&checks, "healthz");
    assert_eq!(status, "CRITICAL");
    assert!(
        healthz.contains("is not trusted: it is self-signed or issued by a CA that is not trusted here"),
        "{healthz}"
    );
    let (status, tls) = reason_of(&checks, "tls");
    assert_eq!(status, "CRITICAL");
    assert!(tls.starts_with("certificate not trusted: "), "{tls}");
    assert!(tls.ends_with("; for a private CA pass --ca-file"), "{tls}");

    // Another CA's bundle: only that CA is trusted, so the NA is not.
    let (stdout, _) =
        Gm::new(&["probe", "--na", &na, "--ca-file", other.file(), "--check", "healthz,tls", "--json"]).expect(2);
    let checks = json_checks(&stdout);
    assert_eq!(reason_of(&checks, "healthz").0, "CRITICAL", "{stdout}");
    let (status, tls) = reason_of(&checks, "tls");
    assert_eq!(status, "CRITICAL");
    assert!(
        tls.starts_with(
            "certificate not trusted: it is not issued by a CA of the private CA bundle (--ca-file); it expires in "
        ),
        "{tls}"
    );

    // gm readiness probes the NA with the same trust: the endpoints check passes only with it.
    let readiness = |extra: &[&str]| {
        let mut args = vec!["readiness", "--home", home.to_str().unwrap(), "--na", &na, "--json"];
        args.extend_from_slice(extra);
        let out = Gm::new(&args).output();
        let v = parse_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
        let checks = v.as_object().unwrap().get("checks").unwrap().as_array().unwrap();
        let endpoints =
            checks.iter().find(|c| c.as_object().unwrap().get("id").and_then(Value::as_str) == Some("endpoints"));
        let endpoints = endpoints.unwrap().as_object().unwrap().clone();
        let field = |k: &str| endpoints.get(k).and_then(Value::as_str).unwrap().to_string();
        (field("status"), field("reason"))
    };
    let (status, reason) = readiness(&["--ca-file", ca.file()]);
    assert_eq!(status, "pass", "{reason}");
    let (status, reason) = readiness(&[]);
    assert_eq!(status, "fail", "{reason}");
    assert!(reason.contains("is not trusted"), "{reason}");
    let (_, stderr) =
        Gm::new(&["readiness", "--home", home.to_str().unwrap(), "--na", &na, "--ca-file", "/nonexistent/ca.pem"])
            .expect(3);
    assert!(stderr.starts_with("error: cannot read --ca-file /nonexistent/ca.pem: "), "{stderr}");

    // The expiry check grades a certificate the private CA issued: 10 days left is a WARNING.
    let soon = TlsFront::start(server.addr, ca.issue(10));
    let (stdout, _) =
        Gm::new(&["probe", "--na", &soon.url(), "--ca-file", ca.file(), "--check", "healthz,tls", "--json"]).expect(1);
    let checks = json_checks(&stdout);
    assert_eq!(reason_of(&checks, "healthz").0, "OK", "{stdout}");
    let (status, tls) = reason_of(&checks, "tls");
    assert_eq!(status, "WARNING", "{stdout}");
    assert!(tls.contains("under the 14-day threshold: renew it"), "{tls}");
}

#[test]
fn a_probe_cron_job_passes_its_ca_file() {
    let dir = TempDir::new("tls-cron");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    let ca = TestCa::new(&dir, "ca");
    let front = TlsFront::start(server.addr, ca.issue(90));
    let mut toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    for (job, extra) in [("tlsprobe", "ca_file = \"ca.pem\"\n"), ("hostroots", "")] {
        toml.push_str(&format!(
            "\n[cron.jobs.{job}]\nkind = \"probe\"\nschedule = \"@hourly\"\ntarget = \"{}\"\nchecks = \"healthz,tls\"\n{extra}",
            front.url()
        ));
    }
    std::fs::write(home.join("gm.toml"), toml).unwrap();
    let h = home.to_str().unwrap();
    // gm config check names a ca_file that is not there.
    let missing = format!("job tlsprobe: ca_file {}: No such file", home.join("ca.pem").display());
    let (stdout, _) = Gm::new(&["config", "check", "--home", h]).expect(1);
    assert!(stdout.contains(&missing), "{stdout}");
    std::fs::copy(&ca.ca_file, home.join("ca.pem")).unwrap();
    let stdout = String::from_utf8_lossy(&Gm::new(&["config", "check", "--home", h]).output().stdout).to_string();
    assert!(!stdout.contains("ca_file"), "{stdout}");
    Gm::new(&["cron", "run-once", "tlsprobe", "--home", h]).expect(0);
    Gm::new(&["cron", "run-once", "hostroots", "--home", h]).expect(1);
}

#[test]
fn a_ca_file_that_cannot_be_used_is_refused_before_any_request() {
    let dir = TempDir::new("tls-bad-ca");
    let home = sandbox(&dir);
    let h = home.to_str().unwrap();
    let key = KeyPair::generate().unwrap();
    let files = [
        ("missing.pem", None),
        ("empty.pem", Some(String::new())),
        ("key.pem", Some(pem("PRIVATE KEY", &key.serialize_der()))),
        ("garbage.pem", Some(pem("CERTIFICATE", b"not a certificate"))),
        ("base64.pem", Some("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".to_string())),
    ];
    // Nothing listens on port 1: an error about the connection would mean a request was tried.
    let na = "https://127.0.0.1:1";
    for (name, content) in files {
        let path = dir.join(name);
        if let Some(text) = content {
            std::fs::write(&path, text).unwrap();
        }
        let p = path.to_str().unwrap();
        let expected = match name {
            "missing.pem" => format!("error: cannot read --ca-file {p}: No such file or directory"),
            "empty.pem" | "key.pem" => {
                format!("error: cannot use --ca-file {p}: it holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
            }
            "garbage.pem" => format!("error: cannot use --ca-file {p}: certificate 1 does not parse: "),
            _ => format!("error: cannot use --ca-file {p}: certificate block 1 is not valid PEM: "),
        };
        let (_, stderr) = Gm::new(&["admin", "invite", "--na", na, "--home", h, "--ca-file", p]).expect(2);
        assert!(stderr.starts_with(&expected), "{name}: {stderr}");
        assert!(stderr.contains("\nhint: pass "), "{name}: {stderr}");
        let node = dir.join("node");
        let (_, stderr) =
            Gm::new(&["join", "--na", na, "--token", "t", "--home", node.to_str().unwrap(), "--ca-file", p]).expect(2);
        assert!(stderr.starts_with(&expected), "{name}: {stderr}");
        // gm probe: a probe that cannot run is UNKNOWN (Nagios), never CRITICAL.
        let (_, stderr) = Gm::new(&["probe", "--na", na, "--ca-file", p]).expect(3);
        assert!(stderr.starts_with(&expected), "{name}: {stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// gm admin and gm join

#[test]
fn admin_and_join_over_https_trust_the_private_ca_only_with_ca_file() {
    let dir = TempDir::new("tls-clients");
    let home = sandbox(&dir);
    let h = home.to_str().unwrap();
    let server = GmServer::start(&home, &[]);
    let ca = TestCa::new(&dir, "ca");
    let other = TestCa::new(&dir, "other-ca");
    let front = TlsFront::start(server.addr, ca.issue(90));
    let na = front.url();
    let base = format!("https://{}", front.addr);

    // Without --ca-file: refused on the certificate, exit 2, the hint names --ca-file.
    let (_, stderr) = Gm::new(&["admin", "invite", "--na", &na, "--home", h, "--role", "anchor"]).expect(2);
    assert!(
        stderr.starts_with(&format!("error: the TLS certificate of {base}/sovereign.json is not trusted: it is self-signed or issued by a CA that is not trusted here\n")),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("hint: the NA at {base} shows a certificate no CA of this host's bundle issued: if it comes from a private (self-hosted) CA, pass that CA's certificate (PEM) with --ca-file FILE")), "{stderr}");
    // Another CA's bundle: refused too, with the hint for that case.
    let (_, stderr) =
        Gm::new(&["admin", "invite", "--na", &na, "--home", h, "--role", "anchor", "--ca-file", other.file()])
            .expect(2);
    assert!(stderr.contains("is not trusted"), "{stderr}");
    assert!(
        stderr.contains(&format!("hint: no CA of --ca-file issued the certificate of the NA at {base}")),
        "{stderr}"
    );

    // With the CA's bundle: the invite is signed and answered over TLS.
    let (stdout, _) =
        Gm::new(&["admin", "invite", "--na", &na, "--home", h, "--role", "anchor", "--ca-file", ca.file(), "--json"])
            .expect(0);
    let token = token_of(&stdout);

    // gm join: refused without the bundle and with the wrong one (the token is not spent: the
    // handshake fails before anything is posted), then joins with it.
    let node = dir.join("node");
    let node_home = node.to_str().unwrap();
    let (_, stderr) = Gm::new(&["join", "--na", &na, "--token", &token, "--home", node_home]).expect(2);
    assert!(stderr.contains("is not trusted") && stderr.contains("--ca-file FILE"), "{stderr}");
    let (_, stderr) =
        Gm::new(&["join", "--na", &na, "--token", &token, "--home", node_home, "--ca-file", other.file()]).expect(2);
    assert!(stderr.contains("hint: no CA of --ca-file issued"), "{stderr}");
    assert!(!node.join("node.cert.json").exists());
    let (stdout, _) =
        Gm::new(&["join", "--na", &na, "--token", &token, "--home", node_home, "--ca-file", ca.file(), "--json"])
            .expect(0);
    assert!(stdout.contains("role:anchor"), "{stdout}");
    assert!(node.join("node.cert.json").exists());

    // Reads built on the same client take it too.
    Gm::new(&["treaty", "list", "--na", &na, "--ca-file", ca.file()]).expect(0);
    Gm::new(&["feed", "export", "--na", &na, "--ca-file", ca.file(), "--json"]).expect(0);
    Gm::new(&["treaty", "list", "--na", &na]).expect(2);
}
