//! A streaming multipart upload: [`Upload`] is a `Write` that cuts what it is given into parts of
//! [`PART_SIZE`] and hands each to an uploader thread, which sends it (with `Content-MD5`, retried
//! with backoff) while the next part fills. Memory stays at two parts whatever the object's size.
//! Nothing exists under the object's name until [`Upload::complete`]; an upload dropped before
//! that is aborted, and one whose process was killed is aborted by the next run
//! ([`reap_abandoned`]), found through a journal entry written before the first part is sent.
//!
//! Must not: choose the object's name or headers (the caller does), or complete an upload the
//! caller has not finished writing.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{Remote, S3Error, S3ErrorKind};

/// Bytes per part (S3's minimum is 5 MiB, except for the last part). At most 10,000 parts: an
/// 80 GB archive, beyond `[backup] max_unpacked_bytes`' default.
pub(crate) const PART_SIZE: usize = 8 * 1024 * 1024;

/// S3's limit on the number of parts of one upload.
const MAX_PARTS: u16 = 10_000;

/// The journal folder's name, beside the ops ledger.
pub(crate) const JOURNAL_FOLDER: &str = ".gm-s3-uploads";

/// A multipart upload in progress.
pub(crate) struct Upload {
    remote: Arc<Remote>,
    key: String,
    upload_id: String,
    buf: Vec<u8>,
    next_part: u16,
    tx: Option<SyncSender<(u16, Vec<u8>)>>,
    worker: Option<JoinHandle<Result<Vec<String>, S3Error>>>,
    etags: Option<Vec<String>>,
    journal: Option<PathBuf>,
    completed: bool,
    /// The headers of the object (Object Lock), for a single PUT.
    headers: Vec<(String, String)>,
    /// The whole object fitted in one part: it is sent with one PUT at completion.
    single: bool,
}

impl Upload {
    /// Starts an upload of `key` with `headers` (Object Lock), journalled in `journal_dir`.
    pub(crate) fn start(
        remote: Arc<Remote>,
        key: &str,
        headers: &[(&str, &str)],
        journal_dir: &Path,
    ) -> Result<Upload, S3Error> {
        let upload_id = remote.create_multipart(key, headers)?;
        let journal = match write_journal(journal_dir, &remote, key, &upload_id) {
            Ok(p) => Some(p),
            Err(e) => {
                log::warn!(
                    target: "gm::ops",
                    "cannot journal the upload of {} in {}: {e}; if this run is killed, abort it by hand or with a lifecycle rule",
                    remote.url_of(key),
                    journal_dir.display()
                );
                None
            }
        };
        let (tx, rx) = sync_channel::<(u16, Vec<u8>)>(0);
        let worker_remote = Arc::clone(&remote);
        let worker_key = key.to_string();
        let worker_id = upload_id.clone();
        let worker = std::thread::Builder::new()
            .name("s3-upload".into())
            .spawn(move || {
                let mut etags = Vec::new();
                for (number, bytes) in rx {
                    etags.push(worker_remote.upload_part(&worker_key, &worker_id, number, &bytes)?);
                }
                Ok(etags)
            })
            .map_err(|e| remote.error(S3ErrorKind::Refused, "start a thread to upload", key, e.to_string()))?;
        Ok(Upload {
            remote,
            key: key.to_string(),
            upload_id,
            buf: Vec::with_capacity(PART_SIZE),
            next_part: 1,
            tx: Some(tx),
            worker: Some(worker),
            etags: None,
            journal,
            completed: false,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            single: false,
        })
    }

    /// Hands the buffered bytes to the uploader as the next part.
    fn send_part(&mut self) -> Result<(), S3Error> {
        if self.next_part > MAX_PARTS {
            return Err(self.remote.error(
                S3ErrorKind::Refused,
                "upload",
                &self.key,
                format!("the archive needs more than {MAX_PARTS} parts of {PART_SIZE} bytes"),
            ));
        }
        let part = std::mem::replace(&mut self.buf, Vec::with_capacity(PART_SIZE));
        let sent = self.tx.as_ref().map(|tx| tx.send((self.next_part, part)));
        self.next_part += 1;
        match sent {
            Some(Ok(())) => Ok(()),
            // The uploader stopped: its error says why.
            _ => Err(self.wait().err().unwrap_or_else(|| {
                self.remote.error(S3ErrorKind::Refused, "upload", &self.key, "the uploader stopped")
            })),
        }
    }

    /// Closes the channel and waits for the uploader: every part's ETag, or its failure.
    fn wait(&mut self) -> Result<Vec<String>, S3Error> {
        self.tx = None;
        if let Some(etags) = &self.etags {
            return Ok(etags.clone());
        }
        let joined = match self.worker.take() {
            Some(w) => w.join().unwrap_or_else(|_| {
                Err(self.remote.error(S3ErrorKind::Refused, "upload", &self.key, "the upload thread panicked"))
            }),
            None => Err(self.remote.error(S3ErrorKind::Refused, "upload", &self.key, "the upload already failed")),
        };
        if let Ok(etags) = &joined {
            self.etags = Some(etags.clone());
        }
        joined
    }

    /// Sends the last part and waits until every part is stored. Nothing is visible yet. An object
    /// that fits in one part is kept in memory for a single PUT at completion (S3 has no
    /// multipart upload of one part below 5 MiB to gain from, and some stores apply Object Lock
    /// only to single PUTs).
    pub(crate) fn finish(&mut self) -> Result<(), S3Error> {
        if self.etags.is_none() && self.next_part == 1 {
            self.single = true;
            return self.wait().map(|_| ());
        }
        if self.etags.is_none() && !self.buf.is_empty() {
            self.send_part()?;
        }
        self.wait().map(|_| ())
    }

    /// Completes the upload: the object appears under its name. Call [`Upload::finish`] first.
    pub(crate) fn complete(mut self) -> Result<String, S3Error> {
        let etags = self.wait()?;
        if self.single {
            let headers: Vec<(&str, &str)> = self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let etag = self.remote.put(&self.key, &self.buf, &headers)?;
            self.completed = true;
            // The multipart upload holds no part: abort it (a failure leaves it to the journal).
            match self.remote.abort_multipart(&self.key, &self.upload_id) {
                Ok(()) => self.remove_journal(),
                Err(e) => log::warn!(target: "gm::ops", "{e}; the next backup run tries again"),
            }
            return Ok(etag);
        }
        let etag = self.remote.complete_multipart(&self.key, &self.upload_id, &etags)?;
        self.completed = true;
        self.remove_journal();
        Ok(etag)
    }

    fn remove_journal(&mut self) {
        if let Some(p) = self.journal.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Write for Upload {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.etags.is_some() || self.tx.is_none() {
            return Err(io::Error::other(format!("the upload of {} is closed", self.remote.url_of(&self.key))));
        }
        let room = PART_SIZE - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PART_SIZE {
            self.send_part().map_err(io::Error::other)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.completed {
            return;
        }
        self.tx = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        match self.remote.abort_multipart(&self.key, &self.upload_id) {
            Ok(()) => self.remove_journal(),
            Err(e) => log::warn!(target: "gm::ops", "{e}; the next backup run tries again"),
        }
    }
}

/// Creates `dir` (mode 0700) when missing.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// One journal entry: `endpoint TAB bucket TAB key TAB upload-id`, in `<pid>-<nanos>.upload`.
fn write_journal(dir: &Path, remote: &Remote, key: &str, upload_id: &str) -> io::Result<PathBuf> {
    create_private_dir(dir)?;
    let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let path = dir.join(format!("{}-{nanos}.upload", std::process::id()));
    let mut f = crate::files::private::create_new_private(&path)?;
    writeln!(f, "{}\t{}\t{key}\t{upload_id}", remote.endpoint(), remote.bucket())?;
    f.sync_all()?;
    Ok(path)
}

/// Aborts the uploads that killed runs journalled in `dir` and that one of `remotes` can reach
/// (same endpoint and bucket); entries of live gm processes are left alone. Returns what was
/// aborted, as `s3://bucket/key` (each also logged).
pub(crate) fn reap_abandoned(dir: &Path, remotes: &[Arc<Remote>]) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut reaped = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name.strip_suffix(".upload").and_then(|n| n.split('-').next()).and_then(|p| p.parse().ok())
        else {
            continue;
        };
        if pid == std::process::id() || crate::ops::runtime::gm_process_alive(pid) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let fields: Vec<&str> = text.trim_end().split('\t').collect();
        let [endpoint, bucket, key, upload_id] = fields[..] else {
            let _ = std::fs::remove_file(&path);
            continue;
        };
        let Some(remote) = remotes.iter().find(|r| r.endpoint() == endpoint && r.bucket() == bucket) else { continue };
        match remote.abort_multipart(key, upload_id) {
            Ok(()) => {
                let _ = std::fs::remove_file(&path);
                let url = remote.url_of(key).to_string();
                log::warn!(target: "gm::ops", "aborted the upload of {url}, left behind by an interrupted gm run");
                reaped.push(url);
            }
            Err(e) => log::warn!(target: "gm::ops", "{e}; left in {} for the next run", path.display()),
        }
    }
    reaped
}
