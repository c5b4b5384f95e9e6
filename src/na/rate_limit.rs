//! Upstream's sliding-window rate limits (`na-wire.md` §8.4): a request is allowed when fewer than
//! `limit` allowed requests for its bucket key happened in the last 60 s; allowed requests are
//! recorded, refused ones are not. One limiter for the whole process (D26), keyed by the client
//! address chosen under the proxy-hops rule (D2). Monotonic time, so clock changes do not matter.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upstream's window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// `admin:<addr>`: admin routes.
pub const ADMIN_LIMIT: usize = 30;
/// `join:<addr>`: every `/join`.
pub const JOIN_LIMIT: usize = 10;
/// `join-token-fail:<addr>`: unusable invite tokens.
pub const TOKEN_FAIL_LIMIT: usize = 3;
/// `discover:<addr>`: `POST /agents`.
pub const DISCOVER_LIMIT: usize = 30;
/// `verify:<addr>`: the public verify routes (D9).
pub const VERIFY_LIMIT: usize = 60;

/// Buckets above this count trigger a sweep of idle ones, bounding memory under address churn.
const SWEEP_AT: usize = 10_000;

/// The process-wide limiter.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateLimiter {
    /// Consumes one request from bucket `key` if allowed.
    pub fn allow(&self, key: &str, limit: usize) -> bool {
        self.allow_at(key, limit, Instant::now())
    }

    fn allow_at(&self, key: &str, limit: usize, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > SWEEP_AT {
            buckets.retain(|_, hits| hits.back().is_some_and(|t| now.duration_since(*t) <= WINDOW));
        }
        let hits = buckets.entry(key.to_string()).or_default();
        while hits.front().is_some_and(|t| now.duration_since(*t) > WINDOW) {
            hits.pop_front();
        }
        if hits.len() >= limit {
            return false;
        }
        hits.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides() {
        let rl = RateLimiter::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(rl.allow_at("k", 3, t0));
        }
        assert!(!rl.allow_at("k", 3, t0 + Duration::from_secs(59)));
        assert!(rl.allow_at("other", 3, t0));
        assert!(rl.allow_at("k", 3, t0 + Duration::from_secs(61)));
    }
}
