//! `gm treaty list|inspect|issue|publish|renew|replace|revoke`: the recognition treaties of a
//! running NA (`na-wire.md` §7.9, §9.3, §9.5, §11).
//!
//! `list` and `inspect` read the public routes and show each treaty's derived lifecycle (§11.3);
//! `inspect` also checks the NA signature against the key of the NA's own `GET /genesis`. `issue`
//! and `revoke` are single operator-signed requests. `renew` and `replace` are upstream's CLI
//! compositions (§11.1, there is no server route): issue a successor, then revoke the old treaty
//! with `renewed_by:<new id>` or `replaced_by:<new id>`. The destructive three refuse without
//! `--yes` before anything is sent, and `--dry-run` prints the plan without contacting the NA or
//! reading the operator key (in split operation the key holder reviews plans elsewhere).
//!
//! `issue --unsigned-out FILE` and `publish` are the offline signing round trip of customer-held
//! custody (`docs/custody.md`): the NA prepares the unsigned treaty, the key holder signs it with
//! `gm sign`, and `publish` hands it back (files through `cli/offline_signing.rs`).
//!
//! This file keeps the argh structs and runs each action: flags are checked in `treaty/flags.rs`,
//! requests and the renew/replace composition are `client::treaty` and
//! `client::treaty_succession`, and results are rendered by `treaty/render.rs`.

use std::path::PathBuf;

use argh::FromArgs;

use crate::client::genesis::na_public_key;
use crate::client::treaty::{fetch_row, issue, list, prepare, publish, revoke, IssueRequest, TreatyFilter};
use crate::client::treaty_succession::{Succession, SuccessionError, SuccessionKind, Terms};
use crate::clock::{Clock, SystemClock};
use crate::model::{Kind, SignedObject};

use super::error::{Error, EXIT_CHECK_FAILED};
use super::flags::na_command;
use super::input::refuse_existing;
use super::na_options::{connect, na_client, Connection};
use super::offline_signing;
use super::output::{notice, Output};

mod flags;
mod render;

use flags::{
    confirm, parse_metadata, parse_stored_status, parse_terms, require_id, require_validity, validate_succession,
};
use render::{inspect_result, issued_result, list_result, print_plan, report_succession, revoked_result};

/// Recognition treaties of a running NA: list, inspect, issue, publish, renew, replace, revoke.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "treaty",
    example = "gm treaty list --na http://127.0.0.1:8443 --status active\ngm treaty issue --na http://127.0.0.1:8443 --subject beta --subject-public-key beta-na.pub --allowed-role client\ngm treaty renew 1ede1147-34d3-4354-bc35-7b297a397050 --na http://127.0.0.1:8443 --yes",
    note = "list and inspect read public routes; issue, publish, renew, replace and revoke are signed with the operator key (--operator-key, default HOME/offline/operator.key). issue --unsigned-out and publish are the offline signing round trip of customer-held custody (docs/custody.md). Exit status: 0 done, 1 the NA refused or a check said no, 2 the command could not run."
)]
pub(crate) struct TreatyArgs {
    #[argh(subcommand)]
    action: TreatyAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum TreatyAction {
    List(ListArgs),
    Inspect(InspectArgs),
    Issue(IssueArgs),
    Publish(PublishArgs),
    Renew(RenewArgs),
    Replace(ReplaceArgs),
    Revoke(RevokeArgs),
}

/// List treaties with their stored status and derived lifecycle.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "list",
    example = "gm treaty list --na http://127.0.0.1:8443\ngm treaty list --na http://127.0.0.1:8443 --subject beta --status active\ngm treaty list --na https://na.example.net --issuer alpha --json",
    note = "One line per treaty: id, issuer → subject, stored status, lifecycle state/expiry risk, expiry. Exit status: 0 listed, 1 the NA refused, 2 the request could not be made."
)]
pub(crate) struct ListArgs {
    /// only treaties issued by this sovereign id (default: all)
    #[argh(option)]
    issuer: Option<String>,
    /// only treaties recognising this sovereign id (default: all)
    #[argh(option)]
    subject: Option<String>,
    /// only treaties with this stored status: active or revoked (default: all)
    #[argh(option, from_str_fn(parse_stored_status))]
    status: Option<String>,
    /// NA base URL, e.g. http://127.0.0.1:8443 (required)
    #[argh(option)]
    na: String,
    /// PEM bundle of a private CA (self-hosted PKI): an https NA is trusted only if one of its certificates issued the NA's, and the host's CA roots are not used (default: the host's CA bundle)
    #[argh(option)]
    ca_file: Option<PathBuf>,
    /// print the rows, each with a lifecycle object, as JSON
    #[argh(switch)]
    json: bool,
}

/// Show one treaty: every field, its lifecycle, and whether the NA signature verifies.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "inspect",
    example = "gm treaty inspect 1ede1147-34d3-4354-bc35-7b297a397050 --na http://127.0.0.1:8443\ngm treaty inspect 1ede1147-34d3-4354-bc35-7b297a397050 --na https://na.example.net --json",
    note = "The signature is checked against network_authority.public_key of the NA's GET /genesis. Exit status: 0 shown and the signature verifies, 1 the NA refused or the signature does not verify, 2 the request could not be made."
)]
pub(crate) struct InspectArgs {
    /// the treaty id (required)
    #[argh(positional)]
    treaty_id: String,
    /// NA base URL, e.g. http://127.0.0.1:8443 (required)
    #[argh(option)]
    na: String,
    /// PEM bundle of a private CA (self-hosted PKI): an https NA is trusted only if one of its certificates issued the NA's, and the host's CA roots are not used (default: the host's CA bundle)
    #[argh(option)]
    ca_file: Option<PathBuf>,
    /// print the row, its lifecycle and the signature check as JSON
    #[argh(switch)]
    json: bool,
}

na_command! {
/// Issue a treaty: this NA recognises the subject sovereign.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "issue",
    example = "gm treaty issue --na http://127.0.0.1:8443 --subject beta --subject-public-key beta-na.pub\ngm treaty issue --na http://127.0.0.1:8443 --subject beta --subject-public-key 8GFtLlsDpEJNfcATcNmBxcpzjgC9Vz8/N9FZUFXpOw4= --allowed-role client --accepted-status active --validity-hours 720\ngm treaty issue --na https://na.example.net --subject beta --subject-public-key beta-na.pub --unsigned-out treaty.request.json",
    note = "Prints the new treaty id. Scope and metadata are sent only when given; the NA defaults them (any role, active attestations, no metadata). With --unsigned-out the NA signs nothing and stores nothing: it answers the unsigned treaty as a signing request, written to FILE, for the NA key holder to sign offline (gm sign --key na.key FILE --output signed.json) and the operator to publish (gm treaty publish). Exit status: 0 issued (or the request written), 1 the NA refused, 2 the request could not be made."
)]
pub(crate) struct IssueArgs {
    /// the recognised (subject) sovereign id (required)
    #[argh(option)]
    subject: String,
    /// subject NA public key: base64 or a .pub file, repeatable (at least one is required)
    #[argh(option, long = "subject-public-key")]
    subject_key: Vec<String>,
    /// role the treaty accepts, repeatable; `role:` is added when missing (default: the NA's, any role)
    #[argh(option)]
    allowed_role: Vec<String>,
    /// attestation status the treaty accepts, repeatable: active, suspended or revoked (default: the NA's, active)
    #[argh(option)]
    accepted_status: Vec<String>,
    /// treaty validity in hours (default 168)
    #[argh(option, default = "168")]
    validity_hours: u32,
    /// metadata as a JSON object (default: none)
    #[argh(option)]
    metadata_json: Option<String>,
    /// write the unsigned treaty as a signing request to this file instead of having the NA sign it (customer-held custody)
    #[argh(option)]
    unsigned_out: Option<PathBuf>,
    /// replace an existing --unsigned-out file
    #[argh(switch)]
    force: bool,
}
}

na_command! {
/// Publish a treaty the NA key holder signed offline (gm sign on a gm treaty issue --unsigned-out request).
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "publish",
    example = "gm treaty publish --na http://127.0.0.1:8443 treaty.signed.json\ngm treaty publish --na https://na.example.net --operator-key ~/.gm/operator.key --operator-key-id alice-2026 treaty.signed.json --json",
    note = "FILE is what gm sign wrote for a signing request (or a bare signed treaty). The NA checks every signature against its genesis NA key, that it issues the treaty, that it has not expired and that its id is new, then stores it as gm treaty issue would. Exit status: 0 published, 1 the NA refused (wrong key, altered, expired, already published), 2 the command could not run."
)]
pub(crate) struct PublishArgs {
    /// the signed treaty file (required)
    #[argh(positional)]
    file: PathBuf,
}
}

na_command! {
/// Renew a treaty: issue a successor with the same terms, then revoke the old one.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "renew",
    example = "gm treaty renew 1ede1147-34d3-4354-bc35-7b297a397050 --na http://127.0.0.1:8443 --dry-run\ngm treaty renew 1ede1147-34d3-4354-bc35-7b297a397050 --na http://127.0.0.1:8443 --yes\ngm treaty renew 1ede1147-34d3-4354-bc35-7b297a397050 --na https://na.example.net --validity-hours 720 --yes --json",
    note = "The successor keeps the issuer, subject, keys, scope and metadata; the old treaty is revoked with reason renewed_by:<new id>. A revoked treaty is not renewed. Exit status: 0 renewed, 1 the NA refused (or the successor was issued but the old treaty could not be revoked: both ids are printed), 2 the command could not run."
)]
pub(crate) struct RenewArgs {
    /// the treaty to renew (required)
    #[argh(positional)]
    treaty_id: String,
    /// successor validity in hours (default 168)
    #[argh(option, default = "168")]
    validity_hours: u32,
    /// go ahead: renewing revokes the old treaty, which cannot be undone
    #[argh(switch)]
    yes: bool,
    /// print the plan; contact no NA and read no key
    #[argh(switch)]
    dry_run: bool,
}
}

na_command! {
/// Replace a treaty: issue a successor with new keys or scope, then revoke the old one.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "replace",
    example = "gm treaty replace 1ede1147-34d3-4354-bc35-7b297a397050 --na http://127.0.0.1:8443 --subject-public-key beta-na-2027.pub --dry-run\ngm treaty replace 1ede1147-34d3-4354-bc35-7b297a397050 --na http://127.0.0.1:8443 --allowed-role client --allowed-role anchor --yes\ngm treaty replace 1ede1147-34d3-4354-bc35-7b297a397050 --na https://na.example.net --accepted-status active --accepted-status suspended --yes --json",
    note = "Parts not given (keys, roles, statuses, claims, metadata, issuer, subject) are copied from the old treaty, which is revoked with reason replaced_by:<new id>. Give at least one key or scope change; to extend unchanged terms use gm treaty renew. Exit status: 0 replaced, 1 the NA refused (or the successor was issued but the old treaty could not be revoked: both ids are printed), 2 the command could not run."
)]
pub(crate) struct ReplaceArgs {
    /// the treaty to replace (required)
    #[argh(positional)]
    treaty_id: String,
    /// new subject NA public key: base64 or a .pub file, repeatable (default: the old keys)
    #[argh(option, long = "subject-public-key")]
    subject_key: Vec<String>,
    /// new allowed role, repeatable; `role:` is added when missing (default: the old roles)
    #[argh(option)]
    allowed_role: Vec<String>,
    /// new accepted attestation status, repeatable: active, suspended or revoked (default: the old statuses)
    #[argh(option)]
    accepted_status: Vec<String>,
    /// successor validity in hours (default 168)
    #[argh(option, default = "168")]
    validity_hours: u32,
    /// go ahead: replacing revokes the old treaty, which cannot be undone
    #[argh(switch)]
    yes: bool,
    /// print the plan; contact no NA and read no key
    #[argh(switch)]
    dry_run: bool,
}
}

na_command! {
/// Revoke a treaty. There is no un-revoke.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "revoke",
    example = "gm treaty revoke 1ede1147-34d3-4354-bc35-7b297a397050 --na http://127.0.0.1:8443 --dry-run\ngm treaty revoke 1ede1147-34d3-4354-bc35-7b297a397050 --na http://127.0.0.1:8443 --reason key_compromise --yes\ngm treaty revoke 1ede1147-34d3-4354-bc35-7b297a397050 --na https://na.example.net --reason renewed_by:5b1c0f9e-8a55-4a0e-9d8e-0b8f3d7e2c11 --yes --json",
    note = "Revoking again overwrites the stored time and reason. Exit status: 0 revoked, 1 the NA refused (404: no such treaty), 2 the command could not run."
)]
pub(crate) struct RevokeArgs {
    /// the treaty to revoke (required)
    #[argh(positional)]
    treaty_id: String,
    /// free-text reason; renewed_by:<id> and replaced_by:<id> name a successor (default unspecified)
    #[argh(option, default = "String::from(\"unspecified\")")]
    reason: String,
    /// go ahead: revocation cannot be undone
    #[argh(switch)]
    yes: bool,
    /// print the plan; contact no NA and read no key
    #[argh(switch)]
    dry_run: bool,
}
}

/// Runs `gm treaty`.
pub(crate) fn run(args: TreatyArgs) -> Result<u8, Error> {
    match args.action {
        TreatyAction::List(a) => run_list(a),
        TreatyAction::Inspect(a) => run_inspect(a),
        TreatyAction::Issue(a) => run_issue(a),
        TreatyAction::Publish(a) => run_publish(a),
        TreatyAction::Renew(a) => run_renew(a),
        TreatyAction::Replace(a) => run_replace(a),
        TreatyAction::Revoke(a) => run_revoke(a),
    }
}

fn run_list(args: ListArgs) -> Result<u8, Error> {
    let na = na_client(&args.na, args.ca_file.as_deref())?;
    let filter = TreatyFilter {
        issuer: args.issuer.as_deref(),
        subject: args.subject.as_deref(),
        status: args.status.as_deref(),
    };
    let rows = list(&na, &filter)?;
    let (text, value) = list_result(&rows, SystemClock.now());
    Output { json: args.json }.result(&text, &value);
    Ok(0)
}

fn run_inspect(args: InspectArgs) -> Result<u8, Error> {
    require_id(&args.treaty_id)?;
    let na = na_client(&args.na, args.ca_file.as_deref())?;
    let row = fetch_row(&na, &args.treaty_id)?;
    let na_key = na_public_key(&na)?;
    let verified = row.treaty.check_signatures(std::slice::from_ref(&na_key)).is_valid();
    let (text, value) = inspect_result(&row, SystemClock.now(), &na_key, verified);
    Output { json: args.json }.result(&text, &value);
    if verified {
        Ok(0)
    } else {
        notice(&format!("error: treaty {} is not signed by the NA key of {}/genesis", args.treaty_id, na.base_url()));
        Ok(EXIT_CHECK_FAILED)
    }
}

fn run_issue(args: IssueArgs) -> Result<u8, Error> {
    if let Some(out) = &args.unsigned_out {
        refuse_existing(out, args.force)?;
    } else if args.force {
        return Err(Error::usage("--force only applies to --unsigned-out", "drop --force"));
    }
    if args.subject.trim().is_empty() {
        return Err(Error::usage("--subject is empty", "pass the sovereign id of the sovereign to recognise"));
    }
    require_validity(args.validity_hours)?;
    let terms = parse_terms(&args.subject_key, &args.allowed_role, &args.accepted_status)?;
    if terms.subject_public_keys.is_empty() {
        return Err(Error::usage(
            "give at least one --subject-public-key or --subject-public-key",
            "the subject's keys are its NA public key: network_authority.public_key of its GET /genesis",
        ));
    }
    let metadata = args.metadata_json.as_deref().map(parse_metadata).transpose()?;
    let request = IssueRequest {
        issuer_sovereign_id: None,
        subject_sovereign_id: args.subject.clone(),
        subject_public_keys: terms.subject_public_keys.clone(),
        scope: terms.scope_patch(),
        validity_hours: args.validity_hours,
        metadata,
    };
    let session = connect(&args.connection())?;
    if let Some(out) = &args.unsigned_out {
        return offline_signing::write_request(&session, prepare(&session.admin(), &request)?, out, args.force);
    }
    let treaty = issue(&session.admin(), &request)?;
    let (text, value) = issued_result(&treaty);
    session.out.result(&text, &value);
    Ok(0)
}

fn run_publish(args: PublishArgs) -> Result<u8, Error> {
    let treaty = offline_signing::signed_object(&args.file, Kind::Treaty)?;
    let session = connect(&args.connection())?;
    let stored = publish(&session.admin(), &treaty)?;
    let (text, value) = offline_signing::treaty_published(&stored);
    session.out.result(&text, &value);
    Ok(0)
}

fn run_renew(args: RenewArgs) -> Result<u8, Error> {
    let plan = Succession {
        kind: SuccessionKind::Renew,
        old_id: args.treaty_id.clone(),
        validity_hours: args.validity_hours,
        terms: Terms::default(),
    };
    validate_succession(&plan)?;
    confirm(&format!("renew treaty {}", args.treaty_id), "renewing revokes the old treaty", args.yes, args.dry_run)?;
    let connection = args.connection();
    run_succession(&plan, &connection, args.dry_run)
}

fn run_replace(args: ReplaceArgs) -> Result<u8, Error> {
    let terms = parse_terms(&args.subject_key, &args.allowed_role, &args.accepted_status)?;
    if terms.is_unchanged() {
        return Err(Error::usage(
            "nothing to replace: give new --subject-public-key, --subject-public-key, --allowed-role or --accepted-status values",
            format!("to extend the treaty with unchanged terms use gm treaty renew {}", args.treaty_id),
        ));
    }
    let plan = Succession {
        kind: SuccessionKind::Replace,
        old_id: args.treaty_id.clone(),
        validity_hours: args.validity_hours,
        terms,
    };
    validate_succession(&plan)?;
    confirm(&format!("replace treaty {}", args.treaty_id), "replacing revokes the old treaty", args.yes, args.dry_run)?;
    let connection = args.connection();
    run_succession(&plan, &connection, args.dry_run)
}

fn run_revoke(args: RevokeArgs) -> Result<u8, Error> {
    require_id(&args.treaty_id)?;
    if args.reason.trim().is_empty() {
        return Err(Error::usage("--reason is empty", "omit it to revoke with reason unspecified"));
    }
    confirm(&format!("revoke treaty {}", args.treaty_id), "revocation cannot be undone", args.yes, args.dry_run)?;
    let out = Output { json: args.json };
    if args.dry_run {
        let na = na_client(&args.na, args.ca_file.as_deref())?;
        let steps = vec![format!("revoke treaty {} with reason {}", args.treaty_id, args.reason)];
        print_plan(out, "revoke", &args.treaty_id, na.base_url(), &steps);
        return Ok(0);
    }
    let session = connect(&args.connection())?;
    revoke(&session.admin(), &args.treaty_id, &args.reason)?;
    let (text, value) = revoked_result(&args.treaty_id, &args.reason);
    session.out.result(&text, &value);
    Ok(0)
}

fn run_succession(plan: &Succession, connection: &Connection<'_>, dry_run: bool) -> Result<u8, Error> {
    if dry_run {
        let na = na_client(connection.na, connection.ca_file)?;
        print_plan(Output { json: connection.json }, plan.kind.name(), &plan.old_id, na.base_url(), &plan.steps());
        return Ok(0);
    }
    let session = connect(connection)?;
    let outcome = plan.carry_out(&session.admin()).map_err(succession_error)?;
    Ok(report_succession(session.out, session.na.base_url(), plan, &outcome))
}

/// A renew or replace that issued nothing: an already revoked treaty is a refusal with a hint.
fn succession_error(error: SuccessionError) -> Error {
    match error {
        SuccessionError::AlreadyRevoked { .. } => Error::refused(
            error.to_string(),
            "issue a new treaty with gm treaty issue if the subject should be recognised again",
        ),
        SuccessionError::Client(e) => Error::from(e),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use crate::client::treaty::tests::OLD_ID;

    use super::*;

    /// A listener nobody accepts on: any request would leave a pending connection behind.
    fn silent_listener() -> (TcpListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        (listener, url)
    }

    fn assert_nothing_sent(listener: &TcpListener) {
        let pending = listener.accept();
        assert!(
            matches!(&pending, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "a connection was made: {pending:?}"
        );
    }

    fn treaty_args(args: &[&str]) -> TreatyArgs {
        TreatyArgs::from_args(&["gm", "treaty"], args).unwrap()
    }

    #[test]
    fn destructive_actions_without_yes_are_refused_before_anything_is_sent() {
        let (listener, url) = silent_listener();
        for args in [
            vec!["renew", OLD_ID, "--na", url.as_str()],
            vec!["replace", OLD_ID, "--na", url.as_str(), "--allowed-role", "client"],
            vec!["revoke", OLD_ID, "--na", url.as_str(), "--operator-key", "/nonexistent/operator.key"],
        ] {
            let err = run(treaty_args(&args)).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
            assert!(err.to_string().contains("without --yes"), "{err}");
            assert!(err.hint().unwrap().starts_with("add --yes"), "{args:?}");
        }
        assert_nothing_sent(&listener);
    }

    #[test]
    fn dry_run_prints_the_plan_and_sends_nothing() {
        let (listener, url) = silent_listener();
        for args in [
            vec!["renew", OLD_ID, "--na", url.as_str(), "--dry-run", "--json"],
            vec!["replace", OLD_ID, "--na", url.as_str(), "--accepted-status", "suspended", "--dry-run", "--json"],
            vec!["revoke", OLD_ID, "--na", url.as_str(), "--yes", "--dry-run", "--json"],
        ] {
            assert_eq!(run(treaty_args(&args)).unwrap(), 0, "{args:?}");
        }
        assert_nothing_sent(&listener);
    }

    #[test]
    fn replace_without_changes_is_a_usage_error() {
        let err = run(treaty_args(&["replace", OLD_ID, "--na", "http://127.0.0.1:1", "--yes"])).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.hint().unwrap().contains("gm treaty renew"));
    }
}
