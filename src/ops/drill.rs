//! Restore drills (`operations.md` §2.6): prove that a backup brings the sovereign back, without
//! touching production. The backup is verified, restored into a fresh scratch folder (asserted to
//! differ from the production database), served by an ephemeral `gm serve` on 127.0.0.1:0 with the
//! configured genesis and NA key, and checked from outside: `/healthz`, `/readyz`, `/crl` (NA
//! signature, sequence against the manifest) and `/connectome.json` (summary against the
//! manifest); finally a throwaway node joins with a sentinel invite planted in the scratch copy
//! (proving the restored NA admits nodes and signs with the configured key) and sends a heartbeat.
//! The report carries the time to ready (RTO) and the backup's age (RPO).

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
use super::backup::Scratch;
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
    /// The configured NA private key.
    pub na_key_file: PathBuf,
    /// The configured NA key id.
    pub na_key_id: String,
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
    let sentinel = crate::crypto::digest::uuid4();
    plant_sentinel_invite(&db, &sentinel, now)?;
    let config = format!(
        "[na]\ngenesis_file = {:?}\nna_private_key_file = {:?}\nna_key_id = {:?}\ndb_path = \"na.db\"\noperator_keys_file = \"operators.json\"\n",
        absolute(&opts.genesis_file).display().to_string(),
        absolute(&opts.na_key_file).display().to_string(),
        opts.na_key_id
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
    let crl_ok = match (&crl, na) {
        // A CRL near its next_update is re-issued on read (D4): same entries, next sequence.
        (Some(c), Some(k)) => {
            c.check_signatures(&[k]).is_valid()
                && (c.sequence == manifest.crl_sequence || c.sequence == manifest.crl_sequence + 1)
        }
        _ => false,
    };
    let crl_detail = crl.as_ref().map_or("no CRL".to_string(), |c| {
        format!("sequence {} (manifest {}), NA-signed", c.sequence, manifest.crl_sequence)
    });
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
    let (ok, detail) = enroll_sentinel(&client, &sentinel);
    r.add("sentinel_enroll", ok, detail);
    drop(server);
    Ok(r)
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
fn enroll_sentinel(client: &NaClient, token: &str) -> (bool, String) {
    let key = crate::crypto::keys::SigningKey::generate();
    let clock = crate::clock::SystemClock;
    let node = crate::client::node::NodeClient::new(client, &key, &clock);
    let cert = match node.join(&crate::client::admin::InviteToken::new(token), 1) {
        Ok(c) => c,
        Err(e) => return (false, format!("join with the sentinel invite failed: {e}")),
    };
    match node.heartbeat(&cert.cert_id, "healthy") {
        Ok(_) => {
            (true, format!("throwaway node joined (certificate {}, NA-signed) and sent a heartbeat", cert.cert_id))
        }
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
