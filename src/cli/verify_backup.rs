//! `gm managed verify`: the named checks of one backup (signature first), exit 0/1/2.

use std::path::PathBuf;
use std::time::Instant;

use argh::FromArgs;

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Env};
use crate::json::{Map, Value};
use crate::ops::backup::Scratch;
use crate::ops::ledger::{Ledger, LedgerKind, Outcome, Record, Span};
use crate::ops::progress::Progress as _;
use crate::ops::verify::verify_into;

use super::backup::{checks_value, decryption, extract_limits, ops_error, settings};
use super::destinations::Readable;
use super::error::{Error, Named, EXIT_CHECK_FAILED};
use super::flags::decrypting_command;
use super::output::Output;

decrypting_command! {
/// Decrypt a backup into a private scratch folder and check it (manifest, hashes, integrity, schema, genesis, signatures).
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "verify",
    example = "gm managed verify /var/backups/gm/gm-acme-20261125T120000Z.tar.gz.age --identity backup.key --home /etc/gm\ngm managed verify backup.tar.gz.age --passphrase-file pass.txt --signing-public-key backup-signing.pub --json\ngm managed verify old-unsigned.tar.gz.age --identity backup.key --home /etc/gm --allow-unsigned",
    note = "The first check is the signature: <backup>.sig must verify with the pinned backup-signing key ([backup] signing_public_key, else the public half of [backup] signing_key, or --signing-public-key) and name this file's bytes; a missing or foreign signature fails as a damaged or forged backup unless --allow-unsigned (for backups taken before signing). A snapshot with no NA-signed CRL or policy fails. Exit status: 0 every check passed, 1 a check failed (named in the report), 2 could not run (also: no pinned key)."
)]
pub(crate) struct VerifyArgs {
    /// the backup archive, or an s3://bucket/prefix/gm-….tar.gz.age object (also accepted without --backup, as before)
    #[argh(positional)]
    archive: Option<PathBuf>,
    /// the backup archive, or an s3:// object
    #[argh(option, long = "backup")]
    backup_flag: Option<PathBuf>,
    /// gm home, for the ops ledger and [backup] (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// print the report as JSON
    #[argh(switch)]
    json: bool,
}
}

/// Runs `gm managed verify`.
pub(crate) fn run_verify(args: VerifyArgs) -> Result<u8, Error> {
    let backup = match (&args.backup_flag, &args.archive) {
        (Some(b), None) | (None, Some(b)) => b.clone(),
        _ => {
            return Err(Error::usage(
                "give the backup once, as --backup FILE",
                "e.g. gm managed verify --backup backups/gm-….tar.gz.age",
            ))
        }
    };
    let key = decryption(args.decryption_flags())?
        .ok_or_else(|| Error::from(Named::NoDecryptionKey { command: "verify" }))?;
    let limits = extract_limits(args.home.as_deref())?;
    let readable = Readable::get(&backup, args.home.as_deref(), &std::env::temp_dir(), limits.max_unpacked_bytes)?;
    let backup = readable.path.clone();
    if !backup.exists() {
        return Err(Error::Io {
            action: "read",
            path: backup.clone(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let trust =
        super::backup_signing::trust(args.home.as_deref(), args.signing_public_key.as_deref(), args.allow_unsigned)?;
    let (started, took) = (SystemClock.now(), Instant::now());
    let scratch = Scratch::new(&std::env::temp_dir(), "gm-verify").map_err(ops_error)?;
    let progress = super::progress::Terminal::for_stderr();
    let report = verify_into(&backup, &key, &scratch, &limits, started, &trust, &progress);
    progress.finish();
    let mut report = report.map_err(|e| ops_error(readable.ops_in_user_terms(e)))?;
    for c in &mut report.checks {
        c.detail = readable.in_user_terms(&c.detail);
    }
    let ok = report.ok();
    let checks = checks_value(&report.checks);
    let mut text = format!("{}: {}", if ok { "verified" } else { "FAILED" }, readable.shown);
    for c in &report.checks {
        text.push_str(&format!("\n  {} {:<16} {}", if c.ok { "ok  " } else { "FAIL" }, c.name, c.detail));
    }
    let value = Value::Object(Map::from_iter([
        ("backup".to_string(), Value::from(readable.shown.as_str())),
        ("checks".to_string(), Value::Array(checks)),
        ("ok".to_string(), Value::Bool(ok)),
        ("signed".to_string(), Value::Bool(report.signature.is_some())),
    ]));
    // Recorded only where a gm home is configured: verifying a copy on a laptop records nothing.
    let configured =
        config::resolve_home(args.home.as_deref(), &Env::from_process()).join(config::CONFIG_FILE).exists();
    if let Some(s) = settings(args.home.as_deref(), None).ok().filter(|_| configured) {
        Ledger::beside(&s.db_path).record_logged(
            &Record {
                kind: LedgerKind::Verify,
                outcome: Outcome::of(ok),
                artifact: Some(readable.shown.clone()),
                sha256: None,
                size: None,
                message: report
                    .checks
                    .iter()
                    .find(|c| !c.ok)
                    .map_or("all checks passed".to_string(), |c| format!("{}: {}", c.name, c.detail)),
                details: value.clone(),
            },
            Span::ended_now(started, took),
        );
    }
    Output { json: args.json }.result(&text, &value);
    Ok(if ok { 0 } else { EXIT_CHECK_FAILED })
}
