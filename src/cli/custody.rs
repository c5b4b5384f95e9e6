//! `gm custody …`: NA key custody procedures. `escrow` writes the NA private key age-encrypted to
//! the customer's recipients (the managed model's required backup of the NA key); `escrow-check`
//! decrypts an escrow in memory and confirms it holds the genesis NA key. The work is in
//! `ops::escrow`; this file turns flags into its inputs and renders the result.
//!
//! Must not: print, log or write key material (only the public half and its fingerprint), or accept
//! a passphrase for an escrow (a passphrase file on the NA host would let the NA host open it).

use std::path::PathBuf;

use argh::FromArgs;

use crate::json::{Map, Value};
use crate::ops::archive::{self, Key};

use super::backup::{checks_value, encryption_key, ops_error, settings};
use super::error::{Error, EXIT_CHECK_FAILED};
use super::flags::encrypting_command;
use super::output::Output;

/// NA key custody: escrow of the NA private key to the customer, and checking an escrow.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "custody")]
pub(crate) struct CustodyArgs {
    #[argh(subcommand)]
    action: CustodyAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum CustodyAction {
    Escrow(EscrowArgs),
    EscrowCheck(EscrowCheckArgs),
}

encrypting_command! {
/// Write the NA private key age-encrypted to the customer's recipients (never in the clear).
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "escrow",
    example = "gm custody escrow --home /etc/gm --recipient age1… --output /root/na-key-escrow.age\ngm custody escrow --key /etc/gm/keys/na.key --recipients-file customer-recipients.txt --output na-key-escrow.age --json",
    note = "The escrow decrypts (age -d -i CUSTOMER_IDENTITY FILE > na.key) to the NA key in the upstream key file layout, with its # Key ID line. Only age X25519 recipients are accepted: --passphrase-file is refused. The output is written with mode 0600 and never replaces an existing file. Prints the file, the recipients, the key's public half and its fingerprint (sha256: and the hex SHA-256 of the 32-byte public key), never the key; genesis_na_key says whether the configured genesis names this key (false is warned, null when there is no genesis). Check it with gm custody escrow-check on a host that holds the customer's identity. Exit status: 0 written, 2 could not run (no recipient, existing output, unreadable key)."
)]
pub(crate) struct EscrowArgs {
    /// the escrow file to write (refused when it exists)
    #[argh(option)]
    output: PathBuf,
    /// the NA private key file (default: the configured NA key, HOME/keys/na.key)
    #[argh(option)]
    key: Option<PathBuf>,
    /// gm home (default $GM_HOME, else /etc/gm): supplies the default --key
    #[argh(option)]
    home: Option<PathBuf>,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
}
}

/// Decrypt an NA key escrow in memory and confirm it holds the genesis NA key (writes nothing).
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "escrow-check",
    example = "gm custody escrow-check --identity customer.key --genesis genesis.signed.json na-key-escrow.age\ngm custody escrow-check --home /etc/gm --identity customer.key na-key-escrow.age --json",
    note = "Checks, in order: decrypt (with the customer's age identity), key (an upstream Ed25519 private key file), genesis_na_key (its public half is the NA key of the genesis, which must verify with its own root key). The key is never written or printed. Exit status: 0 the escrow holds the genesis NA key, 1 a check failed (wrong identity, not a key, another key), 2 could not run."
)]
pub(crate) struct EscrowCheckArgs {
    /// the escrow file
    #[argh(positional)]
    file: PathBuf,
    /// the customer's age identity file (AGE-SECRET-KEY-1…) the escrow was encrypted to
    #[argh(option)]
    identity: PathBuf,
    /// the signed genesis whose NA key the escrow must hold (default: the configured genesis, HOME/genesis.signed.json)
    #[argh(option)]
    genesis: Option<PathBuf>,
    /// gm home (default $GM_HOME, else /etc/gm): supplies the default --genesis
    #[argh(option)]
    home: Option<PathBuf>,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
}

/// Runs `gm custody …`.
pub(crate) fn run(args: CustodyArgs) -> Result<u8, Error> {
    match args.action {
        CustodyAction::Escrow(a) => run_escrow(a),
        CustodyAction::EscrowCheck(a) => run_escrow_check(a),
    }
}

fn run_escrow(args: EscrowArgs) -> Result<u8, Error> {
    let recipients = match encryption_key(args.encryption_flags())? {
        Some(Key::Recipients(r)) if !r.is_empty() => r,
        Some(Key::Passphrase(_)) => {
            return Err(Error::usage(
                "gm custody escrow encrypts to the customer's age recipients only, not to a passphrase",
                "give --recipient age1… or --recipients-file with the customer's public key(s): a passphrase file on the NA host would let the NA host open the escrow",
            ))
        }
        _ => {
            return Err(Error::usage(
                "no recipient: the escrow must be encrypted to the customer's age recipient(s)",
                "give --recipient age1… (repeatable) or --recipients-file FILE with the customer's public key(s)",
            ))
        }
    };
    // The configured genesis, when there is one, says whether this is the NA key (a warning, not a
    // refusal: a key escrowed before its genesis is signed has no genesis to match yet).
    let (key_file, genesis_file) = match args.key {
        Some(k) => (k, settings(args.home.as_deref(), None).ok().map(|s| s.genesis_file)),
        None => {
            let s = settings(args.home.as_deref(), None)?;
            (s.na_key_file, Some(s.genesis_file))
        }
    };
    let done = crate::ops::escrow::escrow(&key_file, &recipients, &args.output).map_err(|e| match e {
        crate::ops::OpsError::Exists { path } => Error::refused(
            format!("refusing to overwrite existing file {}", path.display()),
            "choose another --output: an escrow is never replaced (remove the old one only once the customer has checked the new one)",
        ),
        crate::ops::OpsError::Refused { reason } => Error::refused(
            reason,
            "point --key at the NA private key file (default: the configured [na] na_private_key_file, HOME/keys/na.key)",
        ),
        other => ops_error(other),
    })?;
    let matches = genesis_file.as_deref().and_then(|g| crate::ops::escrow::genesis_names(g, &done.public_key));
    if let (Some(false), Some(g)) = (matches, &genesis_file) {
        log::warn!(target: "gm::custody", "the escrowed key {} is not the NA key of the genesis {}: escrow the NA key (HOME/keys/na.key)", done.public_key, g.display());
    }
    let value = Value::Object(Map::from_iter([
        ("file".to_string(), Value::from(done.output.display().to_string())),
        ("fingerprint".to_string(), Value::from(done.fingerprint.as_str())),
        ("genesis_na_key".to_string(), matches.map_or(Value::Null, Value::Bool)),
        ("key_file".to_string(), Value::from(key_file.display().to_string())),
        ("key_id".to_string(), done.key_id.as_deref().map_or(Value::Null, Value::from)),
        ("public_key".to_string(), Value::from(done.public_key.as_str())),
        ("recipients".to_string(), Value::Array(done.recipients.iter().map(|r| Value::from(r.as_str())).collect())),
    ]));
    let mut text = format!(
        "escrowed NA key {} ({}) to {} recipient(s): wrote {}",
        done.public_key,
        done.fingerprint,
        done.recipients.len(),
        done.output.display()
    );
    for r in &done.recipients {
        text.push_str(&format!("\n  recipient {r}"));
    }
    Output { json: args.json }.result(&text, &value);
    Ok(0)
}

fn run_escrow_check(args: EscrowCheckArgs) -> Result<u8, Error> {
    let identity = archive::read_identities(&args.identity).map_err(ops_error)?;
    let genesis = match args.genesis {
        Some(g) => g,
        None => settings(args.home.as_deref(), None)?.genesis_file,
    };
    let report = crate::ops::escrow::check(&args.file, &identity, &genesis).map_err(ops_error)?;
    let ok = report.ok();
    let opt = |v: &Option<String>| v.as_deref().map_or(Value::Null, Value::from);
    let value = Value::Object(Map::from_iter([
        ("checks".to_string(), Value::Array(checks_value(&report.checks))),
        ("file".to_string(), Value::from(args.file.display().to_string())),
        ("fingerprint".to_string(), opt(&report.fingerprint)),
        ("genesis".to_string(), Value::from(genesis.display().to_string())),
        ("network_name".to_string(), Value::from(report.network_name.as_str())),
        ("ok".to_string(), Value::Bool(ok)),
        ("public_key".to_string(), opt(&report.public_key)),
    ]));
    let mut text = format!(
        "{}: escrow {} {} the NA key of {}",
        if ok { "passed" } else { "FAILED" },
        args.file.display(),
        if ok { "holds" } else { "does not hold" },
        report.network_name
    );
    for c in &report.checks {
        text.push_str(&format!("\n  {} {:<14} {}", if c.ok { "ok  " } else { "FAIL" }, c.name, c.detail));
    }
    Output { json: args.json }.result(&text, &value);
    Ok(if ok { 0 } else { EXIT_CHECK_FAILED })
}
