//! `gm managed backup|verify|restore|history`: encrypted backups, their verification, safe restore
//! and the ops ledger (`gm-ops.db` beside the NA database) that records every run.
//! A host that only has recipients (`age1…` public keys) can take backups but cannot decrypt them:
//! verification and restore need the identity (or the passphrase), which the customer can keep
//! offline.

use std::path::{Path, PathBuf};
use std::time::Instant;

use argh::FromArgs;

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Env, ServeFlags, ServeSettings};
use crate::crypto::json::{Map, Value};
use crate::model::timestamp::isoformat_utc;
use crate::ops::archive::{self, ExtractLimits, Key};
use crate::ops::backup::{backup, load_genesis, plain_backup, BackupOptions, Scratch, Target};
use crate::ops::progress::Progress as _;
use crate::ops::restore::{restore, RestoreOptions};
use crate::ops::verify::verify_into;
use crate::ops::OpsError;
use crate::store::ledger;

use super::error::{Error, EXIT_CHECK_FAILED};
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
const MAX_BUSY_TIMEOUT_SECS: u64 = 86_400;

/// Decrypt a backup into a private scratch folder and check it (manifest, hashes, integrity, schema, genesis, signatures).
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "verify",
    example = "gm managed verify /var/backups/gm/gm-acme-20261125T120000Z.tar.gz.age --identity backup.key --home /etc/gm\ngm managed verify backup.tar.gz.age --passphrase-file pass.txt --signing-public-key backup-signing.pub --json\ngm managed verify old-unsigned.tar.gz.age --identity backup.key --home /etc/gm --allow-unsigned",
    note = "The first check is the signature: <backup>.sig must verify with the pinned backup-signing key ([backup] signing_public_key, else the public half of [backup] signing_key, or --signing-public-key) and name this file's bytes; a missing or foreign signature fails as a damaged or forged backup unless --allow-unsigned (for backups taken before signing). A snapshot with no NA-signed CRL or policy fails. Exit status: 0 every check passed, 1 a check failed (named in the report), 2 could not run (also: no pinned key)."
)]
pub struct VerifyArgs {
    /// the backup archive
    #[argh(positional)]
    backup: PathBuf,
    /// age identity file (AGE-SECRET-KEY-1…)
    #[argh(option)]
    identity: Option<PathBuf>,
    /// passphrase file
    #[argh(option)]
    passphrase_file: Option<PathBuf>,
    /// gm home, for the ops ledger and [backup] (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// pinned backup-signing public key, base64 or .pub file (default: [backup] signing_public_key, else the public half of [backup] signing_key)
    #[argh(option)]
    signing_public_key: Option<String>,
    /// accept a backup without a signature (old gm versions, upstream .db copies): warned and recorded
    #[argh(switch)]
    allow_unsigned: bool,
    /// print the report as JSON
    #[argh(switch)]
    json: bool,
}

/// Restore a backup over the NA database (the server must be stopped).
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "restore",
    example = "gm managed restore --home /etc/gm --backup gm-acme-20261125T120000Z.tar.gz.age --identity backup.key --pre-restore-backup /var/backups/gm/before.db --yes\ngm managed restore --db-path na.db --backup upstream-copy.db --yes",
    note = "Refuses without --yes and while a gm serve holds the database. Verifies first, signature included (an unsigned backup or a plain .db copy needs --allow-unsigned). Carries over nonces younger than 600 s and every revocation of the replaced database (reported; gm serve re-issues the CRL with them at start). Exit status: 0 restored, 1 the backup failed verification (damaged or forged), 2 could not run or refused."
)]
pub struct RestoreArgs {
    /// a gm archive or an upstream plain .db backup
    #[argh(option)]
    backup: PathBuf,
    /// age identity file
    #[argh(option)]
    identity: Option<PathBuf>,
    /// passphrase file
    #[argh(option)]
    passphrase_file: Option<PathBuf>,
    /// copy the current database here first (online backup API)
    #[argh(option)]
    pre_restore_backup: Option<PathBuf>,
    /// restore a backup of another sovereign (different genesis NA key)
    #[argh(switch)]
    allow_different_genesis: bool,
    /// confirm replacing the database
    #[argh(switch)]
    yes: bool,
    /// database (default: the configured one)
    #[argh(option)]
    db_path: Option<PathBuf>,
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// seconds to wait while another process holds a lock on the database, then fail as busy (default 30)
    #[argh(option, default = "30")]
    busy_timeout: u64,
    /// pinned backup-signing public key, base64 or .pub file (default: [backup] signing_public_key, else the public half of [backup] signing_key)
    #[argh(option)]
    signing_public_key: Option<String>,
    /// accept a backup without a signature (old gm versions, upstream .db copies): warned and recorded
    #[argh(switch)]
    allow_unsigned: bool,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
}

/// List the ops ledger (backups, verifications, restores, drills, exports).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "history", example = "gm managed history --home /etc/gm --json")]
pub struct HistoryArgs {
    /// only this kind (backup, verify, restore, …)
    #[argh(option)]
    kind: Option<String>,
    /// how many entries (default 50)
    #[argh(option, default = "50")]
    limit: i64,
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// print as JSON
    #[argh(switch)]
    json: bool,
}

/// The configured settings (flags > env > gm.toml), as `gm serve` would resolve them.
pub(super) fn settings(home: Option<&Path>, db_path: Option<PathBuf>) -> Result<ServeSettings, Error> {
    let env = Env::from_process();
    let home = config::resolve_home(home, &env);
    let file = config::load_file(&home)?;
    Ok(config::serve_settings(&home, &file, &env, &ServeFlags { db_path, ..ServeFlags::default() })?)
}

/// `[backup]` archive-reading bounds of the gm home (defaults without a gm.toml).
fn extract_limits(home: Option<&Path>) -> Result<ExtractLimits, Error> {
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
fn checks_value(checks: &[crate::ops::verify::Check]) -> Vec<Value> {
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

fn decryption(identity: &Option<PathBuf>, passphrase: &Option<PathBuf>) -> Result<Option<Key>, Error> {
    match (identity, passphrase) {
        (Some(i), None) => Ok(Some(archive::read_identities(i).map_err(ops_error)?)),
        (None, Some(p)) => Ok(Some(archive::read_passphrase(p).map_err(ops_error)?)),
        (None, None) => Ok(None),
        _ => {
            Err(Error::usage("give --identity or --passphrase-file, not both", "the one the backup was encrypted for"))
        }
    }
}

/// Runs `gm managed verify`.
pub fn run_verify(args: VerifyArgs) -> Result<u8, Error> {
    let key = decryption(&args.identity, &args.passphrase_file)?.ok_or_else(|| {
        Error::usage("verify needs --identity FILE or --passphrase-file FILE", "the key the backup was encrypted to")
    })?;
    if !args.backup.exists() {
        return Err(Error::Io {
            action: "read",
            path: args.backup.clone(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let limits = extract_limits(args.home.as_deref())?;
    let trust =
        super::backup_signing::trust(args.home.as_deref(), args.signing_public_key.as_deref(), args.allow_unsigned)?;
    let (started, took) = (SystemClock.now(), Instant::now());
    let scratch = Scratch::new(&std::env::temp_dir(), "gm-verify").map_err(ops_error)?;
    let progress = super::progress::Terminal::for_stderr();
    let report = verify_into(&args.backup, &key, &scratch, &limits, started, &trust, &progress);
    progress.finish();
    let report = report.map_err(ops_error)?;
    let ok = report.ok();
    let checks = checks_value(&report.checks);
    let mut text = format!("{}: {}", if ok { "verified" } else { "FAILED" }, args.backup.display());
    for c in &report.checks {
        text.push_str(&format!("\n  {} {:<16} {}", if c.ok { "ok  " } else { "FAIL" }, c.name, c.detail));
    }
    let value = Value::Object(Map::from_iter([
        ("backup".to_string(), Value::from(args.backup.display().to_string())),
        ("checks".to_string(), Value::Array(checks)),
        ("ok".to_string(), Value::Bool(ok)),
        ("signed".to_string(), Value::Bool(report.signature.is_some())),
    ]));
    // Recorded only where a gm home is configured: verifying a copy on a laptop records nothing.
    let configured =
        config::resolve_home(args.home.as_deref(), &Env::from_process()).join(config::CONFIG_FILE).exists();
    if let Some(s) = settings(args.home.as_deref(), None).ok().filter(|_| configured) {
        record(
            &s.db_path,
            started,
            took,
            Record {
                kind: "verify",
                outcome: if ok { "ok" } else { "failed" },
                artifact: Some(&args.backup),
                sha256: None,
                size: None,
                message: report
                    .checks
                    .iter()
                    .find(|c| !c.ok)
                    .map_or("all checks passed".to_string(), |c| format!("{}: {}", c.name, c.detail)),
                details: value.clone(),
            },
        );
    }
    Output { json: args.json }.result(&text, &value);
    Ok(if ok { 0 } else { EXIT_CHECK_FAILED })
}

/// Runs `gm managed restore`.
pub fn run_restore(args: RestoreArgs) -> Result<u8, Error> {
    if !args.yes {
        return Err(Error::refused(
            "refusing to restore without --yes",
            "stop the Network Authority (gm serve), then re-run with --yes",
        ));
    }
    let s = settings(args.home.as_deref(), args.db_path.clone())?;
    let key = decryption(&args.identity, &args.passphrase_file)?;
    let expected_na_key = load_genesis(&s.genesis_file).ok().map(|(_, g)| g.network_authority.public_key);
    let trust =
        super::backup_signing::trust(args.home.as_deref(), args.signing_public_key.as_deref(), args.allow_unsigned)?;
    let (started, took) = (SystemClock.now(), Instant::now());
    let opts = RestoreOptions {
        db_path: s.db_path.clone(),
        backup: args.backup.clone(),
        key,
        pre_restore_backup: args.pre_restore_backup.clone(),
        expected_na_key,
        allow_different_genesis: args.allow_different_genesis,
        busy_timeout: std::time::Duration::from_secs(args.busy_timeout.min(MAX_BUSY_TIMEOUT_SECS)),
        limits: extract_limits(args.home.as_deref())?,
        trust,
    };
    let progress = super::progress::Terminal::for_stderr();
    let restored = restore(&opts, started, &progress);
    progress.finish();
    match restored {
        Ok(report) => {
            record(
                &s.db_path,
                started,
                took,
                Record {
                    kind: "restore",
                    outcome: "ok",
                    artifact: Some(&args.backup),
                    sha256: None,
                    size: None,
                    message: format!(
                        "restored {}{}; {} revocation(s) carried over",
                        s.db_path.display(),
                        if report.unsigned { " from an UNSIGNED backup (--allow-unsigned)" } else { "" },
                        report.revocations_carried.total()
                    ),
                    details: Value::Object(Map::from_iter([
                        ("revocations_carried_over".to_string(), Value::from(report.revocations_carried.total())),
                        ("unsigned".to_string(), Value::Bool(report.unsigned)),
                        (
                            "crl_sequence_replaced".to_string(),
                            report.crl_sequence_replaced.map_or(Value::Null, Value::from),
                        ),
                        ("crl_sequence_restored".to_string(), Value::from(report.crl_sequence_restored)),
                    ])),
                },
            );
            let mut m = Map::new();
            m.insert("db_path", Value::from(s.db_path.display().to_string()));
            m.insert("nonces_carried_over", Value::from(report.nonces_carried));
            m.insert(
                "pre_restore_backup",
                report.pre_restore_backup.map_or(Value::Null, |p| Value::from(p.display().to_string())),
            );
            m.insert("restored_from", Value::from(args.backup.display().to_string()));
            let carried = &report.revocations_carried;
            let ids = |ids: &[String]| Value::Array(ids.iter().map(|id| Value::from(id.as_str())).collect());
            m.insert("revocations_carried_over", Value::from(carried.total()));
            m.insert("revoked_certificates_carried_over", ids(&carried.certificates));
            m.insert("revoked_treaties_carried_over", ids(&carried.treaties));
            m.insert("revoked_attestations_carried_over", ids(&carried.attestations));
            m.insert("imported_revocations_carried_over", Value::from(carried.imported));
            m.insert("unsigned", Value::Bool(report.unsigned));
            m.insert(
                "side_files_moved_aside",
                Value::Array(report.moved_aside.iter().map(|p| Value::from(p.display().to_string())).collect()),
            );
            let mut text = format!(
                "restored {} from {}\n  {} revocation(s) carried over from the replaced database",
                s.db_path.display(),
                args.backup.display(),
                carried.total()
            );
            if !carried.certificates.is_empty() {
                text.push_str(&format!(
                    "\n  certificates ({}): gm serve publishes them in a CRL above the replaced sequence",
                    carried.certificates.join(", ")
                ));
            }
            for (kind, list) in [("treaties", &carried.treaties), ("attestations", &carried.attestations)] {
                if !list.is_empty() {
                    text.push_str(&format!("\n  {kind} ({}): revoked again", list.join(", ")));
                }
            }
            if carried.imported > 0 {
                text.push_str(&format!(
                    "\n  {} imported revocation(s) of other sovereigns added back",
                    carried.imported
                ));
            }
            Output { json: args.json }.result(&text, &Value::Object(m));
            Ok(0)
        }
        Err(e) => {
            record(
                &s.db_path,
                started,
                took,
                Record {
                    kind: "restore",
                    outcome: "failed",
                    artifact: Some(&args.backup),
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

/// Runs `gm managed history`.
pub fn run_history(args: HistoryArgs) -> Result<u8, Error> {
    let s = settings(args.home.as_deref(), None)?;
    let path = ledger_path(&s.db_path);
    let entries = ledger::open(&path).and_then(|c| ledger::list(&c, args.kind.as_deref(), args.limit))?;
    let mut text = format!("{} entr(y/ies) in {}", entries.len(), path.display());
    let mut items = Vec::new();
    for e in &entries {
        text.push_str(&format!(
            "\n  {}  {:<12} {:<7} {:>6} ms  {}",
            e.finished_at, e.kind, e.outcome, e.duration_ms, e.message
        ));
        items.push(Value::Object(Map::from_iter([
            ("artifact".to_string(), e.artifact.as_deref().map_or(Value::Null, Value::from)),
            ("duration_ms".to_string(), Value::from(e.duration_ms)),
            ("finished_at".to_string(), Value::from(e.finished_at.as_str())),
            ("id".to_string(), Value::from(e.id)),
            ("kind".to_string(), Value::from(e.kind.as_str())),
            ("message".to_string(), Value::from(e.message.as_str())),
            ("outcome".to_string(), Value::from(e.outcome.as_str())),
            ("sha256".to_string(), e.sha256.as_deref().map_or(Value::Null, Value::from)),
            ("started_at".to_string(), Value::from(e.started_at.as_str())),
        ])));
    }
    Output { json: args.json }
        .result(&text, &Value::Object(Map::from_iter([("entries".to_string(), Value::Array(items))])));
    Ok(0)
}

/// Restore a backup into a scratch folder, serve it on 127.0.0.1:0 and check it from outside (never touches production).
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "restore-drill",
    example = "gm managed restore-drill --home /etc/gm --latest /var/backups/gm --identity backup.key\ngm managed restore-drill --home /etc/gm --backup gm-acme-20261125T120000Z.tar.gz.age --identity backup.key --report drill.json --json",
    note = "--latest picks the newest backup by its signed snapshot time among those whose signature checks out, and lists the files it passed over. Measures RTO (restore start to ready) and RPO (backup age) and records the drill in the ops ledger. Exit status: 0 passed, 1 a check failed (a damaged or forged backup fails verify), 2 could not run."
)]
pub struct DrillArgs {
    /// the backup to drill
    #[argh(option)]
    backup: Option<PathBuf>,
    /// drill the newest signed backup in this folder (by signed time; unsigned or mismatched files are passed over and listed)
    #[argh(option)]
    latest: Option<PathBuf>,
    /// age identity file
    #[argh(option)]
    identity: Option<PathBuf>,
    /// passphrase file
    #[argh(option)]
    passphrase_file: Option<PathBuf>,
    /// also write the report (JSON) here
    #[argh(option)]
    report: Option<PathBuf>,
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// pinned backup-signing public key, base64 or .pub file (default: [backup] signing_public_key, else the public half of [backup] signing_key)
    #[argh(option)]
    signing_public_key: Option<String>,
    /// accept a backup without a signature (old gm versions, upstream .db copies): warned and recorded
    #[argh(switch)]
    allow_unsigned: bool,
    /// print the report as JSON
    #[argh(switch)]
    json: bool,
}

/// The newest backup in `dir` by its *signed* time, among those whose signature checks out with
/// `pinned` (`ops::catalog`), and the backup-named files passed over with the reason (F13: a file
/// planted with a far-future name is never picked).
pub(super) fn newest_backup(
    dir: &Path,
    pinned: &crate::ops::backup_signature::TrustedKeys,
) -> Result<(PathBuf, Vec<crate::ops::catalog::Rejected>), Error> {
    let cat = match crate::ops::catalog::catalog(dir, pinned) {
        Err(OpsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::refused(
                format!("no *.tar.gz.age backup in {}: the folder does not exist", dir.display()),
                "take one with gm managed backup",
            ))
        }
        other => other.map_err(ops_error)?,
    };
    for r in &cat.rejected {
        log::warn!(target: "gm::ops", "passed over {} in {}: {}", r.name, dir.display(), r.reason);
    }
    match cat.newest() {
        Some(b) => Ok((b.path.clone(), cat.rejected.clone())),
        None => Err(Error::refused(
            format!(
                "no signed backup in {} ({} backup-named file(s) passed over: unsigned, or the signature does not check out)",
                dir.display(),
                cat.rejected.len()
            ),
            "take one with gm managed backup (with [backup] signing_key set), or drill a file by name with --backup FILE",
        )),
    }
}

/// Runs `gm managed restore-drill`.
pub fn run_drill(args: DrillArgs) -> Result<u8, Error> {
    let (backup, passed_over) = match (&args.backup, &args.latest) {
        (Some(b), None) => (b.clone(), Vec::new()),
        (None, Some(d)) => {
            newest_backup(d, &super::backup_signing::pinned(args.home.as_deref(), args.signing_public_key.as_deref())?)?
        }
        _ => {
            return Err(Error::usage(
                "give exactly one of --backup FILE or --latest DIR",
                "e.g. --latest /var/backups/gm",
            ))
        }
    };
    let key = decryption(&args.identity, &args.passphrase_file)?.ok_or_else(|| {
        Error::usage("a drill needs --identity FILE or --passphrase-file FILE", "the key the backup was encrypted to")
    })?;
    let s = settings(args.home.as_deref(), None)?;
    let trust =
        super::backup_signing::trust(args.home.as_deref(), args.signing_public_key.as_deref(), args.allow_unsigned)?;
    let gm_binary = std::env::current_exe().map_err(Error::io("locate", Path::new("gm")))?;
    let (started, took) = (SystemClock.now(), Instant::now());
    let opts = crate::ops::drill::DrillOptions {
        backup: backup.clone(),
        key,
        production_db: s.db_path.clone(),
        genesis_file: s.genesis_file.clone(),
        na_key_file: s.na_key_file.clone(),
        na_key_id: s.na_key_id.clone(),
        gm_binary,
        limits: extract_limits(args.home.as_deref())?,
        trust,
    };
    let report = crate::ops::drill::drill(&opts, started).map_err(ops_error)?;
    let ok = report.ok();
    let checks = checks_value(&report.checks);
    let value = Value::Object(Map::from_iter([
        ("backup".to_string(), Value::from(backup.display().to_string())),
        ("checks".to_string(), Value::Array(checks)),
        ("drilled_at".to_string(), Value::from(isoformat_utc(started))),
        ("ok".to_string(), Value::Bool(ok)),
        (
            "passed_over".to_string(),
            Value::Array(
                passed_over
                    .iter()
                    .map(|r| {
                        Value::Object(Map::from_iter([
                            ("name".to_string(), Value::from(r.name.as_str())),
                            ("reason".to_string(), Value::from(r.reason.as_str())),
                        ]))
                    })
                    .collect(),
            ),
        ),
        ("rpo_seconds".to_string(), report.rpo_seconds.map_or(Value::Null, Value::from)),
        (
            "rto_ms".to_string(),
            report.rto_ms.map_or(Value::Null, |ms| Value::from(u64::try_from(ms).unwrap_or(u64::MAX))),
        ),
    ]));
    if let Some(path) = &args.report {
        // The default job writes drills/latest.json, a folder a fresh sandbox does not have yet.
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(Error::io("create folder", parent))?;
        }
        let mut text = crate::crypto::canonical::to_pretty_string(&value);
        text.push('\n');
        crate::files::atomic::write_atomic(path, text.as_bytes(), crate::files::atomic::Mode::Private, true)
            .map_err(Error::io("write", path))?;
    }
    record(
        &s.db_path,
        started,
        took,
        Record {
            kind: "drill",
            outcome: if ok { "ok" } else { "failed" },
            artifact: Some(&backup),
            sha256: None,
            size: None,
            message: report.checks.iter().find(|c| !c.ok).map_or(
                format!("passed; RTO {} ms, RPO {} s", report.rto_ms.unwrap_or(0), report.rpo_seconds.unwrap_or(0)),
                |c| format!("{}: {}", c.name, c.detail),
            ),
            details: value.clone(),
        },
    );
    let mut text = format!("{}: drill of {}", if ok { "passed" } else { "FAILED" }, backup.display());
    for c in &report.checks {
        text.push_str(&format!("\n  {} {:<12} {}", if c.ok { "ok  " } else { "FAIL" }, c.name, c.detail));
    }
    if let (Some(rto), Some(rpo)) = (report.rto_ms, report.rpo_seconds) {
        text.push_str(&format!("\n  RTO {rto} ms, RPO {rpo} s"));
    }
    for r in &passed_over {
        text.push_str(&format!("\n  passed over {}: {}", r.name, r.reason));
    }
    Output { json: args.json }.result(&text, &value);
    Ok(if ok { 0 } else { EXIT_CHECK_FAILED })
}
