//! The probe's checks (`operations.md` §4.4): each runs in its own named thread under the same
//! per-check deadline, so a silent NA costs one timeout, not one per check. A check returns a raw
//! [`Outcome`] with a one-line reason and the latency of its main request; thresholds and exit
//! codes are [`super::nagios`]'s business.
//!
//! This file holds the fan-out and the plain HTTP checks (`/healthz`, `/readyz`, `/metrics`,
//! `/connectome.json`); signatures live in [`super::trust`], certificate expiry in [`super::tls`].

use std::collections::BTreeMap;
use std::time::Duration;

use crate::client::{ClientError, ClientOptions, Deadline, NaClient, Trust};
use crate::clock::Clock;
use crate::json::Value;

use super::finding::{excerpt, expect_200, fail, get, get_object, Finding, ProbeOptions};
pub use super::finding::{CheckName, CheckResult, Outcome};

/// `/healthz` body upstream serves (`na-wire.md` §10.1), without its final newline.
pub(crate) const HEALTHZ_BODY: &str = "{\"status\":\"ok\"}";

/// Upstream's five `/metrics` gauges (`na-wire.md` §10.2).
pub(crate) const UPSTREAM_GAUGES: [&str; 5] = [
    "genesis_mesh_na_issued_certs_total",
    "genesis_mesh_na_active_nodes",
    "genesis_mesh_na_revoked_certs_total",
    "genesis_mesh_na_crl_sequence",
    "genesis_mesh_na_policy_versions_total",
];

/// Keys `/connectome.json` always carries (`na-wire.md` §10.4).
const CONNECTOME_KEYS: [&str; 6] = [
    "summary",
    "sovereigns",
    "recognition_edges",
    "active_treaties",
    "revoked_trust_material",
    "revocation_blast_radius",
];

/// Counts inside the connectome `summary`.
const CONNECTOME_SUMMARY_KEYS: [&str; 6] = [
    "active_edge_count",
    "imported_revocation_count",
    "recognition_edge_count",
    "revoked_edge_count",
    "revoked_trust_material_count",
    "sovereign_count",
];

/// The client the checks use: every request bounded by `timeout`, an `https` target verified
/// against `trust`. Fails only on a bad URL.
pub(crate) fn client_for(target: &str, timeout: Duration, trust: &Trust) -> Result<NaClient, ClientError> {
    let options = ClientOptions {
        connect_timeout: timeout,
        read_timeout: timeout,
        write_timeout: timeout,
        total_timeout: timeout,
        trust: trust.clone(),
        ..ClientOptions::default()
    };
    NaClient::new(target, options)
}

/// Runs every check of `options` in parallel and returns their results in `options.checks` order.
pub(crate) fn run_checks(options: &ProbeOptions, clock: &dyn Clock) -> Vec<CheckResult> {
    let client = match client_for(&options.target, options.timeout, &options.trust) {
        Ok(client) => client,
        Err(e) => {
            let reason = e.to_string();
            return options.checks.iter().map(|&c| unknown_result(c, reason.clone())).collect();
        }
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = options
            .checks
            .iter()
            .map(|&check| {
                let client = client.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("probe-{}", check.name()))
                    .spawn_scoped(scope, move || run_one(check, &client, options, clock));
                (check, spawned)
            })
            .collect();
        handles
            .into_iter()
            .map(|(check, spawned)| match spawned {
                Ok(handle) => handle.join().unwrap_or_else(|_| {
                    unknown_result(check, "the check panicked: this is a gm bug, please report it".to_string())
                }),
                Err(e) => unknown_result(check, format!("cannot start the check thread: {e}")),
            })
            .collect()
    })
}

/// `GET target/path`'s body when it answers 200 within `timeout`, else why not (readiness reads
/// `/metrics` through this, since it may not use the client itself).
pub(crate) fn fetch_text(target: &str, path: &str, timeout: Duration, trust: &Trust) -> Result<String, String> {
    let client = client_for(target, timeout, trust).map_err(|e| e.to_string())?;
    let reply = client.get(&Deadline::after(timeout), path, &[]).map_err(|e| e.to_string())?;
    match reply.status {
        200 => Ok(reply.text),
        status => Err(format!("{path} answered HTTP {status}")),
    }
}

fn unknown_result(check: CheckName, reason: String) -> CheckResult {
    CheckResult { check, outcome: Outcome::Unknown, reason, latency: None, cert_expiry_days: None }
}

fn run_one(check: CheckName, client: &NaClient, options: &ProbeOptions, clock: &dyn Clock) -> CheckResult {
    let deadline = Deadline::after(options.timeout);
    let mut latency = None;
    let mut cert_expiry_days = None;
    let (outcome, reason) = match check {
        CheckName::Healthz => check_healthz(client, &deadline, &mut latency),
        CheckName::Readyz => check_readyz(client, &deadline, &mut latency),
        CheckName::Metrics => check_metrics(client, &deadline, &mut latency),
        CheckName::Connectome => check_connectome(client, &deadline, &mut latency),
        CheckName::Genesis => super::trust::check_genesis(client, &deadline, options, &mut latency),
        CheckName::Crl => super::trust::check_crl(client, &deadline, options, clock, &mut latency),
        CheckName::Tls => {
            let found =
                super::tls::check_certificate(&options.target, options.timeout, options.tls, &options.trust, clock);
            latency = found.latency;
            cert_expiry_days = found.days_left;
            (found.outcome, found.reason)
        }
    };
    CheckResult { check, outcome, reason, latency, cert_expiry_days }
}

fn check_healthz(client: &NaClient, deadline: &Deadline, latency: &mut Option<Duration>) -> Finding {
    let reply = match get(client, deadline, "/healthz", latency) {
        Ok(reply) => reply,
        Err(finding) => return finding,
    };
    if let Err(finding) = expect_200(&reply) {
        return finding;
    }
    let body = reply.text.strip_suffix('\n').unwrap_or(&reply.text);
    if body != HEALTHZ_BODY {
        return fail(format!("expected body {HEALTHZ_BODY}, found {}", excerpt(&reply.text)));
    }
    (Outcome::Pass, format!("200 {HEALTHZ_BODY}"))
}

fn check_readyz(client: &NaClient, deadline: &Deadline, latency: &mut Option<Duration>) -> Finding {
    let reply = match get_object(client, deadline, "/readyz", latency) {
        Ok(reply) => reply,
        Err(finding) => return finding,
    };
    match reply.body.as_object().and_then(|m| m.get("status")).and_then(Value::as_str) {
        Some("ready") => (Outcome::Pass, "200 status ready".to_string()),
        Some(other) => fail(format!("status is {other:?}, expected \"ready\"")),
        None => fail("the body has no status string".to_string()),
    }
}

fn check_metrics(client: &NaClient, deadline: &Deadline, latency: &mut Option<Duration>) -> Finding {
    let reply = match get(client, deadline, "/metrics", latency) {
        Ok(reply) => reply,
        Err(finding) => return finding,
    };
    if let Err(finding) = expect_200(&reply) {
        return finding;
    }
    let exposition = match parse_exposition(&reply.text) {
        Ok(exposition) => exposition,
        Err(problem) => return fail(format!("not Prometheus text: {problem}")),
    };
    let missing: Vec<&str> = UPSTREAM_GAUGES.iter().copied().filter(|g| !exposition.samples.contains_key(*g)).collect();
    if !missing.is_empty() {
        return fail(format!("missing {}", missing.join(", ")));
    }
    let not_gauges: Vec<&str> =
        UPSTREAM_GAUGES.iter().copied().filter(|g| exposition.types.get(*g).is_some_and(|t| t != "gauge")).collect();
    if !not_gauges.is_empty() {
        return fail(format!("not typed gauge: {}", not_gauges.join(", ")));
    }
    // Customer-held custody: an NA without a connected signer cannot sign anything.
    if exposition.samples.get("gm_signer_connected").is_some_and(|n| *n < 1.0) {
        return fail(
            "gm_signer_connected 0: no remote signer is connected, every signing route answers 503".to_string(),
        );
    }
    let sequence = exposition.samples.get("genesis_mesh_na_crl_sequence").copied().unwrap_or_default();
    (
        Outcome::Pass,
        format!("{} series, the 5 upstream gauges present, crl_sequence {sequence}", exposition.samples.len()),
    )
}

fn check_connectome(client: &NaClient, deadline: &Deadline, latency: &mut Option<Duration>) -> Finding {
    let reply = match get_object(client, deadline, "/connectome.json", latency) {
        Ok(reply) => reply,
        Err(finding) => return finding,
    };
    let Some(map) = reply.body.as_object() else {
        return fail("the body is not a JSON object".to_string());
    };
    let missing: Vec<&str> = CONNECTOME_KEYS.iter().copied().filter(|k| !map.contains_key(k)).collect();
    if !missing.is_empty() {
        return fail(format!("missing keys {}", missing.join(", ")));
    }
    let Some(summary) = map.get("summary").and_then(Value::as_object) else {
        return fail("summary is not an object".to_string());
    };
    let bad: Vec<&str> = CONNECTOME_SUMMARY_KEYS
        .iter()
        .copied()
        .filter(|k| summary.get(k).and_then(Value::as_i64).is_none_or(|n| n < 0))
        .collect();
    if !bad.is_empty() {
        return fail(format!("summary lacks counts {}", bad.join(", ")));
    }
    let count = |k: &str| summary.get(k).and_then(Value::as_i64).unwrap_or_default();
    (Outcome::Pass, format!("{} sovereigns, {} active edges", count("sovereign_count"), count("active_edge_count")))
}

/// A parsed Prometheus text exposition: the value of each unlabelled sample (the last one wins)
/// and the declared `# TYPE` of each family.
#[derive(Debug, Default)]
struct Exposition {
    samples: BTreeMap<String, f64>,
    types: BTreeMap<String, String>,
}

/// Parses the Prometheus text format 0.0.4: `# HELP`/`# TYPE` comments and `name{labels} value
/// [timestamp]` samples. The first malformed line fails with its line number.
fn parse_exposition(text: &str) -> Result<Exposition, String> {
    let mut exposition = Exposition::default();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let at = |problem: &str| format!("line {}: {problem}", index + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            if let ["TYPE", name, kind] = words.as_slice() {
                if !matches!(*kind, "counter" | "gauge" | "histogram" | "summary" | "untyped") {
                    return Err(at(&format!("unknown metric type {kind:?}")));
                }
                exposition.types.insert((*name).to_string(), (*kind).to_string());
            }
            continue;
        }
        let (name, value) = parse_sample(line).map_err(at)?;
        exposition.samples.insert(name.to_string(), value);
    }
    if exposition.samples.is_empty() {
        return Err("no samples".to_string());
    }
    Ok(exposition)
}

/// One sample line: the metric name (labels skipped) and its value.
fn parse_sample(line: &str) -> Result<(&str, f64), &'static str> {
    let name_end = line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(line.len());
    let name = line.get(..name_end).unwrap_or_default();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("expected a metric name");
    }
    let mut rest = line.get(name_end..).unwrap_or_default();
    if rest.starts_with('{') {
        let close = label_set_end(rest).ok_or("unterminated label set")?;
        rest = rest.get(close + 1..).unwrap_or_default();
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("a sample without a value")?;
    let value: f64 = value.parse().map_err(|_| "the value is not a number")?;
    if let Some(timestamp) = fields.next() {
        timestamp.parse::<i64>().map_err(|_| "the timestamp is not an integer")?;
    }
    if fields.next().is_some() {
        return Err("unexpected text after the value");
    }
    Ok((name, value))
}

/// Index of the `}` closing the label set that `text` starts with (quoted values may hold `}`).
fn label_set_end(text: &str) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GM_METRICS: &str =
        "# HELP genesis_mesh_na_issued_certs_total Total certificates issued by the Network Authority.\n\
        # TYPE genesis_mesh_na_issued_certs_total gauge\ngenesis_mesh_na_issued_certs_total 2\n\
        # TYPE genesis_mesh_na_active_nodes gauge\ngenesis_mesh_na_active_nodes 1\n\
        genesis_mesh_na_revoked_certs_total 0\ngenesis_mesh_na_crl_sequence 3\n\
        genesis_mesh_na_policy_versions_total 1\ngm_backup_age_seconds{job=\"nightly\",note=\"a}b\"} 12.5 1700000000\n";

    #[test]
    fn exposition_with_labels_and_timestamps_parses() {
        let e = parse_exposition(GM_METRICS).unwrap();
        assert_eq!(e.samples.get("genesis_mesh_na_crl_sequence"), Some(&3.0));
        assert_eq!(e.samples.get("gm_backup_age_seconds"), Some(&12.5));
        assert_eq!(e.types.get("genesis_mesh_na_active_nodes").map(String::as_str), Some("gauge"));
        assert!(UPSTREAM_GAUGES.iter().all(|g| e.samples.contains_key(*g)));
    }

    #[test]
    fn malformed_exposition_names_the_line() {
        assert_eq!(parse_exposition("a 1\nb two\n").unwrap_err(), "line 2: the value is not a number");
        assert_eq!(parse_exposition("{\"status\":\"ok\"}").unwrap_err(), "line 1: expected a metric name");
        assert_eq!(parse_exposition("a{x=\"1\" 1\n").unwrap_err(), "line 1: unterminated label set");
        assert_eq!(parse_exposition("# TYPE a thing\na 1\n").unwrap_err(), "line 1: unknown metric type \"thing\"");
        assert_eq!(parse_exposition("# only comments\n").unwrap_err(), "no samples");
        assert!(parse_exposition("a NaN\nb +Inf\n").is_ok());
    }

    #[test]
    fn check_names_round_trip() {
        for c in CheckName::ALL {
            assert_eq!(CheckName::from_name(c.name()), Some(c));
        }
        assert_eq!(CheckName::from_name("HEALTHZ"), None);
    }

    #[test]
    fn excerpt_is_one_short_line() {
        assert_eq!(excerpt("  a\n b  "), "a b");
        assert_eq!(excerpt(""), "(empty body)");
        assert!(excerpt(&"x".repeat(500)).ends_with('…'));
    }
}
