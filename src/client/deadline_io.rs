//! One deadline over every byte of an outbound connection, the TLS handshake included.
//!
//! Owns: [`DeadlineIo`], a stream wrapper that, before each read or write, sets the socket's timeout to the
//! time left before a fixed instant and fails with `TimedOut` once it has passed; [`DeadlineConnector`], the
//! ureq connector that opens the TCP connection and runs the rustls handshake over a `DeadlineIo`;
//! [`DeadlineTransport`], the stream ureq then sends the request and reads the answer through; and
//! [`resolve_by`] with [`DeadlineResolver`], a name lookup that gives up at the deadline (`ToSocketAddrs`
//! waits as long as the system resolver does, up to 30 s and more with several unreachable name servers).
//! Must not decide what the deadline is: callers pass it.
//!
//! Why below rustls: a TLS handshake (`rustls::ClientConnection::complete_io`) reads a record in several
//! socket reads inside one call, so a timeout set once per call lets a server that sends one byte every
//! half second hold the handshake, and `gm probe` or any client command, for ever (finding F6, seen with
//! ureq 2). The deadline therefore sits on each socket read and write. gm opens the connection itself
//! rather than through ureq's timeouts so that one instant, fixed before the request, bounds the lookup,
//! the connect, the handshake, the request and the body, and so that a failure says which of them it was
//! ([`PhaseFailure`]).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport};

use super::error::Phase;

/// A stream that can hand out its TCP socket, so its timeouts can be set.
pub(crate) trait HasSocket: Read + Write {
    /// The TCP socket underneath, if there is one.
    fn tcp(&self) -> Option<&TcpStream>;
}

impl HasSocket for TcpStream {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

/// A stream whose reads and writes all end by one instant.
pub(crate) struct DeadlineIo<S> {
    inner: S,
    deadline: Instant,
}

impl<S: HasSocket> DeadlineIo<S> {
    /// Wraps `inner`; every read and write after `deadline` fails with `TimedOut`.
    pub fn new(inner: S, deadline: Instant) -> DeadlineIo<S> {
        DeadlineIo { inner, deadline }
    }

    /// Time left, or `TimedOut` once the deadline has passed.
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(deadline_passed());
        }
        Ok(left)
    }

    /// A socket timeout that ran out at the deadline reads as `WouldBlock` on Unix; call it what it is.
    fn name_timeout(&self, err: io::Error) -> io::Error {
        if is_timeout(&err) && Instant::now() >= self.deadline {
            deadline_passed()
        } else {
            err
        }
    }
}

fn deadline_passed() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the request deadline passed")
}

/// True for what a socket timeout that ran out looks like on Unix.
fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

impl<S: HasSocket> DeadlineIo<S> {
    /// Runs one read or write (`op`) with the socket's timeout (`arm`) set to what is left. The
    /// kernel counts a socket timeout in clock ticks and can end it up to a tick before the
    /// deadline (CI saw `WouldBlock` there), so such a timeout is waited out, not reported.
    fn until_deadline(
        &mut self,
        arm: fn(&TcpStream, Option<Duration>) -> io::Result<()>,
        mut op: impl FnMut(&mut S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        loop {
            let left = self.left()?;
            if let Some(socket) = self.inner.tcp() {
                arm(socket, Some(left))?;
            }
            match op(&mut self.inner) {
                Err(e) if is_timeout(&e) && Instant::now() < self.deadline => continue,
                result => return result.map_err(|e| self.name_timeout(e)),
            }
        }
    }
}

impl<S: HasSocket> Read for DeadlineIo<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.until_deadline(TcpStream::set_read_timeout, |s| s.read(buf))
    }
}

impl<S: HasSocket> Write for DeadlineIo<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.until_deadline(TcpStream::set_write_timeout, |s| s.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().map_err(|e| self.name_timeout(e))
    }
}

impl<S> fmt::Debug for DeadlineIo<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadlineIo").field("deadline", &self.deadline).finish_non_exhaustive()
    }
}

/// A failure while opening a connection, with the phase it happened in; ureq hands it back unchanged
/// inside `ureq::Error::Other`.
#[derive(Debug)]
pub(crate) struct PhaseFailure {
    /// Resolve, Connect or Handshake.
    pub(crate) phase: Phase,
    /// What the resolver, the socket or rustls said.
    pub(crate) cause: io::Error,
}

impl fmt::Display for PhaseFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} failed: {}", self.phase, self.cause)
    }
}

impl std::error::Error for PhaseFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

fn failed(phase: Phase, cause: io::Error) -> ureq::Error {
    ureq::Error::Other(Box::new(PhaseFailure { phase, cause }))
}

/// Opens the connection of one request: TCP within `connect_timeout` and the deadline, then, for
/// `https`, the rustls handshake with every socket read and write under the deadline.
#[derive(Debug)]
pub(crate) struct DeadlineConnector {
    /// The TLS configuration (see [`tls_config`]).
    pub(crate) tls: Arc<rustls::ClientConfig>,
    /// When the request must be over.
    pub(crate) deadline: Instant,
    /// The most one TCP connect may take.
    pub(crate) connect_timeout: Duration,
}

impl DeadlineConnector {
    /// Connects to the first address that answers, as ureq does, each attempt bounded by
    /// `connect_timeout` and the time left.
    fn open(&self, addrs: &[SocketAddr]) -> Result<TcpStream, ureq::Error> {
        let mut last = io::Error::other("no address to connect to");
        for addr in addrs {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(failed(Phase::Connect, deadline_passed()));
            }
            match TcpStream::connect_timeout(addr, self.connect_timeout.min(left)) {
                Ok(stream) => return Ok(stream),
                Err(e) => last = e,
            }
        }
        Err(failed(Phase::Connect, last))
    }

    fn handshake(
        &self,
        uri: &Uri,
        mut io: DeadlineIo<TcpStream>,
    ) -> Result<StreamOwned<ClientConnection, DeadlineIo<TcpStream>>, ureq::Error> {
        let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| failed(Phase::Handshake, io::Error::other(format!("not a TLS server name: {e}"))))?;
        let mut conn = ClientConnection::new(Arc::clone(&self.tls), name)
            .map_err(|e| failed(Phase::Handshake, io::Error::other(e)))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut io).map_err(|e| failed(Phase::Handshake, e))?;
        }
        Ok(StreamOwned::new(conn, io))
    }
}

impl Connector<()> for DeadlineConnector {
    type Out = DeadlineTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        _chained: Option<()>,
    ) -> Result<Option<DeadlineTransport>, ureq::Error> {
        let tcp = self.open(&details.addrs)?;
        // As ureq's own connector does: requests are small and sent whole.
        tcp.set_nodelay(details.config.no_delay()).map_err(|e| failed(Phase::Connect, e))?;
        let io = DeadlineIo::new(tcp, self.deadline);
        let stream = if details.needs_tls() {
            Stream::Tls(Box::new(self.handshake(details.uri, io)?))
        } else {
            Stream::Plain(io)
        };
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(DeadlineTransport { buffers, stream, deadline: self.deadline }))
    }
}

/// The agent of one request (or one short exchange): its connections, TLS handshake included,
/// end by `deadline`. No redirects (a redirect would turn a signed POST into an unsigned GET
/// elsewhere: shown instead), a non-2xx answer is an answer and not a transport failure, no proxy
/// from the environment and no pooled connection (a pooled TLS stream would stay bound to an
/// earlier deadline).
pub(crate) fn agent_until(
    tls: &Arc<rustls::ClientConfig>,
    deadline: Instant,
    connect_timeout: Duration,
) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(None)
        .max_idle_connections(0)
        .user_agent(concat!("gm/", env!("CARGO_PKG_VERSION")))
        .build();
    let connector = DeadlineConnector { tls: Arc::clone(tls), deadline, connect_timeout };
    ureq::Agent::with_parts(config, connector, DeadlineResolver { deadline })
}

/// A plain or TLS connection whose every socket read and write ends by the deadline.
enum Stream {
    Plain(DeadlineIo<TcpStream>),
    Tls(Box<StreamOwned<ClientConnection, DeadlineIo<TcpStream>>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// The connection ureq sends a request and reads its answer through. ureq's per-call timeouts are
/// ignored: the deadline under every read and write is the bound.
pub(crate) struct DeadlineTransport {
    buffers: LazyBuffers,
    stream: Stream,
    deadline: Instant,
}

impl Transport for DeadlineTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, _timeout: NextTimeout) -> Result<(), ureq::Error> {
        let output = self
            .buffers
            .output()
            .get(..amount)
            .ok_or_else(|| io::Error::other("ureq asked to send more than its output buffer holds"))?;
        self.stream.write_all(output)?;
        self.stream.flush()?;
        Ok(())
    }

    fn await_input(&mut self, _timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        // Agents are not pooled (one per request); past the deadline the connection is of no use.
        Instant::now() < self.deadline
    }

    fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }
}

impl fmt::Debug for DeadlineTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadlineTransport")
            .field("tls", &self.is_tls())
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// Resolves `host:port` (`netloc`), giving up with `TimedOut` at `deadline`.
///
/// The lookup runs on its own thread: getaddrinfo cannot be interrupted, so on timeout that thread is left
/// to finish (bounded by the system resolver's own timeouts) and its answer is dropped. An IP literal needs
/// no lookup and no thread.
///
/// # Errors
/// `TimedOut` at the deadline; otherwise what the resolver said.
pub(crate) fn resolve_by(netloc: &str, deadline: Instant) -> io::Result<Vec<SocketAddr>> {
    if let Ok(addr) = netloc.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(deadline_passed());
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let owned = netloc.to_string();
    std::thread::Builder::new().name("client-resolve".to_string()).spawn(move || {
        let _ = tx.send(owned.to_socket_addrs().map(Iterator::collect));
    })?;
    match rx.recv_timeout(left) {
        Ok(answer) => answer,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "the name lookup did not finish before the deadline")),
    }
}

/// ureq's resolver replaced by [`resolve_by`] with the request's deadline.
#[derive(Debug)]
pub(crate) struct DeadlineResolver {
    /// When the request must be over.
    pub(crate) deadline: Instant,
}

impl Resolver for DeadlineResolver {
    fn resolve(&self, uri: &Uri, _config: &Config, _timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let netloc = match (uri.scheme(), uri.authority()) {
            (Some(scheme), Some(authority)) => DefaultResolver::host_and_port(scheme, authority),
            _ => None,
        }
        .ok_or_else(|| ureq::Error::BadUri(uri.to_string()))?;
        let found = resolve_by(&netloc, self.deadline).map_err(|e| failed(Phase::Resolve, e))?;
        let mut addrs = self.empty();
        // ureq holds up to 16 addresses, as its own resolver keeps; the rest are never tried.
        for addr in found {
            if addrs.try_push(addr).is_err() {
                break;
            }
        }
        if addrs.is_empty() {
            return Err(failed(Phase::Resolve, io::Error::other("no ip address for the host")));
        }
        Ok(addrs)
    }
}

/// The TLS setup of every request: ring, TLS 1.2 and 1.3, the CA roots of `trust` (the host's, or
/// only a private bundle: `client/roots.rs`), no client certificate.
pub(crate) fn tls_config(trust: &super::roots::Trust) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])?
        .with_root_certificates(trust.roots())
        .with_no_client_auth();
    Ok(Arc::new(config))
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn reads_fail_at_the_deadline_even_when_bytes_keep_coming() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let dripper = std::thread::spawn(move || {
            for _ in 0..40 {
                if server.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let started = Instant::now();
        let mut io = DeadlineIo::new(client, started + Duration::from_millis(300));
        let mut got = 0;
        let err = loop {
            let mut byte = [0u8; 1];
            match io.read(&mut byte) {
                Ok(n) => got += n,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(got >= 1, "bytes before the deadline are delivered");
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        drop(io);
        dripper.join().unwrap();
    }

    #[test]
    fn lookups_end_at_the_deadline() {
        let later = Instant::now() + Duration::from_secs(5);
        assert_eq!(resolve_by("127.0.0.1:80", later).unwrap(), vec![SocketAddr::from(([127, 0, 0, 1], 80))]);
        assert!(resolve_by("localhost:80", later).unwrap().iter().all(|a| a.ip().is_loopback()));
        let passed = Instant::now();
        assert_eq!(resolve_by("localhost:80", passed).unwrap_err().kind(), io::ErrorKind::TimedOut);
    }

    /// A stream whose first reads and writes end like a socket timeout that ran out a clock tick
    /// early (`WouldBlock` before the deadline), then work.
    struct EarlyTimeouts {
        early: usize,
    }

    impl EarlyTimeouts {
        fn step(&mut self) -> io::Result<usize> {
            if self.early > 0 {
                self.early -= 1;
                return Err(io::Error::from(io::ErrorKind::WouldBlock));
            }
            Ok(1)
        }
    }

    impl Read for EarlyTimeouts {
        fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
            self.step()
        }
    }

    impl Write for EarlyTimeouts {
        fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
            self.step()
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl HasSocket for EarlyTimeouts {
        fn tcp(&self) -> Option<&TcpStream> {
            None
        }
    }

    #[test]
    fn a_socket_timeout_that_ends_before_the_deadline_is_waited_out_not_reported() {
        let mut io = DeadlineIo::new(EarlyTimeouts { early: 2 }, Instant::now() + Duration::from_secs(30));
        assert_eq!(io.read(&mut [0u8; 8]).unwrap(), 1, "two early timeouts, then the byte");
        io.inner.early = 3;
        assert_eq!(io.write(b"x").unwrap(), 1);
        // Past the deadline it is TimedOut, never WouldBlock.
        let mut late = DeadlineIo::new(EarlyTimeouts { early: 1 }, Instant::now());
        assert_eq!(late.read(&mut [0u8; 8]).unwrap_err().kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn a_silent_peer_times_out_at_the_deadline_not_later() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let _server = listener.accept().unwrap();
        let started = Instant::now();
        let mut io = DeadlineIo::new(client, started + Duration::from_millis(200));
        let err = io.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(io.write(b"x").unwrap_err().kind(), io::ErrorKind::TimedOut);
    }
}
