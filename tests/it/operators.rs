//! Operator key rotation without downtime: `gm operator add|retire|list` edit the keys file and a
//! running `gm serve` follows on the next admin request (and on SIGHUP), keeping its connections.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use crate::harness::{read_response, sandbox, Gm, GmServer, TempDir};
use crate::signer::Operator;

#[test]
fn add_then_retire_rotates_keys_live() {
    let dir = TempDir::new("rotate");
    let home = sandbox(&dir);
    let h = home.to_str().unwrap();
    let server = GmServer::start(&home, &[]);
    let old = Operator::sandbox(&home);
    // A keep-alive connection opened before the rotation keeps working throughout.
    let mut kept = TcpStream::connect(server.addr).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut kept).unwrap().status, 200);

    let new_key = gm::crypto::keys::SigningKey::generate();
    let (stdout, _) = Gm::new(&[
        "operator",
        "add",
        "--home",
        h,
        "--key-id",
        "alice-2026",
        "--public-key",
        &new_key.public_key().to_b64(),
    ])
    .expect(0);
    assert!(stdout.starts_with("added operator key alice-2026"), "{stdout}");
    let new = Operator { key: new_key, key_id: "alice-2026".into() };
    assert_eq!(new.send(server.addr, "POST", "/admin/invite", "{}").status, 201, "a new key works on the next request");
    let (_, stderr) = Gm::new(&[
        "operator",
        "add",
        "--home",
        h,
        "--key-id",
        "alice-2026",
        "--public-key",
        &new.key.public_key().to_b64(),
    ])
    .expect(2);
    assert!(stderr.contains("already exists"), "{stderr}");

    Gm::new(&["operator", "retire", "--home", h, "--key-id", "operator-local"]).expect(0);
    let r = old.send(server.addr, "POST", "/admin/invite", "{}");
    assert_eq!(
        (r.status, r.text().as_str()),
        (401, "{\"error\":\"Unknown admin key\"}\n"),
        "a retired key fails immediately"
    );
    let (_, stderr) = Gm::new(&["operator", "retire", "--home", h, "--key-id", "alice-2026"]).expect(2);
    assert!(stderr.contains("it is the last operator key"), "{stderr}");
    let (stdout, _) = Gm::new(&["operator", "list", "--home", h, "--json"]).expect(0);
    assert!(stdout.contains("\"alice-2026\"") && !stdout.contains("operator-local"), "{stdout}");

    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut kept).unwrap().status, 200, "connections survive the rotation");
}

#[test]
fn a_broken_keys_file_keeps_the_previous_keys_and_sighup_reloads() {
    let dir = TempDir::new("rotate-broken");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    let good = std::fs::read_to_string(home.join("operators.json")).unwrap();
    std::fs::write(home.join("operators.json"), "{ this is not json").unwrap();
    assert_eq!(op.send(server.addr, "POST", "/admin/invite", "{}").status, 201, "previous keys stay in force");
    assert!(crate::harness::wait_until(Duration::from_secs(5), || server
        .stderr()
        .contains("keeping the previous operator keys")));
    std::fs::write(home.join("operators.json"), &good).unwrap();
    let pid = server_pid(&server);
    let _ = std::process::Command::new("kill").args(["-HUP", &pid]).status();
    assert!(crate::harness::wait_until(Duration::from_secs(5), || server
        .stderr()
        .contains("SIGHUP: reloading operator keys")));
    assert_eq!(op.send(server.addr, "POST", "/admin/invite", "{}").status, 201);
}

#[test]
fn startup_refuses_invalid_operator_keys_json() {
    let dir = TempDir::new("bad-operators");
    let home = sandbox(&dir);
    let (_, stderr) = Gm::new(&["serve", "--home", home.to_str().unwrap(), "--bind", "127.0.0.1:0"])
        .env("OPERATOR_PUBLIC_KEYS_JSON", "{\"op\": \"not-a-key\"}")
        .expect(2);
    assert!(stderr.starts_with("error: invalid operator keys in OPERATOR_PUBLIC_KEYS_JSON: key \"op\""), "{stderr}");
}

fn server_pid(server: &GmServer) -> String {
    server.pid().to_string()
}
