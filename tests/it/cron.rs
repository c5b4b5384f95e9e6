//! The built-in scheduler end to end with the real binary: the job table (`gm cron list`), one job
//! now (`gm cron run-once`) with its ledger records, invalid job config refused at startup, jobs
//! firing inside `gm serve` with their `/metrics` series (checked by `promtool`), a clean SIGTERM,
//! and `--no-scheduler`. The cron semantics themselves (overlap, timeouts, missed runs, shutdown
//! grace) are unit-tested at explicit instants in `src/sched/runner_tests.rs`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use age::secrecy::ExposeSecret;

use crate::harness::{sandbox, wait_until, Gm, GmServer, TempDir};

/// A sandbox whose gm.toml has a nightly backup and a verify job (and a backup key pair). Their
/// missed-run grace is 1 s, so a test run just after 03:00 UTC does not catch up the 03:00 backup.
fn home_with_jobs(dir: &TempDir, extra: &str) -> std::path::PathBuf {
    let home = sandbox(dir);
    let id = age::x25519::Identity::generate();
    std::fs::write(home.join("backup-test.key"), format!("{}\n", id.to_string().expose_secret())).unwrap();
    std::fs::write(home.join("recipients-test.txt"), format!("{}\n", id.to_public())).unwrap();
    let toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    std::fs::write(
        home.join("gm.toml"),
        format!(
            "{toml}\n[cron]\nshutdown_grace_seconds = 20\n\n\
             [cron.jobs.nightly-backup]\nkind = \"backup\"\nschedule = \"0 3 * * *\"\nbackup_dir = \"b\"\nrecipients_file = \"recipients-test.txt\"\nmissed_grace_seconds = 1\n\n\
             [cron.jobs.check]\nkind = \"verify\"\nschedule = \"15 3 * * *\"\nbackup_dir = \"b\"\nidentity_file = \"backup-test.key\"\nmissed_grace_seconds = 1\n{extra}"
        ),
    )
    .unwrap();
    home
}

fn ledger_count(home: &Path, sql: &str) -> i64 {
    let path = home.join("gm-ops.db");
    if !path.exists() {
        return 0;
    }
    let c = rusqlite::Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn list_and_run_once_record_the_job_and_its_command() {
    let dir = TempDir::new("cron-once");
    let home = home_with_jobs(&dir, "");
    let h = home.to_str().unwrap();
    drop(GmServer::start(&home, &["--no-scheduler"])); // creates the database
    let (stdout, _) = Gm::new(&["cron", "list", "--home", h, "--json"]).expect(0);
    assert!(stdout.contains("\"job\":\"nightly-backup\""), "{stdout}");
    assert!(stdout.contains("\"schedule\":\"0 3 * * *\""), "{stdout}");
    assert_eq!(stdout.matches("T03:00:00Z").count(), 3, "next three fire times of the backup: {stdout}");
    assert!(stdout.contains("\"last_outcome\":null"), "{stdout}");

    // Verify before any backup exists: the job fails with the reason, exit 1.
    let (stdout, _) = Gm::new(&["cron", "run-once", "check", "--home", h]).expect(1);
    assert!(stdout.contains("check: failed") && stdout.contains("no *.tar.gz.age backup"), "{stdout}");
    // The backup job, then the verify job against what it wrote.
    let (stdout, _) = Gm::new(&["cron", "run-once", "nightly-backup", "--home", h, "--json"]).expect(0);
    assert!(stdout.contains("\"outcome\":\"ok\""), "{stdout}");
    let backups: Vec<_> = std::fs::read_dir(home.join("b"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".tar.gz.age"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert!(home.join("b").join(format!("{}.sig", backups[0])).is_file(), "signed by the sandbox's key");
    // F13: a file planted with a far-future name is passed over; the job verifies the real backup.
    std::fs::write(home.join("b/gm-sandbox-mesh-20991231T235959Z.tar.gz.age"), b"forged").unwrap();
    Gm::new(&["cron", "run-once", "check", "--home", h]).expect(0);
    let real = format!("%/{}", backups[0]);
    let verified_real = format!("SELECT COUNT(*) FROM gm_ops_ledger WHERE kind = 'verify' AND artifact LIKE '{real}'");
    assert_eq!(ledger_count(&home, &verified_real), 1, "the scheduled verify checked the signed backup");
    assert_eq!(ledger_count(&home, "SELECT COUNT(*) FROM gm_ops_ledger WHERE kind = 'job'"), 3);
    assert_eq!(ledger_count(&home, "SELECT COUNT(*) FROM gm_ops_ledger WHERE kind = 'backup' AND outcome = 'ok'"), 1);
    assert_eq!(ledger_count(&home, "SELECT COUNT(*) FROM gm_ops_ledger WHERE kind = 'verify' AND outcome = 'ok'"), 1);
    let (stdout, _) = Gm::new(&["cron", "list", "--home", h]).expect(0);
    assert!(stdout.lines().any(|l| l.starts_with("check") && l.contains("ok at ")), "{stdout}");
    let (_, stderr) = Gm::new(&["cron", "run-once", "nope", "--home", h]).expect(2);
    assert!(stderr.contains("no job named \"nope\"") && stderr.contains("nightly-backup"), "{stderr}");
}

#[test]
fn invalid_job_config_is_refused_at_startup_naming_the_job() {
    let dir = TempDir::new("cron-bad");
    let home = home_with_jobs(&dir, "\n[cron.jobs.typo]\nkind = \"backup\"\nschedule = \"0 25 * * *\"\nbackup_dir = \"b\"\nrecipients_file = \"r\"\n");
    let (_, stderr) = Gm::new(&["serve", "--home", home.to_str().unwrap(), "--bind", "127.0.0.1:0"]).expect(2);
    assert!(stderr.contains("cron.jobs.typo.schedule"), "{stderr}");
    let (_, stderr) = Gm::new(&["cron", "list", "--home", home.to_str().unwrap()]).expect(2);
    assert!(stderr.contains("cron.jobs.typo.schedule"), "{stderr}");
}

#[test]
fn serve_runs_jobs_and_exposes_their_metrics_and_no_scheduler_runs_none() {
    let dir = TempDir::new("cron-serve");
    // An audit export every 2 seconds.
    let home = home_with_jobs(
        &dir,
        "\n[cron.jobs.export]\nkind = \"audit-export\"\nschedule = \"*/2 * * * * *\"\nexport_dir = \"exports\"\nwindow_hours = 1\n",
    );
    let server = GmServer::start(&home, &[]);
    assert!(
        wait_until(Duration::from_secs(20), || ledger_count(
            &home,
            "SELECT COUNT(*) FROM gm_ops_ledger WHERE kind = 'job' AND artifact = 'export' AND outcome = 'ok'"
        ) >= 1),
        "the export job ran: {}",
        server.stderr()
    );
    assert!(std::fs::read_dir(home.join("exports")).unwrap().count() >= 2, "an export and its manifest");
    let metrics = server.get("/metrics").text();
    assert!(metrics.contains("gm_job_runs_total{job=\"export\",outcome=\"ok\"}"), "{metrics}");
    assert!(metrics.contains("gm_job_runs_total{job=\"nightly-backup\",outcome=\"ok\"} 0"), "{metrics}");
    assert!(metrics.contains("gm_job_last_success_timestamp_seconds{job=\"export\"}"), "{metrics}");
    assert!(metrics.contains("gm_disk_free_ratio "), "{metrics}");
    promtool_accepts_gm_series(&metrics);
    assert_eq!(server.terminate(), 0);

    // --no-scheduler: nothing more runs.
    let before = ledger_count(&home, "SELECT COUNT(*) FROM gm_ops_ledger WHERE kind = 'job'");
    let server = GmServer::start(&home, &["--no-scheduler"]);
    std::thread::sleep(Duration::from_millis(4500));
    assert!(!server.get("/metrics").text().contains("gm_job_runs_total"));
    drop(server);
    assert_eq!(ledger_count(&home, "SELECT COUNT(*) FROM gm_ops_ledger WHERE kind = 'job'"), before);
}

/// The ops-ledger series of `/metrics` are re-read only when the ledger changed, and they do
/// change: a backup and a drill run by other processes while the server runs (between scrapes
/// that kept the previous text) show on the next scrape, and a scrape with no ledger change in
/// between gives the same series.
#[test]
fn metrics_follow_backups_and_drills_other_processes_record_while_serving() {
    let dir = TempDir::new("cron-metrics-ledger");
    let home = home_with_jobs(&dir, "");
    let server = GmServer::start(&home, &["--no-scheduler"]);
    let series = |name: &str| {
        let metrics = server.get("/metrics").text();
        let prefix = format!("{name} ");
        metrics.lines().find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
    };
    let last_backup = "gm_backup_last_success_timestamp_seconds";
    let last_drill = "gm_restore_drill_last_success_timestamp_seconds";
    assert_eq!(series(last_backup), None, "no backup yet");
    assert_eq!(series(last_backup), None, "a second scrape of the unchanged ledger");
    let recipient = std::fs::read_to_string(home.join("recipients-test.txt")).unwrap();
    let (stdout, _) = Gm::backup(&home, recipient.trim(), &home.join("b")).arg("--json").expect(0);
    let v = gm::json::parse_str(&stdout).unwrap();
    let report = v.as_object().unwrap();
    let archive = report.get("backup_path").and_then(|p| p.as_str()).unwrap().to_string();
    let size = report.get("size_bytes").and_then(|s| s.as_i64()).unwrap();
    let stamp = series(last_backup).expect("the backup shows on the next scrape");
    assert!(stamp.parse::<i64>().unwrap() > 1_700_000_000, "{stamp}");
    assert_eq!(series("gm_backup_size_bytes"), Some(size.to_string()));
    assert_eq!(series(last_drill), None);
    Gm::drill(&home, Path::new(&archive), &home.join("backup-test.key"), &[]).expect(0);
    assert!(series(last_drill).is_some(), "the drill shows on the next scrape");
    assert_eq!(series(last_backup), Some(stamp), "the backup series are unchanged");
}

/// `promtool check metrics` passes on gm's own series; the only findings on the whole page are
/// upstream's `genesis_mesh_na_*_total` gauges, kept for existing alerts (README, "Metrics").
fn promtool_accepts_gm_series(metrics: &str) {
    let Ok(_) = Command::new("promtool").arg("--version").output() else {
        panic!("promtool is not installed (.ci/run installs the Debian package prometheus)");
    };
    let check = |text: &str| {
        let mut child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    };
    let gm_only: String = {
        let mut keep = Vec::new();
        let mut skip = false;
        for line in metrics.lines() {
            if line.starts_with("# HELP ") {
                skip = line.starts_with("# HELP genesis_mesh_na_");
            }
            if !skip {
                keep.push(line);
            }
        }
        keep.join("\n") + "\n"
    };
    let (ok, findings) = check(&gm_only);
    assert!(ok && findings.trim().is_empty(), "promtool on gm's series: {findings}\n{gm_only}");
    let (_, findings) = check(metrics);
    for line in findings.lines().filter(|l| !l.trim().is_empty()) {
        assert!(line.starts_with("genesis_mesh_na_"), "unexpected promtool finding: {line}");
    }
}

#[test]
fn quickstart_ships_the_default_job_table() {
    let dir = TempDir::new("cron-defaults");
    let home = dir.join("fresh");
    Gm::new(&["quickstart", "--home", home.to_str().unwrap(), "--no-serve", "--bind", "127.0.0.1:9555"]).expect(0);
    let (stdout, _) = Gm::new(&["cron", "list", "--home", home.to_str().unwrap(), "--json"]).expect(0);
    for (job, schedule) in [
        ("backup", "0 */6 * * *"),
        ("verify", "15 */6 * * *"),
        ("restore-drill", "30 3 * * *"),
        ("audit-export", "5 0 * * *"),
        ("prune", "45 4 * * *"),
        ("probe", "* * * * *"),
    ] {
        assert!(stdout.contains(&format!("\"job\":\"{job}\",\"kind\":\"{job}\"")), "{job}: {stdout}");
        assert!(stdout.contains(&format!("\"schedule\":\"{schedule}\"")), "{schedule}: {stdout}");
    }
    let toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    assert!(toml.contains("bind = \"127.0.0.1:9555\""), "{toml}");
    assert!(toml.contains("target = \"served\""), "the probe follows the address served: {toml}");
    let key = std::fs::metadata(home.join("offline/backup.key")).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777, 0o600);
    assert!(std::fs::read_to_string(home.join("backup-recipients.txt")).unwrap().starts_with("age1"));
}

#[test]
fn the_default_probe_job_checks_the_na_and_feeds_metrics() {
    let dir = TempDir::new("cron-probe");
    let home = dir.join("fresh");
    let h = home.to_str().unwrap();
    Gm::new(&["quickstart", "--home", h, "--no-serve"]).expect(0);
    let server = GmServer::start(&home, &["--no-scheduler"]);
    let toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    // Outside `gm serve`, the probe target "served" is gm.toml's [server] bind.
    let toml = toml.replace("bind = \"127.0.0.1:8443\"", &format!("bind = \"{}\"", server.addr));
    std::fs::write(home.join("gm.toml"), toml).unwrap();
    let (stdout, _) = Gm::new(&["cron", "run-once", "probe", "--home", h]).expect(0);
    assert!(stdout.starts_with("probe: ok"), "{stdout}");
    let metrics = server.get("/metrics").text();
    for check in ["healthz", "readyz", "metrics", "connectome", "genesis", "crl"] {
        assert!(
            metrics.contains(&format!("gm_probe_success{{target=\"http://{}\",check=\"{check}\"}} 1", server.addr)),
            "{check}: {metrics}"
        );
    }
    promtool_accepts_gm_series(&metrics);
    assert!(home.join("probe-state.json").exists(), "the consecutive-failure state is kept");
}

#[test]
fn sigterm_lets_a_running_job_finish_within_the_shutdown_grace() {
    let dir = TempDir::new("cron-sigterm");
    // A target that accepts connections and never answers: the probe job runs for its whole
    // 10 s default timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("http://{}", silent.local_addr().unwrap());
    let home = crate::harness::sandbox(&dir);
    let toml = std::fs::read_to_string(home.join("gm.toml")).unwrap();
    std::fs::write(
        home.join("gm.toml"),
        format!(
            "{toml}\n[cron]\nshutdown_grace_seconds = 30\n\n[cron.jobs.slow-probe]\nkind = \"probe\"\nschedule = \"0 0 1 1 *\"\ntarget = \"{target}\"\nchecks = \"healthz\"\nmissed_grace_seconds = 31622400\n"
        ),
    )
    .unwrap();
    // The yearly fire time was missed and is within the grace: the job runs once at start
    // ("started" is a debug line).
    let server = GmServer::start_with(&home, &[], &[("GENESIS_LOG_LEVEL", "DEBUG")]);
    assert!(
        wait_until(Duration::from_secs(10), || server.stderr().contains("job slow-probe started")),
        "{}",
        server.stderr()
    );
    let stopping = std::time::Instant::now();
    assert_eq!(server.terminate(), 0, "a clean exit after the job");
    let took = stopping.elapsed();
    assert!(took >= Duration::from_millis(1500), "SIGTERM waited for the running probe: {took:?}");
    let outcome = ledger_count(
        &home,
        "SELECT COUNT(*) FROM gm_ops_ledger WHERE kind = 'job' AND artifact = 'slow-probe' AND outcome = 'failed'",
    );
    assert_eq!(outcome, 1, "the job ran to its end (CRITICAL: timed out), it was not killed");
    drop(silent);
}

/// A probe job's dead-man URL is a secret: the child `gm probe` gets it from a private file
/// (`--ping-url-file`), never on its command line, and it is in no log line or ledger message.
#[test]
fn a_probe_jobs_ping_url_reaches_the_child_through_a_private_file_not_argv() {
    let dir = TempDir::new("cron-ping-url");
    let secret = "http://127.0.0.1:9/ping/secret-5ec2e7";
    let home = home_with_jobs(
        &dir,
        &format!(
            "\n[cron.jobs.watch]\nkind = \"probe\"\nschedule = \"* * * * *\"\ntarget = \"http://127.0.0.1:9\"\nping_url = \"{secret}\"\n"
        ),
    );
    let out = Gm::new(&["cron", "run-once", "--home", home.to_str().unwrap(), "watch"])
        .env("GENESIS_LOG_LEVEL", "DEBUG")
        .output();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains(secret) && !stderr.contains(secret), "{stdout}\n{stderr}");
    let file = home.join("probe-watch.ping-url");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), secret);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let (history, _) = Gm::new(&["managed", "history", "--home", home.to_str().unwrap(), "--json"]).expect(0);
    assert!(history.contains("\"artifact\":\"watch\"") && !history.contains(secret), "{history}");
}
