//! `[cron]` of `gm.toml` turned into typed jobs: each job's schedule parsed, its kind's options
//! required or rejected (an option of another kind is a mistake, not something to ignore), and its
//! paths resolved against the gm home. Invalid config names the job and the problem.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::sched::crontab::Schedule;

use super::error::ConfigError;
use super::file::{ConfigFile, JobSection};
use super::CONFIG_FILE;

/// What a job does, with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    /// `gm managed backup` into `dir`.
    Backup {
        /// The backup folder (or an `s3://` prefix).
        dir: PathBuf,
        /// Destinations also written (`--to`).
        destinations: Vec<String>,
        /// Recipients file, or
        recipients_file: Option<PathBuf>,
        /// passphrase file.
        passphrase_file: Option<PathBuf>,
    },
    /// `gm managed verify` of the newest backup in `dir`.
    Verify {
        /// The backup folder.
        dir: PathBuf,
        /// Identity file, or
        identity_file: Option<PathBuf>,
        /// passphrase file.
        passphrase_file: Option<PathBuf>,
    },
    /// `gm managed restore-drill --latest dir`.
    RestoreDrill {
        /// The backup folder.
        dir: PathBuf,
        /// Identity file, or
        identity_file: Option<PathBuf>,
        /// passphrase file.
        passphrase_file: Option<PathBuf>,
        /// Where the drill report goes.
        report_file: Option<PathBuf>,
    },
    /// `gm managed audit-export` of the last `window_hours` into `dir/audit-<UTC>.jsonl`.
    AuditExport {
        /// The export folder.
        dir: PathBuf,
        /// Hours per export.
        window_hours: u64,
    },
    /// `gm managed audit-prune --dir dir` with the retention policy.
    AuditPrune {
        /// The folder for the export taken before deleting.
        dir: PathBuf,
        /// `--max-age-days`.
        max_age_days: Option<u32>,
        /// `--max-rows`.
        max_rows: Option<u64>,
    },
    /// `gm managed prune --dir dir`.
    Prune {
        /// The backup folder.
        dir: PathBuf,
        /// `--keep-last`.
        keep_last: Option<u32>,
        /// `--keep-daily`.
        keep_daily: Option<u32>,
        /// `--keep-weekly`.
        keep_weekly: Option<u32>,
    },
    /// `gm probe --na`.
    Probe {
        /// The NA base URL, or [`SERVED_TARGET`]: the address this home's NA serves.
        target: String,
        /// `--check`.
        checks: Option<String>,
        /// `--root-public-key`.
        root_public_key: Option<String>,
        /// `--state-file`.
        state_file: Option<PathBuf>,
        /// `--ping-url`.
        ping_url: Option<String>,
        /// `--ca-file`.
        ca_file: Option<PathBuf>,
    },
}

/// A probe `target` meaning "the NA of this home, where it actually listens": under `gm serve` the
/// scheduler hands each job the address the listener bound (so a sandbox started on another port,
/// or on port 0, probes itself), and outside it (`gm cron run-once`, `gm cron run`) it is the
/// `[server] bind` of `gm.toml`.
pub(crate) const SERVED_TARGET: &str = "served";

impl JobKind {
    /// The kind's name as written in `gm.toml`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            JobKind::Backup { .. } => "backup",
            JobKind::Verify { .. } => "verify",
            JobKind::RestoreDrill { .. } => "restore-drill",
            JobKind::AuditExport { .. } => "audit-export",
            JobKind::AuditPrune { .. } => "audit-prune",
            JobKind::Prune { .. } => "prune",
            JobKind::Probe { .. } => "probe",
        }
    }
}

/// One configured job.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// The `[cron.jobs.NAME]` key.
    pub name: String,
    /// What it does.
    pub kind: JobKind,
    /// When.
    pub schedule: Schedule,
    /// Kill after.
    pub timeout: Duration,
    /// Delay spread.
    pub jitter: Duration,
    /// Missed-run window.
    pub missed_grace: chrono::Duration,
}

/// The scheduler settings.
#[derive(Debug, Clone)]
pub struct CronSettings {
    /// Whether `gm serve` runs the scheduler.
    pub enabled: bool,
    /// Shutdown wait for running jobs.
    pub shutdown_grace: Duration,
    /// The jobs, by name.
    pub jobs: Vec<JobConfig>,
}

/// Builds the scheduler settings from `gm.toml` in `home`.
pub fn cron_settings(home: &Path, file: &ConfigFile) -> Result<CronSettings, ConfigError> {
    let mut jobs = Vec::new();
    for (name, section) in &file.cron.jobs {
        jobs.push(job(home, name, section)?);
    }
    Ok(CronSettings {
        enabled: file.cron.enabled.unwrap_or(true),
        shutdown_grace: Duration::from_secs(file.cron.shutdown_grace_seconds.unwrap_or(60)),
        jobs,
    })
}

fn invalid(name: &str, field: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Value {
        source_name: CONFIG_FILE.to_string(),
        field: format!("cron.jobs.{name}.{field}"),
        problem: problem.into(),
    }
}

fn job(home: &Path, name: &str, s: &JobSection) -> Result<JobConfig, ConfigError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(invalid(name, "name", "job names use letters, digits, - and _ only"));
    }
    let schedule = Schedule::parse(&s.schedule).map_err(|e| invalid(name, "schedule", e))?;
    let path = |v: &Option<String>| v.as_ref().map(|p| home.join(p));
    // An `s3://` location stays as written; a path is relative to the home.
    let place = |p: &String| if crate::ops::s3::S3Url::is_s3(p) { PathBuf::from(p) } else { home.join(p) };
    let need = |field: &str, v: &Option<String>| {
        v.as_ref().map(place).ok_or_else(|| invalid(name, field, format!("required for kind {:?}", s.kind)))
    };
    let one_key = |a: &str, av: &Option<String>, b: &str, bv: &Option<String>| match (av, bv) {
        (Some(_), Some(_)) | (None, None) => Err(invalid(name, a, format!("give exactly one of {a} or {b}"))),
        _ => Ok(()),
    };
    let (kind, allowed): (JobKind, &[&str]) = match s.kind.as_str() {
        "backup" => {
            one_key("recipients_file", &s.recipients_file, "passphrase_file", &s.passphrase_file)?;
            (
                JobKind::Backup {
                    dir: need("backup_dir", &s.backup_dir)?,
                    destinations: s.destinations.clone().unwrap_or_default(),
                    recipients_file: path(&s.recipients_file),
                    passphrase_file: path(&s.passphrase_file),
                },
                &["backup_dir", "destinations", "recipients_file", "passphrase_file"],
            )
        }
        "verify" => {
            one_key("identity_file", &s.identity_file, "passphrase_file", &s.passphrase_file)?;
            (
                JobKind::Verify {
                    dir: need("backup_dir", &s.backup_dir)?,
                    identity_file: path(&s.identity_file),
                    passphrase_file: path(&s.passphrase_file),
                },
                &["backup_dir", "identity_file", "passphrase_file"],
            )
        }
        "restore-drill" => {
            one_key("identity_file", &s.identity_file, "passphrase_file", &s.passphrase_file)?;
            (
                JobKind::RestoreDrill {
                    dir: need("backup_dir", &s.backup_dir)?,
                    identity_file: path(&s.identity_file),
                    passphrase_file: path(&s.passphrase_file),
                    report_file: path(&s.report_file),
                },
                &["backup_dir", "identity_file", "passphrase_file", "report_file"],
            )
        }
        "audit-export" => {
            let window_hours = s.window_hours.unwrap_or(24);
            if window_hours == 0 {
                return Err(invalid(name, "window_hours", "must be at least 1"));
            }
            (
                JobKind::AuditExport { dir: need("export_dir", &s.export_dir)?, window_hours },
                &["export_dir", "window_hours"],
            )
        }
        "audit-prune" => {
            if s.max_age_days.is_none() && s.max_rows.is_none() {
                return Err(invalid(name, "max_age_days", "an audit-prune job needs max_age_days, max_rows or both"));
            }
            if s.max_age_days == Some(0) {
                return Err(invalid(name, "max_age_days", "must be at least 1"));
            }
            (
                JobKind::AuditPrune {
                    dir: need("export_dir", &s.export_dir)?,
                    max_age_days: s.max_age_days,
                    max_rows: s.max_rows,
                },
                &["export_dir", "max_age_days", "max_rows"],
            )
        }
        "prune" => {
            if [s.keep_last, s.keep_daily, s.keep_weekly].iter().all(|k| k.unwrap_or(0) == 0) {
                return Err(invalid(name, "keep_last", "a prune job needs keep_last, keep_daily or keep_weekly"));
            }
            (
                JobKind::Prune {
                    dir: need("backup_dir", &s.backup_dir)?,
                    keep_last: s.keep_last,
                    keep_daily: s.keep_daily,
                    keep_weekly: s.keep_weekly,
                },
                &["backup_dir", "keep_last", "keep_daily", "keep_weekly"],
            )
        }
        "probe" => {
            let target = s.target.clone().ok_or_else(|| invalid(name, "target", "required for kind \"probe\""))?;
            if !(target == SERVED_TARGET || target.starts_with("http://") || target.starts_with("https://")) {
                return Err(invalid(
                    name,
                    "target",
                    format!("{target:?} is not an http:// or https:// URL, nor \"{SERVED_TARGET}\""),
                ));
            }
            (
                JobKind::Probe {
                    target,
                    checks: s.checks.clone(),
                    root_public_key: s.root_public_key.clone(),
                    state_file: path(&s.state_file),
                    ping_url: s.ping_url.clone(),
                    ca_file: path(&s.ca_file),
                },
                &["target", "checks", "root_public_key", "state_file", "ping_url", "ca_file"],
            )
        }
        other => {
            return Err(invalid(
                name,
                "kind",
                format!(
                    "unknown kind {other:?} (backup, verify, restore-drill, audit-export, audit-prune, prune, probe)"
                ),
            ))
        }
    };
    for (field, set) in options_set(s) {
        if set && !allowed.contains(&field) {
            return Err(invalid(name, field, format!("does not apply to kind {:?}", s.kind)));
        }
    }
    let default_timeout = if s.kind == "probe" { 60 } else { 3600 };
    let timeout = s.timeout_seconds.unwrap_or(default_timeout);
    if timeout == 0 {
        return Err(invalid(name, "timeout_seconds", "must be at least 1"));
    }
    Ok(JobConfig {
        name: name.to_string(),
        kind,
        schedule,
        timeout: Duration::from_secs(timeout),
        jitter: Duration::from_secs(s.jitter_seconds.unwrap_or(0)),
        missed_grace: chrono::Duration::seconds(
            i64::try_from(s.missed_grace_seconds.unwrap_or(3600)).unwrap_or(i64::MAX),
        ),
    })
}

fn options_set(s: &JobSection) -> [(&'static str, bool); 19] {
    [
        ("backup_dir", s.backup_dir.is_some()),
        ("destinations", s.destinations.is_some()),
        ("recipients_file", s.recipients_file.is_some()),
        ("passphrase_file", s.passphrase_file.is_some()),
        ("identity_file", s.identity_file.is_some()),
        ("report_file", s.report_file.is_some()),
        ("export_dir", s.export_dir.is_some()),
        ("window_hours", s.window_hours.is_some()),
        ("max_age_days", s.max_age_days.is_some()),
        ("max_rows", s.max_rows.is_some()),
        ("keep_last", s.keep_last.is_some()),
        ("keep_daily", s.keep_daily.is_some()),
        ("keep_weekly", s.keep_weekly.is_some()),
        ("target", s.target.is_some()),
        ("checks", s.checks.is_some()),
        ("root_public_key", s.root_public_key.is_some()),
        ("state_file", s.state_file.is_some()),
        ("ping_url", s.ping_url.is_some()),
        ("ca_file", s.ca_file.is_some()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CronSettings, String> {
        let file = ConfigFile::parse(text)?;
        cron_settings(Path::new("/etc/gm"), &file).map_err(|e| e.to_string())
    }

    #[test]
    fn s3_locations_stay_as_written_and_backup_destinations_are_kept() {
        let file = ConfigFile::parse(
            "[cron.jobs.b]\nkind = \"backup\"\nschedule = \"@daily\"\nbackup_dir = \"backups\"\n\
             destinations = [\"offsite\", \"s3://gm-b/x\"]\nrecipients_file = \"r\"\n\
             [cron.jobs.p]\nkind = \"prune\"\nschedule = \"@daily\"\nbackup_dir = \"s3://gm-b/acme\"\nkeep_last = 3\n",
        )
        .unwrap();
        let s = cron_settings(Path::new("/etc/gm"), &file).unwrap();
        let b = s.jobs.iter().find(|j| j.name == "b").unwrap();
        assert!(matches!(&b.kind, JobKind::Backup { dir, destinations, .. }
            if dir == Path::new("/etc/gm/backups") && destinations == &["offsite".to_string(), "s3://gm-b/x".to_string()]));
        let p = s.jobs.iter().find(|j| j.name == "p").unwrap();
        assert!(matches!(&p.kind, JobKind::Prune { dir, .. } if dir == Path::new("s3://gm-b/acme")));
        let bad = ConfigFile::parse("[cron.jobs.p]\nkind = \"prune\"\nschedule = \"@daily\"\nbackup_dir = \"b\"\nkeep_last = 1\ndestinations = [\"x\"]\n").unwrap();
        assert!(cron_settings(Path::new("/etc/gm"), &bad).unwrap_err().to_string().contains("destinations"));
    }

    #[test]
    fn jobs_parse_with_defaults_and_home_relative_paths() {
        let s = parse(
            "[cron.jobs.backup]\nkind = \"backup\"\nschedule = \"0 */6 * * *\"\nbackup_dir = \"backups\"\nrecipients_file = \"/etc/gm/r.txt\"\n\
             [cron.jobs.probe]\nkind = \"probe\"\nschedule = \"* * * * *\"\ntarget = \"http://127.0.0.1:8443\"\n",
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(s.enabled);
        assert_eq!(s.jobs.len(), 2);
        let backup = &s.jobs[0];
        assert_eq!(
            backup.kind,
            JobKind::Backup {
                dir: PathBuf::from("/etc/gm/backups"),
                destinations: Vec::new(),
                recipients_file: Some(PathBuf::from("/etc/gm/r.txt")),
                passphrase_file: None
            }
        );
        assert_eq!(backup.timeout, Duration::from_secs(3600));
        assert_eq!(s.jobs[1].timeout, Duration::from_secs(60), "probes time out sooner by default");
    }

    #[test]
    fn a_probe_may_target_the_address_served() {
        let s = parse("[cron.jobs.probe]\nkind = \"probe\"\nschedule = \"* * * * *\"\ntarget = \"served\"\n")
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(matches!(&s.jobs[0].kind, JobKind::Probe { target, .. } if target == SERVED_TARGET));
        let err = parse("[cron.jobs.probe]\nkind = \"probe\"\nschedule = \"* * * * *\"\ntarget = \"serve\"\n")
            .err()
            .unwrap_or_default();
        assert!(err.contains("nor \"served\""), "{err}");
    }

    #[test]
    fn a_probe_takes_a_ca_file_relative_to_the_home_and_no_other_kind_does() {
        let s = parse("[cron.jobs.p]\nkind = \"probe\"\nschedule = \"@hourly\"\ntarget = \"https://na.internal\"\nca_file = \"pki/ca.pem\"\n")
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(
            matches!(&s.jobs[0].kind, JobKind::Probe { ca_file: Some(f), .. } if f == Path::new("/etc/gm/pki/ca.pem"))
        );
        let err = parse(
            "[cron.jobs.a]\nkind = \"audit-export\"\nschedule = \"@daily\"\nexport_dir = \"e\"\nca_file = \"ca.pem\"\n",
        )
        .err()
        .unwrap_or_default();
        assert!(err.contains("cron.jobs.a.ca_file in gm.toml: does not apply"), "{err}");
    }

    #[test]
    fn invalid_jobs_name_the_job_and_the_problem() {
        for (text, needle) in [
            ("[cron.jobs.b]\nkind = \"backup\"\nschedule = \"* * *\"\nbackup_dir = \"b\"\nrecipients_file = \"r\"\n", "cron.jobs.b.schedule"),
            ("[cron.jobs.b]\nkind = \"backup\"\nschedule = \"@daily\"\nrecipients_file = \"r\"\n", "cron.jobs.b.backup_dir"),
            ("[cron.jobs.b]\nkind = \"backup\"\nschedule = \"@daily\"\nbackup_dir = \"b\"\n", "exactly one of recipients_file"),
            ("[cron.jobs.b]\nkind = \"backup\"\nschedule = \"@daily\"\nbackup_dir = \"b\"\nrecipients_file = \"r\"\nkeep_last = 3\n", "cron.jobs.b.keep_last in gm.toml: does not apply"),
            ("[cron.jobs.x]\nkind = \"cleanup\"\nschedule = \"@daily\"\n", "unknown kind"),
            ("[cron.jobs.p]\nkind = \"prune\"\nschedule = \"@daily\"\nbackup_dir = \"b\"\n", "needs keep_last"),
            ("[cron.jobs.a]\nkind = \"audit-prune\"\nschedule = \"@daily\"\nexport_dir = \"e\"\n", "needs max_age_days, max_rows"),
            ("[cron.jobs.a]\nkind = \"audit-prune\"\nschedule = \"@daily\"\nmax_rows = 5\n", "cron.jobs.a.export_dir"),
            ("[cron.jobs.a]\nkind = \"audit-export\"\nschedule = \"@daily\"\nexport_dir = \"e\"\nmax_rows = 5\n", "does not apply"),
            ("[cron.jobs.p]\nkind = \"probe\"\nschedule = \"@daily\"\ntarget = \"127.0.0.1\"\n", "not an http"),
            ("[cron.jobs.\"a b\"]\nkind = \"probe\"\nschedule = \"@daily\"\ntarget = \"http://x\"\n", "letters, digits"),
            ("[cron.jobs.p]\nkind = \"probe\"\nschedule = \"@daily\"\ntarget = \"http://x\"\ntimeout_seconds = 0\n", "at least 1"),
            ("[cron.jobs.p]\nkind = \"probe\"\nschedule = \"@daily\"\ntarget = \"http://x\"\ncolour = 1\n", "unknown field"),
        ] {
            match parse(text) {
                Ok(_) => unreachable!("accepted: {text}"),
                Err(e) => assert!(e.contains(needle), "{text}: {e}"),
            }
        }
    }
}
