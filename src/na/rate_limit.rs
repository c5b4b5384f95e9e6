//! Upstream's sliding-window rate limits (`na-wire.md` §8.4): a request is allowed when fewer than
//! `limit` allowed requests for its bucket key happened in the last 60 s; allowed requests are
//! recorded, refused ones are not. One limiter for the whole process (D26), keyed by the client
//! address chosen under the proxy-hops rule (D2). Monotonic time, so clock changes do not matter.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upstream's window.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// `admin:<addr>`: admin routes.
pub(crate) const ADMIN_LIMIT: usize = 30;
/// `join:<addr>`: every `/join`.
pub(crate) const JOIN_LIMIT: usize = 10;
/// `join-token-fail:<addr>`: unusable invite tokens.
pub(crate) const TOKEN_FAIL_LIMIT: usize = 3;
/// `discover:<addr>`: `POST /agents`.
pub(crate) const DISCOVER_LIMIT: usize = 30;
/// `verify:<addr>`: the public verify routes (D9).
pub(crate) const VERIFY_LIMIT: usize = 60;
// `node-auth-fail:<addr>` and `node-auth-fail-key:<scope>` (G3) take their limits from
// `AuthFailureLimits`, which `gm.toml` can change.

/// Bucket count that first triggers a sweep of idle buckets.
const SWEEP_AT: usize = 10_000;

/// The process-wide limiter.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    state: Mutex<Buckets>,
}

/// The buckets and the size at which the next sweep runs. After a sweep the threshold doubles
/// the surviving count, so a sweep costs amortised O(1) per request even when every bucket is
/// live (many distinct clients within one window), while idle buckets never pile up unboundedly.
#[derive(Debug, Default)]
struct Buckets {
    map: HashMap<String, VecDeque<Instant>>,
    sweep_at: usize,
}

impl RateLimiter {
    /// Consumes one request from bucket `key` if allowed.
    pub(crate) fn allow(&self, key: &str, limit: usize) -> bool {
        self.allow_at(key, limit, Instant::now())
    }

    /// Whether bucket `key` is full now (nothing is consumed): lets a route refuse before doing
    /// any work for a client that already used up its failures.
    pub(crate) fn is_exhausted(&self, key: &str, limit: usize) -> bool {
        let now = Instant::now();
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .map
            .get(key)
            .is_some_and(|hits| hits.iter().filter(|t| now.duration_since(**t) <= WINDOW).count() >= limit)
    }

    fn allow_at(&self, key: &str, limit: usize, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.map.len() >= state.sweep_at.max(SWEEP_AT) {
            state.map.retain(|_, hits| hits.back().is_some_and(|t| now.duration_since(*t) <= WINDOW));
            state.sweep_at = state.map.len().saturating_mul(2);
        }
        let hits = match state.map.get_mut(key) {
            Some(h) => h,
            None => state.map.entry(key.to_string()).or_default(),
        };
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
    fn many_live_buckets_do_not_sweep_on_every_request() {
        let rl = RateLimiter::default();
        let t0 = Instant::now();
        for i in 0..25_000 {
            assert!(rl.allow_at(&format!("k{i}"), 1, t0));
        }
        let state = rl.state.lock().unwrap();
        assert!(state.sweep_at >= 20_000, "threshold grows with live buckets: {}", state.sweep_at);
        drop(state);
        // Once they go idle, the next sweep drops them.
        for i in 0..25_000 {
            rl.allow_at(&format!("n{i}"), 1, t0 + Duration::from_secs(120));
        }
        assert!(rl.state.lock().unwrap().map.len() <= 25_000);
    }

    #[test]
    fn is_exhausted_peeks_without_consuming() {
        let rl = RateLimiter::default();
        assert!(!rl.is_exhausted("k", 2));
        assert!(rl.allow("k", 2));
        assert!(!rl.is_exhausted("k", 2), "one of two used");
        assert!(!rl.is_exhausted("k", 2), "peeking consumed nothing");
        assert!(rl.allow("k", 2));
        assert!(rl.is_exhausted("k", 2));
        assert!(!rl.is_exhausted("other", 2));
    }

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
