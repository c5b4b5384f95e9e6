//! README.md is executable (issue 15, item 2): every ```sh block runs with bash (`set -eo
//! pipefail`, so every command in it must succeed), in order, in one temp folder that holds a
//! `gm quickstart` sandbox (`./gm-sandbox`, served on a free port of 127.0.0.1) and a second
//! sandbox, beta-mesh, for the cross-sovereign examples, with the test build's `gm` first on PATH.
//! Only the placeholders declared in [`placeholders`] are substituted. A block that cannot run here
//! is listed in [`SKIPPED`] with the reason; a block neither run nor listed fails the test, as does
//! a listed block the README no longer has. When an example fails, fix the README, not this test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::harness::{gm_bin, Gm, TempDir};

/// The address the README uses for the sandbox; replaced by the address actually served.
const README_URL: &str = "http://127.0.0.1:8443";

/// The other sovereign of the cross-sovereign examples; replaced by beta-mesh's served address.
const BETA_URL: &str = "http://beta.example:8443";

/// Blocks that are not run, by their first line, and why.
const SKIPPED: [(&str, &str); 6] = [
    (
        "cargo install --path . && gm quickstart",
        "builds and installs a release binary, then serves until Ctrl-C: this test runs the same \
         `gm quickstart` (the test build, on PATH) in its folder, on a free port",
    ),
    ("scripts/test.sh", "runs the whole suite, this test included"),
    (
        "GENESIS_FILE=/etc/genesis/genesis.signed.json",
        "an upstream host's files under /etc and /var/lib, and a server that runs until stopped \
         (tests/it/serve.rs serves from upstream's environment)",
    ),
    (
        "gm probe --na https://na.example.org",
        "an outside host probing a public https NA, with files under /var/lib and /etc/gm-probe \
         (tests/it/probe.rs covers these flags)",
    ),
    (
        "scripts/build-static.sh",
        "a real host: musl release build, sudo install.sh, systemctl (tests/it/packaging.rs runs \
         install.sh --prefix and smoke.sh)",
    ),
    (
        "gm readiness --home /etc/gm",
        "the sign-off on a production host: /etc/gm, a public https target, the customer's operator \
         key (tests/it/readiness.rs)",
    ),
];

/// The block that needs the NA stopped (the README says so); the test stops the sandbox before it
/// and starts it again after.
const NA_STOPPED: &str = "gm managed restore --home gm-sandbox";

/// One ```sh block of a Markdown file.
pub(crate) struct Block {
    /// The line of its opening fence.
    pub line: usize,
    /// Its lines, with the fence's indentation removed.
    pub text: String,
}

impl Block {
    pub(crate) fn first_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }
}

/// The ```sh blocks of `file` (a path inside the repository), in order.
pub(crate) fn sh_blocks(file: &str) -> Vec<Block> {
    let readme = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
    let mut blocks = Vec::new();
    let mut open: Option<(usize, usize, String)> = None;
    for (i, line) in readme.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut open {
            None if trimmed == "```sh" => open = Some((i + 1, indent, String::new())),
            None => {}
            Some((start, _, text)) if trimmed == "```" => {
                blocks.push(Block { line: *start, text: std::mem::take(text) });
                open = None;
            }
            Some((_, indent, text)) => {
                text.push_str(line.get(*indent..).unwrap_or(trimmed));
                text.push('\n');
            }
        }
    }
    assert!(open.is_none(), "{file} has an unclosed ```sh block");
    blocks
}

/// A `gm quickstart` serving `home` (run in `cwd`) on a free port, stopped with SIGTERM on drop.
struct Quickstart {
    child: Child,
    url: String,
}

impl Quickstart {
    fn start(cwd: &Path, home: &str, extra: &[&str]) -> Quickstart {
        let mut cmd = Command::new(gm_bin());
        cmd.args(["quickstart", "--home", home, "--bind", "127.0.0.1:0"]).args(extra).current_dir(cwd).env_clear();
        for keep in ["PATH", "HOME"] {
            if let Ok(v) = std::env::var(keep) {
                cmd.env(keep, v);
            }
        }
        let log = std::fs::File::create(cwd.join(format!("{}.stderr", home.replace('/', "_")))).unwrap();
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::from(log)).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("quickstart said {line:?}"));
        Quickstart { url: addr.to_string(), child }
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Quickstart {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Runs `gm ARGS` in `cwd`, expecting exit 0; returns stdout.
fn gm(cwd: &Path, args: &[&str]) -> String {
    let mut g = Gm::new(args).cwd(cwd);
    for keep in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(keep) {
            g = g.env(keep, &v);
        }
    }
    g.expect(0).0
}

/// The value after `label` on a line of `text` (`invite token: X` → X).
fn after(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in {text}"))
        .trim()
        .to_string()
}

/// The declared placeholders and what the test minted for them, on the sandbox served at `url`.
fn placeholders(work: &Path, url: &str, beta: &Path) -> Vec<(&'static str, String)> {
    let invite = |w: &Path| {
        after(&gm(w, &["admin", "invite", "--na", url, "--home", "gm-sandbox", "--role", "client"]), "invite token:")
    };
    let token = invite(work);
    let node0 = work.join("node0");
    let joined = gm(work, &["join", "--na", url, "--token", &invite(work), "--home", node0.to_str().unwrap()]);
    let cert_id = after(&joined, "certificate ").split_whitespace().next().unwrap().to_string();
    let beta_key = std::fs::read_to_string(beta.join("keys/na.pub")).unwrap();
    let beta_key = beta_key.lines().rfind(|l| !l.starts_with('#') && !l.trim().is_empty()).unwrap().trim().to_string();
    // A treaty of its own for `gm treaty renew <treaty id>`, so the README's beta treaty stays
    // the one active treaty for beta when its feed is imported.
    let gamma = work.join("gamma");
    gm(work, &["keygen", "network-authority", "--output", gamma.to_str().unwrap(), "--key-id", "gamma"]);
    let issued = gm(
        work,
        &[
            "treaty",
            "issue",
            "--na",
            url,
            "--home",
            "gm-sandbox",
            "--subject",
            "gamma-mesh",
            "--subject-public-key",
            gamma.with_extension("pub").to_str().unwrap(),
            "--allowed-role",
            "client",
        ],
    );
    vec![
        ("<token>", token),
        ("<id>", cert_id),
        ("<beta NA key>", beta_key),
        ("<treaty id>", after(&issued, "treaty id:")),
    ]
}

/// Runs `script` (block `block` of `file`, placeholders substituted) with bash in `work`, the test
/// build's `gm` first on PATH; every command must succeed.
pub(crate) fn run_block(work: &Path, file: &str, block: &Block, script: &str) {
    let path =
        format!("{}:{}", Path::new(gm_bin()).parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .args(["-c", &format!("set -eo pipefail\n{script}")])
        .current_dir(work)
        .env_remove("GM_HOME")
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{file} block at line {} failed ({}):\n{script}\nstdout:\n{}\nstderr:\n{}",
        block.line,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_readme_shell_block_runs_against_a_quickstart_sandbox() {
    let blocks = sh_blocks("README.md");
    for (first, _) in SKIPPED {
        let n = blocks.iter().filter(|b| b.first_line().starts_with(first)).count();
        assert_eq!(n, 1, "SKIPPED names {first:?}, which starts {n} README blocks: update the list");
    }
    let dir = TempDir::new("readme");
    let work = dir.join("work");
    let beta_dir = dir.join("beta");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&beta_dir).unwrap();
    // As a user's first run: the sandbox's gm.toml keeps the default 8443; it is served elsewhere.
    gm(&work, &["quickstart", "--no-serve"]);
    let mut na = Quickstart::start(&work, "gm-sandbox", &[]);
    let beta = Quickstart::start(&beta_dir, "beta", &["--network-name", "beta-mesh"]);
    let table = placeholders(&work, &na.url, &beta_dir.join("beta"));
    let mut ran = 0;
    for block in &blocks {
        if SKIPPED.iter().any(|(first, _)| block.first_line().starts_with(first)) {
            continue;
        }
        let stop_first = block.first_line().starts_with(NA_STOPPED);
        if stop_first {
            na.terminate();
        }
        let mut script = block.text.replace(README_URL, &na.url).replace(BETA_URL, &beta.url);
        for (name, value) in &table {
            script = script.replace(name, value);
        }
        assert!(!has_placeholder(&script), "undeclared placeholder in the block at line {}:\n{script}", block.line);
        run_block(&work, "README.md", block, &script);
        if stop_first {
            na = Quickstart::start(&work, "gm-sandbox", &[]);
        }
        ran += 1;
    }
    assert!(ran >= 10, "ran {ran} blocks of {}", blocks.len());
}

/// Whether `script` still holds a `<word …>` placeholder (shell redirections are `> file`).
pub(crate) fn has_placeholder(script: &str) -> bool {
    script
        .split('<')
        .skip(1)
        .any(|rest| rest.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) && rest.contains('>'))
}
