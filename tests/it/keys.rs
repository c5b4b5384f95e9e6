//! Key files, `gm sign` / `gm verify` and `gm genesis` through the real binary: exact files, modes,
//! refusals that leave files untouched, and errors that name the file and the problem.

use std::os::unix::fs::PermissionsExt;

use crate::harness::{Gm, TempDir};
use crate::vectors::{list, load, s};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn keygen_writes_upstream_files_private_key_0600() {
    let dir = TempDir::new("keygen");
    let prefix = dir.join("keys/op");
    let (stdout, _) =
        Gm::new(&["keygen", "operator", "--output", prefix.to_str().unwrap(), "--key-id", "alice", "--json"]).expect(0);
    let key = std::fs::read_to_string(dir.join("keys/op.key")).unwrap();
    let public = std::fs::read_to_string(dir.join("keys/op.pub")).unwrap();
    assert!(key.starts_with("# Ed25519 Private Key\n# Key ID: alice\n"), "{key}");
    assert!(public.starts_with("# Ed25519 Public Key\n# Key ID: alice\n"), "{public}");
    assert_eq!(key.lines().count(), 3);
    assert_eq!(mode(&dir.join("keys/op.key")), 0o600);
    let shown = gm::crypto::keys::load_public_key(&dir.join("keys/op.pub")).unwrap().to_b64();
    assert!(stdout.contains(&format!("\"public_key\":\"{shown}\"")), "{stdout}");
    assert!(!stdout.contains(key.lines().nth(2).unwrap()), "the private seed must never be printed");
}

#[test]
fn keygen_refuses_to_overwrite_without_force() {
    let dir = TempDir::new("keygen-force");
    let prefix = dir.join("na");
    let p = prefix.to_str().unwrap();
    Gm::new(&["keygen", "network-authority", "--output", p]).expect(0);
    let before = std::fs::read(dir.join("na.key")).unwrap();
    let (_, stderr) = Gm::new(&["keygen", "network-authority", "--output", p]).expect(2);
    assert_eq!(
        stderr,
        format!(
            "error: refusing to overwrite existing file {}/na.key\nhint: pass --force to replace it, or choose another path\n",
            dir.path().display()
        )
    );
    assert_eq!(std::fs::read(dir.join("na.key")).unwrap(), before);
    Gm::new(&["keygen", "network-authority", "--output", p, "--force"]).expect(0);
    assert_ne!(std::fs::read(dir.join("na.key")).unwrap(), before);
}

#[test]
fn keygen_rejects_unknown_role() {
    let dir = TempDir::new("keygen-role");
    let (_, stderr) = Gm::new(&["keygen", "admin", "--output", dir.join("x").to_str().unwrap()]).expect(2);
    assert!(
        stderr.starts_with(
            "error: unknown key role \"admin\"\nhint: choose one of: root, network-authority, operator, node"
        ),
        "{stderr}"
    );
    assert!(!dir.join("x.key").exists());
}

fn write(dir: &TempDir, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn malformed_key_files_are_rejected_with_file_and_problem() {
    let dir = TempDir::new("badkeys");
    let obj = write(&dir, "obj.json", "{\"crl_id\":\"x\",\"sequence\":0,\"issued_at\":\"2026-01-01T00:00:00Z\",\"next_update\":\"2026-01-02T00:00:00Z\",\"issuer\":\"na\"}");
    let cases = [
        ("short.key", "# Ed25519 Private Key\nAAAA\n", "expected a base64 32-byte Ed25519 key, found 3 bytes"),
        ("garbage.key", "# Ed25519 Private Key\nnot base64 at all!\n", "the key line is not standard padded base64"),
        ("empty.key", "# Ed25519 Private Key\n", "no key line found (only comments or blank lines)"),
        ("public.key", "# Ed25519 Public Key\n9Ci7Uk+4W6QaaxfxQsGKjQkBFVrjVaYgGUJiWSm66IQ=\n", "expected an Ed25519 private key file, found a public key file"),
        ("long.key", "# Ed25519 Private Key\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n", "found 64 bytes"),
    ];
    for (name, text, problem) in cases {
        let path = write(&dir, name, text);
        let (_, stderr) = Gm::new(&["sign", "--key", &path, "--key-id", "k", &obj]).expect(2);
        assert!(stderr.starts_with(&format!("error: cannot load key file {path}: ")), "{name}: {stderr}");
        assert!(stderr.contains(problem), "{name}: {stderr}");
        assert!(stderr.contains("hint: key files are written by `gm keygen`"), "{name}: {stderr}");
    }
    let (_, stderr) =
        Gm::new(&["sign", "--key", &dir.join("missing.key").display().to_string(), "--key-id", "k", &obj]).expect(2);
    assert!(stderr.starts_with("error: cannot read key file"), "{stderr}");
}

#[test]
fn sign_and_verify_round_trip_every_kind_with_vector_keys() {
    let dir = TempDir::new("signverify");
    let keys = load("keys.json");
    let na = list(&keys, "keys").iter().find(|k| s(k, "name") == "na").unwrap();
    let key = write(&dir, "na.key", s(na, "private_key_file"));
    let public = write(&dir, "na.pub", s(na, "public_key_file"));
    let objects = load("canonical.json");
    for case in list(&objects, "model_cases") {
        let id = s(case, "id");
        let input = write(&dir, &format!("{id}.json"), s(case, "input_json"));
        let out = dir.join(&format!("{id}.signed.json"));
        Gm::new(&["sign", "--key", &key, "--key-id", "na-2025-q1", &input, "--output", out.to_str().unwrap()])
            .expect(0);
        let kind = match s(case, "model") {
            "GenesisBlock" => "genesis",
            _ => "",
        };
        let mut args = vec!["verify", "--public-key", &public, out.to_str().unwrap(), "--json"];
        if !kind.is_empty() {
            args.extend(["--kind", kind]);
        }
        let (stdout, _) = Gm::new(&args).expect(0);
        assert!(stdout.contains("\"valid\":true"), "{id}: {stdout}");
        // The canonical bytes that were signed are exactly upstream's.
        assert!(stdout.contains(s(case, "canonical_sha256")), "{id}: {stdout}");
    }
}

#[test]
fn verify_reports_invalid_with_reason_and_exit_1() {
    let dir = TempDir::new("verify-bad");
    let v = load("signed-objects.json");
    let keys = load("keys.json");
    let na = list(&keys, "keys").iter().find(|k| s(k, "name") == "na").unwrap();
    let public = write(&dir, "na.pub", s(na, "public_key_file"));
    let vector = list(&v, "vectors").iter().find(|x| s(x, "id") == "crl/empty-tampered-sequence").unwrap();
    let text = gm::crypto::canonical::canonical_string(vector.as_object().unwrap().get("signed").unwrap());
    let file = write(&dir, "crl.json", &text);
    let (stdout, _) = Gm::new(&["verify", "--public-key", &public, &file]).expect(1);
    assert_eq!(
        stdout,
        format!("invalid: crl {file}: the first signature does not verify with the given key (this kind checks only signatures[0])\n")
    );
}

#[test]
fn genesis_ceremony_create_sign_verify_show() {
    let dir = TempDir::new("ceremony");
    let d = dir.path().to_str().unwrap();
    Gm::new(&["keygen", "root", "--output", &format!("{d}/root")]).expect(0);
    Gm::new(&["keygen", "network-authority", "--output", &format!("{d}/na")]).expect(0);
    Gm::new(&["keygen", "root", "--output", &format!("{d}/other"), "--key-id", "other"]).expect(0);
    let (_, stderr) = Gm::new(&[
        "genesis",
        "create",
        "--network-name",
        "acme-mesh",
        "--root-public-key",
        &format!("{d}/root.pub"),
        "--na-public-key",
        &format!("{d}/na.pub"),
        "--anchor",
        "anchor-1:127.0.0.1:9000",
        "--output",
        &format!("{d}/genesis.json"),
    ])
    .expect(0);
    assert!(stderr.contains("warning: policy_manifest.hash is the placeholder"), "{stderr}");
    let (stdout, _) = Gm::new(&["genesis", "verify", "--genesis", &format!("{d}/genesis.json")]).expect(1);
    assert!(stdout.contains("the object carries no signatures"), "{stdout}");
    let (_, stderr) = Gm::new(&[
        "genesis",
        "sign",
        "--genesis",
        &format!("{d}/genesis.json"),
        "--root-key",
        &format!("{d}/other.key"),
        "--output",
        &format!("{d}/bad.json"),
    ])
    .expect(2);
    assert!(stderr.contains("does not match the genesis root_public_key"), "{stderr}");
    assert!(!dir.join("bad.json").exists());
    Gm::new(&[
        "genesis",
        "sign",
        "--genesis",
        &format!("{d}/genesis.json"),
        "--root-key",
        &format!("{d}/root.key"),
        "--key-id",
        "rs-2025-q1",
        "--output",
        &format!("{d}/genesis.signed.json"),
    ])
    .expect(0);
    let (stdout, _) =
        Gm::new(&["genesis", "verify", "--genesis", &format!("{d}/genesis.signed.json"), "--json"]).expect(0);
    assert!(stdout.contains("\"valid\":true") && stdout.contains("\"signature_count\":1"), "{stdout}");
    let (stdout, _) = Gm::new(&["genesis", "show", "--genesis", &format!("{d}/genesis.signed.json")]).expect(0);
    assert!(
        stdout.contains("network:        acme-mesh v0.1") && stdout.contains("anchor-1=127.0.0.1:9000"),
        "{stdout}"
    );
    // Tampering after signing is detected.
    let signed = std::fs::read_to_string(dir.join("genesis.signed.json")).unwrap();
    std::fs::write(dir.join("tampered.json"), signed.replace("acme-mesh", "evil-mesh")).unwrap();
    let (stdout, _) = Gm::new(&["genesis", "verify", "--genesis", &format!("{d}/tampered.json")]).expect(1);
    assert!(stdout.contains("signature 1 of 1 does not verify"), "{stdout}");
}

#[test]
fn upstream_genesis_vector_verifies_in_gm_cli() {
    let dir = TempDir::new("upstream-genesis");
    let v = load("signed-objects.json");
    let vector = list(&v, "vectors").iter().find(|x| s(x, "id") == "genesis/valid").unwrap();
    let text = gm::crypto::canonical::to_pretty_string(vector.as_object().unwrap().get("signed").unwrap());
    let file = write(&dir, "genesis.signed.json", &text);
    let (stdout, _) = Gm::new(&["genesis", "verify", "--genesis", &file]).expect(0);
    assert!(stdout.starts_with("valid: genesis alpha-mesh"), "{stdout}");
}

#[test]
fn home_supplies_default_key_key_id_and_genesis() {
    let dir = TempDir::new("home-defaults");
    let home = crate::harness::sandbox(&dir);
    let h = home.to_str().unwrap();
    let obj = write(&dir, "policy.json", "{\"policy_id\":\"p-1\",\"issued_at\":\"2026-01-01T00:00:00Z\",\"issued_by\":\"na-local\",\"min_client_version\":\"0.1.0\"}");
    let (signed, _) = Gm::new(&["sign", "--home", h, &obj]).expect(0);
    assert!(signed.contains("\"key_id\": \"na-local\""), "key id comes from gm.toml: {signed}");
    let signed_file = write(&dir, "policy.signed.json", &signed);
    let (stdout, _) = Gm::new(&["verify", "--home", h, &signed_file]).expect(0);
    assert!(stdout.starts_with("valid: policy"), "{stdout}");
    let (stdout, _) = Gm::new(&["genesis", "verify", "--home", h]).expect(0);
    assert!(stdout.starts_with("valid: genesis sandbox-mesh"), "{stdout}");
    let (stdout, _) = Gm::new(&["genesis", "show"]).env("GM_HOME", h).expect(0);
    assert!(stdout.contains("network:        sandbox-mesh v0.1"), "{stdout}");
    // Without --public-key a genesis is checked against its own root key, as upstream does.
    let (stdout, _) = Gm::new(&["verify", &format!("{h}/genesis.signed.json")]).expect(0);
    assert!(stdout.starts_with("valid: genesis"), "{stdout}");
}
