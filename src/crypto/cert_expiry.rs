//! Reads `notAfter` from an X.509 certificate (RFC 5280 §4.1): a minimal DER walk to
//! `tbsCertificate.validity`, nothing else. rustls verifies certificates but does not expose their
//! validity dates, and a full X.509 parser would be a large dependency for one field. Its TLV split
//! and time reader are shared with `cert_facts.rs` (the few more fields readiness reports).
//!
//! The walk trusts nothing: every length is checked against what is left, and anything unexpected
//! is an error naming the field, never a panic.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION_TAG: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// Why a certificate's expiry could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertParseError {
    /// What was wrong, in plain words.
    pub problem: &'static str,
}

impl std::fmt::Display for CertParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot read the certificate's expiry: {}", self.problem)
    }
}

impl std::error::Error for CertParseError {}

fn bad(problem: &'static str) -> CertParseError {
    CertParseError { problem }
}

/// The `notAfter` instant of a DER-encoded certificate.
pub(crate) fn not_after(der: &[u8]) -> Result<DateTime<Utc>, CertParseError> {
    let (certificate, _) = element(der, SEQUENCE, "certificate")?;
    let (tbs, _) = element(certificate, SEQUENCE, "tbsCertificate")?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION_TAG) {
        rest = element(rest, VERSION_TAG, "version")?.1;
    }
    rest = element(rest, INTEGER, "serialNumber")?.1;
    rest = element(rest, SEQUENCE, "signature algorithm")?.1;
    rest = element(rest, SEQUENCE, "issuer")?.1;
    let (validity, _) = element(rest, SEQUENCE, "validity")?;
    let (_, after_not_before) = any_time(validity, "notBefore")?;
    let (not_after, _) = any_time(after_not_before, "notAfter")?;
    Ok(not_after)
}

/// One TLV with tag `tag`: its contents and what follows it.
fn element<'a>(input: &'a [u8], tag: u8, field: &'static str) -> Result<(&'a [u8], &'a [u8]), CertParseError> {
    let (found, contents, rest) = tlv(input).ok_or_else(|| bad(field_truncated(field)))?;
    if found != tag {
        return Err(bad(field_unexpected(field)));
    }
    Ok((contents, rest))
}

/// A UTCTime or GeneralizedTime.
pub(crate) fn any_time<'a>(input: &'a [u8], field: &'static str) -> Result<(DateTime<Utc>, &'a [u8]), CertParseError> {
    let (tag, contents, rest) = tlv(input).ok_or_else(|| bad(field_truncated(field)))?;
    let text = std::str::from_utf8(contents).map_err(|_| bad("a validity time is not ASCII"))?;
    let time = match tag {
        UTC_TIME => parse_utc_time(text),
        GENERALIZED_TIME => parse_generalized_time(text),
        _ => return Err(bad(field_unexpected(field))),
    };
    Ok((time.ok_or_else(|| bad("a validity time is malformed"))?, rest))
}

/// Splits the first DER TLV off `input`: tag, contents, rest. Definite lengths only (DER).
pub(crate) fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, after_tag) = input.split_first()?;
    let (&first, mut after_len) = after_tag.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let bytes = after_len.get(..count)?;
        after_len = after_len.get(count..)?;
        bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    let contents = after_len.get(..len)?;
    Some((tag, contents, after_len.get(len..)?))
}

/// `YYMMDDHHMMSSZ`; RFC 5280 §4.1.2.5.1: YY ≥ 50 is 19YY, else 20YY.
fn parse_utc_time(text: &str) -> Option<DateTime<Utc>> {
    let digits = text.strip_suffix('Z')?;
    if digits.len() != 12 {
        return None;
    }
    let yy: i32 = digits.get(..2)?.parse().ok()?;
    let year = if yy >= 50 { 1900 + yy } else { 2000 + yy };
    datetime(year, digits.get(2..)?)
}

/// `YYYYMMDDHHMMSSZ` (RFC 5280 forbids fractions here).
fn parse_generalized_time(text: &str) -> Option<DateTime<Utc>> {
    let digits = text.strip_suffix('Z')?;
    if digits.len() != 14 {
        return None;
    }
    datetime(digits.get(..4)?.parse().ok()?, digits.get(4..)?)
}

/// `MMDDHHMMSS` after the year.
fn datetime(year: i32, rest: &str) -> Option<DateTime<Utc>> {
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let two = |i: usize| rest.get(i..i + 2).and_then(|s| s.parse::<u32>().ok());
    let date = NaiveDate::from_ymd_opt(year, two(0)?, two(2)?)?;
    let time = NaiveTime::from_hms_opt(two(4)?, two(6)?, two(8)?)?;
    Some(NaiveDateTime::new(date, time).and_utc())
}

fn field_truncated(field: &'static str) -> &'static str {
    match field {
        "certificate" => "the certificate is truncated",
        "tbsCertificate" => "tbsCertificate is truncated",
        "validity" => "validity is truncated",
        "notBefore" | "notAfter" => "a validity time is truncated",
        _ => "a field before validity is truncated",
    }
}

fn field_unexpected(field: &'static str) -> &'static str {
    match field {
        "certificate" => "it is not a DER SEQUENCE",
        "tbsCertificate" => "tbsCertificate is not a SEQUENCE",
        "validity" => "validity is not a SEQUENCE",
        "notBefore" | "notAfter" => "a validity time is neither UTCTime nor GeneralizedTime",
        _ => "a field before validity has an unexpected tag",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Wraps `contents` in a TLV with `tag` (long-form length when needed).
    pub(crate) fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if contents.len() < 0x80 {
            out.push(contents.len() as u8);
        } else {
            out.extend([0x82, (contents.len() >> 8) as u8, contents.len() as u8]);
        }
        out.extend_from_slice(contents);
        out
    }

    fn certificate(not_before: Vec<u8>, not_after: Vec<u8>, padding: usize) -> Vec<u8> {
        let mut tbs = der(VERSION_TAG, &der(INTEGER, &[2]));
        tbs.extend(der(INTEGER, &[0x01, 0x02]));
        tbs.extend(der(SEQUENCE, &der(0x06, &[0x2a, 0x86])));
        tbs.extend(der(SEQUENCE, &vec![0x55; padding]));
        tbs.extend(der(SEQUENCE, &[not_before, not_after].concat()));
        der(SEQUENCE, &der(SEQUENCE, &tbs))
    }

    #[test]
    fn reads_utc_and_generalized_times() {
        let cert = certificate(der(UTC_TIME, b"250101000000Z"), der(UTC_TIME, b"491231235959Z"), 3);
        assert_eq!(not_after(&cert).unwrap().to_rfc3339(), "2049-12-31T23:59:59+00:00");
        let cert = certificate(der(UTC_TIME, b"990101000000Z"), der(GENERALIZED_TIME, b"20600102030405Z"), 300);
        assert_eq!(not_after(&cert).unwrap().to_rfc3339(), "2060-01-02T03:04:05+00:00");
        assert_eq!(parse_utc_time("500101000000Z").unwrap().to_rfc3339(), "1950-01-01T00:00:00+00:00");
    }

    #[test]
    fn malformed_certificates_are_errors_not_panics() {
        let good = certificate(der(UTC_TIME, b"250101000000Z"), der(UTC_TIME, b"260101000000Z"), 3);
        for cut in 0..good.len() {
            assert!(not_after(&good[..cut]).is_err(), "cut at {cut}");
        }
        let bad_time = certificate(der(UTC_TIME, b"250101000000Z"), der(UTC_TIME, b"261301000000Z"), 3);
        assert_eq!(not_after(&bad_time).unwrap_err().problem, "a validity time is malformed");
        assert_eq!(not_after(b"\x02\x01\x00").unwrap_err().problem, "it is not a DER SEQUENCE");
    }
}
