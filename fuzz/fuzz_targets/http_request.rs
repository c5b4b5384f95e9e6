//! The HTTP request-head parser (`src/http/request.rs`) driven the way `conn.rs` drives it: bytes
//! arrive in fuzzer-chosen chunks into one buffer, the head is re-parsed after each chunk, bodies
//! are taken by `Content-Length`, and pipelined requests follow in the same buffer.
//!
//! Input: byte 0 picks the limits (default or tiny), byte 1 is the length n of the chunk plan, the
//! next n bytes are chunk lengths, the rest is what the client sends.
//!
//! Properties: no panic; a complete head never claims more bytes than it was given or than
//! `max_head_bytes`, declares no body over `max_body_bytes`, and parses the same when more bytes
//! follow it; `path` and `query` rebuild the target; the query and path helpers accept any target.
#![no_main]

use gm::http::{parse_head_for_fuzzing, parse_query, percent_decode, Limits, Request};
use gm_fuzz::chunks;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Some((&plan_len, rest)) = rest.split_first() else { return };
    let plan_len = usize::from(plan_len % 32).min(rest.len());
    let (plan, stream) = rest.split_at(plan_len);
    let limits = limits(mode);
    let peer = ([127, 0, 0, 1], 40000).into();
    let mut buf: Vec<u8> = Vec::new();
    let mut body_left = 0usize;
    for chunk in chunks(stream, plan) {
        buf.extend_from_slice(chunk);
        let taken = body_left.min(buf.len());
        buf.drain(..taken);
        body_left -= taken;
        while body_left == 0 && !buf.is_empty() {
            match parse_head_for_fuzzing(&buf, &limits, peer) {
                Ok(None) => {
                    if buf.len() > limits.max_head_bytes {
                        return;
                    }
                    break;
                }
                Err(status) => {
                    assert!(matches!(status, 400 | 413 | 414 | 431 | 501 | 505), "unexpected refusal {status}");
                    return;
                }
                Ok(Some((request, head_len, content_length))) => {
                    check_head(&buf, &request, head_len, content_length, &limits);
                    let buffered = content_length.min(buf.len() - head_len);
                    buf.drain(..head_len + buffered);
                    body_left = content_length - buffered;
                }
            }
        }
    }
});

fn limits(mode: u8) -> Limits {
    if mode & 1 == 0 {
        return Limits::default();
    }
    Limits {
        max_head_bytes: 64 + usize::from(mode >> 1),
        max_request_line_bytes: 16 + usize::from(mode >> 2),
        max_headers: usize::from(mode >> 4),
        max_body_bytes: 32,
        ..Limits::default()
    }
}

fn check_head(buf: &[u8], request: &Request, head_len: usize, content_length: usize, limits: &Limits) {
    assert!(head_len <= buf.len(), "head of {head_len} bytes in a buffer of {}", buf.len());
    assert!(head_len <= limits.max_head_bytes);
    assert!(content_length <= limits.max_body_bytes);
    assert!(request.headers.len() <= limits.max_headers);
    let rebuilt = match &request.query {
        Some(query) => format!("{}?{query}", request.path),
        None => request.path.clone(),
    };
    assert_eq!(rebuilt, request.target);
    let _ = percent_decode(&request.path);
    let _ = parse_query(request.query.as_deref().unwrap_or_default());
    let _ = request.header("content-length");
    let mut longer = buf.to_vec();
    longer.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    let again = parse_head_for_fuzzing(&longer, limits, request.peer);
    let Ok(Some((same, same_len, same_length))) = again else {
        panic!("a complete head stopped parsing when more bytes followed: {again:?}");
    };
    assert_eq!((same_len, same_length), (head_len, content_length));
    assert_eq!((&same.method, &same.target, &same.headers), (&request.method, &request.target, &request.headers));
}
