//! Rotating the backup-signing key: backups signed by the key a rotation retired
//! (`[backup] retired_signing_public_keys`) still verify, drill and count for retention, reported as
//! signed by a retired key; once the old key is no longer listed they are refused like any foreign
//! signature, and new backups are signed by the new key.

use crate::harness::{identity, sandbox, Gm, GmServer, TempDir};

#[test]
fn backups_signed_before_a_rotation_verify_with_the_retired_key_and_only_while_it_is_listed() {
    let dir = TempDir::new("rotation");
    let home = sandbox(&dir);
    drop(GmServer::start(&home, &[]));
    let h = home.to_str().unwrap();
    let (recipient, key) = identity(&dir);
    let k = key.to_str().unwrap();
    let backups = dir.join("backups");
    let out = backups.to_str().unwrap();
    let backup = || {
        let (stdout, _) =
            Gm::new(&["managed", "backup", "--home", h, "--recipient", &recipient, "--output-dir", out, "--json"])
                .expect(0);
        let v = gm::crypto::json::parse_str(&stdout).unwrap();
        v.as_object().unwrap().get("backup_path").and_then(|p| p.as_str()).unwrap().to_string()
    };
    let before = backup();

    // Rotation: a new key signs from now on, the old public key is listed as retired.
    Gm::new(&["keygen", "backup-signing", "--home", h, "--output", "keys/backup-signing-2"]).expect(0);
    let toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    assert!(toml.contains("signing_key = \"keys/backup-signing.key\""), "{toml}");
    let rotated = toml.replace(
        "signing_key = \"keys/backup-signing.key\"",
        "signing_key = \"keys/backup-signing-2.key\"\nretired_signing_public_keys = [\"keys/backup-signing.pub\"]",
    );
    std::fs::write(home.join("gm.toml"), &rotated).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let after = backup();

    let (stdout, _) = Gm::new(&["managed", "verify", &before, "--identity", k, "--home", h]).expect(0);
    assert!(stdout.contains("(a retired key, trusted for backups it signed)"), "{stdout}");
    let (stdout, _) = Gm::new(&["managed", "verify", &after, "--identity", k, "--home", h]).expect(0);
    assert!(stdout.contains("signed by backup-signing key") && !stdout.contains("retired"), "{stdout}");
    // Both count for retention (neither is "unverified"), and --latest picks the new one.
    let (plan, _) =
        Gm::new(&["managed", "prune", "--home", h, "--dir", out, "--keep-last", "5", "--dry-run", "--json"]).expect(0);
    assert!(!plan.contains("unverified"), "{plan}");
    let (drill, _) =
        Gm::new(&["managed", "restore-drill", "--home", h, "--latest", out, "--identity", k, "--json"]).expect(0);
    let name = std::path::Path::new(&after).file_name().unwrap().to_str().unwrap();
    assert!(drill.contains(name), "{drill}");

    // Once the old key is no longer listed, what it signed is refused like a foreign signature.
    std::fs::write(
        home.join("gm.toml"),
        rotated.replace("retired_signing_public_keys = [\"keys/backup-signing.pub\"]\n", ""),
    )
    .unwrap();
    let (stdout, _) = Gm::new(&["managed", "verify", &before, "--identity", k, "--home", h]).expect(1);
    assert!(
        stdout.contains("damaged or forged backup: signed by key ") && stdout.contains("not the pinned"),
        "{stdout}"
    );
    Gm::new(&["managed", "verify", &after, "--identity", k, "--home", h]).expect(0);
}
