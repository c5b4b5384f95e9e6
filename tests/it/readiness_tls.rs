//! The readiness `tls` check end to end (issue 18), against a real `gm serve` with certificates made
//! by rcgen (`tls_serve.rs`'s test CA): built-in HTTPS passes with the names and days left, proved
//! by the handshake with `--na https://…`; a leaf with 10 days left fails with the renewal fix; a
//! chain file holding only the leaf fails "chain complete" when no handshake proves it (and passes
//! with `--ca-file` naming its CA); plain HTTP fails without a declared proxy and passes with one.

use std::path::Path;

use gm::json::{parse_str, Value};

use crate::harness::{sandbox, GmServer, TempDir};
use crate::tls_serve::{pem, serve_tls, TestCa};

/// The `tls` check of `gm readiness --home HOME ARGS --json`: `(status, reason, fix, evidence)`.
fn tls_check(home: &Path, args: &[&str]) -> (String, String, String, Value) {
    let mut all = vec!["readiness", "--home", home.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let out = crate::harness::Gm::new(&all).output();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(2), "other checks fail in a sandbox: {stdout}");
    let report = parse_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let checks = report.as_object().unwrap().get("checks").unwrap().as_array().unwrap();
    let check = checks
        .iter()
        .map(|c| c.as_object().unwrap())
        .find(|c| c.get("id").and_then(Value::as_str) == Some("tls"))
        .unwrap_or_else(|| panic!("no tls check: {stdout}"));
    let text = |k: &str| check.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    (text("status"), text("reason"), text("fix"), check.get("evidence").unwrap().clone())
}

fn evidence(e: &Value, key: &str) -> String {
    e.as_object().unwrap().get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

#[test]
fn built_in_https_passes_with_days_left_and_a_short_or_leaf_only_certificate_fails() {
    let dir = TempDir::new("readiness-tls");
    let home = sandbox(&dir);
    let ca = TestCa::new(dir.path());
    let ca_file = ca.pem_path.to_str().unwrap();

    // (a) The chain (leaf + CA) for 90 days, proved by the handshake with the running server.
    let (chain, key, leaf) = ca.leaf(dir.path(), "na-90", 90);
    let server = serve_tls(&home, &chain, &key);
    let na = format!("https://localhost:{}", server.addr.port());
    let (status, reason, fix, ev) = tls_check(&home, &["--na", &na, "--ca-file", ca_file]);
    assert_eq!(status, "pass", "{reason}");
    assert!(fix.is_empty(), "{fix}");
    assert!(reason.starts_with("serves HTTPS (as the running gm serve (pid "), "{reason}");
    assert!(reason.contains(": localhost, 127.0.0.1, 8") && reason.contains(" days left; chain complete"), "{reason}");
    let days: f64 = evidence(&ev, "days_left").parse().unwrap();
    assert!((88.0..90.0).contains(&days), "{days}");
    assert!(evidence(&ev, "chain_check").starts_with(&format!("verified by the TLS handshake with {na}")), "{ev:?}");
    assert_eq!(evidence(&ev, "cert_file"), chain.to_str().unwrap());
    assert_eq!(evidence(&ev, "subject"), "na-90");
    // Without an https --na, the file's linkage is the proof: leaf, then the self-signed CA.
    let (status, reason, _, ev) = tls_check(&home, &[]);
    assert_eq!(status, "pass", "{reason}");
    assert!(evidence(&ev, "chain_check").contains("up to the self-issued gm test CA"), "{ev:?}");
    drop(server);

    // (c) Only the leaf in the file: its issuer is neither in the file nor a CA of the host.
    let leaf_only = dir.join("leaf-only.pem");
    std::fs::write(&leaf_only, pem("CERTIFICATE", &leaf)).unwrap();
    let server = serve_tls(&home, &leaf_only, &key);
    let (status, reason, fix, ev) = tls_check(&home, &[]);
    assert_eq!(status, "fail", "{reason}");
    assert!(
        reason.contains("the chain is incomplete: it ends at na-90 whose issuer (gm test CA) is neither in the file nor a CA of the host's CA bundle"),
        "{reason}"
    );
    assert!(fix.contains("the leaf first, then each intermediate (certbot's fullchain.pem"), "{fix}");
    assert_eq!(evidence(&ev, "chain_complete"), "false");
    // The same file ends at a CA of the --ca-file bundle: complete for that trust.
    let (status, reason, _, _) = tls_check(&home, &["--ca-file", ca_file]);
    assert_eq!(status, "pass", "{reason}");
    assert!(reason.contains("issued by gm test CA of the --ca-file bundle"), "{reason}");
    drop(server);

    // (b) A leaf with 10 days left: gm serve serves it, readiness fails it and says to renew.
    let (short, short_key, _) = ca.leaf(dir.path(), "na-10", 10);
    let server = serve_tls(&home, &short, &short_key);
    let na = format!("https://localhost:{}", server.addr.port());
    let (status, reason, fix, ev) = tls_check(&home, &["--na", &na, "--ca-file", ca_file]);
    assert_eq!(status, "fail", "{reason}");
    assert!(
        reason.contains("the certificate expires in 9.") && reason.contains("under the 14-day minimum"),
        "{reason}"
    );
    assert!(fix.starts_with("renew the certificate into [tls] cert_file (certbot renew"), "{fix}");
    assert!(fix.contains("reloads it when the file changes or on SIGHUP"), "{fix}");
    assert!(evidence(&ev, "days_left").starts_with("9."), "{ev:?}");
}

#[test]
fn plain_http_fails_without_a_declared_proxy_and_passes_with_one() {
    let dir = TempDir::new("readiness-tls-plain");
    let home = sandbox(&dir);

    // (d) No proxy hops: the fix names both ways to HTTPS.
    let server = GmServer::start(&home, &[]);
    let na = format!("http://{}", server.addr);
    let (status, reason, fix, _) = tls_check(&home, &["--na", &na]);
    assert_eq!(status, "fail", "{reason}");
    assert!(reason.contains("plain HTTP") && reason.contains("trusted proxy hops 0"), "{reason}");
    assert!(fix.contains("[tls] cert_file and key_file") && fix.contains("trusted_proxy_hops = 1"), "{fix}");
    drop(server);

    let server = GmServer::start(&home, &["--trusted-proxy-hops", "1"]);
    let na = format!("http://{}", server.addr);
    let (status, reason, _, ev) = tls_check(&home, &["--na", &na]);
    assert_eq!(status, "pass", "{reason}");
    assert!(reason.contains("behind 1 trusted proxy hop(s)") && reason.contains("TLS is the proxy's job"), "{reason}");
    assert_eq!(evidence(&ev, "proxy_hops"), "1");
    drop(server);
}
