//! The listener, the accept thread, the connection cap and graceful shutdown.
//!
//! Owns: [`Server`], [`Handler`], [`ShutdownHandle`], [`ServerStats`] and [`ServeReport`]; admitting or
//! refusing each connection, starting its thread, and on shutdown draining, then forcing shut, whatever is
//! still open. Must not parse HTTP or apply per-request deadlines: that is `conn.rs`.
//!
//! Concurrency model: one thread per connection, bounded by `max_connections`. Reads block with short
//! per-connection timeouts and deadlines, so an idle or dribbling client only costs its own parked thread (a
//! few KiB of touched stack out of a small `thread_stack_bytes` reservation) and never delays other clients.
//! A readiness poller (epoll/kqueue) would need `unsafe` system calls or another dependency, and an async
//! runtime is not allowed; with keep-alive the thread start is paid once per connection, not per request.
//! The accept thread never reads from or waits on a client: at `max_connections`, or at an address's
//! `max_connections_per_address`, it closes the longest-idle keep-alive connection to admit the newcomer
//! (`registry.rs`), and only with none idle writes a canned 503 without blocking; shutdown wakes a blocking
//! `accept` by connecting to the listener once.

use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::conn;
use super::error::HttpError;
use super::handler::Handler;
use super::limits::Limits;
use super::registry::{Refusal, Registry};
use super::request::generate_request_id;
use super::response::{encode, DateCache, Framing, Response};
use super::shared::{ServerStats, Shared};

/// Pause after an `accept` failure such as running out of file descriptors, so the loop neither spins nor
/// exits while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Least time between two warnings about the same accept-loop condition.
const WARNING_INTERVAL: Duration = Duration::from_secs(5);

/// After forcing connections shut at the end of `shutdown_grace`, how long to wait for their threads to end.
const FORCED_EXIT_WAIT: Duration = Duration::from_secs(1);

/// How long `shutdown` tries to connect to the listener to wake the accept thread.
const WAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// What [`Server::run`] did, returned once it has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeReport {
    /// Connections admitted over the server's life.
    pub connections_total: u64,
    /// Responses written over the server's life (see [`ServerStats::requests_total`]).
    pub requests_total: u64,
    /// Connections still open when `shutdown_grace` ran out, which were then shut by force.
    pub forced_closed: usize,
}

/// A bound HTTP server, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Server {
    /// Binds the listening socket and checks `limits`.
    ///
    /// # Errors
    /// [`HttpError::InvalidLimit`] for unusable limits, [`HttpError::Bind`] (naming the address and why, e.g.
    /// already in use) when the socket cannot be bound.
    pub fn bind(addr: SocketAddr, limits: Limits) -> Result<Server, HttpError> {
        limits.validate()?;
        let listener = TcpListener::bind(addr).map_err(|source| HttpError::Bind { addr, source })?;
        let local_addr =
            listener.local_addr().map_err(|source| HttpError::Listener { step: "read its local address", source })?;
        let shared = Arc::new(Shared {
            limits,
            stats: Arc::new(ServerStats::default()),
            shutdown: AtomicBool::new(false),
            registry: Mutex::new(Registry::new()),
            next_id: AtomicU64::new(1),
            drained: Condvar::new(),
            drained_lock: Mutex::new(()),
        });
        Ok(Server { listener, local_addr, shared })
    }

    /// The address actually bound (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that stops [`run`](Server::run) from any thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle { shared: Arc::clone(&self.shared), wake_addr: wake_addr(self.local_addr) }
    }

    /// The live counters.
    pub fn stats(&self) -> Arc<ServerStats> {
        Arc::clone(&self.shared.stats)
    }

    /// Serves until [`ShutdownHandle::shutdown`] is called, then stops accepting, lets in-flight requests
    /// finish for up to `shutdown_grace` (their responses say `Connection: close`), closes idle connections,
    /// forces shut whatever is left, and joins the threads that have ended.
    ///
    /// # Errors
    /// [`HttpError::Spawn`] if the accept thread cannot start; [`HttpError::AcceptLoopPanicked`] (after
    /// draining) if it panicked.
    pub fn run(self, handler: Arc<dyn Handler>) -> Result<ServeReport, HttpError> {
        let Server { listener, local_addr, shared } = self;
        let accept_shared = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("http-accept".to_owned())
            .spawn(move || accept_loop(&listener, &accept_shared, &handler))
            .map_err(|source| HttpError::Spawn { thread: "http-accept", source })?;
        log::debug!("HTTP server listening on {local_addr}");
        let accepted = accept.join();
        shared.shutdown.store(true, Ordering::Release);
        let forced_closed = drain(&shared);
        let Ok(mut workers) = accepted else {
            return Err(HttpError::AcceptLoopPanicked);
        };
        workers.join_ended(shared.stats.open_connections.load(Ordering::Acquire) == 0);
        let stats = &shared.stats;
        Ok(ServeReport {
            connections_total: stats.total_connections.load(Ordering::Acquire),
            requests_total: stats.requests_total.load(Ordering::Acquire),
            forced_closed,
        })
    }
}

/// Stops a running [`Server`]; cheap to clone and send to a signal-handling thread.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
    wake_addr: SocketAddr,
}

impl ShutdownHandle {
    /// Asks the server to stop and wakes its accept thread (one loopback connect); does not wait for `run` to
    /// return. Calling it again does nothing.
    pub fn shutdown(&self) {
        if self.shared.shutdown.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Err(err) = TcpStream::connect_timeout(&self.wake_addr, WAKE_TIMEOUT) {
            log::warn!(
                "cannot wake the HTTP accept thread via {}: {err}; it stops when the next client connects",
                self.wake_addr
            );
        }
    }

    /// Whether shutdown has been asked for.
    pub fn is_shutdown(&self) -> bool {
        self.shared.is_shutting_down()
    }
}

/// Where to connect to wake a blocking `accept`: the bound address, with a wildcard IP made loopback.
fn wake_addr(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Accepts until shutdown; returns the connection threads it started that may still need joining.
fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, handler: &Arc<dyn Handler>) -> Workers {
    let mut workers = Workers::default();
    let mut exhaustion_warning = Throttle::default();
    let mut error_warning = Throttle::default();
    let mut cap_warning = Throttle::default();
    while !shared.is_shutting_down() {
        match listener.accept() {
            Ok((stream, peer)) => {
                if shared.is_shutting_down() {
                    break;
                }
                admit(stream, peer, shared, handler, &mut workers, &mut cap_warning);
            }
            Err(err) if is_descriptor_exhaustion(&err) => {
                if exhaustion_warning.allows() {
                    log::warn!(
                        "cannot accept connections: {err}; raise the open-file limit (ulimit -n) or lower \
                         max_connections ({}); retrying",
                        shared.limits.max_connections
                    );
                }
                thread::sleep(ACCEPT_BACKOFF);
            }
            Err(err) if is_transient_accept_error(&err) => {}
            Err(err) => {
                if error_warning.allows() {
                    log::warn!("accepting a connection failed: {err}; retrying");
                }
                thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
    workers
}

/// Starts a thread for the connection, making room by closing an idle keep-alive connection when a limit is
/// reached, or refuses it with 503 when there is no idle one to close.
fn admit(
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    handler: &Arc<dyn Handler>,
    workers: &mut Workers,
    cap_warning: &mut Throttle,
) {
    let stats = &shared.stats;
    let limits = &shared.limits;
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let handle = match stream.try_clone() {
        Ok(clone) => Some(clone),
        Err(err) => {
            log::debug!("connection {id} cannot be evicted or force-closed: {err}");
            None
        }
    };
    let admitted =
        lock(&shared.registry).admit(id, peer.ip(), handle, limits.max_connections, limits.max_connections_per_address);
    let admission = match admitted {
        Ok(admission) => admission,
        Err(refusal) => {
            let (counter, why) = match refusal {
                Refusal::Cap => (&stats.rejected_over_cap, format!("max_connections ({})", limits.max_connections)),
                Refusal::PerAddress => (
                    &stats.rejected_per_address,
                    format!("{} holds max_connections_per_address ({})", peer.ip(), limits.max_connections_per_address),
                ),
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if cap_warning.allows() {
                log::warn!("refusing connections with 503: {why} are open and none is idle; raise it to admit more");
            }
            refuse_busy(stream, peer);
            return;
        }
    };
    if let Some(idle) = admission.evicted {
        stats.evicted_idle.fetch_add(1, Ordering::Relaxed);
        // The idle connection's thread sees end of input and closes; its client reconnects when it needs to.
        let _ = idle.shutdown(Shutdown::Both);
    }
    stats.open_connections.fetch_add(1, Ordering::AcqRel);
    stats.total_connections.fetch_add(1, Ordering::Relaxed);
    let open_guard = OpenConnection { shared: Arc::clone(shared), id };
    let handler = Arc::clone(handler);
    let spawned =
        thread::Builder::new().name(format!("http-conn-{id}")).stack_size(limits.thread_stack_bytes).spawn(move || {
            let open_guard = open_guard;
            conn::serve(stream, peer, &open_guard.shared, handler.as_ref(), &admission.idle);
        });
    match spawned {
        Ok(worker) => workers.push(worker),
        Err(err) => {
            log::error!("cannot start a thread for the connection from {peer}: {err}; closing it")
        }
    }
}

/// Answers a connection over the cap with a canned 503 and closes it, without ever blocking: the socket is
/// non-blocking, the response fits in a fresh socket's send buffer, and only input already received is
/// discarded (closing with unread input would reset the connection and could destroy the 503).
fn refuse_busy(stream: TcpStream, peer: SocketAddr) {
    let started = Instant::now();
    let request_id = generate_request_id();
    let mut out = Vec::with_capacity(256);
    let framing = Framing { request_id: &request_id, keep_alive: false, head_only: false };
    let status = encode(&Response::json_error(503, "Server busy"), framing, &mut DateCache::new(), &mut out);
    if stream.set_nonblocking(true).is_ok() {
        let mut socket = &stream;
        if let Err(err) = socket.write_all(&out) {
            log::debug!("503 to {peer} not delivered: {err}");
        }
        let mut sink = [0u8; 4096];
        for _ in 0..16 {
            match socket.read(&mut sink) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        let _ = stream.shutdown(Shutdown::Write);
    }
    conn::access_log("-", "-", status, started, &request_id, peer);
}

/// Marks one admitted connection as open until dropped, which happens last on its thread (or at once if the
/// thread could not start).
struct OpenConnection {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        lock(&self.shared.registry).remove(self.id);
        self.shared.stats.open_connections.fetch_sub(1, Ordering::AcqRel);
        if self.shared.is_shutting_down() {
            let _guard = lock(&self.shared.drained_lock);
            self.shared.drained.notify_all();
        }
    }
}

/// Waits up to `shutdown_grace` for connections to close, then forces the rest shut. Returns how many were
/// forced.
fn drain(shared: &Shared) -> usize {
    let grace = shared.limits.shutdown_grace;
    if wait_until_closed(shared, Instant::now() + grace) {
        return 0;
    }
    let streams = lock(&shared.registry).take_streams();
    let forced = shared.stats.open_connections.load(Ordering::Acquire);
    log::warn!(
        "shutdown_grace ({} ms) ran out with {forced} connections still open; forcing them shut",
        grace.as_millis()
    );
    for stream in &streams {
        let _ = stream.shutdown(Shutdown::Both);
    }
    drop(streams);
    if !wait_until_closed(shared, Instant::now() + FORCED_EXIT_WAIT) {
        log::warn!(
            "{} connection threads are still busy in the handler after being forced shut; leaving them",
            shared.stats.open_connections.load(Ordering::Acquire)
        );
    }
    forced
}

/// Whether all connections closed before `deadline`.
fn wait_until_closed(shared: &Shared, deadline: Instant) -> bool {
    let mut guard = lock(&shared.drained_lock);
    loop {
        if shared.stats.open_connections.load(Ordering::Acquire) == 0 {
            return true;
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return false;
        }
        // The wait is bounded so a missed wake-up costs at most this slice.
        let slice = remaining.min(Duration::from_millis(50));
        guard = match shared.drained.wait_timeout(guard, slice) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
}

/// Connection threads started by the accept loop. Ended ones are joined now and then (amortised over
/// accepts) so the list stays proportional to the open connections.
#[derive(Default)]
struct Workers {
    handles: Vec<JoinHandle<()>>,
    reap_at: usize,
}

impl Workers {
    fn push(&mut self, handle: JoinHandle<()>) {
        self.handles.push(handle);
        if self.handles.len() >= self.reap_at {
            self.join_ended(false);
            self.reap_at = (self.handles.len() * 2).max(64);
        }
    }

    /// Joins the ended threads, or all of them when `all_closed` says they are past their last step.
    fn join_ended(&mut self, all_closed: bool) {
        let mut i = 0;
        while let Some(handle) = self.handles.get(i) {
            if all_closed || handle.is_finished() {
                let handle = self.handles.swap_remove(i);
                if handle.join().is_err() {
                    log::error!("an HTTP connection thread panicked; this is a bug in gm, please report it");
                }
            } else {
                i += 1;
            }
        }
    }
}

/// Lets a repeated warning through at most once per [`WARNING_INTERVAL`].
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
}

impl Throttle {
    fn allows(&mut self) -> bool {
        let now = Instant::now();
        if self.last.is_some_and(|last| now.duration_since(last) < WARNING_INTERVAL) {
            return false;
        }
        self.last = Some(now);
        true
    }
}

/// Whether `accept` failed for lack of file descriptors or kernel memory (EMFILE, ENFILE, ENOBUFS, ENOMEM):
/// conditions that pass once connections close, so the loop backs off instead of exiting.
fn is_descriptor_exhaustion(err: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    const CODES: &[i32] = &[24, 23, 105, 12];
    #[cfg(all(unix, not(target_os = "linux")))]
    const CODES: &[i32] = &[24, 23, 55, 12];
    #[cfg(windows)]
    const CODES: &[i32] = &[10024, 10055];
    #[cfg(not(any(unix, windows)))]
    const CODES: &[i32] = &[];
    err.raw_os_error().is_some_and(|code| CODES.contains(&code))
}

/// Failures that concern only the one connection being accepted.
fn is_transient_accept_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::http::request::Request;
    use std::sync::mpsc;

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

    struct TestServer {
        addr: SocketAddr,
        handle: ShutdownHandle,
        stats: Arc<ServerStats>,
        done: mpsc::Receiver<Result<ServeReport, HttpError>>,
    }

    impl TestServer {
        fn start(limits: Limits) -> TestServer {
            TestServer::start_with(limits, Arc::new(routes))
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

    fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
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
        let (reply, _) = one_request(
            server.addr,
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        );
        assert_eq!(reply.status, 501);
        assert_eq!(
            reply.body_text(),
            "{\"error\":\"Transfer-Encoding is not supported; send a Content-Length body\"}\n"
        );
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
        let server = TestServer::start(test_limits());
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
        let server = TestServer::start(limits);
        let mut client = Client::new(server.addr);
        assert_eq!(client.get("/healthz").header("connection"), Some("keep-alive"));
        assert_eq!(client.get("/healthz").header("connection"), Some("close"));
        assert!(client.closed_by_server());
    }

    #[test]
    fn pipelined_requests_are_answered_in_order() {
        let server = TestServer::start(test_limits());
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
    fn descriptor_exhaustion_is_recognised_for_back_off() {
        assert!(is_descriptor_exhaustion(&io::Error::from_raw_os_error(24)));
        assert!(is_descriptor_exhaustion(&io::Error::from_raw_os_error(23)));
        assert!(!is_descriptor_exhaustion(&io::Error::from(io::ErrorKind::ConnectionAborted)));
        assert!(is_transient_accept_error(&io::Error::from(io::ErrorKind::ConnectionAborted)));
        let mut throttle = Throttle::default();
        assert!(throttle.allows());
        assert!(!throttle.allows());
    }

    #[test]
    fn wake_address_is_loopback_for_wildcards() {
        assert_eq!(wake_addr("0.0.0.0:80".parse().unwrap()), "127.0.0.1:80".parse().unwrap());
        assert_eq!(wake_addr("[::]:80".parse().unwrap()), "[::1]:80".parse().unwrap());
        assert_eq!(wake_addr("127.0.0.2:80".parse().unwrap()), "127.0.0.2:80".parse().unwrap());
    }
}
