//! The CA roots gm's outbound TLS trusts ([`Trust`]): by default the host's CA bundle (the file
//! every Linux distribution keeps current with its package updates), read once per process; or,
//! for self-hosted PKI, only the certificates of a private CA bundle the caller read (`--ca-file`),
//! parsed strictly by [`Trust::private_bundle`]. A static binary that embedded Mozilla's roots
//! (webpki-roots) carried ~100 KB of certificates that age without updates; the host's bundle is
//! the same list, maintained.
//!
//! Must not: read the environment, any configuration or the private bundle's file (the caller
//! hands in its bytes). A host without a bundle gets an empty store: every https request then
//! fails verification ("unknown issuer"), and a warning names the paths looked at.

use std::fmt;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

/// Where distributions keep their PEM bundle: Debian, Ubuntu and Alpine; Fedora and RHEL; openSUSE;
/// Alpine's and the BSDs' alternate name.
pub(crate) const BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The host's roots, loaded on first use from the first bundle of [`BUNDLES`] that holds any.
pub(crate) fn host_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    Arc::clone(ROOTS.get_or_init(|| {
        let roots = BUNDLES.iter().find_map(|path| {
            let pem = std::fs::read(path).ok()?;
            let store = from_pem(&pem);
            (!store.is_empty()).then_some(store)
        });
        Arc::new(roots.unwrap_or_else(|| {
            log::warn!(
                target: "gm::client",
                "no CA bundle found (looked at {}): https requests will fail verification; install the ca-certificates package",
                BUNDLES.join(", ")
            );
            RootCertStore::empty()
        }))
    }))
}

/// The CA certificates an outbound TLS connection verifies the server against.
#[derive(Debug, Clone, Default)]
pub enum Trust {
    /// The host's CA bundle ([`host_roots`]). The default.
    #[default]
    HostRoots,
    /// Only the certificates of a private CA bundle, not the host's roots: a self-hosted PKI's
    /// NA is trusted, and a public CA's certificate for the same name is not.
    Private(Arc<RootCertStore>),
}

impl Trust {
    /// The trust of a private CA bundle (`--ca-file`), read strictly: unlike the host's bundle, a
    /// file the operator names must hold at least one certificate and every certificate in it
    /// must parse, since a skipped entry would be a CA silently not trusted.
    ///
    /// # Errors
    /// [`CaBundleError`] naming the first bad block, or that there is no certificate at all.
    pub fn private_bundle(pem: &[u8]) -> Result<Trust, CaBundleError> {
        let mut store = RootCertStore::empty();
        for (index, item) in CertificateDer::pem_slice_iter(pem).enumerate() {
            let der = item.map_err(|e| CaBundleError::BadPem { index: index + 1, detail: e.to_string() })?;
            store.add(der).map_err(|e| CaBundleError::BadCertificate { index: index + 1, detail: e.to_string() })?;
        }
        if store.is_empty() {
            return Err(CaBundleError::NoCertificate);
        }
        Ok(Trust::Private(Arc::new(store)))
    }

    /// The root store to verify with.
    pub(crate) fn roots(&self) -> Arc<RootCertStore> {
        match self {
            Trust::HostRoots => host_roots(),
            Trust::Private(roots) => Arc::clone(roots),
        }
    }

    /// True for a private CA bundle.
    pub(crate) fn is_private(&self) -> bool {
        matches!(self, Trust::Private(_))
    }
}

/// Why a private CA bundle cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaBundleError {
    /// No `-----BEGIN CERTIFICATE-----` block at all (an empty file, a key, a DER file).
    NoCertificate,
    /// A certificate block that is not valid PEM (bad base64, a missing END line).
    BadPem {
        /// Which block, counting certificates from 1.
        index: usize,
        /// What the PEM reader said.
        detail: String,
    },
    /// A certificate block whose content is not an X.509 certificate rustls can trust.
    BadCertificate {
        /// Which certificate, counting from 1.
        index: usize,
        /// What rustls said.
        detail: String,
    },
}

impl fmt::Display for CaBundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaBundleError::NoCertificate => write!(f, "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
            CaBundleError::BadPem { index, detail } => {
                write!(f, "certificate block {index} is not valid PEM: {}", detail.to_lowercase())
            }
            CaBundleError::BadCertificate { index, detail } => {
                write!(f, "certificate {index} does not parse: {}", detail.to_lowercase())
            }
        }
    }
}

impl std::error::Error for CaBundleError {}

/// Every parsable certificate of a PEM bundle (a bundle with one bad entry still serves the rest).
pub(crate) fn from_pem(pem: &[u8]) -> RootCertStore {
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(CertificateDer::pem_slice_iter(pem).filter_map(Result::ok));
    store
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_is_read_and_a_bad_entry_is_skipped() {
        use base64::Engine as _;
        let cert = rcgen::generate_simple_self_signed(vec!["na.test".to_string()]).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.cert.der());
        let good = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
        let bad = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";
        assert_eq!(from_pem(format!("{bad}{good}").as_bytes()).len(), 1);
        assert!(from_pem(b"").is_empty());
    }

    fn pem_block(label: &str, der: &[u8]) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n")
    }

    fn pem_of(der: &[u8]) -> String {
        pem_block("CERTIFICATE", der)
    }

    #[test]
    fn a_private_bundle_is_read_strictly() {
        let a = rcgen::generate_simple_self_signed(vec!["na.test".to_string()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["other.test".to_string()]).unwrap();
        let two = format!("{}{}", pem_of(a.cert.der()), pem_of(b.cert.der()));
        let trust = Trust::private_bundle(two.as_bytes()).unwrap();
        assert!(trust.is_private());
        assert_eq!(trust.roots().len(), 2);
        // A key beside the certificate is not a certificate: skipped, as in any PEM bundle.
        let with_key = format!("{}{}", pem_block("PRIVATE KEY", &a.signing_key.serialize_der()), pem_of(a.cert.der()));
        assert_eq!(Trust::private_bundle(with_key.as_bytes()).unwrap().roots().len(), 1);

        assert_eq!(Trust::private_bundle(b"").unwrap_err(), CaBundleError::NoCertificate);
        let key_only = pem_block("PRIVATE KEY", &a.signing_key.serialize_der());
        assert_eq!(Trust::private_bundle(key_only.as_bytes()).unwrap_err(), CaBundleError::NoCertificate);
        assert_eq!(Trust::private_bundle(a.cert.der()).unwrap_err(), CaBundleError::NoCertificate);
        let not_a_cert = format!("{}{}", pem_of(a.cert.der()), pem_of(b"not a certificate"));
        let err = Trust::private_bundle(not_a_cert.as_bytes()).unwrap_err();
        assert!(matches!(err, CaBundleError::BadCertificate { index: 2, .. }), "{err:?}");
        assert!(err.to_string().starts_with("certificate 2 does not parse: "), "{err}");
        let bad_base64 = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let err = Trust::private_bundle(bad_base64.as_bytes()).unwrap_err();
        assert!(matches!(err, CaBundleError::BadPem { index: 1, .. }), "{err:?}");
        assert!(!Trust::default().is_private());
    }

    #[test]
    fn this_host_has_a_bundle() {
        // The test machines install ca-certificates (curl needs it); a host without one would warn.
        assert!(!host_roots().is_empty(), "no CA bundle at {BUNDLES:?}");
    }
}
