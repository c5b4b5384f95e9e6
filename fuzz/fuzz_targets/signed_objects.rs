//! Every signed-object schema in `src/model/` (genesis, join certificate, policy, CRL, attestation,
//! treaty, revocation feed, agent descriptor) plus the recognition policy and the trust decisions.
//!
//! Input: any bytes, parsed as JSON; every value that parses is read as every kind.
//!
//! Properties: no panic in a schema, in a signature check (with the vectors' real keys, so valid
//! signatures in seeds really verify) or in a decision; an object a schema accepts renders back to a
//! value the same schema accepts, with the same canonical signing bytes (what gm stores and serves
//! is what it verified).
#![no_main]

use chrono::{DateTime, Utc};
use gm::json::{parse, ParseLimits, Value};
use gm::crypto::keys::PublicKey;
use gm::model::agent::AgentDescriptor;
use gm::model::attestation::MembershipAttestation;
use gm::model::certificate::JoinCertificate;
use gm::model::crl::Crl;
use gm::model::decision::{verify_attestation, verify_feed, verify_treaty, verify_with_treaty, TreatyExpectations};
use gm::model::feed::RevocationFeed;
use gm::model::genesis::Genesis;
use gm::model::policy::PolicyManifest;
use gm::model::recognition::RecognitionPolicy;
use gm::model::treaty::RecognitionTreaty;
use gm::model::{check_as, Kind, SignedObject};
use gm_fuzz::vector_now;
use libfuzzer_sys::fuzz_target;

/// Public keys of `tests/vectors/keys.json` (root, NA, operators, node, other sovereigns).
const KEYS: [&str; 8] = [
    "vFU7AklYyis9Nj1Q2zGNIv4qIbwH2Ef4zVNDDlf60hk=",
    "9Ci7Uk+4W6QaaxfxQsGKjQkBFVrjVaYgGUJiWSm66IQ=",
    "pqLKW8bLLC26jzf0JyIe7fQNg3R8EZOCT276ZhF29ig=",
    "Bk6zQmNr56ZBDnziH0yzXP90zrH4M0IkjQDxk575d60=",
    "BcB/B9JAQIKq83lTawsC+ijHRqTe3G20F2/Glaqm53U=",
    "b3ETXomQW17cL+W1G0DgZKvQYYOjXfo8XfaTTKhAW60=",
    "Dk93ee6GhgvIr2I2YJFwiMwJaaYVXjlawkOf0mMu4CY=",
    "+ZpJLDffA4ulgX8hkcCot6YumP8P4wG7DfP6ca6ilz4=",
];

fuzz_target!(|data: &[u8]| {
    let Ok(value) = parse(data, &ParseLimits::default()) else { return };
    let keys: Vec<PublicKey> = KEYS.iter().filter_map(|k| PublicKey::from_b64(k).ok()).collect();
    let key_texts: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();
    let _ = Kind::detect(&value);
    for kind in Kind::ALL {
        let _ = check_as(kind, &value, &keys);
    }
    round_trip::<Genesis>(&value, &keys);
    round_trip::<JoinCertificate>(&value, &keys);
    round_trip::<PolicyManifest>(&value, &keys);
    round_trip::<Crl>(&value, &keys);
    round_trip::<MembershipAttestation>(&value, &keys);
    round_trip::<RecognitionTreaty>(&value, &keys);
    round_trip::<RevocationFeed>(&value, &keys);
    round_trip::<AgentDescriptor>(&value, &keys);
    if let Ok(genesis) = Genesis::from_value(&value) {
        let _ = genesis.check_root_signatures();
    }
    decisions(&value, &key_texts, vector_now());
});

/// Reads `value` as `T`; when accepted, checks signatures and that the rendering reads back the same.
fn round_trip<T: SignedObject>(value: &Value, keys: &[PublicKey]) {
    let Ok(object) = T::from_value(value) else { return };
    let _ = object.check_signatures(keys);
    let canonical = object.canonical_bytes();
    let rendered = object.to_value();
    let again = match T::from_value(&rendered) {
        Ok(again) => again,
        Err(err) => panic!("{}: gm's own rendering {rendered:?} is refused: {err}", T::KIND.model_name()),
    };
    assert_eq!(
        String::from_utf8_lossy(&again.canonical_bytes()),
        String::from_utf8_lossy(&canonical),
        "{}: canonical bytes change after a render and re-read",
        T::KIND.model_name()
    );
    assert_eq!(again.signatures(), object.signatures());
}

/// The trust decisions, with `value` playing every part it can (attestation, treaty, feed, policy).
fn decisions(value: &Value, keys: &[String], now: DateTime<Utc>) {
    let attestation = MembershipAttestation::from_value(value).ok();
    let treaty = RecognitionTreaty::from_value(value).ok();
    let policy = RecognitionPolicy::from_value(value).ok();
    if let Some(policy) = &policy {
        let _ = policy.to_value();
    }
    if let (Some(a), Some(p)) = (&attestation, &policy) {
        let _ = verify_attestation(a, p, now);
    }
    if let Some(t) = &treaty {
        let revoked = [t.treaty_id.clone()];
        for expectations in [
            TreatyExpectations { keys, ..TreatyExpectations::default() },
            TreatyExpectations { keys, issuer: Some("x"), subject: Some(&t.subject_sovereign_id), revoked: &revoked },
        ] {
            let _ = verify_treaty(t, &expectations, now);
        }
        if let Some(a) = &attestation {
            let _ = verify_with_treaty(a, t, keys, &[], &[], now);
        }
    }
    if let Ok(feed) = RevocationFeed::from_value(value) {
        let _ = verify_feed(&feed, keys, None, None);
        let _ = verify_feed(&feed, keys, Some(&feed.issuer_sovereign_id), Some(feed.sequence.saturating_sub(1)));
    }
}
