//! The shipped reverse-proxy configurations, `deploy/nginx/gm.conf` and `deploy/caddy/Caddyfile`,
//! run by a real nginx and a real Caddy (Debian packages, `scripts/install-test-deps.sh`) in front of
//! the real `gm serve` with `trusted_proxy_hops = 1`, all on 127.0.0.1 with ephemeral ports.
//!
//! The configuration each proxy runs is the shipped file with only its `# SITE:` lines substituted
//! (ports, certificate files, gm's address; [`site_config`] fails when a substitution lands anywhere
//! else or not exactly where expected), so what passes here is what an operator installs. The
//! certificates come from a test CA made here with rcgen; curl is the client, trusting that CA with
//! `--cacert` and connecting from 127.0.0.2, so the address gm records can only have come from the
//! proxy's `X-Forwarded-For`. Through each proxy: an admin invite (signed v2, the headers gm's CLI
//! sends), a node join, the audit log and `issued_certs` naming 127.0.0.2 even when the client sends
//! its own forwarding headers, the advertised URLs unmoved by forged `X-Forwarded-Host`/`-Proto`,
//! the HTTP→HTTPS redirect, a body over gm's limit refused by the proxy with gm's own 413 (gm never
//! sees it) while a body at the limit passes, heads over gm's limits refused (414, 431) while a
//! 12 KiB head passes, and gm reached over reused keep-alive connections. When nginx or caddy is
//! missing the tests fail saying so.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use gm::crypto::canonical::canonical_string;
use gm::crypto::digest::uuid4;
use gm::json::{parse_str, Value};

use crate::harness::{sandbox, wait_until, GmServer, TempDir};
use crate::signer::{now_iso, sandbox_audience, Node, Operator};

/// The NA's public name in the shipped files; curl resolves it to 127.0.0.1 (`--resolve`).
const NAME: &str = "na.example.org";
/// The client's own address: not the proxy's (127.0.0.1), so gm can only learn it from the proxy.
const CLIENT_ADDR: &str = "127.0.0.2";
/// gm's `max_body_bytes` default, which both proxies must enforce.
const MAX_BODY: usize = 2 * 1024 * 1024;

#[test]
fn nginx_config_terminates_tls_forwards_the_client_address_and_enforces_gms_limits() {
    let dir = TempDir::new("proxy-nginx");
    let (home, gm) = gm_behind_a_proxy(&dir);
    let pki = Pki::new(&dir);
    let (http, https) = (free_port(), free_port());
    let shipped = read_shipped("deploy/nginx/gm.conf");
    let site = site_config(
        &shipped,
        &[
            ("listen 80;", format!("listen 127.0.0.1:{http};")),
            ("listen 443 ssl;", format!("listen 127.0.0.1:{https} ssl;")),
            ("/etc/letsencrypt/live/na.example.org/fullchain.pem", pki.chain.display().to_string()),
            ("/etc/letsencrypt/live/na.example.org/privkey.pem", pki.key.display().to_string()),
            ("server 127.0.0.1:8443;", format!("server {};", gm.addr)),
        ],
    );
    let proxy = Proxy::nginx(&dir, &site, https);
    exercise(&proxy, &pki, &home, &gm, http);
}

#[test]
fn caddy_config_terminates_tls_forwards_the_client_address_and_enforces_gms_limits() {
    let dir = TempDir::new("proxy-caddy");
    let (home, gm) = gm_behind_a_proxy(&dir);
    let pki = Pki::new(&dir);
    let (http, https, admin) = (free_port(), free_port(), free_port());
    let shipped = read_shipped("deploy/caddy/Caddyfile");
    let site = site_config(
        &shipped,
        &[
            ("admin localhost:2019", format!("admin 127.0.0.1:{admin}")),
            ("http_port 80", format!("http_port {http}")),
            ("https_port 443", format!("https_port {https}")),
            ("/etc/gm/tls/fullchain.pem", pki.chain.display().to_string()),
            ("/etc/gm/tls/privkey.pem", pki.key.display().to_string()),
            ("reverse_proxy 127.0.0.1:8443", format!("reverse_proxy {}", gm.addr)),
        ],
    );
    let proxy = Proxy::caddy(&dir, &site, https);
    exercise(&proxy, &pki, &home, &gm, http);
}

/// A sandbox NA configured as docs/config.md says for a TLS proxy on the same host.
fn gm_behind_a_proxy(dir: &TempDir) -> (PathBuf, GmServer) {
    let home = sandbox(dir);
    let toml_path = home.join("gm.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    assert!(toml.contains("\ntrusted_proxy_hops = 0\n"), "{toml}");
    std::fs::write(&toml_path, toml.replace("\ntrusted_proxy_hops = 0\n", "\ntrusted_proxy_hops = 1\n")).unwrap();
    let gm = GmServer::start(&home, &[]);
    (home, gm)
}

/// What every proxy must do, checked the same way for each.
fn exercise(proxy: &Proxy, pki: &Pki, home: &Path, gm: &GmServer, http_port: u16) {
    let caddy = proxy.kind == Kind::Caddy;
    let client = Curl { pki, https_port: proxy.https_port };
    let health = client.run("GET", "/healthz", &[], None);
    assert_eq!(health.status, 200, "{health:?}\n{}", proxy.log());

    // Port 80 only redirects, to the same host and path over HTTPS (nginx: 301, Caddy: 308).
    let plain = client.plain(http_port, "/healthz?x=1");
    assert_eq!(plain.status, if caddy { 308 } else { 301 }, "{plain:?}");
    let location = plain.header("location").unwrap_or_default();
    assert!(location.starts_with(&format!("https://{NAME}")) && location.ends_with("/healthz?x=1"), "{plain:?}");
    if !caddy {
        // nginx's port 80 also serves certbot's webroot challenges (none here).
        assert_eq!(client.plain(http_port, "/.well-known/acme-challenge/t").status, 404);
    }

    // Forwarding headers a client makes up: gm must read past them to what the proxy wrote.
    let forged = ["X-Forwarded-For: 203.0.113.66", "X-Forwarded-Host: evil.example", "X-Forwarded-Proto: http"];

    // An admin request, signed v2 as `gm admin invite` signs it.
    let op = Operator::sandbox(home);
    let invite = client.admin(&op, &sandbox_audience(home), "/admin/invite", "{}", &forged);
    assert_eq!(invite.status, 201, "{invite:?}\n{}", proxy.log());
    let token = field(&invite.body, "token_id");

    // A node join with that invite.
    let node = Node::new();
    let proof =
        node.sign(&[("invite_token", Value::from(token.as_str())), ("validity_hours", Value::from(24i64))], &now_iso());
    let join = client.run("POST", "/join", &forged, Some(canonical_string(&Value::Object(proof)).as_bytes()));
    assert_eq!(join.status, 201, "{join:?}\n{}", proxy.log());
    let cert_id = field(&join.body, "cert_id");

    // gm recorded the client's address as the proxy saw it: not the proxy's, not the forged one.
    let db =
        rusqlite::Connection::open_with_flags(home.join("na.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let issued_to: String =
        db.query_row("SELECT remote_addr FROM issued_certs WHERE cert_id = ?1", [&cert_id], |r| r.get(0)).unwrap();
    assert_eq!(issued_to, CLIENT_ADDR);
    let audited = audited_addresses(&db);
    for expected in ["invite_created", "certificate_issued"] {
        assert!(audited.iter().any(|(event, addr)| event == expected && addr == CLIENT_ADDR), "{audited:?}");
    }
    assert!(audited.iter().all(|(_, addr)| addr == CLIENT_ADDR), "{audited:?}");

    // The URLs gm advertises name the host and scheme the client really used.
    let sovereign = client.run("GET", "/sovereign.json", &forged, None);
    assert_eq!(sovereign.status, 200, "{sovereign:?}");
    let endpoint = field(&sovereign.body, "endpoint");
    assert!(endpoint.starts_with(&format!("https://{NAME}")), "{endpoint}");

    // Bodies: one byte over gm's limit is refused by the proxy with gm's own answer, and gm never
    // sees it (every answer of gm carries its X-Request-ID); exactly at the limit it reaches gm,
    // which refuses the bytes (they are not JSON).
    let too_large = client.run("POST", "/join", &[], Some(&vec![b'x'; MAX_BODY + 1]));
    assert_eq!(too_large.status, 413, "{too_large:?}");
    assert_eq!(field(&too_large.body, "error"), "Request body too large", "{too_large:?}");
    assert_eq!(too_large.header("x-request-id"), None, "gm answered, not the proxy: {too_large:?}");
    let at_limit = client.run("POST", "/join", &[], Some(&vec![b'x'; MAX_BODY]));
    assert_eq!(at_limit.status, 400, "{at_limit:?}\n{}", proxy.log());
    assert!(at_limit.header("x-request-id").is_some(), "{at_limit:?}");
    // A chunked body (no Content-Length) over the limit: nginx refuses it with 413. Caddy streams
    // chunked bodies on to gm, which refuses them with 501 at once (and Caddy then may cut the
    // client's upload mid-way), so there is nothing stable to check through Caddy.
    if !caddy {
        let chunked = client.run("POST", "/join", &["Transfer-Encoding: chunked"], Some(&vec![b'x'; MAX_BODY + 1]));
        assert_eq!((chunked.status, chunked.header("x-request-id")), (413, None), "{chunked:?}");
    }

    // Heads: a request line over gm's 4096 bytes gets 414, a head over its 16 KiB gets 431, and
    // a head of 12 KiB passes.
    let long_target = format!("/healthz?{}", "a".repeat(4100));
    let uri_too_long = client.run("GET", &long_target, &[], None);
    assert_eq!(uri_too_long.status, 414, "{uri_too_long:?}");
    let big_fields: Vec<String> = (0..6).map(|i| format!("X-Filler-{i}: {}", "b".repeat(3000))).collect();
    let big_fields: Vec<&str> = big_fields.iter().map(String::as_str).collect();
    let head_too_large = client.run("GET", "/healthz", &big_fields, None);
    assert_eq!(head_too_large.status, 431, "{head_too_large:?}");
    assert_eq!(field(&head_too_large.body, "error"), "Request header fields too large", "{head_too_large:?}");
    // nginx refuses it itself; Go's server under Caddy allows 4 KiB of slack, so there gm does.
    assert!(caddy || head_too_large.header("x-request-id").is_none(), "{head_too_large:?}");
    let fitting = client.run("GET", "/healthz", &big_fields[..4], None);
    assert_eq!(fitting.status, 200, "{fitting:?}");

    // HTTP/1.1 keep-alive towards gm: ten requests through the proxy, far fewer new connections.
    let before = connections_total(gm);
    for _ in 0..10 {
        assert_eq!(client.run("GET", "/healthz", &[], None).status, 200);
    }
    let opened = connections_total(gm) - before - 1; // the second /metrics read is one of them
    assert!(opened <= 2, "{opened} new connections to gm for 10 proxied requests");
}

/// `(event type, details.remote_addr)` of every audit event that has an address.
fn audited_addresses(db: &rusqlite::Connection) -> Vec<(String, String)> {
    let mut stmt = db.prepare("SELECT event_json FROM audit_events ORDER BY rowid").unwrap();
    let rows: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    rows.iter()
        .filter_map(|json| {
            let event = parse_str(json).unwrap();
            let event = event.as_object().unwrap();
            let kind = event.get("event_type").and_then(Value::as_str).unwrap_or_default().to_string();
            let details = event.get("details").and_then(Value::as_object)?;
            Some((kind, details.get("remote_addr").and_then(Value::as_str)?.to_string()))
        })
        .collect()
}

fn connections_total(gm: &GmServer) -> u64 {
    let metrics = gm.get("/metrics").text();
    let line = metrics.lines().find(|l| l.starts_with("gm_http_connections_total ")).unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn field(body: &str, name: &str) -> String {
    let v = parse_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v.as_object()
        .unwrap()
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .to_string()
}

/// The shipped file, read from the repository.
fn read_shipped(relative: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)).unwrap()
}

/// `shipped` with each `(from, to)` applied exactly once, and only to a line marked as site-specific:
/// a line holding a `# SITE:` comment, or the line after a line that is only such a comment.
fn site_config(shipped: &str, substitutions: &[(&str, String)]) -> String {
    let mut used = vec![0usize; substitutions.len()];
    let mut marked_next = false;
    let mut out = String::new();
    for line in shipped.lines() {
        let is_marker_line = line.trim_start().starts_with("# SITE:");
        let marked = marked_next || line.contains("# SITE:");
        let mut line = line.to_string();
        for (i, (from, to)) in substitutions.iter().enumerate() {
            if line.contains(from) && !is_marker_line {
                assert!(marked, "{from:?} found on a line not marked `# SITE:`: {line}");
                line = line.replace(from, to);
                used[i] += 1;
            }
        }
        marked_next = is_marker_line;
        out.push_str(&line);
        out.push('\n');
    }
    for ((from, _), n) in substitutions.iter().zip(used) {
        assert_eq!(n, 1, "{from:?} substituted {n} times in the shipped file");
    }
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A test CA and a certificate for [`NAME`] it signed, as PEM files.
struct Pki {
    ca: PathBuf,
    chain: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new(dir: &TempDir) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "gm proxy test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf_params = CertificateParams::new(vec![NAME.to_string()]).unwrap();
        leaf_params.distinguished_name.push(DnType::CommonName, NAME);
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
        let pki = Pki { ca: dir.join("ca.pem"), chain: dir.join("fullchain.pem"), key: dir.join("privkey.pem") };
        std::fs::write(&pki.ca, pem("CERTIFICATE", ca.der())).unwrap();
        let chain = format!("{}{}", pem("CERTIFICATE", leaf.der()), pem("CERTIFICATE", ca.der()));
        std::fs::write(&pki.chain, chain).unwrap();
        std::fs::write(&pki.key, pem("PRIVATE KEY", &leaf_key.serialize_der())).unwrap();
        pki
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Nginx,
    Caddy,
}

/// A running nginx or Caddy, killed and reaped on drop.
struct Proxy {
    kind: Kind,
    child: Child,
    https_port: u16,
    log: PathBuf,
}

impl Proxy {
    /// nginx with `site` included in `http { }`, as Debian's nginx.conf includes conf.d/*.conf; the
    /// main file only keeps nginx's own state inside the test folder.
    fn nginx(dir: &TempDir, site: &str, https_port: u16) -> Proxy {
        let binary = tool("nginx", &["/usr/sbin/nginx"]);
        let prefix = dir.join("nginx");
        std::fs::create_dir_all(&prefix).unwrap();
        std::fs::write(prefix.join("gm.conf"), site).unwrap();
        let p = prefix.display();
        // As root, nginx's workers would switch to `nobody`, who cannot write the test folder.
        let user = if is_root() { "user root;\n" } else { "" };
        let main = format!(
            "{user}daemon off;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log {p}/access.log;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n\
             \x20 fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n\
             \x20 include {p}/gm.conf;\n}}\n"
        );
        std::fs::write(prefix.join("nginx.conf"), main).unwrap();
        let log = prefix.join("stderr.log");
        let child = Command::new(binary)
            .args(["-p", &p.to_string(), "-e", &format!("{p}/error.log"), "-c", &format!("{p}/nginx.conf")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Proxy::started(Kind::Nginx, child, https_port, prefix.join("error.log"))
    }

    /// Caddy running `site` as its whole Caddyfile, its state in the test folder.
    fn caddy(dir: &TempDir, site: &str, https_port: u16) -> Proxy {
        let binary = tool("caddy", &["/usr/bin/caddy"]);
        let root = dir.join("caddy");
        std::fs::create_dir_all(&root).unwrap();
        let caddyfile = root.join("Caddyfile");
        std::fs::write(&caddyfile, site).unwrap();
        let log = root.join("stderr.log");
        let child = Command::new(binary)
            .args(["run", "--adapter", "caddyfile", "--config", caddyfile.to_str().unwrap()])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &root)
            .env("XDG_DATA_HOME", root.join("data"))
            .env("XDG_CONFIG_HOME", root.join("config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Proxy::started(Kind::Caddy, child, https_port, log)
    }

    fn started(kind: Kind, mut child: Child, https_port: u16, log: PathBuf) -> Proxy {
        let addr: SocketAddr = ([127, 0, 0, 1], https_port).into();
        let up = wait_until(Duration::from_secs(20), || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() || child.try_wait().unwrap().is_some()
        });
        let exited = child.try_wait().unwrap();
        let proxy = Proxy { kind, child, https_port, log };
        assert!(up && exited.is_none(), "the proxy did not start ({exited:?}):\n{}", proxy.log());
        proxy
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.trim_ascii() == b"0").unwrap_or(false)
}

/// `name` on PATH, else the first of `paths` that exists (nginx lives in /usr/sbin, which a non-root
/// PATH often lacks); fails naming the Debian package when there is none.
fn tool(name: &str, paths: &[&str]) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = std::env::split_paths(&path).map(|dir| dir.join(name));
    let found = on_path.chain(paths.iter().map(PathBuf::from)).find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("{name} is not installed (not on PATH nor at {paths:?}): run scripts/install-test-deps.sh (Debian package {name})")
    })
}

/// curl as the client: HTTP/1.1 (as gm's clients), the test CA, from [`CLIENT_ADDR`].
struct Curl<'a> {
    pki: &'a Pki,
    https_port: u16,
}

#[derive(Debug)]
struct CurlResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl CurlResponse {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    }
}

impl Curl<'_> {
    /// An HTTPS request through the proxy; `headers` are `Name: value` lines.
    fn run(&self, method: &str, target: &str, headers: &[&str], body: Option<&[u8]>) -> CurlResponse {
        let url = format!("https://{NAME}:{}{target}", self.https_port);
        let resolve = format!("{NAME}:{}:127.0.0.1", self.https_port);
        let mut args = vec!["--cacert".to_string(), self.pki.ca.display().to_string(), "--resolve".into(), resolve];
        args.extend(["-X".into(), method.into()]);
        for h in headers {
            args.extend(["-H".into(), (*h).to_string()]);
        }
        if body.is_some() {
            args.extend(["-H".into(), "Content-Type: application/json".into(), "--data-binary".into(), "@-".into()]);
        }
        args.push(url);
        curl(&args, body)
    }

    /// A plain-HTTP request to the proxy's port 80 twin (not followed).
    fn plain(&self, port: u16, target: &str) -> CurlResponse {
        let resolve = format!("{NAME}:{port}:127.0.0.1");
        curl(&["--resolve".into(), resolve, format!("http://{NAME}:{port}{target}")], None)
    }

    /// An admin request signed with version 2, the four `X-Admin-*` headers `gm admin` sends.
    fn admin(&self, op: &Operator, audience: &str, path: &str, body: &str, extra: &[&str]) -> CurlResponse {
        let (timestamp, nonce) = (now_iso(), uuid4());
        let signed = parse_str(body).unwrap();
        let payload =
            gm::crypto::payload::v2_payload(audience, &signed, &op.key_id, "POST", &nonce, path, &[], &timestamp);
        let signature = op.key.sign_b64(&payload);
        let headers = [
            format!("X-Admin-Key-Id: {}", op.key_id),
            format!("X-Admin-Timestamp: {timestamp}"),
            format!("X-Admin-Nonce: {nonce}"),
            format!("X-Admin-Signature: {signature}"),
        ];
        let all: Vec<&str> = headers.iter().map(String::as_str).chain(extra.iter().copied()).collect();
        self.run("POST", path, &all, Some(body.as_bytes()))
    }
}

/// Runs curl with `args` (plus the common ones) and `stdin`, and parses the response it prints.
fn curl(args: &[String], stdin: Option<&[u8]>) -> CurlResponse {
    use std::io::Write as _;
    let mut child = Command::new("curl")
        .args(["-sS", "-i", "--http1.1", "--max-time", "20", "--interface", CLIENT_ADDR])
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl runs (Debian package curl)");
    if let Some(bytes) = stdin {
        // A proxy that refuses early may close before reading it all: that is its answer, not an error.
        let _ = child.stdin.take().unwrap().write_all(bytes);
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "curl {args:?} failed: {}{text}", String::from_utf8_lossy(&out.stderr));
    // Interim answers (`100 Continue` to curl's `Expect` on large bodies) come before the final one.
    let mut rest = text.as_str();
    while rest.starts_with("HTTP/1.1 1") {
        rest = rest.split_once("\r\n\r\n").map_or("", |(_, after)| after);
    }
    let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().into(), v.trim().into())).collect();
    CurlResponse { status, headers, body: body.to_string() }
}
