//! Restore drills without the NA key (customer-held custody): against real encrypted, signed
//! backups, with the NA key file absent (or `--scratch-na-key`), the drill passes in a scratch
//! world and says so in its report and the ops ledger; the restored CRL must still verify with the
//! genesis NA key, so a backup whose CRL another key signed fails, and a configured genesis of
//! another sovereign fails the `na_signed` check.

use std::path::{Path, PathBuf};

use gm::model::crl::Crl;
use gm::model::SignedObject;

use crate::harness::{home_with_schema, sandbox, Gm, TempDir};

fn backup(home: &Path, out_dir: &Path) -> PathBuf {
    let recipients = home.join("backup-recipients.txt");
    let (h, r, o) = (home.to_str().unwrap(), recipients.to_str().unwrap(), out_dir.to_str().unwrap());
    let (stdout, _) = Gm::new(&["managed", "backup", "--home", h, "--recipients-file", r, "--dir", o]).expect(0);
    PathBuf::from(stdout.trim())
}

fn check<'a>(stdout: &'a str, name: &str) -> &'a str {
    let at = stdout.find(&format!("\"name\":\"{name}\"")).unwrap_or_else(|| panic!("no check {name}: {stdout}"));
    let start = stdout[..at].rfind('{').unwrap();
    let end = at + stdout[at..].find('}').unwrap();
    &stdout[start..=end]
}

#[test]
fn a_drill_without_the_na_key_passes_in_a_scratch_world_and_records_the_mode() {
    let dir = TempDir::new("drill-scratch");
    let home = home_with_schema(&dir);
    let key = home.join("offline/backup.key");
    let archive = backup(&home, &dir.join("backups"));
    let na_key = home.join("keys/na.key");
    std::fs::rename(&na_key, dir.join("na.key.held-by-customer")).unwrap();
    let before = std::fs::read(home.join("na.db")).unwrap();

    let (stdout, stderr) = Gm::drill(&home, &archive, &key, &["--json"]).expect(0);
    assert!(stdout.contains("\"na_key\":\"scratch\""), "{stdout}");
    assert!(stdout.contains(&format!("\"na_key_reason\":\"no NA private key at {}\"", na_key.display())), "{stdout}");
    assert!(stdout.contains("\"ok\":true"), "{stdout}");
    let genesis = std::fs::read_to_string(home.join("genesis.signed.json")).unwrap();
    let na_public = genesis.split("\"public_key\": \"").nth(1).unwrap().split('"').next().unwrap();
    let signed = check(&stdout, "na_signed");
    assert!(signed.contains("\"ok\":true"), "{signed}");
    assert!(
        signed.contains(&format!("verify with the genesis NA key {na_public} (the configured genesis ")),
        "{signed}"
    );
    assert!(check(&stdout, "crl").contains("the restored CRL, signed by the genesis NA key"), "{stdout}");
    let enroll = check(&stdout, "sentinel_enroll");
    assert!(enroll.contains("\"ok\":true") && enroll.contains("signed by the scratch NA key"), "{enroll}");
    assert!(stderr.contains("no NA private key at"), "{stderr}");
    assert!(!na_key.exists(), "the drill writes no NA key into the home");
    assert_eq!(std::fs::read(home.join("na.db")).unwrap(), before, "production untouched");

    // Explicitly, with the key present; and the normal mode says which key it used.
    std::fs::rename(dir.join("na.key.held-by-customer"), &na_key).unwrap();
    let (stdout, _) = Gm::drill(&home, &archive, &key, &["--scratch-na-key"]).expect(0);
    assert!(stdout.starts_with("passed: drill of "), "{stdout}");
    assert!(stdout.contains("\n  ok   na_signed    "), "{stdout}");
    assert!(stdout.contains("\n  NA key: scratch (--scratch-na-key)"), "{stdout}");
    let (stdout, _) = Gm::drill(&home, &archive, &key, &["--json"]).expect(0);
    assert!(stdout.contains("\"na_key\":\"configured\",\"na_key_reason\":null"), "{stdout}");
    assert!(!stdout.contains("na_signed"), "{stdout}");

    let h = home.to_str().unwrap();
    let (history, _) = Gm::new(&["managed", "history", "--home", h, "--kind", "drill", "--json"]).expect(0);
    assert_eq!(history.matches("\"message\":\"scratch NA key: passed; RTO ").count(), 2, "{history}");
    let ledger = rusqlite::Connection::open(home.join("gm-ops.db")).unwrap();
    let modes: Vec<String> = ledger
        .prepare("SELECT json_extract(details_json, '$.na_key') FROM gm_ops_ledger WHERE kind = 'drill' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(modes, ["scratch", "scratch", "configured"]);
}

/// A genuine, signed backup of a database whose stored CRL was signed by another key than the
/// genesis NA key fails the drill in scratch mode as in the normal one: the scratch key never
/// vouches for restored material.
#[test]
fn a_backup_whose_crl_another_key_signed_fails_the_drill_in_scratch_mode() {
    let dir = TempDir::new("drill-scratch-crl");
    let home = home_with_schema(&dir);
    let key = home.join("offline/backup.key");
    let db = home.join("na.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    let (sequence, json): (i64, String) =
        c.query_row("SELECT sequence, crl_json FROM crl_versions LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    let mut crl = Crl::from_value(&gm::json::parse_str(&json).unwrap()).unwrap();
    crl.signatures.clear();
    crl.sign(&gm::crypto::keys::SigningKey::generate(), "na-local");
    let forged = gm::crypto::canonical::canonical_string(&crl.to_value());
    c.execute("UPDATE crl_versions SET crl_json = ?1 WHERE sequence = ?2", rusqlite::params![forged, sequence])
        .unwrap();
    drop(c);
    let archive = backup(&home, &dir.join("backups"));
    std::fs::remove_file(home.join("keys/na.key")).unwrap();

    let (stdout, _) = Gm::drill(&home, &archive, &key, &[]).expect(1);
    assert!(stdout.starts_with("FAILED: drill of "), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "FAIL verify       signed_material: CRL sequence {sequence} is not signed by this NA key"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("\n  NA key: scratch (no NA private key at "), "{stdout}");
    assert!(!stdout.contains("sentinel_enroll"), "no enrollment after a failed check: {stdout}");
    let h = home.to_str().unwrap();
    let (history, _) = Gm::new(&["managed", "history", "--home", h, "--kind", "drill", "--json"]).expect(0);
    assert!(history.contains("\"outcome\":\"failed\""), "{history}");
    assert!(history.contains("\"message\":\"scratch NA key: verify: signed_material: CRL sequence"), "{history}");
}

/// The restored material is checked against the configured genesis: a backup of another sovereign
/// (whose own genesis and CRL agree with each other) fails `na_signed` and is never served.
#[test]
fn a_backup_of_another_sovereign_fails_na_signed_in_scratch_mode() {
    let dir = TempDir::new("drill-scratch-other");
    let home = home_with_schema(&dir);
    let key = home.join("offline/backup.key");
    let archive = backup(&home, &dir.join("backups"));
    let other = TempDir::new("drill-scratch-other-home");
    let other_home = sandbox(&other);
    std::fs::copy(other_home.join("genesis.signed.json"), home.join("genesis.signed.json")).unwrap();
    std::fs::remove_file(home.join("keys/na.key")).unwrap();

    let (stdout, _) = Gm::drill(&home, &archive, &key, &["--json"]).expect(1);
    assert!(check(&stdout, "verify").contains("\"ok\":true"), "{stdout}");
    let signed = check(&stdout, "na_signed");
    assert!(signed.contains("\"ok\":false") && signed.contains("a backup of another sovereign"), "{signed}");
    assert!(!stdout.contains("\"name\":\"serve\""), "{stdout}");
}
