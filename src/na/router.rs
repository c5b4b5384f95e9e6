//! Maps a method and a percent-decoded path to a route, or to 404/405 (`na-wire.md` §9.1). Routes
//! not part of the 0.16 contract, such as `/na/key-history`, deliberately answer 404 (1.x nodes
//! tolerate it). `<id>` parameters match one path segment; agent keys match the rest of the path
//! (base64 keys contain `/`). Upstream's quirk is kept: `GET /attestations/verify` falls through to
//! the `<id>` route and answers `404 Attestation not found`.

use std::borrow::Cow;

/// A matched route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /health`
    Health,
    /// `GET /healthz`
    Healthz,
    /// `GET /readyz`
    Readyz,
    /// `GET /metrics`
    Metrics,
    /// `GET /nodes`
    Nodes,
    /// `GET /genesis`
    Genesis,
    /// `GET /sovereign.json`
    Sovereign,
    /// `GET /policy`
    Policy,
    /// `GET /crl`
    Crl,
    /// `POST /join`
    Join,
    /// `POST /heartbeat`
    Heartbeat,
    /// `POST /renew`
    Renew,
    /// `POST /admin/invite`
    AdminInvite,
    /// `POST /admin/revoke`
    AdminRevoke,
    /// `POST /admin/policy`
    AdminPolicy,
    /// `GET /admin/policy/history`
    AdminPolicyHistory,
    /// `POST /admin/policy/rollback`
    AdminPolicyRollback,
    /// `POST /admin/attestations`
    AdminAttestations,
    /// `POST /admin/attestations/<id>/revoke`
    AdminAttestationRevoke,
    /// `POST /admin/recognition-policy`
    AdminRecognitionPolicy,
    /// `POST /admin/recognition-treaties`
    AdminTreaties,
    /// `POST /admin/recognition-treaties/<id>/revoke`
    AdminTreatyRevoke,
    /// `POST /admin/sovereign-revocation-feeds/import`
    AdminFeedImport,
    /// `POST /admin/gm/recognition-treaties/prepare` (gm extension: offline signing)
    AdminTreatyPrepare,
    /// `POST /admin/gm/recognition-treaties/publish` (gm extension: offline signing)
    AdminTreatyPublish,
    /// `POST /admin/gm/policy/prepare` (gm extension: offline signing)
    AdminPolicyPrepare,
    /// `POST /admin/gm/policy/publish` (gm extension: offline signing)
    AdminPolicyPublish,
    /// `GET /recognition-policy`
    RecognitionPolicy,
    /// `GET /attestations`
    Attestations,
    /// `GET /attestations/<id>`
    Attestation,
    /// `POST /attestations/verify`
    AttestationVerify,
    /// `POST /attestations/verify-with-treaty`
    VerifyWithTreaty,
    /// `GET /sovereign-revocation-feed`
    Feed,
    /// `GET /recognition-treaties`
    Treaties,
    /// `GET /recognition-treaties/<id>`
    Treaty,
    /// `POST /recognition-treaties/verify`
    TreatyVerify,
    /// `GET /recognition-graph`
    Graph,
    /// `GET /connectome.json`
    Connectome,
    /// `GET /connectome/trust-path`
    TrustPath,
    /// `GET /dashboard.json`
    DashboardJson,
    /// `GET /dashboard`
    Dashboard,
    /// `POST /agents`
    AgentRegister,
    /// `GET /agents`
    Agents,
    /// `GET /agents/<key>`
    Agent,
    /// `DELETE /agents/<key>`
    AgentDelete,
}

impl Route {
    /// The route's label in gm's own metrics (a fixed pattern, never the raw path).
    pub(crate) fn label(self) -> &'static str {
        match self {
            Route::Health => "/health",
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
            Route::Nodes => "/nodes",
            Route::Genesis => "/genesis",
            Route::Sovereign => "/sovereign.json",
            Route::Policy => "/policy",
            Route::Crl => "/crl",
            Route::Join => "/join",
            Route::Heartbeat => "/heartbeat",
            Route::Renew => "/renew",
            Route::AdminInvite => "/admin/invite",
            Route::AdminRevoke => "/admin/revoke",
            Route::AdminPolicy => "/admin/policy",
            Route::AdminPolicyHistory => "/admin/policy/history",
            Route::AdminPolicyRollback => "/admin/policy/rollback",
            Route::AdminAttestations => "/admin/attestations",
            Route::AdminAttestationRevoke => "/admin/attestations/<id>/revoke",
            Route::AdminRecognitionPolicy => "/admin/recognition-policy",
            Route::AdminTreaties => "/admin/recognition-treaties",
            Route::AdminTreatyRevoke => "/admin/recognition-treaties/<id>/revoke",
            Route::AdminFeedImport => "/admin/sovereign-revocation-feeds/import",
            Route::AdminTreatyPrepare => "/admin/gm/recognition-treaties/prepare",
            Route::AdminTreatyPublish => "/admin/gm/recognition-treaties/publish",
            Route::AdminPolicyPrepare => "/admin/gm/policy/prepare",
            Route::AdminPolicyPublish => "/admin/gm/policy/publish",
            Route::RecognitionPolicy => "/recognition-policy",
            Route::Attestations => "/attestations",
            Route::Attestation => "/attestations/<id>",
            Route::AttestationVerify => "/attestations/verify",
            Route::VerifyWithTreaty => "/attestations/verify-with-treaty",
            Route::Feed => "/sovereign-revocation-feed",
            Route::Treaties => "/recognition-treaties",
            Route::Treaty => "/recognition-treaties/<id>",
            Route::TreatyVerify => "/recognition-treaties/verify",
            Route::Graph => "/recognition-graph",
            Route::Connectome => "/connectome.json",
            Route::TrustPath => "/connectome/trust-path",
            Route::DashboardJson => "/dashboard.json",
            Route::Dashboard => "/dashboard",
            Route::AgentRegister => "/agents (POST)",
            Route::Agents => "/agents",
            Route::Agent => "/agents/<key>",
            Route::AgentDelete => "/agents/<key> (DELETE)",
        }
    }
}

/// What the router decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Match {
    /// A route to run, with its path parameter if it has one.
    Found(Route, Option<String>),
    /// `OPTIONS` on a known path: answered with its `Allow` list.
    Options(&'static [&'static str]),
    /// The path exists but not for this method.
    WrongMethod(&'static [&'static str]),
    /// No such path.
    NotFound,
}

const GET: &[&str] = &["GET", "HEAD", "OPTIONS"];
const POST: &[&str] = &["OPTIONS", "POST"];
const GET_POST: &[&str] = &["GET", "HEAD", "OPTIONS", "POST"];
const GET_DELETE: &[&str] = &["DELETE", "GET", "HEAD", "OPTIONS"];

/// The routes a path offers: `(allowed methods, [(method, route)])`, plus a parameter.
/// The method table is borrowed from static data for every path but the admin ones (looked up per
/// request, so no allocation for a public route).
type Offer = (&'static [&'static str], Cow<'static, [(&'static str, Route)]>, Option<String>);

fn offer(path: &str) -> Option<Offer> {
    let fixed = |allow, routes: &'static [(&'static str, Route)]| Some((allow, Cow::Borrowed(routes), None));
    match path {
        "/health" => fixed(GET, &[("GET", Route::Health)]),
        "/healthz" => fixed(GET, &[("GET", Route::Healthz)]),
        "/readyz" => fixed(GET, &[("GET", Route::Readyz)]),
        "/metrics" => fixed(GET, &[("GET", Route::Metrics)]),
        "/nodes" => fixed(GET, &[("GET", Route::Nodes)]),
        "/genesis" => fixed(GET, &[("GET", Route::Genesis)]),
        "/sovereign.json" => fixed(GET, &[("GET", Route::Sovereign)]),
        "/policy" => fixed(GET, &[("GET", Route::Policy)]),
        "/crl" => fixed(GET, &[("GET", Route::Crl)]),
        "/join" => fixed(POST, &[("POST", Route::Join)]),
        "/heartbeat" => fixed(POST, &[("POST", Route::Heartbeat)]),
        "/renew" => fixed(POST, &[("POST", Route::Renew)]),
        "/recognition-policy" => fixed(GET, &[("GET", Route::RecognitionPolicy)]),
        "/attestations" => fixed(GET, &[("GET", Route::Attestations)]),
        "/attestations/verify" => fixed(GET_POST, &[("POST", Route::AttestationVerify), ("GET", Route::Attestation)])
            .map(|(a, r, _)| (a, r, Some("verify".to_string()))),
        "/attestations/verify-with-treaty" => {
            fixed(GET_POST, &[("POST", Route::VerifyWithTreaty), ("GET", Route::Attestation)])
                .map(|(a, r, _)| (a, r, Some("verify-with-treaty".to_string())))
        }
        "/sovereign-revocation-feed" => fixed(GET, &[("GET", Route::Feed)]),
        "/recognition-treaties" => fixed(GET, &[("GET", Route::Treaties)]),
        "/recognition-treaties/verify" => fixed(GET_POST, &[("POST", Route::TreatyVerify), ("GET", Route::Treaty)])
            .map(|(a, r, _)| (a, r, Some("verify".to_string()))),
        "/recognition-graph" => fixed(GET, &[("GET", Route::Graph)]),
        "/connectome.json" => fixed(GET, &[("GET", Route::Connectome)]),
        "/connectome/trust-path" => fixed(GET, &[("GET", Route::TrustPath)]),
        "/dashboard.json" => fixed(GET, &[("GET", Route::DashboardJson)]),
        "/dashboard" => fixed(GET, &[("GET", Route::Dashboard)]),
        "/agents" => fixed(GET_POST, &[("GET", Route::Agents), ("POST", Route::AgentRegister)]),
        _ if path.starts_with("/admin/") => admin_offer(path),
        _ => parameterised(path),
    }
}

/// Every operator-signed route (`na-wire.md` §6, §9): method, path pattern (`<id>` is one path
/// segment) and route. The router matches `/admin/…` paths from this table alone, so a test walking
/// it covers every admin route there is. gm's own admin routes live under `/admin/gm/`, where an
/// upstream route can never land.
pub const ADMIN_ROUTES: [(&str, &str, Route); 15] = [
    ("POST", "/admin/invite", Route::AdminInvite),
    ("POST", "/admin/revoke", Route::AdminRevoke),
    ("POST", "/admin/policy", Route::AdminPolicy),
    ("GET", "/admin/policy/history", Route::AdminPolicyHistory),
    ("POST", "/admin/policy/rollback", Route::AdminPolicyRollback),
    ("POST", "/admin/attestations", Route::AdminAttestations),
    ("POST", "/admin/attestations/<id>/revoke", Route::AdminAttestationRevoke),
    ("POST", "/admin/recognition-policy", Route::AdminRecognitionPolicy),
    ("POST", "/admin/recognition-treaties", Route::AdminTreaties),
    ("POST", "/admin/recognition-treaties/<id>/revoke", Route::AdminTreatyRevoke),
    ("POST", "/admin/sovereign-revocation-feeds/import", Route::AdminFeedImport),
    ("POST", "/admin/gm/recognition-treaties/prepare", Route::AdminTreatyPrepare),
    ("POST", "/admin/gm/recognition-treaties/publish", Route::AdminTreatyPublish),
    ("POST", "/admin/gm/policy/prepare", Route::AdminPolicyPrepare),
    ("POST", "/admin/gm/policy/publish", Route::AdminPolicyPublish),
];

/// The [`ADMIN_ROUTES`] entry matching `path`, with its `<id>` if the pattern has one.
fn admin_offer(path: &str) -> Option<Offer> {
    ADMIN_ROUTES.iter().find_map(|&(method, pattern, route)| {
        let param = match pattern.split_once("<id>") {
            None => (pattern == path).then_some(None)?,
            Some((prefix, suffix)) => {
                let id = path.strip_prefix(prefix)?.strip_suffix(suffix)?;
                (!id.is_empty() && !id.contains('/')).then(|| Some(id.to_string()))?
            }
        };
        let allow = if method == "GET" { GET } else { POST };
        Some((allow, Cow::Owned(vec![(method, route)]), param))
    })
}

fn parameterised(path: &str) -> Option<Offer> {
    let segment = |rest: &str| (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string());
    if let Some(key) = path.strip_prefix("/agents/").filter(|k| !k.is_empty()) {
        return Some((
            GET_DELETE,
            Cow::Borrowed(&[("GET", Route::Agent), ("DELETE", Route::AgentDelete)]),
            Some(key.to_string()),
        ));
    }
    if let Some(id) = path.strip_prefix("/attestations/").and_then(segment) {
        return Some((GET, Cow::Borrowed(&[("GET", Route::Attestation)]), Some(id)));
    }
    if let Some(id) = path.strip_prefix("/recognition-treaties/").and_then(segment) {
        return Some((GET, Cow::Borrowed(&[("GET", Route::Treaty)]), Some(id)));
    }
    None
}

/// Routes `method` and the percent-decoded `path`.
pub(crate) fn route(method: &str, path: &str) -> Match {
    let Some((allow, routes, param)) = offer(path) else {
        return Match::NotFound;
    };
    let wanted = if method == "HEAD" { "GET" } else { method };
    if let Some((_, route)) = routes.iter().find(|(m, _)| *m == wanted) {
        return Match::Found(*route, param);
    }
    if method == "OPTIONS" {
        return Match::Options(allow);
    }
    Match::WrongMethod(allow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_wrong_method_and_parameters() {
        assert_eq!(route("GET", "/na/key-history"), Match::NotFound);
        assert_eq!(route("POST", "/healthz"), Match::WrongMethod(GET));
        assert_eq!(route("HEAD", "/crl"), Match::Found(Route::Crl, None));
        assert_eq!(route("GET", "/attestations/verify"), Match::Found(Route::Attestation, Some("verify".into())));
        assert_eq!(route("POST", "/attestations/abc"), Match::WrongMethod(GET));
        assert_eq!(route("GET", "/agents/a/b+c="), Match::Found(Route::Agent, Some("a/b+c=".into())));
        assert_eq!(
            route("POST", "/admin/recognition-treaties/t-1/revoke"),
            Match::Found(Route::AdminTreatyRevoke, Some("t-1".into()))
        );
        assert_eq!(route("POST", "/admin/recognition-treaties/a/b/revoke"), Match::NotFound);
        assert_eq!(route("POST", "/admin/recognition-treaties//revoke"), Match::NotFound);
        assert_eq!(route("GET", "/admin/policy/history"), Match::Found(Route::AdminPolicyHistory, None));
        assert_eq!(route("POST", "/admin/policy/history"), Match::WrongMethod(GET));
        assert_eq!(route("GET", "/admin/invite"), Match::WrongMethod(POST));
        assert_eq!(route("GET", "/admin/nodes"), Match::NotFound);
    }

    #[test]
    fn admin_routes_table_names_every_admin_route_once_with_its_label() {
        for (method, pattern, route_) in ADMIN_ROUTES {
            assert_eq!(route_.label(), pattern);
            let path = pattern.replace("<id>", "x-1");
            let param = pattern.contains("<id>").then(|| "x-1".to_string());
            assert_eq!(route(method, &path), Match::Found(route_, param), "{method} {pattern}");
        }
        let mut labels: Vec<&str> = ADMIN_ROUTES.iter().map(|r| r.1).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), ADMIN_ROUTES.len());
    }
}
