//! Runner semantics at explicit instants, with real child processes (`sh`, `sleep`).

use super::*;
use chrono::TimeZone;

#[derive(Default)]
struct Seen(Mutex<Vec<Run>>);

impl Recorder for Seen {
    fn record(&self, run: &Run) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(run.clone());
    }
}

impl Seen {
    fn runs(&self) -> Vec<Run> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, h, m, s).single().unwrap_or_default()
}

fn job(name: &str, schedule: &str, script: &str, timeout_s: u64) -> JobSpec {
    JobSpec {
        name: name.into(),
        kind: "test".into(),
        schedule: Schedule::parse(schedule).unwrap_or_else(|e| unreachable!("{e}")),
        command: vec!["sh".into(), "-c".into(), script.into()],
        timeout: Duration::from_secs(timeout_s),
        jitter: Duration::ZERO,
        missed_grace: chrono::Duration::minutes(30),
    }
}

/// Ticks at `now` until `n` runs are recorded (children finish in real time; bounded wait).
fn until_runs(r: &mut Runner, seen: &Seen, now: DateTime<Utc>, n: usize) -> Vec<Run> {
    let give_up = Instant::now() + Duration::from_secs(20);
    while seen.runs().len() < n && Instant::now() < give_up {
        r.tick(now);
        std::thread::sleep(Duration::from_millis(10));
    }
    seen.runs()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit(')').next().unwrap_or_default().trim_start().starts_with('Z'))
        .unwrap_or(false)
}

#[test]
fn fires_on_schedule_and_records_exit_and_last_stderr_line() {
    let seen = Arc::new(Seen::default());
    let jobs = vec![
        job("ok", "*/5 * * * *", "echo working >&2; exit 0", 60),
        job("bad", "*/5 * * * *", "echo first >&2; echo 'disk full' >&2; exit 3", 60),
    ];
    let mut r = Runner::new(jobs, seen.clone(), t(10, 1, 0), |_| Some(t(10, 0, 0)));
    assert_eq!(r.tick(t(10, 4, 59)), 0, "nothing due before 10:05");
    assert!(seen.runs().is_empty());
    r.tick(t(10, 5, 0));
    let runs = until_runs(&mut r, &seen, t(10, 5, 1), 2);
    let ok = runs.iter().find(|x| x.job == "ok").map(|x| (x.outcome, x.message.clone()));
    let bad = runs.iter().find(|x| x.job == "bad").map(|x| (x.outcome, x.message.clone()));
    assert_eq!(ok, Some((Outcome::Ok, "exit 0: working".to_string())));
    assert_eq!(bad, Some((Outcome::Failed, "exit 3: disk full".to_string())));
    assert!(runs.iter().all(|x| x.started_at == t(10, 5, 0)));
    // A failing job does not stop the runner: both fire again at 10:10.
    r.tick(t(10, 10, 0));
    assert_eq!(until_runs(&mut r, &seen, t(10, 10, 1), 4).len(), 4);
}

#[test]
fn no_overlap_a_fire_during_a_run_is_skipped_and_counted() {
    let seen = Arc::new(Seen::default());
    let mut r =
        Runner::new(vec![job("slow", "* * * * *", "sleep 30", 600)], seen.clone(), t(10, 0, 30), |_| Some(t(10, 0, 0)));
    assert_eq!(r.tick(t(10, 1, 0)), 1);
    assert_eq!(r.tick(t(10, 2, 0)), 1, "still one run, not two");
    r.tick(t(10, 3, 0));
    let runs = seen.runs();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|x| x.outcome == Outcome::Skipped), "{runs:?}");
    assert_eq!(r.skipped("slow"), 2);
    assert!(runs[1].message.contains("2 skipped"), "{}", runs[1].message);
    r.shutdown(Duration::ZERO, || t(10, 3, 1));
    assert_eq!(seen.runs().last().map(|x| x.outcome), Some(Outcome::Timeout));
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let seen = Arc::new(Seen::default());
    let pidfile = std::env::temp_dir().join(format!("gm-sched-grandchild-{}", std::process::id()));
    let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
    let mut r =
        Runner::new(vec![job("hang", "0 * * * *", &script, 90)], seen.clone(), t(9, 59, 30), |_| Some(t(9, 0, 0)));
    r.tick(t(10, 0, 0));
    let give_up = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&pidfile).map_or(true, |s| s.trim().is_empty()) && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(10));
    }
    let grandchild: u32 = std::fs::read_to_string(&pidfile).unwrap_or_default().trim().parse().unwrap_or(0);
    let _ = std::fs::remove_file(&pidfile);
    assert!(grandchild > 0 && alive(grandchild));
    r.tick(t(10, 1, 29));
    assert!(seen.runs().is_empty(), "89 s in: not yet");
    r.tick(t(10, 1, 30));
    let runs = seen.runs();
    assert_eq!(runs.first().map(|x| x.outcome), Some(Outcome::Timeout), "{runs:?}");
    assert!(runs[0].message.contains("timed out after 90 s"), "{}", runs[0].message);
    let give_up = Instant::now() + Duration::from_secs(5);
    while alive(grandchild) && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!alive(grandchild), "the job's own child died with it");
}

#[test]
fn after_downtime_one_missed_run_within_grace_never_a_burst() {
    let spec = || job("hourly", "0 * * * *", "exit 0", 60);
    // Down from 07:30 to 10:10: 08:00, 09:00 and 10:00 were missed; only 10:00 is within 30 min.
    let seen = Arc::new(Seen::default());
    let mut r = Runner::new(vec![spec()], seen.clone(), t(10, 10, 0), |_| Some(t(7, 0, 0)));
    assert_eq!(r.next_wake(), Some(t(10, 10, 0)), "run once now");
    r.tick(t(10, 10, 0));
    assert_eq!(until_runs(&mut r, &seen, t(10, 10, 1), 1).len(), 1);
    assert_eq!(r.tick(t(10, 59, 0)), 0);
    assert_eq!(r.next_wake(), Some(t(11, 0, 0)));
    // Outside the grace window: wait for the next fire time.
    let r = Runner::new(vec![spec()], seen.clone(), t(10, 40, 0), |_| Some(t(7, 0, 0)));
    assert_eq!(r.next_wake(), Some(t(11, 0, 0)));
    // Already ran after the missed fire time: nothing to catch up.
    let r = Runner::new(vec![spec()], seen.clone(), t(10, 10, 0), |_| Some(t(10, 0, 2)));
    assert_eq!(r.next_wake(), Some(t(11, 0, 0)));
}

#[test]
fn a_command_that_cannot_start_is_a_failed_run_and_the_runner_goes_on() {
    let seen = Arc::new(Seen::default());
    let mut spec = job("ghost", "* * * * *", "", 60);
    spec.command = vec!["/nonexistent/gm".into(), "managed".into()];
    let mut r = Runner::new(vec![spec, job("fine", "* * * * *", "exit 0", 60)], seen.clone(), t(10, 0, 30), |_| {
        Some(t(10, 0, 0))
    });
    r.tick(t(10, 1, 0));
    let runs = until_runs(&mut r, &seen, t(10, 1, 1), 2);
    let ghost = runs.iter().find(|x| x.job == "ghost").map(|x| (x.outcome, x.message.contains("cannot start")));
    assert_eq!(ghost, Some((Outcome::Failed, true)));
    assert!(runs.iter().any(|x| x.job == "fine" && x.outcome == Outcome::Ok));
}

#[test]
fn shutdown_waits_for_a_running_job_within_the_grace() {
    let seen = Arc::new(Seen::default());
    let mut r =
        Runner::new(vec![job("short", "* * * * *", "sleep 0.3; exit 0", 60)], seen.clone(), t(10, 0, 30), |_| {
            Some(t(10, 0, 0))
        });
    r.tick(t(10, 1, 0));
    r.shutdown(Duration::from_secs(20), || t(10, 1, 1));
    assert_eq!(seen.runs().first().map(|x| x.outcome), Some(Outcome::Ok), "finished, not killed");
    assert_eq!(r.next_wake(), None, "nothing fires after shutdown");
}

#[test]
fn jitter_is_stable_and_bounded() {
    let mut spec = job("j", "0 * * * *", "exit 0", 60);
    spec.jitter = Duration::from_secs(120);
    let a = fire_time(&spec, t(10, 10, 0));
    assert_eq!(a, fire_time(&spec, t(10, 10, 0)));
    let a = a.unwrap_or_default();
    assert!(a >= t(11, 0, 0) && a < t(11, 2, 0), "{a}");
    let plan = Runner::plan(&[spec], t(10, 10, 0), 3);
    assert_eq!(plan[0].next, [t(11, 0, 0), t(12, 0, 0), t(13, 0, 0)]);
}
