//! The checks: plain facts in ([`Evidence`], gathered by [`super::gather`] from the host, the
//! database, the ops ledger and a live probe), verdicts out. Each check names what it rests on; a missing fact is
//! a failure with the reason "no evidence", never a pass.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};

use crate::files::private::mode_of;
use crate::ops::ledger::{LedgerKind, Outcome};

use super::error::Error;
use super::profile::{Part, Profile};
use super::report::{Check, Status};

/// What the genesis file showed.
#[derive(Debug, Clone)]
pub(crate) struct GenesisFacts {
    /// The file.
    pub path: PathBuf,
    /// Its SHA-256.
    pub sha256: String,
    /// The SHA-256 of its canonical signed payload (what the root signed: unchanged by
    /// reformatting the file).
    pub payload_sha256: String,
    /// The network name.
    pub network_name: String,
    /// Every root signature verifies with the genesis root key (and there is one).
    pub root_signed: bool,
    /// The NA private key on the host (if any) matches the genesis NA key.
    pub na_key_matches: Option<bool>,
    /// The genesis NA public key (base64).
    pub na_public_key: String,
    /// The start of the NA validity window.
    pub na_valid_from: DateTime<Utc>,
    /// The end of the NA validity window.
    pub na_valid_to: DateTime<Utc>,
}

/// An ops-ledger entry, as the checks need it.
#[derive(Debug, Clone)]
pub(crate) struct LedgerFact {
    /// Row id.
    pub id: i64,
    /// backup, verify, drill, export, job, …
    pub kind: LedgerKind,
    /// ok, failed, skipped, timeout.
    pub outcome: Outcome,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
    /// The file or job it concerns.
    pub artifact: Option<String>,
    /// Its digest, when recorded.
    pub sha256: Option<String>,
    /// For backups: whether it was signed (`None` when the entry does not say: older gm versions
    /// took only unsigned backups).
    pub signed: Option<bool>,
    /// For drills: which NA key enrolled the throwaway node (`configured`, or `scratch` when the
    /// NA key was not on the drill host); `None` when the entry does not say.
    pub na_key: Option<String>,
    /// For S3 copies: when their Object Lock retention ends (`None`: not locked, or not said).
    pub locked_until: Option<String>,
    /// The evidence ledger it comes from (`gm readiness --evidence-ledger`: verifies and drills
    /// run where the backup identity lives); `None` for this host's ledger.
    pub origin: Option<PathBuf>,
}

/// One probe check result.
#[derive(Debug, Clone)]
pub(crate) struct ProbeFact {
    /// healthz, readyz, metrics, connectome, tls, …
    pub check: String,
    /// Passed.
    pub ok: bool,
    /// Why.
    pub reason: String,
    /// Days until the TLS certificate expires (tls check).
    pub cert_expiry_days: Option<f64>,
}

/// A treaty nearing expiry.
#[derive(Debug, Clone)]
pub(crate) struct ExpiringTreaty {
    /// Its id.
    pub treaty_id: String,
    /// The subject sovereign.
    pub subject: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// A newer active treaty for the same subject exists.
    pub has_successor: bool,
}

/// A scheduled job as `gm.toml` declares it, with the longest gap between its fire times.
#[derive(Debug, Clone)]
pub(crate) struct JobFact {
    /// The `[cron.jobs.NAME]` key (the ledger records its runs under this name).
    pub name: String,
    /// Its kind (`backup`, `verify`, …).
    pub kind: String,
    /// The schedule as written.
    pub schedule: String,
    /// The longest gap between consecutive fire times (see [`period`]); `None` when the schedule
    /// does not fire again.
    pub period: Option<Duration>,
}

/// Which admin signature versions the NA accepts, as `gm serve` resolves its settings here.
#[derive(Debug)]
pub(crate) struct AdminAuthFacts {
    /// Version-1 signatures (upstream 0.16) are accepted.
    pub v1_accepted: bool,
    /// What decided it (a setting, or the default for this home), in words.
    pub decided_by: String,
    /// Version-1 acceptances audited in the last 30 days, or why they could not be counted.
    pub legacy_accepted_30d: Result<i64, Error>,
}

/// Everything the checks read.
#[derive(Debug)]
pub(crate) struct Evidence {
    /// When the report is made.
    pub now: DateTime<Utc>,
    /// When this gm was built (`crate::clock::build_time`), if known.
    pub build_time: Option<DateTime<Utc>>,
    /// The genesis, or why it could not be read.
    pub genesis: Result<GenesisFacts, Error>,
    /// The profile, or why it could not be read.
    pub profile: Result<Profile, String>,
    /// Valid operator public keys installed (or why they cannot be read).
    pub operator_public_keys: Result<usize, String>,
    /// Admin signature acceptance.
    pub admin_auth: AdminAuthFacts,
    /// Private key files (operator or root) found in the configured folders.
    pub private_keys_found: Vec<PathBuf>,
    /// The probe of the NA's endpoints, or why it could not run.
    pub probe: Result<Vec<ProbeFact>, String>,
    /// The probe target.
    pub probe_target: String,
    /// The ops ledger, newest first (or why it cannot be read).
    pub ledger: Result<Vec<LedgerFact>, Error>,
    /// The newest audit export file and the result of re-checking its redaction.
    pub export_redaction: Option<(PathBuf, Result<usize, String>)>,
    /// The database: path, journal mode, or why it cannot be opened.
    pub database: Result<(PathBuf, String), Error>,
    /// Runbooks folder and the expected runbooks missing from it.
    pub runbooks: (PathBuf, Vec<&'static str>),
    /// Scheduled jobs.
    pub jobs: Result<Vec<JobFact>, String>,
    /// Free share of the database filesystem.
    pub disk_free_ratio: Option<f64>,
    /// Active treaties expiring within 7 days.
    pub expiring_treaties: Result<Vec<ExpiringTreaty>, Error>,
    /// The pinned backup-signing public key (base64), or why none is configured.
    pub backup_signing_key: Result<String, String>,
    /// Files on this host that decrypt backups: age identities (`AGE-SECRET-KEY-1…`) found under
    /// the gm home and the state folder, and the identity or passphrase files jobs are
    /// configured with.
    pub backup_decryption_keys: Vec<PathBuf>,
    /// `profile.toml` and the SHA-256 of its bytes, when it can be read.
    pub profile_file: Option<(PathBuf, String)>,
    /// What the running `gm serve` recorded of itself (`gm-runtime.json`), or why there is none.
    pub runtime: Result<RuntimeFacts, String>,
    /// How the NA answering at the probe target says it signs (`gm_na_key_source` on `/metrics`):
    /// `(source, signing key fingerprint)`, or why it is not known.
    pub live_key_source: Result<(String, String), String>,
    /// The evidence ledgers read (copies of other hosts' ops ledgers) and the SHA-256 of each.
    pub evidence_ledgers: Vec<(PathBuf, String)>,
    /// Files on this host holding the genesis NA private key (any key file under the home and the
    /// state folder, two levels, whose public half is the genesis NA key).
    pub na_key_copies: Vec<PathBuf>,
    /// How the NA serves TLS (built-in, or behind a declared proxy) and the certificate it serves.
    pub tls: super::tls::TlsEvidence,
}

/// The running server's own record, and whether its process is alive.
#[derive(Debug, Clone)]
pub(crate) struct RuntimeFacts {
    /// The record.
    pub record: crate::ops::runtime::RuntimeRecord,
    /// The recorded process is alive and is a gm.
    pub alive: bool,
    /// The record's file.
    pub path: PathBuf,
}

/// Job kinds that must be scheduled on the NA host. Verify and restore-drill jobs need the backup
/// decryption identity, which belongs offline (the `backup` check warns when it is here), so they
/// may run where it lives; when they are declared here, they must run like any other job.
pub(crate) const REQUIRED_JOB_KINDS: [&str; 3] = ["backup", "audit-export", "probe"];

/// A treaty without a successor warns this close to its expiry. Shorter than the default
/// validity of `gm treaty issue` and `renew` (168 h), so a treaty issued with the defaults passes.
pub(crate) const TREATY_WARN_WITHIN: Duration = Duration::hours(72);

/// A treaty without a successor fails this close to its expiry.
pub(crate) const TREATY_FAIL_WITHIN: Duration = Duration::hours(24);

/// The runbooks that must be installed (operations.md §3).
pub const RUNBOOKS: [&str; 7] = [
    "operator-key-compromise.md",
    "na-key-compromise.md",
    "na-key-rotation.md",
    "bad-treaty.md",
    "bad-revocation-feed.md",
    "db-failures.md",
    "db-restore.md",
];

/// Check ids in report order (CHECKLIST.md lists the same ids; a test compares them).
pub const IDS: [&str; 20] = [
    "genesis",
    "clock",
    "sovereign",
    "custody",
    "operator_keys",
    "admin_auth",
    "durable_storage",
    "endpoints",
    "tls",
    "backup",
    "offsite_backup",
    "restore_drill",
    "audit_export",
    "contacts",
    "responsibility_matrix",
    "scope",
    "runbooks",
    "scheduler",
    "disk",
    "expiry",
];

/// Evaluates every check; each one that does not pass carries its fix (its own, or [`fix_for`]).
pub(crate) fn evaluate(e: &Evidence) -> Vec<Check> {
    let checks = vec![
        genesis(e),
        clock(e),
        profile_part(e, "sovereign", "sovereign name and policy intent recorded", Part::Sovereign),
        custody(e),
        operator_keys(e),
        admin_auth(e),
        durable_storage(e),
        endpoints(e),
        super::tls::check(&e.tls, e.now),
        backup(e),
        offsite_backup(e),
        restore_drill(e),
        audit_export(e),
        profile_part(e, "contacts", "incident-response contacts known", Part::Contacts),
        profile_part(e, "responsibility_matrix", "responsibility matrix written and accepted", Part::Matrix),
        profile_part(e, "scope", "billing, multi-tenancy and active-active HA acknowledged out of scope", Part::Scope),
        runbooks(e),
        scheduler(e),
        disk(e),
        expiry(e),
    ];
    checks
        .into_iter()
        .map(|c| match (c.status, &c.fix) {
            (Status::Pass, _) => Check { fix: None, ..c },
            (_, Some(_)) => c,
            (_, None) => {
                let fix = fix_for(c.id);
                c.fix(fix)
            }
        })
        .collect()
}

/// What to act on when the check `id` does not pass (checks with a more precise fix set their own).
pub(crate) fn fix_for(id: &str) -> &'static str {
    match id {
        "genesis" => "gm genesis verify; a new genesis from the root ceremony (gm genesis create, gm genesis sign)",
        "clock" => "set the clock: timedatectl, NTP (systemd-timesyncd or chrony) or a real-time clock",
        "sovereign" => "profile.toml [sovereign], then gm profile check",
        "custody" => "profile.toml [custody] (gm profile check); chmod 600 the NA key file; move keys the model forbids off the host",
        "operator_keys" => "gm operator add; move operator and root private key files off the host",
        "admin_auth" => "[server] admin_signature = \"v2\" in gm.toml, or [waivers.legacy_admin_signatures] in profile.toml",
        "durable_storage" => "restart gm serve (it sets WAL mode); docs/runbooks/db-failures.md",
        "endpoints" => "gm probe --na URL; scripts/smoke.sh URL; check gm serve and the proxy in front of it",
        "tls" => "serve HTTPS ([tls] cert_file and key_file, docs/tls.md) or declare the TLS proxy in front ([server] trusted_proxy_hops); keep the certificate renewed and its full chain in the file",
        "backup" => "gm managed backup; gm managed verify BACKUP --identity FILE where the identity lives (the backup and verify jobs)",
        "offsite_backup" => "[[backup.destinations]] in gm.toml and --to NAME on the backup job; gm managed verify s3://… and gm managed restore-drill --latest s3://bucket/prefix where the identity lives",
        "restore_drill" => "gm managed restore-drill --latest BACKUP_DIR --identity FILE where the identity lives",
        "audit_export" => "gm managed audit-export --output FILE (the audit-export job)",
        "contacts" => "profile.toml [[contacts]], then gm profile check",
        "responsibility_matrix" => "profile.toml [responsibility.AREA], then gm profile show",
        "scope" => "profile.toml [scope], then gm profile check",
        "runbooks" => "install docs/runbooks/ into the --runbooks folder (scripts/install.sh does)",
        "scheduler" => "gm cron list; gm cron run-once JOB; run the scheduler (gm serve without --no-scheduler, or gm cron run)",
        "disk" => "gm managed prune; free or grow the database filesystem",
        "expiry" => "gm treaty renew TREATY_ID --yes; renew the NA's TLS certificate",
        _ => "see CHECKLIST.md",
    }
}

fn fail(id: &'static str, title: &'static str, reason: impl Into<String>) -> Check {
    Check::new(id, title, Status::Fail, reason)
}

fn genesis(e: &Evidence) -> Check {
    const T: &str = "genesis signed by its root, NA key matches, valid 30 more days";
    let g = match &e.genesis {
        Ok(g) => g,
        Err(why) => return fail("genesis", T, format!("no evidence: {why}")),
    };
    let base = |status, reason: String| {
        Check::new("genesis", T, status, reason)
            .with("file", g.path.display().to_string())
            .with("sha256", &g.sha256)
            .with("payload_sha256", &g.payload_sha256)
            .with("na_valid_to", g.na_valid_to.to_rfc3339())
    };
    if !g.root_signed {
        return base(Status::Fail, "the genesis root signature is missing or does not verify".into());
    }
    if g.na_key_matches == Some(false) {
        return base(Status::Fail, "the NA private key on the host does not match the genesis NA key".into());
    }
    let left = g.na_valid_to - e.now;
    if left <= Duration::zero() {
        return base(Status::Fail, format!("the NA validity ended at {}", g.na_valid_to.to_rfc3339()));
    }
    if left < Duration::days(30) {
        return base(Status::Fail, format!("the NA validity ends within 30 days ({})", g.na_valid_to.to_rfc3339()));
    }
    base(Status::Pass, format!("{} signed by its root; NA valid {} more days", g.network_name, left.num_days()))
}

/// Issue 8 item 5: a host clock before the genesis `valid_from` or before this build is wrong for
/// certain (a device booted without a real-time clock); the NA would refuse every signed request as
/// too old and every new certificate as not yet valid, with nothing naming the clock.
fn clock(e: &Evidence) -> Check {
    const T: &str = "system clock after the genesis NA valid_from and after this gm build";
    let c = |status, reason: String| {
        let c = Check::new("clock", T, status, reason).with("now", e.now.to_rfc3339());
        match e.build_time {
            Some(b) => c.with("build_time", b.to_rfc3339()),
            None => c,
        }
    };
    if let Some(built) = e.build_time.filter(|b| e.now < *b) {
        return c(
            Status::Fail,
            format!(
                "the system clock ({}) is before this gm build ({}): set the clock (NTP or a real-time clock)",
                e.now.to_rfc3339(),
                built.to_rfc3339()
            ),
        );
    }
    match &e.genesis {
        Ok(g) if e.now < g.na_valid_from => c(
            Status::Fail,
            format!(
                "the system clock ({}) is before the genesis NA valid_from ({}): set the clock, or the genesis is not yet valid",
                e.now.to_rfc3339(),
                g.na_valid_from.to_rfc3339()
            ),
        ),
        Ok(_) => c(Status::Pass, "the clock is after the genesis NA valid_from and this gm build".into()),
        Err(why) => c(Status::Fail, format!("no evidence: {why}")),
    }
}

fn profile_part(e: &Evidence, id: &'static str, title: &'static str, part: Part) -> Check {
    let p = match &e.profile {
        Ok(p) => p,
        Err(why) => return fail(id, title, format!("no evidence: {why}")),
    };
    let mut all: Vec<_> = p.problems().into_iter().filter(|x| x.part == part).collect();
    // The profile speaks of this sovereign: its name is the genesis network name.
    if let (Part::Sovereign, Ok(g)) = (part, &e.genesis) {
        if all.is_empty() && p.sovereign.name.trim() != g.network_name {
            all.push(super::profile::Problem {
                part,
                field: "sovereign.name".into(),
                problem: format!(
                    "expected the genesis network name {:?}, found {:?}",
                    g.network_name, p.sovereign.name
                ),
                missing: false,
            });
        }
    }
    let missing: Vec<&str> = all.iter().filter(|x| x.missing).map(|x| x.field.as_str()).collect();
    let invalid: Vec<String> =
        all.iter().filter(|x| !x.missing).map(|x| format!("{} ({})", x.field, x.problem)).collect();
    if all.is_empty() {
        let c = Check::new(id, title, Status::Pass, "recorded in profile.toml");
        match part {
            Part::Contacts => c.with("contacts", p.contacts.len().to_string()),
            Part::Scope => {
                c.with("acknowledged_by", &p.scope.acknowledged_by).with("acknowledged_at", &p.scope.acknowledged_at)
            }
            Part::Sovereign => c.with("sovereign", &p.sovereign.name),
            _ => c.with("areas", p.responsibility.len().to_string()),
        }
    } else {
        let mut reason = Vec::new();
        if !missing.is_empty() {
            reason.push(format!("profile.toml is missing {}", missing.join(", ")));
        }
        if !invalid.is_empty() {
            reason.push(format!("profile.toml has invalid {}", invalid.join(", ")));
        }
        fail(id, title, reason.join("; "))
    }
}

fn custody(e: &Evidence) -> Check {
    const T: &str = "NA key custody model recorded and matching the running NA";
    let p = match &e.profile {
        Ok(p) => p,
        Err(why) => return fail("custody", T, format!("no evidence: {why}")),
    };
    let model = p.custody.model.as_str();
    let rt = match &e.runtime {
        Ok(rt) => rt,
        Err(why) => {
            return fail("custody", T, format!("no running NA to compare the {model} model with: {why}"))
                .fix("start the NA (systemctl start gm, or gm serve --home HOME) and run gm readiness again")
        }
    };
    let key = &rt.record.na_key;
    let mut c = Check::new("custody", T, Status::Pass, "")
        .with("model", model)
        .with("pid", rt.record.pid.to_string())
        .with("na_key_source", &key.source)
        .with("signing_key_fingerprint", &key.signing_key_fingerprint);
    if let Some(path) = &key.path {
        c = c.with("na_key_path", path);
    }
    if let Some(fp) = &key.host_key_fingerprint {
        c = c.with("host_key_fingerprint", fp);
    }
    if !e.na_key_copies.is_empty() {
        c = c.with("na_key_copies", paths(&e.na_key_copies));
    }
    let verdict = |c: Check, status: Status, reason: String, fix: &str| {
        let c = Check { status, reason, ..c };
        if status == Status::Pass {
            c
        } else {
            c.fix(fix)
        }
    };
    // The record must describe the process that answers on the port: a record written by hand, or
    // left by another server, does not.
    match &e.live_key_source {
        Ok((source, fp)) if *source != key.source || *fp != key.signing_key_fingerprint => {
            return verdict(
                c.with("live_key_source", format!("{source} {fp}")),
                Status::Fail,
                format!(
                    "the NA answering at {} signs from {source} (key {fp}), but {} says {} (key {})",
                    e.probe_target,
                    rt.path.display(),
                    key.source,
                    key.signing_key_fingerprint
                ),
                "restart gm serve so that it rewrites its record, and probe the NA this home configures",
            );
        }
        Ok((source, _)) => c = c.with("live_key_source", source),
        Err(why) => c = c.with("live_key_source", format!("unknown: {why}")),
    }
    if !rt.alive {
        return verdict(
            c,
            Status::Fail,
            format!(
                "{} names pid {}, which is not a running gm (the NA stopped without cleaning up)",
                rt.path.display(),
                rt.record.pid
            ),
            "start the NA (systemctl start gm) and run gm readiness again",
        );
    }
    let genesis_fp = e
        .genesis
        .as_ref()
        .ok()
        .and_then(|g| crate::crypto::keys::PublicKey::from_b64(&g.na_public_key).ok())
        .map(|k| k.fingerprint());
    if genesis_fp.as_deref().is_some_and(|fp| fp != key.signing_key_fingerprint) {
        return verdict(
            c,
            Status::Fail,
            format!(
                "the running NA signs with key {}, not the genesis NA key {}",
                key.signing_key_fingerprint,
                genesis_fp.unwrap_or_default()
            ),
            "restart gm serve with this home's genesis and its NA key (or signer)",
        );
    }
    let loaded = || match (&key.path, &key.origin) {
        (Some(path), Some(origin)) => format!("{} {path} ({origin})", key.source),
        (Some(path), None) => format!("{} {path}", key.source),
        _ => key.source.clone(),
    };
    match model {
        "customer-held" if key.source != "remote-signer" => verdict(
            c,
            Status::Fail,
            format!("customer-held custody, but the running NA (pid {}) loaded the NA key from {}", rt.record.pid, loaded()),
            "remove the NA key from the host, set [signer] listen in gm.toml and restart gm serve; the customer runs gm signer run (docs/custody.md)",
        ),
        "customer-held" if !e.na_key_copies.is_empty() => verdict(
            c,
            Status::Fail,
            format!("customer-held custody, but the NA private key is on the host: {}", paths(&e.na_key_copies)),
            "move the NA key to the customer (gm custody escrow, then shred the host copy)",
        ),
        "customer-held" => verdict(
            c,
            Status::Pass,
            format!(
                "customer-held custody: the running NA (pid {}) holds no NA key and signs through the customer's signer (NA key {}, host key {})",
                rt.record.pid,
                key.signing_key_fingerprint,
                key.host_key_fingerprint.as_deref().unwrap_or("?")
            ),
            "",
        ),
        "managed" | "split" if key.source == "remote-signer" => verdict(
            c,
            Status::Fail,
            format!("{model} custody, but the running NA signs through a remote signer (that is the customer-held model)"),
            "record custody model \"customer-held\" in profile.toml, or load the key and remove [signer] listen",
        ),
        "managed" | "split" if key.source == "file" && !key.path.as_deref().is_some_and(|p| mode_of(Path::new(p)).is_ok_and(|m| m & 0o077 == 0)) => {
            verdict(
                c,
                Status::Fail,
                format!("the NA key file the running NA loaded ({}) is readable by group or others (must be 0600)", loaded()),
                "chmod 600 the NA key file",
            )
        }
        "split" if !e.private_keys_found.is_empty() => verdict(
            c,
            Status::Fail,
            format!("split custody, but operator private key files are on the host: {}", paths(&e.private_keys_found)),
            "move the operator private keys to the customer's machines",
        ),
        "managed" | "split" => {
            let extra: Vec<&PathBuf> =
                e.na_key_copies.iter().filter(|p| key.path.as_deref() != Some(&p.display().to_string())).collect();
            if key.source == "credential" && !extra.is_empty() {
                let list = extra.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
                return verdict(
                    c,
                    Status::Warn,
                    format!("{model} custody through a systemd credential, but a plain copy of the NA key is on the host: {list}"),
                    "keep the escrow (gm custody escrow) and shred the plain copy",
                );
            }
            verdict(c, Status::Pass, format!("{model} custody: the running NA (pid {}) loaded the NA key from {}", rt.record.pid, loaded()), "")
        }
        other => verdict(
            c,
            Status::Fail,
            format!("custody model {other:?} is not recorded (customer-held, managed or split)"),
            "set [custody] model in profile.toml",
        ),
    }
}

fn paths(list: &[PathBuf]) -> String {
    list.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

fn operator_keys(e: &Evidence) -> Check {
    const T: &str = "operator public keys installed, no operator private key on the host";
    match &e.operator_public_keys {
        Err(why) => fail("operator_keys", T, format!("no evidence: {why}")),
        Ok(0) => fail("operator_keys", T, "no operator public key is installed (gm operator add)"),
        Ok(n) if !e.private_keys_found.is_empty() => Check::new(
            "operator_keys",
            T,
            Status::Fail,
            format!(
                "{n} public key(s), but private key files are readable on the host: {}",
                paths(&e.private_keys_found)
            ),
        ),
        Ok(n) => {
            Check::new("operator_keys", T, Status::Pass, format!("{n} operator public key(s); no private key found"))
                .with("public_keys", n.to_string())
        }
    }
}

/// F5 (`DEVIATIONS.md` D6): a version-1 signature binds neither method, path nor NA, so whoever sees
/// one signed admin request (a proxy, a log) can replay it as another within 300 s. A pilot gate
/// fails while v1 is accepted, unless the customer waived it in writing for a limited time (then it
/// warns, so the report can never read "ready" while the risk is open).
fn admin_auth(e: &Evidence) -> Check {
    const T: &str = "admin requests need version-2 signatures (bound to method, path and this NA)";
    let a = &e.admin_auth;
    let c = |status, reason: String| {
        let c = Check::new("admin_auth", T, status, reason)
            .with("accepted", if a.v1_accepted { "v1+v2" } else { "v2" })
            .with("decided_by", &a.decided_by);
        match &a.legacy_accepted_30d {
            Ok(n) => c.with("legacy_accepted_30d", n.to_string()),
            Err(_) => c,
        }
    };
    if !a.v1_accepted {
        return c(Status::Pass, format!("version 2 only ({})", a.decided_by));
    }
    let seen = match &a.legacy_accepted_30d {
        Ok(n) => format!("{n} version-1 request(s) accepted in the last 30 days"),
        Err(why) => format!("version-1 use unknown: {why}"),
    };
    let risk = format!(
        "version-1 admin signatures are accepted ({}): one seen request can be replayed as another admin request; {seen}",
        a.decided_by
    );
    let fix = "set [server] admin_signature = \"v2\" in gm.toml (or NA_ADMIN_LEGACY_SIGNATURES=reject), or record [waivers.legacy_admin_signatures] in profile.toml";
    let waiver = e.profile.as_ref().ok().and_then(|p| p.waivers.legacy_admin_signatures.as_ref());
    match waiver.map(|w| (w, w.in_force(e.now))) {
        None => c(Status::Fail, format!("{risk}; {fix}")),
        Some((_, Err(why))) => c(Status::Fail, format!("{risk}; the waiver does not count: {why}")),
        Some((w, Ok(expires))) => {
            c(Status::Warn, format!("{risk}; waived by {} until {}: {}", w.accepted_by, expires.to_rfc3339(), w.reason))
                .with("waiver_expires_at", expires.to_rfc3339())
                .with("waiver_accepted_by", &w.accepted_by)
        }
    }
}

fn durable_storage(e: &Evidence) -> Check {
    const T: &str = "durable SQLite storage (a file in WAL mode)";
    match &e.database {
        Err(why) => fail("durable_storage", T, format!("no evidence: {why}")),
        Ok((path, mode)) if mode.eq_ignore_ascii_case("wal") => {
            Check::new("durable_storage", T, Status::Pass, "database file in WAL mode")
                .with("db_path", path.display().to_string())
        }
        Ok((path, mode)) => Check::new("durable_storage", T, Status::Fail, format!("journal mode {mode}, not WAL"))
            .with("db_path", path.display().to_string()),
    }
}

fn endpoints(e: &Evidence) -> Check {
    const T: &str = "/healthz, /readyz, /metrics, /connectome.json reachable";
    let results = match &e.probe {
        Ok(r) => r,
        Err(why) => return fail("endpoints", T, format!("no evidence: the probe could not run: {why}")),
    };
    let needed = ["healthz", "readyz", "metrics", "connectome"];
    let mut c = Check::new("endpoints", T, Status::Pass, format!("all four answer as expected at {}", e.probe_target))
        .with("target", &e.probe_target);
    for name in needed {
        match results.iter().find(|r| r.check == name) {
            Some(r) => {
                c = c.with(name, if r.ok { "ok".to_string() } else { r.reason.clone() });
                if !r.ok {
                    c.status = Status::Fail;
                    c.reason = format!("{name}: {}", r.reason);
                }
            }
            None => {
                c.status = Status::Fail;
                c.reason = format!("{name} was not probed");
            }
        }
    }
    c
}

fn newest(e: &Evidence, kind: LedgerKind, ok: bool) -> Option<&LedgerFact> {
    e.ledger.as_ref().ok()?.iter().find(|l| l.kind == kind && (!ok || l.outcome == Outcome::Ok))
}

fn file_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// The verify records of `artifact` finished after `b`, newest first.
fn verifies_of<'a>(e: &'a Evidence, b: &LedgerFact) -> Vec<&'a LedgerFact> {
    let name = file_name(b.artifact.as_deref().unwrap_or_default()).to_string();
    e.ledger.as_ref().map_or(Vec::new(), |l| {
        l.iter()
            .filter(|v| {
                v.kind == LedgerKind::Verify
                    && v.finished_at >= b.finished_at
                    && v.artifact.as_deref().is_some_and(|a| file_name(a) == name)
            })
            .collect()
    })
}

/// Judged by the newest *verified* backup: a backup taken minutes ago whose verify has not run yet
/// does not hide an older verified one still within the window (the scheduled verify runs after
/// the backup). A newer backup whose verify failed, or a newest backup that is unsigned, fails.
fn backup(e: &Evidence) -> Check {
    const T: &str = "a verified backup younger than 24 h";
    let ledger = match &e.ledger {
        Ok(l) => l,
        Err(why) => return fail("backup", T, format!("no evidence: {why}")),
    };
    let backups: Vec<&LedgerFact> =
        ledger.iter().filter(|l| l.kind == LedgerKind::Backup && l.outcome == Outcome::Ok).collect();
    let Some(newest) = backups.first().copied() else {
        return fail("backup", T, "no successful backup in the ops ledger");
    };
    let verified = backups.iter().copied().find_map(|b| {
        let v = verifies_of(e, b).into_iter().find(|v| v.outcome == Outcome::Ok)?;
        Some((b, v))
    });
    let b = verified.map_or(newest, |(b, _)| b);
    let age = e.now - b.finished_at;
    let artifact = b.artifact.clone().unwrap_or_default();
    let c = |status, reason: String| {
        let c = Check::new("backup", T, status, reason)
            .with("ledger_id", b.id.to_string())
            .with("artifact", &artifact)
            .with("finished_at", b.finished_at.to_rfc3339())
            .with("sha256", b.sha256.clone().unwrap_or_default());
        let c = match verified {
            Some((_, v)) => {
                let c = c.with("verify_ledger_id", v.id.to_string());
                match &v.origin {
                    Some(o) => c.with("verify_ledger", o.display().to_string()),
                    None => c,
                }
            }
            None => c,
        };
        let c = if newest.id != b.id {
            c.with("newest_unverified", newest.artifact.clone().unwrap_or_default())
        } else {
            c
        };
        if e.backup_decryption_keys.is_empty() {
            c
        } else {
            c.with("decryption_keys_on_host", paths(&e.backup_decryption_keys))
        }
    };
    let hours = age.num_minutes() as f64 / 60.0;
    // F4: an unsigned backup cannot be told from one planted in the backup folder.
    if let Err(why) = &e.backup_signing_key {
        return c(Status::Fail, format!("no backup-signing key is configured ([backup] in gm.toml): {why}"))
            .fix("gm keygen backup-signing, then [backup] signing_key in gm.toml");
    }
    if newest.signed != Some(true) {
        let name = file_name(newest.artifact.as_deref().unwrap_or_default()).to_string();
        return c(Status::Fail, format!("the newest backup ({name}) is unsigned"));
    }
    let newer_failed: Vec<String> = backups
        .iter()
        .take_while(|x| x.id != b.id)
        .filter(|x| verifies_of(e, x).first().is_some_and(|v| v.outcome != Outcome::Ok))
        .map(|x| file_name(x.artifact.as_deref().unwrap_or_default()).to_string())
        .collect();
    if !newer_failed.is_empty() {
        return c(Status::Fail, format!("the verify of a newer backup failed: {}", newer_failed.join(", ")))
            .fix("gm managed verify BACKUP --identity FILE for the backup named; docs/runbooks/db-restore.md");
    }
    if verified.is_none() {
        return c(Status::Fail, format!("the newest backup ({}) has not been verified", file_name(&artifact)));
    }
    if b.signed != Some(true) {
        return c(Status::Fail, format!("the newest verified backup ({}) is unsigned", file_name(&artifact)));
    }
    if age > Duration::hours(48) {
        return c(Status::Fail, format!("the newest verified backup is {hours:.1} h old (over 48 h)"));
    }
    let pending = if newest.id != b.id {
        format!("; a newer backup ({}) awaits its verify", file_name(newest.artifact.as_deref().unwrap_or_default()))
    } else {
        String::new()
    };
    let (status, mut reason) = if age > Duration::hours(24) {
        (Status::Warn, format!("the newest verified backup is {hours:.1} h old (over 24 h){pending}"))
    } else {
        (Status::Pass, format!("backup {hours:.1} h old, verified{pending}"))
    };
    // The identity (or passphrase) that decrypts backups belongs offline: whoever takes the NA
    // host then also reads every backup, and a planted backup can be checked by the attacker.
    if e.backup_decryption_keys.is_empty() {
        return c(status, reason);
    }
    reason.push_str(&format!("; a backup decryption key is on the NA host: {}", paths(&e.backup_decryption_keys)));
    c(Status::Warn, reason).fix(
        "move the backup identity off the NA host (and drop identity_file/passphrase_file from its jobs); run gm managed verify and gm managed restore-drill where it lives, on a copy of the backup folder (docs/runbooks/db-restore.md)",
    )
}

/// Whether a ledger artifact is an off-host copy (an S3 object, not a path on this host).
fn off_host(artifact: Option<&str>) -> bool {
    artifact.is_some_and(crate::ops::s3::S3Url::is_s3)
}

/// A copy that left the host: the newest S3 copy verified *from the bucket* (the verify's
/// artifact is the object's URL) within the backup window, a drill from an off-host copy within
/// the drill period, and whether that copy is under Object Lock.
fn offsite_backup(e: &Evidence) -> Check {
    const ID: &str = "offsite_backup";
    const T: &str = "a verified off-host copy younger than 24 h, drilled from off-host within 7 days";
    let ledger = match &e.ledger {
        Ok(l) => l,
        Err(why) => return fail(ID, T, format!("no evidence: {why}")),
    };
    let copies: Vec<&LedgerFact> = ledger
        .iter()
        .filter(|l| l.kind == LedgerKind::Backup && l.outcome == Outcome::Ok && off_host(l.artifact.as_deref()))
        .collect();
    let Some(newest) = copies.first().copied() else {
        let failed = ledger
            .iter()
            .find(|l| l.kind == LedgerKind::Backup && l.outcome != Outcome::Ok && off_host(l.artifact.as_deref()));
        return match failed {
            Some(f) => fail(
                ID,
                T,
                format!(
                    "no off-host copy has succeeded; the last attempt failed ({})",
                    f.artifact.as_deref().unwrap_or_default()
                ),
            )
            .with("ledger_id", f.id.to_string()),
            None => {
                fail(ID, T, "every backup is on the NA host's own disk: no copy to object storage in the ops ledger")
            }
        };
    };
    let verified_from_bucket = |b: &LedgerFact| {
        ledger.iter().find(|v| {
            v.kind == LedgerKind::Verify
                && v.outcome == Outcome::Ok
                && v.finished_at >= b.finished_at
                && v.artifact.is_some()
                && v.artifact == b.artifact
        })
    };
    let verified = copies.iter().copied().find_map(|b| Some((b, verified_from_bucket(b)?)));
    let b = verified.map_or(newest, |(b, _)| b);
    let artifact = b.artifact.clone().unwrap_or_default();
    let lock = match &b.locked_until {
        Some(until) => format!("locked until {until}"),
        None => "not under Object Lock".to_string(),
    };
    let drill = ledger
        .iter()
        .find(|d| d.kind == LedgerKind::Drill && d.outcome == Outcome::Ok && off_host(d.artifact.as_deref()));
    let c = |status, reason: String| {
        let c = Check::new(ID, T, status, reason)
            .with("ledger_id", b.id.to_string())
            .with("artifact", &artifact)
            .with("finished_at", b.finished_at.to_rfc3339())
            .with("object_lock", b.locked_until.clone().unwrap_or_else(|| "none".into()));
        let c = match verified {
            Some((_, v)) => c.with("verify_ledger_id", v.id.to_string()),
            None => c,
        };
        match drill {
            Some(d) => {
                c.with("drill_ledger_id", d.id.to_string()).with("drilled", d.artifact.clone().unwrap_or_default())
            }
            None => c,
        }
    };
    let Some((_, _)) = verified else {
        return c(Status::Fail, format!("the newest off-host copy ({artifact}) has not been verified from the bucket ({lock})"))
            .fix("gm managed verify s3://bucket/prefix/NAME --identity FILE where the identity lives (its ledger brought in with gm readiness --evidence-ledger)");
    };
    let age = e.now - b.finished_at;
    let hours = age.num_minutes() as f64 / 60.0;
    if age > Duration::hours(48) {
        return c(Status::Fail, format!("the newest verified off-host copy is {hours:.1} h old (over 48 h; {lock})"));
    }
    let Some(d) = drill else {
        return c(Status::Fail, format!("no restore drill from an off-host copy in the ops ledger ({lock})"))
            .fix("gm managed restore-drill --latest s3://bucket/prefix --identity FILE where the identity lives");
    };
    let days = (e.now - d.finished_at).num_hours() as f64 / 24.0;
    if e.now - d.finished_at > Duration::days(7) {
        return c(Status::Fail, format!("the last drill from an off-host copy is {days:.1} days old ({lock})"))
            .fix("gm managed restore-drill --latest s3://bucket/prefix --identity FILE where the identity lives");
    }
    let reason =
        format!("off-host copy {hours:.1} h old, verified from the bucket, drilled {days:.1} days ago; {lock}");
    if age > Duration::hours(24) {
        return c(Status::Warn, format!("the newest verified off-host copy is {hours:.1} h old (over 24 h); {lock}"));
    }
    if b.locked_until.is_none() {
        // Without retention, whoever holds the host's storage credentials can delete every copy.
        return c(Status::Warn, reason).fix(
            "enable Object Lock on the bucket and set [backup.destinations.object_lock] (mode, days) for the destination",
        );
    }
    c(Status::Pass, reason)
}

fn restore_drill(e: &Evidence) -> Check {
    const T: &str = "a restore drill passed on a scratch database within 7 days";
    if let Err(why) = &e.ledger {
        return fail("restore_drill", T, format!("no evidence: {why}"));
    }
    match newest(e, LedgerKind::Drill, true) {
        None => fail("restore_drill", T, "no passed restore drill in the ops ledger (gm managed restore-drill)"),
        Some(d) => {
            let c = |status, reason: String| {
                let c = match &d.origin {
                    Some(o) => Check::new("restore_drill", T, status, reason).with("ledger", o.display().to_string()),
                    None => Check::new("restore_drill", T, status, reason),
                };
                c.with("ledger_id", d.id.to_string())
                    .with("finished_at", d.finished_at.to_rfc3339())
                    .with("backup", d.artifact.clone().unwrap_or_default())
            };
            let days = (e.now - d.finished_at).num_hours() as f64 / 24.0;
            let model = e.profile.as_ref().map(|p| p.custody.model.as_str()).unwrap_or_default();
            if e.now - d.finished_at > Duration::days(7) {
                c(Status::Fail, format!("the last passed drill is {days:.1} days old"))
            } else if d.na_key.as_deref() == Some("scratch") && matches!(model, "managed" | "split") {
                // Under managed or split custody the NA key is on the NA host: a scratch drill
                // means the drill did not find it, which a restore would hit too.
                c(
                    Status::Warn,
                    format!("drill passed {days:.1} days ago, but with a scratch NA key although custody is {model} (the NA key was not at the configured path)"),
                )
                .fix("check the NA key file the drill host is configured with, then gm managed restore-drill --latest DIR")
            } else {
                c(Status::Pass, format!("drill passed {days:.1} days ago"))
            }
        }
    }
}

fn audit_export(e: &Evidence) -> Check {
    const T: &str = "a redacted audit export within 24 h";
    if let Err(why) = &e.ledger {
        return fail("audit_export", T, format!("no evidence: {why}"));
    }
    let Some(x) = newest(e, LedgerKind::Export, true) else {
        return fail("audit_export", T, "no audit export in the ops ledger (gm managed audit-export)");
    };
    let c = |status, reason: String| {
        Check::new("audit_export", T, status, reason)
            .with("ledger_id", x.id.to_string())
            .with("artifact", x.artifact.clone().unwrap_or_default())
            .with("finished_at", x.finished_at.to_rfc3339())
    };
    if e.now - x.finished_at > Duration::hours(24) {
        return c(Status::Fail, format!("the newest export is {} h old", (e.now - x.finished_at).num_hours()));
    }
    match &e.export_redaction {
        None => c(Status::Fail, "no evidence: the export file could not be found to re-check its redaction".into()),
        Some((_, Err(why))) => c(Status::Fail, format!("redaction re-check failed: {why}")),
        Some((path, Ok(n))) => c(Status::Pass, format!("{n} events exported, redaction re-checked clean"))
            .with("file", path.display().to_string()),
    }
}

fn runbooks(e: &Evidence) -> Check {
    const T: &str = "incident runbooks (keys, treaty, feed, database) installed";
    let (dir, missing) = &e.runbooks;
    if missing.is_empty() {
        Check::new("runbooks", T, Status::Pass, format!("{} runbooks in {}", RUNBOOKS.len(), dir.display()))
            .with("folder", dir.display().to_string())
    } else {
        fail("runbooks", T, format!("missing in {}: {}", dir.display(), missing.join(", ")))
    }
}

/// The longest gap between consecutive fire times of a schedule (given as its `next_after`),
/// over at least three fires and at least eight days from `from` (so weekday-only and weekly
/// schedules show their longest gap); at most 20,000 fires are looked at.
pub(crate) fn period(
    from: DateTime<Utc>,
    next_after: impl Fn(DateTime<Utc>) -> Option<DateTime<Utc>>,
) -> Option<Duration> {
    let start = next_after(from)?;
    let (mut at, mut longest, mut fires) = (start, Duration::zero(), 1);
    while fires < 20_000 && (fires < 3 || at - start < Duration::days(8)) {
        let Some(next) = next_after(at) else { break };
        longest = longest.max(next - at);
        at = next;
        fires += 1;
    }
    (longest > Duration::zero()).then_some(longest)
}

/// How late a job may be before the check names it: its period plus a grace of a quarter of the
/// period, at least 10 minutes.
pub(crate) fn allowance(period: Duration) -> Duration {
    period + (period / 4).max(Duration::minutes(10))
}

/// A duration in the largest whole unit that reads well: `45 min`, `6.0 h`, `7.0 days`.
fn human(d: Duration) -> String {
    if d < Duration::hours(2) {
        format!("{} min", d.num_minutes())
    } else if d < Duration::days(2) {
        format!("{:.1} h", d.num_minutes() as f64 / 60.0)
    } else {
        format!("{:.1} days", d.num_hours() as f64 / 24.0)
    }
}

/// Every declared job must have *succeeded* within its period (plus grace), not merely be
/// declared: `gm serve --no-scheduler` with a full job table and no run fails here, naming each
/// job that never succeeded or is late.
fn scheduler(e: &Evidence) -> Check {
    const T: &str = "backup, export and probe jobs scheduled, each succeeded within its period";
    let jobs = match &e.jobs {
        Ok(j) => j,
        Err(why) => return fail("scheduler", T, format!("no evidence: {why}")),
    };
    if let Some(rt) = e.runtime.as_ref().ok().filter(|rt| rt.alive && !rt.record.settings.scheduler) {
        return fail(
            "scheduler",
            T,
            format!(
                "the running NA (pid {}) runs no jobs: it was started with --no-scheduler or [cron] enabled = false",
                rt.record.pid
            ),
        )
        .fix("restart gm serve without --no-scheduler, with [cron] enabled = true (the default)");
    }
    let missing: Vec<&str> = REQUIRED_JOB_KINDS.into_iter().filter(|k| !jobs.iter().any(|j| j.kind == *k)).collect();
    if !missing.is_empty() {
        return fail("scheduler", T, format!("no job of kind {} in gm.toml [cron.jobs]", missing.join(", ")))
            .fix(format!("declare a [cron.jobs.NAME] of kind {} in gm.toml (docs/config.md)", missing.join(", ")));
    }
    // No ledger yet means no job has ever run: every job is named below.
    let empty = Vec::new();
    let ledger = match &e.ledger {
        Ok(l) => l,
        Err(Error::NoLedger { .. }) => &empty,
        Err(why) => return fail("scheduler", T, format!("no evidence: {why}")),
    };
    fn runs<'a>(ledger: &'a [LedgerFact], name: &'a str) -> impl Iterator<Item = &'a LedgerFact> + 'a {
        ledger.iter().filter(move |l| {
            l.kind == LedgerKind::Job && l.artifact.as_deref() == Some(name) && l.outcome != Outcome::Skipped
        })
    }
    let (mut never, mut late, mut failing) = (Vec::new(), Vec::new(), Vec::new());
    let mut c = Check::new("scheduler", T, Status::Pass, "");
    for job in jobs {
        let last_ok = runs(ledger, &job.name).find(|l| l.outcome == Outcome::Ok);
        if let Some(last) = runs(ledger, &job.name).next().filter(|l| l.outcome != Outcome::Ok) {
            failing.push(format!("{} ({})", job.name, last.outcome));
        }
        let Some(period) = job.period else {
            late.push(format!("{} (schedule {:?} does not fire again)", job.name, job.schedule));
            continue;
        };
        match last_ok {
            None => never.push(job.name.clone()),
            Some(l) if e.now - l.finished_at > allowance(period) => late.push(format!(
                "{} (last success {} ago; runs every {})",
                job.name,
                human(e.now - l.finished_at),
                human(period)
            )),
            Some(_) => {}
        }
        c = c.with(
            &format!("job.{}", job.name),
            match last_ok {
                Some(l) => {
                    format!("last success {} (ledger {}); every {}", l.finished_at.to_rfc3339(), l.id, human(period))
                }
                None => format!("never succeeded; every {}", human(period)),
            },
        );
    }
    let mut problems = Vec::new();
    if !never.is_empty() {
        problems.push(format!("never succeeded: {}", never.join(", ")));
    }
    if !late.is_empty() {
        problems.push(format!("late: {}", late.join(", ")));
    }
    if !failing.is_empty() {
        problems.push(format!("last run failed: {}", failing.join(", ")));
    }
    c = c.with("jobs", jobs.iter().map(|j| j.name.as_str()).collect::<Vec<_>>().join(","));
    if problems.is_empty() {
        c.reason = format!("{} jobs; each succeeded within its period", jobs.len());
        return c;
    }
    let first = never
        .first()
        .cloned()
        .or_else(|| late.first().or(failing.first()).and_then(|x| x.split(' ').next()).map(str::to_string));
    c.status = Status::Fail;
    c.reason = problems.join("; ");
    c.fix(format!(
        "gm cron run-once {} (and each job named); keep the scheduler running (gm serve without --no-scheduler, or gm cron run); gm managed history",
        first.unwrap_or_else(|| "JOB".into())
    ))
}

fn disk(e: &Evidence) -> Check {
    const T: &str = "disk free above 20 %";
    match e.disk_free_ratio {
        None => fail("disk", T, "no evidence: the database filesystem could not be measured"),
        Some(r) => {
            let pct = r * 100.0;
            let status = if r < 0.10 {
                Status::Fail
            } else if r < 0.20 {
                Status::Warn
            } else {
                Status::Pass
            };
            Check::new("disk", T, status, format!("{pct:.1} % free (warn under 20 %, fail under 10 %)"))
                .with("free_ratio", format!("{r:.4}"))
        }
    }
}

/// Treaties warn inside [`TREATY_WARN_WITHIN`] and fail inside [`TREATY_FAIL_WITHIN`] of their
/// expiry (without a successor): both shorter than the default validity of `gm treaty issue`, so a
/// fresh treaty passes and a weekly renewal is asked for in time.
fn expiry(e: &Evidence) -> Check {
    const T: &str = "no treaty lapsing within 3 days without a successor, no TLS certificate within 7 days of expiry";
    let treaties = match &e.expiring_treaties {
        Ok(t) => t,
        Err(why) => return fail("expiry", T, format!("no evidence: {why}")),
    };
    let lapsing = |within: Duration| -> Vec<String> {
        treaties
            .iter()
            .filter(|t| !t.has_successor && t.expires_at - e.now < within)
            .map(|t| format!("treaty {} for {} (expires {})", t.treaty_id, t.subject, t.expires_at.to_rfc3339()))
            .collect()
    };
    let (failing, warning) = (lapsing(TREATY_FAIL_WITHIN), lapsing(TREATY_WARN_WITHIN));
    let tls = e.probe.as_ref().ok().and_then(|r| r.iter().find(|x| x.check == "tls")).and_then(|x| x.cert_expiry_days);
    let renew = |list: &[String]| {
        let id = list.first().and_then(|x| x.split(' ').nth(1)).unwrap_or("TREATY_ID");
        format!("gm treaty renew {id} --yes (each treaty named)")
    };
    let mut c = if !failing.is_empty() {
        fail("expiry", T, format!("lapsing within 24 h: {}", failing.join("; "))).fix(renew(&failing))
    } else if tls.is_some_and(|d| d < 7.0) {
        fail("expiry", T, format!("the NA's TLS certificate expires in {:.1} days", tls.unwrap_or_default()))
            .fix("renew the NA's TLS certificate (the proxy in front of gm serve)")
    } else if !warning.is_empty() {
        Check::new("expiry", T, Status::Warn, format!("lapsing within 72 h: {}", warning.join("; ")))
            .fix(renew(&warning))
    } else {
        Check::new(
            "expiry",
            T,
            Status::Pass,
            format!("{} treaty(ies) near expiry checked; none lapsing", treaties.len()),
        )
    };
    if let Some(d) = tls {
        c = c.with("tls_expiry_days", format!("{d:.1}"));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    /// Evidence where only the clock facts matter.
    fn evidence(now: &str, build_time: Option<&str>) -> Evidence {
        Evidence {
            now: at(now),
            build_time: build_time.map(at),
            genesis: Ok(GenesisFacts {
                path: PathBuf::from("genesis.signed.json"),
                sha256: String::new(),
                payload_sha256: String::new(),
                network_name: "acme-mesh".into(),
                root_signed: true,
                na_key_matches: Some(true),
                na_public_key: NA_PUBLIC.into(),
                na_valid_from: at("2026-01-01T00:00:00Z"),
                na_valid_to: at("2027-01-01T00:00:00Z"),
            }),
            profile: Err("none".into()),
            operator_public_keys: Ok(1),
            admin_auth: AdminAuthFacts {
                v1_accepted: false,
                decided_by: "the default for a home with gm.toml".into(),
                legacy_accepted_30d: Ok(0),
            },
            private_keys_found: Vec::new(),
            probe: Err("none".into()),
            probe_target: String::new(),
            ledger: Err(Error::NoLedger { path: PathBuf::new() }),
            export_redaction: None,
            database: Err(Error::Store(crate::store::StoreError::Missing { path: PathBuf::new() })),
            runbooks: (PathBuf::new(), Vec::new()),
            jobs: Err("none".into()),
            disk_free_ratio: None,
            expiring_treaties: Ok(Vec::new()),
            backup_signing_key: Err("none".into()),
            backup_decryption_keys: Vec::new(),
            profile_file: None,
            runtime: Err("no record".into()),
            live_key_source: Err("not probed".into()),
            evidence_ledgers: Vec::new(),
            na_key_copies: Vec::new(),
            tls: super::super::tls::TlsEvidence {
                decided_by: "as configured".into(),
                proxy_hops: 0,
                served: None,
                anchors: Vec::new(),
                anchors_from: String::new(),
                probe_target: String::new(),
                handshake: None,
            },
        }
    }

    /// A genesis NA public key for the custody tests (its fingerprint is what a runtime record of
    /// a server signing with it carries).
    const NA_PUBLIC: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

    fn running(source: &str, path: Option<&str>, alive: bool) -> RuntimeFacts {
        use crate::ops::runtime::{KeyFacts, RuntimeRecord, SettingsFacts, FORMAT};
        let fp = crate::crypto::keys::PublicKey::from_b64(NA_PUBLIC).unwrap().fingerprint();
        RuntimeFacts {
            record: RuntimeRecord {
                format: FORMAT.into(),
                pid: 4242,
                started_at: "2026-06-01T00:00:00Z".into(),
                version: "0.1.0".into(),
                na_key: KeyFacts {
                    source: source.into(),
                    path: path.map(str::to_string),
                    origin: path.map(|_| "NA_PRIVATE_KEY_FILE".to_string()),
                    signer_listen: None,
                    host_key_fingerprint: None,
                    signing_key_fingerprint: fp,
                },
                settings: SettingsFacts {
                    genesis_file: "g".into(),
                    db_path: "na.db".into(),
                    bind: "127.0.0.1:8443".into(),
                    admin_signatures: "v2".into(),
                    proxy_hops: 0,
                    scheduler: true,
                    jobs: 4,
                    tls: None,
                },
            },
            alive,
            path: PathBuf::from("gm-runtime.json"),
        }
    }

    fn custody_evidence(model: &str, runtime: Result<RuntimeFacts, String>) -> Evidence {
        let mut e = evidence("2026-06-01T12:00:00Z", None);
        let mut profile = Profile::default();
        profile.custody.model = model.into();
        e.profile = Ok(profile);
        e.runtime = runtime;
        e
    }

    /// The review's case: customer-held in the profile, but gm serve was handed the key through
    /// NA_PRIVATE_KEY_FILE. The configured path holds nothing, yet the gate must say NOT READY.
    #[test]
    fn custody_compares_the_profile_with_how_the_running_na_signs() {
        let key = std::env::temp_dir().join(format!("gm-custody-check-{}.key", std::process::id()));
        std::fs::write(&key, "x").unwrap();
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let k = key.to_str().unwrap();
        let fooled = custody(&custody_evidence("customer-held", Ok(running("file", Some(k), true))));
        assert_eq!(fooled.status, Status::Fail);
        assert!(
            fooled.reason.contains("loaded the NA key from file") && fooled.reason.contains("NA_PRIVATE_KEY_FILE"),
            "{}",
            fooled.reason
        );
        assert!(fooled.fix.is_some());

        let remote = custody(&custody_evidence("customer-held", Ok(running("remote-signer", None, true))));
        assert_eq!(remote.status, Status::Pass, "{}", remote.reason);
        // A record that does not describe the process answering on the port fails.
        let mut forged = custody_evidence("customer-held", Ok(running("remote-signer", None, true)));
        let fp = crate::crypto::keys::PublicKey::from_b64(NA_PUBLIC).unwrap().fingerprint();
        forged.live_key_source = Ok(("file".into(), fp.clone()));
        let c = custody(&forged);
        assert!(c.status == Status::Fail && c.reason.contains("signs from file"), "{}", c.reason);
        forged.live_key_source = Ok(("remote-signer".into(), fp));
        assert_eq!(custody(&forged).status, Status::Pass);
        let mut with_copy = custody_evidence("customer-held", Ok(running("remote-signer", None, true)));
        with_copy.na_key_copies = vec![PathBuf::from("/etc/gm/old/na.key")];
        let c = custody(&with_copy);
        assert_eq!(c.status, Status::Fail);
        assert!(c.reason.contains("/etc/gm/old/na.key"), "{}", c.reason);

        let managed_remote = custody(&custody_evidence("managed", Ok(running("remote-signer", None, true))));
        assert_eq!(managed_remote.status, Status::Fail, "a remote signer is the customer-held model");
        assert_eq!(custody(&custody_evidence("managed", Ok(running("file", Some(k), true)))).status, Status::Pass);
        assert_eq!(
            custody(&custody_evidence("managed", Ok(running("credential", Some(k), true)))).status,
            Status::Pass
        );
        let stale = custody(&custody_evidence("managed", Ok(running("file", Some(k), false))));
        assert!(stale.status == Status::Fail && stale.reason.contains("not a running gm"), "{}", stale.reason);
        let mut no_jobs = custody_evidence("managed", Ok(running("file", Some(k), true)));
        if let Ok(rt) = no_jobs.runtime.as_mut() {
            rt.record.settings.scheduler = false;
        }
        no_jobs.jobs = Ok(Vec::new());
        let c = scheduler(&no_jobs);
        assert!(c.status == Status::Fail && c.reason.contains("--no-scheduler"), "{}", c.reason);
        // A drill that had to use a scratch NA key under managed custody warns (the key was missing).
        let mut drilled = custody_evidence("managed", Ok(running("file", Some(k), true)));
        drilled.ledger = Ok(vec![LedgerFact {
            na_key: Some("scratch".into()),
            ..ledger_fact(9, LedgerKind::Drill, "2026-06-01T06:00:00Z", None)
        }]);
        assert_eq!(restore_drill(&drilled).status, Status::Warn);
        if let Ok(p) = drilled.profile.as_mut() {
            p.custody.model = "customer-held".into();
        }
        assert_eq!(restore_drill(&drilled).status, Status::Pass, "scratch is the customer-held way");
        let none = custody(&custody_evidence("managed", Err("gm-runtime.json does not exist".into())));
        assert!(none.status == Status::Fail && none.reason.contains("no running NA"), "{}", none.reason);
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        assert_eq!(custody(&custody_evidence("managed", Ok(running("file", Some(k), true)))).status, Status::Fail);
        std::fs::remove_file(&key).unwrap();
    }

    fn ledger_fact(id: i64, kind: LedgerKind, at: &str, signed: Option<bool>) -> LedgerFact {
        LedgerFact {
            id,
            kind,
            outcome: Outcome::Ok,
            finished_at: self::at(at),
            artifact: Some("backups/gm-acme-20260601T000000Z.tar.gz.age".into()),
            sha256: None,
            signed,
            na_key: None,
            locked_until: None,
            origin: None,
        }
    }

    /// F4: readiness fails its backup check when the newest backup is unsigned (or the ledger
    /// entry predates signing) or when no backup-signing key is configured.
    #[test]
    fn backup_fails_when_unsigned_or_no_signing_key_is_configured() {
        let now = "2026-06-01T01:00:00Z";
        let with = |signed: Option<bool>, key: Result<String, String>| {
            let mut e = evidence(now, None);
            e.ledger = Ok(vec![
                ledger_fact(1, LedgerKind::Backup, "2026-06-01T00:00:00Z", signed),
                ledger_fact(2, LedgerKind::Verify, "2026-06-01T00:10:00Z", None),
            ]);
            e.backup_signing_key = key;
            backup(&e)
        };
        let pass = with(Some(true), Ok("key".into()));
        assert_eq!(pass.status, Status::Pass, "{}", pass.reason);
        for signed in [Some(false), None] {
            let c = with(signed, Ok("key".into()));
            assert_eq!(
                (c.status, c.reason.as_str()),
                (Status::Fail, "the newest backup (gm-acme-20260601T000000Z.tar.gz.age) is unsigned")
            );
        }
        let c = with(Some(true), Err("no backup-signing public key is configured".into()));
        assert_eq!(c.status, Status::Fail);
        assert!(c.reason.starts_with("no backup-signing key is configured"), "{}", c.reason);
    }

    #[test]
    fn clock_fails_before_the_build_or_the_genesis_valid_from_and_says_why() {
        let check = clock(&evidence("2026-06-01T00:00:00Z", Some("2026-05-01T00:00:00Z")));
        assert_eq!(check.status, Status::Pass, "{}", check.reason);
        let check = clock(&evidence("2001-01-01T00:00:00Z", Some("2026-05-01T00:00:00Z")));
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.reason,
            "the system clock (2001-01-01T00:00:00+00:00) is before this gm build (2026-05-01T00:00:00+00:00): set the clock (NTP or a real-time clock)"
        );
        let check = clock(&evidence("2025-12-31T00:00:00Z", None));
        assert_eq!(check.status, Status::Fail);
        assert!(
            check.reason.contains("is before the genesis NA valid_from (2026-01-01T00:00:00+00:00)"),
            "{}",
            check.reason
        );
        assert_eq!(evaluate(&evidence("2026-06-01T00:00:00Z", None)).iter().map(|c| c.id).collect::<Vec<_>>(), IDS);
    }

    fn with_waiver(waiver: &str) -> Evidence {
        let mut e = evidence("2026-06-01T00:00:00Z", None);
        e.admin_auth = AdminAuthFacts {
            v1_accepted: true,
            decided_by: "NA_ADMIN_LEGACY_SIGNATURES".into(),
            legacy_accepted_30d: Ok(3),
        };
        e.profile = Profile::parse(waiver).map_err(|x| x.to_string());
        e
    }

    // F5: v2 only passes; v1 accepted fails unless a filled-in, unexpired waiver says otherwise,
    // and even then it only warns.
    #[test]
    fn admin_auth_fails_while_v1_is_accepted_unless_waived_and_then_warns() {
        let check = admin_auth(&evidence("2026-06-01T00:00:00Z", None));
        assert_eq!(
            (check.status, check.reason.as_str()),
            (Status::Pass, "version 2 only (the default for a home with gm.toml)")
        );

        let check = admin_auth(&with_waiver(""));
        assert_eq!(check.status, Status::Fail);
        assert!(
            check.reason.starts_with("version-1 admin signatures are accepted (NA_ADMIN_LEGACY_SIGNATURES)"),
            "{}",
            check.reason
        );
        assert!(check.reason.contains("3 version-1 request(s) accepted in the last 30 days"), "{}", check.reason);
        assert!(check.reason.contains("admin_signature = \"v2\""), "{}", check.reason);
        assert_eq!(check.evidence.get("accepted").map(String::as_str), Some("v1+v2"));

        let waiver = |expires: &str, by: &str| {
            format!("[waivers.legacy_admin_signatures]\nreason = \"0.16 CLI in the customer's pipeline\"\naccepted_by = \"{by}\"\naccepted_at = \"2026-05-20\"\nexpires_at = \"{expires}\"\n")
        };
        let check = admin_auth(&with_waiver(&waiver("2026-06-30", "Jane Doe")));
        assert_eq!(check.status, Status::Warn, "{}", check.reason);
        assert!(check.reason.contains("waived by Jane Doe until 2026-07-01T00:00:00+00:00"), "{}", check.reason);
        for (expires, by, why) in [
            ("2026-05-31", "Jane Doe", "expired at 2026-06-01T00:00:00+00:00"),
            ("soon", "Jane Doe", "expires_at \"soon\" is not a date"),
            ("2026-06-30", "FILL IN", "accepted_by is not filled in"),
        ] {
            let check = admin_auth(&with_waiver(&waiver(expires, by)));
            assert_eq!(check.status, Status::Fail, "{expires} {by}");
            assert!(check.reason.contains(&format!("the waiver does not count: {why}")), "{}", check.reason);
        }
    }

    fn job(id: i64, name: &str, outcome: Outcome, at: &str) -> LedgerFact {
        LedgerFact {
            id,
            kind: LedgerKind::Job,
            outcome,
            finished_at: self::at(at),
            artifact: Some(name.into()),
            sha256: None,
            signed: None,
            na_key: None,
            locked_until: None,
            origin: None,
        }
    }

    fn jobs() -> Vec<JobFact> {
        let j = |name: &str, kind: &str, hours: i64| JobFact {
            name: name.into(),
            kind: kind.into(),
            schedule: String::new(),
            period: Some(Duration::hours(hours)),
        };
        vec![
            j("backup", "backup", 6),
            j("audit-export", "audit-export", 24),
            j("probe", "probe", 1),
            j("prune", "prune", 24),
        ]
    }

    /// Hole 1: declared jobs with no run (`gm serve --no-scheduler`) fail, each named; a job is
    /// late after its period plus max(period/4, 10 min); a job that ran in time passes.
    #[test]
    fn scheduler_fails_until_each_job_succeeded_within_its_period() {
        let mut e = evidence("2026-06-01T12:00:00Z", None);
        e.jobs = Ok(jobs());
        let c = scheduler(&e);
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.reason, "never succeeded: backup, audit-export, probe, prune");
        assert!(c.fix.as_deref().is_some_and(|f| f.starts_with("gm cron run-once backup")), "{:?}", c.fix);

        e.ledger = Ok(vec![
            job(6, "probe", Outcome::Ok, "2026-06-01T11:59:00Z"),
            job(5, "prune", Outcome::Ok, "2026-06-01T04:45:00Z"),
            job(4, "backup", Outcome::Failed, "2026-06-01T06:00:00Z"),
            job(3, "audit-export", Outcome::Ok, "2026-05-31T00:05:00Z"),
            job(2, "backup", Outcome::Ok, "2026-06-01T00:00:00Z"),
        ]);
        let c = scheduler(&e);
        assert_eq!(c.status, Status::Fail);
        // backup: 12 h since its last success > 6 h + 90 min; audit-export: 36 h > 24 h + 6 h.
        assert_eq!(
            c.reason,
            "late: backup (last success 12.0 h ago; runs every 6.0 h), audit-export (last success 35.9 h ago; runs every 24.0 h); last run failed: backup (failed)"
        );

        e.ledger = Ok(vec![
            job(9, "probe", Outcome::Ok, "2026-06-01T11:59:00Z"),
            job(8, "backup", Outcome::Ok, "2026-06-01T06:01:00Z"),
            job(7, "audit-export", Outcome::Ok, "2026-06-01T00:05:00Z"),
            job(5, "prune", Outcome::Ok, "2026-06-01T04:45:00Z"),
        ]);
        let c = scheduler(&e);
        assert_eq!((c.status, c.reason.as_str()), (Status::Pass, "4 jobs; each succeeded within its period"));
        // 7 h 20 min after a 6-hourly backup is within 6 h + 90 min; 7 h 40 min is not.
        e.now = at("2026-06-01T13:21:00Z");
        assert!(!scheduler(&e).reason.contains("backup"), "{}", scheduler(&e).reason);
        e.now = at("2026-06-01T13:41:00Z");
        assert!(scheduler(&e).reason.starts_with("late: backup"), "{}", scheduler(&e).reason);
        // The minimum grace is 10 minutes: a probe every minute is late after 11.
        assert_eq!(allowance(Duration::minutes(1)), Duration::minutes(11));

        e.jobs = Ok(jobs().into_iter().filter(|j| j.kind != "probe").collect());
        assert_eq!(scheduler(&e).reason, "no job of kind probe in gm.toml [cron.jobs]");
    }

    #[test]
    fn period_is_the_longest_gap_between_fire_times() {
        let from = at("2026-06-01T00:30:00Z");
        let every = |h: i64| move |t: DateTime<Utc>| Some(t + Duration::hours(h));
        assert_eq!(period(from, every(6)), Some(Duration::hours(6)));
        // Weekdays at 09:00: the longest gap is the weekend (Friday to Monday).
        let weekdays = |t: DateTime<Utc>| {
            use chrono::Datelike;
            let mut d = t.date_naive().and_hms_opt(9, 0, 0)?.and_utc();
            while d <= t || d.weekday().number_from_monday() > 5 {
                d += Duration::days(1);
            }
            Some(d)
        };
        assert_eq!(period(from, weekdays), Some(Duration::days(3)));
        assert_eq!(period(from, |_| None), None);
    }

    fn backup_fact(id: i64, name: &str, at: &str) -> LedgerFact {
        LedgerFact { artifact: Some(format!("backups/{name}")), ..ledger_fact(id, LedgerKind::Backup, at, Some(true)) }
    }

    fn verify_fact(id: i64, name: &str, outcome: Outcome, at: &str) -> LedgerFact {
        LedgerFact {
            artifact: Some(format!("/srv/copy/{name}")),
            outcome,
            ..ledger_fact(id, LedgerKind::Verify, at, None)
        }
    }

    /// The off-host check counts only S3 copies verified from the bucket and drills from off-host,
    /// and says whether the copy is locked (warning when it is not).
    #[test]
    fn offsite_backup_needs_a_copy_verified_and_drilled_from_the_bucket() {
        let url = "s3://gm-backups/acme/gm-acme-20260601T000000Z.tar.gz.age";
        let mut e = evidence("2026-06-01T06:00:00Z", None);
        let local = backup_fact(1, "gm-acme-20260601T000000Z.tar.gz.age", "2026-06-01T00:00:00Z");
        e.ledger = Ok(vec![local.clone()]);
        let c = offsite_backup(&e);
        assert!(c.status == Status::Fail && c.reason.contains("NA host's own disk"), "{}", c.reason);

        let copy = LedgerFact { id: 2, artifact: Some(url.into()), ..local.clone() };
        // A verify of the local file (same name) is not a verify from the bucket.
        let local_verify = verify_fact(3, "gm-acme-20260601T000000Z.tar.gz.age", Outcome::Ok, "2026-06-01T00:10:00Z");
        e.ledger = Ok(vec![local_verify.clone(), copy.clone(), local.clone()]);
        let c = offsite_backup(&e);
        assert!(c.status == Status::Fail && c.reason.contains("not been verified from the bucket"), "{}", c.reason);

        let bucket_verify = LedgerFact { id: 4, artifact: Some(url.into()), ..local_verify.clone() };
        e.ledger = Ok(vec![bucket_verify.clone(), copy.clone()]);
        let c = offsite_backup(&e);
        assert!(
            c.status == Status::Fail && c.reason.contains("no restore drill from an off-host copy"),
            "{}",
            c.reason
        );

        let drill = LedgerFact { id: 5, kind: LedgerKind::Drill, artifact: Some(url.into()), ..bucket_verify.clone() };
        e.ledger = Ok(vec![drill.clone(), bucket_verify.clone(), copy.clone()]);
        let c = offsite_backup(&e);
        assert!(c.status == Status::Warn && c.reason.contains("not under Object Lock"), "{}", c.reason);

        let locked = LedgerFact { locked_until: Some("2026-07-01T00:00:00Z".into()), ..copy.clone() };
        e.ledger = Ok(vec![drill.clone(), bucket_verify.clone(), locked]);
        let c = offsite_backup(&e);
        assert_eq!(c.status, Status::Pass, "{}", c.reason);
        assert!(c.reason.contains("locked until 2026-07-01T00:00:00Z"), "{}", c.reason);

        // Three days later the copy is stale.
        e.now = at("2026-06-04T00:00:00Z");
        assert_eq!(offsite_backup(&e).status, Status::Fail);
    }

    /// Hole 2: the scheduled backup at 06:00 is verified at 06:15; in between, the 00:00 backup
    /// (verified) is still within the window and the check passes; a failed verify fails.
    #[test]
    fn backup_is_judged_by_the_newest_verified_backup() {
        let mut e = evidence("2026-06-01T06:05:00Z", None);
        e.backup_signing_key = Ok("key".into());
        let older = backup_fact(1, "gm-acme-a.tar.gz.age", "2026-06-01T00:00:00Z");
        let newer = backup_fact(3, "gm-acme-b.tar.gz.age", "2026-06-01T06:01:00Z");
        e.ledger = Ok(vec![
            newer.clone(),
            verify_fact(2, "gm-acme-a.tar.gz.age", Outcome::Ok, "2026-06-01T00:15:00Z"),
            older.clone(),
        ]);
        let c = backup(&e);
        assert_eq!(c.status, Status::Pass, "{}", c.reason);
        assert_eq!(c.reason, "backup 6.1 h old, verified; a newer backup (gm-acme-b.tar.gz.age) awaits its verify");
        assert_eq!(c.evidence.get("artifact").map(String::as_str), Some("backups/gm-acme-a.tar.gz.age"));

        e.ledger = Ok(vec![
            verify_fact(4, "gm-acme-b.tar.gz.age", Outcome::Failed, "2026-06-01T06:15:00Z"),
            newer.clone(),
            verify_fact(2, "gm-acme-a.tar.gz.age", Outcome::Ok, "2026-06-01T00:15:00Z"),
            older.clone(),
        ]);
        let c = backup(&e);
        assert_eq!(
            (c.status, c.reason.as_str()),
            (Status::Fail, "the verify of a newer backup failed: gm-acme-b.tar.gz.age")
        );

        // No verified backup at all still fails, naming the newest.
        e.ledger = Ok(vec![newer.clone(), older.clone()]);
        assert_eq!(backup(&e).reason, "the newest backup (gm-acme-b.tar.gz.age) has not been verified");

        // An old verified backup does not carry a newer unverified one forever.
        e.now = at("2026-06-03T01:00:00Z");
        e.ledger = Ok(vec![newer, verify_fact(2, "gm-acme-a.tar.gz.age", Outcome::Ok, "2026-06-01T00:15:00Z"), older]);
        assert_eq!(backup(&e).status, Status::Fail);
    }

    /// Hole 7: the identity that decrypts backups on the NA host turns a pass into a warning, with
    /// the fix of moving it offline.
    #[test]
    fn a_backup_decryption_key_on_the_na_host_warns_with_a_fix() {
        let mut e = evidence("2026-06-01T01:00:00Z", None);
        e.backup_signing_key = Ok("key".into());
        e.ledger = Ok(vec![
            verify_fact(2, "gm-acme-a.tar.gz.age", Outcome::Ok, "2026-06-01T00:15:00Z"),
            backup_fact(1, "gm-acme-a.tar.gz.age", "2026-06-01T00:00:00Z"),
        ]);
        assert_eq!(backup(&e).status, Status::Pass);
        e.backup_decryption_keys = vec![PathBuf::from("/etc/gm/offline/backup.key")];
        let c = backup(&e);
        assert_eq!(c.status, Status::Warn);
        assert!(
            c.reason.ends_with("a backup decryption key is on the NA host: /etc/gm/offline/backup.key"),
            "{}",
            c.reason
        );
        assert!(c.fix.as_deref().is_some_and(|f| f.contains("where it lives")), "{:?}", c.fix);
        assert_eq!(c.evidence.get("decryption_keys_on_host").map(String::as_str), Some("/etc/gm/offline/backup.key"));
    }

    /// Hole 3: a treaty issued with the defaults of `gm treaty issue` (168 h) passes; it warns in
    /// its last 72 h and fails in its last 24 h, unless a successor exists.
    #[test]
    fn a_treaty_with_the_default_validity_passes_and_warns_near_its_end() {
        let now = "2026-06-01T00:00:00Z";
        let with = |hours: i64, has_successor: bool| {
            let mut e = evidence(now, None);
            e.expiring_treaties = Ok(vec![ExpiringTreaty {
                treaty_id: "t-1".into(),
                subject: "beta-mesh".into(),
                expires_at: at(now) + Duration::hours(hours),
                has_successor,
            }]);
            expiry(&e)
        };
        assert_eq!(with(168, false).status, Status::Pass);
        assert_eq!(with(73, false).status, Status::Pass);
        let c = with(48, false);
        assert_eq!(c.status, Status::Warn);
        assert_eq!(c.fix.as_deref(), Some("gm treaty renew t-1 --yes (each treaty named)"));
        assert_eq!(with(12, false).status, Status::Fail);
        assert_eq!(with(12, true).status, Status::Pass);
        assert!(TREATY_WARN_WITHIN < Duration::hours(168), "the default validity must outlast the warning window");
    }

    /// Hole 6: every check, in a failing state, says what to act on.
    #[test]
    fn every_check_that_does_not_pass_carries_a_fix() {
        let mut e = evidence("2001-01-01T00:00:00Z", Some("2026-05-01T00:00:00Z"));
        e.genesis = Err(Error::NoLedger { path: PathBuf::from("genesis.signed.json") });
        e.operator_public_keys = Ok(0);
        e.admin_auth.v1_accepted = true;
        e.runbooks = (PathBuf::from("runbooks"), vec!["bad-treaty.md"]);
        e.expiring_treaties = Err(Error::NoLedger { path: PathBuf::new() });
        let checks = evaluate(&e);
        assert_eq!(checks.iter().map(|c| c.id).collect::<Vec<_>>(), IDS);
        for c in &checks {
            assert_ne!(c.status, Status::Pass, "{} should fail here: {}", c.id, c.reason);
            assert!(c.fix.as_deref().is_some_and(|f| !f.trim().is_empty()), "{} has no fix", c.id);
        }
        for id in IDS {
            assert_ne!(fix_for(id), fix_for("not-a-check"), "{id} has its own default fix");
        }
        // A check that passes carries no fix.
        let pass = evaluate(&evidence("2026-06-01T00:00:00Z", None));
        assert!(pass.iter().filter(|c| c.status == Status::Pass).all(|c| c.fix.is_none()));
    }

    /// Hole 4: a sovereign named "x" fails the sovereign check, and so does a well-formed name that
    /// is not this genesis' network.
    #[test]
    fn the_sovereign_check_wants_a_real_name_and_the_genesis_network_name() {
        let profile = |name: &str| {
            let mut e = evidence("2026-06-01T00:00:00Z", None);
            let text = format!("[sovereign]\nname = \"{name}\"\npolicy_intent = \"admit acme devices only\"\n");
            e.profile = Profile::parse(&text);
            profile_part(&e, "sovereign", "t", Part::Sovereign)
        };
        assert_eq!(profile("acme-mesh").status, Status::Pass);
        let c = profile("x");
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.reason.starts_with("profile.toml has invalid sovereign.name (expected a network name"),
            "{}",
            c.reason
        );
        let c = profile("beta-mesh");
        assert_eq!(
            c.reason,
            "profile.toml has invalid sovereign.name (expected the genesis network name \"acme-mesh\", found \"beta-mesh\")"
        );
    }
}
