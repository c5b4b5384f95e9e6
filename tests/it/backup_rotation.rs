//! Rotating the backup-signing key: backups signed by the key a rotation retired
//! (`[backup] retired_signing_public_keys`) still verify, drill and count for retention, reported as
//! signed by a retired key; once the old key is no longer listed they are refused like any foreign
//! signature, and new backups are signed by the new key.

use std::path::{Path, PathBuf};

use crate::harness::{home_with_schema, identity, Gm, TempDir};

/// Takes one backup into `folder` and returns its path (from `--json`).
fn backup(home: &Path, recipient: &str, folder: &Path) -> PathBuf {
    let (stdout, _) = Gm::backup(home, recipient, folder).arg("--json").expect(0);
    let v = gm::json::parse_str(&stdout).unwrap();
    PathBuf::from(v.as_object().unwrap().get("backup_path").and_then(|p| p.as_str()).unwrap())
}

#[test]
fn backups_signed_before_a_rotation_verify_with_the_retired_key_and_only_while_it_is_listed() {
    let dir = TempDir::new("rotation");
    let home = home_with_schema(&dir);
    let h = home.to_str().unwrap();
    let (recipient, key) = identity(&dir);
    let folder = dir.join("backups");
    let before = backup(&home, &recipient, &folder);

    // Rotation: a new key signs from now on, the old public key is listed as retired.
    Gm::new(&["keygen", "backup-signing", "--home", h, "--output", "keys/backup-signing-2"]).expect(0);
    let toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    assert!(toml.contains("signing_key = \"keys/backup-signing.key\""), "{toml}");
    let rotated = toml.replace(
        "signing_key = \"keys/backup-signing.key\"",
        "signing_key = \"keys/backup-signing-2.key\"\nretired_signing_public_keys = [\"keys/backup-signing.pub\"]",
    );
    std::fs::write(home.join("gm.toml"), &rotated).unwrap();
    // Backup names carry the second: the next one must not collide with the first.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let after = backup(&home, &recipient, &folder);

    let (stdout, _) = Gm::verify(&home, &before, &key, &[]).expect(0);
    assert!(stdout.contains("(a retired key, trusted for backups it signed)"), "{stdout}");
    let (stdout, _) = Gm::verify(&home, &after, &key, &[]).expect(0);
    assert!(stdout.contains("signed by backup-signing key") && !stdout.contains("retired"), "{stdout}");
    // Both count for retention (neither is "unverified"), and --latest picks the new one.
    let out = folder.to_str().unwrap();
    let (plan, _) =
        Gm::new(&["managed", "prune", "--home", h, "--dir", out, "--keep-last", "5", "--dry-run", "--json"]).expect(0);
    assert!(!plan.contains("unverified"), "{plan}");
    let (drill, _) = Gm::drill_latest(&home, &folder, &key, &["--json"]).expect(0);
    assert!(drill.contains(after.file_name().unwrap().to_str().unwrap()), "{drill}");

    // Once the old key is no longer listed, what it signed is refused like a foreign signature.
    let delisted = rotated.replace("retired_signing_public_keys = [\"keys/backup-signing.pub\"]\n", "");
    std::fs::write(home.join("gm.toml"), delisted).unwrap();
    let (stdout, _) = Gm::verify(&home, &before, &key, &[]).expect(1);
    assert!(
        stdout.contains("damaged or forged backup: signed by key ") && stdout.contains("not the pinned"),
        "{stdout}"
    );
    Gm::verify(&home, &after, &key, &[]).expect(0);
}
