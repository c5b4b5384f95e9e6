//! What a check finds ([`Outcome`], [`Finding`]) and the request helpers every check shares
//! (`GET` with latency, expecting a 200 JSON object, one-line excerpts). Their own file so that the
//! plain HTTP checks (`checks.rs`), the signature checks (`trust.rs`) and the TLS check (`tls.rs`)
//! all depend on it rather than on each other.

use std::time::{Duration, Instant};

use crate::client::{Deadline, NaClient, Reply};

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
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
            Outcome::Unknown => "unknown",
        }
    }
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
