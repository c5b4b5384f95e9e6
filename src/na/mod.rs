//! The Network Authority: gives HTTP requests meaning (`na-wire.md`). It owns the loaded genesis, the
//! NA signing key and the store, routes each request, renders upstream-compatible JSON and maps
//! errors through [`error::NaError`]. It never parses HTTP itself (that is `http`) and never reads
//! configuration files (`cli` builds [`Settings`]).

pub mod error;
pub mod metrics;
pub mod remote_addr;
pub mod router;
pub mod routes;

use std::sync::Arc;
use std::time::Instant;

use crate::clock::Clock;
use crate::crypto::canonical::canonical_string;
use crate::crypto::json::Value;
use crate::crypto::keys::SigningKey;
use crate::http::{Handler, Request, Response};
use crate::model::genesis::Genesis;
use crate::model::SignedObject;
use crate::store::Store;

use error::NaError;
use metrics::HttpMetrics;
use router::{Match, Route};

/// NA settings that are not key material.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Label written into every NA signature and `issued_by`. Defaults to `na-2025-q1`.
    pub na_key_id: String,
    /// Trusted reverse-proxy hops for `X-Forwarded-*` (D2). Defaults to 0.
    pub proxy_hops: usize,
    /// Whether `/readyz` shows the configured DB path (upstream does; mask it on public endpoints).
    /// Defaults to true.
    pub readyz_shows_db_path: bool,
    /// The DB path as configured, for `/readyz`.
    pub db_path_display: String,
}

/// The running NA: everything a request handler needs.
pub struct Authority {
    pub(crate) settings: Settings,
    pub(crate) genesis: Genesis,
    /// `GET /genesis` body, rendered once.
    pub(crate) genesis_body: Vec<u8>,
    pub(crate) na_key: SigningKey,
    pub(crate) store: Arc<Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) http_metrics: HttpMetrics,
}

impl Authority {
    /// Builds the NA from a verified genesis, the matching NA key and an open store.
    pub fn new(
        settings: Settings,
        genesis: Genesis,
        na_key: SigningKey,
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
    ) -> Authority {
        let genesis_body = json_bytes(&genesis.to_value());
        Authority {
            settings,
            genesis,
            genesis_body,
            na_key,
            store,
            clock,
            http_metrics: HttpMetrics::default(),
        }
    }

    fn dispatch(&self, req: &Request, path: &str) -> (&'static str, Result<Response, NaError>) {
        match router::route(&req.method, path) {
            Match::Found(route) => (route.label(), self.run(route, req)),
            Match::Options(allow) => (
                "options",
                Ok(Response::new(200).with_header("Allow", allow.join(", "))),
            ),
            Match::WrongMethod(allow) => ("unmatched", Err(NaError::MethodNotAllowed { allow })),
            Match::NotFound => ("unmatched", Err(NaError::NotFound)),
        }
    }

    fn run(&self, route: Route, req: &Request) -> Result<Response, NaError> {
        use routes::public;
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
        }
    }
}

impl Handler for Authority {
    fn handle(&self, req: &Request) -> Response {
        let started = Instant::now();
        let path = crate::http::percent_decode(&req.path).unwrap_or_else(|_| req.path.clone());
        let (label, result) = self.dispatch(req, &path);
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                if let NaError::Internal { detail } = &e {
                    log::error!(target: "gm::na", request_id = req.request_id.as_str(); "internal error on {}: {detail}", label);
                }
                let mut r = json_response(e.status(), &e.body());
                if let NaError::MethodNotAllowed { allow } = e {
                    r = r.with_header("Allow", allow.join(", "));
                }
                r
            }
        };
        self.http_metrics
            .observe(label, response.status, started.elapsed());
        response
    }
}

/// Renders `value` as upstream's `jsonify` does: canonical JSON plus a trailing newline.
pub fn json_bytes(value: &Value) -> Vec<u8> {
    let mut text = canonical_string(value);
    text.push('\n');
    text.into_bytes()
}

/// A JSON response with `status`.
pub fn json_response(status: u16, value: &Value) -> Response {
    json_raw(status, json_bytes(value))
}

fn json_raw(status: u16, body: Vec<u8>) -> Response {
    Response::bytes(status, "application/json", body)
}
