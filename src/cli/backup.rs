//! `gm managed backup`: encrypted, signed backups; and the helpers the other managed commands share
//! (`verify_backup.rs`, `restore.rs`, `restore-drill` in `drill.rs`, `history.rs`, and audit,
//! prune and incident): settings, decryption keys, archive limits, check rendering and the ops
//! ledger (`gm-ops.db` beside the NA database) that records every run.
//! A host that only has recipients (`age1…` public keys) can take backups but cannot decrypt them:
//! verification and restore need the identity (or the passphrase), which the customer can keep
//! offline.

use std::path::{Path, PathBuf};
use std::time::Instant;

use argh::FromArgs;

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Env, ServeFlags, ServeSettings};
use crate::json::{Map, Value};
use crate::model::timestamp::isoformat_utc;
use crate::ops::archive::{self, ExtractLimits, Key};
use crate::ops::backup::{backup, plain_backup, BackupOptions, Target};
use crate::ops::progress::Progress as _;
use crate::ops::OpsError;
use crate::store::ledger;

use super::error::Error;
use super::output::{line, Output};

/// Take an encrypted, verified backup of the NA database (or an upstream-style plain copy).
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "backup",
    example = "gm managed backup --home /etc/gm --recipient age1… --output-dir /var/backups/gm\ngm managed backup --home /etc/gm --recipients-file /etc/gm/backup-recipients.txt --output-dir /var/backups/gm --json\ngm managed backup --db-path na.db --output na-copy.db",
    note = "Signs every encrypted backup with the backup-signing key ([backup] signing_key, or --signing-key) into <archive>.sig; without one it refuses unless --allow-unsigned. Without a recipient or passphrase and with --output X.db, writes a plain SQLite online-backup copy exactly as upstream `managed backup` does (unsigned). A host with only recipients can back up but not decrypt. A run killed midway leaves no file under the final name; the next run into the same folder removes its scratch folder and temporary file. Exit status: 0 done, 1 a check failed, 2 could not run (also: database busy, disk full)."
)]
pub struct BackupArgs {
    /// age X25519 recipient (age1…), repeatable
    #[argh(option)]
    recipient: Vec<String>,
    /// file of age recipients, one per line
    #[argh(option)]
    recipients_file: Option<PathBuf>,
    /// passphrase file (customer-held custody; scrypt)
    #[argh(option)]
    passphrase_file: Option<PathBuf>,
    /// write the archive to this file
    #[argh(option)]
    output: Option<PathBuf>,
    /// write gm-<network>-<UTC>.tar.gz.age into this folder
    #[argh(option)]
    output_dir: Option<PathBuf>,
    /// gzip level 0-9 (default 1)
    #[argh(option, default = "1")]
    level: u32,
    /// seconds to wait while another process holds a lock on the database, then fail as busy (default 30)
    #[argh(option, default = "30")]
    busy_timeout: u64,
    /// database (default: the configured one)
    #[argh(option)]
    db_path: Option<PathBuf>,
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// backup-signing private key (default: [backup] signing_key in gm.toml)
    #[argh(option)]
    signing_key: Option<PathBuf>,
    /// write an unsigned backup when no signing key is configured (warned; verify and restore refuse it without --allow-unsigned)
    #[argh(switch)]
    allow_unsigned: bool,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
}

/// The longest `--busy-timeout` accepted: a day.
pub(super) const MAX_BUSY_TIMEOUT_SECS: u64 = 86_400;

/// The configured settings (flags > env > gm.toml), as `gm serve` would resolve them.
pub(super) fn settings(home: Option<&Path>, db_path: Option<PathBuf>) -> Result<ServeSettings, Error> {
    let env = Env::from_process();
    let home = config::resolve_home(home, &env);
    let file = config::load_file(&home)?;
    Ok(config::serve_settings(&home, &file, &env, &ServeFlags { db_path, ..ServeFlags::default() })?)
}

/// `[backup]` archive-reading bounds of the gm home (defaults without a gm.toml).
pub(super) fn extract_limits(home: Option<&Path>) -> Result<ExtractLimits, Error> {
    let resolved = config::resolve_home(home, &Env::from_process());
    let file = match config::load_file(&resolved) {
        Ok(file) => file,
        // Verifying a copy needs no gm home: a default home this user cannot read (`/etc/gm` is
        // 0750 root:gm) means the default limits, not a failure. A named `--home` must be readable.
        Err(e @ config::ConfigError::Read { .. }) if home.is_none() => {
            log::warn!(target: "gm::ops", "{e}; using the default [backup] limits");
            config::ConfigFile::default()
        }
        Err(e) => return Err(e.into()),
    };
    Ok(config::extract_limits(&resolved, &file)?)
}

/// The ops ledger beside the database.
pub fn ledger_path(db_path: &Path) -> PathBuf {
    db_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).join("gm-ops.db")
}

/// Maps an ops failure to the CLI error (a failed check exits 1, the rest 2).
pub(super) fn ops_error(e: OpsError) -> Error {
    match e {
        OpsError::Check { check, problem } => {
            Error::CheckFailed { message: format!("check {check} failed: {problem}") }
        }
        OpsError::Refused { reason } => Error::Refused { message: reason, hint: None },
        other => Error::from(other),
    }
}

/// Named checks as JSON: `[{"detail", "name", "ok"}]` (verify and drill reports).
pub(super) fn checks_value(checks: &[crate::ops::verify::Check]) -> Vec<Value> {
    checks
        .iter()
        .map(|c| {
            Value::Object(Map::from_iter([
                ("detail".to_string(), Value::from(c.detail.as_str())),
                ("name".to_string(), Value::from(c.name)),
                ("ok".to_string(), Value::Bool(c.ok)),
            ]))
        })
        .collect()
}

/// One ops-ledger entry as the commands describe it.
pub(super) struct Record<'a> {
    pub(super) kind: &'a str,
    pub(super) outcome: &'a str,
    pub(super) artifact: Option<&'a Path>,
    pub(super) sha256: Option<&'a str>,
    pub(super) size: Option<u64>,
    pub(super) message: String,
    pub(super) details: Value,
}

/// Records an operation in the ops ledger beside `db_path`; a ledger failure is logged, never fatal.
pub(super) fn record(db_path: &Path, started: chrono::DateTime<chrono::Utc>, took: Instant, r: Record<'_>) {
    let entry = ledger::Entry {
        id: 0,
        kind: r.kind.to_string(),
        started_at: isoformat_utc(started),
        finished_at: isoformat_utc(SystemClock.now()),
        outcome: r.outcome.to_string(),
        duration_ms: i64::try_from(took.elapsed().as_millis()).unwrap_or(i64::MAX),
        artifact: r.artifact.map(|p| p.display().to_string()),
        sha256: r.sha256.map(str::to_string),
        size_bytes: r.size.and_then(|s| i64::try_from(s).ok()),
        message: r.message,
        details_json: crate::crypto::canonical::canonical_string(&r.details),
    };
    let path = ledger_path(db_path);
    if let Err(e) = ledger::open(&path).and_then(|c| ledger::record(&c, &entry)) {
        log::error!(target: "gm::ops", "cannot record {} in the ops ledger {}: {e}", r.kind, path.display());
    }
}

fn encryption(args: &BackupArgs) -> Result<Option<Key>, Error> {
    encryption_key(&args.recipient, args.recipients_file.as_deref(), args.passphrase_file.as_deref())
}

/// The encryption key from `--recipient`, `--recipients-file` or `--passphrase-file` (`None` when
/// none was given; both kinds at once is a usage error).
pub(super) fn encryption_key(
    recipients: &[String],
    recipients_file: Option<&Path>,
    passphrase_file: Option<&Path>,
) -> Result<Option<Key>, Error> {
    let mut lines = recipients.to_vec();
    if let Some(f) = recipients_file {
        lines.push(std::fs::read_to_string(f).map_err(Error::io("read", f))?);
    }
    match (lines.is_empty(), passphrase_file) {
        (true, None) => Ok(None),
        (false, None) => Ok(Some(Key::Recipients(archive::parse_recipients(&lines).map_err(ops_error)?))),
        (true, Some(p)) => Ok(Some(archive::read_passphrase(p).map_err(ops_error)?)),
        (false, Some(_)) => Err(Error::usage(
            "give recipients or a passphrase file, not both",
            "recipients for hosts that must not decrypt; a passphrase for offline customer-held custody",
        )),
    }
}

/// Runs `gm managed backup`.
pub fn run_backup(args: BackupArgs) -> Result<u8, Error> {
    if args.busy_timeout > MAX_BUSY_TIMEOUT_SECS {
        return Err(Error::usage(
            format!("--busy-timeout {} is longer than a day", args.busy_timeout),
            format!("use 0 (fail at once) to {MAX_BUSY_TIMEOUT_SECS} seconds"),
        ));
    }
    let busy_timeout = std::time::Duration::from_secs(args.busy_timeout);
    let s = settings(args.home.as_deref(), args.db_path.clone())?;
    let key = encryption(&args)?;
    let out = Output { json: args.json };
    let (started, took) = (SystemClock.now(), Instant::now());
    let Some(key) = key else {
        let Some(output) = &args.output else {
            return Err(Error::usage(
                "an encrypted backup needs --recipient, --recipients-file or --passphrase-file",
                "or pass --output X.db for an upstream-style plain copy",
            ));
        };
        plain_backup(&s.db_path, output, started, busy_timeout).map_err(ops_error)?;
        // Upstream's summary: indent 2, keys in this order.
        line(&format!(
            "{{\n  \"db_path\": {},\n  \"backup_path\": {}\n}}",
            crate::crypto::canonical::canonical_string(&Value::from(s.db_path.display().to_string())),
            crate::crypto::canonical::canonical_string(&Value::from(output.display().to_string()))
        ));
        record(
            &s.db_path,
            started,
            took,
            Record {
                kind: "backup",
                outcome: "ok",
                artifact: Some(output),
                sha256: None,
                size: None,
                message: "plain online-backup copy".into(),
                details: Value::Object(Map::new()),
            },
        );
        return Ok(0);
    };
    let target = match (&args.output, &args.output_dir) {
        (Some(f), None) => Target::File(f.clone()),
        (None, Some(d)) => Target::Dir(d.clone()),
        _ => {
            return Err(Error::usage(
                "give exactly one of --output FILE or --output-dir DIR",
                "e.g. --output-dir /var/backups/gm",
            ))
        }
    };
    if args.level > 9 {
        return Err(Error::usage(
            format!("--level {} is not a gzip level", args.level),
            "use 0 (none) to 9 (smallest)",
        ));
    }
    let opts = BackupOptions {
        db_path: s.db_path.clone(),
        genesis_file: s.genesis_file.clone(),
        operators_file: match &s.operator_keys {
            crate::na::auth::operators::KeySource::File(p) => Some(p.clone()),
            crate::na::auth::operators::KeySource::Inline(_) => None,
        },
        key,
        target,
        level: args.level,
        busy_timeout,
        signer: super::backup_signing::signer(args.home.as_deref(), args.signing_key.as_deref(), args.allow_unsigned)?,
    };
    let progress = super::progress::Terminal::for_stderr();
    let done = backup(&opts, started, &progress);
    progress.finish();
    match done {
        Ok(report) => {
            let manifest = report.manifest.to_value();
            let signed = report.signature.is_some();
            let mut details = manifest.clone();
            if let Value::Object(d) = &mut details {
                d.insert("signed", Value::Bool(signed));
            }
            record(
                &s.db_path,
                started,
                took,
                Record {
                    kind: "backup",
                    outcome: "ok",
                    artifact: Some(&report.path),
                    sha256: Some(&report.sha256),
                    size: Some(report.size),
                    message: format!(
                        "{}backup of {} ({} bytes)",
                        if signed { "signed " } else { "UNSIGNED " },
                        report.manifest.network_name,
                        report.size
                    ),
                    details,
                },
            );
            let mut m = Map::new();
            m.insert("backup_path", Value::from(report.path.display().to_string()));
            m.insert("duration_ms", Value::from(u64::try_from(report.duration_ms).unwrap_or(u64::MAX)));
            m.insert("manifest", manifest);
            m.insert("sha256", Value::from(report.sha256.as_str()));
            m.insert(
                "signature_path",
                report.signature.as_ref().map_or(Value::Null, |p| Value::from(p.display().to_string())),
            );
            m.insert("signed", Value::Bool(signed));
            m.insert("size_bytes", Value::from(report.size));
            out.result(&report.path.display().to_string(), &Value::Object(m));
            Ok(0)
        }
        Err(e) => {
            record(
                &s.db_path,
                started,
                took,
                Record {
                    kind: "backup",
                    outcome: "failed",
                    artifact: None,
                    sha256: None,
                    size: None,
                    message: e.to_string(),
                    details: Value::Object(Map::new()),
                },
            );
            Err(ops_error(e))
        }
    }
}

pub(super) fn decryption(identity: &Option<PathBuf>, passphrase: &Option<PathBuf>) -> Result<Option<Key>, Error> {
    match (identity, passphrase) {
        (Some(i), None) => Ok(Some(archive::read_identities(i).map_err(ops_error)?)),
        (None, Some(p)) => Ok(Some(archive::read_passphrase(p).map_err(ops_error)?)),
        (None, None) => Ok(None),
        _ => {
            Err(Error::usage("give --identity or --passphrase-file, not both", "the one the backup was encrypted for"))
        }
    }
}
