//! A throwaway certificate authority for `gm quickstart --tls`: a self-signed CA and one server
//! certificate it issued for the loopback names, both ECDSA P-256 (ring, the provider rustls already
//! uses), returned as PEM text. The CA's private key is dropped once the server certificate is signed,
//! so the sandbox holds no key that could issue another certificate.
//!
//! Must not: write files (the quickstart does) or be used for a production sovereign (a real NA's
//! certificate comes from the operator's PKI or ACME; README, "TLS").

use std::net::IpAddr;

use base64::Engine as _;
use chrono::{DateTime, Datelike as _, Duration, Utc};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};

/// What `issue` made, PEM encoded.
#[derive(Debug)]
pub(crate) struct SandboxTls {
    /// The CA certificate clients trust (`curl --cacert`, `gm … --ca-file`).
    pub ca_pem: String,
    /// The server certificate followed by the CA certificate: a complete chain for `[tls] cert_file`.
    pub chain_pem: String,
    /// The server's private key (PKCS#8) for `[tls] key_file`.
    pub key_pem: String,
}

/// Issues a CA named after `network_name` and a server certificate for `localhost`, 127.0.0.1, ::1
/// and `extra_ip` (the address served, when it is neither unspecified nor loopback), both valid
/// from a day before `now` for `valid_days`.
pub(crate) fn issue(
    network_name: &str,
    extra_ip: Option<IpAddr>,
    now: DateTime<Utc>,
    valid_days: i64,
) -> Result<SandboxTls, String> {
    let fail = |what: &str, e: rcgen::Error| format!("cannot make the sandbox's {what}: {e}");
    let day = |t: DateTime<Utc>| {
        let (month, day) = (u8::try_from(t.month()).unwrap_or(1), u8::try_from(t.day()).unwrap_or(1));
        rcgen::date_time_ymd(t.year(), month, day)
    };
    let not_before = day(now - Duration::days(1));
    let not_after = day(now + Duration::days(valid_days));

    let ca_key = KeyPair::generate().map_err(|e| fail("CA key", e))?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| fail("CA certificate", e))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(DnType::CommonName, format!("{network_name} sandbox CA (gm quickstart, throwaway)"));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key).map_err(|e| fail("CA certificate", e))?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().map_err(|e| fail("server key", e))?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).map_err(|e| fail("server certificate", e))?;
    let mut ips: Vec<IpAddr> = vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()];
    if let Some(ip) = extra_ip.filter(|ip| !ip.is_unspecified() && !ips.contains(ip)) {
        ips.push(ip);
    }
    leaf.subject_alt_names.extend(ips.into_iter().map(SanType::IpAddress));
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let leaf_cert = leaf.signed_by(&key, &issuer).map_err(|e| fail("server certificate", e))?;

    let ca_pem = pem("CERTIFICATE", ca_cert.der());
    Ok(SandboxTls {
        chain_pem: format!("{}{ca_pem}", pem("CERTIFICATE", leaf_cert.der())),
        ca_pem,
        key_pem: pem("PRIVATE KEY", &key.serialize_der()),
    })
}

/// `der` as a PEM block labelled `label`, 64 characters a line.
fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier as _;

    #[test]
    fn issues_a_chain_the_server_loads_and_a_client_trusting_only_the_ca_accepts() {
        let dir = std::env::temp_dir().join(format!("gm-sandbox-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let now = Utc::now();
        let made = issue("unit-mesh", Some("127.0.0.7".parse().unwrap()), now, 90).unwrap();
        let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
        std::fs::write(&cert, &made.chain_pem).unwrap();
        std::fs::write(&key, &made.key_pem).unwrap();
        let loaded = crate::crypto::tls_files::load(&cert, &key, None, now).unwrap();
        assert_eq!(loaded.chain_len, 2, "leaf then CA");
        let days = (loaded.not_after - now).num_days();
        assert!((89..=90).contains(&days), "valid for 90 days, got {days}");

        // The leaf verifies against the CA alone, for every loopback name and the extra address.
        use rustls::pki_types::pem::PemObject as _;
        let ca = rustls::pki_types::CertificateDer::from_pem_slice(made.ca_pem.as_bytes()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            std::sync::Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let chain: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(made.chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        let unix = rustls::pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(now.timestamp()).unwrap(),
        ));
        for name in ["localhost", "127.0.0.1", "::1", "127.0.0.7"] {
            let server_name = rustls::pki_types::ServerName::try_from(name).unwrap();
            verifier.verify_server_cert(&chain[0], &chain[1..], &server_name, &[], unix).unwrap();
        }
        let other = rustls::pki_types::ServerName::try_from("example.org").unwrap();
        assert!(verifier.verify_server_cert(&chain[0], &chain[1..], &other, &[], unix).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_call_makes_a_new_ca() {
        let now = Utc::now();
        let a = issue("m", None, now, 30).unwrap();
        let b = issue("m", None, now, 30).unwrap();
        assert_ne!(a.ca_pem, b.ca_pem);
        assert!(a.key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    }
}
