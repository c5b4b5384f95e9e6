//! `gm treaty list|inspect|issue|renew|replace|revoke`: the recognition treaties of a running NA
//! (`na-wire.md` §7.9, §9.3, §9.5, §11).
//!
//! `list` and `inspect` read the public routes and derive each treaty's lifecycle here (§11.3);
//! `inspect` also checks the NA signature against the key of the NA's own `GET /genesis`. `issue`
//! and `revoke` are single operator-signed requests. `renew` and `replace` are upstream's CLI
//! compositions (§11.1, there is no server route): issue a successor, then revoke the old treaty
//! with `renewed_by:<new id>` or `replaced_by:<new id>`. The destructive three refuse without
//! `--yes` before anything is sent, and `--dry-run` prints the plan without contacting the NA or
//! reading the operator key (in split operation the key holder reviews plans elsewhere).

use std::path::PathBuf;

use argh::FromArgs;
use chrono::{DateTime, Utc};

use crate::client::admin::SigVersion;
use crate::client::{ClientError, ClientOptions, NaClient, Reply};
use crate::clock::{Clock, SystemClock};
use crate::json::{parse_str, Map, Value};
use crate::model::attestation::STATUSES;
use crate::model::fields::{object, str_array};
use crate::model::treaty::RecognitionTreaty;
use crate::model::treaty_lifecycle::TreatyLifecycle;
use crate::model::SignedObject;

use super::error::{Error, EXIT_CHECK_FAILED};
use super::na_options::{
    connect, escape, na_public_key, parse_sig, read_public_keys, target_with_query, Connection, Session,
};
use super::output::{notice, Output};

/// Recognition treaties of a running NA: list, inspect, issue, renew, replace, revoke.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "treaty",
    example = "gm treaty list --na http://127.0.0.1:8443 --status active\ngm treaty issue --na http://127.0.0.1:8443 --subject beta --subject-key-file beta-na.pub --allowed-role client\ngm treaty renew 1ede1147-34d3-4354-bc35-7b297a397050 --na http://127.0.0.1:8443 --yes",
    note = "list and inspect read public routes; issue, renew, replace and revoke are signed with the operator key (--operator-key, default HOME/offline/operator.key). Exit status: 0 done, 1 the NA refused or a check said no, 2 the command could not run."
)]
pub struct TreatyArgs {
    #[argh(subcommand)]
    action: TreatyAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum TreatyAction {
    List(ListArgs),
    Inspect(InspectArgs),
    Issue(IssueArgs),
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
pub struct ListArgs {
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
pub struct InspectArgs {
    /// the treaty id (required)
    #[argh(positional)]
    treaty_id: String,
    /// NA base URL, e.g. http://127.0.0.1:8443 (required)
    #[argh(option)]
    na: String,
    /// print the row, its lifecycle and the signature check as JSON
    #[argh(switch)]
    json: bool,
}

/// Issue a treaty: this NA recognises the subject sovereign.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "issue",
    example = "gm treaty issue --na http://127.0.0.1:8443 --subject beta --subject-key-file beta-na.pub\ngm treaty issue --na http://127.0.0.1:8443 --subject beta --subject-key 8GFtLlsDpEJNfcATcNmBxcpzjgC9Vz8/N9FZUFXpOw4= --allowed-role client --accepted-status active --validity-hours 720\ngm treaty issue --na https://na.example.net --subject beta --subject-key-file beta-na.pub --metadata-json '{{\"ticket\":\"CHG-42\"}}' --json",
    note = "Prints the new treaty id. Scope and metadata are sent only when given; the NA defaults them (any role, active attestations, no metadata). Exit status: 0 issued, 1 the NA refused, 2 the request could not be made."
)]
pub struct IssueArgs {
    /// the recognised (subject) sovereign id (required)
    #[argh(option)]
    subject: String,
    /// subject NA public key in base64, repeatable (at least one key or key file is required)
    #[argh(option)]
    subject_key: Vec<String>,
    /// subject NA public key file (.pub), repeatable
    #[argh(option)]
    subject_key_file: Vec<PathBuf>,
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
    /// NA base URL, e.g. http://127.0.0.1:8443 (required)
    #[argh(option)]
    na: String,
    /// operator private key file, upstream format (default HOME/offline/operator.key)
    #[argh(option)]
    operator_key: Option<PathBuf>,
    /// operator key id, as named in the NA's OPERATOR_PUBLIC_KEYS_JSON (default operator-local)
    #[argh(option, default = "String::from(\"operator-local\")")]
    operator_key_id: String,
    /// admin signature version: v2 (gm, upstream 1.x NAs) or v1 (only for an upstream 0.16 NA: replayable on other admin routes) (default v2)
    #[argh(option, default = "SigVersion::V2", from_str_fn(parse_sig))]
    sig: SigVersion,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
    /// gm home (default $GM_HOME, else /etc/gm): supplies the default operator key
    #[argh(option)]
    home: Option<PathBuf>,
}

/// Renew a treaty: issue a successor with the same terms, then revoke the old one.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "renew",
    example = "gm treaty renew 1ede1147-34d3-4354-bc35-7b297a397050 --na http://127.0.0.1:8443 --dry-run\ngm treaty renew 1ede1147-34d3-4354-bc35-7b297a397050 --na http://127.0.0.1:8443 --yes\ngm treaty renew 1ede1147-34d3-4354-bc35-7b297a397050 --na https://na.example.net --validity-hours 720 --yes --json",
    note = "The successor keeps the issuer, subject, keys, scope and metadata; the old treaty is revoked with reason renewed_by:<new id>. A revoked treaty is not renewed. Exit status: 0 renewed, 1 the NA refused (or the successor was issued but the old treaty could not be revoked: both ids are printed), 2 the command could not run."
)]
pub struct RenewArgs {
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
    /// NA base URL, e.g. http://127.0.0.1:8443 (required)
    #[argh(option)]
    na: String,
    /// operator private key file, upstream format (default HOME/offline/operator.key)
    #[argh(option)]
    operator_key: Option<PathBuf>,
    /// operator key id, as named in the NA's OPERATOR_PUBLIC_KEYS_JSON (default operator-local)
    #[argh(option, default = "String::from(\"operator-local\")")]
    operator_key_id: String,
    /// admin signature version: v2 (gm, upstream 1.x NAs) or v1 (only for an upstream 0.16 NA: replayable on other admin routes) (default v2)
    #[argh(option, default = "SigVersion::V2", from_str_fn(parse_sig))]
    sig: SigVersion,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
    /// gm home (default $GM_HOME, else /etc/gm): supplies the default operator key
    #[argh(option)]
    home: Option<PathBuf>,
}

/// Replace a treaty: issue a successor with new keys or scope, then revoke the old one.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "replace",
    example = "gm treaty replace 1ede1147-34d3-4354-bc35-7b297a397050 --na http://127.0.0.1:8443 --subject-key-file beta-na-2027.pub --dry-run\ngm treaty replace 1ede1147-34d3-4354-bc35-7b297a397050 --na http://127.0.0.1:8443 --allowed-role client --allowed-role anchor --yes\ngm treaty replace 1ede1147-34d3-4354-bc35-7b297a397050 --na https://na.example.net --accepted-status active --accepted-status suspended --yes --json",
    note = "Parts not given (keys, roles, statuses, claims, metadata, issuer, subject) are copied from the old treaty, which is revoked with reason replaced_by:<new id>. Give at least one key or scope change; to extend unchanged terms use gm treaty renew. Exit status: 0 replaced, 1 the NA refused (or the successor was issued but the old treaty could not be revoked: both ids are printed), 2 the command could not run."
)]
pub struct ReplaceArgs {
    /// the treaty to replace (required)
    #[argh(positional)]
    treaty_id: String,
    /// new subject NA public key in base64, repeatable (default: the old keys)
    #[argh(option)]
    subject_key: Vec<String>,
    /// new subject NA public key file (.pub), repeatable (default: the old keys)
    #[argh(option)]
    subject_key_file: Vec<PathBuf>,
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
    /// NA base URL, e.g. http://127.0.0.1:8443 (required)
    #[argh(option)]
    na: String,
    /// operator private key file, upstream format (default HOME/offline/operator.key)
    #[argh(option)]
    operator_key: Option<PathBuf>,
    /// operator key id, as named in the NA's OPERATOR_PUBLIC_KEYS_JSON (default operator-local)
    #[argh(option, default = "String::from(\"operator-local\")")]
    operator_key_id: String,
    /// admin signature version: v2 (gm, upstream 1.x NAs) or v1 (only for an upstream 0.16 NA: replayable on other admin routes) (default v2)
    #[argh(option, default = "SigVersion::V2", from_str_fn(parse_sig))]
    sig: SigVersion,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
    /// gm home (default $GM_HOME, else /etc/gm): supplies the default operator key
    #[argh(option)]
    home: Option<PathBuf>,
}

/// Revoke a treaty. There is no un-revoke.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "revoke",
    example = "gm treaty revoke 1ede1147-34d3-4354-bc35-7b297a397050 --na http://127.0.0.1:8443 --dry-run\ngm treaty revoke 1ede1147-34d3-4354-bc35-7b297a397050 --na http://127.0.0.1:8443 --reason key_compromise --yes\ngm treaty revoke 1ede1147-34d3-4354-bc35-7b297a397050 --na https://na.example.net --reason renewed_by:5b1c0f9e-8a55-4a0e-9d8e-0b8f3d7e2c11 --yes --json",
    note = "Revoking again overwrites the stored time and reason. Exit status: 0 revoked, 1 the NA refused (404: no such treaty), 2 the command could not run."
)]
pub struct RevokeArgs {
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
    /// NA base URL, e.g. http://127.0.0.1:8443 (required)
    #[argh(option)]
    na: String,
    /// operator private key file, upstream format (default HOME/offline/operator.key)
    #[argh(option)]
    operator_key: Option<PathBuf>,
    /// operator key id, as named in the NA's OPERATOR_PUBLIC_KEYS_JSON (default operator-local)
    #[argh(option, default = "String::from(\"operator-local\")")]
    operator_key_id: String,
    /// admin signature version: v2 (gm, upstream 1.x NAs) or v1 (only for an upstream 0.16 NA: replayable on other admin routes) (default v2)
    #[argh(option, default = "SigVersion::V2", from_str_fn(parse_sig))]
    sig: SigVersion,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
    /// gm home (default $GM_HOME, else /etc/gm): supplies the default operator key
    #[argh(option)]
    home: Option<PathBuf>,
}

/// Runs `gm treaty`.
pub fn run(args: TreatyArgs) -> Result<u8, Error> {
    match args.action {
        TreatyAction::List(a) => run_list(a),
        TreatyAction::Inspect(a) => run_inspect(a),
        TreatyAction::Issue(a) => run_issue(a),
        TreatyAction::Renew(a) => run_renew(a),
        TreatyAction::Replace(a) => run_replace(a),
        TreatyAction::Revoke(a) => run_revoke(a),
    }
}

fn run_list(args: ListArgs) -> Result<u8, Error> {
    let na = NaClient::new(&args.na, ClientOptions::default())?;
    let target = target_with_query(
        "/recognition-treaties",
        &[
            ("issuer_sovereign_id", args.issuer.as_deref()),
            ("subject_sovereign_id", args.subject.as_deref()),
            ("status", args.status.as_deref()),
        ],
    );
    let reply = na.get_object(&na.deadline(), &target)?;
    let rows = reply
        .object()?
        .get("recognition_treaties")
        .and_then(Value::as_array)
        .ok_or_else(|| reply.bad("field recognition_treaties is missing or not a list"))?
        .iter()
        .map(|row| TreatyRow::parse(&reply, row))
        .collect::<Result<Vec<_>, _>>()?;
    let now = SystemClock.now();
    let lines: Vec<String> = rows.iter().map(|row| row.summary_line(now)).collect();
    let text = if lines.is_empty() { "no recognition treaties match".to_string() } else { lines.join("\n") };
    let values: Vec<Value> = rows.iter().map(|row| row.value_with_lifecycle(now)).collect();
    let value = Value::Object(object(vec![
        ("count", Value::from(i64::try_from(values.len()).unwrap_or(i64::MAX))),
        ("recognition_treaties", Value::Array(values)),
    ]));
    Output { json: args.json }.result(&text, &value);
    Ok(0)
}

fn run_inspect(args: InspectArgs) -> Result<u8, Error> {
    require_id(&args.treaty_id)?;
    let na = NaClient::new(&args.na, ClientOptions::default())?;
    let row = fetch_row(&na, &args.treaty_id)?;
    let na_key = na_public_key(&na)?;
    let verified = row.treaty.check_signatures(std::slice::from_ref(&na_key)).is_valid();
    let now = SystemClock.now();
    let mut value = row.value_with_lifecycle(now);
    if let Some(map) = value.as_object_mut() {
        map.insert(
            "signature",
            Value::Object(object(vec![
                ("na_public_key", Value::from(na_key.to_b64())),
                ("verified", Value::Bool(verified)),
            ])),
        );
    }
    let verdict = if verified {
        format!("verifies against the genesis NA key {}", na_key.to_b64())
    } else {
        format!("DOES NOT verify against the genesis NA key {}", na_key.to_b64())
    };
    Output { json: args.json }.result(&format!("{}\nsignature:    {verdict}", row.details(now)), &value);
    if verified {
        Ok(0)
    } else {
        notice(&format!("error: treaty {} is not signed by the NA key of {}/genesis", args.treaty_id, na.base_url()));
        Ok(EXIT_CHECK_FAILED)
    }
}

fn run_issue(args: IssueArgs) -> Result<u8, Error> {
    if args.subject.trim().is_empty() {
        return Err(Error::usage("--subject is empty", "pass the sovereign id of the sovereign to recognise"));
    }
    require_validity(args.validity_hours)?;
    let terms = Terms::parse(&args.subject_key, &args.subject_key_file, &args.allowed_role, &args.accepted_status)?;
    if terms.subject_public_keys.is_empty() {
        return Err(Error::usage(
            "give at least one --subject-key or --subject-key-file",
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
    let session = connect(&Connection {
        na: &args.na,
        operator_key: args.operator_key.as_deref(),
        operator_key_id: &args.operator_key_id,
        sig: args.sig,
        json: args.json,
        home: args.home.as_deref(),
    })?;
    let treaty = issue(&session, &request)?;
    let text = format!(
        "treaty id: {}\n{} → {}, expires at {}",
        treaty.treaty_id,
        treaty.issuer_sovereign_id,
        treaty.subject_sovereign_id,
        treaty.expires_at.render_isoformat()
    );
    let value = Value::Object(object(vec![
        ("treaty", treaty.to_value()),
        ("treaty_id", Value::from(treaty.treaty_id.as_str())),
    ]));
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
    plan.validate()?;
    confirm(&format!("renew treaty {}", args.treaty_id), "renewing revokes the old treaty", args.yes, args.dry_run)?;
    let connection = Connection {
        na: &args.na,
        operator_key: args.operator_key.as_deref(),
        operator_key_id: &args.operator_key_id,
        sig: args.sig,
        json: args.json,
        home: args.home.as_deref(),
    };
    run_succession(&plan, &connection, args.dry_run)
}

fn run_replace(args: ReplaceArgs) -> Result<u8, Error> {
    let terms = Terms::parse(&args.subject_key, &args.subject_key_file, &args.allowed_role, &args.accepted_status)?;
    if terms.is_unchanged() {
        return Err(Error::usage(
            "nothing to replace: give new --subject-key, --subject-key-file, --allowed-role or --accepted-status values",
            format!("to extend the treaty with unchanged terms use gm treaty renew {}", args.treaty_id),
        ));
    }
    let plan = Succession {
        kind: SuccessionKind::Replace,
        old_id: args.treaty_id.clone(),
        validity_hours: args.validity_hours,
        terms,
    };
    plan.validate()?;
    confirm(&format!("replace treaty {}", args.treaty_id), "replacing revokes the old treaty", args.yes, args.dry_run)?;
    let connection = Connection {
        na: &args.na,
        operator_key: args.operator_key.as_deref(),
        operator_key_id: &args.operator_key_id,
        sig: args.sig,
        json: args.json,
        home: args.home.as_deref(),
    };
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
        let na = NaClient::new(&args.na, ClientOptions::default())?;
        let steps = vec![format!("revoke treaty {} with reason {}", args.treaty_id, args.reason)];
        print_plan(out, "revoke", &args.treaty_id, na.base_url(), &steps);
        return Ok(0);
    }
    let session = connect(&Connection {
        na: &args.na,
        operator_key: args.operator_key.as_deref(),
        operator_key_id: &args.operator_key_id,
        sig: args.sig,
        json: args.json,
        home: args.home.as_deref(),
    })?;
    revoke(&session, &args.treaty_id, &args.reason)?;
    let value = Value::Object(object(vec![
        ("reason", Value::from(args.reason.as_str())),
        ("status", Value::from("revoked")),
        ("treaty_id", Value::from(args.treaty_id.as_str())),
    ]));
    session.out.result(&format!("revoked treaty {} (reason {})", args.treaty_id, args.reason), &value);
    Ok(0)
}

/// Refuses a destructive action without `--yes`, before any key is read or request sent.
fn confirm(action: &str, consequence: &str, yes: bool, dry_run: bool) -> Result<(), Error> {
    if yes || dry_run {
        return Ok(());
    }
    Err(Error::usage(
        format!("refusing to {action} without --yes: {consequence}, which cannot be undone"),
        "add --yes to go ahead, or --dry-run to print the plan without sending anything",
    ))
}

fn require_id(treaty_id: &str) -> Result<(), Error> {
    if treaty_id.trim().is_empty() {
        return Err(Error::usage("the treaty id is empty", "gm treaty list shows the treaty ids"));
    }
    Ok(())
}

fn require_validity(hours: u32) -> Result<(), Error> {
    if hours == 0 {
        return Err(Error::usage("--validity-hours must be at least 1", "omit it for 168 hours"));
    }
    Ok(())
}

fn parse_stored_status(text: &str) -> Result<String, String> {
    match text {
        "active" | "revoked" => Ok(text.to_string()),
        _ => Err(format!("expected active or revoked, found {text:?}")),
    }
}

fn parse_metadata(text: &str) -> Result<Map, Error> {
    let hint = "pass a JSON object, e.g. --metadata-json '{\"ticket\":\"CHG-42\"}'";
    match parse_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Error::usage(format!("--metadata-json is a JSON {}, not an object", other.type_name()), hint)),
        Err(e) => Err(Error::usage(format!("--metadata-json is not valid JSON: {e}"), hint)),
    }
}

/// Keys and scope parts given on the command line; empty means "not given".
#[derive(Debug, Clone, Default, PartialEq)]
struct Terms {
    subject_public_keys: Vec<String>,
    allowed_roles: Option<Vec<String>>,
    accepted_statuses: Option<Vec<String>>,
}

impl Terms {
    fn parse(keys: &[String], key_files: &[PathBuf], roles: &[String], statuses: &[String]) -> Result<Terms, Error> {
        if let Some(bad) = statuses.iter().find(|s| !STATUSES.contains(&s.as_str())) {
            return Err(Error::usage(
                format!("--accepted-status {bad:?} is not an attestation status"),
                "use active, suspended or revoked",
            ));
        }
        let roles: Vec<String> =
            roles.iter().map(|r| if r.starts_with("role:") { r.clone() } else { format!("role:{r}") }).collect();
        Ok(Terms {
            subject_public_keys: read_public_keys("--subject-key", keys, key_files)?,
            allowed_roles: (!roles.is_empty()).then_some(roles),
            accepted_statuses: (!statuses.is_empty()).then(|| statuses.to_vec()),
        })
    }

    fn is_unchanged(&self) -> bool {
        self.subject_public_keys.is_empty() && self.allowed_roles.is_none() && self.accepted_statuses.is_none()
    }

    /// The scope object of an issue request: only the parts given, or `None`.
    fn scope_patch(&self) -> Option<Value> {
        let mut scope = Map::new();
        if let Some(roles) = &self.allowed_roles {
            scope.insert("allowed_roles", str_array(roles));
        }
        if let Some(statuses) = &self.accepted_statuses {
            scope.insert("accepted_statuses", str_array(statuses));
        }
        (!scope.is_empty()).then_some(Value::Object(scope))
    }
}

/// `POST /admin/recognition-treaties` parameters (§9.5); `None` fields are not sent.
#[derive(Debug, Clone, PartialEq)]
struct IssueRequest {
    issuer_sovereign_id: Option<String>,
    subject_sovereign_id: String,
    subject_public_keys: Vec<String>,
    scope: Option<Value>,
    validity_hours: u32,
    metadata: Option<Map>,
}

impl IssueRequest {
    fn body(&self) -> Value {
        let mut body = Map::new();
        if let Some(issuer) = &self.issuer_sovereign_id {
            body.insert("issuer_sovereign_id", issuer.as_str());
        }
        body.insert("subject_sovereign_id", self.subject_sovereign_id.as_str());
        body.insert("subject_public_keys", str_array(&self.subject_public_keys));
        if let Some(scope) = &self.scope {
            body.insert("scope", scope.clone());
        }
        body.insert("validity_hours", i64::from(self.validity_hours));
        if let Some(metadata) = &self.metadata {
            body.insert("metadata", Value::Object(metadata.clone()));
        }
        Value::Object(body)
    }
}

/// Sends the issue request and reads the signed treaty the NA answers with.
fn issue(session: &Session, request: &IssueRequest) -> Result<RecognitionTreaty, ClientError> {
    let reply = session.admin().send("POST", "/admin/recognition-treaties", Some(&request.body()))?;
    let map = reply.object()?;
    RecognitionTreaty::from_value(&Value::Object(map.clone())).map_err(|e| reply.bad(e.to_string()))
}

/// `POST /admin/recognition-treaties/<id>/revoke` with `reason`.
fn revoke(session: &Session, treaty_id: &str, reason: &str) -> Result<(), ClientError> {
    let body = Value::Object(object(vec![("reason", Value::from(reason))]));
    let target = format!("/admin/recognition-treaties/{}/revoke", escape(treaty_id));
    session.admin().send("POST", &target, Some(&body))?.object()?;
    Ok(())
}

/// `GET /recognition-treaties/<id>`.
fn fetch_row(na: &NaClient, treaty_id: &str) -> Result<TreatyRow, ClientError> {
    let reply = na.get_object(&na.deadline(), &format!("/recognition-treaties/{}", escape(treaty_id)))?;
    TreatyRow::parse(&reply, &reply.body)
}

/// One row of the treaty routes: `{"revocation_reason", "revoked_at", "status", "treaty"}`.
#[derive(Debug, Clone, PartialEq)]
struct TreatyRow {
    status: String,
    revocation_reason: Option<String>,
    revoked_at: Option<String>,
    treaty: RecognitionTreaty,
    /// The row as the NA sent it, for `--json`.
    raw: Map,
}

impl TreatyRow {
    fn parse(reply: &Reply, row: &Value) -> Result<TreatyRow, ClientError> {
        let map = row.as_object().ok_or_else(|| reply.bad("a treaty row is not an object"))?;
        let optional = |field: &str| map.get(field).and_then(Value::as_str).map(str::to_string);
        let status = optional("status").ok_or_else(|| reply.bad("a treaty row has no status"))?;
        let treaty = map.get("treaty").ok_or_else(|| reply.bad("a treaty row has no treaty"))?;
        let treaty = RecognitionTreaty::from_value(treaty).map_err(|e| reply.bad(e.to_string()))?;
        Ok(TreatyRow {
            status,
            revocation_reason: optional("revocation_reason"),
            revoked_at: optional("revoked_at"),
            treaty,
            raw: map.clone(),
        })
    }

    fn lifecycle(&self, now: DateTime<Utc>) -> TreatyLifecycle {
        TreatyLifecycle::derive(
            &self.status,
            self.revocation_reason.as_deref(),
            self.revoked_at.as_deref(),
            &self.treaty.expires_at,
            now,
        )
    }

    fn value_with_lifecycle(&self, now: DateTime<Utc>) -> Value {
        let mut map = self.raw.clone();
        map.insert("lifecycle", self.lifecycle(now).to_value());
        Value::Object(map)
    }

    fn summary_line(&self, now: DateTime<Utc>) -> String {
        let life = self.lifecycle(now);
        format!(
            "{}  {} → {}  {}  {}/{}  expires {}",
            self.treaty.treaty_id,
            self.treaty.issuer_sovereign_id,
            self.treaty.subject_sovereign_id,
            self.status,
            life.state.as_str(),
            life.expiry_risk.as_str(),
            self.treaty.expires_at.render_isoformat()
        )
    }

    fn details(&self, now: DateTime<Utc>) -> String {
        let t = &self.treaty;
        let life = self.lifecycle(now);
        let list = |items: &[String], empty: &str| if items.is_empty() { empty.to_string() } else { items.join(", ") };
        let json = |map: &Map| crate::crypto::canonical::canonical_string(&Value::Object(map.clone()));
        let revoked = match (&self.revoked_at, &self.revocation_reason) {
            (Some(at), reason) => format!(" (revoked at {at}, reason {})", reason.as_deref().unwrap_or("unspecified")),
            (None, _) => String::new(),
        };
        let left = life.seconds_until_expiry.map(|s| format!(", {s} s left")).unwrap_or_default();
        let successor = life.replacement_treaty_id.map(|id| format!(", successor {id}")).unwrap_or_default();
        [
            format!("treaty:       {}", t.treaty_id),
            format!("issuer:       {}", t.issuer_sovereign_id),
            format!("subject:      {}", t.subject_sovereign_id),
            format!("subject keys: {}", t.subject_public_keys.join(", ")),
            format!("roles:        {}", list(&t.scope.allowed_roles, "any")),
            format!("statuses:     {}", list(&t.scope.accepted_statuses, "none")),
            format!("claims:       {}", json(&t.scope.claims)),
            format!("signed as:    {}", t.status),
            format!("stored:       {}{revoked}", self.status),
            format!("issued at:    {}", t.issued_at.render_isoformat()),
            format!("valid from:   {}", t.valid_from.render_isoformat()),
            format!("expires at:   {}", t.expires_at.render_isoformat()),
            format!("issued by:    {}", t.issued_by),
            format!("metadata:     {}", json(&t.metadata)),
            format!(
                "lifecycle:    {} (expiry risk {}{left}{successor})",
                life.state.as_str(),
                life.expiry_risk.as_str()
            ),
        ]
        .join("\n")
    }
}

/// Which composition of §11.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SuccessionKind {
    Renew,
    Replace,
}

impl SuccessionKind {
    fn name(self) -> &'static str {
        match self {
            SuccessionKind::Renew => "renew",
            SuccessionKind::Replace => "replace",
        }
    }

    /// The revocation reason prefix naming the successor.
    fn reason_prefix(self) -> &'static str {
        match self {
            SuccessionKind::Renew => "renewed_by:",
            SuccessionKind::Replace => "replaced_by:",
        }
    }
}

/// A renew or replace: the old treaty, the successor's validity and the changed terms.
#[derive(Debug, Clone, PartialEq)]
struct Succession {
    kind: SuccessionKind,
    old_id: String,
    validity_hours: u32,
    terms: Terms,
}

/// What a renew or replace did.
#[derive(Debug)]
enum SuccessionOutcome {
    /// Successor issued, old treaty revoked.
    Done { successor: RecognitionTreaty, reason: String },
    /// Successor issued, but the old treaty is still active.
    RevokeFailed { successor: RecognitionTreaty, reason: String, error: ClientError },
}

impl Succession {
    fn validate(&self) -> Result<(), Error> {
        require_id(&self.old_id)?;
        require_validity(self.validity_hours)
    }

    /// The successor's issue request: the old treaty's terms with the given ones laid over.
    fn successor_request(&self, old: &RecognitionTreaty) -> IssueRequest {
        let mut scope = old.scope.clone();
        if let Some(roles) = &self.terms.allowed_roles {
            scope.allowed_roles.clone_from(roles);
        }
        if let Some(statuses) = &self.terms.accepted_statuses {
            scope.accepted_statuses.clone_from(statuses);
        }
        let keys = if self.terms.subject_public_keys.is_empty() {
            old.subject_public_keys.clone()
        } else {
            self.terms.subject_public_keys.clone()
        };
        IssueRequest {
            issuer_sovereign_id: Some(old.issuer_sovereign_id.clone()),
            subject_sovereign_id: old.subject_sovereign_id.clone(),
            subject_public_keys: keys,
            scope: Some(scope.to_value()),
            validity_hours: self.validity_hours,
            metadata: (!old.metadata.is_empty()).then(|| old.metadata.clone()),
        }
    }

    /// The steps, for `--dry-run`.
    fn steps(&self) -> Vec<String> {
        let mut changes = Vec::new();
        if !self.terms.subject_public_keys.is_empty() {
            changes.push(format!("subject keys {}", self.terms.subject_public_keys.join(", ")));
        }
        if let Some(roles) = &self.terms.allowed_roles {
            changes.push(format!("allowed roles {}", roles.join(", ")));
        }
        if let Some(statuses) = &self.terms.accepted_statuses {
            changes.push(format!("accepted statuses {}", statuses.join(", ")));
        }
        let terms = if changes.is_empty() {
            "the same issuer, subject, keys, scope and metadata".to_string()
        } else {
            format!("{}; everything else copied from the old treaty", changes.join("; "))
        };
        vec![
            format!("read treaty {} (GET /recognition-treaties/{}); stop if it is revoked", self.old_id, self.old_id),
            format!("issue a successor valid {} h with {terms}", self.validity_hours),
            format!("revoke treaty {} with reason {}<new treaty id>", self.old_id, self.kind.reason_prefix()),
        ]
    }

    /// Reads the old treaty, issues the successor, revokes the old one.
    fn carry_out(&self, session: &Session) -> Result<SuccessionOutcome, Error> {
        let row = fetch_row(&session.na, &self.old_id)?;
        if row.status == "revoked" {
            return Err(Error::refused(
                format!(
                    "refusing to {} treaty {}: it is already revoked (reason {})",
                    self.kind.name(),
                    self.old_id,
                    row.revocation_reason.as_deref().unwrap_or("unspecified")
                ),
                "issue a new treaty with gm treaty issue if the subject should be recognised again",
            ));
        }
        let successor = issue(session, &self.successor_request(&row.treaty))?;
        let reason = format!("{}{}", self.kind.reason_prefix(), successor.treaty_id);
        Ok(match revoke(session, &self.old_id, &reason) {
            Ok(()) => SuccessionOutcome::Done { successor, reason },
            Err(error) => SuccessionOutcome::RevokeFailed { successor, reason, error },
        })
    }
}

fn run_succession(plan: &Succession, connection: &Connection<'_>, dry_run: bool) -> Result<u8, Error> {
    if dry_run {
        let na = NaClient::new(connection.na, ClientOptions::default())?;
        print_plan(Output { json: connection.json }, plan.kind.name(), &plan.old_id, na.base_url(), &plan.steps());
        return Ok(0);
    }
    let session = connect(connection)?;
    let outcome = plan.carry_out(&session)?;
    Ok(report_succession(&session, plan, &outcome))
}

/// Prints what a renew or replace did; returns the exit status.
fn report_succession(session: &Session, plan: &Succession, outcome: &SuccessionOutcome) -> u8 {
    let (successor, reason, error) = match outcome {
        SuccessionOutcome::Done { successor, reason } => (successor, reason, None),
        SuccessionOutcome::RevokeFailed { successor, reason, error } => (successor, reason, Some(error)),
    };
    let mut fields = vec![
        ("action", Value::from(plan.kind.name())),
        ("new_treaty_id", Value::from(successor.treaty_id.as_str())),
        ("old_revoked", Value::Bool(error.is_none())),
        ("old_treaty_id", Value::from(plan.old_id.as_str())),
        ("reason", Value::from(reason.as_str())),
        ("treaty", successor.to_value()),
    ];
    let Some(error) = error else {
        let text = format!(
            "new treaty id: {}\nexpires at: {}\nold treaty {} revoked with reason {reason}",
            successor.treaty_id,
            successor.expires_at.render_isoformat(),
            plan.old_id
        );
        session.out.result(&text, &Value::Object(object(fields)));
        return 0;
    };
    fields.push(("revoke_error", Value::from(error.to_string())));
    let text = format!("new treaty id: {}\nold treaty {} NOT revoked: {error}", successor.treaty_id, plan.old_id);
    session.out.result(&text, &Value::Object(object(fields)));
    notice(&format!(
        "error: issued successor treaty {} but could not revoke treaty {}: {error}\nhint: both are active now; finish with: gm treaty revoke {} --reason {reason} --na {} --yes",
        successor.treaty_id,
        plan.old_id,
        plan.old_id,
        session.na.base_url()
    ));
    EXIT_CHECK_FAILED
}

fn print_plan(out: Output, action: &str, treaty_id: &str, na: &str, steps: &[String]) {
    let numbered: Vec<String> = steps.iter().enumerate().map(|(i, s)| format!("  {}. {s}", i + 1)).collect();
    let text = format!("dry run: nothing sent to {na}; {action} would:\n{}", numbered.join("\n"));
    let value = Value::Object(object(vec![
        ("action", Value::from(action)),
        ("dry_run", Value::Bool(true)),
        ("na", Value::from(na)),
        ("steps", str_array(steps)),
        ("treaty_id", Value::from(treaty_id)),
    ]));
    out.result(&text, &value);
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use crate::client::admin::Operator;
    use crate::client::fake_na::{Answer, FakeNa, Recorded};
    use crate::crypto::canonical::canonical_string;
    use crate::crypto::keys::SigningKey;

    use super::*;

    const OPERATOR_SEED: &str = "kcEtbrpIkVQ4x8x26K89loTgOPGEsmpGbb2PY9+XYNI=";
    const OLD_ID: &str = "1ede1147-34d3-4354-bc35-7b297a397050";
    const NEW_ID: &str = "5b1c0f9e-8a55-4a0e-9d8e-0b8f3d7e2c11";

    fn na_key() -> SigningKey {
        SigningKey::from_seed(&[7u8; 32])
    }

    fn subject_key() -> String {
        SigningKey::from_seed(&[8u8; 32]).public_key().to_b64()
    }

    fn session(url: &str) -> Session {
        Session {
            na: NaClient::new(url, ClientOptions::default()).unwrap(),
            operator: Operator {
                key: SigningKey::from_seed_b64(OPERATOR_SEED).unwrap(),
                key_id: "operator-1".to_string(),
            },
            sig: SigVersion::V1,
            out: Output { json: true },
        }
    }

    /// A treaty signed by the NA key, as the NA stores and serves it.
    fn treaty(id: &str) -> Value {
        let text = format!(
            "{{\"treaty_id\":\"{id}\",\"issuer_sovereign_id\":\"alpha\",\"subject_sovereign_id\":\"beta\",\"subject_public_keys\":[\"{}\"],\"scope\":{{\"allowed_roles\":[\"role:client\"],\"accepted_statuses\":[\"active\"],\"claims\":{{\"tier\":\"gold\"}}}},\"status\":\"active\",\"issued_at\":\"2026-03-02T10:00:00Z\",\"valid_from\":\"2026-03-02T10:00:00Z\",\"expires_at\":\"2026-03-09T10:00:00Z\",\"issued_by\":\"na-2026\",\"metadata\":{{\"ticket\":\"CHG-42\"}},\"signatures\":[]}}",
            subject_key()
        );
        let mut treaty = RecognitionTreaty::from_value(&parse_str(&text).unwrap()).unwrap();
        treaty.sign(&na_key(), "na-2026");
        treaty.to_value()
    }

    fn row(id: &str, status: &str) -> String {
        format!(
            "{{\"revocation_reason\":null,\"revoked_at\":null,\"status\":\"{status}\",\"treaty\":{}}}",
            canonical_string(&treaty(id))
        )
    }

    fn body_of(seen: &Recorded) -> String {
        String::from_utf8(seen.body.clone()).unwrap()
    }

    fn renew_plan() -> Succession {
        Succession {
            kind: SuccessionKind::Renew,
            old_id: OLD_ID.to_string(),
            validity_hours: 720,
            terms: Terms::default(),
        }
    }

    #[test]
    fn renew_issues_a_copy_then_revokes_the_old_treaty_as_renewed_by_the_new_one() {
        let na = FakeNa::start(vec![
            Answer::json(200, &row(OLD_ID, "active")),
            Answer::json(201, &canonical_string(&treaty(NEW_ID))),
            Answer::json(200, &format!("{{\"status\":\"revoked\",\"treaty_id\":\"{OLD_ID}\"}}")),
        ]);
        let outcome = renew_plan().carry_out(&session(&na.url())).unwrap();
        match &outcome {
            SuccessionOutcome::Done { successor, reason } => {
                assert_eq!(successor.treaty_id, NEW_ID);
                assert_eq!(reason, &format!("renewed_by:{NEW_ID}"));
            }
            other => panic!("expected a finished renewal, got {other:?}"),
        }
        let seen = na.finish();
        let calls: Vec<(&str, &str)> = seen.iter().map(|r| (r.method.as_str(), r.target.as_str())).collect();
        assert_eq!(
            calls,
            vec![
                ("GET", format!("/recognition-treaties/{OLD_ID}").as_str()),
                ("POST", "/admin/recognition-treaties"),
                ("POST", format!("/admin/recognition-treaties/{OLD_ID}/revoke").as_str()),
            ]
        );
        assert_eq!(
            body_of(&seen[1]),
            format!(
                "{{\"issuer_sovereign_id\":\"alpha\",\"metadata\":{{\"ticket\":\"CHG-42\"}},\"scope\":{{\"accepted_statuses\":[\"active\"],\"allowed_roles\":[\"role:client\"],\"claims\":{{\"tier\":\"gold\"}}}},\"subject_public_keys\":[\"{}\"],\"subject_sovereign_id\":\"beta\",\"validity_hours\":720}}",
                subject_key()
            )
        );
        assert_eq!(body_of(&seen[2]), format!("{{\"reason\":\"renewed_by:{NEW_ID}\"}}"));
        assert!(seen[1].header("x-admin-signature").is_some());
        assert!(seen[2].header("x-admin-signature").is_some());
    }

    #[test]
    fn replace_lays_new_terms_over_the_old_ones_and_names_the_successor() {
        let new_key = SigningKey::from_seed(&[9u8; 32]).public_key().to_b64();
        let plan = Succession {
            kind: SuccessionKind::Replace,
            old_id: OLD_ID.to_string(),
            validity_hours: 168,
            terms: Terms::parse(std::slice::from_ref(&new_key), &[], &["anchor".to_string()], &[]).unwrap(),
        };
        let old = RecognitionTreaty::from_value(&treaty(OLD_ID)).unwrap();
        let body = canonical_string(&plan.successor_request(&old).body());
        assert_eq!(
            body,
            format!(
                "{{\"issuer_sovereign_id\":\"alpha\",\"metadata\":{{\"ticket\":\"CHG-42\"}},\"scope\":{{\"accepted_statuses\":[\"active\"],\"allowed_roles\":[\"role:anchor\"],\"claims\":{{\"tier\":\"gold\"}}}},\"subject_public_keys\":[\"{new_key}\"],\"subject_sovereign_id\":\"beta\",\"validity_hours\":168}}"
            )
        );
        assert_eq!(plan.kind.reason_prefix(), "replaced_by:");
    }

    #[test]
    fn renew_that_cannot_revoke_reports_the_successor_and_the_failure() {
        let na = FakeNa::start(vec![
            Answer::json(200, &row(OLD_ID, "active")),
            Answer::json(201, &canonical_string(&treaty(NEW_ID))),
            Answer::json(429, "{\"error\":\"Rate limit exceeded\"}"),
        ]);
        let session = session(&na.url());
        let plan = renew_plan();
        let outcome = plan.carry_out(&session).unwrap();
        match &outcome {
            SuccessionOutcome::RevokeFailed { successor, reason, error } => {
                assert_eq!(successor.treaty_id, NEW_ID);
                assert_eq!(reason, &format!("renewed_by:{NEW_ID}"));
                assert_eq!(error.to_string(), "the NA refused: 429 Rate limit exceeded");
            }
            other => panic!("expected a failed revoke, got {other:?}"),
        }
        assert_eq!(report_succession(&session, &plan, &outcome), EXIT_CHECK_FAILED);
        assert_eq!(na.finish().len(), 3);
    }

    #[test]
    fn renew_refuses_a_revoked_treaty_and_issues_nothing() {
        let na = FakeNa::start(vec![Answer::json(200, &row(OLD_ID, "revoked"))]);
        let err = renew_plan().carry_out(&session(&na.url())).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("refusing to renew treaty {OLD_ID}: it is already revoked (reason unspecified)")
        );
        assert_eq!(na.finish().len(), 1);
    }

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

    #[test]
    fn issue_sends_scope_and_metadata_only_when_given() {
        let terms = Terms::parse(&[subject_key()], &[], &[], &[]).unwrap();
        let mut request = IssueRequest {
            issuer_sovereign_id: None,
            subject_sovereign_id: "beta".to_string(),
            subject_public_keys: terms.subject_public_keys.clone(),
            scope: terms.scope_patch(),
            validity_hours: 168,
            metadata: None,
        };
        assert_eq!(
            canonical_string(&request.body()),
            format!(
                "{{\"subject_public_keys\":[\"{}\"],\"subject_sovereign_id\":\"beta\",\"validity_hours\":168}}",
                subject_key()
            )
        );
        let terms = Terms::parse(&[subject_key()], &[], &["client".to_string()], &[]).unwrap();
        request.scope = terms.scope_patch();
        request.metadata = Some(parse_metadata("{\"ticket\":\"CHG-42\"}").unwrap());
        let body = canonical_string(&request.body());
        assert!(body.contains("\"scope\":{\"allowed_roles\":[\"role:client\"]}"), "{body}");
        assert!(body.contains("\"metadata\":{\"ticket\":\"CHG-42\"}"), "{body}");
    }

    #[test]
    fn bad_keys_statuses_and_metadata_are_refused_before_sending() {
        assert!(Terms::parse(&["not-a-key".to_string()], &[], &[], &[]).is_err());
        assert!(Terms::parse(&[], &[], &[], &["expired".to_string()]).is_err());
        assert!(parse_metadata("[1]").unwrap_err().to_string().contains("not an object"));
        let twice = Terms::parse(&[subject_key(), subject_key()], &[], &[], &[]).unwrap();
        assert_eq!(twice.subject_public_keys.len(), 1);
    }

    #[test]
    fn list_rows_carry_a_lifecycle_and_inspect_checks_the_na_signature() {
        let reply = Reply {
            method: "GET",
            url: "http://na/recognition-treaties".to_string(),
            status: 200,
            body: parse_str(&row(OLD_ID, "active")).unwrap(),
            text: String::new(),
        };
        let parsed = TreatyRow::parse(&reply, &reply.body).unwrap();
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 3, 8, 22, 0, 0).unwrap();
        assert_eq!(
            parsed.summary_line(now),
            format!("{OLD_ID}  alpha → beta  active  expiring_soon/high  expires 2026-03-09T10:00:00+00:00")
        );
        let value = parsed.value_with_lifecycle(now);
        let life = value.as_object().unwrap().get("lifecycle").unwrap().as_object().unwrap();
        assert_eq!(life.get("seconds_until_expiry").and_then(Value::as_i64), Some(12 * 3600));
        assert!(parsed.treaty.check_signatures(&[na_key().public_key()]).is_valid());
        assert!(!parsed.treaty.check_signatures(&[SigningKey::from_seed(&[1u8; 32]).public_key()]).is_valid());
    }
}
