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
use crate::ops::backup::{backup, plain_backup, BackupOptions, BackupReport, Target};
use crate::ops::backup_remote::{RemoteCopy, RemoteTarget};
use crate::ops::ledger::{artifact, Ledger, LedgerKind, Outcome, Record, Span};
use crate::ops::progress::Progress as _;
use crate::ops::OpsError;

use super::destinations::Location;
use super::error::{Error, Named};
use super::flags::{encrypting_command, Decryption, Encryption};
use super::output::{line, Output};

encrypting_command! {
/// Take an encrypted, verified backup of the NA database (or an upstream-style plain copy).
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "backup",
    example = "gm managed backup --home /etc/gm --recipient age1… --dir /var/backups/gm\ngm managed backup --home /etc/gm --recipients-file /etc/gm/backup-recipients.txt --dir /var/backups/gm --to offsite --json\ngm managed backup --home /etc/gm --recipient age1… --dir s3://gm-backups/acme\ngm managed backup --db-path na.db --output na-copy.db",
    note = "Signs every encrypted backup with the backup-signing key ([backup] signing_key, or --signing-key) into <archive>.sig; without one it refuses unless --allow-unsigned. Off-host copies: --to NAME uses [[backup.destinations]] of gm.toml (endpoint, credentials file or systemd credential, Object Lock); an s3://bucket/prefix URL uses the destination that covers it, else AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION and AWS_ENDPOINT_URL. The archive streams to every destination as it is written (multipart, 8 MiB parts) and appears there only once complete and signed. A destination that fails is reported and the others, the local copy included, are kept. Without a recipient or passphrase and with --output X.db, writes a plain SQLite online-backup copy exactly as upstream `managed backup` does (unsigned). A host with only recipients can back up but not decrypt. A run killed midway leaves no file under the final name; the next run into the same folder removes its scratch folder and temporary file. Exit status: 0 done, 1 a check failed, 2 could not run (also: database busy, disk full, a destination failed)."
)]
pub(crate) struct BackupArgs {
    /// write the archive to this file
    #[argh(option)]
    output: Option<PathBuf>,
    /// write gm-<network>-<UTC>.tar.gz.age into this folder, or into s3://bucket/prefix
    #[argh(option, long = "dir")]
    output_dir: Option<PathBuf>,
    /// also upload, in the same pass, to this destination: a [[backup.destinations]] name or s3://bucket/prefix (repeatable)
    #[argh(option, long = "to")]
    to: Vec<String>,
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
    let mut remotes = Vec::new();
    let target = match (&args.output, &args.output_dir) {
        (Some(f), None) => Some(Target::File(f.clone())),
        (None, Some(d)) => match Location::parse(d)? {
            Location::Local(d) => Some(Target::Dir(d)),
            Location::S3(url) => {
                remotes.push(super::destinations::target_for_url(&url, args.home.as_deref())?);
                None
            }
        },
        (None, None) if !args.to.is_empty() => None,
        _ => {
            return Err(Error::usage(
                "give exactly one of --output FILE or --dir DIR (and any number of --to DESTINATION)",
                "e.g. --dir /var/backups/gm --to offsite",
            ))
        }
    };
    for spec in &args.to {
        let t = super::destinations::target(spec, args.home.as_deref())?;
        if remotes.iter().any(|r: &RemoteTarget| r.prefix == t.prefix && r.remote.endpoint() == t.remote.endpoint()) {
            return Err(Error::usage(format!("{spec} is given twice"), "name each destination once"));
        }
        remotes.push(t);
    }
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
        remotes,
        level: args.level,
        busy_timeout,
        signer: super::backup_signing::signer(args.home.as_deref(), args.signing_key.as_deref(), args.allow_unsigned)?,
    };
    let progress = super::progress::Terminal::for_stderr();
    let done = backup(&opts, started, &progress);
    progress.finish();
    match done {
        Ok(report) => {
            let ledger = Ledger::beside(&s.db_path);
            let span = Span::ended_now(started, took);
            let signed = report.signed;
            if let Some(path) = &report.path {
                ledger.record_logged(&backup_record(&report, artifact(path), Value::Null), span);
            }
            for copy in &report.copies {
                ledger.record_logged(&copy_record(&report, copy), span);
            }
            let manifest = report.manifest.to_value();
            let mut m = Map::new();
            m.insert("backup_path", Value::from(report.location()));
            m.insert("copies", Value::Array(copies_value(&report)));
            m.insert("duration_ms", Value::from(u64::try_from(report.duration_ms).unwrap_or(u64::MAX)));
            m.insert("manifest", manifest);
            m.insert("sha256", Value::from(report.sha256.as_str()));
            m.insert(
                "signature_path",
                report.signature.as_ref().map_or(Value::Null, |p| Value::from(p.display().to_string())),
            );
            m.insert("signed", Value::Bool(signed));
            m.insert("size_bytes", Value::from(report.size));
            let mut text = report.location();
            for c in &report.copies {
                match &c.result {
                    Ok(f) => text.push_str(&format!(
                        "\n  copy {}: {} ({} bytes{})",
                        c.destination,
                        c.url,
                        f.size,
                        f.retain_until.as_deref().map(|u| format!(", locked until {u}")).unwrap_or_default()
                    )),
                    Err(e) => text.push_str(&format!("\n  copy {}: FAILED: {e}", c.destination)),
                }
            }
            out.result(&text, &Value::Object(m));
            match report.copies.iter().find_map(|c| c.result.clone().err()) {
                Some(e) => Err(Error::from(OpsError::from(e))),
                None => Ok(0),
            }
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

/// The ledger record of one stored copy of `report`: the local file, or an S3 object (`extra`
/// holds the copy's destination, etag and lock).
fn backup_record(report: &BackupReport, artifact: Option<String>, extra: Value) -> Record {
    let mut details = report.manifest.to_value();
    if let Value::Object(d) = &mut details {
        d.insert("signed", Value::Bool(report.signed));
        if let Value::Object(x) = extra {
            for (k, v) in x.iter() {
                d.insert(k.to_string(), v.clone());
            }
        }
    }
    Record {
        kind: LedgerKind::Backup,
        outcome: Outcome::Ok,
        artifact,
        sha256: Some(report.sha256.clone()),
        size: Some(report.size),
        message: format!(
            "{}backup of {} ({} bytes)",
            if report.signed { "signed " } else { "UNSIGNED " },
            report.manifest.network_name,
            report.size
        ),
        details,
    }
}

/// The ledger record of an S3 copy: a stored one like a local backup, a failed one as failed.
fn copy_record(report: &BackupReport, copy: &RemoteCopy) -> Record {
    match &copy.result {
        Ok(_) => backup_record(report, Some(copy.url.to_string()), copy_value(report, copy)),
        Err(e) => {
            let mut r = Record::failed(LedgerKind::Backup, Some(copy.url.to_string()), e.to_string());
            r.details = copy_value(report, copy);
            r
        }
    }
}

/// One copy as JSON: `{"destination","url","ok","etag","size_bytes","sha256","object_lock","error"}`.
fn copy_value(report: &BackupReport, copy: &RemoteCopy) -> Value {
    let (ok, etag, size, lock, error) = match &copy.result {
        Ok(f) => (
            true,
            Value::from(f.etag.as_str()),
            Value::from(f.size),
            match (&f.lock_mode, &f.retain_until) {
                (Some(mode), Some(until)) => Value::Object(Map::from_iter([
                    ("mode".to_string(), Value::from(mode.as_str())),
                    ("retain_until".to_string(), Value::from(until.as_str())),
                ])),
                _ => Value::Null,
            },
            Value::Null,
        ),
        Err(e) => (false, Value::Null, Value::from(report.size), Value::Null, Value::from(e.to_string())),
    };
    Value::Object(Map::from_iter([
        ("destination".to_string(), Value::from(copy.destination.as_str())),
        ("error".to_string(), error),
        ("etag".to_string(), etag),
        ("object_lock".to_string(), lock),
        ("ok".to_string(), Value::Bool(ok)),
        ("sha256".to_string(), Value::from(report.sha256.as_str())),
        ("size_bytes".to_string(), size),
        ("url".to_string(), Value::from(copy.url.to_string())),
    ]))
}

/// Every copy of `report` as JSON: the local file first (`"destination": "local"`), then each S3
/// destination.
fn copies_value(report: &BackupReport) -> Vec<Value> {
    let local = report.path.as_ref().map(|p| {
        Value::Object(Map::from_iter([
            ("destination".to_string(), Value::from("local")),
            ("error".to_string(), Value::Null),
            ("etag".to_string(), Value::Null),
            ("object_lock".to_string(), Value::Null),
            ("ok".to_string(), Value::Bool(true)),
            ("sha256".to_string(), Value::from(report.sha256.as_str())),
            ("size_bytes".to_string(), Value::from(report.size)),
            ("url".to_string(), Value::from(p.display().to_string())),
        ]))
    });
    local.into_iter().chain(report.copies.iter().map(|c| copy_value(report, c))).collect()
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
