//! One deadline over every byte of an outbound connection, the TLS handshake included.
//!
//! Owns: [`DeadlineIo`], a stream wrapper that, before each read or write, sets the socket's timeout to the
//! time left before a fixed instant and fails with `TimedOut` once it has passed; [`DeadlineTls`], the
//! ureq TLS connector that puts it under rustls; and [`resolve_by`], a name lookup that gives up at the
//! deadline (ureq 2 and `ToSocketAddrs` wait as long as the system resolver does, up to 30 s and more with
//! several unreachable name servers). Must not decide what the deadline is: callers pass it.
//!
//! Why a wrapper: ureq 2 bounds the body of an answer with its request deadline, but runs the TLS handshake
//! (`rustls::ClientConnection::complete_io`) on a socket whose read timeout was set once, to the whole
//! budget. A server that sends one byte every half second satisfies every single read, so the handshake
//! never ends, and neither does `gm probe` or any client command (finding F6). rustls also reads a record in
//! several socket reads inside one call, so per-call checks above rustls do not help either: the deadline
//! has to sit below it, on each socket read and write.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// A stream that can hand out its TCP socket, so its timeouts can be set.
pub trait HasSocket: Read + Write {
    /// The TCP socket underneath, if there is one.
    fn tcp(&self) -> Option<&TcpStream>;
}

impl HasSocket for TcpStream {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

impl HasSocket for Box<dyn ureq::ReadWrite> {
    fn tcp(&self) -> Option<&TcpStream> {
        self.socket()
    }
}

/// A stream whose reads and writes all end by one instant.
pub struct DeadlineIo<S> {
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
        let timed_out = matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut);
        if timed_out && Instant::now() >= self.deadline {
            deadline_passed()
        } else {
            err
        }
    }
}

fn deadline_passed() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the request deadline passed")
}

impl<S: HasSocket> Read for DeadlineIo<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        if let Some(socket) = self.inner.tcp() {
            socket.set_read_timeout(Some(left))?;
        }
        self.inner.read(buf).map_err(|e| self.name_timeout(e))
    }
}

impl<S: HasSocket> Write for DeadlineIo<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left()?;
        if let Some(socket) = self.inner.tcp() {
            socket.set_write_timeout(Some(left))?;
        }
        self.inner.write(buf).map_err(|e| self.name_timeout(e))
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

impl ureq::ReadWrite for DeadlineIo<Box<dyn ureq::ReadWrite>> {
    fn socket(&self) -> Option<&TcpStream> {
        self.inner.socket()
    }
}

/// ureq's rustls connector with the stream under it wrapped in a [`DeadlineIo`], so the handshake and every
/// later TLS read and write end by the request's deadline.
pub(crate) struct DeadlineTls {
    /// The same configuration ureq builds by default (see [`tls_config`]).
    pub(crate) config: Arc<rustls::ClientConfig>,
    /// When the request must be over.
    pub(crate) deadline: Instant,
}

impl ureq::TlsConnector for DeadlineTls {
    fn connect(&self, dns_name: &str, io: Box<dyn ureq::ReadWrite>) -> Result<Box<dyn ureq::ReadWrite>, ureq::Error> {
        self.config.connect(dns_name, Box::new(DeadlineIo::new(io, self.deadline)))
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
pub fn resolve_by(netloc: &str, deadline: Instant) -> io::Result<Vec<SocketAddr>> {
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
pub(crate) struct DeadlineResolver {
    /// When the request must be over.
    pub(crate) deadline: Instant,
}

impl ureq::Resolver for DeadlineResolver {
    fn resolve(&self, netloc: &str) -> io::Result<Vec<SocketAddr>> {
        resolve_by(netloc, self.deadline)
    }
}

/// ureq's default TLS setup, made explicit: ring, TLS 1.2 and 1.3, the webpki roots, no client certificate.
pub(crate) fn tls_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])?
        .with_root_certificates(rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() })
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
