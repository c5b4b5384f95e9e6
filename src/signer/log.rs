//! The signing log (`STATE_DIR/signing-log.jsonl`, mode 0600, append-only): one JSON line per
//! decision, each carrying the sha256 of the line before it (`prev`; 64 zeros on the first), so
//! an edited, removed or reordered line breaks the chain at the line after it. It owns the format,
//! the group-commit writer and the chain check; it decides nothing.
//!
//! Group commit: one writer thread takes every entry the sessions queued while it was busy,
//! writes them with one `write` and one `fdatasync`, then releases each session waiting for its
//! entry. An answer leaves the signer only after its entry is durable, and N sessions share one
//! fsync instead of paying one each.
//!
//! The chain proves the order and integrity of what it holds, not its length: cutting lines off
//! the end leaves a valid chain. `gm signer log` prints the head (the last line's sha256) for the
//! customer to record elsewhere; a later head must extend it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use serde::{Deserialize, Serialize};

use crate::crypto::digest::sha256_hex;

/// The log's file name in the state dir.
pub(crate) const LOG_FILE: &str = "signing-log.jsonl";

/// The `prev` of the first line.
pub(crate) const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Entries a batch holds at most (bounds one write).
const MAX_BATCH: usize = 1024;

/// One decision, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogEntry {
    /// When (RFC 3339, UTC, microseconds).
    pub at: String,
    /// `signed` or `refused`.
    pub decision: String,
    /// The kind asked for, as the NA named it.
    pub kind: String,
    /// `cert_id`, `crl_id`, … (empty when the object could not be read).
    pub object_id: String,
    /// A CRL's or feed's sequence.
    pub sequence: Option<i64>,
    /// sha256 (hex) of the canonical bytes (of the object text as received when it could not be read).
    pub object_sha256: String,
    /// The NA's purpose (`join`, `renew`, `crl-refresh`, …).
    pub purpose: String,
    /// The NA's HTTP request id, when a request caused it.
    pub request_id: String,
    /// The session id (hex prefix) the request came on.
    pub session: String,
    /// The request's sequence number in that session.
    pub request: u64,
    /// Why it was refused.
    pub reason: Option<String>,
    /// sha256 (hex) of the previous line.
    pub prev: String,
}

/// Where the chain broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Broken {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub problem: String,
}

/// What a chain walk found.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChainSummary {
    /// Lines in the chain.
    pub lines: usize,
    /// sha256 of the last line ([`GENESIS_PREV`] when empty).
    pub head: String,
}

/// Walks the chain in `path`, calling `visit` with each line's number, text and entry. A missing
/// file is an empty chain. A final line without its newline (a crash mid-write, never answered)
/// is reported as broken like any other.
pub(crate) fn walk(path: &Path, mut visit: impl FnMut(usize, &str, &LogEntry)) -> Result<ChainSummary, Broken> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ChainSummary { lines: 0, head: GENESIS_PREV.to_string() })
        }
        Err(e) => return Err(Broken { line: 0, problem: format!("cannot read {}: {e}", path.display()) }),
    };
    let mut reader = BufReader::new(file);
    let mut prev = GENESIS_PREV.to_string();
    let mut number = 0;
    let mut line = String::new();
    loop {
        line.clear();
        number += 1;
        let n =
            reader.read_line(&mut line).map_err(|e| Broken { line: number, problem: format!("unreadable: {e}") })?;
        if n == 0 {
            return Ok(ChainSummary { lines: number - 1, head: prev });
        }
        let Some(text) = line.strip_suffix('\n') else {
            return Err(Broken { line: number, problem: "the last line is cut short (no newline)".into() });
        };
        let entry: LogEntry = serde_json::from_str(text)
            .map_err(|e| Broken { line: number, problem: format!("not a log entry: {e}") })?;
        if entry.prev != prev {
            return Err(Broken {
                line: number,
                problem: format!(
                    "prev is {}, but the line before hashes to {prev} (a line was edited, removed or inserted)",
                    entry.prev
                ),
            });
        }
        visit(number, text, &entry);
        prev = sha256_hex(text.as_bytes());
    }
}

/// A pending entry's durability: wait on it before answering.
pub(crate) struct Ticket(Receiver<Result<(), String>>);

impl Ticket {
    /// Blocks until the entry's batch is on disk; `Err` when it could not be written.
    pub(crate) fn wait(self) -> Result<(), String> {
        self.0.recv().unwrap_or_else(|_| Err("the signing log writer stopped".into()))
    }
}

type Job = (LogEntry, SyncSender<Result<(), String>>);

/// The sending side the sessions share.
#[derive(Clone)]
pub(crate) struct LogHandle {
    jobs: SyncSender<Job>,
}

impl LogHandle {
    /// Queues `entry` (its `prev` is filled by the writer).
    pub(crate) fn append(&self, entry: LogEntry) -> Ticket {
        let (done, wait) = sync_channel(1);
        if let Err(e) = self.jobs.send((entry, done)) {
            let _ = e.0 .1.send(Err("the signing log writer stopped".into()));
        }
        Ticket(wait)
    }
}

/// The writer thread; joined by [`SigningLog::close`] once every [`LogHandle`] is dropped.
pub(crate) struct SigningLog {
    thread: std::thread::JoinHandle<()>,
}

impl SigningLog {
    /// Verifies the existing chain in `dir`, opens the log for appending (created 0600) and starts
    /// the writer. A broken chain is refused: the customer must look at it first.
    pub(crate) fn open(dir: &Path) -> Result<(SigningLog, LogHandle), String> {
        let path = dir.join(LOG_FILE);
        drop_cut_short_tail(&path)?;
        let summary = walk(&path, |_, _, _| {}).map_err(|b| {
            format!(
                "the signing log {} is broken at line {}: {}; keep it for review and move it aside to start a new chain",
                path.display(),
                b.line,
                b.problem
            )
        })?;
        let file = open_append(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let (jobs, queue) = sync_channel::<Job>(MAX_BATCH);
        let thread = std::thread::Builder::new()
            .name("signer-log".into())
            .spawn(move || write_batches(file, path, summary.head, queue))
            .map_err(|e| format!("cannot start the signing log writer: {e}"))?;
        Ok((SigningLog { thread }, LogHandle { jobs }))
    }

    /// Waits for the writer to drain (every handle must be dropped first).
    pub(crate) fn close(self) {
        let _ = self.thread.join();
    }
}

/// Removes a last line without its newline: a crash in the middle of a batch's write. No entry of
/// that batch was answered (answers wait for the fsync), so nothing the NA holds is lost.
fn drop_cut_short_tail(path: &Path) -> Result<(), String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    log::warn!(
        target: "gm::signer",
        "{}: dropping {} bytes of a line cut short by a crash (never answered)",
        path.display(),
        bytes.len() - keep
    );
    let file = OpenOptions::new().write(true).open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    file.set_len(keep as u64)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot truncate {}: {e}", path.display()))
}

fn open_append(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    crate::files::atomic::sync_parent(path);
    Ok(file)
}

/// The writer loop: a batch is what queued while the previous one was written. After a failed
/// write nothing more is appended (the file may end mid-line) and every later entry fails.
fn write_batches(mut file: File, path: PathBuf, mut head: String, queue: Receiver<Job>) {
    let mut failed: Option<String> = None;
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let result = match &failed {
            Some(why) => Err(why.clone()),
            None => write_batch(&mut file, &mut head, &mut batch).map_err(|e| {
                let why = format!("cannot append to {}: {e}", path.display());
                log::error!(target: "gm::signer", "{why}: the signer refuses every request until restarted");
                failed = Some(why.clone());
                why
            }),
        };
        for (_, done) in batch {
            let _ = done.send(result.clone());
        }
    }
}

fn write_batch(file: &mut File, head: &mut String, batch: &mut [Job]) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(batch.len() * 400);
    let mut next = head.clone();
    for (entry, _) in batch.iter_mut() {
        entry.prev = next;
        let line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        next = sha256_hex(line.as_bytes());
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
    }
    file.write_all(&bytes)?;
    file.sync_data()?;
    *head = next;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> LogEntry {
        LogEntry {
            at: "2026-12-05T20:00:00.000000Z".into(),
            decision: if n.is_multiple_of(2) { "signed" } else { "refused" }.into(),
            kind: "cert".into(),
            object_id: format!("cert-{n}"),
            sequence: None,
            object_sha256: sha256_hex(&n.to_be_bytes()),
            purpose: "join".into(),
            request_id: String::new(),
            session: "abcd".into(),
            request: n,
            reason: (!n.is_multiple_of(2)).then(|| "role \"role:operator\" is not in allowed_roles".to_string()),
            prev: String::new(),
        }
    }

    fn fill(dir: &Path, count: u64) {
        let (log, handle) = SigningLog::open(dir).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let handle = handle.clone();
                std::thread::spawn(move || {
                    for n in 0..count / 4 {
                        handle.append(entry(t * 1000 + n)).wait().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(handle);
        log.close();
    }

    fn temp_dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gm-signer-log-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn concurrent_appends_form_one_chain_that_survives_a_reopen() {
        let dir = temp_dir("chain");
        fill(&dir, 40);
        fill(&dir, 40);
        let mut seen = 0;
        let summary = walk(&dir.join(LOG_FILE), |_, _, _| seen += 1).unwrap();
        assert_eq!((summary.lines, seen), (80, 80));
        #[cfg(unix)]
        assert_eq!(crate::files::private::mode_of(&dir.join(LOG_FILE)).unwrap(), 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_tampered_line_is_detected_at_the_line_after_it() {
        let dir = temp_dir("tamper");
        fill(&dir, 8);
        let path = dir.join(LOG_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        let tampered = text.replacen("\"refused\"", "\"signed\"", 1);
        std::fs::write(&path, tampered).unwrap();
        let refused_line = text.lines().position(|l| l.contains("\"refused\"")).unwrap() + 1;
        let broken = walk(&path, |_, _, _| {}).unwrap_err();
        assert_eq!(broken.line, refused_line + 1);
        assert!(broken.problem.contains("a line was edited, removed or inserted"), "{broken:?}");
        // The writer refuses to extend a broken chain.
        let err = SigningLog::open(&dir).err().unwrap();
        assert!(err.contains(&format!("is broken at line {}", refused_line + 1)), "{err}");
        // A removed line breaks it too.
        let mut lines: Vec<&str> = text.lines().collect();
        lines.remove(2);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        assert_eq!(walk(&path, |_, _, _| {}).unwrap_err().line, 3);
        // A last line cut short by a crash is reported by the check, and dropped when the signer
        // opens the log (its batch was never answered).
        std::fs::write(&path, &text[..text.len() - 5]).unwrap();
        assert!(walk(&path, |_, _, _| {}).unwrap_err().problem.contains("cut short"));
        let (log, handle) = SigningLog::open(&dir).unwrap();
        handle.append(entry(99)).wait().unwrap();
        drop(handle);
        log.close();
        assert_eq!(walk(&path, |_, _, _| {}).unwrap().lines, 8);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
