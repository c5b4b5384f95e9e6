//! Errors of the HTTP layer: why the server could not start or run, why a request was refused, and why a
//! percent-encoded string could not be decoded.
//!
//! Owns: [`HttpError`], [`PercentDecodeError`] and the internal `Rejection` (a protocol-level refusal with its
//! status and exact response body). Must not know about the application's error bodies: the only bodies here
//! are the fixed protocol-level ones the server writes itself.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Why the server could not start or finish running.
#[derive(Debug)]
pub enum HttpError {
    /// The listening socket could not be bound.
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// What the operating system said.
        source: io::Error,
    },
    /// The listening socket was bound but could not be set up.
    Listener {
        /// The step that failed, e.g. "read the local address".
        step: &'static str,
        /// What the operating system said.
        source: io::Error,
    },
    /// A [`super::Limits`] value the server cannot run with.
    InvalidLimit {
        /// The name of the `Limits` field.
        setting: &'static str,
        /// What is wrong with its value.
        problem: &'static str,
    },
    /// A server thread could not be started.
    Spawn {
        /// The thread's name.
        thread: &'static str,
        /// What the operating system said.
        source: io::Error,
    },
    /// The accept thread ended by panicking, which is a bug in the HTTP layer.
    AcceptLoopPanicked,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Bind { addr, source } => {
                write!(f, "cannot listen on {addr}: ")?;
                match source.kind() {
                    io::ErrorKind::AddrInUse => {
                        write!(f, "the address is already in use (is another server running?)")
                    }
                    io::ErrorKind::PermissionDenied => {
                        write!(f, "permission denied (ports below 1024 need privileges)")
                    }
                    io::ErrorKind::AddrNotAvailable => {
                        write!(f, "the address is not assigned to this machine")
                    }
                    _ => write!(f, "{source}"),
                }
            }
            HttpError::Listener { step, source } => {
                write!(f, "cannot set up the listening socket: {step}: {source}")
            }
            HttpError::InvalidLimit { setting, problem } => {
                write!(f, "invalid HTTP limit {setting}: {problem}")
            }
            HttpError::Spawn { thread, source } => {
                write!(f, "cannot start thread {thread}: {source}")
            }
            HttpError::AcceptLoopPanicked => {
                write!(f, "the HTTP accept thread panicked; this is a bug in gm, please report it")
            }
        }
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HttpError::Bind { source, .. } | HttpError::Listener { source, .. } | HttpError::Spawn { source, .. } => {
                Some(source)
            }
            HttpError::InvalidLimit { .. } | HttpError::AcceptLoopPanicked => None,
        }
    }
}

/// Why [`super::percent_decode`] could not produce a `String`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PercentDecodeError {
    /// The decoded bytes are not UTF-8; they are kept whole so nothing is lost.
    InvalidUtf8 {
        /// Every decoded byte.
        bytes: Vec<u8>,
        /// Length of the longest valid UTF-8 prefix of `bytes`.
        valid_up_to: usize,
    },
}

impl fmt::Display for PercentDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PercentDecodeError::InvalidUtf8 { valid_up_to, .. } => {
                write!(f, "percent-decoded bytes are not UTF-8 (first invalid byte at offset {valid_up_to})")
            }
        }
    }
}

impl std::error::Error for PercentDecodeError {}

/// Which part of a request exchange ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for, or reading, the request head.
    Head,
    /// Reading the request body.
    Body,
}

/// A request the server refuses itself, before or instead of calling the handler; the connection is closed
/// after the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Rejection {
    /// httparse could not parse the head.
    Malformed { cause: httparse::Error },
    /// A header value that is not UTF-8.
    HeaderNotUtf8 { name: String },
    /// A `Content-Length` that is not a number, or several that disagree.
    BadContentLength,
    /// More than one `Host` header field line.
    DuplicateHost,
    /// The request line is longer than `max_request_line_bytes`.
    RequestLineTooLong { limit: usize },
    /// The head is larger than `max_head_bytes`.
    HeadTooLarge { limit: usize },
    /// More header fields than `max_headers`.
    TooManyHeaders { limit: usize },
    /// `Content-Length` above `max_body_bytes`.
    BodyTooLarge { length: u64, limit: usize },
    /// A request with `Transfer-Encoding`.
    TransferEncoding,
    /// A version other than HTTP/1.0 and HTTP/1.1.
    UnsupportedVersion,
    /// The head or the body did not arrive in time.
    Timeout { phase: Phase, limit: Duration },
}

impl Rejection {
    /// The status code of the answer.
    pub(super) fn status(&self) -> u16 {
        match self {
            Rejection::Malformed { .. }
            | Rejection::HeaderNotUtf8 { .. }
            | Rejection::BadContentLength
            | Rejection::DuplicateHost => 400,
            Rejection::Timeout { .. } => 408,
            Rejection::BodyTooLarge { .. } => 413,
            Rejection::RequestLineTooLong { .. } => 414,
            Rejection::HeadTooLarge { .. } | Rejection::TooManyHeaders { .. } => 431,
            Rejection::TransferEncoding => 501,
            Rejection::UnsupportedVersion => 505,
        }
    }

    /// The `error` text of the JSON answer body.
    pub(super) fn public_message(&self) -> &'static str {
        match self {
            Rejection::Malformed { .. }
            | Rejection::HeaderNotUtf8 { .. }
            | Rejection::BadContentLength
            | Rejection::DuplicateHost => "Bad Request",
            Rejection::Timeout { .. } => "Request timeout",
            Rejection::BodyTooLarge { .. } => "Request body too large",
            Rejection::RequestLineTooLong { .. } => "URI too long",
            Rejection::HeadTooLarge { .. } | Rejection::TooManyHeaders { .. } => "Request header fields too large",
            Rejection::TransferEncoding => "Transfer-Encoding is not supported; send a Content-Length body",
            Rejection::UnsupportedVersion => "HTTP version not supported",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Malformed { cause } => write!(f, "malformed request head: {cause}"),
            Rejection::HeaderNotUtf8 { name } => {
                write!(f, "header {name} has a value that is not UTF-8")
            }
            Rejection::BadContentLength => {
                write!(f, "Content-Length is not a number or appears with different values")
            }
            Rejection::DuplicateHost => write!(f, "more than one Host header field"),
            Rejection::RequestLineTooLong { limit } => {
                write!(f, "request line longer than max_request_line_bytes ({limit}); raise that limit to accept it")
            }
            Rejection::HeadTooLarge { limit } => {
                write!(f, "request head larger than max_head_bytes ({limit}); raise that limit to accept it")
            }
            Rejection::TooManyHeaders { limit } => {
                write!(f, "more header fields than max_headers ({limit}); raise that limit to accept them")
            }
            Rejection::BodyTooLarge { length, limit } => {
                write!(f, "Content-Length {length} is over max_body_bytes ({limit}); raise that limit to accept it")
            }
            Rejection::TransferEncoding => {
                write!(f, "request uses Transfer-Encoding, which is not supported")
            }
            Rejection::UnsupportedVersion => write!(f, "HTTP version other than 1.0 and 1.1"),
            Rejection::Timeout { phase: Phase::Head, limit } => {
                write!(f, "request head not complete within head_timeout ({} ms)", limit.as_millis())
            }
            Rejection::Timeout { phase: Phase::Body, limit } => {
                write!(f, "request body not complete within body_timeout ({} ms)", limit.as_millis())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_error_names_address_and_reason() {
        let addr: SocketAddr = ([127, 0, 0, 1], 8080).into();
        let err = HttpError::Bind { addr, source: io::Error::from(io::ErrorKind::AddrInUse) };
        assert_eq!(
            err.to_string(),
            "cannot listen on 127.0.0.1:8080: the address is already in use (is another server running?)"
        );
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn rejections_map_to_status_and_fixed_bodies() {
        let cases = [
            (Rejection::Malformed { cause: httparse::Error::Token }, 400, "Bad Request"),
            (Rejection::RequestLineTooLong { limit: 1 }, 414, "URI too long"),
            (Rejection::HeadTooLarge { limit: 1 }, 431, "Request header fields too large"),
            (Rejection::TooManyHeaders { limit: 1 }, 431, "Request header fields too large"),
            (Rejection::BodyTooLarge { length: 9, limit: 1 }, 413, "Request body too large"),
            (Rejection::TransferEncoding, 501, "Transfer-Encoding is not supported; send a Content-Length body"),
            (Rejection::UnsupportedVersion, 505, "HTTP version not supported"),
            (Rejection::Timeout { phase: Phase::Head, limit: Duration::from_secs(1) }, 408, "Request timeout"),
        ];
        for (rejection, status, message) in cases {
            assert_eq!(rejection.status(), status, "{rejection}");
            assert_eq!(rejection.public_message(), message);
        }
    }

    #[test]
    fn limit_rejections_name_the_setting() {
        let text = Rejection::HeadTooLarge { limit: 16384 }.to_string();
        assert!(text.contains("max_head_bytes (16384)"), "{text}");
        let text = Rejection::Timeout { phase: Phase::Body, limit: Duration::from_secs(30) }.to_string();
        assert!(text.contains("body_timeout (30000 ms)"), "{text}");
    }
}
