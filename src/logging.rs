//! The `log` backend: one line per record on stderr, as text or JSON (`operations.md` §6).
//!
//! Text: `<asctime> - <logger> - <LEVEL> - <message> key=value…`; JSON: one object per line with
//! sorted keys `timestamp` (UTC isoformat), `level`, `logger`, `message` and the record's structured
//! fields. Every message and string field passes [`redact`] first, so secrets that slip into a
//! message (`token=…`, `signature: …`, key paths) never reach the log.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write;
use std::ops::Range;
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
        // Every request writes an access record, so a line is built in this thread's reused buffers
        // instead of a String per field (the allocator was most of a small request's cost).
        let written = SCRATCH
            .try_with(|cell| match cell.try_borrow_mut() {
                Ok(mut scratch) => {
                    scratch.write(record, self.format);
                    true
                }
                Err(_) => false,
            })
            .unwrap_or(false);
        // A Display impl that logs from inside a log call, or a log call while the thread's
        // locals are being destroyed: that line is built in fresh buffers.
        if !written {
            Scratch::default().write(record, self.format);
        }
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The buffers one log line is built in. `text` holds every key and value back to back; `fields`
/// indexes it. Buffers grow to the longest line seen and are reused (a line over [`KEEP`] bytes
/// does not pin its size).
#[derive(Default)]
struct Scratch {
    text: String,
    raw: String,
    fields: Vec<FieldAt>,
    line: String,
}

/// One key/value pair of a line, as byte ranges of [`Scratch::text`].
struct FieldAt {
    key: Range<usize>,
    value: Range<usize>,
    /// A number or boolean: written as a JSON literal rather than a string.
    literal: bool,
}

/// Buffer capacity kept between lines: an access line is ~300 bytes, and a connection thread must
/// not keep a long line's buffers while it serves a keep-alive connection.
const KEEP: usize = 4 * 1024;

impl Scratch {
    fn write(&mut self, record: &Record<'_>, format: LogFormat) {
        self.render(record, format);
        let _ = std::io::stderr().lock().write_all(self.line.as_bytes());
        for buf in [&mut self.text, &mut self.raw, &mut self.line] {
            if buf.capacity() > KEEP {
                *buf = String::new();
            }
        }
    }

    /// Builds the record's line, newline included, in `line`.
    fn render(&mut self, record: &Record<'_>, format: LogFormat) {
        self.text.clear();
        self.fields.clear();
        self.line.clear();
        let _ = record.key_values().visit(&mut Collector(self));
        self.raw.clear();
        let _ = write!(self.raw, "{}", record.args());
        let message = self.push_redacted();
        match format {
            LogFormat::Text => self.text_line(record, message),
            LogFormat::Json => self.json_line(record, message),
        }
        self.line.push('\n');
    }

    /// Appends `raw`, redacted, to `text` and returns where it landed.
    fn push_redacted(&mut self) -> Range<usize> {
        let start = self.text.len();
        redact_into(&self.raw, &mut self.text);
        start..self.text.len()
    }

    fn push_text(&mut self, text: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(text);
        start..self.text.len()
    }

    fn text_line(&mut self, record: &Record<'_>, message: Range<usize>) {
        let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S,%3f");
        let _ =
            write!(self.line, "{now} - {} - {} - {}", record.target(), level_name(record.level()), &self.text[message]);
        for f in &self.fields {
            let _ = write!(self.line, " {}={}", &self.text[f.key.clone()], &self.text[f.value.clone()]);
        }
    }

    /// One JSON object with sorted keys and Python's default separators (as upstream's JSON formatter).
    fn json_line(&mut self, record: &Record<'_>, message: Range<usize>) {
        let start = self.text.len();
        utc_isoformat_into(chrono::Utc::now(), &mut self.text);
        let timestamp = start..self.text.len();
        let fixed = [
            ("timestamp", timestamp),
            ("level", self.push_text(level_name(record.level()))),
            ("logger", self.push_text(record.target())),
            ("message", message),
        ];
        for (key, value) in fixed {
            let key = self.push_text(key);
            self.fields.push(FieldAt { key, value, literal: false });
        }
        let text = &self.text;
        self.fields.sort_by(|a, b| text[a.key.clone()].cmp(&text[b.key.clone()]));
        self.line.push('{');
        for (i, f) in self.fields.iter().enumerate() {
            if i > 0 {
                self.line.push_str(", ");
            }
            write_string(&mut self.line, &text[f.key.clone()], true);
            self.line.push_str(": ");
            if f.literal {
                self.line.push_str(&text[f.value.clone()]);
            } else {
                write_string(&mut self.line, &text[f.value.clone()], true);
            }
        }
        self.line.push('}');
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

/// Python's `isoformat()` of a UTC instant (fraction only when non-zero), appended to `out`.
fn utc_isoformat_into(t: chrono::DateTime<chrono::Utc>, out: &mut String) {
    naive_isoformat_into(&t.naive_utc(), out);
    out.push_str("+00:00");
}

/// Python's `isoformat()` of a naive date and time, `YYYY-MM-DDTHH:MM:SS` and `.ffffff` only when
/// the microseconds are non-zero, appended to `out`. Shared with `model::timestamp`, which adds
/// the offset of the instant it renders.
pub(crate) fn naive_isoformat_into(t: &chrono::NaiveDateTime, out: &mut String) {
    use chrono::{Datelike, Timelike};
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let micros = t.nanosecond() / 1_000;
    if micros != 0 {
        let _ = write!(out, ".{micros:06}");
    }
}

/// Collects a record's structured fields into a [`Scratch`].
struct Collector<'a>(&'a mut Scratch);

impl<'kvs> log::kv::VisitSource<'kvs> for Collector<'_> {
    fn visit_pair(&mut self, key: log::kv::Key<'kvs>, value: log::kv::Value<'kvs>) -> Result<(), log::kv::Error> {
        let s = &mut *self.0;
        let key = s.push_text(key.as_str());
        let start = s.text.len();
        let literal = if let Some(n) = value.to_i64() {
            let _ = write!(s.text, "{n}");
            true
        } else if let Some(n) = value.to_u64() {
            let _ = write!(s.text, "{n}");
            true
        } else if let Some(f) = value.to_f64().filter(|f| f.is_finite()) {
            let _ = write!(s.text, "{f:?}");
            true
        } else if let Some(b) = value.to_bool() {
            let _ = write!(s.text, "{b}");
            true
        } else {
            s.raw.clear();
            let _ = write!(s.raw, "{value}");
            redact_into(&s.raw, &mut s.text);
            false
        };
        s.fields.push(FieldAt { key, value: start..s.text.len(), literal });
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
#[cfg(test)]
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::new();
    redact_into(text, &mut out);
    out
}

/// [`redact`], appending to `out`.
fn redact_into(text: &str, out: &mut String) {
    // Fast path: every rule needs a `:`/`=` separator, an escape sequence or the keys folder.
    if !text.contains([':', '=', '\u{1b}']) && !text.contains("/etc/genesis-mesh/keys/") {
        out.push_str(text);
        return;
    }
    let clean = strip_ansi(text);
    let lower = clean.to_ascii_lowercase();
    let bytes = clean.as_bytes();
    out.reserve(clean.len());
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
    fn a_json_line_has_sorted_keys_literal_numbers_and_redacted_text() {
        let fields: &[(&str, log::kv::Value<'_>)] = &[
            ("status", log::kv::Value::from(200u16)),
            ("duration_ms", log::kv::Value::from(1.5f64)),
            ("path", log::kv::Value::from("/join?invite_token=abc")),
            ("ok", log::kv::Value::from(true)),
        ];
        let record = Record::builder()
            .args(format_args!("API request signature: xyz"))
            .target("genesis_mesh.test")
            .level(Level::Warn)
            .key_values(&fields)
            .build();
        let mut scratch = Scratch::default();
        // Twice through the same buffers: the second line must not carry anything of the first.
        for _ in 0..2 {
            scratch.render(&record, LogFormat::Json);
            let line = scratch.line.clone();
            let (head, tail) = line.split_once("\"timestamp\": \"").expect("a timestamp");
            assert_eq!(
                head,
                "{\"duration_ms\": 1.5, \"level\": \"WARNING\", \"logger\": \"genesis_mesh.test\", \
                 \"message\": \"API request signature: [REDACTED]\", \"ok\": true, \
                 \"path\": \"/join?invite_token=[REDACTED]\", \"status\": 200, "
            );
            let (stamp, end) = tail.split_once('"').expect("a closed timestamp");
            assert_eq!(end, "}\n");
            assert!(stamp.ends_with("+00:00") && stamp.len() >= 25 && stamp.as_bytes()[10] == b'T', "{stamp}");
        }
        scratch.render(&record, LogFormat::Text);
        assert!(
            scratch.line.ends_with(
                " - genesis_mesh.test - WARNING - API request signature: [REDACTED] status=200 duration_ms=1.5 \
                 path=/join?invite_token=[REDACTED] ok=true\n"
            ),
            "{}",
            scratch.line
        );
    }

    /// A value whose Display logs: the inner record finds the thread's buffers busy and is built in
    /// fresh ones instead of panicking on the RefCell (or losing the outer line).
    #[test]
    fn a_record_whose_value_logs_while_it_is_built_does_not_panic() {
        struct Nested<'a>(&'a Logger);
        impl std::fmt::Display for Nested<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.log(&Record::builder().args(format_args!("inner")).level(Level::Error).build());
                f.write_str("outer")
            }
        }
        log::set_max_level(LevelFilter::Info);
        let logger = Logger { format: LogFormat::Json };
        logger.log(&Record::builder().args(format_args!("{}", Nested(&logger))).level(Level::Error).build());
        SCRATCH.with(|cell| {
            let scratch = cell.borrow();
            assert!(scratch.line.contains("\"message\": \"outer\""), "{}", scratch.line);
        });
    }

    #[test]
    fn utc_isoformat_shows_a_fraction_only_when_there_is_one() {
        use chrono::TimeZone;
        let mut out = String::new();
        utc_isoformat_into(chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(), &mut out);
        assert_eq!(out, "2026-01-02T03:04:05+00:00");
        out.clear();
        let t = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + chrono::Duration::microseconds(7);
        utc_isoformat_into(t, &mut out);
        assert_eq!(out, "2026-01-02T03:04:05.000007+00:00");
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
