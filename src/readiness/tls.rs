//! The `tls` readiness check (issue 18): the NA serves HTTPS itself, or declares a proxy in front
//! of it that does; the certificate it serves stays valid for at least [`MIN_DAYS`] more days; its
//! chain is complete. "Complete" means: with an `https` `--na`, the probe's handshake verified the
//! chain the server sent (rustls with the host's CA bundle or `--ca-file`: a missing intermediate
//! fails it); without one, inside the chain file each certificate's issuer is the next one's
//! subject and the last is self-issued (a root) or issued by a CA of that same trust. The check's
//! evidence says which proof was used.
//!
//! Must not: read files or the network ([`super::gather`] does), or import `checks.rs` (which
//! calls it).

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::crypto::cert_facts::CertFacts;

use super::report::{Check, Status};

/// The check id.
pub(crate) const ID: &str = "tls";
const TITLE: &str = "HTTPS served (or a TLS proxy declared), certificate valid 14 more days, chain complete";

/// A served certificate fails this many days before its `notAfter` (certbot renews at 30).
pub(crate) const MIN_DAYS: f64 = 14.0;

/// What to do about a certificate near or past its end.
pub(crate) const FIX_RENEW: &str = "renew the certificate into [tls] cert_file (certbot renew, or your CA): gm serve reloads it when the file changes or on SIGHUP (systemctl reload gm)";
/// What to do about an incomplete chain.
pub(crate) const FIX_CHAIN: &str = "put the full chain in [tls] cert_file: the leaf first, then each intermediate (certbot's fullchain.pem, not cert.pem); gm serve reloads it on change or SIGHUP; for a private CA, gm readiness --ca-file CA.pem";
/// What to do about plain HTTP without a proxy.
pub(crate) const FIX_PLAIN: &str = "serve HTTPS: [tls] cert_file and key_file in gm.toml (or gm serve --tls-cert/--tls-key; docs/tls.md), or put a TLS-terminating proxy from deploy/ (nginx, caddy) in front and set [server] trusted_proxy_hops = 1";
const FIX_NOT_YET: &str = "check the system clock (timedatectl), or install a certificate that is valid now";
const FIX_PROXY: &str = "renew the proxy's certificate and serve its full chain (certbot's fullchain.pem), then reload the proxy; for a private CA, gm readiness --ca-file CA.pem";
const FIX_UNREADABLE: &str =
    "point [tls] cert_file (or gm serve --tls-cert) at the PEM certificate chain, leaf first, and restart gm serve";

/// The probe's handshake with an `https` target.
#[derive(Debug, Clone)]
pub(crate) struct Handshake {
    /// The chain verified and the certificate has ≥ 14 days left (the probe's pass).
    pub ok: bool,
    /// The probe's reason.
    pub reason: String,
    /// Days until the presented certificate's `notAfter`.
    pub days_left: Option<f64>,
}

/// What the check reads.
#[derive(Debug, Clone)]
pub(crate) struct TlsEvidence {
    /// Whose word the settings are: the running server's record, or the configuration.
    pub decided_by: String,
    /// Trusted proxy hops in effect.
    pub proxy_hops: usize,
    /// Built-in TLS: the chain file and its certificates, leaf first (or why they cannot be read);
    /// `None` when the NA serves plain HTTP.
    pub served: Option<(PathBuf, Result<Vec<CertFacts>, String>)>,
    /// Subjects (DER contents) of the CAs that may end a chain that leaves its root out.
    pub anchors: Vec<Vec<u8>>,
    /// Where those CAs come from, in words.
    pub anchors_from: String,
    /// The probe target.
    pub probe_target: String,
    /// The probe's handshake, when the target is `https`.
    pub handshake: Option<Handshake>,
}

/// Judges `t` at `now`.
pub(crate) fn check(t: &TlsEvidence, now: DateTime<Utc>) -> Check {
    match &t.served {
        Some((path, chain)) => served(t, path, chain, now),
        None => proxied(t),
    }
}

fn fail(reason: impl Into<String>, fix: &str) -> Check {
    Check::new(ID, TITLE, Status::Fail, reason).fix(fix)
}

/// Days from `now` to `until`, down to a tenth (13.96 days is 13.9, never a rounded-up 14.0).
pub(crate) fn days_left(now: DateTime<Utc>, until: DateTime<Utc>) -> f64 {
    ((until - now).num_seconds() as f64 / 86_400.0 * 10.0).floor() / 10.0
}

/// Why a leaf is not valid long enough at `now` (with what to do), or `None`.
pub(crate) fn validity_problem(leaf: &CertFacts, now: DateTime<Utc>) -> Option<(String, &'static str)> {
    let days = days_left(now, leaf.not_after);
    if now < leaf.not_before {
        Some((format!("the certificate is not valid before {}", leaf.not_before.to_rfc3339()), FIX_NOT_YET))
    } else if leaf.not_after <= now {
        Some((format!("the certificate expired at {}", leaf.not_after.to_rfc3339()), FIX_RENEW))
    } else if ((leaf.not_after - now).num_seconds() as f64) < MIN_DAYS * 86_400.0 {
        Some((
            format!(
                "the certificate expires in {days:.1} days ({}), under the {MIN_DAYS}-day minimum",
                leaf.not_after.to_rfc3339()
            ),
            FIX_RENEW,
        ))
    } else {
        None
    }
}

/// How the chain in the file is complete, or the gap: each certificate's issuer is the next one's
/// subject, and the last is self-issued or issued by a CA whose subject is in `anchors`.
pub(crate) fn linkage(chain: &[CertFacts], anchors: &[Vec<u8>], anchors_from: &str) -> Result<String, String> {
    for (i, pair) in chain.windows(2).enumerate() {
        if let [cert, next] = pair {
            if cert.issuer != next.subject {
                return Err(format!(
                    "certificate {} ({}) is not issued by certificate {} ({}) after it: the chain is out of order or misses an intermediate",
                    i + 1,
                    cert.describe(),
                    i + 2,
                    next.describe()
                ));
            }
        }
    }
    let Some(last) = chain.last() else { return Err("the file holds no certificate".to_string()) };
    let n = chain.len();
    if last.self_issued() {
        Ok(format!("issuer/subject linkage in the file: {n} certificate(s) up to the self-issued {}", last.describe()))
    } else if anchors.contains(&last.issuer) {
        Ok(format!(
            "issuer/subject linkage in the file: {n} certificate(s) up to {}, issued by {} of {anchors_from}",
            last.describe(),
            last.issuer_common_name.as_deref().unwrap_or("a CA")
        ))
    } else {
        Err(format!(
            "the chain is incomplete: it ends at {} whose issuer ({}) is neither in the file nor a CA of {anchors_from}",
            last.describe(),
            last.issuer_common_name.as_deref().unwrap_or("no common name")
        ))
    }
}

fn served(
    t: &TlsEvidence,
    path: &std::path::Path,
    chain: &Result<Vec<CertFacts>, String>,
    now: DateTime<Utc>,
) -> Check {
    let file = path.display().to_string();
    let chain = match chain {
        Ok(c) => c,
        Err(why) => {
            return fail(format!("no evidence: cannot read the certificate chain {file}: {why}"), FIX_UNREADABLE)
                .with("cert_file", file)
        }
    };
    let Some(leaf) = chain.first() else {
        return fail(format!("{file} holds no certificate"), FIX_UNREADABLE).with("cert_file", file);
    };
    let names = if leaf.alt_names.is_empty() { leaf.describe() } else { leaf.alt_names.join(", ") };
    let days = days_left(now, leaf.not_after);
    let mut problems: Vec<(String, &str)> = validity_problem(leaf, now).into_iter().collect();
    let (proof, chain_ok) = match &t.handshake {
        Some(h) if h.ok => {
            (format!("verified by the TLS handshake with {} ({})", t.probe_target, t.anchors_from), true)
        }
        Some(h) => {
            problems.push((format!("the TLS handshake with {}: {}", t.probe_target, h.reason), FIX_CHAIN));
            (format!("the TLS handshake with {} did not verify", t.probe_target), false)
        }
        None => match linkage(chain, &t.anchors, &t.anchors_from) {
            Ok(how) => (how, true),
            Err(gap) => {
                problems.push((gap.clone(), FIX_CHAIN));
                (format!("issuer/subject linkage in the file: {gap}"), false)
            }
        },
    };
    let mut c = if problems.is_empty() {
        Check::new(
            ID,
            TITLE,
            Status::Pass,
            format!("serves HTTPS ({}): {names}, {days:.1} days left; chain complete, {proof}", t.decided_by),
        )
    } else {
        let reason = problems.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>().join("; ");
        let mut fixes: Vec<&str> = problems.iter().map(|(_, f)| *f).collect();
        fixes.dedup();
        fail(format!("{file}: {reason}"), &fixes.join("; "))
    };
    c = c
        .with("serving", "https (built-in)")
        .with("decided_by", &t.decided_by)
        .with("cert_file", file)
        .with("subject", leaf.describe())
        .with("names", names)
        .with("not_after", leaf.not_after.to_rfc3339())
        .with("days_left", format!("{days:.1}"))
        .with("chain_length", chain.len().to_string())
        .with("chain_check", proof)
        .with("chain_complete", chain_ok.to_string());
    c
}

fn proxied(t: &TlsEvidence) -> Check {
    let hops = t.proxy_hops;
    if hops == 0 {
        return fail(
            format!(
                "gm serve speaks plain HTTP ({}) and no TLS-terminating proxy is declared (trusted proxy hops 0)",
                t.decided_by
            ),
            FIX_PLAIN,
        )
        .with("serving", "plain http")
        .with("decided_by", &t.decided_by)
        .with("proxy_hops", "0");
    }
    let base = format!("plain HTTP behind {hops} trusted proxy hop(s) ({}): TLS is the proxy's job", t.decided_by);
    let c = match &t.handshake {
        None => Check::new(
            ID,
            TITLE,
            Status::Pass,
            format!("{base}; pass --na https://… to check the proxy's certificate too"),
        ),
        Some(h) if h.ok => Check::new(
            ID,
            TITLE,
            Status::Pass,
            format!("{base}; its certificate at {} is verified: {}", t.probe_target, h.reason),
        ),
        Some(h) => {
            fail(format!("{base}, and its certificate at {} does not pass: {}", t.probe_target, h.reason), FIX_PROXY)
        }
    };
    let c = c
        .with("serving", "plain http behind a proxy")
        .with("decided_by", &t.decided_by)
        .with("proxy_hops", hops.to_string());
    match t.handshake.as_ref().and_then(|h| h.days_left) {
        Some(d) => c.with("days_left", format!("{d:.1}")),
        None => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn cert(issuer: &str, subject: &str, not_after: &str) -> CertFacts {
        CertFacts {
            issuer: issuer.as_bytes().to_vec(),
            subject: subject.as_bytes().to_vec(),
            common_name: Some(subject.to_string()),
            issuer_common_name: Some(issuer.to_string()),
            alt_names: vec![format!("{subject}.example.org")],
            not_before: at("2026-01-01T00:00:00Z"),
            not_after: at(not_after),
        }
    }

    const NOW: &str = "2026-06-01T00:00:00Z";

    fn evidence(served: Option<Vec<CertFacts>>, hops: usize, handshake: Option<Handshake>) -> TlsEvidence {
        TlsEvidence {
            decided_by: "as the running gm serve (pid 1) recorded".into(),
            proxy_hops: hops,
            served: served.map(|c| (PathBuf::from("/etc/gm/tls/fullchain.pem"), Ok(c))),
            anchors: vec![b"Public Root".to_vec()],
            anchors_from: "the host's CA bundle".into(),
            probe_target: "https://na.example.org".into(),
            handshake,
        }
    }

    #[test]
    fn the_leaf_must_be_valid_now_and_for_14_more_days() {
        let now = at(NOW);
        assert!(validity_problem(&cert("i", "na", "2026-06-15T00:00:01Z"), now).is_none());
        let (why, fix) = validity_problem(&cert("i", "na", "2026-06-14T23:00:00Z"), now).unwrap();
        assert!(why.starts_with("the certificate expires in 13.9 days"), "{why}");
        assert_eq!(fix, FIX_RENEW);
        let (why, _) = validity_problem(&cert("i", "na", "2026-06-11T00:00:00Z"), now).unwrap();
        assert!(why.contains("expires in 10.0 days") && why.contains("under the 14-day minimum"), "{why}");
        let (why, _) = validity_problem(&cert("i", "na", "2026-05-31T00:00:00Z"), now).unwrap();
        assert!(why.starts_with("the certificate expired at 2026-05-31"), "{why}");
        let mut future = cert("i", "na", "2027-01-01T00:00:00Z");
        future.not_before = at("2026-06-02T00:00:00Z");
        assert_eq!(validity_problem(&future, now).unwrap().1, FIX_NOT_YET);
        assert_eq!(days_left(now, at("2026-06-15T12:00:00Z")), 14.5);
    }

    #[test]
    fn a_chain_is_complete_when_linked_up_to_a_root_or_a_trusted_ca() {
        let anchors = vec![b"Public Root".to_vec()];
        let leaf = cert("Intermediate", "na", "2027-01-01T00:00:00Z");
        let intermediate = cert("Public Root", "Intermediate", "2030-01-01T00:00:00Z");
        let root = cert("Public Root", "Public Root", "2035-01-01T00:00:00Z");
        let ok = |c: &[CertFacts]| linkage(c, &anchors, "the host's CA bundle");
        assert!(ok(&[leaf.clone(), intermediate.clone()]).unwrap().contains("issued by Public Root"));
        assert!(ok(&[leaf.clone(), intermediate.clone(), root.clone()]).unwrap().contains("self-issued Public Root"));
        assert!(ok(std::slice::from_ref(&root)).is_ok(), "a self-signed certificate is its own chain");
        let gap = ok(std::slice::from_ref(&leaf)).unwrap_err();
        assert!(gap.contains("ends at na whose issuer (Intermediate) is neither in the file"), "{gap}");
        let order = ok(&[intermediate.clone(), leaf.clone()]).unwrap_err();
        assert!(order.starts_with("certificate 1 (Intermediate) is not issued by certificate 2 (na)"), "{order}");
        assert!(ok(&[]).is_err());
    }

    #[test]
    fn built_in_tls_passes_with_names_and_days_and_fails_with_the_fix() {
        let now = at(NOW);
        let chain = vec![
            cert("Intermediate", "na", "2026-09-01T00:00:00Z"),
            cert("Public Root", "Intermediate", "2030-01-01T00:00:00Z"),
        ];
        let c = check(&evidence(Some(chain.clone()), 0, None), now);
        assert_eq!(c.status, Status::Pass, "{}", c.reason);
        assert!(
            c.reason.contains("na.example.org, 92.0 days left; chain complete, issuer/subject linkage"),
            "{}",
            c.reason
        );
        assert_eq!(c.evidence["days_left"], "92.0");
        // The handshake is the proof when there is one; a failed one fails the chain.
        let verified = Handshake { ok: true, reason: "certificate trusted".into(), days_left: Some(92.0) };
        let c = check(&evidence(Some(chain[..1].to_vec()), 0, Some(verified)), now);
        assert_eq!(c.status, Status::Pass, "{}", c.reason);
        assert!(c.evidence["chain_check"].starts_with("verified by the TLS handshake with https://na.example.org"));
        let refused =
            Handshake { ok: false, reason: "certificate not trusted: unknown issuer".into(), days_left: Some(92.0) };
        let c = check(&evidence(Some(chain[..1].to_vec()), 0, Some(refused)), now);
        assert_eq!((c.status, c.fix.as_deref()), (Status::Fail, Some(FIX_CHAIN)));
        // Leaf only, no handshake: the file's linkage decides.
        let c = check(&evidence(Some(chain[..1].to_vec()), 0, None), now);
        assert_eq!(c.status, Status::Fail);
        assert!(c.reason.contains("the chain is incomplete"), "{}", c.reason);
        // Ten days left, and the chain incomplete: both said, both fixes.
        let short = vec![cert("Intermediate", "na", "2026-06-11T00:00:00Z")];
        let c = check(&evidence(Some(short), 0, None), now);
        assert!(c.reason.contains("expires in 10.0 days") && c.reason.contains("incomplete"), "{}", c.reason);
        assert_eq!(c.fix.as_deref(), Some(format!("{FIX_RENEW}; {FIX_CHAIN}").as_str()));
        let mut e = evidence(None, 0, None);
        e.served = Some((PathBuf::from("x.pem"), Err("no such file".into())));
        assert_eq!(check(&e, now).fix.as_deref(), Some(FIX_UNREADABLE));
    }

    #[test]
    fn plain_http_passes_only_behind_a_declared_proxy() {
        let now = at(NOW);
        let c = check(&evidence(None, 0, None), now);
        assert_eq!((c.status, c.fix.as_deref()), (Status::Fail, Some(FIX_PLAIN)));
        assert!(c.reason.contains("trusted proxy hops 0"), "{}", c.reason);
        let c = check(&evidence(None, 1, None), now);
        assert_eq!(c.status, Status::Pass);
        assert!(c.reason.contains("TLS is the proxy's job"), "{}", c.reason);
        let short = Handshake { ok: false, reason: "certificate expires in 9 days".into(), days_left: Some(9.5) };
        let c = check(&evidence(None, 2, Some(short)), now);
        assert_eq!((c.status, c.fix.as_deref()), (Status::Fail, Some(FIX_PROXY)));
        assert_eq!(c.evidence["days_left"], "9.5");
    }
}
