//! Agent discovery (`na-wire.md` §9.7): nodes register a descriptor signed with their own key,
//! anyone lists them. Capability filters match exactly (D15); a deregistration envelope can be used
//! once within its window (D16: a replay answers `401 invalid signature`).

use std::collections::BTreeSet;

use chrono::Duration;

use crate::crypto::keys::PublicKey;
use crate::crypto::signature::verify_b64;
use crate::http::{Request, Response};
use crate::json::{parse, Map, ParseLimits, Value};
use crate::model::agent::AgentDescriptor;
use crate::model::timestamp::{isoformat_utc, parse_request_timestamp};
use crate::model::SignedObject;
use crate::store::{agents, certs};

use super::super::authority::{json_response, Authority};
use super::super::error::NaError;
use super::super::publish::{parse_stored, stored_json};
use super::super::rate_limit::DISCOVER_LIMIT;
use super::super::remote_addr::client_addr;

fn forced_object(req: &Request) -> Result<Map, NaError> {
    match parse(&req.body, &ParseLimits::default()) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(NaError::api(400, "request body must be a JSON object")),
        Err(_) => Err(NaError::api(400, "request body must be valid JSON")),
    }
}

/// `POST /agents`.
pub(crate) fn register(na: &Authority, req: &Request) -> Result<Response, NaError> {
    let remote = client_addr(req, na.settings.proxy_hops);
    if !na.limiter.allow(&format!("discover:{remote}"), DISCOVER_LIMIT) {
        return Err(NaError::rate_limited());
    }
    let body = forced_object(req)?;
    let d = AgentDescriptor::from_value(&Value::Object(body))
        .map_err(|e| NaError::api(400, format!("invalid descriptor: {e}")))?;
    if d.signatures.is_empty() {
        return Err(NaError::api(401, "descriptor must be signed by the node key"));
    }
    let now = na.clock.now();
    if !(d.registered_at.to_utc() - Duration::minutes(5) <= now && now <= d.expires_at.to_utc()) {
        return Err(NaError::api(400, "descriptor expires_at is not in the future"));
    }
    if d.network_name != na.genesis.network_name {
        let mut m = Map::new();
        m.insert("error", Value::from("descriptor network_name does not match this NA"));
        m.insert("expected", Value::from(na.genesis.network_name.as_str()));
        return Ok(json_response(400, &Value::Object(m)));
    }
    let now_iso = isoformat_utc(now);
    let (active, compromised) = na.store.read(|c| {
        Ok((
            agents::has_active_certificate(c, &d.node_public_key, &now_iso)?,
            certs::key_compromised(c, &d.node_public_key)?,
        ))
    })?;
    if !active {
        return Err(NaError::api(403, "node has no active join certificate"));
    }
    if compromised.is_some() {
        return Err(NaError::api(403, "node key is revoked"));
    }
    let valid = PublicKey::from_b64(&d.node_public_key)
        .map(|k| d.signatures.first().is_some_and(|s| verify_b64(&k, &d.canonical_bytes(), &s.sig)))
        .unwrap_or(false);
    if !valid {
        return Err(NaError::api(401, "invalid signature"));
    }
    let caps: BTreeSet<&str> = d.capabilities.iter().map(String::as_str).collect();
    let csv = caps.into_iter().collect::<Vec<_>>().join(",");
    let json = stored_json(&d.to_value());
    let (registered, expires) = (d.registered_at.render_isoformat(), d.expires_at.render_isoformat());
    let owned = d.clone();
    na.store.write(move |c| {
        agents::upsert(
            c,
            &agents::Registration {
                node_public_key: &owned.node_public_key,
                agent_id: &owned.agent_id,
                network_name: &owned.network_name,
                capabilities_csv: &csv,
                host: &owned.endpoint.host,
                port: owned.endpoint.port,
                scheme: &owned.endpoint.scheme,
                descriptor_json: &json,
                registered_at: &registered,
                expires_at: &expires,
            },
        )
    })?;
    let mut m = Map::new();
    m.insert("expires_at", Value::from(d.expires_at.render_isoformat()));
    m.insert("status", Value::from("registered"));
    Ok(json_response(200, &Value::Object(m)))
}

fn prune(na: &Authority) -> Result<(), NaError> {
    let now = isoformat_utc(na.clock.now());
    na.store.write(move |c| agents::delete_expired(c, &now).map(|_| ()))?;
    Ok(())
}

/// `GET /agents[?capability=]`.
pub(crate) fn list(na: &Authority, req: &Request) -> Result<Response, NaError> {
    prune(na)?;
    let capability = req.query.as_deref().and_then(|q| {
        crate::http::parse_query(q).into_iter().find(|(k, v)| k == "capability" && !v.is_empty()).map(|(_, v)| v)
    });
    let rows = na.store.read(agents::list)?;
    let mut out = Vec::new();
    for (json, csv) in rows {
        if capability.as_deref().is_some_and(|cap| !csv.split(',').any(|c| c == cap)) {
            continue;
        }
        let d: AgentDescriptor = parse_stored(&json, "agent_registrations", "descriptor")?;
        out.push(d.to_value());
    }
    let mut m = Map::new();
    m.insert("agents", Value::Array(out.clone()));
    m.insert("capability", capability.map_or(Value::Null, Value::from));
    m.insert("count", Value::from(out.len()));
    Ok(json_response(200, &Value::Object(m)))
}

/// `GET /agents/<key>`.
pub(crate) fn get(na: &Authority, key: &str) -> Result<Response, NaError> {
    prune(na)?;
    let json = na.store.read(|c| agents::get(c, key))?.ok_or_else(|| NaError::api(404, "agent not registered"))?;
    let d: AgentDescriptor = parse_stored(&json, "agent_registrations", key)?;
    Ok(json_response(200, &d.to_value()))
}

/// `DELETE /agents/<key>`.
pub(crate) fn deregister(na: &Authority, req: &Request, key: &str) -> Result<Response, NaError> {
    let body = forced_object(req)?;
    let field = |n: &str| body.get(n).filter(|v| v.is_truthy()).and_then(Value::as_str).map(str::to_string);
    let (Some(signature), Some(signed_at)) = (field("signature"), field("signed_at")) else {
        return Err(NaError::api(401, "signature and signed_at required"));
    };
    let version = field("version").unwrap_or_else(|| "v1".to_string());
    let at = parse_request_timestamp(&signed_at).map_err(|_| NaError::api(400, "signed_at must be ISO datetime"))?;
    let now = na.clock.now();
    if (now - at.to_utc()).num_microseconds().is_none_or(|m| m.abs() > 300_000_000) {
        return Err(NaError::api(401, "signed_at outside \u{b1}5 min window"));
    }
    let message = format!("delete-agent|{version}|{key}|{signed_at}");
    let valid = PublicKey::from_b64(key).is_ok_and(|k| verify_b64(&k, message.as_bytes(), &signature));
    if !valid {
        return Err(NaError::api(401, "invalid signature"));
    }
    {
        let mut seen = na.seen_envelopes.0.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, t| now - *t < Duration::seconds(600));
        let id = format!("{key}|{signed_at}|{signature}");
        if seen.insert(id, now).is_some() {
            return Err(NaError::api(401, "invalid signature"));
        }
    }
    let key_w = key.to_string();
    if !na.store.write(move |c| agents::delete(c, &key_w))? {
        return Err(NaError::api(404, "agent not registered"));
    }
    let mut m = Map::new();
    m.insert("status", Value::from("deregistered"));
    Ok(json_response(200, &Value::Object(m)))
}
