//! `gm managed restore-drill`: restore into a scratch folder, serve it on loopback and check it
//! from outside; `--latest` picks the newest backup by its signed time. Without the NA key
//! (`--scratch-na-key`, or no file at the configured NA key path) the drill runs in a scratch world
//! (`ops::drill_scratch`) and its report and ledger entry say `na_key: scratch`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use argh::FromArgs;

use crate::clock::{Clock, SystemClock};
use crate::json::{Map, Value};
use crate::model::timestamp::isoformat_utc;
use crate::ops::drill_scratch::DrillNaKey;
use crate::ops::ledger::{Ledger, LedgerKind, Outcome, Record, Span};
use crate::ops::OpsError;

use super::backup::{checks_value, decryption, extract_limits, ops_error, settings};
use super::destinations::{Location, Readable};
use super::error::{Error, Named, EXIT_CHECK_FAILED};
use super::flags::decrypting_command;
use super::output::Output;

decrypting_command! {
/// Restore a backup into a scratch folder, serve it on 127.0.0.1:0 and check it from outside (never touches production).
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "restore-drill",
    example = "gm managed restore-drill --home /etc/gm --latest /var/backups/gm --identity backup.key\ngm managed restore-drill --home /etc/gm --backup gm-acme-20261125T120000Z.tar.gz.age --identity backup.key --report drill.json --json",
    note = "Without the NA private key (customer-held custody: no file at the configured NA key path, or --scratch-na-key) the drill still checks every restored CRL and policy against the genesis NA public key (check na_signed), then serves the restored copy under a scratch genesis whose scratch NA key signs the throwaway node's certificate; the report says na_key: scratch. --latest picks the newest backup by its signed snapshot time among those whose signature checks out, and lists the files it passed over. Measures RTO (restore start to ready) and RPO (backup age) and records the drill in the ops ledger. Exit status: 0 passed, 1 a check failed (a damaged or forged backup fails verify), 2 could not run."
)]
pub(crate) struct DrillArgs {
    /// the backup to drill: a file or an s3://bucket/prefix/gm-….tar.gz.age object
    #[argh(option)]
    backup: Option<PathBuf>,
    /// drill the newest signed backup in this folder or s3://bucket/prefix (by signed time; unsigned or mismatched files are passed over and listed)
    #[argh(option)]
    latest: Option<PathBuf>,
    /// also write the report (JSON) here
    #[argh(option)]
    report: Option<PathBuf>,
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// run the throwaway enrollment in a scratch world signed by scratch keys, for a host without the NA private key (customer-held custody); automatic when the configured NA key file does not exist
    #[argh(switch)]
    scratch_na_key: bool,
    /// print the report as JSON
    #[argh(switch)]
    json: bool,
}
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

/// The NA key the drill serves with: a scratch world with `--scratch-na-key` or when no file
/// exists at the configured NA key path (customer-held custody), else the configured key.
fn drill_na_key(scratch: bool, file: &Path, key_id: &str) -> Result<DrillNaKey, Error> {
    if scratch {
        return Ok(DrillNaKey::Scratch { reason: "--scratch-na-key".into() });
    }
    match std::fs::symlink_metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log::info!(target: "gm::ops", "no NA private key at {}: the drill enrolls its throwaway node in a scratch world", file.display());
            Ok(DrillNaKey::Scratch { reason: format!("no NA private key at {}", file.display()) })
        }
        Err(e) => Err(Error::io("read", file)(e)),
        Ok(_) => Ok(DrillNaKey::Configured { file: file.to_path_buf(), key_id: key_id.to_string() }),
    }
}

/// Runs `gm managed restore-drill`.
pub(crate) fn run_drill(args: DrillArgs) -> Result<u8, Error> {
    let (backup, passed_over) = match (&args.backup, &args.latest) {
        (Some(b), None) => (b.clone(), Vec::new()),
        (None, Some(d)) => {
            let pinned = super::backup_signing::pinned(args.home.as_deref(), args.signing_public_key.as_deref())?;
            match Location::parse(d)? {
                Location::Local(d) => newest_backup(&d, &pinned)?,
                Location::S3(url) => {
                    let (newest, passed_over) =
                        super::destinations::newest_in_bucket(&url, args.home.as_deref(), &pinned)?;
                    (PathBuf::from(newest.to_string()), passed_over)
                }
            }
        }
        _ => {
            return Err(Error::usage(
                "give exactly one of --backup FILE or --latest DIR",
                "e.g. --latest /var/backups/gm",
            ))
        }
    };
    let key = decryption(args.decryption_flags())?
        .ok_or_else(|| Error::from(Named::NoDecryptionKey { command: "a drill" }))?;
    let s = settings(args.home.as_deref(), None)?;
    let trust =
        super::backup_signing::trust(args.home.as_deref(), args.signing_public_key.as_deref(), args.allow_unsigned)?;
    let na_key = drill_na_key(args.scratch_na_key, &s.na_key_file, &s.na_key_id)?;
    let gm_binary = std::env::current_exe().map_err(Error::io("locate", Path::new("gm")))?;
    let limits = extract_limits(args.home.as_deref())?;
    let (started, took) = (SystemClock.now(), Instant::now());
    // The drill's time (and its RTO) includes fetching an S3 object: that is the restore.
    let readable = Readable::get(&backup, args.home.as_deref(), &std::env::temp_dir(), limits.max_unpacked_bytes)?;
    let opts = crate::ops::drill::DrillOptions {
        backup: readable.path.clone(),
        key,
        production_db: s.db_path.clone(),
        genesis_file: s.genesis_file.clone(),
        na_key: na_key.clone(),
        gm_binary,
        limits,
        trust,
    };
    let mut report = crate::ops::drill::drill(&opts, started).map_err(|e| ops_error(readable.ops_in_user_terms(e)))?;
    for c in &mut report.checks {
        c.detail = readable.in_user_terms(&c.detail);
    }
    let ok = report.ok();
    let checks = checks_value(&report.checks);
    let value = Value::Object(Map::from_iter([
        ("backup".to_string(), Value::from(readable.shown.as_str())),
        ("checks".to_string(), Value::Array(checks)),
        ("drilled_at".to_string(), Value::from(isoformat_utc(started))),
        ("na_key".to_string(), Value::from(na_key.label())),
        (
            "na_key_reason".to_string(),
            match &na_key {
                DrillNaKey::Scratch { reason } => Value::from(reason.as_str()),
                DrillNaKey::Configured { .. } => Value::Null,
            },
        ),
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
    // The ledger first: a report that cannot be written must not leave a drill that ran unrecorded.
    Ledger::beside(&s.db_path).record_logged(
        &Record {
            kind: LedgerKind::Drill,
            outcome: Outcome::of(ok),
            artifact: Some(readable.shown.clone()),
            sha256: None,
            size: None,
            message: format!(
                "{}{}",
                if matches!(na_key, DrillNaKey::Scratch { .. }) { "scratch NA key: " } else { "" },
                report.checks.iter().find(|c| !c.ok).map_or(
                    format!("passed; RTO {} ms, RPO {} s", report.rto_ms.unwrap_or(0), report.rpo_seconds.unwrap_or(0)),
                    |c| format!("{}: {}", c.name, c.detail),
                )
            ),
            details: value.clone(),
        },
        Span::ended_now(started, took),
    );
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
    let mut text = format!("{}: drill of {}", if ok { "passed" } else { "FAILED" }, readable.shown);
    for c in &report.checks {
        text.push_str(&format!("\n  {} {:<12} {}", if c.ok { "ok  " } else { "FAIL" }, c.name, c.detail));
    }
    if let DrillNaKey::Scratch { reason } = &na_key {
        text.push_str(&format!("\n  NA key: scratch ({reason})"));
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
