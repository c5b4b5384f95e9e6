//! `gm signer run|init|log`: the customer's side of customer-held custody. `run` checks what it was
//! given (the key is the genesis' NA key, the policy reads, the state dir is private) before it
//! dials, then hands over to `signer::daemon` until SIGTERM or SIGINT; `init` writes the commented
//! policy template; `log` verifies the signing log's hash chain and exports it for review.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use argh::FromArgs;
use chrono::{DateTime, Utc};

use crate::crypto::keys::{load_public_key, load_signing_key, PublicKey};
use crate::files::atomic::{write_atomic, Mode};
use crate::json::{parse, ParseLimits, Value};
use crate::model::genesis::Genesis;
use crate::model::SignedObject;
use crate::signer::daemon::{Signer, SignerSetup, Timing};
use crate::signer::log::{walk, LogEntry, LOG_FILE};
use crate::signer::policy::{Policy, TEMPLATE};
use crate::signer::wire::genesis_sha256;

use super::error::Error;
use super::input::read_object;
use super::output::{line, notice, Output};

/// The most sessions one signer opens.
const MAX_SESSIONS: usize = 64;

/// The customer's remote signer: holds the genesis NA key and signs for the NA under its own policy.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "signer")]
pub(crate) struct SignerArgs {
    #[argh(subcommand)]
    action: Action,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Action {
    Run(RunArgs),
    Init(InitArgs),
    Log(LogArgs),
}

/// Dial the NA's signer port and sign what the policy allows, until SIGTERM or SIGINT.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "run",
    example = "gm signer run --key /etc/gm-signer/na.key --genesis /etc/gm-signer/genesis.signed.json --connect na.example.org:8444 --na-host-key /etc/gm-signer/na-host.pub --policy /etc/gm-signer/signer-policy.toml --state-dir /var/lib/gm-signer\ngm signer run --key na.key --genesis genesis.signed.json --connect 10.0.0.5:8444 --na-host-key 8GFtLlsDpEJNfcATcNmBxcpzjgC9Vz8/N9FZUFXpOw4= --policy signer-policy.toml --state-dir state --sessions 8",
    note = "The signing host opens no port. Logs go to stderr (GENESIS_LOG_FORMAT=json for JSON lines). Exit 0 after SIGTERM or SIGINT; 2 when it cannot start."
)]
struct RunArgs {
    /// the genesis NA private key file (upstream format)
    #[argh(option)]
    key: PathBuf,
    /// the signed genesis: the key must be its network_authority key
    #[argh(option)]
    genesis: PathBuf,
    /// HOST:PORT of the NA's signer port
    #[argh(option)]
    connect: String,
    /// the NA host key to accept: its .pub file (HOME/keys/na-host.pub on the NA) or base64
    #[argh(option)]
    na_host_key: String,
    /// the signing policy (TOML; gm signer init writes a template)
    #[argh(option)]
    policy: PathBuf,
    /// private folder (mode 0700, created when absent) for state.json and signing-log.jsonl
    #[argh(option)]
    state_dir: PathBuf,
    /// parallel sessions to the NA (default 4)
    #[argh(option, default = "4")]
    sessions: usize,
}

/// Write the commented signing-policy template (refuses to overwrite).
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "init",
    example = "gm signer init --policy /etc/gm-signer/signer-policy.toml --genesis /etc/gm-signer/genesis.signed.json",
    note = "Review every field before the first gm signer run: the template is a starting point, not a recommendation for your network."
)]
struct InitArgs {
    /// where to write the policy
    #[argh(option)]
    policy: PathBuf,
    /// the signed genesis, whose network_name the template takes (default: a placeholder to edit)
    #[argh(option)]
    genesis: Option<PathBuf>,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
}

/// Verify the signing log's hash chain and export its entries.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "log",
    example = "gm signer log --state-dir /var/lib/gm-signer\ngm signer log --state-dir /var/lib/gm-signer --json --since 2026-12-01T00:00:00Z > signing-2026-12.json",
    note = "Exit 1 when the chain is broken (the first broken line is named), 0 when it verifies. The head is the last line's sha256: record it elsewhere; a later head must extend the chain."
)]
struct LogArgs {
    /// the signer's state dir
    #[argh(option)]
    state_dir: PathBuf,
    /// only entries at or after this instant (RFC 3339)
    #[argh(option)]
    since: Option<String>,
    /// print the entries as a JSON array
    #[argh(switch)]
    json: bool,
}

/// Runs `gm signer`.
pub(crate) fn run(args: SignerArgs) -> Result<u8, Error> {
    match args.action {
        Action::Run(a) => run_signer(a),
        Action::Init(a) => init(a),
        Action::Log(a) => show_log(a),
    }
}

fn run_signer(args: RunArgs) -> Result<u8, Error> {
    let setup = setup(args)?;
    let (connect, sessions, network) = (setup.connect.clone(), setup.sessions, setup.policy.network_name().to_string());
    let signer = Signer::open(setup).map_err(|e| {
        Error::refused(
            e,
            "fix the state dir named above; it holds the CRL floor and the signing log, so never delete it",
        )
    })?;
    let stop = install_stop_signals()?;
    if crate::clock::build_time().is_some_and(|built| Utc::now() < built) {
        log::warn!(
            target: "gm::signer",
            "this machine's clock is earlier than gm's build time: fix NTP, or every object will be refused for max_clock_skew_seconds"
        );
    }
    log::info!(
        target: "gm::signer",
        "signing for network {network}: {sessions} session(s) dialing {connect}; highest CRL sequence signed: {}",
        signer.crl_high().map_or("none".to_string(), |h| h.to_string())
    );
    signer.serve(&stop).map_err(|e| Error::refused(e, "check the host's thread limits"))?;
    log::info!(target: "gm::signer", "stopped: every session closed, the signing log is on disk");
    Ok(0)
}

/// Checks every input before anything is opened or dialled.
fn setup(args: RunArgs) -> Result<SignerSetup, Error> {
    if args.sessions == 0 || args.sessions > MAX_SESSIONS {
        return Err(Error::usage(
            format!("--sessions {} is outside 1..={MAX_SESSIONS}", args.sessions),
            "omit it for 4 sessions",
        ));
    }
    if !matches!(args.connect.rsplit_once(':'), Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok()) {
        return Err(Error::usage(
            format!("--connect {:?} is not HOST:PORT", args.connect),
            "give the NA's signer address, e.g. na.example.org:8444",
        ));
    }
    let key = load_signing_key(&args.key)?;
    let genesis: Genesis = read_object(&args.genesis)?;
    // The genesis decides the network and the NA key this signer vouches for: only the root's.
    if genesis.signatures().is_empty() || !genesis.check_root_signatures().is_valid() {
        return Err(Error::refused(
            format!("the genesis {} does not carry a valid root signature", args.genesis.display()),
            "use the signed genesis from the root ceremony (gm genesis verify checks it)",
        ));
    }
    let ours = key.public_key().to_b64();
    if ours != genesis.network_authority.public_key {
        return Err(Error::refused(
            format!(
                "the key in {} ({ours}) is not the NA key of the genesis {} ({})",
                args.key.display(),
                args.genesis.display(),
                genesis.network_authority.public_key
            ),
            "pass the NA private key whose public half is the genesis' network_authority.public_key, and the genesis the NA serves",
        ));
    }
    let pinned_host = parse_host_key(&args.na_host_key)?;
    let policy = Policy::load(&args.policy).map_err(|e| {
        Error::refused(
            e,
            format!(
                "gm signer init --policy {} writes a commented template (it refuses to overwrite)",
                args.policy.display()
            ),
        )
    })?;
    if policy.network_name() != genesis.network_name {
        return Err(Error::refused(
            format!(
                "the policy {} is for network {:?}, the genesis for {:?}",
                args.policy.display(),
                policy.network_name(),
                genesis.network_name
            ),
            "set network_name in the policy to the genesis' network_name",
        ));
    }
    Ok(SignerSetup {
        key,
        genesis_sha256: genesis_sha256(&genesis),
        pinned_host,
        connect: args.connect,
        sessions: args.sessions,
        policy,
        state_dir: args.state_dir,
        timing: Timing::default(),
    })
}

/// A `.pub` file or a base64 key.
fn parse_host_key(text: &str) -> Result<PublicKey, Error> {
    let path = Path::new(text);
    if path.is_file() {
        return Ok(load_public_key(path)?);
    }
    PublicKey::from_b64(text.trim()).map_err(|e| {
        Error::usage(
            format!("--na-host-key is neither a key file nor a base64 Ed25519 public key: {e}"),
            "pass the NA host's public key: HOME/keys/na-host.pub on the NA host (gm serve creates it), or its base64 line",
        )
    })
}

/// SIGTERM and SIGINT set the stop flag the daemon polls.
fn install_stop_signals() -> Result<Arc<AtomicBool>, Error> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|source| Error::Io {
            action: "install signal handler for",
            path: PathBuf::from(format!("signal {sig}")),
            source,
        })?;
    }
    Ok(stop)
}

fn init(args: InitArgs) -> Result<u8, Error> {
    if args.policy.exists() {
        return Err(Error::refused(
            format!("{} exists; gm signer init never overwrites a policy", args.policy.display()),
            "edit it, or choose another --policy path",
        ));
    }
    let network = match &args.genesis {
        Some(path) => read_object::<Genesis>(path)?.network_name,
        None => "NETWORK_NAME".to_string(),
    };
    let text = TEMPLATE.replace("\"NETWORK_NAME\"", &format!("{network:?}"));
    write_atomic(&args.policy, text.as_bytes(), Mode::Public, false).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Exists { path: args.policy.clone() }
        } else {
            Error::Io { action: "write", path: args.policy.clone(), source: e }
        }
    })?;
    let value = Value::Object(crate::model::fields::object(vec![
        ("policy", Value::from(args.policy.display().to_string())),
        ("network_name", Value::from(network.as_str())),
    ]));
    let edit = if args.genesis.is_none() { "; set network_name to the genesis' network_name" } else { "" };
    Output { json: args.json }
        .result(&format!("wrote {} (review every field before gm signer run{edit})", args.policy.display()), &value);
    Ok(0)
}

fn show_log(args: LogArgs) -> Result<u8, Error> {
    let since = match &args.since {
        Some(text) => Some(DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|e| {
            Error::usage(
                format!("--since {text:?} is not an RFC 3339 instant: {e}"),
                "e.g. --since 2026-12-01T00:00:00Z",
            )
        })?),
        None => None,
    };
    if !args.state_dir.is_dir() {
        return Err(Error::usage(
            format!("the state dir {} does not exist", args.state_dir.display()),
            "pass the --state-dir gm signer run uses",
        ));
    }
    let path = args.state_dir.join(LOG_FILE);
    let mut rows: Vec<(String, LogEntry)> = Vec::new();
    let summary = walk(&path, |_, text, entry| {
        let at = DateTime::parse_from_rfc3339(&entry.at).map(|t| t.with_timezone(&Utc)).ok();
        if since.is_none() || at.zip(since).is_some_and(|(at, since)| at >= since) {
            rows.push((text.to_string(), entry.clone()));
        }
    })
    .map_err(|b| Error::CheckFailed {
        message: format!(
            "the signing log {} is broken at line {}: {} (keep the file for review)",
            path.display(),
            b.line,
            b.problem
        ),
    })?;
    let verdict = format!("chain verified: {} entries, head sha256 {}", summary.lines, summary.head);
    if args.json {
        let values = rows
            .iter()
            .map(|(text, _)| parse(text.as_bytes(), &ParseLimits::default()).unwrap_or(Value::Null))
            .collect();
        Output { json: true }.result("", &Value::Array(values));
        notice(&verdict);
    } else {
        line(&format!("{:<27}  {:<8}  {:<11}  {:<40}  {:<12}  REASON", "AT", "DECISION", "KIND", "OBJECT", "PURPOSE"));
        for (_, e) in &rows {
            let object = match e.sequence {
                Some(seq) => format!("{} #{seq}", e.object_id),
                None => e.object_id.clone(),
            };
            let reason = e.reason.as_deref().unwrap_or("");
            line(&format!(
                "{:<27}  {:<8}  {:<11}  {object:<40}  {:<12}  {reason}",
                e.at, e.decision, e.kind, e.purpose
            ));
        }
        line(&verdict);
    }
    Ok(0)
}
