//! The canonical JSON bytes that get signed: Python's `json.dumps(v, sort_keys=True,
//! separators=(",", ":"), ensure_ascii=True)` of a [`Value`] ([`canonical_bytes`]), the only path
//! to bytes that get signed or verified.
//!
//! The serializer itself is the `json` leaf (`json/write.rs`, strings through `json/escape.rs`);
//! its other Python-compatible styles are re-exported here for the code that writes upstream's
//! files next to signed ones. This file must not parse JSON or alter values, must not perform I/O,
//! and must never panic; its output must match CPython byte for byte.

use crate::json::{Map, Value};

pub use crate::json::{python_float_repr, to_pretty_sorted_string, to_pretty_string, to_string_with, Style};

/// The canonical signing bytes of `value` (pure ASCII).
pub fn canonical_bytes(value: &Value) -> Vec<u8> {
    canonical_string(value).into_bytes()
}

/// The canonical signing bytes of the object `map` without its entry `skip`: what
/// [`canonical_bytes`] gives for a copy of `map` with that entry removed (a node signs its request
/// body without the `signature` field), without making the copy.
pub fn canonical_bytes_without(map: &Map, skip: &str) -> Vec<u8> {
    crate::json::object_to_string_without(map, skip, &Style::CANONICAL).into_bytes()
}

/// The canonical signing text of `value`; see [`Style::CANONICAL`].
pub fn canonical_string(value: &Value) -> String {
    to_string_with(value, &Style::CANONICAL)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::json::{parse, parse_str, Int, Map, ParseError, ParseLimits};

    fn canon(text: &str) -> String {
        let value = parse_str(text).unwrap();
        let s = canonical_string(&value);
        assert_eq!(canonical_bytes(&value), s.as_bytes());
        assert!(s.is_ascii());
        s
    }

    #[test]
    fn upstream_vectors() {
        let vectors: &[(&str, &str)] = &[
            (
                r#"{"b": 1, "a": {"d": [3, 2, 1], "c": null}, "A": true}"#,
                r#"{"A":true,"a":{"c":null,"d":[3,2,1]},"b":1}"#,
            ),
            (
                r#"{"a": 48.0, "b": 2.9, "c": 0.1, "d": 1e16, "e": 1E-7, "f": 1.0e+2, "g": 100.50, "h": 0.30000000000000004, "i": 1.23456789012345678, "j": 1e22, "k": 123456789.0, "l": 1.5e300, "m": 5e-324, "n": 1.7976931348623157e308, "o": 0.000123, "p": 12345678901234567890.0}"#,
                r#"{"a":48.0,"b":2.9,"c":0.1,"d":1e+16,"e":1e-07,"f":100.0,"g":100.5,"h":0.30000000000000004,"i":1.2345678901234567,"j":1e+22,"k":123456789.0,"l":1.5e+300,"m":5e-324,"n":1.7976931348623157e+308,"o":0.000123,"p":1.2345678901234567e+19}"#,
            ),
            (
                r#"{"zero": 0, "neg_zero": -0, "neg": -42, "i64max": 9223372036854775807, "u64max": 18446744073709551615, "two64": 18446744073709551616, "huge": 123456789012345678901234567890, "neghuge": -98765432109876543210}"#,
                r#"{"huge":123456789012345678901234567890,"i64max":9223372036854775807,"neg":-42,"neg_zero":0,"neghuge":-98765432109876543210,"two64":18446744073709551616,"u64max":18446744073709551615,"zero":0}"#,
            ),
            (r#"{"nz": -0.0, "z": 0.0}"#, r#"{"nz":-0.0,"z":0.0}"#),
            (r#"{"a": 1, "a": 2, "b": {"x": 1, "x": [1]}}"#, r#"{"a":2,"b":{"x":[1]}}"#),
            (
                r#"{"a": 1, "B": 2, "_": 3, "é": 4, "｡": 5, "😀": 6, "": 7, "a\u0000": 8, "Z": 9}"#,
                r#"{"":7,"B":2,"Z":9,"_":3,"a":1,"a\u0000":8,"\u00e9":4,"\uff61":5,"\ud83d\ude00":6}"#,
            ),
            (
                r#"{"c": "\u0000\u0001\u001f\u007f \b\f\n\r\t \" \\ /"}"#,
                r#"{"c":"\u0000\u0001\u001f\u007f \b\f\n\r\t \" \\ /"}"#,
            ),
            (
                r#"{"ls": "\u2028", "ps": "\u2029", "bom": "\ufeff", "nbsp": "\u00a0"}"#,
                r#"{"bom":"\ufeff","ls":"\u2028","nbsp":"\u00a0","ps":"\u2029"}"#,
            ),
            (r#"[3, 1, 2, {"b": 1, "a": 2}, [2, 1]]"#, r#"[3,1,2,{"a":2,"b":1},[2,1]]"#),
            (r#"{"e": "😀🌍", "clef": "𝄞"}"#, r#"{"clef":"\ud834\udd1e","e":"\ud83d\ude00\ud83c\udf0d"}"#),
            (
                r#"{"b":1,"a":"héllo\u007f\n/","é":[1.0,1e16,0.00001,2.9],"Z":null,"e":"😀"}"#,
                r#"{"Z":null,"a":"h\u00e9llo\u007f\n/","b":1,"e":"\ud83d\ude00","\u00e9":[1.0,1e+16,1e-05,2.9]}"#,
            ),
        ];
        for (input, expected) in vectors {
            assert_eq!(canon(input), *expected, "input: {input}");
            // Canonical output is a fixed point.
            assert_eq!(canon(expected), *expected, "reparse: {expected}");
        }
    }

    #[test]
    fn raw_utf8_key_input_matches_escaped_input() {
        let raw = "{\"é\": 4, \"｡\": 5, \"😀\": 6}";
        let escaped = r#"{"\u00e9": 4, "\uff61": 5, "\ud83d\ude00": 6}"#;
        assert_eq!(canon(raw), canon(escaped));
    }

    #[test]
    fn non_ascii_escaping() {
        let value = Value::from("\u{0}\u{1f}\u{7f}\u{8}\u{c}\"\\/é😀\u{2028}");
        assert_eq!(
            to_string_with(&value, &Style::DECLARATION_ORDER),
            "\"\\u0000\\u001f\u{7f}\\b\\f\\\"\\\\/é😀\u{2028}\""
        );
        assert_eq!(canonical_string(&value), r#""\u0000\u001f\u007f\b\f\"\\/\u00e9\ud83d\ude00\u2028""#);
        assert_eq!(canonical_string(&Value::from("\u{ffff}")), r#""\uffff""#);
        assert_eq!(canonical_string(&Value::from("\u{10ffff}")), r#""\udbff\udfff""#);
    }

    #[test]
    fn built_values() {
        let mut map = Map::new();
        map.insert("n", Value::Int(Int::from(u64::MAX)));
        map.insert("f", -2.5);
        map.insert("t", true);
        map.insert("e", Value::Array(vec![]));
        map.insert("o", Map::new());
        assert_eq!(
            canonical_string(&Value::Object(map)),
            r#"{"e":[],"f":-2.5,"n":18446744073709551615,"o":{},"t":true}"#
        );
        assert_eq!(canonical_string(&Value::Float(f64::NAN)), "NaN");
        assert_eq!(canonical_string(&Value::Float(f64::INFINITY)), "Infinity");
        assert_eq!(canonical_string(&Value::Float(f64::NEG_INFINITY)), "-Infinity");
    }

    #[test]
    fn error_vectors() {
        assert!(matches!(parse_str(r#"{"s": "\ud800x"}"#), Err(ParseError::LoneSurrogate { .. })));
        for bad in [r#"{"n": NaN}"#, r#"{"big": 1E400}"#, "[1,]", r#"{"a" 1}"#, "01", r#""\x""#, "\"a\tb\""] {
            assert!(parse_str(bad).is_err(), "accepted {bad}");
        }
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(parse(deep.as_bytes(), &ParseLimits::default()), Err(ParseError::TooDeep { max_depth: 64 }));
    }

    #[test]
    fn tie_rounds_to_1e16() {
        // 9.999999999999999e15 lies exactly halfway between 9999999999999998 and
        // 1e16 and rounds to even (1e16), so CPython's repr of it is "1e+16".
        let f: f64 = "9.999999999999999e15".parse().unwrap();
        assert_eq!(python_float_repr(f), "1e+16");
        assert_eq!(canon("[9.999999999999999e15, 9999999999999998.0]"), "[1e+16,9999999999999998.0]");
    }

    #[test]
    fn bytes_without_a_key_match_the_bytes_of_a_copy_without_it() {
        let bodies = [
            r#"{"signature": "sig", "b": 1, "a": {"signature": "kept", "z": [1, "é"]}, "A": "x\u0000"}"#,
            r#"{"b": 1, "a": 2}"#,
            r#"{"signature": {"nested": true}}"#,
            r#"{"a": 1, "signature": 2, "a": 3}"#,
        ];
        for text in bodies {
            let Value::Object(map) = parse_str(text).unwrap() else { panic!("{text}") };
            let copy: Map =
                map.iter().filter(|(k, _)| *k != "signature").map(|(k, v)| (k.to_string(), v.clone())).collect();
            assert_eq!(canonical_bytes_without(&map, "signature"), canonical_bytes(&Value::Object(copy)), "{text}");
        }
        let Value::Object(map) = parse_str(r#"{"signature": "s", "b": 1}"#).unwrap() else { panic!() };
        assert_eq!(canonical_bytes_without(&map, "signature"), br#"{"b":1}"#);
        assert_eq!(canonical_bytes_without(&map, "absent"), br#"{"b":1,"signature":"s"}"#);
    }
}
