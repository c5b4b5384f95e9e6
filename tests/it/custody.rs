//! Customer-held custody end to end with two real processes: `gm serve` with no NA key on disk and
//! a `[signer] listen` address, and the customer's `gm signer run` holding the key and dialling
//! in. Upstream-shaped join, heartbeat, renew, revoke + CRL, policy and attestation all go through
//! the signer; the signer's policy refuses what it must; with the signer down the signing routes
//! answer 503 while reads and heartbeats keep working; a signer restart keeps its CRL state; a
//! forged signer is refused at the handshake.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gm::crypto::keys::{load_public_key, PublicKey};
use gm::json::parse_str;
use gm::model::certificate::JoinCertificate;
use gm::model::crl::Crl;
use gm::model::policy::PolicyManifest;
use gm::model::SignedObject;

use crate::harness::{gm_bin, sandbox, wait_until, GmServer, TempDir};
use crate::signer::{field, Node, Operator};

/// A customer-held home: the NA key moved out of the home (to the customer's folder), the signer
/// listener on a free loopback port. Returns (home, the customer's key file).
pub fn customer_held_home(dir: &TempDir) -> (PathBuf, PathBuf) {
    let home = sandbox(dir);
    let customer = dir.join("customer");
    std::fs::create_dir_all(&customer).unwrap();
    let key = customer.join("na.key");
    std::fs::rename(home.join("keys/na.key"), &key).unwrap();
    let mut toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    toml.push_str("\n[signer]\nlisten = \"127.0.0.1:0\"\n");
    std::fs::write(home.join("gm.toml"), toml).unwrap();
    (home, key)
}

/// The signer address the running NA recorded.
pub fn signer_addr(home: &Path) -> SocketAddr {
    let text = std::fs::read_to_string(home.join("gm-runtime.json")).unwrap();
    let v = parse_str(&text).unwrap();
    let listen = v.as_object().unwrap().get("na_key").unwrap().as_object().unwrap().get("signer_listen").unwrap();
    listen.as_str().unwrap().parse().unwrap()
}

/// The customer's signer process.
pub struct Signer {
    child: Child,
    pub state: PathBuf,
    log: PathBuf,
}

impl Signer {
    /// Writes the customer's policy (`gm signer init`'s template: certs, CRLs, policies,
    /// attestations and feeds automatically, treaties kept manual; roles narrowed to
    /// `role:client`/`role:service:db`) unless present, and starts
    /// `gm signer run` against the NA of `home`.
    pub fn start(dir: &TempDir, home: &Path, key: &Path) -> Signer {
        let policy = dir.join("customer/signer-policy.toml");
        if !policy.exists() {
            let out = Command::new(gm_bin())
                .args(["signer", "init", "--policy", policy.to_str().unwrap(), "--genesis"])
                .arg(home.join("genesis.signed.json"))
                .env_clear()
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let text = std::fs::read_to_string(&policy).unwrap();
            let roles = "allowed_roles = [\"role:client\", \"role:anchor\", \"role:bridge\", \"role:service:*\"]";
            assert!(text.contains(roles), "{text}");
            let text = text
                .replace(roles, "allowed_roles = [\"role:client\", \"role:service:db\"]")
                .replace("max_signatures_per_minute = 6000", "max_signatures_per_minute = 100000");
            std::fs::write(&policy, text).unwrap();
        }
        let state = dir.join("customer/state");
        let log = dir.join(&format!("customer/signer-{}.log", std::process::id()));
        let child = Command::new(gm_bin())
            .args(["signer", "run", "--key", key.to_str().unwrap(), "--genesis"])
            .arg(home.join("genesis.signed.json"))
            .args(["--connect", &signer_addr(home).to_string(), "--na-host-key"])
            .arg(home.join("keys/na-host.pub"))
            .arg("--policy")
            .arg(&policy)
            .arg("--state-dir")
            .arg(&state)
            .args(["--sessions", "2"])
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap();
        Signer { child, state, log }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and the exit status.
    pub fn stop(mut self) -> i32 {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        for _ in 0..300 {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("gm signer run did not stop on SIGTERM: {}", self.stderr());
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ready(server: &GmServer) -> bool {
    server.get("/readyz").status == 200
}

fn na_key(home: &Path) -> PublicKey {
    load_public_key(&home.join("keys/na.pub")).unwrap()
}

fn metric(server: &GmServer, name: &str) -> i64 {
    let text = server.get("/metrics").text();
    let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in {text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn customer_held_custody_signs_everything_through_the_remote_signer() {
    let dir = TempDir::new("custody-remote");
    let (home, key) = customer_held_home(&dir);
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    let runtime = std::fs::read_to_string(home.join("gm-runtime.json")).unwrap();
    assert!(runtime.contains("\"source\": \"remote-signer\""), "{runtime}");

    // No signer yet: not ready, signing routes 503, everything else works.
    let readyz = server.get("/readyz");
    assert_eq!(readyz.status, 503);
    assert!(readyz.text().contains("no remote signer is connected"), "{}", readyz.text());
    assert_eq!(server.get("/health").status, 200);
    assert_eq!(server.get("/genesis").status, 200);
    let token = op.invite(server.addr, "{\"roles\":[\"role:client\"],\"max_validity_hours\":48}");
    let node = Node::new();
    let refused = node.join(server.addr, &token);
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.text().contains("NA signer unavailable"), "{}", refused.text());
    assert_eq!(metric(&server, "gm_signer_connected"), 0);

    // The customer's signer dials in.
    let signer = Signer::start(&dir, &home, &key);
    assert!(wait_until(Duration::from_secs(15), || ready(&server)), "signer never connected: {}", signer.stderr());
    assert!(metric(&server, "gm_signer_connected") >= 1);

    // join (the token was not consumed by the 503), heartbeat, renew.
    let joined = node.join(server.addr, &token);
    assert_eq!(joined.status, 201, "{}", joined.text());
    let cert = JoinCertificate::from_value(&parse_str(&joined.text()).unwrap()).unwrap();
    assert!(cert.check_signatures(&[na_key(&home)]).is_valid(), "signed by the genesis NA key");
    let cert_id = field(&joined, "cert_id");
    assert_eq!(node.heartbeat(server.addr, &cert_id).status, 200);
    let renewed = node.renew(server.addr, &cert_id);
    assert_eq!(renewed.status, 201, "{}", renewed.text());
    let renewed_cert = JoinCertificate::from_value(&parse_str(&renewed.text()).unwrap()).unwrap();
    assert!(renewed_cert.check_signatures(&[na_key(&home)]).is_valid());

    // revoke + CRL.
    let revoked = op.send(
        server.addr,
        "POST",
        "/admin/revoke",
        &format!("{{\"cert_id\":\"{cert_id}\",\"reason\":\"superseded\"}}"),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    let sequence: i64 = field(&revoked, "crl_sequence").parse().unwrap();
    let crl = Crl::from_value(&parse_str(&server.get("/crl").text()).unwrap()).unwrap();
    assert_eq!(crl.sequence, sequence);
    assert!(crl.check_signatures(&[na_key(&home)]).is_valid());
    assert_eq!(crl.revoked_certificates.len(), 2, "the renewal chain is listed");

    // policy and attestation.
    let policy = op.send(server.addr, "POST", "/admin/policy", "{\"policy_id\":\"p-remote\",\"allowed_ports\":[443]}");
    assert_eq!(policy.status, 201, "{}", policy.text());
    let manifest = PolicyManifest::from_value(&parse_str(&policy.text()).unwrap()).unwrap();
    assert!(manifest.check_signatures(&[na_key(&home)]).is_valid());
    let attested =
        op.send(server.addr, "POST", "/admin/attestations", "{\"subject_id\":\"agent-1\",\"roles\":[\"role:client\"]}");
    assert_eq!(attested.status, 201, "{}", attested.text());

    // The signer's own policy refuses: a role it does not allow, and treaties (kept manual).
    let admin_token = op.invite(server.addr, "{\"roles\":[\"role:anchor\"]}");
    let r = Node::new().join(server.addr, &admin_token);
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("NA signer refused") && r.text().contains("role:anchor"), "{}", r.text());
    let treaty = op.send(
        server.addr,
        "POST",
        "/admin/recognition-treaties",
        &format!(
            "{{\"subject_sovereign_id\":\"beta-mesh\",\"subject_public_keys\":[\"{}\"],\"scope\":{{\"allowed_roles\":[\"role:client\"]}}}}",
            gm::crypto::keys::SigningKey::generate().public_key().to_b64()
        ),
    );
    assert_eq!(treaty.status, 403, "{}", treaty.text());
    assert!(treaty.text().contains("treaty"), "{}", treaty.text());
    assert!(metric(&server, "gm_signer_requests_total{outcome=\"refused\"}") >= 2);

    // The signer's log verifies and records both decisions.
    let out = Command::new(gm_bin())
        .args(["signer", "log", "--state-dir", signer.state.to_str().unwrap(), "--json"])
        .env_clear()
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{log} {}", String::from_utf8_lossy(&out.stderr));
    assert!(log.contains("\"signed\"") && log.contains("\"refused\""), "{log}");

    // A node enrolled while the signer is up keeps heartbeating after it goes.
    let keeper = Node::new();
    let keeper_token = op.invite(server.addr, "{\"roles\":[\"role:client\"]}");
    let kept = keeper.join(server.addr, &keeper_token);
    assert_eq!(kept.status, 201, "{}", kept.text());
    let keeper_cert = field(&kept, "cert_id");

    // Signer down: 503 for signatures, reads and heartbeats go on.
    assert_eq!(signer.stop(), 0);
    assert!(wait_until(Duration::from_secs(10), || !ready(&server)), "readyz kept saying ready");
    let token3 = op.invite(server.addr, "{\"roles\":[\"role:client\"]}");
    assert_eq!(Node::new().join(server.addr, &token3).status, 503);
    let other = Node::new();
    assert_eq!(server.get("/crl").status, 200, "the stored CRL is still served");
    assert_eq!(keeper.heartbeat(server.addr, &keeper_cert).status, 200, "heartbeats need no signature");
    let probe = Command::new(gm_bin())
        .args(["probe", "--na", &format!("http://{}", server.addr), "--check", "metrics"])
        .env_clear()
        .output()
        .unwrap();
    assert_ne!(probe.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&probe.stdout).contains("gm_signer_connected 0"),
        "{}",
        String::from_utf8_lossy(&probe.stdout)
    );

    // A restarted signer keeps its CRL state: the next CRL is numbered above what it signed.
    let signer = Signer::start(&dir, &home, &key);
    assert!(wait_until(Duration::from_secs(15), || ready(&server)), "{}", signer.stderr());
    let joined = other.join(server.addr, &token3);
    assert_eq!(joined.status, 201, "{}", joined.text());
    let id = field(&joined, "cert_id");
    let r =
        op.send(server.addr, "POST", "/admin/revoke", &format!("{{\"cert_id\":\"{id}\",\"reason\":\"superseded\"}}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(field(&r, "crl_sequence").parse::<i64>().unwrap() > sequence);
    drop(signer);
}

/// Sends one frame of the signer protocol (length, 64-byte signature, JSON body).
fn frame(body: &str) -> Vec<u8> {
    let mut f = ((64 + body.len()) as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&[7u8; 64]);
    f.extend_from_slice(body.as_bytes());
    f
}

#[test]
fn a_forged_signer_is_refused_at_the_handshake_and_the_na_stays_up() {
    let dir = TempDir::new("custody-forged");
    let (home, _key) = customer_held_home(&dir);
    let server = GmServer::start(&home, &[]);
    // An impostor without the NA key answers the hello with a made-up proof.
    let mut s = TcpStream::connect(signer_addr(&home)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut hello = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut hello).unwrap();
    let hello = String::from_utf8_lossy(&hello[64..]).to_string();
    assert!(hello.contains("\"type\":\"hello\"") && hello.contains("gm-signer/1"), "{hello}");
    let na_public = na_key(&home).to_b64();
    let forged = format!(
        "{{\"type\":\"signer_auth\",\"nonce\":\"{}\",\"na_public_key\":\"{na_public}\",\"proof\":\"{}\",\"crl_high\":null}}",
        gm::crypto::digest::b64_encode(&[1u8; 32]),
        gm::crypto::digest::b64_encode(&[2u8; 64])
    );
    s.write_all(&frame(&forged)).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(String::from_utf8_lossy(&rest).contains("does not verify"), "the NA says why before closing");
    assert!(wait_until(Duration::from_secs(5), || metric(&server, "gm_signer_handshake_failures_total") == 1));
    assert_eq!(metric(&server, "gm_signer_connected"), 0);
    // Garbage instead of a frame is refused the same way, and the NA keeps serving.
    let mut g = TcpStream::connect(signer_addr(&home)).unwrap();
    g.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    drop(g);
    assert!(wait_until(Duration::from_secs(10), || metric(&server, "gm_signer_handshake_failures_total") == 2));
    assert_eq!(server.get("/health").status, 200);
    assert!(server.stderr().contains("signer handshake from"), "{}", server.stderr());
    // Connections that never speak hold at most 8 handshake slots; the next is told why at once.
    let silent: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(signer_addr(&home)).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut ninth = TcpStream::connect(signer_addr(&home)).unwrap();
    ninth.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut answer = Vec::new();
    let _ = ninth.read_to_end(&mut answer);
    assert!(
        String::from_utf8_lossy(&answer).contains("too many signer sessions"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    drop(silent);
    assert_eq!(server.get("/health").status, 200);
}

#[test]
fn serve_refuses_a_signer_listener_together_with_a_key_file_or_on_the_public_port() {
    let dir = TempDir::new("custody-conflict");
    let (home, key) = customer_held_home(&dir);
    let h = home.to_str().unwrap();
    let out = Command::new(gm_bin())
        .args(["serve", "--home", h, "--bind", "127.0.0.1:0"])
        .env_clear()
        .env("NA_PRIVATE_KEY_FILE", &key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("signer.listen") && stderr.contains("NA_PRIVATE_KEY_FILE"), "{stderr}");
    let toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    std::fs::write(home.join("gm.toml"), toml.replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:18443\""))
        .unwrap();
    let out =
        Command::new(gm_bin()).args(["serve", "--home", h, "--bind", "127.0.0.1:18443"]).env_clear().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("public port"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Managed custody's default: the NA key comes from a systemd credential
/// (`$CREDENTIALS_DIRECTORY/na-key`, as `LoadCredentialEncrypted=na-key:…` provides it), no key
/// file in the home; the runtime record says so; a named key file still wins over it.
#[test]
fn the_na_key_is_read_from_a_systemd_credential_when_systemd_provides_one() {
    let dir = TempDir::new("custody-credential");
    let home = sandbox(&dir);
    let credentials = dir.join("run-credentials");
    std::fs::create_dir_all(&credentials).unwrap();
    std::fs::rename(home.join("keys/na.key"), credentials.join("na-key")).unwrap();
    let cred = credentials.to_str().unwrap();
    let server = GmServer::start_with(&home, &[], &[("CREDENTIALS_DIRECTORY", cred)]);
    let runtime = std::fs::read_to_string(home.join("gm-runtime.json")).unwrap();
    assert!(
        runtime.contains("\"source\": \"credential\"") && runtime.contains("systemd credential na-key"),
        "{runtime}"
    );
    let token = Operator::sandbox(&home).invite(server.addr, "{}");
    let joined = Node::new().join(server.addr, &token);
    assert_eq!(joined.status, 201, "{}", joined.text());
    let cert = JoinCertificate::from_value(&parse_str(&joined.text()).unwrap()).unwrap();
    assert!(cert.check_signatures(&[na_key(&home)]).is_valid());
    assert!(server.stderr().contains("systemd credential na-key"), "{}", server.stderr());
    drop(server);
    // Without the credential and without a key file, serve refuses, naming the file it tried.
    let out = Command::new(gm_bin())
        .args(["serve", "--home", home.to_str().unwrap(), "--bind", "127.0.0.1:0"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("keys/na.key"), "{}", String::from_utf8_lossy(&out.stderr));
}
