//! The node side of the NA: `POST /join`, `/heartbeat` and `/renew` (`na-wire.md` §9.4), each body
//! signed with the node key (§5).
//!
//! A node signs canonical JSON (§3.1, §3.3) of its whole request body except `signature`, with
//! `timestamp` (Python isoformat UTC) and `nonce` (UUID4) inside it, then adds `signature`. A
//! certificate from `/join` or `/renew` is accepted only when the NA key of `GET /genesis` signed
//! it, it names this node's key and it belongs to that network. That catches a wrong or broken NA;
//! it is not a trust anchor by itself, since the genesis comes from the same server.

use crate::clock::Clock;
use crate::crypto::digest::uuid4;
use crate::crypto::keys::{PublicKey, SigningKey};
use crate::json::{Map, Value};
use crate::model::certificate::JoinCertificate;
use crate::model::genesis::Genesis;
use crate::model::timestamp::isoformat_utc;
use crate::model::SignedObject;

use super::admin::InviteToken;
use super::{ClientError, Deadline, NaClient, Reply};

pub use crate::crypto::payload::node_signed_bytes;

/// Signs `body` with the node key and sets its `signature`.
pub(crate) fn sign_node_body(body: &mut Map, key: &SigningKey) {
    let signature = key.sign_b64(&node_signed_bytes(body));
    body.insert("signature", signature);
}

/// The NA's answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeartbeatAck {
    /// `true` when the NA recorded the heartbeat.
    pub ack: bool,
    /// The NA's clock (isoformat).
    pub server_time: String,
}

/// What `GET /genesis` says about the NA, kept to check the certificates it issues.
struct NaIdentity {
    network_name: String,
    public_key: PublicKey,
}

/// Signs and sends node requests to one NA.
pub(crate) struct NodeClient<'a> {
    na: &'a NaClient,
    key: &'a SigningKey,
    clock: &'a dyn Clock,
}

impl<'a> NodeClient<'a> {
    /// A client signing with the node `key`, timestamps from `clock`.
    pub fn new(na: &'a NaClient, key: &'a SigningKey, clock: &'a dyn Clock) -> NodeClient<'a> {
        NodeClient { na, key, clock }
    }

    /// `POST /join`: redeems `invite_token` for a certificate valid `validity_hours` (the NA caps
    /// it at the token's maximum). The genesis is fetched first, so an unreachable or broken NA
    /// fails before the single-use token is spent.
    pub(crate) fn join(&self, invite_token: &InviteToken, validity_hours: u32) -> Result<JoinCertificate, ClientError> {
        let deadline = self.na.deadline();
        let identity = self.na_identity(&deadline)?;
        let mut body = Map::new();
        body.insert("node_public_key", self.public_key_b64());
        // Upstream ignores request roles on /join (the token's roles apply); send none.
        body.insert("roles", Value::Array(Vec::new()));
        body.insert("validity_hours", i64::from(validity_hours));
        body.insert("invite_token", invite_token.expose());
        let reply = self.send(&deadline, "/join", body)?;
        self.accept_certificate(&reply, &identity)
    }

    /// `POST /heartbeat` for `cert_id` with a free-form `status` (upstream nodes send `healthy`).
    pub(crate) fn heartbeat(&self, cert_id: &str, status: &str) -> Result<HeartbeatAck, ClientError> {
        let deadline = self.na.deadline();
        let mut body = Map::new();
        body.insert("cert_id", cert_id);
        body.insert("node_public_key", self.public_key_b64());
        body.insert("status", status);
        let reply = self.send(&deadline, "/heartbeat", body)?;
        let ack = reply
            .object()?
            .get("ack")
            .and_then(Value::as_bool)
            .ok_or_else(|| reply.bad("field ack is missing or not a boolean"))?;
        Ok(HeartbeatAck { ack, server_time: reply.str_field("server_time")? })
    }

    fn public_key_b64(&self) -> String {
        self.key.public_key().to_b64()
    }

    /// Adds `timestamp` and `nonce`, signs, and posts; a non-2xx answer becomes a refusal.
    fn send(&self, deadline: &Deadline, target: &str, mut body: Map) -> Result<Reply, ClientError> {
        body.insert("timestamp", isoformat_utc(self.clock.now()));
        body.insert("nonce", uuid4());
        sign_node_body(&mut body, self.key);
        let reply = self.na.post_json(deadline, target, &Value::Object(body), &[])?;
        reply.object()?;
        Ok(reply)
    }

    fn na_identity(&self, deadline: &Deadline) -> Result<NaIdentity, ClientError> {
        let reply = self.na.get_object(deadline, "/genesis")?;
        let genesis = Genesis::from_value(&reply.body).map_err(|e| reply.bad(e.to_string()))?;
        let public_key = PublicKey::from_b64(&genesis.network_authority.public_key)
            .map_err(|e| reply.bad(format!("network_authority.public_key: {e}")))?;
        Ok(NaIdentity { network_name: genesis.network_name, public_key })
    }

    fn accept_certificate(&self, reply: &Reply, na: &NaIdentity) -> Result<JoinCertificate, ClientError> {
        let cert = JoinCertificate::from_value(&reply.body).map_err(|e| reply.bad(e.to_string()))?;
        let untrusted = |problem: String| ClientError::Untrusted { url: reply.url.clone(), problem };
        if !cert.check_signatures(&[na.public_key]).is_valid() {
            return Err(untrusted(format!(
                "certificate {} is not signed by the genesis NA key {}",
                cert.cert_id,
                na.public_key.to_b64()
            )));
        }
        let ours = self.public_key_b64();
        if cert.node_public_key != ours {
            return Err(untrusted(format!(
                "certificate {} names node key {}, not this node's key {ours}",
                cert.cert_id, cert.node_public_key
            )));
        }
        if cert.network_name != na.network_name {
            return Err(untrusted(format!(
                "certificate {} is for network {:?}, but the genesis names {:?}",
                cert.cert_id, cert.network_name, na.network_name
            )));
        }
        Ok(cert)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::super::fake_na::{Answer, FakeNa, Recorded};
    use super::super::ClientOptions;
    use super::*;
    use crate::clock::FixedClock;
    use crate::crypto::canonical::canonical_string;
    use crate::crypto::signature::verify_b64;
    use crate::json::parse_str;

    fn vector(id: &str) -> Map {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/node-requests.json")).unwrap();
        let file = parse_str(&text).unwrap();
        let vectors = file.as_object().and_then(|m| m.get("vectors")).and_then(Value::as_array).unwrap();
        vectors
            .iter()
            .filter_map(Value::as_object)
            .find(|v| v.get("id").and_then(Value::as_str) == Some(id))
            .unwrap_or_else(|| panic!("vector {id} not found"))
            .clone()
    }

    fn str_of<'m>(map: &'m Map, key: &str) -> &'m str {
        map.get(key).and_then(Value::as_str).unwrap()
    }

    /// Rebuilds `signed_bytes` from the vector body and reproduces `signature` from the seed.
    fn check_vector(id: &str) {
        let v = vector(id);
        let body = v.get("body").and_then(Value::as_object).unwrap().clone();
        assert_eq!(
            String::from_utf8(node_signed_bytes(&body)).unwrap(),
            str_of(&v, "signed_bytes"),
            "{id}: signed bytes"
        );
        let seed = v.get("node_key").and_then(Value::as_object).map(|k| str_of(k, "seed_b64")).unwrap();
        let key = SigningKey::from_seed_b64(seed).unwrap();
        let mut resigned = body.clone();
        resigned.remove("signature");
        sign_node_body(&mut resigned, &key);
        assert_eq!(str_of(&resigned, "signature"), str_of(&v, "signature"), "{id}: signature");
    }

    #[test]
    fn join_vector_signs_the_body_without_signature() {
        check_vector("join/node1");
    }

    #[test]
    fn heartbeat_vector_signs_the_body_without_signature() {
        check_vector("heartbeat/node1");
    }

    const NA_SEED: &str = "yF9yr/WzuxZydnjmSgLte4tNU3/HcY6yhc6Q4LZp/ns=";
    const NODE_SEED: &str = "+xMPFC4sxb8ZF6gtbIL4HDopBCAhdIPPgobEjY/S7z0=";

    fn genesis_body(na_public: &str) -> String {
        format!(
            "{{\"network_name\":\"SPECNET\",\"network_version\":\"v0.1\",\"root_public_key\":\"Y37QNrPBhA7D49D55oBXcgRtubk9GTl5HSXUfqOU8PY=\",\"network_authority\":{{\"public_key\":\"{na_public}\",\"valid_from\":\"2026-11-25T17:36:56.071388Z\",\"valid_to\":\"2027-02-23T17:36:56.071388Z\"}},\"policy_manifest\":{{\"hash\":\"sha256:placeholder\",\"url\":null}},\"signatures\":[]}}\n"
        )
    }

    fn certificate(node_public: &str, signer: &SigningKey) -> String {
        let text = format!(
            "{{\"cert_id\":\"1ede1147-34d3-4354-bc35-7b297a397050\",\"expires_at\":\"2026-11-26T17:38:04.435582Z\",\"issued_at\":\"2026-11-25T17:38:04.435582Z\",\"issued_by\":\"na-2025-q1\",\"network_name\":\"SPECNET\",\"node_public_key\":\"{node_public}\",\"roles\":[\"role:client\"]}}"
        );
        let mut cert = JoinCertificate::from_value(&parse_str(&text).unwrap()).unwrap();
        cert.sign(signer, "na-2025-q1");
        canonical_string(&cert.to_value())
    }

    fn clock() -> FixedClock {
        FixedClock(Utc.with_ymd_and_hms(2026, 11, 25, 17, 38, 4).unwrap())
    }

    /// Checks that a received body verifies with the node key, as the NA will.
    fn verify_received(seen: &Recorded, node: &SigningKey) -> Map {
        let body = parse_str(std::str::from_utf8(&seen.body).unwrap()).unwrap();
        let body = body.as_object().unwrap().clone();
        let signature = str_of(&body, "signature");
        assert!(verify_b64(&node.public_key(), &node_signed_bytes(&body), signature));
        assert_eq!(str_of(&body, "timestamp"), "2026-11-25T17:38:04+00:00");
        assert_eq!(str_of(&body, "nonce").len(), 36);
        body
    }

    fn join_against(answers: Vec<Answer>) -> (Result<JoinCertificate, ClientError>, Vec<Recorded>) {
        let na = FakeNa::start(answers);
        let client = NaClient::new(&na.url(), ClientOptions::default()).unwrap();
        let node = SigningKey::from_seed_b64(NODE_SEED).unwrap();
        let clock = clock();
        let result =
            NodeClient::new(&client, &node, &clock).join(&InviteToken::new("3f2b8f3e-2f0c-4c1e-9a57-0d6f3f1a2b3c"), 24);
        (result, na.finish())
    }

    #[test]
    fn join_accepts_a_certificate_signed_by_the_genesis_na_key() {
        let na = SigningKey::from_seed_b64(NA_SEED).unwrap();
        let node = SigningKey::from_seed_b64(NODE_SEED).unwrap();
        let (result, seen) = join_against(vec![
            Answer::json(200, &genesis_body(&na.public_key().to_b64())),
            Answer::json(201, &certificate(&node.public_key().to_b64(), &na)),
        ]);
        let cert = result.unwrap();
        assert_eq!(cert.cert_id, "1ede1147-34d3-4354-bc35-7b297a397050");
        assert_eq!(seen[0].target, "/genesis");
        assert_eq!((seen[1].method.as_str(), seen[1].target.as_str()), ("POST", "/join"));
        let body = verify_received(&seen[1], &node);
        assert_eq!(str_of(&body, "invite_token"), "3f2b8f3e-2f0c-4c1e-9a57-0d6f3f1a2b3c");
        assert_eq!(body.get("validity_hours").and_then(Value::as_i64), Some(24));
        assert_eq!(body.get("roles"), Some(&Value::Array(Vec::new())));
    }

    #[test]
    fn join_refuses_a_certificate_signed_by_another_key() {
        let na = SigningKey::from_seed_b64(NA_SEED).unwrap();
        let node = SigningKey::from_seed_b64(NODE_SEED).unwrap();
        let impostor = SigningKey::from_seed(&[9u8; 32]);
        let (result, _) = join_against(vec![
            Answer::json(200, &genesis_body(&na.public_key().to_b64())),
            Answer::json(201, &certificate(&node.public_key().to_b64(), &impostor)),
        ]);
        let err = result.unwrap_err();
        assert!(matches!(err, ClientError::Untrusted { .. }), "{err:?}");
        assert!(err.to_string().contains("is not signed by the genesis NA key"), "{err}");
    }

    #[test]
    fn join_refuses_a_certificate_for_another_node_key() {
        let na = SigningKey::from_seed_b64(NA_SEED).unwrap();
        let other = SigningKey::from_seed(&[3u8; 32]).public_key().to_b64();
        let (result, _) = join_against(vec![
            Answer::json(200, &genesis_body(&na.public_key().to_b64())),
            Answer::json(201, &certificate(&other, &na)),
        ]);
        let err = result.unwrap_err();
        assert!(err.to_string().contains("not this node's key"), "{err}");
    }

    #[test]
    fn join_refusal_surfaces_status_and_never_the_token() {
        let na = SigningKey::from_seed_b64(NA_SEED).unwrap();
        let (result, _) = join_against(vec![
            Answer::json(200, &genesis_body(&na.public_key().to_b64())),
            Answer::json(403, "{\"error\":\"Invalid, expired, or used invite token\"}\n"),
        ]);
        let err = result.unwrap_err();
        assert_eq!(err.to_string(), "the NA refused: 403 Invalid, expired, or used invite token");
        assert!(!format!("{err:?}").contains("3f2b8f3e"));
    }

    #[test]
    fn heartbeat_sends_a_signed_body_and_reads_the_ack() {
        let na = FakeNa::start(vec![Answer::json(
            200,
            "{\"ack\":true,\"server_time\":\"2026-11-25T17:38:05.250000+00:00\"}\n",
        )]);
        let client = NaClient::new(&na.url(), ClientOptions::default()).unwrap();
        let node = SigningKey::from_seed_b64(NODE_SEED).unwrap();
        let clock = clock();
        let ack = NodeClient::new(&client, &node, &clock)
            .heartbeat("1ede1147-34d3-4354-bc35-7b297a397050", "healthy")
            .unwrap();
        assert!(ack.ack);
        assert_eq!(ack.server_time, "2026-11-25T17:38:05.250000+00:00");
        let seen = na.finish();
        let body = verify_received(&seen[0], &node);
        assert_eq!(str_of(&body, "status"), "healthy");
        assert_eq!(str_of(&body, "cert_id"), "1ede1147-34d3-4354-bc35-7b297a397050");
    }
}
