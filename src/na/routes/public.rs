//! Public read-only routes (`na-wire.md` §9.3, §10.1–10.3): health, readiness, metrics, nodes,
//! genesis, sovereign description, policy and CRL. `/policy` and `/crl` create and sign the default
//! policy and the empty CRL on first use, as upstream does.

use chrono::Duration;

use crate::http::{Request, Response};
use crate::json::{parse_str, Map, Value};
use crate::model::crl::Crl;
use crate::model::fields::object;
use crate::model::policy::PolicyManifest;
use crate::model::timestamp::parse_db_time;
use crate::model::SignedObject;
use crate::store::{certs, crl, policy, StoreError};

use super::super::authority::{json_raw, json_response, Authority};
use super::super::error::NaError;
use super::super::metrics::{render, NaGauges};
use super::super::publish;
use super::super::remote_addr::base_url;

const HEALTHZ_BODY: &[u8] = b"{\"status\":\"ok\"}\n";

/// How long after its last heartbeat a node counts as active (strict `<`).
const ACTIVE_WINDOW_SECONDS: i64 = 300;

/// `GET /healthz`: liveness only, touches nothing.
pub(crate) fn healthz() -> Response {
    Response::bytes(200, "application/json", HEALTHZ_BODY.to_vec())
}

/// `GET /health` (legacy).
pub(crate) fn health(na: &Authority) -> Result<Response, NaError> {
    let body = object(vec![
        ("network", Value::from(na.genesis.network_name.as_str())),
        ("status", Value::from("healthy")),
        ("version", Value::from(na.genesis.network_version.as_str())),
    ]);
    Ok(json_response(200, &Value::Object(body)))
}

/// The DB path as public views show it (`/readyz`, `/dashboard.json`, `/dashboard`): the configured
/// path, or `[REDACTED]` when `[server] readyz_shows_db_path = false`. Every public view goes through
/// here so the one setting hides the path everywhere.
pub(crate) fn public_db_path(na: &Authority) -> String {
    if na.settings.readyz_shows_db_path {
        na.settings.db_path_display.clone()
    } else {
        "[REDACTED]".to_string()
    }
}

/// `GET /readyz` with real checks (D3): schema 1–6 and all tables present, a write transaction can
/// start; the signing key was checked against genesis at startup.
pub(crate) fn readyz(na: &Authority) -> Response {
    let mut body = Map::new();
    body.insert("db_path", Value::from(public_db_path(na)));
    let signer_missing =
        na.remote_signer().filter(|r| r.connected_now() == 0).map(|_| super::super::remote_signer::no_signer_message());
    match na.store.check_ready().and_then(|()| signer_missing.map_or(Ok(()), Err)) {
        Ok(()) => {
            body.insert("status", Value::from("ready"));
            json_response(200, &Value::Object(body))
        }
        Err(reason) => {
            body.insert("error", Value::from(reason));
            body.insert("status", Value::from("not_ready"));
            json_response(503, &Value::Object(body))
        }
    }
}

/// `GET /metrics`.
pub(crate) fn metrics(na: &Authority) -> Result<Response, NaError> {
    let gauges = gauges(&na.store, na.clock.now())?;
    let mut text = render(&gauges, &na.http_metrics, na.store.size_bytes());
    if let Some(remote) = na.remote_signer() {
        text.push_str(&remote.metrics_text());
    }
    if let Some(extra) = na.extra_metrics.get() {
        text.push_str(&extra());
    }
    Ok(Response::bytes(200, "text/plain; version=0.0.4; charset=utf-8", text.into_bytes()))
}

/// The `/metrics` text computed straight from a store at `now`, without a running NA: the NA
/// gauges as served, HTTP counters empty (they live only in a running server).
pub(crate) fn metrics_text_from_store(
    store: &crate::store::Store,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, NaError> {
    Ok(render(&gauges(store, now)?, &crate::na::metrics::HttpMetrics::default(), store.size_bytes()))
}

fn gauges(store: &crate::store::Store, now: chrono::DateTime<chrono::Utc>) -> Result<NaGauges, NaError> {
    Ok(store.read(|c| {
        Ok(NaGauges {
            issued_certs_total: certs::count_all(c)?,
            active_nodes: active_count(c, now)?,
            revoked_certs_total: certs::count_revoked(c)?,
            crl_sequence: crl::active_sequence(c)?,
            policy_versions_total: policy::count(c)?,
        })
    })?)
}

/// The active window (§10.3: `now − last_heartbeat < 300 s`) as `last_heartbeat` string bounds.
/// Stored times are isoformat UTC strings, which sort in time order: a value sorting at or after
/// `sure` (the first whole second past the threshold) is active without parsing; values from
/// `not_before` (one whole second before the threshold) up to `sure` get the exact test on the
/// parsed time. `/nodes` and the `/metrics` gauge apply the same rule, so the gauge is the size of
/// the `/nodes` set.
struct ActiveWindow {
    now: chrono::DateTime<chrono::Utc>,
    not_before: String,
    sure: String,
}

impl ActiveWindow {
    fn at(now: chrono::DateTime<chrono::Utc>) -> ActiveWindow {
        let threshold = now - Duration::seconds(ACTIVE_WINDOW_SECONDS);
        let prefix = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
        ActiveWindow {
            now,
            not_before: prefix(threshold - Duration::seconds(1)),
            sure: prefix(threshold + Duration::seconds(1)),
        }
    }

    fn contains(&self, last_heartbeat: &str) -> bool {
        last_heartbeat >= self.sure.as_str()
            || parse_db_time(last_heartbeat).is_some_and(|t| self.now - t < Duration::seconds(ACTIVE_WINDOW_SECONDS))
    }
}

fn active_count(
    conn: &crate::store::Connection,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<i64, crate::store::StoreError> {
    let window = ActiveWindow::at(now);
    let (sure, boundary) = certs::recent_heartbeat_count(conn, &window.not_before, &window.sure)?;
    Ok(sure + boundary.iter().filter(|t| window.contains(t)).count() as i64)
}

fn active_rows(
    conn: &crate::store::Connection,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<certs::ActiveNodeRow>, crate::store::StoreError> {
    let window = ActiveWindow::at(now);
    let rows = certs::recent_heartbeats(conn, &window.not_before)?;
    Ok(rows.into_iter().filter(|r| window.contains(&r.last_heartbeat)).collect())
}

/// Size of the `/nodes` set at `now`.
pub(crate) fn active_node_count(na: &Authority, now: chrono::DateTime<chrono::Utc>) -> Result<usize, NaError> {
    Ok(na.store.read(|c| active_count(c, now))? as usize)
}

/// `GET /nodes` (§10.3).
pub(crate) fn nodes(na: &Authority) -> Result<Response, NaError> {
    let now = na.clock.now();
    let rows = na.store.read(|c| active_rows(c, now))?;
    let mut nodes = Map::new();
    for row in &rows {
        let roles = parse_str(&row.roles_json).unwrap_or(Value::Array(Vec::new()));
        let status = match &row.heartbeat_status {
            Some(s) if !s.is_empty() => s.clone(),
            _ => row.status.clone(),
        };
        let entry = object(vec![
            ("expires_at", Value::from(row.expires_at.as_str())),
            ("last_heartbeat", Value::from(row.last_heartbeat.as_str())),
            ("node_public_key", Value::from(row.node_public_key.as_str())),
            ("remote_addr", row.remote_addr.as_deref().map_or(Value::Null, Value::from)),
            ("roles", roles),
            ("status", Value::from(status)),
        ]);
        nodes.insert(row.cert_id.clone(), Value::Object(entry));
    }
    let body = object(vec![("count", Value::from(rows.len())), ("nodes", Value::Object(nodes))]);
    Ok(json_response(200, &Value::Object(body)))
}

/// `GET /sovereign.json` (unsigned description; URLs per D2).
pub(crate) fn sovereign(na: &Authority, req: &Request) -> Response {
    let g = &na.genesis;
    let base = base_url(req, na.settings.proxy_hops);
    let surface = |p: &str| Value::from(format!("{base}{p}"));
    let surfaces = object(vec![
        ("api_reference", surface("/api-reference")),
        ("cli_reference", surface("/cli-reference")),
        ("connectome", surface("/connectome.json")),
        ("genesis", surface("/genesis")),
        ("recognition_treaties", surface("/recognition-treaties")),
        ("sovereign_revocation_feed", surface("/sovereign-revocation-feed")),
        ("swagger", surface("/swagger.json")),
    ]);
    let body = object(vec![
        ("bootstrap_anchor_count", Value::from(g.bootstrap_anchors.len())),
        ("endpoint", Value::from(base.as_str())),
        (
            "network_authority",
            Value::Object(object(vec![
                ("public_key", Value::from(g.network_authority.public_key.as_str())),
                ("valid_from", Value::from(g.network_authority.valid_from.render_isoformat())),
                ("valid_to", Value::from(g.network_authority.valid_to.render_isoformat())),
            ])),
        ),
        ("network_name", Value::from(g.network_name.as_str())),
        ("network_version", Value::from(g.network_version.as_str())),
        (
            "policy_manifest",
            Value::Object(object(vec![
                ("hash", Value::from(g.policy_hash.as_str())),
                ("url", g.policy_url.as_deref().map_or(Value::Null, Value::from)),
            ])),
        ),
        ("root_public_key", Value::from(g.root_public_key.as_str())),
        ("sovereign_id", Value::from(g.network_name.as_str())),
        ("supported_surfaces", Value::Object(surfaces)),
    ]);
    json_response(200, &Value::Object(body))
}

/// `GET /policy` when the active policy is in memory and current, else `None` (answering then
/// needs the database): what the event loop answers on its own thread.
pub(crate) fn policy_from_memory(na: &Authority) -> Option<Response> {
    Some(json_raw(200, na.published.policy.get(na.store.published_epoch(), na.clock.now())?))
}

/// `GET /crl` when the signed CRL is in memory and current (not changed since, not in its re-issue
/// window), else `None`: what the event loop answers on its own thread.
pub(crate) fn crl_from_memory(na: &Authority) -> Option<Response> {
    Some(json_raw(200, na.published.crl.get(na.store.published_epoch(), na.clock.now())?))
}

/// `GET /policy`: the active policy, creating and signing the default one when none is active.
pub(crate) fn policy(na: &Authority) -> Result<Response, NaError> {
    if let Some(response) = policy_from_memory(na) {
        return Ok(response);
    }
    // Read before the database: a publish committed meanwhile leaves what is cached below stale.
    let epoch = na.store.published_epoch();
    if let Some(json) = na.store.read(policy::active_json)? {
        let response = stored_object::<PolicyManifest>(&json, "policy_versions")?;
        na.published.policy.put(epoch, None, &response.body);
        return Ok(response);
    }
    let now = na.clock.now();
    let manifest = publish::default_policy(&na.genesis.network_name, &na.genesis.network_version, &na.signer(), now)?;
    let json = na.store.write(move |c| {
        // Another request may have created it meanwhile: the first one stored wins.
        if let Some(existing) = policy::active_json(c)? {
            return Ok(existing);
        }
        publish::activate_policy(c, &manifest, now)?;
        Ok(publish::stored_json(&manifest.to_value()))
    })?;
    stored_object::<PolicyManifest>(&json, "policy_versions")
}

/// `GET /crl`: the active CRL; creates the empty one (sequence 0) when none exists and re-issues a
/// CRL within 12 h of its `next_update` (D4). The common case is a read only.
/// A fresh stored CRL is served from memory ([`crate::na::authority::PublishedCache`]) until a write
/// changes the CRL table or it reaches its re-issue window.
pub(crate) fn crl(na: &Authority) -> Result<Response, NaError> {
    if let Some(response) = crl_from_memory(na) {
        return Ok(response);
    }
    let now = na.clock.now();
    // Read before the database: a revocation committed meanwhile leaves what is cached below stale.
    let epoch = na.store.published_epoch();
    let mut stored = None;
    if let Some((seq, json)) = na.store.read(crl::active)? {
        let current: Crl = publish::parse_stored(&json, "crl_versions", &seq.to_string())?;
        if publish::crl_is_fresh(&current, now) {
            let response = json_response(200, &current.to_value());
            na.published.crl.put(epoch, Some(publish::crl_fresh_until(&current)), &response.body);
            return Ok(response);
        }
        stored = Some(current);
    }
    let signer = na.signer();
    match (na.store.write(move |c| publish::current_crl(c, &signer, now)), stored) {
        (Ok(list), _) => Ok(json_response(200, &list.to_value())),
        // No signature to be had (remote signer absent or refusing): the stored CRL is still
        // signed and valid until its next_update, so it is served rather than nothing.
        (Err(StoreError::Refused { message, .. }), Some(current)) if current.next_update.to_utc() > now => {
            log::warn!(target: "gm::crl", "serving the stored CRL unrefreshed: {message}");
            Ok(json_response(200, &current.to_value()))
        }
        (Err(e), _) => Err(e.into()),
    }
}

/// Renders a stored `*_json` column through its model, so the response re-derives to the signed bytes.
fn stored_object<T: SignedObject>(json: &str, table: &'static str) -> Result<Response, NaError> {
    let value =
        parse_str(json).map_err(|e| NaError::Internal { detail: format!("{table}: stored JSON unreadable: {e}") })?;
    let object = T::from_value(&value).map_err(|e| NaError::Internal { detail: format!("{table}: {e}") })?;
    Ok(json_response(200, &object.to_value()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_active_count_is_the_size_of_the_nodes_set_at_the_window_edges() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap_or_else(|e| unreachable!("{e}"));
        crate::store::schema::migrate(&mut conn, "2026-01-01T00:00:00+00:00").unwrap_or_else(|e| unreachable!("{e}"));
        crate::store::schema::ensure_gm_indexes(&conn).unwrap_or_else(|e| unreachable!("{e}"));
        let now = parse_db_time("2026-11-26T12:00:00.250000+00:00").unwrap_or_else(|| unreachable!());
        let ago = |ms: i64| crate::model::timestamp::isoformat_utc(now - Duration::milliseconds(ms));
        // (last_heartbeat, status, active?)
        let rows = [
            (ago(1_000), "issued", true),
            (ago(299_000), "issued", true),
            (ago(299_999), "issued", true),
            (ago(300_000), "issued", false), // strict: exactly 300 s is not active
            (ago(300_001), "issued", false),
            (ago(301_500), "issued", false),
            (ago(-10_000), "issued", true), // a clock ahead of ours still counts
            (ago(299_600), "revoked", false),
            ("2026-11-26T11:59:00+00:00".to_string(), "issued", true), // whole seconds, no fraction
            // The threshold is 11:55:00.25: the whole second before it is parsed and tested exactly,
            // a value sorting at or after 11:55:01 is counted without parsing.
            ("2026-11-26T11:55:00+00:00".to_string(), "issued", false),
            ("2026-11-26T11:55:01+00:00".to_string(), "issued", true),
            ("2026-11-26T11:54:59+00:00".to_string(), "issued", false),
        ];
        for (i, (beat, status, _)) in rows.iter().enumerate() {
            conn.execute(
                "INSERT INTO issued_certs VALUES (?1,'K','{}','[]','2026-01-01T00:00:00+00:00','2099-01-01T00:00:00+00:00',NULL,?2,?3,'joined',NULL,NULL,NULL,NULL)",
                rusqlite::params![format!("c-{i}"), status, beat],
            )
            .unwrap_or_else(|e| unreachable!("{e}"));
        }
        let expected = rows.iter().filter(|r| r.2).count();
        let listed = active_rows(&conn, now).unwrap_or_else(|e| unreachable!("{e}"));
        let count = active_count(&conn, now).unwrap_or_else(|e| unreachable!("{e}"));
        let mut names: Vec<&str> = listed.iter().map(|r| r.last_heartbeat.as_str()).collect();
        names.sort_unstable();
        let mut want: Vec<&str> = rows.iter().filter(|r| r.2).map(|r| r.0.as_str()).collect();
        want.sort_unstable();
        assert_eq!(names, want);
        assert_eq!((listed.len(), count), (expected, expected as i64));
    }
}
