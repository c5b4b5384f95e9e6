//! `gm join`: enrolls this machine as a node (`na-wire.md` §9.4). It redeems an invite token for a
//! certificate signed by the NA, writes it to `HOME/node.cert.json` and sends one heartbeat.
//!
//! The node key lives in `HOME/node.key` (mode 0600) and is created on first use. An existing
//! certificate is never replaced without `--force`, and that is checked before the single-use
//! token is spent. The token is never printed or logged; `--token -` reads it from stdin so it
//! stays out of shell history and the process list.

use std::path::{Path, PathBuf};

use argh::FromArgs;

use crate::client::admin::InviteToken;
use crate::client::node::{HeartbeatAck, NodeClient};
use crate::clock::SystemClock;
use crate::config::{self, Env};
use crate::crypto::keys::{load_signing_key, SigningKey};
use crate::json::Value;
use crate::model::certificate::JoinCertificate;
use crate::model::fields::{object, str_array};
use crate::model::SignedObject;

use super::error::{Error, Named};
use super::input::{object_file_text, write_public_file};
use super::keygen::write_key_pair;
use super::na_options::na_client;
use super::output::{notice, Output};

/// The node certificate file inside the home.
const CERT_FILE: &str = "node.cert.json";
/// Prefix of the node key files inside the home (`node.key`, `node.pub`).
const KEY_PREFIX: &str = "node";
/// Key id written into new node key files (upstream's default for node keys).
const NODE_KEY_ID: &str = "node-local";
/// The status the first heartbeat reports, as upstream nodes do.
const HEARTBEAT_STATUS: &str = "healthy";

/// Enroll this machine as a node: redeem an invite token for a certificate.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "join",
    example = "gm join --na http://127.0.0.1:8443 --token - --home /var/lib/gm-node < token.txt\ngm join --na https://na.example.net --token 3f2b8f3e-2f0c-4c1e-9a57-0d6f3f1a2b3c --home ./node1 --validity-hours 24 --ca-file ca.pem\ngm join --na http://127.0.0.1:8443 --token - --home ./node1 --force --json",
    note = "Creates HOME/node.key (mode 0600) if missing, writes HOME/node.cert.json, then sends one heartbeat. The certificate is accepted only when the NA key of GET /genesis signed it for this node's key. Exit status: 0 joined, 1 the NA refused, 2 the request could not be made."
)]
pub(crate) struct JoinArgs {
    /// NA base URL, e.g. http://127.0.0.1:8443 (required)
    #[argh(option)]
    na: String,
    /// PEM bundle of a private CA (self-hosted PKI): an https NA is trusted only if one of its certificates issued the NA's, and the host's CA roots are not used (default: the host's CA bundle)
    #[argh(option)]
    ca_file: Option<PathBuf>,
    /// invite token from `gm admin invite`, or - to read it from stdin (required)
    #[argh(option, from_str_fn(parse_token))]
    token: InviteToken,
    /// node home: holds node.key and node.cert.json (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// certificate validity to ask for, in hours; the NA caps it at the token's maximum (default 168)
    #[argh(option, default = "168")]
    validity_hours: u32,
    /// replace an existing node.cert.json
    #[argh(switch)]
    force: bool,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
}

/// Runs `gm join`.
pub(crate) fn run(args: JoinArgs) -> Result<u8, Error> {
    if args.validity_hours == 0 {
        return Err(Named::ZeroValidity { default_hours: 168 }.into());
    }
    let home = config::resolve_home(args.home.as_deref(), &Env::from_process());
    let cert_path = home.join(CERT_FILE);
    if !args.force && cert_path.exists() {
        return Err(Error::refused(
            format!("{} already exists: this home has joined a network", cert_path.display()),
            "pass --force to join again with a new token and replace it, or choose another --home",
        ));
    }
    let token = resolve_token(args.token)?;
    let na = na_client(&args.na, args.ca_file.as_deref())?;
    let key = node_key(&home)?;
    let node = NodeClient::new(&na, &key, &SystemClock);
    let cert = node.join(&token, args.validity_hours)?;
    write_public_file(&cert_path, &object_file_text(&cert.to_value()), args.force)?;
    let ack = node.heartbeat(&cert.cert_id, HEARTBEAT_STATUS).inspect_err(|_| {
        notice(&format!(
            "joined: certificate {} is in {}, but the first heartbeat failed",
            cert.cert_id,
            cert_path.display()
        ));
    })?;
    print_joined(Output { json: args.json }, &cert, &ack, &cert_path);
    Ok(0)
}

/// The token as given, or the first line of stdin for `-`.
fn resolve_token(token: InviteToken) -> Result<InviteToken, Error> {
    let token = if token.expose() == "-" {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(Error::io("read the invite token from", Path::new("stdin")))?;
        InviteToken::new(line.trim())
    } else {
        token
    };
    if token.expose().trim().is_empty() {
        return Err(Error::usage(
            "the invite token is empty",
            "pass the token from `gm admin invite` with --token, or --token - and the token on stdin",
        ));
    }
    Ok(token)
}

/// Loads `HOME/node.key`, creating the key pair on first use.
fn node_key(home: &Path) -> Result<SigningKey, Error> {
    let prefix = home.join(KEY_PREFIX);
    let key_path = home.join(format!("{KEY_PREFIX}.key"));
    if key_path.exists() {
        return Ok(load_signing_key(&key_path)?);
    }
    std::fs::create_dir_all(home).map_err(Error::io("create folder", home))?;
    let key = SigningKey::generate();
    write_key_pair(&key, Some(NODE_KEY_ID), &prefix, false)?;
    notice(&format!("created node key {} (public key {})", key_path.display(), key.public_key().to_b64()));
    Ok(key)
}

/// Prints the certificate and the heartbeat answer.
fn print_joined(out: Output, cert: &JoinCertificate, ack: &HeartbeatAck, cert_path: &Path) {
    let expires_at = cert.expires_at.render_pydantic();
    let text = format!(
        "joined {} as node {}\ncertificate {} (roles: {}) expires {expires_at}\nwrote {}\nheartbeat acknowledged at {}",
        cert.network_name,
        cert.node_public_key,
        cert.cert_id,
        cert.roles.join(", "),
        cert_path.display(),
        ack.server_time
    );
    let heartbeat = object(vec![("ack", Value::Bool(ack.ack)), ("server_time", Value::from(ack.server_time.as_str()))]);
    let value = Value::Object(object(vec![
        ("cert_file", Value::from(cert_path.display().to_string())),
        ("cert_id", Value::from(cert.cert_id.as_str())),
        ("expires_at", Value::from(expires_at.as_str())),
        ("heartbeat", Value::Object(heartbeat)),
        ("network_name", Value::from(cert.network_name.as_str())),
        ("node_public_key", Value::from(cert.node_public_key.as_str())),
        ("roles", str_array(&cert.roles)),
    ]));
    out.result(&text, &value);
}

fn parse_token(text: &str) -> Result<InviteToken, String> {
    Ok(InviteToken::new(text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_never_shows_in_debug_output() {
        let args = JoinArgs::from_args(&["gm", "join"], &["--na", "http://na", "--token", "3f2b8f3e-secret"]).unwrap();
        assert!(!format!("{args:?}").contains("3f2b8f3e"));
        assert_eq!(args.validity_hours, 168);
    }

    #[test]
    fn existing_certificate_is_refused_before_any_request() {
        let home = std::env::temp_dir().join(format!("gm-join-test-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join(CERT_FILE), "{}").unwrap();
        let args = JoinArgs::from_args(
            &["gm", "join"],
            &["--na", "http://127.0.0.1:9", "--token", "t", "--home", home.to_str().unwrap()],
        )
        .unwrap();
        let err = run(args).unwrap_err();
        assert!(err.to_string().ends_with("node.cert.json already exists: this home has joined a network"), "{err}");
        assert!(!home.join("node.key").exists());
        std::fs::remove_dir_all(&home).unwrap();
    }
}
