//! The operator side of the NA: `/admin/invite`, `/admin/revoke`, `/admin/policy`,
//! `/admin/policy/history` and `/admin/policy/rollback` (`na-wire.md` §9.5), signed with an
//! operator key in signature version 1 or 2 (§6).
//!
//! The signature scheme (headers, what they sign) is `admin_signature.rs`; this file sends the
//! requests and reads the answers. A version 2 signature needs the NA's public key (`audience`),
//! read from `GET /sovereign.json` before each request.
//! Upstream 0.16 NAs accept only version 1, upstream 1.1+ only version 2; a gm NA accepts version 2,
//! and version 1 only where configured to (D6). gm's commands sign version 2 unless told `--sig v1`:
//! a version-1 signature can be replayed by whoever sees it as another admin request.

use std::fmt;

use crate::clock::Clock;
use crate::crypto::digest::uuid4;
use crate::json::{Map, Value};
use crate::model::policy::PolicyManifest;
use crate::model::signing_request::{SigningRequest, Stage};
use crate::model::timestamp::isoformat_utc;
use crate::model::{check_as, Kind, SignedObject};

use super::{ClientError, Deadline, NaClient, Reply};

pub use super::admin_signature::{
    sign_request, split_target, v1_payload, v2_payload, AdminHeaders, Operator, SigVersion, SignedRequest,
};

/// An invite token: the secret a node redeems on `POST /join`. `Debug` never shows it; print it
/// only where the operator asked for it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct InviteToken(String);

impl fmt::Debug for InviteToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InviteToken([redacted])")
    }
}

impl InviteToken {
    /// Wraps a token string.
    pub fn new(token: impl Into<String>) -> InviteToken {
        InviteToken(token.into())
    }

    /// The secret itself.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

/// `POST /admin/invite` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InviteRequest {
    /// Roles the certificate will carry, each with its `role:` prefix.
    pub roles: Vec<String>,
    /// Cap on the validity of certificates issued and renewed from the token, in hours.
    pub max_validity_hours: u32,
    /// How long the token can be redeemed, in hours.
    pub token_expiry_hours: u32,
}

/// A created invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invite {
    /// The token (secret).
    pub token: InviteToken,
    /// When it stops being redeemable (isoformat).
    pub expires_at: String,
}

/// Certificate revocation reasons (`na-wire.md` §7.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RevocationReason {
    /// The node key leaked; also blocks `/join` and `/agents` for that key.
    KeyCompromise,
    /// The node left the network.
    CessationOfOperation,
    /// Replaced by another certificate.
    Superseded,
    /// No reason given. The default.
    Unspecified,
}

impl RevocationReason {
    /// Every reason, in the order documented.
    pub(crate) const ALL: [RevocationReason; 4] = [
        RevocationReason::KeyCompromise,
        RevocationReason::CessationOfOperation,
        RevocationReason::Superseded,
        RevocationReason::Unspecified,
    ];

    /// The wire string.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RevocationReason::KeyCompromise => "key_compromise",
            RevocationReason::CessationOfOperation => "cessation_of_operation",
            RevocationReason::Superseded => "superseded",
            RevocationReason::Unspecified => "unspecified",
        }
    }

    /// Parses a wire string.
    pub fn parse(text: &str) -> Option<RevocationReason> {
        RevocationReason::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// The CRL after a revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Revocation {
    /// Sequence of the active CRL.
    pub crl_sequence: i64,
    /// Number of certificates in it.
    pub revoked_count: i64,
}

/// `POST /admin/policy` parameters; `None` fields are not sent and take the NA's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyRequest {
    /// Policy id.
    pub policy_id: String,
    /// Minimum client version.
    pub min_client_version: String,
    /// Allowed ports.
    pub allowed_ports: Option<Vec<u16>>,
    /// Allowed services.
    pub allowed_services: Option<Vec<String>>,
    /// Routing: maximum hops.
    pub max_hops: Option<u32>,
    /// Routing: preferred transports.
    pub preferred_transports: Option<Vec<String>>,
}

impl PolicyRequest {
    /// The request body: only the given fields.
    pub(crate) fn body(&self) -> Value {
        let strings = |items: &[String]| Value::Array(items.iter().map(|s| Value::from(s.as_str())).collect());
        let mut body = Map::new();
        body.insert("policy_id", self.policy_id.as_str());
        body.insert("min_client_version", self.min_client_version.as_str());
        if let Some(ports) = &self.allowed_ports {
            let ports = ports.iter().map(|p| Value::from(i64::from(*p))).collect();
            body.insert("allowed_ports", Value::Array(ports));
        }
        if let Some(services) = &self.allowed_services {
            body.insert("allowed_services", strings(services));
        }
        let mut routing = Map::new();
        if let Some(hops) = self.max_hops {
            routing.insert("max_hops", i64::from(hops));
        }
        if let Some(transports) = &self.preferred_transports {
            routing.insert("preferred_transports", strings(transports));
        }
        if !routing.is_empty() {
            body.insert("routing", Value::Object(routing));
        }
        Value::Object(body)
    }
}

/// One row of `GET /admin/policy/history`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PolicyVersion {
    /// Whether this is the active version.
    pub active: bool,
    /// When the NA stored it (isoformat).
    pub created_at: String,
    /// Policy id.
    pub policy_id: String,
    /// The signed PolicyManifest as the NA returned it.
    pub policy: Value,
}

/// Signs and sends admin requests to one NA.
pub(crate) struct AdminClient<'a> {
    na: &'a NaClient,
    operator: &'a Operator,
    version: SigVersion,
    clock: &'a dyn Clock,
}

impl<'a> AdminClient<'a> {
    /// A client signing as `operator` with `version`, timestamps from `clock`.
    pub fn new(na: &'a NaClient, operator: &'a Operator, version: SigVersion, clock: &'a dyn Clock) -> AdminClient<'a> {
        AdminClient { na, operator, version, clock }
    }

    /// The NA client requests go through (for the public routes a composition reads).
    pub(crate) fn na(&self) -> &'a NaClient {
        self.na
    }

    /// `POST /admin/invite`: creates an invite token.
    pub(crate) fn invite(&self, request: &InviteRequest) -> Result<Invite, ClientError> {
        let roles = request.roles.iter().map(|r| Value::from(r.as_str())).collect();
        let mut body = Map::new();
        body.insert("roles", Value::Array(roles));
        body.insert("max_validity_hours", i64::from(request.max_validity_hours));
        body.insert("token_expiry_hours", i64::from(request.token_expiry_hours));
        let reply = self.send("POST", "/admin/invite", Some(&Value::Object(body)))?;
        Ok(Invite { token: InviteToken::new(reply.str_field("token_id")?), expires_at: reply.str_field("expires_at")? })
    }

    /// `POST /admin/revoke`: revokes a certificate and returns the resulting CRL position.
    pub(crate) fn revoke(&self, cert_id: &str, reason: RevocationReason) -> Result<Revocation, ClientError> {
        let mut body = Map::new();
        body.insert("cert_id", cert_id);
        body.insert("reason", reason.as_str());
        let reply = self.send("POST", "/admin/revoke", Some(&Value::Object(body)))?;
        let map = reply.object()?;
        let int = |field: &str| {
            map.get(field)
                .and_then(Value::as_i64)
                .ok_or_else(|| reply.bad(format!("field {field} is missing or not an integer")))
        };
        Ok(Revocation { crl_sequence: int("crl_sequence")?, revoked_count: int("revoked_count")? })
    }

    /// `POST /admin/policy`: publishes a new active policy and returns the signed manifest.
    pub(crate) fn publish_policy(&self, request: &PolicyRequest) -> Result<PolicyManifest, ClientError> {
        let reply = self.send("POST", "/admin/policy", Some(&request.body()))?;
        manifest(&reply)
    }

    /// `POST /admin/gm/policy/prepare` (gm extension): the signing request of the manifest a
    /// `publish_policy` with `request` would activate, unsigned and not stored.
    pub(crate) fn prepare_policy(&self, request: &PolicyRequest) -> Result<SigningRequest, ClientError> {
        let reply = self.send("POST", "/admin/gm/policy/prepare", Some(&request.body()))?;
        signing_request(&reply, Kind::Policy)
    }

    /// `POST /admin/gm/policy/publish` (gm extension) with a manifest signed offline; the NA
    /// verifies it against its genesis key, activates it and answers it.
    pub(crate) fn publish_signed_policy(&self, policy: &Value) -> Result<PolicyManifest, ClientError> {
        let mut body = Map::new();
        body.insert("policy", policy.clone());
        let reply = self.send("POST", "/admin/gm/policy/publish", Some(&Value::Object(body)))?;
        manifest(&reply)
    }

    /// `GET /admin/policy/history`: every stored policy version, newest first.
    pub(crate) fn policy_history(&self) -> Result<Vec<PolicyVersion>, ClientError> {
        let reply = self.send("GET", "/admin/policy/history", None)?;
        let versions = reply
            .object()?
            .get("versions")
            .and_then(Value::as_array)
            .ok_or_else(|| reply.bad("field versions is missing or not a list"))?;
        versions.iter().map(|row| policy_version(&reply, row)).collect()
    }

    /// `POST /admin/policy/rollback`: makes a stored version the active one again.
    pub(crate) fn rollback_policy(&self, policy_id: &str) -> Result<PolicyManifest, ClientError> {
        let mut body = Map::new();
        body.insert("policy_id", policy_id);
        let reply = self.send("POST", "/admin/policy/rollback", Some(&Value::Object(body)))?;
        manifest(&reply)
    }

    /// Signs and sends one admin request; `body` `None` sends no body and signs `{}`. The answer
    /// is returned whatever its status.
    pub(crate) fn send(&self, method: &'static str, target: &str, body: Option<&Value>) -> Result<Reply, ClientError> {
        let deadline = self.na.deadline();
        let audience = match self.version {
            SigVersion::V1 => None,
            SigVersion::V2 => Some(self.audience(&deadline)?),
        };
        let empty = Value::Object(Map::new());
        let request = SignedRequest { method, target, body: body.unwrap_or(&empty), audience: audience.as_deref() };
        let timestamp = isoformat_utc(self.clock.now());
        let headers = sign_request(self.operator, self.version, &request, &timestamp, &uuid4());
        let pairs = headers.pairs();
        match body {
            Some(body) => self.na.post_json(&deadline, target, body, &pairs),
            None => self.na.get(&deadline, target, &pairs),
        }
    }

    /// The NA public key from `GET /sovereign.json`: the version 2 audience.
    fn audience(&self, deadline: &Deadline) -> Result<String, ClientError> {
        let reply = self.na.get_object(deadline, "/sovereign.json")?;
        reply
            .object()?
            .get("network_authority")
            .and_then(Value::as_object)
            .and_then(|na| na.get("public_key"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| reply.bad("network_authority.public_key is missing"))
    }
}

/// A 2xx answer holding a signing request (a gm `prepare` route) for an object of `kind`, whose
/// object reads through the kind's model.
pub(crate) fn signing_request(reply: &Reply, kind: Kind) -> Result<SigningRequest, ClientError> {
    let map = reply.object()?;
    let prepared = SigningRequest::from_value(&Value::Object(map.clone())).map_err(|e| reply.bad(e.to_string()))?;
    if prepared.stage != Stage::Request || prepared.kind != kind {
        return Err(reply.bad(format!("the answer is not a {} signing request", kind.model_name())));
    }
    check_as(kind, &prepared.object, &[]).map_err(|e| reply.bad(e.to_string()))?;
    Ok(prepared)
}

fn manifest(reply: &Reply) -> Result<PolicyManifest, ClientError> {
    let map = reply.object()?;
    PolicyManifest::from_value(&Value::Object(map.clone())).map_err(|e| reply.bad(e.to_string()))
}

fn policy_version(reply: &Reply, row: &Value) -> Result<PolicyVersion, ClientError> {
    let row = row.as_object().ok_or_else(|| reply.bad("a versions entry is not an object"))?;
    let text = |field: &str| {
        row.get(field)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| reply.bad(format!("versions[].{field} is missing or not a string")))
    };
    Ok(PolicyVersion {
        active: row
            .get("active")
            .and_then(Value::as_bool)
            .ok_or_else(|| reply.bad("versions[].active is missing or not a boolean"))?,
        created_at: text("created_at")?,
        policy_id: text("policy_id")?,
        policy: row.get("policy").cloned().unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::super::admin_signature::tests::{text_of, vector};
    use super::super::fake_na::{Answer, FakeNa, Recorded};
    use super::super::ClientOptions;
    use super::*;
    use crate::clock::FixedClock;
    use crate::crypto::keys::SigningKey;
    use crate::crypto::signature::verify_b64;
    use crate::json::parse_str;

    const OPERATOR_SEED: &str = "kcEtbrpIkVQ4x8x26K89loTgOPGEsmpGbb2PY9+XYNI=";
    const NA_PUBLIC: &str = "9Ci7Uk+4W6QaaxfxQsGKjQkBFVrjVaYgGUJiWSm66IQ=";

    fn operator() -> Operator {
        Operator { key: SigningKey::from_seed_b64(OPERATOR_SEED).unwrap(), key_id: "operator-1".to_string() }
    }

    fn clock() -> FixedClock {
        FixedClock(Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 9).unwrap())
    }

    /// Rebuilds the payload from what the NA received and verifies the signature with the operator
    /// public key, as the server will.
    fn verify_received(seen: &Recorded, audience: Option<&str>) {
        let header = |name: &str| seen.header(name).unwrap_or_else(|| panic!("no {name}"));
        let body = if seen.body.is_empty() {
            Value::Object(Map::new())
        } else {
            parse_str(std::str::from_utf8(&seen.body).unwrap()).unwrap()
        };
        let payload = match audience {
            None => v1_payload(&body, header("x-admin-key-id"), header("x-admin-nonce"), header("x-admin-timestamp")),
            Some(audience) => {
                let (path, query) = split_target(&seen.target);
                v2_payload(
                    audience,
                    &body,
                    header("x-admin-key-id"),
                    &seen.method,
                    header("x-admin-nonce"),
                    &path,
                    &query,
                    header("x-admin-timestamp"),
                )
            }
        };
        let public = operator().key.public_key();
        assert!(
            verify_b64(&public, &payload, header("x-admin-signature")),
            "signature does not verify over {}",
            String::from_utf8_lossy(&payload)
        );
        assert_eq!(header("x-admin-key-id"), "operator-1");
        assert_eq!(header("x-admin-timestamp"), "2026-03-02T10:00:09+00:00");
        assert_eq!(header("x-admin-nonce").len(), 36);
    }

    #[test]
    fn v1_invite_sends_headers_that_verify_over_the_sent_body() {
        let na = FakeNa::start(vec![Answer::json(
            201,
            "{\"expires_at\":\"2026-03-02T12:00:10+00:00\",\"token_id\":\"ec28d761-0e81-4dd9-b4d4-871ee830c2c3\"}\n",
        )]);
        let client = NaClient::new(&na.url(), ClientOptions::default()).unwrap();
        let (operator, clock) = (operator(), clock());
        let admin = AdminClient::new(&client, &operator, SigVersion::V1, &clock);
        let invite = admin
            .invite(&InviteRequest {
                roles: vec!["role:client".to_string()],
                max_validity_hours: 48,
                token_expiry_hours: 2,
            })
            .unwrap();
        assert_eq!(invite.token.expose(), "ec28d761-0e81-4dd9-b4d4-871ee830c2c3");
        assert_eq!(invite.expires_at, "2026-03-02T12:00:10+00:00");
        assert_eq!(format!("{:?}", invite.token), "InviteToken([redacted])");
        let seen = na.finish();
        assert_eq!(seen.len(), 1);
        assert_eq!((seen[0].method.as_str(), seen[0].target.as_str()), ("POST", "/admin/invite"));
        assert_eq!(seen[0].body, b"{\"max_validity_hours\":48,\"roles\":[\"role:client\"],\"token_expiry_hours\":2}");
        verify_received(&seen[0], None);
    }

    #[test]
    fn v2_history_fetches_the_audience_first_and_signs_get_without_body() {
        let sovereign = format!(
            "{{\"network_authority\":{{\"public_key\":\"{NA_PUBLIC}\",\"valid_from\":\"2026-01-01T00:00:00+00:00\",\"valid_to\":\"2027-01-01T00:00:00+00:00\"}},\"sovereign_id\":\"alpha\"}}\n"
        );
        let history = vector("v1/policy/history");
        let history_body = text_of(&history, &["upstream_check", "response_body"]).to_string();
        let na = FakeNa::start(vec![Answer::json(200, &sovereign), Answer::json(200, &history_body)]);
        let client = NaClient::new(&na.url(), ClientOptions::default()).unwrap();
        let (operator, clock) = (operator(), clock());
        let admin = AdminClient::new(&client, &operator, SigVersion::V2, &clock);
        let versions = admin.policy_history().unwrap();
        assert_eq!(versions.len(), 2);
        assert!(versions[0].active);
        assert_eq!(versions[0].policy_id, "policy-alpha-2026-03");
        assert_eq!(versions[1].created_at, "2026-03-02T10:00:02.070000+00:00");
        let seen = na.finish();
        assert_eq!((seen[0].method.as_str(), seen[0].target.as_str()), ("GET", "/sovereign.json"));
        assert!(seen[0].header("x-admin-signature").is_none());
        assert_eq!((seen[1].method.as_str(), seen[1].target.as_str()), ("GET", "/admin/policy/history"));
        assert!(seen[1].body.is_empty());
        verify_received(&seen[1], Some(NA_PUBLIC));
    }

    #[test]
    fn v2_policy_publish_sends_only_given_fields_and_parses_the_manifest() {
        let sovereign = format!("{{\"network_authority\":{{\"public_key\":\"{NA_PUBLIC}\"}}}}");
        let manifest = "{\"allowed_ports\":[443],\"allowed_services\":[],\"issued_at\":\"2026-03-02T10:21:50Z\",\"issued_by\":\"na-2025-q1\",\"min_client_version\":\"0.16.0\",\"policy_id\":\"p1\",\"routing\":{\"max_hops\":3,\"preferred_transports\":[\"quic\",\"wireguard\"]},\"signatures\":[]}";
        let na = FakeNa::start(vec![Answer::json(200, &sovereign), Answer::json(201, manifest)]);
        let client = NaClient::new(&na.url(), ClientOptions::default()).unwrap();
        let (operator, clock) = (operator(), clock());
        let admin = AdminClient::new(&client, &operator, SigVersion::V2, &clock);
        let policy = admin
            .publish_policy(&PolicyRequest {
                policy_id: "p1".to_string(),
                min_client_version: "0.16.0".to_string(),
                allowed_ports: Some(vec![443]),
                allowed_services: None,
                max_hops: Some(3),
                preferred_transports: None,
            })
            .unwrap();
        assert_eq!(policy.policy_id, "p1");
        assert_eq!(policy.max_hops, 3);
        let seen = na.finish();
        assert_eq!(
            seen[1].body,
            b"{\"allowed_ports\":[443],\"min_client_version\":\"0.16.0\",\"policy_id\":\"p1\",\"routing\":{\"max_hops\":3}}"
        );
        verify_received(&seen[1], Some(NA_PUBLIC));
    }

    #[test]
    fn refusal_surfaces_status_and_upstream_message() {
        let na = FakeNa::start(vec![Answer::json(401, "{\"error\":\"Invalid admin signature\"}\n")]);
        let client = NaClient::new(&na.url(), ClientOptions::default()).unwrap();
        let (operator, clock) = (operator(), clock());
        let admin = AdminClient::new(&client, &operator, SigVersion::V1, &clock);
        let err = admin.revoke("3dedf8c0", RevocationReason::KeyCompromise).unwrap_err();
        match &err {
            ClientError::Refused { status, message, .. } => {
                assert_eq!(*status, 401);
                assert_eq!(message, "Invalid admin signature");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let seen = na.finish();
        assert_eq!(seen[0].body, b"{\"cert_id\":\"3dedf8c0\",\"reason\":\"key_compromise\"}");
        verify_received(&seen[0], None);
    }
}
