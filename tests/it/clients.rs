//! The admin and node clients in the same binary against the real `gm serve`: `gm admin` with both
//! signature versions, `gm join` (enroll + one heartbeat), and refusals surfaced with exit 1.

use gm::json::{parse_str, Value};

use crate::harness::{sandbox, Gm, GmServer, TempDir};

fn json_field(stdout: &str, name: &str) -> String {
    let v = parse_str(stdout.trim()).unwrap();
    match v.as_object().unwrap().get(name).unwrap() {
        Value::Str(s) => s.clone(),
        other => gm::crypto::canonical::canonical_string(other),
    }
}

#[test]
fn admin_invite_then_join_then_revoke_through_the_cli() {
    let dir = TempDir::new("clients");
    let home = sandbox(&dir);
    let h = home.to_str().unwrap();
    // v1 only where legacy acceptance is switched on; gm's clients sign v2 unless told --sig v1.
    let server = GmServer::start_with(&home, &[], &[("NA_ADMIN_LEGACY_SIGNATURES", "accept")]);
    let na = format!("http://{}", server.addr);
    for sig in ["v1", "v2"] {
        let (stdout, stderr) =
            Gm::new(&["admin", "invite", "--na", &na, "--home", h, "--role", "anchor", "--sig", sig, "--json"])
                .expect(0);
        assert_eq!(stderr.contains("warning: --sig v1"), sig == "v1", "{stderr}");
        let token = json_field(&stdout, "token_id");
        assert_eq!(token.len(), 36, "{stdout}");
        assert!(!stderr.contains(&token), "the token is printed on stdout only");
        let node_home = dir.join(&format!("node-{sig}"));
        let (stdout, _) =
            Gm::new(&["join", "--na", &na, "--token", &token, "--home", node_home.to_str().unwrap(), "--json"])
                .expect(0);
        assert!(stdout.contains("role:anchor"), "{stdout}");
        assert!(node_home.join("node.cert.json").exists() && node_home.join("node.key").exists());
        let cert_id = json_field(&stdout, "cert_id");
        let (stdout, _) = Gm::new(&[
            "admin",
            "revoke",
            "--na",
            &na,
            "--home",
            h,
            "--cert-id",
            &cert_id,
            "--reason",
            "superseded",
            "--sig",
            sig,
        ])
        .expect(0);
        assert!(stdout.contains("crl") || stdout.contains("CRL"), "{stdout}");
        // A used token is refused by the NA: exit 1 with upstream's message.
        let other = dir.join(&format!("other-{sig}"));
        let (_, stderr) =
            Gm::new(&["join", "--na", &na, "--token", &token, "--home", other.to_str().unwrap()]).expect(1);
        assert!(stderr.contains("Invalid, expired, or used invite token"), "{stderr}");
    }
    let metrics = server.get("/metrics").text();
    assert!(metrics.contains("\ngenesis_mesh_na_revoked_certs_total 2\n"), "{metrics}");
}

#[test]
fn admin_policy_set_history_rollback_through_the_cli() {
    let dir = TempDir::new("clients-policy");
    let home = sandbox(&dir);
    let h = home.to_str().unwrap();
    let server = GmServer::start(&home, &[]);
    let na = format!("http://{}", server.addr);
    assert_eq!(server.get("/policy").status, 200);
    Gm::new(&[
        "admin",
        "policy",
        "set",
        "--na",
        &na,
        "--home",
        h,
        "--policy-id",
        "p-cli",
        "--min-client-version",
        "0.16.0",
        "--allowed-port",
        "443",
    ])
    .expect(0);
    let (stdout, _) = Gm::new(&["admin", "policy", "history", "--na", &na, "--home", h, "--json"]).expect(0);
    assert!(stdout.contains("p-cli") && stdout.contains("policy-sandbox-mesh-v0.1"), "{stdout}");
    Gm::new(&["admin", "policy", "rollback", "--na", &na, "--home", h, "--policy-id", "policy-sandbox-mesh-v0.1"])
        .expect(0);
    assert!(server.get("/policy").text().contains("\"policy_id\":\"policy-sandbox-mesh-v0.1\""));
    let (_, stderr) =
        Gm::new(&["admin", "policy", "rollback", "--na", &na, "--home", h, "--policy-id", "nope"]).expect(1);
    assert!(stderr.contains("404") && stderr.contains("Unknown policy"), "{stderr}");
}

#[test]
fn admin_client_reports_an_unreachable_na_with_exit_2() {
    let dir = TempDir::new("clients-down");
    let home = sandbox(&dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (_, stderr) =
        Gm::new(&["admin", "invite", "--na", &format!("http://127.0.0.1:{port}"), "--home", home.to_str().unwrap()])
            .expect(2);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("hint: "), "{stderr}");
}
