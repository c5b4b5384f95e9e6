//! Maps a method and path to a route, or to 404/405 (`na-wire.md` §9.1). Routes not part of the
//! 0.16 contract, such as `/na/key-history`, deliberately answer 404 (1.x nodes tolerate it).

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
}

impl Route {
    /// The route's label in gm's own metrics (a fixed pattern, never the raw path).
    pub fn label(self) -> &'static str {
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
        }
    }
}

/// What the router decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// A route to run.
    Found(Route),
    /// `OPTIONS` on a known path: answered with its `Allow` list.
    Options(&'static [&'static str]),
    /// The path exists but not for this method.
    WrongMethod(&'static [&'static str]),
    /// No such path.
    NotFound,
}

const GET_ONLY: &[&str] = &["GET", "HEAD", "OPTIONS"];
const POST_ONLY: &[&str] = &["OPTIONS", "POST"];

/// Routes `method` and the percent-decoded `path`.
pub fn route(method: &str, path: &str) -> Match {
    let post = match path {
        "/join" => Some(Route::Join),
        "/heartbeat" => Some(Route::Heartbeat),
        "/renew" => Some(Route::Renew),
        "/admin/invite" => Some(Route::AdminInvite),
        "/admin/revoke" => Some(Route::AdminRevoke),
        "/admin/policy" => Some(Route::AdminPolicy),
        "/admin/policy/rollback" => Some(Route::AdminPolicyRollback),
        _ => None,
    };
    if let Some(route) = post {
        return match method {
            "POST" => Match::Found(route),
            "OPTIONS" => Match::Options(POST_ONLY),
            _ => Match::WrongMethod(POST_ONLY),
        };
    }
    let (route, allow) = match path {
        "/admin/policy/history" => (Route::AdminPolicyHistory, GET_ONLY),
        "/health" => (Route::Health, GET_ONLY),
        "/healthz" => (Route::Healthz, GET_ONLY),
        "/readyz" => (Route::Readyz, GET_ONLY),
        "/metrics" => (Route::Metrics, GET_ONLY),
        "/nodes" => (Route::Nodes, GET_ONLY),
        "/genesis" => (Route::Genesis, GET_ONLY),
        "/sovereign.json" => (Route::Sovereign, GET_ONLY),
        "/policy" => (Route::Policy, GET_ONLY),
        "/crl" => (Route::Crl, GET_ONLY),
        _ => return Match::NotFound,
    };
    match method {
        "GET" | "HEAD" => Match::Found(route),
        "OPTIONS" => Match::Options(allow),
        _ => Match::WrongMethod(allow),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_wrong_method() {
        assert_eq!(route("GET", "/na/key-history"), Match::NotFound);
        assert_eq!(route("POST", "/healthz"), Match::WrongMethod(GET_ONLY));
        assert_eq!(route("HEAD", "/crl"), Match::Found(Route::Crl));
    }
}
