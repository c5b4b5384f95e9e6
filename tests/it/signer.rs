//! Test-side signers: operator requests (v2 by default, as gm's clients sign; v1 on request) and node proof-of-possession bodies, built with
//! gm's own canonical JSON and the real keys in a sandbox home.

use std::net::SocketAddr;
use std::path::Path;

use gm::crypto::canonical::{canonical_bytes, canonical_string};
use gm::crypto::keys::{load_signing_key, SigningKey};
use gm::json::{parse_str, Map, Value};
use gm::model::timestamp::isoformat_utc;

use crate::harness::{request, HttpResponse};

pub fn now_iso() -> String {
    isoformat_utc(chrono::Utc::now())
}

/// An operator holding a private key.
pub struct Operator {
    pub key: SigningKey,
    pub key_id: String,
}

impl Operator {
    /// The sandbox operator (`offline/operator.key`, id `operator-local`).
    pub fn sandbox(home: &Path) -> Operator {
        Operator { key: load_signing_key(&home.join("offline/operator.key")).unwrap(), key_id: "operator-local".into() }
    }

    /// A signed v1 request with explicit timestamp and nonce.
    pub fn raw_v1(&self, method: &str, path: &str, body: &str, timestamp: &str, nonce: &str) -> String {
        let signed = if path == "/admin/policy/history" { Value::Object(Map::new()) } else { signed_body(body) };
        let sig = self.key.sign_b64(&gm::crypto::payload::v1_payload(&signed, &self.key_id, nonce, timestamp));
        format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Admin-Key-Id: {}\r\nX-Admin-Timestamp: {timestamp}\r\nX-Admin-Nonce: {nonce}\r\nX-Admin-Signature: {sig}\r\n\r\n{body}",
            body.len(),
            self.key_id
        )
    }

    /// A signed v2 request for the NA whose public key is `audience`, with explicit timestamp and
    /// nonce (a body-less `GET` signs `{}`).
    pub fn raw_v2(&self, audience: &str, method: &str, path: &str, body: &str, timestamp: &str, nonce: &str) -> String {
        let signed = if method == "GET" { Value::Object(Map::new()) } else { signed_body(body) };
        let payload =
            gm::crypto::payload::v2_payload(audience, &signed, &self.key_id, method, nonce, path, &[], timestamp);
        let sig = self.key.sign_b64(&payload);
        format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Admin-Key-Id: {}\r\nX-Admin-Timestamp: {timestamp}\r\nX-Admin-Nonce: {nonce}\r\nX-Admin-Signature: {sig}\r\n\r\n{body}",
            body.len(),
            self.key_id
        )
    }

    /// Sends a fresh v2 request (what gm's clients send by default), the audience read from the
    /// NA's `/sovereign.json` first as gm's clients do.
    pub fn send(&self, addr: SocketAddr, method: &str, path: &str, body: &str) -> HttpResponse {
        self.send_v2(addr, &audience(addr), method, path, body)
    }

    /// Sends a fresh v1 request (upstream 0.16's scheme).
    pub fn send_v1(&self, addr: SocketAddr, method: &str, path: &str, body: &str) -> HttpResponse {
        request(addr, &self.raw_v1(method, path, body, &now_iso(), &gm::crypto::digest::uuid4()))
    }

    /// Sends a fresh v2 request for the NA whose public key is `audience`.
    pub fn send_v2(&self, addr: SocketAddr, audience: &str, method: &str, path: &str, body: &str) -> HttpResponse {
        request(addr, &self.raw_v2(audience, method, path, body, &now_iso(), &gm::crypto::digest::uuid4()))
    }

    /// Creates an invite and returns its token.
    pub fn invite(&self, addr: SocketAddr, body: &str) -> String {
        let r = self.send(addr, "POST", "/admin/invite", body);
        assert_eq!(r.status, 201, "{}", r.text());
        parse_str(&r.text()).unwrap().as_object().unwrap().get("token_id").unwrap().as_str().unwrap().to_string()
    }
}

/// The NA public key of the NA at `addr` (`GET /sovereign.json`): the v2 audience.
pub fn audience(addr: SocketAddr) -> String {
    let r = request(addr, "GET /sovereign.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let v = parse_str(&r.text()).unwrap();
    let na = v.as_object().unwrap().get("network_authority").unwrap();
    na.as_object().unwrap().get("public_key").unwrap().as_str().unwrap().to_string()
}

/// The NA public key of a sandbox home (`keys/na.pub`): the v2 audience without asking the NA.
pub fn sandbox_audience(home: &Path) -> String {
    gm::crypto::keys::load_public_key(&home.join("keys/na.pub")).unwrap().to_b64()
}

fn signed_body(body: &str) -> Value {
    match parse_str(body) {
        Ok(v) if v.is_truthy() => v,
        _ => Value::Object(Map::new()),
    }
}

/// A node holding a fresh key.
pub struct Node {
    pub key: SigningKey,
}

impl Node {
    pub fn new() -> Node {
        Node { key: SigningKey::generate() }
    }

    pub fn public(&self) -> String {
        self.key.public_key().to_b64()
    }

    /// Adds `node_public_key` (unless present), timestamp, nonce and the signature to `fields`.
    pub fn sign(&self, fields: &[(&str, Value)], timestamp: &str) -> Map {
        let mut m = Map::new();
        m.insert("node_public_key", Value::from(self.public()));
        for (k, v) in fields {
            m.insert(*k, v.clone());
        }
        m.insert("timestamp", Value::from(timestamp));
        m.insert("nonce", Value::from(gm::crypto::digest::uuid4()));
        let sig = self.key.sign_b64(&canonical_bytes(&Value::Object(m.clone())));
        m.insert("signature", Value::from(sig));
        m
    }

    pub fn post(&self, addr: SocketAddr, path: &str, body: &Map) -> HttpResponse {
        post_json(addr, path, &canonical_string(&Value::Object(body.clone())))
    }

    pub fn join(&self, addr: SocketAddr, token: &str) -> HttpResponse {
        let body =
            self.sign(&[("invite_token", Value::from(token)), ("validity_hours", Value::from(168i64))], &now_iso());
        self.post(addr, "/join", &body)
    }

    pub fn heartbeat(&self, addr: SocketAddr, cert_id: &str) -> HttpResponse {
        let body = self.sign(&[("cert_id", Value::from(cert_id)), ("status", Value::from("healthy"))], &now_iso());
        self.post(addr, "/heartbeat", &body)
    }

    pub fn renew(&self, addr: SocketAddr, cert_id: &str) -> HttpResponse {
        let body = self.sign(&[("cert_id", Value::from(cert_id)), ("validity_hours", Value::from(24i64))], &now_iso());
        self.post(addr, "/renew", &body)
    }
}

pub fn post_json(addr: SocketAddr, path: &str, body: &str) -> HttpResponse {
    request(addr, &format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

pub fn field(r: &HttpResponse, name: &str) -> String {
    let v = parse_str(&r.text()).unwrap();
    match v.as_object().unwrap().get(name).unwrap() {
        Value::Str(s) => s.clone(),
        other => canonical_string(other),
    }
}
