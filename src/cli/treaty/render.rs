//! How `gm treaty` shows its results: the text for people and the `--json` value of each action,
//! the dry-run plan, and the report of a renew or replace (including the one that issued a
//! successor but could not revoke the old treaty).
//!
//! Builds text and values and hands them to `cli/output.rs` to print; sends nothing and decides
//! nothing but the exit status of a succession report.

use chrono::{DateTime, Utc};

use crate::client::treaty::TreatyRow;
use crate::client::treaty_succession::{Succession, SuccessionOutcome};
use crate::crypto::canonical::canonical_string;
use crate::crypto::keys::PublicKey;
use crate::json::{Map, Value};
use crate::model::fields::{object, str_array};
use crate::model::treaty::RecognitionTreaty;
use crate::model::SignedObject;

use super::super::error::EXIT_CHECK_FAILED;
use super::super::output::{notice, Output};

/// `gm treaty list`: one line per row, and the rows each with a lifecycle object.
pub(super) fn list_result(rows: &[TreatyRow], now: DateTime<Utc>) -> (String, Value) {
    let lines: Vec<String> = rows.iter().map(|row| summary_line(row, now)).collect();
    let text = if lines.is_empty() { "no recognition treaties match".to_string() } else { lines.join("\n") };
    let values: Vec<Value> = rows.iter().map(|row| value_with_lifecycle(row, now)).collect();
    let value = Value::Object(object(vec![
        ("count", Value::from(i64::try_from(values.len()).unwrap_or(i64::MAX))),
        ("recognition_treaties", Value::Array(values)),
    ]));
    (text, value)
}

/// `gm treaty inspect`: every field, the lifecycle and the signature check against `na_key`.
pub(super) fn inspect_result(
    row: &TreatyRow,
    now: DateTime<Utc>,
    na_key: &PublicKey,
    verified: bool,
) -> (String, Value) {
    let mut value = value_with_lifecycle(row, now);
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
    (format!("{}\nsignature:    {verdict}", details(row, now)), value)
}

/// `gm treaty issue`: the new treaty id.
pub(super) fn issued_result(treaty: &RecognitionTreaty) -> (String, Value) {
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
    (text, value)
}

/// `gm treaty revoke`.
pub(super) fn revoked_result(treaty_id: &str, reason: &str) -> (String, Value) {
    let value = Value::Object(object(vec![
        ("reason", Value::from(reason)),
        ("status", Value::from("revoked")),
        ("treaty_id", Value::from(treaty_id)),
    ]));
    (format!("revoked treaty {treaty_id} (reason {reason})"), value)
}

/// Prints what a renew or replace did; returns the exit status.
pub(super) fn report_succession(out: Output, na_url: &str, plan: &Succession, outcome: &SuccessionOutcome) -> u8 {
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
        out.result(&text, &Value::Object(object(fields)));
        return 0;
    };
    fields.push(("revoke_error", Value::from(error.to_string())));
    let text = format!("new treaty id: {}\nold treaty {} NOT revoked: {error}", successor.treaty_id, plan.old_id);
    out.result(&text, &Value::Object(object(fields)));
    notice(&format!(
        "error: issued successor treaty {} but could not revoke treaty {}: {error}\nhint: both are active now; finish with: gm treaty revoke {} --reason {reason} --na {} --yes",
        successor.treaty_id, plan.old_id, plan.old_id, na_url
    ));
    EXIT_CHECK_FAILED
}

/// Prints the `--dry-run` plan of a destructive action.
pub(super) fn print_plan(out: Output, action: &str, treaty_id: &str, na: &str, steps: &[String]) {
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

/// The row as the NA sent it, with its lifecycle at `now` added.
fn value_with_lifecycle(row: &TreatyRow, now: DateTime<Utc>) -> Value {
    let mut map = row.raw.clone();
    map.insert("lifecycle", row.lifecycle(now).to_value());
    Value::Object(map)
}

/// One line: id, issuer → subject, stored status, lifecycle state/expiry risk, expiry.
fn summary_line(row: &TreatyRow, now: DateTime<Utc>) -> String {
    let life = row.lifecycle(now);
    format!(
        "{}  {} → {}  {}  {}/{}  expires {}",
        row.treaty.treaty_id,
        row.treaty.issuer_sovereign_id,
        row.treaty.subject_sovereign_id,
        row.status,
        life.state.as_str(),
        life.expiry_risk.as_str(),
        row.treaty.expires_at.render_isoformat()
    )
}

fn details(row: &TreatyRow, now: DateTime<Utc>) -> String {
    let t = &row.treaty;
    let life = row.lifecycle(now);
    let list = |items: &[String], empty: &str| if items.is_empty() { empty.to_string() } else { items.join(", ") };
    let json = |map: &Map| canonical_string(&Value::Object(map.clone()));
    let revoked = match (&row.revoked_at, &row.revocation_reason) {
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
        format!("stored:       {}{revoked}", row.status),
        format!("issued at:    {}", t.issued_at.render_isoformat()),
        format!("valid from:   {}", t.valid_from.render_isoformat()),
        format!("expires at:   {}", t.expires_at.render_isoformat()),
        format!("issued by:    {}", t.issued_by),
        format!("metadata:     {}", json(&t.metadata)),
        format!("lifecycle:    {} (expiry risk {}{left}{successor})", life.state.as_str(), life.expiry_risk.as_str()),
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use crate::cli::na_options::test_session;
    use crate::client::fake_na::{Answer, FakeNa};
    use crate::client::treaty::tests::{na_key, row, treaty, NEW_ID, OLD_ID};
    use crate::client::treaty_succession::tests::renew_plan;
    use crate::client::Reply;
    use crate::crypto::keys::SigningKey;
    use crate::json::parse_str;

    use super::*;

    #[test]
    fn renew_that_cannot_revoke_reports_the_successor_and_the_failure() {
        let na = FakeNa::start(vec![
            Answer::json(200, &row(OLD_ID, "active")),
            Answer::json(201, &canonical_string(&treaty(NEW_ID))),
            Answer::json(429, "{\"error\":\"Rate limit exceeded\"}"),
        ]);
        let session = test_session(&na.url());
        let plan = renew_plan();
        let outcome = plan.carry_out(&session.admin()).unwrap();
        match &outcome {
            SuccessionOutcome::RevokeFailed { successor, reason, error } => {
                assert_eq!(successor.treaty_id, NEW_ID);
                assert_eq!(reason, &format!("renewed_by:{NEW_ID}"));
                assert_eq!(error.to_string(), "the NA refused: 429 Rate limit exceeded");
            }
            other => panic!("expected a failed revoke, got {other:?}"),
        }
        assert_eq!(report_succession(session.out, session.na.base_url(), &plan, &outcome), EXIT_CHECK_FAILED);
        assert_eq!(na.finish().len(), 3);
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
            summary_line(&parsed, now),
            format!("{OLD_ID}  alpha → beta  active  expiring_soon/high  expires 2026-03-09T10:00:00+00:00")
        );
        let value = value_with_lifecycle(&parsed, now);
        let life = value.as_object().unwrap().get("lifecycle").unwrap().as_object().unwrap();
        assert_eq!(life.get("seconds_until_expiry").and_then(Value::as_i64), Some(12 * 3600));
        assert!(parsed.treaty.check_signatures(&[na_key().public_key()]).is_valid());
        assert!(!parsed.treaty.check_signatures(&[SigningKey::from_seed(&[1u8; 32]).public_key()]).is_valid());
    }
}
