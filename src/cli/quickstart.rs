//! `gm quickstart`: a sandbox sovereign in one command. In an empty (or missing) home it creates root,
//! NA and operator keys, a root-signed genesis and `gm.toml`, then serves on 127.0.0.1:8443 and
//! prints the next commands to try; its log shows warnings and errors only unless
//! `GENESIS_LOG_LEVEL` is set. The root and operator private keys go to `offline/`, with a
//! warning: in a real sovereign they never live on the NA host.

use std::path::{Path, PathBuf};

use argh::FromArgs;

use crate::clock::SystemClock;
use crate::config::{self, Env, ServeFlags};
use crate::crypto::keys::SigningKey;
use crate::model::SignedObject;

use super::error::Error;
use super::flags::DEFAULT_OPERATOR_KEY_ID;
use super::genesis::{build, NewGenesis};
use super::input::{object_file_text, write_public_file};
use super::keygen::write_key_pair;
use super::output::{notice, Output};

/// Create a sandbox sovereign (if the home is empty) and serve it.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "quickstart",
    example = "gm quickstart\ngm quickstart --home /tmp/sandbox --bind 127.0.0.1:18443\ngm quickstart --home ./gm-sandbox --no-serve\ngm quickstart --home ./gm-tls-sandbox --tls",
    note = "The home defaults to $GM_HOME, else ./gm-sandbox (never /etc/gm: a sandbox is not a production sovereign). An existing sandbox (a home with gm.toml) is served as it is. --tls makes a throwaway CA (tls/ca.pem; its key is not kept) and a 90-day certificate for localhost, 127.0.0.1 and ::1, and serves HTTPS; clients trust it with curl --cacert or gm's --ca-file."
)]
pub(crate) struct QuickstartArgs {
    /// sandbox folder (default $GM_HOME, else ./gm-sandbox)
    #[argh(option)]
    home: Option<PathBuf>,
    /// network name of a new sandbox (default sandbox-mesh)
    #[argh(option, default = "String::from(\"sandbox-mesh\")")]
    network_name: String,
    /// listen address (default 127.0.0.1:8443)
    #[argh(option)]
    bind: Option<std::net::SocketAddr>,
    /// create the sandbox but do not serve it
    #[argh(switch)]
    no_serve: bool,
    /// a new sandbox serves HTTPS, with a throwaway CA (tls/ca.pem) and certificate for the loopback names
    #[argh(switch)]
    tls: bool,
    /// print the startup line as JSON
    #[argh(switch)]
    json: bool,
}

/// Runs `gm quickstart`.
pub(crate) fn run(args: QuickstartArgs) -> Result<u8, Error> {
    let env = Env::from_process();
    let home = args
        .home
        .clone()
        .or_else(|| env.get("GM_HOME").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("gm-sandbox"));
    if home.join(config::CONFIG_FILE).exists() {
        notice(&format!("using the existing sandbox in {}", home.display()));
    } else {
        refuse_non_empty(&home)?;
        create_sandbox(&home, &args.network_name, args.bind, args.tls)?;
    }
    if args.no_serve {
        return Ok(0);
    }
    quiet_logs(&env);
    let file = config::load_file(&home)?;
    let flags = ServeFlags { bind: args.bind, ..ServeFlags::default() };
    let settings = config::serve_settings(&home, &file, &env, &flags)?;
    if args.tls && settings.tls.is_none() {
        return Err(Error::refused(
            format!("the sandbox in {} was made without --tls and has no [tls] in gm.toml", home.display()),
            "make a new sandbox with --tls (gm quickstart --tls --home NEW-FOLDER), or run without --tls",
        ));
    }
    let port = settings.bind.port();
    let h = home.display();
    let (url, curl) = match &settings.tls {
        Some(_) => (format!("https://127.0.0.1:{port}"), format!("curl --cacert {h}/{SANDBOX_CA}")),
        None => (format!("http://127.0.0.1:{port}"), "curl".to_string()),
    };
    let next = vec![
        "next, in another terminal:".to_string(),
        format!("  {curl} {url}/healthz"),
        format!("  {curl} {url}/genesis"),
        format!("  {curl} {url}/crl"),
        format!("  {curl} {url}/metrics"),
        format!("  gm genesis verify --genesis {h}/genesis.signed.json"),
        format!("  gm verify --public-key {h}/keys/na.pub <({curl} -s {url}/crl)"),
        format!("  gm cron list --home {h}"),
        "logs show warnings and errors only; GENESIS_LOG_LEVEL=INFO shows every request and job".to_string(),
        "stop with Ctrl-C".to_string(),
    ];
    super::serve::serve(settings, Output { json: args.json }, &next)
}

/// A sandbox's terminal is for the startup summary and the next steps: unless `GENESIS_LOG_LEVEL`
/// says otherwise, only warnings and errors are logged (the access log and the every-minute probe
/// job would bury the hints; the ops ledger and `/metrics` still record every run).
fn quiet_logs(env: &Env) {
    if env.get("GENESIS_LOG_LEVEL").is_none() {
        crate::logging::init(log::LevelFilter::Warn, crate::logging::LogFormat::parse(env.get("GENESIS_LOG_FORMAT")));
    }
}

fn refuse_non_empty(home: &Path) -> Result<(), Error> {
    match std::fs::read_dir(home) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::refused(
                    format!("{} is not empty and holds no gm.toml", home.display()),
                    "choose an empty or new folder with --home",
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io { action: "read folder", path: home.to_path_buf(), source }),
    }
}

/// The throwaway CA's certificate in a `--tls` sandbox, relative to the home.
const SANDBOX_CA: &str = "tls/ca.pem";

fn create_sandbox(home: &Path, network_name: &str, bind: Option<std::net::SocketAddr>, tls: bool) -> Result<(), Error> {
    let port = bind.map_or(8443, |b| b.port());
    for dir in [home.to_path_buf(), home.join("keys"), home.join("offline")] {
        std::fs::create_dir_all(&dir).map_err(Error::io("create folder", &dir))?;
    }
    // The folders the default jobs write to (backups, the drill report, audit exports): whoever
    // lays out a home creates them, as scripts/install.sh does under /var/lib/gm. Owner-only.
    for name in ["backups", "drills", "exports"] {
        let dir = home.join(name);
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&dir)
            .map_err(Error::io("create folder", &dir))?;
    }
    let root = SigningKey::generate();
    let na = SigningKey::generate();
    let operator = SigningKey::generate();
    write_key_pair(&root, Some("rs-local"), &home.join("offline/root"), false)?;
    write_key_pair(&na, Some("na-local"), &home.join("keys/na"), false)?;
    write_key_pair(&operator, Some(DEFAULT_OPERATOR_KEY_ID), &home.join("offline/operator"), false)?;
    // Signs every backup's manifest: the backup folder never holds it, so a file planted there
    // cannot pass verify or restore (README, "Backups").
    write_key_pair(&SigningKey::generate(), Some("backup-signing"), &home.join("keys/backup-signing"), false)?;
    let mut genesis = build(
        NewGenesis {
            network_name,
            network_version: "v0.1",
            root_public_key: root.public_key().to_b64(),
            na_public_key: na.public_key().to_b64(),
            na_valid_days: 90,
            anchors: Vec::new(),
            policy_hash: "sha256:placeholder".to_string(),
            policy_url: None,
        },
        &SystemClock,
    );
    genesis.sign(&root, "rs-local");
    write_public_file(&home.join("genesis.signed.json"), &object_file_text(&genesis.to_value()), false)?;
    let operators = format!("{{\"{DEFAULT_OPERATOR_KEY_ID}\": \"{}\"}}\n", operator.public_key().to_b64());
    write_public_file(&home.join("operators.json"), &operators, false)?;
    // The backup key pair: the NA host keeps only the recipient; the identity belongs offline.
    let backup_id = age::x25519::Identity::generate();
    let backup_key = format!("{}\n", age::secrecy::ExposeSecret::expose_secret(&backup_id.to_string()));
    crate::files::atomic::write_atomic(
        &home.join("offline/backup.key"),
        backup_key.as_bytes(),
        crate::files::atomic::Mode::Private,
        false,
    )
    .map_err(Error::io("write", &home.join("offline/backup.key")))?;
    write_public_file(&home.join("backup-recipients.txt"), &format!("{}\n", backup_id.to_public()), false)?;
    let root_b64 = root.public_key().to_b64();
    let toml = format!(
        "# gm sandbox sovereign {network_name}: created by `gm quickstart`. Paths are relative to this folder.\n\
         [na]\ngenesis_file = \"genesis.signed.json\"\nna_private_key_file = \"keys/na.key\"\nna_key_id = \"na-local\"\ndb_path = \"na.db\"\n\n\
         [server]\nbind = \"127.0.0.1:{port}\"\ntrusted_proxy_hops = 0\n\
         # Admin requests: version-2 signatures only (they bind method, path and this NA). \"v1+v2\" also\n\
         # accepts upstream 0.16 operator CLIs, whose signatures can be replayed on other admin routes.\n\
         admin_signature = \"v2\"\n\n\
         # Backups are signed with this key; verify, restore and drills trust its public half.\n\
         [backup]\nsigning_key = \"keys/backup-signing.key\"\n\n{}{}",
        if tls { sandbox_tls(home, network_name, bind)? } else { String::new() },
        default_jobs(&root_b64, tls)
    );
    write_public_file(&home.join(config::CONFIG_FILE), &toml, false)?;
    notice(&format!("created sandbox sovereign {network_name} in {}", home.display()));
    notice(&format!(
        "warning: {}/offline/ holds the ROOT and OPERATOR private keys; in a real sovereign they belong offline, never on the NA host",
        home.display()
    ));
    Ok(())
}

/// Writes the throwaway CA certificate, the server chain and its key under `tls/` and returns the
/// `[tls]` table that serves them. The CA's key is not kept: nothing in the sandbox can issue
/// another certificate, and a new sandbox is the way to a new one.
fn sandbox_tls(home: &Path, network_name: &str, bind: Option<std::net::SocketAddr>) -> Result<String, Error> {
    let dir = home.join("tls");
    std::fs::create_dir_all(&dir).map_err(Error::io("create folder", &dir))?;
    let now = chrono::Utc::now();
    let made = crate::crypto::sandbox_tls::issue(network_name, bind.map(|b| b.ip()), now, 90)
        .map_err(|e| Error::refused(e, "report this as a bug; gm quickstart without --tls serves plain HTTP"))?;
    write_public_file(&home.join(SANDBOX_CA), &made.ca_pem, false)?;
    write_public_file(&dir.join("server.pem"), &made.chain_pem, false)?;
    let key = dir.join("server.key");
    crate::files::atomic::write_atomic(&key, made.key_pem.as_bytes(), crate::files::atomic::Mode::Private, false)
        .map_err(Error::io("write", &key))?;
    Ok("# HTTPS with a throwaway CA made by `gm quickstart --tls` (clients trust tls/ca.pem). gm reloads\n\
        # the certificate when these files change or on SIGHUP.\n\
        [tls]\ncert_file = \"tls/server.pem\"\nkey_file = \"tls/server.key\"\n\n"
        .to_string())
}

/// The default job table of a sandbox (README, "Scheduled jobs"): backup every 6 h (run at first
/// start), verify 15 minutes after each backup, a restore drill daily, the audit export of the
/// previous day, prune daily, and the probe every minute, against the address the sandbox is
/// actually served on (target "served", so a later `--bind` moves it too). Times are UTC.
fn default_jobs(root_public_key: &str, tls: bool) -> String {
    let ca_file = if tls { format!("ca_file = \"{SANDBOX_CA}\"\n") } else { String::new() };
    format!(
        "# Scheduled jobs, run by `gm serve` (or `gm cron run`); `gm cron list` shows the plan. UTC.\n\
         [cron]\nshutdown_grace_seconds = 60\n\n\
         [cron.jobs.backup]\nkind = \"backup\"\nschedule = \"0 */6 * * *\"\nbackup_dir = \"backups\"\nrecipients_file = \"backup-recipients.txt\"\ntimeout_seconds = 1800\nmissed_grace_seconds = 21600\n\n\
         [cron.jobs.verify]\nkind = \"verify\"\nschedule = \"15 */6 * * *\"\nbackup_dir = \"backups\"\nidentity_file = \"offline/backup.key\"\n\n\
         [cron.jobs.restore-drill]\nkind = \"restore-drill\"\nschedule = \"30 3 * * *\"\nbackup_dir = \"backups\"\nidentity_file = \"offline/backup.key\"\nreport_file = \"drills/latest.json\"\n\n\
         [cron.jobs.audit-export]\nkind = \"audit-export\"\nschedule = \"5 0 * * *\"\nexport_dir = \"exports\"\nwindow_hours = 24\n\n\
         [cron.jobs.prune]\nkind = \"prune\"\nschedule = \"45 4 * * *\"\nbackup_dir = \"backups\"\nkeep_last = 8\nkeep_daily = 7\nkeep_weekly = 4\n\n\
         [cron.jobs.probe]\nkind = \"probe\"\nschedule = \"* * * * *\"\ntarget = \"served\"\nroot_public_key = \"{root_public_key}\"\nstate_file = \"probe-state.json\"\ntimeout_seconds = 50\n{ca_file}"
    )
}
