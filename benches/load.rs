//! Mixed-load driver for `scripts/load.sh` (issue 8 item 1; not a timed test). For SECONDS it runs,
//! at the same time and against one `gm serve`:
//!
//! * public clients: keep-alive connections, each looping over public GET routes (half of them
//!   `/healthz`) with a think time between requests;
//! * slowloris clients: connections that send a partial request head, then one more header byte
//!   every few seconds, and reconnect when the server drops them (its `head_timeout` answers 408);
//! * enrollers: each creates an invite through a signed admin request, joins a fresh node with it,
//!   heartbeats that node a number of times, and starts over.
//!
//! It counts every non-2xx answer and every connection error on the well-formed requests (public
//! and enrollers; slowloris drops are the expected outcome, reported apart), reports the `/healthz`
//! latency percentiles, and samples the server's `VmRSS` and `VmHWM` every second from
//! `/proc/PID/status`. Requests carry distinct `X-Forwarded-For` addresses: run the server with
//! `--trusted-proxy-hops 1` (the per-address admin and join buckets would throttle one client).
//! Exits 1 when any well-formed request failed or the `/healthz` p99 is over `LOAD_P99_LIMIT_MS`.
//!
//! Usage: cargo bench --bench load -- ADDR HOME SECONDS SERVER_PID
//! Environment (defaults): LOAD_PUBLIC=1000 LOAD_SLOW=200 LOAD_ENROLLERS=50 LOAD_THINK_MS=100
//! LOAD_SLOW_BYTE_MS=3000 LOAD_HEARTBEATS=20 LOAD_ENROLL_THINK_MS=50 LOAD_RAMP_MS=5000
//! LOAD_P99_LIMIT_MS=50

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout, missing_docs)]

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gm::crypto::canonical::{canonical_bytes, canonical_string};
use gm::crypto::keys::SigningKey;
use gm::json::{parse_str, Map, Value};
use gm::model::timestamp::isoformat_utc;

#[path = "support/operator.rs"]
mod operator;
use operator::Operator;

/// Routes the public clients cycle through; `/healthz` is every other request.
const ROUTES: &[&str] = &[
    "/healthz",
    "/genesis",
    "/healthz",
    "/crl",
    "/healthz",
    "/metrics",
    "/healthz",
    "/policy",
    "/healthz",
    "/readyz",
    "/healthz",
    "/sovereign.json",
];

/// Deadline for one well-formed request; slower counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Counters shared by every client thread.
#[derive(Default)]
struct Tally {
    /// Well-formed requests answered 2xx.
    ok: AtomicU64,
    /// Well-formed requests that failed, by kind (status code or connection error).
    errors: Mutex<BTreeMap<String, u64>>,
    /// Connections opened by slowloris clients.
    slow_connects: AtomicU64,
    /// Slowloris connections the server ended with a 408.
    slow_408: AtomicU64,
    /// Slowloris connections the server closed without an answer, or that failed otherwise.
    slow_other: AtomicU64,
    /// Invites, joins and heartbeats answered 2xx.
    invites: AtomicU64,
    joins: AtomicU64,
    heartbeats: AtomicU64,
    /// Monotonic counter for distinct X-Forwarded-For addresses.
    forwarded: AtomicU64,
}

impl Tally {
    fn error(&self, kind: String) {
        *self.errors.lock().unwrap().entry(kind).or_default() += 1;
    }

    fn error_count(&self) -> u64 {
        self.errors.lock().unwrap().values().sum()
    }

    fn next_forwarded(&self) -> String {
        let i = self.forwarded.fetch_add(1, Ordering::Relaxed);
        format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
    }
}

struct Shared {
    addr: SocketAddr,
    stop: AtomicBool,
    tally: Tally,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let addr: SocketAddr = args.first().expect("ADDR").parse().unwrap();
    let home = std::path::PathBuf::from(args.get(1).expect("HOME"));
    let seconds: u64 = args.get(2).map_or(120, |v| v.parse().unwrap());
    let pid: u32 = args.get(3).expect("SERVER_PID").parse().unwrap();
    let (public, slow, enrollers) =
        (env_num("LOAD_PUBLIC", 1000), env_num("LOAD_SLOW", 200), env_num("LOAD_ENROLLERS", 50));
    let think = Duration::from_millis(env_num("LOAD_THINK_MS", 100));
    let slow_byte = Duration::from_millis(env_num("LOAD_SLOW_BYTE_MS", 3000));
    let heartbeats = env_num("LOAD_HEARTBEATS", 20);
    let enroll_think = Duration::from_millis(env_num("LOAD_ENROLL_THINK_MS", 50));
    let ramp = Duration::from_millis(env_num("LOAD_RAMP_MS", 5000));
    let p99_limit = Duration::from_millis(env_num("LOAD_P99_LIMIT_MS", 50));
    let operator = Arc::new(Operator::load(&home));
    println!(
        "load: {public} public keep-alive clients (think {} ms), {slow} slowloris (1 byte / {} ms), \
         {enrollers} enrollers ({heartbeats} heartbeats per node, think {} ms), {seconds} s, ramp {} ms",
        think.as_millis(),
        slow_byte.as_millis(),
        enroll_think.as_millis(),
        ramp.as_millis()
    );

    let shared = Arc::new(Shared { addr, stop: AtomicBool::new(false), tally: Tally::default() });
    let started = Instant::now();
    let sampler = spawn("rss", 256 * 1024, {
        let shared = Arc::clone(&shared);
        move || sample_rss(pid, &shared, started)
    });
    let stagger = |i: u64, n: u64| ramp.mul_f64(i as f64 / n.max(1) as f64);
    let mut public_threads = Vec::new();
    for i in 0..public {
        let shared = Arc::clone(&shared);
        let delay = stagger(i, public);
        public_threads.push(spawn("public", 128 * 1024, move || public_client(&shared, i as usize, delay, think)));
    }
    let mut slow_threads = Vec::new();
    for i in 0..slow {
        let shared = Arc::clone(&shared);
        let delay = stagger(i, slow);
        slow_threads.push(spawn("slow", 128 * 1024, move || slowloris(&shared, delay, slow_byte)));
    }
    let mut enroll_threads = Vec::new();
    for i in 0..enrollers {
        let (shared, operator) = (Arc::clone(&shared), Arc::clone(&operator));
        let delay = stagger(i, enrollers);
        enroll_threads
            .push(spawn("enroll", 512 * 1024, move || enroller(&shared, &operator, delay, heartbeats, enroll_think)));
    }

    std::thread::sleep(Duration::from_secs(seconds));
    shared.stop.store(true, Ordering::SeqCst);
    let mut healthz: Vec<u32> = Vec::new();
    let mut all_public = 0usize;
    for t in public_threads {
        let (h, n) = t.join().unwrap();
        healthz.extend(h);
        all_public += n;
    }
    for t in slow_threads {
        t.join().unwrap();
    }
    let mut enroll_lat: Vec<u32> = Vec::new();
    for t in enroll_threads {
        enroll_lat.extend(t.join().unwrap());
    }
    let wall = started.elapsed();
    let (peak_rss, hwm) = sampler.join().unwrap();

    // The server must still answer promptly after the storm.
    let after = public_get(addr, "/healthz");
    let t = &shared.tally;
    let errors = t.error_count();
    healthz.sort_unstable();
    enroll_lat.sort_unstable();
    let p99 = Duration::from_micros(u64::from(pct(&healthz, 0.99)));
    println!("--- results ({:.1} s) ---", wall.as_secs_f64());
    println!(
        "public requests: {all_public} ({:.0} req/s), of which /healthz {}",
        all_public as f64 / wall.as_secs_f64(),
        healthz.len()
    );
    println!(
        "/healthz latency: p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
        ms(pct(&healthz, 0.50)),
        ms(pct(&healthz, 0.90)),
        ms(pct(&healthz, 0.99)),
        ms(pct(&healthz, 0.999)),
        ms(healthz.last().copied().unwrap_or(0))
    );
    println!(
        "enrollment: {} invites, {} joins, {} heartbeats ({:.0} writes/s); latency p50 {:.2} ms  p99 {:.2} ms",
        t.invites.load(Ordering::Relaxed),
        t.joins.load(Ordering::Relaxed),
        t.heartbeats.load(Ordering::Relaxed),
        (t.invites.load(Ordering::Relaxed) + t.joins.load(Ordering::Relaxed) + t.heartbeats.load(Ordering::Relaxed))
            as f64
            / wall.as_secs_f64(),
        ms(pct(&enroll_lat, 0.50)),
        ms(pct(&enroll_lat, 0.99))
    );
    println!(
        "slowloris: {} connections opened, {} ended by the server with 408, {} closed otherwise",
        t.slow_connects.load(Ordering::Relaxed),
        t.slow_408.load(Ordering::Relaxed),
        t.slow_other.load(Ordering::Relaxed)
    );
    println!(
        "well-formed requests: {} ok, {errors} errors {:?}",
        t.ok.load(Ordering::Relaxed),
        t.errors.lock().unwrap()
    );
    println!("server RSS: peak VmRSS {} kB ({:.1} MiB), VmHWM {hwm} kB", peak_rss, peak_rss as f64 / 1024.0);
    println!("after the run: GET /healthz -> {after:?}");
    let pass = errors == 0 && p99 < p99_limit && after.is_ok();
    println!(
        "verdict: {} (/healthz p99 limit {} ms, zero errors)",
        if pass { "PASS" } else { "FAIL" },
        p99_limit.as_millis()
    );
    if !pass {
        std::process::exit(1);
    }
}

fn spawn<T: Send + 'static>(name: &str, stack: usize, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    std::thread::Builder::new().name(name.to_string()).stack_size(stack).spawn(f).unwrap()
}

fn ms(us: u32) -> f64 {
    f64::from(us) / 1000.0
}

fn pct(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Sleeps `d` in short slices, returning early (false) when the run stops.
fn pause(shared: &Shared, d: Duration) -> bool {
    let until = Instant::now() + d;
    while !shared.stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(200)));
    }
    false
}

/// Every second: VmRSS and VmHWM of the server; a line every 10 s. Returns (peak VmRSS, last VmHWM).
fn sample_rss(pid: u32, shared: &Shared, started: Instant) -> (u64, u64) {
    let (mut peak, mut hwm) = (0u64, 0u64);
    let mut tick = 0u64;
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let (rss, threads) = (field("VmRSS:"), field("Threads:"));
        peak = peak.max(rss);
        hwm = hwm.max(field("VmHWM:"));
        if tick.is_multiple_of(10) {
            let t = &shared.tally;
            println!(
                "t={:>4}s  server VmRSS {:>7} kB  threads {:>5}  ok {:>9}  errors {:>3}  slowloris connects {:>5}",
                started.elapsed().as_secs(),
                rss,
                threads,
                t.ok.load(Ordering::Relaxed),
                t.error_count(),
                t.slow_connects.load(Ordering::Relaxed)
            );
        }
        tick += 1;
        if !pause(shared, Duration::from_secs(1)) {
            return (peak, hwm);
        }
    }
}

/// One keep-alive connection cycling over [`ROUTES`]; returns its `/healthz` latencies (µs) and
/// how many requests it made.
fn public_client(shared: &Shared, index: usize, delay: Duration, think: Duration) -> (Vec<u32>, usize) {
    let mut healthz = Vec::new();
    let mut n = 0usize;
    if !pause(shared, delay) {
        return (healthz, n);
    }
    let mut conn = Conn::new(shared.addr);
    let mut buf = Vec::with_capacity(8192);
    while !shared.stop.load(Ordering::Relaxed) {
        let route = ROUTES[(index + n) % ROUTES.len()];
        let raw = format!("GET {route} HTTP/1.1\r\nHost: load\r\n\r\n");
        let started = Instant::now();
        match conn.exchange(raw.as_bytes(), &mut buf) {
            Ok(r) if (200..300).contains(&r.status) => {
                shared.tally.ok.fetch_add(1, Ordering::Relaxed);
                if route == "/healthz" {
                    healthz.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
                }
            }
            Ok(r) => shared.tally.error(format!("{route} answered {}", r.status)),
            Err(e) => shared.tally.error(format!("{route}: {e}")),
        }
        n += 1;
        if !pause(shared, think) {
            break;
        }
    }
    (healthz, n)
}

/// A slowloris connection: a partial head, then one byte per `interval`; reconnects when dropped.
fn slowloris(shared: &Shared, delay: Duration, interval: Duration) {
    if !pause(shared, delay) {
        return;
    }
    let tally = &shared.tally;
    while !shared.stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect_timeout(&shared.addr, REQUEST_TIMEOUT) else {
            tally.slow_other.fetch_add(1, Ordering::Relaxed);
            pause(shared, Duration::from_millis(500));
            continue;
        };
        tally.slow_connects.fetch_add(1, Ordering::Relaxed);
        let _ = s.set_read_timeout(Some(interval));
        if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: ").is_err() {
            tally.slow_other.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let mut answer = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
            // The read doubles as the pause between two bytes; data or EOF means the server ended it.
            match s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if s.write_all(b"a").is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        if answer.starts_with(b"HTTP/1.1 408") {
            tally.slow_408.fetch_add(1, Ordering::Relaxed);
        } else {
            tally.slow_other.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Invite, join, heartbeats, over and over; returns the latencies (µs) of all its requests.
fn enroller(shared: &Shared, operator: &Operator, delay: Duration, heartbeats: u64, think: Duration) -> Vec<u32> {
    let mut lat = Vec::new();
    if !pause(shared, delay) {
        return lat;
    }
    let tally = &shared.tally;
    let mut conn = Conn::new(shared.addr);
    let mut buf = Vec::with_capacity(8192);
    let mut send = |what: &str, raw: String, want: u16, lat: &mut Vec<u32>| -> Option<String> {
        let started = Instant::now();
        match conn.exchange(raw.as_bytes(), &mut buf) {
            Ok(r) if r.status == want => {
                lat.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
                tally.ok.fetch_add(1, Ordering::Relaxed);
                Some(r.body)
            }
            Ok(r) => {
                tally.error(format!("{what} answered {}", r.status));
                None
            }
            Err(e) => {
                tally.error(format!("{what}: {e}"));
                None
            }
        }
    };
    'outer: while !shared.stop.load(Ordering::Relaxed) {
        let xff = tally.next_forwarded();
        let Some(body) = send("invite", admin_invite(operator, &xff), 201, &mut lat) else {
            pause(shared, think);
            continue;
        };
        tally.invites.fetch_add(1, Ordering::Relaxed);
        let token = field(&body, "token_id");
        let node = SigningKey::generate();
        let join = signed_body(
            &node,
            &[("invite_token", Value::from(token.as_str())), ("validity_hours", Value::from(24i64))],
        );
        let Some(body) = send("join", post("/join", &join, &xff), 201, &mut lat) else {
            pause(shared, think);
            continue;
        };
        tally.joins.fetch_add(1, Ordering::Relaxed);
        let cert = field(&body, "cert_id");
        for _ in 0..heartbeats {
            if !pause(shared, think) {
                break 'outer;
            }
            let beat =
                signed_body(&node, &[("cert_id", Value::from(cert.as_str())), ("status", Value::from("healthy"))]);
            if send("heartbeat", post("/heartbeat", &beat, &xff), 200, &mut lat).is_some() {
                tally.heartbeats.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    lat
}

fn post(path: &str, body: &str, xff: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: load\r\nContent-Type: application/json\r\nX-Forwarded-For: {xff}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn admin_invite(key: &Operator, xff: &str) -> String {
    let body = "{\"max_validity_hours\":48}";
    let ts = isoformat_utc(chrono::Utc::now());
    let nonce = gm::crypto::digest::uuid4();
    let sig = key.sign(&parse_str(body).unwrap(), "/admin/invite", &nonce, &ts);
    format!(
        "POST /admin/invite HTTP/1.1\r\nHost: load\r\nContent-Type: application/json\r\nX-Forwarded-For: {xff}\r\nContent-Length: {}\r\nX-Admin-Key-Id: operator-local\r\nX-Admin-Timestamp: {ts}\r\nX-Admin-Nonce: {nonce}\r\nX-Admin-Signature: {sig}\r\n\r\n{body}",
        body.len()
    )
}

fn signed_body(key: &SigningKey, fields: &[(&str, Value)]) -> String {
    let mut m = Map::new();
    m.insert("node_public_key", Value::from(key.public_key().to_b64()));
    for (k, v) in fields {
        m.insert(*k, v.clone());
    }
    m.insert("timestamp", Value::from(isoformat_utc(chrono::Utc::now())));
    m.insert("nonce", Value::from(gm::crypto::digest::uuid4()));
    let sig = key.sign_b64(&canonical_bytes(&Value::Object(m.clone())));
    m.insert("signature", Value::from(sig));
    canonical_string(&Value::Object(m))
}

fn field(text: &str, name: &str) -> String {
    parse_str(text).unwrap().as_object().unwrap().get(name).unwrap().as_str().unwrap().to_string()
}

/// One GET on a fresh connection.
fn public_get(addr: SocketAddr, path: &str) -> Result<u16, String> {
    let mut conn = Conn::new(addr);
    conn.exchange(format!("GET {path} HTTP/1.1\r\nHost: load\r\n\r\n").as_bytes(), &mut Vec::new()).map(|r| r.status)
}

struct Reply {
    status: u16,
    body: String,
}

/// A keep-alive client connection, opened on first use and reopened after `Connection: close`.
/// Unlike benches/enroll.rs it never retries: every failure is reported.
struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        Conn { addr, stream: None }
    }

    fn exchange(&mut self, raw: &[u8], buf: &mut Vec<u8>) -> Result<Reply, String> {
        if self.stream.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, REQUEST_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(REQUEST_TIMEOUT)).map_err(|e| e.to_string())?;
            s.set_write_timeout(Some(REQUEST_TIMEOUT)).map_err(|e| e.to_string())?;
            self.stream = Some(s);
        }
        let stream = self.stream.as_mut().unwrap();
        let result = stream.write_all(raw).map_err(|e| format!("write: {e}")).and_then(|()| read_reply(stream, buf));
        match &result {
            Ok((_, true)) | Err(_) => self.stream = None,
            Ok((_, false)) => {}
        }
        result.map(|(r, _)| r)
    }
}

/// Reads one Content-Length framed response; also says whether the server closes the connection.
fn read_reply(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(Reply, bool), String> {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    let read = |stream: &mut TcpStream, buf: &mut Vec<u8>, chunk: &mut [u8]| -> Result<(), String> {
        match stream.read(chunk) {
            Ok(0) => Err("read: connection closed before the response".to_string()),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) => Err(format!("read: {e}")),
        }
    };
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        read(stream, buf, &mut chunk)?;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("read: no status line")?;
    let header = |name: &str| head.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()));
    let len: usize = header("content-length:").and_then(|v| v.parse().ok()).unwrap_or(0);
    let close = header("connection:").is_some_and(|v| v == "close");
    while buf.len() < end + 4 + len {
        read(stream, buf, &mut chunk)?;
    }
    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
    Ok((Reply { status, body }, close))
}
