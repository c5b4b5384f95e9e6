//! The Clock: every piece of code that needs "now" takes a `&dyn Clock`.
//!
//! Production uses [`SystemClock`]; tests and vector replays use [`FixedClock`] so replay windows, CRL
//! `next_update` and expiry checks are tested at fixed instants, never by sleeping.

use chrono::{DateTime, Timelike, Utc};

/// A source of the current UTC time.
pub trait Clock: Send + Sync {
    /// The current instant, with microsecond precision (upstream generates times with `now()`).
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock, truncated to microseconds like Python's `datetime.now(timezone.utc)`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate_to_micros(Utc::now())
    }
}

/// A clock frozen at one instant (tests, vector replays).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// When this binary was built: `SOURCE_DATE_EPOCH` for reproducible builds, else the build machine's
/// clock (build.rs). A system clock earlier than this is wrong for certain, typically a device that
/// booted without a real-time clock or NTP; `gm serve` and `gm readiness` say so (issue 8 item 5).
pub fn build_time() -> Option<DateTime<Utc>> {
    let secs: i64 = env!("GM_BUILD_EPOCH").parse().ok()?;
    DateTime::from_timestamp(secs, 0).filter(|t| t.timestamp() > 0)
}

/// Drops sub-microsecond precision, which upstream's datetimes never carry.
pub(crate) fn truncate_to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = t.nanosecond();
    t.with_nanosecond(nanos - nanos % 1_000).unwrap_or(t)
}
