//! gm's JSON: the value model (`value.rs`), the strict parser (`parse.rs`), the Python-compatible
//! writer (`write.rs`) and the one string escaper (`escape.rs`) that canonical JSON, HTTP bodies
//! and log lines share.
//!
//! A leaf like `clock` and `files`: every folder may use it, and it imports nothing else in gm.
//! The signed canonical bytes are `crypto::canonical`, built on [`write::to_string_with`] and
//! [`write::object_to_string_without`].
//! Spec: `na-wire.md` §3.1 (canonical JSON).

pub mod escape;
pub mod parse;
pub mod value;
pub mod write;

pub use escape::write_string;
pub use parse::{parse, parse_str, ParseError, ParseLimits};
pub use value::{Int, Iter, Map, Value};
pub use write::{
    object_to_string_without, python_float_repr, to_pretty_sorted_string, to_pretty_string, to_string_with, Style,
};
