//! Digests and encodings: SHA-256, hex, standard base64 (RFC 4648 §4, padded) as upstream uses them.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha256(bytes))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Standard padded base64 (what upstream always emits).
pub fn b64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard padded base64. ASCII whitespace anywhere is ignored (upstream's lenient decoder
/// skips it, and PEM-style wrapped values occur); every other non-alphabet character is rejected
/// (upstream silently drops those too, which `gm` deliberately does not copy: `na-wire.md` §2.1).
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    if text.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        return STANDARD.decode(compact.as_bytes()).ok();
    }
    STANDARD.decode(text.as_bytes()).ok()
}

/// First 16 hex characters of SHA-256 over the token string: how upstream names an invite token in
/// audit events without storing it (`na-wire.md` §14.1).
pub fn token_fingerprint(token: &str) -> String {
    let mut h = sha256_hex(token.as_bytes());
    h.truncate(16);
    h
}

/// A random UUID4 string, as upstream's `uuid.uuid4()` renders it.
pub fn uuid4() -> String {
    let mut b = [0u8; 16];
    fill_random(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Fills `buf` from the OS random source. The OS source failing is unrecoverable for a signing
/// service, so it aborts the process rather than continuing with predictable values.
pub(crate) fn fill_random(buf: &mut [u8]) {
    if getrandom::getrandom(buf).is_err() {
        log::error!("the operating system random source failed; refusing to continue");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_fingerprint_matches_spec_vector() {
        assert_eq!(token_fingerprint("3f2b8f3e-2f0c-4c1e-9a57-0d6f3f1a2b3c"), "11809f59dfefc976");
    }

    #[test]
    fn uuid4_has_version_and_variant() {
        let u = uuid4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn b64_rejects_url_safe_and_accepts_wrapped() {
        assert!(b64_decode("-_8=").is_none());
        assert_eq!(b64_decode("AA\nAA").unwrap(), vec![0, 0, 0]);
        assert!(b64_decode("AAA").is_none());
    }
}
