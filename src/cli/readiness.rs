//! `gm readiness`: resolves flags and gm.toml (as `gm serve` would) into `readiness::gather::Sources`,
//! lets `readiness` gather the evidence (genesis and keys on disk, the database, the ops ledger,
//! runbooks, disk, a live probe of the NA) and judge it, and prints the report as text, JSON or
//! JUnit, optionally signed with an operator key so the customer can keep it as sign-off evidence
//! (`gm readiness verify`). A report it cannot produce exits 3 through `cli::Error`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use argh::FromArgs;
use chrono::{DateTime, Utc};

use crate::clock::{Clock, SystemClock};
use crate::config::cron::{JobConfig, JobKind};
use crate::config::{self, Env, ServeSettings};
use crate::crypto::canonical::{canonical_string, to_pretty_string};
use crate::crypto::digest::sha256_hex;
use crate::crypto::keys::{load_public_key, load_signing_key, PublicKey};
use crate::json::{parse_str, Map, Value};
use crate::model::timestamp::isoformat_utc;
use crate::na::auth::admin::SignaturePolicy;
use crate::probe::Trust;
use crate::readiness::checks::{evaluate, period, Evidence, JobFact};
use crate::readiness::gather::{gather, Sources};
use crate::readiness::report::{junit, text, Report};

use super::backup::settings;
use super::error::Error;
use super::na_options::load_ca_file;

/// The machine-checkable pilot-readiness report; its exit code gates pilot sign-off.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "readiness",
    example = "gm readiness --home /etc/gm --na https://na.example.org\ngm readiness --home /etc/gm --format junit --output readiness.xml\ngm readiness --home /etc/gm --format json --output signed.json --sign --operator-key alice.key --operator-key-id alice-2026\ngm readiness sign report.json --operator-key alice.key --operator-key-id alice-2026\ngm readiness verify signed.json --public-key alice.pub",
    note = "Exit status: 0 every check passed, 1 only warnings, 2 a check failed, 3 the report could not be produced. CHECKLIST.md lists the checks and what proves each."
)]
pub(crate) struct ReadinessArgs {
    #[argh(subcommand)]
    action: Option<ReportAction>,
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// the NA URL on the operator network (default http://127.0.0.1:<configured port>, https:// with [tls])
    #[argh(option, long = "na")]
    target: Option<String>,
    /// PEM bundle of a private CA (self-hosted PKI): an https --na is trusted only if one of its certificates issued the NA's, and the host's CA roots are not used (default: the host's CA bundle)
    #[argh(option)]
    ca_file: Option<PathBuf>,
    /// text (default), json or junit
    #[argh(option, default = "String::from(\"text\")")]
    format: String,
    /// the same as --format json
    #[argh(switch)]
    json: bool,
    /// write the report here instead of stdout
    #[argh(option)]
    output: Option<PathBuf>,
    /// folder holding the incident runbooks (default HOME/runbooks)
    #[argh(option)]
    runbooks: Option<PathBuf>,
    /// a copy of the ops ledger (gm-ops.db) of the host where backups are verified and drills run, the backup identity's host; its verify and drill records count (repeatable)
    #[argh(option, long = "evidence-ledger")]
    evidence_ledgers: Vec<PathBuf>,
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
pub(crate) struct SignCommand {
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
pub(crate) struct VerifyCommand {
    /// the signed JSON report
    #[argh(positional)]
    report: PathBuf,
    /// the operator public key file (.pub)
    #[argh(option)]
    public_key: PathBuf,
}

/// Runs `gm readiness`.
pub(crate) fn run(mut args: ReadinessArgs) -> Result<u8, Error> {
    if args.json {
        if args.format != "text" && args.format != "json" {
            return Err(Error::readiness_not_produced(Error::usage(
                format!("--json and --format {} contradict each other", args.format),
                "give one of them",
            )));
        }
        args.format = "json".to_string();
    }
    match args.action {
        Some(ReportAction::Verify(v)) => return verify(v),
        Some(ReportAction::Sign(v)) => return sign_file(v),
        None => {}
    }
    produce(&args).map_err(Error::readiness_not_produced)
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
    let trust = load_ca_file(args.ca_file.as_deref())?;
    let evidence = gather(sources(args, &home, &file, &s, trust, &SystemClock));
    let now = evidence.now;
    let sovereign = evidence.genesis.as_ref().map_or_else(|_| "unknown".to_string(), |g| g.network_name.clone());
    let report = Report { generated_at: now, sovereign, checks: evaluate(&evidence), bindings: bindings(&evidence) };
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

/// The JSON shape: `{"ready", "generated_at", "sovereign", "bindings": {…}, "checks": [{"id",
/// "title", "status", "reason", "evidence", "fix" (when not passed)}]}`. `bindings` (the genesis
/// and profile digests) is inside the signed body.
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
            if let Some(fix) = &c.fix {
                m.insert("fix", fix.as_str());
            }
            Value::Object(m)
        })
        .collect();
    let mut m = Map::new();
    let mut bound = Map::new();
    for (k, v) in &report.bindings {
        bound.insert(k.as_str(), v.as_str());
    }
    m.insert("bindings", Value::Object(bound));
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
    // The signed bindings: what the report judged (reports from before bindings carry none).
    match value.as_object().and_then(|m| m.get("bindings")).and_then(|v| v.as_object()) {
        Some(b) if !b.is_empty() => {
            for (k, v) in b.iter() {
                super::output::line(&format!("  bound to {k}: {}", v.as_str().unwrap_or_default()));
            }
        }
        _ => super::output::line("  bound to nothing: this report predates genesis and profile bindings"),
    }
    Ok(0)
}

/// Resolves what `gm serve` would run with here (flags > env > gm.toml) into the readiness
/// sources; the facts behind them are read by `readiness::gather`.
fn sources<'a>(
    args: &ReadinessArgs,
    home: &Path,
    file: &config::file::ConfigFile,
    s: &ServeSettings,
    probe_trust: Trust,
    clock: &'a dyn Clock,
) -> Sources<'a> {
    let cron = crate::config::cron::cron_settings(home, file);
    let now = clock.now();
    Sources {
        clock,
        home: home.to_path_buf(),
        genesis_file: s.genesis_file.clone(),
        na_key_file: s.na_key_file.clone(),
        db_path: s.db_path.clone(),
        backup_signing_key_file: config::backup_signing(home, file).signing_key,
        probe_target: args.target.clone().unwrap_or_else(|| {
            format!("{}://127.0.0.1:{}", if s.tls.is_some() { "https" } else { "http" }, s.bind.port())
        }),
        probe_trust,
        runbooks_dir: args.runbooks.clone().unwrap_or_else(|| home.join("runbooks")),
        admin_v1_accepted: s.admin_signature == SignaturePolicy::V1AndV2,
        admin_decided_by: s.admin_signature_origin.describe().to_string(),
        profile: super::profile::load(home).map_err(|e| e.to_string()),
        operator_public_keys: crate::na::auth::operators::OperatorKeys::load(s.operator_keys.clone())
            .map(|k| k.current().len())
            .map_err(|e| e.to_string()),
        jobs: cron.as_ref().map(|c| c.jobs.iter().map(|j| job_fact(j, now)).collect()).map_err(|e| e.to_string()),
        job_key_files: cron.as_ref().map(|c| c.jobs.iter().flat_map(job_key_files).collect()).unwrap_or_default(),
        profile_file: home.join(super::profile::PROFILE_FILE),
        backup_signing_key: super::backup_signing::pinned(Some(home), None)
            .map(|k| k.current.to_b64())
            .map_err(|e| e.to_string()),
        evidence_ledgers: args.evidence_ledgers.clone(),
        tls_cert_file: s.tls.as_ref().map(|t| t.cert.clone()),
        proxy_hops: s.proxy_hops,
    }
}

/// A job as the scheduler check needs it: its period derived from its schedule.
fn job_fact(job: &JobConfig, now: DateTime<Utc>) -> JobFact {
    JobFact {
        name: job.name.clone(),
        kind: job.kind.name().to_string(),
        schedule: job.schedule.source().to_string(),
        period: period(now, |t| job.schedule.next_after(t)),
    }
}

/// The files a job reads that decrypt backups: verify and drill identities or passphrases, and a
/// backup passphrase (a passphrase both encrypts and decrypts).
fn job_key_files(job: &JobConfig) -> Vec<PathBuf> {
    match &job.kind {
        JobKind::Backup { passphrase_file, .. } => passphrase_file.iter().cloned().collect(),
        JobKind::Verify { identity_file, passphrase_file, .. }
        | JobKind::RestoreDrill { identity_file, passphrase_file, .. } => {
            identity_file.iter().chain(passphrase_file.iter()).cloned().collect()
        }
        _ => Vec::new(),
    }
}

/// What the report is bound to: the genesis (file, bytes, signed payload) and the profile (file,
/// bytes, and the responsibility matrix as canonical JSON, which survives reformatting).
fn bindings(e: &Evidence) -> BTreeMap<String, String> {
    let mut b = BTreeMap::new();
    if let Ok(g) = &e.genesis {
        b.insert("genesis_file".to_string(), g.path.display().to_string());
        b.insert("genesis_sha256".to_string(), g.sha256.clone());
        b.insert("genesis_payload_sha256".to_string(), g.payload_sha256.clone());
    }
    if let Some((path, sha)) = &e.profile_file {
        b.insert("profile_file".to_string(), path.display().to_string());
        b.insert("profile_sha256".to_string(), sha.clone());
    }
    for (i, (path, digest)) in e.evidence_ledgers.iter().enumerate() {
        b.insert(format!("evidence_ledger_{}", i + 1), path.display().to_string());
        b.insert(format!("evidence_ledger_{}_sha256", i + 1), digest.clone());
    }
    if let Ok(p) = &e.profile {
        let matrix = crate::readiness::profile::matrix_value(p);
        b.insert("responsibility_matrix_sha256".to_string(), sha256_hex(canonical_string(&matrix).as_bytes()));
    }
    b
}
