//! One client connection: the keep-alive loop, reading with deadlines, calling the handler, writing responses.
//!
//! Owns: the per-connection read buffer (reused across requests, so pipelined bytes carry over), the deadlines
//! (`head_timeout` from a request's first byte, `keep_alive_idle` between requests, `body_timeout`,
//! `write_timeout`), the protocol-level refusals (400, 408, 413, 414, 431, 501, 505), catching handler panics,
//! and the access log record. Every read blocks for at most one short slice so deadlines and shutdown are
//! noticed promptly. Must not accept connections, count them against the cap, or force them shut: that is
//! `server.rs`.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::error::{Phase, Rejection};
use super::handler::Handler;
use super::registry::IdleMark;
use super::request::{generate_request_id, parse_head, ParsedHead, Request};
use super::response::{encode, DateCache, Framing, Response};
use super::shared::Shared;
use super::wire::Wire;

/// Log target of the one record written per response; the application's log setup may route it apart.
pub(super) const ACCESS_LOG_TARGET: &str = "genesis_mesh.na_service.access";

/// Initial size of the read buffer; it grows up to `max_head_bytes` for large heads.
const INITIAL_BUFFER_BYTES: usize = 4096;

/// Largest piece of a body read in one call, so a declared length is not allocated before it arrives.
const BODY_CHUNK_BYTES: usize = 64 * 1024;

/// After refusing a request, how long the server keeps reading and discarding what the client still sends, so
/// closing does not reset the connection before the client has read the refusal.
const LINGER: Duration = Duration::from_secs(1);

/// Most bytes discarded while lingering.
const LINGER_BYTES: usize = 1024 * 1024;

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What the event loop (`poller.rs`) hands a connection thread along with the socket: the bytes it read that
/// no response answered yet, the responses it could not finish writing, and how many requests it served.
#[derive(Debug, Default)]
pub(super) struct Handover {
    /// Received bytes not yet answered (a partial head, or requests the loop does not answer itself).
    pub(super) received: Vec<u8>,
    /// Encoded responses the socket did not take without blocking; written first.
    pub(super) unsent: Vec<u8>,
    /// Requests already served on this connection (`max_requests_per_connection` counts them).
    pub(super) served: usize,
    /// The last unsent response said `Connection: close`: close once it is written.
    pub(super) close_after_unsent: bool,
}

/// How [`serve`] ended.
pub(super) enum Ended {
    /// The connection is closed (or its socket dropped with this value).
    Closed,
    /// A plain connection served with `may_park` went a read slice without a byte of a next request: the
    /// caller gives it back to the event loop, which closes it at `deadline` if nothing arrives.
    Idle { stream: TcpStream, served: usize, deadline: Instant },
}

/// Serves requests on `stream` until the client leaves, a limit or deadline ends the connection, or the server
/// shuts down; with `may_park`, a plain connection that waits longer than one read slice for its next
/// request is returned instead ([`Ended::Idle`]), so an idle connection holds no thread. A connection the
/// event loop started (`poller.rs`) comes with a [`Handover`]: its unsent responses are written first, then
/// its received bytes are served. The socket must be in blocking mode.
pub(super) fn serve(
    stream: Wire,
    peer: SocketAddr,
    shared: &Shared,
    handler: &dyn Handler,
    idle: &IdleMark,
    handover: Handover,
    may_park: bool,
) -> Ended {
    let read_slice = shared.limits.read_slice();
    let tcp = stream.tcp();
    let configured = tcp
        .set_nodelay(true)
        .and_then(|()| tcp.set_read_timeout(Some(read_slice)))
        .and_then(|()| tcp.set_write_timeout(Some(shared.limits.write_slice())));
    if let Err(err) = configured {
        log::debug!("cannot configure connection from {peer}: {err}");
        return Ended::Closed;
    }
    let Handover { mut received, unsent, served, close_after_unsent } = handover;
    let filled = received.len();
    received.resize(filled.max(INITIAL_BUFFER_BYTES), 0);
    let mut conn = Connection {
        stream,
        peer,
        shared,
        handler,
        idle,
        buf: received,
        filled,
        consumed: 0,
        out: unsent,
        date: DateCache::new(),
        read_slice,
        read_timeout: read_slice,
        served,
        started: None,
        park_after: None,
    };
    if may_park && !conn.stream.is_tls() {
        conn.park_after = Some(read_slice);
    }
    if !conn.out.is_empty() {
        if let Err(err) = conn.write_out() {
            log::debug!("response to {peer} not delivered: {err}");
            return Ended::Closed;
        }
        if close_after_unsent {
            return Ended::Closed;
        }
    }
    loop {
        match conn.serve_one() {
            Next::KeepAlive => {}
            Next::Close => return Ended::Closed,
            Next::Park { deadline } => {
                let served = conn.served;
                return match conn.stream {
                    Wire::Plain(stream) => Ended::Idle { stream, served, deadline },
                    Wire::Tls(_) => Ended::Closed,
                };
            }
        }
    }
}

/// Whether the connection carries on after a request.
enum Next {
    KeepAlive,
    Close,
    /// Idle with nothing buffered: give the connection back to the event loop (until `deadline`).
    Park {
        deadline: Instant,
    },
}

/// Why reading a request stopped early.
enum Stop {
    /// Close without answering: the client left, went idle past its limit, or the socket failed.
    Quiet,
    /// Nothing of a next request arrived for a read slice: hand the idle connection back (`park_after`).
    Park { deadline: Instant },
    /// Answer with a refusal, then close.
    Reject(Rejection),
}

/// What one bounded read produced.
enum ReadEvent {
    Data(usize),
    Eof,
    /// The slice passed with no data; the caller checks its deadline and shutdown.
    Idle,
}

struct Connection<'a> {
    stream: Wire,
    peer: SocketAddr,
    shared: &'a Shared,
    handler: &'a dyn Handler,
    /// Marked while waiting for a next request, so the accept thread may close this connection for a newcomer.
    idle: &'a IdleMark,
    /// Read buffer; bytes `consumed..filled` belong to requests not yet served.
    buf: Vec<u8>,
    filled: usize,
    consumed: usize,
    /// Response buffer, reused so the hot path allocates little.
    out: Vec<u8>,
    date: DateCache,
    read_slice: Duration,
    /// The read timeout currently set on the socket, to avoid a system call per read.
    read_timeout: Duration,
    served: usize,
    /// When the first byte of the current request arrived.
    started: Option<Instant>,
    /// Set for a plain connection the event loop may watch: how long to wait with nothing buffered before
    /// giving the connection back to it.
    park_after: Option<Duration>,
}

impl Connection<'_> {
    fn serve_one(&mut self) -> Next {
        self.compact();
        let head = match self.read_head() {
            Ok(head) => head,
            Err(stop) => return self.stop(stop, None),
        };
        let ParsedHead { mut request, head_len, content_length, expects_continue, client_keep_alive } = head;
        if self.stream.is_tls() {
            request.scheme = "https";
            request.client_certificate = self.stream.client_verified();
        }
        match self.read_body(head_len, content_length, expects_continue) {
            Ok(body) => request.body = body,
            Err(stop) => return self.stop(stop, Some(&request)),
        }
        self.served += 1;
        let response = call_handler(self.handler, &request);
        let keep_alive = client_keep_alive
            && self.served < self.shared.limits.max_requests_per_connection
            && !response.asks_to_close()
            && !self.shared.is_shutting_down();
        let framing = Framing { request_id: &request.request_id, keep_alive, head_only: request.method == "HEAD" };
        let status = encode(&response, framing, &mut self.date, &mut self.out);
        let written = self.write_out();
        self.finish(&request.method, &request.path, status, &request.request_id);
        match written {
            Ok(()) if keep_alive => Next::KeepAlive,
            Ok(()) => Next::Close,
            Err(err) => {
                log::debug!("response to {} not delivered: {err}", self.peer);
                Next::Close
            }
        }
    }

    /// Drops the bytes of served requests, moving any pipelined remainder to the front of the buffer.
    fn compact(&mut self) {
        if self.consumed == 0 {
            return;
        }
        if self.consumed < self.filled {
            self.buf.copy_within(self.consumed..self.filled, 0);
            self.filled -= self.consumed;
        } else {
            self.filled = 0;
        }
        self.consumed = 0;
    }

    fn read_head(&mut self) -> Result<ParsedHead, Stop> {
        let shared = self.shared;
        let limits = &shared.limits;
        let now = Instant::now();
        let idle_limit = if self.served == 0 { limits.head_timeout } else { limits.keep_alive_idle };
        let idle_deadline = now + idle_limit;
        self.started = None;
        let mut head_deadline = None;
        if self.filled > 0 {
            self.started = Some(now);
            head_deadline = Some(now + limits.head_timeout);
        } else if self.served > 0 {
            self.idle.set_idle();
        }
        loop {
            if self.filled > 0 {
                let bytes = self.buf.get(..self.filled).unwrap_or_default();
                if let Some(head) = parse_head(bytes, limits, self.peer).map_err(Stop::Reject)? {
                    return Ok(head);
                }
                if self.filled > limits.max_head_bytes {
                    return Err(Stop::Reject(Rejection::HeadTooLarge { limit: limits.max_head_bytes }));
                }
            } else if self.shared.is_shutting_down() {
                return Err(Stop::Quiet);
            }
            let deadline = head_deadline.unwrap_or(idle_deadline);
            if Instant::now() >= deadline {
                return Err(match head_deadline {
                    Some(_) => Stop::Reject(Rejection::Timeout { phase: Phase::Head, limit: limits.head_timeout }),
                    None => Stop::Quiet,
                });
            }
            self.make_room();
            let spare = self.buf.get_mut(self.filled..).unwrap_or_default();
            match read_by(&mut self.stream, spare, deadline, self.read_slice, &mut self.read_timeout) {
                Ok(ReadEvent::Data(n)) => {
                    if self.filled == 0 {
                        self.idle.set_busy();
                        let first_byte = Instant::now();
                        self.started = Some(first_byte);
                        head_deadline = Some(first_byte + limits.head_timeout);
                    }
                    self.filled += n;
                }
                Ok(ReadEvent::Idle) => {
                    let waited = now.elapsed();
                    if self.filled == 0 && self.park_after.is_some_and(|after| waited >= after) {
                        return Err(Stop::Park { deadline: idle_deadline });
                    }
                }
                Ok(ReadEvent::Eof) => return Err(Stop::Quiet),
                Err(err) => {
                    log::debug!("reading from {} failed: {err}", self.peer);
                    return Err(Stop::Quiet);
                }
            }
        }
    }

    /// Grows a full read buffer, up to one byte past `max_head_bytes` (enough to see the head is too large).
    fn make_room(&mut self) {
        let len = self.buf.len();
        if self.filled < len {
            return;
        }
        let grown = len.saturating_mul(2).min(self.shared.limits.max_head_bytes.saturating_add(1));
        self.buf.resize(grown.max(len + 1), 0);
    }

    fn read_body(&mut self, head_len: usize, length: usize, expects_continue: bool) -> Result<Vec<u8>, Stop> {
        let buffered = self.buf.get(head_len..self.filled).unwrap_or_default();
        let from_buffer = buffered.get(..length).unwrap_or(buffered);
        let mut body = Vec::with_capacity(length.min(BODY_CHUNK_BYTES).max(from_buffer.len()));
        body.extend_from_slice(from_buffer);
        self.consumed = head_len + from_buffer.len();
        if body.len() == length {
            return Ok(body);
        }
        if expects_continue {
            let deadline = Instant::now() + self.shared.limits.write_timeout;
            if let Err(err) = self.stream.write_all_by(CONTINUE, deadline) {
                log::debug!("100 Continue to {} not delivered: {err}", self.peer);
                return Err(Stop::Quiet);
            }
        }
        let deadline = Instant::now() + self.shared.limits.body_timeout;
        while body.len() < length {
            if Instant::now() >= deadline {
                let limit = self.shared.limits.body_timeout;
                return Err(Stop::Reject(Rejection::Timeout { phase: Phase::Body, limit }));
            }
            let got = body.len();
            body.resize(length.min(got + BODY_CHUNK_BYTES), 0);
            let spare = body.get_mut(got..).unwrap_or_default();
            let event = read_by(&mut self.stream, spare, deadline, self.read_slice, &mut self.read_timeout);
            match event {
                Ok(ReadEvent::Data(n)) => body.truncate(got + n),
                Ok(ReadEvent::Idle) => body.truncate(got),
                Ok(ReadEvent::Eof) => return Err(Stop::Quiet),
                Err(err) => {
                    log::debug!("reading a body from {} failed: {err}", self.peer);
                    return Err(Stop::Quiet);
                }
            }
        }
        Ok(body)
    }

    /// Ends the connection early: quietly, or with the refusal's status and fixed JSON body.
    fn stop(&mut self, stop: Stop, request: Option<&Request>) -> Next {
        let rejection = match stop {
            Stop::Reject(rejection) => rejection,
            Stop::Park { deadline } => return Next::Park { deadline },
            Stop::Quiet => return Next::Close,
        };
        match rejection {
            Rejection::Malformed { .. }
            | Rejection::HeaderNotUtf8 { .. }
            | Rejection::BadContentLength
            | Rejection::DuplicateHost
            | Rejection::UnsupportedVersion
            | Rejection::TransferEncoding => {
                log::debug!("refusing request from {}: {rejection}", self.peer);
            }
            _ => log::warn!("refusing request from {}: {rejection}", self.peer),
        }
        let generated;
        let request_id = match request {
            Some(request) => request.request_id.as_str(),
            None => {
                generated = generate_request_id();
                generated.as_str()
            }
        };
        let response = Response::json_error(rejection.status(), rejection.public_message());
        let framing = Framing { request_id, keep_alive: false, head_only: false };
        let status = encode(&response, framing, &mut self.date, &mut self.out);
        let written = self.write_out();
        let method = request.map_or("-", |r| r.method.as_str());
        let path = request.map_or("-", |r| r.path.as_str());
        self.finish(method, path, status, request_id);
        if written.is_ok() {
            self.linger();
        }
        Next::Close
    }

    fn write_out(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + self.shared.limits.write_timeout;
        self.stream.write_all_by(&self.out, deadline)
    }

    /// Counts the response and writes its access log record.
    fn finish(&self, method: &str, path: &str, status: u16, request_id: &str) {
        self.shared.stats.requests_total.fetch_add(1, Ordering::Relaxed);
        let started = self.started.unwrap_or_else(Instant::now);
        access_log(method, path, status, started, request_id, self.peer);
    }

    /// Half-closes, then reads and discards for a moment: closing a socket with unread input makes the kernel
    /// send a reset, which can destroy the refusal before the client reads it.
    fn linger(&mut self) {
        if self.stream.shutdown_write().is_err() || self.shared.is_shutting_down() {
            return;
        }
        let deadline = Instant::now() + LINGER;
        let mut discarded = 0;
        while discarded < LINGER_BYTES && Instant::now() < deadline {
            let sink = self.buf.as_mut_slice();
            match read_by(&mut self.stream, sink, deadline, self.read_slice, &mut self.read_timeout) {
                Ok(ReadEvent::Data(n)) => discarded += n,
                Ok(ReadEvent::Idle) => {}
                Ok(ReadEvent::Eof) | Err(_) => return,
            }
        }
    }
}

/// Calls the handler, turning a panic into a 500 so this connection and the server keep serving.
fn call_handler(handler: &dyn Handler, request: &Request) -> Response {
    match panic::catch_unwind(AssertUnwindSafe(|| handler.handle(request))) {
        Ok(response) => response,
        Err(payload) => {
            let detail = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("non-string panic payload");
            log::error!(
                request_id = request.request_id.as_str();
                "handler panicked on {} {} (request id {}): {detail}",
                request.method,
                request.path,
                request.request_id
            );
            Response::json_error(500, "Internal server error")
        }
    }
}

/// Writes the one access record for a response. The query string, headers and body are left out: they may
/// carry secrets.
pub(super) fn access_log(method: &str, path: &str, status: u16, started: Instant, request_id: &str, peer: SocketAddr) {
    log::info!(
        target: ACCESS_LOG_TARGET,
        method = method,
        path = path,
        status = status,
        duration_ms = started.elapsed().as_micros() as f64 / 1000.0,
        request_id = request_id,
        remote_addr:% = peer.ip();
        "API request"
    );
}

/// One read that blocks no longer than `slice` and never past `deadline`.
fn read_by(
    stream: &mut Wire,
    dst: &mut [u8],
    deadline: Instant,
    slice: Duration,
    current_timeout: &mut Duration,
) -> io::Result<ReadEvent> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let wanted = remaining.min(slice).max(Duration::from_millis(1));
    if wanted != *current_timeout {
        stream.tcp().set_read_timeout(Some(wanted))?;
        *current_timeout = wanted;
    }
    loop {
        match stream.read(dst) {
            Ok(0) => return Ok(ReadEvent::Eof),
            Ok(n) => return Ok(ReadEvent::Data(n)),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if is_timeout(&err) => return Ok(ReadEvent::Idle),
            Err(err) => return Err(err),
        }
    }
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};
    use std::net::{TcpListener, TcpStream};

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    #[test]
    fn read_by_returns_idle_when_nothing_arrives() {
        let (_client, server) = pair();
        let mut current = Duration::from_millis(20);
        server.set_read_timeout(Some(current)).unwrap();
        let mut server = Wire::Plain(server);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 8];
        let event = read_by(&mut server, &mut buf, deadline, current, &mut current).unwrap();
        assert!(matches!(event, ReadEvent::Idle));
    }

    #[test]
    fn read_by_shortens_the_timeout_near_the_deadline() {
        let (_client, server) = pair();
        let slice = Duration::from_millis(250);
        let mut current = slice;
        server.set_read_timeout(Some(slice)).unwrap();
        let mut server = Wire::Plain(server);
        let started = Instant::now();
        let deadline = started + Duration::from_millis(30);
        let mut buf = [0u8; 8];
        let event = read_by(&mut server, &mut buf, deadline, slice, &mut current).unwrap();
        assert!(matches!(event, ReadEvent::Idle));
        assert!(current <= Duration::from_millis(30));
        assert!(started.elapsed() < Duration::from_millis(200));
    }

    #[test]
    fn read_by_reports_data_and_eof() {
        let (mut client, server) = pair();
        let mut current = Duration::from_millis(100);
        server.set_read_timeout(Some(current)).unwrap();
        let mut server = Wire::Plain(server);
        client.write_all(b"hi").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 8];
        let event = read_by(&mut server, &mut buf, deadline, current, &mut current).unwrap();
        assert!(matches!(event, ReadEvent::Data(2)));
        drop(client);
        let event = read_by(&mut server, &mut buf, deadline, current, &mut current).unwrap();
        assert!(matches!(event, ReadEvent::Eof));
    }

    #[test]
    fn write_all_by_delivers_everything() {
        let (mut client, server) = pair();
        let data = vec![7u8; 300_000];
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            client.read_to_end(&mut got).unwrap();
            got.len()
        });
        server.set_write_timeout(Some(Duration::from_millis(100))).unwrap();
        Wire::Plain(server).write_all_by(&data, Instant::now() + Duration::from_secs(5)).unwrap();
        assert_eq!(reader.join().unwrap(), 300_000);
    }

    #[test]
    fn write_all_by_gives_up_at_the_deadline_when_the_peer_does_not_read() {
        let (_client, server) = pair();
        server.set_write_timeout(Some(Duration::from_millis(20))).unwrap();
        let data = vec![0u8; 64 * 1024 * 1024];
        let started = Instant::now();
        let err = Wire::Plain(server).write_all_by(&data, started + Duration::from_millis(200)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
