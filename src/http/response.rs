//! What a handler returns, and how it becomes bytes on the wire.
//!
//! Owns: [`Response`] and its constructors, the reason-phrase table, the JSON error body the server itself
//! uses, and serialising a response (status line, framing headers, handler headers, body) into one buffer.
//! Must not write to sockets (that is `conn.rs`) and must not know any application error table: the handler
//! chooses its own bodies.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// A response from a handler: status, extra header fields and the whole body.
///
/// The server adds `Content-Length`, `X-Request-ID`, `Connection` and `Date` itself; handler fields with
/// those names, `Transfer-Encoding`, or bytes that could split the header block are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// Header fields in the order they are written, e.g. `("Content-Type", "application/json")`.
    pub headers: Vec<(String, String)>,
    /// The body; not sent for `HEAD` requests, though its length is.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with no header fields and an empty body.
    pub fn new(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    /// Adds a header field.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A JSON body `{"error":"<message>"}` plus a newline, with the message escaped to ASCII JSON.
    pub(crate) fn json_error(status: u16, message: &str) -> Response {
        let mut body = String::with_capacity(message.len() + 13);
        body.push_str("{\"error\":");
        crate::json::write_string(&mut body, message, true);
        body.push_str("}\n");
        Response::bytes(status, "application/json", body)
    }

    /// A body that is already JSON text, sent as `application/json`.
    #[cfg(test)]
    pub(crate) fn json(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::bytes(status, "application/json", body)
    }

    /// A UTF-8 plain-text body, sent as `text/plain; charset=utf-8`.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::bytes(status, "text/plain; charset=utf-8", body.into().into_bytes())
    }

    /// A body of any content type.
    pub(crate) fn bytes(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response { status, headers: vec![("Content-Type".to_owned(), content_type.to_owned())], body: body.into() }
    }

    /// Whether the handler asked for the connection to be closed with `Connection: close`.
    pub(super) fn asks_to_close(&self) -> bool {
        self.headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("connection")
                && value.split(',').any(|token| token.trim().eq_ignore_ascii_case("close"))
        })
    }
}

/// The reason phrase for a status code, or `"Unknown"`.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// How one response is to be framed on the wire.
#[derive(Debug, Clone, Copy)]
pub(super) struct Framing<'a> {
    /// The id echoed in `X-Request-ID`.
    pub(super) request_id: &'a str,
    /// Whether the connection stays open afterwards.
    pub(super) keep_alive: bool,
    /// Whether the request was `HEAD` (length sent, body not).
    pub(super) head_only: bool,
}

/// Serialises `response` into `out` (cleared first) as one buffer: status line, `Content-Length`,
/// `Content-Type`, `X-Request-ID`, `Connection`, `Date`, the other handler fields, blank line, body. Returns
/// the status actually sent (an invalid handler status becomes 500).
pub(super) fn encode(response: &Response, framing: Framing<'_>, date: &mut DateCache, out: &mut Vec<u8>) -> u16 {
    out.clear();
    encode_after(response, framing, date, out)
}

/// [`encode`] appending to what `out` holds: how the event loop answers pipelined requests with one write.
pub(super) fn encode_after(response: &Response, framing: Framing<'_>, date: &mut DateCache, out: &mut Vec<u8>) -> u16 {
    let (status, reason) = match response.status {
        100..=999 => (response.status, reason_phrase(response.status)),
        other => {
            log::error!("handler returned invalid status {other}; sending 500 instead");
            (500, reason_phrase(500))
        }
    };
    let bodiless_status = status < 200 || status == 204 || status == 304;
    let send_body = !framing.head_only && !bodiless_status;
    out.reserve(160 + response.body.len() + response.headers.len() * 48);
    let _ = write!(out, "HTTP/1.1 {status} {reason}\r\n");
    if !(status < 200 || status == 204) {
        let _ = write!(out, "Content-Length: {}\r\n", if bodiless_status { 0 } else { response.body.len() });
    }
    let content_type = response.headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    if let Some((name, value)) = content_type {
        push_field(out, name, value);
    }
    push_field(out, "X-Request-ID", framing.request_id);
    out.extend_from_slice(if framing.keep_alive { b"Connection: keep-alive\r\n" } else { b"Connection: close\r\n" });
    out.extend_from_slice(b"Date: ");
    out.extend_from_slice(date.now());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &response.headers {
        if !is_server_owned(name) {
            push_field(out, name, value);
        }
    }
    out.extend_from_slice(b"\r\n");
    if send_body {
        out.extend_from_slice(&response.body);
    }
    status
}

fn is_server_owned(name: &str) -> bool {
    ["content-type", "content-length", "x-request-id", "connection", "date", "transfer-encoding"]
        .iter()
        .any(|owned| name.eq_ignore_ascii_case(owned))
}

/// Writes one header field, dropping it (with a warning) if it could break the header block.
fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    let name_ok = !name.is_empty() && name.bytes().all(is_token_byte);
    let value_ok = value.bytes().all(|b| b == b'\t' || (b >= b' ' && b != 0x7f));
    if !(name_ok && value_ok) {
        log::warn!("dropping response header {name:?}: invalid name or value bytes");
        return;
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The `Date` header value, formatted at most once per second per connection.
#[derive(Debug)]
pub(super) struct DateCache {
    second: u64,
    text: [u8; 29],
}

impl DateCache {
    /// An empty cache; the first call to `now` formats.
    pub(super) fn new() -> DateCache {
        DateCache { second: u64::MAX, text: [b' '; 29] }
    }

    /// The current time as an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
    pub(super) fn now(&mut self) -> &[u8] {
        let second = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        if second != self.second {
            self.second = second;
            self.text = imf_fixdate(second);
        }
        &self.text
    }
}

/// Formats seconds since the Unix epoch as an IMF-fixdate (RFC 9110 section 5.6.7).
fn imf_fixdate(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    let days = secs / 86_400;
    let of_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut out = [b' '; 29];
    let weekday = DAYS[(days % 7) as usize];
    let month_name = MONTHS[(month - 1) as usize];
    out[..3].copy_from_slice(weekday);
    out[3] = b',';
    put_two(&mut out[5..7], day);
    out[8..11].copy_from_slice(month_name);
    put_two(&mut out[12..14], year / 100 % 100);
    put_two(&mut out[14..16], year % 100);
    put_two(&mut out[17..19], of_day / 3600);
    out[19] = b':';
    put_two(&mut out[20..22], of_day / 60 % 60);
    out[22] = b':';
    put_two(&mut out[23..25], of_day % 60);
    out[26..29].copy_from_slice(b"GMT");
    out
}

fn put_two(dst: &mut [u8], value: u64) {
    if let [tens, ones] = dst {
        *tens = b'0' + (value / 10 % 10) as u8;
        *ones = b'0' + (value % 10) as u8;
    }
}

/// Howard Hinnant's days-to-civil algorithm for the proleptic Gregorian calendar.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn encoded(response: &Response, keep_alive: bool, head_only: bool) -> String {
        let mut out = Vec::new();
        let framing = Framing { request_id: "rid", keep_alive, head_only };
        encode(response, framing, &mut DateCache::new(), &mut out);
        String::from_utf8(out).unwrap()
    }

    fn without_date(text: &str) -> String {
        text.split("\r\n").filter(|line| !line.starts_with("Date: ")).collect::<Vec<_>>().join("\r\n")
    }

    #[test]
    fn json_error_escapes_to_ascii() {
        let response = Response::json_error(404, "Not found");
        assert_eq!(response.body, b"{\"error\":\"Not found\"}\n");
        assert_eq!(response.headers, vec![("Content-Type".into(), "application/json".into())]);
        let response = Response::json_error(400, "q\"\\\n\u{1}é😀");
        assert_eq!(
            String::from_utf8(response.body).unwrap(),
            "{\"error\":\"q\\\"\\\\\\n\\u0001\\u00e9\\ud83d\\ude00\"}\n"
        );
    }

    #[test]
    fn constructors_set_content_type() {
        assert_eq!(Response::text(200, "hi").headers[0].1, "text/plain; charset=utf-8");
        assert_eq!(Response::json(200, "{}").body, b"{}");
        let response = Response::bytes(201, "image/png", vec![1, 2]).with_header("X-A", "b");
        assert_eq!(response.status, 201);
        assert_eq!(response.headers.len(), 2);
        assert!(Response::new(204).body.is_empty());
    }

    #[test]
    fn reason_phrases_cover_the_table() {
        let table = [
            (200, "OK"),
            (201, "Created"),
            (400, "Bad Request"),
            (401, "Unauthorized"),
            (403, "Forbidden"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (408, "Request Timeout"),
            (409, "Conflict"),
            (413, "Content Too Large"),
            (414, "URI Too Long"),
            (415, "Unsupported Media Type"),
            (429, "Too Many Requests"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (501, "Not Implemented"),
            (503, "Service Unavailable"),
            (505, "HTTP Version Not Supported"),
            (299, "Unknown"),
        ];
        for (status, reason) in table {
            assert_eq!(reason_phrase(status), reason);
        }
    }

    #[test]
    fn encodes_head_in_documented_order() {
        let response = Response::json(200, "{}").with_header("X-Extra", "1");
        let text = without_date(&encoded(&response, true, false));
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\
             X-Request-ID: rid\r\nConnection: keep-alive\r\nX-Extra: 1\r\n\r\n{}"
        );
    }

    #[test]
    fn head_only_keeps_length_and_drops_body() {
        let text = without_date(&encoded(&Response::text(200, "hello"), false, true));
        assert!(text.contains("Content-Length: 5\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn server_owned_and_unsafe_headers_are_dropped() {
        let response = Response::new(200)
            .with_header("Content-Length", "99")
            .with_header("Transfer-Encoding", "chunked")
            .with_header("X-Request-ID", "other")
            .with_header("X-Evil", "a\r\nSet-Cookie: x")
            .with_header("Bad Name", "v");
        let text = encoded(&response, true, false);
        assert!(text.contains("Content-Length: 0\r\n"));
        assert!(!text.contains("99"));
        assert!(!text.contains("chunked"));
        assert!(!text.contains("other"));
        assert!(!text.contains("Evil"));
        assert!(!text.contains("Bad Name"));
    }

    #[test]
    fn no_content_has_no_length_or_body() {
        let mut response = Response::new(204);
        response.body = b"ignored".to_vec();
        let text = encoded(&response, true, false);
        assert!(text.starts_with("HTTP/1.1 204 No Content\r\n"));
        assert!(!text.contains("Content-Length"));
        assert!(text.ends_with("\r\n\r\n"));
        assert!(encoded(&Response::new(7), true, false).starts_with("HTTP/1.1 500 "));
    }

    #[test]
    fn handler_can_ask_to_close() {
        assert!(Response::new(200).with_header("connection", "Close").asks_to_close());
        assert!(!Response::new(200).asks_to_close());
    }

    #[test]
    fn formats_imf_fixdate() {
        assert_eq!(&imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&imf_fixdate(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&imf_fixdate(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(&imf_fixdate(4_102_444_799), b"Thu, 31 Dec 2099 23:59:59 GMT");
        let mut cache = DateCache::new();
        assert!(cache.now().ends_with(b" GMT"));
    }
}
