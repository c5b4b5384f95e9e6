//! The client address and the public base URL of a request, honouring `X-Forwarded-*` only for the
//! configured number of trusted proxy hops (`deviations.md` D2; `NA_PROXY_HOPS`, default 0).
//!
//! Upstream trusts one hop unconditionally, which lets any client pick its own rate-limit bucket and
//! forge audit addresses or the URLs `/sovereign.json` advertises. With 0 hops gm uses the TCP peer
//! and the `Host` header; with N hops the N-th `X-Forwarded-For` value from the right.

use crate::http::Request;

/// The client address used for rate limits, audit `remote_addr` and `issued_certs.remote_addr`.
pub fn client_addr(req: &Request, proxy_hops: usize) -> String {
    if proxy_hops > 0 {
        if let Some(forwarded) = req.header("X-Forwarded-For") {
            let values: Vec<&str> = forwarded.split(',').map(str::trim).filter(|v| !v.is_empty()).collect();
            if let Some(v) = values.len().checked_sub(proxy_hops).and_then(|i| values.get(i)) {
                return (*v).to_string();
            }
        }
    }
    req.peer.ip().to_string()
}

/// The base URL (`scheme://host`, no trailing `/`) the request was addressed to.
pub fn base_url(req: &Request, proxy_hops: usize) -> String {
    let first = |name: &str| {
        req.header(name).and_then(|v| v.split(',').next()).map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
    };
    let (mut scheme, mut host) = (req.scheme.to_string(), req.header("Host").map(str::to_string));
    if proxy_hops > 0 {
        if let Some(p) = first("X-Forwarded-Proto") {
            scheme = p;
        }
        if let Some(h) = first("X-Forwarded-Host") {
            host = Some(h);
        }
    }
    let host = host.unwrap_or_else(|| "localhost".to_string());
    format!("{scheme}://{host}").trim_end_matches('/').to_string()
}
