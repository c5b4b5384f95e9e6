//! The NA connection flags shared by the commands that talk to a running NA (`gm admin`,
//! `gm treaty`, `gm feed`): `--na`, `--ca-file`, `--operator-key`, `--operator-key-id`, `--sig`,
//! `--json` and `--home` become a ready [`Session`] before any request is sent; public keys given
//! as flags. `--ca-file` (a private CA bundle, trusted instead of the host's roots) is read here
//! for every command that takes it, `gm join`, `gm probe` and `gm readiness` included
//! ([`na_client`], [`load_ca_file`]).
//!
//! Nothing here sends an admin request; each command group owns its own.

use std::io::Read;
use std::path::Path;

use crate::client::admin::{AdminClient, Operator, SigVersion};
use crate::client::{ClientOptions, NaClient, Trust};
use crate::clock::SystemClock;
use crate::config::{self, Env};
use crate::crypto::keys::{load_public_key, load_signing_key, PublicKey};

use super::error::{Error, Named};
use super::output::{notice, Output};

/// The connection flags every signed leaf command shares.
pub(crate) struct Connection<'a> {
    /// `--na`: the NA base URL.
    pub na: &'a str,
    /// `--ca-file`: the private CA bundle to trust instead of the host's roots, when given.
    pub ca_file: Option<&'a Path>,
    /// `--operator-key`: the operator private key file, when given.
    pub operator_key: Option<&'a Path>,
    /// `--operator-key-id`.
    pub operator_key_id: &'a str,
    /// `--sig`.
    pub sig: SigVersion,
    /// `--json`.
    pub json: bool,
    /// `--home`: supplies the default operator key.
    pub home: Option<&'a Path>,
}

/// A ready connection: the NA client, the loaded operator key, the signature version.
pub(crate) struct Session {
    /// The NA client.
    pub na: NaClient,
    /// The operator key and its id.
    pub operator: Operator,
    /// The admin signature version.
    pub sig: SigVersion,
    /// How results are printed.
    pub out: Output,
}

impl Session {
    /// An admin client signing as the operator, with the system clock.
    pub(crate) fn admin(&self) -> AdminClient<'_> {
        AdminClient::new(&self.na, &self.operator, self.sig, &SystemClock)
    }
}

/// Checks the URL and loads the operator key: everything that can fail before a request is sent.
pub(crate) fn connect(c: &Connection<'_>) -> Result<Session, Error> {
    if c.operator_key_id.trim().is_empty() {
        return Err(Error::usage(
            "--operator-key-id is empty",
            "pass the key id configured in the NA's OPERATOR_PUBLIC_KEYS_JSON",
        ));
    }
    let na = na_client(c.na, c.ca_file)?;
    let key_path = match c.operator_key {
        Some(path) => path.to_path_buf(),
        None => config::resolve_home(c.home, &Env::from_process()).join("offline/operator.key"),
    };
    let key = load_signing_key(&key_path)?;
    if c.sig == SigVersion::V1 {
        notice("warning: --sig v1 signs only the body, key id, time and nonce: anyone who sees this request can replay it within 300 s as another admin request; use it only for an upstream 0.16 NA");
    }
    Ok(Session {
        na,
        operator: Operator { key, key_id: c.operator_key_id.to_string() },
        sig: c.sig,
        out: Output { json: c.json },
    })
}

/// A client of the NA at `na` with the default timeouts, trusting only the CA bundle `ca_file` when
/// one is given, else the host's roots. The file is read and checked before any request is sent.
pub(crate) fn na_client(na: &str, ca_file: Option<&Path>) -> Result<NaClient, Error> {
    let trust = load_ca_file(ca_file)?;
    Ok(NaClient::new(na, ClientOptions { trust, ..ClientOptions::default() })?)
}

/// Largest `--ca-file` read: distributions' whole bundles are about 200 KiB.
const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// `--ca-file`: the trust of a private CA bundle (every certificate must parse, at least one), or
/// the host's roots when no file is given.
pub(crate) fn load_ca_file(ca_file: Option<&Path>) -> Result<Trust, Error> {
    let Some(path) = ca_file else {
        return Ok(Trust::HostRoots);
    };
    let unreadable = |cause: String| Named::CaFileUnreadable { path: path.to_path_buf(), cause };
    let mut pem = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CA_FILE_BYTES + 1).read_to_end(&mut pem))
        .map_err(|e| unreadable(e.to_string()))?;
    if pem.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(unreadable(format!("larger than {} MiB, not a CA bundle", MAX_CA_FILE_BYTES >> 20)).into());
    }
    Trust::private_bundle(&pem)
        .map_err(|e| Named::CaFileInvalid { path: path.to_path_buf(), problem: e.to_string() }.into())
}

/// argh parser for `--sig`.
pub(crate) fn parse_sig(text: &str) -> Result<SigVersion, String> {
    SigVersion::parse(text).ok_or_else(|| format!("expected v1 or v2, found {text:?}"))
}

/// Public keys given (`key_flag`, repeatable) as `.pub` files or as base64, checked
/// and rendered in standard base64, duplicates dropped, in the order given.
pub(crate) fn read_public_keys(key_flag: &str, keys: &[String]) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    for text in keys {
        if Path::new(text).is_file() {
            out.push(load_public_key(Path::new(text))?.to_b64());
            continue;
        }
        let key = PublicKey::from_b64(text.trim()).map_err(|e| {
            Error::usage(
                format!("{key_flag} {text:?} is not an Ed25519 public key: {e}"),
                "pass the NA public key in base64 (network_authority.public_key of that NA's GET /genesis), or its .pub file",
            )
        })?;
        out.push(key.to_b64());
    }
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|key| seen.insert(key.clone()));
    Ok(out)
}

/// A session against `url` signing as the test operator (v1, JSON output), for the cli tests that
/// drive a command against `client::fake_na`.
#[cfg(test)]
pub(crate) fn test_session(url: &str) -> Session {
    Session {
        na: NaClient::new(url, ClientOptions::default()).unwrap(),
        operator: Operator {
            key: crate::crypto::keys::SigningKey::from_seed_b64(crate::client::treaty::tests::OPERATOR_SEED).unwrap(),
            key_id: "operator-1".to_string(),
        },
        sig: SigVersion::V1,
        out: Output { json: true },
    }
}
