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
