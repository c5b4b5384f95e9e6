//! `gm genesis create|sign|verify|show`: the root ceremony with upstream's fields and defaults
//! (`operations.md` §7.1). Files produced by upstream verify in gm and the reverse.

use std::path::PathBuf;

use argh::FromArgs;
use chrono::Duration;

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Env};
use crate::crypto::keys::{load_public_key, load_signing_key};
use crate::json::Value;
use crate::model::fields::object;
use crate::model::genesis::{Anchor, Genesis, NetworkAuthority};
use crate::model::timestamp::ModelTime;
use crate::model::SignedObject;

use super::error::{Error, EXIT_CHECK_FAILED};
use super::input::{object_file_text, read_object, refuse_existing, write_public_file};
use super::output::{notice, Output};
use super::sign::describe;

/// Create, sign, verify or show a genesis block.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "genesis")]
pub(crate) struct GenesisArgs {
    #[argh(subcommand)]
    action: Action,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Action {
    Create(CreateArgs),
    Sign(SignArgs),
    Verify(VerifyArgs),
    Show(ShowArgs),
}

/// Create an unsigned genesis block.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "create",
    example = "gm genesis create --network-name acme-mesh --root-public-key offline/root.pub --na-public-key keys/na.pub --output genesis.json",
    note = "Defaults as upstream: --network-version v0.1, --na-valid-days 90, policy hash sha256:placeholder."
)]
struct CreateArgs {
    /// network (sovereign) name
    #[argh(option)]
    network_name: String,
    /// network version (default v0.1)
    #[argh(option, default = "String::from(\"v0.1\")")]
    network_version: String,
    /// root public key file
    #[argh(option, long = "root-public-key")]
    root_key: PathBuf,
    /// NA public key file
    #[argh(option, long = "na-public-key")]
    na_key: PathBuf,
    /// NA validity in days from now (default 90)
    #[argh(option, default = "90")]
    na_valid_days: u32,
    /// bootstrap anchor as id:endpoint (repeatable)
    #[argh(option)]
    anchor: Vec<String>,
    /// policy manifest hash (default sha256:placeholder)
    #[argh(option, default = "String::from(\"sha256:placeholder\")")]
    policy_hash: String,
    /// policy manifest URL (default none)
    #[argh(option)]
    policy_url: Option<String>,
    /// output file (default HOME/genesis.json)
    #[argh(option)]
    output: Option<PathBuf>,
    /// replace an existing output file
    #[argh(switch)]
    force: bool,
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
}

/// Append a root signature to a genesis block.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "sign",
    example = "gm genesis sign --genesis genesis.json --root-key offline/root.key --key-id rs-2025-q1 --output genesis.signed.json"
)]
struct SignArgs {
    /// genesis file to sign (default HOME/genesis.json)
    #[argh(option)]
    genesis: Option<PathBuf>,
    /// root private key file
    #[argh(option, long = "root-key")]
    root_private_key: PathBuf,
    /// key id label (default rs-2025-q1)
    #[argh(option, default = "String::from(\"rs-2025-q1\")")]
    key_id: String,
    /// output file (default HOME/genesis.signed.json)
    #[argh(option)]
    output: Option<PathBuf>,
    /// replace an existing output file
    #[argh(switch)]
    force: bool,
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
}

/// Verify every root signature of a genesis block (exit 0 valid, 1 invalid).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "verify", example = "gm genesis verify --genesis genesis.signed.json --json")]
struct VerifyArgs {
    /// genesis file (default HOME/genesis.signed.json)
    #[argh(option)]
    genesis: Option<PathBuf>,
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
}

/// Show a genesis block's fields.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "show", example = "gm genesis show --genesis genesis.signed.json")]
struct ShowArgs {
    /// genesis file (default HOME/genesis.signed.json)
    #[argh(option)]
    genesis: Option<PathBuf>,
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// print the block as JSON
    #[argh(switch)]
    json: bool,
}

/// Runs `gm genesis …`.
pub(crate) fn run(args: GenesisArgs) -> Result<u8, Error> {
    match args.action {
        Action::Create(a) => create(a),
        Action::Sign(a) => sign(a),
        Action::Verify(a) => verify(a),
        Action::Show(a) => show(a),
    }
}

/// The fields of a new genesis block.
pub(crate) struct NewGenesis<'a> {
    /// Network name.
    pub network_name: &'a str,
    /// Network version.
    pub network_version: &'a str,
    /// B64 root public key.
    pub root_public_key: String,
    /// B64 NA public key.
    pub na_public_key: String,
    /// NA validity in days.
    pub na_valid_days: u32,
    /// Anchors.
    pub anchors: Vec<Anchor>,
    /// Policy hash.
    pub policy_hash: String,
    /// Policy URL.
    pub policy_url: Option<String>,
}

/// Builds an unsigned genesis block valid from now.
pub(crate) fn build(spec: NewGenesis<'_>, clock: &dyn Clock) -> Genesis {
    let now = clock.now();
    Genesis {
        network_name: spec.network_name.to_string(),
        network_version: spec.network_version.to_string(),
        root_public_key: spec.root_public_key,
        network_authority: NetworkAuthority {
            public_key: spec.na_public_key,
            valid_from: ModelTime::from_utc(now),
            valid_to: ModelTime::from_utc(now + Duration::days(i64::from(spec.na_valid_days))),
        },
        allowed_crypto_suites: vec!["ed25519".to_string(), "x25519".to_string()],
        allowed_transports: vec!["quic".to_string(), "wireguard".to_string()],
        policy_hash: spec.policy_hash,
        policy_url: spec.policy_url,
        bootstrap_anchors: spec.anchors,
        signatures: Vec::new(),
    }
}

fn create(a: CreateArgs) -> Result<u8, Error> {
    if a.network_name.trim().is_empty() {
        return Err(Error::usage("--network-name must not be empty", "e.g. --network-name acme-mesh"));
    }
    let anchors = a
        .anchor
        .iter()
        .map(|spec| match spec.split_once(':') {
            Some((id, endpoint)) if !id.is_empty() && !endpoint.is_empty() => {
                Ok(Anchor { id: id.to_string(), endpoint: endpoint.to_string() })
            }
            _ => Err(Error::usage(
                format!("invalid --anchor {spec:?}"),
                "write it as id:endpoint, e.g. anchor-1:203.0.113.5:9000",
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let output = in_home(a.output.clone(), a.home.as_deref(), "genesis.json");
    refuse_existing(&output, a.force)?;
    let root = load_public_key(&a.root_key)?;
    let na = load_public_key(&a.na_key)?;
    if a.policy_hash == "sha256:placeholder" {
        notice("warning: policy_manifest.hash is the placeholder sha256:placeholder; set --policy-hash before a real ceremony");
    }
    let genesis = build(
        NewGenesis {
            network_name: &a.network_name,
            network_version: &a.network_version,
            root_public_key: root.to_b64(),
            na_public_key: na.to_b64(),
            na_valid_days: a.na_valid_days,
            anchors,
            policy_hash: a.policy_hash.clone(),
            policy_url: a.policy_url.clone(),
        },
        &SystemClock,
    );
    write_public_file(&output, &object_file_text(&genesis.to_value()), a.force)?;
    let value = Value::Object(object(vec![
        ("network_name", Value::from(a.network_name.as_str())),
        ("output", Value::from(output.display().to_string())),
        ("signed", Value::Bool(false)),
    ]));
    Output { json: a.json }
        .result(&format!("wrote unsigned genesis for {} to {}", a.network_name, output.display()), &value);
    Ok(0)
}

fn sign(a: SignArgs) -> Result<u8, Error> {
    let input = in_home(a.genesis.clone(), a.home.as_deref(), "genesis.json");
    let output = in_home(a.output.clone(), a.home.as_deref(), "genesis.signed.json");
    refuse_existing(&output, a.force)?;
    let mut genesis: Genesis = read_object(&input)?;
    let key = load_signing_key(&a.root_private_key)?;
    let public = key.public_key().to_b64();
    if public != genesis.root_public_key {
        return Err(Error::refused(
            format!(
                "root private key {} does not match the genesis root_public_key (key {public}, genesis {})",
                a.root_private_key.display(),
                genesis.root_public_key
            ),
            "sign with the root key whose public half was given to `gm genesis create --root-public-key`",
        ));
    }
    genesis.sign(&key, &a.key_id);
    write_public_file(&output, &object_file_text(&genesis.to_value()), a.force)?;
    let value = Value::Object(object(vec![
        ("key_id", Value::from(a.key_id.as_str())),
        ("network_name", Value::from(genesis.network_name.as_str())),
        ("output", Value::from(output.display().to_string())),
        ("signature_count", Value::from(genesis.signatures.len())),
    ]));
    Output { json: a.json }.result(
        &format!(
            "signed genesis {} with key id {} ({} signature(s)): wrote {}",
            genesis.network_name,
            a.key_id,
            genesis.signatures.len(),
            output.display()
        ),
        &value,
    );
    Ok(0)
}

/// A file a command works on: the flag, else `name` in the gm home.
fn in_home(flag: Option<PathBuf>, home: Option<&std::path::Path>, name: &str) -> PathBuf {
    flag.unwrap_or_else(|| config::resolve_home(home, &Env::from_process()).join(name))
}

fn verify(a: VerifyArgs) -> Result<u8, Error> {
    let path = in_home(a.genesis.clone(), a.home.as_deref(), "genesis.signed.json");
    let genesis: Genesis = read_object(&path)?;
    let outcome = genesis.check_root_signatures();
    let count = genesis.signatures.len();
    let reason = describe(&outcome, count, crate::crypto::signature::VerifyRule::All);
    let valid = outcome.is_valid();
    let text = format!(
        "{}: genesis {} ({}) — {reason} with root key {}",
        if valid { "valid" } else { "invalid" },
        genesis.network_name,
        path.display(),
        genesis.root_public_key
    );
    let value = Value::Object(object(vec![
        ("network_name", Value::from(genesis.network_name.as_str())),
        ("reason", Value::from(reason.as_str())),
        ("root_public_key", Value::from(genesis.root_public_key.as_str())),
        ("signature_count", Value::from(count)),
        ("valid", Value::Bool(valid)),
    ]));
    Output { json: a.json }.result(&text, &value);
    Ok(if valid { 0 } else { EXIT_CHECK_FAILED })
}

fn show(a: ShowArgs) -> Result<u8, Error> {
    let genesis: Genesis = read_object(&in_home(a.genesis.clone(), a.home.as_deref(), "genesis.signed.json"))?;
    if a.json {
        Output { json: true }.result("", &genesis.to_value());
        return Ok(0);
    }
    let na = &genesis.network_authority;
    let anchors: Vec<String> = genesis.bootstrap_anchors.iter().map(|x| format!("{}={}", x.id, x.endpoint)).collect();
    let text = format!(
        "network:        {} {}\nroot key:       {}\nNA key:         {}\nNA valid:       {} .. {}\npolicy hash:    {}\nanchors:        {}\nsignatures:     {} ({})",
        genesis.network_name,
        genesis.network_version,
        genesis.root_public_key,
        na.public_key,
        na.valid_from.render_isoformat(),
        na.valid_to.render_isoformat(),
        genesis.policy_hash,
        if anchors.is_empty() { "none".to_string() } else { anchors.join(", ") },
        genesis.signatures.len(),
        describe(&genesis.check_root_signatures(), genesis.signatures.len(), crate::crypto::signature::VerifyRule::All)
    );
    super::output::line(&text);
    Ok(0)
}
