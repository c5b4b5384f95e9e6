//! `gm readiness` and `gm profile` end to end: a sandbox made pilot-ready step by step (private keys
//! moved off the host, profile filled in, backup + verify, drill and export run, runbooks
//! installed) passes every check; the signed report verifies and a tampered one does not; JUnit
//! output; a missing piece fails with the check named; no evidence is a failure; bad flags exit 3.
//! CHECKLIST.md lists exactly the check ids the code evaluates.

use std::path::Path;

use gm::json::parse_str;

use crate::harness::{identity, Gm, GmServer, TempDir};
use crate::s3_server::S3Server;

fn filled_profile(home: &Path) {
    let h = home.to_str().unwrap();
    Gm::new(&["profile", "init", "--home", h]).expect(0);
    let (stdout, _) = Gm::new(&["profile", "check", "--home", h]).expect(1);
    assert!(stdout.contains("missing sovereign.policy_intent"), "{stdout}");
    let text = std::fs::read_to_string(home.join("profile.toml")).unwrap();
    let text = text
        .replace("\"FILL IN: the customer's policy intent, in their words\"", "\"admit acme devices only\"")
        .replace("\"FILL IN: YYYY-MM-DD\"", "\"2026-11-20\"")
        .replace("\"FILL IN: phone / e-mail / pager\"", "\"+1 555 0100\"")
        .replace("out_of_scope_acknowledged = false", "out_of_scope_acknowledged = true")
        .replace("rotation_interval_days = 0", "rotation_interval_days = 365")
        .replace("\"FILL IN: runbook path or URL\"", "\"runbooks/na-key-rotation.md\"")
        .replace("\"FILL IN\"", "\"Jane Doe\"");
    std::fs::write(home.join("profile.toml"), text).unwrap();
    let (stdout, _) = Gm::new(&["profile", "check", "--home", h]).expect(0);
    assert!(stdout.contains("complete"), "{stdout}");
}

/// `(id, status, reason)` of every check, and each check that does not pass has a non-empty fix.
fn checks(json: &str) -> Vec<(String, String, String)> {
    let v = parse_str(json).unwrap();
    v.as_object()
        .unwrap()
        .get("checks")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let c = c.as_object().unwrap();
            let s = |k: &str| c.get(k).unwrap().as_str().unwrap().to_string();
            let fix = c.get("fix").and_then(|f| f.as_str()).unwrap_or_default();
            assert_eq!(
                s("status") != "pass",
                !fix.is_empty(),
                "{}: a fix exactly when it does not pass: {fix:?}",
                s("id")
            );
            (s("id"), s("status"), s("reason"))
        })
        .collect()
}

#[test]
fn a_sovereign_made_ready_passes_and_its_signed_report_verifies() {
    let dir = TempDir::new("readiness");
    let home = dir.join("home");
    let h = home.to_str().unwrap();
    Gm::new(&["quickstart", "--home", h, "--no-serve"]).expect(0);
    // The root and operator private keys and the backup identity leave the host (customer-held).
    let offline = dir.join("customer");
    std::fs::create_dir_all(&offline).unwrap();
    for f in ["root.key", "root.pub", "operator.key", "operator.pub", "backup.key"] {
        std::fs::rename(home.join("offline").join(f), offline.join(f)).unwrap();
    }
    // Verify and drills run where the identity lives (here: by hand, with the customer's
    // identity), so the host schedules neither.
    let toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    let toml: String = toml
        .split("\n[")
        .filter(|t| !t.starts_with("cron.jobs.verify]") && !t.starts_with("cron.jobs.restore-drill]"))
        .collect::<Vec<_>>()
        .join("\n[");
    std::fs::write(home.join("gm.toml"), toml).unwrap();
    // The scheduler runs (the gate reads the running server's own record: a server started with
    // --no-scheduler fails the scheduler check however many runs the ledger holds). Plain HTTP,
    // declared behind a TLS proxy (the tls check; built-in TLS is tested in readiness_tls.rs).
    let server = GmServer::start(&home, &["--trusted-proxy-hops", "1"]);
    let toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    std::fs::write(
        home.join("gm.toml"),
        toml.replace("bind = \"127.0.0.1:8443\"", &format!("bind = \"{}\"", server.addr)),
    )
    .unwrap();
    let url = format!("http://{}", server.addr);
    let report = |extra: &[&str]| {
        let mut args = vec!["readiness", "--home", h, "--na", &url];
        args.extend_from_slice(extra);
        Gm::new(&args).output()
    };

    // Nothing done yet: every missing piece fails, named.
    let out = report(&["--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let found = checks(&String::from_utf8_lossy(&out.stdout));
    let ids: Vec<&str> = found.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(ids, gm::readiness::checks::IDS);
    for (id, status, reason) in &found {
        match id.as_str() {
            "genesis" | "clock" | "durable_storage" | "endpoints" | "tls" | "operator_keys" | "admin_auth"
            | "expiry" => {
                assert_eq!(status, "pass", "{id}: {reason}")
            }
            // The disk depends on the machine; the audit export on the hour: started between 00:05
            // and 01:05 UTC, the scheduler runs the default job's missed 00:05 export at once
            // (missed_grace_seconds 3600), and that export is real.
            "disk" | "audit_export" => {}
            _ => assert_eq!(status, "fail", "{id}: {reason}"),
        }
    }
    // The scheduler may already have started a catch-up backup: the check fails either way.
    assert!(found.iter().any(|c| c.0 == "backup" && c.1 == "fail"), "{found:?}");
    // Served with the scheduler but no run yet: the scheduler check names the jobs (hole 1).
    assert!(found.iter().any(|c| c.0 == "scheduler" && c.2.starts_with("never succeeded: audit-export")), "{found:?}");

    // Make it ready.
    filled_profile(&home);
    let (recipient, key) = identity(&dir);
    let backups = dir.join("backups");
    let (archive, _) = Gm::backup(&home, &recipient, &backups).expect(0);
    Gm::new(&["managed", "verify", archive.trim(), "--identity", key.to_str().unwrap(), "--home", h]).expect(0);
    Gm::drill_latest(&home, &backups, &key, &[]).expect(0);
    // A copy off the host (offsite_backup): uploaded, verified from the bucket, drilled from it.
    let s3 = S3Server::start(&["gm-backups"]);
    let creds = "s3-offsite.env";
    std::fs::write(
        home.join(creds),
        format!("AWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\n", s3.access_key, s3.secret),
    )
    .unwrap();
    std::fs::set_permissions(home.join(creds), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    toml.push_str(&format!(
        "\n[[backup.destinations]]\nname = \"offsite\"\nurl = \"s3://gm-backups/na\"\nendpoint = \"{}\"\n\
         credentials_file = \"{creds}\"\n",
        s3.endpoint
    ));
    std::fs::write(home.join("gm.toml"), toml).unwrap();
    let (json, _) =
        Gm::new(&["managed", "backup", "--home", h, "--recipient", &recipient, "--dir", "s3://gm-backups/na"])
            .arg("--json")
            .expect(0);
    let object = json.split("\"url\":\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_string();
    Gm::new(&["managed", "verify", &object, "--identity", key.to_str().unwrap(), "--home", h]).expect(0);
    Gm::drill_latest(&home, Path::new("s3://gm-backups/na"), &key, &[]).expect(0);
    Gm::new(&["managed", "audit-export", "--home", h, "--output", dir.join("exports/audit.jsonl").to_str().unwrap()])
        .expect(0);
    // Each job succeeds once; the scheduled backup is newer than the verified one and not yet
    // verified, which must not fail the backup check while the verified one is fresh (hole 2).
    for job in ["audit-export", "prune", "probe", "backup"] {
        let (stdout, _) = Gm::new(&["cron", "run-once", job, "--home", h]).expect(0);
        assert!(stdout.starts_with(&format!("{job}: ok")), "{stdout}");
    }
    // A treaty issued with the defaults of `gm treaty issue` passes the expiry check (hole 3).
    let beta = dir.join("beta");
    Gm::new(&["keygen", "network-authority", "--output", beta.to_str().unwrap()]).expect(0);
    Gm::new(&[
        "treaty",
        "issue",
        "--na",
        &url,
        "--home",
        h,
        "--operator-key",
        offline.join("operator.key").to_str().unwrap(),
        "--subject",
        "beta-mesh",
        "--subject-public-key",
        dir.join("beta.pub").to_str().unwrap(),
    ])
    .expect(0);
    let runbooks = home.join("runbooks");
    std::fs::create_dir_all(&runbooks).unwrap();
    for r in gm::readiness::checks::RUNBOOKS {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/runbooks").join(r);
        std::fs::copy(&src, runbooks.join(r)).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    }

    let signed = dir.join("readiness.json");
    let out = report(&[
        "--format",
        "json",
        "--output",
        signed.to_str().unwrap(),
        "--sign",
        "--operator-key",
        offline.join("operator.key").to_str().unwrap(),
        "--operator-key-id",
        "operator-local",
    ]);
    let text = std::fs::read_to_string(&signed).unwrap();
    let found = checks(&text);
    // The disk check depends on the machine: it may only warn. The test S3 server (s3s-fs) has no
    // Object Lock, so offsite_backup can only warn that the copy is not locked.
    for (id, status, reason) in &found {
        let may_warn = id == "disk" || (id == "offsite_backup" && reason.contains("not under Object Lock"));
        assert!(status == "pass" || (may_warn && status == "warn"), "{id} {status}: {reason}");
    }
    let warns = found.iter().any(|c| c.1 == "warn");
    assert_eq!(out.status.code(), Some(if warns { 1 } else { 0 }), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("\"ready\": {}", !warns)), "{text}");
    assert!(text.contains("\"verify_ledger_id\""), "the backup check names its verify record: {text}");
    assert!(found.iter().any(|c| c.0 == "backup" && c.2.ends_with("awaits its verify")), "{found:?}");
    // The treaty issued above with the default validity (168 h) is not near its expiry.
    assert!(found.iter().any(|c| c.0 == "expiry" && c.1 == "pass"), "{found:?}");
    // The signed body binds the genesis and the profile (hole 5).
    let profile_sha = gm::crypto::digest::sha256_hex(&std::fs::read(home.join("profile.toml")).unwrap());
    let genesis_sha = gm::crypto::digest::sha256_hex(&std::fs::read(home.join("genesis.signed.json")).unwrap());
    for needle in [
        format!("\"profile_sha256\": \"{profile_sha}\""),
        format!("\"genesis_sha256\": \"{genesis_sha}\""),
        "\"genesis_payload_sha256\": \"".to_string(),
        "\"responsibility_matrix_sha256\": \"".to_string(),
    ] {
        assert!(text.contains(&needle), "{needle} in {text}");
    }

    // The customer checks the signature; any change breaks it.
    let pubkey = offline.join("operator.pub");
    let (stdout, _) =
        Gm::new(&["readiness", "verify", signed.to_str().unwrap(), "--public-key", pubkey.to_str().unwrap()]).expect(0);
    assert!(stdout.starts_with("valid: readiness report of"), "{stdout}");
    assert!(stdout.contains(&format!("  bound to profile_sha256: {profile_sha}\n")), "{stdout}");
    assert!(stdout.contains(&format!("  bound to genesis_sha256: {genesis_sha}\n")), "{stdout}");
    // A changed binding breaks the signature like any other change.
    let rebound = dir.join("rebound.json");
    std::fs::write(&rebound, text.replace(&profile_sha, &"0".repeat(64))).unwrap();
    Gm::new(&["readiness", "verify", rebound.to_str().unwrap(), "--public-key", pubkey.to_str().unwrap()]).expect(1);
    let tampered = dir.join("tampered.json");
    std::fs::write(
        &tampered,
        text.replacen("\"status\": \"warn\"", "\"status\": \"pass\"", 1).replacen(
            "\"reason\": \"",
            "\"reason\": \"x",
            1,
        ),
    )
    .unwrap();
    let (_, stderr) =
        Gm::new(&["readiness", "verify", tampered.to_str().unwrap(), "--public-key", pubkey.to_str().unwrap()])
            .expect(1);
    assert!(stderr.contains("does not verify"), "{stderr}");

    // Signing later, where the operator key lives, gives the same verifiable report.
    let unsigned = dir.join("unsigned.json");
    report(&["--format", "json", "--output", unsigned.to_str().unwrap()]);
    assert!(!std::fs::read_to_string(&unsigned).unwrap().contains("\"signature\""));
    Gm::new(&[
        "readiness",
        "sign",
        unsigned.to_str().unwrap(),
        "--operator-key",
        offline.join("operator.key").to_str().unwrap(),
        "--operator-key-id",
        "operator-local",
    ])
    .expect(0);
    Gm::new(&["readiness", "verify", unsigned.to_str().unwrap(), "--public-key", pubkey.to_str().unwrap()]).expect(0);
    let (_, stderr) = Gm::new(&[
        "readiness",
        "sign",
        pubkey.to_str().unwrap(),
        "--operator-key",
        offline.join("operator.key").to_str().unwrap(),
        "--operator-key-id",
        "x",
    ])
    .expect(2);
    assert!(stderr.contains("is not JSON") || stderr.contains("not a readiness report"), "{stderr}");

    // JUnit for CI.
    let out = report(&["--format", "junit"]);
    let xml = String::from_utf8_lossy(&out.stdout);
    assert!(
        xml.starts_with("<?xml")
            && xml.contains(&format!(
                "<testsuite name=\"gm-readiness\" tests=\"{}\" failures=\"0\"",
                gm::readiness::checks::IDS.len()
            )),
        "{xml}"
    );

    // A runbook goes missing: that check fails, by name.
    std::fs::remove_file(runbooks.join("bad-treaty.md")).unwrap();
    let out = report(&[]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|l| l.contains("FAIL runbooks") && l.contains("bad-treaty.md")), "{stdout}");
    drop(server);

    // Could not run: exit 3, never 0.
    let out = report(&["--format", "yaml"]);
    assert_eq!(out.status.code(), Some(3));
    let out = report(&["--sign"]);
    assert_eq!(out.status.code(), Some(3));
}

/// A report that cannot be produced exits 3 through the one CLI error: its message and hint are
/// printed once, by the binary (issue 14: readiness no longer prints its own `error:` line).
#[test]
fn a_report_that_cannot_be_produced_exits_3_with_one_error_and_its_hint() {
    let dir = TempDir::new("readiness-cannot-run");
    let h = dir.join("home");
    let (stdout, stderr) = Gm::new(&["readiness", "--home", h.to_str().unwrap(), "--format", "yaml"]).expect(3);
    assert_eq!(stdout, "");
    assert_eq!(stderr, "error: unknown --format \"yaml\"\nhint: use text, json or junit\n");
}

#[test]
fn checklist_md_lists_exactly_the_checks_in_order() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("CHECKLIST.md")).unwrap();
    let ids: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    assert_eq!(ids, gm::readiness::checks::IDS);
}

/// Hole 7: the age identity that decrypts backups sits on the NA host (the quickstart layout keeps
/// it in HOME/offline for the sandbox's verify and drill jobs): the backup check warns and says
/// where verify and drills belong. Hole 4 and 5 on the command line: `gm profile check` names a
/// field of the wrong type with its expected form, `gm profile show` prints the matrix.
#[test]
fn a_backup_identity_on_the_na_host_warns_and_the_profile_is_checked_by_type() {
    let dir = TempDir::new("readiness-identity");
    let home = dir.join("home");
    let h = home.to_str().unwrap();
    Gm::new(&["quickstart", "--home", h, "--no-serve"]).expect(0);
    let server = GmServer::start(&home, &["--no-scheduler"]);
    for job in ["backup", "verify"] {
        Gm::new(&["cron", "run-once", job, "--home", h]).expect(0);
    }
    drop(server);
    let out = Gm::new(&["readiness", "--home", h, "--na", "http://127.0.0.1:9", "--format", "json"]).output();
    assert_eq!(out.status.code(), Some(2));
    let json = String::from_utf8_lossy(&out.stdout).to_string();
    let found = checks(&json);
    let backup = found.iter().find(|c| c.0 == "backup").unwrap();
    assert_eq!(backup.1, "warn", "{backup:?}");
    let identity = home.join("offline/backup.key");
    assert!(
        backup.2.ends_with(&format!("a backup decryption key is on the NA host: {}", identity.display())),
        "{backup:?}"
    );
    assert!(json.contains("run gm managed verify and gm managed restore-drill where it lives"), "{json}");
    // Text shows the fix under the check.
    let out = Gm::new(&["readiness", "--home", h, "--na", "http://127.0.0.1:9"]).output();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("WARN backup") && text.contains(" fix: move the backup identity off the NA host"), "{text}");
    // JUnit carries the fix of a failure.
    let out = Gm::new(&["readiness", "--home", h, "--na", "http://127.0.0.1:9", "--format", "junit"]).output();
    let xml = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(xml.contains("fix: gm probe --na URL"), "{xml}");

    Gm::new(&["profile", "init", "--home", h, "--sovereign", "x"]).expect(0);
    let (stdout, _) = Gm::new(&["profile", "check", "--home", h]).expect(1);
    assert!(
        stdout.contains("\n  invalid sovereign.name: expected a network name of 3 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (the genesis network name), found \"x\""),
        "{stdout}"
    );
    assert!(stdout.contains("\n  missing custody.rotation_interval_days: not filled in"), "{stdout}");
    assert!(stdout.contains("\n  missing custody.rotation_runbook: not filled in"), "{stdout}");
    assert!(stdout.contains("responsibility matrix:\n  area "), "{stdout}");
    assert!(stdout.contains("\n  incident_response "), "{stdout}");
    let (stdout, _) = Gm::new(&["profile", "show", "--home", h, "--json"]).expect(0);
    let v = parse_str(&stdout).unwrap();
    let matrix = v.as_object().unwrap().get("responsibility").unwrap().as_array().unwrap();
    assert_eq!(matrix.len(), 9, "{stdout}");
    assert_eq!(matrix[0].as_object().unwrap().get("area").unwrap().as_str(), Some("hosting"));
}

/// The review's case: the profile says customer-held, and the configured key path is empty, but
/// `gm serve` was handed the key through NA_PRIVATE_KEY_FILE. The gate used to say READY; it now
/// reads how the running server signs and says NOT READY, naming the key it loaded.
#[test]
fn the_gate_is_not_fooled_by_a_key_given_through_the_environment() {
    let dir = TempDir::new("readiness-fooled");
    let home = crate::harness::sandbox(&dir);
    let h = home.to_str().unwrap();
    filled_profile(&home);
    let profile = std::fs::read_to_string(home.join("profile.toml")).unwrap();
    let profile = profile.replace("model = \"split\"", "model = \"customer-held\"");
    assert!(profile.contains("model = \"customer-held\""), "{profile}");
    std::fs::write(home.join("profile.toml"), profile).unwrap();
    let customer = dir.join("customer");
    std::fs::create_dir_all(&customer).unwrap();
    let key = customer.join("na.key");
    std::fs::rename(home.join("keys/na.key"), &key).unwrap();
    let server = GmServer::start_with(&home, &[], &[("NA_PRIVATE_KEY_FILE", key.to_str().unwrap())]);
    let url = format!("http://{}", server.addr);
    let custody = |home: &str| {
        let out = Gm::new(&["readiness", "--home", home, "--na", &url, "--format", "json"]).output();
        assert_ne!(out.status.code(), Some(0), "not ready");
        let found = checks(&String::from_utf8_lossy(&out.stdout));
        found.into_iter().find(|c| c.0 == "custody").unwrap()
    };
    let (_, status, reason) = custody(h);
    assert_eq!(status, "fail", "{reason}");
    assert!(
        reason.contains("customer-held custody, but the running NA")
            && reason.contains(key.to_str().unwrap())
            && reason.contains("NA_PRIVATE_KEY_FILE"),
        "{reason}"
    );
    // Rewriting the record by hand does not help: the NA answering on the port says how it signs.
    let record = std::fs::read_to_string(home.join("gm-runtime.json")).unwrap();
    let forged = record.replace("\"source\": \"file\"", "\"source\": \"remote-signer\"");
    assert_ne!(forged, record);
    std::fs::write(home.join("gm-runtime.json"), forged).unwrap();
    let (_, status, reason) = custody(h);
    assert_eq!(status, "fail", "{reason}");
    assert!(reason.contains("signs from file") && reason.contains("says remote-signer"), "{reason}");
    drop(server);
}

/// Customer-held custody done right passes the custody check (the running NA holds no key and a
/// live signer signs for it); a copy of the NA key left anywhere under the home, whatever its
/// name, fails it, named.
#[test]
fn customer_held_custody_passes_with_a_live_signer_and_fails_on_a_stray_key_copy() {
    let dir = TempDir::new("readiness-remote");
    let (home, key) = crate::custody::customer_held_home(&dir);
    let h = home.to_str().unwrap();
    filled_profile(&home);
    let profile = std::fs::read_to_string(home.join("profile.toml")).unwrap();
    std::fs::write(home.join("profile.toml"), profile.replace("model = \"split\"", "model = \"customer-held\""))
        .unwrap();
    let server = GmServer::start(&home, &[]);
    let signer = crate::custody::Signer::start(&dir, &home, &key);
    assert!(
        crate::harness::wait_until(std::time::Duration::from_secs(15), || server.get("/readyz").status == 200),
        "{}",
        signer.stderr()
    );
    let url = format!("http://{}", server.addr);
    let custody = || {
        let out = Gm::new(&["readiness", "--home", h, "--na", &url, "--format", "json"]).output();
        checks(&String::from_utf8_lossy(&out.stdout)).into_iter().find(|c| c.0 == "custody").unwrap()
    };
    let (_, status, reason) = custody();
    assert_eq!(status, "pass", "{reason}");
    assert!(reason.contains("holds no NA key and signs through the customer's signer"), "{reason}");
    std::fs::create_dir_all(home.join("old")).unwrap();
    std::fs::copy(&key, home.join("old/notes.txt")).unwrap();
    let (_, status, reason) = custody();
    assert_eq!(status, "fail", "{reason}");
    assert!(reason.contains("old/notes.txt"), "{reason}");
}

/// The backup identity belongs offline, so verifies (and drills) run on the customer's machine and
/// record in that machine's ops ledger. A copy of it given with `--evidence-ledger` makes those
/// records count: the backup check that said "not verified" passes, names the ledger, and the
/// signed report binds the ledger's digest. The NA host's own backups and jobs are never taken
/// from it.
#[test]
fn verifies_recorded_where_the_identity_lives_count_through_an_evidence_ledger() {
    let dir = TempDir::new("readiness-evidence");
    let home = crate::harness::sandbox(&dir);
    let h = home.to_str().unwrap();
    let server = GmServer::start(&home, &["--no-scheduler"]);
    let (recipient, identity) = identity(&dir);
    let backups = dir.join("backups");
    let (archive, _) = Gm::backup(&home, &recipient, &backups).expect(0);
    // The customer's machine: its own (empty) gm home, the identity, a copy of the backup and the
    // pinned backup-signing public key.
    let customer = dir.join("customer-home");
    std::fs::create_dir_all(&customer).unwrap();
    let copy = customer.join(std::path::Path::new(archive.trim()).file_name().unwrap());
    std::fs::copy(archive.trim(), &copy).unwrap();
    std::fs::copy(format!("{}.sig", archive.trim()), format!("{}.sig", copy.display())).unwrap();
    // A gm.toml that pins the backup-signing key is all the verify host's home needs; runs are
    // recorded in gm-ops.db beside it.
    std::fs::copy(home.join("keys/backup-signing.pub"), customer.join("backup-signing.pub")).unwrap();
    std::fs::write(customer.join("gm.toml"), "[backup]\nsigning_public_key = \"backup-signing.pub\"\n").unwrap();
    Gm::new(&[
        "managed",
        "verify",
        copy.to_str().unwrap(),
        "--identity",
        identity.to_str().unwrap(),
        "--home",
        customer.to_str().unwrap(),
    ])
    .expect(0);
    let their_ledger = customer.join("gm-ops.db");
    assert!(their_ledger.is_file(), "the verify recorded where it ran");
    let shipped = dir.join("customer-ops.db");
    std::fs::copy(&their_ledger, &shipped).unwrap();
    let url = format!("http://{}", server.addr);
    let backup_check = |extra: &[&str]| {
        let mut args = vec!["readiness", "--home", h, "--na", &url, "--format", "json"];
        args.extend_from_slice(extra);
        let out = Gm::new(&args).output();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        (checks(&stdout).into_iter().find(|c| c.0 == "backup").unwrap(), stdout)
    };
    let ((_, status, reason), _) = backup_check(&[]);
    assert_eq!((status.as_str(), reason.contains("has not been verified")), ("fail", true), "{reason}");
    let ((_, status, reason), stdout) = backup_check(&["--evidence-ledger", shipped.to_str().unwrap()]);
    assert_ne!(status, "fail", "{reason}");
    assert!(stdout.contains(&format!("\"verify_ledger\": \"{}\"", shipped.display())), "{stdout}");
    assert!(stdout.contains("\"evidence_ledger_1_sha256\""), "{stdout}");
    // A ledger that is not there is a failure that says so, not a silent pass.
    let ((_, status, reason), _) = backup_check(&["--evidence-ledger", dir.join("nope.db").to_str().unwrap()]);
    assert_eq!(status, "fail", "{reason}");
    assert!(reason.contains("nope.db"), "{reason}");
}
