//! The `log` backend: one line per record on stderr, as text or JSON (`operations.md` §6).
//!
//! Text: `<asctime> - <logger> - <LEVEL> - <message> key=value…`; JSON: one object per line with
//! sorted keys `timestamp` (UTC isoformat), `level`, `logger`, `message` and the record's structured
//! fields. Every message and string field passes [`redact`] first, so secrets that slip into a
//! message (`token=…`, `signature: …`, key paths) never reach the log.

use std::io::Write;
use std::sync::OnceLock;

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::json::write_string;

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// Human-readable text. The default.
    Text,
    /// One JSON object per line (production units).
    Json,
}

impl LogFormat {
    /// Parses `GENESIS_LOG_FORMAT` (`text` or `json`, case-insensitive); anything else is text.
    pub fn parse(value: Option<&str>) -> LogFormat {
        match value.map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) if v == "json" => LogFormat::Json,
            _ => LogFormat::Text,
        }
    }
}

/// Parses `GENESIS_LOG_LEVEL` (`DEBUG`, `INFO`, `WARNING`, `ERROR`, `CRITICAL`, case-insensitive);
/// unknown or absent is `INFO`, as upstream.
pub(crate) fn parse_level(value: Option<&str>) -> LevelFilter {
    match value.map(|v| v.trim().to_ascii_uppercase()).as_deref() {
        Some("DEBUG") => LevelFilter::Debug,
        Some("WARNING") | Some("WARN") => LevelFilter::Warn,
        Some("ERROR") | Some("CRITICAL") => LevelFilter::Error,
        _ => LevelFilter::Info,
    }
}

struct Logger {
    format: LogFormat,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Installs the logger once; later calls only change the level.
pub(crate) fn init(level: LevelFilter, format: LogFormat) {
    let logger = LOGGER.get_or_init(|| Logger { format });
    let _ = log::set_logger(logger);
    log::set_max_level(level);
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut fields = FieldCollector(Vec::new());
        let _ = record.key_values().visit(&mut fields);
        let message = redact(&record.args().to_string());
        let mut line = match self.format {
            LogFormat::Text => text_line(record, &message, &fields.0),
            LogFormat::Json => json_line(record, &message, fields.0),
        };
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "ERROR",
        Level::Warn => "WARNING",
        Level::Info => "INFO",
        Level::Debug | Level::Trace => "DEBUG",
    }
}

/// A structured field value: numbers and booleans stay JSON literals, everything else is text.
enum Field {
    Literal(String),
    Text(String),
}

fn text_line(record: &Record<'_>, message: &str, fields: &[(String, Field)]) -> String {
    let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S,%3f");
    let mut line = format!("{now} - {} - {} - {message}", record.target(), level_name(record.level()));
    for (k, v) in fields {
        let (Field::Literal(shown) | Field::Text(shown)) = v;
        line.push_str(&format!(" {k}={shown}"));
    }
    line
}

/// One JSON object with sorted keys and Python's default separators (as upstream's JSON formatter).
fn json_line(record: &Record<'_>, message: &str, mut entries: Vec<(String, Field)>) -> String {
    entries.push(("timestamp".to_string(), Field::Text(utc_isoformat(chrono::Utc::now()))));
    entries.push(("level".to_string(), Field::Text(level_name(record.level()).to_string())));
    entries.push(("logger".to_string(), Field::Text(record.target().to_string())));
    entries.push(("message".to_string(), Field::Text(message.to_string())));
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::from("{");
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_string(&mut out, k, true);
        out.push_str(": ");
        match v {
            Field::Literal(l) => out.push_str(l),
            Field::Text(t) => write_string(&mut out, t, true),
        }
    }
    out.push('}');
    out
}

/// Python's `isoformat()` of a UTC instant (fraction only when non-zero).
fn utc_isoformat(t: chrono::DateTime<chrono::Utc>) -> String {
    let micros = t.timestamp_subsec_micros();
    if micros == 0 {
        t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
    } else {
        format!("{}.{micros:06}+00:00", t.format("%Y-%m-%dT%H:%M:%S"))
    }
}

struct FieldCollector(Vec<(String, Field)>);

impl<'kvs> log::kv::VisitSource<'kvs> for FieldCollector {
    fn visit_pair(&mut self, key: log::kv::Key<'kvs>, value: log::kv::Value<'kvs>) -> Result<(), log::kv::Error> {
        let v = if let Some(n) = value.to_i64() {
            Field::Literal(n.to_string())
        } else if let Some(n) = value.to_u64() {
            Field::Literal(n.to_string())
        } else if let Some(f) = value.to_f64().filter(|f| f.is_finite()) {
            Field::Literal(format!("{f:?}"))
        } else if let Some(b) = value.to_bool() {
            Field::Literal(b.to_string())
        } else {
            Field::Text(redact(&value.to_string()))
        };
        self.0.push((key.as_str().to_string(), v));
        Ok(())
    }
}

const MARKER: &str = "[REDACTED]";

/// Labels whose value is replaced, longest first so `invite_token` wins over `token`.
const LABELS: [&str; 12] = [
    "x-operator-signature",
    "private_key",
    "private-key",
    "private key",
    "privatekey",
    "invite_token",
    "invite-token",
    "invitetoken",
    "signature",
    "password",
    "secret",
    "token",
];

/// Applies upstream's log redaction rules: ANSI colour sequences removed; the value after
/// `authorization: bearer`, `signature`, `token`, `password`, `secret`, `private key` (and the
/// other label spellings) followed by `:` or `=` replaced by `[REDACTED]`; any path under
/// `/etc/genesis-mesh/keys/` and any Windows path ending in `.key` or `.pem` replaced entirely.
pub(crate) fn redact(text: &str) -> String {
    // Fast path: every rule needs a `:`/`=` separator, an escape sequence or the keys folder.
    if !text.contains([':', '=', '\u{1b}']) && !text.contains("/etc/genesis-mesh/keys/") {
        return text.to_string();
    }
    let clean = strip_ansi(text);
    let lower = clean.to_ascii_lowercase();
    let bytes = clean.as_bytes();
    let mut out = String::with_capacity(clean.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if let Some(end) = key_path_end(&lower, i) {
            out.push_str(&clean[copied..i]);
            out.push_str(MARKER);
            i = end;
            copied = end;
            continue;
        }
        if let Some((value_start, value_end)) = labelled_value(&lower, i) {
            out.push_str(&clean[copied..value_start]);
            out.push_str(MARKER);
            i = value_end;
            copied = value_end;
            continue;
        }
        i += 1;
        while i < bytes.len() && !clean.is_char_boundary(i) {
            i += 1;
        }
    }
    out.push_str(&clean[copied..]);
    out
}

fn is_value_end(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b',' | b';')
}

fn key_path_end(lower: &str, i: usize) -> Option<usize> {
    let rest = lower.get(i..)?;
    let end_of_token =
        |from: usize| rest.bytes().skip(from).position(is_value_end).map_or(lower.len(), |p| i + from + p);
    if rest.starts_with("/etc/genesis-mesh/keys/") {
        return Some(end_of_token(0));
    }
    let b = rest.as_bytes();
    if b.len() > 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\' {
        let end = end_of_token(0);
        let token = lower.get(i..end)?;
        if token.ends_with(".key") || token.ends_with(".pem") {
            return Some(end);
        }
    }
    None
}

/// For a label starting at `i`, the byte range of its value.
fn labelled_value(lower: &str, i: usize) -> Option<(usize, usize)> {
    let rest = lower.get(i..)?;
    let b = lower.as_bytes();
    let mut pos = if rest.starts_with("authorization") {
        let mut p = i + "authorization".len();
        p = skip(b, p, |c| c == b' ');
        if b.get(p) != Some(&b':') {
            return None;
        }
        p = skip(b, p + 1, |c| c == b' ');
        if !lower.get(p..)?.starts_with("bearer ") {
            return None;
        }
        skip(b, p + "bearer ".len(), |c| c == b' ')
    } else {
        let label = LABELS.iter().find(|l| rest.starts_with(*l))?;
        let mut p = i + label.len();
        if matches!(b.get(p), Some(b'"') | Some(b'\'')) {
            p += 1;
        }
        p = skip(b, p, |c| c == b' ');
        if !matches!(b.get(p), Some(b':') | Some(b'=')) {
            return None;
        }
        skip(b, p + 1, |c| c == b' ')
    };
    if matches!(b.get(pos), Some(b'"') | Some(b'\'')) {
        pos += 1;
    }
    let end = b.iter().skip(pos).position(|c| is_value_end(*c)).map_or(b.len(), |p| pos + p);
    if end == pos {
        return None;
    }
    Some((pos, end))
}

fn skip(b: &[u8], mut p: usize, pred: impl Fn(u8) -> bool) -> usize {
    while b.get(p).is_some_and(|c| pred(*c)) {
        p += 1;
    }
    p
}

fn strip_ansi(text: &str) -> String {
    if !text.contains('\u{1b}') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for n in chars.by_ref() {
                if n.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_labelled_values_and_key_paths() {
        assert_eq!(redact("invite_token=abc123 ok"), "invite_token=[REDACTED] ok");
        assert_eq!(redact("signature: \"xyz==\", next"), "signature: \"[REDACTED]\", next");
        assert_eq!(redact("Authorization: Bearer s3cr3t"), "Authorization: Bearer [REDACTED]");
        assert_eq!(redact("loaded /etc/genesis-mesh/keys/na.key now"), "loaded [REDACTED] now");
        assert_eq!(redact("token_fingerprint=11809f59"), "token_fingerprint=11809f59");
        assert_eq!(redact("\u{1b}[31mred\u{1b}[0m password = hunter2"), "red password = [REDACTED]");
        assert_eq!(redact("key at C:\\keys\\na.key"), "key at [REDACTED]");
    }

    #[test]
    fn json_strings_are_ascii_escaped() {
        let mut out = String::new();
        write_string(&mut out, "a\"b\\é\n😀", true);
        assert_eq!(out, "\"a\\\"b\\\\\\u00e9\\n\\ud83d\\ude00\"");
    }

    #[test]
    fn levels_follow_upstream_names() {
        assert_eq!(parse_level(Some("warning")), LevelFilter::Warn);
        assert_eq!(parse_level(Some("bogus")), LevelFilter::Info);
        assert_eq!(parse_level(None), LevelFilter::Info);
        assert_eq!(LogFormat::parse(Some("JSON")), LogFormat::Json);
    }
}
