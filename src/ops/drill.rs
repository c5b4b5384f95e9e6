//! Restore drills (`operations.md` §2.6): prove that a backup brings the sovereign back, without
//! touching production. The backup is verified, restored into a fresh scratch folder (asserted to
//! differ from the production database), served by an ephemeral `gm serve` on 127.0.0.1:0 with the
//! configured genesis and NA key, and checked from outside: `/healthz`, `/readyz`, `/crl` (NA
//! signature, sequence against the manifest) and `/connectome.json` (summary against the
//! manifest); finally a throwaway node joins with a sentinel invite planted in the scratch copy
//! (proving the restored NA admits nodes and signs with the configured key) and sends a heartbeat.
//! The report carries the time to ready (RTO) and the backup's age (RPO).
//!
//! Without the NA key (customer-held custody, [`DrillNaKey::Scratch`]) the restored CRLs and
//! policies are first checked against the genesis NA public key (`na_signed`), then the server runs
//! in a scratch world ([`super::drill_scratch`]): the same restored copy, under a scratch genesis
//! whose scratch NA key signs the throwaway node's certificate. The served CRL is then the restored
//! one (genesis-NA-signed) or its re-issue on read by the scratch NA (D4), and the report says which.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::client::options::{ClientOptions, Deadline};
use crate::client::NaClient;
use crate::crypto::keys::PublicKey;
use crate::model::crl::Crl;
use crate::model::timestamp::parse_db_time;
use crate::model::SignedObject;

use super::archive::Key;
use super::backup::{load_genesis, Scratch};
use super::drill_scratch::{check_restored_material, genesis_na_key, write_scratch_world, DrillNaKey};
use super::error::{io, OpsError};
use super::verify::{verify_into, Check};

/// What a drill needs.
pub(crate) struct DrillOptions {
    /// The backup to drill.
    pub backup: PathBuf,
    /// Its decryption key.
    pub key: Key,
    /// The production database (never written; the scratch folder must differ from it).
    pub production_db: PathBuf,
    /// The configured genesis.
    pub genesis_file: PathBuf,
    /// The NA key the ephemeral server signs with: the configured one, or a scratch world.
    pub na_key: DrillNaKey,
    /// The `gm` executable to start the ephemeral server with.
    pub gm_binary: PathBuf,
    /// Bounds on what unpacking the archive may write.
    pub limits: super::archive::ExtractLimits,
    /// The pinned backup-signing key and whether unsigned backups are accepted.
    pub trust: super::backup_signature::SignatureTrust,
}

/// A drill's outcome.
#[derive(Debug)]
pub(crate) struct DrillReport {
    /// Every check, in order (stops at the first failure).
    pub checks: Vec<Check>,
    /// Restore start to `/readyz` ready, in milliseconds.
    pub rto_ms: Option<u128>,
    /// Age of the backup when drilled, in seconds.
    pub rpo_seconds: Option<i64>,
}

impl DrillReport {
    /// True when every check passed.
    pub(crate) fn ok(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.ok)
    }

    fn add(&mut self, name: &'static str, ok: bool, detail: impl Into<String>) -> bool {
        self.checks.push(Check { name, ok, detail: detail.into() });
        ok
    }
}

struct Ephemeral(Child);

impl Drop for Ephemeral {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a drill.
pub(crate) fn drill(opts: &DrillOptions, now: DateTime<Utc>) -> Result<DrillReport, OpsError> {
    let started = Instant::now();
    let mut r = DrillReport { checks: Vec::new(), rto_ms: None, rpo_seconds: None };
    let scratch = Scratch::new(&std::env::temp_dir(), "gm-drill")?;
    let home = scratch.path().join("home");
    std::fs::create_dir_all(&home).map_err(io("create folder", &home))?;
    let db = home.join("na.db");
    if same_file(&db, &opts.production_db) {
        return Err(OpsError::Refused {
            reason: "the drill's scratch database resolves to the production database".into(),
        });
    }
    let unpacked = Scratch::new(scratch.path(), "unpacked")?;
    let verified =
        verify_into(&opts.backup, &opts.key, &unpacked, &opts.limits, now, &opts.trust, &super::progress::Silent)?;
    let manifest = verified.manifest.clone();
    let ok = verified.ok();
    let detail = verified
        .checks
        .iter()
        .find(|c| !c.ok)
        .map_or("all checks passed".to_string(), |c| format!("{}: {}", c.name, c.detail));
    if !r.add("verify", ok, detail) {
        return Ok(r);
    }
    let Some(manifest) = manifest else {
        r.add("verify", false, "no manifest");
        return Ok(r);
    };
    r.rpo_seconds = parse_db_time(&manifest.created_at).map(|t| (now - t).num_seconds());
    std::fs::copy(unpacked.path().join("na.db"), &db).map_err(io("copy snapshot to", &db))?;
    let Some(world) = prepare_world(opts, &mut r, unpacked.path(), &db, &home, now)? else {
        return Ok(r);
    };
    let sentinel = crate::crypto::digest::uuid4();
    plant_sentinel_invite(&db, &sentinel, now)?;
    let config = format!(
        "[na]\ngenesis_file = {:?}\nna_private_key_file = {:?}\nna_key_id = {:?}\ndb_path = \"na.db\"\noperator_keys_file = \"operators.json\"\n",
        absolute(&world.genesis_file).display().to_string(),
        absolute(&world.na_key_file).display().to_string(),
        world.na_key_id
    );
    std::fs::write(home.join("gm.toml"), config).map_err(io("write", &home))?;
    let (server, addr) = match start(&opts.gm_binary, &home) {
        Ok(s) => s,
        Err(problem) => {
            r.add("serve", false, problem);
            return Ok(r);
        }
    };
    r.add("serve", true, format!("ephemeral gm serve on {addr}"));
    let client = NaClient::new(&format!("http://{addr}"), ClientOptions::default())
        .map_err(|e| OpsError::Refused { reason: e.to_string() })?;
    let get = |path: &str| client.get(&Deadline::after(Duration::from_secs(10)), path, &[]);
    let healthz = get("/healthz").map(|x| x.status == 200 && x.text == "{\"status\":\"ok\"}\n").unwrap_or(false);
    if !r.add("healthz", healthz, if healthz { "{\"status\":\"ok\"}" } else { "unexpected answer" }) {
        return Ok(r);
    }
    let ready = get("/readyz").map(|x| x.status == 200).unwrap_or(false);
    r.rto_ms = Some(started.elapsed().as_millis());
    if !r.add("readyz", ready, if ready { "ready" } else { "not ready" }) {
        return Ok(r);
    }
    let crl = get("/crl").ok().and_then(|x| Crl::from_value(&x.body).ok());
    let na = PublicKey::from_b64(&manifest.na_public_key).ok();
    let (crl_ok, crl_detail) = match (&crl, na) {
        (Some(c), Some(k)) => crl_check(c, &k, world.scratch_na.as_ref(), manifest.crl_sequence),
        (None, _) => (false, "no CRL".to_string()),
        (_, None) => (false, format!("the manifest's NA key {} is not a public key", manifest.na_public_key)),
    };
    if !r.add("crl", crl_ok, crl_detail) {
        return Ok(r);
    }
    let summary = get("/connectome.json").ok().map(|x| x.body);
    let n = |k: &str| {
        summary
            .as_ref()
            .and_then(|b| b.as_object())
            .and_then(|m| m.get("summary"))
            .and_then(|s| s.as_object())
            .and_then(|s| s.get(k))
            .and_then(|v| v.as_i64())
    };
    let (edges, active, revoked, imported) = manifest.connectome;
    let found =
        (n("recognition_edge_count"), n("active_edge_count"), n("revoked_edge_count"), n("imported_revocation_count"));
    let same = found == (Some(edges), Some(active), Some(revoked), Some(imported));
    if !r.add("connectome", same, {
        let shown = |v: Option<i64>| v.map_or("?".to_string(), |n| n.to_string());
        format!(
            "edges/active/revoked/imported {}/{}/{}/{}, manifest {edges}/{active}/{revoked}/{imported}",
            shown(found.0),
            shown(found.1),
            shown(found.2),
            shown(found.3)
        )
    }) {
        return Ok(r);
    }
    let signer = if world.scratch_na.is_some() { "signed by the scratch NA key" } else { "NA-signed" };
    let (ok, detail) = enroll_sentinel(&client, &sentinel, signer);
    r.add("sentinel_enroll", ok, detail);
    drop(server);
    Ok(r)
}

/// What the ephemeral server is configured with.
struct World {
    genesis_file: PathBuf,
    na_key_file: PathBuf,
    na_key_id: String,
    /// The scratch NA public key, in scratch mode.
    scratch_na: Option<PublicKey>,
}

/// The configured genesis and NA key; or, without the NA key, the `na_signed` check of the restored
/// copy `db` against the genesis NA key and then the scratch world. `None` when `na_signed` failed.
fn prepare_world(
    opts: &DrillOptions,
    r: &mut DrillReport,
    unpacked: &Path,
    db: &Path,
    home: &Path,
    now: DateTime<Utc>,
) -> Result<Option<World>, OpsError> {
    let DrillNaKey::Configured { file, key_id } = &opts.na_key else {
        let (_, backup_genesis) = load_genesis(&unpacked.join("genesis.signed.json"))?;
        let checked = genesis_na_key(&opts.genesis_file, &backup_genesis).and_then(|(key, source)| {
            check_restored_material(db, &key).map(|n| {
                format!("{n} CRL and policy version(s) of the restored database verify with the genesis NA key {} ({source})", key.to_b64())
            })
        });
        let ok = checked.is_ok();
        if !r.add("na_signed", ok, checked.unwrap_or_else(|problem| problem)) {
            return Ok(None);
        }
        let world = write_scratch_world(home, &backup_genesis, now)?;
        return Ok(Some(World {
            genesis_file: world.genesis_file,
            na_key_file: world.na_key_file,
            na_key_id: super::drill_scratch::SCRATCH_NA_KEY_ID.to_string(),
            scratch_na: Some(world.na_public_key),
        }));
    };
    Ok(Some(World {
        genesis_file: opts.genesis_file.clone(),
        na_key_file: file.clone(),
        na_key_id: key_id.clone(),
        scratch_na: None,
    }))
}

/// The served CRL against the backup: its sequence is the manifest's, signed by the genesis NA key
/// `na`, or (a CRL near its `next_update` is re-issued on read, D4) the next one, signed by the
/// serving NA key: `na`, or in scratch mode the scratch NA key.
fn crl_check(crl: &Crl, na: &PublicKey, scratch_na: Option<&PublicKey>, manifest_sequence: i64) -> (bool, String) {
    let by = |k: &PublicKey| crl.check_signatures(std::slice::from_ref(k)).is_valid();
    let restored = crl.sequence == manifest_sequence && by(na);
    let reissued = crl.sequence == manifest_sequence + 1 && by(scratch_na.unwrap_or(na));
    let signer = match (scratch_na, restored, reissued) {
        (None, _, _) => "NA-signed".to_string(),
        (Some(_), true, _) => "the restored CRL, signed by the genesis NA key".to_string(),
        (Some(_), false, true) => "re-issued on read by the scratch NA key (D4)".to_string(),
        (Some(_), false, false) => format!(
            "neither the restored CRL signed by the genesis NA key (sequence {manifest_sequence}) nor its re-issue by the scratch NA key (sequence {})",
            manifest_sequence + 1
        ),
    };
    (restored || reissued, format!("sequence {} (manifest {manifest_sequence}), {signer}", crl.sequence))
}

/// Stores a single-use invite in the scratch copy (never production) so the drill can prove that
/// the restored NA admits a node and signs with the configured key.
fn plant_sentinel_invite(db: &Path, token: &str, now: DateTime<Utc>) -> Result<(), OpsError> {
    let conn = crate::store::direct::open_scratch(db)?;
    let at = crate::model::timestamp::isoformat_utc(now);
    let expires = crate::model::timestamp::isoformat_utc(now + chrono::Duration::hours(1));
    crate::store::invites::insert(
        &conn,
        &crate::store::invites::NewInvite {
            token_id: token,
            assigned_roles_json: "[\"role:client\"]",
            max_validity_hours: 1,
            created_at: &at,
            expires_at: &expires,
        },
    )?;
    Ok(())
}

/// Enrolls a throwaway node with the sentinel invite: `/join` must return a certificate signed by
/// the NA key of the genesis, and a heartbeat must be accepted.
fn enroll_sentinel(client: &NaClient, token: &str, signer: &str) -> (bool, String) {
    let key = crate::crypto::keys::SigningKey::generate();
    let clock = crate::clock::SystemClock;
    let node = crate::client::node::NodeClient::new(client, &key, &clock);
    let cert = match node.join(&crate::client::admin::InviteToken::new(token), 1) {
        Ok(c) => c,
        Err(e) => return (false, format!("join with the sentinel invite failed: {e}")),
    };
    match node.heartbeat(&cert.cert_id, "healthy") {
        Ok(_) => (true, format!("throwaway node joined (certificate {}, {signer}) and sent a heartbeat", cert.cert_id)),
        Err(e) => (false, format!("certificate {} issued but the heartbeat failed: {e}", cert.cert_id)),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    let canon =
        |p: &Path| p.parent().and_then(|d| d.canonicalize().ok()).map(|d| d.join(p.file_name().unwrap_or_default()));
    matches!((canon(a), canon(b)), (Some(x), Some(y)) if x == y)
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Starts `gm serve` on 127.0.0.1:0 for `home` and waits (10 s at most) for its address.
fn start(gm: &Path, home: &Path) -> Result<(Ephemeral, String), String> {
    let mut child = Command::new(gm)
        .args(["serve", "--home"])
        .arg(home)
        .args(["--bind", "127.0.0.1:0"])
        .env_remove("DB_PATH")
        .env_remove("GENESIS_FILE")
        .env_remove("NA_PRIVATE_KEY_FILE")
        .env_remove("OPERATOR_PUBLIC_KEYS_JSON")
        .env_remove("PORT")
        .env("GENESIS_LOG_LEVEL", "ERROR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", gm.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout from gm serve")?;
    let server = Ephemeral(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| "gm serve did not report its address within 10 s".to_string())?;
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .ok_or_else(|| format!("gm serve refused to start: {}", line.trim()))?;
    Ok((server, addr.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::SigningKey;
    use crate::model::timestamp::ModelTime;

    fn crl(sequence: i64, key: &SigningKey) -> Crl {
        let now = Utc::now();
        let mut c = Crl {
            crl_id: "c".into(),
            sequence,
            issued_at: ModelTime::from_utc(now),
            next_update: ModelTime::from_utc(now + chrono::Duration::hours(24)),
            issuer: "na".into(),
            revoked_certificates: Vec::new(),
            signatures: Vec::new(),
        };
        c.sign(key, "na");
        c
    }

    #[test]
    fn a_scratch_key_vouches_only_for_a_re_issue_never_for_the_restored_sequence() {
        let (na, scratch) = (SigningKey::generate(), SigningKey::generate());
        let (n, s) = (na.public_key(), scratch.public_key());
        assert_eq!(crl_check(&crl(4, &na), &n, None, 4), (true, "sequence 4 (manifest 4), NA-signed".into()));
        assert!(crl_check(&crl(5, &na), &n, None, 4).0);
        assert!(!crl_check(&crl(6, &na), &n, None, 4).0);
        assert!(!crl_check(&crl(4, &scratch), &n, None, 4).0);
        let restored = crl_check(&crl(4, &na), &n, Some(&s), 4);
        assert_eq!(restored, (true, "sequence 4 (manifest 4), the restored CRL, signed by the genesis NA key".into()));
        let reissued = crl_check(&crl(5, &scratch), &n, Some(&s), 4);
        assert_eq!(reissued, (true, "sequence 5 (manifest 4), re-issued on read by the scratch NA key (D4)".into()));
        let forged = crl_check(&crl(4, &scratch), &n, Some(&s), 4);
        assert!(!forged.0, "the restored sequence needs the genesis NA key");
        assert!(forged.1.starts_with("sequence 4 (manifest 4), neither the restored CRL signed by the genesis NA key (sequence 4) nor its re-issue by the scratch NA key (sequence 5)"), "{}", forged.1);
        assert!(!crl_check(&crl(5, &SigningKey::generate()), &n, Some(&s), 4).0);
    }
}
