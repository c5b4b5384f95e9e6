//! Percent-coding of URL parts: the one decoder behind both the server (`http`, what the NA sees)
//! and the admin client (`client`, what an operator signs), and the encoder gm uses for
//! user-given ids in request targets.
//!
//! Decoding follows Python's `urllib.parse.unquote`: a `%` not followed by two hex digits is kept
//! as it is. Callers choose whether `+` is a space (`unquote_plus`, query components) and what an
//! undecodable byte sequence becomes (an error, or U+FFFD). Because signer and verifier decode
//! with the same code, a version 2 admin signature covers exactly the path and query the NA reads.
//!
//! A leaf: it imports nothing from gm and knows nothing of HTTP, the NA or signatures.

use std::string::FromUtf8Error;

/// Whether `+` decodes to a space (query components) or stays `+` (paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plus {
    /// `+` stays `+`, as in a path.
    Kept,
    /// `+` becomes a space, as in a query name or value.
    IsSpace,
}

/// Decodes `%XX` escapes into UTF-8 text, failing when the decoded bytes are not UTF-8 (the error
/// holds every decoded byte, so nothing is lost).
pub(crate) fn decode_strict(text: &str, plus: Plus) -> Result<String, FromUtf8Error> {
    if !needs_decoding(text, plus) {
        return Ok(text.to_owned());
    }
    String::from_utf8(decode_bytes(text, plus))
}

/// Decodes `%XX` escapes; decoded bytes that are not UTF-8 become U+FFFD, as Python's `unquote`
/// does.
pub(crate) fn decode_lossy(text: &str, plus: Plus) -> String {
    if !needs_decoding(text, plus) {
        return text.to_owned();
    }
    String::from_utf8_lossy(&decode_bytes(text, plus)).into_owned()
}

/// Percent-encodes a value for a query or a path segment: every byte but the unreserved ones
/// (`A-Z a-z 0-9 - . _ ~`), so a user-given id cannot add a path segment or a parameter.
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `path` followed by the given (`Some`) `params`, values encoded (`/x?a=1&b=2`).
pub(crate) fn target_with_query(path: &str, params: &[(&str, Option<&str>)]) -> String {
    let query: Vec<String> =
        params.iter().filter_map(|(name, value)| value.map(|v| format!("{name}={}", encode(v)))).collect();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

fn needs_decoding(text: &str, plus: Plus) -> bool {
    match plus {
        Plus::Kept => text.contains('%'),
        Plus::IsSpace => text.contains(['%', '+']),
    }
}

fn decode_bytes(text: &str, plus: Plus) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_value);
            let lo = bytes.get(i + 2).copied().and_then(hex_value);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(if plus == Plus::IsSpace && b == b'+' { b' ' } else { b });
        i += 1;
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_keeps_malformed_ones() {
        assert_eq!(decode_lossy("/a%20b+c", Plus::Kept), "/a b+c");
        assert_eq!(decode_lossy("a+b%2Bc", Plus::IsSpace), "a b+c");
        assert_eq!(decode_lossy("%zz%4%", Plus::Kept), "%zz%4%");
        assert_eq!(decode_strict("%E2%9C%93", Plus::Kept).unwrap(), "\u{2713}");
    }

    /// Python's `unquote` decodes only two hex digits: `%+5` and `%-5` are not escapes (the
    /// client's former decoder read `%+5` as byte 5 through `u8::from_str_radix`).
    #[test]
    fn a_sign_after_percent_is_not_an_escape() {
        assert_eq!(decode_lossy("%+5", Plus::Kept), "%+5");
        assert_eq!(decode_lossy("%+5", Plus::IsSpace), "% 5");
        assert_eq!(decode_lossy("%-5", Plus::Kept), "%-5");
    }

    #[test]
    fn invalid_utf8_is_an_error_or_a_replacement_character() {
        let err = decode_strict("ok%FF%fe", Plus::Kept).unwrap_err();
        assert_eq!(err.utf8_error().valid_up_to(), 2);
        assert_eq!(err.into_bytes(), vec![b'o', b'k', 0xff, 0xfe]);
        assert_eq!(decode_lossy("%FFx", Plus::IsSpace), "\u{fffd}x");
        assert_eq!(decode_lossy("%e2%82", Plus::Kept), "\u{fffd}");
    }

    #[test]
    fn ids_cannot_add_path_segments_or_parameters() {
        assert_eq!(encode("1ede1147-34d3"), "1ede1147-34d3");
        assert_eq!(encode("a/b?c=d&e f"), "a%2Fb%3Fc%3Dd%26e%20f");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn query_keeps_only_given_parameters() {
        assert_eq!(target_with_query("/x", &[("a", None), ("b", None)]), "/x");
        assert_eq!(target_with_query("/x", &[("a", Some("1")), ("b", None), ("c", Some("a b"))]), "/x?a=1&c=a%20b");
    }

    #[test]
    fn encoded_text_decodes_back() {
        for text in ["a b+c/d?e=f&g", "é✓", "%41", ""] {
            assert_eq!(decode_strict(&encode(text), Plus::IsSpace).unwrap(), text);
        }
    }
}
