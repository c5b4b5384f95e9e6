//! CertificateRevocationList (`na-wire.md` §7.6): cumulative, append-only, one signed version per
//! sequence; nodes verify `signatures[0]`.

use crate::json::{Map, Value};

use super::fields::{object, time_value, Fields};
use super::timestamp::ModelTime;
use super::{Kind, ModelError, Signature, SignedObject};

const MODEL: &str = "CertificateRevocationList";

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct RevokedCertificate {
    /// The revoked `cert_id`.
    pub certificate_id: String,
    /// Revocation time.
    pub revoked_at: ModelTime,
    /// Revocation reason.
    pub reason: String,
    /// NA key id.
    pub issuer: String,
}

/// A certificate revocation list.
#[derive(Debug, Clone, PartialEq)]
pub struct Crl {
    /// UUID4 per version.
    pub crl_id: String,
    /// 0 for the initial empty CRL, +1 per version.
    pub sequence: i64,
    /// Creation time of this version.
    pub issued_at: ModelTime,
    /// `issued_at` + 24 h.
    pub next_update: ModelTime,
    /// Issuer key id.
    pub issuer: String,
    /// Revoked certificates, in revocation order.
    pub revoked_certificates: Vec<RevokedCertificate>,
    /// NA signatures.
    pub signatures: Vec<Signature>,
}

impl SignedObject for Crl {
    const KIND: Kind = Kind::Crl;

    fn from_value(value: &Value) -> Result<Self, ModelError> {
        let f = Fields::of(MODEL, value)?;
        Ok(Crl {
            crl_id: f.str("crl_id")?,
            sequence: f.int("sequence")?,
            issued_at: f.time("issued_at")?,
            next_update: f.time("next_update")?,
            issuer: f.str("issuer")?,
            revoked_certificates: f.list_of("revoked_certificates", |r| {
                Ok(RevokedCertificate {
                    certificate_id: r.str("certificate_id")?,
                    revoked_at: r.time("revoked_at")?,
                    reason: r.str("reason")?,
                    issuer: r.str("issuer")?,
                })
            })?,
            signatures: f.signatures()?,
        })
    }

    fn body(&self) -> Map {
        object(vec![
            ("crl_id", Value::Str(self.crl_id.clone())),
            ("sequence", Value::from(self.sequence)),
            ("issued_at", time_value(&self.issued_at)),
            ("next_update", time_value(&self.next_update)),
            ("issuer", Value::Str(self.issuer.clone())),
            (
                "revoked_certificates",
                Value::Array(
                    self.revoked_certificates
                        .iter()
                        .map(|r| {
                            Value::Object(object(vec![
                                ("certificate_id", Value::Str(r.certificate_id.clone())),
                                ("revoked_at", time_value(&r.revoked_at)),
                                ("reason", Value::Str(r.reason.clone())),
                                ("issuer", Value::Str(r.issuer.clone())),
                            ]))
                        })
                        .collect(),
                ),
            ),
        ])
    }

    fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    fn signatures_mut(&mut self) -> &mut Vec<Signature> {
        &mut self.signatures
    }
}
