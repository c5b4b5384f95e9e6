//! `gm config check`: reads a gm home the way `gm serve` and the scheduled jobs will, and says
//! what would fail and what to do, before anything runs: `gm.toml` (every key, as `gm serve`
//! resolves it with the environment), the operators file, `profile.toml`, the files the settings
//! name (present, readable, the secret ones private) and the folders the jobs write to.
//!
//! Must not: change any file. It only reads; every fix is a line for the operator to act on.
//! Exit status: 0 nothing wrong (warnings allowed), 1 at least one error, 2 could not run (the
//! home does not exist).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use argh::FromArgs;

use crate::config::cron::{cron_settings, JobKind};
use crate::config::{self, ConfigFile, Env, ServeFlags, CONFIG_FILE};
use crate::crypto::keys::{load_public_key, load_signing_key, PublicKey};
use crate::json::{Map, Value};
use crate::model::genesis::Genesis;
use crate::model::SignedObject;
use crate::na::auth::operators::parse_key_set;
use crate::ops::s3::S3Url;
use crate::readiness::profile::Profile;

use super::error::{Error, EXIT_CHECK_FAILED};
use super::output::Output;

/// Check a gm home before running it: gm.toml, operators, profile, key files and modes, job folders.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "check",
    example = "gm config check --home /etc/gm\ngm config check --home ./gm-sandbox --json",
    note = "Reads gm.toml as gm serve does (environment included), then every file and folder the settings and the scheduled jobs name. Changes nothing. Exit status: 0 nothing wrong (warnings allowed), 1 at least one error (each with a fix), 2 could not run (the home does not exist)."
)]
pub(crate) struct CheckArgs {
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
}

/// Configuration commands.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "config")]
pub(crate) struct ConfigArgs {
    #[argh(subcommand)]
    action: ConfigAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum ConfigAction {
    Check(CheckArgs),
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// Fine; listed so the report shows what was looked at.
    Ok,
    /// Works, but not as a pilot should run.
    Warning,
    /// `gm serve` or a job will fail.
    Error,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// One thing checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// How bad.
    pub level: Level,
    /// What was checked: a file, a setting or a job.
    pub subject: String,
    /// What was found.
    pub message: String,
    /// What to do (errors and warnings).
    pub fix: Option<String>,
}

impl Finding {
    fn ok(subject: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding { level: Level::Ok, subject: subject.into(), message: message.into(), fix: None }
    }

    fn warning(subject: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding { level: Level::Warning, subject: subject.into(), message: message.into(), fix: Some(fix.into()) }
    }

    fn error(subject: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding { level: Level::Error, subject: subject.into(), message: message.into(), fix: Some(fix.into()) }
    }
}

/// Runs `gm config …`.
pub(crate) fn run(args: ConfigArgs) -> Result<u8, Error> {
    match args.action {
        ConfigAction::Check(a) => run_check(a),
    }
}

fn run_check(args: CheckArgs) -> Result<u8, Error> {
    let env = Env::from_process();
    let home = super::home::existing(args.home.as_deref(), &env)?;
    let findings = check_home(&home, &env);
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    let warnings = findings.iter().filter(|f| f.level == Level::Warning).count();
    let mut text = format!("gm config check {}\n", home.display());
    for f in &findings {
        text.push_str(&format!("  {:<7} {}: {}\n", f.level.label(), f.subject, f.message));
        if let Some(fix) = &f.fix {
            text.push_str(&format!("          fix: {fix}\n"));
        }
    }
    text.push_str(&format!("{errors} error(s), {warnings} warning(s)"));
    let mut m = Map::new();
    m.insert("home", home.display().to_string());
    m.insert("errors", Value::from(errors));
    m.insert("warnings", Value::from(warnings));
    m.insert("ok", Value::Bool(errors == 0));
    m.insert(
        "findings",
        Value::Array(
            findings
                .iter()
                .map(|f| {
                    let mut o = Map::new();
                    o.insert("level", f.level.label());
                    o.insert("subject", f.subject.as_str());
                    o.insert("message", f.message.as_str());
                    o.insert("fix", f.fix.as_deref().map_or(Value::Null, Value::from));
                    Value::Object(o)
                })
                .collect(),
        ),
    );
    Output { json: args.json }.result(&text, &Value::Object(m));
    Ok(if errors > 0 { EXIT_CHECK_FAILED } else { 0 })
}

/// Every finding for `home`, in the order an operator fixes them: gm.toml, then what it names.
pub(crate) fn check_home(home: &Path, env: &Env) -> Vec<Finding> {
    let mut out = Vec::new();
    let file = match config::load_file(home) {
        Ok(file) if file.present => {
            out.push(Finding::ok(CONFIG_FILE, "parses; every key is known"));
            file
        }
        Ok(file) => {
            out.push(Finding::warning(
                CONFIG_FILE,
                "absent: configured the upstream way (environment only), so admin signatures v1 and v2 are accepted",
                "gm quickstart and scripts/install.sh write one; docs/config.md lists every key",
            ));
            file
        }
        Err(e) => {
            out.push(Finding::error(
                CONFIG_FILE,
                e.to_string(),
                "fix the key named above; docs/config.md lists every key",
            ));
            return out;
        }
    };
    check_serve(home, &file, env, &mut out);
    check_operators(home, &file, env, &mut out);
    check_backup_signing(home, &file, &mut out);
    check_destinations(home, &file, env, &mut out);
    check_jobs(home, &file, &mut out);
    check_profile(home, &mut out);
    out
}

fn check_serve(home: &Path, file: &ConfigFile, env: &Env, out: &mut Vec<Finding>) {
    let s = match config::serve_settings(home, file, env, &ServeFlags::default()) {
        Ok(s) => s,
        Err(e) => {
            out.push(Finding::error(
                "settings",
                e.to_string(),
                "fix the setting named above (gm.toml or the environment)",
            ));
            return;
        }
    };
    out.push(Finding::ok("settings", format!("gm serve would listen on {}", s.bind)));
    if let Err(e) = config::extract_limits(home, file) {
        out.push(Finding::error("[backup]", e.to_string(), "fix the setting named above"));
    }
    match std::fs::read_to_string(&s.genesis_file) {
        Ok(text) => match crate::json::parse_str(&text)
            .map_err(|e| e.to_string())
            .and_then(|v| Genesis::from_value(&v).map_err(|e| e.to_string()))
        {
            Ok(g) if g.signatures().is_empty() && !s.allow_unsigned_genesis => out.push(Finding::error(
                shown(home, &s.genesis_file),
                "the genesis carries no root signature",
                "sign it offline with the root key (gm genesis sign)",
            )),
            Ok(g) => out.push(Finding::ok(shown(home, &s.genesis_file), format!("genesis of {}", g.network_name))),
            Err(e) => out.push(Finding::error(
                shown(home, &s.genesis_file),
                format!("not a genesis: {e}"),
                "restore the signed genesis the root sovereign approved",
            )),
        },
        Err(e) => out.push(Finding::error(
            shown(home, &s.genesis_file),
            format!("cannot read: {e}"),
            "set [na] genesis_file (or GENESIS_FILE) to the signed genesis",
        )),
    }
    match &s.na_key_source {
        config::NaKeySource::RemoteSigner { listen, host_key_file } => {
            out.push(Finding::ok(
                "signer",
                format!("customer-held custody: no NA key loaded; the customer's gm signer run dials {listen}"),
            ));
            if s.na_key_file.exists() {
                out.push(Finding::error(
                    shown(home, &s.na_key_file),
                    "an NA private key sits on a host configured for customer-held custody ([signer] listen)",
                    "hand the key to the customer (gm custody escrow), then remove it from this host",
                ));
            }
            if host_key_file.exists() {
                out.push(secret_key(
                    home,
                    host_key_file,
                    "the NA host key the signer pins",
                    "remove it to have gm serve create a new one (then re-pin it on the signer)",
                ));
            } else {
                out.push(Finding::ok(shown(home, host_key_file), "not created yet: gm serve creates it (mode 0600)"));
            }
        }
        config::NaKeySource::Credential { name, path } => out.push(secret_key(
            home,
            path,
            &format!("the NA private key (systemd credential {name})"),
            "check LoadCredentialEncrypted= in the unit",
        )),
        config::NaKeySource::File { .. } => out.push(secret_key(
            home,
            &s.na_key_file,
            "the NA private key",
            "set [na] na_private_key_file (or NA_PRIVATE_KEY_FILE)",
        )),
    }
    let db_folder = parent(&s.db_path);
    if s.db_path.as_os_str() == ":memory:" {
        out.push(Finding::warning("database", "in memory: nothing survives a restart", "set [na] db_path to a file"));
    } else if !db_folder.is_dir() {
        out.push(Finding::error(
            shown(home, &s.db_path),
            format!("its folder {} does not exist", db_folder.display()),
            format!("mkdir -p {} (owned by the user gm serve runs as)", db_folder.display()),
        ));
    } else if s.db_path.exists() {
        out.push(private_file(home, &s.db_path, "the database (it holds invite tokens)"));
    } else {
        out.push(Finding::ok(shown(home, &s.db_path), "not created yet: gm serve creates it (mode 0600)"));
    }
}

fn check_operators(home: &Path, file: &ConfigFile, env: &Env, out: &mut Vec<Finding>) {
    if env.get("OPERATOR_PUBLIC_KEYS_JSON").is_some() {
        out.push(Finding::ok("operators", "from OPERATOR_PUBLIC_KEYS_JSON (the file is ignored)"));
        return;
    }
    let path = config::operator_keys_file(home, file);
    let subject = shown(home, &path);
    match std::fs::read_to_string(&path) {
        Ok(text) => match parse_key_set(&text) {
            Ok(keys) if keys.is_empty() => out.push(Finding::error(
                subject,
                "holds no operator key: every admin request would be refused",
                "add the customer's operator public key with gm operator add",
            )),
            Ok(keys) => out.push(Finding::ok(subject, format!("{} operator key(s)", keys.len()))),
            Err(e) => out.push(Finding::error(
                subject,
                format!("not an operator key file: {e}"),
                "it maps key ids to base64 public keys: {\"operator-1\": \"…\"}; gm operator add writes it",
            )),
        },
        Err(e) => out.push(Finding::error(
            subject,
            format!("cannot read: {e}"),
            "add the customer's operator public key with gm operator add (or set OPERATOR_PUBLIC_KEYS_JSON)",
        )),
    }
}

fn check_backup_signing(home: &Path, file: &ConfigFile, out: &mut Vec<Finding>) {
    let s = config::backup_signing(home, file);
    match &s.signing_key {
        Some(path) => out.push(secret_key(home, path, "the backup-signing key", "set [backup] signing_key")),
        None => out.push(Finding::warning(
            "[backup] signing_key",
            "not set: gm managed backup refuses unless --allow-unsigned",
            "gm keygen backup-signing, then set [backup] signing_key",
        )),
    }
    for (field, key) in std::iter::once(("signing_public_key", s.signing_public_key.as_ref()))
        .chain(s.retired_signing_public_keys.iter().map(|k| ("retired_signing_public_keys", Some(k))))
    {
        let Some(key) = key else { continue };
        let parsed = if Path::new(key).is_file() {
            load_public_key(Path::new(key)).map(|_| ()).map_err(|e| e.to_string())
        } else {
            PublicKey::from_b64(key).map(|_| ()).map_err(|e| e.to_string())
        };
        if let Err(e) = parsed {
            out.push(Finding::error(
                format!("[backup] {field}"),
                format!("{key:?} is neither a .pub file in the home nor a base64 public key: {e}"),
                "name the backup-signing .pub file, or paste its base64 line",
            ));
        }
    }
}

/// `[[backup.destinations]]`: valid, and each one's endpoint and credentials resolve (without
/// contacting the storage: `gm managed backup` checks the bucket itself). Backup jobs may name
/// only declared destinations.
fn check_destinations(home: &Path, file: &ConfigFile, env: &Env, out: &mut Vec<Finding>) {
    let all = match config::backup_destinations(home, file) {
        Ok(all) => all,
        Err(e) => {
            out.push(Finding::error("[[backup.destinations]]", e.to_string(), "fix the setting named above"));
            return;
        }
    };
    let aws = config::aws_env(env);
    for d in &all {
        let subject = format!("destination {}", d.name);
        match d.target(&d.url, &aws) {
            Ok(t) => out.push(Finding::ok(
                subject,
                format!(
                    "{} at {}{}",
                    d.url,
                    t.remote.endpoint(),
                    d.lock.map(|l| format!(", Object Lock {} {} days", l.mode.header(), l.days)).unwrap_or_default()
                ),
            )),
            Err(e) => out.push(Finding::error(subject, e.message, e.hint)),
        }
    }
    if let Ok(settings) = cron_settings(home, file) {
        for job in &settings.jobs {
            if let JobKind::Backup { destinations, .. } = &job.kind {
                for name in destinations.iter().filter(|n| !S3Url::is_s3(n)) {
                    if crate::ops::destination::named(name, &all).is_err() {
                        out.push(Finding::error(
                            format!("job {}", job.name),
                            format!("destinations names {name:?}, which no [[backup.destinations]] declares"),
                            "declare it in gm.toml, or use an s3://bucket/prefix URL",
                        ));
                    }
                }
            }
        }
    }
}

fn check_jobs(home: &Path, file: &ConfigFile, out: &mut Vec<Finding>) {
    let settings = match cron_settings(home, file) {
        Ok(s) => s,
        Err(e) => {
            out.push(Finding::error(
                "[cron]",
                e.to_string(),
                "fix the job named above; docs/config.md lists each kind's keys",
            ));
            return;
        }
    };
    if settings.jobs.is_empty() {
        out.push(Finding::warning(
            "[cron]",
            "no scheduled jobs: no backup, verify or drill runs by itself",
            "declare [cron.jobs.*] (gm quickstart writes the defaults; docs/config.md has the list)",
        ));
    }
    for job in &settings.jobs {
        let subject = format!("job {}", job.name);
        let mut inputs: Vec<(&Path, &str)> = Vec::new();
        let mut folders: Vec<PathBuf> = Vec::new();
        match &job.kind {
            JobKind::Backup { dir, recipients_file, passphrase_file, .. } => {
                folders.push(dir.clone());
                inputs.extend(recipients_file.as_deref().map(|p| (p, "recipients_file")));
                inputs.extend(passphrase_file.as_deref().map(|p| (p, "passphrase_file")));
            }
            JobKind::Verify { dir, identity_file, passphrase_file } => {
                folders.push(dir.clone());
                inputs.extend(identity_file.as_deref().map(|p| (p, "identity_file")));
                inputs.extend(passphrase_file.as_deref().map(|p| (p, "passphrase_file")));
            }
            JobKind::RestoreDrill { dir, identity_file, passphrase_file, report_file } => {
                folders.push(dir.clone());
                folders.extend(report_file.as_deref().map(parent));
                inputs.extend(identity_file.as_deref().map(|p| (p, "identity_file")));
                inputs.extend(passphrase_file.as_deref().map(|p| (p, "passphrase_file")));
            }
            JobKind::AuditExport { dir, .. } | JobKind::AuditPrune { dir, .. } | JobKind::Prune { dir, .. } => {
                folders.push(dir.clone());
            }
            JobKind::Probe { state_file, ca_file, .. } => {
                folders.extend(state_file.as_deref().map(parent));
                inputs.extend(ca_file.as_deref().map(|p| (p, "ca_file")));
            }
        }
        let mut problems = 0;
        for (path, field) in inputs {
            if let Err(e) = std::fs::metadata(path) {
                problems += 1;
                out.push(Finding::error(
                    &subject,
                    format!("{field} {}: {e}", path.display()),
                    format!("create {} or point {field} at the right file", path.display()),
                ));
            }
        }
        // An s3:// location is not a folder on this host (gm managed backup checks the bucket).
        for folder in folders.into_iter().filter(|f| !S3Url::is_s3(&f.to_string_lossy())) {
            if !folder.is_dir() && !parent(&folder).is_dir() {
                problems += 1;
                out.push(Finding::error(
                    &subject,
                    format!("writes to {}, whose parent folder does not exist", folder.display()),
                    format!("mkdir -p {}", folder.display()),
                ));
            }
        }
        if problems == 0 {
            out.push(Finding::ok(subject, format!("{} ({})", job.kind.name(), job.schedule.source())));
        }
    }
}

fn check_profile(home: &Path, out: &mut Vec<Finding>) {
    let path = home.join(super::profile::PROFILE_FILE);
    let subject = shown(home, &path);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(_) => {
            out.push(Finding::warning(
                subject,
                "absent: gm readiness needs the sovereign's decisions",
                "gm profile init, then fill it in with the customer",
            ));
            return;
        }
    };
    match Profile::parse(&text) {
        Ok(profile) => {
            let problems = profile.problems();
            if problems.is_empty() {
                out.push(Finding::ok(subject, "complete"));
            } else {
                let fields: Vec<String> = problems.iter().map(|p| format!("{} ({})", p.field, p.problem)).collect();
                out.push(Finding::warning(
                    subject,
                    format!("incomplete: {}", fields.join(", ")),
                    "gm profile check lists what is missing",
                ));
            }
        }
        Err(e) => out.push(Finding::error(subject, format!("does not parse: {e}"), "fix the key named above")),
    }
}

/// A private key file: it loads and only its owner can read it.
fn secret_key(home: &Path, path: &Path, what: &str, setting: &str) -> Finding {
    let subject = shown(home, path);
    match load_signing_key(path) {
        Ok(_) => match private_file(home, path, what) {
            f if f.level == Level::Ok => Finding::ok(subject, format!("{what}, mode 0600")),
            f => f,
        },
        Err(e) => Finding::error(subject, format!("{what} does not load: {e}"), format!("{setting} to the key file")),
    }
}

/// A file that must be readable by its owner only.
fn private_file(home: &Path, path: &Path, what: &str) -> Finding {
    let subject = shown(home, path);
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => Finding::error(
            subject,
            format!("{what} is mode {:04o}: others on the host can read it", m.permissions().mode() & 0o7777),
            format!("chmod 600 {}", path.display()),
        ),
        Ok(_) => Finding::ok(subject, format!("{what}, mode 0600")),
        Err(e) => Finding::error(subject, format!("cannot read {what}: {e}"), "check the path and its owner"),
    }
}

/// `path` relative to the home when it is inside it (shorter lines), else as given.
fn shown(home: &Path, path: &Path) -> String {
    path.strip_prefix(home).map_or_else(|_| path.display().to_string(), |p| p.display().to_string())
}

fn parent(path: &Path) -> PathBuf {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()
}
