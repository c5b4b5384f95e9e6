//! `gm probe`: the external uptime probe (`operations.md` §4.4), a Nagios plugin. Flags become a
//! [`ProbeOptions`] once, here; `probe::checks` runs the checks, `probe::nagios` applies
//! thresholds and state, `probe::report` renders. Exit codes are Nagios' (0 OK, 1 WARNING,
//! 2 CRITICAL, 3 UNKNOWN), unlike gm's other commands: every failure of the probe itself (usage,
//! state file, textfile) is UNKNOWN, so a broken probe never reads as OK or as an NA outage.

use std::path::{Path, PathBuf};
use std::time::Duration;

use argh::FromArgs;

use crate::clock::{Clock, SystemClock};
use crate::crypto::keys::{load_public_key, PublicKey};
use crate::probe::checks::{client_for, run_checks, CheckName};
use crate::probe::deadman::ping;
use crate::probe::nagios::{judge, ProbeState};
use crate::probe::report::ProbeReport;
use crate::probe::{ProbeOptions, TlsThresholds};

use super::error::Error;
use super::na_options::load_ca_file;
use super::output::Output;

/// Longest accepted `--timeout`: a probe that runs every minute must finish well within it.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// Longest wait for one dead-man ping attempt.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Probe a Network Authority from outside: status, bodies, signatures, TLS expiry, latency.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "probe",
    example = "gm probe --na https://na.example.org --root-public-key offline/root.pub\ngm probe --na https://na.internal:8443 --ca-file /etc/gm/ca.pem --check healthz,tls --json\ngm probe --na https://na.example.org --root-public-key Y37Q…8PY= --state-file /var/lib/gm-probe/state.json --prom-textfile /var/lib/node_exporter/textfile/gm_probe.prom --ping-url-file /etc/gm-probe/ping-url",
    note = "Checks: healthz (200, body {{\"status\":\"ok\"}}), readyz (200, status ready), metrics (Prometheus text with the five genesis_mesh_na_* gauges), connectome (JSON with the required keys), genesis (root signatures verify with --root-public-key; without it the check is WARNING: not pinned), crl (signed by the genesis NA key, next_update not passed), tls (https targets: certificate trusted by the host's CA bundle, or with --ca-file by that private CA bundle only, as every other check of an https target; days until expiry). Exit status (Nagios): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (usage, state file or textfile errors, a check that could not decide). With --state-file, upstream's thresholds apply: healthz CRITICAL after 2 consecutive failures (WARNING before), readyz and the others after 1, metrics WARNING after failing for 5 minutes; --fail-after N replaces them with N. The dead-man URL (--ping-url, or --ping-url-file to keep it out of the process list) is fetched only when every check passed, trusting the host's CA bundle (--ca-file applies to the NA only)."
)]
pub(crate) struct ProbeArgs {
    /// NA base URL, http:// or https:// (required)
    #[argh(option, long = "na")]
    target: String,
    /// comma-separated checks: healthz,readyz,metrics,connectome,genesis,crl,tls (default: all; tls only for https)
    #[argh(option)]
    check: Option<String>,
    /// pinned root public key: base64, or an upstream public key file (default: none, genesis is WARNING)
    #[argh(option)]
    root_public_key: Option<String>,
    /// deadline of each check; checks run in parallel (default 10s; e.g. 500ms, 30s, 1m)
    #[argh(option, default = "String::from(\"10s\")")]
    timeout: String,
    /// print the report as JSON
    #[argh(switch)]
    json: bool,
    /// also write the report as a node_exporter textfile (atomic: tmp + rename)
    #[argh(option)]
    prom_textfile: Option<PathBuf>,
    /// dead-man switch URL, fetched (GET, one retry) only when every check passed; visible to
    /// every local user in the process list, so prefer --ping-url-file on shared hosts
    #[argh(option)]
    ping_url: Option<String>,
    /// file holding the dead-man switch URL (its first line), e.g. a systemd credential:
    /// --ping-url-file %d/ping-url with LoadCredential=ping-url:/etc/gm-probe/ping-url
    #[argh(option)]
    ping_url_file: Option<PathBuf>,
    /// JSON file of consecutive failures per check, enabling the alert thresholds
    #[argh(option)]
    state_file: Option<PathBuf>,
    /// CRITICAL only after N consecutive failures, for every check (needs --state-file)
    #[argh(option)]
    fail_after: Option<u32>,
    /// TLS: WARNING when the certificate expires in fewer days (default 14)
    #[argh(option, default = "14")]
    tls_warn_days: u32,
    /// TLS: CRITICAL when the certificate expires in fewer days (default 7)
    #[argh(option, default = "7")]
    tls_critical_days: u32,
    /// PEM bundle of a private CA (self-hosted PKI): every check of an https --na, the tls check included, trusts only its certificates, not the host's CA roots (default: the host's CA bundle)
    #[argh(option)]
    ca_file: Option<PathBuf>,
}

/// Runs `gm probe`; every error is UNKNOWN (exit 3).
pub(crate) fn run(args: ProbeArgs) -> Result<u8, Error> {
    run_probe(args).map_err(Error::probe_unknown)
}

fn run_probe(args: ProbeArgs) -> Result<u8, Error> {
    let options = probe_options(&args)?;
    let ping_url = ping_url(&args)?;
    let shown_target = client_for(&options.target, options.timeout, &options.trust)?.base_url().to_string();
    let mut state = match &args.state_file {
        Some(path) => Some(ProbeState::load(path, &shown_target)?),
        None => None,
    };
    let clock = SystemClock;
    let results = run_checks(&options, &clock);
    let now = clock.now();
    let verdicts = judge(results, state.as_mut(), args.fail_after, now);
    let mut report = ProbeReport::new(shown_target, verdicts, now);
    if let Some(url) = ping_url.as_deref().filter(|_| report.all_passed()) {
        report.ping = Some(ping(url, options.timeout.min(PING_TIMEOUT)));
    }
    Output { json: args.json }.result(&report.to_text(), &report.to_json());
    if let (Some(state), Some(path)) = (&state, &args.state_file) {
        state.save(path)?;
    }
    if let Some(path) = &args.prom_textfile {
        report.write_textfile(path)?;
    }
    Ok(report.status.exit_code())
}

/// The dead-man URL from --ping-url or --ping-url-file (never both), checked to be http(s).
fn ping_url(args: &ProbeArgs) -> Result<Option<String>, Error> {
    let url = match (&args.ping_url, &args.ping_url_file) {
        (Some(_), Some(_)) => {
            return Err(Error::usage(
                "--ping-url and --ping-url-file both name the dead-man URL",
                "keep one: --ping-url-file keeps the URL out of the process list",
            ))
        }
        (Some(url), None) => url.clone(),
        (None, Some(path)) => read_ping_url_file(path)?,
        (None, None) => return Ok(None),
    };
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(if args.ping_url.is_some() {
            Error::usage("--ping-url must be an http:// or https:// URL", "e.g. --ping-url https://hc-ping.com/<uuid>")
        } else {
            Error::usage(
                "the URL in --ping-url-file must be an http:// or https:// URL",
                "the file holds one line: the dead-man URL, e.g. https://hc-ping.com/<uuid>",
            )
        });
    }
    Ok(Some(url))
}

/// Longest accepted --ping-url-file: a URL, not a document.
const MAX_PING_URL_FILE: u64 = 4096;

/// The first non-empty line of `path`, trimmed (the URL is a secret: it is never shown).
fn read_ping_url_file(path: &Path) -> Result<String, Error> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PING_URL_FILE + 1).read_to_string(&mut text))
        .map_err(Error::io("read the dead-man URL from", path))?;
    if text.len() as u64 > MAX_PING_URL_FILE {
        return Err(Error::usage(
            format!("--ping-url-file {} is longer than {MAX_PING_URL_FILE} bytes", path.display()),
            "the file holds one line: the dead-man URL, e.g. https://hc-ping.com/<uuid>",
        ));
    }
    text.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string).ok_or_else(|| {
        Error::usage(
            format!("--ping-url-file {} is empty", path.display()),
            "write the dead-man URL into it, one line, e.g. https://hc-ping.com/<uuid>",
        )
    })
}

/// Validates every flag before anything runs.
fn probe_options(args: &ProbeArgs) -> Result<ProbeOptions, Error> {
    if args.target.trim().is_empty() {
        return Err(Error::usage(
            "no NA to probe: --na is empty",
            "pass --na https://na.example.org (gm-probe.service takes it from GM_PROBE_TARGET in /etc/gm-probe/env)",
        ));
    }
    let timeout = parse_timeout(&args.timeout)?;
    let trust = load_ca_file(args.ca_file.as_deref())?;
    client_for(&args.target, timeout, &trust)
        .map_err(|e| Error::usage(e.to_string(), "pass --na http(s)://host[:port], e.g. https://na.example.org"))?;
    let target = args.target.trim().trim_end_matches('/').to_string();
    let is_https = target.to_ascii_lowercase().starts_with("https://");
    let checks = parse_checks(args.check.as_deref(), is_https)?;
    if args.fail_after.is_some() && args.state_file.is_none() {
        return Err(Error::usage(
            "--fail-after needs --state-file",
            "consecutive failures are counted in the state file: add --state-file /var/lib/gm-probe/state.json",
        ));
    }
    if args.fail_after == Some(0) {
        return Err(Error::usage(
            "--fail-after must be at least 1",
            "--fail-after 1 reports CRITICAL on the first failure",
        ));
    }
    if args.tls_critical_days > args.tls_warn_days {
        return Err(Error::usage(
            format!(
                "--tls-critical-days {} is more than --tls-warn-days {}",
                args.tls_critical_days, args.tls_warn_days
            ),
            "the critical threshold must not exceed the warning one, e.g. --tls-warn-days 14 --tls-critical-days 7",
        ));
    }
    Ok(ProbeOptions {
        target,
        checks,
        root_public_key: args.root_public_key.as_deref().map(parse_root_key).transpose()?,
        timeout,
        tls: TlsThresholds { warn_days: args.tls_warn_days, critical_days: args.tls_critical_days },
        trust,
    })
}

fn parse_checks(list: Option<&str>, is_https: bool) -> Result<Vec<CheckName>, Error> {
    let Some(list) = list else {
        return Ok(CheckName::ALL.into_iter().filter(|&c| c != CheckName::Tls || is_https).collect());
    };
    let mut checks = Vec::new();
    for name in list.split(',').map(str::trim) {
        let check = CheckName::from_name(name).ok_or_else(|| {
            Error::usage(
                format!("unknown check {name:?} in --check"),
                "choose from healthz, readyz, metrics, connectome, genesis, crl, tls (comma-separated)",
            )
        })?;
        if check == CheckName::Tls && !is_https {
            return Err(Error::usage(
                "the tls check needs an https:// --na",
                "drop tls from --check, or probe the https URL",
            ));
        }
        if !checks.contains(&check) {
            checks.push(check);
        }
    }
    Ok(checks)
}

/// `10s`, `500ms`, `1m`, or a plain number of seconds.
fn parse_timeout(text: &str) -> Result<Duration, Error> {
    let text = text.trim();
    let (number, unit_ms) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000)
    } else {
        (text, 1000)
    };
    let timeout = number
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_ms))
        .map(Duration::from_millis)
        .filter(|d| !d.is_zero() && *d <= MAX_TIMEOUT);
    timeout.ok_or_else(|| {
        Error::usage(
            format!("invalid --timeout {text:?}: expected a whole number of ms, s or m, from 1ms to 5m"),
            "e.g. --timeout 10s or --timeout 500ms",
        )
    })
}

/// A base64 key, or an upstream public key file holding one.
fn parse_root_key(text: &str) -> Result<PublicKey, Error> {
    let path = Path::new(text);
    if path.is_file() {
        return Ok(load_public_key(path)?);
    }
    PublicKey::from_b64(text.trim()).map_err(|e| {
        Error::usage(
            format!("--root-public-key is neither a key file nor a base64 Ed25519 public key: {e}"),
            "pass the root_public_key of the genesis you trust, or the root .pub file from the ceremony",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_with_units_and_bounds() {
        assert_eq!(parse_timeout("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_timeout("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_timeout("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_timeout("3").unwrap(), Duration::from_secs(3));
        for bad in ["0s", "-1s", "1h", "6m", "ten", ""] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checks_default_to_all_and_tls_only_for_https() {
        assert_eq!(parse_checks(None, false).unwrap().len(), 6);
        assert_eq!(parse_checks(None, true).unwrap().last(), Some(&CheckName::Tls));
        assert_eq!(
            parse_checks(Some("readyz, healthz,readyz"), false).unwrap(),
            [CheckName::Readyz, CheckName::Healthz]
        );
        assert!(parse_checks(Some("tls"), false).is_err());
        assert!(parse_checks(Some("health"), false).is_err());
    }
}
