//! HTTP clients of a Network Authority: the node side (`POST /join`, `/heartbeat`, `/renew`, signed
//! with the node key, `na-wire.md` §5 and §9.4) and the operator side (the `/admin/*` routes, signed
//! with an operator key in signature version 1 or 2, §6 and §9.5).
//!
//! [`NaClient`] owns one ureq agent. Every request runs under a deadline and reads a capped body
//! ([`ClientOptions`]); a failure names the URL and the phase. A non-2xx answer is not a transport
//! failure: it comes back as a [`Reply`] (status and parsed body) and becomes
//! [`ClientError::Refused`] with upstream's `{"error": "..."}` message when a caller needs a
//! success. Bodies are sent as the canonical JSON text of the value that was signed, so the bytes
//! on the wire and the bytes signed are one value.
//!
//! This module reads no files, environment or flags, and never logs a body, a header value or a
//! token: bodies carry invite tokens and headers carry signatures.

pub mod admin;
pub(crate) mod admin_signature;
pub mod deadline_io;
pub mod error;
pub(crate) mod feed;
pub(crate) mod genesis;
pub mod node;
pub mod options;
pub mod reply;
pub(crate) mod treaty;
pub(crate) mod treaty_succession;

#[cfg(test)]
pub(crate) mod fake_na;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::crypto::canonical::canonical_string;
use crate::json::Value;

pub use error::{ClientError, Phase};
pub use options::{ClientOptions, Deadline};
pub use reply::Reply;

/// A client of one NA, identified by its base URL (`http://127.0.0.1:8443`).
///
/// Each request gets its own ureq agent, built around that request's deadline (see [`deadline_io`]):
/// ureq's connection pool would otherwise hand a later request a TLS stream still bound to an earlier
/// deadline. gm's commands make one to three requests, so the lost connection reuse costs little.
#[derive(Debug, Clone)]
pub struct NaClient {
    /// ureq's default TLS configuration, built once.
    tls: Arc<rustls::ClientConfig>,
    /// The URL requests go to (may hold user info).
    wire_base_url: String,
    /// The same with user info redacted: the only form shown or logged.
    base_url: String,
    options: ClientOptions,
}

impl NaClient {
    /// A client of the NA at `na_url` (`http://` or `https://`, no query; a trailing `/` is
    /// dropped).
    pub fn new(na_url: &str, options: ClientOptions) -> Result<NaClient, ClientError> {
        let wire_base_url = check_base_url(na_url)?;
        let tls = deadline_io::tls_config().map_err(|e| ClientError::Connect {
            url: redact_user_info(&wire_base_url),
            detail: format!("cannot set up TLS: {e}"),
        })?;
        Ok(NaClient { tls, base_url: redact_user_info(&wire_base_url), wire_base_url, options })
    }

    /// An agent whose connections, TLS handshake included, end by `deadline`.
    fn agent_until(&self, deadline: Instant) -> ureq::Agent {
        let tls = deadline_io::DeadlineTls { config: Arc::clone(&self.tls), deadline };
        ureq::AgentBuilder::new()
            .timeout_connect(self.options.connect_timeout)
            // A redirect would turn a signed POST into an unsigned GET elsewhere; show it instead.
            .redirects(0)
            .user_agent(concat!("gm/", env!("CARGO_PKG_VERSION")))
            .tls_connector(Arc::new(tls))
            .resolver(deadline_io::DeadlineResolver { deadline })
            .build()
    }

    /// The base URL as it may be shown (user info redacted).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The timeouts and limits in force.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// The deadline of an operation starting now.
    pub fn deadline(&self) -> Deadline {
        Deadline::after(self.options.total_timeout)
    }

    /// `GET target` (a path with an optional query) with extra `headers`.
    pub fn get(&self, deadline: &Deadline, target: &str, headers: &[(&str, &str)]) -> Result<Reply, ClientError> {
        self.send(deadline, "GET", target, headers, None)
    }

    /// `POST target` with `body` sent as its canonical JSON text (`Content-Type: application/json`).
    pub fn post_json(
        &self,
        deadline: &Deadline,
        target: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Result<Reply, ClientError> {
        self.send(deadline, "POST", target, headers, Some(&canonical_string(body)))
    }

    /// `GET target` expecting a 2xx JSON object (public routes such as `/genesis`).
    pub fn get_object(&self, deadline: &Deadline, target: &str) -> Result<Reply, ClientError> {
        let reply = self.get(deadline, target, &[])?;
        reply.object()?;
        Ok(reply)
    }

    fn send(
        &self,
        deadline: &Deadline,
        method: &'static str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<Reply, ClientError> {
        let shown = format!("{}{target}", self.base_url);
        let budget = deadline.budget(self.options.request_budget()).ok_or_else(|| ClientError::Timeout {
            url: shown.clone(),
            phase: Phase::Operation,
            after: deadline.total(),
        })?;
        // ureq's own deadline (`timeout`) bounds connect and the plain-HTTP answer; the agent's TLS
        // connector bounds the handshake and TLS reads by the same instant.
        let agent = self.agent_until(Instant::now() + budget);
        let mut request = agent.request(method, &format!("{}{target}", self.wire_base_url)).timeout(budget);
        for (name, value) in headers {
            request = request.set(name, value);
        }
        let started = Instant::now();
        let result = match body {
            Some(text) => request.set("Content-Type", "application/json").send_string(text),
            None => request.call(),
        };
        let response = match result {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(t)) => return Err(self.transport_error(&t, shown, budget)),
        };
        let reply = Reply::read(method, shown, response, self.options.max_body_bytes, budget)?;
        log::debug!("{method} {} answered {} in {} ms", reply.url, reply.status, started.elapsed().as_millis());
        Ok(reply)
    }

    fn transport_error(&self, t: &ureq::Transport, url: String, budget: Duration) -> ClientError {
        let io = std::error::Error::source(t).and_then(|s| s.downcast_ref::<std::io::Error>());
        let timed_out =
            io.is_some_and(|e| matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock));
        let detail = match io {
            Some(e) => io_detail(e),
            None => t.message().unwrap_or("unknown failure").to_lowercase(),
        };
        match t.kind() {
            ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme => {
                ClientError::BadUrl { url, problem: "ureq cannot parse it as a URL" }
            }
            ureq::ErrorKind::Dns if timed_out => ClientError::Timeout { url, phase: Phase::Resolve, after: budget },
            ureq::ErrorKind::Dns => ClientError::Resolve { url, detail },
            // The one ConnectionFailed that comes after the TCP connect is the TLS handshake; its bound
            // is the request's deadline, not connect_timeout.
            ureq::ErrorKind::ConnectionFailed if timed_out && is_handshake(t) => {
                ClientError::Timeout { url, phase: Phase::Handshake, after: budget }
            }
            ureq::ErrorKind::ConnectionFailed if timed_out => {
                ClientError::Timeout { url, phase: Phase::Connect, after: self.options.connect_timeout.min(budget) }
            }
            ureq::ErrorKind::ConnectionFailed => ClientError::Connect { url, detail },
            _ if timed_out => ClientError::Timeout { url, phase: Phase::Answer, after: budget },
            ureq::ErrorKind::BadStatus | ureq::ErrorKind::BadHeader => {
                ClientError::Transport { url, phase: Phase::Answer, detail: format!("malformed HTTP answer: {detail}") }
            }
            _ => ClientError::Transport { url, phase: Phase::Answer, detail },
        }
    }
}

/// Whether a transport failure happened in ureq's TLS handshake (ureq 2 says so only in its message).
fn is_handshake(t: &ureq::Transport) -> bool {
    t.message().is_some_and(|m| m.starts_with("tls "))
}

/// An I/O failure in plain words: the kind (`connection refused`) when it says something, else the
/// error's own text.
fn io_detail(e: &std::io::Error) -> String {
    let kind = e.kind().to_string();
    if kind == "other error" || kind == "uncategorized error" {
        e.to_string()
    } else {
        kind
    }
}

/// Checks an NA base URL and drops a trailing `/`.
fn check_base_url(na_url: &str) -> Result<String, ClientError> {
    let url = na_url.trim().trim_end_matches('/');
    let bad = |problem| ClientError::BadUrl { url: redact_user_info(url), problem };
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &url["http://".len()..]
    } else if lower.starts_with("https://") {
        &url["https://".len()..]
    } else {
        return Err(bad("expected http:// or https:// followed by host[:port]"));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("the host is missing"));
    }
    if url.contains(['?', '#']) {
        return Err(bad("a base URL carries no query or fragment"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains whitespace"));
    }
    Ok(url.to_string())
}

/// `https://user:pass@host/x` becomes `https://[redacted]@host/x`: a password in the NA URL must
/// not reach an error message.
fn redact_user_info(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let after = scheme_end + "://".len();
    let rest = url.get(after..).unwrap_or("");
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest.get(..authority_end).and_then(|a| a.rfind('@')) {
        Some(at) => format!("{}[redacted]{}", url.get(..after).unwrap_or(""), rest.get(at..).unwrap_or("")),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::fake_na::{Answer, FakeNa};
    use super::*;

    fn short_options() -> ClientOptions {
        ClientOptions {
            connect_timeout: Duration::from_millis(500),
            read_timeout: Duration::from_millis(300),
            write_timeout: Duration::from_millis(200),
            total_timeout: Duration::from_secs(5),
            max_body_bytes: 1024,
        }
    }

    #[test]
    fn base_url_is_checked_and_user_info_never_shown() {
        assert_eq!(check_base_url(" http://127.0.0.1:8443/ ").unwrap(), "http://127.0.0.1:8443");
        assert!(matches!(check_base_url("127.0.0.1:8443"), Err(ClientError::BadUrl { .. })));
        assert!(check_base_url("http://na?x=1").is_err());
        let e = check_base_url("ftp://alice:s3cret@na").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert_eq!(redact_user_info("https://alice:s3cret@na.example/p"), "https://[redacted]@na.example/p");
    }

    #[test]
    fn connection_refused_names_the_url() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let client = NaClient::new(&format!("http://127.0.0.1:{port}"), short_options()).unwrap();
        let err = client.get(&client.deadline(), "/genesis", &[]).unwrap_err();
        assert_eq!(err.to_string(), format!("cannot reach http://127.0.0.1:{port}/genesis: connection refused"));
    }

    #[test]
    fn non_2xx_answer_is_a_reply_with_status_and_message() {
        let na = FakeNa::start(vec![Answer::json(429, "{\"error\":\"Rate limit exceeded\"}\n")]);
        let client = NaClient::new(&na.url(), short_options()).unwrap();
        let reply = client
            .post_json(&client.deadline(), "/admin/invite", &Value::Object(crate::json::Map::new()), &[])
            .unwrap();
        assert_eq!(reply.status, 429);
        assert_eq!(reply.error_message(), "Rate limit exceeded");
        let err = reply.object().unwrap_err();
        assert_eq!(err.to_string(), "the NA refused: 429 Rate limit exceeded");
        let seen = na.finish();
        assert_eq!(seen[0].body, b"{}");
        assert_eq!(seen[0].header("content-type"), Some("application/json"));
    }

    #[test]
    fn silent_na_times_out_within_the_request_budget() {
        let na = FakeNa::start(vec![Answer::Silent]);
        let options = short_options();
        let client = NaClient::new(&na.url(), options).unwrap();
        let started = Instant::now();
        let err = client.get(&client.deadline(), "/healthz", &[]).unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(err, ClientError::Timeout { phase: Phase::Answer, .. }), "{err:?}");
        assert!(elapsed < options.request_budget() + Duration::from_millis(500), "took {elapsed:?}");
        assert!(err.to_string().starts_with("timed out after 1s waiting for an answer from http://127.0.0.1:"));
        na.finish();
    }

    #[test]
    fn operation_deadline_caps_the_request_budget() {
        let na = FakeNa::start(vec![Answer::Silent]);
        let options = ClientOptions {
            read_timeout: Duration::from_secs(20),
            total_timeout: Duration::from_millis(400),
            ..short_options()
        };
        let client = NaClient::new(&na.url(), options).unwrap();
        let started = Instant::now();
        let err = client.get(&client.deadline(), "/healthz", &[]).unwrap_err();
        assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        na.finish();
    }

    #[test]
    fn oversized_body_is_refused() {
        let big = format!("{{\"x\":\"{}\"}}", "a".repeat(2048));
        let na = FakeNa::start(vec![Answer::json(200, &big)]);
        let client = NaClient::new(&na.url(), short_options()).unwrap();
        let err = client.get(&client.deadline(), "/genesis", &[]).unwrap_err();
        assert!(matches!(err, ClientError::TooLarge { max_body_bytes: 1024, .. }), "{err:?}");
        na.finish();
    }
}
