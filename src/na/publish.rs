//! Publishing NA-signed objects: the default policy, published and rolled-back policies, and CRL
//! versions (the empty first CRL, revocations, and the freshness re-issue of `deviations.md` D4).
//! Each publication is one write job: the object is signed and stored in the same transaction that
//! decides it, so a CRL never lands without its revocation nor the reverse.

use crate::store::Connection;
use chrono::{DateTime, Duration, Utc};

use crate::crypto::canonical::{to_string_with, Style};
use crate::crypto::digest::uuid4;
use crate::crypto::keys::SigningKey;
use crate::json::{parse_str, Value};
use crate::model::crl::{Crl, RevokedCertificate};
use crate::model::policy::PolicyManifest;
use crate::model::timestamp::{isoformat_utc, ModelTime};
use crate::model::SignedObject;
use crate::store::{agents, certs, crl, policy, StoreError};

use super::audit;
use super::remote_signer::RemoteSigner;
pub(crate) use super::sign_error::SignError;

/// A CRL is re-issued when less than this remains before its `next_update` (D4).
pub(crate) const CRL_REFRESH_BEFORE: Duration = Duration::hours(12);

/// The NA's signing capability, owned so a write job can carry it onto the writer thread: the NA
/// key itself (managed and split custody) or the customer's remote signer (customer-held).
#[derive(Clone)]
pub(crate) struct Signer {
    backend: Backend,
    /// NA key id label.
    pub key_id: String,
}

/// Where NA signatures come from.
#[derive(Clone)]
pub(crate) enum Backend {
    /// The NA key, loaded into this process.
    Local(std::sync::Arc<SigningKey>),
    /// The customer's `gm signer run`, connected to this NA.
    Remote(std::sync::Arc<RemoteSigner>),
}

impl Signer {
    /// A signer over a loaded NA key.
    #[cfg(test)]
    pub(crate) fn local(key: SigningKey, key_id: String) -> Signer {
        Signer { backend: Backend::Local(std::sync::Arc::new(key)), key_id }
    }

    /// A signer over `backend`.
    pub(crate) fn new(backend: Backend, key_id: String) -> Signer {
        Signer { backend, key_id }
    }

    /// Appends the NA signature to `object`; `purpose` and `request_id` go to the remote signer's
    /// log.
    pub(crate) fn sign<T: SignedObject>(
        &self,
        object: &mut T,
        purpose: &str,
        request_id: &str,
    ) -> Result<(), SignError> {
        match &self.backend {
            Backend::Local(key) => {
                object.sign(key, &self.key_id);
                Ok(())
            }
            Backend::Remote(remote) => {
                let sig = remote.sign(object, purpose, request_id)?;
                object.signatures_mut().push(crate::model::Signature { key_id: self.key_id.clone(), sig });
                Ok(())
            }
        }
    }

    /// Signs a new CRL version: numbered above the highest sequence the remote signer reports
    /// having signed (a version it signed whose answer was lost must not be re-used with other
    /// content), and renumbered once if the signer refuses for that reason.
    pub(crate) fn sign_crl(&self, crl: &mut Crl, purpose: &str) -> Result<(), SignError> {
        let Backend::Remote(remote) = &self.backend else {
            return self.sign(crl, purpose, "");
        };
        let floor = |crl: &Crl| remote.crl_high().map_or(crl.sequence, |high| crl.sequence.max(high + 1));
        crl.sequence = floor(crl);
        match self.sign(crl, purpose, "") {
            Err(SignError::Refused(_)) if floor(crl) > crl.sequence => {
                crl.sequence = floor(crl);
                self.sign(crl, purpose, "")
            }
            other => other,
        }
    }
}

/// Declaration-order rendering used for `*_json` columns.
pub(crate) fn stored_json(value: &Value) -> String {
    to_string_with(value, &Style::DECLARATION_ORDER)
}

/// Reads a stored model object.
pub(crate) fn parse_stored<T: SignedObject>(json: &str, table: &'static str, key: &str) -> Result<T, StoreError> {
    let value =
        parse_str(json).map_err(|e| StoreError::CorruptRow { table, key: key.to_string(), problem: e.to_string() })?;
    T::from_value(&value).map_err(|e| StoreError::CorruptRow { table, key: key.to_string(), problem: e.to_string() })
}

/// The default policy of `/policy` (`na-wire.md` §7.5).
pub(crate) fn default_policy(
    network_name: &str,
    network_version: &str,
    signer: &Signer,
    now: DateTime<Utc>,
) -> Result<PolicyManifest, SignError> {
    let mut manifest = PolicyManifest {
        policy_id: format!("policy-{network_name}-{network_version}"),
        issued_at: ModelTime::from_utc(now),
        issued_by: signer.key_id.clone(),
        min_client_version: "0.1.0".to_string(),
        allowed_ports: vec![443, 8443],
        allowed_services: vec!["service-1".to_string(), "service-2".to_string()],
        preferred_transports: vec!["quic".to_string(), "wireguard".to_string()],
        max_hops: 6,
        signatures: Vec::new(),
    };
    signer.sign(&mut manifest, "default-policy", "")?;
    Ok(manifest)
}

/// Stores `manifest` as the only active policy.
pub(crate) fn activate_policy(
    conn: &Connection,
    manifest: &PolicyManifest,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    policy::activate_new(conn, &manifest.policy_id, &stored_json(&manifest.to_value()), &isoformat_utc(now))
}

/// The active CRL, if one is stored.
pub(crate) fn active_crl(conn: &Connection) -> Result<Option<Crl>, StoreError> {
    match crl::active(conn)? {
        Some((seq, json)) => Ok(Some(parse_stored::<Crl>(&json, "crl_versions", &seq.to_string())?)),
        None => Ok(None),
    }
}

/// The next CRL version after `previous` (or the empty sequence-0 CRL), unsigned: the caller adds
/// its entries, then signs once ([`Signer::sign_crl`]).
pub(crate) fn unsigned_next(previous: Option<&Crl>, key_id: &str, now: DateTime<Utc>) -> Crl {
    Crl {
        crl_id: uuid4(),
        sequence: previous.map_or(0, |p| p.sequence + 1),
        issued_at: ModelTime::from_utc(now),
        next_update: ModelTime::from_utc(now + Duration::hours(24)),
        issuer: previous.map_or_else(|| key_id.to_string(), |p| p.issuer.clone()),
        revoked_certificates: previous.map(|p| p.revoked_certificates.clone()).unwrap_or_default(),
        signatures: Vec::new(),
    }
}

/// Signs `crl` and stores it as the only active version.
fn sign_and_activate(
    conn: &Connection,
    mut crl: Crl,
    signer: &Signer,
    purpose: &str,
    now: DateTime<Utc>,
) -> Result<Crl, StoreError> {
    signer.sign_crl(&mut crl, purpose)?;
    activate_crl(conn, &crl, now)?;
    Ok(crl)
}

/// At startup: stores the first (empty) CRL when none exists, so a database gm has served always
/// holds a signed CRL (backup verification requires one, finding F4); and, after a restore
/// (`floor` is set), when revoked certificates are missing from the active CRL (revocations
/// carried over the restore) or `floor`
/// (the replaced database's highest sequence) is not below the stored ones, issues the next
/// version listing them above both. Returns `(sequence, entries added)` when it issued one.
pub(crate) fn reconcile_crl(
    conn: &Connection,
    signer: &Signer,
    floor: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Option<(i64, usize)>, StoreError> {
    let highest = crl::max_sequence(conn)?;
    let active = active_crl(conn)?;
    let stored = active.is_some();
    let current = active.unwrap_or_else(|| unsigned_next(None, &signer.key_id, now));
    let listed: std::collections::BTreeSet<&str> =
        current.revoked_certificates.iter().map(|e| e.certificate_id.as_str()).collect();
    // Only after a restore: an upstream database may hold revoked rows its CRL never listed, and
    // gm serves such a database unchanged.
    let missing: Vec<certs::RevokedCert> = match floor {
        Some(_) => certs::revoked(conn)?.into_iter().filter(|(id, _, _)| !listed.contains(id.as_str())).collect(),
        None => Vec::new(),
    };
    let below_floor = floor.is_some_and(|f| highest < f || (highest == f && !stored));
    if missing.is_empty() && !below_floor {
        if !stored {
            sign_and_activate(conn, current, signer, "first-crl", now)?;
        }
        return Ok(None);
    }
    let mut next = unsigned_next(Some(&current), &signer.key_id, now);
    next.sequence = highest.max(floor.unwrap_or(0)).max(current.sequence) + 1;
    for (id, at, reason) in &missing {
        let at = at.as_deref().and_then(crate::model::timestamp::parse_db_time).unwrap_or(now);
        next.revoked_certificates.push(RevokedCertificate {
            certificate_id: id.clone(),
            revoked_at: ModelTime::from_utc(at),
            reason: reason.clone().unwrap_or_else(|| "unspecified".to_string()),
            issuer: signer.key_id.clone(),
        });
    }
    let next = sign_and_activate(conn, next, signer, "crl-after-restore", now)?;
    Ok(Some((next.sequence, missing.len())))
}

/// Signs and stores `crl` as the only active version.
pub(crate) fn activate_crl(conn: &Connection, crl: &Crl, now: DateTime<Utc>) -> Result<(), StoreError> {
    crl::activate_new(conn, crl.sequence, &stored_json(&crl.to_value()), &isoformat_utc(now))
}

/// `GET /crl`: the active CRL; creates the empty one when none exists and re-issues one that is
/// within [`CRL_REFRESH_BEFORE`] of its `next_update` (D4). Runs inside a write job.
pub(crate) fn current_crl(conn: &Connection, signer: &Signer, now: DateTime<Utc>) -> Result<Crl, StoreError> {
    let Some(current) = active_crl(conn)? else {
        return sign_and_activate(conn, unsigned_next(None, &signer.key_id, now), signer, "first-crl", now);
    };
    if current.next_update.to_utc() - now >= CRL_REFRESH_BEFORE {
        return Ok(current);
    }
    let fresh =
        sign_and_activate(conn, unsigned_next(Some(&current), &signer.key_id, now), signer, "crl-refresh", now)?;
    log::info!(target: "gm::crl", "re-issued CRL as sequence {} (the previous one reached its next_update window, D4)", fresh.sequence);
    Ok(fresh)
}

/// True when the stored CRL needs no write to be served (exists and is fresh).
pub(crate) fn crl_is_fresh(crl: &Crl, now: DateTime<Utc>) -> bool {
    now <= crl_fresh_until(crl)
}

/// When `crl` enters its re-issue window ([`CRL_REFRESH_BEFORE`] before its `next_update`).
pub(crate) fn crl_fresh_until(crl: &Crl) -> DateTime<Utc> {
    crl.next_update.to_utc() - CRL_REFRESH_BEFORE
}

/// A revocation decided by `POST /admin/revoke`.
pub(crate) struct Revocation {
    /// The certificate named in the request.
    pub cert_id: String,
    /// The reason.
    pub reason: String,
    /// Client address (audit).
    pub remote_addr: String,
    /// Operator key id (audit).
    pub operator_key_id: String,
}

/// Revokes `r.cert_id` and every unrevoked certificate of its renewal chain (D5) under one new
/// CRL version; a certificate already listed only escalates its stored reason to `key_compromise`
/// (D12). Returns the CRL `(sequence, length)`. Runs inside a write job.
pub(crate) fn revoke(
    conn: &Connection,
    r: &Revocation,
    signer: &Signer,
    now: DateTime<Utc>,
) -> Result<(i64, usize), StoreError> {
    let current = active_crl(conn)?.unwrap_or_else(|| unsigned_next(None, &signer.key_id, now));
    let listed = |crl: &Crl, id: &str| crl.revoked_certificates.iter().any(|e| e.certificate_id == id);
    let at = isoformat_utc(now);
    let chain = certs::renewal_chain(conn, &r.cert_id)?;
    let (sequence, count) = if listed(&current, &r.cert_id) {
        if r.reason == "key_compromise" {
            if let Some(row) = chain.first().filter(|c| c.revocation_reason.as_deref() != Some("key_compromise")) {
                certs::set_revocation_reason(conn, &row.cert_id, "key_compromise")?;
            }
        }
        (current.sequence, current.revoked_certificates.len())
    } else {
        let mut next = unsigned_next(Some(&current), &signer.key_id, now);
        for row in &chain {
            let is_target = row.cert_id == r.cert_id;
            if !is_target && row.status == "revoked" {
                continue;
            }
            certs::mark_revoked(conn, &row.cert_id, &at, &r.reason)?;
            if !listed(&next, &row.cert_id) {
                next.revoked_certificates.push(RevokedCertificate {
                    certificate_id: row.cert_id.clone(),
                    revoked_at: ModelTime::from_utc(now),
                    reason: r.reason.clone(),
                    issuer: signer.key_id.clone(),
                });
            }
        }
        let next = sign_and_activate(conn, next, signer, "revoke", now)?;
        (next.sequence, next.revoked_certificates.len())
    };
    let d = audit::details(vec![
        ("cert_id", Value::from(r.cert_id.as_str())),
        ("crl_sequence", Value::from(sequence)),
        ("operator_key_id", Value::from(r.operator_key_id.as_str())),
        ("reason", Value::from(r.reason.as_str())),
        ("remote_addr", Value::from(r.remote_addr.as_str())),
    ]);
    audit::write(conn, "certificate_revoked", d, now)?;
    if let Some(row) = chain.first() {
        agents::delete(conn, &row.node_public_key)?;
    }
    Ok((sequence, count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{OpenMode, Store};

    fn revoked_cert(c: &Connection, id: &str) -> Result<(), StoreError> {
        certs::insert(
            c,
            &certs::NewCert {
                cert_id: id.to_string(),
                node_public_key: format!("key-{id}"),
                cert_json: "{}".to_string(),
                roles_json: "[]".to_string(),
                issued_at: "2026-01-01T00:00:00+00:00".to_string(),
                expires_at: "2099-01-01T00:00:00+00:00".to_string(),
                remote_addr: "127.0.0.1".to_string(),
                renewed_from: None,
                max_validity_hours: None,
            },
        )?;
        certs::mark_revoked(c, id, "2026-01-02T00:00:00+00:00", "key_compromise").map(|_| ())
    }

    /// F4: the first CRL is stored at start; revocations missing from the CRL are listed only
    /// after a restore (floor given), above the floor, once.
    #[test]
    fn reconcile_stores_the_first_crl_and_lists_carried_revocations_only_after_a_restore() {
        let store =
            Store::open(std::path::Path::new(":memory:"), OpenMode::Serve, "2026-01-01T00:00:00+00:00").unwrap();
        let key = SigningKey::generate();
        let signer = Signer::local(key.clone(), "na-test".into());
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z").unwrap().to_utc();
        let run = |floor: Option<i64>| {
            let s = signer.clone();
            store.write(move |c| reconcile_crl(c, &s, floor, now)).unwrap()
        };
        assert_eq!(run(None), None);
        assert_eq!(store.read(crl::active_sequence).unwrap(), 0, "the first CRL is stored");
        store.write(|c| revoked_cert(c, "c-1")).unwrap();
        assert_eq!(run(None), None, "an upstream database is served unchanged");
        assert_eq!(run(Some(3)), Some((4, 1)), "after a restore: above the floor, the revocation listed");
        let (_, json) = store.read(crl::active).unwrap().unwrap();
        let crl = parse_stored::<Crl>(&json, "crl_versions", "4").unwrap();
        assert_eq!(crl.revoked_certificates.len(), 1);
        assert_eq!(crl.revoked_certificates[0].certificate_id, "c-1");
        assert_eq!(crl.revoked_certificates[0].reason, "key_compromise");
        assert!(crl.check_signatures(&[key.public_key()]).is_valid());
        assert_eq!(run(Some(3)), None, "a second start changes nothing");
    }
}
