//! Forged and tampered backups (finding F4) and backup ordering (finding F13). The forger has only
//! public material: the age recipient backups are encrypted to and the genesis (`GET /genesis`).
//! They build, in the test, a database with a planted `role:operator` invite and no CRL or policy
//! rows, a self-consistent manifest, and optionally a signature with a key of their own. Verify,
//! restore and restore-drill must refuse all of it with exit 1; a genuine signed backup passes;
//! a signature whose facts were edited fails.

use std::path::{Path, PathBuf};

use gm::ops::archive::{self, Key};
use gm::ops::backup_signature::{sidecar_path, BackupSignature, BackupSigner};
use gm::ops::manifest::Manifest;

use crate::harness::{home_with_schema, Gm, TempDir};

const PLANTED: &str = "00000000-0000-4000-8000-00000000f04d";

fn backup(home: &Path, out_dir: &Path) -> PathBuf {
    let recipients = home.join("backup-recipients.txt");
    let (h, r, o) = (home.to_str().unwrap(), recipients.to_str().unwrap(), out_dir.to_str().unwrap());
    let (stdout, _) = Gm::new(&["managed", "backup", "--home", h, "--recipients-file", r, "--dir", o]).expect(0);
    PathBuf::from(stdout.trim())
}

/// The forger's database: upstream's schema (from a gm of their own), every CRL and policy row
/// removed, and an operator invite planted.
fn forged_db(dir: &TempDir) -> PathBuf {
    let own = TempDir::new("forger-home");
    let home = home_with_schema(&own);
    let db = dir.join("forged-na.db");
    let src = rusqlite::Connection::open(home.join("na.db")).unwrap();
    src.execute("VACUUM INTO ?1", [db.to_str().unwrap()]).unwrap();
    drop(src);
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch("DELETE FROM crl_versions; DELETE FROM policy_versions;").unwrap();
    gm::store::invites::insert(
        &c,
        &gm::store::invites::NewInvite {
            token_id: PLANTED,
            assigned_roles_json: "[\"role:operator\"]",
            max_validity_hours: 24,
            created_at: "2026-01-01T00:00:00",
            expires_at: "2099-01-01T00:00:00",
        },
    )
    .unwrap();
    drop(c);
    db
}

/// An archive of `db` for the victim (its public genesis and recipient), named like a real backup
/// taken at `stamp`, with a manifest that agrees with everything in it.
fn forge(victim: &Path, db: &Path, out_dir: &Path, stamp: &str) -> (PathBuf, String) {
    let genesis_file = victim.join("genesis.signed.json");
    let genesis_bytes = std::fs::read(&genesis_file).unwrap();
    let genesis = gm::json::parse_str(&String::from_utf8_lossy(&genesis_bytes)).unwrap();
    let na_key = genesis.as_object().unwrap().get("network_authority").unwrap().as_object().unwrap();
    let na_key = na_key.get("public_key").unwrap().as_str().unwrap().to_string();
    let network = genesis.as_object().unwrap().get("network_name").unwrap().as_str().unwrap().to_string();
    let created = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").unwrap().and_utc();
    let conn = gm::store::snapshot::open_immutable(db).unwrap();
    let (schema_version, row_counts, crl_sequence, connectome) = Manifest::count(&conn, created).unwrap();
    drop(conn);
    let manifest = Manifest {
        created_at: gm::model::timestamp::isoformat_utc(created),
        network_name: network.clone(),
        genesis_sha256: gm::crypto::digest::sha256_hex(&genesis_bytes),
        na_public_key: na_key,
        schema_version,
        snapshot_sha256: gm::crypto::digest::sha256_hex(&std::fs::read(db).unwrap()),
        snapshot_size: std::fs::metadata(db).unwrap().len(),
        row_counts,
        crl_sequence,
        connectome,
    };
    let mut text = gm::crypto::canonical::to_pretty_string(&manifest.to_value());
    text.push('\n');
    let manifest_file = out_dir.join(format!("manifest-{stamp}.json"));
    std::fs::create_dir_all(out_dir).unwrap();
    std::fs::write(&manifest_file, &text).unwrap();
    let recipients = std::fs::read_to_string(victim.join("backup-recipients.txt")).unwrap();
    let key = Key::Recipients(archive::parse_recipients(&[recipients]).unwrap());
    let path = out_dir.join(format!("gm-{network}-{stamp}.tar.gz.age"));
    let file = std::fs::File::create(&path).unwrap();
    archive::write(
        file,
        &key,
        &[("na.db", db), ("manifest.json", &manifest_file), ("genesis.signed.json", &genesis_file)],
        1,
    )
    .unwrap();
    std::fs::remove_file(&manifest_file).unwrap();
    (path, gm::crypto::digest::sha256_hex(text.as_bytes()))
}

/// Signs `archive` with a key of the forger's own, facts all consistent.
fn sign_with_own_key(archive_path: &Path, manifest_sha256: &str, created_at: &str) {
    let bytes = std::fs::read(archive_path).unwrap();
    let facts = BackupSignature {
        archive: archive_path.file_name().unwrap().to_str().unwrap().to_string(),
        archive_sha256: gm::crypto::digest::sha256_hex(&bytes),
        archive_size: bytes.len() as u64,
        created_at: created_at.to_string(),
        network_name: "sandbox-mesh".to_string(),
        manifest_sha256: manifest_sha256.to_string(),
        key_id: String::new(),
        public_key: String::new(),
        signature: String::new(),
    };
    let signer = BackupSigner { key: gm::crypto::keys::SigningKey::generate(), key_id: "backup-signing".into() };
    std::fs::write(sidecar_path(archive_path), BackupSignature::sign(facts, &signer).to_text()).unwrap();
}

fn verify(home: &Path, archive: &Path, key: &Path, extra: &[&str]) -> (i32, String, String) {
    let o = Gm::verify(home, archive, key, extra).output();
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    (o.status.code().unwrap_or(-1), text(&o.stdout), text(&o.stderr))
}

fn invite_count(db: &Path) -> i64 {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row("SELECT COUNT(*) FROM invite_tokens WHERE token_id = ?1", [PLANTED], |r| r.get(0)).unwrap()
}

/// F4: a forged archive (unsigned, or signed with the forger's own key) is refused by verify,
/// restore and restore-drill with exit 1 and nothing is restored; the planted invite never lands.
#[test]
fn forged_backups_built_from_public_material_are_refused_by_verify_restore_and_drill() {
    let dir = TempDir::new("forgery");
    let home = home_with_schema(&dir);
    let key = home.join("offline/backup.key");
    let db = forged_db(&dir);
    let out = dir.join("backups");
    let (unsigned, _) = forge(&home, &db, &out, "20261201T000000Z");
    let (own_signed, manifest_sha) = forge(&home, &db, &out, "20261202T000000Z");
    sign_with_own_key(&own_signed, &manifest_sha, "2026-12-02T00:00:00");
    let before = std::fs::read(home.join("na.db")).unwrap();

    let (code, stdout, _) = verify(&home, &unsigned, &key, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "FAILED: {}\n  FAIL signature        damaged or forged backup: no signature file {}",
            unsigned.display(),
            sidecar_path(&unsigned).display()
        )),
        "{stdout}"
    );
    let (code, stdout, _) = verify(&home, &own_signed, &key, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("FAIL signature        damaged or forged backup: signed by key "), "{stdout}");
    assert!(stdout.contains("not the pinned backup-signing key"), "{stdout}");
    // Even accepted as unsigned, zero NA-signed objects is not a pass.
    let (code, stdout, stderr) = verify(&home, &unsigned, &key, &["--allow-unsigned"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stderr.contains("warning: --allow-unsigned"), "{stderr}");
    assert!(
        stdout.contains(
            "FAIL signed_material  damaged or forged backup: the snapshot holds no CRL or policy signed by the NA key"
        ),
        "{stdout}"
    );

    for forged in [&unsigned, &own_signed] {
        let (_, stderr) = Gm::restore(&home, forged, &key).expect(1);
        assert!(stderr.starts_with("error: check signature failed: damaged or forged backup: "), "{stderr}");
        assert!(stderr.contains("\nhint: do not restore it;"), "{stderr}");
        let (stdout, _) = Gm::drill(&home, forged, &key, &[]).expect(1);
        assert!(
            stdout.starts_with("FAILED: drill of ")
                && stdout.contains("FAIL verify       signature: damaged or forged backup"),
            "{stdout}"
        );
    }
    let (_, stderr) = Gm::restore_with(&home, &unsigned, &key, &["--allow-unsigned"]).expect(1);
    assert!(stderr.contains("\nerror: check signed_material failed: damaged or forged backup"), "{stderr}");
    assert_eq!(std::fs::read(home.join("na.db")).unwrap(), before, "nothing restored");
    assert_eq!(invite_count(&home.join("na.db")), 0, "the planted operator invite never lands");
}

/// F4: a genuine signed backup verifies (the signature check named), and a signature whose facts
/// were edited (a later `created_at`) or that belongs to another archive fails.
#[test]
fn a_genuine_signed_backup_passes_and_a_tampered_signature_fails() {
    let dir = TempDir::new("signed");
    let home = home_with_schema(&dir);
    let key = home.join("offline/backup.key");
    let archive = backup(&home, &dir.join("b"));
    let (code, stdout, _) = verify(&home, &archive, &key, &["--json"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("\"name\":\"signature\",\"ok\":true") && stdout.contains("\"signed\":true"), "{stdout}");
    assert!(stdout.contains("CRL and policy version(s) verify with the NA key"), "{stdout}");
    // Only the public key on the verify host: --signing-public-key with no gm.toml.
    let bare = TempDir::new("bare-home");
    let public = home.join("keys/backup-signing.pub");
    let (code, stdout, _) = verify(bare.path(), &archive, &key, &["--signing-public-key", public.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    let (code, _, stderr) = verify(bare.path(), &archive, &key, &[]);
    assert_eq!(code, 2, "no pinned key is a setup error, not a pass: {stderr}");
    assert!(stderr.starts_with("error: no backup-signing public key is configured"), "{stderr}");

    let sig = sidecar_path(&archive);
    let genuine = std::fs::read_to_string(&sig).unwrap();
    let created = genuine.split("\"created_at\": \"").nth(1).unwrap().split('"').next().unwrap().to_string();
    std::fs::write(&sig, genuine.replace(&created, "2099-01-01T00:00:00")).unwrap();
    let (code, stdout, _) = verify(&home, &archive, &key, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("FAIL signature        damaged or forged backup: the signature does not verify"),
        "{stdout}"
    );
    let (_, stderr) = Gm::restore(&home, &archive, &key).expect(1);
    assert!(
        stderr.starts_with("error: check signature failed: damaged or forged backup: the signature does not verify"),
        "{stderr}"
    );
    // A genuine signature beside another genuine archive names the wrong bytes.
    std::fs::write(&sig, &genuine).unwrap();
    let second = backup(&home, &dir.join("c"));
    std::fs::copy(&sig, sidecar_path(&second)).unwrap();
    let (code, stdout, _) = verify(&home, &second, &key, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("damaged or forged backup: the archive hashes to"), "{stdout}");
    let (code, stdout, _) = verify(&home, &archive, &key, &[]);
    assert_eq!(code, 0, "the restored genuine signature verifies again: {stdout}");
}

/// F13: `restore-drill --latest` orders by the signed time and passes over (and lists) files
/// whose name is not backed by a signature: a planted far-future file, and a genuine archive and
/// signature copied under a far-future name. A folder of only such files has no latest backup.
#[test]
fn latest_picks_the_newest_signed_backup_and_lists_planted_far_future_files() {
    let dir = TempDir::new("latest");
    let home = home_with_schema(&dir);
    let key = home.join("offline/backup.key");
    let out = dir.join("backups");
    let real = backup(&home, &out);
    let planted = out.join("gm-sandbox-mesh-20991231T235959Z.tar.gz.age");
    std::fs::write(&planted, b"forged").unwrap();
    let relabelled = out.join("gm-sandbox-mesh-20991230T000000Z.tar.gz.age");
    std::fs::copy(&real, &relabelled).unwrap();
    std::fs::copy(sidecar_path(&real), sidecar_path(&relabelled)).unwrap();
    let report = dir.join("drills/new/latest.json");
    let (json, _) = Gm::drill_latest(&home, &out, &key, &["--json", "--report", report.to_str().unwrap()]).expect(0);
    // The report's folder is created (the default job writes drills/latest.json in a fresh home).
    assert_eq!(std::fs::read_to_string(&report).unwrap().trim_end(), json_pretty(&json));
    assert!(json.contains(&format!("\"backup\":\"{}\"", real.display())), "{json}");
    assert!(json.contains("\"ok\":true"), "{json}");
    let real_name = real.file_name().unwrap().to_str().unwrap();
    assert!(
        json.contains(&format!(
            "\"passed_over\":[{{\"name\":\"gm-sandbox-mesh-20991230T000000Z.tar.gz.age\",\"reason\":\"the signature is for {real_name}\"}},{{\"name\":\"gm-sandbox-mesh-20991231T235959Z.tar.gz.age\",\"reason\":\"unsigned (no .sig file)\"}}]"
        )),
        "{json}"
    );
    let (text, _) = Gm::drill_latest(&home, &out, &key, &[]).expect(0);
    assert!(text.starts_with(&format!("passed: drill of {}", real.display())), "{text}");
    assert!(
        text.contains("\n  passed over gm-sandbox-mesh-20991231T235959Z.tar.gz.age: unsigned (no .sig file)"),
        "{text}"
    );
    // Only planted files: nothing to drill, and the command says why.
    std::fs::remove_file(&real).unwrap();
    let (_, stderr) = Gm::drill_latest(&home, &out, &key, &[]).expect(2);
    assert!(stderr.contains("WARNING - passed over gm-sandbox-mesh-20991231T235959Z.tar.gz.age in "), "{stderr}");
    let refused = format!("\nerror: no signed backup in {} (2 backup-named file(s) passed over", out.display());
    assert!(stderr.contains(&refused), "{stderr}");
}

fn json_pretty(compact: &str) -> String {
    gm::crypto::canonical::to_pretty_string(&gm::json::parse_str(compact.trim()).unwrap())
}
