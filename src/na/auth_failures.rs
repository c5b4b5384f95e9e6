//! Bounded audit of authentication failures (`DEVIATIONS.md` G3). Upstream writes one
//! `node_auth_failed` / `admin_auth_failed` row per failed request, and `/heartbeat` has no rate
//! limit: anyone who reads a cert id and key from the public `/nodes` could post unsigned
//! heartbeats and grow the audit table by ~100 GB a day. gm keeps upstream's row for the first
//! failures and collapses the repeats:
//!
//! * per (event type, client address, scope or key id, reason), the first
//!   [`AuthFailureLimits::audit_burst`] failures in a window get their own row, exactly as upstream
//!   writes it;
//! * further repeats in the window are only counted; when the window closes, one row of the same
//!   event type carries the first row's details (without the nonce) plus `suppressed` (how many
//!   repeats had no row of their own), `window_started_at` and `window_seconds`;
//! * the open windows live in memory (at most [`MAX_WINDOWS`]; failures beyond that are counted in
//!   one `reason: "window_overflow"` row per event type) and are flushed by `gm serve`'s upkeep
//!   thread and on a clean shutdown. A `kill -9` loses at most the counts of the open windows,
//!   never an individual row.
//!
//! The rate limits that turn a node-auth failure into a 429 are applied by the routes with the
//! process limiter; this file only decides which rows are written.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::json::{Map, Value};
use crate::model::timestamp::isoformat_utc;

use super::audit::Event;

/// Most open windows kept in memory.
pub(crate) const MAX_WINDOWS: usize = 10_000;

/// How authentication failures are limited and audited. Settings live in `[server.limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthFailureLimits {
    /// Node-auth failures (`/join`, `/heartbeat`, `/renew`) one client address may cause per
    /// minute; after that every node request from it gets 429 until the minute has passed
    /// (`node_auth_failures_per_address`). Defaults to 10.
    pub per_address: usize,
    /// Node-auth failures per node key (scope) per minute, from any address; after that a failing
    /// request for that key gets 429 instead of 401, while correctly signed requests still pass
    /// (`node_auth_failures_per_key`). Defaults to 10.
    pub per_key: usize,
    /// Identical failures written one row each per window before repeats are only counted
    /// (`auth_failure_audit_burst`). Defaults to 3.
    pub audit_burst: usize,
    /// The collapse window (`auth_failure_audit_window_seconds`). Defaults to 60 s.
    pub audit_window: Duration,
}

impl Default for AuthFailureLimits {
    fn default() -> Self {
        AuthFailureLimits { per_address: 10, per_key: 10, audit_burst: 3, audit_window: Duration::from_secs(60) }
    }
}

/// What one failure is, for collapsing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct FailureKey {
    /// `node_auth_failed` or `admin_auth_failed`.
    pub event_type: &'static str,
    /// The client address.
    pub remote: String,
    /// The node scope or the admin key id.
    pub subject: String,
    /// The audit `reason`.
    pub reason: String,
}

#[derive(Debug)]
struct Window {
    opened: Instant,
    opened_at: DateTime<Utc>,
    written: usize,
    suppressed: u64,
    details: Map,
}

#[derive(Debug, Default)]
struct Windows {
    open: HashMap<FailureKey, Window>,
    overflow: HashMap<&'static str, (DateTime<Utc>, u64)>,
    closed: Vec<(&'static str, Map)>,
}

/// The open collapse windows of the process.
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    state: Mutex<Windows>,
}

impl FailureLog {
    /// Notes one failure with upstream's `details`. Returns the event to write now, or `None` when
    /// it is only counted (a repeat past the burst, or `limited`: the request is answered 429).
    pub(crate) fn note(
        &self,
        limits: &AuthFailureLimits,
        key: FailureKey,
        details: Map,
        limited: bool,
        now: DateTime<Utc>,
        at: Instant,
    ) -> Option<Event> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let event_type = key.event_type;
        let expired = state.open.get(&key).is_some_and(|w| at.duration_since(w.opened) >= limits.audit_window);
        if expired {
            // The upkeep thread has not flushed it yet: park its summary for the next flush and
            // start a new window.
            if let Some(s) = state.open.remove(&key).and_then(|old| summary(event_type, old, limits.audit_window)) {
                state.closed.push(s);
            }
        }
        if !state.open.contains_key(&key) && state.open.len() >= MAX_WINDOWS {
            let entry = state.overflow.entry(event_type).or_insert((now, 0));
            entry.1 = entry.1.saturating_add(1);
            return None;
        }
        let w = state.open.entry(key).or_insert_with(|| Window {
            opened: at,
            opened_at: now,
            written: 0,
            suppressed: 0,
            details: details.clone(),
        });
        if limited || w.written >= limits.audit_burst {
            w.suppressed = w.suppressed.saturating_add(1);
            return None;
        }
        w.written = w.written.saturating_add(1);
        Some(Event::new(event_type, details, now))
    }

    /// Summary events of the windows closed at `at` (of every window when `everything`, for a
    /// clean shutdown). Windows without suppressed repeats close silently.
    pub(crate) fn take_closed(
        &self,
        window: Duration,
        at: Instant,
        now: DateTime<Utc>,
        everything: bool,
    ) -> Vec<Event> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let closed: Vec<FailureKey> = state
            .open
            .iter()
            .filter(|(_, w)| everything || at.duration_since(w.opened) >= window)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out: Vec<Event> = state.closed.drain(..).map(|(t, d)| Event::new(t, d, now)).collect();
        for key in closed {
            if let Some(w) = state.open.remove(&key) {
                if let Some((t, d)) = summary(key.event_type, w, window) {
                    out.push(Event::new(t, d, now));
                }
            }
        }
        for (event_type, (since, count)) in state.overflow.drain() {
            let mut d = Map::new();
            d.insert("reason", Value::from("window_overflow"));
            d.insert("suppressed", Value::from(count));
            d.insert("window_started_at", Value::from(isoformat_utc(since)));
            out.push(Event::new(event_type, d, now));
        }
        out
    }
}

fn summary(event_type: &'static str, w: Window, window: Duration) -> Option<(&'static str, Map)> {
    if w.suppressed == 0 {
        return None;
    }
    let mut d = w.details;
    d.remove("nonce");
    d.insert("suppressed", Value::from(w.suppressed));
    d.insert("window_seconds", Value::from(window.as_secs()));
    d.insert("window_started_at", Value::from(isoformat_utc(w.opened_at)));
    Some((event_type, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(remote: &str) -> FailureKey {
        FailureKey {
            event_type: "node_auth_failed",
            remote: remote.into(),
            subject: "node:k".into(),
            reason: "invalid_signature".into(),
        }
    }

    fn details(nonce: &str) -> Map {
        let mut d = Map::new();
        d.insert("nonce", Value::from(nonce));
        d.insert("reason", Value::from("invalid_signature"));
        d
    }

    fn json(e: &Event) -> String {
        e.json_text().to_string()
    }

    #[test]
    fn the_burst_is_written_then_repeats_become_one_counted_row_when_the_window_closes() {
        let (log, limits) = (FailureLog::default(), AuthFailureLimits::default());
        let (t0, now) = (Instant::now(), Utc::now());
        let mut written = 0;
        for i in 0..1000 {
            if log.note(&limits, key("a"), details(&format!("n{i}")), false, now, t0).is_some() {
                written += 1;
            }
        }
        assert_eq!(written, 3);
        assert!(log.take_closed(limits.audit_window, t0 + Duration::from_secs(59), now, false).is_empty());
        let closed = log.take_closed(limits.audit_window, t0 + Duration::from_secs(60), now, false);
        assert_eq!(closed.len(), 1);
        let text = json(&closed[0]);
        assert!(text.contains("\"suppressed\": 997"), "{text}");
        assert!(text.contains("\"event_type\": \"node_auth_failed\""), "{text}");
        assert!(!text.contains("nonce"), "the summary drops the nonce: {text}");
        assert!(log.take_closed(limits.audit_window, t0 + Duration::from_secs(600), now, true).is_empty());
    }

    #[test]
    fn limited_failures_are_only_counted_and_a_late_window_is_parked_for_the_flush() {
        let (log, limits) = (FailureLog::default(), AuthFailureLimits::default());
        let (t0, now) = (Instant::now(), Utc::now());
        assert!(log.note(&limits, key("b"), details("x"), true, now, t0).is_none());
        let later = t0 + Duration::from_secs(61);
        assert!(log.note(&limits, key("b"), details("y"), false, now, later).is_some(), "a new window starts");
        let closed = log.take_closed(limits.audit_window, later, now, false);
        assert_eq!(closed.len(), 1);
        assert!(json(&closed[0]).contains("\"suppressed\": 1"));
    }

    #[test]
    fn windows_beyond_the_cap_are_counted_in_one_overflow_row() {
        let (log, limits) = (FailureLog::default(), AuthFailureLimits::default());
        let (t0, now) = (Instant::now(), Utc::now());
        for i in 0..MAX_WINDOWS + 5 {
            log.note(&limits, key(&format!("10.0.{}.{}", i / 256, i % 256)), details("n"), false, now, t0);
        }
        let closed = log.take_closed(limits.audit_window, t0, now, true);
        assert_eq!(closed.len(), 1, "no window had repeats; only the overflow row");
        assert!(json(&closed[0]).contains("\"reason\": \"window_overflow\", \"suppressed\": 5"));
    }
}
