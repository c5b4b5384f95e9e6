//! The single writer thread with group commit. Every write in gm goes through it: jobs queue on a
//! bounded channel; the writer takes the first waiting job, then every job already queued (up to
//! a batch limit), runs each inside its own SAVEPOINT of one `BEGIN IMMEDIATE` transaction, commits
//! once, and only then answers each caller. With `synchronous = FULL` in WAL mode the commit fsyncs
//! the WAL, so a 2xx sent after [`Writer::submit`] returns is durable, a job's rows commit all
//! together or not at all (a certificate never lands without its audit event), and one fsync is
//! shared by every job in the batch. A job that fails rolls back only its own savepoint.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::error::StoreError;

/// What a job hands back to the writer: a closure that delivers its result once the batch's commit
/// outcome is known (`Err` carries the commit failure text).
type Deliver = Box<dyn FnOnce(Result<(), String>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Deliver + Send>;

/// Most jobs committed by one fsync.
const MAX_BATCH: usize = 256;
/// How long the writer waits for more jobs after the first of a batch. Short against an fsync
/// (~0.2 ms on the reference disk) and against the 20 ms p99 target.
const LINGER: Duration = Duration::from_micros(200);
/// Jobs waiting for the writer before submitters block.
const QUEUE: usize = 4096;

/// The tables of signed documents the NA serves from memory (`/crl`, `/policy`): a batch that
/// changed a row of one of them bumps [`Writer::start`]'s `published` counter.
const PUBLISHED_TABLES: [&str; 2] = ["crl_versions", "policy_versions"];

/// Handle to the writer thread; dropping it lets the thread finish the queue and exit.
pub(crate) struct Writer {
    tx: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// When the last batch committed, in microseconds after `started` plus one (0: never).
    last_commit: Arc<AtomicU64>,
    started: Instant,
}

impl Writer {
    /// Starts the writer on `conn` (which it owns from now on). After every batch that changed a row
    /// of a [`PUBLISHED_TABLES`] table, and before any of its callers is answered, `published` is
    /// bumped: a copy of a served document taken at the old value is stale. The bump follows the
    /// commit, so a reader that sees the new value also sees the committed rows.
    pub(crate) fn start(mut conn: Connection, published: Arc<AtomicU64>) -> Result<Writer, StoreError> {
        // synchronous = FULL: every commit fsyncs the WAL, so an answered write survives power loss.
        // temp_store = MEMORY keeps the per-job savepoint journals off the disk; a larger page
        // cache keeps the hot B-tree pages of the insert-heavy tables resident.
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -8192; PRAGMA wal_autocheckpoint = 8192")
            .map_err(StoreError::sqlite("configuring the writer connection"))?;
        let touched = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&touched);
        conn.update_hook(Some(move |_: rusqlite::hooks::Action, _: &str, table: &str, _: i64| {
            if PUBLISHED_TABLES.contains(&table) {
                flag.store(true, Ordering::Relaxed);
            }
        }))
        .map_err(StoreError::sqlite("installing the writer's update hook"))?;
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let started = Instant::now();
        let last_commit = Arc::new(AtomicU64::new(0));
        let stamp = Arc::clone(&last_commit);
        let settled = move || {
            if touched.swap(false, Ordering::Relaxed) {
                published.fetch_add(1, Ordering::Release);
            }
        };
        let thread = std::thread::Builder::new()
            .name("db-writer".to_string())
            .spawn(move || {
                run(&conn, &rx, &|| stamp.store(micros_since(started) + 1, Ordering::Relaxed), &settled);
            })
            .map_err(|e| StoreError::Writer { problem: format!("cannot start the writer thread: {e}") })?;
        Ok(Writer { tx: Some(tx), thread: Some(thread), last_commit, started })
    }

    /// True when a batch committed within the last `window`: the database took a write just now.
    pub(crate) fn committed_within(&self, window: Duration) -> bool {
        let last = self.last_commit.load(Ordering::Relaxed);
        last != 0 && micros_since(self.started).saturating_sub(last - 1) <= window.as_micros() as u64
    }

    /// Readiness write probe: queues an empty job, which the writer runs inside its
    /// `BEGIN IMMEDIATE` like any write, and waits at most `wait` for the answer. It never takes the
    /// write lock beside the writer (a probe contending for the lock with a busy writer waited out
    /// its whole timeout under load) and commits nothing, so it costs no fsync.
    /// The error is the problem in words.
    pub(crate) fn probe(&self, wait: Duration) -> Result<(), String> {
        let (reply_tx, reply_rx) = sync_channel::<Result<(), String>>(1);
        let job: Job = Box::new(move |_conn: &Connection| {
            Box::new(move |commit: Result<(), String>| {
                let _ = reply_tx.send(commit);
            })
        });
        let stopped = "the database writer thread has stopped".to_string();
        let tx = self.tx.as_ref().ok_or_else(|| stopped.clone())?;
        tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => "the write queue is full".to_string(),
            TrySendError::Disconnected(_) => stopped.clone(),
        })?;
        match reply_rx.recv_timeout(wait) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => {
                Err(format!("no write transaction could start within {} ms", wait.as_millis()))
            }
            Err(RecvTimeoutError::Disconnected) => Err(stopped),
        }
    }

    /// Runs `f` in the next batch and returns its result after the batch committed.
    pub(crate) fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply_tx, reply_rx) = sync_channel::<Result<T, StoreError>>(1);
        let job: Job = Box::new(move |conn: &Connection| {
            let result = run_in_savepoint(conn, f);
            Box::new(move |commit: Result<(), String>| {
                let outcome = match (result, commit) {
                    (Ok(v), Ok(())) => Ok(v),
                    (Err(e), _) => Err(e),
                    (Ok(_), Err(problem)) => Err(StoreError::Writer { problem }),
                };
                let _ = reply_tx.send(outcome);
            })
        });
        let tx = self.tx.as_ref().ok_or_else(gone)?;
        match tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => tx.send(job).map_err(|_| gone())?,
            Err(TrySendError::Disconnected(_)) => return Err(gone()),
        }
        reply_rx.recv().map_err(|_| gone())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn gone() -> StoreError {
    StoreError::Writer { problem: "the database writer thread has stopped".to_string() }
}

fn micros_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX - 1)
}

/// The writer loop: `committed` after each successful commit, `settled` after every batch (committed
/// or not) before its callers are answered.
fn run(conn: &Connection, rx: &Receiver<Job>, committed: &dyn Fn(), settled: &dyn Fn()) {
    while let Ok(first) = rx.recv() {
        if let Err(e) = exec_cached(conn, "BEGIN IMMEDIATE") {
            let problem = format!("cannot start a write transaction: {e}");
            log::error!(target: "gm::store", "{problem}");
            // Still run the job so its caller gets an answer; it fails on its own statements.
            let deliver = first(conn);
            settled();
            deliver(Err(problem));
            continue;
        }
        let mut pending = vec![run_job(conn, first)];
        // Take what is queued; then linger briefly for requests that are on their way, so one
        // fsync (and one copy of each touched page in the WAL) serves as many writers as possible.
        let linger_until = Instant::now() + LINGER;
        while pending.len() < MAX_BATCH {
            let job = match rx.try_recv() {
                Ok(job) => job,
                Err(_) => match linger_until.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => match rx.recv_timeout(left) {
                        Ok(job) => job,
                        Err(_) => break,
                    },
                    _ => break,
                },
            };
            pending.push(run_job(conn, job));
        }
        let commit = exec_cached(conn, "COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            log::error!(target: "gm::store", "commit of {} write(s) failed: {e}", pending.len());
            format!("commit failed: {e}")
        });
        if commit.is_ok() {
            committed();
        }
        settled();
        for deliver in pending {
            deliver(commit.clone());
        }
    }
}

/// Runs one job, turning a panic inside it into an error for its caller only.
fn run_job(conn: &Connection, job: Job) -> Deliver {
    match catch_unwind(AssertUnwindSafe(|| job(conn))) {
        Ok(deliver) => deliver,
        Err(_) => {
            log::error!(target: "gm::store", "a database write job panicked (gm bug); its caller gets an error");
            let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            Box::new(|_| {})
        }
    }
}

/// Runs one statement of the writer's own transaction control through the statement cache: these
/// run several times per job, and parsing them again each time cost the writer ~4% of its time.
fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn run_in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    exec_cached(conn, "SAVEPOINT job").map_err(StoreError::sqlite("opening a savepoint"))?;
    match f(conn) {
        Ok(v) => {
            exec_cached(conn, "RELEASE job").map_err(StoreError::sqlite("releasing a savepoint"))?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_is_recent_and_an_idle_writer_still_answers_the_probe() {
        let dir = std::env::temp_dir().join(format!("gm-writer-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let conn = Connection::open(dir.join("w.db")).unwrap_or_else(|e| unreachable!("{e}"));
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER)")
            .unwrap_or_else(|e| unreachable!("{e}"));
        let writer = Writer::start(conn, Arc::new(AtomicU64::new(0))).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(!writer.committed_within(Duration::from_secs(3600)), "nothing committed yet");
        assert_eq!(writer.probe(Duration::from_secs(5)), Ok(()));
        assert!(writer.committed_within(Duration::from_secs(1)), "the probe's empty batch committed");
        std::thread::sleep(Duration::from_millis(300));
        assert!(!writer.committed_within(Duration::from_millis(100)));
        // A real write renews the stamp (the window leaves room for a descheduled test thread).
        writer.submit(|c| c.execute("INSERT INTO t VALUES (1)", []).map_err(StoreError::sqlite("insert"))).ok();
        assert!(writer.committed_within(Duration::from_millis(250)));
        drop(writer);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_a_batch_that_changed_a_published_table_bumps_the_counter_before_its_caller_returns() {
        let dir = std::env::temp_dir().join(format!("gm-writer-published-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let conn = Connection::open(dir.join("w.db")).unwrap_or_else(|e| unreachable!("{e}"));
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER); CREATE TABLE crl_versions (s INTEGER);
             CREATE TABLE policy_versions (v TEXT)",
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let published = Arc::new(AtomicU64::new(0));
        let writer = Writer::start(conn, Arc::clone(&published)).unwrap_or_else(|e| unreachable!("{e}"));
        let exec = |sql: &'static str| {
            writer
                .submit(move |c| c.execute(sql, []).map_err(StoreError::sqlite("exec")))
                .unwrap_or_else(|e| unreachable!("{e}"))
        };
        exec("INSERT INTO t VALUES (1)");
        assert_eq!(published.load(Ordering::Acquire), 0, "another table");
        exec("INSERT INTO crl_versions VALUES (1)");
        assert_eq!(published.load(Ordering::Acquire), 1, "bumped before submit returned");
        exec("UPDATE crl_versions SET s = 2");
        exec("INSERT INTO policy_versions VALUES ('v')");
        assert_eq!(published.load(Ordering::Acquire), 3);
        // A job that fails rolls back, and still counts: a spurious bump only costs a re-read.
        let failed = writer.submit(|c| {
            c.execute("INSERT INTO crl_versions VALUES (3)", []).map_err(StoreError::sqlite("exec"))?;
            Err::<(), _>(StoreError::Writer { problem: "refused".into() })
        });
        assert!(failed.is_err());
        assert_eq!(published.load(Ordering::Acquire), 4);
        exec("INSERT INTO t VALUES (2)");
        assert_eq!(published.load(Ordering::Acquire), 4, "the flag was reset");
        drop(writer);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
