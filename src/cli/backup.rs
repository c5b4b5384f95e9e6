//! `gm managed backup`: encrypted, signed backups; and the helpers the other managed commands share
//! (`verify_backup.rs`, `restore.rs`, `restore-drill` in `drill.rs`, `history.rs`, and audit,
//! prune and incident): settings, decryption keys, archive limits and check rendering. Every run
//! is recorded through `ops::ledger` (`gm-ops.db` beside the NA database).
//! A host that only has recipients (`age1…` public keys) can take backups but cannot decrypt them:
//! verification and restore need the identity (or the passphrase), which the customer can keep
//! offline.

use std::path::{Path, PathBuf};
use std::time::Instant;

use argh::FromArgs;

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Env, ServeFlags, ServeSettings};
use crate::json::{Map, Value};
use crate::ops::archive::{self, ExtractLimits, Key};
use crate::ops::backup::{backup, plain_backup, BackupOptions, Target};
use crate::ops::ledger::{artifact, Ledger, LedgerKind, Outcome, Record, Span};
use crate::ops::progress::Progress as _;
use crate::ops::OpsError;

use super::error::{Error, Named};
use super::flags::{encrypting_command, Decryption, Encryption};
use super::output::{line, Output};

encrypting_command! {
/// Take an encrypted, verified backup of the NA database (or an upstream-style plain copy).
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "backup",
    example = "gm managed backup --home /etc/gm --recipient age1… --dir /var/backups/gm\ngm managed backup --home /etc/gm --recipients-file /etc/gm/backup-recipients.txt --dir /var/backups/gm --json\ngm managed backup --db-path na.db --output na-copy.db",
    note = "Signs every encrypted backup with the backup-signing key ([backup] signing_key, or --signing-key) into <archive>.sig; without one it refuses unless --allow-unsigned. Without a recipient or passphrase and with --output X.db, writes a plain SQLite online-backup copy exactly as upstream `managed backup` does (unsigned). A host with only recipients can back up but not decrypt. A run killed midway leaves no file under the final name; the next run into the same folder removes its scratch folder and temporary file. Exit status: 0 done, 1 a check failed, 2 could not run (also: database busy, disk full)."
)]
pub(crate) struct BackupArgs {
    /// write the archive to this file
    #[argh(option)]
    output: Option<PathBuf>,
    /// write gm-<network>-<UTC>.tar.gz.age into this folder
    #[argh(option, long = "dir")]
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

/// Maps an ops failure to the CLI error (a failed check exits 1, the rest 2).
pub(super) fn ops_error(e: OpsError) -> Error {
    match e {
        OpsError::Check { check, problem } if problem.starts_with(crate::ops::verify::DAMAGED_OR_FORGED) => {
            Named::ForgedBackup { check: check.to_string(), problem }.into()
        }
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

/// The encryption key from `--recipient`, `--recipients-file` or `--passphrase-file` (`None` when
/// none was given; both kinds at once is a usage error).
pub(super) fn encryption_key(flags: Encryption<'_>) -> Result<Option<Key>, Error> {
    let mut lines = flags.recipients.to_vec();
    if let Some(f) = flags.recipients_file {
        lines.push(std::fs::read_to_string(f).map_err(Error::io("read", f))?);
    }
    match (lines.is_empty(), flags.passphrase_file) {
        (true, None) => Ok(None),
        (false, None) => Ok(Some(Key::Recipients(archive::parse_recipients(&lines).map_err(ops_error)?))),
        (true, Some(p)) => Ok(Some(archive::read_passphrase(p).map_err(ops_error)?)),
        (false, Some(_)) => Err(Named::TwoEncryptionKeys.into()),
    }
}

/// Runs `gm managed backup`.
pub(crate) fn run_backup(args: BackupArgs) -> Result<u8, Error> {
    if args.busy_timeout > MAX_BUSY_TIMEOUT_SECS {
        return Err(Error::usage(
            format!("--busy-timeout {} is longer than a day", args.busy_timeout),
            format!("use 0 (fail at once) to {MAX_BUSY_TIMEOUT_SECS} seconds"),
        ));
    }
    let busy_timeout = std::time::Duration::from_secs(args.busy_timeout);
    let s = settings(args.home.as_deref(), args.db_path.clone())?;
    let key = encryption_key(args.encryption_flags())?;
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
        Ledger::beside(&s.db_path).record_logged(
            &Record {
                kind: LedgerKind::Backup,
                outcome: Outcome::Ok,
                artifact: artifact(output),
                sha256: None,
                size: None,
                message: "plain online-backup copy".into(),
                details: Value::Object(Map::new()),
            },
            Span::ended_now(started, took),
        );
        return Ok(0);
    };
    let target = match (&args.output, &args.output_dir) {
        (Some(f), None) => Target::File(f.clone()),
        (None, Some(d)) => Target::Dir(d.clone()),
        _ => return Err(Error::usage("give exactly one of --output FILE or --dir DIR", "e.g. --dir /var/backups/gm")),
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
            Ledger::beside(&s.db_path).record_logged(
                &Record {
                    kind: LedgerKind::Backup,
                    outcome: Outcome::Ok,
                    artifact: artifact(&report.path),
                    sha256: Some(report.sha256.clone()),
                    size: Some(report.size),
                    message: format!(
                        "{}backup of {} ({} bytes)",
                        if signed { "signed " } else { "UNSIGNED " },
                        report.manifest.network_name,
                        report.size
                    ),
                    details,
                },
                Span::ended_now(started, took),
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
            Ledger::beside(&s.db_path).record_logged(
                &Record::failed(LedgerKind::Backup, None, e.to_string()),
                Span::ended_now(started, took),
            );
            Err(ops_error(e))
        }
    }
}

/// The decryption key from `--identity` or `--passphrase-file` (`None` when neither was given;
/// both at once is a usage error).
pub(super) fn decryption(flags: Decryption<'_>) -> Result<Option<Key>, Error> {
    match (flags.identity, flags.passphrase_file) {
        (Some(i), None) => Ok(Some(archive::read_identities(i).map_err(ops_error)?)),
        (None, Some(p)) => Ok(Some(archive::read_passphrase(p).map_err(ops_error)?)),
        (None, None) => Ok(None),
        _ => Err(Named::TwoDecryptionKeys.into()),
    }
}
