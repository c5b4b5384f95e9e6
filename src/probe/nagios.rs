//! Nagios statuses and exit codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), and upstream's alert
//! thresholds (`operations.md` §4.2) applied with a small state file of consecutive failures.
//!
//! Thresholds per check, when a state file is given:
//!
//! | check | a failure is | until | then |
//! |---|---|---|---|
//! | healthz | WARNING | 2 consecutive failures | CRITICAL |
//! | readyz | — | 1 failure | CRITICAL |
//! | metrics | OK (noted) | failing for 5 minutes | WARNING |
//! | connectome, genesis, crl, tls | — | 1 failure | CRITICAL |
//!
//! `/healthz` is liveness only and flaps during a crash restart (`RestartSec=5`), so upstream
//! alerts on the second consecutive failure; `/readyz` failing on a serving endpoint means clients
//! are being refused now, so the first failure is critical; `/metrics` is for dashboards, not for
//! serving, hence only a warning after 5 minutes. `--fail-after N` replaces every count (and the
//! metrics duration) by N consecutive failures, keeping each check's final severity. Without a
//! state file a run has no memory: every failure is judged as the last one of its threshold.
//!
//! A WARNING or UNKNOWN outcome neither counts nor resets failures; a pass resets them. The state
//! file names its target: a state written for another target is ignored, not merged.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};

use crate::crypto::canonical::to_pretty_string;
use crate::files::atomic::{write_atomic, Mode};
use crate::json::{parse, Map, ParseLimits, Value};
use crate::model::timestamp::{parse_db_time, pydantic_utc};

use super::error::ProbeError;
use super::finding::{CheckName, CheckResult, Outcome};

/// State file format version.
const STATE_VERSION: i64 = 1;

/// How long `/metrics` may fail before it is a warning (§4.2).
const METRICS_GRACE_MINUTES: i64 = 5;

/// A Nagios service status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exit 0.
    Ok,
    /// Exit 1.
    Warning,
    /// Exit 2.
    Critical,
    /// Exit 3: the probe could not tell (bad usage, a check that could not decide).
    Unknown,
}

impl Status {
    /// The Nagios exit code.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    /// `OK`, `WARNING`, `CRITICAL`, `UNKNOWN`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }

    /// Rank for the overall status: CRITICAL > WARNING > UNKNOWN > OK (the monitoring-plugins
    /// `max_state_alt` order), so a known problem is never hidden behind a check that could not
    /// decide.
    fn rank(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Unknown => 1,
            Status::Warning => 2,
            Status::Critical => 3,
        }
    }

    /// The worst of `statuses`; UNKNOWN when there are none.
    pub(crate) fn worst(statuses: impl IntoIterator<Item = Status>) -> Status {
        statuses.into_iter().max_by_key(|s| s.rank()).unwrap_or(Status::Unknown)
    }
}

/// When a failing check reaches its final severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// After this many consecutive failing runs.
    Count(u32),
    /// After failing for this long.
    Elapsed(Duration),
}

/// A check's threshold: the status of a failure before and after it is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Threshold {
    soft: Status,
    hard: Status,
    after: After,
}

fn threshold(check: CheckName, fail_after: Option<u32>) -> Threshold {
    let (soft, hard, default_after) = match check {
        CheckName::Healthz => (Status::Warning, Status::Critical, After::Count(2)),
        CheckName::Metrics => (Status::Ok, Status::Warning, After::Elapsed(Duration::minutes(METRICS_GRACE_MINUTES))),
        _ => (Status::Warning, Status::Critical, After::Count(1)),
    };
    Threshold { soft, hard, after: fail_after.map_or(default_after, After::Count) }
}

/// A check's result with its Nagios status.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Verdict {
    /// The raw result.
    pub result: CheckResult,
    /// The status after thresholds.
    pub status: Status,
    /// Consecutive failing runs including this one (0 unless it failed).
    pub consecutive_failures: u32,
    /// Why a failure is not (yet) at its final severity.
    pub note: Option<String>,
}

/// Failure history of one check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct CheckState {
    consecutive_failures: u32,
    failing_since: Option<DateTime<Utc>>,
}

/// The state file: failure history per check for one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProbeState {
    target: String,
    checks: BTreeMap<String, CheckState>,
}

impl ProbeState {
    /// Reads the state of `target` from `path`; a missing file, or one written for another
    /// target, is a fresh state.
    pub fn load(path: &Path, target: &str) -> Result<ProbeState, ProbeError> {
        let fresh = ProbeState { target: target.to_string(), checks: BTreeMap::new() };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(fresh),
            Err(source) => return Err(ProbeError::StateRead { path: path.to_path_buf(), source }),
        };
        let corrupt = |problem: String| ProbeError::StateCorrupt { path: path.to_path_buf(), problem };
        let value = parse(&bytes, &ParseLimits::default()).map_err(|e| corrupt(e.to_string()))?;
        let map = value.as_object().ok_or_else(|| corrupt("expected a JSON object".to_string()))?;
        if map.get("version").and_then(Value::as_i64) != Some(STATE_VERSION) {
            return Err(corrupt(format!("expected \"version\": {STATE_VERSION}")));
        }
        if map.get("target").and_then(Value::as_str) != Some(target) {
            return Ok(fresh);
        }
        let mut state = fresh;
        let checks = map.get("checks").and_then(Value::as_object).ok_or_else(|| corrupt("no checks object".into()))?;
        for (name, entry) in checks.iter() {
            let count = entry.as_object().and_then(|e| e.get("consecutive_failures")).and_then(Value::as_i64);
            let count = count
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| corrupt(format!("checks.{name}.consecutive_failures is not a non-negative integer")))?;
            let since = entry.as_object().and_then(|e| e.get("failing_since")).and_then(Value::as_str);
            let failing_since = since.and_then(parse_db_time);
            state.checks.insert(name.to_string(), CheckState { consecutive_failures: count, failing_since });
        }
        Ok(state)
    }

    /// Writes the state atomically (tmp, fsync, rename, fsync dir), mode 0600.
    pub(crate) fn save(&self, path: &Path) -> Result<(), ProbeError> {
        let mut checks = Map::new();
        for (name, s) in &self.checks {
            let mut entry = Map::new();
            entry.insert("consecutive_failures", Value::from(u64::from(s.consecutive_failures)));
            entry.insert("failing_since", s.failing_since.map_or(Value::Null, |t| Value::Str(pydantic_utc(t))));
            checks.insert(name.clone(), Value::Object(entry));
        }
        let mut root = Map::new();
        root.insert("version", Value::from(STATE_VERSION));
        root.insert("target", Value::Str(self.target.clone()));
        root.insert("checks", Value::Object(checks));
        let text = format!("{}\n", to_pretty_string(&Value::Object(root)));
        // Private like every other file gm keeps for itself: it names the target URL, which may carry
        // credentials, and only the probe reads it (issue 8 item 4).
        write_atomic(path, text.as_bytes(), Mode::Private, true)
            .map_err(|source| ProbeError::StateWrite { path: path.to_path_buf(), source })
    }
}

/// Gives each result its status, updating `state` when there is one.
pub(crate) fn judge(
    results: Vec<CheckResult>,
    mut state: Option<&mut ProbeState>,
    fail_after: Option<u32>,
    now: DateTime<Utc>,
) -> Vec<Verdict> {
    results.into_iter().map(|result| judge_one(result, state.as_deref_mut(), fail_after, now)).collect()
}

fn judge_one(
    result: CheckResult,
    state: Option<&mut ProbeState>,
    fail_after: Option<u32>,
    now: DateTime<Utc>,
) -> Verdict {
    let verdict =
        |status, consecutive_failures, note| Verdict { result: result.clone(), status, consecutive_failures, note };
    let key = result.check.name().to_string();
    match result.outcome {
        Outcome::Pass | Outcome::Warn => {
            if let Some(state) = state {
                state.checks.remove(&key);
            }
            let status = if result.outcome == Outcome::Pass { Status::Ok } else { Status::Warning };
            verdict(status, 0, None)
        }
        Outcome::Unknown => verdict(Status::Unknown, 0, None),
        Outcome::Fail => {
            let t = threshold(result.check, fail_after);
            let Some(state) = state else {
                return verdict(t.hard, 1, None);
            };
            let entry = state.checks.entry(key).or_default();
            entry.consecutive_failures = entry.consecutive_failures.saturating_add(1);
            let since = *entry.failing_since.get_or_insert(now);
            let count = entry.consecutive_failures;
            let (reached, note) = match t.after {
                After::Count(n) => (count >= n, format!("failure {count} of {n} before {}", t.hard.label())),
                After::Elapsed(d) => (
                    now - since >= d,
                    format!(
                        "failing for {} min, {} after {} min",
                        (now - since).num_minutes(),
                        t.hard.label(),
                        d.num_minutes()
                    ),
                ),
            };
            if reached {
                verdict(t.hard, count, None)
            } else {
                verdict(t.soft, count, Some(note))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(check: CheckName, outcome: Outcome) -> CheckResult {
        CheckResult { check, outcome, reason: String::new(), latency: None, cert_expiry_days: None }
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::minutes(minutes)
    }

    #[test]
    fn healthz_is_critical_on_the_second_consecutive_failure() {
        let mut state = ProbeState::default();
        let run = |state: &mut ProbeState, outcome, minute| {
            judge(vec![result(CheckName::Healthz, outcome)], Some(state), None, at(minute)).remove(0)
        };
        let first = run(&mut state, Outcome::Fail, 0);
        assert_eq!((first.status, first.note.as_deref()), (Status::Warning, Some("failure 1 of 2 before CRITICAL")));
        assert_eq!(run(&mut state, Outcome::Fail, 1).status, Status::Critical);
        assert_eq!(run(&mut state, Outcome::Pass, 2).status, Status::Ok);
        assert_eq!(run(&mut state, Outcome::Fail, 3).status, Status::Warning, "a pass resets the count");
    }

    #[test]
    fn readyz_is_critical_at_once_and_metrics_warns_after_five_minutes() {
        let mut state = ProbeState::default();
        let readyz = judge(vec![result(CheckName::Readyz, Outcome::Fail)], Some(&mut state), None, at(0));
        assert_eq!(readyz[0].status, Status::Critical);
        for (minute, expected) in [(0, Status::Ok), (4, Status::Ok), (5, Status::Warning)] {
            let v = judge(vec![result(CheckName::Metrics, Outcome::Fail)], Some(&mut state), None, at(minute));
            assert_eq!(v[0].status, expected, "minute {minute}");
        }
    }

    #[test]
    fn fail_after_overrides_counts_and_no_state_means_no_memory() {
        let mut state = ProbeState::default();
        let v = judge(vec![result(CheckName::Readyz, Outcome::Fail)], Some(&mut state), Some(3), at(0));
        assert_eq!(v[0].status, Status::Warning);
        let v = judge(vec![result(CheckName::Healthz, Outcome::Fail)], None, None, at(0));
        assert_eq!(v[0].status, Status::Critical);
        let v = judge(vec![result(CheckName::Metrics, Outcome::Fail)], None, None, at(0));
        assert_eq!(v[0].status, Status::Warning);
    }

    #[test]
    fn worst_status_orders_critical_warning_unknown_ok() {
        assert_eq!(Status::worst([Status::Ok, Status::Unknown]), Status::Unknown);
        assert_eq!(Status::worst([Status::Unknown, Status::Warning]), Status::Warning);
        assert_eq!(Status::worst([Status::Warning, Status::Critical, Status::Ok]), Status::Critical);
        assert_eq!(Status::worst([]), Status::Unknown);
    }

    #[test]
    fn state_round_trips_and_another_target_starts_fresh() {
        let dir = std::env::temp_dir().join(format!("gm-probe-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        let mut state = ProbeState::load(&path, "http://a").unwrap();
        judge(vec![result(CheckName::Healthz, Outcome::Fail)], Some(&mut state), None, at(0));
        state.save(&path).unwrap();
        let again = ProbeState::load(&path, "http://a").unwrap();
        assert_eq!(again, state);
        assert_eq!(again.checks["healthz"].consecutive_failures, 1);
        assert!(ProbeState::load(&path, "http://b").unwrap().checks.is_empty());
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(ProbeState::load(&path, "http://a"), Err(ProbeError::StateCorrupt { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
