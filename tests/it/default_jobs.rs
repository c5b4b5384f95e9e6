//! Every default job succeeds where an operator first meets it (issue 15, item 3): in a fresh
//! `gm quickstart` sandbox and in the layout `scripts/install.sh --prefix` stages (the quickstart
//! job table with its folders under `/var/lib/gm`, as `docs/config.md` shows for a host), each job
//! runs once with `gm cron run-once`, exits 0 with outcome ok, and is recorded in the ops ledger
//! (`gm managed history --json`). Nobody creates a folder by hand: the layout's creator must.
//! Also the quiet sandbox (item 10): `gm quickstart`'s terminal holds the startup summary and the
//! next steps, not a log line per request or job, and its probe job follows the address served.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{gm_bin, wait_until, Gm, GmServer, TempDir};

/// The quickstart job table, in the order an operator proves them (README, "From zero…", step 7).
const JOBS: [&str; 6] = ["backup", "verify", "restore-drill", "audit-export", "prune", "probe"];

/// Serves `home` on a free port and points its `[server] bind` there, so that the probe job's
/// target "served" (outside `gm serve`, the configured bind) reaches this server.
pub(crate) fn serve_and_point_bind_at_it(home: &Path) -> GmServer {
    let server = GmServer::start(home, &["--no-scheduler"]);
    let toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    assert!(toml.contains("bind = \"127.0.0.1:8443\""), "{toml}");
    let toml = toml.replace("bind = \"127.0.0.1:8443\"", &format!("bind = \"{}\"", server.addr));
    std::fs::write(home.join("gm.toml"), toml).unwrap();
    server
}

/// Runs every default job once and checks each run's exit, outcome and ledger record.
fn every_job_runs_ok(home: &Path) {
    let h = home.to_str().unwrap();
    for job in JOBS {
        let out = Gm::new(&["cron", "run-once", job, "--home", h]).output();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(0), "job {job}:\nstdout: {stdout}\nstderr: {stderr}");
        assert!(stdout.starts_with(&format!("{job}: ok")), "job {job}: {stdout}");
    }
    let (history, _) = Gm::new(&["managed", "history", "--home", h, "--json"]).expect(0);
    let records: Vec<&str> = history.split("},{").filter(|r| r.contains("\"kind\":\"job\"")).collect();
    assert_eq!(records.len(), JOBS.len(), "one job record per run: {history}");
    for job in JOBS {
        assert!(
            records.iter().any(|r| r.contains(&format!("\"artifact\":\"{job}\",")) && r.contains("\"outcome\":\"ok\"")),
            "job {job} has an ok record in the ledger: {history}"
        );
    }
    assert!(!history.contains("\"outcome\":\"failed\""), "{history}");
}

#[test]
fn every_default_job_succeeds_in_a_fresh_quickstart_sandbox() {
    let dir = TempDir::new("default-jobs-sandbox");
    let home = dir.join("gm-sandbox");
    Gm::new(&["quickstart", "--home", home.to_str().unwrap(), "--no-serve"]).expect(0);
    for folder in ["backups", "drills", "exports"] {
        assert!(home.join(folder).is_dir(), "quickstart creates {folder}/, which a default job writes to");
    }
    let _server = serve_and_point_bind_at_it(&home);
    every_job_runs_ok(&home);
    assert!(home.join("drills/latest.json").exists());
}

/// A host layout staged by `scripts/install.sh --prefix`, with the operator's files in place.
pub(crate) struct Layout {
    /// `<prefix>/etc/gm`: the gm home.
    pub etc: PathBuf,
    /// `<prefix>/var/lib/gm`: the database, ledger and job folders.
    pub var: PathBuf,
    /// The backup identity, kept outside the layout (offline).
    pub identity: PathBuf,
    /// The quickstart sandbox the sovereign's files came from (its `offline/` root and operator keys).
    pub sandbox: PathBuf,
}

/// Stages `scripts/install.sh --prefix dir/root`, then does the operator's part (README, "From
/// zero…", step 2): the sovereign's gm.toml, genesis, NA key, operator keys and backup recipients
/// in /etc/gm. Here they come from a quickstart sandbox, with the database and every job folder
/// under /var/lib/gm as on a host.
pub(crate) fn install_layout(dir: &TempDir) -> Layout {
    let prefix = dir.join("root");
    let out = Command::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh"))
        .args(["--binary", gm_bin(), "--prefix", prefix.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "install.sh: {}", String::from_utf8_lossy(&out.stderr));
    let sandbox = dir.join("sandbox");
    Gm::new(&["quickstart", "--home", sandbox.to_str().unwrap(), "--no-serve"]).expect(0);
    let etc = prefix.join("etc/gm");
    let var = prefix.join("var/lib/gm");
    assert!(etc.join("keys/backup-signing.key").exists(), "install.sh made the backup-signing key");
    for file in ["genesis.signed.json", "keys/na.key", "keys/na.pub", "operators.json", "backup-recipients.txt"] {
        std::fs::copy(sandbox.join(file), etc.join(file)).unwrap();
    }
    std::fs::create_dir_all(dir.join("offline")).unwrap();
    let identity = dir.join("offline/backup.key");
    std::fs::copy(sandbox.join("offline/backup.key"), &identity).unwrap();
    let v = var.display();
    let toml = std::fs::read_to_string(sandbox.join("gm.toml"))
        .unwrap()
        .replace("db_path = \"na.db\"", &format!("db_path = \"{v}/na.db\""))
        .replace("backup_dir = \"backups\"", &format!("backup_dir = \"{v}/backups\""))
        .replace("report_file = \"drills/latest.json\"", &format!("report_file = \"{v}/drills/latest.json\""))
        .replace("export_dir = \"exports\"", &format!("export_dir = \"{v}/exports\""))
        .replace("state_file = \"probe-state.json\"", &format!("state_file = \"{v}/probe-state.json\""))
        .replace("identity_file = \"offline/backup.key\"", &format!("identity_file = \"{}\"", identity.display()));
    for relative in ["\"na.db\"", "\"backups\"", "\"exports\"", "\"drills/", "\"probe-state.json\"", "\"offline/"] {
        assert!(!toml.contains(relative), "{relative} still relative: {toml}");
    }
    std::fs::write(etc.join("gm.toml"), toml).unwrap();
    Layout { etc, var, identity, sandbox }
}

#[test]
fn every_default_job_succeeds_in_the_install_sh_layout() {
    let dir = TempDir::new("default-jobs-install");
    let layout = install_layout(&dir);
    let _server = serve_and_point_bind_at_it(&layout.etc);
    every_job_runs_ok(&layout.etc);
    assert!(layout.var.join("drills/latest.json").exists());
    assert!(layout.var.join("gm-ops.db").exists(), "the ledger sits beside the database");
}

/// Starts `gm quickstart --home HOME --bind 127.0.0.1:0 EXTRA` with a bare environment (logs to
/// `stderr_log`) and returns it with the address of its `listening on SCHEME://` line.
fn start_quickstart(home: &str, extra: &[&str], stderr_log: &Path, scheme: &str) -> (std::process::Child, String) {
    let mut child = Command::new(gm_bin())
        .args(["quickstart", "--home", home, "--bind", "127.0.0.1:0"])
        .args(extra)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(stderr_log).unwrap()))
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let prefix = format!("listening on {scheme}://");
    let addr = line.trim().strip_prefix(prefix.as_str()).unwrap_or_else(|| panic!("{line:?}")).to_string();
    (child, addr)
}

/// Whether the ops ledger at `ledger` records a probe job run with outcome ok.
fn probe_recorded_ok(ledger: &Path) -> bool {
    ledger.exists()
        && rusqlite::Connection::open(ledger)
            .and_then(|c| {
                c.busy_timeout(Duration::from_secs(5))?;
                c.query_row(
                    "SELECT COUNT(*) FROM gm_ops_ledger WHERE kind = 'job' AND artifact = 'probe' AND outcome = 'ok'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .is_ok_and(|n| n > 0)
}

#[test]
fn quickstart_is_quiet_and_its_probe_follows_the_address_served() {
    let dir = TempDir::new("quiet-sandbox");
    let home = dir.join("gm-sandbox");
    let h = home.to_str().unwrap();
    // The first run's port was busy, so the sandbox's gm.toml names 8443 while it is served elsewhere.
    Gm::new(&["quickstart", "--home", h, "--no-serve"]).expect(0);
    let stderr_log = dir.join("quickstart.stderr");
    let (mut child, addr) = start_quickstart(h, &[], &stderr_log, "http");
    let ledger = home.join("gm-ops.db");
    let probe_ok = || probe_recorded_ok(&ledger);
    // The probe job's most recent minute is within its missed-run grace: it runs at start.
    let probed = wait_until(Duration::from_secs(60), probe_ok);
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let stderr = std::fs::read_to_string(&stderr_log).unwrap();
    assert!(probed, "the probe job probed http://{addr} and recorded ok; stderr:\n{stderr}");
    let prom = std::fs::read_to_string(home.join("probe-probe.prom")).unwrap();
    assert!(prom.contains(&format!("target=\"http://{addr}\"")), "probed the served address: {prom}");
    assert!(stderr.contains("next, in another terminal:"), "{stderr}");
    for noise in ["job probe", "job backup", "genesis_mesh.na_service.access", " - INFO - "] {
        assert!(!stderr.contains(noise), "routine {noise:?} lines stay out of the sandbox's terminal:\n{stderr}");
    }
}

/// `gm quickstart --tls` (issue 18): a throwaway CA and a loopback certificate, HTTPS served, the
/// next steps say how to trust it, and the probe job reaches the served https:// address through
/// its `ca_file`. The CA's key is not kept in the sandbox.
#[test]
fn quickstart_tls_serves_https_that_curl_and_the_probe_job_trust_through_the_sandbox_ca() {
    let dir = TempDir::new("tls-sandbox");
    let home = dir.join("gm-tls-sandbox");
    let h = home.to_str().unwrap();
    let stderr_log = dir.join("quickstart.stderr");
    let (mut child, addr) = start_quickstart(h, &["--tls"], &stderr_log, "https");
    let ca = home.join("tls/ca.pem");
    let curl = |url: &str| {
        Command::new("curl").args(["-sS", "--http1.1", "--cacert", ca.to_str().unwrap(), url]).output().unwrap()
    };
    let healthz = curl(&format!("https://{addr}/healthz"));
    let plain = curl(&format!("http://{addr}/healthz"));
    let ledger = home.join("gm-ops.db");
    let probe_ok = || probe_recorded_ok(&ledger);
    let probed = wait_until(Duration::from_secs(60), probe_ok);
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let stderr = std::fs::read_to_string(&stderr_log).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&healthz.stdout).trim_end(),
        "{\"status\":\"ok\"}",
        "curl trusting only tls/ca.pem: {healthz:?}"
    );
    assert!(
        !plain.status.success() || !String::from_utf8_lossy(&plain.stdout).contains("\"ok\""),
        "no plain HTTP on the TLS port"
    );
    assert!(probed, "the probe job probed https://{addr} and recorded ok; stderr:\n{stderr}");
    let prom = std::fs::read_to_string(home.join("probe-probe.prom")).unwrap();
    assert!(prom.contains(&format!("target=\"https://{addr}\"")), "probed the served https address: {prom}");
    assert!(
        stderr.contains(&format!("curl --cacert {h}/tls/ca.pem https://127.0.0.1:")),
        "next steps trust the CA:\n{stderr}"
    );
    let toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    assert!(toml.contains("[tls]\ncert_file = \"tls/server.pem\"\nkey_file = \"tls/server.key\"\n"), "{toml}");
    assert!(toml.contains("ca_file = \"tls/ca.pem\""), "the probe job trusts the sandbox CA: {toml}");
    let mut names: Vec<String> = std::fs::read_dir(home.join("tls"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["ca.pem", "server.key", "server.pem"], "no CA key is kept");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(home.join("tls/server.key")).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn quickstart_tls_on_a_sandbox_made_without_it_is_refused_and_changes_nothing() {
    let dir = TempDir::new("tls-sandbox-refused");
    let home = dir.join("gm-sandbox");
    let h = home.to_str().unwrap();
    Gm::new(&["quickstart", "--home", h, "--no-serve"]).expect(0);
    let before = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    let (_, stderr) = Gm::new(&["quickstart", "--home", h, "--tls", "--bind", "127.0.0.1:0"]).expect(2);
    assert!(stderr.contains("was made without --tls and has no [tls] in gm.toml"), "{stderr}");
    assert!(stderr.contains("hint: make a new sandbox with --tls"), "{stderr}");
    assert_eq!(std::fs::read_to_string(home.join("gm.toml")).unwrap(), before);
    assert!(!home.join("tls").exists());
}
