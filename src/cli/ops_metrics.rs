//! The managed-operations series `gm serve` appends to `/metrics`: the scheduler's job counters,
//! the last successful backup and drill from the ops ledger, and the free-space ratio of the
//! database's filesystem. Read at scrape time; a missing ledger simply means no series yet.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::model::timestamp::parse_db_time;
use crate::ops::ledger::{self, Entry, LedgerKind, LedgerReader};
use crate::sched::metrics::JobMetrics;

/// What the `/metrics` hook reads.
pub(crate) struct OpsMetrics {
    /// The ops ledger, read through one kept connection.
    pub(crate) ledger: LedgerReader,
    /// The NA database (its folder's filesystem is measured).
    pub db_path: PathBuf,
    /// The scheduler's counters, when it runs.
    pub jobs: Option<Arc<JobMetrics>>,
    /// Textfiles written by scheduled probe jobs (`gm_probe_*` series).
    pub probe_textfiles: Vec<PathBuf>,
    /// The ledger's series as last rendered, with the ledger's data version they were read at.
    pub(crate) ledger_text: Mutex<Option<(i64, String)>>,
}

impl OpsMetrics {
    /// The Prometheus text.
    pub(crate) fn render(&self) -> String {
        let mut out = self.jobs.as_ref().map(|j| j.render()).unwrap_or_default();
        out.push_str(&self.ledger_section());
        let folder = self.db_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        gauge(
            &mut out,
            "gm_disk_free_ratio",
            "Free share of the database filesystem (available to gm).",
            crate::files::space::free_ratio(folder),
        );
        let texts: Vec<String> = self.probe_textfiles.iter().filter_map(|p| std::fs::read_to_string(p).ok()).collect();
        out.push_str(&merge_families(&texts, "gm_probe_"));
        out
    }

    /// The series read from the ops ledger (last backup, its destinations, last drill). A scrape
    /// re-reads them only when the ledger's data version moved, i.e. some connection committed to
    /// it since: every scrape otherwise ran four queries and decoded up to 500 entries again.
    fn ledger_section(&self) -> String {
        let version = self.ledger.data_version().ok().flatten();
        let mut cached = self.ledger_text.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some(v), Some((at, text))) = (version, cached.as_ref()) {
            if v == *at {
                return text.clone();
            }
        }
        let text = self.read_ledger_section();
        // Read after the version: a commit in between makes the next scrape read again, never
        // keeps an older text.
        *cached = version.map(|v| (v, text.clone()));
        text
    }

    fn read_ledger_section(&self) -> String {
        let mut out = String::new();
        let newest_ok = |kind| self.ledger.newest_ok(kind).ok().flatten();
        let ts = |e: &Entry| parse_db_time(&e.finished_at).map(|t| t.timestamp());
        let backup = newest_ok(LedgerKind::Backup);
        gauge(
            &mut out,
            "gm_backup_last_success_timestamp_seconds",
            "When the last backup succeeded (Unix time).",
            backup.as_ref().and_then(ts).map(|t| t as f64),
        );
        gauge(
            &mut out,
            "gm_backup_size_bytes",
            "Size of the last successful backup.",
            backup.as_ref().and_then(|e| e.size_bytes).map(|s| s as f64),
        );
        out.push_str(&destinations(&self.ledger.recent(LedgerKind::Backup, 500).unwrap_or_default()));
        let drill = newest_ok(LedgerKind::Drill);
        gauge(
            &mut out,
            "gm_restore_drill_last_success_timestamp_seconds",
            "When the last restore drill passed (Unix time).",
            drill.as_ref().and_then(ts).map(|t| t as f64),
        );
        let rto = drill
            .as_ref()
            .and_then(ledger::details)
            .and_then(|d| d.get("rto_ms")?.as_i64())
            .map(|ms| ms as f64 / 1000.0);
        gauge(
            &mut out,
            "gm_restore_drill_rto_seconds",
            "Time to ready measured by the last passed restore drill.",
            rto,
        );
        out
    }
}

/// Merges Prometheus text files into one exposition: the series whose names start with `prefix`,
/// each family's `# HELP`/`# TYPE` once, its samples together.
fn merge_families(texts: &[String], prefix: &str) -> String {
    let mut families: std::collections::BTreeMap<String, (Vec<String>, Vec<String>)> = Default::default();
    for text in texts {
        for line in text.lines() {
            let (name, is_meta) = match line.strip_prefix("# HELP ").or_else(|| line.strip_prefix("# TYPE ")) {
                Some(rest) => (rest.split_whitespace().next().unwrap_or_default(), true),
                None => (line.split(['{', ' ']).next().unwrap_or_default(), false),
            };
            if !name.starts_with(prefix) {
                continue;
            }
            let family = families.entry(name.to_string()).or_default();
            let list = if is_meta { &mut family.0 } else { &mut family.1 };
            if !(is_meta && list.iter().any(|l| l.get(..6) == line.get(..6))) {
                list.push(line.to_string());
            }
        }
    }
    let mut out = String::new();
    for (meta, samples) in families.values() {
        for l in meta.iter().chain(samples) {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// Per destination (`local`, or the `[[backup.destinations]]` name): when its newest copy was
/// stored and its size, from the newest `entries` (newest first).
fn destinations(entries: &[Entry]) -> String {
    let mut newest: std::collections::BTreeMap<String, (i64, Option<i64>)> = Default::default();
    for e in entries.iter().filter(|e| e.outcome == crate::ops::ledger::Outcome::Ok.as_str()) {
        let named = ledger::details(e).and_then(|d| d.get("destination")?.as_str().map(str::to_string));
        let destination = match (named, e.artifact.as_deref()) {
            (Some(d), _) => d,
            (None, Some(a)) if crate::ops::s3::S3Url::is_s3(a) => continue,
            (None, _) => "local".to_string(),
        };
        if let (false, Some(t)) = (newest.contains_key(&destination), parse_db_time(&e.finished_at)) {
            newest.insert(destination, (t.timestamp(), e.size_bytes));
        }
    }
    if newest.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let name = "gm_backup_destination_last_success_timestamp_seconds";
    let _ = writeln!(out, "# HELP {name} When a copy last reached the destination (Unix time).\n# TYPE {name} gauge");
    for (d, (t, _)) in &newest {
        let _ = writeln!(out, "{name}{{destination=\"{}\"}} {t}", crate::sched::metrics::Label(d));
    }
    let name = "gm_backup_destination_size_bytes";
    let _ = writeln!(out, "# HELP {name} Size of the newest copy on the destination.\n# TYPE {name} gauge");
    for (d, (_, size)) in &newest {
        if let Some(size) = size {
            let _ = writeln!(out, "{name}{{destination=\"{}\"}} {size}", crate::sched::metrics::Label(d));
        }
    }
    out
}

fn gauge(out: &mut String, name: &str, help: &str, value: Option<f64>) {
    let Some(v) = value else { return };
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_textfiles_merge_into_one_family_each() {
        let a = "# HELP gm_probe_success 1 when the check passed.\n# TYPE gm_probe_success gauge\ngm_probe_success{target=\"a\",check=\"healthz\"} 1\nother_metric 3\n".to_string();
        let b = "# HELP gm_probe_success 1 when the check passed.\n# TYPE gm_probe_success gauge\ngm_probe_success{target=\"b\",check=\"healthz\"} 0\n".to_string();
        assert_eq!(
            merge_families(&[a, b], "gm_probe_"),
            "# HELP gm_probe_success 1 when the check passed.\n# TYPE gm_probe_success gauge\n\
             gm_probe_success{target=\"a\",check=\"healthz\"} 1\ngm_probe_success{target=\"b\",check=\"healthz\"} 0\n"
        );
    }
}
