//! Job metrics for `/metrics`: runs per job and outcome, the last success time and the last
//! duration, in Prometheus text format with gm's `gm_job_*` names.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use super::runner::{Outcome, Run};

/// A Prometheus label value, escaped as it is written (backslash, double quote and newline):
/// `/metrics` writes one per series per scrape, so no String is made for it.
pub(crate) struct Label<'a>(pub(crate) &'a str);

impl std::fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['\\', '"', '\n']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                _ => "\\n",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

#[derive(Debug, Default, Clone)]
struct JobSeries {
    runs: BTreeMap<&'static str, u64>,
    last_success: Option<i64>,
    last_duration: Option<f64>,
}

/// Counters kept by the running scheduler.
#[derive(Debug, Default)]
pub struct JobMetrics(Mutex<BTreeMap<String, JobSeries>>);

impl JobMetrics {
    /// Declares a job so its series exist (at zero) before its first run.
    pub(crate) fn declare(&self, job: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).entry(job.to_string()).or_default();
    }

    /// Counts a run.
    pub(crate) fn observe(&self, run: &Run) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let s = m.entry(run.job.clone()).or_default();
        *s.runs.entry(run.outcome.as_str()).or_default() += 1;
        if run.outcome != Outcome::Skipped {
            s.last_duration = Some(run.duration.as_secs_f64());
        }
        if run.outcome == Outcome::Ok {
            s.last_success = Some(run.finished_at.timestamp());
        }
    }

    /// The Prometheus text of every series.
    pub(crate) fn render(&self) -> String {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let _ = writeln!(out, "# HELP gm_job_runs_total Scheduled job runs by outcome.");
        let _ = writeln!(out, "# TYPE gm_job_runs_total counter");
        for (job, s) in m.iter() {
            for outcome in ["ok", "failed", "skipped", "timeout"] {
                let n = s.runs.get(outcome).copied().unwrap_or(0);
                let _ = writeln!(out, "gm_job_runs_total{{job=\"{}\",outcome=\"{outcome}\"}} {n}", Label(job));
            }
        }
        let _ = writeln!(out, "# HELP gm_job_last_success_timestamp_seconds When the job last succeeded (Unix time).");
        let _ = writeln!(out, "# TYPE gm_job_last_success_timestamp_seconds gauge");
        for (job, s) in m.iter() {
            if let Some(t) = s.last_success {
                let _ = writeln!(out, "gm_job_last_success_timestamp_seconds{{job=\"{}\"}} {t}", Label(job));
            }
        }
        let _ = writeln!(out, "# HELP gm_job_duration_seconds Duration of the job's last run.");
        let _ = writeln!(out, "# TYPE gm_job_duration_seconds gauge");
        for (job, s) in m.iter() {
            if let Some(d) = s.last_duration {
                let _ = writeln!(out, "gm_job_duration_seconds{{job=\"{}\"}} {d:.3}", Label(job));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_label_escapes_backslash_quote_and_newline_only() {
        assert_eq!(Label("plain-job_1").to_string(), "plain-job_1");
        assert_eq!(Label("a\\b\"c\nd é").to_string(), "a\\\\b\\\"c\\nd é");
        assert_eq!(Label("\"\"").to_string(), "\\\"\\\"");
        assert_eq!(Label("").to_string(), "");
    }

    #[test]
    fn counts_outcomes_and_keeps_the_last_success() {
        let m = JobMetrics::default();
        m.declare("probe");
        let at = chrono::Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).single().unwrap_or_default();
        let run = |outcome| Run {
            job: "backup".into(),
            kind: "backup".into(),
            started_at: at,
            finished_at: at,
            outcome,
            duration: std::time::Duration::from_millis(1500),
            message: String::new(),
        };
        m.observe(&run(Outcome::Ok));
        m.observe(&run(Outcome::Skipped));
        m.observe(&run(Outcome::Ok));
        let text = m.render();
        assert!(text.contains("gm_job_runs_total{job=\"backup\",outcome=\"ok\"} 2\n"), "{text}");
        assert!(text.contains("gm_job_runs_total{job=\"backup\",outcome=\"skipped\"} 1\n"), "{text}");
        assert!(text.contains("gm_job_runs_total{job=\"probe\",outcome=\"ok\"} 0\n"), "{text}");
        assert!(text.contains(&format!("gm_job_last_success_timestamp_seconds{{job=\"backup\"}} {}\n", at.timestamp())));
        assert!(text.contains("gm_job_duration_seconds{job=\"backup\"} 1.500\n"), "{text}");
    }
}
