//! `gm serve`: the drop-in NA server. Startup refuses, with a clear message and exit 2, when the
//! genesis root signature does not verify (`deviations.md` D11; an unsigned genesis only with
//! `--allow-unsigned-genesis`), the NA key does not match the genesis, the port is taken, or the
//! database is not SQLite or has a newer schema. Checks run before anything is created, so a refused
//! start changes no file. It prints the bound address, serves until SIGTERM/SIGINT, drains in-flight
//! requests and exits 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use argh::FromArgs;

use crate::clock::{Clock, FixedClock, SystemClock};
use crate::config::{self, Env, NaKeySource, ServeFlags, ServeSettings};
use crate::crypto::keys::load_signing_key;
use crate::crypto::signature::SignatureCheck;
use crate::files::lock::{try_lock_db, LockError};
use crate::http::{Server, ShutdownHandle};
use crate::json::Value;
use crate::model::fields::object;
use crate::model::genesis::Genesis;
use crate::model::timestamp::{isoformat_utc, ModelTime};
use crate::na::auth::admin::SignaturePolicy;
use crate::na::auth::operators::OperatorKeys;
use crate::na::publish::Backend;
use crate::na::remote_signer::RemoteSigner;
use crate::na::{Authority, Settings};
use crate::ops::runtime::KeyFacts;
use crate::store::{OpenMode, Store};

use super::error::Error;
use super::input::read_object;
use super::output::{notice, Output};

/// Serve the Network Authority API (drop-in for upstream genesis-mesh 0.16).
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "serve",
    example = "gm serve --home /etc/gm\ngm serve --home ./gm-sandbox --bind 127.0.0.1:0\nGENESIS_FILE=genesis.signed.json NA_PRIVATE_KEY_FILE=na.key DB_PATH=na.db gm serve",
    note = "Settings come from flags, then upstream's environment (GENESIS_FILE, NA_PRIVATE_KEY_FILE, DB_PATH, NA_KEY_ID, PORT, NA_PROXY_HOPS, NA_MAX_REQUEST_BYTES, NA_ADMIN_LEGACY_SIGNATURES, GENESIS_LOG_LEVEL, GENESIS_LOG_FORMAT), then HOME/gm.toml. The NA key: none with [signer] listen set (customer-held custody: the customer's gm signer run dials that address and signs), else --na-key or NA_PRIVATE_KEY_FILE, else the systemd credential $CREDENTIALS_DIRECTORY/na-key when systemd provides it, else [na] na_private_key_file. How it signs is recorded in gm-runtime.json beside the database for gm readiness. Defaults: bind 127.0.0.1:8443, genesis HOME/genesis.signed.json, key HOME/keys/na.key, database HOME/na.db, key id na-2025-q1, proxy hops 0, admin signatures v2 only (v1 and v2, as upstream 0.16, when HOME holds no gm.toml: a version-1 signature can be replayed on another admin route, so a warning is logged at start)."
)]
pub(crate) struct ServeArgs {
    /// gm home holding gm.toml, keys and databases (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// listen address (default 127.0.0.1:8443; PORT sets only the port)
    #[argh(option)]
    bind: Option<SocketAddr>,
    /// signed genesis file
    #[argh(option)]
    genesis: Option<PathBuf>,
    /// NA private key file
    #[argh(option)]
    na_key: Option<PathBuf>,
    /// SQLite database
    #[argh(option)]
    db_path: Option<PathBuf>,
    /// NA key id label written into signatures (default na-2025-q1)
    #[argh(option)]
    na_key_id: Option<String>,
    /// trusted reverse-proxy hops for X-Forwarded-* (default 0: use the TCP peer)
    #[argh(option)]
    trusted_proxy_hops: Option<usize>,
    /// serve HTTPS with this certificate chain (PEM; default: [tls] cert_file); reloaded on SIGHUP and change
    #[argh(option)]
    tls_cert: Option<PathBuf>,
    /// the private key of --tls-cert (PEM; default: [tls] key_file)
    #[argh(option)]
    tls_key: Option<PathBuf>,
    /// require a client certificate issued by these CAs (PEM) on the admin routes and /metrics (default: [tls] client_ca_file)
    #[argh(option)]
    tls_client_ca: Option<PathBuf>,
    /// start even though the genesis carries no root signature (development only)
    #[argh(switch)]
    allow_unsigned_genesis: bool,
    /// print the startup line as JSON
    #[argh(switch)]
    json: bool,
    /// testing only: freeze the server clock at this RFC 3339 instant (replaying upstream vectors)
    #[argh(option)]
    frozen_clock: Option<String>,
    /// do not run the [cron.jobs] of gm.toml in this process
    #[argh(switch)]
    no_scheduler: bool,
}

/// Runs `gm serve`.
pub(crate) fn run(args: ServeArgs) -> Result<u8, Error> {
    let env = Env::from_process();
    let home = config::resolve_home(args.home.as_deref(), &env);
    let file = config::load_file(&home)?;
    let flags = ServeFlags {
        bind: args.bind,
        genesis_file: args.genesis,
        na_key_file: args.na_key,
        db_path: args.db_path,
        na_key_id: args.na_key_id,
        proxy_hops: args.trusted_proxy_hops,
        allow_unsigned_genesis: args.allow_unsigned_genesis,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        tls_client_ca: args.tls_client_ca,
    };
    let settings = config::serve_settings(&home, &file, &env, &flags)?;
    let clock: Arc<dyn Clock> = match &args.frozen_clock {
        None => Arc::new(SystemClock),
        Some(text) => {
            let t = ModelTime::parse_model_str(text).map_err(|e| {
                Error::usage(
                    format!("invalid --frozen-clock {text:?}: {e}"),
                    "use an RFC 3339 time such as 2026-03-02T10:00:15Z",
                )
            })?;
            log::warn!(target: "gm::serve", "the clock is FROZEN at {text} (--frozen-clock is for tests and vector replays only)");
            Arc::new(FixedClock(t.to_utc()))
        }
    };
    serve_with_clock(settings, Output { json: args.json }, &[], clock, !args.no_scheduler)
}

/// Starts the NA with `settings` and the system clock.
pub(crate) fn serve(settings: ServeSettings, out: Output, next_steps: &[String]) -> Result<u8, Error> {
    serve_with_clock(settings, out, next_steps, Arc::new(SystemClock), true)
}

/// Starts the NA with `settings` and serves until a shutdown signal. `next_steps` are printed
/// after the startup line (quickstart uses them).
fn serve_with_clock(
    settings: ServeSettings,
    out: Output,
    next_steps: &[String],
    clock: Arc<dyn Clock>,
    run_scheduler: bool,
) -> Result<u8, Error> {
    // Invalid job config is refused before anything starts, naming the job.
    let mut scheduler = super::cron::load(Some(&settings.home))?;
    let genesis = load_genesis(&settings)?;
    warn_about_validity(&genesis, clock.as_ref());
    let (signing, key_facts, signer_listener) = signing_backend(&settings, &genesis)?;
    let operators = Arc::new(load_operator_keys(&settings)?);
    let tls = match &settings.tls {
        Some(files) => Some(Arc::new(super::serve_tls::TlsReloader::start(files.clone(), clock.now())?)),
        None => None,
    };
    let server = Server::bind_with_tls(settings.bind, settings.limits.clone(), tls.as_ref().map(|t| t.state()))?;
    log_open_file_limit(settings.limits.max_connections);
    let store = Store::open(&settings.db_path, OpenMode::Serve, &isoformat_utc(clock.now()))?;
    let lock = lock_database(&settings)?;
    if let Some(l) = &lock {
        log::debug!(target: "gm::serve", "holding the database lock {}", l.path().display());
    }
    let addr = server.local_addr();
    scheduler.served_at(addr, settings.tls.is_some());
    let authority = Authority::with_signing(
        Settings {
            na_key_id: settings.na_key_id.clone(),
            proxy_hops: settings.proxy_hops,
            readyz_shows_db_path: settings.readyz_shows_db_path,
            db_path_display: settings.db_path.display().to_string(),
            admin_signature: settings.admin_signature,
            supersede_grace: settings.supersede_grace,
            verify_limits: settings.verify_limits,
            auth_failures: settings.auth_failures,
            operator_client_certificates: settings.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        },
        genesis,
        signing,
        Arc::new(store),
        clock,
        Arc::clone(&operators),
    );
    let authority = Arc::new(authority);
    match (authority.remote_signer(), signer_listener) {
        (Some(remote), Some(listener)) => {
            // No signature can be had before the signer connects: the CRL is reconciled then.
            let (weak, db) = (Arc::downgrade(&authority), settings.db_path.clone());
            remote.on_first_session(Box::new(move || {
                if let Some(authority) = weak.upgrade() {
                    reconcile_crl_at_start(&authority, &db);
                }
            }));
            remote.start(listener).map_err(|e| Error::refused(e, "see the log above"))?;
        }
        _ => reconcile_crl_at_start(&authority, &settings.db_path),
    }
    let scheduling = run_scheduler && scheduler.settings.enabled && !scheduler.specs.is_empty();
    let runtime_path = crate::ops::runtime::path_beside(&settings.db_path);
    let record = runtime_record(&settings, key_facts, addr, scheduling, scheduler.specs.len());
    if settings.db_path.as_os_str() != ":memory:" {
        if let Err(e) = record.write(&runtime_path) {
            log::warn!(target: "gm::serve", "{e}: gm readiness will not see how this NA signs");
        }
    }
    let ops = super::ops_metrics::OpsMetrics {
        ledger: crate::ops::ledger::LedgerReader::beside(&settings.db_path),
        db_path: settings.db_path.clone(),
        jobs: scheduling.then(|| Arc::clone(&scheduler.recorder.metrics)),
        probe_textfiles: scheduler.probe_textfiles(),
        ledger_text: std::sync::Mutex::new(None),
    };
    let connections = server.stats();
    let key_source = key_source_metric(&record.na_key);
    authority.set_extra_metrics(Box::new(move || {
        let mut text = connection_metrics(&connections);
        text.push_str(&ops.render());
        text.push_str(&key_source);
        text
    }));
    let stop = install_signal_watch(server.shutdown_handle(), Arc::clone(&authority), tls.clone())?;
    let sched_stop = Arc::new(AtomicBool::new(false));
    let sched_thread = if scheduling {
        Some(super::cron::start(&scheduler, Arc::clone(&sched_stop))?)
    } else {
        if !scheduler.specs.is_empty() {
            log::info!(target: "gm::serve", "scheduler off (--no-scheduler or [cron] enabled = false): {} job(s) not run", scheduler.specs.len());
        }
        None
    };
    log_admin_signature_policy(&settings);
    // The redirect listener is bound before the startup line, so "listening on" means every
    // listener accepts (a port-80 conflict fails the start instead of surfacing later).
    let plain = match settings.tls.as_ref().and_then(|t| t.redirect_http) {
        Some(bind) => Some(Server::bind(bind, settings.limits.clone())?),
        None => None,
    };
    announce(out, addr, &settings, next_steps);
    log::info!(target: "gm::serve", "serving NA on http://{addr} (database {})", settings.db_path.display());
    match (&record.na_key.path, &record.na_key.origin) {
        (Some(path), Some(origin)) => log::info!(target: "gm::serve", "NA key from {path} ({origin})"),
        (_, origin) => log::info!(target: "gm::serve", "{}", origin.as_deref().unwrap_or("no NA key")),
    }
    let count = operators.current().len();
    if count == 0 {
        log::warn!(target: "gm::serve", "no operator public keys configured ({}): every admin request will fail with 401; add one with `gm operator add`", operators.describe());
    } else {
        log::info!(target: "gm::serve", "{count} operator key(s) from {}", operators.describe());
    }
    let redirect = match plain {
        Some(plain) => {
            let (handle, at) = (plain.shutdown_handle(), plain.local_addr());
            let redirector: Arc<dyn crate::http::Handler> =
                Arc::new(super::serve_tls::RedirectToHttps { https_port: addr.port() });
            let thread = std::thread::Builder::new()
                .name("gm-redirect".into())
                .spawn(move || plain.run(redirector))
                .map_err(|source| Error::Io { action: "start thread", path: PathBuf::from("gm-redirect"), source })?;
            log::info!(target: "gm::serve", "redirecting http://{at} to https://…:{}", addr.port());
            Some((handle, thread))
        }
        None => None,
    };
    let handler: Arc<dyn crate::http::Handler> = Arc::clone(&authority) as Arc<dyn crate::http::Handler>;
    let report = server.run(handler);
    if let Some((handle, thread)) = redirect {
        handle.shutdown();
        let _ = thread.join();
    }
    if crate::ops::runtime::RuntimeRecord::read(&runtime_path).is_ok_and(|r| r.pid == record.pid) {
        let _ = std::fs::remove_file(&runtime_path);
    }
    stop.store(true, Ordering::SeqCst);
    authority.flush_auth_failures(true);
    sched_stop.store(true, Ordering::SeqCst);
    if let Some(t) = sched_thread {
        // The runner parks up to 1 s between ticks; wake it to see the stop now.
        t.thread().unpark();
        log::info!(target: "gm::serve", "waiting for running jobs (up to {} s)", scheduler.settings.shutdown_grace.as_secs());
        let _ = t.join();
    }
    let report = report?;
    log::info!(
        target: "gm::serve",
        "stopped after {} connections and {} requests",
        report.connections_total,
        report.requests_total
    );
    Ok(0)
}

/// The NA's signing backend per [`config::NaKeySource`], what the runtime record says of it, and
/// (customer-held custody) the bound signer listener. A loaded key must be the genesis NA key.
fn signing_backend(
    settings: &ServeSettings,
    genesis: &Genesis,
) -> Result<(Backend, KeyFacts, Option<std::net::TcpListener>), Error> {
    let facts = |source: &str, path: Option<&std::path::Path>, origin: Option<String>, fingerprint: String| KeyFacts {
        source: source.to_string(),
        path: path.map(|p| p.display().to_string()),
        origin,
        signer_listen: None,
        host_key_fingerprint: None,
        signing_key_fingerprint: fingerprint,
    };
    let (path, source, origin, hint) = match &settings.na_key_source {
        NaKeySource::RemoteSigner { listen, host_key_file } => {
            let (host_key, created) = crate::signer::host_key::load_or_create(host_key_file).map_err(|e| {
                Error::refused(e, "the NA host key file must be readable by gm (or absent, to create it)")
            })?;
            let (pool, listener) = RemoteSigner::bind(*listen, host_key, genesis).map_err(|e| {
                Error::refused(e, "[signer] listen must be a free private address of this host, e.g. 10.0.0.5:8444")
            })?;
            let host = pool.host_public_key();
            let origin = format!(
                "customer-held custody: no NA key in this process; signatures come from the customer's `gm signer run`, which dials {} and must pin the NA host key {} (fingerprint {}, {}{})",
                pool.listen_addr(),
                host.to_b64(),
                host.fingerprint(),
                host_key_file.display(),
                if created { ", created now" } else { "" }
            );
            let mut f = facts("remote-signer", None, Some(origin), pool.signer_public_key().fingerprint());
            f.signer_listen = Some(pool.listen_addr().to_string());
            f.host_key_fingerprint = Some(host.fingerprint());
            return Ok((Backend::Remote(pool), f, Some(listener)));
        }
        NaKeySource::File { path, origin } => (
            path,
            "file",
            origin.to_string(),
            "point NA_PRIVATE_KEY_FILE / --na-key at the key whose public half is in the genesis",
        ),
        NaKeySource::Credential { name, path } => (
            path,
            "credential",
            format!("systemd credential {name}"),
            "the credential must hold the genesis NA key (systemd-creds encrypt --name=na-key keys/na.key ...)",
        ),
    };
    let na_key = load_signing_key(path)?;
    if na_key.public_key().to_b64() != genesis.network_authority.public_key {
        return Err(Error::refused(
            format!(
                "NA private key does not match genesis block: {} holds {}, genesis {} names {}",
                path.display(),
                na_key.public_key().to_b64(),
                settings.genesis_file.display(),
                genesis.network_authority.public_key
            ),
            hint,
        ));
    }
    let f = facts(source, Some(path), Some(origin), na_key.public_key().fingerprint());
    Ok((Backend::Local(Arc::new(na_key)), f, None))
}

/// How this NA signs, as a `/metrics` series: what `gm readiness` compares with `gm-runtime.json`,
/// so a record that does not describe the process answering on the port is caught.
fn key_source_metric(k: &KeyFacts) -> String {
    format!(
        "# HELP gm_na_key_source How this NA signs: the key source in use (file, credential or remote-signer) and the signing key's fingerprint.\n\
         # TYPE gm_na_key_source gauge\n\
         gm_na_key_source{{source=\"{}\",signing_key=\"{}\"}} 1\n",
        k.source, k.signing_key_fingerprint
    )
}

/// What `gm readiness` is told about this process.
fn runtime_record(
    settings: &ServeSettings,
    na_key: KeyFacts,
    addr: SocketAddr,
    scheduler: bool,
    jobs: usize,
) -> crate::ops::runtime::RuntimeRecord {
    crate::ops::runtime::RuntimeRecord {
        format: crate::ops::runtime::FORMAT.to_string(),
        pid: std::process::id(),
        started_at: isoformat_utc(chrono::Utc::now()),
        version: env!("CARGO_PKG_VERSION").to_string(),
        na_key,
        settings: crate::ops::runtime::SettingsFacts {
            genesis_file: settings.genesis_file.display().to_string(),
            db_path: settings.db_path.display().to_string(),
            bind: addr.to_string(),
            admin_signatures: match settings.admin_signature {
                SignaturePolicy::V2Only => "v2".to_string(),
                SignaturePolicy::V1AndV2 => "v1+v2".to_string(),
            },
            proxy_hops: settings.proxy_hops,
            scheduler,
            jobs,
            tls: settings.tls.as_ref().map(|t| crate::ops::runtime::TlsFacts {
                cert_file: t.cert.display().to_string(),
                key_file: t.key.display().to_string(),
                client_ca_file: t.client_ca.as_ref().map(|p| p.display().to_string()),
                redirect_http_bind: t.redirect_http.map(|a| a.to_string()),
            }),
        },
    }
}

fn load_operator_keys(settings: &ServeSettings) -> Result<OperatorKeys, Error> {
    let keys = OperatorKeys::load(settings.operator_keys.clone()).map_err(|e| {
        Error::refused(
            e.to_string(),
            "fix the keys (a JSON object {\"key id\": \"base64 public key\"}); `gm operator list` shows the file",
        )
    })?;
    Ok(keys)
}

fn load_genesis(settings: &ServeSettings) -> Result<Genesis, Error> {
    let genesis: Genesis = read_object(&settings.genesis_file)?;
    match genesis.check_root_signatures() {
        SignatureCheck::Valid => Ok(genesis),
        SignatureCheck::Unsigned if settings.allow_unsigned_genesis => {
            log::warn!(target: "gm::serve", "serving an UNSIGNED genesis ({}): development only; the pilot-readiness report fails on this", settings.genesis_file.display());
            Ok(genesis)
        }
        SignatureCheck::Unsigned => Err(Error::refused(
            format!("genesis {} carries no root signature", settings.genesis_file.display()),
            "sign it with `gm genesis sign`, or pass --allow-unsigned-genesis for development only",
        )),
        SignatureCheck::Invalid { index } => Err(Error::refused(
            format!(
                "genesis {} root signature {} does not verify with its root_public_key {}",
                settings.genesis_file.display(),
                index.map_or_else(|| "?".to_string(), |i| (i + 1).to_string()),
                genesis.root_public_key
            ),
            "the file was changed after signing or signed with another key; re-run the root ceremony (`gm genesis sign`)",
        )),
    }
}

/// D11: keep serving outside the NA validity window, but say so loudly. A clock before the genesis
/// `valid_from` or before this build (issue 8 item 5: a device booted without a real-time clock)
/// gets a warning that names the cause, since every request would otherwise fail as "too old" or
/// "not yet valid" with nothing pointing at the clock.
fn warn_about_validity(genesis: &Genesis, clock: &dyn Clock) {
    const CONSEQUENCE: &str = "until it is set, signed requests fail as too old and new certificates as not yet valid; set the clock (NTP or a real-time clock) and restart";
    let now = clock.now();
    let na = &genesis.network_authority;
    let to = na.valid_to.to_utc();
    if now < na.valid_from.to_utc() {
        log::warn!(target: "gm::serve", "the system clock ({}) is before the genesis NA valid_from ({}): the clock is probably wrong; {CONSEQUENCE}", isoformat_utc(now), na.valid_from.render_isoformat());
    }
    if let Some(built) = crate::clock::build_time().filter(|built| now < *built) {
        log::warn!(target: "gm::serve", "the system clock ({}) is before this gm build ({}): the clock is wrong (a device booted without a real-time clock or NTP?); {CONSEQUENCE}", isoformat_utc(now), isoformat_utc(built));
    }
    if to <= now {
        log::error!(target: "gm::serve", "CRITICAL: the genesis NA validity ended at {}; sign a new genesis", na.valid_to.render_isoformat());
    } else if to - now < chrono::Duration::days(30) {
        log::warn!(target: "gm::serve", "the genesis NA validity ends at {} (within 30 days); plan a new genesis", na.valid_to.render_isoformat());
    }
}

fn lock_database(settings: &ServeSettings) -> Result<Option<crate::files::lock::DbLock>, Error> {
    if settings.db_path.as_os_str() == ":memory:" {
        return Ok(None);
    }
    match try_lock_db(&settings.db_path) {
        Ok(lock) => Ok(Some(lock)),
        Err(LockError::Held { path }) => Err(Error::refused(
            format!(
                "database {} is already served by another gm (lock {} is held)",
                settings.db_path.display(),
                path.display()
            ),
            "stop the other `gm serve` first; upstream allows exactly one NA process per database",
        )),
        Err(LockError::Io { path, source }) => Err(Error::Io { action: "create lock file", path, source }),
    }
}

fn announce(out: Output, addr: SocketAddr, settings: &ServeSettings, next_steps: &[String]) {
    let scheme = if settings.tls.is_some() { "https" } else { "http" };
    let value = Value::Object(object(vec![
        ("db_path", Value::from(settings.db_path.display().to_string())),
        ("listening", Value::from(addr.to_string())),
        ("url", Value::from(format!("{scheme}://{addr}"))),
    ]));
    out.result(&format!("listening on {scheme}://{addr}"), &value);
    for step in next_steps {
        notice(step);
    }
}

/// SIGTERM and SIGINT set a flag that becomes a server shutdown; SIGHUP reloads the operator keys and
/// the TLS certificate, which is also reloaded when its files change (checked every 5 s).
/// The same thread runs the NA's periodic upkeep (nonce pruning, CRL freshness) every minute,
/// writes the summaries of closed auth-failure windows every second
/// ([`Authority::flush_auth_failures`]) and checks the WAL size every 10 s ([`Authority::bound_wal`]).
fn install_signal_watch(
    handle: ShutdownHandle,
    authority: Arc<Authority>,
    tls: Option<Arc<super::serve_tls::TlsReloader>>,
) -> Result<Arc<AtomicBool>, Error> {
    let signalled = Arc::new(AtomicBool::new(false));
    let hangup = Arc::new(AtomicBool::new(false));
    let register = |sig, flag: &Arc<AtomicBool>| {
        signal_hook::flag::register(sig, Arc::clone(flag)).map_err(|source| Error::Io {
            action: "install signal handler for",
            path: PathBuf::from(format!("signal {sig}")),
            source,
        })
    };
    register(signal_hook::consts::SIGTERM, &signalled)?;
    register(signal_hook::consts::SIGINT, &signalled)?;
    register(signal_hook::consts::SIGHUP, &hangup)?;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::clone(&stop);
    std::thread::Builder::new()
        .name("gm-signals".to_string())
        .spawn(move || {
            let mut last_upkeep = std::time::Instant::now();
            let mut last_wal_check = last_upkeep;
            let mut last_failure_flush = last_upkeep;
            authority.maintain();
            while !done.load(Ordering::SeqCst) {
                if signalled.load(Ordering::SeqCst) {
                    log::info!(target: "gm::serve", "shutdown signal received: finishing in-flight requests");
                    handle.shutdown();
                    return;
                }
                if hangup.swap(false, Ordering::SeqCst) {
                    log::info!(target: "gm::serve", "SIGHUP: reloading operator keys");
                    let _ = authority.operators().reload();
                    if let Some(t) = &tls {
                        t.reload("SIGHUP");
                    }
                }
                if let Some(t) = &tls {
                    t.reload_if_changed();
                }
                if last_upkeep.elapsed() >= Duration::from_secs(60) {
                    authority.maintain();
                    last_upkeep = std::time::Instant::now();
                }
                if last_failure_flush.elapsed() >= Duration::from_secs(1) {
                    authority.flush_auth_failures(false);
                    last_failure_flush = std::time::Instant::now();
                }
                if last_wal_check.elapsed() >= Authority::WAL_CHECK_EVERY {
                    authority.bound_wal();
                    last_wal_check = std::time::Instant::now();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .map_err(|source| Error::Io { action: "start thread", path: PathBuf::from("gm-signals"), source })?;
    Ok(stop)
}

/// Stores the first CRL when none exists (a served database always holds a signed CRL), and after
/// a restore lists the revocations carried over from the replaced database in a CRL whose sequence
/// is above the one that database had issued (nodes may hold it; the newest restore in the ops
/// ledger names it).
fn reconcile_crl_at_start(authority: &Authority, db_path: &std::path::Path) {
    use crate::ops::ledger::{details, Ledger, LedgerKind};
    let floor = Ledger::beside(db_path)
        .newest_ok(LedgerKind::Restore)
        .ok()
        .flatten()
        .and_then(|e| details(&e))
        .and_then(|d| d.get("crl_sequence_replaced")?.as_i64());
    match authority.reconcile_crl(floor) {
        Ok(Some((seq, added))) => log::warn!(
            target: "gm::serve",
            "re-issued the CRL as sequence {seq}: {added} revocation(s) carried over a restore, above the replaced database's sequence {}",
            floor.map_or("-".to_string(), |f| f.to_string())
        ),
        Ok(None) => {}
        Err(e) => log::error!(target: "gm::serve", "cannot reconcile the CRL at start: {e}"),
    }
}

/// Says at start which admin signature versions are accepted, and warns while version 1 is
/// (`DEVIATIONS.md` D6): its signature binds neither method, path nor this NA.
fn log_admin_signature_policy(settings: &ServeSettings) {
    let origin = settings.admin_signature_origin.describe();
    match settings.admin_signature {
        SignaturePolicy::V2Only => log::info!(target: "gm::serve", "admin signatures: version 2 only ({origin})"),
        SignaturePolicy::V1AndV2 => log::warn!(
            target: "gm::serve",
            "version-1 admin signatures are ACCEPTED ({origin}): a v1 signature binds neither method, path nor this NA, so anyone who sees one signed admin request can replay it within 300 s as another (a history read becomes an invite); once no upstream 0.16 operator CLI is in use, set [server] admin_signature to \"v2\" in gm.toml (or NA_ADMIN_LEGACY_SIGNATURES=reject)"
        ),
    }
}

/// The HTTP layer's connection counters as Prometheus text: what the cap, the per-address share and
/// idle eviction did (an operator sees a flood here before clients complain).
fn connection_metrics(stats: &crate::http::ServerStats) -> String {
    use std::fmt::Write as _;
    use std::sync::atomic::Ordering;
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    let mut out = String::with_capacity(768);
    out.push_str("# HELP gm_http_open_connections Client connections open now.\n");
    out.push_str("# TYPE gm_http_open_connections gauge\n");
    let _ = writeln!(out, "gm_http_open_connections {}", stats.open_connections.load(Ordering::Relaxed));
    out.push_str("# HELP gm_http_connections_total Client connections admitted since start.\n");
    out.push_str("# TYPE gm_http_connections_total counter\n");
    let _ = writeln!(out, "gm_http_connections_total {}", load(&stats.total_connections));
    out.push_str("# HELP gm_http_connections_refused_total Connections refused with 503, by the limit reached.\n");
    out.push_str("# TYPE gm_http_connections_refused_total counter\n");
    let _ = writeln!(
        out,
        "gm_http_connections_refused_total{{limit=\"max_connections\"}} {}",
        load(&stats.rejected_over_cap)
    );
    let _ = writeln!(
        out,
        "gm_http_connections_refused_total{{limit=\"max_connections_per_address\"}} {}",
        load(&stats.rejected_per_address)
    );
    out.push_str(
        "# HELP gm_http_idle_connections_evicted_total Idle keep-alive connections closed to admit a new one.\n",
    );
    out.push_str("# TYPE gm_http_idle_connections_evicted_total counter\n");
    let _ = writeln!(out, "gm_http_idle_connections_evicted_total {}", load(&stats.evicted_idle));
    out
}

/// Descriptors kept free beyond one per connection: the listener, the database and its WAL, logs, job
/// children's pipes.
const RESERVED_DESCRIPTORS: u64 = 64;

/// Raises the open-file limit toward the hard limit and says what it is; warns when `max_connections`
/// cannot fit, because `accept` then fails and new clients time out instead of getting a 503.
fn log_open_file_limit(max_connections: usize) {
    let needed = u64::try_from(max_connections).unwrap_or(u64::MAX).saturating_add(RESERVED_DESCRIPTORS);
    let shown = |v: Option<u64>| v.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
    let limit = match crate::http::raise_open_file_limit() {
        Ok(limit) => {
            if limit.now != limit.before {
                log::info!(
                    target: "gm::serve",
                    "open-file limit raised from {} to {} (hard limit {})",
                    shown(limit.before),
                    shown(limit.now),
                    shown(limit.hard)
                );
            }
            limit
        }
        Err((limit, err)) => {
            log::debug!(target: "gm::serve", "cannot raise the open-file limit: {err}");
            limit
        }
    };
    if !limit.allows(needed) {
        log::warn!(
            target: "gm::serve",
            "open-file limit {} is below max_connections ({max_connections}) + {RESERVED_DESCRIPTORS}: \
             connections past it fail to be accepted; raise LimitNOFILE= (systemd) or ulimit -n, or lower \
             max_connections",
            shown(limit.now)
        );
    }
}
