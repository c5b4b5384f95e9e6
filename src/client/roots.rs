//! The CA roots gm's outbound TLS trusts: the host's CA bundle (the file every Linux distribution
//! keeps current with its package updates), read once per process. A static binary that embedded
//! Mozilla's roots (webpki-roots) carried ~100 KB of certificates that age without updates; the
//! host's bundle is the same list, maintained.
//!
//! Must not: read the environment or any configuration (a private CA for self-hosted PKI comes in as
//! an explicit file, issue 18). A host without a bundle gets an empty store: every https request
//! then fails verification ("unknown issuer"), and a warning names the paths looked at.

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

    #[test]
    fn this_host_has_a_bundle() {
        // The test machines install ca-certificates (curl needs it); a host without one would warn.
        assert!(!host_roots().is_empty(), "no CA bundle at {BUNDLES:?}");
    }
}
