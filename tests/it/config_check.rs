//! `gm config check` against real homes: a fresh quickstart sandbox (with its default jobs) is
//! clean; a readable NA key, a typo in gm.toml, a job whose folder's parent is missing and an
//! empty operators file are each an error with a fix (exit 1); a home that does not exist cannot be
//! checked (exit 2). The command never changes a file.

use std::os::unix::fs::PermissionsExt;

use crate::harness::{Gm, TempDir};

fn check(home: &std::path::Path) -> Gm {
    Gm::new(&["config", "check", "--home", home.to_str().unwrap()])
}

fn quickstart(dir: &TempDir) -> std::path::PathBuf {
    let home = dir.join("home");
    Gm::new(&["quickstart", "--home", home.to_str().unwrap(), "--no-serve"]).expect(0);
    home
}

#[test]
fn a_fresh_sandbox_checks_clean_with_every_default_job_listed() {
    let dir = TempDir::new("config-check-clean");
    let home = quickstart(&dir);
    let (stdout, _) = check(&home).arg("--json").expect(0);
    assert!(stdout.contains("\"errors\":0"), "{stdout}");
    for job in ["backup", "verify", "restore-drill", "audit-export", "prune", "probe"] {
        assert!(stdout.contains(&format!("\"subject\":\"job {job}\"")), "{job}: {stdout}");
    }
    // The profile is the one thing quickstart leaves to the customer: a warning, not an error.
    assert!(stdout.contains("\"level\":\"warning\",\"message\":\"absent"), "{stdout}");
}

#[test]
fn each_problem_is_an_error_with_a_fix_and_nothing_is_changed() {
    let dir = TempDir::new("config-check-problems");
    let home = quickstart(&dir);
    let key = home.join("keys/na.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(home.join("operators.json"), "{}\n").unwrap();
    let toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    let with_bad_job =
        toml.replace("report_file = \"drills/latest.json\"", "report_file = \"nowhere/deep/latest.json\"");
    std::fs::write(home.join("gm.toml"), &with_bad_job).unwrap();
    let (stdout, _) = check(&home).expect(1);
    assert!(stdout.contains("keys/na.key: the NA private key is mode 0644"), "{stdout}");
    assert!(stdout.contains(&format!("fix: chmod 600 {}", key.display())), "{stdout}");
    assert!(stdout.contains("operators.json: holds no operator key"), "{stdout}");
    assert!(stdout.contains("job restore-drill: writes to"), "{stdout}");
    assert!(stdout.contains("3 error(s)"), "{stdout}");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o644, "nothing is fixed for you");
    // A typo in gm.toml is named with its line; nothing after it is guessed at.
    std::fs::write(home.join("gm.toml"), with_bad_job.replace("[server]", "[server]\nbnd = \"x\"")).unwrap();
    let (stdout, _) = check(&home).expect(1);
    assert!(stdout.contains("error   gm.toml:") && stdout.contains("bnd"), "{stdout}");
}

#[test]
fn a_home_that_does_not_exist_cannot_be_checked() {
    let dir = TempDir::new("config-check-nohome");
    let (_, stderr) = check(&dir.join("missing")).expect(2);
    assert!(stderr.contains("does not exist") && stderr.contains("hint:"), "{stderr}");
}

/// Customer-held custody: no NA key is expected (the signer listener is checked instead), and an NA
/// key left on such a host is an error.
#[test]
fn a_customer_held_home_needs_no_na_key_and_refuses_one_left_behind() {
    let dir = TempDir::new("check-customer-held");
    let home = quickstart(&dir);
    let key = std::fs::read(home.join("keys/na.key")).unwrap();
    std::fs::remove_file(home.join("keys/na.key")).unwrap();
    let mut toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    toml.push_str("\n[signer]\nlisten = \"127.0.0.1:18444\"\n");
    std::fs::write(home.join("gm.toml"), toml).unwrap();
    let (stdout, _) = check(&home).expect(0);
    assert!(
        stdout.contains("customer-held custody: no NA key loaded; the customer's gm signer run dials 127.0.0.1:18444"),
        "{stdout}"
    );
    std::fs::write(home.join("keys/na.key"), key).unwrap();
    let (stdout, _) = check(&home).expect(1);
    assert!(stdout.contains("an NA private key sits on a host configured for customer-held custody"), "{stdout}");
}
