//! `gm incident bundle`: gathers the evidence of an incident window into one encrypted archive
//! (`ops::incident`). This file resolves the settings, captures the NA views (live when the NA
//! answers, else computed from the database by the same code that serves them) and records the
//! bundle in the ops ledger.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use argh::FromArgs;
use chrono::{DateTime, Utc};

use crate::client::options::{ClientOptions, Deadline};
use crate::client::{NaClient, Trust};
use crate::clock::{Clock, SystemClock};
use crate::json::{Map, Value};
use crate::model::genesis::Genesis;
use crate::model::timestamp::isoformat_utc;
use crate::model::SignedObject;
use crate::ops::incident::{bundle, BundleOptions, Fingerprint, View};
use crate::ops::ledger::{artifact, Ledger, LedgerKind, Outcome, Record, Span};
use crate::store::{OpenMode, Store};

use super::backup::{encryption_key, ops_error, settings};
use super::error::Error;
use super::flags::encrypting_command;
use super::na_options::load_ca_file;
use super::output::Output;

/// Incident response: evidence bundles.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "incident")]
pub(crate) struct IncidentArgs {
    #[argh(subcommand)]
    action: IncidentAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum IncidentAction {
    Bundle(BundleArgs),
}

encrypting_command! {
/// Bundle an incident window: redacted audit export, DB snapshot, ops ledger, NA views (/healthz,
/// /readyz, /connectome.json, /crl, /metrics) and config fingerprints, age-encrypted.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "bundle",
    example = "gm incident bundle --home /etc/gm --since 2026-11-20T00:00:00Z --output /var/lib/gm/incidents/inc-42.tar.gz.age --recipients-file /etc/gm/incident-recipients.txt",
    note = "The views come from the live NA (--na, default the configured bind address on loopback); when it does not answer within 3 s they are computed from the database and the manifest says so. No private key is copied: key files are fingerprinted (SHA-256, size). Decrypt with `age -d -i KEY F | tar xz`. Exit status: 0 written, 2 could not run (nothing is left behind)."
)]
pub(crate) struct BundleArgs {
    /// window start, RFC 3339, inclusive (required)
    #[argh(option)]
    since: String,
    /// window end, RFC 3339, exclusive (default: now)
    #[argh(option)]
    until: Option<String>,
    /// the archive to write (required)
    #[argh(option)]
    output: PathBuf,
    /// base URL of the live NA (default http://127.0.0.1:<configured port>)
    #[argh(option, long = "na")]
    na_url: Option<String>,
    /// PEM bundle of a private CA (self-hosted PKI): an https --na is trusted only if one of its certificates issued the NA's, and the host's CA roots are not used (default: the host's CA bundle)
    #[argh(option)]
    ca_file: Option<PathBuf>,
    /// do not contact the live NA; compute the views from the database
    #[argh(switch)]
    offline: bool,
    /// replace an existing archive
    #[argh(switch)]
    force: bool,
    /// database (default: the configured one)
    #[argh(option)]
    db_path: Option<PathBuf>,
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
}
}

/// Runs `gm incident …`.
pub(crate) fn run(args: IncidentArgs) -> Result<u8, Error> {
    match args.action {
        IncidentAction::Bundle(a) => run_bundle(a),
    }
}

fn parse_time(flag: &str, text: &str) -> Result<DateTime<Utc>, Error> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|e| {
        Error::usage(format!("invalid {flag} {text:?}: {e}"), "use RFC 3339 with an offset, e.g. 2026-11-20T00:00:00Z")
    })
}

fn run_bundle(args: BundleArgs) -> Result<u8, Error> {
    let (started, took) = (SystemClock.now(), Instant::now());
    let since = parse_time("--since", &args.since)?;
    let until = args.until.as_deref().map(|t| parse_time("--until", t)).transpose()?.unwrap_or(started);
    if since >= until {
        return Err(Error::usage(
            format!("empty window: --since {} is not before --until {}", isoformat_utc(since), isoformat_utc(until)),
            "--since must be earlier than --until (default now)",
        ));
    }
    let key = encryption_key(args.encryption_flags())?.ok_or_else(|| {
        Error::usage(
            "an incident bundle holds a database snapshot and must be encrypted",
            "pass --recipient age1…, --recipients-file FILE or --passphrase-file FILE",
        )
    })?;
    let trust = load_ca_file(args.ca_file.as_deref())?;
    let s = settings(args.home.as_deref(), args.db_path.clone())?;
    if !s.db_path.is_file() {
        return Err(Error::Store(crate::store::StoreError::Missing { path: s.db_path.clone() }));
    }
    let network_name = std::fs::read_to_string(&s.genesis_file)
        .ok()
        .and_then(|t| crate::json::parse_str(&t).ok())
        .and_then(|v| Genesis::from_value(&v).ok())
        .map_or_else(|| "unknown".to_string(), |g| g.network_name);
    let url = args.na_url.clone().unwrap_or_else(|| format!("http://127.0.0.1:{}", s.bind.port()));
    let (views, live_error) = if args.offline {
        (views_from_db(&s.db_path, started)?, Some("--offline: the live NA was not contacted".to_string()))
    } else {
        match live_views(&url, trust) {
            Ok(v) => (v, None),
            Err(problem) => {
                log::warn!(target: "gm::ops", "live NA at {url} not usable ({problem}); computing the views from the database");
                (views_from_db(&s.db_path, started)?, Some(format!("{url}: {problem}")))
            }
        }
    };
    let mut fingerprints = vec![
        Fingerprint { label: "genesis".into(), path: s.genesis_file.clone() },
        Fingerprint { label: "na_private_key".into(), path: s.na_key_file.clone() },
        Fingerprint { label: "config".into(), path: s.home.join("gm.toml") },
    ];
    if let crate::na::auth::operators::KeySource::File(p) = &s.operator_keys {
        fingerprints.push(Fingerprint { label: "operators".into(), path: p.clone() });
    }
    let opts = BundleOptions {
        db_path: s.db_path.clone(),
        ledger_path: crate::ops::ledger::path_beside(&s.db_path),
        network_name,
        since,
        until,
        output: args.output.clone(),
        force: args.force,
        key,
        level: 1,
        views,
        live_error,
        fingerprints,
    };
    let result = bundle(&opts, started);
    let (outcome, message) = match &result {
        Ok(r) => (Outcome::Ok, format!("{} audit events, {} bytes", r.event_count, r.size)),
        Err(e) => (Outcome::Failed, e.to_string()),
    };
    let sha = result.as_ref().ok().map(|r| r.sha256.clone());
    let details = result.as_ref().map_or(Value::Null, |r| r.manifest.clone());
    Ledger::beside(&s.db_path).record_logged(
        &Record {
            kind: LedgerKind::Incident,
            outcome,
            artifact: artifact(&args.output),
            sha256: sha,
            size: result.as_ref().ok().map(|r| r.size),
            message,
            details,
        },
        Span::ended_now(started, took),
    );
    let report = result.map_err(ops_error)?;
    let mut m = Map::new();
    m.insert("event_count", report.event_count);
    m.insert("live_error", opts.live_error.as_deref().map_or(Value::Null, Value::from));
    m.insert("path", report.path.display().to_string());
    m.insert("sha256", report.sha256.as_str());
    m.insert("size", report.size);
    let text = format!(
        "{}\n  {} audit events from {} to {}, views {}, sha256 {}",
        report.path.display(),
        report.event_count,
        isoformat_utc(since),
        isoformat_utc(until),
        opts.live_error.as_ref().map_or_else(|| format!("live from {url}"), |e| format!("from the database ({e})")),
        report.sha256
    );
    Output { json: args.json }.result(&text, &Value::Object(m));
    Ok(0)
}

const VIEWS: [(&str, &str); 5] = [
    ("/healthz", "healthz.json"),
    ("/readyz", "readyz.json"),
    ("/connectome.json", "connectome.json"),
    ("/crl", "crl.json"),
    ("/metrics", "metrics.txt"),
];

/// Every view from the live NA, or why it cannot be used (unreachable, or a view failed).
fn live_views(url: &str, trust: Trust) -> Result<Vec<View>, String> {
    let client = NaClient::new(url, ClientOptions { trust, ..ClientOptions::default() }).map_err(|e| e.to_string())?;
    let mut views = Vec::new();
    for (path, name) in VIEWS {
        let reply = client.get(&Deadline::after(Duration::from_secs(3)), path, &[]).map_err(|e| e.to_string())?;
        // `/readyz` answers 503 when not ready: that is evidence too.
        if reply.status != 200 && path != "/readyz" {
            return Err(format!("GET {path} answered {}", reply.status));
        }
        views.push(View { name: name.into(), bytes: reply.text.into_bytes(), source: format!("live {url}{path}") });
    }
    Ok(views)
}

/// The views the database alone can give, rendered by the code that serves them.
fn views_from_db(db: &Path, now: DateTime<Utc>) -> Result<Vec<View>, Error> {
    let store = Store::open(db, OpenMode::ReadOnly, &isoformat_utc(now))?;
    let na_err = |e: crate::na::error::NaError| Error::Refused {
        message: format!(
            "cannot compute the views from {}: {}",
            db.display(),
            match &e {
                crate::na::error::NaError::Internal { detail } => detail.clone(),
                other => other
                    .body()
                    .as_object()
                    .and_then(|m| m.get("error"))
                    .and_then(|m| m.as_str())
                    .unwrap_or("unknown")
                    .to_string(),
            }
        ),
        hint: None,
    };
    let connectome = crate::na::offline::connectome_json(&store, now).map_err(na_err)?;
    let metrics = crate::na::offline::metrics_text(&store, now).map_err(na_err)?;
    let crl = store.read(crate::store::crl::active)?;
    let mut views = vec![
        View { name: "connectome.json".into(), bytes: connectome, source: "database".into() },
        View {
            name: "metrics.txt".into(),
            bytes: metrics.into_bytes(),
            source: "database (NA gauges only; HTTP counters live in the server)".into(),
        },
    ];
    if let Some((_, json)) = crl {
        views.push(View { name: "crl.json".into(), bytes: json.into_bytes(), source: "database (active CRL)".into() });
    }
    Ok(views)
}
