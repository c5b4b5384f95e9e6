//! Request authentication: node proof of possession (`na-wire.md` §5), operator signatures v1 and
//! v2 (§6, `deviations.md` D6) and the operator key set they check against. Replay protection is a
//! ±300 s window plus nonces persisted per scope in SQLite, so a replay is refused after a restart.

pub mod admin;
pub mod node;
pub mod operators;

use chrono::{DateTime, Utc};

use crate::model::timestamp::parse_request_timestamp;

/// Upstream's freshness window, either side of now.
pub(crate) const WINDOW_SECONDS: i64 = 300;

/// How a request timestamp failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampProblem {
    /// Not a string, or not an ISO timestamp.
    Unparsable,
    /// Parsed, but without a UTC offset (upstream crashed; gm answers 400, D1).
    Naive,
    /// Outside the window; the absolute age in whole seconds, rounded as Python's `round`.
    Stale(i64),
}

/// Checks a request timestamp against `now` (Python `fromisoformat` rules).
pub fn check_timestamp(text: &str, now: DateTime<Utc>) -> Result<(), TimestampProblem> {
    let t = parse_request_timestamp(text).map_err(|_| TimestampProblem::Unparsable)?;
    if t.is_naive() {
        return Err(TimestampProblem::Naive);
    }
    let age_micros = (now - t.to_utc()).num_microseconds().map(i64::unsigned_abs).unwrap_or(u64::MAX);
    if age_micros > (WINDOW_SECONDS as u64) * 1_000_000 {
        return Err(TimestampProblem::Stale(round_half_even_seconds(age_micros)));
    }
    Ok(())
}

/// Python's `round()` of a number of seconds given in microseconds (ties go to the even second).
fn round_half_even_seconds(micros: u64) -> i64 {
    let whole = micros / 1_000_000;
    let frac = micros % 1_000_000;
    let rounded = match frac.cmp(&500_000) {
        std::cmp::Ordering::Less => whole,
        std::cmp::Ordering::Greater => whole + 1,
        std::cmp::Ordering::Equal => whole + (whole % 2),
    };
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_and_rounding() {
        let now = crate::model::timestamp::ModelTime::parse_model_str("2026-03-02T10:00:00Z").unwrap().to_utc();
        assert_eq!(check_timestamp("2026-03-02T09:55:00+00:00", now), Ok(()));
        assert_eq!(check_timestamp("2026-03-02T09:54:59.5+00:00", now), Err(TimestampProblem::Stale(300)));
        assert_eq!(check_timestamp("2026-03-02T09:54:58.5+00:00", now), Err(TimestampProblem::Stale(302)));
        assert_eq!(check_timestamp("2026-03-02T10:06:00Z", now), Err(TimestampProblem::Stale(360)));
        assert_eq!(check_timestamp("2026-03-02T10:00:00", now), Err(TimestampProblem::Naive));
        assert_eq!(check_timestamp("soon", now), Err(TimestampProblem::Unparsable));
    }
}
