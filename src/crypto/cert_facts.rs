//! The few facts of an X.509 certificate (RFC 5280 §4.1) that `gm readiness` reports and judges a
//! served chain by: the issuer and subject names (as their DER contents, the form rustls keeps
//! trust anchors' subjects in, so a name can be compared byte for byte with a CA's), the subject's
//! common name, the DNS names and IP addresses of the subject alternative names, and the validity
//! window. A minimal DER walk like `cert_expiry.rs`, whose TLV split and time reader it shares.
//!
//! Must not: verify signatures or decide whether a chain is acceptable (readiness judges; rustls
//! verifies). Every length is checked against what is left; anything unexpected is an error naming
//! the field, never a panic.

use chrono::{DateTime, Utc};

use super::cert_expiry::{any_time, tlv, CertParseError};

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const VERSION_TAG: u8 = 0xa0;
const EXTENSIONS_TAG: u8 = 0xa3;
const DNS_NAME: u8 = 0x82;
const IP_ADDRESS: u8 = 0x87;
/// id-at-commonName, 2.5.4.3.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// id-ce-subjectAltName, 2.5.29.17.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// What a certificate says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertFacts {
    /// The issuer name's DER contents (inside its SEQUENCE).
    pub issuer: Vec<u8>,
    /// The subject name's DER contents (inside its SEQUENCE).
    pub subject: Vec<u8>,
    /// The subject's common name, when it has one.
    pub common_name: Option<String>,
    /// The issuer's common name, when it has one.
    pub issuer_common_name: Option<String>,
    /// DNS names and IP addresses of the subject alternative names, in order.
    pub alt_names: Vec<String>,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
}

impl CertFacts {
    /// Issuer and subject are the same name (a root, or any self-issued certificate).
    pub(crate) fn self_issued(&self) -> bool {
        self.issuer == self.subject
    }

    /// The subject in a few words: its common name, else `(no common name)`.
    pub(crate) fn describe(&self) -> String {
        self.common_name.clone().unwrap_or_else(|| "(no common name)".to_string())
    }
}

fn bad(problem: &'static str) -> CertParseError {
    CertParseError { problem }
}

/// One TLV with `tag`: its contents and what follows.
fn expect<'a>(input: &'a [u8], tag: u8, problem: &'static str) -> Result<(&'a [u8], &'a [u8]), CertParseError> {
    match tlv(input) {
        Some((found, contents, rest)) if found == tag => Ok((contents, rest)),
        _ => Err(bad(problem)),
    }
}

/// Reads the facts of the DER certificate `der`.
pub(crate) fn parse(der: &[u8]) -> Result<CertFacts, CertParseError> {
    let (certificate, _) = expect(der, SEQUENCE, "it is not a DER SEQUENCE")?;
    let (tbs, _) = expect(certificate, SEQUENCE, "tbsCertificate is not a SEQUENCE")?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION_TAG) {
        rest = expect(rest, VERSION_TAG, "the version is malformed")?.1;
    }
    rest = tlv(rest).ok_or_else(|| bad("the serial number is truncated"))?.2;
    rest = expect(rest, SEQUENCE, "the signature algorithm is not a SEQUENCE")?.1;
    let (issuer, after) = expect(rest, SEQUENCE, "the issuer is not a SEQUENCE")?;
    let (validity, after) = expect(after, SEQUENCE, "validity is not a SEQUENCE")?;
    let (not_before, after_not_before) = any_time(validity, "notBefore")?;
    let (not_after, _) = any_time(after_not_before, "notAfter")?;
    let (subject, mut rest) = expect(after, SEQUENCE, "the subject is not a SEQUENCE")?;
    rest = expect(rest, SEQUENCE, "the subject public key info is not a SEQUENCE")?.1;
    let mut alt_names = Vec::new();
    while let Some((tag, contents, next)) = tlv(rest) {
        if tag == EXTENSIONS_TAG {
            alt_names = subject_alt_names(contents)?;
        }
        rest = next;
    }
    Ok(CertFacts {
        issuer: issuer.to_vec(),
        subject: subject.to_vec(),
        common_name: common_name(subject),
        issuer_common_name: common_name(issuer),
        alt_names,
        not_before,
        not_after,
    })
}

/// The first common name of a Name's contents (a SEQUENCE OF SET OF AttributeTypeAndValue).
fn common_name(name: &[u8]) -> Option<String> {
    let mut rest = name;
    while let Some((tag, set, next)) = tlv(rest) {
        rest = next;
        if tag != SET {
            continue;
        }
        let mut attrs = set;
        while let Some((SEQUENCE, attr, after)) = tlv(attrs) {
            attrs = after;
            if let Some((OID, oid, value)) = tlv(attr) {
                if oid == COMMON_NAME {
                    let (_, text, _) = tlv(value)?;
                    return Some(String::from_utf8_lossy(text).into_owned());
                }
            }
        }
    }
    None
}

/// The DNS names and IP addresses of the subjectAltName extension in `[3] Extensions`.
fn subject_alt_names(explicit: &[u8]) -> Result<Vec<String>, CertParseError> {
    let (mut extensions, _) = expect(explicit, SEQUENCE, "the extensions are not a SEQUENCE")?;
    while !extensions.is_empty() {
        let (extension, next) = expect(extensions, SEQUENCE, "an extension is not a SEQUENCE")?;
        extensions = next;
        let (oid, mut rest) = expect(extension, OID, "an extension has no identifier")?;
        if oid != SUBJECT_ALT_NAME {
            continue;
        }
        if rest.first() == Some(&BOOLEAN) {
            rest = expect(rest, BOOLEAN, "an extension's critical flag is malformed")?.1;
        }
        let (value, _) = expect(rest, OCTET_STRING, "the subjectAltName value is not an OCTET STRING")?;
        let (mut names, _) = expect(value, SEQUENCE, "the subjectAltName is not a SEQUENCE")?;
        let mut found = Vec::new();
        while !names.is_empty() {
            let (tag, contents, next) = tlv(names).ok_or_else(|| bad("a subjectAltName entry is truncated"))?;
            names = next;
            if tag == DNS_NAME {
                found.push(String::from_utf8_lossy(contents).into_owned());
            } else if tag == IP_ADDRESS {
                if let Ok(v4) = <[u8; 4]>::try_from(contents) {
                    found.push(std::net::Ipv4Addr::from(v4).to_string());
                } else if let Ok(v6) = <[u8; 16]>::try_from(contents) {
                    found.push(std::net::Ipv6Addr::from(v6).to_string());
                }
            }
        }
        return Ok(found);
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::cert_expiry::tests::der;

    fn name(cn: &str) -> Vec<u8> {
        let attr = der(SEQUENCE, &[der(OID, COMMON_NAME), der(0x0c, cn.as_bytes())].concat());
        der(SEQUENCE, &der(SET, &attr))
    }

    fn certificate(issuer: &str, subject: &str, sans: &[Vec<u8>]) -> Vec<u8> {
        let mut tbs = der(VERSION_TAG, &der(0x02, &[2]));
        tbs.extend(der(0x02, &[0x01]));
        tbs.extend(der(SEQUENCE, &der(OID, &[0x2a, 0x86])));
        tbs.extend(name(issuer));
        tbs.extend(der(SEQUENCE, &[der(0x17, b"250101000000Z"), der(0x17, b"491231235959Z")].concat()));
        tbs.extend(name(subject));
        tbs.extend(der(SEQUENCE, &der(0x03, &[0, 1, 2])));
        let san = der(SEQUENCE, &sans.concat());
        let ext = der(SEQUENCE, &[der(OID, SUBJECT_ALT_NAME), der(BOOLEAN, &[0]), der(OCTET_STRING, &san)].concat());
        let other = der(SEQUENCE, &[der(OID, &[0x55, 0x1d, 0x13]), der(OCTET_STRING, &der(SEQUENCE, &[]))].concat());
        tbs.extend(der(EXTENSIONS_TAG, &der(SEQUENCE, &[other, ext].concat())));
        der(SEQUENCE, &[der(SEQUENCE, &tbs), der(SEQUENCE, &[]), der(0x03, &[0])].concat())
    }

    #[test]
    fn reads_names_alt_names_and_validity() {
        let sans = [der(DNS_NAME, b"na.example.org"), der(IP_ADDRESS, &[127, 0, 0, 1]), der(0x86, b"https://x")];
        let c = parse(&certificate("Example CA", "na.example.org", &sans)).unwrap();
        assert_eq!(c.common_name.as_deref(), Some("na.example.org"));
        assert_eq!(c.issuer_common_name.as_deref(), Some("Example CA"));
        assert_eq!(c.alt_names, ["na.example.org", "127.0.0.1"]);
        assert_eq!(c.not_before.to_rfc3339(), "2025-01-01T00:00:00+00:00");
        assert_eq!(c.not_after.to_rfc3339(), "2049-12-31T23:59:59+00:00");
        assert!(!c.self_issued());
        assert!(parse(&certificate("Root", "Root", &[])).unwrap().self_issued());
        assert_eq!(c.issuer, name("Example CA")[2..].to_vec());
    }

    #[test]
    fn truncated_certificates_are_errors_not_panics() {
        let good = certificate("Example CA", "na", &[der(DNS_NAME, b"na")]);
        for cut in 0..good.len() {
            assert!(parse(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(parse(b"\x02\x01\x00").unwrap_err().problem, "it is not a DER SEQUENCE");
    }
}
