//! `gm managed restore`: a verified backup over the NA database (server stopped), with nonces and
//! revocations carried over from the replaced database.

use std::path::PathBuf;
use std::time::Instant;

use argh::FromArgs;

use crate::clock::{Clock, SystemClock};
use crate::json::{Map, Value};
use crate::ops::backup::load_genesis;
use crate::ops::ledger::{Ledger, LedgerKind, Outcome, Record, Span};
use crate::ops::progress::Progress as _;
use crate::ops::restore::{restore, RestoreOptions};

use super::backup::{decryption, extract_limits, ops_error, settings, MAX_BUSY_TIMEOUT_SECS};
use super::destinations::Readable;
use super::error::Error;
use super::flags::decrypting_command;
use super::output::Output;

decrypting_command! {
/// Restore a backup over the NA database (the server must be stopped).
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "restore",
    example = "gm managed restore --home /etc/gm --backup gm-acme-20261125T120000Z.tar.gz.age --identity backup.key --pre-restore-backup /var/backups/gm/before.db --yes\ngm managed restore --db-path na.db --backup upstream-copy.db --yes",
    note = "Refuses without --yes and while a gm serve holds the database. Keeps the replaced database beside the new one as DB.pre-restore-<UTC> (a hard link: no copy) unless --discard-replaced. Verifies first, signature included (an unsigned backup or a plain .db copy needs --allow-unsigned). Carries over nonces younger than 600 s and every revocation of the replaced database (reported; gm serve re-issues the CRL with them at start). Exit status: 0 restored, 1 the backup failed verification (damaged or forged), 2 could not run or refused."
)]
pub(crate) struct RestoreArgs {
    /// a gm archive (a file or an s3://bucket/prefix/gm-….tar.gz.age object) or an upstream plain .db backup
    #[argh(option)]
    backup: PathBuf,
    /// copy the current database here first (online backup API); without it the replaced database is still kept as DB.pre-restore-<UTC>
    #[argh(option)]
    pre_restore_backup: Option<PathBuf>,
    /// do not keep the replaced database as DB.pre-restore-<UTC> (it is discarded)
    #[argh(switch)]
    discard_replaced: bool,
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
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
}
}

/// Runs `gm managed restore`.
pub(crate) fn run_restore(args: RestoreArgs) -> Result<u8, Error> {
    if !args.yes {
        return Err(Error::refused(
            "refusing to restore without --yes",
            "stop the Network Authority (gm serve), then re-run with --yes",
        ));
    }
    let s = settings(args.home.as_deref(), args.db_path.clone())?;
    let key = decryption(args.decryption_flags())?;
    let expected_na_key = load_genesis(&s.genesis_file).ok().map(|(_, g)| g.network_authority.public_key);
    let trust =
        super::backup_signing::trust(args.home.as_deref(), args.signing_public_key.as_deref(), args.allow_unsigned)?;
    let limits = extract_limits(args.home.as_deref())?;
    // An S3 object is downloaded beside the database (same disk as the restore's own scratch).
    let db_folder = s.db_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let readable = Readable::get(&args.backup, args.home.as_deref(), db_folder, limits.max_unpacked_bytes)?;
    let (started, took) = (SystemClock.now(), Instant::now());
    let opts = RestoreOptions {
        db_path: s.db_path.clone(),
        backup: readable.path.clone(),
        key,
        pre_restore_backup: args.pre_restore_backup.clone(),
        keep_replaced: !args.discard_replaced,
        expected_na_key,
        allow_different_genesis: args.allow_different_genesis,
        busy_timeout: std::time::Duration::from_secs(args.busy_timeout.min(MAX_BUSY_TIMEOUT_SECS)),
        limits,
        trust,
    };
    let progress = super::progress::Terminal::for_stderr();
    let restored = restore(&opts, started, &progress).map_err(|e| readable.ops_in_user_terms(e));
    progress.finish();
    match restored {
        Ok(report) => {
            Ledger::beside(&s.db_path).record_logged(
                &Record {
                    kind: LedgerKind::Restore,
                    outcome: Outcome::Ok,
                    artifact: Some(readable.shown.clone()),
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
                Span::ended_now(started, took),
            );
            let mut m = Map::new();
            m.insert("db_path", Value::from(s.db_path.display().to_string()));
            m.insert("nonces_carried_over", Value::from(report.nonces_carried));
            m.insert(
                "pre_restore_backup",
                report.pre_restore_backup.map_or(Value::Null, |p| Value::from(p.display().to_string())),
            );
            m.insert(
                "replaced_database_kept",
                report.replaced_kept.as_ref().map_or(Value::Null, |p| Value::from(p.display().to_string())),
            );
            m.insert("restored_from", Value::from(readable.shown.as_str()));
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
                readable.shown,
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
            match &report.replaced_kept {
                Some(kept) => text.push_str(&format!(
                    "\n  the replaced database is kept as {} (delete it once the restore is confirmed)",
                    kept.display()
                )),
                None if args.discard_replaced => {
                    text.push_str("\n  the replaced database was discarded (--discard-replaced)")
                }
                None => {}
            }
            Output { json: args.json }.result(&text, &Value::Object(m));
            Ok(0)
        }
        Err(e) => {
            Ledger::beside(&s.db_path).record_logged(
                &Record::failed(LedgerKind::Restore, Some(readable.shown.clone()), e.to_string()),
                Span::ended_now(started, took),
            );
            Err(ops_error(e))
        }
    }
}
