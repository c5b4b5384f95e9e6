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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::super::limits::Limits;
    use super::super::request::Request;
    use super::super::response::Response;
    use super::super::tests::wait_for;
    use super::*;

    /// An event loop that takes no connection back (as when its lane has stopped), counting the offers;
    /// with `shuts_down`, the server's shutdown starts as it refuses (the loop stopped for shutdown).
    #[derive(Default)]
    struct Refusing {
        offers: AtomicUsize,
        shuts_down: bool,
    }

    impl Parking for Refusing {
        fn park(&self, _id: u64, conn: Parked) -> Result<(), Parked> {
            self.offers.fetch_add(1, Ordering::SeqCst);
            if self.shuts_down {
                conn.open.shared.shutdown.store(true, Ordering::Release);
            }
            Err(conn)
        }
    }

    /// One admitted connection on a thread whose parking refuses it: the client's end, the thread, what
    /// it shares and the parking.
    fn refused_connection(shuts_down: bool) -> (TcpStream, JoinHandle<()>, Arc<Shared>, Arc<Refusing>) {
        let shared = Shared::new(Limits::default(), None);
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (stream, peer) = listener.accept().unwrap();
        let admission = lock(&shared.registry).admit(1, peer.ip(), None, 8, 8).unwrap();
        shared.stats.open_connections.fetch_add(1, Ordering::AcqRel);
        let open = OpenConnection::new(Arc::clone(&shared), 1);
        let handler: Arc<dyn Handler> = Arc::new(|request: &Request| Response::text(200, request.path.clone()));
        let parking = Arc::new(Refusing { offers: AtomicUsize::new(0), shuts_down });
        let offered_to = Arc::clone(&parking) as Arc<dyn Parking>;
        let worker =
            spawn_connection(1, stream, peer, open, admission.idle, Handover::default(), &handler, Some(offered_to))
                .unwrap();
        (client, worker, shared, parking)
    }

    /// Reads from `client` until what arrived ends with `tail`.
    fn read_until(client: &mut TcpStream, tail: &str) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.ends_with(tail.as_bytes()) {
            let n = client.read(&mut buf).expect("the response arrives");
            assert!(n > 0, "closed before {tail:?}; got {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(got).unwrap()
    }

    /// Waits up to 5 s for the thread to offer the connection back after its read slice.
    fn wait_for_offer(parking: &Refusing) {
        let offered = || parking.offers.load(Ordering::SeqCst) > 0;
        wait_for("the thread to offer the idle connection to the event loop", Duration::from_secs(5), offered);
    }

    #[test]
    fn a_connection_the_event_loop_cannot_take_back_stays_served_on_its_thread() {
        let (mut client, worker, shared, parking) = refused_connection(false);
        client.write_all(b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        assert!(read_until(&mut client, "/first").starts_with("HTTP/1.1 200 OK\r\n"));
        wait_for_offer(&parking);
        // Refused outside shutdown: the same thread answers the next request on the same connection.
        client.write_all(b"GET /second HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
        let second = read_until(&mut client, "/second");
        assert!(second.contains("Connection: close\r\n"), "{second}");
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "nothing after the last response: {rest:?}");
        worker.join().unwrap();
        assert_eq!(parking.offers.load(Ordering::SeqCst), 1, "offered once, then kept");
        assert_eq!(shared.stats.open_connections.load(Ordering::Acquire), 0, "its slot is given back");
        assert_eq!(shared.stats.requests_total.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_connection_the_event_loop_cannot_take_back_during_shutdown_is_closed() {
        let (mut client, worker, shared, parking) = refused_connection(true);
        client.write_all(b"GET /only HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        assert!(read_until(&mut client, "/only").starts_with("HTTP/1.1 200 OK\r\n"));
        wait_for_offer(&parking);
        worker.join().unwrap();
        let mut rest = Vec::new();
        assert_eq!(client.read_to_end(&mut rest).unwrap(), 0, "closed without another byte");
        assert_eq!(shared.stats.open_connections.load(Ordering::Acquire), 0);
    }
}
