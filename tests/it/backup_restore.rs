//! Managed backups end to end with real processes and files: encrypted backup while the server
//! keeps writing, verification (and its refusals), the stock `age` and `tar` tools reading the
//! archive, restore refusals (no --yes, live server, other sovereign, damaged backups) that change
//! nothing, a restore that brings state back with WAL side files moved aside and recent nonces
//! carried over, upstream-style plain backups, and the ops ledger.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::harness::{home_with_schema, identity, sandbox, Gm, GmServer, TempDir};
use crate::signer::{Node, Operator};

fn count(db: &Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn backup(home: &Path, recipient: &str, out_dir: &Path) -> std::path::PathBuf {
    let (stdout, _) = Gm::backup(home, recipient, out_dir).expect(0);
    std::path::PathBuf::from(stdout.trim())
}

/// `gm managed restore --home HOME --backup COPY --yes EXTRA…`: a plain database copy, no identity.
fn restore_plain_copy(home: &Path, copy: &Path, extra: &[&str]) -> Gm {
    let (h, c) = (home.to_str().unwrap(), copy.to_str().unwrap());
    Gm::new(&[&["managed", "restore", "--home", h, "--backup", c, "--yes"], extra].concat())
}

#[test]
fn backup_while_writing_verifies_and_stock_tools_read_it() {
    let dir = TempDir::new("backup-live");
    let home = sandbox(&dir);
    let (recipient, key) = identity(&dir);
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    let addr = server.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            let op = Operator { key: op.key.clone(), key_id: op.key_id.clone() };
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) && n < 7 {
                    let _ = op.send(addr, "POST", "/admin/invite", "{}");
                    n += 1;
                }
            })
        })
        .collect();
    let archive = backup(&home, &recipient, &dir.join("backups"));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writers.into_iter().for_each(|w| w.join().unwrap());
    assert!(archive.file_name().unwrap().to_str().unwrap().starts_with("gm-sandbox-mesh-"), "{}", archive.display());
    assert_eq!(std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777, 0o600);
    let (stdout, _) = Gm::verify(&home, &archive, &key, &["--json"]).expect(0);
    assert!(stdout.contains("\"ok\":true"), "{stdout}");
    for check in [
        "decrypt",
        "manifest",
        "snapshot_sha256",
        "integrity_check",
        "schema",
        "genesis",
        "signed_material",
        "row_counts",
    ] {
        assert!(stdout.contains(&format!("\"name\":\"{check}\",\"ok\":true")), "{check}: {stdout}");
    }
    // The stock age CLI decrypts it, tar lists it, sqlite3 opens the snapshot.
    let plain = dir.join("plain.tar.gz");
    let status = Command::new("age")
        .args(["-d", "-i", key.to_str().unwrap(), "-o", plain.to_str().unwrap(), archive.to_str().unwrap()])
        .status();
    if let Ok(status) = status {
        assert!(status.success());
        let list = Command::new("tar").args(["tzf", plain.to_str().unwrap()]).output().unwrap();
        let names = String::from_utf8_lossy(&list.stdout).to_string();
        for n in ["na.db", "manifest.json", "genesis.signed.json", "operators.json"] {
            assert!(names.lines().any(|l| l == n), "{n} in {names}");
        }
        assert!(!names.contains(".key"), "no private key in the archive");
        let out = dir.join("x");
        std::fs::create_dir_all(&out).unwrap();
        assert!(Command::new("tar")
            .args(["xzf", plain.to_str().unwrap(), "-C", out.to_str().unwrap()])
            .status()
            .unwrap()
            .success());
        assert!(count(&out.join("na.db"), "SELECT COUNT(*) FROM schema_version") == 6);
    } else {
        panic!("the stock age CLI is not installed (.ci/run installs the Debian package age)");
    }
}

#[test]
fn damaged_or_foreign_backups_are_refused_and_nothing_is_restored() {
    let dir = TempDir::new("backup-bad");
    let home = home_with_schema(&dir);
    let (recipient, key) = identity(&dir);
    let archive = backup(&home, &recipient, &dir.join("b"));
    let bytes = std::fs::read(&archive).unwrap();
    let mut flipped = bytes.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x01;
    std::fs::write(dir.join("flipped.age"), &flipped).unwrap();
    std::fs::write(dir.join("truncated.age"), &bytes[..bytes.len() - 100]).unwrap();
    // With the genuine signature beside them, the damage is caught by the signature's hash.
    let sig = std::fs::read(gm::ops::backup_signature::sidecar_path(&archive)).unwrap();
    std::fs::write(dir.join("flipped.age.sig"), &sig).unwrap();
    std::fs::write(dir.join("truncated.age.sig"), &sig).unwrap();
    for (file, id) in [("flipped.age", key.clone()), ("truncated.age", key.clone())] {
        let (stdout, _) = Gm::verify(&home, &dir.join(file), &id, &[]).expect(1);
        assert!(
            stdout.starts_with("FAILED")
                && stdout.contains("FAIL signature        damaged or forged backup: the archive hashes to"),
            "{file}: {stdout}"
        );
    }
    let wrong = TempDir::new("wrong-id");
    let (_, wrong_key) = identity(&wrong);
    let (stdout, _) = Gm::verify(&home, &archive, &wrong_key, &[]).expect(1);
    assert!(stdout.contains("FAIL decrypt"), "{stdout}");
    let db = home.join("na.db");
    let before = std::fs::read(&db).unwrap();
    let (_, stderr) = Gm::restore(&home, &dir.join("flipped.age"), &key).expect(1);
    assert!(stderr.contains("check signature failed: damaged or forged backup"), "{stderr}");
    assert_eq!(std::fs::read(&db).unwrap(), before, "nothing restored");
    // A backup of another sovereign is refused unless allowed.
    let other_dir = TempDir::new("other-sov");
    let other = home_with_schema(&other_dir);
    let foreign = backup(&other, &recipient, &dir.join("f"));
    // Signed by the other sovereign's backup-signing key, not the pinned one.
    let (_, stderr) = Gm::restore(&home, &foreign, &key).expect(1);
    assert!(stderr.contains("check signature failed: damaged or forged backup: signed by key "), "{stderr}");
    assert!(stderr.contains("not the pinned backup-signing key"), "{stderr}");
    // Trusting that key explicitly, the different genesis is still refused unless allowed.
    let other_pub = other.join("keys/backup-signing.pub");
    let (_, stderr) =
        Gm::restore_with(&home, &foreign, &key, &["--signing-public-key", other_pub.to_str().unwrap()]).expect(2);
    assert!(stderr.contains("--allow-different-genesis"), "{stderr}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
    // Not an NA database at all.
    let junk = dir.join("junk.db");
    rusqlite::Connection::open(&junk).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
    let (_, stderr) = restore_plain_copy(&home, &junk, &[]).expect(1);
    assert!(stderr.contains("is a plain database copy, which carries no signature"), "{stderr}");
    let (_, stderr) = restore_plain_copy(&home, &junk, &["--allow-unsigned"]).expect(1);
    assert!(stderr.contains("does not look like a Genesis Mesh NA database"), "{stderr}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn restore_refuses_without_yes_and_while_served_then_brings_state_back() {
    let dir = TempDir::new("restore");
    let home = sandbox(&dir);
    let h = home.to_str().unwrap();
    let (recipient, key) = identity(&dir);
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    op.invite(server.addr, "{}");
    let archive = backup(&home, &recipient, &dir.join("b"));
    // State changes after the backup.
    op.invite(server.addr, "{}");
    let node = Node::new();
    assert_eq!(node.join(server.addr, &op.invite(server.addr, "{}")).status, 201);
    let a = archive.to_str().unwrap();
    let k = key.to_str().unwrap();
    let (_, stderr) = Gm::new(&["managed", "restore", "--home", h, "--backup", a, "--identity", k]).expect(2);
    assert!(
        stderr.starts_with("error: refusing to restore without --yes\nhint: stop the Network Authority"),
        "{stderr}"
    );
    let (_, stderr) = Gm::restore(&home, &archive, &key).expect(2);
    assert!(stderr.contains("is served by a running gm"), "{stderr}");
    drop(server);
    let db = home.join("na.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM invite_tokens"), 3);
    let recent_nonces = count(&db, "SELECT COUNT(*) FROM nonces");
    assert!(recent_nonces >= 1);
    let pre = dir.join("pre/before.db");
    let (stdout, _) =
        Gm::restore_with(&home, &archive, &key, &["--pre-restore-backup", pre.to_str().unwrap(), "--json"]).expect(0);
    assert!(stdout.contains("\"nonces_carried_over\":"), "{stdout}");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM invite_tokens"), 1, "state is the backup's");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM issued_certs"), 0);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM nonces"),
        recent_nonces,
        "nonces younger than 600 s carried over (D23)"
    );
    assert_eq!(count(&pre, "SELECT COUNT(*) FROM invite_tokens"), 3, "the pre-restore copy holds the replaced state");
    assert_eq!(std::fs::metadata(&db).unwrap().permissions().mode() & 0o777, 0o640, "the target's mode is kept");
    assert!(!home.join("na.db-wal").exists());
    // The restored database serves.
    let server = GmServer::start(&home, &[]);
    assert_eq!(server.get("/readyz").status, 200);
    drop(server);
    let (stdout, _) = Gm::new(&["managed", "history", "--home", h, "--json"]).expect(0);
    for kind in ["\"kind\":\"backup\"", "\"kind\":\"restore\""] {
        assert!(stdout.contains(kind), "{kind}: {stdout}");
    }
}

#[test]
fn upstream_style_plain_backup_and_restore() {
    let dir = TempDir::new("plain");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    Operator::sandbox(&home).invite(server.addr, "{}");
    let copy = dir.join("copies/na-copy.db");
    let (stdout, _) =
        Gm::new(&["managed", "backup", "--home", home.to_str().unwrap(), "--output", copy.to_str().unwrap()]).expect(0);
    assert_eq!(
        stdout,
        format!(
            "{{\n  \"db_path\": \"{}\",\n  \"backup_path\": \"{}\"\n}}\n",
            home.join("na.db").display(),
            copy.display()
        )
    );
    assert_eq!(count(&copy, "SELECT COUNT(*) FROM invite_tokens"), 1);
    for table in ["schema_version", "audit_events"] {
        assert_eq!(
            count(&copy, &format!("SELECT COUNT(*) FROM sqlite_master WHERE name = '{table}'")),
            1,
            "upstream's restore validation"
        );
    }
    drop(server);
    // A plain copy carries no signature: refused unless --allow-unsigned (F4).
    let (_, stderr) = restore_plain_copy(&home, &copy, &[]).expect(1);
    assert!(stderr.starts_with("error: check signature failed: damaged or forged backup: "), "{stderr}");
    let (_, stderr) = restore_plain_copy(&home, &copy, &["--allow-unsigned"]).expect(0);
    assert!(stderr.contains("warning: --allow-unsigned"), "{stderr}");
    assert_eq!(count(&home.join("na.db"), "SELECT COUNT(*) FROM invite_tokens"), 1);
}

#[test]
fn restore_drill_serves_the_backup_in_a_scratch_folder_and_records_it() {
    let dir = TempDir::new("drill");
    let home = sandbox(&dir);
    let h = home.to_str().unwrap();
    let (recipient, key) = identity(&dir);
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    let node = Node::new();
    assert_eq!(node.join(server.addr, &op.invite(server.addr, "{}")).status, 201);
    let backups = dir.join("backups");
    backup(&home, &recipient, &backups);
    drop(server);
    let db = home.join("na.db");
    let before = std::fs::read(&db).unwrap();
    let report = dir.join("drill.json");
    let (stdout, _) =
        Gm::drill_latest(&home, &backups, &key, &["--report", report.to_str().unwrap(), "--json"]).expect(0);
    assert!(stdout.contains("\"ok\":true"), "{stdout}");
    for check in ["verify", "serve", "healthz", "readyz", "crl", "connectome", "sentinel_enroll"] {
        assert!(stdout.contains(&format!("\"name\":\"{check}\",\"ok\":true")), "{check}: {stdout}");
    }
    assert!(stdout.contains("\"rto_ms\":"), "{stdout}");
    assert!(!stdout.contains("\"rto_ms\":null"), "{stdout}");
    assert!(std::fs::read_to_string(&report).unwrap().contains("\"ok\": true"));
    assert_eq!(std::fs::read(&db).unwrap(), before, "production database untouched by the drill");
    // A drill of a backup encrypted to someone else fails verification (exit 1) and is recorded.
    let other = TempDir::new("drill-other");
    let (_, other_key) = identity(&other);
    Gm::drill_latest(&home, &backups, &other_key, &[]).expect(1);
    Gm::new(&["managed", "restore-drill", "--home", h, "--identity", key.to_str().unwrap()]).expect(2);
    let (stdout, _) = Gm::new(&["managed", "history", "--home", h, "--json"]).expect(0);
    assert_eq!(stdout.matches("\"kind\":\"drill\"").count(), 2, "{stdout}");
    assert!(stdout.contains("\"outcome\":\"ok\"") && stdout.contains("\"outcome\":\"failed\""), "{stdout}");
}

#[test]
fn progress_shows_on_a_terminal_and_never_in_pipes() {
    let dir = TempDir::new("progress");
    let home = home_with_schema(&dir);
    let (recipient, key) = identity(&dir);
    // Not a terminal (the test's pipes): stderr stays empty.
    let (_, stderr) = Gm::backup(&home, &recipient, &dir.join("quiet")).expect(0);
    assert_eq!(stderr, "");
    // A terminal (util-linux `script` gives the command a pty): the phases show, then the line clears.
    let tty = dir.join("tty");
    let command = format!(
        "{} managed backup --home {} --recipient {} --dir {} && {} managed verify --home {} --identity {} {}/*.age",
        crate::harness::gm_bin(),
        home.display(),
        recipient,
        tty.display(),
        crate::harness::gm_bin(),
        home.display(),
        key.display(),
        tty.display()
    );
    let run = Command::new("script").args(["-qec", &command, "/dev/null"]).env_remove("GM_HOME").output();
    let Ok(run) = run else { panic!("util-linux `script` is needed for the terminal test") };
    let shown = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(run.status.success(), "{shown}");
    for phase in ["snapshot:", "archive:", "decrypt:"] {
        assert!(shown.contains(phase), "{phase} in {shown:?}");
    }
    assert!(shown.contains("\r\u{1b}[K"), "the progress line is cleared: {shown:?}");
}

/// F4 (second half): revocation is monotonic across restore. A certificate revoked after the
/// backup stays revoked in the restored database and in the served CRL, whose sequence is above
/// the replaced one, and the restore says it carried the revocation over.
#[test]
fn after_restoring_an_older_backup_revocations_carry_over_and_the_crl_sequence_never_goes_backwards() {
    let dir = TempDir::new("crl-floor");
    let home = sandbox(&dir);
    let (recipient, key) = identity(&dir);
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    let node = Node::new();
    let joined = node.join(server.addr, &op.invite(server.addr, "{}"));
    let cert_id = gm::json::parse_str(&joined.text())
        .unwrap()
        .as_object()
        .unwrap()
        .get("cert_id")
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    assert!(server.get("/crl").text().contains("\"sequence\":0"));
    let archive = backup(&home, &recipient, &dir.join("b"));
    // After the backup: two revocations, so nodes have seen CRL sequence 1.
    let revoked = op.send(
        server.addr,
        "POST",
        "/admin/revoke",
        &format!("{{\"cert_id\":\"{cert_id}\",\"reason\":\"key_compromise\"}}"),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert!(server.get("/crl").text().contains("\"sequence\":1"));
    drop(server);
    let (stdout, _) = Gm::restore(&home, &archive, &key).expect(0);
    assert!(
        stdout.contains(&format!(
            "\n  1 revocation(s) carried over from the replaced database\n  certificates ({cert_id}): gm serve publishes \
             them in a CRL above the replaced sequence"
        )),
        "{stdout}"
    );
    let revoked_in_db =
        format!("SELECT COUNT(*) FROM issued_certs WHERE cert_id = '{cert_id}' AND status = 'revoked' AND revocation_reason = 'key_compromise'");
    assert_eq!(count(&home.join("na.db"), &revoked_in_db), 1, "still revoked in the restored database");
    let server = GmServer::start(&home, &[]);
    let crl = server.get("/crl").text();
    assert!(crl.contains("\"sequence\":2"), "re-issued above the replaced database's 1: {crl}");
    assert!(crl.contains(&format!("\"certificate_id\":\"{cert_id}\"")), "still listed in the CRL: {crl}");
    let na = gm::crypto::keys::load_public_key(&home.join("keys/na.pub")).unwrap();
    let parsed =
        <gm::model::crl::Crl as gm::model::SignedObject>::from_value(&gm::json::parse_str(&crl).unwrap()).unwrap();
    assert!(gm::model::SignedObject::check_signatures(&parsed, &[na]).is_valid());
    assert!(
        server.stderr().contains("re-issued the CRL as sequence 2: 1 revocation(s) carried over"),
        "{}",
        server.stderr()
    );
    drop(server);
    // A second start changes nothing.
    let server = GmServer::start(&home, &[]);
    assert!(server.get("/crl").text().contains("\"sequence\":2"));
    // The node's revoked certificate cannot come back through a second restore either (--json).
    drop(server);
    let (stdout, _) = Gm::restore_with(&home, &archive, &key, &["--json"]).expect(0);
    assert!(stdout.contains("\"revocations_carried_over\":1"), "{stdout}");
    assert_eq!(count(&home.join("na.db"), &revoked_in_db), 1);
}

#[test]
fn backups_started_in_the_same_second_into_one_folder_all_succeed_with_distinct_names() {
    let dir = TempDir::new("backup-same-second");
    let home = sandbox(&dir);
    let (recipient, key) = identity(&dir);
    let folder = dir.join("backups");
    let _server = GmServer::start(&home, &[]);
    // Three runs at once: they serialize on the folder's lock, and the second and third within
    // the same second get millisecond names instead of refusing to overwrite the first.
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let (home, recipient, folder) = (home.clone(), recipient.clone(), folder.clone());
            std::thread::spawn(move || backup(&home, &recipient, &folder))
        })
        .collect();
    let mut archives: Vec<_> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    archives.sort();
    archives.dedup();
    assert_eq!(archives.len(), 3, "{archives:?}");
    for archive in &archives {
        let name = archive.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("gm-sandbox-mesh-") && name.ends_with("Z.tar.gz.age"), "{name}");
        Gm::verify(&home, archive, &key, &[]).expect(0);
    }
    // prune sees three backups and no stray entry (the lock file is not reported).
    let (stdout, _) = Gm::new(&[
        "managed",
        "prune",
        "--home",
        home.to_str().unwrap(),
        "--dir",
        folder.to_str().unwrap(),
        "--keep-last",
        "5",
        "--dry-run",
        "--json",
    ])
    .expect(0);
    assert!(!stdout.contains("gm-backup.lock"), "{stdout}");
    assert_eq!(stdout.matches("gm-sandbox-mesh-").count(), 3, "{stdout}");
}

#[test]
fn restore_keeps_the_replaced_database_by_default_and_discards_it_only_when_told() {
    let dir = TempDir::new("restore-keep");
    let home = sandbox(&dir);
    let (recipient, key) = identity(&dir);
    let server = GmServer::start(&home, &[]);
    let op = Operator::sandbox(&home);
    let archive = backup(&home, &recipient, &dir.join("b"));
    op.invite(server.addr, "{}");
    op.invite(server.addr, "{}");
    drop(server);
    let db = home.join("na.db");
    let kept_files = || -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(&home)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("na.db.pre-restore-"))
            .collect();
        v.sort();
        v
    };
    let (stdout, _) = Gm::restore_with(&home, &archive, &key, &["--json"]).expect(0);
    let kept = kept_files();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(stdout.contains(&format!("\"replaced_database_kept\":\"{}\"", kept[0].display())), "{stdout}");
    assert_eq!(count(&kept[0], "SELECT COUNT(*) FROM invite_tokens"), 2, "the kept file holds the replaced state");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM invite_tokens"), 0, "the database is the backup's");
    assert_eq!(std::fs::metadata(&kept[0]).unwrap().permissions().mode() & 0o777, 0o600);
    // With the opt-out nothing new is kept.
    let (stdout, _) = Gm::restore_with(&home, &archive, &key, &["--discard-replaced"]).expect(0);
    assert!(stdout.contains("the replaced database was discarded (--discard-replaced)"), "{stdout}");
    assert_eq!(kept_files(), kept, "--discard-replaced keeps nothing new");
    // Two restores within one second keep two files (…Z and …Z-2), never one over the other.
    Gm::restore_with(&home, &archive, &key, &[]).expect(0);
    let (stdout, _) = Gm::restore_with(&home, &archive, &key, &[]).expect(0);
    assert!(stdout.contains("the replaced database is kept as"), "{stdout}");
    assert_eq!(kept_files().len(), 3);
}
