//! The remedy (`hint:` line) for a failed NA request, for every command that talks to an NA
//! (`gm admin`, `gm join`, `gm treaty`, `gm feed`; a refused TLS certificate points at `--ca-file`): what to check, naming the NA's base URL. Its own
//! file so that `cli/error.rs` can render it without importing a command.

use crate::client::ClientError;

/// The remedy for a failed NA request, for `gm admin` and `gm join` alike.
pub(crate) fn client_hint(err: &ClientError) -> Option<String> {
    let base = base_of(err.url());
    let hint = match err {
        ClientError::BadUrl { .. } => {
            "pass the NA base URL with its scheme, e.g. --na http://127.0.0.1:8443".to_string()
        }
        ClientError::Resolve { .. } | ClientError::Connect { .. } => {
            format!("is gm serve (or the NA) running at {base}? check --na and the port")
        }
        ClientError::Certificate { unknown_issuer: true, private_ca: false, .. } => format!(
            "the NA at {base} shows a certificate no CA of this host's bundle issued: if it comes from a private (self-hosted) CA, pass that CA's certificate (PEM) with --ca-file FILE"
        ),
        ClientError::Certificate { unknown_issuer: true, private_ca: true, .. } => format!(
            "no CA of --ca-file issued the certificate of the NA at {base}: pass the bundle of the CA that issued it, and check that --na names the NA you mean"
        ),
        ClientError::Certificate { .. } => format!(
            "the NA's TLS certificate at {base} must be fixed (renewed, or issued for the host name in --na); --ca-file only chooses which CAs are trusted"
        ),
        ClientError::Timeout { .. } => format!(
            "the NA at {base} did not answer in time: check that --na names the NA and that it is not overloaded"
        ),
        ClientError::Transport { .. } => {
            format!("check that --na names the NA at {base}, with the right scheme (http or https)")
        }
        ClientError::TooLarge { .. } | ClientError::BadResponse { .. } => {
            format!("check that --na names a genesis-mesh NA; {base} answered something else")
        }
        ClientError::Untrusted { .. } => format!(
            "the NA at {base} is not the one its own genesis names, or the answer was altered: check --na, and do not use this certificate"
        ),
        ClientError::Refused { status, url, .. } => return refusal_hint(*status, url),
    };
    Some(hint)
}

fn refusal_hint(status: u16, url: &str) -> Option<String> {
    let admin = url.contains("/admin/");
    let hint = match status {
        401 if admin => "check that --operator-key-id names a key of the NA's OPERATOR_PUBLIC_KEYS_JSON and --operator-key is its private key, that this clock is within 300 s of the NA's, and the signature version: gm signs v2 (accepted by gm and upstream 1.x); an upstream 0.16 NA accepts only --sig v1, and a gm NA configured with admin_signature = \"v2\" refuses it",
        401 => "check this machine's clock: the NA accepts requests within 300 s of its own time",
        403 if url.ends_with("/join") => "ask the operator for a new invite token (`gm admin invite`): tokens are single use and expire",
        403 => "the certificate is revoked, expired or unknown to this NA: enroll again with a new invite token (`gm join --force`)",
        300..=399 => "the NA answered with a redirect, which gm does not follow for signed requests: pass the final URL (often https://) with --na",
        404 if url.ends_with("/admin/policy/rollback") => "`gm admin policy history` lists the stored policy ids",
        429 => "the NA limits these requests per minute: wait a minute and try again",
        500..=599 => "the NA failed: its log has the details",
        _ => return None,
    };
    Some(hint.to_string())
}

/// `http://host:port` of a request URL.
fn base_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url.get(after_scheme..).and_then(|rest| rest.find('/')) {
        Some(i) => url.get(..after_scheme + i).unwrap_or(url),
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_point_at_the_na_base_url() {
        let err = ClientError::Connect {
            url: "http://127.0.0.1:18443/admin/invite".to_string(),
            detail: "connection refused".to_string(),
        };
        assert_eq!(
            client_hint(&err).unwrap(),
            "is gm serve (or the NA) running at http://127.0.0.1:18443? check --na and the port"
        );
        let refused = ClientError::Refused {
            method: "POST",
            url: "http://na/admin/invite".to_string(),
            status: 401,
            message: "Invalid admin signature".to_string(),
        };
        assert!(client_hint(&refused).unwrap().contains("--sig"));
    }

    #[test]
    fn a_refused_certificate_points_at_ca_file_when_a_ca_bundle_is_the_remedy() {
        let refused = |unknown_issuer, private_ca| ClientError::Certificate {
            url: "https://na.internal:8443/genesis".to_string(),
            problem: "it has expired".to_string(),
            unknown_issuer,
            private_ca,
        };
        let hint = client_hint(&refused(true, false)).unwrap();
        assert!(hint
            .starts_with("the NA at https://na.internal:8443 shows a certificate no CA of this host's bundle issued"));
        assert!(hint.ends_with("with --ca-file FILE"), "{hint}");
        assert!(client_hint(&refused(true, true)).unwrap().starts_with("no CA of --ca-file issued the certificate"));
        assert!(client_hint(&refused(false, true))
            .unwrap()
            .contains("must be fixed (renewed, or issued for the host name in --na)"));
        assert_eq!(
            refused(false, false).to_string(),
            "the TLS certificate of https://na.internal:8443/genesis is not trusted: it has expired"
        );
    }
}
