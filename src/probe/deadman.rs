//! The dead-man switch (`operations.md` §4.4): after a run in which every check passed, `GET` the
//! ping URL (Healthchecks.io style) with a short timeout and one retry. No ping is the alert: a
//! failing check, a probe that crashed or a host that is down all look the same to the service.
//!
//! The ping URL is a capability (anyone holding it can report "up"), so it is never shown whole:
//! messages name only its scheme and host.

use std::time::Duration;

use crate::client::{ClientOptions, NaClient, Trust};

/// Pause before the one retry.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// How the ping went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PingOutcome {
    /// The URL as it may be shown (scheme and host only).
    pub shown_url: String,
    /// True when the service answered 2xx.
    pub ok: bool,
    /// `200 after 1 attempt(s)`, or the last failure.
    pub detail: String,
}

/// Pings `url` (GET), retrying once after a failure; each attempt is bounded by `timeout`.
pub(crate) fn ping(url: &str, timeout: Duration) -> PingOutcome {
    let shown_url = shown_url(url);
    let (base, target) = split_url(url);
    let options = ClientOptions {
        connect_timeout: timeout,
        read_timeout: timeout,
        write_timeout: timeout,
        total_timeout: timeout,
        max_body_bytes: 64 * 1024,
        // The ping service is a public one (Healthchecks.io and the like): --ca-file is the NA's
        // private CA and does not apply here.
        trust: Trust::HostRoots,
    };
    let client = match NaClient::new(base, options) {
        Ok(client) => client,
        Err(_) => return PingOutcome { shown_url, ok: false, detail: "not an http(s) URL".to_string() },
    };
    let mut detail = String::new();
    for attempt in 1..=2 {
        match client.get(&client.deadline(), &target, &[]) {
            Ok(reply) if reply.is_success() => {
                return PingOutcome {
                    shown_url,
                    ok: true,
                    detail: format!("{} after {attempt} attempt(s)", reply.status),
                }
            }
            Ok(reply) => detail = format!("answered HTTP {}", reply.status),
            // The client's message names the URL, which must not be shown: keep only the cause.
            Err(e) => {
                detail = e.to_string().rsplit_once(": ").map_or("request failed".to_string(), |(_, c)| c.to_string())
            }
        }
        if attempt == 1 {
            std::thread::sleep(RETRY_PAUSE);
        }
    }
    PingOutcome { shown_url, ok: false, detail: format!("{detail} (2 attempts)") }
}

/// `https://hc-ping.com/uuid?x` splits into `https://hc-ping.com` and `/uuid?x`.
fn split_url(url: &str) -> (&str, String) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url.get(after_scheme..).and_then(|rest| rest.find(['/', '?'])) {
        Some(i) => {
            let cut = after_scheme + i;
            let target = url.get(cut..).unwrap_or_default();
            let target = if target.starts_with('?') { format!("/{target}") } else { target.to_string() };
            (url.get(..cut).unwrap_or(url), target)
        }
        None => (url, "/".to_string()),
    }
}

/// Scheme and host of `url`, with `/…` when a path or query was cut.
pub(crate) fn shown_url(url: &str) -> String {
    let (base, target) = split_url(url);
    let base = match base.find("://") {
        Some(i) => {
            let (scheme, rest) = base.split_at(i + 3);
            format!("{scheme}{}", rest.rsplit_once('@').map_or(rest, |(_, host)| host))
        }
        None => base.to_string(),
    };
    if target == "/" {
        base
    } else {
        format!("{base}/…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_urls_split_and_are_shown_without_their_secret() {
        assert_eq!(split_url("https://hc-ping.com/0f9a"), ("https://hc-ping.com", "/0f9a".to_string()));
        assert_eq!(split_url("http://127.0.0.1:9/p?x=1"), ("http://127.0.0.1:9", "/p?x=1".to_string()));
        assert_eq!(split_url("http://host?rid=1"), ("http://host", "/?rid=1".to_string()));
        assert_eq!(split_url("http://host"), ("http://host", "/".to_string()));
        assert_eq!(shown_url("https://hc-ping.com/0f9a-secret"), "https://hc-ping.com/…");
        assert_eq!(shown_url("https://user:pw@ping.example/x"), "https://ping.example/…");
        assert_eq!(shown_url("http://host"), "http://host");
    }
}
