//! The probe's report in three renderings: a table for people (its first line is the Nagios
//! summary line), JSON with stable snake_case fields, and a node_exporter textfile
//! (`gm_probe_*` series), written atomically so the collector never reads half a file.
//!
//! JSON fields: `target`, `status` (`OK`…`UNKNOWN`), `exit_code`, `checks` (each: `check`,
//! `status`, `outcome` — `pass`/`warn`/`fail`/`unknown` before thresholds —, `latency_ms` or
//! null, `reason`, `consecutive_failures`, `note` or null, and `cert_expiry_days` for `tls`), and
//! `ping` (`url` shown without its secret path, `ok`, `detail`) or null when no ping was due.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::files::atomic::{write_atomic, Mode};
use crate::json::{Map, Value};

use super::deadman::PingOutcome;
use super::error::ProbeError;
use super::finding::{CheckName, Outcome};
use super::nagios::{Status, Verdict};

/// One probe run, judged.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProbeReport {
    /// The target as shown (no user info).
    pub target: String,
    /// Each check with its status, in run order.
    pub verdicts: Vec<Verdict>,
    /// The worst status.
    pub status: Status,
    /// The dead-man ping, when one was due and sent.
    pub ping: Option<PingOutcome>,
    /// When the run finished.
    pub finished_at: DateTime<Utc>,
}

impl ProbeReport {
    /// Builds the report; the status is the worst of the verdicts.
    pub fn new(target: String, verdicts: Vec<Verdict>, finished_at: DateTime<Utc>) -> ProbeReport {
        let status = Status::worst(verdicts.iter().map(|v| v.status));
        ProbeReport { target, verdicts, status, ping: None, finished_at }
    }

    /// True when every check passed outright: the only case in which the dead-man ping is sent.
    pub(crate) fn all_passed(&self) -> bool {
        !self.verdicts.is_empty() && self.verdicts.iter().all(|v| v.result.outcome == Outcome::Pass)
    }

    /// The summary line and the table.
    pub(crate) fn to_text(&self) -> String {
        let mut out = self.summary_line();
        out.push('\n');
        let width = self.verdicts.iter().map(|v| v.result.check.name().len()).max().unwrap_or(5).max(5);
        let _ = writeln!(out, "{:<width$}  {:<8}  {:>9}  REASON", "CHECK", "STATUS", "LATENCY");
        for v in &self.verdicts {
            let latency = v.result.latency.map_or("-".to_string(), |d| format!("{} ms", d.as_millis()));
            let mut reason = v.result.reason.clone();
            if let Some(note) = &v.note {
                let _ = write!(reason, " ({note})");
            }
            let _ = writeln!(out, "{:<width$}  {:<8}  {latency:>9}  {reason}", v.result.check.name(), v.status.label());
        }
        if let Some(ping) = &self.ping {
            let verdict = if ping.ok { "sent" } else { "FAILED" };
            let _ = writeln!(out, "dead-man ping to {}: {verdict}, {}", ping.shown_url, ping.detail);
        }
        out.trim_end().to_string()
    }

    /// `gm probe CRITICAL: 2 of 6 checks not OK (healthz, crl) - http://na`.
    fn summary_line(&self) -> String {
        let bad: Vec<&str> =
            self.verdicts.iter().filter(|v| v.status != Status::Ok).map(|v| v.result.check.name()).collect();
        let total = self.verdicts.len();
        if bad.is_empty() {
            format!("gm probe {}: {total} of {total} checks OK - {}", self.status.label(), self.target)
        } else {
            format!(
                "gm probe {}: {} of {total} checks not OK ({}) - {}",
                self.status.label(),
                bad.len(),
                bad.join(", "),
                self.target
            )
        }
    }

    /// The report as JSON.
    pub(crate) fn to_json(&self) -> Value {
        let checks = self.verdicts.iter().map(verdict_json).collect();
        let mut root = Map::new();
        root.insert("target", Value::Str(self.target.clone()));
        root.insert("status", Value::Str(self.status.label().to_string()));
        root.insert("exit_code", Value::from(u64::from(self.status.exit_code())));
        root.insert("checks", Value::Array(checks));
        root.insert("ping", self.ping.as_ref().map_or(Value::Null, ping_json));
        Value::Object(root)
    }

    /// The node_exporter textfile text.
    pub(crate) fn to_textfile(&self) -> String {
        let target = escape_label(&self.target);
        let mut out = String::new();
        let series = |out: &mut String, name: &str, help: &str, rows: Vec<(String, String)>| {
            if rows.is_empty() {
                return;
            }
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (labels, value) in rows {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        };
        let per_check = |f: &dyn Fn(&Verdict) -> Option<String>| -> Vec<(String, String)> {
            self.verdicts
                .iter()
                .filter_map(|v| {
                    f(v).map(|value| (format!("target=\"{target}\",check=\"{}\"", v.result.check.name()), value))
                })
                .collect()
        };
        series(
            &mut out,
            "gm_probe_success",
            "1 when the check passed (or passed with a warning), before alert thresholds.",
            per_check(&|v| Some(u8::from(matches!(v.result.outcome, Outcome::Pass | Outcome::Warn)).to_string())),
        );
        series(
            &mut out,
            "gm_probe_status",
            "Nagios status of the check after thresholds: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
            per_check(&|v| Some(v.status.exit_code().to_string())),
        );
        series(
            &mut out,
            "gm_probe_latency_seconds",
            "Time of the check's main request, or of the TLS handshake.",
            per_check(&|v| v.result.latency.map(|d| format!("{:.6}", d.as_secs_f64()))),
        );
        let tls_days =
            self.verdicts.iter().find(|v| v.result.check == CheckName::Tls).and_then(|v| v.result.cert_expiry_days);
        series(
            &mut out,
            "gm_probe_tls_cert_expiry_days",
            "Days until the server certificate expires (negative once expired).",
            tls_days.map(|d| (format!("target=\"{target}\""), format!("{d}"))).into_iter().collect(),
        );
        series(
            &mut out,
            "gm_probe_last_run_timestamp_seconds",
            "When the probe last finished, Unix time.",
            vec![(format!("target=\"{target}\""), self.finished_at.timestamp().to_string())],
        );
        out
    }

    /// Writes [`ProbeReport::to_textfile`] to `path` atomically (tmp, fsync, rename, fsync dir).
    pub(crate) fn write_textfile(&self, path: &Path) -> Result<(), ProbeError> {
        write_atomic(path, self.to_textfile().as_bytes(), Mode::Public, true)
            .map_err(|source| ProbeError::TextfileWrite { path: path.to_path_buf(), source })
    }
}

fn verdict_json(v: &Verdict) -> Value {
    let mut m = Map::new();
    m.insert("check", Value::Str(v.result.check.name().to_string()));
    m.insert("status", Value::Str(v.status.label().to_string()));
    m.insert("outcome", Value::Str(v.result.outcome.name().to_string()));
    m.insert(
        "latency_ms",
        v.result.latency.map_or(Value::Null, |d| Value::Float((d.as_secs_f64() * 10_000.0).round() / 10.0)),
    );
    m.insert("reason", Value::Str(v.result.reason.clone()));
    m.insert("consecutive_failures", Value::from(u64::from(v.consecutive_failures)));
    m.insert("note", v.note.clone().map_or(Value::Null, Value::Str));
    if v.result.check == CheckName::Tls {
        m.insert("cert_expiry_days", v.result.cert_expiry_days.map_or(Value::Null, Value::Float));
    }
    Value::Object(m)
}

fn ping_json(p: &PingOutcome) -> Value {
    let mut m = Map::new();
    m.insert("url", Value::Str(p.shown_url.clone()));
    m.insert("ok", Value::Bool(p.ok));
    m.insert("detail", Value::Str(p.detail.clone()));
    Value::Object(m)
}

/// Prometheus label value escaping: backslash, double quote and newline.
fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::probe::checks::CheckResult;

    fn verdict(check: CheckName, outcome: Outcome, status: Status, latency_ms: Option<u64>) -> Verdict {
        Verdict {
            result: CheckResult {
                check,
                outcome,
                reason: format!("{} reason", check.name()),
                latency: latency_ms.map(Duration::from_millis),
                cert_expiry_days: (check == CheckName::Tls).then_some(41.5),
            },
            status,
            consecutive_failures: u32::from(outcome == Outcome::Fail),
            note: None,
        }
    }

    fn report() -> ProbeReport {
        ProbeReport::new(
            "https://na.example/\"x\"".to_string(),
            vec![
                verdict(CheckName::Healthz, Outcome::Pass, Status::Ok, Some(3)),
                verdict(CheckName::Crl, Outcome::Fail, Status::Critical, None),
                verdict(CheckName::Tls, Outcome::Pass, Status::Ok, Some(12)),
            ],
            DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(1_700_000_000),
        )
    }

    #[test]
    fn textfile_has_one_series_per_check_and_escapes_the_target() {
        let text = report().to_textfile();
        assert!(text.contains("# TYPE gm_probe_success gauge\n"), "{text}");
        assert!(
            text.contains("gm_probe_success{target=\"https://na.example/\\\"x\\\"\",check=\"healthz\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("gm_probe_success{target=\"https://na.example/\\\"x\\\"\",check=\"crl\"} 0\n"));
        assert!(text.contains(",check=\"healthz\"} 0.003000\n"));
        assert!(!text.contains("gm_probe_latency_seconds{target=\"https://na.example/\\\"x\\\"\",check=\"crl\"}"));
        assert!(text.contains("gm_probe_tls_cert_expiry_days{target=\"https://na.example/\\\"x\\\"\"} 41.5\n"));
        assert!(
            text.contains("gm_probe_last_run_timestamp_seconds{target=\"https://na.example/\\\"x\\\"\"} 1700000000\n")
        );
    }

    #[test]
    fn table_starts_with_the_nagios_summary_line() {
        let text = report().to_text();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("gm probe CRITICAL: 1 of 3 checks not OK (crl) - https://na.example/\"x\""));
        assert_eq!(lines.next(), Some("CHECK    STATUS      LATENCY  REASON"));
        assert_eq!(lines.next(), Some("healthz  OK             3 ms  healthz reason"));
        assert_eq!(lines.next(), Some("crl      CRITICAL          -  crl reason"));
        assert!(!report().all_passed());
    }
}
