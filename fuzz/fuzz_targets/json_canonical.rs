//! The JSON decoder (`src/json/parse.rs`) against the canonical encoder (`src/crypto/canonical.rs`).
//!
//! Input: any bytes, parsed as one JSON document with the default limits.
//!
//! Properties: no panic; when the input parses, its canonical text parses back to an equal value
//! whose canonical text is the same (the signing bytes are a fixed point), the canonical text is
//! ASCII, and the other Python-compatible renderings parse back to an equal value too.
#![no_main]

use gm::crypto::canonical::{canonical_string, to_pretty_sorted_string, to_pretty_string, to_string_with, Style};
use gm::json::{parse, parse_str, ParseLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = ParseLimits::default();
    let value = match parse(data, &limits) {
        Ok(value) => value,
        Err(err) => {
            let _ = (err.to_string(), err.offset());
            return;
        }
    };
    let canonical = canonical_string(&value);
    assert!(canonical.is_ascii(), "canonical text is not ASCII: {canonical:?}");
    let again = match parse_str(&canonical) {
        Ok(again) => again,
        Err(err) => panic!("canonical text {canonical:?} does not parse: {err}"),
    };
    assert_eq!(again, value, "canonical text {canonical:?} parses to a different value");
    assert_eq!(canonical_string(&again), canonical, "canonical text is not a fixed point");
    for (name, text) in [
        ("pretty", to_pretty_string(&value)),
        ("pretty sorted", to_pretty_sorted_string(&value)),
        ("declaration order", to_string_with(&value, &Style::DECLARATION_ORDER)),
        ("python default", to_string_with(&value, &Style::PYTHON_DEFAULT_UNSORTED)),
    ] {
        match parse_str(&text) {
            Ok(back) => assert_eq!(back, value, "{name} rendering {text:?} parses to a different value"),
            Err(err) => panic!("{name} rendering {text:?} does not parse: {err}"),
        }
    }
});
