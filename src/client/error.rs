//! Errors of the NA client: a request that could not be made, an answer that could not be read, an
//! answer that was a refusal, or an answer gm will not trust.
//!
//! Every variant names the URL and, for transport failures, the phase. A non-2xx answer is
//! [`ClientError::Refused`] carrying upstream's `{"error": "..."}` message. No variant ever holds
//! what was sent: request bodies carry invite tokens and headers carry signatures.

use std::fmt;
use std::time::Duration;

/// Where in a request a transport failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Looking up the host name.
    Resolve,
    /// Opening the TCP connection.
    Connect,
    /// The TLS handshake of an `https` URL.
    Handshake,
    /// Sending the request and waiting for the status line and headers.
    Answer,
    /// Reading the response body.
    Body,
    /// Before the request: the deadline of the whole operation had already passed.
    Operation,
}

impl Phase {
    /// The phase as a verb phrase: "connecting to", "waiting for an answer from", …
    fn doing(self) -> &'static str {
        match self {
            Phase::Resolve => "resolving the host of",
            Phase::Connect => "connecting to",
            Phase::Handshake => "during the TLS handshake with",
            Phase::Answer => "waiting for an answer from",
            Phase::Body => "reading the answer from",
            Phase::Operation => "before requesting",
        }
    }
}

/// A failed NA request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The NA URL is not an `http://` or `https://` base URL.
    BadUrl {
        /// The URL as given (user info redacted).
        url: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The host name could not be resolved.
    Resolve {
        /// The request URL.
        url: String,
        /// The resolver's message.
        detail: String,
    },
    /// The connection could not be opened (refused, unreachable, TLS failure).
    Connect {
        /// The request URL.
        url: String,
        /// The cause, e.g. `connection refused`.
        detail: String,
    },
    /// The TLS handshake refused the NA's certificate (unknown issuer, expired, wrong name).
    Certificate {
        /// The request URL.
        url: String,
        /// Why, in plain words: `it has expired`.
        problem: String,
        /// True when no trusted CA issued it (a self-signed certificate, a private CA's): the case
        /// a private CA bundle is the remedy for.
        unknown_issuer: bool,
        /// True when the client trusted only a private CA bundle, not the host's roots.
        private_ca: bool,
    },
    /// A phase did not finish in time.
    Timeout {
        /// The request URL.
        url: String,
        /// The phase that ran out of time.
        phase: Phase,
        /// The time budget that ran out.
        after: Duration,
    },
    /// The connection failed after it was opened (reset, closed, malformed HTTP).
    Transport {
        /// The request URL.
        url: String,
        /// The phase it failed in.
        phase: Phase,
        /// The cause.
        detail: String,
    },
    /// The response body is larger than the configured cap.
    TooLarge {
        /// The request URL.
        url: String,
        /// The cap, in bytes.
        max_body_bytes: u64,
    },
    /// The NA answered with a status outside 2xx. Not a transport failure: the NA said no.
    Refused {
        /// `GET`, `POST`, …
        method: &'static str,
        /// The request URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The `error` string of the body, or a short excerpt of a body without one.
        message: String,
    },
    /// A 2xx answer whose body is not what the route returns.
    BadResponse {
        /// The request URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What is wrong with it.
        problem: String,
    },
    /// A well-formed answer gm refuses to accept (e.g. a certificate the NA key did not sign).
    Untrusted {
        /// The request URL.
        url: String,
        /// Why it is not trusted.
        problem: String,
    },
}

impl ClientError {
    /// True when the NA answered and said no (a non-2xx status): the request ran, a check failed.
    pub(crate) fn is_refusal(&self) -> bool {
        matches!(self, ClientError::Refused { .. })
    }

    /// The URL the failing request was sent to (user info redacted).
    pub(crate) fn url(&self) -> &str {
        match self {
            ClientError::BadUrl { url, .. }
            | ClientError::Resolve { url, .. }
            | ClientError::Connect { url, .. }
            | ClientError::Certificate { url, .. }
            | ClientError::Timeout { url, .. }
            | ClientError::Transport { url, .. }
            | ClientError::TooLarge { url, .. }
            | ClientError::Refused { url, .. }
            | ClientError::BadResponse { url, .. }
            | ClientError::Untrusted { url, .. } => url,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::BadUrl { url, problem } => write!(f, "invalid NA URL {url:?}: {problem}"),
            ClientError::Resolve { url, detail } => {
                write!(f, "cannot resolve the host of {url}: {detail}")
            }
            ClientError::Connect { url, detail } => write!(f, "cannot reach {url}: {detail}"),
            ClientError::Certificate { url, problem, .. } => {
                write!(f, "the TLS certificate of {url} is not trusted: {problem}")
            }
            ClientError::Timeout { url, phase, after } => {
                write!(f, "timed out after {} {} {url}", seconds(*after), phase.doing())
            }
            ClientError::Transport { url, phase, detail } => {
                write!(f, "connection failed {} {url}: {detail}", phase.doing())
            }
            ClientError::TooLarge { url, max_body_bytes } => {
                write!(f, "the answer from {url} is larger than the {max_body_bytes}-byte limit")
            }
            ClientError::Refused { status, message, .. } => write!(f, "the NA refused: {status} {message}"),
            ClientError::BadResponse { url, status, problem } => {
                write!(f, "unexpected answer from {url} ({status}): {problem}")
            }
            ClientError::Untrusted { url, problem } => {
                write!(f, "refusing the answer from {url}: {problem}")
            }
        }
    }
}

impl std::error::Error for ClientError {}

/// `5s`, `0.3s`: a duration as people read it in an error message, to the millisecond. A budget cut
/// by an operation deadline is a few microseconds short of it (`0.999996766s`), which reads as noise.
fn seconds(d: Duration) -> String {
    let ms = d.as_micros().saturating_add(500) / 1000;
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}s", ms as f64 / 1000.0)
    }
}

/// An I/O failure in plain words: the kind (`connection refused`) when it says something, else the
/// error's own text.
pub(crate) fn io_detail(e: &std::io::Error) -> String {
    let kind = e.kind().to_string();
    if kind == "other error" || kind == "uncategorized error" {
        e.to_string()
    } else {
        kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_url_and_the_phase() {
        let e = ClientError::Connect {
            url: "http://127.0.0.1:1/genesis".to_string(),
            detail: "connection refused".to_string(),
        };
        assert_eq!(e.to_string(), "cannot reach http://127.0.0.1:1/genesis: connection refused");
        let e = ClientError::Timeout {
            url: "http://na/admin/invite".to_string(),
            phase: Phase::Answer,
            after: Duration::from_millis(300),
        };
        assert_eq!(e.to_string(), "timed out after 0.3s waiting for an answer from http://na/admin/invite");
        assert_eq!(seconds(Duration::from_nanos(999_996_766)), "1s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5s");
        let e = ClientError::Refused {
            method: "POST",
            url: "http://na/join".to_string(),
            status: 403,
            message: "Invalid, expired, or used invite token".to_string(),
        };
        assert_eq!(e.to_string(), "the NA refused: 403 Invalid, expired, or used invite token");
        assert!(e.is_refusal());
    }
}
