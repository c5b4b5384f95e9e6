//! The Network Authority: gives HTTP requests meaning (`na-wire.md`). It owns the loaded genesis, the
//! NA signing key and the store, routes each request, renders upstream-compatible JSON and maps
//! errors through [`error::NaError`]. It never parses HTTP itself (that is `http`) and never reads
//! configuration files (`cli` builds [`Settings`]).
//!
//! [`Authority`], its [`Settings`] and the JSON body helpers live in `authority.rs`, which the routes
//! and auth files import; this file declares the parts and dispatches each request to its route
//! (`router.rs`, `routes/`), so no route imports the file that calls it.

pub mod audit;
pub mod auth;
pub mod auth_failures;
pub mod body;
pub mod coerce;
pub mod error;
pub mod metrics;
pub(crate) mod offline;
pub mod publish;
pub mod rate_limit;
pub mod remote_addr;
pub(crate) mod remote_signer;
pub mod router;
pub mod routes;
pub(crate) mod sign_error;
pub mod verify_limits;

mod authority;

use std::time::Instant;

use crate::http::{Handler, Request, Response};

use authority::json_raw;
pub use authority::{json_bytes, json_response, Authority, ExtraMetrics, Settings};
use error::NaError;
use router::{Match, Route};

impl Authority {
    fn dispatch(&self, req: &Request, path: &str) -> (&'static str, Result<Response, NaError>) {
        match router::route(&req.method, path) {
            Match::Found(route, _) if self.needs_client_certificate(route, path) && !req.client_certificate => (
                route.label(),
                Err(NaError::api(403, "a client certificate is required for this route (operator surface)")),
            ),
            Match::Found(route, param) => {
                (route.label(), self.run(route, req, path, param.as_deref().unwrap_or_default()))
            }
            Match::Options(allow) => ("options", Ok(Response::new(200).with_header("Allow", allow.join(", ")))),
            Match::WrongMethod(allow) => ("unmatched", Err(NaError::MethodNotAllowed { allow })),
            Match::NotFound => ("unmatched", Err(NaError::NotFound)),
        }
    }

    /// The operator-only surface (admin routes, `/metrics`) when client certificates are required.
    fn needs_client_certificate(&self, route: Route, path: &str) -> bool {
        self.settings.operator_client_certificates && (route == Route::Metrics || path.starts_with("/admin/"))
    }

    fn run(&self, route: Route, req: &Request, path: &str, param: &str) -> Result<Response, NaError> {
        use routes::{admin, connectome, discovery, enroll, feed, offline_signing, public, trust};
        match route {
            Route::Health => public::health(self),
            Route::Healthz => Ok(public::healthz()),
            Route::Readyz => Ok(public::readyz(self)),
            Route::Metrics => public::metrics(self),
            Route::Nodes => public::nodes(self),
            Route::Genesis => Ok(json_raw(200, self.genesis_body.clone())),
            Route::Sovereign => Ok(public::sovereign(self, req)),
            Route::Policy => public::policy(self),
            Route::Crl => public::crl(self),
            Route::Join => enroll::join(self, req),
            Route::Heartbeat => enroll::heartbeat(self, req),
            Route::Renew => enroll::renew(self, req),
            Route::AdminInvite => admin::invite(self, req, path),
            Route::AdminRevoke => admin::revoke(self, req, path),
            Route::AdminPolicy => admin::policy_publish(self, req, path),
            Route::AdminPolicyHistory => admin::policy_history(self, req, path),
            Route::AdminPolicyRollback => admin::policy_rollback(self, req, path),
            Route::AdminAttestations => trust::issue_attestation(self, req, path),
            Route::AdminAttestationRevoke => trust::revoke_attestation(self, req, path, param),
            Route::AdminRecognitionPolicy => trust::save_recognition_policy(self, req, path),
            Route::AdminTreaties => trust::issue_treaty(self, req, path),
            Route::AdminTreatyRevoke => trust::revoke_treaty(self, req, path, param),
            Route::AdminFeedImport => feed::import(self, req, path),
            Route::AdminTreatyPrepare => offline_signing::prepare_treaty(self, req, path),
            Route::AdminTreatyPublish => offline_signing::publish_treaty(self, req, path),
            Route::AdminPolicyPrepare => offline_signing::prepare_policy(self, req, path),
            Route::AdminPolicyPublish => offline_signing::publish_policy(self, req, path),
            Route::RecognitionPolicy => trust::get_recognition_policy(self),
            Route::Attestations => trust::list_attestations(self, req),
            Route::Attestation => trust::get_attestation(self, param),
            Route::AttestationVerify => trust::verify_attestation_route(self, req),
            Route::VerifyWithTreaty => trust::verify_with_treaty_route(self, req),
            Route::Feed => feed::export(self, req),
            Route::Treaties => trust::list_treaties(self, req),
            Route::Treaty => trust::get_treaty(self, param),
            Route::TreatyVerify => trust::verify_treaty_route(self, req),
            Route::Graph => connectome::recognition_graph(self),
            Route::Connectome => connectome::connectome(self),
            Route::TrustPath => connectome::trust_path(self, req),
            Route::DashboardJson => connectome::dashboard_json(self),
            Route::Dashboard => connectome::dashboard_html(self),
            Route::AgentRegister => discovery::register(self, req),
            Route::Agents => discovery::list(self, req),
            Route::Agent => discovery::get(self, param),
            Route::AgentDelete => discovery::deregister(self, req, param),
        }
    }
}

impl Handler for Authority {
    fn handle(&self, req: &Request) -> Response {
        let started = Instant::now();
        // Almost every path has no escape: decode (and allocate) only when there is one.
        let decoded;
        let path = if req.path.contains('%') {
            decoded = crate::http::percent_decode(&req.path).unwrap_or_else(|_| req.path.clone());
            decoded.as_str()
        } else {
            req.path.as_str()
        };
        let (label, result) = self.dispatch(req, path);
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                if let NaError::Internal { detail } = &e {
                    log::error!(target: "gm::na", request_id = req.request_id.as_str(); "internal error on {}: {detail}", label);
                }
                let mut r = json_response(e.status(), &e.body());
                match e {
                    NaError::MethodNotAllowed { allow } => r = r.with_header("Allow", allow.join(", ")),
                    NaError::RateLimited => r = r.with_header("Retry-After", "60"),
                    _ => {}
                }
                r
            }
        };
        self.http_metrics.observe(label, response.status, started.elapsed());
        response
    }

    /// The public documents served from memory (`/healthz`, `/genesis`, and `/crl` and `/policy` while
    /// their cached bytes are current), answered as [`Handler::handle`] answers them; anything else, or a
    /// cache that needs the database, is `None`.
    fn handle_now(&self, req: &Request) -> Option<Response> {
        if req.path.contains('%') {
            return None;
        }
        let started = Instant::now();
        let Match::Found(route, _) = router::route(&req.method, &req.path) else { return None };
        if self.needs_client_certificate(route, &req.path) {
            return None;
        }
        let response = match route {
            Route::Healthz => routes::public::healthz(),
            Route::Genesis => json_raw(200, self.genesis_body.clone()),
            Route::Crl => routes::public::crl_from_memory(self)?,
            Route::Policy => routes::public::policy_from_memory(self)?,
            _ => return None,
        };
        self.http_metrics.observe(route.label(), response.status, started.elapsed());
        Some(response)
    }
}
