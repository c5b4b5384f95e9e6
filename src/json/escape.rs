//! The one JSON string escaper in gm: canonical JSON (`crypto/canonical.rs` through
//! `json/write.rs`), HTTP error bodies (`http/response.rs`) and JSON log lines (`logging.rs`) all
//! quote strings here.
//!
//! It reproduces CPython's `py_encode_basestring_ascii` (`ensure_ascii=True`: everything outside
//! printable ASCII as `\uxxxx`, lower-case hex, astral characters as a UTF-16 surrogate pair) and
//! `py_encode_basestring` (`ensure_ascii=False`: only `"`, `\` and control characters escaped).
//! Both use the short escapes `\" \\ \n \r \t \b \f`. It must not allocate beyond the output, must
//! never panic, and imports nothing else in gm.

/// Appends `s` to `out` as a quoted JSON string literal, exactly as Python's `json.dumps` writes
/// it: with `ensure_ascii` every character outside printable ASCII becomes `\uxxxx` (the signed
/// canonical form, HTTP bodies and log lines), without it only `"`, `\` and control characters
/// below U+0020 are escaped and the rest is copied as UTF-8.
pub fn write_string(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    // Fast path: most strings (ids, keys, times) are plain printable ASCII and copy as they are.
    if s.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\') {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ if ensure_ascii || c < ' ' => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    push_unicode_escape(out, *unit);
                }
            }
            _ => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `\uxxxx` with lower-case hex digits.
fn push_unicode_escape(out: &mut String, unit: u16) {
    out.push_str("\\u");
    for shift in [12u16, 8, 4, 0] {
        let nibble = u32::from((unit >> shift) & 0xF);
        out.push(char::from_digit(nibble, 16).unwrap_or('0'));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(s: &str, ensure_ascii: bool) -> String {
        let mut out = String::new();
        write_string(&mut out, s, ensure_ascii);
        out
    }

    #[test]
    fn ascii_mode_matches_python_ensure_ascii() {
        // python3: json.dumps("q\"\\\n\x01\x08\x0c\x7f/é😀\u2028")
        assert_eq!(
            quoted("q\"\\\n\u{1}\u{8}\u{c}\u{7f}/é😀\u{2028}", true),
            r#""q\"\\\n\u0001\b\f\u007f/\u00e9\ud83d\ude00\u2028""#
        );
        assert_eq!(quoted("plain-id_1:2", true), "\"plain-id_1:2\"");
        assert_eq!(quoted("", true), "\"\"");
    }

    #[test]
    fn utf8_mode_escapes_only_quotes_backslashes_and_controls() {
        // python3: json.dumps("q\"\\\n\x01\x7fé😀", ensure_ascii=False)
        assert_eq!(quoted("q\"\\\n\u{1}\u{7f}é😀", false), "\"q\\\"\\\\\\n\\u0001\u{7f}é😀\"");
    }
}
