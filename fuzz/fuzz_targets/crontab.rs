//! Schedule lines as operators write them (`src/sched/crontab.rs`): `Schedule::parse`, then the fire
//! times the runner asks for.
//!
//! Input: bytes 0..8 are an instant (seconds, reduced into 1970..2200), byte 8 a count, byte 9 a
//! look-back window in hours, the rest the schedule line (invalid UTF-8 is skipped: it comes from
//! TOML text).
//!
//! Properties: no panic; every fire time is strictly after the instant asked about and they increase;
//! the last fire time within a window lies inside it.
#![no_main]

use chrono::{DateTime, Duration, Utc};
use gm::sched::crontab::Schedule;
use libfuzzer_sys::fuzz_target;

/// 2200-01-01T00:00:00Z: the cron crate searches forward year by year, so keep instants plausible.
const LATEST: i64 = 7_258_118_400;

fuzz_target!(|data: &[u8]| {
    if data.len() < 10 {
        return;
    }
    let (head, line) = data.split_at(10);
    let Ok(line) = std::str::from_utf8(line) else { return };
    let Ok(schedule) = Schedule::parse(line) else { return };
    let mut seconds = [0u8; 8];
    seconds.copy_from_slice(&head[..8]);
    let seconds = (u64::from_le_bytes(seconds) % LATEST as u64) as i64;
    let Some(t) = DateTime::<Utc>::from_timestamp(seconds, 0) else { return };
    let _ = schedule.source();
    let count = usize::from(head[8] % 16);
    let window = Duration::hours(i64::from(head[9]));
    let mut previous = t;
    for next in schedule.upcoming(t, count) {
        assert!(next > previous, "{line:?}: {next} does not come after {previous}");
        previous = next;
    }
    if let Some(next) = schedule.next_after(t) {
        assert!(next > t, "{line:?}: next_after({t}) = {next}");
    }
    if let Some(last) = schedule.last_at_or_before(t, window) {
        assert!(last <= t && last >= t - window, "{line:?}: last_at_or_before({t}, {window}) = {last}");
    }
});
