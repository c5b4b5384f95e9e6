//! The client address and the public base URL of a request, honouring `X-Forwarded-*` only for the
//! configured number of trusted proxy hops (`deviations.md` D2; `NA_PROXY_HOPS`, default 0).
//!
//! Upstream trusts one hop unconditionally, which lets any client pick its own rate-limit bucket and
//! forge audit addresses or the URLs `/sovereign.json` advertises. With 0 hops gm uses the TCP peer
//! and the `Host` header; with N hops the N-th value from the right of `X-Forwarded-For`,
//! `X-Forwarded-Proto` and `X-Forwarded-Host`.
//!
//! Each header is read as one list made of all its field lines in order (RFC 9110 §5.3): a client
//! can send its own `X-Forwarded-For: 10.0.0.1` line, and a proxy that appends adds a second line
//! rather than extending the first. Reading only the first line would let that client choose its
//! rate-limit bucket and audited address; counting from the right of the whole list cannot be
//! steered by anything the client wrote.

use crate::http::Request;

/// The client address used for rate limits, audit `remote_addr` and `issued_certs.remote_addr`.
pub fn client_addr(req: &Request, proxy_hops: usize) -> String {
    match forwarded(req, "X-Forwarded-For", proxy_hops) {
        Some(addr) => addr.to_string(),
        None => req.peer.ip().to_string(),
    }
}

/// The base URL (`scheme://host`, no trailing `/`) the request was addressed to.
pub fn base_url(req: &Request, proxy_hops: usize) -> String {
    let scheme = forwarded(req, "X-Forwarded-Proto", proxy_hops).unwrap_or(req.scheme);
    let host = forwarded(req, "X-Forwarded-Host", proxy_hops).or_else(|| req.header("Host")).unwrap_or("localhost");
    format!("{scheme}://{host}").trim_end_matches('/').to_string()
}

/// The `proxy_hops`-th element from the right of the combined `name` list; `None` without trusted hops or
/// when the list is shorter (the request did not pass through that many proxies).
fn forwarded<'r>(req: &'r Request, name: &str, proxy_hops: usize) -> Option<&'r str> {
    if proxy_hops == 0 {
        return None;
    }
    let values = req.header_list(name);
    values.len().checked_sub(proxy_hops).and_then(|i| values.get(i)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request {
        let raw: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        let head = format!("GET / HTTP/1.1\r\n{raw}\r\n");
        let peer = ([192, 0, 2, 9], 5000).into();
        let parsed = crate::http::parse_head_for_fuzzing(head.as_bytes(), &crate::http::Limits::default(), peer);
        #[allow(clippy::expect_used)]
        let (request, _, _) = parsed.ok().flatten().expect("a complete test head parses");
        request
    }

    #[test]
    fn forwarded_for_counts_hops_from_the_right_over_all_lines() {
        let req = request(&[("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded-For", "198.51.100.4, 203.0.113.7")]);
        assert_eq!(client_addr(&req, 0), "192.0.2.9");
        assert_eq!(client_addr(&req, 1), "203.0.113.7");
        assert_eq!(client_addr(&req, 2), "198.51.100.4");
        assert_eq!(client_addr(&req, 3), "10.0.0.1");
        assert_eq!(client_addr(&req, 4), "192.0.2.9");
    }

    #[test]
    fn forwarded_proto_and_host_count_from_the_right_too() {
        let req = request(&[
            ("Host", "na.internal:8443"),
            ("X-Forwarded-Host", "evil.example"),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Host", "na.example"),
            ("X-Forwarded-Proto", "https"),
        ]);
        assert_eq!(base_url(&req, 0), "http://na.internal:8443");
        assert_eq!(base_url(&req, 1), "https://na.example");
        let direct = request(&[("Host", "na.internal:8443")]);
        assert_eq!(base_url(&direct, 1), "http://na.internal:8443");
    }
}
