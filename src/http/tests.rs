//! Behaviour tests of the HTTP layer: a real [`Server`] on 127.0.0.1 port 0, raw TCP clients and a
//! small routing handler, covering limits (400, 408, 413, 414, 431, 501, 505), keep-alive,
//! pipelining, the connection cap and per-address shares (503), request ids, HEAD, a panicking
//! handler (500), graceful and forced shutdown, and the access log.
//!
//! Unit tests of single functions stay at the bottom of their file; this file must not test
//! anything that needs the NA (that is `tests/it/`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::conn;
use super::error::HttpError;
use super::handler::Handler;
use super::limits::Limits;
use super::request::Request;
use super::response::Response;
use super::server::{ServeReport, Server, ShutdownHandle};
use super::shared::ServerStats;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

fn test_limits() -> Limits {
    Limits {
        head_timeout: Duration::from_secs(3),
        body_timeout: Duration::from_secs(3),
        keep_alive_idle: Duration::from_secs(5),
        write_timeout: Duration::from_secs(3),
        shutdown_grace: Duration::from_secs(2),
        ..Limits::default()
    }
}

fn routes(request: &Request) -> Response {
    match request.path.as_str() {
        "/healthz" => Response::json(200, "{\"status\":\"ok\"}\n"),
        "/echo" => Response::bytes(200, "application/octet-stream", request.body.clone()),
        "/id" => Response::text(200, request.request_id.clone()),
        "/panic" => panic!("test handler panics on purpose"),
        "/slow" => {
            thread::sleep(Duration::from_millis(300));
            Response::text(200, "slow done")
        }
        "/close" => Response::text(200, "bye").with_header("Connection", "close"),
        _ => Response::json_error(404, "Not found"),
    }
}

/// [`routes`] as a server of documents from memory offers it: every request but `/slow` and `/panic` is
/// answered at once, on the event loop; those two (and anything with a body, which the loop never
/// answers) go to a connection thread. Counts both kinds.
#[derive(Default)]
struct Routes {
    answered_at_once: std::sync::atomic::AtomicUsize,
    handled: std::sync::atomic::AtomicUsize,
}

impl Handler for Routes {
    fn handle(&self, request: &Request) -> Response {
        self.handled.fetch_add(1, Ordering::Relaxed);
        routes(request)
    }

    fn handle_now(&self, request: &Request) -> Option<Response> {
        if matches!(request.path.as_str(), "/slow" | "/panic") {
            return None;
        }
        self.answered_at_once.fetch_add(1, Ordering::Relaxed);
        Some(routes(request))
    }
}

struct TestServer {
    addr: SocketAddr,
    handle: ShutdownHandle,
    stats: Arc<ServerStats>,
    done: mpsc::Receiver<Result<ServeReport, HttpError>>,
}

impl TestServer {
    /// With [`Routes`]: most requests are answered on the event loop.
    fn start(limits: Limits) -> TestServer {
        TestServer::start_with(limits, Arc::new(Routes::default()))
    }

    /// With a handler that answers nothing at once: every request goes to a connection thread.
    fn start_threaded(limits: Limits) -> TestServer {
        TestServer::start_with(limits, Arc::new(routes))
    }

    /// One server of each kind.
    fn both(limits: &Limits) -> [TestServer; 2] {
        [TestServer::start(limits.clone()), TestServer::start_threaded(limits.clone())]
    }

    fn start_with(limits: Limits, handler: Arc<dyn Handler>) -> TestServer {
        let server = Server::bind(([127, 0, 0, 1], 0).into(), limits).unwrap();
        let addr = server.local_addr();
        let handle = server.shutdown_handle();
        let stats = server.stats();
        let (tx, done) = mpsc::channel();
        thread::Builder::new()
            .name("test-server".into())
            .spawn(move || {
                let _ = tx.send(server.run(handler));
            })
            .unwrap();
        TestServer { addr, handle, stats, done }
    }

    fn stop(&self) -> ServeReport {
        self.handle.shutdown();
        self.done.recv_timeout(Duration::from_secs(10)).unwrap().unwrap()
    }

    fn open(&self) -> usize {
        self.stats.open_connections.load(Ordering::Acquire)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        let _ = self.done.recv_timeout(Duration::from_secs(10));
    }
}

/// Polls `condition` until it holds, failing the test after `timeout` (also used by `worker.rs`'s tests).
pub(super) fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, CLIENT_TIMEOUT).unwrap();
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream
}

/// A connection from `from` (any 127/8 address is loopback on Linux), bound before connecting.
fn connect_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    use rustix::net::{bind, connect, socket, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    bind(&fd, &SocketAddr::from((from, 0))).unwrap();
    connect(&fd, &addr).unwrap();
    let stream = TcpStream::from(fd);
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn body_text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// A client connection that reads whole responses, keeping pipelined leftovers.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn new(addr: SocketAddr) -> Client {
        Client { stream: connect(addr), buf: Vec::new() }
    }

    fn from(ip: [u8; 4], addr: SocketAddr) -> Client {
        Client { stream: connect_from(ip, addr), buf: Vec::new() }
    }

    /// The status of `GET path`, whether the server answers it or refuses the connection first.
    fn reply_to(&mut self, path: &str) -> u16 {
        let _ = self.stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        loop {
            if let Some(reply) = self.parse(false) {
                return reply.status;
            }
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(n) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return 0,
            }
        }
    }

    fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).unwrap();
    }

    fn get(&mut self, path: &str) -> Reply {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        self.reply(false)
    }

    fn reply(&mut self, head_request: bool) -> Reply {
        loop {
            if let Some(reply) = self.parse(head_request) {
                return reply;
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed before a full response: {:?}", self.buf);
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn parse(&mut self, head_request: bool) -> Option<Reply> {
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut slots);
        let head_len = match response.parse(&self.buf).unwrap() {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => return None,
        };
        let headers: Vec<(String, String)> = response
            .headers
            .iter()
            .map(|h| (h.name.to_string(), String::from_utf8(h.value.to_vec()).unwrap()))
            .collect();
        let status = response.code.unwrap();
        let length: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        let body_len = if head_request || status == 100 { 0 } else { length };
        if self.buf.len() < head_len + body_len {
            return None;
        }
        let body = self.buf[head_len..head_len + body_len].to_vec();
        self.buf.drain(..head_len + body_len);
        Some(Reply { status, headers, body })
    }

    /// Reads until the server closes; true if it closed (EOF or reset) with nothing more sent.
    fn closed_by_server(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.stream.read_to_end(&mut rest) {
            Ok(_) => rest.is_empty() && self.buf.is_empty(),
            Err(err) => err.kind() == io::ErrorKind::ConnectionReset,
        }
    }
}

fn one_request(addr: SocketAddr, raw: &[u8]) -> (Reply, Client) {
    let mut client = Client::new(addr);
    // The server may close before reading everything; its answer is what matters.
    let _ = client.stream.write_all(raw);
    let reply = client.reply(false);
    (reply, client)
}

#[test]
fn serves_a_request() {
    let server = TestServer::start(test_limits());
    let mut client = Client::new(server.addr);
    let reply = client.get("/healthz");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body_text(), "{\"status\":\"ok\"}\n");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("connection"), Some("keep-alive"));
    assert!(reply.header("date").is_some_and(|d| d.ends_with(" GMT")));
    let reply = client.get("/nope");
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body_text(), "{\"error\":\"Not found\"}\n");
    drop(client);
    let report = server.stop();
    assert_eq!(report.connections_total, 1);
    assert_eq!(report.requests_total, 2);
    assert_eq!(report.forced_closed, 0);
}

#[test]
fn garbage_request_line_gets_400_and_server_keeps_serving() {
    let server = TestServer::start(test_limits());
    let (reply, mut client) = one_request(server.addr, b"GARBAGE\r\n\r\n");
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body_text(), "{\"error\":\"Bad Request\"}\n");
    assert_eq!(reply.header("connection"), Some("close"));
    assert_eq!(reply.header("x-request-id").map(str::len), Some(32));
    assert!(client.closed_by_server());
    let (reply, _) = one_request(server.addr, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
    assert_eq!(reply.status, 400);
    assert_eq!(Client::new(server.addr).get("/healthz").status, 200);
}

#[test]
fn head_over_limit_gets_431() {
    let server = TestServer::start(test_limits());
    let raw = format!("GET /healthz HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000));
    let (reply, mut client) = one_request(server.addr, raw.as_bytes());
    assert_eq!(reply.status, 431);
    assert_eq!(reply.body_text(), "{\"error\":\"Request header fields too large\"}\n");
    assert!(client.closed_by_server());
    let mut raw = String::from("GET /healthz HTTP/1.1\r\n");
    for i in 0..101 {
        raw.push_str(&format!("H{i}: v\r\n"));
    }
    raw.push_str("\r\n");
    let (reply, _) = one_request(server.addr, raw.as_bytes());
    assert_eq!(reply.status, 431);
}

#[test]
fn request_line_over_limit_gets_414() {
    let server = TestServer::start(test_limits());
    let raw = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(5000));
    let (reply, _) = one_request(server.addr, raw.as_bytes());
    assert_eq!(reply.status, 414);
    assert_eq!(reply.body_text(), "{\"error\":\"URI too long\"}\n");
}

#[test]
fn body_over_limit_gets_413_without_sending_the_body() {
    let server = TestServer::start(test_limits());
    let started = Instant::now();
    let (reply, mut client) =
        one_request(server.addr, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3000000\r\n\r\n");
    assert_eq!(reply.status, 413);
    assert_eq!(reply.body_text(), "{\"error\":\"Request body too large\"}\n");
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(client.closed_by_server());
}

#[test]
fn transfer_encoding_gets_501() {
    let server = TestServer::start(test_limits());
    let (reply, _) =
        one_request(server.addr, b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    assert_eq!(reply.status, 501);
    assert_eq!(reply.body_text(), "{\"error\":\"Transfer-Encoding is not supported; send a Content-Length body\"}\n");
}

#[test]
fn unsupported_version_gets_505_and_bad_length_gets_400() {
    let server = TestServer::start(test_limits());
    let (reply, _) = one_request(server.addr, b"GET /healthz HTTP/2.0\r\n\r\n");
    assert_eq!(reply.status, 505);
    let (reply, _) = one_request(server.addr, b"POST /echo HTTP/1.1\r\nContent-Length: 1x\r\n\r\n");
    assert_eq!(reply.status, 400);
}

#[test]
fn body_is_read_by_content_length_and_missing_length_means_empty() {
    let server = TestServer::start(test_limits());
    let mut client = Client::new(server.addr);
    client.send(b"POST /echo HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello");
    client.send(b" world");
    let reply = client.reply(false);
    assert_eq!(reply.body_text(), "hello world");
    client.send(b"POST /echo HTTP/1.1\r\n\r\n");
    let reply = client.reply(false);
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty());
}

#[test]
fn expect_continue_gets_100_before_the_body() {
    let server = TestServer::start(test_limits());
    let mut client = Client::new(server.addr);
    client.send(b"PUT /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    let interim = client.reply(false);
    assert_eq!(interim.status, 100);
    client.send(b"data");
    let reply = client.reply(false);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body_text(), "data");
}

#[test]
fn slow_client_is_dropped_at_head_timeout_while_others_are_served() {
    let limits = Limits { head_timeout: Duration::from_millis(500), ..test_limits() };
    let server = TestServer::start(limits);
    let slow = connect(server.addr);
    let mut slow_reader = slow.try_clone().unwrap();
    let started = Instant::now();
    let dribbler = thread::spawn(move || {
        let mut slow = slow;
        for &byte in b"GET /a-long-path-sent-one-byte-at-a-time HTTP/1.1\r\nHost: t\r\n" {
            if slow.write_all(&[byte]).is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    wait_for("the slow connection", Duration::from_secs(2), || server.open() >= 1);
    let fresh_started = Instant::now();
    let reply = Client::new(server.addr).get("/healthz");
    assert_eq!(reply.status, 200);
    assert!(fresh_started.elapsed() < Duration::from_secs(1));
    let mut seen = Vec::new();
    let _ = slow_reader.read_to_end(&mut seen);
    let dropped_after = started.elapsed();
    assert!(seen.is_empty() || seen.starts_with(b"HTTP/1.1 408 "), "{seen:?}");
    assert!(dropped_after >= Duration::from_millis(400), "{dropped_after:?}");
    assert!(dropped_after < Duration::from_secs(3), "{dropped_after:?}");
    dribbler.join().unwrap();
}

#[test]
fn body_slower_than_body_timeout_gets_408() {
    let limits = Limits { body_timeout: Duration::from_millis(300), ..test_limits() };
    let server = TestServer::start(limits);
    let mut client = Client::new(server.addr);
    client.send(b"POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nab");
    let started = Instant::now();
    let reply = client.reply(false);
    assert_eq!(reply.status, 408);
    assert_eq!(reply.body_text(), "{\"error\":\"Request timeout\"}\n");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn idle_keep_alive_connection_is_closed_after_keep_alive_idle() {
    let limits = Limits { keep_alive_idle: Duration::from_millis(300), ..test_limits() };
    let server = TestServer::start(limits);
    let mut client = Client::new(server.addr);
    assert_eq!(client.get("/healthz").status, 200);
    let started = Instant::now();
    assert!(client.closed_by_server());
    assert!(started.elapsed() < Duration::from_secs(2));
    wait_for("the connection to be counted closed", Duration::from_secs(2), || server.open() == 0);
}

#[test]
fn many_idle_connections_do_not_delay_a_fresh_client() {
    let server = TestServer::start(test_limits());
    let idle: Vec<TcpStream> = (0..300).map(|_| connect(server.addr)).collect();
    wait_for("300 open connections", Duration::from_secs(10), || server.open() == 300);
    let started = Instant::now();
    let reply = Client::new(server.addr).get("/healthz");
    assert_eq!(reply.status, 200);
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    drop(idle);
}

#[test]
fn connection_over_the_cap_gets_a_fast_503() {
    let limits = Limits { max_connections: 5, ..test_limits() };
    let server = TestServer::start(limits);
    let mut idle: Vec<TcpStream> = (0..5).map(|_| connect(server.addr)).collect();
    wait_for("5 open connections", Duration::from_secs(5), || server.open() == 5);
    let started = Instant::now();
    let mut client = Client::new(server.addr);
    let reply = client.reply(false);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body_text(), "{\"error\":\"Server busy\"}\n");
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(client.closed_by_server());
    assert_eq!(server.stats.rejected_over_cap.load(Ordering::Acquire), 1);
    idle.pop();
    wait_for("a free slot", Duration::from_secs(5), || server.open() == 4);
    assert_eq!(Client::new(server.addr).get("/healthz").status, 200);
}

// F2: one address must not take every slot; a client from another address is served.
#[test]
fn one_address_over_its_share_gets_503_while_another_address_is_served() {
    let limits = Limits { max_connections: 10, max_connections_per_address: 3, ..test_limits() };
    let server = TestServer::start(limits);
    let _held: Vec<TcpStream> = (0..3).map(|_| connect_from([127, 0, 0, 1], server.addr)).collect();
    wait_for("3 open connections", Duration::from_secs(5), || server.open() == 3);
    let mut over = Client::from([127, 0, 0, 1], server.addr);
    let reply = over.reply(false);
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body_text(), "{\"error\":\"Server busy\"}\n");
    assert!(over.closed_by_server());
    assert_eq!(server.stats.rejected_per_address.load(Ordering::Acquire), 1);
    assert_eq!(Client::from([127, 0, 0, 2], server.addr).get("/healthz").status, 200);
    assert_eq!(server.stats.rejected_over_cap.load(Ordering::Acquire), 0);
}

// F2: at its share, an address's own idle keep-alive connection makes room for its new one.
#[test]
fn at_its_share_an_address_reuses_the_slot_of_its_idle_keep_alive_connection() {
    let limits = Limits { max_connections: 10, max_connections_per_address: 2, ..test_limits() };
    let server = TestServer::start(limits);
    let _silent = connect_from([127, 0, 0, 1], server.addr);
    let mut idle = Client::from([127, 0, 0, 1], server.addr);
    assert_eq!(idle.get("/healthz").status, 200);
    // The connection is marked idle just after its answer is written; a newcomer racing that gets 503.
    wait_for("the idle connection's slot", Duration::from_secs(5), || {
        Client::from([127, 0, 0, 1], server.addr).reply_to("/healthz") == 200
    });
    assert!(idle.closed_by_server());
    assert_eq!(server.stats.evicted_idle.load(Ordering::Acquire), 1);
}

// F2: near the cap, idle keep-alive connections are closed first so a newcomer with a request is served;
// connections busy with a request are never closed for it.
#[test]
fn at_the_cap_the_longest_idle_keep_alive_connection_is_closed_for_a_newcomer() {
    let limits = Limits { max_connections: 4, ..test_limits() };
    let server = TestServer::start(limits);
    let mut older = Client::from([127, 0, 0, 3], server.addr);
    assert_eq!(older.get("/healthz").status, 200);
    thread::sleep(Duration::from_millis(20));
    let mut newer = Client::from([127, 0, 0, 4], server.addr);
    assert_eq!(newer.get("/healthz").status, 200);
    let mut pending: Vec<Client> = (5..7).map(|i| Client::from([127, 0, 0, i], server.addr)).collect();
    wait_for("4 open connections", Duration::from_secs(5), || server.open() == 4);

    wait_for("a slot for the newcomer", Duration::from_secs(5), || {
        Client::from([127, 0, 0, 2], server.addr).reply_to("/healthz") == 200
    });
    assert!(older.closed_by_server(), "the longest-idle connection makes room");
    assert_eq!(newer.get("/healthz").status, 200, "the other idle connection is kept");
    for client in &mut pending {
        assert_eq!(client.get("/healthz").status, 200, "connections in a request are never evicted");
    }
    assert_eq!(server.stats.evicted_idle.load(Ordering::Acquire), 1);
    assert_eq!(server.stats.rejected_over_cap.load(Ordering::Acquire), 0);
}

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    for server in TestServer::both(&test_limits()) {
        keep_alive_serves_two_requests_on(&server);
    }
}

fn keep_alive_serves_two_requests_on(server: &TestServer) {
    let mut client = Client::new(server.addr);
    assert_eq!(client.get("/healthz").status, 200);
    assert_eq!(client.get("/healthz").status, 200);
    assert_eq!(server.stats.total_connections.load(Ordering::Acquire), 1);

    let mut old = Client::new(server.addr);
    old.send(b"GET /healthz HTTP/1.0\r\n\r\n");
    let reply = old.reply(false);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(old.closed_by_server());

    let mut old = Client::new(server.addr);
    old.send(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(old.reply(false).header("connection"), Some("keep-alive"));
    old.send(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(old.reply(false).header("connection"), Some("close"));
    assert!(old.closed_by_server());

    let mut client = Client::new(server.addr);
    assert_eq!(client.get("/close").header("connection"), Some("close"));
    assert!(client.closed_by_server());
}

#[test]
fn max_requests_per_connection_ends_with_close() {
    let limits = Limits { max_requests_per_connection: 2, ..test_limits() };
    for server in TestServer::both(&limits) {
        let mut client = Client::new(server.addr);
        assert_eq!(client.get("/healthz").header("connection"), Some("keep-alive"));
        assert_eq!(client.get("/healthz").header("connection"), Some("close"));
        assert!(client.closed_by_server());
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    for server in TestServer::both(&test_limits()) {
        let mut client = Client::new(server.addr);
        client.send(
            b"GET /id HTTP/1.1\r\nX-Request-ID: first\r\n\r\n\
              POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello\
              GET /id HTTP/1.1\r\nX-Request-ID: third\r\n\r\n",
        );
        assert_eq!(client.reply(false).body_text(), "first");
        assert_eq!(client.reply(false).body_text(), "hello");
        assert_eq!(client.reply(false).body_text(), "third");
        assert_eq!(client.get("/healthz").status, 200);
    }
}

/// The event loop answers what it can and hands the connection, with every byte it did not answer, to a
/// thread for the rest: answers stay in order, and the thread keeps serving the connection.
#[test]
fn requests_answered_at_once_and_by_a_thread_mix_in_order_on_one_connection() {
    let handler = Arc::new(Routes::default());
    let server = TestServer::start_with(test_limits(), Arc::clone(&handler) as Arc<dyn Handler>);
    let mut client = Client::new(server.addr);
    assert_eq!(client.get("/healthz").status, 200);
    assert_eq!(client.get("/healthz").status, 200);
    assert_eq!(handler.answered_at_once.load(Ordering::Relaxed), 2, "answered on the event loop");
    assert_eq!(handler.handled.load(Ordering::Relaxed), 0);
    client.send(
        b"GET /id HTTP/1.1\r\nX-Request-ID: first\r\n\r\n\
          GET /slow HTTP/1.1\r\n\r\n\
          GET /id HTTP/1.1\r\nX-Request-ID: third\r\n\r\n",
    );
    assert_eq!(client.reply(false).body_text(), "first");
    assert_eq!(client.reply(false).body_text(), "slow done");
    assert_eq!(client.reply(false).body_text(), "third");
    assert_eq!(client.get("/healthz").status, 200, "the thread serves the connection on");
    assert_eq!(handler.handled.load(Ordering::Relaxed), 3, "/slow, then everything after it, on the thread");
    // Idle for longer than a read slice, the connection goes back to the event loop, which answers again.
    thread::sleep(test_limits().read_slice() * 2);
    let at_once = handler.answered_at_once.load(Ordering::Relaxed);
    assert_eq!(client.get("/healthz").status, 200);
    assert_eq!(handler.answered_at_once.load(Ordering::Relaxed), at_once + 1, "answered on the event loop again");
    assert_eq!(handler.handled.load(Ordering::Relaxed), 3);
    // A thread counts its response once written, so just after the client has read it.
    wait_for("7 responses counted", Duration::from_secs(5), || {
        server.stats.requests_total.load(Ordering::Acquire) == 7
    });
}

/// A client that pipelines requests and never reads their answers fills its socket: the event loop hands
/// it to a thread (which gives up at `write_timeout`) instead of waiting, and serves everyone else.
#[test]
fn a_client_that_pipelines_without_reading_holds_up_no_one() {
    let limits = Limits { write_timeout: Duration::from_secs(1), ..test_limits() };
    let server = TestServer::start(limits);
    let mut hog = connect(server.addr);
    let burst = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n".repeat(100_000);
    let hogging = thread::spawn(move || {
        let _ = hog.write_all(&burst);
        hog
    });
    wait_for("the hog's connection", Duration::from_secs(5), || server.open() == 1);
    thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let mut other = Client::new(server.addr);
    assert_eq!(other.get("/healthz").status, 200);
    assert!(started.elapsed() < Duration::from_secs(2), "answered after {:?}", started.elapsed());
    wait_for("the hog's connection to be dropped", Duration::from_secs(10), || server.open() == 1);
    drop(hogging.join().unwrap());
    assert_eq!(other.get("/healthz").status, 200);
}

/// Connections waiting in the event loop have no request in progress: shutdown closes them at once.
#[test]
fn shutdown_closes_the_connections_the_event_loop_watches() {
    let server = TestServer::start(test_limits());
    let mut idle = Client::new(server.addr);
    assert_eq!(idle.get("/healthz").status, 200);
    let mut fresh = Client::new(server.addr);
    wait_for("both connections", Duration::from_secs(5), || server.open() == 2);
    let started = Instant::now();
    let report = server.stop();
    assert_eq!(report.forced_closed, 0);
    assert!(started.elapsed() < Duration::from_secs(2), "stopped after {:?}", started.elapsed());
    assert!(idle.closed_by_server());
    assert!(fresh.closed_by_server());
    assert_eq!(server.open(), 0);
}

#[test]
fn request_id_is_echoed_when_valid_and_generated_otherwise() {
    let server = TestServer::start(test_limits());
    let mut client = Client::new(server.addr);
    client.send(b"GET /id HTTP/1.1\r\nX-Request-ID: abc-123.x_y:z\r\n\r\n");
    let reply = client.reply(false);
    assert_eq!(reply.header("x-request-id"), Some("abc-123.x_y:z"));
    assert_eq!(reply.body_text(), "abc-123.x_y:z");
    for bad in ["has space", "semi;colon", ""] {
        client.send(format!("GET /id HTTP/1.1\r\nX-Request-ID: {bad}\r\n\r\n").as_bytes());
        let reply = client.reply(false);
        let id = reply.header("x-request-id").unwrap().to_string();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(reply.body_text(), id);
    }
}

#[test]
fn head_request_gets_headers_but_no_body() {
    let server = TestServer::start(test_limits());
    let mut client = Client::new(server.addr);
    client.send(b"HEAD /healthz HTTP/1.1\r\n\r\n");
    let reply = client.reply(true);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), Some("16"));
    assert!(client.buf.is_empty());
    let reply = client.get("/healthz");
    assert_eq!(reply.body.len(), 16);
}

#[test]
fn handler_panic_becomes_500_and_server_keeps_serving() {
    let server = TestServer::start(test_limits());
    let mut client = Client::new(server.addr);
    let reply = client.get("/panic");
    assert_eq!(reply.status, 500);
    assert_eq!(reply.body_text(), "{\"error\":\"Internal server error\"}\n");
    assert_eq!(client.get("/healthz").status, 200);
    assert_eq!(Client::new(server.addr).get("/healthz").status, 200);
}

#[test]
fn shutdown_drains_an_in_flight_request() {
    let entered = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&entered);
    let handler = move |request: &Request| {
        if request.path == "/slow" {
            seen.store(true, Ordering::Release);
        }
        routes(request)
    };
    let server = TestServer::start_with(test_limits(), Arc::new(handler));
    let mut idle = Client::new(server.addr);
    assert_eq!(idle.get("/healthz").status, 200);
    let addr = server.addr;
    let in_flight = thread::spawn(move || {
        let mut client = Client::new(addr);
        let reply = client.get("/slow");
        let closed = client.closed_by_server();
        (reply, closed)
    });
    wait_for("the handler to start", Duration::from_secs(5), || entered.load(Ordering::Acquire));
    let stopping = Instant::now();
    server.handle.shutdown();
    let (reply, closed) = in_flight.join().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body_text(), "slow done");
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(closed);
    assert!(idle.closed_by_server());
    let report = server.done.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(2));
    assert_eq!(report.forced_closed, 0);
    assert_eq!(report.connections_total, 2);
    assert_eq!(report.requests_total, 2);
}

#[test]
fn shutdown_forces_shut_what_outlives_the_grace_period() {
    let limits = Limits { shutdown_grace: Duration::from_millis(100), ..test_limits() };
    let entered = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&entered);
    let handler = move |request: &Request| {
        seen.store(true, Ordering::Release);
        routes(request)
    };
    let server = TestServer::start_with(limits, Arc::new(handler));
    let mut client = Client::new(server.addr);
    client.send(b"GET /slow HTTP/1.1\r\n\r\n");
    wait_for("the handler to start", Duration::from_secs(5), || entered.load(Ordering::Acquire));
    let report = server.stop();
    assert_eq!(report.forced_closed, 1);
    assert!(client.closed_by_server());
}

/// One captured log record: its key-value pairs in order, and its message.
type Captured = (Vec<(String, String)>, String);

/// Keeps access log records; the `log` crate allows one logger per process, installed once.
struct AccessCapture {
    records: Mutex<Vec<Captured>>,
}

static ACCESS_CAPTURE: AccessCapture = AccessCapture { records: Mutex::new(Vec::new()) };

impl log::Log for AccessCapture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target() == conn::ACCESS_LOG_TARGET
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut pairs = KeyValues(Vec::new());
        record.key_values().visit(&mut pairs).unwrap();
        lock(&self.records).push((pairs.0, record.args().to_string()));
    }

    fn flush(&self) {}
}

struct KeyValues(Vec<(String, String)>);

impl<'kvs> log::kv::VisitSource<'kvs> for KeyValues {
    fn visit_pair(&mut self, key: log::kv::Key<'kvs>, value: log::kv::Value<'kvs>) -> Result<(), log::kv::Error> {
        self.0.push((key.to_string(), value.to_string()));
        Ok(())
    }
}

fn access_records_for(request_id: &str) -> Vec<Captured> {
    lock(&ACCESS_CAPTURE.records)
        .iter()
        .filter(|(pairs, _)| pairs.iter().any(|(k, v)| k == "request_id" && v == request_id))
        .cloned()
        .collect()
}

#[test]
fn each_response_gets_one_access_record_without_the_query() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&ACCESS_CAPTURE).unwrap();
        log::set_max_level(log::LevelFilter::Info);
    });
    let server = TestServer::start(test_limits());
    let mut client = Client::new(server.addr);
    client.send(b"GET /healthz?token=secret HTTP/1.1\r\nX-Request-ID: access-check-1\r\n\r\n");
    assert_eq!(client.reply(false).status, 200);
    client.send(b"GET /nope HTTP/1.1\r\nX-Request-ID: access-check-2\r\n\r\n");
    assert_eq!(client.reply(false).status, 404);
    wait_for("the access records", Duration::from_secs(5), || !access_records_for("access-check-2").is_empty());
    let records = access_records_for("access-check-1");
    assert_eq!(records.len(), 1);
    let (pairs, message) = &records[0];
    assert_eq!(message, "API request");
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["method", "path", "status", "duration_ms", "request_id", "remote_addr"]);
    let value = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    assert_eq!(value("method"), Some("GET"));
    assert_eq!(value("path"), Some("/healthz"));
    assert_eq!(value("status"), Some("200"));
    assert_eq!(value("remote_addr"), Some("127.0.0.1"));
    assert!(value("duration_ms").unwrap().parse::<f64>().unwrap() >= 0.0);
    assert!(!pairs.iter().any(|(_, v)| v.contains("secret")));
    assert_eq!(access_records_for("access-check-2").len(), 1);
}

#[test]
fn bind_error_names_the_address_in_use() {
    let server = Server::bind(([127, 0, 0, 1], 0).into(), Limits::default()).unwrap();
    let addr = server.local_addr();
    let err = Server::bind(addr, Limits::default()).unwrap_err();
    assert!(matches!(err, HttpError::Bind { .. }));
    assert_eq!(
        err.to_string(),
        format!("cannot listen on {addr}: the address is already in use (is another server running?)")
    );
    let bad = Limits { max_headers: 0, ..Limits::default() };
    assert!(matches!(
        Server::bind(([127, 0, 0, 1], 0).into(), bad),
        Err(HttpError::InvalidLimit { setting: "max_headers", .. })
    ));
}

#[test]
fn shutdown_before_run_returns_at_once() {
    let server = Server::bind(([127, 0, 0, 1], 0).into(), test_limits()).unwrap();
    server.shutdown_handle().shutdown();
    assert!(server.shutdown_handle().is_shutdown());
    let report = server.run(Arc::new(routes)).unwrap();
    assert_eq!(report, ServeReport { connections_total: 0, requests_total: 0, forced_closed: 0 });
}

#[test]
fn a_lane_that_panics_takes_no_more_connections_and_the_server_serves_on() {
    let server = TestServer::start(test_limits());
    let mut before = Client::new(server.addr);
    assert_eq!(before.get("/healthz").status, 200);
    let mut culprit = Client::new(server.addr);
    culprit.send(format!("GET {} HTTP/1.1\r\nHost: t\r\n\r\n", super::poller::PANICS_THE_LANE).as_bytes());
    assert!(culprit.closed_by_server(), "the connection whose request broke the lane is closed");
    // A connection the broken lane watched is closed with it; one on another lane (more than two cores)
    // is still answered. Either way it never hangs.
    let status = before.reply_to("/healthz");
    assert!(status == 0 || status == 200, "got {status}");
    // New connections get threads (or a lane still running), on every lane's turn, keep-alive past
    // the read slice included: a thread whose connection no lane takes back serves it on.
    for _ in 0..8 {
        let mut fresh = Client::new(server.addr);
        assert_eq!(fresh.get("/healthz").status, 200);
        thread::sleep(Duration::from_millis(300));
        assert_eq!(fresh.get("/id").status, 200);
    }
    drop((before, culprit));
    let report = server.stop();
    assert_eq!(report.forced_closed, 0);
    wait_for("every connection closed", Duration::from_secs(5), || server.open() == 0);
}
