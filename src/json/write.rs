//! Python-compatible JSON serialization of [`Value`]s: `json.dumps` with the [`Style`]s gm needs
//! (the canonical signing form is [`Style::CANONICAL`], wrapped by `crypto/canonical.rs`), the
//! indented forms upstream tooling writes for people, and Python's `repr(float)`
//! ([`python_float_repr`]). Strings are quoted by the one escaper, `json/escape.rs`.
//!
//! It must not parse JSON or alter values (that is `json/parse.rs`), must not perform I/O, and
//! must never panic; its output must match CPython byte for byte. Part of the `json` leaf: imports
//! nothing else in gm.

use super::escape::write_string;
use super::value::{Map, Value};

/// Formatting options mirroring the relevant `json.dumps` arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Emit object keys sorted by Unicode code point (`sort_keys=True`).
    pub sort_keys: bool,
    /// Escape every non-printable-ASCII character (`ensure_ascii=True`).
    pub ensure_ascii: bool,
    /// Separator between array items and object entries.
    pub item_separator: &'static str,
    /// Separator between an object key and its value.
    pub key_separator: &'static str,
}

impl Style {
    /// `json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=True)`.
    pub(crate) const CANONICAL: Style =
        Style { sort_keys: true, ensure_ascii: true, item_separator: ",", key_separator: ":" };

    /// `json.dumps(v, sort_keys=True)`.
    pub const PYTHON_DEFAULT: Style =
        Style { sort_keys: true, ensure_ascii: true, item_separator: ", ", key_separator: ": " };

    /// `json.dumps(v, separators=(",", ":"), ensure_ascii=False)`: insertion order,
    /// raw UTF-8.
    pub const DECLARATION_ORDER: Style =
        Style { sort_keys: false, ensure_ascii: false, item_separator: ",", key_separator: ":" };

    /// `json.dumps(v)`: insertion order, ASCII-only, default separators.
    pub const PYTHON_DEFAULT_UNSORTED: Style =
        Style { sort_keys: false, ensure_ascii: true, item_separator: ", ", key_separator: ": " };
}

/// Room a rendering starts with: the documents gm renders per request (a node's signed body, a
/// certificate, an audit event, a response) are a few hundred bytes to ~1 KiB, and growing a
/// `String` from empty to that size took ~7 reallocations each time.
const START_CAPACITY: usize = 512;

/// Serializes `value` as Python's `json.dumps` would with the given `style`.
pub fn to_string_with(value: &Value, style: &Style) -> String {
    let mut out = String::with_capacity(START_CAPACITY);
    write_value(&mut out, value, style);
    out
}

/// Serializes the object `map` without its entry `skip` (if any), as [`to_string_with`] would
/// the same object with that entry removed, without copying the object first.
pub fn object_to_string_without(map: &Map, skip: &str, style: &Style) -> String {
    let mut out = String::with_capacity(START_CAPACITY);
    write_entries(&mut out, map.iter().filter(|(k, _)| *k != skip), style);
    out
}

/// Python's `json.dumps(value, indent=2)` (insertion order, ASCII escapes): how upstream tooling
/// writes genesis and other files meant for people. Layout never matters to verification.
pub fn to_pretty_string(value: &Value) -> String {
    let mut out = String::new();
    write_pretty(&mut out, value, 0, false);
    out
}

/// Python's `json.dumps(value, indent=2, sort_keys=True)` (ASCII escapes): item separator `,` plus a
/// newline, key separator `": "`, empty containers as `[]` and `{}`. The `managed audit-export` json
/// format and gm's manifests (`operations.md` §2.3).
pub fn to_pretty_sorted_string(value: &Value) -> String {
    let mut out = String::new();
    write_pretty(&mut out, value, 0, true);
    out
}

fn write_pretty(out: &mut String, value: &Value, depth: usize, sort_keys: bool) {
    let pad = |out: &mut String, d: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(d));
    };
    match value {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(out, depth + 1);
                write_pretty(out, item, depth + 1, sort_keys);
            }
            pad(out, depth);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            let mut entries: Vec<(&str, &Value)> = map.iter().collect();
            if sort_keys {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(out, depth + 1);
                write_string(out, key, true);
                out.push_str(": ");
                write_pretty(out, item, depth + 1, sort_keys);
            }
            pad(out, depth);
            out.push('}');
        }
        other => write_value(out, other, &Style::CANONICAL),
    }
}

fn write_value(out: &mut String, value: &Value, style: &Style) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Int(i) => out.push_str(i.as_str()),
        Value::Float(f) => out.push_str(&python_float_repr(*f)),
        Value::Str(s) => write_string(out, s, style.ensure_ascii),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(style.item_separator);
                }
                write_value(out, item, style);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map, style),
    }
}

fn write_object(out: &mut String, map: &Map, style: &Style) {
    write_entries(out, map.iter(), style);
}

fn write_entries<'a>(out: &mut String, entries: impl Iterator<Item = (&'a str, &'a Value)>, style: &Style) {
    let mut entries: Vec<(&str, &Value)> = entries.collect();
    if style.sort_keys {
        // `str` ordering is byte order, which for UTF-8 is code-point order.
        entries.sort_by(|a, b| a.0.cmp(b.0));
    }
    out.push('{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push_str(style.item_separator);
        }
        write_string(out, key, style.ensure_ascii);
        out.push_str(style.key_separator);
        write_value(out, value, style);
    }
    out.push('}');
}

/// Python's `repr(float)`: shortest round-trip digits, positional notation when the
/// decimal exponent is in `-4..16`, otherwise `d.ddde±XX`; non-finite values render
/// as `NaN`, `Infinity` and `-Infinity` like `json.dumps`.
pub fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    // Shortest round-trip digits in the form `d.ddde[-]N`.
    let scientific = format!("{:e}", f.abs());
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return format!("{f:?}");
    };
    let Ok(exp) = exponent.parse::<i32>() else {
        return format!("{f:?}");
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let body = if (-4..16).contains(&exp) { positional(&digits, exp) } else { exponential(&digits, exp) };
    format!("{sign}{body}")
}

/// Positional notation for `0.d1d2... × 10^(exp+1)` with `-4 <= exp < 16`.
fn positional(digits: &str, exp: i32) -> String {
    let mut out = String::new();
    match usize::try_from(exp) {
        Ok(e) => {
            let int_len = e.saturating_add(1);
            match (digits.get(..int_len), digits.get(int_len..)) {
                (Some(int_part), Some(frac)) if !frac.is_empty() => {
                    out.push_str(int_part);
                    out.push('.');
                    out.push_str(frac);
                }
                _ => {
                    out.push_str(digits);
                    for _ in digits.len()..int_len {
                        out.push('0');
                    }
                    out.push_str(".0");
                }
            }
        }
        Err(_) => {
            out.push_str("0.");
            let zeros = usize::try_from(exp.unsigned_abs().saturating_sub(1)).unwrap_or(0);
            for _ in 0..zeros {
                out.push('0');
            }
            out.push_str(digits);
        }
    }
    out
}

/// Scientific notation `d[.ddd]e±XX` with at least two exponent digits.
fn exponential(digits: &str, exp: i32) -> String {
    let mut out = String::new();
    match (digits.get(..1), digits.get(1..)) {
        (Some(first), Some(rest)) if !rest.is_empty() => {
            out.push_str(first);
            out.push('.');
            out.push_str(rest);
        }
        _ => out.push_str(digits),
    }
    let exp_sign = if exp < 0 { '-' } else { '+' };
    out.push_str(&format!("e{exp_sign}{:02}", exp.unsigned_abs()));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::parse::parse_str;
    use super::*;

    #[test]
    fn pretty_sorted_matches_python_indent_2_sort_keys() {
        // python3: json.dumps(v, indent=2, sort_keys=True)
        let value = parse_str(r#"[{"b": [1, {}], "a": "\u00e9\n", "c": {"z": [], "y": 1.5, "x": null}}]"#).unwrap();
        assert_eq!(
            to_pretty_sorted_string(&value),
            "[\n  {\n    \"a\": \"\\u00e9\\n\",\n    \"b\": [\n      1,\n      {}\n    ],\n    \"c\": {\n      \"x\": null,\n      \"y\": 1.5,\n      \"z\": []\n    }\n  }\n]"
        );
        assert_eq!(to_pretty_sorted_string(&parse_str("[]").unwrap()), "[]");
        assert_eq!(to_pretty_string(&parse_str("{\"b\": 1, \"a\": 2}").unwrap()), "{\n  \"b\": 1,\n  \"a\": 2\n}");
    }

    #[test]
    fn other_styles() {
        let value = parse_str(r#"{"b": [1, 2], "a": "é"}"#).unwrap();
        assert_eq!(to_string_with(&value, &Style::PYTHON_DEFAULT), r#"{"a": "\u00e9", "b": [1, 2]}"#);
        assert_eq!(to_string_with(&value, &Style::DECLARATION_ORDER), r#"{"b":[1,2],"a":"é"}"#);
        assert_eq!(to_string_with(&value, &Style::PYTHON_DEFAULT_UNSORTED), r#"{"b": [1, 2], "a": "\u00e9"}"#);
        let list = parse_str(r#"[1, "x", {"z": null, "y": []}, {}]"#).unwrap();
        assert_eq!(to_string_with(&list, &Style::PYTHON_DEFAULT_UNSORTED), r#"[1, "x", {"z": null, "y": []}, {}]"#);
    }

    #[test]
    fn float_repr() {
        let cases: &[(f64, &str)] = &[
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1.2345e20, "1.2345e+20"),
            (123.456, "123.456"),
            (-2.5, "-2.5"),
            (1e-4, "0.0001"),
            // The largest float below 1e16 (see `tie_rounds_to_1e16`).
            (9999999999999998.0, "9999999999999998.0"),
            (2.0f64.powi(53), "9007199254740992.0"),
            (1e100, "1e+100"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (48.0, "48.0"),
            (100.5, "100.5"),
            (123456789.0, "123456789.0"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (0.1, "0.1"),
            (0.30000000000000004, "0.30000000000000004"),
            (-1e-5, "-1e-05"),
            (1.5e300, "1.5e+300"),
            (1e-100, "1e-100"),
            (0.00012345, "0.00012345"),
            (1234567890123456.7, "1234567890123456.8"),
            (12345678901234567.0, "1.2345678901234568e+16"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (f, expected) in cases {
            assert_eq!(python_float_repr(*f), *expected, "{f:e}");
        }
    }

    #[test]
    fn float_repr_round_trips() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            let s = python_float_repr(f);
            if f.is_finite() {
                let back: f64 = s.parse().unwrap();
                assert_eq!(back.to_bits(), f.to_bits(), "{s}");
                assert!(s.contains('.') || s.contains('e'), "{s}");
            }
        }
    }
}
