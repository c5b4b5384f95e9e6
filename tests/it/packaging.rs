//! Packaging: the units in `systemd/` pass `systemd-analyze verify` with nothing to say, gm-na.service
//! scores an exposure of at most 2.5 in `systemd-analyze security` and stops within its scheduler's
//! grace, gm-probe.service scores at most 2.0 with no default target and no secret on its command
//! line, `scripts/install.sh` lays out the install tree with the right modes and changes nothing on
//! a second run, and `scripts/smoke.sh` passes against a real `gm serve` and fails against a dead
//! port.
//!
//! systemd-analyze comes from the Debian package systemd (.ci/run installs it when missing). It
//! works without systemd running as PID 1: `verify` loads the unit files themselves, and
//! `security --offline=true` (systemd 252 and later) scores a unit file without a running manager.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::{gm_bin, sandbox, GmServer, TempDir};

/// Where the units point ExecStart; the tests rewrite it to the binary under test.
const INSTALLED_GM: &str = "/usr/local/bin/gm";

/// The exposure target for gm-na.service (issue 7).
const MAX_EXPOSURE: f64 = 2.5;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every unit file in `systemd/`, sorted.
fn unit_files() -> Vec<PathBuf> {
    let mut units: Vec<PathBuf> = std::fs::read_dir(repo().join("systemd"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("service" | "timer")))
        .collect();
    units.sort();
    assert!(units.iter().any(|u| u.ends_with("gm-na.service")), "systemd/gm-na.service is missing: {units:?}");
    units
}

/// Copies the units into `dir` with ExecStart pointing at the binary under test, so verify checks
/// a binary that exists instead of complaining about /usr/local/bin/gm on a build machine.
fn units_with_test_binary(dir: &TempDir) -> Vec<PathBuf> {
    unit_files()
        .iter()
        .map(|unit| {
            let text = std::fs::read_to_string(unit).unwrap();
            let copy = dir.path().join(unit.file_name().unwrap());
            std::fs::write(&copy, text.replace(INSTALLED_GM, gm_bin())).unwrap();
            copy
        })
        .collect()
}

fn systemd_analyze(args: &[&str], units: &[PathBuf]) -> Output {
    match Command::new("systemd-analyze").args(args).args(units).env("SYSTEMD_LOG_COLOR", "0").output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run systemd-analyze ({e}): install the Debian package systemd (.ci/run does)"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

#[test]
fn every_unit_passes_systemd_analyze_verify_without_a_warning() {
    let dir = TempDir::new("verify");
    let units = units_with_test_binary(&dir);
    let out = systemd_analyze(&["verify", "--man=no"], &units);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "systemd-analyze verify failed:\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(format!("{stdout}{stderr}"), "", "systemd-analyze verify has something to say about {units:?}");
}

#[test]
fn the_shipped_units_differ_from_the_verified_copies_only_by_the_binary_path() {
    // The honest check of the rewrite above: on the unit files as shipped, verify's only complaint
    // (on a machine without /usr/local/bin/gm) is that binary, one line per unit that runs it.
    let units = unit_files();
    let out = systemd_analyze(&["verify", "--man=no"], &units);
    let stderr = text(&out.stderr);
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.ends_with(&format!("Command {INSTALLED_GM} is not executable: No such file or directory")),
            "unexpected systemd-analyze verify output on the shipped units: {line:?}\nstderr:\n{stderr}"
        );
    }
    assert_eq!(text(&out.stdout), "");
}

/// The overall exposure `systemd-analyze security --offline=true` gives the unit `name`.
fn exposure(name: &str) -> f64 {
    let dir = TempDir::new("security");
    let unit = units_with_test_binary(&dir).into_iter().find(|u| u.ends_with(name)).unwrap();
    let out = systemd_analyze(&["security", "--offline=true", "--no-pager"], &[unit]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    if stderr.contains("offline") && !out.status.success() {
        panic!(
            "this systemd-analyze cannot score a unit file offline (needs systemd 252 or later, Debian 12 has it), \
             so {name}'s exposure was NOT measured:\n{stderr}"
        );
    }
    assert!(out.status.success(), "systemd-analyze security failed:\nstdout:\n{stdout}\nstderr:\n{stderr}");
    // "→ Overall exposure level for gm-na.service: 1.2 OK 🙂", or "… OK :-)" in a non-UTF-8 locale
    // (a fresh machine's C locale), so the number is the first word after the label, not after the
    // last colon.
    let label = format!("Overall exposure level for {name}:");
    let level = stdout
        .lines()
        .find_map(|l| l.split_once(&label).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no overall exposure line in:\n{stdout}"));
    level.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no number in {level:?}"))
}

#[test]
fn gm_na_service_exposure_is_at_most_2_5() {
    let level = exposure("gm-na.service");
    assert!(level <= MAX_EXPOSURE, "gm-na.service exposure {level} is above {MAX_EXPOSURE}");
}

/// Issue 15 item 5: the probe unit scored 5.2, ran as a user nothing created, probed the placeholder
/// na.example.org without /etc/gm-probe/env, and put the dead-man URL (a secret) on its command line.
#[test]
fn gm_probe_service_exposure_is_at_most_2_0_and_it_has_no_default_target_nor_secret_argv() {
    let level = exposure("gm-probe.service");
    assert!(level <= 2.0, "gm-probe.service exposure {level} is above 2.0");
    let unit = std::fs::read_to_string(repo().join("systemd/gm-probe.service")).unwrap();
    let service: Vec<&str> = unit.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(!service.iter().any(|l| l.starts_with("Environment=")), "no placeholder target or URL: {service:?}");
    assert_eq!(directive(&unit, "EnvironmentFile").as_deref(), Some("/etc/gm-probe/env"), "required, no '-'");
    let exec = unit.split("ExecStart=").nth(1).unwrap().split("\n# ").next().unwrap();
    assert!(exec.contains("--ping-url-file %d/ping-url") && !exec.contains("--ping-url "), "{exec}");
    assert!(exec.contains("--na ${GM_PROBE_TARGET}"), "{exec}");
    let credentials: Vec<&str> = service.iter().filter_map(|l| l.strip_prefix("LoadCredential=")).collect();
    assert_eq!(credentials, ["root.pub:/etc/gm-probe/root.pub", "ping-url:/etc/gm-probe/ping-url"]);
    assert_eq!(directive(&unit, "User").as_deref(), Some("gm-probe"));
    let install = std::fs::read_to_string(repo().join("scripts/install.sh")).unwrap();
    assert!(install.contains("useradd --system --gid gm-probe"), "install.sh must create the user the unit runs as");
}

/// The value of `Key=` in a unit (the last assignment wins, as in systemd).
fn directive(unit: &str, key: &str) -> Option<String> {
    unit.lines().rev().find_map(|l| l.strip_prefix(&format!("{key}="))).map(str::to_string)
}

#[test]
fn gm_na_service_stops_within_the_scheduler_grace_plus_http_drain_and_reloads_on_sighup() {
    let unit = std::fs::read_to_string(repo().join("systemd/gm-na.service")).unwrap();
    // [cron] shutdown_grace_seconds defaults to 60, the HTTP drain (http::Limits) to 10 s; gm waits
    // for both in turn, so a shorter stop timeout SIGKILLs a backup that was allowed to finish.
    let stop: u64 = directive(&unit, "TimeoutStopSec").unwrap().parse().unwrap();
    assert!(stop > 60 + 10, "TimeoutStopSec={stop} does not cover the 60 s job grace and the 10 s HTTP drain");
    // SIGTERM to gm serve only: the scheduler, not systemd, stops the job children after the grace.
    assert_eq!(directive(&unit, "KillMode").as_deref(), Some("mixed"));
    assert_eq!(directive(&unit, "ExecReload").as_deref(), Some("/bin/kill -HUP $MAINPID"));
    assert_eq!(directive(&unit, "ExecStart").as_deref(), Some("/usr/local/bin/gm serve --home /etc/gm"));
    assert_eq!(directive(&unit, "Restart").as_deref(), Some("on-failure"));
    assert_eq!(directive(&unit, "RestartSec").as_deref(), Some("5"));
    assert_eq!(directive(&unit, "StateDirectory").as_deref(), Some("gm"));
    assert_eq!(directive(&unit, "StateDirectoryMode").as_deref(), Some("0700"));
    assert_eq!(directive(&unit, "User").as_deref(), Some("gm"));
}

fn install(prefix: &Path) -> String {
    let out = Command::new(repo().join("scripts/install.sh"))
        .args(["--binary", gm_bin(), "--prefix", prefix.to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "install.sh failed:\nstdout:\n{stdout}\nstderr:\n{stderr}");
    stdout
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o7777
}

/// (path relative to the prefix, mode, modification time) of everything install.sh made.
fn snapshot(root: &Path) -> Vec<(String, u32, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            out.push((path.strip_prefix(root).unwrap().display().to_string(), mode(&path), meta.modified().unwrap()));
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn install_sh_under_a_prefix_lays_out_the_tree_and_a_second_run_changes_nothing() {
    let dir = TempDir::new("install");
    let root = dir.join("root");
    let first = install(&root);
    assert!(first.contains("not created under --prefix (would run: groupadd --system gm;"), "{first}");
    assert!(first.contains("user gm-probe, group gm-probe: not created under --prefix"), "{first}");
    assert!(first.contains("(owner root:gm not set under --prefix)"), "{first}");
    assert!(first.contains("skip   systemctl daemon-reload: not run under --prefix"), "{first}");

    // Issue 15 item 6: every folder the default jobs write to (backups, drills/latest.json, exports).
    for (path, want) in [
        ("etc/gm", 0o750),
        ("etc/gm-probe", 0o700),
        ("var/lib/gm", 0o700),
        ("var/lib/gm/backups", 0o700),
        ("var/lib/gm/drills", 0o700),
        ("var/lib/gm/exports", 0o700),
        ("usr/local/bin/gm", 0o755),
    ] {
        assert_eq!(mode(&root.join(path)), want, "mode of {path}: {:o}", mode(&root.join(path)));
    }
    assert_eq!(std::fs::read(root.join("usr/local/bin/gm")).unwrap(), std::fs::read(gm_bin()).unwrap());
    for unit in unit_files() {
        let installed = root.join("etc/systemd/system").join(unit.file_name().unwrap());
        assert_eq!(mode(&installed), 0o644, "{}", installed.display());
        assert_eq!(std::fs::read(&installed).unwrap(), std::fs::read(&unit).unwrap(), "{}", installed.display());
    }
    let runbooks = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/runbooks");
    for runbook in std::fs::read_dir(&runbooks).unwrap().map(|e| e.unwrap().path()) {
        let installed = root.join("etc/gm/runbooks").join(runbook.file_name().unwrap());
        assert_eq!(std::fs::read(&installed).unwrap(), std::fs::read(&runbook).unwrap(), "{}", installed.display());
    }
    // The backup-signing key pair is created once (F4), private 0600, and never replaced.
    assert_eq!(mode(&root.join("etc/gm/keys/backup-signing.key")), 0o600);
    assert!(root.join("etc/gm/keys/backup-signing.pub").is_file());
    assert!(first.contains("key    /etc/gm/keys/backup-signing.key (0600) and .pub"), "{first}");
    let before = snapshot(&root);
    assert!(!before.iter().any(|(p, _, _)| p.ends_with(".tmp")), "a .tmp file was left behind: {before:?}");

    let second = install(&root);
    assert!(
        second.ends_with(&format!(
            "install: nothing to change, everything is already installed under {}\n",
            root.display()
        )),
        "{second}"
    );
    assert!(!second.lines().any(|l| l.starts_with("dir ") || l.starts_with("file ")), "{second}");
    assert_eq!(snapshot(&root), before, "the second run touched the tree");

    // A drifted mode is put back, and only that is reported.
    std::fs::set_permissions(root.join("var/lib/gm"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let third = install(&root);
    assert!(third.contains("dir    /var/lib/gm: mode 0700"), "{third}");
    assert!(third.contains(&format!("install: 1 change(s) under {}", root.display())), "{third}");
    assert_eq!(mode(&root.join("var/lib/gm")), 0o700);
}

/// The managed model's NA key credential (docs/custody.md): the drop-in is installed only with
/// `--na-key-credential`, with /etc/gm/credentials 0700; gm-na.service with it loaded passes
/// `systemd-analyze verify` with nothing to say; a plain install leaves it out and uninstall takes it.
#[test]
fn install_sh_installs_the_na_key_credential_drop_in_only_on_request_and_it_verifies() {
    let dir = TempDir::new("credential");
    let root = dir.join("root");
    let dropin = root.join("etc/systemd/system/gm-na.service.d/na-key-credential.conf");
    install(&root);
    assert!(!dropin.exists() && !root.join("etc/gm/credentials").exists(), "installed without --na-key-credential");
    let run = |extra: &str| {
        let out = Command::new(repo().join("scripts/install.sh"))
            .args(["--binary", gm_bin(), "--prefix", root.to_str().unwrap(), extra])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    };
    let first = run("--na-key-credential");
    assert!(first.contains("na-key.cred does not exist yet"), "{first}");
    assert_eq!(mode(&root.join("etc/gm/credentials")), 0o700);
    assert_eq!(mode(&dropin), 0o644);
    let shipped = repo().join("systemd/gm-na.service.d/na-key-credential.conf");
    assert_eq!(std::fs::read(&dropin).unwrap(), std::fs::read(&shipped).unwrap());
    assert!(run("--na-key-credential").contains("install: nothing to change"));

    // The unit with its drop-in, as systemd loads them from one unit folder.
    let units = dir.join("units");
    std::fs::create_dir_all(units.join("gm-na.service.d")).unwrap();
    let unit = std::fs::read_to_string(repo().join("systemd/gm-na.service")).unwrap();
    std::fs::write(units.join("gm-na.service"), unit.replace(INSTALLED_GM, gm_bin())).unwrap();
    std::fs::copy(&shipped, units.join("gm-na.service.d/na-key-credential.conf")).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no", "gm-na.service"])
        .env("SYSTEMD_LOG_COLOR", "0")
        .env("SYSTEMD_UNIT_PATH", format!("{}:", units.display()))
        .output()
        .unwrap();
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success() && said.is_empty(), "systemd-analyze verify with the drop-in: {said}");

    let gone = uninstall(&root);
    assert!(!dropin.exists(), "{gone}");
    assert!(gone.contains("removed /etc/systemd/system/gm-na.service.d/\n"), "{gone}");
}

fn uninstall(prefix: &Path) -> String {
    let out = Command::new(repo().join("scripts/install.sh"))
        .args(["--uninstall", "--prefix", prefix.to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "install.sh --uninstall failed:\nstdout:\n{stdout}\nstderr:\n{stderr}");
    stdout
}

/// Issue 15 item 6: --uninstall takes back the binary, the units and the runbooks, keeps every
/// configuration, key and data file, says so, and a second run has nothing to remove.
#[test]
fn install_sh_uninstall_removes_binary_units_and_runbooks_and_keeps_data_and_keys() {
    let dir = TempDir::new("uninstall");
    let root = dir.join("root");
    install(&root);
    let kept = [
        "etc/gm/gm.toml",
        "etc/gm/operators.json",
        "etc/gm/runbooks/local-notes.md",
        "etc/gm-probe/env",
        "var/lib/gm/na.db",
        "var/lib/gm/backups/gm-acme-20261205T000000Z.tar.gz.age",
        "var/lib/gm/drills/latest.json",
    ];
    for file in kept {
        std::fs::write(root.join(file), file).unwrap();
    }
    let first = uninstall(&root);
    for gone in ["usr/local/bin/gm", "etc/systemd/system/gm-na.service", "etc/gm/runbooks/db-restore.md"] {
        assert!(!root.join(gone).exists(), "{gone} is still there:\n{first}");
        assert!(first.contains(&format!("removed /{gone}\n")), "{first}");
    }
    for unit in unit_files() {
        assert!(!root.join("etc/systemd/system").join(unit.file_name().unwrap()).exists());
    }
    for file in kept {
        assert_eq!(std::fs::read_to_string(root.join(file)).unwrap(), file, "{file} was changed");
    }
    assert!(
        root.join("etc/gm/keys/backup-signing.key").is_file() && root.join("etc/gm/keys/backup-signing.pub").is_file()
    );
    assert!(first.contains("kept   /etc/gm/runbooks/: it holds files install.sh did not ship"), "{first}");
    assert!(
        first.ends_with(
            "kept: configuration, keys and data (/etc/gm, /etc/gm-probe, /var/lib/gm; no users under --prefix): \
             remove them by hand only once backups are safe elsewhere\n"
        ),
        "{first}"
    );
    let before = snapshot(&root);
    let second = uninstall(&root);
    assert!(second.contains(&format!("uninstall: nothing to remove under {}\n", root.display())), "{second}");
    assert_eq!(snapshot(&root), before, "the second uninstall touched the tree");
    // And it installs again over what was kept, leaving the kept key alone.
    let again = install(&root);
    assert!(again.contains("ok     /etc/gm/keys/backup-signing.key"), "{again}");
    assert_eq!(std::fs::read(root.join("usr/local/bin/gm")).unwrap(), std::fs::read(gm_bin()).unwrap());
}

fn smoke(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(repo().join("scripts/smoke.sh")).args(args).env("GM", gm_bin()).output().unwrap();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn smoke_sh_passes_against_a_live_gm_serve() {
    let dir = TempDir::new("smoke");
    let home = sandbox(&dir);
    let server = GmServer::start(&home, &[]);
    let url = format!("http://{}", server.addr);
    let root_pub = home.join("offline/root.pub");
    let (status, stdout, stderr) = smoke(&[&url, "--root-public-key", root_pub.to_str().unwrap()]);
    assert_eq!(status, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.starts_with(&format!("gm probe OK: 6 of 6 checks OK - {url}\n")), "{stdout}");
    assert!(
        stdout.ends_with(&format!("smoke: PASS: {url} answers healthz, readyz, metrics, connectome, genesis, crl\n")),
        "{stdout}"
    );
}

#[test]
fn smoke_sh_fails_against_a_dead_port() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let (status, stdout, stderr) = smoke(&[&url]);
    assert_eq!(status, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains(&format!("healthz     CRITICAL          -  cannot reach {url}/healthz: connection refused")),
        "{stdout}"
    );
    assert!(
        stdout.ends_with(&format!(
            "smoke: FAIL: {url} is not healthy (gm probe exit 2, CRITICAL): see the checks above\n"
        )),
        "{stdout}"
    );
}

#[test]
fn smoke_sh_without_a_url_is_a_usage_error() {
    let (status, stdout, stderr) = smoke(&[]);
    assert_eq!(status, Some(2), "{stdout}");
    assert_eq!(
        stderr,
        "smoke: error: no URL given\nhint: scripts/smoke.sh URL [--root-public-key FILE|BASE64] [--timeout 10s]\n"
    );
}

/// F2: the NA unit gives gm serve room for max_connections (default 4096) plus the descriptors it keeps
/// for itself, in the one LimitNOFILE= line that `systemd-analyze verify` above accepts.
#[test]
fn na_unit_sets_an_open_file_limit_that_fits_max_connections() {
    let text = std::fs::read_to_string(repo().join("systemd/gm-na.service")).unwrap();
    let values: Vec<u64> =
        text.lines().filter_map(|l| l.strip_prefix("LimitNOFILE=")).map(|v| v.trim().parse().unwrap()).collect();
    assert_eq!(values.len(), 1, "{values:?}");
    let default_cap = gm::http::Limits::default().max_connections as u64;
    assert!(values[0] >= default_cap + 64, "LimitNOFILE={} < {default_cap} + 64", values[0]);
}

/// The README's test command installs what the tests need through scripts/install-test-deps.sh
/// (issue 15, item 1): on this machine (which ran it) nothing is missing; on a PATH without `age`
/// and `promtool` it names their Debian packages and exits 2, installing nothing under --check.
#[test]
fn install_test_deps_finds_everything_here_and_names_the_packages_a_machine_lacks() {
    let script = repo().join("scripts/install-test-deps.sh");
    let ok = Command::new("bash").arg(&script).arg("--check").output().unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    // A PATH holding every tool of this machine but age and promtool.
    let dir = TempDir::new("deps-path");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = std::env::var("PATH").unwrap();
    for folder in path.split(':') {
        let Ok(entries) = std::fs::read_dir(folder) else { continue };
        for e in entries.flatten() {
            let name = e.file_name();
            if name == "age" || name == "promtool" || bin.join(&name).exists() {
                continue;
            }
            let _ = std::os::unix::fs::symlink(e.path(), bin.join(&name));
        }
    }
    let out = Command::new("bash").arg(&script).arg("--check").env("PATH", &bin).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("apt-get install --no-install-recommends age prometheus"), "{stderr}");
}
