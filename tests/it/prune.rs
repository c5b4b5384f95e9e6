//! `gm managed prune` end to end with the real binary: a folder of real encrypted, signed backups
//! and backup-named placeholders signed with the sandbox's backup-signing key for the planning
//! scenario, planted far-future files that must be left alone (F13), protection from real `verify` and `restore-drill` runs in the ops ledger, a dry run that
//! changes nothing, a run that deletes exactly what the rules drop and leaves every other entry
//! alone, the ledger entry, and the refusal to run without a keep rule.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gm::ops::backup_signature::{sidecar_path, BackupSignature, BackupSigner};

use crate::harness::{home_with_schema, identity, sandbox, Gm, TempDir};

const NET: &str = "sandbox-mesh";

fn name(stamp: &str) -> String {
    format!("gm-{NET}-{stamp}.tar.gz.age")
}

fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// A backup-named placeholder at `folder/<name(stamp)>`, signed with the sandbox's backup-signing
/// key (so prune, which never decrypts, trusts its signed time) but not a real archive.
pub fn signed_placeholder(home: &Path, folder: &Path, stamp: &str) -> PathBuf {
    let path = folder.join(name(stamp));
    std::fs::write(&path, format!("placeholder {stamp}")).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let at = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").unwrap().and_utc();
    let facts = BackupSignature {
        archive: name(stamp),
        archive_sha256: gm::crypto::digest::sha256_hex(&bytes),
        archive_size: bytes.len() as u64,
        created_at: gm::model::timestamp::isoformat_utc(at),
        network_name: NET.to_string(),
        manifest_sha256: "0".repeat(64),
        key_id: String::new(),
        public_key: String::new(),
        signature: String::new(),
    };
    let key = gm::crypto::keys::load_signing_key(&home.join("keys/backup-signing.key")).unwrap();
    let signer = BackupSigner { key, key_id: "backup-signing".into() };
    std::fs::write(sidecar_path(&path), BackupSignature::sign(facts, &signer).to_text()).unwrap();
    path
}

/// A real encrypted, signed backup in `folder`, named (by gm) after the moment it was taken.
fn real_backup(home: &Path, recipient: &str, folder: &Path) -> PathBuf {
    let (h, o) = (home.to_str().unwrap(), folder.to_str().unwrap());
    let (stdout, _) = Gm::new(&["managed", "backup", "--home", h, "--recipient", recipient, "--dir", o]).expect(0);
    PathBuf::from(stdout.trim())
}

fn entries(folder: &Path) -> BTreeSet<String> {
    std::fs::read_dir(folder).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect()
}

fn prune(home: &Path, folder: &Path, extra: &[&str]) -> Gm {
    let mut args = vec!["managed", "prune", "--home", home.to_str().unwrap(), "--dir", folder.to_str().unwrap()];
    args.extend_from_slice(extra);
    Gm::new(&args)
}

/// Also F13: backup-named files planted with far-future names (unsigned, or carrying a genuine
/// signature of another file) are listed as unverified, never counted and never deleted, so they
/// cannot push real backups out of the rules.
#[test]
fn prune_keeps_the_rules_union_and_the_newest_verified_and_drilled_backups() {
    let dir = TempDir::new("prune");
    let home = home_with_schema(&dir);
    let h = home.to_str().unwrap();
    let (recipient, key) = identity(&dir);
    let folder = dir.join("backups");
    std::fs::create_dir_all(&folder).unwrap();
    // Two real backups, older than every placeholder, that the rules alone would delete: one
    // verified, one drilled (taken a second apart: backup names carry the second).
    let verified = real_backup(&home, &recipient, &folder);
    let first_second = chrono::Utc::now().timestamp();
    assert!(
        crate::harness::wait_until(std::time::Duration::from_secs(3), || chrono::Utc::now().timestamp() > first_second)
    );
    let drilled = real_backup(&home, &recipient, &folder);
    let base = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive().and_hms_opt(12, 0, 0).unwrap().and_utc();
    let days = |n: i64| base - chrono::Duration::days(n);
    let placeholders = [base, base - chrono::Duration::hours(6), days(1), days(5), days(7), days(20)].map(stamp);
    for s in &placeholders {
        signed_placeholder(&home, &folder, s);
    }
    // Entries prune must leave alone: another file, a temp file, a stale scratch folder, a
    // symlink named like the newest backup, and two planted far-future files (F13).
    std::fs::write(folder.join("notes.txt"), b"keep me").unwrap();
    std::fs::write(folder.join(format!("{}.tmp", name(&stamp(base + chrono::Duration::days(1))))), b"partial").unwrap();
    std::fs::create_dir(folder.join(".gm-backup-stale")).unwrap();
    std::fs::write(folder.join(".gm-backup-stale/na.db"), b"scratch").unwrap();
    std::os::unix::fs::symlink(folder.join("notes.txt"), folder.join(name(&stamp(base + chrono::Duration::days(2)))))
        .unwrap();
    let planted = name("20991231T235959Z");
    std::fs::write(folder.join(&planted), b"forged").unwrap();
    let relabelled = name("20991230T000000Z");
    std::fs::copy(&drilled, folder.join(&relabelled)).unwrap();
    std::fs::copy(sidecar_path(&drilled), sidecar_path(&folder.join(&relabelled))).unwrap();
    // Verified with a path relative to the working folder (the ledger records it as given); a
    // failed verification of a newer placeholder protects nothing.
    let k = key.to_str().unwrap();
    let relative = format!("backups/{}", verified.file_name().unwrap().to_str().unwrap());
    Gm::new(&["managed", "verify", &relative, "--identity", k, "--home", h]).cwd(dir.path()).expect(0);
    let failing = folder.join(name(&placeholders[4]));
    Gm::new(&["managed", "verify", failing.to_str().unwrap(), "--identity", k, "--home", h]).expect(1);
    let d = drilled.to_str().unwrap();
    Gm::new(&["managed", "restore-drill", "--home", h, "--backup", d, "--identity", k]).expect(0);

    let before = entries(&folder);
    let rules = ["--keep-last", "2", "--keep-daily", "3"];
    let (stdout, stderr) = prune(&home, &folder, &[&rules[..], &["--dry-run"]].concat()).expect(0);
    assert_eq!(entries(&folder), before, "a dry run deletes nothing");
    assert!(stderr.starts_with("warning: ") && stderr.contains("whose signature does not check out"), "{stderr}");
    let day = |t: chrono::DateTime<chrono::Utc>| format!("daily {}", t.format("%Y-%m-%d"));
    let expected_plan = [
        ("keep", name(&placeholders[0]), format!("last 1, {}", day(base))),
        ("keep", name(&placeholders[1]), "last 2".to_string()),
        ("keep", name(&placeholders[2]), day(days(1))),
        ("keep", name(&placeholders[3]), day(days(5))),
        ("delete", name(&placeholders[4]), "no rule keeps it".to_string()),
        ("delete", name(&placeholders[5]), "no rule keeps it".to_string()),
        ("keep", drilled.file_name().unwrap().to_str().unwrap().to_string(), "newest drilled".to_string()),
        ("keep", verified.file_name().unwrap().to_str().unwrap().to_string(), "newest verified".to_string()),
    ];
    for (action, file, why) in &expected_plan {
        let row = stdout.lines().find(|l| l.contains(file.as_str())).unwrap_or_else(|| panic!("{file}: {stdout}"));
        let words: Vec<&str> = row.split_whitespace().collect();
        assert_eq!((words[0], words[1], words[2..].join(" ")), (*action, file.as_str(), why.clone()), "{stdout}");
    }
    assert!(stdout.starts_with(&format!(
        "dry run in {}: would keep 6, would delete 2, left alone 6; nothing deleted\n  rules: keep-last 2, keep-daily 3, keep-weekly 0\n",
        folder.display()
    )), "{stdout}");
    assert!(
        stdout.contains(&format!("leave   {planted}"))
            && stdout.contains("unverified backup (kept, never counted): unsigned (no .sig file)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("the signature is for {}", drilled.file_name().unwrap().to_str().unwrap())),
        "{stdout}"
    );
    let (json, _) = prune(&home, &folder, &[&rules[..], &["--dry-run", "--json"]].concat()).expect(0);
    assert!(json.contains("\"dry_run\":true") && json.contains("\"to_delete\":2") && json.contains("\"deleted\":0"));
    let symlink = name(&stamp(base + chrono::Duration::days(2)));
    assert!(json.contains(&format!("{{\"name\":\"{symlink}\",\"reason\":\"symlink\"}}")), "{json}");
    assert!(json.contains(&format!("{{\"detail\":\"unsigned (no .sig file)\",\"name\":\"{planted}\",\"reason\":\"unverified backup (kept, never counted)\"}}")), "{json}");
    assert_eq!(entries(&folder), before);

    let (json, _) = prune(&home, &folder, &[&rules[..], &["--json"]].concat()).expect(0);
    assert!(json.contains("\"dry_run\":false") && json.contains("\"deleted\":2") && json.contains("\"failed\":0"));
    let mut remaining = before.clone();
    for gone in [&placeholders[4], &placeholders[5]] {
        remaining.remove(&name(gone));
        remaining.remove(&format!("{}.sig", name(gone)));
    }
    assert_eq!(entries(&folder), remaining, "exactly the two dropped backups (and their signatures) are gone");
    assert_eq!(std::fs::read(folder.join("notes.txt")).unwrap(), b"keep me");
    assert_eq!(std::fs::read(folder.join(&planted)).unwrap(), b"forged", "an unverified file is never deleted");
    assert!(folder.join(".gm-backup-stale/na.db").exists());
    assert!(std::fs::symlink_metadata(folder.join(&symlink)).unwrap().file_type().is_symlink());

    // Only the real run is in the ledger; a second run finds nothing more to delete.
    let (history, _) = Gm::new(&["managed", "history", "--home", h, "--kind", "prune", "--json"]).expect(0);
    assert_eq!(history.matches("\"kind\":\"prune\"").count(), 1, "{history}");
    let message = format!("pruned {}: kept 6, deleted 2, failed 0, left alone 6", folder.display());
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
        signed_placeholder(&home, &folder, stamp);
    }
    let (stdout, stderr) = prune(&home, &folder, &["--keep-last", "1", "--dry-run"]).expect(0);
    assert!(stdout.contains("would keep 1, would delete 1"), "{stdout}");
    assert!(stderr.starts_with("warning: no backup in "), "{stderr}");
    assert!(!home.join("gm-ops.db").exists(), "a dry run writes nothing, not even an empty ledger");
    assert_eq!(entries(&folder).len(), 4, "two backups and their signatures");
}
