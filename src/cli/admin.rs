//! `gm admin`: operator commands against a running NA (`na-wire.md` §9.5): `invite`, `revoke`,
//! `policy set`, `policy publish`, `policy history` and `policy rollback`, each signed with an
//! operator key (§6). `policy set --unsigned-out` and `policy publish` are the offline signing
//! round trip of customer-held custody (`docs/custody.md`, files through `offline_signing.rs`).
//!
//! Every leaf command takes the connection flags itself (`gm admin invite --na URL …` reads better
//! than options placed before the action). Flags become typed values and the key is loaded before
//! any request is sent. An NA that says no exits 1 with its message; an NA that cannot be reached
//! exits 2 with a hint. An invite token is printed on stdout and nowhere else.

use argh::FromArgs;

use crate::client::admin::{InviteRequest, PolicyRequest, RevocationReason};
use crate::json::Value;
use crate::model::fields::{object, str_array};
use crate::model::policy::PolicyManifest;
use crate::model::{Kind, SignedObject};

use super::error::Error;
use super::flags::na_command;
use super::input::refuse_existing;
use super::na_options::connect;
use super::offline_signing;
use super::output::notice;

/// Operator commands against a running NA: invite tokens, revocations, network policy.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "admin",
    example = "gm admin invite --na http://127.0.0.1:8443 --role client\ngm admin revoke --na http://127.0.0.1:8443 --cert-id 1ede1147-34d3-4354-bc35-7b297a397050 --reason key_compromise\ngm admin policy history --na https://legacy-na.example.net --sig v1 --json",
    note = "Requests are signed with the operator key (--operator-key, default HOME/offline/operator.key) under --operator-key-id, which must be a key of the NA's OPERATOR_PUBLIC_KEYS_JSON. They are signed with version 2, which binds the method, path, query and the NA's key; pass --sig v1 only for an upstream 0.16 NA, which knows nothing else: a version-1 signature can be replayed by anyone who sees it as another admin request (e.g. a history read turned into an invite). Exit status: 0 done, 1 the NA refused, 2 the request could not be made."
)]
pub(crate) struct AdminArgs {
    #[argh(subcommand)]
    action: AdminAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum AdminAction {
    Invite(InviteArgs),
    Revoke(RevokeArgs),
    Policy(PolicyArgs),
}

na_command! {
/// Create a single-use invite token a node redeems with `gm join`.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "invite",
    example = "gm admin invite --na http://127.0.0.1:8443\ngm admin invite --na http://127.0.0.1:8443 --role anchor --role service:dns --max-validity-hours 720\ngm admin invite --na https://na.example.net --token-expiry-hours 2 --json",
    note = "The token is printed on stdout only: hand it to the node operator over a private channel. Anyone holding it can join until it is used or expires."
)]
pub(crate) struct InviteArgs {
    /// role for the certificate, repeatable; `role:` is added when missing (default role:client)
    #[argh(option)]
    role: Vec<String>,
    /// longest certificate validity the token allows, in hours (default 168)
    #[argh(option, default = "168")]
    max_validity_hours: u32,
    /// how long the token can be redeemed, in hours (default 24)
    #[argh(option, default = "24")]
    token_expiry_hours: u32,
}
}

na_command! {
/// Revoke a certificate; the NA publishes a new CRL.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "revoke",
    example = "gm admin revoke --na http://127.0.0.1:8443 --cert-id 1ede1147-34d3-4354-bc35-7b297a397050\ngm admin revoke --na http://127.0.0.1:8443 --cert-id 1ede1147-34d3-4354-bc35-7b297a397050 --reason key_compromise --json",
    note = "Every reason stops heartbeats and renewals of the certificate; key_compromise also bars the node key from joining again."
)]
pub(crate) struct RevokeArgs {
    /// id of the certificate to revoke (required)
    #[argh(option)]
    cert_id: String,
    /// key_compromise, cessation_of_operation, superseded or unspecified (default unspecified)
    #[argh(option, default = "RevocationReason::Unspecified", from_str_fn(parse_reason))]
    reason: RevocationReason,
}
}

/// Publish, list and roll back the network policy.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "policy",
    example = "gm admin policy set --na http://127.0.0.1:8443 --policy-id policy-2026-03 --min-client-version 0.16.0\ngm admin policy history --na http://127.0.0.1:8443\ngm admin policy rollback --na http://127.0.0.1:8443 --policy-id policy-2026-02"
)]
pub(crate) struct PolicyArgs {
    #[argh(subcommand)]
    action: PolicyAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum PolicyAction {
    Set(PolicySetArgs),
    Publish(PolicyPublishArgs),
    History(PolicyHistoryArgs),
    Rollback(PolicyRollbackArgs),
}

na_command! {
/// Publish a new policy and make it the active one.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "set",
    example = "gm admin policy set --na http://127.0.0.1:8443 --policy-id policy-2026-03 --min-client-version 0.16.0\ngm admin policy set --na http://127.0.0.1:8443 --policy-id p2 --min-client-version 0.16.0 --allowed-port 443 --allowed-service dns --max-hops 3 --preferred-transport quic\ngm admin policy set --na https://na.example.net --policy-id policy-2026-04 --min-client-version 0.16.0 --unsigned-out policy.request.json",
    note = "Only the fields given are sent; the NA fills the others with its defaults (ports 443 and 8443, no services, 6 hops, quic then wireguard). Publishing an existing policy id replaces that version. With --unsigned-out the NA signs and stores nothing: it answers the unsigned manifest as a signing request, written to FILE, for the NA key holder to sign offline (gm sign) and the operator to publish (gm admin policy publish)."
)]
pub(crate) struct PolicySetArgs {
    /// policy id (required)
    #[argh(option)]
    policy_id: String,
    /// oldest client version allowed on the network (required)
    #[argh(option)]
    min_client_version: String,
    /// allowed port, repeatable (default: the NA's, 443 and 8443)
    #[argh(option)]
    allowed_port: Vec<u16>,
    /// allowed service, repeatable (default: the NA's, none)
    #[argh(option)]
    allowed_service: Vec<String>,
    /// routing: maximum hops (default: the NA's, 6)
    #[argh(option)]
    max_hops: Option<u32>,
    /// routing: preferred transport, repeatable, in order (default: the NA's, quic then wireguard)
    #[argh(option)]
    preferred_transport: Vec<String>,
    /// write the unsigned manifest as a signing request to this file instead of having the NA sign it (customer-held custody)
    #[argh(option)]
    unsigned_out: Option<std::path::PathBuf>,
    /// replace an existing --unsigned-out file
    #[argh(switch)]
    force: bool,
}
}

na_command! {
/// Publish a policy the NA key holder signed offline and make it the active one.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "publish",
    example = "gm admin policy publish --na http://127.0.0.1:8443 policy.signed.json\ngm admin policy publish --na https://na.example.net --operator-key ~/.gm/operator.key --operator-key-id alice-2026 policy.signed.json --json",
    note = "FILE is what gm sign wrote for a gm admin policy set --unsigned-out request (or a bare signed manifest). The NA checks every signature against its genesis NA key and that the policy id is new, then activates it as gm admin policy set would. Exit status: 0 published, 1 the NA refused (wrong key, altered, already published), 2 the command could not run."
)]
pub(crate) struct PolicyPublishArgs {
    /// the signed policy file (required)
    #[argh(positional)]
    file: std::path::PathBuf,
}
}

na_command! {
/// List every stored policy version, newest first; `*` marks the active one.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "history",
    example = "gm admin policy history --na http://127.0.0.1:8443\ngm admin policy history --na https://na.example.net --json"
)]
pub(crate) struct PolicyHistoryArgs {
}
}

na_command! {
/// Make a stored policy version the active one again.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "rollback",
    example = "gm admin policy rollback --na http://127.0.0.1:8443 --policy-id policy-2026-02\ngm admin policy rollback --na http://127.0.0.1:8443 --policy-id policy-2026-02 --json",
    note = "The version keeps its original issue time and signature. `gm admin policy history` lists the ids."
)]
pub(crate) struct PolicyRollbackArgs {
    /// id of the stored version to activate (required)
    #[argh(option)]
    policy_id: String,
}
}

/// Runs `gm admin`.
pub(crate) fn run(args: AdminArgs) -> Result<u8, Error> {
    match args.action {
        AdminAction::Invite(a) => run_invite(a),
        AdminAction::Revoke(a) => run_revoke(a),
        AdminAction::Policy(p) => match p.action {
            PolicyAction::Set(a) => run_policy_set(a),
            PolicyAction::Publish(a) => run_policy_publish(a),
            PolicyAction::History(a) => run_policy_history(a),
            PolicyAction::Rollback(a) => run_policy_rollback(a),
        },
    }
}

fn run_invite(args: InviteArgs) -> Result<u8, Error> {
    if args.max_validity_hours == 0 || args.token_expiry_hours == 0 {
        return Err(Error::usage(
            "--max-validity-hours and --token-expiry-hours must be at least 1",
            "the NA refuses windows of zero hours",
        ));
    }
    let request = InviteRequest {
        roles: normalize_roles(&args.role),
        max_validity_hours: args.max_validity_hours,
        token_expiry_hours: args.token_expiry_hours,
    };
    let session = connect(&args.connection())?;
    let invite = session.admin().invite(&request)?;
    let roles = request.roles.join(", ");
    let text = format!(
        "invite token: {}\nexpires at: {}\nroles: {roles}; certificates valid up to {} h",
        invite.token.expose(),
        invite.expires_at,
        request.max_validity_hours
    );
    let value = Value::Object(object(vec![
        ("expires_at", Value::from(invite.expires_at.as_str())),
        ("max_validity_hours", Value::from(i64::from(request.max_validity_hours))),
        ("roles", str_array(&request.roles)),
        ("token_id", Value::from(invite.token.expose())),
    ]));
    session.out.result(&text, &value);
    if !args.json {
        notice("hand the token to the node operator privately: it is single use, and whoever holds it can join");
    }
    Ok(0)
}

fn run_revoke(args: RevokeArgs) -> Result<u8, Error> {
    if args.cert_id.trim().is_empty() {
        return Err(Error::usage(
            "--cert-id is empty",
            "pass the certificate id (cert_id in node.cert.json, or in the NA's /nodes list)",
        ));
    }
    let session = connect(&args.connection())?;
    let revocation = session.admin().revoke(&args.cert_id, args.reason)?;
    let text = format!(
        "revoked certificate {} ({}): CRL sequence {} lists {} certificate(s)",
        args.cert_id,
        args.reason.as_str(),
        revocation.crl_sequence,
        revocation.revoked_count
    );
    let value = Value::Object(object(vec![
        ("cert_id", Value::from(args.cert_id.as_str())),
        ("crl_sequence", Value::from(revocation.crl_sequence)),
        ("reason", Value::from(args.reason.as_str())),
        ("revoked_count", Value::from(revocation.revoked_count)),
    ]));
    session.out.result(&text, &value);
    Ok(0)
}

fn run_policy_set(args: PolicySetArgs) -> Result<u8, Error> {
    if let Some(out) = &args.unsigned_out {
        refuse_existing(out, args.force)?;
    } else if args.force {
        return Err(Error::usage("--force only applies to --unsigned-out", "drop --force"));
    }
    if args.policy_id.trim().is_empty() || args.min_client_version.trim().is_empty() {
        return Err(Error::usage(
            "--policy-id and --min-client-version must not be empty",
            "e.g. --policy-id policy-2026-03 --min-client-version 0.16.0",
        ));
    }
    let non_empty = |items: &[String]| (!items.is_empty()).then(|| items.to_vec());
    let request = PolicyRequest {
        policy_id: args.policy_id.clone(),
        min_client_version: args.min_client_version.clone(),
        allowed_ports: (!args.allowed_port.is_empty()).then(|| args.allowed_port.clone()),
        allowed_services: non_empty(&args.allowed_service),
        max_hops: args.max_hops,
        preferred_transports: non_empty(&args.preferred_transport),
    };
    let session = connect(&args.connection())?;
    if let Some(out) = &args.unsigned_out {
        return offline_signing::write_request(&session, session.admin().prepare_policy(&request)?, out, args.force);
    }
    let policy = session.admin().publish_policy(&request)?;
    let text = format!(
        "published policy {} (issued at {}); it is now the active policy",
        policy.policy_id,
        policy.issued_at.render_pydantic()
    );
    session.out.result(&text, &policy.to_value());
    Ok(0)
}

fn run_policy_publish(args: PolicyPublishArgs) -> Result<u8, Error> {
    let policy = offline_signing::signed_object(&args.file, Kind::Policy)?;
    let session = connect(&args.connection())?;
    let stored = session.admin().publish_signed_policy(&policy)?;
    let (text, value) = offline_signing::policy_published(&stored);
    session.out.result(&text, &value);
    Ok(0)
}

fn run_policy_history(args: PolicyHistoryArgs) -> Result<u8, Error> {
    let session = connect(&args.connection())?;
    let versions = session.admin().policy_history()?;
    let lines: Vec<String> = versions
        .iter()
        .map(|v| {
            let marker = if v.active { '*' } else { ' ' };
            format!("{marker} {} {}", v.created_at, v.policy_id)
        })
        .collect();
    let text = if lines.is_empty() {
        "no policy versions stored yet (the NA creates its default policy on the first GET /policy)".to_string()
    } else {
        lines.join("\n")
    };
    let rows = versions
        .iter()
        .map(|v| {
            Value::Object(object(vec![
                ("active", Value::Bool(v.active)),
                ("created_at", Value::from(v.created_at.as_str())),
                ("policy", v.policy.clone()),
                ("policy_id", Value::from(v.policy_id.as_str())),
            ]))
        })
        .collect();
    let value = Value::Object(object(vec![("versions", Value::Array(rows))]));
    session.out.result(&text, &value);
    Ok(0)
}

fn run_policy_rollback(args: PolicyRollbackArgs) -> Result<u8, Error> {
    if args.policy_id.trim().is_empty() {
        return Err(Error::usage("--policy-id is empty", "`gm admin policy history` lists the stored policy ids"));
    }
    let session = connect(&args.connection())?;
    let policy: PolicyManifest = session.admin().rollback_policy(&args.policy_id)?;
    let text = format!(
        "policy {} is the active policy again (issued at {})",
        policy.policy_id,
        policy.issued_at.render_pydantic()
    );
    session.out.result(&text, &policy.to_value());
    Ok(0)
}

/// Adds the `role:` prefix where it is missing, as upstream's CLI does; no roles means
/// `role:client`.
fn normalize_roles(roles: &[String]) -> Vec<String> {
    if roles.is_empty() {
        return vec!["role:client".to_string()];
    }
    roles.iter().map(|r| if r.starts_with("role:") { r.clone() } else { format!("role:{r}") }).collect()
}

fn parse_reason(text: &str) -> Result<RevocationReason, String> {
    RevocationReason::parse(text).ok_or_else(|| {
        let names: Vec<&str> = RevocationReason::ALL.iter().map(|r| r.as_str()).collect();
        format!("expected one of {}, found {text:?}", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::admin::SigVersion;

    #[test]
    fn roles_get_the_role_prefix_and_default_to_client() {
        assert_eq!(normalize_roles(&[]), vec!["role:client"]);
        assert_eq!(
            normalize_roles(&["anchor".to_string(), "role:service:dns".to_string()]),
            vec!["role:anchor", "role:service:dns"]
        );
    }

    #[test]
    fn flags_parse_into_typed_values() {
        let args = AdminArgs::from_args(
            &["gm", "admin"],
            &["revoke", "--na", "http://127.0.0.1:8443", "--cert-id", "c1", "--reason", "superseded", "--sig", "v2"],
        )
        .unwrap();
        match args.action {
            AdminAction::Revoke(r) => {
                assert_eq!(r.reason, RevocationReason::Superseded);
                assert_eq!(r.sig, SigVersion::V2);
                assert_eq!(r.operator_key_id, "operator-local");
            }
            other => panic!("parsed as {other:?}"),
        }
        let defaults = AdminArgs::from_args(&["gm", "admin"], &["invite", "--na", "http://na"]).unwrap();
        match defaults.action {
            AdminAction::Invite(i) => {
                assert_eq!(i.sig, SigVersion::V2, "v2 by default (F5): v1 binds neither method nor path");
                assert_eq!((i.max_validity_hours, i.token_expiry_hours), (168, 24));
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(AdminArgs::from_args(&["gm", "admin"], &["invite", "--na", "x", "--sig", "v3"]).is_err());
    }
}
