//! The remote-signer protocol (`gm-signer/1`) both ends speak: frames, the mutual-authentication
//! handshake and the sealed messages of a session. It owns no socket policy (who dials, timeouts,
//! pools): the NA side is `na::remote_signer`, the customer side [`super::daemon`].
//!
//! A frame is a 4-byte big-endian length, a 64-byte Ed25519 signature and a JSON body (at most
//! [`MAX_FRAME`] bytes in all). The signer dials the NA; the NA speaks first:
//!
//! 1. NA → signer `hello`: protocol, the NA host's public key, the sha256 of the genesis it serves
//!    and a fresh 32-byte nonce. The signer refuses (an `error` frame, then close) when the host key
//!    is not the one it pins or the genesis is not its own.
//! 2. signer → NA `signer_auth`: its own nonce and a proof, the genesis NA key's signature over the
//!    transcript (both nonces, both public keys, the genesis hash, the role). The NA refuses unless
//!    it verifies under the genesis NA key: only the holder of that key can sign for this NA.
//! 3. NA → signer `na_auth`: the host key's signature over the same transcript with the other role.
//!
//! The session id is the transcript's sha256. From then on every frame's signature covers a domain
//! tag, the session id, the sender's role and the exact body bytes, and every body carries a
//! sequence number that must be the previous one plus one: an altered frame fails its signature, a
//! frame replayed from this or another session fails the sequence or the session id, and a frame
//! reflected back to its sender fails the role. Bodies are not encrypted: everything a signer
//! signs is public trust material (certificates, CRLs, policies, treaties, feeds).

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::crypto::digest::{b64_decode, b64_encode, fill_random, sha256, sha256_hex};
use crate::crypto::keys::{PublicKey, SigningKey};

/// The protocol name carried in `hello`.
pub(crate) const PROTOCOL: &str = "gm-signer/1";

/// The largest frame accepted (a revocation feed of a large network stays well under it).
pub(crate) const MAX_FRAME: usize = 8 * 1024 * 1024;

const HANDSHAKE_TAG: &[u8] = b"gm-signer/1 handshake\0";
const MESSAGE_TAG: &[u8] = b"gm-signer/1 message\0";

/// Which end of a session a frame comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The NA server (`gm serve`).
    Na,
    /// The customer's signer (`gm signer run`).
    Signer,
}

impl Role {
    fn tag(self) -> &'static [u8] {
        match self {
            Role::Na => b"na",
            Role::Signer => b"signer",
        }
    }

    fn other(self) -> Role {
        match self {
            Role::Na => Role::Signer,
            Role::Signer => Role::Na,
        }
    }
}

/// What a sign request is for (recorded in the signer's log).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Context {
    /// The NA route or job that needs the signature (`join`, `renew`, `revoke`, `crl-refresh`, …).
    pub purpose: String,
    /// The HTTP request id, when a request caused it.
    #[serde(default)]
    pub request_id: String,
}

/// Every message of the protocol.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Message {
    /// NA → signer, first frame.
    Hello {
        /// [`PROTOCOL`].
        protocol: String,
        /// The NA host key (base64), which the signer pins.
        na_host_key: String,
        /// sha256 (hex) of the served genesis' canonical JSON.
        genesis_sha256: String,
        /// 32 random bytes, base64.
        nonce: String,
    },
    /// signer → NA: the proof of the genesis NA key.
    SignerAuth {
        /// 32 random bytes, base64.
        nonce: String,
        /// The genesis NA public key (base64).
        na_public_key: String,
        /// The signature over the transcript.
        proof: String,
        /// The highest CRL sequence this signer ever signed.
        crl_high: Option<i64>,
    },
    /// NA → signer: the proof of the host key.
    NaAuth {
        /// The signature over the transcript.
        proof: String,
    },
    /// NA → signer: sign this object.
    Sign {
        /// The object kind (`cert`, `crl`, `policy`, `attestation`, `treaty`, `feed`).
        kind: String,
        /// The unsigned object, JSON text.
        object: String,
        /// Why.
        context: Context,
    },
    /// signer → NA: the signature of the object of the request with sequence `request`.
    Signed {
        /// The request's sequence number.
        request: u64,
        /// Base64 Ed25519 signature over the object's canonical bytes.
        sig: String,
    },
    /// signer → NA: the signer's policy refused the request.
    Refused {
        /// The request's sequence number.
        request: u64,
        /// Why, in words the operator can act on.
        reason: String,
        /// The highest CRL sequence signed so far (so the NA can number its next CRL above it).
        crl_high: Option<i64>,
    },
    /// NA → signer: keepalive.
    Ping,
    /// signer → NA: keepalive answer.
    Pong,
    /// Either side, before closing: why the session ends.
    Error {
        /// Why.
        reason: String,
    },
}

/// A protocol failure.
#[derive(Debug)]
pub(crate) enum WireError {
    /// The connection failed or closed.
    Io(std::io::Error),
    /// A frame over [`MAX_FRAME`] or under the signature size.
    FrameSize(usize),
    /// A body that is not a known message.
    Malformed(String),
    /// A frame whose signature does not verify.
    BadSignature,
    /// A sequence number other than the expected one (a replayed, dropped or reordered frame).
    Sequence {
        /// Expected.
        expected: u64,
        /// Found.
        found: u64,
    },
    /// The peer is not who it must be, or broke the protocol.
    Refused(String),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Io(e) => write!(f, "connection: {e}"),
            WireError::FrameSize(n) => write!(f, "frame of {n} bytes refused (limit {MAX_FRAME})"),
            WireError::Malformed(why) => write!(f, "malformed message: {why}"),
            WireError::BadSignature => f.write_str("a frame's signature does not verify (altered or forged)"),
            WireError::Sequence { expected, found } => {
                write!(f, "frame sequence {found} where {expected} was due (replayed or reordered)")
            }
            WireError::Refused(why) => f.write_str(why),
        }
    }
}

impl From<std::io::Error> for WireError {
    fn from(e: std::io::Error) -> WireError {
        WireError::Io(e)
    }
}

/// Writes one frame.
fn write_frame(w: &mut impl Write, sig: &[u8; 64], body: &[u8]) -> Result<(), WireError> {
    let len = 64 + body.len();
    if len > MAX_FRAME {
        return Err(WireError::FrameSize(len));
    }
    let mut buf = Vec::with_capacity(4 + len);
    buf.extend_from_slice(&(len as u32).to_be_bytes());
    buf.extend_from_slice(sig);
    buf.extend_from_slice(body);
    w.write_all(&buf)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame: `(signature, body)`.
fn read_frame(r: &mut impl Read) -> Result<([u8; 64], Vec<u8>), WireError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if !(64..=MAX_FRAME).contains(&len) {
        return Err(WireError::FrameSize(len));
    }
    let mut sig = [0u8; 64];
    r.read_exact(&mut sig)?;
    let mut body = vec![0u8; len - 64];
    r.read_exact(&mut body)?;
    Ok((sig, body))
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, WireError> {
    serde_json::from_slice(body).map_err(|e| WireError::Malformed(e.to_string()))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    serde_json::to_vec(value).map_err(|e| WireError::Malformed(e.to_string()))
}

/// Writes an unauthenticated frame (handshake messages carry their proofs inside).
fn send_plain(w: &mut impl Write, msg: &Message) -> Result<(), WireError> {
    write_frame(w, &[0u8; 64], &encode(msg)?)
}

fn recv_plain(r: &mut impl Read) -> Result<Message, WireError> {
    let (_, body) = read_frame(r)?;
    parse(&body)
}

/// Sends an `error` frame before closing (best effort; the peer may already be gone).
pub(crate) fn send_error(w: &mut impl Write, reason: &str) {
    let _ = send_plain(w, &Message::Error { reason: reason.to_string() });
}

fn nonce() -> [u8; 32] {
    let mut n = [0u8; 32];
    fill_random(&mut n);
    n
}

fn decode_32(text: &str, what: &str) -> Result<[u8; 32], WireError> {
    b64_decode(text)
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| WireError::Malformed(format!("{what} is not 32 bytes of base64")))
}

fn decode_sig(text: &str) -> Result<[u8; 64], WireError> {
    b64_decode(text)
        .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| WireError::Malformed("a signature is not 64 bytes of base64".into()))
}

/// The handshake transcript (both nonces, both keys, the genesis); each role signs it with its
/// role tag appended.
fn transcript(
    na_nonce: &[u8; 32],
    signer_nonce: &[u8; 32],
    host: &PublicKey,
    na: &PublicKey,
    genesis: &str,
) -> Vec<u8> {
    let mut t = HANDSHAKE_TAG.to_vec();
    t.extend_from_slice(na_nonce);
    t.extend_from_slice(signer_nonce);
    t.extend_from_slice(host.to_b64().as_bytes());
    t.push(0);
    t.extend_from_slice(na.to_b64().as_bytes());
    t.push(0);
    t.extend_from_slice(genesis.as_bytes());
    t
}

fn with_role(t: &[u8], role: Role) -> Vec<u8> {
    let mut v = t.to_vec();
    v.push(0);
    v.extend_from_slice(role.tag());
    v
}

/// An authenticated session: one end's key, the peer's key, the session id and both sequences.
pub(crate) struct Session {
    id: [u8; 32],
    role: Role,
    key: SigningKey,
    peer: PublicKey,
    sent: u64,
    received: u64,
}

/// A sealed body: the sequence number and the message.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    seq: u64,
    msg: Message,
}

impl Session {
    fn new(transcript: &[u8], role: Role, key: SigningKey, peer: PublicKey) -> Session {
        Session { id: sha256(transcript), role, key, peer, sent: 0, received: 0 }
    }

    fn signed_bytes(&self, role: Role, body: &[u8]) -> Vec<u8> {
        let mut m = MESSAGE_TAG.to_vec();
        m.extend_from_slice(&self.id);
        m.extend_from_slice(role.tag());
        m.push(0);
        m.extend_from_slice(body);
        m
    }

    /// The session id, hex (for logs).
    pub(crate) fn id_hex(&self) -> String {
        crate::crypto::digest::hex(&self.id[..8])
    }

    /// How many messages this session has received: the sequence number of the last one, which a
    /// `signed` or `refused` answer names as its `request`.
    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    /// Seals and sends `msg`; returns its sequence number.
    pub(crate) fn send(&mut self, w: &mut impl Write, msg: Message) -> Result<u64, WireError> {
        self.sent += 1;
        let body = encode(&Sealed { seq: self.sent, msg })?;
        let sig = self.key.sign(&self.signed_bytes(self.role, &body));
        write_frame(w, &sig, &body)?;
        Ok(self.sent)
    }

    /// Receives the next message: its signature must verify under the peer's key for the peer's
    /// role in this session, and its sequence must be the next one.
    pub(crate) fn receive(&mut self, r: &mut impl Read) -> Result<Message, WireError> {
        let (sig, body) = read_frame(r)?;
        let signed = self.signed_bytes(self.role.other(), &body);
        if !self.peer.verify_bytes(&signed, &sig) {
            // An unauthenticated `error` frame is still worth reporting, but nothing else.
            if let Ok(Message::Error { reason }) = parse::<Message>(&body) {
                return Err(WireError::Refused(format!("the peer closed the session: {reason}")));
            }
            return Err(WireError::BadSignature);
        }
        let sealed: Sealed = parse(&body)?;
        if sealed.seq != self.received + 1 {
            return Err(WireError::Sequence { expected: self.received + 1, found: sealed.seq });
        }
        self.received = sealed.seq;
        Ok(sealed.msg)
    }
}

/// What the NA end of a handshake learns.
pub(crate) struct NaHandshake {
    /// The session.
    pub session: Session,
    /// The highest CRL sequence the signer reports having signed.
    pub crl_high: Option<i64>,
}

/// The NA end: sends `hello`, verifies the signer's proof against the genesis NA key `na_key`,
/// proves the host key.
pub(crate) fn na_handshake(
    stream: &mut (impl Read + Write),
    host_key: &SigningKey,
    na_key: &PublicKey,
    genesis_sha256: &str,
) -> Result<NaHandshake, WireError> {
    let na_nonce = nonce();
    let host = host_key.public_key();
    send_plain(
        stream,
        &Message::Hello {
            protocol: PROTOCOL.to_string(),
            na_host_key: host.to_b64(),
            genesis_sha256: genesis_sha256.to_string(),
            nonce: b64_encode(&na_nonce),
        },
    )?;
    let (signer_nonce, crl_high, proof) = match recv_plain(stream)? {
        Message::SignerAuth { nonce, na_public_key, proof, crl_high } => {
            if na_public_key != na_key.to_b64() {
                let why = "the signer holds a key that is not this genesis' NA key";
                send_error(stream, why);
                return Err(WireError::Refused(format!("{why} (it offered {na_public_key})")));
            }
            (decode_32(&nonce, "nonce")?, crl_high, decode_sig(&proof)?)
        }
        Message::Error { reason } => return Err(WireError::Refused(format!("the signer refused the NA: {reason}"))),
        other => return Err(WireError::Malformed(format!("expected signer_auth, got {}", kind_of(&other)))),
    };
    let t = transcript(&na_nonce, &signer_nonce, &host, na_key, genesis_sha256);
    if !na_key.verify_bytes(&with_role(&t, Role::Signer), &proof) {
        let why = "the signer's proof does not verify under the genesis NA key";
        send_error(stream, why);
        return Err(WireError::Refused(why.into()));
    }
    let proof = host_key.sign(&with_role(&t, Role::Na));
    send_plain(stream, &Message::NaAuth { proof: b64_encode(&proof) })?;
    Ok(NaHandshake { session: Session::new(&t, Role::Na, host_key.clone(), *na_key), crl_high })
}

/// The signer end: checks `hello` against the pinned host key and its own genesis, proves the
/// NA key, verifies the host's proof.
pub(crate) fn signer_handshake(
    stream: &mut (impl Read + Write),
    na_key: &SigningKey,
    pinned_host: &PublicKey,
    genesis_sha256: &str,
    crl_high: Option<i64>,
) -> Result<Session, WireError> {
    let (na_nonce, host) = match recv_plain(stream)? {
        Message::Hello { protocol, na_host_key, genesis_sha256: theirs, nonce } => {
            if protocol != PROTOCOL {
                let why = format!("protocol {protocol:?} is not {PROTOCOL}");
                send_error(stream, &why);
                return Err(WireError::Refused(why));
            }
            if na_host_key != pinned_host.to_b64() {
                let why = format!(
                    "the NA host key is {na_host_key}, not the pinned {} (a different host, or the host key was replaced)",
                    pinned_host.to_b64()
                );
                send_error(stream, "host key not pinned by this signer");
                return Err(WireError::Refused(why));
            }
            if theirs != genesis_sha256 {
                let why = format!("the NA serves genesis sha256 {theirs}, this signer's genesis is {genesis_sha256}");
                send_error(stream, "genesis differs from the signer's");
                return Err(WireError::Refused(why));
            }
            (decode_32(&nonce, "nonce")?, *pinned_host)
        }
        Message::Error { reason } => return Err(WireError::Refused(format!("the NA refused: {reason}"))),
        other => return Err(WireError::Malformed(format!("expected hello, got {}", kind_of(&other)))),
    };
    let signer_nonce = nonce();
    let na_public = na_key.public_key();
    let t = transcript(&na_nonce, &signer_nonce, &host, &na_public, genesis_sha256);
    let proof = na_key.sign(&with_role(&t, Role::Signer));
    send_plain(
        stream,
        &Message::SignerAuth {
            nonce: b64_encode(&signer_nonce),
            na_public_key: na_public.to_b64(),
            proof: b64_encode(&proof),
            crl_high,
        },
    )?;
    match recv_plain(stream)? {
        Message::NaAuth { proof } => {
            if !host.verify_bytes(&with_role(&t, Role::Na), &decode_sig(&proof)?) {
                return Err(WireError::Refused("the NA's proof does not verify under the pinned host key".into()));
            }
        }
        Message::Error { reason } => return Err(WireError::Refused(format!("the NA refused this signer: {reason}"))),
        other => return Err(WireError::Malformed(format!("expected na_auth, got {}", kind_of(&other)))),
    }
    Ok(Session::new(&t, Role::Signer, na_key.clone(), host))
}

/// The message's `type`, for errors.
pub(crate) fn kind_of(msg: &Message) -> &'static str {
    match msg {
        Message::Hello { .. } => "hello",
        Message::SignerAuth { .. } => "signer_auth",
        Message::NaAuth { .. } => "na_auth",
        Message::Sign { .. } => "sign",
        Message::Signed { .. } => "signed",
        Message::Refused { .. } => "refused",
        Message::Ping => "ping",
        Message::Pong => "pong",
        Message::Error { .. } => "error",
    }
}

/// The sha256 (hex) of a genesis' canonical JSON, as both ends compute it.
pub(crate) fn genesis_sha256(genesis: &crate::model::genesis::Genesis) -> String {
    use crate::model::SignedObject;
    sha256_hex(&crate::crypto::canonical::canonical_bytes(&genesis.to_value()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A duplex pipe over two buffers: runs the NA end first with the signer's frames pre-recorded
    /// is not possible (nonces), so the tests use a real loopback socket pair.
    fn pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    fn sessions() -> (Session, Session, std::net::TcpStream, std::net::TcpStream) {
        let (mut na_end, mut signer_end) = pair();
        let host = SigningKey::generate();
        let na = SigningKey::generate();
        let pinned = host.public_key();
        let na_public = na.public_key();
        let t = std::thread::spawn(move || {
            signer_handshake(&mut signer_end, &na, &pinned, "g", Some(3)).map(|s| (s, signer_end))
        });
        let hs = na_handshake(&mut na_end, &host, &na_public, "g").unwrap();
        assert_eq!(hs.crl_high, Some(3));
        let (signer, signer_end) = t.join().unwrap().unwrap();
        (hs.session, signer, na_end, signer_end)
    }

    #[test]
    fn a_session_carries_messages_both_ways_and_refuses_replays_and_alterations() {
        let (mut na, mut signer, mut na_end, mut signer_end) = sessions();
        let ctx = Context { purpose: "join".into(), request_id: "r1".into() };
        let sign = Message::Sign { kind: "cert".into(), object: "{}".into(), context: ctx };
        // Capture the exact frame to replay it.
        let mut captured = Vec::new();
        na.send(&mut captured, sign.clone()).unwrap();
        signer_end.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        na_end.write_all(&captured).unwrap();
        assert_eq!(signer.receive(&mut signer_end).unwrap(), sign);
        // The same frame again: sequence 1 where 2 is due.
        na_end.write_all(&captured).unwrap();
        assert!(matches!(signer.receive(&mut signer_end), Err(WireError::Sequence { expected: 2, found: 1 })));
        // An altered body fails the signature.
        let mut altered = Vec::new();
        na.send(&mut altered, Message::Ping).unwrap();
        let last = altered.len() - 2;
        altered[last] ^= 1;
        assert!(matches!(
            signer.receive(&mut Cursor::new(altered)),
            Err(WireError::BadSignature | WireError::Malformed(_))
        ));
        // Signer → NA works, and a frame reflected to its sender fails (role).
        let mut reply = Vec::new();
        signer.send(&mut reply, Message::Pong).unwrap();
        assert!(matches!(signer.receive(&mut Cursor::new(reply.clone())), Err(WireError::BadSignature)));
        assert_eq!(na.receive(&mut Cursor::new(reply)).unwrap(), Message::Pong);
    }

    #[test]
    fn a_frame_from_another_session_is_refused() {
        let (mut na1, _s1, _a, _b) = sessions();
        let (_na2, mut s2, _c, _d) = sessions();
        let mut frame = Vec::new();
        na1.send(&mut frame, Message::Ping).unwrap();
        assert!(matches!(s2.receive(&mut Cursor::new(frame)), Err(WireError::BadSignature)));
    }

    #[test]
    fn the_handshake_refuses_an_unpinned_host_and_a_wrong_na_key() {
        let (mut na_end, mut signer_end) = pair();
        let host = SigningKey::generate();
        let na = SigningKey::generate();
        let other_host = SigningKey::generate().public_key();
        let na_public = na.public_key();
        let t = std::thread::spawn(move || signer_handshake(&mut signer_end, &na, &other_host, "g", None).err());
        assert!(na_handshake(&mut na_end, &host, &na_public, "g").is_err());
        assert!(t.join().unwrap().is_some_and(|e| e.to_string().contains("not the pinned")));

        let (mut na_end, mut signer_end) = pair();
        let host = SigningKey::generate();
        let impostor = SigningKey::generate();
        let pinned = host.public_key();
        let genuine = SigningKey::generate().public_key();
        let t = std::thread::spawn(move || signer_handshake(&mut signer_end, &impostor, &pinned, "g", None).err());
        let err = na_handshake(&mut na_end, &host, &genuine, "g").err().unwrap();
        assert!(err.to_string().contains("not this genesis' NA key"), "{err}");
        assert!(t.join().unwrap().is_some());
    }

    #[test]
    fn oversized_and_truncated_frames_are_errors_not_panics() {
        let mut big = Vec::new();
        big.extend_from_slice(&(u32::MAX).to_be_bytes());
        assert!(matches!(read_frame(&mut Cursor::new(big)), Err(WireError::FrameSize(_))));
        let mut short = Vec::new();
        short.extend_from_slice(&100u32.to_be_bytes());
        short.extend_from_slice(&[0u8; 10]);
        assert!(matches!(read_frame(&mut Cursor::new(short)), Err(WireError::Io(_))));
        assert!(matches!(
            recv_plain(&mut Cursor::new({
                let mut f = Vec::new();
                write_frame(&mut f, &[0; 64], b"{\"type\":\"nonsense\"}").unwrap();
                f
            })),
            Err(WireError::Malformed(_))
        ));
    }
}
