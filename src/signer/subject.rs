//! What a sign request asks the signer to sign, read through the model exactly as the NA built it:
//! the kind, the object's id, the canonical bytes the signature covers and the fields the signer's
//! policy judges. It decides nothing (that is [`super::policy`]) and keeps no state.

use chrono::{DateTime, Utc};

use crate::crypto::digest::sha256_hex;
use crate::json::{parse, ParseLimits};
use crate::model::attestation::MembershipAttestation;
use crate::model::certificate::JoinCertificate;
use crate::model::crl::Crl;
use crate::model::feed::RevocationFeed;
use crate::model::policy::PolicyManifest;
use crate::model::treaty::RecognitionTreaty;
use crate::model::{Kind, SignedObject};

/// The kinds a remote signer signs for an NA (never a genesis, which the root key signs, nor an
/// agent descriptor, which a node signs).
pub(crate) const SIGNABLE: [Kind; 6] =
    [Kind::Cert, Kind::Crl, Kind::Policy, Kind::Attestation, Kind::Treaty, Kind::Feed];

/// The signable kind named `name` (`cert`, `crl`, …).
pub(crate) fn signable_kind(name: &str) -> Option<Kind> {
    Kind::from_name(name).filter(|k| SIGNABLE.contains(k))
}

/// An object read for signing.
#[derive(Debug, Clone)]
pub(crate) struct Subject {
    /// Its kind.
    pub kind: Kind,
    /// `cert_id`, `crl_id`, `policy_id`, `attestation_id`, `treaty_id` or `feed_id`.
    pub object_id: String,
    /// The sequence number of a CRL or a feed.
    pub sequence: Option<i64>,
    /// The bytes the signature covers (what `SignedObject::sign` signs).
    pub canonical: Vec<u8>,
    /// `issued_at`.
    pub issued_at: DateTime<Utc>,
    /// The end of its validity: `expires_at`, or a CRL's `next_update`.
    pub valid_until: Option<DateTime<Utc>>,
    /// The roles a certificate grants (empty for other kinds).
    pub roles: Vec<String>,
    /// A certificate's `network_name`.
    pub network_name: Option<String>,
    /// The certificate ids a CRL lists (empty for other kinds).
    pub revoked: Vec<String>,
}

impl Subject {
    /// The sha256 (hex) of the canonical bytes.
    pub(crate) fn sha256(&self) -> String {
        sha256_hex(&self.canonical)
    }
}

/// Reads `object` (the unsigned object's JSON text) as `kind` through the model's schema.
pub(crate) fn read_subject(kind: Kind, object: &str) -> Result<Subject, String> {
    let value =
        parse(object.as_bytes(), &ParseLimits::default()).map_err(|e| format!("the object is not JSON: {e}"))?;
    let model = |e: crate::model::ModelError| format!("the object is not a valid {}: {e}", kind.model_name());
    let time = |t: &crate::model::timestamp::ModelTime| t.to_utc();
    let subject = match kind {
        Kind::Cert => {
            let c = JoinCertificate::from_value(&value).map_err(model)?;
            Subject {
                kind,
                object_id: c.cert_id.clone(),
                sequence: None,
                canonical: c.canonical_bytes(),
                issued_at: time(&c.issued_at),
                valid_until: Some(time(&c.expires_at)),
                roles: c.roles.clone(),
                network_name: Some(c.network_name.clone()),
                revoked: Vec::new(),
            }
        }
        Kind::Crl => {
            let c = Crl::from_value(&value).map_err(model)?;
            let mut s = plain(kind, c.crl_id.clone(), c.canonical_bytes(), time(&c.issued_at));
            s.sequence = Some(c.sequence);
            s.valid_until = Some(time(&c.next_update));
            s.revoked = c.revoked_certificates.iter().map(|r| r.certificate_id.clone()).collect();
            s
        }
        Kind::Policy => {
            let p = PolicyManifest::from_value(&value).map_err(model)?;
            plain(kind, p.policy_id.clone(), p.canonical_bytes(), time(&p.issued_at))
        }
        Kind::Attestation => {
            let a = MembershipAttestation::from_value(&value).map_err(model)?;
            let mut s = plain(kind, a.attestation_id.clone(), a.canonical_bytes(), time(&a.issued_at));
            s.valid_until = Some(time(&a.expires_at));
            s
        }
        Kind::Treaty => {
            let t = RecognitionTreaty::from_value(&value).map_err(model)?;
            let mut s = plain(kind, t.treaty_id.clone(), t.canonical_bytes(), time(&t.issued_at));
            s.valid_until = Some(time(&t.expires_at));
            s
        }
        Kind::Feed => {
            let f = RevocationFeed::from_value(&value).map_err(model)?;
            let mut s = plain(kind, f.feed_id.clone(), f.canonical_bytes(), time(&f.issued_at));
            s.sequence = Some(f.sequence);
            s
        }
        Kind::Genesis | Kind::Agent => return Err(format!("a remote signer never signs a {}", kind.model_name())),
    };
    Ok(subject)
}

fn plain(kind: Kind, object_id: String, canonical: Vec<u8>, issued_at: DateTime<Utc>) -> Subject {
    Subject {
        kind,
        object_id,
        sequence: None,
        canonical,
        issued_at,
        valid_until: None,
        roles: Vec::new(),
        network_name: None,
        revoked: Vec::new(),
    }
}
