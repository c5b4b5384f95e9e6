//! Sovereign revocation feeds (`na-wire.md` §12): `GET /sovereign-revocation-feed` signs a fresh
//! feed of this sovereign's revoked attestations; `POST /admin/sovereign-revocation-feeds/import`
//! accepts another sovereign's feed after upstream's checks in order (wrong_issuer,
//! stale_sequence, missing_signature, invalid_signature). Imports are append-only and the
//! per-issuer floor is re-checked inside the write, so a concurrent import cannot slip below it.
//! Default keys come only from active, unexpired treaties (D14); feeds are only signed for this
//! sovereign (D13).

use std::collections::BTreeSet;

use crate::crypto::digest::uuid4;
use crate::http::{Request, Response};
use crate::json::{Map, Value};
use crate::model::decision::verify_feed;
use crate::model::feed::RevocationFeed;
use crate::model::timestamp::{isoformat_utc, parse_db_time, ModelTime};
use crate::model::treaty::RecognitionTreaty;
use crate::model::SignedObject;
use crate::store::{attestations, feeds, treaties};

use super::super::audit;
use super::super::authority::{json_response, Authority};
use super::super::error::NaError;
use super::super::publish::{parse_stored, stored_json};
use super::admin::admit_strict;

/// `GET /sovereign-revocation-feed[?issuer_sovereign_id=]`.
pub(crate) fn export(na: &Authority, req: &Request) -> Result<Response, NaError> {
    let asked = req.query.as_deref().and_then(|q| {
        crate::http::parse_query(q).into_iter().find(|(k, _)| k == "issuer_sovereign_id").map(|(_, v)| v)
    });
    let issuer = match asked.as_deref() {
        None | Some("") => na.genesis.network_name.clone(),
        Some(id) if id == na.genesis.network_name => id.to_string(),
        Some(_) => return Err(NaError::api(400, "issuer_sovereign_id must match this sovereign")),
    };
    let now = na.clock.now();
    let revoked = na.store.read(|c| attestations::revoked_of(c, &issuer))?;
    let mut reasons = Map::new();
    for (id, reason) in &revoked {
        reasons.insert(id.clone(), Value::from(reason.clone().unwrap_or_else(|| "unspecified".to_string())));
    }
    let mut ids: Vec<String> = revoked.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    ids.dedup();
    let mut feed = RevocationFeed {
        feed_id: uuid4(),
        issuer_sovereign_id: issuer,
        sequence: revoked.len() as i64,
        issued_at: ModelTime::from_utc(now),
        revoked_attestation_ids: ids,
        revocation_reasons: reasons,
        issued_by: na.settings.na_key_id.clone(),
        signatures: Vec::new(),
    };
    na.signer().sign(&mut feed, "feed-export", &req.request_id)?;
    Ok(json_response(200, &feed.to_value()))
}

fn rejection(status: u16, feed: &RevocationFeed, reason: &str) -> Response {
    let mut m = Map::new();
    m.insert("accepted", Value::Bool(false));
    m.insert("feed_id", Value::from(feed.feed_id.as_str()));
    m.insert("issuer_sovereign_id", Value::from(feed.issuer_sovereign_id.as_str()));
    m.insert("reason", Value::from(reason));
    m.insert("sequence", Value::from(feed.sequence));
    json_response(status, &Value::Object(m))
}

/// `POST /admin/sovereign-revocation-feeds/import`.
pub(crate) fn import(na: &Authority, req: &Request, path: &str) -> Result<Response, NaError> {
    let (body, operator, _remote, now) = admit_strict(na, req, path)?;
    let invalid = || NaError::api(400, "Invalid sovereign revocation feed");
    let feed =
        body.get("feed").ok_or_else(invalid).and_then(|v| RevocationFeed::from_value(v).map_err(|_| invalid()))?;
    let keys: Vec<String> = match body.get("issuer_public_keys") {
        None | Some(Value::Null) => default_keys(na, &feed.issuer_sovereign_id, now)?,
        Some(Value::Array(items)) => items.iter().filter_map(|k| k.as_str().map(str::to_string)).collect(),
        Some(_) => Vec::new(),
    };
    if keys.is_empty() {
        let mut m = Map::new();
        m.insert("accepted", Value::Bool(false));
        m.insert("issuer_sovereign_id", Value::from(feed.issuer_sovereign_id.as_str()));
        m.insert("reason", Value::from("missing_issuer_public_keys"));
        return Ok(json_response(400, &Value::Object(m)));
    }
    let expected = body.get("expected_issuer_sovereign_id").and_then(Value::as_str);
    let latest = na.store.read(|c| feeds::latest_sequence(c, &feed.issuer_sovereign_id))?;
    let decision = verify_feed(&feed, &keys, expected, latest);
    if !decision.accepted {
        let d = audit::details(vec![
            ("feed_id", Value::from(feed.feed_id.as_str())),
            ("issuer_sovereign_id", Value::from(feed.issuer_sovereign_id.as_str())),
            ("operator_key_id", Value::from(operator.key_id.as_str())),
            ("reason", Value::from(decision.reason)),
            ("sequence", Value::from(feed.sequence)),
        ]);
        audit::record(&na.store, "sovereign_revocation_feed_rejected", d, now);
        let status = if decision.reason == "stale_sequence" { 409 } else { 400 };
        return Ok(rejection(status, &feed, decision.reason));
    }
    let revocations: Vec<(String, Option<String>)> = feed
        .revoked_attestation_ids
        .iter()
        .map(|id| (id.clone(), feed.revocation_reasons.get(id).and_then(Value::as_str).map(str::to_string)))
        .collect();
    let (f, json, key_id) = (feed.clone(), stored_json(&feed.to_value()), operator.key_id);
    let stored = na.store.write(move |c| {
        let imported_at = isoformat_utc(now);
        let row = feeds::ImportedFeed {
            feed_id: &f.feed_id,
            issuer: &f.issuer_sovereign_id,
            sequence: f.sequence,
            feed_json: &json,
            revocations: &revocations,
            imported_at: &imported_at,
        };
        if !feeds::insert(c, &row)? {
            return Ok(false);
        }
        let d = audit::details(vec![
            ("feed_id", Value::from(f.feed_id.as_str())),
            ("issuer_sovereign_id", Value::from(f.issuer_sovereign_id.as_str())),
            ("operator_key_id", Value::from(key_id.as_str())),
            ("revoked_count", Value::from(f.revoked_attestation_ids.len())),
            ("sequence", Value::from(f.sequence)),
        ]);
        audit::write(c, "sovereign_revocation_feed_imported", d, now)?;
        Ok(true)
    })?;
    if !stored {
        return Ok(rejection(409, &feed, "stale_sequence"));
    }
    na.trust_changed();
    let mut m = Map::new();
    m.insert("accepted", Value::Bool(true));
    m.insert("feed_id", Value::from(feed.feed_id.as_str()));
    m.insert("issuer_sovereign_id", Value::from(feed.issuer_sovereign_id.as_str()));
    m.insert("reason", Value::from("accepted"));
    m.insert("revoked_count", Value::from(feed.revoked_attestation_ids.len()));
    m.insert("sequence", Value::from(feed.sequence));
    Ok(json_response(200, &Value::Object(m)))
}

/// The sorted unique subject keys of active, unexpired treaties for `issuer` (D14).
fn default_keys(na: &Authority, issuer: &str, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<String>, NaError> {
    let rows = na.store.read(|c| treaties::list(c, "", issuer, "active"))?;
    let mut keys = BTreeSet::new();
    for row in rows.iter().filter(|r| parse_db_time(&r.expires_at).is_some_and(|e| now < e)) {
        let t: RecognitionTreaty = parse_stored(&row.treaty_json, "recognition_treaties", &row.treaty_id)?;
        keys.extend(t.subject_public_keys);
    }
    Ok(keys.into_iter().collect())
}
