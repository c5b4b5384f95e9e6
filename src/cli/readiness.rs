//! `gm readiness`: gathers the evidence (genesis and keys on disk, the profile, the database, the
//! ops ledger, the job table, runbooks, disk, a live probe of the NA), lets `readiness` judge it,
//! and prints the report as text, JSON or JUnit, optionally signed with an operator key so the
//! customer can keep it as sign-off evidence (`gm readiness verify`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use argh::FromArgs;
use chrono::{DateTime, Utc};

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Env, ServeSettings};
use crate::crypto::canonical::{canonical_string, to_pretty_string};
use crate::crypto::digest::sha256_hex;
use crate::crypto::keys::{load_public_key, load_signing_key, PublicKey};
use crate::crypto::signature::SignatureCheck;
use crate::json::{parse_str, Map, Value};
use crate::model::genesis::Genesis;
use crate::model::timestamp::{isoformat_utc, parse_db_time};
use crate::model::SignedObject;
use crate::na::auth::admin::SignaturePolicy;
use crate::readiness::checks::{
    evaluate, AdminAuthFacts, Evidence, ExpiringTreaty, GenesisFacts, LedgerFact, ProbeFact, RUNBOOKS,
};
use crate::readiness::report::{junit, text, Report};

use super::backup::{ledger_path, settings};
use super::error::Error;

/// Exit status when the report could not be produced.
const EXIT_COULD_NOT_RUN: u8 = 3;

/// The machine-checkable pilot-readiness report; its exit code gates pilot sign-off.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "readiness",
    example = "gm readiness --home /etc/gm --target https://na.example.org\ngm readiness --home /etc/gm --format junit --output readiness.xml\ngm readiness --home /etc/gm --format json --output signed.json --sign --operator-key alice.key --operator-key-id alice-2026\ngm readiness sign report.json --operator-key alice.key --operator-key-id alice-2026\ngm readiness verify signed.json --public-key alice.pub",
    note = "Exit status: 0 every check passed, 1 only warnings, 2 a check failed, 3 the report could not be produced. CHECKLIST.md lists the checks and what proves each."
)]
pub struct ReadinessArgs {
    #[argh(subcommand)]
    action: Option<ReportAction>,
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// the NA URL on the operator network (default http://127.0.0.1:<configured port>)
    #[argh(option)]
    target: Option<String>,
    /// text (default), json or junit
    #[argh(option, default = "String::from(\"text\")")]
    format: String,
    /// write the report here instead of stdout
    #[argh(option)]
    output: Option<PathBuf>,
    /// folder holding the incident runbooks (default HOME/runbooks)
    #[argh(option)]
    runbooks: Option<PathBuf>,
    /// sign the JSON report with --operator-key
    #[argh(switch)]
    sign: bool,
    /// operator private key file for --sign
    #[argh(option)]
    operator_key: Option<PathBuf>,
    /// its key id
    #[argh(option)]
    operator_key_id: Option<String>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum ReportAction {
    Sign(SignCommand),
    Verify(VerifyCommand),
}

/// Sign a JSON readiness report made on the NA host, where the operator key must not be.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "sign")]
pub struct SignCommand {
    /// the JSON report (gm readiness --format json --output F)
    #[argh(positional)]
    report: PathBuf,
    /// operator private key file
    #[argh(option)]
    operator_key: PathBuf,
    /// its key id
    #[argh(option)]
    operator_key_id: String,
    /// write the signed report here (default: replace REPORT)
    #[argh(option)]
    output: Option<PathBuf>,
}

/// Check a signed readiness report against an operator public key.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "verify", note = "Exit status: 0 the signature verifies, 1 it does not, 2 could not run.")]
pub struct VerifyCommand {
    /// the signed JSON report
    #[argh(positional)]
    report: PathBuf,
    /// the operator public key file (.pub)
    #[argh(option)]
    public_key: PathBuf,
}

/// Runs `gm readiness`.
pub fn run(args: ReadinessArgs) -> Result<u8, Error> {
    match args.action {
        Some(ReportAction::Verify(v)) => return verify(v),
        Some(ReportAction::Sign(v)) => return sign_file(v),
        None => {}
    }
    match produce(&args) {
        Ok(code) => Ok(code),
        Err(e) => {
            super::output::notice(&format!("error: {e}"));
            if let Some(hint) = e.hint() {
                super::output::notice(&format!("hint: {hint}"));
            }
            Ok(EXIT_COULD_NOT_RUN)
        }
    }
}

fn produce(args: &ReadinessArgs) -> Result<u8, Error> {
    if !["text", "json", "junit"].contains(&args.format.as_str()) {
        return Err(Error::usage(format!("unknown --format {:?}", args.format), "use text, json or junit"));
    }
    if args.sign && (args.format != "json" || args.operator_key.is_none() || args.operator_key_id.is_none()) {
        return Err(Error::usage(
            "--sign needs --format json, --operator-key FILE and --operator-key-id ID",
            "the signed report is JSON; the customer checks it with gm readiness verify",
        ));
    }
    let env = Env::from_process();
    let home = config::resolve_home(args.home.as_deref(), &env);
    let file = config::load_file(&home)?;
    let s = settings(Some(&home), None)?;
    let now = SystemClock.now();
    let evidence = gather(args, &home, &file, &s, now);
    let sovereign = evidence.genesis.as_ref().map_or_else(|_| "unknown".to_string(), |g| g.network_name.clone());
    let report = Report { generated_at: now, sovereign, checks: evaluate(&evidence) };
    let rendered = match args.format.as_str() {
        "junit" => junit(&report),
        "json" => {
            let mut value = report_value(&report);
            if args.sign {
                sign(&mut value, args)?;
            }
            to_pretty_string(&value) + "\n"
        }
        _ => text(&report),
    };
    match &args.output {
        Some(path) => {
            crate::files::atomic::write_atomic(path, rendered.as_bytes(), crate::files::atomic::Mode::Private, true)
                .map_err(Error::io("write", path))?;
            super::output::line(&format!("{}: {}", path.display(), text(&report).lines().next().unwrap_or_default()));
        }
        None => super::output::raw(&rendered),
    }
    Ok(report.exit_code())
}

/// The JSON shape: `{"ready", "generated_at", "sovereign", "checks": [{"id", "title", "status",
/// "reason", "evidence"}]}`.
fn report_value(report: &Report) -> Value {
    let checks = report
        .checks
        .iter()
        .map(|c| {
            let mut m = Map::new();
            m.insert("id", c.id);
            m.insert("title", c.title);
            m.insert("status", c.status.as_str());
            m.insert("reason", c.reason.as_str());
            let mut ev = Map::new();
            for (k, v) in &c.evidence {
                ev.insert(k.as_str(), v.as_str());
            }
            m.insert("evidence", Value::Object(ev));
            Value::Object(m)
        })
        .collect();
    let mut m = Map::new();
    m.insert("checks", Value::Array(checks));
    m.insert("generated_at", isoformat_utc(report.generated_at));
    m.insert("ready", report.ready());
    m.insert("sovereign", report.sovereign.as_str());
    Value::Object(m)
}

/// Signs the canonical JSON of the report (without `signature`) and adds `signature`.
fn sign(value: &mut Value, args: &ReadinessArgs) -> Result<(), Error> {
    let (Some(key_file), Some(key_id)) = (&args.operator_key, &args.operator_key_id) else {
        return Err(Error::usage("--sign needs --operator-key and --operator-key-id", "see gm readiness --help"));
    };
    sign_value(value, key_file, key_id)
}

fn sign_file(args: SignCommand) -> Result<u8, Error> {
    let text = std::fs::read_to_string(&args.report).map_err(Error::io("read", &args.report))?;
    let mut value = parse_str(&text).map_err(|e| {
        Error::refused(
            format!("{} is not JSON: {e}", args.report.display()),
            "pass a report from gm readiness --format json",
        )
    })?;
    let is_report = value.as_object().is_some_and(|m| m.get("checks").is_some() && m.get("ready").is_some());
    if !is_report {
        return Err(Error::refused(
            format!("{} is not a readiness report", args.report.display()),
            "pass a report from gm readiness --format json",
        ));
    }
    if let Value::Object(m) = &mut value {
        m.remove("signature");
    }
    sign_value(&mut value, &args.operator_key, &args.operator_key_id)?;
    let out = args.output.unwrap_or(args.report);
    let text = to_pretty_string(&value) + "\n";
    crate::files::atomic::write_atomic(&out, text.as_bytes(), crate::files::atomic::Mode::Private, true)
        .map_err(Error::io("write", &out))?;
    super::output::line(&format!("signed: {}", out.display()));
    Ok(0)
}

fn sign_value(value: &mut Value, key_file: &Path, key_id: &str) -> Result<(), Error> {
    let key = load_signing_key(key_file)?;
    let signature = key.sign_b64(canonical_string(value).as_bytes());
    if let Value::Object(m) = value {
        let mut sig = Map::new();
        sig.insert("algorithm", "ed25519");
        sig.insert("key_id", key_id);
        sig.insert("public_key", key.public_key().to_b64());
        sig.insert("value", signature);
        m.insert("signature", Value::Object(sig));
    }
    Ok(())
}

fn verify(args: VerifyCommand) -> Result<u8, Error> {
    let text = std::fs::read_to_string(&args.report).map_err(Error::io("read", &args.report))?;
    let mut value = parse_str(&text).map_err(|e| {
        Error::refused(
            format!("{} is not JSON: {e}", args.report.display()),
            "pass the report written by gm readiness --format json --sign",
        )
    })?;
    let key: PublicKey = load_public_key(&args.public_key)?;
    let signature = match &mut value {
        Value::Object(m) => m.remove("signature"),
        _ => None,
    };
    let Some(sig) = signature
        .as_ref()
        .and_then(|s| s.as_object())
        .and_then(|s| s.get("value"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
    else {
        return Err(Error::CheckFailed { message: format!("{} carries no signature", args.report.display()) });
    };
    if !crate::crypto::signature::verify_b64(&key, canonical_string(&value).as_bytes(), &sig) {
        return Err(Error::CheckFailed {
            message: format!(
                "the signature of {} does not verify with {}",
                args.report.display(),
                args.public_key.display()
            ),
        });
    }
    let ready = value.as_object().and_then(|m| m.get("ready")).and_then(|v| v.as_bool()).unwrap_or(false);
    let when =
        value.as_object().and_then(|m| m.get("generated_at")).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    super::output::line(&format!(
        "valid: readiness report of {when} ({}) signed by {}",
        if ready { "ready" } else { "not ready" },
        args.public_key.display()
    ));
    Ok(0)
}

fn gather(
    args: &ReadinessArgs,
    home: &Path,
    file: &config::file::ConfigFile,
    s: &ServeSettings,
    now: DateTime<Utc>,
) -> Evidence {
    let genesis = genesis_facts(s);
    let profile = super::profile::load(home).map_err(|e| e.to_string());
    let na_key_mode = std::fs::metadata(&s.na_key_file)
        .ok()
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    let operator_public_keys = crate::na::auth::operators::OperatorKeys::load(s.operator_keys.clone())
        .map(|k| k.current().len())
        .map_err(|e| e.to_string());
    let db_dir = s.db_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let backup_signing = config::backup_signing(home, file).signing_key;
    let expected: Vec<&Path> = std::iter::once(s.na_key_file.as_path()).chain(backup_signing.as_deref()).collect();
    let mut private_keys_found = private_keys(home, &expected);
    private_keys_found.extend(private_keys(&db_dir, &expected));
    private_keys_found.sort();
    private_keys_found.dedup();
    let target = args.target.clone().unwrap_or_else(|| format!("http://127.0.0.1:{}", s.bind.port()));
    let probe = probe(&target);
    let ledger = ledger(&ledger_path(&s.db_path));
    let export_redaction = ledger.as_ref().ok().and_then(|l| {
        let x = l.iter().find(|e| e.kind == "export" && e.outcome == "ok")?;
        let path = PathBuf::from(x.artifact.clone()?);
        let checked = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
            .and_then(|t| crate::readiness::redaction::recheck(&t));
        Some((path, checked))
    });
    let runbooks_dir = args.runbooks.clone().unwrap_or_else(|| home.join("runbooks"));
    let missing = RUNBOOKS.iter().copied().filter(|r| !runbooks_dir.join(r).is_file()).collect();
    let jobs = crate::config::cron::cron_settings(home, file)
        .map(|c| c.jobs.iter().map(|j| (j.name.clone(), j.kind.name().to_string())).collect())
        .map_err(|e| e.to_string());
    Evidence {
        now,
        build_time: crate::clock::build_time(),
        genesis,
        profile,
        na_key_file: (s.na_key_file.clone(), na_key_mode),
        operator_public_keys,
        admin_auth: admin_auth(s, now),
        private_keys_found,
        probe,
        probe_target: target,
        ledger,
        export_redaction,
        database: database(&s.db_path),
        runbooks: (runbooks_dir, missing),
        jobs,
        disk_free_ratio: super::ops_metrics::free_ratio(&db_dir),
        expiring_treaties: expiring_treaties(&s.db_path, now),
        backup_signing_key: super::backup_signing::pinned(Some(home), None)
            .map(|k| k.current.to_b64())
            .map_err(|e| e.to_string()),
    }
}

/// The admin signature policy `gm serve` would run with here (same gm.toml and environment), and
/// how often version 1 was accepted in the last 30 days (`admin_legacy_signature_accepted`).
fn admin_auth(s: &ServeSettings, now: DateTime<Utc>) -> AdminAuthFacts {
    let since = isoformat_utc(now - chrono::Duration::days(30));
    let legacy_accepted_30d = open_read_only(&s.db_path).and_then(|conn| {
        crate::store::audit::count_since(&conn, "admin_legacy_signature_accepted", &since).map_err(|e| e.to_string())
    });
    AdminAuthFacts {
        v1_accepted: s.admin_signature == SignaturePolicy::V1AndV2,
        decided_by: s.admin_signature_origin.describe().to_string(),
        legacy_accepted_30d,
    }
}

fn genesis_facts(s: &ServeSettings) -> Result<GenesisFacts, String> {
    let bytes = std::fs::read(&s.genesis_file).map_err(|e| format!("cannot read {}: {e}", s.genesis_file.display()))?;
    let value =
        parse_str(&String::from_utf8_lossy(&bytes)).map_err(|e| format!("{}: {e}", s.genesis_file.display()))?;
    let g = Genesis::from_value(&value).map_err(|e| format!("{}: {e}", s.genesis_file.display()))?;
    let na_key_matches =
        load_signing_key(&s.na_key_file).ok().map(|k| k.public_key().to_b64() == g.network_authority.public_key);
    Ok(GenesisFacts {
        path: s.genesis_file.clone(),
        sha256: sha256_hex(&bytes),
        network_name: g.network_name.clone(),
        root_signed: matches!(g.check_root_signatures(), SignatureCheck::Valid),
        na_key_matches,
        na_valid_from: g.network_authority.valid_from.to_utc(),
        na_valid_to: g.network_authority.valid_to.to_utc(),
    })
}

/// Ed25519 private key files (gm/upstream layout) under `dir`, two levels deep, except the NA key.
/// Private key files under `dir` (two levels), except the ones the NA host must hold: the NA key
/// and the backup-signing key (backups are signed where they are taken).
fn private_keys(dir: &Path, expected: &[&Path]) -> Vec<PathBuf> {
    let expected: Vec<PathBuf> = expected.iter().filter_map(|p| p.canonicalize().ok()).collect();
    let mut found = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() && depth < 2 {
                stack.push((path, depth + 1));
            } else if kind.is_file() && path.extension().is_some_and(|x| x == "key") {
                let is_private = std::fs::read_to_string(&path)
                    .is_ok_and(|t| t.lines().next().is_some_and(|l| l.contains("Private Key")));
                if is_private && !path.canonicalize().is_ok_and(|p| expected.contains(&p)) {
                    found.push(path);
                }
            }
        }
    }
    found
}

fn probe(target: &str) -> Result<Vec<ProbeFact>, String> {
    use crate::probe::checks::{run_checks, CheckName, Outcome};
    let mut checks: Vec<CheckName> =
        ["healthz", "readyz", "metrics", "connectome"].iter().filter_map(|n| CheckName::from_name(n)).collect();
    if target.starts_with("https://") {
        checks.extend(CheckName::from_name("tls"));
    }
    let options = crate::probe::ProbeOptions {
        target: target.to_string(),
        checks,
        root_public_key: None,
        timeout: Duration::from_secs(10),
        tls: crate::probe::TlsThresholds { warn_days: 14, critical_days: 7 },
    };
    let results = run_checks(&options, &SystemClock);
    Ok(results
        .into_iter()
        .map(|r| ProbeFact {
            check: r.check.name().to_string(),
            ok: r.outcome == Outcome::Pass,
            reason: r.reason,
            cert_expiry_days: r.cert_expiry_days,
        })
        .collect())
}

fn ledger(path: &Path) -> Result<Vec<LedgerFact>, String> {
    if !path.is_file() {
        return Err(format!("no ops ledger at {} (no backup, drill or export has run)", path.display()));
    }
    let conn = crate::store::ledger::open(path).map_err(|e| e.to_string())?;
    let entries = crate::store::ledger::list(&conn, None, 100_000).map_err(|e| e.to_string())?;
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            Some(LedgerFact {
                id: e.id,
                finished_at: parse_db_time(&e.finished_at)?,
                kind: e.kind,
                outcome: e.outcome,
                signed: crate::json::parse_str(&e.details_json)
                    .ok()
                    .and_then(|v| v.as_object().and_then(|m| m.get("signed")).and_then(|x| x.as_bool())),
                artifact: e.artifact,
                sha256: e.sha256,
            })
        })
        .collect())
}

/// The database opened read-only (never created), or why not.
fn open_read_only(db: &Path) -> Result<rusqlite::Connection, String> {
    if !db.is_file() {
        return Err(format!("database {} does not exist", db.display()));
    }
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("cannot open {}: {e}", db.display()))
}

fn database(db: &Path) -> Result<(PathBuf, String), String> {
    let conn = open_read_only(db)?;
    let mode: String =
        conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).map_err(|e| format!("{}: {e}", db.display()))?;
    Ok((db.to_path_buf(), mode))
}

fn expiring_treaties(db: &Path, now: DateTime<Utc>) -> Result<Vec<ExpiringTreaty>, String> {
    let conn = open_read_only(db)?;
    let rows = crate::store::treaties::list(&conn, "", "", "").map_err(|e| e.to_string())?;
    let active: Vec<_> = rows
        .iter()
        .filter(|r| r.status == "active")
        .filter_map(|r| parse_db_time(&r.expires_at).filter(|t| *t > now).map(|t| (r, t)))
        .collect();
    Ok(active
        .iter()
        .filter(|(_, t)| *t - now < chrono::Duration::days(7))
        .map(|(r, t)| ExpiringTreaty {
            treaty_id: r.treaty_id.clone(),
            subject: r.subject_sovereign_id.clone(),
            expires_at: *t,
            has_successor: active.iter().any(|(o, ot)| {
                o.subject_sovereign_id == r.subject_sovereign_id && o.treaty_id != r.treaty_id && *ot > *t
            }),
        })
        .collect())
}
