//! The server side of built-in TLS: the rustls configuration new connections are accepted with
//! ([`TlsState`]), replaced as a whole on reload. A connection keeps the configuration it was accepted
//! with, so a reload drops nothing; the next connection gets the new certificate.
//!
//! Must not: read certificate files or judge them (the caller builds the configuration, see
//! `crypto::tls_files`), or speak HTTP.

use std::sync::{Arc, PoisonError, RwLock};

use rustls::{ServerConfig, ServerConnection};

/// The configuration new TLS connections use.
#[derive(Debug)]
pub struct TlsState {
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsState {
    /// Starts with `config`.
    pub fn new(config: Arc<ServerConfig>) -> TlsState {
        TlsState { current: RwLock::new(config) }
    }

    /// Makes `config` the one new connections use.
    pub fn replace(&self, config: Arc<ServerConfig>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = config;
    }

    /// The server side of one new connection.
    pub(super) fn accept(&self) -> Result<ServerConnection, rustls::Error> {
        let config = Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner));
        ServerConnection::new(config)
    }
}
