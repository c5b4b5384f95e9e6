//! Upstream's trust decisions replayed from `attestation-decisions.json` and
//! `treaty-decisions.json`: every case's `accepted` and reason code, at the case's own `now`.

use gm::json::Value;
use gm::model::attestation::MembershipAttestation;
use gm::model::decision::{verify_attestation, verify_treaty, verify_with_treaty, TreatyExpectations};
use gm::model::recognition::RecognitionPolicy;
use gm::model::timestamp::ModelTime;
use gm::model::treaty::RecognitionTreaty;
use gm::model::SignedObject;

use crate::vectors::{list, load, s};

fn get<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.as_object().and_then(|m| m.get(key)).unwrap_or(&Value::Null)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

fn expected(case: &Value) -> (bool, String) {
    let e = get(case, "expected");
    (matches!(get(e, "accepted"), Value::Bool(true)), s(e, "reason").to_string())
}

#[test]
fn attestation_decisions_match_upstream() {
    let v = load("attestation-decisions.json");
    let mut n = 0;
    for case in list(&v, "cases") {
        let id = s(case, "id");
        let inputs = get(case, "inputs");
        let a = MembershipAttestation::from_value(get(inputs, "attestation")).unwrap_or_else(|e| panic!("{id}: {e}"));
        let p =
            RecognitionPolicy::from_value(get(inputs, "recognition_policy")).unwrap_or_else(|e| panic!("{id}: {e}"));
        let now = ModelTime::parse_model_str(s(inputs, "now")).unwrap().to_utc();
        let d = verify_attestation(&a, &p, now);
        assert_eq!((d.accepted, d.reason.to_string()), expected(case), "{id}");
        n += 1;
    }
    assert!(n >= 28, "only {n} cases");
}

#[test]
fn treaty_and_with_treaty_decisions_match_upstream() {
    let v = load("treaty-decisions.json");
    let mut n = 0;
    for case in list(&v, "cases") {
        let id = s(case, "id");
        let inputs = get(case, "inputs");
        let t = RecognitionTreaty::from_value(get(inputs, "treaty")).unwrap_or_else(|e| panic!("{id}: {e}"));
        let now = ModelTime::parse_model_str(s(inputs, "now")).unwrap().to_utc();
        let revoked_treaties = strings(get(inputs, "revoked_treaty_ids"));
        let (accepted, reason) = match s(case, "operation") {
            "verify_recognition_treaty" => {
                let keys = strings(get(inputs, "issuer_public_keys"));
                let e = TreatyExpectations {
                    keys: &keys,
                    issuer: get(inputs, "expected_issuer_sovereign_id").as_str(),
                    subject: get(inputs, "expected_subject_sovereign_id").as_str(),
                    revoked: &revoked_treaties,
                };
                let d = verify_treaty(&t, &e, now);
                (d.accepted, d.reason.to_string())
            }
            _ => {
                let a = MembershipAttestation::from_value(get(inputs, "attestation"))
                    .unwrap_or_else(|e| panic!("{id}: {e}"));
                let keys = strings(get(inputs, "treaty_issuer_public_keys"));
                let revoked_att = strings(get(inputs, "revoked_attestation_ids"));
                let d = verify_with_treaty(&a, &t, &keys, &revoked_treaties, &revoked_att, now);
                (d.accepted, d.reason)
            }
        };
        assert_eq!((accepted, reason), expected(case), "{id}");
        n += 1;
    }
    assert!(n >= 45, "only {n} cases");
}

/// The feed-import scenarios: keys default to the subject keys of stored active treaties for the
/// feed's issuer when `issuer_public_keys` is absent (an explicit empty list is not replaced), the
/// floor is the highest sequence accepted before for that issuer, and accepted feeds add their ids.
#[test]
fn feed_import_scenarios_match_upstream() {
    use gm::model::decision::verify_feed;
    use gm::model::feed::RevocationFeed;
    use std::collections::{BTreeMap, BTreeSet};
    let v = load("feed-imports.json");
    let mut steps_run = 0;
    for scenario in list(&v, "scenarios") {
        let sid = s(scenario, "id");
        let mut treaties: Vec<(RecognitionTreaty, String)> = Vec::new();
        let mut latest: BTreeMap<String, i64> = BTreeMap::new();
        let mut imported: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (n, step) in list(scenario, "steps").iter().enumerate() {
            let id = format!("{sid}#{n}");
            if s(step, "action") == "store_treaty" {
                let t = RecognitionTreaty::from_value(get(step, "treaty")).unwrap();
                treaties.push((t, s(step, "status").to_string()));
                continue;
            }
            let feed = RevocationFeed::from_value(get(step, "feed")).unwrap_or_else(|e| panic!("{id}: {e}"));
            let keys: Vec<String> = match get(step, "issuer_public_keys") {
                Value::Null => {
                    let set: BTreeSet<String> = treaties
                        .iter()
                        .filter(|(t, status)| status == "active" && t.subject_sovereign_id == feed.issuer_sovereign_id)
                        .flat_map(|(t, _)| t.subject_public_keys.clone())
                        .collect();
                    set.into_iter().collect()
                }
                other => strings(other),
            };
            let reason = if keys.is_empty() {
                "missing_issuer_public_keys".to_string()
            } else {
                let d = verify_feed(
                    &feed,
                    &keys,
                    get(step, "expected_issuer_sovereign_id").as_str(),
                    latest.get(&feed.issuer_sovereign_id).copied(),
                );
                if d.accepted {
                    latest.insert(feed.issuer_sovereign_id.clone(), feed.sequence);
                    imported
                        .entry(feed.issuer_sovereign_id.clone())
                        .or_default()
                        .extend(feed.revoked_attestation_ids.clone());
                }
                d.reason.to_string()
            };
            assert_eq!(reason, expected(step).1, "{id}");
            let e = get(step, "expected");
            if let Value::Int(count) = get(e, "revoked_count") {
                assert_eq!(feed.revoked_attestation_ids.len() as i64, count.as_i64().unwrap(), "{id}: revoked_count");
            }
            if let Value::Object(state) = get(step, "state_after") {
                for (issuer, st) in state.iter() {
                    let want_seq = get(st, "latest_sequence").as_i64();
                    assert_eq!(latest.get(issuer).copied(), want_seq, "{id}: latest sequence of {issuer}");
                    let want_ids: BTreeSet<String> =
                        strings(get(st, "imported_revoked_attestation_ids")).into_iter().collect();
                    assert_eq!(
                        imported.get(issuer).cloned().unwrap_or_default(),
                        want_ids,
                        "{id}: imported ids of {issuer}"
                    );
                }
            }
            steps_run += 1;
        }
    }
    assert!(steps_run >= 20, "only {steps_run} import steps");
}
