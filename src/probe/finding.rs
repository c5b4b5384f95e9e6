//! The probe's shared types: what a run checks ([`ProbeOptions`], [`TlsThresholds`]), which check
//! ([`CheckName`]) and what it finds ([`Outcome`], [`Finding`], [`CheckResult`]), plus the request
//! helpers every check shares (`GET` with latency, expecting a 200 JSON object, one-line excerpts).
//! Their own file so that the plain HTTP checks (`checks.rs`), the signature checks (`trust.rs`),
//! the TLS check (`tls.rs`), the Nagios verdicts (`nagios.rs`) and the report (`report.rs`) all
//! depend on it rather than on each other or on `mod.rs`. It must import no other probe file.

use std::time::{Duration, Instant};

use crate::client::{Deadline, NaClient, Reply};
use crate::crypto::keys::PublicKey;

/// Longest body excerpt shown in a reason.
const EXCERPT_CHARS: usize = 80;

/// What a check found, before thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything the check asks for holds.
    Pass,
    /// It works but needs attention (certificate expiring soon, root key not pinned).
    Warn,
    /// The check failed.
    Fail,
    /// The check could not decide (e.g. the CRL check could not get the NA key).
    Unknown,
}

impl Outcome {
    /// Lowercase name for the JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
            Outcome::Unknown => "unknown",
        }
    }
}

/// What one probe run checks, built once from the command line.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The NA base URL (`https://na.example.org`), without a trailing `/`.
    pub target: String,
    /// The checks to run, in display order, without duplicates.
    pub checks: Vec<CheckName>,
    /// The pinned root public key the genesis must be signed by; `None` reports the genesis check
    /// as WARNING (not pinned).
    pub root_public_key: Option<PublicKey>,
    /// Deadline of each check (all checks run in parallel, so also of the whole run). Defaults to
    /// 10 s.
    pub timeout: Duration,
    /// TLS certificate expiry thresholds.
    pub tls: TlsThresholds,
    /// The CA certificates an `https` target is verified against, by every check (the TLS check
    /// included). Defaults to the host's CA bundle.
    pub trust: crate::client::Trust,
}

/// Days before the server certificate expires at which the TLS check turns WARNING or CRITICAL.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TlsThresholds {
    /// WARNING below this many days. Defaults to 14.
    pub warn_days: u32,
    /// CRITICAL below this many days. Defaults to 7.
    pub critical_days: u32,
}

impl Default for TlsThresholds {
    fn default() -> TlsThresholds {
        TlsThresholds { warn_days: 14, critical_days: 7 }
    }
}

/// One check of the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckName {
    /// `GET /healthz`: 200 and `{"status":"ok"}`.
    Healthz,
    /// `GET /readyz`: 200 and `status` = `ready`.
    Readyz,
    /// `GET /metrics`: Prometheus text with the five upstream gauges.
    Metrics,
    /// `GET /connectome.json`: JSON with the required keys.
    Connectome,
    /// `GET /genesis`: root signatures verify with the pinned root key.
    Genesis,
    /// `GET /crl`: signed by the genesis NA key, not past `next_update`.
    Crl,
    /// The `https` server certificate: trusted, and days until it expires.
    Tls,
}

impl CheckName {
    /// Every check, in display order.
    pub(crate) const ALL: [CheckName; 7] = [
        CheckName::Healthz,
        CheckName::Readyz,
        CheckName::Metrics,
        CheckName::Connectome,
        CheckName::Genesis,
        CheckName::Crl,
        CheckName::Tls,
    ];

    /// The name used in `--check`, the table, the JSON and the metric labels.
    pub(crate) fn name(self) -> &'static str {
        match self {
            CheckName::Healthz => "healthz",
            CheckName::Readyz => "readyz",
            CheckName::Metrics => "metrics",
            CheckName::Connectome => "connectome",
            CheckName::Genesis => "genesis",
            CheckName::Crl => "crl",
            CheckName::Tls => "tls",
        }
    }

    /// Parses a `--check` name.
    pub(crate) fn from_name(name: &str) -> Option<CheckName> {
        CheckName::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// The raw result of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// Which check.
    pub check: CheckName,
    /// What it found.
    pub outcome: Outcome,
    /// One line saying why, for people.
    pub reason: String,
    /// Time of the check's main request (or TLS handshake); `None` when it never got an answer.
    pub latency: Option<Duration>,
    /// TLS check only: days until the server certificate expires (negative once expired).
    pub cert_expiry_days: Option<f64>,
}

/// A finding: outcome and reason.
pub(crate) type Finding = (Outcome, String);

/// `GET path`, recording its latency; a transport failure becomes a failed finding.
pub(crate) fn get(
    client: &NaClient,
    deadline: &Deadline,
    path: &str,
    latency: &mut Option<Duration>,
) -> Result<Reply, Finding> {
    let started = Instant::now();
    let reply = client.get(deadline, path, &[]).map_err(|e| (Outcome::Fail, e.to_string()))?;
    *latency = Some(started.elapsed());
    Ok(reply)
}

/// `GET path` expecting 200 with a JSON object body.
pub(crate) fn get_object(
    client: &NaClient,
    deadline: &Deadline,
    path: &str,
    latency: &mut Option<Duration>,
) -> Result<Reply, Finding> {
    let reply = get(client, deadline, path, latency)?;
    expect_200(&reply)?;
    if reply.body.as_object().is_none() {
        return Err(fail(format!("{path} is not a JSON object: {}", excerpt(&reply.text))));
    }
    Ok(reply)
}

/// A 200 answer, else a failed finding naming the status and upstream's message.
pub(crate) fn expect_200(reply: &Reply) -> Result<(), Finding> {
    if reply.status == 200 {
        Ok(())
    } else {
        Err(fail(format!("HTTP {}: {}", reply.status, reply.error_message())))
    }
}

/// A failed finding.
pub(crate) fn fail(reason: String) -> Finding {
    (Outcome::Fail, reason)
}

/// A body on one short line, for a reason.
pub(crate) fn excerpt(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut shown: String = one_line.chars().filter(|c| !c.is_control()).take(EXCERPT_CHARS).collect();
    if one_line.chars().count() > EXCERPT_CHARS {
        shown.push('…');
    }
    if shown.is_empty() {
        "(empty body)".to_string()
    } else {
        shown
    }
}
