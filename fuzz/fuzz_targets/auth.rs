//! Admin and node authentication (`src/na/auth/`): the `X-Admin-*` headers with v1/v2 signature
//! checks, nonce replay and audit writes against a real SQLite store, the node proof of possession
//! in request bodies, request timestamps, forwarded-address headers and the operator key set.
//!
//! Input: a raw HTTP request (head, then a `Content-Length` body), as `tests/vectors/*-requests.json`
//! render to. Each request is authenticated as sent, then once more with a valid v2 signature by the
//! vectors' `operator-1` key, so the paths after the signature check (nonce store, legacy audit) run.
//!
//! Properties: no panic; a request re-signed by a known key with a fresh timestamp is refused only
//! for a replayed nonce.
#![no_main]

use std::sync::{Arc, OnceLock};

use gm::clock::FixedClock;
use gm::json::{parse_str, Value};
use gm::crypto::keys::SigningKey;
use gm::crypto::payload::v2_payload;
use gm::http::{parse_head_for_fuzzing, parse_query, percent_decode, Limits, Request};
use gm::model::genesis::Genesis;
use gm::model::timestamp::isoformat_utc;
use gm::model::SignedObject;
use gm::na::auth::admin::{authenticate, SignaturePolicy};
use gm::na::auth::check_timestamp;
use gm::na::auth::node::{nonce_of, verify};
use gm::na::auth::operators::{parse_key_set, render_key_set, KeySource, OperatorKeys};
use gm::na::body::{lenient, strict};
use gm::na::remote_addr::{base_url, client_addr};
use gm::na::{Authority, Settings};
use gm::store::{OpenMode, Store};
use gm_fuzz::{scratch_dir, vector_now, OPERATOR_SEED_B64};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let peer = ([127, 0, 0, 1], 40000).into();
    let Ok(Some((mut request, head_len, length))) = parse_head_for_fuzzing(data, &Limits::default(), peer) else {
        return;
    };
    let rest = &data[head_len..];
    request.body = rest[..length.min(rest.len())].to_vec();
    let na = authority();
    let now = vector_now();
    let path = percent_decode(&request.path).unwrap_or_else(|_| request.path.clone());
    for hops in [0, 1, 3] {
        let _ = (client_addr(&request, hops), base_url(&request, hops));
    }
    if let Some(ts) = request.header("X-Admin-Timestamp") {
        let _ = check_timestamp(ts, now);
    }
    if let Ok(text) = std::str::from_utf8(&request.body) {
        if let Ok(keys) = parse_key_set(text) {
            assert_eq!(parse_key_set(&render_key_set(&keys)).ok(), Some(keys), "operator keys do not round-trip");
        }
    }
    let _ = strict(&request);
    let body = lenient(&request).unwrap_or_default();
    let _ = nonce_of(&body);
    for seen in [false, true] {
        let _ = verify(&body, "join:fuzz", now, seen);
    }
    let _ = authenticate(na, &request, &path, &body, "127.0.0.1", now);
    let Some(signed) = resign(&request, &path, &Value::Object(body.clone())) else { return };
    let fresh = signed.header("X-Admin-Timestamp").is_some_and(|ts| check_timestamp(ts, now).is_ok());
    if let Err(err) = authenticate(na, &signed, &path, &body, "127.0.0.1", now) {
        let text = format!("{err:?}");
        assert!(!fresh || text.contains("nonce"), "a validly signed, fresh admin request was refused: {text}");
    }
});

/// `request` with `X-Admin-Signature` replaced by a v2 signature of `operator-1` over what gm checks,
/// when the other three headers are present and non-empty and the key id is `operator-1`.
fn resign(request: &Request, path: &str, body: &Value) -> Option<Request> {
    let header = |name: &str| request.header(name).filter(|v| !v.is_empty());
    let (key_id, timestamp, nonce) =
        (header("X-Admin-Key-Id")?, header("X-Admin-Timestamp")?, header("X-Admin-Nonce")?);
    if key_id != "operator-1" {
        return None;
    }
    let key = SigningKey::from_seed_b64(OPERATOR_SEED_B64).ok()?;
    let audience = &authority_genesis().network_authority.public_key;
    let query = request.query.as_deref().map(parse_query).unwrap_or_default();
    let payload = v2_payload(audience, body, key_id, &request.method, nonce, path, &query, timestamp);
    let mut signed = request.clone();
    signed.headers.retain(|(name, _)| !name.eq_ignore_ascii_case("X-Admin-Signature"));
    signed.headers.push(("X-Admin-Signature".into(), key.sign_b64(&payload)));
    Some(signed)
}

/// One NA for the whole run: the vectors' genesis, an empty store in a scratch folder, a clock frozen
/// at the vectors' instant, and `operator-1` as the only operator key.
fn authority() -> &'static Authority {
    static NA: OnceLock<Authority> = OnceLock::new();
    NA.get_or_init(|| {
        let dir = scratch_dir("auth");
        let store = Store::open(&dir.join("na.db"), OpenMode::Serve, &isoformat_utc(vector_now())).expect("open store");
        let operator = SigningKey::from_seed_b64(OPERATOR_SEED_B64).expect("the vectors' operator seed");
        let keys = format!("{{\"operator-1\": \"{}\"}}", operator.public_key().to_b64());
        let operators = OperatorKeys::load(KeySource::Inline(keys)).expect("operator keys");
        let settings = Settings {
            na_key_id: "na-2025-q1".into(),
            proxy_hops: 0,
            readyz_shows_db_path: false,
            db_path_display: String::new(),
            admin_signature: SignaturePolicy::V1AndV2,
            supersede_grace: chrono::Duration::hours(1),
            verify_limits: Default::default(),
            auth_failures: Default::default(),
            operator_client_certificates: false,
        };
        Authority::new(
            settings,
            authority_genesis().clone(),
            SigningKey::generate(),
            Arc::new(store),
            Arc::new(FixedClock(vector_now())),
            Arc::new(operators),
        )
    })
}

/// `genesis/valid` from `tests/vectors/signed-objects.json`.
fn authority_genesis() -> &'static Genesis {
    static GENESIS: OnceLock<Genesis> = OnceLock::new();
    GENESIS.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/signed-objects.json");
        let text = std::fs::read_to_string(path).expect("the shared vectors");
        let vectors = parse_str(&text).expect("vectors parse");
        let signed = vectors
            .as_object()
            .and_then(|m| m.get("vectors"))
            .and_then(Value::as_array)
            .and_then(|list| {
                list.iter()
                    .find(|v| v.as_object().and_then(|m| m.get("id")).and_then(Value::as_str) == Some("genesis/valid"))
            })
            .and_then(|v| v.as_object())
            .and_then(|m| m.get("signed"))
            .expect("genesis/valid in the vectors");
        Genesis::from_value(signed).expect("genesis/valid reads")
    })
}
