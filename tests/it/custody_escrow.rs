//! `gm custody escrow` and `escrow-check` with real age encryption: the escrow of the NA key
//! decrypts (with the age crate and the stock `age` CLI) to the key file itself, is mode 0600 and
//! never shows the key; no recipient, a passphrase or an existing output is refused; the check
//! passes with the customer's identity, fails with another identity, and fails for a key that is
//! not the genesis NA key.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::harness::{identity, sandbox, Gm, TempDir};

fn escrow(home: &Path, extra: &[&str]) -> Gm {
    Gm::new(&[&["custody", "escrow", "--home", home.to_str().unwrap()], extra].concat())
}

fn check(home: &Path, id: &Path, file: &Path, extra: &[&str]) -> Gm {
    let (h, i, f) = (home.to_str().unwrap(), id.to_str().unwrap(), file.to_str().unwrap());
    Gm::new(&[&["custody", "escrow-check", "--home", h, "--identity", i, f], extra].concat())
}

/// Decrypts an age file in memory with the age crate.
fn open_age(sealed: &[u8], identity: &age::x25519::Identity) -> Vec<u8> {
    let decryptor = age::Decryptor::new(sealed).unwrap();
    let mut reader = decryptor.decrypt(std::iter::once(identity as &dyn age::Identity)).unwrap();
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut plain).unwrap();
    plain
}

/// The base64 seed line of an upstream private key file.
fn seed(key_file: &Path) -> String {
    let text = std::fs::read_to_string(key_file).unwrap();
    text.lines().find(|l| !l.starts_with('#')).unwrap().trim().to_string()
}

#[test]
fn the_escrow_round_trips_to_the_na_key_file_and_never_shows_the_key() {
    let dir = TempDir::new("escrow");
    let home = sandbox(&dir);
    let (recipient, customer) = identity(&dir);
    let out = dir.join("na-key-escrow.age");
    let (stdout, stderr) =
        escrow(&home, &["--recipient", &recipient, "--output", out.to_str().unwrap(), "--json"]).expect(0);
    let na_pub = seed(&home.join("keys/na.pub"));
    let raw = gm::crypto::digest::b64_decode(&na_pub).unwrap();
    let fingerprint = format!("sha256:{}", gm::crypto::digest::sha256_hex(&raw));
    assert_eq!(
        stdout.trim(),
        format!(
            "{{\"file\":\"{}\",\"fingerprint\":\"{fingerprint}\",\"genesis_na_key\":true,\"key_file\":\"{}\",\"key_id\":\"na-local\",\"public_key\":\"{na_pub}\",\"recipients\":[\"{recipient}\"]}}",
            out.display(),
            home.join("keys/na.key").display()
        )
    );
    let secret = seed(&home.join("keys/na.key"));
    assert!(!stdout.contains(&secret) && !stderr.contains(&secret), "no key material printed");
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
    let sealed = std::fs::read(&out).unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains(&secret));

    // The age crate and the stock age CLI both open it to the key file itself.
    let id_text = std::fs::read_to_string(&customer).unwrap();
    let id: age::x25519::Identity = id_text.trim().parse().unwrap();
    let plain = open_age(&sealed, &id);
    assert_eq!(plain, std::fs::read(home.join("keys/na.key")).unwrap());
    let stock = std::process::Command::new("age")
        .args(["-d", "-i", customer.to_str().unwrap(), out.to_str().unwrap()])
        .output()
        .expect("the stock age CLI is installed (scripts/install-test-deps.sh)");
    assert!(stock.status.success());
    assert_eq!(stock.stdout, plain);

    let (stdout, _) = check(&home, &customer, &out, &[]).expect(0);
    assert!(
        stdout.starts_with(&format!("passed: escrow {} holds the NA key of sandbox-mesh\n", out.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "\n  ok   genesis_na_key the NA key of genesis sandbox-mesh ({})",
            home.join("genesis.signed.json").display()
        )),
        "{stdout}"
    );
    assert!(!stdout.contains(&secret));
    // --genesis names the genesis without a home.
    let bare = TempDir::new("escrow-bare");
    let genesis = home.join("genesis.signed.json");
    let (stdout, _) =
        check(bare.path(), &customer, &out, &["--genesis", genesis.to_str().unwrap(), "--json"]).expect(0);
    assert!(
        stdout.contains(&format!("\"fingerprint\":\"{fingerprint}\"")) && stdout.contains("\"ok\":true"),
        "{stdout}"
    );
}

#[test]
fn escrow_refuses_no_recipient_a_passphrase_and_an_existing_output() {
    let dir = TempDir::new("escrow-refuse");
    let home = sandbox(&dir);
    let (recipient, _) = identity(&dir);
    let out = dir.join("escrow.age");
    let o = out.to_str().unwrap();
    let (_, stderr) = escrow(&home, &["--output", o]).expect(2);
    assert_eq!(
        stderr,
        "error: no recipient: the escrow must be encrypted to the customer's age recipient(s)\nhint: give --recipient age1… (repeatable) or --recipients-file FILE with the customer's public key(s)\n"
    );
    std::fs::write(dir.join("pass"), "correct horse\n").unwrap();
    let (_, stderr) =
        escrow(&home, &["--output", o, "--passphrase-file", dir.join("pass").to_str().unwrap()]).expect(2);
    assert!(
        stderr.starts_with(
            "error: gm custody escrow encrypts to the customer's age recipients only, not to a passphrase\n"
        ),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing written");
    escrow(&home, &["--output", o, "--recipient", &recipient]).expect(0);
    let before = std::fs::read(&out).unwrap();
    let (_, stderr) = escrow(&home, &["--output", o, "--recipient", &recipient]).expect(2);
    assert_eq!(
        stderr,
        format!("error: refusing to overwrite existing file {o}\nhint: choose another --output: an escrow is never replaced (remove the old one only once the customer has checked the new one)\n")
    );
    assert_eq!(std::fs::read(&out).unwrap(), before);
    assert!(!dir.join("escrow.age.tmp").exists());
}

#[test]
fn escrow_check_fails_with_another_identity_and_for_a_key_that_is_not_the_genesis_na_key() {
    let dir = TempDir::new("escrow-check");
    let home = sandbox(&dir);
    let (recipient, customer) = identity(&dir);
    let out = dir.join("escrow.age");
    escrow(&home, &["--recipient", &recipient, "--output", out.to_str().unwrap()]).expect(0);
    let other_dir = TempDir::new("escrow-other-id");
    let (_, other) = identity(&other_dir);
    let (stdout, _) = check(&home, &other, &out, &[]).expect(1);
    assert_eq!(
        stdout,
        format!(
            "FAILED: escrow {} does not hold the NA key of sandbox-mesh\n  FAIL decrypt        cannot decrypt with the given identity: No matching keys found\n",
            out.display()
        )
    );

    // The root key escrowed by mistake: warned at escrow time, refused by the check.
    let root = dir.join("root-escrow.age");
    let (stdout, stderr) = escrow(
        &home,
        &[
            "--key",
            home.join("offline/root.key").to_str().unwrap(),
            "--recipient",
            &recipient,
            "--output",
            root.to_str().unwrap(),
            "--json",
        ],
    )
    .expect(0);
    assert!(stdout.contains("\"genesis_na_key\":false"), "{stdout}");
    assert!(stderr.contains("is not the NA key of the genesis"), "{stderr}");
    let (stdout, _) = check(&home, &customer, &root, &["--json"]).expect(1);
    assert!(stdout.contains("\"ok\":false"), "{stdout}");
    assert!(stdout.contains("\"name\":\"key\",\"ok\":true"), "{stdout}");
    assert!(stdout.contains("not this key\",\"name\":\"genesis_na_key\",\"ok\":false"), "{stdout}");
    assert!(!stdout.contains(&seed(&home.join("offline/root.key"))));
}
