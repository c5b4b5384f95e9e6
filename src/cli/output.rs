//! The only code that prints: results to stdout (text for people, `--json` for machines), notices to
//! stderr. Logs go through `log` and the `logging` backend, never through here.
//!
//! Write errors are ignored on purpose, never unwrapped: `print!` panics when the reader is gone
//! (`gm --help | head` closes the pipe early, and Rust ignores SIGPIPE), and a closed stdout is the
//! reader's choice, not a failure of the command, which still exits with its own status.

use std::io::Write;

use crate::crypto::canonical::{to_string_with, Style};
use crate::json::Value;

/// How a command renders its result.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    /// `--json` was given.
    pub json: bool,
}

impl Output {
    /// Prints `text` for people, or `value` as one JSON line with `--json`.
    pub(crate) fn result(&self, text: &str, value: &Value) {
        if self.json {
            line(&to_string_with(value, &Style::CANONICAL));
        } else if !text.is_empty() {
            line(text);
        }
    }
}

/// Prints one line to stdout and flushes (tests read the bound address from it).
pub(crate) fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Prints raw text to stdout without adding a newline.
pub(crate) fn raw(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Prints a notice to stderr (`warning: …`).
pub(crate) fn notice(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// An error as one JSON line (what `--json` commands print on stderr instead of `error:`/`hint:`):
/// `{"error": …, "exit_code": …, "hint": …}`.
pub(crate) fn error_json(message: &str, hint: Option<&str>, exit_code: u8) -> String {
    let mut m = crate::json::Map::new();
    m.insert("error", Value::from(message));
    m.insert("exit_code", Value::from(i64::from(exit_code)));
    m.insert("hint", hint.map_or(Value::Null, Value::from));
    to_string_with(&Value::Object(m), &Style::CANONICAL)
}
