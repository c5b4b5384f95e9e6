//! Gathers the readiness [`Evidence`] from the host: the genesis and keys on disk, the database
//! (read-only), the ops ledger, the runbooks, the disk and a live probe of the NA. The CLI resolves
//! flags and configuration into [`Sources`]; this module reads what they point at and never writes:
//! it opens the database and the ledger read-only (the ledger is not created) and starts no backup
//! or drill. Every fact that cannot be gathered becomes its reason ([`Error`]), never a failure of
//! the whole report.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::crypto::cert_facts::{self, CertFacts};
use crate::crypto::digest::sha256_hex;
use crate::crypto::keys::load_signing_key;
use crate::crypto::signature::SignatureCheck;
use crate::json::parse_str;
use crate::model::genesis::Genesis;
use crate::model::timestamp::{isoformat_utc, parse_db_time};
use crate::model::SignedObject;
use crate::ops::ledger::{details, Ledger, LedgerKind, Outcome};
use crate::probe::checks::{run_checks, CheckName};
use crate::store::direct;

use super::checks::{
    AdminAuthFacts, Evidence, ExpiringTreaty, GenesisFacts, JobFact, LedgerFact, ProbeFact, RuntimeFacts, RUNBOOKS,
    TREATY_WARN_WITHIN,
};
use super::error::Error;
use super::profile::Profile;
use super::tls::{Handshake, TlsEvidence};

/// What the CLI resolved from flags, the environment and gm.toml (as `gm serve` would), and the
/// facts only configuration can give. Everything else [`gather`] reads itself.
pub(crate) struct Sources<'a> {
    /// The report's clock (also the probe's).
    pub clock: &'a dyn Clock,
    /// The gm home (searched, two levels deep, for private keys that should not be there).
    pub home: PathBuf,
    /// The genesis file.
    pub genesis_file: PathBuf,
    /// The NA private key file.
    pub na_key_file: PathBuf,
    /// The NA database (its folder is searched for keys too, and holds the ops ledger).
    pub db_path: PathBuf,
    /// The backup-signing private key file, when one is configured (expected on the NA host).
    pub backup_signing_key_file: Option<PathBuf>,
    /// The URL the NA is probed at.
    pub probe_target: String,
    /// The CA certificates an `https` probe target is verified against (`--ca-file`, else the
    /// host's CA bundle).
    pub probe_trust: crate::probe::Trust,
    /// The folder holding the incident runbooks.
    pub runbooks_dir: PathBuf,
    /// Version-1 admin signatures are accepted (as `gm serve` resolves it here).
    pub admin_v1_accepted: bool,
    /// What decided the admin signature policy, in words.
    pub admin_decided_by: String,
    /// The readiness profile, or why it could not be loaded.
    pub profile: Result<Profile, String>,
    /// `profile.toml` (its bytes are hashed into the report).
    pub profile_file: PathBuf,
    /// Valid operator public keys installed, or why they cannot be read.
    pub operator_public_keys: Result<usize, String>,
    /// The scheduled jobs, or why the job table cannot be read.
    pub jobs: Result<Vec<JobFact>, String>,
    /// The identity and passphrase files the configured jobs decrypt (or encrypt with a
    /// passphrase) backups with; those that exist are reported as decryption keys on the host.
    pub job_key_files: Vec<PathBuf>,
    /// The pinned backup-signing public key (base64), or why none is configured.
    pub backup_signing_key: Result<String, String>,
    /// Copies of other hosts' ops ledgers whose verify and drill records count as evidence.
    pub evidence_ledgers: Vec<PathBuf>,
    /// The certificate chain file of built-in TLS as configured (`None`: plain HTTP); the running
    /// server's record overrides it.
    pub tls_cert_file: Option<PathBuf>,
    /// Trusted proxy hops as configured; the running server's record overrides it.
    pub proxy_hops: usize,
}

/// Reads every fact the checks need. Never fails: a fact that cannot be read is kept as its
/// [`Error`].
pub(crate) fn gather(s: Sources<'_>) -> Evidence {
    let now = s.clock.now();
    let db_dir = s.db_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let expected: Vec<&Path> =
        std::iter::once(s.na_key_file.as_path()).chain(s.backup_signing_key_file.as_deref()).collect();
    let mut private_keys_found = private_keys(&s.home, &expected);
    private_keys_found.extend(private_keys(&db_dir, &expected));
    private_keys_found.sort();
    private_keys_found.dedup();
    let backup_decryption_keys = backup_decryption_keys(&[&s.home, &db_dir], &s.job_key_files);
    let profile_file = std::fs::read(&s.profile_file).ok().map(|b| (s.profile_file.clone(), sha256_hex(&b)));
    let ledger = ledger(&Ledger::beside(&s.db_path)).and_then(|mut facts| {
        // Verifies and drills run where the backup identity lives; copies of those hosts' ledgers
        // bring their records in. Only those kinds: backups and jobs are this host's.
        for path in &s.evidence_ledgers {
            let theirs = match ledger(&Ledger::at(path)) {
                Err(Error::NoLedger { path }) => return Err(Error::NoLedger { path }),
                other => other?,
            };
            facts.extend(
                theirs
                    .into_iter()
                    .filter(|f| matches!(f.kind, LedgerKind::Verify | LedgerKind::Drill))
                    .map(|f| LedgerFact { origin: Some(path.clone()), ..f }),
            );
        }
        facts.sort_by_key(|f| std::cmp::Reverse(f.finished_at));
        Ok(facts)
    });
    let export_redaction = ledger.as_ref().ok().and_then(|l| {
        let x = l.iter().find(|e| e.kind == LedgerKind::Export && e.outcome == Outcome::Ok)?;
        let path = PathBuf::from(x.artifact.clone()?);
        let checked = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
            .and_then(|t| super::redaction::recheck(&t));
        Some((path, checked))
    });
    let missing = RUNBOOKS.iter().copied().filter(|r| !s.runbooks_dir.join(r).is_file()).collect();
    let genesis = genesis_facts(&s.genesis_file, &s.na_key_file);
    let na_key_copies = match &genesis {
        Ok(g) => na_key_copies(&[&s.home, &db_dir], &s.na_key_file, &g.na_public_key),
        Err(_) => Vec::new(),
    };
    let runtime = runtime(&s.db_path);
    let live_key_source = live_key_source(&s.probe_target, &s.probe_trust);
    let probe_facts = probe(&s.probe_target, &s.probe_trust, s.clock);
    let tls = tls_evidence(&s, &runtime, &probe_facts);
    // The running server's admin signature policy is the truth; configuration only says what a
    // restart would do.
    let (admin_v1_accepted, admin_decided_by) = match &runtime {
        Ok(rt) if rt.alive => (
            rt.record.settings.admin_signatures == "v1+v2",
            format!("the running gm serve (pid {}) accepts {}", rt.record.pid, rt.record.settings.admin_signatures),
        ),
        _ => (s.admin_v1_accepted, s.admin_decided_by),
    };
    Evidence {
        now,
        build_time: crate::clock::build_time(),
        genesis,
        profile: s.profile,
        operator_public_keys: s.operator_public_keys,
        admin_auth: AdminAuthFacts {
            v1_accepted: admin_v1_accepted,
            decided_by: admin_decided_by,
            legacy_accepted_30d: legacy_accepted(&s.db_path, now),
        },
        private_keys_found,
        probe: Ok(probe_facts),
        probe_target: s.probe_target,
        ledger,
        export_redaction,
        database: database(&s.db_path),
        runbooks: (s.runbooks_dir, missing),
        jobs: s.jobs,
        disk_free_ratio: crate::files::space::free_ratio(&db_dir),
        expiring_treaties: expiring_treaties(&s.db_path, now),
        backup_signing_key: s.backup_signing_key,
        backup_decryption_keys,
        profile_file,
        runtime,
        live_key_source,
        na_key_copies,
        tls,
        evidence_ledgers: s
            .evidence_ledgers
            .iter()
            .map(|p| {
                let digest = std::fs::read(p).map_or_else(|e| format!("unreadable: {e}"), |b| sha256_hex(&b));
                (p.clone(), digest)
            })
            .collect(),
    }
}

/// How the NA serves TLS: the running server's record when its process lives, else the
/// configuration; the served chain's certificates; the CAs that may end a chain; the probe's
/// handshake with an `https` target.
fn tls_evidence(s: &Sources<'_>, runtime: &Result<RuntimeFacts, String>, probe: &[ProbeFact]) -> TlsEvidence {
    let (cert_file, proxy_hops, decided_by) = match runtime {
        Ok(rt) if rt.alive => (
            rt.record.settings.tls.as_ref().map(|t| PathBuf::from(&t.cert_file)),
            rt.record.settings.proxy_hops,
            format!("as the running gm serve (pid {}) recorded", rt.record.pid),
        ),
        _ => (s.tls_cert_file.clone(), s.proxy_hops, "as configured: no running gm serve recorded itself".to_string()),
    };
    let served = cert_file.map(|path| {
        let chain = read_chain(&path);
        (path, chain)
    });
    let anchors = match &served {
        Some(_) => s.probe_trust.roots().roots.iter().map(|a| a.subject.as_ref().to_vec()).collect(),
        None => Vec::new(),
    };
    let anchors_from =
        if s.probe_trust.is_private() { "the --ca-file bundle" } else { "the host's CA bundle" }.to_string();
    let handshake = s
        .probe_target
        .starts_with("https://")
        .then(|| probe.iter().find(|p| p.check == "tls"))
        .flatten()
        .map(|p| Handshake { ok: p.ok, reason: p.reason.clone(), days_left: p.cert_expiry_days });
    TlsEvidence {
        decided_by,
        proxy_hops,
        served,
        anchors,
        anchors_from,
        probe_target: s.probe_target.clone(),
        handshake,
    }
}

/// The certificates of a PEM chain file, leaf first.
fn read_chain(path: &Path) -> Result<Vec<CertFacts>, String> {
    use rustls::pki_types::pem::PemObject;
    let ders: Vec<rustls::pki_types::CertificateDer<'static>> = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read it: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("it is not valid PEM: {e}"))?;
    ders.iter()
        .enumerate()
        .map(|(i, der)| {
            cert_facts::parse(der).map_err(|e| format!("certificate {} does not parse: {}", i + 1, e.problem))
        })
        .collect()
}

/// `gm_na_key_source{source="…",signing_key="…"}` from the NA's `/metrics`.
fn live_key_source(target: &str, trust: &crate::probe::Trust) -> Result<(String, String), String> {
    let text = crate::probe::checks::fetch_text(target, "/metrics", Duration::from_secs(10), trust)?;
    let line = text
        .lines()
        .find(|l| l.starts_with("gm_na_key_source{"))
        .ok_or_else(|| "the NA's /metrics has no gm_na_key_source (an older gm?)".to_string())?;
    let label = |name: &str| {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        let len = line[start..].find('"')?;
        Some(line[start..start + len].to_string())
    };
    label("source").zip(label("signing_key")).ok_or_else(|| format!("unreadable series: {line}"))
}

/// The running server's record beside the database, and whether its process lives.
fn runtime(db_path: &Path) -> Result<RuntimeFacts, String> {
    let path = crate::ops::runtime::path_beside(db_path);
    let record = crate::ops::runtime::RuntimeRecord::read(&path)?;
    Ok(RuntimeFacts { alive: record.process_alive(), record, path })
}

/// Files holding the genesis NA private key: the configured key file, and any file under `dirs`
/// (two levels, at most 64 KiB) that loads as a private key whose public half is `na_public_key`.
fn na_key_copies(dirs: &[&Path], configured: &Path, na_public_key: &str) -> Vec<PathBuf> {
    let is_na_key = |p: &Path| load_signing_key(p).is_ok_and(|k| k.public_key().to_b64() == na_public_key);
    let configured: Vec<PathBuf> = Some(configured.to_path_buf()).filter(|p| is_na_key(p)).into_iter().collect();
    small_files_where(dirs, configured, is_na_key)
}

/// Files that decrypt backups on this host: the configured job key files that exist, and any file
/// under `dirs` (two levels) holding an age identity line (`AGE-SECRET-KEY-1…`), as `gm managed
/// verify --identity` reads it. Files over 64 KiB are not read (an identity file is a few lines).
fn backup_decryption_keys(dirs: &[&Path], configured: &[PathBuf]) -> Vec<PathBuf> {
    let configured: Vec<PathBuf> = configured.iter().filter(|p| p.is_file()).cloned().collect();
    small_files_where(dirs, configured, |path| {
        std::fs::read(path)
            .is_ok_and(|b| String::from_utf8_lossy(&b).lines().any(|l| l.trim_start().starts_with("AGE-SECRET-KEY-1")))
    })
}

/// `found`, plus every file of at most 64 KiB under `dirs` (two levels deep) for which `matches`
/// holds: each file once (by its canonical path), sorted. Key files are a few lines; the bound keeps
/// a search of a home holding databases and backups cheap.
fn small_files_where(dirs: &[&Path], mut found: Vec<PathBuf>, matches: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    for dir in dirs {
        let mut stack = vec![(dir.to_path_buf(), 0)];
        while let Some((d, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else { continue };
            for entry in entries.filter_map(Result::ok) {
                let path = entry.path();
                let Ok(kind) = entry.file_type() else { continue };
                if kind.is_dir() && depth < 2 {
                    stack.push((path, depth + 1));
                } else if kind.is_file() && entry.metadata().is_ok_and(|m| m.len() <= 64 * 1024) && matches(&path) {
                    found.push(path);
                }
            }
        }
    }
    let mut canonical: Vec<PathBuf> = Vec::new();
    found.retain(|p| {
        let c = p.canonicalize().unwrap_or_else(|_| p.clone());
        let new = !canonical.contains(&c);
        canonical.push(c);
        new
    });
    found.sort();
    found
}

/// How often version-1 admin signatures were accepted in the 30 days before `now`
/// (`admin_legacy_signature_accepted` audit events).
fn legacy_accepted(db: &Path, now: DateTime<Utc>) -> Result<i64, Error> {
    let since = isoformat_utc(now - chrono::Duration::days(30));
    let conn = direct::open_read_only(db)?;
    Ok(crate::store::audit::count_since(&conn, "admin_legacy_signature_accepted", &since)?)
}

fn genesis_facts(genesis_file: &Path, na_key_file: &Path) -> Result<GenesisFacts, Error> {
    let bytes = std::fs::read(genesis_file).map_err(|source| Error::Read { path: genesis_file.into(), source })?;
    let invalid = |problem: String| Error::Invalid { path: genesis_file.into(), problem };
    let value = parse_str(&String::from_utf8_lossy(&bytes)).map_err(|e| invalid(e.to_string()))?;
    let g = Genesis::from_value(&value).map_err(|e| invalid(e.to_string()))?;
    let na_key_matches =
        load_signing_key(na_key_file).ok().map(|k| k.public_key().to_b64() == g.network_authority.public_key);
    Ok(GenesisFacts {
        path: genesis_file.to_path_buf(),
        sha256: sha256_hex(&bytes),
        payload_sha256: sha256_hex(&g.canonical_bytes()),
        network_name: g.network_name.clone(),
        root_signed: matches!(g.check_root_signatures(), SignatureCheck::Valid),
        na_key_matches,
        na_public_key: g.network_authority.public_key.clone(),
        na_valid_from: g.network_authority.valid_from.to_utc(),
        na_valid_to: g.network_authority.valid_to.to_utc(),
    })
}

/// Private key files under `dir` (two levels), except the ones the NA host must hold: the NA key
/// and the backup-signing key (backups are signed where they are taken).
fn private_keys(dir: &Path, expected: &[&Path]) -> Vec<PathBuf> {
    let expected: Vec<PathBuf> = expected.iter().filter_map(|p| p.canonicalize().ok()).collect();
    small_files_where(&[dir], Vec::new(), |path| {
        path.extension().is_some_and(|x| x == "key")
            && std::fs::read_to_string(path).is_ok_and(|t| t.lines().next().is_some_and(|l| l.contains("Private Key")))
            && !path.canonicalize().is_ok_and(|p| expected.contains(&p))
    })
}

/// The NA's health, readiness, metrics and connectome endpoints (and TLS for an https target).
fn probe(target: &str, trust: &crate::probe::Trust, clock: &dyn Clock) -> Vec<ProbeFact> {
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
        trust: trust.clone(),
    };
    run_checks(&options, clock)
        .into_iter()
        .map(|r| ProbeFact {
            check: r.check.name().to_string(),
            ok: r.outcome == crate::probe::checks::Outcome::Pass,
            reason: r.reason,
            cert_expiry_days: r.cert_expiry_days,
        })
        .collect()
}

/// The ledger's entries, newest first (entries of kinds or outcomes this gm does not know, or with
/// an unreadable time, are left out: no check reads them).
fn ledger(ledger: &Ledger) -> Result<Vec<LedgerFact>, Error> {
    if !ledger.path().is_file() {
        return Err(Error::NoLedger { path: ledger.path().to_path_buf() });
    }
    let entries = ledger.list(None, 100_000)?;
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            Some(LedgerFact {
                id: e.id,
                finished_at: parse_db_time(&e.finished_at)?,
                kind: LedgerKind::parse(&e.kind)?,
                outcome: Outcome::parse(&e.outcome)?,
                signed: details(&e).and_then(|m| m.get("signed").and_then(|x| x.as_bool())),
                na_key: details(&e).and_then(|m| m.get("na_key").and_then(|x| x.as_str().map(str::to_string))),
                locked_until: details(&e)
                    .and_then(|m| m.get("object_lock")?.as_object()?.get("retain_until")?.as_str().map(str::to_string)),
                origin: None,
                artifact: e.artifact,
                sha256: e.sha256,
            })
        })
        .collect())
}

/// The database file and its journal mode.
fn database(db: &Path) -> Result<(PathBuf, String), Error> {
    let conn = direct::open_read_only(db)?;
    Ok((db.to_path_buf(), direct::journal_mode(&conn)?))
}

/// Active treaties expiring within [`TREATY_WARN_WITHIN`] of `now`, and whether each has a later successor.
fn expiring_treaties(db: &Path, now: DateTime<Utc>) -> Result<Vec<ExpiringTreaty>, Error> {
    let conn = direct::open_read_only(db)?;
    let rows = crate::store::treaties::list(&conn, "", "", "")?;
    let active: Vec<_> = rows
        .iter()
        .filter(|r| r.status == "active")
        .filter_map(|r| parse_db_time(&r.expires_at).filter(|t| *t > now).map(|t| (r, t)))
        .collect();
    Ok(active
        .iter()
        .filter(|(_, t)| *t - now < TREATY_WARN_WITHIN)
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
