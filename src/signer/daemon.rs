//! `gm signer run`'s engine: N sessions, each its own thread and TCP connection dialled out to
//! the NA, each authenticated with `wire::signer_handshake`, answering `sign` requests under the
//! customer's [`Policy`], the CRL floor of [`SignerState`] and the [`SigningLog`]. It owns the
//! connection policy (dial, read timeout, reconnect backoff, shutdown); it must not parse flags
//! or print (that is `cli/signer.rs`), and it answers only after the log entry is durable.
//!
//! A session answers in the order requests came. When the NA sends several requests without
//! waiting (the socket already holds the next frame), the session decides them all before it
//! waits for their log batch, so one fsync covers them; an NA that sends one at a time per session
//! still shares fsyncs across sessions through the log's group commit.

use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::SecondsFormat;

use crate::clock::{Clock, SystemClock};
use crate::crypto::digest::sha256_hex;
use crate::crypto::keys::{PublicKey, SigningKey};
use crate::model::Kind;

use super::log::{LogEntry, LogHandle, SigningLog, Ticket};
use super::policy::{Policy, SignatureBudget};
use super::state::SignerState;
use super::subject::{read_subject, Subject};
use super::wire::{kind_of, send_error, signer_handshake, Context, Message, Session, WireError};

/// Requests a session decides before it waits for their log batch.
const MAX_PIPELINE: usize = 256;

/// The waits of a signer; tests shorten them.
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    /// A silent NA is dead after this (it pings every 15 s). Defaults to 60 s.
    pub read_timeout: Duration,
    /// One TCP connect attempt. Defaults to 10 s.
    pub connect_timeout: Duration,
    /// The first wait before reconnecting, doubled after each failure. Defaults to 1 s.
    pub first_backoff: Duration,
    /// The longest wait before reconnecting. Defaults to 30 s.
    pub max_backoff: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            read_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Everything `gm signer run` was given, checked by `cli/signer.rs`.
pub(crate) struct SignerSetup {
    /// The genesis NA private key.
    pub key: SigningKey,
    /// sha256 (hex) of the genesis this signer signs for.
    pub genesis_sha256: String,
    /// The NA host key this signer accepts.
    pub pinned_host: PublicKey,
    /// `HOST:PORT` of the NA's signer port.
    pub connect: String,
    /// Parallel sessions.
    pub sessions: usize,
    /// The customer's policy.
    pub policy: Policy,
    /// Where `state.json` and `signing-log.jsonl` live.
    pub state_dir: PathBuf,
    /// Timeouts and backoff.
    pub timing: Timing,
}

/// An opened signer: its state and log are open (and locked); [`Signer::serve`] dials.
pub(crate) struct Signer {
    core: Arc<Core>,
    log: SigningLog,
    sessions: usize,
}

/// What every session shares.
struct Core {
    key: SigningKey,
    genesis_sha256: String,
    pinned_host: PublicKey,
    connect: String,
    timing: Timing,
    policy: Policy,
    budget: Mutex<SignatureBudget>,
    state: SignerState,
    log: LogHandle,
    clock: SystemClock,
}

impl Signer {
    /// Opens the state dir (private, locked), its state and its log (chain verified).
    pub(crate) fn open(setup: SignerSetup) -> Result<Signer, String> {
        let state = SignerState::open(&setup.state_dir)?;
        let (log, handle) = SigningLog::open(&setup.state_dir)?;
        let budget = SignatureBudget::new(setup.policy.max_signatures_per_minute(), Instant::now());
        let core = Core {
            key: setup.key,
            genesis_sha256: setup.genesis_sha256,
            pinned_host: setup.pinned_host,
            connect: setup.connect,
            timing: setup.timing,
            policy: setup.policy,
            budget: Mutex::new(budget),
            state,
            log: handle,
            clock: SystemClock,
        };
        Ok(Signer { core: Arc::new(core), log, sessions: setup.sessions.max(1) })
    }

    /// The highest CRL sequence signed so far.
    pub(crate) fn crl_high(&self) -> Option<i64> {
        self.core.state.crl_high()
    }

    /// Runs the sessions until `stop` is set, then closes every connection, joins every thread
    /// and drains the log.
    pub(crate) fn serve(self, stop: &Arc<AtomicBool>) -> Result<(), String> {
        let live: Arc<Mutex<Vec<Option<TcpStream>>>> = Arc::new(Mutex::new((0..self.sessions).map(|_| None).collect()));
        let mut threads = Vec::with_capacity(self.sessions);
        for index in 0..self.sessions {
            let (core, flag, streams) = (Arc::clone(&self.core), Arc::clone(stop), Arc::clone(&live));
            let thread = std::thread::Builder::new()
                .name(format!("signer-session-{index}"))
                .spawn(move || run_session(&core, index, &flag, &streams))
                .map_err(|e| format!("cannot start a session thread: {e}"));
            match thread {
                Ok(t) => threads.push(t),
                Err(why) => {
                    stop.store(true, Ordering::SeqCst);
                    shut_down_until_joined(threads, &live);
                    return Err(why);
                }
            }
        }
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        shut_down_until_joined(threads, &live);
        drop(self.core);
        self.log.close();
        Ok(())
    }
}

/// Shuts every live connection down (unblocking its reader) until every session thread ended.
fn shut_down_until_joined(threads: Vec<std::thread::JoinHandle<()>>, live: &Mutex<Vec<Option<TcpStream>>>) {
    while threads.iter().any(|t| !t.is_finished()) {
        if let Ok(streams) = live.lock() {
            for stream in streams.iter().flatten() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for t in threads {
        let _ = t.join();
    }
}

/// How a connection ended.
enum Ended {
    /// `stop` was set.
    Stopped,
    /// It failed; `authenticated` when the handshake had succeeded.
    Failed { problem: String, authenticated: bool },
}

/// One session slot: dial, serve, and on failure wait (1 s doubling to 30 s) and dial again. A
/// failure is logged when it differs from the previous one, so a long NA outage logs once.
fn run_session(core: &Core, index: usize, stop: &AtomicBool, live: &Mutex<Vec<Option<TcpStream>>>) {
    let mut backoff = core.timing.first_backoff;
    let mut last_problem: Option<String> = None;
    let mut connected_before = false;
    while !stop.load(Ordering::SeqCst) {
        let ended = dial_and_serve(core, index, stop, live, &mut last_problem, &mut connected_before);
        if let Ok(mut streams) = live.lock() {
            streams[index] = None;
        }
        let (problem, authenticated) = match ended {
            Ended::Stopped => break,
            Ended::Failed { .. } if stop.load(Ordering::SeqCst) => break,
            Ended::Failed { problem, authenticated } => (problem, authenticated),
        };
        if authenticated {
            backoff = core.timing.first_backoff;
        }
        if last_problem.as_deref() != Some(problem.as_str()) {
            log::warn!(
                target: "gm::signer",
                "session {index} to {}: {problem}; retrying in {} ms (doubling up to {} s)",
                core.connect,
                backoff.as_millis(),
                core.timing.max_backoff.as_secs()
            );
            last_problem = Some(problem);
        }
        sleep_unless_stopped(backoff, stop);
        backoff = (backoff * 2).min(core.timing.max_backoff);
    }
}

fn sleep_unless_stopped(wait: Duration, stop: &AtomicBool) {
    let until = Instant::now() + wait;
    while !stop.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

fn dial_and_serve(
    core: &Core,
    index: usize,
    stop: &AtomicBool,
    live: &Mutex<Vec<Option<TcpStream>>>,
    last_problem: &mut Option<String>,
    connected_before: &mut bool,
) -> Ended {
    let failed = |problem: String| Ended::Failed { problem, authenticated: false };
    let stream = match dial(core) {
        Ok(s) => s,
        Err(problem) => return failed(problem),
    };
    if let (Ok(clone), Ok(mut streams)) = (stream.try_clone(), live.lock()) {
        streams[index] = Some(clone);
    }
    // Checked after registering, so a stop that came meanwhile finds the stream to shut down.
    if stop.load(Ordering::SeqCst) {
        return Ended::Stopped;
    }
    let crl_high = core.state.crl_high();
    let mut session = match signer_handshake(&mut &stream, &core.key, &core.pinned_host, &core.genesis_sha256, crl_high)
    {
        Ok(s) => s,
        Err(e) => return failed(format!("handshake: {}", describe(&e, &core.timing))),
    };
    // Logged on the first connection and after a logged failure, not on every quiet reconnect.
    if last_problem.take().is_some() || !std::mem::replace(connected_before, true) {
        log::info!(target: "gm::signer", "session {index} connected to {} (session {})", core.connect, session.id_hex());
    }
    let problem = serve_session(core, &mut session, &stream);
    Ended::Failed { problem, authenticated: true }
}

fn dial(core: &Core) -> Result<TcpStream, String> {
    let addrs = core.connect.to_socket_addrs().map_err(|e| format!("cannot resolve {}: {e}", core.connect))?;
    let mut last = format!("{} resolves to no address", core.connect);
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, core.timing.connect_timeout) {
            Ok(stream) => {
                let timeouts = stream
                    .set_read_timeout(Some(core.timing.read_timeout))
                    .and_then(|()| stream.set_write_timeout(Some(core.timing.read_timeout)))
                    .and_then(|()| stream.set_nodelay(true));
                return timeouts.map(|()| stream).map_err(|e| format!("cannot set up the connection to {addr}: {e}"));
            }
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last)
}

/// A wire error in words; a read timeout says what it means here.
fn describe(e: &WireError, timing: &Timing) -> String {
    match e {
        WireError::Io(io) if matches!(io.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            format!("the NA sent nothing for {} s (it pings every 15 s): taken as dead", timing.read_timeout.as_secs())
        }
        WireError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => "the NA closed the connection".into(),
        other => other.to_string(),
    }
}

/// An answer waiting for its log entry to be durable.
struct Pending {
    answer: Message,
    ticket: Option<Ticket>,
}

/// Serves an authenticated session until it fails; returns why.
fn serve_session(core: &Core, session: &mut Session, stream: &TcpStream) -> String {
    let mut pending: Vec<Pending> = Vec::new();
    loop {
        loop {
            let msg = match session.receive(&mut &*stream) {
                Ok(m) => m,
                Err(e) => return describe(&e, &core.timing),
            };
            match core.respond(msg, session) {
                Ok(p) => pending.push(p),
                Err(problem) => {
                    send_error(&mut &*stream, &problem);
                    return problem;
                }
            }
            if pending.len() >= MAX_PIPELINE || !more_waiting(stream) {
                break;
            }
        }
        for p in pending.drain(..) {
            let answer = match (p.ticket.map(Ticket::wait), p.answer) {
                (Some(Err(why)), Message::Signed { request, .. } | Message::Refused { request, .. }) => {
                    Message::Refused {
                        request,
                        reason: format!("the signer could not record the decision in its signing log: {why}"),
                        crl_high: core.state.crl_high(),
                    }
                }
                (_, answer) => answer,
            };
            if let Err(e) = session.send(&mut &*stream, answer) {
                return describe(&e, &core.timing);
            }
        }
    }
}

/// Whether the next frame has already arrived (without blocking).
fn more_waiting(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    let ready = matches!(stream.peek(&mut byte), Ok(n) if n > 0);
    let _ = stream.set_nonblocking(false);
    ready
}

impl Core {
    /// The answer to one message (its log entry queued); `Err` ends the session.
    fn respond(&self, msg: Message, session: &Session) -> Result<Pending, String> {
        match msg {
            Message::Ping => Ok(Pending { answer: Message::Pong, ticket: None }),
            Message::Sign { kind, object, context } => Ok(self.decide(&kind, &object, &context, session)),
            Message::Error { reason } => Err(format!("the NA closed the session: {reason}")),
            other => Err(format!("the NA sent a {} message, which only a signer sends", kind_of(&other))),
        }
    }

    /// Judges, signs when allowed, and queues the log entry.
    fn decide(&self, kind: &str, object: &str, context: &Context, session: &Session) -> Pending {
        let request = session.received();
        let now = self.clock.now();
        let Judged { subject, outcome } = self.judge(kind, object, now);
        let subject = subject.as_ref();
        let entry = LogEntry {
            at: now.to_rfc3339_opts(SecondsFormat::Micros, true),
            decision: if outcome.is_ok() { "signed" } else { "refused" }.to_string(),
            kind: kind.to_string(),
            object_id: subject.map(|s| s.object_id.clone()).unwrap_or_default(),
            sequence: subject.and_then(|s| s.sequence),
            object_sha256: subject.map_or_else(|| sha256_hex(object.as_bytes()), Subject::sha256),
            purpose: context.purpose.clone(),
            request_id: context.request_id.clone(),
            session: session.id_hex(),
            request,
            reason: outcome.as_ref().err().cloned(),
            prev: String::new(),
        };
        if let Some(reason) = &entry.reason {
            log::warn!(target: "gm::signer", "refused {kind} {:?} ({}): {reason}", entry.object_id, entry.purpose);
        }
        let ticket = Some(self.log.append(entry));
        let answer = match outcome {
            Ok(sig) => Message::Signed { request, sig },
            Err(reason) => Message::Refused { request, reason, crl_high: self.state.crl_high() },
        };
        Pending { answer, ticket }
    }

    /// The policy, the rate limit and the CRL floor, in that order; the signature when all allow.
    fn judge(&self, kind: &str, object: &str, now: chrono::DateTime<chrono::Utc>) -> Judged {
        let refused = |subject: Option<Subject>, reason: String| Judged { subject, outcome: Err(reason) };
        let kind = match self.policy.admit_kind(kind) {
            Ok(k) => k,
            Err(reason) => return refused(None, reason),
        };
        let subject = match read_subject(kind, object) {
            Ok(s) => s,
            Err(reason) => return refused(None, reason),
        };
        if let Err(reason) = self.policy.check(&subject, now) {
            return refused(Some(subject), reason);
        }
        let taken = match self.budget.lock() {
            Ok(mut budget) => budget.take(Instant::now()),
            Err(_) => Err("the rate limit's lock is poisoned".to_string()),
        };
        if let Err(reason) = taken {
            return refused(Some(subject), reason);
        }
        if let (Kind::Crl, Some(sequence)) = (kind, subject.sequence) {
            if let Err(reason) = self.state.admit_crl(sequence, &subject.sha256(), &subject.revoked) {
                return refused(Some(subject), reason);
            }
        }
        let sig = self.key.sign_b64(&subject.canonical);
        Judged { subject: Some(subject), outcome: Ok(sig) }
    }
}

/// A judged request: the object as read (when it could be) and the signature or the refusal.
struct Judged {
    subject: Option<Subject>,
    outcome: Result<String, String>,
}

#[cfg(test)]
#[path = "daemon_tests.rs"]
mod tests;
