//! `gm cron …`: the built-in scheduler outside `gm serve` (`run`, for a probe host with no NA),
//! its plan (`list`), one job now (`run-once`), and `exec`, the child process every scheduled run
//! is: it resolves the job's moving parts at run time (the newest backup, a dated export name, the
//! export window) and runs the matching gm command in-process.
//!
//! Every run (scheduled or `run-once`) goes through the same runner, so it is recorded the same
//! way: an ops-ledger entry of kind `job` (artifact = the job name) with the outcome
//! ok|failed|skipped|timeout, plus whatever the job's own command records (a backup entry, …).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use argh::FromArgs;
use chrono::{DateTime, Utc};

use crate::clock::{Clock, SystemClock};
use crate::config::cron::{cron_settings, CronSettings, JobConfig, JobKind, SERVED_TARGET};
use crate::config::{self, Env};
use crate::json::{Map, Value};
use crate::ops::ledger::{Entry, Ledger, LedgerKind, Record, Span};
use crate::sched::metrics::JobMetrics;
use crate::sched::runner::{self, JobSpec, Outcome, Recorder, Run, Runner};

use super::backup::settings;
use super::drill::newest_backup;
use super::error::{Error, Named};
use super::output::Output;

/// The built-in scheduler: list jobs, run them, run one now.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "cron")]
pub(crate) struct CronArgs {
    #[argh(subcommand)]
    action: CronAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum CronAction {
    List(ListArgs),
    Run(RunArgs),
    RunOnce(RunOnceArgs),
    Exec(ExecArgs),
}

/// Show every job with its schedule, next three fire times (UTC) and last outcome.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub(crate) struct ListArgs {
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// print JSON
    #[argh(switch)]
    json: bool,
}

/// Run the scheduler alone (no NA) until SIGTERM or SIGINT.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "run", note = "gm serve runs the same scheduler unless --no-scheduler is given.")]
pub(crate) struct RunArgs {
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
}

/// Run one job now, as the scheduler would (same child process, timeout and ledger record).
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "run-once",
    note = "Exit status: 0 the job succeeded, 1 it failed or timed out, 2 could not run."
)]
pub(crate) struct RunOnceArgs {
    /// the job name ([cron.jobs.NAME] in gm.toml)
    #[argh(positional)]
    job: String,
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// print JSON
    #[argh(switch)]
    json: bool,
}

/// Internal: perform one job in this process (what each scheduled run executes).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "exec")]
pub(crate) struct ExecArgs {
    /// the job name
    #[argh(positional)]
    job: String,
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// the URL the running NA listens on (set by `gm serve`; a probe target "served" uses it)
    #[argh(option)]
    served_url: Option<String>,
}

/// Runs a `gm` command line in this process, as `gm cron exec` needs for a job's command: `Err`
/// holds argh's message when the line does not parse. The dispatcher (`cli/mod.rs`) passes it in,
/// so this command group does not import the dispatcher that imports it.
pub(crate) type RunArgv<'a> = &'a dyn Fn(&[&str]) -> Result<Result<u8, Error>, String>;

/// Runs `gm cron …`.
pub(crate) fn run(args: CronArgs, run_argv: RunArgv<'_>) -> Result<u8, Error> {
    match args.action {
        CronAction::List(a) => list(a),
        CronAction::Run(a) => run_scheduler(a),
        CronAction::RunOnce(a) => run_once(a),
        CronAction::Exec(a) => exec(a, run_argv),
    }
}

/// The scheduler's configuration and where its records go.
pub struct Scheduler {
    /// The jobs as configured.
    pub settings: CronSettings,
    /// The runner's job table (commands are `gm cron exec NAME --home HOME`).
    pub specs: Vec<JobSpec>,
    /// The ledger, metrics and log sink.
    pub recorder: Arc<LedgerRecorder>,
    /// The folder of the database and the ops ledger.
    pub state_dir: PathBuf,
}

impl Scheduler {
    /// The textfiles the probe jobs write (their `gm_probe_*` series go on `/metrics`).
    pub(crate) fn probe_textfiles(&self) -> Vec<PathBuf> {
        self.settings
            .jobs
            .iter()
            .filter(|j| matches!(j.kind, JobKind::Probe { .. }))
            .map(|j| probe_textfile(&self.state_dir, &j.name))
            .collect()
    }

    /// Tells every job where the NA of this process listens (`addr`, the listener's bound address;
    /// an unspecified IP becomes loopback; `https` when it serves built-in TLS): a probe whose target
    /// is "served" probes that URL (over TLS, the certificate must name that loopback address, as the
    /// `gm quickstart --tls` one does; otherwise give the job the public URL as its target).
    pub fn served_at(&mut self, addr: std::net::SocketAddr, https: bool) {
        let url = served_url(addr, https);
        for spec in &mut self.specs {
            spec.command.extend(["--served-url".to_string(), url.clone()]);
        }
    }
}

/// The URL a local client reaches a listener bound to `addr` at (`https` with built-in TLS).
fn served_url(mut addr: std::net::SocketAddr, https: bool) -> String {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("{}://{addr}", if https { "https" } else { "http" })
}

/// Where probe job `name` writes its Prometheus textfile: beside the database and the ops ledger
/// (the state folder the service may write; the gm home can be read-only).
fn probe_textfile(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join(format!("probe-{name}.prom"))
}

/// The folder of the NA database (and the ops ledger).
fn state_dir(db_path: &Path) -> PathBuf {
    db_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()
}

/// Loads the job table of `home`; `None` home uses `$GM_HOME`, else /etc/gm.
pub fn load(home: Option<&Path>) -> Result<Scheduler, Error> {
    let env = Env::from_process();
    let home = config::resolve_home(home, &env);
    let file = config::load_file(&home)?;
    let settings = cron_settings(&home, &file)?;
    let db = settings_db(&home)?;
    let gm = std::env::current_exe().map_err(Error::io("locate", Path::new("gm")))?;
    let home = std::path::absolute(&home).unwrap_or(home);
    let specs = settings.jobs.iter().map(|j| spec(j, &gm, &home)).collect();
    let metrics = Arc::new(JobMetrics::default());
    for j in &settings.jobs {
        metrics.declare(&j.name);
    }
    Ok(Scheduler {
        settings,
        specs,
        recorder: Arc::new(LedgerRecorder { ledger: Ledger::beside(&db), metrics }),
        state_dir: state_dir(&db),
    })
}

fn settings_db(home: &Path) -> Result<PathBuf, Error> {
    Ok(settings(Some(home), None)?.db_path)
}

fn spec(job: &JobConfig, gm: &Path, home: &Path) -> JobSpec {
    JobSpec {
        name: job.name.clone(),
        kind: job.kind.name().to_string(),
        schedule: job.schedule.clone(),
        command: vec![
            gm.display().to_string(),
            "cron".into(),
            "exec".into(),
            job.name.clone(),
            "--home".into(),
            home.display().to_string(),
        ],
        timeout: job.timeout,
        jitter: job.jitter,
        missed_grace: job.missed_grace,
    }
}

/// Records runs in the ops ledger (kind `job`) and in the job metrics: the glue between the
/// scheduler (which knows no ops) and the ops ledger.
pub struct LedgerRecorder {
    ledger: Ledger,
    /// Counters for `/metrics`.
    pub metrics: Arc<JobMetrics>,
}

impl Recorder for LedgerRecorder {
    fn record(&self, run: &Run) {
        self.metrics.observe(run);
        let mut details = Map::new();
        details.insert("job", run.job.as_str());
        details.insert("kind", run.kind.as_str());
        let record = Record {
            kind: LedgerKind::Job,
            outcome: run.outcome,
            artifact: Some(run.job.clone()),
            sha256: None,
            size: None,
            message: run.message.clone(),
            details: Value::Object(details),
        };
        let span = Span { started_at: run.started_at, finished_at: run.finished_at, duration: run.duration };
        self.ledger.record_logged(&record, span);
    }
}

impl LedgerRecorder {
    /// The last recorded run of `job` (none when the ledger cannot be read).
    pub(crate) fn last_run(&self, job: &str) -> Option<Entry> {
        self.ledger.last_run(job).ok()?
    }

    /// When `job` last started a run (skips do not count; none when the ledger cannot be read).
    pub(crate) fn last_started(&self, job: &str) -> Option<DateTime<Utc>> {
        self.ledger.last_started(job).ok()?
    }
}

/// Starts the scheduler thread; it stops (waiting for running jobs up to the configured grace) when
/// `stop` is set.
pub(crate) fn start(s: &Scheduler, stop: Arc<AtomicBool>) -> Result<std::thread::JoinHandle<()>, Error> {
    let recorder = Arc::clone(&s.recorder);
    let runner = Runner::new(s.specs.clone(), recorder.clone(), SystemClock.now(), |job| recorder.last_started(job));
    for j in &s.specs {
        log::info!(target: "gm::sched", "job {} ({}) on {:?}", j.name, j.kind, j.schedule.source());
    }
    runner::spawn(runner, Arc::new(|| SystemClock.now()), stop, s.settings.shutdown_grace).map_err(|source| Error::Io {
        action: "start thread",
        path: PathBuf::from("sched-runner"),
        source,
    })
}

fn list(args: ListArgs) -> Result<u8, Error> {
    let home = super::home::existing(args.home.as_deref(), &Env::from_process())?;
    let s = load(Some(&home))?;
    let now = SystemClock.now();
    let plan = Runner::plan(&s.specs, now, 3);
    let mut text = format!("{:<16} {:<14} {:<18} {:<62} last", "job", "kind", "schedule", "next (UTC)");
    let mut items = Vec::new();
    for p in &plan {
        let last = s.recorder.last_run(&p.name);
        let next: Vec<String> = p.next.iter().map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).collect();
        let last_text = last.as_ref().map_or("never".to_string(), |e| format!("{} at {}", e.outcome, e.started_at));
        text.push_str(&format!(
            "\n{:<16} {:<14} {:<18} {:<62} {last_text}",
            p.name,
            p.kind,
            p.schedule,
            next.join(" ")
        ));
        let mut m = Map::new();
        m.insert("job", p.name.as_str());
        m.insert("kind", p.kind.as_str());
        m.insert("schedule", p.schedule.as_str());
        m.insert("next", Value::Array(next.into_iter().map(Value::from).collect()));
        m.insert("last_outcome", last.as_ref().map_or(Value::Null, |e| Value::from(e.outcome.as_str())));
        m.insert("last_started_at", last.as_ref().map_or(Value::Null, |e| Value::from(e.started_at.as_str())));
        items.push(Value::Object(m));
    }
    if plan.is_empty() {
        text = "no jobs: declare them as [cron.jobs.NAME] tables in gm.toml".to_string();
    }
    Output { json: args.json }.result(&text, &Value::Array(items));
    Ok(0)
}

fn run_scheduler(args: RunArgs) -> Result<u8, Error> {
    let home = super::home::existing(args.home.as_deref(), &Env::from_process())?;
    let s = load(Some(&home))?;
    if s.specs.is_empty() {
        return Err(Error::refused("no jobs are declared", "declare them as [cron.jobs.NAME] tables in gm.toml"));
    }
    let signalled = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&signalled)).map_err(|source| Error::Io {
            action: "install signal handler for",
            path: PathBuf::from(format!("signal {sig}")),
            source,
        })?;
    }
    let handle = start(&s, Arc::clone(&signalled))?;
    log::info!(target: "gm::sched", "scheduler running {} job(s); SIGTERM stops it", s.specs.len());
    let _ = handle.join();
    log::info!(target: "gm::sched", "scheduler stopped");
    Ok(0)
}

fn run_once(args: RunOnceArgs) -> Result<u8, Error> {
    let home = super::home::existing(args.home.as_deref(), &Env::from_process())?;
    let s = load(Some(&home))?;
    let Some(spec) = s.specs.iter().find(|j| j.name == args.job).cloned() else {
        let configured = s.specs.iter().map(|j| j.name.clone()).collect();
        return Err(Named::UnknownJob { name: args.job.clone(), configured }.into());
    };
    let timeout = spec.timeout;
    let mut runner = Runner::new(vec![spec], s.recorder.clone(), SystemClock.now(), |_| None);
    // Constructed with no last run, the job is due now (its fire time is within the grace) or at
    // its next fire time; run-once fires it now either way.
    let now = SystemClock.now();
    runner.force_due(now);
    runner.tick(now);
    let deadline = std::time::Instant::now() + timeout + Duration::from_secs(5);
    while runner.running() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        runner.tick(SystemClock.now());
    }
    runner.shutdown(Duration::ZERO, || SystemClock.now());
    let last = s.recorder.last_run(&args.job);
    let (outcome, message) =
        last.as_ref().map_or((Outcome::Failed.as_str().to_string(), "no record".to_string()), |e| {
            (e.outcome.clone(), e.message.clone())
        });
    let mut m = Map::new();
    m.insert("job", args.job.as_str());
    m.insert("message", message.as_str());
    m.insert("outcome", outcome.as_str());
    Output { json: args.json }.result(&format!("{}: {outcome} ({message})", args.job), &Value::Object(m));
    Ok(if outcome == Outcome::Ok.as_str() { 0 } else { 1 })
}

fn exec(args: ExecArgs, run_argv: RunArgv<'_>) -> Result<u8, Error> {
    let env = Env::from_process();
    let home = super::home::existing(args.home.as_deref(), &env)?;
    let file = config::load_file(&home)?;
    let settings = cron_settings(&home, &file)?;
    let job = settings.jobs.iter().find(|j| j.name == args.job).ok_or_else(|| Named::UnknownJob {
        name: args.job.clone(),
        configured: settings.jobs.iter().map(|j| j.name.clone()).collect(),
    })?;
    let state = state_dir(&settings_db(&home)?);
    let served = match args.served_url {
        Some(url) => url,
        None => {
            let serve = config::serve_settings(&home, &file, &env, &config::ServeFlags::default())?;
            served_url(serve.bind, serve.tls.is_some())
        }
    };
    let argv = command_for(job, &home, &state, &served, SystemClock.now())?;
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    run_argv(&refs).map_err(|output| {
        Error::refused(
            format!("job {} built an invalid command {:?}: {}", job.name, argv, output),
            "check its options in gm.toml",
        )
    })?
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The gm command line a job runs at `now`; `served` is the URL a probe target "served" stands for.
fn command_for(
    job: &JobConfig,
    home: &Path,
    state_dir: &Path,
    served: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>, Error> {
    let mut v: Vec<String> = Vec::new();
    let key = |v: &mut Vec<String>, flag: &str, id: &Option<PathBuf>, pass: &Option<PathBuf>| match (id, pass) {
        (Some(f), _) => v.extend([flag.to_string(), s(f)]),
        (None, Some(p)) => v.extend(["--passphrase-file".to_string(), s(p)]),
        (None, None) => {}
    };
    match &job.kind {
        JobKind::Backup { dir, destinations, recipients_file, passphrase_file } => {
            v.extend(["managed", "backup", "--dir"].map(String::from));
            v.push(s(dir));
            for d in destinations {
                v.extend(["--to".to_string(), d.clone()]);
            }
            key(&mut v, "--recipients-file", recipients_file, passphrase_file);
        }
        JobKind::Verify { dir, identity_file, passphrase_file } => {
            let pinned = super::backup_signing::pinned(Some(home), None)?;
            let newest = match super::destinations::Location::parse(dir)? {
                super::destinations::Location::Local(dir) => newest_backup(&dir, &pinned)?.0,
                super::destinations::Location::S3(url) => {
                    PathBuf::from(super::destinations::newest_in_bucket(&url, Some(home), &pinned)?.0.to_string())
                }
            };
            v.extend(["managed".into(), "verify".into(), s(&newest)]);
            key(&mut v, "--identity", identity_file, passphrase_file);
        }
        JobKind::RestoreDrill { dir, identity_file, passphrase_file, report_file } => {
            v.extend(["managed".into(), "restore-drill".into(), "--latest".into(), s(dir)]);
            key(&mut v, "--identity", identity_file, passphrase_file);
            if let Some(r) = report_file {
                v.extend(["--report".into(), s(r)]);
            }
        }
        JobKind::AuditExport { dir, window_hours } => {
            let since = now - chrono::Duration::hours(i64::try_from(*window_hours).unwrap_or(24));
            // Two runs within one second (the scheduler's catch-up and a `gm cron run-once`) must not
            // collide: the second gets the milliseconds in its name.
            let mut name = format!("audit-{}.jsonl", now.format("%Y%m%dT%H%M%SZ"));
            if dir.join(&name).exists() {
                name = format!("audit-{}.jsonl", now.format("%Y%m%dT%H%M%S%.3fZ"));
            }
            v.extend(["managed".into(), "audit-export".into(), "--output".into(), s(&dir.join(name))]);
            v.extend(["--since".into(), since.to_rfc3339(), "--until".into(), now.to_rfc3339()]);
        }
        JobKind::AuditPrune { dir, max_age_days, max_rows } => {
            v.extend(["managed".into(), "audit-prune".into(), "--dir".into(), s(dir)]);
            if let Some(d) = max_age_days {
                v.extend(["--max-age-days".into(), d.to_string()]);
            }
            if let Some(n) = max_rows {
                v.extend(["--max-rows".into(), n.to_string()]);
            }
        }
        JobKind::Prune { dir, keep_last, keep_daily, keep_weekly } => {
            v.extend(["managed".into(), "prune".into(), "--dir".into(), s(dir)]);
            for (flag, n) in [("--keep-last", keep_last), ("--keep-daily", keep_daily), ("--keep-weekly", keep_weekly)]
            {
                if let Some(n) = n {
                    v.extend([flag.to_string(), n.to_string()]);
                }
            }
        }
        JobKind::Probe { target, checks, root_public_key, state_file, ping_url, ca_file } => {
            let target = if target == SERVED_TARGET { served.to_string() } else { target.clone() };
            v.extend(["probe".into(), "--na".into(), target]);
            for (flag, value) in [("--check", checks), ("--root-public-key", root_public_key)] {
                if let Some(x) = value {
                    v.extend([flag.to_string(), x.clone()]);
                }
            }
            // The dead-man URL is a secret (whoever holds it can report "up"): the child reads it
            // from a private file, so it is never on a command line `ps` shows.
            if let Some(url) = ping_url {
                let file = state_dir.join(format!("probe-{}.ping-url", job.name));
                crate::files::atomic::write_atomic(&file, url.as_bytes(), crate::files::atomic::Mode::Private, true)
                    .map_err(Error::io("write", &file))?;
                v.extend(["--ping-url-file".into(), s(&file)]);
            }
            if let Some(f) = state_file {
                v.extend(["--state-file".into(), s(f)]);
            }
            if let Some(f) = ca_file {
                v.extend(["--ca-file".into(), s(f)]);
            }
            v.extend(["--prom-textfile".into(), s(&probe_textfile(state_dir, &job.name))]);
            return Ok(v);
        }
    }
    v.extend(["--home".into(), s(home)]);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::{command_for, served_url};
    use crate::config::cron::{JobConfig, JobKind};

    #[test]
    fn a_second_audit_export_within_the_same_second_gets_its_own_file() {
        let dir = std::env::temp_dir().join(format!("gm-cron-export-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| unreachable!("{e}"));
        let job = JobConfig {
            name: "audit-export".into(),
            kind: JobKind::AuditExport { dir: dir.clone(), window_hours: 24 },
            schedule: crate::sched::crontab::Schedule::parse("@daily").unwrap_or_else(|e| unreachable!("{e}")),
            timeout: std::time::Duration::from_secs(60),
            jitter: std::time::Duration::ZERO,
            missed_grace: chrono::Duration::zero(),
        };
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-06T00:31:14.250Z")
            .unwrap_or_else(|e| unreachable!("{e}"))
            .with_timezone(&chrono::Utc);
        let output =
            |argv: Vec<String>| argv.iter().skip_while(|a| *a != "--output").nth(1).cloned().unwrap_or_default();
        let first = output(command_for(&job, &dir, &dir, "", now).unwrap_or_else(|e| unreachable!("{e}")));
        assert!(first.ends_with("audit-20261206T003114Z.jsonl"), "{first}");
        std::fs::write(&first, "").unwrap_or_else(|e| unreachable!("{e}"));
        let second = output(command_for(&job, &dir, &dir, "", now).unwrap_or_else(|e| unreachable!("{e}")));
        assert!(second.ends_with("audit-20261206T003114.250Z.jsonl"), "{second}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_served_url_of_an_unspecified_address_is_loopback() {
        let addr = |s: &str| s.parse().unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(served_url(addr("0.0.0.0:8443"), false), "http://127.0.0.1:8443");
        assert_eq!(served_url(addr("[::]:9000"), false), "http://[::1]:9000");
        assert_eq!(served_url(addr("127.0.0.1:18443"), false), "http://127.0.0.1:18443");
        assert_eq!(served_url(addr("0.0.0.0:8443"), true), "https://127.0.0.1:8443", "built-in TLS");
    }
}
