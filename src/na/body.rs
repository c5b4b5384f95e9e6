//! Request body parsing modes (`na-wire.md` §8.3, `deviations.md` D24).
//!
//! * lenient (`/join`, `/heartbeat`, `/renew`, `/admin/invite|policy|policy/rollback|revoke`): a body
//!   that is missing, empty, malformed, not JSON Content-Type, or JSON-falsy is `{}`.
//! * strict (the other admin routes and the verify routes): non-JSON Content-Type ⇒ 415, malformed
//!   JSON ⇒ 400, JSON-falsy ⇒ `{}`.
//!
//! In both modes a truthy body that is not an object ⇒ 400 `request body must be a JSON object`, and
//! non-standard JSON that Python would have accepted (NaN, Infinity, lone surrogates, numbers that
//! overflow) ⇒ 400 `request body must be valid JSON` (gm refuses to sign or compare such values).

use crate::http::Request;
use crate::json::{parse, Map, ParseError, ParseLimits, Value};

use super::error::NaError;

/// True for `application/json` and `application/*+json`, parameters allowed.
pub(crate) fn is_json_content_type(req: &Request) -> bool {
    let Some(ct) = req.header("Content-Type") else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Lenient parse.
pub fn lenient(req: &Request) -> Result<Map, NaError> {
    if req.body.is_empty() || !is_json_content_type(req) {
        return Ok(Map::new());
    }
    match parse(&req.body, &ParseLimits::default()) {
        Ok(v) => into_object(v),
        Err(e) if is_non_standard(&e) => Err(NaError::api(400, "request body must be valid JSON")),
        Err(_) => Ok(Map::new()),
    }
}

/// Strict parse.
pub fn strict(req: &Request) -> Result<Map, NaError> {
    if !is_json_content_type(req) {
        return Err(NaError::api(415, "Unsupported Media Type"));
    }
    match parse(&req.body, &ParseLimits::default()) {
        Ok(v) => into_object(v),
        Err(e) if is_non_standard(&e) => Err(NaError::api(400, "request body must be valid JSON")),
        Err(_) => Err(NaError::api(400, "Bad Request")),
    }
}

fn is_non_standard(e: &ParseError) -> bool {
    matches!(
        e,
        ParseError::NonStandardToken { .. } | ParseError::LoneSurrogate { .. } | ParseError::NumberOutOfRange { .. }
    )
}

fn into_object(v: Value) -> Result<Map, NaError> {
    if !v.is_truthy() {
        return Ok(Map::new());
    }
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(NaError::api(400, "request body must be a JSON object")),
    }
}
