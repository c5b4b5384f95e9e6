//! Python's `int()` as upstream applies it to request fields (`na-wire.md` §9.4): JSON integers as
//! they are, floats truncated toward zero, strings holding a decimal integer (surrounding
//! whitespace, a sign and `_` digit separators allowed), booleans as 0/1. Anything else fails.

use crate::json::Value;

/// Upstream's Python `int(value)`, limited to the `i64` range.
pub(crate) fn python_int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(i) => i.as_i64(),
        Value::Float(f) if f.is_finite() && f.abs() < 9.2e18 => Some(f.trunc() as i64),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Str(s) => parse_decimal(s.trim()),
        _ => None,
    }
}

fn parse_decimal(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let well_formed = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return None;
    }
    s.replace('_', "").parse().ok()
}

/// The integer field `name` of `body`: `Some(default)` when absent, `None` when present but not
/// convertible.
pub(crate) fn int_field(body: &crate::json::Map, name: &str, default: i64) -> Option<i64> {
    match body.get(name) {
        None => Some(default),
        Some(v) => python_int(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse_str;

    #[test]
    fn follows_python_int() {
        let cases = [
            ("48", Some(48)),
            ("2.9", Some(2)),
            ("-2.9", Some(-2)),
            ("\" 12 \"", Some(12)),
            ("\"1_000\"", Some(1000)),
            ("true", Some(1)),
            ("\"abc\"", None),
            ("\"1.5\"", None),
            ("null", None),
            ("[1]", None),
            ("\"_1\"", None),
        ];
        for (text, expected) in cases {
            assert_eq!(python_int(&parse_str(text).unwrap()), expected, "{text}");
        }
    }
}
