//! Every bound the HTTP server enforces, with its default, in one struct.
//!
//! Owns: [`Limits`], its defaults, and the check that a set of limits is usable. Must not read configuration
//! files or environment variables: the application's config layer builds a `Limits` and hands it to
//! [`super::Server::bind`].

use std::time::Duration;

use super::error::HttpError;

/// Upper bound on one blocking socket read, so a connection thread notices deadlines and shutdown promptly.
const MAX_READ_SLICE: Duration = Duration::from_millis(250);

/// Lower bound on one blocking socket read, so tiny test timeouts do not turn into a busy loop.
const MIN_READ_SLICE: Duration = Duration::from_millis(10);

/// Bounds on what one client may send and how long it may take, and on the server's own resources.
///
/// Every field is public so the config layer can override single values on top of [`Limits::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head (request line plus headers); a larger head is answered with 431 and the connection
    /// is closed. Defaults to 16 KiB.
    pub max_head_bytes: usize,
    /// Longest request line (method, target and version, without the line break); a longer one is answered with
    /// 414 and the connection is closed. Defaults to 4096.
    pub max_request_line_bytes: usize,
    /// Most header fields in one request; more are answered with 431 and the connection is closed. Defaults
    /// to 100.
    pub max_headers: usize,
    /// Largest accepted `Content-Length`; a larger one is answered with 413 before any of the body is read, and
    /// the connection is closed. Defaults to 2 MiB.
    pub max_body_bytes: usize,
    /// Time allowed for a whole request head, counted from its first byte (for the first request of a
    /// connection, this is also how long the server waits for that first byte); a client that is slower is
    /// answered with 408 and dropped, which defeats slowloris-style attacks. Defaults to 10 s.
    pub head_timeout: Duration,
    /// Time allowed for a whole request body, counted from the end of its head. Defaults to 30 s.
    pub body_timeout: Duration,
    /// How long a keep-alive connection may sit idle between requests before the server closes it.
    /// Defaults to 15 s.
    pub keep_alive_idle: Duration,
    /// Time allowed for writing one whole response. Defaults to 30 s.
    pub write_timeout: Duration,
    /// Most connections open at once. At the cap the longest-idle keep-alive connection is closed to admit a
    /// new one; with none idle, the new one is answered with 503 by the accept thread and closed at once.
    /// Each open connection holds one file descriptor: `gm serve` raises its open-file limit to fit.
    /// Defaults to 4096.
    pub max_connections: usize,
    /// Most connections open at once from one TCP peer address (for IPv6, one /64). When an address is at its share, its
    /// longest-idle keep-alive connection is closed to admit the new one; with none idle, the new one is
    /// answered with 503 by the accept thread and closed. This keeps one client from taking every slot (and
    /// every file descriptor). Behind a reverse proxy every connection comes from the proxy, so the config
    /// layer raises it to `max_connections` there. Defaults to 1024, a quarter of the default
    /// `max_connections`.
    pub max_connections_per_address: usize,
    /// Stack size of each connection thread. Defaults to 256 KiB.
    pub thread_stack_bytes: usize,
    /// On shutdown, how long in-flight requests may take to finish before their connections are forced shut.
    /// Defaults to 10 s.
    pub shutdown_grace: Duration,
    /// Requests served on one connection before the server answers with `Connection: close`. Defaults to
    /// 10000.
    pub max_requests_per_connection: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 16 * 1024,
            max_request_line_bytes: 4096,
            max_headers: 100,
            max_body_bytes: 2 * 1024 * 1024,
            head_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            keep_alive_idle: Duration::from_secs(15),
            write_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_connections_per_address: 1024,
            thread_stack_bytes: 256 * 1024,
            shutdown_grace: Duration::from_secs(10),
            max_requests_per_connection: 10_000,
        }
    }
}

impl Limits {
    /// Rejects limits the server cannot run with, naming the setting.
    pub(super) fn validate(&self) -> Result<(), HttpError> {
        let positive_counts = [
            ("max_head_bytes", self.max_head_bytes),
            ("max_request_line_bytes", self.max_request_line_bytes),
            ("max_headers", self.max_headers),
            ("max_connections", self.max_connections),
            ("max_connections_per_address", self.max_connections_per_address),
            ("max_requests_per_connection", self.max_requests_per_connection),
        ];
        for (setting, value) in positive_counts {
            if value == 0 {
                return Err(HttpError::InvalidLimit { setting, problem: "must be at least 1" });
            }
        }
        let positive_durations = [
            ("head_timeout", self.head_timeout),
            ("body_timeout", self.body_timeout),
            ("keep_alive_idle", self.keep_alive_idle),
            ("write_timeout", self.write_timeout),
        ];
        for (setting, value) in positive_durations {
            if value < Duration::from_millis(1) {
                return Err(HttpError::InvalidLimit { setting, problem: "must be at least 1 ms" });
            }
        }
        if self.thread_stack_bytes < 64 * 1024 {
            return Err(HttpError::InvalidLimit { setting: "thread_stack_bytes", problem: "must be at least 64 KiB" });
        }
        Ok(())
    }

    /// Longest single blocking read: short enough that deadlines overshoot by little and shutdown is seen
    /// quickly, long enough that an idle connection costs almost nothing.
    pub(super) fn read_slice(&self) -> Duration {
        let shortest = self.head_timeout.min(self.body_timeout).min(self.keep_alive_idle);
        (shortest / 4).clamp(MIN_READ_SLICE, MAX_READ_SLICE)
    }

    /// Longest single blocking write; the whole response is still bounded by `write_timeout`.
    pub(super) fn write_slice(&self) -> Duration {
        self.write_timeout.clamp(MIN_READ_SLICE, MAX_READ_SLICE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_documented_values() {
        let limits = Limits::default();
        assert_eq!(limits.max_head_bytes, 16384);
        assert_eq!(limits.max_request_line_bytes, 4096);
        assert_eq!(limits.max_headers, 100);
        assert_eq!(limits.max_body_bytes, 2_097_152);
        assert_eq!(limits.head_timeout, Duration::from_secs(10));
        assert_eq!(limits.body_timeout, Duration::from_secs(30));
        assert_eq!(limits.keep_alive_idle, Duration::from_secs(15));
        assert_eq!(limits.write_timeout, Duration::from_secs(30));
        assert_eq!(limits.max_connections, 4096);
        assert_eq!(limits.max_connections_per_address, 1024);
        assert_eq!(limits.thread_stack_bytes, 262_144);
        assert_eq!(limits.shutdown_grace, Duration::from_secs(10));
        assert_eq!(limits.max_requests_per_connection, 10_000);
        assert!(limits.validate().is_ok());
    }

    #[test]
    fn validate_names_the_bad_setting() {
        let limits = Limits { max_connections: 0, ..Limits::default() };
        let err = limits.validate().err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("invalid HTTP limit max_connections: must be at least 1"));
        let limits = Limits { head_timeout: Duration::ZERO, ..Limits::default() };
        assert!(limits.validate().is_err());
        let limits = Limits { thread_stack_bytes: 1024, ..Limits::default() };
        assert!(limits.validate().is_err());
    }

    #[test]
    fn read_slice_is_bounded() {
        assert_eq!(Limits::default().read_slice(), Duration::from_millis(250));
        let short = Limits { head_timeout: Duration::from_millis(500), ..Limits::default() };
        assert_eq!(short.read_slice(), Duration::from_millis(125));
        let tiny = Limits { keep_alive_idle: Duration::from_millis(1), ..Limits::default() };
        assert_eq!(tiny.read_slice(), Duration::from_millis(10));
    }
}
