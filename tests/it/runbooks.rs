//! The runbooks' command blocks run on a host layout (issue 15, item 2): every ```sh block of every
//! file in `docs/runbooks/` runs with bash (`set -eo pipefail`), in order, against a fresh layout
//! that `scripts/install.sh --prefix` stages (one per runbook: each incident starts on its own
//! host), with a sovereign's files in it, served by `gm serve`. A block that cannot run on such a
//! host is listed in [`SKIPPED`] with the reason; a listed block the runbooks no longer have fails.
//!
//! The host is set up as the runbooks assume (see [`host`]): one backup taken, the operator
//! alice-2026 holding `~/.gm/operator.key` (HOME is a temp folder), the root ceremony's `offline/`
//! in the working folder, `/etc/gm/incident-recipients.txt`, and a treaty for beta-mesh. The
//! declared placeholders ([`substitute`]) are the host paths `/etc/gm` and `/var/lib/gm`, the NA's
//! URLs, `backup.key`, the example archive names, the example treaty id and `<feed id>`. When a
//! command fails, fix the runbook, not this test.

use std::path::{Path, PathBuf};

use crate::default_jobs::{install_layout, serve_and_point_bind_at_it, Layout};
use crate::harness::{Gm, GmServer, TempDir};
use crate::readme::{has_placeholder, run_block, sh_blocks};

/// Blocks that are not run, by runbook and first line, and why.
const SKIPPED: [(&str, &str, &str); 11] = [
    (
        "bad-revocation-feed.md",
        "gm feed export --na https://beta.example.org",
        "another sovereign, beta, at a public https address (the README's cross-sovereign block runs \
         feed export and import against a second sandbox)",
    ),
    (
        "bad-treaty.md",
        "curl -s https://beta.example.org/genesis",
        "another sovereign, beta, at a public https address, and its root key from the customer",
    ),
    ("db-failures.md", "systemctl status gm-na", "systemd and its journal on a real host"),
    (
        "na-key-compromise.md",
        "gm genesis verify --home /etc/gm && gm genesis show --home /etc/gm",
        "starts the unit with systemctl after the new genesis is installed on a real host",
    ),
    (
        "na-key-rotation.md",
        "install -m 0644 genesis-renewed.signed.json",
        "restarts the unit with systemctl on a real host",
    ),
    ("na-key-rotation.md", "gm treaty replace <their treaty id>", "another sovereign, beta, at a public https address"),
    (
        "na-key-rotation.md",
        "systemctl stop gm-na",
        "stops and starts the unit with systemctl and encrypts a systemd credential on a real host",
    ),
    (
        "na-key-rotation.md",
        "gm treaty issue --na https://na.example.org --operator-key",
        "signs with the new NA key, which the test host's NA (still on its first genesis) does not name; \
         tests/it/offline_signing.rs runs the round trip",
    ),
    (
        "operator-key-compromise.md",
        "gm operator add --home /etc/gm --key-id alice-2026b",
        "ends with systemctl reload on a real host (tests/it/operators.rs covers add, retire and the reload)",
    ),
    (
        "operator-key-compromise.md",
        "gm admin policy history --na https://na.example.org",
        "shows a refusal (exit 1) before the new key works, after the previous block's rotation",
    ),
    (
        "revocation-blast-radius.md",
        "gm feed export --na http://127.0.0.1:8443",
        "ends by asking another sovereign, beta, at a public https address",
    ),
];

/// The example treaty id of bad-treaty.md; replaced by the beta-mesh treaty the host holds.
const EXAMPLE_TREATY: &str = "1ede1147-34d3-4354-bc35-7b297a397050";

/// One runbook's host: the layout, its NA, and what the runbooks take for granted.
struct Host {
    layout: Layout,
    server: Option<GmServer>,
    work: PathBuf,
    home: PathBuf,
    treaty: String,
}

/// Sets up the host a runbook assumes (module docs) in `dir`.
fn host(dir: &TempDir) -> Host {
    let layout = install_layout(dir);
    let server = serve_and_point_bind_at_it(&layout.etc);
    let etc = layout.etc.to_str().unwrap().to_string();
    std::fs::copy(layout.etc.join("backup-recipients.txt"), layout.etc.join("incident-recipients.txt")).unwrap();
    Gm::new(&["cron", "run-once", "backup", "--home", &etc]).expect(0);
    let work = dir.join("work");
    let home = dir.join("home");
    std::fs::create_dir_all(work.join("offline")).unwrap();
    std::fs::create_dir_all(home.join(".gm")).unwrap();
    for file in ["root.key", "root.pub"] {
        std::fs::copy(layout.sandbox.join("offline").join(file), work.join("offline").join(file)).unwrap();
    }
    let alice = home.join(".gm/operator");
    Gm::new(&["keygen", "operator", "--output", alice.to_str().unwrap(), "--key-id", "alice-2026"]).expect(0);
    let alice_pub = alice.with_extension("pub");
    Gm::new(&[
        "operator",
        "add",
        "--home",
        &etc,
        "--key-id",
        "alice-2026",
        "--public-key",
        alice_pub.to_str().unwrap(),
    ])
    .expect(0);
    let beta = dir.join("beta-na");
    Gm::new(&["keygen", "network-authority", "--output", beta.to_str().unwrap(), "--key-id", "beta"]).expect(0);
    let url = format!("http://{}", server.addr);
    let (issued, _) = Gm::new(&[
        "treaty",
        "issue",
        "--na",
        &url,
        "--operator-key",
        alice.with_extension("key").to_str().unwrap(),
        "--operator-key-id",
        "alice-2026",
        "--subject",
        "beta-mesh",
        "--subject-public-key",
        beta.with_extension("pub").to_str().unwrap(),
        "--allowed-role",
        "client",
    ])
    .expect(0);
    let treaty = issued.lines().find_map(|l| l.strip_prefix("treaty id:")).unwrap().trim().to_string();
    Host { layout, server: Some(server), work, home, treaty }
}

/// Replaces every `gm-acme-….tar.gz.age` example name in `script` with `archive`.
fn replace_example_archives(script: &str, archive: &str) -> String {
    let mut out = String::new();
    let mut rest = script;
    while let Some(start) = rest.find("gm-acme-") {
        let Some(len) = rest[start..].find(".tar.gz.age") else { break };
        out.push_str(&rest[..start]);
        out.push_str(archive);
        rest = &rest[start + len + ".tar.gz.age".len()..];
    }
    out.push_str(rest);
    out
}

/// Replaces the host path `from` (not `/etc/gm-probe`: the next character ends the name) with `to`.
fn replace_path(script: &str, from: &str, to: &Path) -> String {
    let mut out = String::new();
    let mut rest = script;
    while let Some(start) = rest.find(from) {
        let end = start + from.len();
        let next = rest[end..].chars().next();
        out.push_str(&rest[..start]);
        if next.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_') {
            out.push_str(from);
        } else {
            out.push_str(&to.display().to_string());
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The declared placeholders of a runbook block, filled in for `host`.
fn substitute(block: &str, host: &Host) -> String {
    let url = format!("http://{}", host.server.as_ref().map_or("127.0.0.1:1".to_string(), |s| s.addr.to_string()));
    let mut archives: Vec<String> = std::fs::read_dir(host.layout.var.join("backups"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".tar.gz.age"))
        .collect();
    archives.sort();
    let script = replace_example_archives(block, archives.last().unwrap());
    replace_path(&replace_path(&script, "/etc/gm", &host.layout.etc), "/var/lib/gm", &host.layout.var)
        .replace("https://na.example.org", &url)
        .replace("http://127.0.0.1:8443", &url)
        .replace("--identity backup.key", &format!("--identity {}", host.layout.identity.display()))
        .replace(EXAMPLE_TREATY, &host.treaty)
        .replace("<feed id>", "feed-none")
}

fn runbooks() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/runbooks"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".md"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_runbook_block_runs_on_an_install_sh_layout() {
    let files = runbooks();
    for (file, first, _) in SKIPPED {
        let n =
            sh_blocks(&format!("docs/runbooks/{file}")).iter().filter(|b| b.first_line().starts_with(first)).count();
        assert_eq!(n, 1, "SKIPPED names {first:?} in {file}, which starts {n} blocks: update the list");
    }
    let mut ran = 0;
    for file in &files {
        let path = format!("docs/runbooks/{file}");
        let dir = TempDir::new("runbook");
        let mut host = host(&dir);
        for block in sh_blocks(&path) {
            if SKIPPED.iter().any(|(f, first, _)| f == file && block.first_line().starts_with(first)) {
                continue;
            }
            // Restoring needs the NA stopped (db-restore.md, "Restore", step 1).
            if block.first_line().starts_with("gm managed restore --home") {
                drop(host.server.take());
            }
            let script = substitute(&block.text, &host);
            assert!(!has_placeholder(&script), "undeclared placeholder in {path} at line {}:\n{script}", block.line);
            run_in(&host.work, &host.home, &path, &block, &script);
            ran += 1;
        }
    }
    assert!(ran >= 20, "ran {ran} runbook blocks");
}

/// Runs a block in `work` with HOME = `home` (where `~/.gm/operator.key` is).
fn run_in(work: &Path, home: &Path, path: &str, block: &crate::readme::Block, script: &str) {
    let script = format!("export HOME={}\n{script}", home.display());
    run_block(work, path, block, &script);
}
