//! The job runner: fires jobs on their schedules as child processes and applies the semantics
//! production cron runners get wrong, each tested here at explicit instants (never by sleeping for
//! minutes):
//!
//! - **No overlap.** A fire time that finds the previous run still going is recorded as `skipped`
//!   (and counted), never queued.
//! - **A timeout really stops the job.** The child runs in its own process group and the whole group
//!   is killed (a `restore-drill` job's ephemeral server dies with it); the run is recorded `timeout`.
//! - **No burst after downtime.** Missed fire times are not replayed; only the most recent one, if it
//!   is within the job's grace window and the ledger shows no run since, is run once at start.
//! - **Shutdown waits.** `shutdown` stops firing, waits for running jobs up to a deadline, then kills
//!   what is left.
//! - **Failures stay local.** A job that fails, cannot start or crashes is recorded; the runner goes on.
//!
//! Time is UTC throughout; `tick(now)` takes the instant so tests control it. Jitter is a
//! deterministic offset per job and fire time (no randomness to mock).

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::crontab::Schedule;

/// One job as configured.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// Unique name (`gm.toml` table key).
    pub name: String,
    /// What the job does, for listings (`backup`, `probe`, …).
    pub kind: String,
    /// When it fires.
    pub schedule: Schedule,
    /// The command: program then arguments.
    pub command: Vec<String>,
    /// How long a run may take before its process group is killed.
    pub timeout: Duration,
    /// Up to this much delay after each fire time (spreads load across hosts).
    pub jitter: Duration,
    /// A fire time missed (downtime) at most this long ago is run once at start.
    pub missed_grace: chrono::Duration,
}

/// How a run ended (a scheduled job's, or any run the ops ledger records). The strings are the
/// ledger's `outcome` column and the job metrics' labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// `ok`: exit status 0.
    Ok,
    /// `failed`: non-zero exit, a signal, or the command could not start.
    Failed,
    /// `skipped`: not started, the previous run was still going.
    Skipped,
    /// `timeout`: killed after its timeout (or at shutdown).
    Timeout,
}

impl Outcome {
    /// `Ok` when `ok`, else `Failed`.
    pub(crate) fn of(ok: bool) -> Outcome {
        if ok {
            Outcome::Ok
        } else {
            Outcome::Failed
        }
    }

    /// The ledger and metrics label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::Timeout => "timeout",
        }
    }

    /// The outcome a label names, if gm knows it.
    pub fn parse(s: &str) -> Option<Outcome> {
        [Outcome::Ok, Outcome::Failed, Outcome::Skipped, Outcome::Timeout].into_iter().find(|o| o.as_str() == s)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A finished (or skipped) run.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    /// The job.
    pub job: String,
    /// Its kind.
    pub kind: String,
    /// When it started (or was skipped).
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall time taken.
    pub duration: Duration,
    /// The exit status and the last line the job wrote to stderr, or why it was skipped or killed.
    pub message: String,
}

/// Where runs go (the ops ledger, logs and metrics; wired by the CLI).
pub(crate) trait Recorder: Send + Sync {
    /// Records one run.
    fn record(&self, run: &Run);
}

struct Active {
    child: Child,
    started_at: DateTime<Utc>,
    started: Instant,
    deadline: DateTime<Utc>,
    /// The end of what the job wrote to stderr, then to stdout (`gm probe` reports on stdout).
    tails: [Tail; 2],
}

/// The last few KiB a job wrote to one of its pipes, kept by a reader thread.
struct Tail {
    text: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

struct JobState {
    spec: JobSpec,
    next: Option<DateTime<Utc>>,
    active: Option<Active>,
    skipped: u64,
}

/// The runner state; drive it with [`Runner::tick`] or [`spawn`].
pub(crate) struct Runner {
    jobs: Vec<JobState>,
    recorder: Arc<dyn Recorder>,
}

/// A job's place in the plan, for `gm cron list`.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    /// The job.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// The schedule as written.
    pub schedule: String,
    /// The next fire times.
    pub next: Vec<DateTime<Utc>>,
}

impl Runner {
    /// A runner at `now`. `last_started(job)` (from the ledger) decides the missed-run policy.
    pub fn new(
        specs: Vec<JobSpec>,
        recorder: Arc<dyn Recorder>,
        now: DateTime<Utc>,
        last_started: impl Fn(&str) -> Option<DateTime<Utc>>,
    ) -> Runner {
        let jobs = specs
            .into_iter()
            .map(|spec| {
                let missed = spec
                    .schedule
                    .last_at_or_before(now, spec.missed_grace)
                    .filter(|due| last_started(&spec.name).is_none_or(|last| last < *due));
                let next = match missed {
                    Some(_) => Some(now),
                    None => fire_time(&spec, now),
                };
                JobState { spec, next, active: None, skipped: 0 }
            })
            .collect();
        Runner { jobs, recorder }
    }

    /// The plan: each job's next `n` fire times after `now` (jitter not included).
    pub(crate) fn plan(specs: &[JobSpec], now: DateTime<Utc>, n: usize) -> Vec<Planned> {
        specs
            .iter()
            .map(|s| Planned {
                name: s.name.clone(),
                kind: s.kind.clone(),
                schedule: s.schedule.source().to_string(),
                next: s.schedule.upcoming(now, n),
            })
            .collect()
    }

    /// Reaps finished runs, kills timed-out ones and fires due jobs. Returns the number running.
    pub(crate) fn tick(&mut self, now: DateTime<Utc>) -> usize {
        for i in 0..self.jobs.len() {
            self.reap(i, now);
            let due = self.jobs[i].next.is_some_and(|t| now >= t);
            if !due {
                continue;
            }
            let job = &mut self.jobs[i];
            job.next = fire_time(&job.spec, now);
            if job.active.is_some() {
                job.skipped += 1;
                let run = Run {
                    job: job.spec.name.clone(),
                    kind: job.spec.kind.clone(),
                    started_at: now,
                    finished_at: now,
                    outcome: Outcome::Skipped,
                    duration: Duration::ZERO,
                    message: format!("previous run still going ({} skipped so far)", job.skipped),
                };
                log::warn!(target: "gm::sched", "job {} skipped: {}", run.job, run.message);
                self.recorder.record(&run);
                continue;
            }
            match start(&job.spec, now) {
                Ok(active) => {
                    log::debug!(target: "gm::sched", "job {} started (pid {})", job.spec.name, active.child.id());
                    job.active = Some(active);
                }
                Err(e) => {
                    let run = Run {
                        job: job.spec.name.clone(),
                        kind: job.spec.kind.clone(),
                        started_at: now,
                        finished_at: now,
                        outcome: Outcome::Failed,
                        duration: Duration::ZERO,
                        message: format!("cannot start {:?}: {e}", job.spec.command.first()),
                    };
                    log::error!(target: "gm::sched", "job {} failed: {}", run.job, run.message);
                    self.recorder.record(&run);
                }
            }
        }
        self.running()
    }

    /// Makes every job due at `now` (for `gm cron run-once`).
    pub(crate) fn force_due(&mut self, now: DateTime<Utc>) {
        for j in &mut self.jobs {
            j.next = Some(now);
        }
    }

    /// How many jobs are running.
    pub(crate) fn running(&self) -> usize {
        self.jobs.iter().filter(|j| j.active.is_some()).count()
    }

    /// Skipped fires per job so far.
    #[cfg(test)]
    pub(crate) fn skipped(&self, job: &str) -> u64 {
        self.jobs.iter().find(|j| j.spec.name == job).map_or(0, |j| j.skipped)
    }

    /// The next instant something is due (a fire time or a timeout).
    pub(crate) fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.jobs.iter().flat_map(|j| [j.next, j.active.as_ref().map(|a| a.deadline)]).flatten().min()
    }

    /// Stops firing; waits up to `grace` (real time) for running jobs, then kills the rest.
    pub(crate) fn shutdown(&mut self, grace: Duration, now: impl Fn() -> DateTime<Utc>) {
        for j in &mut self.jobs {
            j.next = None;
        }
        let until = Instant::now() + grace;
        while self.running() > 0 && Instant::now() < until {
            for i in 0..self.jobs.len() {
                self.reap(i, now());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for i in 0..self.jobs.len() {
            if self.jobs[i].active.is_some() {
                self.kill(i, now(), "stopped at shutdown after the grace period");
            }
        }
    }

    fn reap(&mut self, i: usize, now: DateTime<Utc>) {
        let Some(active) = self.jobs[i].active.as_mut() else { return };
        match active.child.try_wait() {
            Ok(Some(status)) => {
                let active = self.jobs[i].active.take();
                if let Some(a) = active {
                    let tail = finish_tails(a.tails);
                    let outcome = if status.success() { Outcome::Ok } else { Outcome::Failed };
                    let message = match (status.code(), tail.is_empty()) {
                        (Some(c), true) => format!("exit {c}"),
                        (Some(c), false) => format!("exit {c}: {tail}"),
                        (None, _) => format!("killed by a signal ({status}) {tail}").trim_end().to_string(),
                    };
                    self.finish(i, a.started_at, a.started, now, outcome, message);
                }
            }
            Ok(None) if now >= active.deadline => {
                let msg = format!("timed out after {} s; process group killed", self.jobs[i].spec.timeout.as_secs());
                self.kill(i, now, &msg);
            }
            Ok(None) => {}
            Err(e) => log::error!(target: "gm::sched", "cannot poll job {}: {e}", self.jobs[i].spec.name),
        }
    }

    fn kill(&mut self, i: usize, now: DateTime<Utc>, why: &str) {
        if let Some(mut a) = self.jobs[i].active.take() {
            kill_group(&mut a.child);
            let _ = a.child.wait();
            let tail = finish_tails(a.tails);
            let message = if tail.is_empty() { why.to_string() } else { format!("{why}; last output: {tail}") };
            self.finish(i, a.started_at, a.started, now, Outcome::Timeout, message);
        }
    }

    fn finish(
        &self,
        i: usize,
        started_at: DateTime<Utc>,
        started: Instant,
        now: DateTime<Utc>,
        outcome: Outcome,
        message: String,
    ) {
        let spec = &self.jobs[i].spec;
        let run = Run {
            job: spec.name.clone(),
            kind: spec.kind.clone(),
            started_at,
            finished_at: now.max(started_at),
            outcome,
            duration: started.elapsed(),
            message,
        };
        match outcome {
            // Routine: the ledger and the metrics keep every run; the log keeps the exceptions.
            Outcome::Ok => log::debug!(target: "gm::sched", "job {} ok in {} ms", run.job, run.duration.as_millis()),
            _ => log::error!(target: "gm::sched", "job {} {}: {}", run.job, outcome.as_str(), run.message),
        }
        self.recorder.record(&run);
    }
}

/// The next fire time after `now`, plus the job's deterministic jitter.
fn fire_time(spec: &JobSpec, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let at = spec.schedule.next_after(now)?;
    let jitter_ms = u64::try_from(spec.jitter.as_millis()).unwrap_or(u64::MAX);
    if jitter_ms == 0 {
        return Some(at);
    }
    // FNV-1a over the name and fire time: stable across restarts, different per job.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in spec.name.bytes().chain(at.timestamp().to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    Some(at + chrono::Duration::milliseconds(i64::try_from(h % jitter_ms).unwrap_or(0)))
}

fn start(spec: &JobSpec, now: DateTime<Utc>) -> std::io::Result<Active> {
    let (program, args) = spec
        .command
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"))?;
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn()?;
    let stderr = keep_tail(child.stderr.take(), &format!("sched-{}", spec.name));
    let stdout = keep_tail(child.stdout.take(), &format!("sched-{}-out", spec.name));
    let timeout = chrono::Duration::from_std(spec.timeout).unwrap_or(chrono::Duration::MAX);
    Ok(Active { child, started_at: now, started: Instant::now(), deadline: now + timeout, tails: [stderr, stdout] })
}

/// Drains `pipe` on a thread, keeping its last few KiB.
fn keep_tail(pipe: Option<impl Read + Send + 'static>, thread_name: &str) -> Tail {
    let text = Arc::new(Mutex::new(String::new()));
    let reader = pipe.and_then(|mut pipe| {
        let text = Arc::clone(&text);
        std::thread::Builder::new()
            .name(thread_name.to_string())
            .spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut t = text.lock().unwrap_or_else(|p| p.into_inner());
                    t.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if t.len() > 8192 {
                        let cut = t.len() - 4096;
                        let cut = (cut..t.len()).find(|i| t.is_char_boundary(*i)).unwrap_or(t.len());
                        t.drain(..cut);
                    }
                }
            })
            .ok()
    });
    Tail { text, reader }
}

/// Why a run ended as the job said it: its stderr tail ([`finish_tail`]), else the first line of
/// its stdout (where `gm probe`, like every Nagios plugin, writes its verdict).
fn finish_tails([stderr, stdout]: [Tail; 2]) -> String {
    let err = finish_tail(stderr.reader, &stderr.text);
    if let Some(r) = stdout.reader {
        let _ = r.join();
    }
    if !err.is_empty() {
        return err;
    }
    let out = stdout.text.lock().unwrap_or_else(|p| p.into_inner());
    out.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default().chars().take(500).collect()
}

/// The last non-empty stderr line, after the reader has drained the pipe.
fn finish_tail(reader: Option<std::thread::JoinHandle<()>>, tail: &Mutex<String>) -> String {
    if let Some(r) = reader {
        let _ = r.join();
    }
    let t = tail.lock().unwrap_or_else(|p| p.into_inner());
    let lines: Vec<&str> = t.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    // gm reports `error: …` then `hint: …`: keep both; otherwise the last line.
    let from = lines.iter().rposition(|l| l.starts_with("error: ")).unwrap_or(lines.len().saturating_sub(1));
    lines.get(from..).unwrap_or_default().join(" ").chars().take(500).collect()
}

/// Kills the child's whole process group (it leads one: `process_group(0)`), falling back to the
/// child alone.
fn kill_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let killed = Command::new("kill")
        .args(["-KILL", "--", &group])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !killed {
        let _ = child.kill();
    }
}

/// Runs the runner on a named thread until `stop` is set, then shuts it down with `grace`. Between
/// ticks the thread parks (at most 1 s, 200 ms while a job runs): whoever sets `stop` and can
/// should also unpark it (`gm serve` does, so a SIGTERM is not held up by the nap).
pub(crate) fn spawn(
    mut runner: Runner,
    now: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    grace: Duration,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("sched-runner".into()).spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let t = now();
            let running = runner.tick(t);
            // Sleep until the next fire or deadline, but poll running children and the stop flag often.
            let until_next =
                runner.next_wake().map_or(Duration::from_secs(1), |w| (w - t).to_std().unwrap_or_default());
            let nap = until_next.min(if running > 0 { Duration::from_millis(200) } else { Duration::from_secs(1) });
            std::thread::park_timeout(nap.max(Duration::from_millis(10)));
        }
        runner.shutdown(grace, || now());
    })
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
