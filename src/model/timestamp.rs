//! Upstream's timestamp renderings and parsers, and nothing else does this.
//!
//! Two renderers are wire-visible (`na-wire.md` §3.5): **pydantic** inside model objects (UTC as `Z`,
//! other offsets kept, naive values without suffix) and **isoformat** for plain fields and DB columns
//! (UTC as `+00:00`). Both print a fraction only when the microseconds are non-zero, then always six
//! digits. Two parsers exist: [`ModelTime::from_value`] follows pydantic's lax datetime validation
//! (ISO strings, Unix seconds or milliseconds), [`parse_request_timestamp`] follows Python's
//! `datetime.fromisoformat` used for node and admin request timestamps (§3.4).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use std::fmt;

use crate::json::Value;

/// A datetime as upstream's models hold it: wall-clock fields with microsecond precision and an
/// optional UTC offset (`None` = naive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelTime {
    local: NaiveDateTime,
    offset_seconds: Option<i32>,
}

/// Why a timestamp was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeError {
    /// What was wrong, in plain words.
    pub problem: &'static str,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.problem)
    }
}

fn err(problem: &'static str) -> TimeError {
    TimeError { problem }
}

/// Python's datetime range is years 1 through 9999; anything outside fails as upstream would.
const MIN_YEAR: i32 = 1;
const MAX_YEAR: i32 = 9999;

impl ModelTime {
    /// A UTC instant (what gm generates for every time it sets).
    pub(crate) fn from_utc(t: DateTime<Utc>) -> ModelTime {
        ModelTime { local: crate::clock::truncate_to_micros(t).naive_utc(), offset_seconds: Some(0) }
    }

    /// Pydantic's lax datetime validation of a JSON value: an ISO 8601 string, or a Unix time as a
    /// number or numeric string (values above 2e10 are milliseconds).
    pub fn from_value(value: &Value) -> Result<ModelTime, TimeError> {
        match value {
            Value::Str(s) => ModelTime::parse_model_str(s),
            Value::Int(i) => {
                let n = i.as_i64().ok_or(err("unix time out of range"))?;
                from_unix_number(n as f64)
            }
            Value::Float(f) => from_unix_number(*f),
            _ => Err(err("expected an ISO 8601 datetime string or a unix time")),
        }
    }

    /// Pydantic's string form: `YYYY-MM-DD[(T|t| )HH:MM[:SS[.f{1,9}]]][Z|z|±HH:MM|±HHMM]`, or a
    /// numeric Unix time.
    pub fn parse_model_str(s: &str) -> Result<ModelTime, TimeError> {
        let t = s.trim();
        if looks_numeric(t) {
            if let Ok(f) = t.parse::<f64>() {
                return from_unix_number(f);
            }
        }
        parse_iso(t, Dialect::Pydantic)
    }

    /// The same instant in UTC; a naive value is taken as UTC (`deviations.md` D17).
    pub fn to_utc(&self) -> DateTime<Utc> {
        let secs = i64::from(self.offset_seconds.unwrap_or(0));
        (self.local - Duration::seconds(secs)).and_utc()
    }

    /// True when the value carries no offset.
    pub(crate) fn is_naive(&self) -> bool {
        self.offset_seconds.is_none()
    }

    /// The pydantic rendering used inside model objects: `2026-01-01T00:00:00.070000Z`.
    pub fn render_pydantic(&self) -> String {
        self.render(true)
    }

    /// Python's `isoformat()`: `2026-11-25T17:36:56.071388+00:00`.
    pub fn render_isoformat(&self) -> String {
        self.render(false)
    }

    /// One allocation, sized for the longest form (`…T17:36:56.071388+00:00` is 32 bytes).
    fn render(&self, z_for_utc: bool) -> String {
        let mut out = String::with_capacity(32);
        crate::logging::naive_isoformat_into(&self.local, &mut out);
        match self.offset_seconds {
            None => {}
            Some(0) if z_for_utc => out.push('Z'),
            Some(off) => write_offset(&mut out, off),
        }
        out
    }
}

/// Python's `datetime.isoformat()` of a UTC instant: `…+00:00`.
pub fn isoformat_utc(t: DateTime<Utc>) -> String {
    ModelTime::from_utc(t).render_isoformat()
}

/// Pydantic's rendering of a UTC instant: `…Z`.
pub fn pydantic_utc(t: DateTime<Utc>) -> String {
    ModelTime::from_utc(t).render_pydantic()
}

/// Parses a DB time column (isoformat, UTC); an offset-less value is read as UTC (`na-wire.md` §13.3).
pub(crate) fn parse_db_time(s: &str) -> Option<DateTime<Utc>> {
    parse_iso(s.trim(), Dialect::FromIsoFormat).ok().map(|t| t.to_utc())
}

/// Python `datetime.fromisoformat` as used for node `timestamp` and `X-Admin-Timestamp`: accepts
/// `+HH:MM`, `+HHMM`, `+HH`, `Z`, a `T`/`t`/space separator and 1–9 fraction digits (truncated to six).
/// The result may be naive; callers decide what a naive request time means (`deviations.md` D1).
pub(crate) fn parse_request_timestamp(s: &str) -> Result<ModelTime, TimeError> {
    parse_iso(s, Dialect::FromIsoFormat)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Pydantic,
    FromIsoFormat,
}

fn looks_numeric(t: &str) -> bool {
    let body = t.strip_prefix('-').unwrap_or(t);
    !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit() || b == b'.') && body.matches('.').count() <= 1
}

fn from_unix_number(f: f64) -> Result<ModelTime, TimeError> {
    if !f.is_finite() {
        return Err(err("unix time is not a finite number"));
    }
    let seconds = if f.abs() > 2e10 { f / 1000.0 } else { f };
    let micros = (seconds * 1e6).round();
    if micros.abs() > 4e17 {
        return Err(err("unix time out of range"));
    }
    let t = DateTime::<Utc>::from_timestamp_micros(micros as i64).ok_or(err("unix time out of range"))?;
    check_year(t.year())?;
    Ok(ModelTime { local: t.naive_utc(), offset_seconds: Some(0) })
}

fn check_year(year: i32) -> Result<(), TimeError> {
    if (MIN_YEAR..=MAX_YEAR).contains(&year) {
        Ok(())
    } else {
        Err(err("year out of range 1..9999"))
    }
}

fn parse_iso(s: &str, dialect: Dialect) -> Result<ModelTime, TimeError> {
    let b = s.as_bytes();
    let date = parse_date(b)?;
    let rest = b.get(10..).unwrap_or_default();
    if rest.is_empty() {
        return Ok(ModelTime { local: date.and_time(NaiveTime::MIN), offset_seconds: None });
    }
    let (sep, rest) = rest.split_first().ok_or(err("missing time"))?;
    if !matches!(sep, b'T' | b't' | b' ') {
        return Err(err("expected 'T' or a space between date and time"));
    }
    let (time, rest) = parse_time(rest)?;
    let offset = parse_offset(rest, dialect)?;
    Ok(ModelTime { local: date.and_time(time), offset_seconds: offset })
}

fn digits(b: &[u8], at: usize, n: usize) -> Result<u32, TimeError> {
    let slice = b.get(at..at + n).ok_or(err("truncated datetime"))?;
    slice.iter().try_fold(0u32, |acc, d| {
        if d.is_ascii_digit() {
            Ok(acc * 10 + u32::from(d - b'0'))
        } else {
            Err(err("expected a digit"))
        }
    })
}

fn parse_date(b: &[u8]) -> Result<NaiveDate, TimeError> {
    if b.len() < 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return Err(err("expected a date as YYYY-MM-DD"));
    }
    let year = digits(b, 0, 4)? as i32;
    check_year(year)?;
    NaiveDate::from_ymd_opt(year, digits(b, 5, 2)?, digits(b, 8, 2)?).ok_or(err("invalid calendar date"))
}

fn parse_time(b: &[u8]) -> Result<(NaiveTime, &[u8]), TimeError> {
    let hour = digits(b, 0, 2)?;
    if b.get(2) != Some(&b':') {
        return Err(err("expected HH:MM"));
    }
    let minute = digits(b, 3, 2)?;
    let mut pos = 5;
    let mut second = 0;
    let mut micros = 0;
    if b.get(pos) == Some(&b':') {
        second = digits(b, pos + 1, 2)?;
        pos += 3;
        if b.get(pos) == Some(&b'.') {
            let start = pos + 1;
            let count = b.get(start..).unwrap_or_default().iter().take_while(|c| c.is_ascii_digit()).count();
            if count == 0 || count > 9 {
                return Err(err("fraction must have 1 to 9 digits"));
            }
            let kept = count.min(6);
            micros = digits(b, start, kept)? * 10u32.pow((6 - kept) as u32);
            pos = start + count;
        }
    }
    let time = NaiveTime::from_hms_micro_opt(hour, minute, second, micros).ok_or(err("invalid time of day"))?;
    Ok((time, b.get(pos..).unwrap_or_default()))
}

fn parse_offset(b: &[u8], dialect: Dialect) -> Result<Option<i32>, TimeError> {
    match b {
        [] => Ok(None),
        [b'Z'] | [b'z'] => Ok(Some(0)),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest.len() {
                5 if rest.get(2) == Some(&b':') => (digits(rest, 0, 2)?, digits(rest, 3, 2)?),
                4 => (digits(rest, 0, 2)?, digits(rest, 2, 2)?),
                2 if dialect == Dialect::FromIsoFormat => (digits(rest, 0, 2)?, 0),
                _ => return Err(err("invalid UTC offset")),
            };
            if h > 23 || m > 59 {
                return Err(err("invalid UTC offset"));
            }
            let secs = (h * 3600 + m * 60) as i32;
            Ok(Some(if *sign == b'-' { -secs } else { secs }))
        }
        _ => Err(err("unexpected characters after the time")),
    }
}

// Writing into a `String` cannot fail, so the `fmt::Result` below carries nothing.
fn write_offset(out: &mut String, off: i32) {
    use fmt::Write;
    let sign = if off < 0 { '-' } else { '+' };
    let abs = off.unsigned_abs();
    let _ = write!(out, "{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_both_styles() {
        let t = ModelTime::parse_model_str("2026-11-25T17:36:56.071388+00:00").unwrap();
        assert_eq!(t.render_pydantic(), "2026-11-25T17:36:56.071388Z");
        assert_eq!(t.render_isoformat(), "2026-11-25T17:36:56.071388+00:00");
        let whole = ModelTime::parse_model_str("2026-11-25T17:36:56.000000Z").unwrap();
        assert_eq!(whole.render_isoformat(), "2026-11-25T17:36:56+00:00");
    }

    #[test]
    fn request_timestamps_follow_fromisoformat() {
        assert!(parse_request_timestamp("2026-11-25T17:45:00+01").is_ok());
        assert!(parse_request_timestamp("2026-11-25 17:45:00+0000").is_ok());
        assert!(parse_request_timestamp("2026-11-25T17:45:00").unwrap().is_naive());
        assert!(parse_request_timestamp("yesterday").is_err());
        assert!(parse_request_timestamp("").is_err());
    }

    #[test]
    fn naive_is_compared_as_utc() {
        let naive = ModelTime::parse_model_str("2026-01-01T00:00:00").unwrap();
        let z = ModelTime::parse_model_str("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(naive.to_utc(), z.to_utc());
        let plus2 = ModelTime::parse_model_str("2026-01-01T02:00:00+02:00").unwrap();
        assert_eq!(plus2.to_utc(), z.to_utc());
    }
}
