//! `gm signer run|init|log` as the customer runs them: the checks before the signer dials (the key
//! must be the genesis' NA key, the policy must read, the state dir must be private), a clean exit
//! on SIGTERM, the policy template, and the signing log's chain check. The protocol exchanges
//! themselves (signing, refusals, the CRL floor across a restart, a wrong pinned host key) are
//! tested against a test NA end in `src/signer/daemon_tests.rs`, where `wire::na_handshake` is.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gm::crypto::digest::sha256_hex;

use crate::harness::{gm_bin, sandbox, wait_until, Gm, TempDir};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A sandbox home, its policy (from the template, for its network) and a state dir path.
fn setup(dir: &TempDir) -> (PathBuf, PathBuf, PathBuf) {
    let home = sandbox(dir);
    let policy = dir.join("signer-policy.toml");
    Gm::new(&["signer", "init", "--policy", s(&policy), "--genesis", s(&home.join("genesis.signed.json"))]).expect(0);
    (home, policy, dir.join("state"))
}

fn run_args<'a>(home: &'a Path, key: &'a Path, policy: &'a Path, state: &'a Path, connect: &'a str) -> Vec<String> {
    [
        "signer",
        "run",
        "--key",
        s(key),
        "--genesis",
        s(&home.join("genesis.signed.json")),
        "--connect",
        connect,
        "--na-host-key",
        s(&home.join("keys/na.pub")),
        "--policy",
        s(policy),
        "--state-dir",
        s(state),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

fn gm(args: &[String]) -> Gm {
    Gm::new(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn signer_init_writes_the_template_for_the_genesis_network_and_never_overwrites() {
    let dir = TempDir::new("signer-init");
    let (_, policy, _) = setup(&dir);
    let text = std::fs::read_to_string(&policy).unwrap();
    assert!(text.contains("\nnetwork_name = \"sandbox-mesh\"\n"), "{text}");
    assert!(text.contains("\nauto_sign = [\"cert\", \"crl\", \"policy\", \"attestation\", \"feed\"]\n"), "{text}");
    let (_, stderr) = Gm::new(&["signer", "init", "--policy", s(&policy)]).expect(2);
    assert_eq!(
        stderr,
        format!(
            "error: {} exists; gm signer init never overwrites a policy\nhint: edit it, or choose another --policy path\n",
            policy.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&policy).unwrap(), text);
}

#[test]
fn signer_run_refuses_to_start_with_a_key_that_is_not_the_genesis_na_key() {
    let dir = TempDir::new("signer-wrong-key");
    let (home, policy, state) = setup(&dir);
    let root = home.join("offline/root.key");
    let (_, stderr) = gm(&run_args(&home, &root, &policy, &state, "127.0.0.1:9")).expect(2);
    assert!(stderr.contains(") is not the NA key of the genesis "), "{stderr}");
    assert!(
        stderr.contains("hint: pass the NA private key whose public half is the genesis' network_authority.public_key")
    );
    assert!(!state.exists(), "nothing is created before the inputs check out");
    // A genesis whose root signature does not verify (here: stripped) is refused as well.
    let text = std::fs::read_to_string(home.join("genesis.signed.json")).unwrap();
    let v = gm::json::parse_str(&text).unwrap();
    let mut m = v.as_object().unwrap().clone();
    m.insert("signatures", gm::json::Value::Array(Vec::new()));
    std::fs::write(
        home.join("genesis.signed.json"),
        gm::crypto::canonical::canonical_string(&gm::json::Value::Object(m)),
    )
    .unwrap();
    let key = home.join("keys/na.key");
    let (_, stderr) = gm(&run_args(&home, &key, &policy, &state, "127.0.0.1:9")).expect(2);
    assert!(stderr.contains("does not carry a valid root signature"), "{stderr}");
}

#[test]
fn signer_run_refuses_to_start_without_a_valid_policy_or_a_private_state_dir() {
    let dir = TempDir::new("signer-refusals");
    let (home, policy, state) = setup(&dir);
    let key = home.join("keys/na.key");
    let missing = dir.join("missing.toml");
    let (_, stderr) = gm(&run_args(&home, &key, &missing, &state, "127.0.0.1:9")).expect(2);
    assert!(stderr.starts_with(&format!("error: cannot read the policy {}: ", missing.display())), "{stderr}");
    assert!(
        stderr.contains(&format!("hint: gm signer init --policy {} writes a commented template", missing.display()))
    );

    let loose = dir.join("loose.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(&loose, format!("{text}\nsign_everything = true\n")).unwrap();
    let (_, stderr) = gm(&run_args(&home, &key, &loose, &state, "127.0.0.1:9")).expect(2);
    assert!(stderr.contains("is invalid: ") && stderr.contains("sign_everything"), "{stderr}");

    let other = dir.join("other.toml");
    std::fs::write(&other, text.replace("network_name = \"sandbox-mesh\"", "network_name = \"other\"")).unwrap();
    let (_, stderr) = gm(&run_args(&home, &key, &other, &state, "127.0.0.1:9")).expect(2);
    assert!(stderr.contains("is for network \"other\", the genesis for \"sandbox-mesh\""), "{stderr}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o750)).unwrap();
        let (_, stderr) = gm(&run_args(&home, &key, &policy, &state, "127.0.0.1:9")).expect(2);
        assert!(
            stderr.contains(&format!(
                "the state dir {} is mode 750: group and others must have no access",
                state.display()
            )),
            "{stderr}"
        );
    }
}

#[test]
fn signer_run_retries_an_unreachable_na_and_exits_0_on_sigterm() {
    let dir = TempDir::new("signer-sigterm");
    let (home, policy, state) = setup(&dir);
    let key = home.join("keys/na.key");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let connect = format!("127.0.0.1:{port}");
    let stderr_log = dir.join("signer.log");
    let mut child = Command::new(gm_bin())
        .args(run_args(&home, &key, &policy, &state, &connect))
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&stderr_log).unwrap()))
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&stderr_log).unwrap_or_default();
    assert!(wait_until(Duration::from_secs(10), || log().contains("retrying in")), "{}", log());
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "gm signer run did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{}", log());
    let text = log();
    // One line per session for the failure, however many retries happened.
    assert_eq!(text.matches("Connection refused").count(), 4, "{text}");
    assert!(text.contains("stopped: every session closed"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}

/// Writes a well-chained log of `n` entries, one a day from 2026-12-01.
fn write_log(state: &Path, n: usize) -> Vec<String> {
    std::fs::create_dir_all(state).unwrap();
    let mut prev = "0".repeat(64);
    let mut lines = Vec::new();
    for i in 0..n {
        let (decision, reason) = if i == 1 {
            ("refused", r#""role \"role:operator\" is not in allowed_roles""#)
        } else {
            ("signed", "null")
        };
        let line = format!(
            r#"{{"at":"2026-12-0{}T10:00:00.000000Z","decision":"{decision}","kind":"cert","object_id":"cert-{i}","sequence":null,"object_sha256":"{}","purpose":"join","request_id":"r{i}","session":"0011223344556677","request":{},"reason":{reason},"prev":"{prev}"}}"#,
            i + 1,
            sha256_hex(format!("object {i}").as_bytes()),
            i + 1
        );
        prev = sha256_hex(line.as_bytes());
        lines.push(line);
    }
    std::fs::write(state.join("signing-log.jsonl"), lines.join("\n") + "\n").unwrap();
    lines
}

#[test]
fn signer_log_verifies_the_chain_exports_it_and_names_the_first_broken_line() {
    let dir = TempDir::new("signer-log");
    let state = dir.join("state");
    let lines = write_log(&state, 3);
    let (stdout, _) = Gm::new(&["signer", "log", "--state-dir", s(&state)]).expect(0);
    assert!(stdout.starts_with("AT "), "{stdout}");
    assert!(stdout.contains("refused   cert         cert-1"), "{stdout}");
    assert!(stdout.contains("role \"role:operator\" is not in allowed_roles"), "{stdout}");
    assert!(stdout.ends_with(&format!("chain verified: 3 entries, head sha256 {}\n", sha256_hex(lines[2].as_bytes()))));

    let (stdout, stderr) =
        Gm::new(&["signer", "log", "--state-dir", s(&state), "--json", "--since", "2026-12-02T00:00:00Z"]).expect(0);
    let entries: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let ids: Vec<&str> = entries.as_array().unwrap().iter().map(|e| e["object_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["cert-1", "cert-2"]);
    assert!(stderr.starts_with("chain verified: 3 entries"), "{stderr}");

    // Turning the refusal into a signature breaks the chain at the next line.
    let tampered = lines.join("\n").replacen("\"refused\"", "\"signed\"", 1) + "\n";
    std::fs::write(state.join("signing-log.jsonl"), tampered).unwrap();
    let (_, stderr) = Gm::new(&["signer", "log", "--state-dir", s(&state)]).expect(1);
    assert!(
        stderr.starts_with(&format!(
            "error: the signing log {} is broken at line 3: prev is ",
            state.join("signing-log.jsonl").display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("(a line was edited, removed or inserted)"), "{stderr}");
}
