//! Upstream's trust decisions replayed from `attestation-decisions.json` and
//! `treaty-decisions.json`: every case's `accepted` and reason code, at the case's own `now`.

use gm::crypto::json::Value;
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
