//! The server certificate and key of built-in TLS, from PEM files: a rustls configuration (TLS 1.2 and
//! 1.3 only, rustls' default cipher suites with the ring provider, ALPN `http/1.1`) and the facts an
//! operator needs (the chain's length, the leaf's `notAfter`). A certificate that has expired, holds no
//! certificate, or does not match its key is refused, so a reload never swaps a working certificate for a
//! broken one.
//!
//! Must not: serve connections (`http::TlsState` does) or decide when to reload (`gm serve` does).

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use super::cert_expiry::not_after;

/// A loaded certificate: the configuration and what it says.
#[derive(Debug)]
pub struct ServerCert {
    /// The rustls configuration new connections use.
    pub config: Arc<ServerConfig>,
    /// Certificates in the chain (leaf first).
    pub chain_len: usize,
    /// When the leaf expires.
    pub not_after: DateTime<Utc>,
}

/// Loads `cert` (a PEM chain, leaf first) and `key` (PEM, PKCS#8, PKCS#1 or SEC1) and checks them at `now`.
/// With `client_ca` (PEM, one or more CA certificates), clients may present a certificate it issued: one
/// it does not verify fails the handshake, none at all is allowed (the routes decide what needs one).
pub fn load(cert: &Path, key: &Path, client_ca: Option<&Path>, now: DateTime<Utc>) -> Result<ServerCert, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the certificate {} is not valid PEM: {e}", cert.display()))?;
    let leaf = chain.first().ok_or_else(|| format!("{} holds no certificate", cert.display()))?;
    let not_after =
        not_after(leaf).map_err(|e| format!("the certificate in {} cannot be read: {e}", cert.display()))?;
    if not_after <= now {
        return Err(format!("the certificate in {} expired at {}", cert.display(), not_after.to_rfc3339()));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read a private key from {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
                .map_err(|e| format!("cannot read the client CA {}: {e}", ca.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("the client CA {} is not valid PEM: {e}", ca.display()))?;
            if cas.is_empty() {
                return Err(format!("the client CA {} holds no certificate", ca.display()));
            }
            for c in cas {
                roots
                    .add(c)
                    .map_err(|e| format!("a certificate in the client CA {} is unusable: {e}", ca.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("cannot use the client CA {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain.clone(), private)
        .map_err(|e| format!("{} and {} do not make a usable certificate: {e}", cert.display(), key.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServerCert { config: Arc::new(config), chain_len: chain.len(), not_after })
}
