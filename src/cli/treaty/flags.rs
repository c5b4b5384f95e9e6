//! `gm treaty`'s flag values checked and turned into typed values before any key is read or
//! request sent: treaty ids, validity, stored status, metadata, the keys and scope of
//! [`Terms`], and the `--yes` gate of the destructive actions.
//!
//! Sends nothing and prints nothing; every refusal is a usage error with a hint.

use crate::client::treaty_succession::{Succession, Terms};
use crate::json::{parse_str, Map, Value};
use crate::model::attestation::STATUSES;

use super::super::error::{Error, Named};
use super::super::na_options::read_public_keys;

/// Refuses a destructive action without `--yes`, before any key is read or request sent.
pub(super) fn confirm(action: &str, consequence: &str, yes: bool, dry_run: bool) -> Result<(), Error> {
    if yes || dry_run {
        return Ok(());
    }
    Err(Error::usage(
        format!("refusing to {action} without --yes: {consequence}, which cannot be undone"),
        "add --yes to go ahead, or --dry-run to print the plan without sending anything",
    ))
}

/// Refuses an empty treaty id.
pub(super) fn require_id(treaty_id: &str) -> Result<(), Error> {
    if treaty_id.trim().is_empty() {
        return Err(Error::usage("the treaty id is empty", "gm treaty list shows the treaty ids"));
    }
    Ok(())
}

/// Refuses a validity of 0 hours.
pub(super) fn require_validity(hours: u32) -> Result<(), Error> {
    if hours == 0 {
        return Err(Named::ZeroValidity { default_hours: 168 }.into());
    }
    Ok(())
}

/// Checks a renew or replace plan's id and validity.
pub(super) fn validate_succession(plan: &Succession) -> Result<(), Error> {
    require_id(&plan.old_id)?;
    require_validity(plan.validity_hours)
}

/// argh parser for `--status`.
pub(super) fn parse_stored_status(text: &str) -> Result<String, String> {
    match text {
        "active" | "revoked" => Ok(text.to_string()),
        _ => Err(format!("expected active or revoked, found {text:?}")),
    }
}

/// `--metadata-json`: a JSON object.
pub(super) fn parse_metadata(text: &str) -> Result<Map, Error> {
    let hint = "pass a JSON object, e.g. --metadata-json '{\"ticket\":\"CHG-42\"}'";
    match parse_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Error::usage(format!("--metadata-json is a JSON {}, not an object", other.type_name()), hint)),
        Err(e) => Err(Error::usage(format!("--metadata-json is not valid JSON: {e}"), hint)),
    }
}

/// The keys (`--subject-public-key`, `--subject-public-key`) and scope parts (`--allowed-role`, with
/// `role:` added when missing; `--accepted-status`, checked) given; empty means "not given".
pub(super) fn parse_terms(keys: &[String], roles: &[String], statuses: &[String]) -> Result<Terms, Error> {
    if let Some(bad) = statuses.iter().find(|s| !STATUSES.contains(&s.as_str())) {
        return Err(Error::usage(
            format!("--accepted-status {bad:?} is not an attestation status"),
            "use active, suspended or revoked",
        ));
    }
    let roles: Vec<String> =
        roles.iter().map(|r| if r.starts_with("role:") { r.clone() } else { format!("role:{r}") }).collect();
    Ok(Terms {
        subject_public_keys: read_public_keys("--subject-public-key", keys)?,
        allowed_roles: (!roles.is_empty()).then_some(roles),
        accepted_statuses: (!statuses.is_empty()).then(|| statuses.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use crate::client::treaty::tests::subject_key;
    use crate::client::treaty::IssueRequest;
    use crate::crypto::canonical::canonical_string;

    use super::*;

    #[test]
    fn issue_sends_scope_and_metadata_only_when_given() {
        let terms = parse_terms(&[subject_key()], &[], &[]).unwrap();
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
        let terms = parse_terms(&[subject_key()], &["client".to_string()], &[]).unwrap();
        request.scope = terms.scope_patch();
        request.metadata = Some(parse_metadata("{\"ticket\":\"CHG-42\"}").unwrap());
        let body = canonical_string(&request.body());
        assert!(body.contains("\"scope\":{\"allowed_roles\":[\"role:client\"]}"), "{body}");
        assert!(body.contains("\"metadata\":{\"ticket\":\"CHG-42\"}"), "{body}");
    }

    #[test]
    fn bad_keys_statuses_and_metadata_are_refused_before_sending() {
        assert!(parse_terms(&["not-a-key".to_string()], &[], &[]).is_err());
        assert!(parse_terms(&[], &[], &["expired".to_string()]).is_err());
        assert!(parse_metadata("[1]").unwrap_err().to_string().contains("not an object"));
        let twice = parse_terms(&[subject_key(), subject_key()], &[], &[]).unwrap();
        assert_eq!(twice.subject_public_keys.len(), 1);
    }
}
