//! Graph views over stored treaties and imported revocations (`na-wire.md` §10.4–10.6):
//! `/recognition-graph`, `/connectome.json`, `/connectome/trust-path`, `/dashboard.json` and a plain
//! read-only `/dashboard` page. An edge is active only while its stored status is `active` and it
//! has not expired (D14); expired edges stay listed with their stored status.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};

use crate::http::{Request, Response};
use crate::json::{parse_str, Map, Value};
use crate::model::timestamp::{parse_db_time, ModelTime};
use crate::model::treaty::RecognitionTreaty;
use crate::model::treaty_lifecycle::TreatyLifecycle;
use crate::model::SignedObject;
use crate::store::feeds::ImportedRevocation;
use crate::store::treaties::TreatyRow;
use crate::store::{audit as audit_store, certs, feeds, treaties};

use super::super::authority::{json_bytes, json_response, Authority, CachedBody};
use super::super::error::NaError;
use super::super::publish::parse_stored;

/// Everything the views derive from.
struct Graph {
    rows: Vec<TreatyRow>,
    imported: Vec<ImportedRevocation>,
    now: DateTime<Utc>,
}

impl Graph {
    fn load(na: &Authority) -> Result<Graph, NaError> {
        Graph::load_from(&na.store, na.clock.now())
    }

    fn load_from(store: &crate::store::Store, now: DateTime<Utc>) -> Result<Graph, NaError> {
        let (rows, imported) = store.read(|c| Ok((treaties::list(c, "", "", "")?, feeds::all_imported(c)?)))?;
        Ok(Graph { rows, imported, now })
    }

    /// Treaties only (the trust path needs no revocations).
    fn load_edges(na: &Authority) -> Result<Graph, NaError> {
        let rows = na.store.read(|c| treaties::list(c, "", "", ""))?;
        Ok(Graph { rows, imported: Vec::new(), now: na.clock.now() })
    }

    fn is_active(&self, row: &TreatyRow) -> bool {
        row.status == "active" && parse_db_time(&row.expires_at).is_some_and(|e| self.now < e)
    }

    fn edge(row: &TreatyRow) -> Value {
        let mut m = Map::new();
        m.insert("expires_at", Value::from(row.expires_at.as_str()));
        m.insert("from", Value::from(row.issuer_sovereign_id.as_str()));
        m.insert("status", Value::from(row.status.as_str()));
        m.insert("to", Value::from(row.subject_sovereign_id.as_str()));
        m.insert("treaty_id", Value::from(row.treaty_id.as_str()));
        m.insert("valid_from", Value::from(row.valid_from.as_str()));
        Value::Object(m)
    }

    fn sovereigns(&self) -> Value {
        let ids: BTreeSet<&str> =
            self.rows.iter().flat_map(|r| [r.issuer_sovereign_id.as_str(), r.subject_sovereign_id.as_str()]).collect();
        Value::Array(
            ids.into_iter()
                .map(|id| Value::Object([("sovereign_id".to_string(), Value::from(id))].into_iter().collect()))
                .collect(),
        )
    }

    fn active_treaties(&self) -> Result<Value, NaError> {
        let mut out = Vec::new();
        for row in self.rows.iter().filter(|r| self.is_active(r)) {
            let t: RecognitionTreaty = parse_stored(&row.treaty_json, "recognition_treaties", &row.treaty_id)?;
            out.push(t.to_value());
        }
        Ok(Value::Array(out))
    }

    fn revoked_material(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for row in self.rows.iter().filter(|r| r.status == "revoked") {
            let mut m = Map::new();
            m.insert("id", Value::from(row.treaty_id.as_str()));
            m.insert("reason", row.revocation_reason.as_deref().map_or(Value::Null, Value::from));
            m.insert("revoked_at", row.revoked_at.as_deref().map_or(Value::Null, Value::from));
            m.insert("type", Value::from("recognition_treaty"));
            out.push(Value::Object(m));
        }
        for r in &self.imported {
            out.push(Value::Object(imported_item(r)));
        }
        out
    }
}

fn imported_item(r: &ImportedRevocation) -> Map {
    let mut m = Map::new();
    m.insert("feed_id", Value::from(r.feed_id.as_str()));
    m.insert("id", Value::from(r.attestation_id.as_str()));
    m.insert("issuer_sovereign_id", Value::from(r.issuer_sovereign_id.as_str()));
    m.insert("reason", r.reason.as_deref().map_or(Value::Null, Value::from));
    m.insert("revoked_at", Value::from(r.imported_at.as_str()));
    m.insert("sequence", Value::from(r.sequence));
    m.insert("type", Value::from("membership_attestation"));
    m
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.as_object().and_then(|m| m.get(key)).and_then(Value::as_str).unwrap_or_default()
}

/// `GET /recognition-graph`.
pub(crate) fn recognition_graph(na: &Authority) -> Result<Response, NaError> {
    let g = Graph::load(na)?;
    let mut m = Map::new();
    m.insert("active_treaties", g.active_treaties()?);
    m.insert("recognition_edges", Value::Array(g.rows.iter().map(Graph::edge).collect()));
    m.insert("revoked_trust_material", Value::Array(g.revoked_material()));
    m.insert("sovereigns", g.sovereigns());
    Ok(json_response(200, &Value::Object(m)))
}

fn connectome_value(g: &Graph) -> Result<Value, NaError> {
    let mut edges: Vec<&TreatyRow> = g.rows.iter().collect();
    edges.sort_by(|a, b| {
        (&a.issuer_sovereign_id, &a.subject_sovereign_id, &a.treaty_id).cmp(&(
            &b.issuer_sovereign_id,
            &b.subject_sovereign_id,
            &b.treaty_id,
        ))
    });
    let mut material = g.revoked_material();
    material.sort_by(|a, b| (text(a, "type"), text(a, "id")).cmp(&(text(b, "type"), text(b, "id"))));
    let mut blast: Vec<&ImportedRevocation> = g.imported.iter().collect();
    blast.sort_by(|a, b| a.attestation_id.cmp(&b.attestation_id));
    // Accepting sovereigns per recognised subject, computed once (not once per revoked item).
    let mut accepting: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for row in g.rows.iter().filter(|row| g.is_active(row)) {
        accepting.entry(row.subject_sovereign_id.as_str()).or_default().insert(row.issuer_sovereign_id.as_str());
    }
    let blast: Vec<Value> = blast
        .into_iter()
        .map(|r| {
            let from: Vec<Value> =
                accepting.get(r.issuer_sovereign_id.as_str()).into_iter().flatten().map(|s| Value::from(*s)).collect();
            let mut m = imported_item(r);
            m.insert("affected_accepting_sovereigns", Value::Array(from));
            Value::Object(m)
        })
        .collect();
    let mut summary = Map::new();
    summary.insert("active_edge_count", Value::from(g.rows.iter().filter(|r| g.is_active(r)).count()));
    summary.insert("imported_revocation_count", Value::from(g.imported.len()));
    summary.insert("recognition_edge_count", Value::from(g.rows.len()));
    summary.insert("revoked_edge_count", Value::from(g.rows.iter().filter(|r| r.status == "revoked").count()));
    summary.insert("revoked_trust_material_count", Value::from(material.len()));
    summary.insert("sovereign_count", Value::from(g.sovereigns().as_array().map_or(0, |a| a.len())));
    let mut m = Map::new();
    m.insert("active_treaties", g.active_treaties()?);
    m.insert("recognition_edges", Value::Array(edges.into_iter().map(Graph::edge).collect()));
    m.insert("revocation_blast_radius", Value::Array(blast));
    m.insert("revoked_trust_material", Value::Array(material));
    m.insert("sovereigns", g.sovereigns());
    m.insert("summary", Value::Object(summary));
    Ok(Value::Object(m))
}

/// `GET /connectome.json`. The view is derived from the store at read time; because it is large
/// (every edge, treaty and imported revocation), the rendered body is reused until a treaty or feed
/// write bumps the trust generation or the next active treaty expires.
pub(crate) fn connectome(na: &Authority) -> Result<Response, NaError> {
    let now = na.clock.now();
    let generation = na.trust_generation.load(std::sync::atomic::Ordering::SeqCst);
    {
        let cache = na.connectome_cache.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.as_ref().filter(|c| c.generation == generation && c.valid_until.is_none_or(|t| now < t))
        {
            return Ok(Response::bytes(200, "application/json", c.body.as_slice().to_vec()));
        }
    }
    let g = Graph::load(na)?;
    let valid_until = g.rows.iter().filter(|r| g.is_active(r)).filter_map(|r| parse_db_time(&r.expires_at)).min();
    let body = std::sync::Arc::new(json_bytes(&connectome_value(&g)?));
    let mut cache = na.connectome_cache.0.lock().unwrap_or_else(|p| p.into_inner());
    *cache = Some(CachedBody { generation, valid_until, body: std::sync::Arc::clone(&body) });
    drop(cache);
    Ok(Response::bytes(200, "application/json", body.as_slice().to_vec()))
}

/// The `/connectome.json` body computed straight from a store at `now`, without a running NA (the
/// incident bundle's fallback when the live NA cannot be reached).
pub(crate) fn connectome_body_from_store(store: &crate::store::Store, now: DateTime<Utc>) -> Result<Vec<u8>, NaError> {
    Ok(json_bytes(&connectome_value(&Graph::load_from(store, now)?)?))
}

/// `GET /connectome/trust-path?from=&to=` (aliases `source`, `target`): breadth-first search over
/// active edges in (from, to, treaty id) order.
pub(crate) fn trust_path(na: &Authority, req: &Request) -> Result<Response, NaError> {
    let query = req.query.as_deref().map(crate::http::parse_query).unwrap_or_default();
    let pick = |names: [&str; 2]| {
        names.iter().find_map(|n| query.iter().find(|(k, v)| k == n && !v.is_empty()).map(|(_, v)| v.clone()))
    };
    let (Some(from), Some(to)) = (pick(["from", "source"]), pick(["to", "target"])) else {
        return Err(NaError::api(400, "from/source and to/target are required"));
    };
    let g = Graph::load_edges(na)?;
    let mut ordered: Vec<&TreatyRow> = g.rows.iter().collect();
    ordered.sort_by(|a, b| {
        (&a.issuer_sovereign_id, &a.subject_sovereign_id, &a.treaty_id).cmp(&(
            &b.issuer_sovereign_id,
            &b.subject_sovereign_id,
            &b.treaty_id,
        ))
    });
    let mut adjacency: BTreeMap<&str, Vec<&TreatyRow>> = BTreeMap::new();
    for row in ordered.iter().filter(|r| g.is_active(r)) {
        adjacency.entry(row.issuer_sovereign_id.as_str()).or_default().push(row);
    }
    let mut queue: VecDeque<(&str, Vec<&TreatyRow>)> = VecDeque::from([(from.as_str(), Vec::new())]);
    let mut visited: BTreeSet<&str> = BTreeSet::from([from.as_str()]);
    let mut found: Option<Vec<&TreatyRow>> = None;
    'search: while let Some((node, path)) = queue.pop_front() {
        for edge in adjacency.get(node).into_iter().flatten() {
            let next = edge.subject_sovereign_id.as_str();
            if next.is_empty() || visited.contains(next) {
                continue;
            }
            let mut extended = path.clone();
            extended.push(edge);
            if next == to {
                found = Some(extended);
                break 'search;
            }
            visited.insert(next);
            queue.push_back((next, extended));
        }
    }
    let (trusted, reason, path) = match found {
        Some(p) => (true, "active_treaty_path", p),
        None => match ordered
            .iter()
            .find(|r| r.status == "revoked" && r.issuer_sovereign_id == from && r.subject_sovereign_id == to)
        {
            Some(r) => (false, "direct_treaty_revoked", vec![*r]),
            None => (false, "no_active_treaty_path", Vec::new()),
        },
    };
    let mut m = Map::new();
    m.insert("from", Value::from(from.as_str()));
    m.insert("hop_count", Value::from(if trusted { path.len() } else { 0 }));
    m.insert("path", Value::Array(path.into_iter().map(Graph::edge).collect()));
    m.insert("reason", Value::from(reason));
    m.insert("to", Value::from(to.as_str()));
    m.insert("trusted", Value::Bool(trusted));
    Ok(json_response(200, &Value::Object(m)))
}

/// Lifecycle state and expiry risk of a stored treaty (`na-wire.md` §11.3, `model::treaty_lifecycle`).
pub(crate) fn lifecycle(row: &TreatyRow, now: DateTime<Utc>) -> (&'static str, &'static str) {
    let Ok(expires_at) = ModelTime::parse_model_str(&row.expires_at) else {
        return ("expired", "expired");
    };
    let l = TreatyLifecycle::derive(
        &row.status,
        row.revocation_reason.as_deref(),
        row.revoked_at.as_deref(),
        &expires_at,
        now,
    );
    (l.state.as_str(), l.expiry_risk.as_str())
}

fn display(iso: &str) -> Value {
    parse_db_time(iso).map_or(Value::Null, |t| Value::from(t.format("%Y-%m-%d %H:%M UTC").to_string()))
}

/// `GET /dashboard.json` (upstream 0.17.5 shape).
pub(crate) fn dashboard_json(na: &Authority) -> Result<Response, NaError> {
    Ok(json_response(200, &dashboard_value(na)?))
}

fn dashboard_value(na: &Authority) -> Result<Value, NaError> {
    let g = Graph::load(na)?;
    let now = g.now;
    let connectome = connectome_value(&g)?;
    let (feeds_rows, recent, tracked) = na
        .store
        .read(|c| Ok((feeds::all_feeds(c)?, audit_store::recent_trust_changes(c, 8)?, certs::count_tracked(c)?)))?;
    let risk_rank = |r: &str| match r {
        "high" => 0,
        "expired" => 1,
        "medium" => 2,
        "low" => 3,
        _ => 4,
    };
    let mut rows: Vec<(&TreatyRow, (&str, &str))> = g.rows.iter().map(|r| (r, lifecycle(r, now))).collect();
    rows.sort_by(|a, b| (risk_rank(a.1 .1), &a.0.expires_at).cmp(&(risk_rank(b.1 .1), &b.0.expires_at)));
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let treaties: Vec<Value> = rows
        .iter()
        .map(|(r, (state, risk))| {
            *counts.entry(state).or_default() += 1;
            let mut m = Map::new();
            m.insert("expires_at", Value::from(r.expires_at.as_str()));
            m.insert("expires_at_display", display(&r.expires_at));
            m.insert("expiry_risk", Value::from(*risk));
            m.insert("issuer_sovereign_id", Value::from(r.issuer_sovereign_id.as_str()));
            m.insert("lifecycle_state", Value::from(*state));
            m.insert("revocation_reason", r.revocation_reason.as_deref().map_or(Value::Null, Value::from));
            m.insert("revoked_at", r.revoked_at.as_deref().map_or(Value::Null, Value::from));
            m.insert("status", Value::from(r.status.as_str()));
            m.insert("subject_sovereign_id", Value::from(r.subject_sovereign_id.as_str()));
            m.insert("treaty_id", Value::from(r.treaty_id.as_str()));
            m.insert("valid_from", Value::from(r.valid_from.as_str()));
            m.insert("valid_from_display", display(&r.valid_from));
            Value::Object(m)
        })
        .collect();
    let count = |s: &str| counts.get(s).copied().unwrap_or(0);
    let mut summary = Map::new();
    for s in ["active", "expired", "expiring_soon", "replaced", "revoked"] {
        summary.insert(s, Value::from(count(s)));
    }
    summary.insert("total", Value::from(g.rows.len()));
    summary.insert("warning_count", Value::from(count("expiring_soon") + count("expired")));
    let (mut stale, mut watch) = (0usize, 0usize);
    let feed_items: Vec<Value> = feeds_rows
        .iter()
        .map(|f| {
            let age = parse_db_time(&f.imported_at).map(|t| (now - t).num_hours().max(0));
            let freshness = match age {
                None => "unknown",
                Some(h) if h <= 24 => "fresh",
                Some(h) if h <= 72 => "watch",
                Some(_) => "stale",
            };
            match freshness {
                "stale" => stale += 1,
                "watch" | "unknown" => watch += 1,
                _ => {}
            }
            let revoked_count = parse_str(&f.feed_json)
                .ok()
                .and_then(|v| {
                    v.as_object()
                        .and_then(|m| m.get("revoked_attestation_ids"))
                        .and_then(|x| x.as_array().map(|a| a.len()))
                })
                .unwrap_or(0);
            let mut m = Map::new();
            m.insert("age_hours", age.map_or(Value::Null, Value::from));
            m.insert("feed_id", Value::from(f.feed_id.as_str()));
            m.insert("freshness", Value::from(freshness));
            m.insert("imported_at", Value::from(f.imported_at.as_str()));
            m.insert("imported_at_display", display(&f.imported_at));
            m.insert("issuer_sovereign_id", Value::from(f.issuer_sovereign_id.as_str()));
            m.insert("revoked_count", Value::from(revoked_count));
            m.insert("sequence", Value::from(f.sequence));
            Value::Object(m)
        })
        .collect();
    let mut feed_summary = Map::new();
    feed_summary.insert("count", Value::from(feed_items.len()));
    let overall = if feed_items.is_empty() {
        "none"
    } else if stale > 0 {
        "stale"
    } else if watch > 0 {
        "watch"
    } else {
        "fresh"
    };
    feed_summary.insert("freshness", Value::from(overall));
    feed_summary.insert("stale_count", Value::from(stale));
    feed_summary.insert("watch_count", Value::from(watch));
    let changes: Vec<Value> = recent.iter().filter_map(|json| parse_str(json).ok()).map(change).collect();
    let mut warnings = Vec::new();
    if count("expiring_soon") > 0 {
        warnings.push(Value::from(format!("{} treaty is expiring soon.", count("expiring_soon"))));
    }
    if count("expired") > 0 {
        warnings.push(Value::from(format!("{} treaty is expired.", count("expired"))));
    }
    if count("revoked") + count("replaced") > 0 {
        warnings.push(Value::from("Historical revoked or replaced treaty material is present."));
    }
    if stale > 0 {
        warnings.push(Value::from(format!("{stale} revocation feed looks stale.")));
    }
    let readiness = match na.store.check_ready() {
        Ok(()) => Map::from_iter([
            ("db_path".to_string(), Value::from(super::public::public_db_path(na))),
            ("status".to_string(), Value::from("ready")),
        ]),
        Err(e) => Map::from_iter([
            ("db_path".to_string(), Value::from(super::public::public_db_path(na))),
            ("error".to_string(), Value::from(e)),
            ("status".to_string(), Value::from("not_ready")),
        ]),
    };
    let active_nodes = super::public::active_node_count(na, now)?;
    let links: Map = [
        ("api_reference", "/api-reference"),
        ("cli_reference", "/cli-reference"),
        ("connectome", "/connectome"),
        ("connectome_json", "/connectome.json"),
        ("dashboard_json", "/dashboard.json"),
        ("recognition_graph", "/recognition-graph"),
        ("recognition_treaties", "/recognition-treaties"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Value::from(v)))
    .collect();
    let mut m = Map::new();
    m.insert(
        "connectome_summary",
        connectome.as_object().and_then(|c| c.get("summary")).cloned().unwrap_or(Value::Null),
    );
    m.insert("links", Value::Object(links));
    m.insert(
        "nodes",
        Value::Object(Map::from_iter([
            ("active".to_string(), Value::from(active_nodes)),
            ("tracked".to_string(), Value::from(tracked)),
        ])),
    );
    m.insert("readiness", Value::Object(readiness));
    m.insert("recent_changes", Value::Array(changes));
    m.insert("revocation_feed_summary", Value::Object(feed_summary));
    m.insert("revocation_feeds", Value::Array(feed_items));
    m.insert(
        "sovereign",
        Value::Object(Map::from_iter([
            ("id".to_string(), Value::from(na.genesis.network_name.as_str())),
            ("version".to_string(), Value::from(na.genesis.network_version.as_str())),
        ])),
    );
    m.insert("treaties", Value::Array(treaties));
    m.insert("treaty_summary", Value::Object(summary));
    m.insert("warnings", Value::Array(warnings));
    Ok(Value::Object(m))
}

/// A recent audit event for the dashboard, with secret-looking detail keys removed.
fn change(event: Value) -> Value {
    let created = text(&event, "created_at").to_string();
    let mut details =
        event.as_object().and_then(|m| m.get("details")).and_then(Value::as_object).cloned().unwrap_or_default();
    let hidden: Vec<String> = details
        .keys()
        .filter(|k| {
            let l = k.to_ascii_lowercase();
            ["private", "secret", "signature", "token"].iter().any(|w| l.contains(w))
        })
        .map(str::to_string)
        .collect();
    for k in hidden {
        details.remove(&k);
    }
    let mut m = Map::new();
    m.insert("created_at", Value::from(created.as_str()));
    m.insert("created_at_display", display(&created));
    m.insert("details", Value::Object(details));
    m.insert("event_type", Value::from(text(&event, "event_type")));
    Value::Object(m)
}

/// `GET /dashboard`: a plain, read-only HTML rendering of `/dashboard.json` (no scripts, no
/// external assets, every value HTML-escaped).
pub(crate) fn dashboard_html(na: &Authority) -> Result<Response, NaError> {
    let d = dashboard_value(na)?;
    let get = |k: &str| d.as_object().and_then(|m| m.get(k)).cloned().unwrap_or(Value::Null);
    let mut html = String::from("<!doctype html><html><head><meta charset=\"utf-8\"><title>gm dashboard</title>");
    html.push_str("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.w{color:#a40}</style></head><body>");
    let sov = get("sovereign");
    html.push_str(&format!("<h1>{} <small>{}</small></h1>", esc(text(&sov, "id")), esc(text(&sov, "version"))));
    html.push_str(&format!("<p>Readiness: <b>{}</b></p>", esc(text(&get("readiness"), "status"))));
    for w in get("warnings").as_array().unwrap_or_default() {
        html.push_str(&format!("<p class=\"w\">{}</p>", esc(w.as_str().unwrap_or_default())));
    }
    html.push_str("<h2>Treaties</h2><table><tr><th>treaty</th><th>issuer</th><th>subject</th><th>state</th><th>risk</th><th>expires</th></tr>");
    for t in get("treaties").as_array().unwrap_or_default() {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(text(t, "treaty_id")),
            esc(text(t, "issuer_sovereign_id")),
            esc(text(t, "subject_sovereign_id")),
            esc(text(t, "lifecycle_state")),
            esc(text(t, "expiry_risk")),
            esc(text(t, "expires_at_display"))
        ));
    }
    html.push_str("</table><h2>Revocation feeds</h2><table><tr><th>issuer</th><th>sequence</th><th>revoked</th><th>freshness</th><th>imported</th></tr>");
    for f in get("revocation_feeds").as_array().unwrap_or_default() {
        let num = |k: &str| {
            f.as_object().and_then(|m| m.get(k)).map(crate::crypto::canonical::canonical_string).unwrap_or_default()
        };
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(text(f, "issuer_sovereign_id")),
            esc(&num("sequence")),
            esc(&num("revoked_count")),
            esc(text(f, "freshness")),
            esc(text(f, "imported_at_display"))
        ));
    }
    html.push_str("</table><h2>Recent changes</h2><ul>");
    for c in get("recent_changes").as_array().unwrap_or_default() {
        html.push_str(&format!("<li>{} — {}</li>", esc(text(c, "created_at_display")), esc(text(c, "event_type"))));
    }
    html.push_str("</ul><p><a href=\"/dashboard.json\">dashboard.json</a> · <a href=\"/connectome.json\">connectome.json</a></p></body></html>\n");
    Ok(Response::bytes(200, "text/html; charset=utf-8", html.into_bytes()))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}
