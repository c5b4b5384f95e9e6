//! The readiness report: checks with status, reason and evidence; its JSON shape, a JUnit rendering
//! for CI, a text table for people, the exit code that gates sign-off, and the signing payload.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Evidence shows the item is in place.
    Pass,
    /// In place, but close to a limit (a backup older than 24 h, disk under 20 % free).
    Warn,
    /// Not in place, or no evidence.
    Fail,
}

impl Status {
    /// `pass`, `warn` or `fail`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One check.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Stable id (CHECKLIST.md lists them).
    pub id: &'static str,
    /// What is checked, in a few words.
    pub title: &'static str,
    /// The verdict.
    pub status: Status,
    /// One line: why.
    pub reason: String,
    /// What the verdict rests on (file hashes, ledger ids, timestamps).
    pub evidence: BTreeMap<String, String>,
    /// What to act on when the check does not pass: the command to run or the file to change
    /// (`None` on a pass; every warning and failure carries one, see `checks::evaluate`).
    pub fix: Option<String>,
}

impl Check {
    /// A check with no evidence yet.
    pub fn new(id: &'static str, title: &'static str, status: Status, reason: impl Into<String>) -> Check {
        Check { id, title, status, reason: reason.into(), evidence: BTreeMap::new(), fix: None }
    }

    /// Adds an evidence item.
    pub(crate) fn with(mut self, key: &str, value: impl Into<String>) -> Check {
        self.evidence.insert(key.to_string(), value.into());
        self
    }

    /// Sets what to act on when the check does not pass.
    pub(crate) fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}

/// The whole report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// When it was produced.
    pub generated_at: DateTime<Utc>,
    /// The sovereign (network name).
    pub sovereign: String,
    /// Every check, in the order of CHECKLIST.md.
    pub checks: Vec<Check>,
    /// What the report is bound to (file paths and SHA-256 digests of the genesis and the
    /// profile), inside the signed body so a signed report names exactly what it judged.
    pub bindings: BTreeMap<String, String>,
}

impl Report {
    /// True when every check passed.
    pub(crate) fn ready(&self) -> bool {
        self.checks.iter().all(|c| c.status == Status::Pass)
    }

    /// 0 every check passed, 1 only warnings, 2 any failure.
    pub(crate) fn exit_code(&self) -> u8 {
        match self.checks.iter().map(|c| c.status).max() {
            None | Some(Status::Pass) => 0,
            Some(Status::Warn) => 1,
            Some(Status::Fail) => 2,
        }
    }
}

/// Escapes text for XML attributes and content.
fn xml(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            '&' => "&amp;".chars().collect::<Vec<_>>(),
            '<' => "&lt;".chars().collect(),
            '>' => "&gt;".chars().collect(),
            '"' => "&quot;".chars().collect(),
            '\'' => "&apos;".chars().collect(),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => Vec::new(),
            c => vec![c],
        })
        .collect()
}

/// JUnit XML: one test case per check; a failure is a `<failure>`, a warning passes with the reason
/// in `<system-out>` (CI shows it without failing the build).
pub(crate) fn junit(report: &Report) -> String {
    let failures = report.checks.iter().filter(|c| c.status == Status::Fail).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"gm-readiness\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" timestamp=\"{}\">\n",
        report.checks.len(),
        report.generated_at.format("%Y-%m-%dT%H:%M:%SZ")
    );
    if !report.bindings.is_empty() {
        out.push_str("  <properties>\n");
        for (k, v) in &report.bindings {
            out.push_str(&format!("    <property name=\"{}\" value=\"{}\"/>\n", xml(k), xml(v)));
        }
        out.push_str("  </properties>\n");
    }
    for c in &report.checks {
        out.push_str(&format!(
            "  <testcase classname=\"readiness.{}\" name=\"{}: {}\">\n",
            xml(&report.sovereign),
            c.id,
            xml(c.title)
        ));
        match (c.status, &c.fix) {
            (Status::Fail, None) => out.push_str(&format!("    <failure message=\"{}\"/>\n", xml(&c.reason))),
            (Status::Fail, Some(fix)) => {
                out.push_str(&format!("    <failure message=\"{}\">fix: {}</failure>\n", xml(&c.reason), xml(fix)))
            }
            (Status::Warn, None) => out.push_str(&format!("    <system-out>WARN: {}</system-out>\n", xml(&c.reason))),
            (Status::Warn, Some(fix)) => {
                out.push_str(&format!("    <system-out>WARN: {}\nfix: {}</system-out>\n", xml(&c.reason), xml(fix)))
            }
            (Status::Pass, _) => {}
        }
        out.push_str("  </testcase>\n");
    }
    out.push_str("</testsuite>\n");
    out
}

/// A table for people.
pub fn text(report: &Report) -> String {
    let mut out = format!(
        "pilot readiness of {}: {} ({} pass, {} warn, {} fail)\n",
        report.sovereign,
        if report.ready() { "READY" } else { "NOT READY" },
        report.checks.iter().filter(|c| c.status == Status::Pass).count(),
        report.checks.iter().filter(|c| c.status == Status::Warn).count(),
        report.checks.iter().filter(|c| c.status == Status::Fail).count()
    );
    for c in &report.checks {
        out.push_str(&format!("  {:<4} {:<22} {}\n", c.status.as_str().to_uppercase(), c.id, c.reason));
        if let (Some(fix), false) = (&c.fix, c.status == Status::Pass) {
            out.push_str(&format!("       {:<22} fix: {fix}\n", ""));
        }
    }
    for (k, v) in &report.bindings {
        out.push_str(&format!("  bound to {k}: {v}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn report(statuses: &[Status]) -> Report {
        Report {
            generated_at: Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).single().unwrap_or_default(),
            sovereign: "acme".into(),
            checks: statuses.iter().map(|s| Check::new("backup", "a verified backup", *s, "why <&>")).collect(),
            bindings: BTreeMap::new(),
        }
    }

    #[test]
    fn exit_code_and_ready_follow_the_worst_status() {
        assert_eq!((report(&[Status::Pass, Status::Pass]).exit_code(), report(&[Status::Pass]).ready()), (0, true));
        assert_eq!(report(&[Status::Pass, Status::Warn]).exit_code(), 1);
        assert!(!report(&[Status::Warn]).ready(), "a warning is not ready");
        assert_eq!(report(&[Status::Warn, Status::Fail, Status::Pass]).exit_code(), 2);
    }

    #[test]
    fn junit_marks_failures_and_escapes() {
        let x = junit(&report(&[Status::Fail, Status::Warn, Status::Pass]));
        assert!(x.contains("tests=\"3\" failures=\"1\""), "{x}");
        assert!(x.contains("<failure message=\"why &lt;&amp;&gt;\"/>"), "{x}");
        assert!(x.contains("<system-out>WARN: why &lt;&amp;&gt;</system-out>"), "{x}");
        assert_eq!(x.matches("<testcase").count(), 3);
    }

    #[test]
    fn fix_and_bindings_appear_in_text_and_junit() {
        let mut r = report(&[Status::Fail, Status::Warn, Status::Pass]);
        for c in &mut r.checks {
            c.fix = Some("gm managed backup <now>".into());
        }
        r.bindings.insert("profile_sha256".into(), "ab12".into());
        let x = junit(&r);
        assert!(
            x.contains("<failure message=\"why &lt;&amp;&gt;\">fix: gm managed backup &lt;now&gt;</failure>"),
            "{x}"
        );
        assert!(
            x.contains("<system-out>WARN: why &lt;&amp;&gt;\nfix: gm managed backup &lt;now&gt;</system-out>"),
            "{x}"
        );
        assert!(x.contains("<property name=\"profile_sha256\" value=\"ab12\"/>"), "{x}");
        let t = text(&r);
        assert_eq!(t.matches("fix: gm managed backup <now>").count(), 2, "a pass shows no fix: {t}");
        assert!(t.contains("bound to profile_sha256: ab12"), "{t}");
    }
}
