//! What the accept thread, the connection threads and shutdown handles share: the limits, the live
//! counters, the shutdown flag and the connection registry. Its own file so that `conn.rs` and
//! `server.rs` depend on it rather than on each other.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::limits::Limits;
use super::registry::Registry;

/// Live counters, readable while the server runs.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections currently open (admitted and not yet closed).
    pub open_connections: AtomicUsize,
    /// Connections admitted since the server started (refused ones not included).
    pub total_connections: AtomicU64,
    /// Connections refused with 503 because `max_connections` were open and none was idle.
    pub rejected_over_cap: AtomicU64,
    /// Connections refused with 503 because their address held `max_connections_per_address` and none of
    /// them was idle.
    pub rejected_per_address: AtomicU64,
    /// Idle keep-alive connections closed to make room for a new connection.
    pub evicted_idle: AtomicU64,
    /// Responses written on admitted connections, including the server's own refusals such as 400 or 413.
    pub requests_total: AtomicU64,
}

/// State shared by the accept thread, connection threads and shutdown handles.
#[derive(Debug)]
pub(super) struct Shared {
    /// The limits the server was bound with.
    pub(super) limits: Limits,
    /// The live counters, also handed out by [`Server::stats`].
    pub(super) stats: Arc<ServerStats>,
    /// Set once by [`ShutdownHandle::shutdown`].
    pub(super) shutdown: AtomicBool,
    /// The open connections: slots, per-address shares, idle marks, and a second handle to each so it can
    /// be evicted or, after the shutdown grace period, forced shut.
    pub(super) registry: Mutex<Registry>,
    /// Id of the next admitted connection.
    pub(super) next_id: AtomicU64,
    /// Signalled when a connection closes during shutdown.
    pub(super) drained: Condvar,
    /// The lock `drained` waits with.
    pub(super) drained_lock: Mutex<()>,
    /// Built-in TLS: every connection is HTTPS, accepted with the configuration current at its accept.
    pub(super) tls: Option<Arc<super::tls::TlsState>>,
}

impl Shared {
    /// The state of a server just bound with `limits` (and built-in TLS when `tls` is set): no connection,
    /// counters at zero, not shutting down.
    pub(super) fn new(limits: Limits, tls: Option<Arc<super::tls::TlsState>>) -> Arc<Shared> {
        Arc::new(Shared {
            limits,
            stats: Arc::new(ServerStats::default()),
            shutdown: AtomicBool::new(false),
            registry: Mutex::new(Registry::new()),
            next_id: AtomicU64::new(1),
            drained: Condvar::new(),
            drained_lock: Mutex::new(()),
            tls,
        })
    }

    /// Whether shutdown has been asked for.
    pub(super) fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }
}

/// Locks `mutex`, recovering its data from a thread that panicked while holding it (every lock of the
/// HTTP layer guards state that stays consistent between its statements).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
