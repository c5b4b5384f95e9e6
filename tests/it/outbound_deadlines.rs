//! F6: one deadline covers connect, TLS handshake, request and body for every outbound connection gm makes.
//!
//! `Trickler` is a stand-in for a hostile or broken server that cannot be produced with an honest gm: it
//! accepts on 127.0.0.1:0 and sends its canned bytes one every 0.5 s, never reading. For TLS the bytes are a
//! record header announcing a 16 KiB handshake record, so a client keeps waiting for a record that never
//! completes; for plain HTTP they are a response head that never ends. Before the fix the TLS handshake had
//! no deadline at all (each read got its own timeout and each byte arrived within it), so `gm probe` and
//! every client command ran until the server gave up.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::harness::{Gm, TempDir};

/// How often the trickler sends one byte.
const DRIP: Duration = Duration::from_millis(500);

/// The longest the trickler keeps a connection going, so a failed test still ends.
const DRIP_FOR: Duration = Duration::from_secs(120);

struct Trickler {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Trickler {
    /// A "TLS server": a handshake record header with a 16 KiB length, then zeros.
    fn tls() -> Trickler {
        Trickler::start(&[0x16, 0x03, 0x03, 0x40, 0x00])
    }

    /// A plain HTTP server whose response head never ends.
    fn http() -> Trickler {
        Trickler::start(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: ")
    }

    fn start(prefix: &[u8]) -> Trickler {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let prefix = prefix.to_vec();
        let thread = std::thread::spawn(move || {
            let mut drips = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (prefix, stop) = (prefix.clone(), stop2.clone());
                        drips.push(std::thread::spawn(move || drip(stream, &prefix, &stop)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            for d in drips {
                let _ = d.join();
            }
        });
        Trickler { addr, stop, thread: Some(thread) }
    }
}

/// Sends `prefix` then `x` bytes, one every [`DRIP`], until the client leaves or the test ends.
fn drip(mut stream: TcpStream, prefix: &[u8], stop: &AtomicBool) {
    stream.set_nonblocking(false).unwrap();
    let started = Instant::now();
    let mut sent = 0usize;
    while !stop.load(Ordering::SeqCst) && started.elapsed() < DRIP_FOR {
        let byte = prefix.get(sent).copied().unwrap_or(b'x');
        if stream.write_all(&[byte]).is_err() {
            return;
        }
        sent += 1;
        std::thread::sleep(DRIP);
        // A client that closed shows as EOF; drain what it sent so the check does not block.
        stream.set_nonblocking(true).unwrap();
        let mut sink = [0u8; 4096];
        let gone = matches!(stream.read(&mut sink), Ok(0));
        stream.set_nonblocking(false).unwrap();
        if gone {
            return;
        }
    }
}

impl Drop for Trickler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs `gm`, returning its output and how long it took.
fn timed(gm: Gm, status: i32) -> (String, String, Duration) {
    let started = Instant::now();
    let (stdout, stderr) = gm.expect(status);
    (stdout, stderr, started.elapsed())
}

#[test]
fn probe_of_a_trickling_tls_server_is_critical_within_its_timeout() {
    let server = Trickler::tls();
    let target = format!("https://127.0.0.1:{}", server.addr.port());
    let (stdout, _, took) = timed(Gm::new(&["probe", "--na", &target, "--timeout", "3s"]), 2);
    // Generous margin for a loaded machine; the bug ran until the server stopped (minutes).
    assert!(took < Duration::from_secs(10), "took {took:?}\n{stdout}");
    let tls = stdout.lines().find(|l| l.trim_start().starts_with("tls")).unwrap_or_default().to_string();
    assert!(tls.contains("CRITICAL") && tls.contains("timed out after 3s"), "{stdout}");
    let healthz = stdout.lines().find(|l| l.trim_start().starts_with("healthz")).unwrap_or_default().to_string();
    assert!(healthz.contains("CRITICAL") && healthz.contains("timed out"), "{stdout}");
}

#[test]
fn probe_of_a_trickling_http_server_is_critical_within_its_timeout() {
    let server = Trickler::http();
    let target = format!("http://127.0.0.1:{}", server.addr.port());
    let (stdout, _, took) = timed(Gm::new(&["probe", "--na", &target, "--check", "healthz", "--timeout", "2s"]), 2);
    assert!(took < Duration::from_secs(8), "took {took:?}\n{stdout}");
    assert!(stdout.contains("CRITICAL") && stdout.contains("timed out"), "{stdout}");
}

#[test]
fn feed_export_from_a_trickling_tls_server_gives_up_at_the_client_deadline() {
    let server = Trickler::tls();
    let na = format!("https://127.0.0.1:{}", server.addr.port());
    let dir = TempDir::new("trickle-feed");
    let out = dir.join("feed.json");
    let (_, stderr, took) = timed(Gm::new(&["feed", "export", "--na", &na, "--output", out.to_str().unwrap()]), 2);
    // The client's default operation deadline is 30 s; before the fix the handshake never ended.
    assert!(took < Duration::from_secs(45), "took {took:?}\n{stderr}");
    assert!(stderr.contains("timed out"), "{stderr}");
    assert!(!out.exists());
}
