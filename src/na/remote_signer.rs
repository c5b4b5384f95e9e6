//! The NA end of the customer-held custody model: a listener on the private signer address that
//! the customer's `gm signer run` dials, and the pool of authenticated sessions every NA signature
//! goes through (`signer::wire` is the protocol). It owns the sessions, their keepalive and the
//! signer metrics; it must not decide what is signed (the routes do) nor cache signatures.
//!
//! A signature is asked on one idle session, answered or refused by the signer's own policy, and
//! checked here against the genesis NA key before anything is stored, so a signer bug or a
//! session mix-up can never put a bad signature on the wire. With no session connected every
//! signing route answers 503 at once; everything that needs no new signature keeps working.

use std::io::{BufReader, BufWriter};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::crypto::keys::{PublicKey, SigningKey};
use crate::crypto::signature::verify_b64;
use crate::model::SignedObject;
use crate::signer::wire::{self, Context, Message, Session, WireError};

use super::sign_error::SignError;

/// How long a signature may take (a request waits this long for an idle session, and again for
/// the answer). CRL signatures are asked inside the single writer's transaction, so this bounds
/// how long a slow signer can hold other writes.
pub(crate) const SIGN_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a dialling signer has to finish the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle sessions are pinged this often (the signer treats 60 s of silence as a dead NA).
const PING_EVERY: Duration = Duration::from_secs(15);
/// At most this many authenticated sessions at once.
pub(crate) const MAX_SESSIONS: usize = 32;
/// At most this many connections in their handshake at once: a peer on the signer network that
/// opens connections and never speaks holds a slot for [`HANDSHAKE_TIMEOUT`] each, and cannot
/// crowd out the sessions already authenticated.
pub(crate) const MAX_PENDING: usize = 8;
const NO_CRL: i64 = i64::MIN;

/// One authenticated session.
struct Conn {
    session: Session,
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
    peer: SocketAddr,
}

impl Conn {
    /// One request and its answer.
    fn ask(&mut self, msg: Message) -> Result<Message, WireError> {
        let seq = self.session.send(&mut self.writer, msg)?;
        let reply = self.session.receive(&mut self.reader)?;
        match &reply {
            Message::Signed { request, .. } | Message::Refused { request, .. } if *request != seq => {
                Err(WireError::Refused(format!("answer for request {request}, {seq} was asked")))
            }
            _ => Ok(reply),
        }
    }
}

/// Counters for `/metrics`.
#[derive(Default)]
struct Counters {
    signed: AtomicU64,
    refused: AtomicU64,
    unavailable: AtomicU64,
    handshake_failures: AtomicU64,
    sessions_lost: AtomicU64,
}

/// The pool of signer sessions.
pub(crate) struct RemoteSigner {
    listen: SocketAddr,
    host_key: SigningKey,
    na_public: PublicKey,
    genesis_sha256: String,
    idle: Mutex<Vec<Conn>>,
    returned: Condvar,
    /// Sessions established (idle or busy).
    connected: AtomicUsize,
    /// Sessions handshaking.
    pending: AtomicUsize,
    crl_high: AtomicI64,
    counters: Counters,
    /// Called (on its own thread) whenever the first session of a period with none comes up.
    on_first_session: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl RemoteSigner {
    /// Binds the signer listener on `listen` (a private address; never the public port).
    pub(crate) fn bind(
        listen: SocketAddr,
        host_key: SigningKey,
        genesis: &crate::model::genesis::Genesis,
    ) -> Result<(Arc<RemoteSigner>, TcpListener), String> {
        let na_public = PublicKey::from_b64(&genesis.network_authority.public_key)
            .map_err(|e| format!("the genesis NA public key is unreadable: {e}"))?;
        let listener =
            TcpListener::bind(listen).map_err(|e| format!("cannot listen for the signer on {listen}: {e}"))?;
        let listen = listener.local_addr().unwrap_or(listen);
        let pool = RemoteSigner {
            listen,
            host_key,
            na_public,
            genesis_sha256: wire::genesis_sha256(genesis),
            idle: Mutex::new(Vec::new()),
            returned: Condvar::new(),
            connected: AtomicUsize::new(0),
            pending: AtomicUsize::new(0),
            crl_high: AtomicI64::new(NO_CRL),
            counters: Counters::default(),
            on_first_session: OnceLock::new(),
        };
        Ok((Arc::new(pool), listener))
    }

    /// Runs the accept loop and the keepalive on their own threads.
    pub(crate) fn start(self: &Arc<Self>, listener: TcpListener) -> Result<(), String> {
        let pool = Arc::clone(self);
        std::thread::Builder::new()
            .name("gm-signer-accept".into())
            .spawn(move || pool.accept_loop(listener))
            .map_err(|e| format!("cannot start the signer listener thread: {e}"))?;
        let pool = Arc::clone(self);
        std::thread::Builder::new()
            .name("gm-signer-ping".into())
            .spawn(move || loop {
                std::thread::sleep(PING_EVERY);
                pool.ping_idle();
            })
            .map_err(|e| format!("cannot start the signer keepalive thread: {e}"))?;
        Ok(())
    }

    /// Sets what runs when a session comes up while none was connected (set once).
    pub(crate) fn on_first_session(&self, hook: Box<dyn Fn() + Send + Sync>) {
        let _ = self.on_first_session.set(hook);
    }

    /// The address the listener is bound to.
    pub(crate) fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// The host key's public half (what the signer pins).
    pub(crate) fn host_public_key(&self) -> PublicKey {
        self.host_key.public_key()
    }

    /// The genesis NA key the signer proves (its fingerprint is the signer's identity).
    pub(crate) fn signer_public_key(&self) -> &PublicKey {
        &self.na_public
    }

    /// Sessions connected now.
    pub(crate) fn connected(&self) -> usize {
        self.connected.load(Ordering::SeqCst)
    }

    /// Sessions connected now, after dropping idle ones whose signer has gone (closed socket, or
    /// bytes nobody asked for): `/readyz` and `/metrics` report the truth without waiting for the
    /// next keepalive.
    pub(crate) fn connected_now(&self) -> usize {
        let sessions: Vec<Conn> = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        for conn in sessions {
            match still_open(conn.writer.get_ref()) {
                Ok(()) => self.give_back(conn),
                Err(why) => self.lose(conn, &WireError::Refused(why)),
            }
        }
        self.connected()
    }

    /// The highest CRL sequence the signer reported having signed.
    pub(crate) fn crl_high(&self) -> Option<i64> {
        Some(self.crl_high.load(Ordering::SeqCst)).filter(|&h| h != NO_CRL)
    }

    fn note_crl_high(&self, high: Option<i64>) {
        if let Some(h) = high {
            self.crl_high.fetch_max(h, Ordering::SeqCst);
        }
    }

    fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        for stream in listener.incoming() {
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    log::warn!(target: "gm::signer", "signer listener accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let peer = stream.peer_addr().map_or_else(|_| "?".to_string(), |a| a.to_string());
            let pending = self.pending.load(Ordering::SeqCst);
            if self.connected() + pending >= MAX_SESSIONS || pending >= MAX_PENDING {
                self.counters.handshake_failures.fetch_add(1, Ordering::Relaxed);
                log::warn!(target: "gm::signer", "refused a signer connection from {peer}: {} sessions and {pending} handshakes already", self.connected());
                let mut s = stream;
                let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
                wire::send_error(&mut s, "too many signer sessions");
                continue;
            }
            self.pending.fetch_add(1, Ordering::SeqCst);
            let pool = Arc::clone(&self);
            let spawned = std::thread::Builder::new().name("gm-signer-handshake".into()).spawn(move || {
                let result = pool.handshake(stream);
                pool.pending.fetch_sub(1, Ordering::SeqCst);
                match result {
                    Ok(conn) => pool.admit(conn),
                    Err(e) => {
                        pool.counters.handshake_failures.fetch_add(1, Ordering::Relaxed);
                        log::warn!(target: "gm::signer", "signer handshake from {peer} refused: {e}");
                    }
                }
            });
            if let Err(e) = spawned {
                self.pending.fetch_sub(1, Ordering::SeqCst);
                log::error!(target: "gm::signer", "cannot start a signer handshake thread: {e}");
            }
        }
    }

    fn handshake(&self, stream: TcpStream) -> Result<Conn, WireError> {
        let peer = stream.peer_addr()?;
        stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let mut s = stream;
        let hs = wire::na_handshake(&mut s, &self.host_key, &self.na_public, &self.genesis_sha256)?;
        s.set_read_timeout(Some(SIGN_TIMEOUT))?;
        s.set_write_timeout(Some(SIGN_TIMEOUT))?;
        self.note_crl_high(hs.crl_high);
        let reader = BufReader::new(s.try_clone()?);
        Ok(Conn { session: hs.session, reader, writer: BufWriter::new(s), peer })
    }

    fn admit(&self, conn: Conn) {
        let (peer, id) = (conn.peer, conn.session.id_hex());
        let before = self.connected.fetch_add(1, Ordering::SeqCst);
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
        self.returned.notify_one();
        log::info!(
            target: "gm::signer",
            "signer session {id} from {peer} authenticated (NA key {}); {} connected",
            self.na_public.fingerprint(),
            before + 1
        );
        if before == 0 {
            if let Some(hook) = self.on_first_session.get() {
                hook();
            }
        }
    }

    fn lose(&self, conn: Conn, why: &WireError) {
        let left = self.connected.fetch_sub(1, Ordering::SeqCst).saturating_sub(1);
        self.counters.sessions_lost.fetch_add(1, Ordering::Relaxed);
        log::warn!(target: "gm::signer", "signer session {} from {} lost: {why}; {left} connected", conn.session.id_hex(), conn.peer);
    }

    fn give_back(&self, conn: Conn) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
        self.returned.notify_one();
    }

    /// Takes an idle session, waiting until `deadline` while sessions are busy.
    fn take(&self, deadline: Instant) -> Result<Conn, SignError> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = idle.pop() {
                match still_open(conn.writer.get_ref()) {
                    Ok(()) => return Ok(conn),
                    Err(why) => {
                        drop(idle);
                        self.lose(conn, &WireError::Refused(why));
                        idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                        continue;
                    }
                }
            }
            if self.connected() == 0 {
                return Err(SignError::Unavailable(no_signer_message()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SignError::Unavailable(format!(
                    "every signer session stayed busy for {} s",
                    SIGN_TIMEOUT.as_secs()
                )));
            }
            idle = self.returned.wait_timeout(idle, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Asks the signer for the NA signature of `object` (base64), and checks it under the genesis
    /// NA key. A session that fails is dropped and the request tried once more on another.
    pub(crate) fn sign<T: SignedObject>(
        &self,
        object: &T,
        purpose: &str,
        request_id: &str,
    ) -> Result<String, SignError> {
        let result = self.sign_checked(object, purpose, request_id);
        let counter = match &result {
            Ok(_) => &self.counters.signed,
            Err(SignError::Refused(_)) => &self.counters.refused,
            Err(SignError::Unavailable(_)) => &self.counters.unavailable,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    fn sign_checked<T: SignedObject>(&self, object: &T, purpose: &str, request_id: &str) -> Result<String, SignError> {
        let canonical = object.canonical_bytes();
        let msg = Message::Sign {
            kind: T::KIND.name().to_string(),
            object: crate::crypto::canonical::canonical_string(&object.to_value()),
            context: Context { purpose: purpose.to_string(), request_id: request_id.to_string() },
        };
        let deadline = Instant::now() + SIGN_TIMEOUT;
        let mut last = String::new();
        for _ in 0..2 {
            let mut conn = self.take(deadline)?;
            match conn.ask(msg.clone()) {
                Ok(Message::Signed { sig, .. }) => {
                    self.give_back(conn);
                    if !verify_b64(&self.na_public, &canonical, &sig) {
                        return Err(SignError::Unavailable(
                            "the signer's signature does not verify under the genesis NA key".into(),
                        ));
                    }
                    return Ok(sig);
                }
                Ok(Message::Refused { reason, crl_high, .. }) => {
                    self.give_back(conn);
                    self.note_crl_high(crl_high);
                    return Err(SignError::Refused(reason));
                }
                Ok(other) => {
                    let e = WireError::Malformed(format!("unexpected {} answer", wire::kind_of(&other)));
                    last = e.to_string();
                    self.lose(conn, &e);
                }
                Err(e) => {
                    last = e.to_string();
                    self.lose(conn, &e);
                }
            }
        }
        Err(SignError::Unavailable(format!("the signer sessions failed ({last})")))
    }

    /// Pings every idle session once; drops the ones that do not answer.
    fn ping_idle(&self) {
        let sessions: Vec<Conn> = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        for mut conn in sessions {
            match conn.ask(Message::Ping) {
                Ok(Message::Pong) => self.give_back(conn),
                Ok(other) => self.lose(conn, &WireError::Malformed(format!("{} to a ping", wire::kind_of(&other)))),
                Err(e) => self.lose(conn, &e),
            }
        }
    }

    /// Prometheus text for `/metrics`.
    pub(crate) fn metrics_text(&self) -> String {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "# HELP gm_signer_connected Remote signer sessions connected (customer-held custody; 0 means every signing route answers 503).\n\
             # TYPE gm_signer_connected gauge\n\
             gm_signer_connected {}\n\
             # HELP gm_signer_requests_total Signatures asked of the remote signer, by outcome.\n\
             # TYPE gm_signer_requests_total counter\n\
             gm_signer_requests_total{{outcome=\"signed\"}} {}\n\
             gm_signer_requests_total{{outcome=\"refused\"}} {}\n\
             gm_signer_requests_total{{outcome=\"unavailable\"}} {}\n\
             # HELP gm_signer_handshake_failures_total Signer connections refused during the handshake (wrong key, wrong genesis, unpinned host, garbage).\n\
             # TYPE gm_signer_handshake_failures_total counter\n\
             gm_signer_handshake_failures_total {}\n\
             # HELP gm_signer_sessions_lost_total Authenticated signer sessions that failed or closed.\n\
             # TYPE gm_signer_sessions_lost_total counter\n\
             gm_signer_sessions_lost_total {}\n",
            self.connected_now(),
            load(&c.signed),
            load(&c.refused),
            load(&c.unavailable),
            load(&c.handshake_failures),
            load(&c.sessions_lost),
        )
    }
}

/// `Ok` when an idle session's socket is open and silent.
fn still_open(stream: &TcpStream) -> Result<(), String> {
    let mut byte = [0u8; 1];
    stream.set_nonblocking(true).map_err(|e| e.to_string())?;
    let peeked = stream.peek(&mut byte);
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    match peeked {
        Ok(0) => Err("the signer closed the connection".into()),
        Ok(_) => Err("the signer sent a frame nobody asked for".into()),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Why nothing can be signed, for 503 bodies and `/readyz`.
pub(crate) fn no_signer_message() -> String {
    "no remote signer is connected (customer-held custody: the customer's `gm signer run` must be connected to this NA's signer address)".to_string()
}
