//! The TLS check of an `https` target: one direct rustls handshake that verifies the server
//! certificate as the HTTP checks do (rustls with the same [`Trust`]: the host's CA bundle, or only
//! a private CA bundle, as `client::deadline_io` sets up) and keeps the end-entity certificate it was shown, so the days until `notAfter` can be
//! reported even when verification fails (an expired or self-signed certificate is a clear
//! CRITICAL with the reason, not just "TLS error").
//!
//! The HTTP client does not hand out the peer certificate, hence the separate handshake; it costs
//! one extra connection per run.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

use crate::client::deadline_io::{resolve_by, DeadlineIo};
use crate::client::Trust;
use crate::clock::Clock;
use crate::model::timestamp::pydantic_utc;

use super::finding::{Outcome, TlsThresholds};
use crate::crypto::cert_expiry::not_after;

/// Seconds in a day, for fractional day counts.
const DAY_SECONDS: f64 = 86_400.0;

/// What the TLS check found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TlsFinding {
    /// Pass, Warn (expires within the warning window) or Fail.
    pub outcome: Outcome,
    /// One line saying why.
    pub reason: String,
    /// Connect plus handshake time, when the handshake finished or failed on the certificate.
    pub latency: Option<Duration>,
    /// Days until the certificate's `notAfter` (negative once expired), when a certificate was seen.
    pub days_left: Option<f64>,
}

impl TlsFinding {
    fn failed(reason: String) -> TlsFinding {
        TlsFinding { outcome: Outcome::Fail, reason, latency: None, days_left: None }
    }
}

/// Handshakes with the host of `target` (an `https://` base URL) within `timeout`, verifying
/// against `trust`, and grades the certificate: untrusted or expired, or under `critical_days`, is
/// Fail; under `warn_days` is Warn.
pub(crate) fn check_certificate(
    target: &str,
    timeout: Duration,
    thresholds: TlsThresholds,
    trust: &Trust,
    clock: &dyn Clock,
) -> TlsFinding {
    let (host, port) = match host_and_port(target) {
        Some(hp) => hp,
        None => return TlsFinding::failed(format!("cannot read host and port from {target}")),
    };
    let started = Instant::now();
    let verifier = match CapturingVerifier::new(trust) {
        Ok(v) => Arc::new(v),
        Err(e) => return TlsFinding::failed(format!("cannot set up TLS verification: {e}")),
    };
    let handshake = handshake(&host, port, timeout, trust, verifier.clone());
    let latency = started.elapsed();
    let days_left = verifier.end_entity().and_then(|der| not_after(&der).ok()).map(|t| {
        let seconds = (t - clock.now()).num_seconds();
        (seconds as f64 / DAY_SECONDS * 10.0).round() / 10.0
    });
    let expiry = verifier.end_entity().map(|der| not_after(&der));
    match handshake {
        Ok(()) => grade(days_left, expiry, thresholds, latency),
        Err(Failure::Certificate(cause)) => {
            let when = match (&expiry, days_left) {
                (Some(Ok(t)), Some(days)) if days < 0.0 => {
                    format!("; it expired {} days ago ({})", -days.ceil(), pydantic_utc(*t))
                }
                (Some(Ok(t)), Some(days)) => format!("; it expires in {} days ({})", days.floor(), pydantic_utc(*t)),
                _ => String::new(),
            };
            // The one remedy gm can name: a certificate from a private CA needs that CA's bundle.
            let remedy = if cause == UNKNOWN_ISSUER_HOST { "; for a private CA pass --ca-file" } else { "" };
            TlsFinding {
                outcome: Outcome::Fail,
                reason: format!("certificate not trusted: {cause}{when}{remedy}"),
                latency: Some(latency),
                days_left,
            }
        }
        Err(Failure::Other(reason)) => TlsFinding::failed(reason),
    }
}

fn grade(
    days_left: Option<f64>,
    expiry: Option<Result<chrono::DateTime<chrono::Utc>, crate::crypto::cert_expiry::CertParseError>>,
    thresholds: TlsThresholds,
    latency: Duration,
) -> TlsFinding {
    let (days, until) = match (days_left, expiry) {
        (Some(days), Some(Ok(t))) => (days, t),
        (_, Some(Err(e))) => return TlsFinding { latency: Some(latency), ..TlsFinding::failed(e.to_string()) },
        _ => return TlsFinding::failed("the server sent no certificate".to_string()),
    };
    let outcome = if days < f64::from(thresholds.critical_days) {
        Outcome::Fail
    } else if days < f64::from(thresholds.warn_days) {
        Outcome::Warn
    } else {
        Outcome::Pass
    };
    let reason = match outcome {
        Outcome::Pass => format!("certificate trusted, expires in {} days ({})", days.floor(), pydantic_utc(until)),
        _ => format!(
            "certificate expires in {} days ({}), under the {}-day threshold: renew it",
            days.floor(),
            pydantic_utc(until),
            if outcome == Outcome::Fail { thresholds.critical_days } else { thresholds.warn_days }
        ),
    };
    TlsFinding { outcome, reason, latency: Some(latency), days_left: Some(days) }
}

/// Why the handshake failed.
enum Failure {
    /// The certificate was refused: the cause in plain words.
    Certificate(String),
    /// Anything else (resolve, connect, timeout, protocol): the whole reason.
    Other(String),
}

fn handshake(
    host: &str,
    port: u16,
    timeout: Duration,
    trust: &Trust,
    verifier: Arc<CapturingVerifier>,
) -> Result<(), Failure> {
    let deadline = Instant::now() + timeout;
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| Failure::Other(format!("{host} is not a valid TLS server name")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::Other(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let mut conn =
        ClientConnection::new(Arc::new(config), name).map_err(|e| Failure::Other(format!("cannot start TLS: {e}")))?;
    // complete_io loops over many socket reads until the handshake is done, so the deadline sits under
    // it, on every read and write: a server that sends one byte every half second must not hold the probe
    // past its timeout (F6).
    let mut stream = DeadlineIo::new(connect(host, port, deadline)?, deadline);
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut stream) {
            if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) {
                return Err(timed_out(host, port, timeout));
            }
            return Err(match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                Some(rustls::Error::InvalidCertificate(cause)) => {
                    Failure::Certificate(certificate_cause(cause, host, trust))
                }
                Some(other) => Failure::Other(format!("TLS handshake with {host}:{port} failed: {other}")),
                None => Failure::Other(format!("TLS handshake with {host}:{port} failed: {e}")),
            });
        }
    }
    Ok(())
}

fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, Failure> {
    let netloc = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let addrs: Vec<SocketAddr> = resolve_by(&netloc, deadline).map_err(|e| match e.kind() {
        ErrorKind::TimedOut => Failure::Other(format!("timed out resolving {host}")),
        _ => Failure::Other(format!("cannot resolve {host}: {e}")),
    })?;
    let mut last = format!("cannot resolve {host}: no addresses");
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == ErrorKind::TimedOut => last = format!("timed out connecting to {addr}"),
            Err(e) => last = format!("cannot connect to {addr}: {}", e.kind()),
        }
    }
    Err(Failure::Other(last))
}

fn timed_out(host: &str, port: u16, timeout: Duration) -> Failure {
    Failure::Other(format!("timed out after {}s during the TLS handshake with {host}:{port}", timeout.as_secs_f64()))
}

/// Why a certificate no trusted CA issued is refused, when the host's roots are the trust.
const UNKNOWN_ISSUER_HOST: &str = "it is self-signed or issued by an authority outside the webpki roots";

/// rustls' certificate error in words an operator acts on.
fn certificate_cause(cause: &CertificateError, host: &str, trust: &Trust) -> String {
    match cause {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "it has expired".to_string(),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet".to_string()
        }
        CertificateError::UnknownIssuer if trust.is_private() => {
            "it is not issued by a CA of the private CA bundle (--ca-file)".to_string()
        }
        CertificateError::UnknownIssuer => UNKNOWN_ISSUER_HOST.to_string(),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("it is not valid for {host}")
        }
        CertificateError::Revoked => "it has been revoked".to_string(),
        other => other.to_string(),
    }
}

/// The host (brackets removed from IPv6) and port (default 443) of an `https://` base URL.
pub(crate) fn host_and_port(target: &str) -> Option<(String, u16)> {
    let rest = target.get(target.find("://")? + 3..)?;
    let authority = rest.split('/').next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    if let Some(v6) = host_port.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 443,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), port.parse().ok()?)),
        None => Some((host_port.to_string(), 443)),
    }
    .filter(|(host, _)| !host.is_empty())
}

/// The webpki verifier (over the roots of a [`Trust`]) that also keeps the end-entity certificate it was asked about.
#[derive(Debug)]
struct CapturingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Option<Vec<u8>>>,
}

impl CapturingVerifier {
    fn new(trust: &Trust) -> Result<CapturingVerifier, rustls::client::VerifierBuilderError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = WebPkiServerVerifier::builder_with_provider(trust.roots(), provider).build()?;
        Ok(CapturingVerifier { inner, seen: Mutex::new(None) })
    }

    fn end_entity(&self) -> Option<Vec<u8>> {
        self.seen.lock().ok().and_then(|seen| seen.clone())
    }
}

impl ServerCertVerifier for CapturingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(end_entity.to_vec());
        }
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_of_base_urls() {
        assert_eq!(host_and_port("https://na.example.org"), Some(("na.example.org".to_string(), 443)));
        assert_eq!(host_and_port("https://127.0.0.1:8443/na"), Some(("127.0.0.1".to_string(), 8443)));
        assert_eq!(host_and_port("https://u:p@[::1]:9443"), Some(("::1".to_string(), 9443)));
        assert_eq!(host_and_port("https://[::1]"), Some(("::1".to_string(), 443)));
        assert_eq!(host_and_port("https://host:notaport"), None);
        assert_eq!(host_and_port("https://:443"), None);
    }

    #[test]
    fn expiry_grades_against_the_thresholds() {
        let t = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        let thresholds = TlsThresholds::default();
        let at = |days: f64| grade(Some(days), Some(Ok(t)), thresholds, Duration::ZERO);
        assert_eq!(at(30.0).outcome, Outcome::Pass);
        assert_eq!(at(13.9).outcome, Outcome::Warn);
        assert_eq!(at(14.0).outcome, Outcome::Pass);
        assert_eq!(at(6.5).outcome, Outcome::Fail);
        assert!(at(6.5).reason.contains("under the 7-day threshold"), "{}", at(6.5).reason);
        assert!(at(10.0).reason.contains("under the 14-day threshold"));
    }
}
