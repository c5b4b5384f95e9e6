//! The event loop for plain-HTTP connections: a few threads ("lanes", one per two cores) each watch their share
//! of the open connections with epoll and answer, on the lane's own thread, the requests the handler can
//! answer at once from memory ([`Handler::handle_now`]: for the NA `/healthz`, `/genesis`, a current `/crl`). One
//! wake-up then serves every connection that became readable, where a thread per connection costs two
//! context switches per request; and a connection waiting for its next request holds no thread.
//!
//! Owns: the lanes, their epoll sets, the connections they watch between requests, and the hand-over to a
//! connection thread (`conn.rs`, via [`super::worker::spawn_connection`]) of any connection whose next
//! bytes are not a complete bodiless `GET`/`HEAD` the handler answers at once: a partial head (so a client
//! that dribbles its head meets the thread's deadlines as before), a body, a refusal, a response the
//! socket does not take without blocking. The thread keeps the connection while requests keep coming and
//! parks it here again ([`Parking`]) once it waits a read slice for the next one.
//! Must not block: every socket here is non-blocking, and the handler's `handle_now` must not wait.
//!
//! Deadlines: a lane closes, without an answer, a connection that sent nothing for `head_timeout` after it
//! was accepted or for `keep_alive_idle` after its last response (what a connection thread does with a
//! connection that sent nothing), checked every [`SWEEP`]. Shutdown closes the connections a lane
//! watches: none of them has a request in progress.

use std::collections::HashMap;
use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::OwnedFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::buffer::spare_capacity;
use rustix::event::{epoll, Timespec};

use super::conn::{access_log, Handover};
use super::error::HttpError;
use super::handler::Handler;
use super::registry::IdleMark;
use super::request::parse_head;
use super::response::{encode_after, DateCache, Framing};
use super::shared::{lock, Shared};
use super::worker::{spawn_connection, OpenConnection, Parked, Parking, Workers};

/// How often a lane checks its connections' deadlines and the shutdown flag (its longest wait).
const SWEEP: Duration = Duration::from_millis(100);

/// Bytes a lane reads from a connection at once; a longer run of pipelined requests is read on the next
/// wake-up (epoll is level-triggered).
const READ_BYTES: usize = 16 * 1024;

/// Most events taken per wake-up.
const EVENTS: usize = 256;

/// A request path that makes the lane itself panic, outside the handler's guard: how the tests check
/// that a lane which ends for any reason takes no more connections and the server serves on.
#[cfg(test)]
pub(super) const PANICS_THE_LANE: &str = "/test-panics-the-lane";

/// The lanes of one server.
pub(super) struct Lanes {
    lanes: Vec<Lane>,
    next: AtomicUsize,
}

/// One lane: its epoll set, and connections admitted to it that its thread has not taken yet.
struct Lane {
    epoll: OwnedFd,
    incoming: Mutex<Incoming>,
}

#[derive(Default)]
struct Incoming {
    waiting: Vec<(u64, Parked)>,
    /// The lane's thread has stopped: nothing more may be parked here.
    closed: bool,
}

/// What serving a readable connection came to.
enum Next {
    /// Watch it again.
    Watch(Parked),
    /// Close it (the client left, or asked to close and was answered).
    Close(Parked),
    /// Give it to a connection thread with what is not answered yet.
    HandOver(Parked, Handover),
}

impl Lanes {
    /// Starts [`lane_count`] lanes on `shared` and `handler`; returns them with their threads,
    /// each of which returns the connection threads it started.
    ///
    /// # Errors
    /// [`HttpError::Listener`] when an epoll set cannot be made, [`HttpError::Spawn`] when a thread cannot start.
    pub(super) fn start(
        shared: &Arc<Shared>,
        handler: &Arc<dyn Handler>,
    ) -> Result<(Arc<Lanes>, Vec<JoinHandle<Workers>>), HttpError> {
        let count = lane_count(thread::available_parallelism().map_or(1, |n| n.get()));
        let mut lanes = Vec::with_capacity(count);
        for _ in 0..count {
            let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
                .map_err(|e| HttpError::Listener { step: "create an epoll set", source: e.into() })?;
            lanes.push(Lane { epoll, incoming: Mutex::new(Incoming::default()) });
        }
        let lanes = Arc::new(Lanes { lanes, next: AtomicUsize::new(0) });
        let mut threads = Vec::with_capacity(count);
        for index in 0..count {
            let (lanes_ref, shared, handler) = (Arc::clone(&lanes), Arc::clone(shared), Arc::clone(handler));
            let spawned = thread::Builder::new()
                .name(format!("http-lane-{index}"))
                .stack_size(shared.limits.thread_stack_bytes)
                .spawn(move || run_lane(&lanes_ref, index, &shared, &handler));
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(source) => {
                    // The lanes already running stop at the shutdown the caller's error leads to.
                    for lane in &lanes.lanes {
                        lock(&lane.incoming).closed = true;
                    }
                    return Err(HttpError::Spawn { thread: "http-lane", source });
                }
            }
        }
        Ok((lanes, threads))
    }

    /// Hands an admitted connection to a lane; gives it back when no lane can take it (the lanes have
    /// stopped, or the socket cannot be made non-blocking or watched), so the caller starts a thread for it.
    pub(super) fn watch(
        &self,
        id: u64,
        stream: TcpStream,
        peer: SocketAddr,
        open: OpenConnection,
        idle: Arc<IdleMark>,
        head_timeout: Duration,
    ) -> Result<(), (TcpStream, OpenConnection, Arc<IdleMark>)> {
        let deadline = Instant::now() + head_timeout;
        self.park(id, Parked { stream, peer, open, idle, served: 0, deadline }).map_err(|p| (p.stream, p.open, p.idle))
    }
}

impl Parking for Lanes {
    fn park(&self, id: u64, conn: Parked) -> Result<(), Parked> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len().max(1);
        let Some(lane) = self.lanes.get(index) else { return Err(conn) };
        let mut incoming = lock(&lane.incoming);
        if incoming.closed || conn.stream.set_nonblocking(true).is_err() {
            return Err(conn);
        }
        // Registered under the lock: the lane's thread, seeing an event for an id it does not hold, takes
        // the waiting connections under the same lock, so it finds this one.
        let data = epoll::EventData::new_u64(id);
        if let Err(err) = epoll::add(&lane.epoll, &conn.stream, data, epoll::EventFlags::IN) {
            log::debug!("cannot watch the connection from {}: {err}; giving it a thread", conn.peer);
            let _ = conn.stream.set_nonblocking(false);
            return Err(conn);
        }
        incoming.waiting.push((id, conn));
        Ok(())
    }
}

/// Lanes for `cores` cores: half of them (at least 1, at most 4). The lanes only answer from memory; the
/// cores left run the connection threads (signatures, the database) and the writer. On the 2-core
/// benchmark machine a second lane served `/crl` no faster and, whenever the cores were oversubscribed,
/// a preempted lane held all its connections for a scheduler slice (p99 0.3 ms became 3 ms).
fn lane_count(cores: usize) -> usize {
    (cores / 2).clamp(1, 4)
}

/// A lane's reusable buffers.
struct Scratch {
    read: Vec<u8>,
    /// The answers of one wake-up, written with one call.
    out: Vec<u8>,
    date: DateCache,
}

/// Runs lane `index` until shutdown; returns the connection threads it started.
fn run_lane(lanes: &Arc<Lanes>, index: usize, shared: &Arc<Shared>, handler: &Arc<dyn Handler>) -> Workers {
    let mut workers = Workers::default();
    let Some(lane) = lanes.lanes.get(index) else { return workers };
    // However the loop ends (shutdown, or a bug that panics), the lane takes no more connections: the
    // accept thread and the connection threads then start or keep threads instead.
    let _closing = Closing(lane);
    let mut watched: HashMap<u64, Parked> = HashMap::new();
    let mut events = Vec::with_capacity(EVENTS);
    let mut scratch = Scratch { read: vec![0; READ_BYTES], out: Vec::with_capacity(4096), date: DateCache::new() };
    let timeout = Timespec { tv_sec: 0, tv_nsec: i64::from(SWEEP.subsec_nanos()) };
    let mut next_sweep = Instant::now() + SWEEP;
    while !shared.is_shutting_down() {
        events.clear();
        if let Err(err) = epoll::wait(&lane.epoll, spare_capacity(&mut events), Some(&timeout)) {
            if err != rustix::io::Errno::INTR {
                log::error!("the HTTP event loop cannot wait for connections: {err}; retrying");
                thread::sleep(SWEEP);
            }
        }
        for event in events.drain(..) {
            let id = event.data.u64();
            if !watched.contains_key(&id) {
                adopt(lane, &mut watched);
            }
            let Some(conn) = watched.remove(&id) else { continue };
            match serve_ready(conn, shared, handler.as_ref(), &mut scratch) {
                Next::Watch(conn) => {
                    watched.insert(id, conn);
                }
                Next::Close(conn) => close(lane, conn),
                Next::HandOver(conn, handover) => {
                    let parking = Arc::clone(lanes) as Arc<dyn Parking>;
                    hand_over(lane, id, conn, handover, handler, parking, &mut workers);
                }
            }
        }
        let now = Instant::now();
        if now >= next_sweep {
            adopt(lane, &mut watched);
            let expired: Vec<u64> = watched.iter().filter(|(_, c)| c.deadline <= now).map(|(id, _)| *id).collect();
            for id in expired {
                if let Some(conn) = watched.remove(&id) {
                    close(lane, conn);
                }
            }
            next_sweep = now + SWEEP;
        }
    }
    for (_, conn) in watched.drain() {
        close(lane, conn);
    }
    workers
}

/// Closes its lane when dropped: no connection is parked there any more, and those waiting to be taken
/// are closed.
struct Closing<'a>(&'a Lane);

impl Drop for Closing<'_> {
    fn drop(&mut self) {
        let mut incoming = lock(&self.0.incoming);
        incoming.closed = true;
        let left = std::mem::take(&mut incoming.waiting);
        drop(incoming);
        for (_, conn) in left {
            close(self.0, conn);
        }
    }
}

/// Takes the connections parked on `lane` since the last call.
fn adopt(lane: &Lane, watched: &mut HashMap<u64, Parked>) {
    let waiting = std::mem::take(&mut lock(&lane.incoming).waiting);
    watched.extend(waiting);
}

/// Stops watching `conn` and closes it (its slot is given back when `open` drops). The registry holds a
/// second handle to the socket, so the epoll registration must be removed by hand: closing this handle
/// alone would leave it reporting the closed connection.
fn close(lane: &Lane, conn: Parked) {
    let _ = epoll::delete(&lane.epoll, &conn.stream);
    drop(conn);
}

/// Gives `conn` to a thread of its own (blocking again), with what the lane did not answer.
fn hand_over(
    lane: &Lane,
    id: u64,
    conn: Parked,
    handover: Handover,
    handler: &Arc<dyn Handler>,
    parking: Arc<dyn Parking>,
    workers: &mut Workers,
) {
    let _ = epoll::delete(&lane.epoll, &conn.stream);
    if let Err(err) = conn.stream.set_nonblocking(false) {
        log::debug!("cannot hand over the connection from {}: {err}; closing it", conn.peer);
        return;
    }
    let Parked { stream, peer, open, idle, .. } = conn;
    if let Some(worker) = spawn_connection(id, stream, peer, open, idle, handover, handler, Some(parking)) {
        workers.push(worker);
    }
}

/// Reads what `conn` sent and answers every complete bodiless `GET`/`HEAD` the handler answers at once; the
/// rest goes to a thread.
fn serve_ready(mut conn: Parked, shared: &Shared, handler: &dyn Handler, scratch: &mut Scratch) -> Next {
    conn.idle.set_busy();
    let read = match (&conn.stream).read(&mut scratch.read) {
        Ok(0) => return Next::Close(conn),
        Ok(n) => n,
        Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {
            return watch_again(conn, shared);
        }
        Err(err) => {
            log::debug!("reading from {} failed: {err}", conn.peer);
            return Next::Close(conn);
        }
    };
    let limits = &shared.limits;
    let mut data = scratch.read.get(..read).unwrap_or_default();
    scratch.out.clear();
    let mut close_after = false;
    while !data.is_empty() {
        let Ok(Some(head)) = parse_head(data, limits, conn.peer) else { break };
        let request = &head.request;
        #[cfg(test)]
        if request.path == PANICS_THE_LANE {
            panic!("the lane panics on purpose (test)");
        }
        let bodiless = head.content_length == 0 && !head.expects_continue;
        if !bodiless || !(request.method == "GET" || request.method == "HEAD") {
            break;
        }
        let started = Instant::now();
        let Ok(Some(response)) = panic::catch_unwind(AssertUnwindSafe(|| handler.handle_now(request))) else {
            // Not answerable at once (or `handle_now` panicked): the thread calls `handle`, which answers,
            // or answers 500 for a panic, as for any other request.
            break;
        };
        conn.served += 1;
        let keep_alive = head.client_keep_alive
            && conn.served < limits.max_requests_per_connection
            && !response.asks_to_close()
            && !shared.is_shutting_down();
        let framing = Framing { request_id: &request.request_id, keep_alive, head_only: request.method == "HEAD" };
        let status = encode_after(&response, framing, &mut scratch.date, &mut scratch.out);
        shared.stats.requests_total.fetch_add(1, Ordering::Relaxed);
        access_log(&request.method, &request.path, status, started, &request.request_id, conn.peer);
        data = data.get(head.head_len..).unwrap_or_default();
        if !keep_alive {
            close_after = true;
            break;
        }
    }
    let written = match write_now(&conn.stream, &scratch.out) {
        Ok(n) => n,
        Err(err) => {
            log::debug!("response to {} not delivered: {err}", conn.peer);
            return Next::Close(conn);
        }
    };
    let unsent = scratch.out.get(written..).unwrap_or_default();
    if close_after {
        if unsent.is_empty() {
            return Next::Close(conn);
        }
        let handover =
            Handover { received: Vec::new(), unsent: unsent.to_vec(), served: conn.served, close_after_unsent: true };
        return Next::HandOver(conn, handover);
    }
    if !data.is_empty() || !unsent.is_empty() {
        let handover = Handover {
            received: data.to_vec(),
            unsent: unsent.to_vec(),
            served: conn.served,
            close_after_unsent: false,
        };
        return Next::HandOver(conn, handover);
    }
    watch_again(conn, shared)
}

/// Marks `conn` idle with its next deadline.
fn watch_again(mut conn: Parked, shared: &Shared) -> Next {
    let limits = &shared.limits;
    if conn.served > 0 {
        conn.idle.set_idle();
        conn.deadline = Instant::now() + limits.keep_alive_idle;
    }
    Next::Watch(conn)
}

/// Writes as much of `data` as the socket takes without blocking.
fn write_now(mut stream: &TcpStream, data: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while let Some(rest) = data.get(written..).filter(|r| !r.is_empty()) {
        match stream.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::lane_count;

    #[test]
    fn half_the_cores_run_lanes_at_least_one_at_most_four() {
        assert_eq!([1, 2, 3, 4, 8, 64].map(lane_count), [1, 1, 1, 2, 4, 4]);
    }
}
