//! `gm sign` and `gm verify`: generic signing and checking of any upstream signed object, for the
//! customer-held custody model (the customer keeps the NA key and signs trust material offline).
//! The object is read through its model and canonicalised as upstream does; verification applies
//! upstream's rule for the kind (genesis: every signature; crl and agent: the first; others: any).
//!
//! `gm sign` also takes a signing request (`gm treaty issue --unsigned-out`, the offline signing
//! round trip of `docs/custody.md`): it signs the inner object with the key id the request names,
//! refuses a key that is not the NA key the request names, and writes the signed reply envelope.

use std::path::{Path, PathBuf};

use argh::FromArgs;

use crate::config::{self, Env};
use crate::crypto::digest::sha256_hex;
use crate::crypto::keys::{key_id_in_file, load_public_key, load_signing_key, PublicKey};
use crate::crypto::signature::{SignatureCheck, VerifyRule};
use crate::json::Value;
use crate::model::fields::object;
use crate::model::signing_request::{SigningRequest, Stage};
use crate::model::{check_as, sign_as, Kind};

use super::error::Error;
use super::input::{object_file_text, read_json, refuse_existing, write_public_file};
use super::offline_signing::publish_command;
use super::output::{raw, Output};

/// Append a signature to a signed object (genesis, cert, policy, crl, attestation, treaty, feed, agent) or a signing request.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "sign",
    example = "gm sign --key na.key --key-id na-2025-q1 treaty.json --output treaty.signed.json\ngm sign --kind policy --key na.key --key-id na-2025-q1 policy.json\ngm sign --key na.key treaty.request.json --output treaty.signed.json",
    note = "The object is read through its schema (unknown fields dropped, defaults filled) before signing, exactly as upstream canonicalises it. A signing request (gm treaty issue --unsigned-out) is signed with the key id it names, only by the NA key it names (else refused, exit 2), and written as a signed reply for gm treaty publish."
)]
pub(crate) struct SignArgs {
    /// object kind: genesis, cert, policy, crl, attestation, treaty, feed, agent (default: detected from the fields)
    #[argh(option)]
    kind: Option<String>,
    /// private key file, upstream format (default HOME/keys/na.key)
    #[argh(option)]
    key: Option<PathBuf>,
    /// key id label written into the signature (default: gm.toml na_key_id, else the key file's Key ID)
    #[argh(option)]
    key_id: Option<String>,
    /// gm home (default $GM_HOME, else /etc/gm): supplies the default key and key id
    #[argh(option)]
    home: Option<PathBuf>,
    /// the JSON object to sign
    #[argh(positional)]
    file: PathBuf,
    /// write the signed object here instead of printing it
    #[argh(option)]
    output: Option<PathBuf>,
    /// replace an existing --output file
    #[argh(switch)]
    force: bool,
    /// print the result as JSON (with --output: what was written; without: the signed object, which is JSON already)
    #[argh(switch)]
    json: bool,
}

/// Verify a signed object's signatures with a public key, using upstream's rule for its kind.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "verify",
    example = "gm verify --public-key na.pub crl.json\ngm verify --kind genesis --public-key offline/root.pub genesis.signed.json --json",
    note = "Exit status: 0 valid, 1 invalid (the reason is printed), 2 the file or key could not be read."
)]
pub(crate) struct VerifyArgs {
    /// object kind (default: detected from the fields)
    #[argh(option)]
    kind: Option<String>,
    /// public key file, upstream format (default HOME/keys/na.pub; for genesis, the block's own root key)
    #[argh(option)]
    public_key: Option<PathBuf>,
    /// gm home (default $GM_HOME, else /etc/gm): supplies the default public key
    #[argh(option)]
    home: Option<PathBuf>,
    /// the signed JSON object
    #[argh(positional)]
    file: PathBuf,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
}

/// Runs `gm sign`.
pub(crate) fn run_sign(args: SignArgs) -> Result<u8, Error> {
    if let Some(out) = &args.output {
        refuse_existing(out, args.force)?;
    }
    let value = read_json(&args.file)?;
    if SigningRequest::format_of(&value).is_some() {
        return sign_request(&args, &value);
    }
    let kind = resolve_kind(args.kind.as_deref(), &value, &args.file)?;
    let env = Env::from_process();
    let home = config::resolve_home(args.home.as_deref(), &env);
    let key_path = args.key.clone().unwrap_or_else(|| home.join("keys/na.key"));
    let key = load_signing_key(&key_path)?;
    let key_id = match &args.key_id {
        Some(id) => id.clone(),
        None => config::load_file(&home)?.na.na_key_id.or_else(|| key_id_in_file(&key_path)).ok_or_else(|| {
            Error::usage(
                format!("no key id for {}", key_path.display()),
                "pass --key-id (the label written into the signature, e.g. na-2025-q1)",
            )
        })?,
    };
    let signed =
        sign_as(kind, &value, &key, &key_id).map_err(|source| Error::Model { path: args.file.clone(), source })?;
    let text = object_file_text(&signed);
    match &args.output {
        Some(out) => {
            write_public_file(out, &text, args.force)?;
            let value = Value::Object(object(vec![
                ("file", Value::from(args.file.display().to_string())),
                ("key_id", Value::from(key_id.as_str())),
                ("kind", Value::from(kind.name())),
                ("output", Value::from(out.display().to_string())),
            ]));
            Output { json: args.json }.result(
                &format!(
                    "signed {} ({}) with key id {}: wrote {}",
                    args.file.display(),
                    kind.name(),
                    key_id,
                    out.display()
                ),
                &value,
            );
        }
        None => raw(&text),
    }
    Ok(0)
}

/// Signs the object of a signing request: only with the NA key the request names, under the key
/// id it names, and checked with that key before anything is written.
fn sign_request(args: &SignArgs, value: &Value) -> Result<u8, Error> {
    let file = &args.file;
    let mut request =
        SigningRequest::from_value(value).map_err(|source| Error::Model { path: file.clone(), source })?;
    if request.stage == Stage::Signed || request.signature_count() > 0 {
        return Err(Error::usage(
            format!("{} is already signed", file.display()),
            format!(
                "publish it with {}; sign the unsigned request file, not its signed reply",
                publish_command(request.kind)
            ),
        ));
    }
    if let Some(kind) = args.kind.as_deref().filter(|k| *k != request.kind.name()) {
        return Err(Error::usage(
            format!("--kind {kind} does not match the request, which holds a {}", request.kind.name()),
            "omit --kind: a signing request names its kind",
        ));
    }
    let key_id = match args.key_id.as_deref() {
        Some(id) if id != request.na_key_id => {
            return Err(Error::usage(
                format!("--key-id {id} is not the key id the request names ({})", request.na_key_id),
                "omit --key-id: the object's issued_by names the key id its signature must carry",
            ))
        }
        _ => request.na_key_id.clone(),
    };
    let home = config::resolve_home(args.home.as_deref(), &Env::from_process());
    let key_path = args.key.clone().unwrap_or_else(|| home.join("keys/na.key"));
    let key = load_signing_key(&key_path)?;
    let public = key.public_key();
    if public.to_b64() != request.na_public_key {
        return Err(Error::usage(
            format!(
                "{} is not the NA key this request must be signed with: its public key is {}, the request names {} (the genesis NA key of {})",
                key_path.display(),
                public.to_b64(),
                request.na_public_key,
                request.network_name
            ),
            "sign with the NA private key whose public half is network_authority.public_key in the genesis; a treaty signed with another key is refused by the NA",
        ));
    }
    let signed = sign_as(request.kind, &request.object, &key, &key_id)
        .map_err(|source| Error::Model { path: file.clone(), source })?;
    let checked =
        check_as(request.kind, &signed, &[public]).map_err(|source| Error::Model { path: file.clone(), source })?;
    if !checked.outcome.is_valid() {
        return Err(Error::refused(
            format!("the signature just made over {} does not verify with the key that made it", file.display()),
            "this is a gm bug: please report it with the request file (it holds no secret)",
        ));
    }
    request.stage = Stage::Signed;
    request.object = signed;
    let text = object_file_text(&request.to_value());
    let Some(out) = &args.output else {
        raw(&text);
        return Ok(0);
    };
    write_public_file(out, &text, args.force)?;
    let id = request.object_id();
    let value = Value::Object(object(vec![
        ("file", Value::from(file.display().to_string())),
        ("key_id", Value::from(key_id.as_str())),
        ("kind", Value::from(request.kind.name())),
        ("network_name", Value::from(request.network_name.as_str())),
        ("object_id", id.map_or(Value::Null, Value::from)),
        ("output", Value::from(out.display().to_string())),
    ]));
    let text = format!(
        "signed the {} signing request {} of {} ({}) with key id {key_id}: wrote {}\nnext: the operator publishes it: {} --na {} {}",
        request.kind.name(),
        file.display(),
        request.network_name,
        id.unwrap_or("?"),
        out.display(),
        publish_command(request.kind),
        request.na_url.as_deref().unwrap_or("URL"),
        out.display()
    );
    Output { json: args.json }.result(&text, &value);
    Ok(0)
}

/// Runs `gm verify`.
pub(crate) fn run_verify(args: VerifyArgs) -> Result<u8, Error> {
    let value = read_json(&args.file)?;
    let kind = resolve_kind(args.kind.as_deref(), &value, &args.file)?;
    let key = match (&args.public_key, kind) {
        (Some(path), _) => load_public_key(path)?,
        (None, Kind::Genesis) => self_declared_root(&value, &args.file)?,
        (None, _) => {
            let home = config::resolve_home(args.home.as_deref(), &Env::from_process());
            load_public_key(&home.join("keys/na.pub"))?
        }
    };
    let checked = check_as(kind, &value, &[key]).map_err(|source| Error::Model { path: args.file.clone(), source })?;
    let reason = describe(&checked.outcome, checked.signature_count, kind.verify_rule());
    let valid = checked.outcome.is_valid();
    let out = Output { json: args.json };
    let text = if valid {
        format!("valid: {} {} ({reason})", kind.name(), args.file.display())
    } else {
        format!("invalid: {} {}: {reason}", kind.name(), args.file.display())
    };
    let value = Value::Object(object(vec![
        ("canonical_sha256", Value::from(sha256_hex(&checked.canonical))),
        ("file", Value::from(args.file.display().to_string())),
        ("kind", Value::from(kind.name())),
        ("reason", Value::from(reason.as_str())),
        ("rule", Value::from(rule_name(kind.verify_rule()))),
        ("signature_count", Value::from(checked.signature_count)),
        ("valid", Value::Bool(valid)),
    ]));
    out.result(&text, &value);
    Ok(if valid { 0 } else { super::error::EXIT_CHECK_FAILED })
}

/// Upstream's genesis verification uses the block's own `root_public_key`.
fn self_declared_root(value: &Value, file: &Path) -> Result<PublicKey, Error> {
    let text = value.as_object().and_then(|m| m.get("root_public_key")).and_then(Value::as_str);
    let text =
        text.ok_or_else(|| Error::usage(format!("{} has no root_public_key", file.display()), "pass --public-key"))?;
    Ok(PublicKey::from_b64(text)?)
}

fn resolve_kind(flag: Option<&str>, value: &Value, file: &Path) -> Result<Kind, Error> {
    match flag {
        Some(name) => Kind::from_name(name).ok_or_else(|| {
            Error::usage(
                format!("unknown kind {name:?}"),
                "choose one of: genesis, cert, policy, crl, attestation, treaty, feed, agent",
            )
        }),
        None => Kind::detect(value).ok_or_else(|| {
            Error::usage(
                format!("cannot tell which kind of signed object {} is", file.display()),
                "pass --kind genesis|cert|policy|crl|attestation|treaty|feed|agent",
            )
        }),
    }
}

fn rule_name(rule: VerifyRule) -> &'static str {
    match rule {
        VerifyRule::All => "all",
        VerifyRule::Any => "any",
        VerifyRule::First => "first",
    }
}

/// The one-line reason shown for a verification outcome.
pub(crate) fn describe(outcome: &SignatureCheck, count: usize, rule: VerifyRule) -> String {
    match (outcome, rule) {
        (SignatureCheck::Valid, VerifyRule::All) => format!("all {count} signature(s) verify"),
        (SignatureCheck::Valid, VerifyRule::First) => "the first signature verifies".to_string(),
        (SignatureCheck::Valid, VerifyRule::Any) => "a signature verifies".to_string(),
        (SignatureCheck::Unsigned, _) => "the object carries no signatures".to_string(),
        (SignatureCheck::Invalid { index: Some(i) }, VerifyRule::All) => {
            format!("signature {} of {count} does not verify with the given key", i + 1)
        }
        (SignatureCheck::Invalid { .. }, VerifyRule::First) => {
            "the first signature does not verify with the given key (this kind checks only signatures[0])".to_string()
        }
        (SignatureCheck::Invalid { .. }, _) => format!("none of the {count} signature(s) verifies with the given key"),
    }
}
