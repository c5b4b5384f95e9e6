//! The bytes of one connection: a plain TCP socket, or rustls over it ([`Wire`]). Reads and writes keep
//! the socket's semantics that `conn.rs` builds its deadlines on: a read blocks at most the socket's read
//! timeout and returns `WouldBlock`/`TimedOut` when nothing usable arrived, so a client that dribbles a TLS
//! handshake is cut by the same head deadline as one that dribbles an HTTP head (each call does at most one
//! socket read).
//!
//! Must not: decide deadlines (the caller passes them) or know about HTTP.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Instant;

use rustls::ServerConnection;

/// A connection's transport.
pub(super) enum Wire {
    /// Plain HTTP.
    Plain(TcpStream),
    /// HTTPS: rustls over the socket (the handshake runs inside the first reads).
    Tls(Box<TlsWire>),
}

/// rustls and its socket.
pub(super) struct TlsWire {
    tcp: TcpStream,
    conn: ServerConnection,
}

impl Wire {
    /// TLS over `tcp` with the server side of `conn`.
    pub(super) fn tls(tcp: TcpStream, conn: ServerConnection) -> Wire {
        Wire::Tls(Box::new(TlsWire { tcp, conn }))
    }

    /// Whether the connection is HTTPS.
    pub(super) fn is_tls(&self) -> bool {
        matches!(self, Wire::Tls(_))
    }

    /// Whether the client presented a certificate the configured client CA verified (rustls refuses the
    /// handshake for one it does not verify, so any certificate it holds was verified).
    pub(super) fn client_verified(&self) -> bool {
        match self {
            Wire::Plain(_) => false,
            Wire::Tls(t) => t.conn.peer_certificates().is_some_and(|c| !c.is_empty()),
        }
    }

    /// The socket underneath (timeouts, shutdown).
    pub(super) fn tcp(&self) -> &TcpStream {
        match self {
            Wire::Plain(tcp) => tcp,
            Wire::Tls(t) => &t.tcp,
        }
    }

    /// One read of application bytes: `Ok(0)` at the end of input, `WouldBlock`/`TimedOut` when the socket's
    /// read timeout passed without any (for TLS: also when a record arrived that held none, e.g. a part of
    /// the handshake, whose answer is sent before returning).
    pub(super) fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(tcp) => tcp.read(dst),
            Wire::Tls(t) => t.read(dst),
        }
    }

    /// Writes all of `data`, each socket write blocking at most the socket's write timeout, giving up at
    /// `deadline`. For TLS every encrypted byte is on the socket when it returns.
    pub(super) fn write_all_by(&mut self, mut data: &[u8], deadline: Instant) -> io::Result<()> {
        match self {
            Wire::Plain(tcp) => {
                while !data.is_empty() {
                    match tcp.write(data) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => data = data.get(n..).unwrap_or_default(),
                        Err(err) => retry_until(err, deadline)?,
                    }
                }
                Ok(())
            }
            Wire::Tls(t) => {
                while !data.is_empty() {
                    let n = t.conn.writer().write(data)?;
                    data = data.get(n..).unwrap_or_default();
                    t.flush_by(deadline)?;
                }
                t.flush_by(deadline)
            }
        }
    }

    /// Ends the sending side: for TLS a `close_notify` first (best effort), then the socket's half-close.
    pub(super) fn shutdown_write(&mut self) -> io::Result<()> {
        if let Wire::Tls(t) = self {
            t.conn.send_close_notify();
            let _ = t.flush_by(Instant::now() + std::time::Duration::from_millis(200));
        }
        self.tcp().shutdown(Shutdown::Write)
    }
}

impl TlsWire {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        if let Some(n) = self.plaintext(dst)? {
            return Ok(n);
        }
        // A handshake answer (or an alert) waiting to go out goes first: the peer may wait for it.
        self.flush_by(Instant::now() + std::time::Duration::from_secs(1))?;
        let got = self.conn.read_tls(&mut self.tcp)?;
        if got == 0 {
            return Ok(0);
        }
        let processed = self.conn.process_new_packets();
        // Send what the records produced (the next handshake flight, or the alert of a failure).
        let flushed = self.flush_by(Instant::now() + std::time::Duration::from_secs(1));
        if let Err(e) = processed {
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        flushed?;
        match self.plaintext(dst)? {
            Some(n) => Ok(n),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Decrypted bytes already buffered: `Some(0)` after the peer's `close_notify`, `None` when there are none.
    fn plaintext(&mut self, dst: &mut [u8]) -> io::Result<Option<usize>> {
        match self.conn.reader().read(dst) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            // The socket closed without close_notify: the end of input, as for plain TCP.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(0)),
            Err(e) => Err(e),
        }
    }

    /// Writes out every encrypted byte rustls holds, giving up at `deadline`.
    fn flush_by(&mut self, deadline: Instant) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(err) => retry_until(err, deadline)?,
            }
        }
        Ok(())
    }
}

/// `Ok` to try again after an interrupted or timed-out write before `deadline`; the error otherwise.
fn retry_until(err: io::Error, deadline: Instant) -> io::Result<()> {
    match err.kind() {
        io::ErrorKind::Interrupted => Ok(()),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut if Instant::now() < deadline => Ok(()),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            Err(io::Error::new(io::ErrorKind::TimedOut, "response not written within write_timeout"))
        }
        _ => Err(err),
    }
}
