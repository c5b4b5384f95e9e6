//! A parsed HTTP/1.x request and the helpers that read its parts.
//!
//! Owns: [`Request`], turning a complete request head (via httparse) into one, request ids, and the
//! percent-decoding and query-string helpers (over `crate::percent`, the decoder the admin signer
//! shares). Must not read from sockets or apply deadlines (that is `conn.rs`), and must not give
//! paths or queries any application meaning.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::percent::{self, Plus};

use super::error::{PercentDecodeError, Rejection};
use super::limits::Limits;

/// One HTTP request as the handler sees it: head fields as sent, and the whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method as sent (normally upper case), e.g. `GET`.
    pub method: String,
    /// The raw request-target, e.g. `/a%20b?x=1`.
    pub target: String,
    /// The target before the first `?`, not percent-decoded.
    pub path: String,
    /// The raw text after the first `?` (empty if the target ends with `?`), or `None` without a `?`.
    pub query: Option<String>,
    /// Minor HTTP version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Header fields in the order sent, names as sent and values with surrounding whitespace trimmed.
    pub headers: Vec<(String, String)>,
    /// The body (empty when the request had no `Content-Length`).
    pub body: Vec<u8>,
    /// The client's address.
    pub peer: SocketAddr,
    /// The client's `X-Request-ID` if it is 1 to 128 characters of `[A-Za-z0-9._:-]`, else a generated
    /// 32-character lower-case hex id; echoed in the response and used in log records.
    pub request_id: String,
    /// The URL scheme the request arrived on: `"https"` with built-in TLS, else `"http"` (TLS, if any, ends
    /// in front of this server).
    pub scheme: &'static str,
    /// Whether the client presented a certificate that a configured client CA verified (built-in TLS
    /// with a client CA only; always false otherwise).
    pub client_certificate: bool,
}

impl Request {
    /// The value of the first header field named `name`, compared without regard to ASCII case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The comma-separated elements of every header field named `name`, in the order sent, trimmed, empty ones
    /// dropped. Repeated field lines form one list (RFC 9110 §5.3), so a list header such as `X-Forwarded-For`
    /// must be read through this: the first line alone may be the one a client wrote before a proxy appended
    /// its own.
    pub(crate) fn header_list(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .flat_map(|(_, value)| value.split(','))
            .map(str::trim)
            .filter(|element| !element.is_empty())
            .collect()
    }
}

/// Decodes `%XX` escapes; `+` stays `+`. A `%` not followed by two hex digits is kept as it is, as Python's
/// `urllib.parse.unquote` does.
///
/// # Errors
/// [`PercentDecodeError::InvalidUtf8`] when the decoded bytes are not UTF-8; it carries all decoded bytes.
pub fn percent_decode(s: &str) -> Result<String, PercentDecodeError> {
    percent::decode_strict(s, Plus::Kept).map_err(|err| {
        let valid_up_to = err.utf8_error().valid_up_to();
        PercentDecodeError::InvalidUtf8 { bytes: err.into_bytes(), valid_up_to }
    })
}

/// Decodes one query-string name or value like Python's `urllib.parse.unquote_plus`: `+` becomes a space,
/// `%XX` escapes are decoded, and bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode_query_component(s: &str) -> String {
    percent::decode_lossy(s, Plus::IsSpace)
}

/// Splits a raw query string into decoded `(name, value)` pairs like Werkzeug: split on `&`, skip empty
/// pieces, split each on its first `=` (no `=` means an empty value), decode both with
/// [`percent_decode_query_component`], keep order and duplicates.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match piece.split_once('=') {
            Some((name, value)) => (percent_decode_query_component(name), percent_decode_query_component(value)),
            None => (percent_decode_query_component(piece), String::new()),
        })
        .collect()
}

/// A complete request head, turned into an owned [`Request`] whose body is still empty.
#[derive(Debug)]
pub(super) struct ParsedHead {
    /// The request, body not yet read.
    pub(super) request: Request,
    /// Bytes of the buffer the head used.
    pub(super) head_len: usize,
    /// The declared body length (0 without `Content-Length`).
    pub(super) content_length: usize,
    /// Whether the client sent `Expect: 100-continue`.
    pub(super) expects_continue: bool,
    /// Whether the client allows the connection to stay open after this request.
    pub(super) client_keep_alive: bool,
}

/// Header slots kept on the stack; `max_headers` above this costs one heap allocation per parse.
const STACK_HEADERS: usize = 128;

/// Parses the start of `bytes` as a request head. `Ok(None)` means more bytes are needed; the caller enforces
/// `max_head_bytes` on a partial head.
pub(super) fn parse_head(bytes: &[u8], limits: &Limits, peer: SocketAddr) -> Result<Option<ParsedHead>, Rejection> {
    check_request_line(bytes, limits.max_request_line_bytes)?;
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    let mut heap = Vec::new();
    let slots: &mut [httparse::Header<'_>] = if limits.max_headers <= STACK_HEADERS {
        &mut stack[..limits.max_headers]
    } else {
        heap.resize(limits.max_headers, httparse::EMPTY_HEADER);
        &mut heap
    };
    let mut parsed = httparse::Request::new(slots);
    let head_len = match parsed.parse(bytes) {
        Ok(httparse::Status::Partial) => return Ok(None),
        Ok(httparse::Status::Complete(len)) => len,
        Err(httparse::Error::TooManyHeaders) => return Err(Rejection::TooManyHeaders { limit: limits.max_headers }),
        Err(httparse::Error::Version) if names_other_http_version(bytes) => return Err(Rejection::UnsupportedVersion),
        Err(cause) => return Err(Rejection::Malformed { cause }),
    };
    if head_len > limits.max_head_bytes {
        return Err(Rejection::HeadTooLarge { limit: limits.max_head_bytes });
    }
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version) else {
        return Err(Rejection::Malformed { cause: httparse::Error::Token });
    };
    let mut headers = Vec::with_capacity(parsed.headers.len());
    for header in parsed.headers.iter() {
        let value =
            std::str::from_utf8(header.value).map_err(|_| Rejection::HeaderNotUtf8 { name: header.name.to_owned() })?;
        headers.push((header.name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
    }
    let framing = read_framing(&headers, version, limits)?;
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (target.to_owned(), None),
    };
    let request_id = match headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-request-id")) {
        Some((_, id)) if is_valid_request_id(id) => id.clone(),
        _ => generate_request_id(),
    };
    let request = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        path,
        query,
        version,
        headers,
        body: Vec::new(),
        peer,
        request_id,
        scheme: "http",
        client_certificate: false,
    };
    Ok(Some(ParsedHead {
        request,
        head_len,
        content_length: framing.content_length,
        expects_continue: framing.expects_continue,
        client_keep_alive: framing.keep_alive,
    }))
}

/// [`parse_head`] for the fuzz targets in `fuzz/` (not an API): the parsed request with its head length
/// and declared body length, `Ok(None)` when more bytes are needed, or the refusal's HTTP status.
#[doc(hidden)]
pub fn parse_head_for_fuzzing(
    bytes: &[u8],
    limits: &Limits,
    peer: SocketAddr,
) -> Result<Option<(Request, usize, usize)>, u16> {
    match parse_head(bytes, limits, peer) {
        Ok(Some(head)) => Ok(Some((head.request, head.head_len, head.content_length))),
        Ok(None) => Ok(None),
        Err(rejection) => Err(rejection.status()),
    }
}

/// Refuses a request line longer than the limit as soon as enough bytes have arrived to know it.
fn check_request_line(bytes: &[u8], limit: usize) -> Result<(), Rejection> {
    let start = bytes.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(bytes.len());
    let rest = bytes.get(start..).unwrap_or_default();
    let window = rest.get(..limit.saturating_add(2)).unwrap_or(rest);
    let line_len = match window.iter().position(|&b| b == b'\n') {
        Some(newline) if newline > 0 && window.get(newline - 1) == Some(&b'\r') => newline - 1,
        Some(newline) => newline,
        None if window.len() > limit.saturating_add(1) => window.len(),
        None => return Ok(()),
    };
    if line_len > limit {
        return Err(Rejection::RequestLineTooLong { limit });
    }
    Ok(())
}

/// Whether the request line ends in a well-formed `HTTP/x.y` that httparse refused: a real version this
/// server does not speak (505) rather than garbage (400).
fn names_other_http_version(bytes: &[u8]) -> bool {
    let start = bytes.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(bytes.len());
    let rest = bytes.get(start..).unwrap_or_default();
    let line = match rest.iter().position(|&b| b == b'\n') {
        Some(end) => rest.get(..end).unwrap_or_default(),
        None => rest,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(version) = line.rsplit(|&b| b == b' ').next() else {
        return false;
    };
    match version.strip_prefix(b"HTTP/") {
        Some(number) => {
            !number.is_empty()
                && number.iter().all(|&b| b.is_ascii_digit() || b == b'.')
                && number.first().is_some_and(u8::is_ascii_digit)
        }
        None => false,
    }
}

struct Framing {
    content_length: usize,
    expects_continue: bool,
    keep_alive: bool,
}

/// Body length, `Expect` and `Connection` from the header fields. Only `Content-Length` bodies are
/// supported; a request without one has an empty body, as in the Python server.
fn read_framing(headers: &[(String, String)], version: u8, limits: &Limits) -> Result<Framing, Rejection> {
    let mut length: Option<u64> = None;
    let mut expects_continue = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut hosts = 0;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("host") {
            // RFC 9112 §3.2: more than one Host line is a 400. Which one names the site is otherwise
            // ambiguous, and a proxy in front may have routed on the other.
            hosts += 1;
            if hosts > 1 {
                return Err(Rejection::DuplicateHost);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Rejection::TransferEncoding);
        } else if name.eq_ignore_ascii_case("content-length") {
            let parsed = parse_content_length(value)?;
            if length.is_some_and(|seen| seen != parsed) {
                return Err(Rejection::BadContentLength);
            }
            length = Some(parsed);
        } else if name.eq_ignore_ascii_case("expect") {
            expects_continue = value.eq_ignore_ascii_case("100-continue");
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                close |= token.eq_ignore_ascii_case("close");
                keep_alive_token |= token.eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    let length = length.unwrap_or(0);
    let content_length = match usize::try_from(length) {
        Ok(n) if n <= limits.max_body_bytes => n,
        _ => return Err(Rejection::BodyTooLarge { length, limit: limits.max_body_bytes }),
    };
    let keep_alive = if version >= 1 { !close } else { keep_alive_token && !close };
    Ok(Framing { content_length, expects_continue: expects_continue && version >= 1, keep_alive })
}

/// Digits only; a number too large for `u64` is certainly over any body limit.
fn parse_content_length(value: &str) -> Result<u64, Rejection> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::BadContentLength);
    }
    Ok(value.parse::<u64>().unwrap_or(u64::MAX))
}

/// Whether a client-supplied `X-Request-ID` is safe to echo and log: 1 to 128 of `[A-Za-z0-9._:-]`.
pub(super) fn is_valid_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// A fresh 32-hex-character request id: a random per-process prefix and a scrambled per-request counter.
/// Unique within the process (the scrambling is a bijection), cheap (no system call per id).
pub(super) fn generate_request_id() -> String {
    static SEED: OnceLock<(u64, u64)> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let (prefix, key) = *SEED.get_or_init(process_seed);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut id = String::with_capacity(32);
    push_hex(&mut id, prefix);
    push_hex(&mut id, mix64(n.wrapping_add(key)));
    id
}

fn process_seed() -> (u64, u64) {
    let mut bytes = [0u8; 16];
    if let Err(err) = getrandom::getrandom(&mut bytes) {
        log::warn!("no OS randomness for request ids ({err}); falling back to time and process id");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        let pid = u64::from(std::process::id());
        return (mix64(nanos ^ pid.rotate_left(32)), mix64(nanos.wrapping_add(pid)));
    }
    let (hi, lo) = bytes.split_at(8);
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(hi);
    b.copy_from_slice(lo);
    (u64::from_le_bytes(a), u64::from_le_bytes(b))
}

/// The SplitMix64 finaliser: a bijection on `u64` that spreads consecutive inputs across all bits.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn push_hex(out: &mut String, value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..16).rev() {
        let nibble = ((value >> (shift * 4)) & 0xf) as usize;
        out.push(char::from(DIGITS[nibble]));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        ([127, 0, 0, 1], 40000).into()
    }

    fn parse(bytes: &[u8]) -> Result<Option<ParsedHead>, Rejection> {
        parse_head(bytes, &Limits::default(), peer())
    }

    #[test]
    fn repeated_list_headers_are_kept_in_order_and_a_second_host_is_refused() {
        let head = parse(b"GET / HTTP/1.1\r\nHost: a\r\nX-F: 1, 2\r\nx-f: 3\r\nX-F:\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.request.header("X-F"), Some("1, 2"));
        assert_eq!(head.request.header_list("x-f"), ["1", "2", "3"]);
        assert!(head.request.header_list("missing").is_empty());
        let twice = parse(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n");
        assert_eq!(twice.err(), Some(Rejection::DuplicateHost));
    }

    #[test]
    fn percent_decode_decodes_escapes_and_keeps_plus() {
        assert_eq!(percent_decode("/a%20b+c").unwrap(), "/a b+c");
        assert_eq!(percent_decode("%E2%9C%93").unwrap(), "\u{2713}");
        assert_eq!(percent_decode("100%").unwrap(), "100%");
        assert_eq!(percent_decode("%zz%4").unwrap(), "%zz%4");
        assert_eq!(percent_decode("plain").unwrap(), "plain");
    }

    #[test]
    fn percent_decode_reports_invalid_utf8_losslessly() {
        let err = percent_decode("ok%FF%fe").unwrap_err();
        assert_eq!(err, PercentDecodeError::InvalidUtf8 { bytes: vec![b'o', b'k', 0xff, 0xfe], valid_up_to: 2 });
    }

    #[test]
    fn query_component_matches_unquote_plus() {
        assert_eq!(percent_decode_query_component("a+b%2Bc"), "a b+c");
        assert_eq!(percent_decode_query_component("%FFx"), "\u{fffd}x");
        assert_eq!(percent_decode_query_component("%e2%82"), "\u{fffd}");
        assert_eq!(percent_decode_query_component("%"), "%");
    }

    #[test]
    fn parse_query_is_werkzeug_like() {
        let pairs = parse_query("a=1&&b=&c&a=2&d=x=y&e+f=g%20h&");
        let expect = [("a", "1"), ("b", ""), ("c", ""), ("a", "2"), ("d", "x=y"), ("e f", "g h")];
        let expect: Vec<(String, String)> = expect.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(pairs, expect);
        assert!(parse_query("").is_empty());
        assert_eq!(parse_query("=x"), vec![(String::new(), "x".to_string())]);
    }

    #[test]
    fn request_ids_are_validated_and_generated() {
        assert!(is_valid_request_id("abc-DEF_1.2:3"));
        assert!(is_valid_request_id(&"a".repeat(128)));
        assert!(!is_valid_request_id(""));
        assert!(!is_valid_request_id(&"a".repeat(129)));
        assert!(!is_valid_request_id("has space"));
        assert!(!is_valid_request_id("semi;colon"));
        let a = generate_request_id();
        let b = generate_request_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn parses_a_complete_head() {
        let raw = b"POST /a%20b?x=1&y HTTP/1.1\r\nHost: h\r\nX-Thing:  v  \r\nContent-Length: 3\r\n\r\nabc";
        let head = parse(raw).unwrap().unwrap();
        assert_eq!(head.head_len, raw.len() - 3);
        assert_eq!(head.content_length, 3);
        assert!(head.client_keep_alive);
        let req = head.request;
        assert_eq!(req.method, "POST");
        assert_eq!(req.target, "/a%20b?x=1&y");
        assert_eq!(req.path, "/a%20b");
        assert_eq!(req.query.as_deref(), Some("x=1&y"));
        assert_eq!(req.version, 1);
        assert_eq!(req.header("x-thing"), Some("v"));
        assert_eq!(req.header("HOST"), Some("h"));
        assert_eq!(req.header("missing"), None);
        assert_eq!(req.request_id.len(), 32);
        assert_eq!(req.scheme, "http");
    }

    #[test]
    fn query_is_empty_string_after_bare_question_mark() {
        let head = parse(b"GET /p? HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.request.query.as_deref(), Some(""));
        assert!(!head.client_keep_alive);
        let head = parse(b"GET /p HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.request.query, None);
        assert!(head.client_keep_alive);
        let head = parse(b"GET /p HTTP/1.1\r\nConnection: foo, close\r\n\r\n").unwrap().unwrap();
        assert!(!head.client_keep_alive);
    }

    #[test]
    fn partial_heads_need_more_bytes() {
        assert!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
        assert!(parse(b"GE").unwrap().is_none());
    }

    #[test]
    fn rejects_bad_heads_with_the_right_status() {
        let status = |raw: &[u8]| parse(raw).err().map(|r| r.status());
        assert_eq!(status(b"GARBAGE\r\n\r\n"), Some(400));
        assert_eq!(status(b"\x00\x01 junk junk\r\n\r\n"), Some(400));
        assert_eq!(status(b"GET / HTTP/2.0\r\n\r\n"), Some(505));
        assert_eq!(status(b"GET / HTTP/1.2\r\n\r\n"), Some(505));
        assert_eq!(status(b"GET / FTP/1.0\r\n\r\n"), Some(400));
        assert_eq!(status(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), Some(501));
        assert_eq!(status(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"), Some(400));
        assert_eq!(status(b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), Some(400));
        assert_eq!(status(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), Some(400));
        assert_eq!(status(b"GET / HTTP/1.1\r\nContent-Length: 3000000\r\n\r\n"), Some(413));
        assert_eq!(status(b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"), Some(413));
        assert_eq!(status(b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n"), Some(400));
    }

    #[test]
    fn agreeing_duplicate_content_lengths_are_accepted() {
        let head = parse(b"PUT / HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nhi").unwrap().unwrap();
        assert_eq!(head.content_length, 2);
    }

    #[test]
    fn expect_continue_is_only_honoured_on_http_1_1() {
        let head = parse(b"PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n").unwrap().unwrap();
        assert!(head.expects_continue);
        let head = parse(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n").unwrap().unwrap();
        assert!(!head.expects_continue);
    }

    #[test]
    fn request_line_limit_gives_414_even_before_the_line_ends() {
        let limits = Limits { max_request_line_bytes: 20, ..Limits::default() };
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(30));
        let err = parse_head(long.as_bytes(), &limits, peer()).unwrap_err();
        assert_eq!(err.status(), 414);
        let partial = format!("GET /{}", "a".repeat(30));
        let err = parse_head(partial.as_bytes(), &limits, peer()).unwrap_err();
        assert_eq!(err.status(), 414);
        let exact = b"GET /aaaaaa HTTP/1.1\r\n\r\n";
        assert!(parse_head(exact, &limits, peer()).unwrap().is_some());
    }

    #[test]
    fn header_count_and_head_size_limits_give_431() {
        let limits = Limits { max_headers: 2, ..Limits::default() };
        let raw = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(parse_head(raw, &limits, peer()).unwrap_err().status(), 431);
        let limits = Limits { max_head_bytes: 30, ..Limits::default() };
        let raw = b"GET / HTTP/1.1\r\nA: 1234567890\r\n\r\n";
        assert_eq!(parse_head(raw, &limits, peer()).unwrap_err().status(), 431);
        let limits = Limits { max_headers: 200, ..Limits::default() };
        let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..150 {
            raw.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        let head = parse_head(&raw, &limits, peer()).unwrap().unwrap();
        assert_eq!(head.request.headers.len(), 150);
    }

    #[test]
    fn valid_request_id_is_kept() {
        let head = parse(b"GET / HTTP/1.1\r\nx-request-id: abc.123\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.request.request_id, "abc.123");
        let head = parse(b"GET / HTTP/1.1\r\nX-Request-ID: bad id!\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.request.request_id.len(), 32);
    }
}
