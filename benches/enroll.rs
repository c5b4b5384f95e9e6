//! Enrollment load generator for `scripts/bench-enroll.sh` (not a timed test): creates N invites
//! through the signed admin API, then drives pre-signed `POST /join` requests from several client
//! threads over keep-alive connections, then heartbeats for the issued certificates, and reports
//! requests/s with p50/p99 latency for each phase. Requests carry distinct `X-Forwarded-For`
//! addresses, so run the server with `--trusted-proxy-hops 1` (the per-address join and admin
//! buckets would otherwise throttle a single benchmark client, as intended in production).
//!
//! With `BENCH_SERVER_PID` set to the pid of `gm serve` (scripts/bench-enroll.sh does), each phase
//! also reports the CPU time the server and this load generator spent per request and the share of
//! the machine's CPU that stayed idle (the budget that bounds the rate on the machine), and where
//! the server's one `db-writer` thread spent its time per request: every write waits for it, so
//! its running time plus its wait for a core plus its sleep bound the rate on their own. Before the
//! joins it times the Ed25519 work of one join (proof check and certificate signature) on one core.
//!
//! Usage: cargo bench --bench enroll -- ADDR HOME [JOINS] [THREADS]

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout, missing_docs)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gm::crypto::canonical::{canonical_bytes, canonical_string};
use gm::crypto::keys::{PublicKey, SigningKey};
use gm::crypto::signature::verify_b64;
use gm::json::{parse_str, Map, Value};
use gm::model::timestamp::isoformat_utc;

#[path = "support/operator.rs"]
mod operator;
use operator::Operator;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let addr: SocketAddr = args.first().expect("ADDR").parse().unwrap();
    let home = std::path::PathBuf::from(args.get(1).expect("HOME"));
    let joins: usize = args.get(2).map_or(20_000, |v| v.parse().unwrap());
    let threads: usize = args.get(3).map_or(16, |v| v.parse().unwrap());
    let operator = Arc::new(Operator::load(&home));

    let started = Instant::now();
    let tokens: Vec<(Duration, String)> = run_parallel(addr, threads, joins, move |conn, i| {
        let body = "{\"max_validity_hours\":48}";
        let req = admin_request(&operator, "/admin/invite", body, i);
        let (status, text) = conn.send(&req);
        assert_eq!(status, 201, "{text}");
        field(&text, "token_id")
    });
    println!("invites: {joins} created in {:.1} s (setup, not a target)", started.elapsed().as_secs_f64());

    let nodes: Vec<SigningKey> = (0..joins).map(|_| SigningKey::generate()).collect();
    let now = isoformat_utc(chrono::Utc::now());
    let bodies: Vec<String> = nodes
        .iter()
        .zip(&tokens)
        .map(|(k, (_, t))| {
            signed_body(k, &[("invite_token", Value::from(t.as_str())), ("validity_hours", Value::from(24i64))], &now)
        })
        .collect();
    let bodies = Arc::new(bodies);
    crypto_floor(&nodes[0]);
    let cpu = CpuUse::sample();
    let (join_results, join_wall) = timed(addr, threads, joins, move |conn, i| {
        let (status, text) = conn.send(&post("/join", &bodies[i], i));
        assert_eq!(status, 201, "{text}");
        field(&text, "cert_id")
    });
    report("join", &join_results, join_wall);
    CpuUse::report_since(cpu, joins);

    // Heartbeats are the steady-state load: ROUNDS rounds, one per issued certificate each.
    let rounds: usize = std::env::var("BENCH_HEARTBEAT_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let certs: Arc<Vec<String>> = Arc::new(join_results.iter().map(|(_, (_, c))| c.clone()).collect());
    let nodes = Arc::new(nodes);
    for _ in 0..rounds {
        let now = isoformat_utc(chrono::Utc::now());
        let beats: Vec<String> = nodes
            .iter()
            .zip(certs.iter())
            .map(|(k, cert)| {
                signed_body(k, &[("cert_id", Value::from(cert.as_str())), ("status", Value::from("healthy"))], &now)
            })
            .collect();
        let beats = Arc::new(beats);
        let cpu = CpuUse::sample();
        let (beat_results, beat_wall) = timed(addr, threads, joins, move |conn, i| {
            let (status, text) = conn.send(&post("/heartbeat", &beats[i], i));
            assert_eq!(status, 200, "{text}");
            String::new()
        });
        report("heartbeat", &beat_results, beat_wall);
        CpuUse::report_since(cpu, joins);
    }
}

struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    fn send(&mut self, raw: &str) -> (u16, String) {
        for _ in 0..3 {
            if self.stream.is_none() {
                let s = TcpStream::connect(self.addr).unwrap();
                s.set_nodelay(true).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                self.stream = Some(s);
            }
            let stream = self.stream.as_mut().unwrap();
            if stream.write_all(raw.as_bytes()).is_ok() {
                if let Some(r) = read_response(stream, &mut self.buf) {
                    return r;
                }
            }
            self.stream = None;
        }
        panic!("request failed three times");
    }
}

fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(u16, String)> {
    buf.clear();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
            let len: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some((status, String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string()));
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn forwarded(i: usize) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

fn post(path: &str, body: &str, i: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nX-Forwarded-For: {}\r\nContent-Length: {}\r\n\r\n{body}",
        forwarded(i),
        body.len()
    )
}

fn admin_request(key: &Operator, path: &str, body: &str, i: usize) -> String {
    let ts = isoformat_utc(chrono::Utc::now());
    let nonce = gm::crypto::digest::uuid4();
    let sig = key.sign(&parse_str(body).unwrap(), path, &nonce, &ts);
    format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nX-Forwarded-For: {}\r\nContent-Length: {}\r\nX-Admin-Key-Id: operator-local\r\nX-Admin-Timestamp: {ts}\r\nX-Admin-Nonce: {nonce}\r\nX-Admin-Signature: {sig}\r\n\r\n{body}",
        forwarded(i),
        body.len()
    )
}

fn signed_body(key: &SigningKey, fields: &[(&str, Value)], ts: &str) -> String {
    let mut m = Map::new();
    m.insert("node_public_key", Value::from(key.public_key().to_b64()));
    for (k, v) in fields {
        m.insert(*k, v.clone());
    }
    m.insert("timestamp", Value::from(ts));
    m.insert("nonce", Value::from(gm::crypto::digest::uuid4()));
    let sig = key.sign_b64(&canonical_bytes(&Value::Object(m.clone())));
    m.insert("signature", Value::from(sig));
    canonical_string(&Value::Object(m))
}

fn field(text: &str, name: &str) -> String {
    parse_str(text).unwrap().as_object().unwrap().get(name).unwrap().as_str().unwrap().to_string()
}

/// Runs `f(conn, i)` for i in 0..n over `threads` keep-alive connections; results in index order.
fn run_parallel<T: Send + 'static>(
    addr: SocketAddr,
    threads: usize,
    n: usize,
    f: impl Fn(&mut Conn, usize) -> T + Send + Sync + 'static,
) -> Vec<(Duration, T)> {
    timed(addr, threads, n, f).0.into_iter().map(|(d, (_, t))| (d, t)).collect()
}

/// Per-request latency with the request index and result, plus the wall time of the phase.
type Timed<T> = (Vec<(Duration, (usize, T))>, Duration);

fn timed<T: Send + 'static>(
    addr: SocketAddr,
    threads: usize,
    n: usize,
    f: impl Fn(&mut Conn, usize) -> T + Send + Sync + 'static,
) -> Timed<T> {
    let f = Arc::new(f);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let f = Arc::clone(&f);
            std::thread::spawn(move || {
                let mut conn = Conn { addr, stream: None, buf: Vec::with_capacity(8192) };
                let mut out = Vec::new();
                let mut i = t;
                while i < n {
                    let s = Instant::now();
                    let v = f(&mut conn, i);
                    out.push((s.elapsed(), (i, v)));
                    i += threads;
                }
                out
            })
        })
        .collect();
    let mut all: Vec<(Duration, (usize, T))> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let wall = started.elapsed();
    all.sort_by_key(|(_, (i, _))| *i);
    (all, wall)
}

fn report<T>(name: &str, results: &[(Duration, T)], wall: Duration) {
    let mut lat: Vec<Duration> = results.iter().map(|(d, _)| *d).collect();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "{name:<10} {:>7} requests in {:>6.2} s: {:>8.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms",
        lat.len(),
        wall.as_secs_f64(),
        lat.len() as f64 / wall.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
}

/// Times, on this thread and before any load, the Ed25519 work the server does for every join with
/// the same gm functions: parse the node's public key and verify its proof (`verify_strict`), and
/// sign the certificate. Printed as the part of a join's CPU that stays whatever else the server
/// changes: only checking proofs in batches (which can accept what `verify_strict` refuses) or other
/// cryptography would lower it.
fn crypto_floor(key: &SigningKey) {
    const ROUNDS: u32 = 2_000;
    let message = [7u8; 300];
    let (public, sig) = (key.public_key().to_b64(), key.sign_b64(&message));
    let started = Instant::now();
    for _ in 0..ROUNDS {
        let parsed = PublicKey::from_b64(std::hint::black_box(&public)).unwrap();
        assert!(verify_b64(&parsed, std::hint::black_box(&message), &sig));
    }
    let verify = started.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS);
    let started = Instant::now();
    for _ in 0..ROUNDS {
        std::hint::black_box(key.sign_b64(std::hint::black_box(&message)));
    }
    let sign = started.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS);
    println!(
        "crypto per join on one core: key parse + verify_strict {verify:.1} us, sign {sign:.1} us, {:.1} us in all",
        verify + sign
    );
}

/// CPU time counters at one moment: the server's and this process's (user + system, in Linux's
/// fixed 10 ms clock ticks), the machine's busy and idle ticks from `/proc/stat`, and the server's
/// `db-writer` thread's time on a core and waiting for one (`schedstat`, nanoseconds).
struct CpuUse {
    server: u64,
    client: u64,
    busy: u64,
    idle: u64,
    /// Every write runs on the one `db-writer` thread, one batch at a time: (running, runnable but
    /// waiting for a core), in nanoseconds.
    writer: (u64, u64),
    at: Instant,
}

impl CpuUse {
    /// `None` without `BENCH_SERVER_PID` or when a counter cannot be read (not Linux).
    fn sample() -> Option<CpuUse> {
        let pid: u32 = std::env::var("BENCH_SERVER_PID").ok()?.parse().ok()?;
        let ticks = |path: &str| -> Option<u64> {
            let text = std::fs::read_to_string(path).ok()?;
            // Fields after the parenthesised command name, which may contain spaces: utime and
            // stime are fields 14 and 15 of the line, so 12 and 13 after the closing parenthesis.
            let rest = &text[text.rfind(')')? + 1..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        };
        let writer_task = std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .filter_map(Result::ok)
            .find(|task| std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == "db-writer"))?;
        let schedstat = std::fs::read_to_string(writer_task.path().join("schedstat")).ok()?;
        let mut fields = schedstat.split_whitespace().map(str::parse::<u64>);
        let writer = (fields.next()?.ok()?, fields.next()?.ok()?);
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal: idle and iowait count as idle.
        let idle = cpu.get(3)? + cpu.get(4)?;
        let busy = cpu.iter().take(8).sum::<u64>() - idle;
        Some(CpuUse {
            server: ticks(&format!("/proc/{pid}/stat"))?,
            client: ticks("/proc/self/stat")?,
            busy,
            idle,
            writer,
            at: Instant::now(),
        })
    }

    /// Prints the CPU per request of the phase that began at `before` and just ended, and where the
    /// writer thread's time per request went.
    fn report_since(before: Option<CpuUse>, requests: usize) {
        let (Some(a), Some(b)) = (before, CpuUse::sample()) else { return };
        let n = requests.max(1) as f64;
        let per_request = |ticks: u64| ticks as f64 * 10_000.0 / n;
        let (server, client) = (per_request(b.server - a.server), per_request(b.client - a.client));
        let (busy, idle) = ((b.busy - a.busy) as f64, (b.idle - a.idle) as f64);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        println!(
            "           CPU per request: server {server:.0} us, load generator {client:.0} us; \
             machine idle {:.0}%; {cores:.0} cores at this cost bound the rate at {:.0} req/s",
            100.0 * idle / (busy + idle).max(1.0),
            cores * 1e6 / (server + client).max(1.0)
        );
        // The writer is one thread, so its time per request bounds the rate whatever the cores do:
        // running, waiting for a core, and the rest of the wall time (waiting for jobs, lingering
        // for a batch, blocked in fsync).
        let wall = b.at.duration_since(a.at).as_secs_f64() * 1e6 / n;
        let running = (b.writer.0 - a.writer.0) as f64 / 1e3 / n;
        let queued = (b.writer.1 - a.writer.1) as f64 / 1e3 / n;
        println!(
            "           db-writer thread per request: running {running:.0} us, waiting for a core {queued:.0} us, \
             asleep (jobs, linger, fsync) {:.0} us of {wall:.0} us wall; running alone bounds the rate at {:.0} req/s",
            (wall - running - queued).max(0.0),
            1e6 / running.max(1.0)
        );
    }
}
