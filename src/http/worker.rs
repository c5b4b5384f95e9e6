//! Connection threads: starting one for a connection (after the TLS accept for HTTPS), the guard that
//! counts a connection open until its thread or lane lets it go, and joining the threads that ended.
//!
//! Owns: [`spawn_connection`], [`OpenConnection`], [`Workers`], and [`Parked`]/[`Parking`], the seam through
//! which a thread gives an idle plain connection back to the event loop. Its own file so that the accept
//! thread (`server.rs`) and the event loop (`poller.rs`) both start threads through it rather than through
//! each other. Must not decide which connection gets a thread: its callers do.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use super::conn::{self, Handover};
use super::handler::Handler;
use super::registry::IdleMark;
use super::shared::{lock, Shared};
use super::wire::Wire;

/// A plain connection between requests, as the event loop watches it.
pub(super) struct Parked {
    /// The socket (non-blocking once watched).
    pub(super) stream: TcpStream,
    pub(super) peer: SocketAddr,
    pub(super) open: OpenConnection,
    pub(super) idle: Arc<IdleMark>,
    /// Requests served on it so far.
    pub(super) served: usize,
    /// Closed quietly when nothing arrived by then.
    pub(super) deadline: Instant,
}

/// Where connection threads give back plain connections that went idle: the event loop (`poller.rs`).
pub(super) trait Parking: Send + Sync {
    /// Watches connection `id` from now on; gives it back when it cannot (the loop has stopped, or the
    /// socket cannot be watched).
    fn park(&self, id: u64, conn: Parked) -> Result<(), Parked>;
}

/// Starts the thread that serves connection `id` (TLS first when the server is HTTPS), from `handover` on.
/// With `parking`, the thread gives the connection back there once it waits a read slice for a next
/// request, and ends. `None` when the thread could not start (logged; the connection is closed).
#[allow(clippy::too_many_arguments)]
pub(super) fn spawn_connection(
    id: u64,
    stream: TcpStream,
    peer: SocketAddr,
    open_guard: OpenConnection,
    idle: Arc<IdleMark>,
    handover: Handover,
    handler: &Arc<dyn Handler>,
    parking: Option<Arc<dyn Parking>>,
) -> Option<JoinHandle<()>> {
    let handler = Arc::clone(handler);
    let stack = open_guard.shared.limits.thread_stack_bytes;
    let spawned = thread::Builder::new().name(format!("http-conn-{id}")).stack_size(stack).spawn(move || {
        let open_guard = open_guard;
        let wire = match &open_guard.shared.tls {
            None => Wire::Plain(stream),
            Some(tls) => match tls.accept() {
                Ok(session) => Wire::tls(stream, session),
                Err(err) => {
                    log::error!("cannot start TLS for the connection from {peer}: {err}; closing it");
                    return;
                }
            },
        };
        let ended = conn::serve(wire, peer, &open_guard.shared, handler.as_ref(), &idle, handover, parking.is_some());
        if let (conn::Ended::Idle { stream, served, deadline }, Some(parking)) = (ended, parking) {
            let parked = Parked { stream, peer, open: open_guard, idle, served, deadline };
            let Err(back) = parking.park(id, parked) else { return };
            // The loop cannot take it: closed while shutting down, otherwise served on here for good.
            if !back.open.shared.is_shutting_down() {
                let handover = Handover { served: back.served, ..Handover::default() };
                let shared = &back.open.shared;
                let _ =
                    conn::serve(Wire::Plain(back.stream), peer, shared, handler.as_ref(), &back.idle, handover, false);
            }
        }
    });
    match spawned {
        Ok(worker) => Some(worker),
        Err(err) => {
            log::error!("cannot start a thread for the connection from {peer}: {err}; closing it");
            None
        }
    }
}

/// Marks one admitted connection as open until dropped, which happens last on its thread or when its lane
/// closes it (or at once if the thread could not start).
pub(super) struct OpenConnection {
    shared: Arc<Shared>,
    id: u64,
}

impl OpenConnection {
    /// Connection `id`, counted in `shared.stats.open_connections` by the caller.
    pub(super) fn new(shared: Arc<Shared>, id: u64) -> OpenConnection {
        OpenConnection { shared, id }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        lock(&self.shared.registry).remove(self.id);
        self.shared.stats.open_connections.fetch_sub(1, Ordering::AcqRel);
        if self.shared.is_shutting_down() {
            let _guard = lock(&self.shared.drained_lock);
            self.shared.drained.notify_all();
        }
    }
}

/// Connection threads started by the accept loop or an event-loop lane. Ended ones are joined now and then (amortised over
/// accepts) so the list stays proportional to the open connections.
#[derive(Default)]
pub(super) struct Workers {
    handles: Vec<JoinHandle<()>>,
    reap_at: usize,
}

impl Workers {
    pub(super) fn push(&mut self, handle: JoinHandle<()>) {
        self.handles.push(handle);
        if self.handles.len() >= self.reap_at {
            self.join_ended(false);
            self.reap_at = (self.handles.len() * 2).max(64);
        }
    }

    /// Joins the ended threads, or all of them when `all_closed` says they are past their last step.
    pub(super) fn join_ended(&mut self, all_closed: bool) {
        let mut i = 0;
        while let Some(handle) = self.handles.get(i) {
            if all_closed || handle.is_finished() {
                let handle = self.handles.swap_remove(i);
                if handle.join().is_err() {
                    log::error!("an HTTP connection thread panicked; this is a bug in gm, please report it");
                }
            } else {
                i += 1;
            }
        }
    }
}
