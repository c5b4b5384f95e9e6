//! The client's timeouts and limits, every default in one place, and the [`Deadline`] of one
//! operation.
//!
//! gm wants a hard bound on every call (a server that drips one byte at a time must not hold a
//! client forever), so each request runs under one deadline of
//! `connect_timeout + write_timeout + read_timeout`, cut short by what is left of the operation's
//! `total_timeout`. Requests and answers here are a few KiB, so the write and read budgets are
//! spent almost entirely waiting for the NA to answer.
//!
//! The CA certificates an `https` NA is verified against ([`Trust`]) travel here too, so that every
//! command built on these options (admin, join, feed, treaty, probe, readiness) can take a private
//! CA bundle the same way.

use std::time::{Duration, Instant};

use super::roots::Trust;

/// Timeouts, limits and TLS trust of an [`super::NaClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Time allowed to open the TCP (and TLS) connection. Defaults to 5 s.
    pub connect_timeout: Duration,
    /// Time allowed for the NA to answer once the request is sent. Defaults to 10 s.
    pub read_timeout: Duration,
    /// Time allowed to send the request. Defaults to 10 s.
    pub write_timeout: Duration,
    /// Deadline of one whole operation, which may make several requests (signature v2 fetches
    /// `/sovereign.json` first; join fetches `/genesis`, posts `/join` and sends a heartbeat).
    /// Defaults to 30 s.
    pub total_timeout: Duration,
    /// Largest response body read; a larger one fails instead of filling memory. Defaults to
    /// 10 MiB.
    pub max_body_bytes: u64,
    /// The CA certificates an `https` NA's certificate must chain to. Defaults to the host's CA
    /// bundle.
    pub trust: Trust,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(30),
            max_body_bytes: 10 * 1024 * 1024,
            trust: Trust::HostRoots,
        }
    }
}

impl ClientOptions {
    /// The most one request may take: connect, send and answer budgets together.
    pub(crate) fn request_budget(&self) -> Duration {
        self.connect_timeout.saturating_add(self.write_timeout).saturating_add(self.read_timeout)
    }
}

/// The instant by which an operation must be finished.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Option<Instant>,
    total: Duration,
}

impl Deadline {
    /// A deadline `total` from now. A `total` too large to represent means no operation deadline
    /// (each request still has its own budget).
    pub(crate) fn after(total: Duration) -> Deadline {
        Deadline { at: Instant::now().checked_add(total), total }
    }

    /// The operation's whole time budget.
    pub(crate) fn total(&self) -> Duration {
        self.total
    }

    /// The budget for the next request: `per_request`, shortened to what is left of the
    /// operation; `None` once the deadline has passed.
    pub(crate) fn budget(&self, per_request: Duration) -> Option<Duration> {
        let Some(at) = self.at else {
            return Some(per_request);
        };
        let left = at.checked_duration_since(Instant::now())?;
        if left.is_zero() {
            return None;
        }
        Some(left.min(per_request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_budget_is_capped_by_what_is_left_of_the_operation() {
        let options = ClientOptions::default();
        assert_eq!(options.request_budget(), Duration::from_secs(25));
        let deadline = Deadline::after(Duration::from_secs(1));
        let budget = deadline.budget(options.request_budget()).unwrap();
        assert!(budget <= Duration::from_secs(1));
        let spent = Deadline::after(Duration::ZERO);
        assert_eq!(spent.budget(Duration::from_secs(5)), None);
    }
}
