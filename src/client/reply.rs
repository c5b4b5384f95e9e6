//! An NA answer of any status: read whole (capped), parsed as JSON when it is JSON, and turned into
//! a typed value or a [`ClientError::Refused`] carrying upstream's `{"error": "..."}` message.

use std::io::Read;
use std::time::Duration;

use crate::json::{parse, Map, ParseLimits, Value};

use super::error::{io_detail, ClientError, Phase};

/// Longest excerpt of a non-JSON error body shown to people.
const EXCERPT_CHARS: usize = 160;

/// An answer from the NA, 2xx or not.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The request method.
    pub method: &'static str,
    /// The request URL (user info redacted).
    pub url: String,
    /// The HTTP status.
    pub status: u16,
    /// The parsed JSON body; `Null` when the body is empty or not JSON.
    pub body: Value,
    /// The body as text (invalid UTF-8 replaced), for answers that are not JSON.
    pub text: String,
}

impl Reply {
    /// Reads a ureq response whole, refusing a body over `max_body_bytes`.
    pub(super) fn read(
        method: &'static str,
        url: String,
        response: ureq::http::Response<ureq::Body>,
        max_body_bytes: u64,
        budget: Duration,
    ) -> Result<Reply, ClientError> {
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        let read = response.into_body().into_reader().take(max_body_bytes.saturating_add(1)).read_to_end(&mut bytes);
        if let Err(e) = read {
            return Err(body_error(&url, &e, budget));
        }
        if u64::try_from(bytes.len()).map_or(true, |n| n > max_body_bytes) {
            return Err(ClientError::TooLarge { url, max_body_bytes });
        }
        let body = parse(&bytes, &ParseLimits::default()).unwrap_or(Value::Null);
        Ok(Reply { method, url, status, body, text: String::from_utf8_lossy(&bytes).into_owned() })
    }

    /// True for a 2xx status.
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Upstream's `error` string, else a one-line excerpt of the body, else `(empty body)`.
    pub(crate) fn error_message(&self) -> String {
        if let Some(message) = self.body.as_object().and_then(|m| m.get("error")).and_then(Value::as_str) {
            return message.to_string();
        }
        let excerpt: String = self
            .text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .filter(|c| !c.is_control())
            .take(EXCERPT_CHARS)
            .collect();
        if excerpt.is_empty() {
            "(empty body)".to_string()
        } else {
            excerpt
        }
    }

    /// The JSON object of a 2xx answer; a non-2xx answer becomes [`ClientError::Refused`].
    pub(crate) fn object(&self) -> Result<&Map, ClientError> {
        if !self.is_success() {
            return Err(self.refusal());
        }
        self.body
            .as_object()
            .ok_or_else(|| self.bad(format!("expected a JSON object, found {}", self.body.type_name())))
    }

    /// A string field of a 2xx answer object.
    pub(crate) fn str_field(&self, field: &str) -> Result<String, ClientError> {
        self.object()?
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| self.bad(format!("field {field} is missing or not a string")))
    }

    /// This answer as a refusal.
    pub(crate) fn refusal(&self) -> ClientError {
        ClientError::Refused {
            method: self.method,
            url: self.url.clone(),
            status: self.status,
            message: self.error_message(),
        }
    }

    /// A 2xx answer that lacks what the route promises.
    pub(crate) fn bad(&self, problem: impl Into<String>) -> ClientError {
        ClientError::BadResponse { url: self.url.clone(), status: self.status, problem: problem.into() }
    }
}

fn body_error(url: &str, e: &std::io::Error, budget: Duration) -> ClientError {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            ClientError::Timeout { url: url.to_string(), phase: Phase::Body, after: budget }
        }
        _ => ClientError::Transport { url: url.to_string(), phase: Phase::Body, detail: io_detail(e) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, text: &str) -> Reply {
        Reply {
            method: "POST",
            url: "http://na/admin/invite".to_string(),
            status,
            body: crate::json::parse_str(text).unwrap_or(Value::Null),
            text: text.to_string(),
        }
    }

    #[test]
    fn refusal_carries_upstream_error_message() {
        let r = reply(401, "{\"error\":\"Invalid admin signature\"}\n");
        assert_eq!(r.object().unwrap_err().to_string(), "the NA refused: 401 Invalid admin signature");
    }

    #[test]
    fn non_json_error_body_is_shown_as_a_short_excerpt() {
        let r = reply(502, "<html>\n  <b>Bad Gateway</b>\n</html>");
        assert_eq!(r.error_message(), "<html> <b>Bad Gateway</b> </html>");
        assert_eq!(reply(500, "").error_message(), "(empty body)");
    }
}
