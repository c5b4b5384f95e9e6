//! `gm managed prune` end to end with the real binary: a folder of real encrypted backups (taken with
//! `gm managed backup --output` under crafted names) and backup-named placeholders for the planning
//! scenario, protection from real `verify` and `restore-drill` runs in the ops ledger, a dry run that
//! changes nothing, a run that deletes exactly what the rules drop and leaves every other entry
//! alone, the ledger entry, and the refusal to run without a keep rule.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::harness::{identity, sandbox, Gm, GmServer, TempDir};

const NET: &str = "sandbox-mesh";

fn name(stamp: &str) -> String {
    format!("gm-{NET}-{stamp}.tar.gz.age")
}

/// A real encrypted backup written straight to `folder/<crafted name>`.
fn real_backup(home: &Path, recipient: &str, folder: &Path, stamp: &str) -> PathBuf {
    let out = folder.join(name(stamp));
    let (h, o) = (home.to_str().unwrap(), out.to_str().unwrap());
    Gm::new(&["managed", "backup", "--home", h, "--recipient", recipient, "--output", o]).expect(0);
    out
}

fn entries(folder: &Path) -> BTreeSet<String> {
    std::fs::read_dir(folder).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect()
}

fn prune(home: &Path, folder: &Path, extra: &[&str]) -> Gm {
    let mut args = vec!["managed", "prune", "--home", home.to_str().unwrap(), "--dir", folder.to_str().unwrap()];
    args.extend_from_slice(extra);
    Gm::new(&args)
}

#[test]
fn prune_keeps_the_rules_union_and_the_newest_verified_and_drilled_backups() {
    let dir = TempDir::new("prune");
    let home = sandbox(&dir);
    let h = home.to_str().unwrap();
    let (recipient, key) = identity(&dir);
    drop(GmServer::start(&home, &[])); // schema
    let folder = dir.join("backups");
    std::fs::create_dir_all(&folder).unwrap();
    // Two real backups that the rules alone would delete: one verified, one drilled.
    real_backup(&home, &recipient, &folder, "20261101T120000Z");
    let drilled = real_backup(&home, &recipient, &folder, "20261110T120000Z");
    for stamp in [
        "20261125T120000Z",
        "20261125T060000Z",
        "20261124T120000Z",
        "20261120T120000Z",
        "20261118T120000Z",
        "20261105T120000Z",
    ] {
        std::fs::write(folder.join(name(stamp)), b"placeholder").unwrap();
    }
    // Entries prune must leave alone: another file, a temp file, a stale scratch folder, and a
    // symlink named like the newest backup.
    std::fs::write(folder.join("notes.txt"), b"keep me").unwrap();
    std::fs::write(folder.join(format!("{}.tmp", name("20261126T000000Z"))), b"partial").unwrap();
    std::fs::create_dir(folder.join(".gm-backup-stale")).unwrap();
    std::fs::write(folder.join(".gm-backup-stale/na.db"), b"scratch").unwrap();
    std::os::unix::fs::symlink(folder.join("notes.txt"), folder.join(name("20261127T000000Z"))).unwrap();
    // Verified with a path relative to the working folder (the ledger records it as given); a
    // failed verification of a newer placeholder protects nothing.
    let k = key.to_str().unwrap();
    let relative = format!("backups/{}", name("20261101T120000Z"));
    Gm::new(&["managed", "verify", &relative, "--identity", k, "--home", h]).cwd(dir.path()).expect(0);
    let failing = folder.join(name("20261118T120000Z"));
    Gm::new(&["managed", "verify", failing.to_str().unwrap(), "--identity", k, "--home", h]).expect(1);
    let d = drilled.to_str().unwrap();
    Gm::new(&["managed", "restore-drill", "--home", h, "--backup", d, "--identity", k]).expect(0);

    let before = entries(&folder);
    let rules = ["--keep-last", "2", "--keep-daily", "3"];
    let (stdout, stderr) = prune(&home, &folder, &[&rules[..], &["--dry-run"]].concat()).expect(0);
    assert_eq!(entries(&folder), before, "a dry run deletes nothing");
    assert_eq!(stderr, "");
    let expected_plan = [
        ("keep", name("20261125T120000Z"), "last 1, daily 2026-11-25"),
        ("keep", name("20261125T060000Z"), "last 2"),
        ("keep", name("20261124T120000Z"), "daily 2026-11-24"),
        ("keep", name("20261120T120000Z"), "daily 2026-11-20"),
        ("delete", name("20261118T120000Z"), "no rule keeps it"),
        ("keep", name("20261110T120000Z"), "newest drilled"),
        ("delete", name("20261105T120000Z"), "no rule keeps it"),
        ("keep", name("20261101T120000Z"), "newest verified"),
    ];
    for (action, file, why) in &expected_plan {
        let row = stdout.lines().find(|l| l.contains(file.as_str())).unwrap_or_else(|| panic!("{file}: {stdout}"));
        let words: Vec<&str> = row.split_whitespace().collect();
        assert_eq!((words[0], words[1], words[2..].join(" ")), (*action, file.as_str(), why.to_string()), "{stdout}");
    }
    assert!(stdout.starts_with(&format!(
        "dry run in {}: would keep 6, would delete 2, left alone 4; nothing deleted\n  rules: keep-last 2, keep-daily 3, keep-weekly 0\n",
        folder.display()
    )));
    let (json, _) = prune(&home, &folder, &[&rules[..], &["--dry-run", "--json"]].concat()).expect(0);
    assert!(json.contains("\"dry_run\":true") && json.contains("\"to_delete\":2") && json.contains("\"deleted\":0"));
    assert!(json.contains(&format!("{{\"name\":\"{}\",\"reason\":\"symlink\"}}", name("20261127T000000Z"))), "{json}");
    assert_eq!(entries(&folder), before);

    let (json, _) = prune(&home, &folder, &[&rules[..], &["--json"]].concat()).expect(0);
    assert!(json.contains("\"dry_run\":false") && json.contains("\"deleted\":2") && json.contains("\"failed\":0"));
    let mut remaining = before.clone();
    remaining.remove(&name("20261118T120000Z"));
    remaining.remove(&name("20261105T120000Z"));
    assert_eq!(entries(&folder), remaining, "exactly the two dropped backups are gone");
    assert_eq!(std::fs::read(folder.join("notes.txt")).unwrap(), b"keep me");
    assert!(folder.join(".gm-backup-stale/na.db").exists());
    assert!(std::fs::symlink_metadata(folder.join(name("20261127T000000Z"))).unwrap().file_type().is_symlink());

    // Only the real run is in the ledger; a second run finds nothing more to delete.
    let (history, _) = Gm::new(&["managed", "history", "--home", h, "--kind", "prune", "--json"]).expect(0);
    assert_eq!(history.matches("\"kind\":\"prune\"").count(), 1, "{history}");
    let message = format!("pruned {}: kept 6, deleted 2, failed 0, left alone 4", folder.display());
    assert!(history.contains(&format!("\"message\":\"{message}\"")), "{history}");
    assert!(history.contains("\"outcome\":\"ok\""), "{history}");
    let (stdout, _) = prune(&home, &folder, &rules).expect(0);
    assert!(stdout.starts_with(&format!("pruned {}: kept 6, deleted 0, failed 0", folder.display())), "{stdout}");
    assert_eq!(entries(&folder), remaining);
}

#[test]
fn prune_refuses_to_run_without_a_keep_rule_and_touches_nothing() {
    let dir = TempDir::new("prune-norule");
    let home = sandbox(&dir);
    let folder = dir.join("backups");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join(name("20261125T120000Z")), b"placeholder").unwrap();
    let expected = "error: no keep rule: prune would delete every backup the ops ledger does not protect\n\
                    hint: give at least one of --keep-last N, --keep-daily D or --keep-weekly W above 0, e.g. --keep-daily 14 --keep-weekly 8\n";
    for extra in [&[][..], &["--keep-last", "0"][..], &["--keep-daily", "0", "--keep-weekly", "0", "--dry-run"][..]] {
        let (stdout, stderr) = prune(&home, &folder, extra).expect(2);
        assert_eq!((stdout.as_str(), stderr.as_str()), ("", expected), "{extra:?}");
    }
    assert!(folder.join(name("20261125T120000Z")).exists());
    assert!(!home.join("gm-ops.db").exists(), "a refused prune writes no ledger");
}

#[test]
fn dry_run_without_a_ledger_warns_and_creates_none() {
    let dir = TempDir::new("prune-noledger");
    let home = sandbox(&dir);
    let folder = dir.join("backups");
    std::fs::create_dir_all(&folder).unwrap();
    for stamp in ["20261125T120000Z", "20261124T120000Z"] {
        std::fs::write(folder.join(name(stamp)), b"placeholder").unwrap();
    }
    let (stdout, stderr) = prune(&home, &folder, &["--keep-last", "1", "--dry-run"]).expect(0);
    assert!(stdout.contains("would keep 1, would delete 1"), "{stdout}");
    assert!(stderr.starts_with("warning: no backup in "), "{stderr}");
    assert!(!home.join("gm-ops.db").exists(), "a dry run writes nothing, not even an empty ledger");
    assert_eq!(entries(&folder).len(), 2);
}
