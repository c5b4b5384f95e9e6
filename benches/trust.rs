//! Trust-route load generator for `scripts/bench-trust.sh` (not a timed test): times
//! `/connectome.json` and a trust-path query sequentially, then drives `POST /attestations/verify`
//! (a real signed attestation under a recognition policy sent in the body) from several threads.
//! Requests carry distinct `X-Forwarded-For` values: run the server with `--trusted-proxy-hops 1`
//! (the `verify:` bucket would otherwise throttle one client to 60/min, as intended).
//!
//! Usage: cargo bench --bench trust -- ADDR [VERIFIES] [THREADS]

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout, missing_docs)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gm::crypto::canonical::canonical_string;
use gm::crypto::keys::SigningKey;
use gm::json::parse_str;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let addr: SocketAddr = args.first().expect("ADDR").parse().unwrap();
    let verifies: usize = args.get(1).map_or(20_000, |v| v.parse().unwrap());
    let threads: usize = args.get(2).map_or(16, |v| v.parse().unwrap());

    let mut conn = TcpStream::connect(addr).unwrap();
    let mut buf = Vec::new();
    let mut timings = |path: &str, n: usize| {
        let mut lat = Vec::with_capacity(n);
        for _ in 0..n {
            let s = Instant::now();
            let (status, body) = send(&mut conn, &format!("GET {path} HTTP/1.1\r\nHost: b\r\n\r\n"), &mut buf);
            assert_eq!(status, 200, "{body}");
            lat.push(s.elapsed());
        }
        let first = lat[0];
        lat.sort();
        (lat, first)
    };
    let (c, cold) = timings("/connectome.json", 30);
    println!(
        "connectome.json  p50 {:>7.2} ms  p95 {:>7.2} ms  first (derived, not cached) {:>7.2} ms  ({} bytes)",
        ms(c[15]),
        ms(c[28]),
        ms(cold),
        last_len(addr, "/connectome.json")
    );
    let (t, _) = timings("/connectome/trust-path?from=sov-0&to=sov-99", 300);
    println!("trust-path       p50 {:>7.2} ms  p99 {:>7.2} ms", ms(t[150]), ms(t[296]));

    // A foreign issuer, its signed attestation, and a policy recognising it.
    let issuer = SigningKey::generate();
    let now = chrono::Utc::now();
    let att = parse_str(&format!(
        "{{\"attestation_id\":\"bench-1\",\"issuer_sovereign_id\":\"beta-mesh\",\"subject_id\":\"agent\",\"roles\":[\"role:client\"],\"issued_at\":\"{0}\",\"valid_from\":\"{0}\",\"expires_at\":\"{1}\",\"issued_by\":\"beta\"}}",
        gm::model::timestamp::pydantic_utc(now),
        gm::model::timestamp::pydantic_utc(now + chrono::Duration::hours(1))
    ))
    .unwrap();
    let att = gm::model::sign_as(gm::model::Kind::Attestation, &att, &issuer, "beta").unwrap();
    let body = format!(
        "{{\"attestation\":{},\"recognition_policy\":{{\"local_sovereign_id\":\"sandbox-mesh\",\"recognized_issuers\":[{{\"sovereign_id\":\"beta-mesh\",\"public_keys\":[\"{}\"]}}]}}}}",
        canonical_string(&att),
        issuer.public_key().to_b64()
    );
    let body = Arc::new(body);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|tid| {
            let body = Arc::clone(&body);
            std::thread::spawn(move || {
                let mut conn = TcpStream::connect(addr).unwrap();
                conn.set_nodelay(true).unwrap();
                let mut buf = Vec::new();
                let mut lat = Vec::new();
                let mut i = tid;
                while i < verifies {
                    let req = format!(
                        "POST /attestations/verify HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nX-Forwarded-For: 10.{}.{}.{}\r\nContent-Length: {}\r\n\r\n{}",
                        (i >> 16) & 255, (i >> 8) & 255, i & 255, body.len(), body
                    );
                    let s = Instant::now();
                    let (status, text) = send(&mut conn, &req, &mut buf);
                    assert!(status == 200 && text.contains("\"reason\":\"accepted\""), "{status} {text}");
                    lat.push(s.elapsed());
                    i += threads;
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let wall = started.elapsed();
    lat.sort();
    println!(
        "attestations/verify {:>7} in {:>5.2} s: {:>7.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
        lat.len(),
        wall.as_secs_f64(),
        lat.len() as f64 / wall.as_secs_f64(),
        ms(lat[lat.len() / 2]),
        ms(lat[lat.len() * 99 / 100])
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn last_len(addr: SocketAddr, path: &str) -> usize {
    let mut conn = TcpStream::connect(addr).unwrap();
    let mut buf = Vec::new();
    send(&mut conn, &format!("GET {path} HTTP/1.1\r\nHost: b\r\n\r\n"), &mut buf).1.len()
}

fn send(stream: &mut TcpStream, raw: &str, buf: &mut Vec<u8>) -> (u16, String) {
    stream.write_all(raw.as_bytes()).unwrap();
    buf.clear();
    let mut chunk = [0u8; 65536];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).unwrap();
                assert!(n > 0, "connection closed");
                buf.extend_from_slice(&chunk[..n]);
            }
            return (status, String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string());
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}
