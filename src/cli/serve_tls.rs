//! Built-in TLS for `gm serve`: loads the certificate and key at start (a failure refuses to start),
//! and reloads them on SIGHUP or when either file changes (for example after certbot renews): a
//! certificate that loads replaces the old one for new connections, one that does not (expired,
//! mismatched key, unreadable) is logged with the reason and the old one keeps serving.
//!
//! Must not: accept connections (`http::Server` does) or judge certificates (`crypto::tls_files`).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::clock::{Clock, SystemClock};
use crate::config::TlsFiles;
use crate::crypto::tls_files::{load, ServerCert};
use crate::http::TlsState;

use super::error::Error;

/// How often the files' modification times are compared.
const CHANGE_CHECK_EVERY: Duration = Duration::from_secs(5);

/// The served certificate and how to refresh it.
#[derive(Debug)]
pub(crate) struct TlsReloader {
    files: TlsFiles,
    state: Arc<TlsState>,
    /// The files' modification times at the last load attempt, and when they were last compared.
    seen: Mutex<(Stamps, Instant)>,
}

type Stamps = (Option<SystemTime>, Option<SystemTime>, Option<SystemTime>);

impl TlsReloader {
    /// Loads `files`; refuses to start without a usable certificate.
    pub(crate) fn start(files: TlsFiles, now: chrono::DateTime<chrono::Utc>) -> Result<TlsReloader, Error> {
        let stamps = stamps(&files);
        let cert = load(&files.cert, &files.key, files.client_ca.as_deref(), now).map_err(|problem| {
            Error::refused(
                format!("cannot serve HTTPS: {problem}"),
                "give a valid certificate chain and its key ([tls] cert_file and key_file, or --tls-cert and --tls-key)",
            )
        })?;
        log_loaded("loaded", &files, &cert);
        Ok(TlsReloader {
            state: Arc::new(TlsState::new(cert.config)),
            files,
            seen: Mutex::new((stamps, Instant::now())),
        })
    }

    /// What the server accepts connections with.
    pub(crate) fn state(&self) -> Arc<TlsState> {
        Arc::clone(&self.state)
    }

    /// Loads the files again; on success new connections use the new certificate, on failure the old
    /// one keeps serving and the reason is logged.
    pub(crate) fn reload(&self, why: &str) {
        let stamps = stamps(&self.files);
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = (stamps, Instant::now());
        match load(&self.files.cert, &self.files.key, self.files.client_ca.as_deref(), SystemClock.now()) {
            Ok(cert) => {
                self.state.replace(Arc::clone(&cert.config));
                log_loaded(&format!("{why}: reloaded"), &self.files, &cert);
            }
            Err(problem) => log::error!(
                target: "gm::serve",
                "{why}: the new TLS certificate was not loaded, the previous one keeps serving: {problem}"
            ),
        }
    }

    /// Reloads when a file's modification time changed since the last load (compared every 5 s).
    pub(crate) fn reload_if_changed(&self) {
        let changed = {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if seen.1.elapsed() < CHANGE_CHECK_EVERY {
                return;
            }
            seen.1 = Instant::now();
            stamps(&self.files) != seen.0
        };
        if changed {
            self.reload("certificate files changed");
        }
    }
}

/// The handler of the plain-HTTP listener `[tls] redirect_http_bind`: every request gets a 308 to the
/// same target over HTTPS on `https_port`. The host comes from the request's `Host` header and must
/// be a plain host name or address (anything else is a 400, so the redirect cannot be pointed at a
/// URL the client smuggled in).
pub(crate) struct RedirectToHttps {
    /// The port HTTPS is served on.
    pub https_port: u16,
}

impl crate::http::Handler for RedirectToHttps {
    fn handle(&self, req: &crate::http::Request) -> crate::http::Response {
        let host = req.header("host").map(host_only).unwrap_or_default();
        let plain = !host.is_empty()
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
        if !plain || !req.target.starts_with('/') {
            return crate::http::Response::json_error(400, "Bad Request");
        }
        let port = if self.https_port == 443 { String::new() } else { format!(":{}", self.https_port) };
        crate::http::Response::new(308).with_header("Location", format!("https://{host}{port}{}", req.target))
    }
}

/// `Host` without its port (`[::1]:80` -> `[::1]`, `na.example.org:80` -> `na.example.org`).
fn host_only(value: &str) -> &str {
    let value = value.trim();
    match value.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && (!h.contains(':') || h.ends_with(']')) => h,
        _ => value,
    }
}

fn stamps(files: &TlsFiles) -> Stamps {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (modified(&files.cert), modified(&files.key), files.client_ca.as_deref().and_then(modified))
}

fn log_loaded(what: &str, files: &TlsFiles, cert: &ServerCert) {
    log::info!(
        target: "gm::serve",
        "{what} the TLS certificate {} ({} certificate(s) in the chain, valid until {})",
        files.cert.display(),
        cert.chain_len,
        cert.not_after.to_rfc3339()
    );
}

#[cfg(test)]
mod tests {
    use super::host_only;

    #[test]
    fn host_only_drops_the_port_and_keeps_ipv6_brackets() {
        assert_eq!(host_only("na.example.org:80"), "na.example.org");
        assert_eq!(host_only("na.example.org"), "na.example.org");
        assert_eq!(host_only("[::1]:80"), "[::1]");
        assert_eq!(host_only("[::1]"), "[::1]");
        assert_eq!(host_only("127.0.0.1:8080"), "127.0.0.1");
    }
}
