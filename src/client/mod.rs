//! HTTP clients of a Network Authority: the node side (`POST /join`, `/heartbeat`, `/renew`, signed
//! with the node key, `na-wire.md` §5 and §9.4) and the operator side (the `/admin/*` routes, signed
//! with an operator key in signature version 1 or 2, §6 and §9.5).
//!
//! [`NaClient`] owns one ureq agent. Every request runs under a deadline and reads a capped body
//! ([`ClientOptions`]); a failure names the URL and the phase. A non-2xx answer is not a transport
//! failure: it comes back as a [`Reply`] (status and parsed body) and becomes
//! [`ClientError::Refused`] with upstream's `{"error": "..."}` message when a caller needs a
//! success. Bodies are sent as the canonical JSON text of the value that was signed, so the bytes
//! on the wire and the bytes signed are one value.
//!
//! This module reads no files, environment or flags, and never logs a body, a header value or a
//! token: bodies carry invite tokens and headers carry signatures.

pub mod admin;
pub(crate) mod admin_signature;
pub mod deadline_io;
pub mod error;
pub(crate) mod feed;
pub(crate) mod genesis;
pub mod node;
pub mod options;
pub mod reply;
pub(crate) mod roots;
pub(crate) mod treaty;
pub(crate) mod treaty_succession;

#[cfg(test)]
pub(crate) mod fake_na;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::crypto::canonical::canonical_string;
use crate::json::Value;

use error::io_detail;
pub use error::{ClientError, Phase};
pub use options::{ClientOptions, Deadline};
pub use reply::Reply;
pub use roots::{CaBundleError, Trust};

/// A client of one NA, identified by its base URL (`http://127.0.0.1:8443`).
///
/// Each request gets its own ureq agent, built around that request's deadline (see [`deadline_io`]):
/// ureq's connection pool would otherwise hand a later request a TLS stream still bound to an earlier
/// deadline. gm's commands make one to three requests, so the lost connection reuse costs little.
#[derive(Debug, Clone)]
pub(crate) struct NaClient {
    /// The TLS configuration, trusting `options.trust`, built once.
    tls: Arc<rustls::ClientConfig>,
    /// The URL requests go to (may hold user info).
    wire_base_url: String,
    /// The same with user info redacted: the only form shown or logged.
    base_url: String,
    options: ClientOptions,
}

impl NaClient {
    /// A client of the NA at `na_url` (`http://` or `https://`, no query; a trailing `/` is
    /// dropped).
    pub fn new(na_url: &str, options: ClientOptions) -> Result<NaClient, ClientError> {
        let wire_base_url = check_base_url(na_url)?;
        let tls = deadline_io::tls_config(&options.trust).map_err(|e| ClientError::Connect {
            url: redact_user_info(&wire_base_url),
            detail: format!("cannot set up TLS: {e}"),
        })?;
        Ok(NaClient { tls, base_url: redact_user_info(&wire_base_url), wire_base_url, options })
    }

    /// An agent whose connections, TLS handshake included, end by `deadline`.
    fn agent_until(&self, deadline: Instant) -> ureq::Agent {
        deadline_io::agent_until(&self.tls, deadline, self.options.connect_timeout)
    }

    /// The base URL as it may be shown (user info redacted).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The deadline of an operation starting now.
    pub(crate) fn deadline(&self) -> Deadline {
        Deadline::after(self.options.total_timeout)
    }

    /// `GET target` (a path with an optional query) with extra `headers`.
    pub(crate) fn get(
        &self,
        deadline: &Deadline,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, ClientError> {
        self.send(deadline, "GET", target, headers, None)
    }

    /// `POST target` with `body` sent as its canonical JSON text (`Content-Type: application/json`).
    pub(crate) fn post_json(
        &self,
        deadline: &Deadline,
        target: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Result<Reply, ClientError> {
        self.send(deadline, "POST", target, headers, Some(&canonical_string(body)))
    }

    /// `GET target` expecting a 2xx JSON object (public routes such as `/genesis`).
    pub(crate) fn get_object(&self, deadline: &Deadline, target: &str) -> Result<Reply, ClientError> {
        let reply = self.get(deadline, target, &[])?;
        reply.object()?;
        Ok(reply)
    }

    fn send(
        &self,
        deadline: &Deadline,
        method: &'static str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<Reply, ClientError> {
        let shown = format!("{}{target}", self.base_url);
        let budget = deadline.budget(self.options.request_budget()).ok_or_else(|| ClientError::Timeout {
            url: shown.clone(),
            phase: Phase::Operation,
            after: deadline.total(),
        })?;
        // One instant bounds the lookup, the connect, the TLS handshake, the request and the body: the
        // agent's resolver, connector and transport all read and write under it (see `deadline_io`).
        let agent = self.agent_until(Instant::now() + budget);
        let mut builder = ureq::http::Request::builder().method(method).uri(format!("{}{target}", self.wire_base_url));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let started = Instant::now();
        let result = match body {
            Some(text) => {
                builder.header("Content-Type", "application/json").body(text.to_string()).map(|r| agent.run(r))
            }
            None => builder.body(()).map(|r| agent.run(r)),
        };
        let response = match result {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return Err(self.transport_error(e, shown, budget)),
            Err(_) => return Err(ClientError::BadUrl { url: shown, problem: "ureq cannot parse it as a URL" }),
        };
        let reply = Reply::read(method, shown, response, self.options.max_body_bytes, budget)?;
        log::debug!("{method} {} answered {} in {} ms", reply.url, reply.status, started.elapsed().as_millis());
        Ok(reply)
    }

    fn transport_error(&self, e: ureq::Error, url: String, budget: Duration) -> ClientError {
        match e {
            ureq::Error::Other(other) => match other.downcast::<deadline_io::PhaseFailure>() {
                Ok(failure) => self.phase_error(failure.phase, &failure.cause, url, budget),
                Err(other) => ClientError::Transport { url, phase: Phase::Answer, detail: other.to_string() },
            },
            ureq::Error::Io(e) if timed_out(&e) => ClientError::Timeout { url, phase: Phase::Answer, after: budget },
            ureq::Error::Io(e) => ClientError::Transport { url, phase: Phase::Answer, detail: io_detail(&e) },
            ureq::Error::Timeout(_) => ClientError::Timeout { url, phase: Phase::Answer, after: budget },
            ureq::Error::BadUri(_) | ureq::Error::Http(_) => {
                ClientError::BadUrl { url, problem: "ureq cannot parse it as a URL" }
            }
            ureq::Error::Protocol(_) | ureq::Error::LargeResponseHeader(..) => ClientError::Transport {
                url,
                phase: Phase::Answer,
                detail: format!("malformed HTTP answer: {}", e.to_string().to_lowercase()),
            },
            _ => ClientError::Transport { url, phase: Phase::Answer, detail: e.to_string().to_lowercase() },
        }
    }

    /// A failure of the lookup, the connect or the handshake, as the phase it happened in.
    fn phase_error(&self, phase: Phase, cause: &std::io::Error, url: String, budget: Duration) -> ClientError {
        match phase {
            Phase::Resolve if timed_out(cause) => ClientError::Timeout { url, phase, after: budget },
            Phase::Resolve => ClientError::Resolve { url, detail: io_detail(cause) },
            Phase::Connect if timed_out(cause) => {
                ClientError::Timeout { url, phase, after: self.options.connect_timeout.min(budget) }
            }
            // The handshake's bound is the request's deadline, not connect_timeout.
            Phase::Handshake if timed_out(cause) => ClientError::Timeout { url, phase, after: budget },
            Phase::Handshake => match refused_certificate(cause) {
                Some(refused) => ClientError::Certificate {
                    url,
                    problem: certificate_problem(refused),
                    unknown_issuer: matches!(refused, rustls::CertificateError::UnknownIssuer),
                    private_ca: self.options.trust.is_private(),
                },
                None => ClientError::Connect { url, detail: io_detail(cause) },
            },
            Phase::Connect => ClientError::Connect { url, detail: io_detail(cause) },
            _ if timed_out(cause) => ClientError::Timeout { url, phase, after: budget },
            _ => ClientError::Transport { url, phase, detail: io_detail(cause) },
        }
    }
}

/// The certificate error inside a failed handshake, if that is why it failed (rustls hands it back
/// wrapped in an `InvalidData` I/O error).
fn refused_certificate(cause: &std::io::Error) -> Option<&rustls::CertificateError> {
    match cause.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidCertificate(refused) => Some(refused),
        _ => None,
    }
}

/// rustls' certificate error in words an operator acts on.
fn certificate_problem(refused: &rustls::CertificateError) -> String {
    use rustls::CertificateError as E;
    match refused {
        E::UnknownIssuer => "it is self-signed or issued by a CA that is not trusted here".to_string(),
        E::Expired | E::ExpiredContext { .. } => "it has expired".to_string(),
        E::NotValidYet | E::NotValidYetContext { .. } => "it is not valid yet".to_string(),
        E::NotValidForName | E::NotValidForNameContext { .. } => {
            "it is not valid for the host name of the URL".to_string()
        }
        E::Revoked => "it has been revoked".to_string(),
        other => other.to_string().to_lowercase(),
    }
}

/// Whether an I/O failure is a timeout (a socket timeout reads as `WouldBlock` on Unix).
fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock)
}

/// Checks an NA base URL and drops a trailing `/`.
fn check_base_url(na_url: &str) -> Result<String, ClientError> {
    let url = na_url.trim().trim_end_matches('/');
    let bad = |problem| ClientError::BadUrl { url: redact_user_info(url), problem };
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &url["http://".len()..]
    } else if lower.starts_with("https://") {
        &url["https://".len()..]
    } else {
        return Err(bad("expected http:// or https:// followed by host[:port]"));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("the host is missing"));
    }
    if url.contains(['?', '#']) {
        return Err(bad("a base URL carries no query or fragment"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains whitespace"));
    }
    Ok(url.to_string())
}

/// `https://user:pass@host/x` becomes `https://[redacted]@host/x`: a password in the NA URL must
/// not reach an error message.
fn redact_user_info(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let after = scheme_end + "://".len();
    let rest = url.get(after..).unwrap_or("");
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest.get(..authority_end).and_then(|a| a.rfind('@')) {
        Some(at) => format!("{}[redacted]{}", url.get(..after).unwrap_or(""), rest.get(at..).unwrap_or("")),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::fake_na::{Answer, FakeNa};
    use super::*;

    fn short_options() -> ClientOptions {
        ClientOptions {
            connect_timeout: Duration::from_millis(500),
            read_timeout: Duration::from_millis(300),
            write_timeout: Duration::from_millis(200),
            total_timeout: Duration::from_secs(5),
            max_body_bytes: 1024,
            trust: Trust::HostRoots,
        }
    }

    #[test]
    fn base_url_is_checked_and_user_info_never_shown() {
        assert_eq!(check_base_url(" http://127.0.0.1:8443/ ").unwrap(), "http://127.0.0.1:8443");
        assert!(matches!(check_base_url("127.0.0.1:8443"), Err(ClientError::BadUrl { .. })));
        assert!(check_base_url("http://na?x=1").is_err());
        let e = check_base_url("ftp://alice:s3cret@na").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert_eq!(redact_user_info("https://alice:s3cret@na.example/p"), "https://[redacted]@na.example/p");
    }

    #[test]
    fn connection_refused_names_the_url() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let client = NaClient::new(&format!("http://127.0.0.1:{port}"), short_options()).unwrap();
        let err = client.get(&client.deadline(), "/genesis", &[]).unwrap_err();
        assert_eq!(err.to_string(), format!("cannot reach http://127.0.0.1:{port}/genesis: connection refused"));
    }

    #[test]
    fn non_2xx_answer_is_a_reply_with_status_and_message() {
        let na = FakeNa::start(vec![Answer::json(429, "{\"error\":\"Rate limit exceeded\"}\n")]);
        let client = NaClient::new(&na.url(), short_options()).unwrap();
        let reply = client
            .post_json(&client.deadline(), "/admin/invite", &Value::Object(crate::json::Map::new()), &[])
            .unwrap();
        assert_eq!(reply.status, 429);
        assert_eq!(reply.error_message(), "Rate limit exceeded");
        let err = reply.object().unwrap_err();
        assert_eq!(err.to_string(), "the NA refused: 429 Rate limit exceeded");
        let seen = na.finish();
        assert_eq!(seen[0].body, b"{}");
        assert_eq!(seen[0].header("content-type"), Some("application/json"));
    }

    #[test]
    fn silent_na_times_out_within_the_request_budget() {
        let na = FakeNa::start(vec![Answer::Silent]);
        let options = short_options();
        let client = NaClient::new(&na.url(), options.clone()).unwrap();
        let started = Instant::now();
        let err = client.get(&client.deadline(), "/healthz", &[]).unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(err, ClientError::Timeout { phase: Phase::Answer, .. }), "{err:?}");
        assert!(elapsed < options.request_budget() + Duration::from_millis(500), "took {elapsed:?}");
        assert!(err.to_string().starts_with("timed out after 1s waiting for an answer from http://127.0.0.1:"));
        na.finish();
    }

    #[test]
    fn operation_deadline_caps_the_request_budget() {
        let na = FakeNa::start(vec![Answer::Silent]);
        let options = ClientOptions {
            read_timeout: Duration::from_secs(20),
            total_timeout: Duration::from_millis(400),
            ..short_options()
        };
        let client = NaClient::new(&na.url(), options).unwrap();
        let started = Instant::now();
        let err = client.get(&client.deadline(), "/healthz", &[]).unwrap_err();
        assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        na.finish();
    }

    /// The whole TLS path (handshake, request, answer under one deadline) against a server whose
    /// certificate the client is told to trust.
    #[test]
    fn https_request_succeeds_through_the_deadline_connector() {
        use std::io::{Read, Write};
        let (server_config, cert) = self_signed_server(None);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let conn = rustls::ServerConnection::new(Arc::new(server_config)).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                tls.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            let body = "{\"status\":\"ok\"}";
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            tls.write_all(answer.as_bytes()).unwrap();
            tls.conn.send_close_notify();
            tls.flush().unwrap();
            String::from_utf8(head).unwrap()
        });
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let mut client = NaClient::new(&format!("https://127.0.0.1:{port}"), short_options()).unwrap();
        client.tls = Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        );
        let reply = client.get_object(&client.deadline(), "/healthz").unwrap();
        assert_eq!((reply.status, reply.text.as_str()), (200, "{\"status\":\"ok\"}"));
        let head = server.join().unwrap();
        assert!(head.starts_with("GET /healthz HTTP/1.1\r\n"), "{head}");
        assert!(head.to_ascii_lowercase().contains(concat!("user-agent: gm/", env!("CARGO_PKG_VERSION"))), "{head}");
    }

    /// A rustls server configuration for `localhost` and 127.0.0.1 with a new self-signed certificate
    /// (valid from 2020-01-01 to `not_after` when given, rcgen's wide default otherwise), and the
    /// certificate.
    fn self_signed_server(
        not_after: Option<(i32, u8, u8)>,
    ) -> (rustls::ServerConfig, rustls::pki_types::CertificateDer<'static>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        if let Some((y, m, d)) = not_after {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(y, m, d);
        }
        let cert = params.self_signed(&key).unwrap();
        let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key_der)
            .unwrap();
        (config, cert.der().clone())
    }

    /// A TLS server on 127.0.0.1 presenting a self-signed certificate valid until `not_after`,
    /// answering one `/healthz` (or ending at a refused handshake); and the certificate's PEM.
    fn tls_healthz_once(not_after: (i32, u8, u8)) -> (u16, String) {
        use base64::Engine as _;
        use std::io::{Read, Write};
        let (config, cert) = self_signed_server(Some(not_after));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(Arc::new(config)).unwrap(), tcp);
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if tls.read_exact(&mut byte).is_err() {
                    return;
                }
                head.push(byte[0]);
            }
            let answer = "HTTP/1.1 200 OK\r\nContent-Length: 15\r\nConnection: close\r\n\r\n{\"status\":\"ok\"}";
            let _ = tls.write_all(answer.as_bytes());
            tls.conn.send_close_notify();
            let _ = tls.flush();
        });
        let b64 = base64::engine::general_purpose::STANDARD.encode(&cert);
        (port, format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n"))
    }

    #[test]
    fn a_private_bundle_replaces_the_host_roots_and_a_refused_certificate_says_why() {
        let private =
            |pem: &str| ClientOptions { trust: Trust::private_bundle(pem.as_bytes()).unwrap(), ..short_options() };
        let (port, pem) = tls_healthz_once((2099, 1, 1));
        let client = NaClient::new(&format!("https://127.0.0.1:{port}"), private(&pem)).unwrap();
        assert_eq!(client.get_object(&client.deadline(), "/healthz").unwrap().status, 200);

        let (port, _) = tls_healthz_once((2099, 1, 1));
        let client = NaClient::new(&format!("https://127.0.0.1:{port}"), short_options()).unwrap();
        let err = client.get(&client.deadline(), "/healthz", &[]).unwrap_err();
        assert!(matches!(&err, ClientError::Certificate { unknown_issuer: true, private_ca: false, .. }), "{err:?}");

        let (port, pem) = tls_healthz_once((2021, 1, 1));
        let client = NaClient::new(&format!("https://127.0.0.1:{port}"), private(&pem)).unwrap();
        let err = client.get(&client.deadline(), "/healthz", &[]).unwrap_err();
        assert!(matches!(&err, ClientError::Certificate { unknown_issuer: false, private_ca: true, .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("the TLS certificate of https://127.0.0.1:{port}/healthz is not trusted: it has expired")
        );
    }

    #[test]
    fn oversized_body_is_refused() {
        let big = format!("{{\"x\":\"{}\"}}", "a".repeat(2048));
        let na = FakeNa::start(vec![Answer::json(200, &big)]);
        let client = NaClient::new(&na.url(), short_options()).unwrap();
        let err = client.get(&client.deadline(), "/genesis", &[]).unwrap_err();
        assert!(matches!(err, ClientError::TooLarge { max_body_bytes: 1024, .. }), "{err:?}");
        na.finish();
    }
}
