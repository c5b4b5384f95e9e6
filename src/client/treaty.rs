//! Recognition treaties on the wire (`na-wire.md` §7.9, §9.3, §9.5): the public routes
//! `GET /recognition-treaties` and `GET /recognition-treaties/<id>` read into [`TreatyRow`]s, and
//! the operator-signed `POST /admin/recognition-treaties` (issue) and
//! `POST /admin/recognition-treaties/<id>/revoke`.
//!
//! Ids are percent-encoded into targets, so a user-given id cannot add a path segment or a
//! parameter. Checks only the shape of answers; whether a treaty's signature verifies, and how
//! rows are shown, is the caller's. The renew and replace compositions are
//! `treaty_succession.rs`.

use chrono::{DateTime, Utc};

use crate::json::{Map, Value};
use crate::model::fields::{object, str_array};
use crate::model::signing_request::SigningRequest;
use crate::model::treaty::RecognitionTreaty;
use crate::model::treaty_lifecycle::TreatyLifecycle;
use crate::model::{Kind, SignedObject};
use crate::percent::{encode, target_with_query};

use super::admin::{signing_request, AdminClient};
use super::{ClientError, NaClient, Reply};

/// Which treaties `GET /recognition-treaties` returns; `None` means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TreatyFilter<'a> {
    /// Only treaties issued by this sovereign id.
    pub issuer: Option<&'a str>,
    /// Only treaties recognising this sovereign id.
    pub subject: Option<&'a str>,
    /// Only treaties with this stored status (`active` or `revoked`).
    pub status: Option<&'a str>,
}

/// `GET /recognition-treaties` with the filter's parameters.
pub(crate) fn list(na: &NaClient, filter: &TreatyFilter<'_>) -> Result<Vec<TreatyRow>, ClientError> {
    let target = target_with_query(
        "/recognition-treaties",
        &[("issuer_sovereign_id", filter.issuer), ("subject_sovereign_id", filter.subject), ("status", filter.status)],
    );
    let reply = na.get_object(&na.deadline(), &target)?;
    reply
        .object()?
        .get("recognition_treaties")
        .and_then(Value::as_array)
        .ok_or_else(|| reply.bad("field recognition_treaties is missing or not a list"))?
        .iter()
        .map(|row| TreatyRow::parse(&reply, row))
        .collect()
}

/// `GET /recognition-treaties/<id>`.
pub(crate) fn fetch_row(na: &NaClient, treaty_id: &str) -> Result<TreatyRow, ClientError> {
    let reply = na.get_object(&na.deadline(), &format!("/recognition-treaties/{}", encode(treaty_id)))?;
    TreatyRow::parse(&reply, &reply.body)
}

/// `POST /admin/recognition-treaties` parameters (§9.5); `None` fields are not sent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IssueRequest {
    /// The issuer sovereign id (default: the NA's own).
    pub issuer_sovereign_id: Option<String>,
    /// The recognised sovereign id.
    pub subject_sovereign_id: String,
    /// The subject's NA public keys, base64.
    pub subject_public_keys: Vec<String>,
    /// The scope object (default: the NA's, any role and active attestations).
    pub scope: Option<Value>,
    /// Validity in hours.
    pub validity_hours: u32,
    /// Metadata (default: none).
    pub metadata: Option<Map>,
}

impl IssueRequest {
    /// The request body: only the given fields.
    pub(crate) fn body(&self) -> Value {
        let mut body = Map::new();
        if let Some(issuer) = &self.issuer_sovereign_id {
            body.insert("issuer_sovereign_id", issuer.as_str());
        }
        body.insert("subject_sovereign_id", self.subject_sovereign_id.as_str());
        body.insert("subject_public_keys", str_array(&self.subject_public_keys));
        if let Some(scope) = &self.scope {
            body.insert("scope", scope.clone());
        }
        body.insert("validity_hours", i64::from(self.validity_hours));
        if let Some(metadata) = &self.metadata {
            body.insert("metadata", Value::Object(metadata.clone()));
        }
        Value::Object(body)
    }
}

/// Sends the issue request and reads the signed treaty the NA answers with.
pub(crate) fn issue(admin: &AdminClient<'_>, request: &IssueRequest) -> Result<RecognitionTreaty, ClientError> {
    let reply = admin.send("POST", "/admin/recognition-treaties", Some(&request.body()))?;
    let map = reply.object()?;
    RecognitionTreaty::from_value(&Value::Object(map.clone())).map_err(|e| reply.bad(e.to_string()))
}

/// `POST /admin/gm/recognition-treaties/prepare` (gm extension): the NA answers the signing
/// request of the treaty `request` describes, unsigned and not stored (its `na_url` is the caller's
/// to fill in).
pub(crate) fn prepare(admin: &AdminClient<'_>, request: &IssueRequest) -> Result<SigningRequest, ClientError> {
    let reply = admin.send("POST", "/admin/gm/recognition-treaties/prepare", Some(&request.body()))?;
    signing_request(&reply, Kind::Treaty)
}

/// `POST /admin/gm/recognition-treaties/publish` (gm extension) with a treaty signed offline; the
/// NA verifies it against its genesis key and answers the stored treaty.
pub(crate) fn publish(admin: &AdminClient<'_>, treaty: &Value) -> Result<RecognitionTreaty, ClientError> {
    let body = Value::Object(object(vec![("treaty", treaty.clone())]));
    let reply = admin.send("POST", "/admin/gm/recognition-treaties/publish", Some(&body))?;
    let map = reply.object()?;
    RecognitionTreaty::from_value(&Value::Object(map.clone())).map_err(|e| reply.bad(e.to_string()))
}

/// `POST /admin/recognition-treaties/<id>/revoke` with `reason`.
pub(crate) fn revoke(admin: &AdminClient<'_>, treaty_id: &str, reason: &str) -> Result<(), ClientError> {
    let body = Value::Object(object(vec![("reason", Value::from(reason))]));
    let target = format!("/admin/recognition-treaties/{}/revoke", encode(treaty_id));
    admin.send("POST", &target, Some(&body))?.object()?;
    Ok(())
}

/// One row of the treaty routes: `{"revocation_reason", "revoked_at", "status", "treaty"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct TreatyRow {
    /// The stored status: `active` or `revoked`.
    pub status: String,
    /// Why it was revoked, when it was.
    pub revocation_reason: Option<String>,
    /// When it was revoked (as the NA renders it), when it was.
    pub revoked_at: Option<String>,
    /// The signed treaty.
    pub treaty: RecognitionTreaty,
    /// The row as the NA sent it, for `--json`.
    pub raw: Map,
}

impl TreatyRow {
    /// Reads one row of `reply`; a bad row is a bad answer of `reply`.
    pub fn parse(reply: &Reply, row: &Value) -> Result<TreatyRow, ClientError> {
        let map = row.as_object().ok_or_else(|| reply.bad("a treaty row is not an object"))?;
        let optional = |field: &str| map.get(field).and_then(Value::as_str).map(str::to_string);
        let status = optional("status").ok_or_else(|| reply.bad("a treaty row has no status"))?;
        let treaty = map.get("treaty").ok_or_else(|| reply.bad("a treaty row has no treaty"))?;
        let treaty = RecognitionTreaty::from_value(treaty).map_err(|e| reply.bad(e.to_string()))?;
        Ok(TreatyRow {
            status,
            revocation_reason: optional("revocation_reason"),
            revoked_at: optional("revoked_at"),
            treaty,
            raw: map.clone(),
        })
    }

    /// The lifecycle derived from the stored status and the expiry (§11.3) at `now`.
    pub(crate) fn lifecycle(&self, now: DateTime<Utc>) -> TreatyLifecycle {
        TreatyLifecycle::derive(
            &self.status,
            self.revocation_reason.as_deref(),
            self.revoked_at.as_deref(),
            &self.treaty.expires_at,
            now,
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Fixtures shared by the treaty tests of `client/` and `cli/`.

    use crate::crypto::canonical::canonical_string;
    use crate::crypto::keys::SigningKey;
    use crate::json::{parse_str, Value};
    use crate::model::treaty::RecognitionTreaty;
    use crate::model::SignedObject;

    /// The operator seed the fake NA's requests are signed with.
    pub(crate) const OPERATOR_SEED: &str = "kcEtbrpIkVQ4x8x26K89loTgOPGEsmpGbb2PY9+XYNI=";
    /// The treaty renewed or replaced.
    pub(crate) const OLD_ID: &str = "1ede1147-34d3-4354-bc35-7b297a397050";
    /// Its successor.
    pub(crate) const NEW_ID: &str = "5b1c0f9e-8a55-4a0e-9d8e-0b8f3d7e2c11";

    /// The NA key that signs the fixture treaties.
    pub(crate) fn na_key() -> SigningKey {
        SigningKey::from_seed(&[7u8; 32])
    }

    /// The subject's NA public key, base64.
    pub(crate) fn subject_key() -> String {
        SigningKey::from_seed(&[8u8; 32]).public_key().to_b64()
    }

    /// A treaty signed by the NA key, as the NA stores and serves it.
    pub(crate) fn treaty(id: &str) -> Value {
        let text = format!(
            "{{\"treaty_id\":\"{id}\",\"issuer_sovereign_id\":\"alpha\",\"subject_sovereign_id\":\"beta\",\"subject_public_keys\":[\"{}\"],\"scope\":{{\"allowed_roles\":[\"role:client\"],\"accepted_statuses\":[\"active\"],\"claims\":{{\"tier\":\"gold\"}}}},\"status\":\"active\",\"issued_at\":\"2026-03-02T10:00:00Z\",\"valid_from\":\"2026-03-02T10:00:00Z\",\"expires_at\":\"2026-03-09T10:00:00Z\",\"issued_by\":\"na-2026\",\"metadata\":{{\"ticket\":\"CHG-42\"}},\"signatures\":[]}}",
            subject_key()
        );
        let mut treaty = RecognitionTreaty::from_value(&parse_str(&text).unwrap()).unwrap();
        treaty.sign(&na_key(), "na-2026");
        treaty.to_value()
    }

    /// A row of the treaty routes holding [`treaty`] with `status`.
    pub(crate) fn row(id: &str, status: &str) -> String {
        format!(
            "{{\"revocation_reason\":null,\"revoked_at\":null,\"status\":\"{status}\",\"treaty\":{}}}",
            canonical_string(&treaty(id))
        )
    }
}
