//! The listener, the accept thread, the connection cap and graceful shutdown.
//!
//! Owns: [`Server`], [`ShutdownHandle`] and [`ServeReport`] (the [`Handler`] it calls is `handler.rs`, the
//! [`ServerStats`] `shared.rs`); admitting or refusing each connection, giving it to the event loop or a
//! thread, and on shutdown draining, then forcing shut, whatever is still open. Must not parse HTTP or apply
//! per-request deadlines: that is `conn.rs` (and `poller.rs` for connections between requests). Its
//! behaviour tests are `tests.rs`.
//!
//! Concurrency model, bounded by `max_connections`: a plain-HTTP connection waits for its requests in the
//! event loop (`poller.rs`: epoll through rustix's safe wrapper, one lane per two cores), which answers
//! what the handler can answer at once from memory and hands anything else to a thread of the connection's
//! own (`worker.rs`, `conn.rs`); that thread gives the connection back once it is idle for a read slice.
//! An HTTPS connection keeps one thread for its life. On a thread, reads block with short timeouts and
//! deadlines, so a dribbling client only costs its own parked thread (a few KiB of touched stack out of a
//! small `thread_stack_bytes` reservation) and never delays other clients; an async runtime is not allowed.
//! The accept thread never reads from or waits on a client: at `max_connections`, or at an address's
//! `max_connections_per_address`, it closes the longest-idle keep-alive connection to admit the newcomer
//! (`registry.rs`), and only with none idle writes a canned 503 without blocking; shutdown wakes a blocking
//! `accept` by connecting to the listener once.

use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::conn::{self, Handover};
use super::error::HttpError;
use super::handler::Handler;
use super::limits::Limits;
use super::poller::Lanes;
use super::registry::Refusal;
use super::request::generate_request_id;
use super::response::{encode, DateCache, Framing, Response};
use super::shared::{lock, ServerStats, Shared};
use super::tls::TlsState;
use super::worker::{spawn_connection, OpenConnection, Parking, Workers};

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
        Server::bind_with_tls(addr, limits, None)
    }

    /// [`Server::bind`], serving HTTPS with `tls` when given (every connection; the handshake runs under the
    /// head deadline and the connection cap like a plain request head).
    ///
    /// # Errors
    /// As [`Server::bind`].
    pub fn bind_with_tls(addr: SocketAddr, limits: Limits, tls: Option<Arc<TlsState>>) -> Result<Server, HttpError> {
        limits.validate()?;
        let listener = TcpListener::bind(addr).map_err(|source| HttpError::Bind { addr, source })?;
        let local_addr =
            listener.local_addr().map_err(|source| HttpError::Listener { step: "read its local address", source })?;
        let shared = Shared::new(limits, tls);
        Ok(Server { listener, local_addr, shared })
    }

    /// The address actually bound (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that stops [`run`](Server::run) from any thread.
    pub(crate) fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle { shared: Arc::clone(&self.shared), wake_addr: wake_addr(self.local_addr) }
    }

    /// The live counters.
    pub(crate) fn stats(&self) -> Arc<ServerStats> {
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
        // Plain HTTP: connections wait for requests in the event loop (poller.rs); HTTPS keeps a thread each.
        let (lanes, lane_threads) = match shared.tls {
            None => {
                let (lanes, threads) = Lanes::start(&shared, &handler).inspect_err(|_| {
                    shared.shutdown.store(true, Ordering::Release);
                })?;
                (Some(lanes), threads)
            }
            Some(_) => (None, Vec::new()),
        };
        let accept_shared = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("http-accept".to_owned())
            .spawn(move || accept_loop(&listener, &accept_shared, &handler, lanes.as_ref()))
            .map_err(|source| {
                shared.shutdown.store(true, Ordering::Release);
                HttpError::Spawn { thread: "http-accept", source }
            })?;
        log::debug!("HTTP server listening on {local_addr}");
        let accepted = accept.join();
        shared.shutdown.store(true, Ordering::Release);
        // The lanes close the connections they watch (none has a request in progress) within one sweep.
        let mut lane_workers = Vec::with_capacity(lane_threads.len());
        for lane in lane_threads {
            match lane.join() {
                Ok(workers) => lane_workers.push(workers),
                Err(_) => log::error!("an HTTP event loop thread panicked; this is a bug in gm, please report it"),
            }
        }
        let forced_closed = drain(&shared);
        let Ok(mut workers) = accepted else {
            return Err(HttpError::AcceptLoopPanicked);
        };
        let all_closed = shared.stats.open_connections.load(Ordering::Acquire) == 0;
        workers.join_ended(all_closed);
        for mut workers in lane_workers {
            workers.join_ended(all_closed);
        }
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
    pub(crate) fn shutdown(&self) {
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
    #[cfg(test)]
    pub(crate) fn is_shutdown(&self) -> bool {
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

/// Accepts until shutdown; returns the connection threads it started that may still need joining.
fn accept_loop(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    handler: &Arc<dyn Handler>,
    lanes: Option<&Arc<Lanes>>,
) -> Workers {
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
                admit(stream, peer, shared, handler, lanes, &mut workers, &mut cap_warning);
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

/// Gives the connection to an event-loop lane (plain HTTP) or starts a thread for it, making room by closing
/// an idle keep-alive connection when a limit is reached, or refuses it with 503 when there is no idle one
/// to close.
fn admit(
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    handler: &Arc<dyn Handler>,
    lanes: Option<&Arc<Lanes>>,
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
    let open_guard = OpenConnection::new(Arc::clone(shared), id);
    let (stream, open_guard, idle) = match lanes {
        Some(lanes) => match lanes.watch(id, stream, peer, open_guard, admission.idle, limits.head_timeout) {
            Ok(()) => return,
            Err(back) => back,
        },
        None => (stream, open_guard, admission.idle),
    };
    let parking = lanes.map(|lanes| Arc::clone(lanes) as Arc<dyn Parking>);
    if let Some(worker) = spawn_connection(id, stream, peer, open_guard, idle, Handover::default(), handler, parking) {
        workers.push(worker);
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
