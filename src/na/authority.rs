//! The running Network Authority's state: [`Settings`], [`Authority`] (genesis, NA key, store,
//! limits, caches) and its upkeep, plus the JSON body helpers every route uses ([`json_bytes`],
//! [`json_response`]).
//!
//! Routes and auth files take an `&Authority` from here; `mod.rs` dispatches to them. This file must
//! not import `routes/` or `auth/admin.rs` (that would be an import loop): state a route keeps in the
//! Authority ([`ConnectomeCache`], [`SeenEnvelopes`]) and the settings types live here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::clock::Clock;
use crate::crypto::canonical::canonical_string;
use crate::crypto::keys::SigningKey;
use crate::http::Response;
use crate::json::Value;
use crate::model::genesis::Genesis;
use crate::model::SignedObject;
use crate::store::Store;

use super::metrics::HttpMetrics;
use super::{audit, auth, auth_failures, publish, rate_limit, verify_limits};

/// NA settings that are not key material.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Label written into every NA signature and `issued_by`. Defaults to `na-2025-q1`.
    pub na_key_id: String,
    /// Trusted reverse-proxy hops for `X-Forwarded-*` (D2). Defaults to 0.
    pub proxy_hops: usize,
    /// Whether the public views (`/readyz`, `/dashboard.json`, `/dashboard`) show the configured DB
    /// path (upstream does; `false` masks it in all of them). Defaults to true.
    pub readyz_shows_db_path: bool,
    /// The DB path as configured, for `/readyz`.
    pub db_path_display: String,
    /// Which admin signature versions are accepted (D6). `gm serve` defaults to v2 only, or v1 and
    /// v2 for a home without gm.toml (upstream-style deployment).
    pub admin_signature: SignaturePolicy,
    /// How long a renewed certificate's predecessor stays usable (D5). Defaults to 1 hour.
    pub supersede_grace: chrono::Duration,
    /// The signature-work bound of the public verify routes (G1). Defaults to
    /// [`verify_limits::VerifyLimits::default`].
    pub verify_limits: verify_limits::VerifyLimits,
    /// Node-auth failure rate limits and the audit collapse of auth failures (G3). Defaults to
    /// [`auth_failures::AuthFailureLimits::default`].
    pub auth_failures: auth_failures::AuthFailureLimits,
    /// Whether the admin routes and `/metrics` require a verified client certificate (built-in TLS
    /// with `[tls] client_ca_file`). Defaults to false.
    pub operator_client_certificates: bool,
}

/// The running NA: everything a request handler needs.
pub struct Authority {
    pub(crate) settings: Settings,
    pub(crate) genesis: Genesis,
    /// `GET /genesis` body, rendered once.
    pub(crate) genesis_body: Vec<u8>,
    /// Where NA signatures come from (the key, or the customer's remote signer).
    pub(crate) signing: publish::Backend,
    pub(crate) store: Arc<Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) http_metrics: HttpMetrics,
    pub(crate) operators: Arc<auth::operators::OperatorKeys>,
    pub(crate) limiter: rate_limit::RateLimiter,
    pub(crate) failure_log: auth_failures::FailureLog,
    pub(crate) seen_envelopes: SeenEnvelopes,
    /// Bumped by every treaty or feed write; keys the connectome cache.
    pub(crate) trust_generation: std::sync::atomic::AtomicU64,
    pub(crate) connectome_cache: ConnectomeCache,
    /// The signed CRL and policy bodies as last served, valid for one published epoch of the store.
    pub(crate) published: PublishedCache,
    /// More `/metrics` series from outside the NA (the scheduler's jobs, backups, disk), set once
    /// by `gm serve`.
    pub(crate) extra_metrics: std::sync::OnceLock<ExtraMetrics>,
}

/// A source of extra Prometheus text appended to `/metrics`.
pub type ExtraMetrics = Box<dyn Fn() -> String + Send + Sync>;

impl Authority {
    /// Builds the NA from a verified genesis, the matching NA key and an open store.
    pub fn new(
        settings: Settings,
        genesis: Genesis,
        na_key: SigningKey,
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        operators: Arc<auth::operators::OperatorKeys>,
    ) -> Authority {
        Authority::with_signing(settings, genesis, publish::Backend::Local(Arc::new(na_key)), store, clock, operators)
    }

    /// Builds the NA from a verified genesis, its signing backend and an open store.
    pub(crate) fn with_signing(
        settings: Settings,
        genesis: Genesis,
        signing: publish::Backend,
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        operators: Arc<auth::operators::OperatorKeys>,
    ) -> Authority {
        let genesis_body = json_bytes(&genesis.to_value());
        Authority {
            settings,
            genesis,
            genesis_body,
            signing,
            store,
            clock,
            http_metrics: HttpMetrics::default(),
            operators,
            limiter: rate_limit::RateLimiter::default(),
            failure_log: auth_failures::FailureLog::default(),
            seen_envelopes: SeenEnvelopes::default(),
            trust_generation: std::sync::atomic::AtomicU64::new(0),
            connectome_cache: ConnectomeCache::default(),
            published: PublishedCache::default(),
            extra_metrics: std::sync::OnceLock::new(),
        }
    }

    /// Appends `render()`'s series to every `/metrics` answer (set once; later calls are ignored).
    pub(crate) fn set_extra_metrics(&self, render: ExtraMetrics) {
        let _ = self.extra_metrics.set(render);
    }

    /// The NA signer, owned, for write jobs.
    pub(crate) fn signer(&self) -> publish::Signer {
        publish::Signer::new(self.signing.clone(), self.settings.na_key_id.clone())
    }

    /// The remote signer pool, under customer-held custody.
    pub(crate) fn remote_signer(&self) -> Option<&Arc<super::remote_signer::RemoteSigner>> {
        match &self.signing {
            publish::Backend::Remote(r) => Some(r),
            publish::Backend::Local(_) => None,
        }
    }

    /// Marks stored trust material (treaties, imported feeds) as changed.
    pub(crate) fn trust_changed(&self) {
        self.trust_generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// The operator key set (reloaded on SIGHUP by `gm serve`).
    pub(crate) fn operators(&self) -> &auth::operators::OperatorKeys {
        &self.operators
    }

    /// At startup: stores the first CRL when none exists and, after a restore, lists carried-over
    /// revocations in a CRL above `floor`, the replaced database's highest sequence (see
    /// [`publish::reconcile_crl`]).
    pub(crate) fn reconcile_crl(&self, floor: Option<i64>) -> Result<Option<(i64, usize)>, crate::store::StoreError> {
        let (signer, now) = (self.signer(), self.clock.now());
        self.store.write(move |c| publish::reconcile_crl(c, &signer, floor, now))
    }

    /// Periodic upkeep (D18, D4): prunes nonces older than 600 s and re-issues a CRL close to its
    /// `next_update`. Called by the serve maintenance thread; errors are logged.
    pub(crate) fn maintain(&self) {
        let now = self.clock.now();
        let threshold = crate::model::timestamp::isoformat_utc(now - chrono::Duration::seconds(600));
        match self.store.write(move |c| crate::store::nonces::prune_older_than(c, &threshold)) {
            Ok(n) if n > 0 => log::debug!(target: "gm::na", "pruned {n} expired nonce(s)"),
            Ok(_) => {}
            Err(e) => log::error!(target: "gm::na", "nonce pruning failed: {e}"),
        }
        let stale = self.store.read(crate::store::crl::active).ok().flatten().is_some_and(|(seq, json)| {
            publish::parse_stored::<crate::model::crl::Crl>(&json, "crl_versions", &seq.to_string())
                .is_ok_and(|crl| !publish::crl_is_fresh(&crl, now))
        });
        if stale {
            let signer = self.signer();
            match self.store.write(move |c| publish::current_crl(c, &signer, now)) {
                Err(crate::store::StoreError::Refused { message, .. }) => {
                    log::warn!(target: "gm::na", "CRL refresh postponed: {message}")
                }
                Err(e) => log::error!(target: "gm::na", "CRL refresh failed: {e}"),
                Ok(_) => {}
            }
        }
    }

    /// Writes the summary rows of closed auth-failure windows (G3); `everything` closes every open
    /// window (a clean shutdown). Called by the serve upkeep thread every second; errors are logged.
    pub(crate) fn flush_auth_failures(&self, everything: bool) {
        let window = self.settings.auth_failures.audit_window;
        let events = self.failure_log.take_closed(window, Instant::now(), self.clock.now(), everything);
        audit::record_events(&self.store, events);
    }

    /// Keeps the WAL file small (see [`crate::store::Store::bound_wal`]). Called by the serve
    /// maintenance thread every [`Authority::WAL_CHECK_EVERY`]; errors are logged.
    pub(crate) fn bound_wal(&self) {
        match self.store.bound_wal(crate::store::Store::WAL_LIMIT_BYTES, std::time::Duration::from_secs(2)) {
            Ok(Some(size)) => {
                log::info!(target: "gm::na", "truncated the WAL ({} MiB) after a full checkpoint", size / (1024 * 1024))
            }
            Ok(None) => {}
            Err(e) => log::warn!(target: "gm::na", "WAL checkpoint postponed: {e}"),
        }
    }

    /// How often `gm serve` checks the WAL size. Under `scripts/load.sh` the WAL grows 2–3 MiB/s,
    /// so a check every 10 s against a 16 MiB limit keeps each truncation short.
    pub(crate) const WAL_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
}

/// Which signature versions are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignaturePolicy {
    /// v2, then v1 (upstream 0.16 clients; the default only where gm runs without gm.toml, as a
    /// drop-in for an upstream deployment). v1 binds neither method, path nor NA: a relayed v1
    /// request can be replayed on another admin route.
    V1AndV2,
    /// v2 only (upstream 1.1+ behaviour; gm's default with a gm.toml).
    V2Only,
}

/// Deregistration envelopes seen in the last 600 s (D16).
#[derive(Debug, Default)]
pub(crate) struct SeenEnvelopes(pub(crate) Mutex<HashMap<String, chrono::DateTime<chrono::Utc>>>);

/// The last rendered `/connectome.json` body, valid for one trust generation and until the next
/// treaty expiry (when an edge stops being active, D14).
#[derive(Debug, Default)]
pub(crate) struct ConnectomeCache(pub(crate) std::sync::Mutex<Option<CachedBody>>);

/// One rendered `/connectome.json` body and how long it holds.
#[derive(Debug)]
pub(crate) struct CachedBody {
    /// The trust generation it was rendered at.
    pub(crate) generation: u64,
    /// The next active treaty expiry, if any.
    pub(crate) valid_until: Option<chrono::DateTime<chrono::Utc>>,
    /// The body.
    pub(crate) body: std::sync::Arc<Vec<u8>>,
}

/// The public signed documents that change only when the NA writes them (`/crl`, `/policy`), served
/// from memory: each is the body rendered from the database at one [`Store::published_epoch`]
/// (read before the database), used while that epoch is current and, for the CRL, until it enters
/// its re-issue window. A revocation, a re-issue, a new policy, or any other write to those tables
/// in this process bumps the epoch; a restore cannot run while `gm serve` holds the database.
#[derive(Debug, Default)]
pub(crate) struct PublishedCache {
    /// `GET /crl`.
    pub(crate) crl: DocCache,
    /// `GET /policy`.
    pub(crate) policy: DocCache,
}

/// One cached document body.
#[derive(Debug, Default)]
pub(crate) struct DocCache(Mutex<Option<CachedDoc>>);

#[derive(Debug)]
struct CachedDoc {
    epoch: u64,
    fresh_until: Option<chrono::DateTime<chrono::Utc>>,
    body: std::sync::Arc<Vec<u8>>,
}

impl DocCache {
    /// The body cached at `epoch`, if it is still fresh at `now`. `None` epoch: no caching.
    pub(crate) fn get(&self, epoch: Option<u64>, now: chrono::DateTime<chrono::Utc>) -> Option<Vec<u8>> {
        let epoch = epoch?;
        let body = {
            let cached = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let doc = cached.as_ref()?;
            if doc.epoch != epoch || doc.fresh_until.is_some_and(|until| now > until) {
                return None;
            }
            std::sync::Arc::clone(&doc.body)
        };
        Some(body.as_ref().clone())
    }

    /// Keeps `body`, read from the database after `epoch` was read, until the epoch moves or
    /// `fresh_until` passes.
    pub(crate) fn put(&self, epoch: Option<u64>, fresh_until: Option<chrono::DateTime<chrono::Utc>>, body: &[u8]) {
        if let Some(epoch) = epoch {
            let doc = CachedDoc { epoch, fresh_until, body: std::sync::Arc::new(body.to_vec()) };
            *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(doc);
        }
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

/// A response whose body is already JSON text.
pub(crate) fn json_raw(status: u16, body: Vec<u8>) -> Response {
    Response::bytes(status, "application/json", body)
}
